//! The flight recorder on a real cluster: three `chatroom-server --record`
//! processes under load, two of them SIGKILLed and restarted (so their
//! recordings hold a torn session and a fresh one), then every node's
//! recording replayed through the same core to identical actions.

mod common;

use common::{runtime, Cluster};
use paxos_tcp::client::{Session, SessionOptions};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT_MS: u64 = 200;

/// Waits (bounded) until `acked` grows by at least `n`.
fn wait_for_progress(acked: &AtomicU64, n: u64) {
    let from = acked.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::Relaxed) < from + n {
        assert!(Instant::now() < deadline, "the cluster made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn every_node_of_a_crashed_and_restarted_cluster_replays_to_identical_actions() {
    let mut cluster = Cluster::new(3, TIMEOUT_MS);
    cluster.record = true;
    // Small compaction and retain settings: checkpoints, snapshots and
    // trims are recorded and replayed too.
    cluster.extra_args = ["--compact-bytes", "20000", "--retain-slots", "16"]
        .map(String::from)
        .to_vec();
    cluster.start_all();
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let opts = SessionOptions {
        attempt_timeout: Duration::from_millis(300),
        deadline: Duration::from_secs(60),
        retry_pause: Duration::from_millis(10),
    };
    let writers: Vec<_> = (0..3u64)
        .map(|c| {
            let (stop, acked) = (stop.clone(), acked.clone());
            let mut session = Session::new(500 + c, 1, cluster.client_addrs(), opts)
                .with_tls(cluster.client_tls());
            for _ in 0..c {
                session.rotate_server();
            }
            rt.spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    session
                        .put(&format!("w{c}-{n}"))
                        .await
                        .unwrap_or_else(|e| panic!("put failed for good: {e}"));
                    n += 1;
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    wait_for_progress(&acked, 50);
    let mut restarts = [0usize; 3];
    for victim in [1, 0, 1] {
        cluster.kill(victim);
        wait_for_progress(&acked, 20);
        cluster.start(victim);
        restarts[victim] += 1;
        wait_for_progress(&acked, 50);
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        rt.block_on(w).expect("a writer panicked");
    }
    for id in 0..3 {
        let out = cluster.terminate(id);
        assert!(common::counter(&out, "recorded_steps") > 0, "{out}");
    }

    for (id, restarts) in restarts.iter().enumerate() {
        let bytes = std::fs::read(cluster.record_path(id)).unwrap();
        let sessions = paxos_tcp::record::replay(&bytes, &mut paxos_record::Quiet)
            .unwrap_or_else(|e| panic!("server {id}: {e}"));
        assert_eq!(
            sessions.len(),
            1 + restarts,
            "server {id}: one session per start"
        );
        for (i, s) in sessions.iter().enumerate() {
            assert!(s.steps > 0, "server {id} session {i} recorded nothing");
            assert!(s.actions > 0, "server {id} session {i} did nothing");
        }
        // The last session ended with SIGTERM, so its recording is whole.
        assert!(sessions.last().unwrap().torn.is_none(), "server {id}");
        println!(
            "server {id}: {} sessions, {} steps, {} actions, {} bytes",
            sessions.len(),
            sessions.iter().map(|s| s.steps).sum::<usize>(),
            sessions.iter().map(|s| s.actions).sum::<u64>(),
            bytes.len()
        );
    }
}

#[test]
fn a_recording_of_another_program_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.rec");
    std::fs::write(&path, b"not a recording at all").unwrap();
    let err = paxos_tcp::record::replay(&std::fs::read(&path).unwrap(), &mut paxos_record::Quiet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a flight recording"), "{err}");
}
