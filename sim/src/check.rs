//! The seven invariants (listed in sim/README.md) as small checkers. Each one is fed plain
//! observations (votes, deliveries, executions, promises, history) so that a
//! test can hand it a made-up violating history and see it object.

use paxos_core::{Ballot, ClientId, Command, NodeId, Slot, Value};
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
    /// A promise, vote, campaign or reply left its process before the
    /// state it reports was on disk.
    PersistBeforeSend,
    /// A message exceeded a bound the `Config` docs promise.
    Limit,
    /// After heal, elections did not settle on a leader in time.
    Elections,
    /// A server that lost its disk promised, voted or acknowledged before
    /// it rejoined, or did not rejoin in time.
    Rejoin,
    /// Membership change: a vote from a server outside its ballot's
    /// configuration, a value chosen outside its configuration's slots, or
    /// a configuration that elected no leader in time.
    Membership,
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
            Invariant::PersistBeforeSend => "persist-before-send",
            Invariant::Limit => "limit",
            Invariant::Elections => "elections",
            Invariant::Rejoin => "rejoin",
            Invariant::Membership => "membership",
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
    /// A failure of `invariant`, described by `detail`.
    pub fn new(invariant: Invariant, detail: String) -> Self {
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

/// A value as a person reads it: `a no-op`, `request 3/4` (client 3's
/// request 4), or `a batch of 3 requests: 3/4, 5/1, 6/2` (the first eight).
#[derive(Clone, Copy, Debug)]
pub struct ValueText<'a, C>(pub &'a Value<C>);

impl<C> fmt::Display for ValueText<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cmds = self.0.commands();
        match cmds {
            [] => f.write_str("a no-op"),
            [c] => write!(f, "request {}/{}", c.client, c.seq),
            _ => {
                write!(f, "a batch of {} requests: ", cmds.len())?;
                for (i, c) in cmds.iter().take(8).enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{}/{}", c.client, c.seq)?;
                }
                if cmds.len() > 8 {
                    f.write_str(", …")?;
                }
                Ok(())
            }
        }
    }
}

/// An optional value as a person reads it (`nothing` when absent).
fn maybe_value<C>(v: Option<&Value<C>>) -> String {
    v.map_or_else(|| "nothing".to_string(), |v| ValueText(v).to_string())
}

