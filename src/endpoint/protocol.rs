//! The OpenAI HTTP API as benchctl speaks it: request bodies for `/chat/completions`,
//! `/completions` and `/embeddings`, and what a streamed chunk or a whole response carries.

use serde_json::{json, Map, Value};

use crate::dsl::model::OpenaiApi;

/// What every request of a workload sends besides its prompt.
#[derive(Debug, Clone)]
pub struct Params {
    pub api: OpenaiApi,
    pub model: String,
    pub stream: bool,
    pub max_tokens: Option<u64>,
    pub min_tokens: Option<u64>,
    pub ignore_eos: Option<bool>,
    pub temperature: Option<f64>,
    pub seed: Option<u64>,
    /// Merged in last: a field here replaces benchctl's own.
    pub extra: Map<String, Value>,
}

impl Params {
    pub fn path(&self) -> &'static str {
        match self.api {
            OpenaiApi::Chat => "/chat/completions",
            OpenaiApi::Completions => "/completions",
            OpenaiApi::Embeddings => "/embeddings",
        }
    }

    /// The JSON body of one embeddings request: a batch of inputs, embedded as floats.
    pub fn embeddings_body(&self, inputs: &[&str]) -> Vec<u8> {
        let mut b = Map::new();
        b.insert("model".into(), json!(self.model));
        b.insert("input".into(), json!(inputs));
        b.insert("encoding_format".into(), json!("float"));
        for (k, v) in &self.extra {
            b.insert(k.clone(), v.clone());
        }
        serde_json::to_vec(&Value::Object(b)).expect("a JSON map serialises")
    }

    /// The JSON body of one request.
    pub fn body(&self, prompt: &str) -> Vec<u8> {
        let mut b = Map::new();
        b.insert("model".into(), json!(self.model));
        match self.api {
            OpenaiApi::Chat => b.insert("messages".into(), json!([{ "role": "user", "content": prompt }])),
            OpenaiApi::Completions => b.insert("prompt".into(), json!(prompt)),
            OpenaiApi::Embeddings => b.insert("input".into(), json!([prompt])),
        };
        b.insert("stream".into(), json!(self.stream));
        if self.stream {
            // Servers that know it send a last chunk with the token counts.
            b.insert("stream_options".into(), json!({ "include_usage": true }));
        }
        if let Some(n) = self.max_tokens {
            b.insert("max_tokens".into(), json!(n));
        }
        if let Some(n) = self.min_tokens {
            b.insert("min_tokens".into(), json!(n));
        }
        if let Some(x) = self.ignore_eos {
            b.insert("ignore_eos".into(), json!(x));
        }
        if let Some(t) = self.temperature {
            b.insert("temperature".into(), json!(t));
        }
        if let Some(s) = self.seed {
            b.insert("seed".into(), json!(s));
        }
        for (k, v) in &self.extra {
            b.insert(k.clone(), v.clone());
        }
        serde_json::to_vec(&Value::Object(b)).expect("a JSON map serialises")
    }
}

/// Token counts a server reported.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub prompt: Option<u64>,
    pub completion: Option<u64>,
    pub reasoning: Option<u64>,
}

/// What one streamed event (or a whole response) carries.
#[derive(Debug, Default, PartialEq)]
pub struct Piece {
    pub content: String,
    pub reasoning: String,
    pub finish: Option<String>,
    pub usage: Option<Usage>,
}

impl Piece {
    /// Whether it carries output (text or reasoning): only such chunks are timed.
    pub fn has_output(&self) -> bool {
        !self.content.is_empty() || !self.reasoning.is_empty()
    }
}

/// Why an event could not be read.
#[derive(Debug, PartialEq)]
pub enum PieceError {
    /// Not JSON, or JSON of another shape.
    Malformed(String),
    /// The server sent an error object.
    Server(String),
}

