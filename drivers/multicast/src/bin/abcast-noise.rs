//! `abcast-noise`: a test tool that sends damaged datagrams to every group of a
//! `paxos.conf` — random bytes, truncated and bit-flipped real messages, other
//! protocols' traffic — to show that no role crashes or believes any of it.
//!
//! `abcast-noise <paxos.conf> <seconds> [MODES] [--force]`, MODES a
//! comma-separated list of:
//! * `garbage` (the default): the above;
//! * `forge`: well-formed authenticated datagrams posing as every role, with
//!   counters small and huge, signed with a key of the tool's own;
//! * `flip`: datagrams captured on the groups, one bit flipped after the
//!   version byte, sent again;
//! * `replay`: datagrams captured on the groups sent again unchanged, at once
//!   and again once they are old.
//!
//! It joins the groups to capture, and does not hear its own datagrams. It
//! floods multicast groups, so it refuses to run outside a network namespace
//! made with `ip netns add` unless `--force`.

use clap::Parser;
use paxos_core::{Ballot, Command, Destination, Message, NodeId, PValue, Role, Roles, Value};
use paxos_multicast::auth::{Key, KEY_BYTES};
use paxos_multicast::conf::Groups;
use paxos_multicast::net::{listen_socket_std, send_socket};
use paxos_multicast::wire::{encode, encode_as, sign, Framing, Msg, Sender};
use std::collections::VecDeque;
use std::net::{SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Datagrams per group per burst, and the pause between bursts.
const BURST: usize = 16;
/// Captured datagrams kept per group for flips and late replays.
const KEEP: usize = 4096;
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
            Message::Heartbeat {
                ballot,
                commit: 5,
                beat: 1,
            },
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
/// group of a paxos.conf for SECONDS — and, in its other modes, forged,
/// tampered and replayed authenticated ones — to show that no abcast role
/// crashes or believes any of it.
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
    /// What to send, a comma-separated list: garbage (random, truncated and
    /// bit-flipped datagrams), forge (authenticated datagrams signed with a
    /// key of the tool's own), flip (captured datagrams with one bit
    /// flipped), replay (captured datagrams again, at once and long after).
    #[arg(value_parser = parse_modes, default_value = "garbage")]
    modes: Modes,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Garbage,
    Forge,
    Flip,
    Replay,
}

/// The modes asked for (a newtype, so that clap takes the list as one value).
#[derive(Clone, Debug)]
struct Modes(Vec<Mode>);

fn parse_modes(text: &str) -> Result<Modes, String> {
    text.split(',')
        .map(|m| match m {
            "garbage" => Ok(Mode::Garbage),
            "forge" => Ok(Mode::Forge),
            "flip" => Ok(Mode::Flip),
            "replay" => Ok(Mode::Replay),
            other => Err(format!(
                "unknown mode '{other}' (garbage, forge, flip, replay)"
            )),
        })
        .collect::<Result<_, _>>()
        .map(Modes)
}

/// Authenticated datagrams signed with a key that is not the cluster's.
fn forged(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut key = [0u8; KEY_BYTES];
    for b in &mut key {
        *b = rng.next() as u8;
    }
    let key = Key::from_bytes(&key);
    samples()
        .iter()
        .map(|(from, to, msg)| {
            let mut buf = Vec::new();
            encode_as(Framing::Authenticated, *from, *to, msg, &mut buf)
                .expect("samples are small");
            let counter = match rng.below(3) {
                0 => u64::MAX,
                1 => rng.next(),
                _ => 1,
            };
            sign(&mut buf, counter, &key);
            buf
        })
        .collect()
}

/// What the tool captured on one group.
struct Tap {
    group: SocketAddrV4,
    socket: UdpSocket,
    /// Captured datagrams not replayed yet.
    fresh: Vec<Vec<u8>>,
    /// Older ones, for flips and late replays.
    old: VecDeque<Vec<u8>>,
}

impl Tap {
    fn capture(&mut self, buf: &mut [u8]) {
        while let Ok((len, _)) = self.socket.recv_from(buf) {
            self.fresh.push(buf[..len].to_vec());
        }
    }
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
    let modes = cli.modes.0;
    let groups = match Groups::load(&cli.config) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("abcast-noise: error: {e}");
            return ExitCode::from(2);
        }
    };
    let seconds = cli.seconds;
    let socket = match send_socket().and_then(|s| s.set_multicast_loop_v4(false).map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("abcast-noise: {e}");
            return ExitCode::FAILURE;
        }
    };
    let targets = [groups.proposers, groups.acceptors, groups.learners];
    let capture = modes.contains(&Mode::Flip) || modes.contains(&Mode::Replay);
    let mut taps = Vec::new();
    if capture {
        for group in targets {
            match listen_socket_std(group) {
                Ok(socket) => taps.push(Tap {
                    group,
                    socket,
                    fresh: Vec::new(),
                    old: VecDeque::new(),
                }),
                Err(e) => {
                    eprintln!("abcast-noise: cannot listen on {group}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let real: Vec<Vec<u8>> = samples()
        .iter()
        .map(|(from, to, msg)| {
            let mut buf = Vec::new();
            encode(*from, *to, msg, &mut buf).expect("samples are small");
            buf
        })
        .collect();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ u64::from(std::process::id()));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut buf = vec![0u8; 65_536];
    let (mut garbage_sent, mut forged_sent, mut flipped_sent, mut replayed_sent) = (0u64, 0, 0, 0);
    let send = |bytes: &[u8], target: SocketAddrV4, n: &mut u64| {
        if socket.send_to(bytes, target).is_ok() {
            *n += 1;
        }
    };
    while Instant::now() < deadline {
        for tap in &mut taps {
            tap.capture(&mut buf);
        }
        if modes.contains(&Mode::Garbage) {
            for target in targets {
                for _ in 0..BURST {
                    send(&garbage(&mut rng, &real), target, &mut garbage_sent);
                }
            }
        }
        if modes.contains(&Mode::Forge) {
            let forgeries = forged(&mut rng);
            for target in targets {
                for d in forgeries.iter().take(BURST) {
                    send(d, target, &mut forged_sent);
                }
            }
        }
        for tap in &mut taps {
            let fresh = std::mem::take(&mut tap.fresh);
            if modes.contains(&Mode::Replay) {
                // Each one again at once: its counter was just seen.
                for d in fresh.iter().take(BURST) {
                    send(d, tap.group, &mut replayed_sent);
                }
                // And some from longer ago (the older half of what was
                // kept): out of their sender's window, or marked in it.
                for _ in 0..BURST.min(tap.old.len() / 2) {
                    let d = &tap.old[rng.below(tap.old.len() / 2)];
                    send(d, tap.group, &mut replayed_sent);
                }
            }
            if modes.contains(&Mode::Flip) && !tap.old.is_empty() {
                for _ in 0..BURST {
                    let mut d = tap.old[rng.below(tap.old.len())].clone();
                    if d.len() > 3 {
                        let i = 3 + rng.below(d.len() - 3);
                        d[i] ^= 1 << rng.below(8);
                        send(&d, tap.group, &mut flipped_sent);
                    }
                }
            }
            tap.old.extend(fresh);
            while tap.old.len() > KEEP {
                tap.old.pop_front();
            }
        }
        std::thread::sleep(PAUSE);
    }
    eprintln!(
        "abcast-noise: sent={} garbage={garbage_sent} forged={forged_sent} flipped={flipped_sent} replayed={replayed_sent}",
        garbage_sent + forged_sent + flipped_sent + replayed_sent
    );
    ExitCode::SUCCESS
}
