//! peer_hyper_http PORT WORKERS -- hyper 0.14 server, HTTP/1.1 "full" work
//! as hyper does it by default (bench/peers/servers.md): make_service_fn /
//! service_fn answering every request with "Hello, World!" and
//! Content-Type: text/plain; hyper adds Content-Length and its cached Date,
//! parses headers, reads bodies, honours `Connection: close`, and answers
//! pipelined requests in order. Only tcp_nodelay(true) is set on top of the
//! defaults.
//!
//! The listener is hyper's usual `Server::bind` except for one thing: it is
//! built by common::listen (SO_REUSEADDR, backlog 4096) and handed over with
//! `Server::from_tcp`, because `Server::bind` goes through
//! std::net::TcpListener::bind, whose listen backlog is 128 (checked with
//! ss for Debian 12's rustc 1.63 and rustc 1.95), not the SOMAXCONN (4096)
//! the spec asks for. Everything after accept is hyper's.

#[path = "../common.rs"]
mod common;

use std::convert::Infallible;
use std::io;

use hyper::header::CONTENT_TYPE;
use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Request, Response, Server};

fn main() {
    let (port, workers) = common::args();
    common::run(workers, serve(port));
}

async fn hello(_req: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::builder()
        .header(CONTENT_TYPE, "text/plain")
        .body(Body::from("Hello, World!"))
        .expect("static response"))
}

async fn serve(port: u16) -> io::Result<()> {
    let listener = common::listen(port)?.into_std()?;
    let make_svc = make_service_fn(|_conn| async { Ok::<_, Infallible>(service_fn(hello)) });
    let server = Server::from_tcp(listener)
        .map_err(other)?
        .tcp_nodelay(true)
        .serve(make_svc);
    common::announce(port);
    server.await.map_err(other)
}

fn other(e: hyper::Error) -> io::Error {
    io::Error::new(io::ErrorKind::Other, e)
}
