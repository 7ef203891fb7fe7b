#!/usr/bin/env bash
# The live dashboard's cost to the measurement: the engine bench's no-op closed loop run
# with and without `--dashboard` and a browser-like client reading its event stream,
# interleaved (off, on, off, on, ...) so drift on a shared machine hits both alike.
# Prints each run's throughput, the ratio of the medians and of each pair, and the CPU time
# the dashboard's own threads used as a share of the process's (the steadier figure on a
# noisy machine).
#
#   scripts/dashboard-overhead.sh [PAIRS] [SECONDS]     (defaults 5 pairs of 10 s)
#
# Needs a release build (cargo build --release) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs="${1:-5}"
secs="${2:-10}"
bin=target/release/benchctl
[ -x "$bin" ] || { echo "error: build first: cargo build --release" >&2; exit 2; }
command -v curl >/dev/null || { echo "error: curl is needed" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/noop.kdl" <<EOF
scenario "dashboard-overhead" {
    description "no-op closed loop, as in benches/engine.rs"
    workload "noop" kind="synthetic" {
        latency "fixed" value="0s"
    }
    phase "closed" duration="${secs}s" {
        drive "noop" concurrency=2
    }
    expect "noop.throughput" ">" "1/s"
}
EOF

throughput() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["benchmarks"]["noop"]["throughput"])' "$1"; }

# CPU time per thread of a running benchctl, sampled until it exits: prints the ticks of the
# dashboard's own threads (processor and server) and of the whole process.
sample() {
    python3 - "$1" <<'PY'
import os, sys, time
pid, last = sys.argv[1], {}
while os.path.exists(f"/proc/{pid}/task"):
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            comm = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            f = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
            last[tid] = (comm, int(f[11]) + int(f[12]))
    except OSError:
        pass
    time.sleep(0.2)
dash = sum(t for c, t in last.values() if c.startswith(("benchctl-live", "benchctl-dashbo")))
print(dash, sum(t for _, t in last.values()))
PY
}

# One run; $1 is off or on. Both are sampled alike; `on` also has a client reading the page
# and its event stream to the end.
one() {
    local mode=$1 i=$2 pid sampler url=""
    if [ "$mode" = on ]; then
        "$bin" run --quiet --dashboard 127.0.0.1:0 --out "$work/$mode$i" "$work/noop.kdl" 2> "$work/$mode$i.err" &
    else
        "$bin" run --quiet --out "$work/$mode$i" "$work/noop.kdl" 2> "$work/$mode$i.err" &
    fi
    pid=$!
    sample "$pid" > "$work/$mode$i.cpu" &
    sampler=$!
    if [ "$mode" = on ]; then
        for _ in $(seq 1 100); do
            url="$(grep -o 'http://[^ ]*' "$work/$mode$i.err" 2>/dev/null | head -1 || true)"
            [ -n "$url" ] && break
            sleep 0.05
        done
        curl -s "$url" > /dev/null || true
        curl -s -N "${url%/}/events" > "$work/$mode$i.events" || true
    fi
    wait "$pid" || true
    wait "$sampler" || true
}

off=() on=() dash_all=0 proc_all=0
for i in $(seq 1 "$pairs"); do
    one off "$i"
    off+=("$(throughput "$work/off$i/result.json")")
    one on "$i"
    on+=("$(throughput "$work/on$i/result.json")")
    read -r dash_ticks all_ticks < "$work/on$i.cpu" || true
    dash_all=$((dash_all + ${dash_ticks:-0}))
    proc_all=$((proc_all + ${all_ticks:-0}))
    printf 'pair %d: off %.0f req/s, on %.0f req/s (%s events read)\n' "$i" "${off[-1]}" "${on[-1]}" "$(grep -c '^data:' "$work/on$i.events")"
done

python3 - "${off[*]}" "${on[*]}" "${dash_all:-0}" "${proc_all:-0}" <<'EOF'
import statistics, sys
off = [float(x) for x in sys.argv[1].split()]
on = [float(x) for x in sys.argv[2].split()]
dash, proc = int(sys.argv[3]), int(sys.argv[4])
mo, mn = statistics.median(off), statistics.median(on)
ratios = [b / a for a, b in zip(off, on)]
print(f"median off {mo:,.0f} req/s, on {mn:,.0f} req/s: on/off = {mn / mo:.4f} ({(mn / mo - 1) * 100:+.2f} %)")
print(f"per-pair on/off: median {statistics.median(ratios):.4f}, range {min(ratios):.4f}-{max(ratios):.4f}")
print(f"spread: off {min(off):,.0f}-{max(off):,.0f}, on {min(on):,.0f}-{max(on):,.0f}")
if proc:
    print(f"CPU of the dashboard's threads: {dash} of {proc} ticks of the process ({dash / proc * 100:.3f} %)")
EOF
