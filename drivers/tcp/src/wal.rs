//! The write-ahead log: one file per server under its data directory, holding
//! the core's persisted records (and, after compaction, a replica snapshot).
//!
//! File layout: an 8-byte magic, then records. Each record is a 12-byte header
//! — payload length (u32 LE), CRC32C of the payload (u32 LE), CRC32C of those
//! eight bytes (u32 LE) — followed by a postcard-encoded [`WalEntry`].
//!
//! Recovery reads records until the end. A record cut short by a crash (the
//! header or payload runs past the end of the file, or the last record's
//! checksum fails, or the tail is zero-filled) is a *torn tail*: it was never
//! synced, so nothing acknowledged depends on it, and it is truncated with a
//! warning. Any other damage is *corruption*: the server refuses to start and
//! names the file and offset, because skipping it could forget a promise.

use crate::chat::{Chat, ChatOp, ChatOutput};
use paxos_core::{NodeId, Record, Snapshot};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// First bytes of every WAL file; the last byte is the format version.
pub const MAGIC: &[u8; 8] = b"PXTCPWL1";
/// Bytes of a record header.
pub const HEADER_BYTES: usize = 12;
/// Largest payload a record may have. A header claiming more is corrupt.
pub const RECORD_MAX_BYTES: usize = 1 << 30;
/// The log file's name inside the data directory.
pub const WAL_FILE: &str = "wal.log";
const COMPACT_FILE: &str = "wal.log.compact";
const LOCK_FILE: &str = "LOCK";

/// The chat room's persisted record type.
pub type ChatRecord = Record<ChatOp>;
/// The chat room's replica snapshot type.
pub type ChatSnapshot = Snapshot<Chat, ChatOutput>;

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WalEntry {
    /// Which server and cluster this log belongs to; written first.
    Meta {
        /// The server's id.
        id: NodeId,
        /// The cluster's members.
        members: Vec<NodeId>,
    },
    /// Replica state at a slot boundary; replaces every earlier entry.
    Snapshot(Box<ChatSnapshot>),
    /// A record the core asked to persist.
    Record(ChatRecord),
}

/// What can go wrong opening or writing the log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The operating system refused a file operation.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A record before the tail is damaged; the server will not guess.
    #[error("{path}: corrupt record at byte offset {offset}: {what}. Refusing to start: move the data directory away to rejoin with an empty log")]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// Where the damaged record starts.
        offset: u64,
        /// What is wrong with it.
        what: String,
    },
    /// The file does not start with [`MAGIC`].
    #[error("{path}: not a paxos-tcp write-ahead log (unknown header); refusing to touch it")]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// Another process holds the data directory.
    #[error("{path}: the data directory is in use by another server process")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What recovery found in the log.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The `Meta` entry, if the log had one.
    pub meta: Option<(NodeId, Vec<NodeId>)>,
    /// The latest snapshot; `records` follow it.
    pub snapshot: Option<ChatSnapshot>,
    /// Records after the snapshot (or all of them), in write order.
    pub records: Vec<ChatRecord>,
    /// If a torn tail was cut: `(offset, bytes removed)`.
    pub truncated: Option<(u64, u64)>,
    /// Size of the log after recovery.
    pub len_bytes: u64,
}

/// An open log, appended to by one thread.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    len_bytes: u64,
    _lock: File,
}

/// Appends `entry` to `buf` as one framed record.
pub fn frame(entry: &WalEntry, buf: &mut Vec<u8>) {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_BYTES]);
    // Serialising plain data into a Vec cannot fail with postcard.
    let buf2 =
        postcard::to_extend(entry, std::mem::take(buf)).expect("postcard encodes plain data");
    *buf = buf2;
    let payload_len = buf.len() - start - HEADER_BYTES;
    let crc = crc32c::crc32c(&buf[start + HEADER_BYTES..]);
    buf[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    let hcrc = crc32c::crc32c(&buf[start..start + 8]);
    buf[start + 8..start + 12].copy_from_slice(&hcrc.to_le_bytes());
}

