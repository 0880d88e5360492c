//! `harness`: runs scenario files against real `chatroom-server` processes and
//! checks the histories. Prints `N passed, N failed`; exits 1 if any failed,
//! 2 if the harness could not run them (bad files, or its servers could not start).

use clap::Parser;
use paxos_tcp::cli;
use paxos_tcp::harness::{self, HarnessOptions};
use paxos_tcp::server::ReadMode;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Scenario harness for the chat room.
///
/// Reads the old scenario JSON (an array of "type"-tagged actions: Start,
/// Connect, Disconnect, Put, Get, Crash, Sleep, plus Wipe {id}, AddServer
/// {id, port} and RemoveServer {id}; unknown keys ignored), starts
/// servers in a fresh temporary data directory (with TLS certificates made
/// for the run, unless --insecure), runs the steps with a timeout
/// on each, and checks: every two Gets are prefixes of one another; every
/// acknowledged Put is in every Get issued after its acknowledgement; no
/// message appears twice or without having been put; real-time order holds;
/// servers alive at the end agree.
#[derive(Parser, Debug)]
#[command(name = "harness", version, about, long_about)]
struct Args {
    /// The chatroom-server binary to launch.
    #[arg(short = 's', long = "server")]
    server: PathBuf,
    /// Scenario file(s); repeat to run several.
    #[arg(short = 'f', long = "file", required = true)]
    file: Vec<PathBuf>,
    /// Passed to every server as one -v…v argument (their logs then show here).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Move every client and peer port to a free one, so runs can overlap.
    /// Without it the scenario's client ports and peer ports 20000+id are
    /// used, and the harness stops (exit 2) if any is taken.
    #[arg(long)]
    free_ports: bool,
    /// The servers' -t timeout, in ms.
    #[arg(long, default_value_t = 300)]
    server_timeout: u64,
    /// How long one Put or Get may take, retries included, in ms.
    #[arg(long, default_value_t = 20_000)]
    request_deadline: u64,
    /// Keep the data directory (and server logs) of a failed scenario.
    #[arg(long)]
    keep_failed: bool,
    /// Start the servers with --insecure and talk plain TCP to them. By
    /// default every run makes a CA and certificates in its temporary
    /// directory and everything is TLS.
    #[arg(long)]
    insecure: bool,
    /// The servers' --reads: how they serve gets (log, index or lease).
    #[arg(long, value_enum, default_value_t = ReadMode::Index)]
    reads: ReadMode,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.server.is_file() {
        return cli::usage(
            "harness",
            format!("server binary {} does not exist", args.server.display()),
        );
    }
    // Every file is read and parsed before anything runs: a typo in the
    // third file should not cost the time of the first two.
    let problems: Vec<String> = args
        .file
        .iter()
        .filter_map(|f| harness::load(f).err())
        .collect();
    if !problems.is_empty() {
        return cli::usage("harness", problems.join("\n"));
    }
    let opts = HarnessOptions {
        server: args.server,
        verbose: args.verbose,
        free_ports: args.free_ports,
        server_timeout_ms: args.server_timeout,
        request_deadline: Duration::from_millis(args.request_deadline.max(1)),
        settle: Duration::from_secs(10),
        keep_failed: args.keep_failed,
        insecure: args.insecure,
        reads: args.reads,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return cli::fail("harness", format!("cannot start the runtime: {e}")),
    };
    let (mut passed, mut failed, mut setup) = (0, 0, false);
    for file in &args.file {
        paxos_tcp::say!("=== scenario {}", file.display());
        let outcome = runtime.block_on(harness::run_file(&opts, file));
        if outcome.failures.is_empty() {
            passed += 1;
            paxos_tcp::say!(
                "PASS {}: {} of {} puts acknowledged, {} gets checked",
                file.display(),
                outcome.acked,
                outcome.sent,
                outcome.gets
            );
        } else {
            failed += 1;
            setup |= outcome.setup_failed;
            paxos_tcp::say!("FAIL {}:", file.display());
            for f in &outcome.failures {
                paxos_tcp::say!("  - {f}");
            }
            if let Some(dir) = &outcome.kept {
                paxos_tcp::say!("  data and server logs kept in {}", dir.display());
            }
        }
    }
    paxos_tcp::say!("{passed} passed, {failed} failed");
    if setup {
        eprintln!(
            "harness: error: the harness could not run every scenario as written (see above)"
        );
        ExitCode::from(2)
    } else if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
