//! Bits every binary shares: logging set-up, defaults, error exits, signals.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

/// Base of the default peer ports: server `i` listens for peers on `20000 + i`.
pub const PEER_PORT_BASE: u16 = 20000;
/// Base of the client ports the demo and the client's defaults use.
pub const CLIENT_PORT_BASE: u16 = 10000;

/// `println!` that ignores a closed stdout (`| head`) instead of panicking.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Logs to stderr: warnings by default, then info, debug, trace per `-v`.
/// `RUST_LOG` overrides.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// `127.0.0.1:20000+i` for every server `i` of `count`.
pub fn default_peers(count: u32) -> Vec<SocketAddr> {
    (0..count)
        .map(|i| SocketAddr::from((Ipv4Addr::LOCALHOST, PEER_PORT_BASE.saturating_add(i as u16))))
        .collect()
}

/// Resolves `HOST:PORT` (an IP address or a host name such as `localhost`)
/// to one socket address, preferring IPv4 as the servers listen on
/// 127.0.0.1 by default. For clap's `value_parser` and the REPL.
pub fn resolve(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("`{text}` is not HOST:PORT"));
    };
    if host.is_empty() {
        return Err(format!("`{text}` has no host before the port"));
    }
    if port.parse::<u16>().is_err() {
        return Err(format!("`{port}` in `{text}` is not a port (0-65535)"));
    }
    let addrs: Vec<SocketAddr> = (host, port.parse::<u16>().unwrap_or(0))
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host `{host}`: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("host `{host}` has no address"))
}

/// `./chatroom-data/server-<id>-port-<port>`: distinct per server and per
/// cluster, so neither two servers nor two clusters share a log.
pub fn default_data_dir(id: u32, port: u16) -> PathBuf {
    PathBuf::from("chatroom-data").join(format!("server-{id}-port-{port}"))
}

/// Lowest port [`free_port`] hands out: above the default client and peer
/// ports (10000+id, 20000+id), so tests never collide with a running demo.
const PICK_PORT_MIN: u16 = 21_000;

/// A port on 127.0.0.1 that nothing listens on now, chosen *below* the
/// kernel's ephemeral range. A port from port 0 would be an ephemeral one,
/// and while its server is down (a test's crash) an outgoing connection —
/// even a peer's reconnect attempt to that very port, connecting to itself —
/// may take it and keep the restarted server from binding it.
pub fn free_port() -> std::io::Result<u16> {
    let ephemeral_min = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_min > PICK_PORT_MIN + 1000 {
        let span = u64::from(ephemeral_min - PICK_PORT_MIN);
        let mut x = crate::client::random_client_id();
        for _ in 0..200 {
            let port = PICK_PORT_MIN + (x % span) as u16;
            x = x.rotate_left(17) ^ 0x9E37_79B9_7F4A_7C15;
            if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(port);
            }
        }
    }
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Prints `<program>: error: <message>` and returns exit status 1.
pub fn fail(program: &str, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("{program}: error: {message}");
    ExitCode::FAILURE
}

/// Prints `<program>: error: <message>` for a usage mistake and returns exit
/// status 2, as clap does for the mistakes it catches itself.
pub fn usage(program: &str, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("{program}: error: {message}\n\nFor more information, try '--help'.");
    ExitCode::from(2)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
