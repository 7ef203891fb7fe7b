//! The web views: the live dashboard of a run (`run --dashboard`), the history of runs
//! (`benchctl dashboard DIR`) and the probe monitor (`benchctl monitor`). One page and one
//! chart renderer (assets/) serve all three and the static `report.html`.
//!
//! The server runs on a thread and a runtime of its own, apart from the engine's: it never
//! takes a worker from the run, and the engine hands it events through bounded queues that
//! never wait (see [`hub`]).

pub mod alerts;
pub mod history;
pub mod hub;
pub mod live;
pub mod model;
pub mod monitor;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::Router;

/// The port tried first (k6's dashboard port); the next free one is taken when it is busy
/// and no port was written.
pub const DEFAULT_PORT: u16 = 5665;
/// Ports tried after the default one before giving up.
const PORT_TRIES: u16 = 20;
/// The access token, when the user sets it (otherwise one is made for non-loopback binds).
pub const TOKEN_ENV: &str = "BENCHCTL_DASHBOARD_TOKEN";
/// Events a browser may fall behind before it is dropped (default [`hub::DEFAULT_QUEUE`]).
pub const QUEUE_ENV: &str = "BENCHCTL_DASHBOARD_QUEUE";

/// The page's parts, embedded into the binary: nothing is fetched when a page is viewed.
pub const CHARTS_JS: &str = include_str!("assets/charts.js");
pub const CSS: &str = include_str!("assets/dashboard.css");
const PAGE: &str = include_str!("assets/page.html");

/// Where to listen, as the user wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bind {
    pub addr: SocketAddr,
    /// A port was written: use it or fail (no search for a free one).
    pub explicit_port: bool,
}

/// Why a dashboard server could not be started.
#[derive(Debug)]
pub enum DashboardError {
    /// The address as written is not one to listen on (`detail`: how to write one).
    Address { text: String, detail: bool },
    /// The port written is in use.
    PortInUse(SocketAddr),
    /// The default port and the next ones are all in use.
    NoFreePort { ip: IpAddr, from: u16, to: u16 },
    /// Binding or setting up the socket failed otherwise.
    Listen { addr: Option<SocketAddr>, source: std::io::Error },
    /// No access token could be made for an address off loopback.
    Token(std::io::Error),
    /// The server's or the processor's thread could not start.
    Thread(std::io::Error),
}

impl std::fmt::Display for DashboardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DashboardError::Address { text, detail: false } => write!(f, "`{text}` is not an address to listen on"),
            DashboardError::Address { text, detail: true } => write!(
                f,
                "`{text}` is not an address to listen on: write PORT, HOST:PORT or an IP address \
                 (for example 127.0.0.1:5665, or 0.0.0.0:5665 to be reached from other machines)"
            ),
            DashboardError::PortInUse(addr) => write!(
                f,
                "cannot listen on {addr}: the port is in use; choose another, or leave the port out to take the next free one from {DEFAULT_PORT}"
            ),
            DashboardError::NoFreePort { ip, from, to } => {
                write!(f, "cannot listen on {ip}: ports {from} to {to} are all in use; write a free port")
            }
            DashboardError::Listen { addr: Some(addr), source } => write!(f, "cannot listen on {addr}: {source}"),
            DashboardError::Listen { addr: None, source } => write!(f, "cannot listen: {source}"),
            DashboardError::Token(e) => {
                write!(f, "cannot make an access token (/dev/urandom: {e}); set {TOKEN_ENV}")
            }
            DashboardError::Thread(e) => write!(f, "cannot start the dashboard thread: {e}"),
        }
    }
}

impl std::error::Error for DashboardError {}

/// `PORT`, `HOST:PORT`, `HOST` or nothing (127.0.0.1:5665).
pub fn parse_bind(s: Option<&str>) -> Result<Bind, DashboardError> {
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let s = s.map(str::trim).unwrap_or("");
    if s.is_empty() {
        return Ok(Bind { addr: SocketAddr::new(local, DEFAULT_PORT), explicit_port: false });
    }
    if let Ok(port) = s.parse::<u16>() {
        return Ok(Bind { addr: SocketAddr::new(local, port), explicit_port: true });
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(Bind { addr, explicit_port: true });
    }
    let host = s.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Bind { addr: SocketAddr::new(ip, DEFAULT_PORT), explicit_port: false });
    }
    if let Some(rest) = s.strip_prefix("localhost") {
        return match rest.strip_prefix(':').map(str::parse::<u16>) {
            None if rest.is_empty() => Ok(Bind { addr: SocketAddr::new(local, DEFAULT_PORT), explicit_port: false }),
            Some(Ok(port)) => Ok(Bind { addr: SocketAddr::new(local, port), explicit_port: true }),
            _ => Err(DashboardError::Address { text: s.to_string(), detail: false }),
        };
    }
    Err(DashboardError::Address { text: s.to_string(), detail: true })
}

