#!/bin/sh
# Exercise servers.py against fake servers (Python asyncio, following
# bench/peers/servers.md: `BIN PORT WORKERS [plain|full]`, "listening on" line,
# keep-alive + pipelining, echo) and a fake echo client (same CLI and output
# line as the real ones), under the real binary names in temp dirs.  One binary
# is absent (peer_tokio_echo, peer_hyper_http: skipped with a note) and one
# dies at start (peer_tokio_http: reported as not started).  Checks that the
# tables are produced, servers.json parses and sweep.svg is well-formed XML.
# Needs wrk.  Usage: bench/compare/servers_selftest.sh [OUT_DIR]   (~1 min)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$(mktemp -d /tmp/servers-selftest.XXXXXX)}
tmp=$(mktemp -d /tmp/servers-fakes.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/peers" "$tmp/spindle"

cat >"$tmp/fake.py" <<'EOF'
#!/usr/bin/env python3
"""Fake server / echo client for servers_selftest.sh; role from the program name."""
import asyncio, os, signal, socket, sys, time
from email.utils import formatdate

PLAIN = (b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\n"
         b"Hello, World!")
prog = os.path.basename(sys.argv[0])
if prog in os.environ.get("FAKE_CRASH", "").split(","):
    sys.exit(3)


def full_reply():
    return (b"HTTP/1.1 200 OK\r\nDate: " + formatdate(usegmt=True).encode()
            + b"\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")


async def http(reader, writer, full):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    try:
        while True:
            data = await reader.read(16384)
            if not data:
                break
            buf += data
            out, close = [], False
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head, rest = buf[:end].lower(), buf[end + 4:]
                n = 0
                if full:
                    for line in head.split(b"\r\n")[1:]:
                        if line.startswith(b"content-length:"):
                            n = int(line.split(b":", 1)[1])
                        if line.startswith(b"connection:") and b"close" in line:
                            close = True
                if len(rest) < n:
                    break
                buf = rest[n:]
                out.append(full_reply() if full else PLAIN)
                if close:
                    break
            if out:
                writer.write(b"".join(out))
                await writer.drain()
            if close:
                break
    except (ConnectionError, OSError):
        pass
    writer.close()


async def echo(reader, writer):
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = await reader.read(16384)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    writer.close()


async def serve(port, handler):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    srv = await asyncio.start_server(handler, "127.0.0.1", port, reuse_address=True,
                                     backlog=4096)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await stop
    srv.close()


async def client(host, port, conns, seconds, size):
    msg = b"x" * size
    lat, errors, conn = [], 0, []
    for _ in range(conns):
        conn.append(await asyncio.open_connection(host, port))
    deadline = time.monotonic() + seconds

    async def one(r, w):
        nonlocal errors
        try:
            while time.monotonic() < deadline:
                t = time.perf_counter()
                w.write(msg)
                await r.readexactly(size)
                lat.append((time.perf_counter() - t) * 1e6)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            errors += 1
        w.close()
    t0 = time.monotonic()
    await asyncio.gather(*(one(r, w) for r, w in conn))
    el = time.monotonic() - t0
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0.0  # noqa: E731
    print(f"msgs={len(lat)} seconds={el:.3f} msgs_per_s={len(lat) / el:.1f} p50_us={q(.5):.1f} "
          f"p90_us={q(.9):.1f} p99_us={q(.99):.1f} p999_us={q(.999):.1f} "
          f"max_us={lat[-1] if lat else 0:.1f} errors={errors}", flush=True)
    return 0 if lat and not errors else 1


if "echo_client" in prog:
    h, p, c, s, n = sys.argv[1:6]
    sys.exit(asyncio.run(client(h, int(p), int(c), float(s), int(n))))
port = int(sys.argv[1])
if "echo" in prog:
    asyncio.run(serve(port, echo))
else:
    full = "go" in prog or "hyper" in prog or (len(sys.argv) > 3 and sys.argv[3] == "full")
    asyncio.run(serve(port, lambda r, w: http(r, w, full)))
EOF
chmod +x "$tmp/fake.py"
for n in spindle_http_server spindle_echo_server spindle_echo_client; do
    ln -s "$tmp/fake.py" "$tmp/spindle/$n"
done
for n in peer_c_http peer_tokio_http peer_go_http peer_c_echo peer_go_echo peer_c_echo_client; do
    ln -s "$tmp/fake.py" "$tmp/peers/$n"
done
# absent: peer_tokio_echo, peer_hyper_http

export FAKE_CRASH=peer_tokio_http
rc=0
python3 "$here/servers.py" --peers-dir "$tmp/peers" --spindle-dir "$tmp/spindle" \
    --out-dir "$out" --duration 1 --rounds 1 --connections 20 --sweep-connections 20,60 \
    >"$out.stdout" || rc=$?
cat "$out.stdout"
fail() { echo "selftest FAILED: $*" >&2; exit 1; }
[ "$rc" -eq 0 ] || fail "runner exit $rc"
python3 -c 'import xml.etree.ElementTree as E,sys; r=E.parse(sys.argv[1]).getroot(); assert r.tag.endswith("svg") and r.findall(".//{http://www.w3.org/2000/svg}polyline"), "no polyline"' "$out/sweep.svg" \
    || fail "sweep.svg is not well-formed or has no polyline"
python3 - "$out/servers.json" <<'EOF' || fail "servers.json content"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]
assert set(s) == {"http-plain", "http-full", "echo"}, s.keys()
assert s["http-plain"]["pinned c=20"]["spindle"]["state"] == "ok"
assert s["http-plain"]["pinned c=20"]["tokio"]["state"] == "nostart"
assert "c [spindle client]" in s["echo"]["pinned c=20"]
assert "c [spindle client]" not in s["echo"]["free c=20"]
assert s["echo"]["free c=20"]["go"]["state"] == "ok"
assert any("peer_tokio_echo" in n for n in d["notes"]) and any("peer_hyper_http" in n for n in d["notes"])
assert len(d["sweep"]) == 2 * 4, len(d["sweep"])
ok = [r for r in d["runs"] if r["status"] == "ok"]
assert ok and all(r["check"] == "ok" and r["rps"] > 0 and r["cpu_user_us_per_req"] is not None
                  and r["rss_hwm_kib"] for r in ok)
EOF
for w in "### HTTP plain work" "### HTTP full work" "### Echo" "go (full work)" \
         "skipped, no binary" "peer_tokio_echo" "total run time"; do
    grep -q -- "$w" "$out.stdout" || fail "stdout lacks '$w'"
done
grep -q "### HTTP plain work" "$out/servers.md" || fail "servers.md lacks the tables"
echo "selftest: ok, outputs in $out"
