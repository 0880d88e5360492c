//! A tiny deterministic network for cluster tests: servers, a seeded wire that
//! can reorder, drop and duplicate, disks that survive crashes, and clients that
//! retry. `paxos-sim` is the full simulator; this is just enough for the core.
#![allow(dead_code)]

use paxos_core::{
    Action, Command, Config, Destination, Input, NodeId, Process, Record, Server, ServerAction,
    ServerInput, ServerMessage, Snapshot, StateMachine,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

/// The replicated application: an append-only list of numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Log(pub Vec<u64>);

impl StateMachine for Log {
    type Command = u64;
    type Output = usize;
    fn apply(&mut self, n: &u64) -> usize {
        self.0.push(*n);
        self.0.len()
    }
    /// [`READ_LEN`] reads the log's length; anything else is a write.
    fn read(&self, query: &u64) -> Option<usize> {
        (*query == READ_LEN).then_some(self.0.len())
    }
}

/// The one read-only query of [`Log`]: its length.
pub const READ_LEN: u64 = u64::MAX;

/// A read's answer as a client saw it: the node, the slot it was served
/// at, the output; or the refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadAnswer {
    Served { node: usize, slot: u64, len: usize },
    Refused(paxos_core::ReadRefusal),
}

/// Fault rates, in parts per thousand per message.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub drop_permille: u32,
    pub duplicate_permille: u32,
}

/// What travels between nodes: protocol messages, snapshots among them.
pub type Msg = ServerMessage<Log>;

/// Ticks a client waits for its reply before resubmitting elsewhere.
pub const CLIENT_RETRY_TICKS: u64 = 30;

#[derive(Debug)]
pub struct Pending {
    op: u64,
    sent_at: u64,
    via: usize,
}

pub struct Net {
    pub ids: Vec<NodeId>,
    pub nodes: Vec<Option<Server<Log>>>,
    pub disks: Vec<Vec<Record<u64>>>,
    /// Each node's durable snapshot; its disk then holds what came after it.
    pub snapshots: Vec<Option<Snapshot<Log, usize>>>,
    configs: Vec<Config>,
    wire: Vec<(NodeId, NodeId, Msg)>,
    /// Nodes cut off from every other: what they send or are sent is lost.
    pub isolated: BTreeSet<NodeId>,
    rng: ChaCha8Rng,
    pub faults: Faults,
    pub now: u64,
    /// client -> (seq, pending request)
    pub pending: BTreeMap<u64, (u64, Pending)>,
    /// Acknowledged (client, seq) -> slot of the reply.
    pub acked: BTreeMap<(u64, u64), u64>,
    pub submitted: Vec<u64>,
    pub delivered_messages: u64,
    /// Next sequence number per client: sessions outlive one workload.
    pub next_seq: BTreeMap<u64, u64>,
    /// Operations whose clients got a reply.
    pub acked_ops: Vec<u64>,
    /// Messages delivered, by kind.
    pub delivered_kinds: BTreeMap<&'static str, u64>,
    /// Answers to reads, by (client, id).
    pub reads: BTreeMap<(u64, u64), ReadAnswer>,
}

impl Net {
    pub fn new(n: u32, seed: u64) -> Self {
        Net::with_config(n, seed, |_| {})
    }

    pub fn with_config(n: u32, seed: u64, tweak: impl Fn(&mut Config)) -> Self {
        Net::with_spares(n, 0, seed, tweak)
    }

