//! Checks on what leaves a process, at the moment it leaves, against what
//! that process has on disk (invariants 8 and 9 of sim/README.md).
//!
//! The simulator holds every action that follows an unsynced write until the
//! fsync, as drivers do, so a core that emits its persist barrier *after*
//! the message it covers (or forgets it) sends a promise or a vote nobody
//! can rely on. A crash that loses exactly that write would show it as an
//! agreement or durability failure, but only if the crash happens to fall
//! there. These checks see it every time: a message's content is compared
//! with the durable state of its sender when it goes out.

use crate::check::{Check, Failure, Invariant};
use paxos_core::{Ballot, Message, Record, Slot};
use std::collections::BTreeMap;

/// The documented bounds on messages (see `paxos_core::Config`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `batch_max`: commands in one slot's value.
    pub batch_max: usize,
    /// `catchup_chunk`: slots in one `Decided` or `Votes`.
    pub catchup_chunk: usize,
    /// `2 * retain_slots + 4 * pipeline_window`: the slots an acceptor may
    /// hold, hence the values in one `Promise`.
    pub promise_max: u64,
}

/// What one process has on disk, as far as its messages depend on it.
#[derive(Clone, Debug, Default)]
struct OnDisk {
    promised: Ballot,
    campaign: Ballot,
    votes: BTreeMap<Slot, Ballot>,
    trimmed: Slot,
    snapshot: Slot,
    /// The disk was wiped and `Record::Rejoined` is not on it yet: the
    /// acceptor must answer nothing.
    rejoining: bool,
}

impl OnDisk {
    fn apply<C>(&mut self, record: &Record<C>) {
        match record {
            Record::Promised(b) => self.promised = self.promised.max(*b),
            Record::Accepted(pv) => {
                self.promised = self.promised.max(pv.ballot);
                if pv.slot >= self.trimmed {
                    let vote = self.votes.entry(pv.slot).or_insert(pv.ballot);
                    *vote = (*vote).max(pv.ballot);
                }
            }
            Record::Trimmed(t) => {
                self.trimmed = self.trimmed.max(*t);
                self.votes = self.votes.split_off(&self.trimmed);
            }
            Record::Campaign(b) => self.campaign = self.campaign.max(*b),
            Record::Rejoining => self.rejoining = true,
            Record::Rejoined => self.rejoining = false,
        }
    }

    /// Is a vote of `ballot` in `slot` on disk (or below the trim point,
    /// where the acceptor no longer vouches for anything but what was chosen)?
    fn covers_vote(&self, slot: Slot, ballot: Ballot) -> bool {
        slot < self.trimmed || self.votes.get(&slot).is_some_and(|b| *b >= ballot)
    }
}

/// Durable state of every process, fed by the simulated disks.
#[derive(Clone, Debug)]
pub struct DurableChecker {
    nodes: Vec<OnDisk>,
    limits: Limits,
}

impl DurableChecker {
    /// A checker for `nodes` processes whose messages must keep to `limits`.
    pub fn new(nodes: usize, limits: Limits) -> Self {
        DurableChecker {
            nodes: vec![OnDisk::default(); nodes],
            limits,
        }
    }

    /// A record of `node` reached its disk.
    pub fn record<C>(&mut self, node: usize, record: &Record<C>) {
        self.nodes[node].apply(record);
    }

    /// A snapshot reaching `next_slot` reached the disk of `node`.
    pub fn snapshot(&mut self, node: usize, next_slot: Slot) {
        let d = &mut self.nodes[node];
        d.snapshot = d.snapshot.max(next_slot);
    }

    /// `node`'s log was replaced by a snapshot (if any) and `records`.
    pub fn compacted<C>(&mut self, node: usize, snapshot: Option<Slot>, records: &[Record<C>]) {
        let mut d = OnDisk {
            snapshot: snapshot.unwrap_or(0),
            ..OnDisk::default()
        };
        for r in records {
            d.apply(r);
        }
        self.nodes[node] = d;
    }

    /// `node` lost its disk (it rejoins as a new process).
    pub fn wiped(&mut self, node: usize) {
        self.nodes[node] = OnDisk {
            rejoining: true,
            ..OnDisk::default()
        };
    }

    /// A server's durable trim point must never pass its durable snapshot:
    /// the values below the trim point exist only in that snapshot.
    pub fn check_trim(&self, node: usize) -> Check {
        let d = &self.nodes[node];
        if d.trimmed > d.snapshot {
            return Err(Failure::new(
                Invariant::Durability,
                format!(
                    "node {node} made its trim point {} durable with its durable snapshot only at slot {}",
                    d.trimmed, d.snapshot
                ),
            ));
        }
        Ok(())
    }

