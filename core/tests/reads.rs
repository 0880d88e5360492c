//! Read-index: reads served without a log slot, at the leader and at
//! followers, and never by a leader that was deposed.

mod common;

use common::{Net, ReadAnswer};
use paxos_core::ReadRefusal;

const ROUNDS: usize = 2_000;

/// Runs until `writes` commands from one client are acknowledged.
fn write(net: &mut Net, writes: u64) {
    let client = 100;
    for _ in 0..writes {
        let seq = *net
            .next_seq
            .entry(client)
            .and_modify(|s| *s += 1)
            .or_insert(1);
        let via = net.leader().unwrap_or(0);
        net.submit(client, seq, 7_000 + seq, via);
        assert!(
            net.run_until(ROUNDS, |n| n.all_acked()),
            "write {seq} acknowledged"
        );
    }
}

fn answer(net: &Net, client: u64, id: u64) -> Option<ReadAnswer> {
    net.reads.get(&(client, id)).cloned()
}

#[test]
fn leader_and_followers_serve_reads_that_see_every_acknowledged_write() {
    let mut net = Net::new(3, 5);
    assert!(net.run_until(ROUNDS, |n| n.leader().is_some()));
    write(&mut net, 5);
    let acked = net.acked.len();
    let leader = net.leader().expect("a leader");
    let log_len_before = net.nodes[leader].as_ref().unwrap().stats().applied_slots;
    for (id, via) in (0..3).enumerate() {
        net.read(1, id as u64, via);
    }
    assert!(net.run_until(ROUNDS, |n| n.reads.len() == 3));
    for id in 0..3 {
        match answer(&net, 1, id) {
            Some(ReadAnswer::Served { len, slot, node }) => {
                assert!(
                    len >= acked,
                    "read {id} at node {node} saw {len} of {acked} writes"
                );
                assert!(slot > 0);
            }
            other => panic!("read {id} was not served: {other:?}"),
        }
    }
    // No slot was spent on the reads.
    let leader_node = net.nodes[leader].as_ref().unwrap();
    assert_eq!(leader_node.stats().applied_slots, log_len_before);
    assert_eq!(leader_node.stats().reads_served, 1);
}

#[test]
fn a_deposed_leader_never_serves_a_stale_read() {
    let mut net = Net::new(3, 9);
    assert!(net.run_until(ROUNDS, |n| n.leader().is_some()));
    write(&mut net, 3);
    let old = net.leader().expect("a leader");
    // Cut the leader off. It still believes it leads (for up to two
    // election timeouts), but cannot confirm it: a read it takes now
    // stays unanswered, then is refused.
    net.isolated.insert(net.ids[old]);
    net.read(2, 9, old);
    for _ in 0..5 {
        net.round(10_000);
    }
    assert!(net.nodes[old].as_ref().unwrap().is_leader());
    assert_eq!(answer(&net, 2, 9), None, "served without confirmation");
    // The other two elect a new leader and take writes.
    assert!(net.run_until(ROUNDS, |n| n
        .leader()
        .is_some_and(|l| l != old && n.nodes[l].as_ref().unwrap().is_leader())));
    let new = (0..3)
        .find(|&i| i != old && net.nodes[i].as_ref().unwrap().is_leader())
        .expect("a new leader");
    let client = 100;
    let seq = *net
        .next_seq
        .entry(client)
        .and_modify(|s| *s += 1)
        .or_insert(1);
    net.submit(client, seq, 9_999, new);
    assert!(net.run_until(ROUNDS, |n| n.all_acked()));
    let acked = net.acked.len();
    // The old leader may still believe it leads, but it cannot confirm it:
    // its read must not be served with the old state.
    net.read(2, 0, old);
    assert!(net.run_until(ROUNDS, |n| n.reads.contains_key(&(2, 0))));
    for id in [0, 9] {
        assert!(matches!(answer(&net, 2, id), Some(ReadAnswer::Refused(_))));
    }
    match answer(&net, 2, 0) {
        Some(ReadAnswer::Refused(ReadRefusal::NotLeader { .. } | ReadRefusal::TimedOut)) => {}
        other => panic!("the deposed leader answered {other:?}"),
    }
    // The new leader serves the write.
    net.read(2, 1, new);
    assert!(net.run_until(ROUNDS, |n| n.reads.contains_key(&(2, 1))));
    match answer(&net, 2, 1) {
        Some(ReadAnswer::Served { len, .. }) => assert!(len >= acked),
        other => panic!("the new leader did not serve: {other:?}"),
    }
}

