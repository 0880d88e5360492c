//! What happened in a run: a running hash of every step (always on, to prove
//! runs repeat bit for bit) and, when asked, the full event list, which exports
//! as JSON lines and draws as a self-contained SVG/HTML space-time diagram.

use crate::options::TICK_UNITS;
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

/// Splits `text` into lines of at most `width` characters at spaces (a
/// word longer than that gets a line of its own). Nothing is cut.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// What a drawing holds, for a caller to report (and a test to check).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drawn {
    /// Lanes (processes, plus one for the clients).
    pub lanes: usize,
    /// Arrows: delivered messages.
    pub arrows: usize,
    /// Lost messages.
    pub lost: usize,
    /// Events drawn in all.
    pub events: usize,
}

/// Draws a space-time diagram: one vertical lane per node (plus one for the
/// clients), time flowing down along an axis in ticks, an arrow per
/// delivered message labelled with its kind, a cross per lost one, and
/// marks for crashes, restarts, pauses, chosen slots and client requests; a
/// legend on top and any violation written out in full. Hovering any mark
/// shows its details. Ticks and syncs are left out.
///
/// Lanes carry `class="lane"` and arrows `class="arrow"`; once the page
/// has loaded, an inline script writes how many it drew into the element
/// `#rendered` (a check that a browser really rendered it).
pub fn draw_html(events: &[TraceEvent], lanes: &[String], title: &str) -> String {
    draw(events, lanes, title).0
}

