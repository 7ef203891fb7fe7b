//! Property test: mutated scenarios never make the checker or the formatter panic, and every
//! span a diagnostic reports lies inside its file, on character boundaries.

mod common;

use proptest::prelude::*;

use benchctl::dsl::{self, format};

const TOKENS: &[&str] = &[
    "{",
    "}",
    "\"",
    "=",
    ";",
    "#true",
    "#null",
    "(ms)",
    "(u32)",
    "..",
    "$duration",
    "$$",
    "//",
    "/*",
    "*/",
    "\n",
    "é",
    "日本",
    "0x1F",
    "-",
    "1_000",
    "%",
    "/s",
    "\\",
    "#\"",
    "\"#",
    "\"\"\"",
    "1e309",
    "-0",
    "drive",
    "phase",
    "use \"std/targets/rtx4090.kdl\"",
    "use \"fuzz.kdl\"",
    "expect \"svc.ttft.p95\" \"<\" \"5ms\"",
    "within=\"5%..15%\"",
    "concurrency=",
    "rate=\"1/s..5/s\"",
    " ",
    "/-",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: f64, len: usize },
    Insert { at: f64, token: usize },
    DuplicateLine { at: f64 },
    SwapLines { a: f64, b: f64 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0.0..1.0f64, 1..40usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (0.0..1.0f64, 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        (0.0..1.0f64).prop_map(|at| Mutation::DuplicateLine { at }),
        (0.0..1.0f64, 0.0..1.0f64).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
    ]
}

fn boundary(text: &str, frac: f64) -> usize {
    let mut i = ((text.len() as f64) * frac) as usize;
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i.min(text.len())
}

fn apply(text: &mut String, m: &Mutation) {
    match m {
        Mutation::Delete { at, len } => {
            let a = boundary(text, *at);
            let mut b = (a + len).min(text.len());
            while !text.is_char_boundary(b) {
                b += 1;
            }
            text.replace_range(a..b, "");
        }
        Mutation::Insert { at, token } => {
            let a = boundary(text, *at);
            text.insert_str(a, TOKENS[*token]);
        }
        Mutation::DuplicateLine { at } => {
            let lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let i = ((lines.len() as f64) * at) as usize % lines.len();
                let mut out = lines.clone();
                out.insert(i, lines[i]);
                *text = out.join("\n");
            }
        }
        Mutation::SwapLines { a, b } => {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            if lines.len() > 1 {
                let (i, j) = (
                    ((lines.len() as f64) * a) as usize % lines.len(),
                    ((lines.len() as f64) * b) as usize % lines.len(),
                );
                lines.swap(i, j);
                *text = lines.join("\n");
            }
        }
    }
}

fn bases() -> Vec<String> {
    let mut v: Vec<String> = ["scenarios/quick.kdl", "scenarios/rtx4090.kdl"]
        .iter()
        .map(|p| std::fs::read_to_string(common::root().join(p)).unwrap())
        .collect();
    v.push(common::wrap(
        "    param \"duration\" type=\"duration\" default=\"5s\"
    workload \"chat\" kind=\"inference\" { model synthetic=\"gpt2-medium\" dtype=\"f16\"; prompt tokens=\"32..512\"; output tokens=16; batch 1 4; }
    phase \"ramp\" duration=\"$duration\" { drive \"chat\" ramp rate=\"1/s..10/s\"; pressure memory=\"10%\"; }
    phase \"limit\" { search \"svc\" rate=\"1/s..100/s\" until=\"ttft.p95 > 50ms or error_rate > 1%\"; }
    expect \"svc.itl.spike_rate\" within=\"1%..5%\" k=2
    expect \"svc.latency.p99 < 50ms\" window=\"1s\" windows=\"90%\"
    baseline \"baseline/x.json\" tolerance=\"5%\" { tolerance \"svc.ttft.p95\" \"10%\"; }
    report { json \"out/r.json\"; junit \"out/j.xml\"; }",
    ));
    v
}

fn check_spans(c: &dsl::Checked) -> Result<(), TestCaseError> {
    benchctl::fuzzing::check_spans(c);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_scenarios_never_panic(base in 0..3usize, muts in prop::collection::vec(mutation(), 1..6)) {
        let mut text = bases()[base].clone();
        for m in &muts {
            apply(&mut text, m);
        }
        let path = common::root().join("scenarios/fuzz.kdl");
        let c = benchctl::check::check_source("fuzz.kdl", Some(&path), &text, &Default::default());
        check_spans(&c)?;
        if let Ok(formatted) = format::format_source(&text) {
            let again = format::format_source(&formatted);
            prop_assert!(again.is_ok(), "formatted text does not format again:\n{formatted}");
            prop_assert_eq!(again.unwrap(), formatted);
        }
    }

    #[test]
    fn arbitrary_set_values_never_panic(name in "[a-z_]{0,10}", value in "\\PC{0,12}") {
        let text = common::wrap("    param \"duration\" type=\"duration\" default=\"5s\"\n    phase \"p2\" duration=\"$duration\" { drive \"svc\" concurrency=1; }");
        let c = common::check_text(&text, &[&format!("{name}={value}"), "duration=2s"]);
        check_spans(&c)?;
    }
}
