//! # paxos-multicast: atomic broadcast over UDP multicast
//!
//! Runs one role of `paxos-core` per process — proposer, acceptor or learner —
//! plus a client, each joining its role's multicast group from `paxos.conf`.
//! Every learner prints the same values in the same order, each once, even
//! when datagrams are lost, a leader dies or an acceptor restarts.
//!
//! The driver only moves bytes and ticks: [`wire`] frames one core message per
//! datagram with the sender's role and id (and, with a key, a counter and a
//! MAC: [`auth`]), [`conf`] reads the groups, [`wal`]
//! keeps acceptors' and proposers' records durable, [`net`] owns the sockets
//! and the shared half of the loop, and [`roles`] has one short loop per role.
//! The core decides everything else: quorums, ballots, retransmission timing,
//! catch-up and the client's retries.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod conf;
pub mod net;
pub mod record;
pub mod roles;
pub mod wal;
pub mod wire;
