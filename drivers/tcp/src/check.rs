//! Checks on a recorded client history: what the harness asserts after every
//! scenario and the kill test after every run. Each check is named after the
//! property it states and returns the violations it found, in words.

use std::collections::HashMap;
use std::time::Instant;

/// One `Put` as a client saw it.
#[derive(Clone, Debug)]
pub struct PutRecord {
    /// The message.
    pub text: String,
    /// When the first attempt was sent (`None`: never sent).
    pub invoked: Option<Instant>,
    /// When it was acknowledged, and the log index the acknowledgement gave.
    pub acked: Option<(Instant, u64)>,
}

/// One `Get` as a client saw it.
#[derive(Clone, Debug)]
pub struct GetRecord {
    /// Who asked (for messages).
    pub via: String,
    /// When the request was sent.
    pub invoked: Instant,
    /// When the (last page of the) answer arrived.
    pub completed: Instant,
    /// The log it returned.
    pub log: Vec<String>,
}

/// Everything the clients did.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Every put, sent or not.
    pub puts: Vec<PutRecord>,
    /// Every completed get.
    pub gets: Vec<GetRecord>,
}

const SHOWN_MAX: usize = 5;

fn limit(mut v: Vec<String>) -> Vec<String> {
    if v.len() > SHOWN_MAX {
        let more = v.len() - SHOWN_MAX;
        v.truncate(SHOWN_MAX);
        v.push(format!("... and {more} more"));
    }
    v
}

/// Every two `Get` results are prefixes of one another.
pub fn check_get_prefixes(h: &History) -> Vec<String> {
    let mut by_len: Vec<&GetRecord> = h.gets.iter().collect();
    by_len.sort_by_key(|g| g.log.len());
    let out = by_len
        .windows(2)
        .filter(|w| !w[1].log.starts_with(&w[0].log))
        .map(|w| {
            let at = w[0]
                .log
                .iter()
                .zip(&w[1].log)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            format!(
                "logs diverge at index {at}: {} saw {:?}, {} saw {:?}",
                w[0].via,
                w[0].log.get(at),
                w[1].via,
                w[1].log.get(at)
            )
        })
        .collect();
    limit(out)
}

/// Every acknowledged `Put` is in every `Get` issued after its ack, at the
/// index its acknowledgement named.
pub fn check_acked_puts_visible(h: &History) -> Vec<String> {
    let mut out = Vec::new();
    for get in &h.gets {
        for put in &h.puts {
            let Some((acked, index)) = put.acked else {
                continue;
            };
            if acked >= get.invoked {
                continue;
            }
            if get.log.get(index as usize) != Some(&put.text) {
                out.push(format!(
                    "acknowledged put {:?} (index {index}) is missing from a later get via {} (log length {}, found {:?})",
                    put.text,
                    get.via,
                    get.log.len(),
                    get.log.get(index as usize)
                ));
            }
        }
    }
    limit(out)
}

/// No message appears more often than it was put, and nothing appears that
/// was never put.
pub fn check_no_duplicates_or_inventions(h: &History) -> Vec<String> {
    let mut sent: HashMap<&str, usize> = HashMap::new();
    for put in h.puts.iter().filter(|p| p.invoked.is_some()) {
        *sent.entry(put.text.as_str()).or_default() += 1;
    }
    let mut out = Vec::new();
    for get in &h.gets {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for text in &get.log {
            *seen.entry(text.as_str()).or_default() += 1;
        }
        for (text, n) in seen {
            match sent.get(text) {
                None => out.push(format!("{:?} in a get via {} was never put", text, get.via)),
                Some(&m) if n > m => out.push(format!(
                    "{text:?} appears {n} times in a get via {} but was put {m} times",
                    get.via
                )),
                _ => {}
            }
        }
    }
    out.sort();
    out.dedup();
    limit(out)
}

/// Real-time order: if put A was acknowledged before put B was invoked, A's
/// index is below B's; and a get that completed before a put was invoked
/// does not contain it (for messages put once). O(n log n).
pub fn check_linearizable(h: &History) -> Vec<String> {
    let mut out = Vec::new();
    let mut acked: Vec<(Instant, u64, &str)> = h
        .puts
        .iter()
        .filter_map(|p| p.acked.map(|(t, i)| (t, i, p.text.as_str())))
        .collect();
    acked.sort_by_key(|a| a.0);
    let mut invoked: Vec<(Instant, u64, &str)> = h
        .puts
        .iter()
        .filter_map(|p| Some((p.invoked?, p.acked?.1, p.text.as_str())))
        .collect();
    invoked.sort_by_key(|a| a.0);
    let mut i = 0;
    let mut max_before: Option<(u64, &str)> = None;
    for (t, index, text) in invoked {
        while i < acked.len() && acked[i].0 < t {
            if max_before.is_none_or(|(m, _)| acked[i].1 > m) {
                max_before = Some((acked[i].1, acked[i].2));
            }
            i += 1;
        }
        if let Some((m, earlier)) = max_before {
            if m >= index {
                out.push(format!(
                    "put {text:?} got index {index} though {earlier:?} (index {m}) was acknowledged before it was sent"
                ));
            }
        }
    }
    let mut count: HashMap<&str, usize> = HashMap::new();
    for p in &h.puts {
        *count.entry(p.text.as_str()).or_default() += 1;
    }
    for get in &h.gets {
        for put in &h.puts {
            let Some(inv) = put.invoked else { continue };
            if inv > get.completed && count[put.text.as_str()] == 1 && get.log.contains(&put.text) {
                out.push(format!(
                    "a get via {} that completed before put {:?} was sent already contains it",
                    get.via, put.text
                ));
            }
        }
    }
    limit(out)
}

