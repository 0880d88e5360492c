//! The self-learning client: a [`Session`] for deployments where nobody
//! answers a client (the multicast layout), so it learns for itself.
//!
//! The client runs a [`Learner`] fed by the same messages the learners get,
//! and a command is done once its own learner delivers a slot holding it.
//! Until then its session sends it again every retry period under the same
//! `(client, seq)`, so a lost or dropped proposal costs a retry, and a
//! proposal decided twice is executed once by replicas (see
//! [`crate::Replica`]). One command is outstanding at a time, which is what
//! the replica's session table needs to tell a retry from a new command;
//! callers batch by putting several operations into one command.

use crate::action::{Action, DropReason, Event, Input};
use crate::address::{Destination, Roles};
use crate::config::Config;
use crate::error::ConfigError;
use crate::learner::Learner;
use crate::message::Message;
use crate::session::{Session, SessionAction, SessionConfig, SessionInput};
use crate::types::{ClientId, Slot};
use alloc::vec;
use alloc::vec::Vec;

/// One self-learning client process. Its learner starts at the commit point
/// of the first leader heartbeat it hears, so it never has to learn the
/// log's history: any slot its commands can land in lies at or above that
/// point.
///
/// ```
/// use paxos_core::{Action, Ballot, Client, Command, Config, Input, Message, NodeId, Process, Role};
/// let acceptors = vec![NodeId(1), NodeId(2), NodeId(3)];
/// let mut client = Client::<String>::new(&Config::new(NodeId(1), acceptors), 42).unwrap();
/// let leader = Process::only(Role::Proposer, NodeId(1));
/// let heartbeat = Message::Heartbeat { ballot: Ballot::new(1, NodeId(1)), commit: 0, beat: 1 };
/// client.step::<()>(Input::Receive { from: leader, msg: heartbeat });
/// assert!(client.is_ready());
/// let line = Command { client: 0, seq: 0, op: "hello".to_string() }; // numbered by the client
/// let out = client.step::<()>(Input::Propose(line));
/// assert!(matches!(&out[..], [Action::Send { msg: Message::Forward { .. }, .. }]));
/// ```
#[derive(Clone, Debug)]
pub struct Client<C> {
    config: Config,
    session: Session<C, ()>,
    learner: Option<Learner<C>>,
    /// `(seq, slot)` of the outstanding command, once the learner saw it.
    seen: Option<(u64, Slot)>,
    session_out: Vec<SessionAction<C, ()>>,
    #[cfg(feature = "bug-zoo")]
    bug: crate::zoo::Bug,
}

impl<C: Clone> Client<C> {
    /// A client with session id `id`. `config.members` are the acceptors (its
    /// learner counts their votes); a command is sent again every
    /// `config.retransmit_ticks` ticks until an acceptor's vote shows that a
    /// leader proposed it, with no deadline. Until then a copy costs little
    /// (a leader ignores copies of a command it holds) and is what repairs
    /// a lost submission, so the client retries as often as a leader
    /// retransmits. Once it was seen proposed, the client waits an election
    /// timeout from then instead: that leader retransmits it until it is
    /// chosen and the client's learner catches up on the slot, so a copy
    /// sent meanwhile would only be decided a second time in a slot of its
    /// own; only a leader that fails before it is chosen needs the copy. After a refusal it backs off for at most one election
    /// timeout: longer never helps (a leader is elected or the queue drains
    /// within that), and an overloaded leader keeps a refused client's
    /// place in line only for a few election timeouts.
    pub fn new(config: &Config, id: ClientId) -> Result<Self, ConfigError> {
        let mut session = SessionConfig::new(id, Vec::new());
        session.attempt_ticks = config.retransmit_ticks;
        session.proposed_ticks = config.election_timeout_ticks.max(session.attempt_ticks);
        session.backoff_max_ticks = config.election_timeout_ticks.max(1);
        session.backoff_min_ticks = session.backoff_min_ticks.min(session.backoff_max_ticks);
        session.seed = config.seed ^ id;
        Client::with_session(config, session)
    }

