//! `wal_decode`: arbitrary bytes through the write-ahead-log decoder that
//! recovery runs (`paxos_wal::Format::decode`), as both drivers' logs.
//!
//! Each input is decoded as a chat log (`paxos_tcp::wal::WalEntry`) and as a
//! multicast log (`paxos_multicast::wal::Rec`), three ways:
//! - the raw bytes as a whole file: header, framing and torn-tail rules;
//! - the bytes behind a valid file header, as the record area;
//! - the bytes cut into payloads (a length byte, then that many bytes), each
//!   framed with valid checksums behind a valid header, so that the fuzzer
//!   reaches the entry decoders without having to forge a CRC32C.
//!
//! Nothing may panic. Whatever decodes must be a clean log once cut to its
//! valid length, with the same entries, and must re-encode to a log that
//! decodes to the same entries.

use paxos_core::{Ballot, Command, NodeId, PValue, Record, Value};
use paxos_multicast::wal::{self as mcast, Rec};
use paxos_tcp::chat::{Chat, ChatOp};
use paxos_tcp::wal::{self as chat, ChatSnapshot, WalEntry};
use paxos_wal::{Decoded, Format};
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;

/// Runs the target on `data`; panics if the decoder misbehaves.
pub fn run(data: &[u8]) {
    all_ways::<WalEntry>(&chat::FORMAT, data);
    all_ways::<Rec>(&mcast::FORMAT, data);
}

fn all_ways<E>(format: &Format, data: &[u8])
where
    E: Serialize + DeserializeOwned + PartialEq + Debug,
{
    check::<E>(format, data);
    let mut log = format.file_header().to_vec();
    log.extend_from_slice(data);
    check::<E>(format, &log);
    log.truncate(format.file_header().len());
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (payload, after) = tail.split_at(usize::from(len).min(tail.len()));
        frame_raw(payload, &mut log);
        rest = after;
    }
    check::<E>(format, &log);
}

/// Appends `payload` as a record with valid checksums, whatever it holds.
fn frame_raw(payload: &[u8], log: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("a fuzz input is far below 4 GiB");
    let mut head = [0u8; paxos_wal::RECORD_HEADER_BYTES];
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[4..8].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    let head_crc = crc32c::crc32c(&head[..8]);
    head[8..].copy_from_slice(&head_crc.to_le_bytes());
    log.extend_from_slice(&head);
    log.extend_from_slice(payload);
}

fn check<E>(format: &Format, bytes: &[u8])
where
    E: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let Ok(decoded) = format.decode::<E>(bytes) else {
        return;
    };
    let valid = usize::try_from(decoded.valid_len).expect("valid_len fits");
    assert!(valid <= bytes.len(), "valid length past the end");
    match decoded.torn {
        None => assert_eq!(
            valid,
            bytes.len(),
            "bytes after the valid log, not reported"
        ),
        Some(t) => {
            assert_eq!(
                t.offset, decoded.valid_len,
                "torn tail not at the valid end"
            );
            assert_eq!(t.offset + t.bytes, bytes.len() as u64, "torn tail length");
        }
    }
    let cut: Decoded<E> = format
        .decode(&bytes[..valid])
        .unwrap_or_else(|e| panic!("the log cut to its valid length does not decode: {e}"));
    assert_eq!(
        cut.entries, decoded.entries,
        "cutting the tail changed entries"
    );
    assert_eq!(
        cut.torn, None,
        "a log cut to its valid length is still torn"
    );
    let again = format
        .encode_log(&decoded.entries)
        .unwrap_or_else(|e| panic!("decoded entries do not re-encode: {e}"));
    let back: Decoded<E> = format
        .decode(&again)
        .unwrap_or_else(|e| panic!("a re-encoded log does not decode: {e}"));
    assert_eq!(back.entries, decoded.entries, "entries do not round-trip");
    assert_eq!(back.torn, None, "a re-encoded log is torn");
}

/// The seed corpus: valid, torn and corrupt logs of both drivers, named by
/// what they hold. `tests/wal_seeds.rs` writes them to `fuzz/corpus/wal_decode`.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let ballot = Ballot::new(3, NodeId(1));
    let command = |seq: u64, text: &str| Command {
        client: 7,
        seq,
        op: text.to_string(),
    };
    let chat_cmd = |seq: u64, text: &str| Command {
        client: 7,
        seq,
        op: ChatOp::Put(text.to_string()),
    };
    let chat_entries = vec![
        WalEntry::Meta {
            id: NodeId(0),
            members: vec![NodeId(0), NodeId(1), NodeId(2)],
        },
        WalEntry::Record(Record::Promised(ballot)),
        WalEntry::Record(Record::Accepted(PValue {
            slot: 0,
            ballot,
            value: Value::One(chat_cmd(1, "hello")),
        })),
        WalEntry::Snapshot(Box::new(ChatSnapshot {
            next_slot: 1,
            state: Chat {
                messages: vec!["hello".into()],
            },
            sessions: vec![],
            membership: None,
        })),
        WalEntry::Record(Record::Accepted(PValue {
            slot: 1,
            ballot,
            value: Value::One(chat_cmd(2, "world")),
        })),
        WalEntry::Record(Record::Trimmed(1)),
    ];
    let mcast_entries: Vec<Rec> = vec![
        Record::Promised(ballot),
        Record::Accepted(PValue {
            slot: 4,
            ballot,
            value: Value::One(command(1, "a value")),
        }),
        Record::Accepted(PValue {
            slot: 5,
            ballot,
            value: Value::One(command(2, "another value")),
        }),
        Record::Trimmed(3),
    ];
    let mut out = Vec::new();
    variants("chat", &chat::FORMAT, &chat_entries, &mut out);
    variants("abcast", &mcast::FORMAT, &mcast_entries, &mut out);
    out.push(("empty".into(), Vec::new()));
    out
}

