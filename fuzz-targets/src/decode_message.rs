//! `decode_message`: arbitrary bytes through every wire decoder the drivers
//! use on input from the network.
//!
//! - the chat room's length-delimited framing, then each frame as a client
//!   [`Request`], a server [`Response`] and a peer [`PeerFrame`];
//! - the atomic broadcast's datagram decoder, once on the raw bytes (header,
//!   magic, role and checksum checks) and once on the bytes as a body behind a
//!   valid header and checksum, so the fuzzer reaches the message decoder
//!   without having to forge a CRC32C; and the same for authenticated
//!   datagrams (raw, and as a body behind a valid HMAC under a fixed key).
//!
//! Nothing may panic, and whatever decodes must re-encode to bytes that decode
//! to a value that encodes to those same bytes (encode ∘ decode is a fixed
//! point). Unbounded allocation is caught by libFuzzer's `-malloc_limit_mb`.

use bytes::BytesMut;
use paxos_core::{Destination, NodeId, Role, Roles};
use paxos_multicast::auth::Key;
use paxos_multicast::wire::{self as mcast, Sender};
use paxos_tcp::wire::{self as tcp, PeerFrame, Request, Response};
use serde::{de::DeserializeOwned, Serialize};
use tokio_util::codec::Decoder;

/// Runs the target on `data`; panics if a decoder misbehaves.
pub fn run(data: &[u8]) {
    chat_frames(data);
    datagram(data);
    let first = usize::from(data.first().copied().unwrap_or(0));
    let role = Role::ALL[first % Role::ALL.len()];
    let mut sealed = Vec::new();
    let from = Sender {
        role,
        id: NodeId(1),
    };
    let to = Destination::Group(Roles::ALL);
    mcast::seal(from, to, data.get(1..).unwrap_or_default(), &mut sealed);
    datagram(&sealed);
    // The authenticated format: the raw bytes, and the same body behind a
    // valid MAC, so that the body decoder is reached with any bytes.
    signed_datagram(data);
    let mut signed = Vec::new();
    let body = data.get(1..).unwrap_or_default();
    mcast::seal_signed(
        from,
        to,
        body,
        u64::from(data.len() as u32),
        &key(),
        &mut signed,
    );
    signed_datagram(&signed);
}

fn key() -> Key {
    Key::from_bytes(&[0x5a; paxos_multicast::auth::KEY_BYTES])
}

fn signed_datagram(bytes: &[u8]) {
    let key = key();
    let Ok((d, counter)) = mcast::open(bytes, &key) else {
        return;
    };
    let mut buf = Vec::new();
    mcast::encode_as(
        mcast::Framing::Authenticated,
        d.from,
        d.to,
        &d.msg,
        &mut buf,
    )
    .expect("a decoded message re-encodes");
    mcast::sign(&mut buf, counter, &key);
    assert_eq!(
        mcast::open(&buf, &key),
        Ok((d, counter)),
        "signed datagram does not round-trip"
    );
}

fn chat_frames(data: &[u8]) {
    for mut codec in [tcp::client_codec(), tcp::hello_codec()] {
        let mut buf = BytesMut::from(data);
        // A frame longer than the codec's limit is an error: the driver drops
        // the connection, and so do we. (The peer codec proper is only used
        // after a hello, and reserves up to its 256 MiB limit by design.)
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            chat_payload(&frame);
        }
    }
    chat_payload(data);
}

fn chat_payload(bytes: &[u8]) {
    round_trip::<Request>(bytes);
    round_trip::<Response>(bytes);
    round_trip::<PeerFrame>(bytes);
}

fn round_trip<T: Serialize + DeserializeOwned>(bytes: &[u8]) {
    let Ok(value) = tcp::decode::<T>(bytes) else {
        return;
    };
    let encoded = tcp::encode(&value);
    let again: T = tcp::decode(&encoded).unwrap_or_else(|e| {
        panic!(
            "{} re-encoded to bytes it cannot decode: {e}",
            std::any::type_name::<T>()
        )
    });
    assert_eq!(
        tcp::encode(&again),
        encoded,
        "{} does not re-encode to the same bytes",
        std::any::type_name::<T>()
    );
}

fn datagram(bytes: &[u8]) {
    let Ok(d) = mcast::decode(bytes) else {
        return;
    };
    let mut buf = Vec::new();
    // A decoded datagram was at most a datagram long, so it fits again.
    mcast::encode(d.from, d.to, &d.msg, &mut buf).expect("a decoded message re-encodes");
    assert_eq!(mcast::decode(&buf), Ok(d), "datagram does not round-trip");
}
