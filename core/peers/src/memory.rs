//! The memory run: paxos-core alone, its default configuration apart from
//! the seeds, many commands in rounds of N, and the resident memory of the
//! process after a first stretch of commands and after all of them. With
//! retained values bounded by commands as well as slots, memory stays flat:
//! the second figure is within a small factor of the first.

use crate::core_adapter::PaxosCore;
use crate::harness::{resident_kib, Harness, Settings, COMPACT_EVERY, REPLICAS};
use paxos_core::Config;
use std::time::{Duration, Instant};

/// What one memory run measured.
#[derive(Clone, Debug)]
pub struct MemoryFigures {
    /// Commands per round.
    pub per_round: u64,
    /// `VmRSS` (KiB) once the leader was elected, before any command.
    pub start_kib: u64,
    /// Commands run at the first mark, and `VmRSS` (KiB) then.
    pub first: (u64, u64),
    /// Commands run in all, and `VmRSS` (KiB) then.
    pub last: (u64, u64),
    /// Wall-clock time of the whole run.
    pub elapsed: Duration,
    /// True if a stretch stopped at its time limit before all its commands.
    pub cut_short: bool,
    /// Per replica at the end: commands its learner retains, and commands
    /// in its acceptor's votes.
    pub retained: Vec<(u64, u64)>,
    /// Longest in-memory log seen, in records.
    pub log_max: usize,
    /// Compactions over both stretches, all replicas.
    pub compactions: u64,
}

impl MemoryFigures {
    /// Resident memory after all the commands over resident memory after
    /// the first mark.
    pub fn ratio(&self) -> f64 {
        self.last.1 as f64 / self.first.1.max(1) as f64
    }
}

/// Runs `first` commands, then more up to `total`, in rounds of
/// `per_round`, on three servers with paxos-core's defaults (a seed per
/// replica) changed only by `tune`, and reads `VmRSS` after each stretch.
/// Commands apply in order on every replica (the harness and the state
/// machine check it); nothing here looks at the clock but to report.
pub fn memory_run(
    first: u64,
    total: u64,
    per_round: u64,
    limit: Duration,
    tune: impl Fn(&mut Config),
) -> MemoryFigures {
    let configs = (0..REPLICAS)
        .map(|index| {
            let mut config = PaxosCore::default_config(index);
            tune(&mut config);
            config
        })
        .collect();
    let settings = Settings {
        per_round,
        compact_every: COMPACT_EVERY,
    };
    let mut harness = Harness::with_cluster(PaxosCore::with_configs(configs), settings);
    let start_kib = resident_kib();
    let started = Instant::now();
    let a = harness.run(first, limit);
    let first_kib = resident_kib();
    let b = harness.run(total.saturating_sub(first), limit);
    let last_kib = resident_kib();
    MemoryFigures {
        per_round,
        start_kib,
        first: (a.commands, first_kib),
        last: (a.commands + b.commands, last_kib),
        elapsed: started.elapsed(),
        cut_short: a.cut_short || b.cut_short,
        retained: harness.cluster().retained_commands(),
        log_max: a.log_max.max(b.log_max),
        compactions: a.compactions + b.compactions,
    }
}