impl Wal {
    /// Opens (or creates) the log in `dir`, locks the directory, recovers the
    /// entries and cuts a torn tail. Corruption before the tail is an error.
    pub fn open(dir: &Path) -> Result<(Wal, Recovered), WalError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(WalError::Locked { path: lock_path }),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let path = dir.join(WAL_FILE);
        // A compaction that crashed before its rename left only a temporary.
        let _ = fs::remove_file(dir.join(COMPACT_FILE));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err(&path))?;
        let mut recovered = Recovered::default();
        if bytes.len() < MAGIC.len() {
            if !MAGIC.starts_with(&bytes) {
                return Err(WalError::BadMagic { path });
            }
            // New, or torn while being created: start it afresh.
            file.set_len(0).map_err(io_err(&path))?;
            file.write_all(MAGIC).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
            sync_dir(dir)?;
            recovered.len_bytes = MAGIC.len() as u64;
        } else {
            if &bytes[..MAGIC.len()] != MAGIC {
                return Err(WalError::BadMagic { path });
            }
            let end = scan(&path, &bytes, &mut recovered)?;
            if end < bytes.len() {
                recovered.truncated = Some((end as u64, (bytes.len() - end) as u64));
                file.set_len(end as u64).map_err(io_err(&path))?;
                file.sync_all().map_err(io_err(&path))?;
            }
            recovered.len_bytes = end as u64;
        }
        // Appends go to the end; `append` mode keeps that true.
        drop(file);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let wal = Wal {
            dir: dir.to_path_buf(),
            path,
            file,
            len_bytes: recovered.len_bytes,
            _lock: lock,
        };
        Ok((wal, recovered))
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Current size of the log file.
    pub fn len_bytes(&self) -> u64 {
        self.len_bytes
    }

    /// Writes already-framed records (see [`frame`]); not durable until [`Wal::sync`].
    pub fn append(&mut self, framed: &[u8]) -> Result<(), WalError> {
        self.file.write_all(framed).map_err(io_err(&self.path))?;
        self.len_bytes += framed.len() as u64;
        Ok(())
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.file.sync_data().map_err(io_err(&self.path))
    }

    /// Replaces the whole log by `entries` (a meta, a snapshot, and the
    /// checkpoint records), atomically: written to a temporary file, synced,
    /// renamed over the log, and the directory synced.
    pub fn replace(&mut self, entries: &[WalEntry]) -> Result<(), WalError> {
        let tmp = self.dir.join(COMPACT_FILE);
        let mut buf = MAGIC.to_vec();
        for entry in entries {
            frame(entry, &mut buf);
        }
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all(&buf).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &self.path).map_err(io_err(&self.path))?;
        sync_dir(&self.dir)?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        self.len_bytes = buf.len() as u64;
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Reads every record of `bytes` (which starts with the magic) into
/// `recovered`; returns where the valid log ends.
fn scan(path: &Path, bytes: &[u8], recovered: &mut Recovered) -> Result<usize, WalError> {
    let corrupt = |offset: usize, what: String| WalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        what,
    };
    let mut at = MAGIC.len();
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < HEADER_BYTES {
            return Ok(at); // torn header
        }
        let word = |i: usize| u32::from_le_bytes(rest[i..i + 4].try_into().expect("4 bytes"));
        let (len, crc, hcrc) = (word(0) as usize, word(4), word(8));
        if crc32c::crc32c(&rest[..8]) != hcrc {
            if rest.iter().all(|&b| b == 0) {
                return Ok(at); // zero-filled tail: the write never landed
            }
            return Err(corrupt(at, "header checksum mismatch".into()));
        }
        if len > RECORD_MAX_BYTES {
            return Err(corrupt(
                at,
                format!("length {len} exceeds the record limit"),
            ));
        }
        let Some(payload) = rest.get(HEADER_BYTES..HEADER_BYTES + len) else {
            return Ok(at); // torn payload
        };
        let is_last = rest.len() == HEADER_BYTES + len;
        if crc32c::crc32c(payload) != crc {
            if is_last {
                return Ok(at);
            }
            return Err(corrupt(at, "payload checksum mismatch".into()));
        }
        let entry: WalEntry = crate::wire::decode(payload)
            .map_err(|e| corrupt(at, format!("checksum ok but undecodable ({e})")))?;
        match entry {
            WalEntry::Meta { id, members } => recovered.meta = Some((id, members)),
            WalEntry::Snapshot(s) => {
                recovered.snapshot = Some(*s);
                recovered.records.clear();
            }
            WalEntry::Record(r) => recovered.records.push(r),
        }
        at += HEADER_BYTES + len;
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::{Ballot, PValue, Value};

    fn promised(round: u64) -> WalEntry {
        WalEntry::Record(Record::Promised(Ballot::new(round, NodeId(1))))
    }

    fn accepted(slot: u64, text: &str) -> WalEntry {
        WalEntry::Record(Record::Accepted(PValue {
            slot,
            ballot: Ballot::new(1, NodeId(1)),
            value: Value::One(paxos_core::Command {
                client: 1,
                seq: slot + 1,
                op: ChatOp::Put(text.into()),
            }),
        }))
    }

    fn write(dir: &Path, entries: &[WalEntry]) -> Vec<u64> {
        let (mut wal, _) = Wal::open(dir).unwrap();
        let mut offsets = Vec::new();
        for e in entries {
            offsets.push(wal.len_bytes());
            let mut buf = Vec::new();
            frame(e, &mut buf);
            wal.append(&buf).unwrap();
        }
        wal.sync().unwrap();
        offsets
    }

    fn records(entries: &[WalEntry]) -> Vec<ChatRecord> {
        entries
            .iter()
            .filter_map(|e| match e {
                WalEntry::Record(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn records_survive_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let entries = [promised(1), accepted(0, "a"), accepted(1, "b")];
        write(dir.path(), &entries);
        let (_, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.records, records(&entries));
        assert_eq!(rec.truncated, None);
    }

    #[test]
    fn torn_last_record_is_truncated_and_earlier_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let entries = [promised(1), accepted(0, "a"), accepted(1, "bbbbbbbb")];
        let offsets = write(dir.path(), &entries);
        let path = dir.path().join(WAL_FILE);
        let full = fs::metadata(&path).unwrap().len();
        // Every cut inside the last record is a torn tail.
        for cut in offsets[2] + 1..full {
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(cut).unwrap();
            drop(f);
            let (wal, rec) = Wal::open(dir.path()).unwrap();
            assert_eq!(rec.records, records(&entries[..2]), "cut at {cut}");
            assert_eq!(rec.truncated, Some((offsets[2], cut - offsets[2])));
            assert_eq!(wal.len_bytes(), offsets[2]);
            drop(wal);
            let mut buf = Vec::new();
            frame(&entries[2], &mut buf);
            let mut f = OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(&buf).unwrap();
        }
    }

    #[test]
    fn flipped_bit_in_last_record_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let entries = [promised(1), accepted(0, "a")];
        let offsets = write(dir.path(), &entries);
        let path = dir.path().join(WAL_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        let (_, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.records, records(&entries[..1]));
        assert_eq!(rec.truncated.map(|t| t.0), Some(offsets[1]));
    }

    #[test]
    fn corruption_before_the_tail_is_refused_with_path_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let entries = [promised(1), accepted(0, "hello"), accepted(1, "b")];
        let offsets = write(dir.path(), &entries);
        let path = dir.path().join(WAL_FILE);
        for (victim, byte) in [(1, HEADER_BYTES + 2), (1, 0), (0, 5)] {
            let mut bytes = fs::read(&path).unwrap();
            let pos = offsets[victim] as usize + byte;
            bytes[pos] ^= 0x01;
            fs::write(&path, &bytes).unwrap();
            let err = Wal::open(dir.path()).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, WalError::Corrupt { offset, .. } if offset == offsets[victim]),
                "{text}"
            );
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains(&offsets[victim].to_string()), "{text}");
            bytes[pos] ^= 0x01;
            fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(Wal::open(dir.path()).unwrap().1.records, records(&entries));
    }

    #[test]
    fn zero_filled_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let entries = [promised(1)];
        write(dir.path(), &entries);
        let path = dir.path().join(WAL_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let end = bytes.len() as u64;
        bytes.extend_from_slice(&[0; 100]);
        fs::write(&path, &bytes).unwrap();
        let (_, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.records, records(&entries));
        assert_eq!(rec.truncated, Some((end, 100)));
    }

    #[test]
    fn a_foreign_file_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        fs::write(&path, b"hello, this is my thesis").unwrap();
        assert!(matches!(
            Wal::open(dir.path()),
            Err(WalError::BadMagic { .. })
        ));
        assert_eq!(fs::read(&path).unwrap(), b"hello, this is my thesis");
    }

    #[test]
    fn second_opener_of_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Wal::open(dir.path()).unwrap();
        assert!(matches!(
            Wal::open(dir.path()),
            Err(WalError::Locked { .. })
        ));
    }

    #[test]
    fn replace_keeps_only_the_snapshot_and_what_follows() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[promised(1), accepted(0, "a")]);
        let snapshot = ChatSnapshot {
            next_slot: 1,
            state: Chat {
                messages: vec!["a".into()],
            },
            sessions: vec![],
        };
        {
            let (mut wal, _) = Wal::open(dir.path()).unwrap();
            wal.replace(&[WalEntry::Snapshot(Box::new(snapshot.clone())), promised(2)])
                .unwrap();
            let mut buf = Vec::new();
            frame(&accepted(1, "b"), &mut buf);
            wal.append(&buf).unwrap();
            wal.sync().unwrap();
        }
        let (_, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.snapshot, Some(snapshot));
        assert_eq!(rec.records, records(&[promised(2), accepted(1, "b")]));
    }
}
