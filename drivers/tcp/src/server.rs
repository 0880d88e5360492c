//! One chat server: a `paxos_core::Server` driven over TCP.
//!
//! Three pieces, and no protocol logic in any of them:
//! * **I/O tasks** (tokio): a listener for peers and one for clients; one
//!   reader per inbound connection that decodes frames into [`Input`]s, one
//!   writer per outbound peer link that reconnects with back-off, and one
//!   writer per client connection.
//! * **The driver loop** ([`run`]): receive inputs (and a tick every
//!   [`TICK_MS`]), `step` the core, and hand the resulting actions, in order,
//!   to the log thread. It never waits for the disk.
//! * **The log thread**: performs actions in order. Every action before the
//!   first `Persist` of what it has gathered goes out at once; then all gathered
//!   records are written and synced with **one** fsync (group commit), and only
//!   then do the sends and replies that followed them go out.

use crate::chat::{Chat, ChatOp, ChatOutput, MESSAGE_MAX_BYTES};
use crate::wal::{self, Wal, WalEntry, WalError};
use crate::wire::{self, Outcome, PeerFrame, Request, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use paxos_core::{
    Action, ClientId, Command, Config, Destination, DropReason, Event, Input, NodeId, Server,
};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tracing::{debug, info, warn};

/// Period of the core's logical clock.
pub const TICK_MS: u64 = 10;
/// Inputs the driver takes before stepping them and handing the actions over.
const DRIVER_BATCH_MAX: usize = 4096;
/// Frames queued for one peer link; more are dropped (the core retransmits).
const PEER_QUEUE_FRAMES: usize = 65_536;
/// Frames queued for one client connection; more are dropped (it retries).
const CLIENT_QUEUE_FRAMES: usize = 4096;
/// Inputs queued for the driver; readers wait when it is full.
const INPUT_QUEUE: usize = 16_384;
/// Client connections open at once; more are accepted and closed at once.
const CLIENT_CONNECTIONS_MAX: usize = 4096;
/// Inbound peer connections open at once (a restarting peer briefly has two).
const PEER_CONNECTIONS_MAX: usize = 256;
/// Sessions one client connection may open (bounds the route table).
const SESSIONS_PER_CONNECTION_MAX: usize = 4096;
/// First and largest pause between attempts to reach a peer.
const RECONNECT_MIN_MS: u64 = 20;
const RECONNECT_MAX_MS: u64 = 1000;
/// A connection must say hello within this long.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// How to run one server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// This server's id, `0..peers.len()`.
    pub id: u32,
    /// Peer address of every server, indexed by id (our own included).
    pub peers: Vec<SocketAddr>,
    /// Where to accept peer connections (usually `peers[id]`).
    pub peer_listen: SocketAddr,
    /// Where to accept client connections.
    pub client_listen: SocketAddr,
    /// Failure-detection timeout in ms; see [`core_config`].
    pub timeout_ms: u64,
    /// Directory of the write-ahead log.
    pub data_dir: PathBuf,
    /// Compact the log once it has grown by this much since the last snapshot
    /// (and by at least the snapshot's size, so compaction stays linear).
    pub compact_bytes: u64,
    /// Slots of decided history each server keeps to catch peers up (and
    /// acceptors keep before trimming); a peer further behind is sent a snapshot.
    pub retain_slots: u64,
    /// Most commands the leader puts in one slot. A full batch goes out even
    /// while earlier slots are in flight, so smaller batches pipeline more.
    pub batch_max: usize,
    /// Seed for the core's randomised election timeouts.
    pub seed: u64,
}

/// Default of [`ServerOptions::batch_max`].
pub const BATCH_MAX: usize = 256;

/// Default of [`ServerOptions::retain_slots`].
pub const RETAIN_SLOTS: u64 = 16_384;

/// Maps the `-t` timeout onto the core's tick counts, with a [`TICK_MS`] tick:
/// a follower that hears no leader for `timeout` (randomised up to twice that)
/// campaigns; the leader's heartbeat comes every `timeout / 5` and unanswered
/// protocol messages are sent again every `2 * timeout / 5`. A peer that is
/// behind every retained slot is sent a snapshot at most once per `timeout`.
pub fn core_config(id: u32, count: u32, timeout_ms: u64, seed: u64) -> Config {
    let members = (0..count).map(NodeId).collect();
    let mut config = Config::new(NodeId(id), members).with_seed(seed);
    let election = (timeout_ms / TICK_MS).clamp(3, u64::from(u32::MAX / 2)) as u32;
    config.election_timeout_ticks = election;
    config.heartbeat_ticks = (election / 5).max(1);
    config.retransmit_ticks = (election * 2 / 5).max(1);
    config.catchup_ticks = (election / 5).max(1);
    config.snapshot_resend_ticks = election;
    config
}

