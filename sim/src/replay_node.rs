//! `paxos-sim replay-node FILE`: a production node's flight recording
//! (`chatroom-server --record`, `abcast … --record`) fed back to the same
//! core, step by step, checking that every step gives exactly the recorded
//! actions; and a drawing of what the node received and sent.

use crate::options::TICK_UNITS;
use crate::trace::{describe, EventKind, TraceEvent};
use paxos_core::{Action, Event, Input};
use paxos_record::{Kind, Observer, ReplayError, Replayed};
use std::collections::BTreeMap;

/// Replays a recording of any kind the drivers write.
pub fn replay(bytes: &[u8], observer: &mut impl Observer) -> Result<Vec<Replayed>, ReplayError> {
    match paxos_record::meta(bytes)?.kind {
        Kind::ChatServer => paxos_tcp::record::replay(bytes, observer),
        _ => paxos_multicast::record::replay(bytes, observer),
    }
}

/// Turns replayed steps into diagram events: the recorded node is lane 0,
/// each process it heard from or sent to gets a lane, and time is the
/// node's own tick count.
#[derive(Debug)]
pub struct Sketch {
    /// The events, for [`crate::trace::draw_html`].
    pub events: Vec<TraceEvent>,
    /// The lane names (the recorded node first).
    pub lanes: Vec<String>,
    lane_of: BTreeMap<String, usize>,
    ticks: u64,
    /// Events within the current tick, to spread them out a little.
    within: u64,
    session: usize,
    step: u64,
}

impl Sketch {
    /// A sketch of the node `name`.
    pub fn new(name: String) -> Sketch {
        Sketch {
            events: Vec::new(),
            lane_of: BTreeMap::from([(name.clone(), 0)]),
            lanes: vec![name],
            ticks: 0,
            within: 0,
            session: 0,
            step: 0,
        }
    }

    fn lane(&mut self, name: String) -> usize {
        let next = self.lanes.len();
        *self.lane_of.entry(name.clone()).or_insert_with(|| {
            self.lanes.push(name);
            next
        })
    }

    fn now(&mut self) -> u64 {
        self.within += 1;
        self.ticks * TICK_UNITS + (self.within * 7).min(TICK_UNITS - 1)
    }

    fn push(&mut self, kind: EventKind, node: Option<usize>, peer: Option<usize>, label: String) {
        let t = self.now();
        self.events.push(TraceEvent {
            step: self.step,
            t,
            kind,
            node,
            peer,
            sent_at: peer.map(|_| t),
            label,
        });
    }
}

impl Observer for Sketch {
    fn step<C, O, P>(
        &mut self,
        session: usize,
        _index: usize,
        input: &Input<C, P>,
        actions: &[Action<C, O, P>],
    ) {
        self.step += 1;
        if session != self.session {
            self.session = session;
            self.push(
                EventKind::Restart,
                Some(0),
                None,
                format!("restart: session {session} of the recording"),
            );
        }
        match input {
            Input::Tick => {
                self.ticks += 1;
                self.within = 0;
            }
            Input::Receive { from, msg } => {
                let peer = self.lane(from.to_string());
                self.push(EventKind::Recv, Some(0), Some(peer), describe(msg));
            }
            Input::Propose(cmd) => self.push(
                EventKind::Invoke,
                None,
                None,
                format!("propose request {}/{}", cmd.client, cmd.seq),
            ),
            Input::Checkpoint => self.push(
                EventKind::Fault,
                None,
                None,
                "checkpoint: the driver asked for a compaction".into(),
            ),
            Input::Read { client, id, .. } => self.push(
                EventKind::Invoke,
                None,
                None,
                format!("read {id} of client {client}"),
            ),
            Input::Transfer { to } => self.push(
                EventKind::Fault,
                None,
                None,
                format!("transfer: hand the lead to {to}"),
            ),
            Input::Reconfigure { members } => self.push(
                EventKind::Fault,
                None,
                None,
                format!("reconfigure: members {members:?}"),
            ),
        }
        for action in actions {
            match action {
                Action::Send { to, msg } => {
                    let lane = self.lane(to.to_string());
                    self.push(
                        EventKind::Recv,
                        Some(lane),
                        Some(0),
                        format!("{} (sent to {to})", describe(msg)),
                    );
                }
                Action::Reply {
                    client, seq, slot, ..
                } => self.push(
                    EventKind::Complete,
                    None,
                    None,
                    format!("reply to request {client}/{seq}: slot {slot}"),
                ),
                Action::Event(Event::Decided { slot }) => self.push(
                    EventKind::Chosen,
                    Some(0),
                    None,
                    format!("slot {slot} chosen"),
                ),
                _ => {}
            }
        }
    }
}
