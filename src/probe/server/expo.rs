//! The Prometheus text exposition format (0.0.4) and OpenMetrics 1.0, read into samples.
//!
//! A line that does not parse is skipped and counted (with the first such line kept for
//! the message), so one odd series never loses a scrape. What is read:
//! - `# TYPE name kind` (counter, gauge, histogram, summary, untyped, unknown, and the
//!   OpenMetrics kinds gaugehistogram, stateset, info); `# HELP`, `# UNIT` and other
//!   comments are skipped; `# EOF` ends the document;
//! - `name{label="value",...} value [timestamp]`, with `\\`, `\"` and `\n` escapes in label
//!   values, a quoted name inside the braces (`{"name.with.dots", a="b"}`), and an
//!   OpenMetrics exemplar (`# {...} value`) after the value, which is ignored;
//! - values as Go and Python write them: `1e+06`, `+Inf`, `-Inf`, `NaN`.

use std::borrow::Cow;
use std::collections::HashMap;

/// A metric family's declared kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    GaugeHistogram,
    StateSet,
    Info,
    Untyped,
}

impl Kind {
    fn parse(s: &str) -> Kind {
        match s {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "summary" => Kind::Summary,
            "gaugehistogram" => Kind::GaugeHistogram,
            "stateset" => Kind::StateSet,
            "info" => Kind::Info,
            _ => Kind::Untyped,
        }
    }
}

/// One sample: a series (name and labels) and its value. Names and values borrow the text
/// unless an escape had to be undone (a 2 MB scrape is read without a copy of each line).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub name: Cow<'a, str>,
    /// Labels in the order written.
    pub labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub value: f64,
}

impl Sample<'_> {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref())
    }
}

/// A parsed exposition.
#[derive(Debug, Default)]
pub struct Exposition<'a> {
    /// Family name -> declared kind (`# TYPE`).
    pub kinds: HashMap<&'a str, Kind>,
    pub samples: Vec<Sample<'a>>,
    /// Lines that did not parse, and the first of them with its line number and reason.
    pub skipped: u64,
    pub first_skipped: Option<String>,
}

impl<'a> Exposition<'a> {
    /// The declared kind of a sample's family: the name itself, or the name without a
    /// histogram, summary or counter suffix (`_bucket`, `_sum`, `_count`, `_total`,
    /// `_created`).
    pub fn kind_of(&self, sample_name: &str) -> Option<(Kind, &'a str)> {
        if let Some((name, k)) = self.kinds.get_key_value(sample_name) {
            return Some((*k, *name));
        }
        ["_bucket", "_sum", "_count", "_total", "_created", "_gcount", "_gsum", "_info"].iter().find_map(|suffix| {
            let base = sample_name.strip_suffix(suffix)?;
            self.kinds.get_key_value(base).map(|(name, k)| (*k, *name))
        })
    }
}

