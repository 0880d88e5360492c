//! The client side of a request: one command at a time under `(client, seq)`,
//! retried, redirected and backed off until it is answered or given up.
//!
//! Every client in the project runs this machine — the chat client over TCP,
//! the simulator's clients, and the multicast client (inside [`crate::Client`])
//! — so the retry policy and the meaning of each outcome live in one place.
//! Like every machine here it has no clock: the embedding feeds it
//! [`SessionInput::Tick`] on a fixed period and performs the
//! [`SessionAction`]s it returns.
//!
//! # Outcomes
//! A request ends in exactly one of:
//! * [`SessionAction::Done`]: a replica executed it (or answered a retry from
//!   its session table) and this is the result.
//! * [`SessionAction::Failed`] with [`Failure::Refused`]: every attempt was
//!   refused before it was proposed, so it was not applied and never will be.
//! * [`Failure::Superseded`]: the replicas already executed a later sequence
//!   number of this session, so this one never will be.
//! * [`Failure::Unknown`]: the deadline passed while some attempt may have
//!   reached a leader. It may still be applied — at most once.
//!
//! Retries always reuse the request's `(client, seq)`, so a command that two
//! attempts got decided twice is executed once. One request is outstanding at
//! a time, which is what the replicas' session table needs to tell a retry
//! from a new command.

use crate::action::{DropReason, Failure};
use crate::error::ConfigError;
use crate::types::{ClientId, Command, NodeId, Slot};
use alloc::vec::Vec;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// How a [`Session`] behaves. Times count [`SessionInput::Tick`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// The session id the replicas know this client by.
    pub client: ClientId,
    /// The sequence number of the first request (1 for a new session; more
    /// for a client that restarts with a fixed id and remembers its place).
    pub first_seq: u64,
    /// The processes that accept requests (servers, or proposers), in the
    /// order to try them. Empty: every attempt goes to all of them at once
    /// (`to: None`), as on a multicast group.
    pub servers: Vec<NodeId>,
    /// How long an attempt waits for an answer before it is sent again, to
    /// the next server.
    pub attempt_ticks: u32,
    /// How long an attempt waits instead once the embedding saw a leader
    /// propose it ([`SessionInput::Proposed`]): sending it again then only
    /// helps if that leader fails, since a leader retransmits what it
    /// proposed until it is chosen.
    pub proposed_ticks: u32,
    /// How long a request may take in all, retries included; `None` waits
    /// for ever.
    pub deadline_ticks: Option<u64>,
    /// First pause after a refusal (or after every server was unreachable);
    /// it doubles with each further one, up to `backoff_max_ticks`, and each
    /// pause is drawn at random in its upper half so that clients spread out.
    pub backoff_min_ticks: u32,
    /// Longest pause between attempts.
    pub backoff_max_ticks: u32,
    /// Move to the server a reply or a refusal names as leader (needs
    /// `servers` to hold the leader's id). Off keeps the session on its
    /// server, which forwards.
    pub follow_leader: bool,
    /// Seed of the back-off jitter.
    pub seed: u64,
}

impl SessionConfig {
    /// Defaults for a 10 ms tick: an attempt waits 1 s (also once seen
    /// proposed), back-off runs from 20 ms to 1 s, no deadline, leader hints
    /// followed.
    pub fn new(client: ClientId, servers: Vec<NodeId>) -> Self {
        SessionConfig {
            client,
            first_seq: 1,
            servers,
            attempt_ticks: 100,
            proposed_ticks: 100,
            deadline_ticks: None,
            backoff_min_ticks: 2,
            backoff_max_ticks: 100,
            follow_leader: true,
            seed: client,
        }
    }

    /// Checks that the settings can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ticks = [
            ("attempt_ticks", self.attempt_ticks),
            ("proposed_ticks", self.proposed_ticks),
            ("backoff_min_ticks", self.backoff_min_ticks),
            ("backoff_max_ticks", self.backoff_max_ticks),
        ];
        if let Some((name, _)) = ticks.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero { name });
        }
        if self.first_seq == 0 {
            return Err(ConfigError::Zero { name: "first_seq" });
        }
        if self.deadline_ticks == Some(0) {
            return Err(ConfigError::Zero {
                name: "deadline_ticks",
            });
        }
        Ok(())
    }
}

