//! Shrinking: turns a failing run into a shorter one that fails the same way,
//! by switching faults off, removing clients and nodes, healing earlier, and
//! finally stopping right at the failing step.

use crate::check::Invariant;
use crate::engine::{run, Violation};
use crate::model::SimMachine;
use crate::options::Options;

/// Most candidate runs one shrink tries.
pub const SHRINK_RUNS_MAX: usize = 200;

fn fails<S: SimMachine>(opts: &Options, invariant: Invariant) -> Option<Violation> {
    run::<S>(opts.clone())
        .ok()?
        .violation
        .filter(|v| v.invariant == invariant)
}

/// Shrinks `opts`, which fails with `invariant`, and returns the smallest
/// options found that still fail that way, with their violation; `None` if
/// `opts` does not fail that way to begin with.
///
/// Each candidate is a full deterministic run, so the result replays exactly.
pub fn shrink<S: SimMachine>(opts: &Options, invariant: Invariant) -> Option<(Options, Violation)> {
    let mut best = opts.clone();
    best.max_steps = None;
    let mut violation = fails::<S>(&best, invariant)?;
    let mut runs = 1;
    let mut improved = true;
    while improved && runs < SHRINK_RUNS_MAX {
        improved = false;
        let mut candidates = Vec::new();
        for f in best.faults.iter() {
            candidates.push(Options {
                faults: best.faults.without(f),
                ..best.clone()
            });
        }
        if best.clients > 1 {
            candidates.push(Options {
                clients: best.clients - 1,
                ..best.clone()
            });
        }
        if best.nodes > 3 {
            candidates.push(Options {
                nodes: best.nodes - 2,
                ..best.clone()
            });
        }
        let heal_at = violation.t / crate::options::TICK_UNITS + 1;
        if heal_at < best.heal_tick {
            candidates.push(Options {
                heal_tick: heal_at,
                ..best.clone()
            });
        }
        if best.heal_tick > 10 {
            candidates.push(Options {
                heal_tick: best.heal_tick / 2,
                ..best.clone()
            });
        }
        for c in candidates {
            runs += 1;
            if let Some(v) = fails::<S>(&c, invariant) {
                if v.step <= violation.step || c.faults != best.faults || c.clients < best.clients {
                    best = c;
                    violation = v;
                    improved = true;
                    break;
                }
            }
            if runs >= SHRINK_RUNS_MAX {
                break;
            }
        }
    }
    // The run stops right after the failing step: nothing later matters.
    best.max_steps = Some(violation.step);
    Some((best, violation))
}
