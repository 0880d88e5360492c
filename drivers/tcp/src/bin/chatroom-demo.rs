//! `chatroom-demo`: a three-server chat room in one process, and a prompt to
//! chat with it. No setup: data goes to a fresh temporary directory (or
//! --data-dir), with a development CA and certificates made for the run, and
//! every connection is TLS. Ctrl-C or end of input stops everything.

use clap::Parser;
use paxos_tcp::client::{random_client_id, Session, SessionOptions};
use paxos_tcp::server::{self, Counters, ServerOptions};
use paxos_tcp::tls::{ClientCerts, ClientTls, DevPki, ServerTls};
use paxos_tcp::{cli, repl};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A local three-server chat room with a prompt.
///
/// Starts servers 0, 1 and 2 (clients on ports 10000-10002, peers on
/// 20000-20002 by default) and connects a client to all three. Type `put
/// <message>`, `get`, or `stop <id>` / `start <id>` to take a server down and
/// bring it back: the room keeps working while two of three are up. The
/// servers talk mutual TLS with certificates made at start (in the data
/// directory's tls/), and the prompt prints the `chatroom-client` command
/// with which other terminals can join.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// Keep the logs here instead of in a temporary directory removed at exit.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// First client port (servers use this and the next two).
    #[arg(long, default_value_t = cli::CLIENT_PORT_BASE)]
    port: u16,
    /// First peer port.
    #[arg(long, default_value_t = cli::PEER_PORT_BASE)]
    peer_port: u16,
    /// Failure-detection timeout in ms (see chatroom-server --help).
    #[arg(short = 't', long, default_value_t = 300)]
    timeout: u64,
    /// Log verbosity on stderr.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
}

const SERVERS: u16 = 3;
/// How long the servers may take to accept clients.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), server::ServerError>>,
}

struct Demo {
    options: Vec<ServerOptions>,
    counters: Vec<Arc<Counters>>,
    running: Vec<Option<Running>>,
}

impl Demo {
    fn start(&mut self, id: usize) {
        if self.running[id].is_some() {
            return;
        }
        let (stop, mut rx) = watch::channel(false);
        let stopped = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let task = tokio::spawn(server::run(
            self.options[id].clone(),
            stopped,
            self.counters[id].clone(),
        ));
        self.running[id] = Some(Running { stop, task });
    }

