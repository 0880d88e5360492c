//! The simulated machines: a [`Node`] is a `paxos-core` process plus its disk
//! (what is synced vs. written but not yet synced), the actions held behind
//! an unsynced write, and its clock. The `Sim` methods here step processes and
//! perform their actions exactly as a driver must: every `Persist` and
//! `Compact` is a barrier that holds back everything after it until the sync.

use crate::check::{Failure, Invariant};
use crate::engine::{restart_failure, Ev, Sim};
use crate::model::{Recorded, SimMachine, Tagged};
use crate::netem::Fate;
use crate::options::{Fault, Sabotage, TICK_UNITS};
use crate::roles::{Kind, Proc};
use crate::trace::EventKind;
use paxos_core::{Action, Checkpoint, Event, Input, Message, Record, Snapshot, StateMachine};

/// Command type the simulated servers replicate.
pub type Cmd<S> = Tagged<<S as StateMachine>::Command>;
/// Output type of the simulated state machine.
pub type Out<S> = <S as StateMachine>::Output;
/// A server's replica snapshot, as the simulated disk keeps it.
pub type Snap<S> = Snapshot<Recorded<S>, Out<S>>;
/// What travels between simulated processes.
pub type Msg<S> = Message<Cmd<S>, Snap<S>>;
/// What a simulated process is fed.
pub type In<S> = Input<Cmd<S>, Snap<S>>;
/// An action of a simulated process.
pub type Act<S> = Action<Cmd<S>, Out<S>, Snap<S>>;

/// Fsync latency range without the disk fault, in time units.
const FSYNC_UNITS: (u64, u64) = (20, 200);
/// Fsync latency range with the disk fault.
const SLOW_FSYNC_UNITS: (u64, u64) = (20, 2_000);
/// How long a crashed node stays down, in ticks.
pub(crate) const DOWN_TICKS: (u64, u64) = (5, 50);

/// What survives any crash: the base of the last compaction and the records
/// appended after it.
#[derive(Debug)]
pub struct Durable<C, P> {
    /// The snapshot of the last compaction, if any.
    pub snapshot: Option<P>,
    /// Records to replay on top of it, in order.
    pub records: Vec<Record<C>>,
}

impl<C, P> Default for Durable<C, P> {
    fn default() -> Self {
        Durable {
            snapshot: None,
            records: Vec::new(),
        }
    }
}

/// One write to a disk, in the order the process asked for it.
#[derive(Debug)]
pub enum Write<C, P> {
    /// `Action::Persist`: a record appended.
    Append(Record<C>),
    /// `Action::PersistSnapshot`: a snapshot appended, the new base.
    Snapshot(Box<P>),
    /// `Action::Compact`: the whole log replaced.
    Compact(Box<Checkpoint<C, P>>),
}

/// A node's disk. Writes wait in `unsynced` until a sync applies them, in
/// order, to `synced`. A crash keeps `synced` and loses `unsynced` — all of
/// it, or with the disk fault a prefix of it survives: each write survives
/// with the fault's rate until the first that does not. That is what an
/// append-only log of checksummed records leaves after a crash: a torn tail
/// is cut on restart, and a hole followed by sound records is refused as
/// corruption (the node does not start), so no surviving log has a hole.
#[derive(Debug)]
pub struct Disk<C, P> {
    /// What survives any crash.
    pub synced: Durable<C, P>,
    /// Writes not yet known to be durable.
    pub unsynced: Vec<Write<C, P>>,
}

impl<C, P> Default for Disk<C, P> {
    fn default() -> Self {
        Disk {
            synced: Durable::default(),
            unsynced: Vec::new(),
        }
    }
}

impl<C, P> Durable<C, P> {
    fn apply(&mut self, write: Write<C, P>) {
        match write {
            Write::Append(r) => self.records.push(r),
            Write::Snapshot(p) => self.snapshot = Some(*p),
            Write::Compact(c) => {
                self.snapshot = c.snapshot;
                self.records = c.records;
            }
        }
    }
}

