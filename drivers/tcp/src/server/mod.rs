//! One chat server: a `paxos_core::Server` driven over TCP.
//!
//! Three pieces, each in its own file, and no protocol logic in any of them:
//! * **network tasks** ([`net`]): listeners, peer links, client connections;
//! * **the driver loop** ([`driver`]): receive inputs (and a tick every
//!   [`TICK_MS`]), `step` the core, hand the actions in order to the log
//!   thread; it never waits for the disk;
//! * **the log thread** ([`log`]): performs actions in order, with one fsync
//!   for everything gathered (group commit) before anything that followed a
//!   record goes out.
//!
//! This file holds the options, the counters and [`run`], which starts them.

mod driver;
mod log;
mod net;

use crate::chat::Chat;
use crate::tls::ServerTls;
use crate::wal::{self, Wal, WalEntry, WalError};
use bytes::Bytes;
use driver::{Driver, DriverInput};
use paxos_core::{ClientId, Config, ConfigError, NodeId, Server};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Period of the core's logical clock.
pub const TICK_MS: u64 = 10;
/// Frames queued for one peer link; more are dropped (the core retransmits).
const PEER_QUEUE_FRAMES: usize = 65_536;
/// Inputs queued for the driver; readers wait when it is full.
const INPUT_QUEUE: usize = 16_384;
/// Client connections open at once; more are accepted and closed at once.
const CLIENT_CONNECTIONS_MAX: usize = 4096;
/// Inbound peer connections open at once (a restarting peer briefly has two).
const PEER_CONNECTIONS_MAX: usize = 256;

/// How to run one server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// This server's id, `0..peers.len()`.
    pub id: u32,
    /// Peer address of every server, indexed by id (our own included):
    /// every server that is or may become a member.
    pub peers: Vec<SocketAddr>,
    /// The cluster's first configuration (ids into `peers`); empty: all
    /// of them. Membership changes move on from it; it must stay the
    /// same across restarts of one data directory.
    pub members: Vec<u32>,
    /// Ask the cluster to add this server (`--join`): the client
    /// addresses of the servers, in id order, and how to reach them.
    pub join: Option<Join>,
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
    /// Flight recorder: append every input of the core to this file.
    pub record: Option<PathBuf>,
    /// TLS on both ports; `None` is plain TCP (`--insecure`).
    pub tls: Option<Arc<ServerTls>>,
    /// How `get`s are served (`--reads`).
    pub reads: ReadMode,
    /// The server lost its data directory and starts on an empty one: it
    /// rejoins (`paxos_core::Server::rejoin`) instead of voting with what
    /// it forgot. Accepted on a log that holds no record yet (a rejoin
    /// stopped before its first write) or one whose rejoin is under way.
    pub rejoin: bool,
}

/// How a new server asks to be added ([`ServerOptions::join`]).
#[derive(Clone, Debug)]
pub struct Join {
    /// Client addresses of the cluster's servers, in id order (one will do;
    /// all of them let the request follow the leader's hint).
    pub servers: Vec<SocketAddr>,
    /// TLS to their client ports, or `None` for plain TCP.
    pub tls: Option<crate::tls::ClientTls>,
}

/// How a server serves the chat room's `get`s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadMode {
    /// Through the log, like a put: one slot per get.
    Log,
    /// Without a slot (read-index): the leader confirms it still leads with
    /// one heartbeat round, then the answering server serves the get once it
    /// has applied everything chosen before it arrived.
    #[default]
    Index,
    /// As `index`, but the leader skips the heartbeat round while it holds a
    /// lease ([`lease_ticks`] ticks, assuming clocks drift by at most
    /// 5 % from real time; a pause counts as drift).
    Lease,
}

impl ReadMode {
    /// Every mode, in the order the bench and tests run them.
    pub const ALL: [ReadMode; 3] = [ReadMode::Log, ReadMode::Index, ReadMode::Lease];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ReadMode::Log => "log",
            ReadMode::Index => "index",
            ReadMode::Lease => "lease",
        }
    }
}

/// The lease `--reads lease` asks of the acceptors, in ticks: two ticks
/// below the election timeout, so a lease always ends before a follower may
/// campaign (the core further shrinks it by the drift bound).
pub fn lease_ticks(election_timeout_ticks: u32) -> u32 {
    election_timeout_ticks.saturating_sub(2).max(1)
}

