//! `benchctl dashboard DIR` (the history of runs) and `benchctl monitor` (the probes live),
//! and the duration flags they share with `run --dashboard`.

use std::path::Path;

use std::sync::Arc;

use benchctl::exit;

use super::args::OptionError;
use super::signals::Signals;

/// A duration given to `flag`, in the scenario language's units.
pub fn flag_duration(flag: &str, s: &str) -> Result<std::time::Duration, OptionError> {
    benchctl::dsl::units::Duration::parse(s).map(|d| d.as_std()).map_err(|e| OptionError {
        option: format!("{flag} {s}"),
        why: e.message.into(),
        help: Some(e.help),
    })
}

/// `--alert-cooldown`, in seconds.
pub fn parse_cooldown(s: &str) -> Result<f64, OptionError> {
    flag_duration("--alert-cooldown", s).map(|d| d.as_secs_f64())
}

fn bind_or_exit(addr: Option<&str>) -> Result<benchctl::dashboard::Listening, u8> {
    let bind = benchctl::dashboard::parse_bind(addr).map_err(|e| {
        eprintln!("error: --addr {e}");
        exit::INVALID_INPUT
    })?;
    benchctl::dashboard::listen(&bind).map_err(|e| {
        eprintln!("error: {e}");
        exit::RUNTIME_ERROR
    })
}

/// Blocks until the first SIGINT, SIGTERM or SIGHUP.
fn until_signal() {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    rt.block_on(async { Signals::new().next().await });
}

/// `benchctl dashboard DIR`: serves the history until Ctrl-C.
pub fn history_cmd(dir: &Path, addr: Option<&str>, baseline: Option<&Path>, tolerance: &str) -> u8 {
    use benchctl::dashboard::{history, say, Server};
    let tolerance = match benchctl::dsl::units::Percent::parse(tolerance, true) {
        Ok(p) => p.0,
        Err(e) => {
            eprintln!("error: --tolerance {tolerance}: {}\n  help: {}", e.message, e.help);
            return exit::INVALID_INPUT;
        }
    };
    if !dir.is_dir() {
        eprintln!(
            "error: `{}` is not a folder\n  help: give the folder your runs write into (their --out), e.g. out/",
            dir.display()
        );
        return exit::INVALID_INPUT;
    }
    let base = match baseline.map(history::Baseline::read).transpose() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: --baseline {}: {e}", baseline.map(|p| p.display().to_string()).unwrap_or_default());
            return exit::INVALID_INPUT;
        }
    };
    let evidence = std::sync::Arc::new(history::Evidence::default());
    let found = history::load(dir, base.as_ref(), tolerance, &evidence);
    let listening = match bind_or_exit(addr) {
        Ok(l) => l,
        Err(code) => return code,
    };
    say(format_args!("{}", listening.banner("history")));
    say(format_args!(
        "{} runs in {} series under {}; Ctrl-C stops\n",
        found.runs.len(),
        found.groups.len(),
        dir.display()
    ));
    for (f, why) in &found.skipped {
        say(format_args!("note: skipped {f}: {why}\n"));
    }
    let server = match Server::start(listening, history::router(dir.to_path_buf(), base, tolerance, evidence)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::RUNTIME_ERROR;
        }
    };
    until_signal();
    server.stop();
    exit::SUCCESS
}

/// `benchctl monitor`: the probes live until Ctrl-C or --duration.
pub fn monitor_cmd(addr: Option<&str>, probes: &[String], every: &str, duration: Option<&str>, cooldown: &str) -> u8 {
    use benchctl::dashboard::{monitor, say};
    use benchctl::dsl::model::ProbeKind;
    let durations = (|| {
        let every = flag_duration("--every", every)?;
        if every.is_zero() {
            return Err(OptionError::new("--every", "it must be above 0"));
        }
        let duration = duration.map(|d| flag_duration("--duration", d)).transpose()?;
        Ok((every, duration, parse_cooldown(cooldown)?))
    })();
    let (every, duration, cooldown_s) = match durations {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID_INPUT;
        }
    };
    // clap allows only the probe kinds' names.
    let mut kinds: Vec<ProbeKind> = vec![];
    for k in probes.iter().filter_map(|p| ProbeKind::from_name(p)) {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let listening = match bind_or_exit(addr) {
        Ok(l) => l,
        Err(code) => return code,
    };
    say(format_args!("{}", listening.banner("monitor")));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let watcher = std::thread::spawn(move || {
        until_signal();
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let args = monitor::MonitorArgs { probes: kinds, every, duration, cooldown_s };
    let result = monitor::run(listening, &args, stop);
    drop(watcher);
    match result {
        Ok(alerts) => {
            say(format_args!("monitor stopped; {} alert(s)\n", alerts.len()));
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::RUNTIME_ERROR
        }
    }
}
