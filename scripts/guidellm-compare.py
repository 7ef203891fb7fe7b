"""GuideLLM beside benchctl on the same server, for the endpoint benchmarks.

Run it with the Python of a venv that has GuideLLM (pip install guidellm==0.8.1; it is large,
so it is not part of CI):

  python scripts/guidellm-compare.py overhead --target http://127.0.0.1:PORT/v1 \
      --tokenizer DIR --rates 10,20,50,100 [--seconds 10]
      Constant-rate runs against a server that answers at once (the instant server of
      `cargo bench --bench endpoint`, BENCH_ENDPOINT_SERVE=PORT). Per rate: achieved rate,
      dispatch delay p50/p99 (GuideLLM's request_start - targeted_start, the same quantity
      as benchctl's send lateness), failures, and GuideLLM's CPU time per streamed token
      (all its processes, less a 1-request run's start-up cost).

  python scripts/guidellm-compare.py agreement --target http://127.0.0.1:PORT/v1 \
      --tokenizer DIR [--runs 3] [--requests 20]
      Sequential runs, 32-token prompts, 64 output tokens, /v1/completions: TTFT p50 and
      ITL median per run.

DIR is a Hugging Face tokenizer folder (tokenizer.json, tokenizer_config.json); GuideLLM
needs one to make its synthetic prompts.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile


def quantile(xs, q):
    """Nearest-rank quantile, as benchctl's HdrHistogram reports them."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, int(round(q * len(xs) + 0.5)) - 1))
    return xs[k]


def run_guidellm(target, tokenizer, profile, constraint, prompt_tokens, output_tokens, workdir):
    """Runs GuideLLM once; returns (its benchmark object, CPU seconds of its processes)."""
    out = os.path.join(workdir, "g.json")
    config = {
        "spec": {
            "backend": {
                "kind": "openai_http",
                "target": target.removesuffix("/v1"),
                "request_format": "/v1/completions",
                # The servers here have no /health route.
                "validate_backend": False,
            },
            "profile": profile,
            "constraints": [constraint],
            "tokenizer": {"kind": "hf_auto", "model": tokenizer},
            "data": [{"kind": "synthetic_text", "prompt_tokens": prompt_tokens, "output_tokens": output_tokens}],
            "outputs": [{"kind": "json", "path": out}],
        }
    }
    path = os.path.join(workdir, "scenario.json")
    with open(path, "w") as f:
        json.dump(config, f)
    guidellm = os.path.join(os.path.dirname(sys.executable), "guidellm")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [guidellm, "run", "-c", path, "--disable-console"],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "GUIDELLM__LOGGING__CONSOLE_LOG_LEVEL": "ERROR"},
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(out) as f:
        return json.load(f)["benchmarks"][0], cpu


def requests_of(bench):
    r = bench["requests"]
    return r["successful"], r["errored"], r["incomplete"]


def overhead(args):
    with tempfile.TemporaryDirectory() as d:
        # The start-up cost: a run that sends one request.
        base, base_cpu = run_guidellm(
            args.target, args.tokenizer, {"kind": "synchronous"}, {"kind": "max_requests", "count": 1}, 32, 16, d
        )
        base_tokens = sum(r["output_tokens"] or 0 for r in requests_of(base)[0])
        print(f"start-up run: {base_cpu:.2f} s CPU, {base_tokens} tokens")
        print(
            f"{'rate/s':>8} {'achieved/s':>10} {'requests':>9} {'delay p50':>10} {'delay p99':>10} "
            f"{'p99 after 1s':>12} {'failed':>7} {'cpu/token':>10}"
        )
        for rate in args.rates:
            bench, cpu = run_guidellm(
                args.target,
                args.tokenizer,
                {"kind": "constant", "rate": rate},
                {"kind": "max_duration", "seconds": args.seconds},
                32,
                16,
                d,
            )
            ok, errored, incomplete = requests_of(bench)
            sent = ok + errored + incomplete
            delays = [r["request_dispatch_delay"] * 1e3 for r in sent if r.get("request_dispatch_delay") is not None]
            # The same after the first second, for a start-up that is slower than the rest.
            first = min(r["info"]["timings"]["targeted_start"] for r in sent)
            settled = [
                r["request_dispatch_delay"] * 1e3
                for r in sent
                if r.get("request_dispatch_delay") is not None and r["info"]["timings"]["targeted_start"] >= first + 1.0
            ]
            tokens = sum(r["output_tokens"] or 0 for r in ok)
            per_token = (cpu - base_cpu) / max(1, tokens - base_tokens) * 1e6
            print(
                f"{rate:>8.0f} {len(ok) / args.seconds:>10.1f} {len(sent):>9} {quantile(delays, 0.5):>8.2f}ms "
                f"{quantile(delays, 0.99):>8.2f}ms {quantile(settled, 0.99):>10.2f}ms "
                f"{len(errored) + len(incomplete):>7} {per_token:>8.1f}us"
            )


def agreement(args):
    with tempfile.TemporaryDirectory() as d:
        for i in range(args.runs):
            bench, _ = run_guidellm(
                args.target,
                args.tokenizer,
                {"kind": "synchronous"},
                {"kind": "max_requests", "count": args.requests},
                32,
                64,
                d,
            )
            ok, errored, incomplete = requests_of(bench)
            ttft = [r["time_to_first_token_ms"] for r in ok if r["time_to_first_token_ms"] is not None]
            # Per-gap ITL is not in GuideLLM's output; its per-request mean gap is.
            itl = [r["inter_token_latency_ms"] for r in ok if r["inter_token_latency_ms"] is not None]
            tokens = [r["output_tokens"] for r in ok]
            print(
                f"run {i + 1}: {len(ok)} requests ({len(errored)} errored), TTFT p50 {statistics.median(ttft):.1f} ms, "
                f"ITL median {statistics.median(itl):.2f} ms, output tokens median {statistics.median(tokens):.0f}"
            )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--target", required=True)
    o.add_argument("--tokenizer", required=True)
    o.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], required=True)
    o.add_argument("--seconds", type=float, default=10.0)
    a = sub.add_parser("agreement")
    a.add_argument("--target", required=True)
    a.add_argument("--tokenizer", required=True)
    a.add_argument("--runs", type=int, default=3)
    a.add_argument("--requests", type=int, default=20)
    args = p.parse_args()
    {"overhead": overhead, "agreement": agreement}[args.mode](args)


if __name__ == "__main__":
    main()
