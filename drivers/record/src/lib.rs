//! # paxos-record: a flight recorder for paxos-core machines
//!
//! A driver that runs with `--record FILE` appends to FILE everything a
//! core machine needs to be run again exactly: what kind of process it is,
//! its [`Config`] (the seed included), what it recovered from its log at
//! start, and then every [`Input`] it steps, each followed by the number of
//! actions the step produced and a CRC32C digest of them. The core is
//! deterministic, so feeding the same inputs to the same recovered machine
//! must give the same actions: [`verify`] does that and names the first
//! step that differs. A recording of a node that misbehaved in production
//! is therefore a reproduction of what it did.
//!
//! ## Format
//!
//! ```text
//! file     session*                 (a restart appends a new session)
//! session  marker (16 bytes: 0xFF "PAXOS-RECORD-2\n") frame(meta) frame(boot) frame(chunk)*
//! frame    payload length u32 LE | CRC32C of the payload u32 LE | payload
//! payload  tag u8 (1 meta, 2 boot, 3 chunk) | body
//! meta     postcard Meta
//! boot     postcard Boot            (config, snapshot, records, client id)
//! chunk    unix time in ms (postcard varint) | step*
//! step     postcard Input | action count (varint) | digest u32 LE
//! ```
//!
//! A chunk holds the steps of one turn of the driver's loop and is written
//! with one `write` before the actions of that turn are performed, so a
//! process killed at any point leaves a recording of every step whose
//! effects anyone could have seen (minus a torn last chunk, if the kill hit
//! the write). Recordings are not fsynced: a machine that loses power loses
//! the tail, as with any log file. A reader that meets a damaged frame
//! skips to the next session marker.
//!
//! The digit in the marker is the format version ([`VERSION`]). The
//! payloads are postcard encodings of paxos-core types, so a change to the
//! shape of `Input`, `Config` or `Record` is a new version: version 2 came
//! with check-quorum (`Message::Heartbeat` carries `beat`, and
//! `HeartbeatAck` and `Refused` are new), which re-numbered the variants of
//! `Message` after `Heartbeat`. A reader refuses a session of another
//! version by name instead of decoding it into the wrong inputs, and a
//! recorder refuses to append to a file of another version.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use paxos_core::{Action, Config, Input, Record};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// The format version this build writes and reads (the digit in [`MARKER`]).
pub const VERSION: u8 = 2;
/// Starts every session of a recording.
pub const MARKER: [u8; 16] = *b"\xffPAXOS-RECORD-2\n";
/// What the marker of every format version starts with; a digit (the
/// version) and a newline follow.
const MARKER_PREFIX: &[u8] = b"\xffPAXOS-RECORD-";

/// The format version of the session marker at the start of `bytes`, if
/// one is there (of any version).
fn marker_version(bytes: &[u8]) -> Option<u8> {
    match bytes.strip_prefix(MARKER_PREFIX)? {
        [d @ b'0'..=b'9', b'\n', ..] => Some(d - b'0'),
        _ => None,
    }
}
/// A chunk is written once it holds this much, even within one loop turn.
const CHUNK_MAX_BYTES: usize = 1 << 20;
/// Largest frame a reader accepts (a boot frame holds a whole snapshot).
const FRAME_MAX_BYTES: u32 = 1 << 30;
const TAG_META: u8 = 1;
const TAG_BOOT: u8 = 2;
const TAG_CHUNK: u8 = 3;

/// Which machine a recording is of, so that a replayer builds the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// A `chatroom-server`: `paxos_core::Server` of the chat room.
    ChatServer,
    /// `abcast acceptor`: `paxos_core::Acceptor<String>`.
    AbcastAcceptor,
    /// `abcast proposer`: `paxos_core::Proposer<String>`.
    AbcastProposer,
    /// `abcast learner`: `paxos_core::LearnerReplica` of strings.
    AbcastLearner,
    /// `abcast client`: `paxos_core::Client<String>`.
    AbcastClient,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::ChatServer => "chatroom-server",
            Kind::AbcastAcceptor => "abcast acceptor",
            Kind::AbcastProposer => "abcast proposer",
            Kind::AbcastLearner => "abcast learner",
            Kind::AbcastClient => "abcast client",
        })
    }
}

