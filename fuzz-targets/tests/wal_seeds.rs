//! Writes the seed corpus of the `wal_decode` fuzz target (valid, torn and
//! corrupt logs of both drivers) to `fuzz/corpus/wal_decode/`. On purpose only:
//! `cargo test -p paxos-fuzz-targets --test wal_seeds -- --ignored`.

use std::path::Path;

#[test]
#[ignore = "writes files into fuzz/corpus; run it on purpose"]
fn write_wal_decode_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/wal_decode");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in paxos_fuzz_targets::wal_decode::seeds() {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}
