//! Membership changes: a stop-sign ends a configuration, the next one
//! starts after it with its own members, and nothing acknowledged is lost.

mod common;

use common::Net;
use paxos_core::{Action, Event, Input, NodeId, ReconfigureRefusal, ServerAction};

const ROUNDS: usize = 400;

/// Submits `count` commands of client `client` one at a time through node
/// `via` (the test net moves overdue requests on to the next node).
fn write(net: &mut Net, client: u64, count: u64, via: usize) -> bool {
    for _ in 0..count {
        let seq = *net
            .next_seq
            .entry(client)
            .and_modify(|s| *s += 1)
            .or_insert(1);
        net.submit(client, seq, client * 1_000_000 + seq, via);
        if !net.run_until(ROUNDS, |n| n.all_acked()) {
            return false;
        }
    }
    true
}

fn ids(v: &[u32]) -> Vec<NodeId> {
    v.iter().map(|&i| NodeId(i)).collect()
}

/// Asks the leader for `members`; returns what it answered at once.
fn reconfigure(net: &mut Net, members: &[u32]) -> Vec<ServerAction<common::Log>> {
    let leader = net.leader().expect("a leader");
    let node = net.nodes[leader].as_mut().expect("up");
    let out = node.step(Input::Reconfigure {
        members: ids(members),
    });
    // Hand the sends to the wire as the net would.
    let mut refused = Vec::new();
    for a in &out {
        if let Action::Event(Event::ReconfigureRefused { .. }) = a {
            refused.push(a.clone());
        }
    }
    net.perform_for_test(leader, out);
    refused
}

fn all_in(net: &Net, epoch: u64, members: &[u32]) -> bool {
    net.nodes
        .iter()
        .flatten()
        .all(|s| s.stats().epoch == epoch && s.members() == ids(members))
}

#[test]
fn a_member_is_replaced_by_a_learner_while_clients_write() {
    let mut net = Net::with_spares(3, 1, 7, |_| {});
    assert!(net.run_until(ROUNDS, |n| n.leader().is_some()));
    assert!(write(&mut net, 1, 20, 0));
    assert!(
        !net.nodes[3].as_ref().unwrap().is_member(),
        "a spare starts as a learner"
    );
    assert!(net.run_until(ROUNDS, |n| n.nodes[3]
        .as_ref()
        .is_some_and(|s| s.applied_up_to() >= 20)));
    let refused = reconfigure(&mut net, &[1, 2, 4]);
    assert_eq!(refused, [], "the learner has caught up");
    assert!(net.run_until(ROUNDS, |n| all_in(n, 1, &[1, 2, 4])));
    let epoch1: Vec<bool> = net.nodes.iter().flatten().map(|s| s.is_member()).collect();
    assert_eq!(epoch1, [true, true, false, true]);
    // The new configuration works without the removed node...
    net.crash(2);
    assert!(
        write(&mut net, 2, 20, 0),
        "no progress in the new configuration"
    );
    // ...and with one of its own members down.
    let leader = net.leader().expect("a leader");
    let victim = [0, 1, 3].into_iter().find(|&i| i != leader).unwrap();
    net.crash(victim);
    assert!(
        write(&mut net, 3, 10, leader),
        "no progress with a quorum of 2 of 3"
    );
    net.restart(victim);
    net.restart(2);
    assert!(net.run_until(ROUNDS, |n| {
        let logs = n.logs();
        logs.iter().all(|l| l.len() == logs[0].len())
    }));
    net.check_consistent_log_prefixes();
    net.check_acknowledged_applied();
    let restarted = net.nodes[2].as_ref().unwrap();
    assert!(!restarted.is_member(), "the removed node restarts removed");
}

#[test]
fn changes_are_refused_with_a_reason() {
    let mut net = Net::with_spares(3, 1, 9, |_| {});
    assert!(net.run_until(ROUNDS, |n| n.leader().is_some()));
    assert!(write(&mut net, 1, 5, 0));
    let leader = net.leader().unwrap();
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let out = net.nodes[follower]
        .as_mut()
        .unwrap()
        .step(Input::Reconfigure {
            members: ids(&[1, 2]),
        });
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Event(Event::ReconfigureRefused {
            reason: ReconfigureRefusal::NotLeader { leader: Some(l) }
        }) if *l == net.ids[leader]
    )));
    let reasons = |out: Vec<ServerAction<common::Log>>| -> Vec<ReconfigureRefusal> {
        out.into_iter()
            .filter_map(|a| match a {
                Action::Event(Event::ReconfigureRefused { reason }) => Some(reason),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        reasons(reconfigure(&mut net, &[1, 2, 3])),
        [ReconfigureRefusal::Unchanged]
    );
    assert_eq!(
        reasons(reconfigure(&mut net, &[1, 1, 2])),
        [ReconfigureRefusal::Invalid]
    );
    assert_eq!(
        reasons(reconfigure(&mut net, &[])),
        [ReconfigureRefusal::Invalid]
    );
    // Two strangers that never asked for anything: no majority of the new
    // members is ready.
    assert_eq!(
        reasons(reconfigure(&mut net, &[1, 8, 9])),
        [ReconfigureRefusal::NoQuorum {
            ready: 1,
            needed: 2
        }]
    );
    assert_eq!(reasons(reconfigure(&mut net, &[1, 2])), []);
    assert_eq!(
        reasons(reconfigure(&mut net, &[1, 2, 3])),
        [ReconfigureRefusal::InProgress],
        "one change at a time"
    );
    assert!(net.run_until(ROUNDS, |n| n.nodes[..2]
        .iter()
        .flatten()
        .all(|s| s.members() == ids(&[1, 2]))));
}

/// A server restored into a later configuration never campaigns again in a
/// ballot it used there before its crash: its records of that
/// configuration are replayed, and the rebuilt proposer starts above them.
#[test]
fn a_restored_server_campaigns_above_every_ballot_it_used_in_its_configuration() {
    use paxos_core::Record;
    let mut net = Net::with_spares(3, 1, 11, |_| {});
    assert!(net.run_until(ROUNDS, |n| n.leader().is_some()));
    assert!(write(&mut net, 1, 5, 0));
    assert!(net.run_until(ROUNDS, |n| n.nodes[3]
        .as_ref()
        .is_some_and(|s| s.applied_up_to() >= 5)));
    assert_eq!(reconfigure(&mut net, &[1, 2, 3, 4]), []);
    assert!(net.run_until(ROUNDS, |n| all_in(n, 1, &[1, 2, 3, 4])
        && n.leader()
            .is_some_and(|l| n.nodes[l].as_ref().unwrap().ballot().epoch() == 1)));
    let leader = net.leader().unwrap();
    let used = net.nodes[leader].as_ref().unwrap().ballot();
    net.crash(leader);
    net.restart(leader);
    let restored = net.nodes[leader].as_ref().unwrap();
    assert_eq!(restored.stats().epoch, 1, "restored into its configuration");
    // Alone, it campaigns on its own timer.
    let campaigned = |disk: &[Record<u64>]| {
        disk.iter()
            .filter_map(|r| match r {
                Record::Campaign(b) => Some(*b),
                _ => None,
            })
            .max()
    };
    let before = campaigned(&net.disks[leader]);
    for _ in 0..100 {
        net.step_node(leader, Input::Tick);
    }
    let after = campaigned(&net.disks[leader]).expect("a campaign");
    assert!(
        Some(after) > before && after > used,
        "{after} reuses {used}"
    );
    assert_eq!(after.epoch(), 1);
}