/// Who wrote a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The machine.
    pub kind: Kind,
    /// The process's id within its role.
    pub id: u32,
    /// The operating system's process id.
    pub pid: u32,
    /// When the session started, in ms since the Unix epoch.
    pub unix_ms: u64,
}

impl Meta {
    /// A session of `kind` with `id`, starting now, in this process.
    pub fn now(kind: Kind, id: u32) -> Meta {
        Meta {
            kind,
            id,
            pid: std::process::id(),
            unix_ms: unix_ms(),
        }
    }
}

/// What a machine was built from when its process started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Boot<C, P> {
    /// Its configuration (the seed of its random choices included).
    pub config: Config,
    /// The snapshot it restored from, if its log held one.
    pub snapshot: Option<P>,
    /// The records it replayed from its log, in order.
    pub records: Vec<Record<C>>,
    /// A client's session id.
    pub client: Option<u64>,
}

/// [`Boot`] by reference, to record without copying the recovered log.
#[derive(Debug, Serialize)]
pub struct BootRef<'a, C, P> {
    /// See [`Boot::config`].
    pub config: &'a Config,
    /// See [`Boot::snapshot`].
    pub snapshot: Option<&'a P>,
    /// See [`Boot::records`].
    pub records: &'a [Record<C>],
    /// See [`Boot::client`].
    pub client: Option<u64>,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Appends postcard output to a `Vec` the caller keeps (no allocation per value).
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }
    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

fn append<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> postcard::Result<()> {
    postcard::serialize_with_flavor(value, Append(buf))
}

/// CRC32C of the postcard encodings of `actions`, one after the other: what a step
/// produced, in four bytes. `scratch` is reused between calls.
pub fn digest<C, O, P>(actions: &[Action<C, O, P>], scratch: &mut Vec<u8>) -> u32
where
    C: Serialize,
    O: Serialize,
    P: Serialize,
{
    scratch.clear();
    for action in actions {
        // Encoding into a Vec cannot fail for these types; a failure would
        // only make the digest differ, which a replay reports.
        let _ = append(action, scratch);
    }
    crc32c::crc32c(scratch)
}

fn frame(tag: u8, body: &[u8], out: &mut Vec<u8>) {
    let len = body.len() as u32 + 1;
    let mut crc = crc32c::crc32c(&[tag]);
    crc = crc32c::crc32c_append(crc, body);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.push(tag);
    out.extend_from_slice(body);
}

/// Writes a recording: one session per process start, appended to the file.
///
/// Call [`Recorder::input`] before each step, [`Recorder::actions`] with what
/// the step produced, and [`Recorder::flush`] once per turn of the loop,
/// before performing the turn's actions. Writing is buffered per turn: one
/// `write` system call per turn, no fsync.
#[derive(Debug)]
pub struct Recorder {
    file: File,
    chunk: Vec<u8>,
    frame: Vec<u8>,
    scratch: Vec<u8>,
    steps: u64,
    bytes: u64,
    /// The first write error, reported by the next flush.
    error: Option<io::Error>,
    /// Time spent recording (encoding, digests, writes), for the cost
    /// figure: writes are timed, encoding one step in [`SAMPLE`] (timing
    /// every step would cost more than some steps).
    busy: std::time::Duration,
    /// When the sampled step's recording started.
    sample: Option<std::time::Instant>,
}

/// One step in this many has its recording timed.
const SAMPLE: u64 = 16;

