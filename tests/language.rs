//! Decoder table tests (text -> typed values), imports, parameters and plan snapshots.

mod common;

use benchctl::dsl::model::*;
use benchctl::dsl::units::{Amount, Bytes, Duration, Percent, Rate};
use benchctl::dsl::validate::{Bound, Quantity};
use common::*;

fn valid(inner: &str) -> benchctl::dsl::ValidScenario {
    let c = check_text(&wrap(inner), &[]);
    assert!(!c.has_errors(), "{}", rendered(&c));
    c.scenario.unwrap()
}

fn ms(n: u64) -> Duration {
    Duration(n * 1_000_000)
}

#[test]
fn load_shapes_decode() {
    let cases: &[(&str, &str)] = &[
        ("drive \"svc\" concurrency=4", "Closed { concurrency: 4 }"),
        ("drive \"svc\" rate=\"20/s\"", "Open { rate: Rate(20.0), arrivals: Poisson }"),
        ("drive \"svc\" rate=\"120/m\" arrivals=\"constant\"", "Open { rate: Rate(2.0), arrivals: Constant }"),
        ("drive \"svc\" rate=\"5/s\" arrivals=\"gamma\" burstiness=4", "Open { rate: Rate(5.0), arrivals: Gamma { burstiness: 4.0 } }"),
        ("drive \"svc\" ramp rate=\"1/s..50/s\"", "RampRate { from: Rate(1.0), to: Rate(50.0), arrivals: Poisson }"),
        ("drive \"svc\" ramp concurrency=\"1..16\"", "RampConcurrency { from: 1, to: 16 }"),
        (
            "drive \"svc\" spike base=\"100/s\" peak=\"1000/s\" every=\"15s\" hold=\"2s\"",
            "Spike { base: Rate(100.0), peak: Rate(1000.0), every: Duration(15000000000), hold: Duration(2000000000), arrivals: Poisson }",
        ),
        (
            "drive \"svc\" stages { stage \"10s\" rate=\"5/s\"; stage \"20s\" concurrency=3; }",
            "Stages { stages: [Stage { duration: Duration(10000000000), target: Rate(Rate(5.0)) }, Stage { duration: Duration(20000000000), target: Concurrency(3) }], arrivals: Poisson }",
        ),
    ];
    for (text, want) in cases {
        let v = valid(&format!("    phase \"p\" duration=\"30s\" {{ {text}; }}"));
        let got = format!("{:?}", v.scenario.phases[1].drives[0].shape.value);
        assert_eq!(&got, want, "{text}");
    }
}

#[test]
fn workloads_decode() {
    let v = valid(
        "    workload \"chat\" kind=\"inference\" device=\"cuda:1\" {
        model gguf=\"models/smollm2.gguf\" tokenizer=\"tok.json\"
        prompt tokens=256 stddev=64
        output tokens=64 ignore-eos=#false
        batch 1 4 8
        warmup requests=3
        slo ttft=\"50ms\" tpot=\"20ms\"
    }
    workload \"rag\" kind=\"retrieval\" {
        index \"hnsw\" backend=\"usearch\" entries=1_000_000 dim=128 metric=\"l2\" m=32 ef-construction=100
        data file=\"vectors.npy\"
        query top-k=5 count=500
        ef-sweep 16 32 64
    }
    phase \"p2\" duration=\"1s\" { drive \"chat\" concurrency=1; drive \"rag\" concurrency=1; }",
    );
    let w = &v.scenario.workloads;
    let WorkloadSpec::Inference(i) = &w[1].spec else { panic!("inference") };
    assert_eq!(w[1].device.as_ref().unwrap().value.kind, DeviceKind::Cuda { index: 1 });
    assert!(
        matches!(&i.model.as_ref().unwrap().source.value, ModelSource::Gguf { path } if path == "models/smollm2.gguf")
    );
    assert!(
        matches!(i.prompt, Some(Prompt::Synthetic(ref t)) if matches!(t.value, TokenDist::Normal { mean: 256, stddev: 64 }))
    );
    assert_eq!(i.output_tokens.as_ref().unwrap().value, 64);
    assert!(!i.ignore_eos);
    assert_eq!(i.batch.iter().map(|b| b.value).collect::<Vec<_>>(), vec![1, 4, 8]);
    assert_eq!(i.slo.ttft.as_ref().unwrap().value, ms(50));
    let WorkloadSpec::Retrieval(r) = &w[2].spec else { panic!("retrieval") };
    let ix = r.index.as_ref().unwrap();
    assert_eq!((ix.entries.value, ix.dim.value, ix.m.as_ref().unwrap().value), (1_000_000, 128, 32));
    assert_eq!(ix.backend.as_ref().unwrap().value, IndexBackend::Usearch);
    assert!(matches!(r.data.as_ref().unwrap().value, DataSource::File { .. }));
    assert_eq!(r.query.as_ref().unwrap().ef.iter().map(|e| e.value).collect::<Vec<_>>(), vec![16, 32, 64]);
}

