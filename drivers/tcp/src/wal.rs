//! The chat server's write-ahead log: [`WalEntry`]s (the core's persisted
//! records, and after compaction a replica snapshot) in `wal.log` under the
//! server's data directory.
//!
//! The file is a paxos-wal log tagged [`TAG`]: file header, length- and
//! CRC32C-framed postcard records, an exclusive lock (`wal.log.lock`) held
//! while the server runs, torn-tail repair, refusal of any other damage
//! with the file and byte offset, and atomic rewrite. This module only says
//! what the entries are and what recovery makes of them.

use crate::chat::{Chat, ChatOp, ChatOutput};
use paxos_core::{NodeId, Record, Snapshot};
use paxos_wal::{Format, Tag};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub use paxos_wal::{WalError, FILE_HEADER_BYTES, MAGIC, RECORD_HEADER_BYTES as HEADER_BYTES};

/// The application tag in the file header: a chat log is never opened as
/// another program's log, nor the other way round.
pub const TAG: Tag = Tag::new(*b"pxchat01");
/// Largest payload a record may have. Appending a larger one is refused
/// (the server stops rather than write a log it could not read back).
pub const RECORD_MAX_BYTES: u32 = 1 << 30;
/// The log's format.
pub const FORMAT: Format = Format::new(TAG, RECORD_MAX_BYTES);
/// The log file's name inside the data directory.
pub const WAL_FILE: &str = "wal.log";

/// Frames records on the driver thread without a size limit: the limit is
/// enforced by [`Wal::append`], which names it in its error.
const FRAMING: Format = Format::new(TAG, u32::MAX);

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
    /// Replica state at a slot boundary: the base a restart resumes from
    /// (the latest one wins; every record in the log is replayed on top).
    Snapshot(Box<ChatSnapshot>),
    /// A record the core asked to persist.
    Record(ChatRecord),
}

/// What recovery found in the log.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The `Meta` entry, if the log had one.
    pub meta: Option<(NodeId, Vec<NodeId>)>,
    /// The latest snapshot.
    pub snapshot: Option<ChatSnapshot>,
    /// Every record of the log, in write order.
    pub records: Vec<ChatRecord>,
    /// If a torn tail was cut: `(offset, bytes removed)`.
    pub truncated: Option<(u64, u64)>,
    /// Size of the log after recovery.
    pub len_bytes: u64,
}

/// An open log, appended to by one thread. Holds the log's lock until dropped.
#[derive(Debug)]
pub struct Wal {
    inner: paxos_wal::Wal<WalEntry>,
}

