//! The simulated machines: a [`Node`] is a `paxos-core` server plus its disk
//! (records synced vs. not yet synced), the actions held behind an unsynced
//! write, and its clock (tick period, pauses, slowness).

use crate::model::{SimMachine, Tagged};
use crate::roles::{NodeSnapshot, Proc};
use paxos_core::{Action, Record, StateMachine};

/// Command type the simulated servers replicate.
pub type Cmd<S> = Tagged<<S as StateMachine>::Command>;
/// Output type of the simulated state machine.
pub type Out<S> = <S as StateMachine>::Output;
/// An action of a simulated server.
pub type Act<S> = Action<Cmd<S>, Out<S>>;

/// A node's disk. `Persist` appends to `unsynced`; a sync moves everything to
/// `synced`. A crash keeps `synced` and loses `unsynced` (all of it, or with
/// the disk fault an arbitrary subset survives: writes may reach the platter
/// in any order before the fsync returns).
#[derive(Debug)]
pub struct Disk<C> {
    /// Records that survive any crash.
    pub synced: Vec<Record<C>>,
    /// Records written but not yet known to be durable.
    pub unsynced: Vec<Record<C>>,
}

impl<C> Default for Disk<C> {
    fn default() -> Self {
        Disk {
            synced: Vec::new(),
            unsynced: Vec::new(),
        }
    }
}

/// One simulated server process and the hardware around it.
pub struct Node<S: SimMachine> {
    /// The running process; `None` while crashed.
    pub server: Option<Proc<S>>,
    /// Incarnation: bumped at every crash, so that stale timers are ignored.
    pub incarnation: u32,
    /// Its disk.
    pub disk: Disk<Cmd<S>>,
    /// Actions that follow an unsynced `Persist`: they leave only after the sync.
    pub held: Vec<Act<S>>,
    /// A sync is scheduled.
    pub sync_pending: bool,
    /// The node is stalled until this time.
    pub paused_until: u64,
    /// Its tick period, in time units (differs per node under clock skew).
    pub tick_units: u64,
    /// While `now < slow_until`, ticks come `slow_factor` times slower.
    pub slow_until: u64,
    /// See `slow_until`.
    pub slow_factor: u64,
    /// Executions of this incarnation already checked.
    pub journal_seen: usize,
    /// The latest durable snapshot; `disk.synced` then holds only what came
    /// after the last compaction (a snapshot installed from a peer replaces
    /// this base but keeps the records).
    pub snapshot: Option<NodeSnapshot<S>>,
    /// A peer's snapshot this node installed, written but not yet synced
    /// (`Action::PersistSnapshot`): it becomes `snapshot` at the next sync,
    /// and like the unsynced records, it holds back every later action.
    pub unsynced_snapshot: Option<NodeSnapshot<S>>,
    /// Ticks since start, for periodic snapshots.
    pub ticks: u64,
}

impl<S: SimMachine> std::fmt::Debug for Node<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("up", &self.server.is_some())
            .field("incarnation", &self.incarnation)
            .field("synced", &self.disk.synced.len())
            .field("unsynced", &self.disk.unsynced.len())
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl<S: SimMachine> Node<S> {
    /// A node running `server` with an empty disk.
    pub fn new(server: Proc<S>, tick_units: u64) -> Self {
        Node {
            server: Some(server),
            incarnation: 0,
            disk: Disk::default(),
            held: Vec::new(),
            sync_pending: false,
            paused_until: 0,
            tick_units,
            slow_until: 0,
            slow_factor: 1,
            journal_seen: 0,
            snapshot: None,
            unsynced_snapshot: None,
            ticks: 0,
        }
    }

    /// The period until its next tick, at time `now`.
    pub fn tick_period(&self, now: u64) -> u64 {
        if now < self.slow_until {
            self.tick_units * self.slow_factor
        } else {
            self.tick_units
        }
    }

    /// Is it running?
    pub fn is_up(&self) -> bool {
        self.server.is_some()
    }

    /// Has it written anything (records or an installed snapshot) that is
    /// not yet durable?
    pub fn has_unsynced(&self) -> bool {
        !self.disk.unsynced.is_empty() || self.unsynced_snapshot.is_some()
    }
}