/// The servers alive at the end hold the same log.
pub fn check_agreement(finals: &[(String, Vec<String>)]) -> Vec<String> {
    let Some((first_name, first)) = finals.first() else {
        return Vec::new();
    };
    finals[1..]
        .iter()
        .filter(|(_, log)| log != first)
        .map(|(name, log)| {
            format!(
                "{name} ends with {} messages, {first_name} with {}; they differ",
                log.len(),
                first.len()
            )
        })
        .collect()
}

/// All checks, as `(name, violations)`.
pub fn check_all(
    h: &History,
    finals: &[(String, Vec<String>)],
) -> Vec<(&'static str, Vec<String>)> {
    vec![
        ("gets are prefixes of one another", check_get_prefixes(h)),
        (
            "acknowledged puts are visible to later gets",
            check_acked_puts_visible(h),
        ),
        (
            "no duplicates, nothing invented",
            check_no_duplicates_or_inventions(h),
        ),
        ("real-time order is respected", check_linearizable(h)),
        ("surviving servers agree", check_agreement(finals)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn put(t0: Instant, text: &str, inv: u64, ack: Option<(u64, u64)>) -> PutRecord {
        PutRecord {
            text: text.into(),
            invoked: Some(at(t0, inv)),
            acked: ack.map(|(t, i)| (at(t0, t), i)),
        }
    }

    fn get(t0: Instant, inv: u64, done: u64, log: &[&str]) -> GetRecord {
        GetRecord {
            via: "c".into(),
            invoked: at(t0, inv),
            completed: at(t0, done),
            log: log.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_correct_history_passes_every_check() {
        let t0 = Instant::now();
        let h = History {
            puts: vec![
                put(t0, "a", 0, Some((10, 0))),
                put(t0, "b", 20, Some((30, 1))),
            ],
            gets: vec![get(t0, 15, 16, &["a"]), get(t0, 40, 41, &["a", "b"])],
        };
        let finals = vec![("s0".into(), vec!["a".into(), "b".into()]); 2];
        for (name, v) in check_all(&h, &finals) {
            assert!(v.is_empty(), "{name}: {v:?}");
        }
    }

    #[test]
    fn diverging_gets_are_caught() {
        let t0 = Instant::now();
        let h = History {
            puts: vec![put(t0, "a", 0, None), put(t0, "b", 0, None)],
            gets: vec![get(t0, 1, 2, &["a"]), get(t0, 1, 2, &["b", "a"])],
        };
        assert_eq!(check_get_prefixes(&h).len(), 1);
    }

    #[test]
    fn lost_acknowledged_put_is_caught() {
        let t0 = Instant::now();
        let h = History {
            puts: vec![put(t0, "a", 0, Some((10, 0)))],
            gets: vec![get(t0, 20, 21, &[])],
        };
        assert_eq!(check_acked_puts_visible(&h).len(), 1);
    }

    #[test]
    fn duplicate_and_invented_messages_are_caught() {
        let t0 = Instant::now();
        let h = History {
            puts: vec![put(t0, "a", 0, None)],
            gets: vec![get(t0, 20, 21, &["a", "a", "zzz"])],
        };
        assert_eq!(check_no_duplicates_or_inventions(&h).len(), 2);
    }

    #[test]
    fn reordered_acknowledged_puts_are_caught() {
        let t0 = Instant::now();
        let h = History {
            puts: vec![
                put(t0, "a", 0, Some((10, 1))),
                put(t0, "b", 20, Some((30, 0))),
            ],
            gets: vec![],
        };
        assert_eq!(check_linearizable(&h).len(), 1);
        let concurrent = History {
            puts: vec![
                put(t0, "a", 0, Some((10, 1))),
                put(t0, "b", 5, Some((30, 0))),
            ],
            gets: vec![],
        };
        assert!(
            check_linearizable(&concurrent).is_empty(),
            "overlapping puts may go either way"
        );
    }

    #[test]
    fn get_that_sees_the_future_is_caught() {
        let t0 = Instant::now();
        let h = History {
            puts: vec![put(t0, "a", 50, Some((60, 0)))],
            gets: vec![get(t0, 0, 10, &["a"])],
        };
        assert_eq!(check_linearizable(&h).len(), 1);
    }

    #[test]
    fn disagreeing_survivors_are_caught() {
        let finals = vec![("s0".into(), vec!["a".into()]), ("s1".into(), vec![])];
        assert_eq!(check_agreement(&finals).len(), 1);
    }
}
