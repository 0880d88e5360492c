//! `paxos-sim`: run many seeds, replay one, or draw one.
#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use paxos_sim::options::{FaultSet, Rates, Sabotage, Tuning};
use paxos_sim::runner::run_seeds;
use paxos_sim::shrink::shrink;
use paxos_sim::trace::{draw_html, write_json_lines};
use paxos_sim::{run, HashChain, Layout, Options, OptionsError, Outcome, SimError};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Deterministic simulator for paxos-core: seeded faults, invariant checks,
/// replay and drawing of any run.
#[derive(Parser, Debug)]
#[command(name = "paxos-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run many seeds and print one summary line; a failure prints the
    /// invariant, the step and the command that replays it.
    Run {
        /// How many seeds to run.
        #[arg(long, default_value_t = 1000)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 0)]
        first_seed: u64,
        /// Worker threads (defaults to the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Do not shrink a failing run.
        #[arg(long)]
        no_shrink: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run one seed again, exactly, and tell what happened.
    Replay {
        /// The seed.
        #[arg(long)]
        seed: u64,
        /// Write every event as JSON lines to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run one seed and draw it as a self-contained HTML space-time diagram.
    Draw {
        /// The seed.
        #[arg(long)]
        seed: u64,
        /// Output file.
        #[arg(short, long, default_value = "run.html")]
        output: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Number of servers.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Number of closed-loop clients.
    #[arg(long, default_value_t = 3)]
    clients: usize,
    /// Faults: `all`, `none`, or a comma list of drop, dup, reorder,
    /// partition, oneway, crash, slow, skew, isolate, storm, pause, disk.
    #[arg(long, default_value = "all", value_parser = FaultSet::parse)]
    faults: FaultSet,
    /// A fault's rate, as NAME=RATE (repeatable), e.g. --rate drop=0.2.
    #[arg(long = "rate", value_parser = Rates::parse_one)]
    rates: Vec<(paxos_sim::Fault, f64)>,
    /// Tick at which every fault stops (heal).
    #[arg(long, default_value_t = Options::default().heal_tick)]
    heal_tick: u64,
    /// After heal, pending requests must complete within this many election timeouts.
    #[arg(long, default_value_t = Options::default().liveness_timeouts)]
    liveness_timeouts: u64,
    /// Stop each run after this many steps.
    #[arg(long)]
    max_steps: Option<u64>,
    /// Break the driver contract on purpose to see the checkers catch it:
    /// none, send-before-sync, forget-disk.
    #[arg(long, default_value = "none", value_parser = Sabotage::parse)]
    sabotage: Sabotage,
    /// `servers` (every node runs every role) or `roles` (proposers,
    /// acceptors and learners apart; --nodes then counts the acceptors).
    #[arg(long, default_value = "servers", value_parser = ["servers", "roles"])]
    layout: String,
    /// Every this many ticks each server replaces its log by a snapshot and a
    /// checkpoint, and restarts from them.
    #[arg(long)]
    snapshot_ticks: Option<u64>,
    /// Chosen values learners keep for catch-up (Config::retain_slots).
    #[arg(long)]
    retain_slots: Option<u64>,
    /// Most commands per slot (Config::batch_max); small values fill the pipeline.
    #[arg(long)]
    batch_max: Option<usize>,
    /// Most slots in phase 2 at once (Config::pipeline_window).
    #[arg(long)]
    pipeline_window: Option<usize>,
    /// With --layout roles: clients are paxos-core Client processes that
    /// learn for themselves (as the multicast driver's client).
    #[arg(long)]
    core_clients: bool,
    /// Do not check liveness after heal (study safety alone).
    #[arg(long)]
    no_liveness: bool,
    /// Proposer processes, with --layout roles.
    #[arg(long, default_value_t = 2)]
    proposers: usize,
    /// Learner processes, with --layout roles.
    #[arg(long, default_value_t = 2)]
    learners: usize,
}

/// Why a command could not do its work (exit status 2).
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RunArgs {
    fn options(&self, seed: u64) -> Result<Options, OptionsError> {
        let mut rates = Rates::default();
        for &(f, r) in &self.rates {
            rates.set(f, r);
        }
        let opts = Options {
            seed,
            nodes: self.nodes,
            clients: self.clients,
            faults: self.faults,
            rates,
            heal_tick: self.heal_tick,
            liveness_timeouts: self.liveness_timeouts,
            max_steps: self.max_steps,
            record: false,
            sabotage: self.sabotage,
            liveness: !self.no_liveness,
            core_clients: self.core_clients,
            snapshot_ticks: self.snapshot_ticks,
            tuning: Tuning {
                retain_slots: self.retain_slots,
                batch_max: self.batch_max,
                pipeline_window: self.pipeline_window,
            },
            layout: if self.layout == "roles" {
                Layout::Roles {
                    proposers: self.proposers,
                    learners: self.learners,
                }
            } else {
                Layout::Servers
            },
        };
        opts.validate()?;
        Ok(opts)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn report_failure(opts: &Options, outcome: &Outcome, do_shrink: bool) {
    let Some(v) = &outcome.violation else { return };
    println!("VIOLATION {v}");
    println!("replay: paxos-sim replay {}", opts.replay_args());
    if do_shrink {
        let Some((small, sv)) = shrink::<HashChain>(opts, v.invariant) else {
            return;
        };
        println!(
            "shrunk ({} at step {}): paxos-sim replay {}",
            sv.invariant,
            sv.step,
            small.replay_args()
        );
    }
}

fn execute(command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Run {
            seeds,
            first_seed,
            jobs,
            no_shrink,
            run: args,
        } => {
            let base = args.options(first_seed)?;
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let bar = ProgressBar::new(seeds);
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {per_sec} eta {eta}")
            {
                bar.set_style(style);
            }
            let summary = run_seeds::<HashChain>(&base, first_seed, seeds, jobs, &|done| {
                if done % 64 == 0 {
                    bar.set_position(done);
                }
            })?;
            bar.finish_and_clear();
            if let Some((seed, _)) = summary.failures.first() {
                let opts = Options {
                    seed: *seed,
                    ..base.clone()
                };
                let outcome = run::<HashChain>(opts.clone())?;
                report_failure(&opts, &outcome, !no_shrink);
                if summary.failures.len() > 1 {
                    let more: Vec<String> = summary
                        .failures
                        .iter()
                        .skip(1)
                        .take(10)
                        .map(|(s, v)| format!("{s} ({})", v.invariant))
                        .collect();
                    println!("other failing seeds: {}", more.join(", "));
                }
            }
            println!("{}", summary.line());
            Ok(if summary.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Replay {
            seed,
            json,
            run: args,
        } => {
            let mut opts = args.options(seed)?;
            opts.record = json.is_some();
            let start = std::time::Instant::now();
            let outcome = run::<HashChain>(opts.clone())?;
            let elapsed = start.elapsed();
            if let Some(path) = json {
                let write_err = |source| CliError::Write {
                    path: path.clone(),
                    source,
                };
                let file = std::fs::File::create(&path).map_err(write_err)?;
                let mut w = std::io::BufWriter::new(file);
                write_json_lines(&outcome.events, &mut w)
                    .and_then(|()| w.flush())
                    .map_err(write_err)?;
                println!(
                    "wrote {} events to {}",
                    outcome.events.len(),
                    path.display()
                );
            }
            let s = &outcome.stats;
            println!(
                "seed {seed}: {} requests invoked, {} completed, {} slots chosen, {} crashes, {} messages lost, trace hash {:016x}",
                s.invoked, s.completed, s.chosen, s.crashes, s.lost, outcome.trace_hash
            );
            report_failure(&opts, &outcome, false);
            println!(
                "seeds 1 steps {} messages delivered {} messages/s {:.0} violations {}",
                s.steps,
                s.delivered,
                s.delivered as f64 / elapsed.as_secs_f64().max(1e-9),
                u8::from(outcome.violation.is_some())
            );
            Ok(if outcome.violation.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Draw {
            seed,
            output,
            run: args,
        } => {
            let mut opts = args.options(seed)?;
            opts.record = true;
            let outcome = run::<HashChain>(opts.clone())?;
            let title = format!("paxos-sim replay {}", opts.replay_args());
            let html = draw_html(&outcome.events, &outcome.lanes, &title);
            std::fs::write(&output, html).map_err(|source| CliError::Write {
                path: output.clone(),
                source,
            })?;
            println!(
                "drew {} events to {}",
                outcome.events.len(),
                output.display()
            );
            report_failure(&opts, &outcome, false);
            Ok(ExitCode::SUCCESS)
        }
    }
}
