//! The replica: applies delivered slots to the user's state machine, executing
//! each `(client, seq)` at most once and answering retries from a session table.

use crate::action::{Action, DropReason, Event};
use crate::types::{ClientId, Command, Membership, Slot, Value};
use alloc::collections::btree_map::{BTreeMap, Entry};
use alloc::vec::Vec;
use core::cmp::Ordering;
use serde::{Deserialize, Serialize};

/// The application being replicated. It must be deterministic: the same
/// commands in the same order must give the same outputs on every replica.
pub trait StateMachine {
    /// An operation, as clients submit it.
    type Command: Clone + core::fmt::Debug;
    /// What an operation returns to its client.
    type Output: Clone + core::fmt::Debug;
    /// Executes one command.
    fn apply(&mut self, command: &Self::Command) -> Self::Output;

    /// Answers `query` from the current state without changing it, if it is
    /// a query that needs no write (a chat room's `get`, say). The default
    /// answers nothing, so every read goes through the log. Must give what
    /// [`StateMachine::apply`] would give in the same state, or reads served
    /// this way are not linearizable.
    fn read(&self, query: &Self::Command) -> Option<Self::Output> {
        let _ = query;
        None
    }
}

/// A replica's state at a slot boundary: enough to restart without the log
/// before `next_slot`. Drivers store it to compact their logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot<S, O> {
    /// The first slot not reflected in `state`.
    pub next_slot: Slot,
    /// The state machine after applying every slot below `next_slot`.
    pub state: S,
    /// The session table: last request and answer per client.
    pub sessions: Vec<SessionEntry<O>>,
    /// The configuration the slots from `next_slot` on belong to, if a
    /// stop-sign below `next_slot` changed it; `None`: the cluster's first
    /// configuration ([`crate::Config::members`], epoch 0).
    pub membership: Option<Membership>,
}

/// One client's last executed request, so a retry is answered, not re-executed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEntry<O> {
    /// The client.
    pub client: ClientId,
    /// Its last executed sequence number.
    pub seq: u64,
    /// The slot it was executed in.
    pub slot: Slot,
    /// Its output.
    pub output: O,
}

#[derive(Clone, Debug)]
struct Session<O> {
    seq: u64,
    slot: Slot,
    output: O,
}

/// A state machine plus the bookkeeping that makes execution exactly-once.
#[derive(Clone)]
pub struct Replica<S: StateMachine> {
    state: S,
    next: Slot,
    sessions: BTreeMap<ClientId, Session<S::Output>>,
    executed: u64,
    /// The configuration set by the latest stop-sign applied.
    membership: Option<Membership>,
    #[cfg(feature = "bug-zoo")]
    bug: crate::zoo::Bug,
}

impl<S: StateMachine> core::fmt::Debug for Replica<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Replica")
            .field("next", &self.next)
            .field("sessions", &self.sessions.len())
            .field("executed", &self.executed)
            .finish_non_exhaustive()
    }
}

impl<S: StateMachine> Replica<S> {
    /// A replica that has applied nothing to `state`.
    pub fn new(state: S) -> Self {
        Replica {
            state,
            next: 0,
            sessions: BTreeMap::new(),
            executed: 0,
            membership: None,
            #[cfg(feature = "bug-zoo")]
            bug: crate::zoo::Bug::None,
        }
    }

    /// Takes a snapshot of the state and session table.
    pub fn snapshot(&self) -> Snapshot<S, S::Output>
    where
        S: Clone,
    {
        Snapshot {
            next_slot: self.next,
            state: self.state.clone(),
            sessions: self
                .sessions
                .iter()
                .filter(|_| !bug!(self.bug, SnapshotWithoutSessions))
                .map(|(&client, s)| SessionEntry {
                    client,
                    seq: s.seq,
                    slot: s.slot,
                    output: s.output.clone(),
                })
                .collect(),
            membership: self.membership.clone(),
        }
    }

    /// A replica that resumes from `snapshot`.
    pub fn from_snapshot(snapshot: Snapshot<S, S::Output>) -> Self {
        Replica {
            state: snapshot.state,
            next: snapshot.next_slot,
            sessions: snapshot
                .sessions
                .into_iter()
                .map(|e| {
                    (
                        e.client,
                        Session {
                            seq: e.seq,
                            slot: e.slot,
                            output: e.output,
                        },
                    )
                })
                .collect(),
            executed: 0,
            membership: snapshot.membership,
            #[cfg(feature = "bug-zoo")]
            bug: crate::zoo::Bug::None,
        }
    }

    /// Jumps to `snapshot` (a peer's, further along), keeping the count of
    /// commands this replica executed itself.
    pub(crate) fn install(&mut self, snapshot: Snapshot<S, S::Output>) {
        let executed = self.executed;
        #[cfg(feature = "bug-zoo")]
        let bug = self.bug;
        *self = Replica::from_snapshot(snapshot);
        self.executed = executed;
        #[cfg(feature = "bug-zoo")]
        self.set_bug(bug);
    }

    /// Switches on a deliberate bug (testing the testers; see [`crate::zoo`]).
    #[cfg(feature = "bug-zoo")]
    pub fn set_bug(&mut self, bug: crate::zoo::Bug) {
        self.bug = bug;
    }

    /// The state machine.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The next slot to apply.
    pub fn next_slot(&self) -> Slot {
        self.next
    }

    /// The configuration the latest stop-sign applied set up (`None`
    /// before the first: the cluster's first configuration).
    pub fn membership(&self) -> Option<&Membership> {
        self.membership.as_ref()
    }

    /// Commands executed (retries answered from the cache are not counted).
    pub fn executed(&self) -> u64 {
        self.executed
    }

