//! `paxos-sim replay-node`: a recording replays to identical actions (exit
//! 0) and draws; one whose machine behaves otherwise is reported at the
//! first step that differs (exit 1); anything else is bad input (exit 2).

use paxos_core::{Action, Ballot, Command, Config, Input, NodeId, Proposer, Record};
use paxos_record::{BootRef, Kind, Meta, Recorder};
use std::path::Path;
use std::process::Command as Process;

/// Records a proposer (as `abcast proposer 1 --record` would) whose
/// recorded seed is `recorded_seed` but whose steps came from `run_seed`.
fn record(path: &Path, recorded_seed: u64, run_seed: u64) {
    let config =
        |seed| Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]).with_seed(seed);
    let records = vec![Record::Campaign(Ballot::new(1, NodeId(1)))];
    let recorded = config(recorded_seed);
    let boot = BootRef::<String, ()> {
        config: &recorded,
        snapshot: None,
        records: &records,
        client: None,
    };
    let mut rec = Recorder::start(path, &Meta::now(Kind::AbcastProposer, 1), &boot).unwrap();
    let mut p = Proposer::<String>::recover(&config(run_seed), records.clone()).unwrap();
    let mut out: Vec<Action<String>> = Vec::new();
    let mut inputs: Vec<Input<String>> = (0..60).map(|_| Input::Tick).collect();
    inputs.push(Input::Propose(Command {
        client: 9,
        seq: 1,
        op: "v".into(),
    }));
    for input in inputs {
        rec.input(&input);
        out.clear();
        p.step_into(input, &mut out);
        rec.actions(&out);
        rec.flush().unwrap();
    }
}

fn sim(args: &[&str]) -> (i32, String) {
    let out = Process::new(env!("CARGO_BIN_EXE_paxos-sim"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_faithful_recording_replays_identically_and_draws() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.rec");
    record(&file, 4, 4);
    record(&file, 5, 5); // a restart appends a second session
    let html = dir.path().join("p.html");
    let (code, out) = sim(&[
        "replay-node",
        file.to_str().unwrap(),
        "--draw",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("abcast proposer 1: 2 sessions, 122 steps replayed to identical actions"),
        "{out}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("class=\"arrow\""),
        "the campaign's messages are drawn"
    );
}

#[test]
fn a_recording_the_core_does_not_reproduce_is_reported_at_the_first_different_step() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.rec");
    // The machine that ran had another seed than the one recorded: its
    // election timeout fires at another tick.
    record(&file, 4, 1234);
    let (code, out) = sim(&["replay-node", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("DIFFERENT session 0 step"), "{out}");
    assert!(out.contains("input: Tick"), "{out}");
}

#[test]
fn other_files_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x");
    std::fs::write(&file, "hello").unwrap();
    let (code, out) = sim(&["replay-node", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not a flight recording"), "{out}");
    let (code, out) = sim(&["replay-node", "/no/such/file"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("cannot read /no/such/file"), "{out}");
}