/// Reads an exposition. Never fails: unreadable lines are counted in `skipped`.
pub fn parse(text: &str) -> Exposition<'_> {
    let mut out = Exposition::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            match words.next() {
                Some("EOF") => break,
                Some("TYPE") => {
                    if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                        out.kinds.insert(name, Kind::parse(kind));
                    }
                }
                _ => {}
            }
            continue;
        }
        match sample(line) {
            Ok(s) => out.samples.push(s),
            Err(why) => {
                out.skipped += 1;
                if out.first_skipped.is_none() {
                    let shown: String = line.chars().take(120).collect();
                    out.first_skipped = Some(format!("line {}: {why}: `{shown}`", n + 1));
                }
            }
        }
    }
    out
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// One sample line.
fn sample(line: &str) -> Result<Sample<'_>, &'static str> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    let start = i;
    if i < b.len() && is_name_start(b[i]) {
        while i < b.len() && is_name_char(b[i]) {
            i += 1;
        }
    }
    let mut name = Cow::Borrowed(&line[start..i]);
    let mut labels = vec![];
    let braces = i < b.len() && b[i] == b'{';
    if braces {
        i += 1;
        loop {
            while i < b.len() && (b[i] == b' ' || b[i] == b',') {
                i += 1;
            }
            if i >= b.len() {
                return Err("unclosed `{`");
            }
            if b[i] == b'}' {
                i += 1;
                break;
            }
            // A label name, or a quoted one (a quoted string alone is the metric name).
            let key = if b[i] == b'"' {
                let (s, next) = quoted(line, i)?;
                i = next;
                s
            } else {
                let k = i;
                while i < b.len() && is_name_char(b[i]) {
                    i += 1;
                }
                if k == i {
                    return Err("a label name was expected");
                }
                Cow::Borrowed(&line[k..i])
            };
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            if i < b.len() && b[i] == b'=' {
                i += 1;
                while i < b.len() && b[i] == b' ' {
                    i += 1;
                }
                if i >= b.len() || b[i] != b'"' {
                    return Err("a label value must be quoted");
                }
                let (v, next) = quoted(line, i)?;
                i = next;
                labels.push((key, v));
            } else if name.is_empty() {
                name = key;
            } else {
                return Err("a label has no value");
            }
        }
    }
    if name.is_empty() {
        return Err("no metric name");
    }
    if !braces && !line[i..].starts_with([' ', '\t']) {
        return Err("a space must follow the name");
    }
    let rest = line[i..].trim_start();
    let value_text = rest.split([' ', '\t']).next().unwrap_or("");
    let value = number(value_text).ok_or("the value is not a number")?;
    Ok(Sample { name, labels, value })
}

/// A quoted string starting at `b[start] == '"'`: its unescaped text (borrowed when it has
/// no escape) and the index after it.
fn quoted(line: &str, start: usize) -> Result<(Cow<'_, str>, usize), &'static str> {
    let b = line.as_bytes();
    let mut i = start + 1;
    let mut out = String::new();
    let mut run = i;
    let mut escaped = false;
    while i < b.len() {
        match b[i] {
            b'"' if !escaped => return Ok((Cow::Borrowed(&line[run..i]), i + 1)),
            b'"' => {
                out.push_str(&line[run..i]);
                return Ok((Cow::Owned(out), i + 1));
            }
            b'\\' => {
                escaped = true;
                out.push_str(&line[run..i]);
                match b.get(i + 1) {
                    Some(b'n') => out.push('\n'),
                    Some(b'\\') => out.push('\\'),
                    Some(b'"') => out.push('"'),
                    Some(_) => {
                        // Prometheus keeps an unknown escape as written.
                        out.push('\\');
                        i += 1;
                        run = i;
                        continue;
                    }
                    None => return Err("a label value ends in `\\`"),
                }
                i += 2;
                run = i;
            }
            _ => i += 1,
        }
    }
    Err("unclosed quote")
}

/// A sample value: a float as Go, Python or Rust write it, or `+Inf`, `-Inf`, `NaN`.
pub fn number(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ if s.is_empty() || s.bytes().any(|c| c.is_ascii_alphabetic() && c != b'e' && c != b'E') => None,
        _ => s.parse().ok(),
    }
}

