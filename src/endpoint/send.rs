//! Sending one request on a pooled connection (with the one retry a closed kept-alive
//! connection earns), and the embeddings request built on it.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::received::piece_error;
use super::{client, http_error, protocol, text, whole, OpenaiWorkload, TokenSource, M_CONNECT, M_INPUTS};
use crate::workload::{Call, RequestError};

impl OpenaiWorkload {
    /// One embeddings request: `batch` prompts in, as many vectors of one dimension out.
    pub(super) async fn embed(&self, call: Call<'_>) -> Result<(), RequestError> {
        let prompts: Vec<text::Prompt> = (0..self.batch).map(|_| self.prompts.draw(call.rng)).collect();
        let inputs: Vec<&str> = prompts.iter().map(|p| p.text.as_str()).collect();
        let events = call.events;
        let (lease, body) = self.send(Bytes::from(self.params.embeddings_body(&inputs)), events).await?;
        let got = protocol::embeddings(&whole(body).await?).map_err(piece_error)?;
        lease.release();
        if got.vectors != self.batch {
            return Err(RequestError::backend(
                "embedding_count",
                format!("{} inputs sent, {} vectors returned", self.batch, got.vectors),
            ));
        }
        let mut tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        match tally.dimension {
            Some(d) if d != got.dimension => {
                return Err(RequestError::backend(
                    "embedding_dimension",
                    format!("vectors of {} dimensions, earlier responses' {d}", got.dimension),
                ))
            }
            _ => tally.dimension = Some(got.dimension),
        }
        let counted: Option<u64> = prompts.iter().map(|p| p.tokens).sum();
        let source = match (got.usage.and_then(|u| u.prompt), counted) {
            (Some(n), _) => (TokenSource::Usage, n),
            (None, Some(n)) => (TokenSource::Tokenizer, n),
            (None, None) => (TokenSource::None, 0),
        };
        events.input_tokens = source.1;
        events.output_tokens = Some(0);
        events.measure(M_INPUTS, self.batch as f64);
        tally.succeeded += 1;
        tally.prompt_tokens += source.1;
        *tally.sources.entry(source.0).or_default() += 1;
        Ok(())
    }

    /// Opens (or reuses) a connection, sends `body` to the API's path, and returns the
    /// connection with the response body of a successful status; the wait for the
    /// connection is the `connect_wait` measure. A kept-alive connection the server closed as
    /// the request went out is retried once on a new one.
    pub(super) async fn send(
        &self,
        body: Bytes,
        events: &mut crate::workload::Events,
    ) -> Result<(client::Lease<'_>, hyper::body::Incoming), RequestError> {
        let started = Instant::now();
        let mut lease = self.pool.acquire().await.map_err(|e| RequestError::backend("connect", e.to_string()))?;
        events.measure(M_CONNECT, started.elapsed().as_secs_f64());
        let h2 = lease.is_h2();
        if h2 {
            self.seen_h2.fetch_add(1, Ordering::Relaxed);
        }
        let mut req = self
            .pool
            .request(self.params.path(), h2)
            .header("content-type", "application/json")
            .header("user-agent", concat!("benchctl/", env!("CARGO_PKG_VERSION")));
        if self.params.stream {
            req = req.header("accept", "text/event-stream");
        }
        for (n, v) in &self.headers {
            req = req.header(n, v);
        }
        // The head and body are kept, for a retry on a new connection.
        let (parts, ()) = req.body(()).map_err(|e| RequestError::backend("request", e.to_string()))?.into_parts();
        let again =
            |parts: &hyper::http::request::Parts| hyper::Request::from_parts(parts.clone(), Full::new(body.clone()));
        let resp = match lease.send(again(&parts)).await {
            Ok(r) => r,
            // The server closed the kept-alive connection as the request went out (llama.cpp's
            // server limits requests and idle time per connection): once more, on a new one.
            Err(e) if lease.is_reused() && client::closed_under_request(&e) => {
                self.tally.lock().unwrap_or_else(|e| e.into_inner()).retried += 1;
                lease =
                    self.pool.reconnect(lease).await.map_err(|e| RequestError::backend("connect", e.to_string()))?;
                lease.send(again(&parts)).await.map_err(|e| RequestError::backend("connect", e.to_string()))?
            }
            Err(e) => return Err(RequestError::backend("connect", e.to_string())),
        };
        let status = resp.status();
        let body = resp.into_body();
        if !status.is_success() {
            let text = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            return Err(http_error(status, &text));
        }
        Ok((lease, body))
    }
}