/// One simulated process and the hardware around it.
pub struct Node<S: SimMachine> {
    /// The running process; `None` while crashed.
    pub server: Option<Proc<S>>,
    /// Incarnation: bumped at every crash, so that stale timers are ignored.
    pub incarnation: u32,
    /// Its disk.
    pub disk: Disk<Cmd<S>, Snap<S>>,
    /// Actions that follow an unsynced write: they leave only after the sync.
    pub held: Vec<Act<S>>,
    /// A sync is scheduled.
    pub sync_pending: bool,
    /// The node is stalled until this time.
    pub paused_until: u64,
    /// Its tick period, in time units (differs per node under clock skew).
    pub tick_units: u64,
    /// While `now < slow_until`, ticks come `slow_factor` times slower.
    pub slow_until: u64,
    /// A tick fell due at this time while the process was paused.
    pub tick_missed_since: Option<u64>,
    /// See `slow_until`.
    pub slow_factor: u64,
    /// Executions of this incarnation already checked.
    pub journal_seen: usize,
    /// Ticks since start, for periodic compaction.
    pub ticks: u64,
    /// It lost its disk at this time and has not rejoined yet.
    pub wiped_at: Option<u64>,
    /// It lost its disk and `Record::Rejoining` is not on the new one yet:
    /// a restart starts it anew as a rejoining server (as an operator
    /// restarts it with `--rejoin` again).
    pub restart_empty: bool,
}

impl<S: SimMachine> std::fmt::Debug for Node<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("up", &self.server.is_some())
            .field("incarnation", &self.incarnation)
            .field("synced", &self.disk.synced.records.len())
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
            tick_missed_since: None,
            slow_factor: 1,
            journal_seen: 0,
            ticks: 0,
            wiped_at: None,
            restart_empty: false,
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

    /// Has it written anything that is not yet durable?
    pub fn has_unsynced(&self) -> bool {
        !self.disk.unsynced.is_empty()
    }
}

impl<S: SimMachine> Sim<S> {
    /// A message reaches process `to`: lost if it is down, held back while
    /// it is paused, otherwise taken in.
    pub(crate) fn on_arrival(&mut self, from: usize, to: usize, sent_at: u64, msg: Msg<S>) {
        self.hash.add(((from as u64) << 8) | to as u64);
        if let Message::Snapshot(snapshot) = &msg {
            self.hash.add(snapshot.next_slot);
        }
        let node = &self.nodes[to];
        if !node.is_up() {
            self.stats.lost += 1;
            self.record_transfer(EventKind::Lost, from, to, sent_at, &msg);
            return;
        }
        if node.paused_until > self.now {
            let at = node.paused_until;
            self.schedule(
                at,
                Ev::Net {
                    from,
                    to,
                    sent_at,
                    msg,
                },
            );
            return;
        }
        self.record_transfer(EventKind::Recv, from, to, sent_at, &msg);
        self.stats.delivered += 1;
        let from = self.topo.process(from);
        self.step_node(to, Input::Receive { from, msg });
    }

    pub(crate) fn on_tick(&mut self, i: usize, incarnation: u32) {
        let node = &self.nodes[i];
        if node.incarnation != incarnation || !node.is_up() {
            return;
        }
        self.hash.add(i as u64);
        if node.paused_until > self.now {
            let at = node.paused_until;
            // Due now, taken when the pause ends.
            let due = self.now;
            self.nodes[i].tick_missed_since.get_or_insert(due);
            self.schedule(
                at,
                Ev::Tick {
                    node: i,
                    incarnation,
                },
            );
            return;
        }
        let period = node.tick_period(self.now);
        let next = self.now + period;
        self.take_missed_ticks(i);
        self.stats.ticks += 1;
        self.step_node(i, Input::Tick);
        self.maybe_compact(i);
        self.schedule(
            next,
            Ev::Tick {
                node: i,
                incarnation,
            },
        );
    }

