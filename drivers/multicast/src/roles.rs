//! The four role loops. Each is the same select loop: wake on datagrams, a tick or
//! a signal → step the core → perform its actions (log synced before sends) → flush.

use crate::auth::{Counter, Key};
use crate::conf::Groups;
use crate::net::{Auth, Counters, Node, Wake};
use crate::wal::{Wal, WalError};
use crate::wire::Sender;
use paxos_core::{
    Acceptor, Action, Client, ClientId, Command, Config, Input, LearnerReplica, NodeId, Proposer,
    ProposerState, Record, Role, StateMachine,
};
use paxos_record::{BootRef, Kind, Meta, Recorder};
use std::cell::RefCell;
use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::rc::Rc;

// Sizes. Every message must fit in one datagram, and the one that grows is
// a new leader's phase 1 `Promise`: it carries every value an acceptor holds
// from the trim point on (a standalone proposer prepares from there). The
// core bounds that span by `accept_ahead_max = 2 * retain_slots + 4 *
// pipeline_window` slots, so these constants bound the promise:
// PROMISE_SLOTS_MAX slots of one command of at most COMMAND_BYTES_MAX bytes.
// `tests::worst_case_promise_fits_in_a_datagram` checks the arithmetic.

/// Commands per slot. One: clients batch values into commands instead.
pub const BATCH_MAX: usize = 1;
/// Slots a leader keeps in phase 2 at once.
pub const PIPELINE_WINDOW: usize = 4;
/// Slots an acceptor keeps below the leader's commit point. Learners serve
/// catch-up; acceptors only need what a new leader's phase 1 may ask for.
pub const ACCEPTOR_RETAIN_SLOTS: u64 = 2;
/// Votes an acceptor keeps in memory below its trim point, to answer a
/// learner that missed every vote of a slot the acceptors already trimmed.
pub const ACCEPTOR_VOTE_HISTORY: u64 = 4096;
/// Most slots an acceptor's log spans, hence most entries in a promise.
pub const PROMISE_SLOTS_MAX: usize = 2 * ACCEPTOR_RETAIN_SLOTS as usize + 4 * PIPELINE_WINDOW;
/// Most bytes of values a client packs into one command (values joined by newlines).
pub const COMMAND_BYTES_MAX: usize = 2_800;
/// Default bytes of values per client command (see `--batch-bytes`).
pub const DEFAULT_BATCH_BYTES: usize = COMMAND_BYTES_MAX;
/// Longest value (one line, without its newline).
pub const VALUE_BYTES_MAX: usize = COMMAND_BYTES_MAX;
/// Slots a learner keeps to serve catch-up to late or lagging learners.
const LEARNER_RETAIN_SLOTS: u64 = 1 << 16;
/// Slots per catch-up request (the reply is split into datagrams).
const CATCHUP_CHUNK: usize = 64;
// Timers, in ticks of `net::TICK` (1 ms). A LAN's round trip is about a
// millisecond, and loss is repaired only when a timer runs out: a value
// whose `Accept`, vote or client `Forward` was lost waits for the leader's
// retransmission, the learner's catch-up or the client's retry. These were
// the core's defaults for a 10 ms tick (40, 40 and 80 ms); at 30 % loss per
// receiver half of all slots need a repair, and the clients spent most of
// their time waiting out those timers (`README.md`, "Benchmark"). A timer
// fires on the tick its count is reached, so 3 ticks is 2-3 ms: about two
// round trips with the acceptor's fsync. Without loss some votes take
// longer than that under load, and their commands and `Accept`s are sent
// again for nothing (a leader ignores copies of what it holds, an acceptor
// acknowledges a repeated `Accept` without a write); the bench measured
// that as noise next to what the shorter wait gains under loss.
// Heartbeat and election timeouts keep their wall-clock lengths.

/// Leader heartbeat period: 20 ms.
const HEARTBEAT_TICKS: u32 = 20;
/// A follower campaigns after 100–200 ms without a heartbeat.
const ELECTION_TIMEOUT_TICKS: u32 = 100;
/// An unanswered `Accept` or `Prepare` is sent again after 3 ms, and so is
/// a client's command until a vote shows it proposed.
const RETRANSMIT_TICKS: u32 = 3;
/// A learner stuck behind a slot it knows chosen asks for it after 3 ms.
const CATCHUP_TICKS: u32 = 3;
/// Only a `Server` sends snapshots; kept at its default's 200 ms all the same.
const SNAPSHOT_RESEND_TICKS: u32 = 200;
/// A client with values waiting warns after this long without a delivery.
const NO_ANSWER_WARNING: std::time::Duration = std::time::Duration::from_secs(5);
/// A log is compacted to a checkpoint once it is this large.
const WAL_COMPACT_BYTES: u64 = 32 << 20;

