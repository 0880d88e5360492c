//! Fault injection: once per tick of the faulty phase each switched-on fault
//! may strike (partitions, crashes and bursts of them, whole-cluster
//! restarts, slowness, leader isolation, storms, pauses); at heal every
//! fault stops. Drop, duplication, reordering and skew act per message or
//! per clock and live in the network and the nodes.
//!
//! A run may then end with a partial-connectivity scenario (quorum-loss,
//! constrained election, chained): once the cluster has recovered from the
//! faulty phase, some links are cut for [`SCENARIO_BOUNDS`] liveness bounds
//! while the clients keep going, and every request must complete within one
//! liveness bound (`--liveness-timeouts` election timeouts) although no fault
//! heals.

use crate::engine::{Ev, Sim};
use crate::model::SimMachine;
use crate::options::{Fault, Knob, Options, TICK_UNITS};
use crate::rng::{SimRng, Stream};
use crate::roles::{Kind, Layout};
use crate::trace::EventKind;
use paxos_core::{Input, NodeId};

/// How long a scenario lasts, in liveness bounds.
pub const SCENARIO_BOUNDS: u64 = 3;
/// How many nodes a burst crashes at most (at least two).
const BURST_NODES_MAX: u64 = 4;

/// How long partitions and cuts last, in ticks.
const CUT_TICKS: (u64, u64) = (5, 50);
/// How long a slow node stays slow, in ticks, and by what factor.
const SLOW_TICKS: (u64, u64) = (20, 100);
const SLOW_FACTOR: (u64, u64) = (2, 5);
/// With `--lease-over-drift`: how much slower an isolated leader's clock runs.
const OVER_DRIFT_SLOW_FACTOR: u64 = 5;
/// How long an isolated leader stays cut off, in ticks.
const ISOLATE_TICKS: (u64, u64) = (10, 60);
/// How long a pause lasts, in ticks.
const PAUSE_TICKS: (u64, u64) = (5, 40);
/// How many old messages a storm replays.
const STORM_MESSAGES: (u64, u64) = (20, 200);

impl<S: SimMachine> Sim<S> {
    /// Leases are on and clocks must keep to their drift bound.
    pub(crate) fn leases_within_drift(&self) -> bool {
        self.opts.tuning.value(Knob::LeaseTicks) > 0 && !self.opts.lease_over_drift
    }

    /// Leases are on and the run breaks their drift bound on purpose.
    fn leases_over_drift(&self) -> bool {
        self.opts.tuning.value(Knob::LeaseTicks) > 0 && self.opts.lease_over_drift
    }

