//! The live dashboard and the static report in a real browser: Playwright (playwright-core
//! from the npm registry, tests/browser) drives Debian's headless chromium. Without
//! tests/browser/node_modules or chromium the tests say so and pass, unless
//! BENCHCTL_REQUIRE_PLAYWRIGHT=1 (.ci/run sets it after `npm ci`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Running;

use serde_json::Value;

fn browser_dir() -> Option<PathBuf> {
    let dir = common::root().join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = dir.join("node_modules/playwright-core").is_dir() && Path::new(&chromium).exists();
    if !ready {
        assert!(
            std::env::var("BENCHCTL_REQUIRE_PLAYWRIGHT").is_err(),
            "BENCHCTL_REQUIRE_PLAYWRIGHT is set but tests/browser/node_modules or chromium is missing"
        );
        eprintln!("skipped: run `npm ci` in tests/browser and install Debian's chromium to run this test");
        return None;
    }
    Some(dir)
}

/// Runs the Playwright script and returns what it observed.
fn observe(dir: &Path, mode: &str, target: &str) -> Value {
    let out = Command::new("node").current_dir(dir).args(["dashboard.mjs", mode, target]).output().expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("the browser script printed no JSON ({e}): {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    assert!(v["error"].is_null(), "{mode}: {}", v["error"]);
    assert_eq!(v["consoleErrors"], serde_json::json!([]), "{mode}: console errors");
    v
}

/// A `benchctl run --dashboard 127.0.0.1:0` in the background; returns it with the URL it
/// printed.
fn start_live(scenario: &Path, out: &Path) -> (Running, String) {
    let (out, scenario) = (out.to_str().unwrap(), scenario.to_str().unwrap());
    let (child, url, _, _) =
        common::start(&["run", "--dashboard", "127.0.0.1:0", "--out", out, scenario], &[], "dashboard: ");
    (child, url)
}

fn titles(v: &Value) -> Vec<String> {
    v["charts"].as_array().unwrap().iter().map(|c| c["title"].as_str().unwrap().to_string()).collect()
}

/// Made to fail halfway: phase one offers 200/s, phase two 5/s, so the run's throughput
/// falls through the 80/s bound about 6 s into phase two.
const HALFWAY_FAIL: &str = r#"scenario "live <b>&amp; \"co\"" {
    description "</script><script>window.pwned = 1</script>"
    seed 7
    workload "a" kind="synthetic" {
        latency "lognormal" median="2ms" sigma=0.3
        tokens count=8 gap="1ms"
    }
    phase "one" duration="4s" {
        drive "a" rate="200/s"
    }
    phase "two" duration="12s" {
        drive "a" rate="5/s"
    }
    probe "system" every="250ms"
    expect "a.throughput" ">=" "80/s"
}
"#;

#[test]
fn live_page_updates_turns_red_alerts_once_and_matches_the_report() {
    let Some(dir) = browser_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("live.kdl");
    std::fs::write(&scenario, HALFWAY_FAIL).unwrap();
    let out = tmp.path().join("out");
    let (mut child, url) = start_live(&scenario, &out);
    let live = observe(&dir, "live", &url);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "the run misses its expectation");

    // The charts update while the run goes on.
    let pts = live["throughputPoints"].as_array().unwrap();
    assert!(pts[1].as_u64() > pts[0].as_u64(), "the throughput chart did not grow: {pts:?}");
    // Pass first, fail later (possibly at risk in between), never back.
    let statuses: Vec<&str> = live["statuses"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(statuses.first(), Some(&"pass"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"fail"), "{statuses:?}");
    assert!(statuses.iter().all(|s| ["pass", "at_risk", "fail"].contains(s)), "{statuses:?}");
    // One alert within the 60 s cooldown, though every later window still fails.
    let counts: Vec<u64> = live["alertCounts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
    assert!(counts.iter().all(|&c| c <= 1), "the alert repeated within its cooldown: {counts:?}");
    let expect_alerts: Vec<&Value> =
        live["alerts"].as_array().unwrap().iter().filter(|k| k.as_str().unwrap().starts_with("expect:")).collect();
    assert_eq!(expect_alerts.len(), 1, "{}", live["alerts"]);
    assert_eq!(live["finalState"], "finished");
    assert_eq!(live["pwned"], false, "the hostile description ran as script");
    assert_eq!(live["heading"], "live <b>&amp; \"co\"", "the name is shown as text");
    assert_eq!(live["title"], "benchctl: live <b>&amp; \"co\"");
    assert!(live["verdict"].as_array().unwrap().iter().any(|b| b == "failed"), "{}", live["verdict"]);
    // Only the page and its event stream were requested.
    for r in live["requests"].as_array().unwrap() {
        assert!(r.as_str().unwrap().starts_with(url.trim_end_matches('/')), "unexpected request {r}");
    }
    // 390 px wide: no horizontal scrolling of the page, readable chart text, charts inside.
    let phone = &live["phone"];
    assert!(phone["pageWidth"].as_f64() <= phone["viewport"].as_f64(), "page overflows at 390 px: {phone}");
    assert!(phone["minChartText"].as_f64().unwrap() >= 10.0, "chart text too small at 390 px: {phone}");
    assert!(phone["widestChartRight"].as_f64() <= phone["viewport"].as_f64(), "{phone}");
    for t in phone["tables"].as_array().unwrap() {
        assert!(t["overflowX"] == "auto" || t["scrolls"] == false, "a table is clipped: {t}");
    }

    // The result records the alert.
    let result: Value = serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let alerts = result["dashboard"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.iter().filter(|a| a["category"] == "performance").count(), 1, "{alerts:?}");

    // The static report: the same charts, no console errors, no network.
    let report = observe(&dir, "report", out.join("report.html").to_str().unwrap());
    assert_eq!(titles(&report), titles(&live), "the report draws what the live page drew at the end");
    for r in report["requests"].as_array().unwrap() {
        let r = r.as_str().unwrap();
        assert!(r.starts_with("file://") || r.starts_with("data:"), "the report fetched {r}");
    }
    assert!(titles(&report).iter().any(|t| t.contains("spectrum")), "{:?}", titles(&report));
    // Every recorded alert, and no other (a busy machine may add a resource alert to the
    // performance one: the report shows what the run recorded).
    assert_eq!(report["alerts"].as_array().unwrap().len(), alerts.len(), "the report shows the recorded alerts");
    assert_eq!(report["phaseRows"], 2, "a row per phase and workload");
    assert_eq!(report["pwned"], false, "the hostile description ran as script in the report");
    let phone = &report["phone"];
    assert!(phone["pageWidth"].as_f64() <= phone["viewport"].as_f64(), "report overflows at 390 px: {phone}");
    assert!(phone["minChartText"].as_f64().unwrap() >= 10.0, "{phone}");
}

/// Expectations with long details, a capacity search's step table, setups and per-phase
/// tables: the report must read at a desktop and a phone width.
const MANY_TABLES: &str = r#"scenario "layout" {
    seed 3
    workload "a" kind="synthetic" {
        latency "lognormal" median="2ms" sigma=0.5
        tokens count=4 gap="500us"
    }
    workload "b-with-a-rather-long-workload-name" kind="synthetic" {
        latency "fixed" value="5ms"
        tokens count=4 gap="1ms"
        slots 2
    }
    phase "one" duration="2s" {
        drive "a" rate="300/s"
    }
    phase "cap" {
        search "b-with-a-rather-long-workload-name" concurrency="1..8" slo="latency.mean < 9ms" settle="200ms" step-duration="2s"
    }
    probe "system" every="250ms"
    expect "a.latency.p95" "<" "50ms"
    expect "a.ttft.p50" "<" "1us" severity="warn"
    expect "a.itl.p99" "<" "550us"
    expect "a.throughput" ">=" "280/s"
}
"#;

