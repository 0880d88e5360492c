//! paxos-core's `Server` in the harness. This is the only file that names
//! paxos-core's API: porting the bench to a new API means editing this file.

use crate::harness::{Cluster, Compactions, Envelope, Outbox, Settings, REPLICAS};
use paxos_core::{
    Action, Command, Config, Destination, Event, Input, Message, NodeId, Process, Record, Server,
    ServerAction, ServerInput, ServerMessage, ServerSnapshot, StateMachine,
};

/// What the replicas send each other.
type Msg = ServerMessage<InOrder>;

/// The replicated state machine: it only checks that commands arrive as
/// 0, 1, 2, … and counts them.
#[derive(Clone, Debug, Default)]
pub struct InOrder {
    next: u64,
}

impl StateMachine for InOrder {
    type Command = u64;
    type Output = ();

    fn apply(&mut self, command: &u64) {
        assert_eq!(*command, self.next, "paxos-core applied out of order");
        self.next += 1;
    }
}

/// One replica's durable state, kept in memory: the base snapshot and every
/// record persisted since.
#[derive(Debug, Default)]
struct Disk {
    snapshot: Option<ServerSnapshot<InOrder>>,
    log: Vec<Record<u64>>,
}

/// Three `Server`s, their in-memory logs, and a reused action buffer.
#[derive(Debug)]
pub struct PaxosCore {
    servers: Vec<Server<InOrder>>,
    disks: Vec<Disk>,
    actions: Vec<ServerAction<InOrder>>,
    compactions: Compactions,
}

impl PaxosCore {
    /// The settings of replica `index`: paxos-core's defaults, except a seed
    /// per replica (a deployment gives each node its own) and a trim distance
    /// short enough that a replica snapshots within `compact_every` commands.
    pub fn config(index: usize, settings: &Settings) -> Config {
        let members = (0..REPLICAS as u32).map(NodeId).collect();
        let mut config = Config::new(NodeId(index as u32), members).with_seed(index as u64);
        // The server snapshots once every `retain_slots` slots, and a slot
        // holds at most min(N, batch_max) commands of a round of N.
        let per_slot = settings.per_round.min(config.batch_max as u64).max(1);
        config.retain_slots = (settings.compact_every / per_slot).max(1);
        config
    }

    /// paxos-core's defaults apart from a seed per replica: what the
    /// memory run uses.
    pub fn default_config(index: usize) -> Config {
        let members = (0..REPLICAS as u32).map(NodeId).collect();
        Config::new(NodeId(index as u32), members).with_seed(index as u64)
    }

    /// Three servers with the given configurations (one per replica, in
    /// order) and empty logs.
    pub fn with_configs(configs: Vec<Config>) -> Self {
        assert_eq!(configs.len(), REPLICAS, "one configuration per replica");
        let servers = configs
            .into_iter()
            .map(|config| Server::new(config, InOrder::default()).expect("valid config"))
            .collect();
        PaxosCore {
            servers,
            disks: (0..REPLICAS).map(|_| Disk::default()).collect(),
            actions: Vec::new(),
            compactions: Compactions::default(),
        }
    }

    /// Per replica: commands in the chosen values its learner retains and
    /// in the votes its acceptor holds (at or above its trim point).
    pub fn retained_commands(&self) -> Vec<(u64, u64)> {
        self.servers
            .iter()
            .map(|s| {
                let roles = s.inspect();
                (
                    roles.learner().retained_commands(),
                    roles.acceptor().retained_commands(),
                )
            })
            .collect()
    }

    /// Steps replica `node` and performs its actions in order, as a driver
    /// would: records and snapshots go to its log, sends go to `out`. After
    /// a step that persisted a snapshot the adapter asks for a checkpoint
    /// and replaces the log by it, the way a driver keeps its log short.
    fn step(&mut self, node: usize, input: ServerInput<InOrder>, out: &mut Outbox<Msg>) {
        if self.perform(node, input, out) {
            self.perform(node, Input::Checkpoint, out);
        }
    }

