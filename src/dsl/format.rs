//! `benchctl fmt`: rewrites a scenario in canonical form: four-space indentation, one node
//! per line, strings in double quotes, comments kept where they were. The result is checked
//! to parse to the same document, so formatting never changes meaning.

use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};

const INDENT: &str = "    ";
/// KDL 2 keywords that a bare identifier may not spell.
const RESERVED: &[&str] = &["true", "false", "null", "inf", "-inf", "nan"];

/// Why a file was not formatted.
#[derive(Debug)]
pub enum FormatError {
    /// The text is not valid KDL (check reports the details).
    Syntax(kdl::KdlError),
    /// The canonical text would not parse to the same document: formatting refused.
    Unsafe,
    /// Refused before parsing by [`super::source::guard`] (nesting or string size): the
    /// byte offset, the message and the help.
    TooComplex(usize, String, String),
}

/// Formats `text`; the output ends with exactly one newline.
pub fn format_source(text: &str) -> Result<String, FormatError> {
    if let Some((at, message, help)) = super::source::guard(text) {
        return Err(FormatError::TooComplex(at, message, help));
    }
    let doc: KdlDocument = text.parse().map_err(FormatError::Syntax)?;
    let mut out = String::new();
    let cx = Source(text);
    leading(doc.format().map(|f| f.leading.as_str()).unwrap_or(""), 0, &mut out, true, false);
    document(&cx, &doc, 0, &mut out);
    if let Some(f) = doc.format() {
        trailing_lines(&f.trailing, 0, &mut out);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    if !out.ends_with('\n') && !out.is_empty() {
        out.push('\n');
    }
    let again: KdlDocument = out.parse().map_err(|_| FormatError::Unsafe)?;
    // The kdl crate drops some comments from its format data (e.g. `} // note`): never let
    // formatting lose one.
    if !same_doc(&doc, &again) || super::source::comments(text) != super::source::comments(&out) {
        return Err(FormatError::Unsafe);
    }
    Ok(out)
}

/// The original text, for what the kdl crate's format data does not keep.
struct Source<'t>(&'t str);

impl Source<'_> {
    /// A comment on the same line right after byte `end` (after a closing brace).
    fn same_line_comment(&self, end: usize) -> Option<&str> {
        let rest = self.0.get(end..)?;
        let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
        let t = line.trim_start_matches([' ', '\t']);
        (t.starts_with("//") || t.starts_with("/*")).then(|| t.trim_end())
    }
}

fn document(cx: &Source, doc: &KdlDocument, depth: usize, out: &mut String) {
    let mut after_newline = false;
    for (i, n) in doc.nodes().iter().enumerate() {
        let fmt = n.format();
        let lead = fmt.map(|f| f.leading.as_str()).unwrap_or("");
        leading(lead, depth, out, i == 0, after_newline);
        node(cx, n, depth, out);
        after_newline = fmt.is_some_and(|f| f.terminator.ends_with('\n'));
    }
}

/// Comments (and slash-dashed nodes) before a node, one per line; a blank line in the
/// source between nodes is kept as one blank line.
/// `after_newline`: the previous node's terminator already ended its line, so a single
/// newline at the start of `text` is a blank line.
fn leading(text: &str, depth: usize, out: &mut String, first: bool, after_newline: bool) {
    let before_content = &text[..text.find(|c: char| !c.is_whitespace()).unwrap_or(text.len())];
    let newlines = before_content.matches('\n').count();
    let blank = newlines >= if after_newline { 1 } else { 2 };
    if blank && !first {
        out.push('\n');
    }
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        out.push_str(&INDENT.repeat(depth));
        out.push_str(line);
        out.push('\n');
    }
}

fn trailing_lines(text: &str, depth: usize, out: &mut String) {
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        out.push_str(&INDENT.repeat(depth));
        out.push_str(line);
        out.push('\n');
    }
}

fn node(cx: &Source, n: &KdlNode, depth: usize, out: &mut String) {
    out.push_str(&INDENT.repeat(depth));
    if let Some(ty) = n.ty() {
        out.push_str(&format!("({})", ident(ty.value())));
    }
    out.push_str(&ident(n.name().value()));
    for e in n.entries() {
        entry(e, out);
    }
    let fmt = n.format();
    let before_term = fmt.map(|f| f.before_terminator.trim()).unwrap_or("");
    if !before_term.is_empty() {
        out.push(' ');
        out.push_str(before_term);
    }
    if let Some(children) = n.children() {
        let before = fmt.map(|f| f.before_children.trim()).unwrap_or("");
        if !before.is_empty() {
            out.push(' ');
            out.push_str(before);
        }
        if children.nodes().is_empty()
            && children.format().is_none_or(|f| f.trailing.trim().is_empty() && f.leading.trim().is_empty())
        {
            out.push_str(" {}");
        } else {
            out.push_str(" {\n");
            if let Some(f) = children.format() {
                leading(&f.leading, depth + 1, out, true, false);
            }
            document(cx, children, depth + 1, out);
            if let Some(f) = children.format() {
                trailing_lines(&f.trailing, depth + 1, out);
            }
            out.push_str(&INDENT.repeat(depth));
            out.push('}');
        }
    }
    let term = fmt.map(|f| f.terminator.trim()).unwrap_or("");
    let mut comment = term.trim_start_matches(';').trim();
    if comment.is_empty() && n.children().is_some() {
        comment = cx.same_line_comment(n.span().offset() + n.span().len()).unwrap_or("");
    }
    if !comment.is_empty() {
        out.push(' ');
        out.push_str(comment);
    }
    out.push('\n');
}