/// Appends `entry` to `buf` as one framed record, ready for [`Wal::append`].
///
/// Never panics. Encoding our own derived types into a vector cannot fail
/// short of a payload over 4 GiB; should it fail anyway, the reason is
/// logged and a record that [`Wal::append`] refuses is appended instead,
/// so the log thread stops the server rather than losing the entry.
pub fn frame(entry: &WalEntry, buf: &mut Vec<u8>) {
    if let Err(e) = FRAMING.encode_record(entry, buf) {
        tracing::error!("cannot encode a log entry: {e}");
        buf.extend_from_slice(&[0xff; HEADER_BYTES]);
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir`, takes its lock, recovers the
    /// entries and cuts a torn tail. Corruption before the tail is an error.
    pub fn open(dir: &Path) -> Result<(Wal, Recovered), WalError> {
        let (inner, recovery) = paxos_wal::Wal::open(&dir.join(WAL_FILE), FORMAT)?;
        let mut recovered = Recovered {
            truncated: recovery.torn.map(|t| (t.offset, t.bytes)),
            len_bytes: inner.len_bytes(),
            ..Recovered::default()
        };
        for entry in recovery.entries {
            match entry {
                WalEntry::Meta { id, members } => recovered.meta = Some((id, members)),
                WalEntry::Snapshot(s) => recovered.snapshot = Some(*s),
                WalEntry::Record(r) => recovered.records.push(r),
            }
        }
        Ok((Wal { inner }, recovered))
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        self.inner.path()
    }

    /// Bytes written to the log file.
    pub fn len_bytes(&self) -> u64 {
        self.inner.len_bytes()
    }

    /// Buffers records framed by [`frame`]; written and made durable by
    /// [`Wal::sync`]. A batch with a bad or oversized record is refused whole.
    pub fn append(&mut self, framed: &[u8]) -> Result<(), WalError> {
        self.inner.append_encoded(framed)
    }

    /// Writes and fsyncs every appended record.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.inner.sync()
    }

    /// Replaces the whole log by `entries` (a meta, a snapshot, and the
    /// checkpoint records), atomically.
    pub fn replace(&mut self, entries: &[WalEntry]) -> Result<(), WalError> {
        self.inner.rewrite(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::{Ballot, PValue, Value};
    use std::fs;

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

    /// Appends `entries` one batch each; returns where each record starts.
    fn write(dir: &Path, entries: &[WalEntry]) -> Vec<u64> {
        let (mut wal, _) = Wal::open(dir).unwrap();
        let mut offsets = Vec::new();
        for e in entries {
            offsets.push(wal.len_bytes());
            let mut buf = Vec::new();
            frame(e, &mut buf);
            wal.append(&buf).unwrap();
            wal.sync().unwrap();
        }
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
    fn meta_and_records_survive_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let meta = WalEntry::Meta {
            id: NodeId(2),
            members: vec![NodeId(0), NodeId(1), NodeId(2)],
        };
        let entries = [meta, promised(1), accepted(0, "a"), accepted(1, "b")];
        write(dir.path(), &entries);
        let (wal, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(
            rec.meta,
            Some((NodeId(2), vec![NodeId(0), NodeId(1), NodeId(2)]))
        );
        assert_eq!(rec.records, records(&entries));
        assert_eq!(rec.truncated, None);
        assert_eq!(rec.len_bytes, wal.len_bytes());
        assert_eq!(wal.path(), dir.path().join(WAL_FILE));
    }

    #[test]
    fn a_torn_tail_is_reported_as_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let entries = [promised(1), accepted(0, "a"), accepted(1, "bbbbbbbb")];
        let offsets = write(dir.path(), &entries);
        let path = dir.path().join(WAL_FILE);
        let len = fs::metadata(&path).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (wal, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.records, records(&entries[..2]));
        assert_eq!(rec.truncated, Some((offsets[2], len - 3 - offsets[2])));
        assert_eq!(wal.len_bytes(), offsets[2]);
    }

    #[test]
    fn corruption_before_the_tail_is_refused_with_path_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let entries = [promised(1), accepted(0, "hello"), accepted(1, "b")];
        let offsets = write(dir.path(), &entries);
        let path = dir.path().join(WAL_FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes[offsets[1] as usize + HEADER_BYTES + 2] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        let err = Wal::open(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, WalError::Corrupt { offset, .. } if offset == offsets[1]),
            "{text}"
        );
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(!text.contains("move the data directory"), "{text}");
    }

    #[test]
    fn another_programs_log_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        let other = Format::new(Tag::new(*b"abcast01"), 1 << 20);
        let bytes = other.encode_log(&[7u64, 8]).unwrap();
        fs::write(&path, &bytes).unwrap();
        let err = Wal::open(dir.path()).unwrap_err();
        assert!(matches!(err, WalError::WrongTag { .. }), "{err}");
        assert!(err.to_string().contains("pxchat01"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), bytes);
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
    fn an_entry_that_could_not_be_framed_stops_the_log_instead_of_vanishing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        let mut buf = Vec::new();
        frame(&promised(1), &mut buf);
        // What `frame` appends when encoding fails.
        buf.extend_from_slice(&[0xff; HEADER_BYTES]);
        assert!(matches!(wal.append(&buf), Err(WalError::BadBatch { .. })));
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
            membership: None,
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
