#!/usr/bin/env python3
"""Comparison runner: spindle vs. peer runtimes (go, tokio, boost_fiber, tbb, ...).

Every runtime is a binary implementing

    <binary> --workload NAME --workers N [--quick]

which prints one line ``RESULT {json}`` on stdout (see bench/compare/fake_runtime.py
for a reference implementation of the interface).

Method
------
* Cells.  One cell is a (workload, workers) pair.  Workloads run in the canonical
  order of WORKLOADS; workers are 1 and the number of CPUs this process may use
  (``len(os.sched_getaffinity(0))``), or only 1 on a single-CPU machine.
* Interleaving.  Inside a cell every runtime first does ``--warmup`` discarded
  runs at the ``--quick`` sizes; then come ``--runs`` rounds.  Every run is a
  fresh process, so a warm-up can only warm what outlives it (the page cache
  holding the binary and its libraries, the CPU's clock); a quick-sized run does
  that as well as a full one, in a fraction of the time (a full Boost.Fiber
  spawn_join warm-up alone is 34 s).  Each round runs every runtime once and the
  starting runtime rotates (A B C, B C A, C A B, ...), so slow drift of the machine
  (thermal, frequency, noisy neighbours) hits all runtimes equally instead of
  whichever runtime happens to be measured last.
* A runtime that reports ``unsupported`` (or hangs past ``--timeout``, or cannot
  be executed) is not run again in that cell.  Crashes and failed checks are
  recorded and the runtime keeps being run: failures are data.
* Statistics.  Per runtime and cell we report the median of the successful runs
  with min and max.  Any run whose ``check`` is not "ok" marks the whole cell FAIL
  (a wrong answer makes the timing meaningless).  If some runs crashed/timed out
  but others succeeded, the median is shown with a ``*``.
* Ratio direction.  Lower ``value`` is better for every workload.  The ratio is
  ``median(peer) / median(baseline)``: ``x5.2`` means the peer took 5.2 times as
  long as the baseline, i.e. above 1 the baseline is faster, below 1 the peer is.
* Memory.  Each child runs in its own session (so a timeout can SIGKILL its
  whole process group) and is reaped with ``os.wait4``, whose rusage gives that
  one child's peak RSS (``ru_maxrss``, KiB).  We never use
  ``getrusage(RUSAGE_CHILDREN)``, which is a maximum over all children ever
  reaped.  Caveat: Linux makes a child's ru_maxrss at least the peak RSS of the
  process that spawned it, so children are spawned by a tiny persistent helper
  (see HelperSpawner; ~8 MiB instead of this script's ~23 MiB) and the floor in
  effect is measured with `true` and reported; values at the floor are marked
  ``<=``.  ``--direct-spawn`` uses subprocess.Popen + os.wait4 from this process.
  For the sleepers workloads the table shows ``ru_maxrss*1024 / n`` (bytes per
  task, median over runs); it includes the process's fixed footprint, so it is
  an upper bound on the per-task cost.  Wall time of the whole process (spawn to
  reap) is recorded for every run.

Outputs (in ``--out-dir``): compare.json (machine, toolchain, command, every raw
run, summarized cells), compare.md (Markdown tables), compare.svg (ratio chart).
Exit status: 0 when the runner worked (even if peers failed), 1 when the
baseline is missing or produced no usable result, 130 when interrupted.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from xml.sax.saxutils import escape

WORKLOADS = ["skynet", "spawn_join", "yield", "pingpong", "sleepers",
             "sleepers_event", "gather_10k", "queue_mpmc", "mutex_contended"]
RSS_WORKLOADS = ("sleepers", "sleepers_event")
# Every runtime reports "ms" or "ns" (per item); the table names the item.
NS_PER = {"spawn_join": "ns/task", "yield": "ns/yield", "pingpong": "ns/roundtrip",
          "gather_10k": "ns/task", "queue_mpmc": "ns/item", "mutex_contended": "ns/lock"}
RESULT_RE = re.compile(r"^RESULT\s+(\{.*\})\s*$")
STDERR_TAIL = 600  # characters of stderr kept for failed runs


# --------------------------------------------------------------------------- CLI

def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Interleaved benchmark comparison of spindle and peer runtimes.")
    p.add_argument("--runtime", action="append", default=[], metavar="NAME=PATH",
                   help="a runtime binary (repeat; column order follows this order)")
    p.add_argument("--baseline", default="spindle",
                   help="runtime the ratios are relative to (default: spindle)")
    p.add_argument("--runs", type=int, default=None,
                   help="measured rounds per cell (default 5, 3 with --quick)")
    p.add_argument("--warmup", type=int, default=None,
                   help="discarded warm-up runs (at the --quick sizes) per runtime and cell (default 1)")
    p.add_argument("--quick", action="store_true",
                   help="pass --quick to the binaries; runs=3, warmup=1 unless given")
    p.add_argument("--workloads", default=None,
                   help="comma-separated subset of: " + ",".join(WORKLOADS))
    p.add_argument("--workers", default=None,
                   help="comma-separated worker counts (default: 1 and usable CPUs)")
    p.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"),
                   help="where compare.{json,md,svg} go (default: bench/compare/out)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="per-run timeout in seconds (default 120)")
    p.add_argument("--direct-spawn", action="store_true",
                   help="spawn binaries from this process instead of the small spawn "
                        "helper (raises the ru_maxrss floor to this script's RSS)")
    args = p.parse_args(argv)

    if args.runs is None:
        args.runs = 3 if args.quick else 5
    if args.warmup is None:
        args.warmup = 1
    if args.runs < 1 or args.warmup < 0 or args.timeout <= 0:
        p.error("need --runs >= 1, --warmup >= 0, --timeout > 0")
    args.runtimes = parse_runtime_specs(p, args.runtime)
    args.workload_list = parse_workloads(p, args.workloads)
    args.worker_list = parse_workers(p, args.workers)
    return args


def parse_runtime_specs(parser, specs):
    """['go=/path', ...] -> ordered list of (name, absolute path)."""
    if not specs:
        parser.error("give at least one --runtime NAME=PATH")
    out, seen = [], set()
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            parser.error(f"bad --runtime {spec!r}, expected NAME=PATH")
        if name in seen:
            parser.error(f"runtime {name!r} given twice")
        seen.add(name)
        out.append((name, os.path.abspath(os.path.expanduser(path))))
    return out


def parse_workloads(parser, text):
    if not text:
        return list(WORKLOADS)
    wanted = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    return [w for w in WORKLOADS if w in wanted]


def parse_workers(parser, text):
    if text:
        try:
            counts = sorted({int(x) for x in text.split(",") if x.strip()})
        except ValueError:
            parser.error(f"bad --workers {text!r}")
        if not counts or counts[0] < 1:
            parser.error("worker counts must be >= 1")
        return counts
    ncpu = usable_cpus()
    return [1] if ncpu <= 1 else [1, ncpu]


def usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# ------------------------------------------------------------------ one child run
#
# Why a helper process: on Linux a child's ru_maxrss can never be lower than the
# peak RSS of the process that forked it (exec copies the old mm's high-water mark
# into the child's rusage).  Spawning straight from this script would give every
# binary a floor of ~23 MiB (this Python process).  So children are spawned by a
# persistent, minimal `python3 -S -I` helper (~8 MiB) which posix_spawns each
# binary in its own session, reaps it with os.wait4 and sends back the raw wait
# status, ru_maxrss and wall time.  The floor actually in effect is measured once
# by running `true` (rss_floor_kib in compare.json).  --direct-spawn uses
# subprocess.Popen + os.wait4 from this process instead (same semantics, higher floor).

SPAWN_HELPER = r"""
import os, sys, time
rd, wr = sys.stdin.buffer, sys.stdout.buffer
null = os.open(os.devnull, os.O_RDONLY)
for line in rd:
    f = line.rstrip(b"\n").split(b"\0")
    fds = []
    try:
        fds = [os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) for p in f[:2]]
        t0 = time.perf_counter()
        pid = os.posix_spawn(f[2], f[2:], os.environ, setsid=True, file_actions=[
            (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, fds[0], 1),
            (os.POSIX_SPAWN_DUP2, fds[1], 2)])
    except OSError as e:
        wr.write(b"error " + str(e).encode(errors="replace").replace(b"\n", b" ") + b"\n")
        wr.flush()
        continue
    finally:
        for fd in fds:
            os.close(fd)
    wr.write(b"pid %d\n" % pid)
    wr.flush()
    _, st, ru = os.wait4(pid, 0)
    wr.write(b"done %d %d %.6f\n" % (st, ru.ru_maxrss, time.perf_counter() - t0))
    wr.flush()
