//! The seeded network: per-message latency, drop, duplicate and reordering
//! delay, plus cuts (symmetric and one-way partitions, leader isolation) that
//! last until a given time. It decides; the engine schedules.

use crate::options::{Fault, FaultSet, Rates, TICK_UNITS};
use crate::rng::{SimRng, Stream};
use std::collections::VecDeque;

/// Shortest one-way latency, in time units.
pub const LATENCY_MIN_UNITS: u64 = 50;
/// Longest ordinary one-way latency, in time units.
pub const LATENCY_MAX_UNITS: u64 = 500;
/// Longest extra delay of a reordered message.
pub const REORDER_MAX_UNITS: u64 = 3 * TICK_UNITS;
/// Old messages kept for storms.
pub const STORM_RING_MAX: usize = 512;

/// What happens to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Lost: dropped, or the link is cut.
    Lost,
    /// Arrives after this delay.
    Once(u64),
    /// Arrives twice, after these delays.
    Twice(u64, u64),
}

/// The network between `n` nodes.
#[derive(Debug)]
pub struct Network<M> {
    n: usize,
    rng: SimRng,
    faults: FaultSet,
    rates: Rates,
    /// `cut_until[from * n + to]`: the link is cut while `now` is below it.
    cut_until: Vec<u64>,
    /// Faults stopped: only latency is left.
    healed: bool,
    /// Recent messages, replayed by storms.
    pub ring: VecDeque<(usize, usize, M)>,
}

impl<M: Clone> Network<M> {
    /// A network for the run with `seed`.
    pub fn new(n: usize, seed: u64, faults: FaultSet, rates: Rates) -> Self {
        Network {
            n,
            rng: SimRng::new(seed, Stream::Network),
            faults,
            rates,
            cut_until: vec![0; n * n],
            healed: false,
            ring: VecDeque::new(),
        }
    }

    /// One ordinary latency.
    pub fn latency(&mut self) -> u64 {
        self.rng.between(LATENCY_MIN_UNITS, LATENCY_MAX_UNITS)
    }

    fn delay(&mut self) -> u64 {
        let mut d = self.latency();
        if !self.healed
            && self.faults.contains(Fault::Reorder)
            && self.rng.chance(self.rates.get(Fault::Reorder))
        {
            d += self.rng.below(REORDER_MAX_UNITS);
        }
        d
    }

    /// Is the link `from → to` cut at `now`?
    pub fn is_cut(&self, from: usize, to: usize, now: u64) -> bool {
        self.cut_until[from * self.n + to] > now
    }

    /// Decides the fate of a message between nodes (`to` is `None` for the
    /// link between a node and a client, which partitions do not cut).
    pub fn fate(&mut self, from: usize, to: Option<usize>, now: u64) -> Fate {
        if let Some(to) = to {
            if self.is_cut(from, to, now) {
                return Fate::Lost;
            }
        }
        if self.healed {
            return Fate::Once(self.latency());
        }
        if self.faults.contains(Fault::Drop) && self.rng.chance(self.rates.get(Fault::Drop)) {
            return Fate::Lost;
        }
        let first = self.delay();
        if self.faults.contains(Fault::Duplicate)
            && self.rng.chance(self.rates.get(Fault::Duplicate))
        {
            return Fate::Twice(first, self.delay());
        }
        Fate::Once(first)
    }

    /// Remembers a message for later storms (only while storms are on).
    pub fn remember(&mut self, from: usize, to: usize, msg: &M) {
        if self.healed || !self.faults.contains(Fault::Storm) {
            return;
        }
        if self.ring.len() == STORM_RING_MAX {
            self.ring.pop_front();
        }
        self.ring.push_back((from, to, msg.clone()));
    }

    /// Cuts `from → to` until `until`.
    pub fn cut(&mut self, from: usize, to: usize, until: u64) {
        let c = &mut self.cut_until[from * self.n + to];
        *c = (*c).max(until);
    }

    /// Cuts every link from a node in `group` (a bit mask) to one outside it,
    /// and the reverse too when `both_ways`.
    pub fn cut_groups(&mut self, group: u64, both_ways: bool, until: u64) {
        for a in 0..self.n {
            for b in 0..self.n {
                let a_in = group & (1 << a) != 0;
                let b_in = group & (1 << b) != 0;
                if a_in && !b_in {
                    self.cut(a, b, until);
                    if both_ways {
                        self.cut(b, a, until);
                    }
                }
            }
        }
    }

    /// Every fault stops: cuts lift, messages are neither lost nor reordered
    /// (a later [`Network::cut`], a scenario's, still cuts).
    pub fn heal(&mut self) {
        self.healed = true;
        self.cut_until.iter_mut().for_each(|c| *c = 0);
        self.ring.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_way_cut_blocks_only_one_direction() {
        let mut net: Network<()> = Network::new(3, 1, FaultSet::NONE, Rates::default());
        net.cut_groups(0b001, false, 100);
        assert!(net.is_cut(0, 1, 50) && net.is_cut(0, 2, 50));
        assert!(!net.is_cut(1, 0, 50));
        assert!(!net.is_cut(0, 1, 100), "the cut ends");
        assert_eq!(net.fate(0, Some(1), 50), Fate::Lost);
        net.heal();
        assert!(matches!(net.fate(0, Some(1), 50), Fate::Once(_)));
    }

    #[test]
    fn without_faults_nothing_is_lost() {
        let mut net: Network<()> = Network::new(2, 9, FaultSet::NONE, Rates::default());
        for _ in 0..1000 {
            let Fate::Once(d) = net.fate(0, Some(1), 0) else {
                panic!("lost or duplicated without faults");
            };
            assert!((LATENCY_MIN_UNITS..=LATENCY_MAX_UNITS).contains(&d));
        }
    }
}