#[test]
fn kernel_and_synthetic_decode() {
    let v = valid(
        "    device \"cuda:0\"
    workload \"saxpy\" kind=\"kernel\" {
        source \"\"\"
            extern \"C\" __global__ void saxpy(float a, float *x, float *y, unsigned n) {}
            \"\"\"
        entry \"saxpy\"
        compile arch=\"sm_89\" fast-math=#true { define \"N\" \"1024\"; }
        grid 4096
        block 256
        buffer \"x\" type=\"f32\" len=1_048_576 init=\"random\" seed=7
        buffer \"y\" type=\"f32\" len=1_048_576 init=\"constant\" value=1.0
        args (f32)2.0 \"x\" \"y\" (u32)1048576
        rates bytes=\"12MiB\" flops=2_097_152
        iterations 100
        check buffer=\"y\" expect=3.0 tolerance=1e-5
    }
    workload \"slow\" kind=\"synthetic\" {
        latency \"pareto\" scale=\"5ms\" shape=2.5
        cpu-work \"1ms\"
        errors probability=\"1%\"
    }
    phase \"p2\" duration=\"1s\" { drive \"saxpy\" concurrency=1; drive \"slow\" rate=\"10/s\"; }",
    );
    let WorkloadSpec::Kernel(k) = &v.scenario.workloads[1].spec else { panic!("kernel") };
    assert!(matches!(&k.source, Some(KernelSource::Inline(s)) if s.value.contains("__global__")));
    assert_eq!(k.buffers.len(), 2);
    assert_eq!(k.args.len(), 4);
    assert!(
        matches!(k.args[0], KernelArg::Scalar { ref ty, ref value } if ty.value == ElemType::F32 && value.value == 2.0)
    );
    assert_eq!(k.bytes_per_launch.as_ref().unwrap().value, Bytes(12 << 20));
    assert_eq!(k.defines.len(), 1);
    let WorkloadSpec::Synthetic(s) = &v.scenario.workloads[2].spec else { panic!("synthetic") };
    assert!(matches!(s.latency.as_ref().unwrap().value, LatencyDist::Pareto { shape, .. } if shape == 2.5));
    assert_eq!(s.error_probability.as_ref().unwrap().value, Percent(0.01));
}

#[test]
fn expectations_resolve_units() {
    let v = valid(
        "    probe \"system\" every=\"100ms\"
    expect \"svc.ttft.p95\" \"<\" \"5ms\"
    expect \"svc.tok_s\" \">=\" 30
    expect \"svc.tok_s\" \">=\" \"1800/m\"
    expect \"svc.error_rate\" \"<\" 0.01
    expect \"svc.itl.spike_rate\" \"<\" \"5%\" k=2
    expect \"system.memory.peak\" \"<\" \"90%\"
    expect \"system.memory.peak\" \"<\" \"20GiB\" severity=\"warn\" weight=2
    expect \"svc.latency.p99 < 50ms\" window=\"10s\" windows=\"95%\" abort-on-fail=#true
    expect \"process.rss.peak\" \"<\" \"2GiB\" on-missing=\"pass\"",
    );
    let bounds: Vec<String> = v.expectations.iter().map(|e| format!("{} {}", e.metric.selector, e.bound)).collect();
    assert_eq!(
        bounds,
        [
            "svc.ttft.p95 < 5ms",
            "svc.tok_s >= 30/s",
            "svc.tok_s >= 30/s",
            "svc.error_rate < 1%",
            "svc.itl.spike_rate < 5%",
            "system.memory.peak < 90%",
            "system.memory.peak < 20GiB",
            "svc.latency.p99 < 50ms",
            "process.rss.peak < 2GiB",
        ]
    );
    assert!(matches!(v.expectations[5].bound, Bound::Compare { value: Quantity::Share(Percent(p)), .. } if p == 0.9));
    let e = &v.scenario.expectations[7];
    assert_eq!((e.window.as_ref().unwrap().value, e.abort_on_fail), (Duration(10_000_000_000), true));
    // An undeclared probe named by an expectation is added at the default interval.
    assert!(v.probes.iter().any(|(k, _, implied)| *k == ProbeKind::Process && *implied));
}

