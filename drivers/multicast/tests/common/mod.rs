//! Test networks and process control for the multicast tests.
//!
//! Every test builds its own LAN out of network namespaces: a hub namespace
//! holding a bridge, and one namespace per process joined to it by a veth
//! pair, so that each process has its own iptables and loses its own share of
//! datagrams (per-receiver loss, like a real LAN). Nothing touches the host's
//! namespace; the [`Lan`] guard deletes every namespace even when a test fails.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The usual four-line configuration file.
pub const PAXOS_CONF: &str = "clients 239.0.0.1 5000\nproposers 239.0.0.1 6000\nacceptors 239.0.0.1 7000\nlearners 239.0.0.1 8000\n";
/// How often output files are polled.
const POLL: Duration = Duration::from_millis(50);

/// One cluster at a time: the machine has two cores, and timing-sensitive
/// runs (elections, retries) should not compete with each other.
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Takes the machine for one test (poisoning is ignored: a failed test
/// already reported its own failure).
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Fails the test unless it runs as root: namespaces need it, and a test that
/// skipped itself would pass without checking anything.
pub fn require_root() {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        uid, "0",
        "the multicast tests create network namespaces and must run as root (uid is {uid}); \
         run `cargo test` as root, as CI does"
    );
    for tool in ["ip", "iptables"] {
        let ok = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "`{tool}` is needed (apt-get install -y iproute2 iptables)"
        );
    }
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bridge in a hub namespace with one namespace per host. Dropping it
/// deletes them all.
#[derive(Debug)]
pub struct Lan {
    prefix: String,
    hub: String,
    hosts: Vec<String>,
}

impl Lan {
    /// A LAN whose namespaces are named `abc<pid>-<tag>-…`, unique per run.
    pub fn new(tag: &str) -> Lan {
        let prefix = format!("abc{}-{tag}", std::process::id());
        let hub = format!("{prefix}-hub");
        let lan = Lan {
            prefix,
            hub: hub.clone(),
            hosts: Vec::new(),
        };
        run(&["ip", "netns", "add", &hub]);
        run(&["ip", "-n", &hub, "link", "add", "br0", "type", "bridge"]);
        // Flood multicast to every port: no IGMP querier runs here.
        run(&[
            "ip",
            "-n",
            &hub,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        run(&["ip", "-n", &hub, "link", "set", "br0", "mtu", "65535"]);
        run(&["ip", "-n", &hub, "link", "set", "br0", "up"]);
        lan
    }

    /// A new host on the LAN that drops each received multicast datagram
    /// with probability `loss`. Returns its namespace name.
    pub fn host(&mut self, name: &str, loss: f64) -> String {
        let n = self.hosts.len() + 1;
        assert!(n < 250, "too many hosts");
        let ns = format!("{}-{name}", self.prefix);
        run(&["ip", "netns", "add", &ns]);
        self.hosts.push(ns.clone());
        let port = format!("p{n}");
        run(&[
            "ip", "-n", &self.hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
            "netns", &ns,
        ]);
        // A 64 KiB MTU keeps every datagram in one frame, so a loss rule
        // drops whole datagrams, as on loopback.
        run(&[
            "ip", "-n", &self.hub, "link", "set", &port, "mtu", "65535", "master", "br0", "up",
        ]);
        run(&["ip", "-n", &ns, "link", "set", "eth0", "mtu", "65535", "up"]);
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        let addr = format!("169.254.77.{n}/24");
        run(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
        run(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            "224.0.0.0/4",
            "dev",
            "eth0",
        ]);
        if loss > 0.0 {
            let p = format!("{loss}");
            run(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "iptables",
                "-A",
                "INPUT",
                "-d",
                "239.0.0.1",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ]);
        }
        ns
    }
}

impl Lan {
    /// Datagrams the loss rule of namespace `ns` dropped so far.
    pub fn dropped(ns: &str) -> u64 {
        let out = Command::new("ip")
            .args([
                "netns", "exec", ns, "iptables", "-L", "INPUT", "-v", "-n", "-x",
            ])
            .output()
            .expect("iptables runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("DROP") && l.contains("statistic"))
            .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain(std::iter::once(&self.hub)) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// One running `abcast` (or tool) process in its namespace.
#[derive(Debug)]
pub struct Proc {
    /// e.g. "learner 1".
    pub name: String,
    child: Option<Child>,
    /// Its stdout file.
    pub stdout: PathBuf,
    /// Its stderr file.
    pub stderr: PathBuf,
}

impl Proc {
    /// Starts `program args` in namespace `ns`, in `dir`, with stdin from
    /// `stdin` (or nothing).
    pub fn spawn(
        ns: &str,
        dir: &Path,
        name: &str,
        program: &str,
        args: &[&str],
        stdin: Option<&Path>,
    ) -> Proc {
        let file = name.replace(' ', "");
        // Restarts append, so a restarted process's earlier output is kept.
        let open = |ext: &str| {
            let path = dir.join(format!("{file}.{ext}"));
            let f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap();
            (path, f)
        };
        let (stdout, out) = open("out");
        let (stderr, err) = open("err");
        let input = match stdin {
            Some(p) => Stdio::from(fs::File::open(p).unwrap()),
            None => Stdio::null(),
        };
        let child = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .current_dir(dir)
            .stdin(input)
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child: Some(child),
            stdout,
            stderr,
        }
    }

    /// SIGKILL, as a crash.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits (bounded) and returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("{} did not stop within 10 s of SIGTERM", self.name);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until the process exits by itself, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Result<Option<i32>, String> {
        let deadline = Instant::now() + limit;
        let c = self.child.as_mut().ok_or("not running")?;
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                self.child = None;
                return Ok(status.code());
            }
            if Instant::now() > deadline {
                return Err(format!("{} still running after {limit:?}", self.name));
            }
            std::thread::sleep(POLL);
        }
    }

    /// True while it runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Lines of its stdout so far.
    pub fn output_lines(&self) -> Vec<String> {
        fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The value of counter `key` on its exit line (`key=value`).
    pub fn counter(&self, key: &str) -> Option<u64> {
        let log = self.log();
        let line = log.lines().rev().find(|l| l.starts_with("abcast "))?;
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.crash();
    }
}

/// Polls `cond` every 50 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// A fresh working directory for one test, removed on success.
#[derive(Debug)]
pub struct WorkDir {
    /// The path.
    pub path: PathBuf,
    keep: bool,
}

impl WorkDir {
    /// Creates it with the usual `paxos.conf`.
    pub fn new(tag: &str) -> WorkDir {
        let path = std::env::temp_dir().join(format!("abcast-test-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        fs::write(path.join("paxos.conf"), PAXOS_CONF).unwrap();
        WorkDir { path, keep: false }
    }

    /// Keeps the directory for inspection (call before failing).
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::thread::panicking() || self.keep {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
