//! `paxos-sim explore`: a breadth-first search over every state a small
//! cluster of the real `paxos-core` roles can reach, checking agreement and
//! validity in each.
//!
//! # The model
//! * **Processes**: `--proposers` [`Proposer`]s, `--acceptors` [`Acceptor`]s
//!   and `--learners` [`Learner`]s, each a process of its own
//!   ([`Config::learners_apart`]: acceptors send their votes to the
//!   learners too). They are the core's machines, driven with `step_into`
//!   exactly as a driver drives them; [`Destination::reaches`] routes.
//! * **Network**: the set of every message ever sent. A message stays in it
//!   for good, and any of them may be delivered at any step, any number of
//!   times: loss is a message never delivered, duplication a second
//!   delivery, reordering any order. A state with more messages can do
//!   everything one with fewer can, so consuming messages would add states
//!   but no behaviour.
//! * **Environment moves**: deliver a message; tick a proposer or a learner
//!   (a burst of ticks, see [`Explorer::burst`]); submit a command (each of
//!   `--commands` once, at any time, to its own proposer or, with
//!   `--submit any`, to any one); crash and restart a process (at most
//!   `--crashes` in all),
//!   including in the middle of a step after some of its sends but before a
//!   record written later in the same step (the persist-before-send
//!   barrier: a record is durable before any action after it). A restarted
//!   acceptor or proposer is rebuilt by its `recover` from the records it
//!   persisted; a learner starts empty.
//! * **Bounds**: a move after which a proposer would campaign in a round
//!   above `--rounds`, a leader would propose into a slot at or above
//!   `--slots`, or a learner would send more than `--queries` catch-up
//!   queries is not taken; nor is a tick move past `--ticks` in all. With
//!   them every counter in the machines is bounded, and so is the state
//!   space, but for one: see *Abstractions*.
//!
//! # Reductions and abstractions
//! None of these loses a reachable machine state, ghost value or violation;
//! each is argued where it is made.
//! * **Heartbeat numbers** ([`Keyed`]): every `Heartbeat` and
//!   `HeartbeatAck` is sent with `beat` 0, and a proposer's heartbeat
//!   counter is left out of its fingerprint. In the core the acceptor only
//!   echoes the beat and no role reads it, so proposers that differ only in
//!   it behave alike; kept, it would make the state space infinite.
//! * **Answers are sent at once** ([`Explorer::close`]): a delivery that
//!   leaves its receiver as it is and only makes it answer (an acceptor
//!   acking a heartbeat, refusing a stale ballot, promising again) is
//!   applied in every state, to a fixpoint.
//! * **Tick bursts** ([`Explorer::burst`]): ticks that only move a
//!   process's timers are taken together with the next tick that does
//!   something.
//! * **Subsumption** ([`Seen`]): a state is not explored when one with the
//!   same machines and ghost variables and a superset of its messages was.
//!
//! # What is checked, in every state
//! * **Agreement**: "chosen" is computed from the acceptors' votes (every
//!   vote an acceptor ever held, read with [`Acceptor::accepted`]): a value
//!   is chosen in a slot once a majority voted for it in one ballot. No slot
//!   may have two different chosen values; every value a learner delivers
//!   must be the chosen one (so no learner delivers two values for a slot,
//!   even across its restarts); a leader may announce a slot decided only
//!   once a value is chosen there.
//! * **Validity**: every chosen value is a no-op filler or holds only
//!   commands that were submitted.
//!
//! # Fingerprints
//! A state is stored as a vector of ids: each machine, message and durable
//! log is interned under a 128-bit hash (two independently keyed SipHash
//! 1-3) of its `Debug` text, which shows every field of the core's types
//! (the proposer's random generator shows its position in its 64-word
//! block, which identifies it: [`Bounds::validate`] keeps the draws below
//! 64). A state is then remembered by a 128-bit hash of its ids but the
//! network's, with the network as a bit set of message ids. Two
//! different states or machines share a fingerprint with probability about
//! `n² / 2¹²⁹` for `n` of them: below 10⁻²⁴ for ten million.

mod show;

use clap::{Args, ValueEnum};
use paxos_core::{
    Acceptor, Action, Command, Config, Event, Input, Learner, Message, NodeId, PValue, Process,
    Proposer, Record, Role, Slot, Value,
};
use show::{show_msg, show_record, show_value};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

/// The operation type of the explored commands: command `k` is op `k`.
pub type Op = u8;
type Act = Action<Op>;

/// The size of the explored world. The defaults are the stated bound.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    /// Acceptors; a quorum is a strict majority.
    #[arg(long, default_value_t = 3)]
    pub acceptors: usize,
    /// Proposers (ids 1..=N; ballots are (round, id)).
    #[arg(long, default_value_t = 2)]
    pub proposers: usize,
    /// Learners apart, fed the acceptors' votes and the leaders' heartbeats.
    #[arg(long, default_value_t = 0)]
    pub learners: usize,
    /// Log slots: a move after which a leader would propose into slot
    /// `slots` or beyond is not taken.
    #[arg(long, default_value_t = 2)]
    pub slots: u64,
    /// Highest ballot round: a move after which a proposer would campaign
    /// in a higher round is not taken (1 round and 2 proposers: ballots 1.1
    /// and 1.2, each campaigned once).
    #[arg(long, default_value_t = 1)]
    pub rounds: u64,
    /// Client commands c1..cN; each is submitted once, at any time, to the
    /// proposer(s) `--submit` says.
    #[arg(long, default_value_t = 2)]
    pub commands: usize,
    /// Who gets command k: `own`, proposer k mod N only (a client per
    /// proposer: they still compete for the same slots with different
    /// values); `any`, any one proposer.
    #[arg(long, value_enum, default_value_t = Submit::Own)]
    pub submit: Submit,
    /// Catch-up queries each learner may send.
    #[arg(long, default_value_t = 1)]
    pub queries: u32,
    /// Crash-restarts in all (of any process, at any point).
    #[arg(long, default_value_t = 0)]
    pub crashes: u32,
    /// Tick moves in all, of all processes (each a burst of one process's
    /// ticks up to its next event: a campaign, a heartbeat, a leader's
    /// quorum check, a step-down).
    #[arg(long, default_value_t = 4)]
    pub ticks: u32,
    /// `Config::seed` of every process (it draws the election timeouts).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Give up (exit 2) after this many states.
    #[arg(long, default_value_t = 50_000_000)]
    pub max_states: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            acceptors: 3,
            proposers: 2,
            learners: 0,
            slots: 2,
            rounds: 1,
            commands: 2,
            submit: Submit::Own,
            queries: 1,
            crashes: 0,
            ticks: 4,
            seed: 0,
            max_states: 50_000_000,
        }
    }
}

