//! Split and fleet runs: real `benchctl run --shard` processes merged by `benchctl merge`,
//! the exactness of the merge, every bad-input case (exit 4, named), and fleet outliers.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use proptest::prelude::*;
use serde_json::Value;

/// Closed loops with request budgets: the counts do not depend on timing.
const SCENARIO: &str = r#"
scenario "split-test" {
    seed 11
    workload "svc" kind="synthetic" {
        latency "lognormal" median="1ms" sigma=0.3
        errors probability="2%"
    }
    workload "batch" kind="synthetic" {
        latency "fixed" value="500us"
        tokens count=4 gap="100us"
    }
    phase "budget" {
        drive "svc" concurrency=5 requests=301
        drive "batch" concurrency=3 requests=100
    }
    phase "open" duration="1s" {
        drive "svc" rate="200/s" arrivals="constant"
    }
    expect "svc.requests" ">=" 450
    expect "batch.requests" "==" 100
}
"#;

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_benchctl"));
    c.args(args).env("NO_COLOR", "1").env_remove("BENCHCTL_STDLIB");
    for k in ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "SLURM_PROCID", "BENCHCTL_RUN_ID", "NODE_NAME"] {
        c.env_remove(k);
    }
    c.envs(envs.iter().copied());
    c.output().expect("benchctl runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn write(p: &Path, v: &Value) {
    std::fs::write(p, serde_json::to_vec(v).unwrap()).unwrap();
}

/// A record's histogram of `m` (empty when the record has no samples of it).
fn hist(w: &Value, m: &str) -> hdrhistogram::Histogram<u64> {
    w["histograms"][m]["data"].as_str().map_or_else(benchctl::stats::histogram, |d| benchctl::stats::decode(d).unwrap())
}

fn buckets(h: &hdrhistogram::Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
}

