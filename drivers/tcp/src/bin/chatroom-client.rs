//! `chatroom-client`: the chat room's client. Without a command it is the old
//! REPL (`connect`, `get`, `put`, …); with `put <text>` or `get` it does that
//! once and exits, for scripts.

use clap::{Parser, Subcommand};
use paxos_tcp::cli;
use paxos_tcp::client::{random_client_id, SeqFile, Session, SessionOptions};
use paxos_tcp::tls::ClientTls;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Client for the replicated chat room.
///
/// Every request is retried under the same session and sequence number until
/// it is answered, moving between the --server addresses as needed, so a put
/// is applied exactly once and acknowledged once it is committed.
///
/// The servers speak TLS: --ca names the cluster CA, and the client talks only
/// to servers whose certificate it signed. --insecure talks plain TCP to
/// servers started with --insecure.
#[derive(Parser, Debug)]
#[command(name = "chatroom-client", version, about, long_about)]
struct Args {
    /// Session id. Without it every launch uses a fresh random id. With it the
    /// next sequence number is kept in --state-dir, so a restarted client
    /// continues the session instead of repeating (and losing) numbers.
    #[arg(short = 'i', long = "id")]
    id: Option<u64>,
    /// Servers' client addresses in server-id order, comma-separated, each
    /// HOST:PORT with an IP address or a host name (the REPL connects at
    /// start if given; `put`/`get` default to 127.0.0.1:10000-10002).
    #[arg(long, value_delimiter = ',', value_parser = cli::resolve)]
    server: Vec<SocketAddr>,
    /// How long one attempt waits for an answer, in ms.
    #[arg(long, default_value_t = 1000)]
    timeout: u64,
    /// How long a request may take in all, retries included, in ms.
    #[arg(long, default_value_t = 30_000)]
    deadline: u64,
    /// Where sessions with a fixed --id keep their next sequence number
    /// [default: $HOME/.local/state/paxos-tcp, else ./chatroom-data/clients].
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// The cluster CA certificate (ca.pem of the servers' --tls-dir): talk
    /// TLS and only to servers it vouches for.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    ca: Option<PathBuf>,
    /// A client certificate to show the servers (with --key).
    #[arg(long, value_name = "FILE", requires_all = ["ca", "key"])]
    cert: Option<PathBuf>,
    /// The client certificate's private key.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Plain TCP, for servers started with --insecure: nothing proves that
    /// the other end is a server of the room.
    #[arg(long)]
    insecure: bool,
    /// Log verbosity on stderr.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Append a message, wait for its acknowledgement, and exit.
    Put {
        /// The message (several words are joined with spaces).
        #[arg(required = true)]
        message: Vec<String>,
    },
    /// Print the whole log and exit.
    Get,
    /// Ask the leader to hand the lead to server ID (for a planned restart
    /// of the leader), and exit once it has started.
    Transfer {
        /// The server to lead next (its --id).
        id: u32,
    },
    /// Ask the leader to add server ID to the members, and exit once the
    /// change took effect. ADDR is its peer address, as the cluster's peer
    /// list gives it; start the new server first (`chatroom-server --join`
    /// does both).
    Add {
        /// The server's --id.
        id: u32,
        /// Its peer address, HOST:PORT.
        addr: String,
    },
    /// Ask the leader to remove server ID from the members, and exit once
    /// the change took effect (then stop that server).
    Remove {
        /// The server's --id.
        id: u32,
    },
}