/// [`draw_html`], with counts of what it drew.
pub fn draw(events: &[TraceEvent], lanes: &[String], title: &str) -> (String, Drawn) {
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
    let lane_gap = 170.0;
    let left = 110.0;
    let top = 60.0;
    // About 6 px per event keeps arrows and their labels apart.
    let height = (shown.len() as f64 * 6.0).clamp(400.0, 120_000.0);
    let span = (t_end - t_start).max(1) as f64;
    let y = |t: u64| top + (t.saturating_sub(t_start)) as f64 / span * height;
    let x = |lane: usize| left + lane as f64 * lane_gap;
    let client_lane = nodes;
    let width = x(nodes) + 140.0;
    let mut drawn = Drawn {
        lanes: nodes + 1,
        events: shown.len(),
        ..Drawn::default()
    };

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="diagram" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" font-family="monospace" font-size="11">"#,
        height + top + 40.0
    );
    svg += r##"<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z" fill="#456"/></marker></defs>"##;
    // The time axis: a label and a faint line every `step` ticks, with
    // `step` chosen so that labels stand at least 40 px apart.
    let ticks_span = span / TICK_UNITS as f64;
    let px_per_tick = height / ticks_span.max(1e-9);
    let step = [
        1u64, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000,
    ]
    .into_iter()
    .find(|s| *s as f64 * px_per_tick >= 40.0)
    .unwrap_or(20_000);
    let first_tick = t_start.div_ceil(TICK_UNITS);
    let _ = write!(
        svg,
        r##"<g class="axis"><text x="8" y="{:.1}" font-weight="bold">time (ticks)</text>"##,
        top - 20.0
    );
    let mut tick = first_tick.div_ceil(step) * step;
    while tick * TICK_UNITS <= t_end {
        let ty = y(tick * TICK_UNITS);
        let _ = write!(
            svg,
            r##"<line x1="{:.1}" y1="{ty:.1}" x2="{:.1}" y2="{ty:.1}" stroke="#eee"/><text x="8" y="{:.1}" fill="#666">tick {tick}</text>"##,
            left - 40.0,
            x(nodes) + 40.0,
            ty + 4.0
        );
        tick += step;
    }
    svg += "</g>";
    for lane in 0..=nodes {
        let name = lanes.get(lane).map_or("clients", String::as_str);
        let _ = write!(
            svg,
            r##"<g class="lane"><text x="{}" y="{}" text-anchor="middle" font-weight="bold">{}</text><line x1="{0}" y1="{}" x2="{0}" y2="{}" stroke="#bbb"/></g>"##,
            x(lane),
            top - 20.0,
            escape(name),
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
                let kind = escape(e.label.split_whitespace().next().unwrap_or(""));
                if e.kind == EventKind::Recv {
                    drawn.arrows += 1;
                    // The kind at a third of the way, on the sender's side,
                    // where arrows from one send fan out.
                    let (lx, ly) = (x1 + (x2 - x1) / 3.0, y1 + (y2 - y1) / 3.0 - 2.0);
                    let _ = write!(
                        svg,
                        r##"<g class="arrow"><title>{label}</title><line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="#456" stroke-width="0.7" marker-end="url(#a)"/><text x="{lx:.1}" y="{ly:.1}" font-size="9" fill="#345" text-anchor="middle">{kind}</text></g>"##
                    );
                } else {
                    drawn.lost += 1;
                    let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
                    let _ = write!(
                        svg,
                        r##"<g class="lost"><title>{label}</title><line x1="{x1:.1}" y1="{y1:.1}" x2="{mx:.1}" y2="{my:.1}" stroke="#c66" stroke-width="0.7" stroke-dasharray="3,2"/><text x="{mx:.1}" y="{:.1}" fill="#c00" text-anchor="middle">x {kind}</text></g>"##,
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
                let ly = y(e.t);
                let _ = write!(
                    svg,
                    r#"<g><title>{label}</title><line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2" stroke-dasharray="6,3"/><text x="{:.1}" y="{:.1}" fill="{colour}">"#,
                    left - 40.0,
                    x(nodes) + 40.0,
                    left - 30.0,
                    ly - 3.0 - 12.0 * (wrap(&e.label, 110).len().saturating_sub(1)) as f64,
                );
                // The whole text, wrapped at spaces: never cut.
                for (i, line) in wrap(&e.label, 110).iter().enumerate() {
                    let _ = write!(
                        svg,
                        r#"<tspan x="{:.1}" dy="{}">{}</tspan>"#,
                        left - 30.0,
                        if i == 0 { 0 } else { 12 },
                        escape(line)
                    );
                }
                svg += "</text></g>";
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
    let violations: String = shown
        .iter()
        .filter(|e| e.kind == EventKind::Violation)
        .map(|e| {
            format!(
                "<p class=\"violation\"><b>Violation.</b> {}</p>",
                escape(&e.label)
            )
        })
        .collect();
    let legend = r##"<svg class="legend" xmlns="http://www.w3.org/2000/svg" width="980" height="44" font-family="sans-serif" font-size="12">
<defs><marker id="la" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z" fill="#456"/></marker></defs>
<line x1="5" y1="12" x2="45" y2="12" stroke="#456" marker-end="url(#la)"/><text x="50" y="16">message delivered (its kind on the arrow)</text>
<line x1="300" y1="12" x2="330" y2="12" stroke="#c66" stroke-dasharray="3,2"/><text x="334" y="16" fill="#c00">x message lost</text>
<rect x="440" y="8" width="16" height="8" fill="#d00"/><text x="460" y="16">crash</text>
<rect x="510" y="8" width="16" height="8" fill="#0a0"/><text x="530" y="16">restart</text>
<rect x="590" y="8" width="16" height="8" fill="#d80"/><text x="610" y="16">pause</text>
<circle cx="675" cy="12" r="4" fill="#06c"/><text x="684" y="16">slot chosen</text>
<circle cx="775" cy="12" r="3" fill="#888"/><text x="782" y="16">client request</text>
<circle cx="885" cy="12" r="3" fill="#093"/><text x="892" y="16">reply</text>
<line x1="5" y1="34" x2="45" y2="34" stroke="#c90" stroke-width="2" stroke-dasharray="6,3"/><text x="50" y="38">network fault starts</text>
<line x1="200" y1="34" x2="240" y2="34" stroke="#0a0" stroke-width="2" stroke-dasharray="6,3"/><text x="245" y="38">every fault healed</text>
<line x1="390" y1="34" x2="430" y2="34" stroke="#f00" stroke-width="2" stroke-dasharray="6,3"/><text x="435" y="38">invariant violated (full text above the diagram)</text>
</svg>"##;
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;margin:16px}} .violation{{color:#b00;max-width:70em}}</style></head><body>\
         <h1>{t}</h1><p>Time flows down, in ticks of the simulated clock (left). \
         Hover any mark for its details.</p>{legend}{violations}{truncated}\
         <p id=\"rendered\"></p>{svg}\
         <script>window.addEventListener('load',function(){{var s=document.getElementById('diagram');\
         var b=s.getBBox();document.getElementById('rendered').textContent='rendered: lanes='+\
         s.querySelectorAll('.lane').length+' arrows='+s.querySelectorAll('.arrow').length+\
         ' width='+Math.round(b.width)+' height='+Math.round(b.height);}});</script></body></html>\n",
        t = escape(title)
    );
    (html, drawn)
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
        Message::Handoff { ballot, to } => format!("handoff {ballot} to {to}"),
        Message::AskLead => "ask-lead".to_string(),
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
        assert_eq!(html.matches("class=\"arrow\"").count(), 1, "one arrow");
        assert_eq!(
            html.matches("class=\"lane\"").count(),
            4,
            "three nodes and the clients"
        );
        assert!(html.contains(">accept</text>"), "the kind is on the arrow");
        assert!(html.contains("time (ticks)"), "a time axis");
    }

    #[test]
    fn a_violation_is_drawn_in_full_and_wrapped_at_spaces() {
        let text =
            "agreement violated at step 805 (t=80241): node 0 delivered request 3/4 in slot 2, \
                    but the chosen value there is a batch of 2 requests: 1/1, 2/7";
        let mut v = event(EventKind::Violation, 30);
        v.label = text.into();
        let html = draw_html(&[v], &["node 0".to_string()], "seed 1");
        assert!(
            html.contains(&escape(text)),
            "the whole text, above the diagram"
        );
        let lines = wrap(text, 40);
        assert!(lines.iter().all(|l| l.chars().count() <= 40));
        assert_eq!(
            lines.join(" "),
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
}
