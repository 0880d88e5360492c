//! The driver loop: receive inputs (and a tick every [`TICK_MS`]), `step` the
//! core, encode its actions and hand them, in order, to the log thread. It
//! never waits for the disk and holds no protocol logic: every action means
//! what the core says, with no special case by record or message kind.

use super::{ReadMode, Shared, TICK_MS};
use crate::chat::{Chat, ChatOp, ChatOutput};
use crate::wal::{self, WalEntry};
use crate::wire::{self, Outcome, PeerFrame, Response};
use bytes::Bytes;
use paxos_core::{
    Action, ClientId, Command, Destination, DropReason, Event, Input, Message, NodeId, Process,
    ReadRefusal, ReconfigureRefusal, Server, ServerAction, TransferRefusal,
};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Inputs the driver takes before stepping them and handing the actions over.
const DRIVER_BATCH_MAX: usize = 4096;

/// What the I/O tasks hand the driver.
#[derive(Debug)]
pub(super) enum DriverInput {
    Peer { from: NodeId, frame: PeerFrame },
    Client(Command<ChatOp>),
}

/// An action after encoding, ready for the log thread to perform.
#[derive(Debug)]
pub(super) enum Effect {
    Peer(Destination, Bytes),
    Client(ClientId, Bytes),
}

/// What the driver hands the log thread, in order.
#[derive(Debug)]
pub(super) enum Batch {
    /// `pre` may go out at once; `post` only after `records` are synced.
    Actions {
        pre: Vec<Effect>,
        records: Vec<u8>,
        post: Vec<Effect>,
    },
    /// Make everything gathered so far durable, then replace the log by
    /// `entries` (the core's `Action::Compact`), atomically.
    Compact { entries: Vec<WalEntry> },
}

/// The driver loop and what it owns.
pub(super) struct Driver {
    pub(super) server: Server<Chat>,
    pub(super) shared: Arc<Shared>,
    pub(super) batch_tx: std_mpsc::Sender<Batch>,
    pub(super) meta: WalEntry,
    pub(super) compact_bytes: u64,
    pub(super) actions: Vec<ServerAction<Chat>>,
    /// The flight recorder (`--record`), if on.
    pub(super) recorder: Option<paxos_record::Recorder>,
    /// How gets are served: `Log` proposes them, the others read.
    pub(super) reads: ReadMode,
    /// Reads handed to the core, by `(client, read id)`: the request's seq,
    /// to answer under. The core answers or refuses every read it takes.
    pub(super) pending_reads: HashMap<(ClientId, u64), u64>,
    /// The transfer request being stepped, answered from the event the
    /// step emits.
    pub(super) pending_transfer: Option<(ClientId, u64)>,
    /// The membership change asked of this server, answered once this
    /// server applies its stop-sign, or refused.
    pub(super) pending_change: Option<PendingChange>,
    /// Every server's peer address, by id (what `add` is checked against).
    pub(super) peers: Vec<std::net::SocketAddr>,
    /// The next read id; never repeats within a run, and starts past any
    /// earlier run's (see `read_id_base`).
    pub(super) next_read_id: u64,
}

/// A membership change a client asked for.
pub(super) struct PendingChange {
    client: ClientId,
    seq: u64,
    /// Refused by the driver before the core saw it, for this reason.
    problem: Option<String>,
}

/// Ticks by the monotonic clock: one per [`TICK_MS`] since start, each
/// handed out once, however late the loop gets to them.
struct TickClock {
    start: std::time::Instant,
    fed: u64,
}

/// Most ticks handed out at once after a long stop; a lease or a timeout
/// has long ended after that many, so the rest change nothing.
const TICK_CATCH_UP_MAX: u64 = 10_000;

impl TickClock {
    fn new() -> Self {
        TickClock {
            start: std::time::Instant::now(),
            fed: 0,
        }
    }

