//! Stage 1, source: reading scenario files into memory and keeping them for diagnostics.
//!
//! Every file a scenario touches (the root, each import, the `--set` overrides) gets a
//! [`FileId`]; spans elsewhere refer to files only through it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diag::{Code, Diagnostic};
use super::span::{FileId, Span};

/// Scenario files larger than this are refused before parsing: a scenario is a few KB, and
/// parsing very large text costs seconds for no benefit.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// How a file came into the scenario, so diagnostics can say which `use` brought it in.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// Named on the command line.
    Root,
    /// Brought in by the `use` node at this span.
    Import { by: Span },
    /// Synthesised from `--set` options.
    CommandLine,
}

/// One loaded file. `text` is shared with the diagnostics that render it.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name shown to users: the path as given, or `<stdlib>/...`, or `--set`.
    pub name: String,
    /// The canonical path on disk, when there is one (used for cycle detection).
    pub path: Option<PathBuf>,
    pub text: Arc<str>,
    pub origin: Origin,
}

/// All files of one scenario, indexed by [`FileId`].
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId((self.files.len() - 1) as u32)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (FileId(i as u32), f))
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, file: FileId, offset: usize) -> (usize, usize) {
        line_col(&self.get(file).text, offset)
    }
}

/// 1-based line and column (in characters) of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut cut = offset;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let before = &text[..cut];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Why a file could not become text. The caller turns it into a diagnostic with the right
/// span (the `use` node for imports, none for the root file).
pub fn read_text(path: &Path) -> Result<String, (Code, String, String)> {
    let bytes = std::fs::read(path).map_err(|e| {
        let help = match e.kind() {
            std::io::ErrorKind::NotFound => "check the path; relative paths start at the current directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "make the file readable for this user".to_string(),
            _ => "check that the path names a readable file".to_string(),
        };
        (Code::Io, format!("cannot read `{}`: {e}", path.display()), help)
    })?;
    text_from_bytes(bytes, &path.display().to_string())
}

/// Checks size, binary content and UTF-8, in that order, and returns the text.
pub fn text_from_bytes(bytes: Vec<u8>, name: &str) -> Result<String, (Code, String, String)> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err((
            Code::FileTooLarge,
            format!("`{name}` is {} bytes; scenario files are limited to {} bytes", bytes.len(), MAX_FILE_BYTES),
            "split the scenario into modules with `use`, or generate fewer nodes".into(),
        ));
    }
    let probe = &bytes[..bytes.len().min(8192)];
    if probe.contains(&0) {
        return Err((
            Code::BinaryFile,
            format!("`{name}` looks like a binary file (it contains NUL bytes), not a KDL scenario"),
            "pass the path of a .kdl text file".into(),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let valid = String::from_utf8_lossy(&e.as_bytes()[..at]).into_owned();
        let (line, col) = line_col(&valid, at);
        (
            Code::InvalidUtf8,
            format!("`{name}` is not valid UTF-8: invalid byte at offset {at} (line {line}, column {col})"),
            "KDL files must be UTF-8; re-save the file with UTF-8 encoding".into(),
        )
    })
}

/// Builds the diagnostic for a file that could not be read, labelled at `at` when an import
/// caused the read.
pub fn read_error(err: (Code, String, String), at: Option<Span>) -> Diagnostic {
    let (code, message, help) = err;
    let mut d = Diagnostic::error(code, message).with_help(help);
    if let Some(span) = at {
        d = d.with_label(span, "imported here");
    }
    d
}

/// Deepest child-block nesting accepted. Scenarios nest four or five levels; the limit keeps
/// a hostile file from exhausting the parser's stack (it recurses per level).
pub const MAX_NESTING: usize = 64;

/// Byte offset of the first `{` nested deeper than `limit`, skipping strings and comments.
pub fn too_deep(text: &str, limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut found = None;
    scan(
        text,
        |at, open| {
            if open {
                depth += 1;
                if depth > limit && found.is_none() {
                    found = Some(at);
                }
            } else {
                depth = depth.saturating_sub(1);
            }
        },
        |_| {},
        |_, _| {},
    );
    found
}

