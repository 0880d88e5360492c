//! A client session over TCP: the core's session machine ([`paxos_core::Session`])
//! decides every retry — same session, same sequence number — every move to
//! another server and every back-off; this file only connects, sends and
//! reads. Every binary (the chat client, the harness, the kill test, the
//! benchmark) talks through this.

use crate::chat::{ChatOp, ChatOutput};
use crate::server::TICK_MS;
use crate::tls::{ClientTls, Stream};
use crate::wire::{self, Outcome, Request, Response};
use futures::{SinkExt, StreamExt};
use paxos_core::{
    ClientId, DropReason, Failure, NodeId, Session as CoreSession, SessionAction, SessionConfig,
    SessionInput, Slot,
};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// How patient a session is.
#[derive(Clone, Copy, Debug)]
pub struct SessionOptions {
    /// How long one attempt waits for its answer before trying again.
    pub attempt_timeout: Duration,
    /// How long a request may take in all, retries included.
    pub deadline: Duration,
    /// Pause before retrying a request the server asked us to retry.
    pub retry_pause: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            attempt_timeout: Duration::from_millis(1000),
            deadline: Duration::from_secs(30),
            retry_pause: Duration::from_millis(20),
        }
    }
}

/// Why a request did not complete.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No answer within the deadline while some attempt may have reached a
    /// leader: it may still be applied (at most once). Retrying it is safe
    /// only under the same sequence number.
    #[error(
        "outcome unknown: it may still be applied ({attempts} attempts in {elapsed_ms} ms; {last})"
    )]
    Unknown {
        /// Attempts made.
        attempts: u64,
        /// Time spent.
        elapsed_ms: u128,
        /// The last thing that went wrong.
        last: String,
    },
    /// Every attempt was refused before it was proposed, until the
    /// deadline: it was not applied and never will be.
    #[error("refused (not applied): {0}")]
    Refused(String),
    /// The server refused the request for good (too large, or superseded).
    #[error("rejected: {0}")]
    Rejected(String),
    /// Fewer than a majority of the servers could be reached, so no leader
    /// can be elected; `outcome` says whether the request may still apply.
    #[error("no quorum: only {reachable} of {total} servers reachable ({outcome})")]
    NoQuorum {
        /// Servers this client could connect to.
        reachable: usize,
        /// Servers it knows.
        total: usize,
        /// "not applied" or "outcome unknown: it may still be applied".
        outcome: &'static str,
    },
    /// There is no server to talk to.
    #[error("not connected to a server")]
    NotConnected,
    /// The sequence-number file could not be written.
    #[error("{path}: cannot record the session's sequence number: {source}")]
    SeqFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A sequence-number file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SeqFileError {
    /// It holds something else than a number.
    #[error("{path}: not a sequence number; delete it only if no command of this id is in flight")]
    NotANumber {
        /// The file.
        path: PathBuf,
    },
    /// It could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Remembers a session's next sequence number across client restarts, so a
/// restarted client with a fixed id never reuses a number (which the
/// replicas would answer from their cache instead of executing).
#[derive(Debug, Clone)]
pub struct SeqFile {
    path: PathBuf,
}

impl SeqFile {
    /// A sequence file at `path` (created on first use).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SeqFile { path: path.into() }
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next unused sequence number (1 if the file does not exist).
    pub fn load(&self) -> Result<u64, SeqFileError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .map_err(|_| SeqFileError::NotANumber {
                    path: self.path.clone(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(1),
            Err(source) => Err(SeqFileError::Read {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Durably records that numbers below `next` are used.
    pub fn store(&self, next: u64) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{next}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// A page of the log, as one `Get` returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The slot the `Get` was executed in.
    pub slot: Slot,
    /// Index of `messages[0]`.
    pub offset: u64,
    /// Length of the log at that slot.
    pub total: u64,
    /// The messages.
    pub messages: Vec<String>,
}

/// Where a session tells its user something while a request is pending.
type NoticeFn = Box<dyn FnMut(&str) + Send>;

struct Notices(Option<NoticeFn>);

impl std::fmt::Debug for Notices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Notices(on)"
        } else {
            "Notices(off)"
        })
    }
}

/// One client session over TCP: the core's [`paxos_core::Session`] decides
/// every retry, redirect and back-off; this only connects, sends and reads.
#[derive(Debug)]
pub struct Session {
    core: CoreSession<ChatOp, ChatOutput>,
    seq_file: Option<SeqFile>,
    /// Client addresses of the servers, by server id.
    servers: Vec<SocketAddr>,
    /// Whether the last attempt to reach each server connected.
    reachable: Vec<Option<bool>>,
    /// The open connection and the server it goes to.
    conn: Option<(NodeId, Framed<Stream, LengthDelimitedCodec>)>,
    opts: SessionOptions,
    follow_leader: bool,
    notices: Notices,
    /// TLS to the servers, or plain TCP.
    tls: Option<ClientTls>,
}

/// A random 64-bit session id from the operating system's generator.
pub fn random_client_id() -> ClientId {
    use rand_core::{OsRng, TryRngCore};
    OsRng.try_next_u64().unwrap_or_else(|_| {
        // No OS randomness: fall back on time and pid, which differ per launch.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t ^ (u64::from(std::process::id()) << 32)
    })
}

fn ticks(d: Duration) -> u32 {
    u32::try_from(d.as_millis().div_ceil(u128::from(TICK_MS))).unwrap_or(u32::MAX)
}

/// What one wait for the outstanding request brought.
enum Heard {
    Tick,
    Response(Response),
    Lost(String),
}

impl Session {
    /// A session `client` whose next request gets `next_seq`, talking to
    /// `servers` (listed in server-id order, so leader hints can be followed).
    pub fn new(
        client: ClientId,
        next_seq: u64,
        servers: Vec<SocketAddr>,
        opts: SessionOptions,
    ) -> Self {
        let core = core_session(client, next_seq, servers.len(), 0, &opts, true);
        Session {
            core,
            seq_file: None,
            reachable: vec![None; servers.len()],
            servers,
            conn: None,
            opts,
            follow_leader: true,
            notices: Notices(None),
            tls: None,
        }
    }

    /// Calls `notice` with news about a pending request that the user may
    /// act on at once (today: no quorum reachable), instead of leaving them
    /// waiting for the deadline.
    pub fn with_notices(mut self, notice: impl FnMut(&str) + Send + 'static) -> Self {
        self.notices = Notices(Some(Box::new(notice)));
        self
    }

    /// Records whether server `id` could be reached. Returns how many of
    /// the servers are known reachable when every server's state is known
    /// and they are not a majority (`None` otherwise, or with one server,
    /// where the client cannot tell).
    fn reached(&mut self, id: NodeId, ok: bool) -> Option<usize> {
        if let Some(r) = self.reachable.get_mut(id.0 as usize) {
            *r = Some(ok);
        }
        self.no_quorum()
    }

    fn no_quorum(&self) -> Option<usize> {
        let total = self.reachable.len();
        if total < 2 || self.reachable.iter().any(Option::is_none) {
            return None;
        }
        let up = self.reachable.iter().filter(|r| **r == Some(true)).count();
        (up * 2 <= total).then_some(up)
    }

    /// Talks TLS to the servers (checking their certificates against the
    /// cluster CA) with `Some`, plain TCP with `None` (the default).
    pub fn with_tls(mut self, tls: Option<ClientTls>) -> Self {
        self.tls = tls;
        self.conn = None;
        self
    }

    /// Connects to `addr` (and completes the TLS handshake), within the
    /// attempt timeout. The future holds no borrow of the session (whose
    /// notice callback need not be `Sync`), so a session can be moved into
    /// a spawned task.
    fn open(
        &self,
        addr: SocketAddr,
    ) -> impl std::future::Future<Output = std::io::Result<Stream>> + Send + 'static {
        let (tls, timeout) = (self.tls.clone(), self.opts.attempt_timeout);
        async move {
            let connect = async {
                let tcp = TcpStream::connect(addr).await?;
                let _ = tcp.set_nodelay(true);
                match &tls {
                    None => Ok(Stream::Plain(tcp)),
                    Some(tls) => tls.connect(tcp).await,
                }
            };
            tokio::time::timeout(timeout, connect).await.map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })?
        }
    }

    /// Whether to move to the server that answers name as leader (default
    /// on; needs `servers` in id order). Off keeps the session where it is,
    /// so its requests are forwarded.
    pub fn follow_leader(mut self, on: bool) -> Self {
        self.follow_leader = on;
        self.rebuild(0);
        self
    }

    /// Records every sequence number in `file` before it is used.
    pub fn with_seq_file(mut self, file: SeqFile) -> Self {
        self.seq_file = Some(file);
        self
    }

    /// Starts the core session again with the servers tried from index
    /// `first` on (only while nothing is outstanding).
    fn rebuild(&mut self, first: usize) {
        self.core = core_session(
            self.core.client(),
            self.core.next_seq(),
            self.servers.len(),
            first,
            &self.opts,
            self.follow_leader,
        );
    }

    /// The session id.
    pub fn client_id(&self) -> ClientId {
        self.core.client()
    }

    /// The sequence number the next request will carry.
    pub fn next_seq(&self) -> u64 {
        self.core.next_seq()
    }

    /// Attempts that had to be repeated so far.
    pub fn retries(&self) -> u64 {
        self.core.retries()
    }

    /// The server currently in use.
    pub fn server(&self) -> Option<SocketAddr> {
        let id = self.core.server()?;
        self.servers.get(id.0 as usize).copied()
    }

    /// Talks to `addr` only from now on, connecting at once.
    pub async fn connect(&mut self, addr: SocketAddr) -> std::io::Result<()> {
        self.servers = vec![addr];
        self.reachable = vec![None];
        self.conn = None;
        self.rebuild(0);
        let stream = self.open(addr).await?;
        self.conn = Some((NodeId(0), Framed::new(stream, wire::client_codec())));
        Ok(())
    }

    /// Moves to the next server in the list (to spread sessions over a cluster).
    pub fn rotate_server(&mut self) {
        let next = self.core.server().map_or(0, |id| id.0 as usize + 1);
        self.conn = None;
        self.rebuild(next % self.servers.len().max(1));
    }

    /// Forgets every server.
    pub fn disconnect(&mut self) {
        self.servers.clear();
        self.reachable.clear();
        self.conn = None;
        self.rebuild(0);
    }
    /// Appends `text`; returns the slot and the message's index in the log.
    pub async fn put(&mut self, text: &str) -> Result<(Slot, u64), CallError> {
        match self.call(ChatOp::Put(text.to_string())).await? {
            (slot, ChatOutput::Appended { index }) => Ok((slot, index)),
            (_, other) => Err(CallError::Rejected(format!(
                "unexpected answer to a put: {other:?}"
            ))),
        }
    }

    /// Asks the leader to hand the lead to server `to` (a planned restart
    /// of the leader); returns once it has started. The session finds the
    /// leader as for any request. The lead has moved when `to` answers as
    /// leader, normally within one heartbeat round.
    pub async fn transfer(&mut self, to: u32) -> Result<u32, CallError> {
        match self.call(ChatOp::Transfer { to }).await? {
            (_, ChatOutput::HandingOff { to }) => Ok(to),
            (_, other) => Err(CallError::Rejected(format!(
                "unexpected answer to a transfer: {other:?}"
            ))),
        }
    }

    /// Asks the leader to add server `id`, whose peer address is `addr`,
    /// to the members; returns the new configuration's number and members
    /// once the leader applied the change.
    pub async fn add_server(&mut self, id: u32, addr: &str) -> Result<(u64, Vec<u32>), CallError> {
        let op = ChatOp::AddServer {
            id,
            addr: addr.to_string(),
        };
        self.reconfigure(op).await
    }

    /// Asks the leader to remove server `id` from the members.
    pub async fn remove_server(&mut self, id: u32) -> Result<(u64, Vec<u32>), CallError> {
        self.reconfigure(ChatOp::RemoveServer { id }).await
    }

    async fn reconfigure(&mut self, op: ChatOp) -> Result<(u64, Vec<u32>), CallError> {
        match self.call(op).await? {
            (_, ChatOutput::Reconfigured { epoch, members }) => Ok((epoch, members)),
            (_, other) => Err(CallError::Rejected(format!(
                "unexpected answer to a membership change: {other:?}"
            ))),
        }
    }

    /// Reads one page of the log from `offset`.
    pub async fn get_page(&mut self, offset: u64) -> Result<Page, CallError> {
        match self.call(ChatOp::Get { offset }).await? {
            (
                slot,
                ChatOutput::Page {
                    offset,
                    total,
                    messages,
                },
            ) => Ok(Page {
                slot,
                offset,
                total,
                messages,
            }),
            (_, other) => Err(CallError::Rejected(format!(
                "unexpected answer to a get: {other:?}"
            ))),
        }
    }

    /// Reads the whole log, page by page. The log only grows, so the pages
    /// join up into the log as it stood at the last page's slot.
    pub async fn get_all(&mut self) -> Result<(Slot, Vec<String>), CallError> {
        let mut log = Vec::new();
        loop {
            let page = self.get_page(log.len() as u64).await?;
            let done =
                page.messages.is_empty() || page.offset + page.messages.len() as u64 >= page.total;
            log.extend(page.messages);
            if done {
                return Ok((page.slot, log));
            }
        }
    }

    /// Sends `op` under the next sequence number and waits for its outcome,
    /// retrying under the same number until the deadline, as the core's
    /// session decides.
    pub async fn call(&mut self, op: ChatOp) -> Result<(Slot, ChatOutput), CallError> {
        if self.servers.is_empty() {
            return Err(CallError::NotConnected);
        }
        let seq = self.core.next_seq();
        if let Some(file) = &self.seq_file {
            file.store(seq + 1).map_err(|source| CallError::SeqFile {
                path: file.path().to_path_buf(),
                source,
            })?;
        }
        let started = Instant::now();
        let attempts_before = self.core.attempts();
        let mut last = String::from("no answer yet");
        let mut told_no_quorum = false;
        let mut actions = self.core.step(SessionInput::Submit(op));
        // The first tick one period from now. (A plain `interval` ticks at
        // once, and awaiting that tick waits for the timer driver's next
        // turn: about a millisecond added to every request.)
        let period = Duration::from_millis(TICK_MS);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // An unreachable server's follow-up (the next server) lands in
            // `actions` again: perform everything before waiting.
            while let Some(action) = (!actions.is_empty()).then(|| actions.remove(0)) {
                match action {
                    SessionAction::Send { to, command } => {
                        let to = to.unwrap_or(NodeId(0));
                        let request = Request {
                            client: command.client,
                            seq: command.seq,
                            op: command.op,
                        };
                        let result = self.send(to, &request).await;
                        // Connected (whatever happened next) or not.
                        let connected = !matches!(result, Err((_, false)));
                        if let Some(up) = self.reached(to, connected) {
                            if !told_no_quorum {
                                told_no_quorum = true;
                                let total = self.servers.len();
                                self.notice(&format!(
                                    "no quorum: only {up} of {total} servers reachable; \
                                     the request waits for a majority until its deadline"
                                ));
                            }
                        }
                        if let Err((e, sent)) = result {
                            last = e;
                            actions.extend(self.core.step(SessionInput::Unreachable { seq, sent }));
                        }
                    }
                    SessionAction::Done { slot, output, .. } => return Ok((slot, output)),
                    SessionAction::Failed { failure, .. } => {
                        let attempts = self.core.attempts() - attempts_before;
                        let error = failed(failure, attempts, started, last);
                        return Err(match (self.no_quorum(), &error) {
                            (
                                Some(reachable),
                                CallError::Refused(_) | CallError::Unknown { .. },
                            ) => CallError::NoQuorum {
                                reachable,
                                total: self.servers.len(),
                                outcome: if matches!(error, CallError::Refused(_)) {
                                    "not applied"
                                } else {
                                    "outcome unknown: it may still be applied"
                                },
                            },
                            _ => error,
                        });
                    }
                }
            }
            let input = match self.hear(seq, &mut tick).await {
                Heard::Tick => SessionInput::Tick,
                Heard::Lost(e) => {
                    last = e;
                    self.conn = None;
                    SessionInput::Unreachable { seq, sent: true }
                }
                Heard::Response(r) => match r.result {
                    Outcome::Done { slot, output } => SessionInput::Reply {
                        seq,
                        slot,
                        output,
                        leader: r.leader,
                    },
                    Outcome::Refused { reason } => {
                        last = format!("server refused: {}", describe_refusal(reason));
                        SessionInput::Refused { seq, reason }
                    }
                    Outcome::Rejected { reason } => {
                        self.core.step(SessionInput::Cancel { seq });
                        return Err(CallError::Rejected(reason));
                    }
                },
            };
            actions.extend(self.core.step(input));
        }
    }

    fn notice(&mut self, text: &str) {
        if let Some(f) = &mut self.notices.0 {
            f(text);
        }
    }

    /// Sends one attempt to server `to`, connecting first if needed. On
    /// failure, says whether the request may have left.
    async fn send(&mut self, to: NodeId, request: &Request) -> Result<(), (String, bool)> {
        let addr = *self
            .servers
            .get(to.0 as usize)
            .ok_or_else(|| (format!("no address for server {}", to.0), false))?;
        if self.conn.as_ref().is_none_or(|(id, _)| *id != to) {
            self.conn = None;
            let stream = self
                .open(addr)
                .await
                .map_err(|e| (format!("cannot connect to {addr}: {e}"), false))?;
            self.conn = Some((to, Framed::new(stream, wire::client_codec())));
        }
        let Some((_, conn)) = self.conn.as_mut() else {
            return Err(("not connected".into(), false));
        };
        let sent =
            tokio::time::timeout(self.opts.attempt_timeout, conn.send(wire::encode(request))).await;
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.conn = None;
                Err((format!("sending to {addr} failed: {e}"), true))
            }
            Err(_) => {
                self.conn = None;
                Err((format!("sending to {addr} timed out"), true))
            }
        }
    }

    /// Waits for the next tick or for an answer to request `seq` on the open
    /// connection (answers to earlier requests are stale and skipped).
    async fn hear(&mut self, seq: u64, tick: &mut tokio::time::Interval) -> Heard {
        let client = self.core.client();
        let Some((id, conn)) = self.conn.as_mut() else {
            tick.tick().await;
            return Heard::Tick;
        };
        let addr = self.servers.get(id.0 as usize).copied();
        loop {
            tokio::select! {
                _ = tick.tick() => return Heard::Tick,
                frame = conn.next() => {
                    let frame = match frame {
                        None => return Heard::Lost(format!("{addr:?} closed the connection")),
                        Some(Err(e)) => return Heard::Lost(format!("reading from {addr:?} failed: {e}")),
                        Some(Ok(f)) => f,
                    };
                    match wire::decode::<Response>(&frame) {
                        Ok(r) if r.client == client && r.seq == seq => return Heard::Response(r),
                        Ok(_) => {} // an answer to an earlier attempt of an earlier request
                        Err(e) => return Heard::Lost(format!("{addr:?} sent an undecodable frame: {e}")),
                    }
                }
            }
        }
    }
}

