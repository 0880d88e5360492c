//! `paxos.conf`: one multicast group per role, as `<name> <ip> <port>` lines.
//! `#` starts a comment, blank lines are allowed, and a bad line is reported by number.
//!
//! ```text
//! # name      group      port
//! clients     239.0.0.1  5000
//! proposers   239.0.0.1  6000
//! acceptors   239.0.0.1  7000
//! learners    239.0.0.1  8000
//! acceptor-count 3        # optional; --acceptors overrides it
//! key abcast.key          # optional; authenticate datagrams with this key
//!                         # file (relative to this file); --key overrides it
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

/// Acceptors when neither the file nor the command line says otherwise.
pub const DEFAULT_ACCEPTORS: u32 = 3;
/// Most acceptors a cluster may have (the core's vote masks hold 64).
pub const ACCEPTORS_MAX: u32 = paxos_core::MEMBERS_MAX as u32;

/// The groups of one deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Groups {
    /// Reserved for clients (parsed, like the old program; clients listen on `learners`).
    pub clients: Option<SocketAddrV4>,
    /// Where proposers listen: client values, promises, votes, heartbeats.
    pub proposers: SocketAddrV4,
    /// Where acceptors listen: prepares, accepts, heartbeats.
    pub acceptors: SocketAddrV4,
    /// Where learners and clients listen: votes with values, heartbeats, catch-up.
    pub learners: SocketAddrV4,
    /// The `acceptor-count` line, if any.
    pub acceptor_count: Option<u32>,
    /// The `key` line's file, if any, as written (relative paths are the
    /// caller's to resolve against the configuration file's directory).
    pub key_file: Option<std::path::PathBuf>,
}

impl Groups {
    /// The group a process of `role` listens on: its role's, and for
    /// clients the learners' (they learn what was chosen from the same votes).
    pub fn of(&self, role: paxos_core::Role) -> SocketAddrV4 {
        match role {
            paxos_core::Role::Proposer => self.proposers,
            paxos_core::Role::Acceptor => self.acceptors,
            paxos_core::Role::Learner | paxos_core::Role::Client => self.learners,
        }
    }
}

/// What is wrong with a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// One line is wrong.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A required group has no line.
    #[error("{path}: no '{name}' line (every file needs proposers, acceptors and learners)")]
    Missing {
        /// The file.
        path: String,
        /// The missing group.
        name: &'static str,
    },
}

impl Groups {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Groups, ConfError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Groups::parse(&text, &path.display().to_string())
    }

    /// Parses the text of a file; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Groups, ConfError> {
        let mut found: [Option<SocketAddrV4>; 4] = [None; 4];
        let mut acceptor_count = None;
        let mut key_file = None;
        let bad = |line: usize, message: String| ConfError::Line {
            path: path.to_string(),
            line,
            message,
        };
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let content = raw.split('#').next().unwrap_or("");
            let fields: Vec<&str> = content.split_whitespace().collect();
            match fields[..] {
                [] => {}
                ["acceptor-count", count] => {
                    let c: u32 = count
                        .parse()
                        .ok()
                        .filter(|c| (1..=ACCEPTORS_MAX).contains(c))
                        .ok_or_else(|| {
                            bad(n, format!("acceptor-count must be a number from 1 to {ACCEPTORS_MAX}, not '{count}'"))
                        })?;
                    if acceptor_count.replace(c).is_some() {
                        return Err(bad(n, "acceptor-count is given twice".into()));
                    }
                }
                ["key", file] => {
                    if key_file.replace(std::path::PathBuf::from(file)).is_some() {
                        return Err(bad(n, "key is given twice".into()));
                    }
                }
                [name, ip, port] => {
                    let slot = GROUP_NAMES.iter().position(|g| *g == name).ok_or_else(|| {
                        bad(
                            n,
                            format!("unknown name '{name}' (expected clients, proposers, acceptors, learners or acceptor-count)"),
                        )
                    })?;
                    let ip: Ipv4Addr = ip
                        .parse()
                        .map_err(|_| bad(n, format!("'{ip}' is not an IPv4 address")))?;
                    if !ip.is_multicast() {
                        return Err(bad(
                            n,
                            format!(
                                "{ip} is not a multicast address (224.0.0.0 to 239.255.255.255)"
                            ),
                        ));
                    }
                    let port: u16 =
                        port.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                            bad(n, format!("'{port}' is not a port from 1 to 65535"))
                        })?;
                    if found[slot].replace(SocketAddrV4::new(ip, port)).is_some() {
                        return Err(bad(n, format!("'{name}' is given twice")));
                    }
                }
                _ => {
                    return Err(bad(
                        n,
                        format!(
                        "expected '<name> <ip> <port>', 'acceptor-count <n>' or 'key <file>', found {} field(s)",
                        fields.len()
                    ),
                    ))
                }
            }
        }
        let need = |slot: usize| {
            found[slot].ok_or(ConfError::Missing {
                path: path.to_string(),
                name: GROUP_NAMES[slot],
            })
        };
        let groups = Groups {
            clients: found[0],
            proposers: need(1)?,
            acceptors: need(2)?,
            learners: need(3)?,
            acceptor_count,
            key_file,
        };
        let mut addrs = [
            Some(groups.proposers),
            Some(groups.acceptors),
            Some(groups.learners),
            groups.clients,
        ];
        addrs.sort();
        if let Some(w) = addrs.windows(2).find(|w| w[0].is_some() && w[0] == w[1]) {
            return Err(ConfError::Line {
                path: path.to_string(),
                line: 0,
                message: format!(
                    "two groups share {}; every role needs its own group address and port",
                    w[0].expect("some")
                ),
            });
        }
        Ok(groups)
    }
}

