//! The command line: both argument forms, clear errors, non-zero exit on misuse,
//! and a second process on a log already in use refused at startup.
//! Only the last needs a network (for the first process, which runs); every
//! check happens before a socket is opened.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

const ABCAST: &str = env!("CARGO_BIN_EXE_abcast");
const USUAL: &str = "clients 239.0.0.1 5000\nproposers 239.0.0.1 6000\nacceptors 239.0.0.1 7000\nlearners 239.0.0.1 8000\n";

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("abcast-cli-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn abcast(dir: &PathBuf, args: &[&str]) -> Output {
    Command::new(ABCAST)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_names_both_argument_forms() {
    let d = dir("help");
    let o = abcast(&d, &["--help"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("abcast [OPTIONS] <ROLE> <ID>") && text.contains("<CONFIG> <ROLE> <ID>"));
    for option in [
        "--config",
        "--acceptors",
        "--data-dir",
        "--drop-rate",
        "--key",
        "keygen",
    ] {
        assert!(text.contains(option), "--help does not mention {option}");
    }
}

#[test]
fn misuse_exits_non_zero_with_a_reason() {
    let d = dir("misuse");
    std::fs::write(d.join("paxos.conf"), USUAL).unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&[], "required"),
        (&["learner"], "required"),
        (&["wizard", "1"], "invalid role 'wizard'"),
        (&["learner", "one"], "invalid id 'one'"),
        (&["acceptor", "4"], "acceptor ids are 1 to 3"),
        (
            &["--acceptors", "5", "acceptor", "6"],
            "acceptor ids are 1 to 5",
        ),
        (&["--drop-rate", "1.5", "learner", "1"], "--drop-rate"),
    ];
    for (args, reason) in cases {
        let o = abcast(&d, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(reason), "{args:?}: {}", stderr(&o));
    }
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn keys_are_generated_once_and_bad_key_files_are_refused_before_any_socket() {
    let d = dir("keys");
    std::fs::create_dir_all(d.join("conf")).unwrap();
    let o = abcast(&d, &["keygen", "conf/abcast.key"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let key = std::fs::read_to_string(d.join("conf/abcast.key")).unwrap();
    assert_eq!(key.trim().len(), 64);
    assert!(key.trim().bytes().all(|b| b.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("conf/abcast.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    let o = abcast(&d, &["keygen", "conf/abcast.key"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "an existing key is never replaced"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("conf/abcast.key")).unwrap(),
        key
    );
    std::fs::write(d.join("short.key"), "abcd\n").unwrap();
    // A key line is relative to its configuration file.
    std::fs::write(
        d.join("conf/paxos.conf"),
        format!("{USUAL}key missing.key\n"),
    )
    .unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&["--key", "short.key", "learner", "1"], "64 hex digits"),
        (&["--key", "none.key", "learner", "1"], "none.key"),
        (
            &["--config", "conf/paxos.conf", "learner", "1"],
            "conf/missing.key",
        ),
    ];
    std::fs::write(d.join("paxos.conf"), USUAL).unwrap();
    for (args, reason) in cases {
        let o = abcast(&d, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(reason), "{args:?}: {}", stderr(&o));
    }
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn config_errors_name_the_file_and_line() {
    let d = dir("conf");
    std::fs::write(
        d.join("bad.conf"),
        "# groups\nproposers 239.0.0.1 6000\nacceptors 239.0.0.1\n",
    )
    .unwrap();
    for args in [
        &["bad.conf", "learner", "1"][..],
        &["--config", "bad.conf", "learner", "1"],
    ] {
        let o = abcast(&d, args);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("bad.conf:3:"), "{}", stderr(&o));
    }
    let o = abcast(&d, &["learner", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot read paxos.conf"),
        "{}",
        stderr(&o)
    );
    let o = abcast(&d, &["bad.conf", "--config", "bad.conf", "learner", "1"]);
    assert_eq!(o.status.code(), Some(2), "the file twice is misuse");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_second_process_with_the_same_role_and_id_is_refused_at_startup() {
    common::require_root();
    let _machine = common::exclusive();
    let work = common::WorkDir::new("cli-lock");
    let mut lan = common::Lan::new("lock");
    let (ns1, ns2) = (lan.host("a", 0.0), lan.host("b", 0.0));
    let start = |ns: &str, role: &str, id: &str| {
        common::Proc::spawn(
            ns,
            &work.path,
            &format!("{role} {id}"),
            ABCAST,
            &["-v", "--data-dir", "shared", role, id],
            None,
        )
    };
    let started = |p: &common::Proc, times: usize| {
        let role = p.name.split(' ').next().unwrap_or_default().to_string();
        common::wait_until(Duration::from_secs(20), || {
            p.log().matches(&format!("{role} started")).count() >= times
        })
    };
    let mut first = start(&ns1, "acceptor", "2");
    assert!(started(&first, 1), "{}", first.log());

    // Same role, id and data directory, on another host of the LAN: the
    // log's lock refuses it before it opens a socket or votes.
    let second = Command::new("ip")
        .args(["netns", "exec", &ns2, ABCAST])
        .args(["--data-dir", "shared", "acceptor", "2"])
        .current_dir(&work.path)
        .output()
        .unwrap();
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(err.contains("abcast acceptor 2: error"), "{err}");
    assert!(err.contains("in use by another process"), "{err}");
    assert!(err.contains("shared/acceptor-2.wal.lock"), "{err}");
    assert!(first.running(), "the first acceptor is unaffected");

    // Another id, or another role with the same id, shares the directory.
    let mut others = [start(&ns2, "acceptor", "1"), start(&ns2, "proposer", "2")];
    for p in &others {
        assert!(started(p, 1), "{}", p.log());
    }
    for p in &mut others {
        assert_eq!(p.stop(), Some(0), "{}", p.log());
    }
    // Once the first stops, its log opens again.
    assert_eq!(first.stop(), Some(0), "{}", first.log());
    let mut again = start(&ns2, "acceptor", "2");
    assert!(started(&again, 2), "{}", again.log());
    assert_eq!(again.stop(), Some(0), "{}", again.log());
}
