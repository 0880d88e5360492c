//! The network tasks: one outbound link per peer that reconnects with
//! back-off, an accept loop per listener, a reader per inbound peer link that
//! checks the hello and hands frames to the driver, and a task per client
//! connection that routes its sessions' responses back to it. With TLS, every
//! connection first completes its handshake ([`crate::tls`]), and an inbound
//! peer is believed only if its certificate names the id its hello claims.

use super::driver::DriverInput;
use super::{Route, Routes, Shared};
use crate::chat::{ChatOp, MESSAGE_MAX_BYTES};
use crate::tls::{self, Stream, TLS_HANDSHAKE_BYTE};
use crate::wire::{self, Outcome, PeerFrame, Request, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use paxos_core::{ClientId, Command, NodeId};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tracing::{debug, warn};

/// Frames queued for one client connection; more are dropped (it retries).
const CLIENT_QUEUE_FRAMES: usize = 4096;
/// Sessions one client connection may open (bounds the route table).
const SESSIONS_PER_CONNECTION_MAX: usize = 4096;
/// First and largest pause between attempts to reach a peer.
const RECONNECT_MIN_MS: u64 = 20;
const RECONNECT_MAX_MS: u64 = 1000;
/// A connection must say hello within this long.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps one outbound link to peer `to` up, sending what the log thread queues.
pub(super) async fn peer_link(
    shared: Arc<Shared>,
    to: NodeId,
    addr: SocketAddr,
    mut rx: mpsc::Receiver<Bytes>,
) {
    let mut backoff_ms = RECONNECT_MIN_MS;
    let mut last_tls_error = String::new();
    loop {
        // Frames queued while the link was down are stale; the core resends.
        while rx.try_recv().is_ok() {
            shared.counters.peer_dropped.fetch_add(1, Relaxed);
        }
        let stream = match tokio::time::timeout(HELLO_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            _ => {
                backoff_ms = reconnect_pause(&shared, to, backoff_ms).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = match &shared.tls {
            None => Stream::Plain(stream),
            Some(tls) => {
                match tokio::time::timeout(HELLO_TIMEOUT, tls.connect_peer(stream, to.0)).await {
                    Ok(Ok(s)) => s,
                    failed => {
                        let why = match failed {
                            Ok(Err(e)) => e.to_string(),
                            _ => "the handshake timed out".to_string(),
                        };
                        shared.counters.link_tls_failed.fetch_add(1, Relaxed);
                        // Say it once per kind of failure, not on every retry.
                        if why != last_tls_error {
                            warn!("TLS to peer {to} at {addr} failed: {why}");
                            last_tls_error = why;
                        }
                        tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                        backoff_ms = (backoff_ms * 2).min(RECONNECT_MAX_MS);
                        continue;
                    }
                }
            }
        };
        last_tls_error.clear();
        let mut framed = Framed::new(stream, wire::peer_codec());
        let hello = PeerFrame::Hello {
            version: wire::PROTOCOL_VERSION,
            from: shared.id,
            count: shared.count,
        };
        if framed.send(wire::encode(&hello)).await.is_err() {
            continue;
        }
        debug!("link to {to} at {addr} is up");
        backoff_ms = RECONNECT_MIN_MS;
        let (mut sink, mut stream) = framed.split();
        loop {
            tokio::select! {
                frame = rx.recv() => {
                    let Some(frame) = frame else { return };
                    if sink.feed(frame).await.is_err() {
                        break;
                    }
                    let mut ok = true;
                    while let Ok(frame) = rx.try_recv() {
                        if sink.feed(frame).await.is_err() {
                            ok = false;
                            break;
                        }
                    }
                    if !ok || sink.flush().await.is_err() {
                        break;
                    }
                }
                // The peer never writes on this link: any read result means
                // it closed or reset, so reconnect.
                _ = stream.next() => break,
            }
        }
        debug!("link to {to} at {addr} went down");
    }
}

/// Waits `backoff_ms` before the next attempt to reach peer `to`, or less
/// if `to` connects to us meanwhile (it is back up: a restarted peer then
/// hears the leader's heartbeat at once, not after a long back-off).
/// Returns the next back-off.
async fn reconnect_pause(shared: &Shared, to: NodeId, backoff_ms: u64) -> u64 {
    let sleep = tokio::time::sleep(Duration::from_millis(backoff_ms));
    match shared.link_wake.get(to.0 as usize) {
        Some(wake) => tokio::select! {
            () = sleep => (backoff_ms * 2).min(RECONNECT_MAX_MS),
            () = wake.notified() => RECONNECT_MIN_MS,
        },
        None => {
            sleep.await;
            (backoff_ms * 2).min(RECONNECT_MAX_MS)
        }
    }
}

/// Accepts connections forever, at most `max` open at once (more are closed
/// at once and counted), serving each with `serve(shared, stream, addr, n)`
/// where `n` numbers the connections from 1. An accept error is logged, not fatal.
pub(super) async fn accept_loop<F, Fut>(
    shared: Arc<Shared>,
    listener: TcpListener,
    what: &'static str,
    max: usize,
    serve: F,
) where
    F: Fn(Arc<Shared>, TcpStream, SocketAddr, u64) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut accepted = 0u64;
    let slots = Arc::new(tokio::sync::Semaphore::new(max));
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    warn!("refusing {what} connection from {addr}: {max} are open");
                    shared.counters.refused_connections.fetch_add(1, Relaxed);
                    continue; // dropping the stream closes it
                };
                let _ = stream.set_nodelay(true);
                accepted += 1;
                let conn = serve(shared.clone(), stream, addr, accepted);
                tokio::spawn(async move {
                    conn.await;
                    drop(permit);
                });
            }
            Err(e) => {
                warn!("accepting a {what} connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Whether a read error only says that the other end went away: over TLS,
/// a close without the TLS close_notify (a process that exits or is killed
/// does not send one) reads as an unexpected end of file. Plain TCP reports
/// the same close as the end of the stream; neither is a malformed frame.
fn closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
    )
}

/// Which listener a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Port {
    Peer,
    Client,
}