    /// `msg` leaves `node` now: what it reports must already be on disk,
    /// and it must keep to the documented limits.
    pub fn check_send<C, P>(&self, node: usize, msg: &Message<C, P>) -> Check {
        let d = &self.nodes[node];
        let early = |what: String| {
            Err(Failure::new(
                Invariant::PersistBeforeSend,
                format!("node {node} sent {what}"),
            ))
        };
        let over = |what: String| {
            Err(Failure::new(
                Invariant::Limit,
                format!("node {node} sent {what}"),
            ))
        };
        if d.rejoining && msg.is_acceptor_answer() {
            return Err(Failure::new(
                Invariant::Rejoin,
                format!(
                    "node {node} lost its disk and sent a {} before it rejoined",
                    msg.kind()
                ),
            ));
        }
        match msg {
            Message::Promise {
                ballot, accepted, ..
            } => {
                if d.promised < *ballot {
                    return early(format!(
                        "a promise of {ballot} with only {} on disk",
                        d.promised
                    ));
                }
                if accepted.len() as u64 > self.limits.promise_max {
                    return over(format!(
                        "a promise of {} values, above 2 * retain_slots + 4 * pipeline_window = {}",
                        accepted.len(),
                        self.limits.promise_max
                    ));
                }
            }
            Message::Accepted { ballot, slot, .. } if !d.covers_vote(*slot, *ballot) => {
                return early(format!("a vote for slot {slot} in {ballot} not on disk"));
            }
            Message::Votes {
                first_slot, votes, ..
            } => {
                if votes.len() > self.limits.catchup_chunk {
                    return over(format!(
                        "{} votes in one answer, above catchup_chunk {}",
                        votes.len(),
                        self.limits.catchup_chunk
                    ));
                }
                for (slot, vote) in (*first_slot..).zip(votes) {
                    if let Some((b, _)) = vote {
                        if !d.covers_vote(slot, *b) {
                            return early(format!(
                                "in a catch-up answer a vote for slot {slot} in {b} not on disk"
                            ));
                        }
                    }
                }
            }
            // The lowest round of a configuration is a rejoining server's
            // probe, which never leads.
            Message::Prepare { ballot, .. }
                if d.campaign < *ballot
                    && ballot.round > paxos_core::Ballot::epoch_floor(ballot.epoch()).round =>
            {
                return early(format!(
                    "a prepare in {ballot} with its campaign at {} on disk",
                    d.campaign
                ));
            }
            Message::Decided { values, .. } if values.len() > self.limits.catchup_chunk => {
                return over(format!(
                    "{} values in one catch-up reply, above catchup_chunk {}",
                    values.len(),
                    self.limits.catchup_chunk
                ));
            }
            Message::Accept { value, slot, .. }
                if value.commands().len() > self.limits.batch_max =>
            {
                return over(format!(
                    "{} commands in slot {slot}, above batch_max {}",
                    value.commands().len(),
                    self.limits.batch_max
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::{NodeId, PValue, Value};

    const LIMITS: Limits = Limits {
        batch_max: 2,
        catchup_chunk: 2,
        promise_max: 3,
    };

    fn b(round: u64) -> Ballot {
        Ballot::new(round, NodeId(1))
    }

    fn vote(slot: Slot, ballot: Ballot) -> Record<u64> {
        Record::Accepted(PValue {
            slot,
            ballot,
            value: Value::Noop,
        })
    }

    fn accepted(slot: Slot, ballot: Ballot) -> Message<u64> {
        Message::Accepted {
            ballot,
            slot,
            value: None,
        }
    }

    #[test]
    fn a_vote_or_promise_sent_before_it_is_on_disk_is_reported() {
        let mut c = DurableChecker::new(1, LIMITS);
        let promise = |ballot| Message::<u64>::Promise {
            ballot,
            trimmed_below: 0,
            accepted: vec![],
        };
        let err = c.check_send(0, &promise(b(2))).unwrap_err();
        assert_eq!(err.invariant, Invariant::PersistBeforeSend);
        assert!(c.check_send(0, &accepted(4, b(2))).is_err());
        c.record(0, &vote(4, b(2)));
        assert!(
            c.check_send(0, &promise(b(2))).is_ok(),
            "a vote implies the promise"
        );
        assert!(c.check_send(0, &accepted(4, b(2))).is_ok());
        assert!(c.check_send(0, &accepted(4, b(3))).is_err());
        let prepare = Message::<u64>::Prepare {
            ballot: b(5),
            from_slot: 0,
        };
        assert!(c.check_send(0, &prepare).is_err());
        c.record(0, &Record::<u64>::Campaign(b(5)));
        assert!(c.check_send(0, &prepare).is_ok());
        // Below the trim point only chosen values remain: nothing to check.
        c.record(0, &Record::<u64>::Trimmed(10));
        assert!(c.check_send(0, &accepted(7, b(9))).is_ok());
    }

    #[test]
    fn a_trim_point_past_the_durable_snapshot_is_reported() {
        let mut c = DurableChecker::new(1, LIMITS);
        c.snapshot(0, 8);
        c.record(0, &Record::<u64>::Trimmed(8));
        assert!(c.check_trim(0).is_ok());
        c.record(0, &Record::<u64>::Trimmed(9));
        assert_eq!(
            c.check_trim(0).unwrap_err().invariant,
            Invariant::Durability
        );
        c.compacted(0, Some(20), &[Record::<u64>::Trimmed(9)]);
        assert!(c.check_trim(0).is_ok());
    }

    #[test]
    fn messages_above_the_documented_limits_are_reported() {
        let c = DurableChecker::new(1, LIMITS);
        let decided = Message::<u64>::Decided {
            first_slot: 0,
            values: vec![Value::Noop; 3],
        };
        assert_eq!(
            c.check_send(0, &decided).unwrap_err().invariant,
            Invariant::Limit
        );
        let cmd = |seq| paxos_core::Command {
            client: 1,
            seq,
            op: 0u64,
        };
        let accept: Message<u64> = Message::Accept {
            ballot: b(1),
            slot: 0,
            value: Value::Batch(vec![cmd(1), cmd(2), cmd(3)].into()),
            commit: 0,
        };
        assert!(c.check_send(0, &accept).is_err());
    }
}
