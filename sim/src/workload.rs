//! Closed-loop clients: each runs the core's [`Session`] (one request
//! outstanding, retried under the same `(client, seq)`, redirected by leader
//! hints, backed off after refusals) over a faulty client link, and records
//! invocation and completion in the history the linearizability checker reads.

use crate::check::{Completion, ReadRecord, Request};
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
    /// The read waiting for its answer: its id and index in the history.
    pub reading: Option<(u64, usize)>,
    /// Reads it made.
    pub reads: u64,
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
            reading: None,
            reads: 0,
        }
    }
}

/// Every request the clients made, in invocation order.
#[derive(Clone, Debug)]
pub struct History<C, O> {
    /// The requests.
    pub requests: Vec<Request<C, O>>,
    /// The reads served without a slot.
    pub reads: Vec<ReadRecord<C, O>>,
}

impl<C, O> Default for History<C, O> {
    fn default() -> Self {
        History {
            requests: Vec::new(),
            reads: Vec::new(),
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
        if self.opts.read_percent > 0
            && self.clients[c].process.is_none()
            && self.client_rng.below(100) < u64::from(self.opts.read_percent)
        {
            if let Some(query) = S::random_read(&mut self.client_rng) {
                self.start_read(c, query);
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

    /// Client `c` reads: it sends the query to the server it last talked
    /// to (or a random one) and gives up after one attempt timeout. A read
    /// that is refused or lost is simply not answered; the next operation
    /// follows.
    fn start_read(&mut self, c: usize, query: S::Command) {
        let entries = self.topo.entry_ids();
        let node = match self.clients[c].connected {
            Some(node) => node,
            None => {
                let k = self.client_rng.below(entries.len() as u64) as usize;
                let Some(node) = self.topo.entry_index(entries[k]) else {
                    return;
                };
                node
            }
        };
        let client = &mut self.clients[c];
        client.reads += 1;
        let (cid, id) = (client.id, client.reads);
        client.connected = Some(node);
        self.history.reads.push(ReadRecord {
            client: cid,
            id,
            query: query.clone(),
            invoked_at: self.now,
            completed: None,
        });
        self.clients[c].reading = Some((id, self.history.reads.len() - 1));
        self.record(EventKind::Invoke, None, || {
            format!("client {cid} sends read {id} to node {node}")
        });
        let tagged = Tagged {
            client: cid,
            seq: 0,
            op: query,
        };
        if let Some(delay) = self.client_link(node) {
            self.schedule(
                self.now + delay,
                Ev::Read {
                    node,
                    client: c,
                    id,
                    query: tagged,
                },
            );
        }
        let give_up = self.now + u64::from(CLIENT_RETRY_TICKS) * TICK_UNITS;
        self.schedule(give_up, Ev::ReadEnded { client: c, id });
    }

    pub(crate) fn on_read(&mut self, i: usize, c: usize, id: u64, query: Cmd<S>) {
        self.hash.add(((i as u64) << 32) | id);
        let node = &self.nodes[i];
        if !node.is_up() {
            return;
        }
        if node.paused_until > self.now {
            let at = node.paused_until;
            let ev = Ev::Read {
                node: i,
                client: c,
                id,
                query,
            };
            self.schedule(at, ev);
            return;
        }
        let client = self.clients[c].id;
        self.step_node(i, Input::Read { client, id, query });
    }

    /// Process `i` served a read: the answer travels to the client if it
    /// reaches it.
    pub(crate) fn read_reply(
        &mut self,
        i: usize,
        client: ClientId,
        id: u64,
        slot: Slot,
        output: Out<S>,
    ) {
        let Some(c) = self.client_reached(client, i) else {
            return;
        };
        if let Some(delay) = self.client_link(i) {
            let ev = Ev::ReadReply {
                client: c,
                id,
                slot,
                output,
            };
            self.schedule(self.now + delay, ev);
        }
    }

    /// Process `i` refused a read.
    pub(crate) fn read_refused(&mut self, i: usize, client: ClientId, id: u64) {
        let Some(c) = self.client_reached(client, i) else {
            return;
        };
        if let Some(delay) = self.client_link(i) {
            self.schedule(self.now + delay, Ev::ReadEnded { client: c, id });
        }
    }

    pub(crate) fn on_read_reply(&mut self, c: usize, id: u64, slot: Slot, output: Out<S>) {
        self.hash.add(((c as u64) << 32) | id);
        self.hash.add(slot);
        let Some((_, index)) = self.clients[c].reading.take_if(|(r, _)| *r == id) else {
            return;
        };
        let cid = self.clients[c].id;
        self.record(EventKind::Complete, None, || {
            format!("client {cid} read {id} done: slot {slot}, output {output:?}")
        });
        self.history.reads[index].completed = Some((self.now, slot, output));
        self.stats.reads += 1;
        let think = self.client_rng.below(THINK_TICKS_MAX * TICK_UNITS);
        self.schedule(self.now + think, Ev::ClientNext { client: c });
    }

    /// Read `id` of client `c` was refused, or waited too long: the client
    /// goes on (a refusal's hint is not followed; the next write's session
    /// finds the leader).
    pub(crate) fn on_read_ended(&mut self, c: usize, id: u64) {
        self.hash.add(((c as u64) << 32) | id);
        if self.clients[c].reading.take_if(|(r, _)| *r == id).is_none() {
            return;
        }
        self.clients[c].connected = None;
        let think = TICK_UNITS + self.client_rng.below(THINK_TICKS_MAX * TICK_UNITS);
        self.schedule(self.now + think, Ev::ClientNext { client: c });
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
        // A server still rejoining after a lost disk keeps the run going:
        // it must rejoin by the liveness deadline.
        let rejoining = self.nodes.iter().any(|n| n.wiped_at.is_some());
        if !self.clients_active() && self.clients.iter().all(|c| c.retired) && !rejoining {
            self.finished = true;
            let from = self.settle_from();
            self.stats.settle_ticks_max = self.now.saturating_sub(from).div_ceil(TICK_UNITS);
        }
    }
}
