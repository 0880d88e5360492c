//! Closed-loop clients: each runs the core's [`Session`] (one request
//! outstanding, retried under the same `(client, seq)`, redirected by leader
//! hints, backed off after refusals) over a faulty client link, and records
//! invocation and completion in the history the linearizability checker reads.

use crate::check::{Completion, Request};
use crate::cluster::{Cmd, Out};
use crate::engine::{Ev, Sim};
use crate::model::{SimMachine, Tagged};
use crate::options::TICK_UNITS;
use crate::rng::SimRng;
use crate::roles::Topology;
use crate::trace::EventKind;
use paxos_core::{
    ClientId, Command, DropReason, Input, NodeId, Session, SessionAction, SessionConfig,
    SessionInput, Slot,
};

/// Client attempt timeout: a request unanswered this long is sent again,
/// to another node.
pub const CLIENT_RETRY_TICKS: u32 = 25;
/// Longest think time between a reply and the next request.
pub const THINK_TICKS_MAX: u64 = 2;
/// Longest back-off after a refusal without a leader hint.
pub const CLIENT_BACKOFF_MAX_TICKS: u32 = 8;

/// A request in flight.
#[derive(Clone, Debug)]
pub struct Outstanding {
    /// Sequence number.
    pub seq: u64,
    /// Index of the request in the history.
    pub request: usize,
}

/// One simulated client.
#[derive(Debug)]
pub struct Client<S: SimMachine> {
    /// Its id as the replicas see it.
    pub id: ClientId,
    /// Its session, for a client that talks to servers (or proposers).
    pub session: Session<Cmd<S>, Out<S>>,
    /// Its process, for a client that learns for itself (a
    /// `paxos_core::Client` with a session of its own).
    pub process: Option<usize>,
    /// The process its last attempt went to: replies from servers and
    /// proposers reach only the clients connected to them.
    pub connected: Option<usize>,
    /// The request waiting for its outcome.
    pub outstanding: Option<Outstanding>,
    /// The sequence number of its latest request (both kinds of session
    /// number requests 1, 2, 3, …).
    pub last_seq: u64,
    /// Its session is ticking (while a request is outstanding).
    pub ticking: bool,
    /// It will not submit again (the run is healing or over).
    pub retired: bool,
}

