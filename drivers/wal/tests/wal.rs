//! The log on real files in a temporary directory: round trip, group commit,
//! every form of torn tail, corruption, foreign files, the lock and rewrite.

use paxos_wal::{
    lock_path, temp_path, Damage, Format, Tag, TornCause, TornTail, Wal, WalError,
    FILE_HEADER_BYTES, RECORD_HEADER_BYTES,
};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// Shaped like a Paxos vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Vote {
    slot: u64,
    ballot: (u64, u32),
    value: Vec<u8>,
}

const FORMAT: Format = Format::new(Tag::new(*b"test-wal"), 1 << 16);
const HEADER: u64 = FILE_HEADER_BYTES as u64;

fn vote(slot: u64) -> Vote {
    Vote {
        slot,
        ballot: (slot / 3 + 1, 2),
        value: format!("value {slot}").into_bytes(),
    }
}

fn votes(n: u64) -> Vec<Vote> {
    (0..n).map(vote).collect()
}

fn open(path: &Path) -> Result<(Wal<Vote>, paxos_wal::Recovery<Vote>), WalError> {
    Wal::open(path, FORMAT)
}

/// A log at `dir/votes.wal` holding `entries`; returns its path and where
/// each record starts.
fn write_log(dir: &Path, entries: &[Vote]) -> (PathBuf, Vec<u64>) {
    let path = dir.join("votes.wal");
    let (mut wal, _) = open(&path).unwrap();
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(wal.len_bytes() + wal.pending_bytes() as u64);
        wal.append(e).unwrap();
    }
    wal.sync().unwrap();
    (path, offsets)
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

#[test]
fn entries_come_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/votes.wal");
    let (mut wal, rec) = open(&path).unwrap();
    assert!(rec.created && rec.entries.is_empty() && rec.torn.is_none());
    assert_eq!(wal.len_bytes(), HEADER);
    assert_eq!(file_len(&path), HEADER);
    for v in votes(100) {
        wal.append(&v).unwrap();
    }
    wal.sync().unwrap();
    assert_eq!(wal.entry_count(), 100);
    assert_eq!(wal.len_bytes(), file_len(&path));
    drop(wal);
    let (wal, rec) = open(&path).unwrap();
    assert_eq!(rec.entries, votes(100));
    assert!(!rec.created && rec.torn.is_none());
    assert_eq!(wal.entry_count(), 100);
}

#[test]
fn appends_are_buffered_until_one_sync_writes_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("votes.wal");
    let (mut wal, _) = open(&path).unwrap();
    for v in votes(50) {
        wal.append(&v).unwrap();
    }
    assert!(wal.is_dirty());
    assert_eq!(
        file_len(&path),
        HEADER,
        "nothing reaches the file before sync"
    );
    wal.sync().unwrap();
    assert!(!wal.is_dirty());
    assert_eq!(file_len(&path), wal.len_bytes());
    let synced = file_len(&path);
    wal.sync().unwrap(); // nothing buffered: nothing written
    assert_eq!(file_len(&path), synced);
    // Appended but never synced: lost, as in a crash.
    wal.append(&vote(50)).unwrap();
    drop(wal);
    assert_eq!(open(&path).unwrap().1.entries, votes(50));
}

#[test]
fn records_encoded_elsewhere_are_checked_and_appended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("votes.wal");
    let (mut wal, _) = open(&path).unwrap();
    let mut batch = Vec::new();
    for v in votes(3) {
        FORMAT.encode_record(&v, &mut batch).unwrap();
    }
    let err = wal.append_encoded(&batch[..batch.len() - 1]).unwrap_err();
    assert!(
        matches!(
            err,
            WalError::BadBatch {
                damage: Damage::Incomplete,
                ..
            }
        ),
        "{err}"
    );
    assert!(!wal.is_dirty(), "a bad batch is refused whole");
    let mut flipped = batch.clone();
    flipped[RECORD_HEADER_BYTES + 1] ^= 1;
    let err = wal.append_encoded(&flipped).unwrap_err();
    assert!(
        matches!(
            err,
            WalError::BadBatch {
                offset: 0,
                damage: Damage::PayloadChecksum,
                ..
            }
        ),
        "{err}"
    );
    wal.append_encoded(&batch).unwrap();
    assert_eq!(wal.entry_count(), 3);
    wal.sync().unwrap();
    drop(wal);
    assert_eq!(open(&path).unwrap().1.entries, votes(3));
}

