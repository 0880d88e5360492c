//! `chatroom-bench`: acknowledged puts per second and latency of a local
//! three-server room with fsync on, for 1, 16 and 64 concurrent clients, next
//! to the disk's single-thread fsync rate measured in the same run; each
//! count with TLS on every connection and with plain TCP, and what TLS costs.

use clap::Parser;
use paxos_tcp::cli;
use paxos_tcp::client::{Session, SessionOptions};
use paxos_tcp::server::{self, Counters, ReadMode, ServerOptions};
use paxos_tcp::tls::{ClientCerts, ClientTls, DevPki, ServerTls};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Benchmark of the replicated chat room.
///
/// For each client count, starts a fresh cluster (in this process, each
/// server on its own threads, logs fsynced on the disk under --data-dir),
/// runs closed-loop clients (one outstanding put each) for a warm-up and a
/// measured period, and prints acknowledged puts/s and p50/p99 latency. The
/// disk's single-thread fsync rate is measured first as the floor to beat
/// (only group commit can put more than one put behind each fsync), with the
/// per-thread rate when one thread per server syncs at once, which on
/// virtual disks can be far higher. Each client count runs once on plain TCP
/// and once with TLS everywhere (mutual TLS between servers, TLS to the
/// clients), one after the other, and the cost of TLS is printed.
#[derive(Parser, Debug)]
#[command(name = "chatroom-bench", version, about, long_about)]
struct Args {
    /// Client counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// Servers in the cluster.
    #[arg(long, default_value_t = 3)]
    servers: u32,
    /// Measured seconds per client count.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Warm-up seconds per client count (not measured).
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Where the logs go [default: a temporary directory under the current one].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Clients connect to: "leader" (where clients go by default: they
    /// follow the leader hint in every answer) or "spread" (round-robin over
    /// the servers and staying there, so followers forward to the leader).
    #[arg(long, default_value = "leader")]
    target: String,
    /// The servers' --batch-max.
    #[arg(long, default_value_t = server::BATCH_MAX)]
    batch_max: usize,
    /// Also run every client count with the flight recorder on
    /// (`chatroom-server --record`), between two runs without it, and print
    /// its throughput against the mean of those two (so that a drift in the
    /// machine's load during the three runs does not favour either side).
    #[arg(long)]
    record: bool,
    /// Transports to measure: "both" (plain TCP, then TLS, for each count),
    /// "tls" or "plain".
    #[arg(long, default_value = "both")]
    transport: String,
    /// Fraction of operations that are gets (0.0 to 1.0); the rest are puts.
    /// A get asks for the messages after the last one the client has seen,
    /// as a polling chat client would. Above 0, every client count and
    /// transport runs once per read method (--reads log, index and lease,
    /// each on a fresh cluster) and prints puts/s, gets/s and get latency
    /// per method, and index and lease gets/s against log's.
    #[arg(long, default_value_t = 0.0)]
    read_ratio: f64,
}

/// TLS material for one run: each server's, and the clients'.
struct Tls {
    servers: Vec<Arc<ServerTls>>,
    client: ClientTls,
}

fn make_tls(dir: &Path, servers: u32) -> Result<Tls, String> {
    let tls_dir = dir.join("tls");
    let pki = DevPki::new("chatroom-bench CA").map_err(|e| e.to_string())?;
    pki.write_cluster(&tls_dir, servers)
        .map_err(|e| e.to_string())?;
    let servers = (0..servers)
        .map(|id| {
            ServerTls::load(&tls_dir, id, ClientCerts::Optional)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let client = ClientTls::load(&tls_dir.join("ca.pem"), None).map_err(|e| e.to_string())?;
    Ok(Tls { servers, client })
}

/// Appends 64 bytes and fdatasyncs in a loop for about a second, on
/// `threads` threads with a file each; returns the mean rate per thread.
fn fsync_rate(dir: &Path, threads: usize) -> std::io::Result<f64> {
    let probe = |i: usize| -> std::io::Result<f64> {
        let path = dir.join(format!("fsync-probe-{i}"));
        let mut f = std::fs::File::create(&path)?;
        let record = [0x5a_u8; 64];
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(1) {
            f.write_all(&record)?;
            f.sync_data()?;
            n += 1;
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        drop(f);
        std::fs::remove_file(&path)?;
        Ok(rate)
    };
    let rates: Vec<std::io::Result<f64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| scope.spawn(move || probe(i)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("probe panicked")))
            })
            .collect()
    });
    let mut sum = 0.0;
    for r in rates {
        sum += r?;
    }
    Ok(sum / threads as f64)
}

