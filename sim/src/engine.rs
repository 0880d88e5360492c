//! The engine: a discrete-event loop over one priority queue of timed events.
//! It orders events and hands each to the part of the simulation it concerns:
//! processes and disks ([`crate::cluster`]), clients ([`crate::workload`]),
//! faults ([`crate::faults`]).

use crate::check::{
    check_linearizability, check_liveness, check_reads, DeliveryChecker, ExecutionChecker, Failure,
    Invariant, Oracle, PromiseChecker, Reference,
};
use crate::cluster::{Act, Cmd, Msg, Node, Out};
use crate::durable::{DurableChecker, Limits};
use crate::faults::Scenario;
use crate::model::SimMachine;
use crate::netem::Network;
use crate::options::{Fault, Knob, Options, OptionsError, TICK_UNITS};
use crate::rng::{SimRng, Stream};
use crate::roles::{Layout, Proc, RestartError, Topology};
use crate::trace::{EventKind, TraceEvent, TraceHash};
use crate::workload::{Client, History, THINK_TICKS_MAX};
use paxos_core::{Command, DropReason, NodeId, Slot};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Election health after heal: once every fault has stopped and every node
/// is back, randomised timeouts and back-off must settle on one leader with
/// few campaigns, early. The worst seen over 20 000 swarm seeds was 5
/// campaigns, the last 5.2 election timeouts after heal; a timeout that is
/// not randomised, or back-off that does not work, goes well past these.
pub const CAMPAIGNS_AFTER_HEAL_MAX: u64 = 8;
/// Servers outside the first configuration in a run with the `reconfig`
/// fault: what it adds and swaps in.
pub const SPARES: usize = 2;
/// See [`CAMPAIGNS_AFTER_HEAL_MAX`]: no campaign may begin later than this
/// many election timeouts after heal.
pub const LAST_CAMPAIGN_TIMEOUTS_MAX: u64 = 8;

/// A broken invariant, where it broke, and what broke it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The invariant.
    pub invariant: Invariant,
    /// What was seen.
    pub detail: String,
    /// The step at which it was detected.
    pub step: u64,
    /// The logical time.
    pub t: u64,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} violated at step {} (t={}): {}",
            self.invariant, self.step, self.t, self.detail
        )
    }
}

/// Counters of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events processed.
    pub steps: u64,
    /// Messages delivered to nodes (what the messages/s figure counts).
    pub delivered: u64,
    /// Messages nodes sent (each destination counts once).
    pub sent: u64,
    /// Messages lost (dropped, cut, or to a crashed node).
    pub lost: u64,
    /// Node ticks.
    pub ticks: u64,
    /// Crashes.
    pub crashes: u64,
    /// Logs compacted (`Action::Compact` made durable).
    pub snapshots: u64,
    /// Snapshots servers sent to peers behind their retained values,
    /// counted when sent, lost or not.
    pub snapshots_sent: u64,
    /// Peer snapshots servers installed (the rest arrived late or twice).
    pub snapshots_installed: u64,
    /// Slots the oracle saw chosen.
    pub chosen: u64,
    /// Client requests invoked.
    pub invoked: u64,
    /// Client requests completed.
    pub completed: u64,
    /// Longest time from heal until every request completed, in ticks
    /// (the largest over a batch of seeds): how close runs come to the
    /// liveness bound.
    pub settle_ticks_max: u64,
    /// Most campaigns any run saw between heal and its liveness deadline.
    pub campaigns_after_heal_max: u64,
    /// Latest campaign after heal, over a batch, in thousandths of the
    /// run's election timeout after heal.
    pub last_campaign_millitimeouts_max: u64,
    /// Partial-connectivity scenarios run after heal.
    pub scenarios: u64,
    /// Longest time, over a batch, from the start of a scenario until a
    /// request invoked during it completed, in thousandths of the run's
    /// election timeout.
    pub regain_millitimeouts_max: u64,
    /// Reads served without a slot (read-index) and answered to clients.
    pub reads: u64,
    /// Leader transfers started (`Event::HandingOff`).
    pub transfers: u64,
    /// Of those, the ones whose named node then led in a higher ballot.
    pub transfers_done: u64,
    /// Longest time, over a batch, from a transfer's start until its named
    /// node led, in time units (`TICK_UNITS` to a tick).
    pub transfer_units_max: u64,
    /// Servers that lost their disk (the `wipe` fault).
    pub wipes: u64,
    /// Of those, the ones that rejoined (`Event::Rejoined`).
    pub rejoins: u64,
    /// Longest time from a wipe until its server rejoined, in time units.
    pub rejoin_units_max: u64,
    /// Leaders that, refused by one rival's acceptor, campaigned again at
    /// once above it instead of stepping down.
    pub bumps: u64,
    /// Membership changes asked of a leader (the `reconfig` fault).
    pub reconfigs_asked: u64,
    /// Stop-signs chosen: configurations begun after the first.
    pub reconfigurations: u64,
    /// Longest time, over a batch, from a stop-sign being chosen until a
    /// member of the configuration it began led, in time units.
    pub reconfig_units_max: u64,
}

