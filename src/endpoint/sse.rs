//! Server-Sent Events, parsed incrementally from the bytes of a response body as they
//! arrive: an event is the `data:` lines before a blank line, joined by newlines. Comments
//! (`:`), `event:`, `id:` and `retry:` fields are read past. Lines end in LF, CRLF or CR.

/// An incremental SSE parser.
#[derive(Debug, Default)]
pub struct Parser {
    /// The bytes of the line being read (no terminator yet).
    line: Vec<u8>,
    /// The data lines of the event being read.
    data: Option<String>,
    /// The last byte fed was a CR: an LF that follows it ends the same line.
    after_cr: bool,
    /// A line was not UTF-8.
    malformed: Option<String>,
}

impl Parser {
    /// Feeds the next bytes of the body; completed events are pushed onto `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(out),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(out);
                }
                _ => self.line.push(b),
            }
        }
    }

    /// The body has ended: an event still open without its blank line is delivered (some
    /// servers end the stream right after the last `data:` line).
    pub fn finish(&mut self, out: &mut Vec<String>) {
        if !self.line.is_empty() {
            self.end_line(out);
        }
        if let Some(d) = self.data.take() {
            out.push(d);
        }
    }

    /// A line that was not UTF-8, if one was seen (the first).
    pub fn malformed(&self) -> Option<&str> {
        self.malformed.as_deref()
    }

    fn end_line(&mut self, out: &mut Vec<String>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if let Some(d) = self.data.take() {
                out.push(d);
            }
            return;
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            self.malformed.get_or_insert_with(|| format!("a line of {} bytes is not UTF-8", line.len()));
            return;
        };
        if text.starts_with(':') {
            return;
        }
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<String> {
        let mut p = Parser::default();
        let mut out = vec![];
        for c in chunks {
            p.feed(c, &mut out);
        }
        p.finish(&mut out);
        out
    }

    #[test]
    fn events_split_anywhere_and_any_line_ending() {
        let body = b"data: {\"a\":1}\r\n\r\n: keep-alive\n\nevent: x\ndata: two\ndata: lines\n\ndata:[DONE]\r\r";
        let whole = parse(&[body]);
        assert_eq!(whole, ["{\"a\":1}", "two\nlines", "[DONE]"]);
        // Byte by byte gives the same events (a CRLF split across reads included).
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(parse(&bytes), whole);
    }

    #[test]
    fn an_unterminated_last_event_is_delivered() {
        assert_eq!(parse(&[b"data: x\n\ndata: y"]), ["x", "y"]);
        assert!(parse(&[b": only a comment\n"]).is_empty());
    }

    #[test]
    fn non_utf8_is_reported() {
        let mut p = Parser::default();
        let mut out = vec![];
        p.feed(b"data: \xff\xfe\n\n", &mut out);
        assert!(out.is_empty());
        assert!(p.malformed().is_some());
    }
}
