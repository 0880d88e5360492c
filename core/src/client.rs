//! The client: submits one command at a time and sends it again until it sees
//! the command chosen, for deployments where clients cannot ask a replica.
//!
//! A client that stands apart from the servers (the multicast driver's client)
//! has nobody to answer it. So it learns for itself: it runs a [`Learner`] fed
//! by the same messages the learners get, and a command is done once its own
//! learner delivers a slot holding it. Until then it is sent again every
//! retry period under the same `(client, seq)`, so a lost or dropped proposal
//! costs a retry, and a proposal decided twice is executed once by replicas
//! (see [`crate::Replica`]). One command is outstanding at a time, which is
//! what the replica's session table needs to tell a retry from a new command;
//! callers batch by putting several operations into one command.

use crate::action::{Action, Destination, DropReason, Event, Input};
use crate::config::Config;
use crate::error::ConfigError;
use crate::learner::Learner;
use crate::message::Message;
use crate::types::{ClientId, Command, Slot};
use alloc::vec;
use alloc::vec::Vec;

#[derive(Clone, Debug)]
struct Outstanding<C> {
    command: Command<C>,
    age_ticks: u32,
}

/// One client session. Its learner starts at the commit point of the first
/// leader heartbeat it hears, so it never has to learn the log's history: any
/// slot its commands can land in lies at or above that point.
#[derive(Clone, Debug)]
pub struct Client<C> {
    config: Config,
    id: ClientId,
    learner: Option<Learner<C>>,
    next_seq: u64,
    outstanding: Option<Outstanding<C>>,
    retry_ticks: u32,
    retries: u64,
    scratch: Vec<Action<C>>,
}

impl<C: Clone> Client<C> {
    /// A client with session id `id`. `config.members` are the acceptors (its
    /// learner counts their votes); a command is sent again after
    /// `2 * config.retransmit_ticks` ticks without seeing it chosen.
    pub fn new(config: &Config, id: ClientId) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Client {
            config: config.clone(),
            id,
            learner: None,
            next_seq: 1,
            outstanding: None,
            retry_ticks: config.retransmit_ticks.saturating_mul(2),
            retries: 0,
            scratch: Vec::new(),
        })
    }

    /// This client's session id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// True once a leader was heard and no command is outstanding: a
    /// [`Client::submit`] now will be sent.
    pub fn is_ready(&self) -> bool {
        self.learner.is_some() && self.outstanding.is_none()
    }

    /// True while a submitted command has not been seen chosen.
    pub fn is_busy(&self) -> bool {
        self.outstanding.is_some()
    }

    /// Times a command was sent again.
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// The next slot the client's learner will deliver, once it has started.
    pub fn learned_up_to(&self) -> Option<Slot> {
        self.learner.as_ref().map(Learner::next_slot)
    }

    /// Submits `op` as this client's next command and returns its sequence
    /// number, or emits [`Event::Dropped`] (`Overloaded`) and returns `None`
    /// if the client is not [`Client::is_ready`].
    pub fn submit(&mut self, op: C, out: &mut Vec<Action<C>>) -> Option<u64> {
        if !self.is_ready() {
            out.push(Action::Event(Event::Dropped {
                client: self.id,
                seq: self.next_seq,
                reason: DropReason::Overloaded,
            }));
            return None;
        }
        let command = Command {
            client: self.id,
            seq: self.next_seq,
            op,
        };
        self.next_seq += 1;
        out.push(forward(&command));
        let seq = command.seq;
        self.outstanding = Some(Outstanding {
            command,
            age_ticks: 0,
        });
        Some(seq)
    }

    /// Handles one input; see [`Client::step_into`].
    pub fn step(&mut self, input: Input<C>) -> Vec<Action<C>> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Handles one input. `Propose` submits its `op` (its `client` and `seq`
    /// are replaced by this session's); `Tick` drives the learner's catch-up
    /// and the retry timer; messages feed the learner. When the outstanding
    /// command is seen chosen, emits [`Action::Reply`] with its slot. The
    /// learner's deliveries stay inside; its catch-up traffic comes out.
    pub fn step_into(&mut self, input: Input<C>, out: &mut Vec<Action<C>>) {
        match input {
            Input::Propose(cmd) => {
                self.submit(cmd.op, out);
            }
            Input::Tick => {
                if let Some(o) = &mut self.outstanding {
                    o.age_ticks += 1;
                    if o.age_ticks >= self.retry_ticks {
                        o.age_ticks = 0;
                        self.retries += 1;
                        out.push(forward(&o.command));
                    }
                }
                self.feed(Input::Tick, out);
            }
            Input::Receive { from, msg } => {
                if self.learner.is_none() {
                    let Message::Heartbeat { commit, .. } = &msg else {
                        return;
                    };
                    match Learner::starting_at(&self.config, *commit) {
                        Ok(l) => self.learner = Some(l),
                        Err(_) => return, // unreachable: the config was validated
                    }
                }
                self.feed(Input::Receive { from, msg }, out);
            }
        }
    }

    fn feed(&mut self, input: Input<C>, out: &mut Vec<Action<C>>) {
        let Some(learner) = &mut self.learner else {
            return;
        };
        let mut scratch = core::mem::take(&mut self.scratch);
        learner.step_into(input, &mut scratch);
        for action in scratch.drain(..) {
            match action {
                Action::Deliver { slot, value } => {
                    let done = self.outstanding.as_ref().is_some_and(|o| {
                        value
                            .commands()
                            .iter()
                            .any(|c| c.client == self.id && c.seq == o.command.seq)
                    });
                    if done {
                        let seq = self.outstanding.take().map_or(0, |o| o.command.seq);
                        out.push(Action::Reply {
                            client: self.id,
                            seq,
                            slot,
                            output: (),
                        });
                    }
                }
                other => out.push(other),
            }
        }
        self.scratch = scratch;
    }
}