impl Stats {
    /// Adds another run's counters to these.
    pub fn add(&mut self, o: &Stats) {
        self.steps += o.steps;
        self.delivered += o.delivered;
        self.sent += o.sent;
        self.lost += o.lost;
        self.ticks += o.ticks;
        self.crashes += o.crashes;
        self.snapshots += o.snapshots;
        self.snapshots_sent += o.snapshots_sent;
        self.snapshots_installed += o.snapshots_installed;
        self.chosen += o.chosen;
        self.invoked += o.invoked;
        self.completed += o.completed;
        self.settle_ticks_max = self.settle_ticks_max.max(o.settle_ticks_max);
        self.scenarios += o.scenarios;
        self.campaigns_after_heal_max = self
            .campaigns_after_heal_max
            .max(o.campaigns_after_heal_max);
        self.last_campaign_millitimeouts_max = self
            .last_campaign_millitimeouts_max
            .max(o.last_campaign_millitimeouts_max);
        self.regain_millitimeouts_max = self
            .regain_millitimeouts_max
            .max(o.regain_millitimeouts_max);
        self.reads += o.reads;
        self.transfers += o.transfers;
        self.transfers_done += o.transfers_done;
        self.reconfigs_asked += o.reconfigs_asked;
        self.reconfigurations += o.reconfigurations;
        self.reconfig_units_max = self.reconfig_units_max.max(o.reconfig_units_max);
        self.transfer_units_max = self.transfer_units_max.max(o.transfer_units_max);
        self.wipes += o.wipes;
        self.rejoins += o.rejoins;
        self.rejoin_units_max = self.rejoin_units_max.max(o.rejoin_units_max);
        self.bumps += o.bumps;
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Its counters.
    pub stats: Stats,
    /// Hash of every step; equal for two runs of the same options.
    pub trace_hash: u64,
    /// The first invariant that broke, if any.
    pub violation: Option<Violation>,
    /// Every event, if [`Options::record`] was set.
    pub events: Vec<TraceEvent>,
    /// Name of each process (the lanes of a diagram; `node` in events indexes it).
    pub lanes: Vec<String>,
}

/// Why a run could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The options describe no run that can be simulated.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// A process could not be built.
    #[error(transparent)]
    Restart(#[from] RestartError),
}

/// How far off real time `--lease-over-drift` runs clocks: far beyond any
/// drift bound a lease could absorb.
pub const LEASE_OVER_DRIFT_SKEW: f64 = 0.9;

/// Something that happens at a point in simulated time.
pub(crate) enum Ev<S: SimMachine> {
    /// A message on its way from one process to another.
    Net {
        from: usize,
        to: usize,
        sent_at: u64,
        msg: Msg<S>,
    },
    Tick {
        node: usize,
        incarnation: u32,
    },
    Sync {
        node: usize,
        incarnation: u32,
    },
    /// A client's request reaches a process.
    Propose {
        node: usize,
        client: usize,
        cmd: Command<Cmd<S>>,
    },
    Reply {
        client: usize,
        seq: u64,
        slot: Slot,
        output: Out<S>,
        leader: Option<NodeId>,
    },
    Refused {
        client: usize,
        seq: u64,
        reason: DropReason,
    },
    ClientTick {
        client: usize,
    },
    ClientNext {
        client: usize,
    },
    /// A client's read reaches a server.
    Read {
        node: usize,
        client: usize,
        id: u64,
        query: Cmd<S>,
    },
    ReadReply {
        client: usize,
        id: u64,
        slot: Slot,
        output: Out<S>,
    },
    /// A read was refused, or its client gave up waiting.
    ReadEnded {
        client: usize,
        id: u64,
    },
    FaultTick,
    /// The planned replacement (`Options::replace_at`).
    Replace,
    Restart {
        node: usize,
        incarnation: u32,
    },
    Heal,
    Deadline,
    ScenarioEnd,
}

impl<S: SimMachine> Ev<S> {
    fn tag(&self) -> u64 {
        match self {
            Ev::Net { .. } => 1,
            Ev::Tick { .. } => 2,
            Ev::Sync { .. } => 3,
            Ev::Propose { .. } => 4,
            Ev::Reply { .. } => 5,
            Ev::Refused { .. } => 6,
            Ev::ClientTick { .. } => 7,
            Ev::ClientNext { .. } => 8,
            Ev::FaultTick => 9,
            Ev::Restart { .. } => 10,
            Ev::Heal => 11,
            Ev::Deadline => 12,
            Ev::ScenarioEnd => 13,
            Ev::Read { .. } => 14,
            Ev::ReadReply { .. } => 15,
            Ev::ReadEnded { .. } => 16,
            Ev::Replace => 17,
        }
    }
}

struct Entry<S: SimMachine> {
    at: u64,
    seq: u64,
    ev: Ev<S>,
}

impl<S: SimMachine> PartialEq for Entry<S> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<S: SimMachine> Eq for Entry<S> {}
impl<S: SimMachine> PartialOrd for Entry<S> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<S: SimMachine> Ord for Entry<S> {
    // Reversed: the heap pops the earliest event, ties in scheduling order.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// One simulated run of a cluster of `paxos-core` processes running `S`.
pub struct Sim<S: SimMachine> {
    pub(crate) opts: Options,
    pub(crate) now: u64,
    pub(crate) step: u64,
    next_seq: u64,
    queue: BinaryHeap<Entry<S>>,
    pub(crate) nodes: Vec<Node<S>>,
    pub(crate) topo: Topology,
    pub(crate) route_buf: Vec<usize>,
    /// Chosen values a learner keeps (`Config::retain_slots`).
    pub(crate) retain_slots: u64,
    /// The same bound in commands (`Config::retain_commands`), and the
    /// most commands one value holds (`Config::batch_max`).
    pub(crate) retain_commands: u64,
    pub(crate) batch_max: u64,
    pub(crate) clients: Vec<Client<S>>,
    pub(crate) net: Network<Msg<S>>,
    pub(crate) fault_rng: SimRng,
    pub(crate) client_rng: SimRng,
    pub(crate) disk_rng: SimRng,
    pub(crate) oracle: Oracle<Cmd<S>>,
    pub(crate) deliveries: DeliveryChecker,
    pub(crate) executions: ExecutionChecker,
    pub(crate) promises: PromiseChecker,
    pub(crate) durable: DurableChecker,
    pub(crate) reference: Reference<S, Out<S>>,
    pub(crate) history: History<S::Command, Out<S>>,
    pub(crate) stats: Stats,
    pub(crate) hash: TraceHash,
    events: Vec<TraceEvent>,
    pub(crate) buf: Vec<Act<S>>,
    pub(crate) healed: bool,
    /// Campaigns since every node was at work again after heal (see
    /// `settled_at`), or since the latest configuration began if that was
    /// later, until the first liveness deadline; and when the last one
    /// began.
    pub(crate) campaigns_after_heal: u64,
    pub(crate) last_campaign_at: u64,
    /// When the last fault stopped: heal, or the end of a pause that was
    /// under way at heal, if later.
    pub(crate) settled_at: u64,
    /// The leader transfer under way: the node named, the ballot handed
    /// off, and when.
    pub(crate) transfer: Option<(usize, paxos_core::Ballot, u64)>,
    /// Per configuration after the first: when its stop-sign was chosen,
    /// and when one of its members first led in it.
    pub(crate) epochs: Vec<(u64, Option<u64>)>,
    /// The partial-connectivity scenario this run ends with, if any.
    pub(crate) scenario: Option<Scenario>,
    pub(crate) finished: bool,
    violation: Option<Violation>,
}

impl<S: SimMachine> std::fmt::Debug for Sim<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("opts", &self.opts)
            .field("now", &self.now)
            .field("step", &self.step)
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl<S: SimMachine> Sim<S> {
    /// Builds the run described by `opts` (checked with [`Options::validate`]).
    pub fn new(opts: Options) -> Result<Self, SimError> {
        opts.validate()?;
        let mut topo = Topology::new(opts.layout, opts.nodes).with_tuning(opts.tuning);
        let planned = opts.replace_at.is_some();
        if (opts.faults.contains(Fault::Reconfig) || planned) && opts.layout == Layout::Servers {
            topo = topo.with_spares(SPARES);
        }
        if opts.core_clients {
            topo = topo.with_core_clients(opts.clients);
        }
        let n = topo.len();
        let mut node_rng = SimRng::new(opts.seed, Stream::Nodes);
        let skew = if opts.faults.contains(Fault::Skew) {
            opts.rates.get(Fault::Skew)
        } else {
            0.0
        };
        // Leases assume clocks within the drift bound: skew keeps to it,
        // unless the run is about what breaking it costs.
        let skew = if opts.tuning.value(Knob::LeaseTicks) == 0 {
            skew
        } else if opts.lease_over_drift {
            LEASE_OVER_DRIFT_SKEW
        } else {
            skew.min(opts.tuning.value(Knob::ClockDriftPercent) as f64 / 100.0)
        };
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let mut process = Proc::recover(&topo, i, opts.seed, 0, None, std::iter::empty())?;
            process.set_bug(opts.bug);
            let u = node_rng.below(1 << 20) as f64 / (1u64 << 20) as f64;
            let period = (TICK_UNITS as f64 * (1.0 + skew * (2.0 * u - 1.0))).round() as u64;
            nodes.push(Node::new(process, period.max(1)));
        }
        let mut client_rng = SimRng::new(opts.seed, Stream::Clients);
        let clients = (0..opts.clients)
            .map(|c| {
                let mut client = Client::new(c, &topo, opts.seed, &mut client_rng);
                client.session.set_bug(opts.bug);
                client
            })
            .collect();
        let heal_at = opts.heal_tick * TICK_UNITS;
        let mut reference = Reference::new(S::fresh());
        if opts.read_percent > 0 {
            reference.keep_states();
        }
        let mut sim = Sim {
            now: 0,
            step: 0,
            next_seq: 0,
            queue: BinaryHeap::new(),
            route_buf: Vec::new(),
            retain_slots: topo.config(0, 0, 0).retain_slots,
            retain_commands: topo.config(0, 0, 0).retain_commands,
            batch_max: topo.config(0, 0, 0).batch_max as u64,
            clients,
            net: Network::new(n, opts.seed, opts.faults, opts.rates),
            fault_rng: SimRng::new(opts.seed, Stream::Faults),
            client_rng,
            disk_rng: SimRng::new(opts.seed, Stream::Disk),
            oracle: Oracle::new(topo.members().to_vec()),
            deliveries: DeliveryChecker::new(n),
            executions: ExecutionChecker::new(n),
            promises: PromiseChecker::new(n),
            durable: DurableChecker::new(n, limits(&topo.config(0, 0, 0))),
            reference,
            history: History::default(),
            stats: Stats::default(),
            hash: TraceHash::default(),
            events: Vec::new(),
            buf: Vec::new(),
            healed: false,
            campaigns_after_heal: 0,
            last_campaign_at: 0,
            settled_at: 0,
            transfer: None,
            epochs: Vec::new(),
            scenario: Scenario::draw(&opts),
            finished: false,
            violation: None,
            nodes,
            topo,
            opts,
        };
        for i in 0..n {
            let first = sim.fault_rng.below(TICK_UNITS);
            sim.schedule(
                first,
                Ev::Tick {
                    node: i,
                    incarnation: 0,
                },
            );
        }
        for c in 0..sim.clients.len() {
            let t = sim.client_rng.below(THINK_TICKS_MAX * TICK_UNITS) + TICK_UNITS;
            sim.schedule(t, Ev::ClientNext { client: c });
        }
        if !sim
            .opts
            .faults
            .iter()
            .all(|f| f == Fault::Skew || f == Fault::Disk)
        {
            sim.schedule(TICK_UNITS, Ev::FaultTick);
        }
        sim.schedule(heal_at, Ev::Heal);
        if let Some(at) = sim.opts.replace_at {
            sim.schedule(at * TICK_UNITS, Ev::Replace);
        }
        Ok(sim)
    }

