#!/usr/bin/env python3
"""Starts the programs of tools/net and checks what a client sees.

  net_tools_test.py HTTP_SERVER ECHO_SERVER ECHO_CLIENT

The HTTP server, in both modes: pipelined requests answered in order, a
request split across writes, a real `wrk` run without errors; full mode:
a body read and discarded, Date/Content-Type/Content-Length, Connection:
close honoured, a bad request refused. The echo server under the echo
client: every message comes back (errors=0). Every wait is bounded.
"""
import os
import re
import socket
import subprocess
import sys
import time

PLAIN = (b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\n"
         b"Hello, World!")
assert len(PLAIN) == 78


def start(argv):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.match(r"listening on 127\.0\.0\.1:(\d+)$", line.strip())
    if not m:
        p.kill()
        sys.exit(f"FAIL: {argv[0]} printed {line!r}, not 'listening on 127.0.0.1:PORT'")
    return p, int(m.group(1))


def stop(p):
    p.terminate()
    rc = p.wait(timeout=10)
    if rc != 0:
        sys.exit(f"FAIL: {p.args[0]} exited {rc} on SIGTERM")


def talk(port, chunks, expect_bytes=None, until_close=False):
    """Sends each chunk (with a pause between), returns what came back."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    for i, c in enumerate(chunks):
        if i:
            time.sleep(0.05)
        s.sendall(c)
    got = b""
    while (until_close or len(got) < expect_bytes):
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    return got


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


def wrk(port):
    out = subprocess.run(["wrk", "-t1", "-c20", "-d1s", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"(\d+) requests in", out)
    check(m and int(m.group(1)) > 0 and "Socket errors" not in out and "Non-2xx" not in out,
          f"wrk ran without errors: {out.strip().splitlines()[-2:]}")


def test_plain(binary):
    p, port = start([binary, "0", "2", "plain"])
    req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    got = talk(port, [req * 50], expect_bytes=78 * 50)
    check(got == PLAIN * 50, "plain: 50 pipelined requests get 50 replies")
    got = talk(port, [req[:10], req[10:-1], req[-1:]], expect_bytes=78)
    check(got == PLAIN, "plain: a request split across three writes gets one reply")
    wrk(port)
    stop(p)


def test_full(binary):
    p, port = start([binary, "0", "2", "full"])
    req = b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\n\r\n"
    post = b"POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"
    last = b"GET /z HTTP/1.1\r\nconnection: Close\r\n\r\n"
    got = talk(port, [req + post[:30], post[30:] + req, last], until_close=True)
    replies = got.split(b"HTTP/1.1 200 OK\r\n")[1:]
    check(len(replies) == 4, f"full: 4 replies to 4 pipelined requests (got {len(replies)})")
    for r in replies:
        check(re.search(rb"\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n", b"\r\n" + r)
              and b"Content-Type: text/plain\r\n" in r and b"Content-Length: 13\r\n" in r
              and r.endswith(b"\r\n\r\nHello, World!"), "full: reply has Date, type, length, body")
    check(b"Connection: close" in replies[-1], "full: Connection: close is answered and honoured")
    got = talk(port, [b"NONSENSE\r\n\r\n"], until_close=True)
    check(got.startswith(b"HTTP/1.1 400 "), "full: a bad request line gets 400 and a close")
    got = talk(port, [b"GET / HTTP/1.0\r\n\r\n"], until_close=True)
    check(got.count(b"200 OK") == 1, "full: HTTP/1.0 closes after one reply")
    wrk(port)
    stop(p)


def test_echo(server, client):
    p, port = start([server, "0", "2"])
    for conns, size in ((1, 1), (20, 64), (4, 100000)):
        r = subprocess.run([client, "127.0.0.1", str(port), str(conns), "0.5", str(size), "2"],
                           capture_output=True, text=True, timeout=60)
        line = r.stdout.strip()
        m = re.match(r"msgs=(\d+) seconds=\S+ msgs_per_s=\S+ p50_us=\S+ p90_us=\S+ p99_us=\S+ "
                     r"p999_us=\S+ max_us=\S+ errors=(\d+)$", line)
        check(r.returncode == 0 and m and int(m.group(1)) > 0 and m.group(2) == "0",
              f"echo: {conns} connections x {size} B: {line}")
    stop(p)


if __name__ == "__main__":
    http, echo_server, echo_client = sys.argv[1:4]
    test_plain(http)
    test_full(http)
    test_echo(echo_server, echo_client)
    print("PASS")