"""


class SpawnError(Exception):
    pass


class HelperSpawner:
    """Runs children through SPAWN_HELPER (see above); one child at a time."""
    method = "helper (python3 -S -I, posix_spawn + os.wait4)"

    def __init__(self):
        self.proc = None
        self._start()

    def _start(self):
        self.proc = subprocess.Popen([sys.executable, "-S", "-I", "-c", SPAWN_HELPER],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     start_new_session=True)

    def run(self, argv, out_path, err_path, timeout):
        """-> (wait status, ru_maxrss KiB, wall seconds, timed_out)."""
        fields = [out_path, err_path] + argv
        if any("\0" in a or "\n" in a for a in fields):
            raise SpawnError("argument contains NUL or newline")
        if self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write("\0".join(fields).encode() + b"\n")
        self.proc.stdin.flush()
        words = self._reply()
        if words[0] == "error":
            raise SpawnError("cannot execute: " + " ".join(words[1:]))
        pid = int(words[1])
        fired = threading.Event()
        timer = threading.Timer(timeout, lambda: (fired.set(), kill_group(pid)))
        timer.daemon = True
        timer.start()
        try:
            words = self._reply()
        except BaseException:        # KeyboardInterrupt: don't leave the child behind
            kill_group(pid)
            self.close()
            raise
        finally:
            timer.cancel()
        status, rss, wall = int(words[1]), int(words[2]), float(words[3])
        return status, rss, wall, fired.is_set()

    def _reply(self):
        line = self.proc.stdout.readline().decode(errors="replace").split()
        if not line:
            self.proc.kill()
            self.proc.wait()
            raise SpawnError("spawn helper died")
        return line

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class DirectSpawner:
    """subprocess.Popen + os.wait4 from this process (ru_maxrss floor = our RSS)."""
    method = "direct (subprocess.Popen + os.wait4)"

    def run(self, argv, out_path, err_path, timeout):
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            t0 = time.perf_counter()
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=err, start_new_session=True)
            except OSError as e:
                raise SpawnError(f"cannot execute: {e}") from None
            status, rusage, timed_out = reap_with_timeout(proc, timeout)
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped already
            return status, rusage.ru_maxrss, time.perf_counter() - t0, timed_out

    def close(self):
        pass


def reap_with_timeout(proc, timeout):
    """os.wait4 the child; a timer SIGKILLs its process group after `timeout` s."""
    fired = threading.Event()
    timer = threading.Timer(timeout, lambda: (fired.set(), kill_group(proc.pid)))
    timer.daemon = True
    timer.start()
    try:
        _, status, rusage = os.wait4(proc.pid, 0)
    except BaseException:          # e.g. KeyboardInterrupt: don't leave orphans
        kill_group(proc.pid)
        os.wait4(proc.pid, 0)
        proc.returncode = -signal.SIGKILL
        raise
    finally:
        timer.cancel()
    return status, rusage, fired.is_set()


def kill_group(pid):
    """SIGKILL the child's session/process group (it was started with setsid)."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def make_spawner(direct):
    if not direct:
        try:
            sp = HelperSpawner()
            sp.run([true_binary()], os.devnull, os.devnull, 10)  # smoke test
            return sp
        except (OSError, SpawnError, ValueError, IndexError):
            pass
    return DirectSpawner()


