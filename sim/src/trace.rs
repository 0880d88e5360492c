//! What happened in a run: a running hash of every step (always on, to prove
//! runs repeat bit for bit) and, when asked, the full event list, which exports
//! as JSON lines and draws as a self-contained SVG/HTML space-time diagram.

use serde::Serialize;
use std::fmt::Write as _;
use std::io::{self, Write};

/// A 64-bit running hash of the run (FNV-1a over 64-bit words, then mixed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceHash(u64);

impl Default for TraceHash {
    fn default() -> Self {
        TraceHash(0xCBF2_9CE4_8422_2325)
    }
}

impl TraceHash {
    /// Folds one word in.
    #[inline]
    pub fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x0000_0100_0000_01B3);
    }

    /// The hash so far.
    pub fn value(&self) -> u64 {
        crate::model::mix(self.0)
    }
}

/// What kind of thing a [`TraceEvent`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A node received a message from `peer`, sent at `sent_at`.
    Recv,
    /// A message from `peer` to `node` was lost (dropped, cut, or the node was down).
    Lost,
    /// A node ticked.
    Tick,
    /// A node's pending writes became durable.
    Sync,
    /// A node crashed.
    Crash,
    /// A node restarted from its disk.
    Restart,
    /// A node stalled.
    Pause,
    /// The oracle saw a slot chosen.
    Chosen,
    /// A client submitted (or resubmitted) a request to `node`.
    Invoke,
    /// A client received the first reply to a request.
    Complete,
    /// A network fault started (`label` says which).
    Fault,
    /// Every fault stopped.
    Heal,
    /// An invariant broke here.
    Violation,
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceEvent {
    /// Simulation step (events processed so far).
    pub step: u64,
    /// Logical time, in [`crate::TICK_UNITS`] per tick.
    pub t: u64,
    /// What happened.
    pub kind: EventKind,
    /// The node it happened at (index from 0), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<usize>,
    /// The other node of a message, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<usize>,
    /// When the message was sent, for messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<u64>,
    /// A short human description.
    pub label: String,
}

/// Writes `events` as JSON lines, one object per event.
pub fn write_json_lines(events: &[TraceEvent], mut w: impl Write) -> io::Result<()> {
    for e in events {
        serde_json::to_writer(&mut w, e)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Most events drawn in one diagram; a browser chokes on much more.
pub const DRAW_EVENTS_MAX: usize = 20_000;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Draws a space-time diagram: one vertical lane per node (plus one for the
/// clients), time flowing down, an arrow per delivered message, a cross per
/// lost one, and marks for crashes, restarts, pauses, chosen slots and client
/// requests. Hovering any mark shows its label. Ticks and syncs are left out.
pub fn draw_html(events: &[TraceEvent], lanes: &[String], title: &str) -> String {
    let nodes = lanes.len();
    let shown: Vec<&TraceEvent> = events
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::Tick | EventKind::Sync))
        .take(DRAW_EVENTS_MAX)
        .collect();
    let t_end = shown.iter().map(|e| e.t).max().unwrap_or(0).max(1);
    let t_start = shown
        .iter()
        .map(|e| e.sent_at.unwrap_or(e.t))
        .min()
        .unwrap_or(0);
    let lane_gap = 160.0;
    let left = 80.0;
    let top = 60.0;
    // About 3 px per message keeps arrows apart without a huge page.
    let height = (shown.len() as f64 * 3.0).clamp(400.0, 60_000.0);
    let span = (t_end - t_start).max(1) as f64;
    let y = |t: u64| top + (t.saturating_sub(t_start)) as f64 / span * height;
    let x = |lane: usize| left + lane as f64 * lane_gap;
    let client_lane = nodes;
    let width = x(nodes) + 120.0;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" font-family="monospace" font-size="11">"#,
        height + top + 40.0
    );
    svg += r##"<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z" fill="#456"/></marker></defs>"##;
    for lane in 0..=nodes {
        let name = lanes.get(lane).map_or("clients", String::as_str);
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="middle" font-weight="bold">{name}</text><line x1="{0}" y1="{}" x2="{0}" y2="{}" stroke="#bbb"/>"##,
            x(lane),
            top - 20.0,
            top,
            top + height
        );
    }
    for e in &shown {
        let label = escape(&format!("t={} step={} {}", e.t, e.step, e.label));
        let node = e.node.unwrap_or(client_lane);
        match e.kind {
            EventKind::Recv | EventKind::Lost => {
                let (Some(peer), Some(sent)) = (e.peer, e.sent_at) else {
                    continue;
                };
                let (x1, y1, x2, y2) = (x(peer), y(sent), x(node), y(e.t));
                if e.kind == EventKind::Recv {
                    let _ = write!(
                        svg,
                        r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="#456" stroke-width="0.7" marker-end="url(#a)"><title>{label}</title></line>"##
                    );
                } else {
                    let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
                    let _ = write!(
                        svg,
                        r##"<g><title>{label}</title><line x1="{x1:.1}" y1="{y1:.1}" x2="{mx:.1}" y2="{my:.1}" stroke="#c66" stroke-width="0.7" stroke-dasharray="3,2"/><text x="{mx:.1}" y="{:.1}" fill="#c00" text-anchor="middle">x</text></g>"##,
                        my + 4.0
                    );
                }
            }
            EventKind::Crash | EventKind::Restart | EventKind::Pause => {
                let colour = match e.kind {
                    EventKind::Crash => "#d00",
                    EventKind::Restart => "#0a0",
                    _ => "#d80",
                };
                let _ = write!(
                    svg,
                    r#"<g><title>{label}</title><rect x="{:.1}" y="{:.1}" width="16" height="8" fill="{colour}"/></g>"#,
                    x(node) - 8.0,
                    y(e.t) - 4.0
                );
            }
            EventKind::Chosen => {
                let _ = write!(
                    svg,
                    r##"<g><title>{label}</title><circle cx="{:.1}" cy="{:.1}" r="4" fill="#06c"/></g>"##,
                    x(node),
                    y(e.t)
                );
            }
            EventKind::Invoke | EventKind::Complete => {
                let colour = if e.kind == EventKind::Invoke {
                    "#888"
                } else {
                    "#093"
                };
                let _ = write!(
                    svg,
                    r#"<g><title>{label}</title><circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/></g>"#,
                    x(client_lane),
                    y(e.t)
                );
            }
            EventKind::Fault | EventKind::Heal | EventKind::Violation => {
                let colour = match e.kind {
                    EventKind::Violation => "#f00",
                    EventKind::Heal => "#0a0",
                    _ => "#c90",
                };
                let _ = write!(
                    svg,
                    r#"<g><title>{label}</title><line x1="{}" y1="{:.1}" x2="{:.1}" y2="{1:.1}" stroke="{colour}" stroke-width="2" stroke-dasharray="6,3"/><text x="{}" y="{:.1}" fill="{colour}">{}</text></g>"#,
                    left - 60.0,
                    y(e.t),
                    x(nodes) + 40.0,
                    left - 60.0,
                    y(e.t) - 3.0,
                    escape(&e.label.chars().take(60).collect::<String>())
                );
            }
            EventKind::Tick | EventKind::Sync => {}
        }
    }
    svg += "</svg>";
    let truncated = if events.len() > shown.len() {
        format!(
            "<p>Showing the first {} of {} events.</p>",
            shown.len(),
            events.len()
        )
    } else {
        String::new()
    };
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;margin:16px}}</style></head><body>\
         <h1>{t}</h1><p>Time flows down. Arrows: delivered messages; dashed red with x: lost; \
         red/green/orange boxes: crash/restart/pause; blue dots: slots chosen; grey/green dots: \
         client invoke/complete. Hover for details.</p>{truncated}{svg}</body></html>\n",
        t = escape(title)
    )
}

