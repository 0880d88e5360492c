//! Replays an `abcast <role> <id> --record FILE` recording: rebuilds the
//! role's core machine from each session's recorded configuration and log,
//! feeds it the recorded inputs, and checks that every step gives the
//! recorded actions. `paxos-sim replay-node` calls this for abcast
//! recordings.

use paxos_core::{Acceptor, Client, LearnerReplica, Proposer, StateMachine};
use paxos_record::{Kind, Observer, ReplayError, Replayed, Session};

/// The learner's state machine without the printing: a learner's actions
/// do not depend on what it printed, so this replays it exactly.
#[derive(Debug, Default)]
struct Discard;

impl StateMachine for Discard {
    type Command = String;
    type Output = ();
    fn apply(&mut self, _: &String) {}
}

type S = Session<String, ()>;
type Out = Vec<paxos_core::Action<String>>;

/// Replays every session of the recording in `bytes`, whichever role wrote it.
pub fn replay(bytes: &[u8], observer: &mut impl Observer) -> Result<Vec<Replayed>, ReplayError> {
    let kind = paxos_record::meta(bytes)?.kind;
    let err = |e: paxos_core::RecoverError| e.to_string();
    let cfg = |e: paxos_core::ConfigError| e.to_string();
    match kind {
        Kind::AbcastAcceptor => paxos_record::replay_file(
            bytes,
            kind,
            |s: &S| Acceptor::recover(&s.boot.config, s.boot.records.clone()).map_err(err),
            |m: &mut Acceptor<String>, i, out: &mut Out| m.step_into(i, out),
            observer,
        ),
        Kind::AbcastProposer => paxos_record::replay_file(
            bytes,
            kind,
            |s: &S| Proposer::recover(&s.boot.config, s.boot.records.clone()).map_err(cfg),
            |m: &mut Proposer<String>, i, out: &mut Out| m.step_into(i, out),
            observer,
        ),
        Kind::AbcastLearner => paxos_record::replay_file(
            bytes,
            kind,
            |s: &S| LearnerReplica::new(&s.boot.config, Discard).map_err(cfg),
            |m: &mut LearnerReplica<Discard>, i, out: &mut Out| m.step_into(i, out),
            observer,
        ),
        Kind::AbcastClient => paxos_record::replay_file(
            bytes,
            kind,
            |s: &S| {
                let id = s
                    .boot
                    .client
                    .ok_or("a client recording without its session id")?;
                Client::new(&s.boot.config, id).map_err(cfg)
            },
            |m: &mut Client<String>, i, out: &mut Out| m.step_into(i, out),
            observer,
        ),
        Kind::ChatServer => Err(ReplayError::Kind {
            found: kind,
            expected: Kind::AbcastAcceptor,
        }),
    }
}
