//! The bodies of the fuzz targets, as plain functions of the input bytes.
//!
//! `fuzz/` (cargo-fuzz, nightly) calls them from `fuzz_target!`; the ordinary
//! test `tests/corpus.rs` (stable) calls them on every committed corpus file, so
//! a crash found once stays fixed. Each function panics exactly when it finds a
//! bug, which is what both callers need.
#![forbid(unsafe_code)]

pub mod cluster_schedule;
pub mod decode_message;
pub mod role_ops;
pub mod wal_decode;