    #[cfg(feature = "bug-zoo")]
    fn has_bug(&self) -> bool {
        self.bug != crate::zoo::Bug::None
    }
    #[cfg(not(feature = "bug-zoo"))]
    fn has_bug(&self) -> bool {
        false
    }

    /// The answer to a retry of a command this replica has executed, or
    /// that a newer request of its client superseded: what [`Replica::apply`]
    /// would emit for it, without a slot. `None` for a command not executed.
    pub fn retry_answer<C, P>(&self, cmd: &Command<S::Command>) -> Option<Action<C, S::Output, P>> {
        let session = self.sessions.get(&cmd.client)?;
        match cmd.seq.cmp(&session.seq) {
            Ordering::Equal => Some(Action::Reply {
                client: cmd.client,
                seq: cmd.seq,
                slot: session.slot,
                output: session.output.clone(),
            }),
            Ordering::Less => Some(Action::Event(Event::Dropped {
                client: cmd.client,
                seq: cmd.seq,
                reason: DropReason::Superseded,
            })),
            Ordering::Greater => None,
        }
    }

    /// Applies the chosen value of `slot`, which must be the next slot. Emits a
    /// [`Action::Reply`] per command, from the cache for a retried one.
    pub fn apply<C, P>(
        &mut self,
        slot: Slot,
        value: &Value<S::Command>,
        out: &mut Vec<Action<C, S::Output, P>>,
    ) {
        // A learner bug from the zoo may hand slots out of order on purpose:
        // the simulator's order checker is what must catch it, not this.
        debug_assert!(
            slot == self.next || self.has_bug(),
            "slots must be applied in order: got {slot}, expected {}",
            self.next
        );
        self.next = slot + 1;
        if let Value::Reconfigure(members) = value {
            self.membership = Some(Membership {
                epoch: self.membership.as_ref().map_or(0, |m| m.epoch) + 1,
                members: members.clone(),
                first_slot: slot + 1,
            });
        }
        for cmd in value.commands() {
            let entry = self.sessions.entry(cmd.client);
            let order = match &entry {
                Entry::Occupied(_) if bug!(self.bug, ReExecuteRetries) => Ordering::Greater,
                Entry::Occupied(e) => cmd.seq.cmp(&e.get().seq),
                Entry::Vacant(_) => Ordering::Greater,
            };
            match (order, entry) {
                (Ordering::Equal, Entry::Occupied(e)) => out.push(Action::Reply {
                    client: cmd.client,
                    seq: cmd.seq,
                    slot: e.get().slot,
                    output: e.get().output.clone(),
                }),
                (Ordering::Less, _) => out.push(Action::Event(Event::Dropped {
                    client: cmd.client,
                    seq: cmd.seq,
                    reason: DropReason::Superseded,
                })),
                (_, entry) => {
                    let output = self.state.apply(&cmd.op);
                    self.executed += 1;
                    let session = Session {
                        seq: cmd.seq,
                        slot,
                        output: output.clone(),
                    };
                    match entry {
                        Entry::Occupied(mut e) => *e.get_mut() = session,
                        Entry::Vacant(e) => {
                            e.insert(session);
                        }
                    }
                    out.push(Action::Reply {
                        client: cmd.client,
                        seq: cmd.seq,
                        slot,
                        output,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Command;
    use alloc::vec;

    #[derive(Clone, Default)]
    struct Counter(u64);
    impl StateMachine for Counter {
        type Command = u64;
        type Output = u64;
        fn apply(&mut self, add: &u64) -> u64 {
            self.0 += add;
            self.0
        }
    }

    fn cmd(client: u64, seq: u64, op: u64) -> Command<u64> {
        Command { client, seq, op }
    }

    #[test]
    fn retried_command_executes_once() {
        let mut r = Replica::new(Counter::default());
        let mut out: Vec<Action<u64, u64>> = Vec::new();
        r.apply(0, &Value::One(cmd(7, 1, 5)), &mut out);
        r.apply(1, &Value::One(cmd(7, 1, 5)), &mut out);
        assert_eq!(r.state().0, 5, "the retry must not execute again");
        assert_eq!(r.executed(), 1);
        let replies: Vec<_> = out
            .iter()
            .filter_map(|a| match a {
                Action::Reply { slot, output, .. } => Some((*slot, *output)),
                _ => None,
            })
            .collect();
        assert_eq!(
            replies,
            [(0, 5), (0, 5)],
            "the retry is answered from the cache"
        );
    }

    #[test]
    fn retried_command_executes_once_after_restore_from_snapshot() {
        let mut r = Replica::new(Counter::default());
        let mut out: Vec<Action<u64, u64>> = Vec::new();
        r.apply(0, &Value::One(cmd(7, 1, 5)), &mut out);
        let mut restored = Replica::from_snapshot(r.snapshot());
        restored.apply(1, &Value::One(cmd(7, 1, 5)), &mut out);
        assert_eq!((restored.state().0, restored.next_slot()), (5, 2));
        assert_eq!(
            restored.executed(),
            0,
            "the retry was answered from the cache"
        );
    }

    #[test]
    fn stale_sequence_number_is_dropped_as_superseded() {
        let mut r = Replica::new(Counter::default());
        let mut out: Vec<Action<u64, u64>> = Vec::new();
        r.apply(
            0,
            &Value::Batch(vec![cmd(1, 2, 1), cmd(1, 1, 1), cmd(2, 1, 10)].into()),
            &mut out,
        );
        assert_eq!(r.state().0, 11);
        assert!(out.iter().any(|a| matches!(
            a,
            Action::Event(Event::Dropped {
                client: 1,
                seq: 1,
                reason: DropReason::Superseded
            })
        )));
    }
}
