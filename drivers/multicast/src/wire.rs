//! The datagram format: an 18-byte header naming the sender (role and id) and
//! the destination, then one postcard-encoded core [`Message`]. Whatever does
//! not parse is refused, never trusted.
//!
//! ```text
//! offset 0  2 bytes  magic "Px"
//!        2  1 byte   format version (2)
//!        3  1 byte   sender role (1 client, 2 proposer, 3 acceptor, 4 learner)
//!        4  4 bytes  sender id, u32 little-endian
//!        8  1 byte   destination kind: 0 one process, 1 a group of roles
//!        9  1 byte   one process: its role code; a group: the role set's bits
//!                    (1 proposer, 2 acceptor, 4 learner, 8 client)
//!       10  4 bytes  one process: its id, u32 little-endian; a group: 0
//!       14  4 bytes  CRC32C of bytes 0..14 and of the body, little-endian
//!       18  ...      body: postcard encoding of Message<String>, nothing after it
//! ```
//!
//! With a key ([`crate::auth`]), datagrams are version 4: the same first 14
//! bytes, then a counter and a MAC instead of the checksum.
//!
//! ```text
//!       14  8 bytes  the sender's counter, u64 little-endian
//!       22 16 bytes  HMAC-SHA256 of bytes 0..22 and of the body, first 16 bytes
//!       38  ...      body
//! ```
//! A keyed process accepts only version 4 and a keyless one only version 3,
//! so the two never mix silently.
//!
//! Every process of a role listens on that role's group, so a datagram
//! reaches processes it is not for; each receiver keeps only what the core's
//! [`Destination::reaches`] says is its own. The sender's role and id are
//! what the core counts in quorums and checks against ballots: a learner
//! posing as acceptor 1 is ignored by the core, which counts votes only from
//! acceptors.

use crate::auth::Key;
use paxos_core::{Addr, Destination, Message, NodeId, Process, Role, Roles};
use std::fmt;

/// The message type every role exchanges: commands are lines of text.
pub type Msg = Message<String>;

/// First two bytes of every datagram.
pub const MAGIC: [u8; 2] = *b"Px";
/// Format version; a datagram of another version is foreign. 2: the header
/// names the destination, and its checksum covers the header too. 3:
/// heartbeats carry a beat number and acceptors acknowledge them.
pub const VERSION: u8 = 3;
/// Bytes before the body.
pub const HEADER_BYTES: usize = 18;
/// Format version of authenticated datagrams.
pub const AUTH_VERSION: u8 = 4;
/// Bytes before the body of an authenticated datagram.
pub const AUTH_HEADER_BYTES: usize = 38;
/// Where the counter of an authenticated datagram starts.
const COUNTER_AT: usize = 14;
/// Where its MAC starts.
const TAG_AT: usize = COUNTER_AT + 8;

/// Which of the two datagram formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Version 2: a CRC32C, no authentication.
    Plain,
    /// Version 3: a counter and a MAC; [`sign`] fills them in.
    Authenticated,
}

impl Framing {
    /// Bytes before the body.
    pub fn header_bytes(self) -> usize {
        match self {
            Framing::Plain => HEADER_BYTES,
            Framing::Authenticated => AUTH_HEADER_BYTES,
        }
    }
}
/// Largest datagram we send or accept. Below the 65 507 bytes UDP over IPv4
/// allows, so that it leaves room and never fragments on a 64 KiB MTU link.
pub const DATAGRAM_BYTES_MAX: usize = 65_000;

/// The role's code in the header.
fn code(role: Role) -> u8 {
    match role {
        Role::Client => 1,
        Role::Proposer => 2,
        Role::Acceptor => 3,
        Role::Learner => 4,
    }
}

fn from_code(code_byte: u8) -> Option<Role> {
    Role::ALL.into_iter().find(|&r| code(r) == code_byte)
}

/// Parses a role as the command line names it.
pub fn parse_role(s: &str) -> Result<Role, String> {
    Role::ALL
        .into_iter()
        .find(|r| r.name() == s)
        .ok_or_else(|| {
            format!("invalid role '{s}' (expected client, proposer, acceptor or learner)")
        })
}

/// Who sent a datagram: a process of one role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sender {
    /// The sender's role.
    pub role: Role,
    /// Its id within that role.
    pub id: NodeId,
}