impl Bounds {
    /// Rejects bounds the state encoding cannot hold.
    pub fn validate(&self) -> Result<(), String> {
        let limits = [
            ("acceptors", self.acceptors as u64, 1, 63),
            ("proposers", self.proposers as u64, 1, 63),
            ("learners", self.learners as u64, 0, 63),
            ("slots", self.slots, 1, 63),
            // A proposer draws from its generator once when built and at
            // most three times per campaign (a timeout when it loses or
            // steps down); the fingerprint sees its position only within a
            // 64-word block.
            ("rounds", self.rounds, 1, 20),
            ("commands", self.commands as u64, 0, 30),
        ];
        for (name, value, lo, hi) in limits {
            if !(lo..=hi).contains(&value) {
                return Err(format!("--{name} must be in {lo}..={hi}, not {value}"));
            }
        }
        Ok(())
    }

    /// The `Config` every process runs with (its own id in `id`).
    pub fn config(&self, id: u32) -> Config {
        let members = (1..=self.acceptors as u32).map(NodeId).collect();
        let mut c = Config::new(NodeId(id), members).with_seed(self.seed);
        c.heartbeat_ticks = 1;
        c.election_timeout_ticks = 2;
        c.retransmit_ticks = 1;
        c.catchup_ticks = 1;
        c.pipeline_window = 1;
        c.batch_max = 1;
        c.pending_max = self.commands.max(1);
        c.learners_apart = true;
        c
    }

    /// The bounds and settings, as the output states them.
    pub fn describe(&self) -> String {
        format!(
            "bounds: {} acceptors, {} proposers, {} learner(s); {} slot(s); ballot rounds <= {}; \
             {} command(s), each submitted once to {}; <= {} tick move(s); \
             <= {} catch-up quer(y/ies) per learner; <= {} crash-restart(s)\n\
             network: every sent message stays deliverable, any number of times, in any order \
             (loss, duplication, reordering)\n\
             config: election timeout 2-3 ticks, heartbeat 1, retransmit 1, catch-up 1, \
             pipeline window 1, batch 1, seed {}",
            self.acceptors,
            self.proposers,
            self.learners,
            self.slots,
            self.rounds,
            self.commands,
            match self.submit {
                Submit::Own => "its own proposer (k mod N)",
                Submit::Any => "any proposer",
            },
            self.ticks,
            self.queries,
            self.crashes,
            self.seed
        )
    }
}

/// Which proposers a command may be submitted to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Submit {
    /// Command k to proposer k mod N only.
    #[default]
    Own,
    /// Each command to any one proposer.
    Any,
}

/// A bug planted in the harness (never in the core) to show the checker
/// catches it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Sabotage {
    /// The machines as they are.
    #[default]
    None,
    /// Acceptor 1 forgets every promise its votes do not imply, after each
    /// step (it is rebuilt from its votes alone).
    ForgetPromise,
    /// Learner 1 counts one acceptor's vote as a majority's.
    LonelyVote,
    /// Proposers read promises without the values they report (phase 1
    /// adopts nothing).
    BlindPhase1,
    /// Acceptor 1 sends before it persists (its writes move to the end of
    /// each step): only a crash between the two can show it.
    SendBeforePersist,
}

/// A state that breaks an invariant, and the moves that reach it.
#[derive(Clone, Debug)]
pub struct Counterexample {
    /// `agreement` or `validity`.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
    /// Each move from the initial state, with what it did.
    pub steps: Vec<String>,
}

/// What a search found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Distinct states visited, the initial one included.
    pub states: u64,
    /// Moves taken (each successor computed, new or not).
    pub transitions: u64,
    /// Moves not taken because they would pass a bound.
    pub pruned: u64,
    /// Levels of the breadth-first search (moves from the initial state).
    pub depth: u64,
    /// Wall time of the search.
    pub elapsed: Duration,
    /// False if `--max-states` stopped it.
    pub complete: bool,
    /// The first violation found (breadth first, so its path is short; with subsumption not always the shortest).
    pub violation: Option<Counterexample>,
    /// States in which every slot is chosen.
    pub all_chosen: u64,
    /// States in which every learner delivered every slot.
    pub all_delivered: u64,
    /// States in which a no-op filler is chosen in some slot.
    pub noop_chosen: u64,
    /// Distinct machine states, messages and local steps met.
    pub machines: usize,
    /// Distinct messages.
    pub messages: usize,
    /// Distinct (machine, input) steps computed.
    pub local_steps: usize,
    /// Most messages in one state's network.
    pub largest_network: usize,
    /// States reached but not explored, because a state with the same
    /// machines and ghost variables and a superset of their network was
    /// (see [`Seen`]). Exact repeats are not counted.
    pub subsumed: u64,
}

impl Report {
    /// States per second of wall time.
    pub fn states_per_second(&self) -> f64 {
        self.states as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "states {} transitions {} pruned {} subsumed {} depth {} time {:.1} s states/s {:.0} violations {}{}",
            self.states,
            self.transitions,
            self.pruned,
            self.subsumed,
            self.depth,
            self.elapsed.as_secs_f64(),
            self.states_per_second(),
            u8::from(self.violation.is_some()),
            if self.complete { "" } else { " (INCOMPLETE: --max-states reached)" }
        )?;
        write!(
            f,
            "coverage: states with every slot chosen {}, delivered by every learner {}, with a no-op chosen {}; \
             machine states {}, messages {}, local steps {}, largest network {}",
            self.all_chosen,
            self.all_delivered,
            self.noop_chosen,
            self.machines,
            self.messages,
            self.local_steps,
            self.largest_network
        )
    }
}

// ---------------------------------------------------------------------------
// Fingerprints

