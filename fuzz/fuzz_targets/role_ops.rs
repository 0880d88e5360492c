//! See `paxos_fuzz_targets::role_ops`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| paxos_fuzz_targets::role_ops::run(data));
