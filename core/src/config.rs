//! Configuration of every role: membership, timeouts in ticks, limits, rng seed.
//! [`Config::validate`] rejects settings that could not work, before any step runs.

use crate::error::ConfigError;
use crate::types::NodeId;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Most acceptors a cluster may have (votes are tracked in a 64-bit mask).
pub const MEMBERS_MAX: usize = 64;

/// Settings shared by every role of one process.
///
/// Timeouts count [`crate::Input::Tick`]s, so the driver's tick period sets
/// their real length. Every limit turns overload into a clean refusal.
///
/// ```
/// use paxos_core::{Config, ConfigError, NodeId};
/// let mut config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]).with_seed(7);
/// assert_eq!(config.quorum(), 2);
/// config.batch_max = 0;
/// assert_eq!(config.validate(), Err(ConfigError::Zero { name: "batch_max" }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// This process's id within its role (in a [`crate::Server`] cluster, the node's id).
    pub id: NodeId,
    /// The acceptors, which are every node in a `Server` cluster. A quorum is a
    /// strict majority of them.
    pub members: Vec<NodeId>,
    /// Leader heartbeat period.
    pub heartbeat_ticks: u32,
    /// A follower campaigns after hearing nothing from a leader for a random
    /// time in `election_timeout_ticks .. 2 * election_timeout_ticks`.
    pub election_timeout_ticks: u32,
    /// Unanswered `Prepare` and `Accept` messages are sent again after this long.
    pub retransmit_ticks: u32,
    /// A learner that stays stuck behind a known-chosen slot for this long asks
    /// its peers for the missing values.
    pub catchup_ticks: u32,
    /// Least ticks between two snapshots a [`crate::Server`] sends the same
    /// peer. A peer below every retained value asks again every
    /// `catchup_ticks` until a snapshot arrives, and a snapshot may be large.
    pub snapshot_resend_ticks: u32,
    /// Most slots a leader keeps in phase 2 at once.
    pub pipeline_window: usize,
    /// Most commands the leader puts into one slot.
    pub batch_max: usize,
    /// Most commands waiting for a slot; more are dropped as overloaded.
    pub pending_max: usize,
    /// Most slots in one catch-up reply (`Votes` or `Decided`). A learner
    /// asks for four chunks at a time, and a peer answers them in as many
    /// `Decided` messages, so a learner far behind moves four chunks per
    /// round trip.
    pub catchup_chunk: usize,
    /// Chosen values a learner keeps to serve catch-up; acceptors discard their
    /// records this far below the delivered point. An acceptor therefore holds
    /// at most about `2 * retain_slots + 4 * pipeline_window` votes, and that
    /// bounds the size of one phase 1 promise (the simulator checks it).
    pub retain_slots: u64,
    /// The same bound counted in commands, for when slots carry batches:
    /// a learner keeps chosen values while they hold at most
    /// `retain_commands` commands (a no-op counts as one), and a
    /// [`crate::Server`] trims its acceptor, and snapshots, once that many
    /// more commands have gone out of its learner's reach. Whichever of
    /// `retain_slots` and `retain_commands` is hit first decides, so with
    /// slots of up to `batch_max` commands the chosen values a node keeps
    /// stay near `2 * retain_commands` commands however full the batches
    /// are, and the slot bounds above still hold as well. The newest chosen
    /// value is always kept, even if it alone holds more.
    ///
    /// A peer that lags by more than the retained values is sent a
    /// snapshot instead of the values ([`Config::snapshot_resend_ticks`]),
    /// so a smaller bound trades memory for more snapshots.
    ///
    /// ```
    /// use paxos_core::{Config, NodeId};
    /// let mut config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
    /// // Slots of 100 commands: 65 536 slots would hold 6.5 M commands;
    /// // this keeps about 10 000 commands (100 slots) instead.
    /// config.retain_commands = 10_000;
    /// assert_eq!(config.validate(), Ok(()));
    /// ```
    #[serde(default = "default_retain_commands")]
    pub retain_commands: u64,
    /// Learners run as processes of their own (the multicast layout): an
    /// acceptor then also sends every vote, value included, to the learners
    /// group, and answers their catch-up requests from its votes. A
    /// [`crate::Server`] cluster leaves this off: each server's learner
    /// hears its own acceptor and the leader.
    pub learners_apart: bool,
    /// With `learners_apart`: votes an acceptor keeps in memory below its
    /// trim point (never persisted, never in a promise) to answer learners'
    /// catch-up. An acceptor that trims soon after a slot is chosen (to keep
    /// promises small) may otherwise discard the only copies of a value
    /// whose votes every learner missed. It must cover, in slots, the
    /// longest time every learner may be cut off from the acceptors;
    /// otherwise such a slot is never delivered.
    pub vote_history_slots: u64,
    /// Leader leases for reads ([`crate::Server`] only; 0, the default,
    /// turns them off). A server that acknowledges a leader's heartbeat
    /// promises no other candidate anything for `lease_ticks` of its own
    /// ticks (nor for `lease_ticks` after it starts, as it may have
    /// promised before a crash). So once a quorum acknowledged a heartbeat,
    /// no other leader can be elected for that long, and the leader serves
    /// reads with no message round for [`Config::leader_lease_ticks`] after
    /// it sent the heartbeat. Must be below `election_timeout_ticks`.
    ///
    /// **Assumption:** no node's tick clock runs faster or slower than
    /// real time by more than `clock_drift_percent` (a process pause counts
    /// as a slow clock: a driver must feed every overdue tick before any
    /// other input). If it does, a deposed leader can serve a stale read
    /// (the simulator shows it); writes stay safe whatever the clocks do.
    pub lease_ticks: u32,
    /// The clock-drift bound leases assume, in percent of real time (see
    /// [`Config::lease_ticks`]). At most 50.
    pub clock_drift_percent: u32,
    /// Seed of the deterministic random generator (election timeouts).
    pub seed: u64,
}