    /// Time allowed after heal for every pending request to complete: a
    /// number of this run's election timeouts.
    pub fn liveness_bound(&self) -> u64 {
        let election = self.opts.tuning.value(Knob::ElectionTimeoutTicks);
        self.opts.liveness_timeouts * election * TICK_UNITS
    }

    /// Extra time after heal for learners to catch up: a learner that lost
    /// everything (every node restarted without a snapshot, say) learns the
    /// log again at one `catchup_chunk` of slots per round trip, so that
    /// work grows with the log. Two ticks per chunk of the slots chosen.
    pub(crate) fn catch_up_allowance(&self) -> u64 {
        let chunk = self.opts.tuning.value(Knob::CatchupChunk).max(1);
        (self.oracle.chosen_count() as u64).div_ceil(chunk) * 2 * TICK_UNITS
    }

    pub(crate) fn schedule(&mut self, at: u64, ev: Ev<S>) {
        self.next_seq += 1;
        self.queue.push(Entry {
            at,
            seq: self.next_seq,
            ev,
        });
    }

    pub(crate) fn record(
        &mut self,
        kind: EventKind,
        node: Option<usize>,
        label: impl FnOnce() -> String,
    ) {
        if self.opts.record {
            self.events.push(TraceEvent {
                step: self.step,
                t: self.now,
                kind,
                node,
                peer: None,
                sent_at: None,
                label: label(),
            });
        }
    }

