//! A learner that applies what it learns: the replica of a deployment whose
//! learners run as processes of their own (the multicast layout).

use crate::action::{Action, Input};
use crate::config::Config;
use crate::error::ConfigError;
use crate::learner::Learner;
use crate::replica::{Replica, StateMachine};
use crate::types::Slot;
use alloc::vec::Vec;

type Cmd<S> = <S as StateMachine>::Command;
type Out<S> = <S as StateMachine>::Output;

/// A [`Learner`] feeding a replica of `S`: every slot it delivers is
/// applied in order, each `(client, seq)` at most once (a retry decided
/// again is answered from a session table), and answered with
/// [`Action::Reply`]. Its catch-up traffic comes out as sends; the
/// deliveries themselves stay inside.
///
/// ```
/// use paxos_core::{Config, LearnerReplica, NodeId, StateMachine};
/// #[derive(Default)]
/// struct Lines(Vec<String>);
/// impl StateMachine for Lines {
///     type Command = String;
///     type Output = ();
///     fn apply(&mut self, line: &String) { self.0.push(line.clone()) }
/// }
/// let mut config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
/// config.learners_apart = true;
/// let learner = LearnerReplica::new(&config, Lines::default()).unwrap();
/// assert_eq!(learner.next_slot(), 0);
/// ```
#[derive(Debug)]
pub struct LearnerReplica<S: StateMachine> {
    learner: Learner<Cmd<S>>,
    replica: Replica<S>,
}

impl<S: StateMachine> LearnerReplica<S> {
    /// Switches on a deliberate bug (testing the testers; see [`crate::zoo`]).
    #[cfg(feature = "bug-zoo")]
    pub fn set_bug(&mut self, bug: crate::zoo::Bug) {
        self.learner.set_bug(bug);
        self.replica.set_bug(bug);
    }

    /// A learner that has delivered nothing, applying to `state`.
    pub fn new(config: &Config, state: S) -> Result<Self, ConfigError> {
        Ok(LearnerReplica {
            learner: Learner::new(config)?,
            replica: Replica::new(state),
        })
    }

    /// The replicated state machine.
    pub fn state(&self) -> &S {
        self.replica.state()
    }

    /// The next slot to deliver and apply (every slot below was applied).
    pub fn next_slot(&self) -> Slot {
        self.learner.next_slot()
    }

    /// Commands executed (retries answered from the session table are not
    /// counted).
    pub fn executed(&self) -> u64 {
        self.replica.executed()
    }

    /// Messages ignored so far.
    pub fn ignored(&self) -> u64 {
        self.learner.ignored()
    }

    /// The learner inside, for inspection.
    pub fn learner(&self) -> &Learner<Cmd<S>> {
        &self.learner
    }

    /// Handles one input; see [`LearnerReplica::step_into`].
    pub fn step<P>(&mut self, input: Input<Cmd<S>, P>) -> Vec<Action<Cmd<S>, Out<S>, P>> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Handles one input as a [`Learner`] does, applying every delivered
    /// slot to the replica, which appends a [`Action::Reply`] per command.
    pub fn step_into<P>(
        &mut self,
        input: Input<Cmd<S>, P>,
        out: &mut Vec<Action<Cmd<S>, Out<S>, P>>,
    ) {
        self.learner.take(input, out);
        let replica = &mut self.replica;
        self.learner
            .deliver(|slot, value| replica.apply(slot, value, out));
        self.learner.resume_catch_up(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::{Process, Role};
    use crate::message::Message;
    use crate::types::{Ballot, Command, NodeId, Value};
    use alloc::vec;

    #[derive(Debug, Default)]
    struct Sum(u64);
    impl StateMachine for Sum {
        type Command = u64;
        type Output = u64;
        fn apply(&mut self, n: &u64) -> u64 {
            self.0 += n;
            self.0
        }
    }

    fn vote(acceptor: u32, slot: Slot, client: u64, seq: u64) -> Input<u64> {
        Input::Receive {
            from: Process::only(Role::Acceptor, NodeId(acceptor)),
            msg: Message::Accepted {
                ballot: Ballot::new(1, NodeId(1)),
                slot,
                value: Some(Value::One(Command { client, seq, op: 5 })),
            },
        }
    }

    #[test]
    fn delivered_slots_are_applied_once_and_answered() {
        let config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
        let mut l = LearnerReplica::new(&config, Sum::default()).unwrap();
        let mut out = Vec::new();
        for (slot, acceptor) in [(0, 1), (0, 2), (1, 1), (1, 3)] {
            // Slot 1 holds a retry of slot 0's command.
            l.step_into(vote(acceptor, slot, 9, 1), &mut out);
        }
        assert_eq!((l.next_slot(), l.state().0, l.executed()), (2, 5, 1));
        let replies: Vec<(Slot, u64)> = out
            .iter()
            .filter_map(|a| match a {
                Action::Reply { slot, output, .. } => Some((*slot, *output)),
                _ => None,
            })
            .collect();
        assert_eq!(
            replies,
            [(0, 5), (0, 5)],
            "the retry is answered from the table"
        );
        assert!(!out.iter().any(|a| matches!(a, Action::Deliver { .. })));
    }
}
