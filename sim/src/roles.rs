//! The two process layouts: every node a full [`Server`], or the roles apart
//! (proposers, acceptors, learners as separate processes, as the multicast
//! driver runs them). [`Topology`] routes messages by role; [`Proc`] is one
//! process of either layout behind one interface.

use crate::cluster::Out;
use crate::cluster::{Act, Cmd};
use crate::model::{mix, Recorded, SimMachine};
use crate::options::Tuning;
use paxos_core::{
    Acceptor, Action, Ballot, ClientId, Config, Destination, Input, Learner, Message, NodeId,
    Proposer, Record, Replica, Server, Slot, Snapshot,
};

/// A server's replica snapshot, as the simulated disk keeps it.
pub type NodeSnapshot<S> = Snapshot<Recorded<S>, Out<S>>;

/// What replaces a server's whole log when it compacts.
#[derive(Debug)]
pub struct Compacted<S: SimMachine> {
    /// The replica's snapshot.
    pub snapshot: NodeSnapshot<S>,
    /// Records that rebuild its acceptor and proposer.
    pub records: Vec<Record<Cmd<S>>>,
}

/// How the roles are spread over processes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Every node hosts every role ([`Server`]); `nodes` of them.
    #[default]
    Servers,
    /// Roles apart: `proposers` proposers, `nodes` acceptors, `learners`
    /// learners (each with a replica that answers clients).
    Roles {
        /// Number of proposer processes.
        proposers: usize,
        /// Number of learner processes.
        learners: usize,
    },
}

/// The role of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// All roles in one.
    Server,
    /// Proposer only.
    Proposer,
    /// Acceptor only.
    Acceptor,
    /// Learner plus replica.
    Learner,
    /// A `paxos_core::Client` that learns for itself (roles apart only).
    Client,
}

/// Ids of client processes start above this, so that a `Decided` sent to a
/// client's id never reaches a learner of the same number.
pub const CLIENT_ID_BASE: u32 = 1_000_000;

impl Role {
    /// Short name for traces.
    pub fn name(self) -> &'static str {
        match self {
            Role::Server => "node",
            Role::Proposer => "proposer",
            Role::Acceptor => "acceptor",
            Role::Learner => "learner",
            Role::Client => "client",
        }
    }
}

/// Which process is what, and who receives a message.
#[derive(Clone, Debug)]
pub struct Topology {
    roles: Vec<Role>,
    ids: Vec<NodeId>,
    members: Vec<NodeId>,
    /// Index of the first process of each role apart (all zero for servers).
    proposers: (usize, usize),
    acceptors: (usize, usize),
    learners: (usize, usize),
    clients: (usize, usize),
    tuning: Tuning,
}

impl Topology {
    /// The processes of `layout` with `nodes` servers or acceptors.
    pub fn new(layout: Layout, nodes: usize) -> Self {
        match layout {
            Layout::Servers => {
                let ids: Vec<NodeId> = (1..=nodes as u32).map(NodeId).collect();
                Topology {
                    roles: vec![Role::Server; nodes],
                    members: ids.clone(),
                    ids,
                    proposers: (0, nodes),
                    acceptors: (0, nodes),
                    learners: (0, nodes),
                    clients: (nodes, nodes),
                    tuning: Tuning::default(),
                }
            }
            Layout::Roles {
                proposers,
                learners,
            } => {
                let mut roles = Vec::new();
                let mut ids = Vec::new();
                for (role, count) in [
                    (Role::Proposer, proposers),
                    (Role::Acceptor, nodes),
                    (Role::Learner, learners),
                ] {
                    roles.extend(std::iter::repeat_n(role, count));
                    ids.extend((1..=count as u32).map(NodeId));
                }
                let roles_len = roles.len();
                Topology {
                    roles,
                    ids,
                    members: (1..=nodes as u32).map(NodeId).collect(),
                    proposers: (0, proposers),
                    acceptors: (proposers, proposers + nodes),
                    learners: (proposers + nodes, proposers + nodes + learners),
                    clients: (roles_len, roles_len),
                    tuning: Tuning::default(),
                }
            }
        }
    }

