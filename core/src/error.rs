//! Errors for callers who misuse the API. Peers that send nonsense never cause
//! an error: their messages are counted and dropped (see [`crate::Event::Ignored`]).

use crate::types::{NodeId, Slot};
use thiserror::Error;

/// A [`crate::Config`] that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// `members` is empty: there is nobody to form a quorum.
    #[error("the member list is empty; name at least one acceptor")]
    NoMembers,
    /// More members than the vote masks can hold.
    #[error(
        "{count} members is more than the limit of {}",
        crate::config::MEMBERS_MAX
    )]
    TooManyMembers {
        /// How many were given.
        count: usize,
    },
    /// A member is listed twice, which would let one node count twice in a quorum.
    #[error("member {id} is listed twice")]
    DuplicateMember {
        /// The repeated id.
        id: NodeId,
    },
    /// A timeout or limit is zero.
    #[error("{name} must be greater than zero")]
    Zero {
        /// The setting.
        name: &'static str,
    },
    /// Followers would time out before the leader's next heartbeat.
    #[error("heartbeat_ticks ({heartbeat_ticks}) must be below election_timeout_ticks ({election_timeout_ticks})")]
    HeartbeatTooSlow {
        /// The heartbeat period.
        heartbeat_ticks: u32,
        /// The election timeout.
        election_timeout_ticks: u32,
    },
    /// Leases must end before anyone may campaign, and the drift bound
    /// must leave a lease something.
    #[error(
        "lease_ticks ({lease_ticks}) must be below election_timeout_ticks ({election_timeout_ticks}) and clock_drift_percent ({clock_drift_percent}) at most 50"
    )]
    Lease {
        /// The lease.
        lease_ticks: u32,
        /// The election timeout.
        election_timeout_ticks: u32,
        /// The drift bound.
        clock_drift_percent: u32,
    },
    /// A rejoining member needs a majority of the members among the others.
    #[error(
        "a cluster of {members} cannot rejoin a member that lost its state: \
         it needs a majority of the members besides the one rejoining (at least 3 members)"
    )]
    CannotRejoin {
        /// How many members the cluster has.
        members: usize,
    },
    /// This role needs its own id among the members (acceptors and servers do).
    #[error("this process's id {id} is not among the members")]
    NotAMember {
        /// The id.
        id: NodeId,
    },
}

/// Persisted records that cannot belong to one history.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RecoverError {
    /// Two different values were recorded as accepted in the same slot and ballot.
    #[error("slot {slot}: two different values recorded for the same ballot")]
    ConflictingAccepted {
        /// The slot.
        slot: Slot,
    },
    /// The configuration is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
}
