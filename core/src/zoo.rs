//! Deliberate bugs, for testing the testers (cargo feature `bug-zoo`).
//!
//! Each [`Bug`] is a realistic mistake in one role, switched on in one
//! process with the `set_bug` method of its machine. The simulator sweeps
//! with one bug on at a time and must report a violation for each: that is
//! how its checkers show they have teeth. Without the feature none of this
//! is compiled and every machine runs only its correct code.

use serde::{Deserialize, Serialize};

/// One deliberate bug.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Bug {
    /// No bug.
    #[default]
    None,
    /// Acceptor: accepts a value in a ballot below its promise.
    AcceptBelowPromise,
    /// Acceptor: promises without persisting the promise.
    PromiseNotPersisted,
    /// Acceptor: acknowledges a vote to the leader before persisting it.
    VoteSentBeforePersist,
    /// Acceptor: its promise leaves out the values it accepted.
    PromiseOmitsVotes,
    /// Proposer: phase 1 adopts the lowest-ballot value instead of the highest.
    AdoptLowestBallot,
    /// Proposer: counts every acknowledgement, so a duplicated one counts twice.
    CountDuplicateAcks,
    /// Proposer: the election timeout is not randomised.
    FixedElectionTimeout,
    /// Proposer: campaigns without persisting its ballot.
    CampaignNotPersisted,
    /// Proposer: resets its election timer for every candidate it hears.
    NoCandidateGrace,
    /// Learner: takes a leader's commit point for votes of any ballot.
    CommitAnyBallot,
    /// Learner: takes a value as chosen one vote short of a quorum.
    DeliverOnMinority,
    /// Learner: catch-up recovery keeps the lowest-ballot vote.
    VotesLowestBallot,
    /// Replica: executes a retried request again.
    ReExecuteRetries,
    /// Replica: snapshots leave out the session table.
    SnapshotWithoutSessions,
    /// Session: retries under a new sequence number.
    RetryWithNewSeq,
    /// Server: persists a trim point before the snapshot that covers it.
    TrimBeforeSnapshot,
    /// Server: installs a peer's snapshot even when it is behind.
    InstallBehind,
    /// Server: installs a snapshot without moving its learner.
    LearnerNotMovedOnInstall,
    /// Server: serves reads from its own replica without a read index.
    ReadLocally,
    /// Server: rejoins after losing its state and votes at once, with what
    /// it forgot.
    RejoinWithoutAbstaining,
    /// Proposer: goes on proposing commands after its stop-sign.
    ProposeAfterStopSign,
    /// Server: removed from the configuration, it still votes in it.
    RemovedMemberVotes,
}

impl Bug {
    /// Every bug, in a fixed order.
    pub const ALL: [Bug; 22] = [
        Bug::AcceptBelowPromise,
        Bug::PromiseNotPersisted,
        Bug::VoteSentBeforePersist,
        Bug::PromiseOmitsVotes,
        Bug::AdoptLowestBallot,
        Bug::CountDuplicateAcks,
        Bug::FixedElectionTimeout,
        Bug::CampaignNotPersisted,
        Bug::NoCandidateGrace,
        Bug::CommitAnyBallot,
        Bug::DeliverOnMinority,
        Bug::VotesLowestBallot,
        Bug::ReExecuteRetries,
        Bug::SnapshotWithoutSessions,
        Bug::RetryWithNewSeq,
        Bug::TrimBeforeSnapshot,
        Bug::InstallBehind,
        Bug::LearnerNotMovedOnInstall,
        Bug::ReadLocally,
        Bug::RejoinWithoutAbstaining,
        Bug::ProposeAfterStopSign,
        Bug::RemovedMemberVotes,
    ];

    /// The name used on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Bug::None => "none",
            Bug::AcceptBelowPromise => "accept-below-promise",
            Bug::PromiseNotPersisted => "promise-not-persisted",
            Bug::VoteSentBeforePersist => "vote-sent-before-persist",
            Bug::PromiseOmitsVotes => "promise-omits-votes",
            Bug::AdoptLowestBallot => "adopt-lowest-ballot",
            Bug::CountDuplicateAcks => "count-duplicate-acks",
            Bug::FixedElectionTimeout => "fixed-election-timeout",
            Bug::CampaignNotPersisted => "campaign-not-persisted",
            Bug::NoCandidateGrace => "no-candidate-grace",
            Bug::CommitAnyBallot => "commit-any-ballot",
            Bug::DeliverOnMinority => "deliver-on-minority",
            Bug::VotesLowestBallot => "votes-lowest-ballot",
            Bug::ReExecuteRetries => "re-execute-retries",
            Bug::SnapshotWithoutSessions => "snapshot-without-sessions",
            Bug::RetryWithNewSeq => "retry-with-new-seq",
            Bug::TrimBeforeSnapshot => "trim-before-snapshot",
            Bug::InstallBehind => "install-behind",
            Bug::LearnerNotMovedOnInstall => "learner-not-moved-on-install",
            Bug::ReadLocally => "read-locally",
            Bug::RejoinWithoutAbstaining => "rejoin-without-abstaining",
            Bug::ProposeAfterStopSign => "propose-after-stop-sign",
            Bug::RemovedMemberVotes => "removed-member-votes",
        }
    }

    /// One line on what the bug does, for listings.
    pub fn describe(self) -> &'static str {
        match self {
            Bug::None => "no bug",
            Bug::AcceptBelowPromise => "acceptor accepts in a ballot below its promise",
            Bug::PromiseNotPersisted => "acceptor promises without persisting the promise",
            Bug::VoteSentBeforePersist => "acceptor acknowledges a vote before persisting it",
            Bug::PromiseOmitsVotes => "acceptor's promise leaves out the values it accepted",
            Bug::AdoptLowestBallot => "proposer adopts the lowest-ballot value in phase 1",
            Bug::CountDuplicateAcks => "proposer counts a duplicated acknowledgement twice",
            Bug::FixedElectionTimeout => "proposer's election timeout is not randomised",
            Bug::CampaignNotPersisted => "proposer campaigns without persisting its ballot",
            Bug::NoCandidateGrace => "proposer resets its timer for every candidate it hears",
            Bug::CommitAnyBallot => "learner takes a commit point for votes of any ballot",
            Bug::DeliverOnMinority => "learner delivers one vote short of a quorum",
            Bug::VotesLowestBallot => "learner's catch-up keeps the lowest-ballot vote",
            Bug::ReExecuteRetries => "replica executes a retried request again",
            Bug::SnapshotWithoutSessions => "replica's snapshot leaves out the session table",
            Bug::RetryWithNewSeq => "client session retries under a new sequence number",
            Bug::TrimBeforeSnapshot => "server persists a trim point before its snapshot",
            Bug::InstallBehind => "server installs a peer's snapshot that is behind it",
            Bug::LearnerNotMovedOnInstall => {
                "server installs a snapshot without moving its learner"
            }
            Bug::ReadLocally => "server serves reads from its own replica, no read index",
            Bug::RejoinWithoutAbstaining => "server that lost its disk votes at once, forgetting",
            Bug::ProposeAfterStopSign => "proposer goes on proposing after its stop-sign",
            Bug::RemovedMemberVotes => "server removed from the configuration still votes",
        }
    }

    /// Parses a name printed by [`Bug::name`].
    pub fn parse(name: &str) -> Option<Bug> {
        core::iter::once(Bug::None)
            .chain(Bug::ALL)
            .find(|b| b.name() == name)
    }
}
