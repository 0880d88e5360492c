//! The acceptor: Paxos's memory. It promises ballots and accepts values, persists
//! both before it answers, and is rebuilt only from what it persisted.

use crate::action::{Action, Checkpoint, Event, Input, Record};
use crate::address::{Addr, Destination, Process, Role, Roles};
use crate::config::Config;
use crate::error::{ConfigError, RecoverError};
use crate::learner::CATCHUP_BURST;
use crate::message::Message;
use crate::types::{Ballot, NodeId, PValue, Slot, Value};
use crate::window::SlotWindow;
use alloc::vec::Vec;
use core::cmp::Ordering;

/// One acceptor. See the crate docs for the persist-before-send contract: every
/// `Promise` and `Accepted` it emits comes after the [`Action::Persist`] that
/// makes it safe.
///
/// ```
/// use paxos_core::{Acceptor, Action, Ballot, Config, Input, Message, NodeId, Process, Record, Role};
/// let config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
/// let mut acceptor = Acceptor::<String>::new(&config).unwrap();
/// let ballot = Ballot::new(1, NodeId(2));
/// let prepare = Input::Receive {
///     from: Process::only(Role::Proposer, NodeId(2)),
///     msg: Message::Prepare { ballot, from_slot: 0 },
/// };
/// let out: Vec<Action<String>> = acceptor.step(prepare);
/// assert_eq!(out[0], Action::Persist(Record::Promised(ballot)), "durable before the promise");
/// assert!(matches!(out[1], Action::Send { msg: Message::Promise { .. }, .. }));
/// ```
#[derive(Clone, Debug)]
pub struct Acceptor<C> {
    id: NodeId,
    promised: Ballot,
    /// Accepted `(ballot, value)` per slot, from `vote_history` slots below
    /// the trim point on ([`Acceptor::history_start`]).
    log: SlotWindow<(Ballot, Value<C>)>,
    /// Slots below this were chosen; their votes are no longer part of this
    /// acceptor's durable state (the persisted trim point).
    trimmed: Slot,
    /// Votes kept below the trim point, only to answer catch-up.
    vote_history: u64,
    /// Also send `Accepted` (with the value) to every learner, for deployments
    /// where learners run apart and never see the `Accept`
    /// ([`Config::learners_apart`]).
    notify_learners: bool,
    retain_slots: u64,
    retain_commands: u64,
    /// Weight ([`Config::retain_commands`]) of the votes at or above the
    /// trim point.
    weight: u64,
    accept_ahead_max: u64,
    catchup_chunk: usize,
    ignored: u64,
    /// The server lost its durable state and has not yet rejoined
    /// ([`Record::Rejoining`]): this acceptor answers nothing.
    abstaining: bool,
    #[cfg(feature = "bug-zoo")]
    bug: crate::zoo::Bug,
}

impl<C: Clone> Acceptor<C> {
    /// Switches on a deliberate bug (testing the testers; see [`crate::zoo`]).
    #[cfg(feature = "bug-zoo")]
    pub fn set_bug(&mut self, bug: crate::zoo::Bug) {
        self.bug = bug;
    }

