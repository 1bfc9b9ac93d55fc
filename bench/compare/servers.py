#!/usr/bin/env python3
"""Server comparison runner: spindle's HTTP and echo servers vs. peer servers.

Every server binary follows docs in bench/peers/servers.md: ``BIN PORT WORKERS [mode]``
binds 127.0.0.1:PORT, prints ``listening on 127.0.0.1:PORT`` and runs until
SIGTERM.  Load comes from ``wrk`` (HTTP) and from an echo load client
(``CLIENT HOST PORT CONNECTIONS SECONDS SIZE [WORKERS]``, printing one
``msgs=N ... p50_us=A ... p99_us=C ... errors=K`` line).

Tables and servers (a binary that is absent is skipped with a note)
--------------------------------------------------------------------
* HTTP plain: spindle (spindle_http_server PORT W plain), c (peer_c_http),
  tokio (peer_tokio_http), go (peer_go_http -- Go net/http does the full work,
  marked in the table).
* HTTP full: spindle (spindle_http_server PORT W full), hyper (peer_hyper_http),
  go (peer_go_http).  Pinned cells only.
* echo (64-byte messages): spindle (spindle_echo_server), c (peer_c_echo),
  tokio (peer_tokio_echo), go (peer_go_echo), loaded by the C echo client
  (``--echo-client spindle`` for spindle's); plus a "client check" row in the
  pinned cells: the C echo server loaded by the *other* client, so the two
  clients can be compared against the same server.

Method
------
* Cells.  pinned = server under ``taskset -c A`` with 1 worker, load generator
  under ``taskset -c B`` with 1 thread (A, B = the first two CPUs this process
  may use); free = server with 2 workers, load generator unpinned with 2
  threads.  Connections 50 and 500 (``--connections``).
* One measurement = a fresh server process on a free port (bind port 0 and
  close), wait for its ``listening on`` line (10 s), a one-request sanity check
  of the reply, ``--warmup`` seconds of load (discarded), then ``--duration``
  seconds of measured load, then SIGTERM (SIGKILL after 3 s).
* Rounds are interleaved per cell: round 1 runs every server of the cell, then
  round 2, ...; each round starts at another server and steps by another stride
  (as in compare.py), so drift and "who ran just before" hit all alike.
  Medians over rounds, with [min–max].
* Server cost, over exactly the measured window (read just before the load
  generator starts and just after it exits): CPU time from /proc/PID/stat
  utime+stime (fields 14/15, all threads of the process, in SC_CLK_TCK ticks)
  divided by the requests (echo: messages) the load generator completed;
  peak RSS = VmHWM from /proc/PID/status at the end.
* Syscalls per request (``--syscalls``): ``perf`` counts the
  raw_syscalls:sys_enter tracepoint of the server's threads (``perf stat -p``,
  started disabled, enabled/disabled over the measured window through
  ``--control`` fifos); ``strace`` (``strace -c -f -p``) does it in an extra,
  unreported short round per server and cell, since strace slows the server a
  lot (the count per request is still right); ``auto`` (default) = perf when it
  works on this machine, else no count ("—").
* wrk runs with errors (socket errors, non-2xx) are kept in servers.json and
  marked: a cell shows the median of its clean runs (``*`` when some runs were
  dropped), or of the runs with errors, marked ``!``, when no run was clean.
* Sweep (``--sweep``, default on except with ``--quick``): HTTP plain, pinned,
  1 worker, connections 100..1000, one round of duration/2 s each, servers
  spindle c tokio go; p99 and req/s to servers.json/servers.md and sweep.svg.

Outputs in ``--out-dir``: servers.json (machine, command, config, every raw
measurement, summaries), servers.md (the tables), sweep.svg.  Markdown tables
go to stdout, progress to stderr.  Exit status 0 when the runner worked (even if
servers failed), 1 when nothing could be measured or a needed tool is missing,
130 when interrupted (partial results are written).
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from xml.sax.saxutils import escape

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

PLAIN_REPLY = (b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\n"
               b"Hello, World!")
ECHO_SIZE = 64
LISTEN_TIMEOUT = 10.0
TERM_GRACE = 3.0
TAIL = 600  # characters of stderr / load output kept for failed runs
CLK_TCK = os.sysconf("SC_CLK_TCK")
TABLES = ("http-plain", "http-full", "echo")
TABLE_TITLE = {"http-plain": "HTTP plain work", "http-full": "HTTP full work",
               "echo": f"Echo ({ECHO_SIZE}-byte messages)"}
# Syscall counts above this many per CPU-second of the server are not believable
# (a syscall costs > 50 ns); seen once from a freshly enabled tracepoint in a VM.
MAX_SYSCALLS_PER_CPU_S = 20e6
BUSY_PCT = 10   # other CPU use (% of one CPU) above which a run counts as disturbed


# --------------------------------------------------------------------------- CLI

def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Side-by-side measurement of spindle's and peers' HTTP and echo servers "
                    "(wrk / echo client load, interleaved rounds, medians with ranges).")
    p.add_argument("--peers-dir", default=os.path.join(REPO, "build", "peers"),
                   help="directory of peer_* binaries (default: build/peers)")
    p.add_argument("--spindle-dir",
                   default=os.path.join(REPO, "build", "release", "tools", "net"),
                   help="directory of spindle_* binaries (default: build/release/tools/net; "
                        "a net/ subdirectory of it is tried too)")
    p.add_argument("--out-dir", default=os.path.join(HERE, "out"),
                   help="where servers.{json,md} and sweep.svg go (default: bench/compare/out)")
    p.add_argument("--quick", action="store_true",
                   help="only HTTP plain pinned c=50 and echo pinned c=50, 1 round x 2 s, no sweep")
    p.add_argument("--duration", type=int, default=None,
                   help="measured seconds per run (integer, wrk's -d; default 10, --quick 2)")
    p.add_argument("--warmup", type=int, default=1,
                   help="discarded warm-up load before each measurement, seconds (default 1; 0 = none)")
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved rounds per cell (default 3, --quick 1)")
    p.add_argument("--only", default=None, metavar="NAMES",
                   help="comma-separated server names to run (spindle,c,tokio,go,hyper)")
    p.add_argument("--tables", default=None,
                   help="comma-separated subset of " + ",".join(TABLES))
    p.add_argument("--connections", default=None,
                   help="comma-separated connection counts of the cells (default 50,500; --quick 50)")
    p.add_argument("--sweep", dest="sweep", action="store_true", default=None,
                   help="run the connection sweep (default on, off with --quick)")
    p.add_argument("--no-sweep", dest="sweep", action="store_false")
    p.add_argument("--sweep-connections", default="100,200,300,400,500,600,700,800,900,1000",
                   help="connection counts of the sweep (default 100..1000 step 100)")
    p.add_argument("--echo-client", choices=("c", "spindle"), default="c",
                   help="echo load client for the echo table (default c; the other one "
                        "gets the client-check row)")
    p.add_argument("--syscalls", choices=("auto", "perf", "strace", "off"), default="auto",
                   help="syscalls/request: perf over the measured window, strace in an extra "
                        "unreported round, auto = perf if it works here (default), off")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                   help=f"before each measurement wait up to S seconds for the machine's other "
                        f"CPU use to drop below {BUSY_PCT}%% of a CPU (default 0: don't wait)")
    p.add_argument("--plan", action="store_true",
                   help="print the cells, servers and estimated run time, run nothing")
    p.add_argument("--strace-seconds", type=int, default=2,
                   help="load seconds of each strace round (default 2)")
    args = p.parse_args(argv)

    if args.duration is None:
        args.duration = 2 if args.quick else 10
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.sweep is None:
        args.sweep = not args.quick
    if args.duration < 1 or args.rounds < 1 or args.warmup < 0 or args.strace_seconds < 1:
        p.error("need --duration >= 1, --rounds >= 1, --warmup >= 0, --strace-seconds >= 1")
    args.only_set = None
    if args.only:
        args.only_set = {n.strip() for n in args.only.split(",") if n.strip()}
    args.table_list = list(TABLES)
    if args.tables:
        want = [t.strip() for t in args.tables.split(",") if t.strip()]
        bad = [t for t in want if t not in TABLES]
        if bad:
            p.error(f"unknown table(s) {', '.join(bad)}; known: {', '.join(TABLES)}")
        args.table_list = [t for t in TABLES if t in want]
    args.conn_list = int_list(p, "--connections", args.connections) if args.connections \
        else ([50] if args.quick else [50, 500])
    args.sweep_list = int_list(p, "--sweep-connections", args.sweep_connections)
    args.peers_dir = os.path.abspath(os.path.expanduser(args.peers_dir))
    args.spindle_dir = os.path.abspath(os.path.expanduser(args.spindle_dir))
    return args


def int_list(parser, opt, text):
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        parser.error(f"bad {opt} {text!r}")
    if not vals or min(vals) < 1:
        parser.error(f"{opt} needs positive integers")
    return vals


# ------------------------------------------------------------ servers and cells

def find_binary(dirs, name):
    for d in dirs:
        path = os.path.join(d, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def server_catalog(args, tables):
    """-> {table: [entry]} for the given tables, notes about skipped binaries.
    entry = {id, name, label, bin, extra, client (echo), note}."""
    sp_dirs = [args.spindle_dir, os.path.join(args.spindle_dir, "net")]
    peer_dirs = [args.peers_dir]

    def sp(n):
        return find_binary(sp_dirs, n), os.path.join(args.spindle_dir, n)

    def peer(n):
        return find_binary(peer_dirs, n), os.path.join(args.peers_dir, n)

    clients = {"c": peer("peer_c_echo_client"), "spindle": sp("spindle_echo_client")}
    main = args.echo_client
    other = "spindle" if main == "c" else "c"
    notes = []
    if "echo" in tables and clients[main][0] is None and clients[other][0] is not None:
        notes.append(f"echo client {clients[main][1]} absent: the echo table uses the {other} "
                     "client instead, and has no client-check row")
        main, other = other, main
        clients[other] = (None, clients[other][1])
    want = {
        "http-plain": [("spindle", sp("spindle_http_server"), ["plain"], None, ""),
                       ("c", peer("peer_c_http"), [], None, ""),
                       ("tokio", peer("peer_tokio_http"), [], None, ""),
                       ("go", peer("peer_go_http"), [], None, "full work")],
        "http-full": [("spindle", sp("spindle_http_server"), ["full"], None, ""),
                      ("hyper", peer("peer_hyper_http"), [], None, ""),
                      ("go", peer("peer_go_http"), [], None, "")],
        "echo": [("spindle", sp("spindle_echo_server"), [], main, ""),
                 ("c", peer("peer_c_echo"), [], main, ""),
                 ("tokio", peer("peer_tokio_echo"), [], main, ""),
                 ("go", peer("peer_go_echo"), [], main, ""),
                 ("c", peer("peer_c_echo"), [], other, "client check")],
    }
    catalog = {}
    for table in tables:
        entries = []
        for name, (path, expected), extra, client, note in want[table]:
            if args.only_set is not None and name not in args.only_set:
                continue
            if note == "client check" and main != args.echo_client:
                continue      # only one echo client exists: said so above
            label = name
            if note == "client check":
                label = f"c [{'C' if other == 'c' else other} client]"
            elif note:
                label = f"{name} ({note})"
            if path is None:
                notes.append(f"{TABLE_TITLE[table]}: {label} skipped, no binary {expected}")
                continue
            cpath = None
            if client:
                cpath, cexp = clients[client]
                if cpath is None:
                    notes.append(f"{TABLE_TITLE[table]}: {label} skipped, no echo client {cexp}")
                    continue
            entries.append({"id": f"{table}/{label}", "name": name, "label": label,
                            "bin": path, "extra": extra, "client": client,
                            "client_bin": cpath, "note": note,
                            "check_row": note == "client check"})
        catalog[table] = entries
    return catalog, notes


def cells_for(table, args):
    """[(mode, connections)] of a table, in run order."""
    if args.quick:
        return [] if table == "http-full" else [("pinned", args.conn_list[0])]
    modes = ["pinned"] if table == "http-full" else ["pinned", "free"]
    return [(m, c) for m in modes for c in args.conn_list]


def cell_key(mode, conns):
    return f"{mode} c={conns}"


def round_order(items, r):
    """Round r starts at item r and steps by a stride coprime with the count
    (stride varies with r), so over the rounds each item follows every other."""
    k = len(items)
    if k == 0:
        return []
    strides = [s for s in range(1, k) if math.gcd(s, k) == 1] or [1]
    stride = strides[r % len(strides)]
    return [items[(r + i * stride) % k] for i in range(k)]


# -------------------------------------------------------------- process helpers

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def proc_cpu(pid):
    """(utime, stime) in seconds of the whole process (all its threads), or None."""
    raw = read_text(f"/proc/{pid}/stat")
    if ")" not in raw:
        return None
    fields = raw[raw.rindex(")") + 2:].split()   # fields[0] is field 3 (state)
    try:
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK
    except (IndexError, ValueError):
        return None


def system_cpu():
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat.
    busy = user + nice + system; irq and softirq time (on loopback mostly our own
    traffic) is left out, so is steal (reported apart)."""
    line = read_text("/proc/stat").split("\n", 1)[0].split()
    try:
        v = [int(x) for x in line[1:9]]   # user nice system idle iowait irq softirq steal
    except ValueError:
        return None
    return (v[0] + v[1] + v[2]) / CLK_TCK, v[7] / CLK_TCK


