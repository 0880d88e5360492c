//! What replacing a server costs: three real `chatroom-server` processes
//! (plain TCP on 127.0.0.1, logs fsynced under a temporary directory in the
//! current one) serve closed-loop clients; a follower and later the leader
//! are each killed with SIGKILL, lose their data directory, and start again
//! on an empty one with `--rejoin`. It prints acknowledged puts per 100 ms,
//! and for each replacement the throughput before it, the lowest 100 ms
//! after it (as a share of before), how long until half a second's mean
//! was back to 90 % of before, and when the server said it had rejoined. It measures and
//! prints; it asserts nothing about time.
//!
//! `cargo bench -p paxos-tcp --bench replace [-- CLIENTS SECONDS]`
//! (default 16 clients, 16 seconds; the replacements come at a quarter and
//! at five eighths of the run). `REPLACE_VERBOSE=1` runs the servers with
//! `-v`, and `REPLACE_KEEP=1` keeps their directories and output.
//!
//! `REPLACE_MODE=reconfigure` replaces by membership change instead: a new
//! server (id 3, then 4) starts with `--join`, and once the cluster added
//! it the old one is removed (`remove`) and stopped; the follower first,
//! then the leader. The times are from the new server's start.

use paxos_tcp::client::{Session, SessionOptions};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SERVERS: usize = 3;
const TIMEOUT_MS: &str = "300";
const BUCKET: Duration = Duration::from_millis(100);

struct Cluster {
    dir: PathBuf,
    client_ports: Vec<u16>,
    peers: String,
    children: Vec<Option<Child>>,
    /// Membership change mode: two spare ids in the peer list, and the
    /// client addresses a joining server asks.
    join: Option<String>,
}

impl Cluster {
    fn data_dir(&self, id: usize) -> PathBuf {
        self.dir.join(format!("server-{id}"))
    }

    fn output(&self, id: usize) -> PathBuf {
        self.dir.join(format!("server-{id}.out"))
    }

    fn spawn(&mut self, id: usize, rejoin: bool) {
        let out = std::fs::File::create(self.output(id)).expect("server output file");
        let err = out.try_clone().expect("server output file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatroom-server"));
        cmd.args([
            "-i",
            &id.to_string(),
            "-p",
            &self.client_ports[id].to_string(),
        ])
        .args(["-c", &self.children.len().to_string(), "-t", TIMEOUT_MS])
        .args(["--insecure", "--peers", &self.peers])
        .arg("--data-dir")
        .arg(self.data_dir(id))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
        if rejoin {
            cmd.arg("--rejoin");
        }
        if let Some(join) = &self.join {
            cmd.args(["--members", "0,1,2"]);
            if id >= SERVERS {
                cmd.args(["--join", join]);
            }
        }
        if std::env::var_os("REPLACE_RECORD").is_some() {
            let n = std::fs::read_dir(&self.dir).map_or(0, |d| d.count());
            cmd.arg("--record")
                .arg(self.dir.join(format!("server-{id}-{n}.rec")));
        }
        if std::env::var_os("REPLACE_VERBOSE").is_some() {
            cmd.arg(std::env::var("REPLACE_VERBOSE").unwrap_or_else(|_| "-v".into()));
        }
        self.children[id] = Some(cmd.spawn().expect("start chatroom-server"));
    }

    fn kill(&mut self, id: usize) {
        if let Some(mut child) = self.children[id].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn said(&self, id: usize, line: &str) -> bool {
        std::fs::read_to_string(self.output(id)).is_ok_and(|s| s.contains(line))
    }
}

