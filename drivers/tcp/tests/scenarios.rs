//! Runs every scenario under `scenarios/` through the `harness` binary (TLS,
//! with certificates the harness makes), some again on plain TCP with
//! `--insecure`, and checks that the harness fails — cleanly, with a report —
//! on a bad script.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn harness(files: &[PathBuf]) -> Output {
    harness_with(files, &[])
}

fn harness_with(files: &[PathBuf], extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args(["-s", env!("CARGO_BIN_EXE_chatroom-server"), "--free-ports"]);
    cmd.args(extra);
    for f in files {
        cmd.arg("-f").arg(f);
    }
    cmd.output().expect("run the harness")
}

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_scenario_passes_the_harness_checks() {
    let files = scenario_files();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for wanted in [
        "single-node",
        "three-nodes",
        "crash-restart",
        "majority-loss",
        "many-crashes",
        "concurrent-floods",
        "fifty-puts",
        "random-mix",
        "rolling-wipe",
        "replace-every-server",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "scenario {wanted} is missing"
        );
    }
    let out = harness(&files);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = format!("{} passed, 0 failed", files.len());
    assert!(
        out.status.success() && stdout.lines().any(|l| l == summary),
        "harness failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The default (`--reads index`) runs above; the other read methods must
/// pass the same checks: every get sees every put acknowledged before it.
#[test]
fn every_shipped_scenario_passes_with_gets_through_the_log_and_on_leases() {
    let files = scenario_files();
    for reads in ["log", "lease"] {
        let out = harness_with(&files, &["--reads", reads]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let summary = format!("{} passed, 0 failed", files.len());
        assert!(
            out.status.success() && stdout.lines().any(|l| l == summary),
            "harness failed with --reads {reads}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn old_scenarios_still_pass_on_plain_tcp_with_insecure() {
    let files: Vec<PathBuf> = scenario_files()
        .into_iter()
        .filter(|f| {
            let name = f.file_stem().unwrap().to_string_lossy();
            name == "three-nodes" || name == "crash-restart"
        })
        .collect();
    assert_eq!(files.len(), 2);
    let out = harness_with(&files, &["--insecure"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().any(|l| l == "2 passed, 0 failed"),
        "harness failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn files_that_are_not_scenarios_stop_the_harness_before_it_runs_anything() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("not-json.json", "this is not json"),
        ("missing-field.json", r#"[{"type":"Start","id":0}]"#),
        ("empty.json", "[]"),
    ];
    let mut files: Vec<PathBuf> = cases
        .iter()
        .map(|(name, text)| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect();
    files.push(dir.path().join("missing.json"));
    let out = harness(&files);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line 1 column"),
        "parse errors carry a position: {stderr}"
    );
    assert!(stderr.contains("empty.json: not a scenario"), "{stderr}");
    assert!(stderr.contains("has no steps"), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
    assert!(stderr.contains("missing.json"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("PASS"));
    assert!(!stderr.contains("panicked"));
}

#[test]
fn a_scenario_that_breaks_at_run_time_is_reported_as_a_failure_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "put-without-connect.json",
            r#"[{"type":"Start","id":0,"port":1,"count":1},{"type":"Put","id":0,"message":"x"}]"#,
        ),
        (
            "connect-before-start.json",
            r#"[{"type":"Connect","id":3}]"#,
        ),
    ];
    let files: Vec<PathBuf> = cases
        .iter()
        .map(|(name, text)| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect();
    let out = harness(&files);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.lines().any(|l| l == "0 passed, 2 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("connection 0 is not open"), "{stdout}");
    assert!(stdout.contains("never started"), "{stdout}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn without_free_ports_a_taken_port_stops_the_harness_instead_of_testing_a_stranger() {
    // Something (say, servers started by hand) already listens on the
    // scenario's client port: the harness's own server cannot start there.
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.json");
    std::fs::write(
        &file,
        format!(
            r#"[{{"type":"Start","id":0,"port":{port},"count":1}},{{"type":"Connect","id":0}},{{"type":"Put","id":0,"message":"x"}}]"#
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["-s", env!("CARGO_BIN_EXE_chatroom-server"), "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("already in use"), "{stdout}");
    assert!(stdout.contains("--free-ports"), "{stdout}");
    drop(taken);
}
