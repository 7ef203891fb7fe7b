//! Signals during a run (the first stops it gracefully, the second exits) and panics inside
//! workloads (counted as errors, reported once at the end).

use std::sync::Arc;

use benchctl::engine::drive::Stop;

/// After a hangup the terminal is gone and writing to it fails; the run still has a result
/// to write, so what it would print goes to /dev/null instead (only where it went to a
/// terminal: a redirected log keeps its lines).
#[cfg(unix)]
fn detach_from_terminal() {
    use std::os::fd::AsRawFd;
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else { return };
    for fd in [1, 2] {
        // SAFETY: isatty and dup2 on the process's own descriptors; `null` outlives the calls.
        unsafe {
            if libc::isatty(fd) == 1 {
                libc::dup2(null.as_raw_fd(), fd);
            }
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP (a closed terminal or SSH session; standard output and error
/// are then pointed at /dev/null).
pub struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals { term: signal(SignalKind::terminate()).ok(), hup: signal(SignalKind::hangup()).ok() }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Waits for the next one; false when signals cannot be watched.
    pub async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) -> bool {
                match s {
                    Some(s) => s.recv().await.is_some(),
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                r = next(&mut self.term) => r,
                r = next(&mut self.hup) => {
                    detach_from_terminal();
                    r
                }
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await.is_ok()
    }
}

/// First SIGINT, SIGTERM or SIGHUP: stop gracefully (drain, write a partial result).
/// Second: exit now.
pub async fn watch_signals(interrupt: Arc<Stop>) {
    let mut signals = Signals::new();
    for n in 0.. {
        if !signals.next().await {
            return;
        }
        if n > 0 {
            eprintln!("\ninterrupted twice: exiting without writing a result");
            std::process::exit(130);
        }
        eprintln!("\nstopping: finishing in-flight requests and writing a partial result (interrupt again to abort)");
        interrupt.set();
    }
}

/// While a run is going, a panic inside a workload is counted as an error of kind `panic`;
/// the default hook's message for each would bury the progress display, so the first one
/// is kept and printed once at the end.
pub struct QuietPanics {
    previous: Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync>,
    first: Arc<std::sync::Mutex<Option<String>>>,
}

impl QuietPanics {
    pub fn install() -> QuietPanics {
        let previous: Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync> = Arc::from(std::panic::take_hook());
        let first = Arc::new(std::sync::Mutex::new(None));
        let (prev, slot) = (previous.clone(), first.clone());
        std::panic::set_hook(Box::new(move |info| {
            let worker = std::thread::current().name().is_some_and(|n| n.starts_with("tokio-runtime-worker"));
            if worker {
                let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
                s.get_or_insert_with(|| info.to_string());
            } else {
                prev(info);
            }
        }));
        QuietPanics { previous, first }
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        let _ = std::panic::take_hook();
        let prev = self.previous.clone();
        std::panic::set_hook(Box::new(move |info| prev(info)));
        if let Some(msg) = self.first.lock().unwrap_or_else(|e| e.into_inner()).take() {
            eprintln!("warning: a workload panicked (counted as errors of kind `panic`); the first: {msg}");
        }
    }
}