/// What a server logs (at warning level, as the start of its rejoin) once
/// a `--rejoin` is over and it votes again.
pub const REJOINED_LINE: &str = "rejoined the cluster";

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
    /// More peers than ids.
    #[error("{count} peers is more than a cluster can have")]
    TooManyPeers {
        /// How many were given.
        count: usize,
    },
    /// The id is not one of the cluster's.
    #[error("id {id} is not below the cluster size {count} (ids run from 0 to {})", count.saturating_sub(1))]
    IdOutOfRange {
        /// The id given.
        id: u32,
        /// The cluster size.
        count: u32,
    },
    /// The core refused the settings.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The data directory holds another server's log.
    #[error("{path} belongs to server {log_id} of a {log_count}-server cluster, not server {id} of {count}; use another --data-dir")]
    NotOurLog {
        /// The log.
        path: PathBuf,
        /// The server the log belongs to.
        log_id: u32,
        /// Its cluster size.
        log_count: usize,
        /// This server's id.
        id: u32,
        /// This cluster's size.
        count: u32,
    },
    /// The log thread could not be started, or died.
    #[error("the log thread {0}")]
    LogThread(&'static str),
    /// The log could not be opened, read or written.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The log is damaged before its tail: the server cannot trust it.
    #[error(
        "{source}. To bring this server back safely: move {dir} aside (keep it for diagnosis) and \
         start the server again with --rejoin on an empty --data-dir; it then takes the room from \
         the others and votes only once that is safe. Or retire it for good: `chatroom-client remove \
         ID`, and add a new server with --join. Never start it on an empty directory without --rejoin"
    )]
    CorruptLog {
        /// The data directory.
        dir: PathBuf,
        /// What is wrong with the log.
        source: WalError,
    },
    /// `--rejoin` was given for a server whose log is intact.
    #[error(
        "{path} holds this server's log, which is intact: --rejoin is only for a server that lost \
         its data directory (start it without --rejoin to resume from the log)"
    )]
    RejoinWithLog {
        /// The log.
        path: PathBuf,
    },
    /// The log holds records that cannot belong to one history.
    #[error("{path}: the records cannot be replayed: {source}")]
    Recover {
        /// The log.
        path: PathBuf,
        /// What the core found.
        source: paxos_core::RecoverError,
    },
    /// The flight recording could not be started.
    #[error("cannot record to {path}: {source}")]
    Record {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
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
    /// Steps written to the flight recorder (`--record`).
    pub recorded_steps: AtomicU64,
    /// Nanoseconds the driver spent recording (not printed; for the bench).
    pub recorder_busy_ns: AtomicU64,
    /// Set once both listeners are bound: a server that never got there
    /// has no counters worth printing.
    pub listening: AtomicBool,
    /// Connections to a TLS port that failed the handshake: not TLS at all
    /// (plain TCP), a certificate from another CA or none where one is
    /// required, or a handshake that did not finish in time.
    pub tls_refused: AtomicU64,
    /// Peers refused after the handshake because their certificate does not
    /// name the server id their hello claims.
    pub peer_id_refused: AtomicU64,
    /// Outbound peer links whose handshake failed (the peer's certificate
    /// is not from our CA or does not name the peer we dialled, or it refused ours).
    pub link_tls_failed: AtomicU64,
}

impl Counters {
    /// Whether the server got as far as listening.
    pub fn started(&self) -> bool {
        self.listening.load(Relaxed)
    }

