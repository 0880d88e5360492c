//! `abcast`: one process of the atomic-broadcast service.
//! `abcast <role> <id>` or `abcast <config> <role> <id>`, as the old program's scripts call it;
//! `abcast keygen <file>` writes a fresh key for authenticated datagrams.

use clap::Parser;
use paxos_core::Role;
use paxos_multicast::auth::{generate_key_file, Key};
use paxos_multicast::conf::{Groups, ACCEPTORS_MAX, DEFAULT_ACCEPTORS};
use paxos_multicast::roles::{self, Options, COMMAND_BYTES_MAX, DEFAULT_BATCH_BYTES};
use paxos_multicast::wire::parse_role;
use std::path::PathBuf;
use std::process::ExitCode;

/// Atomic broadcast over UDP multicast (Multi-Paxos). Each process runs one
/// role; every learner prints the same values in the same order, each once.
#[derive(Debug, Parser)]
#[command(
    name = "abcast",
    version,
    override_usage = "abcast [OPTIONS] <ROLE> <ID>\n       abcast [OPTIONS] <CONFIG> <ROLE> <ID>\n       abcast keygen <FILE>",
    after_help = "ROLE is client, proposer, acceptor or learner. Clients read values from stdin, one per line, \
until EOF, and exit once all are delivered. Learners print each delivered value on its own line. \
Counters are printed on stderr on exit (SIGINT or SIGTERM for the servers).\n\n\
With a key (--key FILE, or a `key FILE` line in the config), every datagram carries an HMAC-SHA256 \
tag and a counter; datagrams that are forged, changed, replayed or unsigned are dropped and counted. \
Every process of a cluster needs the same key, or none. `abcast keygen FILE` writes a new key.\n\n\
Usual ids: acceptors 1-3, proposers 1-2, learners 1-2, clients 1-2."
)]
struct Cli {
    /// `<role> <id>`, or `<config> <role> <id>` with the config file first.
    #[arg(required = true, num_args = 2..=3, value_name = "ARGS")]
    args: Vec<String>,
    /// The configuration file (default: paxos.conf in the working directory).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// How many acceptors there are (ids 1..=N); overrides the file's acceptor-count line [default: 3].
    #[arg(long, value_name = "N")]
    acceptors: Option<u32>,
    /// Where acceptors and proposers keep their logs (delete it for a fresh cluster).
    #[arg(long, value_name = "DIR", default_value = "abcast-data")]
    data_dir: PathBuf,
    /// Testing only: drop each received datagram with this probability.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    drop_rate: f64,
    /// Client: bytes of values packed into one command (at most 2800, so
    /// that a promise holding such commands fits in one datagram).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BATCH_BYTES)]
    batch_bytes: usize,
    /// Client: give up (exit 1) once values have waited this many seconds
    /// without any being delivered (default: keep trying; a warning is
    /// logged every 5 s without progress).
    #[arg(long, value_name = "SECS")]
    deadline: Option<f64>,
    /// Flight recorder: append every input of this role's core (with its
    /// configuration, recovered log and a digest of each step's actions) to
    /// FILE, for `paxos-sim replay-node FILE`.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Key file (64 hex digits): authenticate every datagram; overrides the
    /// config's `key` line. Every process of the cluster needs the same key.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn options(cli: Cli) -> Result<Options, String> {
    let (file_arg, role, id) = match &cli.args[..] {
        [role, id] => (None, role, id),
        [file, role, id] => (Some(PathBuf::from(file)), role, id),
        _ => return Err("expected <role> <id> or <config> <role> <id>".into()),
    };
    let path = match (file_arg, cli.config) {
        (Some(_), Some(_)) => {
            return Err(
                "give the config file either as the first argument or with --config, not both"
                    .into(),
            )
        }
        (Some(p), None) | (None, Some(p)) => p,
        (None, None) => PathBuf::from("paxos.conf"),
    };
    let role: Role = parse_role(role)?;
    let id: u32 = id.parse().map_err(|_| {
        format!(
            "invalid id '{id}': expected a number from 0 to {}",
            u32::MAX
        )
    })?;
    let groups = Groups::load(&path).map_err(|e| e.to_string())?;
    // A relative `key` line is relative to the configuration file.
    let key_file = cli.key.clone().or_else(|| {
        groups
            .key_file
            .as_ref()
            .map(|k| path.parent().map_or_else(|| k.clone(), |dir| dir.join(k)))
    });
    let key = match key_file {
        None => None,
        Some(file) => Some(Key::load(&file).map_err(|e| e.to_string())?),
    };
    let acceptors = cli
        .acceptors
        .or(groups.acceptor_count)
        .unwrap_or(DEFAULT_ACCEPTORS);
    if !(1..=ACCEPTORS_MAX).contains(&acceptors) {
        return Err(format!(
            "--acceptors must be from 1 to {ACCEPTORS_MAX}, not {acceptors}"
        ));
    }
    if role == Role::Acceptor && !(1..=acceptors).contains(&id) {
        return Err(format!(
            "acceptor ids are 1 to {acceptors} (the acceptor count), not {id}"
        ));
    }
    if !(0.0..1.0).contains(&cli.drop_rate) {
        return Err(format!(
            "--drop-rate must be at least 0 and below 1, not {}",
            cli.drop_rate
        ));
    }
    if !(1..=COMMAND_BYTES_MAX).contains(&cli.batch_bytes) {
        return Err(format!(
            "--batch-bytes must be from 1 to {COMMAND_BYTES_MAX}, not {}",
            cli.batch_bytes
        ));
    }
    let deadline = match cli.deadline {
        None => None,
        Some(d) if d.is_finite() && d > 0.0 && d <= 1e9 => {
            Some(std::time::Duration::from_secs_f64(d))
        }
        Some(d) => {
            return Err(format!(
                "--deadline must be a positive number of seconds, not {d}"
            ))
        }
    };
    Ok(Options {
        groups,
        role,
        id,
        acceptors,
        data_dir: cli.data_dir,
        drop_rate: cli.drop_rate,
        batch_bytes: cli.batch_bytes,
        deadline,
        record: cli.record,
        key,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_ansi(false)
        .init();
    if let [verb, file] = &cli.args[..] {
        if verb == "keygen" {
            return match generate_key_file(std::path::Path::new(file)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("abcast: error: cannot write a key to {file}: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    let opts = match options(cli) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("abcast: error: {e}");
            return ExitCode::from(2);
        }
    };
    let (role, id) = (opts.role, opts.id);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("abcast: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(roles::run(opts)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(code.clamp(1, 255) as u8),
        Err(e) => {
            eprintln!("abcast {role} {id}: error: {e}");
            ExitCode::FAILURE
        }
    }
}
