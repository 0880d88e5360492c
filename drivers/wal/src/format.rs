//! The on-disk format as pure functions over byte slices: the file header,
//! record framing, encoding, and the decoder that recovery (and the fuzzer) runs.
//!
//! A log is a [`FILE_HEADER_BYTES`]-byte file header followed by records:
//!
//! ```text
//! file header  magic "PAXOSWAL" (8) | version u32 LE (4) | tag (8) | CRC32C of the 20 bytes before (4)
//! record       payload length u32 LE (4) | CRC32C of the payload (4) | CRC32C of those 8 bytes (4) | payload
//! ```
//!
//! The payload is one postcard-encoded entry. Decoding never panics: every
//! outcome is an entry list, a torn tail to cut, or a [`DecodeError`].

use serde::{de::DeserializeOwned, Serialize};
use std::fmt;

/// First bytes of every log file.
pub const MAGIC: [u8; 8] = *b"PAXOSWAL";
/// The format version this crate writes and reads.
pub const VERSION: u32 = 2;
/// Bytes of the file header.
pub const FILE_HEADER_BYTES: usize = 24;
/// Bytes of a record header.
pub const RECORD_HEADER_BYTES: usize = 12;

/// Names the application whose entries a log holds, so that one program's log
/// is never read as another's. Eight bytes, printable ASCII by convention
/// (e.g. `Tag::new(*b"pxchat01")`); bump it when the entry type changes
/// incompatibly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tag(pub [u8; 8]);

impl Tag {
    /// A tag from its eight bytes.
    pub const fn new(bytes: [u8; 8]) -> Tag {
        Tag(bytes)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.escape_ascii())
    }
}

/// What one application's logs look like: its tag and its record size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// Written into the file header and checked on every open.
    pub tag: Tag,
    /// Largest payload a record may have, in bytes. Appending a larger entry
    /// is refused; reading a header that claims more is corruption.
    pub max_record_bytes: u32,
}

/// Why an entry could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The entry's encoding is larger than the format's record limit.
    #[error("the entry encodes to {bytes} bytes, more than the {max}-byte record limit")]
    TooLarge {
        /// Its encoded size.
        bytes: usize,
        /// [`Format::max_record_bytes`].
        max: u32,
    },
    /// The entry's `Serialize` implementation failed.
    #[error("the entry cannot be serialized: {0}")]
    Serialize(#[from] postcard::Error),
}

/// What is wrong with a damaged part of a log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    /// The file header's checksum does not match.
    #[error("the file header's checksum does not match")]
    FileHeader,
    /// A record header's checksum does not match.
    #[error("the record header's checksum does not match")]
    HeaderChecksum,
    /// A record's payload does not match its checksum.
    #[error("the record's payload does not match its checksum")]
    PayloadChecksum,
    /// A record header (with a valid checksum) claims a payload over the limit.
    #[error("the record claims {len} bytes, more than the {max}-byte record limit")]
    TooLarge {
        /// The claimed payload length.
        len: u32,
        /// [`Format::max_record_bytes`].
        max: u32,
    },
    /// Checksums match but the payload is not an entry of this type.
    #[error("the checksums match but the payload is not a valid entry ({0})")]
    Undecodable(postcard::Error),
    /// The payload holds an entry followed by bytes that belong to none.
    #[error("the checksums match but {0} bytes follow the entry in its payload")]
    TrailingBytes(usize),
    /// A pre-encoded batch ends in the middle of a record.
    #[error("the batch ends in the middle of a record")]
    Incomplete,
}

/// Why bytes are not a log that may be recovered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The file does not start with [`MAGIC`].
    #[error("not a paxos-wal log (unknown magic bytes)")]
    BadMagic,
    /// The file header names a format version this crate does not read.
    #[error("log format version {found}; this program reads version {VERSION}")]
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
    },
    /// The log belongs to another application.
    #[error("the log belongs to `{found}`, not `{expected}`")]
    WrongTag {
        /// The tag in the file.
        found: Tag,
        /// The tag the caller expects.
        expected: Tag,
    },
    /// Damage that is not a torn tail: valid records follow it, or the
    /// checksums match and the content is still wrong.
    #[error("corrupt at byte offset {offset}: {damage}")]
    Corrupt {
        /// Where the damaged record (or header) starts.
        offset: u64,
        /// What is wrong with it.
        damage: Damage,
    },
}

