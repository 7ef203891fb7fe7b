//! The dashboard's servers over real sockets: where they bind, the token off loopback, a
//! stalled event-stream client against the run's timing, escaping of hostile names, the
//! history's exports and the monitor.

mod common;

use common::start;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A plain HTTP/1.1 GET; returns the status code and the body (the server closes the
/// connection after one answer because the request says so).
fn get(addr: &str, path: &str, header: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let extra = header.map(|h| format!("{h}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

/// Headers of a GET, lower-cased names.
fn headers(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.split_once("\r\n\r\n").map(|(h, _)| h.to_lowercase()).unwrap_or_default()
}

/// `http://HOST:PORT/?token=T` -> ("HOST:PORT", Some(T)).
fn split_url(url: &str) -> (String, Option<String>) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (hostport, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let token = tail.split_once("token=").map(|(_, t)| t.split('&').next().unwrap().to_string());
    (hostport.to_string(), token)
}

fn scenario(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const SHORT: &str = r#"scenario "short" {
    workload "a" kind="synthetic" {
        latency "lognormal" median="1ms" sigma=0.2
    }
    phase "p" duration="3s" {
        drive "a" rate="100/s"
    }
}
"#;

fn result(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap()
}

#[test]
fn default_bind_is_loopback_and_the_page_is_served_with_strict_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path(), "s.kdl", SHORT);
    let out = tmp.path().join("out");
    let (mut child, url, seen, _rx) =
        start(&["run", "--dashboard", "--out", out.to_str().unwrap(), file.to_str().unwrap()], &[], "dashboard: ");
    let (addr, token) = split_url(&url);
    assert!(addr.starts_with("127.0.0.1:"), "default bind: {url}");
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    assert!((5665..5665 + 20).contains(&port), "port 5665 or the next free one: {port}");
    assert!(token.is_none(), "no token on loopback: {url}");
    assert!(!seen.contains("warning"), "no warning on loopback: {seen}");
    let (code, body) = get(&addr, "/", None);
    assert_eq!(code, 200);
    assert!(body.contains("Benchctl.boot"), "the page: {}", &body[..body.len().min(300)]);
    let h = headers(&addr, "/");
    assert!(h.contains("content-security-policy: default-src 'none'"), "{h}");
    assert!(h.contains("x-content-type-options: nosniff"), "{h}");
    let (code, events) = get(&addr, "/events.json", None);
    assert_eq!(code, 200);
    let events: Value = serde_json::from_str(&events).unwrap();
    assert_eq!(events[0]["type"], "scenario", "a late joiner gets the history from the start");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    // The server exits with the run.
    assert!(TcpStream::connect(&addr).is_err(), "still listening after the run");
}

#[test]
fn off_loopback_needs_the_token_and_warns() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path(), "s.kdl", SHORT);
    let out = tmp.path().join("out");
    let (mut child, url, seen, rx) = start(
        &["run", "--dashboard", "0.0.0.0:0", "--out", out.to_str().unwrap(), file.to_str().unwrap()],
        &[],
        "dashboard: ",
    );
    let (_, token) = split_url(&url);
    let token = token.expect("a generated token in the printed URL");
    assert_eq!(token.len(), 32, "{token}");
    // The warning comes on the next line.
    let warning = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(warning.starts_with("warning:") && warning.contains("0.0.0.0"), "{seen}{warning}");
    let port = split_url(&url).0.rsplit(':').next().unwrap().to_string();
    let addr = format!("127.0.0.1:{port}");
    assert_eq!(get(&addr, "/", None).0, 401, "no token");
    assert_eq!(get(&addr, "/?token=wrong", None).0, 401, "a wrong token");
    assert_eq!(get(&addr, "/events.json", None).0, 401);
    assert_eq!(get(&addr, &format!("/?token={token}"), None).0, 200);
    assert_eq!(get(&addr, "/events.json", Some(&format!("Authorization: Bearer {token}"))).0, 200);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(!std::fs::read_to_string(out.join("result.json")).unwrap().contains(&token), "the token is not recorded");

    // A token from the environment is used as given and not printed.
    let (mut child, url, seen, _rx) = start(
        &["run", "--dashboard", "0.0.0.0:0", "--out", out.to_str().unwrap(), file.to_str().unwrap()],
        &[("BENCHCTL_DASHBOARD_TOKEN", "s3cret-from-env")],
        "dashboard: ",
    );
    assert!(!url.contains("s3cret"), "{url}");
    assert!(seen.contains("BENCHCTL_DASHBOARD_TOKEN") || !seen.contains("s3cret"), "{seen}");
    let port = split_url(&url).0.rsplit(':').next().unwrap().to_string();
    let addr = format!("127.0.0.1:{port}");
    assert_eq!(get(&addr, "/", None).0, 401);
    assert_eq!(get(&addr, "/?token=s3cret-from-env", None).0, 200);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// A TCP connection whose receive buffer is set small before it connects (so the window
/// it offers stays small).
fn small_buffer_connect(addr: &str) -> TcpStream {
    use std::os::fd::FromRawFd;
    let sa: std::net::SocketAddrV4 = addr.parse().unwrap();
    // SAFETY: plain socket calls on a descriptor this function owns until it is handed to
    // TcpStream, which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        let size: libc::c_int = 2048;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, (&size as *const libc::c_int).cast(), len);
        let raw = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: sa.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(*sa.ip()).to_be() },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            (&raw as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "connect {addr}");
        TcpStream::from_raw_fd(fd)
    }
}