impl<S: SimMachine> Client<S> {
    /// Client `c` (0-based; its id is `c + 1`) of the run with `seed`. It
    /// tries the entry points in an order that starts at a random one, so
    /// that clients spread over the cluster.
    pub fn new(c: usize, topo: &Topology, seed: u64, rng: &mut SimRng) -> Self {
        let id = c as ClientId + 1;
        let mut servers: Vec<NodeId> = topo.entry_ids();
        let start = rng.below(servers.len() as u64) as usize;
        servers.rotate_left(start);
        let mut config = SessionConfig::new(id, servers);
        config.attempt_ticks = CLIENT_RETRY_TICKS;
        config.backoff_min_ticks = 1;
        config.backoff_max_ticks = CLIENT_BACKOFF_MAX_TICKS;
        config.seed = seed ^ id.rotate_left(32);
        Client {
            id,
            session: Session::new(config).expect("the session settings are valid"),
            process: topo.client_process(c),
            connected: None,
            outstanding: None,
            last_seq: 0,
            ticking: false,
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

impl<S: SimMachine> Sim<S> {
    pub(crate) fn on_client_next(&mut self, c: usize) {
        if !self.clients_active() {
            self.clients[c].retired = true;
            self.finish_if_idle();
            return;
        }
        if let Some(process) = self.clients[c].process {
            let ready = self.nodes[process]
                .server
                .as_ref()
                .is_some_and(|p| p.is_ready());
            if !ready {
                // It has not heard a leader yet: try again a tick later.
                self.schedule(self.now + TICK_UNITS, Ev::ClientNext { client: c });
                return;
            }
        }
        let client = &mut self.clients[c];
        client.last_seq += 1;
        let (id, seq) = (client.id, client.last_seq);
        let op = S::random_op(&mut self.client_rng, id, seq);
        let tagged = Tagged {
            client: id,
            seq,
            op: op.clone(),
        };
        self.oracle.proposed(id, seq, tagged.clone());
        let request = self.history.invoke(id, seq, op, self.now);
        self.stats.invoked += 1;
        self.clients[c].outstanding = Some(Outstanding { seq, request });
        match self.clients[c].process {
            Some(process) => {
                // The process's own session sends and retries.
                let cmd = Command {
                    client: id,
                    seq,
                    op: tagged,
                };
                self.step_node(process, Input::Propose(cmd));
            }
            None => {
                self.session(c, SessionInput::Submit(tagged));
                if !self.clients[c].ticking {
                    self.clients[c].ticking = true;
                    self.schedule(self.now + TICK_UNITS, Ev::ClientTick { client: c });
                }
            }
        }
    }

    pub(crate) fn on_client_tick(&mut self, c: usize) {
        if self.clients[c].session.is_idle() {
            self.clients[c].ticking = false;
            return;
        }
        self.session(c, SessionInput::Tick);
        self.schedule(self.now + TICK_UNITS, Ev::ClientTick { client: c });
    }

    /// Steps client `c`'s session and performs what it asks.
    fn session(&mut self, c: usize, input: SessionInput<Cmd<S>, Out<S>>) {
        for action in self.clients[c].session.step(input) {
            match action {
                SessionAction::Send { to, command } => self.send_request(c, to, command),
                SessionAction::Done { seq, slot, output } => {
                    self.complete(c, seq, slot, Some(output))
                }
                // The run has no deadline: a request is given up on only
                // when superseded, which a closed loop never is.
                SessionAction::Failed { .. } => {}
            }
        }
    }

    /// Sends a request over client `c`'s link to entry point `to`.
    fn send_request(&mut self, c: usize, to: Option<NodeId>, cmd: Command<Cmd<S>>) {
        let Some(node) = to.and_then(|id| self.topo.entry_index(id)) else {
            return;
        };
        self.clients[c].connected = Some(node);
        let (id, seq) = (cmd.client, cmd.seq);
        self.record(EventKind::Invoke, None, || {
            format!("client {id} sends request {seq} to node {node}")
        });
        if let Some(delay) = self.client_link(node) {
            self.schedule(
                self.now + delay,
                Ev::Propose {
                    node,
                    client: c,
                    cmd,
                },
            );
        }
    }

    pub(crate) fn on_propose(&mut self, i: usize, c: usize, cmd: Command<Cmd<S>>) {
        self.hash.add(((i as u64) << 32) | cmd.seq);
        let node = &self.nodes[i];
        if !node.is_up() {
            return;
        }
        if node.paused_until > self.now {
            let at = node.paused_until;
            self.schedule(
                at,
                Ev::Propose {
                    node: i,
                    client: c,
                    cmd,
                },
            );
            return;
        }
        self.step_node(i, Input::Propose(cmd));
    }

    /// The client with id `client`, if what process `i` tells it reaches it.
    fn client_reached(&self, client: ClientId, i: usize) -> Option<usize> {
        let c = usize::try_from(client).ok()?.checked_sub(1)?;
        let connected = self.clients.get(c)?.connected;
        self.topo.reaches_client(i, connected).then_some(c)
    }

    /// Process `i`'s replica answered a request: the reply travels to the
    /// client if it reaches it.
    pub(crate) fn reply(
        &mut self,
        i: usize,
        client: ClientId,
        seq: u64,
        slot: Slot,
        output: Out<S>,
    ) {
        let Some(c) = self.client_reached(client, i) else {
            return;
        };
        let leader = self.nodes[i].server.as_ref().and_then(|p| p.leader());
        if let Some(delay) = self.client_link(i) {
            self.schedule(
                self.now + delay,
                Ev::Reply {
                    client: c,
                    seq,
                    slot,
                    output,
                    leader,
                },
            );
        }
    }

    /// Process `i` refused a request: the refusal travels to the client if
    /// it reaches it.
    pub(crate) fn refuse(&mut self, i: usize, client: ClientId, seq: u64, reason: DropReason) {
        let Some(c) = self.client_reached(client, i) else {
            return;
        };
        if let Some(delay) = self.client_link(i) {
            self.schedule(
                self.now + delay,
                Ev::Refused {
                    client: c,
                    seq,
                    reason,
                },
            );
        }
    }

    pub(crate) fn on_reply(
        &mut self,
        c: usize,
        seq: u64,
        slot: Slot,
        output: Out<S>,
        leader: Option<NodeId>,
    ) {
        self.hash.add(((c as u64) << 32) | seq);
        let input = SessionInput::Reply {
            seq,
            slot,
            output,
            leader,
        };
        self.session(c, input);
    }

    pub(crate) fn on_refused(&mut self, c: usize, seq: u64, reason: DropReason) {
        self.hash.add(((c as u64) << 32) | seq);
        self.session(c, SessionInput::Refused { seq, reason });
    }

    /// A self-learning client process saw its request `seq` chosen in `slot`.
    pub(crate) fn on_seen_chosen(&mut self, i: usize, seq: u64, slot: Slot) {
        let Some(c) = self.clients.iter().position(|c| c.process == Some(i)) else {
            return;
        };
        self.complete(c, seq, slot, None);
    }

    /// Request `seq` of client `c` completed (with the replica's output, or
    /// only its slot for a self-learning client); the client thinks, then
    /// submits its next one.
    fn complete(&mut self, c: usize, seq: u64, slot: Slot, output: Option<Out<S>>) {
        let client = &mut self.clients[c];
        let Some(out) = client.outstanding.take_if(|o| o.seq == seq) else {
            return;
        };
        self.hash.add(slot);
        let id = client.id;
        self.record(EventKind::Complete, None, || match &output {
            Some(output) => {
                format!("client {id} request {seq} done: slot {slot}, output {output:?}")
            }
            None => format!("client {id} saw request {seq} chosen in slot {slot}"),
        });
        let invoked_at = self.history.requests[out.request].invoked_at;
        self.history.complete(out.request, self.now, slot, output);
        self.scenario_progress(invoked_at);
        let think = self.client_rng.below(THINK_TICKS_MAX * TICK_UNITS);
        self.schedule(self.now + think, Ev::ClientNext { client: c });
    }

    pub(crate) fn finish_if_idle(&mut self) {
        if !self.clients_active() && self.clients.iter().all(|c| c.retired) {
            self.finished = true;
            let from = self.settle_from();
            self.stats.settle_ticks_max = self.now.saturating_sub(from).div_ceil(TICK_UNITS);
        }
    }
}
