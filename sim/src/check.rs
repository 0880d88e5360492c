//! The seven invariants of DESIGN.md as small checkers. Each one is fed plain
//! observations (votes, deliveries, executions, promises, history) so that a
//! test can hand it a made-up violating history and see it object.

use paxos_core::{Ballot, ClientId, Command, Slot, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Which invariant a run broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// Two values chosen for one slot, or a learner delivered an unchosen value.
    Agreement,
    /// A chosen value holds a command nobody proposed.
    Validity,
    /// A learner skipped or repeated a slot.
    Order,
    /// A replica executed a request twice (or a superseded one).
    AtMostOnce,
    /// An acceptor's promise went backwards (across a restart or not).
    Durability,
    /// A reply contradicts the decided log, or real-time order.
    Linearizability,
    /// A request was still pending long after the faults stopped.
    Liveness,
}

impl Invariant {
    /// Lower-case name, as printed.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::Agreement => "agreement",
            Invariant::Validity => "validity",
            Invariant::Order => "order",
            Invariant::AtMostOnce => "at-most-once",
            Invariant::Durability => "durability",
            Invariant::Linearizability => "linearizability",
            Invariant::Liveness => "liveness",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken invariant and what broke it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The invariant.
    pub invariant: Invariant,
    /// What was seen.
    pub detail: String,
}

impl Failure {
    fn new(invariant: Invariant, detail: String) -> Self {
        Failure { invariant, detail }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// Result of one check.
pub type Check = Result<(), Failure>;

struct Tally<C> {
    value: Value<C>,
    voters: u64,
}

/// Invariant 1 (first half) and 2: the global oracle. It sees every durable
/// vote of every acceptor, declares a slot chosen when a quorum voted for it in
/// one ballot, and objects when a second value reaches a quorum in a slot, or
/// when a chosen value holds a command that was never proposed.
pub struct Oracle<C> {
    quorum: usize,
    votes: HashMap<(Slot, Ballot), Tally<C>>,
    chosen: Vec<Option<(Ballot, Value<C>)>>,
    /// Every slot below is chosen.
    prefix: Slot,
    proposed: HashMap<(ClientId, u64), C>,
}

impl<C> fmt::Debug for Oracle<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Oracle")
            .field("quorum", &self.quorum)
            .field("prefix", &self.prefix)
            .field("slots", &self.chosen.len())
            .finish_non_exhaustive()
    }
}

impl<C: Clone + PartialEq + fmt::Debug> Oracle<C> {
    /// An oracle for acceptors of which `quorum` make a majority.
    pub fn new(quorum: usize) -> Self {
        Oracle {
            quorum,
            votes: HashMap::new(),
            chosen: Vec::new(),
            prefix: 0,
            proposed: HashMap::new(),
        }
    }

    /// A client proposed `op` as request `(client, seq)`.
    pub fn proposed(&mut self, client: ClientId, seq: u64, op: C) {
        self.proposed.insert((client, seq), op);
    }

    /// Acceptor number `acceptor` durably accepted `value` in `slot` under
    /// `ballot`. Returns true when this vote made the slot chosen.
    pub fn vote(
        &mut self,
        acceptor: usize,
        slot: Slot,
        ballot: Ballot,
        value: &Value<C>,
    ) -> Result<bool, Failure> {
        let bit = 1u64 << acceptor;
        let tally = self.votes.entry((slot, ballot)).or_insert_with(|| Tally {
            value: value.clone(),
            voters: 0,
        });
        if tally.value != *value {
            return Err(Failure::new(
                Invariant::Agreement,
                format!(
                    "slot {slot}: ballot {ballot} carried two values: {:?} and {value:?}",
                    tally.value
                ),
            ));
        }
        if tally.voters & bit != 0 {
            return Ok(false);
        }
        tally.voters |= bit;
        if tally.voters.count_ones() as usize != self.quorum {
            return Ok(false);
        }
        let index = slot as usize;
        if self.chosen.len() <= index {
            self.chosen.resize_with(index + 1, || None);
        }
        match &self.chosen[index] {
            Some((b, v)) if v != value => Err(Failure::new(
                Invariant::Agreement,
                format!(
                    "slot {slot}: {v:?} was chosen in ballot {b}, then {value:?} in ballot {ballot}"
                ),
            )),
            Some(_) => Ok(false),
            None => {
                self.check_validity(slot, value)?;
                self.chosen[index] = Some((ballot, value.clone()));
                while self
                    .chosen
                    .get(self.prefix as usize)
                    .is_some_and(Option::is_some)
                {
                    self.prefix += 1;
                }
                Ok(true)
            }
        }
    }

