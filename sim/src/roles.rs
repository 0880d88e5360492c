//! The two process layouts: every node a full [`Server`], or the roles apart
//! (proposers, acceptors, learners as separate processes, as the multicast
//! driver runs them). [`Topology`] says who each process is; routing is the
//! core's [`Destination::reaches`]. [`Proc`] is one process of either layout
//! behind one interface.

use crate::cluster::{Act, Cmd, In, Snap};
use crate::model::{mix, Recorded, SimMachine};
use crate::options::{Knob, Tuning};
use paxos_core::{
    Acceptor, Action, Addr, Ballot, ClientId, Config, Destination, LearnerReplica, NodeId, Process,
    Proposer, Record, RecoverError, Role, Server, Slot,
};

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

/// What one process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
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

impl Kind {
    /// Short name for traces.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Server => "node",
            Kind::Proposer => "proposer",
            Kind::Acceptor => "acceptor",
            Kind::Learner => "learner",
            Kind::Client => "client",
        }
    }

    fn process(self, id: NodeId) -> Process {
        match self {
            Kind::Server => Process::server(id),
            Kind::Proposer => Process::only(Role::Proposer, id),
            Kind::Acceptor => Process::only(Role::Acceptor, id),
            Kind::Learner => Process::only(Role::Learner, id),
            Kind::Client => Process::only(Role::Client, id),
        }
    }
}

/// Who each process is: its kind and its identity as the core sees it.
/// Ids start at 1 within each role, as on the multicast command line.
#[derive(Clone, Debug)]
pub struct Topology {
    kinds: Vec<Kind>,
    procs: Vec<Process>,
    members: Vec<NodeId>,
    learners_apart: bool,
    tuning: Tuning,
}

impl Topology {
    /// The processes of `layout` with `nodes` servers or acceptors.
    pub fn new(layout: Layout, nodes: usize) -> Self {
        let groups: Vec<(Kind, usize)> = match layout {
            Layout::Servers => vec![(Kind::Server, nodes)],
            Layout::Roles {
                proposers,
                learners,
            } => vec![
                (Kind::Proposer, proposers),
                (Kind::Acceptor, nodes),
                (Kind::Learner, learners),
            ],
        };
        let mut t = Topology {
            kinds: Vec::new(),
            procs: Vec::new(),
            members: (1..=nodes as u32).map(NodeId).collect(),
            learners_apart: layout != Layout::Servers,
            tuning: Tuning::default(),
        };
        for (kind, count) in groups {
            t.add(kind, count);
        }
        t
    }

    fn add(&mut self, kind: Kind, count: usize) {
        for id in 1..=count as u32 {
            self.kinds.push(kind);
            self.procs.push(kind.process(NodeId(id)));
        }
    }

    /// The same topology with `Config` defaults overridden by `tuning`.
    pub fn with_tuning(mut self, tuning: Tuning) -> Self {
        self.tuning = tuning;
        self
    }

    /// The same topology plus `count` servers outside the configuration
    /// (learners a membership change may add), after the others.
    pub fn with_spares(mut self, count: usize) -> Self {
        let first = self.procs.len() as u32 + 1;
        for id in first..first + count as u32 {
            self.kinds.push(Kind::Server);
            self.procs.push(Kind::Server.process(NodeId(id)));
        }
        self
    }

    /// The same topology plus `count` client processes at the end, each a
    /// `paxos_core::Client` that learns for itself.
    pub fn with_core_clients(mut self, count: usize) -> Self {
        self.add(Kind::Client, count);
        self
    }

    /// The process of core client `k` (0-based), if there are core clients.
    pub fn client_process(&self, k: usize) -> Option<usize> {
        let first = self.servers();
        let i = first + k;
        (i < self.len()).then_some(i)
    }

    /// Processes that crash, pause or slow down: every one but the clients,
    /// which come last.
    pub fn servers(&self) -> usize {
        self.kinds
            .iter()
            .position(|&k| k == Kind::Client)
            .unwrap_or(self.kinds.len())
    }

    /// Number of processes.
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// True if there are no processes (never, for valid options).
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// What process `i` runs.
    pub fn kind(&self, i: usize) -> Kind {
        self.kinds[i]
    }

    /// Process `i` as the core sees it.
    pub fn process(&self, i: usize) -> Process {
        self.procs[i]
    }

