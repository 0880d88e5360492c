//! `chatroom-certs`: a development CA and the certificates of a cluster, laid
//! out as `chatroom-server --tls-dir` and `chatroom-client --ca` read them.

use clap::Parser;
use paxos_tcp::cli;
use paxos_tcp::tls::DevPki;
use std::path::PathBuf;
use std::process::ExitCode;

/// Makes a development CA and certificates for a chat-room cluster.
///
/// Writes DIR/ca.pem (the CA certificate), DIR/server-<id>.pem and
/// DIR/server-<id>.key for ids 0..N (each names paxos-server-<id> and
/// paxos-chatroom), and DIR/client-<name>.pem/.key for each --clients name.
/// Keys are ECDSA P-256, readable by their owner only; certificates are valid
/// for ten years. The CA's own key is never written, so issue everything a
/// cluster needs in one run (run again into a new directory to start over).
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// Directory to write to (created if missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Number of servers: certificates for ids 0..N.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    servers: u32,
    /// Client certificate names, comma-separated (optional; clients need only ca.pem).
    #[arg(long, value_delimiter = ',')]
    clients: Vec<String>,
    /// Overwrite certificates already in DIR.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(bad) = args
        .clients
        .iter()
        .find(|n| n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return cli::usage(
            "chatroom-certs",
            format!("client name {bad:?}: use letters, digits and '-'"),
        );
    }
    let ca = args.dir.join("ca.pem");
    if ca.exists() && !args.force {
        return cli::fail(
            "chatroom-certs",
            format!(
                "{} exists; certificates of a new CA would not match it (use --force to replace everything, or another --dir)",
                ca.display()
            ),
        );
    }
    let written = (|| {
        let pki = DevPki::new("paxos-chatroom development CA")?;
        pki.write_cluster(&args.dir, args.servers)?;
        for name in &args.clients {
            pki.write_client(&args.dir, name)?;
        }
        Ok::<_, paxos_tcp::tls::TlsError>(())
    })();
    if let Err(e) = written {
        return cli::fail("chatroom-certs", e);
    }
    let dir = args.dir.display();
    paxos_tcp::say!(
        "wrote {dir}/ca.pem and certificates for servers 0-{}{}",
        args.servers - 1,
        if args.clients.is_empty() {
            String::new()
        } else {
            format!(" and clients {}", args.clients.join(", "))
        }
    );
    paxos_tcp::say!(
        "  chatroom-server -i 0 -p 10000 -c {} --tls-dir {dir}",
        args.servers
    );
    paxos_tcp::say!("  chatroom-client --ca {dir}/ca.pem put hello");
    ExitCode::SUCCESS
}