    /// One line for humans and scripts.
    pub fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Relaxed);
        format!(
            "sent={} received={} dropped={} decided={} executed={} requests={} responses={} \
             malformed={} refused={} ignored={} records={} fsyncs={} compactions={} snapshots_sent={} snapshots_installed={} \
             refused_connections={} tls_refused={} peer_id_refused={} link_tls_failed={} \
             recorded_steps={}",
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
            g(&self.tls_refused),
            g(&self.peer_id_refused),
            g(&self.link_tls_failed),
            g(&self.recorded_steps),
        )
    }
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
    /// One per peer id: wakes that peer's outbound link out of its
    /// reconnect back-off (the peer just connected to us, so it is up).
    link_wake: Vec<tokio::sync::Notify>,
    /// Log size now and right after the last compaction (for the trigger).
    wal_len_bytes: AtomicU64,
    wal_base_bytes: AtomicU64,
    compacting: AtomicBool,
    /// TLS on both ports, or plain TCP.
    tls: Option<Arc<ServerTls>>,
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
    let count = u32::try_from(opts.peers.len()).map_err(|_| ServerError::TooManyPeers {
        count: opts.peers.len(),
    })?;
    if opts.id >= count {
        return Err(ServerError::IdOutOfRange { id: opts.id, count });
    }
    let mut config = core_config(opts.id, count, opts.timeout_ms, opts.seed);
    if !opts.members.is_empty() {
        if let Some(&bad) = opts.members.iter().find(|&&m| m >= count) {
            return Err(ServerError::IdOutOfRange { id: bad, count });
        }
        config.members = opts.members.iter().map(|&m| NodeId(m)).collect();
    }
    config.retain_slots = opts.retain_slots.max(1);
    config.batch_max = opts.batch_max.max(1);
    if opts.reads == ReadMode::Lease {
        config.lease_ticks = lease_ticks(config.election_timeout_ticks);
    }
    config.validate()?;
    let (mut log, mut recovered) = Wal::open(&opts.data_dir).map_err(|e| match e {
        e @ WalError::Corrupt { .. } => ServerError::CorruptLog {
            dir: opts.data_dir.clone(),
            source: e,
        },
        e => ServerError::Wal(e),
    })?;
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
            return Err(ServerError::NotOurLog {
                path: log_path,
                log_id: id.0,
                log_count: members.len(),
                id: opts.id,
                count,
            });
        }
        Some(_) => {}
        None => {
            let mut buf = Vec::new();
            wal::frame(&meta, &mut buf);
            log.append(&buf)?;
            log.sync()?;
        }
    }
    let empty = recovered.records.is_empty() && recovered.snapshot.is_none();
    if opts.rejoin && empty {
        warn!(
            "--rejoin: this server lost its state; it learns the room from the others and \
             promises or votes nothing until it has won an election counted without its own vote"
        );
        // The rejoin becomes this log's content before anything else
        // happens: the core's checkpoint of a rejoining server, written
        // like any compaction. The server is then restored from it like
        // any other, so a restart, and a recording's replay, find it.
        let mut fresh = Server::rejoin(config.clone(), Chat::default())?;
        for action in fresh.step(paxos_core::Input::Checkpoint) {
            if let paxos_core::Action::Compact(checkpoint) = action {
                recovered.snapshot = checkpoint.snapshot;
                recovered.records = checkpoint.records;
            }
        }
        let mut buf = Vec::new();
        if let Some(snapshot) = &recovered.snapshot {
            wal::frame(&WalEntry::Snapshot(Box::new(snapshot.clone())), &mut buf);
        }
        for record in &recovered.records {
            wal::frame(&WalEntry::Record(record.clone()), &mut buf);
        }
        log.append(&buf)?;
        log.sync()?;
    }
    let recorder = match &opts.record {
        None => None,
        Some(path) => {
            let boot = paxos_record::BootRef {
                config: &config,
                snapshot: recovered.snapshot.as_ref(),
                records: &recovered.records,
                client: None,
            };
            let meta = paxos_record::Meta::now(paxos_record::Kind::ChatServer, opts.id);
            let recorder = paxos_record::Recorder::start(path, &meta, &boot).map_err(|source| {
                ServerError::Record {
                    path: path.clone(),
                    source,
                }
            })?;
            info!("recording every input of the core to {}", path.display());
            Some(recorder)
        }
    };
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
    if opts.rejoin && !server.stats().rejoining {
        return Err(ServerError::RejoinWithLog { path: log_path });
    }
    if server.stats().rejoining && !(opts.rejoin && empty) {
        warn!("resuming a rejoin that a stop interrupted: this server does not vote yet");
    }
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
    // With port 0 the system picks the port: log the one bound.
    let bound = |l: &TcpListener, asked: SocketAddr| l.local_addr().unwrap_or(asked);
    info!(
        "server {} listening: clients on {}, peers on {}, {}, log {}",
        opts.id,
        bound(&client_listener, opts.client_listen),
        bound(&peer_listener, opts.peer_listen),
        if opts.tls.is_some() {
            "TLS"
        } else {
            "plain TCP"
        },
        log_path.display()
    );
    counters.listening.store(true, Relaxed);

    let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
    let shared = Arc::new(Shared {
        id: config.id,
        count,
        counters: counters.clone(),
        routes: Arc::new(Mutex::new(HashMap::new())),
        input: input_tx,
        link_wake: (0..count).map(|_| tokio::sync::Notify::new()).collect(),
        wal_len_bytes: AtomicU64::new(log.len_bytes()),
        wal_base_bytes: AtomicU64::new(log.len_bytes()),
        compacting: AtomicBool::new(false),
        tls: opts.tls.clone(),
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
        tasks.spawn(net::peer_link(shared.clone(), NodeId(j as u32), *addr, rx));
    }
    tasks.spawn(net::accept_loop(
        shared.clone(),
        peer_listener,
        "peer",
        PEER_CONNECTIONS_MAX,
        |shared, stream, addr, _| net::peer_reader(shared, stream, addr),
    ));
    tasks.spawn(net::accept_loop(
        shared.clone(),
        client_listener,
        "client",
        CLIENT_CONNECTIONS_MAX,
        net::client_conn,
    ));

    let (batch_tx, batch_rx) = std_mpsc::channel();
    let log_thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("wal-{}", opts.id))
            .spawn(move || log::log_thread(log, batch_rx, links, shared))
            .map_err(|_| ServerError::LogThread("could not be started"))?
    };

    let driver = Driver {
        server,
        shared: shared.clone(),
        batch_tx,
        meta,
        compact_bytes: opts.compact_bytes,
        actions: Vec::new(),
        recorder,
        reads: opts.reads,
        pending_reads: HashMap::new(),
        pending_transfer: None,
        pending_change: None,
        peers: opts.peers.clone(),
        next_read_id: read_id_base(),
    };
    if let Some(join) = opts.join.clone() {
        let addr = opts.peers[opts.id as usize];
        tasks.spawn(ask_to_join(opts.id, addr, join));
    }
    driver.run(input_rx, shutdown).await;
    tasks.abort_all();
    // The driver dropped its sender: the log thread syncs what it has and ends.
    let result = tokio::task::spawn_blocking(move || log_thread.join())
        .await
        .map_err(|_| ServerError::LogThread("was lost"))?;
    match result {
        Ok(r) => r,
        Err(_) => Err(ServerError::LogThread("panicked")),
    }
}

