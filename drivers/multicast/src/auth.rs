//! Authenticated datagrams: a shared key, a MAC per datagram, a counter per
//! sender, and a replay window per sender at every receiver.
//!
//! * **MAC.** HMAC-SHA256 under the cluster's 32-byte key, over the whole
//!   datagram header (sender role and id, destination, counter) and the body,
//!   truncated to its first 16 bytes (128 bits, as RFC 4868 truncates
//!   HMAC-SHA256 for IPsec). Only holders of the key can make a datagram a
//!   receiver accepts; changing any bit of one makes it fail. Bodies are not
//!   encrypted: anyone on the LAN can still read the values.
//! * **Counter.** Every datagram a process sends carries a 64-bit number
//!   larger than any it sent before: `epoch << 22 | seq`. `seq` counts
//!   datagrams from 0; `epoch` is the wall-clock time in milliseconds when the
//!   process started (and moves on by at least one after every 2^22
//!   datagrams). A restarted sender therefore starts above everything its
//!   previous run sent, unless it restarted within the same millisecond or the
//!   clock went back. Acceptors and proposers, which have a data directory,
//!   also store the epoch they use there (`<role>-<id>.epoch`, synced before
//!   the first datagram) and start at least one above it, so for them neither
//!   a fast restart nor a clock that went back can reuse a counter.
//! * **Replay window.** A receiver keeps, per sender (role and id), the
//!   largest counter it accepted and which of the [`WINDOW`] counters below it
//!   it has seen. A datagram whose counter was seen, or is older than the
//!   window, is a replay and is dropped; the window only moves for datagrams
//!   whose MAC verified, so forgeries cannot push it.
//!
//! What it does not cover: a receiver that starts afresh knows no counters,
//! so a recording of old traffic replayed to it is accepted until the
//! sender's current datagrams move its window past the recording. The core
//! stays safe under replayed, duplicated and delayed messages, so this can
//! cost work but not agreement.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes of key.
pub const KEY_BYTES: usize = 32;
/// Bytes of MAC carried in each datagram.
pub const TAG_BYTES: usize = 16;
/// Counters below the largest seen that a receiver still tells apart.
pub const WINDOW: u64 = 1024;
/// Bits of the per-run datagram number in a counter.
pub const SEQ_BITS: u32 = 22;

/// The shared key, ready to compute MACs.
#[derive(Clone)]
pub struct Key {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read the key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file does not hold a key.
    #[error("{path}: {message} (a key is {KEY_BYTES} bytes written as {} hex digits; `abcast keygen FILE` makes one)", KEY_BYTES * 2)]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Key {
    /// A key from its `KEY_BYTES` bytes.
    pub fn from_bytes(bytes: &[u8; KEY_BYTES]) -> Key {
        Key {
            mac: Hmac::<Sha256>::new_from_slice(bytes).expect("HMAC takes keys of any length"),
        }
    }

    /// Parses a key written as hex digits (whitespace around them is ignored).
    pub fn from_hex(text: &str) -> Result<Key, String> {
        let digits: Vec<u8> = text.trim().bytes().collect();
        if digits.len() != KEY_BYTES * 2 {
            return Err(format!(
                "{} characters where {} hex digits were expected",
                digits.len(),
                KEY_BYTES * 2
            ));
        }
        let mut key = [0u8; KEY_BYTES];
        for (i, pair) in digits.chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).ok();
            key[i] = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("'{}' is not a hex byte", String::from_utf8_lossy(pair)))?;
        }
        Ok(Key::from_bytes(&key))
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Key, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Key::from_hex(&text).map_err(|message| KeyError::Format {
            path: path.to_path_buf(),
            message,
        })
    }

    /// The tag of the concatenation of `parts`.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; TAG_BYTES] {
        let mut mac = self.mac.clone();
        for p in parts {
            mac.update(p);
        }
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&full[..TAG_BYTES]);
        tag
    }

    /// Whether `tag` is the tag of `parts` (in constant time).
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        if tag.len() != TAG_BYTES {
            return false;
        }
        let mut mac = self.mac.clone();
        for p in parts {
            mac.update(p);
        }
        mac.verify_truncated_left(tag).is_ok()
    }
}

/// Writes a fresh random key, as hex, to `path` (readable by its owner
/// only); refuses to replace an existing file.
pub fn generate_key_file(path: &Path) -> io::Result<()> {
    let mut bytes = [0u8; KEY_BYTES];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    writeln!(f, "{hex}")?;
    f.sync_all()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Largest epoch a counter can hold.
const EPOCH_MAX: u64 = (1 << (64 - SEQ_BITS)) - 1;

/// Hands out a sender's counters: `epoch << SEQ_BITS | seq`, always growing,
/// also across restarts (see the module documentation).
#[derive(Debug)]
pub struct Counter {
    epoch: u64,
    seq: u64,
    store: Option<PathBuf>,
}

impl Counter {
    /// Starts at the current time in milliseconds; with a `store` file, also
    /// above the epoch recorded there, and records the new one (synced)
    /// before returning.
    pub fn start(store: Option<PathBuf>) -> io::Result<Counter> {
        let stored = match &store {
            None => None,
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => Some(text.trim().parse::<u64>().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: not an epoch number", path.display()),
                    )
                })?),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            },
        };
        let epoch = now_ms()
            .max(stored.map_or(0, |e| e.saturating_add(1)))
            .min(EPOCH_MAX);
        let counter = Counter {
            epoch,
            seq: 0,
            store,
        };
        counter.persist()?;
        Ok(counter)
    }

    fn persist(&self) -> io::Result<()> {
        let Some(path) = &self.store else {
            return Ok(());
        };
        let tmp = path.with_extension("epoch.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{}", self.epoch)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// The next counter.
    pub fn take(&mut self) -> u64 {
        if self.seq >> SEQ_BITS != 0 {
            self.epoch = (self.epoch + 1).max(now_ms()).min(EPOCH_MAX);
            self.seq = 0;
            if let Err(e) = self.persist() {
                tracing::warn!(error = %e, "cannot record the datagram counter's epoch");
            }
        }
        let c = self.epoch << SEQ_BITS | self.seq;
        self.seq += 1;
        c
    }
}

