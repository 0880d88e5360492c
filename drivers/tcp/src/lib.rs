//! # paxos-tcp: the replicated chat room over TCP
//!
//! A thin tokio driver around [`paxos_core::Server`]: peer links and client
//! connections carry length-delimited postcard frames ([`wire`]), a
//! write-ahead log makes every `Persist` durable before the actions after it
//! ([`wal`], [`server`]), and the replicated state machine is an append-only
//! chat log ([`chat`]). [`client`] is the retrying session every binary uses;
//! [`harness`] runs the old scenario files and checks what they promise.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod chat;
pub mod check;
pub mod cli;
pub mod client;
pub mod harness;
pub mod record;
pub mod repl;
pub mod server;
pub mod tls;
pub mod wal;
pub mod wire;