    async fn stop(&mut self, id: usize) -> Option<String> {
        let running = self.running[id].take()?;
        let _ = running.stop.send(true);
        match running.task.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("server {id} stopped with an error: {e}")),
            Err(e) => Some(format!("server {id} failed: {e}")),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging(args.verbose);
    let (data_dir, _temp) = match &args.data_dir {
        Some(d) => (d.clone(), None),
        None => match tempfile::Builder::new().prefix("chatroom-demo-").tempdir() {
            Ok(t) => (t.path().to_path_buf(), Some(t)),
            Err(e) => {
                return cli::fail(
                    "chatroom-demo",
                    format!("cannot create a temporary directory: {e}"),
                )
            }
        },
    };
    let (Some(_), Some(_)) = (
        args.port.checked_add(SERVERS - 1),
        args.peer_port.checked_add(SERVERS - 1),
    ) else {
        return cli::fail("chatroom-demo", "ports out of range");
    };
    let peers: Vec<SocketAddr> = (0..SERVERS)
        .map(|i| SocketAddr::from((Ipv4Addr::LOCALHOST, args.peer_port + i)))
        .collect();
    let clients: Vec<SocketAddr> = (0..SERVERS)
        .map(|i| SocketAddr::from((Ipv4Addr::LOCALHOST, args.port + i)))
        .collect();
    // Certificates: kept from an earlier run of the same --data-dir (so that
    // a client given its CA keeps working), made fresh otherwise.
    let tls_dir = data_dir.join("tls");
    if !tls_dir.join("ca.pem").exists() {
        let made = DevPki::new("chatroom-demo CA")
            .and_then(|pki| pki.write_cluster(&tls_dir, u32::from(SERVERS)));
        if let Err(e) = made {
            return cli::fail("chatroom-demo", e);
        }
    }
    let mut server_tls = Vec::new();
    for i in 0..SERVERS {
        match ServerTls::load(&tls_dir, u32::from(i), ClientCerts::Optional) {
            Ok(t) => server_tls.push(Arc::new(t)),
            Err(e) => return cli::fail("chatroom-demo", e),
        }
    }
    let ca = tls_dir.join("ca.pem");
    let client_tls = match ClientTls::load(&ca, None) {
        Ok(t) => t,
        Err(e) => return cli::fail("chatroom-demo", e),
    };
    let options = (0..SERVERS)
        .map(|i| ServerOptions {
            id: u32::from(i),
            peers: peers.clone(),
            peer_listen: peers[usize::from(i)],
            client_listen: clients[usize::from(i)],
            timeout_ms: args.timeout,
            data_dir: data_dir.join(format!("server-{i}")),
            compact_bytes: 64 << 20,
            retain_slots: server::RETAIN_SLOTS,
            batch_max: server::BATCH_MAX,
            seed: random_client_id(),
            tls: Some(server_tls[usize::from(i)].clone()),
        })
        .collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return cli::fail("chatroom-demo", format!("cannot start the runtime: {e}")),
    };
    let mut demo = Demo {
        options,
        counters: (0..SERVERS)
            .map(|_| Arc::new(Counters::default()))
            .collect(),
        running: (0..SERVERS).map(|_| None).collect(),
    };
    let code = runtime.block_on(async {
        for id in 0..usize::from(SERVERS) {
            demo.start(id);
        }
        // Wait until every server accepts clients; one that cannot start
        // (a port in use) is reported instead of leaving a dead prompt.
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        for (id, &addr) in clients.iter().enumerate() {
            loop {
                let finished = demo.running[id]
                    .as_ref()
                    .is_some_and(|r| r.task.is_finished());
                if finished {
                    let err = demo.stop(id).await.unwrap_or_default();
                    for other in 0..usize::from(SERVERS) {
                        demo.stop(other).await;
                    }
                    return cli::fail("chatroom-demo", err);
                }
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return cli::fail("chatroom-demo", format!("server {id} did not come up"));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        paxos_tcp::say!(
            "chat room up: servers 0-2 on {}..{}, TLS, data in {}",
            clients[0],
            clients[2].port(),
            data_dir.display()
        );
        let list: Vec<String> = clients.iter().map(|a| a.to_string()).collect();
        paxos_tcp::say!(
            "join from another terminal: chatroom-client --ca {} --server {}",
            ca.display(),
            list.join(",")
        );
        paxos_tcp::say!(
            "type `put <message>`, `get`, `stop <id>`, `start <id>`, `help`; Ctrl-C quits"
        );
        let mut session = Session::new(
            random_client_id(),
            1,
            clients.clone(),
            SessionOptions {
                attempt_timeout: Duration::from_millis(500),
                ..SessionOptions::default()
            },
        )
        .with_tls(Some(client_tls.clone()));
        tokio::select! {
            r = prompt(&mut demo, &mut session) => {
                // A closed stdout (`| head`) just ends the prompt.
                if let Err(e) = r {
                    if e.kind() != std::io::ErrorKind::BrokenPipe {
                        eprintln!("chatroom-demo: terminal: {e}");
                    }
                }
            }
            () = cli::stop_signal() => paxos_tcp::say!(),
        }
        let mut code = ExitCode::SUCCESS;
        for id in 0..usize::from(SERVERS) {
            if let Some(err) = demo.stop(id).await {
                eprintln!("chatroom-demo: {err}");
                code = ExitCode::FAILURE;
            }
            paxos_tcp::say!("[{id}] counters: {}", demo.counters[id].summary());
        }
        code
    });
    if let Some(t) = _temp {
        let _ = t.close();
    }
    code
}

async fn prompt(demo: &mut Demo, session: &mut Session) -> std::io::Result<()> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    loop {
        out.write_all(b"> ").await?;
        out.flush().await?;
        let Some(line) = lines.next_line().await? else {
            return Ok(());
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let text = match words.as_slice() {
            ["stop", id] | ["start", id] => match id.parse::<usize>() {
                Ok(i) if i < usize::from(SERVERS) => {
                    if words[0] == "stop" {
                        match demo.stop(i).await {
                            Some(err) => format!("[ERROR]: {err}\n"),
                            None => format!("[RESPONSE]: server {i} stopped\n"),
                        }
                    } else {
                        demo.start(i);
                        format!("[RESPONSE]: server {i} started\n")
                    }
                }
                _ => format!("[ERROR]: no server {id}; ids are 0-{}\n", SERVERS - 1),
            },
            _ => match repl::parse(&line) {
                Some(verb) => repl::execute(session, verb).await,
                None => "[ERROR]: could not parse command\n".into(),
            },
        };
        out.write_all(text.as_bytes()).await?;
    }
}
