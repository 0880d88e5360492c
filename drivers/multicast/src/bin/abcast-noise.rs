//! `abcast-noise`: a test tool that sends damaged datagrams to every group of a
//! `paxos.conf` — random bytes, truncated and bit-flipped real messages, other
//! protocols' traffic — to show that no role crashes or believes any of it.

use clap::Parser;
use paxos_core::{Ballot, Command, Destination, Message, NodeId, PValue, Role, Roles, Value};
use paxos_multicast::conf::Groups;
use paxos_multicast::net::send_socket;
use paxos_multicast::wire::{encode, Msg, Sender};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Datagrams per group per burst, and the pause between bursts.
const BURST: usize = 16;
const PAUSE: Duration = Duration::from_millis(5);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn samples() -> Vec<(Sender, Destination, Msg)> {
    let ballot = Ballot::new(1, NodeId(1));
    let value = Value::from_commands(vec![
        Command {
            client: 1,
            seq: 1,
            op: "one".to_string(),
        },
        Command {
            client: 2,
            seq: 1,
            op: "two".to_string(),
        },
    ]);
    let s = |role, id| Sender {
        role,
        id: NodeId(id),
    };
    let acceptors = Destination::Group(Roles::ACCEPTOR);
    let leader = Destination::to(Role::Proposer, NodeId(1));
    let learners = Destination::Group(Roles::LEARNER);
    vec![
        (
            s(Role::Proposer, 1),
            acceptors,
            Message::Prepare {
                ballot,
                from_slot: 0,
            },
        ),
        (
            s(Role::Proposer, 1),
            acceptors,
            Message::Accept {
                ballot,
                slot: 3,
                value: value.clone(),
                commit: 2,
            },
        ),
        (
            s(Role::Proposer, 1),
            Destination::Group(Roles::ALL),
            Message::Heartbeat { ballot, commit: 5 },
        ),
        (
            s(Role::Acceptor, 2),
            leader,
            Message::Promise {
                ballot,
                trimmed_below: 0,
                accepted: vec![PValue {
                    slot: 1,
                    ballot,
                    value: value.clone(),
                }],
            },
        ),
        (
            s(Role::Acceptor, 2),
            learners,
            Message::Accepted {
                ballot,
                slot: 3,
                value: Some(value.clone()),
            },
        ),
        (
            s(Role::Learner, 1),
            learners,
            Message::CatchUp {
                from_slot: 0,
                to_slot: 9,
                query: 1,
            },
        ),
        (
            s(Role::Learner, 1),
            Destination::to(Role::Learner, NodeId(2)),
            Message::Decided {
                first_slot: 0,
                values: vec![value.clone(), Value::Noop],
            },
        ),
        (
            s(Role::Client, 1),
            Destination::Group(Roles::PROPOSER),
            Message::Forward {
                commands: value.commands().to_vec(),
            },
        ),
    ]
}

/// One damaged datagram of a random kind.
fn garbage(rng: &mut Rng, real: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(4) {
        0 => (0..rng.below(1500)).map(|_| rng.next() as u8).collect(),
        1 => {
            let d = &real[rng.below(real.len())];
            d[..rng.below(d.len())].to_vec()
        }
        2 => {
            let mut d = real[rng.below(real.len())].clone();
            let i = 8 + rng.below(d.len() - 8);
            d[i] ^= 1 << rng.below(8);
            d
        }
        _ => {
            // Our magic and version, then noise.
            let mut d = b"Px\x02".to_vec();
            d.extend((0..rng.below(200)).map(|_| rng.next() as u8));
            d
        }
    }
}

/// Test tool: sends random, truncated and bit-flipped datagrams to every
/// group of a paxos.conf for SECONDS, to show that no abcast role crashes or
/// believes any of it.
///
/// It floods multicast groups, so it refuses to run in the machine's own
/// network namespace (run it under `ip netns exec NAME`) unless --force.
#[derive(Debug, Parser)]
#[command(name = "abcast-noise", version)]
struct Cli {
    /// The configuration file naming the groups.
    config: PathBuf,
    /// How long to send, in seconds (0 to 3600).
    #[arg(value_parser = seconds)]
    seconds: f64,
    /// Run even outside a network namespace of its own.
    #[arg(long)]
    force: bool,
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.0..=3600.0).contains(&s) => Ok(s),
        Ok(s) => Err(format!("{s} is not from 0 to 3600 seconds")),
        Err(_) => Err(format!("'{text}' is not a number of seconds")),
    }
}

/// Whether this process runs in a named network namespace (one that `ip
/// netns add` made, as the tests and scripts do): its namespace is one of
/// those under /run/netns. The machine's own namespace is not there.
fn in_named_namespace() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(mine) = std::fs::metadata("/proc/self/ns/net") else {
        return false;
    };
    ["/run/netns", "/var/run/netns"].iter().any(|dir| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                std::fs::metadata(e.path())
                    .is_ok_and(|m| (m.dev(), m.ino()) == (mine.dev(), mine.ino()))
            })
        })
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !cli.force && !in_named_namespace() {
        eprintln!(
            "abcast-noise: error: not inside a network namespace made for a test; run it as \
                 `ip netns exec NAME abcast-noise ...` so the noise stays there, or pass --force"
        );
        return ExitCode::from(2);
    }
    let groups = match Groups::load(&cli.config) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("abcast-noise: error: {e}");
            return ExitCode::from(2);
        }
    };
    let seconds = cli.seconds;
    let socket = match send_socket() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("abcast-noise: {e}");
            return ExitCode::FAILURE;
        }
    };
    let real: Vec<Vec<u8>> = samples()
        .iter()
        .map(|(from, to, msg)| {
            let mut buf = Vec::new();
            encode(*from, *to, msg, &mut buf).expect("samples are small");
            buf
        })
        .collect();
    let targets = [groups.proposers, groups.acceptors, groups.learners];
    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ u64::from(std::process::id()));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut sent = 0u64;
    while Instant::now() < deadline {
        for target in targets {
            for _ in 0..BURST {
                if socket.send_to(&garbage(&mut rng, &real), target).is_ok() {
                    sent += 1;
                }
            }
        }
        std::thread::sleep(PAUSE);
    }
    eprintln!("abcast-noise: sent={sent}");
    ExitCode::SUCCESS
}
