//! The engine: a discrete-event loop over one priority queue of timed events
//! (message arrivals, ticks, fsyncs, client timers, faults). Every step feeds
//! one input to one node, performs its actions under the persist-before-send
//! rule, and runs the cheap checkers; the rest run at the end.

use crate::check::{
    check_linearizability, check_liveness, DeliveryChecker, ExecutionChecker, Failure, Invariant,
    Oracle, PromiseChecker, Reference,
};
use crate::cluster::{Act, Cmd, Node, Out};
use crate::model::{SimMachine, Tagged};
use crate::netem::{Fate, Network};
use crate::options::{Fault, Options, Sabotage, TICK_UNITS};
use crate::rng::{SimRng, Stream};
use crate::roles::{Compacted, NodeSnapshot, Proc, Topology};
use crate::trace::{EventKind, TraceEvent, TraceHash};
use crate::workload::{Client, History, Outstanding, CLIENT_RETRY_TICKS, THINK_TICKS_MAX};
use paxos_core::{
    Action, ClientId, Command, Config, DropReason, Event, Input, Message, NodeId, Record, Slot,
};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Fsync latency range without the disk fault, in time units.
const FSYNC_UNITS: (u64, u64) = (20, 200);
/// Fsync latency range with the disk fault.
const SLOW_FSYNC_UNITS: (u64, u64) = (20, 2_000);
/// How long partitions and cuts last, in ticks.
const CUT_TICKS: (u64, u64) = (5, 50);
/// How long a crashed node stays down, in ticks.
const DOWN_TICKS: (u64, u64) = (5, 50);
/// How long a slow node stays slow, in ticks, and by what factor.
const SLOW_TICKS: (u64, u64) = (20, 100);
const SLOW_FACTOR: (u64, u64) = (2, 5);
/// How long an isolated leader stays cut off, in ticks.
const ISOLATE_TICKS: (u64, u64) = (10, 60);
/// How long a pause lasts, in ticks.
const PAUSE_TICKS: (u64, u64) = (5, 40);
/// How many old messages a storm replays.
const STORM_MESSAGES: (u64, u64) = (20, 200);

/// A broken invariant, where it broke, and what broke it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The invariant.
    pub invariant: Invariant,
    /// What was seen.
    pub detail: String,
    /// The step at which it was detected.
    pub step: u64,
    /// The logical time.
    pub t: u64,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} violated at step {} (t={}): {}",
            self.invariant, self.step, self.t, self.detail
        )
    }
}

/// Counters of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events processed.
    pub steps: u64,
    /// Messages delivered to nodes (what the messages/s figure counts).
    pub delivered: u64,
    /// Messages nodes sent (each destination counts once).
    pub sent: u64,
    /// Messages lost (dropped, cut, or to a crashed node).
    pub lost: u64,
    /// Node ticks.
    pub ticks: u64,
    /// Crashes.
    pub crashes: u64,
    /// Snapshots taken (logs compacted).
    pub snapshots: u64,
    /// Snapshots servers sent to peers behind their retained values
    /// (`Action::SendSnapshot`), counted when sent, lost or not.
    pub snapshots_sent: u64,
    /// Peer snapshots servers installed (the rest arrived late or twice).
    pub snapshots_installed: u64,
    /// Slots the oracle saw chosen.
    pub chosen: u64,
    /// Client requests invoked.
    pub invoked: u64,
    /// Client requests completed.
    pub completed: u64,
    /// Longest time from heal until every request completed, in ticks
    /// (the largest over a batch of seeds): how close runs come to the
    /// liveness bound.
    pub settle_ticks_max: u64,
}

