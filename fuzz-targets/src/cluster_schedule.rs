//! `cluster_schedule`: a `paxos-sim` run whose shape the fuzzer chooses — seed,
//! cluster size, clients, which faults strike and how often, phase lengths,
//! layout, snapshots, retention — checked by every simulator invariant.
//!
//! The seed fixes every scheduling decision inside the run, so the fuzzer
//! explores schedules by mutating the seed and the fault mix, guided by the
//! coverage each run reaches in the core.

use arbitrary::{Arbitrary, Unstructured};
use paxos_sim::{run, Fault, FaultSet, HashChain, Knob, Layout, Options, Tuning};

#[derive(Arbitrary, Debug)]
struct Schedule {
    seed: u64,
    nodes: u8,
    clients: u8,
    faults: u32,
    rates: [u8; Fault::ALL.len()],
    heal_tick: u8,
    roles_apart: Option<(u8, u8)>,
    snapshot_ticks: Option<u8>,
    retain_slots: Option<u8>,
    batch_max: Option<u8>,
    pipeline_window: Option<u8>,
    core_clients: bool,
}

impl Schedule {
    fn options(&self) -> Options {
        let mut faults = FaultSet::NONE;
        let mut opts = Options::default();
        for (i, &fault) in Fault::ALL.iter().enumerate() {
            if self.faults & (1 << i) != 0 {
                faults = faults.with(fault);
            }
            // Up to four times the default rate, in 64 steps.
            let scale = f64::from(self.rates[i] % 64) / 16.0;
            opts.rates
                .set(fault, (fault.default_rate() * scale).min(1.0));
        }
        let layout = match self.roles_apart {
            Some((p, l)) => Layout::Roles {
                proposers: 1 + usize::from(p % 2),
                learners: 1 + usize::from(l % 2),
            },
            None => Layout::Servers,
        };
        Options {
            seed: self.seed,
            nodes: [3, 5][usize::from(self.nodes % 2)],
            clients: 1 + usize::from(self.clients % 3),
            faults,
            heal_tick: 20 + u64::from(self.heal_tick % 120),
            layout,
            // Roles apart have no Server, hence no snapshots.
            snapshot_ticks: match layout {
                Layout::Servers => self.snapshot_ticks.map(|t| 10 + u64::from(t % 40)),
                Layout::Roles { .. } => None,
            },
            tuning: {
                let mut t = Tuning::default();
                t.set(
                    Knob::RetainSlots,
                    self.retain_slots.map(|r| 64 + u64::from(r)),
                );
                t.set(
                    Knob::BatchMax,
                    self.batch_max.map(|b| 1 + u64::from(b % 16)),
                );
                t.set(
                    Knob::PipelineWindow,
                    self.pipeline_window.map(|w| 1 + u64::from(w % 16)),
                );
                t
            },
            // Self-learning clients exist only with the roles apart.
            core_clients: self.core_clients && matches!(layout, Layout::Roles { .. }),
            ..opts
        }
    }
}

/// Runs the target on `data`; panics if the simulator reports a violation.
pub fn run_schedule(data: &[u8]) {
    let Ok(schedule) = Schedule::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let opts = schedule.options();
    match run::<HashChain>(opts.clone()) {
        Ok(outcome) => {
            if let Some(v) = outcome.violation {
                panic!("{v:?} with {opts:?}");
            }
        }
        Err(e) => panic!("the simulator refused options the target built: {e} ({opts:?})"),
    }
}
