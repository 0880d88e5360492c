//! The binaries as a user meets them: help, misuse, the scriptable client,
//! the REPL's transcript, a session that survives a client restart, and a
//! server that refuses a corrupt log with its path and offset.

mod common;

use common::Cluster;
use std::io::Write;
use std::process::{Command, Output, Stdio};

const TIMEOUT_MS: u64 = 200;

fn bin(name: &str) -> Command {
    Command::new(match name {
        "server" => env!("CARGO_BIN_EXE_chatroom-server"),
        "client" => env!("CARGO_BIN_EXE_chatroom-client"),
        "harness" => env!("CARGO_BIN_EXE_harness"),
        "demo" => env!("CARGO_BIN_EXE_chatroom-demo"),
        "bench" => env!("CARGO_BIN_EXE_chatroom-bench"),
        "certs" => env!("CARGO_BIN_EXE_chatroom-certs"),
        other => panic!("no binary {other}"),
    })
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn servers_arg(cluster: &Cluster) -> String {
    cluster
        .client_addrs()
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn every_binary_has_help_and_rejects_misuse_with_status_2() {
    for name in ["server", "client", "harness", "demo", "bench", "certs"] {
        let out = bin(name).arg("--help").output().unwrap();
        assert!(out.status.success(), "{name} --help: {}", text(&out));
        assert!(text(&out).contains("Usage"), "{name} --help");
        let out = bin(name).arg("--no-such-flag").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
    }
    let out = bin("server")
        .args(["-i", "3", "-p", "1", "-c", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("out of range"), "{}", text(&out));
    let out = bin("server")
        .args(["-i", "0", "-p", "1", "-c", "3", "--peers", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--peers lists 1"), "{}", text(&out));
}

#[test]
fn plain_tcp_needs_an_explicit_insecure_on_server_and_client() {
    let out = bin("server")
        .args(["-i", "0", "-p", "1", "-c", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--tls-dir DIR") && text(&out).contains("--insecure"),
        "{}",
        text(&out)
    );
    let out = bin("client").arg("get").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--ca FILE"), "{}", text(&out));
    let missing = tempfile::tempdir().unwrap();
    let out = bin("server")
        .args(["-i", "0", "-p", "1", "-c", "1", "--tls-dir"])
        .arg(missing.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("ca.pem"), "{}", text(&out));
    let out = bin("server")
        .args([
            "-i",
            "0",
            "-p",
            "1",
            "-c",
            "1",
            "--insecure",
            "--tls-dir",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn scripted_puts_are_acknowledged_and_a_fixed_id_survives_a_client_restart() {
    let mut cluster = Cluster::new(3, TIMEOUT_MS);
    cluster.start_all();
    let state = tempfile::tempdir().unwrap();
    let put = |msg: &str| {
        bin("client")
            .args(cluster.client_args())
            .args(["-i", "42", "--state-dir"])
            .arg(state.path())
            .args(["--server", &servers_arg(&cluster), "put", msg])
            .output()
            .unwrap()
    };
    // Two launches with the same id: the second must not reuse sequence
    // number 1 (the replicas would answer it from the first one's cache).
    for msg in ["first launch", "second launch"] {
        let out = put(msg);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("[RESPONSE]: acknowledged"),
            "{}",
            text(&out)
        );
    }
    let out = bin("client")
        .args(cluster.client_args())
        .args(["--server", &servers_arg(&cluster), "get"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"[RESPONSE]: ["first launch", "second launch"]"#
    );
}

#[test]
fn repl_speaks_the_old_dialect_and_exits_cleanly_at_eof() {
    let mut cluster = Cluster::new(1, TIMEOUT_MS);
    cluster.start_all();
    let port = cluster.client_ports[0];
    let mut child = bin("client")
        .args(cluster.client_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let script = format!("get\nconnect {port}\nput hello  there\ng\nc 70000\nbogus\nd\nput x\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = format!(
        "> [ERROR]: not connected to a server\n\
         > [RESPONSE]: connected to server at port {port}\n\
         > [RESPONSE]: successfully sent message\n\
         [RESPONSE]: acknowledged: message #0 committed in slot 0\n\
         > [RESPONSE]: successfully sent GET request\n\
         [RESPONSE]: [\"hello  there\"]\n\
         > [ERROR]: invalid port 70000\n\
         > [ERROR]: could not parse command\n\
         > [RESPONSE]: disconnected from 127.0.0.1:{port}\n\
         > [ERROR]: not connected to a server\n\
         > \n"
    );
    assert_eq!(stdout, expected);
}

#[test]
fn server_refuses_a_corrupt_log_naming_file_and_offset() {
    let mut cluster = Cluster::new(1, TIMEOUT_MS);
    cluster.start_all();
    let rt = common::runtime();
    let mut s = cluster.session(1, paxos_tcp::client::SessionOptions::default());
    for i in 0..5 {
        rt.block_on(s.put(&format!("m{i}"))).unwrap();
    }
    cluster.terminate(0);
    let wal = cluster.data_dir(0).join("wal.log");
    let mut bytes = std::fs::read(&wal).unwrap();
    // Damage the first record after the file header: not the tail.
    let first = paxos_tcp::wal::FILE_HEADER_BYTES;
    let offset = first + paxos_tcp::wal::HEADER_BYTES + 1;
    bytes[offset] ^= 0xff;
    std::fs::write(&wal, &bytes).unwrap();
    let out = cluster.command(0).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains(&wal.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("offset {first}")), "{msg}");
    assert!(
        msg.contains("--rejoin"),
        "it names the safe way back: {msg}"
    );
}

/// `--rejoin` is for a server that lost its data directory: on an intact
/// log it is refused (the log already holds every promise), and so is a
/// cluster too small for a member to rejoin.
#[test]
fn rejoin_is_refused_on_an_intact_log_and_in_a_cluster_of_one() {
    let mut cluster = Cluster::new(3, TIMEOUT_MS);
    cluster.start_all();
    let rt = common::runtime();
    let mut s = cluster.session(1, paxos_tcp::client::SessionOptions::default());
    rt.block_on(s.put("kept")).unwrap();
    cluster.terminate(0);
    let out = cluster.command(0).arg("--rejoin").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("only for a server that lost"),
        "{}",
        text(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    let out = bin("server")
        .args(["-i", "0", "-p", "0", "-c", "1", "--insecure", "--rejoin"])
        .args(["--peers", &cluster.peer_addr(0).to_string()])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("cannot rejoin"), "{}", text(&out));
}