impl Stats {
    /// Adds another run's counters to these.
    pub fn add(&mut self, o: &Stats) {
        self.steps += o.steps;
        self.delivered += o.delivered;
        self.sent += o.sent;
        self.lost += o.lost;
        self.ticks += o.ticks;
        self.crashes += o.crashes;
        self.snapshots += o.snapshots;
        self.snapshots_sent += o.snapshots_sent;
        self.snapshots_installed += o.snapshots_installed;
        self.chosen += o.chosen;
        self.invoked += o.invoked;
        self.completed += o.completed;
        self.settle_ticks_max = self.settle_ticks_max.max(o.settle_ticks_max);
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Its counters.
    pub stats: Stats,
    /// Hash of every step; equal for two runs of the same options.
    pub trace_hash: u64,
    /// The first invariant that broke, if any.
    pub violation: Option<Violation>,
    /// Every event, if [`Options::record`] was set.
    pub events: Vec<TraceEvent>,
    /// Name of each process (the lanes of a diagram; `node` in events indexes it).
    pub lanes: Vec<String>,
}

enum Ev<S: SimMachine> {
    /// A message or a snapshot on its way from one process to another.
    Net {
        from: usize,
        to: usize,
        sent_at: u64,
        payload: Payload<S>,
    },
    Tick {
        node: usize,
        incarnation: u32,
    },
    Sync {
        node: usize,
        incarnation: u32,
    },
    Propose {
        node: usize,
        client: usize,
        sent_at: u64,
        cmd: Command<Cmd<S>>,
    },
    Reply {
        client: usize,
        seq: u64,
        slot: Slot,
        output: Out<S>,
    },
    Refused {
        client: usize,
        seq: u64,
        leader: Option<NodeId>,
    },
    ClientTimer {
        client: usize,
        seq: u64,
        attempt: u32,
        /// A timeout (try another node) rather than a hinted retry.
        retarget: bool,
    },
    ClientNext {
        client: usize,
    },
    FaultTick,
    Restart {
        node: usize,
        incarnation: u32,
    },
    Heal,
    Deadline,
}

impl<S: SimMachine> Ev<S> {
    fn tag(&self) -> u64 {
        match self {
            Ev::Net {
                payload: Payload::Msg(_),
                ..
            } => 1,
            Ev::Tick { .. } => 2,
            Ev::Sync { .. } => 3,
            Ev::Propose { .. } => 4,
            Ev::Reply { .. } => 5,
            Ev::Refused { .. } => 6,
            Ev::ClientTimer { .. } => 7,
            Ev::ClientNext { .. } => 8,
            Ev::FaultTick => 9,
            Ev::Restart { .. } => 10,
            Ev::Heal => 11,
            Ev::Deadline => 12,
            Ev::Net {
                payload: Payload::Snapshot(_),
                ..
            } => 13,
        }
    }
}

/// What travels between processes: a protocol message, or a server's replica
/// snapshot on its way to a peer behind it. Both meet the same faults (loss,
/// cuts, delay, duplication); storms replay messages only.
#[derive(Clone)]
enum Payload<S: SimMachine> {
    Msg(Message<Cmd<S>>),
    Snapshot(Box<NodeSnapshot<S>>),
}

impl<S: SimMachine> Payload<S> {
    fn label(&self) -> String {
        match self {
            Payload::Msg(msg) => describe(msg),
            Payload::Snapshot(s) => format!("snapshot up to slot {}", s.next_slot),
        }
    }
}

struct Entry<S: SimMachine> {
    at: u64,
    seq: u64,
    ev: Ev<S>,
}

impl<S: SimMachine> PartialEq for Entry<S> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<S: SimMachine> Eq for Entry<S> {}
impl<S: SimMachine> PartialOrd for Entry<S> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<S: SimMachine> Ord for Entry<S> {
    // Reversed: the heap pops the earliest event, ties in scheduling order.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// One simulated run of a cluster of `paxos-core` servers running `S`.
pub struct Sim<S: SimMachine> {
    opts: Options,
    now: u64,
    step: u64,
    next_seq: u64,
    queue: BinaryHeap<Entry<S>>,
    nodes: Vec<Node<S>>,
    topo: Topology,
    route_buf: Vec<usize>,
    /// Chosen values a learner keeps (`Config::retain_slots`).
    retain_slots: u64,
    clients: Vec<Client<S::Command>>,
    net: Network<Message<Cmd<S>>>,
    fault_rng: SimRng,
    client_rng: SimRng,
    disk_rng: SimRng,
    oracle: Oracle<Cmd<S>>,
    deliveries: DeliveryChecker,
    executions: ExecutionChecker,
    promises: PromiseChecker,
    reference: Reference<S, Out<S>>,
    history: History<S::Command, Out<S>>,
    stats: Stats,
    hash: TraceHash,
    events: Vec<TraceEvent>,
    buf: Vec<Act<S>>,
    healed: bool,
    finished: bool,
    violation: Option<Violation>,
}

impl<S: SimMachine> std::fmt::Debug for Sim<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("opts", &self.opts)
            .field("now", &self.now)
            .field("step", &self.step)
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl<S: SimMachine> Sim<S> {
    /// Builds the run described by `opts` (checked with [`Options::validate`]).
    pub fn new(opts: Options) -> Result<Self, String> {
        opts.validate()?;
        let mut topo = Topology::new(opts.layout, opts.nodes).with_tuning(opts.tuning);
        if opts.core_clients {
            topo = topo.with_core_clients(opts.clients);
        }
        let n = topo.len();
        let mut node_rng = SimRng::new(opts.seed, Stream::Nodes);
        let skew = if opts.faults.contains(Fault::Skew) {
            opts.rates.get(Fault::Skew)
        } else {
            0.0
        };
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let server = Proc::recover(&topo, i, opts.seed, 0, None, std::iter::empty())?;
            let u = node_rng.below(1 << 20) as f64 / (1u64 << 20) as f64;
            let period = (TICK_UNITS as f64 * (1.0 + skew * (2.0 * u - 1.0))).round() as u64;
            nodes.push(Node::new(server, period.max(1)));
        }
        let mut client_rng = SimRng::new(opts.seed, Stream::Clients);
        let entry = topo.entry_points();
        let clients = (0..opts.clients)
            .map(|c| {
                let target = match topo.client_process(c) {
                    Some(process) => process,
                    None => entry.start + client_rng.below(entry.len() as u64) as usize,
                };
                Client::new(c as ClientId + 1, target)
            })
            .collect();
        let heal_at = opts.heal_tick * TICK_UNITS;
        let mut sim = Sim {
            now: 0,
            step: 0,
            next_seq: 0,
            queue: BinaryHeap::new(),
            route_buf: Vec::new(),
            retain_slots: topo.config(0, 0, 0).retain_slots,
            clients,
            net: Network::new(n, opts.seed, opts.faults, opts.rates),
            fault_rng: SimRng::new(opts.seed, Stream::Faults),
            client_rng,
            disk_rng: SimRng::new(opts.seed, Stream::Disk),
            oracle: Oracle::new(topo.quorum()),
            deliveries: DeliveryChecker::new(n),
            executions: ExecutionChecker::new(n),
            promises: PromiseChecker::new(n),
            reference: Reference::new(S::fresh()),
            history: History::default(),
            stats: Stats::default(),
            hash: TraceHash::default(),
            events: Vec::new(),
            buf: Vec::new(),
            healed: false,
            finished: false,
            violation: None,
            nodes,
            topo,
            opts,
        };
        for i in 0..n {
            let first = sim.fault_rng.below(TICK_UNITS);
            sim.schedule(
                first,
                Ev::Tick {
                    node: i,
                    incarnation: 0,
                },
            );
        }
        for c in 0..sim.clients.len() {
            let t = sim.client_rng.below(THINK_TICKS_MAX * TICK_UNITS) + TICK_UNITS;
            sim.schedule(t, Ev::ClientNext { client: c });
        }
        if !sim
            .opts
            .faults
            .iter()
            .all(|f| f == Fault::Skew || f == Fault::Disk)
        {
            sim.schedule(TICK_UNITS, Ev::FaultTick);
        }
        sim.schedule(heal_at, Ev::Heal);
        let bound = sim.liveness_bound();
        sim.schedule(heal_at + bound, Ev::Deadline);
        Ok(sim)
    }

