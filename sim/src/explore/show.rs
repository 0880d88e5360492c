//! Short texts for the moves of a counterexample: ballots as `round.proposer`,
//! commands as `c1`, `c2`, ...

use super::Op;
use paxos_core::{Message, PValue, Record, Value};

/// `no-op`, `c1`, or `[c1 c2]`.
pub(super) fn show_value(v: &Value<Op>) -> String {
    match v {
        Value::Noop => "no-op".to_string(),
        Value::One(c) => format!("c{}", c.op),
        Value::Batch(cs) => {
            let names: Vec<String> = cs.iter().map(|c| format!("c{}", c.op)).collect();
            format!("[{}]", names.join(" "))
        }
        Value::Reconfigure(members) => {
            let names: Vec<String> = members.iter().map(|m| m.to_string()).collect();
            format!("stop-sign [{}]", names.join(" "))
        }
    }
}

fn show_pvalue(pv: &PValue<Op>) -> String {
    format!(
        "slot {} = {} in {}",
        pv.slot,
        show_value(&pv.value),
        pv.ballot
    )
}

/// One message, with every field that matters to safety.
pub(super) fn show_msg(m: &Message<Op>) -> String {
    match m {
        Message::Prepare { ballot, from_slot } => format!("prepare {ballot} from slot {from_slot}"),
        Message::Promise {
            ballot,
            trimmed_below,
            accepted,
        } => {
            let votes: Vec<String> = accepted.iter().map(show_pvalue).collect();
            let trimmed = if *trimmed_below > 0 {
                format!(", trimmed below {trimmed_below}")
            } else {
                String::new()
            };
            format!("promise {ballot} (votes: [{}]{trimmed})", votes.join(", "))
        }
        Message::Nack { ballot, promised } => format!("nack {ballot} (promised {promised})"),
        Message::Accept {
            ballot,
            slot,
            value,
            commit,
        } => format!(
            "accept {ballot} slot {slot} = {} (commit {commit})",
            show_value(value)
        ),
        Message::Accepted {
            ballot,
            slot,
            value: Some(value),
        } => format!("accepted {ballot} slot {slot} = {}", show_value(value)),
        Message::Accepted { ballot, slot, .. } => format!("accepted {ballot} slot {slot}"),
        // The explorer sends every heartbeat with beat 0 (see the module
        // doc of `explore`), so the beat is not shown.
        Message::Heartbeat { ballot, commit, .. } => format!("heartbeat {ballot} commit {commit}"),
        Message::HeartbeatAck { ballot, .. } => format!("heartbeat-ack {ballot}"),
        Message::CatchUp {
            from_slot,
            to_slot,
            query,
        } => format!("catch-up slots {from_slot}..{to_slot} (query {query})"),
        Message::Votes {
            first_slot,
            query,
            votes,
        } => {
            let votes: Vec<String> = votes
                .iter()
                .map(|v| match v {
                    Some((b, v)) => format!("{} in {b}", show_value(v)),
                    None => "none".to_string(),
                })
                .collect();
            format!(
                "votes from slot {first_slot} (query {query}): [{}]",
                votes.join(", ")
            )
        }
        Message::Decided { first_slot, values } => {
            let values: Vec<String> = values.iter().map(show_value).collect();
            format!("decided from slot {first_slot}: [{}]", values.join(", "))
        }
        other => other.kind().to_string(),
    }
}

/// One durable record.
pub(super) fn show_record(r: &Record<Op>) -> String {
    match r {
        Record::Promised(b) => format!("promised {b}"),
        Record::Accepted(pv) => format!("accepted {}", show_pvalue(pv)),
        Record::Trimmed(s) => format!("trimmed below {s}"),
        Record::Campaign(b) => format!("campaign {b}"),
        Record::Rejoining => "rejoining".to_string(),
        Record::Rejoined => "rejoined".to_string(),
    }
}