    /// Records a message sent, received or lost.
    pub(crate) fn record_transfer(
        &mut self,
        kind: EventKind,
        from: usize,
        to: usize,
        sent_at: u64,
        msg: &Msg<S>,
    ) {
        if self.opts.record {
            self.events.push(TraceEvent {
                step: self.step,
                t: self.now,
                kind,
                node: Some(to),
                peer: Some(from),
                sent_at: Some(sent_at),
                label: match msg {
                    paxos_core::Message::Snapshot(s) => {
                        format!("snapshot up to slot {}", s.next_slot)
                    }
                    msg => crate::trace::describe(msg),
                },
            });
        }
    }

    pub(crate) fn fail(&mut self, failure: Failure) {
        if self.violation.is_some() {
            return;
        }
        let v = Violation {
            invariant: failure.invariant,
            detail: failure.detail,
            step: self.step,
            t: self.now,
        };
        self.record(EventKind::Violation, None, || v.to_string());
        self.violation = Some(v);
    }

    /// Runs to the end: every request done after heal, the liveness deadline,
    /// a violation, or `max_steps`.
    pub fn run(mut self) -> Outcome {
        while let Some(entry) = self.queue.pop() {
            if self.opts.max_steps.is_some_and(|m| self.step >= m) {
                break;
            }
            self.now = entry.at;
            self.step += 1;
            self.hash.add(entry.at);
            self.hash.add(entry.ev.tag());
            self.handle(entry.ev);
            if self.violation.is_some() || self.finished {
                break;
            }
        }
        if self.violation.is_none() {
            if let Err(f) =
                check_linearizability(&self.history.requests, &self.reference.executions)
            {
                self.fail(f);
            } else if let Err(f) = check_reads(
                &self.history.reads,
                &self.history.requests,
                &self.reference.executions,
                &self.reference,
                |s: &S, q: &S::Command| s.read(q),
            ) {
                self.fail(f);
            }
        }
        self.stats.steps = self.step;
        self.stats.chosen = self.oracle.chosen_count() as u64;
        self.stats.reconfigurations = self.epochs.len() as u64;
        self.stats.invoked = self.history.requests.len() as u64;
        self.stats.completed = self.history.completed() as u64;
        self.hash.add(self.stats.delivered);
        self.hash.add(self.stats.chosen);
        Outcome {
            stats: self.stats,
            trace_hash: self.hash.value(),
            violation: self.violation,
            events: self.events,
            lanes: self.topo.lane_names(),
        }
    }

