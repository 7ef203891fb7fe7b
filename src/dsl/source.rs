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
    let bytes = read_bounded(path, MAX_FILE_BYTES).map_err(|e| match e {
        ReadError::Io(e) => {
            let help = match e.kind() {
                std::io::ErrorKind::NotFound => "check the path; relative paths start at the current directory",
                std::io::ErrorKind::PermissionDenied => "make the file readable for this user",
                _ => "check that the path names a readable file",
            };
            (Code::Io, format!("cannot read `{}`: {e}", path.display()), help.to_string())
        }
        ReadError::NotAFile(kind) => (
            Code::NotAFile,
            format!("`{}` is {kind}, not a scenario file", path.display()),
            "pass the path of a .kdl text file; to read a generated scenario, write it to a file first".into(),
        ),
        ReadError::TooLarge => (
            Code::FileTooLarge,
            format!("`{}` is over {MAX_FILE_BYTES} bytes; scenario files are limited to that", path.display()),
            "split the scenario into modules with `use`, or generate fewer nodes".into(),
        ),
    })?;
    text_from_bytes(bytes, &path.display().to_string())
}

/// Why [`read_bounded`] gave up.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    /// The path is a folder, FIFO, device or socket (the words say which).
    NotAFile(&'static str),
    /// More than the limit: reading stopped there.
    TooLarge,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotAFile(kind) => write!(f, "it is {kind}, not a regular file"),
            ReadError::TooLarge => write!(f, "it is larger than the limit"),
        }
    }
}

/// What a non-regular file is, in words, or `None` for a regular file.
pub fn special_kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a folder")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

/// Reads a regular file, stopping after `limit` bytes: the size is never trusted (files
/// under /proc say 0, a file can grow while read), and folders, FIFOs, devices and sockets
/// are refused before they are opened for reading, so `/dev/zero` or a FIFO with no writer
/// can neither fill memory nor hang the command.
pub fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    if let Some(kind) = special_kind(&meta) {
        return Err(ReadError::NotAFile(kind));
    }
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    // Opened after the check: if the path was swapped for something else in between, the
    // open file's own type decides.
    if let Some(kind) = file.metadata().ok().as_ref().and_then(special_kind) {
        return Err(ReadError::NotAFile(kind));
    }
    let mut bytes = Vec::with_capacity((meta.len() as usize).min(limit) + 1);
    file.take(limit as u64 + 1).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    if bytes.len() > limit {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

/// Why a text file could not be read; its `Display` is one line of words about "it".
#[derive(Debug)]
pub enum TextError {
    /// Not a regular file, unreadable, or over the limit (in bytes).
    Read { error: ReadError, limit: usize },
    /// Not UTF-8: the offset of the first invalid byte.
    NotUtf8 { offset: usize },
}

impl std::fmt::Display for TextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextError::Read { error: ReadError::TooLarge, limit } => write!(f, "it is larger than {} MiB", limit >> 20),
            TextError::Read { error, .. } => error.fmt(f),
            TextError::NotUtf8 { offset } => write!(f, "it is not UTF-8 text (invalid byte at offset {offset})"),
        }
    }
}

impl std::error::Error for TextError {}

/// Reads a regular text file of at most `limit` bytes (prompt sets, configs, results):
/// [`read_bounded`] with the bytes checked as UTF-8.
pub fn read_text_bounded(path: &Path, limit: usize) -> Result<String, TextError> {
    let bytes = read_bounded(path, limit).map_err(|error| TextError::Read { error, limit })?;
    String::from_utf8(bytes).map_err(|e| TextError::NotUtf8 { offset: e.utf8_error().valid_up_to() })
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

/// Deepest `/* */` comment nesting accepted (the parser recurses per level too).
pub const MAX_COMMENT_NESTING: usize = 64;
/// Most `{` open at once counted without regard to strings and comments: the parser does
/// not know a string is unterminated until it reaches the end, so an unclosed quote before
/// thousands of braces must not reach it either. Well above any real scenario.
pub const MAX_RAW_OPEN: usize = 512;
/// Longest string literal accepted (prompts belong in prompt files).
pub const MAX_STRING_BYTES: usize = 1024 * 1024;

/// What makes a text unsafe to hand to the parser, found before it runs: block nesting,
/// comment nesting or a string over the limits above. Returns (byte offset, message, help).
/// Every command that parses scenario text calls this first.
pub fn guard(text: &str) -> Option<(usize, String, String)> {
    if let Some(at) = too_deep(text, MAX_NESTING) {
        return Some((
            at,
            format!("child blocks are nested more than {MAX_NESTING} levels deep"),
            "a scenario needs a few levels; flatten the structure".into(),
        ));
    }
    let (mut open, mut comment, mut max_open, mut max_comment) = (0usize, 0usize, None, None);
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'{', _) => {
                open += 1;
                if open > MAX_RAW_OPEN && max_open.is_none() {
                    max_open = Some(i);
                }
            }
            (b'}', _) => open = open.saturating_sub(1),
            (b'/', Some(b'*')) => {
                comment += 1;
                if comment > MAX_COMMENT_NESTING && max_comment.is_none() {
                    max_comment = Some(i);
                }
                i += 1;
            }
            (b'*', Some(b'/')) => {
                comment = comment.saturating_sub(1);
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(at) = max_comment {
        return Some((
            at,
            format!("`/* */` comments are nested more than {MAX_COMMENT_NESTING} levels deep"),
            "close the comments (each `/*` needs its `*/`), or use `//` line comments".into(),
        ));
    }
    if let Some(at) = max_open {
        return Some((
            at,
            format!("more than {MAX_RAW_OPEN} `{{` are open at once (counting those inside strings and comments)"),
            "look for an unterminated string or comment before this point; a scenario needs a few levels".into(),
        ));
    }
    let mut long = None;
    scan(
        text,
        |_, _| {},
        |_| {},
        |a, z| {
            if z.saturating_sub(a) > MAX_STRING_BYTES && long.is_none() {
                long = Some(a);
            }
        },
    );
    long.map(|at| {
        (
            at,
            format!("a string is longer than {} KiB", MAX_STRING_BYTES >> 10),
            "check for an unterminated quote; long texts such as prompts belong in a prompt file (`prompts file=...`)"
                .into(),
        )
    })
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