#[test]
fn pressure_and_search_decode() {
    let v = valid(
        "    phase \"squeeze\" duration=\"10s\" { pressure memory=\"60%\" cpu-threads=2 gpu-memory=\"4GiB\"; drive \"svc\" concurrency=1; }
    phase \"limit\" { search \"svc\" rate=\"1/s..500/s\" until=\"ttft.p95 > 50ms or error_rate > 1%\" factor=1.5 max-steps=8; }",
    );
    let p = v.scenario.phases[1].pressure.as_ref().unwrap();
    assert_eq!(p.memory.as_ref().unwrap().value, Amount::Percent(Percent(0.6)));
    assert_eq!(p.gpu_memory.as_ref().unwrap().value, Amount::Bytes(Bytes(4 << 30)));
    let s = v.scenario.phases[2].search.as_ref().unwrap();
    let r = s.rate.as_ref().unwrap();
    assert_eq!((r.value.lo, r.value.hi), (Rate(1.0), Rate(500.0)));
    assert_eq!(s.over.value, SearchOver::Rate, "implied by the one range written");
    assert_eq!(s.slos.len(), 2);
    // `until` names when a load fails: the SLOs are the other side of each bound.
    let conds = &v.search_slos[2];
    assert_eq!(conds[0].metric.selector, "svc.ttft.p95");
    assert_eq!(conds[0].op, Comparison::Le);
    assert_eq!(conds[1].metric.selector, "svc.error_rate");
    assert_eq!(conds[1].op, Comparison::Le);
    assert_eq!(conds[1].value, Quantity::Ratio(Percent(0.01)));
}

#[test]
fn a_concurrency_search_with_slos() {
    let v = valid(
        "    phase \"cap\" { search \"svc\" over=\"concurrency\" concurrency=\"1..64\" rate=\"1/s..9/s\" slo=\"ttft.p95 < 200ms and error_rate < 1%\" settle=\"2s\" precision=\"10%\"; }",
    );
    let s = v.scenario.phases[1].search.as_ref().unwrap();
    assert_eq!(s.over.value, SearchOver::Concurrency);
    assert_eq!((s.concurrency.as_ref().unwrap().value.lo, s.concurrency.as_ref().unwrap().value.hi), (1, 64));
    let conds = &v.search_slos[1];
    assert_eq!(conds.len(), 2);
    assert_eq!((conds[0].metric.selector.as_str(), conds[0].op), ("svc.ttft.p95", Comparison::Lt));
}

#[test]
fn search_mistakes_are_pointed_at() {
    for (text, code, at) in [
        // No SLO at all.
        ("search \"svc\" concurrency=\"1..8\"", "missing-property", "search"),
        // `over` names a range that is not written.
        ("search \"svc\" over=\"rate\" concurrency=\"1..8\" slo=\"ttft.p95 < 1s\"", "missing-property", "\"rate\""),
        // Two ranges and no `over`.
        (
            "search \"svc\" concurrency=\"1..8\" rate=\"1/s..2/s\" slo=\"ttft.p95 < 1s\"",
            "missing-property",
            "\"1/s..2/s\"",
        ),
        // An equality has no side.
        ("search \"svc\" concurrency=\"1..8\" slo=\"ttft.p95 == 1s\"", "invalid-condition", "=="),
        // An SLO reads the searched workload's metrics and its server's: a probe's is not
        // one of them, and a synthetic workload has no server to scrape.
        ("search \"svc\" concurrency=\"1..8\" slo=\"system.cpu.mean < 90%\"", "invalid-condition", "system"),
        ("search \"svc\" concurrency=\"1..8\" slo=\"server.ttft.p95 < 1s\"", "invalid-condition", "server"),
        ("search \"svc\" concurrency=\"0..8\" slo=\"ttft.p95 < 1s\"", "out-of-range", "\"0..8\""),
    ] {
        let src = wrap(&format!("    phase \"cap\" {{ {text}; }}"));
        let c = check_text(&src, &[]);
        let d = c
            .diagnostics
            .iter()
            .find(|d| d.code.as_str() == code)
            .unwrap_or_else(|| panic!("{text}: {:?}", c.diagnostics));
        let l = &d.labels[0];
        assert_eq!(&src[l.span.start..l.span.end()], at, "{text}");
    }
}

