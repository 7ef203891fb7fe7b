//! Scenario text built from the language's own pieces (nodes, properties, units, selectors,
//! nesting, comments, strings), so that the fuzzer spends its time past the parser, in the
//! decoder, validator, lints, planner and formatter. The text is then fed to the same
//! harness as the raw target.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};

const NODES: &[&str] = &[
    "workload", "phase", "warmup", "cooldown", "drive", "expect", "probe", "param", "use", "report", "baseline",
    "pressure", "search", "latency", "tokens", "errors", "model", "prompt", "output", "batch", "index", "data",
    "query", "endpoint", "kernel", "json", "junit", "markdown", "html", "tolerance", "grade", "description",
    "seed", "device", "tags", "run-limit", "confidence", "repeat", "host-quiet", "sweep",
];
const KEYS: &[&str] = &[
    "kind", "duration", "until", "concurrency", "rate", "value", "count", "gap", "synthetic", "dtype", "tokens",
    "within", "k", "window", "windows", "memory", "cpu-threads", "cap", "step", "factor", "step-duration",
    "max-steps", "max-time", "arrivals", "ramp", "type", "default", "tolerance", "every", "ef", "m", "dim",
    "count", "metric", "recall", "url", "api", "model", "confidence", "abort-on-fail", "weight", "fallback",
];
const VALUES: &[&str] = &[
    "\"synthetic\"", "\"inference\"", "\"retrieval\"", "\"endpoint\"", "\"kernel\"", "\"1s\"", "\"250ms\"",
    "\"0s\"", "\"-1s\"", "\"10/s\"", "\"1/s..500/s\"", "\"5%..15%\"", "\"60%\"", "\"150%\"", "\"8GiB\"", "1", "0",
    "-3", "1.5", "1e309", "#true", "#false", "#null", "\"svc.ttft.p95 < 5ms\"", "\"svc.error_rate > 1%\"",
    "\"ttft.p95 > 50ms or error_rate > 1%\"", "\"gpt2-medium\"", "\"smollm2-135m\"", "\"$duration\"", "\"$$\"",
    "\"fixed\"", "\"lognormal\"", "\"geometric\"", "\"hnsw\"", "\"flat\"", "\"cpu\"", "\"cuda:0\"", "\"日本\"",
    "\"\\u{1F600}\"", "#\"raw\"#", "(ms)5", "(u32)7", "\"std/targets/rtx4090.kdl\"", "\"std/phases/ramp.kdl\"",
    "\"out/r.json\"", "\"\"",
];
const NOISE: &[&str] = &["{", "}", "\"", "/*", "*/", "//", "/-", ";", "=", "\\", "\n", "#", "..", " "];

#[derive(Debug)]
struct Scenario(String);

impl<'a> Arbitrary<'a> for Scenario {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut out = String::new();
        if u.ratio(1, 4)? {
            out.push_str(&format!("use {}\n", u.choose(VALUES)?));
        }
        out.push_str("scenario \"fuzz\" {\n");
        let top = u.int_in_range(0..=12)?;
        for _ in 0..top {
            node(u, &mut out, 1)?;
        }
        out.push_str("}\n");
        // Occasionally splice raw noise in, for the recovery paths of the parser.
        for _ in 0..u.int_in_range(0..=3)? {
            let at = u.int_in_range(0..=out.len())?;
            if out.is_char_boundary(at) {
                out.insert_str(at, u.choose(NOISE)?);
            }
        }
        Ok(Scenario(out))
    }
}

fn node(u: &mut Unstructured, out: &mut String, depth: usize) -> arbitrary::Result<()> {
    out.push_str(&"    ".repeat(depth.min(8)));
    out.push_str(u.choose(NODES)?);
    for _ in 0..u.int_in_range(0..=2)? {
        out.push(' ');
        out.push_str(u.choose(VALUES)?);
    }
    for _ in 0..u.int_in_range(0..=4)? {
        out.push_str(&format!(" {}={}", u.choose(KEYS)?, u.choose(VALUES)?));
    }
    // Deep nesting now and then, past the 64-level guard.
    let children = if depth < 70 && u.ratio(1, 3)? { u.int_in_range(1..=3)? } else { 0 };
    if children > 0 {
        out.push_str(" {\n");
        for _ in 0..children {
            node(u, out, depth + 1)?;
        }
        out.push_str(&"    ".repeat(depth.min(8)));
        out.push('}');
    }
    if u.ratio(1, 8)? {
        out.push_str(" // note");
    }
    out.push('\n');
    Ok(())
}

libfuzzer_sys::fuzz_target!(|s: Scenario| benchctl::fuzzing::exercise(s.0.as_bytes()));