/// What a server started with `--join` logs (at warning level) once the
/// cluster has added it.
pub const JOINED_LINE: &str = "joined the cluster";

/// How long a joining server keeps asking to be added.
const JOIN_PATIENCE: Duration = Duration::from_secs(600);

/// `--join`: asks the cluster, as a client, to add server `id` at peer
/// address `addr`, until it is a member. A refusal because the server has
/// not caught up yet, or because another change is under way, is asked
/// again; one that cannot change (a wrong address) is logged and ends it.
async fn ask_to_join(id: u32, addr: SocketAddr, join: Join) {
    use crate::client::{CallError, Session, SessionOptions};
    let started = tokio::time::Instant::now();
    let opts = SessionOptions {
        deadline: Duration::from_secs(10),
        ..SessionOptions::default()
    };
    let mut session = Session::new(crate::client::random_client_id(), 1, join.servers, opts)
        .with_tls(join.tls)
        .with_notices(|notice| debug!("--join: {notice}"));
    loop {
        let text = addr.to_string();
        match session.add_server(id, &text).await {
            Ok((epoch, members)) => {
                // A warning, as the rejoin's line is: the operator (and
                // the harness) watching for it sees it.
                warn!("{JOINED_LINE}: configuration {epoch} of {members:?}");
                return;
            }
            Err(CallError::Rejected(why)) if why.contains("already a member") => {
                warn!("{JOINED_LINE}: {why}");
                return;
            }
            Err(CallError::Rejected(why))
                if !(why.contains("caught up") || why.contains("under way")) =>
            {
                warn!("--join: the cluster refused to add this server: {why}");
                return;
            }
            Err(e) => {
                if started.elapsed() > JOIN_PATIENCE {
                    warn!("--join: gave up asking to be added: {e}");
                    return;
                }
                debug!("--join: not added yet ({e}); asking again");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

/// Where this process starts numbering reads: the wall clock in
/// microseconds, so a restarted server (whose clients keep their ids) never
/// reuses a `(client, id)` an earlier run handed the core.
fn read_id_base() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

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