def true_binary():
    return shutil.which("true") or "/bin/true"


def measure_rss_floor(spawner, tmpdir):
    """ru_maxrss of `true` spawned the same way as the benchmarks (KiB)."""
    try:
        return spawner.run([true_binary()], os.path.join(tmpdir, "o"),
                           os.path.join(tmpdir, "e"), 10)[1]
    except SpawnError:
        return None


def run_once(spawner, tmpdir, path, workload, workers, quick, timeout):
    """Run one binary once; return a raw-run dict (status, value, rss_kib, ...)."""
    cmd = [path, "--workload", workload, "--workers", str(workers)]
    if quick:
        cmd.append("--quick")
    rec = {"value": None, "unit": None, "n": None, "rss_kib": None,
           "wall_s": None, "check": None, "rc": None}
    out_path, err_path = os.path.join(tmpdir, "stdout"), os.path.join(tmpdir, "stderr")
    try:
        status, rss, wall, timed_out = spawner.run(cmd, out_path, err_path, timeout)
    except SpawnError as e:
        rec.update(status="error", reason=str(e))
        return rec
    rc = os.waitstatus_to_exitcode(status)
    rec.update(rc=rc, rss_kib=rss, wall_s=round(wall, 6))
    stdout, stderr = read_file(out_path), read_file(err_path)

    result = parse_result(stdout)
    if result is not None:
        rec["result"] = result
        for key in ("value", "unit", "n", "check"):
            rec[key] = result.get(key)
    rec["status"], rec["reason"] = classify(rc, timed_out and rc == -signal.SIGKILL,
                                            result, workload, workers, timeout)
    if rec["status"] not in ("ok", "unsupported") and stderr.strip():
        rec["stderr_tail"] = stderr[-STDERR_TAIL:]
    return rec


def parse_result(stdout):
    """The last `RESULT {json}` line of stdout as a dict, or None."""
    for line in reversed(stdout.splitlines()):
        m = RESULT_RE.match(line.strip())
        if m:
            try:
                obj = json.loads(m.group(1))
            except ValueError:
                return None
            return obj if isinstance(obj, dict) else None
    return None


def classify(rc, timed_out, result, workload, workers, timeout):
    """-> (status, reason); status is one of
    ok, unsupported, fail, timeout, crash, noresult, bad_result (error is set earlier)."""
    if timed_out:
        return "timeout", f"killed after {timeout:g} s"
    if result is None:
        if rc != 0:
            return "crash", describe_rc(rc)
        return "noresult", "no parsable RESULT line on stdout"
    if result.get("unsupported"):
        return "unsupported", str(result.get("reason", ""))
    if result.get("workload", workload) != workload or result.get("workers", workers) != workers:
        return "bad_result", (f"RESULT is for {result.get('workload')}/"
                              f"{result.get('workers')}, expected {workload}/{workers}")
    if result.get("check") != "ok":
        return "fail", f"check={result.get('check')!r}"
    value = result.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        return "bad_result", f"bad value {value!r}"
    if rc != 0:
        return "crash", describe_rc(rc) + " after printing RESULT"
    return "ok", ""


