//! An open log file: locked for the life of the [`Wal`], recovered on open,
//! appended to in groups made durable by one fsync, and rewritten atomically.

use crate::error::{io_at, WalError};
use crate::format::{DecodeError, Format, TornTail};
use serde::{de::DeserializeOwned, Serialize};
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// The lock file of the log at `log`: its path with `.lock` appended.
pub fn lock_path(log: &Path) -> PathBuf {
    with_suffix(log, ".lock")
}

/// The temporary file a rewrite of the log at `log` goes through: its path
/// with `.tmp` appended. [`Wal::open`] removes a leftover one.
pub fn temp_path(log: &Path) -> PathBuf {
    with_suffix(log, ".tmp")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

/// What [`Wal::open`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery<E> {
    /// Every entry of the log, in write order.
    pub entries: Vec<E>,
    /// The torn tail that was cut off, if any: a driver should warn about it.
    pub torn: Option<TornTail>,
    /// True if the log did not exist (or its creation never finished) and
    /// was created empty.
    pub created: bool,
}

/// An open write-ahead log of entries of type `E`.
///
/// It holds an exclusive lock on the log's [`lock_path`] until dropped, so
/// no other `Wal` (in any process) can open the same log meanwhile.
/// Appends are buffered until [`Wal::sync`]; dropping the `Wal` discards
/// what was appended but not synced, as a crash would.
pub struct Wal<E> {
    path: PathBuf,
    dir: PathBuf,
    temp: PathBuf,
    lock_path: PathBuf,
    format: Format,
    file: File,
    /// Held, never read: the lock lasts as long as this handle.
    _lock: File,
    pending: Vec<u8>,
    len_bytes: u64,
    entries: u64,
    poisoned: bool,
    _entry: PhantomData<fn(&E)>,
}