impl Recorder {
    /// Opens (or creates) `path` for appending and writes a new session's
    /// marker, `meta` and `boot`.
    pub fn start<C, P>(path: &Path, meta: &Meta, boot: &BootRef<'_, C, P>) -> io::Result<Recorder>
    where
        C: Serialize,
        P: Serialize,
    {
        if path.is_dir() {
            return Err(io::Error::other(format!(
                "{} is a directory; --record takes a file",
                path.display()
            )));
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        // Sessions of two formats in one file would leave the older ones
        // unreadable to the reader that reads the newer ones.
        let mut head = [0u8; MARKER.len()];
        let mut got = 0;
        while got < head.len() {
            match io::Read::read(&mut file, &mut head[got..])? {
                0 => break,
                n => got += n,
            }
        }
        if let Some(v) = marker_version(&head[..got]).filter(|&v| v != VERSION) {
            return Err(io::Error::other(format!(
                "{} holds a flight recording in format {v}, and this build writes format {VERSION}; \
                 move it away (the build that wrote it replays it) or record to another file",
                path.display()
            )));
        }
        let mut recorder = Recorder {
            file,
            chunk: Vec::new(),
            frame: Vec::new(),
            scratch: Vec::new(),
            steps: 0,
            bytes: 0,
            error: None,
            busy: std::time::Duration::ZERO,
            sample: None,
        };
        let mut out = MARKER.to_vec();
        let mut body = Vec::new();
        append(meta, &mut body).map_err(io::Error::other)?;
        frame(TAG_META, &body, &mut out);
        body.clear();
        append(boot, &mut body).map_err(io::Error::other)?;
        frame(TAG_BOOT, &body, &mut out);
        recorder.file.write_all(&out)?;
        recorder.bytes = out.len() as u64;
        Ok(recorder)
    }

    /// Records the input about to be stepped.
    pub fn input<C: Serialize, P: Serialize>(&mut self, input: &Input<C, P>) {
        let start = (self.steps % SAMPLE == 0).then(std::time::Instant::now);
        if self.chunk.is_empty() {
            let _ = append(&unix_ms(), &mut self.chunk);
        }
        if let Err(e) = append(input, &mut self.chunk) {
            self.error.get_or_insert(io::Error::other(e));
        }
        self.sample = start;
        if let Some(s) = start {
            self.busy += s.elapsed() * SAMPLE as u32;
        }
    }

    /// Records what the step of the last input produced.
    pub fn actions<C, O, P>(&mut self, actions: &[Action<C, O, P>])
    where
        C: Serialize,
        O: Serialize,
        P: Serialize,
    {
        let start = self.sample.take().map(|_| std::time::Instant::now());
        let crc = digest(actions, &mut self.scratch);
        let _ = append(&(actions.len() as u32), &mut self.chunk);
        self.chunk.extend_from_slice(&crc.to_le_bytes());
        self.steps += 1;
        if let Some(s) = start {
            self.busy += s.elapsed() * SAMPLE as u32;
        }
        if self.chunk.len() >= CHUNK_MAX_BYTES {
            if let Err(e) = self.write_chunk() {
                self.error.get_or_insert(e);
            }
        }
    }

    fn write_chunk(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        self.frame.clear();
        frame(TAG_CHUNK, &self.chunk, &mut self.frame);
        self.chunk.clear();
        self.file.write_all(&self.frame)?;
        self.bytes += self.frame.len() as u64;
        Ok(())
    }

    /// Writes the steps recorded since the last flush (one system call).
    /// Call it before performing the actions of those steps.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let start = std::time::Instant::now();
        let result = self.write_chunk();
        self.busy += start.elapsed();
        result
    }

    /// Time spent in this recorder so far (encoding, digests and writes;
    /// encoding is timed on one step in 16 and scaled): what recording
    /// costs the driver's thread.
    pub fn busy(&self) -> std::time::Duration {
        self.busy
    }

    /// Steps recorded so far in this session.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Bytes this session wrote so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.write_chunk();
    }
}

/// One recorded step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step<C, P> {
    /// What the machine was fed.
    pub input: Input<C, P>,
    /// How many actions it produced.
    pub actions: u32,
    /// Their [`digest`].
    pub digest: u32,
    /// When its chunk was started, in ms since the Unix epoch.
    pub unix_ms: u64,
}

/// One process start and the steps it recorded.
#[derive(Clone, Debug)]
pub struct Session<C, P> {
    /// Byte offset of its marker in the file.
    pub offset: u64,
    /// Who wrote it.
    pub meta: Meta,
    /// What its machine was built from.
    pub boot: Boot<C, P>,
    /// Its steps, in order.
    pub steps: Vec<Step<C, P>>,
    /// Why it ends early, if its last frame was damaged or cut short
    /// (typically: the process was killed while writing).
    pub torn: Option<String>,
}

/// A file that is not a recording this reader can use.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file does not start with a session marker.
    #[error("not a flight recording (it does not start with the recorder's marker)")]
    NotARecording,
    /// A session in another format version than this build's.
    #[error("the session at byte {offset} is in recording format {found}, and this build reads format {} only: replay it with the build that recorded it", VERSION)]
    Version {
        /// The session's offset.
        offset: u64,
        /// Its format version.
        found: u8,
    },
    /// A session's header frames are damaged.
    #[error("session at byte {offset}: {reason}")]
    BadHeader {
        /// The session's offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Sessions of different kinds or ids in one file.
    #[error("session at byte {offset} is of {found} {found_id}, but the file starts with {first} {first_id}: one file per process, please")]
    Mixed {
        /// The session's offset.
        offset: u64,
        /// The first session's kind.
        first: Kind,
        /// Its id.
        first_id: u32,
        /// This session's kind.
        found: Kind,
        /// Its id.
        found_id: u32,
    },
}