/// At 1280 and 390 px, no element of the report is wider than its card and no cell is
/// squeezed into a column a few characters wide (the expectations' details once were).
#[test]
fn report_reads_at_desktop_and_phone_widths() {
    let Some(dir) = browser_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("layout.kdl");
    std::fs::write(&scenario, MANY_TABLES).unwrap();
    let out = tmp.path().join("out");
    let o = common::benchctl(&["run", "--quiet", "--out", out.to_str().unwrap(), scenario.to_str().unwrap()]);
    assert!(out.join("report.html").exists(), "no report: {}", String::from_utf8_lossy(&o.stderr));
    let report = observe(&dir, "report", out.join("report.html").to_str().unwrap());
    for width in ["desktopFit", "phoneFit"] {
        let fit = &report[width];
        assert!(fit["pageWidth"].as_f64() <= fit["viewport"].as_f64(), "{width}: the page scrolls sideways: {fit}");
        assert_eq!(fit["wide"], serde_json::json!([]), "{width}: elements wider than their card");
        assert_eq!(fit["squeezed"], serde_json::json!([]), "{width}: cells squeezed into a narrow column");
    }
    assert_eq!(report["desktopFit"]["viewport"], 1280);
}

#[test]
fn history_page_draws_trends_with_markers() {
    let Some(dir) = browser_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    // Three runs of one scenario; the third is much slower (a regression against the first).
    for (i, median) in ["2ms", "2ms", "12ms"].iter().enumerate() {
        let scenario = tmp.path().join(format!("h{i}.kdl"));
        std::fs::write(
            &scenario,
            format!(
                "scenario \"hist\" {{\n    workload \"a\" kind=\"synthetic\" {{\n        latency \"lognormal\" median=\"{median}\" sigma=0.2\n    }}\n    phase \"p\" duration=\"1s\" {{\n        drive \"a\" concurrency=2\n    }}\n}}\n"
            ),
        )
        .unwrap();
        let o = common::benchctl(&[
            "run",
            "--quiet",
            "--out",
            runs.join(format!("r{i}")).to_str().unwrap(),
            scenario.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (mut child, url, _, _) =
        common::start(&["dashboard", runs.to_str().unwrap(), "--addr", "127.0.0.1:0"], &[], "history: ");
    let v = observe(&dir, "history", &url);
    let _ = child.kill();
    let _ = child.wait();
    assert!(!titles(&v).is_empty(), "no trend chart");
    assert!(titles(&v)[0].contains("latency p95"), "{:?}", titles(&v));
    assert!(
        v["markers"].as_array().unwrap().iter().any(|m| m.as_str().unwrap().contains("regression")),
        "no regression marker: {}",
        v["markers"]
    );
    assert!(v["exportCsv"].as_str().unwrap().contains("/export.csv"));
    let after = serde_json::json!({"charts": v["chartsAfterFilter"]});
    assert!(titles(&after).iter().all(|t| t.contains("throughput")), "the metric filter: {:?}", titles(&after));
    let phone = &v["phone"];
    assert!(phone["pageWidth"].as_f64() <= phone["viewport"].as_f64(), "history overflows at 390 px: {phone}");
}