/// Writes samples in the text format (label values escaped): for tests and fixtures.
pub fn render(samples: &[Sample<'_>]) -> String {
    let mut out = String::new();
    for s in samples {
        out.push_str(&s.name);
        if !s.labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in s.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                for c in v.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '"' => out.push_str("\\\""),
                        '\n' => out.push_str("\\n"),
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        if s.value.is_nan() {
            out.push_str("NaN");
        } else if s.value.is_infinite() {
            out.push_str(if s.value > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            out.push_str(&format!("{:?}", s.value));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_text_format() {
        let text = "# HELP vllm:num_requests_running Number of requests.\n\
            # TYPE vllm:num_requests_running gauge\n\
            vllm:num_requests_running{model_name=\"m\",engine=\"0\"} 3.0\n\
            # TYPE vllm:prompt_tokens counter\n\
            vllm:prompt_tokens_total{model_name=\"m\"} 1.5e+06\n\
            vllm:prompt_tokens_created{model_name=\"m\"} 1.7e9\n\
            http_requests{path=\"/a \\\"b\\\" \\\\ c\\nd\"} 7 1712345678000\n\
            weird{le=\"+Inf\"} +Inf\n\
            nan_one NaN\n";
        let e = parse(text);
        assert_eq!(e.skipped, 0, "{:?}", e.first_skipped);
        assert_eq!(e.samples.len(), 6);
        assert_eq!(e.samples[0].label("engine"), Some("0"));
        assert_eq!(e.samples[1].value, 1.5e6);
        assert_eq!(e.kind_of("vllm:prompt_tokens_total"), Some((Kind::Counter, "vllm:prompt_tokens")));
        assert_eq!(e.kind_of("vllm:num_requests_running").map(|k| k.0), Some(Kind::Gauge));
        assert_eq!(e.samples[3].label("path"), Some("/a \"b\" \\ c\nd"));
        assert_eq!(e.samples[3].value, 7.0);
        assert!(e.samples[4].value.is_infinite() && e.samples[5].value.is_nan());
    }

    #[test]
    fn reads_openmetrics() {
        let text = "# TYPE foo counter\n# UNIT foo seconds\n\
            foo_total{a=\"b\"} 17.0 # {trace_id=\"abc\"} 1.0 1520879607.789\n\
            {\"my.dotted.metric\", x=\"y\"} 2\n\
            # EOF\n\
            after_eof 1\n";
        let e = parse(text);
        assert_eq!(e.skipped, 0, "{:?}", e.first_skipped);
        assert_eq!(e.samples.len(), 2);
        assert_eq!(e.samples[0].value, 17.0);
        assert_eq!(e.samples[1].name, "my.dotted.metric");
        assert_eq!(e.samples[1].label("x"), Some("y"));
    }

    #[test]
    fn bad_lines_are_counted_not_fatal() {
        let e = parse("good 1\nbad{a=b} 2\nworse\nalso_good{x=\"1\"} 2\n{} 3\n");
        assert_eq!(e.samples.len(), 2);
        assert_eq!(e.skipped, 3);
        assert!(e.first_skipped.unwrap().starts_with("line 2: a label value must be quoted"));
    }

    fn label_value() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-zA-Z0-9 _./:\\\\\"\n{}=,#-]{0,12}").unwrap()
    }

    fn a_sample() -> impl Strategy<Value = Sample<'static>> {
        (
            "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}",
            proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,8}", label_value()), 0..4),
            prop_oneof![
                any::<f64>(),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                (0u64..1 << 53).prop_map(|x| x as f64)
            ],
        )
            .prop_map(|(name, labels, value)| Sample {
                name: name.into(),
                labels: labels.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
                value,
            })
    }

    proptest! {
        #[test]
        fn what_is_written_reads_back(samples in proptest::collection::vec(a_sample(), 0..20)) {
            let text = render(&samples);
            let e = parse(&text);
            prop_assert_eq!(e.skipped, 0, "{:?}", e.first_skipped);
            prop_assert_eq!(e.samples.len(), samples.len());
            for (a, b) in e.samples.iter().zip(&samples) {
                prop_assert_eq!(&a.name, &b.name);
                prop_assert_eq!(&a.labels, &b.labels);
                prop_assert!(a.value == b.value || (a.value.is_nan() && b.value.is_nan()));
            }
        }

        #[test]
        fn any_text_is_read_without_a_panic(text in "\\PC{0,200}") {
            let e = parse(&text);
            prop_assert!(e.samples.len() as u64 + e.skipped <= text.lines().count() as u64);
        }
    }
}
