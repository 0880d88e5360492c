//! What a run is made of: cluster size, clients, which faults are on and how
//! often they strike, and when the network heals. Every field shows up in the
//! replay command, so a printed command rebuilds the run exactly.

use crate::roles::Layout;
pub use paxos_core::zoo::Bug;
use std::fmt;

/// Parses a bug name as `--bug` takes it.
pub fn parse_bug(name: &str) -> Result<Bug, OptionsError> {
    Bug::parse(name).ok_or_else(|| OptionsError::UnknownBug {
        name: name.to_string(),
    })
}

/// Logical time units per node tick (a tick is 10 ms in a real driver, so a
/// unit is 10 µs). Network and disk latencies are drawn in these units.
pub const TICK_UNITS: u64 = 1_000;

/// One kind of fault the simulator can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// A message is lost.
    Drop,
    /// A message arrives twice.
    Duplicate,
    /// A message is held back long enough to overtake or be overtaken.
    Reorder,
    /// The nodes split into two groups that cannot talk.
    Partition,
    /// Messages from one group to another are lost, but not the other way.
    OneWay,
    /// A node crashes, loses what it had not synced, and restarts later.
    Crash,
    /// A node ticks several times slower than the others for a while.
    Slow,
    /// Each node's clock runs at its own rate for the whole faulty phase.
    Skew,
    /// The current leader is cut off from every other node.
    Isolate,
    /// A burst of old messages is delivered again.
    Storm,
    /// A node stalls (GC-like): no ticks, no messages, then everything at once.
    Pause,
    /// fsync takes long, and a crash keeps an arbitrary subset of unsynced writes.
    Disk,
    /// Several nodes crash at once (correlated failure: a rack, a deploy).
    Burst,
    /// Every node crashes at once, and all restart later.
    Restart,
    /// Partial connectivity after heal: only one node still reaches every
    /// other; the rest reach only it.
    QuorumLoss,
    /// Partial connectivity after heal: the leader is cut off and the one
    /// node that reaches a quorum is the least up to date.
    Constrained,
    /// Partial connectivity after heal: the nodes form a chain in which
    /// each reaches only its neighbours (with seven, two groups that reach
    /// each other only through one middle node).
    Chained,
    /// An operator asks the leader to hand the lead to a random node
    /// (`Input::Transfer`), as before a planned restart.
    Transfer,
    /// A server crashes and loses its disk, then restarts empty and
    /// rejoins the safe way (`Server::rejoin`). Servers layout, three or
    /// more nodes, one at a time.
    Wipe,
    /// An operator asks the leader to add a server, remove one (the
    /// leader included) or replace one by another (`Input::Reconfigure`),
    /// racing with whatever else strikes. Servers layout: two spare
    /// servers start outside the configuration, as learners.
    Reconfig,
}

impl Fault {
    /// Every fault, in a fixed order.
    pub const ALL: [Fault; 20] = [
        Fault::Drop,
        Fault::Duplicate,
        Fault::Reorder,
        Fault::Partition,
        Fault::OneWay,
        Fault::Crash,
        Fault::Slow,
        Fault::Skew,
        Fault::Isolate,
        Fault::Storm,
        Fault::Pause,
        Fault::Disk,
        Fault::Burst,
        Fault::Restart,
        Fault::QuorumLoss,
        Fault::Constrained,
        Fault::Chained,
        Fault::Transfer,
        Fault::Wipe,
        Fault::Reconfig,
    ];

    /// The partial-connectivity scenarios, which run after heal rather than
    /// during the faulty phase.
    pub const SCENARIOS: [Fault; 3] = [Fault::QuorumLoss, Fault::Constrained, Fault::Chained];

