//! The options every `paxos-sim` command shares: which parts of a run's shape
//! to pin (the rest is drawn per seed, see [`crate::swarm`]) and how to judge
//! it. Here rather than in the binary so that tests can parse a printed
//! replay command back.

use crate::options::{
    parse_bug, Bug, Fault, FaultSet, Knob, Options, OptionsError, Rates, Sabotage, Tuning,
};
use crate::roles::Layout;
use crate::swarm::Pins;
use clap::Args;

/// The shape and judgement of a run. Every setting left out is drawn per
/// seed (swarm testing) unless `--defaults` is given.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Settings left out take their defaults instead of being drawn per seed.
    #[arg(long)]
    pub defaults: bool,
    /// Number of servers (or, with the roles apart, acceptors): 1 to 9.
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Number of closed-loop clients.
    #[arg(long)]
    pub clients: Option<usize>,
    /// Faults: `all`, `none`, or a comma list of drop, dup, reorder,
    /// partition, oneway, crash, slow, skew, isolate, storm, pause, disk,
    /// burst, restart, quorum-loss, constrained, chained, transfer, wipe, reconfig.
    #[arg(long, value_parser = FaultSet::parse)]
    pub faults: Option<FaultSet>,
    /// A fault's rate, as NAME=RATE (repeatable), e.g. --rate drop=0.2.
    #[arg(long = "rate", value_parser = Rates::parse_one)]
    pub rates: Vec<(Fault, f64)>,
    /// Tick at which every fault stops (heal).
    #[arg(long)]
    pub heal_tick: Option<u64>,
    /// After heal, pending requests must complete within this many election timeouts.
    #[arg(long, default_value_t = Options::default().liveness_timeouts)]
    pub liveness_timeouts: u64,
    /// Stop each run after this many steps.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Break the driver contract on purpose to see the checkers catch it:
    /// none, send-before-sync, forget-disk.
    #[arg(long, default_value = "none", value_parser = Sabotage::parse)]
    pub sabotage: Sabotage,
    /// Switch on one deliberate bug of the core in every process, to see
    /// the checkers catch it (`paxos-sim bugs` lists them).
    #[arg(long, default_value = "none", value_parser = parse_bug)]
    pub bug: Bug,
    /// `servers` (every node runs every role) or `roles` (proposers,
    /// acceptors and learners apart; --nodes then counts the acceptors).
    #[arg(long, value_parser = ["servers", "roles"])]
    pub layout: Option<String>,
    /// Proposer processes, with --layout roles.
    #[arg(long, default_value_t = 2)]
    pub proposers: usize,
    /// Learner processes, with --layout roles.
    #[arg(long, default_value_t = 2)]
    pub learners: usize,
    /// Every this many ticks each process compacts its log (servers into a
    /// snapshot plus checkpoint records).
    #[arg(long, conflicts_with = "no_snapshots")]
    pub snapshot_ticks: Option<u64>,
    /// No compaction on a timer.
    #[arg(long)]
    pub no_snapshots: bool,
    /// With --layout roles: clients are paxos-core Client processes that
    /// learn for themselves (as the multicast driver's client).
    #[arg(long, conflicts_with = "no_core_clients")]
    pub core_clients: bool,
    /// Clients talk to servers or proposers (never self-learning).
    #[arg(long)]
    pub no_core_clients: bool,
    /// Percent of client operations that are reads served without a slot
    /// (read-index), checked for linearizability with the writes. Servers
    /// layout only; 0 turns reads off.
    #[arg(long)]
    pub read_percent: Option<u8>,
    /// Do not check liveness after heal (study safety alone).
    #[arg(long)]
    pub no_liveness: bool,
    /// Config::heartbeat_ticks: leader heartbeat period.
    #[arg(long)]
    pub heartbeat_ticks: Option<u64>,
    /// Config::election_timeout_ticks: silence before a follower campaigns.
    #[arg(long)]
    pub election_timeout_ticks: Option<u64>,
    /// Config::retransmit_ticks: unanswered Prepare/Accept resent after this.
    #[arg(long)]
    pub retransmit_ticks: Option<u64>,
    /// Config::catchup_ticks: a stalled learner asks peers after this.
    #[arg(long)]
    pub catchup_ticks: Option<u64>,
    /// Config::snapshot_resend_ticks: least ticks between snapshots to one peer.
    #[arg(long)]
    pub snapshot_resend_ticks: Option<u64>,
    /// Config::pipeline_window: most new slots in phase 2 at once.
    #[arg(long)]
    pub pipeline_window: Option<u64>,
    /// Config::batch_max: most commands per slot (small values fill the pipeline).
    #[arg(long)]
    pub batch_max: Option<u64>,
    /// Config::pending_max: most commands waiting for a slot.
    #[arg(long)]
    pub pending_max: Option<u64>,
    /// Config::catchup_chunk: most slots in one catch-up reply.
    #[arg(long)]
    pub catchup_chunk: Option<u64>,
    /// Config::retain_slots: chosen values learners keep for catch-up.
    #[arg(long)]
    pub retain_slots: Option<u64>,
    /// Config::retain_commands: the same bound, counted in commands.
    #[arg(long)]
    pub retain_commands: Option<u64>,
    /// Config::vote_history_slots: votes acceptors apart keep below their trim point.
    #[arg(long)]
    pub vote_history_slots: Option<u64>,
    /// Config::lease_ticks: leader leases for reads (0 off; below the
    /// election timeout).
    #[arg(long)]
    pub lease_ticks: Option<u64>,
    /// Config::clock_drift_percent: the clock-drift bound leases assume;
    /// the skew fault stays within it unless --lease-over-drift.
    #[arg(long)]
    pub clock_drift_percent: Option<u64>,
    /// With leases: run clocks 60 % off real time, beyond the drift bound,
    /// to see stale reads reported (the checker's teeth).
    #[arg(long)]
    pub lease_over_drift: bool,
}

