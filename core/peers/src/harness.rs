//! The one harness every library runs in: three replicas in one thread, lock-step
//! rounds whose messages travel in FIFO waves, and the figures of one timed run.

use std::time::{Duration, Instant};

/// Replicas per cluster.
pub const REPLICAS: usize = 3;

/// Most commands any replica may apply between two compactions of its log.
pub const COMPACT_EVERY: u64 = 65_536;

/// Most ticks spent electing a leader before the harness gives up.
const ELECTION_TICKS_MAX: u32 = 10_000;

/// Consecutive ticks the same leader must hold for the cluster to count as
/// settled.
const STABLE_TICKS: u32 = 20;

/// Most waves one round, or the quiet-down after a tick, may take.
const WAVES_MAX: u32 = 1_000;

/// Rounds between two looks at the clock and at the log lengths.
const SAMPLE_ROUNDS: u64 = 16;

/// A message on its way, with the indices (0-based) of both ends.
#[derive(Debug)]
pub struct Envelope<M> {
    /// The sender's index.
    pub from: usize,
    /// The receiver's index.
    pub to: usize,
    /// The message, passed by value.
    pub msg: M,
}

/// Where a library puts the messages it sends; the harness delivers them in the
/// next wave, in the order they were pushed.
pub type Outbox<M> = Vec<Envelope<M>>;

/// What every adapter is told when its cluster is built.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Commands proposed per round (N).
    pub per_round: u64,
    /// Most commands a replica applies between two compactions of its log.
    pub compact_every: u64,
}

impl Settings {
    /// The applied-command count since the last compaction at which an adapter
    /// that can only look after a round's worth of commands must compact, so
    /// that it never overshoots `compact_every`.
    pub fn compact_threshold(&self) -> u64 {
        self.compact_every.saturating_sub(self.per_round) + 1
    }
}

/// When each replica last compacted its log, and the longest stretch of
/// commands any replica went without compacting.
#[derive(Clone, Debug, Default)]
pub struct Compactions {
    /// Compactions since the last reset, over all replicas.
    pub count: u64,
    /// Commands applied by each replica at its last compaction.
    pub applied_at_last: [u64; REPLICAS],
    /// Most commands applied between two compactions of one replica.
    pub longest_gap: u64,
}

impl Compactions {
    /// Notes that replica `node`, having applied `applied` commands, compacted
    /// its log.
    pub fn record(&mut self, node: usize, applied: u64) {
        let gap = applied - self.applied_at_last[node];
        self.longest_gap = self.longest_gap.max(gap);
        self.applied_at_last[node] = applied;
        self.count += 1;
    }

    /// Commands replica `node` applied since its last compaction.
    pub fn since_last(&self, node: usize, applied: u64) -> u64 {
        applied - self.applied_at_last[node]
    }

    /// Forgets the count and the longest gap, keeping where each replica last
    /// compacted (the warm-up's compactions bound the first timed gap).
    pub fn reset(&mut self) {
        self.count = 0;
        self.longest_gap = 0;
    }
}

/// One library's three-replica cluster, as the harness drives it. Every
/// method that can make a replica send pushes those messages to `out`.
pub trait Cluster {
    /// The library's message type, passed by value.
    type Msg;
    /// The name printed in the report.
    const NAME: &'static str;

    /// Builds three fresh replicas with empty in-memory logs.
    fn new(settings: Settings) -> Self;
    /// One period of logical time passes on replica `node`.
    fn tick(&mut self, node: usize, out: &mut Outbox<Self::Msg>);
    /// Proposes command `command` at replica `node`.
    fn propose(&mut self, node: usize, command: u64, out: &mut Outbox<Self::Msg>);
    /// Hands `msg` from replica `from` to replica `to`.
    fn deliver(&mut self, from: usize, to: usize, msg: Self::Msg, out: &mut Outbox<Self::Msg>);
    /// Called on every replica after each wave (and after each batch of
    /// proposals or ticks): a library that hands out its effects in batches
    /// persists, applies and sends them here.
    fn flush(&mut self, node: usize, out: &mut Outbox<Self::Msg>);
    /// The replica every replica agrees leads and that can take proposals.
    fn leader(&self) -> Option<usize>;
    /// Commands replica `node` has applied to its state machine.
    fn applied(&self, node: usize) -> u64;
    /// Records (or entries) in replica `node`'s in-memory log.
    fn log_len(&self, node: usize) -> usize;
    /// The compactions the adapter has seen.
    fn compactions(&mut self) -> &mut Compactions;
}

/// The figures of one timed run.
#[derive(Clone, Debug)]
pub struct Figures {
    /// Commands proposed and applied on every replica.
    pub commands: u64,
    /// Wall-clock time they took.
    pub elapsed: Duration,
    /// True if the run stopped at its time limit before all its commands.
    pub cut_short: bool,
    /// Longest in-memory log seen on any replica (sampled every few rounds).
    pub log_max: usize,
    /// Compactions during the run, over all replicas.
    pub compactions: u64,
    /// Most commands a replica applied without compacting its log.
    pub longest_gap: u64,
}

impl Figures {
    /// Commands applied on every replica per second.
    pub fn rate(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64()
    }
}

/// A cluster, the network between its replicas, and the elected leader.
#[derive(Debug)]
pub struct Harness<C: Cluster> {
    cluster: C,
    settings: Settings,
    /// Messages of the next wave.
    wire: Outbox<C::Msg>,
    /// The wave being delivered (kept to reuse its allocation).
    wave: Outbox<C::Msg>,
    leader: usize,
    /// Commands proposed so far; the next one proposed is this number.
    proposed: u64,
}