/// Why a server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The options cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The log could not be opened, read or written.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The log holds records that cannot belong to one history.
    #[error("{path}: the records cannot be replayed: {source}")]
    Recover {
        /// The log.
        path: PathBuf,
        /// What the core found.
        source: paxos_core::RecoverError,
    },
    /// A listener could not be bound.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// "clients" or "peers".
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Counters, printed when the server stops.
#[derive(Debug, Default)]
pub struct Counters {
    /// Peer frames received and decoded.
    pub peer_received: AtomicU64,
    /// Peer frames handed to a link.
    pub peer_sent: AtomicU64,
    /// Peer frames dropped (link down or queue full); the core retransmits.
    pub peer_dropped: AtomicU64,
    /// Client requests received.
    pub requests: AtomicU64,
    /// Responses queued to clients.
    pub responses: AtomicU64,
    /// Responses dropped because the client's queue was full or it left.
    pub responses_dropped: AtomicU64,
    /// Frames that were too long, undecodable, or broke the handshake.
    pub malformed: AtomicU64,
    /// Slots this server decided as leader.
    pub decided: AtomicU64,
    /// Proposals refused (not leader, overloaded, superseded).
    pub refused: AtomicU64,
    /// Messages the core ignored.
    pub ignored: AtomicU64,
    /// Records written to the log.
    pub records: AtomicU64,
    /// fsyncs of the log.
    pub fsyncs: AtomicU64,
    /// Log compactions.
    pub compactions: AtomicU64,
    /// Commands executed by this replica.
    pub executed: AtomicU64,
    /// Snapshots sent to peers that were behind every retained slot.
    pub snapshots_sent: AtomicU64,
    /// Snapshots installed from a peer.
    pub snapshots_installed: AtomicU64,
    /// Connections closed at once because too many were open.
    pub refused_connections: AtomicU64,
}

impl Counters {
    /// One line for humans and scripts.
    pub fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Relaxed);
        format!(
            "sent={} received={} dropped={} decided={} executed={} requests={} responses={} \
             malformed={} refused={} ignored={} records={} fsyncs={} compactions={} snapshots_sent={} snapshots_installed={} \
             refused_connections={}",
            g(&self.peer_sent),
            g(&self.peer_received),
            g(&self.peer_dropped) + g(&self.responses_dropped),
            g(&self.decided),
            g(&self.executed),
            g(&self.requests),
            g(&self.responses),
            g(&self.malformed),
            g(&self.refused),
            g(&self.ignored),
            g(&self.records),
            g(&self.fsyncs),
            g(&self.compactions),
            g(&self.snapshots_sent),
            g(&self.snapshots_installed),
            g(&self.refused_connections),
        )
    }
}

/// What the I/O tasks hand the driver.
#[derive(Debug)]
enum DriverInput {
    Peer { from: NodeId, frame: PeerFrame },
    Client(Command<ChatOp>),
}

/// Where a peer frame goes.
#[derive(Clone, Copy, Debug)]
enum PeerTarget {
    One(NodeId),
    AllOthers,
}

/// An action after encoding, ready for the log thread to perform.
#[derive(Debug)]
enum Effect {
    Peer(PeerTarget, Bytes),
    Client(ClientId, Bytes),
}

/// What the driver hands the log thread, in order.
#[derive(Debug)]
enum Batch {
    /// `pre` may go out at once; `post` only after `records` are synced.
    Actions {
        pre: Vec<Effect>,
        records: Vec<u8>,
        post: Vec<Effect>,
    },
    /// Replace the log by `entries` (snapshot + checkpoint), then perform `after`.
    Compact {
        entries: Vec<WalEntry>,
        after: Vec<Effect>,
    },
}

/// A client connection that holds a session's route.
#[derive(Debug)]
struct Route {
    conn: u64,
    tx: mpsc::Sender<Bytes>,
}

type Routes = Arc<Mutex<HashMap<ClientId, Route>>>;

/// State shared by the tasks of one server.
#[derive(Debug)]
struct Shared {
    id: NodeId,
    count: u32,
    counters: Arc<Counters>,
    routes: Routes,
    input: mpsc::Sender<DriverInput>,
    /// Log size now and right after the last compaction (for the trigger).
    wal_len_bytes: AtomicU64,
    wal_base_bytes: AtomicU64,
    compacting: AtomicBool,
}