impl Sender {
    /// The sender as the core sees it.
    pub fn process(self) -> Process {
        Process::only(self.role, self.id)
    }
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.role, self.id.0)
    }
}

/// Why a datagram was refused on receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the header.
    #[error("shorter than the {HEADER_BYTES}-byte header")]
    Short,
    /// Not our magic or version: some other program's traffic.
    #[error("not an abcast datagram (magic or version)")]
    Foreign,
    /// An unknown role code or role set.
    #[error("unknown role {0}")]
    Role(u8),
    /// An unknown destination kind.
    #[error("unknown destination kind {0}")]
    Destination(u8),
    /// The datagram does not match its checksum (truncated or damaged).
    #[error("checksum mismatch")]
    Checksum,
    /// The body is not one whole message.
    #[error("body does not decode to one message")]
    Body,
    /// A version 3 datagram, to a process that has a key.
    #[error("not authenticated (a sender without the key)")]
    Unauthenticated,
    /// A version 4 datagram, to a process that has no key.
    #[error("authenticated, and this process has no key")]
    NeedsKey,
    /// The MAC does not verify: forged, or changed on the way.
    #[error("the MAC does not verify (forged or tampered)")]
    BadMac,
}

/// A message that does not fit in one datagram and cannot be split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {kind} message of {bytes} bytes does not fit in a {DATAGRAM_BYTES_MAX}-byte datagram")]
pub struct Oversize {
    /// The message kind.
    pub kind: &'static str,
    /// Its encoded size.
    pub bytes: usize,
}

/// Encodes one datagram from `from` to `to` into `buf` (cleared first).
pub fn encode(from: Sender, to: Destination, msg: &Msg, buf: &mut Vec<u8>) -> Result<(), Oversize> {
    encode_as(Framing::Plain, from, to, msg, buf)
}

/// Encodes one datagram in the given framing. An authenticated one still
/// needs [`sign`].
pub fn encode_as(
    framing: Framing,
    from: Sender,
    to: Destination,
    msg: &Msg,
    buf: &mut Vec<u8>,
) -> Result<(), Oversize> {
    start(framing, from, to, buf);
    let body = postcard::to_extend(msg, std::mem::take(buf)).map_err(|_| Oversize {
        kind: msg.kind(),
        bytes: usize::MAX,
    })?;
    *buf = body;
    if buf.len() > DATAGRAM_BYTES_MAX {
        return Err(Oversize {
            kind: msg.kind(),
            bytes: buf.len(),
        });
    }
    if framing == Framing::Plain {
        finish(buf);
    }
    Ok(())
}

/// Writes `counter` into an authenticated datagram and its MAC under `key`.
pub fn sign(datagram: &mut [u8], counter: u64, key: &Key) {
    datagram[COUNTER_AT..TAG_AT].copy_from_slice(&counter.to_le_bytes());
    let tag = key.tag(&[&datagram[..TAG_AT], &datagram[AUTH_HEADER_BYTES..]]);
    datagram[TAG_AT..AUTH_HEADER_BYTES].copy_from_slice(&tag);
}

/// Wraps an already-encoded `body` in an authenticated header with `counter`
/// and its MAC under `key` (tests and the fuzzer use it, as [`seal`]).
pub fn seal_signed(
    from: Sender,
    to: Destination,
    body: &[u8],
    counter: u64,
    key: &Key,
    buf: &mut Vec<u8>,
) {
    start(Framing::Authenticated, from, to, buf);
    buf.extend_from_slice(body);
    sign(buf, counter, key);
}

/// Wraps an already-encoded `body` in a header from `from` to `to` with its
/// checksum, into `buf` (cleared first). [`encode`] is this after postcard;
/// tests and the fuzzer use it to reach the body decoder with bytes no real
/// sender would produce.
pub fn seal(from: Sender, to: Destination, body: &[u8], buf: &mut Vec<u8>) {
    start(Framing::Plain, from, to, buf);
    buf.extend_from_slice(body);
    finish(buf);
}

