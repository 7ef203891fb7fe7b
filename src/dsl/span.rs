//! Source positions shared by every DSL stage: which file, which bytes.

use serde::Serialize;

/// Index of a file in the [`super::source::SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct FileId(pub u32);

/// A byte range in one source file. `len` may be zero (a point, e.g. end of file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub len: usize,
}

impl Span {
    pub fn new(file: FileId, start: usize, len: usize) -> Self {
        Span { file, start, len }
    }

    /// Converts a span reported by the kdl crate (byte offsets) into ours.
    pub fn from_kdl(file: FileId, s: miette::SourceSpan) -> Self {
        Span { file, start: s.offset(), len: s.len() }
    }

    pub fn end(&self) -> usize {
        self.start + self.len
    }

    /// A sub-range, relative to this span's start (used for parts of a string literal).
    pub fn sub(&self, offset: usize, len: usize) -> Self {
        let start = (self.start + offset).min(self.end());
        Span { file: self.file, start, len: len.min(self.end() - start) }
    }
}

/// A value decoded from the scenario, with the span it came from, so later stages can point
/// back at the source when something about it turns out to be wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct Spanned<T> {
    pub value: T,
    #[serde(skip)]
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned { value: f(self.value), span: self.span }
    }

    pub fn as_ref(&self) -> Spanned<&T> {
        Spanned { value: &self.value, span: self.span }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}
