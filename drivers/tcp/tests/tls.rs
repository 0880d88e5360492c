//! Authenticated transports: who may speak on a TLS cluster's ports.
//!
//! A server of another cluster (a certificate from another CA), a holder of a
//! real certificate posing as another server, a listener posing as a peer, and
//! plain TCP on a TLS port are all refused and counted, and the cluster keeps
//! serving. Clients check the servers; servers can require client certificates.

mod common;

use common::{counter, runtime, Cluster};
use paxos_core::NodeId;
use paxos_tcp::chat::ChatOp;
use paxos_tcp::client::{Session, SessionOptions};
use paxos_tcp::tls::{
    self, certs_from_pem, key_from_pem, ClientCerts, ClientTls, DevPki, Identity, ServerTls,
};
use paxos_tcp::wire::{self, PeerFrame, Request};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT_MS: u64 = 200;

fn opts() -> SessionOptions {
    SessionOptions {
        attempt_timeout: Duration::from_millis(500),
        deadline: Duration::from_secs(20),
        ..SessionOptions::default()
    }
}

/// An identity with `issued`'s certificate and key under `ca_pem`.
fn identity(ca_pem: &str, issued: &tls::IssuedPem) -> Identity {
    let p = Path::new("test");
    Identity {
        ca: certs_from_pem(ca_pem.as_bytes(), p).unwrap(),
        chain: certs_from_pem(issued.cert.as_bytes(), p).unwrap(),
        key: Arc::new(key_from_pem(issued.key.as_bytes(), p).unwrap()),
    }
}

/// One length-prefixed frame.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// The hello and a protocol message a peer claiming to be `from` would send.
fn hello_and_message(from: u32, count: u32) -> Vec<u8> {
    let mut bytes = frame(&wire::encode(&PeerFrame::Hello {
        version: wire::PROTOCOL_VERSION,
        from: NodeId(from),
        count,
    }));
    let msg = paxos_core::Message::Heartbeat {
        ballot: paxos_core::Ballot::new(1_000_000, NodeId(from)),
        commit: 0,
        beat: 0,
    };
    bytes.extend(frame(&wire::encode(&PeerFrame::Paxos(msg))));
    bytes
}

/// Reads until the other end closes (or resets) the connection.
async fn until_closed(stream: &mut tls::Stream) {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server kept the connection open"),
        }
    }
}

#[test]
fn a_server_of_another_ca_is_refused_both_ways_and_the_rest_serve_on() {
    let mut cluster = Cluster::new(3, TIMEOUT_MS);
    // Server 2 is consistent in itself, but its CA is not the cluster's.
    let rogue_dir = cluster.dir.path().join("rogue-tls");
    DevPki::new("another CA")
        .unwrap()
        .write_cluster(&rogue_dir, 3)
        .unwrap();
    cluster.tls_dirs[2] = rogue_dir;
    cluster.start_all();
    let rt = runtime();
    // Servers 0 and 1 are a majority: the room works without server 2.
    let mut session = Session::new(1, 1, cluster.client_addrs()[..2].to_vec(), opts())
        .with_tls(cluster.client_tls());
    for i in 0..5 {
        rt.block_on(session.put(&format!("m{i}"))).expect("put");
    }
    // Server 2 dials 0 and 1 and is refused; they dial it and refuse its certificate.
    for id in [0, 1] {
        cluster.wait_for_output(id, "refusing peer connection");
        cluster.wait_for_output(id, "TLS to peer n2");
    }
    let (_, log) = rt.block_on(session.get_all()).expect("get");
    assert_eq!(log, ["m0", "m1", "m2", "m3", "m4"]);
    for id in [0, 1] {
        let out = cluster.terminate(id);
        assert!(counter(&out, "tls_refused") >= 1, "server {id}: {out}");
        assert!(counter(&out, "link_tls_failed") >= 1, "server {id}: {out}");
        // Server 0's links closing when it stopped (no TLS close_notify from
        // a process that exits) are closes, not malformed frames.
        assert_eq!(counter(&out, "malformed"), 0, "server {id}: {out}");
    }
    let out = cluster.terminate(2);
    assert_eq!(
        counter(&out, "executed"),
        0,
        "server 2 learned nothing: {out}"
    );
    assert!(counter(&out, "link_tls_failed") >= 1, "{out}");
}

#[test]
fn a_peer_whose_certificate_names_another_id_is_refused() {
    let mut cluster = Cluster::new(3, TIMEOUT_MS);
    cluster.start_all();
    let rt = runtime();
    let mut session = cluster.session(1, opts());
    rt.block_on(session.put("before")).expect("put");
    let pki = cluster.pki.as_ref().unwrap();
    // A real certificate of the cluster's CA, for server 1, used by someone
    // who says it is server 2.
    let issued = pki.server(1).unwrap();
    let id1 = identity(&pki.ca_pem(), &issued);
    let p = Path::new("test");
    let as_server_1 = ServerTls::new(&id1, 1, ClientCerts::Optional, p, p).unwrap();
    let addr = cluster.peer_addr(0);
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut stream = as_server_1
            .connect_peer(tcp, 0)
            .await
            .expect("the handshake itself succeeds: the certificate is genuine");
        stream.write_all(&hello_and_message(2, 3)).await.unwrap();
        stream.flush().await.unwrap();
        until_closed(&mut stream).await;
    });
    cluster.wait_for_output(0, "does not name paxos-server-2");

    // And a listener in server 2's place whose certificate names server 1:
    // the servers dialling it refuse it.
    cluster.kill(2);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(cluster.peer_addr(2)))
        .expect("server 2's peer port");
    let refused = rt.block_on(async {
        // Server 0 or 1 reconnecting: it must abort the handshake.
        let (tcp, _) = listener.accept().await.unwrap();
        match tokio::time::timeout(Duration::from_secs(20), as_server_1.accept_peer(tcp)).await {
            Ok(Err(e)) => e.to_string(),
            Ok(Ok(_)) => panic!("a server accepted a certificate naming another id"),
            Err(_) => panic!("the handshake neither finished nor failed"),
        }
    });
    assert!(!refused.is_empty());
    drop(listener);

    rt.block_on(session.put("after")).expect("put");
    let (_, log) = rt.block_on(session.get_all()).expect("get");
    assert_eq!(
        log,
        ["before", "after"],
        "the impostor's message went nowhere"
    );
    let out0 = cluster.terminate(0);
    let out1 = cluster.terminate(1);
    assert!(counter(&out0, "peer_id_refused") >= 1, "{out0}");
    let links = counter(&out0, "link_tls_failed") + counter(&out1, "link_tls_failed");
    assert!(
        links >= 1,
        "no server counted the impostor listener:\n{out0}\n{out1}"
    );
}

