//! The wire vocabulary: every message one role sends another.
//! Drivers encode these as they like; the core only ever sees them decoded.

use crate::action::DropReason;
use crate::types::{Ballot, ClientId, Command, NodeId, PValue, Slot, Value};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A protocol message. The sender's identity travels beside it, in
/// [`crate::Input::Receive`], so that quorums count distinct acceptors.
///
/// `P` is the snapshot a [`crate::Server`] sends a peer that lags behind
/// every value the others retain; the roles apart leave it `()`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message<C, P = ()> {
    /// Phase 1a: a candidate asks acceptors to promise `ballot` for every slot
    /// from `from_slot` on (slots below it are already chosen, as far as it knows).
    Prepare {
        /// The candidate's ballot.
        ballot: Ballot,
        /// First slot the candidate does not know to be chosen.
        from_slot: Slot,
    },
    /// Phase 1b: the acceptor promised `ballot` and reports what it accepted.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// The acceptor discarded its records below this slot; those slots are chosen.
        trimmed_below: Slot,
        /// Every value it accepted at or after the candidate's `from_slot`.
        accepted: Vec<PValue<C>>,
    },
    /// Rejection of a `Prepare` or `Accept` in `ballot`: the acceptor promised `promised`.
    Nack {
        /// The ballot that was rejected.
        ballot: Ballot,
        /// The higher ballot the acceptor is bound to.
        promised: Ballot,
    },
    /// Phase 2a: the leader of `ballot` asks acceptors to accept `value` in `slot`.
    Accept {
        /// The leader's ballot.
        ballot: Ballot,
        /// The slot.
        slot: Slot,
        /// The proposed value.
        value: Value<C>,
        /// Every slot below this is chosen; those proposed in `ballot` hold the
        /// value accepted in `ballot` (a commit point piggy-backed on phase 2).
        commit: Slot,
    },
    /// Phase 2b: the acceptor accepted `slot` in `ballot`. Sent to the leader
    /// without the value, and to learners with it when they run apart.
    Accepted {
        /// The ballot accepted in.
        ballot: Ballot,
        /// The slot.
        slot: Slot,
        /// The value, when the receiver may not have seen the `Accept`.
        value: Option<Value<C>>,
    },
    /// The leader is alive; slots below `commit` are chosen (see `Accept::commit`).
    Heartbeat {
        /// The leader's ballot.
        ballot: Ballot,
        /// The leader's commit point.
        commit: Slot,
        /// The leader's count of heartbeats in this ballot, echoed by
        /// `HeartbeatAck`.
        beat: u64,
    },
    /// An acceptor's answer to a `Heartbeat`: it has promised no ballot
    /// above `ballot`. A leader that hears no quorum of these (or of
    /// `Accepted`) for an election timeout steps down.
    HeartbeatAck {
        /// The leader's ballot.
        ballot: Ballot,
        /// The `beat` of the heartbeat answered.
        beat: u64,
    },
    /// A learner that has a gap asks for the chosen values of
    /// `from_slot..to_slot`, every one of which it knows to be chosen.
    /// Learners answer with `Decided`; acceptors (with the learners apart,
    /// or in a server whose learner lags too) with `Votes`.
    CatchUp {
        /// First slot wanted.
        from_slot: Slot,
        /// One past the last slot wanted.
        to_slot: Slot,
        /// The learner's number for this request, echoed by `Votes`.
        query: u64,
    },
    /// An acceptor's answer to a `CatchUp`: its current vote (ballot and
    /// value) for each slot from `first_slot` on, or `None` where it never
    /// voted. Slots it can no longer vouch for (trimmed past its history) are
    /// left out. A learner that gathers the answers to one query from a
    /// majority delivers, for each slot it knew chosen, the value of the
    /// highest-ballot vote among them — phase 1's rule, so it is the chosen
    /// value even when the votes sit in different ballots.
    Votes {
        /// Slot of `votes[0]`.
        first_slot: Slot,
        /// The `query` of the `CatchUp` answered.
        query: u64,
        /// The votes, in slot order.
        votes: Vec<Option<(Ballot, Value<C>)>>,
    },
    /// Chosen values of consecutive slots starting at `first_slot`.
    Decided {
        /// Slot of `values[0]`.
        first_slot: Slot,
        /// The chosen values, in slot order.
        values: Vec<Value<C>>,
    },
    /// Client commands a non-leader passes on to the leader it believes in.
    Forward {
        /// The commands, in the order their clients submitted them.
        commands: Vec<Command<C>>,
    },
    /// A server's replica snapshot, for a peer that asked for slots nobody
    /// retains any more. The receiver installs it if it is ahead.
    Snapshot(alloc::boxed::Box<P>),
    /// The answer to a `Forward` whose command was not taken up: the server
    /// that forwarded it tells its client ([`crate::Event::Dropped`]) at
    /// once, instead of the client waiting out its attempt. A leader sends
    /// it when overloaded; a server that is not the leader after all, with
    /// the leader it believes in.
    Refused {
        /// The command's client.
        client: ClientId,
        /// Its sequence number.
        seq: u64,
        /// Why.
        reason: DropReason,
    },
    /// A server asks the leader for a read index on behalf of read `id` of
    /// `client`, which one of its clients sent it. The read is named by
    /// its client's ids, which never repeat (as `seq` never does), so that
    /// a stale answer, duplicated or delayed across the asker's restart,
    /// cannot pass for a fresh one.
    ReadIndex {
        /// The read's client.
        client: ClientId,
        /// The read's id.
        id: u64,
    },
    /// The leader's answer to a `ReadIndex`: once the asker has applied every
    /// slot below `index`, it may serve the read at its state. `None` when
    /// the sender is not the leader, with the leader it believes in.
    ReadIndexReply {
        /// The read's client.
        client: ClientId,
        /// The read's id.
        id: u64,
        /// The read index, if the sender leads and confirmed it still does.
        index: Option<Slot>,
        /// The leader the sender believes in, when it is not.
        leader: Option<crate::types::NodeId>,
    },
    /// The leader of `ballot` hands the lead to `to` (a planned transfer,
    /// [`crate::Input::Transfer`]): it serves no more reads on its lease,
    /// and asks every server to let `to` depose it at once. A server that
    /// granted this ballot a lease releases it, and for an election timeout
    /// promises `to`'s candidacy although it hears a working leader; `to`
    /// campaigns as soon as it hears this.
    Handoff {
        /// The handing-off leader's ballot.
        ballot: Ballot,
        /// The server that is to lead next.
        to: crate::types::NodeId,
    },
    /// A server that lost its durable state ([`crate::Server::rejoin`])
    /// asks the leader it hears to hand it the lead: it can vote again
    /// only after it wins an election counted without itself, and the
    /// others promise no candidate while they hear a working leader.
    AskLead,
}