    pub(crate) fn on_fault_tick(&mut self) {
        if self.healed {
            return;
        }
        let n = self.nodes.len();
        let faults = self.opts.faults;
        let rates = self.opts.rates;
        let now = self.now;
        for fault in faults.iter() {
            if matches!(
                fault,
                Fault::Drop | Fault::Duplicate | Fault::Reorder | Fault::Skew | Fault::Disk
            ) || fault.is_scenario()
            {
                continue;
            }
            if !self.fault_rng.chance(rates.get(fault)) {
                continue;
            }
            let victim = self.fault_rng.below(self.topo.servers() as u64) as usize;
            match fault {
                Fault::Partition | Fault::OneWay => {
                    if n < 2 {
                        continue;
                    }
                    let group = 1 + self.fault_rng.below((1 << n) - 2);
                    let until = now + self.fault_rng.between(CUT_TICKS.0, CUT_TICKS.1) * TICK_UNITS;
                    let both = fault == Fault::Partition;
                    self.net.cut_groups(group, both, until);
                    self.record(EventKind::Fault, None, || {
                        format!(
                            "{} {{{}}} until t={until}",
                            if both {
                                "partition"
                            } else {
                                "one-way cut from"
                            },
                            members(group, n)
                        )
                    });
                }
                Fault::Crash => self.crash(victim),
                Fault::Burst => {
                    let servers = self.topo.servers() as u64;
                    let count = self
                        .fault_rng
                        .between(2, BURST_NODES_MAX.min(servers).max(2));
                    let mut hit = 0u64;
                    for _ in 0..count {
                        hit |= 1 << self.fault_rng.below(servers);
                    }
                    self.record(EventKind::Fault, None, || {
                        format!("burst: nodes {{{}}} crash together", members(hit, n))
                    });
                    for i in 0..n {
                        if hit & (1 << i) != 0 {
                            self.crash(i);
                        }
                    }
                }
                Fault::Restart => {
                    self.record(EventKind::Fault, None, || {
                        "every node crashes: whole-cluster restart".into()
                    });
                    for i in 0..self.topo.servers() {
                        self.crash(i);
                    }
                }
                Fault::Slow => {
                    let clocks_bound = self.leases_within_drift();
                    let node = &mut self.nodes[victim];
                    node.slow_factor = self.fault_rng.between(SLOW_FACTOR.0, SLOW_FACTOR.1);
                    if clocks_bound {
                        // A slow clock would break the drift bound leases
                        // assume; the node's messages stay as they were.
                        node.slow_factor = 1;
                    }
                    node.slow_until =
                        now + self.fault_rng.between(SLOW_TICKS.0, SLOW_TICKS.1) * TICK_UNITS;
                    let (f, u) = (node.slow_factor, node.slow_until);
                    self.record(EventKind::Fault, Some(victim), || {
                        format!("node {victim} slow x{f} until t={u}")
                    });
                }
                Fault::Isolate => {
                    let leader = (0..n)
                        .find(|&i| self.nodes[i].server.as_ref().is_some_and(|s| s.is_leader()))
                        .unwrap_or(victim);
                    let until =
                        now + self.fault_rng.between(ISOLATE_TICKS.0, ISOLATE_TICKS.1) * TICK_UNITS;
                    self.net.cut_groups(1 << leader, true, until);
                    self.record(EventKind::Fault, Some(leader), || {
                        format!("leader node {leader} isolated until t={until}")
                    });
                    if self.leases_over_drift() {
                        // Past the drift bound: the cut-off leader's clock
                        // runs slow, so its lease outlasts its grants.
                        let node = &mut self.nodes[leader];
                        node.slow_factor = OVER_DRIFT_SLOW_FACTOR;
                        node.slow_until = until;
                    }
                }
                Fault::Storm => {
                    let count = self.fault_rng.between(STORM_MESSAGES.0, STORM_MESSAGES.1);
                    let len = self.net.ring.len() as u64;
                    if len == 0 {
                        continue;
                    }
                    self.record(EventKind::Fault, None, || {
                        format!("storm of {count} old messages")
                    });
                    for _ in 0..count {
                        let k = self.fault_rng.below(len) as usize;
                        let (from, to, msg) = self.net.ring[k].clone();
                        let delay = self.fault_rng.below(2 * TICK_UNITS) + 1;
                        self.schedule(
                            now + delay,
                            Ev::Net {
                                from,
                                to,
                                sent_at: now,
                                msg,
                            },
                        );
                    }
                }
                Fault::Pause => {
                    let node = &mut self.nodes[victim];
                    if node.is_up() {
                        // A pause of a paused node extends it, never cuts
                        // it short: its held inputs and its next tick are
                        // scheduled for the end it had.
                        let until =
                            now + self.fault_rng.between(PAUSE_TICKS.0, PAUSE_TICKS.1) * TICK_UNITS;
                        node.paused_until = node.paused_until.max(until);
                        let u = node.paused_until;
                        self.record(EventKind::Pause, Some(victim), || {
                            format!("node {victim} paused until t={u}")
                        });
                    }
                }
                Fault::Transfer => {
                    // The leader of the highest ballot (a deposed one may
                    // not know it yet), if it is up to hear the operator.
                    let Some(leader) = (0..n)
                        .filter(|&i| {
                            let node = &self.nodes[i];
                            node.is_up()
                                && node.paused_until <= now
                                && node.server.as_ref().is_some_and(|s| s.is_leader())
                        })
                        .max_by_key(|&i| self.nodes[i].server.as_ref().and_then(|s| s.ballot()))
                    else {
                        continue;
                    };
                    self.record(EventKind::Fault, Some(leader), || {
                        format!("operator: leader node {leader} asked to hand the lead to node {victim}")
                    });
                    // Node i is NodeId(i + 1) among the servers.
                    let to = NodeId(victim as u32 + 1);
                    self.step_node(leader, Input::Transfer { to });
                    if faults.contains(Fault::Isolate) && self.fault_rng.chance(0.5) {
                        // Its handoff is on the way, and then the old
                        // leader is cut off before it hears of its
                        // successor: it must not go on serving reads as if
                        // it still led.
                        let until = now
                            + self.fault_rng.between(ISOLATE_TICKS.0, ISOLATE_TICKS.1) * TICK_UNITS;
                        self.net.cut_groups(1 << leader, true, until);
                        self.record(EventKind::Fault, Some(leader), || {
                            format!("old leader node {leader} isolated until t={until}")
                        });
                    }
                }
                Fault::Reconfig => self.reconfig(),
                Fault::Wipe => {
                    // One at a time, and only where a majority of the
                    // others can take the rejoining node back.
                    let servers = self.topo.servers();
                    let busy = self.nodes.iter().any(|n| n.wiped_at.is_some());
                    if servers >= 3 && !busy && self.topo.kind(victim) == Kind::Server {
                        self.wipe(victim);
                    }
                }
                Fault::Drop
                | Fault::Duplicate
                | Fault::Reorder
                | Fault::Skew
                | Fault::Disk
                | Fault::QuorumLoss
                | Fault::Constrained
                | Fault::Chained => {}
            }
        }
        self.schedule(now + TICK_UNITS, Ev::FaultTick);
    }

