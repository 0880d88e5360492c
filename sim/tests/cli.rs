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
    // One seed, found by `run --seeds 5000 --faults all --read-percent 70
    // --lease-ticks 9 --election-timeout-ticks 10 --no-liveness
    // --lease-over-drift --fail-fast`: a leader whose clock runs slow serves
    // reads on a lease its followers no longer honour. Any change to the
    // core's schedules may move it (817 before the catch-up bursts, 1047
    // before the spare servers of the `reconfig` fault, 1192 before drawn
    // heartbeats were kept to half the election timeout); that command,
    // with `--first-seed` past the last one, finds the next.
    let args = [
        "replay",
        "--seed",
        "7726",
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

/// Three seeds of the sweep in which the constrained-election scenario cut
/// off a leader whose two followers both lagged far behind it, with
/// `--catchup-chunk 1`: the new leader must apply what it re-proposes
/// although it lies past its learner's window, and two lagging learners
/// that reach only each other must count their own acceptors' votes.
#[test]
fn constrained_elections_of_lagging_followers_regain_service() {
    for args in [
        "--seed 34205 --defaults --nodes 3 --clients 5 --heal-tick 313 --rate drop=0.019734427181921695 --rate dup=0.02079631996685868 --rate reorder=0.050050185368163636 --rate partition=0.004364369206558964 --rate oneway=0.01001881746920009 --rate crash=0.0067821797245347995 --rate slow=0.004738295440783539 --rate skew=0.15319707165922034 --rate isolate=0.001670458292713488 --rate storm=0.0029730644776845318 --rate pause=0.0018541651212867793 --rate disk=0.37734237618682953 --rate burst=0.004259478634141387 --rate restart=0.0009404452350923895 --rate quorum-loss=0.15007455906408948 --rate constrained=1 --rate chained=0.17372289248031947 --catchup-ticks 7 --snapshot-resend-ticks 27 --pipeline-window 2 --batch-max 1 --pending-max 4 --catchup-chunk 1",
        "--seed 81876 --defaults --nodes 3 --clients 7 --heal-tick 155 --rate drop=0.10182994629409975 --rate dup=0.01548406739538605 --rate reorder=0.057500436505878764 --rate partition=0.003246465338498853 --rate oneway=0.014383337815772184 --rate crash=0.01635949342825203 --rate slow=0.006690363369826694 --rate skew=0.15585494062719105 --rate isolate=0.0031389050789806926 --rate storm=0.0010122185330201146 --rate pause=0.0014663004505099178 --rate disk=0.37431451598046783 --rate burst=0.002996139452563231 --rate restart=0.0005303819931997625 --rate quorum-loss=0.12396476786573266 --rate constrained=1 --rate chained=0.7103122605263928 --retransmit-ticks 1 --catchup-ticks 9 --snapshot-resend-ticks 13 --pipeline-window 1 --batch-max 15 --catchup-chunk 1",
        "--seed 175448 --defaults --nodes 3 --clients 8 --heal-tick 350 --rate drop=0.023683749866108692 --rate dup=0.008962513795491048 --rate reorder=0.0316691948202474 --rate partition=0.012416023203739817 --rate oneway=0.004011047393952418 --rate crash=0.0201774166264154 --rate slow=0.0057515598997612055 --rate skew=0.19205447448453994 --rate isolate=0.001067755713376436 --rate storm=0.008724652323001595 --rate pause=0.0010167766252701192 --rate disk=0.21589998893697207 --rate burst=0.001263672757384079 --rate restart=0.002048720257172204 --rate quorum-loss=0.2582674117571072 --rate constrained=0.3541156126217626 --rate chained=0.28853768936607016 --heartbeat-ticks 5 --retransmit-ticks 1 --snapshot-resend-ticks 4 --pipeline-window 21 --batch-max 1 --catchup-chunk 1",
    ] {
        replays_clean(args);
    }
}

/// Seed 95013 of the 100 000-seed sweep: a node was paused one tick before
/// heal for 37 ticks, and the election-health check counted its campaign
/// from heal, not from when the pause let it work again, so a healthy run
/// was reported as "the last 8.5 election timeouts in". The check now
/// counts from the moment every node is at work.
#[test]
fn elections_after_heal_are_timed_from_when_the_last_pause_ends() {
    let args = "--seed 95013 --defaults --clients 5 --heal-tick 216 --rate drop=0.04153301391361039 --rate dup=0.04602093351240361 --rate reorder=0.18763082803734574 --rate partition=0.0031706187657690355 --rate oneway=0.00900706709254543 --rate crash=0.007809280978376234 --rate slow=0.012841949917498954 --rate skew=0.361477321629894 --rate isolate=0.014618570699222214 --rate storm=0.0011097331404265217 --rate pause=0.010702230422339523 --rate disk=1 --rate burst=0.0009632342460030557 --rate restart=0.0011458577586059534 --rate quorum-loss=0.17438319496336652 --rate constrained=0.6863124605421599 --rate chained=0.4357594612301837 --rate transfer=0.0015398696402958306 --read-percent 70 --heartbeat-ticks 1 --election-timeout-ticks 5 --snapshot-resend-ticks 16 --lease-ticks 2 --clock-drift-percent 20";
    replays_clean(args);
}

/// Seed 28913 of the 100 000-seed sweep with wipes: a follower campaigned
/// just as a leader won, its own acceptor refused the leader's next accept,
/// and the leader stepped down while the other followers still refused
/// every rival for it: four nodes then duelled (9 campaigns after heal).
/// A leader that keeps a quorum without the refusing node now campaigns
/// again above the rival instead.
#[test]
fn a_rival_that_campaigns_just_as_a_leader_wins_does_not_depose_it() {
    let args = "--seed 28913 --defaults --clients 5 --heal-tick 380 --rate drop=0.03670009627381122 --rate dup=0.028242815792305087 --rate reorder=0.2784188201911257 --rate partition=0.002524125622983971 --rate oneway=0.009530491885721488 --rate crash=0.00240613470104642 --rate slow=0.014335499182552166 --rate skew=0.44793309455821184 --rate isolate=0.003118739813020892 --rate storm=0.004968808215703738 --rate pause=0.0016940184418800575 --rate disk=0.3470927039576725 --rate burst=0.0033207081600354423 --rate restart=0.0018524172706611203 --rate quorum-loss=0.11749739467116951 --rate constrained=0.10264331055723246 --rate chained=0.889190947395212 --rate transfer=0.0011719169484249211 --rate wipe=0.008929894735283578 --election-timeout-ticks 5 --retransmit-ticks 8 --snapshot-resend-ticks 4 --catchup-chunk 1";
    replays_clean(args);
}

/// Seeds the sweep found once a leader stopped stepping down for one
/// rival's refusal (the cluster resumed sooner, and lagging followers had
/// less time to catch up): 33151 and 88808, a client that retried only at
/// followers that had skipped over its command by installing a snapshot,
/// and so never answered it; 78293, three followers 230 slots behind with
/// `catchup_chunk` 1 that caught up one slot per round trip.
#[test]
fn clients_of_lagging_followers_are_answered_within_the_liveness_bound() {
    for args in [
        "--seed 33151 --defaults --clients 6 --heal-tick 161 --rate drop=0.016217318576626925 --rate dup=0.017161251042520607 --rate reorder=0.051576109643771684 --rate partition=0.026897977536806464 --rate oneway=0.012217803520546947 --rate crash=0.004870386380895158 --rate slow=0.009742535266991424 --rate skew=0.18870064498385855 --rate isolate=0.008884395803371031 --rate storm=0.01057745557628955 --rate pause=0.0019766899349490438 --rate disk=0.1443096568074145 --rate burst=0.008304493649135672 --rate restart=0.0005955251140274622 --rate quorum-loss=0.24807667732572214 --rate constrained=0.6180101795613047 --rate chained=1 --rate transfer=0.005280495504289368 --rate wipe=0.002258181346807365 --heartbeat-ticks 1 --election-timeout-ticks 5 --catchup-ticks 9 --pipeline-window 1 --pending-max 2 --catchup-chunk 7 --retain-slots 7",
        "--seed 88808 --defaults --clients 8 --rate drop=0.06244249757660432 --rate dup=0.004029666128778168 --rate reorder=0.05107076595726887 --rate partition=0.004365291454306538 --rate oneway=0.0030189242749261336 --rate crash=0.006891851651318005 --rate slow=0.007129990982735954 --rate skew=0.389835894324994 --rate isolate=0.001361259270036312 --rate storm=0.007083037258726526 --rate pause=0.004238045743361047 --rate disk=0.10604303789761645 --rate burst=0.007225046665301532 --rate restart=0.003867602619849623 --rate quorum-loss=0.13806512605024224 --rate constrained=0.10965342156720796 --rate chained=0.7072559692954593 --rate transfer=0.004064587411482272 --rate wipe=0.0010468052342666745 --election-timeout-ticks 5 --retransmit-ticks 5 --catchup-ticks 2 --snapshot-resend-ticks 1 --pipeline-window 36 --batch-max 3 --catchup-chunk 1",
        "--seed 78293 --defaults --nodes 7 --clients 5 --heal-tick 154 --rate drop=0.06618938347995557 --rate dup=0.029564769296637063 --rate reorder=0.28420328062510275 --rate partition=0.0036668422386937896 --rate oneway=0.02227035324950279 --rate crash=0.01228369012614009 --rate slow=0.0031811561282607073 --rate skew=0.5566706874977427 --rate isolate=0.002545926213723152 --rate storm=0.002694415634959009 --rate pause=0.01452672031904911 --rate disk=0.11460579396306078 --rate burst=0.0017449237610600138 --rate restart=0.000645183776584627 --rate quorum-loss=0.4654950862993193 --rate constrained=0.6907309330315005 --rate chained=0.18889980467954148 --rate transfer=0.007233576822413639 --rate wipe=0.0020096899621786105 --heartbeat-ticks 6 --election-timeout-ticks 7 --retransmit-ticks 2 --catchup-ticks 1 --snapshot-resend-ticks 1 --pipeline-window 1 --catchup-chunk 1",
    ] {
        replays_clean(args);
    }
}

/// Seed 4719 (roles apart, `catchup_chunk` 1): once catch-up asked for
/// several chunks at once, a learner settled a slot from a majority's
/// answers while the slot before it was still missing, and a late answer
/// holding an older vote settled it again with that vote's value: two
/// values delivered in one slot. A settled slot now stays settled.
#[test]
fn a_late_catch_up_answer_never_changes_a_settled_slot() {
    let args = "--seed 4719 --defaults --clients 8 --heal-tick 264 --rate drop=0.09946635570481993 --rate dup=0.02317215403369859 --rate reorder=0.022460691195270707 --rate partition=0.002131218792180793 --rate oneway=0.013513961416090141 --rate crash=0.019412234138878506 --rate slow=0.002291605885062468 --rate skew=0.15194685805271063 --rate isolate=0.003166694928434279 --rate storm=0.01457885284886717 --rate pause=0.007673991505821628 --rate disk=0.5350932438330764 --rate burst=0.0007295312393666982 --rate restart=0.003005884657406932 --rate quorum-loss=0.21271998389817798 --rate constrained=0.1246354588521986 --rate chained=0.23748503698679876 --rate transfer=0.002917761099334458 --rate wipe=0.007911283708236776 --layout roles --proposers 2 --learners 2 --heartbeat-ticks 4 --election-timeout-ticks 6 --retransmit-ticks 5 --catchup-ticks 2 --snapshot-resend-ticks 2 --pipeline-window 2 --batch-max 11 --catchup-chunk 1 --retain-slots 11 --retain-commands 6 --vote-history-slots 7621";
    replays_clean(args);
}

/// The plain sweep exercises the leader that outbids a rival (a leader
/// refused by one rival's acceptor campaigns again above it), and the
/// summary line counts it.
#[test]
fn the_plain_sweep_counts_leaders_that_outbid_a_rival() {
    let (code, out, err) = sim(&["run", "--seeds", "100", "--faults", "all", "--no-shrink"]);
    assert_eq!(code, 0, "{out}{err}");
    let n: u64 = out
        .split("leaders that outbid a rival ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in: {out}"));
    assert!(n > 0, "{out}");
}