    fn handle(&mut self, ev: Ev<S>) {
        match ev {
            Ev::Net {
                from,
                to,
                sent_at,
                msg,
            } => self.on_arrival(from, to, sent_at, msg),
            Ev::Tick { node, incarnation } => self.on_tick(node, incarnation),
            Ev::Sync { node, incarnation } => self.on_sync(node, incarnation),
            Ev::Propose { node, client, cmd } => self.on_propose(node, client, cmd),
            Ev::Reply {
                client,
                seq,
                slot,
                output,
                leader,
            } => self.on_reply(client, seq, slot, output, leader),
            Ev::Refused {
                client,
                seq,
                reason,
            } => self.on_refused(client, seq, reason),
            Ev::ClientTick { client } => self.on_client_tick(client),
            Ev::ClientNext { client } => self.on_client_next(client),
            Ev::Read {
                node,
                client,
                id,
                query,
            } => self.on_read(node, client, id, query),
            Ev::ReadReply {
                client,
                id,
                slot,
                output,
            } => self.on_read_reply(client, id, slot, output),
            Ev::ReadEnded { client, id } => self.on_read_ended(client, id),
            Ev::FaultTick => self.on_fault_tick(),
            Ev::Replace => self.planned_replacement(),
            Ev::Restart { node, incarnation } => self.restart(node, incarnation),
            Ev::Heal => self.on_heal(),
            Ev::Deadline => self.on_deadline(),
            Ev::ScenarioEnd => self.on_scenario_end(),
        }
    }
}

impl<S: SimMachine> Sim<S> {
    /// The liveness deadline after heal (or after a scenario): what was
    /// invoked before it must be done. A run that goes on to a scenario
    /// keeps its clients busy, so only what was invoked before heal counts.
    fn on_deadline(&mut self) {
        let heal_at = self.opts.heal_tick * TICK_UNITS;
        let invoked_by = match &self.scenario {
            Some(s) if s.started.is_none() => heal_at,
            _ => self.now,
        };
        let first = self.scenario.as_ref().is_none_or(|s| s.started.is_none());
        if first {
            self.check_elections(heal_at);
            if self.opts.liveness {
                self.check_rejoined();
                self.check_configuration_led();
            }
        }
        if self.opts.liveness {
            if let Err(f) = check_liveness(&self.history.requests, invoked_by, self.now) {
                self.fail(f);
            }
        }
        match &self.scenario {
            Some(s) if s.started.is_none() => self.start_scenario(),
            _ => self.finished = true,
        }
    }