#[test]
fn stalled_event_stream_clients_do_not_slow_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    // Probes every 10 ms make a steady flood of events.
    let file = scenario(
        tmp.path(),
        "s.kdl",
        "scenario \"flood\" {\n    workload \"a\" kind=\"synthetic\" {\n        latency \"lognormal\" median=\"1ms\" sigma=0.2\n    }\n    phase \"p\" duration=\"4s\" {\n        drive \"a\" concurrency=4\n    }\n    probe \"system\" every=\"10ms\"\n    probe \"process\" every=\"10ms\"\n}\n",
    );
    let out = tmp.path().join("out");
    let began = Instant::now();
    let (mut child, url, _, _rx) = start(
        &["run", "--dashboard", "127.0.0.1:0", "--out", out.to_str().unwrap(), file.to_str().unwrap()],
        &[("BENCHCTL_DASHBOARD_QUEUE", "16")],
        "dashboard: ",
    );
    let (addr, _) = split_url(&url);
    // Eight clients ask for the stream and never read a byte; their receive buffers are
    // small, so the server's writes to them block once the kernel's buffers are full (the
    // hub's own test shows such a client dropped once it falls a queue behind).
    let stalled: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = small_buffer_connect(&addr);
            write!(s, "GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
            s
        })
        .collect();
    let code = child.wait().unwrap().code();
    let wall = began.elapsed();
    drop(stalled);
    assert_eq!(code, Some(0));
    let doc = result(&out);
    let d = &doc["dashboard"];
    assert_eq!(d["events_dropped"], 0, "the engine's events all reached the dashboard: {d}");
    assert_eq!(d["clients"], 8, "{d}");
    let dur = doc["duration_s"].as_f64().unwrap();
    assert!(dur < 6.0, "the 4 s run took {dur} s");
    assert!(wall < Duration::from_secs(30), "the process exited with the run: {wall:?}");
    // The engine measured what it would have without the clients (no gaps in its windows).
    let series = doc["phases"][0]["workloads"]["a"]["series"].as_array().unwrap();
    assert!(series.len() >= 4, "{}", series.len());
}

#[test]
fn hostile_names_are_escaped_in_the_page_and_the_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(
        tmp.path(),
        "s.kdl",
        "scenario \"</title><script>alert(1)</script>\" {\n    description \"</script><img src=x onerror=alert(2)>\"\n    workload \"a\" kind=\"synthetic\" {\n        latency \"lognormal\" median=\"1ms\" sigma=0.2\n    }\n    phase \"p\" duration=\"2s\" {\n        drive \"a\" rate=\"50/s\"\n    }\n}\n",
    );
    let out = tmp.path().join("out");
    let (mut child, url, _, _rx) = start(
        &["run", "--dashboard", "127.0.0.1:0", "--out", out.to_str().unwrap(), file.to_str().unwrap()],
        &[],
        "dashboard: ",
    );
    let (addr, _) = split_url(&url);
    let (_, page) = get(&addr, "/", None);
    assert!(
        page.contains("<title>benchctl: &lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;</title>"),
        "{}",
        &page[..400]
    );
    assert!(!page.contains("<script>alert(1)"), "raw name in the page");
    let (_, events) = get(&addr, "/events.json", None);
    let v: Value = serde_json::from_str(&events).expect("the stream's history is JSON");
    assert_eq!(v[0]["name"], "</title><script>alert(1)</script>", "JSON carries the text as text");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    // The static report embeds the same events without a way out of its script element.
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!report.contains("<img src=x"), "raw description in the report");
    let data = report.split("id=\"benchctl-data\">").nth(1).unwrap().split("</script>").next().unwrap();
    let parsed: Value = serde_json::from_str(data).expect("the embedded events parse");
    assert_eq!(parsed[0]["description"], "</script><img src=x onerror=alert(2)>");
}