/// What happens to a [`Session`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionInput<C, O> {
    /// One period of logical time has passed.
    Tick,
    /// Submit a new request. While one is outstanding this is refused at
    /// once with [`Failure::Busy`].
    Submit(C),
    /// A replica answered request `seq` (answers to anything but the
    /// outstanding request are stale and ignored).
    Reply {
        /// The request.
        seq: u64,
        /// The slot it was executed in.
        slot: Slot,
        /// The result.
        output: O,
        /// Who the answering server believes leads, if it said.
        leader: Option<NodeId>,
    },
    /// A server refused request `seq` before proposing it.
    Refused {
        /// The request.
        seq: u64,
        /// Why; `NotLeader` may name the leader.
        reason: DropReason,
    },
    /// The transport lost the current attempt of request `seq`: it could not
    /// reach the server (`sent: false`, so the attempt was not delivered), or
    /// the connection broke after sending (`sent: true`, so it may have
    /// been). The session tries the next server without waiting for the
    /// attempt's timeout.
    Unreachable {
        /// The request.
        seq: u64,
        /// Whether the attempt may have been delivered.
        sent: bool,
    },
    /// A leader proposed request `seq` in a slot (a client that learns for
    /// itself saw an acceptor vote for it). The current attempt then waits
    /// [`SessionConfig::proposed_ticks`] from now before it is sent again,
    /// instead of `attempt_ticks`: the leader retransmits its proposal
    /// until it is chosen, so a copy would only be proposed again in a
    /// slot of its own. Only the first notice per attempt counts.
    Proposed {
        /// The request.
        seq: u64,
    },
    /// The embedding gives up on request `seq` now (a server rejected it
    /// for a reason of its own, or the user lost patience). It ends with
    /// [`Failure::Cancelled`] if no attempt can have reached a leader, and
    /// with [`Failure::Unknown`] otherwise.
    Cancel {
        /// The request.
        seq: u64,
    },
}

/// What a [`Session`] asks its embedding to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionAction<C, O> {
    /// Send `command` (a first attempt or a retry; same `(client, seq)`) to
    /// server `to`, or to all of them when `to` is `None`.
    Send {
        /// The server, or `None` for all.
        to: Option<NodeId>,
        /// The request.
        command: Command<C>,
    },
    /// Request `seq` completed.
    Done {
        /// The request.
        seq: u64,
        /// The slot it was executed in.
        slot: Slot,
        /// The result.
        output: O,
    },
    /// Request `seq` ended without a result; see [`Failure`].
    Failed {
        /// The request (0 for a [`Failure::Busy`] refusal, which used none).
        seq: u64,
        /// How it ended.
        failure: Failure,
    },
}

#[derive(Clone, Debug)]
struct Outstanding<C> {
    seq: u64,
    op: C,
    /// Ticks since it was submitted (for the deadline).
    age_ticks: u64,
    /// Ticks since the current attempt was sent (or was seen proposed).
    waited_ticks: u32,
    /// Ticks the current attempt waits: `attempt_ticks`, or
    /// `proposed_ticks` once it was seen proposed.
    patience: u32,
    /// The current attempt was seen proposed.
    seen_proposed: bool,
    /// Ticks left before the next attempt, while backing off.
    pause_ticks: Option<u32>,
    /// Some attempt may have reached a leader (it timed out or was lost
    /// after sending, rather than refused).
    maybe_proposed: bool,
    last_refusal: Option<DropReason>,
    /// Refusals and unreachable servers in a row: the back-off exponent.
    setbacks: u32,
    /// Attempts sent so far.
    sends: u32,
}