/// A bound listener, its address, and the token clients must present (if any).
pub struct Listening {
    pub listener: std::net::TcpListener,
    pub addr: SocketAddr,
    pub token: Option<String>,
    /// The token was made here (print it once) rather than read from [`TOKEN_ENV`].
    pub token_generated: bool,
}

impl Listening {
    /// The address to open, with the token when it was made here (a token from
    /// [`TOKEN_ENV`] is a secret the user already has, and is never printed).
    pub fn url(&self) -> String {
        match &self.token {
            Some(t) if self.token_generated => format!("{}?token={t}", self.base_url()),
            _ => self.base_url(),
        }
    }

    /// The address without any token (what the result records).
    pub fn base_url(&self) -> String {
        let host = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
            IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("http://{host}:{}/", self.addr.port())
    }

    /// What to tell the user when the server starts (stderr): the URL and, off loopback,
    /// the warning and the token.
    pub fn banner(&self, what: &str) -> String {
        let mut s = format!("{what}: {}\n", self.url());
        if !self.addr.ip().is_loopback() {
            let source = if self.token_generated {
                " (shown once, in the address above)".to_string()
            } else {
                format!(" (from {TOKEN_ENV})")
            };
            s.push_str(&format!(
                "warning: the {what} listens on {}, which other machines may reach; every request needs its token{source}\n",
                self.addr
            ));
        }
        s
    }
}

/// Writes to standard error and carries on if it is closed: a server that outlives the
/// terminal or pipe it was started from must not die on its next message.
pub fn say(text: std::fmt::Arguments) {
    use std::io::Write;
    let _ = std::io::stderr().write_fmt(text);
}

/// 32 hexadecimal digits from the operating system's random source.
fn new_token() -> Result<String, DashboardError> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).map_err(DashboardError::Token)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Binds `bind` (the next free port when the default one is busy and none was written)
/// and settles the token: required off loopback, taken from [`TOKEN_ENV`] or made here.
pub fn listen(bind: &Bind) -> Result<Listening, DashboardError> {
    let tries = if bind.explicit_port { 1 } else { PORT_TRIES + 1 };
    let mut last = None;
    let mut listener = None;
    for i in 0..tries {
        let addr = SocketAddr::new(bind.addr.ip(), bind.addr.port().saturating_add(i));
        match std::net::TcpListener::bind(addr) {
            Ok(l) => {
                listener = Some(l);
                break;
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    let listener = match (listener, last) {
        (Some(l), _) => l,
        (None, Some((addr, e))) if e.kind() == std::io::ErrorKind::AddrInUse && bind.explicit_port => {
            return Err(DashboardError::PortInUse(addr))
        }
        (None, Some((addr, e))) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(DashboardError::NoFreePort { ip: bind.addr.ip(), from: bind.addr.port(), to: addr.port() })
        }
        (None, Some((addr, source))) => return Err(DashboardError::Listen { addr: Some(addr), source }),
        (None, None) => {
            let source = std::io::Error::other("no port was tried");
            return Err(DashboardError::Listen { addr: None, source });
        }
    };
    let unbound = |source| DashboardError::Listen { addr: None, source };
    listener.set_nonblocking(true).map_err(unbound)?;
    let addr = listener.local_addr().map_err(unbound)?;
    let from_env = std::env::var(TOKEN_ENV).ok().filter(|t| !t.trim().is_empty());
    let (token, token_generated) = match from_env {
        Some(t) => (Some(t.trim().to_string()), false),
        None if !addr.ip().is_loopback() => (Some(new_token()?), true),
        None => (None, false),
    };
    Ok(Listening { listener, addr, token, token_generated })
}

/// The server thread; dropping or [`Server::stop`] ends it.
pub struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serves `router` on its own thread and a one-thread runtime.
    pub fn start(listening: Listening, router: Router) -> Result<Server, DashboardError> {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let token = listening.token.clone();
        let router = router
            .layer(axum::middleware::from_fn_with_state(Arc::new(token), require_token))
            .layer(axum::middleware::from_fn(security_headers));
        let std_listener = listening.listener;
        let thread = std::thread::Builder::new()
            .name("benchctl-dashboard".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else { return };
                    let _ = axum::serve(listener, router)
                        .with_graceful_shutdown(async move {
                            let _ = rx.await;
                        })
                        .await;
                });
                // Streams still open (a browser keeps its connection) are not waited for.
                rt.shutdown_background();
            })
            .map_err(DashboardError::Thread)?;
        Ok(Server { stop: Some(tx), thread: Some(thread) })
    }

    /// Stops accepting, ends the open streams and joins the thread (bounded: a client that
    /// does not read is not waited for).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Off loopback (or with [`TOKEN_ENV`] set) every request carries the token, as `?token=`