/// Runs one server until `shutdown` resolves or the log fails.
///
/// Opens and recovers the log in `opts.data_dir`, binds both listeners, and
/// returns the counters when it stops. Must run inside a tokio runtime.
pub async fn run(
    opts: ServerOptions,
    shutdown: impl Future<Output = ()>,
    counters: Arc<Counters>,
) -> Result<(), ServerError> {
    let count = u32::try_from(opts.peers.len())
        .map_err(|_| ServerError::Config("too many peers".into()))?;
    if opts.id >= count {
        return Err(ServerError::Config(format!(
            "id {} is not below the cluster size {count} (ids run from 0 to {})",
            opts.id,
            count.saturating_sub(1)
        )));
    }
    let mut config = core_config(opts.id, count, opts.timeout_ms, opts.seed);
    config.retain_slots = opts.retain_slots.max(1);
    config.batch_max = opts.batch_max.max(1);
    config
        .validate()
        .map_err(|e| ServerError::Config(e.to_string()))?;
    let (mut log, recovered) = Wal::open(&opts.data_dir)?;
    let log_path = log.path().to_path_buf();
    if let Some((offset, bytes)) = recovered.truncated {
        warn!(
            "{}: cut a torn tail of {bytes} bytes at offset {offset} (a write the crash interrupted before its fsync)",
            log_path.display()
        );
    }
    let meta = WalEntry::Meta {
        id: config.id,
        members: config.members.clone(),
    };
    match &recovered.meta {
        Some((id, members)) if (*id, members) != (config.id, &config.members) => {
            return Err(ServerError::Config(format!(
                "{} belongs to server {} of a {}-server cluster, not server {} of {}; use another --data-dir",
                log_path.display(),
                id.0,
                members.len(),
                opts.id,
                count
            )));
        }
        Some(_) => {}
        None => {
            let mut buf = Vec::new();
            wal::frame(&meta, &mut buf);
            log.append(&buf)?;
            log.sync()?;
        }
    }
    let restored_at = recovered.snapshot.as_ref().map_or(0, |s| s.next_slot);
    let record_count = recovered.records.len();
    let server = match recovered.snapshot {
        Some(snapshot) => Server::restore(config.clone(), snapshot, recovered.records),
        None => Server::recover(config.clone(), Chat::default(), recovered.records),
    }
    .map_err(|source| ServerError::Recover {
        path: log_path.clone(),
        source,
    })?;
    info!(
        "recovered {record_count} records (snapshot at slot {restored_at}) from {}",
        log_path.display()
    );

    let peer_listener = TcpListener::bind(opts.peer_listen)
        .await
        .map_err(|source| ServerError::Bind {
            what: "peers",
            addr: opts.peer_listen,
            source,
        })?;
    let client_listener = TcpListener::bind(opts.client_listen)
        .await
        .map_err(|source| ServerError::Bind {
            what: "clients",
            addr: opts.client_listen,
            source,
        })?;
    info!(
        "server {} listening: clients on {}, peers on {}, log {}",
        opts.id,
        opts.client_listen,
        opts.peer_listen,
        log_path.display()
    );

    let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
    let shared = Arc::new(Shared {
        id: config.id,
        count,
        counters: counters.clone(),
        routes: Arc::new(Mutex::new(HashMap::new())),
        input: input_tx,
        wal_len_bytes: AtomicU64::new(log.len_bytes()),
        wal_base_bytes: AtomicU64::new(log.len_bytes()),
        compacting: AtomicBool::new(false),
    });

    let mut tasks = tokio::task::JoinSet::new();
    let mut links: Vec<Option<mpsc::Sender<Bytes>>> = Vec::new();
    for (j, addr) in opts.peers.iter().enumerate() {
        if j as u32 == opts.id {
            links.push(None);
            continue;
        }
        let (tx, rx) = mpsc::channel(PEER_QUEUE_FRAMES);
        links.push(Some(tx));
        tasks.spawn(peer_link(shared.clone(), NodeId(j as u32), *addr, rx));
    }
    tasks.spawn(accept_loop(
        shared.clone(),
        peer_listener,
        "peer",
        PEER_CONNECTIONS_MAX,
        |shared, stream, addr, _| peer_reader(shared, stream, addr),
    ));
    tasks.spawn(accept_loop(
        shared.clone(),
        client_listener,
        "client",
        CLIENT_CONNECTIONS_MAX,
        |shared, stream, _, n| client_conn(shared, stream, n),
    ));

    let (batch_tx, batch_rx) = std_mpsc::channel();
    let log_thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("wal-{}", opts.id))
            .spawn(move || log_thread(log, batch_rx, links, shared))
            .map_err(|e| ServerError::Config(format!("cannot start the log thread: {e}")))?
    };

    let driver = Driver {
        server,
        shared: shared.clone(),
        batch_tx,
        meta,
        compact_bytes: opts.compact_bytes,
        actions: Vec::new(),
    };
    driver.run(input_rx, shutdown).await;
    tasks.abort_all();
    // The driver dropped its sender: the log thread syncs what it has and ends.
    let result = tokio::task::spawn_blocking(move || log_thread.join())
        .await
        .map_err(|e| ServerError::Config(format!("log thread lost: {e}")))?;
    match result {
        Ok(r) => r,
        Err(_) => Err(ServerError::Config("the log thread panicked".into())),
    }
}

