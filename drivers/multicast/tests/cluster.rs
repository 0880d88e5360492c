//! End-to-end tests of issue 6: three acceptors, two proposers, two learners and
//! two clients as processes on a namespace LAN, with loss, crashes, a late
//! learner and garbage. Each checks that every learner printed the same lines,
//! that these are exactly the values the clients read, each once.
//!
//! They must run as root (they create network namespaces); otherwise they fail.

mod common;

use common::{exclusive, require_root, wait_until, Lan, Proc, WorkDir};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

const ABCAST: &str = env!("CARGO_BIN_EXE_abcast");
const NOISE: &str = env!("CARGO_BIN_EXE_abcast-noise");
const ACCEPTORS: u32 = 3;
const PROPOSERS: u32 = 2;
const LEARNERS: u32 = 2;
const CLIENTS: u32 = 2;
/// Bound on any one wait; a run that needs longer has failed.
const DEADLINE: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// SIGKILL the leading proposer a third of the way through.
    KillLeader,
    /// SIGKILL acceptor 1 a third of the way; restart it from its log at two
    /// thirds and SIGKILL acceptor 3, so that the end needs the restarted one.
    RestartAcceptor,
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    tag: &'static str,
    loss: f64,
    values_per_client: usize,
    batch_bytes: usize,
    fault: Fault,
    late_learner: bool,
    noise: bool,
    /// `abcast-noise` modes, when `noise`.
    noise_modes: &'static str,
    /// Give every process a key (a `key` line in paxos.conf).
    key: bool,
}

impl Scenario {
    fn new(tag: &'static str) -> Scenario {
        Scenario {
            tag,
            loss: 0.0,
            values_per_client: 2_000,
            batch_bytes: 120,
            fault: Fault::None,
            late_learner: false,
            noise: false,
            noise_modes: "garbage",
            key: false,
        }
    }
}

/// Fields drop in order: processes die before their namespaces go.
struct Cluster {
    acceptors: Vec<Proc>,
    proposers: Vec<Proc>,
    learners: Vec<Proc>,
    clients: Vec<Proc>,
    hosts: BTreeMap<String, String>,
    dir: WorkDir,
    _lan: Lan,
}

impl Cluster {
    fn new(s: &Scenario) -> Cluster {
        let dir = WorkDir::new(s.tag);
        let mut lan = Lan::new(s.tag);
        let mut hosts = BTreeMap::new();
        let names = (1..=ACCEPTORS)
            .map(|i| format!("acceptor {i}"))
            .chain((1..=PROPOSERS).map(|i| format!("proposer {i}")))
            .chain((1..=LEARNERS).map(|i| format!("learner {i}")))
            .chain((1..=CLIENTS).map(|i| format!("client {i}")))
            .chain(["noise".to_string()]);
        for name in names {
            let short = name.replace(' ', "");
            let ns = lan.host(&short, if name == "noise" { 0.0 } else { s.loss });
            hosts.insert(name, ns);
        }
        Cluster {
            acceptors: Vec::new(),
            proposers: Vec::new(),
            learners: Vec::new(),
            clients: Vec::new(),
            hosts,
            dir,
            _lan: lan,
        }
    }

    fn spawn(&self, role: &str, id: u32, extra: &[&str], stdin: Option<PathBuf>) -> Proc {
        let name = format!("{role} {id}");
        let ids = id.to_string();
        let mut args = vec!["-v", role, ids.as_str()];
        args.extend_from_slice(extra);
        Proc::spawn(
            &self.hosts[&name],
            &self.dir.path,
            &name,
            ABCAST,
            &args,
            stdin.as_deref(),
        )
    }

    fn input_file(&self, client: u32) -> PathBuf {
        self.dir.path.join(format!("prop{client}"))
    }

    fn learner_lines(&self, i: usize) -> usize {
        self.learners.get(i).map_or(0, |l| l.output_lines().len())
    }

    /// True if proposer `i`'s log last said it became leader.
    fn leads(&self, i: usize) -> bool {
        let log = self.proposers[i].log();
        let last = log
            .lines()
            .rev()
            .find(|l| l.contains("proposer state changed"));
        last.is_some_and(|l| l.contains("state=Leader"))
    }
}

/// Every learner printed the same lines in the same order.
fn check_learners_agree(outputs: &[Vec<String>]) {
    for (i, out) in outputs.iter().enumerate().skip(1) {
        if out != &outputs[0] {
            let first_diff = out.iter().zip(&outputs[0]).position(|(a, b)| a != b);
            panic!(
                "learner {} differs from learner 1: {} vs {} lines, first difference at line {:?}",
                i + 1,
                out.len(),
                outputs[0].len(),
                first_diff.map(|d| d + 1)
            );
        }
    }
}

