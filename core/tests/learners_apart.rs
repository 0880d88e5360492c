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
    Acceptor, Action, Command, Config, Input, Learner, Message, NodeId, Process, Proposer, Role,
};
use std::collections::VecDeque;

type Msg = Message<String>;

const ACCEPTORS: usize = 3;
const LEARNERS: usize = 2;
const TICKS: usize = 2_000;
/// Acceptors' votes kept below the trim point for catch-up.
const VOTE_HISTORY: u64 = 64;

/// Every process of the test, by index: proposer 1, acceptors 1..=3 and
/// learners 1..=2. Ids repeat across roles, as on the multicast command line.
fn processes() -> Vec<Process> {
    let ids = |n: usize| (1..=n as u32).map(NodeId);
    std::iter::once(Process::only(Role::Proposer, NodeId(1)))
        .chain(ids(ACCEPTORS).map(|id| Process::only(Role::Acceptor, id)))
        .chain(ids(LEARNERS).map(|id| Process::only(Role::Learner, id)))
        .collect()
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
        c.learners_apart = true;
        c.vote_history_slots = VOTE_HISTORY;
        c
    };
    let procs = processes();
    let mut proposer = Proposer::<String>::new(&config(1)).unwrap();
    let mut acceptors: Vec<Acceptor<String>> = (1..=ACCEPTORS as u32)
        .map(|id| Acceptor::new(&config(id)).unwrap())
        .collect();
    let mut learners: Vec<Learner<String>> = (1..=LEARNERS as u32)
        .map(|id| Learner::new(&config(id)).unwrap())
        .collect();
    // (from, to) as indices into `procs`.
    let mut wire: VecDeque<(usize, usize, Msg)> = VecDeque::new();
    let mut delivered = vec![0u64; LEARNERS];
    let mut proposed = 0u64;
    // The loss: the first round of slot 0's votes reaches no learner.
    let mut votes_to_lose = ACCEPTORS * LEARNERS;
    for _ in 0..TICKS {
        let learner0 = 1 + ACCEPTORS;
        let mut out: Vec<(usize, Action<String>)> = Vec::new();
        out.extend(proposer.step(Input::Tick).into_iter().map(|a| (0, a)));
        for (i, l) in learners.iter_mut().enumerate() {
            out.extend(l.step(Input::Tick).into_iter().map(|a| (learner0 + i, a)));
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
                    .map(|a| (0, a)),
            );
        }
        loop {
            for (from, action) in out.drain(..) {
                match action {
                    Action::Send { to, msg } => {
                        for (t, p) in procs.iter().enumerate() {
                            if t == from || !to.reaches(p) {
                                continue;
                            }
                            let lost = votes_to_lose > 0
                                && p.hosts(Role::Learner)
                                && matches!(msg, Message::Accepted { slot: 0, .. });
                            if lost {
                                votes_to_lose -= 1;
                            } else {
                                wire.push_back((from, t, msg.clone()));
                            }
                        }
                    }
                    Action::Deliver { .. } => delivered[from - learner0] += 1,
                    _ => {}
                }
            }
            let Some((from, to, msg)) = wire.pop_front() else {
                break;
            };
            let input = Input::Receive {
                from: procs[from],
                msg,
            };
            let actions = match to {
                0 => proposer.step(input),
                t if t < learner0 => acceptors[t - 1].step(input),
                t => learners[t - learner0].step(input),
            };
            out.extend(actions.into_iter().map(|a| (to, a)));
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