/// Which counters of one sender a receiver has seen: the largest, and a
/// bitmap of the [`WINDOW`] below it.
#[derive(Clone, Debug, Default)]
pub struct ReplayWindow {
    top: Option<u64>,
    /// Bit `i` (word `i / 64`, bit `i % 64`): counter `top - i` was seen.
    seen: [u64; (WINDOW / 64) as usize],
}

impl ReplayWindow {
    /// Records `counter` and says whether it is new (true) or a replay:
    /// already seen, or older than the window.
    pub fn accept(&mut self, counter: u64) -> bool {
        let Some(top) = self.top else {
            self.top = Some(counter);
            self.seen = Default::default();
            self.seen[0] = 1;
            return true;
        };
        if counter > top {
            self.shift(counter - top);
            self.top = Some(counter);
            self.seen[0] |= 1;
            return true;
        }
        let age = top - counter;
        if age >= WINDOW {
            return false;
        }
        let (word, bit) = ((age / 64) as usize, age % 64);
        if self.seen[word] >> bit & 1 == 1 {
            return false;
        }
        self.seen[word] |= 1 << bit;
        true
    }

    /// Moves every bit `by` places towards the old end, dropping what falls out.
    fn shift(&mut self, by: u64) {
        if by >= WINDOW {
            self.seen = Default::default();
            return;
        }
        let words = (by / 64) as usize;
        let bits = (by % 64) as u32;
        let n = self.seen.len();
        for w in (0..n).rev() {
            let from = w.checked_sub(words);
            let high = from.map_or(0, |f| self.seen[f]);
            let low = from
                .and_then(|f| f.checked_sub(1))
                .map_or(0, |f| self.seen[f]);
            self.seen[w] = if bits == 0 {
                high
            } else {
                high << bits | low >> (64 - bits)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_verifies_only_for_its_key_and_bytes() {
        let k = Key::from_bytes(&[7; KEY_BYTES]);
        let other = Key::from_bytes(&[8; KEY_BYTES]);
        let tag = k.tag(&[b"head", b"body"]);
        assert!(
            k.verify(&[b"headbo", b"dy"], &tag),
            "parts are concatenated"
        );
        assert!(!k.verify(&[b"head", b"bodY"], &tag));
        assert!(!other.verify(&[b"head", b"body"], &tag));
        assert!(!k.verify(&[b"head", b"body"], &tag[..15]));
    }

    #[test]
    fn hex_keys_parse_and_bad_ones_say_why() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\n";
        assert!(Key::from_hex(hex).is_ok());
        assert!(Key::from_hex("abcd").unwrap_err().contains("64 hex digits"));
        let bad = hex.replace("00", "zz");
        assert!(Key::from_hex(&bad).unwrap_err().contains("not a hex byte"));
    }

    #[test]
    fn the_window_accepts_each_counter_once_and_nothing_too_old() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(5000));
        assert!(!w.accept(5000));
        assert!(w.accept(5002));
        assert!(w.accept(5001), "late but new");
        assert!(!w.accept(5001));
        assert!(w.accept(5002 - WINDOW + 1), "oldest still in the window");
        assert!(!w.accept(5002 - WINDOW), "just out of the window");
        // Jumps of every size keep the earlier counters' marks where they belong.
        for jump in [1, 63, 64, 65, 127, 500, WINDOW - 1, WINDOW, 5 * WINDOW] {
            let mut w = ReplayWindow::default();
            let base = 1 << 40;
            assert!(w.accept(base));
            assert!(w.accept(base + 3));
            assert!(w.accept(base + 3 + jump));
            assert!(!w.accept(base), "jump {jump}");
            assert!(!w.accept(base + 3), "jump {jump}");
            assert_eq!(w.accept(base + 1), jump + 2 < WINDOW, "jump {jump}");
            assert_eq!(w.accept(base + 2), jump + 1 < WINDOW, "jump {jump}");
            assert!(!w.accept(base + 2), "jump {jump}");
        }
    }

    #[test]
    fn counters_grow_across_restarts_even_within_a_millisecond() {
        let dir = tempfile_dir();
        let store = dir.join("acceptor-1.epoch");
        let mut first = Counter::start(Some(store.clone())).unwrap();
        let a = first.take();
        let b = first.take();
        assert!(b > a);
        // A restart at once: the stored epoch pushes the new run above.
        let mut second = Counter::start(Some(store.clone())).unwrap();
        let c = second.take();
        assert!(c > b, "{c} after {b}");
        // An epoch from the future (the clock went back) is still honoured.
        std::fs::write(&store, format!("{}\n", now_ms() + 3_600_000)).unwrap();
        let mut third = Counter::start(Some(store.clone())).unwrap();
        assert!(third.take() >> SEQ_BITS > now_ms() + 3_000_000);
        // Running out of sequence numbers moves the epoch on.
        third.seq = 1 << SEQ_BITS;
        let before = third.epoch;
        let d = third.take();
        assert_eq!(d >> SEQ_BITS, before + 1);
        std::fs::write(&store, "garbage").unwrap();
        assert!(Counter::start(Some(store)).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "paxos-multicast-auth-{}-{}",
            std::process::id(),
            now_ms()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
