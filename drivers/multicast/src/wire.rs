//! The datagram format: a 12-byte header naming the sender's role and id, then one
//! postcard-encoded core [`Message`]. Whatever does not parse is refused, never trusted.
//!
//! ```text
//! offset 0  2 bytes  magic "Px"
//!        2  1 byte   format version (1)
//!        3  1 byte   sender role (1 client, 2 proposer, 3 acceptor, 4 learner)
//!        4  4 bytes  sender id, u32 little-endian
//!        8  4 bytes  CRC32C of the body, little-endian
//!       12  ...      body: postcard encoding of Message<String>, nothing after it
//! ```
//! The sender id is what the core counts in quorums, so a message is only
//! believed from the role that may send it ([`may_send`]): an `Accepted` that
//! claims to come from learner 1 is not a vote of acceptor 1.

use paxos_core::{Message, NodeId};
use std::fmt;
use std::str::FromStr;

/// The message type every role exchanges: commands are lines of text.
pub type Msg = Message<String>;

/// First two bytes of every datagram.
pub const MAGIC: [u8; 2] = *b"Px";
/// Format version; a datagram of another version is foreign.
pub const VERSION: u8 = 1;
/// Bytes before the body.
pub const HEADER_BYTES: usize = 12;
/// Largest datagram we send or accept. Below the 65 507 bytes UDP over IPv4
/// allows, so that it leaves room and never fragments on a 64 KiB MTU link.
pub const DATAGRAM_BYTES_MAX: usize = 65_000;

/// The four kinds of process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads values from stdin and submits them.
    Client,
    /// Leads (one at a time) and proposes values into slots.
    Proposer,
    /// Votes, durably.
    Acceptor,
    /// Learns the chosen values and prints them in order.
    Learner,
}

impl Role {
    /// Every role, in header-code order.
    pub const ALL: [Role; 4] = [Role::Client, Role::Proposer, Role::Acceptor, Role::Learner];

    fn code(self) -> u8 {
        match self {
            Role::Client => 1,
            Role::Proposer => 2,
            Role::Acceptor => 3,
            Role::Learner => 4,
        }
    }

    fn from_code(code: u8) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Proposer => "proposer",
            Role::Acceptor => "acceptor",
            Role::Learner => "learner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                format!("invalid role '{s}' (expected client, proposer, acceptor or learner)")
            })
    }
}

/// Who sent a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sender {
    /// The sender's role.
    pub role: Role,
    /// Its id within that role.
    pub id: NodeId,
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
    /// An unknown role code.
    #[error("unknown sender role {0}")]
    Role(u8),
    /// The body does not match its checksum (truncated or damaged).
    #[error("checksum mismatch")]
    Checksum,
    /// The body is not one whole message.
    #[error("body does not decode to one message")]
    Body,
    /// The sender's role never sends this kind of message.
    #[error("a {role} does not send {kind}")]
    Impostor {
        /// The claimed role.
        role: Role,
        /// The message kind.
        kind: &'static str,
    },
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

/// Whether `role` ever sends messages of this kind. Anything else is refused
/// on receipt, so that ids of one role can never pose as another's.
pub fn may_send(role: Role, msg: &Msg) -> bool {
    matches!(
        (role, msg),
        (
            Role::Proposer,
            Message::Prepare { .. } | Message::Accept { .. } | Message::Heartbeat { .. }
        ) | (
            Role::Acceptor,
            Message::Promise { .. } | Message::Nack { .. } | Message::Accepted { .. }
        ) | (
            Role::Learner | Role::Client,
            Message::CatchUp { .. } | Message::Decided { .. }
        ) | (Role::Client, Message::Forward { .. })
    )
}

/// Encodes one datagram into `buf` (cleared first).
pub fn encode(from: Sender, msg: &Msg, buf: &mut Vec<u8>) -> Result<(), Oversize> {
    start(from, buf);
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
    finish(buf);
    Ok(())
}

/// Wraps an already-encoded `body` in a header from `from` with the body's
/// checksum, into `buf` (cleared first). [`encode`] is this after postcard;
/// tests and the fuzzer use it to reach the body decoder with bytes no real
/// sender would produce.
pub fn seal(from: Sender, body: &[u8], buf: &mut Vec<u8>) {
    start(from, buf);
    buf.extend_from_slice(body);
    finish(buf);
}