    /// A fresh acceptor with nothing promised or accepted.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        config.validate()?;
        if config.member_index(config.id).is_none() {
            return Err(ConfigError::NotAMember { id: config.id });
        }
        Ok(Acceptor {
            id: config.id,
            promised: Ballot::ZERO,
            log: SlotWindow::new(0),
            trimmed: 0,
            vote_history: if config.learners_apart {
                config.vote_history_slots
            } else {
                0
            },
            notify_learners: config.learners_apart,
            retain_slots: config.retain_slots,
            retain_commands: config.retain_commands,
            weight: 0,
            accept_ahead_max: config
                .retain_slots
                .saturating_mul(2)
                .saturating_add(config.pipeline_window as u64 * 4),
            catchup_chunk: config.catchup_chunk,
            ignored: 0,
            abstaining: false,
            #[cfg(feature = "bug-zoo")]
            bug: crate::zoo::Bug::None,
        })
    }

    /// Rebuilds an acceptor from the records it persisted, in the order it
    /// emitted them. Only synced records may be passed: a record that was
    /// lost before its fsync must be missing here, never invented.
    pub fn recover<I>(config: &Config, records: I) -> Result<Self, RecoverError>
    where
        I: IntoIterator<Item = Record<C>>,
        C: PartialEq,
    {
        let mut a = Acceptor::new(config)?;
        for record in records {
            a.replay(record)?;
        }
        Ok(a)
    }

    pub(crate) fn replay(&mut self, record: Record<C>) -> Result<(), RecoverError>
    where
        C: PartialEq,
    {
        match record {
            Record::Promised(b) => self.promised = self.promised.max(b),
            Record::Accepted(pv) => {
                self.promised = self.promised.max(pv.ballot);
                if pv.slot >= self.history_start() {
                    let entry = self.log.entry(pv.slot);
                    let order = entry.as_ref().map(|(b, _)| pv.ballot.cmp(b));
                    match (order, entry) {
                        // A vote older than the one recorded later: keep the newer.
                        (Some(Ordering::Less), _) => {}
                        // The same vote twice is fine; two values in one ballot are not.
                        (Some(Ordering::Equal), Some((_, v))) => {
                            if *v != pv.value {
                                return Err(RecoverError::ConflictingAccepted { slot: pv.slot });
                            }
                        }
                        (_, entry) => {
                            let added = pv.value.retained_weight();
                            let old = entry.replace((pv.ballot, pv.value));
                            if pv.slot >= self.trimmed {
                                let old = old.map_or(0, |(_, v)| v.retained_weight());
                                self.weight = self.weight - old + added;
                            }
                        }
                    }
                }
            }
            Record::Trimmed(s) => self.trim_below(s),
            Record::Campaign(_) => {}
            Record::Rejoining => self.abstaining = true,
            Record::Rejoined => self.abstaining = false,
        }
        Ok(())
    }

    /// This acceptor's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The highest ballot promised (or accepted in).
    pub fn promised(&self) -> Ballot {
        self.promised
    }

    /// What this acceptor accepted in `slot`, if it still holds it (below the
    /// trim point, only in its vote history).
    pub fn accepted(&self, slot: Slot) -> Option<(Ballot, &Value<C>)> {
        self.log.get(slot).map(|(b, v)| (*b, v))
    }

    /// Slots below this were chosen and discarded from the durable state.
    pub fn trimmed_below(&self) -> Slot {
        self.trimmed
    }

    /// The first slot whose vote this acceptor keeps: `vote_history` slots
    /// below the trim point. The history is durable too, so that a restarted
    /// acceptor can still hand a restarted learner the values it missed; it
    /// is never part of a promise.
    fn history_start(&self) -> Slot {
        self.trimmed.saturating_sub(self.vote_history)
    }

    /// Records that rebuild this acceptor exactly, its vote history
    /// included: what its answer to [`Input::Checkpoint`] holds.
    pub(crate) fn checkpoint(&self) -> Vec<Record<C>> {
        let mut records = alloc::vec![
            Record::Trimmed(self.trimmed),
            Record::Promised(self.promised)
        ];
        records.extend(
            self.log
                .iter_from(self.history_start())
                .map(|(slot, (ballot, value))| {
                    Record::Accepted(PValue {
                        slot,
                        ballot: *ballot,
                        value: value.clone(),
                    })
                }),
        );
        if self.abstaining {
            records.push(Record::Rejoining);
        }
        records
    }

    /// Messages ignored as out of range so far.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Handles one input; see [`Acceptor::step_into`].
    pub fn step<O, P>(&mut self, input: Input<C, P>) -> Vec<Action<C, O, P>> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Handles one input, appending the resulting actions to `out`. Acceptors
    /// react only to `Prepare`, `Accept`, `Heartbeat` (to trim) and, when
    /// learners run apart, `CatchUp`; and to [`Input::Checkpoint`] with an
    /// [`Action::Compact`]. They ignore ticks, proposals and every other
    /// message. A `Prepare`, `Accept` or `Heartbeat` counts only from the
    /// proposer that owns its ballot.
    pub fn step_into<O, P>(&mut self, input: Input<C, P>, out: &mut Vec<Action<C, O, P>>) {
        let (from, msg) = match input {
            Input::Receive { from, msg } => (from, msg),
            Input::Checkpoint => {
                out.push(Action::Compact(alloc::boxed::Box::new(Checkpoint {
                    snapshot: None,
                    records: self.checkpoint(),
                })));
                return;
            }
            Input::Tick
            | Input::Propose(_)
            | Input::Read { .. }
            | Input::Transfer { .. }
            | Input::Reconfigure { .. } => return,
        };
        let from_leader = |ballot: &crate::types::Ballot| owns_ballot(&from, *ballot);
        let authentic = match &msg {
            Message::Prepare { ballot, .. }
            | Message::Accept { ballot, .. }
            | Message::Heartbeat { ballot, .. } => from_leader(ballot),
            _ => true,
        };
        if !authentic || !msg.is_well_formed() {
            self.ignored += 1;
            out.push(Action::Event(Event::Ignored { kind: msg.kind() }));
            return;
        }
        match msg {
            Message::Prepare { ballot, from_slot } => {
                self.on_prepare(ballot, from_slot, out);
            }
            Message::Accept {
                ballot,
                slot,
                value,
                ..
            } => {
                self.on_accept(ballot, slot, value, out);
            }
            Message::Heartbeat {
                ballot,
                commit,
                beat,
            } => {
                self.heartbeat_answer(ballot, beat, out);
                // Apart from learners, an acceptor keeps `retain_slots` below the
                // commit point so that learners can still catch up from
                // peers, and trims in chunks of that many slots; or, if
                // that comes first, of `retain_commands` commands.
                let by_slots = commit.saturating_sub(self.retain_slots);
                let by_slots = if by_slots >= self.trimmed.saturating_add(self.retain_slots.max(1))
                {
                    by_slots
                } else {
                    0
                };
                let target = by_slots.max(self.command_trim_point(commit));
                if target > self.trimmed {
                    self.trim_below(target);
                    out.push(Action::Persist(Record::Trimmed(target)));
                }
            }
            Message::CatchUp {
                from_slot,
                to_slot,
                query,
            } if self.notify_learners => {
                self.report_votes(from.addr(), from_slot, to_slot, query, out);
            }
            _ => {}
        }
    }

    /// Phase 1b. Returns true if it promised (or re-promised) `ballot`.
    pub(crate) fn on_prepare<O, P>(
        &mut self,
        ballot: Ballot,
        from_slot: Slot,
        out: &mut Vec<Action<C, O, P>>,
    ) -> bool {
        if self.silent() {
            return false;
        }
        if ballot < self.promised {
            out.push(self.nack(ballot));
            return false;
        }
        if ballot > self.promised {
            self.promised = ballot;
            if !bug!(self.bug, PromiseNotPersisted) {
                out.push(Action::Persist(Record::Promised(ballot)));
            }
        }
        // Equal ballot: the candidate is retransmitting; answer again without a write.
        let accepted = self
            .log
            .iter_from(from_slot.max(self.trimmed))
            .filter(|_| !bug!(self.bug, PromiseOmitsVotes))
            .map(|(slot, (b, v))| PValue {
                slot,
                ballot: *b,
                value: v.clone(),
            })
            .collect();
        out.push(Action::send_to(
            proposer(ballot),
            Message::Promise {
                ballot,
                trimmed_below: self.trimmed,
                accepted,
            },
        ));
        true
    }

    /// Phase 2b.
    pub(crate) fn on_accept<O, P>(
        &mut self,
        ballot: Ballot,
        slot: Slot,
        value: Value<C>,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        if self.silent() {
            return;
        }
        if ballot < self.promised && !bug!(self.bug, AcceptBelowPromise) {
            out.push(self.nack(ballot));
            return;
        }
        if bug!(self.bug, VoteSentBeforePersist) {
            out.push(Action::send_to(
                proposer(ballot),
                Message::Accepted {
                    ballot,
                    slot,
                    value: None,
                },
            ));
        }
        if slot >= self.trimmed {
            if slot - self.trimmed >= self.accept_ahead_max {
                self.ignored += 1;
                out.push(Action::Event(Event::Ignored { kind: "accept" }));
                return;
            }
            // The `Accepted` record implies the promise, so one write covers both.
            self.promised = ballot;
            let weight = &mut self.weight;
            let entry = self.log.entry(slot);
            let fresh = !matches!(entry, Some((b, _)) if *b == ballot);
            if fresh {
                out.push(Action::Persist(Record::Accepted(PValue {
                    slot,
                    ballot,
                    value: value.clone(),
                })));
                if self.notify_learners {
                    out.push(Action::Send {
                        to: LEARNERS,
                        msg: Message::Accepted {
                            ballot,
                            slot,
                            value: Some(value.clone()),
                        },
                    });
                }
                let added = value.retained_weight();
                if let Some((_, old)) = entry.replace((ballot, value)) {
                    *weight -= old.retained_weight();
                }
                *weight += added;
            }
        }
        // Below the trim point the slot is chosen, and a ballot at or above our
        // promise can only carry the chosen value, so acknowledging is safe.
        out.push(Action::send_to(
            proposer(ballot),
            Message::Accepted {
                ballot,
                slot,
                value: None,
            },
        ));
    }

    /// Answers catch-up query `query` of learner `to` with this acceptor's
    /// current vote for each slot of `from_slot..to_slot` it can vouch for,
    /// a burst of chunks of at most `catchup_chunk`, one message each (as a
    /// learner answers). With learners apart, nobody else may
    /// hold a slot whose `Accepted` messages were all lost on the way to the
    /// learners, or whose only learner restarted empty; in a server whose
    /// learner lags too, the acceptors' votes are the last copy of a chosen
    /// value. The asker decides from a majority of answers to one query
    /// (see [`Message::Votes`]), so the votes may sit in different ballots.
    pub(crate) fn report_votes<O, P>(
        &self,
        to: Addr,
        from_slot: Slot,
        to_slot: Slot,
        query: u64,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        if self.silent() {
            return;
        }
        let chunk = self.catchup_chunk.max(1) as Slot;
        let mut first_slot = from_slot.max(self.history_start());
        let end = to_slot.min(first_slot.saturating_add(chunk.saturating_mul(CATCHUP_BURST)));
        while first_slot < end {
            let chunk_end = end.min(first_slot.saturating_add(chunk));
            let votes = (first_slot..chunk_end)
                .map(|slot| self.log.get(slot).map(|(b, v)| (*b, v.clone())))
                .collect();
            out.push(Action::send_to(
                to,
                Message::Votes {
                    first_slot,
                    query,
                    votes,
                },
            ));
            first_slot = chunk_end;
        }
    }

    /// Where a standalone acceptor may trim by [`Config::retain_commands`]
    /// once its votes weigh twice that: past the oldest votes, never past
    /// `commit`, as long as at least `retain_commands` stay and at least as
    /// many go (trims come in chunks, as each is a write). The trim point
    /// itself when it may not.
    fn command_trim_point(&self, commit: Slot) -> Slot {
        let keep = self.retain_commands.max(1);
        if self.weight < keep.saturating_mul(2) {
            return self.trimmed;
        }
        let mut left = self.weight;
        let mut target = self.trimmed;
        for (slot, (_, value)) in self.log.iter_from(self.trimmed) {
            let weight = value.retained_weight();
            if slot >= commit || left - weight < keep {
                break;
            }
            left -= weight;
            target = slot + 1;
        }
        if self.weight - left >= keep {
            target
        } else {
            self.trimmed
        }
    }

    /// Discards records of slots below `slot`, which the caller knows are
    /// chosen and retrievable elsewhere. The caller makes the new trim point
    /// durable: a standalone acceptor with a [`Record::Trimmed`], a server
    /// with a compaction whose snapshot covers it.
    pub(crate) fn trim_below(&mut self, slot: Slot) {
        if slot > self.trimmed {
            let gone: u64 = self
                .log
                .iter_from(self.trimmed)
                .take_while(|(s, _)| *s < slot)
                .map(|(_, (_, v))| v.retained_weight())
                .sum();
            self.weight -= gone;
            self.trimmed = slot;
            self.log.advance_to(self.history_start());
        }
    }

    /// Enters the configuration whose ballots start at `floor` and whose
    /// log starts at `first_slot` (its server applied the stop-sign just
    /// below): promises nothing below `floor`, and forgets every vote
    /// below it. Those are votes of the old configuration, which are all
    /// chosen (below `first_slot`) or never can be (above the stop-sign);
    /// left here, a later phase 1 could re-propose a dead old value, or an
    /// old stop-sign. Idempotent: a server restored in a configuration
    /// calls it again after replaying its records.
    pub(crate) fn enter_epoch(&mut self, floor: Ballot, first_slot: Slot) {
        self.promised = self.promised.max(floor);
        self.trim_below(first_slot);
        let (start, end) = (self.log.base(), self.log.end());
        for slot in start..end {
            let entry = self.log.entry(slot);
            if entry.as_ref().is_some_and(|(b, _)| *b < floor) {
                let (_, value) = entry.take().expect("checked");
                if slot >= self.trimmed {
                    self.weight -= value.retained_weight();
                }
            }
        }
    }

    /// Commands (no-ops counting one each) in the votes this acceptor holds
    /// at or above its trim point.
    pub fn retained_commands(&self) -> u64 {
        self.weight
    }

    /// The answer to a leader's heartbeat: an ack if no higher ballot was
    /// promised, so the leader knows a quorum still follows it, and a
    /// refusal otherwise, so a deposed leader learns it at once.
    pub(crate) fn heartbeat_answer<O, P>(
        &self,
        ballot: Ballot,
        beat: u64,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        if self.silent() {
            return;
        }
        out.push(if ballot < self.promised {
            self.nack(ballot)
        } else {
            Action::send_to(proposer(ballot), Message::HeartbeatAck { ballot, beat })
        });
    }

    /// Has this acceptor forgotten what it promised (a rejoining server,
    /// [`crate::Server::rejoin`])? Then it answers nothing.
    pub fn is_abstaining(&self) -> bool {
        self.abstaining
    }

    /// Starts abstaining: the server lost its durable state (the caller
    /// writes [`Record::Rejoining`]).
    pub(crate) fn abstain(&mut self) {
        self.abstaining = true;
    }

    /// Answers nothing: abstaining (unless a deliberate bug of the zoo
    /// makes it vote with what it forgot).
    pub(crate) fn silent(&self) -> bool {
        self.abstaining && !bug!(self.bug, RejoinWithoutAbstaining)
    }

    /// Ends the abstention of a rejoining server whose proposer won
    /// `ballot` with promises from a majority of the *other* acceptors
    /// and still leads in it, once its replica has applied every slot
    /// below `chosen_below` (and a snapshot of it is on its way to disk)
    /// — every slot it re-proposed when it won among them.
    ///
    /// Why this is safe: every ballot this acceptor voted or promised in
    /// before it lost its state had a majority promise it, and a majority
    /// of the others meets that majority outside this node; the probe made
    /// `ballot` higher than what they had promised, so no vote below
    /// `ballot` reaches them any more. A value chosen with one of the
    /// forgotten votes was reported in their promises (or lay below their
    /// trim points) and is now chosen again, in `ballot`, by a majority
    /// that does not count this acceptor; so it lies below `chosen_below`,
    /// which this acceptor now reports as trimmed: chosen, ask the
    /// learners. A forgotten vote for anything else can never complete a
    /// majority.
    pub(crate) fn end_rejoin<O, P>(
        &mut self,
        ballot: Ballot,
        chosen_below: Slot,
        out: &mut Vec<Action<C, O, P>>,
    ) {
        self.trim_below(chosen_below);
        self.promised = self.promised.max(ballot);
        self.abstaining = false;
        out.push(Action::Persist(Record::Trimmed(self.trimmed)));
        out.push(Action::Persist(Record::Promised(self.promised)));
        out.push(Action::Persist(Record::Rejoined));
    }

    fn nack<O, P>(&self, ballot: Ballot) -> Action<C, O, P> {
        Action::send_to(
            proposer(ballot),
            Message::Nack {
                ballot,
                promised: self.promised,
            },
        )
    }
}

