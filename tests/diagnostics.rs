//! Snapshot tests of rendered diagnostics: one case per error or lint kind, each asserting
//! its code and snapshotting exactly what a user would read (no colour, 80 columns).

mod common;

use common::*;

/// Checks `text`, asserts that `code` is among the diagnostics, snapshots the rendering.
fn case(name: &str, text: &str, sets: &[&str], code: &str) {
    let c = check_text(text, sets);
    assert!(codes(&c).contains(&code), "{name}: expected {code}, got {:?}\n{}", codes(&c), rendered(&c));
    insta::assert_snapshot!(name, rendered(&c));
}

#[test]
fn syntax_error() {
    case("syntax", "scenario \"t\" {\n    seed 1.\n}\n", &[], "kdl-syntax");
}

/// A deleted phase header: the parser stops at the file's last brace; the indentation marks
/// the line where the header is missing.
#[test]
fn syntax_error_at_a_missing_header() {
    let text = "scenario \"t\" {\n    workload \"w\" kind=\"synthetic\" {\n        latency \"fixed\" value=\"1ms\"\n    }\n        drive \"w\" concurrency=1\n    }\n    expect \"w.error_rate\" \"==\" 0\n}\n";
    case("syntax_missing_header", text, &[], "kdl-syntax");
}

/// A deleted `}`: the line where the block should have ended is marked.
#[test]
fn syntax_error_at_a_missing_brace() {
    let text = "scenario \"t\" {\n    workload \"w\" kind=\"synthetic\" {\n        latency \"fixed\" value=\"1ms\"\n    phase \"p\" duration=\"1s\" {\n        drive \"w\" concurrency=1\n    }\n}\n";
    case("syntax_missing_brace", text, &[], "kdl-syntax");
}

#[test]
fn empty_file() {
    case("empty", "// nothing but a comment\n", &[], "empty-file");
}

#[test]
fn missing_scenario() {
    case("missing_scenario", "workload \"a\" kind=\"synthetic\"\n", &[], "missing-scenario");
}

#[test]
fn duplicate_scenario() {
    let text = format!("{}{}", wrap(""), wrap(""));
    case("duplicate_scenario", &text, &[], "duplicate-scenario");
}

#[test]
fn unknown_node() {
    case("unknown_node", &wrap("    workloadd \"x\" kind=\"synthetic\""), &[], "unknown-node");
}

#[test]
fn unknown_property() {
    case(
        "unknown_property",
        &wrap("    phase \"p2\" duraton=\"5s\" { drive \"svc\" concurrency=1; }"),
        &[],
        "unknown-property",
    );
}

#[test]
fn duplicate_property() {
    case(
        "duplicate_property",
        &wrap("    phase \"p2\" duration=\"5s\" duration=\"6s\" { drive \"svc\" concurrency=1; }"),
        &[],
        "duplicate-property",
    );
}

#[test]
fn unexpected_argument() {
    case("unexpected_argument", &wrap("    seed 1 2"), &[], "unexpected-argument");
}

#[test]
fn missing_argument() {
    case(
        "missing_argument",
        &wrap("    workload kind=\"synthetic\" { latency \"fixed\" value=\"1ms\"; }"),
        &[],
        "missing-argument",
    );
}

#[test]
fn missing_property() {
    case("missing_property", &wrap("    workload \"w\" { latency \"fixed\" value=\"1ms\"; }"), &[], "missing-property");
}

#[test]
fn wrong_type() {
    case("wrong_type", &wrap("    seed \"forty-two\""), &[], "wrong-type");
}

#[test]
fn invalid_duration() {
    case(
        "invalid_duration",
        &wrap("    phase \"p2\" duration=\"10 parsecs\" { drive \"svc\" concurrency=1; }"),
        &[],
        "invalid-duration",
    );
}

#[test]
fn duration_without_unit() {
    case(
        "duration_without_unit",
        &wrap("    phase \"p2\" duration=10 { drive \"svc\" concurrency=1; }"),
        &[],
        "invalid-duration",
    );
}

