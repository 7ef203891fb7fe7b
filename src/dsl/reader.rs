//! The decode context: reads nodes and entries into typed values, recording every error
//! (never stopping at the first) and substituting `$param` references.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use kdl::{KdlEntry, KdlNode, KdlValue};

use super::diag::{Code, Diagnostic};
use super::span::{FileId, Span, Spanned};
use super::suggest;
use super::value::FromKdl;

/// A parameter's effective value: the `--set` override, or the default in the file.
#[derive(Clone, Debug)]
pub struct ParamBinding {
    pub value: KdlValue,
    /// Where the effective value was written (the default, or the `--set` text).
    pub value_span: Span,
    /// The `param` node that declared it.
    pub decl_span: Span,
}

/// All parameters of a scenario, and which of them were referenced.
#[derive(Debug, Default)]
pub struct Params {
    pub bindings: BTreeMap<String, ParamBinding>,
    used: RefCell<BTreeSet<String>>,
}

impl Params {
    pub fn is_used(&self, name: &str) -> bool {
        self.used.borrow().contains(name)
    }
}

/// Mutable state of one decode pass: the file being read and the diagnostics so far.
pub struct Ctx<'p> {
    pub file: FileId,
    pub diags: Vec<Diagnostic>,
    pub params: &'p Params,
}

/// A value as the decoders see it: after parameter substitution.
pub struct Raw<'a> {
    pub value: Cow<'a, KdlValue>,
    pub ty: Option<&'a str>,
    /// Where the value is written at the use site.
    pub span: Span,
    /// Set when the value came from a parameter: (name, where its value was written).
    pub via: Option<(String, Span)>,
}

impl<'p> Ctx<'p> {
    pub fn new(file: FileId, params: &'p Params) -> Self {
        Ctx { file, diags: vec![], params }
    }

    pub fn span(&self, s: miette::SourceSpan) -> Span {
        Span::from_kdl(self.file, s)
    }

    /// Errors reported so far: decoders compare counts to tell whether a node had problems.
    pub fn error_count(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    pub fn error(
        &mut self,
        code: Code,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.diags.push(Diagnostic::error(code, message).with_label(span, label).with_help(help));
    }

    /// Reports two options that exclude each other, labelling both.
    pub fn conflict(&mut self, first: (Span, &str), second: (Span, &str), message: &str, help: &str) {
        let d = Diagnostic::error(Code::ConflictingOptions, message)
            .with_label(second.0, second.1)
            .with_label(first.0, first.1);
        self.diags.push(d.with_help(help));
    }

    /// The span of an entry's value alone (without `key=` or a type annotation).
    pub fn value_span(&self, e: &KdlEntry) -> Span {
        let whole = self.span(e.span());
        match e.format() {
            Some(f) if !f.value_repr.is_empty() && f.value_repr.len() <= whole.len => {
                Span::new(self.file, whole.end() - f.value_repr.len(), f.value_repr.len())
            }
            _ => whole,
        }
    }

    /// Resolves `$name` references; `$$` escapes a literal dollar sign.
    pub fn raw<'a>(&mut self, e: &'a KdlEntry) -> Option<Raw<'a>> {
        let span = self.value_span(e);
        let ty = e.ty().map(|t| t.value());
        if let KdlValue::String(s) = e.value() {
            if let Some(rest) = s.strip_prefix("$$") {
                return Some(Raw { value: Cow::Owned(KdlValue::String(format!("${rest}"))), ty, span, via: None });
            }
            if let Some(name) = s.strip_prefix('$') {
                let name = name.trim_start_matches('{').trim_end_matches('}');
                return match self.params.bindings.get(name) {
                    Some(b) => {
                        self.params.used.borrow_mut().insert(name.to_string());
                        Some(Raw {
                            value: Cow::Owned(b.value.clone()),
                            ty,
                            span,
                            via: Some((name.to_string(), b.value_span)),
                        })
                    }
                    None => {
                        let names: Vec<&str> = self.params.bindings.keys().map(String::as_str).collect();
                        let help = match suggest::closest(name, names.iter().copied()) {
                            Some(c) => format!("did you mean `${c}`?"),
                            None => format!("declare it with `param \"{name}\" default=...`, or write `$$` for a literal dollar sign"),
                        };
                        self.error(
                            Code::UnknownParameter,
                            span,
                            format!("unknown parameter `{name}`"),
                            "not declared",
                            help,
                        );
                        None
                    }
                };
            }
        }
        Some(Raw { value: Cow::Borrowed(e.value()), ty, span, via: None })
    }

    /// Decodes an entry's value as `T`, reporting a labelled error on failure.
    pub fn decode<T: FromKdl>(&mut self, e: &KdlEntry) -> Option<Spanned<T>> {
        let raw = self.raw(e)?;
        self.decode_raw(&raw)
    }

    pub fn decode_raw<T: FromKdl>(&mut self, raw: &Raw<'_>) -> Option<Spanned<T>> {
        match T::from_kdl(&raw.value, raw.ty) {
            Ok(v) => Some(Spanned::new(v, raw.span)),
            Err(err) => {
                let mut d = Diagnostic::error(err.code, err.message.clone());
                match &raw.via {
                    Some((name, at)) => {
                        d = d
                            .with_label(raw.span, format!("parameter `{name}` has an invalid value here"))
                            .with_label(*at, "value given here");
                    }
                    None => d = d.with_label(raw.span, format!("expected {}", T::EXPECTED)),
                }
                self.push(d.with_help(err.help));
                None
            }
        }
    }

    /// Reports a child node whose name is not accepted here.
    pub fn unknown_node(&mut self, node: &KdlNode, parent: &str, accepted: &[&str]) {
        let name = node.name().value();
        let span = self.span(node.name().span());
        self.error(
            Code::UnknownNode,
            span,
            format!("unknown node `{name}` in {parent}"),
            "not recognised here",
            suggest::help_for(name, accepted, "nodes accepted here"),
        );
    }
}

