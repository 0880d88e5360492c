//! Replays every committed fuzz corpus file (and every saved crash) through the
//! same function the fuzz target calls, on stable Rust, so that every input the
//! fuzzer ever kept stays covered and every crash ever found stays fixed.

use std::fs;
use std::path::{Path, PathBuf};

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        if let Ok(entries) = fs::read_dir(&dir) {
            files.extend(
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file()),
            );
        }
    }
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = corpus_files(target);
    assert!(
        !files.is_empty(),
        "no corpus committed for {target} under fuzz/corpus/{target}"
    );
    for file in &files {
        let data = fs::read(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target} fails on {}", file.display());
    }
    println!("{target}: replayed {} inputs", files.len());
}

#[test]
fn role_ops_corpus_replays_cleanly() {
    replay("role_ops", paxos_fuzz_targets::role_ops::run);
}

#[test]
fn cluster_schedule_corpus_replays_cleanly() {
    replay(
        "cluster_schedule",
        paxos_fuzz_targets::cluster_schedule::run_schedule,
    );
}

#[test]
fn decode_message_corpus_replays_cleanly() {
    replay("decode_message", paxos_fuzz_targets::decode_message::run);
}

#[test]
fn wal_decode_corpus_replays_cleanly() {
    replay("wal_decode", paxos_fuzz_targets::wal_decode::run);
}