/// Everything a role needs from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// The groups of `paxos.conf`.
    pub groups: Groups,
    /// This process's role.
    pub role: Role,
    /// Its id within the role.
    pub id: u32,
    /// How many acceptors there are (ids 1..=n).
    pub acceptors: u32,
    /// Where acceptors and proposers keep their logs.
    pub data_dir: PathBuf,
    /// Probability of dropping each received datagram (testing only).
    pub drop_rate: f64,
    /// Client: bytes of values per command.
    pub batch_bytes: usize,
    /// Client: give up (exit 1) when values wait and nothing was delivered
    /// for this long.
    pub deadline: Option<std::time::Duration>,
    /// Flight recorder: append every input of the core to this file.
    pub record: Option<PathBuf>,
    /// The cluster's key: sign every datagram and accept only signed, fresh
    /// ones. `None` keeps the unauthenticated format.
    pub key: Option<Key>,
}

/// The flight recorder of one role, if `--record` asked for it.
struct Rec(Option<Recorder>);

impl Rec {
    fn start(
        opts: &Options,
        config: &Config,
        records: &[Record<String>],
        client: Option<u64>,
    ) -> Result<Rec, RunError> {
        let Some(path) = &opts.record else {
            return Ok(Rec(None));
        };
        let kind = match opts.role {
            Role::Acceptor => Kind::AbcastAcceptor,
            Role::Proposer => Kind::AbcastProposer,
            Role::Learner => Kind::AbcastLearner,
            Role::Client => Kind::AbcastClient,
        };
        let boot = BootRef::<String, ()> {
            config,
            snapshot: None,
            records,
            client,
        };
        let recorder = Recorder::start(path, &Meta::now(kind, opts.id), &boot)
            .map_err(|e| RunError::Record(format!("{}: {e}", path.display())))?;
        tracing::info!(file = %path.display(), "recording every input of the core");
        Ok(Rec(Some(recorder)))
    }

    /// Steps `input` through `step`, on record.
    fn step(
        &mut self,
        input: Input<String>,
        out: &mut Vec<Action<String>>,
        step: impl FnOnce(Input<String>, &mut Vec<Action<String>>),
    ) {
        match &mut self.0 {
            None => step(input, out),
            Some(r) => {
                r.input(&input);
                let first = out.len();
                step(input, out);
                r.actions(&out[first..]);
            }
        }
    }

    /// Writes this turn's steps, before their actions are performed. A
    /// recorder that cannot write is dropped with a warning.
    fn flush(&mut self) {
        if let Some(r) = &mut self.0 {
            if let Err(e) = r.flush() {
                tracing::warn!(steps = r.steps(), "the flight recorder stopped: {e}");
                self.0 = None;
            }
        }
    }

    fn summary(&self) -> String {
        self.0
            .as_ref()
            .map_or(String::new(), |r| format!(" recorded_steps={}", r.steps()))
    }
}

