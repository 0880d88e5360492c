//! What a new user meets (issue 17): the demo ends at once on a signal with
//! stdin open, tells a lost quorum early and stays responsive meanwhile,
//! host names work, misuse exits 2 with a reason, and a restarted follower
//! knows its leader at once.

mod common;

use common::{runtime, Cluster};
use paxos_tcp::client::{Session, SessionOptions};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(40);

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A first port such that it and the next `n - 1` are free.
fn free_run(n: u16) -> u16 {
    for _ in 0..200 {
        let base = common::free_port();
        if base < 60_000 && (0..n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no {n} consecutive free ports");
}

/// A running `chatroom-demo` with its stdin open and its stdout collected.
struct Demo {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Demo {
    fn start() -> Demo {
        let (port, peer_port) = (free_run(3), free_run(3));
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatroom-demo"))
            .args([
                "--port",
                &port.to_string(),
                "--peer-port",
                &peer_port.to_string(),
            ])
            .args(["-t", "200"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let demo = Demo { child, out };
        demo.wait_for("chat room up");
        demo
    }

    fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Polls the output until it holds `what` (bounded).
    fn wait_for(&self, what: &str) -> usize {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(at) = self.output().find(what) {
                return at;
            }
            assert!(
                Instant::now() < deadline,
                "no {what:?} in the demo's output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits (bounded) for the process to exit; stdin stays open.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the demo is still running:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_demo_ends_at_once_on_sigterm_or_sigint_with_stdin_open() {
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let mut demo = Demo::start();
        demo.send("help");
        demo.wait_for("start <ID>");
        assert!(demo.output().contains("stop <ID>"), "{}", demo.output());
        demo.send("put before the signal");
        demo.wait_for("acknowledged: message #0");
        demo.send("disconnect");
        demo.wait_for("[RESPONSE]: disconnected from 127.0.0.1:");
        let pid = nix::unistd::Pid::from_raw(demo.child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
        // stdin is still open: the demo must not wait for a line.
        let status = demo.wait_exit();
        assert!(status.success(), "{signal}: {status}\n{}", demo.output());
        demo.wait_for("[2] counters:");
    }
}

#[test]
fn the_demo_says_no_quorum_early_and_takes_start_while_a_put_waits() {
    let mut demo = Demo::start();
    demo.send("stop 1");
    demo.wait_for("server 1 stopped");
    demo.send("stop 2");
    demo.wait_for("server 2 stopped");
    demo.send("put waits for a majority");
    demo.wait_for("[NOTICE]: no quorum: only 1 of 3 servers reachable");
    // The prompt still answers while the put is pending.
    demo.send("get");
    demo.wait_for("the last request is still pending");
    demo.send("start 1");
    let started = demo.wait_for("[RESPONSE]: server 1 started");
    let acked = demo.wait_for("acknowledged: message #0");
    assert!(started < acked, "{}", demo.output());
    // End of input ends the demo cleanly.
    drop(demo.child.stdin.take());
    let status = demo.wait_exit();
    assert!(status.success(), "{}", demo.output());
}

#[test]
fn a_put_with_a_majority_down_fails_as_no_quorum_not_as_not_the_leader() {
    let mut cluster = Cluster::new(3, 200);
    cluster.start_all();
    cluster.kill(1);
    cluster.kill(2);
    let servers = cluster
        .client_addrs()
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let out = Command::new(env!("CARGO_BIN_EXE_chatroom-client"))
        .args([
            "--server",
            &servers,
            "--deadline",
            "2000",
            "--timeout",
            "300",
        ])
        .args(cluster.client_args())
        .args(["put", "lost"])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("no quorum: only 1 of 3 servers reachable"),
        "{all}"
    );
    assert!(!all.contains("failed to send message"), "{all}");
}

#[test]
fn host_names_work_for_servers_peers_and_the_repl() {
    let mut cluster = Cluster::new(3, 200);
    // Peers named by host name rather than IP address.
    let peers: Vec<String> = cluster
        .peer_ports
        .iter()
        .map(|p| format!("localhost:{p}"))
        .collect();
    for id in 0..3 {
        let mut cmd = Command::new(common::server_binary());
        cmd.args([
            "-i",
            &id.to_string(),
            "-p",
            &cluster.client_ports[id].to_string(),
        ])
        .args(["-c", "3", "-t", "200", "--peers", &peers.join(",")])
        .arg("--data-dir")
        .arg(cluster.data_dir(id))
        .arg("--tls-dir")
        .arg(&cluster.tls_dirs[id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        cluster.children[id] = Some(cmd.spawn().unwrap());
    }
    for id in 0..3 {
        cluster.wait_ready(id);
    }
    let named: Vec<String> = cluster
        .client_ports
        .iter()
        .map(|p| format!("localhost:{p}"))
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_chatroom-client"))
        .args(cluster.client_args())
        .args(["--server", &named.join(","), "put", "by name"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut repl = Command::new(env!("CARGO_BIN_EXE_chatroom-client"))
        .args(cluster.client_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    repl.stdin
        .take()
        .unwrap()
        .write_all(format!("c {}\nget\nc nosuchhost.invalid:1\n", named[0]).as_bytes())
        .unwrap();
    let out = repl.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("connected to server at {}", named[0])),
        "{stdout}"
    );
    assert!(stdout.contains(r#"["by name"]"#), "{stdout}");
    assert!(
        stdout.contains("[ERROR]: cannot resolve nosuchhost.invalid:1"),
        "{stdout}"
    );
}

#[test]
fn misuse_exits_2_with_a_reason_and_version_names_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let bin = |name: &str| -> Command {
        Command::new(match name {
            "chatroom-server" => env!("CARGO_BIN_EXE_chatroom-server"),
            "chatroom-client" => env!("CARGO_BIN_EXE_chatroom-client"),
            "chatroom-demo" => env!("CARGO_BIN_EXE_chatroom-demo"),
            "chatroom-bench" => env!("CARGO_BIN_EXE_chatroom-bench"),
            _ => env!("CARGO_BIN_EXE_harness"),
        })
    };
    for name in [
        "chatroom-server",
        "chatroom-client",
        "chatroom-demo",
        "chatroom-bench",
        "harness",
    ] {
        let out = bin(name).arg("--version").output().unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with(&format!("{name} ")),
            "{name}: {}",
            text(&out)
        );
    }
    let port = common::free_port().to_string();
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (
            vec!["--port".into(), "65535".into()],
            "chatroom-demo",
            "--port 65535",
        ),
        (
            vec!["--port".into(), "0".into()],
            "chatroom-demo",
            "--port 0",
        ),
        (
            vec!["--clients".into(), "0".into()],
            "chatroom-bench",
            "must be positive",
        ),
        (
            vec![
                "-s".into(),
                env!("CARGO_BIN_EXE_chatroom-server").into(),
                "-f".into(),
                "missing.json".into(),
            ],
            "harness",
            "cannot read missing.json",
        ),
        (
            vec![
                "-i",
                "0",
                "-p",
                &port,
                "-c",
                "1",
                "--insecure",
                "--data-dir",
            ]
            .into_iter()
            .map(String::from)
            .chain([file.display().to_string()])
            .collect(),
            "chatroom-server",
            "is a file, not a directory",
        ),
        (
            ["-i", "0", "-p", "20000", "-c", "1", "--insecure"]
                .map(String::from)
                .to_vec(),
            "chatroom-server",
            "is also this server's peer port",
        ),
        (
            ["--insecure", "--server", "localhost:99999", "get"]
                .map(String::from)
                .to_vec(),
            "chatroom-client",
            "not a port",
        ),
    ];
    for (args, name, reason) in cases {
        let out = bin(name).args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name} {args:?}: {}",
            text(&out)
        );
        assert!(
            text(&out).contains(reason),
            "{name} {args:?}: {}",
            text(&out)
        );
    }
}

#[test]
fn a_server_that_cannot_start_prints_its_error_and_no_counters() {
    let taken = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::server_binary())
        .args(["-i", "0", "-p", &port.to_string(), "-c", "1", "--insecure"])
        .args(["--peers", &format!("127.0.0.1:{}", common::free_port())])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("cannot listen for clients"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("counters"), "{}", text(&out));
}

#[test]
fn port_0_logs_the_port_the_system_chose() {
    let mut cluster = Cluster::new(1, 200);
    cluster.client_ports[0] = 0;
    cluster.extra_args = vec!["-v".into()];
    cluster.spawn(0);
    let deadline = Instant::now() + DEADLINE;
    let line = loop {
        let out = cluster.output(0);
        if let Some(line) = out.lines().find(|l| l.contains("listening: clients on")) {
            break line.to_string();
        }
        assert!(Instant::now() < deadline, "no listening line: {out}");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(!line.contains("clients on 127.0.0.1:0,"), "{line}");
    let port: u16 = line
        .split("clients on 127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert_ne!(port, 0);
}

/// Session options for clients that must get through a restart or a
/// change of leader: one-second attempts, thirty seconds in all.
fn patient() -> SessionOptions {
    SessionOptions {
        attempt_timeout: Duration::from_millis(1000),
        deadline: Duration::from_secs(30),
        retry_pause: Duration::from_millis(20),
    }
}

#[test]
fn a_restarted_follower_knows_the_leader_at_once() {
    let mut cluster = Cluster::new(3, 200);
    cluster.start_all();
    let rt = runtime();
    let opts = patient();
    let mut all = Session::new(7, 1, cluster.client_addrs(), opts).with_tls(cluster.client_tls());
    rt.block_on(all.put("a leader exists")).unwrap();
    // Down long enough that the peers' reconnect back-off to it reaches
    // its ceiling (this is the downtime, not a wait for anything).
    cluster.kill(2);
    std::thread::sleep(Duration::from_millis(1500));
    cluster.start(2);
    // A client that knows only the restarted server: it must forward (or
    // hint) at once instead of refusing until the next reconnect attempt.
    let mut one = Session::new(8, 1, vec![cluster.client_addrs()[2]], opts)
        .with_tls(cluster.client_tls())
        .follow_leader(false);
    rt.block_on(one.put("through the restarted follower"))
        .unwrap();
    println!("retries: {}", one.retries());
    assert!(
        one.retries() <= 3,
        "the restarted follower refused {} times before it knew the leader",
        one.retries()
    );
}

/// `transfer` moves the lead to the server named, found through any
/// server; a transfer to a stranger or to the leader itself is refused.
#[test]
fn a_transfer_hands_the_lead_to_the_server_named() {
    let mut cluster = Cluster::new(3, 200);
    cluster.start_all();
    let rt = runtime();
    let opts = patient();
    let addrs = cluster.client_addrs();
    let mut s = Session::new(11, 1, addrs.clone(), opts).with_tls(cluster.client_tls());
    rt.block_on(s.put("before")).unwrap();
    let leader = addrs.iter().position(|&a| Some(a) == s.server()).unwrap();
    let to = (leader + 1) % 3;
    // Asked through a follower: the session follows the hint to the leader.
    let mut admin =
        Session::new(12, 1, vec![addrs[to], addrs[leader]], opts).with_tls(cluster.client_tls());
    assert_eq!(rt.block_on(admin.transfer(to as u32)).unwrap(), to as u32);
    // The old leader steps down as soon as the new one campaigns: a put
    // that reached it first may still be answered there, the next one is
    // sent on to the new leader.
    let mut puts = 0;
    while s.server() != Some(addrs[to]) {
        assert!(puts < 3, "the lead did not move to server {to}");
        let t = std::time::Instant::now();
        rt.block_on(s.put("after")).unwrap();
        println!("put {puts}: {:?}, retries {}", t.elapsed(), s.retries());
        puts += 1;
    }
    assert!(
        rt.block_on(admin.transfer(to as u32)).is_err(),
        "the new leader already leads"
    );
    assert!(rt.block_on(admin.transfer(7)).is_err(), "no server 7");
    let (_, log) = rt.block_on(s.get_all()).unwrap();
    assert_eq!(log.len(), 1 + puts, "{log:?}");
    assert!(log[1..].iter().all(|m| m == "after"), "{log:?}");
}