#[test]
fn invalid_rate() {
    case("invalid_rate", &wrap("    phase \"p2\" duration=\"5s\" { drive \"svc\" rate=\"20\"; }"), &[], "invalid-rate");
}

#[test]
fn invalid_size() {
    case(
        "invalid_size",
        &wrap("    phase \"p2\" duration=\"5s\" { pressure memory=\"8 gigs\"; drive \"svc\" concurrency=1; }"),
        &[],
        "invalid-size",
    );
}

#[test]
fn invalid_percent() {
    case(
        "invalid_percent",
        &wrap("    workload \"w\" kind=\"synthetic\" { latency \"fixed\" value=\"1ms\"; errors probability=50; }"),
        &[],
        "invalid-percent",
    );
}

#[test]
fn invalid_range() {
    let text = wrap("    workload \"chat\" kind=\"inference\" {\n        model synthetic=\"gpt2-medium\"\n        prompt tokens=\"512..32\"\n    }");
    case("invalid_range", &text, &[], "invalid-range");
}

#[test]
fn out_of_range() {
    case(
        "out_of_range",
        &wrap("    phase \"p2\" duration=\"5s\" { drive \"svc\" concurrency=0; }"),
        &[],
        "out-of-range",
    );
}

#[test]
fn unknown_value() {
    case(
        "unknown_value",
        &wrap("    phase \"p2\" duration=\"5s\" { drive \"svc\" rate=\"5/s\" arrivals=\"poison\"; }"),
        &[],
        "unknown-value",
    );
}

#[test]
fn unknown_load_shape() {
    case(
        "unknown_load_shape",
        &wrap("    phase \"p2\" duration=\"5s\" { drive \"svc\" rmap rate=\"1/s..5/s\"; }"),
        &[],
        "unknown-value",
    );
}

#[test]
fn unexpected_type_annotation() {
    case("unexpected_type", &wrap("    seed (ms)5"), &[], "unexpected-type-annotation");
}

#[test]
fn duplicate_name() {
    case(
        "duplicate_name",
        &wrap("    workload \"svc\" kind=\"synthetic\" { latency \"fixed\" value=\"1ms\"; }"),
        &[],
        "duplicate-name",
    );
}

#[test]
fn unknown_workload() {
    case(
        "unknown_workload",
        &wrap("    phase \"p2\" duration=\"5s\" { drive \"scv\" concurrency=1; }"),
        &[],
        "unknown-workload",
    );
}

#[test]
fn unknown_metric() {
    case("unknown_metric", &wrap("    expect \"svc.ttf.p95\" \"<\" \"5ms\""), &[], "unknown-metric");
}

#[test]
fn aggregation_on_scalar() {
    case("aggregation_on_scalar", &wrap("    expect \"svc.tok_s.p95\" \">=\" 30"), &[], "unknown-aggregation");
}

#[test]
fn missing_aggregation() {
    case("missing_aggregation", &wrap("    expect \"svc.ttft\" \"<\" \"5ms\""), &[], "unknown-aggregation");
}

#[test]
fn unknown_phase() {
    case("unknown_phase", &wrap("    expect \"svc.ttft.p95\" \"<\" \"5ms\" phase=\"stedy\""), &[], "unknown-phase");
}

#[test]
fn unknown_parameter_reference() {
    case("unknown_parameter", &wrap("    param \"duration\" type=\"duration\" default=\"5s\"\n    phase \"p2\" duration=\"$duraton\" { drive \"svc\" concurrency=1; }"), &[], "unknown-parameter");
}

#[test]
fn set_unknown_parameter() {
    let text = wrap("    param \"duration\" type=\"duration\" default=\"5s\"\n    phase \"p2\" duration=\"$duration\" { drive \"svc\" concurrency=1; }");
    case("set_unknown_parameter", &text, &["duraton=10s"], "unknown-parameter");
}

#[test]
fn set_invalid_value() {
    let text = wrap("    param \"duration\" type=\"duration\" default=\"5s\"\n    phase \"p2\" duration=\"$duration\" { drive \"svc\" concurrency=1; }");
    case("set_invalid_value", &text, &["duration=fast"], "invalid-set");
}