    /// Time allowed after heal for every pending request to complete.
    pub fn liveness_bound(&self) -> u64 {
        let election = u64::from(Config::new(NodeId(1), vec![NodeId(1)]).election_timeout_ticks);
        self.opts.liveness_timeouts * election * TICK_UNITS
    }

    fn schedule(&mut self, at: u64, ev: Ev<S>) {
        self.next_seq += 1;
        self.queue.push(Entry {
            at,
            seq: self.next_seq,
            ev,
        });
    }

    fn record(&mut self, kind: EventKind, node: Option<usize>, label: impl FnOnce() -> String) {
        if self.opts.record {
            self.events.push(TraceEvent {
                step: self.step,
                t: self.now,
                kind,
                node,
                peer: None,
                sent_at: None,
                label: label(),
            });
        }
    }

    /// Records a message or snapshot sent, received or lost.
    fn record_transfer(
        &mut self,
        kind: EventKind,
        from: usize,
        to: usize,
        sent_at: u64,
        payload: &Payload<S>,
    ) {
        if self.opts.record {
            self.events.push(TraceEvent {
                step: self.step,
                t: self.now,
                kind,
                node: Some(to),
                peer: Some(from),
                sent_at: Some(sent_at),
                label: payload.label(),
            });
        }
    }

    fn fail(&mut self, failure: Failure) {
        if self.violation.is_some() {
            return;
        }
        let v = Violation {
            invariant: failure.invariant,
            detail: failure.detail,
            step: self.step,
            t: self.now,
        };
        self.record(EventKind::Violation, None, || v.to_string());
        self.violation = Some(v);
    }

    /// Runs to the end: every request done after heal, the liveness deadline,
    /// a violation, or `max_steps`.
    pub fn run(mut self) -> Outcome {
        while let Some(entry) = self.queue.pop() {
            if self.opts.max_steps.is_some_and(|m| self.step >= m) {
                break;
            }
            self.now = entry.at;
            self.step += 1;
            self.hash.add(entry.at);
            self.hash.add(entry.ev.tag());
            self.handle(entry.ev);
            if self.violation.is_some() || self.finished {
                break;
            }
        }
        if self.violation.is_none() {
            if let Err(f) =
                check_linearizability(&self.history.requests, &self.reference.executions)
            {
                self.fail(f);
            }
        }
        self.stats.steps = self.step;
        self.stats.chosen = self.oracle.chosen_count() as u64;
        self.stats.completed = self.history.completed() as u64;
        self.hash.add(self.stats.delivered);
        self.hash.add(self.stats.chosen);
        Outcome {
            stats: self.stats,
            trace_hash: self.hash.value(),
            violation: self.violation,
            events: self.events,
            lanes: self.topo.lane_names(),
        }
    }

    fn handle(&mut self, ev: Ev<S>) {
        match ev {
            Ev::Net {
                from,
                to,
                sent_at,
                payload,
            } => self.on_arrival(from, to, sent_at, payload),
            Ev::Tick { node, incarnation } => self.on_tick(node, incarnation),
            Ev::Sync { node, incarnation } => self.on_sync(node, incarnation),
            Ev::Propose {
                node,
                client,
                sent_at,
                cmd,
            } => self.on_propose(node, client, sent_at, cmd),
            Ev::Reply {
                client,
                seq,
                slot,
                output,
            } => self.on_reply(client, seq, slot, output),
            Ev::Refused {
                client,
                seq,
                leader,
            } => self.on_refused(client, seq, leader),
            Ev::ClientTimer {
                client,
                seq,
                attempt,
                retarget,
            } => self.on_client_timer(client, seq, attempt, retarget),
            Ev::ClientNext { client } => self.on_client_next(client),
            Ev::FaultTick => self.on_fault_tick(),
            Ev::Restart { node, incarnation } => self.restart(node, incarnation),
            Ev::Heal => self.on_heal(),
            Ev::Deadline => {
                if self.opts.liveness {
                    if let Err(f) = check_liveness(&self.history.requests, self.now) {
                        self.fail(f);
                    }
                }
                self.finished = true;
            }
        }
    }

    // ---- nodes ------------------------------------------------------------