#[test]
fn a_query_that_needs_a_write_is_refused_as_not_read_only() {
    let mut net = Net::new(3, 2);
    assert!(net.run_until(ROUNDS, |n| n.leader().is_some()));
    let leader = net.leader().unwrap();
    net.step_node(
        leader,
        paxos_core::Input::Read {
            client: 3,
            id: 0,
            query: 42,
        },
    );
    assert_eq!(
        answer(&net, 3, 0),
        Some(ReadAnswer::Refused(ReadRefusal::NotReadOnly))
    );
}

#[test]
fn one_heartbeat_round_confirms_every_read_waiting_for_it() {
    let mut net = Net::new(5, 4);
    assert!(net.run_until(ROUNDS, |n| n.leader().is_some()));
    write(&mut net, 2);
    let leader = net.leader().unwrap();
    let heartbeats_before = net.delivered_kinds.get("heartbeat").copied().unwrap_or(0);
    for id in 0..50 {
        net.read(4, id, leader);
    }
    assert!(net.run_until(ROUNDS, |n| n.reads.len() == 50));
    assert!(net
        .reads
        .values()
        .all(|a| matches!(a, ReadAnswer::Served { .. })));
    let heartbeats = net.delivered_kinds.get("heartbeat").copied().unwrap_or(0) - heartbeats_before;
    // 50 reads, at most a few rounds of 4 heartbeats each (one round plus
    // whatever the heartbeat timer sent meanwhile), not 50 rounds.
    assert!(heartbeats < 50, "{heartbeats} heartbeats for 50 reads");
}

fn leased(seed: u64) -> Net {
    Net::with_config(3, seed, |c| {
        c.lease_ticks = 8;
        c.clock_drift_percent = 5;
    })
}

#[test]
fn a_leader_with_a_lease_serves_reads_at_once_without_a_message_round() {
    let mut net = leased(5);
    assert!(net.run_until(ROUNDS, |n| n.leader().is_some()));
    write(&mut net, 3);
    let acked = net.acked.len();
    // A few heartbeat rounds: a quorum acknowledged a recent one.
    for _ in 0..3 {
        net.round(10_000);
    }
    let leader = net.leader().unwrap();
    net.read(1, 0, leader);
    // Served within the step that took it: no message round.
    match answer(&net, 1, 0) {
        Some(ReadAnswer::Served { len, .. }) => assert!(len >= acked),
        other => panic!("not served on the lease: {other:?}"),
    }
    assert_eq!(net.nodes[leader].as_ref().unwrap().stats().lease_reads, 1);
}

#[test]
fn a_cut_off_leader_stops_serving_on_its_lease_before_anyone_can_replace_it() {
    let mut net = leased(7);
    assert!(net.run_until(ROUNDS, |n| n.leader().is_some()));
    write(&mut net, 2);
    for _ in 0..3 {
        net.round(10_000);
    }
    let old = net.leader().unwrap();
    net.isolated.insert(net.ids[old]);
    // While the lease may hold, the others refuse every candidate; once it
    // has surely ended, the leader no longer serves on it.
    let config = paxos_core::Config {
        lease_ticks: 8,
        clock_drift_percent: 5,
        ..paxos_core::Config::new(net.ids[0], net.ids.clone())
    };
    for _ in 0..config.leader_lease_ticks() + 1 {
        net.round(10_000);
    }
    net.read(3, 0, old);
    assert_eq!(answer(&net, 3, 0), None, "served on an expired lease");
    assert!((0..3).all(|i| i == old || !net.nodes[i].as_ref().unwrap().is_leader()));
}

#[test]
fn a_server_refuses_candidates_while_a_lease_it_granted_holds() {
    let mut net = leased(3);
    assert!(net.run_until(ROUNDS, |n| n.leader().is_some()));
    for _ in 0..3 {
        net.round(10_000);
    }
    let leader = net.leader().unwrap();
    let follower = (leader + 1) % 3;
    let candidate = (leader + 2) % 3;
    // A candidate's Prepare reaches a follower that just acknowledged the
    // leader's heartbeat: refused, and counted.
    let rival = paxos_core::Ballot::new(1_000, net.ids[candidate]);
    let refusals_before = net.nodes[follower].as_ref().unwrap().stats().lease_refusals;
    net.step_node(
        follower,
        paxos_core::Input::Receive {
            from: paxos_core::Process::server(net.ids[candidate]),
            msg: paxos_core::Message::Prepare {
                ballot: rival,
                from_slot: 0,
            },
        },
    );
    let f = net.nodes[follower].as_ref().unwrap();
    assert_eq!(f.stats().lease_refusals, refusals_before + 1);
    assert!(f.inspect().acceptor().promised() < rival);
}