    /// With leases, a paused process must not see time stand still: as a
    /// driver that honours the drift bound does, it takes every tick it
    /// missed before any other input, including inputs that were held
    /// during the pause and arrive at the instant it ends, before its own
    /// tick event. Without leases the missed ticks are simply lost.
    fn take_missed_ticks(&mut self, i: usize) {
        let Some(due) = self.nodes[i].tick_missed_since.take() else {
            return;
        };
        if !self.leases_within_drift() {
            return;
        }
        let period = self.nodes[i].tick_period(self.now);
        for _ in 0..(self.now - due) / period {
            self.stats.ticks += 1;
            self.step_node(i, Input::Tick);
            self.maybe_compact(i);
        }
    }

    /// Periodic compaction (`--snapshot-ticks`): the process is asked for a
    /// checkpoint, as a driver whose log grew asks.
    fn maybe_compact(&mut self, i: usize) {
        let Some(every) = self.opts.snapshot_ticks else {
            return;
        };
        let node = &mut self.nodes[i];
        node.ticks += 1;
        if node.ticks % every == 0 {
            self.step_node(i, Input::Checkpoint);
        }
    }

    pub(crate) fn step_node(&mut self, i: usize, input: In<S>) {
        if !matches!(input, Input::Tick) {
            self.take_missed_ticks(i);
        }
        let mut out = std::mem::take(&mut self.buf);
        let Some(server) = self.nodes[i].server.as_mut() else {
            return;
        };
        let was_leader = server.is_leader();
        server.step_into(input, &mut out);
        let done = server.take_done();
        for action in out.drain(..) {
            if was_leader && matches!(action, Action::Persist(Record::Campaign(_))) {
                // A leader refused by one rival's acceptor that campaigned
                // again above it rather than step down.
                self.stats.bumps += 1;
            }
            self.perform(i, action);
        }
        self.buf = out;
        self.check_transfer(i);
        self.check_new_leader(i);
        self.check_node(i);
        for (seq, slot) in done {
            self.on_seen_chosen(i, seq, slot);
        }
    }

    /// Persist-before-send: once a write is unsynced, every later action
    /// waits in `held` until the sync.
    fn perform(&mut self, i: usize, action: Act<S>) {
        // A rejoining server's campaign is a planned takeover, not an
        // election the faults caused.
        // Counted once every node is at work again (a pause under way at
        // heal runs out first): until then the cluster may lack the node
        // an election needs, as when a paused member leaves the others of
        // an even configuration needing one another unanimously.
        // Only campaigns of the latest configuration count: one in a
        // configuration already sealed is a server that has not heard of
        // the stop-sign yet, which the answers to it teach it.
        let latest = self.oracle.configurations() as u64 - 1;
        if self.healed
            && self.now >= self.settled_at
            && matches!(action, Action::Persist(Record::Campaign(b)) if b.epoch() == latest)
            && self.nodes[i].wiped_at.is_none()
        {
            self.campaigns_after_heal += 1;
            self.last_campaign_at = self.now;
        }
        match action {
            Action::Persist(record) => self.write(i, Write::Append(record)),
            Action::PersistSnapshot(p) => self.write(i, Write::Snapshot(p)),
            Action::Compact(c) => self.write(i, Write::Compact(c)),
            Action::Event(Event::Rejoined { ballot, .. }) => {
                // Done once `Record::Rejoined` is on disk (`made_durable`).
                self.record(EventKind::Fault, Some(i), || {
                    format!("node {i} rejoins, leading in {ballot}")
                });
            }
            Action::Event(Event::ReconfigureRefused { reason }) => {
                self.record(EventKind::Fault, Some(i), || {
                    format!("node {i} refused the membership change: {reason:?}")
                });
            }
            Action::Event(Event::Reconfigured { epoch, member, .. }) => {
                self.record(EventKind::Fault, Some(i), || {
                    let role = if member { "a member" } else { "not a member" };
                    format!("node {i} enters configuration {epoch}, {role}")
                });
            }
            Action::Event(Event::HandingOff { to, ballot }) => {
                self.stats.transfers += 1;
                if let Some(j) = self.topo.entry_index(to) {
                    self.transfer = Some((j, ballot, self.now));
                }
            }
            Action::Event(Event::SnapshotInstalled { next_slot, .. }) => {
                // The replica (and its journal of executions) and the
                // learner jumped: the checkers start over for this node, as
                // after a restore.
                self.stats.snapshots_installed += 1;
                self.hash.add(next_slot);
                self.nodes[i].journal_seen = 0;
                self.deliveries.restarted(i, next_slot);
                self.executions.restarted(i);
            }
            other
                if self.nodes[i].has_unsynced()
                    && self.opts.sabotage != Sabotage::SendBeforeSync =>
            {
                self.nodes[i].held.push(other)
            }
            other => self.emit(i, other),
        }
    }

