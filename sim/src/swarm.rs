//! Swarm testing: in a plain run every seed draws its own shape — layout,
//! size, clients, every `Config` limit down to small extremes, snapshots,
//! fault kinds and rates — from the seed, so that bugs hiding in
//! configurations nobody types are found by the command everybody types.
//! Whatever the command line gives is pinned; `--defaults` pins the rest to
//! the defaults instead.

use crate::options::{default_config, Fault, FaultSet, Knob, Options, Rates, Tuning};
use crate::rng::{SimRng, Stream};
use crate::roles::Layout;
use std::fmt;

/// What the command line fixed of a run's shape; everything else is drawn
/// per seed (or, with `defaults`, takes its default).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pins {
    /// `--nodes`.
    pub nodes: Option<usize>,
    /// `--clients`.
    pub clients: Option<usize>,
    /// `--faults`.
    pub faults: Option<FaultSet>,
    /// `--rate NAME=RATE`, per fault.
    pub rates: Vec<(Fault, f64)>,
    /// `--heal-tick`.
    pub heal_tick: Option<u64>,
    /// `--layout` with `--proposers` and `--learners`.
    pub layout: Option<Layout>,
    /// `--snapshot-ticks N`, or `--no-snapshots` (`Some(None)`).
    pub snapshot_ticks: Option<Option<u64>>,
    /// `--core-clients` (or `--no-core-clients`).
    pub core_clients: Option<bool>,
    /// `--read-percent`.
    pub read_percent: Option<u8>,
    /// Every `Config` knob given.
    pub tuning: Tuning,
    /// `--defaults`: what is not pinned takes its default, as before swarm
    /// testing; nothing is drawn.
    pub defaults: bool,
}

/// Proposers or learners apart, at most.
const ROLE_PROCESSES_MAX: u64 = 3;
/// Clients a drawn run has, at most.
const CLIENTS_DRAWN_MAX: u64 = 8;
/// Range of the drawn heal tick.
const HEAL_TICKS: (u64, u64) = (150, 400);
/// Range of the drawn snapshot period, in ticks.
const SNAPSHOT_TICKS: (u64, u64) = (3, 60);
/// Ranges of the drawn `retain_commands`: small and middling.
const RETAIN_COMMANDS_SMALL: (u64, u64) = (2, 16);
const RETAIN_COMMANDS_MID: (u64, u64) = (17, 512);

