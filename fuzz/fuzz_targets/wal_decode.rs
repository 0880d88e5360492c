//! See `paxos_fuzz_targets::wal_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| paxos_fuzz_targets::wal_decode::run(data));