/// Whether `members` can be a configuration: one to [`crate::MEMBERS_MAX`]
/// servers, none twice. A stop-sign naming anything else is malformed.
pub fn valid_membership(members: &[NodeId]) -> bool {
    if members.is_empty() || members.len() > crate::MEMBERS_MAX {
        return false;
    }
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    sorted.windows(2).all(|w| w[0] != w[1])
}

/// Slots and ballot rounds at or above this are malformed. No real log or
/// election gets near it (it is 2^62), and the headroom keeps every `+ 1` and
/// window computation in the roles free of overflow.
pub const LIMIT: u64 = 1 << 62;

impl<C, P> Message<C, P> {
    /// True if every slot and ballot round in the message is below [`LIMIT`]
    /// and ranges are ordered. Roles ignore (and count) messages that are not.
    #[inline]
    pub fn is_well_formed(&self) -> bool {
        let ok = |n: u64| n < LIMIT;
        let ballot_ok = |b: &Ballot| ok(b.round);
        let value_ok = |v: &Value<C>| v.stop_sign().is_none_or(valid_membership);
        match self {
            Message::Prepare { ballot, from_slot } => ballot_ok(ballot) && ok(*from_slot),
            Message::Promise {
                ballot,
                trimmed_below,
                accepted,
            } => {
                ballot_ok(ballot)
                    && ok(*trimmed_below)
                    && accepted
                        .iter()
                        .all(|pv| ok(pv.slot) && ballot_ok(&pv.ballot) && value_ok(&pv.value))
            }
            Message::Nack { ballot, promised } => ballot_ok(ballot) && ballot_ok(promised),
            Message::Accept {
                ballot,
                slot,
                commit,
                value,
            } => ballot_ok(ballot) && ok(*slot) && ok(*commit) && value_ok(value),
            Message::Accepted {
                ballot,
                slot,
                value,
            } => ballot_ok(ballot) && ok(*slot) && value.as_ref().is_none_or(value_ok),
            Message::Heartbeat { ballot, commit, .. } => ballot_ok(ballot) && ok(*commit),
            Message::HeartbeatAck { ballot, .. } => ballot_ok(ballot),
            Message::CatchUp {
                from_slot, to_slot, ..
            } => ok(*to_slot) && from_slot <= to_slot,
            Message::Votes {
                first_slot, votes, ..
            } => {
                ok(first_slot.saturating_add(votes.len() as u64))
                    && votes
                        .iter()
                        .flatten()
                        .all(|(b, v)| ballot_ok(b) && value_ok(v))
            }
            Message::Decided { first_slot, values } => {
                ok(first_slot.saturating_add(values.len() as u64)) && values.iter().all(value_ok)
            }
            // The server that installs a snapshot checks its slot itself.
            Message::ReadIndexReply { index, .. } => index.is_none_or(ok),
            Message::Handoff { ballot, .. } => ballot_ok(ballot),
            Message::Forward { .. }
            | Message::Snapshot(_)
            | Message::Refused { .. }
            | Message::ReadIndex { .. }
            | Message::AskLead => true,
        }
    }