/// Three shards run as separate processes into one folder, with the same run id.
fn three_shards(dir: &Path) -> PathBuf {
    let file = dir.join("split.kdl");
    std::fs::write(&file, SCENARIO).unwrap();
    let out = dir.join("shards");
    let children: Vec<_> = (0..3)
        .map(|i| {
            common::Running(
                Command::new(env!("CARGO_BIN_EXE_benchctl"))
                    .args([
                        "run",
                        file.to_str().unwrap(),
                        "--shard",
                        &format!("{i}/3"),
                        "--out",
                        out.to_str().unwrap(),
                        "-q",
                    ])
                    .args(["--run-id", "test-run"])
                    .env("NO_COLOR", "1")
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    out
}

#[test]
fn shards_merge_exactly_into_the_unsplit_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out = three_shards(dir.path());
    let file = dir.path().join("split.kdl");
    let whole = run(&["run", file.to_str().unwrap(), "--out", dir.path().join("whole").to_str().unwrap(), "-q"], &[]);
    assert_eq!(whole.status.code(), Some(0), "{}", text(&whole));
    let merged = run(&["merge", out.to_str().unwrap(), "--expect", "3"], &[]);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    assert!(text(&merged).contains("merged 3 of 3 shards"), "{}", text(&merged));

    let m = json(&out.join("merged/result.json"));
    let w = json(&dir.path().join("whole/result.json"));
    let shards: Vec<Value> = (0..3).map(|i| json(&out.join(format!("shard-{i:05}-of-3.json")))).collect();
    // The budgets were split into parts that add up (301 = 101 + 100 + 100).
    let budget: Vec<u64> =
        shards.iter().map(|s| s["phases"][0]["workloads"]["svc"]["requests"].as_u64().unwrap()).collect();
    assert_eq!(budget, vec![101, 100, 100]);
    assert_eq!(shards[0]["shard"]["drives"][0]["runs"], "concurrency=2 requests=101");
    // Closed-loop counts equal the unsplit run's.
    for (wl, n) in [("svc", 301), ("batch", 100)] {
        assert_eq!(m["phases"][0]["workloads"][wl]["requests"], n);
        assert_eq!(w["phases"][0]["workloads"][wl]["requests"], n);
    }
    assert_eq!(m["benchmarks"]["batch"]["output_tokens"], w["benchmarks"]["batch"]["output_tokens"]);
    // Every merged histogram is the sum of the shards' bucket by bucket, counters add.
    for (pi, phase) in m["phases"].as_array().unwrap().iter().enumerate() {
        for (wl, rec) in phase["workloads"].as_object().unwrap() {
            for metric in rec["histograms"].as_object().unwrap().keys() {
                let mut sum = benchctl::stats::histogram();
                for s in &shards {
                    sum.add(hist(&s["phases"][pi]["workloads"][wl], metric)).unwrap();
                }
                assert_eq!(buckets(&hist(rec, metric)), buckets(&sum), "{wl}.{metric} in phase {pi}");
            }
            for k in ["requests", "errors", "sent", "unsent", "dropped"] {
                let total: u64 = shards.iter().map(|s| s["phases"][pi]["workloads"][wl][k].as_u64().unwrap_or(0)).sum();
                assert_eq!(rec[k].as_u64().unwrap_or(0), total, "{wl}.{k}");
            }
        }
    }
    // Open loop: 1/3 of 200/s each, throughput over the union of the spans.
    let open = &m["phases"][1];
    let span = open["duration_s"].as_f64().unwrap();
    let ok =
        open["workloads"]["svc"]["requests"].as_u64().unwrap() - open["workloads"]["svc"]["errors"].as_u64().unwrap();
    assert!((open["workloads"]["svc"]["throughput"].as_f64().unwrap() - ok as f64 / span).abs() < 1e-6);
    assert!((1.0..3.0).contains(&span), "{span}");
    let sent = open["workloads"]["svc"]["intended"].as_u64().unwrap();
    assert!((195..=205).contains(&sent), "intended arrivals {sent}");
    // Shares, skew and the merge's own record; expectations evaluated once.
    let mm = &m["merge"];
    assert_eq!(
        (mm["mode"].as_str(), mm["merged"].as_u64(), mm["run_id"].as_str()),
        (Some("split"), Some(3), Some("test-run"))
    );
    let shares: f64 = mm["shards"].as_array().unwrap().iter().map(|s| s["achieved_share"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    assert!(mm["start_skew_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(m["overall_assessment"]["verdict"], "passed", "{}", m["evaluation"]);
    for f in ["report.html", "junit.xml", "summary.md"] {
        assert!(out.join("merged").join(f).exists(), "{f}");
    }
    // A shard carries no verdict of its own.
    assert!(shards[0].get("evaluation").is_none());
}

#[test]
fn bad_shards_exit_4_with_the_shard_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = three_shards(dir.path());
    let case = |name: &str, edit: &dyn Fn(&Path)| -> String {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..3 {
            let f = format!("shard-{i:05}-of-3.json");
            std::fs::copy(out.join(&f), d.join(&f)).unwrap();
        }
        edit(&d);
        let o = run(&["merge", d.to_str().unwrap(), "--expect", "3", "-q"], &[]);
        assert_eq!(o.status.code(), Some(4), "{name}: {}", text(&o));
        assert!(!d.join("merged/result.json").exists(), "{name}");
        text(&o)
    };
    let f1 = |d: &Path| d.join("shard-00001-of-3.json");
    let t = case("missing", &|d| std::fs::remove_file(f1(d)).unwrap());
    assert!(t.contains("missing shard 1 of 3"), "{t}");
    let t = case("truncated", &|d| {
        let bytes = std::fs::read(f1(d)).unwrap();
        std::fs::write(f1(d), &bytes[..bytes.len() / 2]).unwrap();
    });
    assert!(t.contains("shard-00001-of-3.json: truncated"), "{t}");
    let t = case("duplicate", &|d| {
        std::fs::copy(f1(d), d.join("shard-00001-again.json")).unwrap();
    });
    assert!(t.contains("shard-00001-of-3.json") && t.contains("duplicate of shard 1"), "{t}");
    let edit = |d: &Path, f: &dyn Fn(&mut Value)| {
        let mut v = json(&f1(d));
        f(&mut v);
        write(&f1(d), &v);
    };
    let t = case("hash", &|d| edit(d, &|v| v["shard"]["scenario_hash"] = "ab".repeat(32).into()));
    assert!(t.contains("shard-00001-of-3.json: ran another scenario"), "{t}");
    let t = case("version", &|d| edit(d, &|v| v["benchctl_version"] = "0.0.9".into()));
    assert!(t.contains("shard-00001-of-3.json: written by benchctl \"0.0.9\""), "{t}");
    let t = case("run", &|d| edit(d, &|v| v["shard"]["run_id"] = "other-run".into()));
    assert!(t.contains("belongs to run \"other-run\""), "{t}");
    let t = case("count", &|d| edit(d, &|v| v["shard"]["count"] = 4.into()));
    assert!(t.contains("shard-00001-of-3.json: shard 1 of a 4-shard run"), "{t}");
    let t = case("precision", &|d| {
        edit(d, &|v| {
            let mut h = hdrhistogram::Histogram::<u64>::new(2).unwrap();
            h.auto(true);
            h.record(1_000_000).unwrap();
            v["phases"][0]["workloads"]["svc"]["histograms"]["latency"]["data"] = benchctl::stats::encode(&h).into();
        })
    });
    assert!(
        t.contains("shard-00001-of-3.json: histogram `latency` of `svc`") && t.contains("2 significant digits"),
        "{t}"
    );
    let t = case("damaged", &|d| {
        edit(d, &|v| v["phases"][0]["workloads"]["svc"]["histograms"]["latency"]["data"] = "AAAA".into())
    });
    assert!(t.contains("shard-00001-of-3.json: damaged"), "{t}");
    let t = case("not-a-shard", &|d| edit(d, &|v| v["shard"] = Value::Null));
    assert!(t.contains("shard-00001-of-3.json: not a shard file"), "{t}");
    // --allow-missing merges what is there and says so.
    let d = dir.path().join("allowed");
    std::fs::create_dir_all(&d).unwrap();
    for i in [0, 2] {
        let f = format!("shard-{i:05}-of-3.json");
        std::fs::copy(out.join(&f), d.join(&f)).unwrap();
    }
    let o = run(&["merge", d.to_str().unwrap(), "--expect", "3", "--allow-missing", "1", "-q"], &[]);
    assert_eq!(o.status.code(), Some(1), "the budgets are short of 501: {}", text(&o));
    let m = json(&d.join("merged/result.json"));
    assert_eq!(m["merge"]["missing"], serde_json::json!([1]));
    assert!(m["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "shards_missing"));
}

#[test]
fn identity_from_the_environment_and_the_start_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("split.kdl");
    std::fs::write(&file, SCENARIO).unwrap();
    let out = dir.path().join("k8s");
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3;
    let at = benchctl::result::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(start));
    let o = run(
        &["run", file.to_str().unwrap(), "--shard-from-env", "--start-at", &at, "--out", out.to_str().unwrap(), "-q"],
        &[("JOB_COMPLETION_INDEX", "1"), ("BENCHCTL_SHARD_COUNT", "2"), ("BENCHCTL_RUN_ID", "job-uid")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = json(&out.join("shard-00001-of-2.json"));
    assert_eq!((s["shard"]["index"].as_u64(), s["shard"]["count"].as_u64()), (Some(1), Some(2)));
    assert_eq!(s["shard"]["run_id"], "job-uid");
    assert!(s["shard"]["source"].as_str().unwrap().contains("JOB_COMPLETION_INDEX"));
    assert!(s["shard"]["started_unix_s"].as_f64().unwrap() >= start as f64, "{}", s["shard"]);
    // Missing count, or a search phase, is refused before anything runs.
    let o = run(&["run", file.to_str().unwrap(), "--shard-from-env", "-q"], &[("JOB_COMPLETION_INDEX", "0")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("BENCHCTL_SHARD_COUNT"), "{}", text(&o));
    let o = run(&["run", "scenarios/selftest.kdl", "--shard", "0/2", "--out", out.to_str().unwrap(), "-q"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("breaking-point search"), "{}", text(&o));
    let o = run(&["run", file.to_str().unwrap(), "--shard", "2/2", "-q"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not below the count"), "{}", text(&o));
}

/// A fleet of `n` members made from one real member's result: node names, and `tok/s`-like
/// throughput scaled per node.
fn fleet(dir: &Path, name: &str, factors: &[f64]) -> (Output, Value) {
    let member = dir.join("member");
    if !member.exists() {
        let file = dir.join("split.kdl");
        std::fs::write(&file, SCENARIO).unwrap();
        let o = run(
            &["run", file.to_str().unwrap(), "--fleet-member", "--out", member.to_str().unwrap(), "-q"],
            &[("NODE_NAME", "gpu-a")],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let listing: Vec<_> = std::fs::read_dir(&member).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(member.join("fleet-gpu-a.json").exists(), "{listing:?}");
    let base = json(&member.join("fleet-gpu-a.json"));
    assert_eq!(base["fleet"]["node"], "gpu-a");
    assert_eq!(base["fleet"]["node_source"], "NODE_NAME");
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    for (i, f) in factors.iter().enumerate() {
        let mut v = base.clone();
        let node = format!("gpu-{i:02}");
        v["fleet"]["node"] = node.clone().into();
        for w in ["svc", "batch"] {
            let t = v["benchmarks"][w]["throughput"].as_f64().unwrap();
            v["benchmarks"][w]["throughput"] = (t * f).into();
            // Latency percentiles grow as throughput falls.
            let p = v["benchmarks"][w]["metrics"]["latency"]["p95"].as_f64().unwrap();
            v["benchmarks"][w]["metrics"]["latency"]["p95"] = (p / f).into();
        }
        write(&d.join(format!("fleet-{node}.json")), &v);
    }
    let o = run(&["merge", d.to_str().unwrap(), "--expect", &factors.len().to_string(), "-q"], &[]);
    assert!(d.join("merged/fleet.json").exists(), "{}", text(&o));
    let doc = json(&d.join("merged/fleet.json"));
    (o, doc)
}

#[test]
fn fleet_outliers() {
    let dir = tempfile::tempdir().unwrap();
    // Twelve nodes within +-0.5 %, one 8 % slow: flagged, worst first, z beyond the cut.
    let mut f: Vec<f64> = (0..11).map(|i| 1.0 + (i as f64 - 5.0) * 0.001).collect();
    f.insert(4, 0.92);
    let (o, doc) = fleet(dir.path(), "twelve", &f);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(doc["verdict"], "failed");
    let slow: Vec<&str> = doc["outliers"].as_array().unwrap().iter().map(|x| x["node"].as_str().unwrap()).collect();
    assert!(!slow.is_empty() && slow.iter().all(|n| *n == "gpu-04"), "{slow:?}");
    assert!(doc["outliers"][0]["z"].as_f64().unwrap().abs() > 3.5);
    assert_eq!(doc["nodes"][0]["node"], "gpu-04", "worst first");
    assert!(std::fs::read_to_string(dir.path().join("twelve/merged/fleet.md")).unwrap().contains("| gpu-04 |"));
    // Identical nodes: nothing flagged, MAD = 0 handled.
    let (o, doc) = fleet(dir.path(), "same", &[1.0; 12]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(doc["outliers"], serde_json::json!([]));
    // Three nodes: the deviation alone, no z-score.
    let (o, doc) = fleet(dir.path(), "three", &[1.0, 1.0, 0.92]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(doc["rule"].as_str().unwrap().starts_with("fewer than 10 nodes"));
    assert!(doc["outliers"][0]["z"].is_null());
    // A missing node and a duplicate node exit 4, named.
    let o = run(&["merge", dir.path().join("three").to_str().unwrap(), "--expect", "4", "-q"], &[]);
    assert_eq!(o.status.code(), Some(4));
    assert!(text(&o).contains("1 of 4 nodes sent no result"), "{}", text(&o));
    std::fs::copy(dir.path().join("three/fleet-gpu-00.json"), dir.path().join("three/fleet-copy.json")).unwrap();
    let o = run(&["merge", dir.path().join("three").to_str().unwrap(), "--expect", "4", "-q"], &[]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        text(&o).contains("fleet-gpu-00.json") && text(&o).contains("second result of node `gpu-00`"),
        "{}",
        text(&o)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// One seeded sample stream dealt round-robin into N histograms, each serialised and read
    /// back, then added: bucket by bucket the unsplit histogram.
    #[test]
    fn round_robin_histograms_merge_exactly(seed in any::<u64>(), n in 1usize..17, len in 0usize..4000) {
        let mut rng = benchctl::random::Rng::new(seed);
        let mut whole = benchctl::stats::histogram();
        let mut parts: Vec<_> = (0..n).map(|_| benchctl::stats::histogram()).collect();
        for i in 0..len {
            // Latencies from 1 us to about 10 s, log-spread.
            let v = (1e3 * (rng.next_u64() as f64 / u64::MAX as f64 * 16.0).exp()) as u64;
            whole.record(v).unwrap();
            parts[i % n].record(v).unwrap();
        }
        let mut merged = benchctl::stats::histogram();
        for p in &parts {
            let back = benchctl::stats::decode(&benchctl::stats::encode(p)).unwrap();
            merged.add(&back).unwrap();
        }
        prop_assert_eq!(buckets(&merged), buckets(&whole));
        prop_assert_eq!(merged.len(), len as u64);
    }
}