    /// A message or snapshot reaches process `to`: lost if it is down, held
    /// back while it is paused, otherwise taken in.
    fn on_arrival(&mut self, from: usize, to: usize, sent_at: u64, payload: Payload<S>) {
        self.hash.add(((from as u64) << 8) | to as u64);
        if let Payload::Snapshot(snapshot) = &payload {
            self.hash.add(snapshot.next_slot);
        }
        let node = &self.nodes[to];
        if !node.is_up() {
            self.stats.lost += 1;
            self.record_transfer(EventKind::Lost, from, to, sent_at, &payload);
            return;
        }
        if node.paused_until > self.now {
            let at = node.paused_until;
            self.schedule(
                at,
                Ev::Net {
                    from,
                    to,
                    sent_at,
                    payload,
                },
            );
            return;
        }
        self.record_transfer(EventKind::Recv, from, to, sent_at, &payload);
        match payload {
            Payload::Msg(msg) => {
                self.stats.delivered += 1;
                let from = self.topo.id(from);
                self.step_node(to, Input::Receive { from, msg });
            }
            Payload::Snapshot(snapshot) => self.install_snapshot(to, *snapshot),
        }
    }

    /// Server `to` installs a peer's snapshot if it is ahead. Installing
    /// replaces the replica's state (and with it the journal of executions)
    /// and moves the learner, so the delivery and execution checkers start
    /// over for that node as after a restore.
    fn install_snapshot(&mut self, to: usize, snapshot: NodeSnapshot<S>) {
        let mut out = std::mem::take(&mut self.buf);
        if let Some(server) = self.nodes[to].server.as_mut() {
            server.install_snapshot(snapshot, &mut out);
        }
        let installed = out.iter().find_map(|a| match a {
            Action::PersistSnapshot { next_slot } => Some(*next_slot),
            _ => None,
        });
        if let Some(next_slot) = installed {
            self.stats.snapshots_installed += 1;
            self.hash.add(next_slot);
            self.nodes[to].journal_seen = 0;
            self.deliveries.restarted(to, next_slot);
            self.executions.restarted(to);
        }
        for action in out.drain(..) {
            self.perform(to, action);
        }
        self.buf = out;
        self.check_node(to);
    }

    fn on_tick(&mut self, i: usize, incarnation: u32) {
        let node = &self.nodes[i];
        if node.incarnation != incarnation || !node.is_up() {
            return;
        }
        self.hash.add(i as u64);
        if node.paused_until > self.now {
            let at = node.paused_until;
            self.schedule(
                at,
                Ev::Tick {
                    node: i,
                    incarnation,
                },
            );
            return;
        }
        let next = self.now + node.tick_period(self.now);
        self.stats.ticks += 1;
        self.step_node(i, Input::Tick);
        self.maybe_compact(i);
        self.schedule(
            next,
            Ev::Tick {
                node: i,
                incarnation,
            },
        );
    }

    /// Periodic snapshot: a node with nothing unsynced replaces its log by a
    /// snapshot and a checkpoint, atomically (as a driver writing a new file,
    /// syncing it, and renaming it over the old one).
    fn maybe_compact(&mut self, i: usize) {
        let Some(every) = self.opts.snapshot_ticks else {
            return;
        };
        let node = &mut self.nodes[i];
        node.ticks += 1;
        if node.ticks % every != 0 || node.has_unsynced() {
            return;
        }
        let Some(Compacted { snapshot, records }) = node.server.as_ref().and_then(Proc::compact)
        else {
            return;
        };
        let slot = snapshot.next_slot;
        node.snapshot = Some(snapshot);
        node.disk.synced = records;
        let kept = node.disk.synced.len();
        self.stats.snapshots += 1;
        self.record(EventKind::Sync, Some(i), || {
            format!("snapshot at slot {slot}, log compacted to {kept} records")
        });
    }

    fn step_node(&mut self, i: usize, input: Input<Cmd<S>>) {
        let mut out = std::mem::take(&mut self.buf);
        let Some(server) = self.nodes[i].server.as_mut() else {
            return;
        };
        server.step_into(input, &mut out);
        let done = server.take_done();
        for action in out.drain(..) {
            self.perform(i, action);
        }
        self.buf = out;
        self.check_node(i);
        for (seq, slot) in done {
            self.on_seen_chosen(i, seq, slot);
        }
    }

    /// A self-learning client process saw its request `seq` chosen in `slot`.
    fn on_seen_chosen(&mut self, i: usize, seq: u64, slot: Slot) {
        let Some(c) = self.clients.iter().position(|c| c.target == i) else {
            return;
        };
        let Some(out) = self.clients[c].outstanding.take_if(|o| o.seq == seq) else {
            return;
        };
        let id = self.clients[c].id;
        self.record(EventKind::Complete, None, || {
            format!("client {id} saw request {seq} chosen in slot {slot}")
        });
        self.history.complete(out.request, self.now, slot, None);
        let think = self.client_rng.below(THINK_TICKS_MAX * TICK_UNITS);
        self.schedule(self.now + think, Ev::ClientNext { client: c });
    }

    /// Persist-before-send: once a record (or an installed snapshot) is
    /// unsynced, every later action waits in `held` until the sync.
    fn perform(&mut self, i: usize, action: Act<S>) {
        let node = &mut self.nodes[i];
        match action {
            Action::Persist(record) => {
                node.disk.unsynced.push(record);
                self.schedule_sync(i);
            }
            Action::PersistSnapshot { .. } => {
                // Written now (the replica may already be past the slot the
                // action names, which only reaches further); durable at the
                // sync, atomically, as a write + fsync + rename would be.
                node.unsynced_snapshot = node.server.as_ref().and_then(Proc::snapshot);
                self.schedule_sync(i);
            }
            other if node.has_unsynced() && self.opts.sabotage != Sabotage::SendBeforeSync => {
                node.held.push(other)
            }
            other => self.emit(i, other),
        }
    }