const GROUP_NAMES: [&str; 4] = ["clients", "proposers", "acceptors", "learners"];

#[cfg(test)]
mod tests {
    use super::*;

    const USUAL: &str = "clients 239.0.0.1 5000\nproposers 239.0.0.1 6000\nacceptors 239.0.0.1 7000\nlearners 239.0.0.1 8000\n";

    fn line_error(text: &str) -> (usize, String) {
        match Groups::parse(text, "paxos.conf") {
            Err(ConfError::Line { line, message, .. }) => (line, message),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn the_usual_four_line_file_parses() {
        let g = Groups::parse(USUAL, "paxos.conf").unwrap();
        assert_eq!(g.proposers, "239.0.0.1:6000".parse().unwrap());
        assert_eq!(g.learners, "239.0.0.1:8000".parse().unwrap());
        assert_eq!(g.clients, Some("239.0.0.1:5000".parse().unwrap()));
        assert_eq!(g.acceptor_count, None);
    }

    #[test]
    fn comments_blank_lines_and_acceptor_count_are_allowed() {
        let text = format!("# our groups\n\n   \n{USUAL}acceptor-count 5   # five of them\n");
        let g = Groups::parse(&text, "paxos.conf").unwrap();
        assert_eq!(g.acceptor_count, Some(5));
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let (line, msg) = line_error(&format!("{USUAL}learners 239.0.0.1\n"));
        assert_eq!(line, 5);
        assert!(msg.contains("found 2 field"), "{msg}");
        let (line, msg) = line_error("proposers 239.0.0.1 6000\nacceptors 239.0.0.300 7000\n");
        assert_eq!(line, 2);
        assert!(msg.contains("not an IPv4 address"), "{msg}");
        let (line, msg) = line_error("proposers 239.0.0.1 99999\n");
        assert_eq!(line, 1);
        assert!(msg.contains("port"), "{msg}");
        let (line, msg) = line_error("\nsequencers 239.0.0.1 6000\n");
        assert_eq!(line, 2);
        assert!(msg.contains("unknown name"), "{msg}");
        let (line, msg) = line_error("proposers 10.0.0.1 6000\n");
        assert_eq!(line, 1);
        assert!(msg.contains("not a multicast"), "{msg}");
        let (line, _) = line_error(&format!("{USUAL}acceptor-count 0\n"));
        assert_eq!(line, 5);
    }

    #[test]
    fn a_key_line_names_a_file_once() {
        let g = Groups::parse(&format!("{USUAL}key keys/abcast.key\n"), "x").unwrap();
        assert_eq!(g.key_file, Some("keys/abcast.key".into()));
        let (line, msg) = line_error(&format!("{USUAL}key a\nkey b\n"));
        assert_eq!((line, msg.as_str()), (6, "key is given twice"));
        assert_eq!(Groups::parse(USUAL, "x").unwrap().key_file, None);
    }

    #[test]
    fn a_missing_group_is_named() {
        let err = Groups::parse(
            "proposers 239.0.0.1 6000\nacceptors 239.0.0.1 7000\n",
            "x.conf",
        );
        assert!(matches!(
            err,
            Err(ConfError::Missing {
                name: "learners",
                ..
            })
        ));
    }

    #[test]
    fn two_roles_on_one_group_are_refused() {
        let text = "proposers 239.0.0.1 6000\nacceptors 239.0.0.1 6000\nlearners 239.0.0.1 8000\n";
        assert!(Groups::parse(text, "x").is_err());
    }
}