fn state_dir(explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(|| match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/state/paxos-tcp"),
        None => PathBuf::from("chatroom-data/clients"),
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging(args.verbose);
    let opts = SessionOptions {
        attempt_timeout: Duration::from_millis(args.timeout.max(1)),
        deadline: Duration::from_millis(args.deadline.max(1)),
        ..SessionOptions::default()
    };
    let tls = match (&args.ca, args.insecure) {
        (Some(ca), _) => {
            let identity = args.cert.as_deref().zip(args.key.as_deref());
            match ClientTls::load(ca, identity) {
                Ok(t) => Some(t),
                Err(e) => return cli::fail("chatroom-client", e),
            }
        }
        (None, true) => None,
        (None, false) => {
            return cli::usage(
                "chatroom-client",
                "choose --ca FILE (the cluster CA, ca.pem of the servers' --tls-dir) \
                 or --insecure (plain TCP, for servers started with --insecure)",
            )
        }
    };
    let (client, first_seq, seq_file) = match args.id {
        None => (random_client_id(), 1, None),
        Some(id) => {
            let file =
                SeqFile::new(state_dir(args.state_dir.clone()).join(format!("client-{id}.seq")));
            match file.load() {
                Ok(seq) => (id, seq, Some(file)),
                Err(e) => return cli::fail("chatroom-client", e),
            }
        }
    };
    let servers = if args.server.is_empty() && args.command.is_some() {
        (0..3)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], cli::CLIENT_PORT_BASE + i)))
            .collect()
    } else {
        args.server.clone()
    };
    let interactive = args.command.is_none();
    let mut session = Session::new(client, first_seq, servers, opts)
        .with_tls(tls)
        .with_notices(move |text| {
            // The REPL shows it in its own dialect; a script sees it on stderr.
            if interactive {
                paxos_tcp::say!("[NOTICE]: {text}");
            } else {
                eprintln!("chatroom-client: {text}");
            }
        });
    if let Some(file) = seq_file {
        session = session.with_seq_file(file);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return cli::fail("chatroom-client", format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        match args.command {
            Some(Command::Put { message }) => match session.put(&message.join(" ")).await {
                Ok((slot, index)) => {
                    paxos_tcp::say!(
                        "[RESPONSE]: acknowledged: message #{index} committed in slot {slot}"
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    paxos_tcp::say!("[ERROR]: {}", paxos_tcp::repl::put_error(&e));
                    ExitCode::FAILURE
                }
            },
            Some(Command::Transfer { id }) => match session.transfer(id).await {
                Ok(to) => {
                    paxos_tcp::say!("[RESPONSE]: the leader is handing the lead to server {to}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    paxos_tcp::say!("[ERROR]: transfer to server {id} failed ({e})");
                    ExitCode::FAILURE
                }
            },
            Some(Command::Add { id, addr }) => match session.add_server(id, &addr).await {
                Ok((epoch, members)) => {
                    paxos_tcp::say!(
                        "[RESPONSE]: server {id} added: configuration {epoch} of {members:?}"
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    paxos_tcp::say!("[ERROR]: adding server {id} failed ({e})");
                    ExitCode::FAILURE
                }
            },
            Some(Command::Remove { id }) => match session.remove_server(id).await {
                Ok((epoch, members)) => {
                    paxos_tcp::say!(
                        "[RESPONSE]: server {id} removed: configuration {epoch} of {members:?}"
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    paxos_tcp::say!("[ERROR]: removing server {id} failed ({e})");
                    ExitCode::FAILURE
                }
            },
            Some(Command::Get) => match session.get_all().await {
                Ok((_, log)) => {
                    paxos_tcp::say!("[RESPONSE]: {log:?}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    paxos_tcp::say!("[ERROR]: failed to send GET request ({e})");
                    ExitCode::FAILURE
                }
            },
            None => {
                if let Some(addr) = session.server() {
                    if let Err(e) = session_probe(addr).await {
                        paxos_tcp::say!("[ERROR]: failed to connect to server at {addr} ({e})");
                    }
                }
                let stdin = tokio::io::BufReader::new(tokio::io::stdin());
                match paxos_tcp::repl::run(&mut session, stdin, tokio::io::stdout()).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => cli::fail("chatroom-client", e),
                }
            }
        }
    })
}

/// Checks that the first server is reachable, so a typo shows at once.
async fn session_probe(addr: SocketAddr) -> std::io::Result<()> {
    tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))?
        .map(drop)
}
