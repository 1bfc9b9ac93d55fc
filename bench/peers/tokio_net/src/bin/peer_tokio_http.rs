//! peer_tokio_http PORT WORKERS -- hand-rolled HTTP/1.1 "plain" work on
//! tokio::net, one tokio::spawn task per connection (bench/peers/servers.md).
//!
//! Per connection: a BytesMut read buffer. After each read, every complete
//! request (ending in "\r\n\r\n") gets the fixed 78-byte reply appended to an
//! output Vec, and the whole batch goes out with one write_all, so pipelined
//! requests are answered in order. A partial request stays in the buffer for
//! the next read. A "request" of more than 16 KiB without "\r\n\r\n" closes
//! the connection.

#[path = "../common.rs"]
mod common;

use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const REPLY: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!";
const READ_CHUNK: usize = 16 * 1024;
const MAX_PARTIAL: usize = 16 * 1024;

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

fn find_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n")
}

async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    // buf[..scanned] is known not to start a "\r\n\r\n".
    let mut scanned = 0;
    loop {
        buf.reserve(READ_CHUNK);
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while let Some(i) = find_end(&buf[scanned..]) {
            buf.advance(scanned + i + 4);
            scanned = 0;
            out.extend_from_slice(REPLY);
        }
        scanned = buf.len().saturating_sub(3);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if buf.len() > MAX_PARTIAL {
            return;
        }
    }
}