/// Completes the TLS handshake of an inbound connection (or passes a plain
/// one through without TLS). A connection closed or silent before its first
/// byte (a port probe) is dropped quietly; one that is not TLS, or whose
/// handshake fails or stalls, is counted in `tls_refused` and closed.
async fn handshake(
    shared: &Shared,
    stream: TcpStream,
    addr: SocketAddr,
    port: Port,
) -> Option<Stream> {
    let Some(tls) = &shared.tls else {
        return Some(Stream::Plain(stream));
    };
    let mut first = [0u8; 1];
    match tokio::time::timeout(HELLO_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1..)) => {}
        _ => return None,
    }
    let why = if first[0] != TLS_HANDSHAKE_BYTE {
        "it does not speak TLS (a plain-TCP client or server? give it the CA, or run every server with --insecure)".to_string()
    } else {
        let accept = async {
            match port {
                Port::Peer => tls.accept_peer(stream).await,
                Port::Client => tls.accept_client(stream).await,
            }
        };
        match tokio::time::timeout(HELLO_TIMEOUT, accept).await {
            Ok(Ok(s)) => return Some(s),
            // The caller went away mid-handshake (a process stopping): not a refusal.
            Ok(Err(e)) if closed(&e) => {
                debug!("{addr} closed the connection during the TLS handshake: {e}");
                return None;
            }
            Ok(Err(e)) => format!("TLS handshake failed: {e}"),
            Err(_) => "the TLS handshake did not finish in time".to_string(),
        }
    };
    shared.counters.tls_refused.fetch_add(1, Relaxed);
    match port {
        Port::Peer => warn!("refusing peer connection from {addr}: {why}"),
        Port::Client => debug!("refusing client connection from {addr}: {why}"),
    }
    None
}

