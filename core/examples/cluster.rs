//! A three-node cluster in one process: elects a leader, replicates a few chat
//! lines through it, crashes the leader, elects another, and prints what every
//! node decided. Run it with `cargo run -p paxos-core --example cluster`.

use paxos_core::{
    Action, Command, Config, Input, NodeId, Process, Record, Server, ServerInput, ServerMessage,
    ServerSnapshot, StateMachine,
};
use std::collections::VecDeque;

#[derive(Clone, Default)]
struct Chat(Vec<String>);

impl StateMachine for Chat {
    type Command = String;
    type Output = usize;
    fn apply(&mut self, line: &String) -> usize {
        self.0.push(line.clone());
        self.0.len()
    }
}

/// A node's durable log: the snapshot of its last compaction, if any, and
/// the records after it.
type Disk = (Option<ServerSnapshot<Chat>>, Vec<Record<String>>);

struct Cluster {
    ids: Vec<NodeId>,
    nodes: Vec<Option<Server<Chat>>>,
    disks: Vec<Disk>,
    wire: VecDeque<(NodeId, NodeId, ServerMessage<Chat>)>,
}

impl Cluster {
    fn step(&mut self, i: usize, input: ServerInput<Chat>) {
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        for action in node.step(input) {
            match action {
                // A real driver fsyncs these three before any later action.
                Action::Persist(r) => self.disks[i].1.push(r),
                Action::PersistSnapshot(s) => self.disks[i].0 = Some(*s),
                Action::Compact(c) => self.disks[i] = (c.snapshot, c.records),
                Action::Send { to, msg } => {
                    for (j, &peer) in self.ids.iter().enumerate() {
                        if j != i && to.reaches(&Process::server(peer)) {
                            self.wire.push_back((self.ids[i], peer, msg.clone()));
                        }
                    }
                }
                Action::Reply {
                    client,
                    seq,
                    slot,
                    output,
                } => {
                    println!("  {} replies to client {client} request {seq}: slot {slot}, log length {output}", self.ids[i]);
                }
                _ => {}
            }
        }
    }

    fn tick_until(&mut self, mut done: impl FnMut(&Cluster) -> bool) {
        for _ in 0..10_000 {
            if done(self) {
                return;
            }
            for i in 0..self.nodes.len() {
                self.step(i, Input::Tick);
            }
            while let Some((from, to, msg)) = self.wire.pop_front() {
                let j = self.ids.iter().position(|&n| n == to).expect("member");
                let from = Process::server(from);
                self.step(j, Input::Receive { from, msg });
            }
        }
        panic!("the cluster did not get there in 10 000 ticks");
    }

    fn leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.as_ref().is_some_and(|n| n.is_leader()))
    }
}

fn main() {
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut c = Cluster {
        nodes: ids
            .iter()
            .map(|&id| Server::new(Config::new(id, ids.clone()), Chat::default()).ok())
            .collect(),
        disks: vec![(None, Vec::new()); ids.len()],
        wire: VecDeque::new(),
        ids,
    };
    c.tick_until(|c| c.leader().is_some());
    let first = c.leader().expect("a leader");
    println!(
        "{} leads; proposing three lines through node {}",
        c.ids[first],
        c.ids[(first + 1) % 3]
    );
    for (seq, line) in ["hello", "is anyone there?", "paxos says yes"]
        .into_iter()
        .enumerate()
    {
        let cmd = Command {
            client: 7,
            seq: seq as u64 + 1,
            op: line.to_string(),
        };
        c.step((first + 1) % 3, Input::Propose(cmd));
    }
    c.tick_until(|c| c.nodes.iter().flatten().all(|n| n.state().0.len() == 3));

    println!("crashing {}", c.ids[first]);
    c.nodes[first] = None;
    c.tick_until(|c| c.leader().is_some_and(|l| l != first));
    let second = c.leader().expect("a new leader");
    println!("{} leads now", c.ids[second]);
    let cmd = Command {
        client: 7,
        seq: 4,
        op: "still here".to_string(),
    };
    c.step(second, Input::Propose(cmd));

    let (snapshot, records) = c.disks[first].clone();
    println!(
        "restarting {} from its {} persisted records",
        c.ids[first],
        records.len()
    );
    let config = Config::new(c.ids[first], c.ids.clone());
    c.nodes[first] = match snapshot {
        Some(snapshot) => Server::restore(config, snapshot, records),
        None => Server::recover(config, Chat::default(), records),
    }
    .ok();
    c.tick_until(|c| c.nodes.iter().flatten().all(|n| n.state().0.len() == 4));
    for node in c.nodes.iter().flatten() {
        println!("{} decided {:?}", node.id(), node.state().0);
    }
}