/// One client session; see the module docs.
///
/// ```
/// use paxos_core::{DropReason, NodeId, Session, SessionAction, SessionConfig, SessionInput};
/// let servers = vec![NodeId(0), NodeId(1), NodeId(2)];
/// let mut session: Session<&str, usize> = Session::new(SessionConfig::new(7, servers)).unwrap();
/// // Server 0 gets the request; it is not the leader and says who is.
/// let out = session.step(SessionInput::Submit("hello"));
/// assert!(matches!(&out[..], [SessionAction::Send { to: Some(NodeId(0)), .. }]));
/// let refused = DropReason::NotLeader { leader: Some(NodeId(2)) };
/// let out = session.step(SessionInput::Refused { seq: 1, reason: refused });
/// assert!(matches!(&out[..], [SessionAction::Send { to: Some(NodeId(2)), .. }]));
/// // The same (client, seq) completes there.
/// let out = session.step(SessionInput::Reply { seq: 1, slot: 4, output: 1, leader: None });
/// assert_eq!(out, [SessionAction::Done { seq: 1, slot: 4, output: 1 }]);
/// ```
#[derive(Clone, Debug)]
pub struct Session<C, O> {
    config: SessionConfig,
    rng: ChaCha8Rng,
    next_seq: u64,
    /// Index in `config.servers` of the server in use.
    current: usize,
    outstanding: Option<Outstanding<C>>,
    attempts: u64,
    retries: u64,
    _output: core::marker::PhantomData<fn() -> O>,
    #[cfg(feature = "bug-zoo")]
    bug: crate::zoo::Bug,
}