def wait_quiet(limit):
    """Sample the machine's busy CPU in 0.5 s steps until it is below BUSY_PCT of
    one CPU or `limit` seconds pass. -> (seconds waited, last busy %)."""
    t0, pct = time.monotonic(), None
    while True:
        a = system_cpu()
        time.sleep(0.5)
        b = system_cpu()
        if not a or not b:
            return 0.0, None
        pct = 100 * (b[0] - a[0]) / 0.5
        waited = time.monotonic() - t0
        if pct < BUSY_PCT or waited >= limit:
            return round(waited, 1), round(pct, 1)


def proc_hwm_kib(pid):
    m = re.search(r"^VmHWM:\s*(\d+)\s*kB", read_text(f"/proc/{pid}/status"), re.M)
    return int(m.group(1)) if m else None


def tail(s):
    s = s.strip()
    return s[-TAIL:] if s else ""


class Server:
    """One fresh server process: started, waited for, stopped."""

    def __init__(self, argv, tmpdir):
        self.argv = argv
        self.out_path = os.path.join(tmpdir, "server.out")
        self.err_path = os.path.join(tmpdir, "server.err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, start_new_session=True)
        self.pid = self.proc.pid

    def wait_listening(self, port, timeout=LISTEN_TIMEOUT):
        """-> None when the line appeared, else a reason."""
        want = f"listening on 127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = read_text(self.out_path)
            if want in out:
                return None
            if "listening on" in out:
                line = next(ln for ln in out.splitlines() if "listening on" in ln)
                return f"unexpected line {line.strip()!r} (wanted {want!r})"
            if self.proc.poll() is not None:
                return f"exited ({describe_rc(self.proc.returncode)}) before listening"
            time.sleep(0.005)
        return f"no {want!r} line within {timeout:g} s"

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, SIGKILL after TERM_GRACE s. -> (exit code, needed kill)."""
        killed = False
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=TERM_GRACE)
            except subprocess.TimeoutExpired:
                killed = True
        if killed or self.proc.poll() is None:
            kill_group(self.pid)
            self.proc.wait()
        else:
            kill_group(self.pid)  # leftovers in its session, if any
        return self.proc.returncode, killed

    def stderr_tail(self):
        return tail(read_text(self.err_path))


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def describe_rc(rc):
    if rc is None:
        return "running"
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


def run_load(argv, seconds, tmpdir):
    """Run a load generator to completion.
    -> (rc or None on timeout, stdout, stderr, wall s, its CPU seconds user+sys)."""
    out_path, err_path = os.path.join(tmpdir, "load.out"), os.path.join(tmpdir, "load.err")
    t0 = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)
        except OSError as e:
            return None, "", f"cannot start load generator: {e}", 0.0, None
    deadline, timed_out = t0 + seconds + 30, False
    try:
        while True:   # os.wait4, not Popen.wait: we want the child's rusage
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline and not timed_out:
                timed_out = True
                kill_group(proc.pid)
            time.sleep(0.02)
    except BaseException:
        kill_group(proc.pid)
        os.wait4(proc.pid, 0)
        proc.returncode = -9
        raise
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err_text = read_text(err_path) + ("\n[load generator killed: timeout]" if timed_out else "")
    return (None if timed_out else proc.returncode), read_text(out_path), err_text, wall, \
        ru.ru_utime + ru.ru_stime


# ---------------------------------------------------------------- sanity checks

def check_http(port, plain):
    """Two pipelined GETs; -> "ok" or what is wrong."""
    req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(req * 2)
            buf, deadline = b"", time.monotonic() + 3
            while buf.count(b"Hello, World!") < 2 and time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except OSError as e:
        return f"request failed: {e}"
    if buf.count(b"Hello, World!") < 2 or not buf.startswith(b"HTTP/1.1 200"):
        return f"bad reply {buf[:120]!r}"
    if plain and buf != PLAIN_REPLY * 2:
        return f"plain reply differs from the spec's 78 bytes: {buf[:120]!r}"
    return "ok"


def check_echo(port):
    msg = bytes(range(ECHO_SIZE))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(msg)
            buf, deadline = b"", time.monotonic() + 3
            while len(buf) < len(msg) and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
    except OSError as e:
        return f"echo failed: {e}"
    return "ok" if buf == msg else f"bad echo {buf[:80]!r}"


# ------------------------------------------------------------- load generators

TIME_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def wrk_argv(port, conns, threads, seconds, cpu):
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    return pin + ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s",
                  "--latency", f"http://127.0.0.1:{port}/"]


def parse_wrk(out):
    """-> dict(rps, requests, seconds, p50_us, p75_us, p90_us, p99_us, errors{...}) or None."""
    m = re.search(r"^Requests/sec:\s*([0-9.]+)", out, re.M)
    n = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h)\b", out, re.M)
    if not m or not n:
        return None
    r = {"rps": float(m.group(1)), "requests": int(n.group(1)),
         "seconds": float(n.group(2)) * TIME_UNITS[n.group(3)] / 1e6}
    dist = out.split("Latency Distribution", 1)
    if len(dist) == 2:
        for pct, val, unit in re.findall(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([0-9.]+)(us|ms|s|m|h)\s*$",
                                         dist[1], re.M):
            r[f"p{pct}_us"] = float(val) * TIME_UNITS[unit]
    errors = {}
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if e:
        for k, v in zip(("connect", "read", "write", "timeout"), e.groups()):
            if int(v):
                errors[k] = int(v)
    x = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    if x and int(x.group(1)):
        errors["non2xx"] = int(x.group(1))
    r["errors"] = errors
    return r


ECHO_RE = re.compile(r"msgs=(\d+)\s+seconds=([0-9.]+)\s+msgs_per_s=([0-9.]+)\s+p50_us=([0-9.]+)"
                     r"\s+p90_us=([0-9.]+)\s+p99_us=([0-9.]+)\s+p999_us=([0-9.]+)"
                     r"\s+max_us=([0-9.]+)\s+errors=(\d+)")


def echo_argv(client, port, conns, threads, seconds, cpu):
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    return pin + [client, "127.0.0.1", str(port), str(conns), str(seconds), str(ECHO_SIZE),
                  str(threads)]


def parse_echo(out):
    m = None
    for line in reversed(out.splitlines()):
        m = ECHO_RE.search(line)
        if m:
            break
    if not m:
        return None
    g = m.groups()
    r = {"requests": int(g[0]), "seconds": float(g[1]), "rps": float(g[2]),
         "p50_us": float(g[3]), "p90_us": float(g[4]), "p99_us": float(g[5]),
         "p999_us": float(g[6]), "max_us": float(g[7]), "errors": {}}
    if int(g[8]):
        r["errors"]["client"] = int(g[8])
    return r


# --------------------------------------------------------------- syscall counts

class PerfCounter:
    """perf stat -p PID on raw_syscalls:sys_enter, started disabled and
    enabled/disabled through --control fifos, so it covers exactly the window."""

    def __init__(self, pid, tmpdir):
        self.dir = tempfile.mkdtemp(dir=tmpdir, prefix="perf-")
        self.ctl, self.ack = os.path.join(self.dir, "ctl"), os.path.join(self.dir, "ack")
        self.out = os.path.join(self.dir, "out")
        os.mkfifo(self.ctl)
        os.mkfifo(self.ack)
        # O_RDWR: a fifo opened read-write never blocks in open().
        self.ctl_fd = os.open(self.ctl, os.O_RDWR)
        self.ack_fd = os.open(self.ack, os.O_RDWR | os.O_NONBLOCK)
        self.proc = subprocess.Popen(
            ["perf", "stat", "-x,", "-o", self.out, "-e", "raw_syscalls:sys_enter",
             "-D", "-1", "--control", f"fifo:{self.ctl},{self.ack}", "-p", str(pid)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "err"), "wb"), start_new_session=True)
        self.error = None

    def _command(self, word, timeout=5.0):
        if self.error:
            return False
        os.write(self.ctl_fd, word.encode() + b"\n")
        deadline, buf = time.monotonic() + timeout, b""
        while b"ack" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.error = f"perf gave no ack to {word!r}" + (
                    "" if self.proc.poll() is None else f" (perf exited {self.proc.returncode}: "
                    + tail(read_text(os.path.join(self.dir, "err"))) + ")")
                return False
            r, _, _ = select.select([self.ack_fd], [], [], left)
            if r:
                try:
                    buf += os.read(self.ack_fd, 64)
                except BlockingIOError:
                    pass
        return True

    def enable(self):
        return self._command("enable")

    def disable(self):
        return self._command("disable")

    def finish(self):
        """Stop perf; -> (count or None, reason)."""
        if self.ctl_fd is None:
            return None, "finished twice"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                kill_group(self.proc.pid)
                self.proc.wait()
        for fd in (self.ctl_fd, self.ack_fd):
            os.close(fd)
        self.ctl_fd = self.ack_fd = None
        if self.error:
            return None, self.error
        return parse_perf_count(read_text(self.out))


def parse_perf_count(text):
    for line in text.splitlines():
        f = line.split(",")
        if len(f) >= 3 and f[2].startswith("raw_syscalls:sys_enter"):
            try:
                return int(float(f[0])), ""
            except ValueError:
                return None, f"perf: {f[0]}"
    return None, "perf printed no count"


def probe_perf(tmpdir):
    """Does `perf stat -e raw_syscalls:sys_enter` count here? -> (ok, detail).
    Also takes the first enabling of the tracepoint, which once gave a bogus count."""
    if not shutil.which("perf"):
        return False, "perf not installed"
    out = os.path.join(tmpdir, "perf-probe")
    try:
        p = subprocess.run(["perf", "stat", "-x,", "-o", out, "-e", "raw_syscalls:sys_enter",
                            "--", sys.executable, "-S", "-c", "import os\nfor _ in range(200): os.getppid()"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return False, f"perf failed: {e}"
    n, why = parse_perf_count(read_text(out))
    if p.returncode != 0 or n is None or n < 200:
        return False, (why or f"count {n}") + ": " + tail(p.stderr)[-200:]
    ver = subprocess.run(["perf", "--version"], capture_output=True, text=True).stdout.strip()
    return True, ver


class StraceCounter:
    """strace -c -f -p PID: total syscalls of all threads until stopped."""

    def __init__(self, pid, tmpdir):
        self.out = os.path.join(tmpdir, "strace.out")
        self.err = os.path.join(tmpdir, "strace.err")
        self.proc = subprocess.Popen(["strace", "-c", "-f", "-o", self.out, "-p", str(pid)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.err, "wb"), start_new_session=True)

    def wait_attached(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "attached" in read_text(self.err):
                time.sleep(0.3)   # -f attaches the other threads one by one
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.01)
        return False

    def finish(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill_group(self.proc.pid)
                self.proc.wait()
        for line in read_text(self.out).splitlines():
            f = line.split()
            if f and f[-1] == "total" and len(f) >= 4:
                try:
                    return int(f[3]), ""
                except ValueError:
                    break
        return None, "strace printed no total: " + tail(read_text(self.err))[-200:]


# --------------------------------------------------------------- one measurement

class Runner:
    def __init__(self, args, tmpdir, syscall_method, log):
        self.args, self.tmpdir, self.method, self.log = args, tmpdir, syscall_method, log
        cpus = sorted(os.sched_getaffinity(0))
        self.server_cpu = cpus[0]
        self.load_cpu = cpus[1] if len(cpus) > 1 else cpus[0]

    def measure(self, table, entry, mode, conns, seconds, phase, round_no, count="auto"):
        """One fresh server + warm-up + measured load. -> raw record."""
        pinned = mode == "pinned"
        workers = 1 if pinned else 2
        threads = 1 if pinned else 2
        rec = {"table": table, "server": entry["label"], "name": entry["name"],
               "cell": cell_key(mode, conns), "mode": mode, "connections": conns,
               "workers": workers, "load_threads": threads, "phase": phase, "round": round_no,
               "status": None, "reason": "", "check": None}
        method = self.method if count == "auto" else count
        if self.args.wait_quiet > 0:
            rec["waited_quiet_s"], rec["quiet_before_pct"] = wait_quiet(self.args.wait_quiet)
        for attempt in range(2):      # a second try only when the server never listened
            port = free_port()
            argv = (["taskset", "-c", str(self.server_cpu)] if pinned else []) + \
                [entry["bin"], str(port), str(workers)] + entry["extra"]
            rec.update(port=port, server_argv=argv)
            try:
                srv = Server(argv, self.tmpdir)
            except OSError as e:
                rec.update(status="error", reason=f"cannot start server: {e}")
                return rec
            why = srv.wait_listening(port)
            if why is None:
                rec.update(status=None, reason="")
                rec.pop("server_stderr", None)
                break
            srv.stop()
            rec.update(status="nostart", reason=why, server_stderr=srv.stderr_tail())
            if attempt == 0 and "exited" in why:
                continue
            return rec
        try:
            return self._measure_running(rec, srv, entry, table, port, pinned, conns,
                                         threads, seconds, method)
        finally:
            rc, killed = srv.stop()
            rec["server_exit"] = rc
            rec["server_killed"] = killed
            if rec["status"] not in ("ok", "errors") and srv.stderr_tail():
                rec["server_stderr"] = srv.stderr_tail()

    def _load_argv(self, table, entry, port, conns, threads, seconds, pinned):
        cpu = self.load_cpu if pinned else None
        if table == "echo":
            return echo_argv(entry["client_bin"], port, conns, threads, seconds, cpu)
        return wrk_argv(port, conns, threads, seconds, cpu)

    def _measure_running(self, rec, srv, entry, table, port, pinned, conns, threads,
                         seconds, method):
        rec["check"] = check_echo(port) if table == "echo" else \
            check_http(port, plain=(table == "http-plain" and entry["note"] != "full work"))
        parse = parse_echo if table == "echo" else parse_wrk
        if self.args.warmup:
            argv = self._load_argv(table, entry, port, conns, threads, self.args.warmup, pinned)
            rc, out, err, _, _ = run_load(argv, self.args.warmup, self.tmpdir)
            w = parse(out)
            rec["warmup"] = {"rc": rc, "rps": w and w["rps"], "errors": w and w["errors"]}
            if not srv.alive():
                rec.update(status="crash", reason=f"server died in warm-up "
                           f"({describe_rc(srv.proc.returncode)})")
                return rec
        counter = None
        if method == "perf":
            counter = PerfCounter(srv.pid, self.tmpdir)
            counter.enable()
        elif method == "strace":
            counter = StraceCounter(srv.pid, self.tmpdir)
            if not counter.wait_attached():
                counter.finish()
                rec.update(status="error", reason="strace did not attach")
                return rec
        argv = self._load_argv(table, entry, port, conns, threads, seconds, pinned)
        rec["load_argv"] = argv
        try:
            sys0, cpu0, w0 = system_cpu(), proc_cpu(srv.pid), time.monotonic()
            rc, out, err, wall, load_cpu = run_load(argv, seconds, self.tmpdir)
            cpu1, sys1, w1 = proc_cpu(srv.pid), system_cpu(), time.monotonic()
            if method == "perf":
                counter.disable()
            rec["rss_hwm_kib"] = proc_hwm_kib(srv.pid)
            alive = srv.alive()
        finally:
            syscalls, sys_why = (counter.finish() if counter else (None, ""))
        res = parse(out)
        rec["load_rc"] = rc
        rec["load_wall_s"] = round(wall, 3)
        if load_cpu is not None and wall > 0:
            rec["load_cpu_pct"] = round(100 * load_cpu / wall, 1)
        if res is None:
            rec.update(status="crash" if not alive else "noresult",
                       reason=("server died during the load; " if not alive else "")
                       + f"no parsable load-generator output (rc {rc})",
                       load_output=tail(out + "\n" + err))
            return rec
        rec.update({k: v for k, v in res.items()})
        if cpu0 and cpu1 and res["requests"] > 0:
            u, s = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
            rec.update(cpu_user_s=round(u, 4), cpu_sys_s=round(s, 4),
                       server_cpu_pct=round(100 * (u + s) / max(w1 - w0, 1e-6), 1),
                       cpu_user_us_per_req=u * 1e6 / res["requests"],
                       cpu_sys_us_per_req=s * 1e6 / res["requests"])
        if sys0 and sys1 and cpu0 and cpu1 and load_cpu is not None:
            # everything else that ran meanwhile (other users of a shared machine, perf, us)
            busy = (sys1[0] - sys0[0]) - (cpu1[0] + cpu1[1] - cpu0[0] - cpu0[1]) - load_cpu
            rec["background_cpu_pct"] = round(max(0.0, 100 * busy / max(w1 - w0, 1e-6)), 1)
            rec["steal_pct"] = round(100 * (sys1[1] - sys0[1]) / max(w1 - w0, 1e-6), 1)
        if counter:
            rec["syscall_method"] = method
            if syscalls is not None and res["requests"] > 0:
                cpu_s = rec.get("cpu_user_s", 0) + rec.get("cpu_sys_s", 0)
                if syscalls > MAX_SYSCALLS_PER_CPU_S * max(cpu_s, 0.01) + 1000:
                    sys_why = f"implausible count {syscalls} for {cpu_s:.2f} CPU s"
                    syscalls = None
            rec["syscalls"] = syscalls
            rec["syscalls_per_req"] = syscalls / res["requests"] \
                if syscalls is not None and res["requests"] > 0 else None
            if sys_why:
                rec["syscall_reason"] = sys_why
        if not alive:
            rec.update(status="crash", reason=f"server died during the load "
                       f"({describe_rc(srv.proc.returncode)})")
        elif res["errors"] or rc != 0:
            rec.update(status="errors", reason=fmt_errors(res["errors"]) or (
                "load generator timed out" if rc is None else f"load generator exit status {rc}"))
        elif res["requests"] == 0:
            rec.update(status="noresult", reason="no requests completed")
        else:
            rec["status"] = "ok"
        if rec["status"] != "ok":
            rec["load_output"] = tail(out + "\n" + err)
        return rec


def fmt_errors(errors):
    return ", ".join(f"{k} {v}" for k, v in errors.items())


# -------------------------------------------------------------------- summaries

METRICS = ("rps", "p50_us", "p99_us", "cpu_user_us_per_req", "cpu_sys_us_per_req",
           "syscalls_per_req", "rss_mib", "server_cpu_pct", "load_cpu_pct",
           "background_cpu_pct", "steal_pct")


def summarize_runs(rs):
    """Median/min/max of each metric over the usable runs of one (table, cell, server)."""
    clean = [r for r in rs if r["status"] == "ok"]
    dirty = [r for r in rs if r["status"] == "errors"]
    use = clean or dirty
    counts = {}
    for r in rs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    s = {"runs": len(rs), "statuses": counts, "used": len(use),
         "flag": "" if not use else ("!" if not clean else ("*" if len(clean) < len(rs) else ""))}
    if not use:
        s["state"] = next((st for st in ("crash", "nostart", "noresult", "error") if counts.get(st)),
                          "missing")
        return s
    s["state"] = "ok"
    for k in METRICS:
        vals = []
        for r in use:
            v = r.get("rss_hwm_kib") / 1024 if k == "rss_mib" and r.get("rss_hwm_kib") else r.get(k)
            if isinstance(v, (int, float)):
                vals.append(float(v))
        s[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)} \
            if vals else None
    return s


def summarize(runs, catalog, cells_by_table):
    out = {}
    for table, entries in catalog.items():
        for mode, conns in cells_by_table[table]:
            ck = cell_key(mode, conns)
            rows = {}
            for e in entries:
                if e["check_row"] and mode != "pinned":
                    continue
                rs = [r for r in runs if r["table"] == table and r["cell"] == ck
                      and r["server"] == e["label"] and r["phase"] == "measure"]
                if not rs:
                    continue
                rows[e["label"]] = summarize_runs(rs)
                sc = [r.get("syscalls_per_req") for r in runs if r["table"] == table
                      and r["cell"] == ck and r["server"] == e["label"]
                      and r["phase"] == "strace" and r.get("syscalls_per_req") is not None]
                if sc:
                    rows[e["label"]]["syscalls_per_req"] = {"median": statistics.median(sc),
                                                            "min": min(sc), "max": max(sc)}
            if rows:
                out.setdefault(table, {})[ck] = rows
    return out


# ------------------------------------------------------------------- formatting

def sig3(x):
    if x == 0:
        return "0"
    exp = math.floor(math.log10(abs(x)))
    r = round(x, 2 - exp)
    if r != 0:
        exp = math.floor(math.log10(abs(r)))
    return f"{r:.{max(0, 2 - exp)}f}"


def fmt_num(x):
    """3 significant digits, k/M suffix from 1000 up."""
    if x is None:
        return "—"
    s = sig3(x)
    r = float(s)
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(r) >= scale:
            return sig3(r / scale) + suffix
    return s


def fmt_us(us):
    if us is None:
        return "—"
    if us >= 1e6:
        return sig3(us / 1e6) + " s"
    if us >= 1e3:
        return sig3(us / 1e3) + " ms"
    return sig3(us) + " µs"


def fmt_range(m, f):
    if not m:
        return "—"
    if m["min"] == m["max"] or f(m["min"]) == f(m["max"]):
        return f(m["median"])
    return f"{f(m['median'])} [{f(m['min'])}–{f(m['max'])}]"


def fmt_small(x):
    return "—" if x is None else (f"{x:.2f}" if x < 10 else sig3(x))


def fmt_ratio(r):
    if r is None:
        return "—"
    return f"×{r:.2f}" if r < 9.95 else f"×{r:.0f}"


STATE_LABEL = {"crash": "CRASH", "nostart": "DID NOT START", "noresult": "NO RESULT",
               "error": "ERROR", "missing": "—"}
HEADERS = ["cell", "server", "req/s", "p50", "p99", "CPU µs/req user/sys", "syscalls/req",
           "RSS MiB", "CPU % server/load", "spindle/peer req/s"]


def table_rows(cells):
    """Rows grouped by cell: [cell, server, metrics..., ratio]."""
    rows = []
    for ck, per in cells.items():
        base = per.get("spindle")
        base_rps = base["rps"]["median"] if base and base["state"] == "ok" and base.get("rps") \
            else None
        first = True
        for label, s in per.items():
            c = ck if first else ""
            first = False
            if s["state"] != "ok":
                rows.append([c, label, STATE_LABEL.get(s["state"], s["state"])] + ["—"] * 7)
                continue
            g = lambda k: (s.get(k) or {}).get("median")  # noqa: E731
            cpu = "—" if g("cpu_user_us_per_req") is None else \
                f"{fmt_small(g('cpu_user_us_per_req'))}/{fmt_small(g('cpu_sys_us_per_req'))}"
            rps = s["rps"]["median"] if s.get("rps") else None
            ratio = "—" if label == "spindle" or not base_rps or not rps else fmt_ratio(base_rps / rps)
            pct = "/".join("—" if g(k) is None else f"{g(k):.0f}"
                           for k in ("server_cpu_pct", "load_cpu_pct"))
            rows.append([c, label, fmt_range(s.get("rps"), fmt_num) + s["flag"],
                         fmt_range(s.get("p50_us"), fmt_us), fmt_range(s.get("p99_us"), fmt_us),
                         cpu, fmt_small(g("syscalls_per_req")),
                         fmt_small(g("rss_mib")), pct, ratio])
    return rows


def md_table(headers, rows, left=2):
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join([":---"] * left + ["---:"] * (len(headers) - left)) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def sweep_tables(sweep):
    """Two markdown tables (p99 and req/s), rows = server, columns = connections."""
    conns = sorted({r["connections"] for r in sweep})
    servers = list(dict.fromkeys(r["server"] for r in sweep))
    out = []
    for title, key, f in (("p99 latency", "p99_us", fmt_us), ("req/s", "rps", fmt_num)):
        rows = []
        for s in servers:
            row = [s]
            for c in conns:
                r = next((r for r in sweep if r["server"] == s and r["connections"] == c), None)
                if r is None or r["status"] not in ("ok", "errors") or r.get(key) is None:
                    row.append(STATE_LABEL.get(r["status"], r["status"]) if r else "—")
                else:
                    row.append(f(r[key]) + ("!" if r["status"] == "errors" else ""))
            rows.append(row)
        out.append((title, ["server"] + [f"c={c}" for c in conns], rows))
    return out


# ---------------------------------------------------------------------- the SVG

COLORS = {"spindle": "#d62728", "c": "#1f77b4", "tokio": "#2ca02c", "go": "#9467bd",
          "go (full work)": "#9467bd"}
MORE_COLORS = ["#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def svg_text(x, y, s, size=12, anchor="start", fill="#000", weight=None, rotate=None):
    w = f' font-weight="{weight}"' if weight else ""
    t = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}"{w}{t}>{escape(s)}</text>')


def log_ticks(lo, hi):
    steps = [m * 10 ** e for e in range(-4, 6) for m in (1, 2, 5)]
    lo_d = max([s for s in steps if s <= lo] or [steps[0]])
    hi_d = min([s for s in steps if s >= hi] or [steps[-1]])
    if hi_d <= lo_d:
        hi_d = lo_d * 10
    ticks = [s for s in steps if lo_d <= s <= hi_d]
    if len(ticks) < 5:   # narrow range: every integer multiple of the decade
        ticks = [m * 10 ** e for e in range(-4, 6) for m in range(1, 10)
                 if lo_d <= m * 10 ** e * (1 + 1e-9) and m * 10 ** e <= hi_d * (1 + 1e-9)]
    if len(ticks) > 12:
        ticks = [t for t in ticks if round(t / 10 ** math.floor(math.log10(t) + 1e-9), 6) == 1]
    return lo_d, hi_d, ticks


def render_sweep_svg(sweep, meta):
    W, H = 900, 560
    L, R, T, B = 80, 190, 78, 62
    x0, x1, y0, y1 = L, W - R, T, H - B
    pts = [r for r in sweep if r["status"] in ("ok", "errors") and r.get("p99_us")]
    conns = sorted({r["connections"] for r in sweep}) or [1]
    servers = list(dict.fromkeys(r["server"] for r in sweep))
    ms = [r["p99_us"] / 1e3 for r in pts] or [1.0]
    lo, hi, ticks = log_ticks(min(ms), max(ms))
    cmin, cmax = min(conns), max(conns)
    if cmax == cmin:
        cmin, cmax = cmin - 1, cmax + 1

    def X(c):
        return x0 + (x1 - x0) * (c - cmin) / (cmax - cmin)

    def Y(v):
        return y1 - (y1 - y0) * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    m = meta["machine"]
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         f'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         svg_text(W / 2, 26, "HTTP plain, server pinned to 1 CPU with 1 worker, wrk -t1 on another "
                  "CPU: p99 latency vs connections", size=15, anchor="middle", weight="bold"),
         svg_text(W / 2, 46, f"{m['cpu_model']}, {m['cpus_usable']} CPUs, {m['kernel']} — "
                  f"{meta['date']}", size=12, anchor="middle", fill="#444"),
         svg_text(W / 2, 62, f"one {meta['config']['sweep_seconds']} s run per point after a "
                  f"{meta['config']['warmup_s']} s warm-up; lower is better", size=11,
                  anchor="middle", fill="#666"),
         f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="#888"/>']
    for t in ticks:
        y = Y(t)
        o.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        o.append(svg_text(x0 - 6, y + 4, f"{t:g}", size=11, anchor="end"))
    for c in conns:
        x = X(c)
        o.append(f'<line x1="{x:.1f}" y1="{y1}" x2="{x:.1f}" y2="{y1 + 5}" stroke="#888"/>')
        o.append(svg_text(x, y1 + 18, str(c), size=11, anchor="middle"))
    o.append(svg_text((x0 + x1) / 2, H - 20, "connections", size=13, anchor="middle"))
    o.append(svg_text(22, (y0 + y1) / 2, "p99 latency (ms, log scale)", size=13,
                      anchor="middle", rotate=-90))
    extra = iter(MORE_COLORS * 4)
    for i, s in enumerate(servers):
        color = COLORS.get(s) or next(extra)
        mine = sorted((r for r in pts if r["server"] == s), key=lambda r: r["connections"])
        segs, cur, have = [], [], {r["connections"] for r in mine}
        for c in conns:            # break the line where a point is missing
            if c in have:
                cur.append(next(r for r in mine if r["connections"] == c))
            elif cur:
                segs.append(cur)
                cur = []
        if cur:
            segs.append(cur)
        for seg in segs:
            if len(seg) > 1:
                pl = " ".join(f"{X(r['connections']):.1f},{Y(r['p99_us'] / 1e3):.1f}" for r in seg)
                o.append(f'<polyline points="{pl}" fill="none" stroke="{color}" stroke-width="2"/>')
        for r in mine:
            bad = r["status"] == "errors"
            o.append(f'<circle cx="{X(r["connections"]):.1f}" cy="{Y(r["p99_us"] / 1e3):.1f}" r="3.5" '
                     f'fill="{"white" if bad else color}" stroke="{color}" stroke-width="1.5">'
                     f'<title>{escape(s)} c={r["connections"]}: p99 {escape(fmt_us(r["p99_us"]))}, '
                     f'{escape(fmt_num(r["rps"]))} req/s'
                     f'{escape(" (" + r["reason"] + ")") if bad else ""}</title></circle>')
        ly = y0 + 14 + i * 22
        o.append(f'<line x1="{x1 + 18}" y1="{ly - 4}" x2="{x1 + 46}" y2="{ly - 4}" '
                 f'stroke="{color}" stroke-width="2"/>')
        o.append(f'<circle cx="{x1 + 32}" cy="{ly - 4}" r="3.5" fill="{color}"/>')
        o.append(svg_text(x1 + 54, ly, s + ("" if mine else " (no data)"), size=12,
                          fill="#000" if mine else "#888"))
    ly = y0 + 14 + len(servers) * 22 + 8
    o.append(f'<circle cx="{x1 + 32}" cy="{ly - 4}" r="3.5" fill="white" stroke="#444" stroke-width="1.5"/>')
    o.append(svg_text(x1 + 54, ly, "run had errors", size=11, fill="#444"))
    if not pts:
        o.append(svg_text((x0 + x1) / 2, (y0 + y1) / 2, "no data", size=16, anchor="middle",
                          fill="#888"))
    o.append("</svg>")
    return "\n".join(o) + "\n"


# -------------------------------------------------------- machine information

def first_line(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (p.stdout or p.stderr).strip().splitlines()
    return lines[0].strip() if lines else None


def machine_info():
    model = None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=20).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        model = m.group(1).strip() if m else None
    except (OSError, subprocess.SubprocessError):
        pass
    if not model:
        m = re.search(r"^model name\s*:\s*(.+)$", read_text("/proc/cpuinfo"), re.M)
        model = m.group(1).strip() if m else platform.machine()
    mem = re.search(r"^MemTotal:\s*(\d+)\s*kB", read_text("/proc/meminfo"), re.M)
    u = platform.uname()
    return {"cpu_model": model, "cores_online": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "kernel": f"{u.system} {u.release} {u.machine}", "hostname": u.node,
            "memory": f"{int(mem.group(1)) / 1048576:.1f} GiB" if mem else None,
            "python": platform.python_version(),
            "wrk": first_line(["wrk", "--version"]) if shutil.which("wrk") else None}


# ------------------------------------------------------------------------ main

def render_markdown(meta, summary, sweep, notes):
    cfg = meta["config"]
    lines = ["## Server comparison", "",
             f"- **Machine:** {meta['machine']['cpu_model']}, {meta['machine']['cpus_usable']}/"
             f"{meta['machine']['cores_online']} CPUs usable, {meta['machine']['kernel']}, "
             f"{meta['machine']['memory']}",
             f"- **Date:** {meta['date']}; total run time {meta['elapsed_s']:.0f} s",
             "- **Command:** `" + " ".join(shlex.quote(a) for a in meta["command"]) + "`",
             f"- **Method:** fresh server per run; {cfg['warmup_s']} s warm-up (discarded), "
             f"{cfg['duration_s']} s measured; {cfg['rounds']} interleaved round(s) per cell; "
             "median [min–max] over rounds. pinned = server `taskset -c "
             f"{cfg['server_cpu']}` 1 worker, load `taskset -c {cfg['load_cpu']}` 1 thread; "
             "free = server 2 workers, load unpinned 2 threads.",
             f"- **Load:** HTTP `wrk -t T -c C -d {cfg['duration_s']}s --latency`; echo "
             f"`{cfg['echo_client']}` echo client, {ECHO_SIZE}-byte messages, closed loop per "
             "connection (req/s = messages/s).",
             "- **Server cost:** CPU = /proc/PID/stat utime+stime (all threads) over the "
             "measured window ÷ requests; RSS = VmHWM at the end.",
             f"- **Syscalls/req:** {meta['syscall_method_text']}",
             "- **spindle/peer:** spindle's req/s ÷ this row's (>1: spindle serves more).",
             "- **CPU % server/load:** CPU time ÷ wall time of the server and of the load "
             "generator over the measured window (100 = one CPU busy); in a pinned cell a load "
             "generator near 100 while the server is well below means the load is the limit.",
             ]
    bins = {}
    for es in meta["catalog"].values():
        for e in es:
            bins.setdefault(e["bin"], e["bin"])
            if e.get("client_bin"):
                bins.setdefault(e["client_bin"], e["client_bin"])
    if bins:
        lines.append("- **Binaries:** " + ", ".join(f"`{b}`" for b in bins))
    if meta["interrupted"]:
        lines.append("- **Interrupted:** partial results")
    for table in TABLES:
        if table not in summary:
            continue
        lines += ["", f"### {TABLE_TITLE[table]}", "", md_table(HEADERS, table_rows(summary[table]))]
        if table == "echo" and any(s.get("check_row") for s in meta["catalog"].get("echo", [])):
            lines += ["", f"The `c [... client]` row is the client check: the C echo server "
                      f"loaded by the other echo client (main rows use the {cfg['echo_client']} "
                      "client); if it differs much from the `c` row, the client is the bottleneck."]
    if sweep:
        lines += ["", "### Sweep: HTTP plain, pinned, 1 worker (see sweep.svg)", ""]
        for title, h, rows in sweep_tables(sweep):
            lines += [f"{title}:", "", md_table(h, rows, left=1), ""]
    foot = footnotes(meta, notes, summary)
    if foot:
        lines += [""] + foot
    return "\n".join(lines).rstrip() + "\n"


def footnotes(meta, notes, summary):
    out = []
    runs = meta["runs"]
    flags = {s.get("flag") for cells in summary.values() for per in cells.values()
             for s in per.values()}
    if "!" in flags:
        out.append("`!` every run of that cell had load errors: median of those runs.")
    if "*" in flags:
        out.append("`*` some runs of that cell were dropped (crash, errors): median of the rest.")
    if any(r["status"] == "errors" for r in meta["runs"] if r["phase"] == "sweep"):
        out.append("Sweep values marked `!` come from a run with load errors.")
    timed = [r for r in runs if r["phase"] in ("measure", "sweep")]
    bg = [r["background_cpu_pct"] for r in timed if r.get("background_cpu_pct") is not None]
    st = [r["steal_pct"] for r in timed if r.get("steal_pct") is not None]
    if bg:
        busy = sum(1 for b in bg if b > BUSY_PCT)
        out.append(f"Other CPU use on the machine during the measured windows (not server, not "
                   f"load generator): median {statistics.median(bg):.0f}%, max {max(bg):.0f}% of "
                   f"a CPU; VM steal median {statistics.median(st):.0f}%"
                   + (f". **{busy} of {len(bg)} runs had more than {BUSY_PCT}%: "
                      "the machine was not quiet, numbers are noisy.**" if busy else "."))
    seen = set()
    for r in runs:
        if r["status"] != "ok" or (r.get("check") not in (None, "ok")):
            what = r["reason"] if r["status"] != "ok" else f"reply check: {r['check']}"
            key = (r["table"], r["server"], r["cell"], r["phase"], what)
            if key in seen:
                continue
            seen.add(key)
            out.append(f"- {TABLE_TITLE[r['table']]}, {r['server']}, {r['cell']}"
                       f"{'' if r['phase'] == 'measure' else ' (' + r['phase'] + ')'}: "
                       f"{r['status']}: {what}")
        if r.get("syscall_reason"):
            key = ("sys", r["server"], r["syscall_reason"][:40])
            if key not in seen:
                seen.add(key)
                out.append(f"- {r['server']} {r['cell']}: syscall count unavailable "
                           f"({r['syscall_reason']})")
        if r.get("server_killed"):
            key = ("kill", r["server"], r["table"])
            if key not in seen:
                seen.add(key)
                out.append(f"- {r['server']} ({TABLE_TITLE[r['table']]}) needed SIGKILL "
                           f"after {TERM_GRACE:g} s of SIGTERM")
    out += [f"- {n}" for n in notes]
    return out


def write_outputs(out_dir, meta, summary, sweep, notes):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "servers.json"), "w", encoding="utf-8") as f:
        json.dump(dict(meta, summary=summary, sweep=sweep, notes=notes), f, indent=1,
                  ensure_ascii=False)
        f.write("\n")
    md = render_markdown(meta, summary, sweep, notes)
    with open(os.path.join(out_dir, "servers.md"), "w", encoding="utf-8") as f:
        f.write(md)
    if meta["config"]["sweep"]:
        with open(os.path.join(out_dir, "sweep.svg"), "w", encoding="utf-8") as f:
            f.write(render_sweep_svg(sweep, meta))
    return md


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY
                                                        else max(soft, 65536), hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main(argv=None):
    try:
        sys.stdout.reconfigure(errors="replace")
        sys.stderr.reconfigure(errors="replace")
    except AttributeError:
        pass
    args = parse_args(sys.argv[1:] if argv is None else argv)
    t_start = time.monotonic()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    needs_wrk = "http-plain" in args.table_list or "http-full" in args.table_list or args.sweep
    if needs_wrk and not shutil.which("wrk"):
        log("error: wrk not found. Install it with `apt-get install -y wrk` (Debian package "
            "wrk), or run only the echo table: --tables echo --no-sweep")
        return 1
    if not shutil.which("taskset"):
        log("error: taskset not found (Debian package util-linux)")
        return 1
    if len(os.sched_getaffinity(0)) < 2:
        log("warning: fewer than 2 usable CPUs: pinned server and load share one CPU")
    fd_limit = raise_fd_limit()
    need_fds = max(args.conn_list + (args.sweep_list if args.sweep else [])) + 64
    if fd_limit < need_fds:
        log(f"warning: open-file limit {fd_limit} < {need_fds}: large cells may fail")

    cells_by_table = {t: cells_for(t, args) for t in args.table_list}
    catalog, notes = server_catalog(args, [t for t in args.table_list if cells_by_table[t]])
    for n in notes:
        log("note: " + n)

    with tempfile.TemporaryDirectory(prefix="servers-") as tmpdir:
        method, sys_text = args.syscalls, ""
        if method in ("auto", "perf"):
            ok, detail = probe_perf(tmpdir)
            if ok:
                method = "perf"
                sys_text = (f"`perf stat -e raw_syscalls:sys_enter -p PID` ({detail}), "
                            "enabled over exactly the measured window, all threads of the server")
            elif args.syscalls == "perf":
                log(f"error: --syscalls perf, but perf does not work here: {detail}")
                return 1
            else:
                method = "off"
                sys_text = f"not measured (perf unusable here: {detail}; try --syscalls strace)"
        elif method == "strace":
            if not shutil.which("strace"):
                log("error: --syscalls strace, but strace is not installed (apt-get install strace)")
                return 1
            sys_text = (f"`strace -c -f -p PID` in an extra, unreported {args.strace_seconds} s "
                        "round per server and cell (strace slows the server; the count per "
                        "request is still right)")
        else:
            sys_text = "not measured (--syscalls off)"
        log(f"syscalls/req: {sys_text}")

        cfg = {"quick": args.quick, "duration_s": args.duration, "warmup_s": args.warmup,
               "rounds": args.rounds, "tables": args.table_list, "connections": args.conn_list,
               "sweep": args.sweep, "sweep_connections": args.sweep_list,
               "sweep_seconds": max(1, args.duration // 2),
               "echo_client": next((e["client"] for e in catalog.get("echo", [])
                                    if not e["check_row"]), args.echo_client),
               "syscalls": method, "peers_dir": args.peers_dir, "spindle_dir": args.spindle_dir,
               "only": sorted(args.only_set) if args.only_set else None, "fd_limit": fd_limit,
               "wait_quiet_s": args.wait_quiet}
        runner = Runner(args, tmpdir, method if method == "perf" else None, log)
        cfg["server_cpu"], cfg["load_cpu"] = runner.server_cpu, runner.load_cpu
        meta = {"schema": 1,
                "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "command": [sys.executable] + sys.argv if argv is None
                else ["servers.py"] + list(argv),
                "machine": machine_info(), "config": cfg, "syscall_method_text": sys_text,
                "catalog": {t: [{k: e[k] for k in ("label", "bin", "extra", "client",
                                                   "client_bin", "check_row")} for e in es]
                            for t, es in catalog.items()},
                "runs": [], "interrupted": False, "elapsed_s": None}
        runs, sweep = meta["runs"], []

        plan = []
        for table in args.table_list:
            for mode, conns in cells_by_table[table]:
                entries = [e for e in catalog[table] if not (e["check_row"] and mode != "pinned")]
                if entries:
                    plan.append((table, mode, conns, entries))
        total = sum(len(e) * args.rounds for *_, e in plan)
        if method == "strace":
            total += sum(len(e) for *_, e in plan)
        sweep_entries = [e for e in catalog.get("http-plain", []) if not e["check_row"]] \
            if args.sweep else []
        if args.sweep and "http-plain" not in catalog:   # sweep without the table
            sweep_entries = server_catalog(args, ["http-plain"])[0]["http-plain"]
        total += len(sweep_entries) * len(args.sweep_list)
        over = args.warmup + 0.5       # start, check, warm-up, stop
        est = sum(len(e) for *_, e in plan) * (args.rounds * (over + args.duration)
                                               + (over + args.strace_seconds + 1
                                                  if method == "strace" else 0)) \
            + len(sweep_entries) * len(args.sweep_list) * (over + cfg["sweep_seconds"])
        log(f"{total} measurements, about {est / 60:.1f} min")
        if args.plan:
            for table, mode, conns, entries in plan:
                print(f"{TABLE_TITLE[table]}, {cell_key(mode, conns)}: {args.rounds} x "
                      + ", ".join(e["label"] for e in entries))
            if sweep_entries:
                print(f"sweep c={','.join(map(str, args.sweep_list))}, {cfg['sweep_seconds']} s "
                      "each: " + ", ".join(e["label"] for e in sweep_entries))
            print(f"{total} measurements, estimated {est / 60:.1f} min")
            return 0
        done = 0

        def progress(rec):
            nonlocal done
            done += 1
            val = f"{fmt_num(rec.get('rps'))} req/s p99 {fmt_us(rec.get('p99_us'))}" \
                if rec.get("rps") is not None else ""
            sc = rec.get("syscalls_per_req")
            rno = "" if rec["round"] is None else f" r{rec['round'] + 1}"
            log(f"  [{done}/{total}] {rec['table']} {rec['cell']}{rno} {rec['phase']} "
                f"{rec['server']}: {rec['status']} {val}"
                + (f" {sc:.2f} syscalls/req" if sc is not None else "")
            + (f" [other CPU use {rec['background_cpu_pct']:.0f}%]"
               if (rec.get("background_cpu_pct") or 0) > BUSY_PCT else "")
                + ("" if rec["status"] == "ok" else f" ({rec['reason']})"))

        try:
            for table, mode, conns, entries in plan:
                log(f"{TABLE_TITLE[table]}, {cell_key(mode, conns)}")
                for r in range(args.rounds):
                    for e in round_order(entries, r):
                        rec = runner.measure(table, e, mode, conns, args.duration, "measure", r)
                        runs.append(rec)
                        progress(rec)
                if method == "strace":
                    for e in entries:
                        rec = runner.measure(table, e, mode, conns, args.strace_seconds,
                                             "strace", None, count="strace")
                        runs.append(rec)
                        progress(rec)
            if sweep_entries:
                log("sweep: HTTP plain, pinned, 1 worker")
                for i, c in enumerate(args.sweep_list):
                    for e in round_order(sweep_entries, i):
                        rec = runner.measure("http-plain", e, "pinned", c, cfg["sweep_seconds"],
                                             "sweep", i)
                        runs.append(rec)
                        sweep.append({k: rec.get(k) for k in
                                      ("server", "connections", "status", "reason", "rps",
                                       "p50_us", "p99_us", "requests", "errors",
                                       "syscalls_per_req", "rss_hwm_kib")})
                        progress(rec)
        except KeyboardInterrupt:
            meta["interrupted"] = True
            log("interrupted — writing partial results")
    meta["elapsed_s"] = round(time.monotonic() - t_start, 1)
    summary = summarize(runs, catalog, cells_by_table)
    md = write_outputs(args.out_dir, meta, summary, sweep, notes)
    print(md)
    print(f"total run time {meta['elapsed_s']:.1f} s; results in {args.out_dir}")
    if meta["interrupted"]:
        return 130
    if not any(r["status"] in ("ok", "errors") for r in runs):
        log("error: no measurement succeeded")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