    fn write(&mut self, i: usize, write: Write<Cmd<S>, Snap<S>>) {
        self.nodes[i].disk.unsynced.push(write);
        self.schedule_sync(i);
    }

    fn schedule_sync(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.sync_pending {
            return;
        }
        node.sync_pending = true;
        let (lo, hi) = if self.opts.faults.contains(Fault::Disk) && !self.healed {
            SLOW_FSYNC_UNITS
        } else {
            FSYNC_UNITS
        };
        let at = self.now + self.disk_rng.between(lo, hi);
        let incarnation = node.incarnation;
        self.schedule(
            at,
            Ev::Sync {
                node: i,
                incarnation,
            },
        );
    }

    /// Performs an action that may leave the process now.
    fn emit(&mut self, i: usize, action: Act<S>) {
        match action {
            Action::Send { to, msg } => {
                if let Err(f) = self.durable.check_send(i, &msg) {
                    self.fail(f);
                }
                let mut targets = std::mem::take(&mut self.route_buf);
                self.topo.route(i, to, &mut targets);
                if matches!(msg, Message::Snapshot(_)) {
                    self.stats.snapshots_sent += targets.len() as u64;
                }
                if let Some((&last, rest)) = targets.split_last() {
                    for &j in rest {
                        self.send(i, j, msg.clone());
                    }
                    self.send(i, last, msg);
                }
                targets.clear();
                self.route_buf = targets;
            }
            Action::Reply {
                client,
                seq,
                slot,
                output,
            } => {
                if self.oracle.chosen(slot).is_none() {
                    self.fail(Failure::new(
                        Invariant::PersistBeforeSend,
                        format!(
                            "node {i} answered request {seq} of client {client} from slot {slot}, which no durable quorum chose"
                        ),
                    ));
                }
                self.reply(i, client, seq, slot, output)
            }
            Action::Event(Event::Dropped {
                client,
                seq,
                reason,
            }) => self.refuse(i, client, seq, reason),
            Action::ReadReply {
                client,
                id,
                slot,
                output,
            } => self.read_reply(i, client, id, slot, output),
            Action::Event(Event::ReadRefused { client, id, .. }) => {
                self.read_refused(i, client, id)
            }
            Action::Event(_)
            | Action::Deliver { .. }
            | Action::Persist(_)
            | Action::PersistSnapshot(_)
            | Action::Compact(_) => {}
        }
    }

    /// Delay of a message between process `i` and a client, or `None` if lost.
    pub(crate) fn client_link(&mut self, i: usize) -> Option<u64> {
        match self.net.fate(i, None, self.now) {
            Fate::Lost => None,
            Fate::Once(d) | Fate::Twice(d, _) => Some(d),
        }
    }

    /// Sends a message through the faulty network.
    fn send(&mut self, from: usize, to: usize, msg: Msg<S>) {
        let sent_at = self.now;
        self.stats.sent += 1;
        let fate = self.net.fate(from, Some(to), sent_at);
        let snapshot = matches!(msg, Message::Snapshot(_));
        if !snapshot && matches!(fate, Fate::Once(_) | Fate::Twice(..)) {
            // What a storm may replay later: messages that got through.
            self.net.remember(from, to, &msg);
        }
        match fate {
            Fate::Lost => {
                self.stats.lost += 1;
                self.record_transfer(EventKind::Lost, from, to, sent_at, &msg);
            }
            Fate::Once(d) => self.schedule(
                sent_at + d,
                Ev::Net {
                    from,
                    to,
                    sent_at,
                    msg,
                },
            ),
            Fate::Twice(d1, d2) => {
                self.schedule(
                    sent_at + d1,
                    Ev::Net {
                        from,
                        to,
                        sent_at,
                        msg: msg.clone(),
                    },
                );
                self.schedule(
                    sent_at + d2,
                    Ev::Net {
                        from,
                        to,
                        sent_at,
                        msg,
                    },
                );
            }
        }
    }