    /// Ticks that fell due since the last call.
    fn due(&mut self) -> u64 {
        let now = self.start.elapsed().as_millis() as u64 / TICK_MS;
        let due = now.saturating_sub(self.fed);
        self.fed = now;
        due.min(TICK_CATCH_UP_MAX)
    }
}

impl Driver {
    /// Receive → step → hand actions over, until shutdown or a dead log thread.
    pub(super) async fn run(
        mut self,
        mut input: mpsc::Receiver<DriverInput>,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut inputs = Vec::with_capacity(DRIVER_BATCH_MAX);
        let mut clock = TickClock::new();
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = tick.tick() => {
                    for _ in 0..clock.due() {
                        self.step(Input::Tick);
                    }
                }
                n = input.recv_many(&mut inputs, DRIVER_BATCH_MAX) => {
                    if n == 0 {
                        break;
                    }
                    // Time first: a process that was stopped or starved
                    // takes every tick it missed before any input, or its
                    // clock would run slow and a lease outlive its grants.
                    for _ in 0..clock.due() {
                        self.step(Input::Tick);
                    }
                    for i in inputs.drain(..) {
                        self.input(i);
                    }
                }
            }
            self.maybe_compact();
            // The turn's steps are on record before any of their effects.
            self.flush_recording();
            if !self.flush() {
                break; // the log thread stopped: nothing may go out any more
            }
        }
        self.publish_counters();
    }

    fn step(&mut self, input: paxos_core::ServerInput<Chat>) {
        match &mut self.recorder {
            None => self.server.step_into(input, &mut self.actions),
            Some(recorder) => {
                recorder.input(&input);
                let first = self.actions.len();
                self.server.step_into(input, &mut self.actions);
                recorder.actions(&self.actions[first..]);
            }
        }
    }

    /// Writes the recorded steps of this turn. A recorder that cannot
    /// write is dropped with a warning: the server goes on without it.
    fn flush_recording(&mut self) {
        let Some(recorder) = &mut self.recorder else {
            return;
        };
        let steps = recorder.steps();
        if let Err(e) = recorder.flush() {
            warn!("the flight recorder stopped after {steps} steps: {e}");
            self.recorder = None;
            return;
        }
        self.shared.counters.recorded_steps.store(steps, Relaxed);
        let busy = u64::try_from(recorder.busy().as_nanos()).unwrap_or(u64::MAX);
        self.shared.counters.recorder_busy_ns.store(busy, Relaxed);
    }

    /// `add` or `remove`: the members this server is in, with `op`
    /// applied, go to the core as a stop-sign request; answered from the
    /// event (see `flush`). An `add` must name the address the peer list
    /// gives that id: the peer links come from that list.
    fn change_members(&mut self, client: ClientId, seq: u64, op: ChatOp) {
        let mut members = self.server.members().to_vec();
        let problem = match op {
            ChatOp::AddServer { id, addr } => match self.peers.get(id as usize) {
                None => Some(format!(
                    "server {id} is not in this cluster's peer list (ids 0 to {}); \
                     start every server with a peer list that names it",
                    self.peers.len().saturating_sub(1)
                )),
                Some(known) if addr.parse::<std::net::SocketAddr>().ok() != Some(*known) => {
                    Some(format!(
                        "server {id}'s peer address is {known} in this cluster's peer list, not {addr}"
                    ))
                }
                Some(_) if members.contains(&NodeId(id)) => {
                    Some(format!("server {id} is already a member"))
                }
                Some(_) => {
                    members.push(NodeId(id));
                    None
                }
            },
            ChatOp::RemoveServer { id } if !members.contains(&NodeId(id)) => {
                Some(format!("server {id} is not a member"))
            }
            ChatOp::RemoveServer { id } => {
                members.retain(|&m| m != NodeId(id));
                None
            }
            _ => Some("not a membership change".into()),
        };
        let refused = problem.is_some();
        self.pending_change = Some(PendingChange {
            client,
            seq,
            problem,
        });
        if refused {
            self.actions.push(Action::Event(Event::ReconfigureRefused {
                reason: ReconfigureRefusal::Invalid,
            }));
        } else {
            self.step(Input::Reconfigure { members });
        }
    }

    fn input(&mut self, input: DriverInput) {
        match input {
            DriverInput::Client(Command {
                client,
                seq,
                op: query @ ChatOp::Get { .. },
            }) if self.reads != ReadMode::Log => {
                let id = self.next_read_id;
                self.next_read_id += 1;
                self.pending_reads.insert((client, id), seq);
                self.step(Input::Read { client, id, query });
            }
            DriverInput::Client(Command {
                client,
                seq,
                op: ChatOp::Transfer { to },
            }) => {
                // Answered from the event this step emits (see `flush`).
                self.pending_transfer = Some((client, seq));
                self.step(Input::Transfer { to: NodeId(to) });
            }
            DriverInput::Client(Command {
                client,
                seq,
                op: op @ (ChatOp::AddServer { .. } | ChatOp::RemoveServer { .. }),
            }) => self.change_members(client, seq, op),
            DriverInput::Client(cmd) => self.step(Input::Propose(cmd)),
            DriverInput::Peer {
                from,
                frame: PeerFrame::Paxos(msg),
            } => self.step(Input::Receive {
                from: Process::server(from),
                msg,
            }),
            DriverInput::Peer {
                frame: PeerFrame::Hello { .. },
                ..
            } => {}
        }
    }

    /// Encodes the gathered actions and hands them to the log thread, keeping
    /// their order. Returns false if the log thread is gone.
    fn flush(&mut self) -> bool {
        if self.actions.is_empty() {
            return true;
        }
        let mut batches = Vec::new();
        let (mut pre, mut records, mut post) = (Vec::new(), Vec::new(), Vec::new());
        let leader = self.server.leader();
        let routes = self.shared.routes.lock().expect("routes lock");
        let c = &self.shared.counters;
        for action in self.actions.drain(..) {
            let effect = match action {
                Action::Persist(record) => {
                    wal::frame(&WalEntry::Record(record), &mut records);
                    c.records.fetch_add(1, Relaxed);
                    continue;
                }
                Action::PersistSnapshot(snapshot) => {
                    wal::frame(&WalEntry::Snapshot(snapshot), &mut records);
                    c.records.fetch_add(1, Relaxed);
                    continue;
                }
                Action::Compact(checkpoint) => {
                    // A barrier: what came before is made durable first,
                    // and what follows waits for the new log.
                    batches.push(Batch::Actions {
                        pre: std::mem::take(&mut pre),
                        records: std::mem::take(&mut records),
                        post: std::mem::take(&mut post),
                    });
                    let mut entries = vec![self.meta.clone()];
                    entries.extend(checkpoint.snapshot.map(|s| WalEntry::Snapshot(Box::new(s))));
                    entries.extend(checkpoint.records.into_iter().map(WalEntry::Record));
                    batches.push(Batch::Compact { entries });
                    continue;
                }
                Action::Send { to, msg } => {
                    if let Message::Snapshot(s) = &msg {
                        c.snapshots_sent.fetch_add(1, Relaxed);
                        debug!("sending {to} a snapshot up to slot {}", s.next_slot);
                    }
                    Effect::Peer(to, wire::encode(&PeerFrame::Paxos(msg)))
                }
                Action::Reply {
                    client,
                    seq,
                    slot,
                    output,
                } => {
                    if !routes.contains_key(&client) {
                        continue; // another server holds this client
                    }
                    let result = Outcome::Done { slot, output };
                    response(client, seq, result, leader)
                }
                Action::Event(Event::Dropped {
                    client,
                    seq,
                    reason,
                }) => {
                    c.refused.fetch_add(1, Relaxed);
                    if !routes.contains_key(&client) {
                        continue;
                    }
                    response(client, seq, Outcome::Refused { reason }, leader)
                }
                Action::Event(Event::Decided { .. }) => {
                    c.decided.fetch_add(1, Relaxed);
                    continue;
                }
                Action::ReadReply {
                    client,
                    id,
                    slot,
                    output,
                } => {
                    // Replies to reads another server asked for go to no
                    // one here (they were never pending here).
                    let Some(seq) = self.pending_reads.remove(&(client, id)) else {
                        continue;
                    };
                    if !routes.contains_key(&client) {
                        continue;
                    }
                    response(client, seq, Outcome::Done { slot, output }, leader)
                }
                Action::Event(Event::ReadRefused { client, id, reason }) => {
                    let Some(seq) = self.pending_reads.remove(&(client, id)) else {
                        continue;
                    };
                    c.refused.fetch_add(1, Relaxed);
                    if !routes.contains_key(&client) {
                        continue;
                    }
                    // The client retries a refused command; a refused read
                    // is refused the same way so it retries that too.
                    let result = match reason {
                        ReadRefusal::NotLeader { leader } => Outcome::Refused {
                            reason: DropReason::NotLeader { leader },
                        },
                        ReadRefusal::TimedOut => Outcome::Refused {
                            reason: DropReason::Overloaded,
                        },
                        ReadRefusal::NotReadOnly => Outcome::Rejected {
                            reason: "this operation cannot be served as a read".into(),
                        },
                    };
                    response(client, seq, result, leader)
                }
                Action::Event(Event::SnapshotInstalled { from, next_slot }) => {
                    c.snapshots_installed.fetch_add(1, Relaxed);
                    info!(
                        "installed a snapshot from server {} up to slot {next_slot}",
                        from.0
                    );
                    continue;
                }
                Action::Event(Event::HandingOff { to, ballot }) => {
                    info!("handing the lead to server {} (ballot {ballot})", to.0);
                    let Some((client, seq)) = self.pending_transfer.take() else {
                        continue;
                    };
                    if !routes.contains_key(&client) {
                        continue;
                    }
                    let output = ChatOutput::HandingOff { to: to.0 };
                    let slot = self.server.applied_up_to();
                    response(client, seq, Outcome::Done { slot, output }, leader)
                }
                Action::Event(Event::TransferRefused { to, reason }) => {
                    let Some((client, seq)) = self.pending_transfer.take() else {
                        continue;
                    };
                    if !routes.contains_key(&client) {
                        continue;
                    }
                    let result = match reason {
                        // The client's session retries at the leader.
                        TransferRefusal::NotLeader { leader } => Outcome::Refused {
                            reason: DropReason::NotLeader { leader },
                        },
                        TransferRefusal::NotAMember => Outcome::Rejected {
                            reason: format!("server {} is not a member of the cluster", to.0),
                        },
                        TransferRefusal::AlreadyLeader => Outcome::Rejected {
                            reason: format!("server {} already leads", to.0),
                        },
                    };
                    response(client, seq, result, leader)
                }
                Action::Event(Event::Rejoined {
                    ballot,
                    trimmed_below,
                }) => {
                    // A warning, as the start of the rejoin was: the
                    // operator watching for one sees the other.
                    warn!(
                        "{}: votes again, leading in ballot {ballot}; slots below \
                         {trimmed_below} were chosen before",
                        super::REJOINED_LINE
                    );
                    continue;
                }
                Action::Event(Event::Reconfigured {
                    epoch,
                    first_slot,
                    member,
                }) => {
                    let members: Vec<u32> = self.server.members().iter().map(|m| m.0).collect();
                    if member {
                        info!("{MEMBER_LINE} {epoch} from slot {first_slot}: members {members:?}");
                    } else {
                        warn!(
                            "{REMOVED_LINE} (configuration {epoch} from slot {first_slot}: members \
                             {members:?}); it votes no more and only serves catch-up: stop it"
                        );
                    }
                    let Some(change) = self.pending_change.take() else {
                        continue;
                    };
                    if !routes.contains_key(&change.client) {
                        continue;
                    }
                    let output = ChatOutput::Reconfigured { epoch, members };
                    let slot = first_slot.saturating_sub(1);
                    response(
                        change.client,
                        change.seq,
                        Outcome::Done { slot, output },
                        leader,
                    )
                }
                Action::Event(Event::ReconfigureRefused { reason }) => {
                    let Some(change) = self.pending_change.take() else {
                        continue;
                    };
                    if !routes.contains_key(&change.client) {
                        continue;
                    }
                    let result = match (change.problem, reason) {
                        (Some(problem), _) => Outcome::Rejected { reason: problem },
                        // The client's session retries at the leader.
                        (None, ReconfigureRefusal::NotLeader { leader }) => Outcome::Refused {
                            reason: DropReason::NotLeader { leader },
                        },
                        (None, reason) => Outcome::Rejected {
                            reason: refusal_text(reason),
                        },
                    };
                    response(change.client, change.seq, result, leader)
                }
                Action::Event(Event::Ignored { kind }) => {
                    // Counted by the core; published from its stats at exit.
                    debug!("ignored a {kind} message");
                    continue;
                }
                // A server neither fails requests (its clients' sessions
                // do) nor delivers outside itself.
                Action::Event(Event::Failed { .. }) | Action::Deliver { .. } => continue,
            };
            if records.is_empty() {
                pre.push(effect);
            } else {
                post.push(effect);
            }
        }
        drop(routes);
        batches.push(Batch::Actions { pre, records, post });
        batches
            .into_iter()
            .all(|batch| self.batch_tx.send(batch).is_ok())
    }

    /// Asks the core for a checkpoint once the log has grown enough since
    /// the last compaction (and by at least its own size, so compaction
    /// stays linear).
    fn maybe_compact(&mut self) {
        let len = self.shared.wal_len_bytes.load(Relaxed);
        let base = self.shared.wal_base_bytes.load(Relaxed);
        if len.saturating_sub(base) < self.compact_bytes.max(base)
            || self.shared.compacting.swap(true, Relaxed)
        {
            return;
        }
        info!(
            "compacting the log ({len} bytes) at slot {}",
            self.server.applied_up_to()
        );
        self.step(Input::Checkpoint);
    }

    fn publish_counters(&self) {
        let stats = self.server.stats();
        let c = &self.shared.counters;
        c.executed.store(stats.executed, Relaxed);
        c.ignored.store(stats.ignored, Relaxed);
    }
}