impl<C: Clone, O> Session<C, O> {
    /// A session with nothing outstanding.
    pub fn new(config: SessionConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Session {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            next_seq: config.first_seq,
            current: 0,
            outstanding: None,
            attempts: 0,
            retries: 0,
            config,
            _output: core::marker::PhantomData,
            #[cfg(feature = "bug-zoo")]
            bug: crate::zoo::Bug::None,
        })
    }

    /// Switches on a deliberate bug (testing the testers; see [`crate::zoo`]).
    #[cfg(feature = "bug-zoo")]
    pub fn set_bug(&mut self, bug: crate::zoo::Bug) {
        self.bug = bug;
    }

    /// The session id.
    pub fn client(&self) -> ClientId {
        self.config.client
    }

    /// The sequence number the next request will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The outstanding request's sequence number, if one is outstanding.
    pub fn outstanding(&self) -> Option<u64> {
        self.outstanding.as_ref().map(|o| o.seq)
    }

    /// True when a [`SessionInput::Submit`] would be taken.
    pub fn is_idle(&self) -> bool {
        self.outstanding.is_none()
    }

    /// The server requests go to now (`None` when they go to all).
    pub fn server(&self) -> Option<NodeId> {
        self.config.servers.get(self.current).copied()
    }

    /// Attempts sent, first ones included.
    pub fn attempts(&self) -> u64 {
        self.attempts
    }

    /// Attempts that repeated an earlier one.
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// Handles one input; see [`Session::step_into`].
    pub fn step(&mut self, input: SessionInput<C, O>) -> Vec<SessionAction<C, O>> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Handles one input, appending what to do to `out`.
    pub fn step_into(&mut self, input: SessionInput<C, O>, out: &mut Vec<SessionAction<C, O>>) {
        match input {
            SessionInput::Tick => self.tick(out),
            SessionInput::Submit(op) => self.submit(op, out),
            SessionInput::Reply {
                seq,
                slot,
                output,
                leader,
            } => {
                if self.request(seq).is_none() {
                    return;
                }
                self.outstanding = None;
                if let Some(leader) = leader {
                    self.follow(leader);
                }
                out.push(SessionAction::Done { seq, slot, output });
            }
            SessionInput::Refused { seq, reason } => self.refused(seq, reason, out),
            SessionInput::Proposed { seq } => {
                let proposed_ticks = self.config.proposed_ticks;
                let Some(o) = self.request(seq) else {
                    return;
                };
                if o.pause_ticks.is_some() || o.seen_proposed {
                    return;
                }
                o.maybe_proposed = true;
                o.seen_proposed = true;
                o.waited_ticks = 0;
                o.patience = proposed_ticks;
            }
            SessionInput::Cancel { seq } => {
                let Some(o) = self.request(seq) else {
                    return;
                };
                let failure = if o.maybe_proposed || o.pause_ticks.is_none() {
                    // An attempt is out and unanswered: it may be proposed.
                    Failure::Unknown
                } else {
                    Failure::Cancelled
                };
                self.outstanding = None;
                out.push(SessionAction::Failed { seq, failure });
            }
            SessionInput::Unreachable { seq, sent } => {
                let Some(o) = self.request(seq) else {
                    return;
                };
                if o.pause_ticks.is_some() {
                    return; // already waiting to retry
                }
                o.maybe_proposed |= sent;
                self.next_server();
                // Around the whole list without an answer: pause first.
                if self.current == 0 {
                    self.back_off();
                } else {
                    self.send(out);
                }
            }
        }
    }

    fn request(&mut self, seq: u64) -> Option<&mut Outstanding<C>> {
        self.outstanding.as_mut().filter(|o| o.seq == seq)
    }

    fn submit(&mut self, op: C, out: &mut Vec<SessionAction<C, O>>) {
        if self.outstanding.is_some() {
            out.push(SessionAction::Failed {
                seq: 0,
                failure: Failure::Busy,
            });
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outstanding = Some(Outstanding {
            seq,
            op,
            age_ticks: 0,
            waited_ticks: 0,
            patience: self.config.attempt_ticks,
            seen_proposed: false,
            pause_ticks: None,
            maybe_proposed: false,
            last_refusal: None,
            setbacks: 0,
            sends: 0,
        });
        self.send(out);
    }

    fn tick(&mut self, out: &mut Vec<SessionAction<C, O>>) {
        let Some(o) = self.outstanding.as_mut() else {
            return;
        };
        o.age_ticks += 1;
        if self.config.deadline_ticks.is_some_and(|d| o.age_ticks >= d) {
            let failure = match (o.maybe_proposed, o.last_refusal) {
                (false, Some(reason)) => Failure::Refused { reason },
                _ => Failure::Unknown,
            };
            let seq = o.seq;
            self.outstanding = None;
            out.push(SessionAction::Failed { seq, failure });
            return;
        }
        if let Some(pause) = &mut o.pause_ticks {
            *pause = pause.saturating_sub(1);
            if *pause == 0 {
                self.send(out);
            }
            return;
        }
        o.waited_ticks += 1;
        if o.waited_ticks >= o.patience {
            // No answer: the attempt may have reached a leader. The server
            // may be down or cut off, so the next attempt goes elsewhere.
            o.maybe_proposed = true;
            self.next_server();
            self.send(out);
        }
    }

    fn refused(&mut self, seq: u64, reason: DropReason, out: &mut Vec<SessionAction<C, O>>) {
        let Some(o) = self.request(seq) else {
            return;
        };
        if o.pause_ticks.is_some() {
            return; // a second answer to the same attempt
        }
        o.last_refusal = Some(reason);
        match reason {
            DropReason::Superseded => {
                self.outstanding = None;
                out.push(SessionAction::Failed {
                    seq,
                    failure: Failure::Superseded,
                });
            }
            DropReason::NotLeader {
                leader: Some(leader),
            } if self.server() != Some(leader) && self.index_of(leader).is_some() => {
                // A fresh hint: go there at once.
                self.follow(leader);
                self.send(out);
            }
            DropReason::NotLeader { .. } => {
                // No leader known (an election is under way), or the hint
                // is where we are: wait, then try elsewhere.
                self.next_server();
                self.back_off();
            }
            DropReason::Overloaded => self.back_off(),
        }
    }

    fn index_of(&self, server: NodeId) -> Option<usize> {
        self.config.servers.iter().position(|&s| s == server)
    }

    fn follow(&mut self, leader: NodeId) {
        if self.config.follow_leader {
            if let Some(i) = self.index_of(leader) {
                self.current = i;
            }
        }
    }

    fn next_server(&mut self) {
        if !self.config.servers.is_empty() {
            self.current = (self.current + 1) % self.config.servers.len();
        }
    }

    /// Waits before the next attempt: doubling with each setback in a row,
    /// drawn in the upper half of the current step.
    fn back_off(&mut self) {
        let (min, max) = (
            self.config.backoff_min_ticks,
            self.config.backoff_max_ticks.max(1),
        );
        let Some(o) = self.outstanding.as_mut() else {
            return;
        };
        let step = min
            .saturating_mul(1u32.checked_shl(o.setbacks).unwrap_or(u32::MAX))
            .clamp(1, max);
        o.setbacks = o.setbacks.saturating_add(1);
        let half = step / 2;
        let jitter = if step - half > 0 {
            self.rng.next_u32() % (step - half + 1)
        } else {
            0
        };
        o.pause_ticks = Some((half + jitter).max(1));
    }

    fn send(&mut self, out: &mut Vec<SessionAction<C, O>>) {
        let to = self.server();
        let client = self.config.client;
        let Some(o) = self.outstanding.as_mut() else {
            return;
        };
        if o.sends > 0 {
            self.retries += 1;
            if bug!(self.bug, RetryWithNewSeq) {
                o.seq += 1;
            }
        }
        o.sends = o.sends.saturating_add(1);
        self.attempts += 1;
        o.waited_ticks = 0;
        o.patience = self.config.attempt_ticks;
        o.seen_proposed = false;
        o.pause_ticks = None;
        out.push(SessionAction::Send {
            to,
            command: Command {
                client,
                seq: o.seq,
                op: o.op.clone(),
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const CLIENT: ClientId = 7;
    const ATTEMPT_TICKS: u32 = 5;

    type S = Session<&'static str, u64>;
    type A = SessionAction<&'static str, u64>;

    fn session(servers: &[u32]) -> S {
        let mut c = SessionConfig::new(CLIENT, servers.iter().map(|&s| NodeId(s)).collect());
        c.attempt_ticks = ATTEMPT_TICKS;
        c.backoff_min_ticks = 2;
        c.backoff_max_ticks = 8;
        Session::new(c).unwrap()
    }

    fn sent_to(out: &[A]) -> Vec<(Option<u32>, u64)> {
        out.iter()
            .filter_map(|a| match a {
                SessionAction::Send { to, command } => Some((to.map(|n| n.0), command.seq)),
                _ => None,
            })
            .collect()
    }

    fn ticks(s: &mut S, n: u32) -> Vec<A> {
        let mut out = Vec::new();
        for _ in 0..n {
            s.step_into(SessionInput::Tick, &mut out);
        }
        out
    }

    #[test]
    fn a_request_goes_to_the_first_server_and_completes_on_its_reply() {
        let mut s = session(&[1, 2, 3]);
        assert_eq!(sent_to(&s.step(SessionInput::Submit("a"))), [(Some(1), 1)]);
        assert!(!s.is_idle());
        let out = s.step(SessionInput::Reply {
            seq: 1,
            slot: 4,
            output: 9,
            leader: Some(NodeId(3)),
        });
        assert_eq!(
            out,
            [SessionAction::Done {
                seq: 1,
                slot: 4,
                output: 9
            }]
        );
        assert_eq!(
            s.server(),
            Some(NodeId(3)),
            "the next request goes to the leader"
        );
        assert_eq!(sent_to(&s.step(SessionInput::Submit("b"))), [(Some(3), 2)]);
    }

    #[test]
    fn an_unanswered_attempt_is_sent_again_to_the_next_server_under_the_same_seq() {
        let mut s = session(&[1, 2]);
        s.step(SessionInput::Submit("a"));
        let out = ticks(&mut s, ATTEMPT_TICKS * 2);
        assert_eq!(sent_to(&out), [(Some(2), 1), (Some(1), 1)]);
        assert_eq!((s.attempts(), s.retries()), (3, 2));
    }

    #[test]
    fn an_attempt_seen_proposed_waits_proposed_ticks_from_then_once_per_attempt() {
        let mut s = session(&[]);
        s.config.proposed_ticks = 3 * ATTEMPT_TICKS;
        s.step(SessionInput::Submit("a"));
        ticks(&mut s, ATTEMPT_TICKS - 1);
        assert!(s.step(SessionInput::Proposed { seq: 2 }).is_empty());
        assert!(s.step(SessionInput::Proposed { seq: 1 }).is_empty());
        let before = ticks(&mut s, 3 * ATTEMPT_TICKS - 1);
        assert!(sent_to(&before).is_empty(), "{before:?}");
        // A second notice for the same attempt does not push it back.
        s.step(SessionInput::Proposed { seq: 1 });
        assert_eq!(sent_to(&ticks(&mut s, 1)), [(None, 1)]);
        // The retry waits attempt_ticks again until it is seen proposed.
        assert_eq!(sent_to(&ticks(&mut s, ATTEMPT_TICKS)), [(None, 1)]);
        // Seen proposed, a deadline still reports it as possibly applied.
        s.step(SessionInput::Proposed { seq: 1 });
        let out = s.step(SessionInput::Cancel { seq: 1 });
        assert_eq!(
            out,
            [SessionAction::Failed {
                seq: 1,
                failure: Failure::Unknown
            }]
        );
    }

    #[test]
    fn a_not_leader_hint_is_followed_at_once() {
        let mut s = session(&[1, 2, 3]);
        s.step(SessionInput::Submit("a"));
        let out = s.step(SessionInput::Refused {
            seq: 1,
            reason: DropReason::NotLeader {
                leader: Some(NodeId(3)),
            },
        });
        assert_eq!(sent_to(&out), [(Some(3), 1)]);
    }

    #[test]
    fn refusals_without_a_hint_back_off_exponentially_within_the_bounds() {
        let mut s = session(&[1]);
        s.step(SessionInput::Submit("a"));
        let mut pauses = Vec::new();
        for _ in 0..6 {
            s.step(SessionInput::Refused {
                seq: 1,
                reason: DropReason::Overloaded,
            });
            let mut waited = 0;
            loop {
                waited += 1;
                if !sent_to(&s.step(SessionInput::Tick)).is_empty() {
                    break;
                }
                assert!(waited <= 8, "never longer than backoff_max_ticks");
            }
            pauses.push(waited);
        }
        // Steps 2, 4, 8, 8, ...: each pause is in the upper half of its step.
        for (k, &p) in pauses.iter().enumerate() {
            let step = (2u32 << k).min(8);
            assert!(
                p >= (step / 2).max(1) && p <= step,
                "pause {k}: {p} not in its step {step}"
            );
        }
    }

    #[test]
    fn superseded_is_final_at_once() {
        let mut s = session(&[1]);
        s.step(SessionInput::Submit("a"));
        let out = s.step(SessionInput::Refused {
            seq: 1,
            reason: DropReason::Superseded,
        });
        assert_eq!(
            out,
            [SessionAction::Failed {
                seq: 1,
                failure: Failure::Superseded
            }]
        );
        assert!(s.is_idle());
    }

    #[test]
    fn the_deadline_tells_refused_from_unknown() {
        let deadline = |s: &mut S, d| {
            s.config.deadline_ticks = Some(d);
        };
        // Only refusals: it was never proposed.
        let mut s = session(&[1]);
        deadline(&mut s, 3);
        s.step(SessionInput::Submit("a"));
        s.step(SessionInput::Refused {
            seq: 1,
            reason: DropReason::NotLeader { leader: None },
        });
        let out = ticks(&mut s, 3);
        assert!(out.contains(&SessionAction::Failed {
            seq: 1,
            failure: Failure::Refused {
                reason: DropReason::NotLeader { leader: None }
            }
        }));
        // A timed-out attempt may have reached a leader.
        let mut s = session(&[1]);
        deadline(&mut s, u64::from(ATTEMPT_TICKS) + 1);
        s.step(SessionInput::Submit("a"));
        let out = ticks(&mut s, ATTEMPT_TICKS + 1);
        assert_eq!(
            out.last(),
            Some(&SessionAction::Failed {
                seq: 1,
                failure: Failure::Unknown
            })
        );
        // A refusal after a timeout does not make it safe again.
        let mut s = session(&[1]);
        deadline(&mut s, 100);
        s.step(SessionInput::Submit("a"));
        ticks(&mut s, ATTEMPT_TICKS);
        s.step(SessionInput::Refused {
            seq: 1,
            reason: DropReason::Overloaded,
        });
        let out = ticks(&mut s, 100);
        assert!(out.contains(&SessionAction::Failed {
            seq: 1,
            failure: Failure::Unknown
        }));
    }

    #[test]
    fn stale_answers_and_a_second_submit_change_nothing() {
        let mut s = session(&[1, 2]);
        s.step(SessionInput::Submit("a"));
        assert_eq!(
            s.step(SessionInput::Submit("b")),
            [SessionAction::Failed {
                seq: 0,
                failure: Failure::Busy
            }]
        );
        assert!(s
            .step(SessionInput::Reply {
                seq: 9,
                slot: 0,
                output: 0,
                leader: None
            })
            .is_empty());
        assert_eq!(s.outstanding(), Some(1));
        assert_eq!(s.next_seq(), 2, "the refused submit used no number");
    }

    #[test]
    fn unreachable_servers_are_skipped_then_the_round_backs_off() {
        let mut s = session(&[1, 2]);
        s.step(SessionInput::Submit("a"));
        let out = s.step(SessionInput::Unreachable {
            seq: 1,
            sent: false,
        });
        assert_eq!(sent_to(&out), [(Some(2), 1)]);
        let out = s.step(SessionInput::Unreachable {
            seq: 1,
            sent: false,
        });
        assert!(sent_to(&out).is_empty(), "round trip done: pause first");
        let out = ticks(&mut s, 2);
        assert_eq!(sent_to(&out), [(Some(1), 1)]);
    }

    #[test]
    fn with_no_server_list_every_attempt_goes_to_all() {
        let mut s = session(&[]);
        assert_eq!(sent_to(&s.step(SessionInput::Submit("a"))), [(None, 1)]);
        assert_eq!(sent_to(&ticks(&mut s, ATTEMPT_TICKS)), [(None, 1)]);
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        let mut c = SessionConfig::new(CLIENT, vec![NodeId(1)]);
        c.attempt_ticks = 0;
        assert_eq!(
            Session::<(), ()>::new(c).err(),
            Some(ConfigError::Zero {
                name: "attempt_ticks"
            })
        );
        let mut c = SessionConfig::new(CLIENT, vec![]);
        c.first_seq = 0;
        assert!(Session::<(), ()>::new(c).is_err());
    }

    #[test]
    fn a_cancelled_request_is_unknown_while_an_attempt_may_be_out() {
        let mut s = session(&[1]);
        s.step(SessionInput::Submit("a"));
        let out = s.step(SessionInput::Cancel { seq: 1 });
        assert_eq!(
            out,
            [SessionAction::Failed {
                seq: 1,
                failure: Failure::Unknown
            }]
        );
        s.step(SessionInput::Submit("b"));
        s.step(SessionInput::Refused {
            seq: 2,
            reason: DropReason::Overloaded,
        });
        let out = s.step(SessionInput::Cancel { seq: 2 });
        assert_eq!(
            out,
            [SessionAction::Failed {
                seq: 2,
                failure: Failure::Cancelled
            }],
            "refused and waiting to retry: nothing is out"
        );
        assert!(s.is_idle());
    }
}
