//! Sockets and the part of the loop every role shares: wait for datagrams, a
//! tick or a signal; perform actions in order, syncing the log before any send.

use crate::auth::{Counter, Key, ReplayWindow};
use crate::conf::Groups;
use crate::wal::{Wal, WalError};
use crate::wire::{self, DecodeError, Framing, Msg, Sender, DATAGRAM_BYTES_MAX};
use paxos_core::{Action, Destination, Event, Input};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Period of [`Input::Tick`]; the core's timeouts count these. One
/// millisecond, about a round trip on a LAN: a timer can only fire on a
/// tick, so a coarser tick would make every repair of a lost datagram wait
/// for tens of round trips (see `RETRANSMIT_TICKS` in `roles.rs`).
pub const TICK: Duration = Duration::from_millis(1);
/// Most datagrams read in one go before the actions they cause are performed,
/// so that one log sync covers many votes.
const RECV_BATCH_MAX: usize = 256;
/// Receive buffer asked of the kernel (it may grant less).
const RECV_BUFFER_BYTES: usize = 8 << 20;

/// Counters printed on exit.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Datagrams sent (one per group a message went to).
    pub sent: u64,
    /// Bytes in them.
    pub sent_bytes: u64,
    /// Sends the kernel refused (they count as lost).
    pub send_errors: u64,
    /// Datagrams received and accepted.
    pub received: u64,
    /// Datagrams refused: shorter than a header, damaged, or not one message.
    pub malformed: u64,
    /// Datagrams refused: not ours (magic or version), or authenticated
    /// ones reaching a process without a key.
    pub foreign: u64,
    /// With a key: datagrams whose MAC does not verify (forged, or changed
    /// on the way).
    pub bad_mac: u64,
    /// With a key: authentic datagrams seen before, or too old for the
    /// sender's replay window.
    pub replayed: u64,
    /// With a key: datagrams without a MAC (from a process without the key).
    pub unauthenticated: u64,
    /// Our own datagrams, looped back by multicast.
    pub own: u64,
    /// Datagrams for another process of the group we listen on.
    pub elsewhere: u64,
    /// Datagrams dropped on purpose by `--drop-rate`.
    pub injected_drops: u64,
    /// Messages refused because they did not fit in a datagram.
    pub oversize: u64,
    /// Log syncs.
    pub syncs: u64,
    /// Messages the core ignored.
    pub ignored: u64,
    /// Proposals the core refused (not leader, overloaded, superseded).
    pub dropped: u64,
    /// Slots the leader saw chosen.
    pub decided: u64,
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent={} sent_bytes={} send_errors={} received={} malformed={} foreign={} \
             bad_mac={} replayed={} unauthenticated={} own={} \
             elsewhere={} injected_drops={} oversize={} syncs={} ignored={} dropped={} decided={}",
            self.sent,
            self.sent_bytes,
            self.send_errors,
            self.received,
            self.malformed,
            self.foreign,
            self.bad_mac,
            self.replayed,
            self.unauthenticated,
            self.own,
            self.elsewhere,
            self.injected_drops,
            self.oversize,
            self.syncs,
            self.ignored,
            self.dropped,
            self.decided
        )
    }
}

/// What woke the loop up.
#[derive(Debug)]
pub enum Wake {
    /// One or more messages arrived (already checked and decoded).
    Messages,
    /// A tick passed.
    Tick,
    /// SIGINT or SIGTERM: finish and print counters.
    Shutdown,
}

/// A small seeded generator for `--drop-rate` (splitmix64).
#[derive(Debug)]
struct Dice(u64);