#[test]
fn an_entry_over_the_limit_is_refused_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("votes.wal");
    let small = Format::new(FORMAT.tag, 64);
    let (mut wal, _) = Wal::<Vote>::open(&path, small).unwrap();
    wal.append(&vote(1)).unwrap();
    let big = Vote {
        value: vec![7; 100],
        ..vote(2)
    };
    let err = wal.append(&big).unwrap_err();
    assert!(matches!(err, WalError::Encode { .. }), "{err}");
    assert!(err.to_string().contains("64-byte record limit"), "{err}");
    wal.append(&vote(3)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = Wal::<Vote>::open(&path, small).unwrap();
    assert_eq!(rec.entries, [vote(1), vote(3)]);
}

#[test]
fn every_cut_inside_the_last_record_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = write_log(dir.path(), &votes(3));
    let full = fs::read(&path).unwrap();
    let last = offsets[2];
    for cut in last + 1..full.len() as u64 {
        fs::write(&path, &full[..cut as usize]).unwrap();
        let (mut wal, rec) = open(&path).unwrap();
        assert_eq!(rec.entries, votes(2), "cut at {cut}");
        assert_eq!(
            rec.torn,
            Some(TornTail {
                offset: last,
                bytes: cut - last,
                cause: TornCause::CutShort
            })
        );
        assert_eq!(file_len(&path), last, "the torn tail is cut off the file");
        // And the log goes on from there.
        wal.append(&vote(2)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, rec) = open(&path).unwrap();
        assert_eq!((rec.entries, rec.torn), (votes(3), None));
    }
}

#[test]
fn a_torn_file_header_is_a_log_whose_creation_never_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("votes.wal");
    let header = FORMAT.file_header();
    for cut in [0, 1, 8, FILE_HEADER_BYTES - 1] {
        fs::write(&path, &header[..cut]).unwrap();
        let (wal, rec) = open(&path).unwrap();
        assert!(rec.created && rec.entries.is_empty());
        let expected = (cut > 0).then_some(TornTail {
            offset: 0,
            bytes: cut as u64,
            cause: TornCause::CutShort,
        });
        assert_eq!(rec.torn, expected);
        assert_eq!(wal.len_bytes(), HEADER);
        assert_eq!(fs::read(&path).unwrap(), header);
    }
}

#[test]
fn a_zero_filled_tail_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = write_log(dir.path(), &votes(3));
    let full = fs::read(&path).unwrap();
    // Zeros after the last record, and zeros where the last record was.
    for (keep, zeros) in [(full.len(), 100), (offsets[2] as usize, 4096)] {
        let mut bytes = full[..keep].to_vec();
        bytes.resize(keep + zeros, 0);
        fs::write(&path, &bytes).unwrap();
        let (_, rec) = open(&path).unwrap();
        assert_eq!(
            rec.torn,
            Some(TornTail {
                offset: keep as u64,
                bytes: zeros as u64,
                cause: TornCause::ZeroFilled
            })
        );
        assert_eq!(rec.entries.len(), if keep == full.len() { 3 } else { 2 });
        assert_eq!(file_len(&path), keep as u64);
    }
}

#[test]
fn a_bad_checksum_on_the_last_record_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = write_log(dir.path(), &votes(3));
    let full = fs::read(&path).unwrap();
    let last = offsets[2] as usize;
    let cases = [
        // A payload byte of the last record.
        (full.len() - 1, full.len()),
        // Its length field: the header checksum fails.
        (last, full.len()),
        // A payload byte, with a zero-filled tail after the record.
        (full.len() - 1, full.len() + 512),
    ];
    for (flip, len) in cases {
        let mut bytes = full.clone();
        bytes[flip] ^= 0x10;
        bytes.resize(len, 0);
        fs::write(&path, &bytes).unwrap();
        let (_, rec) = open(&path).unwrap();
        assert_eq!(rec.entries, votes(2), "flip at {flip}");
        assert_eq!(
            rec.torn,
            Some(TornTail {
                offset: last as u64,
                bytes: (len - last) as u64,
                cause: TornCause::BadChecksum
            })
        );
    }
}

