//! `paxos-sim`: run many seeds, replay one, or draw one.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use paxos_sim::cli::RunArgs;
use paxos_sim::explore::{explore_with, Bounds, Sabotage as ExploreSabotage};
use paxos_sim::options::Bug;
use paxos_sim::replay_node::{self, Sketch};
use paxos_sim::runner::{run_seeds, Batch, Shard};
use paxos_sim::shrink::shrink;
use paxos_sim::trace::{draw, write_json_lines};
use paxos_sim::{run, HashChain, Options, OptionsError, Outcome, SimError};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Deterministic simulator for paxos-core: seeded faults, invariant checks,
/// replay and drawing of any run.
#[derive(Parser, Debug)]
#[command(
    name = "paxos-sim",
    version,
    after_help = "The run options (--nodes, --clients, --faults, --rate, --layout, the Config knobs, …) \
are shared by run, replay and draw: `paxos-sim run --help` lists them all.\n\
Exit status: 0 no violation (replay-node: identical actions), 1 a violation \
(replay-node: a step differs), 2 bad input."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run many seeds and print one summary line; a failure prints the
    /// invariant, the step and the command that replays it. Every seed draws
    /// its own shape (layout, size, limits, faults) unless pinned by a flag
    /// or `--defaults`.
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
        /// Stop at the first violation and say how long it took to find.
        #[arg(long)]
        fail_fast: bool,
        /// Run only the K-th of N disjoint slices of the seeds (K from 1);
        /// the N slices together run exactly the whole sweep.
        #[arg(long, value_parser = Shard::parse, default_value = "1/1")]
        shard: Shard,
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
    /// Feed a production node's flight recording (`chatroom-server
    /// --record FILE`, `abcast <role> <id> --record FILE`) to the same core
    /// and check that every step gives exactly the recorded actions.
    ReplayNode {
        /// The recording.
        file: PathBuf,
        /// Also draw what the node received and sent as an HTML diagram.
        #[arg(long, value_name = "HTML")]
        draw: Option<PathBuf>,
    },
    /// Run one seed and draw it as a self-contained HTML space-time diagram
    /// (exit status 1 if the run violates an invariant, as replay).
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
    /// List the deliberate bugs `--bug` can switch on (the bug zoo that
    /// shows the checkers have teeth).
    Bugs,
    /// Visit every state a small cluster of the real paxos-core roles can
    /// reach (breadth first), checking agreement and validity in each.
    ///
    /// Proposers, acceptors and learners are separate processes running
    /// `paxos_core::{Proposer, Acceptor, Learner}`. The network is the set of
    /// every message sent: any message may be delivered at any time, any
    /// number of times (loss, duplication, reordering). Other moves: tick a
    /// proposer or learner, submit a command to a proposer, crash and
    /// restart a process (also between a step's sends and a later write).
    /// A move that would pass a bound (ballot round, slot, catch-up
    /// queries, tick moves) is not taken. The defaults: 3 acceptors, 2
    /// proposers, no learner, 2 slots, round 1 (ballots 1.1 and 1.2), 2
    /// commands (c1 to proposer 1, c2 to proposer 2), 4 tick moves, no
    /// crash; larger bounds grow past memory (see sim/README.md). Prints
    /// states, transitions, depth and states/s; on a violation, exits 1
    /// with a path to it; exits 2 if --max-states stops it.
    Explore {
        #[command(flatten)]
        bounds: Bounds,
        /// Plant a bug in the harness (not the core) to see it caught.
        #[arg(long, value_enum, default_value = "none")]
        sabotage: ExploreSabotage,
    },
}