struct Result_ {
    clients: usize,
    puts_per_s: f64,
    gets_per_s: f64,
    get_p50_us: u128,
    get_p99_us: u128,
    p50_us: u128,
    p99_us: u128,
    fsyncs_per_s: f64,
    /// CPU time of this whole process (servers and clients) per put.
    cpu_us_per_put: f64,
    /// Time the servers' flight recorders took, as a share of that CPU time.
    recorder_share: f64,
}

/// CPU time this process used so far (user + system), from /proc (Linux
/// reports it in units of 1/100 s there); zero where it cannot be read.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Runs numbered so that no run reuses another's logs.
static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn run_one(
    args: &Args,
    dir: &Path,
    clients: usize,
    tls: Option<&Tls>,
    record: bool,
    reads: ReadMode,
) -> Result<Result_, String> {
    let run = RUNS.fetch_add(1, Relaxed);
    let transport = if tls.is_some() { "tls" } else { "plain" };
    let n = args.servers as usize;
    let port = |_| cli::free_port().map_err(|e| format!("no free port: {e}"));
    let client_ports: Vec<u16> = (0..n).map(port).collect::<Result<_, _>>()?;
    let peer_ports: Vec<u16> = (0..n).map(port).collect::<Result<_, _>>()?;
    let peers: Vec<SocketAddr> = peer_ports
        .iter()
        .map(|&p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
        .collect();
    let addrs: Vec<SocketAddr> = client_ports
        .iter()
        .map(|&p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let counters: Vec<Arc<Counters>> = (0..n).map(|_| Arc::new(Counters::default())).collect();
    let mut threads = Vec::new();
    for id in 0..n {
        let opts = ServerOptions {
            members: Vec::new(),
            join: None,
            id: id as u32,
            peers: peers.clone(),
            peer_listen: peers[id],
            client_listen: addrs[id],
            timeout_ms: 300,
            data_dir: dir.join(format!("c{clients}-{transport}-run{run}-server-{id}")),
            compact_bytes: 256 << 20,
            retain_slots: server::RETAIN_SLOTS,
            batch_max: args.batch_max,
            seed: id as u64,
            record: record
                .then(|| dir.join(format!("c{clients}-{transport}-run{run}-server-{id}.rec"))),
            tls: tls.map(|t| t.servers[id].clone()),
            reads,
            rejoin: false,
        };
        let (stop, counters) = (stop.clone(), counters[id].clone());
        threads.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let stopped = async move {
                while !stop.load(Relaxed) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            rt.block_on(server::run(opts, stopped, counters))
                .map_err(|e| e.to_string())
        }));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let warmup = Duration::from_secs(args.warmup);
    let measure = Duration::from_secs(args.seconds);
    let spread = args.target == "spread";
    let client_tls = tls.map(|t| t.client.clone());
    // Gets per million operations, drawn per client from a fixed sequence.
    let gets_per_million = (args.read_ratio * 1e6) as u64;
    let result = rt.block_on(async {
        // Wait for a leader: one put must succeed.
        let mut probe = Session::new(u64::MAX, 1, addrs.clone(), SessionOptions::default())
            .with_tls(client_tls.clone());
        probe
            .put("warm")
            .await
            .map_err(|e| format!("the cluster never came up: {e}"))?;
        // Only the leader counts decided slots.
        let leader = (0..n)
            .max_by_key(|&i| counters[i].decided.load(Relaxed))
            .unwrap_or(0);
        let begin = Instant::now();
        let measure_from = begin + warmup;
        let measure_to = measure_from + measure;
        let mut tasks = Vec::new();
        for c in 0..clients {
            let mut session =
                Session::new(c as u64 + 1, 1, addrs.clone(), SessionOptions::default())
                    .follow_leader(!spread)
                    .with_tls(client_tls.clone());
            let first = if spread { c % n } else { leader };
            for _ in 0..first {
                session.rotate_server();
            }
            tasks.push(tokio::spawn(async move {
                let (mut latencies, mut get_latencies) = (Vec::new(), Vec::new());
                let (mut i, mut seen) = (0u64, 0u64);
                let mut draw = c as u64 ^ 0x9e37_79b9_7f4a_7c15;
                loop {
                    let t = Instant::now();
                    if t >= measure_to {
                        break;
                    }
                    // xorshift: the same operation mix on every run.
                    draw ^= draw << 13;
                    draw ^= draw >> 7;
                    draw ^= draw << 17;
                    let get = draw % 1_000_000 < gets_per_million;
                    if get {
                        let page = session
                            .get_page(seen)
                            .await
                            .map_err(|e| format!("client {c}: {e}"))?;
                        seen = page.offset + page.messages.len() as u64;
                    } else {
                        session
                            .put(&format!("b{c}-{i}"))
                            .await
                            .map_err(|e| format!("client {c}: {e}"))?;
                    }
                    i += 1;
                    if t >= measure_from && t < measure_to {
                        let took = t.elapsed().as_micros();
                        if get {
                            get_latencies.push(took);
                        } else {
                            latencies.push(took);
                        }
                    }
                }
                Ok::<_, String>((latencies, get_latencies))
            }));
        }
        let recorder_busy = || -> u64 {
            counters
                .iter()
                .map(|c| c.recorder_busy_ns.load(Relaxed))
                .sum()
        };
        let fsyncs_before = {
            tokio::time::sleep_until(measure_from.into()).await;
            counters
                .iter()
                .map(|c| c.fsyncs.load(Relaxed))
                .max()
                .unwrap_or(0)
        };
        let (cpu_before, busy_before) = (process_cpu(), recorder_busy());
        tokio::time::sleep_until(measure_to.into()).await;
        let (cpu, busy) = (
            process_cpu().saturating_sub(cpu_before),
            recorder_busy().saturating_sub(busy_before),
        );
        let fsyncs_after = counters
            .iter()
            .map(|c| c.fsyncs.load(Relaxed))
            .max()
            .unwrap_or(0);
        let (mut all, mut gets) = (Vec::new(), Vec::new());
        for t in tasks {
            let (puts, got) = t.await.map_err(|e| e.to_string())??;
            all.extend(puts);
            gets.extend(got);
        }
        all.sort_unstable();
        gets.sort_unstable();
        let at = |v: &[u128], p: f64| {
            v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        let pct = |p: f64| at(&all, p);
        Ok::<_, String>(Result_ {
            clients,
            puts_per_s: all.len() as f64 / measure.as_secs_f64(),
            gets_per_s: gets.len() as f64 / measure.as_secs_f64(),
            get_p50_us: at(&gets, 0.50),
            get_p99_us: at(&gets, 0.99),
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            fsyncs_per_s: (fsyncs_after - fsyncs_before) as f64 / measure.as_secs_f64(),
            cpu_us_per_put: cpu.as_secs_f64() * 1e6 / (all.len() + gets.len()).max(1) as f64,
            recorder_share: busy as f64 / (cpu.as_nanos().max(1) as f64),
        })
    });
    stop.store(true, Relaxed);
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("a server failed: {e}")),
            Err(_) => return Err("a server thread panicked".into()),
        }
    }
    result
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging(0);
    if args.clients.is_empty()
        || args.clients.contains(&0)
        || args.servers == 0
        || args.seconds == 0
    {
        return cli::usage(
            "chatroom-bench",
            "--clients, --servers and --seconds must be positive",
        );
    }
    if !(0.0..=1.0).contains(&args.read_ratio) {
        return cli::usage("chatroom-bench", "--read-ratio must be between 0.0 and 1.0");
    }
    if args.target != "spread" && args.target != "leader" {
        return cli::usage("chatroom-bench", "--target must be `spread` or `leader`");
    }
    let transports: &[bool] = match args.transport.as_str() {
        "both" => &[false, true],
        "tls" => &[true],
        "plain" => &[false],
        _ => {
            return cli::usage(
                "chatroom-bench",
                "--transport must be `both`, `tls` or `plain`",
            )
        }
    };
    let base = args.data_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let dir = match tempfile::Builder::new()
        .prefix("chatroom-bench-")
        .tempdir_in(&base)
    {
        Ok(d) => d,
        Err(e) => {
            return cli::fail(
                "chatroom-bench",
                format!("cannot create a directory in {}: {e}", base.display()),
            )
        }
    };
    let (floor, parallel) = match (
        fsync_rate(dir.path(), 1),
        fsync_rate(dir.path(), args.servers as usize),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            return cli::fail("chatroom-bench", format!("fsync probe failed: {e}"))
        }
    };
    paxos_tcp::say!(
        "disk: {floor:.0} fsyncs/s single-threaded (64-byte append + fdatasync), \
         {parallel:.0}/s per thread with {} threads at once, in {}",
        args.servers,
        dir.path().display()
    );
    paxos_tcp::say!(
        "{} servers, fsync on, {} s measured after {} s warm-up, clients {}",
        args.servers,
        args.seconds,
        args.warmup,
        args.target
    );
    let tls = match make_tls(dir.path(), args.servers) {
        Ok(t) => t,
        Err(e) => return cli::fail("chatroom-bench", format!("cannot make certificates: {e}")),
    };
    paxos_tcp::say!(
        "clients transport   puts/s   p50_us   p99_us  fsyncs/s(leader)  puts/fsync  vs_fsync_floor  cpu_us/put{}",
        if args.record { "  recorder" } else { "" }
    );
    if args.read_ratio > 0.0 {
        return read_methods(&args, dir.path(), transports, &tls);
    }
    let mut costs = Vec::new();
    for &clients in &args.clients {
        let mut rates = Vec::new();
        for &with_tls in transports {
            let transport = if with_tls { "tls" } else { "plain" };
            let modes: &[bool] = if args.record {
                &[false, true, false]
            } else {
                &[false]
            };
            let mut results = Vec::new();
            for &record in modes {
                let r = match run_one(
                    &args,
                    dir.path(),
                    clients,
                    with_tls.then_some(&tls),
                    record,
                    ReadMode::Log,
                ) {
                    Ok(r) => r,
                    Err(e) => return cli::fail("chatroom-bench", e),
                };
                let note = if args.record && record {
                    format!(
                        "  on ({:.1} % of the CPU time in the recorders)",
                        r.recorder_share * 100.0
                    )
                } else if args.record {
                    "  off".to_string()
                } else {
                    String::new()
                };
                paxos_tcp::say!(
                    "{:>7} {:>9} {:>8.0} {:>8} {:>8} {:>17.0} {:>11.1} {:>14.2}x {:>11.1}{note}",
                    r.clients,
                    transport,
                    r.puts_per_s,
                    r.p50_us,
                    r.p99_us,
                    r.fsyncs_per_s,
                    r.puts_per_s / r.fsyncs_per_s.max(1.0),
                    r.puts_per_s / floor,
                    r.cpu_us_per_put
                );
                results.push((record, r.puts_per_s, r.cpu_us_per_put));
            }
            // The runs without the recorder: one, or the two around the
            // run with it.
            let mean = |f: fn(&(bool, f64, f64)) -> f64| {
                let off: Vec<f64> = results.iter().filter(|r| !r.0).map(f).collect();
                off.iter().sum::<f64>() / off.len().max(1) as f64
            };
            let (base, base_cpu) = (mean(|r| r.1), mean(|r| r.2));
            if args.record {
                let on = results
                    .iter()
                    .find(|r| r.0)
                    .copied()
                    .unwrap_or((true, 0.0, 0.0));
                paxos_tcp::say!(
                    "{clients:>7} {transport:>9} recorder: {:.0} puts/s on, {base:.0} off (mean of the runs before and after): {:+.1} %; \
                     CPU per put {:.1} us on, {base_cpu:.1} off: {:+.1} %",
                    on.1,
                    (on.1 / base.max(1.0) - 1.0) * 100.0,
                    on.2,
                    (on.2 / base_cpu.max(1e-9) - 1.0) * 100.0
                );
            }
            rates.push(base);
        }
        if let [plain, tls] = rates[..] {
            costs.push((clients, plain, tls));
        }
    }
    for (clients, plain, tls) in costs {
        paxos_tcp::say!(
            "TLS at {clients} clients: {tls:.0} puts/s vs {plain:.0} on plain TCP, a cost of {:.1} %",
            100.0 * (1.0 - tls / plain.max(1.0))
        );
    }
    ExitCode::SUCCESS
}