impl<C: Cluster> Harness<C> {
    /// Builds the cluster and ticks it until a leader holds for
    /// [`STABLE_TICKS`] ticks in a row.
    pub fn new(settings: Settings) -> Self {
        Harness::with_cluster(C::new(settings), settings)
    }

    /// [`Harness::new`] for a cluster built by other means (another
    /// configuration than the one `C::new` picks).
    pub fn with_cluster(cluster: C, settings: Settings) -> Self {
        let mut harness = Harness {
            cluster,
            settings,
            wire: Vec::new(),
            wave: Vec::new(),
            leader: 0,
            proposed: 0,
        };
        harness.elect();
        harness
    }

    fn elect(&mut self) {
        let mut held = 0;
        let mut last = None;
        for _ in 0..ELECTION_TICKS_MAX {
            for node in 0..REPLICAS {
                self.cluster.tick(node, &mut self.wire);
            }
            self.flush_all();
            let mut waves = 0;
            while !self.wire.is_empty() {
                waves += 1;
                assert!(waves <= WAVES_MAX, "{}: no quiet after a tick", C::NAME);
                self.deliver_wave();
            }
            let now = self.cluster.leader();
            held = if now.is_some() && now == last {
                held + 1
            } else {
                1
            };
            last = now;
            if let (Some(leader), true) = (now, held >= STABLE_TICKS) {
                self.leader = leader;
                return;
            }
        }
        panic!(
            "{}: no stable leader after {ELECTION_TICKS_MAX} ticks",
            C::NAME
        );
    }

    fn flush_all(&mut self) {
        for node in 0..REPLICAS {
            self.cluster.flush(node, &mut self.wire);
        }
    }

    /// Delivers every message queued now, in order; what they cause waits for
    /// the next wave.
    fn deliver_wave(&mut self) {
        std::mem::swap(&mut self.wire, &mut self.wave);
        for env in self.wave.drain(..) {
            self.cluster
                .deliver(env.from, env.to, env.msg, &mut self.wire);
        }
        self.flush_all();
    }

    /// Proposes the next `n` commands at the leader, then delivers waves until
    /// every replica has applied them. Messages still in flight then (late
    /// acknowledgements) go first in the next round's waves.
    pub fn round(&mut self, n: u64) {
        for _ in 0..n {
            self.cluster
                .propose(self.leader, self.proposed, &mut self.wire);
            self.proposed += 1;
        }
        self.flush_all();
        let mut waves = 0;
        while (0..REPLICAS).any(|node| self.cluster.applied(node) < self.proposed) {
            assert!(
                !self.wire.is_empty(),
                "{}: the network is quiet but command {} is not applied everywhere",
                C::NAME,
                self.proposed - 1
            );
            waves += 1;
            assert!(
                waves <= WAVES_MAX,
                "{}: round takes too many waves",
                C::NAME
            );
            self.deliver_wave();
        }
    }

    /// Runs `commands` commands in rounds of `per_round`, stopping early (and
    /// saying so) once `limit` has passed.
    pub fn run(&mut self, commands: u64, limit: Duration) -> Figures {
        let per_round = self.settings.per_round;
        let rounds = commands / per_round;
        let first = self.proposed;
        self.cluster.compactions().reset();
        let mut log_max = 0;
        let mut cut_short = false;
        let start = Instant::now();
        for round in 0..rounds {
            self.round(per_round);
            if round % SAMPLE_ROUNDS == 0 {
                log_max = log_max.max(self.longest_log());
                if start.elapsed() > limit {
                    cut_short = round + 1 < rounds;
                    break;
                }
            }
        }
        let elapsed = start.elapsed();
        log_max = log_max.max(self.longest_log());
        for node in 0..REPLICAS {
            assert_eq!(
                self.cluster.applied(node),
                self.proposed,
                "{}: replica {node} applied more than was proposed",
                C::NAME
            );
        }
        let applied = self.proposed;
        let stats = self.cluster.compactions();
        let tail = (0..REPLICAS)
            .map(|node| stats.since_last(node, applied))
            .max()
            .unwrap_or(0);
        Figures {
            commands: self.proposed - first,
            elapsed,
            cut_short,
            log_max,
            compactions: stats.count,
            longest_gap: stats.longest_gap.max(tail),
        }
    }

    /// The cluster, to look inside between runs.
    pub fn cluster(&self) -> &C {
        &self.cluster
    }

    fn longest_log(&self) -> usize {
        (0..REPLICAS)
            .map(|node| self.cluster.log_len(node))
            .max()
            .unwrap_or(0)
    }

    /// Checks what every run must show: each replica compacted within
    /// `compact_every` commands and its log stayed bounded.
    pub fn check(&self, figures: &Figures) {
        let every = self.settings.compact_every;
        assert!(
            figures.longest_gap <= every,
            "{}: a replica went {} commands without compacting (limit {every})",
            C::NAME,
            figures.longest_gap
        );
        assert!(
            figures.log_max as u64 <= 4 * every,
            "{}: a log grew to {} records",
            C::NAME,
            figures.log_max
        );
    }
}

/// Resident memory of this process in KiB (`VmRSS` in `/proc/self/status`),
/// or 0 where that file does not exist.
pub fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
