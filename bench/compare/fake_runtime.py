#!/usr/bin/env python3
"""Fake runtime binary for testing compare.py (implements the runtime interface).

    fake_runtime.py [--name NAME] --workload W --workers N [--quick]

Sleeps a little and prints one plausible `RESULT {json}` line.  The runtime name
comes from --name, else $FAKE_NAME, else the program name: a symlink called
`fake_go` pretends to be "go" (that is how selftest.sh makes several runtimes
out of this one file, since compare.py passes no extra arguments).

Built-in behaviour: "tbb" reports unsupported for `yield` (as real TBB would).
Scenario injection via $FAKE_BEHAVIOUR, a comma-separated list of
    RUNTIME:WORKLOAD[:WORKERS]=ACTION        (RUNTIME or WORKLOAD may be *)
with ACTION one of
    unsupported   report {"unsupported": true}
    badcheck      report check != "ok"
    hang          sleep forever (to exercise the runner's timeout)
    crash         print nothing and die with SIGSEGV
    noresult      exit 0 without a RESULT line
    flaky         crash on roughly every other run
e.g. FAKE_BEHAVIOUR='go:sleepers=hang,boost_fiber:queue_mpmc=badcheck'.
"""

import argparse
import json
import os
import random
import signal
import sys
import time
import zlib

# (unit, spindle-ish value in quick mode, scales with workers?)
WORKLOADS = {
    "skynet":          ("ms", 60.0, True),
    "spawn_join":      ("ns", 90.0, True),
    "yield":           ("ns", 25.0, False),
    "pingpong":        ("ns", 120.0, False),
    "sleepers":        ("ms", 40.0, False),
    "sleepers_event":  ("ms", 55.0, False),
    "gather_10k":      ("ns", 350.0, True),
    "queue_mpmc":      ("ns", 45.0, False),
    "mutex_contended": ("ns", 60.0, False),
}
SPEED = {"spindle": 1.0, "go": 1.8, "tokio": 1.3, "boost_fiber": 2.5, "tbb": 1.1}
BYTES_PER_TASK = {"spindle": 2048, "go": 2700, "tokio": 600, "boost_fiber": 9000, "tbb": 1500}
BUILTIN = "tbb:yield=unsupported"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name")
    p.add_argument("--workload", required=True)
    p.add_argument("--workers", type=int, required=True)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    name = a.name or os.environ.get("FAKE_NAME") or \
        os.path.basename(sys.argv[0]).removesuffix(".py").removeprefix("fake_")
    head = {"runtime": name, "workload": a.workload, "workers": a.workers}

    if a.workload not in WORKLOADS:
        emit(dict(head, unsupported=True, reason="unknown workload"))
        return 0
    action = lookup_action(name, a.workload, a.workers)
    if action == "unsupported":
        emit(dict(head, unsupported=True, reason=f"{name} has no equivalent of {a.workload}"))
        return 0
    if action == "hang":
        time.sleep(10 ** 6)
    if action == "crash" or (action == "flaky" and random.random() < 0.5):
        print("fake: simulated segfault", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
    if action == "noresult":
        print("fake: forgot to print a result")
        return 0

    unit, base, parallel = WORKLOADS[a.workload]
    # Deterministic per-(runtime, workload) character plus a little run-to-run noise.
    jitter = 0.7 + 0.6 * (zlib.crc32(f"{name}/{a.workload}".encode()) % 1000) / 1000
    value = base * SPEED.get(name, 1.5) * (1 if name == "spindle" else jitter)
    if parallel:
        value /= a.workers ** 0.8
    if not a.quick:
        value *= 10 if unit == "ms" else 1
    value *= random.uniform(0.96, 1.04)

    n = {"skynet": 1111111, "gather_10k": 10000}.get(a.workload, 100000 if a.quick else 1000000)
    ballast = None
    if a.workload.startswith("sleepers"):
        n = 10000 if a.quick else 100000
        ballast = b"\x01" * (n * BYTES_PER_TASK.get(name, 4096))  # touched pages -> RSS
    time.sleep(random.uniform(0.05, 0.15) if a.quick else random.uniform(0.3, 0.5))
    del ballast

    check = "mismatch: expected 499999500000" if action == "badcheck" else "ok"
    emit(dict(head, value=round(value, 3), unit=unit, n=n, check=check))
    return 0


def lookup_action(name, workload, workers):
    spec = ",".join(s for s in (BUILTIN, os.environ.get("FAKE_BEHAVIOUR", "")) if s)
    action = None
    for item in spec.split(","):
        key, _, act = item.strip().partition("=")
        parts = key.split(":")
        if len(parts) < 2:
            continue
        rt, wl, wk = parts[0], parts[1], (parts[2] if len(parts) > 2 else "*")
        if rt in ("*", name) and wl in ("*", workload) and wk in ("*", str(workers)):
            action = act  # later entries win
    return action


def emit(obj):
    print("fake runtime starting", flush=True)  # noise the runner must ignore
    print("RESULT " + json.dumps(obj), flush=True)


if __name__ == "__main__":
    sys.exit(main())