/// Reads one node's entries, remembering which were consumed so that leftovers can be
/// reported as unknown properties or unexpected arguments.
pub struct NodeReader<'a> {
    pub node: &'a KdlNode,
    used: Vec<bool>,
    known: Vec<&'static str>,
}

impl<'a> NodeReader<'a> {
    pub fn new(node: &'a KdlNode) -> Self {
        NodeReader { node, used: vec![false; node.entries().len()], known: vec![] }
    }

    pub fn name(&self) -> &'a str {
        self.node.name().value()
    }

    /// The span of the node's name: where node-level problems are labelled.
    pub fn name_span(&self, cx: &Ctx) -> Span {
        cx.span(self.node.name().span())
    }

    fn positional(&self) -> impl Iterator<Item = (usize, &'a KdlEntry)> {
        self.node.entries().iter().enumerate().filter(|(_, e)| e.name().is_none())
    }

    pub fn arg_count(&self) -> usize {
        self.positional().count()
    }

    /// The raw entry of positional argument `idx`, marking it consumed.
    pub fn arg_entry(&mut self, idx: usize) -> Option<&'a KdlEntry> {
        let (i, e) = self.positional().nth(idx)?;
        self.used[i] = true;
        Some(e)
    }

    pub fn arg<T: FromKdl>(&mut self, cx: &mut Ctx, idx: usize) -> Option<Spanned<T>> {
        let e = self.arg_entry(idx)?;
        cx.decode(e)
    }

    /// A required positional argument; `what` completes "expected ..." in the error.
    pub fn req_arg<T: FromKdl>(&mut self, cx: &mut Ctx, idx: usize, what: &str, example: &str) -> Option<Spanned<T>> {
        if self.positional().nth(idx).is_none() {
            let span = self.name_span(cx);
            cx.error(
                Code::MissingArgument,
                span,
                format!("`{}` needs {what}", self.name()),
                format!("{what} missing"),
                format!("for example: {example}"),
            );
            return None;
        }
        self.arg(cx, idx)
    }

    /// All positional arguments from `from` on.
    pub fn rest_args<T: FromKdl>(&mut self, cx: &mut Ctx, from: usize) -> Vec<Spanned<T>> {
        let n = self.arg_count();
        (from..n).filter_map(|i| self.arg(cx, i)).collect()
    }

    /// The entry of property `name`; a repeated property is an error (KDL would keep the last).
    pub fn prop_entry(&mut self, cx: &mut Ctx, name: &'static str) -> Option<&'a KdlEntry> {
        self.known.push(name);
        let mut found: Option<(usize, &'a KdlEntry)> = None;
        for (i, e) in self.node.entries().iter().enumerate() {
            if e.name().map(|n| n.value()) != Some(name) {
                continue;
            }
            self.used[i] = true;
            if let Some((_, first)) = found {
                let d = Diagnostic::error(Code::DuplicateProperty, format!("property `{name}` is given twice"))
                    .with_label(cx.span(e.span()), "repeated here")
                    .with_label(cx.span(first.span()), "first given here")
                    .with_help("remove one of them");
                cx.push(d);
            }
            found = Some((i, e));
        }
        found.map(|(_, e)| e)
    }

    pub fn has_prop(&self, name: &str) -> bool {
        self.node.entries().iter().any(|e| e.name().map(|n| n.value()) == Some(name))
    }

    pub fn prop<T: FromKdl>(&mut self, cx: &mut Ctx, name: &'static str) -> Option<Spanned<T>> {
        let e = self.prop_entry(cx, name)?;
        cx.decode(e)
    }

    pub fn req_prop<T: FromKdl>(&mut self, cx: &mut Ctx, name: &'static str, example: &str) -> Option<Spanned<T>> {
        if !self.has_prop(name) {
            self.known.push(name);
            let span = self.name_span(cx);
            cx.error(
                Code::MissingProperty,
                span,
                format!("`{}` needs the property `{name}`", self.name()),
                format!("`{name}` missing"),
                format!("add it, for example: {example}"),
            );
            return None;
        }
        self.prop(cx, name)
    }

    /// Marks every entry consumed: used when the node's variant is unknown, so its
    /// properties are not reported again as unknown.
    pub fn consume_all(&mut self) {
        self.used.iter_mut().for_each(|u| *u = true);
    }

    /// Reports every entry that no accessor consumed. Call after reading all properties.
    pub fn finish(self, cx: &mut Ctx) {
        for (i, e) in self.node.entries().iter().enumerate() {
            if self.used[i] {
                continue;
            }
            match e.name() {
                Some(key) => {
                    let name = key.value();
                    let help = suggest::help_for(name, &self.known, "properties of this node");
                    cx.error(
                        Code::UnknownProperty,
                        cx.span(key.span()),
                        format!("unknown property `{name}` on `{}`", self.name()),
                        "not a property of this node",
                        help,
                    );
                }
                None => {
                    let span = cx.value_span(e);
                    cx.error(
                        Code::UnexpectedArgument,
                        span,
                        format!("unexpected argument to `{}`", self.name()),
                        "not expected here",
                        "remove it, or give it as a property (name=value)",
                    );
                }
            }
        }
    }
}

/// The children of a node, or none.
pub fn children(node: &KdlNode) -> &[KdlNode] {
    node.children().map(|d| d.nodes()).unwrap_or(&[])
}