/// Splits the file into frames from `at`; returns (tag, body, next offset)
/// or why the frame there is not sound.
fn next_frame(bytes: &[u8], at: usize) -> Result<(u8, &[u8], usize), String> {
    let header = bytes
        .get(at..at + 8)
        .ok_or("the file ends inside a frame header")?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if len == 0 || len > FRAME_MAX_BYTES {
        return Err(format!("a frame length of {len} bytes"));
    }
    let end = at + 8 + len as usize;
    let payload = bytes
        .get(at + 8..end)
        .ok_or_else(|| format!("the file ends inside a frame of {len} bytes"))?;
    if crc32c::crc32c(payload) != crc {
        return Err("a frame whose checksum does not match".into());
    }
    Ok((payload[0], &payload[1..], end))
}

/// The next session marker of any version at or after `from`.
fn find_marker(bytes: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(MARKER.len())
        .position(|w| marker_version(w).is_some())
        .map(|p| p + from)
}

/// Checks that a session marker of this build's version is at `at`.
fn check_marker(bytes: &[u8], at: usize) -> Result<(), ReadError> {
    match marker_version(&bytes[at..]) {
        None if at == 0 => Err(ReadError::NotARecording),
        None => Err(ReadError::BadHeader {
            offset: at as u64,
            reason: "no session marker".into(),
        }),
        Some(VERSION) => Ok(()),
        Some(found) => Err(ReadError::Version {
            offset: at as u64,
            found,
        }),
    }
}

/// The kind and id of the process that wrote a recording (its first session).
pub fn meta(bytes: &[u8]) -> Result<Meta, ReadError> {
    check_marker(bytes, 0)?;
    let bad = |reason: String| ReadError::BadHeader { offset: 0, reason };
    let (tag, body, _) = next_frame(bytes, MARKER.len()).map_err(bad)?;
    if tag != TAG_META {
        return Err(bad(format!("expected the meta frame, found tag {tag}")));
    }
    postcard::from_bytes(body).map_err(|e| bad(format!("undecodable meta: {e}")))
}

/// Reads every session of a recording. A session whose tail is damaged
/// keeps the steps before the damage and says why in [`Session::torn`].
pub fn read<C, P>(bytes: &[u8]) -> Result<Vec<Session<C, P>>, ReadError>
where
    C: DeserializeOwned,
    P: DeserializeOwned,
{
    check_marker(bytes, 0)?;
    let mut sessions: Vec<Session<C, P>> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        check_marker(bytes, at)?;
        let offset = at as u64;
        let bad = |reason: String| ReadError::BadHeader { offset, reason };
        at += MARKER.len();
        let (tag, body, next) = next_frame(bytes, at).map_err(bad)?;
        if tag != TAG_META {
            return Err(bad(format!("expected the meta frame, found tag {tag}")));
        }
        let meta: Meta =
            postcard::from_bytes(body).map_err(|e| bad(format!("undecodable meta: {e}")))?;
        if let Some(first) = sessions.first() {
            if (first.meta.kind, first.meta.id) != (meta.kind, meta.id) {
                return Err(ReadError::Mixed {
                    offset,
                    first: first.meta.kind,
                    first_id: first.meta.id,
                    found: meta.kind,
                    found_id: meta.id,
                });
            }
        }
        let (tag, body, next) = match next_frame(bytes, next) {
            Ok(f) => f,
            // Killed while writing its first frames: nothing was stepped.
            Err(_) if find_marker(bytes, next).is_some() || next >= bytes.len() => {
                at = find_marker(bytes, next).unwrap_or(bytes.len());
                continue;
            }
            Err(reason) => return Err(bad(reason)),
        };
        if tag != TAG_BOOT {
            return Err(bad(format!("expected the boot frame, found tag {tag}")));
        }
        let boot: Boot<C, P> =
            postcard::from_bytes(body).map_err(|e| bad(format!("undecodable boot frame: {e}")))?;
        let mut session = Session {
            offset,
            meta,
            boot,
            steps: Vec::new(),
            torn: None,
        };
        at = next;
        loop {
            if at >= bytes.len() || marker_version(&bytes[at..]).is_some() {
                break;
            }
            match next_frame(bytes, at).and_then(|(tag, body, next)| {
                if tag != TAG_CHUNK {
                    return Err(format!("a frame of tag {tag} among the steps"));
                }
                decode_chunk(body, &mut session.steps).map(|()| next)
            }) {
                Ok(next) => at = next,
                Err(reason) => {
                    session.torn = Some(format!("{reason} at byte {at}"));
                    at = find_marker(bytes, at + 1).unwrap_or(bytes.len());
                    break;
                }
            }
        }
        sessions.push(session);
    }
    Ok(sessions)
}

