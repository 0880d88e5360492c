//! Values per second delivered to both learners, on a namespace LAN, at 0 %,
//! 20 % and 30 % loss per receiver, against the old program's figure; at 0 %
//! both without and with authenticated datagrams (`--key`), one after the
//! other in the same run, and what authentication costs.
//!
//! `cargo bench -p paxos-multicast` (as root). Not a test: it asserts only
//! that every value arrived exactly once, never anything about time.
//!
//! Environment:
//! * `ABCAST_BENCH_LOSS=20,30`: only the keyless cases at these loss rates
//!   (in percent).
//! * `ABCAST_BENCH_BASELINE=PATH`: also run each case with the `abcast` at
//!   PATH (another build, say of the main branch), right after this one,
//!   and print the ratio of the two.
//! * `ABCAST_BENCH_COUNTERS=1`: print every process's exit counters after
//!   each case (and keep its working directory).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{require_root, wait_until, Lan, Proc, WorkDir};
use std::time::{Duration, Instant};

const ABCAST: &str = env!("CARGO_BIN_EXE_abcast");
/// The old program: about 840 values/s, its client pausing 1 ms per value.
const OLD_VALUES_PER_S: f64 = 840.0;
const CLIENTS: u32 = 2;
const DEADLINE: Duration = Duration::from_secs(300);

fn measure(abcast: &str, baseline: bool, loss: f64, values_per_client: usize, key: bool) -> f64 {
    let tag = format!(
        "bench{}{}{}",
        (loss * 100.0) as u32,
        if key { "k" } else { "" },
        if baseline { "b" } else { "" }
    );
    let mut dir = WorkDir::new(&tag);
    if key {
        let out = std::process::Command::new(abcast)
            .args(["keygen", "abcast.key"])
            .current_dir(&dir.path)
            .output()
            .unwrap();
        assert!(out.status.success(), "keygen: {out:?}");
    }
    let mut lan = Lan::new(&tag);
    let mut host = |name: &str| lan.host(name, loss);
    let ns: Vec<(String, String)> = [
        "acceptor 1",
        "acceptor 2",
        "acceptor 3",
        "proposer 1",
        "proposer 2",
        "learner 1",
        "learner 2",
        "client 1",
        "client 2",
    ]
    .iter()
    .map(|n| (n.to_string(), host(&n.replace(' ', ""))))
    .collect();
    let spawn = |i: usize, stdin: Option<&std::path::Path>| {
        let (name, ns) = &ns[i];
        let (role, id) = name.split_once(' ').unwrap();
        let mut args = vec!["-v", role, id];
        if key {
            args.extend(["--key", "abcast.key"]);
        }
        Proc::spawn(ns, &dir.path, name, abcast, &args, stdin)
    };
    let mut expected_bytes = 0u64;
    let mut submitted = Vec::new();
    for c in 1..=CLIENTS {
        let values: Vec<String> = (0..values_per_client)
            .map(|i| format!("{c}{i:09}"))
            .collect();
        expected_bytes += values.iter().map(|v| v.len() as u64 + 1).sum::<u64>();
        std::fs::write(dir.path.join(format!("prop{c}")), values.join("\n") + "\n").unwrap();
        submitted.extend(values);
    }
    let mut servers: Vec<Proc> = (0..7).map(|i| spawn(i, None)).collect();
    // Let a leader be elected first: the figure is for a running cluster.
    let elected = wait_until(DEADLINE, || {
        servers[3..5]
            .iter()
            .any(|p| p.log().contains("state=Leader"))
    });
    assert!(elected, "no proposer became leader");
    let start = Instant::now();
    let mut clients: Vec<Proc> = (1..=CLIENTS as usize)
        .map(|c| spawn(6 + c, Some(&dir.path.join(format!("prop{c}")))))
        .collect();
    let learners = [&servers[5], &servers[6]];
    let done = wait_until(DEADLINE, || {
        learners
            .iter()
            .all(|l| std::fs::metadata(&l.stdout).map_or(0, |m| m.len()) >= expected_bytes)
    });
    let elapsed = start.elapsed();
    assert!(done, "not every value was delivered within {DEADLINE:?}");
    for c in &mut clients {
        c.wait_exit(DEADLINE).unwrap();
    }
    for s in &mut servers {
        s.stop();
    }
    if std::env::var_os("ABCAST_BENCH_COUNTERS").is_some() {
        dir.keep();
        for p in servers.iter().chain(&clients) {
            if let Some(line) = p.log().lines().rev().find(|l| l.starts_with("abcast ")) {
                println!("    {line}");
            }
        }
    }
    let out1 = servers[5].output_lines();
    assert_eq!(out1, servers[6].output_lines(), "learners differ");
    let (mut a, mut b) = (out1, submitted);
    a.sort_unstable();
    b.sort_unstable();
    assert!(a == b, "learners' output is not every value exactly once");
    (2 * values_per_client) as f64 / elapsed.as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists targets; nothing to list here.
    }
    require_root();
    println!("abcast throughput: 3 acceptors, 2 proposers, 2 learners, 2 clients, one namespace per process");
    println!("baseline: the old program, about {OLD_VALUES_PER_S} values/s");
    let only: Option<Vec<u32>> = std::env::var("ABCAST_BENCH_LOSS")
        .ok()
        .map(|v| v.split(',').filter_map(|p| p.trim().parse().ok()).collect());
    let baseline = std::env::var("ABCAST_BENCH_BASELINE").ok();
    if let Some(b) = &baseline {
        println!("each case also runs {b} (\"baseline build\") right after this build");
    }
    let mut unkeyed = None;
    let mut keyed = None;
    for (loss, values_per_client, key) in [
        (0.0, 500_000, false),
        (0.0, 500_000, true),
        (0.2, 100_000, false),
        (0.3, 100_000, false),
    ] {
        let percent = (loss * 100.0) as u32;
        if only
            .as_ref()
            .is_some_and(|only| key || !only.contains(&percent))
        {
            continue;
        }
        let rate = measure(ABCAST, false, loss, values_per_client, key);
        println!(
            "loss {:>2} %{}: {:>7} values in both learners at {:>9.0} values/s = {:>6.0} x the old program",
            percent,
            if key { ", HMAC" } else { "      " },
            2 * values_per_client,
            rate,
            rate / OLD_VALUES_PER_S
        );
        if let Some(b) = &baseline {
            let base = measure(b, true, loss, values_per_client, key);
            println!(
                "         baseline build: {base:>9.0} values/s; this build is {:.2} x the baseline build",
                rate / base
            );
        }
        if loss == 0.0 {
            *(if key { &mut keyed } else { &mut unkeyed }) = Some(rate);
        }
    }
    if let (Some(plain), Some(auth)) = (unkeyed, keyed) {
        println!(
            "authentication cost without loss: {:.1} % fewer values/s ({auth:.0} vs {plain:.0})",
            100.0 * (1.0 - auth / plain)
        );
    }
}