/// The driver loop and what it owns.
struct Driver {
    server: Server<Chat>,
    shared: Arc<Shared>,
    batch_tx: std_mpsc::Sender<Batch>,
    meta: WalEntry,
    compact_bytes: u64,
    actions: Vec<Action<ChatOp, ChatOutput>>,
}

impl Driver {
    /// Receive → step → hand actions over, until shutdown or a dead log thread.
    async fn run(
        mut self,
        mut input: mpsc::Receiver<DriverInput>,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut inputs = Vec::with_capacity(DRIVER_BATCH_MAX);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = tick.tick() => self.tick(),
                n = input.recv_many(&mut inputs, DRIVER_BATCH_MAX) => {
                    if n == 0 {
                        break;
                    }
                    for i in inputs.drain(..) {
                        self.input(i);
                    }
                }
            }
            if !self.flush() {
                break; // the log thread stopped: nothing may go out any more
            }
            self.maybe_compact();
        }
        self.publish_counters();
    }

    fn tick(&mut self) {
        self.server.step_into(Input::Tick, &mut self.actions);
    }

    fn input(&mut self, input: DriverInput) {
        match input {
            DriverInput::Client(cmd) => {
                self.server
                    .step_into(Input::Propose(cmd), &mut self.actions);
            }
            DriverInput::Peer {
                from,
                frame: PeerFrame::Paxos(msg),
            } => self
                .server
                .step_into(Input::Receive { from, msg }, &mut self.actions),
            DriverInput::Peer {
                from,
                frame: PeerFrame::Snapshot(snapshot),
            } => {
                let at = snapshot.next_slot;
                let was = self.server.learner().next_slot();
                let installed = self.server.stats().snapshots_installed;
                self.server
                    .install_snapshot_into(*snapshot, &mut self.actions);
                if self.server.stats().snapshots_installed > installed {
                    info!("installed a snapshot from {from} at slot {at} (was at {was})");
                } else {
                    debug!("ignored a snapshot from {from} at slot {at}: we are at {was}");
                }
            }
            DriverInput::Peer {
                frame: PeerFrame::Hello { .. },
                ..
            } => {}
        }
    }

    /// Encodes the gathered actions and hands them to the log thread, keeping
    /// their order. Returns false if the log thread is gone.
    fn flush(&mut self) -> bool {
        if self.actions.is_empty() {
            return true;
        }
        let (mut pre, mut records, mut post) = (Vec::new(), Vec::new(), Vec::new());
        // A trim or an installed snapshot: the log must be compacted before
        // anything that follows goes out.
        let mut compact = false;
        let leader = self.server.leader();
        let routes = self.shared.routes.lock().expect("routes lock");
        let c = &self.shared.counters;
        for action in self.actions.drain(..) {
            let effect = match action {
                Action::Persist(paxos_core::Record::Trimmed(_)) => {
                    // The acceptor forgets slots below the trim point, so the
                    // log must hold a snapshot at least that far along first:
                    // the trim is made durable by a compaction (below), whose
                    // checkpoint carries it, never by a bare record.
                    compact = true;
                    continue;
                }
                Action::PersistSnapshot { .. } => {
                    // The replica jumped to a peer's snapshot, or a trim
                    // follows: the compaction below makes a snapshot at least
                    // this far along the log's new base.
                    compact = true;
                    continue;
                }
                Action::SendSnapshot { to } => {
                    c.snapshots_sent.fetch_add(1, Relaxed);
                    let snapshot = Box::new(self.server.snapshot());
                    Effect::Peer(
                        PeerTarget::One(to),
                        wire::encode(&PeerFrame::Snapshot(snapshot)),
                    )
                }
                Action::Persist(record) => {
                    wal::frame(&WalEntry::Record(record), &mut records);
                    c.records.fetch_add(1, Relaxed);
                    continue;
                }
                Action::Send { to, msg } => {
                    let target = match to {
                        Destination::Node(id) => PeerTarget::One(id),
                        _ => PeerTarget::AllOthers,
                    };
                    Effect::Peer(target, wire::encode(&PeerFrame::Paxos(msg)))
                }
                Action::Reply {
                    client,
                    seq,
                    slot,
                    output,
                } => {
                    if !routes.contains_key(&client) {
                        continue; // another server holds this client
                    }
                    let result = Outcome::Done { slot, output };
                    Effect::Client(
                        client,
                        wire::encode(&Response {
                            client,
                            seq,
                            result,
                            leader,
                        }),
                    )
                }
                Action::Event(Event::Dropped {
                    client,
                    seq,
                    reason,
                }) => {
                    c.refused.fetch_add(1, Relaxed);
                    if !routes.contains_key(&client) {
                        continue;
                    }
                    let result = match reason {
                        DropReason::NotLeader { leader } => Outcome::Retry {
                            leader,
                            reason: "not the leader".into(),
                        },
                        DropReason::Overloaded => Outcome::Retry {
                            leader: None,
                            reason: "overloaded".into(),
                        },
                        DropReason::Superseded => Outcome::Rejected {
                            reason:
                                "superseded: the session already moved past this sequence number"
                                    .into(),
                        },
                    };
                    Effect::Client(
                        client,
                        wire::encode(&Response {
                            client,
                            seq,
                            result,
                            leader,
                        }),
                    )
                }
                Action::Event(Event::Decided { .. }) => {
                    c.decided.fetch_add(1, Relaxed);
                    continue;
                }
                Action::Event(Event::Ignored { kind }) => {
                    // Counted by the core; published from its stats at exit.
                    debug!("ignored a {kind} message");
                    continue;
                }
                Action::Deliver { .. } => continue, // a Server applies its own deliveries
            };
            if records.is_empty() && !compact {
                pre.push(effect);
            } else {
                post.push(effect);
            }
        }
        drop(routes);
        if compact {
            // Everything after the trim or the installed snapshot waits for
            // the compaction; the checkpoint reflects every record of this
            // batch too, and the snapshot reaches at least as far.
            let entries = self.compaction_entries();
            self.shared.compacting.store(true, Relaxed);
            let first = Batch::Actions {
                pre,
                records,
                post: Vec::new(),
            };
            let second = Batch::Compact {
                entries,
                after: post,
            };
            return self.batch_tx.send(first).is_ok() && self.batch_tx.send(second).is_ok();
        }
        self.batch_tx
            .send(Batch::Actions { pre, records, post })
            .is_ok()
    }

    /// A snapshot of the replica plus the records that rebuild the acceptor
    /// and proposer: a complete replacement for the log so far.
    fn compaction_entries(&self) -> Vec<WalEntry> {
        let mut entries = vec![
            self.meta.clone(),
            WalEntry::Snapshot(Box::new(self.server.snapshot())),
        ];
        entries.extend(self.server.checkpoint().into_iter().map(WalEntry::Record));
        entries
    }

    /// Snapshots the replica and compacts the log once it has grown enough.
    fn maybe_compact(&mut self) {
        let len = self.shared.wal_len_bytes.load(Relaxed);
        let base = self.shared.wal_base_bytes.load(Relaxed);
        if len.saturating_sub(base) < self.compact_bytes.max(base)
            || self.shared.compacting.swap(true, Relaxed)
        {
            return;
        }
        let entries = self.compaction_entries();
        info!(
            "compacting the log ({len} bytes) at slot {}",
            self.server.stats().applied_slots
        );
        let _ = self.batch_tx.send(Batch::Compact {
            entries,
            after: Vec::new(),
        });
    }

    fn publish_counters(&self) {
        let stats = self.server.stats();
        let c = &self.shared.counters;
        c.executed.store(stats.executed, Relaxed);
        c.ignored.store(stats.ignored, Relaxed);
        c.snapshots_installed
            .store(stats.snapshots_installed, Relaxed);
    }
}