def describe_rc(rc):
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


# ------------------------------------------------------------------- scheduling

# A runtime that did one of these is not run again in the same cell.
SKIP_REST_OF_CELL = ("unsupported", "timeout", "error")


def run_cell(runtimes, workload, workers, args, run, runs_out, log):
    """Warm-ups, then `args.runs` rotated rounds for one (workload, workers).
    `run(path, workload, workers, quick)` performs one run (at the --quick sizes
    when `quick`) and returns its raw record."""
    skip = set()

    def one(name, path, phase, round_no):
        rec = run(path, workload, workers, phase == "warmup")
        rec.update(runtime=name, workload=workload, workers=workers,
                   phase=phase, round=round_no)
        runs_out.append(order_keys(rec))
        if rec["status"] in SKIP_REST_OF_CELL:
            skip.add(name)
        if rec["status"] not in ("ok", "unsupported"):
            log(f"    {name}: {rec['status'].upper()} ({rec['reason']})")
        elif rec["status"] == "unsupported" and phase == "warmup":
            log(f"    {name}: unsupported")

    for name, path in runtimes:
        for _ in range(args.warmup):
            if name not in skip:
                one(name, path, "warmup", None)
    for r in range(args.runs):
        for name, path in round_order(runtimes, r):
            if name not in skip:
                one(name, path, "measure", r)


def round_order(runtimes, r):
    """The order of round r. A run's time depends on the process just before
    it: memory that process freed a moment ago is cheap to fault in again,
    memory the VM handed back to its host seconds ago is dear (spindle's
    spawn_join measured 82-126 ns/task right after Go's, 330-590 right after
    oneTBB's). A fixed cyclic order, even with a rotating start, gives every
    runtime the same predecessor in every round. So each round starts at
    another runtime and steps through the list by another stride coprime
    with its length: over the strides, each runtime follows every other."""
    k = len(runtimes)
    strides = [s for s in range(1, k) if math.gcd(s, k) == 1] or [1]
    stride = strides[r % len(strides)]
    return [runtimes[(r + i * stride) % k] for i in range(k)]


def order_keys(rec):
    """Stable, readable key order for compare.json."""
    first = ["runtime", "workload", "workers", "phase", "round", "status", "value",
             "unit", "n", "rss_kib", "wall_s", "check", "rc", "reason"]
    out = {k: rec.get(k) for k in first}
    out.update({k: v for k, v in rec.items() if k not in out})
    return out


# -------------------------------------------------------------------- summaries

def summarize(runs, runtime_names, baseline, cells):
    """Per (workload, workers): per-runtime median/min/max and peer/baseline ratios."""
    out = []
    for workload, workers in cells:
        mine = [r for r in runs if r["workload"] == workload and r["workers"] == workers
                and r["phase"] == "measure"]
        if not mine and not any(r["workload"] == workload and r["workers"] == workers
                                for r in runs):
            continue  # never reached (interrupted)
        per_rt = {}
        for name in runtime_names:
            per_rt[name] = summarize_runtime([r for r in mine if r["runtime"] == name], workload)
            if per_rt[name]["state"] == "missing":
                # e.g. unsupported or hung in warm-up: no measured runs at all
                early = [r for r in runs if r["runtime"] == name and r["workload"] == workload
                         and r["workers"] == workers and r["status"] in SKIP_REST_OF_CELL]
                if early:
                    per_rt[name]["state"] = early[0]["status"]
        unit = cell_unit(per_rt, baseline)
        ratios, notes = {}, []
        base = per_rt.get(baseline, {})
        for name in runtime_names:
            if name == baseline:
                continue
            ratios[name] = ratio(per_rt[name], base)
            if ratios[name] is None and per_rt[name].get("unit") and base.get("unit") \
                    and per_rt[name]["unit"] != base["unit"]:
                notes.append(f"{name} reports unit {per_rt[name]['unit']}, "
                             f"{baseline} {base['unit']}: no ratio")
        label = NS_PER.get(workload, unit) if unit == "ns" else unit
        out.append({"workload": workload, "workers": workers, "unit": unit, "label": label,
                    "runtimes": per_rt, "ratios": ratios, "notes": notes})
    return out