    /// Every fault stops: cuts lift, skew and slowness end, crashed nodes
    /// restart now. A pause already under way runs out (at most
    /// `PAUSE_TICKS.1`), as a stall that has begun would.
    pub(crate) fn on_heal(&mut self) {
        self.healed = true;
        self.net.heal();
        let deadline = self.now + self.liveness_bound() + self.catch_up_allowance();
        self.schedule(deadline, Ev::Deadline);
        self.record(EventKind::Heal, None, || "heal: every fault stops".into());
        // Only once the last pause has run out is every node at work.
        self.settled_at = self
            .nodes
            .iter()
            .map(|n| n.paused_until)
            .fold(self.now, u64::max);
        for i in 0..self.nodes.len() {
            let node = &mut self.nodes[i];
            node.tick_units = TICK_UNITS;
            node.slow_until = 0;
            if !node.is_up() {
                let incarnation = node.incarnation;
                self.restart(i, incarnation);
            }
        }
        if self.clients.is_empty() && self.nodes.iter().all(|n| n.wiped_at.is_none()) {
            self.finished = true;
        }
    }
}

/// A partial-connectivity scenario: which one, and when it ran.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Which one.
    pub kind: Fault,
    /// When its cuts went in.
    pub started: Option<u64>,
    /// When they lifted.
    pub ended: Option<u64>,
    /// Whether a request invoked during it has completed yet.
    pub regained: bool,
    rng: SimRng,
}

impl Scenario {
    /// The scenario a run with `opts` ends with: one of the switched-on
    /// scenarios, drawn, and run with its rate's probability. Only the
    /// servers layout has them (with the roles apart, a cut between two
    /// learners or two acceptors says nothing about leader election).
    pub fn draw(opts: &Options) -> Option<Scenario> {
        if opts.layout != Layout::Servers {
            return None;
        }
        let on: Vec<Fault> = Fault::SCENARIOS
            .into_iter()
            .filter(|f| opts.faults.contains(*f))
            .collect();
        if on.is_empty() {
            return None;
        }
        let mut rng = SimRng::new(opts.seed, Stream::Scenario);
        let kind = on[rng.below(on.len() as u64) as usize];
        rng.chance(opts.rates.get(kind)).then_some(Scenario {
            kind,
            started: None,
            ended: None,
            regained: false,
            rng,
        })
    }
}