    /// Is this a partial-connectivity scenario?
    pub fn is_scenario(self) -> bool {
        Fault::SCENARIOS.contains(&self)
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Drop => "drop",
            Fault::Duplicate => "dup",
            Fault::Reorder => "reorder",
            Fault::Partition => "partition",
            Fault::OneWay => "oneway",
            Fault::Crash => "crash",
            Fault::Slow => "slow",
            Fault::Skew => "skew",
            Fault::Isolate => "isolate",
            Fault::Storm => "storm",
            Fault::Pause => "pause",
            Fault::Disk => "disk",
            Fault::Burst => "burst",
            Fault::Restart => "restart",
            Fault::QuorumLoss => "quorum-loss",
            Fault::Constrained => "constrained",
            Fault::Chained => "chained",
            Fault::Transfer => "transfer",
            Fault::Wipe => "wipe",
            Fault::Reconfig => "reconfig",
        }
    }

    /// What the rate of this fault means, for `--help` and errors.
    pub fn rate_meaning(self) -> &'static str {
        match self {
            Fault::Drop | Fault::Duplicate | Fault::Reorder => "probability per message",
            Fault::Skew => "largest relative deviation of a node's tick period",
            Fault::Disk => "probability that an unsynced write survives a crash",
            Fault::QuorumLoss | Fault::Constrained | Fault::Chained => {
                "probability that a run with it on ends with this scenario"
            }
            _ => "probability per tick that one starts",
        }
    }

    /// The rate used when none is given.
    pub fn default_rate(self) -> f64 {
        match self {
            Fault::Drop => 0.05,
            Fault::Duplicate => 0.02,
            Fault::Reorder => 0.10,
            Fault::Partition | Fault::OneWay | Fault::Crash => 0.01,
            Fault::Slow
            | Fault::Isolate
            | Fault::Storm
            | Fault::Pause
            | Fault::Transfer
            | Fault::Reconfig => 0.005,
            Fault::Skew => 0.3,
            Fault::Disk => 0.5,
            Fault::Burst | Fault::Wipe => 0.003,
            Fault::Restart => 0.002,
            Fault::QuorumLoss | Fault::Constrained | Fault::Chained => 0.5,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Parses a name as printed by [`Fault::name`].
    pub fn parse(name: &str) -> Result<Fault, OptionsError> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| OptionsError::UnknownFault {
                name: name.to_string(),
            })
    }
}

/// A set of faults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultSet(u32);

impl FaultSet {
    /// No faults at all.
    pub const NONE: FaultSet = FaultSet(0);

    /// Every fault.
    pub fn all() -> Self {
        Fault::ALL.into_iter().fold(Self::NONE, FaultSet::with)
    }

    /// This set plus `f`.
    pub fn with(self, f: Fault) -> Self {
        FaultSet(self.0 | 1 << f.index())
    }

    /// This set without `f`.
    pub fn without(self, f: Fault) -> Self {
        FaultSet(self.0 & !(1 << f.index()))
    }

    /// Is `f` on?
    pub fn contains(self, f: Fault) -> bool {
        self.0 & (1 << f.index()) != 0
    }

    /// The faults in the set, in [`Fault::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Fault> {
        Fault::ALL.into_iter().filter(move |f| self.contains(*f))
    }

    /// Parses `all`, `none`, or a comma-separated list of fault names.
    pub fn parse(text: &str) -> Result<Self, OptionsError> {
        match text.trim() {
            "all" => Ok(Self::all()),
            "none" | "" => Ok(Self::NONE),
            list => list
                .split(',')
                .map(|s| Fault::parse(s.trim()))
                .try_fold(Self::NONE, |set, f| Ok(set.with(f?))),
        }
    }
}

impl fmt::Display for FaultSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::all() {
            return f.write_str("all");
        }
        if *self == Self::NONE {
            return f.write_str("none");
        }
        let names: Vec<_> = self.iter().map(Fault::name).collect();
        f.write_str(&names.join(","))
    }
}

/// How often each fault strikes; see [`Fault::rate_meaning`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates([f64; Fault::ALL.len()]);

impl Default for Rates {
    fn default() -> Self {
        Rates(Fault::ALL.map(Fault::default_rate))
    }
}

impl Rates {
    /// The rate of `f`.
    pub fn get(&self, f: Fault) -> f64 {
        self.0[f.index()]
    }

    /// Sets the rate of `f`.
    pub fn set(&mut self, f: Fault, rate: f64) {
        self.0[f.index()] = rate;
    }

    /// Parses `name=rate`, as given to `--rate`.
    pub fn parse_one(text: &str) -> Result<(Fault, f64), OptionsError> {
        let bad = || OptionsError::RateSyntax {
            text: text.to_string(),
        };
        let (name, value) = text.split_once('=').ok_or_else(bad)?;
        let fault = Fault::parse(name.trim()).map_err(|_| OptionsError::UnknownRateFault {
            text: text.to_string(),
            name: name.trim().to_string(),
        })?;
        let rate: f64 = value.trim().parse().map_err(|_| bad())?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(OptionsError::Rate {
                fault: fault.name(),
                meaning: fault.rate_meaning(),
                rate,
            });
        }
        Ok((fault, rate))
    }
}

