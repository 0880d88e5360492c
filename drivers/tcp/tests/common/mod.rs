//! Real server processes on loopback for integration tests: free ports, a
//! temporary data directory, TLS certificates made for the run (or plain TCP
//! with [`Cluster::insecure`]), SIGKILL and restart, SIGTERM with counters.
#![allow(dead_code)]

use paxos_tcp::client::{Session, SessionOptions};
use paxos_tcp::tls::{ClientTls, DevPki};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections after it is spawned.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub fn free_port() -> u16 {
    paxos_tcp::cli::free_port().expect("a free port")
}

pub fn server_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chatroom-server"))
}

/// A cluster of `chatroom-server` processes.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub client_ports: Vec<u16>,
    pub peer_ports: Vec<u16>,
    pub timeout_ms: u64,
    pub extra_args: Vec<String>,
    /// Arguments for one server only, by id (after `extra_args`).
    pub server_args: std::collections::HashMap<usize, Vec<String>>,
    /// With it, server `id` records to `<dir>/server-<id>.rec` (`--record`).
    pub record: bool,
    pub children: Vec<Option<Child>>,
    /// The run's CA, unless the cluster runs plain TCP.
    pub pki: Option<DevPki>,
    /// Each server's --tls-dir (all the same unless a test gives one server
    /// another).
    pub tls_dirs: Vec<PathBuf>,
}

impl Cluster {
    /// A cluster whose servers talk TLS, with certificates for every id.
    pub fn new(count: usize, timeout_ms: u64) -> Self {
        let mut c = Cluster::insecure(count, timeout_ms);
        let pki = DevPki::new("test CA").expect("a CA");
        let dir = c.dir.path().join("tls");
        pki.write_cluster(&dir, count as u32).expect("certificates");
        c.tls_dirs = vec![dir; count];
        c.pki = Some(pki);
        c
    }

    /// A cluster of `--insecure` servers: plain TCP.
    pub fn insecure(count: usize, timeout_ms: u64) -> Self {
        Cluster {
            dir: tempfile::Builder::new()
                .prefix("paxos-tcp-test-")
                .tempdir()
                .expect("temp dir"),
            client_ports: (0..count).map(|_| free_port()).collect(),
            peer_ports: (0..count).map(|_| free_port()).collect(),
            timeout_ms,
            extra_args: Vec::new(),
            server_args: Default::default(),
            record: false,
            children: (0..count).map(|_| None).collect(),
            pki: None,
            tls_dirs: Vec::new(),
        }
    }

