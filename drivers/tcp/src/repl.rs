//! The chat client's read-eval-print loop: the old verbs (`connect`, `disconnect`,
//! `get`, `put`, `help`, each with a one-letter form) and the old
//! `[RESPONSE]: … / [ERROR]: …` lines, plus acknowledgements for puts.

use crate::client::{CallError, Session};
use std::net::{Ipv4Addr, SocketAddr};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// The usage block `help` prints.
pub const USAGE: &str = "\
commands:
  connect, c <PORT|HOST:PORT>  connect to the server at 127.0.0.1:PORT (or HOST:PORT; HOST may be a name)
  disconnect, d                drop the connection (and forget the servers)
  get, g                       print the whole chat log
  put, p <MESSAGE>             append MESSAGE (the rest of the line) and wait for its acknowledgement
  transfer, t <ID>             ask the leader to hand the lead to server ID (before restarting the leader)
  add <ID> <HOST:PORT>         add server ID, whose peer address is HOST:PORT, to the members
  remove <ID>                  remove server ID from the members (then stop it)
  help, h                      print this list";

/// One parsed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    /// `connect` with a port, or a full address.
    Connect(Target),
    /// `disconnect`.
    Disconnect,
    /// `get`.
    Get,
    /// `put` and its message.
    Put(String),
    /// `transfer` and the server to lead next.
    Transfer(u32),
    /// `add`, the server and its peer address.
    Add(u32, String),
    /// `remove` and the server.
    Remove(u32),
    /// `help`.
    Help,
    /// Nothing on the line.
    Empty,
}

/// What `connect` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A port on 127.0.0.1 (kept as typed, to report invalid ones).
    Port(u64),
    /// A full address.
    Addr(SocketAddr),
    /// `HOST:PORT` with a host name, resolved when connecting.
    Host(String),
}

/// Parses one line as the old client did: trim, split at the first space
/// into a case-sensitive verb and the rest.
pub fn parse(line: &str) -> Option<Verb> {
    let line = line.trim();
    if line.is_empty() {
        return Some(Verb::Empty);
    }
    let (verb, rest) = match line.split_once(' ') {
        Some((v, r)) => (v, r),
        None => (line, ""),
    };
    match verb {
        "connect" | "c" => {
            let arg = rest.trim();
            if let Ok(port) = arg.parse::<u64>() {
                Some(Verb::Connect(Target::Port(port)))
            } else if let Ok(addr) = arg.parse() {
                Some(Verb::Connect(Target::Addr(addr)))
            } else {
                // host:port with a name; resolved when connecting.
                let (host, port) = arg.rsplit_once(':')?;
                (!host.is_empty()
                    && !host.contains(char::is_whitespace)
                    && port.parse::<u16>().is_ok())
                .then(|| Verb::Connect(Target::Host(arg.to_string())))
            }
        }
        "disconnect" | "d" => Some(Verb::Disconnect),
        "get" | "g" => Some(Verb::Get),
        "put" | "p" if !rest.is_empty() => Some(Verb::Put(rest.to_string())),
        "transfer" | "t" => rest.trim().parse().ok().map(Verb::Transfer),
        "add" => {
            let (id, addr) = rest.trim().split_once(' ')?;
            let addr = addr.trim();
            (!addr.is_empty() && !addr.contains(char::is_whitespace))
                .then_some(())
                .and_then(|()| Some(Verb::Add(id.parse().ok()?, addr.to_string())))
        }
        "remove" => rest.trim().parse().ok().map(Verb::Remove),
        "help" | "h" => Some(Verb::Help),
        _ => None,
    }
}

/// Runs the loop until end of input. Prints `> ` before each line.
pub async fn run<R, W>(session: &mut Session, input: R, mut out: W) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut lines = input.lines();
    loop {
        out.write_all(b"> ").await?;
        out.flush().await?;
        let Some(line) = lines.next_line().await? else {
            out.write_all(b"\n").await?;
            out.flush().await?;
            return Ok(());
        };
        let text = match parse(&line) {
            None => "[ERROR]: could not parse command\n".to_string(),
            Some(verb) => execute(session, verb).await,
        };
        out.write_all(text.as_bytes()).await?;
        out.flush().await?;
    }
}