def summarize_runtime(rs, workload):
    ok = [r for r in rs if r["status"] == "ok"]
    counts = {}
    for r in rs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    s = {"runs": len(rs), "ok": len(ok), "statuses": counts, "median": None,
         "min": None, "max": None, "unit": None, "rss_kib_median": None,
         "rss_bytes_per_task": None, "wall_s_median": None}
    if counts.get("fail"):
        s["state"] = "fail"
    elif ok:
        s["state"] = "ok" if len(ok) == len(rs) else "partial"
    elif rs:
        # most informative failure first
        for st in ("unsupported", "timeout", "crash", "bad_result", "noresult", "error"):
            if counts.get(st):
                s["state"] = st
                break
    else:
        s["state"] = "missing"
    if ok:
        vals = [float(r["value"]) for r in ok]
        s.update(median=statistics.median(vals), min=min(vals), max=max(vals),
                 unit=ok[0]["unit"])
        s["rss_kib_median"] = statistics.median(r["rss_kib"] for r in ok)
        s["wall_s_median"] = statistics.median(r["wall_s"] for r in ok)
        per_task = [r["rss_kib"] * 1024 / r["n"] for r in ok
                    if isinstance(r.get("n"), (int, float)) and r["n"] > 0]
        if per_task and workload in RSS_WORKLOADS:
            s["rss_bytes_per_task"] = statistics.median(per_task)
    return s


def cell_unit(per_rt, baseline):
    if per_rt.get(baseline, {}).get("unit"):
        return per_rt[baseline]["unit"]
    return next((s["unit"] for s in per_rt.values() if s.get("unit")), "")


def ratio(peer, base):
    if peer.get("state") not in ("ok", "partial") or base.get("state") not in ("ok", "partial"):
        return None
    if peer["unit"] != base["unit"] or not base["median"]:
        return None
    return peer["median"] / base["median"]


# ------------------------------------------------------------------- formatting

def sig3(x):
    """x rounded to 3 significant digits, as plain text without exponent."""
    if x == 0:
        return "0"
    exp = math.floor(math.log10(abs(x)))
    r = round(x, 2 - exp)
    if r != 0:
        exp = math.floor(math.log10(abs(r)))
    return f"{r:.{max(0, 2 - exp)}f}"


def fmt_num(x):
    """3 significant digits, with k/M/G suffix from 1000 up: 612, 45.2, 12.3k."""
    if x is None:
        return "?"
    s = sig3(x)
    r = float(s)
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(r) >= scale:
            return sig3(r / scale) + suffix
    return s


def fmt_ratio(r):
    if r is None:
        return "—"
    if r >= 9.95:
        return f"×{r:.0f}"
    if r >= 0.995:
        return f"×{r:.1f}"
    if r >= 0.0995:
        return f"×{r:.2f}"
    return f"×{r:.3f}"


def fmt_bytes(b):
    if b is None:
        return "—"
    for scale, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if b >= scale * 0.9995:
            return f"{sig3(b / scale)} {unit}"
    return f"{sig3(b)} B"


STATE_LABEL = {"fail": "FAIL", "timeout": "TIMEOUT", "crash": "CRASH",
               "unsupported": "unsupported", "bad_result": "BAD RESULT",
               "noresult": "NO RESULT", "error": "EXEC ERROR", "missing": "—"}


def fmt_cell(s, cell_unit):
    if s["state"] in ("ok", "partial"):
        star = "*" if s["state"] == "partial" else ""
        unit = f" {s['unit']}" if s["unit"] != cell_unit else ""  # only when it differs
        if s["min"] == s["max"]:
            return f"{fmt_num(s['median'])}{unit}{star}"
        return f"{fmt_num(s['median'])} ({fmt_num(s['min'])}–{fmt_num(s['max'])}){unit}{star}"
    return STATE_LABEL.get(s["state"], s["state"])


def main_table(summary, names, baseline):
    peers = [n for n in names if n != baseline]
    headers = ["workload", "workers", "unit"] + names + [f"{p}/{baseline}" for p in peers]
    rows = []
    for c in summary:
        rows.append([c["workload"], str(c["workers"]), c["label"]]
                    + [fmt_cell(c["runtimes"][n], c["unit"]) for n in names]
                    + [fmt_ratio(c["ratios"][p]) for p in peers])
    return headers, rows


def rss_table(summary, names, floor_kib):
    headers = ["workload", "workers", "n tasks"] + [f"{n} B/task" for n in names]
    rows = []
    for c in summary:
        if c["workload"] not in RSS_WORKLOADS:
            continue
        n = next((s.get("n_tasks") for s in c["runtimes"].values() if s.get("n_tasks")), None)
        rows.append([c["workload"], str(c["workers"]), fmt_num(n) if n else "?"]
                    + [fmt_rss_cell(c["runtimes"][nm], floor_kib) for nm in names])
    return headers, rows


def fmt_rss_cell(s, floor_kib):
    if s["rss_bytes_per_task"] is None:
        return STATE_LABEL.get(s["state"], "—")
    at_floor = floor_kib and s["rss_kib_median"] <= floor_kib * 1.05
    return ("<=" if at_floor else "") + fmt_bytes(s["rss_bytes_per_task"])