fn variants<E: Serialize>(
    name: &str,
    format: &Format,
    entries: &[E],
    out: &mut Vec<(String, Vec<u8>)>,
) {
    let header = format.file_header();
    let h = header.len();
    let log = format.encode_log(entries).expect("seed entries encode");
    // Where the second and the last record start.
    let mut starts = Vec::new();
    let mut buf = header.to_vec();
    for e in entries {
        starts.push(buf.len());
        format
            .encode_record(e, &mut buf)
            .expect("seed entries encode");
    }
    let (second, last) = (starts[1], starts[starts.len() - 1]);
    let mut add = |what: &str, bytes: Vec<u8>| out.push((format!("{name}-{what}"), bytes));
    add("valid", log.clone());
    add("header-only", header.to_vec());
    add("header-torn", header[..h / 2].to_vec());
    add("cut-in-last-record", log[..log.len() - 3].to_vec());
    add("cut-in-last-header", log[..last + 5].to_vec());
    let mut zeros = log.clone();
    zeros.resize(log.len() + 64, 0);
    add("zero-filled-tail", zeros);
    let mut bad_last = log.clone();
    *bad_last.last_mut().expect("a record") ^= 0x04;
    add("last-checksum-bad", bad_last);
    let mut mid_payload = log.clone();
    mid_payload[second + paxos_wal::RECORD_HEADER_BYTES] ^= 0x20;
    add("mid-payload-flipped", mid_payload);
    let mut mid_header = log.clone();
    mid_header[second + 1] ^= 0x01;
    add("mid-header-flipped", mid_header);
    let mut version = log.clone();
    version[8] = 9;
    add("other-version", version);
    let mut magic = log.clone();
    magic[0] = b'X';
    add("bad-magic", magic);
    let mut header_crc = log.clone();
    header_crc[h - 1] ^= 0x80;
    add("header-checksum-bad", header_crc);
    let mut undecodable = header.to_vec();
    frame_raw(&[0xff; 9], &mut undecodable);
    undecodable.extend_from_slice(&log[h..]);
    add("undecodable-record", undecodable);
    let mut too_large = header.to_vec();
    let mut head = [0u8; paxos_wal::RECORD_HEADER_BYTES];
    head[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    let head_crc = crc32c::crc32c(&head[..8]);
    head[8..].copy_from_slice(&head_crc.to_le_bytes());
    too_large.extend_from_slice(&head);
    add("too-large-record", too_large);
    // The bytes as the third way reads them: length-prefixed payloads.
    let mut payloads = Vec::new();
    for e in entries {
        let mut one = Vec::new();
        format
            .encode_record(e, &mut one)
            .expect("seed entries encode");
        let payload = &one[paxos_wal::RECORD_HEADER_BYTES..];
        if let Ok(len) = u8::try_from(payload.len()) {
            payloads.push(len);
            payloads.extend_from_slice(payload);
        }
    }
    add("payloads", payloads);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_decode_as_their_names_say() {
        for (name, bytes) in seeds() {
            let got = chat::FORMAT.decode::<WalEntry>(&bytes);
            let mc = mcast::FORMAT.decode::<Rec>(&bytes);
            let result = if name.starts_with("chat") {
                got.map(|d| (d.entries.len(), d.torn.is_some()))
            } else {
                mc.map(|d| (d.entries.len(), d.torn.is_some()))
            };
            let ok_untorn = ["valid", "header-only", "empty", "payloads"];
            let torn = ["header-torn", "cut-in", "zero-filled", "last-checksum"];
            if ok_untorn.iter().any(|w| name.ends_with(w)) {
                if !name.ends_with("payloads") {
                    assert!(matches!(result, Ok((_, false))), "{name}: {result:?}");
                }
            } else if torn.iter().any(|w| name.contains(w)) {
                assert!(matches!(result, Ok((_, true))), "{name}: {result:?}");
            } else {
                assert!(result.is_err(), "{name}: {result:?}");
            }
            run(&bytes);
        }
    }
}