/// A deliberate break of the driver contract, to prove that the checkers
/// catch what such a bug does to a correct core. Never set in normal runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sabotage {
    /// The driver honours the contract.
    #[default]
    None,
    /// Actions after a `Persist` go out before the sync (no durability barrier).
    SendBeforeSync,
    /// A restarted node recovers from an empty disk, as if it lost its log.
    ForgetDisk,
}

impl Sabotage {
    /// Parses the command-line name.
    pub fn parse(text: &str) -> Result<Self, OptionsError> {
        match text {
            "none" => Ok(Sabotage::None),
            "send-before-sync" => Ok(Sabotage::SendBeforeSync),
            "forget-disk" => Ok(Sabotage::ForgetDisk),
            other => Err(OptionsError::UnknownSabotage {
                name: other.to_string(),
            }),
        }
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Sabotage::None => "none",
            Sabotage::SendBeforeSync => "send-before-sync",
            Sabotage::ForgetDisk => "forget-disk",
        }
    }
}

/// Everything that defines one simulated run besides the state machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Number of servers (each hosts every role).
    pub nodes: usize,
    /// Number of closed-loop clients.
    pub clients: usize,
    /// Faults switched on.
    pub faults: FaultSet,
    /// How often they strike.
    pub rates: Rates,
    /// Ticks of the faulty phase; then every fault stops ("heal").
    pub heal_tick: u64,
    /// After heal, every pending request must complete within this many
    /// election timeouts.
    pub liveness_timeouts: u64,
    /// Stop after this many simulation steps (used to cut a failing run short).
    pub max_steps: Option<u64>,
    /// Keep every event for JSON export and drawing (slower; off for bulk runs).
    pub record: bool,
    /// Break the driver on purpose (checker self-test).
    pub sabotage: Sabotage,
    /// Switch on one deliberate bug of the core in every process.
    pub bug: Bug,
    /// Servers, or roles apart (then `nodes` counts the acceptors).
    pub layout: Layout,
    /// Check liveness after heal (invariant 7). Off only to study safety
    /// alone where liveness is known to fail.
    pub liveness: bool,
    /// Every this many ticks, each process is asked to compact its log
    /// (`Input::Checkpoint`): servers replace it with a replica snapshot plus
    /// the records that rebuild the rest, and restart from them
    /// (`Server::restore`); acceptors and proposers apart with their records.
    pub snapshot_ticks: Option<u64>,
    /// Overrides of the core's `Config` defaults.
    pub tuning: Tuning,
    /// With the roles apart, clients are `paxos_core::Client` processes that
    /// learn for themselves from the learners' group (as the multicast
    /// driver's client does) instead of waiting for a replica's reply.
    pub core_clients: bool,
    /// Percent of client operations that are reads served without a slot
    /// (read-index; servers layout only; 0: every operation writes).
    pub read_percent: u8,
    /// With leases on: let the `skew` fault run clocks 60 % off real time,
    /// far beyond `clock_drift_percent`, to show what a broken drift
    /// assumption costs (stale reads). Otherwise skew stays within it.
    pub lease_over_drift: bool,
    /// A planned replacement at this tick (not on the command line; the
    /// replacement bench uses it): an operator asks the leader to replace
    /// one member, the leader itself when `replace_leader`, by a spare
    /// server, which the run then has.
    pub replace_at: Option<u64>,
    /// See `replace_at`.
    pub replace_leader: bool,
}

/// One tunable field of `paxos_core::Config`: everything but the identity
/// (id, members), the layout (`learners_apart`) and the seed, which the
/// simulator sets itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Knob {
    /// `Config::heartbeat_ticks`.
    HeartbeatTicks,
    /// `Config::election_timeout_ticks`.
    ElectionTimeoutTicks,
    /// `Config::retransmit_ticks`.
    RetransmitTicks,
    /// `Config::catchup_ticks`.
    CatchupTicks,
    /// `Config::snapshot_resend_ticks`.
    SnapshotResendTicks,
    /// `Config::pipeline_window`.
    PipelineWindow,
    /// `Config::batch_max`.
    BatchMax,
    /// `Config::pending_max`.
    PendingMax,
    /// `Config::catchup_chunk`.
    CatchupChunk,
    /// `Config::retain_slots`.
    RetainSlots,
    /// `Config::retain_commands`.
    RetainCommands,
    /// `Config::vote_history_slots` (used with the roles apart).
    VoteHistorySlots,
    /// `Config::lease_ticks` (leader leases for reads; 0 is off).
    LeaseTicks,
    /// `Config::clock_drift_percent` (the drift bound leases assume).
    ClockDriftPercent,
}