    fn schedule_sync(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.sync_pending {
            return;
        }
        node.sync_pending = true;
        let (lo, hi) = if self.opts.faults.contains(Fault::Disk) && !self.healed {
            SLOW_FSYNC_UNITS
        } else {
            FSYNC_UNITS
        };
        let at = self.now + self.disk_rng.between(lo, hi);
        let incarnation = node.incarnation;
        self.schedule(
            at,
            Ev::Sync {
                node: i,
                incarnation,
            },
        );
    }

    fn emit(&mut self, i: usize, action: Act<S>) {
        match action {
            Action::Send { to, msg } => {
                let mut targets = std::mem::take(&mut self.route_buf);
                self.topo.route(i, to, &msg, &mut targets);
                if let Some((&last, rest)) = targets.split_last() {
                    for &j in rest {
                        self.send(i, j, Payload::Msg(msg.clone()));
                    }
                    self.send(i, last, Payload::Msg(msg));
                }
                targets.clear();
                self.route_buf = targets;
            }
            Action::Reply {
                client,
                seq,
                slot,
                output,
            } => {
                if let Some(c) = self.reached_by_reply(client, i) {
                    if let Some(delay) = self.client_link(i) {
                        self.schedule(
                            self.now + delay,
                            Ev::Reply {
                                client: c,
                                seq,
                                slot,
                                output,
                            },
                        );
                    }
                }
            }
            Action::Event(Event::Dropped {
                client,
                seq,
                reason: DropReason::NotLeader { leader },
            }) => {
                if let Some(c) = self.connected(client, i) {
                    if let Some(delay) = self.client_link(i) {
                        self.schedule(
                            self.now + delay,
                            Ev::Refused {
                                client: c,
                                seq,
                                leader,
                            },
                        );
                    }
                }
            }
            Action::SendSnapshot { to } => {
                // Taken now: a later snapshot than the one asked for only
                // reaches further.
                let snapshot = self.nodes[i].server.as_ref().and_then(Proc::snapshot);
                if let (Some(j), Some(snapshot)) = (self.topo.server_index(to), snapshot) {
                    self.stats.snapshots_sent += 1;
                    self.send(i, j, Payload::Snapshot(Box::new(snapshot)));
                }
            }
            Action::Event(_)
            | Action::Deliver { .. }
            | Action::Persist(_)
            | Action::PersistSnapshot { .. } => {}
        }
    }

    /// The client with id `client`, if it is connected to node `i`.
    fn connected(&self, client: ClientId, i: usize) -> Option<usize> {
        let c = usize::try_from(client).ok()?.checked_sub(1)?;
        (self.clients.get(c)?.target == i).then_some(c)
    }

    /// The client with id `client`, if a reply from process `i` reaches it.
    fn reached_by_reply(&self, client: ClientId, i: usize) -> Option<usize> {
        let c = usize::try_from(client).ok()?.checked_sub(1)?;
        self.topo
            .reply_reaches(i, self.clients.get(c)?.target)
            .then_some(c)
    }

    /// Delay of a message between node `i` and a client, or `None` if lost.
    fn client_link(&mut self, i: usize) -> Option<u64> {
        match self.net.fate(i, None, self.now) {
            Fate::Lost => None,
            Fate::Once(d) | Fate::Twice(d, _) => Some(d),
        }
    }

    /// Sends a message or snapshot through the faulty network.
    fn send(&mut self, from: usize, to: usize, payload: Payload<S>) {
        let sent_at = self.now;
        if matches!(payload, Payload::Msg(_)) {
            self.stats.sent += 1;
        }
        let fate = self.net.fate(from, Some(to), sent_at);
        if let (Payload::Msg(msg), Fate::Once(_) | Fate::Twice(..)) = (&payload, &fate) {
            // What a storm may replay later: messages that got through.
            self.net.remember(from, to, msg);
        }
        match fate {
            Fate::Lost => {
                self.stats.lost += 1;
                self.record_transfer(EventKind::Lost, from, to, sent_at, &payload);
            }
            Fate::Once(d) => self.schedule(
                sent_at + d,
                Ev::Net {
                    from,
                    to,
                    sent_at,
                    payload,
                },
            ),
            Fate::Twice(d1, d2) => {
                self.schedule(
                    sent_at + d1,
                    Ev::Net {
                        from,
                        to,
                        sent_at,
                        payload: payload.clone(),
                    },
                );
                self.schedule(
                    sent_at + d2,
                    Ev::Net {
                        from,
                        to,
                        sent_at,
                        payload,
                    },
                );
            }
        }
    }

    fn on_sync(&mut self, i: usize, incarnation: u32) {
        if self.nodes[i].incarnation != incarnation || !self.nodes[i].is_up() {
            return;
        }
        self.hash.add(i as u64);
        let node = &mut self.nodes[i];
        node.sync_pending = false;
        let records = std::mem::take(&mut node.disk.unsynced);
        if let Some(snapshot) = node.unsynced_snapshot.take() {
            node.snapshot = Some(snapshot);
        }
        let held = std::mem::take(&mut node.held);
        for record in &records {
            self.made_durable(i, record);
        }
        self.nodes[i].disk.synced.extend(records);
        for action in held {
            self.emit(i, action);
        }
        self.check_node(i);
    }

    /// A record of node `i` is now on disk for good: the oracle counts votes
    /// and the promise checker learns the floor for restarts.
    fn made_durable(&mut self, i: usize, record: &Record<Cmd<S>>) {
        match record {
            Record::Promised(b) => self.promises.made_durable(i, *b),
            Record::Accepted(pv) => {
                self.promises.made_durable(i, pv.ballot);
                let Some(bit) = self.topo.acceptor_bit(i) else {
                    return;
                };
                match self.oracle.vote(bit, pv.slot, pv.ballot, &pv.value) {
                    Ok(true) => {
                        let slot = pv.slot;
                        self.record(EventKind::Chosen, Some(i), || {
                            format!("slot {slot} chosen in ballot {}", pv.ballot)
                        });
                        self.advance_reference();
                    }
                    Ok(false) => {}
                    Err(f) => self.fail(f),
                }
            }
            Record::Trimmed(_) | Record::Campaign(_) => {}
        }
    }