    fn check_validity(&self, slot: Slot, value: &Value<C>) -> Check {
        for cmd in value.commands() {
            match self.proposed.get(&(cmd.client, cmd.seq)) {
                Some(op) if *op == cmd.op => {}
                Some(op) => {
                    return Err(Failure::new(
                        Invariant::Validity,
                        format!(
                        "slot {slot}: request ({}, {}) was proposed as {op:?} but chosen as {:?}",
                        cmd.client, cmd.seq, cmd.op
                    ),
                    ))
                }
                None => {
                    return Err(Failure::new(
                        Invariant::Validity,
                        format!(
                            "slot {slot}: chosen request ({}, {}) was never proposed",
                            cmd.client, cmd.seq
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    /// The chosen value of `slot`, if the oracle knows it is chosen.
    pub fn chosen(&self, slot: Slot) -> Option<&Value<C>> {
        self.chosen
            .get(slot as usize)
            .and_then(|c| c.as_ref().map(|(_, v)| v))
    }

    /// Every slot below this one is chosen.
    pub fn prefix(&self) -> Slot {
        self.prefix
    }

    /// Number of chosen slots (not necessarily contiguous).
    pub fn chosen_count(&self) -> usize {
        self.chosen.iter().filter(|c| c.is_some()).count()
    }
}

/// Invariant 1 (second half) and 3: each learner delivers slots 0, 1, 2, … in
/// order, each once, and each delivered value is the chosen one; so every
/// replica's log is a prefix of the decided log, and of each other's.
#[derive(Debug)]
pub struct DeliveryChecker {
    next: Vec<Slot>,
}

impl DeliveryChecker {
    /// A checker for `nodes` learners, none of which delivered anything yet.
    pub fn new(nodes: usize) -> Self {
        DeliveryChecker {
            next: vec![0; nodes],
        }
    }

    /// Learner `node` delivered `value` for `slot`.
    pub fn delivered<C: Clone + PartialEq + fmt::Debug>(
        &mut self,
        node: usize,
        slot: Slot,
        value: Option<&Value<C>>,
        oracle: &Oracle<C>,
    ) -> Check {
        let expected = self.next[node];
        if slot != expected {
            let what = if slot < expected {
                "repeated"
            } else {
                "skipped to"
            };
            return Err(Failure::new(
                Invariant::Order,
                format!("node {node} {what} slot {slot}; its next slot was {expected}"),
            ));
        }
        self.next[node] = slot + 1;
        match (oracle.chosen(slot), value) {
            (Some(chosen), Some(v)) if chosen == v => Ok(()),
            (chosen, v) => Err(Failure::new(
                Invariant::Agreement,
                format!("node {node} delivered {v:?} in slot {slot}, but the chosen value is {chosen:?}"),
            )),
        }
    }

    /// The next slot `node` must deliver.
    pub fn next(&self, node: usize) -> Slot {
        self.next[node]
    }

    /// `node` restarted with an empty log and will deliver from slot 0 again.
    pub fn restarted(&mut self, node: usize) {
        self.next[node] = 0;
    }
}

/// Invariant 4: a replica executes each `(client, seq)` at most once, and never
/// one older than the client's latest (which the replica must treat as
/// superseded). Its executions must also follow the reference execution of the
/// decided log, position by position, in every incarnation.
#[derive(Debug)]
pub struct ExecutionChecker {
    last_seq: Vec<BTreeMap<ClientId, u64>>,
    matched: Vec<usize>,
}

impl ExecutionChecker {
    /// A checker for `nodes` replicas.
    pub fn new(nodes: usize) -> Self {
        ExecutionChecker {
            last_seq: vec![BTreeMap::new(); nodes],
            matched: vec![0; nodes],
        }
    }

    /// Replica `node` executed request `(client, seq)`.
    pub fn executed(&mut self, node: usize, client: ClientId, seq: u64) -> Check {
        let last = self.last_seq[node].entry(client).or_insert(0);
        if seq <= *last {
            return Err(Failure::new(
                Invariant::AtMostOnce,
                format!(
                    "node {node} executed request ({client}, {seq}) after it had executed ({client}, {last})"
                ),
            ));
        }
        *last = seq;
        Ok(())
    }

    /// Compares `node`'s executions (its whole journal since its last restart)
    /// with the reference executions of the decided log, as far as both go.
    pub fn follow_reference(
        &mut self,
        node: usize,
        journal: &[(ClientId, u64)],
        reference: &[(ClientId, u64)],
    ) -> Check {
        let from = self.matched[node];
        let upto = journal.len().min(reference.len());
        for i in from..upto {
            if journal[i] != reference[i] {
                return Err(Failure::new(
                    Invariant::AtMostOnce,
                    format!(
                        "node {node}'s execution #{i} was request {:?}, but the decided log executes {:?} there",
                        journal[i], reference[i]
                    ),
                ));
            }
        }
        self.matched[node] = upto.max(from);
        Ok(())
    }

    /// `node` restarted: its state machine starts again from nothing.
    pub fn restarted(&mut self, node: usize) {
        self.last_seq[node].clear();
        self.matched[node] = 0;
    }
}

/// Invariant 5: an acceptor's promised ballot never decreases, while it runs
/// and across crashes (where it may fall back only to what it had made durable,
/// and never below anything it told anyone).
#[derive(Debug)]
pub struct PromiseChecker {
    live: Vec<Ballot>,
    durable: Vec<Ballot>,
}

impl PromiseChecker {
    /// A checker for `nodes` acceptors.
    pub fn new(nodes: usize) -> Self {
        PromiseChecker {
            live: vec![Ballot::ZERO; nodes],
            durable: vec![Ballot::ZERO; nodes],
        }
    }

    /// A promise (or a vote, which implies one) of `node` became durable.
    pub fn made_durable(&mut self, node: usize, ballot: Ballot) {
        self.durable[node] = self.durable[node].max(ballot);
    }

    /// `node`'s acceptor now reports `promised`.
    pub fn observe(&mut self, node: usize, promised: Ballot) -> Check {
        if promised < self.live[node] {
            return Err(Failure::new(
                Invariant::Durability,
                format!(
                    "node {node}'s promise went back from {} to {promised}",
                    self.live[node]
                ),
            ));
        }
        self.live[node] = promised;
        Ok(())
    }

    /// `node` restarted and its recovered acceptor reports `promised`.
    pub fn restarted(&mut self, node: usize, promised: Ballot) -> Check {
        if promised < self.durable[node] {
            return Err(Failure::new(
                Invariant::Durability,
                format!(
                    "node {node} restarted promising {promised}, below its durable promise {}",
                    self.durable[node]
                ),
            ));
        }
        self.live[node] = promised;
        Ok(())
    }
}

/// One client request as the clients saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Request<C, O> {
    /// The client.
    pub client: ClientId,
    /// Its sequence number.
    pub seq: u64,
    /// The operation.
    pub op: C,
    /// When it was first submitted.
    pub invoked_at: u64,
    /// When and how it completed, if it did.
    pub completed: Option<Completion<O>>,
}

/// A request's first reply, as its client received it.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion<O> {
    /// Arrival time of the reply.
    pub at: u64,
    /// The slot the reply named.
    pub slot: Slot,
    /// The output it carried.
    pub output: O,
}

/// Where and with what output the decided log executes one request: the
/// reference the replies are held to.
#[derive(Clone, Debug, PartialEq)]
pub struct Execution<O> {
    /// The slot of its first (only) execution.
    pub slot: Slot,
    /// The state machine's output there.
    pub output: O,
}

/// Replays the decided log through a fresh state machine, with the session
/// rule (a request is executed once; older ones are skipped), independently of
/// the core's replica. Feed it slots in order.
#[derive(Debug)]
pub struct Reference<S, O> {
    state: S,
    next: Slot,
    last_seq: BTreeMap<ClientId, u64>,
    /// `(client, seq)` → where and what it executed.
    pub executions: BTreeMap<(ClientId, u64), Execution<O>>,
    /// Executions in order.
    pub order: Vec<(ClientId, u64)>,
}

impl<S, O: Clone> Reference<S, O> {
    /// A reference starting from `state`.
    pub fn new(state: S) -> Self {
        Reference {
            state,
            next: 0,
            last_seq: BTreeMap::new(),
            executions: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    /// Next slot to feed.
    pub fn next_slot(&self) -> Slot {
        self.next
    }

    /// Applies `commands` (the value of the next slot), with `apply` running
    /// the state machine.
    pub fn apply_slot<C>(
        &mut self,
        commands: &[Command<C>],
        mut apply: impl FnMut(&mut S, &C) -> O,
    ) {
        let slot = self.next;
        self.next += 1;
        for cmd in commands {
            let last = self.last_seq.entry(cmd.client).or_insert(0);
            if cmd.seq <= *last {
                continue;
            }
            *last = cmd.seq;
            let output = apply(&mut self.state, &cmd.op);
            self.executions
                .insert((cmd.client, cmd.seq), Execution { slot, output });
            self.order.push((cmd.client, cmd.seq));
        }
    }
}

/// Invariant 6: linearizability, with the decided log as the witness order.
/// Every completed request must have executed, its reply must name the slot
/// and carry the output of that execution, and when request A completed
/// before request B was invoked, A's slot must be below B's (if B executed).
/// Sorting makes this O(n log n); there is no search.
pub fn check_linearizability<C: fmt::Debug, O: PartialEq + fmt::Debug>(
    requests: &[Request<C, O>],
    executions: &BTreeMap<(ClientId, u64), Execution<O>>,
) -> Check {
    for r in requests {
        let Some(done) = &r.completed else { continue };
        let Some(exec) = executions.get(&(r.client, r.seq)) else {
            return Err(Failure::new(
                Invariant::Linearizability,
                format!(
                    "request ({}, {}) was acknowledged (slot {}) but the decided log never executes it",
                    r.client, r.seq, done.slot
                ),
            ));
        };
        if exec.slot != done.slot || exec.output != done.output {
            return Err(Failure::new(
                Invariant::Linearizability,
                format!(
                    "request ({}, {}) was answered with slot {} output {:?}, but the decided log executes it in slot {} with output {:?}",
                    r.client, r.seq, done.slot, done.output, exec.slot, exec.output
                ),
            ));
        }
    }
    // Real-time order: sweep invocations in time order, knowing the highest
    // slot among the requests that completed strictly before.
    let mut completions: Vec<(u64, Slot, usize)> = requests
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.completed.as_ref().map(|c| (c.at, c.slot, i)))
        .collect();
    completions.sort_unstable();
    let mut invocations: Vec<(u64, usize)> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| (r.invoked_at, i))
        .collect();
    invocations.sort_unstable();
    let mut done = 0;
    let mut highest: Option<(Slot, usize)> = None;
    for (invoked_at, b) in invocations {
        while done < completions.len() && completions[done].0 < invoked_at {
            let (_, slot, a) = completions[done];
            if !matches!(highest, Some((s, _)) if s >= slot) {
                highest = Some((slot, a));
            }
            done += 1;
        }
        let rb = &requests[b];
        let (Some((slot_a, a)), Some(exec_b)) = (highest, executions.get(&(rb.client, rb.seq)))
        else {
            continue;
        };
        if exec_b.slot <= slot_a {
            let ra = &requests[a];
            return Err(Failure::new(
                Invariant::Linearizability,
                format!(
                    "request ({}, {}) completed in slot {slot_a} before request ({}, {}) was invoked, yet the latter executed in slot {}",
                    ra.client, ra.seq, rb.client, rb.seq, exec_b.slot
                ),
            ));
        }
    }
    Ok(())
}

/// Invariant 7: every request invoked before `deadline` has completed by it.
/// The simulator calls this at heal + the liveness bound.
pub fn check_liveness<C: fmt::Debug, O>(requests: &[Request<C, O>], deadline: u64) -> Check {
    let pending: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.invoked_at <= deadline && !matches!(&r.completed, Some(c) if c.at <= deadline)
        })
        .map(|r| (r.client, r.seq))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        Invariant::Liveness,
        format!(
            "{} request(s) still pending at t={deadline}, first {:?}",
            pending.len(),
            &pending[..pending.len().min(5)]
        ),
    ))
}
