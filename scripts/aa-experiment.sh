#!/usr/bin/env bash
# Measures the regression gate's false-alarm rate and power on this machine (docs/evaluation.md):
# TRIALS times, run the synthetic scenario scripts/aa-experiment.kdl three times (A, A', and B
# with the median raised by 20 %), then compare A with A' (every gated metric flagged is a false
# alarm) and A with B (a trial is detected when any metric is flagged as regressed). Does this
# with single runs (within-run bootstrap + noise floor) and with REPEAT runs per result
# (between-run Welch test).
#
#   scripts/aa-experiment.sh [TRIALS] [REPEAT]       (defaults 20 and 3; about 13 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-20}"
repeat="${2:-3}"
cargo build --release --quiet
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
