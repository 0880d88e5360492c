//! Runs many seeds, on several threads, and sums them up. The result does not
//! depend on the thread count: each seed is its own run, and failures are
//! reported in seed order. A batch may be one shard of a larger sweep, and
//! may stop at its first violation.

use crate::engine::{run, Stats, Violation};
use crate::model::SimMachine;
use crate::options::{Options, OptionsError};
use crate::swarm::Coverage;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a batch of seeds produced.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Counters summed over every seed.
    pub stats: Stats,
    /// Layouts and features the seeds exercised.
    pub coverage: Coverage,
    /// Failing seeds and what failed, by seed.
    pub failures: Vec<(u64, Violation)>,
    /// Wall-clock time (informational only).
    pub elapsed: Duration,
    /// Wall-clock time until the first violation was found, if one was.
    pub first_failure_after: Option<Duration>,
}

/// Which seeds of a sweep this batch runs: the `index`-th (from 1) of
/// `count` disjoint slices, seed by seed in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This slice, from 1.
    pub index: u64,
    /// How many slices.
    pub count: u64,
}

impl Shard {
    /// The whole sweep.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Parses `K/N` with `1 <= K <= N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("`{text}`: expected K/N with 1 <= K <= N, for example 2/8");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u64 = k.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Does the sweep's `k`-th seed (from 0) belong to this slice?
    pub fn owns(&self, k: u64) -> bool {
        k % self.count == self.index - 1
    }
}

impl Summary {
    /// Delivered messages per second of wall-clock time.
    pub fn messages_per_sec(&self) -> f64 {
        self.stats.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Adds another batch (another shard) to this one.
    pub fn add(&mut self, o: &Summary) {
        self.seeds += o.seeds;
        self.stats.add(&o.stats);
        self.coverage.add(&o.coverage);
        self.failures.extend(o.failures.iter().cloned());
        self.failures.sort_by_key(|(seed, _)| *seed);
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
        let elections = format!(
            "; after heal at most {} campaigns, the last {:.1} election timeouts in",
            self.stats.campaigns_after_heal_max,
            self.stats.last_campaign_millitimeouts_max as f64 / 1000.0
        );
        let scenarios = if self.stats.scenarios > 0 {
            format!(
                "; partial-connectivity scenarios {} (slowest regain {:.1} election timeouts)",
                self.stats.scenarios,
                self.stats.regain_millitimeouts_max as f64 / 1000.0
            )
        } else {
            String::new()
        };
        // "; NAME N (M DONE, slowest T ticks)" when any happened.
        let counted = |name: &str, n: u64, done_as: &str, done: u64, units: u64| {
            if n == 0 {
                return String::new();
            }
            let ticks = units as f64 / crate::options::TICK_UNITS as f64;
            format!("; {name} {n} ({done} {done_as}, slowest {ticks:.2} ticks)")
        };
        let s = &self.stats;
        let leaders = counted(
            "leader transfers",
            s.transfers,
            "led by the node named",
            s.transfers_done,
            s.transfer_units_max,
        ) + &counted(
            "disks lost",
            s.wipes,
            "rejoined",
            s.rejoins,
            s.rejoin_units_max,
        ) + &if s.reconfigs_asked > 0 {
            format!(
                "; reconfigurations {} of {} asked (slowest new leader {:.2} ticks after its stop-sign)",
                s.reconfigurations,
                s.reconfigs_asked,
                s.reconfig_units_max as f64 / crate::options::TICK_UNITS as f64
            )
        } else {
            String::new()
        } + &if s.bumps > 0 {
            format!("; leaders that outbid a rival {}", s.bumps)
        } else {
            String::new()
        };
        format!(
            "seeds {} steps {} messages delivered {} messages/s {:.0} violations {} ({:.1} s; requests {}/{} completed; reads {}; slowest settle after heal {} ticks{}; compactions {}{}{}{})",
            self.seeds,
            self.stats.steps,
            self.stats.delivered,
            self.messages_per_sec(),
            self.failures.len(),
            self.elapsed.as_secs_f64(),
            self.stats.completed,
            self.stats.invoked,
            self.stats.reads,
            self.stats.settle_ticks_max,
            elections,
            self.stats.snapshots,
            transfers,
            leaders,
            scenarios
        )
    }
}

/// How a batch runs.
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    /// First seed of the sweep.
    pub first: u64,
    /// Seeds in the whole sweep.
    pub count: u64,
    /// Which of them this batch runs.
    pub shard: Shard,
    /// Worker threads.
    pub jobs: usize,
    /// Stop at the first violation.
    pub fail_fast: bool,
}