/// The log thread: performs batches in order with one fsync per round.
fn log_thread(
    mut log: Wal,
    batches: std_mpsc::Receiver<Batch>,
    links: Vec<Option<mpsc::Sender<Bytes>>>,
    shared: Arc<Shared>,
) -> Result<(), ServerError> {
    let perform = |effects: &mut Vec<Effect>| perform(effects, &links, &shared);
    let mut records = Vec::new();
    let mut deferred = Vec::new();
    while let Ok(first) = batches.recv() {
        let mut next = Some(first);
        while let Some(batch) = next.take().or_else(|| batches.try_recv().ok()) {
            match batch {
                Batch::Actions {
                    mut pre,
                    records: r,
                    mut post,
                } => {
                    if records.is_empty() {
                        perform(&mut pre);
                    } else {
                        deferred.append(&mut pre);
                    }
                    records.extend_from_slice(&r);
                    if records.is_empty() {
                        perform(&mut post);
                    } else {
                        deferred.append(&mut post);
                    }
                }
                Batch::Compact { entries, mut after } => {
                    commit(&mut log, &mut records, &shared)?;
                    perform(&mut deferred);
                    log.replace(&entries)?;
                    perform(&mut after);
                    shared.counters.compactions.fetch_add(1, Relaxed);
                    shared.wal_len_bytes.store(log.len_bytes(), Relaxed);
                    shared.wal_base_bytes.store(log.len_bytes(), Relaxed);
                    shared.compacting.store(false, Relaxed);
                }
            }
        }
        commit(&mut log, &mut records, &shared)?;
        perform(&mut deferred);
    }
    Ok(())
}