    /// Names of the processes, for diagrams: `node 0`, or `proposer 1` etc.
    pub fn lane_names(&self) -> Vec<String> {
        (0..self.len())
            .map(|i| match self.kinds[i] {
                Kind::Server => format!("node {i}"),
                kind => format!("{} {}", kind.name(), self.procs[i].id.0),
            })
            .collect()
    }

    /// The core configuration of process `i` in incarnation `incarnation`.
    pub fn config(&self, i: usize, seed: u64, incarnation: u32) -> Config {
        let mut config = Config::new(self.procs[i].id, self.members.clone())
            .with_seed(mix(seed ^ mix(((i as u64) << 32) | u64::from(incarnation))));
        config.learners_apart = self.learners_apart;
        self.tuning.apply(&mut config);
        if matches!(self.kinds[i], Kind::Learner | Kind::Client) {
            // Learners apart keep their own long history, as the multicast
            // driver's do: the tuned window is the acceptors' and
            // proposers', which trim early to keep promises small. A
            // learner that restarts empty re-learns the log from the others.
            config.retain_slots = config.retain_slots.max(Knob::RetainSlots.default_value());
            config.retain_commands = config
                .retain_commands
                .max(Knob::RetainCommands.default_value());
        }
        config
    }

    /// The process with address `addr`, if there is one.
    pub fn index_of(&self, addr: Addr) -> Option<usize> {
        let to = Destination::To(addr);
        self.procs.iter().position(|p| to.reaches(p))
    }

    /// The acceptor id of process `i`, if it hosts an acceptor.
    pub fn acceptor_id(&self, i: usize) -> Option<NodeId> {
        let p = &self.procs[i];
        p.hosts(Role::Acceptor).then_some(p.id)
    }

    /// The acceptors the cluster starts with.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// The ids of the processes clients send requests to: the servers, or
    /// the proposers.
    pub fn entry_ids(&self) -> Vec<NodeId> {
        self.procs
            .iter()
            .filter(|p| p.hosts(Role::Proposer))
            .map(|p| p.id)
            .collect()
    }

    /// The process of entry point `id` (a server, or a proposer).
    pub fn entry_index(&self, id: NodeId) -> Option<usize> {
        self.index_of(Addr::new(Role::Proposer, id))
    }

    /// Does what process `i` tells a client (a reply, a refusal) reach a
    /// client connected to process `connected`? Servers and proposers answer
    /// the clients connected to them; learners apart answer every client
    /// (clients listen on the learners' group).
    pub fn reaches_client(&self, i: usize, connected: Option<usize>) -> bool {
        self.kinds[i] == Kind::Learner || connected == Some(i)
    }

    /// Appends to `out` every process other than `from` that `to` reaches.
    pub fn route(&self, from: usize, to: Destination, out: &mut Vec<usize>) {
        out.extend(
            self.procs
                .iter()
                .enumerate()
                .filter(|&(j, p)| j != from && to.reaches(p))
                .map(|(j, _)| j),
        );
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
    Learner(Box<LearnerReplica<Recorded<S>>>),
    /// A client that learns for itself.
    Client {
        /// The core's client machine.
        client: Box<paxos_core::Client<Cmd<S>>>,
        /// Its actions before conversion.
        scratch: Vec<Action<Cmd<S>, (), Snap<S>>>,
        /// `(seq, slot)` of each command it saw chosen, not yet taken.
        done: Vec<(u64, Slot)>,
    },
}

impl<S: SimMachine> std::fmt::Debug for Proc<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Proc::Server(_) => Kind::Server,
            Proc::Proposer(_) => Kind::Proposer,
            Proc::Acceptor(_) => Kind::Acceptor,
            Proc::Learner(_) => Kind::Learner,
            Proc::Client { .. } => Kind::Client,
        };
        write!(f, "Proc({})", kind.name())
    }
}

/// Why a process could not be rebuilt from its disk.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {index}: {source}")]
pub struct RestartError {
    /// What the process runs.
    pub kind: &'static str,
    /// Its index.
    pub index: usize,
    /// What the core refused.
    pub source: RecoverError,
}

