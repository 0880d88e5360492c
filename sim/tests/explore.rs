//! `paxos-sim explore` at bounds small enough for a debug build: the real
//! core roles keep agreement and validity in every state, and a bug planted
//! in the harness is caught with a counterexample.

use paxos_sim::explore::{explore, Bounds, Sabotage, Submit};
use std::process::Command;

fn small() -> Bounds {
    Bounds {
        acceptors: 3,
        proposers: 2,
        learners: 0,
        slots: 2,
        rounds: 1,
        commands: 2,
        submit: Submit::Any,
        ticks: 1,
        ..Bounds::default()
    }
}

/// Two acceptors, two proposers each with its own command, both of which
/// campaign: the two values compete for one slot.
fn contended() -> Bounds {
    Bounds {
        acceptors: 2,
        slots: 1,
        submit: Submit::Own,
        ticks: 2,
        ..small()
    }
}

#[test]
fn the_core_roles_keep_agreement_and_validity_in_every_state() {
    // 3 acceptors, 2 proposers, 2 slots; one tick move, so one campaign,
    // and both commands may go to its proposer.
    let r = explore(&small(), Sabotage::None).expect("valid bounds");
    assert!(r.complete, "{r}");
    assert!(r.violation.is_none(), "{:?}", r.violation);
    assert!(r.states > 10_000, "{r}");
    assert!(r.transitions > r.states, "{r}");
    assert!(r.all_chosen > 0, "no state with both slots chosen: {r}");

    // Both proposers campaign and propose different commands.
    let r = explore(&contended(), Sabotage::None).expect("valid bounds");
    assert!(r.complete, "{r}");
    assert!(r.violation.is_none(), "{:?}", r.violation);
    assert!(r.states > 1_500, "{r}");
    assert!(r.all_chosen > 0, "{r}");
}

#[test]
fn a_proposer_that_ignores_the_votes_in_promises_is_caught() {
    let r = explore(&contended(), Sabotage::BlindPhase1).expect("valid bounds");
    let c = r.violation.expect("the sabotage breaks agreement");
    assert_eq!(c.invariant, "agreement");
    assert!(c.detail.contains("two values in slot 0"), "{}", c.detail);
    assert!(c.steps.len() >= 6, "{:?}", c.steps);
    // The path shows both ballots at work.
    let path = c.steps.join("\n");
    assert!(path.contains("1.1") && path.contains("1.2"), "{path}");
}

#[test]
fn a_learner_that_counts_one_vote_as_a_majority_is_caught() {
    let b = Bounds {
        learners: 1,
        ..contended()
    };
    let r = explore(&b, Sabotage::LonelyVote).expect("valid bounds");
    let c = r.violation.expect("the sabotage breaks agreement");
    assert!(c.detail.contains("learner 1 delivered"), "{}", c.detail);
    assert!(!c.steps.is_empty());
}

#[test]
fn bad_bounds_are_a_clear_error_not_a_panic() {
    let bad = Bounds {
        rounds: 0,
        ..small()
    };
    let err = explore(&bad, Sabotage::None).expect_err("rounds 0 is refused");
    assert!(err.contains("--rounds"), "{err}");

    for (args, expected) in [
        (
            &["explore", "--acceptors", "0"][..],
            "--acceptors must be in",
        ),
        (
            &["explore", "--commands", "31"][..],
            "--commands must be in",
        ),
        (&["explore", "--submit", "nobody"][..], "invalid value"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_paxos-sim"))
            .args(args)
            .output()
            .expect("the binary runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn the_command_prints_its_counts_and_exits_0() {
    let out = Command::new(env!("CARGO_BIN_EXE_paxos-sim"))
        .args(["explore", "--ticks", "1"])
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("bounds: 3 acceptors, 2 proposers"), "{text}");
    assert!(text.contains("violations 0"), "{text}");
    assert!(text.contains("states/s"), "{text}");
}
