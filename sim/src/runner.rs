//! Runs many seeds, on several threads, and sums them up. The result does not
//! depend on the thread count: each seed is its own run, and failures are
//! reported in seed order.

use crate::engine::{run, Stats, Violation};
use crate::model::SimMachine;
use crate::options::Options;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a batch of seeds produced.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Counters summed over every seed.
    pub stats: Stats,
    /// Failing seeds and what failed, by seed.
    pub failures: Vec<(u64, Violation)>,
    /// Wall-clock time (informational only).
    pub elapsed: Duration,
}

impl Summary {
    /// Delivered messages per second of wall-clock time.
    pub fn messages_per_sec(&self) -> f64 {
        self.stats.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The one line every run ends with (snapshot transfers only when any
    /// happened).
    pub fn line(&self) -> String {
        let transfers = if self.stats.snapshots_sent > 0 {
            format!(
                "; snapshots sent {} installed {}",
                self.stats.snapshots_sent, self.stats.snapshots_installed
            )
        } else {
            String::new()
        };
        format!(
            "seeds {} steps {} messages delivered {} messages/s {:.0} violations {} ({:.1} s; requests {}/{} completed; slowest settle after heal {} ticks{})",
            self.seeds,
            self.stats.steps,
            self.stats.delivered,
            self.messages_per_sec(),
            self.failures.len(),
            self.elapsed.as_secs_f64(),
            self.stats.completed,
            self.stats.invoked,
            self.stats.settle_ticks_max,
            transfers
        )
    }
}

/// Runs seeds `first..first + count` of `base` (whose own seed is ignored) on
/// `jobs` threads, calling `progress` after each seed with the number done.
pub fn run_seeds<S: SimMachine>(
    base: &Options,
    first: u64,
    count: u64,
    jobs: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Summary, crate::options::OptionsError> {
    base.validate()?;
    let start = Instant::now();
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let total = Mutex::new(Summary::default());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                let mut local = Summary::default();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= count {
                        break;
                    }
                    let opts = Options {
                        seed: first.wrapping_add(k),
                        record: false,
                        ..base.clone()
                    };
                    let seed = opts.seed;
                    match run::<S>(opts) {
                        Ok(outcome) => {
                            local.seeds += 1;
                            local.stats.add(&outcome.stats);
                            if let Some(v) = outcome.violation {
                                local.failures.push((seed, v));
                            }
                        }
                        Err(e) => unreachable!("options were validated: {e}"),
                    }
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                }
                let mut t = total.lock().expect("a worker panicked");
                t.seeds += local.seeds;
                t.stats.add(&local.stats);
                t.failures.extend(local.failures);
            });
        }
    });
    let mut summary = total.into_inner().expect("a worker panicked");
    summary.failures.sort_by_key(|(seed, _)| *seed);
    summary.elapsed = start.elapsed();
    Ok(summary)
}