impl<S: SimMachine> Proc<S> {
    /// Builds process `i` from its synced `records` (none for a fresh start),
    /// after its `snapshot` if it has one.
    pub fn recover(
        topo: &Topology,
        i: usize,
        seed: u64,
        incarnation: u32,
        snapshot: Option<Snap<S>>,
        records: impl Iterator<Item = Record<Cmd<S>>>,
    ) -> Result<Self, RestartError> {
        let config = topo.config(i, seed, incarnation);
        let kind = topo.kind(i);
        let err = |source: RecoverError| RestartError {
            kind: kind.name(),
            index: i,
            source,
        };
        let config_err = |e| err(RecoverError::Config(e));
        Ok(match kind {
            Kind::Server => Proc::Server(Box::new(
                match snapshot {
                    Some(snap) => Server::restore(config, snap, records),
                    None => Server::recover(config, Recorded::fresh(), records),
                }
                .map_err(err)?,
            )),
            Kind::Proposer => Proc::Proposer(Box::new(
                Proposer::recover(&config, records).map_err(config_err)?,
            )),
            Kind::Acceptor => {
                Proc::Acceptor(Box::new(Acceptor::recover(&config, records).map_err(err)?))
            }
            Kind::Learner => Proc::Learner(Box::new(
                LearnerReplica::new(&config, Recorded::fresh()).map_err(config_err)?,
            )),
            Kind::Client => Proc::Client {
                client: Box::new(
                    paxos_core::Client::new(&config, ClientId::from(config.id.0))
                        .map_err(config_err)?,
                ),
                scratch: Vec::new(),
                done: Vec::new(),
            },
        })
    }

    /// Builds server `i` anew after it lost its disk: it rejoins
    /// (`Server::rejoin`). `None` for any other kind of process.
    pub fn rejoin(
        topo: &Topology,
        i: usize,
        seed: u64,
        incarnation: u32,
    ) -> Option<Result<Self, RestartError>> {
        if topo.kind(i) != Kind::Server {
            return None;
        }
        let config = topo.config(i, seed, incarnation);
        Some(
            Server::rejoin(config, Recorded::fresh())
                .map(|s| Proc::Server(Box::new(s)))
                .map_err(|e| RestartError {
                    kind: Kind::Server.name(),
                    index: i,
                    source: RecoverError::Config(e),
                }),
        )
    }

    /// Is it a server that lost its disk and has not rejoined yet?
    pub fn is_rejoining(&self) -> bool {
        matches!(self, Proc::Server(s) if s.stats().rejoining)
    }

    /// Switches on one deliberate bug of the core in this process.
    pub fn set_bug(&mut self, bug: crate::options::Bug) {
        match self {
            Proc::Server(s) => s.set_bug(bug),
            Proc::Proposer(p) => p.set_bug(bug),
            Proc::Acceptor(a) => a.set_bug(bug),
            Proc::Learner(l) => l.set_bug(bug),
            Proc::Client { client, .. } => client.set_bug(bug),
        }
    }