/// Writes and syncs the gathered records (the group commit).
fn commit(log: &mut Wal, records: &mut Vec<u8>, shared: &Shared) -> Result<(), WalError> {
    if records.is_empty() {
        return Ok(());
    }
    log.append(records)?;
    log.sync()?;
    records.clear();
    shared.counters.fsyncs.fetch_add(1, Relaxed);
    shared.wal_len_bytes.store(log.len_bytes(), Relaxed);
    Ok(())
}

fn perform(effects: &mut Vec<Effect>, links: &[Option<mpsc::Sender<Bytes>>], shared: &Shared) {
    if effects.is_empty() {
        return;
    }
    let c = &shared.counters;
    let send_peer = |link: &Option<mpsc::Sender<Bytes>>, frame: &Bytes| {
        if let Some(tx) = link {
            if tx.try_send(frame.clone()).is_ok() {
                c.peer_sent.fetch_add(1, Relaxed);
            } else {
                c.peer_dropped.fetch_add(1, Relaxed);
            }
        }
    };
    let mut routes = None;
    for effect in effects.drain(..) {
        match effect {
            Effect::Peer(PeerTarget::One(id), frame) => {
                if let Some(link) = links.get(id.0 as usize) {
                    send_peer(link, &frame);
                }
            }
            Effect::Peer(PeerTarget::AllOthers, frame) => {
                for link in links {
                    send_peer(link, &frame);
                }
            }
            Effect::Client(client, frame) => {
                let routes = routes.get_or_insert_with(|| shared.routes.lock().expect("routes"));
                match routes.get(&client).map(|r| r.tx.try_send(frame)) {
                    Some(Ok(())) => c.responses.fetch_add(1, Relaxed),
                    _ => c.responses_dropped.fetch_add(1, Relaxed),
                };
            }
        }
    }
}