/// Reads one inbound peer connection: a hello, then frames for the driver.
pub(super) async fn peer_reader(shared: Arc<Shared>, stream: TcpStream, addr: SocketAddr) {
    let c = &shared.counters;
    let Some(stream) = handshake(&shared, stream, addr, Port::Peer).await else {
        return;
    };
    // Strangers may not make us reserve a large frame buffer: the hello is small.
    let mut framed = Framed::new(stream, wire::hello_codec());
    let from = match tokio::time::timeout(HELLO_TIMEOUT, framed.next()).await {
        Ok(Some(Ok(bytes))) => match wire::decode::<PeerFrame>(&bytes) {
            Ok(PeerFrame::Hello {
                version,
                from,
                count,
            }) if version == wire::PROTOCOL_VERSION
                && count == shared.count
                && from.0 < shared.count
                && from != shared.id =>
            {
                from
            }
            Ok(PeerFrame::Hello {
                version,
                from,
                count,
                ..
            }) => {
                warn!("refusing peer {addr}: it says it is {from} of {count} (protocol {version}); we are {} of {}", shared.id, shared.count);
                c.malformed.fetch_add(1, Relaxed);
                return;
            }
            _ => {
                debug!("peer connection from {addr} did not start with a hello");
                c.malformed.fetch_add(1, Relaxed);
                return;
            }
        },
        Ok(Some(Err(e))) if !closed(&e) => {
            c.malformed.fetch_add(1, Relaxed);
            return;
        }
        _ => return, // closed or silent
    };
    // With TLS the hello is a claim to check: the certificate, which chains to
    // the cluster CA, must name the server the caller says it is.
    if shared.tls.is_some() {
        let named = framed
            .get_ref()
            .peer_certificate()
            .is_some_and(|cert| tls::cert_names_server(cert, from.0));
        if !named {
            warn!(
                "refusing peer {addr}: it says it is {from} but its certificate does not name {}",
                tls::server_name(from.0)
            );
            c.peer_id_refused.fetch_add(1, Relaxed);
            return;
        }
    }
    if let Some(wake) = shared.link_wake.get(from.0 as usize) {
        wake.notify_one();
    }
    framed
        .codec_mut()
        .set_max_frame_length(wire::PEER_FRAME_MAX_BYTES);
    while let Some(frame) = framed.next().await {
        if frame.as_ref().is_err_and(closed) {
            return;
        }
        let frame = match frame
            .map_err(|e| e.to_string())
            .and_then(|b| wire::decode::<PeerFrame>(&b).map_err(|e| e.to_string()))
        {
            Ok(PeerFrame::Hello { .. }) | Err(_) => {
                debug!("malformed frame from peer {from} at {addr}; closing the link");
                c.malformed.fetch_add(1, Relaxed);
                return;
            }
            Ok(f) => f,
        };
        c.peer_received.fetch_add(1, Relaxed);
        if shared
            .input
            .send(DriverInput::Peer { from, frame })
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Serves one client connection: requests in, responses out. A connection
/// may carry several sessions; each one's route points at its newest connection.
pub(super) async fn client_conn(
    shared: Arc<Shared>,
    stream: TcpStream,
    addr: SocketAddr,
    conn: u64,
) {
    let c = &shared.counters;
    let Some(stream) = handshake(&shared, stream, addr, Port::Client).await else {
        return;
    };
    let (mut sink, mut frames) = Framed::new(stream, wire::client_codec()).split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(CLIENT_QUEUE_FRAMES);
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.feed(frame).await.is_err() {
                return;
            }
            while let Ok(frame) = rx.try_recv() {
                if sink.feed(frame).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let mut sessions = HashSet::new();
    while let Some(frame) = frames.next().await {
        if frame.as_ref().is_err_and(closed) {
            break;
        }
        let request = match frame
            .map_err(|e| e.to_string())
            .and_then(|b| wire::decode::<Request>(&b).map_err(|e| e.to_string()))
        {
            Ok(r) => r,
            Err(e) => {
                debug!("malformed client frame ({e}); closing connection {conn}");
                c.malformed.fetch_add(1, Relaxed);
                break;
            }
        };
        c.requests.fetch_add(1, Relaxed);
        let Request { client, seq, op } = request;
        let refusal = match &op {
            _ if seq == 0 => Some("sequence numbers start at 1".to_string()),
            ChatOp::Put(text) if text.len() > MESSAGE_MAX_BYTES => Some(format!(
                "message of {} bytes is over the {MESSAGE_MAX_BYTES}-byte limit",
                text.len()
            )),
            _ if !sessions.contains(&client) && sessions.len() >= SESSIONS_PER_CONNECTION_MAX => {
                Some("too many sessions on one connection".to_string())
            }
            _ => None,
        };
        if let Some(reason) = refusal {
            let result = Outcome::Rejected { reason };
            let _ = tx.try_send(wire::encode(&Response {
                client,
                seq,
                result,
                leader: None,
            }));
            continue;
        }
        if sessions.insert(client) || !owns(&shared.routes, client, conn) {
            shared.routes.lock().expect("routes").insert(
                client,
                Route {
                    conn,
                    tx: tx.clone(),
                },
            );
        }
        let cmd = Command { client, seq, op };
        if shared.input.send(DriverInput::Client(cmd)).await.is_err() {
            break;
        }
    }
    {
        // Only remove routes this connection still owns: a newer connection
        // of the same session keeps its own.
        let mut routes = shared.routes.lock().expect("routes");
        for client in sessions {
            if routes.get(&client).is_some_and(|r| r.conn == conn) {
                routes.remove(&client);
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

fn owns(routes: &Routes, client: ClientId, conn: u64) -> bool {
    routes
        .lock()
        .expect("routes")
        .get(&client)
        .is_some_and(|r| r.conn == conn)
}