    pub(crate) fn on_sync(&mut self, i: usize, incarnation: u32) {
        if self.nodes[i].incarnation != incarnation || !self.nodes[i].is_up() {
            return;
        }
        self.hash.add(i as u64);
        let node = &mut self.nodes[i];
        node.sync_pending = false;
        let writes = std::mem::take(&mut node.disk.unsynced);
        let held = std::mem::take(&mut node.held);
        for write in writes {
            self.made_durable(i, write);
        }
        for action in held {
            self.emit(i, action);
        }
        self.check_node(i);
    }

    /// A write of node `i` is now on disk for good: the oracle counts the
    /// votes it holds and the promise checker learns the floor for restarts.
    fn made_durable(&mut self, i: usize, write: Write<Cmd<S>, Snap<S>>) {
        let server = self.topo.kind(i) == Kind::Server;
        match &write {
            Write::Append(record) => {
                if matches!(record, Record::Rejoining) {
                    // From here on its log says it is rejoining: a restart
                    // restores that, as a driver restarts from its log.
                    self.nodes[i].restart_empty = false;
                }
                if matches!(record, Record::Rejoined) {
                    self.rejoined(i);
                }
                self.record_durable(i, record);
                self.durable.record(i, record);
                if server && matches!(record, Record::Trimmed(_)) {
                    if let Err(f) = self.durable.check_trim(i) {
                        self.fail(f);
                    }
                }
            }
            Write::Snapshot(p) => {
                let slot = p.next_slot;
                self.durable.snapshot(i, slot);
                self.record(EventKind::Sync, Some(i), || {
                    format!("snapshot at slot {slot} appended")
                });
            }
            Write::Compact(c) => {
                self.stats.snapshots += 1;
                for record in &c.records {
                    self.record_durable(i, record);
                }
                let snapshot = c.snapshot.as_ref().map(|s| s.next_slot);
                self.durable.compacted(i, snapshot, &c.records);
                if server {
                    if let Err(f) = self.durable.check_trim(i) {
                        self.fail(f);
                    }
                }
                let slot = snapshot.unwrap_or(0);
                let kept = c.records.len();
                self.record(EventKind::Sync, Some(i), || {
                    format!("log compacted: snapshot at slot {slot}, {kept} records")
                });
            }
        }
        self.nodes[i].disk.synced.apply(write);
    }

    fn record_durable(&mut self, i: usize, record: &Record<Cmd<S>>) {
        match record {
            Record::Promised(b) => self.promises.made_durable(i, *b),
            Record::Accepted(pv) => {
                self.promises.made_durable(i, pv.ballot);
                let Some(id) = self.topo.acceptor_id(i) else {
                    return;
                };
                match self.oracle.vote(id, pv.slot, pv.ballot, &pv.value) {
                    Ok(true) => {
                        let slot = pv.slot;
                        self.record(EventKind::Chosen, Some(i), || {
                            format!("slot {slot} chosen in ballot {}", pv.ballot)
                        });
                        if self.oracle.configurations() > self.epochs.len() + 1 {
                            self.epochs.push((self.now, None));
                            if self.healed {
                                // A change that completes after heal needs
                                // an election of its own: election health
                                // counts the new configuration's campaigns.
                                self.campaigns_after_heal = 0;
                            }
                            let e = self.epochs.len();
                            let members = format!("{:?}", self.oracle.latest_members());
                            self.record(EventKind::Chosen, Some(i), || {
                                format!("stop-sign in slot {slot}: configuration {e} of {members} begins")
                            });
                        }
                        self.advance_reference();
                    }
                    Ok(false) => {}
                    Err(f) => self.fail(f),
                }
            }
            Record::Trimmed(_) | Record::Campaign(_) | Record::Rejoining | Record::Rejoined => {}
        }
    }

