//! `cargo bench -p paxos-peer-bench --features peers`: paxos-core, raft-rs and
//! OmniPaxos in one harness and one run, and the ratios of paxos-core to each.
//!
//! Without the feature only paxos-core runs. Arguments select configurations
//! (`paxos-core`, `raft-rs/100`, …; all when none is given), and
//! `PEER_BENCH_SCALE=0.1` shortens every timed run, which is handy under a
//! profiler. Every figure printed was measured in this run.
//!
//! `cargo bench -p paxos-peer-bench -- memory` is paxos-core's memory run
//! instead: defaults apart from the seeds, 10 M commands in rounds of 100,
//! and `VmRSS` after 1 M and after 10 M commands with their ratio.
//! `-- memory-slots-only` runs the same with `retain_commands` off
//! (`u64::MAX`), retained values bounded by slots alone, for contrast; run
//! each in a process of its own, since the allocator keeps what one run
//! freed.

use paxos_peer_bench::core_adapter::PaxosCore;
use paxos_peer_bench::harness::{resident_kib, Cluster, Figures, Harness, Settings, COMPACT_EVERY};
use paxos_peer_bench::memory::memory_run;
#[cfg(feature = "peers")]
use paxos_peer_bench::omnipaxos_adapter::OmniPaxosCluster;
#[cfg(feature = "peers")]
use paxos_peer_bench::raft_adapter::RaftRs;
use std::time::Duration;

/// Commands proposed per round in the two configurations.
const PER_ROUND: [u64; 2] = [1, 100];

/// Untimed commands before each timed run: enough for every library to reach
/// its steady state, compactions included (paxos-core's first snapshot comes
/// after two trim distances).
const WARM_UP: u64 = 3 * COMPACT_EVERY;

/// A timed run stops here even if its commands are not all done, and says so.
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// Commands in the timed run of each configuration: a fixed count per library
/// and N, sized so that each run takes roughly 2–5 s on the 2-core development
/// machine. These are workload sizes, not expected results.
fn timed_commands(library: &str, per_round: u64) -> u64 {
    match (library, per_round) {
        ("paxos-core", 1) => 4_000_000,
        ("paxos-core", _) => 20_000_000,
        ("raft-rs", 1) => 1_000_000,
        ("raft-rs", _) => 4_000_000,
        ("omnipaxos", 1) => 4_000_000,
        (_, _) => 20_000_000,
    }
}

/// One configuration's result.
struct Row {
    library: &'static str,
    per_round: u64,
    figures: Figures,
}

/// What to run: the arguments that are not cargo's flags, and the scale.
struct Selection {
    filters: Vec<String>,
    scale: f64,
}

impl Selection {
    fn from_env() -> Self {
        let filters = std::env::args()
            .skip(1)
            .filter(|arg| !arg.starts_with('-'))
            .collect();
        let scale = std::env::var("PEER_BENCH_SCALE")
            .ok()
            .map(|s| s.parse().expect("PEER_BENCH_SCALE is a number"))
            .unwrap_or(1.0);
        Selection { filters, scale }
    }

    fn wants(&self, library: &str, per_round: u64) -> bool {
        let both = format!("{library}/{per_round}");
        self.filters.is_empty() || self.filters.iter().any(|f| *f == library || *f == both)
    }
}

