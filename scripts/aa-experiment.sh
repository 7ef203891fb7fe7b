#!/usr/bin/env bash
# Measures the regression gate's false-alarm rate and power on this machine (docs/evaluation.md):
# TRIALS times, run the synthetic scenario scripts/aa-experiment.kdl three times (A, A', and B
# with the median raised by 20 %), then compare A with A' (every gated metric flagged is a false
# alarm) and A with B (a trial is detected when any metric is flagged as regressed). Does this
# with single runs (within-run bootstrap + noise floor) and with REPEAT runs per result
# (between-run Welch test).
#
#   scripts/aa-experiment.sh [TRIALS] [REPEAT]       (defaults 20 and 3; about 13 minutes)
#
# The same A/A question for the history view (`benchctl dashboard DIR`): RUNS identical runs
# of the scenario into one folder, then every regression or step marker the view puts on
# them is a false one. Prints the markers per metric and their share of the points.
#
#   scripts/aa-experiment.sh history [RUNS]         (default 20; about 2 minutes)
#   OLD=path/to/benchctl scripts/aa-experiment.sh history    also counts another build's markers
#   MEDIAN=2ms DURATION=1s scripts/aa-experiment.sh history  a faster service, shorter runs
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
if [ "${1:-}" = history ]; then
    runs="${2:-20}"
    bin=target/release/benchctl
    work="$(mktemp -d)"
    trap 'kill "$dash" 2>/dev/null || true; rm -rf "$work"' EXIT
    for i in $(seq -w 1 "$runs"); do
        "$bin" run scripts/aa-experiment.kdl --quiet --out "$work/runs/r$i" --set median="${MEDIAN:-20ms}" --set duration="${DURATION:-3s}" >/dev/null 2>&1 || true
        echo "history run $i of $runs done" >&2
    done
    count() { # BIN LABEL: the markers that build's history view puts on the runs
        "$1" dashboard "$work/runs" --addr 127.0.0.1:0 2>"$work/dash.log" &
        dash=$!
        for _ in $(seq 1 100); do grep -q "history: http" "$work/dash.log" 2>/dev/null && break; sleep 0.1; done
        url="$(grep -o 'http://[^ ]*' "$work/dash.log" | head -1)"
        curl -s "${url%/}/api/runs" >"$work/history.json"
        kill "$dash" 2>/dev/null || true
        wait "$dash" 2>/dev/null || true
        python3 - "$work/history.json" "$2" <<'PY'
import json, sys, collections
h = json.load(open(sys.argv[1]))
points = sum(len(ms) for r in h["runs"] for ms in r["workloads"].values())
by = collections.Counter((m["kind"], m["metric"]) for m in h["markers"])
print(f"{sys.argv[2]}: {len(h['runs'])} identical runs, {points} points (runs x workloads x metrics)")
for (kind, metric), n in sorted(by.items()):
    print(f"  {kind:10} {metric:12} {n}")
n = len(h["markers"])
print(f"  false markers: {n} of {points} points ({100 * n / max(points, 1):.1f} %)")
for m in h["markers"]:
    print(f"  {m['kind']} {m['metric']} run {m['run']}: {m['message']}; {m.get('rule', '(no rule recorded)')}")
PY
    }
    count "$bin" "this build"
    if [ -n "${OLD:-}" ]; then count "$OLD" "$OLD"; fi
    exit 0
fi
trials="${1:-20}"
repeat="${2:-3}"
bin=target/release/benchctl
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
scenario=scripts/aa-experiment.kdl

run() { # OUT REPEAT MEDIAN
    "$bin" run "$scenario" --quiet --out "$1" --set repeat="$2" --set median="$3" >/dev/null 2>&1 || true
}
summarise() { # MODE: prints the counts of one mode from the compare JSON files
    python3 - "$work" "$1" <<'PY'
import json, sys, glob, os
work, mode = sys.argv[1], sys.argv[2]
aa_flagged = aa_total = aa_nc = 0
for f in sorted(glob.glob(os.path.join(work, mode, "aa-*.json"))):
    c = json.load(open(f))
    if c.get("not_comparable"):
        aa_nc += 1
        continue
    aa_total += len(c["changes"])
    aa_flagged += sum(1 for m in c["changes"] if m["verdict"] == "regressed")
det = det_total = det_nc = 0
for f in sorted(glob.glob(os.path.join(work, mode, "slow-*.json"))):
    c = json.load(open(f))
    if c.get("not_comparable"):
        det_nc += 1
        continue
    det_total += 1
    det += 1 if c["regressed"] else 0
method = "between runs (Welch)" if mode == "repeated" else "within run (bootstrap + noise floor)"
print(f"{mode:9} {method}: A/A flagged {aa_flagged} of {aa_total} gated metrics "
      f"({100 * aa_flagged / max(aa_total, 1):.1f} %), {aa_nc} pairs not comparable; "
      f"20 % slowdown detected in {det} of {det_total} trials ({100 * det / max(det_total, 1):.0f} %), "
      f"{det_nc} not comparable")
PY
}
for mode in single repeated; do
    r=1
    [ "$mode" = repeated ] && r="$repeat"
    mkdir -p "$work/$mode"
    for t in $(seq 1 "$trials"); do
        run "$work/$mode/a$t" "$r" 20ms
        run "$work/$mode/b$t" "$r" 20ms
        run "$work/$mode/s$t" "$r" 24ms
        "$bin" compare "$work/$mode/a$t/result.json" "$work/$mode/b$t/result.json" --json >"$work/$mode/aa-$t.json" || true
        "$bin" compare "$work/$mode/a$t/result.json" "$work/$mode/s$t/result.json" --json >"$work/$mode/slow-$t.json" || true
        echo "$mode trial $t of $trials done" >&2
    done
    summarise "$mode"
done
