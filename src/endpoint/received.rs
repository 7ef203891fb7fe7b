//! What one response brought, chunk by chunk: its text, reasoning, counts, finish reason,
//! usage and the arrival of its first answer and reasoning chunks.

use std::time::Instant;

use super::protocol::{self, Piece, PieceError};
use crate::dsl::model::OpenaiApi;
use crate::workload::RequestError;

pub(super) fn piece_error(e: PieceError) -> RequestError {
    match e {
        PieceError::Malformed(m) => RequestError::backend("malformed_sse", m),
        PieceError::Server(m) => RequestError::backend("server_error", m),
    }
}

/// What a response brought, chunk by chunk.
#[derive(Default)]
pub(super) struct Received {
    pub(super) content: String,
    pub(super) reasoning: String,
    /// Chunks carrying output, and of those, the ones with reasoning only.
    pub(super) chunks: u64,
    pub(super) reasoning_chunks: u64,
    pub(super) skipped: u64,
    pub(super) finish: Option<String>,
    pub(super) usage: Option<protocol::Usage>,
    /// When the first chunk with answer content arrived, and the first with reasoning
    /// (streams only).
    pub(super) first_answer: Option<Instant>,
    pub(super) first_reasoning: Option<Instant>,
}

impl Received {
    /// Takes the SSE events of one read, whose bytes arrived at `at`; true once `[DONE]`
    /// is read (anything after it is ignored).
    pub(super) fn take_events(
        &mut self,
        api: OpenaiApi,
        evs: impl Iterator<Item = String>,
        at: Instant,
        events: &mut crate::workload::Events,
    ) -> Result<bool, RequestError> {
        for ev in evs {
            if ev.trim() == "[DONE]" {
                return Ok(true);
            }
            self.take(protocol::chunk(api, &ev).map_err(piece_error)?, Some(at), events);
        }
        Ok(false)
    }

    /// Takes one piece; `at` is when its bytes arrived (streams only).
    pub(super) fn take(&mut self, p: Piece, at: Option<Instant>, events: &mut crate::workload::Events) {
        if p.has_output() {
            self.chunks += 1;
            if p.content.is_empty() {
                self.reasoning_chunks += 1;
            }
            if let Some(t) = at {
                events.outputs.push(t);
                if !p.content.is_empty() {
                    self.first_answer.get_or_insert(t);
                }
                if !p.reasoning.is_empty() {
                    self.first_reasoning.get_or_insert(t);
                }
            }
        } else {
            self.skipped += 1;
        }
        self.content += &p.content;
        self.reasoning += &p.reasoning;
        if p.finish.is_some() {
            self.finish = p.finish;
        }
        if p.usage.is_some() {
            self.usage = p.usage;
        }
    }
}