fn decode_chunk<C, P>(body: &[u8], steps: &mut Vec<Step<C, P>>) -> Result<(), String>
where
    C: DeserializeOwned,
    P: DeserializeOwned,
{
    let (unix_ms, mut rest): (u64, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| format!("a chunk without a time: {e}"))?;
    let before = steps.len();
    while !rest.is_empty() {
        let decoded = postcard::take_from_bytes::<Input<C, P>>(rest)
            .and_then(|(input, r)| {
                let (actions, r) = postcard::take_from_bytes::<u32>(r)?;
                Ok((input, actions, r))
            })
            .map_err(|e| e.to_string())
            .and_then(|(input, actions, r)| {
                let digest = r.get(..4).ok_or_else(|| "a step cut short".to_string())?;
                Ok((input, actions, digest, &r[4..]))
            });
        match decoded {
            Ok((input, actions, digest, r)) => {
                steps.push(Step {
                    input,
                    actions,
                    digest: u32::from_le_bytes(digest.try_into().expect("4 bytes")),
                    unix_ms,
                });
                rest = r;
            }
            Err(e) => {
                // A sound frame that does not decode: written by another
                // version, or for another machine. Keep nothing of it.
                steps.truncate(before);
                return Err(format!("an undecodable step ({e})"));
            }
        }
    }
    Ok(())
}

/// Sees every step a replay makes (to draw or print it).
pub trait Observer {
    /// `machine` was fed `input` as step `index` of session `session` and
    /// produced `actions`.
    fn step<C, O, P>(
        &mut self,
        session: usize,
        index: usize,
        input: &Input<C, P>,
        actions: &[Action<C, O, P>],
    );
}

/// An observer that sees nothing.
#[derive(Debug, Default)]
pub struct Quiet;

impl Observer for Quiet {
    fn step<C, O, P>(&mut self, _: usize, _: usize, _: &Input<C, P>, _: &[Action<C, O, P>]) {}
}

/// The first step whose actions differ from the recording's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The session (0 for the first process start).
    pub session: usize,
    /// The step within it (0 for the first).
    pub index: usize,
    /// The input, in Rust notation (cut at 600 characters).
    pub input: String,
    /// Actions the recording says the step produced, and their digest.
    pub recorded: (u32, u32),
    /// Actions the replay produced, and their digest.
    pub replayed: (u32, u32),
    /// The replayed actions, in Rust notation (each cut at 300 characters).
    pub actions: Vec<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "session {} step {}: the recording has {} actions with digest {:08x}, the replay {} with digest {:08x}",
            self.session, self.index, self.recorded.0, self.recorded.1, self.replayed.0, self.replayed.1
        )?;
        writeln!(f, "  input: {}", self.input)?;
        for a in &self.actions {
            writeln!(f, "  replayed: {a}")?;
        }
        Ok(())
    }
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str(" …");
    }
    s
}

/// Feeds a session's steps to `machine` (built from the session's boot
/// data by the caller) and checks every step's actions against the
/// recording. Returns the number of actions replayed.
pub fn verify<C, O, P>(
    session: usize,
    steps: &[Step<C, P>],
    mut machine: impl FnMut(Input<C, P>, &mut Vec<Action<C, O, P>>),
    observer: &mut impl Observer,
) -> Result<u64, Box<Mismatch>>
where
    C: Serialize + Clone + fmt::Debug,
    O: Serialize + fmt::Debug,
    P: Serialize + Clone + fmt::Debug,
{
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    let mut total = 0u64;
    for (index, step) in steps.iter().enumerate() {
        out.clear();
        machine(step.input.clone(), &mut out);
        let replayed = (out.len() as u32, digest(&out, &mut scratch));
        observer.step(session, index, &step.input, &out);
        if replayed != (step.actions, step.digest) {
            return Err(Box::new(Mismatch {
                session,
                index,
                input: cut(format!("{:?}", step.input), 600),
                recorded: (step.actions, step.digest),
                replayed,
                actions: out.iter().map(|a| cut(format!("{a:?}"), 300)).collect(),
            }));
        }
        total += out.len() as u64;
    }
    Ok(total)
}