    /// A client whose requests follow `session` (its `servers` are ignored:
    /// every attempt goes to every proposer).
    pub fn with_session(config: &Config, mut session: SessionConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        session.servers.clear();
        Ok(Client {
            config: config.clone(),
            session: Session::new(session)?,
            learner: None,
            seen: None,
            session_out: Vec::new(),
            #[cfg(feature = "bug-zoo")]
            bug: crate::zoo::Bug::None,
        })
    }

    /// Switches on a deliberate bug (testing the testers; see [`crate::zoo`]).
    #[cfg(feature = "bug-zoo")]
    pub fn set_bug(&mut self, bug: crate::zoo::Bug) {
        self.bug = bug;
        self.session.set_bug(bug);
        if let Some(l) = &mut self.learner {
            l.set_bug(bug);
        }
    }

    /// This client's session id.
    pub fn id(&self) -> ClientId {
        self.session.client()
    }

    /// True once a leader was heard and no command is outstanding: an
    /// [`Input::Propose`] now will be sent.
    pub fn is_ready(&self) -> bool {
        self.learner.is_some() && self.session.is_idle()
    }

    /// True while a submitted command has not been seen chosen.
    pub fn is_busy(&self) -> bool {
        !self.session.is_idle()
    }

    /// Times a command was sent again.
    pub fn retries(&self) -> u64 {
        self.session.retries()
    }

    /// The next slot the client's learner will deliver, once it has started.
    pub fn learned_up_to(&self) -> Option<Slot> {
        self.learner.as_ref().map(Learner::next_slot)
    }

    /// Handles one input; see [`Client::step_into`].
    pub fn step<P>(&mut self, input: Input<C, P>) -> Vec<Action<C, (), P>> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Handles one input.
    ///
    /// * `Propose` submits its `op` as the session's next command (its
    ///   `client` and `seq` are the session's, whatever the input says).
    ///   Before a leader was heard it is refused with
    ///   [`Event::Dropped`] (`NotLeader`); while a command is outstanding,
    ///   with [`Event::Failed`] ([`crate::Failure::Busy`]).
    /// * `Tick` drives the learner's catch-up and the retry timer.
    /// * Messages feed the learner. When the outstanding command is seen
    ///   chosen, the client emits [`Action::Reply`] with its slot.
    /// * With a deadline set, a command given up on ends with
    ///   [`Event::Failed`].
    ///
    /// The learner's deliveries stay inside; its catch-up traffic comes out.
    pub fn step_into<P>(&mut self, input: Input<C, P>, out: &mut Vec<Action<C, (), P>>) {
        match input {
            // This client learns for itself and serves no reads.
            Input::Read { .. } | Input::Transfer { .. } | Input::Reconfigure { .. } => {}
            Input::Propose(cmd) => {
                if self.learner.is_none() {
                    out.push(Action::Event(Event::Dropped {
                        client: self.id(),
                        seq: self.session.next_seq(),
                        reason: DropReason::NotLeader { leader: None },
                    }));
                    return;
                }
                self.session_step(SessionInput::Submit(cmd.op), out);
            }
            Input::Tick => {
                self.session_step(SessionInput::Tick, out);
                self.feed(Input::Tick, out);
            }
            Input::Receive {
                from,
                msg:
                    Message::Refused {
                        client,
                        seq,
                        reason,
                    },
            } => {
                // An overloaded leader turned our command away: the session
                // backs off and tries again rather than waiting out the attempt.
                if client == self.id() && from.hosts(crate::address::Role::Proposer) {
                    self.session_step(SessionInput::Refused { seq, reason }, out);
                }
            }
            Input::Receive { from, msg } => {
                self.notice_proposal(from, &msg, out);
                if self.learner.is_none() {
                    let Message::Heartbeat { commit, .. } = &msg else {
                        return;
                    };
                    match Learner::starting_at(&self.config, *commit) {
                        #[allow(unused_mut)]
                        Ok(mut l) => {
                            #[cfg(feature = "bug-zoo")]
                            l.set_bug(self.bug);
                            self.learner = Some(l)
                        }
                        Err(_) => return, // unreachable: the config was validated
                    }
                }
                self.feed(Input::Receive { from, msg }, out);
            }
            Input::Checkpoint => {} // nothing durable
        }
    }

