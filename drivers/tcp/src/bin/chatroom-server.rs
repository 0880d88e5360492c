//! `chatroom-server`: one replica of the chat room. Same flags as the program
//! it replaces (`-i -p -c -t -v`), plus `--data-dir`, `--peers` and `--listen`,
//! and either `--tls-dir DIR` (mutual TLS between servers, TLS for clients) or
//! an explicit `--insecure` (plain TCP, as the old program spoke).

use clap::Parser;
use paxos_tcp::cli;
use paxos_tcp::server::{self, Counters, ReadMode, ServerOptions};
use paxos_tcp::tls::{ClientCerts, ServerTls};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// One replica of the replicated chat room (Multi-Paxos over TCP).
///
/// Servers `0..count` form a cluster; it keeps working while a majority is up
/// and never loses an acknowledged message. State lives in a write-ahead log
/// under --data-dir. SIGINT or SIGTERM stops it cleanly and prints counters.
///
/// Servers talk mutual TLS: with --tls-dir DIR a server reads DIR/ca.pem (the
/// cluster CA), DIR/server-<id>.pem and DIR/server-<id>.key (its certificate,
/// naming paxos-server-<id>, and key); `chatroom-certs` makes them. A peer is
/// believed only if its certificate chains to the CA and names the id it
/// claims. --insecure runs plain TCP instead, which anyone who can reach the
/// ports can speak.
#[derive(Parser, Debug)]
#[command(name = "chatroom-server", version, about, long_about)]
struct Args {
    /// This server's id, 0..count-1.
    #[arg(short = 'i', long = "id")]
    id: u32,
    /// TCP port for client connections.
    #[arg(short = 'p', long = "port")]
    port: u16,
    /// Number of servers in the cluster (a majority must be up to make progress).
    #[arg(short = 'c', long = "count", value_parser = clap::value_parser!(u32).range(1..=64))]
    count: u32,
    /// Failure-detection timeout in ms: a follower that hears no leader for
    /// this long (randomised up to twice it) campaigns. Heartbeats go every
    /// timeout/5 and unanswered messages are resent every 2*timeout/5. The
    /// core ticks every 10 ms, so values below 30 are rounded up to 30.
    #[arg(short = 't', long = "timeout", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// Log verbosity on stderr: warnings by default, -v info, -vv debug, -vvv trace.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Directory of this server's write-ahead log
    /// [default: ./chatroom-data/server-<id>-port-<port>].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Peer address of every server, in id order, comma-separated, each
    /// HOST:PORT with an IP address or a host name
    /// [default: 127.0.0.1:20000+id for each id].
    #[arg(long, value_delimiter = ',', value_parser = cli::resolve)]
    peers: Vec<SocketAddr>,
    /// IP address to bind both listeners on (clients on --port, peers on this
    /// server's port from --peers).
    #[arg(long, default_value = "127.0.0.1")]
    listen: IpAddr,
    /// Compact the log into a snapshot once it has grown by this many bytes.
    #[arg(long, default_value_t = 64 << 20)]
    compact_bytes: u64,
    /// Slots of decided history kept to catch lagging peers up; a peer
    /// further behind is sent a snapshot instead.
    #[arg(long, default_value_t = server::RETAIN_SLOTS, value_parser = clap::value_parser!(u64).range(1..))]
    retain_slots: u64,
    /// Most commands in one slot; a full batch goes out even while earlier
    /// slots are in flight, so smaller batches pipeline more.
    #[arg(long, default_value_t = server::BATCH_MAX as u64, value_parser = clap::value_parser!(u64).range(1..=65536))]
    batch_max: u64,
    /// Directory with ca.pem, server-<id>.pem and server-<id>.key: TLS on
    /// both ports (see chatroom-certs).
    #[arg(long, value_name = "DIR", conflicts_with = "insecure")]
    tls_dir: Option<PathBuf>,
    /// Refuse clients that do not show a certificate from the cluster CA
    /// (by default one is asked for and checked if offered, not required).
    #[arg(long, requires = "tls_dir")]
    require_client_cert: bool,
    /// Plain TCP on both ports, no authentication at all: anyone who can
    /// reach the peer port can speak Paxos to this server. Local experiments only.
    #[arg(long)]
    insecure: bool,
    /// Runtime worker threads for network I/O and the driver loop (the log
    /// has its own thread). One is enough up to tens of thousands of puts/s;
    /// more help only with many client connections and spare cores.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
    /// Flight recorder: append every input the core receives (with the
    /// configuration, the recovered log and a digest of the actions of each
    /// step) to FILE, for `paxos-sim replay-node FILE`.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// How gets are served. `log`: through the log like a put (one slot
    /// each). `index`: no slot (read-index): the leader confirms it still
    /// leads with one heartbeat round, and the server the client asked
    /// answers once it has applied everything chosen before the get.
    /// `lease`: as index, but the leader skips that round while it holds a
    /// lease of (timeout/10 ms - 2) ticks granted by a majority; this assumes
    /// no server's clock runs more than 5 % fast or slow (a stalled process
    /// counts as a slow clock), or a deposed leader may answer a stale get.
    /// Puts always go through the log.
    #[arg(long, value_enum, default_value_t = ReadMode::Index)]
    reads: ReadMode,
    /// This server lost its data directory (a dead disk, or a log reported
    /// corrupt and moved aside): start it on an empty --data-dir with this
    /// flag. It then learns the room from the others and promises or votes
    /// nothing until it has won an election counted without its own vote,
    /// so nothing it forgot can be contradicted. Needs a majority of the
    /// cluster besides it (3 servers or more). If it stops before it has
    /// logged that it is rejoining, start it with --rejoin again.
    #[arg(long)]
    rejoin: bool,
    /// The cluster's first members, comma-separated ids [default: every id
    /// 0..count, or with --join every id but this one]. --count then sizes
    /// the peer list: every server that is or may become a member. Give the
    /// same list at every start of one data directory.
    #[arg(long, value_delimiter = ',')]
    members: Vec<u32>,
    /// Start as a new server and ask the cluster to add it: ADDRS are
    /// client addresses of the cluster's servers (HOST:PORT, comma-separated,
    /// in id order; one is enough). This server first catches up as a
    /// learner, then asks until the leader adds it (`chatroom-client add`
    /// does the same by hand). Its id and peer address must be in every
    /// server's peer list (--count / --peers).
    #[arg(long, value_name = "ADDRS", value_delimiter = ',', value_parser = cli::resolve)]
    join: Vec<SocketAddr>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging(args.verbose);
    let peers = if args.peers.is_empty() {
        cli::default_peers(args.count)
    } else {
        args.peers.clone()
    };
    if peers.len() != args.count as usize {
        return cli::usage(
            "chatroom-server",
            format!(
                "--peers lists {} addresses but --count is {}",
                peers.len(),
                args.count
            ),
        );
    }
    if args.id >= args.count {
        return cli::usage(
            "chatroom-server",
            format!(
                "--id {} is out of range: ids run from 0 to {}",
                args.id,
                args.count - 1
            ),
        );
    }
    let tls = match (&args.tls_dir, args.insecure) {
        (Some(dir), _) => {
            let client_certs = if args.require_client_cert {
                ClientCerts::Required
            } else {
                ClientCerts::Optional
            };
            match ServerTls::load(dir, args.id, client_certs) {
                Ok(t) => Some(Arc::new(t)),
                Err(e) => return cli::fail("chatroom-server", e),
            }
        }
        (None, true) => {
            tracing::warn!(
                "--insecure: plain TCP on both ports; anyone who can reach {} can speak Paxos to this server",
                peers[args.id as usize]
            );
            None
        }
        (None, false) => {
            return cli::usage(
                "chatroom-server",
                "choose --tls-dir DIR (the cluster CA and this server's certificate; \
                 `chatroom-certs --dir DIR --servers N` makes them) or --insecure (plain TCP, no authentication)",
            )
        }
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| cli::default_data_dir(args.id, args.port));
    if data_dir.exists() && !data_dir.is_dir() {
        return cli::usage(
            "chatroom-server",
            format!(
                "the data directory {} is a file, not a directory; give --data-dir a directory",
                data_dir.display()
            ),
        );
    }
    let peer_port = peers[args.id as usize].port();
    if args.port != 0 && args.port == peer_port {
        return cli::usage(
            "chatroom-server",
            format!(
                "--port {} is also this server's peer port (from --peers, or 20000+id by default); \
                 clients and peers need a port each",
                args.port
            ),
        );
    }
    if let Some(&bad) = args.members.iter().find(|&&m| m >= args.count) {
        return cli::usage(
            "chatroom-server",
            format!(
                "--members names {bad}, but ids run from 0 to {}",
                args.count - 1
            ),
        );
    }
    let members = if !args.members.is_empty() {
        args.members.clone()
    } else if !args.join.is_empty() {
        (0..args.count).filter(|&m| m != args.id).collect()
    } else {
        Vec::new()
    };
    let join = if args.join.is_empty() {
        None
    } else {
        let tls = match &args.tls_dir {
            None => None,
            Some(dir) => match paxos_tcp::tls::ClientTls::load(&dir.join("ca.pem"), None) {
                Ok(t) => Some(t),
                Err(e) => return cli::fail("chatroom-server", e),
            },
        };
        Some(server::Join {
            servers: args.join.clone(),
            tls,
        })
    };
    let opts = ServerOptions {
        members,
        join,
        id: args.id,
        peer_listen: SocketAddr::new(args.listen, peer_port),
        client_listen: SocketAddr::new(args.listen, args.port),
        peers,
        timeout_ms: args.timeout,
        data_dir,
        compact_bytes: args.compact_bytes,
        retain_slots: args.retain_slots,
        batch_max: args.batch_max as usize,
        seed: paxos_tcp::client::random_client_id(),
        record: args.record.clone(),
        tls,
        reads: args.reads,
        rejoin: args.rejoin,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.into())
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return cli::fail("chatroom-server", format!("cannot start the runtime: {e}")),
    };
    let counters = Arc::new(Counters::default());
    let result = runtime.block_on(server::run(opts, cli::stop_signal(), counters.clone()));
    let code = match &result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::fail("chatroom-server", e),
    };
    // A server that never started has nothing to count.
    if counters.started() {
        paxos_tcp::say!("[{}] counters: {}", args.id, counters.summary());
    }
    code
}