/// A role failed in a way it cannot go on from.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The network could not be set up.
    #[error("network: {0}")]
    Net(#[from] io::Error),
    /// The log could not be read or written.
    #[error("log: {0}")]
    Wal(#[from] WalError),
    /// The core refused the configuration or the recovered records.
    #[error("{0}")]
    Core(String),
    /// The flight recording could not be started.
    #[error("cannot record to {0}")]
    Record(String),
    /// The datagram counter's epoch could not be read or recorded.
    #[error("{path}: {source}")]
    Epoch {
        /// The epoch file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl Options {
    fn me(&self) -> Sender {
        Sender {
            role: self.role,
            id: NodeId(self.id),
        }
    }

    /// The core configuration of this process.
    pub fn core_config(&self) -> Config {
        let members = (1..=self.acceptors).map(NodeId).collect();
        let mut c = Config::new(NodeId(self.id), members).with_seed(u64::from(self.id));
        c.batch_max = BATCH_MAX;
        c.pipeline_window = PIPELINE_WINDOW;
        c.catchup_chunk = CATCHUP_CHUNK;
        c.retain_slots = match self.role {
            Role::Acceptor | Role::Proposer => ACCEPTOR_RETAIN_SLOTS,
            // A client's learner serves catch-up too while it runs: one more
            // copy of every value it saw, for learners that missed it.
            Role::Learner | Role::Client => LEARNER_RETAIN_SLOTS,
        };
        c.learners_apart = true;
        c.vote_history_slots = ACCEPTOR_VOTE_HISTORY;
        c.heartbeat_ticks = HEARTBEAT_TICKS;
        c.election_timeout_ticks = ELECTION_TIMEOUT_TICKS;
        c.retransmit_ticks = RETRANSMIT_TICKS;
        c.catchup_ticks = CATCHUP_TICKS;
        c.snapshot_resend_ticks = SNAPSHOT_RESEND_TICKS;
        c
    }

    /// The network end of this process. Acceptors and proposers (`durable`)
    /// keep their datagram counter's epoch beside their log, so that a
    /// restart never reuses a counter; call it after the log is locked.
    fn node(&self, durable: bool) -> Result<Node, RunError> {
        let auth = match &self.key {
            None => None,
            Some(key) => {
                let store = durable.then(|| {
                    self.data_dir
                        .join(format!("{}-{}.epoch", self.role, self.id))
                });
                let counter = Counter::start(store.clone()).map_err(|source| RunError::Epoch {
                    path: store.unwrap_or_default(),
                    source,
                })?;
                Some(Auth::new(key.clone(), counter))
            }
        };
        Ok(Node::new(
            self.me(),
            self.groups.clone(),
            self.drop_rate,
            auth,
        )?)
    }

    fn wal_path(&self) -> PathBuf {
        self.data_dir.join(format!("{}-{}.wal", self.role, self.id))
    }

    fn banner(&self, counters: &Counters, extra: &str) {
        eprintln!("abcast {} {}: {counters}{extra}", self.role, self.id);
    }
}

/// Runs the role until SIGINT/SIGTERM (or, for a client, until every value
/// read is delivered). Returns the process exit status.
pub async fn run(opts: Options) -> Result<i32, RunError> {
    match opts.role {
        Role::Acceptor => run_acceptor(opts).await,
        Role::Proposer => run_proposer(opts).await,
        Role::Learner => run_learner(opts).await,
        Role::Client => run_client(opts).await,
    }
}

async fn run_acceptor(opts: Options) -> Result<i32, RunError> {
    let config = opts.core_config();
    let (mut wal, records) = Wal::open(&opts.wal_path())?;
    let recovered = records.len();
    let mut rec = Rec::start(&opts, &config, &records, None)?;
    let mut acceptor = Acceptor::recover(&config, records)
        .map_err(|e| RunError::Core(format!("{}: {e}", opts.wal_path().display())))?;
    tracing::info!(records = recovered, promised = %acceptor.promised(), "acceptor started");
    let mut node = opts.node(true)?;
    let mut actions = Vec::new();
    loop {
        match node.wake().await {
            Wake::Shutdown => break,
            Wake::Tick => continue, // acceptors have no timers
            Wake::Messages => {
                node.drain_inbox(|i| rec.step(i, &mut actions, |i, out| acceptor.step_into(i, out)))
            }
        }
        rec.flush();
        node.perform(&mut actions, Some(&mut wal), |_| {}).await?;
        if wal.bytes() > WAL_COMPACT_BYTES {
            rec.step(Input::Checkpoint, &mut actions, |i, out| {
                acceptor.step_into(i, out)
            });
            rec.flush();
            node.perform(&mut actions, Some(&mut wal), |_| {}).await?;
        }
    }
    node.counters.ignored += acceptor.ignored();
    let extra = format!(
        " promised={} trimmed_below={} log_bytes={}{}",
        acceptor.promised(),
        acceptor.trimmed_below(),
        wal.bytes(),
        rec.summary()
    );
    opts.banner(&node.counters, &extra);
    Ok(0)
}

async fn run_proposer(opts: Options) -> Result<i32, RunError> {
    let config = opts.core_config();
    let (mut wal, records) = Wal::open(&opts.wal_path())?;
    let mut rec = Rec::start(&opts, &config, &records, None)?;
    let mut proposer =
        Proposer::<String>::recover(&config, records).map_err(|e| RunError::Core(e.to_string()))?;
    tracing::info!("proposer started");
    let mut node = opts.node(true)?;
    let mut actions = Vec::new();
    let mut state = proposer.state();
    let mut terms_led = 0u64;
    loop {
        match node.wake().await {
            Wake::Shutdown => break,
            Wake::Tick => rec.step(Input::Tick, &mut actions, |i, out| {
                proposer.step_into(i, out)
            }),
            Wake::Messages => {
                node.drain_inbox(|i| rec.step(i, &mut actions, |i, out| proposer.step_into(i, out)))
            }
        }
        rec.flush();
        node.perform(&mut actions, Some(&mut wal), |_| {}).await?;
        if proposer.state() != state {
            state = proposer.state();
            if state == ProposerState::Leader {
                terms_led += 1;
            }
            tracing::info!(?state, ballot = %proposer.ballot(), "proposer state changed");
        }
        if wal.records_since_compaction() > 1024 {
            rec.step(Input::Checkpoint, &mut actions, |i, out| {
                proposer.step_into(i, out)
            });
            rec.flush();
            node.perform(&mut actions, Some(&mut wal), |_| {}).await?;
        }
    }
    node.counters.ignored += proposer.ignored();
    let extra = format!(
        " state={:?} ballot={} terms_led={terms_led}{}",
        proposer.state(),
        proposer.ballot(),
        rec.summary()
    );
    opts.banner(&node.counters, &extra);
    Ok(0)
}

/// The learner's state machine: every value executed is written out, once.
#[derive(Debug)]
struct Printer {
    out: Rc<RefCell<Vec<u8>>>,
    values: u64,
}

impl StateMachine for Printer {
    type Command = String;
    type Output = ();
    fn apply(&mut self, op: &String) {
        if op.is_empty() {
            return;
        }
        let mut out = self.out.borrow_mut();
        out.extend_from_slice(op.as_bytes());
        out.push(b'\n');
        self.values += op.split('\n').count() as u64;
    }
}

async fn run_learner(opts: Options) -> Result<i32, RunError> {
    let config = opts.core_config();
    let printed = Rc::new(RefCell::new(Vec::new()));
    // The replica's session table delivers a command that was decided twice
    // (a client retried it) only once.
    let printer = Printer {
        out: printed.clone(),
        values: 0,
    };
    let mut learner =
        LearnerReplica::new(&config, printer).map_err(|e| RunError::Core(e.to_string()))?;
    let mut rec = Rec::start(&opts, &config, &[], None)?;
    let mut node = opts.node(false)?;
    let mut actions = Vec::new();
    let mut stdout = io::stdout().lock();
    let mut status = 0;
    loop {
        match node.wake().await {
            Wake::Shutdown => break,
            Wake::Tick => rec.step(Input::Tick, &mut actions, |i, out| {
                learner.step_into(i, out)
            }),
            Wake::Messages => {
                node.drain_inbox(|i| rec.step(i, &mut actions, |i, out| learner.step_into(i, out)))
            }
        }
        rec.flush();
        // Replies go nowhere: the client learns for itself.
        node.perform(&mut actions, None, |_| {}).await?;
        let mut out = printed.borrow_mut();
        if !out.is_empty() {
            if let Err(e) = stdout.write_all(&out).and_then(|()| stdout.flush()) {
                eprintln!("abcast learner {}: cannot write output: {e}", opts.id);
                status = 1;
                break;
            }
            out.clear();
        }
    }
    node.counters.ignored += learner.ignored();
    let extra = format!(
        " delivered_slots={} delivered_values={} executed_commands={}{}",
        learner.next_slot(),
        learner.state().values,
        learner.executed(),
        rec.summary()
    );
    opts.banner(&node.counters, &extra);
    Ok(status)
}

/// What the stdin reader hands the client loop.
#[derive(Debug)]
enum Line {
    Value(String),
    End { blank: u64, refused: u64 },
}

/// Reads stdin on a thread of its own (reads block) and hands values over.
fn spawn_reader(tx: tokio::sync::mpsc::Sender<Line>) {
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let (mut blank, mut refused) = (0, 0);
        let mut buf = Vec::new();
        for number in 1.. {
            buf.clear();
            match stdin.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("abcast client: stdin: {e}");
                    break;
                }
            }
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            if buf.is_empty() {
                blank += 1;
                continue;
            }
            let value = match String::from_utf8(std::mem::take(&mut buf)) {
                Ok(v) if v.len() <= VALUE_BYTES_MAX => v,
                Ok(v) => {
                    eprintln!("abcast client: line {number}: {} bytes is more than the limit of {VALUE_BYTES_MAX}; not sent", v.len());
                    refused += 1;
                    continue;
                }
                Err(_) => {
                    eprintln!("abcast client: line {number}: not UTF-8 text; not sent");
                    refused += 1;
                    continue;
                }
            };
            if tx.blocking_send(Line::Value(value)).is_err() {
                return;
            }
        }
        let _ = tx.blocking_send(Line::End { blank, refused });
    });
}

