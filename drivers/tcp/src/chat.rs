//! The replicated chat room: an append-only list of messages, as a
//! [`StateMachine`] that `paxos-core` applies in slot order on every server.

use paxos_core::StateMachine;
use serde::{Deserialize, Serialize};

/// Longest message a client may put, in bytes. Larger ones are refused by the
/// server before they reach the log, so one entry can never blow up a frame.
pub const MESSAGE_MAX_BYTES: usize = 64 * 1024;

/// Most messages one `Get` returns. A client that wants more asks again from
/// the next offset, so replies stay small however long the room's history is.
pub const PAGE_MAX_MESSAGES: usize = 1024;

/// Most message bytes one `Get` returns (the page ends early past this).
pub const PAGE_MAX_BYTES: usize = 1024 * 1024;

/// An operation on the chat room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatOp {
    /// Append a message.
    Put(String),
    /// Read the messages from `offset` on (at most one page).
    Get {
        /// Index of the first message wanted.
        offset: u64,
    },
    /// Operator: the leader hands the lead to server `to`
    /// (`paxos_core::Input::Transfer`). Servers take it before the core
    /// and never propose it, so the room never sees it.
    Transfer {
        /// The server to lead next.
        to: u32,
    },
    /// Operator: add server `id`, whose peer address is `addr`, to the
    /// cluster's members (`paxos_core::Input::Reconfigure`). Taken by the
    /// servers before the core, like [`ChatOp::Transfer`].
    AddServer {
        /// The server.
        id: u32,
        /// Its peer address, as in the cluster's peer list.
        addr: String,
    },
    /// Operator: remove server `id` from the members.
    RemoveServer {
        /// The server.
        id: u32,
    },
}

/// What an operation returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatOutput {
    /// The message was appended at this index of the log.
    Appended {
        /// Its position, counted from 0.
        index: u64,
    },
    /// The leader started handing the lead to server `to` (the answer to
    /// [`ChatOp::Transfer`]).
    HandingOff {
        /// The server named.
        to: u32,
    },
    /// A membership change took effect (the answer to [`ChatOp::AddServer`]
    /// and [`ChatOp::RemoveServer`]): configuration `epoch` of `members`.
    Reconfigured {
        /// The configuration's number.
        epoch: u64,
        /// Its members.
        members: Vec<u32>,
    },
    /// A page of the log as it stood when the `Get` was executed.
    Page {
        /// Index of `messages[0]`.
        offset: u64,
        /// Length of the whole log at that point.
        total: u64,
        /// The messages `offset .. offset + messages.len()`.
        messages: Vec<String>,
    },
}

/// The chat room's state: every message put so far, in decided order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    /// The log.
    pub messages: Vec<String>,
}

impl StateMachine for Chat {
    type Command = ChatOp;
    type Output = ChatOutput;

    fn apply(&mut self, op: &ChatOp) -> ChatOutput {
        match op {
            ChatOp::Put(text) => {
                self.messages.push(text.clone());
                ChatOutput::Appended {
                    index: self.messages.len() as u64 - 1,
                }
            }
            ChatOp::Get { offset } => self.page(*offset),
            // Never proposed (servers answer it themselves); a no-op if it
            // were.
            ChatOp::Transfer { to } => ChatOutput::HandingOff { to: *to },
            ChatOp::AddServer { .. } | ChatOp::RemoveServer { .. } => ChatOutput::Appended {
                index: self.messages.len() as u64,
            },
        }
    }

    /// A `get` changes nothing, so it can be served without a log slot
    /// (read-index or lease): the same page `apply` would return.
    fn read(&self, query: &ChatOp) -> Option<ChatOutput> {
        match query {
            ChatOp::Get { offset } => Some(self.page(*offset)),
            ChatOp::Put(_)
            | ChatOp::Transfer { .. }
            | ChatOp::AddServer { .. }
            | ChatOp::RemoveServer { .. } => None,
        }
    }
}

impl Chat {
    /// The page of messages from `offset` on, as a `get` returns it.
    fn page(&self, offset: u64) -> ChatOutput {
        let total = self.messages.len() as u64;
        let start = offset.min(total) as usize;
        let mut bytes = 0;
        let messages = self.messages[start..]
            .iter()
            .take(PAGE_MAX_MESSAGES)
            .take_while(|m| {
                // Always return at least one message, or a huge entry
                // could never be read.
                let fits = bytes == 0 || bytes + m.len() <= PAGE_MAX_BYTES;
                bytes += m.len();
                fits
            })
            .cloned()
            .collect();
        ChatOutput::Page {
            offset: start as u64,
            total,
            messages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_appends_and_reports_its_index() {
        let mut chat = Chat::default();
        assert_eq!(
            chat.apply(&ChatOp::Put("a".into())),
            ChatOutput::Appended { index: 0 }
        );
        assert_eq!(
            chat.apply(&ChatOp::Put("b".into())),
            ChatOutput::Appended { index: 1 }
        );
        assert_eq!(chat.messages, ["a", "b"]);
    }

    #[test]
    fn get_returns_bounded_pages_that_tile_the_log() {
        let mut chat = Chat::default();
        let count = PAGE_MAX_MESSAGES + 10;
        for i in 0..count {
            chat.apply(&ChatOp::Put(i.to_string()));
        }
        let mut read = Vec::new();
        loop {
            let ChatOutput::Page {
                offset,
                total,
                messages,
            } = chat.apply(&ChatOp::Get {
                offset: read.len() as u64,
            })
            else {
                panic!("get must return a page");
            };
            assert_eq!((offset, total), (read.len() as u64, count as u64));
            assert!(messages.len() <= PAGE_MAX_MESSAGES);
            if messages.is_empty() {
                break;
            }
            read.extend(messages);
        }
        assert_eq!(read, chat.messages);
    }

    #[test]
    fn read_answers_gets_like_apply_and_refuses_puts() {
        let mut chat = Chat::default();
        chat.apply(&ChatOp::Put("a".into()));
        let before = chat.clone();
        let get = ChatOp::Get { offset: 0 };
        let read = chat.read(&get);
        assert_eq!(chat, before, "a read changes nothing");
        assert_eq!(read, Some(chat.apply(&get)));
        assert_eq!(chat.read(&ChatOp::Put("b".into())), None);
    }

    #[test]
    fn get_past_the_end_is_an_empty_page_not_a_panic() {
        let mut chat = Chat::default();
        chat.apply(&ChatOp::Put("x".into()));
        assert_eq!(
            chat.apply(&ChatOp::Get { offset: u64::MAX }),
            ChatOutput::Page {
                offset: 1,
                total: 1,
                messages: vec![]
            }
        );
    }

    #[test]
    fn page_stops_at_the_byte_limit_but_returns_at_least_one_message() {
        let mut chat = Chat::default();
        let big = "x".repeat(PAGE_MAX_BYTES / 2 + 1);
        for _ in 0..3 {
            chat.apply(&ChatOp::Put(big.clone()));
        }
        let ChatOutput::Page { messages, .. } = chat.apply(&ChatOp::Get { offset: 0 }) else {
            panic!("get must return a page");
        };
        assert_eq!(messages.len(), 1);
    }
}