impl Pins {
    /// The options of seed `seed`: `base` (whose non-shape fields — liveness
    /// bound, max steps, sabotage, recording — are kept) with every pinned
    /// field as given and every other one drawn from the seed.
    pub fn options(&self, seed: u64, base: &Options) -> Options {
        let mut rng = SimRng::new(seed, Stream::Swarm);
        let defaults = Options::default();
        let mut o = Options {
            seed,
            ..base.clone()
        };
        let draw = !self.defaults;
        // Reads asked for on the command line need servers.
        let reads_pinned = self.read_percent.is_some_and(|p| p > 0);
        o.layout = self.layout.unwrap_or_else(|| {
            if draw && !reads_pinned && rng.chance(0.35) {
                Layout::Roles {
                    proposers: rng.between(1, ROLE_PROCESSES_MAX) as usize,
                    learners: rng.between(1, ROLE_PROCESSES_MAX) as usize,
                }
            } else {
                defaults.layout
            }
        });
        o.nodes = self.nodes.unwrap_or_else(|| {
            if draw {
                *pick(&mut rng, &[(50, 3), (35, 5), (15, 7)])
            } else {
                defaults.nodes
            }
        });
        o.clients = self.clients.unwrap_or_else(|| {
            if draw {
                rng.between(1, CLIENTS_DRAWN_MAX) as usize
            } else {
                defaults.clients
            }
        });
        let roles = o.layout != Layout::Servers;
        o.core_clients = self
            .core_clients
            .unwrap_or_else(|| draw && roles && rng.chance(0.3));
        o.heal_tick = self.heal_tick.unwrap_or_else(|| {
            if draw {
                rng.between(HEAL_TICKS.0, HEAL_TICKS.1)
            } else {
                defaults.heal_tick
            }
        });
        o.snapshot_ticks = self.snapshot_ticks.unwrap_or_else(|| {
            (draw && rng.chance(0.4)).then(|| rng.between(SNAPSHOT_TICKS.0, SNAPSHOT_TICKS.1))
        });
        o.faults = self.faults.unwrap_or_else(|| {
            if draw {
                Fault::ALL
                    .into_iter()
                    .filter(|_| rng.chance(0.75))
                    .fold(FaultSet::NONE, FaultSet::with)
            } else {
                defaults.faults
            }
        });
        o.rates = Rates::default();
        for f in Fault::ALL {
            if draw {
                // From a fifth to three times the default, log-uniformly.
                let factor = (rng.unit() * (15f64).ln()).exp() / 5.0;
                o.rates.set(f, (f.default_rate() * factor).min(1.0));
            }
        }
        for &(f, r) in &self.rates {
            o.rates.set(f, r);
        }
        o.tuning = if draw {
            draw_tuning(&mut rng, roles)
        } else {
            Tuning::default()
        };
        for k in Knob::ALL {
            if let Some(v) = self.tuning.get(k) {
                o.tuning.set(k, Some(v));
            }
        }
        // Pinned timeouts can make drawn ones inconsistent: keep the
        // heartbeat below the election timeout, and drawn ones at most half
        // of it. With heartbeats nearly as far apart as the shortest
        // timeout (8 and 9 ticks, say), a follower whose random timeout
        // came out short campaigns whenever message delays stretch one gap,
        // against a working leader: a misconfiguration, whose campaigns
        // the elections checker would report long after heal.
        let (hb, et) = (
            o.tuning.value(Knob::HeartbeatTicks),
            o.tuning.value(Knob::ElectionTimeoutTicks),
        );
        let hb_drawn = self.tuning.get(Knob::HeartbeatTicks).is_none();
        if hb >= et || (hb_drawn && 2 * hb > et) {
            if self.tuning.get(Knob::HeartbeatTicks).is_none() {
                o.tuning.set(Knob::HeartbeatTicks, Some((et / 3).max(1)));
            } else if self.tuning.get(Knob::ElectionTimeoutTicks).is_none() {
                o.tuning.set(Knob::ElectionTimeoutTicks, Some(hb + 1));
            }
        }
        // A knob at its default is no override: one shape, one spelling.
        for k in Knob::ALL {
            if o.tuning.get(k) == Some(k.default_value()) {
                o.tuning.set(k, None);
            }
        }
        // Drawn last, so that adding it left every earlier draw as it was.
        o.read_percent = self.read_percent.unwrap_or_else(|| {
            if draw && !roles && rng.chance(0.5) {
                *pick(&mut rng, &[(1, 10), (1, 30), (1, 70)])
            } else {
                0
            }
        });
        // Half the runs with reads serve them on leases.
        if draw && o.read_percent > 0 && rng.chance(0.5) {
            let et = o.tuning.value(Knob::ElectionTimeoutTicks);
            if self.tuning.get(Knob::LeaseTicks).is_none() && et > 2 {
                o.tuning
                    .set(Knob::LeaseTicks, Some(rng.between(et / 2, et - 1)));
            }
            if self.tuning.get(Knob::ClockDriftPercent).is_none() {
                let drift = *pick(&mut rng, &[(1, 1), (1, 5), (1, 20)]);
                // At its default it is no override (one shape, one spelling).
                let drift = (drift != Knob::ClockDriftPercent.default_value()).then_some(drift);
                o.tuning.set(Knob::ClockDriftPercent, drift);
            }
        }
        // The command bound on retained values, drawn after everything
        // else for the same reason as reads: small in a quarter of the
        // seeds (below one batch of a few slots, so trims and snapshots
        // come by commands, not slots), middling in another.
        if draw && self.tuning.get(Knob::RetainCommands).is_none() {
            let v = match rng.below(4) {
                0 => Some(rng.between(RETAIN_COMMANDS_SMALL.0, RETAIN_COMMANDS_SMALL.1)),
                1 => Some(rng.between(RETAIN_COMMANDS_MID.0, RETAIN_COMMANDS_MID.1)),
                _ => None,
            };
            o.tuning.set(Knob::RetainCommands, v);
        }
        o
    }
}