    fn advance_reference(&mut self) {
        while self.reference.next_slot() < self.oracle.prefix() {
            let slot = self.reference.next_slot();
            let value = self.oracle.chosen(slot).expect("below the chosen prefix");
            self.reference
                .apply_slot(value.commands(), |s: &mut S, c: &Tagged<S::Command>| {
                    s.apply(&c.op)
                });
        }
    }

    /// Cheap per-step checks of node `i`: promises, executions, and (once its
    /// writes are durable, so that what it did may be seen) its deliveries.
    fn check_node(&mut self, i: usize) {
        if let Err(f) = self.check_node_inner(i) {
            self.fail(f);
        }
    }

    fn check_node_inner(&mut self, i: usize) -> Result<(), Failure> {
        let node = &mut self.nodes[i];
        let Some(server) = node.server.as_ref() else {
            return Ok(());
        };
        if let Some(promised) = server.promised() {
            self.promises.observe(i, promised)?;
        }
        let journal = server.journal();
        for &(client, seq) in &journal[node.journal_seen..] {
            self.executions.executed(i, client, seq)?;
        }
        node.journal_seen = journal.len();
        if !node.disk.unsynced.is_empty() {
            return Ok(());
        }
        if let Some(promised) = server.promised() {
            self.promises.settled(i, promised);
        }
        let Some(learner) = server.learner() else {
            return Ok(());
        };
        let next = learner.next_slot();
        for slot in self.deliveries.next(i)..next {
            match learner.decided(slot) {
                None if slot + self.retain_slots < next => {
                    self.deliveries.delivered_unseen(i, slot)?;
                }
                value => self.deliveries.delivered(i, slot, value, &self.oracle)?,
            }
        }
        self.executions
            .follow_reference(i, journal, &self.reference.order)
    }

    fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if !node.is_up() {
            return;
        }
        node.server = None;
        node.incarnation += 1;
        node.held.clear();
        node.sync_pending = false;
        node.paused_until = 0;
        node.slow_until = 0;
        let lost = std::mem::take(&mut node.disk.unsynced);
        let lost_snapshot = node.unsynced_snapshot.take();
        let incarnation = node.incarnation;
        let lost_count = lost.len();
        self.stats.crashes += 1;
        if self.opts.faults.contains(Fault::Disk) {
            // Writes reach the disk in any order before the fsync returns.
            let keep = self.opts.rates.get(Fault::Disk);
            for record in lost {
                if self.disk_rng.chance(keep) {
                    self.made_durable(i, &record);
                    self.nodes[i].disk.synced.push(record);
                }
            }
            // An installed snapshot is renamed into place whole, or not at all.
            if let Some(snapshot) = lost_snapshot {
                if self.disk_rng.chance(keep) {
                    self.nodes[i].snapshot = Some(snapshot);
                }
            }
        }
        self.record(EventKind::Crash, Some(i), || {
            format!("crash; {lost_count} unsynced write(s) at risk")
        });
        let down = self.fault_rng.between(DOWN_TICKS.0, DOWN_TICKS.1) * TICK_UNITS;
        self.schedule(
            self.now + down,
            Ev::Restart {
                node: i,
                incarnation,
            },
        );
    }

    fn restart(&mut self, i: usize, incarnation: u32) {
        let node = &self.nodes[i];
        if node.is_up() || node.incarnation != incarnation {
            return;
        }
        let forget = self.opts.sabotage == Sabotage::ForgetDisk;
        let records = node.disk.synced.iter().filter(|_| !forget).cloned();
        let snapshot = node.snapshot.clone().filter(|_| !forget);
        let server = match Proc::recover(
            &self.topo,
            i,
            self.opts.seed,
            incarnation,
            snapshot,
            records,
        ) {
            Ok(s) => s,
            Err(e) => {
                return self.fail(Failure {
                    invariant: Invariant::Durability,
                    detail: format!("cannot recover from the disk: {e}"),
                });
            }
        };
        let promised = server.promised();
        let resume_at = server.learner().map_or(0, |l| l.next_slot());
        let node = &mut self.nodes[i];
        node.server = Some(server);
        node.journal_seen = 0;
        self.deliveries.restarted(i, resume_at);
        self.executions.restarted(i);
        if let Some(promised) = promised {
            if let Err(f) = self.promises.restarted(i, promised) {
                return self.fail(f);
            }
        }
        self.record(EventKind::Restart, Some(i), || {
            format!("restart, promised {promised:?}")
        });
        let first = self.now + self.fault_rng.below(TICK_UNITS);
        self.schedule(
            first,
            Ev::Tick {
                node: i,
                incarnation,
            },
        );
    }

    // ---- clients ----------------------------------------------------------