#[test]
fn parameter_used_with_wrong_type() {
    let text = wrap("    param \"workers\" type=\"duration\" default=\"5s\"\n    phase \"p2\" duration=\"5s\" { drive \"svc\" concurrency=\"$workers\"; }");
    case("parameter_wrong_type", &text, &[], "wrong-type");
}

#[test]
fn import_not_found() {
    case("import_not_found", &wrap("    use \"std/targets/rtx4909.kdl\""), &[], "import-not-found");
}

#[test]
fn conflicting_options() {
    case(
        "conflicting_options",
        &wrap("    phase \"p2\" duration=\"5s\" { drive \"svc\" concurrency=2 rate=\"5/s\"; }"),
        &[],
        "conflicting-options",
    );
}

#[test]
fn missing_option() {
    let text = wrap("    workload \"chat\" kind=\"inference\" {\n        prompt tokens=128\n    }");
    case("missing_option", &text, &[], "missing-option");
}

#[test]
fn invalid_condition() {
    case(
        "invalid_condition",
        &wrap("    phase \"limit\" { search \"svc\" rate=\"1/s..100/s\" until=\"ttft.p95 50ms\"; }"),
        &[],
        "invalid-condition",
    );
}

#[test]
fn invalid_comparison() {
    case("invalid_comparison", &wrap("    expect \"svc.latency.p95\" \"=<\" \"5ms\""), &[], "invalid-comparison");
}

#[test]
fn unit_mismatch() {
    case("unit_mismatch", &wrap("    expect \"svc.ttft.p95\" \"<\" #true"), &[], "unit-mismatch");
}

#[test]
fn phase_without_end() {
    case(
        "phase_without_end",
        &wrap("    phase \"forever\" { drive \"svc\" concurrency=1; }"),
        &[],
        "phase-without-end",
    );
}

#[test]
fn no_phases() {
    let text = "scenario \"t\" {\n    workload \"svc\" kind=\"synthetic\" {\n        latency \"fixed\" value=\"2ms\"\n    }\n}\n";
    case("no_phases", text, &[], "no-phases");
}

#[test]
fn error_inside_import_points_into_module() {
    let c = check_path(&fixture("imports/bad_module_main.kdl"), &Default::default());
    assert!(codes(&c).contains(&"invalid-duration"), "{:?}", codes(&c));
    let out = rendered(&c);
    assert!(out.contains("tests/fixtures/imports/lib/bad.kdl"), "{out}");
    assert!(out.contains("imported by this `use`"), "{out}");
    insta::assert_snapshot!("error_in_import", out);
}

#[test]
fn import_cycle() {
    let c = check_path(&fixture("imports/cycle_a.kdl"), &Default::default());
    assert!(codes(&c).contains(&"import-cycle"), "{:?}", codes(&c));
    insta::assert_snapshot!("import_cycle", rendered(&c));
}

// ---- lints (warnings) -----------------------------------------------------------------------

#[test]
fn spike_rate_range_half_unreachable() {
    case(
        "lint_spike_rate_range",
        &wrap("    expect \"svc.itl.spike_rate\" within=\"5%..15%\""),
        &[],
        "spike-rate-unreachable",
    );
}

#[test]
fn never_passes() {
    case("lint_never_passes", &wrap("    expect \"svc.itl.spike_rate\" \">\" \"12%\""), &[], "never-passes");
}

#[test]
fn never_fails() {
    case("lint_never_fails", &wrap("    expect \"svc.error_rate\" \"<\" \"120%\""), &[], "never-fails");
}

#[test]
fn inconsistent_percentiles() {
    case(
        "lint_percentiles",
        &wrap("    expect \"svc.latency.p50\" \"<\" \"20ms\"\n    expect \"svc.latency.p99\" \"<\" \"10ms\""),
        &[],
        "inconsistent-percentiles",
    );
}

#[test]
fn unused_workload() {
    case(
        "lint_unused_workload",
        &wrap("    workload \"idle\" kind=\"synthetic\" { latency \"fixed\" value=\"1ms\"; }"),
        &[],
        "unused-workload",
    );
}

