//! peer_tokio_echo PORT WORKERS -- tokio::net echo, one tokio::spawn task per
//! connection: read up to 16 KiB, write_all it back, until EOF
//! (bench/peers/servers.md).

#[path = "../common.rs"]
mod common;

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BUF: usize = 16 * 1024;

fn main() {
    let (port, workers) = common::args();
    common::run(workers, accept_loop(port));
}

async fn accept_loop(port: u16) -> io::Result<()> {
    let listener = common::listen(port)?;
    common::announce(port);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream));
            }
            Err(e) => {
                // e.g. EMFILE: back off briefly instead of spinning.
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
