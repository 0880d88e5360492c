//! A write-ahead log of core [`Record`]s: what acceptors and proposers need back
//! after a crash. Appends are gathered and made durable by one `sync` (group commit).
//!
//! Each record is `[length u32 LE][CRC32C u32 LE][postcard body]`. On open, a
//! record cut short at the end of the file (a torn write) is truncated away;
//! a damaged record with data after it is refused with the file and offset,
//! because forgetting a promise silently would break Paxos.

use paxos_core::Record;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Largest record accepted on read (a vote holds at most one datagram's value).
const RECORD_BYTES_MAX: u32 = 1 << 20;
const FRAME_HEADER_BYTES: usize = 8;

/// The persisted record type of this driver.
pub type Rec = Record<String>;

/// Why a log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A record in the middle of the log is damaged.
    #[error("{path}: damaged record at offset {offset} ({why}); refusing to start with a partial memory")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong.
        why: &'static str,
    },
}

/// An open log, positioned at its end.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: File,
    bytes: u64,
    pending: Vec<u8>,
    /// Records appended since the last compaction.
    records_since_compaction: u64,
}

impl Wal {
    /// Opens (creating if needed) the log at `path` and returns it with every
    /// record it holds, in order.
    pub fn open(path: &Path) -> Result<(Wal, Vec<Rec>), WalError> {
        let io_err = |source| WalError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_err)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(io_err)?;
        let (records, good) = parse(&data).map_err(|(offset, why)| WalError::Corrupt {
            path: path.to_path_buf(),
            offset,
            why,
        })?;
        if good < data.len() as u64 {
            tracing::warn!(path = %path.display(), offset = good, "truncating a torn record at the end of the log");
            file.set_len(good).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
        }
        Ok((
            Wal {
                path: path.to_path_buf(),
                file,
                bytes: good,
                pending: Vec::new(),
                records_since_compaction: records.len() as u64,
            },
            records,
        ))
    }

    /// Queues a record; it is durable after the next [`Wal::sync`].
    pub fn append(&mut self, record: &Rec) {
        let start = self.pending.len();
        self.pending.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
        self.pending = postcard::to_extend(record, std::mem::take(&mut self.pending))
            .expect("writing into a Vec cannot fail");
        let body = &self.pending[start + FRAME_HEADER_BYTES..];
        let len = body.len() as u32;
        let crc = crc32c::crc32c(body);
        self.pending[start..start + 4].copy_from_slice(&len.to_le_bytes());
        self.pending[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        self.records_since_compaction += 1;
    }

    /// True when appended records wait for a sync.
    pub fn is_dirty(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes the queued records and waits until they are on disk.
    pub fn sync(&mut self) -> Result<(), WalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let io_err = |source| WalError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&self.pending).map_err(io_err)?;
        self.file.sync_data().map_err(io_err)?;
        self.bytes += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Records appended since the log was last rewritten.
    pub fn records_since_compaction(&self) -> u64 {
        self.records_since_compaction
    }

    /// Replaces the whole log by `records` (a checkpoint), atomically: written
    /// to a temporary file, synced, renamed over the log, directory synced.
    /// Queued records must have been synced first.
    pub fn rewrite(&mut self, records: &[Rec]) -> Result<(), WalError> {
        assert!(self.pending.is_empty(), "sync before compacting");
        let tmp = self.path.with_extension("tmp");
        let io_err = |source| WalError::Io {
            path: tmp.clone(),
            source,
        };
        for r in records {
            self.append(r);
        }
        let data = std::mem::take(&mut self.pending);
        let mut f = File::create(&tmp).map_err(io_err)?;
        f.write_all(&data).map_err(io_err)?;
        f.sync_all().map_err(io_err)?;
        std::fs::rename(&tmp, &self.path).map_err(io_err)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io_err)?;
        }
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|source| WalError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.bytes = data.len() as u64;
        self.records_since_compaction = records.len() as u64;
        Ok(())
    }
}

/// Parses frames; returns the records and the length of the good prefix, or
/// the offset of a damaged record that has data after it.
fn parse(data: &[u8]) -> Result<(Vec<Rec>, u64), (u64, &'static str)> {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        let rest = &data[at..];
        if rest.len() < FRAME_HEADER_BYTES {
            break; // torn header at the end
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if len > RECORD_BYTES_MAX {
            return Err((at as u64, "impossible length"));
        }
        let end = FRAME_HEADER_BYTES + len as usize;
        if rest.len() < end {
            break; // torn body at the end
        }
        let body = &rest[FRAME_HEADER_BYTES..end];
        let last = rest.len() == end;
        if crc32c::crc32c(body) != crc {
            if last {
                break; // a torn last write
            }
            return Err((at as u64, "checksum mismatch"));
        }
        match postcard::from_bytes(body) {
            Ok(r) => records.push(r),
            Err(_) => return Err((at as u64, "checksum matches but the record does not decode")),
        }
        at += end;
    }
    Ok((records, at as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::{Ballot, Command, NodeId, PValue, Value};

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

    #[test]
    fn synced_records_come_back_in_order() {
        let dir = temp_dir("order");
        let path = dir.join("a.wal");
        let (mut wal, old) = Wal::open(&path).unwrap();
        assert!(old.is_empty());
        for r in records() {
            wal.append(&r);
        }
        wal.sync().unwrap();
        drop(wal);
        let (_, back) = Wal::open(&path).unwrap();
        assert_eq!(back, records());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_torn_tail_is_truncated_and_the_rest_kept() {
        let dir = temp_dir("torn");
        let path = dir.join("a.wal");
        let (mut wal, _) = Wal::open(&path).unwrap();
        for r in records() {
            wal.append(&r);
        }
        wal.sync().unwrap();
        let full = wal.bytes();
        drop(wal);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(full - 2).unwrap();
        let (wal, back) = Wal::open(&path).unwrap();
        assert_eq!(back, records()[..2]);
        assert!(wal.bytes() < full - 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn damage_in_the_middle_is_refused_with_its_offset() {
        let dir = temp_dir("corrupt");
        let path = dir.join("a.wal");
        let (mut wal, _) = Wal::open(&path).unwrap();
        for r in records() {
            wal.append(&r);
        }
        wal.sync().unwrap();
        drop(wal);
        let mut data = std::fs::read(&path).unwrap();
        data[FRAME_HEADER_BYTES] ^= 0xff;
        std::fs::write(&path, data).unwrap();
        match Wal::open(&path) {
            Err(WalError::Corrupt { offset: 0, .. }) => {}
            other => panic!("expected corruption at offset 0, got {other:?}"),
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rewrite_replaces_the_log_by_a_checkpoint() {
        let dir = temp_dir("rewrite");
        let path = dir.join("a.wal");
        let (mut wal, _) = Wal::open(&path).unwrap();
        for r in records() {
            wal.append(&r);
        }
        wal.sync().unwrap();
        wal.rewrite(&records()[..1]).unwrap();
        wal.append(&records()[2]);
        wal.sync().unwrap();
        drop(wal);
        let (_, back) = Wal::open(&path).unwrap();
        assert_eq!(back, [records()[0].clone(), records()[2].clone()]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
