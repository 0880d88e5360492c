//! raft-rs 0.7 (`RawNode` over its `MemStorage`) in the harness, driven the way
//! its crate documentation prescribes: step messages, then handle each `Ready`.

use crate::harness::{Cluster, Compactions, Envelope, Outbox, Settings, REPLICAS};
use raft::eraftpb::{Entry, EntryType, Message};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole, Storage};
use slog::{o, Discard, Logger};

/// One raft replica and the state machine it applies to.
struct Replica {
    node: RawNode<MemStorage>,
    /// The state machine: the next command it expects, which is also how many
    /// it has applied.
    next: u64,
}

impl Replica {
    /// Applies committed entries, skipping the empty entry each new leader
    /// appends; commands are 8 little-endian bytes, as raft carries bytes.
    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            assert_eq!(entry.get_entry_type(), EntryType::EntryNormal);
            if entry.data.is_empty() {
                continue;
            }
            let bytes: [u8; 8] = entry.data[..].try_into().expect("an 8-byte command");
            assert_eq!(
                u64::from_le_bytes(bytes),
                self.next,
                "raft-rs applied out of order"
            );
            self.next += 1;
        }
    }
}

/// Three raft replicas with their `MemStorage`s.
pub struct RaftRs {
    replicas: Vec<Replica>,
    settings: Settings,
    compactions: Compactions,
}

impl std::fmt::Debug for RaftRs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftRs")
            .field("settings", &self.settings)
            .field("compactions", &self.compactions)
            .finish_non_exhaustive()
    }
}

/// Puts raft's messages on the wire; raft ids are indices plus one.
fn send(from: usize, messages: Vec<Message>, out: &mut Outbox<Message>) {
    for msg in messages {
        let to = msg.to as usize - 1;
        out.push(Envelope { from, to, msg });
    }
}

impl Cluster for RaftRs {
    type Msg = Message;
    const NAME: &'static str = "raft-rs";

    /// Every replica starts with the three voters in its storage, with raft's
    /// default `Config` but for `id` and batching, and a logger that discards
    /// everything (no log I/O in the measured loop).
    fn new(settings: Settings) -> Self {
        let logger = Logger::root(Discard, o!());
        let voters: Vec<u64> = (1..=REPLICAS as u64).collect();
        let replicas = voters
            .iter()
            .map(|&id| {
                let config = Config {
                    id,
                    // Deviation from the defaults, which put one entry in each
                    // append message and never merge appends: a round of 100
                    // proposals would then cost 100 messages per follower.
                    // The docs call the default a recovery-cost trade-off that
                    // may hurt throughput; 1 MiB messages and merged appends
                    // let raft-rs batch as the other two do.
                    max_size_per_msg: 1 << 20,
                    batch_append: true,
                    ..Config::default()
                };
                config.validate().expect("valid config");
                let storage = MemStorage::new_with_conf_state((voters.clone(), vec![]));
                let node = RawNode::new(&config, storage, &logger).expect("raft node");
                Replica { node, next: 0 }
            })
            .collect();
        RaftRs {
            replicas,
            settings,
            compactions: Compactions::default(),
        }
    }

    fn tick(&mut self, node: usize, _out: &mut Outbox<Self::Msg>) {
        self.replicas[node].node.tick();
    }

    fn propose(&mut self, node: usize, command: u64, _out: &mut Outbox<Self::Msg>) {
        let data = command.to_le_bytes().to_vec();
        self.replicas[node]
            .node
            .propose(vec![], data)
            .expect("the leader takes proposals");
    }

    fn deliver(&mut self, _from: usize, to: usize, msg: Self::Msg, _out: &mut Outbox<Self::Msg>) {
        self.replicas[to].node.step(msg).expect("raft step");
    }

    /// Handles one `Ready` in the documented order, then the `LightReady`, then
    /// compacts the storage up to the applied index when it is due.
    fn flush(&mut self, node: usize, out: &mut Outbox<Self::Msg>) {
        let replica = &mut self.replicas[node];
        if !replica.node.has_ready() {
            return;
        }
        let mut ready = replica.node.ready();
        send(node, ready.take_messages(), out);
        assert!(
            ready.snapshot().is_empty(),
            "raft-rs: replica {node} needed a snapshot in lock-step rounds"
        );
        replica.apply(ready.take_committed_entries());
        if !ready.entries().is_empty() {
            replica
                .node
                .store()
                .wl()
                .append(ready.entries())
                .expect("append");
        }
        if let Some(hard_state) = ready.hs() {
            replica.node.store().wl().set_hardstate(hard_state.clone());
        }
        send(node, ready.take_persisted_messages(), out);
        let mut light = replica.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            replica
                .node
                .store()
                .wl()
                .mut_hard_state()
                .set_commit(commit);
        }
        send(node, light.take_messages(), out);
        replica.apply(light.take_committed_entries());
        replica.node.advance_apply();

        let applied = replica.next;
        if self.compactions.since_last(node, applied) >= self.settings.compact_threshold() {
            let index = replica.node.raft.raft_log.applied;
            replica.node.store().wl().compact(index).expect("compact");
            self.compactions.record(node, applied);
        }
    }

    fn leader(&self) -> Option<usize> {
        let leader = self
            .replicas
            .iter()
            .position(|r| r.node.raft.state == StateRole::Leader)?;
        let id = self.replicas[leader].node.raft.id;
        self.replicas
            .iter()
            .all(|r| r.node.raft.leader_id == id)
            .then_some(leader)
    }

    fn applied(&self, node: usize) -> u64 {
        self.replicas[node].next
    }

    fn log_len(&self, node: usize) -> usize {
        let store = self.replicas[node].node.store();
        let first = store.first_index().expect("first index");
        let last = store.last_index().expect("last index");
        (last + 1 - first) as usize
    }

    fn compactions(&mut self) -> &mut Compactions {
        &mut self.compactions
    }
}