    /// Feeds one input, appending the driver's actions to `out`.
    pub fn step_into(&mut self, input: In<S>, out: &mut Vec<Act<S>>) {
        match self {
            Proc::Server(s) => s.step_into(input, out),
            Proc::Proposer(p) => p.step_into(input, out),
            Proc::Acceptor(a) => a.step_into(input, out),
            Proc::Learner(l) => l.step_into(input, out),
            Proc::Client {
                client,
                scratch,
                done,
            } => {
                client.step_into(input, scratch);
                for action in scratch.drain(..) {
                    out.push(match action {
                        Action::Reply { seq, slot, .. } => {
                            done.push((seq, slot));
                            continue;
                        }
                        Action::Send { to, msg } => Action::Send { to, msg },
                        Action::Persist(r) => Action::Persist(r),
                        Action::PersistSnapshot(p) => Action::PersistSnapshot(p),
                        Action::Compact(c) => Action::Compact(c),
                        Action::Event(e) => Action::Event(e),
                        Action::Deliver { slot, value } => Action::Deliver { slot, value },
                        // A self-learning client serves no reads.
                        Action::ReadReply { .. } => continue,
                    });
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
            Proc::Server(s) => Some(s.inspect().acceptor().promised()),
            Proc::Acceptor(a) => Some(a.promised()),
            _ => None,
        }
    }

    /// The first slot its replica has not applied, if it has a replica.
    pub fn replica_next(&self) -> Option<Slot> {
        match self {
            Proc::Server(s) => Some(s.applied_up_to()),
            Proc::Learner(l) => Some(l.next_slot()),
            _ => None,
        }
    }

    /// The learner, if this process has one.
    pub fn learner(&self) -> Option<&paxos_core::Learner<Cmd<S>>> {
        match self {
            Proc::Server(s) => Some(s.inspect().learner()),
            Proc::Learner(l) => Some(l.learner()),
            _ => None,
        }
    }

    /// Requests its replica executed since it (re)started, in order.
    pub fn journal(&self) -> &[(ClientId, u64)] {
        match self {
            Proc::Server(s) => s.state().executed(),
            Proc::Learner(l) => l.state().executed(),
            _ => &[],
        }
    }

    /// Who it believes leads, if it hosts a proposer.
    pub fn leader(&self) -> Option<NodeId> {
        match self {
            Proc::Server(s) => s.leader(),
            Proc::Proposer(p) => p.leader(),
            _ => None,
        }
    }

    /// Its proposer's ballot, if it hosts one.
    pub fn ballot(&self) -> Option<Ballot> {
        match self {
            Proc::Server(s) => Some(s.ballot()),
            Proc::Proposer(p) => Some(p.ballot()),
            _ => None,
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

    /// A server's configuration: its number and members.
    pub fn membership(&self) -> Option<(u64, &[NodeId])> {
        match self {
            Proc::Server(s) => Some((s.stats().epoch, s.members())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::Roles;

    fn route(t: &Topology, from: usize, to: Destination) -> Vec<usize> {
        let mut out = Vec::new();
        t.route(from, to, &mut out);
        out
    }

    #[test]
    fn servers_route_groups_to_every_other_node() {
        let t = Topology::new(Layout::Servers, 3);
        assert_eq!(route(&t, 1, Destination::Group(Roles::ACCEPTOR)), [0, 2]);
        assert_eq!(route(&t, 1, Destination::to(Role::Learner, NodeId(3))), [2]);
        assert_eq!(t.entry_index(NodeId(3)), Some(2));
        assert_eq!(t.entry_index(NodeId(4)), None);
        assert_eq!(
            route(&t, 1, Destination::to(Role::Proposer, NodeId(9))),
            [] as [usize; 0]
        );
    }

    #[test]
    fn roles_apart_are_told_apart_by_role_not_by_id() {
        // Processes: proposers 0,1; acceptors 2,3,4; learners 5,6.
        let t = Topology::new(
            Layout::Roles {
                proposers: 2,
                learners: 2,
            },
            3,
        );
        assert_eq!(
            route(&t, 3, Destination::to(Role::Proposer, NodeId(2))),
            [1]
        );
        assert_eq!(route(&t, 1, Destination::Group(Roles::ACCEPTOR)), [2, 3, 4]);
        assert_eq!(route(&t, 5, Destination::to(Role::Learner, NodeId(2))), [6]);
        assert_eq!(route(&t, 5, Destination::Group(Roles::LEARNER)), [6]);
        assert_eq!(t.acceptor_id(3), Some(NodeId(2)));
        assert_eq!(t.acceptor_id(0), None);
        assert_eq!(t.entry_index(NodeId(2)), Some(1));
        assert_eq!(t.entry_ids(), [NodeId(1), NodeId(2)]);
        assert!(t.reaches_client(6, Some(0)) && !t.reaches_client(2, Some(0)));
        assert!(t.reaches_client(0, Some(0)));
    }

    #[test]
    fn self_learning_clients_have_ids_of_their_own_role() {
        // Processes: proposer 0; acceptors 1,2,3; learner 4; clients 5,6.
        let t = Topology::new(
            Layout::Roles {
                proposers: 1,
                learners: 1,
            },
            3,
        )
        .with_core_clients(2);
        let to_client_1 = Destination::to(Role::Client, NodeId(1));
        assert_eq!(
            route(&t, 4, to_client_1),
            [5],
            "not learner 1, not acceptor 1"
        );
        let votes = Destination::Group(Roles::LEARNER.union(Roles::CLIENT));
        assert_eq!(route(&t, 1, votes), [4, 5, 6]);
        assert_eq!(t.servers(), 5, "clients never crash");
        assert_eq!(t.lane_names()[6], "client 2");
    }
}
