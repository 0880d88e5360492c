//! The log thread: performs the driver's batches in order. Every effect
//! before the first record of what it has gathered goes out at once; then all
//! gathered records are written and synced with **one** fsync (group commit),
//! and only then do the sends and replies that followed them go out. A
//! compaction makes everything before it durable, replaces the log
//! atomically, and only then lets anything after it out.

use super::driver::{Batch, Effect};
use super::{ServerError, Shared};
use crate::wal::{Wal, WalError};
use bytes::Bytes;
use paxos_core::{NodeId, Process};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc as std_mpsc, Arc};
use tokio::sync::mpsc;

/// The log thread: performs batches in order with one fsync per round.
pub(super) fn log_thread(
    mut log: Wal,
    batches: std_mpsc::Receiver<Batch>,
    links: Vec<Option<mpsc::Sender<Bytes>>>,
    shared: Arc<Shared>,
) -> Result<(), ServerError> {
    let perform = |effects: &mut Vec<Effect>| perform(effects, &links, &shared);
    let mut records = Vec::new();
    let mut deferred = Vec::new();
    while let Ok(first) = batches.recv() {
        let mut next = Some(first);
        while let Some(batch) = next.take().or_else(|| batches.try_recv().ok()) {
            match batch {
                Batch::Actions {
                    mut pre,
                    records: r,
                    mut post,
                } => {
                    if records.is_empty() {
                        perform(&mut pre);
                    } else {
                        deferred.append(&mut pre);
                    }
                    records.extend_from_slice(&r);
                    if records.is_empty() {
                        perform(&mut post);
                    } else {
                        deferred.append(&mut post);
                    }
                }
                Batch::Compact { entries } => {
                    commit(&mut log, &mut records, &shared)?;
                    perform(&mut deferred);
                    log.replace(&entries)?;
                    shared.counters.compactions.fetch_add(1, Relaxed);
                    shared.wal_len_bytes.store(log.len_bytes(), Relaxed);
                    shared.wal_base_bytes.store(log.len_bytes(), Relaxed);
                    shared.compacting.store(false, Relaxed);
                }
            }
        }
        commit(&mut log, &mut records, &shared)?;
        perform(&mut deferred);
    }
    Ok(())
}

/// Writes and syncs the gathered records (the group commit).
fn commit(log: &mut Wal, records: &mut Vec<u8>, shared: &Shared) -> Result<(), WalError> {
    if records.is_empty() {
        return Ok(());
    }
    log.append(records)?;
    log.sync()?;
    records.clear();
    shared.counters.fsyncs.fetch_add(1, Relaxed);
    shared.wal_len_bytes.store(log.len_bytes(), Relaxed);
    Ok(())
}

fn perform(effects: &mut Vec<Effect>, links: &[Option<mpsc::Sender<Bytes>>], shared: &Shared) {
    if effects.is_empty() {
        return;
    }
    let c = &shared.counters;
    let send_peer = |link: &Option<mpsc::Sender<Bytes>>, frame: &Bytes| {
        if let Some(tx) = link {
            if tx.try_send(frame.clone()).is_ok() {
                c.peer_sent.fetch_add(1, Relaxed);
            } else {
                c.peer_dropped.fetch_add(1, Relaxed);
            }
        }
    };
    let mut routes = None;
    for effect in effects.drain(..) {
        match effect {
            Effect::Peer(to, frame) => {
                // Our own link is `None`: the core delivered to itself.
                for (j, link) in links.iter().enumerate() {
                    if to.reaches(&Process::server(NodeId(j as u32))) {
                        send_peer(link, &frame);
                    }
                }
            }
            Effect::Client(client, frame) => {
                let routes = routes.get_or_insert_with(|| shared.routes.lock().expect("routes"));
                match routes.get(&client).map(|r| r.tx.try_send(frame)) {
                    Some(Ok(())) => c.responses.fetch_add(1, Relaxed),
                    _ => c.responses_dropped.fetch_add(1, Relaxed),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Counters;
    use crate::wal::{self, WalEntry};
    use paxos_core::{Ballot, Destination, Record, Role};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::sync::Mutex;

    fn shared() -> Arc<Shared> {
        let (input, _) = mpsc::channel(1);
        Arc::new(Shared {
            id: NodeId(0),
            count: 2,
            counters: Arc::new(Counters::default()),
            routes: Arc::new(Mutex::new(HashMap::new())),
            input,
            link_wake: Vec::new(),
            wal_len_bytes: AtomicU64::new(0),
            wal_base_bytes: AtomicU64::new(0),
            compacting: AtomicBool::new(false),
            tls: None,
        })
    }

    fn record(round: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        let r = Record::Promised(Ballot::new(round, NodeId(1)));
        wal::frame(&WalEntry::Record(r), &mut buf);
        buf
    }

    fn to_peer(tag: u8) -> Effect {
        let to = Destination::to(Role::Acceptor, NodeId(1));
        Effect::Peer(to, Bytes::from(vec![tag]))
    }

    #[test]
    fn group_commit_syncs_once_for_everything_gathered_and_keeps_order() {
        const BATCHES: u64 = 100;
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Wal::open(dir.path()).unwrap();
        let (peer_tx, mut peer_rx) = mpsc::channel(1024);
        let (tx, rx) = std_mpsc::channel();
        // Queue everything before the log thread runs: it must take it all
        // in one round, write every record, and sync once.
        for i in 0..BATCHES {
            tx.send(Batch::Actions {
                pre: vec![],
                records: record(i + 1),
                post: vec![to_peer(i as u8)],
            })
            .unwrap();
        }
        drop(tx);
        let shared = shared();
        log_thread(log, rx, vec![None, Some(peer_tx)], shared.clone()).unwrap();
        assert_eq!(shared.counters.fsyncs.load(Relaxed), 1);
        let sent: Vec<u8> = std::iter::from_fn(|| peer_rx.try_recv().ok())
            .map(|b| b[0])
            .collect();
        assert_eq!(sent, (0..BATCHES).map(|i| i as u8).collect::<Vec<_>>());
        let (_, recovered) = Wal::open(dir.path()).unwrap();
        assert_eq!(recovered.records.len() as u64, BATCHES);
    }

    #[test]
    fn sends_after_a_persist_go_out_only_after_its_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Wal::open(dir.path()).unwrap();
        let (peer_tx, mut peer_rx) = mpsc::channel(16);
        let (tx, rx) = std_mpsc::channel();
        let shared = shared();
        let thread = {
            let shared = shared.clone();
            std::thread::spawn(move || log_thread(log, rx, vec![None, Some(peer_tx)], shared))
        };
        tx.send(Batch::Actions {
            pre: vec![to_peer(1)],
            records: record(1),
            post: vec![to_peer(2)],
        })
        .unwrap();
        let first = peer_rx.blocking_recv().unwrap();
        assert_eq!(first[0], 1);
        let second = peer_rx.blocking_recv().unwrap();
        assert_eq!(second[0], 2);
        // By the time the guarded send is visible, its record was synced.
        assert_eq!(shared.counters.fsyncs.load(Relaxed), 1);
        drop(tx);
        thread.join().unwrap().unwrap();
    }
}