fn usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    let n = |x: Option<&Value>| x.and_then(Value::as_u64);
    Some(Usage {
        prompt: n(u.get("prompt_tokens")),
        completion: n(u.get("completion_tokens")),
        reasoning: n(u.pointer("/completion_tokens_details/reasoning_tokens")),
    })
}

fn text_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

/// Reads one streamed event's data (`[DONE]` is handled by the caller).
pub fn chunk(api: OpenaiApi, data: &str) -> Result<Piece, PieceError> {
    let v: Value =
        serde_json::from_str(data).map_err(|e| PieceError::Malformed(format!("not JSON ({e}): {}", clip(data))))?;
    parse(api, &v, true)
}

/// Reads a whole (not streamed) response body.
pub fn response(api: OpenaiApi, body: &[u8]) -> Result<Piece, PieceError> {
    parse(api, &json_body(body)?, false)
}

/// A whole response body as JSON.
fn json_body(body: &[u8]) -> Result<Value, PieceError> {
    serde_json::from_slice(body)
        .map_err(|e| PieceError::Malformed(format!("not JSON ({e}): {}", clip(&String::from_utf8_lossy(body)))))
}

/// The server's error object, when the JSON is one.
fn server_error(v: &Value) -> Result<(), PieceError> {
    match v.get("error").filter(|e| !e.is_null()) {
        Some(e) => Err(PieceError::Server(
            e.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| e.to_string()),
        )),
        None => Ok(()),
    }
}

fn parse(api: OpenaiApi, v: &Value, streamed: bool) -> Result<Piece, PieceError> {
    server_error(v)?;
    if !v.is_object() {
        return Err(PieceError::Malformed(format!("not a JSON object: {}", clip(&v.to_string()))));
    }
    let mut p = Piece { usage: usage(v), ..Piece::default() };
    let choices = match v.get("choices") {
        Some(Value::Array(c)) => c.as_slice(),
        // The usage-only last chunk may have no choices at all.
        None | Some(Value::Null) => &[],
        Some(other) => {
            return Err(PieceError::Malformed(format!("`choices` is not an array: {}", clip(&other.to_string()))))
        }
    };
    for c in choices {
        match api {
            OpenaiApi::Chat => {
                let m = c.get(if streamed { "delta" } else { "message" });
                p.content += text_of(m.and_then(|m| m.get("content")));
                let r = m.and_then(|m| m.get("reasoning_content").filter(|x| x.is_string()).or(m.get("reasoning")));
                p.reasoning += text_of(r);
            }
            OpenaiApi::Completions | OpenaiApi::Embeddings => p.content += text_of(c.get("text")),
        }
        if let Some(f) = c.get("finish_reason").and_then(Value::as_str) {
            p.finish = Some(f.to_string());
        }
    }
    Ok(p)
}

/// What an embeddings response carries: how many vectors, of which dimension, and the
/// server's token counts.
#[derive(Debug, PartialEq)]
pub struct Embedded {
    pub vectors: usize,
    pub dimension: usize,
    pub usage: Option<Usage>,
}

/// Reads an embeddings response: `data` is a list of `{ "embedding": [numbers] }`, every
/// vector of one dimension, at least 1.
pub fn embeddings(body: &[u8]) -> Result<Embedded, PieceError> {
    let v = json_body(body)?;
    server_error(&v)?;
    let Some(data) = v.get("data").and_then(Value::as_array) else {
        return Err(PieceError::Malformed(format!("no `data` list of embeddings: {}", clip(&v.to_string()))));
    };
    let mut dimension = None;
    for (i, item) in data.iter().enumerate() {
        let vector = item.get("embedding").and_then(Value::as_array).filter(|x| x.iter().all(Value::is_number));
        let Some(vector) = vector.filter(|x| !x.is_empty()) else {
            return Err(PieceError::Malformed(format!("`data[{i}].embedding` is not a list of numbers")));
        };
        match dimension {
            Some(d) if d != vector.len() => {
                return Err(PieceError::Malformed(format!(
                    "`data[{i}].embedding` has {} dimensions, the first {d}",
                    vector.len()
                )))
            }
            _ => dimension = Some(vector.len()),
        }
    }
    Ok(Embedded { vectors: data.len(), dimension: dimension.unwrap_or(0), usage: usage(&v) })
}