    /// Is this an acceptor's answer, which vouches for what it promised or
    /// voted (a promise, a refusal, a vote, a heartbeat acknowledgement or
    /// catch-up votes)? A server that lost its state sends none of these
    /// until it has rejoined ([`crate::Server::rejoin`]).
    pub fn is_acceptor_answer(&self) -> bool {
        matches!(
            self,
            Message::Promise { .. }
                | Message::Nack { .. }
                | Message::Accepted { .. }
                | Message::HeartbeatAck { .. }
                | Message::Votes { .. }
        )
    }

    /// A short name for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Prepare { .. } => "prepare",
            Message::Promise { .. } => "promise",
            Message::Nack { .. } => "nack",
            Message::Accept { .. } => "accept",
            Message::Accepted { .. } => "accepted",
            Message::Heartbeat { .. } => "heartbeat",
            Message::HeartbeatAck { .. } => "heartbeat-ack",
            Message::CatchUp { .. } => "catch-up",
            Message::Votes { .. } => "votes",
            Message::Decided { .. } => "decided",
            Message::Forward { .. } => "forward",
            Message::Snapshot(_) => "snapshot",
            Message::Refused { .. } => "refused",
            Message::ReadIndex { .. } => "read-index",
            Message::ReadIndexReply { .. } => "read-index-reply",
            Message::Handoff { .. } => "handoff",
            Message::AskLead => "ask-lead",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{NodeId, PValue, Value};
    use alloc::vec;

    /// Each message kind with every field in range, then with each field
    /// alone out of range (or a range reversed): only the first is well formed.
    fn cases() -> Vec<(Message<u64>, Vec<Message<u64>>)> {
        let b = Ballot::new(1, NodeId(1));
        let bad = Ballot::new(LIMIT, NodeId(1));
        let pv = |slot, ballot| PValue {
            slot,
            ballot,
            value: Value::Noop,
        };
        let promise = |ballot, trimmed_below, accepted| Message::Promise {
            ballot,
            trimmed_below,
            accepted,
        };
        let accept = |ballot, slot, commit| Message::Accept {
            ballot,
            slot,
            value: Value::Noop,
            commit,
        };
        let accepted = |ballot, slot| Message::Accepted {
            ballot,
            slot,
            value: None,
        };
        vec![
            (
                Message::Prepare {
                    ballot: b,
                    from_slot: 0,
                },
                vec![
                    Message::Prepare {
                        ballot: bad,
                        from_slot: 0,
                    },
                    Message::Prepare {
                        ballot: b,
                        from_slot: LIMIT,
                    },
                ],
            ),
            (
                promise(b, 0, vec![pv(1, b)]),
                vec![
                    promise(bad, 0, vec![pv(1, b)]),
                    promise(b, LIMIT, vec![pv(1, b)]),
                    promise(b, 0, vec![pv(LIMIT, b)]),
                    promise(b, 0, vec![pv(1, bad)]),
                ],
            ),
            (
                Message::Nack {
                    ballot: b,
                    promised: b,
                },
                vec![
                    Message::Nack {
                        ballot: bad,
                        promised: b,
                    },
                    Message::Nack {
                        ballot: b,
                        promised: bad,
                    },
                ],
            ),
            (
                accept(b, 1, 0),
                vec![accept(bad, 1, 0), accept(b, LIMIT, 0), accept(b, 1, LIMIT)],
            ),
            (accepted(b, 1), vec![accepted(bad, 1), accepted(b, LIMIT)]),
            (
                Message::Heartbeat {
                    ballot: b,
                    commit: 1,
                    beat: 1,
                },
                vec![
                    Message::Heartbeat {
                        ballot: bad,
                        commit: 1,
                        beat: 1,
                    },
                    Message::Heartbeat {
                        ballot: b,
                        commit: LIMIT,
                        beat: 1,
                    },
                ],
            ),
            (
                Message::CatchUp {
                    from_slot: 1,
                    to_slot: 2,
                    query: 0,
                },
                vec![
                    Message::CatchUp {
                        from_slot: 1,
                        to_slot: LIMIT,
                        query: 0,
                    },
                    Message::CatchUp {
                        from_slot: 2,
                        to_slot: 1,
                        query: 0,
                    },
                ],
            ),
            (
                Message::Votes {
                    first_slot: LIMIT - 2,
                    query: 3,
                    votes: vec![Some((b, Value::Noop))],
                },
                vec![
                    Message::Votes {
                        first_slot: LIMIT - 1,
                        query: 3,
                        votes: vec![None],
                    },
                    Message::Votes {
                        first_slot: 0,
                        query: 3,
                        votes: vec![Some((bad, Value::Noop))],
                    },
                ],
            ),
            (
                Message::Decided {
                    first_slot: LIMIT - 2,
                    values: vec![Value::Noop],
                },
                vec![Message::Decided {
                    first_slot: LIMIT - 1,
                    values: vec![Value::Noop],
                }],
            ),
        ]
    }

    #[test]
    fn any_one_field_out_of_range_makes_a_message_malformed() {
        for (good, bads) in cases() {
            assert!(good.is_well_formed(), "{good:?}");
            for bad in bads {
                assert!(!bad.is_well_formed(), "{bad:?}");
            }
        }
    }
}
