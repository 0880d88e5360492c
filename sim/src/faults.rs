//! Fault injection: once per tick of the faulty phase each switched-on fault
//! may strike (partitions, crashes, slowness, leader isolation, storms,
//! pauses); at heal every fault stops. Drop, duplication, reordering and
//! skew act per message or per clock and live in the network and the nodes.

use crate::engine::{Ev, Sim};
use crate::model::SimMachine;
use crate::options::{Fault, TICK_UNITS};
use crate::trace::EventKind;

/// How long partitions and cuts last, in ticks.
const CUT_TICKS: (u64, u64) = (5, 50);
/// How long a slow node stays slow, in ticks, and by what factor.
const SLOW_TICKS: (u64, u64) = (20, 100);
const SLOW_FACTOR: (u64, u64) = (2, 5);
/// How long an isolated leader stays cut off, in ticks.
const ISOLATE_TICKS: (u64, u64) = (10, 60);
/// How long a pause lasts, in ticks.
const PAUSE_TICKS: (u64, u64) = (5, 40);
/// How many old messages a storm replays.
const STORM_MESSAGES: (u64, u64) = (20, 200);

impl<S: SimMachine> Sim<S> {
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
            ) {
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
                Fault::Slow => {
                    let node = &mut self.nodes[victim];
                    node.slow_factor = self.fault_rng.between(SLOW_FACTOR.0, SLOW_FACTOR.1);
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
                        node.paused_until =
                            now + self.fault_rng.between(PAUSE_TICKS.0, PAUSE_TICKS.1) * TICK_UNITS;
                        let u = node.paused_until;
                        self.record(EventKind::Pause, Some(victim), || {
                            format!("node {victim} paused until t={u}")
                        });
                    }
                }
                Fault::Drop | Fault::Duplicate | Fault::Reorder | Fault::Skew | Fault::Disk => {}
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
        self.record(EventKind::Heal, None, || "heal: every fault stops".into());
        for i in 0..self.nodes.len() {
            let node = &mut self.nodes[i];
            node.tick_units = TICK_UNITS;
            node.slow_until = 0;
            if !node.is_up() {
                let incarnation = node.incarnation;
                self.restart(i, incarnation);
            }
        }
        if self.clients.is_empty() {
            self.finished = true;
        }
    }
}

fn members(group: u64, n: usize) -> String {
    (0..n)
        .filter(|i| group & (1 << i) != 0)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
