//! The kill test: real server processes on loopback, clients writing all the
//! time, and a random server SIGKILLed and restarted over and over. Afterwards:
//! no acknowledged put is lost, nothing is duplicated, every server holds the
//! same log, and the client history respects real-time order.
//!
//! Bounded by default (a few rounds). The long variant:
//! `KILL_ROUNDS=100 cargo test --release -p paxos-tcp --test kill -- --nocapture`
//! (`KILL_SEED=<n>` replays a schedule).

mod common;

use common::{runtime, Cluster};
use paxos_tcp::check::{self, History};
use paxos_tcp::client::{Session, SessionOptions};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TIMEOUT_MS: u64 = 200;
const CLIENTS: u64 = 4;
const READERS: u64 = 2;
const DEFAULT_ROUNDS: u64 = 4;
/// Workload time between kills, and downtime of a killed server (ms ranges).
const UP_MS: (u64, u64) = (150, 500);
const DOWN_MS: (u64, u64) = (0, 300);
/// How long the survivors may take to agree at the end.
const SETTLE: Duration = Duration::from_secs(30);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn between(rng: &mut ChaCha8Rng, (lo, hi): (u64, u64)) -> u64 {
    lo + rng.next_u64() % (hi - lo + 1)
}

fn kill_and_restart(servers: usize, reads: &str) {
    let rounds = env_u64("KILL_ROUNDS").unwrap_or(DEFAULT_ROUNDS);
    let seed = env_u64("KILL_SEED").unwrap_or_else(paxos_tcp::client::random_client_id);
    println!("kill test: {servers} servers, --reads {reads}, {rounds} rounds, KILL_SEED={seed}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cluster = Cluster::new(servers, TIMEOUT_MS);
    cluster.extra_args = vec!["--reads".into(), reads.into()];
    cluster.start_all();
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
            // Half the clients follow the leader hint; the others stay put,
            // so forwarding is exercised across every leader change too.
            let mut session = cluster.session(1000 + c, opts).follow_leader(c % 2 == 0);
            // Spread the clients over the servers.
            for _ in 0..c % servers as u64 {
                session = rotate(session);
            }
            common::spawn_writer(&rt, c, session, history, stop)
        })
        .collect();
    // Readers: gets all the time, through every server, checked against
    // the puts acknowledged before each began.
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (history, stop) = (history.clone(), stop.clone());
            let mut session = cluster.session(2000 + r, opts).follow_leader(r % 2 == 0);
            for _ in 0..r % servers as u64 {
                session = rotate(session);
            }
            rt.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let invoked = Instant::now();
                    match session.get_all().await {
                        Ok((_, log)) => history.lock().unwrap().gets.push(check::GetRecord {
                            via: format!("reader {r}"),
                            invoked,
                            completed: Instant::now(),
                            log,
                        }),
                        Err(e) => panic!("reader {r}: a get failed for good: {e}"),
                    }
                    // Pacing, not synchronisation: leave the writers room.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();

    for round in 0..rounds {
        std::thread::sleep(Duration::from_millis(between(&mut rng, UP_MS)));
        let victim = (rng.next_u64() % servers as u64) as usize;
        let acked = history
            .lock()
            .unwrap()
            .puts
            .iter()
            .filter(|p| p.acked.is_some())
            .count();
        println!("round {round}: kill server {victim} ({acked} puts acknowledged so far)");
        cluster.kill(victim);
        std::thread::sleep(Duration::from_millis(between(&mut rng, DOWN_MS)));
        cluster.start(victim);
    }
    // Writes keep going a little after the last restart, so the restarted
    // server must catch up with a moving log.
    std::thread::sleep(Duration::from_millis(UP_MS.1));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        rt.block_on(w).expect("a writer panicked");
    }
    for r in readers {
        rt.block_on(r).expect("a reader panicked");
    }

    // Every server's own replica, read through itself, until they agree.
    let finals = common::final_logs(
        &cluster,
        &(0..cluster.count()).collect::<Vec<_>>(),
        &rt,
        &history,
        opts,
        SETTLE,
    );
    let history = history.lock().unwrap().clone();
    let acked = history.puts.iter().filter(|p| p.acked.is_some()).count();
    println!(
        "{acked} puts acknowledged, final log of {} messages",
        finals[0].1.len()
    );
    assert!(acked as u64 >= CLIENTS, "the clients made no progress");
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

/// The same session, starting at the next server in its list.
fn rotate(session: Session) -> Session {
    let mut s = session;
    s.rotate_server();
    s
}

#[test]
fn three_servers_survive_repeated_sigkill_and_restart() {
    for reads in ["log", "index", "lease"] {
        kill_and_restart(3, reads);
    }
}

#[test]
fn five_servers_survive_repeated_sigkill_and_restart() {
    for reads in ["log", "index", "lease"] {
        kill_and_restart(5, reads);
    }
}