    /// The same topology with `Config` defaults overridden by `tuning`.
    pub fn with_tuning(mut self, tuning: Tuning) -> Self {
        self.tuning = tuning;
        self
    }

    /// The same topology plus `count` client processes at the end, each a
    /// `paxos_core::Client` listening on the learners' group.
    pub fn with_core_clients(mut self, count: usize) -> Self {
        let start = self.roles.len();
        self.roles.extend(std::iter::repeat_n(Role::Client, count));
        self.ids
            .extend((1..=count as u32).map(|k| NodeId(CLIENT_ID_BASE + k)));
        self.clients = (start, start + count);
        self
    }

    /// The process of core client `k` (0-based), if there are core clients.
    pub fn client_process(&self, k: usize) -> Option<usize> {
        let i = self.clients.0 + k;
        (i < self.clients.1).then_some(i)
    }

    /// Processes that crash, pause or slow down: every one but the clients.
    pub fn servers(&self) -> usize {
        self.clients.0
    }

    /// Number of processes.
    pub fn len(&self) -> usize {
        self.roles.len()
    }

    /// True if there are no processes (never, for valid options).
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// Role of process `i`.
    pub fn role(&self, i: usize) -> Role {
        self.roles[i]
    }

    /// Id of process `i` within its role.
    pub fn id(&self, i: usize) -> NodeId {
        self.ids[i]
    }

    /// Names of the processes, for diagrams: `node 0`, or `proposer 1` etc.
    pub fn lane_names(&self) -> Vec<String> {
        (0..self.len())
            .map(|i| match self.roles[i] {
                Role::Server => format!("node {i}"),
                Role::Client => format!("client {}", self.ids[i].0 - CLIENT_ID_BASE),
                role => format!("{} {}", role.name(), self.ids[i].0),
            })
            .collect()
    }

    /// A majority of the acceptors.
    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// The core configuration of process `i` in incarnation `incarnation`.
    pub fn config(&self, i: usize, seed: u64, incarnation: u32) -> Config {
        let mut config = Config::new(self.ids[i], self.members.clone())
            .with_seed(mix(seed ^ mix(((i as u64) << 32) | u64::from(incarnation))));
        self.tuning.apply(&mut config);
        config
    }

    /// The process of server `id` (servers layout only: snapshots travel
    /// between servers).
    pub fn server_index(&self, id: NodeId) -> Option<usize> {
        let k = (id.0 as usize).checked_sub(1)?;
        (self.roles.get(k) == Some(&Role::Server)).then_some(k)
    }

    /// Vote-mask bit of process `i` if it is an acceptor.
    pub fn acceptor_bit(&self, i: usize) -> Option<usize> {
        matches!(self.roles[i], Role::Server | Role::Acceptor).then(|| i - self.acceptors.0)
    }

    /// The processes clients send requests to.
    pub fn entry_points(&self) -> std::ops::Range<usize> {
        self.proposers.0..self.proposers.1
    }

    /// The process of proposer (or server) `id`, for a client following a hint.
    pub fn proposer_index(&self, id: NodeId) -> Option<usize> {
        let k = (id.0 as usize).checked_sub(1)?;
        let i = self.proposers.0 + k;
        (i < self.proposers.1).then_some(i)
    }

    /// Does a reply from process `i` reach a client connected to `target`?
    /// Servers answer the clients connected to them; learners apart answer
    /// every client (clients listen on the learners' group).
    pub fn reply_reaches(&self, i: usize, target: usize) -> bool {
        match self.roles[i] {
            Role::Server => i == target,
            Role::Learner => true,
            Role::Proposer | Role::Acceptor | Role::Client => false,
        }
    }