fn forward<C: Clone>(command: &Command<C>) -> Action<C> {
    Action::Send {
        to: Destination::Proposers,
        msg: Message::Forward {
            commands: vec![command.clone()],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Ballot, NodeId, Value};

    const CLIENT: ClientId = 42;
    const ACCEPTORS: [u32; 3] = [1, 2, 3];

    fn config() -> Config {
        let members = ACCEPTORS.iter().map(|&m| NodeId(m)).collect();
        Config::new(NodeId(7), members)
    }

    fn heartbeat(commit: Slot) -> Input<u64> {
        Input::Receive {
            from: NodeId(1),
            msg: Message::Heartbeat {
                ballot: Ballot::new(1, NodeId(1)),
                commit,
            },
        }
    }

    fn accepted(from: u32, slot: Slot, value: Value<u64>) -> Input<u64> {
        Input::Receive {
            from: NodeId(from),
            msg: Message::Accepted {
                ballot: Ballot::new(1, NodeId(1)),
                slot,
                value: Some(value),
            },
        }
    }

    fn forwards(out: &[Action<u64>]) -> Vec<(u64, u64)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send {
                    to: Destination::Proposers,
                    msg: Message::Forward { commands },
                } => Some((commands[0].seq, commands[0].op)),
                _ => None,
            })
            .collect()
    }

    fn replies(out: &[Action<u64>]) -> Vec<(u64, Slot)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Reply { seq, slot, .. } => Some((*seq, *slot)),
                _ => None,
            })
            .collect()
    }

    fn ready_client(commit: Slot) -> Client<u64> {
        let mut c = Client::new(&config(), CLIENT).unwrap();
        c.step(heartbeat(commit));
        assert!(c.is_ready());
        c
    }

    #[test]
    fn client_waits_for_a_leader_before_submitting() {
        let mut c = Client::new(&config(), CLIENT).unwrap();
        let mut out = Vec::new();
        assert_eq!(c.submit(5, &mut out), None);
        assert!(matches!(
            out[..],
            [Action::Event(Event::Dropped {
                reason: DropReason::Overloaded,
                ..
            })]
        ));
        c.step(heartbeat(0));
        assert!(c.is_ready());
    }

    #[test]
    fn client_retransmits_the_same_command_until_it_is_chosen() {
        let mut c = ready_client(0);
        let mut out = Vec::new();
        assert_eq!(c.submit(5, &mut out), Some(1));
        let retry_ticks = config().retransmit_ticks * 2;
        for _ in 0..retry_ticks * 3 {
            c.step_into(Input::Tick, &mut out);
        }
        assert_eq!(forwards(&out), [(1, 5); 4], "first send plus three retries");
        assert_eq!(c.retries(), 3);
        assert!(c.is_busy());
        assert_eq!(c.submit(6, &mut out), None, "one command at a time");
    }

    #[test]
    fn client_is_done_when_its_own_learner_delivers_the_command() {
        let mut c = ready_client(3);
        let mut out = Vec::new();
        c.submit(5, &mut out);
        let mine = Value::One(Command {
            client: CLIENT,
            seq: 1,
            op: 5,
        });
        c.step_into(accepted(1, 3, mine.clone()), &mut out);
        assert!(replies(&out).is_empty(), "one vote is not a quorum");
        c.step_into(accepted(2, 3, mine), &mut out);
        assert_eq!(replies(&out), [(1, 3)]);
        assert!(c.is_ready());
        out.clear();
        assert_eq!(
            c.submit(6, &mut out),
            Some(2),
            "the next command gets the next seq"
        );
        assert_eq!(forwards(&out), [(2, 6)]);
    }

    #[test]
    fn another_clients_command_with_our_seq_does_not_complete_ours() {
        let mut c = ready_client(0);
        let mut out = Vec::new();
        c.submit(5, &mut out);
        let theirs = Value::One(Command {
            client: CLIENT + 1,
            seq: 1,
            op: 5,
        });
        for acceptor in ACCEPTORS {
            c.step_into(accepted(acceptor, 0, theirs.clone()), &mut out);
        }
        assert!(replies(&out).is_empty());
        assert!(c.is_busy());
        assert_eq!(c.learned_up_to(), Some(1));
    }

    #[test]
    fn client_is_busy_exactly_while_a_command_is_outstanding() {
        let mut c = ready_client(0);
        assert_eq!(c.id(), CLIENT);
        assert!(!c.is_busy());
        let mut out = Vec::new();
        c.submit(5, &mut out);
        assert!(c.is_busy() && !c.is_ready());
    }
}