impl Dice {
    fn below(&mut self, p: f64) -> bool {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// Authentication state of a process that has the key.
#[derive(Debug)]
pub struct Auth {
    key: Key,
    counter: Counter,
    windows: HashMap<Sender, ReplayWindow>,
}

impl Auth {
    /// Signs with `key`, numbering datagrams with `counter`.
    pub fn new(key: Key, counter: Counter) -> Auth {
        Auth {
            key,
            counter,
            windows: HashMap::new(),
        }
    }
}

/// One process's network end and the shared half of its loop.
#[derive(Debug)]
pub struct Node {
    me: Sender,
    groups: Groups,
    listen: UdpSocket,
    send: UdpSocket,
    ticker: tokio::time::Interval,
    sigint: Signal,
    sigterm: Signal,
    drop_rate: f64,
    dice: Dice,
    buf: Vec<u8>,
    out: Vec<Vec<u8>>,
    /// Decoded messages waiting to be stepped, with their senders.
    pub inbox: Vec<(Sender, Msg)>,
    /// The counters.
    pub counters: Counters,
    /// The key and the counters of the authenticated framing, or none.
    auth: Option<Auth>,
    /// Whether the "authenticated datagrams but no key" warning was given.
    warned_no_key: bool,
}

/// Opens a socket that joins `group` and listens on its port. SO_REUSEADDR
/// lets every process of a role on one host bind the same group and port.
pub fn listen_socket(group: SocketAddrV4) -> io::Result<UdpSocket> {
    UdpSocket::from_std(listen_socket_std(group)?)
}

/// [`listen_socket`] as a non-blocking std socket (for tools without a runtime).
pub fn listen_socket_std(group: SocketAddrV4) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.join_multicast_v4(group.ip(), &Ipv4Addr::UNSPECIFIED)?;
    let _ = s.set_recv_buffer_size(RECV_BUFFER_BYTES);
    s.bind(&SockAddr::from(group))?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Opens a blocking socket to send from: loopback on (several processes per
/// host), TTL 1 (multicast never leaves the link).
pub fn send_socket() -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_multicast_loop_v4(true)?;
    s.set_multicast_ttl_v4(1)?;
    let _ = s.set_send_buffer_size(RECV_BUFFER_BYTES);
    s.bind(&SockAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)))?;
    Ok(s.into())
}

