//! The scenario harness: runs the old JSON scenario files unchanged against
//! real server processes, in a fresh data directory, with a timeout on every
//! step, then asserts what every run must satisfy (see [`crate::check`]).
//!
//! Scenario actions: `Start`, `Connect`, `Disconnect`, `Put`, `Get`, `Crash`,
//! `Sleep`, `Wipe` (a server loses its disk and rejoins with `--rejoin`),
//! `AddServer` (a new server starts with `--join` and is added) and
//! `RemoveServer` (the leader removes a server, which is then stopped).
//! Unless told `insecure`, the harness makes a development CA in the
//! run's temporary directory, gives every server it starts a certificate for
//! its id (`--tls-dir`), and talks TLS to them. Each `Connect` opens a client session; `Put`s queue on it and run
//! one at a time (each acknowledged, retried under the same sequence number),
//! so several connections make concurrent load; `Get` waits for its answer.

use crate::check::{self, GetRecord, History, PutRecord};
use crate::client::{random_client_id, CallError, Session, SessionOptions};
use crate::tls::{ClientTls, DevPki};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// One step of a scenario, exactly as the old files spell it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "type")]
pub enum Action {
    /// Launch server `id` with client port `port` in a cluster of `count`.
    Start {
        /// Server id.
        id: usize,
        /// Client port.
        port: u16,
        /// Cluster size.
        count: usize,
    },
    /// Open the harness's client connection to server `id`.
    Connect {
        /// Server id.
        id: usize,
    },
    /// Close that connection (requests already queued on it still finish).
    Disconnect {
        /// Server id.
        id: usize,
    },
    /// Put `message` through connection `id` (does not wait).
    Put {
        /// Connection id.
        id: usize,
        /// The message.
        message: String,
    },
    /// Get the log through connection `id` and wait for it.
    Get {
        /// Connection id.
        id: usize,
    },
    /// SIGKILL server `id`.
    Crash {
        /// Server id.
        id: usize,
    },
    /// Pause the script.
    Sleep {
        /// How long, in ms.
        ms: u64,
    },
    /// SIGKILL server `id`, delete its data directory, start it again (with
    /// its last `Start`'s port and cluster size) with `--rejoin`, and wait
    /// until it reports that it rejoined (votes again). Not in the old
    /// format; old files never use it.
    Wipe {
        /// Server id.
        id: usize,
    },
    /// Start a new server `id` with client port `port` and `--join`, and
    /// wait until the cluster has added it. Not in the old format.
    AddServer {
        /// Server id (need not be below any `Start`'s count).
        id: usize,
        /// Client port.
        port: u16,
    },
    /// Ask the leader to remove server `id`, wait until it has, then stop
    /// that server (SIGKILL). Not in the old format.
    RemoveServer {
        /// Server id.
        id: usize,
    },
}