def text_table(headers, rows):
    """Aligned plain-text table: first column left-aligned, the rest right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep] + [line(r) for r in rows])


def md_table(headers, rows):
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join([":---"] + ["---:"] * (len(headers) - 1)) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def footer_line(meta):
    m, t = meta["machine"], meta["toolchain"]
    parts = [f"{m['cpu_model']}", f"{m['cpus_usable']}/{m['cores_online']} CPUs usable",
             m["kernel"], m["memory"]]
    parts += [v for v in (t.get("compiler"), t.get("go"), t.get("rustc"),
                          t.get("boost") and "boost " + t["boost"],
                          t.get("tbb") and "tbb " + t["tbb"]) if v]
    return "machine: " + " | ".join(p for p in parts if p) + f" | {meta['date']}"


# ---------------------------------------------------------------------- the SVG

PEER_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
               "#8c564b", "#e377c2", "#17becf"]


def log_domain(ratios):
    """Nice log-scale bounds (1-2-5 steps) that include 1 and every ratio."""
    lo = min([r for r in ratios if r > 0] + [1.0])
    hi = max([r for r in ratios if r > 0] + [1.0])
    steps = [m * 10 ** e for e in range(-6, 7) for m in (1, 2, 5)]
    lo_d = max([s for s in steps if s <= lo / 1.05] or [steps[0]])
    hi_d = min([s for s in steps if s >= hi * 1.05] or [steps[-1]])
    lo_d, hi_d = min(lo_d, 0.5), max(hi_d, 2)
    decades = math.log10(hi_d / lo_d)
    mults = (1, 2, 5) if decades <= 3 else (1,)
    ticks = [s for s in steps if lo_d <= s <= hi_d and round(s / 10 ** math.floor(
        math.log10(s) + 1e-9), 6) in mults]
    return lo_d, hi_d, ticks


def tick_label(t):
    return f"×{t:g}" if t >= 0.001 else f"×{t:.0e}"


def render_svg(summary, names, baseline, meta):
    peers = [n for n in names if n != baseline]
    all_r = [c["ratios"][p] for c in summary for p in peers if c["ratios"].get(p)]
    lo, hi, ticks = log_domain(all_r)
    W, left, right, row_h, head_h = 960, 230, 90, 17, 24
    x0, x1 = left, W - right

    def X(v):
        return x0 + (x1 - x0) * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    top = 92
    n_rows = sum(len(summary) for _ in peers)
    plot_h = n_rows * row_h + len(peers) * head_h + 8
    H = top + plot_h + 50
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'viewBox="0 0 {W} {H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         text(W / 2, 24, f"Time ratio peer / {baseline} per workload (log scale, lower time is better)",
              size=16, anchor="middle", weight="bold"),
         text(W / 2, 44, f"{meta['machine']['cpu_model']}, {meta['machine']['cpus_usable']} CPUs, "
              f"{meta['machine']['kernel']} — {meta['date']}"
              + (" — quick mode" if meta["config"]["quick"] else ""),
              size=12, anchor="middle", fill="#444"),
         text(W / 2, 62, f"bar right of ×1: {baseline} faster by that factor; "
              f"left of ×1: peer faster", size=11, anchor="middle", fill="#444")]
    axis_y0, axis_y1 = top, top + plot_h
    for t in ticks:
        x = X(t)
        strong = abs(t - 1) < 1e-12
        o.append(f'<line x1="{x:.1f}" y1="{axis_y0}" x2="{x:.1f}" y2="{axis_y1}" '
                 f'stroke="{"#000" if strong else "#ddd"}" stroke-width="{2 if strong else 1}"/>')
        for y in (axis_y0 - 6, axis_y1 + 16):
            o.append(text(x, y, tick_label(t), size=11, anchor="middle",
                          weight="bold" if strong else None))
    y = top
    for i, peer in enumerate(peers):
        color = PEER_COLORS[i % len(PEER_COLORS)]
        y += head_h
        o.append(text(12, y - 7, f"{peer} / {baseline}", size=13, weight="bold", fill=color))
        for c in summary:
            r = c["ratios"][peer]
            cy = y + row_h / 2
            o.append(text(x0 - 8, cy + 4, f"{c['workload']}  ({c['workers']}w)",
                          anchor="end", size=11))
            if r:
                xa, xb = sorted((X(1), X(min(max(r, lo), hi))))
                o.append(f'<rect x="{xa:.1f}" y="{y + 2}" width="{max(xb - xa, 1):.1f}" '
                         f'height="{row_h - 4}" fill="{color}" fill-opacity="0.8">'
                         f'<title>{escape(peer)} {escape(c["workload"])} {c["workers"]}w: '
                         f'{escape(fmt_ratio(r))}</title></rect>')
                lx = (X(min(r, hi)) if r >= 1 else X(1)) + 5
                o.append(text(lx, cy + 4, fmt_ratio(r), size=11))
            else:
                why = STATE_LABEL.get(c["runtimes"][peer]["state"], "—")
                if c["runtimes"][peer]["state"] in ("ok", "partial"):
                    why = STATE_LABEL.get(c["runtimes"][baseline]["state"], "—") + f" ({baseline})"
                o.append(text(X(1) + 5, cy + 4, f"— {why}", size=11, fill="#888"))
            y += row_h
    cfg = meta["config"]
    o.append(text(W / 2, H - 12, f"{cfg['warmup']} quick-sized warm-up + {cfg['runs']} interleaved "
                  f"rounds per cell; bars are ratios of medians; raw runs in compare.json",
                  size=10, anchor="middle", fill="#888"))
    o.append("</svg>")
    return "\n".join(o) + "\n"


def text(x, y, s, size=12, anchor="start", weight=None, fill="#000"):
    w = f' font-weight="{weight}"' if weight else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}"{w}>{escape(s)}</text>')


# -------------------------------------------------------- machine & toolchain

def read_file(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def first_line(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (p.stdout or p.stderr).strip().splitlines()
    return lines[0].strip() if p.returncode == 0 and lines else None


def machine_info():
    cpuinfo = read_file("/proc/cpuinfo")
    m = re.search(r"^(?:model name|Model|cpu model)\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+)\s*kB", read_file("/proc/meminfo"), re.M)
    u = platform.uname()
    return {"cpu_model": m.group(1).strip() if m else u.machine,
            "cores_online": os.cpu_count(),
            "cpus_usable": usable_cpus(),
            "kernel": f"{u.system} {u.release} {u.machine}",
            "hostname": u.node,
            "memory": f"{int(mem.group(1)) / 1048576:.1f} GiB" if mem else None,
            "python": platform.python_version()}


def toolchain_versions():
    t = {"compiler": first_line(["c++", "--version"]),
         "go": first_line(["go", "version"]),
         "rustc": first_line(["rustc", "--version"])}
    m = re.search(r'#define\s+BOOST_LIB_VERSION\s+"([^"]+)"',
                  read_file("/usr/include/boost/version.hpp"))
    t["boost"] = m.group(1).replace("_", ".") if m else None
    try:
        p = subprocess.run(["dpkg", "-s", "libtbb-dev"], capture_output=True, text=True, timeout=20)
        m = re.search(r"^Version:\s*(\S+)", p.stdout, re.M)
        t["tbb"] = m.group(1) if p.returncode == 0 and m else None
    except (OSError, subprocess.SubprocessError):
        t["tbb"] = None
    return t


# ------------------------------------------------------------------------ main

def write_outputs(out_dir, meta, runs, summary, names, baseline, not_built):
    os.makedirs(out_dir, exist_ok=True)
    doc = dict(meta, runs=runs, cells=summary)
    with open(os.path.join(out_dir, "compare.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(out_dir, "compare.svg"), "w", encoding="utf-8") as f:
        f.write(render_svg(summary, names, baseline, meta))
    with open(os.path.join(out_dir, "compare.md"), "w", encoding="utf-8") as f:
        f.write(render_markdown(meta, summary, names, baseline, not_built))


def render_markdown(meta, summary, names, baseline, not_built):
    cfg = meta["config"]
    lines = [f"## Runtime comparison (baseline: {baseline})", "",
             f"- **Machine:** {footer_line(meta)[len('machine: '):]}",
             f"- **Method:** {cfg['warmup']} quick-sized warm-up + {cfg['runs']} interleaved "
             f"rounds per cell, "
             f"each round in another order (start and stride vary, so every runtime "
             f"follows every other); median (min–max) of the runs"
             + ("; `--quick` sizes" if cfg["quick"] else ""),
             f"- **Ratio:** peer / {baseline} of the medians, lower is better for every "
             f"workload, so ×5.2 means {baseline} is 5.2× faster",
             "- **Command:** `" + " ".join(shlex.quote(a) for a in meta["command"]) + "`"]
    lines += [f"- **Binary {n}:** `" + " ".join(shlex.quote(a) for a in
              [p, "--workload", "NAME", "--workers", "N"] + (["--quick"] if cfg["quick"] else []))
              + "`" for n, p in cfg["runtimes"].items() if n in names]
    if not_built:
        lines.append("- **Not built:** " + ", ".join(not_built))
    if meta["interrupted"]:
        lines.append("- **Interrupted:** partial results")
    lines += ["", md_table(*main_table(summary, names, baseline)), ""]
    h, rows = rss_table(summary, names, meta["rss_floor_kib"])
    if rows:
        lines += ["Peak RSS per task (median of `ru_maxrss` × 1024 / n; includes the "
                  "process's fixed footprint; " + floor_note(meta) + "):",
                  "", md_table(h, rows), ""]
    lines += notes_lines(summary)
    return "\n".join(lines).rstrip() + "\n"


def floor_note(meta):
    f = meta.get("rss_floor_kib")
    if not f:
        return "ru_maxrss floor unknown"
    return f"ru_maxrss floor {fmt_bytes(f * 1024)}, `<=` = at floor"


def notes_lines(summary):
    out = []
    if any(s["state"] == "partial" for c in summary for s in c["runtimes"].values()):
        out.append("`*` some runs of this cell failed; median of the successful ones.")
    out += [n for c in summary for n in c["notes"]]
    return out


def main(argv=None):
    try:
        sys.stdout.reconfigure(errors="replace")
        sys.stderr.reconfigure(errors="replace")
    except AttributeError:
        pass
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    names_all = [n for n, _ in args.runtimes]
    if args.baseline not in names_all:
        log(f"error: baseline {args.baseline!r} is not among --runtime names ({', '.join(names_all)})")
        return 1
    built = [(n, p) for n, p in args.runtimes if os.path.exists(p)]
    not_built = [n for n, p in args.runtimes if not os.path.exists(p)]
    for n in not_built:
        log(f"not built: {n} ({dict(args.runtimes)[n]}) — skipped")
    if args.baseline in not_built:
        log(f"error: baseline binary for {args.baseline!r} does not exist")
        return 1
    built.sort(key=lambda rt: rt[0] != args.baseline)  # baseline column first
    names = [n for n, _ in built]

    meta = {"schema": 1,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": [sys.executable] + sys.argv if argv is None else ["compare.py"] + list(argv),
            "machine": machine_info(), "toolchain": toolchain_versions(),
            "spawn_method": None, "rss_floor_kib": None,
            "config": {"baseline": args.baseline, "runs": args.runs, "warmup": args.warmup,
                       "quick": args.quick, "timeout_s": args.timeout,
                       "direct_spawn": args.direct_spawn,
                       "workloads": args.workload_list, "workers": args.worker_list,
                       "runtimes": dict(args.runtimes), "not_built": not_built}}
    cells = [(w, n) for w in args.workload_list for n in args.worker_list]
    runs, interrupted, t0 = [], False, time.monotonic()
    spawner = make_spawner(args.direct_spawn)
    with tempfile.TemporaryDirectory(prefix="compare-") as tmpdir:
        meta["spawn_method"] = spawner.method
        meta["rss_floor_kib"] = measure_rss_floor(spawner, tmpdir)

        def run(path, w, n, warmup):
            return run_once(spawner, tmpdir, path, w, n, args.quick or warmup, args.timeout)
        try:
            for i, (w, n) in enumerate(cells, 1):
                log(f"[{i:2d}/{len(cells)}] {w} workers={n}")
                run_cell(built, w, n, args, run, runs, log)
        except KeyboardInterrupt:
            interrupted = True
            log("interrupted — writing partial results")
        finally:
            spawner.close()
    meta["elapsed_s"] = round(time.monotonic() - t0, 3)
    meta["interrupted"] = interrupted

    summary = summarize(runs, names, args.baseline, cells)
    attach_task_counts(summary, runs)
    write_outputs(args.out_dir, meta, runs, summary, names, args.baseline, not_built)
    print_report(summary, names, args, meta, not_built)

    if interrupted:
        return 130
    if not any(r["runtime"] == args.baseline and r["status"] == "ok" for r in runs):
        log(f"error: baseline {args.baseline!r} produced no usable result")
        return 1
    return 0


def attach_task_counts(summary, runs):
    """Record the task count n reported for each cell (for the RSS table)."""
    for c in summary:
        for name, s in c["runtimes"].items():
            ns = [r["n"] for r in runs if r["runtime"] == name and r["workload"] == c["workload"]
                  and r["workers"] == c["workers"] and r["status"] == "ok"
                  and isinstance(r.get("n"), (int, float))]
            s["n_tasks"] = statistics.median(ns) if ns else None


def print_report(summary, names, args, meta, not_built):
    print()
    print(text_table(*main_table(summary, names, args.baseline)))
    h, rows = rss_table(summary, names, meta["rss_floor_kib"])
    if rows:
        print()
        print("peak RSS per task (median ru_maxrss*1024/n, includes fixed process footprint; "
              + floor_note(meta) + ")")
        print(text_table(h, rows))
    print()
    for line in notes_lines(summary):
        print(line)
    if not_built:
        print("not built: " + ", ".join(not_built))
    if meta["interrupted"]:
        print("INTERRUPTED: partial results")
    print(f"ratio = peer/{args.baseline} of medians (>1: {args.baseline} faster); "
          f"{args.warmup} quick-sized warm-up + {args.runs} rounds, interleaved; "
          f"{meta['elapsed_s']:.1f} s total; results in {args.out_dir}")
    print(footer_line(meta))


if __name__ == "__main__":
    sys.exit(main())
