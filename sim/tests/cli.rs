//! The `paxos-sim` binary: help, clear errors on bad input, a summary line,
//! replay and drawing.

use std::process::Command;

fn sim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_paxos-sim"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_the_subcommands() {
    let (code, out, _) = sim(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("paxos-sim run --help"),
        "says where the run options are: {out}"
    );
    for sub in ["run", "replay", "draw", "replay-node"] {
        assert!(out.contains(sub), "{out}");
    }
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    for (args, expected) in [
        (
            &["run", "--faults", "teleport"][..],
            "unknown fault `teleport`",
        ),
        (&["run", "--nodes", "0"][..], "--nodes must be between"),
        (&["run", "--rate", "drop=7"][..], "between 0 and 1"),
        (
            &["run", "--rate", "nope=0.1"][..],
            "--rate nope=0.1: unknown fault `nope`",
        ),
        (&["replay"][..], "--seed"),
    ] {
        let (code, _, err) = sim(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn run_ends_with_one_summary_line() {
    let (code, out, _) = sim(&["run", "--seeds", "8", "--heal-tick", "60", "--jobs", "1"]);
    assert_eq!(code, 0, "{out}");
    let summary = out.lines().find(|l| l.starts_with("seeds ")).unwrap();
    for field in [
        "seeds 8",
        "steps",
        "messages delivered",
        "messages/s",
        "violations 0",
    ] {
        assert!(summary.contains(field), "{summary}");
    }
    // Then the coverage of the drawn shapes: every seed is servers or roles.
    let coverage = out.lines().last().unwrap();
    let count = |name: &str| -> u64 {
        let rest = coverage.split(&format!("{name} ")).nth(1).unwrap();
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    assert!(coverage.starts_with("coverage:"), "{coverage}");
    assert_eq!(count("servers") + count("roles"), 8, "{coverage}");
}

#[test]
fn a_failing_run_prints_the_invariant_and_a_replay_command_that_reproduces_it() {
    let (code, out, _) = sim(&[
        "run",
        "--seeds",
        "2",
        "--heal-tick",
        "60",
        "--sabotage",
        "send-before-sync",
        "--no-shrink",
    ]);
    assert_eq!(code, 1);
    assert!(
        out.contains("VIOLATION persist-before-send violated at step"),
        "{out}"
    );
    let replay = out
        .lines()
        .find_map(|l| l.strip_prefix("replay: paxos-sim "))
        .expect("a replay command");
    let args: Vec<&str> = replay.split_whitespace().collect();
    let (code, again, _) = sim(&args);
    assert_eq!(code, 1);
    let first = out.lines().find(|l| l.starts_with("VIOLATION")).unwrap();
    assert!(
        again.contains(first),
        "the replay fails the same way:\n{again}"
    );
    // Drawing the same run fails the same way, with the whole text drawn.
    let dir = std::env::temp_dir().join(format!("paxos-sim-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("bad.html");
    let mut draw_args = args.clone();
    draw_args[0] = "draw";
    draw_args.extend(["-o", html.to_str().unwrap()]);
    let (code, drew, _) = sim(&draw_args);
    assert_eq!(code, 1, "draw of a violating run: {drew}");
    let page = std::fs::read_to_string(&html).unwrap();
    let detail = first.trim_start_matches("VIOLATION ");
    assert!(
        page.contains(
            &detail
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        ),
        "the full violation text is on the page"
    );
    assert!(
        !detail.contains("Some(") && !detail.contains("Tagged"),
        "written for humans: {detail}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replay_writes_json_lines_and_draw_writes_html() {
    let dir = std::env::temp_dir().join(format!("paxos-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("run.jsonl");
    let html = dir.join("run.html");
    let (code, out, err) = sim(&[
        "replay",
        "--seed",
        "5",
        "--defaults",
        "--heal-tick",
        "40",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(&json).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(first["kind"].is_string() && first["t"].is_u64());
    let (code, out, err) = sim(&[
        "draw",
        "--seed",
        "5",
        "--defaults",
        "--heal-tick",
        "40",
        "-o",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("node 4"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn leases_past_the_drift_bound_serve_stale_reads_and_the_checker_reports_them() {
    // One seed, found by `run --lease-over-drift --fail-fast`: the leader is
    // cut off while its clock runs five times slow, so it serves reads on
    // a lease its followers no longer honour.
    let args = [
        "replay",
        "--seed",
        "2151",
        "--faults",
        "all",
        "--read-percent",
        "70",
        "--lease-ticks",
        "9",
        "--election-timeout-ticks",
        "10",
        "--no-liveness",
    ];
    let (code, out, _) = sim(&args);
    assert_eq!(code, 0, "within the drift bound the run is clean:\n{out}");
    let over: Vec<&str> = args.iter().copied().chain(["--lease-over-drift"]).collect();
    let (code, out, _) = sim(&over);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("VIOLATION linearizability"), "{out}");
}