/// Runs the seeds of `batch`, the options of each drawn by `options`,
/// calling `progress` after each seed with the number done.
pub fn run_seeds<S: SimMachine>(
    batch: Batch,
    options: &(dyn Fn(u64) -> Result<Options, OptionsError> + Sync),
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Summary, OptionsError> {
    options(batch.first)?;
    let start = Instant::now();
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let total = Mutex::new(Summary::default());
    let error = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..batch.jobs.max(1) {
            scope.spawn(|| {
                let mut local = Summary::default();
                while !stop.load(Ordering::Relaxed) {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= batch.count {
                        break;
                    }
                    if !batch.shard.owns(k) {
                        continue;
                    }
                    let seed = batch.first.wrapping_add(k);
                    let opts = match options(seed) {
                        Ok(o) => o,
                        Err(e) => {
                            *error.lock().expect("a worker panicked") = Some(e);
                            stop.store(true, Ordering::Relaxed);
                            break;
                        }
                    };
                    local.coverage.count(&opts);
                    match run::<S>(opts) {
                        Ok(outcome) => {
                            local.seeds += 1;
                            local.stats.add(&outcome.stats);
                            if let Some(v) = outcome.violation {
                                local.failures.push((seed, v));
                                let mut t = total.lock().expect("a worker panicked");
                                t.first_failure_after.get_or_insert(start.elapsed());
                                if batch.fail_fast {
                                    stop.store(true, Ordering::Relaxed);
                                }
                            }
                        }
                        Err(e) => unreachable!("options were validated: {e}"),
                    }
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                }
                total.lock().expect("a worker panicked").add(&local);
            });
        }
    });
    if let Some(e) = error.into_inner().expect("a worker panicked") {
        return Err(e);
    }
    let mut summary = total.into_inner().expect("a worker panicked");
    summary.elapsed = start.elapsed();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shards of a sweep, summed, are the sweep: same seeds, same
    /// counters, same coverage, same failures.
    #[test]
    fn a_sweep_split_into_shards_adds_up_to_the_whole_sweep() {
        use crate::model::HashChain;
        use crate::swarm::Pins;
        let pins = Pins::default(); // every seed draws its shape and faults
        let base = Options {
            max_steps: Some(20_000),
            ..Options::default()
        };
        let options = |seed| Ok(pins.options(seed, &base));
        let batch = |shard, jobs| Batch {
            first: 1,
            count: 120,
            shard,
            jobs,
            fail_fast: false,
        };
        let whole = run_seeds::<HashChain>(batch(Shard::ALL, 2), &options, &|_| {}).unwrap();
        let mut parts = Summary::default();
        for index in 1..=2 {
            let shard = Shard { index, count: 2 };
            let part = run_seeds::<HashChain>(batch(shard, 1), &options, &|_| {}).unwrap();
            assert!(part.seeds > 0 && part.seeds < whole.seeds);
            parts.add(&part);
        }
        assert_eq!(parts.seeds, 120);
        assert_eq!(parts.stats, whole.stats);
        assert_eq!(parts.coverage, whole.coverage);
        let seeds = |s: &Summary| s.failures.iter().map(|(seed, _)| *seed).collect::<Vec<_>>();
        assert_eq!(seeds(&parts), seeds(&whole));
    }

    #[test]
    fn shards_split_a_sweep_into_disjoint_slices_that_cover_it() {
        let shards: Vec<Shard> = (1..=3).map(|k| Shard { index: k, count: 3 }).collect();
        for k in 0..100 {
            assert_eq!(shards.iter().filter(|s| s.owns(k)).count(), 1);
        }
        assert_eq!(Shard::parse("2/8"), Ok(Shard { index: 2, count: 8 }));
        for bad in ["0/2", "3/2", "x/2", "2", "1/0"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }
}
