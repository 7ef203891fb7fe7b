//! The HTTP client of the endpoint workload: a connection pool of its own over hyper's
//! connection API, so the wait for a connection (a free one of the pool, or a new TCP
//! connection and TLS handshake) is timed apart from the server's answer. HTTP/1.1 with
//! keep-alive; HTTP/2 when a TLS server offers it through ALPN (one connection, streams
//! multiplexed). TLS through rustls with the Mozilla root certificates, and any certificate
//! authorities the scenario adds (`tls ca=`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::CertificateDer;

pub type Body = Full<Bytes>;

/// Where requests go: the parts of the base URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// The base path without a trailing slash (`/v1`).
    pub base_path: String,
}

/// Why a base URL or a CA file cannot be used; its `Display` names the URL or the file.
#[derive(Debug)]
pub enum TargetError {
    NotUrl { url: String, source: hyper::http::uri::InvalidUri },
    Scheme(String),
    NoHost(String),
    Query(String),
    CaUnreadable { path: std::path::PathBuf, source: std::io::Error },
    CaEmpty(std::path::PathBuf),
    CaRejected { path: std::path::PathBuf, rejected: usize, of: usize },
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetError::NotUrl { url, source } => write!(f, "`{url}` is not a URL: {source}"),
            TargetError::Scheme(url) => write!(f, "`{url}` does not start with http:// or https://"),
            TargetError::NoHost(url) => write!(f, "`{url}` names no host"),
            TargetError::Query(url) => write!(f, "`{url}` has a query string; give the base URL only (up to /v1)"),
            TargetError::CaUnreadable { path, source } => {
                write!(f, "cannot read certificates from `{}`: {source}", path.display())
            }
            TargetError::CaEmpty(path) => {
                write!(f, "`{}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())
            }
            TargetError::CaRejected { path, rejected, of } => {
                write!(f, "{rejected} of the {of} certificates in `{}` cannot be parsed", path.display())
            }
        }
    }
}

impl std::error::Error for TargetError {}

impl Target {
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let uri: Uri =
            url.trim_end_matches('/').parse().map_err(|source| TargetError::NotUrl { url: url.into(), source })?;
        let https = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            _ => return Err(TargetError::Scheme(url.into())),
        };
        let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| TargetError::NoHost(url.into()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if uri.query().is_some() {
            return Err(TargetError::Query(url.into()));
        }
        Ok(Target { https, host, port, base_path: uri.path().trim_end_matches('/').to_string() })
    }

    /// `host:port` as the `Host` header and HTTP/2's authority carry it.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}{path}", if self.https { "https" } else { "http" }, self.authority(), self.base_path)
    }
}

/// The roots a TLS connection trusts: the Mozilla set, plus the certificates of the PEM file
/// `ca` (`tls ca=`) when given, each one checked to be usable as a trust anchor.
pub fn roots(ca: Option<&std::path::Path>) -> Result<rustls::RootCertStore, TargetError> {
    let mut store = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let Some(path) = ca else { return Ok(store) };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TargetError::CaUnreadable { path: path.into(), source: std::io::Error::other(e.to_string()) })?;
    if certs.is_empty() {
        return Err(TargetError::CaEmpty(path.into()));
    }
    let n = certs.len();
    let (_, rejected) = store.add_parsable_certificates(certs);
    if rejected > 0 {
        return Err(TargetError::CaRejected { path: path.into(), rejected, of: n });
    }
    Ok(store)
}

/// A TLS connector trusting `roots` and offering HTTP/2 and HTTP/1.1 through ALPN; cheap to
/// clone, so one serves every pool of a workload.
pub fn tls_connector(roots: rustls::RootCertStore) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Why no connection could be had.
#[derive(Debug)]
pub enum ConnectError {
    Tcp(std::io::Error),
    Tls(std::io::Error),
    Timeout,
    Handshake(hyper::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Tcp(e) => write!(f, "connecting failed: {e}"),
            ConnectError::Tls(e) => write!(f, "the TLS handshake failed: {e}"),
            ConnectError::Timeout => f.write_str("connecting timed out"),
            ConnectError::Handshake(e) => write!(f, "the HTTP handshake failed: {e}"),
        }
    }
}