/// A scenario file that is not a scenario.
#[derive(Debug, thiserror::Error)]
#[error("line {line} column {column}: {message}")]
pub struct ScenarioError {
    /// Where the JSON went wrong.
    pub line: usize,
    /// The column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses a scenario file's text. An empty list is an error: a scenario
/// that does nothing would pass without testing anything.
pub fn parse(text: &str) -> Result<Vec<Action>, ScenarioError> {
    let actions: Vec<Action> = serde_json::from_str(text).map_err(|e| ScenarioError {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    if actions.is_empty() {
        return Err(ScenarioError {
            line: 1,
            column: 1,
            message: "the scenario has no steps".into(),
        });
    }
    Ok(actions)
}

/// Reads and parses a scenario file; the error names the file.
pub fn load(file: &Path) -> Result<Vec<Action>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    parse(&text).map_err(|e| format!("{}: not a scenario: {e}", file.display()))
}

/// Why a scenario step could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// `Start` with an id outside the cluster.
    #[error("Start: id {id} is not below count {count}")]
    IdOutOfRange {
        /// The id.
        id: usize,
        /// The cluster size.
        count: usize,
    },
    /// No free port could be found.
    #[error("cannot find a free port: {0}")]
    FreePort(std::io::Error),
    /// The file for a server's output could not be created.
    #[error("cannot create the server log {path}: {source}")]
    ServerLog {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Without `--free-ports`, a port the scenario's server needs is taken,
    /// typically by servers started by hand: the harness would otherwise
    /// talk to them instead of its own.
    #[error("Start {id}: {what} port {port} is already in use (another chatroom-server?); the harness's own server could not start. Stop what listens there, or run with --free-ports")]
    PortInUse {
        /// The server.
        id: usize,
        /// "client" or "peer".
        what: &'static str,
        /// The port.
        port: u16,
    },
    /// A server the harness started exited instead of serving.
    #[error("server {id} exited ({status}) before accepting clients; its output:\n{output}")]
    ServerExited {
        /// The server.
        id: usize,
        /// How it exited.
        status: String,
        /// The end of what it printed.
        output: String,
    },
    /// The server binary could not be started.
    #[error("cannot start {path}: {source}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `Connect` to a server no `Start` named.
    #[error("Connect {id}: server {id} was never started")]
    NeverStarted {
        /// The server.
        id: usize,
    },
    /// The server did not accept a connection before the deadline.
    #[error("Connect {id}: cannot reach {addr}: {source}")]
    Unreachable {
        /// The server.
        id: usize,
        /// Its client address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// `Put` or `Get` on a connection that is not open.
    #[error("{verb} {id}: connection {id} is not open (Connect it first)")]
    NotConnected {
        /// The step.
        verb: &'static str,
        /// The connection.
        id: usize,
    },
    /// The task serving a connection ended.
    #[error("{verb} {id}: the connection's worker is gone")]
    WorkerGone {
        /// The step.
        verb: &'static str,
        /// The connection.
        id: usize,
    },
    /// A `Get` failed.
    #[error("Get {id}: {source}")]
    Get {
        /// The connection.
        id: usize,
        /// Why.
        source: CallError,
    },
    /// The run's certificates could not be made.
    #[error("certificates: {0}")]
    Tls(String),
    /// `Wipe` of a server no `Start` named.
    #[error("Wipe {id}: server {id} was never started")]
    WipeNeverStarted {
        /// The server.
        id: usize,
    },
    /// A wiped server's data directory could not be removed.
    #[error("Wipe {id}: cannot remove {path}: {source}")]
    WipeDir {
        /// The server.
        id: usize,
        /// Its data directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A wiped server did not report that it rejoined in time.
    #[error(
        "Wipe {id}: the server did not rejoin within {secs} s; the end of its output:\n{output}"
    )]
    RejoinTimeout {
        /// The server.
        id: usize,
        /// How long the harness waited.
        secs: u64,
        /// The end of what it printed.
        output: String,
    },
    /// A joining server did not report that it was added in time.
    #[error("AddServer {id}: the server was not added within {secs} s; the end of its output:\n{output}")]
    JoinTimeout {
        /// The server.
        id: usize,
        /// How long the harness waited.
        secs: u64,
        /// The end of what it printed.
        output: String,
    },
    /// `RemoveServer` failed.
    #[error("RemoveServer {id}: {source}")]
    Remove {
        /// The server.
        id: usize,
        /// Why.
        source: CallError,
    },
    /// The final read of a surviving server failed.
    #[error("final read of server {id}: {source}")]
    FinalRead {
        /// The server.
        id: usize,
        /// Why.
        source: CallError,
    },
}

/// How to run scenarios.
#[derive(Clone, Debug)]
pub struct HarnessOptions {
    /// The `chatroom-server` binary.
    pub server: PathBuf,
    /// `-v` count passed on to every server (their logs then go to the terminal).
    pub verbose: u8,
    /// Remap every port to a free one (for parallel runs); otherwise use the
    /// scenario's client ports and the default peer ports 20000+id.
    pub free_ports: bool,
    /// `-t` passed to the servers, in ms.
    pub server_timeout_ms: u64,
    /// How long one request (retries included) may take.
    pub request_deadline: Duration,
    /// How long the end-of-run convergence check may take.
    pub settle: Duration,
    /// Keep the data directory of a failed run.
    pub keep_failed: bool,
    /// Start the servers with `--insecure` and talk plain TCP, instead of TLS
    /// with certificates made for the run.
    pub insecure: bool,
    /// `--reads` passed to the servers: how they serve gets.
    pub reads: crate::server::ReadMode,
}

/// A scenario's result.
#[derive(Debug)]
pub struct Outcome {
    /// Violations and errors; empty means passed.
    pub failures: Vec<String>,
    /// The harness could not run the scenario as written (its own servers
    /// did not start, or the file is not a scenario): a usage problem, not
    /// a verdict on the servers.
    pub setup_failed: bool,
    /// Puts acknowledged / sent.
    pub acked: usize,
    /// Puts sent.
    pub sent: usize,
    /// Gets completed.
    pub gets: usize,
    /// Data directory, if kept.
    pub kept: Option<PathBuf>,
}

enum Job {
    Put(usize, String),
    Get(oneshot::Sender<Result<Vec<String>, CallError>>),
}

struct Harness<'a> {
    opts: &'a HarnessOptions,
    data: PathBuf,
    children: BTreeMap<usize, Child>,
    client_ports: HashMap<u16, u16>,
    /// The scenario's port and cluster size of each server's last Start.
    started: HashMap<usize, (u16, usize)>,
    /// Servers whose latest start was a rejoin after a `Wipe` (a restart
    /// to retry a taken port passes `--rejoin` again).
    rejoining: std::collections::HashSet<usize>,
    peer_ports: Vec<u16>,
    server_ports: BTreeMap<usize, u16>,
    conns: BTreeMap<usize, mpsc::UnboundedSender<Job>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    history: Arc<Mutex<History>>,
    session_base: u64,
    sessions: u64,
    /// The largest cluster size any Start named.
    count: usize,
    /// Servers any step names (the peer list every server is given, when
    /// the scenario changes members): above `count` if it adds servers.
    book: usize,
    /// Does the scenario add or remove servers? Then every server gets the
    /// whole peer list and the first members explicitly.
    reconfigures: bool,
    /// The members as the scenario changed them (every started server
    /// until the first change).
    members: std::collections::BTreeSet<usize>,
    /// Servers `AddServer` started: they start with `--join` again.
    joined: std::collections::HashSet<usize>,
    /// The run's CA, and the clients' TLS, unless insecure.
    tls: Option<(DevPki, ClientTls)>,
}

fn free_port() -> Result<u16, StepError> {
    crate::cli::free_port().map_err(StepError::FreePort)
}

impl Harness<'_> {
    fn client_tls(&self) -> Option<ClientTls> {
        self.tls.as_ref().map(|(_, c)| c.clone())
    }