/// How the end of a log was cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TornCause {
    /// The last record (or the file header) runs past the end of the file.
    CutShort,
    /// Everything from the torn record on is zero bytes.
    ZeroFilled,
    /// The damaged record has no valid record anywhere after it.
    BadChecksum,
}

impl fmt::Display for TornCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TornCause::CutShort => "the last record was cut short",
            TornCause::ZeroFilled => "the tail is zero-filled",
            TornCause::BadChecksum => "the last record's checksum does not match",
        })
    }
}

/// A torn tail: bytes at the end of a log that a crash left incomplete. They
/// were never synced, so nothing acknowledged depends on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Where the torn part starts (the end of the valid log).
    pub offset: u64,
    /// How many bytes it has.
    pub bytes: u64,
    /// Which form of tearing it is.
    pub cause: TornCause,
}

/// A decoded log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded<E> {
    /// Every entry, in write order.
    pub entries: Vec<E>,
    /// Length of the valid prefix: the file header and whole records. Zero
    /// when the file header itself is missing or torn (a log whose creation
    /// never finished).
    pub valid_len: u64,
    /// The torn tail after `valid_len`, if any.
    pub torn: Option<TornTail>,
}

/// One record at the start of a slice, as far as framing goes.
enum Frame<'a> {
    /// Complete, both checksums match.
    Whole { payload: &'a [u8], end: usize },
    /// The header or payload runs past the end of the slice.
    Short,
    /// A checksum does not match.
    Bad(Damage),
    /// The header is sound but claims more than the limit.
    TooLarge(u32),
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(word))
}

/// The 12-byte header of a record whose payload has `len` bytes and checksum `crc`.
fn record_header(len: u32, crc: u32) -> [u8; RECORD_HEADER_BYTES] {
    let mut h = [0; RECORD_HEADER_BYTES];
    let (lc, hc) = h.split_at_mut(8);
    let (l, c) = lc.split_at_mut(4);
    l.copy_from_slice(&len.to_le_bytes());
    c.copy_from_slice(&crc.to_le_bytes());
    let header_crc = crc32c::crc32c(lc);
    hc.copy_from_slice(&header_crc.to_le_bytes());
    h
}

/// A postcard output that appends to a borrowed vector, so that a failed
/// encoding leaves the caller's buffer to be cut back instead of lost.
struct Appender<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Appender<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

impl Format {
    /// A format with `tag` and a record limit of `max_record_bytes`.
    pub const fn new(tag: Tag, max_record_bytes: u32) -> Format {
        Format {
            tag,
            max_record_bytes,
        }
    }

    /// The file header of a log in this format.
    pub fn file_header(&self) -> [u8; FILE_HEADER_BYTES] {
        let mut h = [0; FILE_HEADER_BYTES];
        let (body, crc) = h.split_at_mut(FILE_HEADER_BYTES - 4);
        let (magic, rest) = body.split_at_mut(MAGIC.len());
        let (version, tag) = rest.split_at_mut(4);
        magic.copy_from_slice(&MAGIC);
        version.copy_from_slice(&VERSION.to_le_bytes());
        tag.copy_from_slice(&self.tag.0);
        crc.copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
        h
    }

    /// Appends `entry` to `buf` as one framed record. On error `buf` is left
    /// as it was.
    pub fn encode_record<E: Serialize + ?Sized>(
        &self,
        entry: &E,
        buf: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let start = buf.len();
        buf.extend_from_slice(&[0; RECORD_HEADER_BYTES]);
        let payload_start = buf.len();
        let encoded = postcard::serialize_with_flavor(entry, Appender(buf));
        let bytes = buf.len().saturating_sub(payload_start);
        let len = match encoded {
            Err(e) => Err(EncodeError::Serialize(e)),
            Ok(()) => match u32::try_from(bytes) {
                Ok(len) if len <= self.max_record_bytes => Ok(len),
                _ => Err(EncodeError::TooLarge {
                    bytes,
                    max: self.max_record_bytes,
                }),
            },
        };
        let len = match len {
            Ok(len) => len,
            Err(e) => {
                buf.truncate(start);
                return Err(e);
            }
        };
        let crc = crc32c::crc32c(buf.get(payload_start..).unwrap_or_default());
        if let Some(slot) = buf.get_mut(start..payload_start) {
            slot.copy_from_slice(&record_header(len, crc));
        }
        Ok(())
    }