/// Two independently keyed SipHash 1-3: a 128-bit hash.
struct Pair(DefaultHasher, DefaultHasher);

impl Hasher for Pair {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
        self.1.write(bytes);
    }
    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

impl fmt::Write for Pair {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}

struct Fingerprinter([RandomState; 2]);

impl Fingerprinter {
    fn pair(&self) -> Pair {
        Pair(self.0[0].build_hasher(), self.0[1].build_hasher())
    }
    fn finish(p: &Pair) -> u128 {
        (u128::from(p.0.finish()) << 64) | u128::from(p.1.finish())
    }
    fn of_debug(&self, x: &(impl fmt::Debug + ?Sized)) -> u128 {
        let mut p = self.pair();
        write!(p, "{x:?}").expect("hashing never fails");
        Self::finish(&p)
    }
    fn of_hash(&self, x: &impl Hash) -> u128 {
        let mut p = self.pair();
        x.hash(&mut p);
        Self::finish(&p)
    }
}

/// A hasher for keys that are already hashes (fingerprints) or small ints.
#[derive(Default)]
struct Mixed(u64);

impl Hasher for Mixed {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        // splitmix64's finaliser.
        let mut z = (self.0 ^ n).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        self.0 = z ^ (z >> 31);
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64; // a fingerprint: already uniform
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type Fast = BuildHasherDefault<Mixed>;

/// Values met once, each named by a small id, found again by fingerprint.
struct Interner<T> {
    ids: HashMap<u128, u32, Fast>,
    items: Vec<T>,
}

/// What an interned value is told apart by: its `Debug` text, less what
/// the model abstracts away.
trait Keyed: fmt::Debug {
    fn key(&self, fp: &Fingerprinter) -> u128 {
        fp.of_debug(self)
    }
}

impl Keyed for Envelope {}
impl Keyed for Vec<Record<Op>> {}

impl Keyed for Machine {
    /// A proposer's heartbeat counter is left out: no decision of any role
    /// reads it (see the module doc), so proposers that differ only in it
    /// behave alike, and keeping it would make the state space infinite.
    fn key(&self, fp: &Fingerprinter) -> u128 {
        let Machine::Proposer(_) = self else {
            return fp.of_debug(self);
        };
        let text = format!("{self:?}");
        let mut p = fp.pair();
        match text.find(BEAT_FIELD) {
            Some(at) => {
                let rest = &text[at + BEAT_FIELD.len()..];
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                p.write(&text.as_bytes()[..at]);
                p.write(&rest.as_bytes()[digits..]);
            }
            None => p.write(text.as_bytes()),
        }
        Fingerprinter::finish(&p)
    }
}

/// How a timer field ends in a machine's `Debug` text: `timer_ticks: 3`.
const TIMER_FIELD: &str = "_ticks: ";

/// The proposer's heartbeat counter, as its `Debug` text shows it.
const BEAT_FIELD: &str = ", beat: ";

impl<T: Keyed> Interner<T> {
    fn new() -> Self {
        Interner {
            ids: HashMap::default(),
            items: Vec::new(),
        }
    }
    fn intern(&mut self, fp: &Fingerprinter, item: T) -> u32 {
        let items = &mut self.items;
        *self.ids.entry(item.key(fp)).or_insert_with(|| {
            items.push(item);
            (items.len() - 1) as u32
        })
    }
}

// ---------------------------------------------------------------------------
// Machines and local steps

#[derive(Clone, Debug)]
enum Machine {
    Proposer(Box<Proposer<Op>>),
    Acceptor(Acceptor<Op>),
    Learner(Box<Learner<Op>>),
}

impl Machine {
    fn step_into(&mut self, input: Input<Op>, out: &mut Vec<Act>) {
        match self {
            Machine::Proposer(m) => m.step_into(input, out),
            Machine::Acceptor(m) => m.step_into(input, out),
            Machine::Learner(m) => m.step_into(input, out),
        }
    }
}

/// A message on its way: sender and receiver are process indices.
#[derive(Clone, Debug)]
struct Envelope {
    from: u8,
    to: u8,
    msg: Message<Op>,
}

/// What one machine did in one step. Each effect carries how many of the
/// step's records were written before it (a crash at a cut keeps those).
#[derive(Debug, Default)]
struct Outcome {
    machine: u32,
    records: Vec<Record<Op>>,
    sends: Vec<(u8, u32)>,
    delivers: Vec<(u8, Slot, u8)>,
    decided: Vec<(u8, Slot)>,
    /// The acceptor's votes after the step, packed (see [`pack_vote`]).
    votes: Vec<u32>,
    round: u64,
    /// One past the highest slot proposed into.
    top_slot: Slot,
    queries: u32,
    /// The step only answers: the machine is left as it was, and nothing
    /// is written, delivered or announced (see [`Explorer::close`]).
    answers_only: bool,
}

impl Outcome {
    /// The cuts at which a crash loses a record written after a send.
    fn cuts(&self) -> std::ops::Range<u8> {
        let first_send = self.sends.iter().map(|s| s.0).min().unwrap_or(u8::MAX);
        first_send.min(self.records.len() as u8)..self.records.len() as u8
    }
}

/// A vote as one sortable word: slot, round, proposer, value, acceptor.
fn pack_vote(slot: Slot, round: u64, node: u32, value: u8, acceptor: usize) -> u32 {
    ((slot as u32) << 26)
        | ((round as u32) << 20)
        | (node << 14)
        | (u32::from(value) << 7)
        | acceptor as u32
}

const VOTE_KEY: u32 = 7; // shifting this many bits off leaves (slot, ballot, value)

// ---------------------------------------------------------------------------
// States

/// One move of the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Deliver message (envelope id).
    Deliver(u32),
    /// Tick process.
    Tick(u8),
    /// Submit command (index) to proposer (process).
    Submit(u8, u8),
    /// Crash and restart process.
    Crash(u8),
}

/// A step, possibly cut short by a crash after `cut` of its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Move {
    step: Step,
    cut: Option<u8>,
}

/// A state as one vector of words: see [`Layout`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State(Vec<u32>);