    /// An acceptor's vote carrying the outstanding command shows that a
    /// leader proposed it: the session stops sending copies for a while.
    fn notice_proposal<P>(
        &mut self,
        from: crate::address::Process,
        msg: &Message<C, P>,
        out: &mut Vec<Action<C, (), P>>,
    ) {
        let Message::Accepted {
            value: Some(value), ..
        } = msg
        else {
            return;
        };
        let Some(seq) = self.session.outstanding() else {
            return;
        };
        let client = self.id();
        if from.hosts(crate::address::Role::Acceptor)
            && value
                .commands()
                .iter()
                .any(|c| c.client == client && c.seq == seq)
        {
            self.session_step(SessionInput::Proposed { seq }, out);
        }
    }

    fn session_step<P>(&mut self, input: SessionInput<C, ()>, out: &mut Vec<Action<C, (), P>>) {
        let mut actions = core::mem::take(&mut self.session_out);
        self.session.step_into(input, &mut actions);
        let client = self.id();
        for action in actions.drain(..) {
            out.push(match action {
                SessionAction::Send { command, .. } => Action::Send {
                    to: Destination::Group(Roles::PROPOSER),
                    msg: Message::Forward {
                        commands: vec![command],
                    },
                },
                SessionAction::Done { seq, slot, output } => Action::Reply {
                    client,
                    seq,
                    slot,
                    output,
                },
                SessionAction::Failed { seq, failure } => Action::Event(Event::Failed {
                    client,
                    seq,
                    failure,
                }),
            });
        }
        self.session_out = actions;
    }