#[test]
fn idle_phase() {
    case("lint_idle_phase", &wrap("    phase \"rest\" duration=\"5s\""), &[], "idle-phase");
}

#[test]
fn probe_interval() {
    case("lint_probe_interval", &wrap("    probe \"system\" every=\"1ms\""), &[], "probe-interval-too-short");
}

#[test]
fn run_limit() {
    case("lint_run_limit", &wrap("    run-limit \"500ms\""), &[], "run-limit-exceeded");
}

#[test]
fn unused_parameter() {
    case("lint_unused_parameter", &wrap("    param \"spare\" type=\"int\" default=3"), &[], "unused-parameter");
}

/// Many errors in one file are all reported, in source order.
#[test]
fn all_errors_reported_at_once() {
    let text = wrap(
        "    phase \"a\" duraton=\"5s\" { drive \"scv\" concurrency=1; }\n    expect \"svc.ttf.p95\" \"<\" \"5ms\"\n    seed \"x\"",
    );
    let c = check_text(&text, &[]);
    let codes = codes(&c);
    for want in ["unknown-property", "unknown-workload", "unknown-metric", "wrong-type"] {
        assert!(codes.contains(&want), "missing {want} in {codes:?}");
    }
    // Follow-on errors are suppressed: the phase with a misspelt `duration` is not also
    // reported as never ending.
    assert!(!codes.contains(&"phase-without-end"), "{codes:?}");
    let starts: Vec<usize> = c.diagnostics.iter().filter_map(|d| d.labels.first()).map(|l| l.span.start).collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "not in source order: {starts:?}");
}

/// The snapshots above cover at least 25 distinct error kinds.
#[test]
fn error_kinds_covered() {
    let texts = std::fs::read_dir(root().join("tests/snapshots"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .collect::<Vec<_>>()
        .join("\n");
    let kinds = benchctl::dsl::diag::Code::ALL
        .iter()
        .filter(|c| texts.contains(&format!("benchctl::{}\n", c.as_str())))
        .count();
    assert!(kinds >= 25, "only {kinds} distinct diagnostic kinds have snapshots");
}

/// Two CPU-bound workloads in one measured phase on too few cores: a warning naming both,
/// judged against the machine's cores (2 here, for a snapshot that is the same everywhere);
/// with enough cores, in separate phases, or with the inference on a GPU, none.
#[test]
fn cpu_contention_names_both_workloads() {
    let text = |device: &str, together: bool| {
        let phases = if together {
            "    phase \"mixed\" duration=\"10s\" {\n        drive \"chat\" concurrency=1\n        drive \"rag\" rate=\"100/s\"\n    }\n"
        } else {
            "    phase \"chat\" duration=\"10s\" {\n        drive \"chat\" concurrency=1\n    }\n    phase \"rag\" duration=\"10s\" {\n        drive \"rag\" rate=\"100/s\"\n    }\n"
        };
        format!(
            "scenario \"t\" {{\n    workload \"chat\" kind=\"inference\" {{\n        model synthetic=\"gpt2\"\n        device \"{device}\"\n    }}\n    workload \"rag\" kind=\"retrieval\" {{\n        index \"flat\" entries=1000 dim=8\n    }}\n{phases}}}\n"
        )
    };
    let lint = |text: &str, cores: usize| {
        let c = check_text(text, &[]);
        let v = c.scenario.as_ref().unwrap_or_else(|| panic!("{}", rendered(&c)));
        let mut diags = vec![];
        benchctl::dsl::lints::contention(&v.scenario, cores, &mut diags);
        (benchctl::dsl::diag::render(&diags, &c.sources, false, 80), diags.len())
    };
    let (out, n) = lint(&text("cpu", true), 2);
    assert_eq!(n, 1);
    insta::assert_snapshot!("cpu_contention", out.replace(&format!("{}/", root().display()), ""));
    assert_eq!(lint(&text("cpu", true), 16).1, 0, "enough cores");
    assert_eq!(lint(&text("cpu", false), 2).1, 0, "phases of their own");
    assert_eq!(lint(&text("cuda", true), 2).1, 0, "inference on a GPU");
}
