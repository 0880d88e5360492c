//! The command line: both argument forms, clear errors, non-zero exit on misuse.
//! These need no network: every check happens before a socket is opened.

use std::path::PathBuf;
use std::process::{Command, Output};

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
    for option in ["--config", "--acceptors", "--data-dir", "--drop-rate"] {
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
