//! `role_ops`: an arbitrary sequence of operations — deliver a message built from
//! arbitrary fields, tick, propose, crash and recover from persisted records —
//! applied to one acceptor, one proposer, one learner and one server, checking
//! each role's local invariants after every step.
//!
//! Fields are drawn from small ranges (ballots, slots, ids) so that the
//! operations collide: an acceptor sees competing ballots for the same slot, a
//! proposer gets promises for its own ballot, and so on.

use arbitrary::{Arbitrary, Unstructured};
use paxos_core::{
    Acceptor, Action, Ballot, Command, Config, DropReason, Input, Learner, Message, NodeId, PValue,
    Process, Proposer, Record, Role, Roles, Server, ServerSnapshot, Slot, StateMachine, Value,
};
use std::collections::BTreeMap;

/// The acceptors of the fuzzed cluster; every role below belongs to it.
const MEMBERS: [u32; 3] = [1, 2, 3];
/// Votes the acceptor keeps below its trim point for catch-up.
const VOTE_HISTORY: u64 = 4;
/// Most operations taken from one input, to bound each run.
const OPS_MAX: usize = 512;

#[derive(Arbitrary, Debug)]
enum Op {
    Tick,
    Deliver {
        from: u8,
        msg: ArbMessage,
    },
    Propose {
        client: u8,
        seq: u8,
        op: u8,
    },
    Read {
        client: u8,
        id: u8,
        query: u8,
    },
    CrashAndRecover,
    Transfer {
        to: u8,
    },
    /// The server loses its disk and rejoins (`Server::rejoin`).
    WipeAndRejoin,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct ArbBallot {
    round: u8,
    node: u8,
}

impl ArbBallot {
    fn get(self) -> Ballot {
        // Mostly small rounds, sometimes one near the top to probe overflow.
        let round = if self.round >= 250 {
            u64::MAX - u64::from(self.round - 250)
        } else {
            u64::from(self.round % 6)
        };
        Ballot::new(round, NodeId(u32::from(self.node % 5)))
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum ArbValue {
    Noop,
    One { client: u8, seq: u8, op: u8 },
    Batch(Vec<(u8, u8, u8)>),
}

impl ArbValue {
    fn get(&self) -> Value<u8> {
        let cmd = |&(client, seq, op): &(u8, u8, u8)| Command {
            client: u64::from(client % 4),
            seq: u64::from(seq % 8),
            op,
        };
        match self {
            ArbValue::Noop => Value::Noop,
            ArbValue::One { client, seq, op } => Value::One(cmd(&(*client, *seq, *op))),
            ArbValue::Batch(cs) => Value::Batch(cs.iter().take(8).map(cmd).collect()),
        }
    }
}

fn slot(s: u8) -> Slot {
    // Mostly small slots, sometimes a huge one to probe the range limits.
    if s >= 250 {
        u64::MAX - u64::from(s - 250)
    } else {
        u64::from(s % 12)
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum ArbMessage {
    Prepare {
        ballot: ArbBallot,
        from_slot: u8,
    },
    Promise {
        ballot: ArbBallot,
        trimmed_below: u8,
        accepted: Vec<(u8, ArbBallot, ArbValue)>,
    },
    Nack {
        ballot: ArbBallot,
        promised: ArbBallot,
    },
    Accept {
        ballot: ArbBallot,
        slot: u8,
        value: ArbValue,
        commit: u8,
    },
    Accepted {
        ballot: ArbBallot,
        slot: u8,
        value: Option<ArbValue>,
    },
    Heartbeat {
        ballot: ArbBallot,
        commit: u8,
        beat: u8,
    },
    CatchUp {
        from_slot: u8,
        to_slot: u8,
        query: u8,
    },
    Decided {
        first_slot: u8,
        values: Vec<ArbValue>,
    },
    Forward {
        commands: Vec<(u8, u8, u8)>,
    },
    Votes {
        first_slot: u8,
        query: u8,
        votes: Vec<Option<(ArbBallot, ArbValue)>>,
    },
    HeartbeatAck {
        ballot: ArbBallot,
        beat: u8,
    },
    Refused {
        client: u8,
        seq: u8,
        reason: u8,
    },
    ReadIndex {
        client: u8,
        id: u8,
    },
    ReadIndexReply {
        client: u8,
        id: u8,
        index: Option<u8>,
        leader: Option<u8>,
    },
    Handoff {
        ballot: ArbBallot,
        to: u8,
    },
    AskLead,
}

/// The sender of a delivered message. Mostly the process that sends that
/// kind (for a ballot's messages, the ballot's owner), so that operations
/// reach deep states; from 240 on, any role with any id, to probe the
/// core's checks of who may send what.
fn sender(from: u8, msg: &Msg) -> Process {
    let id = NodeId(u32::from(from % 5));
    if from >= 240 {
        return Process::only(Role::ALL[usize::from(from % 4)], id);
    }
    match msg {
        Message::Prepare { ballot, .. }
        | Message::Accept { ballot, .. }
        | Message::Heartbeat { ballot, .. }
        | Message::Handoff { ballot, .. } => Process::only(Role::Proposer, ballot.node),
        Message::AskLead => Process::only(Role::Proposer, id),
        Message::Promise { .. }
        | Message::Nack { .. }
        | Message::Accepted { .. }
        | Message::Votes { .. }
        | Message::HeartbeatAck { .. } => Process::only(Role::Acceptor, id),
        Message::CatchUp { .. } | Message::Decided { .. } => Process::only(Role::Learner, id),
        Message::Forward { .. } | Message::Snapshot(_) => Process::only(Role::Client, id),
        Message::Refused { .. } | Message::ReadIndex { .. } | Message::ReadIndexReply { .. } => {
            Process::only(Role::Proposer, id)
        }
    }
}

/// The same sender as a server of the cluster sees it: a peer server hosts
/// every role but the client's.
fn as_server(p: Process) -> Process {
    if Roles::SERVER.intersects(p.roles) {
        Process::server(p.id)
    } else {
        p
    }
}

/// Every machine here shares one message type: the server's, whose
/// snapshots the roles apart ignore.
type Msg = Message<u8, ServerSnapshot<Sum>>;
type In = Input<u8, ServerSnapshot<Sum>>;
type Act<O> = Action<u8, O, ServerSnapshot<Sum>>;

impl ArbMessage {
    fn get(&self) -> Msg {
        match self {
            ArbMessage::Prepare { ballot, from_slot } => Message::Prepare {
                ballot: ballot.get(),
                from_slot: slot(*from_slot),
            },
            ArbMessage::Promise {
                ballot,
                trimmed_below,
                accepted,
            } => Message::Promise {
                ballot: ballot.get(),
                trimmed_below: slot(*trimmed_below),
                accepted: accepted
                    .iter()
                    .take(16)
                    .map(|(s, b, v)| PValue {
                        slot: slot(*s),
                        ballot: b.get(),
                        value: v.get(),
                    })
                    .collect(),
            },
            ArbMessage::Nack { ballot, promised } => Message::Nack {
                ballot: ballot.get(),
                promised: promised.get(),
            },
            ArbMessage::Accept {
                ballot,
                slot: s,
                value,
                commit,
            } => Message::Accept {
                ballot: ballot.get(),
                slot: slot(*s),
                value: value.get(),
                commit: slot(*commit),
            },
            ArbMessage::Accepted {
                ballot,
                slot: s,
                value,
            } => Message::Accepted {
                ballot: ballot.get(),
                slot: slot(*s),
                value: value.as_ref().map(ArbValue::get),
            },
            ArbMessage::Heartbeat {
                ballot,
                commit,
                beat,
            } => Message::Heartbeat {
                ballot: ballot.get(),
                commit: slot(*commit),
                beat: u64::from(*beat),
            },
            ArbMessage::HeartbeatAck { ballot, beat } => Message::HeartbeatAck {
                ballot: ballot.get(),
                beat: u64::from(*beat),
            },
            ArbMessage::Refused {
                client,
                seq,
                reason,
            } => Message::Refused {
                client: u64::from(client % 4),
                seq: u64::from(seq % 8),
                reason: match reason % 3 {
                    0 => DropReason::Overloaded,
                    1 => DropReason::Superseded,
                    _ => DropReason::NotLeader {
                        leader: Some(NodeId(u32::from(reason % 5))),
                    },
                },
            },
            ArbMessage::Handoff { ballot, to } => Message::Handoff {
                ballot: ballot.get(),
                to: NodeId(u32::from(to % 5)),
            },
            ArbMessage::AskLead => Message::AskLead,
            ArbMessage::ReadIndex { client, id } => Message::ReadIndex {
                client: u64::from(client % 4),
                id: u64::from(*id),
            },
            ArbMessage::ReadIndexReply {
                client,
                id,
                index,
                leader,
            } => Message::ReadIndexReply {
                client: u64::from(client % 4),
                id: u64::from(*id),
                index: index.map(slot),
                leader: leader.map(|l| NodeId(u32::from(l % 5))),
            },
            ArbMessage::CatchUp {
                from_slot,
                to_slot,
                query,
            } => Message::CatchUp {
                from_slot: slot(*from_slot),
                to_slot: slot(*to_slot),
                query: u64::from(*query % 4),
            },
            ArbMessage::Votes {
                first_slot,
                query,
                votes,
            } => Message::Votes {
                first_slot: slot(*first_slot),
                query: u64::from(*query % 4),
                votes: votes
                    .iter()
                    .take(16)
                    .map(|v| v.as_ref().map(|(b, v)| (b.get(), v.get())))
                    .collect(),
            },
            ArbMessage::Decided { first_slot, values } => Message::Decided {
                first_slot: slot(*first_slot),
                values: values.iter().take(16).map(ArbValue::get).collect(),
            },
            ArbMessage::Forward { commands } => Message::Forward {
                commands: commands
                    .iter()
                    .take(8)
                    .map(|&(c, s, op)| Command {
                        client: u64::from(c % 4),
                        seq: u64::from(s % 8),
                        op,
                    })
                    .collect(),
            },
        }
    }
}

/// A state machine for the server under test.
#[derive(Clone, Debug, Default)]
struct Sum(u64);

impl StateMachine for Sum {
    type Command = u8;
    type Output = u64;
    fn apply(&mut self, n: &u8) -> u64 {
        self.0 += u64::from(*n);
        self.0
    }
    /// Adding zero changes nothing: that query is a read.
    fn read(&self, n: &u8) -> Option<u64> {
        (*n == 0).then_some(self.0)
    }
}

fn config(id: u32) -> Config {
    let mut c = Config::new(NodeId(id), MEMBERS.iter().map(|&m| NodeId(m)).collect());
    c.learners_apart = true;
    c.vote_history_slots = VOTE_HISTORY;
    c.pipeline_window = 4;
    c.batch_max = 3;
    c.pending_max = 8;
    c.catchup_chunk = 4;
    c.retain_slots = 4;
    c
}

/// The acceptor under test, its disk, and what it has promised to the world.
struct AcceptorUnderTest {
    role: Acceptor<u8>,
    disk: Vec<Record<u8>>,
    promised_high: Ballot,
}

impl AcceptorUnderTest {
    fn step(&mut self, input: In) {
        let before = self.role.promised();
        let actions: Vec<Act<()>> = self.role.step(input);
        for action in actions {
            match action {
                Action::Persist(r) => self.disk.push(r),
                Action::Compact(c) => self.disk = c.records,
                Action::Send {
                    msg: Message::Promise { ballot, .. },
                    ..
                } => {
                    assert!(
                        self.durable_promise() >= ballot,
                        "promise of {ballot} sent before it was persisted"
                    );
                    self.promised_high = self.promised_high.max(ballot);
                }
                Action::Send {
                    msg:
                        Message::Accepted {
                            ballot,
                            slot,
                            value: Some(value),
                        },
                    ..
                } => {
                    // A vote shared with the learners, fresh or sent again for
                    // catch-up: it must be one this acceptor durably cast.
                    let cast = self.disk.iter().any(|r| {
                        matches!(r, Record::Accepted(pv)
                            if pv.slot == slot && pv.ballot == ballot && pv.value == value)
                    });
                    assert!(
                        cast,
                        "shared a vote for slot {slot} in {ballot} it never cast"
                    );
                }
                Action::Send {
                    msg:
                        Message::Votes {
                            first_slot, votes, ..
                        },
                    ..
                } => {
                    // What it reports must be what it durably voted.
                    for (slot, vote) in (first_slot..).zip(votes) {
                        if let Some((ballot, value)) = vote {
                            let cast = self.disk.iter().any(|r| {
                                matches!(r, Record::Accepted(pv)
                                    if pv.slot == slot && pv.ballot == ballot && pv.value == value)
                            });
                            assert!(
                                cast,
                                "reported a vote for slot {slot} in {ballot} it never cast"
                            );
                        }
                    }
                }
                Action::Send {
                    msg: Message::Accepted { ballot, slot, .. },
                    ..
                } => {
                    assert!(
                        ballot >= before.min(self.role.promised()),
                        "accepted {ballot} below the promise"
                    );
                    if slot >= self.role.trimmed_below() {
                        let durable = self.disk.iter().any(|r| {
                            matches!(r, Record::Accepted(pv) if pv.slot == slot && pv.ballot == ballot)
                        });
                        assert!(
                            durable,
                            "vote for slot {slot} in {ballot} sent before it was persisted"
                        );
                    }
                }
                _ => {}
            }
        }
        assert!(self.role.promised() >= before, "promise went down");
    }

    /// The highest ballot the disk says this acceptor promised or accepted in.
    fn durable_promise(&self) -> Ballot {
        self.disk
            .iter()
            .map(|r| match r {
                Record::Promised(b) => *b,
                Record::Accepted(pv) => pv.ballot,
                _ => Ballot::ZERO,
            })
            .max()
            .unwrap_or(Ballot::ZERO)
    }

    fn crash_and_recover(&mut self) {
        let config = config(1);
        self.role = Acceptor::recover(&config, self.disk.clone())
            .expect("an acceptor's own records must recover");
        assert!(
            self.role.promised() >= self.promised_high,
            "a restarted acceptor broke a promise it had sent"
        );
    }
}

/// The proposer under test: it must never propose two values for one slot in
/// one ballot, and never reuse a ballot after a restart.
struct ProposerUnderTest {
    role: Proposer<u8>,
    disk: Vec<Record<u8>>,
    proposed: BTreeMap<(Ballot, Slot), Value<u8>>,
}

impl ProposerUnderTest {
    fn step(&mut self, input: In) {
        let actions: Vec<Act<()>> = self.role.step(input);
        for action in actions {
            match action {
                Action::Persist(r) => self.disk.push(r),
                Action::Compact(c) => self.disk = c.records,
                Action::Send {
                    msg: Message::Prepare { ballot, .. },
                    ..
                } => {
                    assert!(
                        self.disk.contains(&Record::Campaign(ballot)),
                        "prepare {ballot} before persisting it"
                    );
                }
                Action::Send {
                    msg:
                        Message::Accept {
                            ballot,
                            slot,
                            value,
                            ..
                        },
                    ..
                } => {
                    if let Some(previous) = self.proposed.insert((ballot, slot), value.clone()) {
                        assert_eq!(
                            previous, value,
                            "two values for slot {slot} in ballot {ballot}"
                        );
                    }
                }
                _ => {}
            }
        }
    }

    fn crash_and_recover(&mut self) {
        self.role = Proposer::recover(&config(1), self.disk.clone()).expect("valid config");
    }
}

/// The learner under test: it delivers 0, 1, 2, … once each.
struct LearnerUnderTest {
    role: Learner<u8>,
    delivered: Slot,
}

impl LearnerUnderTest {
    fn step(&mut self, input: In) {
        let actions: Vec<Act<()>> = self.role.step(input);
        for action in actions {
            if let Action::Deliver { slot, .. } = action {
                assert_eq!(
                    slot, self.delivered,
                    "learner delivered out of order or twice"
                );
                self.delivered += 1;
            }
        }
        assert_eq!(self.role.next_slot(), self.delivered);
    }
}

/// Runs the target on `data`; panics if a role breaks one of its invariants.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut acceptor = AcceptorUnderTest {
        role: Acceptor::new(&config(1)).expect("valid config"),
        disk: Vec::new(),
        promised_high: Ballot::ZERO,
    };
    let mut proposer = ProposerUnderTest {
        role: Proposer::new(&config(1)).expect("valid config"),
        disk: Vec::new(),
        proposed: BTreeMap::new(),
    };
    let mut learner = LearnerUnderTest {
        role: Learner::new(&config(4)).expect("valid config"),
        delivered: 0,
    };
    let mut server_disk: Vec<Record<u8>> = Vec::new();
    let mut server_snapshot: Option<ServerSnapshot<Sum>> = None;
    let server_config = || {
        let mut c = config(2);
        c.learners_apart = false;
        c
    };
    let mut server = Server::new(server_config(), Sum::default()).expect("valid config");
    for _ in 0..OPS_MAX {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        let inputs: Vec<In> = match &op {
            Op::Tick => vec![Input::Tick],
            Op::Deliver { from, msg } => {
                let msg = msg.get();
                vec![Input::Receive {
                    from: sender(*from, &msg),
                    msg,
                }]
            }
            Op::Propose { client, seq, op } => {
                vec![Input::Propose(Command {
                    client: u64::from(client % 4),
                    seq: u64::from(seq % 8),
                    op: *op,
                })]
            }
            Op::Read { client, id, query } => vec![Input::Read {
                client: u64::from(client % 4),
                id: u64::from(*id),
                query: query % 2,
            }],
            Op::Transfer { to } => vec![Input::Transfer {
                to: NodeId(u32::from(to % 5)),
            }],
            Op::CrashAndRecover => {
                acceptor.crash_and_recover();
                proposer.crash_and_recover();
                let records = server_disk.clone();
                server = match server_snapshot.clone() {
                    Some(s) => Server::restore(server_config(), s, records),
                    None => Server::recover(server_config(), Sum::default(), records),
                }
                .expect("a server's own records must recover");
                continue;
            }
            Op::WipeAndRejoin => {
                server_disk.clear();
                server_snapshot = None;
                server = Server::rejoin(server_config(), Sum::default())
                    .expect("five members can rejoin one");
                continue;
            }
        };
        for input in inputs {
            acceptor.step(input.clone());
            proposer.step(input.clone());
            learner.step(input.clone());
            let input = match input {
                Input::Receive { from, msg } => Input::Receive {
                    from: as_server(from),
                    msg,
                },
                other => other,
            };
            let rejoining = server.stats().rejoining;
            for action in server.step(input) {
                match action {
                    Action::Send { msg, .. } if rejoining => assert!(
                        !msg.is_acceptor_answer(),
                        "a rejoining server answered with a {}",
                        msg.kind()
                    ),
                    Action::Persist(r) => server_disk.push(r),
                    Action::PersistSnapshot(snapshot) => server_snapshot = Some(*snapshot),
                    Action::Compact(c) => {
                        server_snapshot = c.snapshot;
                        server_disk = c.records;
                    }
                    Action::ReadReply { slot, output, .. } => {
                        // A read answers the state it was served at, and the
                        // server has applied that far.
                        assert!(slot <= server.applied_up_to(), "read served beyond applied");
                        if slot == server.applied_up_to() {
                            assert_eq!(output, server.state().0, "read answered another state");
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