/// Builds `C`'s cluster, elects a leader, warms up, times the run, checks the
/// compaction bounds and prints one line with the memory before and after.
fn measure<C: Cluster>(per_round: u64, selection: &Selection) -> Option<Row> {
    if !selection.wants(C::NAME, per_round) {
        return None;
    }
    let before = resident_kib();
    let settings = Settings {
        per_round,
        compact_every: COMPACT_EVERY,
    };
    let mut harness = Harness::<C>::new(settings);
    harness.run(WARM_UP, TIME_LIMIT);
    let commands = (timed_commands(C::NAME, per_round) as f64 * selection.scale) as u64;
    let figures = harness.run(commands.max(per_round), TIME_LIMIT);
    harness.check(&figures);
    let after = resident_kib();
    println!(
        "{:<11} {:>4} {:>10} {:>7.2} {:>9.3} M {:>8} {:>6} {:>7}   {:>7} -> {:>7} KiB{}",
        C::NAME,
        per_round,
        figures.commands,
        figures.elapsed.as_secs_f64(),
        figures.rate() / 1e6,
        figures.log_max,
        figures.compactions,
        figures.longest_gap,
        before,
        after,
        if figures.cut_short {
            "  (stopped at the time limit)"
        } else {
            ""
        },
    );
    drop(harness);
    Some(Row {
        library: C::NAME,
        per_round,
        figures,
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Commands of the memory run, the mark at which memory is first read, and
/// the commands per round.
const MEMORY_TOTAL: u64 = 10_000_000;
const MEMORY_FIRST: u64 = 1_000_000;
const MEMORY_PER_ROUND: u64 = 100;

/// The memory run (see the module docs); `slots_only` switches the command
/// bound off.
fn memory(selection: &Selection, slots_only: bool) {
    let first = ((MEMORY_FIRST as f64 * selection.scale) as u64).max(MEMORY_PER_ROUND);
    let total = ((MEMORY_TOTAL as f64 * selection.scale) as u64).max(first);
    println!(
        "paxos-core memory run: 3 replicas in one thread, defaults apart from the seeds{}, \
         rounds of {MEMORY_PER_ROUND} commands",
        if slots_only {
            ", retain_commands = u64::MAX (retained values bounded by slots only)"
        } else {
            ""
        }
    );
    println!("load average at start: {}", load_average());
    let figures = memory_run(first, total, MEMORY_PER_ROUND, TIME_LIMIT * 20, |config| {
        if slots_only {
            config.retain_commands = u64::MAX;
        }
    });
    println!("VmRSS after election:        {:>9} KiB", figures.start_kib);
    println!(
        "VmRSS after {:>10} commands: {:>9} KiB",
        figures.first.0, figures.first.1
    );
    println!(
        "VmRSS after {:>10} commands: {:>9} KiB",
        figures.last.0, figures.last.1
    );
    println!(
        "ratio {} / {} commands: {:.2} (target <= 2)",
        figures.last.0,
        figures.first.0,
        figures.ratio()
    );
    println!(
        "{:.2} s in all; log max {} records; {} compactions; retained commands per replica \
         (learner, acceptor): {:?}{}",
        figures.elapsed.as_secs_f64(),
        figures.log_max,
        figures.compactions,
        figures.retained,
        if figures.cut_short {
            "  (stopped at the time limit)"
        } else {
            ""
        }
    );
    println!("load average at end: {}", load_average());
}

fn main() {
    let selection = Selection::from_env();
    if selection.filters.iter().any(|f| f.starts_with("memory")) {
        let slots_only = selection.filters.iter().any(|f| f == "memory-slots-only");
        memory(&selection, slots_only);
        return;
    }
    println!(
        "3 replicas in one thread; rounds of N commands at the leader, messages by value in \
         FIFO waves; in-memory logs compacted within {COMPACT_EVERY} commands"
    );
    println!("load average at start: {}", load_average());
    println!(
        "{:<11} {:>4} {:>10} {:>7} {:>11} {:>8} {:>6} {:>7}   {:>22}",
        "library",
        "N",
        "commands",
        "seconds",
        "commands/s",
        "log max",
        "compact",
        "gap max",
        "VmRSS before -> after"
    );
    let mut rows = Vec::new();
    for per_round in PER_ROUND {
        rows.extend(measure::<PaxosCore>(per_round, &selection));
        #[cfg(feature = "peers")]
        {
            rows.extend(measure::<RaftRs>(per_round, &selection));
            rows.extend(measure::<OmniPaxosCluster>(per_round, &selection));
        }
    }
    if cfg!(not(feature = "peers")) {
        println!("peers not built: `cargo bench -p paxos-peer-bench --features peers` adds them");
    }
    println!("load average at end: {}", load_average());
    for per_round in PER_ROUND {
        let find = |name: &str| {
            rows.iter()
                .find(|r| r.library == name && r.per_round == per_round)
                .map(|r| r.figures.rate())
        };
        let Some(ours) = find(PaxosCore::NAME) else {
            continue;
        };
        for peer in ["raft-rs", "omnipaxos"] {
            if let Some(theirs) = find(peer) {
                println!(
                    "N = {per_round:>3}: paxos-core / {peer:<9} = {:.2}",
                    ours / theirs
                );
            }
        }
    }
}