/// What the replay of one session found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// Byte offset of the session in the file.
    pub offset: u64,
    /// The recording process's id.
    pub pid: u32,
    /// When it started, in ms since the Unix epoch.
    pub unix_ms: u64,
    /// Steps replayed, each to the recorded actions.
    pub steps: usize,
    /// Actions they produced.
    pub actions: u64,
    /// Why the session's recording ends early, if it does.
    pub torn: Option<String>,
}

/// Why a recording could not be replayed, or replayed differently.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file is not a recording.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A recording of another machine.
    #[error("this is a recording of {found}, not of {expected}")]
    Kind {
        /// What it records.
        found: Kind,
        /// What the replayer builds.
        expected: Kind,
    },
    /// The machine could not be rebuilt from the recorded boot data.
    #[error("session {session}: cannot rebuild the machine from the recorded configuration and log: {reason}")]
    Build {
        /// The session.
        session: usize,
        /// Why.
        reason: String,
    },
    /// A step gave other actions than recorded.
    #[error("{0}")]
    Mismatch(Box<Mismatch>),
}

/// Replays every session of a recording of `kind`: `build` makes the
/// machine from a session's boot data, `step` feeds it one input.
pub fn replay_file<C, O, P, M>(
    bytes: &[u8],
    kind: Kind,
    mut build: impl FnMut(&Session<C, P>) -> Result<M, String>,
    mut step: impl FnMut(&mut M, Input<C, P>, &mut Vec<Action<C, O, P>>),
    observer: &mut impl Observer,
) -> Result<Vec<Replayed>, ReplayError>
where
    C: Serialize + DeserializeOwned + Clone + fmt::Debug,
    O: Serialize + fmt::Debug,
    P: Serialize + DeserializeOwned + Clone + fmt::Debug,
{
    let found = meta(bytes)?.kind;
    if found != kind {
        return Err(ReplayError::Kind {
            found,
            expected: kind,
        });
    }
    let sessions = read::<C, P>(bytes)?;
    let mut done = Vec::new();
    for (i, session) in sessions.iter().enumerate() {
        let mut machine =
            build(session).map_err(|reason| ReplayError::Build { session: i, reason })?;
        let actions = verify(
            i,
            &session.steps,
            |input, out| step(&mut machine, input, out),
            observer,
        )
        .map_err(ReplayError::Mismatch)?;
        done.push(Replayed {
            offset: session.offset,
            pid: session.meta.pid,
            unix_ms: session.meta.unix_ms,
            steps: session.steps.len(),
            actions,
            torn: session.torn.clone(),
        });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::{Ballot, Command, NodeId, Proposer};

    fn config() -> Config {
        Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]).with_seed(9)
    }

    fn inputs() -> Vec<Input<String>> {
        let mut v: Vec<Input<String>> = (0..40).map(|_| Input::Tick).collect();
        v.push(Input::Propose(Command {
            client: 7,
            seq: 1,
            op: "x".into(),
        }));
        v
    }

    fn record(path: &Path, seed: u64, inputs: &[Input<String>]) -> u64 {
        let mut c = config();
        c.seed = seed;
        let records = vec![Record::Campaign(Ballot::new(1, NodeId(1)))];
        let boot = BootRef::<String, ()> {
            config: &c,
            snapshot: None,
            records: &records,
            client: None,
        };
        let mut rec = Recorder::start(path, &Meta::now(Kind::AbcastProposer, 1), &boot).unwrap();
        let mut p = Proposer::<String>::recover(&c, records.clone()).unwrap();
        let mut out: Vec<Action<String>> = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            rec.input(input);
            out.clear();
            p.step_into(input.clone(), &mut out);
            rec.actions(&out);
            if i % 7 == 0 {
                rec.flush().unwrap();
            }
        }
        rec.flush().unwrap();
        rec.steps()
    }

    fn replay(session: &Session<String, ()>) -> Result<u64, Box<Mismatch>> {
        let mut p = Proposer::<String>::recover(&session.boot.config, session.boot.records.clone())
            .unwrap();
        verify::<String, (), ()>(0, &session.steps, |i, out| p.step_into(i, out), &mut Quiet)
    }

    #[test]
    fn a_recording_replays_to_the_same_actions_across_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.rec");
        assert_eq!(record(&path, 9, &inputs()), 41);
        assert_eq!(record(&path, 10, &inputs()), 41);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(meta(&bytes).unwrap().kind, Kind::AbcastProposer);
        let sessions = read::<String, ()>(&bytes).unwrap();
        assert_eq!(sessions.len(), 2);
        for s in &sessions {
            assert_eq!(s.steps.len(), 41);
            assert!(s.torn.is_none());
            assert!(replay(s).unwrap() > 0, "the proposer campaigned");
        }
        assert_eq!(sessions[1].boot.config.seed, 10);
    }

    #[test]
    fn a_different_machine_is_caught_at_the_first_step_that_differs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.rec");
        record(&path, 9, &inputs());
        let bytes = std::fs::read(&path).unwrap();
        let mut sessions = read::<String, ()>(&bytes).unwrap();
        // Another seed campaigns at another tick.
        sessions[0].boot.config.seed = 12345;
        let m = replay(&sessions[0]).unwrap_err();
        assert!(m.index < 40, "{m}");
        assert!(m.to_string().contains("session 0 step"), "{m}");
    }

    #[test]
    fn a_torn_tail_keeps_the_steps_before_it_and_the_next_session_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.rec");
        record(&path, 9, &inputs());
        // Killed mid-write: cut the last chunk short.
        let len = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        record(&path, 9, &inputs());
        let bytes = std::fs::read(&path).unwrap();
        let sessions = read::<String, ()>(&bytes).unwrap();
        assert_eq!(sessions.len(), 2);
        assert!(sessions[0].torn.is_some());
        assert!(sessions[0].steps.len() < 41);
        assert!(sessions[1].torn.is_none());
        assert_eq!(sessions[1].steps.len(), 41);
        for s in &sessions {
            replay(s).unwrap();
        }
    }

    #[test]
    fn a_recording_of_another_format_version_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.rec");
        record(&path, 9, &inputs());
        let current = std::fs::read(&path).unwrap();
        // The same bytes under the version 1 marker: what a build before
        // check-quorum wrote (its inputs decode differently).
        let mut old = current.clone();
        old[..MARKER.len()].copy_from_slice(b"\xffPAXOS-RECORD-1\n");
        let version = |e: ReadError| match e {
            ReadError::Version { offset, found } => (offset, found),
            other => panic!("{other}"),
        };
        assert_eq!(version(meta(&old).unwrap_err()), (0, 1));
        let err = read::<String, ()>(&old).unwrap_err();
        assert!(err.to_string().contains("format 1"), "{err}");
        assert_eq!(version(err), (0, 1));
        // A file of this version followed by a session of another one.
        let mut mixed = current.clone();
        mixed.extend_from_slice(&old);
        assert_eq!(
            version(read::<String, ()>(&mixed).unwrap_err()),
            (current.len() as u64, 1)
        );
        // A recorder does not append to a file of another version.
        let old_path = dir.path().join("old.rec");
        std::fs::write(&old_path, &old).unwrap();
        let c = config();
        let boot = BootRef::<String, ()> {
            config: &c,
            snapshot: None,
            records: &[],
            client: None,
        };
        let err =
            Recorder::start(&old_path, &Meta::now(Kind::AbcastProposer, 1), &boot).unwrap_err();
        assert!(err.to_string().contains("format 1"), "{err}");
        assert_eq!(std::fs::read(&old_path).unwrap(), old, "left untouched");
    }

    #[test]
    fn other_files_are_refused_without_a_panic() {
        assert!(matches!(
            read::<String, ()>(b"hello"),
            Err(ReadError::NotARecording)
        ));
        let mut bytes = MARKER.to_vec();
        bytes.extend_from_slice(&[0xff; 40]);
        assert!(read::<String, ()>(&bytes).is_err());
        assert!(meta(&bytes).is_err());
    }
}