/// Clears `buf` and writes the header with a zero checksum (or counter and MAC).
fn start(framing: Framing, from: Sender, to: Destination, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&MAGIC);
    buf.push(match framing {
        Framing::Plain => VERSION,
        Framing::Authenticated => AUTH_VERSION,
    });
    buf.push(code(from.role));
    buf.extend_from_slice(&from.id.0.to_le_bytes());
    match to {
        Destination::To(addr) => {
            buf.push(0);
            buf.push(code(addr.role));
            buf.extend_from_slice(&addr.id.0.to_le_bytes());
        }
        Destination::Group(roles) => {
            buf.push(1);
            buf.push(roles.bits());
            buf.extend_from_slice(&[0; 4]);
        }
    }
    buf.resize(framing.header_bytes(), 0);
}

/// The checksum of a datagram: header up to the checksum field, then body.
fn checksum(bytes: &[u8]) -> u32 {
    let head = crc32c::crc32c(&bytes[..HEADER_BYTES - 4]);
    crc32c::crc32c_append(head, &bytes[HEADER_BYTES..])
}

/// Fills in the checksum.
fn finish(buf: &mut [u8]) {
    let crc = checksum(buf);
    buf[HEADER_BYTES - 4..HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// Encodes `msg` into as many datagrams as it needs. `Decided`, `Votes` and
/// `Forward` are lists whose parts mean the same as the whole, so they are
/// split in halves until each part fits; any other message that does not fit
/// is refused.
pub fn encode_split(
    from: Sender,
    to: Destination,
    msg: Msg,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), Oversize> {
    encode_split_as(Framing::Plain, from, to, msg, out)
}

/// [`encode_split`] in the given framing (authenticated parts still need [`sign`]).
pub fn encode_split_as(
    framing: Framing,
    from: Sender,
    to: Destination,
    msg: Msg,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), Oversize> {
    let mut buf = Vec::new();
    match encode_as(framing, from, to, &msg, &mut buf) {
        Ok(()) => {
            out.push(buf);
            Ok(())
        }
        Err(e) => match split(msg) {
            Some((a, b)) => {
                encode_split_as(framing, from, to, a, out)?;
                encode_split_as(framing, from, to, b, out)
            }
            None => Err(e),
        },
    }
}

fn split(msg: Msg) -> Option<(Msg, Msg)> {
    match msg {
        Message::Decided {
            first_slot,
            mut values,
        } if values.len() > 1 => {
            let tail = values.split_off(values.len() / 2);
            let tail_slot = first_slot + values.len() as u64;
            Some((
                Message::Decided { first_slot, values },
                Message::Decided {
                    first_slot: tail_slot,
                    values: tail,
                },
            ))
        }
        Message::Votes {
            first_slot,
            query,
            mut votes,
        } if votes.len() > 1 => {
            let tail = votes.split_off(votes.len() / 2);
            let tail_slot = first_slot + votes.len() as u64;
            Some((
                Message::Votes {
                    first_slot,
                    query,
                    votes,
                },
                Message::Votes {
                    first_slot: tail_slot,
                    query,
                    votes: tail,
                },
            ))
        }
        Message::Forward { mut commands } if commands.len() > 1 => {
            let tail = commands.split_off(commands.len() / 2);
            Some((
                Message::Forward { commands },
                Message::Forward { commands: tail },
            ))
        }
        _ => None,
    }
}

/// One decoded datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Who sent it.
    pub from: Sender,
    /// Whom it is for.
    pub to: Destination,
    /// The message.
    pub msg: Msg,
}

/// Decodes one unauthenticated (version 3) datagram, checking everything:
/// header, checksum, and that the body is exactly one message.
pub fn decode(bytes: &[u8]) -> Result<Datagram, DecodeError> {
    if bytes.len() < 3 || bytes[0..2] != MAGIC {
        return Err(if bytes.len() < HEADER_BYTES {
            DecodeError::Short
        } else {
            DecodeError::Foreign
        });
    }
    match bytes[2] {
        VERSION => {}
        AUTH_VERSION => return Err(DecodeError::NeedsKey),
        _ => return Err(DecodeError::Foreign),
    }
    if bytes.len() < HEADER_BYTES {
        return Err(DecodeError::Short);
    }
    if checksum(bytes) != u32_at(bytes, HEADER_BYTES - 4) {
        return Err(DecodeError::Checksum);
    }
    parse(bytes, HEADER_BYTES)
}

/// Checks and decodes one authenticated (version 4) datagram: the MAC under
/// `key` first, then header and body. Returns it with the sender's counter,
/// which the caller checks against its replay window.
pub fn open(bytes: &[u8], key: &Key) -> Result<(Datagram, u64), DecodeError> {
    if bytes.len() < 3 || bytes[0..2] != MAGIC {
        return Err(if bytes.len() < AUTH_HEADER_BYTES {
            DecodeError::Short
        } else {
            DecodeError::Foreign
        });
    }
    match bytes[2] {
        AUTH_VERSION => {}
        VERSION => return Err(DecodeError::Unauthenticated),
        _ => return Err(DecodeError::Foreign),
    }
    if bytes.len() < AUTH_HEADER_BYTES {
        return Err(DecodeError::Short);
    }
    let tag = &bytes[TAG_AT..AUTH_HEADER_BYTES];
    if !key.verify(&[&bytes[..TAG_AT], &bytes[AUTH_HEADER_BYTES..]], tag) {
        return Err(DecodeError::BadMac);
    }
    let mut counter = [0; 8];
    counter.copy_from_slice(&bytes[COUNTER_AT..TAG_AT]);
    let datagram = parse(bytes, AUTH_HEADER_BYTES)?;
    Ok((datagram, u64::from_le_bytes(counter)))
}

/// Parses the sender, the destination and the body that starts at `body_at`.
fn parse(bytes: &[u8], body_at: usize) -> Result<Datagram, DecodeError> {
    let role = from_code(bytes[3]).ok_or(DecodeError::Role(bytes[3]))?;
    let from = Sender {
        role,
        id: NodeId(u32_at(bytes, 4)),
    };
    let to = match bytes[8] {
        0 => Destination::To(Addr::new(
            from_code(bytes[9]).ok_or(DecodeError::Role(bytes[9]))?,
            NodeId(u32_at(bytes, 10)),
        )),
        1 => Destination::Group(Roles::from_bits(bytes[9]).ok_or(DecodeError::Role(bytes[9]))?),
        kind => return Err(DecodeError::Destination(kind)),
    };
    let body = &bytes[body_at..];
    let (msg, rest): (Msg, _) = postcard::take_from_bytes(body).map_err(|_| DecodeError::Body)?;
    if !rest.is_empty() {
        return Err(DecodeError::Body);
    }
    Ok(Datagram { from, to, msg })
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::{Ballot, Command, Value};

    const ACCEPTOR_2: Sender = Sender {
        role: Role::Acceptor,
        id: NodeId(2),
    };
    const LEARNER_1: Sender = Sender {
        role: Role::Learner,
        id: NodeId(1),
    };
    const TO_LEADER: Destination = Destination::to(Role::Proposer, NodeId(1));
    const TO_LEARNERS: Destination = Destination::Group(Roles::LEARNER);

    fn line(seq: u64, op: &str) -> Command<String> {
        Command {
            client: 9,
            seq,
            op: op.to_string(),
        }
    }

    fn accepted() -> Msg {
        Message::Accepted {
            ballot: Ballot::new(3, NodeId(1)),
            slot: 17,
            value: Some(Value::One(line(1, "hello"))),
        }
    }

    fn datagram(from: Sender, to: Destination, msg: Msg) -> Datagram {
        Datagram { from, to, msg }
    }

    #[test]
    fn datagram_round_trips_with_sender_and_destination() {
        let mut buf = Vec::new();
        for to in [TO_LEADER, TO_LEARNERS, Destination::Group(Roles::ALL)] {
            encode(ACCEPTOR_2, to, &accepted(), &mut buf).unwrap();
            assert_eq!(decode(&buf), Ok(datagram(ACCEPTOR_2, to, accepted())));
        }
    }

    #[test]
    fn every_truncation_of_a_datagram_is_refused() {
        let mut buf = Vec::new();
        encode(ACCEPTOR_2, TO_LEADER, &accepted(), &mut buf).unwrap();
        for len in 0..buf.len() {
            assert!(decode(&buf[..len]).is_err(), "truncated to {len} bytes");
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused() {
        let mut buf = Vec::new();
        encode(ACCEPTOR_2, TO_LEADER, &accepted(), &mut buf).unwrap();
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                assert!(decode(&bad).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn foreign_and_random_bytes_are_refused() {
        assert_eq!(
            decode(b"hello, world! this is not ours"),
            Err(DecodeError::Foreign)
        );
        let mut state = 0x1234_5678_u64;
        for len in 0..2000 {
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    if i < 3 {
                        b"Px\x02"[i]
                    } else {
                        state as u8
                    }
                })
                .collect();
            assert!(decode(&bytes).is_err());
        }
    }

    #[test]
    fn oversize_decided_is_split_into_consecutive_parts() {
        let big = "x".repeat(10_000);
        let values: Vec<Value<String>> = (0..20).map(|i| Value::One(line(i, &big))).collect();
        let msg = Message::Decided {
            first_slot: 100,
            values: values.clone(),
        };
        let mut out = Vec::new();
        encode_split(LEARNER_1, TO_LEARNERS, msg, &mut out).unwrap();
        assert!(out.len() > 1 && out.iter().all(|d| d.len() <= DATAGRAM_BYTES_MAX));
        let mut next = 100;
        let mut seen = Vec::new();
        for d in &out {
            let Ok(Datagram {
                to,
                msg: Message::Decided { first_slot, values },
                ..
            }) = decode(d)
            else {
                panic!("not a decided");
            };
            assert_eq!((to, first_slot), (TO_LEARNERS, next));
            next += values.len() as u64;
            seen.extend(values);
        }
        assert_eq!(seen, values);
    }

    #[test]
    fn oversize_accept_is_refused_not_truncated() {
        let big = "x".repeat(DATAGRAM_BYTES_MAX);
        let msg = Message::Accept {
            ballot: Ballot::new(1, NodeId(1)),
            slot: 0,
            value: Value::One(line(1, &big)),
            commit: 0,
        };
        let from = Sender {
            role: Role::Proposer,
            id: NodeId(1),
        };
        let mut out = Vec::new();
        let err =
            encode_split(from, Destination::Group(Roles::ACCEPTOR), msg, &mut out).unwrap_err();
        assert_eq!(err.kind, "accept");
        assert!(out.is_empty());
    }

    fn key(byte: u8) -> Key {
        Key::from_bytes(&[byte; crate::auth::KEY_BYTES])
    }

    fn signed(counter: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_as(
            Framing::Authenticated,
            ACCEPTOR_2,
            TO_LEADER,
            &accepted(),
            &mut buf,
        )
        .unwrap();
        sign(&mut buf, counter, &key(1));
        buf
    }

    #[test]
    fn a_signed_datagram_opens_with_its_counter_under_its_key_only() {
        let buf = signed(77);
        assert_eq!(
            open(&buf, &key(1)),
            Ok((datagram(ACCEPTOR_2, TO_LEADER, accepted()), 77))
        );
        assert_eq!(open(&buf, &key(2)), Err(DecodeError::BadMac));
        assert_eq!(decode(&buf), Err(DecodeError::NeedsKey));
        let mut plain = Vec::new();
        encode(ACCEPTOR_2, TO_LEADER, &accepted(), &mut plain).unwrap();
        assert_eq!(open(&plain, &key(1)), Err(DecodeError::Unauthenticated));
        let mut sealed = Vec::new();
        let body = postcard::to_allocvec(&accepted()).unwrap();
        seal_signed(ACCEPTOR_2, TO_LEADER, &body, 77, &key(1), &mut sealed);
        assert_eq!(sealed, buf);
    }

    #[test]
    fn a_flipped_bit_anywhere_in_a_signed_datagram_is_refused() {
        let buf = signed(5);
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                let r = open(&bad, &key(1));
                assert!(r.is_err(), "byte {i} bit {bit}");
                if i >= 3 {
                    assert_eq!(r, Err(DecodeError::BadMac), "byte {i} bit {bit}");
                }
            }
        }
        for len in 0..buf.len() {
            assert!(open(&buf[..len], &key(1)).is_err(), "truncated to {len}");
        }
    }

    #[test]
    fn roles_parse_from_their_command_line_names() {
        for role in Role::ALL {
            assert_eq!(parse_role(role.name()), Ok(role));
            assert_eq!(from_code(code(role)), Some(role));
        }
        assert!(parse_role("leader")
            .unwrap_err()
            .contains("invalid role 'leader'"));
    }
}