    fn on_client_next(&mut self, c: usize) {
        if self.healed {
            self.clients[c].retired = true;
            self.finish_if_idle();
            return;
        }
        if self.opts.core_clients {
            let target = self.clients[c].target;
            let ready = self.nodes[target]
                .server
                .as_ref()
                .is_some_and(Proc::is_ready);
            if !ready {
                // It has not heard a leader yet: try again a tick later.
                self.schedule(self.now + TICK_UNITS, Ev::ClientNext { client: c });
                return;
            }
        }
        let client = &mut self.clients[c];
        client.seq += 1;
        let (id, seq) = (client.id, client.seq);
        let op = S::random_op(&mut self.client_rng, id, seq);
        self.oracle.proposed(
            id,
            seq,
            Tagged {
                client: id,
                seq,
                op: op.clone(),
            },
        );
        let request = self.history.invoke(id, seq, op.clone(), self.now);
        self.stats.invoked += 1;
        self.clients[c].outstanding = Some(Outstanding {
            seq,
            op,
            attempt: 0,
            request,
        });
        self.submit(c);
    }

    /// Sends the outstanding request of client `c` to its target node (or,
    /// for a self-learning client, hands it to its process, which retries
    /// by itself).
    fn submit(&mut self, c: usize) {
        if self.opts.core_clients {
            let client = &mut self.clients[c];
            let Some(out) = client.outstanding.as_mut() else {
                return;
            };
            let cmd = Command {
                client: client.id,
                seq: out.seq,
                op: Tagged {
                    client: client.id,
                    seq: out.seq,
                    op: out.op.clone(),
                },
            };
            let target = client.target;
            self.step_node(target, Input::Propose(cmd));
            return;
        }
        let client = &mut self.clients[c];
        let Some(out) = client.outstanding.as_mut() else {
            return;
        };
        out.attempt += 1;
        let (seq, attempt, node) = (out.seq, out.attempt, client.target);
        let cmd = Command {
            client: client.id,
            seq,
            op: Tagged {
                client: client.id,
                seq,
                op: out.op.clone(),
            },
        };
        let id = client.id;
        self.record(EventKind::Invoke, None, || {
            format!("client {id} sends request {seq} to node {node} (attempt {attempt})")
        });
        if let Some(delay) = self.client_link(node) {
            let sent_at = self.now;
            self.schedule(
                sent_at + delay,
                Ev::Propose {
                    node,
                    client: c,
                    sent_at,
                    cmd,
                },
            );
        }
        self.schedule(
            self.now + CLIENT_RETRY_TICKS * TICK_UNITS,
            Ev::ClientTimer {
                client: c,
                seq,
                attempt,
                retarget: true,
            },
        );
    }

