//! `cargo bench -p paxos-tcp --bench snapshot_install`: how fast a server
//! installs a peer's snapshot of a large chat room, the way the driver does
//! it — the peer frame decoded from its wire bytes, then the core message
//! handed to `Server::step` through `Input::Receive`, the door every input
//! uses — beside baselines measured in the same run on the same room: a
//! plain clone of the room (the least an install that keeps a copy for its
//! `PersistSnapshot` can cost) and a plain postcard decode of the room alone
//! (the least a decode can cost). It prints messages/s, MB/s of wire bytes
//! and the ratios to the baselines; it asserts only that the install
//! happened, never anything about time.
//!
//! An install clones the room once for its `PersistSnapshot`, and a server
//! far enough ahead of its trim point then trims its acceptor behind a
//! snapshot of its own, a second clone: `/clone` near 1 for a room that
//! stays in the allocator's warm memory, more for one that does not.

use paxos_core::{
    Action, Config, Event, Input, Message, NodeId, Process, Server, ServerSnapshot, SessionEntry,
    Snapshot,
};
use paxos_tcp::chat::{Chat, ChatOutput};
use paxos_tcp::wire::{decode, encode, PeerFrame};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Room sizes, in messages (the chat room's keys: one entry per message).
const SIZES: [usize; 2] = [100_000, 1_000_000];

/// Client sessions in the snapshot's session table.
const SESSIONS: u64 = 1_000;

/// A room of `n` messages of 30 to 90 bytes, as people type them, and the
/// session table of its clients.
fn room(n: usize) -> ServerSnapshot<Chat> {
    const WORDS: [&str; 12] = [
        "hello", "anyone", "around", "deploy", "looks", "fine", "on", "node", "two", "lunch", "at",
        "noon",
    ];
    let messages = (0..n)
        .map(|i| {
            let mut m = format!("user-{:04}: ", i % 9_973);
            let words = 4 + i % 11;
            for w in 0..words {
                m.push_str(WORDS[(i * 7 + w * 3) % WORDS.len()]);
                m.push(' ');
            }
            m.push_str(&i.to_string());
            m
        })
        .collect();
    let sessions = (0..SESSIONS)
        .map(|client| SessionEntry {
            client: client + 1,
            seq: 17,
            slot: n as u64 - SESSIONS + client,
            output: ChatOutput::Appended {
                index: n as u64 - SESSIONS + client,
            },
        })
        .collect();
    Snapshot {
        next_slot: n as u64,
        state: Chat { messages },
        sessions,
        membership: None,
    }
}

fn config() -> Config {
    Config::new(NodeId(1), vec![NodeId(0), NodeId(1), NodeId(2)]).with_seed(1)
}

/// Times `f` once on a fresh input from `setup` (not timed), keeping the
/// fastest time seen in `best`.
fn time<I, O>(best: &mut Duration, setup: impl FnOnce() -> I, f: impl FnOnce(I) -> O) {
    let input = setup();
    let start = Instant::now();
    let output = f(input);
    let elapsed = start.elapsed();
    drop(black_box(output));
    *best = (*best).min(elapsed);
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    println!(
        "snapshot install into a paxos_core::Server<Chat>, fastest of several runs each \
         (times in s, then M messages/s and MB/s of wire bytes)"
    );
    println!("load average at start: {}", load_average());
    println!(
        "{:>9} {:>9} | {:>34} | {:>34} | {:>34} | {:>7} {:>7} {:>7} {:>7}",
        "messages",
        "wire MB",
        "decode frame (M msg/s, MB/s)",
        "Receive(Snapshot) (M msg/s, MB/s)",
        "decode + install (M msg/s, MB/s)",
        "/decode",
        "/clone",
        "/beside",
        "/both"
    );
    for n in SIZES {
        let snapshot = room(n);
        let wire = encode(&PeerFrame::Paxos(Message::Snapshot(Box::new(
            snapshot.clone(),
        ))));
        let state_bytes = encode(&snapshot.state);
        // Fewer, longer runs for the larger room. The six measurements
        // take turns, so that whatever else the machine does falls on all
        // of them alike; the fastest of each is kept.
        let reps = if n >= 1_000_000 { 10 } else { 40 };
        let install = |msg| {
            let mut server = Server::new(config(), Chat::default()).unwrap();
            let out = server.step(Input::Receive {
                from: Process::server(NodeId(0)),
                msg,
            });
            (server, out)
        };
        let message = || match decode::<PeerFrame>(&wire).unwrap() {
            PeerFrame::Paxos(msg) => msg,
            PeerFrame::Hello { .. } => unreachable!("a snapshot frame"),
        };
        let [mut plain_decode, mut plain_clone, mut beside, mut frame_decode, mut step, mut both] =
            [Duration::MAX; 6];
        for _ in 0..reps {
            // Baselines: a plain decode of the room alone, a plain clone of it.
            time(
                &mut plain_decode,
                || (),
                |()| decode::<Chat>(&state_bytes).unwrap(),
            );
            time(&mut plain_clone, || (), |()| snapshot.state.clone());
            // The same clone while a decoded message is held, as the
            // install's copy for its `PersistSnapshot` is made: the heap
            // holds two rooms then, not one.
            time(&mut beside, message, |msg| (snapshot.state.clone(), msg));
            // The driver's decode of the whole peer frame.
            time(
                &mut frame_decode,
                || (),
                |()| decode::<PeerFrame>(&wire).unwrap(),
            );
            // The install proper: a decoded message into a fresh server.
            time(&mut step, message, install);
            // Both, as a server receiving the frame does them.
            time(&mut both, || (), |()| install(message()));
        }
        // Check, once, that the install happened and reached the donor's slot.
        let (server, out) = install(message());
        assert_eq!(server.applied_up_to(), n as u64);
        assert_eq!(server.state().messages.len(), n);
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::Event(Event::SnapshotInstalled { .. }))));
        assert!(matches!(out[0], Action::PersistSnapshot(_)));
        drop((server, out));
        let mb = wire.len() as f64 / 1e6;
        let rates = |d: Duration| {
            let s = d.as_secs_f64();
            format!("{:>8.3} s {:>7.2} {:>9.1}", s, n as f64 / s / 1e6, mb / s)
        };
        println!(
            "{:>9} {:>9.1} | {:>34} | {:>34} | {:>34} | {:>7.2} {:>7.2} {:>7.2} {:>7.2}",
            n,
            mb,
            rates(frame_decode),
            rates(step),
            rates(both),
            frame_decode.as_secs_f64() / plain_decode.as_secs_f64(),
            step.as_secs_f64() / plain_clone.as_secs_f64(),
            step.as_secs_f64() / beside.as_secs_f64(),
            both.as_secs_f64() / (plain_decode + plain_clone).as_secs_f64(),
        );
        println!(
            "{:>9} {:>9} | baselines: plain decode of the room {:.3} s, plain clone {:.3} s, \
             clone beside a decoded copy {:.3} s",
            "",
            "",
            plain_decode.as_secs_f64(),
            plain_clone.as_secs_f64(),
            beside.as_secs_f64()
        );
    }
    println!(
        "/decode: frame decode over a plain decode of the room; /clone: Receive(Snapshot) \
         over a plain clone of the room; /beside: the same over the clone beside a decoded copy; /both: decode + install over the two baselines' sum"
    );
    println!("load average at end: {}", load_average());
}
