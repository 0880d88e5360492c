//! See `paxos_fuzz_targets::decode_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| paxos_fuzz_targets::decode_message::run(data));