/// `paxos-sim replay ARGS` runs to the end and reports no violation.
fn replays_clean(args: &str) {
    let mut argv = vec!["replay"];
    argv.extend(args.split_whitespace());
    let (code, out, err) = sim(&argv);
    assert_eq!(code, 0, "{args}\n{out}{err}");
    assert!(out.contains("violations 0"), "{args}\n{out}");
}

/// The counts of a summary clause `NAME N (M ..., slowest T ticks)`: how
/// many, how many were done, and the slowest in ticks.
fn counted(summary: &str, name: &str) -> (u64, u64, f64) {
    let clause = summary
        .split(&format!("{name} "))
        .nth(1)
        .unwrap_or_else(|| panic!("no {name} reported: {summary}"));
    let number = |s: &str| {
        s.trim_matches(|c: char| !c.is_ascii_digit() && c != '.')
            .to_string()
    };
    let words: Vec<&str> = clause.split_whitespace().collect();
    let slowest = clause
        .split("slowest ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no slowest in: {clause}"));
    (
        number(words[0]).parse().unwrap(),
        number(words[1]).parse().unwrap(),
        number(slowest).parse().unwrap(),
    )
}

/// The leader-transfer clause: started, led by the node named, slowest.
fn transfers(summary: &str) -> (u64, u64, f64) {
    counted(summary, "leader transfers")
}