/// Why a command could not do its work (exit status 2).
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("{0}")]
    Explore(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Recording {
        path: PathBuf,
        source: paxos_record::ReplayError,
    },
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
        Command::Bugs => {
            for bug in Bug::ALL {
                println!("{:<30} {}", bug.name(), bug.describe());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explore { bounds, sabotage } => {
            println!("{}", bounds.describe());
            if sabotage != ExploreSabotage::None {
                println!("sabotage: {sabotage:?}");
            }
            let report = explore_with(&bounds, sabotage, &mut |r| {
                eprint!(
                    "\rdepth {} states {} transitions {} ({:.0} states/s)   ",
                    r.depth,
                    r.states,
                    r.transitions,
                    r.states_per_second()
                );
            })
            .map_err(CliError::Explore)?;
            eprintln!();
            if let Some(c) = &report.violation {
                println!("VIOLATION {}: {}", c.invariant, c.detail);
                println!("counterexample ({} moves):", c.steps.len());
                for (i, step) in c.steps.iter().enumerate() {
                    println!("{:4}. {step}", i + 1);
                }
            }
            println!("{report}");
            Ok(if report.violation.is_some() {
                ExitCode::FAILURE
            } else if !report.complete {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Run {
            seeds,
            first_seed,
            jobs,
            no_shrink,
            fail_fast,
            shard,
            run: args,
        } => {
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let batch = Batch {
                first: first_seed,
                count: seeds,
                shard,
                jobs,
                fail_fast,
            };
            let bar = ProgressBar::new(seeds.div_ceil(shard.count));
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {rate} seeds/s eta {eta}")
            {
                // indicatif's {per_sec} prints four decimals; whole seeds will do.
                bar.set_style(style.with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0}", state.per_sec());
                    },
                ));
            }
            let options = |seed| args.options(seed);
            let summary = run_seeds::<HashChain>(batch, &options, &|done| {
                if done % 64 == 0 {
                    bar.set_position(done);
                }
            })?;
            bar.finish_and_clear();
            if let (Some((seed, _)), Some(after)) =
                (summary.failures.first(), summary.first_failure_after)
            {
                println!(
                    "first violation after {:.1} s, {} seeds",
                    after.as_secs_f64(),
                    summary.seeds
                );
                let opts = args.options(*seed)?;
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
            println!("{}", summary.coverage);
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
            let (html, drawn) = draw(&outcome.events, &outcome.lanes, &title);
            std::fs::write(&output, html).map_err(|source| CliError::Write {
                path: output.clone(),
                source,
            })?;
            println!(
                "drew {} events ({} lanes, {} arrows, {} lost) to {}",
                drawn.events,
                drawn.lanes,
                drawn.arrows,
                drawn.lost,
                output.display()
            );
            report_failure(&opts, &outcome, false);
            Ok(if outcome.violation.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::ReplayNode { file, draw: html } => {
            let bytes = std::fs::read(&file).map_err(|source| CliError::Read {
                path: file.clone(),
                source,
            })?;
            let meta = paxos_record::meta(&bytes).map_err(|e| CliError::Recording {
                path: file.clone(),
                source: e.into(),
            })?;
            let mut sketch = Sketch::new(format!("{} {}", meta.kind, meta.id));
            let result = replay_node::replay(&bytes, &mut sketch);
            if let Some(path) = &html {
                let title = format!("paxos-sim replay-node {}", file.display());
                let (page, drawn) = draw(&sketch.events, &sketch.lanes, &title);
                std::fs::write(path, page).map_err(|source| CliError::Write {
                    path: path.clone(),
                    source,
                })?;
                println!(
                    "drew {} events ({} lanes, {} arrows) to {}",
                    drawn.events,
                    drawn.lanes,
                    drawn.arrows,
                    path.display()
                );
            }
            match result {
                Ok(sessions) => {
                    for (i, s) in sessions.iter().enumerate() {
                        println!(
                            "session {i} (pid {}, byte {}): {} steps, {} actions: identical{}",
                            s.pid,
                            s.offset,
                            s.steps,
                            s.actions,
                            s.torn.as_ref().map_or(String::new(), |t| format!(
                                "; the recording ends early: {t}"
                            ))
                        );
                    }
                    println!(
                        "{} {}: {} sessions, {} steps replayed to identical actions",
                        meta.kind,
                        meta.id,
                        sessions.len(),
                        sessions.iter().map(|s| s.steps).sum::<usize>()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(paxos_record::ReplayError::Mismatch(m)) => {
                    println!("DIFFERENT {m}");
                    Ok(ExitCode::FAILURE)
                }
                Err(source) => Err(CliError::Recording { path: file, source }),
            }
        }
    }
}
