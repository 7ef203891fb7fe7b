#!/usr/bin/env bash
# A soak of benches/soak-production.kdl (production's load for about an hour): samples the
# benchctl process's resident memory and open file descriptors every 30 s into
# OUT/samples.csv and prints the first and last samples and the result's size.
# usage: scripts/soak.sh [BENCHCTL] [OUT]
set -euo pipefail
bin="${1:-target/release/benchctl}"
out="${2:-out/soak}"
mkdir -p "$out"
"$bin" run benches/soak-production.kdl --quiet --out "$out" &
pid=$!
echo "elapsed_s,rss_kib,fds,threads" > "$out/samples.csv"
start=$(date +%s)
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    threads=$(awk '/^Threads/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    [ -n "$rss" ] && echo "$(( $(date +%s) - start )),$rss,$fds,$threads" >> "$out/samples.csv"
    sleep 30
done
code=0
wait "$pid" || code=$?
echo "exit code $code after $(( $(date +%s) - start )) s"
echo "first samples:"; sed -n 2,4p "$out/samples.csv"
echo "last samples:"; tail -n 3 "$out/samples.csv"
echo "result.json: $(stat -c %s "$out/result.json") bytes"