    fn advance_reference(&mut self) {
        while self.reference.next_slot() < self.oracle.prefix() {
            let slot = self.reference.next_slot();
            let value = self.oracle.chosen(slot).expect("below the chosen prefix");
            self.reference
                .apply_slot(value.commands(), |s: &mut S, c: &Tagged<S::Command>| {
                    s.apply(&c.op)
                });
        }
    }

    /// Cheap per-step checks of node `i`: promises, executions, and (once its
    /// writes are durable, so that what it did may be seen) its deliveries.
    /// Node `i` just stepped: if it leads in a configuration after the
    /// first, and is the first to, that configuration has its leader.
    fn check_new_leader(&mut self, i: usize) {
        let Some(server) = self.nodes[i].server.as_ref() else {
            return;
        };
        let Some((epoch, _)) = server.membership().filter(|&(e, _)| e > 0) else {
            return;
        };
        if !server.is_leader() {
            return;
        }
        if let Some((began, led @ None)) = self.epochs.get_mut(epoch as usize - 1) {
            *led = Some(self.now);
            let took = self.now.saturating_sub(*began);
            self.stats.reconfig_units_max = self.stats.reconfig_units_max.max(took);
        }
    }

    /// Node `i` just stepped: if it is the one a transfer named and it now
    /// leads in a higher ballot, the transfer is done.
    fn check_transfer(&mut self, i: usize) {
        let Some((to, handed, at)) = self.transfer else {
            return;
        };
        let Some(p) = self.nodes[i].server.as_ref() else {
            return;
        };
        if i == to && p.is_leader() && p.ballot().is_some_and(|b| b > handed) {
            self.transfer = None;
            self.stats.transfers_done += 1;
            let took = self.now - at;
            self.stats.transfer_units_max = self.stats.transfer_units_max.max(took);
        }
    }

    pub(crate) fn check_node(&mut self, i: usize) {
        if let Err(f) = self.check_node_inner(i) {
            self.fail(f);
        }
    }

    fn check_node_inner(&mut self, i: usize) -> Result<(), Failure> {
        let node = &mut self.nodes[i];
        let Some(server) = node.server.as_ref() else {
            return Ok(());
        };
        if let Some(promised) = server.promised() {
            self.promises.observe(i, promised)?;
        }
        let journal = server.journal();
        for &(client, seq) in &journal[node.journal_seen..] {
            self.executions.executed(i, client, seq)?;
        }
        node.journal_seen = journal.len();
        if node.has_unsynced() {
            return Ok(());
        }
        if let Some(promised) = server.promised() {
            self.promises.settled(i, promised);
        }
        let Some(learner) = server.learner() else {
            return Ok(());
        };
        let next = learner.next_slot();
        if let Some(applied) = server.replica_next() {
            if applied != next {
                return Err(Failure::new(
                    Invariant::Order,
                    format!(
                        "node {i}'s learner stands at slot {next} but its replica at {applied}"
                    ),
                ));
            }
        }
        // A learner may have dropped a delivered value already: past
        // `retain_slots`, or when the values it kept would pass
        // `retain_commands` with the one before them (which holds at
        // least one command and at most `batch_max`).
        let over_commands = slot_dropped_by_commands(
            learner.retained_commands(),
            self.batch_max,
            self.retain_commands,
        );
        for slot in self.deliveries.next(i)..next {
            match learner.decided(slot) {
                None if slot + self.retain_slots < next
                    || (slot < learner.first_retained() && over_commands) =>
                {
                    self.deliveries.delivered_unseen(i, slot)?;
                }
                value => self.deliveries.delivered(i, slot, value, &self.oracle)?,
            }
        }
        self.executions
            .follow_reference(i, journal, &self.reference.order)
    }