impl Knob {
    /// Every knob, in a fixed order.
    pub const ALL: [Knob; 14] = [
        Knob::HeartbeatTicks,
        Knob::ElectionTimeoutTicks,
        Knob::RetransmitTicks,
        Knob::CatchupTicks,
        Knob::SnapshotResendTicks,
        Knob::PipelineWindow,
        Knob::BatchMax,
        Knob::PendingMax,
        Knob::CatchupChunk,
        Knob::RetainSlots,
        Knob::RetainCommands,
        Knob::VoteHistorySlots,
        Knob::LeaseTicks,
        Knob::ClockDriftPercent,
    ];

    /// The command-line flag, without its dashes.
    pub fn flag(self) -> &'static str {
        match self {
            Knob::HeartbeatTicks => "heartbeat-ticks",
            Knob::ElectionTimeoutTicks => "election-timeout-ticks",
            Knob::RetransmitTicks => "retransmit-ticks",
            Knob::CatchupTicks => "catchup-ticks",
            Knob::SnapshotResendTicks => "snapshot-resend-ticks",
            Knob::PipelineWindow => "pipeline-window",
            Knob::BatchMax => "batch-max",
            Knob::PendingMax => "pending-max",
            Knob::CatchupChunk => "catchup-chunk",
            Knob::RetainSlots => "retain-slots",
            Knob::RetainCommands => "retain-commands",
            Knob::VoteHistorySlots => "vote-history-slots",
            Knob::LeaseTicks => "lease-ticks",
            Knob::ClockDriftPercent => "clock-drift-percent",
        }
    }

    /// The knob's value in `c`.
    pub fn get(self, c: &paxos_core::Config) -> u64 {
        match self {
            Knob::HeartbeatTicks => u64::from(c.heartbeat_ticks),
            Knob::ElectionTimeoutTicks => u64::from(c.election_timeout_ticks),
            Knob::RetransmitTicks => u64::from(c.retransmit_ticks),
            Knob::CatchupTicks => u64::from(c.catchup_ticks),
            Knob::SnapshotResendTicks => u64::from(c.snapshot_resend_ticks),
            Knob::PipelineWindow => c.pipeline_window as u64,
            Knob::BatchMax => c.batch_max as u64,
            Knob::PendingMax => c.pending_max as u64,
            Knob::CatchupChunk => c.catchup_chunk as u64,
            Knob::RetainSlots => c.retain_slots,
            Knob::RetainCommands => c.retain_commands,
            Knob::VoteHistorySlots => c.vote_history_slots,
            Knob::LeaseTicks => u64::from(c.lease_ticks),
            Knob::ClockDriftPercent => u64::from(c.clock_drift_percent),
        }
    }

    /// Sets the knob in `c` (saturating at the field's range).
    pub fn set(self, c: &mut paxos_core::Config, v: u64) {
        let ticks = u32::try_from(v).unwrap_or(u32::MAX);
        let count = usize::try_from(v).unwrap_or(usize::MAX);
        match self {
            Knob::HeartbeatTicks => c.heartbeat_ticks = ticks,
            Knob::ElectionTimeoutTicks => c.election_timeout_ticks = ticks,
            Knob::RetransmitTicks => c.retransmit_ticks = ticks,
            Knob::CatchupTicks => c.catchup_ticks = ticks,
            Knob::SnapshotResendTicks => c.snapshot_resend_ticks = ticks,
            Knob::PipelineWindow => c.pipeline_window = count,
            Knob::BatchMax => c.batch_max = count,
            Knob::PendingMax => c.pending_max = count,
            Knob::CatchupChunk => c.catchup_chunk = count,
            Knob::RetainSlots => c.retain_slots = v,
            Knob::RetainCommands => c.retain_commands = v,
            Knob::VoteHistorySlots => c.vote_history_slots = v,
            Knob::LeaseTicks => c.lease_ticks = ticks,
            Knob::ClockDriftPercent => c.clock_drift_percent = ticks,
        }
    }

    /// The core's default.
    pub fn default_value(self) -> u64 {
        self.get(&default_config())
    }
}

/// The core's default configuration (for a one-member cluster; only the
/// tunable fields are read from it).
pub fn default_config() -> paxos_core::Config {
    paxos_core::Config::new(paxos_core::NodeId(1), vec![paxos_core::NodeId(1)])
}

/// Overrides of `paxos_core::Config` defaults, one per [`Knob`], to reach
/// code paths the defaults leave cold (pipelining needs small batches;
/// trimming and catch-up limits need a small retain window).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tuning([Option<u64>; Knob::ALL.len()]);