/// Picks one of `choices`, weighted.
fn pick<'a, T>(rng: &mut SimRng, choices: &'a [(u64, T)]) -> &'a T {
    let total: u64 = choices.iter().map(|(w, _)| w).sum();
    let mut k = rng.below(total);
    for (w, v) in choices {
        if k < *w {
            return v;
        }
        k -= w;
    }
    &choices[choices.len() - 1].1
}

/// Every `Config` knob, drawn: the default about half the time, otherwise
/// anything down to the smallest value that works.
fn draw_tuning(rng: &mut SimRng, roles: bool) -> Tuning {
    let d = default_config();
    let mut t = Tuning::default();
    let mut knob = |t: &mut Tuning, k: Knob, small: (u64, u64), mid: (u64, u64)| {
        let v = match rng.below(4) {
            0 => rng.between(small.0, small.1),
            1 => rng.between(mid.0, mid.1),
            _ => k.get(&d),
        };
        t.set(k, Some(v));
    };
    knob(&mut t, Knob::BatchMax, (1, 1), (2, 16));
    knob(&mut t, Knob::PipelineWindow, (1, 2), (3, 64));
    knob(&mut t, Knob::RetainSlots, (2, 8), (9, 256));
    knob(&mut t, Knob::CatchupChunk, (1, 2), (3, 64));
    knob(&mut t, Knob::PendingMax, (1, 4), (5, 64));
    knob(&mut t, Knob::ElectionTimeoutTicks, (5, 8), (9, 20));
    let election = t.value(Knob::ElectionTimeoutTicks);
    knob(
        &mut t,
        Knob::HeartbeatTicks,
        (1, 1),
        (1, (election - 1).max(1)),
    );
    knob(&mut t, Knob::RetransmitTicks, (1, 2), (3, 10));
    knob(&mut t, Knob::CatchupTicks, (1, 2), (3, 10));
    knob(&mut t, Knob::SnapshotResendTicks, (1, 5), (6, 40));
    if roles {
        // Below the slots chosen while every learner is cut off, a learner
        // apart can miss a value for good (see `Config::vote_history_slots`):
        // a misconfiguration, not a finding, so it is not drawn.
        knob(&mut t, Knob::VoteHistorySlots, (1024, 2048), (2049, 8192));
    }
    t
}

/// Which layouts and features a batch of seeds exercised, seed by seed: the
/// coverage the summary line reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Seeds with every role in every node.
    pub servers: u64,
    /// Seeds with the roles apart.
    pub roles: u64,
    /// Seeds of 3, 5 and 7 acceptors.
    pub sizes: [u64; 3],
    /// Seeds whose clients learn for themselves.
    pub core_clients: u64,
    /// Seeds that compact on a timer.
    pub snapshots: u64,
    /// Seeds whose clients also read without a slot.
    pub reads: u64,
    /// Seeds whose leaders serve reads on leases.
    pub leases: u64,
    /// Seeds that trim often (`retain_slots` ≤ 16).
    pub trimming: u64,
    /// Seeds that trim by commands often (`retain_commands` ≤ 16).
    pub trimming_commands: u64,
    /// Seeds whose leader pipelines (`batch_max` ≤ 16).
    pub pipelining: u64,
    /// Seeds with one slot in flight at most (`pipeline_window` = 1).
    pub window_one: u64,
    /// Seeds with tiny catch-up replies (`catchup_chunk` ≤ 2).
    pub small_chunks: u64,
    /// Seeds that refuse load early (`pending_max` ≤ 4).
    pub small_pending: u64,
    /// Seeds with each fault kind on, in [`Fault::ALL`] order.
    pub faults: [u64; Fault::ALL.len()],
}