#[test]
fn damage_with_records_after_it_is_refused_with_path_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = write_log(dir.path(), &votes(4));
    let good = fs::read(&path).unwrap();
    let mut zeroed = good.clone();
    zeroed[offsets[1] as usize..offsets[2] as usize].fill(0);
    let cases: Vec<(Vec<u8>, u64, Damage)> = [
        (
            offsets[1] as usize + RECORD_HEADER_BYTES + 2,
            1,
            Damage::PayloadChecksum,
        ),
        (offsets[0] as usize, 0, Damage::HeaderChecksum),
        (offsets[2] as usize + 9, 2, Damage::HeaderChecksum),
    ]
    .into_iter()
    .map(|(at, victim, damage)| {
        let mut bytes = good.clone();
        bytes[at] ^= 0x01;
        (bytes, offsets[victim], damage)
    })
    .chain([(zeroed, offsets[1], Damage::HeaderChecksum)])
    .collect();
    for (bytes, offset, damage) in cases {
        fs::write(&path, &bytes).unwrap();
        let err = open(&path).unwrap_err();
        let text = err.to_string();
        match &err {
            WalError::Corrupt {
                path: p,
                offset: o,
                damage: d,
            } => assert_eq!((p, *o, d), (&path, offset, &damage), "{text}"),
            other => panic!("expected corruption at {offset}, got {other}"),
        }
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains(&format!("byte offset {offset}")), "{text}");
        assert!(
            text.contains("will not start with a partial memory"),
            "{text}"
        );
        for unsafe_advice in ["move the data directory", "rejoin", "empty log to"] {
            assert!(!text.contains(unsafe_advice), "{text}");
        }
        assert_eq!(
            fs::read(&path).unwrap(),
            bytes,
            "a refused log is left as it is"
        );
    }
    fs::write(&path, &good).unwrap();
    assert_eq!(open(&path).unwrap().1.entries, votes(4));
}

#[test]
fn sound_checksums_around_bad_content_are_corruption_even_at_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("votes.wal");
    // A record of another shape: the checksums hold, the entry does not decode.
    let mut bytes = FORMAT.file_header().to_vec();
    FORMAT.encode_record(&vote(0), &mut bytes).unwrap();
    FORMAT.encode_record(&(u64::MAX, true), &mut bytes).unwrap();
    fs::write(&path, &bytes).unwrap();
    match open(&path).unwrap_err() {
        WalError::Corrupt {
            damage: Damage::Undecodable(_) | Damage::TrailingBytes(_),
            ..
        } => {}
        other => panic!("{other}"),
    }
    // A header with a sound checksum that claims more than the limit.
    let mut bytes = FORMAT.file_header().to_vec();
    Format::new(FORMAT.tag, u32::MAX)
        .encode_record(&vec![0u8; 70_000], &mut bytes)
        .unwrap();
    fs::write(&path, &bytes).unwrap();
    match open(&path).unwrap_err() {
        WalError::Corrupt {
            offset: HEADER,
            damage: Damage::TooLarge { max: 65536, .. },
            ..
        } => {}
        other => panic!("{other}"),
    }
}

#[test]
fn foreign_files_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("votes.wal");
    let check = |bytes: &[u8], expect: &dyn Fn(&WalError) -> bool, words: &[&str]| {
        fs::write(&path, bytes).unwrap();
        let err = open(&path).unwrap_err();
        assert!(expect(&err), "{err}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        for w in words {
            assert!(text.contains(w), "{text} lacks {w}");
        }
        assert_eq!(fs::read(&path).unwrap(), bytes);
    };
    check(
        b"hello, this is my thesis, do not overwrite it",
        &|e| matches!(e, WalError::BadMagic { .. }),
        &["not a write-ahead log"],
    );
    check(b"hel", &|e| matches!(e, WalError::BadMagic { .. }), &[]);
    // Another application's log.
    let other = Format::new(Tag::new(*b"other-ap"), 1 << 16);
    let mut bytes = other.encode_log(&votes(2)).unwrap();
    check(
        &bytes,
        &|e| matches!(e, WalError::WrongTag { found, .. } if *found == other.tag),
        &["other-ap", "test-wal"],
    );
    // A newer format version (with its header checksum made right).
    bytes = FORMAT.encode_log(&votes(2)).unwrap();
    let newer = paxos_wal::VERSION + 1;
    bytes[8..12].copy_from_slice(&newer.to_le_bytes());
    let crc = crc_of(&bytes[..20]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    let words = format!("version {newer}");
    check(
        &bytes,
        &|e| matches!(e, WalError::UnsupportedVersion { found, .. } if *found == newer),
        &[words.as_str()],
    );
    // Our header, damaged.
    bytes = FORMAT.encode_log(&votes(2)).unwrap();
    bytes[14] ^= 0x20;
    check(
        &bytes,
        &|e| {
            matches!(
                e,
                WalError::Corrupt {
                    offset: 0,
                    damage: Damage::FileHeader,
                    ..
                }
            )
        },
        &["byte offset 0"],
    );
}