fn entry(e: &KdlEntry, out: &mut String) {
    let fmt = e.format();
    let lead = fmt.map(|f| f.leading.trim()).unwrap_or("");
    out.push(' ');
    if !lead.is_empty() {
        out.push_str(lead);
        out.push(' ');
    }
    if let Some(name) = e.name() {
        out.push_str(&ident(name.value()));
        out.push('=');
    }
    if let Some(ty) = e.ty() {
        out.push_str(&format!("({})", ident(ty.value())));
    }
    out.push_str(&value(e.value(), fmt.map(|f| f.value_repr.as_str())));
    let trail = fmt.map(|f| f.trailing.trim()).unwrap_or("");
    if !trail.is_empty() {
        out.push(' ');
        out.push_str(trail);
    }
}

fn value(v: &KdlValue, repr: Option<&str>) -> String {
    match v {
        KdlValue::String(s) if s.contains('\n') => repr.map(str::to_string).unwrap_or_else(|| quote(s)),
        // A string written bare (`ramp`, `synthetic`) stays bare when KDL allows it.
        KdlValue::String(s) if repr.is_some_and(|r| r == s) && ident(s) == *s => s.clone(),
        KdlValue::String(s) => quote(s),
        KdlValue::Integer(_) | KdlValue::Float(_) => {
            repr.filter(|r| !r.is_empty()).map(str::to_string).unwrap_or_else(|| v.to_string())
        }
        KdlValue::Bool(b) => format!("#{b}"),
        KdlValue::Null => "#null".into(),
    }
}

/// A KDL quoted string with the escapes KDL 2 defines.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A node name or property key: bare when KDL allows it, quoted otherwise.
pub fn ident(s: &str) -> String {
    let bad_char = |c: char| c.is_whitespace() || "()[]{}/\\\"#;=".contains(c) || c.is_control();
    let starts_numeric = s.starts_with(|c: char| c.is_ascii_digit())
        || ((s.starts_with('-') || s.starts_with('+') || s.starts_with('.'))
            && s[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.'));
    if s.is_empty() || s.chars().any(bad_char) || starts_numeric || RESERVED.contains(&s) {
        quote(s)
    } else {
        s.to_string()
    }
}

fn same_doc(a: &KdlDocument, b: &KdlDocument) -> bool {
    a.nodes().len() == b.nodes().len() && a.nodes().iter().zip(b.nodes()).all(|(x, y)| same_node(x, y))
}

fn same_node(a: &KdlNode, b: &KdlNode) -> bool {
    let entries = a.entries().len() == b.entries().len()
        && a.entries().iter().zip(b.entries()).all(|(x, y)| {
            x.name().map(|n| n.value()) == y.name().map(|n| n.value())
                && x.value() == y.value()
                && x.ty().map(|t| t.value()) == y.ty().map(|t| t.value())
        });
    let children = match (a.children(), b.children()) {
        (Some(x), Some(y)) => same_doc(x, y),
        (None, None) => true,
        _ => false,
    };
    a.name().value() == b.name().value()
        && a.ty().map(|t| t.value()) == b.ty().map(|t| t.value())
        && entries
        && children
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_and_idempotent() {
        let src = "// head\nscenario   x {\n  seed   42 // the seed\n\n\n  workload chat kind=inference {model synthetic=gpt2-medium;}\n  tags a \"b c\"\n}\n";
        let once = format_source(src).unwrap();
        assert_eq!(
            once,
            "// head\nscenario x {\n    seed 42 // the seed\n\n    workload chat kind=inference {\n        model synthetic=gpt2-medium\n    }\n    tags a \"b c\"\n}\n"
        );
        assert_eq!(format_source(&once).unwrap(), once);
    }

    #[test]
    fn keeps_numbers_annotations_and_odd_names() {
        let src = "n (ms)250 1_000_000 0x10 1.5e3 #true #null \"we ird\"=1 \"true\"=2\n";
        let out = format_source(src).unwrap();
        assert_eq!(out, "n (ms)250 1_000_000 0x10 1.5e3 #true #null \"we ird\"=1 \"true\"=2\n");
    }
}
