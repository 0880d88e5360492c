//! Closed-loop clients: each has at most one request outstanding, retries it
//! under the same `(client, seq)` until a reply arrives, and records invoke and
//! completion in the history the linearizability checker reads.

use crate::check::{Completion, Request};
use paxos_core::{ClientId, Slot};

/// Client retry timeout: a request unanswered this long is sent again,
/// to another node.
pub const CLIENT_RETRY_TICKS: u64 = 25;
/// Longest think time between a reply and the next request.
pub const THINK_TICKS_MAX: u64 = 2;

/// A request in flight.
#[derive(Clone, Debug)]
pub struct Outstanding<C> {
    /// Sequence number.
    pub seq: u64,
    /// The operation (resent unchanged on retry).
    pub op: C,
    /// Sends so far; a timer only fires for the attempt that armed it.
    pub attempt: u32,
    /// Index of the request in the history.
    pub request: usize,
}

/// One client session.
#[derive(Clone, Debug)]
pub struct Client<C> {
    /// Its id as the replicas see it.
    pub id: ClientId,
    /// Last sequence number used.
    pub seq: u64,
    /// The node it is connected to: replies from other nodes do not reach it.
    pub target: usize,
    /// The request waiting for a reply.
    pub outstanding: Option<Outstanding<C>>,
    /// It will not submit again (the run is healing or over).
    pub retired: bool,
}

impl<C: Clone> Client<C> {
    /// A client with id `id` connected to node `target`.
    pub fn new(id: ClientId, target: usize) -> Self {
        Client {
            id,
            seq: 0,
            target,
            outstanding: None,
            retired: false,
        }
    }
}

/// Every request the clients made, in invocation order.
#[derive(Clone, Debug)]
pub struct History<C, O> {
    /// The requests.
    pub requests: Vec<Request<C, O>>,
}

impl<C, O> Default for History<C, O> {
    fn default() -> Self {
        History {
            requests: Vec::new(),
        }
    }
}

impl<C, O> History<C, O> {
    /// Records a new request; returns its index.
    pub fn invoke(&mut self, client: ClientId, seq: u64, op: C, at: u64) -> usize {
        self.requests.push(Request {
            client,
            seq,
            op,
            invoked_at: at,
            completed: None,
        });
        self.requests.len() - 1
    }

    /// Records the first reply to request `index`.
    pub fn complete(&mut self, index: usize, at: u64, slot: Slot, output: Option<O>) {
        let r = &mut self.requests[index];
        if r.completed.is_none() {
            r.completed = Some(Completion { at, slot, output });
        }
    }

    /// Requests that got a reply.
    pub fn completed(&self) -> usize {
        self.requests
            .iter()
            .filter(|r| r.completed.is_some())
            .count()
    }
}
