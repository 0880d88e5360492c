//! What replacing a server costs, simulated: three servers and a spare
//! under steady closed-loop load with no faults; at a third of the run an
//! operator asks the leader to replace a follower (then, in a second run,
//! the leader itself) by the spare. The same seed without the replacement,
//! run alongside, is the baseline. It prints completed requests per
//! 10-tick window for both, and for the change: the throughput before it,
//! the lowest window after it as a share of the baseline's window, and how
//! long until a 30-tick mean is back to 90 % of the baseline's. Simulated
//! time: a tick is the core's timer period (10 ms in the chat servers).
//! It measures and prints; it asserts nothing.
//!
//! `cargo bench -p paxos-sim --bench replacement [-- CLIENTS SEED]`
//! (default 32 clients, seed 1).

use paxos_sim::trace::EventKind;
use paxos_sim::{FaultSet, HashChain, Options, Sim, TICK_UNITS};

const TICKS: u64 = 900;
const REPLACE_AT: u64 = 300;
const WINDOW: u64 = 10;

/// Completed requests per window of a run.
fn curve(clients: usize, seed: u64, replace: Option<bool>) -> (Vec<u64>, u64) {
    let opts = Options {
        seed,
        nodes: 3,
        clients,
        faults: FaultSet::NONE,
        heal_tick: TICKS,
        record: true,
        liveness: false,
        replace_at: replace.map(|_| REPLACE_AT),
        replace_leader: replace == Some(true),
        ..Options::default()
    };
    let outcome = Sim::<HashChain>::new(opts).expect("valid options").run();
    assert!(
        outcome.violation.is_none(),
        "the run broke an invariant: {:?}",
        outcome.violation
    );
    let mut per = vec![0u64; (TICKS / WINDOW) as usize];
    for e in &outcome.events {
        if e.kind == EventKind::Complete {
            let w = (e.t / TICK_UNITS / WINDOW) as usize;
            if let Some(n) = per.get_mut(w) {
                *n += 1;
            }
        }
    }
    (per, outcome.stats.reconfigurations)
}

fn mean(v: &[u64]) -> f64 {
    v.iter().sum::<u64>() as f64 / v.len().max(1) as f64
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let clients: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(32);
    let seed: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let (base, _) = curve(clients, seed, None);
    println!(
        "replacement (simulated): 3 servers + 1 spare, {clients} clients, seed {seed}, {TICKS} ticks; requests completed per {WINDOW} ticks"
    );
    let show = |name: &str, per: &[u64]| {
        let line: Vec<String> = per.iter().map(|n| n.to_string()).collect();
        println!("  {name:<9} {}", line.join(" "));
    };
    show("baseline", &base);
    let at = (REPLACE_AT / WINDOW) as usize;
    for leader in [false, true] {
        let (per, changes) = curve(clients, seed, Some(leader));
        let role = if leader { "leader" } else { "follower" };
        show(role, &per);
        let before = mean(&per[at.saturating_sub(10)..at]);
        let (low_at, low_ratio) = (at..(at + 20).min(per.len()))
            .map(|w| (w, per[w] as f64 / (base[w] as f64).max(1.0)))
            .fold((at, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
        let back = (at..per.len().saturating_sub(3))
            .find(|&w| mean(&per[w..w + 3]) >= 0.9 * mean(&base[w..w + 3]))
            .map_or(per.len() - at, |w| w - at);
        let total: u64 = per.iter().sum();
        let total_base: u64 = base.iter().sum();
        println!(
            "replacing the {role} at tick {REPLACE_AT} ({changes} configuration change): before {:.1} requests per {WINDOW} ticks; lowest window after {:.0} % of the baseline's (ticks {}-{}); back to 90 % of the baseline (30-tick mean) after {} ticks; whole run {:.3}x the baseline's requests",
            before,
            100.0 * low_ratio,
            low_at as u64 * WINDOW,
            (low_at as u64 + 1) * WINDOW,
            back as u64 * WINDOW,
            total as f64 / total_base.max(1) as f64
        );
    }
}