enum Sender {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

/// A pool of connections to one server.
pub struct Pool {
    pub target: Target,
    tls: Option<tokio_rustls::TlsConnector>,
    idle: Mutex<Vec<http1::SendRequest<Body>>>,
    h2: Mutex<Option<http2::SendRequest<Body>>>,
    /// Held while a TLS connection is opened until the server has shown (by ALPN) whether it
    /// speaks HTTP/2, so that concurrent first requests share one HTTP/2 connection rather
    /// than each opening its own.
    h2_gate: tokio::sync::Mutex<()>,
    /// A TLS connection negotiated HTTP/1.1: connections open without the gate.
    speaks_h1: std::sync::atomic::AtomicBool,
    limit: Option<Arc<Semaphore>>,
    connect_timeout: Duration,
    /// Connections opened, and of those, the ones that speak HTTP/2.
    pub opened: AtomicU64,
    pub opened_h2: AtomicU64,
}

/// One connection, held for one request.
pub struct Lease<'a> {
    pool: &'a Pool,
    sender: Option<Sender>,
    _permit: Option<OwnedSemaphorePermit>,
    /// An HTTP/1.1 connection taken from the idle ones: the server may have closed it.
    reused: bool,
}

impl Pool {
    /// A pool of at most `limit` connections (unlimited when `None`); `tls` (from
    /// [`tls_connector`]) is required for an https:// target.
    pub fn new(
        target: Target,
        tls: Option<tokio_rustls::TlsConnector>,
        limit: Option<usize>,
        connect_timeout: Duration,
    ) -> Pool {
        debug_assert_eq!(target.https, tls.is_some(), "an https:// target needs a TLS connector, http:// none");
        Pool {
            target,
            tls,
            idle: Mutex::new(vec![]),
            h2: Mutex::new(None),
            h2_gate: tokio::sync::Mutex::new(()),
            speaks_h1: std::sync::atomic::AtomicBool::new(false),
            limit: limit.map(|n| Arc::new(Semaphore::new(n))),
            connect_timeout,
            opened: AtomicU64::new(0),
            opened_h2: AtomicU64::new(0),
        }
    }

    /// A connection ready to send on: a free idle one, else a new one (waiting first for a
    /// free place when the pool is at its limit).
    pub async fn acquire(&self) -> Result<Lease<'_>, ConnectError> {
        let permit = match &self.limit {
            Some(s) => Some(s.clone().acquire_owned().await.expect("the pool's semaphore is never closed")),
            None => None,
        };
        if let Some(h2) = self.shared_h2() {
            return Ok(Lease { pool: self, sender: Some(Sender::H2(h2)), _permit: permit, reused: false });
        }
        let _gate = if self.tls.is_some() && !self.speaks_h1.load(Ordering::Relaxed) {
            let gate = self.h2_gate.lock().await;
            if let Some(h2) = self.shared_h2() {
                return Ok(Lease { pool: self, sender: Some(Sender::H2(h2)), _permit: permit, reused: false });
            }
            Some(gate)
        } else {
            None
        };
        loop {
            let next = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(mut s) = next else { break };
            if s.is_closed() {
                continue;
            }
            // A connection returned after its response was read may still be finishing it.
            if s.ready().await.is_ok() {
                return Ok(Lease { pool: self, sender: Some(Sender::H1(s)), _permit: permit, reused: true });
            }
        }
        let sender =
            tokio::time::timeout(self.connect_timeout, self.connect()).await.map_err(|_| ConnectError::Timeout)??;
        Ok(Lease { pool: self, sender: Some(sender), _permit: permit, reused: false })
    }

    /// A new connection in place of `lease`'s (which is closed), keeping its place in the
    /// pool's limit: for a request retried after the server closed a kept-alive connection.
    pub async fn reconnect<'p>(&'p self, mut lease: Lease<'p>) -> Result<Lease<'p>, ConnectError> {
        lease.sender = None;
        let permit = lease._permit.take();
        let sender =
            tokio::time::timeout(self.connect_timeout, self.connect()).await.map_err(|_| ConnectError::Timeout)??;
        Ok(Lease { pool: self, sender: Some(sender), _permit: permit, reused: false })
    }

    fn shared_h2(&self) -> Option<http2::SendRequest<Body>> {
        self.h2.lock().unwrap_or_else(|e| e.into_inner()).clone().filter(|s| !s.is_closed())
    }

    async fn connect(&self) -> Result<Sender, ConnectError> {
        let tcp = TcpStream::connect((self.target.host.as_str(), self.target.port)).await.map_err(ConnectError::Tcp)?;
        let _ = tcp.set_nodelay(true);
        self.opened.fetch_add(1, Ordering::Relaxed);
        let Some(tls) = &self.tls else {
            return handshake_h1(tcp).await;
        };
        let name = rustls::pki_types::ServerName::try_from(self.target.host.clone())
            .map_err(|e| ConnectError::Tls(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        let stream = tls.connect(name, tcp).await.map_err(ConnectError::Tls)?;
        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
            let (sender, conn) =
                http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.map_err(ConnectError::Handshake)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.opened_h2.fetch_add(1, Ordering::Relaxed);
            *self.h2.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender.clone());
            return Ok(Sender::H2(sender));
        }
        self.speaks_h1.store(true, Ordering::Relaxed);
        handshake_h1(stream).await
    }

    /// The request's URI: a path for HTTP/1.1 (with a `Host` header), absolute for HTTP/2.
    pub fn request(&self, path: &str, h2: bool) -> hyper::http::request::Builder {
        let b = Request::builder().method("POST");
        if h2 {
            b.uri(self.target.url(path))
        } else {
            b.uri(format!("{}{path}", self.target.base_path)).header("host", self.target.authority())
        }
    }
}