    pub(crate) fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if !node.is_up() {
            return;
        }
        node.server = None;
        node.incarnation += 1;
        node.held.clear();
        node.sync_pending = false;
        node.paused_until = 0;
        node.tick_missed_since = None;
        node.slow_until = 0;
        let lost = std::mem::take(&mut node.disk.unsynced);
        let incarnation = node.incarnation;
        let lost_count = lost.len();
        self.stats.crashes += 1;
        if self.opts.faults.contains(Fault::Disk) {
            // A prefix of the unsynced writes reached the disk.
            let keep = self.opts.rates.get(Fault::Disk);
            for write in lost {
                if !self.disk_rng.chance(keep) {
                    break;
                }
                self.made_durable(i, write);
            }
        }
        self.record(EventKind::Crash, Some(i), || {
            format!("crash; {lost_count} unsynced write(s) at risk")
        });
        let down = self.fault_rng.between(DOWN_TICKS.0, DOWN_TICKS.1) * TICK_UNITS;
        self.schedule(
            self.now + down,
            Ev::Restart {
                node: i,
                incarnation,
            },
        );
    }

    /// Node `i`'s rejoin is on its disk: it votes again for good.
    fn rejoined(&mut self, i: usize) {
        if let Some(at) = self.nodes[i].wiped_at.take() {
            self.stats.rejoins += 1;
            let took = self.now - at;
            self.stats.rejoin_units_max = self.stats.rejoin_units_max.max(took);
        }
        if self.healed {
            self.finish_if_idle();
        }
    }

    /// Node `i` crashes (if it runs) and loses its disk: it restarts
    /// empty and rejoins (`Server::rejoin`).
    pub(crate) fn wipe(&mut self, i: usize) {
        self.crash(i);
        let node = &mut self.nodes[i];
        node.disk = Disk::default();
        node.restart_empty = true;
        node.wiped_at = Some(self.now);
        self.durable.wiped(i);
        self.promises.wiped(i);
        self.stats.wipes += 1;
        self.record(EventKind::Fault, Some(i), || {
            format!("node {i} loses its disk; it will rejoin")
        });
    }

    pub(crate) fn restart(&mut self, i: usize, incarnation: u32) {
        let node = &self.nodes[i];
        if node.is_up() || node.incarnation != incarnation {
            return;
        }
        let forget = self.opts.sabotage == Sabotage::ForgetDisk;
        let records = node.disk.synced.records.iter().filter(|_| !forget).cloned();
        let snapshot = node.disk.synced.snapshot.clone().filter(|_| !forget);
        let rejoin = if node.restart_empty {
            Proc::rejoin(&self.topo, i, self.opts.seed, incarnation)
        } else {
            None
        };
        let server = match rejoin.unwrap_or_else(|| {
            Proc::recover(
                &self.topo,
                i,
                self.opts.seed,
                incarnation,
                snapshot,
                records,
            )
        }) {
            Ok(s) => s,
            Err(e) => return self.fail(restart_failure(&e)),
        };
        let mut server = server;
        server.set_bug(self.opts.bug);
        let promised = server.promised();
        let resume_at = server.learner().map_or(0, |l| l.next_slot());
        let node = &mut self.nodes[i];
        node.server = Some(server);
        node.journal_seen = 0;
        self.deliveries.restarted(i, resume_at);
        self.executions.restarted(i);
        if let Some(promised) = promised {
            if let Err(f) = self.promises.restarted(i, promised) {
                return self.fail(f);
            }
        }
        self.record(EventKind::Restart, Some(i), || {
            format!("restart, promised {promised:?}")
        });
        let first = self.now + self.fault_rng.below(TICK_UNITS);
        self.schedule(
            first,
            Ev::Tick {
                node: i,
                incarnation,
            },
        );
    }
}

/// Could a learner keeping values of `retained` commands have dropped the
/// value before them by `Config::retain_commands`? Only if that value (of
/// at most `batch_max` commands) would have taken them past the bound.
fn slot_dropped_by_commands(retained: u64, batch_max: u64, retain_commands: u64) -> bool {
    retained.saturating_add(batch_max.max(1)) > retain_commands
}