    /// The cluster CA file, if it runs TLS.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.pki
            .as_ref()
            .map(|_| self.dir.path().join("tls/ca.pem"))
    }

    /// What clients need to talk to this cluster.
    pub fn client_tls(&self) -> Option<ClientTls> {
        self.ca_file()
            .map(|ca| ClientTls::load(&ca, None).expect("client TLS"))
    }

    /// `chatroom-client` arguments that reach this cluster: `--ca FILE` or `--insecure`.
    pub fn client_args(&self) -> Vec<String> {
        match self.ca_file() {
            Some(ca) => vec!["--ca".into(), ca.display().to_string()],
            None => vec!["--insecure".into()],
        }
    }

    /// A session to every server, over TLS if the cluster runs it.
    pub fn session(&self, client: u64, opts: SessionOptions) -> Session {
        Session::new(client, 1, self.client_addrs(), opts).with_tls(self.client_tls())
    }

    pub fn count(&self) -> usize {
        self.client_ports.len()
    }

    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.client_ports
            .iter()
            .map(|&p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
            .collect()
    }

    pub fn peer_addr(&self, id: usize) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.peer_ports[id]))
    }

    pub fn data_dir(&self, id: usize) -> PathBuf {
        self.dir.path().join(format!("server-{id}"))
    }

    pub fn record_path(&self, id: usize) -> PathBuf {
        self.dir.path().join(format!("server-{id}.rec"))
    }

    pub fn log_path(&self, id: usize) -> PathBuf {
        self.dir.path().join(format!("server-{id}.out"))
    }

    /// The command line that starts server `id` of this cluster.
    pub fn command(&self, id: usize) -> Command {
        let peers: Vec<String> = self
            .peer_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let mut cmd = Command::new(server_binary());
        if self.record {
            cmd.arg("--record").arg(self.record_path(id));
        }
        cmd.args([
            "-i",
            &id.to_string(),
            "-p",
            &self.client_ports[id].to_string(),
        ])
        .args([
            "-c",
            &self.count().to_string(),
            "-t",
            &self.timeout_ms.to_string(),
        ])
        .arg("--peers")
        .arg(peers.join(","))
        .arg("--data-dir")
        .arg(self.data_dir(id))
        .args(match self.tls_dirs.get(id) {
            Some(dir) => vec!["--tls-dir".into(), dir.clone().into_os_string()],
            None => vec!["--insecure".into()],
        })
        .args(&self.extra_args)
        .args(self.server_args.get(&id).into_iter().flatten());
        cmd
    }

    /// Spawns server `id` (its stdout and stderr go to a file in the data
    /// directory) without waiting for it.
    pub fn spawn(&mut self, id: usize) {
        assert!(
            self.children[id].is_none(),
            "server {id} is already running"
        );
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .expect("server log");
        let err = out.try_clone().expect("server log");
        let child = self
            .command(id)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn chatroom-server");
        self.children[id] = Some(child);
    }

    /// Waits until server `id` accepts client connections.
    pub fn wait_ready(&mut self, id: usize) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = self.client_addrs()[id];
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(child) = self.children[id].as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("server {id} exited with {status}: {}", self.output(id));
                }
            }
            assert!(
                Instant::now() < deadline,
                "server {id} not ready after {READY_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn start(&mut self, id: usize) {
        self.spawn(id);
        self.wait_ready(id);
    }

    pub fn start_all(&mut self) {
        for id in 0..self.count() {
            self.spawn(id);
        }
        for id in 0..self.count() {
            self.wait_ready(id);
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self, id: usize) {
        if let Some(mut child) = self.children[id].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self, id: usize) -> bool {
        self.children[id].is_some()
    }

    /// SIGTERM, wait for a clean exit, and return what the server printed.
    pub fn terminate(&mut self, id: usize) -> String {
        let mut child = self.children[id].take().expect("server is running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "server {id} exited with {status}: {}",
                    self.output(id)
                );
                break;
            }
            assert!(Instant::now() < deadline, "server {id} ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
        self.output(id)
    }

    /// Keeps the data directory and server logs after the test (for a failure report).
    pub fn keep(&mut self) -> PathBuf {
        self.dir.disable_cleanup(true);
        self.dir.path().to_path_buf()
    }

    pub fn output(&self, id: usize) -> String {
        std::fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    /// Waits until server `id` has logged a line containing `text`.
    pub fn wait_for_output(&self, id: usize, text: &str) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.output(id).contains(text) {
            assert!(
                Instant::now() < deadline,
                "server {id} never logged {text:?}: {}",
                self.output(id)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 0..self.count() {
            self.kill(id);
        }
    }
}

/// The value of `name=` in a server's counters line.
pub fn counter(output: &str, name: &str) -> u64 {
    let line = output
        .lines()
        .rev()
        .find(|l| l.contains("counters:"))
        .unwrap_or_else(|| panic!("no counters line in {output}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no counter {name} in {line}"))
}

/// A multi-threaded runtime small enough for the 2-core test machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Reads the log of each server in `ids` through its own session, until
/// they agree or `settle` has passed; every read goes into `history`.
pub fn final_logs(
    cluster: &Cluster,
    ids: &[usize],
    rt: &tokio::runtime::Runtime,
    history: &std::sync::Mutex<paxos_tcp::check::History>,
    opts: SessionOptions,
    settle: Duration,
) -> Vec<(String, Vec<String>)> {
    let addrs = cluster.client_addrs();
    let deadline = Instant::now() + settle;
    loop {
        let mut finals = Vec::new();
        for &id in ids {
            let mut s = Session::new(9000 + id as u64, 1, vec![addrs[id]], opts)
                .with_tls(cluster.client_tls());
            let invoked = Instant::now();
            let (_, log) = rt.block_on(s.get_all()).expect("final get");
            history
                .lock()
                .unwrap()
                .gets
                .push(paxos_tcp::check::GetRecord {
                    via: format!("server {id}"),
                    invoked,
                    completed: Instant::now(),
                    log: log.clone(),
                });
            finals.push((format!("server {id}"), log));
        }
        if paxos_tcp::check::check_agreement(&finals).is_empty() || Instant::now() >= deadline {
            return finals;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A closed-loop writer: puts `c<c>-<n>` through `session` until `stop`,
/// recording each put and its acknowledgement in `history`; a put that
/// fails for good panics the task.
pub fn spawn_writer(
    rt: &tokio::runtime::Runtime,
    c: u64,
    mut session: Session,
    history: std::sync::Arc<std::sync::Mutex<paxos_tcp::check::History>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    rt.spawn(async move {
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let text = format!("c{c}-{n}");
            n += 1;
            let index = {
                let mut h = history.lock().unwrap();
                h.puts.push(paxos_tcp::check::PutRecord {
                    text: text.clone(),
                    invoked: Some(Instant::now()),
                    acked: None,
                });
                h.puts.len() - 1
            };
            match session.put(&text).await {
                Ok((_, i)) => history.lock().unwrap().puts[index].acked = Some((Instant::now(), i)),
                Err(e) => panic!("put {text} failed for good: {e}"),
            }
        }
    })
}