    /// Appends to `out` every process that `to` names when `from` sends `msg`.
    pub fn route<C>(&self, from: usize, to: Destination, msg: &Message<C>, out: &mut Vec<usize>) {
        let range = match to {
            Destination::Node(id) if id.0 > CLIENT_ID_BASE => {
                let i = self.clients.0 + (id.0 - CLIENT_ID_BASE - 1) as usize;
                if i < self.clients.1 && i != from {
                    out.push(i);
                }
                return;
            }
            Destination::Node(id) => {
                let Some(k) = (id.0 as usize).checked_sub(1) else {
                    return;
                };
                let (lo, hi) = match self.roles[from] {
                    Role::Server => (0, self.len()),
                    _ => match msg {
                        Message::Prepare { .. } | Message::Accept { .. } => self.acceptors,
                        Message::CatchUp { .. } | Message::Decided { .. } => self.learners,
                        _ => self.proposers,
                    },
                };
                if lo + k < hi {
                    out.push(lo + k);
                }
                return;
            }
            Destination::Acceptors => self.acceptors,
            Destination::Proposers => self.proposers,
            Destination::Learners => {
                // Clients that learn for themselves listen on the learners' group.
                let clients = self.clients.0..self.clients.1;
                out.extend(
                    (self.learners.0..self.learners.1)
                        .chain(clients)
                        .filter(|&j| j != from),
                );
                return;
            }
            Destination::All => (0, self.len()),
        };
        out.extend((range.0..range.1).filter(|&j| j != from));
    }
}

/// One running process of either layout.
pub enum Proc<S: SimMachine> {
    /// A full server.
    Server(Box<Server<Recorded<S>>>),
    /// A proposer apart.
    Proposer(Box<Proposer<Cmd<S>>>),
    /// An acceptor apart.
    Acceptor(Box<Acceptor<Cmd<S>>>),
    /// A learner apart, with the replica it delivers to.
    Learner {
        /// The learner.
        learner: Box<Learner<Cmd<S>>>,
        /// The replica applying its deliveries.
        replica: Box<Replica<Recorded<S>>>,
        /// The learner's actions before the replica turns deliveries into replies.
        scratch: Vec<Act<S>>,
    },
    /// A client that learns for itself.
    Client {
        /// The core's client machine.
        client: Box<paxos_core::Client<Cmd<S>>>,
        /// Its actions before conversion.
        scratch: Vec<Action<Cmd<S>>>,
        /// `(seq, slot)` of each command it saw chosen, not yet taken.
        done: Vec<(u64, Slot)>,
    },
}

impl<S: SimMachine> std::fmt::Debug for Proc<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let role = match self {
            Proc::Server(_) => Role::Server,
            Proc::Proposer(_) => Role::Proposer,
            Proc::Acceptor(_) => Role::Acceptor,
            Proc::Learner { .. } => Role::Learner,
            Proc::Client { .. } => Role::Client,
        };
        write!(f, "Proc({})", role.name())
    }
}

impl<S: SimMachine> Proc<S> {
    /// Builds process `i` from its synced `records` (none for a fresh start),
    /// after its `snapshot` if it has one.
    pub fn recover(
        topo: &Topology,
        i: usize,
        seed: u64,
        incarnation: u32,
        snapshot: Option<NodeSnapshot<S>>,
        records: impl Iterator<Item = Record<Cmd<S>>>,
    ) -> Result<Self, String> {
        let config = topo.config(i, seed, incarnation);
        let err = |e: &dyn std::fmt::Display| format!("{} {i}: {e}", topo.role(i).name());
        Ok(match topo.role(i) {
            Role::Server => Proc::Server(Box::new(
                match snapshot {
                    Some(snap) => Server::restore(config, snap, records),
                    None => Server::recover(config, Recorded::fresh(), records),
                }
                .map_err(|e| err(&e))?,
            )),
            Role::Proposer => Proc::Proposer(Box::new(
                Proposer::recover(&config, records).map_err(|e| err(&e))?,
            )),
            Role::Acceptor => Proc::Acceptor(Box::new(
                Acceptor::recover(&config, records)
                    .map_err(|e| err(&e))?
                    .notify_learners(true),
            )),
            Role::Learner => Proc::Learner {
                learner: Box::new(Learner::new(&config).map_err(|e| err(&e))?),
                replica: Box::new(Replica::new(Recorded::fresh())),
                scratch: Vec::new(),
            },
            Role::Client => Proc::Client {
                client: Box::new(
                    paxos_core::Client::new(&config, ClientId::from(config.id.0 - CLIENT_ID_BASE))
                        .map_err(|e| err(&e))?,
                ),
                scratch: Vec::new(),
                done: Vec::new(),
            },
        })
    }