/// Learners, and clients that learn for themselves, hear every vote when
/// learners run apart.
const LEARNERS: Destination = Destination::Group(Roles::LEARNER.union(Roles::CLIENT));

/// The proposer that owns `ballot`: where promises, refusals and votes go.
fn proposer(ballot: Ballot) -> Addr {
    Addr::new(Role::Proposer, ballot.node)
}

/// Did `from` send a message of its own ballot? Only the proposer that owns
/// a ballot may prepare, propose or lead in it.
pub(crate) fn owns_ballot(from: &Process, ballot: Ballot) -> bool {
    from.hosts(Role::Proposer) && from.id == ballot.node
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Command;
    use alloc::vec;

    type A = Action<u64, ()>;

    fn config() -> Config {
        Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)])
    }

    fn b(round: u64, node: u32) -> Ballot {
        Ballot::new(round, NodeId(node))
    }

    fn one(op: u64) -> Value<u64> {
        Value::One(Command {
            client: 1,
            seq: op,
            op,
        })
    }

    /// A message from whoever may send it: the owner of its ballot, or a
    /// learner asking for catch-up.
    fn recv(msg: Message<u64>) -> Input<u64> {
        let from = match &msg {
            Message::Prepare { ballot, .. }
            | Message::Accept { ballot, .. }
            | Message::Heartbeat { ballot, .. } => Process::only(Role::Proposer, ballot.node),
            _ => Process::only(Role::Learner, NodeId(9)),
        };
        Input::Receive { from, msg }
    }

    fn apart(mut c: Config) -> Config {
        c.learners_apart = true;
        c
    }

    fn prepare(ballot: Ballot, from_slot: Slot) -> Input<u64> {
        recv(Message::Prepare { ballot, from_slot })
    }

    fn accept(ballot: Ballot, slot: Slot, value: Value<u64>) -> Input<u64> {
        recv(Message::Accept {
            ballot,
            slot,
            value,
            commit: 0,
        })
    }

    fn sends(out: &[A]) -> Vec<&Message<u64>> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send { msg, .. } => Some(msg),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn acceptor_never_accepts_below_promise() {
        let mut a = Acceptor::new(&config()).unwrap();
        a.step::<(), ()>(prepare(b(5, 2), 0));
        let out: Vec<A> = a.step(accept(b(4, 3), 0, one(7)));
        assert_eq!(a.accepted(0), None);
        assert!(!out.iter().any(|x| matches!(x, Action::Persist(_))));
        assert_eq!(
            sends(&out),
            [&Message::Nack {
                ballot: b(4, 3),
                promised: b(5, 2)
            }]
        );
    }

    #[test]
    fn acceptor_never_promises_below_promise() {
        let mut a = Acceptor::new(&config()).unwrap();
        a.step::<(), ()>(prepare(b(5, 2), 0));
        let out: Vec<A> = a.step(prepare(b(3, 3), 0));
        assert_eq!(a.promised(), b(5, 2));
        assert!(matches!(sends(&out)[..], [Message::Nack { .. }]));
    }

    #[test]
    fn acceptor_persists_promise_before_sending_it() {
        let mut a = Acceptor::new(&config()).unwrap();
        let out: Vec<A> = a.step(prepare(b(1, 2), 0));
        assert!(matches!(out[0], Action::Persist(Record::Promised(x)) if x == b(1, 2)));
        assert!(matches!(
            out[1],
            Action::Send {
                to: Destination::To(Addr {
                    role: Role::Proposer,
                    id: NodeId(2)
                }),
                msg: Message::Promise { .. }
            }
        ));
    }

    #[test]
    fn acceptor_persists_vote_before_sending_accepted() {
        let mut a = Acceptor::new(&apart(config())).unwrap();
        let out: Vec<A> = a.step(accept(b(1, 2), 0, one(7)));
        let persist = out
            .iter()
            .position(|x| matches!(x, Action::Persist(Record::Accepted(_))));
        let first_send = out.iter().position(|x| matches!(x, Action::Send { .. }));
        assert_eq!(persist, Some(0));
        assert!(first_send.unwrap() > 0);
        assert_eq!(sends(&out).len(), 2, "to the leader and to the learners");
    }

    #[test]
    fn promise_reports_accepted_values_from_the_requested_slot() {
        let mut a = Acceptor::new(&config()).unwrap();
        a.step::<(), ()>(accept(b(1, 2), 3, one(3)));
        a.step::<(), ()>(accept(b(1, 2), 5, one(5)));
        let out: Vec<A> = a.step(prepare(b(2, 3), 4));
        let [Message::Promise { accepted, .. }] = &sends(&out)[..] else {
            panic!("expected one promise, got {out:?}");
        };
        assert_eq!(
            accepted,
            &[PValue {
                slot: 5,
                ballot: b(1, 2),
                value: one(5)
            }]
        );
    }

    #[test]
    fn retransmitted_accept_is_acknowledged_without_a_second_write() {
        let mut a = Acceptor::new(&config()).unwrap();
        a.step::<(), ()>(accept(b(1, 2), 0, one(1)));
        let out: Vec<A> = a.step(accept(b(1, 2), 0, one(1)));
        assert!(!out.iter().any(|x| matches!(x, Action::Persist(_))));
        assert!(matches!(sends(&out)[..], [Message::Accepted { .. }]));
    }

    #[test]
    fn recovered_acceptor_keeps_its_promise_and_votes() {
        let mut a = Acceptor::new(&config()).unwrap();
        let mut records = Vec::new();
        for input in [
            prepare(b(3, 2), 0),
            accept(b(3, 2), 0, one(1)),
            prepare(b(4, 3), 0),
        ] {
            for action in a.step::<(), ()>(input) {
                if let Action::Persist(r) = action {
                    records.push(r);
                }
            }
        }
        let mut r = Acceptor::recover(&config(), records).unwrap();
        assert_eq!(r.promised(), b(4, 3));
        assert_eq!(r.accepted(0), Some((b(3, 2), &one(1))));
        let out: Vec<A> = r.step(accept(b(3, 2), 1, one(2)));
        assert!(matches!(sends(&out)[..], [Message::Nack { .. }]));
    }

    #[test]
    fn recovery_rejects_two_values_in_one_ballot() {
        let pv = |op| {
            Record::Accepted(PValue {
                slot: 0,
                ballot: b(1, 2),
                value: one(op),
            })
        };
        let err = Acceptor::recover(&config(), [pv(1), pv(2)]).unwrap_err();
        assert_eq!(err, RecoverError::ConflictingAccepted { slot: 0 });
    }

    #[test]
    fn trimmed_acceptor_reports_its_trim_point_and_forgets_old_slots() {
        let mut a = Acceptor::new(&config()).unwrap();
        a.step::<(), ()>(accept(b(1, 2), 0, one(1)));
        a.step::<(), ()>(accept(b(1, 2), 1, one(2)));
        a.trim_below(1);
        let out: Vec<A> = a.step(prepare(b(2, 3), 0));
        let [Message::Promise {
            trimmed_below,
            accepted,
            ..
        }] = &sends(&out)[..]
        else {
            panic!("expected a promise");
        };
        assert_eq!((*trimmed_below, accepted.len()), (1, 1));
    }

    #[test]
    fn malformed_ballot_or_slot_is_ignored_and_counted() {
        let mut a = Acceptor::new(&config()).unwrap();
        let huge = Ballot::new(crate::LIMIT, NodeId(2));
        let out: Vec<A> = a.step(prepare(huge, 0));
        assert_eq!(out, [Action::Event(Event::Ignored { kind: "prepare" })]);
        let out: Vec<A> = a.step(accept(b(1, 2), crate::LIMIT, one(1)));
        assert_eq!(out, [Action::Event(Event::Ignored { kind: "accept" })]);
        assert_eq!((a.promised(), a.ignored()), (Ballot::ZERO, 2));
    }

    #[test]
    fn accept_far_beyond_the_window_is_ignored_not_stored() {
        let mut a = Acceptor::new(&config()).unwrap();
        let out: Vec<A> = a.step(accept(b(1, 2), crate::LIMIT - 1, one(1)));
        assert_eq!(a.ignored(), 1);
        assert!(sends(&out).is_empty());
        assert_eq!(a.accepted(crate::LIMIT - 1), None);
    }

    #[test]
    fn recovery_keeps_the_highest_ballot_per_slot_whatever_the_record_order() {
        let pv = |round, op| {
            Record::Accepted(PValue {
                slot: 0,
                ballot: b(round, 2),
                value: one(op),
            })
        };
        let a = Acceptor::recover(&config(), [pv(2, 20), pv(1, 10)]).unwrap();
        assert_eq!(a.accepted(0), Some((b(2, 2), &one(20))));
        let a = Acceptor::recover(&config(), [pv(1, 10), pv(2, 20), pv(2, 20)]).unwrap();
        assert_eq!(a.accepted(0), Some((b(2, 2), &one(20))));
        assert_eq!((a.id(), a.promised()), (NodeId(1), b(2, 2)));
    }

    #[test]
    fn retransmitted_prepare_is_promised_again_without_a_second_write() {
        let mut a = Acceptor::new(&config()).unwrap();
        a.step::<(), ()>(prepare(b(2, 2), 0));
        let out: Vec<A> = a.step(prepare(b(2, 2), 0));
        assert!(!out.iter().any(|x| matches!(x, Action::Persist(_))));
        assert!(matches!(sends(&out)[..], [Message::Promise { .. }]));
    }

    #[test]
    fn standalone_acceptor_trims_on_heartbeats_far_beyond_its_records() {
        let mut c = config();
        c.retain_slots = 4;
        let mut a = Acceptor::new(&c).unwrap();
        for slot in 0..12 {
            a.step::<(), ()>(accept(b(1, 2), slot, one(slot)));
        }
        let hb = |commit| {
            recv(Message::Heartbeat {
                ballot: b(1, 2),
                commit,
                beat: 1,
            })
        };
        let ack = Action::send_to(
            proposer(b(1, 2)),
            Message::HeartbeatAck {
                ballot: b(1, 2),
                beat: 1,
            },
        );
        let out: Vec<A> = a.step(hb(6));
        assert_eq!(
            out,
            core::slice::from_ref(&ack),
            "not yet retain_slots beyond the trim point"
        );
        let out: Vec<A> = a.step(hb(12));
        assert_eq!(out, [ack, Action::Persist(Record::Trimmed(8))]);
        assert_eq!(a.trimmed_below(), 8);
        assert_eq!(a.accepted(7), None);
        assert!(a.accepted(8).is_some());
    }

    use crate::types::test_batch as batch;

    #[test]
    fn standalone_acceptor_trims_by_commands_when_slots_hold_batches() {
        let mut c = config();
        c.retain_slots = 1_000;
        c.retain_commands = 10;
        let mut a = Acceptor::new(&c).unwrap();
        let mut records = Vec::new();
        for slot in 0..12 {
            let out: Vec<A> = a.step(accept(b(1, 2), slot, batch(slot * 5, 5)));
            records.extend(out.into_iter().filter_map(|x| match x {
                Action::Persist(r) => Some(r),
                _ => None,
            }));
        }
        assert_eq!(a.retained_commands(), 60);
        let hb = |commit| {
            recv(Message::Heartbeat {
                ballot: b(1, 2),
                commit,
                beat: 1,
            })
        };
        let trims = |out: &[A]| -> Vec<Slot> {
            out.iter()
                .filter_map(|x| match x {
                    Action::Persist(Record::Trimmed(s)) => Some(*s),
                    _ => None,
                })
                .collect()
        };
        let out: Vec<A> = a.step(hb(1));
        assert_eq!(trims(&out), [], "less than a chunk below the commit point");
        let out: Vec<A> = a.step(hb(4));
        assert_eq!(trims(&out), [4], "up to the commit point, never past it");
        assert_eq!(a.retained_commands(), 40);
        let out: Vec<A> = a.step(hb(12));
        assert_eq!(trims(&out), [10], "the newest 10 commands stay");
        assert_eq!((a.trimmed_below(), a.retained_commands()), (10, 10));
        assert_eq!(a.accepted(9), None);
        let out: Vec<A> = a.step(hb(12));
        assert_eq!(trims(&out), [], "what is left is no chunk");
        // A restart from the records weighs the same votes.
        records.extend([Record::Trimmed(4), Record::Trimmed(10)]);
        let r = Acceptor::recover(&c, records).unwrap();
        assert_eq!((r.trimmed_below(), r.retained_commands()), (10, 10));
    }

    #[test]
    fn accept_window_is_measured_from_the_trim_point() {
        let mut a = Acceptor::new(&config()).unwrap();
        a.trim_below(100_000);
        a.trim_below(99_000);
        assert_eq!(a.trimmed_below(), 100_000, "the trim point never goes back");
        a.step::<(), ()>(accept(b(1, 2), 100_010, one(1)));
        assert!(a.accepted(100_010).is_some());
    }

    #[test]
    fn standalone_acceptor_answers_catch_up_with_its_votes_again() {
        let mut c = apart(config());
        c.catchup_chunk = 2;
        let mut a = Acceptor::new(&c).unwrap();
        for slot in 0..5 {
            a.step::<(), ()>(accept(b(1, 2), slot, one(slot)));
        }
        let catch_up = |from_slot, to_slot, query| {
            recv(Message::CatchUp {
                from_slot,
                to_slot,
                query,
            })
        };
        let votes = |first_slot, query, slots: core::ops::Range<u64>| Action::Send {
            to: Destination::to(Role::Learner, NodeId(9)),
            msg: Message::Votes {
                first_slot,
                query,
                votes: slots.map(|s| (s < 5).then(|| (b(1, 2), one(s)))).collect(),
            },
        };
        let out: Vec<A> = a.step(catch_up(1, 10, 7));
        assert_eq!(
            out,
            [
                votes(1, 7, 1..3),
                votes(3, 7, 3..5),
                votes(5, 7, 5..7),
                votes(7, 7, 7..9)
            ],
            "from the asked slot, a burst of chunks"
        );
        let out: Vec<A> = a.step(catch_up(1, 100, 10));
        assert_eq!(out.len() as u64, CATCHUP_BURST, "never more than a burst");
        let out: Vec<A> = a.step(catch_up(3, 4, 8));
        assert_eq!(out, [votes(3, 8, 3..4)], "never past the asked range");
        let out: Vec<A> = a.step(catch_up(5, 7, 9));
        assert_eq!(out, [votes(5, 9, 5..7)], "no vote is an answer too");
    }

    #[test]
    fn acceptor_inside_a_server_leaves_catch_up_to_its_learner() {
        let mut a = Acceptor::new(&config()).unwrap();
        a.step::<(), ()>(accept(b(1, 2), 0, one(0)));
        let out: Vec<A> = a.step(recv(Message::CatchUp {
            from_slot: 0,
            to_slot: 1,
            query: 0,
        }));
        assert!(out.is_empty());
    }

    #[test]
    fn trimmed_votes_answer_catch_up_and_survive_a_restart_but_stay_out_of_promises() {
        let mut c = apart(config());
        c.vote_history_slots = 2;
        let mut a = Acceptor::new(&c).unwrap();
        for slot in 0..4 {
            a.step::<(), ()>(accept(b(1, 2), slot, one(slot)));
        }
        a.trim_below(3);
        assert_eq!(a.trimmed_below(), 3);
        assert_eq!(a.accepted(0), None, "beyond the history");
        assert!(a.accepted(1).is_some(), "kept in the history");
        let out: Vec<A> = a.step(recv(Message::CatchUp {
            from_slot: 0,
            to_slot: 4,
            query: 0,
        }));
        let [Message::Votes {
            first_slot, votes, ..
        }] = &sends(&out)[..]
        else {
            panic!("expected the votes: {out:?}");
        };
        assert_eq!(
            (*first_slot, votes.len()),
            (1, 3),
            "history and live votes answer catch-up"
        );
        let out: Vec<A> = a.step(prepare(b(2, 3), 0));
        let [Message::Promise {
            trimmed_below,
            accepted,
            ..
        }] = &sends(&out)[..]
        else {
            panic!("expected one promise");
        };
        assert_eq!(*trimmed_below, 3);
        assert_eq!(accepted.iter().map(|pv| pv.slot).collect::<Vec<_>>(), [3]);
        let kept: Vec<Slot> = a
            .checkpoint()
            .iter()
            .filter_map(|r| match r {
                Record::Accepted(pv) => Some(pv.slot),
                _ => None,
            })
            .collect();
        assert_eq!(kept, [1, 2, 3], "the history is durable");
        let restarted = Acceptor::recover(&c, a.checkpoint()).unwrap();
        assert!(restarted.accepted(1).is_some() && restarted.accepted(0).is_none());
        assert_eq!(restarted.trimmed_below(), 3);
    }

    #[test]
    fn only_the_owner_of_a_ballot_may_prepare_or_propose_in_it() {
        let mut a = Acceptor::new(&config()).unwrap();
        let impostor = |msg| Input::Receive {
            from: Process::only(Role::Proposer, NodeId(3)),
            msg,
        };
        let out: Vec<A> = a.step(impostor(Message::Prepare {
            ballot: b(5, 2),
            from_slot: 0,
        }));
        assert_eq!(out, [Action::Event(Event::Ignored { kind: "prepare" })]);
        let learner = Input::Receive {
            from: Process::only(Role::Learner, NodeId(2)),
            msg: Message::Accept {
                ballot: b(5, 2),
                slot: 0,
                value: one(1),
                commit: 0,
            },
        };
        let out: Vec<A> = a.step(learner);
        assert_eq!(out, [Action::Event(Event::Ignored { kind: "accept" })]);
        assert_eq!(
            (a.promised(), a.accepted(0), a.ignored()),
            (Ballot::ZERO, None, 2)
        );
    }

    #[test]
    fn a_checkpoint_request_is_answered_with_a_compaction_that_rebuilds_the_acceptor() {
        let mut a = Acceptor::new(&config()).unwrap();
        a.step::<(), ()>(prepare(b(4, 3), 0));
        a.step::<(), ()>(accept(b(4, 3), 2, one(2)));
        let out: Vec<A> = a.step(Input::Checkpoint);
        let [Action::Compact(c)] = &out[..] else {
            panic!("expected one compaction, got {out:?}");
        };
        assert_eq!(c.snapshot, None);
        let r = Acceptor::recover(&config(), c.records.clone()).unwrap();
        assert_eq!(
            (r.promised(), r.accepted(2)),
            (b(4, 3), Some((b(4, 3), &one(2))))
        );
    }
}