#[test]
fn plain_tcp_to_tls_ports_is_refused_and_counted() {
    let mut cluster = Cluster::new(1, TIMEOUT_MS);
    cluster.start_all();
    let rt = runtime();
    let mut session = cluster.session(1, opts());
    rt.block_on(session.put("before")).expect("put");
    // A plain peer: hello and a message, in the clear.
    let request = wire::encode(&Request {
        client: 9,
        seq: 1,
        op: ChatOp::Put("sneaky".into()),
    });
    let attempts = [
        (cluster.peer_addr(0), hello_and_message(1, 1)),
        (cluster.client_addrs()[0], frame(&request)),
    ];
    for (addr, bytes) in &attempts {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = s.write_all(bytes);
        let mut buf = [0u8; 64];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
    rt.block_on(session.put("after")).expect("put");
    let (_, log) = rt.block_on(session.get_all()).expect("get");
    assert_eq!(log, ["before", "after"]);
    let out = cluster.terminate(0);
    assert_eq!(counter(&out, "tls_refused"), 2, "{out}");
    assert_eq!(
        counter(&out, "malformed"),
        0,
        "refused before any frame: {out}"
    );
    assert!(!out.contains("panicked"), "{out}");
}

#[test]
fn clients_check_the_server_and_servers_can_require_client_certificates() {
    let mut cluster = Cluster::new(1, TIMEOUT_MS);
    cluster.extra_args.push("--require-client-cert".into());
    cluster.start_all();
    let rt = runtime();
    let quick = SessionOptions {
        attempt_timeout: Duration::from_millis(300),
        deadline: Duration::from_secs(2),
        ..SessionOptions::default()
    };
    // Without a client certificate: refused.
    let mut anonymous = cluster.session(1, quick);
    assert!(rt.block_on(anonymous.put("anonymous")).is_err());
    // A client that trusts another CA does not talk to this server.
    let other = DevPki::new("another CA").unwrap();
    let p = Path::new("test");
    let other_ca = certs_from_pem(other.ca_pem().as_bytes(), p).unwrap();
    let wrong = ClientTls::new(&other_ca, None, p).unwrap();
    let mut misled = Session::new(2, 1, cluster.client_addrs(), quick).with_tls(Some(wrong));
    assert!(rt.block_on(misled.put("misled")).is_err());
    // With a certificate from the cluster CA: served.
    let pki = cluster.pki.as_ref().unwrap();
    let alice = pki.client("alice").unwrap();
    let id = identity(&pki.ca_pem(), &alice);
    let tls = ClientTls::new(&id.ca, Some((id.chain.clone(), id.key.clone_key())), p).unwrap();
    let mut known = Session::new(3, 1, cluster.client_addrs(), opts()).with_tls(Some(tls));
    rt.block_on(known.put("alice"))
        .expect("put with a client certificate");
    assert_eq!(rt.block_on(known.get_all()).unwrap().1, ["alice"]);
    let out = cluster.terminate(0);
    assert!(counter(&out, "tls_refused") >= 2, "{out}");
}

#[test]
fn certs_command_writes_a_cluster_the_binaries_accept() {
    let dir = tempfile::tempdir().unwrap();
    let tls_dir = dir.path().join("tls");
    let out = Command::new(env!("CARGO_BIN_EXE_chatroom-certs"))
        .arg("--dir")
        .arg(&tls_dir)
        .args(["--servers", "2", "--clients", "bob"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for f in [
        "ca.pem",
        "server-0.pem",
        "server-0.key",
        "server-1.pem",
        "server-1.key",
        "client-bob.pem",
        "client-bob.key",
    ] {
        assert!(tls_dir.join(f).is_file(), "{f} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tls_dir.join("server-0.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "keys are the owner's only: {mode:o}");
    }
    assert!(ServerTls::load(&tls_dir, 1, ClientCerts::Required).is_ok());
    let err = ServerTls::load(&tls_dir, 0, ClientCerts::Optional)
        .and_then(|_| {
            // server-1's certificate in server-0's place names the wrong id.
            std::fs::copy(tls_dir.join("server-1.pem"), tls_dir.join("server-0.pem")).unwrap();
            std::fs::copy(tls_dir.join("server-1.key"), tls_dir.join("server-0.key")).unwrap();
            ServerTls::load(&tls_dir, 0, ClientCerts::Optional)
        })
        .unwrap_err();
    assert!(err.to_string().contains("paxos-server-0"), "{err}");
    // A second run would make a CA the existing certificates do not match.
    let again = Command::new(env!("CARGO_BIN_EXE_chatroom-certs"))
        .arg("--dir")
        .arg(&tls_dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}