impl<S: SimMachine> Sim<S> {
    /// The leader of the highest ballot that is up to hear an operator (a
    /// deposed one may not know it yet).
    fn operator_leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                let node = &self.nodes[i];
                node.is_up()
                    && node.paused_until <= self.now
                    && node.server.as_ref().is_some_and(|s| s.is_leader())
            })
            .max_by_key(|&i| self.nodes[i].server.as_ref().and_then(|s| s.ballot()))
    }

    /// What an operator about to change members sees: the leader it asks,
    /// that leader's members, and the servers outside them.
    fn operator_view(&self) -> Option<(usize, Vec<NodeId>, Vec<NodeId>)> {
        let leader = self.operator_leader()?;
        let (_, members) = self.nodes[leader].server.as_ref()?.membership()?;
        let outside = (0..self.topo.servers())
            .map(|i| self.topo.process(i).id)
            .filter(|id| !members.contains(id))
            .collect();
        Some((leader, members.to_vec(), outside))
    }

    /// The operator asks `leader` for the members `next` (`text` says how).
    fn ask_change(&mut self, leader: usize, next: Vec<NodeId>, text: String) {
        self.stats.reconfigs_asked += 1;
        self.record(EventKind::Fault, Some(leader), || {
            format!("operator: leader node {leader} asked to {text}")
        });
        self.step_node(leader, Input::Reconfigure { members: next });
    }

    /// An operator asks the leader to add a server, remove a member (the
    /// leader too) or replace one, between three and `nodes + SPARES`
    /// members. Whatever the leader answers is the test: a refusal
    /// (another change under way, the newcomer not caught up) is fine.
    pub(crate) fn reconfig(&mut self) {
        let Some((leader, mut next, outside)) = self.operator_view() else {
            return;
        };
        let pick = |rng: &mut SimRng, len: usize| rng.below(len as u64) as usize;
        let text = match self.fault_rng.below(3) {
            0 if !outside.is_empty() => {
                let add = outside[pick(&mut self.fault_rng, outside.len())];
                next.push(add);
                format!("add {add}")
            }
            1 if next.len() > 3 => {
                let gone = next.remove(pick(&mut self.fault_rng, next.len()));
                format!("remove {gone}")
            }
            _ if !outside.is_empty() => {
                let k = pick(&mut self.fault_rng, next.len());
                let add = outside[pick(&mut self.fault_rng, outside.len())];
                let gone = std::mem::replace(&mut next[k], add);
                format!("replace {gone} by {add}")
            }
            _ => return,
        };
        self.ask_change(leader, next, text);
    }

    /// `Options::replace_at`: the leader is asked to replace a follower,
    /// or itself, by the first server outside the configuration.
    pub(crate) fn planned_replacement(&mut self) {
        let Some((leader, mut next, outside)) = self.operator_view() else {
            return;
        };
        let me = self.topo.process(leader).id;
        let gone = if self.opts.replace_leader {
            Some(me)
        } else {
            next.iter().copied().find(|&m| m != me)
        };
        let (Some(gone), Some(&new)) = (gone, outside.first()) else {
            return;
        };
        next.iter_mut()
            .filter(|m| **m == gone)
            .for_each(|m| *m = new);
        self.ask_change(leader, next, format!("replace {gone} by {new}"));
    }

    /// Cuts the links of the scenario for [`SCENARIO_BOUNDS`] liveness
    /// bounds; clients keep sending meanwhile.
    pub(crate) fn start_scenario(&mut self) {
        let Some(mut sc) = self.scenario.take() else {
            return;
        };
        let all = self.topo.servers();
        // The scenario is about the members of the latest configuration;
        // the servers outside it (learners) keep every link.
        let latest = self.oracle.latest_members();
        let cast: Vec<usize> = (0..all)
            .filter(|&i| {
                self.topo.kind(i) != Kind::Server || latest.contains(&self.topo.process(i).id)
            })
            .collect();
        let n = cast.len();
        let until = self.now + SCENARIO_BOUNDS * self.liveness_bound();
        // `linked[a]`: the nodes `a` still reaches (a bit mask), by place
        // in `cast`.
        let mut linked = vec![0u64; n];
        let mut link = |a: usize, b: usize| {
            linked[a] |= 1 << b;
            linked[b] |= 1 << a;
        };
        let leader = (0..n).find(|&i| {
            self.nodes[cast[i]]
                .server
                .as_ref()
                .is_some_and(|s| s.is_leader())
        });
        let text = match sc.kind {
            Fault::QuorumLoss => {
                let hub = sc.rng.below(n as u64) as usize;
                (0..n).for_each(|i| link(hub, i));
                format!("quorum-loss: only node {} reaches every node", cast[hub])
            }
            Fault::Constrained => {
                // The hub is the node that has learned least, other than
                // the leader, which is cut off from everyone.
                let learned = |i: usize| {
                    self.nodes[cast[i]]
                        .server
                        .as_ref()
                        .and_then(|s| s.learner().map(|l| l.next_slot()))
                        .unwrap_or(0)
                };
                let hub = (0..n)
                    .filter(|&i| Some(i) != leader)
                    .min_by_key(|&i| (learned(i), i))
                    .unwrap_or(0);
                (0..n)
                    .filter(|&i| Some(i) != leader)
                    .for_each(|i| link(hub, i));
                let lead = leader.map_or("none".to_string(), |l| cast[l].to_string());
                format!(
                    "constrained election: leader {lead} cut off; only node {}, the least up to date, reaches a quorum",
                    cast[hub]
                )
            }
            _ => {
                let mut chain: Vec<usize> = (0..n).collect();
                for i in (1..n).rev() {
                    chain.swap(i, sc.rng.below(i as u64 + 1) as usize);
                }
                let names: Vec<String> = chain.iter().map(|&i| cast[i].to_string()).collect();
                if n <= 5 {
                    chain.windows(2).for_each(|w| link(w[0], w[1]));
                    format!(
                        "chained: {} (each reaches only its neighbours)",
                        names.join("-")
                    )
                } else {
                    // A chain of seven has no node that reaches a quorum, so
                    // the links are two cliques joined by one middle node.
                    let (mid, half) = (chain[0], (n - 1) / 2);
                    let (left, right) = chain[1..].split_at(half);
                    for side in [left, right] {
                        for &a in side {
                            link(mid, a);
                            side.iter().for_each(|&b| link(a, b));
                        }
                    }
                    format!(
                        "chained: {{{}}}-{}-{{{}}} (the two sides reach each other only through {})",
                        names[1..=half].join(","),
                        names[0],
                        names[half + 1..].join(","),
                        names[0]
                    )
                }
            }
        };
        for (a, reach) in linked.iter().enumerate() {
            for b in (0..n).filter(|&b| b != a && reach & (1 << b) == 0) {
                self.net.cut(cast[a], cast[b], until);
            }
        }
        sc.started = Some(self.now);
        self.scenario = Some(sc);
        self.stats.scenarios += 1;
        self.record(EventKind::Fault, None, || format!("{text} until t={until}"));
        self.schedule(until, Ev::ScenarioEnd);
    }

    /// The scenario's cuts lift.
    pub(crate) fn end_scenario(&mut self) {
        self.net.heal();
        if let Some(sc) = &mut self.scenario {
            sc.ended = Some(self.now);
        }
        self.record(EventKind::Heal, None, || {
            "scenario over: every link is back".into()
        });
    }

    /// A request invoked at `invoked_at` completed: the first one invoked
    /// during a scenario tells how long the cluster took to serve again.
    pub(crate) fn scenario_progress(&mut self, invoked_at: u64) {
        let election = self
            .opts
            .tuning
            .value(crate::options::Knob::ElectionTimeoutTicks);
        let now = self.now;
        let Some(sc) = &mut self.scenario else {
            return;
        };
        let Some(start) = sc.started else {
            return;
        };
        if sc.regained || sc.ended.is_some() || invoked_at < start {
            return;
        }
        sc.regained = true;
        let milli = (now - start) * 1000 / (election * TICK_UNITS);
        self.stats.regain_millitimeouts_max = self.stats.regain_millitimeouts_max.max(milli);
    }
}

fn members(group: u64, n: usize) -> String {
    (0..n)
        .filter(|i| group & (1 << i) != 0)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