impl<E> fmt::Debug for Wal<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("len_bytes", &self.len_bytes)
            .field("pending_bytes", &self.pending.len())
            .field("entries", &self.entries)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl<E> Wal<E> {
    /// Opens the log at `path`, creating it (and its directory) if needed.
    ///
    /// In order: takes the lock (failing with [`WalError::Locked`] if it is
    /// held), removes a temporary file left by a rewrite that crashed before
    /// its rename, reads and decodes the log, and cuts a torn tail (reported
    /// in [`Recovery::torn`]). Anything else wrong with the file is an error
    /// and the file is left untouched.
    pub fn open(path: &Path, format: Format) -> Result<(Wal<E>, Recovery<E>), WalError>
    where
        E: DeserializeOwned,
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        let lock_path = lock_path(path);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_at(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(WalError::Locked {
                    path: path.to_path_buf(),
                    lock: lock_path,
                })
            }
            Err(TryLockError::Error(e)) => return Err(io_at(&lock_path)(e)),
        }
        // Only now, under the lock: the temporary may belong to a live rewrite
        // until then.
        let temp = temp_path(path);
        remove_if_present(&temp)?;

        let (bytes, existing) = match OpenOptions::new().read(true).append(true).open(path) {
            Ok(mut file) => {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes).map_err(io_at(path))?;
                (bytes, Some(file))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), None),
            Err(e) => return Err(io_at(path)(e)),
        };
        let decoded = format
            .decode::<E>(&bytes)
            .map_err(|e| WalError::from_decode(path, e))?;
        drop(bytes);
        let created = decoded.valid_len == 0;
        let file = match existing {
            Some(file) if !created => {
                if decoded.torn.is_some() {
                    file.set_len(decoded.valid_len).map_err(io_at(path))?;
                    file.sync_all().map_err(io_at(path))?;
                }
                file
            }
            // New, or its creation never finished: write the header the same
            // way a rewrite writes a whole log, so that a crash leaves either
            // nothing or a whole header.
            _ => replace_file(&temp, path, &dir, &format.file_header()).map_err(|(_, e)| e)?,
        };
        let len_bytes = if created {
            format.file_header().len() as u64
        } else {
            decoded.valid_len
        };
        let wal = Wal {
            path: path.to_path_buf(),
            dir,
            temp,
            lock_path,
            format,
            file,
            _lock: lock,
            pending: Vec::new(),
            len_bytes,
            entries: decoded.entries.len() as u64,
            poisoned: false,
            _entry: PhantomData,
        };
        let recovery = Recovery {
            entries: decoded.entries,
            torn: decoded.torn,
            created,
        };
        Ok((wal, recovery))
    }

    /// Buffers `entry`; it is durable once [`Wal::sync`] returns.
    pub fn append(&mut self, entry: &E) -> Result<(), WalError>
    where
        E: Serialize,
    {
        self.check_usable()?;
        self.format
            .encode_record(entry, &mut self.pending)
            .map_err(|source| WalError::Encode {
                path: self.path.clone(),
                source,
            })?;
        self.entries += 1;
        Ok(())
    }

    /// Buffers records encoded elsewhere with [`Format::encode_record`] of
    /// this log's format (say, on another thread). The batch is checked for
    /// whole records with matching checksums and the size limit; a bad batch
    /// is refused whole.
    pub fn append_encoded(&mut self, records: &[u8]) -> Result<(), WalError> {
        self.check_usable()?;
        let count = self.format.check_records(records).map_err(|e| match e {
            DecodeError::Corrupt { offset, damage } => WalError::BadBatch {
                path: self.path.clone(),
                offset,
                damage,
            },
            other => WalError::from_decode(&self.path, other),
        })?;
        self.pending.extend_from_slice(records);
        self.entries += count;
        Ok(())
    }

    /// Writes everything buffered and waits until it is on disk: one write
    /// and one fsync for any number of appends (group commit). Does nothing
    /// if nothing is buffered. After a failure the log refuses all further
    /// writes ([`WalError::Poisoned`]): what reached the disk is unknown.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let written = self
            .file
            .write_all(&self.pending)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            self.poisoned = true;
            return Err(io_at(&self.path)(e));
        }
        self.len_bytes += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Replaces the whole log by `entries`, atomically: anything buffered is
    /// synced first, then the new log is written to [`temp_path`], synced,
    /// renamed over the log, and the directory synced. A crash at any point
    /// leaves either the old log or the new one. If this fails before the
    /// rename the old log stays in use; after it, the log is poisoned.
    pub fn rewrite(&mut self, entries: &[E]) -> Result<(), WalError>
    where
        E: Serialize,
    {
        self.check_usable()?;
        let bytes = self
            .format
            .encode_log(entries)
            .map_err(|source| WalError::Encode {
                path: self.path.clone(),
                source,
            })?;
        self.sync()?;
        match replace_file(&self.temp, &self.path, &self.dir, &bytes) {
            Ok(file) => self.file = file,
            Err((renamed, e)) => {
                self.poisoned = renamed;
                return Err(e);
            }
        }
        self.len_bytes = bytes.len() as u64;
        self.entries = entries.len() as u64;
        Ok(())
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file held while this `Wal` lives.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// The log's format.
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// Bytes written to the log file (header included), not counting what is
    /// buffered.
    pub fn len_bytes(&self) -> u64 {
        self.len_bytes
    }

    /// Bytes appended and not yet synced.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// True when appended entries wait for a [`Wal::sync`].
    pub fn is_dirty(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Entries in the log, counting those not yet synced.
    pub fn entry_count(&self) -> u64 {
        self.entries
    }

    fn check_usable(&self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned {
                path: self.path.clone(),
            });
        }
        Ok(())
    }
}

fn remove_if_present(path: &Path) -> Result<(), WalError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_at(path)(e)),
    }
}

/// Writes `bytes` to `temp`, syncs it, renames it over `path` and syncs
/// `dir`. Returns the new file, open for appending. On error, says whether
/// the rename had already happened.
fn replace_file(
    temp: &Path,
    path: &Path,
    dir: &Path,
    bytes: &[u8],
) -> Result<File, (bool, WalError)> {
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()?;
            Ok(f)
        });
    let file = written
        .map_err(io_at(temp))
        .and_then(|f| fs::rename(temp, path).map(|()| f).map_err(io_at(path)))
        .map_err(|e| {
            // Best effort: open removes a leftover temporary anyway.
            let _ = fs::remove_file(temp);
            (false, e)
        })?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| (true, io_at(dir)(e)))?;
    Ok(file)
}