/// A one-line description of a message, for traces and diagrams.
pub fn describe<C, P>(msg: &paxos_core::Message<C, P>) -> String {
    use paxos_core::Message;
    match msg {
        Message::Prepare { ballot, from_slot } => format!("prepare {ballot} from slot {from_slot}"),
        Message::Promise {
            ballot,
            trimmed_below,
            accepted,
        } => format!(
            "promise {ballot} ({} accepted, trimmed below {trimmed_below})",
            accepted.len()
        ),
        Message::Nack { ballot, promised } => format!("nack {ballot}: promised {promised}"),
        Message::Accept {
            ballot,
            slot,
            value,
            commit,
        } => format!(
            "accept {ballot} slot {slot} ({} cmds) commit {commit}",
            value.commands().len()
        ),
        Message::Accepted { ballot, slot, .. } => format!("accepted {ballot} slot {slot}"),
        Message::Heartbeat {
            ballot,
            commit,
            beat,
        } => format!("heartbeat {ballot} commit {commit} beat {beat}"),
        Message::HeartbeatAck { ballot, beat } => format!("heartbeat-ack {ballot} beat {beat}"),
        Message::CatchUp {
            from_slot,
            to_slot,
            query,
        } => format!("catch-up {from_slot}..{to_slot} (query {query})"),
        Message::Votes {
            first_slot,
            query,
            votes,
        } => format!(
            "votes {first_slot}..{} (query {query})",
            first_slot + votes.len() as u64
        ),
        Message::Decided { first_slot, values } => {
            format!("decided {first_slot}..{}", first_slot + values.len() as u64)
        }
        Message::Forward { commands } => format!("forward {} cmds", commands.len()),
        Message::Snapshot(_) => "snapshot".to_string(),
        Message::Refused {
            client,
            seq,
            reason,
        } => format!("refused client {client} request {seq}: {reason:?}"),
        Message::ReadIndex { client, id } => format!("read-index for read {id} of client {client}"),
        Message::ReadIndexReply {
            client,
            id,
            index,
            leader,
        } => match index {
            Some(index) => {
                format!("read-index-reply for read {id} of client {client}: index {index}")
            }
            None => format!(
                "read-index-reply for read {id} of client {client}: not leader (leader {leader:?})"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, t: u64) -> TraceEvent {
        TraceEvent {
            step: t,
            t,
            kind,
            node: Some(1),
            peer: Some(0),
            sent_at: Some(t.saturating_sub(5)),
            label: "accept <3.1>".into(),
        }
    }

    #[test]
    fn json_lines_have_one_object_per_event() {
        let events = [event(EventKind::Recv, 10), event(EventKind::Crash, 20)];
        let mut out = Vec::new();
        write_json_lines(&events, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["kind"], "crash");
        assert_eq!(v["t"], 20);
    }

    #[test]
    fn drawing_is_self_contained_and_escapes_labels() {
        let events = [event(EventKind::Recv, 10), event(EventKind::Chosen, 20)];
        let lanes: Vec<String> = (0..3).map(|i| format!("node {i}")).collect();
        let html = draw_html(&events, &lanes, "seed 1");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<svg"));
        assert!(html.contains("accept &lt;3.1&gt;"));
        assert!(!html.contains("<script src"), "no external resources");
        assert_eq!(html.matches("marker-end").count(), 1, "one arrow");
    }
}