/// Planned leader transfers on a healthy network, with leases on and off:
/// every one ends with the named node leading, within one heartbeat round
/// (two ticks by default), neither waiting for an election timeout nor for
/// the old leader's lease to run out.
#[test]
fn every_leader_transfer_on_a_healthy_network_completes_within_a_heartbeat_round() {
    for extra in [&[][..], &["--lease-ticks", "8", "--read-percent", "30"][..]] {
        let mut argv = vec![
            "run",
            "--seeds",
            "100",
            "--defaults",
            "--faults",
            "transfer",
        ];
        argv.extend_from_slice(extra);
        let (code, out, err) = sim(&argv);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("violations 0"), "{out}");
        let (started, led, slowest) = transfers(&out);
        assert!(started >= 50, "too few transfers to judge: {out}");
        assert_eq!(led, started, "a transfer did not complete: {out}");
        assert!(slowest <= 2.0, "a transfer took {slowest} ticks: {out}");
    }
}

/// A leader hands off and is then cut off before it hears of its
/// successor, with leases on and half the operations reads: it must stop
/// serving reads on its lease when it hands off, or a stale read shows.
/// (Letting it go on serving them was caught here in 817 seeds.)
#[test]
fn a_leader_that_handed_off_and_was_cut_off_serves_no_stale_read() {
    let argv = [
        "run",
        "--seeds",
        "300",
        "--defaults",
        "--faults",
        "transfer,isolate,drop",
        "--lease-ticks",
        "8",
        "--read-percent",
        "50",
        "--no-shrink",
    ];
    let (code, out, err) = sim(&argv);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("violations 0"), "{out}");
    let (started, _, _) = transfers(&out);
    assert!(started >= 100, "too few transfers to judge: {out}");
}

