//! See `paxos_fuzz_targets::cluster_schedule`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| paxos_fuzz_targets::cluster_schedule::run_schedule(data));