/// A prefix pool's mistakes point at the value to fix.
#[test]
fn prefix_pool_mistakes_are_pointed_at() {
    for (prefix, code, at) in [
        ("prefix \"pool\" count=0 tokens=64", "out-of-range", "0"),
        ("prefix \"pool\" count=4 tokens=0", "out-of-range", "0"),
        ("prefix \"pool\" tokens=64", "missing-property", "prefix"),
        ("prefix \"pools\" count=4 tokens=64", "unknown-value", "\"pools\""),
        // A batch is for embeddings only; a batch of 0 is out of range.
        ("batch 16", "conflicting-options", "16"),
        ("batch 0", "out-of-range", "0"),
    ] {
        let src = format!(
            "scenario \"p\" {{\n    workload \"llm\" kind=\"openai\" {{\n        endpoint \"http://127.0.0.1:9/v1\" model=\"m\"\n        {prefix}\n    }}\n    phase \"p\" duration=\"1s\" {{ drive \"llm\" concurrency=1; }}\n}}\n"
        );
        let c = check_text(&src, &[]);
        let d = c
            .diagnostics
            .iter()
            .find(|d| d.code.as_str() == code)
            .unwrap_or_else(|| panic!("{prefix}: {:?}", c.diagnostics));
        let l = &d.labels[0];
        assert_eq!(&src[l.span.start..l.span.end()], at, "{prefix}");
    }
}

/// An embeddings workload has no output tokens to ask for.
#[test]
fn embeddings_reject_an_output_length() {
    let src = "scenario \"e\" {\n    workload \"emb\" kind=\"openai\" {\n        endpoint \"http://127.0.0.1:9/v1\" model=\"m\" api=\"embeddings\"\n        batch 8\n        output tokens=64\n    }\n    phase \"p\" duration=\"1s\" { drive \"emb\" concurrency=1; }\n}\n";
    let c = check_text(src, &[]);
    let d = c
        .diagnostics
        .iter()
        .find(|d| d.code.as_str() == "conflicting-options")
        .unwrap_or_else(|| panic!("{:?}", c.diagnostics));
    assert!(d.message.contains("no output tokens"), "{}", d.message);
    assert_eq!(
        c.diagnostics.iter().filter(|d| d.severity == benchctl::dsl::diag::Severity::Error).count(),
        1,
        "{:?}",
        c.diagnostics
    );
}

#[test]
fn condition_spans_point_inside_the_string() {
    let text = wrap("    phase \"limit\" { search \"svc\" rate=\"1/s..5/s\" until=\"ttft.p95 > 50parsecs\"; }");
    let c = check_text(&text, &[]);
    let d = c.diagnostics.iter().find(|d| d.code.as_str() == "invalid-duration").expect("unit error");
    let l = &d.labels[0];
    assert_eq!(&text[l.span.start..l.span.end()], "50parsecs");
}

#[test]
fn imports_splice_modules_once() {
    let c = check_path(&fixture("imports/main.kdl"), &Default::default());
    assert!(!c.has_errors(), "{}", rendered(&c));
    let v = c.scenario.unwrap();
    // workloads.kdl is imported by main.kdl and by phases.kdl: its workload appears once.
    assert_eq!(v.scenario.workloads.len(), 1);
    assert_eq!(v.scenario.phases[0].duration.as_ref().unwrap().value, Duration(5_000_000_000));
    // A module's own description does not replace the scenario's.
    assert!(v.scenario.description.is_none());
}

#[test]
fn set_overrides_default_and_is_typed() {
    let opts = benchctl::dsl::LoadOptions { sets: vec!["steady=1m30s".into()], ..Default::default() };
    let c = check_path(&fixture("imports/main.kdl"), &opts);
    assert!(!c.has_errors(), "{}", rendered(&c));
    assert_eq!(c.scenario.unwrap().scenario.phases[0].duration.as_ref().unwrap().value, Duration(90_000_000_000));
    let opts = benchctl::dsl::LoadOptions { sets: vec!["steady=#true".into()], ..Default::default() };
    let c = check_path(&fixture("imports/main.kdl"), &opts);
    assert_eq!(codes(&c), ["invalid-set"]);
}

#[test]
fn parameter_without_value_is_an_error() {
    let c = check_text(
        &wrap("    param \"n\" type=\"int\"\n    phase \"p2\" duration=\"1s\" { drive \"svc\" concurrency=\"$n\"; }"),
        &[],
    );
    assert!(codes(&c).contains(&"missing-option"), "{:?}", codes(&c));
    let c = check_text(
        &wrap("    param \"n\" type=\"int\"\n    phase \"p2\" duration=\"1s\" { drive \"svc\" concurrency=\"$n\"; }"),
        &["n=3"],
    );
    assert!(!c.has_errors(), "{}", rendered(&c));
}

