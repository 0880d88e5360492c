//! OmniPaxos 0.2 over `omnipaxos_storage`'s `MemoryStorage` in the harness: the
//! leader trims the log, and each replica reads its newly decided entries.

use crate::harness::{Cluster, Compactions, Envelope, Outbox, Settings, REPLICAS};
use omnipaxos::messages::Message;
use omnipaxos::storage::{Entry, NoSnapshot};
use omnipaxos::util::LogEntry;
use omnipaxos::{ClusterConfig, OmniPaxos, ServerConfig};
use omnipaxos_storage::memory_storage::MemoryStorage;

/// A log entry: one command.
#[derive(Clone, Debug)]
pub struct Cmd(pub u64);

impl Entry for Cmd {
    // Compaction is by trimming, so no snapshot type is needed.
    type Snapshot = NoSnapshot;
}

/// One OmniPaxos replica and the state machine it applies to.
struct Replica {
    paxos: OmniPaxos<Cmd, MemoryStorage<Cmd>>,
    /// The state machine: the next command it expects, which is also how many
    /// decided entries it has read.
    next: u64,
    /// The compacted index last seen, to notice a trim.
    compacted: usize,
}

impl Replica {
    /// Applies the entries decided since the last call, in order.
    fn apply(&mut self) {
        let decided = self.paxos.get_decided_idx() as u64;
        if decided <= self.next {
            return;
        }
        let entries = self
            .paxos
            .read_decided_suffix(self.next as usize)
            .expect("decided entries are in the log");
        for entry in entries {
            match entry {
                LogEntry::Decided(Cmd(command)) => {
                    assert_eq!(command, self.next, "omnipaxos applied out of order");
                    self.next += 1;
                }
                other => panic!("omnipaxos: unexpected entry {other:?}"),
            }
        }
    }
}

/// Three OmniPaxos replicas and a reused message buffer.
pub struct OmniPaxosCluster {
    replicas: Vec<Replica>,
    settings: Settings,
    compactions: Compactions,
    outgoing: Vec<Message<Cmd>>,
}

impl std::fmt::Debug for OmniPaxosCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OmniPaxosCluster")
            .field("settings", &self.settings)
            .field("compactions", &self.compactions)
            .finish_non_exhaustive()
    }
}

impl Cluster for OmniPaxosCluster {
    type Msg = Message<Cmd>;
    const NAME: &'static str = "omnipaxos";

    /// Builds each replica from OmniPaxos's default `ServerConfig` (only `pid`
    /// set) and a cluster of pids 1..=3.
    fn new(settings: Settings) -> Self {
        let cluster = ClusterConfig {
            configuration_id: 1,
            nodes: (1..=REPLICAS as u64).collect(),
            ..ClusterConfig::default()
        };
        let replicas = (1..=REPLICAS as u64)
            .map(|pid| {
                let server = ServerConfig {
                    pid,
                    ..ServerConfig::default()
                };
                let paxos = cluster
                    .clone()
                    .build_for_server(server, MemoryStorage::default())
                    .expect("valid config");
                Replica {
                    paxos,
                    next: 0,
                    compacted: 0,
                }
            })
            .collect();
        OmniPaxosCluster {
            replicas,
            settings,
            compactions: Compactions::default(),
            outgoing: Vec::new(),
        }
    }

    fn tick(&mut self, node: usize, _out: &mut Outbox<Self::Msg>) {
        self.replicas[node].paxos.tick();
    }

    fn propose(&mut self, node: usize, command: u64, _out: &mut Outbox<Self::Msg>) {
        self.replicas[node]
            .paxos
            .append(Cmd(command))
            .expect("the leader takes entries");
    }

    /// Reads what the message decided at once: a `Trim` from the leader may
    /// follow in the same wave, and trimmed entries can no longer be read.
    fn deliver(&mut self, _from: usize, to: usize, msg: Self::Msg, _out: &mut Outbox<Self::Msg>) {
        let replica = &mut self.replicas[to];
        replica.paxos.handle_incoming(msg);
        replica.apply();
    }

    /// Applies what became decided, lets the leader trim when due, notes a
    /// trim, and sends what the replica has queued.
    fn flush(&mut self, node: usize, out: &mut Outbox<Self::Msg>) {
        let replica = &mut self.replicas[node];
        replica.apply();
        let is_leader = replica.paxos.get_current_leader() == Some((node as u64 + 1, true));
        if is_leader
            && self.compactions.since_last(node, replica.next) >= self.settings.compact_threshold()
        {
            // Refused while a follower has not accepted that far; tried again
            // after the next wave.
            let _ = replica.paxos.trim(Some(replica.next as usize));
        }
        let compacted = replica.paxos.get_compacted_idx();
        if compacted > replica.compacted {
            replica.compacted = compacted;
            self.compactions.record(node, replica.next);
        }
        replica.paxos.take_outgoing_messages(&mut self.outgoing);
        for msg in self.outgoing.drain(..) {
            let to = msg.get_receiver() as usize - 1;
            out.push(Envelope {
                from: node,
                to,
                msg,
            });
        }
    }

    fn leader(&self) -> Option<usize> {
        let first = self.replicas[0].paxos.get_current_leader()?;
        let (pid, true) = first else {
            return None;
        };
        self.replicas
            .iter()
            .all(|r| r.paxos.get_current_leader() == Some(first))
            .then_some(pid as usize - 1)
    }

    fn applied(&self, node: usize) -> u64 {
        self.replicas[node].next
    }

    fn log_len(&self, node: usize) -> usize {
        let paxos = &self.replicas[node].paxos;
        paxos.get_accepted_idx() - paxos.get_compacted_idx()
    }

    fn compactions(&mut self) -> &mut Compactions {
        &mut self.compactions
    }
}
