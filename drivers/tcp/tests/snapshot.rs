//! Log compaction and snapshot transfer: a server whose log is compacted into
//! a snapshot restarts with everything, and a server that fell behind peers
//! whose logs no longer reach back far enough catches up by snapshot.

mod common;

use common::{counter, runtime, Cluster};
use paxos_tcp::client::{Session, SessionOptions};
use std::time::Duration;

const TIMEOUT_MS: u64 = 200;
/// Small enough that a few dozen puts trigger several compactions.
const COMPACT_BYTES: &str = "1024";
const PUTS: usize = 200;
const RETAIN_SLOTS: usize = 16;

fn args() -> Vec<String> {
    [
        "--compact-bytes",
        COMPACT_BYTES,
        "--retain-slots",
        &RETAIN_SLOTS.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn opts() -> SessionOptions {
    SessionOptions {
        attempt_timeout: Duration::from_millis(500),
        deadline: Duration::from_secs(30),
        ..SessionOptions::default()
    }
}

#[test]
fn compacted_log_restores_every_message_after_restart() {
    let mut cluster = Cluster::new(1, TIMEOUT_MS);
    cluster.extra_args = args();
    cluster.start_all();
    let rt = runtime();
    let mut s = cluster.session(1, opts());
    let expected: Vec<String> = (0..PUTS).map(|i| format!("m{i}")).collect();
    for m in &expected {
        rt.block_on(s.put(m)).unwrap();
    }
    let out = cluster.terminate(0);
    assert!(counter(&out, "compactions") >= 2, "{out}");
    {
        // The log is a snapshot plus a bounded tail of records, not one
        // record per put since the start.
        let (_, recovered) = paxos_tcp::wal::Wal::open(&cluster.data_dir(0)).unwrap();
        let snapshot = recovered.snapshot.expect("a snapshot");
        assert!(snapshot.next_slot > 0);
        assert!(
            recovered.records.len() < PUTS / 2,
            "{} records survive compaction",
            recovered.records.len()
        );
    }
    cluster.start(0);
    let mut s = cluster.session(2, opts());
    assert_eq!(rt.block_on(s.get_all()).unwrap().1, expected);
    // Puts after the restart keep working and keep their place.
    rt.block_on(s.put("after restart")).unwrap();
    assert_eq!(rt.block_on(s.get_all()).unwrap().1.len(), PUTS + 1);
}

#[test]
fn lagging_server_catches_up_by_snapshot_when_peers_no_longer_retain_its_gap() {
    let mut cluster = Cluster::new(3, TIMEOUT_MS);
    cluster.extra_args = args();
    cluster.extra_args.push("-v".into());
    cluster.start_all();
    let rt = runtime();
    let mut s = cluster.session(1, opts());
    rt.block_on(s.put("before")).unwrap();
    cluster.kill(2);
    let mut expected = vec!["before".to_string()];
    for i in 0..PUTS {
        let m = format!("while 2 is down {i}");
        rt.block_on(s.put(&m)).unwrap();
        expected.push(m);
    }
    // Restarted from their snapshots, 0 and 1 no longer hold the slots that
    // 2 missed in memory, so plain catch-up cannot serve them.
    cluster.kill(0);
    cluster.kill(1);
    cluster.start(0);
    cluster.start(1);
    rt.block_on(s.put("after")).unwrap();
    expected.push("after".into());
    cluster.start(2);
    // Read through server 2 only: its own replica must reach the end.
    let mut via2 =
        Session::new(7, 1, vec![cluster.client_addrs()[2]], opts()).with_tls(cluster.client_tls());
    let log = rt.block_on(via2.get_all());
    let log = log.unwrap_or_else(|e| panic!("{e}: server 2 said:\n{}", cluster.output(2)));
    assert_eq!(log.1, expected);
    let out = cluster.terminate(2);
    assert!(counter(&out, "snapshots_installed") >= 1, "{out}");
    // The core of a peer that no longer retained the gap decided to send it.
    let sent: u64 = [0, 1]
        .map(|i| counter(&cluster.terminate(i), "snapshots_sent"))
        .iter()
        .sum();
    assert!(sent >= 1, "no peer sent a snapshot");
}