    /// A whole log holding `entries`: the file header, then one record each.
    pub fn encode_log<E: Serialize>(&self, entries: &[E]) -> Result<Vec<u8>, EncodeError> {
        let mut buf = self.file_header().to_vec();
        for entry in entries {
            self.encode_record(entry, &mut buf)?;
        }
        Ok(buf)
    }

    /// Checks that `frames` is a sequence of whole records in this format
    /// (as [`Format::encode_record`] makes them) and returns how many there
    /// are. Payloads are checksummed, not decoded.
    pub fn check_records(&self, frames: &[u8]) -> Result<u64, DecodeError> {
        let mut at = 0;
        let mut count = 0;
        while let Some(rest) = frames.get(at..).filter(|r| !r.is_empty()) {
            let damage = match self.frame(rest) {
                Frame::Whole { end, .. } => {
                    at += end;
                    count += 1;
                    continue;
                }
                Frame::Short => Damage::Incomplete,
                Frame::Bad(d) => d,
                Frame::TooLarge(len) => Damage::TooLarge {
                    len,
                    max: self.max_record_bytes,
                },
            };
            return Err(DecodeError::Corrupt {
                offset: at as u64,
                damage,
            });
        }
        Ok(count)
    }

    /// Decodes a whole log file.
    ///
    /// Returns the entries, the length of the valid prefix and the torn tail
    /// after it. A tail is torn (and reported, not refused) when the last
    /// record runs past the end of the file, when everything from a damaged
    /// record on is zero bytes, or when no valid record follows a record
    /// whose checksum fails. Damage with a valid record anywhere after it, a
    /// record over the size limit, and a payload that passes its checksum but
    /// does not decode are [`DecodeError::Corrupt`]. An empty file, or one
    /// holding only a prefix of this format's file header, decodes to no
    /// entries with `valid_len` 0.
    pub fn decode<E: DeserializeOwned>(&self, bytes: &[u8]) -> Result<Decoded<E>, DecodeError> {
        let mut entries = Vec::new();
        let torn_at = |at: usize, cause: TornCause| TornTail {
            offset: at as u64,
            bytes: bytes.len().saturating_sub(at) as u64,
            cause,
        };
        let mut at = match self.check_file_header(bytes)? {
            Some(end) => end,
            None => {
                let torn = (!bytes.is_empty()).then(|| torn_at(0, TornCause::CutShort));
                return Ok(Decoded {
                    entries,
                    valid_len: 0,
                    torn,
                });
            }
        };
        let mut torn = None;
        while let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) {
            let zero = || rest.iter().all(|&b| b == 0);
            match self.frame(rest) {
                Frame::Whole { payload, end } => {
                    let corrupt = |damage| DecodeError::Corrupt {
                        offset: at as u64,
                        damage,
                    };
                    let (entry, left) = postcard::take_from_bytes::<E>(payload)
                        .map_err(|e| corrupt(Damage::Undecodable(e)))?;
                    if !left.is_empty() {
                        return Err(corrupt(Damage::TrailingBytes(left.len())));
                    }
                    entries.push(entry);
                    at += end;
                }
                Frame::Short => {
                    let cause = if zero() {
                        TornCause::ZeroFilled
                    } else {
                        TornCause::CutShort
                    };
                    torn = Some(torn_at(at, cause));
                    break;
                }
                Frame::TooLarge(len) => {
                    return Err(DecodeError::Corrupt {
                        offset: at as u64,
                        damage: Damage::TooLarge {
                            len,
                            max: self.max_record_bytes,
                        },
                    });
                }
                Frame::Bad(damage) => {
                    if self.valid_record_after(rest) {
                        return Err(DecodeError::Corrupt {
                            offset: at as u64,
                            damage,
                        });
                    }
                    let cause = if zero() {
                        TornCause::ZeroFilled
                    } else {
                        TornCause::BadChecksum
                    };
                    torn = Some(torn_at(at, cause));
                    break;
                }
            }
        }
        Ok(Decoded {
            entries,
            valid_len: at as u64,
            torn,
        })
    }

    /// Checks the file header. `Some(end)` when it is whole and ours; `None`
    /// when the file is empty or holds only a prefix of our header.
    fn check_file_header(&self, bytes: &[u8]) -> Result<Option<usize>, DecodeError> {
        let expected = self.file_header();
        let n = bytes.len().min(FILE_HEADER_BYTES);
        let (have, want) = (bytes.get(..n).unwrap_or_default(), expected.get(..n));
        if Some(have) == want {
            return Ok((n == FILE_HEADER_BYTES).then_some(n));
        }
        let magic = MAGIC.len().min(n);
        if have.get(..magic) != MAGIC.get(..magic) {
            return Err(DecodeError::BadMagic);
        }
        if let Some(found) = u32_at(have, MAGIC.len()).filter(|&v| v != VERSION) {
            return Err(DecodeError::UnsupportedVersion { found });
        }
        let crc_at = FILE_HEADER_BYTES - 4;
        let crc_ok = match (u32_at(have, crc_at), have.get(..crc_at)) {
            (Some(crc), Some(body)) => crc32c::crc32c(body) == crc,
            _ => true, // cut before its checksum: judge the tag as it is
        };
        let tag: Option<[u8; 8]> = have.get(12..20).and_then(|t| t.try_into().ok());
        match tag {
            Some(found) if crc_ok && found != self.tag.0 => Err(DecodeError::WrongTag {
                found: Tag(found),
                expected: self.tag,
            }),
            _ => Err(DecodeError::Corrupt {
                offset: 0,
                damage: Damage::FileHeader,
            }),
        }
    }

    /// Frames the record at the start of `rest`.
    fn frame<'a>(&self, rest: &'a [u8]) -> Frame<'a> {
        let (Some(len), Some(crc), Some(header_crc), Some(head)) = (
            u32_at(rest, 0),
            u32_at(rest, 4),
            u32_at(rest, 8),
            rest.get(..8),
        ) else {
            return Frame::Short;
        };
        if crc32c::crc32c(head) != header_crc {
            return Frame::Bad(Damage::HeaderChecksum);
        }
        if len > self.max_record_bytes {
            return Frame::TooLarge(len);
        }
        let end = RECORD_HEADER_BYTES.saturating_add(len as usize);
        let Some(payload) = rest.get(RECORD_HEADER_BYTES..end) else {
            return Frame::Short;
        };
        if crc32c::crc32c(payload) != crc {
            return Frame::Bad(Damage::PayloadChecksum);
        }
        Frame::Whole { payload, end }
    }

    /// True if a whole, checksummed record starts anywhere in `rest` after
    /// its first byte: then damage at its start is not a torn tail.
    fn valid_record_after(&self, rest: &[u8]) -> bool {
        (1..rest.len()).any(|i| {
            rest.get(i..)
                .is_some_and(|r| matches!(self.frame(r), Frame::Whole { .. }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Format = Format::new(Tag::new(*b"test-log"), 1 << 16);

    #[test]
    fn a_zero_header_never_passes_its_checksum() {
        // The zero-filled-tail rule relies on it.
        assert_ne!(crc32c::crc32c(&[0; 8]), 0);
    }

    #[test]
    fn every_prefix_of_the_file_header_is_a_torn_creation() {
        let header = F.file_header();
        for n in 1..FILE_HEADER_BYTES {
            let d = F.decode::<u32>(&header[..n]).unwrap();
            assert_eq!((d.valid_len, d.torn.map(|t| t.bytes)), (0, Some(n as u64)));
        }
        let d = F.decode::<u32>(&header).unwrap();
        assert_eq!((d.valid_len, d.torn), (FILE_HEADER_BYTES as u64, None));
    }

    #[test]
    fn encode_leaves_the_buffer_alone_on_error() {
        let small = Format::new(F.tag, 3);
        let mut buf = vec![1, 2, 3];
        let err = small.encode_record(&"too long", &mut buf).unwrap_err();
        assert!(matches!(err, EncodeError::TooLarge { bytes: 9, max: 3 }));
        assert_eq!(buf, [1, 2, 3]);
    }

    #[test]
    fn check_records_counts_whole_records_and_refuses_a_partial_one() {
        let mut buf = Vec::new();
        for i in 0..3u64 {
            F.encode_record(&i, &mut buf).unwrap();
        }
        assert_eq!(F.check_records(&buf), Ok(3));
        let err = F.check_records(&buf[..buf.len() - 1]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Corrupt {
                offset: 2 * (RECORD_HEADER_BYTES as u64 + 1),
                damage: Damage::Incomplete
            }
        );
    }
}
