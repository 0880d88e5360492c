//! Commands applied per second by three `Server`s in one thread, messages passed
//! by value with no serialisation and persistence left to an imaginary driver.
//!
//! `cargo bench -p paxos-core` runs criterion and then prints one summary line
//! per mode with the ratio to the targets and to the reference figures of a
//! well-known Rust Multi-Paxos crate measured on this machine in the same setup.

use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use paxos_core::{
    Action, Command, Config, Destination, Input, NodeId, Process, Server, ServerAction,
    ServerInput, ServerMessage, StateMachine,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const NODES: u32 = 3;
/// Commands per round in the batched mode.
const BATCH: u64 = 100;
/// Rounds per criterion iteration.
const ROUNDS: u64 = 1_000;
/// Targets from the issue, commands per second.
const TARGET_UNBATCHED: f64 = 2.0e6;
const TARGET_BATCHED: f64 = 8.0e6;
/// Best figures of the reference crate on this machine (commands per second).
const REFERENCE_UNBATCHED: f64 = 2.0e6;
const REFERENCE_BATCHED: f64 = 8.3e6;

/// A state machine that only counts, so the protocol is what gets measured.
#[derive(Clone, Default)]
struct Count(u64);

impl StateMachine for Count {
    type Command = u64;
    type Output = ();
    fn apply(&mut self, _: &u64) {
        self.0 += 1;
    }
}

struct Cluster {
    nodes: Vec<Server<Count>>,
    wire: VecDeque<(usize, usize, ServerMessage<Count>)>,
    out: Vec<ServerAction<Count>>,
    leader: usize,
    seq: u64,
}

impl Cluster {
    fn new() -> Self {
        let ids: Vec<NodeId> = (0..NODES).map(NodeId).collect();
        let nodes = ids
            .iter()
            .map(|&id| {
                let mut config = Config::new(id, ids.clone());
                config.batch_max = BATCH as usize;
                config.retain_slots = 1024;
                Server::new(config, Count::default()).expect("valid config")
            })
            .collect();
        let mut c = Cluster {
            nodes,
            wire: VecDeque::new(),
            out: Vec::new(),
            leader: 0,
            seq: 0,
        };
        while !c.nodes.iter().any(|n| n.is_leader()) {
            for i in 0..c.nodes.len() {
                c.step(i, Input::Tick);
            }
            c.drain();
        }
        c.leader = c
            .nodes
            .iter()
            .position(|n| n.is_leader())
            .expect("a leader");
        c
    }

    fn step(&mut self, i: usize, input: ServerInput<Count>) {
        self.nodes[i].step_into(input, &mut self.out);
        for action in self.out.drain(..) {
            if let Action::Send { to, msg } = action {
                match to {
                    Destination::To(addr) => self.wire.push_back((i, addr.id.0 as usize, msg)),
                    _ => {
                        let others = (0..self.nodes.len()).filter(|&j| j != i);
                        let last = self.nodes.len() - if i == self.nodes.len() - 1 { 2 } else { 1 };
                        let mut msg = Some(msg);
                        for j in others {
                            let m = if j == last {
                                msg.take().expect("moved once")
                            } else {
                                msg.clone().expect("present")
                            };
                            self.wire.push_back((i, j, m));
                        }
                    }
                }
            }
        }
    }

    fn drain(&mut self) {
        while let Some((from, to, msg)) = self.wire.pop_front() {
            self.step(
                to,
                Input::Receive {
                    from: Process::server(NodeId(from as u32)),
                    msg,
                },
            );
        }
    }

    /// Proposes `per_round` commands at the leader, then delivers every message
    /// until the network is quiet: every command is applied on every node.
    fn round(&mut self, per_round: u64) {
        for _ in 0..per_round {
            self.seq += 1;
            let cmd = Command {
                client: 1,
                seq: self.seq,
                op: self.seq,
            };
            self.step(self.leader, Input::Propose(cmd));
        }
        self.drain();
    }

    fn applied(&self) -> u64 {
        self.nodes.iter().map(|n| n.state().0).min().unwrap_or(0)
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("three_servers");
    for per_round in [1, BATCH] {
        group.throughput(Throughput::Elements(ROUNDS * per_round));
        group.bench_with_input(
            BenchmarkId::new("commands_per_round", per_round),
            &per_round,
            |b, &n| {
                let mut cluster = Cluster::new();
                b.iter(|| {
                    for _ in 0..ROUNDS {
                        cluster.round(n);
                    }
                    black_box(cluster.applied())
                });
                assert_eq!(
                    cluster.applied(),
                    cluster.seq,
                    "every command must be applied on every node"
                );
            },
        );
    }
    group.finish();
}

/// Runs rounds for `duration` and returns commands applied on all nodes per second.
fn measure(per_round: u64, duration: Duration) -> f64 {
    let mut cluster = Cluster::new();
    let start = Instant::now();
    while start.elapsed() < duration {
        for _ in 0..ROUNDS {
            cluster.round(per_round);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(cluster.applied(), cluster.seq);
    cluster.applied() as f64 / secs
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    // Criterion's list mode (`cargo bench -- --list`) and test mode should not
    // print figures.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let unbatched = measure(1, Duration::from_secs(2));
    let batched = measure(BATCH, Duration::from_secs(2));
    println!(
        "summary: unbatched {:.2} M commands/s ({:.2}x target, {:.2}x reference); \
         batched x{BATCH} {:.2} M commands/s ({:.2}x target, {:.2}x reference)",
        unbatched / 1e6,
        unbatched / TARGET_UNBATCHED,
        unbatched / REFERENCE_UNBATCHED,
        batched / 1e6,
        batched / TARGET_BATCHED,
        batched / REFERENCE_BATCHED,
    );
}