async fn handshake_h1<S>(io: S) -> Result<Sender, ConnectError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await.map_err(ConnectError::Handshake)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Sender::H1(sender))
}

impl Lease<'_> {
    pub fn is_h2(&self) -> bool {
        matches!(self.sender, Some(Sender::H2(_)))
    }

    /// A kept-alive HTTP/1.1 connection from the pool (see [`Pool::reconnect`]).
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    pub async fn send(&mut self, req: Request<Body>) -> Result<Response<hyper::body::Incoming>, hyper::Error> {
        match self.sender.as_mut().expect("a lease holds its connection until released") {
            Sender::H1(s) => s.send_request(req).await,
            Sender::H2(s) => s.send_request(req).await,
        }
    }

    /// The response has been read to its end: the connection goes back to the pool. A
    /// lease dropped without this (a timeout, a cut stream) closes its connection.
    pub fn release(mut self) {
        if let Some(Sender::H1(s)) = self.sender.take() {
            if !s.is_closed() {
                self.pool.idle.lock().unwrap_or_else(|e| e.into_inner()).push(s);
            }
        }
    }
}

/// Whether a request failed because the server had closed the kept-alive connection it was
/// written on, before any byte of an answer: the connection ended or was reset under it, or
/// hyper gave the request back unsent. Such a request never reached the server's handler,
/// so sending it again on a new connection is safe.
pub fn closed_under_request(e: &hyper::Error) -> bool {
    if e.is_canceled() || e.is_incomplete_message() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
            );
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:8000/v1/").unwrap();
        assert_eq!(t, Target { https: false, host: "127.0.0.1".into(), port: 8000, base_path: "/v1".into() });
        assert_eq!(t.url("/models"), "http://127.0.0.1:8000/v1/models");
        let t = Target::parse("https://api.example.com/v1").unwrap();
        assert_eq!((t.port, t.authority()), (443, "api.example.com".to_string()));
        let t = Target::parse("http://[::1]:9000").unwrap();
        assert_eq!((t.host.as_str(), t.authority(), t.base_path.as_str()), ("::1", "[::1]:9000".to_string(), ""));
        assert!(Target::parse("ftp://x/v1").unwrap_err().to_string().contains("http://"));
        assert!(Target::parse("http://x/v1?a=b").unwrap_err().to_string().contains("query"));
    }
}
