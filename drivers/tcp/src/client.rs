//! A client session: sends one request at a time under `(client, seq)` and
//! retries it — same session, same sequence number — until it is answered,
//! moving to another server when one is slow or gone. Every binary (the chat
//! client, the harness, the kill test, the benchmark) talks through this.

use crate::chat::{ChatOp, ChatOutput};
use crate::wire::{self, Outcome, Request, Response};
use futures::{SinkExt, StreamExt};
use paxos_core::{ClientId, Slot};
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
    /// No answer within the deadline. The request may still be executed
    /// later (at most once); retrying it is safe only under the same seq.
    #[error("no answer after {attempts} attempts in {elapsed_ms} ms ({last})")]
    Timeout {
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed_ms: u128,
        /// The last thing that went wrong.
        last: String,
    },
    /// The server refused the request for good.
    #[error("refused: {0}")]
    Rejected(String),
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
    pub fn load(&self) -> Result<u64, String> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                format!(
                    "{}: not a sequence number ({e}); delete it only if no command of this id is in flight",
                    self.path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(1),
            Err(e) => Err(format!("{}: {e}", self.path.display())),
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

/// One client session.
#[derive(Debug)]
pub struct Session {
    client: ClientId,
    next_seq: u64,
    seq_file: Option<SeqFile>,
    servers: Vec<SocketAddr>,
    current: usize,
    conn: Option<Framed<TcpStream, LengthDelimitedCodec>>,
    opts: SessionOptions,
    retries: u64,
    follow_leader: bool,
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

impl Session {
    /// A session `client` whose next request gets `next_seq`, talking to
    /// `servers` (listed in server-id order, so leader hints can be followed).
    pub fn new(
        client: ClientId,
        next_seq: u64,
        servers: Vec<SocketAddr>,
        opts: SessionOptions,
    ) -> Self {
        Session {
            client,
            next_seq: next_seq.max(1),
            seq_file: None,
            servers,
            current: 0,
            conn: None,
            opts,
            retries: 0,
            follow_leader: true,
        }
    }

    /// Whether to move to the server that answers name as leader (default
    /// on; needs `servers` in id order). Off keeps the session where it is,
    /// so its requests are forwarded.
    pub fn follow_leader(mut self, on: bool) -> Self {
        self.follow_leader = on;
        self
    }

    /// Records every sequence number in `file` before it is used.
    pub fn with_seq_file(mut self, file: SeqFile) -> Self {
        self.seq_file = Some(file);
        self
    }

    /// The session id.
    pub fn client_id(&self) -> ClientId {
        self.client
    }

    /// The sequence number the next request will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Attempts that had to be repeated so far.
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// The server currently in use.
    pub fn server(&self) -> Option<SocketAddr> {
        self.servers.get(self.current).copied()
    }

    /// Talks to `addr` only from now on, connecting at once.
    pub async fn connect(&mut self, addr: SocketAddr) -> std::io::Result<()> {
        self.servers = vec![addr];
        self.current = 0;
        self.conn = None;
        let stream = tokio::time::timeout(self.opts.attempt_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        let _ = stream.set_nodelay(true);
        self.conn = Some(Framed::new(stream, wire::client_codec()));
        Ok(())
    }

    /// Moves to the next server in the list (to spread sessions over a cluster).
    pub fn rotate_server(&mut self) {
        if !self.servers.is_empty() {
            self.current = (self.current + 1) % self.servers.len();
            self.conn = None;
        }
    }

    /// Forgets every server.
    pub fn disconnect(&mut self) {
        self.servers.clear();
        self.conn = None;
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
    /// retrying under the same number until the deadline.
    pub async fn call(&mut self, op: ChatOp) -> Result<(Slot, ChatOutput), CallError> {
        if self.servers.is_empty() {
            return Err(CallError::NotConnected);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(file) = &self.seq_file {
            file.store(self.next_seq)
                .map_err(|source| CallError::SeqFile {
                    path: file.path().to_path_buf(),
                    source,
                })?;
        }
        let frame = wire::encode(&Request {
            client: self.client,
            seq,
            op,
        });
        let started = Instant::now();
        let deadline = started + self.opts.deadline;
        let mut attempts = 0;
        let mut last = String::from("no attempt made");
        loop {
            let now = Instant::now();
            if now >= deadline || (attempts > 0 && self.servers.is_empty()) {
                return Err(CallError::Timeout {
                    attempts,
                    elapsed_ms: started.elapsed().as_millis(),
                    last,
                });
            }
            if attempts > 0 {
                self.retries += 1;
            }
            attempts += 1;
            let attempt_end = (now + self.opts.attempt_timeout).min(deadline);
            match self.attempt(&frame, seq, attempt_end).await {
                Ok((Outcome::Done { slot, output }, leader)) => {
                    if self.follow_leader {
                        if let Some(i) = leader
                            .map(|l| l.0 as usize)
                            .filter(|&i| i < self.servers.len() && i != self.current)
                        {
                            // Next request goes straight to the leader.
                            self.current = i;
                            self.conn = None;
                        }
                    }
                    return Ok((slot, output));
                }
                Ok((Outcome::Rejected { reason }, _)) => return Err(CallError::Rejected(reason)),
                Ok((Outcome::Retry { leader, reason }, _)) => {
                    last = format!("server asked to retry: {reason}");
                    if let Some(i) = leader
                        .map(|l| l.0 as usize)
                        .filter(|&i| i < self.servers.len())
                    {
                        if i != self.current {
                            self.current = i;
                            self.conn = None;
                        }
                    }
                    let pause = self.opts.retry_pause * attempts.min(10);
                    tokio::time::sleep_until((Instant::now() + pause).min(deadline).into()).await;
                }
                Err(e) => {
                    last = e;
                    // A fresh connection elsewhere: this server is down or slow.
                    self.conn = None;
                    if self.servers.len() > 1 {
                        self.current = (self.current + 1) % self.servers.len();
                    }
                    if attempts % self.servers.len().max(1) as u32 == 0 {
                        let pause = self.opts.retry_pause * attempts.min(10);
                        tokio::time::sleep_until((Instant::now() + pause).min(deadline).into())
                            .await;
                    }
                }
            }
        }
    }

    async fn attempt(
        &mut self,
        frame: &bytes::Bytes,
        seq: u64,
        until: Instant,
    ) -> Result<(Outcome, Option<paxos_core::NodeId>), String> {
        let until = tokio::time::Instant::from_std(until);
        if self.conn.is_none() {
            let addr = self.servers[self.current];
            let stream = tokio::time::timeout_at(until, TcpStream::connect(addr))
                .await
                .map_err(|_| format!("connecting to {addr} timed out"))?
                .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
            let _ = stream.set_nodelay(true);
            self.conn = Some(Framed::new(stream, wire::client_codec()));
        }
        let addr = self.servers[self.current];
        let conn = self.conn.as_mut().expect("connected above");
        tokio::time::timeout_at(until, conn.send(frame.clone()))
            .await
            .map_err(|_| format!("sending to {addr} timed out"))?
            .map_err(|e| format!("sending to {addr} failed: {e}"))?;
        loop {
            let frame = tokio::time::timeout_at(until, conn.next())
                .await
                .map_err(|_| format!("{addr} did not answer in time"))?
                .ok_or_else(|| format!("{addr} closed the connection"))?
                .map_err(|e| format!("reading from {addr} failed: {e}"))?;
            let response: Response = wire::decode(&frame)
                .map_err(|e| format!("{addr} sent an undecodable frame: {e}"))?;
            if response.client == self.client && response.seq == seq {
                return Ok((response.result, response.leader));
            }
            // An answer to an earlier attempt of an earlier request: stale.
        }
    }
}