/// The line a server logs when it enters a configuration it is a member
/// of (the harness waits for it after `AddServer`).
pub const MEMBER_LINE: &str = "member of configuration";
/// The line a server logs when a configuration leaves it out.
pub const REMOVED_LINE: &str = "removed from the cluster";

/// What a client is told of a membership change the leader refused.
fn refusal_text(reason: ReconfigureRefusal) -> String {
    match reason {
        ReconfigureRefusal::NotLeader { .. } => "this server does not lead".into(),
        ReconfigureRefusal::InProgress => {
            "another membership change (or a leader transfer) is under way; try again once it is done"
                .into()
        }
        ReconfigureRefusal::Unchanged => "the members would not change".into(),
        ReconfigureRefusal::Invalid => {
            "a configuration needs 1 to 64 servers, each named once".into()
        }
        ReconfigureRefusal::NoQuorum { ready, needed } => format!(
            "only {ready} of the new members are reachable and caught up, and a majority is \
             {needed}: start a new server first (with --join) and let it catch up"
        ),
    }
}

fn response(client: ClientId, seq: u64, result: Outcome, leader: Option<NodeId>) -> Effect {
    Effect::Client(
        client,
        wire::encode(&Response {
            client,
            seq,
            result,
            leader,
        }),
    )
}