#[test]
fn a_busy_written_port_is_an_error_before_the_run() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path(), "s.kdl", SHORT);
    let o = common::benchctl(&[
        "run",
        "--dashboard",
        &addr,
        "--out",
        tmp.path().join("o").to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&addr) && err.contains("in use"), "{err}");
    assert!(!tmp.path().join("o/result.json").exists(), "nothing ran");
    let o = common::benchctl(&["run", "--dashboard", "not an address", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn history_exports_csv_and_json_with_a_regression_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    for (i, median) in ["2ms", "2ms", "2ms", "15ms"].iter().enumerate() {
        let f = scenario(
            tmp.path(),
            &format!("h{i}.kdl"),
            &format!(
                "scenario \"=cmd|' /C calc'!A0\" {{\n    workload \"a\" kind=\"synthetic\" {{\n        latency \"lognormal\" median=\"{median}\" sigma=0.1\n    }}\n    phase \"p\" duration=\"1s\" {{\n        drive \"a\" concurrency=2\n    }}\n}}\n"
            ),
        );
        let o = common::benchctl(&[
            "run",
            "--quiet",
            "--out",
            runs.join(format!("r{i}")).to_str().unwrap(),
            f.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
    std::fs::write(runs.join("broken.json"), "{ not json").unwrap();
    let (mut child, url, _, rx) =
        start(&["dashboard", runs.to_str().unwrap(), "--addr", "127.0.0.1:0"], &[], "history: ");
    let counted = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(counted.starts_with("4 runs in 1 series"), "{counted}");
    let skipped = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(skipped.contains("broken.json"), "the unreadable file is named: {skipped}");
    let (addr, _) = split_url(&url);
    let (code, api) = get(&addr, "/api/runs", None);
    assert_eq!(code, 200);
    let h: Value = serde_json::from_str(&api).unwrap();
    assert_eq!(h["runs"].as_array().unwrap().len(), 4);
    let markers = h["markers"].as_array().unwrap();
    assert!(
        markers.iter().any(|m| m["kind"] == "regression" && m["metric"] == "latency_p95" && m["run"] == 3),
        "the slow fourth run is marked: {markers:?}"
    );
    // The three identical runs are not marked, even on a busy machine: a point needs the
    // evidence `compare` needs (one run each: the bootstrap interval and the noise floor).
    assert!(
        !markers.iter().any(|m| m["kind"] == "regression" && m["metric"] == "latency_p95" && m["run"] != 3),
        "only the slow run: {markers:?}"
    );
    let slow = markers.iter().find(|m| m["kind"] == "regression" && m["metric"] == "latency_p95").unwrap();
    assert!(slow["rule"].as_str().unwrap().starts_with("within run (bootstrap + noise floor)"), "{slow}");
    let (code, csv) = get(&addr, "/export.csv?metric=latency_p95", None);
    assert_eq!(code, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].contains("scenario") && lines[0].contains("value"), "{}", lines[0]);
    assert_eq!(lines.len(), 5, "a header and a row per run: {csv}");
    assert!(!lines[1].starts_with('='), "a formula is defused: {}", lines[1]);
    assert!(lines.iter().skip(1).all(|l| l.contains("'=cmd")), "{csv}");
    let (code, json) = get(&addr, "/export.json?metric=latency_p95", None);
    assert_eq!(code, 200);
    let rows: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 4, "{rows}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn monitor_streams_probe_readings_and_stops_after_its_duration() {
    let (mut child, url, _, _rx) =
        start(&["monitor", "--addr", "127.0.0.1:0", "--every", "200ms", "--duration", "3s"], &[], "monitor: ");
    let (addr, _) = split_url(&url);
    std::thread::sleep(Duration::from_millis(1200));
    let (code, events) = get(&addr, "/events.json", None);
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&events).unwrap();
    let probes: Vec<&Value> = v.as_array().unwrap().iter().filter(|e| e["type"] == "probe").collect();
    assert!(probes.iter().any(|e| e["probe"] == "system"), "{v}");
    assert!(probes.iter().any(|e| e["probe"] == "process"), "{v}");
    let began = Instant::now();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(began.elapsed() < Duration::from_secs(10));
}

#[test]
fn the_history_server_outlives_a_closed_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = common::Running(
        Command::new(env!("CARGO_BIN_EXE_benchctl"))
            .args(["dashboard", tmp.path().to_str().unwrap(), "--addr", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    {
        let mut r = BufReader::new(child.stderr.take().unwrap());
        r.read_line(&mut first).unwrap();
    } // The reader is gone: the server's next lines meet a closed pipe.
    let (addr, _) = split_url(first.trim().strip_prefix("history: ").expect("the banner"));
    std::thread::sleep(Duration::from_millis(500));
    let (code, body) = get(&addr, "/api/runs", None);
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(alive, "the server died when its stderr closed");
    assert_eq!(code, 200, "{body}");
}