/// Servers lose their disks, one at a time, among crashes, losses and
/// partitions: every one rejoins (and votes again) by the liveness
/// deadline, and nothing it forgot breaks agreement or linearizability.
#[test]
fn every_server_that_lost_its_disk_rejoins_and_the_runs_stay_safe() {
    let argv = [
        "run",
        "--seeds",
        "300",
        "--defaults",
        "--faults",
        "wipe,crash,drop,partition,reorder",
        "--rate",
        "wipe=0.03",
        "--read-percent",
        "30",
        "--no-shrink",
    ];
    let (code, out, err) = sim(&argv);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("violations 0"), "{out}");
    let (lost, rejoined, _) = counted(&out, "disks lost");
    assert!(lost >= 300, "too few wipes to judge: {out}");
    assert_eq!(rejoined, lost, "{out}");
}

/// The reconfiguration clause: stop-signs chosen, changes asked, and the
/// slowest time from a stop-sign to its configuration's first leader.
fn reconfigurations(summary: &str) -> (u64, u64, f64) {
    let clause = summary
        .split("reconfigurations ")
        .nth(1)
        .unwrap_or_else(|| panic!("no reconfigurations reported: {summary}"));
    let words: Vec<&str> = clause.split_whitespace().collect();
    let slowest = clause
        .split("slowest new leader ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no slowest in: {clause}"));
    (
        words[0].parse().unwrap(),
        words[2].parse().unwrap(),
        slowest.parse().unwrap(),
    )
}

/// Rule 10: the plain sweep's random configurations change members (the
/// `reconfig` fault is in `--faults all`) and the run reports it.
#[test]
fn the_plain_sweep_reconfigures_and_reports_it() {
    let (code, out, err) = sim(&["run", "--seeds", "200", "--faults", "all", "--no-shrink"]);
    assert_eq!(code, 0, "{out}{err}");
    let (done, asked, _) = reconfigurations(&out);
    assert!(done > 0 && asked >= done, "{out}");
}

/// On a healthy network every membership change is followed by a leader
/// of the new configuration within two election timeouts (10 ticks each
/// with --defaults): the leader that sealed the old configuration, or the
/// lowest new member, campaigns the moment it applies the stop-sign.
#[test]
fn every_change_on_a_healthy_network_has_a_new_leader_within_two_election_timeouts() {
    let (code, out, err) = sim(&[
        "run",
        "--seeds",
        "300",
        "--defaults",
        "--faults",
        "reconfig",
        "--rate",
        "reconfig=0.05",
        "--no-shrink",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (done, _, slowest) = reconfigurations(&out);
    assert!(done >= 300, "several changes per run: {out}");
    assert!(slowest <= 20.0, "{out}");
}