impl Tuning {
    /// The override of `k`, if any.
    pub fn get(&self, k: Knob) -> Option<u64> {
        self.0[k as usize]
    }

    /// Sets (or with `None` clears) the override of `k`.
    pub fn set(&mut self, k: Knob, v: Option<u64>) {
        self.0[k as usize] = v;
    }

    /// The same overrides with `k` set to `v`.
    pub fn with(mut self, k: Knob, v: u64) -> Self {
        self.set(k, Some(v));
        self
    }

    /// Applies the overrides to `config`.
    pub fn apply(&self, config: &mut paxos_core::Config) {
        for k in Knob::ALL {
            if let Some(v) = self.get(k) {
                k.set(config, v);
            }
        }
    }

    /// The value `k` has once the overrides are applied to the defaults.
    pub fn value(&self, k: Knob) -> u64 {
        self.get(k).unwrap_or_else(|| k.default_value())
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 0,
            nodes: 5,
            clients: 3,
            faults: FaultSet::all(),
            rates: Rates::default(),
            heal_tick: 300,
            liveness_timeouts: 10,
            max_steps: None,
            record: false,
            sabotage: Sabotage::None,
            bug: Bug::None,
            layout: Layout::Servers,
            liveness: true,
            snapshot_ticks: None,
            tuning: Tuning::default(),
            core_clients: false,
            read_percent: 0,
            lease_over_drift: false,
            replace_at: None,
            replace_leader: false,
        }
    }
}

/// Most nodes a simulated cluster may have.
pub const NODES_MAX: usize = 9;
/// Most clients a run may have.
pub const CLIENTS_MAX: usize = 1_000;
/// Longest faulty phase, in ticks.
pub const HEAL_TICK_MAX: u64 = 1_000_000;

/// Options that describe no run that can be simulated. The text names the
/// command-line flag to fix.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OptionsError {
    /// A count or duration outside its bounds.
    #[error("--{flag} must be between {min} and {max}, not {value}")]
    OutOfRange {
        /// The flag.
        flag: &'static str,
        /// Least allowed.
        min: u64,
        /// Most allowed.
        max: u64,
        /// What was given.
        value: u64,
    },
    /// A flag that works only together with another setting.
    #[error("--{flag} needs {needs}")]
    Needs {
        /// The flag.
        flag: &'static str,
        /// What it needs.
        needs: &'static str,
    },
    /// A fault name that is not one.
    #[error("unknown fault `{name}`; expected `all`, `none` or a comma list of: {}", Fault::ALL.map(Fault::name).join(", "))]
    UnknownFault {
        /// What was given.
        name: String,
    },
    /// A `--rate` naming a fault that is not one.
    #[error("--rate {text}: unknown fault `{name}`; NAME is one of: {}", Fault::ALL.map(Fault::name).join(", "))]
    UnknownRateFault {
        /// The whole argument.
        text: String,
        /// The name in it.
        name: String,
    },
    /// A `--rate` that is not `NAME=RATE`.
    #[error("`{text}`: expected NAME=RATE with a number for RATE, for example drop=0.1")]
    RateSyntax {
        /// What was given.
        text: String,
    },
    /// A bug name that is not one.
    #[error("unknown bug `{name}`; `paxos-sim bugs` lists them")]
    UnknownBug {
        /// What was given.
        name: String,
    },
    /// A sabotage name that is not one.
    #[error("unknown sabotage `{name}`; expected none, send-before-sync or forget-disk")]
    UnknownSabotage {
        /// What was given.
        name: String,
    },
    /// The tuned `Config` cannot work.
    #[error("the tuning flags make an unusable configuration: {0}")]
    Config(paxos_core::ConfigError),
    /// A fault rate outside 0..=1.
    #[error("the rate of {fault} must be between 0 and 1 ({meaning}), not {rate}")]
    Rate {
        /// The fault.
        fault: &'static str,
        /// What its rate means.
        meaning: &'static str,
        /// What was given.
        rate: f64,
    },
}