    /// Feeds one input, appending the driver's actions to `out`.
    pub fn step_into(&mut self, input: Input<Cmd<S>>, out: &mut Vec<Act<S>>) {
        match self {
            Proc::Server(s) => s.step_into(input, out),
            Proc::Proposer(p) => p.step_into(input, out),
            Proc::Acceptor(a) => a.step_into(input, out),
            Proc::Learner {
                learner,
                replica,
                scratch,
            } => {
                learner.step_into(input, scratch);
                for action in scratch.drain(..) {
                    match action {
                        Action::Deliver { slot, value } => replica.apply(slot, &value, out),
                        other => out.push(other),
                    }
                }
            }
            Proc::Client {
                client,
                scratch,
                done,
            } => {
                client.step_into(input, scratch);
                for action in scratch.drain(..) {
                    match action {
                        Action::Reply { seq, slot, .. } => done.push((seq, slot)),
                        Action::Send { to, msg } => out.push(Action::Send { to, msg }),
                        Action::Persist(r) => out.push(Action::Persist(r)),
                        Action::Event(e) => out.push(Action::Event(e)),
                        Action::Deliver { slot, value } => {
                            out.push(Action::Deliver { slot, value })
                        }
                        Action::SendSnapshot { to } => out.push(Action::SendSnapshot { to }),
                        Action::PersistSnapshot { next_slot } => {
                            out.push(Action::PersistSnapshot { next_slot })
                        }
                    }
                }
            }
        }
    }

    /// Commands a self-learning client saw chosen since the last call, as
    /// `(seq, slot)`.
    pub fn take_done(&mut self) -> Vec<(u64, Slot)> {
        match self {
            Proc::Client { done, .. } => std::mem::take(done),
            _ => Vec::new(),
        }
    }

    /// A self-learning client that heard a leader and has nothing outstanding.
    pub fn is_ready(&self) -> bool {
        match self {
            Proc::Client { client, .. } => client.is_ready(),
            _ => true,
        }
    }

    /// The acceptor's promise, if this process has an acceptor.
    pub fn promised(&self) -> Option<Ballot> {
        match self {
            Proc::Server(s) => Some(s.acceptor().promised()),
            Proc::Acceptor(a) => Some(a.promised()),
            _ => None,
        }
    }

    /// The learner, if this process has one.
    pub fn learner(&self) -> Option<&Learner<Cmd<S>>> {
        match self {
            Proc::Server(s) => Some(s.learner()),
            Proc::Learner { learner, .. } => Some(learner),
            _ => None,
        }
    }

    /// Requests its replica executed since it (re)started, in order.
    pub fn journal(&self) -> &[(ClientId, u64)] {
        match self {
            Proc::Server(s) => s.state().executed(),
            Proc::Learner { replica, .. } => replica.state().executed(),
            _ => &[],
        }
    }

    /// A snapshot plus the checkpoint records that together replace the
    /// whole log, if this process can compact (servers only).
    pub fn compact(&self) -> Option<Compacted<S>> {
        match self {
            Proc::Server(s) => Some(Compacted {
                snapshot: s.snapshot(),
                records: s.checkpoint(),
            }),
            _ => None,
        }
    }