/// Default of [`Config::retain_commands`]: as many commands as the default
/// `retain_slots` has slots, so that a cluster of single-command slots
/// keeps what it kept before the bound existed.
fn default_retain_commands() -> u64 {
    1 << 16
}

impl Config {
    /// Defaults suited to a 10 ms tick, for the process `id` among `members`.
    pub fn new(id: NodeId, members: Vec<NodeId>) -> Self {
        Config {
            id,
            members,
            heartbeat_ticks: 2,
            election_timeout_ticks: 10,
            retransmit_ticks: 4,
            catchup_ticks: 4,
            snapshot_resend_ticks: 20,
            pipeline_window: 64,
            batch_max: 256,
            pending_max: 16_384,
            catchup_chunk: 512,
            retain_slots: 1 << 16,
            retain_commands: default_retain_commands(),
            learners_apart: false,
            vote_history_slots: 4096,
            lease_ticks: 0,
            clock_drift_percent: 5,
            seed: 0,
        }
    }

    /// How long a leader may serve reads on its lease after sending the
    /// heartbeat a quorum acknowledged, in its own ticks: the acceptors'
    /// `lease_ticks` shrunk by the drift bound both ways, less a tick for
    /// the phase of each clock. Zero when leases are off.
    pub fn leader_lease_ticks(&self) -> u32 {
        let drift = u64::from(self.clock_drift_percent.min(50));
        let granted = u64::from(self.lease_ticks.saturating_sub(1));
        let shrunk = granted * (100 - drift) / (100 + drift);
        u32::try_from(shrunk.saturating_sub(1)).unwrap_or(0)
    }

    /// The same settings with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How many distinct acceptors make a quorum.
    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// Checks that the settings can work. Roles call this in their constructors.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.members.is_empty() {
            return Err(ConfigError::NoMembers);
        }
        if self.members.len() > MEMBERS_MAX {
            return Err(ConfigError::TooManyMembers {
                count: self.members.len(),
            });
        }
        let mut sorted = self.members.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(ConfigError::DuplicateMember { id: w[0] });
        }
        let ticks = [
            ("heartbeat_ticks", self.heartbeat_ticks),
            ("election_timeout_ticks", self.election_timeout_ticks),
            ("retransmit_ticks", self.retransmit_ticks),
            ("catchup_ticks", self.catchup_ticks),
            ("snapshot_resend_ticks", self.snapshot_resend_ticks),
        ];
        if let Some((name, _)) = ticks.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero { name });
        }
        if self.heartbeat_ticks >= self.election_timeout_ticks {
            return Err(ConfigError::HeartbeatTooSlow {
                heartbeat_ticks: self.heartbeat_ticks,
                election_timeout_ticks: self.election_timeout_ticks,
            });
        }
        let limits = [
            ("pipeline_window", self.pipeline_window),
            ("batch_max", self.batch_max),
            ("pending_max", self.pending_max),
            ("catchup_chunk", self.catchup_chunk),
        ];
        if let Some((name, _)) = limits.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero { name });
        }
        if self.lease_ticks >= self.election_timeout_ticks || self.clock_drift_percent > 50 {
            return Err(ConfigError::Lease {
                lease_ticks: self.lease_ticks,
                election_timeout_ticks: self.election_timeout_ticks,
                clock_drift_percent: self.clock_drift_percent,
            });
        }
        Ok(())
    }

    /// Index of acceptor `id` in the vote masks, or `None` if it is not a member.
    pub(crate) fn member_index(&self, id: NodeId) -> Option<usize> {
        self.members.iter().position(|&m| m == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn config_rejects_settings_that_cannot_work() {
        let ok = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.quorum(), 2);
        let mut c = ok.clone();
        c.members.clear();
        assert_eq!(c.validate(), Err(ConfigError::NoMembers));
        let mut c = ok.clone();
        c.members.push(NodeId(2));
        assert_eq!(
            c.validate(),
            Err(ConfigError::DuplicateMember { id: NodeId(2) })
        );
        let mut c = ok.clone();
        c.members = (0..65).map(NodeId).collect();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::TooManyMembers { count: 65 })
        ));
        let mut c = ok.clone();
        c.election_timeout_ticks = 0;
        assert_eq!(
            c.validate(),
            Err(ConfigError::Zero {
                name: "election_timeout_ticks"
            })
        );
        let mut c = ok.clone();
        c.heartbeat_ticks = c.election_timeout_ticks;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::HeartbeatTooSlow { .. })
        ));
        let mut c = ok;
        c.batch_max = 0;
        assert_eq!(c.validate(), Err(ConfigError::Zero { name: "batch_max" }));
    }

    #[test]
    fn quorum_is_a_strict_majority_and_the_member_limit_is_inclusive() {
        let sized = |n: u32| Config::new(NodeId(0), (0..n).map(NodeId).collect());
        let quorums: Vec<usize> = [1, 2, 3, 4, 5, 7]
            .iter()
            .map(|&n| sized(n).quorum())
            .collect();
        assert_eq!(quorums, [1, 2, 2, 3, 3, 4]);
        assert_eq!(sized(MEMBERS_MAX as u32).validate(), Ok(()));
    }
}
