//! Linearizable reads without a log slot (read-index), for [`crate::Server`].
//!
//! A read that reaches the leader takes the leader's *read index*: the slot
//! after every slot it has proposed, which is above every slot that can
//! have been chosen (phase 1 re-proposed everything a quorum may have
//! chosen before this leader). The leader then sends a heartbeat and waits
//! until a quorum of acceptors acknowledged that heartbeat or a later one
//! in its ballot: an acceptor acknowledges only while it has promised no
//! higher ballot, so no other leader can have had a write chosen before the
//! read arrived that this leader does not know of. One heartbeat confirms
//! every read that arrived before it was sent. Once the replica has applied
//! every slot below the index, the read is answered from the state machine
//! as it stands ([`crate::StateMachine::read`]), with no write anywhere.
//!
//! A follower asks the leader for the index ([`Message::ReadIndex`]) and
//! serves the read from its own replica once it has applied that far.
//!
//! [`Message::ReadIndex`]: crate::Message::ReadIndex

use crate::types::{ClientId, NodeId, Slot};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// A read a client sent to this server.
#[derive(Clone, Debug)]
pub(crate) struct LocalRead<C> {
    pub client: ClientId,
    pub id: u64,
    pub query: C,
}

/// Who waits for a read index the leader is confirming.
#[derive(Clone, Debug)]
pub(crate) enum Origin<C> {
    /// A client of this server.
    Local(LocalRead<C>),
    /// A follower's `ReadIndex` request.
    Remote {
        node: NodeId,
        client: ClientId,
        id: u64,
    },
}

/// Reads waiting for the leader's confirmation, each with the read index
/// it took on arrival.
pub(crate) type Unconfirmed<C> = Vec<(Slot, Origin<C>)>;

/// The reads of one server, in their three stages.
#[derive(Clone, Debug)]
pub(crate) struct Reads<C> {
    /// Leader: reads that arrived after the latest confirmation round was
    /// sent, with the read index each took on arrival.
    pub unconfirmed: Unconfirmed<C>,
    /// Leader: the confirmation round in flight, its heartbeat and reads.
    pub round: Option<(u64, Unconfirmed<C>)>,
    /// Follower: reads waiting for the leader's index, by client and id,
    /// with their age in ticks.
    pub asked: BTreeMap<(ClientId, u64), (LocalRead<C>, u32)>,
    /// Reads with a confirmed index, waiting for the replica to apply
    /// every slot below it, with their age in ticks.
    pub ready: Vec<(Slot, LocalRead<C>, u32)>,
    /// Counters.
    pub served: u64,
    pub refused: u64,
}

impl<C> Default for Reads<C> {
    fn default() -> Self {
        Reads {
            unconfirmed: Vec::new(),
            round: None,
            asked: BTreeMap::new(),
            ready: Vec::new(),
            served: 0,
            refused: 0,
        }
    }
}

impl<C> Reads<C> {
    /// Nothing waits at any stage.
    pub fn is_idle(&self) -> bool {
        self.unconfirmed.is_empty()
            && self.round.is_none()
            && self.asked.is_empty()
            && self.ready.is_empty()
    }

    /// Every read waiting for the leader's confirmation, taken out (the
    /// leader stepped down).
    pub fn take_unconfirmed(&mut self) -> Unconfirmed<C> {
        let mut all = core::mem::take(&mut self.unconfirmed);
        if let Some((_, round)) = self.round.take() {
            all.extend(round);
        }
        all
    }

    /// One tick: ages the reads waiting on others; returns those older than
    /// `limit` ticks, which have waited too long.
    pub fn tick(&mut self, limit: u32) -> Vec<LocalRead<C>> {
        let mut expired = Vec::new();
        let old: Vec<(ClientId, u64)> = self
            .asked
            .iter_mut()
            .filter_map(|(key, (_, age))| {
                *age += 1;
                (*age > limit).then_some(*key)
            })
            .collect();
        for key in old {
            if let Some((read, _)) = self.asked.remove(&key) {
                expired.push(read);
            }
        }
        let mut kept = Vec::with_capacity(self.ready.len());
        for (index, read, age) in self.ready.drain(..) {
            if age + 1 > limit {
                expired.push(read);
            } else {
                kept.push((index, read, age + 1));
            }
        }
        self.ready = kept;
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(id: u64) -> LocalRead<u64> {
        LocalRead {
            client: 1,
            id,
            query: id,
        }
    }

    #[test]
    fn a_waiting_read_expires_after_exactly_limit_ticks_and_not_before() {
        const LIMIT: u32 = 3;
        let mut reads = Reads::<u64>::default();
        assert!(reads.is_idle());
        reads.asked.insert((1, 1), (read(1), 0));
        reads.ready.push((5, read(2), 0));
        assert!(!reads.is_idle());
        for tick in 1..=LIMIT {
            assert!(
                reads.tick(LIMIT).is_empty(),
                "expired early, at tick {tick}"
            );
        }
        assert_eq!(reads.asked[&(1, 1)].1, LIMIT, "aged one per tick");
        assert_eq!(reads.ready[0].2, LIMIT, "aged one per tick");
        let expired: Vec<u64> = reads.tick(LIMIT).iter().map(|r| r.id).collect();
        assert_eq!(expired, [1, 2], "both expire on the tick after the limit");
        assert!(reads.is_idle());
    }
}
