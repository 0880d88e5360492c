//! Issue 17 on the multicast side: `--record` on every role replays to
//! identical actions, a client with no proposer says so and `--deadline`
//! ends it, and the command lines say what they enforce.

mod common;

use common::{exclusive, require_root, wait_until, Lan, Proc, WorkDir};
use std::process::Command;
use std::time::Duration;

const ABCAST: &str = env!("CARGO_BIN_EXE_abcast");
const NOISE: &str = env!("CARGO_BIN_EXE_abcast-noise");

fn all(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn help_documents_what_the_options_enforce() {
    let o = Command::new(ABCAST).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("at most 2800"), "{text}");
    assert!(!text.contains("8000"), "{text}");
    for option in ["--deadline", "--record"] {
        assert!(text.contains(option), "{option}: {text}");
    }
    let dir = tempfile_dir("deadline");
    std::fs::write(dir.join("paxos.conf"), common::PAXOS_CONF).unwrap();
    let o = Command::new(ABCAST)
        .args(["--batch-bytes", "2801", "client", "1"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", all(&o));
    assert!(all(&o).contains("from 1 to 2800"), "{}", all(&o));
    let o = Command::new(ABCAST)
        .args(["--deadline", "0", "client", "1"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", all(&o));
    assert!(all(&o).contains("--deadline"), "{}", all(&o));
    let o = Command::new(ABCAST).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("abcast "));
}

fn tempfile_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("abcast-op-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn abcast_noise_has_help_and_refuses_misuse() {
    let o = Command::new(NOISE).arg("--help").output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage: abcast-noise"));
    let o = Command::new(NOISE).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("abcast-noise "));
    let dir = tempfile_dir("noise");
    let conf = dir.join("paxos.conf");
    std::fs::write(&conf, common::PAXOS_CONF).unwrap();
    let conf = conf.display().to_string();
    for (args, reason) in [
        (vec![conf.as_str(), "--", "-1"], "not from 0 to 3600"),
        (vec![conf.as_str(), "nope"], "not a number of seconds"),
        (vec![conf.as_str()], "required"),
        // The test's own namespace is not one made for a test.
        (vec![conf.as_str(), "0"], "not inside a network namespace"),
    ] {
        let o = Command::new(NOISE).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", all(&o));
        assert!(all(&o).contains(reason), "{args:?}: {}", all(&o));
    }
    // --force runs it here, for zero seconds: nothing is sent.
    let o = Command::new(NOISE)
        .args([conf.as_str(), "0", "--force"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", all(&o));
    assert!(all(&o).contains("sent=0"), "{}", all(&o));
}

#[test]
fn a_client_with_no_proposer_says_so_and_deadline_ends_it() {
    require_root();
    let _machine = exclusive();
    let work = WorkDir::new("op-alone");
    let mut lan = Lan::new("alone");
    let ns = lan.host("c", 0.0);
    let input = work.path.join("values");
    std::fs::write(&input, "a\nb\n").unwrap();
    let mut client = Proc::spawn(
        &ns,
        &work.path,
        "client 1",
        ABCAST,
        &["--deadline", "6", "client", "1"],
        Some(&input),
    );
    let code = client.wait_exit(Duration::from_secs(60)).unwrap();
    let log = client.log();
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("no proposer seems to be running"), "{log}");
    assert!(
        log.contains("giving up: nothing delivered for 6 s"),
        "{log}"
    );
}

#[test]
fn every_role_records_and_replays_to_identical_actions() {
    require_root();
    let _machine = exclusive();
    let work = WorkDir::new("op-record");
    let mut lan = Lan::new("record");
    let names = [
        ("acceptor", 1),
        ("acceptor", 2),
        ("acceptor", 3),
        ("proposer", 1),
        ("learner", 1),
    ];
    let mut procs: Vec<Proc> = names
        .iter()
        .map(|(role, id)| {
            let ns = lan.host(&format!("{role}{id}"), 0.0);
            let rec = format!("{role}-{id}.rec");
            let id = id.to_string();
            Proc::spawn(
                &ns,
                &work.path,
                &format!("{role} {id}"),
                ABCAST,
                &["-v", "--record", &rec, role, &id],
                None,
            )
        })
        .collect();
    let input = work.path.join("values");
    let values: Vec<String> = (0..300).map(|i| format!("v{i}")).collect();
    std::fs::write(&input, values.join("\n") + "\n").unwrap();
    let ns = lan.host("client1", 0.0);
    let mut client = Proc::spawn(
        &ns,
        &work.path,
        "client 1",
        ABCAST,
        &[
            "--record",
            "client-1.rec",
            "--batch-bytes",
            "40",
            "client",
            "1",
        ],
        Some(&input),
    );
    assert_eq!(
        client.wait_exit(Duration::from_secs(90)),
        Ok(Some(0)),
        "{}",
        client.log()
    );
    let learner = procs.last().unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || learner.output_lines().len()
            >= values.len()),
        "{}",
        learner.log()
    );
    for p in &mut procs {
        assert_eq!(p.stop(), Some(0), "{}", p.log());
    }
    let mut files: Vec<String> = names
        .iter()
        .map(|(role, id)| format!("{role}-{id}.rec"))
        .collect();
    files.push("client-1.rec".into());
    for file in files {
        let bytes = std::fs::read(work.path.join(&file)).unwrap();
        let sessions = paxos_multicast::record::replay(&bytes, &mut paxos_record::Quiet)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(sessions.len(), 1, "{file}");
        assert!(
            sessions[0].steps > 0 && sessions[0].torn.is_none(),
            "{file}"
        );
    }
}
