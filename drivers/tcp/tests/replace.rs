//! The rolling-replacement kill test: three servers under steady load,
//! each replaced in turn by a new one (`--join`, then `remove`), the old
//! one SIGKILLed as soon as it is out, and a member SIGKILLed and
//! restarted between replacements. Afterwards: no acknowledged put is
//! lost, nothing is duplicated, the three new servers hold the same log,
//! and the client history respects real-time order.
//!
//! `KILL_SEED=<n>` replays a schedule of the restarts.

mod common;

use common::{runtime, Cluster};
use paxos_tcp::check::{self, History};
use paxos_tcp::client::SessionOptions;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TIMEOUT_MS: u64 = 200;
const CLIENTS: u64 = 4;
const ORIGINAL: usize = 3;
/// How long a joining server may take to be added.
const JOIN_WAIT: Duration = Duration::from_secs(60);
/// How long the survivors may take to agree at the end.
const SETTLE: Duration = Duration::from_secs(30);

fn acked(history: &Mutex<History>) -> usize {
    let h = history.lock().unwrap();
    h.puts.iter().filter(|p| p.acked.is_some()).count()
}

/// Waits until server `id` logs that the cluster added it.
fn await_joined(cluster: &Cluster, id: usize) {
    let deadline = Instant::now() + JOIN_WAIT;
    loop {
        let out = std::fs::read_to_string(cluster.log_path(id)).unwrap_or_default();
        if out.contains(paxos_tcp::server::JOINED_LINE) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "server {id} was not added within {JOIN_WAIT:?}:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_server_is_replaced_under_load_and_nothing_acknowledged_is_lost() {
    let seed = std::env::var("KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(paxos_tcp::client::random_client_id);
    println!("replacement test: KILL_SEED={seed}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Ids 0-2 start as the members; 3-5 replace them one by one.
    let mut cluster = Cluster::new(2 * ORIGINAL, TIMEOUT_MS);
    cluster.extra_args = vec!["--members".into(), "0,1,2".into()];
    let joins: Vec<String> = cluster
        .client_addrs()
        .iter()
        .map(|a| a.to_string())
        .collect();
    for id in ORIGINAL..2 * ORIGINAL {
        cluster
            .server_args
            .insert(id, vec!["--join".into(), joins.join(",")]);
    }
    for id in 0..ORIGINAL {
        cluster.spawn(id);
    }
    for id in 0..ORIGINAL {
        cluster.wait_ready(id);
    }
    let rt = runtime();
    let history = Arc::new(Mutex::new(History::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let opts = SessionOptions {
        attempt_timeout: Duration::from_millis(300),
        deadline: Duration::from_secs(60),
        retry_pause: Duration::from_millis(10),
    };
    let writers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (history, stop) = (history.clone(), stop.clone());
            let session = cluster.session(1000 + c, opts);
            common::spawn_writer(&rt, c, session, history, stop)
        })
        .collect();
    let mut members: Vec<usize> = (0..ORIGINAL).collect();
    for old in 0..ORIGINAL {
        let new = ORIGINAL + old;
        let before = acked(&history);
        cluster.start(new);
        await_joined(&cluster, new);
        members.push(new);
        let mut admin = cluster.session(3000 + old as u64, opts);
        let (epoch, now) = rt
            .block_on(admin.remove_server(old as u32))
            .unwrap_or_else(|e| panic!("removing server {old} failed: {e}"));
        members.retain(|&m| m != old);
        cluster.kill(old);
        println!(
            "server {old} replaced by {new}: configuration {epoch} of {now:?} ({} puts acknowledged, {} during the change)",
            acked(&history),
            acked(&history) - before
        );
        // A member crashes and comes back before the next replacement.
        let victim = members[(rng.next_u64() % members.len() as u64) as usize];
        cluster.kill(victim);
        std::thread::sleep(Duration::from_millis(rng.next_u64() % 300));
        cluster.start(victim);
    }
    // Writes go on for a while in the final configuration.
    let target = acked(&history) + 20;
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked(&history) < target && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        rt.block_on(w).expect("a writer panicked");
    }

    let finals = common::final_logs(&cluster, &members, &rt, &history, opts, SETTLE);
    let history = history.lock().unwrap().clone();
    let acked = history.puts.iter().filter(|p| p.acked.is_some()).count();
    println!(
        "{acked} puts acknowledged, final log of {} messages on servers {members:?}",
        finals[0].1.len()
    );
    assert_eq!(members, [3, 4, 5], "every original server was replaced");
    assert!(acked >= 20, "the clients made no progress");
    let mut failures = Vec::new();
    for (name, violations) in check::check_all(&history, &finals) {
        for v in violations {
            failures.push(format!("{name}: {v}"));
        }
    }
    if !failures.is_empty() {
        let kept = cluster.keep();
        panic!(
            "KILL_SEED={seed}: {failures:#?}\nserver logs in {}",
            kept.display()
        );
    }
}