/// Clears `buf` and writes the header with a zero checksum.
fn start(from: Sender, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&MAGIC);
    buf.push(VERSION);
    buf.push(from.role.code());
    buf.extend_from_slice(&from.id.0.to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
}

/// Fills in the checksum of the body that follows the header.
fn finish(buf: &mut [u8]) {
    let crc = crc32c::crc32c(&buf[HEADER_BYTES..]);
    buf[8..12].copy_from_slice(&crc.to_le_bytes());
}

/// Encodes `msg` into as many datagrams as it needs. `Decided` and `Forward`
/// are lists whose parts mean the same as the whole, so they are split in
/// halves until each part fits; any other message that does not fit is refused.
pub fn encode_split(from: Sender, msg: Msg, out: &mut Vec<Vec<u8>>) -> Result<(), Oversize> {
    let mut buf = Vec::new();
    match encode(from, &msg, &mut buf) {
        Ok(()) => {
            out.push(buf);
            Ok(())
        }
        Err(e) => match split(msg) {
            Some((a, b)) => {
                encode_split(from, a, out)?;
                encode_split(from, b, out)
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

/// Decodes one datagram, checking everything: header, checksum, that the body
/// is exactly one message, and that the sender's role may send it.
pub fn decode(bytes: &[u8]) -> Result<(Sender, Msg), DecodeError> {
    if bytes.len() < HEADER_BYTES {
        return Err(DecodeError::Short);
    }
    if bytes[0..2] != MAGIC || bytes[2] != VERSION {
        return Err(DecodeError::Foreign);
    }
    let role = Role::from_code(bytes[3]).ok_or(DecodeError::Role(bytes[3]))?;
    let id = NodeId(u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")));
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let body = &bytes[HEADER_BYTES..];
    if crc32c::crc32c(body) != crc {
        return Err(DecodeError::Checksum);
    }
    let (msg, rest): (Msg, _) = postcard::take_from_bytes(body).map_err(|_| DecodeError::Body)?;
    if !rest.is_empty() {
        return Err(DecodeError::Body);
    }
    if !may_send(role, &msg) {
        return Err(DecodeError::Impostor {
            role,
            kind: msg.kind(),
        });
    }
    Ok((Sender { role, id }, msg))
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

    #[test]
    fn datagram_round_trips_with_sender_role_and_id() {
        let mut buf = Vec::new();
        encode(ACCEPTOR_2, &accepted(), &mut buf).unwrap();
        assert_eq!(decode(&buf), Ok((ACCEPTOR_2, accepted())));
    }

    #[test]
    fn every_truncation_of_a_datagram_is_refused() {
        let mut buf = Vec::new();
        encode(ACCEPTOR_2, &accepted(), &mut buf).unwrap();
        for len in 0..buf.len() {
            assert!(decode(&buf[..len]).is_err(), "truncated to {len} bytes");
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused_or_harmless() {
        let mut buf = Vec::new();
        encode(ACCEPTOR_2, &accepted(), &mut buf).unwrap();
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            match decode(&bad) {
                Err(_) => {}
                // Only the sender id is not covered by the checksum.
                Ok((from, msg)) => {
                    assert!((4..8).contains(&i) && msg == accepted() && from != ACCEPTOR_2)
                }
            }
        }
    }

    #[test]
    fn a_role_cannot_send_another_roles_messages() {
        let mut buf = Vec::new();
        encode(LEARNER_1, &accepted(), &mut buf).unwrap();
        assert_eq!(
            decode(&buf),
            Err(DecodeError::Impostor {
                role: Role::Learner,
                kind: "accepted"
            })
        );
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
                        b"Px\x01"[i]
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
        encode_split(LEARNER_1, msg, &mut out).unwrap();
        assert!(out.len() > 1 && out.iter().all(|d| d.len() <= DATAGRAM_BYTES_MAX));
        let mut next = 100;
        let mut seen = Vec::new();
        for d in &out {
            let (_, Message::Decided { first_slot, values }) = decode(d).unwrap() else {
                panic!("not a decided");
            };
            assert_eq!(first_slot, next);
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
        let err = encode_split(from, msg, &mut out).unwrap_err();
        assert_eq!(err.kind, "accept");
        assert!(out.is_empty());
    }
}