/// The output holds every submitted value exactly once and nothing else.
fn check_each_value_exactly_once(output: &[String], submitted: &[String]) {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for v in submitted {
        *counts.entry(v).or_default() += 1;
    }
    for v in output {
        *counts.entry(v).or_default() -= 1;
    }
    let missing: Vec<_> = counts
        .iter()
        .filter(|(_, c)| **c > 0)
        .map(|(v, _)| *v)
        .take(5)
        .collect();
    let extra: Vec<_> = counts
        .iter()
        .filter(|(_, c)| **c < 0)
        .map(|(v, _)| *v)
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} values submitted, {} delivered; missing e.g. {missing:?}; duplicated or never submitted e.g. {extra:?}",
        submitted.len(),
        output.len()
    );
}

/// Each client's values in the order it read them.
fn check_client_order_kept(output: &[String]) {
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    for v in output {
        let (client, seq) = v.split_once('-').expect("values are <client>-<n>");
        if let Some(prev) = last.insert(client, seq) {
            assert!(prev < seq, "client {client}: {prev} delivered before {seq}");
        }
    }
}

fn run(s: Scenario) {
    require_root();
    let _machine = exclusive();
    let mut c = Cluster::new(&s);
    if s.key {
        let out = std::process::Command::new(ABCAST)
            .args(["keygen", "abcast.key"])
            .current_dir(&c.dir.path)
            .output()
            .unwrap();
        assert!(out.status.success(), "keygen: {out:?}");
        let conf = c.dir.path.join("paxos.conf");
        let text = std::fs::read_to_string(&conf).unwrap();
        std::fs::write(&conf, format!("{text}key abcast.key\n")).unwrap();
    }
    let mut submitted = Vec::new();
    for client in 1..=CLIENTS {
        let values: Vec<String> = (0..s.values_per_client)
            .map(|i| format!("c{client}-{i:07}"))
            .collect();
        std::fs::write(c.input_file(client), values.join("\n") + "\n").unwrap();
        submitted.extend(values);
    }
    let total = submitted.len();

    for id in 1..=ACCEPTORS {
        let a = c.spawn("acceptor", id, &[], None);
        c.acceptors.push(a);
    }
    let first_learners = if s.late_learner { 1 } else { LEARNERS };
    for id in 1..=first_learners {
        let l = c.spawn("learner", id, &[], None);
        c.learners.push(l);
    }
    for id in 1..=PROPOSERS {
        let p = c.spawn("proposer", id, &[], None);
        c.proposers.push(p);
    }
    let mut noise = s.noise.then(|| {
        Proc::spawn(
            &c.hosts["noise"],
            &c.dir.path,
            "noise",
            NOISE,
            &["paxos.conf", "600", s.noise_modes],
            None,
        )
    });
    let batch = s.batch_bytes.to_string();
    for id in 1..=CLIENTS {
        let p = c.spawn(
            "client",
            id,
            &["--batch-bytes", &batch],
            Some(c.input_file(id)),
        );
        c.clients.push(p);
    }

    match s.fault {
        Fault::None => {}
        Fault::KillLeader => {
            assert!(
                wait_until(DEADLINE, || c.learner_lines(0) >= total / 3),
                "no progress before the crash"
            );
            let leader = (0..c.proposers.len())
                .find(|&i| c.leads(i))
                .expect("a proposer leads while values are delivered");
            c.proposers[leader].crash();
            let at_crash = c.learner_lines(0);
            assert!(
                at_crash < total,
                "the leader died after the run, not during it"
            );
            assert!(
                wait_until(DEADLINE, || c.learner_lines(0) >= at_crash + total / 4
                    || c.learner_lines(0) == total),
                "no progress after the leader died"
            );
            let other = 1 - leader;
            assert!(c.leads(other), "the other proposer took over");
        }
        Fault::RestartAcceptor => {
            assert!(
                wait_until(DEADLINE, || c.learner_lines(0) >= total / 3),
                "no progress before the crash"
            );
            c.acceptors[0].crash();
            assert!(
                c.learner_lines(0) < total,
                "the acceptor died after the run, not during it"
            );
            assert!(
                wait_until(DEADLINE, || c.learner_lines(0) >= 2 * total / 3),
                "no progress with one acceptor down"
            );
            c.acceptors[0] = c.spawn("acceptor", 1, &[], None);
            // Let it rejoin, then take another one away: the rest needs it.
            std::thread::sleep(Duration::from_millis(200));
            c.acceptors[2].crash();
        }
    }

    for client in &mut c.clients {
        let code = client.wait_exit(DEADLINE).unwrap_or_else(|e| {
            panic!(
                "{e}; learner 1 has {} of {total} lines",
                c.learners[0].output_lines().len()
            )
        });
        assert_eq!(
            code,
            Some(0),
            "{} exit status; its log:\n{}",
            client.name,
            client.log()
        );
    }
    if s.late_learner {
        let l = c.spawn("learner", LEARNERS, &[], None);
        c.learners.push(l);
    }
    for i in 0..c.learners.len() {
        let done = wait_until(DEADLINE, || c.learner_lines(i) >= total);
        assert!(
            done,
            "learner {} printed {} of {total} values",
            i + 1,
            c.learner_lines(i)
        );
    }
    if let Some(n) = &mut noise {
        n.stop();
    }
    for p in c
        .acceptors
        .iter_mut()
        .chain(&mut c.proposers)
        .chain(&mut c.learners)
    {
        if p.running() {
            assert_eq!(
                p.stop(),
                Some(0),
                "{} did not exit cleanly:\n{}",
                p.name,
                p.log()
            );
        }
    }
    if s.loss > 0.0 {
        for (name, ns) in &c.hosts {
            if name != "noise" {
                assert!(
                    Lan::dropped(ns) > 0,
                    "the loss rule of {name} dropped nothing"
                );
            }
        }
    }
    let outputs: Vec<Vec<String>> = c.learners.iter().map(Proc::output_lines).collect();
    check_learners_agree(&outputs);
    check_each_value_exactly_once(&outputs[0], &submitted);
    check_client_order_kept(&outputs[0]);
    for p in c
        .acceptors
        .iter()
        .chain(&c.proposers)
        .chain(&c.learners)
        .chain(&c.clients)
    {
        assert_eq!(
            p.counter("oversize").unwrap_or(0),
            0,
            "{} refused a message too large to send",
            p.name
        );
    }
    let everyone = || {
        c.acceptors
            .iter()
            .chain(&c.proposers)
            .chain(&c.learners)
            .chain(&c.clients)
    };
    if s.noise {
        for p in everyone() {
            let refused = p.counter("malformed").unwrap_or(0)
                + p.counter("foreign").unwrap_or(0)
                + p.counter("unauthenticated").unwrap_or(0);
            assert!(
                refused > 0,
                "{} refused no garbage: did the noise reach it?\n{}",
                p.name,
                p.log()
            );
        }
    }
    if s.key {
        // Every process that printed its counters (a killed one did not)
        // accepted signed datagrams.
        for p in everyone() {
            if let Some(received) = p.counter("received") {
                assert!(received > 0, "{} accepted nothing: {}", p.name, p.log());
            }
        }
    }
    if s.key && s.noise {
        for p in everyone() {
            // One counter per kind: forged and flipped datagrams both fail
            // the MAC (no one without the key can tell them apart).
            for counter in ["bad_mac", "replayed", "unauthenticated"] {
                assert!(
                    p.counter(counter).unwrap_or(0) > 0,
                    "{} counted no {counter} datagrams:\n{}",
                    p.name,
                    p.log()
                );
            }
        }
    }
}

