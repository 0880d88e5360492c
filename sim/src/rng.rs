//! The simulator's only source of randomness: ChaCha8 streams derived from one seed.
//! Each concern (network, faults, clients, disk) draws from its own stream, so
//! switching one fault off does not reshuffle the choices of the others.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Which part of the simulation a random stream feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Per-message drop, duplicate and delay decisions.
    Network = 1,
    /// When faults start, whom they hit, how long they last.
    Faults = 2,
    /// Client think times, targets and operations.
    Clients = 3,
    /// fsync latencies and which unsynced writes survive a crash.
    Disk = 4,
    /// Seeds of the nodes' own generators (election timeouts) and clock skew.
    Nodes = 5,
    /// The shape of a swarm run: layout, size, limits, faults and rates.
    Swarm = 6,
    /// Which partial-connectivity scenario ends the run, and its shape.
    Scenario = 7,
}

/// A seeded generator with the few draws the simulator needs.
#[derive(Clone, Debug)]
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    /// The generator for `stream` of the run with `seed`.
    pub fn new(seed: u64, stream: Stream) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream as u64);
        SimRng(rng)
    }

    /// A uniformly random `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A number in `0..n` (`0` when `n` is zero), without modulo bias worth noting.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.0.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi);
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p` (clamped to `0..=1`).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        self.unit() < p
    }

    /// A uniform float in `[0, 1)`, from 53 random bits: identical on every
    /// platform.
    pub fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

impl RngCore for SimRng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.0.fill_bytes(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_of_one_seed_differ_and_repeat() {
        let a: Vec<u64> = (0..4)
            .map(|_| SimRng::new(7, Stream::Network).next_u64())
            .collect();
        assert!(
            a.windows(2).all(|w| w[0] == w[1]),
            "same stream, same draws"
        );
        let mut n = SimRng::new(7, Stream::Network);
        let mut f = SimRng::new(7, Stream::Faults);
        assert_ne!(n.next_u64(), f.next_u64());
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = SimRng::new(1, Stream::Clients);
        for n in [1u64, 2, 3, 10, 1000] {
            for _ in 0..100 {
                assert!(r.below(n) < n);
            }
        }
        assert_eq!(r.below(0), 0);
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
    }
}