/// At most 200 characters of a body for a message.
pub fn clip(s: &str) -> String {
    let t: String = s.chars().take(200).collect();
    if t.len() < s.len() {
        t + "…"
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        let mut p = Params {
            api: OpenaiApi::Chat,
            model: "m".into(),
            stream: true,
            max_tokens: Some(64),
            min_tokens: Some(64),
            ignore_eos: None,
            temperature: Some(0.0),
            seed: Some(7),
            extra: Map::new(),
        };
        p.extra.insert("top_k".into(), json!(1));
        p.extra.insert("temperature".into(), json!(0.5));
        let v: Value = serde_json::from_slice(&p.body("hi")).unwrap();
        assert_eq!(v["messages"][0]["content"], "hi");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!((v["max_tokens"].as_u64(), v["seed"].as_u64(), v["top_k"].as_u64()), (Some(64), Some(7), Some(1)));
        assert_eq!(v["temperature"], 0.5, "extra fields win");
        assert!(v.get("ignore_eos").is_none());
        p.api = OpenaiApi::Completions;
        p.stream = false;
        let v: Value = serde_json::from_slice(&p.body("hi")).unwrap();
        assert_eq!((v["prompt"].as_str(), v.get("stream_options")), (Some("hi"), None));
        assert_eq!(p.path(), "/completions");
    }

    #[test]
    fn chunks() {
        let role = chunk(OpenaiApi::Chat, r#"{"choices":[{"delta":{"role":"assistant"},"index":0}]}"#).unwrap();
        assert!(!role.has_output(), "a role-only chunk carries no output");
        let empty = chunk(OpenaiApi::Chat, r#"{"choices":[{"delta":{"content":""}}]}"#).unwrap();
        assert!(!empty.has_output());
        let c = chunk(OpenaiApi::Chat, r#"{"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}"#).unwrap();
        assert_eq!((c.content.as_str(), c.finish), ("Hi", None));
        let r = chunk(OpenaiApi::Chat, r#"{"choices":[{"delta":{"reasoning_content":"hm"}}]}"#).unwrap();
        assert_eq!((r.reasoning.as_str(), r.has_output()), ("hm", true));
        let r = chunk(OpenaiApi::Chat, r#"{"choices":[{"delta":{"reasoning":"so"}}]}"#).unwrap();
        assert_eq!(r.reasoning, "so");
        let u = chunk(
            OpenaiApi::Chat,
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9,"completion_tokens_details":{"reasoning_tokens":2}}}"#,
        )
        .unwrap();
        assert_eq!(u.usage, Some(Usage { prompt: Some(5), completion: Some(9), reasoning: Some(2) }));
        let t = chunk(OpenaiApi::Completions, r#"{"choices":[{"text":" a","finish_reason":"length"}]}"#).unwrap();
        assert_eq!((t.content.as_str(), t.finish.as_deref()), (" a", Some("length")));
        assert!(matches!(chunk(OpenaiApi::Chat, "{oops"), Err(PieceError::Malformed(_))));
        assert_eq!(
            chunk(OpenaiApi::Chat, r#"{"error":{"message":"overloaded"}}"#),
            Err(PieceError::Server("overloaded".into()))
        );
        let whole = response(
            OpenaiApi::Chat,
            br#"{"choices":[{"message":{"content":"ok"},"finish_reason":"stop"}],"usage":{"completion_tokens":1}}"#,
        )
        .unwrap();
        assert_eq!((whole.content.as_str(), whole.usage.and_then(|u| u.completion)), ("ok", Some(1)));
    }
}