/// Where each part of a state lives in its words: machine ids, durable
/// log ids, chosen value (+1) per slot, delivered value (+1) per learner
/// and slot, queries per learner, submitted bitmask, crashes, network
/// length; then the network (sorted envelope ids) and every vote ever held
/// (sorted packed votes).
#[derive(Clone, Copy, Debug)]
struct Layout {
    slots: usize,
    logs: usize,
    chosen: usize,
    delivered: usize,
    queries: usize,
    submitted: usize,
    crashes: usize,
    ticks: usize,
    net_len: usize,
    net: usize,
}

impl Layout {
    fn new(n: usize, slots: usize, learners: usize) -> Self {
        let logs = n;
        let chosen = logs + n;
        let delivered = chosen + slots;
        let queries = delivered + learners * slots;
        let submitted = queries + learners;
        Layout {
            slots,
            logs,
            chosen,
            delivered,
            queries,
            submitted,
            crashes: submitted + 1,
            ticks: submitted + 2,
            net_len: submitted + 3,
            net: submitted + 4,
        }
    }
}

impl State {
    fn net<'a>(&'a self, l: &Layout) -> &'a [u32] {
        &self.0[l.net..l.net + self.0[l.net_len] as usize]
    }
    fn votes<'a>(&'a self, l: &Layout) -> &'a [u32] {
        &self.0[l.net + self.0[l.net_len] as usize..]
    }
}

/// Merges sorted, deduplicated `new` into sorted `old`, appending to `out`.
fn merge(old: &[u32], new: &[u32], out: &mut Vec<u32>) {
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        let take_old = j == new.len() || (i < old.len() && old[i] <= new[j]);
        let x = if take_old { old[i] } else { new[j] };
        if take_old {
            i += 1;
            if j < new.len() && new[j] == x {
                j += 1;
            }
        } else {
            j += 1;
        }
        out.push(x);
    }
}

