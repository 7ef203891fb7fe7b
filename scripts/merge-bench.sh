#!/usr/bin/env bash
# How fast `benchctl merge` is against the floor of reading the same bytes (docs/running.md,
# "Merging shards"). Runs SEEDS real shards of a 1,000-shard split run of a 10-workload
# synthetic scenario, copies them (rewriting the shard index) into the 1,000 files of one
# run, then times `cat` of the files and the merge, each three times, and prints the ratio.
#
#   scripts/merge-bench.sh [SHARDS] [SEEDS] [PHASE]    (defaults 1000, 10, 3s)
#   OLD=path/to/benchctl scripts/merge-bench.sh        also times another build on the same files
set -euo pipefail
cd "$(dirname "$0")/.."
shards="${1:-1000}"
seeds="${2:-10}"
phase="${3:-3s}"
cargo build --release --quiet
bin="$PWD/target/release/benchctl"
work="$(mktemp -d)"
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
{
    echo 'scenario "merge-bench" {'
    echo '    seed 11'
    for w in 0 1 2 3 4 5 6 7 8 9; do
        echo "    workload \"w$w\" kind=\"synthetic\" {"
        echo '        latency "lognormal" median="2ms" sigma=0.4'
        echo '        tokens count=4 gap="200us"'
        echo '    }'
    done
    echo '    warmup duration="1s" {'
    for w in 0 1 2 3 4 5 6 7 8 9; do echo "        drive \"w$w\" rate=\"${shards}0/s\""; done
    echo '    }'
    echo "    phase \"steady\" duration=\"$phase\" {"
    for w in 0 1 2 3 4 5 6 7 8 9; do echo "        drive \"w$w\" rate=\"${shards}0/s\""; done
    echo '    }'
    echo '}'
} >"$work/merge-bench.kdl"
for i in $(seq 0 $((seeds - 1))); do
    "$bin" run "$work/merge-bench.kdl" --shard "$i/$shards" --run-id bench --out "$work/seed" -q >/dev/null 2>&1 || true
done
python3 - "$work/seed" "$work/run" "$shards" <<'PY'
import json, os, sys, glob
seed, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out, exist_ok=True)
files = sorted(glob.glob(os.path.join(seed, "*.json")))
docs = [open(f).read() for f in files]
for i in range(n):
    d = json.loads(docs[i % len(docs)])
    d["shard"]["index"] = i
    with open(os.path.join(out, f"shard-{i}-of-{n}.json"), "w") as f:
        json.dump(d, f)
PY
bytes=$(cat "$work"/run/*.json | wc -c)
echo "$shards shard files, $((bytes / 1000000)) MB"
cat "$work"/run/*.json >/dev/null
for k in 1 2 3; do
    /usr/bin/time -f "cat: %e s" cat "$work"/run/*.json >/dev/null
done
for k in 1 2 3; do
    /usr/bin/time -f "merge: %e s wall, %U s user, %M KB peak RSS" "$bin" merge "$work/run" --expect "$shards" --out "$work/merged" -q >/dev/null || true
    if [ -n "${OLD:-}" ]; then
        /usr/bin/time -f "merge ($OLD): %e s wall, %U s user, %M KB peak RSS" "$OLD" merge "$work/run" --expect "$shards" --out "$work/merged-old" -q >/dev/null || true
    fi
done
if [ -n "${OLD:-}" ]; then
    python3 - "$work/merged/result.json" "$work/merged-old/result.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
same = a["benchmarks"].keys() == b["benchmarks"].keys() and all(
    a["benchmarks"][w]["histograms"] == b["benchmarks"][w]["histograms"] for w in a["benchmarks"])
print("merged histograms identical to the other build's:", same)
PY
fi
