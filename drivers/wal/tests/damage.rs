//! Property tests: random truncations and bit flips of valid logs, and random
//! bytes, never panic and are sorted into exactly the right outcome.
//!
//! Fixed seed and a small number of cases by default, so that CI is
//! repeatable; `PAXOS_PROPTEST_CASES` and `PAXOS_PROPTEST_SEED` change them:
//!
//! ```sh
//! PAXOS_PROPTEST_CASES=20000 PAXOS_PROPTEST_SEED=7 cargo test --release -p paxos-wal --test damage
//! ```

use paxos_wal::{DecodeError, Decoded, Format, Tag, Wal, FILE_HEADER_BYTES};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Vote {
    slot: u64,
    ballot: (u64, u32),
    value: Vec<u8>,
}

const FORMAT: Format = Format::new(Tag::new(*b"test-wal"), 1 << 12);

fn cases() -> u32 {
    std::env::var("PAXOS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config(cases: u32) -> Config {
    let seed = std::env::var("PAXOS_PROPTEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x3A1_5EED);
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

fn vote() -> impl Strategy<Value = Vote> {
    (
        any::<u64>(),
        any::<(u64, u32)>(),
        prop::collection::vec(any::<u8>(), 0..48),
    )
        .prop_map(|(slot, ballot, value)| Vote {
            slot,
            ballot,
            value,
        })
}

/// A valid log of `entries` and the `(start, end)` of each record.
fn encode(entries: &[Vote]) -> (Vec<u8>, Vec<(usize, usize)>) {
    let mut bytes = FORMAT.file_header().to_vec();
    let mut spans = Vec::new();
    for e in entries {
        let start = bytes.len();
        FORMAT.encode_record(e, &mut bytes).unwrap();
        spans.push((start, bytes.len()));
    }
    (bytes, spans)
}

/// The log cut at `cut` with `flips` (byte, bit) applied below the cut, and
/// the positions that changed.
fn damage(full: &[u8], cut: Index, flips: &[(Index, u8)]) -> (Vec<u8>, Vec<usize>) {
    let cut = cut.index(full.len() + 1);
    let mut bytes = full[..cut].to_vec();
    if cut > 0 {
        for (at, bit) in flips {
            bytes[at.index(cut)] ^= 1 << (bit % 8);
        }
    }
    let changed = (0..cut).filter(|&i| bytes[i] != full[i]).collect();
    (bytes, changed)
}

/// What decoding the damaged log must give. CRC32C catches up to four
/// flipped bits in records this short, so the outcome is exact.
fn expected(
    entries: &[Vote],
    spans: &[(usize, usize)],
    cut: usize,
    changed: &[usize],
) -> Option<Result<Decoded<Vote>, DecodeError>> {
    if changed.first().is_some_and(|&p| p < FILE_HEADER_BYTES) {
        return None; // some header error; checked by the caller
    }
    if cut < FILE_HEADER_BYTES {
        return Some(Ok(torn_at(Vec::new(), 0, cut)));
    }
    let whole = spans.iter().take_while(|s| s.1 <= cut).count();
    let hit = |s: &(usize, usize)| changed.iter().any(|p| (s.0..s.1).contains(p));
    let first_hit = spans[..whole].iter().position(hit).unwrap_or(whole);
    let start = |i: usize| spans.get(i).map_or(cut, |s| s.0).min(cut);
    let valid = if first_hit == 0 {
        FILE_HEADER_BYTES
    } else {
        spans[first_hit - 1].1
    };
    if spans[first_hit.min(whole)..whole]
        .iter()
        .skip(1)
        .any(|s| !hit(s))
    {
        return Some(Err(DecodeError::Corrupt {
            offset: start(first_hit) as u64,
            damage: paxos_wal::Damage::PayloadChecksum, // compared by offset only
        }));
    }
    Some(Ok(torn_at(entries[..first_hit].to_vec(), valid, cut)))
}

fn torn_at(entries: Vec<Vote>, valid: usize, len: usize) -> Decoded<Vote> {
    Decoded {
        entries,
        valid_len: valid as u64,
        torn: (len > valid).then_some(paxos_wal::TornTail {
            offset: valid as u64,
            bytes: (len - valid) as u64,
            cause: paxos_wal::TornCause::CutShort, // compared without the cause
        }),
    }
}

fn check_outcome(
    got: &Result<Decoded<Vote>, DecodeError>,
    want: Option<Result<Decoded<Vote>, DecodeError>>,
) -> Result<(), TestCaseError> {
    let Some(want) = want else {
        prop_assert!(
            matches!(
                got,
                Err(DecodeError::BadMagic
                    | DecodeError::UnsupportedVersion { .. }
                    | DecodeError::WrongTag { .. }
                    | DecodeError::Corrupt { offset: 0, .. })
            ),
            "a damaged file header gave {:?}",
            got
        );
        return Ok(());
    };
    match (got, &want) {
        (Ok(g), Ok(w)) => {
            prop_assert_eq!(&g.entries, &w.entries);
            prop_assert_eq!(g.valid_len, w.valid_len);
            prop_assert_eq!(
                g.torn.map(|t| (t.offset, t.bytes)),
                w.torn.map(|t| (t.offset, t.bytes))
            );
        }
        (
            Err(DecodeError::Corrupt { offset: g, .. }),
            Err(DecodeError::Corrupt { offset: w, .. }),
        ) => prop_assert_eq!(g, w),
        _ => prop_assert!(false, "got {:?}, expected {:?}", got, want),
    }
    Ok(())
}

/// Whatever decodes must be a clean log once cut to its valid length, and
/// must encode back to a log that decodes to the same entries.
fn check_round_trip(bytes: &[u8], d: &Decoded<Vote>) -> Result<(), TestCaseError> {
    let valid = usize::try_from(d.valid_len).unwrap();
    prop_assert!(valid <= bytes.len());
    let rest = (bytes.len() - valid) as u64;
    prop_assert_eq!(d.torn.map_or(0, |t| t.bytes), rest);
    let cut: Decoded<Vote> = FORMAT.decode(&bytes[..valid]).unwrap();
    prop_assert_eq!(&cut.entries, &d.entries);
    prop_assert_eq!(cut.torn, None);
    let again = FORMAT.encode_log(&d.entries).unwrap();
    let back: Decoded<Vote> = FORMAT.decode(&again).unwrap();
    prop_assert_eq!(&back.entries, &d.entries);
    prop_assert_eq!(back.torn, None);
    Ok(())
}

proptest! {
    #![proptest_config(config(cases()))]

    /// Cuts and up to four flipped bits: exactly the records before the first
    /// damage survive, and damage is refused when a sound record follows it.
    #[test]
    fn truncations_and_bit_flips_are_sorted_exactly(
        entries in prop::collection::vec(vote(), 0..24),
        cut in any::<Index>(),
        flips in prop::collection::vec((any::<Index>(), any::<u8>()), 0..=4),
    ) {
        let (full, spans) = encode(&entries);
        let (bytes, changed) = damage(&full, cut, &flips);
        let got = FORMAT.decode::<Vote>(&bytes);
        check_outcome(&got, expected(&entries, &spans, bytes.len(), &changed))?;
        if let Ok(d) = &got {
            check_round_trip(&bytes, d)?;
        }
    }

    /// Arbitrary bytes, behind a valid file header or not, never panic.
    #[test]
    fn random_bytes_never_panic(
        header in any::<bool>(),
        junk in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = if header { FORMAT.file_header().to_vec() } else { Vec::new() };
        bytes.extend_from_slice(&junk);
        if let Ok(d) = FORMAT.decode::<Vote>(&bytes) {
            check_round_trip(&bytes, &d)?;
        }
    }
}

proptest! {
    #![proptest_config(config((cases() / 8).max(16)))]

    /// The same on files: `open` agrees with `decode`, leaves a refused file
    /// alone, and a log it repaired opens cleanly the next time.
    #[test]
    fn open_agrees_with_decode_and_repairs_for_good(
        entries in prop::collection::vec(vote(), 0..12),
        cut in any::<Index>(),
        flips in prop::collection::vec((any::<Index>(), any::<u8>()), 0..=2),
    ) {
        let (full, _) = encode(&entries);
        let (bytes, _) = damage(&full, cut, &flips);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("votes.wal");
        std::fs::write(&path, &bytes).unwrap();
        let decoded = FORMAT.decode::<Vote>(&bytes);
        // Bound, not matched in place: the first Wal must be gone (and its
        // lock with it) before the second open.
        let opened = Wal::<Vote>::open(&path, FORMAT).map(|(_, rec)| rec);
        match (opened, decoded) {
            (Ok(rec), Ok(d)) => {
                prop_assert_eq!(&rec.entries, &d.entries);
                prop_assert_eq!(rec.torn, d.torn);
                let (_, again) = Wal::<Vote>::open(&path, FORMAT).unwrap();
                prop_assert_eq!(again.entries, d.entries);
                prop_assert_eq!(again.torn, None);
            }
            (Err(e), Err(d)) => {
                prop_assert_eq!(e.to_string(), paxos_wal::WalError::from_decode(&path, d).to_string());
                prop_assert_eq!(std::fs::read(&path).unwrap(), bytes);
            }
            (got, want) => prop_assert!(false, "open gave {:?}, decode {:?}", got, want),
        }
    }
}