    fn client_port(&mut self, port: u16) -> Result<u16, StepError> {
        if !self.opts.free_ports {
            return Ok(port);
        }
        if let Some(&p) = self.client_ports.get(&port) {
            return Ok(p);
        }
        let p = free_port()?;
        self.client_ports.insert(port, p);
        Ok(p)
    }

    async fn start(&mut self, id: usize, port: u16, count: usize) -> Result<(), StepError> {
        if id >= count {
            return Err(StepError::IdOutOfRange { id, count });
        }
        self.rejoining.remove(&id);
        self.launch(id, port, count).await
    }

    /// `Wipe`: the server loses its disk and rejoins.
    async fn wipe(&mut self, id: usize) -> Result<(), StepError> {
        let Some(&(port, count)) = self.started.get(&id) else {
            return Err(StepError::WipeNeverStarted { id });
        };
        self.crash(id).await;
        let dir = self.data.join(format!("server-{id}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|source| StepError::WipeDir {
                id,
                path: dir.clone(),
                source,
            })?;
        }
        // Its old output would hold an earlier rejoin's line.
        let _ = std::fs::remove_file(self.data.join(format!("server-{id}.log")));
        self.rejoining.insert(id);
        self.launch(id, port, count).await?;
        self.await_rejoin(id).await
    }

    /// `AddServer`: a new server joins and the cluster adds it.
    async fn add_server(&mut self, id: usize, port: u16) -> Result<(), StepError> {
        self.joined.insert(id);
        let _ = std::fs::remove_file(self.data.join(format!("server-{id}.log")));
        let count = self.count;
        self.launch(id, port, count).await?;
        let line = crate::server::JOINED_LINE;
        self.await_line(id, line, |id, secs, output| StepError::JoinTimeout {
            id,
            secs,
            output,
        })
        .await?;
        self.members.insert(id);
        Ok(())
    }

    /// `RemoveServer`: the leader removes server `id`; then it is stopped.
    async fn remove_server(&mut self, id: usize) -> Result<(), StepError> {
        let known: Vec<u16> = self
            .server_ports
            .iter()
            .filter(|(i, _)| self.children.contains_key(i))
            .map(|(_, p)| *p)
            .collect();
        let servers: Vec<SocketAddr> = (0..self.book.max(self.count))
            .filter_map(|i| {
                self.server_ports
                    .get(&i)
                    .filter(|_| self.children.contains_key(&i))
                    .or(known.first())
            })
            .map(|&p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
            .collect();
        self.sessions += 1;
        let opts = SessionOptions {
            attempt_timeout: Duration::from_millis(500),
            deadline: self.opts.request_deadline,
            retry_pause: Duration::from_millis(20),
        };
        let mut session = Session::new(self.session_base + self.sessions, 1, servers, opts)
            .with_tls(self.client_tls());
        session
            .remove_server(id as u32)
            .await
            .map_err(|source| StepError::Remove { id, source })?;
        self.members.remove(&id);
        self.crash(id).await;
        Ok(())
    }

    /// Waits until server `id` logs `line`; `late` makes the error of a
    /// wait past the request deadline from the server, the seconds waited
    /// and the end of its output. Its output goes to its log file unless
    /// the harness runs verbose; then there is nothing to watch and the
    /// step does not wait.
    async fn await_line(
        &mut self,
        id: usize,
        line: &str,
        late: fn(usize, u64, String) -> StepError,
    ) -> Result<(), StepError> {
        if self.opts.verbose > 0 {
            return Ok(());
        }
        let path = self.data.join(format!("server-{id}.log"));
        let deadline = Instant::now() + self.opts.request_deadline;
        loop {
            self.check_alive(id)?;
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            if log.contains(line) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                let output = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
                return Err(late(id, self.opts.request_deadline.as_secs(), output));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until server `id` logs that it rejoined.
    async fn await_rejoin(&mut self, id: usize) -> Result<(), StepError> {
        let line = crate::server::REJOINED_LINE;
        self.await_line(id, line, |id, secs, output| StepError::RejoinTimeout {
            id,
            secs,
            output,
        })
        .await
    }

    async fn launch(&mut self, id: usize, port: u16, count: usize) -> Result<(), StepError> {
        // The new process needs the data directory's lock: stop the old first.
        self.crash(id).await;
        self.count = self.count.max(count);
        if !self.joined.contains(&id) {
            self.members.insert(id);
        }
        self.started.insert(id, (port, count));
        let peers = if self.reconfigures {
            self.book.max(count)
        } else {
            count
        };
        let port = self.client_port(port)?;
        if !self.opts.free_ports {
            let peer_port = crate::cli::PEER_PORT_BASE.saturating_add(id as u16);
            for (what, p) in [("client", port), ("peer", peer_port)] {
                if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_err() {
                    return Err(StepError::PortInUse { id, what, port: p });
                }
            }
        }
        let mut cmd = Command::new(&self.opts.server);
        if self.opts.verbose > 0 {
            cmd.arg(format!("-{}", "v".repeat(self.opts.verbose.into())));
        }
        cmd.args([
            "-i",
            &id.to_string(),
            "-p",
            &port.to_string(),
            "-c",
            &peers.to_string(),
        ])
        .args(["-t", &self.opts.server_timeout_ms.to_string()])
        .args(["--reads", self.opts.reads.name()])
        .arg("--data-dir")
        .arg(self.data.join(format!("server-{id}")));
        if self.rejoining.contains(&id) {
            cmd.arg("--rejoin");
        }
        if self.reconfigures {
            let first: Vec<String> = (0..self.count).map(|m| m.to_string()).collect();
            cmd.arg("--members").arg(first.join(","));
        }
        if self.joined.contains(&id) {
            // Client addresses in id order; a server not started yet gets
            // another's, which the request then simply moves on from.
            let known: Vec<u16> = self.server_ports.values().copied().collect();
            let addrs: Vec<String> = (0..peers)
                .filter_map(|i| self.server_ports.get(&i).or(known.first()))
                .map(|p| format!("127.0.0.1:{p}"))
                .collect();
            cmd.arg("--join").arg(addrs.join(","));
        }
        match &self.tls {
            None => {
                cmd.arg("--insecure");
            }
            Some((pki, _)) => {
                let dir = self.data.join("tls");
                if !dir.join(format!("server-{id}.pem")).exists() {
                    pki.write_server(&dir, id as u32)
                        .map_err(|e| StepError::Tls(e.to_string()))?;
                }
                cmd.arg("--tls-dir").arg(dir);
            }
        }
        if self.opts.free_ports {
            while self.peer_ports.len() < peers {
                self.peer_ports.push(free_port()?);
            }
            let peers: Vec<String> = self.peer_ports[..peers]
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect();
            cmd.arg("--peers").arg(peers.join(","));
        }
        if self.opts.verbose == 0 {
            let path = self.data.join(format!("server-{id}.log"));
            let log_err = |source| StepError::ServerLog {
                path: path.clone(),
                source,
            };
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(log_err)?;
            let log2 = log.try_clone().map_err(log_err)?;
            cmd.stdout(Stdio::from(log)).stderr(Stdio::from(log2));
        }
        cmd.stdin(Stdio::null()).kill_on_drop(true);
        let child = cmd.spawn().map_err(|source| StepError::Spawn {
            path: self.opts.server.clone(),
            source,
        })?;
        self.children.insert(id, child);
        self.server_ports.insert(id, port);
        Ok(())
    }

    async fn crash(&mut self, id: usize) {
        if let Some(mut child) = self.children.remove(&id) {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Connects to server `id`. With `--free-ports`, a client port picked
    /// at random may be taken by another process before the server binds
    /// it (a test running alongside, say): the server then exits, and it is
    /// started again on another port, at most twice.
    async fn connect(&mut self, id: usize) -> Result<(), StepError> {
        let mut retries = 0;
        loop {
            match self.connect_once(id).await {
                Err(StepError::ServerExited { output, .. })
                    if self.opts.free_ports
                        && retries < 2
                        && output.contains("cannot listen for clients")
                        && output.contains("in use") =>
                {
                    retries += 1;
                    let Some(&(port, count)) = self.started.get(&id) else {
                        return Err(StepError::NeverStarted { id });
                    };
                    self.client_ports.remove(&port);
                    self.launch(id, port, count).await?;
                }
                other => return other,
            }
        }
    }

    async fn connect_once(&mut self, id: usize) -> Result<(), StepError> {
        let port = *self
            .server_ports
            .get(&id)
            .ok_or(StepError::NeverStarted { id })?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + self.opts.request_deadline;
        let opts = SessionOptions {
            attempt_timeout: Duration::from_millis(500),
            deadline: self.opts.request_deadline,
            retry_pause: Duration::from_millis(20),
        };
        self.sessions += 1;
        let mut session = Session::new(self.session_base + self.sessions, 1, vec![addr], opts)
            .with_tls(self.client_tls());
        // The server may still be starting: retry until it accepts, unless
        // it exited (then whatever answers on its port is not ours).
        loop {
            self.check_alive(id)?;
            match session.connect(addr).await {
                Ok(()) => {
                    self.check_alive(id)?;
                    break;
                }
                Err(source) if Instant::now() >= deadline => {
                    return Err(StepError::Unreachable { id, addr, source });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let history = self.history.clone();
        self.workers
            .push(tokio::spawn(connection(id, session, rx, history)));
        self.conns.insert(id, tx);
        Ok(())
    }

    /// Fails if server `id`, started by us, has exited.
    fn check_alive(&mut self, id: usize) -> Result<(), StepError> {
        let Some(child) = self.children.get_mut(&id) else {
            return Ok(());
        };
        let Ok(Some(status)) = child.try_wait() else {
            return Ok(());
        };
        self.children.remove(&id);
        let log = std::fs::read_to_string(self.data.join(format!("server-{id}.log")))
            .unwrap_or_else(|_| "(its output went to the terminal)".into());
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        let output = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
        Err(StepError::ServerExited {
            id,
            status: status.to_string(),
            output,
        })
    }

    fn conn(
        &self,
        id: usize,
        verb: &'static str,
    ) -> Result<&mpsc::UnboundedSender<Job>, StepError> {
        self.conns
            .get(&id)
            .ok_or(StepError::NotConnected { verb, id })
    }

    async fn step(&mut self, action: &Action) -> Result<(), StepError> {
        match action {
            Action::Start { id, port, count } => self.start(*id, *port, *count).await,
            Action::Connect { id } => self.connect(*id).await,
            Action::Disconnect { id } => {
                self.conns.remove(id);
                Ok(())
            }
            Action::Put { id, message } => {
                let tx = self.conn(*id, "Put")?.clone();
                let index = {
                    let mut h = self.history.lock().expect("history");
                    h.puts.push(PutRecord {
                        text: message.clone(),
                        invoked: None,
                        acked: None,
                    });
                    h.puts.len() - 1
                };
                tx.send(Job::Put(index, message.clone()))
                    .map_err(|_| StepError::WorkerGone {
                        verb: "Put",
                        id: *id,
                    })
            }
            Action::Get { id } => {
                let (reply, rx) = oneshot::channel();
                let gone = StepError::WorkerGone {
                    verb: "Get",
                    id: *id,
                };
                if self.conn(*id, "Get")?.send(Job::Get(reply)).is_err() {
                    return Err(gone);
                }
                // Queued puts run first, each within its own deadline.
                match rx.await {
                    Ok(Ok(log)) => {
                        crate::say!("Client {id} received message log {log:?}");
                        Ok(())
                    }
                    Ok(Err(source)) => Err(StepError::Get { id: *id, source }),
                    Err(_) => Err(gone),
                }
            }
            Action::Crash { id } => {
                self.crash(*id).await;
                Ok(())
            }
            Action::Wipe { id } => self.wipe(*id).await,
            Action::AddServer { id, port } => self.add_server(*id, *port).await,
            Action::RemoveServer { id } => self.remove_server(*id).await,
            Action::Sleep { ms } => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                Ok(())
            }
        }
    }

    /// Reads every surviving server's log through its own session and waits
    /// (up to `settle`) for them to agree.
    async fn finals(&mut self) -> Result<Vec<(String, Vec<String>)>, StepError> {
        let count = if self.reconfigures {
            self.members.len()
        } else {
            self.count
        };
        let alive: Vec<(usize, u16)> = self
            .children
            .keys()
            .filter(|id| !self.reconfigures || self.members.contains(id))
            .map(|id| (*id, self.server_ports[id]))
            .collect();
        if alive.len() * 2 <= count {
            // Without a majority nobody can answer; nothing to compare.
            crate::say!(
                "Only {} of {count} servers are up at the end: no majority, so their logs are not compared",
                alive.len()
            );
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + self.opts.settle;
        loop {
            let mut finals = Vec::new();
            for &(id, port) in &alive {
                self.sessions += 1;
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                let mut session = Session::new(
                    self.session_base + self.sessions,
                    1,
                    vec![addr],
                    SessionOptions {
                        attempt_timeout: Duration::from_millis(500),
                        deadline: deadline.saturating_duration_since(Instant::now()),
                        retry_pause: Duration::from_millis(20),
                    },
                )
                .with_tls(self.client_tls());
                let invoked = Instant::now();
                match session.get_all().await {
                    Ok((_, log)) => {
                        self.history.lock().expect("history").gets.push(GetRecord {
                            via: format!("final read of server {id}"),
                            invoked,
                            completed: Instant::now(),
                            log: log.clone(),
                        });
                        finals.push((format!("server {id}"), log));
                    }
                    Err(source) => return Err(StepError::FinalRead { id, source }),
                }
            }
            if check::check_agreement(&finals).is_empty() || Instant::now() >= deadline {
                return Ok(finals);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Runs one connection's queue: puts and gets one at a time, in order.
async fn connection(
    id: usize,
    mut session: Session,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    history: Arc<Mutex<History>>,
) {
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Put(index, text) => {
                history.lock().expect("history").puts[index].invoked = Some(Instant::now());
                match session.put(&text).await {
                    Ok((_, log_index)) => {
                        history.lock().expect("history").puts[index].acked =
                            Some((Instant::now(), log_index));
                    }
                    Err(e) => crate::say!("Put {text:?} through {id} was not acknowledged: {e}"),
                }
            }
            Job::Get(reply) => {
                let invoked = Instant::now();
                let result = session.get_all().await.map(|(_, log)| log);
                if let Ok(log) = &result {
                    history.lock().expect("history").gets.push(GetRecord {
                        via: format!("connection {id}"),
                        invoked,
                        completed: Instant::now(),
                        log: log.clone(),
                    });
                }
                let _ = reply.send(result);
            }
        }
    }
}

/// Runs one scenario file and checks its history.
pub async fn run_file(opts: &HarnessOptions, file: &Path) -> Outcome {
    let fail = |msg: String| Outcome {
        failures: vec![msg],
        setup_failed: true,
        acked: 0,
        sent: 0,
        gets: 0,
        kept: None,
    };
    let actions = match load(file) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let data = match tempfile::Builder::new().prefix("harness-").tempdir() {
        Ok(d) => d,
        Err(e) => return fail(format!("cannot create a temporary directory: {e}")),
    };
    let tls = if opts.insecure {
        None
    } else {
        let dir = data.path().join("tls");
        let made = DevPki::new("harness CA").and_then(|pki| {
            pki.write_ca(&dir)?;
            let client = ClientTls::load(&dir.join("ca.pem"), None)?;
            Ok((pki, client))
        });
        match made {
            Ok(t) => Some(t),
            Err(e) => return fail(format!("cannot make certificates: {e}")),
        }
    };
    let mut h = Harness {
        opts,
        data: data.path().to_path_buf(),
        children: BTreeMap::new(),
        client_ports: HashMap::new(),
        started: HashMap::new(),
        rejoining: Default::default(),
        peer_ports: Vec::new(),
        server_ports: BTreeMap::new(),
        conns: BTreeMap::new(),
        workers: Vec::new(),
        history: Arc::new(Mutex::new(History::default())),
        session_base: random_client_id() & !0xFFFF_FFFF,
        sessions: 0,
        count: 0,
        book: actions
            .iter()
            .map(|a| match a {
                Action::Start { count, .. } => *count,
                Action::AddServer { id, .. } => id + 1,
                _ => 0,
            })
            .max()
            .unwrap_or(0),
        reconfigures: actions
            .iter()
            .any(|a| matches!(a, Action::AddServer { .. } | Action::RemoveServer { .. })),
        members: Default::default(),
        joined: Default::default(),
        tls,
    };
    let mut failures = Vec::new();
    let mut setup_failed = false;
    for (n, action) in actions.iter().enumerate() {
        crate::say!("Executing command {action:?}");
        if let Err(e) = h.step(action).await {
            setup_failed = matches!(
                e,
                StepError::PortInUse { .. }
                    | StepError::ServerExited { .. }
                    | StepError::Spawn { .. }
                    | StepError::FreePort(_)
                    | StepError::ServerLog { .. }
            );
            failures.push(format!("step {} ({action:?}): {e}", n + 1));
            break;
        }
    }
    // Let queued puts finish (each is bounded by the request deadline).
    h.conns.clear();
    for w in std::mem::take(&mut h.workers) {
        let _ = w.await;
    }
    if failures.is_empty() {
        match h.finals().await {
            Ok(finals) => {
                let history = h.history.lock().expect("history").clone();
                for (name, violations) in check::check_all(&history, &finals) {
                    for v in violations {
                        failures.push(format!("{name}: {v}"));
                    }
                }
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    let ids: Vec<usize> = h.children.keys().copied().collect();
    for id in ids {
        h.crash(id).await;
    }
    let history = h.history.lock().expect("history").clone();
    let kept = if !failures.is_empty() && opts.keep_failed {
        let path = data.keep();
        Some(path)
    } else {
        None
    };
    Outcome {
        failures,
        setup_failed,
        acked: history.puts.iter().filter(|p| p.acked.is_some()).count(),
        sent: history.puts.iter().filter(|p| p.invoked.is_some()).count(),
        gets: history.gets.len(),
        kept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_scenario_format_parses_with_unknown_keys_ignored() {
        let text = r#"[
            {"type":"Start","id":2,"port":12002,"count":3,"note":"ignored"},
            {"type":"Connect","id":2},
            {"type":"Put","id":2,"message":"ping"},
            {"type":"Get","id":2},
            {"type":"Disconnect","id":2},
            {"type":"Crash","id":2},
            {"type":"Sleep","ms":250}
        ]"#;
        let actions = parse(text).unwrap();
        assert_eq!(actions.len(), 7);
        assert_eq!(
            actions[2],
            Action::Put {
                id: 2,
                message: "ping".into()
            }
        );
        assert_eq!(
            format!("{:?}", actions[2]),
            r#"Put { id: 2, message: "ping" }"#
        );
    }

    #[test]
    fn bad_scenarios_are_errors_with_a_position() {
        for bad in [
            r#"[{"type":"Start","id":1}]"#,
            r#"[{"type":"Jump"}]"#,
            r#"[{"type":"Sleep","ms":-5}]"#,
            r#"{"type":"Sleep","ms":5}"#,
            "not json",
            "[]",
            " [ ] ",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("line"), "{err}");
        }
    }
}