#[test]
fn every_learner_delivers_every_value_once_without_loss() {
    run(Scenario {
        values_per_client: 5_000,
        ..Scenario::new("loss0")
    });
}

#[test]
fn every_learner_delivers_every_value_once_at_20_percent_loss() {
    run(Scenario {
        loss: 0.2,
        ..Scenario::new("loss20")
    });
}

#[test]
fn every_learner_delivers_every_value_once_at_30_percent_loss() {
    run(Scenario {
        loss: 0.3,
        ..Scenario::new("loss30")
    });
}

#[test]
fn standby_proposer_takes_over_when_the_leader_is_killed() {
    run(Scenario {
        fault: Fault::KillLeader,
        values_per_client: 4_000,
        ..Scenario::new("killleader")
    });
}

#[test]
fn acceptor_restarted_from_its_log_keeps_its_votes() {
    run(Scenario {
        fault: Fault::RestartAcceptor,
        values_per_client: 4_000,
        ..Scenario::new("restartacc")
    });
}

#[test]
fn learner_started_after_all_values_were_sent_catches_up() {
    run(Scenario {
        late_learner: true,
        ..Scenario::new("latelearner")
    });
}

#[test]
fn random_and_truncated_datagrams_crash_no_role() {
    run(Scenario {
        noise: true,
        loss: 0.1,
        ..Scenario::new("noise")
    });
}

#[test]
fn forged_flipped_and_replayed_datagrams_are_dropped_and_counted() {
    run(Scenario {
        key: true,
        noise: true,
        noise_modes: "garbage,forge,flip,replay",
        loss: 0.1,
        ..Scenario::new("authnoise")
    });
}

#[test]
fn acceptor_restarted_with_a_key_is_heard_again() {
    // Its counter must start above everything it signed before the crash,
    // or every receiver would take its new datagrams for replays.
    run(Scenario {
        key: true,
        fault: Fault::RestartAcceptor,
        values_per_client: 4_000,
        ..Scenario::new("authrestart")
    });
}

#[test]
fn standby_proposer_takes_over_with_full_commands_in_flight() {
    // Full-size commands make the new leader's promises as large as they
    // get; they must still fit in a datagram.
    run(Scenario {
        fault: Fault::KillLeader,
        values_per_client: 40_000,
        batch_bytes: paxos_multicast::roles::COMMAND_BYTES_MAX,
        ..Scenario::new("killfull")
    });
}