    fn on_propose(&mut self, i: usize, c: usize, sent_at: u64, cmd: Command<Cmd<S>>) {
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
                    sent_at,
                    cmd,
                },
            );
            return;
        }
        self.step_node(i, Input::Propose(cmd));
    }

    fn on_reply(&mut self, c: usize, seq: u64, slot: Slot, output: Out<S>) {
        self.hash.add(((c as u64) << 32) | seq);
        let client = &mut self.clients[c];
        let Some(out) = client.outstanding.take_if(|o| o.seq == seq) else {
            return;
        };
        self.hash.add(slot);
        let id = client.id;
        self.record(EventKind::Complete, None, || {
            format!("client {id} request {seq} done: slot {slot}, output {output:?}")
        });
        self.history
            .complete(out.request, self.now, slot, Some(output));
        let think = self.client_rng.below(THINK_TICKS_MAX * TICK_UNITS);
        self.schedule(self.now + think, Ev::ClientNext { client: c });
    }

    fn on_refused(&mut self, c: usize, seq: u64, leader: Option<NodeId>) {
        let hint = leader.and_then(|l| self.topo.proposer_index(l));
        let entry = self.topo.entry_points();
        let client = &mut self.clients[c];
        let Some(out) = client.outstanding.as_ref().filter(|o| o.seq == seq) else {
            return;
        };
        let attempt = out.attempt;
        client.target = match hint {
            Some(j) if j != client.target => j,
            _ => entry.start + self.client_rng.below(entry.len() as u64) as usize,
        };
        // Retry soon, at the hinted node, instead of waiting for the timeout.
        self.schedule(
            self.now + TICK_UNITS,
            Ev::ClientTimer {
                client: c,
                seq,
                attempt,
                retarget: false,
            },
        );
    }

    fn on_client_timer(&mut self, c: usize, seq: u64, attempt: u32, retarget: bool) {
        let entry = self.topo.entry_points();
        let n = entry.len() as u64;
        let client = &mut self.clients[c];
        let Some(out) = client.outstanding.as_ref() else {
            return;
        };
        if out.seq != seq || out.attempt != attempt {
            return;
        }
        self.hash.add(((c as u64) << 32) | u64::from(attempt));
        if retarget && n > 1 {
            // The node may be down or cut off: try any other one.
            let step = 1 + self.client_rng.below(n - 1) as usize;
            client.target = entry.start + (client.target - entry.start + step) % n as usize;
        }
        self.submit(c);
    }

    fn finish_if_idle(&mut self) {
        if self.healed && self.clients.iter().all(|c| c.retired) {
            self.finished = true;
            let heal_at = self.opts.heal_tick * TICK_UNITS;
            self.stats.settle_ticks_max = self.now.saturating_sub(heal_at).div_ceil(TICK_UNITS);
        }
    }

    // ---- faults -----------------------------------------------------------

    fn on_fault_tick(&mut self) {
        if self.healed {
            return;
        }
        let n = self.nodes.len();
        let faults = self.opts.faults;
        let rates = self.opts.rates;
        let now = self.now;
        for fault in faults.iter() {
            if matches!(
                fault,
                Fault::Drop | Fault::Duplicate | Fault::Reorder | Fault::Skew | Fault::Disk
            ) {
                continue;
            }
            if !self.fault_rng.chance(rates.get(fault)) {
                continue;
            }
            let victim = self.fault_rng.below(self.topo.servers() as u64) as usize;
            match fault {
                Fault::Partition | Fault::OneWay => {
                    if n < 2 {
                        continue;
                    }
                    let group = 1 + self.fault_rng.below((1 << n) - 2);
                    let until = now + self.fault_rng.between(CUT_TICKS.0, CUT_TICKS.1) * TICK_UNITS;
                    let both = fault == Fault::Partition;
                    self.net.cut_groups(group, both, until);
                    self.record(EventKind::Fault, None, || {
                        format!(
                            "{} {{{}}} until t={until}",
                            if both {
                                "partition"
                            } else {
                                "one-way cut from"
                            },
                            members(group, n)
                        )
                    });
                }
                Fault::Crash => self.crash(victim),
                Fault::Slow => {
                    let node = &mut self.nodes[victim];
                    node.slow_factor = self.fault_rng.between(SLOW_FACTOR.0, SLOW_FACTOR.1);
                    node.slow_until =
                        now + self.fault_rng.between(SLOW_TICKS.0, SLOW_TICKS.1) * TICK_UNITS;
                    let (f, u) = (node.slow_factor, node.slow_until);
                    self.record(EventKind::Fault, Some(victim), || {
                        format!("node {victim} slow x{f} until t={u}")
                    });
                }
                Fault::Isolate => {
                    let leader = (0..n)
                        .find(|&i| self.nodes[i].server.as_ref().is_some_and(|s| s.is_leader()))
                        .unwrap_or(victim);
                    let until =
                        now + self.fault_rng.between(ISOLATE_TICKS.0, ISOLATE_TICKS.1) * TICK_UNITS;
                    self.net.cut_groups(1 << leader, true, until);
                    self.record(EventKind::Fault, Some(leader), || {
                        format!("leader node {leader} isolated until t={until}")
                    });
                }
                Fault::Storm => {
                    let count = self.fault_rng.between(STORM_MESSAGES.0, STORM_MESSAGES.1);
                    let len = self.net.ring.len() as u64;
                    if len == 0 {
                        continue;
                    }
                    self.record(EventKind::Fault, None, || {
                        format!("storm of {count} old messages")
                    });
                    for _ in 0..count {
                        let k = self.fault_rng.below(len) as usize;
                        let (from, to, msg) = self.net.ring[k].clone();
                        let delay = self.fault_rng.below(2 * TICK_UNITS) + 1;
                        self.schedule(
                            now + delay,
                            Ev::Net {
                                from,
                                to,
                                sent_at: now,
                                payload: Payload::Msg(msg),
                            },
                        );
                    }
                }
                Fault::Pause => {
                    let node = &mut self.nodes[victim];
                    if node.is_up() {
                        node.paused_until =
                            now + self.fault_rng.between(PAUSE_TICKS.0, PAUSE_TICKS.1) * TICK_UNITS;
                        let u = node.paused_until;
                        self.record(EventKind::Pause, Some(victim), || {
                            format!("node {victim} paused until t={u}")
                        });
                    }
                }
                Fault::Drop | Fault::Duplicate | Fault::Reorder | Fault::Skew | Fault::Disk => {}
            }
        }
        self.schedule(now + TICK_UNITS, Ev::FaultTick);
    }

    /// Every fault stops: cuts lift, skew and slowness end, crashed nodes
    /// restart now. A pause already under way runs out (at most
    /// `PAUSE_TICKS.1`), as a stall that has begun would.
    fn on_heal(&mut self) {
        self.healed = true;
        self.net.heal();
        self.record(EventKind::Heal, None, || "heal: every fault stops".into());
        for i in 0..self.nodes.len() {
            let node = &mut self.nodes[i];
            node.tick_units = TICK_UNITS;
            node.slow_until = 0;
            if !node.is_up() {
                let incarnation = node.incarnation;
                self.restart(i, incarnation);
            }
        }
        if self.clients.is_empty() {
            self.finished = true;
        }
    }
}

fn members(group: u64, n: usize) -> String {
    (0..n)
        .filter(|i| group & (1 << i) != 0)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A one-line description of a message, for traces and diagrams.
pub fn describe<C>(msg: &Message<C>) -> String {
    match msg {
        Message::Prepare { ballot, from_slot } => format!("prepare {ballot} from slot {from_slot}"),
        Message::Promise {
            ballot,
            trimmed_below,
            accepted,
        } => format!(
            "promise {ballot} ({} accepted, trimmed below {trimmed_below})",
            accepted.len()
        ),
        Message::Nack { ballot, promised } => format!("nack {ballot}: promised {promised}"),
        Message::Accept {
            ballot,
            slot,
            value,
            commit,
        } => format!(
            "accept {ballot} slot {slot} ({} cmds) commit {commit}",
            value.commands().len()
        ),
        Message::Accepted { ballot, slot, .. } => format!("accepted {ballot} slot {slot}"),
        Message::Heartbeat { ballot, commit } => format!("heartbeat {ballot} commit {commit}"),
        Message::CatchUp { from_slot, to_slot } => format!("catch-up {from_slot}..{to_slot}"),
        Message::Decided { first_slot, values } => {
            format!("decided {first_slot}..{}", first_slot + values.len() as u64)
        }
        Message::Forward { commands } => format!("forward {} cmds", commands.len()),
    }
}

/// Runs one simulation of `S` with `opts`.
pub fn run<S: SimMachine>(opts: Options) -> Result<Outcome, String> {
    Ok(Sim::<S>::new(opts)?.run())
}