/// Keeps one outbound link to peer `to` up, sending what the log thread queues.
async fn peer_link(
    shared: Arc<Shared>,
    to: NodeId,
    addr: SocketAddr,
    mut rx: mpsc::Receiver<Bytes>,
) {
    let mut backoff_ms = RECONNECT_MIN_MS;
    loop {
        // Frames queued while the link was down are stale; the core resends.
        while rx.try_recv().is_ok() {
            shared.counters.peer_dropped.fetch_add(1, Relaxed);
        }
        let stream = match tokio::time::timeout(HELLO_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            _ => {
                tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                backoff_ms = (backoff_ms * 2).min(RECONNECT_MAX_MS);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let mut framed = Framed::new(stream, wire::peer_codec());
        let hello = PeerFrame::Hello {
            version: wire::PROTOCOL_VERSION,
            from: shared.id,
            count: shared.count,
        };
        if framed.send(wire::encode(&hello)).await.is_err() {
            continue;
        }
        debug!("link to {to} at {addr} is up");
        backoff_ms = RECONNECT_MIN_MS;
        let (mut sink, mut stream) = framed.split();
        loop {
            tokio::select! {
                frame = rx.recv() => {
                    let Some(frame) = frame else { return };
                    if sink.feed(frame).await.is_err() {
                        break;
                    }
                    let mut ok = true;
                    while let Ok(frame) = rx.try_recv() {
                        if sink.feed(frame).await.is_err() {
                            ok = false;
                            break;
                        }
                    }
                    if !ok || sink.flush().await.is_err() {
                        break;
                    }
                }
                // The peer never writes on this link: any read result means
                // it closed or reset, so reconnect.
                _ = stream.next() => break,
            }
        }
        debug!("link to {to} at {addr} went down");
    }
}

/// Accepts connections forever, at most `max` open at once (more are closed
/// at once and counted), serving each with `serve(shared, stream, addr, n)`
/// where `n` numbers the connections from 1. An accept error is logged, not fatal.
async fn accept_loop<F, Fut>(
    shared: Arc<Shared>,
    listener: TcpListener,
    what: &'static str,
    max: usize,
    serve: F,
) where
    F: Fn(Arc<Shared>, TcpStream, SocketAddr, u64) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut accepted = 0u64;
    let slots = Arc::new(tokio::sync::Semaphore::new(max));
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    warn!("refusing {what} connection from {addr}: {max} are open");
                    shared.counters.refused_connections.fetch_add(1, Relaxed);
                    continue; // dropping the stream closes it
                };
                let _ = stream.set_nodelay(true);
                accepted += 1;
                let conn = serve(shared.clone(), stream, addr, accepted);
                tokio::spawn(async move {
                    conn.await;
                    drop(permit);
                });
            }
            Err(e) => {
                warn!("accepting a {what} connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads one inbound peer connection: a hello, then frames for the driver.
async fn peer_reader(shared: Arc<Shared>, stream: TcpStream, addr: SocketAddr) {
    let c = &shared.counters;
    // Strangers may not make us reserve a large frame buffer: the hello is small.
    let mut framed = Framed::new(stream, wire::hello_codec());
    let from = match tokio::time::timeout(HELLO_TIMEOUT, framed.next()).await {
        Ok(Some(Ok(bytes))) => match wire::decode::<PeerFrame>(&bytes) {
            Ok(PeerFrame::Hello {
                version,
                from,
                count,
            }) if version == wire::PROTOCOL_VERSION
                && count == shared.count
                && from.0 < shared.count
                && from != shared.id =>
            {
                from
            }
            Ok(PeerFrame::Hello {
                version,
                from,
                count,
                ..
            }) => {
                warn!("refusing peer {addr}: it says it is {from} of {count} (protocol {version}); we are {} of {}", shared.id, shared.count);
                c.malformed.fetch_add(1, Relaxed);
                return;
            }
            _ => {
                debug!("peer connection from {addr} did not start with a hello");
                c.malformed.fetch_add(1, Relaxed);
                return;
            }
        },
        Ok(Some(Err(_))) => {
            c.malformed.fetch_add(1, Relaxed);
            return;
        }
        _ => return, // closed or silent
    };
    framed
        .codec_mut()
        .set_max_frame_length(wire::PEER_FRAME_MAX_BYTES);
    while let Some(frame) = framed.next().await {
        let frame = match frame
            .map_err(|e| e.to_string())
            .and_then(|b| wire::decode::<PeerFrame>(&b).map_err(|e| e.to_string()))
        {
            Ok(PeerFrame::Hello { .. }) | Err(_) => {
                debug!("malformed frame from peer {from} at {addr}; closing the link");
                c.malformed.fetch_add(1, Relaxed);
                return;
            }
            Ok(f) => f,
        };
        c.peer_received.fetch_add(1, Relaxed);
        if shared
            .input
            .send(DriverInput::Peer { from, frame })
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Serves one client connection: requests in, responses out. A connection
/// may carry several sessions; each one's route points at its newest connection.
async fn client_conn(shared: Arc<Shared>, stream: TcpStream, conn: u64) {
    let c = &shared.counters;
    let (mut sink, mut frames) = Framed::new(stream, wire::client_codec()).split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(CLIENT_QUEUE_FRAMES);
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.feed(frame).await.is_err() {
                return;
            }
            while let Ok(frame) = rx.try_recv() {
                if sink.feed(frame).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let mut sessions = HashSet::new();
    while let Some(frame) = frames.next().await {
        let request = match frame
            .map_err(|e| e.to_string())
            .and_then(|b| wire::decode::<Request>(&b).map_err(|e| e.to_string()))
        {
            Ok(r) => r,
            Err(e) => {
                debug!("malformed client frame ({e}); closing connection {conn}");
                c.malformed.fetch_add(1, Relaxed);
                break;
            }
        };
        c.requests.fetch_add(1, Relaxed);
        let Request { client, seq, op } = request;
        let refusal = match &op {
            _ if seq == 0 => Some("sequence numbers start at 1".to_string()),
            ChatOp::Put(text) if text.len() > MESSAGE_MAX_BYTES => Some(format!(
                "message of {} bytes is over the {MESSAGE_MAX_BYTES}-byte limit",
                text.len()
            )),
            _ if !sessions.contains(&client) && sessions.len() >= SESSIONS_PER_CONNECTION_MAX => {
                Some("too many sessions on one connection".to_string())
            }
            _ => None,
        };
        if let Some(reason) = refusal {
            let result = Outcome::Rejected { reason };
            let _ = tx.try_send(wire::encode(&Response {
                client,
                seq,
                result,
                leader: None,
            }));
            continue;
        }
        if sessions.insert(client) || !owns(&shared.routes, client, conn) {
            shared.routes.lock().expect("routes").insert(
                client,
                Route {
                    conn,
                    tx: tx.clone(),
                },
            );
        }
        let cmd = Command { client, seq, op };
        if shared.input.send(DriverInput::Client(cmd)).await.is_err() {
            break;
        }
    }
    {
        // Only remove routes this connection still owns: a newer connection
        // of the same session keeps its own.
        let mut routes = shared.routes.lock().expect("routes");
        for client in sessions {
            if routes.get(&client).is_some_and(|r| r.conn == conn) {
                routes.remove(&client);
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

fn owns(routes: &Routes, client: ClientId, conn: u64) -> bool {
    routes
        .lock()
        .expect("routes")
        .get(&client)
        .is_some_and(|r| r.conn == conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::{Ballot, Record};

    fn shared() -> Arc<Shared> {
        let (input, _) = mpsc::channel(1);
        Arc::new(Shared {
            id: NodeId(0),
            count: 2,
            counters: Arc::new(Counters::default()),
            routes: Arc::new(Mutex::new(HashMap::new())),
            input,
            wal_len_bytes: AtomicU64::new(0),
            wal_base_bytes: AtomicU64::new(0),
            compacting: AtomicBool::new(false),
        })
    }

    fn record(round: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        let r = Record::Promised(Ballot::new(round, NodeId(1)));
        wal::frame(&WalEntry::Record(r), &mut buf);
        buf
    }

    fn to_peer(tag: u8) -> Effect {
        Effect::Peer(PeerTarget::One(NodeId(1)), Bytes::from(vec![tag]))
    }

    #[test]
    fn group_commit_syncs_once_for_everything_gathered_and_keeps_order() {
        const BATCHES: u64 = 100;
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Wal::open(dir.path()).unwrap();
        let (peer_tx, mut peer_rx) = mpsc::channel(1024);
        let (tx, rx) = std_mpsc::channel();
        // Queue everything before the log thread runs: it must take it all
        // in one round, write every record, and sync once.
        for i in 0..BATCHES {
            tx.send(Batch::Actions {
                pre: vec![],
                records: record(i + 1),
                post: vec![to_peer(i as u8)],
            })
            .unwrap();
        }
        drop(tx);
        let shared = shared();
        log_thread(log, rx, vec![None, Some(peer_tx)], shared.clone()).unwrap();
        assert_eq!(shared.counters.fsyncs.load(Relaxed), 1);
        let sent: Vec<u8> = std::iter::from_fn(|| peer_rx.try_recv().ok())
            .map(|b| b[0])
            .collect();
        assert_eq!(sent, (0..BATCHES).map(|i| i as u8).collect::<Vec<_>>());
        let (_, recovered) = Wal::open(dir.path()).unwrap();
        assert_eq!(recovered.records.len() as u64, BATCHES);
    }

    #[test]
    fn sends_after_a_persist_go_out_only_after_its_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Wal::open(dir.path()).unwrap();
        let (peer_tx, mut peer_rx) = mpsc::channel(16);
        let (tx, rx) = std_mpsc::channel();
        let shared = shared();
        let thread = {
            let shared = shared.clone();
            std::thread::spawn(move || log_thread(log, rx, vec![None, Some(peer_tx)], shared))
        };
        tx.send(Batch::Actions {
            pre: vec![to_peer(1)],
            records: record(1),
            post: vec![to_peer(2)],
        })
        .unwrap();
        let first = peer_rx.blocking_recv().unwrap();
        assert_eq!(first[0], 1);
        let second = peer_rx.blocking_recv().unwrap();
        assert_eq!(second[0], 2);
        // By the time the guarded send is visible, its record was synced.
        assert_eq!(shared.counters.fsyncs.load(Relaxed), 1);
        drop(tx);
        thread.join().unwrap().unwrap();
    }

    #[test]
    fn timeout_maps_onto_ticks_as_documented() {
        let c = core_config(0, 3, 1000, 0);
        assert_eq!(
            (
                c.election_timeout_ticks,
                c.heartbeat_ticks,
                c.retransmit_ticks
            ),
            (100, 20, 40)
        );
        let tiny = core_config(0, 3, 1, 0);
        assert!(tiny.validate().is_ok(), "any -t must give a usable config");
    }
}