impl RunArgs {
    /// The `Config` overrides given.
    fn tuning(&self) -> Tuning {
        let mut t = Tuning::default();
        for (k, v) in [
            (Knob::HeartbeatTicks, self.heartbeat_ticks),
            (Knob::ElectionTimeoutTicks, self.election_timeout_ticks),
            (Knob::RetransmitTicks, self.retransmit_ticks),
            (Knob::CatchupTicks, self.catchup_ticks),
            (Knob::SnapshotResendTicks, self.snapshot_resend_ticks),
            (Knob::PipelineWindow, self.pipeline_window),
            (Knob::BatchMax, self.batch_max),
            (Knob::PendingMax, self.pending_max),
            (Knob::CatchupChunk, self.catchup_chunk),
            (Knob::RetainSlots, self.retain_slots),
            (Knob::RetainCommands, self.retain_commands),
            (Knob::VoteHistorySlots, self.vote_history_slots),
            (Knob::LeaseTicks, self.lease_ticks),
            (Knob::ClockDriftPercent, self.clock_drift_percent),
        ] {
            t.set(k, v);
        }
        t
    }

    /// What the command line pinned.
    pub fn pins(&self) -> Pins {
        Pins {
            nodes: self.nodes,
            clients: self.clients,
            faults: self.faults,
            rates: self.rates.clone(),
            heal_tick: self.heal_tick,
            layout: self.layout.as_deref().map(|l| match l {
                "roles" => Layout::Roles {
                    proposers: self.proposers,
                    learners: self.learners,
                },
                _ => Layout::Servers,
            }),
            snapshot_ticks: if self.no_snapshots {
                Some(None)
            } else {
                self.snapshot_ticks.map(Some)
            },
            core_clients: if self.core_clients {
                Some(true)
            } else if self.no_core_clients {
                Some(false)
            } else {
                None
            },
            read_percent: self.read_percent,
            tuning: self.tuning(),
            defaults: self.defaults,
        }
    }

    /// The judgement and limits every seed shares (the shape comes from
    /// [`RunArgs::pins`]).
    pub fn base(&self) -> Options {
        Options {
            liveness_timeouts: self.liveness_timeouts,
            max_steps: self.max_steps,
            sabotage: self.sabotage,
            lease_over_drift: self.lease_over_drift,
            replace_at: None,
            replace_leader: false,
            bug: self.bug,
            liveness: !self.no_liveness,
            ..Options::default()
        }
    }

    /// The options of seed `seed`, checked.
    pub fn options(&self, seed: u64) -> Result<Options, OptionsError> {
        let opts = self.pins().options(seed, &self.base());
        opts.validate()?;
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &str) -> RunArgs {
        Cli::try_parse_from(std::iter::once("paxos-sim").chain(args.split_whitespace()))
            .unwrap_or_else(|e| panic!("{args}: {e}"))
            .run
    }

    #[test]
    fn a_printed_replay_command_rebuilds_the_drawn_run_exactly() {
        let plain = parse("");
        for seed in 0..500 {
            let drawn = plain.options(seed).unwrap();
            let replay = drawn.replay_args();
            let args = replay.replace(&format!("--seed {seed} "), "");
            assert_eq!(parse(&args).options(seed).unwrap(), drawn, "{replay}");
        }
    }

    #[test]
    fn every_config_field_is_reachable_from_the_command_line() {
        let args = parse(
            "--heartbeat-ticks 1 --election-timeout-ticks 6 --retransmit-ticks 2 --catchup-ticks 3 \
             --snapshot-resend-ticks 4 --pipeline-window 5 --batch-max 6 --pending-max 7 \
             --catchup-chunk 8 --retain-slots 9 --retain-commands 12 --vote-history-slots 10 \
             --lease-ticks 5 --clock-drift-percent 11",
        );
        let o = args.options(0).unwrap();
        let mut config = crate::options::default_config();
        o.tuning.apply(&mut config);
        assert_eq!(
            Knob::ALL.map(|k| k.get(&config)),
            [1, 6, 2, 3, 4, 5, 6, 7, 8, 9, 12, 10, 5, 11]
        );
    }

    #[test]
    fn an_unusable_tuning_is_an_error_naming_the_setting() {
        let err = parse("--heartbeat-ticks 9 --election-timeout-ticks 9")
            .options(0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("heartbeat_ticks"), "{err}");
        let err = parse("--batch-max 0").options(0).unwrap_err().to_string();
        assert!(err.contains("batch_max"), "{err}");
    }
}