impl Options {
    /// Checks that the options describe a run that can be simulated.
    pub fn validate(&self) -> Result<(), OptionsError> {
        let range = |flag, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(OptionsError::OutOfRange {
                    flag,
                    min,
                    max,
                    value,
                })
            }
        };
        range("nodes", self.nodes as u64, 1, NODES_MAX as u64)?;
        range("clients", self.clients as u64, 0, CLIENTS_MAX as u64)?;
        range("heal-tick", self.heal_tick, 0, HEAL_TICK_MAX)?;
        range(
            "liveness-timeouts",
            self.liveness_timeouts,
            1,
            u64::from(u32::MAX),
        )?;
        if let Layout::Roles {
            proposers,
            learners,
        } = self.layout
        {
            range("proposers", proposers as u64, 1, NODES_MAX as u64)?;
            range("learners", learners as u64, 1, NODES_MAX as u64)?;
        }
        if let Some(v) = self.snapshot_ticks {
            range("snapshot-ticks", v, 1, u64::MAX)?;
        }
        let mut config = default_config();
        self.tuning.apply(&mut config);
        config.validate().map_err(OptionsError::Config)?;
        range("read-percent", u64::from(self.read_percent), 0, 100)?;
        if self.read_percent > 0 && self.layout != Layout::Servers {
            return Err(OptionsError::Needs {
                flag: "read-percent",
                needs: "--layout servers",
            });
        }
        if self.core_clients && self.layout == Layout::Servers {
            return Err(OptionsError::Needs {
                flag: "core-clients",
                needs: "--layout roles",
            });
        }
        for f in Fault::ALL {
            let rate = self.rates.get(f);
            if !(0.0..=1.0).contains(&rate) {
                return Err(OptionsError::Rate {
                    fault: f.name(),
                    meaning: f.rate_meaning(),
                    rate,
                });
            }
        }
        Ok(())
    }

    /// The command-line arguments that rebuild this run, after `paxos-sim
    /// replay`: `--defaults` and every setting that differs from its
    /// default, so that nothing is drawn again.
    pub fn replay_args(&self) -> String {
        let d = Options::default();
        let mut s = format!("--seed {} --defaults", self.seed);
        if self.nodes != d.nodes {
            s += &format!(" --nodes {}", self.nodes);
        }
        if self.clients != d.clients {
            s += &format!(" --clients {}", self.clients);
        }
        if self.faults != d.faults {
            s += &format!(" --faults {}", self.faults);
        }
        if self.heal_tick != d.heal_tick {
            s += &format!(" --heal-tick {}", self.heal_tick);
        }
        if self.liveness_timeouts != d.liveness_timeouts {
            s += &format!(" --liveness-timeouts {}", self.liveness_timeouts);
        }
        for f in Fault::ALL {
            if self.rates.get(f) != f.default_rate() {
                s += &format!(" --rate {}={}", f.name(), self.rates.get(f));
            }
        }
        if let Some(n) = self.max_steps {
            s += &format!(" --max-steps {n}");
        }
        if let Layout::Roles {
            proposers,
            learners,
        } = self.layout
        {
            s += &format!(" --layout roles --proposers {proposers} --learners {learners}");
        }
        if self.core_clients {
            s += " --core-clients";
        }
        if self.read_percent > 0 {
            s += &format!(" --read-percent {}", self.read_percent);
        }
        if self.lease_over_drift {
            s += " --lease-over-drift";
        }
        if !self.liveness {
            s += " --no-liveness";
        }
        if let Some(n) = self.snapshot_ticks {
            s += &format!(" --snapshot-ticks {n}");
        }
        for k in Knob::ALL {
            if let Some(v) = self.tuning.get(k).filter(|&v| v != k.default_value()) {
                s += &format!(" --{} {v}", k.flag());
            }
        }
        if self.sabotage != Sabotage::None {
            s += &format!(" --sabotage {}", self.sabotage.name());
        }
        if self.bug != Bug::None {
            s += &format!(" --bug {}", self.bug.name());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_sets_parse_and_print_round_trip() {
        for text in ["all", "none", "drop,crash,disk"] {
            assert_eq!(FaultSet::parse(text).unwrap().to_string(), text);
        }
        assert!(FaultSet::parse("drop,teleport")
            .unwrap_err()
            .to_string()
            .contains("unknown fault `teleport`"));
    }

    #[test]
    fn rates_reject_nonsense() {
        assert_eq!(Rates::parse_one("drop=0.2"), Ok((Fault::Drop, 0.2)));
        assert!(Rates::parse_one("drop").is_err());
        assert!(Rates::parse_one("drop=2").is_err());
        assert!(Rates::parse_one("drop=x").is_err());
    }

    #[test]
    fn bad_options_are_errors() {
        let o = Options {
            nodes: 0,
            ..Options::default()
        };
        assert!(o.validate().unwrap_err().to_string().contains("--nodes"));
        assert!(Options::default().validate().is_ok());
    }
}
