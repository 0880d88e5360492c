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
use tokio::sync::{mpsc, watch};
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
#[command(name = "chatroom-demo", version, about, long_about)]
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
    /// Flight recorder: each server records its core's inputs to
    /// DIR/server-<id>.rec (see `paxos-sim replay-node`).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
}

const SERVERS: u16 = 3;
/// How long the servers may take to accept clients.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// What `help` prints: the client's verbs and the demo's own.
const DEMO_USAGE: &str = "\
  stop <ID>                    take server ID (0-2) down
  start <ID>                   bring server ID back up (it recovers from its log)
  Ctrl-C, Ctrl-D               stop every server, print their counters and exit";

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
    for (flag, first) in [("--port", args.port), ("--peer-port", args.peer_port)] {
        if first == 0 || first.checked_add(SERVERS - 1).is_none() {
            return cli::usage(
                "chatroom-demo",
                format!(
                    "{flag} {first}: the servers use it and the next {} ports, so it must be from 1 to {}",
                    SERVERS - 1,
                    u16::MAX - (SERVERS - 1)
                ),
            );
        }
    }
    let (client_ports, peer_ports) = (
        args.port..args.port + SERVERS,
        args.peer_port..args.peer_port + SERVERS,
    );
    if client_ports.clone().any(|p| peer_ports.contains(&p)) {
        return cli::usage(
            "chatroom-demo",
            "--port and --peer-port ranges overlap: clients and peers need a port each",
        );
    }
    if let Some(dir) = &args.data_dir {
        if dir.exists() && !dir.is_dir() {
            return cli::usage(
                "chatroom-demo",
                format!("--data-dir {} is a file, not a directory", dir.display()),
            );
        }
    }
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
    if let Some(dir) = &args.record {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return cli::fail(
                "chatroom-demo",
                format!("cannot create {}: {e}", dir.display()),
            );
        }
    }
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
            members: Vec::new(),
            join: None,
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
            record: args
                .record
                .as_ref()
                .map(|d| d.join(format!("server-{i}.rec"))),
            tls: Some(server_tls[usize::from(i)].clone()),
            reads: server::ReadMode::default(),
            rejoin: false,
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
        let session = Session::new(
            random_client_id(),
            1,
            clients.clone(),
            SessionOptions {
                attempt_timeout: Duration::from_millis(500),
                ..SessionOptions::default()
            },
        )
        .with_tls(Some(client_tls.clone()))
        .with_notices(|text| paxos_tcp::say!("[NOTICE]: {text}"));
        tokio::select! {
            () = prompt(&mut demo, session, stdin_lines()) => {}
            () = cli::stop_signal() => paxos_tcp::say!(),
        }
        let mut code = ExitCode::SUCCESS;
        for id in 0..usize::from(SERVERS) {
            if let Some(err) = demo.stop(id).await {
                eprintln!("chatroom-demo: {err}");
                code = ExitCode::FAILURE;
            }
            if demo.counters[id].started() {
                paxos_tcp::say!("[{id}] counters: {}", demo.counters[id].summary());
            }
        }
        code
    });
    // The stdin thread may still sit in a read: it is not waited for.
    runtime.shutdown_background();
    if let Some(t) = _temp {
        let _ = t.close();
    }
    code
}

/// Lines of stdin, read on a thread of its own. A read blocks, so nothing
/// waits for this thread: Ctrl-C or SIGTERM end the process with stdin open.
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("chatroom-demo: cannot read the terminal: {e}");
    }
    rx
}

/// A put or get running while the prompt takes more commands; it hands the
/// session back with what to print.
type Pending = JoinHandle<(Session, String)>;

async fn prompt(demo: &mut Demo, session: Session, mut lines: mpsc::UnboundedReceiver<String>) {
    let mut session = Some(session);
    let mut pending: Option<Pending> = None;
    let mut input_open = true;
    show("> ");
    loop {
        tokio::select! {
            done = async { pending.as_mut().expect("guarded").await }, if pending.is_some() => {
                pending = None;
                match done {
                    Ok((s, text)) => {
                        session = Some(s);
                        show(&text);
                    }
                    Err(e) => {
                        show(&format!("[ERROR]: the request failed: {e}\n"));
                        return;
                    }
                }
                if !input_open {
                    return;
                }
                show("> ");
            }
            line = lines.recv(), if input_open => {
                let Some(line) = line else {
                    // End of input: let a pending request finish first.
                    input_open = false;
                    if pending.is_none() {
                        show("\n");
                        return;
                    }
                    continue;
                };
                let text = command(demo, &mut session, &mut pending, &line).await;
                show(&text);
                show("> ");
            }
        }
    }
}

/// Performs one line; a put or get goes to the background.
async fn command(
    demo: &mut Demo,
    session: &mut Option<Session>,
    pending: &mut Option<Pending>,
    line: &str,
) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["stop", id] | ["start", id] => match id.parse::<usize>() {
            Ok(i) if i < usize::from(SERVERS) => {
                if words[0] == "stop" {
                    if demo.running[i].is_none() {
                        return format!("[RESPONSE]: server {i} is already stopped\n");
                    }
                    match demo.stop(i).await {
                        Some(err) => format!("[ERROR]: {err}\n"),
                        None => format!("[RESPONSE]: server {i} stopped\n"),
                    }
                } else if demo.running[i].is_some() {
                    format!("[RESPONSE]: server {i} is already running\n")
                } else {
                    demo.start(i);
                    format!("[RESPONSE]: server {i} started\n")
                }
            }
            _ => format!("[ERROR]: no server {id}; ids are 0-{}\n", SERVERS - 1),
        },
        ["stop"] | ["start"] => format!(
            "[ERROR]: {} needs a server id (0-{})\n",
            words[0],
            SERVERS - 1
        ),
        _ => match repl::parse(line) {
            None => "[ERROR]: could not parse command\n".into(),
            Some(repl::Verb::Help) => format!("{}\n{DEMO_USAGE}\n", repl::USAGE),
            Some(repl::Verb::Empty) => String::new(),
            Some(verb) => {
                let Some(mut s) = session.take() else {
                    return "[ERROR]: the last request is still pending; its answer comes \
                            first (`stop`/`start` work meanwhile)\n"
                        .into();
                };
                match verb {
                    repl::Verb::Put(_) | repl::Verb::Get => {
                        *pending = Some(tokio::spawn(async move {
                            let text = repl::execute(&mut s, verb).await;
                            (s, text)
                        }));
                        String::new()
                    }
                    verb => {
                        let text = repl::execute(&mut s, verb).await;
                        *session = Some(s);
                        text
                    }
                }
            }
        },
    }
}

fn show(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