    /// `n` members plus `spares` servers outside the configuration (ids
    /// `n + 1 ..`), which start as learners: what a membership change adds.
    pub fn with_spares(n: u32, spares: u32, seed: u64, tweak: impl Fn(&mut Config)) -> Self {
        let members: Vec<NodeId> = (1..=n).map(NodeId).collect();
        let ids: Vec<NodeId> = (1..=n + spares).map(NodeId).collect();
        let configs: Vec<Config> = ids
            .iter()
            .map(|&id| {
                let mut c = Config::new(id, members.clone()).with_seed(seed);
                tweak(&mut c);
                c
            })
            .collect();
        let nodes = configs
            .iter()
            .map(|c| Some(Server::new(c.clone(), Log::default()).expect("valid config")))
            .collect();
        Net {
            disks: vec![Vec::new(); ids.len()],
            snapshots: vec![None; ids.len()],
            isolated: BTreeSet::new(),
            ids,
            nodes,
            configs,
            wire: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5EED),
            faults: Faults::default(),
            now: 0,
            pending: BTreeMap::new(),
            acked: BTreeMap::new(),
            submitted: Vec::new(),
            delivered_messages: 0,
            next_seq: BTreeMap::new(),
            acked_ops: Vec::new(),
            delivered_kinds: BTreeMap::new(),
            reads: BTreeMap::new(),
        }
    }

    fn index(&self, id: NodeId) -> usize {
        self.ids.iter().position(|&i| i == id).expect("known node")
    }

    pub fn leader(&self) -> Option<usize> {
        let leaders: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].as_ref().is_some_and(|n| n.is_leader()))
            .collect();
        // Two nodes may both think they lead for a moment; the higher ballot wins.
        leaders
            .into_iter()
            .max_by_key(|&i| self.nodes[i].as_ref().map(|n| n.ballot()))
    }

    /// Performs the actions of a step a test made itself.
    #[allow(dead_code)]
    pub fn perform_for_test(&mut self, at: usize, actions: Vec<ServerAction<Log>>) {
        self.perform(at, actions);
    }

    fn perform(&mut self, at: usize, actions: Vec<ServerAction<Log>>) {
        let from = self.ids[at];
        for action in actions {
            match action {
                // The disk is synchronous here: a record is durable the moment
                // it is persisted, so later sends are always safe.
                Action::Persist(r) => self.disks[at].push(r),
                Action::PersistSnapshot(snapshot) => self.snapshots[at] = Some(*snapshot),
                // Synchronous too: the new base replaces the log at once.
                Action::Compact(c) => {
                    self.snapshots[at] = c.snapshot;
                    self.disks[at] = c.records;
                }
                Action::Send { to, msg } => {
                    assert!(
                        !matches!(to, Destination::To(a) if a.id == from),
                        "a server delivers to itself without a send"
                    );
                    for &peer in &self.ids {
                        if peer != from && to.reaches(&Process::server(peer)) {
                            self.wire.push((from, peer, msg.clone()));
                        }
                    }
                }
                Action::Reply {
                    client, seq, slot, ..
                } => {
                    if let Some((s, _)) = self.pending.get(&client) {
                        if *s == seq {
                            let (_, p) = self.pending.remove(&client).expect("just seen");
                            self.acked_ops.push(p.op);
                            let prev = self.acked.insert((client, seq), slot);
                            assert!(
                                prev.is_none_or(|p| p == slot),
                                "a command was answered from two slots"
                            );
                        }
                    }
                }
                Action::ReadReply {
                    client,
                    id,
                    slot,
                    output,
                } => {
                    let answer = ReadAnswer::Served {
                        node: at,
                        slot,
                        len: output,
                    };
                    let prev = self.reads.insert((client, id), answer);
                    assert!(prev.is_none(), "a read was answered twice");
                }
                Action::Event(paxos_core::Event::ReadRefused { client, id, reason }) => {
                    let prev = self.reads.insert((client, id), ReadAnswer::Refused(reason));
                    assert!(prev.is_none(), "a read was answered twice");
                }
                Action::Deliver { .. } | Action::Event(_) => {}
            }
        }
    }

    pub fn step_node(&mut self, i: usize, input: ServerInput<Log>) {
        if let Some(node) = self.nodes[i].as_mut() {
            let actions = node.step(input);
            self.perform(i, actions);
        }
    }

    /// A client submits `op` as request `seq` through node `via`.
    pub fn submit(&mut self, client: u64, seq: u64, op: u64, via: usize) {
        self.submitted.push(op);
        self.pending.insert(
            client,
            (
                seq,
                Pending {
                    op,
                    sent_at: self.now,
                    via,
                },
            ),
        );
        self.step_node(via, Input::Propose(Command { client, seq, op }));
    }

    /// A client reads the log's length through node `via`.
    pub fn read(&mut self, client: u64, id: u64, via: usize) {
        self.step_node(
            via,
            Input::Read {
                client,
                id,
                query: READ_LEN,
            },
        );
    }

    pub fn idle_clients(&self, clients: u64) -> Vec<u64> {
        (0..clients)
            .filter(|c| !self.pending.contains_key(c))
            .collect()
    }

    pub fn all_acked(&self) -> bool {
        self.pending.is_empty()
    }

    /// One tick everywhere, then deliver messages until the wire is empty or
    /// `budget` deliveries were made. Clients resubmit overdue requests.
    pub fn round(&mut self, budget: usize) {
        self.now += 1;
        for i in 0..self.nodes.len() {
            self.step_node(i, Input::Tick);
        }
        let overdue: Vec<(u64, u64, u64, usize)> = self
            .pending
            .iter()
            .filter(|(_, (_, p))| self.now - p.sent_at >= CLIENT_RETRY_TICKS)
            .map(|(&c, (s, p))| (c, *s, p.op, p.via))
            .collect();
        for (client, seq, op, via) in overdue {
            let next = (via + 1) % self.nodes.len();
            self.pending.insert(
                client,
                (
                    seq,
                    Pending {
                        op,
                        sent_at: self.now,
                        via: next,
                    },
                ),
            );
            self.step_node(next, Input::Propose(Command { client, seq, op }));
        }
        for _ in 0..budget {
            if self.wire.is_empty() {
                break;
            }
            let k = (self.rng.next_u64() % self.wire.len() as u64) as usize;
            let (from, to, msg) = self.wire.swap_remove(k);
            if self.isolated.contains(&from) || self.isolated.contains(&to) {
                continue;
            }
            if self.chance(self.faults.drop_permille) {
                continue;
            }
            if self.chance(self.faults.duplicate_permille) {
                self.wire.push((from, to, msg.clone()));
            }
            let t = self.index(to);
            self.delivered_messages += 1;
            *self.delivered_kinds.entry(msg.kind()).or_default() += 1;
            let from = Process::server(from);
            self.step_node(t, Input::Receive { from, msg });
        }
    }

    /// Asks node `i` to compact its log, as a driver whose log grew does.
    pub fn compact(&mut self, i: usize) {
        self.step_node(i, Input::Checkpoint);
    }

    fn chance(&mut self, permille: u32) -> bool {
        permille > 0 && (self.rng.next_u32() % 1000) < permille
    }

    pub fn heal(&mut self) {
        self.faults = Faults::default();
    }

    pub fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
        let id = self.ids[i];
        self.wire.retain(|(_, to, _)| *to != id);
    }

    pub fn restart(&mut self, i: usize) {
        let records = self.disks[i].clone();
        let config = self.configs[i].clone();
        let node = match self.snapshots[i].clone() {
            Some(snapshot) => Server::restore(config, snapshot, records),
            None => Server::recover(config, Log::default(), records),
        }
        .expect("records recover");
        self.nodes[i] = Some(node);
    }

    /// Runs rounds until `done` holds, up to `max_rounds`; true if it held.
    pub fn run_until(&mut self, max_rounds: usize, mut done: impl FnMut(&Net) -> bool) -> bool {
        for _ in 0..max_rounds {
            if done(self) {
                return true;
            }
            self.round(10_000);
        }
        done(self)
    }

    pub fn logs(&self) -> Vec<&Vec<u64>> {
        self.nodes.iter().flatten().map(|n| &n.state().0).collect()
    }

    /// Agreement and order: every live node's log is a prefix of the longest,
    /// and no value appears twice or was never submitted.
    pub fn check_consistent_log_prefixes(&self) {
        let logs = self.logs();
        let longest = logs
            .iter()
            .max_by_key(|l| l.len())
            .copied()
            .cloned()
            .unwrap_or_default();
        for log in &logs {
            assert_eq!(&longest[..log.len()], &log[..], "logs diverge");
        }
        let mut seen = std::collections::BTreeSet::new();
        for v in &longest {
            assert!(seen.insert(*v), "value {v} applied twice");
            assert!(self.submitted.contains(v), "value {v} was never submitted");
        }
    }

    /// Durability: once the cluster has converged, every acknowledged command
    /// is in every log.
    pub fn check_acknowledged_applied(&self) {
        for log in self.logs() {
            for op in &self.acked_ops {
                assert!(log.contains(op), "acknowledged value {op} is missing");
            }
        }
    }

    /// Agreement over the acceptors: no slot has two different values each
    /// accepted by a majority in the same ballot... checked more simply as: for
    /// every slot that any live node applied, every node that applied it agrees.
    pub fn check_logs_equal(&self) {
        let logs = self.logs();
        for log in &logs {
            assert_eq!(*log, logs[0], "logs differ after the cluster settled");
        }
    }
}
