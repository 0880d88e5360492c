//! The two wire protocols — client ⇄ server and server ⇄ server — as postcard
//! payloads inside 4-byte big-endian length-delimited frames.
//!
//! Anything that fails to decode is the sender's problem: the receiver counts
//! it, closes that one connection and carries on.

use crate::chat::{ChatOp, ChatOutput};
use bytes::Bytes;
use paxos_core::{ClientId, DropReason, NodeId, ServerMessage, Slot};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio_util::codec::LengthDelimitedCodec;

/// Largest client frame in either direction. A page of the log
/// ([`crate::chat::PAGE_MAX_BYTES`]) plus framing fits well inside.
pub const CLIENT_FRAME_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Largest peer frame. Catch-up replies and phase 1 promises carry up to
/// `catchup_chunk` slots of batched commands, and snapshots carry the whole
/// room, so this is generous; it still bounds what a bad peer can make us buffer.
pub const PEER_FRAME_MAX_BYTES: usize = 256 * 1024 * 1024;

/// Largest first frame on an inbound peer link, which must be a hello. The
/// codec reserves room for a frame as soon as its length arrives, so until the
/// caller has said who it is, it may not announce more than this.
pub const HELLO_FRAME_MAX_BYTES: usize = 256;

/// Version of both protocols, checked in the peer hello. 2: the core decides
/// snapshot transfer, so `PeerFrame` lost its `SnapshotWanted` request.
/// 3: snapshots travel as core messages, so `PeerFrame` lost `Snapshot`.
/// 4: heartbeats carry a beat number and acceptors acknowledge them.
/// 5: core messages gained `ReadIndex`/`ReadIndexReply` (reads without a slot).
/// 6: core messages gained `Handoff`, chat operations `Transfer` (leader
/// transfer).
/// 7: chat operations `AddServer`/`RemoveServer`, core values gained the
/// stop-sign (membership change).
pub const PROTOCOL_VERSION: u32 = 7;

/// The core message type as the chat room instantiates it (snapshots are
/// one of its kinds).
pub type ChatMessage = ServerMessage<crate::chat::Chat>;

/// A client's request: one operation under a session `(client, seq)`.
/// Retries resend the same triple; the replicas execute it once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The client session.
    pub client: ClientId,
    /// Sequence number within the session, from 1, one request at a time.
    pub seq: u64,
    /// What to do.
    pub op: ChatOp,
}

/// The server's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request's session.
    pub client: ClientId,
    /// The request's sequence number.
    pub seq: u64,
    /// The outcome.
    pub result: Outcome,
    /// Who the answering server believes leads: a client that knows the
    /// servers' addresses by id may go there next, saving a forward.
    pub leader: Option<NodeId>,
}

/// What became of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Decided and executed in `slot`; `output` is the state machine's answer.
    Done {
        /// The slot it was decided in.
        slot: Slot,
        /// The answer.
        output: ChatOutput,
    },
    /// The core refused it before proposing it (not the leader, possibly
    /// with a hint; overloaded), or it will never be executed (superseded).
    /// The first two are safe to retry under the same `(client, seq)`.
    Refused {
        /// Why, as the core says it.
        reason: DropReason,
    },
    /// Refused by this server before reaching the core, for good (a message
    /// over the size limit, a sequence number 0, too many sessions on one
    /// connection): retrying will not help.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// Everything one server sends another on a peer link.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PeerFrame {
    /// First frame on every link: who is calling, and for which cluster shape.
    Hello {
        /// Must equal [`PROTOCOL_VERSION`].
        version: u32,
        /// The caller's id.
        from: NodeId,
        /// The cluster size the caller was started with.
        count: u32,
    },
    /// A protocol message for the core, a replica snapshot included.
    Paxos(ChatMessage),
}

/// The frame codec for client links.
pub fn client_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(CLIENT_FRAME_MAX_BYTES)
        .new_codec()
}

/// The frame codec for peer links.
pub fn peer_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(PEER_FRAME_MAX_BYTES)
        .new_codec()
}

/// The frame codec for an inbound peer link until its hello is accepted; then
/// raise the limit to [`PEER_FRAME_MAX_BYTES`] with `set_max_frame_length`.
pub fn hello_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(HELLO_FRAME_MAX_BYTES)
        .new_codec()
}

/// Encodes a value as one frame payload.
pub fn encode<T: Serialize>(value: &T) -> Bytes {
    // Serialising our own in-memory types to a Vec cannot fail: postcard only
    // errors on unsupported serde features, which these types do not use.
    Bytes::from(postcard::to_stdvec(value).expect("postcard encodes plain data"))
}

/// Decodes one frame payload, rejecting trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    let (value, rest) = postcard::take_from_bytes(bytes)?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(postcard::Error::DeserializeBadEncoding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_and_trailing_bytes_are_refused() {
        let req = Request {
            client: 7,
            seq: 3,
            op: ChatOp::Put("hi".into()),
        };
        let bytes = encode(&req);
        assert_eq!(decode::<Request>(&bytes).unwrap(), req);
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(decode::<Request>(&longer).is_err());
    }

    #[test]
    fn random_bytes_decode_to_an_error_not_a_panic() {
        let mut x: u32 = 0x1234_5678;
        for len in 0..200 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = decode::<Request>(&junk);
            let _ = decode::<PeerFrame>(&junk);
        }
    }
}
