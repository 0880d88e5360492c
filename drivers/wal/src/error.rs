//! The errors of opening, appending to, syncing and rewriting a log, each
//! naming the file it is about so that a driver can print it as it is.

use crate::format::{Damage, DecodeError, EncodeError, Tag, VERSION};
use std::io;
use std::path::{Path, PathBuf};

/// Why a log could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// The operating system refused a file operation.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Another process (or another `Wal` in this one) has the log open.
    #[error(
        "{path}: the log is in use by another process, which holds its lock {lock}; \
         two processes must never share one log: stop the other one first"
    )]
    Locked {
        /// The log.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The file is not a paxos-wal log.
    #[error(
        "{path}: not a write-ahead log of this program (unknown magic bytes); refusing to touch it"
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// The log was written in a format version this build cannot read.
    #[error("{path}: log format version {found}, but this program reads version {VERSION} only; refusing to touch it")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in its header.
        found: u32,
    },
    /// The log belongs to another application.
    #[error("{path}: this log belongs to `{found}`, not `{expected}`; refusing to touch it")]
    WrongTag {
        /// The file.
        path: PathBuf,
        /// The tag in its header.
        found: Tag,
        /// The tag the caller expected.
        expected: Tag,
    },
    /// Damage that is not a crash's torn tail.
    #[error(
        "{path}: the write-ahead log is corrupt at byte offset {offset}: {damage}. \
         The server will not start with a partial memory of its promises and votes. \
         Keep the file as it is: do not delete it, and do not start this process on an empty log \
         as if nothing had been lost, because an acceptor that forgets its promises can let two \
         different values be chosen"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the damaged record (or header) starts.
        offset: u64,
        /// What is wrong with it.
        damage: Damage,
    },
    /// An entry could not be appended.
    #[error("{path}: cannot append an entry: {source}")]
    Encode {
        /// The log.
        path: PathBuf,
        /// Why.
        source: EncodeError,
    },
    /// A batch of pre-encoded records is not well framed.
    #[error(
        "{path}: refusing a batch of pre-encoded records: {damage} (at byte {offset} of the batch)"
    )]
    BadBatch {
        /// The log.
        path: PathBuf,
        /// Where in the batch the bad record starts.
        offset: u64,
        /// What is wrong with it.
        damage: Damage,
    },
    /// An earlier write or sync failed, so what is on disk is unknown.
    #[error(
        "{path}: an earlier write or sync of this log failed, so its state on disk is unknown; \
         it takes no more writes (restart to recover from what is on disk)"
    )]
    Poisoned {
        /// The log.
        path: PathBuf,
    },
}

impl WalError {
    /// The [`WalError`] for `error` found while decoding the log at `path`.
    pub fn from_decode(path: &Path, error: DecodeError) -> WalError {
        let path = path.to_path_buf();
        match error {
            DecodeError::BadMagic => WalError::BadMagic { path },
            DecodeError::UnsupportedVersion { found } => {
                WalError::UnsupportedVersion { path, found }
            }
            DecodeError::WrongTag { found, expected } => WalError::WrongTag {
                path,
                found,
                expected,
            },
            DecodeError::Corrupt { offset, damage } => WalError::Corrupt {
                path,
                offset,
                damage,
            },
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            WalError::Io { path, .. }
            | WalError::Locked { path, .. }
            | WalError::BadMagic { path }
            | WalError::UnsupportedVersion { path, .. }
            | WalError::WrongTag { path, .. }
            | WalError::Corrupt { path, .. }
            | WalError::Encode { path, .. }
            | WalError::BadBatch { path, .. }
            | WalError::Poisoned { path } => path,
        }
    }
}

/// Wraps an I/O error with the path it is about.
pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}