impl Cluster {
    /// SIGTERM: the servers print their counters on the way out.
    fn stop_all(&mut self) {
        for child in self.children.iter_mut().flatten() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        for child in self.children.iter_mut() {
            if let Some(mut c) = child.take() {
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 0..self.children.len() {
            self.kill(id);
        }
    }
}

/// One replacement, as measured.
struct Replacement {
    victim: usize,
    role: &'static str,
    at: Duration,
    rejoined_after: Option<Duration>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn leader_of(addrs: &[SocketAddr], rt: &tokio::runtime::Runtime, ask: u64) -> Option<usize> {
    // A session follows the leader hint of every answer: after two puts it
    // talks to the leader.
    let mut s = Session::new(
        u64::MAX - 100 - ask,
        1,
        addrs.to_vec(),
        SessionOptions::default(),
    );
    for _ in 0..2 {
        rt.block_on(s.put("who leads")).ok()?;
    }
    let at = s.server()?;
    addrs.iter().position(|&a| a == at)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let clients: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(16);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    let run = Duration::from_secs(seconds.max(4));
    let tmp = tempfile::Builder::new()
        .prefix("replace-bench-")
        .tempdir_in(Path::new("."))
        .expect("a temporary directory here");
    let reconfigure = std::env::var("REPLACE_MODE").is_ok_and(|m| m == "reconfigure");
    let ids = if reconfigure { SERVERS + 2 } else { SERVERS };
    let client_ports: Vec<u16> = (0..ids).map(|_| free_port()).collect();
    let peers: Vec<String> = (0..ids)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let joins: Vec<String> = client_ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let mut cluster = Cluster {
        dir: tmp.path().to_path_buf(),
        client_ports: client_ports.clone(),
        peers: peers.join(","),
        children: (0..ids).map(|_| None).collect(),
        join: reconfigure.then(|| joins.join(",")),
    };
    for id in 0..SERVERS {
        cluster.spawn(id, false);
    }

    let addrs: Vec<SocketAddr> = client_ports
        .iter()
        .map(|&p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut probe = Session::new(u64::MAX - 10, 1, addrs.clone(), SessionOptions::default());
    rt.block_on(probe.put("warm")).expect("the cluster came up");

    let acks: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let begin = Instant::now();
    let end = begin + run;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let acks = acks.clone();
        let mut session = Session::new(c as u64 + 1, 1, addrs.clone(), SessionOptions::default());
        tasks.push(rt.spawn(async move {
            let mut i = 0u64;
            while Instant::now() < end {
                if session.put(&format!("r{c}-{i}")).await.is_ok() {
                    acks.lock().expect("acks").push(begin.elapsed());
                }
                i += 1;
            }
        }));
    }

    let mut replacements = Vec::new();
    for (fraction, role) in [(0.25, "follower"), (0.625, "leader")] {
        let at = run.mul_f64(fraction);
        std::thread::sleep((begin + at).saturating_duration_since(Instant::now()));
        let Some(leader) = leader_of(&addrs, &rt, replacements.len() as u64) else {
            eprintln!("no leader answered; skipping the {role} replacement");
            continue;
        };
        let victim = if role == "leader" {
            leader
        } else {
            (0..ids)
                .find(|&i| i != leader && cluster.children[i].is_some())
                .unwrap_or(leader)
        };
        let at = begin.elapsed();
        let mut rejoined_after = None;
        if reconfigure {
            let new = SERVERS + replacements.len();
            cluster.spawn(new, false);
            while Instant::now() < end && !cluster.said(new, paxos_tcp::server::JOINED_LINE) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let mut admin = Session::new(
                u64::MAX - 1000 - victim as u64,
                1,
                addrs.clone(),
                SessionOptions::default(),
            );
            match rt.block_on(admin.remove_server(victim as u32)) {
                Ok(_) => rejoined_after = Some(begin.elapsed() - at),
                Err(e) => eprintln!("removing server {victim} failed: {e}"),
            }
            cluster.kill(victim);
        } else {
            cluster.kill(victim);
            std::fs::remove_dir_all(cluster.data_dir(victim)).expect("remove the data directory");
            cluster.spawn(victim, true);
            while Instant::now() < end {
                if cluster.said(victim, paxos_tcp::server::REJOINED_LINE) {
                    rejoined_after = Some(begin.elapsed() - at);
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        replacements.push(Replacement {
            victim,
            role,
            at,
            rejoined_after,
        });
    }
    for t in tasks {
        let _ = rt.block_on(t);
    }
    cluster.stop_all();
    drop(cluster);
    if std::env::var_os("REPLACE_KEEP").is_some() {
        println!("servers' data and output kept in {}", tmp.keep().display());
    }

    let acks = acks.lock().expect("acks");
    let buckets = (run.as_millis() / BUCKET.as_millis()) as usize;
    let mut per = vec![0u64; buckets];
    for t in acks.iter() {
        let b = (t.as_millis() / BUCKET.as_millis()) as usize;
        if b < buckets {
            per[b] += 1;
        }
    }
    let rate = |n: f64| n / BUCKET.as_secs_f64();
    println!(
        "replace ({}): {SERVERS} chatroom-server processes, {clients} clients, {} s, fsync on; acknowledged puts/s per 100 ms:",
        if reconfigure { "membership change" } else { "wipe and rejoin" },
        run.as_secs()
    );
    for (i, chunk) in per.chunks(10).enumerate() {
        let line: Vec<String> = chunk
            .iter()
            .map(|&n| format!("{:.0}", rate(n as f64)))
            .collect();
        println!("  {:>4.1} s: {}", i as f64, line.join(" "));
    }
    for (k, r) in replacements.iter().enumerate() {
        let first = (r.at.as_millis() / BUCKET.as_millis()) as usize;
        let next = replacements.get(k + 1).map_or(buckets, |n| {
            (n.at.as_millis() / BUCKET.as_millis()) as usize
        });
        // Before: the two seconds before it.
        let before = &per[first.saturating_sub(20)..first];
        let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
        let base = mean(before);
        let after = &per[first..next.min(buckets)];
        // The dip: the lowest 100 ms of the two seconds after it.
        let low = after.iter().take(20).copied().min().unwrap_or(0) as f64;
        // The dip lasts until half a second's mean is back to 90 % of
        // before (single 100 ms buckets swing by a third either way).
        let below = (0..after.len())
            .find(|&i| mean(&after[i..(i + 5).min(after.len())]) >= 0.9 * base)
            .unwrap_or(after.len());
        println!(
            "replacing the {} (server {}) at {:.1} s: before {:.0} puts/s; lowest 100 ms in the 2 s after {:.0} puts/s ({:.0} % of before); back to 90 % of before (mean of 0.5 s) after {:.1} s; {} after {}",
            r.role,
            r.victim,
            r.at.as_secs_f64(),
            rate(base),
            rate(low),
            100.0 * low / base.max(1.0),
            below as f64 * BUCKET.as_secs_f64(),
            if reconfigure {
                "new server added and old one removed"
            } else {
                "rejoined (voting again)"
            },
            r.rejoined_after
                .map_or("never, within the run".to_string(), |d| format!("{:.2} s", d.as_secs_f64())),
        );
    }
}