    /// The latest configuration elected a leader by the first liveness
    /// deadline after heal.
    fn check_configuration_led(&mut self) {
        if let Some(&(began, None)) = self.epochs.last() {
            let e = self.epochs.len();
            self.fail(Failure::new(
                Invariant::Membership,
                format!(
                    "configuration {e} began at tick {} and none of its members had led in it by the liveness deadline",
                    began / TICK_UNITS
                ),
            ));
        }
    }

    /// Every server that lost its disk rejoined by the first liveness
    /// deadline after heal.
    fn check_rejoined(&mut self) {
        // A server outside the latest configuration has nothing to rejoin:
        // it never votes again unless a change names it, and then it
        // rejoins in that configuration.
        let latest = self.oracle.latest_members();
        let late = (0..self.nodes.len()).find(|&i| {
            self.nodes[i].wiped_at.is_some() && latest.contains(&self.topo.process(i).id)
        });
        if let Some(i) = late {
            let at = self.nodes[i].wiped_at.unwrap_or(0) / TICK_UNITS;
            self.fail(Failure::new(
                Invariant::Rejoin,
                format!("node {i} lost its disk at tick {at} and had not rejoined by the liveness deadline"),
            ));
        }
    }

    /// Elections after heal: how many, and how late the last one began,
    /// counted from when every node was at work again (a node paused at
    /// heal campaigns only when its pause ends, up to `PAUSE_TICKS` later).
    fn check_elections(&mut self, heal_at: u64) {
        let election = self.opts.tuning.value(Knob::ElectionTimeoutTicks) * TICK_UNITS;
        let settled_at = self.settled_at.max(heal_at);
        let last = if self.campaigns_after_heal == 0 {
            0
        } else {
            self.last_campaign_at.saturating_sub(settled_at) * 1000 / election
        };
        self.stats.campaigns_after_heal_max = self.campaigns_after_heal;
        self.stats.last_campaign_millitimeouts_max = last;
        if !self.opts.liveness {
            return;
        }
        // A lease refuses candidates for up to `lease_ticks` after each
        // acknowledgement, so each node may see one campaign refused more.
        let leases = self.opts.tuning.value(Knob::LeaseTicks) > 0;
        let campaigns_max =
            CAMPAIGNS_AFTER_HEAL_MAX + if leases { self.opts.nodes as u64 } else { 0 };
        if self.campaigns_after_heal > campaigns_max || last > LAST_CAMPAIGN_TIMEOUTS_MAX * 1000 {
            self.fail(Failure::new(
                Invariant::Elections,
                format!(
                    "{} campaigns after heal, the last {:.1} election timeouts in (at most {} campaigns, none after {} timeouts)",
                    self.campaigns_after_heal,
                    last as f64 / 1000.0,
                    campaigns_max,
                    LAST_CAMPAIGN_TIMEOUTS_MAX
                ),
            ));
        }
    }