/// Where a text that does not parse most likely went wrong, judged from its indentation:
/// the first line indented deeper than the blocks open before it (a node header ending in
/// `{` is probably missing above it) or shallower (a `}` is probably missing before it).
/// Returns the offset of the line's first character and whether a header (true) or a
/// closing brace (false) is missing. `None` when the indentation is not regular enough to
/// tell.
pub fn likely_break(text: &str) -> Option<(usize, bool)> {
    let (mut braces, mut strings) = (vec![], vec![]);
    scan(text, |at, open| braces.push((at, open)), |_| {}, |a, b| strings.push((a, b)));
    let in_string = |at: usize| strings.iter().any(|&(a, b)| a < at && at <= b);
    // (offset of the first non-blank character, its indentation) of each code line.
    let mut lines = vec![];
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_start_matches([' ', '\t']);
        let indent = line.len() - body.len();
        let first = start + indent;
        start += line.len();
        if body.trim().is_empty() || body.starts_with("//") || body.starts_with("/*") || in_string(first) {
            continue;
        }
        if line[..indent].contains('\t') {
            return None;
        }
        lines.push((first, indent));
    }
    let unit = lines.iter().map(|&(_, i)| i).filter(|&i| i > 0).min()?;
    let mut depth = 0usize;
    let mut events = braces.iter().peekable();
    for (first, indent) in lines {
        while let Some(&&(at, open)) = events.peek() {
            if at >= first {
                break;
            }
            depth = if open { depth + 1 } else { depth.saturating_sub(1) };
            events.next();
        }
        if indent % unit != 0 {
            continue;
        }
        let closes = text[first..].starts_with('}');
        let expected = if closes { depth.saturating_sub(1) } else { depth };
        let level = indent / unit;
        if level != expected {
            return Some((first, level > expected));
        }
    }
    None
}

/// The comments of a KDL text (`//` to end of line, and nested `/* */`), in order.
pub fn comments(text: &str) -> Vec<&str> {
    let mut out = vec![];
    scan(text, |_, _| {}, |c| out.push(c), |_, _| {});
    out
}

/// A light scan of KDL text, not a parser: reports braces (offset, is-open), comments, and
/// the byte ranges of quoted, raw and multi-line strings, which it skips.
fn scan<'t>(
    text: &'t str,
    mut brace: impl FnMut(usize, bool),
    mut comment: impl FnMut(&'t str),
    mut string: impl FnMut(usize, usize),
) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => brace(i, true),
            b'}' => brace(i, false),
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let start = i;
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                comment(text[start..i].trim_end());
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let start = i;
                let mut level = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        level += 1;
                        i += 1;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        level -= 1;
                        i += 1;
                        if level == 0 {
                            break;
                        }
                    }
                    i += 1;
                }
                comment(&text[start..(i + 1).min(b.len())]);
            }
            b'#' if matches!(b.get(i + 1), Some(b'#' | b'"')) => {
                // Raw string: #"..."# with any number of hashes; no escapes inside.
                let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
                let start = i + hashes;
                if b.get(start) == Some(&b'"') {
                    let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                    let from = i;
                    i = b[start + 1..]
                        .windows(close.len())
                        .position(|w| w == close.as_slice())
                        .map(|p| start + 1 + p + close.len() - 1)
                        .unwrap_or(b.len());
                    string(from, i);
                }
            }
            b'"' => {
                let from = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                string(from, i);
            }
            _ => {}
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting() {
        assert_eq!(too_deep("a { b { c { } } }", 3), None);
        assert_eq!(too_deep("a { b { c { d { } } } }", 3), Some(14));
        assert_eq!(too_deep("a \"{{{{\" { // {{{{\n /* { */ #\"{{\"# }", 1), None);
        assert_eq!(line_col("ab\ncé\nd", 6), (2, 3));
        assert_eq!(comments("a 1 // one\nb \"//no\" /* two /* nested */ */ c\n"), ["// one", "/* two /* nested */ */"]);
    }

    #[test]
    fn likely_breaks() {
        let ok = "s {\n    w {\n        x 1\n    }\n    y \"\"\"\n  any indent\n\"\"\"\n}\n";
        assert_eq!(likely_break(ok), None);
        // A deleted header: `x 1` is indented as if inside a block.
        let header = "s {\n    w {\n        x 1\n    }\n        x 2\n    }\n}\n";
        assert_eq!(likely_break(header), Some((header.find("x 2").unwrap(), true)));
        // A deleted `}`: `v` is back at the outer level while `w` is still open.
        let brace = "s {\n    w {\n        x 1\n    v {\n    }\n}\n";
        assert_eq!(likely_break(brace), Some((brace.find("v {").unwrap(), false)));
        assert_eq!(likely_break("s {\n\tw 1\n}\n"), None, "tabs: no judgement");
    }
}
