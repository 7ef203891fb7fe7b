#!/usr/bin/env python3
"""Capacity search against a server of known capacity: wall time and accuracy.

Starts scripts/slot-server.py (N slots, fixed service), runs scenarios/capacity.kdl with
benchctl (--new) and, for comparison, a fixed-step rate search (10 s steps, then bisection)
with an older benchctl (--old, whose `search` has only fixed steps), R times each on the
same server and SLO, and prints each search's wall time and answer beside the queueing
theory's: exactly N for concurrency, the M/D/N queue's rate for Poisson arrivals.

    python3 scripts/capacity-compare.py --new target/release/benchctl --old /tmp/benchctl-old --runs 3
"""

import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

OLD_SCENARIO = """scenario "fixed-steps" {{
    seed {seed}
    workload "served" kind="openai" {{
        endpoint "{url}" model="slots" api="chat" stream=#true timeout="120s"
        prompt tokens=128
        prefix "unique"
        output tokens=64
        sampling temperature=0.0
    }}
    warmup duration="5s" {{ drive "served" concurrency=1; }}
    phase "capacity" {{ search "served" rate="{rate}" arrivals="poisson" until="ttft.p95 > {bound} or error_rate > 5%"; }}
}}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mdc_wait_p95(lam, c, service, n=300_000, seed=7):
    """p95 of the wait in an M/D/c queue, first come first served: customer k starts at
    max(its arrival, the start of customer k - c plus the service time)."""
    r = random.Random(seed)
    starts = [-1e18] * c
    t, waits = 0.0, []
    for k in range(n):
        t += r.expovariate(lam)
        s = max(t, starts[k % c] + service)
        starts[k % c] = s
        waits.append(s - t)
    waits = sorted(waits[n // 10:])
    return waits[int(len(waits) * 0.95)]


def mdc_capacity(c, service, wait_bound):
    lo, hi = 0.01, c / service * 0.999
    for _ in range(30):
        mid = (lo + hi) / 2
        if mdc_wait_p95(mid, c, service) < wait_bound:
            lo = mid
        else:
            hi = mid
    return lo


def run(cmd, out):
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - t0
    try:
        doc = json.load(open(os.path.join(out, "result.json")))
    except OSError:
        sys.exit(f"no result from {' '.join(cmd)}:\n{p.stdout[-3000:]}")
    return doc, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--new", required=True)
    ap.add_argument("--old")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--ttft", type=float, default=0.040, help="seconds")
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--gap", type=float, default=0.005, help="seconds")
    ap.add_argument("--bound", type=float, default=0.050, help="the TTFT p95 bound, seconds")
    ap.add_argument("--rate", default="2/s..50/s")
    ap.add_argument("--step", help="the new search's step-duration (default: the scenario's)")
    ap.add_argument("--over", default="concurrency,rate", help="the new searches to run")
    args = ap.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    server = subprocess.Popen([sys.executable, os.path.join(HERE, "slot-server.py"), "--port", str(port),
                               "--slots", str(args.slots), "--ttft", f"{args.ttft}s", "--tokens", str(args.tokens),
                               "--gap", f"{args.gap}s"], stdout=subprocess.DEVNULL)
    time.sleep(1.0)
    try:
        service = args.ttft + (args.tokens - 1) * args.gap
        # The client sees the service's TTFT plus a little transport; measured once.
        bound_ms = f"{args.bound * 1e3:g}ms"
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            shipped = open(os.path.join(ROOT, "scenarios", "capacity.kdl")).read()
            for i in range(args.runs):
                # Each run its own seed (arrivals, prompts), as the old searches get.
                scenario = os.path.join(tmp, f"capacity-{i}.kdl")
                text = re.sub(r"\bseed \d+", f"seed {7 + i}", shipped)
                if args.step:
                    text = re.sub(r'step-duration="[^"]*"', f'step-duration="{args.step}"', text)
                open(scenario, "w").write(text)
                for over in args.over.split(","):
                    out = os.path.join(tmp, f"new-{over}-{i}")
                    doc, wall = run([args.new, "run", scenario, "--out", out, "--quiet",
                                     "--set", f"base_url={url}", "--set", "model=slots", "--set", f"ttft_p95={bound_ms}",
                                     "--set", f"over={over}", "--set", f"rate={args.rate}"], out)
                    c = doc["capacity"]
                    base = min(s["slos"][0]["measured"] or 1 for s in c["steps"] if s["load"] == c["steps"][0]["load"])
                    rows.append(("new", over, i, c["duration_s"], c["capacity"], c["low"], c["high"], len(c["steps"]), base))
                if args.old:
                    out = os.path.join(tmp, f"old-{i}")
                    path = os.path.join(tmp, f"old-{i}.kdl")
                    open(path, "w").write(OLD_SCENARIO.format(seed=7 + i, url=url, rate=args.rate, bound=bound_ms))
                    doc, wall = run([args.old, "run", path, "--out", out, "--quiet"], out)
                    ph = [p for p in doc["phases"] if p["name"] == "capacity"][0]
                    st = doc["stress_test"]
                    rows.append(("old", "rate", i, ph["duration_s"], st["max_sustainable_load"], None, None, len(st["levels"]), None))
        overhead = min(r[8] for r in rows if r[8]) - args.ttft
        truth_rate = mdc_capacity(args.slots, service, args.bound - args.ttft - max(overhead, 0.0))
        print(f"server: {args.slots} slots, service {service * 1e3:g} ms (TTFT {args.ttft * 1e3:g} ms); SLO TTFT p95 < {bound_ms}; "
              f"transport overhead {overhead * 1e3:.1f} ms")
        print(f"truth: concurrency {args.slots}; rate {truth_rate:.2f}/s (M/D/{args.slots})")
        print("search  over         run  seconds  answer  interval         steps  error")
        for who, over, i, secs, cap, lo, hi, steps, _ in rows:
            truth = args.slots if over == "concurrency" else truth_rate
            err = "-" if cap is None else f"{(cap / truth - 1) * 100:+.1f}%"
            iv = "-" if lo is None and hi is None else f"{lo if lo is not None else '?'}..{hi if hi is not None else '?'}"
            print(f"{who:6}  {over:11}  {i:3}  {secs:7.1f}  {cap if cap is not None else '-':>6}  {iv:15}  {steps:5}  {err}")
        print("summary: search, over, mean seconds, answers (min..max), mean |error|, intervals holding the truth")
        for key in sorted({(r[0], r[1]) for r in rows}):
            got = [r for r in rows if (r[0], r[1]) == key]
            truth = args.slots if key[1] == "concurrency" else truth_rate
            caps = [r[4] for r in got if r[4] is not None]
            errs = [abs(c / truth - 1) * 100 for c in caps]
            inside = sum(1 for r in got if r[5] is not None and r[6] is not None and r[5] <= truth <= r[6])
            print(f"  {key[0]:6} {key[1]:11} {sum(r[3] for r in got) / len(got):7.1f} s  "
                  f"{round(min(caps), 2) if caps else '-'}..{round(max(caps), 2) if caps else '-'}  "
                  f"{sum(errs) / len(errs) if errs else float('nan'):.1f} %  {inside}/{len(got)}")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