struct Violation(&'static str, String);

/// The states explored, by header: for each combination of machines and
/// ghost variables (every word of a state but its network), the networks
/// explored with it, as bit sets of envelope ids, none a subset of another.
///
/// A state whose network is a subset of one explored with the same header
/// is not explored: messages are never consumed, so every move it can take
/// the other can take too, to a state with the same header and again a
/// superset network; and the invariants read only the header. So no
/// machine state, ghost variable or violation reachable is lost.
#[derive(Default)]
struct Seen {
    by_header: HashMap<u128, Vec<Box<[u64]>>, Fast>,
}

/// What [`Seen::insert`] found.
enum Fresh {
    New,
    Repeat,
    Subsumed,
}

/// True if bit set `a` holds every bit of `b`.
fn covers(a: &[u64], b: &[u64]) -> bool {
    b.iter()
        .enumerate()
        .all(|(i, w)| w & !a.get(i).copied().unwrap_or(0) == 0)
}

impl Seen {
    fn insert(&mut self, x: &Explorer, s: &State) -> Fresh {
        let l = &x.lay;
        let header = x.fp.of_hash(&(&s.0[..l.net_len], s.votes(l)));
        let net = s.net(l);
        let mut bits = vec![0u64; net.last().map_or(0, |&e| e as usize / 64 + 1)];
        for &e in net {
            bits[e as usize / 64] |= 1 << (e % 64);
        }
        let list = self.by_header.entry(header).or_default();
        if let Some(b) = list.iter().find(|b| covers(b, &bits)) {
            return if covers(&bits, b) {
                Fresh::Repeat
            } else {
                Fresh::Subsumed
            };
        }
        list.retain(|b| !covers(&bits, b));
        list.push(bits.into_boxed_slice());
        Fresh::New
    }
}

// ---------------------------------------------------------------------------
// The explorer

struct Explorer {
    b: Bounds,
    sabotage: Sabotage,
    lay: Layout,
    procs: Vec<Process>,
    fp: Fingerprinter,
    machines: Interner<Machine>,
    envs: Interner<Envelope>,
    logs: Interner<Vec<Record<Op>>>,
    values: Vec<Value<Op>>,
    outcomes: Vec<Outcome>,
    memo: HashMap<u64, u32, Fast>,
    untimed: HashMap<u32, u128, Fast>,
    scratch: Vec<u32>,
}

impl Explorer {
    fn new(b: &Bounds, sabotage: Sabotage) -> Self {
        let mut procs = Vec::new();
        for (role, count) in [
            (Role::Proposer, b.proposers),
            (Role::Acceptor, b.acceptors),
            (Role::Learner, b.learners),
        ] {
            procs.extend((1..=count as u32).map(|id| Process::only(role, NodeId(id))));
        }
        let mut x = Explorer {
            lay: Layout::new(procs.len(), b.slots as usize, b.learners),
            b: b.clone(),
            sabotage,
            procs,
            fp: Fingerprinter([RandomState::new(), RandomState::new()]),
            machines: Interner::new(),
            envs: Interner::new(),
            logs: Interner::new(),
            values: vec![Value::Noop],
            outcomes: Vec::new(),
            memo: HashMap::default(),
            untimed: HashMap::default(),
            scratch: Vec::new(),
        };
        x.logs.intern(&x.fp, Vec::new()); // id 0: the empty log
        x
    }

    fn first(&self, role: Role) -> usize {
        self.procs
            .iter()
            .position(|p| p.roles.contains(role))
            .unwrap_or(usize::MAX)
    }

    fn command(&self, k: usize) -> Command<Op> {
        Command {
            client: k as u64 + 1,
            seq: 1,
            op: k as Op + 1,
        }
    }

    fn value_id(&mut self, v: &Value<Op>) -> u8 {
        let id = match self.values.iter().position(|w| w == v) {
            Some(i) => i,
            None => {
                self.values.push(v.clone());
                self.values.len() - 1
            }
        };
        assert!(id < 128, "more than 128 distinct values");
        id as u8
    }

    /// Process `p` rebuilt from `log`, as its driver rebuilds it after a crash.
    fn restart(&mut self, p: usize, log: &[Record<Op>]) -> Machine {
        let config = self.b.config(self.procs[p].id.0);
        let records = log.iter().cloned();
        if self.procs[p].hosts(Role::Proposer) {
            Machine::Proposer(Box::new(
                Proposer::recover(&config, records).expect("valid config"),
            ))
        } else if self.procs[p].hosts(Role::Acceptor) {
            Machine::Acceptor(Acceptor::recover(&config, records).expect("its own records"))
        } else {
            Machine::Learner(Box::new(Learner::new(&config).expect("valid config")))
        }
    }

    fn initial(&mut self) -> State {
        let mut words = vec![0; self.lay.net];
        for (p, word) in words.iter_mut().take(self.procs.len()).enumerate() {
            let m = self.restart(p, &[]);
            *word = self.machines.intern(&self.fp, m);
        }
        State(words)
    }

    /// Steps machine `p` (and plants the sabotage, if it concerns `p`).
    fn run(&mut self, p: usize, m: &mut Machine, input: Input<Op>, out: &mut Vec<Act>) {
        let first_acceptor = p == self.first(Role::Acceptor);
        match (self.sabotage, &mut *m, input) {
            (
                Sabotage::LonelyVote,
                Machine::Learner(l),
                Input::Receive {
                    from,
                    msg: msg @ Message::Accepted { .. },
                },
            ) if p == self.first(Role::Learner) && from.hosts(Role::Acceptor) => {
                for id in 1..=self.b.acceptors as u32 {
                    let from = Process::only(Role::Acceptor, NodeId(id));
                    let msg = msg.clone();
                    l.step_into(Input::Receive { from, msg }, out);
                }
            }
            (
                Sabotage::BlindPhase1,
                Machine::Proposer(pr),
                Input::Receive {
                    from,
                    msg:
                        Message::Promise {
                            ballot,
                            trimmed_below,
                            ..
                        },
                },
            ) => {
                let msg = Message::Promise {
                    ballot,
                    trimmed_below,
                    accepted: Vec::new(),
                };
                pr.step_into(Input::Receive { from, msg }, out);
            }
            (_, m, input) => m.step_into(input, out),
        }
        match (self.sabotage, m) {
            (Sabotage::ForgetPromise, Machine::Acceptor(a)) if first_acceptor => {
                let votes: Vec<Record<Op>> = (0..self.b.slots)
                    .filter_map(|slot| {
                        let (ballot, value) = a.accepted(slot)?;
                        let value = value.clone();
                        Some(Record::Accepted(PValue {
                            slot,
                            ballot,
                            value,
                        }))
                    })
                    .collect();
                let config = self.b.config(self.procs[p].id.0);
                *a = Acceptor::recover(&config, votes).expect("its own votes");
            }
            (Sabotage::SendBeforePersist, Machine::Acceptor(_)) if first_acceptor => {
                let (persists, rest): (Vec<Act>, Vec<Act>) =
                    out.drain(..).partition(|a| matches!(a, Action::Persist(_)));
                out.extend(rest);
                out.extend(persists);
            }
            _ => {}
        }
    }

    /// The outcome (memoised) of giving machine `machine`, process `p`,
    /// the input `code` names: 0 a tick, 1 + k command k, and
    /// 1 + commands + e envelope e.
    fn local(&mut self, p: usize, machine: u32, code: u32) -> u32 {
        let key = (u64::from(machine) << 32) | u64::from(code);
        if let Some(&o) = self.memo.get(&key) {
            return o;
        }
        let mut m = self.machines.items[machine as usize].clone();
        let commands = self.b.commands as u32;
        let input = match code {
            0 => Input::Tick,
            c if c <= commands => Input::Propose(self.command(c as usize - 1)),
            c => {
                let e = &self.envs.items[(c - 1 - commands) as usize];
                let from = self.procs[e.from as usize];
                Input::Receive {
                    from,
                    msg: e.msg.clone(),
                }
            }
        };
        let mut out = Vec::new();
        self.run(p, &mut m, input, &mut out);
        let mut o = Outcome::default();
        for action in out {
            let before = o.records.len() as u8;
            match action {
                Action::Persist(r) => {
                    if let Record::Campaign(b) = &r {
                        o.round = o.round.max(b.round);
                    }
                    o.records.push(r);
                }
                Action::Send { to, mut msg } => {
                    // Heartbeats all carry beat 0: no role reads the beat
                    // but to echo it (see the module doc).
                    if let Message::Heartbeat { beat, .. } | Message::HeartbeatAck { beat, .. } =
                        &mut msg
                    {
                        *beat = 0;
                    }
                    match &msg {
                        Message::Accept { slot, .. } => o.top_slot = o.top_slot.max(slot + 1),
                        Message::CatchUp { .. } => o.queries += 1,
                        _ => {}
                    }
                    for q in 0..self.procs.len() {
                        if q != p && to.reaches(&self.procs[q]) {
                            let (from, to, msg) = (p as u8, q as u8, msg.clone());
                            let e = self.envs.intern(&self.fp, Envelope { from, to, msg });
                            o.sends.push((before, e));
                        }
                    }
                }
                Action::Deliver { slot, value } => {
                    let v = self.value_id(&value);
                    o.delivers.push((before, slot, v));
                }
                Action::Event(Event::Decided { slot }) => o.decided.push((before, slot)),
                _ => {}
            }
        }
        o.votes = self.votes_of(p, &m);
        o.machine = self.machines.intern(&self.fp, m);
        o.answers_only = code > commands
            && o.machine == machine
            && o.records.is_empty()
            && o.delivers.is_empty()
            && o.decided.is_empty()
            && o.queries == 0
            && o.top_slot <= self.b.slots;
        self.outcomes.push(o);
        let id = (self.outcomes.len() - 1) as u32;
        self.memo.insert(key, id);
        id
    }

    fn votes_of(&mut self, p: usize, m: &Machine) -> Vec<u32> {
        let Machine::Acceptor(a) = m else {
            return Vec::new();
        };
        let index = p - self.first(Role::Acceptor);
        (0..self.b.slots)
            .filter_map(|slot| {
                let (b, v) = a.accepted(slot)?;
                let v = self.value_id(&v.clone());
                Some(pack_vote(slot, b.round, b.node.0, v, index))
            })
            .collect()
    }

    /// The moves available in `s`, crashes cut into steps excepted.
    fn moves(&self, s: &State, out: &mut Vec<Move>) {
        out.clear();
        let step = |step| Move { step, cut: None };
        out.extend(s.net(&self.lay).iter().map(|&e| step(Step::Deliver(e))));
        if s.0[self.lay.ticks] < self.b.ticks {
            for (p, proc) in self.procs.iter().enumerate() {
                if !proc.hosts(Role::Acceptor) {
                    out.push(step(Step::Tick(p as u8)));
                }
            }
        }
        let submitted = s.0[self.lay.submitted];
        for k in (0..self.b.commands).filter(|k| submitted & (1 << k) == 0) {
            for p in 0..self.b.proposers {
                if self.b.submit == Submit::Any || p == k % self.b.proposers {
                    out.push(step(Step::Submit(p as u8, k as u8)));
                }
            }
        }
        if s.0[self.lay.crashes] < self.b.crashes {
            out.extend((0..self.procs.len()).map(|p| step(Step::Crash(p as u8))));
        }
    }

    /// The outcome a move uses, and the process it steps.
    fn outcome_of(&mut self, s: &State, step: Step) -> Option<(usize, u32)> {
        let commands = self.b.commands as u32;
        let (p, code) = match step {
            Step::Deliver(e) => (self.envs.items[e as usize].to as usize, 1 + commands + e),
            Step::Tick(p) => return Some((p as usize, self.burst(s, p as usize).0)),
            Step::Submit(p, k) => (p as usize, 1 + u32::from(k)),
            Step::Crash(_) => return None,
        };
        Some((p, self.local(p, s.0[p], code)))
    }

    /// A burst of ticks: process `p` ticks while its ticks are silent (they
    /// move only its timers, its fields named `*_ticks`, and send nothing
    /// the network does not already hold), and the burst's outcome is that
    /// of its last tick, the first one that is not silent (or that changes
    /// nothing). Returns it and the number of ticks.
    ///
    /// The states skipped differ from the first only in the timers of `p`,
    /// which the roles apart read only when they tick (a proposer's
    /// `leader_contact_ticks` is read otherwise only for a server's
    /// acceptor): every message is handled
    /// alike in each of them, and the burst reaches whatever their ticks
    /// would. A tick that changes anything else (a leader that checks its
    /// quorum and clears what it heard, steps down, campaigns) ends the
    /// burst, so the state after it is visited.
    fn burst(&mut self, s: &State, p: usize) -> (u32, u32) {
        let mut machine = s.0[p];
        let mut ticks = 1;
        loop {
            let oi = self.local(p, machine, 0);
            let o = &self.outcomes[oi as usize];
            let net = s.net(&self.lay);
            let silent = o.records.is_empty()
                && o.delivers.is_empty()
                && o.decided.is_empty()
                && o.sends.iter().all(|e| net.binary_search(&e.1).is_ok());
            let next = o.machine;
            if !silent || next == machine || ticks == 64 || !self.same_but_timers(machine, next) {
                return (oi, ticks);
            }
            machine = next;
            ticks += 1;
        }
    }

    /// True if machines `a` and `b` differ at most in their timers.
    fn same_but_timers(&mut self, a: u32, b: u32) -> bool {
        self.untimed(a) == self.untimed(b)
    }

    /// The fingerprint of machine `m` with the values of its fields named
    /// `*_ticks` left out (memoised).
    fn untimed(&mut self, m: u32) -> u128 {
        if let Some(&k) = self.untimed.get(&m) {
            return k;
        }
        let text = format!("{:?}", self.machines.items[m as usize]);
        let mut p = self.fp.pair();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(TIMER_FIELD) {
            let (head, tail) = rest.split_at(at + TIMER_FIELD.len());
            p.write(head.as_bytes());
            rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
        }
        p.write(rest.as_bytes());
        let k = Fingerprinter::finish(&p);
        self.untimed.insert(m, k);
        k
    }

    /// True if `mv` delivers a message that only makes its receiver answer
    /// (see [`Explorer::close`]): in a closed state that is a self-loop.
    fn answers_only(&mut self, s: &State, mv: Move) -> bool {
        matches!(mv.step, Step::Deliver(_))
            && self
                .outcome_of(s, mv.step)
                .is_some_and(|(_, oi)| self.outcomes[oi as usize].answers_only)
    }

    /// Closes the network `net` (sorted) of a state whose header is `words`
    /// under answers: while some message in it would, delivered, leave its
    /// receiver's machine as it is and write, deliver and announce nothing
    /// (an acceptor acking a heartbeat, refusing a stale ballot, promising
    /// again), its answers are added, to a fixpoint.
    ///
    /// This loses no behaviour and adds none. The closed state is reached
    /// from the open one by those deliveries, which change no machine and
    /// no ghost variable; and a state whose network holds more messages can
    /// take every move one with fewer can (messages are never consumed).
    /// So the machine states and ghost variables reachable, and with them
    /// every violation, are exactly those of the unclosed search; but the
    /// many states that differ only in which of these answers were sent yet
    /// become one.
    fn close(&mut self, words: &[u32], net: &mut Vec<u32>) {
        let commands = self.b.commands as u32;
        let mut added = Vec::new();
        loop {
            added.clear();
            for &e in net.iter() {
                let q = usize::from(self.envs.items[e as usize].to);
                let oi = self.local(q, words[q], 1 + commands + e);
                let o = &self.outcomes[oi as usize];
                if o.answers_only {
                    added.extend(
                        o.sends
                            .iter()
                            .map(|s| s.1)
                            .filter(|a| net.binary_search(a).is_err()),
                    );
                }
            }
            if added.is_empty() {
                return;
            }
            added.sort_unstable();
            added.dedup();
            let old = std::mem::take(net);
            merge(&old, &added, net);
        }
    }

    /// The state after `mv`, `None` if it passes a bound, or the invariant
    /// it breaks.
    fn successor(&mut self, s: &State, mv: Move) -> Result<Option<State>, Violation> {
        let lay = self.lay;
        let mut words = s.0[..lay.net].to_vec();
        let Some((p, oi)) = self.outcome_of(s, mv.step) else {
            let Step::Crash(p) = mv.step else {
                unreachable!("only a crash has no outcome")
            };
            let p = p as usize;
            let log = self.logs.items[s.0[lay.logs + p] as usize].clone();
            let m = self.restart(p, &log);
            words[p] = self.machines.intern(&self.fp, m);
            words[lay.crashes] += 1;
            let mut net = s.net(&lay).to_vec();
            self.close(&words, &mut net);
            words[lay.net_len] = net.len() as u32;
            words.extend_from_slice(&net);
            words.extend_from_slice(s.votes(&lay));
            return Ok(Some(State(words)));
        };
        let o = &self.outcomes[oi as usize];
        let learner = p.checked_sub(self.b.proposers + self.b.acceptors);
        let queries = learner.map_or(0, |l| s.0[lay.queries + l]) + o.queries;
        if o.round > self.b.rounds || o.top_slot > self.b.slots || queries > self.b.queries {
            return Ok(None);
        }
        // A crash at a cut keeps the effects before the cut's record.
        let cut = mv.cut.unwrap_or(u8::MAX);
        let mut sends: Vec<u32> = o.sends.iter().filter(|e| e.0 <= cut).map(|e| e.1).collect();
        let delivers: Vec<_> = o.delivers.iter().filter(|d| d.0 <= cut).copied().collect();
        let decided: Vec<_> = o.decided.iter().filter(|d| d.0 <= cut).copied().collect();
        let records = if self.b.crashes > 0 {
            o.records[..o.records.len().min(usize::from(cut))].to_vec()
        } else {
            Vec::new()
        };
        let mut votes = o.votes.clone();
        words[p] = o.machine;
        if let Step::Tick(_) = mv.step {
            words[lay.ticks] += 1;
        }
        if let Some(l) = learner {
            words[lay.queries + l] = queries;
        }
        if let Step::Submit(_, k) = mv.step {
            words[lay.submitted] |= 1 << k;
        }
        // The durable log.
        if !records.is_empty() {
            let mut log = self.logs.items[s.0[lay.logs + p] as usize].clone();
            log.extend(records);
            words[lay.logs + p] = self.logs.intern(&self.fp, log);
        }
        if mv.cut.is_some() {
            // Crashed before the rest of its records: it restarts from its
            // log, and only the votes it persisted or announced were cast.
            let log = self.logs.items[words[lay.logs + p] as usize].clone();
            let m = self.restart(p, &log);
            let durable = self.votes_of(p, &m);
            let envs = &self.envs.items;
            let announced = |v: &u32| {
                sends.iter().any(|&e| match &envs[e as usize].msg {
                    Message::Accepted { ballot, slot, .. } => {
                        pack_vote(*slot, ballot.round, ballot.node.0, 0, 0) >> 14 == v >> 14
                    }
                    _ => false,
                })
            };
            votes.retain(|v| durable.contains(v) || announced(v));
            words[p] = self.machines.intern(&self.fp, m);
            words[lay.crashes] += 1;
        }
        // The network.
        sends.sort_unstable();
        sends.dedup();
        let mut net = std::mem::take(&mut self.scratch);
        net.clear();
        merge(s.net(&lay), &sends, &mut net);
        self.close(&words, &mut net);
        words[lay.net_len] = net.len() as u32;
        words.extend_from_slice(&net);
        self.scratch = net;
        // Every vote ever held, and what it chose.
        let old = s.votes(&lay);
        votes.sort_unstable();
        votes.retain(|v| old.binary_search(v).is_err());
        let net_end = words.len();
        merge(old, &votes, &mut words);
        for &v in &votes {
            let key = v >> VOTE_KEY;
            let count = words[net_end..]
                .iter()
                .filter(|&&w| w >> VOTE_KEY == key)
                .count();
            if count > self.b.acceptors / 2 {
                self.choose(&mut words, v)?;
            }
        }
        // What learners delivered and leaders announced.
        for (_, slot, v) in delivers {
            let Some(l) = learner.filter(|_| slot < self.b.slots) else {
                continue;
            };
            let slot = slot as usize;
            let at = lay.delivered + l * lay.slots + slot;
            let name = format!("learner {}", l + 1);
            if words[at] != 0 && words[at] != u32::from(v) + 1 {
                return Err(self.two_values(&name, slot, words[at] - 1, v));
            }
            let chosen = words[lay.chosen + slot];
            if chosen != u32::from(v) + 1 {
                let detail = format!(
                    "{name} delivered {} in slot {slot}, but {}",
                    show_value(&self.values[usize::from(v)]),
                    self.chosen_text(chosen)
                );
                return Err(Violation("agreement", detail));
            }
            words[at] = u32::from(v) + 1;
        }
        for (_, slot) in decided {
            if slot >= self.b.slots || words[lay.chosen + slot as usize] == 0 {
                let detail = format!(
                    "{} announced slot {slot} decided, but nothing is chosen there",
                    self.procs[p]
                );
                return Err(Violation("agreement", detail));
            }
        }
        Ok(Some(State(words)))
    }

    fn chosen_text(&self, chosen: u32) -> String {
        match chosen {
            0 => "no value is chosen there".to_string(),
            c => format!(
                "the chosen value is {}",
                show_value(&self.values[c as usize - 1])
            ),
        }
    }

    fn two_values(&self, who: &str, slot: usize, a: u32, b: u8) -> Violation {
        Violation(
            "agreement",
            format!(
                "{who}: two values in slot {slot}: {} and {}",
                show_value(&self.values[a as usize]),
                show_value(&self.values[b as usize])
            ),
        )
    }

    /// Vote `v` completed a majority: its value is chosen in its slot.
    fn choose(&self, words: &mut [u32], v: u32) -> Result<(), Violation> {
        let slot = (v >> 26) as usize;
        let value = (v >> VOTE_KEY) & 0x7F;
        let at = self.lay.chosen + slot;
        if words[at] != 0 && words[at] != value + 1 {
            return Err(self.two_values("the acceptors' votes", slot, words[at] - 1, value as u8));
        }
        let submitted = words[self.lay.submitted];
        for cmd in self.values[value as usize].commands() {
            let k = usize::from(cmd.op).wrapping_sub(1);
            if k >= self.b.commands || *cmd != self.command(k) || submitted & (1 << k) == 0 {
                return Err(Violation(
                    "validity",
                    format!("slot {slot} chose {:?}, which no client submitted", cmd),
                ));
            }
        }
        words[at] = value + 1;
        Ok(())
    }

    /// A move and what it did, for a counterexample.
    fn describe(&mut self, s: &State, mv: Move) -> String {
        let mut line = match mv.step {
            Step::Deliver(e) => {
                let env = &self.envs.items[e as usize];
                let (to, from) = (self.procs[env.to as usize], self.procs[env.from as usize]);
                format!("{to} receives from {from}: {}", show_msg(&env.msg))
            }
            Step::Tick(p) => format!("{} ticks", self.procs[p as usize]),
            Step::Submit(p, k) => format!("c{} is submitted to {}", k + 1, self.procs[p as usize]),
            Step::Crash(p) => format!(
                "{} crashes and restarts from its log",
                self.procs[p as usize]
            ),
        };
        let Some((_, oi)) = self.outcome_of(s, mv.step) else {
            return line;
        };
        let o = &self.outcomes[oi as usize];
        let cut = mv.cut.unwrap_or(u8::MAX);
        let mut did: Vec<String> = o
            .records
            .iter()
            .take(usize::from(cut))
            .map(|r| format!("persist {}", show_record(r)))
            .collect();
        // One message to several receivers: one entry.
        let mut sent: Vec<(String, Vec<String>)> = Vec::new();
        for &(_, e) in o.sends.iter().filter(|e| e.0 <= cut) {
            let env = &self.envs.items[e as usize];
            let (text, to) = (show_msg(&env.msg), self.procs[env.to as usize].to_string());
            match sent.last_mut() {
                Some((t, tos)) if *t == text => tos.push(to),
                _ => sent.push((text, vec![to])),
            }
        }
        did.extend(
            sent.into_iter()
                .map(|(t, tos)| format!("send {t} to {}", tos.join(", "))),
        );
        for &(_, slot, v) in o.delivers.iter().filter(|d| d.0 <= cut) {
            let value = show_value(&self.values[usize::from(v)]);
            did.push(format!("deliver slot {slot} = {value}"));
        }
        for &(_, slot) in o.decided.iter().filter(|d| d.0 <= cut) {
            did.push(format!("announce slot {slot} decided"));
        }
        if let Some(c) = mv.cut {
            did.push(format!(
                "crash after {c} of its records, restart from its log"
            ));
        }
        if !did.is_empty() {
            let _ = write!(line, " => {}", did.join("; "));
        }
        line
    }
}

/// Visits every state reachable within `bounds`, checking agreement and
/// validity in each; stops at the first violation (breadth first, so its
/// path is a short one).
pub fn explore(bounds: &Bounds, sabotage: Sabotage) -> Result<Report, String> {
    explore_with(bounds, sabotage, &mut |_| {})
}

/// [`explore`], calling `progress` after each level of the search.
pub fn explore_with(
    bounds: &Bounds,
    sabotage: Sabotage,
    progress: &mut dyn FnMut(&Report),
) -> Result<Report, String> {
    bounds.validate()?;
    let start = Instant::now();
    let mut x = Explorer::new(bounds, sabotage);
    let mut report = Report {
        complete: true,
        ..Report::default()
    };
    let init = x.initial();
    let mut seen = Seen::default();
    seen.insert(&x, &init);
    let root = Move {
        step: Step::Tick(0),
        cut: None,
    };
    let mut parents: Vec<(u32, Move)> = vec![(u32::MAX, root)];
    let mut level = vec![(0u32, init.clone())];
    let mut moves = Vec::new();
    let mut tries = Vec::new();
    report.states = 1;
    'search: while !level.is_empty() {
        let mut next = Vec::new();
        for (index, s) in level {
            x.moves(&s, &mut moves);
            for &mv in &moves {
                if x.answers_only(&s, mv) {
                    continue;
                }
                tries.clear();
                tries.push(mv);
                if s.0[x.lay.crashes] < bounds.crashes {
                    if let Some((_, oi)) = x.outcome_of(&s, mv.step) {
                        let cuts = x.outcomes[oi as usize].cuts();
                        tries.extend(cuts.map(|c| Move { cut: Some(c), ..mv }));
                    }
                }
                for &t in &tries {
                    let state = match x.successor(&s, t) {
                        Err(Violation(invariant, detail)) => {
                            let mut path = vec![t];
                            let mut at = index;
                            while at != 0 {
                                path.push(parents[at as usize].1);
                                at = parents[at as usize].0;
                            }
                            path.reverse();
                            let mut steps = Vec::new();
                            let mut cur = init.clone();
                            for m in path {
                                steps.push(x.describe(&cur, m));
                                if let Ok(Some(n)) = x.successor(&cur, m) {
                                    cur = n;
                                }
                            }
                            report.violation = Some(Counterexample {
                                invariant,
                                detail,
                                steps,
                            });
                            break 'search;
                        }
                        Ok(None) => {
                            report.pruned += 1;
                            continue;
                        }
                        Ok(Some(state)) => state,
                    };
                    report.transitions += 1;
                    match seen.insert(&x, &state) {
                        Fresh::New => {}
                        Fresh::Repeat => continue,
                        Fresh::Subsumed => {
                            report.subsumed += 1;
                            continue;
                        }
                    }
                    report.states += 1;
                    x.count(&state, &mut report);
                    parents.push((index, t));
                    next.push(((parents.len() - 1) as u32, state));
                    if report.states > bounds.max_states {
                        report.complete = false;
                        break 'search;
                    }
                }
            }
        }
        if !next.is_empty() {
            report.depth += 1;
        }
        level = next;
        report.elapsed = start.elapsed();
        progress(&report);
    }
    report.elapsed = start.elapsed();
    report.machines = x.machines.items.len();
    report.messages = x.envs.items.len();
    report.local_steps = x.outcomes.len();
    Ok(report)
}

impl Explorer {
    fn count(&self, s: &State, r: &mut Report) {
        let l = &self.lay;
        let chosen = &s.0[l.chosen..l.chosen + l.slots];
        r.all_chosen += u64::from(chosen.iter().all(|&c| c != 0));
        r.noop_chosen += u64::from(chosen.contains(&1));
        let delivered = &s.0[l.delivered..l.queries];
        r.all_delivered += u64::from(delivered.iter().all(|&d| d != 0));
        r.largest_network = r.largest_network.max(s.net(l).len());
    }
}