#[test]
fn index_options_belong_to_their_backend() {
    let index = |props: &str| {
        wrap(&format!(
            "    workload \"rag\" kind=\"retrieval\" {{\n        index \"hnsw\" entries=1000 dim=8 {props}\n    }}\n    phase \"p2\" duration=\"1s\" {{ drive \"rag\" concurrency=1; }}"
        ))
    };
    let c = check_text(&index("backend=\"usearch\" quantization=\"f16\""), &[]);
    assert!(!c.has_errors(), "{}", rendered(&c));
    let WorkloadSpec::Retrieval(r) = &c.scenario.unwrap().scenario.workloads[1].spec else { panic!("retrieval") };
    assert_eq!(r.index.as_ref().unwrap().quantization.as_ref().unwrap().value, Quantization::F16);
    // hnsw_rs (the default backend) stores f32 only.
    let c = check_text(&index("quantization=\"i8\""), &[]);
    assert_eq!(codes(&c), ["conflicting-options"], "{}", rendered(&c));
    assert!(rendered(&c).contains("backend=\"usearch\""), "{}", rendered(&c));
    // hnsw_rs's build options do nothing in usearch: a warning each.
    let c = check_text(&index("backend=\"usearch\" keep-pruned=#true level-scale=0.5"), &[]);
    assert!(!c.has_errors(), "{}", rendered(&c));
    assert_eq!(codes(&c), ["conflicting-options", "conflicting-options"], "{}", rendered(&c));
    let c = check_text(&index("quantization=\"f64\" backend=\"usearch\""), &[]);
    assert_eq!(codes(&c), ["unknown-value"], "{}", rendered(&c));
    // i8 keeps only directions: cosine only.
    let c = check_text(&index("backend=\"usearch\" quantization=\"i8\" metric=\"cosine\""), &[]);
    assert!(!c.has_errors(), "{}", rendered(&c));
    for metric in ["", "metric=\"l2\"", "metric=\"dot\""] {
        let c = check_text(&index(&format!("backend=\"usearch\" quantization=\"i8\" {metric}")), &[]);
        assert_eq!(codes(&c), ["conflicting-options"], "{}", rendered(&c));
        assert!(rendered(&c).contains("cosine"), "{}", rendered(&c));
    }
}

#[test]
fn plan_snapshot() {
    let c = check_path(std::path::Path::new("scenarios/quick.kdl"), &Default::default());
    let v = c.scenario.as_ref().expect("quick is valid");
    let plan = benchctl::plan::build(v, &c.sources);
    insta::assert_snapshot!("plan_quick", benchctl::plan::render_text(&plan));
}

/// A selector holding a character no selector can (`recall@10`) is refused with the selector
/// cut at that character as the suggestion.
#[test]
fn a_selector_with_a_stray_character_suggests_the_metric() {
    let c = common::check_text(
        &common::wrap(
            "workload \"rag\" kind=\"retrieval\" {\n        index \"flat\" entries=1000 dim=8 metric=\"l2\"\n    }\n    phase \"p\" duration=\"1s\" { drive \"rag\" concurrency=1; }\n    expect \"rag.recall@10.mean > 0.5\"",
        ),
        &[],
    );
    let help: Vec<String> = c.diagnostics.iter().filter_map(|d| d.help.clone()).collect();
    assert!(help.iter().any(|h| h.contains("did you mean \"rag.recall.mean\"") && h.contains("`@10`")), "{help:?}");
    // Nothing readable left: the usage only.
    let c = common::check_text(&common::wrap("expect \"@@.## > 1\""), &[]);
    assert!(common::rendered(&c).contains("write workload.metric"), "{}", common::rendered(&c));
    assert!(!common::rendered(&c).contains("did you mean"), "{}", common::rendered(&c));
}

/// `ef-sweep` lints: a repeated value, and requests at an ef the sweep does not list; none
/// when the requests' ef is one of the sweep's.
#[test]
fn ef_sweep_lints() {
    let text = |query: &str, sweep: &str| {
        common::wrap(&format!(
            "workload \"rag\" kind=\"retrieval\" {{\n        index \"hnsw\" entries=1000 dim=8 metric=\"l2\"\n        {query}\n        ef-sweep {sweep}\n    }}\n    phase \"p\" duration=\"1s\" {{ drive \"rag\" concurrency=1; }}"
        ))
    };
    let c = common::check_text(&text("query ef=100", "16 32 32 64"), &[]);
    let messages: Vec<&str> =
        c.diagnostics.iter().filter(|d| d.code.as_str() == "ef-sweep").map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "the requests run at ef 100, which the sweep (16, 32, 64) does not list",
            "ef 32 is listed twice in the sweep"
        ],
        "{}",
        common::rendered(&c)
    );
    let c = common::check_text(&text("query ef=32", "16 32 64"), &[]);
    assert!(!common::codes(&c).contains(&"ef-sweep"), "{}", common::rendered(&c));
}
