//! Learners apart from the other roles (the multicast layout): a slot whose
//! `Accepted` votes reached no learner at all is still delivered.
//!
//! Once the slot is chosen the leader stops sending `Accept` for it and a
//! standalone proposer keeps no chosen values, so no learner may have the
//! value; only the acceptors do. A stalled learner therefore asks the
//! acceptors too, and they answer with their votes again. Found by the
//! multicast tests: with one drop decision for every listener, each slot loses
//! all its votes with probability p^3 (2.7 % at 30 % loss), which stalled a
//! run within seconds.

use paxos_core::{
    Acceptor, Action, Command, Config, Destination, Input, Learner, Message, NodeId, Proposer,
};
use std::collections::VecDeque;

type Msg = Message<String>;

#[derive(Clone, Copy, Debug, PartialEq)]
enum To {
    Proposer,
    Acceptor(usize),
    Learner(usize),
}

const ACCEPTORS: usize = 3;
const LEARNERS: usize = 2;
const TICKS: usize = 2_000;
/// Acceptors' votes kept below the trim point for catch-up.
const VOTE_HISTORY: u64 = 64;

fn targets(to: Destination, msg: &Msg) -> Vec<To> {
    let acceptors = (0..ACCEPTORS).map(To::Acceptor);
    let learners = (0..LEARNERS).map(To::Learner);
    match (to, msg) {
        (Destination::Acceptors, _)
        | (Destination::Node(_), Message::Prepare { .. } | Message::Accept { .. }) => {
            acceptors.collect()
        }
        (Destination::Learners, _)
        | (Destination::Node(_), Message::CatchUp { .. } | Message::Decided { .. }) => {
            learners.collect()
        }
        (Destination::All, _) => std::iter::once(To::Proposer)
            .chain(acceptors)
            .chain(learners)
            .collect(),
        _ => vec![To::Proposer],
    }
}

#[test]
fn learners_deliver_a_slot_whose_votes_reached_no_learner() {
    run(Config::new(NodeId(1), Vec::new()).retain_slots, 3);
}

/// As the multicast driver runs them: acceptors trim two slots below the
/// commit point (so promises stay small), long before a learner notices the
/// gap, and answer from the votes they keep in memory below the trim point.
#[test]
fn learners_deliver_a_missed_slot_that_acceptors_already_trimmed() {
    run(2, 40);
}

fn run(retain_slots: u64, commands: u64) {
    let members: Vec<NodeId> = (1..=ACCEPTORS as u32).map(NodeId).collect();
    let config = |id| {
        let mut c = Config::new(NodeId(id), members.clone());
        c.retain_slots = retain_slots;
        c
    };
    let mut proposer = Proposer::<String>::new(&config(1)).unwrap();
    let mut acceptors: Vec<Acceptor<String>> = (1..=ACCEPTORS as u32)
        .map(|id| {
            Acceptor::new(&config(id))
                .unwrap()
                .notify_learners(true)
                .vote_history(VOTE_HISTORY)
        })
        .collect();
    let mut learners: Vec<Learner<String>> = (1..=LEARNERS as u32)
        .map(|id| Learner::new(&config(10 + id)).unwrap())
        .collect();
    let mut wire: VecDeque<(NodeId, To, Msg)> = VecDeque::new();
    let mut delivered = vec![0u64; LEARNERS];
    let mut proposed = 0u64;
    // The loss: the first round of slot 0's votes reaches no learner.
    let mut votes_to_lose = ACCEPTORS * LEARNERS;
    for _ in 0..TICKS {
        let mut out: Vec<(NodeId, Action<String>)> = Vec::new();
        out.extend(
            proposer
                .step(Input::Tick)
                .into_iter()
                .map(|a| (NodeId(1), a)),
        );
        for (i, l) in learners.iter_mut().enumerate() {
            out.extend(
                l.step(Input::Tick)
                    .into_iter()
                    .map(|a| (NodeId(11 + i as u32), a)),
            );
        }
        if proposer.is_leader() && proposed < commands {
            proposed += 1;
            let cmd = Command {
                client: 7,
                seq: proposed,
                op: format!("v{proposed}"),
            };
            out.extend(
                proposer
                    .step(Input::Propose(cmd))
                    .into_iter()
                    .map(|a| (NodeId(1), a)),
            );
        }
        loop {
            for (from, action) in out.drain(..) {
                match action {
                    Action::Send { to, msg } => {
                        for t in targets(to, &msg) {
                            let lost = votes_to_lose > 0
                                && matches!(
                                    (t, &msg),
                                    (To::Learner(_), Message::Accepted { slot: 0, .. })
                                );
                            if lost {
                                votes_to_lose -= 1;
                            } else {
                                wire.push_back((from, t, msg.clone()));
                            }
                        }
                    }
                    Action::Deliver { .. } => {
                        let i = (from.0 - 11) as usize;
                        delivered[i] += 1;
                    }
                    _ => {}
                }
            }
            let Some((from, to, msg)) = wire.pop_front() else {
                break;
            };
            let input = Input::Receive { from, msg };
            match to {
                To::Proposer => {
                    out.extend(proposer.step(input).into_iter().map(|a| (NodeId(1), a)))
                }
                To::Acceptor(i) => out.extend(
                    acceptors[i]
                        .step(input)
                        .into_iter()
                        .map(|a| (NodeId(1 + i as u32), a)),
                ),
                To::Learner(i) => out.extend(
                    learners[i]
                        .step(input)
                        .into_iter()
                        .map(|a| (NodeId(11 + i as u32), a)),
                ),
            }
        }
    }
    assert_eq!(
        proposed, commands,
        "a leader was elected and took the commands"
    );
    assert_eq!(votes_to_lose, 0, "slot 0's first votes were all lost");
    if retain_slots < commands {
        assert!(
            acceptors.iter().all(|a| a.trimmed_below() > 0),
            "the acceptors trimmed slot 0 from their durable state"
        );
    }
    assert_eq!(
        delivered,
        vec![commands; LEARNERS],
        "every learner delivers every slot"
    );
}
