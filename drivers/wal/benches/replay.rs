//! Recovery speed: writes N vote-shaped records, then times `Wal::open` (lock,
//! read, decode) against a raw sequential `std::fs::read` of the same file.
//!
//! `cargo bench -p paxos-wal --bench replay [-- ENTRIES]` (default 1 000 000).
//! It prints figures and asserts nothing about time.

use paxos_wal::{Format, Tag, Wal};
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Shaped like a Paxos vote: slot, ballot (round, node), a small value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Vote {
    slot: u64,
    ballot: (u64, u32),
    value: Vec<u8>,
}

const FORMAT: Format = Format::new(Tag::new(*b"benchlog"), 1 << 20);
const RUNS: usize = 5;

fn main() {
    let entries: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("bench.wal");

    let started = Instant::now();
    {
        let (mut wal, _) = Wal::<Vote>::open(&path, FORMAT).expect("open");
        for slot in 0..entries {
            let vote = Vote {
                slot: 1_000_000_000 + slot,
                ballot: (3 + slot / 100_000, 2),
                value: format!("value-{slot:010}").into_bytes(),
            };
            wal.append(&vote).expect("append");
        }
        wal.sync().expect("sync");
    }
    let write = started.elapsed();
    let bytes = std::fs::metadata(&path).expect("metadata").len();
    println!(
        "wrote {entries} entries, {:.1} MB ({:.1} bytes/entry) in {:.2} s with one sync, in {}",
        bytes as f64 / 1e6,
        bytes as f64 / entries as f64,
        write.as_secs_f64(),
        dir.path().display()
    );

    // Interleaved, so both see the same page cache and machine load.
    let mut opens = Vec::new();
    let mut reads = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let data = std::fs::read(&path).expect("read");
        black_box(&data);
        reads.push(t.elapsed());
        drop(data);

        let t = Instant::now();
        let (wal, recovery) = Wal::<Vote>::open(&path, FORMAT).expect("open");
        let took = t.elapsed();
        assert_eq!(
            recovery.entries.len() as u64,
            entries,
            "every entry is back"
        );
        black_box((&wal, &recovery));
        opens.push(took);
    }
    let (open, read) = (median(&mut opens), median(&mut reads));
    let mb = bytes as f64 / 1e6;
    println!(
        "open (replay): median {:7.1} ms  {:6.2} M entries/s  {:7.0} MB/s  (best {:.1} ms)",
        ms(open),
        entries as f64 / open.as_secs_f64() / 1e6,
        mb / open.as_secs_f64(),
        ms(opens[0]),
    );
    println!(
        "fs::read:      median {:7.1} ms                      {:7.0} MB/s  (best {:.1} ms)",
        ms(read),
        mb / read.as_secs_f64(),
        ms(reads[0]),
    );
    println!(
        "open / read: {:.1}x  ({RUNS} runs each, medians)",
        open.as_secs_f64() / read.as_secs_f64()
    );
}

/// Sorts `times` and returns the median.
fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