fn session_id(id: u32) -> ClientId {
    // A fresh session per run, so a restarted client is never mistaken for
    // a retry of its previous incarnation.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let incarnation = nanos ^ std::process::id().rotate_left(16) | 1;
    (u64::from(id) << 32) | u64::from(incarnation)
}

async fn run_client(opts: Options) -> Result<i32, RunError> {
    let config = opts.core_config();
    let id = session_id(opts.id);
    let mut rec = Rec::start(&opts, &config, &[], Some(id))?;
    let mut client = Client::new(&config, id).map_err(|e| RunError::Core(e.to_string()))?;
    let mut node = opts.node(false)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    spawn_reader(tx);
    let budget = opts.batch_bytes.clamp(1, COMMAND_BYTES_MAX);
    let mut pending: std::collections::VecDeque<String> = Default::default();
    let mut pending_bytes = 0usize;
    let mut end: Option<(u64, u64)> = None;
    let (mut submitted_values, mut delivered_values, mut commands) = (0u64, 0u64, 0u64);
    let mut in_flight_values = 0u64;
    let mut actions = Vec::new();
    let mut shutdown = false;
    let mut gave_up = false;
    // When a value was last delivered (or the client started): how long
    // nobody has answered, for the warning and --deadline.
    let mut progress = std::time::Instant::now();
    let mut warned_at: Option<std::time::Instant> = None;
    loop {
        // Count what finished before submitting more, so that a reply is
        // credited to the command it answers.
        rec.flush();
        node.perform(&mut actions, None, |a| {
            if let Action::Reply { .. } = a {
                delivered_values += in_flight_values;
                in_flight_values = 0;
                progress = std::time::Instant::now();
            }
        })
        .await?;
        while end.is_none() && pending_bytes < budget {
            match rx.try_recv() {
                Ok(Line::Value(v)) => {
                    pending_bytes += v.len() + 1;
                    pending.push_back(v);
                }
                Ok(Line::End { blank, refused }) => end = Some((blank, refused)),
                Err(_) => break,
            }
        }
        if client.is_ready() && !pending.is_empty() {
            let mut op = pending.pop_front().expect("not empty");
            let mut n = 1;
            while let Some(next) = pending.front() {
                if op.len() + 1 + next.len() > budget {
                    break;
                }
                op.push('\n');
                op.push_str(next);
                pending.pop_front();
                n += 1;
            }
            pending_bytes -= op.len() + 1;
            let command = Command {
                client: client.id(),
                seq: 0, // the client's session numbers it
                op,
            };
            rec.step(Input::Propose(command), &mut actions, |i, out| {
                client.step_into(i, out)
            });
            commands += 1;
            submitted_values += n;
            in_flight_values = n;
        }
        rec.flush();
        node.perform(&mut actions, None, |_| {}).await?;
        let waiting = client.is_busy() || !pending.is_empty();
        if !waiting {
            progress = std::time::Instant::now();
            warned_at = None;
        }
        let silent = progress.elapsed();
        if waiting
            && silent >= NO_ANSWER_WARNING
            && warned_at.is_none_or(|w| w.elapsed() >= NO_ANSWER_WARNING)
        {
            warned_at = Some(std::time::Instant::now());
            tracing::warn!(
                "nothing delivered for {} s with {} values waiting: no proposer seems to be running on {} \
                 (or no quorum of acceptors); still retrying{}",
                silent.as_secs(),
                submitted_values - delivered_values + pending.len() as u64,
                opts.groups.proposers,
                match opts.deadline {
                    Some(d) => format!(" until --deadline {} s", d.as_secs()),
                    None => "; --deadline SECS gives up after SECS without progress".into(),
                }
            );
        }
        if opts.deadline.is_some_and(|d| waiting && silent >= d) {
            eprintln!(
                "abcast client {}: giving up: nothing delivered for {} s (--deadline); {} values were not confirmed",
                opts.id,
                silent.as_secs(),
                submitted_values - delivered_values + pending.len() as u64
            );
            gave_up = true;
            break;
        }
        if shutdown || (end.is_some() && pending.is_empty() && !client.is_busy()) {
            break;
        }
        let want_line = end.is_none() && pending_bytes < budget;
        tokio::select! {
            wake = node.wake() => match wake {
                Wake::Shutdown => shutdown = true,
                Wake::Tick => rec.step(Input::Tick, &mut actions, |i, out| client.step_into(i, out)),
                Wake::Messages => node.drain_inbox(|i| {
                    rec.step(i, &mut actions, |i, out| client.step_into(i, out))
                }),
            },
            line = rx.recv(), if want_line => match line {
                Some(Line::Value(v)) => {
                    pending_bytes += v.len() + 1;
                    pending.push_back(v);
                }
                Some(Line::End { blank, refused }) => end = Some((blank, refused)),
                None => end = Some((0, 0)),
            },
        }
    }
    let (blank, refused) = end.unwrap_or_default();
    let extra = format!(
        " submitted_values={submitted_values} delivered_values={delivered_values} commands={commands} \
         retries={} blank_lines={blank} refused_lines={refused}{}",
        client.retries(),
        rec.summary()
    );
    opts.banner(&node.counters, &extra);
    Ok(if refused > 0 || shutdown || gave_up {
        1
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{encode, encode_as, Framing, Msg, DATAGRAM_BYTES_MAX};
    use paxos_core::{Ballot, Command, Message, Value};

    fn options(role: Role) -> Options {
        let groups = Groups::parse(
            "proposers 239.0.0.1 6000\nacceptors 239.0.0.1 7000\nlearners 239.0.0.1 8000\n",
            "test",
        )
        .unwrap();
        Options {
            groups,
            role,
            id: 1,
            acceptors: 3,
            data_dir: PathBuf::from("unused"),
            drop_rate: 0.0,
            batch_bytes: DEFAULT_BATCH_BYTES,
            deadline: None,
            record: None,
            key: None,
        }
    }

    #[test]
    fn worst_case_promise_fits_in_a_datagram() {
        let config = options(Role::Acceptor).core_config();
        let mut acceptor = Acceptor::<String>::new(&config).unwrap();
        // The largest round the core accepts.
        let ballot = Ballot::new(paxos_core::LIMIT - 1, NodeId(u32::MAX));
        let mut out: Vec<Action<String>> = Vec::new();
        // Offer far more slots than the acceptor will hold, each with the
        // largest command a client can make.
        for slot in 0..10 * PROMISE_SLOTS_MAX as u64 {
            let value = Value::One(Command {
                client: u64::MAX,
                seq: u64::MAX,
                op: "x".repeat(COMMAND_BYTES_MAX),
            });
            acceptor.step_into(
                Input::Receive {
                    from: paxos_core::Process::only(Role::Proposer, NodeId(u32::MAX)),
                    msg: Message::Accept {
                        ballot,
                        slot,
                        value,
                        commit: 0,
                    },
                },
                &mut out,
            );
        }
        out.clear();
        acceptor.step_into(
            Input::Receive {
                from: paxos_core::Process::only(Role::Proposer, NodeId(u32::MAX)),
                msg: Message::Prepare {
                    ballot,
                    from_slot: 0,
                },
            },
            &mut out,
        );
        let promise: Vec<&Msg> = out
            .iter()
            .filter_map(|a| match a {
                Action::Send {
                    msg: m @ Message::Promise { accepted, .. },
                    ..
                } => {
                    assert_eq!(accepted.len(), PROMISE_SLOTS_MAX, "the bound is reached");
                    Some(m)
                }
                _ => None,
            })
            .collect();
        assert_eq!(promise.len(), 1);
        let from = Sender {
            role: Role::Acceptor,
            id: NodeId(u32::MAX),
        };
        let mut buf = Vec::new();
        let to = paxos_core::Destination::to(Role::Proposer, NodeId(u32::MAX));
        encode(from, to, promise[0], &mut buf).expect("the largest promise fits");
        assert!(buf.len() <= DATAGRAM_BYTES_MAX);
        encode_as(Framing::Authenticated, from, to, promise[0], &mut buf)
            .expect("the largest promise fits with a MAC too");
        assert!(buf.len() <= DATAGRAM_BYTES_MAX);
    }
}