    /// One step of replica `node`; true if it persisted a snapshot.
    fn perform(&mut self, node: usize, input: ServerInput<InOrder>, out: &mut Outbox<Msg>) -> bool {
        let mut actions = std::mem::take(&mut self.actions);
        self.servers[node].step_into(input, &mut actions);
        let mut snapshotted = false;
        for action in actions.drain(..) {
            match action {
                Action::Persist(record) => self.disks[node].log.push(record),
                Action::PersistSnapshot(snapshot) => {
                    self.disks[node].snapshot = Some(*snapshot);
                    snapshotted = true;
                }
                Action::Compact(checkpoint) => {
                    let disk = &mut self.disks[node];
                    disk.snapshot = checkpoint.snapshot;
                    disk.log = checkpoint.records;
                    let applied = self.servers[node].state().next;
                    self.compactions.record(node, applied);
                }
                Action::Send {
                    msg: Message::Snapshot(_),
                    to,
                } => {
                    panic!("paxos-core: {to} fell behind in lock-step rounds")
                }
                Action::Send { to, msg } => route(node, to, msg, out),
                Action::Event(Event::Dropped { seq, reason, .. }) => {
                    panic!("paxos-core dropped command {seq}: {reason:?}")
                }
                Action::Deliver { .. }
                | Action::Reply { .. }
                | Action::ReadReply { .. }
                | Action::Event(_) => {}
            }
        }
        self.actions = actions;
        snapshotted
    }
}

/// Puts a send on the wire: a group destination means every other replica,
/// and the message is cloned for all of them but the last.
fn route(from: usize, to: Destination, msg: Msg, out: &mut Outbox<Msg>) {
    if let Destination::To(addr) = to {
        out.push(Envelope {
            from,
            to: addr.id.0 as usize,
            msg,
        });
        return;
    }
    let last = if from == REPLICAS - 1 {
        REPLICAS - 2
    } else {
        REPLICAS - 1
    };
    for to in (0..REPLICAS).filter(|&to| to != from && to != last) {
        out.push(Envelope {
            from,
            to,
            msg: msg.clone(),
        });
    }
    out.push(Envelope {
        from,
        to: last,
        msg,
    });
}

impl Cluster for PaxosCore {
    type Msg = Msg;
    const NAME: &'static str = "paxos-core";

    fn new(settings: Settings) -> Self {
        PaxosCore::with_configs(
            (0..REPLICAS)
                .map(|index| PaxosCore::config(index, &settings))
                .collect(),
        )
    }

    fn tick(&mut self, node: usize, out: &mut Outbox<Self::Msg>) {
        self.step(node, Input::Tick, out);
    }

    fn propose(&mut self, node: usize, command: u64, out: &mut Outbox<Self::Msg>) {
        let command = Command {
            client: 1,
            seq: command + 1,
            op: command,
        };
        self.step(node, Input::Propose(command), out);
    }

    fn deliver(&mut self, from: usize, to: usize, msg: Self::Msg, out: &mut Outbox<Self::Msg>) {
        let from = Process::server(NodeId(from as u32));
        self.step(to, Input::Receive { from, msg }, out);
    }

    fn flush(&mut self, _node: usize, _out: &mut Outbox<Self::Msg>) {
        // Every step's actions were performed as they came out.
    }

    fn leader(&self) -> Option<usize> {
        let leader = self.servers.iter().position(|s| s.is_leader())?;
        let id = self.servers[leader].id();
        self.servers
            .iter()
            .all(|s| s.leader() == Some(id))
            .then_some(leader)
    }

    fn applied(&self, node: usize) -> u64 {
        self.servers[node].state().next
    }

    fn log_len(&self, node: usize) -> usize {
        self.disks[node].log.len()
    }

    fn compactions(&mut self) -> &mut Compactions {
        &mut self.compactions
    }
}