/// CRC32C, written out here so the test does not trust the crate's own.
fn crc_of(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_second_open_of_a_live_log_fails_with_the_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acceptor-2.wal");
    let (mut first, _) = open(&path).unwrap();
    first.append(&vote(0)).unwrap();
    first.sync().unwrap();
    let err = open(&path).unwrap_err();
    match &err {
        WalError::Locked { path: p, lock } => {
            assert_eq!(p, &path);
            assert_eq!(lock, &lock_path(&path));
            assert_eq!(lock, &dir.path().join("acceptor-2.wal.lock"));
        }
        other => panic!("expected the lock error, got {other}"),
    }
    assert!(
        err.to_string().contains("in use by another process"),
        "{err}"
    );
    // Other logs in the same directory are independent.
    let (_other, _) = open(&dir.path().join("proposer-2.wal")).unwrap();
    let (_other, _) = open(&dir.path().join("acceptor-1.wal")).unwrap();
    // The failed open changed nothing, and the lock goes with the first Wal.
    first.append(&vote(1)).unwrap();
    first.sync().unwrap();
    drop(first);
    assert_eq!(open(&path).unwrap().1.entries, votes(2));
}

#[test]
fn rewrite_replaces_the_log_and_appends_go_on_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_log(dir.path(), &votes(10));
    let (mut wal, _) = open(&path).unwrap();
    wal.append(&vote(10)).unwrap(); // buffered: synced, then replaced
    wal.rewrite(&[vote(7), vote(8)]).unwrap();
    assert_eq!(wal.entry_count(), 2);
    assert_eq!(wal.len_bytes(), file_len(&path));
    assert!(!temp_path(&path).exists());
    wal.append(&vote(11)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (mut wal, rec) = open(&path).unwrap();
    assert_eq!(rec.entries, [vote(7), vote(8), vote(11)]);
    wal.rewrite(&[]).unwrap();
    drop(wal);
    assert!(open(&path).unwrap().1.entries.is_empty());
}

#[test]
fn a_rewrite_that_never_renamed_leaves_the_old_log_and_its_temporary_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_log(dir.path(), &votes(5));
    let temp = temp_path(&path);
    // A crash after the temporary was written and synced, before the
    // rename: a whole new log sits next to the old one.
    fs::write(&temp, FORMAT.encode_log(&votes(1)).unwrap()).unwrap();
    let (_, rec) = open(&path).unwrap();
    assert_eq!(rec.entries, votes(5));
    assert!(!temp.exists(), "open removes the leftover temporary");
    // A crash while the temporary was being written: half a log.
    let half = FORMAT.encode_log(&votes(3)).unwrap();
    fs::write(&temp, &half[..half.len() / 2]).unwrap();
    let (_, rec) = open(&path).unwrap();
    assert_eq!(rec.entries, votes(5));
    assert!(!temp.exists());
}

#[test]
fn a_rewrite_that_fails_before_its_rename_keeps_the_old_log_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_log(dir.path(), &votes(5));
    let (mut wal, _) = open(&path).unwrap();
    // The temporary cannot be created: a directory is in its way.
    fs::create_dir(temp_path(&path)).unwrap();
    let err = wal.rewrite(&votes(1)).unwrap_err();
    assert!(matches!(err, WalError::Io { .. }), "{err}");
    // Still the old log, and still writable.
    wal.append(&vote(5)).unwrap();
    wal.sync().unwrap();
    assert_eq!(wal.entry_count(), 6);
    drop(wal);
    fs::remove_dir(temp_path(&path)).unwrap();
    assert_eq!(open(&path).unwrap().1.entries, votes(6));
}
