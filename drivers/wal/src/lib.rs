//! paxos-wal: the write-ahead log both drivers keep their acceptor and
//! proposer records in, generic over the entry type.
//!
//! A log is one file of postcard-encoded entries behind a file header that
//! names the format version and the application ([`Tag`]); each record has a
//! length and CRC32C checksums (see [`format`] for the layout). [`Wal::open`]
//! takes an exclusive lock held for the life of the [`Wal`], recovers the
//! entries, and cuts a torn tail left by a crash, reporting it; any other
//! damage is refused with the file and byte offset, because an acceptor that
//! silently forgot a promise could let two values be chosen. Appends are
//! buffered and made durable together by [`Wal::sync`] (group commit);
//! [`Wal::rewrite`] replaces the whole log atomically.
//!
//! ```
//! use paxos_wal::{Format, Tag, Wal};
//! # fn main() -> Result<(), paxos_wal::WalError> {
//! # let dir = tempfile::tempdir().unwrap();
//! const FORMAT: Format = Format::new(Tag::new(*b"example1"), 1 << 20);
//! let path = dir.path().join("votes.wal");
//! let (mut wal, recovery) = Wal::<(u64, String)>::open(&path, FORMAT)?;
//! assert!(recovery.created && recovery.entries.is_empty());
//! wal.append(&(1, "a".to_string()))?;
//! wal.append(&(2, "b".to_string()))?;
//! wal.sync()?; // one fsync for both
//! drop(wal);
//! let (_, recovery) = Wal::<(u64, String)>::open(&path, FORMAT)?;
//! assert_eq!(recovery.entries, [(1, "a".to_string()), (2, "b".to_string())]);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod error;
pub mod format;
mod log;

pub use error::WalError;
pub use format::{
    Damage, DecodeError, Decoded, EncodeError, Format, Tag, TornCause, TornTail, FILE_HEADER_BYTES,
    MAGIC, RECORD_HEADER_BYTES, VERSION,
};
pub use log::{lock_path, temp_path, Recovery, Wal};