    fn feed<P>(&mut self, input: Input<C, P>, out: &mut Vec<Action<C, (), P>>) {
        let Some(learner) = &mut self.learner else {
            return;
        };
        learner.take(input, out);
        let client = self.session.client();
        let outstanding = self.session.outstanding();
        let seen = &mut self.seen;
        learner.deliver(|slot, value| {
            let mine = outstanding.filter(|&seq| {
                value
                    .commands()
                    .iter()
                    .any(|c| c.client == client && c.seq == seq)
            });
            // The first slot holding it is where it was executed; a retry
            // decided again later is answered from the session table.
            if let (Some(seq), None) = (mine, &seen) {
                *seen = Some((seq, slot));
            }
        });
        learner.resume_catch_up(out);
        if let Some((seq, slot)) = self.seen.take() {
            let reply = SessionInput::Reply {
                seq,
                slot,
                output: (),
                leader: None,
            };
            self.session_step(reply, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Failure;
    use crate::address::{Process, Role};
    use crate::types::{Ballot, Command, NodeId, Value};

    const CLIENT: ClientId = 42;
    const ACCEPTORS: [u32; 3] = [1, 2, 3];

    fn config() -> Config {
        let members = ACCEPTORS.iter().map(|&m| NodeId(m)).collect();
        Config::new(NodeId(7), members)
    }

    fn heartbeat(commit: Slot) -> Input<u64> {
        Input::Receive {
            from: Process::only(Role::Proposer, NodeId(1)),
            msg: Message::Heartbeat {
                ballot: Ballot::new(1, NodeId(1)),
                commit,
                beat: 1,
            },
        }
    }

    fn accepted(from: u32, slot: Slot, value: Value<u64>) -> Input<u64> {
        Input::Receive {
            from: Process::only(Role::Acceptor, NodeId(from)),
            msg: Message::Accepted {
                ballot: Ballot::new(1, NodeId(1)),
                slot,
                value: Some(value),
            },
        }
    }

    /// A proposal; the client replaces its `client` and `seq` by its own.
    fn propose(op: u64) -> Input<u64> {
        Input::Propose(Command {
            client: 0,
            seq: 0,
            op,
        })
    }

    fn forwards(out: &[Action<u64>]) -> Vec<(u64, u64)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send {
                    to: Destination::Group(Roles::PROPOSER),
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

    fn mine(seq: u64, op: u64) -> Value<u64> {
        Value::One(Command {
            client: CLIENT,
            seq,
            op,
        })
    }

    #[test]
    fn client_waits_for_a_leader_before_submitting() {
        let mut c = Client::new(&config(), CLIENT).unwrap();
        let out = c.step(propose(5));
        assert!(matches!(
            out[..],
            [Action::Event(Event::Dropped {
                reason: DropReason::NotLeader { leader: None },
                ..
            })]
        ));
        assert!(forwards(&out).is_empty());
        c.step(heartbeat(0));
        assert!(c.is_ready());
    }

    #[test]
    fn only_a_proposers_refusal_of_this_clients_command_makes_it_retry_early() {
        let mut c = ready_client(0);
        let mut out = Vec::new();
        c.step_into(propose(5), &mut out);
        let refused = |from: Process, client| Input::Receive {
            from,
            msg: Message::Refused {
                client,
                seq: 1,
                reason: DropReason::Overloaded,
            },
        };
        let proposer = Process::only(Role::Proposer, NodeId(1));
        let acceptor = Process::only(Role::Acceptor, NodeId(1));
        out.clear();
        c.step_into(refused(proposer, CLIENT + 1), &mut out);
        c.step_into(refused(acceptor, CLIENT), &mut out);
        for _ in 0..3 {
            c.step_into(Input::Tick, &mut out);
        }
        assert!(
            forwards(&out).is_empty(),
            "another client's refusal, or one from a non-proposer, changes nothing"
        );
        c.step_into(refused(proposer, CLIENT), &mut out);
        for _ in 0..3 {
            c.step_into(Input::Tick, &mut out);
        }
        assert_eq!(forwards(&out), [(1, 5)], "sent again after a short pause");
    }

    #[test]
    fn a_client_refused_again_and_again_never_pauses_longer_than_an_election_timeout() {
        let mut c = ready_client(0);
        let mut out = Vec::new();
        c.step_into(propose(5), &mut out);
        let leader = crate::address::Process::only(crate::address::Role::Proposer, NodeId(1));
        let longest = config().election_timeout_ticks;
        for refusal in 0..20 {
            out.clear();
            c.step_into(
                Input::Receive {
                    from: leader,
                    msg: Message::Refused {
                        client: CLIENT,
                        seq: 1,
                        reason: DropReason::Overloaded,
                    },
                },
                &mut out,
            );
            let mut waited = 0;
            while forwards(&out).is_empty() {
                c.step_into(Input::Tick, &mut out);
                waited += 1;
                assert!(
                    waited <= longest,
                    "refusal {refusal}: still waiting after {waited} ticks"
                );
            }
        }
    }

    #[test]
    fn client_retransmits_the_same_command_until_it_is_chosen() {
        let mut c = ready_client(0);
        let mut out = Vec::new();
        c.step_into(propose(5), &mut out);
        let retry_ticks = config().retransmit_ticks;
        for _ in 0..retry_ticks * 3 {
            c.step_into(Input::Tick, &mut out);
        }
        assert_eq!(forwards(&out), [(1, 5); 4], "first send plus three retries");
        assert_eq!(c.retries(), 3);
        assert!(c.is_busy());
        out.clear();
        c.step_into(propose(6), &mut out);
        assert_eq!(
            out,
            [Action::Event(Event::Failed {
                client: CLIENT,
                seq: 0,
                failure: Failure::Busy
            })],
            "one command at a time"
        );
    }

    #[test]
    fn a_command_seen_in_a_vote_is_not_sent_again_before_an_election_timeout() {
        let mut c = ready_client(3);
        let mut out = Vec::new();
        c.step_into(propose(5), &mut out);
        let attempt = config().retransmit_ticks;
        let patience = config().election_timeout_ticks;
        assert!(patience > attempt + 1);
        c.step_into(Input::Tick, &mut out);
        // A vote from a non-acceptor, or for another command, shows nothing.
        let forged = Input::Receive {
            from: Process::only(Role::Learner, NodeId(1)),
            msg: Message::Accepted {
                ballot: Ballot::new(1, NodeId(1)),
                slot: 3,
                value: Some(mine(1, 5)),
            },
        };
        c.step_into(forged, &mut out);
        c.step_into(accepted(1, 4, mine(2, 5)), &mut out);
        out.clear();
        for _ in 1..attempt {
            c.step_into(Input::Tick, &mut out);
        }
        assert_eq!(forwards(&out), [(1, 5)], "retried after attempt_ticks");
        // Seen proposed: one vote of the leader's proposal is enough.
        c.step_into(accepted(1, 3, mine(1, 5)), &mut out);
        out.clear();
        for _ in 1..patience {
            c.step_into(Input::Tick, &mut out);
        }
        assert!(forwards(&out).is_empty(), "{out:?}");
        c.step_into(Input::Tick, &mut out);
        assert_eq!(forwards(&out), [(1, 5)], "the leader may have failed");
        assert_eq!(replies(&out), []);
    }

    #[test]
    fn client_is_done_when_its_own_learner_delivers_the_command() {
        let mut c = ready_client(3);
        let mut out = Vec::new();
        c.step_into(propose(5), &mut out);
        c.step_into(accepted(1, 3, mine(1, 5)), &mut out);
        assert!(replies(&out).is_empty(), "one vote is not a quorum");
        c.step_into(accepted(2, 3, mine(1, 5)), &mut out);
        assert_eq!(replies(&out), [(1, 3)]);
        assert!(c.is_ready());
        out.clear();
        c.step_into(propose(6), &mut out);
        assert_eq!(
            forwards(&out),
            [(2, 6)],
            "the next command gets the next seq"
        );
    }

    #[test]
    fn another_clients_command_with_our_seq_does_not_complete_ours() {
        let mut c = ready_client(0);
        let mut out = Vec::new();
        c.step_into(propose(5), &mut out);
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
        c.step(propose(5));
        assert!(c.is_busy() && !c.is_ready());
    }

    #[test]
    fn a_client_with_a_deadline_gives_up_and_says_the_outcome_is_unknown() {
        let mut session = SessionConfig::new(CLIENT, Vec::new());
        session.attempt_ticks = 2;
        session.deadline_ticks = Some(5);
        let mut c = Client::with_session(&config(), session).unwrap();
        c.step(heartbeat(0));
        let mut out = Vec::new();
        c.step_into(propose(5), &mut out);
        for _ in 0..5 {
            c.step_into(Input::Tick, &mut out);
        }
        assert!(out.contains(&Action::Event(Event::Failed {
            client: CLIENT,
            seq: 1,
            failure: Failure::Unknown
        })));
        assert!(c.is_ready());
    }

    #[test]
    fn a_command_decided_twice_at_once_completes_at_its_first_slot() {
        let mut c = ready_client(0);
        let mut out = Vec::new();
        c.step_into(propose(5), &mut out);
        // Slot 1 (a retry) is chosen first, then slot 0 fills the gap, so
        // one step delivers both.
        for slot in [1, 0] {
            c.step_into(accepted(1, slot, mine(1, 5)), &mut out);
        }
        assert!(replies(&out).is_empty());
        c.step_into(accepted(2, 1, mine(1, 5)), &mut out);
        c.step_into(accepted(2, 0, mine(1, 5)), &mut out);
        assert_eq!(
            replies(&out),
            [(1, 0)],
            "executed where it was first decided"
        );
    }
}
