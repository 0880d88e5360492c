//! Bad bytes on either port — an oversized length, an undecodable payload,
//! random noise, a peer that skips its hello — are counted and dropped with
//! the connection closed, and the cluster keeps serving as if nothing happened.

mod common;

use common::{counter, runtime, Cluster};
use paxos_tcp::client::SessionOptions;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const SERVERS: usize = 3;
const TIMEOUT_MS: u64 = 200;

/// Junk that each must cost the receiver one closed connection and nothing else.
fn junk() -> Vec<Vec<u8>> {
    let mut noise = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.push(x as u8);
    }
    vec![
        // A frame claiming 4 GiB.
        vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        // A well-framed payload that decodes to nothing we know.
        vec![0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff],
        // Random noise.
        noise,
    ]
}

/// Sends `bytes` and expects the server to close the connection.
fn send_junk(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return, // closed (or reset): what we want
            Ok(_) => continue,
        }
    }
}

#[test]
fn malformed_frames_on_either_port_are_counted_and_dropped() {
    // Plain TCP, so that the junk reaches the frame decoders (on TLS ports it
    // is refused before them: see tests/tls.rs).
    let mut cluster = Cluster::insecure(SERVERS, TIMEOUT_MS);
    cluster.start_all();
    let rt = runtime();
    let opts = SessionOptions {
        attempt_timeout: Duration::from_millis(500),
        deadline: Duration::from_secs(20),
        ..SessionOptions::default()
    };
    let mut session = cluster.session(1, opts);
    rt.block_on(session.put("before"))
        .expect("put before the junk");

    let junk = junk();
    for id in 0..SERVERS {
        for bytes in &junk {
            send_junk(cluster.client_addrs()[id], bytes);
            send_junk(cluster.peer_addr(id), bytes);
        }
        // A stranger announcing a 1 MiB frame instead of a hello: refused at
        // once, before the server reserves room for it.
        send_junk(cluster.peer_addr(id), &[0, 0x10, 0, 0, 1, 2, 3]);
    }
    // Not junk, but not a hello either: a valid-looking client request sent to
    // the peer port must be refused too.
    let request = paxos_tcp::wire::encode(&paxos_tcp::wire::Request {
        client: 9,
        seq: 1,
        op: paxos_tcp::chat::ChatOp::Put("sneaky".into()),
    });
    let mut framed = (request.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&request);
    send_junk(cluster.peer_addr(0), &framed);

    rt.block_on(session.put("after"))
        .expect("put after the junk");
    let (_, log) = rt.block_on(session.get_all()).expect("get");
    assert_eq!(log, ["before", "after"], "junk must not reach the log");

    let per_server = 2 * junk.len() as u64 + 1;
    for id in 0..SERVERS {
        let out = cluster.terminate(id);
        let malformed = counter(&out, "malformed");
        let expected = per_server + u64::from(id == 0);
        assert!(
            malformed >= expected,
            "server {id} counted {malformed} malformed frames, expected at least {expected}: {out}"
        );
    }
}

#[test]
fn oversized_put_is_refused_with_a_reason_and_the_session_goes_on() {
    let mut cluster = Cluster::new(1, TIMEOUT_MS);
    cluster.start_all();
    let rt = runtime();
    let mut session = cluster.session(5, SessionOptions::default());
    let big = "x".repeat(paxos_tcp::chat::MESSAGE_MAX_BYTES + 1);
    let err = rt.block_on(session.put(&big)).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    rt.block_on(session.put("small"))
        .expect("the session still works");
    assert_eq!(rt.block_on(session.get_all()).unwrap().1, ["small"]);
}