impl Node {
    /// Joins the group this role listens on (clients listen with the
    /// learners). With `auth`, every datagram is signed and only signed,
    /// fresh datagrams are accepted.
    pub fn new(me: Sender, groups: Groups, drop_rate: f64, auth: Option<Auth>) -> io::Result<Node> {
        let group = groups.of(me.role);
        let listen = listen_socket(group).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot listen on group {group}: {e}"))
        })?;
        let send = send_socket()?;
        send.set_nonblocking(true)?;
        let send = UdpSocket::from_std(send)?;
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        Ok(Node {
            me,
            groups,
            listen,
            send,
            ticker,
            sigint: signal(SignalKind::interrupt())?,
            sigterm: signal(SignalKind::terminate())?,
            drop_rate,
            dice: Dice(seed),
            buf: vec![0; DATAGRAM_BYTES_MAX + 1],
            out: Vec::new(),
            inbox: Vec::new(),
            counters: Counters::default(),
            auth,
            warned_no_key: false,
        })
    }

    /// Who we are.
    pub fn me(&self) -> Sender {
        self.me
    }

    /// Waits for datagrams, a tick or a signal. Datagrams land in
    /// [`Node::inbox`]: after the first, every one already queued is read too
    /// (up to a limit), so the actions they cause share one log sync.
    pub async fn wake(&mut self) -> Wake {
        tokio::select! {
            biased;
            _ = self.sigint.recv() => Wake::Shutdown,
            _ = self.sigterm.recv() => Wake::Shutdown,
            r = self.listen.recv_from(&mut self.buf) => {
                self.take(r);
                for _ in 1..RECV_BATCH_MAX {
                    match self.listen.try_recv_from(&mut self.buf) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        r => self.take(r),
                    }
                }
                Wake::Messages
            }
            _ = self.ticker.tick() => Wake::Tick,
        }
    }

    fn take(&mut self, r: io::Result<(usize, SocketAddr)>) {
        let Ok((len, _)) = r else {
            return;
        };
        if self.drop_rate > 0.0 && self.dice.below(self.drop_rate) {
            self.counters.injected_drops += 1;
            return;
        }
        let bytes = &self.buf[..len];
        let decoded = match &self.auth {
            None => wire::decode(bytes).map(|d| (d, None)),
            Some(auth) => wire::open(bytes, &auth.key).map(|(d, c)| (d, Some(c))),
        };
        match decoded {
            Ok((d, _)) if d.from == self.me => self.counters.own += 1,
            Ok((d, Some(counter)))
                if !self
                    .auth
                    .as_mut()
                    .expect("a counter comes with a key")
                    .windows
                    .entry(d.from)
                    .or_default()
                    .accept(counter) =>
            {
                self.counters.replayed += 1;
                tracing::debug!(from = %d.from, counter, "refused a replayed datagram");
            }
            Ok((d, _)) if !d.to.reaches(&self.me.process()) => self.counters.elsewhere += 1,
            Ok((d, _)) => {
                self.counters.received += 1;
                self.inbox.push((d.from, d.msg));
            }
            Err(DecodeError::Foreign) => self.counters.foreign += 1,
            Err(DecodeError::NeedsKey) => {
                self.counters.foreign += 1;
                if !self.warned_no_key {
                    self.warned_no_key = true;
                    tracing::warn!("authenticated datagrams arrive and this process has no key (--key or a key line in the config): ignoring them");
                }
            }
            Err(DecodeError::BadMac) => {
                self.counters.bad_mac += 1;
                tracing::debug!(len, "refused a datagram whose MAC does not verify");
            }
            Err(DecodeError::Unauthenticated) => self.counters.unauthenticated += 1,
            Err(e) => {
                self.counters.malformed += 1;
                tracing::debug!(error = %e, len, "refused a datagram");
            }
        }
    }

    /// Performs actions in order. A `Persist` is appended to `wal` and made
    /// durable before the next send; `Deliver` and `Reply` go to `other`.
    pub async fn perform(
        &mut self,
        actions: &mut Vec<Action<String>>,
        mut wal: Option<&mut Wal>,
        mut other: impl FnMut(Action<String>),
    ) -> Result<(), WalError> {
        for action in actions.drain(..) {
            match action {
                Action::Persist(record) => match wal.as_deref_mut() {
                    Some(w) => w.append(&record)?,
                    None => tracing::error!(?record, "this role keeps no log; record not kept"),
                },
                // Only a paxos_core::Server keeps a replica snapshot.
                Action::PersistSnapshot(_) => {}
                Action::Compact(checkpoint) => match wal.as_deref_mut() {
                    // The rewrite is atomic and durable when it returns.
                    Some(w) => w.rewrite(&checkpoint.records)?,
                    None => tracing::error!("this role keeps no log; compaction not kept"),
                },
                Action::Send { to, msg } => {
                    if let Some(w) = wal.as_deref_mut() {
                        if w.is_dirty() {
                            w.sync()?;
                            self.counters.syncs += 1;
                        }
                    }
                    self.send(to, msg).await;
                }
                Action::Event(e) => match e {
                    Event::Decided { .. } => self.counters.decided += 1,
                    Event::Dropped { .. } => self.counters.dropped += 1,
                    Event::Ignored { .. } => self.counters.ignored += 1,
                    // Only a paxos_core::Server installs snapshots and
                    // serves reads; learners here deliver the whole log.
                    Event::SnapshotInstalled { .. }
                    | Event::ReadRefused { .. }
                    | Event::HandingOff { .. }
                    | Event::TransferRefused { .. }
                    | Event::Rejoined { .. }
                    | Event::Reconfigured { .. }
                    | Event::ReconfigureRefused { .. } => {}
                    e @ Event::Failed { .. } => other(Action::Event(e)),
                },
                a @ (Action::Deliver { .. } | Action::Reply { .. }) => other(a),
                Action::ReadReply { .. } => {}
            }
        }
        if let Some(w) = wal {
            if w.is_dirty() {
                w.sync()?;
                self.counters.syncs += 1;
            }
        }
        Ok(())
    }

    /// The multicast groups of the processes `to` names: the group each of
    /// its roles listens on, once each.
    fn groups_for(&self, to: Destination) -> Vec<SocketAddrV4> {
        let mut groups = Vec::new();
        for role in to.roles().iter() {
            let group = self.groups.of(role);
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        groups
    }

    /// Encodes `msg` (split if it is a list too long for one datagram) and
    /// sends it to every group `to` names. Refusals and send errors are counted.
    pub async fn send(&mut self, to: Destination, msg: Msg) {
        let targets = self.groups_for(to);
        let kind = msg.kind();
        let framing = if self.auth.is_some() {
            Framing::Authenticated
        } else {
            Framing::Plain
        };
        if let Err(e) = wire::encode_split_as(framing, self.me, to, msg, &mut self.out) {
            self.counters.oversize += 1;
            tracing::warn!(error = %e, "refused to send");
            self.out.clear();
            return;
        }
        for mut datagram in self.out.drain(..) {
            if let Some(auth) = &mut self.auth {
                // One counter per datagram: the copies that go to several
                // groups reach different receivers.
                wire::sign(&mut datagram, auth.counter.take(), &auth.key);
            }
            for target in &targets {
                match self.send.send_to(&datagram, *target).await {
                    Ok(_) => {
                        self.counters.sent += 1;
                        self.counters.sent_bytes += datagram.len() as u64;
                    }
                    Err(e) => {
                        self.counters.send_errors += 1;
                        tracing::debug!(error = %e, kind, %target, "send failed");
                    }
                }
            }
        }
    }

    /// Steps every message in the inbox through `step`, as `Input::Receive`.
    pub fn drain_inbox(&mut self, mut step: impl FnMut(Input<String>)) {
        for (from, msg) in self.inbox.drain(..) {
            step(Input::Receive {
                from: from.process(),
                msg,
            });
        }
    }
}