impl Coverage {
    /// Counts the layout and features of one run.
    pub fn count(&mut self, o: &Options) {
        match o.layout {
            Layout::Servers => self.servers += 1,
            Layout::Roles { .. } => self.roles += 1,
        }
        match o.nodes {
            0..=3 => self.sizes[0] += 1,
            4..=5 => self.sizes[1] += 1,
            _ => self.sizes[2] += 1,
        }
        let t = &o.tuning;
        self.core_clients += u64::from(o.core_clients);
        self.snapshots += u64::from(o.snapshot_ticks.is_some());
        self.reads += u64::from(o.read_percent > 0);
        self.leases += u64::from(o.read_percent > 0 && t.value(Knob::LeaseTicks) > 0);
        self.trimming += u64::from(t.value(Knob::RetainSlots) <= 16);
        self.trimming_commands += u64::from(t.value(Knob::RetainCommands) <= 16);
        self.pipelining += u64::from(t.value(Knob::BatchMax) <= 16);
        self.window_one += u64::from(t.value(Knob::PipelineWindow) == 1);
        self.small_chunks += u64::from(t.value(Knob::CatchupChunk) <= 2);
        self.small_pending += u64::from(t.value(Knob::PendingMax) <= 4);
        for (i, f) in Fault::ALL.into_iter().enumerate() {
            self.faults[i] += u64::from(o.faults.contains(f));
        }
    }

    /// Adds another batch's coverage to this one.
    pub fn add(&mut self, o: &Coverage) {
        self.servers += o.servers;
        self.roles += o.roles;
        for i in 0..3 {
            self.sizes[i] += o.sizes[i];
        }
        self.core_clients += o.core_clients;
        self.snapshots += o.snapshots;
        self.reads += o.reads;
        self.leases += o.leases;
        self.trimming += o.trimming;
        self.trimming_commands += o.trimming_commands;
        self.pipelining += o.pipelining;
        self.window_one += o.window_one;
        self.small_chunks += o.small_chunks;
        self.small_pending += o.small_pending;
        for i in 0..Fault::ALL.len() {
            self.faults[i] += o.faults[i];
        }
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "coverage: servers {} roles {} | 3/5/7 nodes {}/{}/{} | core-clients {} snapshots {} reads {} leases {} \
             trimming {} trimming-commands {} pipelining {} window=1 {} chunk<=2 {} pending<=4 {} | faults",
            self.servers,
            self.roles,
            self.sizes[0],
            self.sizes[1],
            self.sizes[2],
            self.core_clients,
            self.snapshots,
            self.reads,
            self.leases,
            self.trimming,
            self.trimming_commands,
            self.pipelining,
            self.window_one,
            self.small_chunks,
            self.small_pending,
        )?;
        for (i, fault) in Fault::ALL.into_iter().enumerate() {
            write!(f, " {} {}", fault.name(), self.faults[i])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_shape_every_time_and_seeds_differ() {
        let pins = Pins::default();
        let base = Options::default();
        assert_eq!(pins.options(7, &base), pins.options(7, &base));
        let shapes: std::collections::BTreeSet<String> = (0..50)
            .map(|s| pins.options(s, &base).replay_args())
            .collect();
        assert!(shapes.len() > 45, "seeds draw their own shapes");
    }

    #[test]
    fn pinned_fields_are_kept_and_drawn_shapes_are_valid() {
        let pins = Pins {
            nodes: Some(5),
            faults: Some(FaultSet::all()),
            tuning: Tuning::default().with(Knob::BatchMax, 1),
            ..Pins::default()
        };
        for seed in 0..2000 {
            let o = pins.options(seed, &Options::default());
            assert_eq!((o.nodes, o.faults), (5, FaultSet::all()));
            assert_eq!(o.tuning.get(Knob::BatchMax), Some(1));
            o.validate().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
    }

    #[test]
    fn defaults_draw_nothing() {
        let pins = Pins {
            defaults: true,
            ..Pins::default()
        };
        let o = pins.options(9, &Options::default());
        assert_eq!(
            o,
            Options {
                seed: 9,
                ..Options::default()
            }
        );
    }

    #[test]
    fn a_replay_command_pins_exactly_the_drawn_shape() {
        for seed in 0..200 {
            let o = Pins::default().options(seed, &Options::default());
            let args = o.replay_args();
            assert!(args.contains("--defaults"), "{args}");
        }
    }
}