/// Node ids, comma-separated.
fn node_list(ids: &[NodeId]) -> String {
    ids.iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Requests as `client/seq` pairs, comma-separated.
fn request_list(list: &[(ClientId, u64)]) -> String {
    list.iter()
        .map(|(c, s)| format!("{c}/{s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

struct Tally<C> {
    value: Value<C>,
    voters: u64,
}

/// Invariant 1 (first half) and 2: the global oracle. It sees every durable
/// vote of every acceptor, declares a slot chosen when a quorum voted for it in
/// one ballot, and objects when a second value reaches a quorum in a slot, or
/// when a chosen value holds a command that was never proposed.
pub struct Oracle<C> {
    /// Each configuration the oracle saw begin, by epoch: its members
    /// and its first slot; and the slot of its stop-sign, once chosen.
    configs: Vec<(Vec<NodeId>, Slot, Option<Slot>)>,
    votes: HashMap<(Slot, Ballot), Tally<C>>,
    chosen: Vec<Option<(Ballot, Value<C>)>>,
    /// Every slot below is chosen.
    prefix: Slot,
    proposed: HashMap<(ClientId, u64), C>,
}

impl<C> fmt::Debug for Oracle<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Oracle")
            .field("configurations", &self.configs.len())
            .field("prefix", &self.prefix)
            .field("slots", &self.chosen.len())
            .finish_non_exhaustive()
    }
}

impl<C: Clone + PartialEq + fmt::Debug> Oracle<C> {
    /// An oracle for a cluster that starts with the acceptors `members`.
    pub fn new(members: Vec<NodeId>) -> Self {
        Oracle {
            configs: vec![(members, 0, None)],
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

    /// Acceptor `acceptor` durably accepted `value` in `slot` under
    /// `ballot`. Returns true when this vote made the slot chosen: when a
    /// majority of the members of the ballot's configuration voted for it
    /// in that ballot.
    pub fn vote(
        &mut self,
        acceptor: NodeId,
        slot: Slot,
        ballot: Ballot,
        value: &Value<C>,
    ) -> Result<bool, Failure> {
        let epoch = ballot.epoch();
        let Some((members, _, _)) = self.configs.get(epoch as usize) else {
            return Err(Failure::new(
                Invariant::Membership,
                format!(
                    "{acceptor} voted in ballot {ballot} of configuration {epoch}, whose \
                     stop-sign was never chosen"
                ),
            ));
        };
        let Some(index) = members.iter().position(|&m| m == acceptor) else {
            return Err(Failure::new(
                Invariant::Membership,
                format!(
                    "{acceptor} voted in ballot {ballot} of configuration {epoch}, which it is \
                     not a member of ({})",
                    node_list(members)
                ),
            ));
        };
        let quorum = members.len() / 2 + 1;
        let bit = 1u64 << index;
        let tally = self.votes.entry((slot, ballot)).or_insert_with(|| Tally {
            value: value.clone(),
            voters: 0,
        });
        if tally.value != *value {
            return Err(Failure::new(
                Invariant::Agreement,
                format!(
                    "slot {slot}: ballot {ballot} carried two values: {} and {}",
                    ValueText(&tally.value),
                    ValueText(value)
                ),
            ));
        }
        if tally.voters & bit != 0 {
            return Ok(false);
        }
        tally.voters |= bit;
        if tally.voters.count_ones() as usize != quorum {
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
                    "slot {slot}: {} was chosen in ballot {b}, then {} in ballot {ballot}",
                    ValueText(v),
                    ValueText(value)
                ),
            )),
            Some(_) => Ok(false),
            None => {
                self.check_validity(slot, value)?;
                self.check_configuration(slot, epoch, value)?;
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

    /// A value is chosen in `slot` in configuration `epoch`: no value may
    /// be chosen past that configuration's stop-sign, nor below its first
    /// slot; a stop-sign chosen starts the next configuration.
    fn check_configuration(&mut self, slot: Slot, epoch: u64, value: &Value<C>) -> Check {
        let e = epoch as usize;
        for (later, (_, first, _)) in self.configs.iter().enumerate().skip(e + 1) {
            if slot >= *first {
                return Err(Failure::new(
                    Invariant::Agreement,
                    format!(
                        "slot {slot} chosen in configuration {epoch}, although configuration \
                         {later} already decides the slots from {first}"
                    ),
                ));
            }
        }
        let (_, _, stop) = &mut self.configs[e];
        if let Some(s) = *stop {
            if slot > s {
                return Err(Failure::new(
                    Invariant::Agreement,
                    format!("slot {slot} chosen in configuration {epoch}, past its stop-sign in slot {s}"),
                ));
            }
        }
        if let Some(members) = value.stop_sign() {
            if stop.is_some_and(|s| s < slot) {
                return Ok(());
            }
            if let Some(above) = (slot + 1..self.chosen.len() as Slot).find(|&t| {
                self.chosen[t as usize]
                    .as_ref()
                    .is_some_and(|(b, _)| b.epoch() == epoch)
            }) {
                return Err(Failure::new(
                    Invariant::Agreement,
                    format!(
                        "a stop-sign was chosen in slot {slot} of configuration {epoch}, below \
                         slot {above}, already chosen in it"
                    ),
                ));
            }
            *stop = Some(slot);
            if self.configs.len() == e + 1 {
                self.configs.push((members.to_vec(), slot + 1, None));
            }
        }
        Ok(())
    }

    /// Configurations begun so far (the first counts).
    pub fn configurations(&self) -> usize {
        self.configs.len()
    }

    /// The members of the latest configuration begun.
    pub fn latest_members(&self) -> &[NodeId] {
        &self.configs.last().expect("the first configuration").0
    }

    fn check_validity(&self, slot: Slot, value: &Value<C>) -> Check {
        for cmd in value.commands() {
            match self.proposed.get(&(cmd.client, cmd.seq)) {
                Some(op) if *op == cmd.op => {}
                Some(op) => {
                    return Err(Failure::new(
                        Invariant::Validity,
                        format!(
                            "slot {slot}: request {}/{} was chosen with another operation than \
                             its client proposed ({:?} instead of {op:?})",
                            cmd.client, cmd.seq, cmd.op
                        ),
                    ))
                }
                None => {
                    return Err(Failure::new(
                        Invariant::Validity,
                        format!(
                            "slot {slot}: request {}/{} was chosen but never proposed",
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
                format!(
                    "node {node} delivered {} in slot {slot}, but the chosen value there is {}",
                    maybe_value(v),
                    maybe_value(chosen)
                ),
            )),
        }
    }

    /// Learner `node` delivered `slot`, but no longer retains its value (it
    /// delivered more than its retain window since the last look): only the
    /// order is checked; the replica's executions still are, in full.
    pub fn delivered_unseen(&mut self, node: usize, slot: Slot) -> Check {
        let expected = self.next[node];
        if slot != expected {
            return Err(Failure::new(
                Invariant::Order,
                format!("node {node} delivered slot {slot}; its next slot was {expected}"),
            ));
        }
        self.next[node] = slot + 1;
        Ok(())
    }

    /// The next slot `node` must deliver.
    pub fn next(&self, node: usize) -> Slot {
        self.next[node]
    }

    /// `node` restarted and will deliver from `slot` on (0 for an empty log,
    /// the snapshot's slot after a restore).
    pub fn restarted(&mut self, node: usize, slot: Slot) {
        self.next[node] = slot;
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
                    "node {node} executed request {client}/{seq} after it had executed {client}/{last}"
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
                        "node {node}'s execution #{i} was request {}, but the decided log executes {} there",
                        request_list(&journal[i..=i]),
                        request_list(&reference[i..=i])
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
/// and across crashes. After a restart it may fall back only to a promise it
/// never acted on: it must be at least every promise it held while all its
/// writes were synced (from then on its sends could depend on it), and at
/// least every promise its synced records hold.
#[derive(Debug)]
pub struct PromiseChecker {
    live: Vec<Ballot>,
    floor: Vec<Ballot>,
}

impl PromiseChecker {
    /// A checker for `nodes` acceptors.
    pub fn new(nodes: usize) -> Self {
        PromiseChecker {
            live: vec![Ballot::ZERO; nodes],
            floor: vec![Ballot::ZERO; nodes],
        }
    }

    /// A promise (or a vote, which implies one) of `node` became durable.
    pub fn made_durable(&mut self, node: usize, ballot: Ballot) {
        self.floor[node] = self.floor[node].max(ballot);
    }

    /// `node` holds `promised` with no write pending: it may act on it, so a
    /// restart must not forget it.
    pub fn settled(&mut self, node: usize, promised: Ballot) {
        self.floor[node] = self.floor[node].max(promised);
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

    /// `node` lost its disk: it forgot every promise, and must abstain
    /// until it rejoins (the rejoin checker watches that instead).
    pub fn wiped(&mut self, node: usize) {
        self.live[node] = Ballot::ZERO;
        self.floor[node] = Ballot::ZERO;
    }

    /// `node` restarted and its recovered acceptor reports `promised`.
    pub fn restarted(&mut self, node: usize, promised: Ballot) -> Check {
        if promised < self.floor[node] {
            return Err(Failure::new(
                Invariant::Durability,
                format!(
                    "node {node} restarted promising {promised}, below the promise {} it held with every write synced",
                    self.floor[node]
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
    /// The output it carried; `None` for a client that learns for itself
    /// (it sees the slot, not the state machine's answer).
    pub output: Option<O>,
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
    /// With reads on: the state before each slot (`states[p]` reflects the
    /// slots below `p`), to check what reads served at `p` answered.
    states: Option<Vec<S>>,
    last_seq: BTreeMap<ClientId, u64>,
    /// `(client, seq)` → where and what it executed.
    pub executions: BTreeMap<(ClientId, u64), Execution<O>>,
    /// Executions in order.
    pub order: Vec<(ClientId, u64)>,
}

impl<S: Clone, O: Clone> Reference<S, O> {
    /// A reference starting from `state`.
    pub fn new(state: S) -> Self {
        Reference {
            state,
            next: 0,
            states: None,
            last_seq: BTreeMap::new(),
            executions: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    /// Next slot to feed.
    pub fn next_slot(&self) -> Slot {
        self.next
    }

    /// Keeps the state at every slot boundary from now on, for
    /// [`check_reads`].
    pub fn keep_states(&mut self) {
        self.states.get_or_insert_with(Vec::new);
    }

    /// The state reflecting exactly the slots below `slot`, if kept.
    pub fn state_at(&self, slot: Slot) -> Option<&S> {
        if slot == self.next {
            return Some(&self.state);
        }
        self.states.as_ref()?.get(usize::try_from(slot).ok()?)
    }

    /// Applies `commands` (the value of the next slot), with `apply` running
    /// the state machine.
    pub fn apply_slot<C>(
        &mut self,
        commands: &[Command<C>],
        mut apply: impl FnMut(&mut S, &C) -> O,
    ) {
        let slot = self.next;
        if let Some(states) = &mut self.states {
            if states.len() as u64 == slot {
                states.push(self.state.clone());
            }
        }
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
                    "request {}/{} was acknowledged (slot {}) but the decided log never executes it",
                    r.client, r.seq, done.slot
                ),
            ));
        };
        if exec.slot != done.slot || done.output.as_ref().is_some_and(|o| *o != exec.output) {
            return Err(Failure::new(
                Invariant::Linearizability,
                format!(
                    "request {}/{} was answered with slot {}{}, but the decided log executes it in slot {} with output {:?}",
                    r.client,
                    r.seq,
                    done.slot,
                    done.output.as_ref().map_or(String::new(), |o| format!(" and output {o:?}")),
                    exec.slot,
                    exec.output
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
                    "request {}/{} completed in slot {slot_a} before request {}/{} was invoked, yet the latter executed in slot {}",
                    ra.client, ra.seq, rb.client, rb.seq, exec_b.slot
                ),
            ));
        }
    }
    Ok(())
}

/// One read served without a slot, as its client saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadRecord<C, O> {
    /// The client.
    pub client: ClientId,
    /// The client's id for the read.
    pub id: u64,
    /// The query.
    pub query: C,
    /// When it was sent.
    pub invoked_at: u64,
    /// When it was answered, at which slot boundary, with what.
    pub completed: Option<(u64, Slot, O)>,
}

/// Invariant 6 for reads served without a slot (read-index): a read
/// answered at slot boundary `p` must carry what the decided log's state
/// below `p` answers, and sit in real-time order with everything else. A
/// read at `p` is ordered between slots `p - 1` and `p`: a write that
/// completed before the read was invoked must be in a slot below `p`; a
/// write invoked after the read completed in a slot at or above `p`; and a
/// read that completed before another was invoked must be at a boundary
/// no later. This is the stale read a deposed leader would serve.
pub fn check_reads<S: Clone, C: fmt::Debug, O: PartialEq + fmt::Debug, WC, WO: Clone>(
    reads: &[ReadRecord<C, O>],
    requests: &[Request<WC, WO>],
    executions: &BTreeMap<(ClientId, u64), Execution<WO>>,
    reference: &Reference<S, WO>,
    answer: impl Fn(&S, &C) -> Option<O>,
) -> Check {
    let fail = |detail: String| Err(Failure::new(Invariant::Linearizability, detail));
    for r in reads {
        let Some((_, p, output)) = &r.completed else {
            continue;
        };
        let Some(state) = reference.state_at(*p) else {
            return fail(format!(
                "read {} of client {} was served at slot {p}, beyond the decided log",
                r.id, r.client
            ));
        };
        let expected = answer(state, &r.query);
        if expected.as_ref() != Some(output) {
            return fail(format!(
                "read {} of client {} was served at slot {p} with {output:?}, but the decided log there answers {expected:?}",
                r.id, r.client
            ));
        }
    }
    // Positions: a write in slot w at 2w + 1, a read at boundary p at 2p.
    // Sweep invocations in time order, knowing the highest position among
    // the operations completed strictly before.
    #[derive(Clone, Copy)]
    enum Op {
        Read(usize),
        Write(usize),
    }
    let describe = |op: Op| match op {
        Op::Read(i) => format!("read {} of client {}", reads[i].id, reads[i].client),
        Op::Write(i) => format!("request ({}, {})", requests[i].client, requests[i].seq),
    };
    let write_pos = |i: usize| {
        let r = &requests[i];
        executions.get(&(r.client, r.seq)).map(|e| 2 * e.slot + 1)
    };
    let mut completions: Vec<(u64, u64, Op)> = Vec::new();
    let mut invocations: Vec<(u64, Op)> = Vec::new();
    for (i, r) in reads.iter().enumerate() {
        invocations.push((r.invoked_at, Op::Read(i)));
        if let Some((at, p, _)) = &r.completed {
            completions.push((*at, 2 * p, Op::Read(i)));
        }
    }
    if reads.iter().all(|r| r.completed.is_none()) {
        return Ok(());
    }
    for (i, r) in requests.iter().enumerate() {
        invocations.push((r.invoked_at, Op::Write(i)));
        if let (Some(c), Some(pos)) = (&r.completed, write_pos(i)) {
            completions.push((c.at, pos, Op::Write(i)));
        }
    }
    completions.sort_unstable_by_key(|&(at, pos, _)| (at, pos));
    invocations.sort_unstable_by_key(|&(at, _)| at);
    let mut done = 0;
    // The highest position completed so far, and the highest read: two
    // writes are the request checker's business (it orders them strictly),
    // so a write is held only to the reads before it.
    let mut highest: Option<(u64, Op)> = None;
    let mut highest_read: Option<(u64, Op)> = None;
    let raise = |h: &mut Option<(u64, Op)>, pos: u64, op: Op| {
        if !matches!(*h, Some((p, _)) if p >= pos) {
            *h = Some((pos, op));
        }
    };
    for (invoked_at, b) in invocations {
        while done < completions.len() && completions[done].0 < invoked_at {
            let (_, pos, a) = completions[done];
            raise(&mut highest, pos, a);
            if matches!(a, Op::Read(_)) {
                raise(&mut highest_read, pos, a);
            }
            done += 1;
        }
        let (pos_b, before) = match b {
            Op::Read(i) => match &reads[i].completed {
                Some((_, p, _)) => (2 * p, highest),
                None => continue,
            },
            Op::Write(i) => match write_pos(i) {
                Some(pos) => (pos, highest_read),
                None => continue,
            },
        };
        let Some((pos_a, a)) = before else { continue };
        if pos_b < pos_a {
            return fail(format!(
                "{} completed (at position {pos_a}) before {} was invoked, which sits earlier (position {pos_b}; a read at boundary p is at 2p, a write in slot w at 2w+1)",
                describe(a),
                describe(b)
            ));
        }
    }
    Ok(())
}

/// Invariant 7: every request invoked by `invoked_by` has completed by
/// `deadline`. The simulator calls this at heal + the liveness bound, and at
/// the end of a partial-connectivity scenario.
pub fn check_liveness<C: fmt::Debug, O>(
    requests: &[Request<C, O>],
    invoked_by: u64,
    deadline: u64,
) -> Check {
    let pending: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.invoked_at <= invoked_by && !matches!(&r.completed, Some(c) if c.at <= deadline)
        })
        .map(|r| (r.client, r.seq))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        Invariant::Liveness,
        format!(
            "{} request(s) still pending at t={deadline} (tick {}), the first: {}",
            pending.len(),
            deadline / crate::TICK_UNITS,
            request_list(&pending[..pending.len().min(5)])
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::NodeId;

    fn three() -> Vec<NodeId> {
        vec![NodeId(1), NodeId(2), NodeId(3)]
    }

    fn b(round: u64, node: u32) -> Ballot {
        Ballot::new(round, NodeId(node))
    }

    fn cmd(client: ClientId, seq: u64, op: u64) -> Command<u64> {
        Command { client, seq, op }
    }

    fn one(client: ClientId, seq: u64, op: u64) -> Value<u64> {
        Value::One(cmd(client, seq, op))
    }

    fn oracle_with_proposals() -> Oracle<u64> {
        let mut o = Oracle::new(three());
        o.proposed(1, 1, 10);
        o.proposed(2, 1, 20);
        o
    }

    #[test]
    fn agreement_two_values_chosen_in_one_slot_is_reported() {
        let mut o = oracle_with_proposals();
        assert_eq!(o.vote(NodeId(1), 0, b(1, 1), &one(1, 1, 10)), Ok(false));
        assert_eq!(o.vote(NodeId(2), 0, b(1, 1), &one(1, 1, 10)), Ok(true));
        assert_eq!(o.chosen(0), Some(&one(1, 1, 10)));
        // A later ballot reaches a quorum with another value: the bug Paxos exists to prevent.
        assert_eq!(o.vote(NodeId(3), 0, b(2, 3), &one(2, 1, 20)), Ok(false));
        let err = o.vote(NodeId(2), 0, b(2, 3), &one(2, 1, 20)).unwrap_err();
        assert_eq!(err.invariant, Invariant::Agreement);
    }

    fn stop(members: &[u32]) -> Value<u64> {
        Value::Reconfigure(members.iter().map(|&m| NodeId(m)).collect())
    }

    /// Configuration 0 of nodes 1-3 chooses a stop-sign naming 1, 2, 4 in
    /// slot 1.
    fn reconfigured() -> Oracle<u64> {
        let mut o = oracle_with_proposals();
        for slot in 0..2 {
            let v = if slot == 1 {
                stop(&[1, 2, 4])
            } else {
                Value::Noop
            };
            o.vote(NodeId(1), slot, b(1, 1), &v).unwrap();
            o.vote(NodeId(2), slot, b(1, 1), &v).unwrap();
        }
        assert_eq!(o.configurations(), 2);
        o
    }

    #[test]
    fn membership_a_later_configuration_counts_its_own_members() {
        let mut o = reconfigured();
        let next = Ballot::new(Ballot::epoch_floor(1).round + 1, NodeId(4));
        assert_eq!(o.vote(NodeId(4), 2, next, &one(1, 1, 10)), Ok(false));
        assert_eq!(o.vote(NodeId(1), 2, next, &one(1, 1, 10)), Ok(true));
        // Node 3 was removed: its vote in the new configuration is a bug.
        let err = o.vote(NodeId(3), 3, next, &Value::Noop).unwrap_err();
        assert_eq!(err.invariant, Invariant::Membership);
        // A vote in a configuration that never began.
        let later = Ballot::new(Ballot::epoch_floor(2).round + 1, NodeId(1));
        let err = o.vote(NodeId(1), 3, later, &Value::Noop).unwrap_err();
        assert_eq!(err.invariant, Invariant::Membership);
    }

    #[test]
    fn agreement_a_value_chosen_past_a_stop_sign_is_reported() {
        let mut o = reconfigured();
        o.vote(NodeId(2), 2, b(2, 2), &Value::Noop).unwrap();
        let err = o.vote(NodeId(3), 2, b(2, 2), &Value::Noop).unwrap_err();
        assert_eq!(err.invariant, Invariant::Agreement);
        // The other order: a slot above chosen first, the stop-sign after.
        let mut o = oracle_with_proposals();
        o.vote(NodeId(1), 5, b(1, 1), &Value::Noop).unwrap();
        o.vote(NodeId(2), 5, b(1, 1), &Value::Noop).unwrap();
        o.vote(NodeId(1), 4, b(2, 1), &stop(&[1, 2])).unwrap();
        let err = o.vote(NodeId(2), 4, b(2, 1), &stop(&[1, 2])).unwrap_err();
        assert_eq!(err.invariant, Invariant::Agreement);
    }

    #[test]
    fn agreement_two_values_in_one_ballot_is_reported() {
        let mut o = oracle_with_proposals();
        o.vote(NodeId(1), 3, b(1, 1), &one(1, 1, 10)).unwrap();
        let err = o.vote(NodeId(2), 3, b(1, 1), &one(2, 1, 20)).unwrap_err();
        assert_eq!(err.invariant, Invariant::Agreement);
    }

    #[test]
    fn agreement_learner_delivering_an_unchosen_value_is_reported() {
        let mut o = oracle_with_proposals();
        o.vote(NodeId(1), 0, b(1, 1), &one(1, 1, 10)).unwrap();
        o.vote(NodeId(2), 0, b(1, 1), &one(1, 1, 10)).unwrap();
        let mut d = DeliveryChecker::new(3);
        assert!(d.delivered(0, 0, Some(&one(1, 1, 10)), &o).is_ok());
        let err = d.delivered(1, 0, Some(&one(2, 1, 20)), &o).unwrap_err();
        assert_eq!(err.invariant, Invariant::Agreement);
        // Slot 1 is not chosen at all.
        let err = d.delivered(0, 1, Some(&Value::Noop), &o).unwrap_err();
        assert_eq!(err.invariant, Invariant::Agreement);
    }

    #[test]
    fn validity_unproposed_or_altered_command_is_reported() {
        let mut o = oracle_with_proposals();
        o.vote(NodeId(1), 0, b(1, 1), &one(9, 9, 99)).unwrap();
        let err = o.vote(NodeId(2), 0, b(1, 1), &one(9, 9, 99)).unwrap_err();
        assert_eq!(err.invariant, Invariant::Validity);
        o.vote(NodeId(1), 1, b(1, 1), &one(1, 1, 11)).unwrap();
        let err = o.vote(NodeId(2), 1, b(1, 1), &one(1, 1, 11)).unwrap_err();
        assert_eq!(err.invariant, Invariant::Validity);
        // No-ops are always valid.
        o.vote(NodeId(1), 2, b(1, 1), &Value::Noop).unwrap();
        assert_eq!(o.vote(NodeId(2), 2, b(1, 1), &Value::Noop), Ok(true));
    }

    #[test]
    fn order_gap_and_repeat_are_reported() {
        let mut o = oracle_with_proposals();
        for slot in 0..3 {
            o.vote(NodeId(1), slot, b(1, 1), &Value::Noop).unwrap();
            o.vote(NodeId(2), slot, b(1, 1), &Value::Noop).unwrap();
        }
        let mut d = DeliveryChecker::new(2);
        d.delivered(0, 0, Some(&Value::Noop), &o).unwrap();
        let gap = d.delivered(0, 2, Some(&Value::Noop), &o).unwrap_err();
        assert_eq!(gap.invariant, Invariant::Order);
        let mut d = DeliveryChecker::new(2);
        d.delivered(1, 0, Some(&Value::Noop), &o).unwrap();
        let repeat = d.delivered(1, 0, Some(&Value::Noop), &o).unwrap_err();
        assert_eq!(repeat.invariant, Invariant::Order);
        // After a restart the learner starts again from slot 0.
        d.restarted(1, 0);
        assert!(d.delivered(1, 0, Some(&Value::Noop), &o).is_ok());
    }

    #[test]
    fn at_most_once_double_execution_is_reported() {
        let mut e = ExecutionChecker::new(2);
        e.executed(0, 7, 1).unwrap();
        e.executed(0, 7, 2).unwrap();
        let err = e.executed(0, 7, 2).unwrap_err();
        assert_eq!(err.invariant, Invariant::AtMostOnce);
        let err = e.executed(0, 7, 1).unwrap_err();
        assert_eq!(
            err.invariant,
            Invariant::AtMostOnce,
            "superseded request run"
        );
        // Another replica has its own sessions.
        assert!(e.executed(1, 7, 1).is_ok());
    }

    #[test]
    fn at_most_once_divergence_from_the_decided_log_is_reported() {
        let mut e = ExecutionChecker::new(1);
        let reference = [(1, 1), (2, 1), (1, 2)];
        assert!(e.follow_reference(0, &[(1, 1)], &reference).is_ok());
        // The replica re-executed (1, 1) where the log executes (2, 1).
        let err = e
            .follow_reference(0, &[(1, 1), (1, 1)], &reference)
            .unwrap_err();
        assert_eq!(err.invariant, Invariant::AtMostOnce);
        // Across a restart the replica replays from the start, which is fine.
        e.restarted(0);
        assert!(e.follow_reference(0, &[(1, 1), (2, 1)], &reference).is_ok());
    }

    #[test]
    fn durability_promise_going_back_is_reported() {
        let mut p = PromiseChecker::new(1);
        p.observe(0, b(3, 2)).unwrap();
        let err = p.observe(0, b(2, 9)).unwrap_err();
        assert_eq!(err.invariant, Invariant::Durability);
    }

    #[test]
    fn durability_forgetting_a_settled_promise_is_reported() {
        // The acceptor promised 6.1 and had nothing left to sync (so its
        // `Promise` may have gone out), yet came back promising less.
        let mut p = PromiseChecker::new(1);
        p.observe(0, b(6, 1)).unwrap();
        p.settled(0, b(6, 1));
        let err = p.restarted(0, b(4, 1)).unwrap_err();
        assert_eq!(err.invariant, Invariant::Durability);
    }

    #[test]
    fn durability_restart_below_durable_promise_is_reported() {
        let mut p = PromiseChecker::new(1);
        p.observe(0, b(5, 1)).unwrap();
        p.made_durable(0, b(4, 1));
        // Falling back to the durable promise is allowed: b(5, 1) was never synced.
        assert!(p.restarted(0, b(4, 1)).is_ok());
        let err = p.restarted(0, b(3, 1)).unwrap_err();
        assert_eq!(err.invariant, Invariant::Durability);
    }

    fn request(
        client: ClientId,
        seq: u64,
        invoked_at: u64,
        done: Option<(u64, Slot, u64)>,
    ) -> Request<u64, u64> {
        Request {
            client,
            seq,
            op: 0,
            invoked_at,
            completed: done.map(|(at, slot, output)| Completion {
                at,
                slot,
                output: Some(output),
            }),
        }
    }

    fn executions(
        list: &[((ClientId, u64), Slot, u64)],
    ) -> BTreeMap<(ClientId, u64), Execution<u64>> {
        list.iter()
            .map(|&(k, slot, output)| (k, Execution { slot, output }))
            .collect()
    }

    #[test]
    fn linearizability_accepts_a_consistent_history() {
        let reqs = [
            request(1, 1, 0, Some((10, 0, 100))),
            request(2, 1, 5, Some((20, 1, 200))),
            request(1, 2, 11, Some((30, 2, 300))),
            request(3, 1, 12, None),
        ];
        let ex = executions(&[((1, 1), 0, 100), ((2, 1), 1, 200), ((1, 2), 2, 300)]);
        assert_eq!(check_linearizability(&reqs, &ex), Ok(()));
    }

    #[test]
    fn linearizability_stale_read_is_reported() {
        // (1, 1) completed at t=10 in slot 5; (2, 1) was invoked later but sits in slot 4.
        let reqs = [
            request(1, 1, 0, Some((10, 5, 100))),
            request(2, 1, 15, Some((30, 4, 200))),
        ];
        let ex = executions(&[((1, 1), 5, 100), ((2, 1), 4, 200)]);
        let err = check_linearizability(&reqs, &ex).unwrap_err();
        assert_eq!(err.invariant, Invariant::Linearizability);
    }

    /// A reference over a counter: each slot adds its command's op.
    fn counter_reference(slots: &[u64]) -> Reference<u64, u64> {
        let mut r = Reference::new(0u64);
        r.keep_states();
        for (i, &op) in slots.iter().enumerate() {
            let cmd = Command {
                client: 9,
                seq: i as u64 + 1,
                op,
            };
            r.apply_slot(&[cmd], |s: &mut u64, op: &u64| {
                *s += op;
                *s
            });
        }
        r
    }

    fn read(
        client: ClientId,
        invoked_at: u64,
        done: Option<(u64, Slot, u64)>,
    ) -> ReadRecord<u64, u64> {
        ReadRecord {
            client,
            id: 1,
            query: 0,
            invoked_at,
            completed: done,
        }
    }

    #[test]
    fn reads_at_a_fresh_enough_boundary_with_the_right_answer_pass() {
        let r = counter_reference(&[1, 2, 4]);
        // The write in slot 1 completed at t=10; a read invoked at t=12 and
        // served at boundary 2 (after slots 0 and 1) answers 1 + 2.
        let reqs = [request(9, 2, 5, Some((10, 1, 3)))];
        let ex = executions(&[((9, 2), 1, 3)]);
        let reads = [read(1, 12, Some((20, 2, 3))), read(2, 25, Some((30, 3, 7)))];
        assert_eq!(check_reads(&reads, &reqs, &ex, &r, |s, _| Some(*s)), Ok(()));
    }

    #[test]
    fn a_stale_read_is_reported() {
        let r = counter_reference(&[1, 2, 4]);
        let reqs = [request(9, 2, 5, Some((10, 1, 3)))];
        let ex = executions(&[((9, 2), 1, 3)]);
        // Invoked after slot 1's write completed, yet served before it.
        let reads = [read(1, 12, Some((20, 1, 1)))];
        let err = check_reads(&reads, &reqs, &ex, &r, |s, _| Some(*s)).unwrap_err();
        assert_eq!(err.invariant, Invariant::Linearizability);
        // Two reads out of real-time order.
        let reads = [read(1, 12, Some((20, 3, 7))), read(2, 25, Some((30, 2, 3)))];
        assert!(check_reads(&reads, &reqs, &ex, &r, |s, _| Some(*s)).is_err());
        // A write invoked after a read completed, placed before it.
        let reqs = [request(9, 2, 25, Some((40, 1, 3)))];
        let reads = [read(1, 0, Some((20, 3, 7)))];
        assert!(check_reads(&reads, &reqs, &ex, &r, |s, _| Some(*s)).is_err());
    }

    #[test]
    fn a_read_with_the_wrong_answer_is_reported() {
        let r = counter_reference(&[1, 2, 4]);
        let reads = [read(1, 0, Some((20, 2, 4)))];
        let err =
            check_reads::<_, _, _, u64, u64>(&reads, &[], &BTreeMap::new(), &r, |s, _| Some(*s))
                .unwrap_err();
        assert_eq!(err.invariant, Invariant::Linearizability);
    }

    #[test]
    fn linearizability_wrong_output_or_unexecuted_ack_is_reported() {
        let reqs = [request(1, 1, 0, Some((10, 0, 999)))];
        let ex = executions(&[((1, 1), 0, 100)]);
        let err = check_linearizability(&reqs, &ex).unwrap_err();
        assert_eq!(err.invariant, Invariant::Linearizability);
        let err = check_linearizability(&reqs, &BTreeMap::new()).unwrap_err();
        assert_eq!(err.invariant, Invariant::Linearizability);
    }

    #[test]
    fn liveness_pending_request_after_the_bound_is_reported() {
        let reqs = [request(1, 1, 0, Some((10, 0, 1))), request(2, 1, 5, None)];
        let err = check_liveness(&reqs, 1_000, 1_000).unwrap_err();
        assert_eq!(err.invariant, Invariant::Liveness);
        assert!(err.detail.contains("the first: 2/1"), "{}", err.detail);
        assert!(check_liveness(&reqs[..1], 1_000, 1_000).is_ok());
    }

    #[test]
    fn reference_skips_retries_and_superseded_requests() {
        let mut r: Reference<u64, u64> = Reference::new(0);
        let add = |s: &mut u64, op: &u64| {
            *s += op;
            *s
        };
        r.apply_slot(&[cmd(1, 1, 5), cmd(1, 1, 5)], add);
        r.apply_slot(&[cmd(1, 2, 1), cmd(1, 1, 5)], add);
        assert_eq!(r.order, [(1, 1), (1, 2)]);
        assert_eq!(r.executions[&(1, 2)], Execution { slot: 1, output: 6 });
    }
}