/// `--read-ratio` above 0: every client count and transport once per read
/// method, each on a fresh cluster, and each method's gets/s against log's.
fn read_methods(args: &Args, dir: &Path, transports: &[bool], tls: &Tls) -> ExitCode {
    paxos_tcp::say!(
        "read ratio {:.2}: clients transport  reads   puts/s   gets/s  get_p50_us  get_p99_us  put_p50_us  put_p99_us",
        args.read_ratio
    );
    let mut ratios = Vec::new();
    for &clients in &args.clients {
        for &with_tls in transports {
            let transport = if with_tls { "tls" } else { "plain" };
            let mut log_gets = 0.0;
            for reads in ReadMode::ALL {
                let tls = with_tls.then_some(tls);
                let r = match run_one(args, dir, clients, tls, false, reads) {
                    Ok(r) => r,
                    Err(e) => return cli::fail("chatroom-bench", e),
                };
                paxos_tcp::say!(
                    "{:>24} {:>9} {:>6} {:>8.0} {:>8.0} {:>11} {:>11} {:>11} {:>11}",
                    r.clients,
                    transport,
                    reads.name(),
                    r.puts_per_s,
                    r.gets_per_s,
                    r.get_p50_us,
                    r.get_p99_us,
                    r.p50_us,
                    r.p99_us
                );
                if reads == ReadMode::Log {
                    log_gets = r.gets_per_s;
                } else {
                    ratios.push((clients, transport, reads, r.gets_per_s / log_gets.max(1.0)));
                }
            }
        }
    }
    for (clients, transport, reads, ratio) in ratios {
        paxos_tcp::say!(
            "{clients} clients, {transport}: --reads {} serves {ratio:.1}x the gets/s of --reads log",
            reads.name()
        );
    }
    ExitCode::SUCCESS
}