    /// The scenario ends: what was invoked more than one liveness bound
    /// before its end must be done, or the cluster did not regain liveness
    /// under partial connectivity. Then the cuts lift.
    fn on_scenario_end(&mut self) {
        let bound = self.liveness_bound();
        if self.opts.liveness {
            let invoked_by = self.now.saturating_sub(bound);
            if let Err(mut f) = check_liveness(&self.history.requests, invoked_by, self.now) {
                let name = self.scenario.as_ref().map_or("", |s| s.kind.name());
                f.detail = format!("under the {name} scenario: {}", f.detail);
                self.fail(f);
            }
        }
        self.end_scenario();
        self.schedule(self.now + bound, Ev::Deadline);
    }

    /// Are clients still to send new requests? Until heal, and through a
    /// scenario.
    pub(crate) fn clients_active(&self) -> bool {
        !self.healed || self.scenario.as_ref().is_some_and(|s| s.ended.is_none())
    }

    /// Where the settle time after faults is measured from.
    pub(crate) fn settle_from(&self) -> u64 {
        match &self.scenario {
            Some(Scenario { ended: Some(t), .. }) => *t,
            _ => self.opts.heal_tick * TICK_UNITS,
        }
    }
}

/// The message bounds `config` promises (see [`Limits`]).
fn limits(config: &paxos_core::Config) -> Limits {
    Limits {
        batch_max: config.batch_max,
        catchup_chunk: config.catchup_chunk,
        promise_max: config
            .retain_slots
            .saturating_mul(2)
            .saturating_add(4 * config.pipeline_window as u64),
    }
}

/// Runs one simulation of `S` with `opts`.
pub fn run<S: SimMachine>(opts: Options) -> Result<Outcome, SimError> {
    Ok(Sim::<S>::new(opts)?.run())
}

/// The invariant a broken disk would break, for errors on restart.
pub(crate) fn restart_failure(e: &RestartError) -> Failure {
    Failure {
        invariant: Invariant::Durability,
        detail: format!("cannot recover from the disk: {e}"),
    }
}
