//! Shared start-up for the tokio_net peers (bench/peers/tokio_net): the
//! `BIN PORT WORKERS` command line, the multi-thread runtime, the listener
//! and the SIGTERM/SIGINT exit, per bench/peers/servers.md.
//! Kept to Rust 1.63 (Debian 12's rustc): no let-else, no poll_fn.
#![allow(dead_code)]

use std::future::Future;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::{TcpListener, TcpSocket};
use tokio::signal::unix::{signal, SignalKind};

/// The kernel's SOMAXCONN on the benchmark machine (the kernel clamps it).
pub const BACKLOG: u32 = 4096;

/// `BIN PORT WORKERS` -> (port, workers); prints usage and exits 2 otherwise.
pub fn args() -> (u16, usize) {
    let argv: Vec<String> = std::env::args().collect();
    let parsed = if argv.len() == 3 {
        match (argv[1].parse::<u16>(), argv[2].parse::<usize>()) {
            (Ok(p), Ok(w)) if w > 0 => Some((p, w)),
            _ => None,
        }
    } else {
        None
    };
    parsed.unwrap_or_else(|| {
        let name = argv.first().map(String::as_str).unwrap_or("peer");
        eprintln!("usage: {name} PORT WORKERS");
        std::process::exit(2);
    })
}

/// Runs `server` on a multi-thread runtime with `workers` worker threads
/// until SIGTERM or SIGINT, then exits the process with status 0 (open
/// connections are simply dropped). `server` errors exit 1.
pub fn run<F>(workers: usize, server: F) -> !
where
    F: Future<Output = io::Result<()>> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail("runtime", e));
    rt.block_on(async move {
        // Signal handlers first, so a signal right after "listening" counts.
        let mut term = signal(SignalKind::terminate()).unwrap_or_else(|e| fail("signal", e));
        let mut int = signal(SignalKind::interrupt()).unwrap_or_else(|e| fail("signal", e));
        tokio::spawn(async move {
            match server.await {
                Ok(()) => std::process::exit(0),
                Err(e) => fail("server", e),
            }
        });
        tokio::spawn(async move {
            int.recv().await;
            std::process::exit(0);
        });
        term.recv().await;
    });
    // Do not wait for connection tasks: exit promptly.
    std::process::exit(0);
}

/// 127.0.0.1:port with SO_REUSEADDR and backlog BACKLOG. Must be called
/// inside the runtime.
pub fn listen(port: u16) -> io::Result<TcpListener> {
    let sock = TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    sock.listen(BACKLOG)
}

/// The one `listening on 127.0.0.1:PORT` line, flushed.
pub fn announce(port: u16) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "listening on 127.0.0.1:{port}");
    let _ = out.flush();
}

fn fail(what: &str, e: io::Error) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1);
}
