//! Replays a `chatroom-server --record FILE` recording: rebuilds the
//! server's core from each session's recorded configuration and log, feeds
//! it the recorded inputs, and checks that every step gives the recorded
//! actions. `paxos-sim replay-node` calls this for chat-server recordings.

use crate::chat::Chat;
use paxos_core::{Server, ServerSnapshot};
use paxos_record::Session;
use paxos_record::{Kind, Observer, ReplayError, Replayed};

/// Replays every session of the recording in `bytes`.
pub fn replay(bytes: &[u8], observer: &mut impl Observer) -> Result<Vec<Replayed>, ReplayError> {
    paxos_record::replay_file(
        bytes,
        Kind::ChatServer,
        |session: &Session<crate::chat::ChatOp, ServerSnapshot<Chat>>| {
            let boot = &session.boot;
            match &boot.snapshot {
                Some(s) => Server::restore(boot.config.clone(), s.clone(), boot.records.clone()),
                None => Server::recover(boot.config.clone(), Chat::default(), boot.records.clone()),
            }
            .map_err(|e| e.to_string())
        },
        |server: &mut Server<Chat>, input, out| server.step_into(input, out),
        observer,
    )
}