/// The core session of client `client`, trying `servers` servers (ids
/// `0..servers`) from index `first` on.
fn core_session(
    client: ClientId,
    next_seq: u64,
    servers: usize,
    first: usize,
    opts: &SessionOptions,
    follow_leader: bool,
) -> CoreSession<ChatOp, ChatOutput> {
    let mut ids: Vec<NodeId> = (0..servers as u32).map(NodeId).collect();
    ids.rotate_left(first.min(servers));
    let mut config = SessionConfig::new(client, ids);
    config.first_seq = next_seq.max(1);
    config.attempt_ticks = ticks(opts.attempt_timeout).max(1);
    config.deadline_ticks = Some(u64::from(ticks(opts.deadline).max(1)));
    config.backoff_min_ticks = ticks(opts.retry_pause).max(1);
    config.backoff_max_ticks = config.attempt_ticks.max(config.backoff_min_ticks);
    config.follow_leader = follow_leader;
    config.seed = client ^ next_seq;
    CoreSession::new(config).expect("every tick count is at least 1")
}

fn describe_refusal(reason: DropReason) -> String {
    match reason {
        DropReason::NotLeader { leader: Some(l) } => format!("not the leader (server {} is)", l.0),
        DropReason::NotLeader { leader: None } => "not the leader, and no leader known".into(),
        DropReason::Overloaded => "overloaded".into(),
        DropReason::Superseded => "superseded".into(),
    }
}

fn failed(failure: Failure, attempts: u64, started: Instant, last: String) -> CallError {
    match failure {
        Failure::Refused { reason } => CallError::Refused(describe_refusal(reason)),
        Failure::Superseded => CallError::Rejected(
            "superseded: the session already moved past this sequence number".into(),
        ),
        Failure::Unknown | Failure::Busy | Failure::Cancelled => CallError::Unknown {
            attempts,
            elapsed_ms: started.elapsed().as_millis(),
            last,
        },
    }
}