/// or `Authorization: Bearer`.
async fn require_token(
    State(token): State<Arc<Option<String>>>,
    Query(q): Query<TokenQuery>,
    req: Request,
    next: Next,
) -> Response {
    let Some(want) = token.as_ref() else { return next.run(req).await };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let given = q.token.or(bearer);
    if given.as_deref().is_some_and(|g| same(g.as_bytes(), want.as_bytes())) {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        "this dashboard needs its access token: open the address benchctl printed (it ends in ?token=...)\n",
    )
        .into_response()
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The page may run its own inline script and talk to this server only.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

/// The page for `mode` (`live`, `history`, `monitor` or `report`) with `data` (embedded
/// events; `[]` for a page that streams them).
pub fn page(mode: &str, title: &str, data: &str) -> String {
    let title = escape(title);
    let slots: [(&str, &str); 5] = [
        ("{{TITLE}}", &title),
        ("{{MODE}}", mode),
        ("/*{{CSS}}*/", CSS),
        ("/*{{CHARTS_JS}}*/", CHARTS_JS),
        ("{{DATA}}", data),
    ];
    // One pass over the template: text put into a slot is never searched for slots again.
    let mut out = String::with_capacity(PAGE.len() + CSS.len() + CHARTS_JS.len() + data.len() + title.len());
    let mut rest = PAGE;
    while let Some((at, slot, value)) =
        slots.iter().filter_map(|(k, v)| rest.find(k).map(|i| (i, *k, *v))).min_by_key(|(i, _, _)| *i)
    {
        out.push_str(&rest[..at]);
        out.push_str(value);
        rest = &rest[at + slot.len()..];
    }
    out.push_str(rest);
    out
}

pub(crate) fn html(mode: &str, title: &str) -> Html<String> {
    Html(page(mode, title, "[]"))
}

/// HTML escaping for text put into the page by the server.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The queue length for each browser: [`QUEUE_ENV`] or the default.
pub fn queue_len() -> usize {
    std::env::var(QUEUE_ENV).ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(hub::DEFAULT_QUEUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let b = parse_bind(None).unwrap();
        assert_eq!(b.addr.to_string(), "127.0.0.1:5665");
        assert!(!b.explicit_port);
        assert_eq!(parse_bind(Some("8080")).unwrap().addr.to_string(), "127.0.0.1:8080");
        assert_eq!(parse_bind(Some("0.0.0.0:9000")).unwrap().addr.to_string(), "0.0.0.0:9000");
        let v6 = parse_bind(Some("::1")).unwrap();
        assert_eq!(v6.addr.to_string(), "[::1]:5665");
        assert!(!v6.explicit_port);
        assert_eq!(parse_bind(Some("localhost:7000")).unwrap().addr.to_string(), "127.0.0.1:7000");
        assert!(parse_bind(Some("scenarios/quick.kdl")).unwrap_err().to_string().contains("HOST:PORT"));
        assert!(parse_bind(Some("localhost:x")).is_err());
    }

    #[test]
    fn a_busy_default_port_moves_on_and_a_written_one_fails() {
        let first = listen(&Bind { addr: "127.0.0.1:0".parse().unwrap(), explicit_port: true }).unwrap();
        let port = first.addr.port();
        let next = listen(&Bind { addr: first.addr, explicit_port: false }).unwrap();
        assert!(next.addr.port() > port && next.addr.port() <= port + PORT_TRIES);
        let e = listen(&Bind { addr: first.addr, explicit_port: true }).err().unwrap();
        assert!(e.to_string().contains("in use"), "{e}");
        assert!(first.token.is_none(), "loopback needs no token");
    }

    #[test]
    fn slot_markers_in_a_title_are_text() {
        let p = page("live", "/*{{CHARTS_JS}}*/ {{DATA}} <x>", "[1]");
        assert!(p.contains("<title>/*{{CHARTS_JS}}*/ {{DATA}} &lt;x&gt;</title>"), "{}", &p[..300]);
        assert_eq!(p.matches("Benchctl.boot(").count(), 1);
    }

    #[test]
    fn html_escape() {
        assert_eq!(escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }
}