    /// The replica's snapshot, if this process is a server.
    pub fn snapshot(&self) -> Option<NodeSnapshot<S>> {
        match self {
            Proc::Server(s) => Some(s.snapshot()),
            _ => None,
        }
    }

    /// Hands a peer's snapshot to a server (`Server::install_snapshot_into`);
    /// other processes never receive one.
    pub fn install_snapshot(&mut self, snapshot: NodeSnapshot<S>, out: &mut Vec<Act<S>>) {
        if let Proc::Server(s) = self {
            s.install_snapshot_into(snapshot, out);
        }
    }

    /// Is it the leader?
    pub fn is_leader(&self) -> bool {
        match self {
            Proc::Server(s) => s.is_leader(),
            Proc::Proposer(p) => p.is_leader(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(t: &Topology, from: usize, to: Destination, msg: &Message<u64>) -> Vec<usize> {
        let mut out = Vec::new();
        t.route(from, to, msg, &mut out);
        out
    }

    #[test]
    fn servers_route_groups_to_every_other_node() {
        let t = Topology::new(Layout::Servers, 3);
        let hb = Message::Heartbeat {
            ballot: Ballot::ZERO,
            commit: 0,
        };
        assert_eq!(route(&t, 1, Destination::Acceptors, &hb), [0, 2]);
        assert_eq!(route(&t, 1, Destination::Node(NodeId(3)), &hb), [2]);
        assert_eq!(t.server_index(NodeId(3)), Some(2));
        assert_eq!(t.server_index(NodeId(4)), None);
        assert_eq!(t.server_index(NodeId(0)), None);
        assert_eq!(
            route(&t, 1, Destination::Node(NodeId(9)), &hb),
            [] as [usize; 0]
        );
    }

    #[test]
    fn roles_apart_route_by_message_kind() {
        // Processes: proposers 0,1; acceptors 2,3,4; learners 5,6.
        let t = Topology::new(
            Layout::Roles {
                proposers: 2,
                learners: 2,
            },
            3,
        );
        let ballot = Ballot::new(1, NodeId(2));
        let promise = Message::Promise {
            ballot,
            trimmed_below: 0,
            accepted: vec![],
        };
        let prepare = Message::Prepare {
            ballot,
            from_slot: 0,
        };
        let catchup = Message::CatchUp {
            from_slot: 0,
            to_slot: 1,
        };
        assert_eq!(route(&t, 3, Destination::Node(NodeId(2)), &promise), [1]);
        assert_eq!(route(&t, 1, Destination::Acceptors, &prepare), [2, 3, 4]);
        assert_eq!(route(&t, 5, Destination::Node(NodeId(2)), &catchup), [6]);
        assert_eq!(route(&t, 5, Destination::Learners, &catchup), [6]);
        assert_eq!(t.acceptor_bit(3), Some(1));
        assert_eq!(t.acceptor_bit(0), None);
        assert_eq!(t.proposer_index(NodeId(2)), Some(1));
        assert_eq!(t.server_index(NodeId(1)), None, "no servers: roles apart");
        assert!(t.reply_reaches(6, 0) && !t.reply_reaches(2, 0));
    }

    #[test]
    fn self_learning_clients_hear_the_learners_group_and_their_own_catch_up() {
        // Processes: proposer 0; acceptors 1,2,3; learner 4; clients 5,6.
        let t = Topology::new(
            Layout::Roles {
                proposers: 1,
                learners: 1,
            },
            3,
        )
        .with_core_clients(2);
        let decided = Message::<u64>::Decided {
            first_slot: 0,
            values: vec![],
        };
        let to_client_2 = Destination::Node(NodeId(CLIENT_ID_BASE + 2));
        assert_eq!(route(&t, 4, to_client_2, &decided), [6]);
        assert_eq!(route(&t, 5, Destination::Learners, &decided), [4, 6]);
        assert_eq!(t.servers(), 5, "clients never crash");
        assert_eq!(t.lane_names()[6], "client 2");
    }
}
