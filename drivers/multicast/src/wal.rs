//! The log of an acceptor or proposer: the core [`Record`]s it needs back
//! after a crash, in a paxos-wal log at `DATA_DIR/<role>-<id>.wal`.
//!
//! paxos-wal does the work: a file header tagged [`TAG`], checksummed records,
//! an exclusive lock (`<role>-<id>.wal.lock`) for as long as the process runs,
//! so a second process with the same role and id is refused at startup
//! instead of voting from the same log; group commit; a torn tail cut with a
//! warning; damage with sound records after it refused with the file and
//! offset, because forgetting a promise silently would break Paxos.

use paxos_core::Record;
use paxos_wal::{Format, Tag};
use std::path::Path;

pub use paxos_wal::WalError;

/// The persisted record type of this driver.
pub type Rec = Record<String>;

/// The application tag in the file header.
pub const TAG: Tag = Tag::new(*b"abcast01");
/// Largest record (a vote holds at most one datagram's value; a proposer's
/// checkpoint is one ballot).
pub const RECORD_MAX_BYTES: u32 = 1 << 20;
/// The log's format.
pub const FORMAT: Format = Format::new(TAG, RECORD_MAX_BYTES);

/// An open log. Holds its lock until dropped.
#[derive(Debug)]
pub struct Wal {
    inner: paxos_wal::Wal<Rec>,
}

impl Wal {
    /// Opens (creating if needed) the log at `path` and returns it with every
    /// record it holds, in order. Fails with [`WalError::Locked`] if another
    /// process has it open.
    pub fn open(path: &Path) -> Result<(Wal, Vec<Rec>), WalError> {
        let (inner, recovery) = paxos_wal::Wal::open(path, FORMAT)?;
        if let Some(torn) = recovery.torn {
            tracing::warn!(
                path = %path.display(),
                offset = torn.offset,
                bytes = torn.bytes,
                "cut a torn tail off the log ({}): a write the crash interrupted before its fsync",
                torn.cause
            );
        }
        Ok((Wal { inner }, recovery.entries))
    }

    /// Queues a record; it is durable after the next [`Wal::sync`].
    pub fn append(&mut self, record: &Rec) -> Result<(), WalError> {
        self.inner.append(record)
    }

    /// True when appended records wait for a sync.
    pub fn is_dirty(&self) -> bool {
        self.inner.is_dirty()
    }

    /// Writes the queued records and waits until they are on disk.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.inner.sync()
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.inner.len_bytes()
    }

    /// Records in the log since it was last rewritten (or opened).
    pub fn records_since_compaction(&self) -> u64 {
        self.inner.entry_count()
    }

    /// Replaces the whole log by `records` (a checkpoint), atomically: queued
    /// records are synced first, then the checkpoint is written to a
    /// temporary file, synced, renamed over the log, and the directory synced.
    pub fn rewrite(&mut self, records: &[Rec]) -> Result<(), WalError> {
        self.inner.rewrite(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::{Ballot, Command, NodeId, PValue, Value};
    use std::path::PathBuf;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("abcast-wal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn records() -> Vec<Rec> {
        vec![
            Record::Promised(Ballot::new(2, NodeId(1))),
            Record::Accepted(PValue {
                slot: 4,
                ballot: Ballot::new(2, NodeId(1)),
                value: Value::One(Command {
                    client: 1,
                    seq: 1,
                    op: "v".into(),
                }),
            }),
            Record::Trimmed(3),
        ]
    }

    fn write(path: &Path) -> u64 {
        let (mut wal, _) = Wal::open(path).unwrap();
        for r in records() {
            wal.append(&r).unwrap();
        }
        wal.sync().unwrap();
        wal.bytes()
    }

    #[test]
    fn synced_records_come_back_in_order() {
        let dir = temp_dir("order");
        let path = dir.join("a.wal");
        let (wal, old) = Wal::open(&path).unwrap();
        assert!(old.is_empty());
        drop(wal);
        write(&path);
        let (wal, back) = Wal::open(&path).unwrap();
        assert_eq!(back, records());
        assert_eq!(wal.records_since_compaction(), 3);
        drop(wal);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_torn_tail_is_truncated_and_the_rest_kept() {
        let dir = temp_dir("torn");
        let path = dir.join("a.wal");
        let full = write(&path);
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(full - 2).unwrap();
        let (wal, back) = Wal::open(&path).unwrap();
        assert_eq!(back, records()[..2]);
        assert!(wal.bytes() < full - 2);
        drop(wal);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn damage_in_the_middle_is_refused_with_its_offset() {
        let dir = temp_dir("corrupt");
        let path = dir.join("a.wal");
        write(&path);
        let mut data = std::fs::read(&path).unwrap();
        let first = paxos_wal::FILE_HEADER_BYTES;
        data[first + paxos_wal::RECORD_HEADER_BYTES] ^= 0xff;
        std::fs::write(&path, data).unwrap();
        match Wal::open(&path) {
            Err(WalError::Corrupt { offset, .. }) if offset == first as u64 => {}
            other => panic!("expected corruption at offset {first}, got {other:?}"),
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_log_in_use_is_refused_and_other_logs_beside_it_are_not() {
        let dir = temp_dir("lock");
        let (_acceptor, _) = Wal::open(&dir.join("acceptor-2.wal")).unwrap();
        match Wal::open(&dir.join("acceptor-2.wal")) {
            Err(WalError::Locked { lock, .. }) => {
                assert_eq!(lock, dir.join("acceptor-2.wal.lock"));
            }
            other => panic!("expected the lock error, got {other:?}"),
        }
        let (_proposer, _) = Wal::open(&dir.join("proposer-2.wal")).unwrap();
        let (_other, _) = Wal::open(&dir.join("acceptor-1.wal")).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rewrite_replaces_the_log_by_a_checkpoint() {
        let dir = temp_dir("rewrite");
        let path = dir.join("a.wal");
        let (mut wal, _) = Wal::open(&path).unwrap();
        for r in records() {
            wal.append(&r).unwrap();
        }
        wal.sync().unwrap();
        wal.rewrite(&records()[..1]).unwrap();
        assert_eq!(wal.records_since_compaction(), 1);
        wal.append(&records()[2]).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, back) = Wal::open(&path).unwrap();
        assert_eq!(back, [records()[0].clone(), records()[2].clone()]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