/// Performs one verb and returns what to print.
pub async fn execute(session: &mut Session, verb: Verb) -> String {
    match verb {
        Verb::Empty => String::new(),
        Verb::Help => format!("{USAGE}\n"),
        Verb::Disconnect => match session.server() {
            Some(addr) => {
                session.disconnect();
                format!("[RESPONSE]: disconnected from {addr}\n")
            }
            None => {
                session.disconnect();
                "[RESPONSE]: not connected\n".into()
            }
        },
        Verb::Connect(target) => {
            let (addr, name) = match target {
                Target::Port(p) => match u16::try_from(p) {
                    Ok(port) => (
                        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                        format!("port {p}"),
                    ),
                    Err(_) => return format!("[ERROR]: invalid port {p}\n"),
                },
                Target::Addr(a) => (a, a.to_string()),
                Target::Host(text) => {
                    let found = tokio::net::lookup_host(text.as_str()).await.map(|addrs| {
                        let addrs: Vec<SocketAddr> = addrs.collect();
                        addrs
                            .iter()
                            .find(|a| a.is_ipv4())
                            .or(addrs.first())
                            .copied()
                    });
                    match found {
                        Ok(Some(a)) => (a, text),
                        Ok(None) => return format!("[ERROR]: {text} has no address\n"),
                        Err(e) => return format!("[ERROR]: cannot resolve {text}: {e}\n"),
                    }
                }
            };
            match session.connect(addr).await {
                Ok(()) => format!("[RESPONSE]: connected to server at {name}\n"),
                Err(_) => format!("[ERROR]: failed to connect to server at {name}\n"),
            }
        }
        Verb::Put(message) => {
            if session.server().is_none() {
                return "[ERROR]: not connected to a server\n".into();
            }
            match session.put(&message).await {
                Ok((slot, index)) => format!(
                    "[RESPONSE]: successfully sent message\n[RESPONSE]: acknowledged: message #{index} committed in slot {slot}\n"
                ),
                Err(e) => format!("[ERROR]: {}\n", put_error(&e)),
            }
        }
        Verb::Transfer(to) => {
            if session.server().is_none() {
                return "[ERROR]: not connected to a server\n".into();
            }
            match session.transfer(to).await {
                Ok(to) => format!("[RESPONSE]: the leader is handing the lead to server {to}\n"),
                Err(e) => format!("[ERROR]: transfer to server {to} failed ({e})\n"),
            }
        }
        Verb::Add(id, addr) => {
            if session.server().is_none() {
                return "[ERROR]: not connected to a server\n".into();
            }
            match session.add_server(id, &addr).await {
                Ok((epoch, members)) => {
                    format!("[RESPONSE]: server {id} added: configuration {epoch} of {members:?}\n")
                }
                Err(e) => format!("[ERROR]: adding server {id} failed ({e})\n"),
            }
        }
        Verb::Remove(id) => {
            if session.server().is_none() {
                return "[ERROR]: not connected to a server\n".into();
            }
            match session.remove_server(id).await {
                Ok((epoch, members)) => format!(
                    "[RESPONSE]: server {id} removed: configuration {epoch} of {members:?}\n"
                ),
                Err(e) => format!("[ERROR]: removing server {id} failed ({e})\n"),
            }
        }
        Verb::Get => {
            if session.server().is_none() {
                return "[ERROR]: not connected to a server\n".into();
            }
            match session.get_all().await {
                Ok((_, log)) => {
                    format!("[RESPONSE]: successfully sent GET request\n[RESPONSE]: {log:?}\n")
                }
                Err(e) => format!("[ERROR]: failed to send GET request ({e})\n"),
            }
        }
    }
}

/// What to tell the user about a put that did not complete: whether it
/// may still be applied is the one thing they need to know.
pub fn put_error(e: &CallError) -> String {
    match e {
        // "outcome unknown: it may still be applied (...)", "refused (not
        // applied): ...", "no quorum: ... (not applied)": each says it.
        CallError::Unknown { .. } | CallError::Refused(_) | CallError::NoQuorum { .. } => {
            e.to_string()
        }
        CallError::Rejected(_) => format!("{e} (not applied)"),
        CallError::NotConnected | CallError::SeqFile { .. } => {
            format!("failed to send message ({e})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_parse_like_the_old_client() {
        assert_eq!(
            parse("put hello  world "),
            Some(Verb::Put("hello  world".into()))
        );
        assert_eq!(parse("p x"), Some(Verb::Put("x".into())));
        assert_eq!(parse("put"), None, "put needs a message");
        assert_eq!(parse("g anything"), Some(Verb::Get));
        assert_eq!(parse("c 10000"), Some(Verb::Connect(Target::Port(10000))));
        assert_eq!(
            parse("connect 70000"),
            Some(Verb::Connect(Target::Port(70000)))
        );
        assert_eq!(parse("connect"), None);
        assert_eq!(parse("connect abc"), None);
        assert_eq!(
            parse("c localhost:10000"),
            Some(Verb::Connect(Target::Host("localhost:10000".into())))
        );
        assert_eq!(parse("c localhost:99999"), None);
        assert_eq!(parse("GET"), None, "verbs are case-sensitive");
        assert_eq!(parse("   "), Some(Verb::Empty));
        assert_eq!(parse("d"), Some(Verb::Disconnect));
        assert_eq!(parse("h"), Some(Verb::Help));
        assert_eq!(parse("transfer 2"), Some(Verb::Transfer(2)));
        assert_eq!(parse("t 0"), Some(Verb::Transfer(0)));
        assert_eq!(parse("transfer"), None, "transfer needs a server id");
        assert_eq!(
            parse("add 3 127.0.0.1:20003"),
            Some(Verb::Add(3, "127.0.0.1:20003".into()))
        );
        assert_eq!(parse("add 3"), None, "add needs an address");
        assert_eq!(parse("add x 127.0.0.1:1"), None);
        assert_eq!(parse("remove 1"), Some(Verb::Remove(1)));
        assert_eq!(parse("remove"), None);
        assert_eq!(parse("t two"), None);
    }
}
