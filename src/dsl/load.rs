//! Stages 1-2, source and syntax: reading the root file, resolving `use` imports (relative
//! files and the standard library) with cycle detection, parsing each file once, and
//! applying `--set` overrides to parameters.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kdl::{KdlDocument, KdlNode, KdlValue};

use super::decode::{self, Item};
use super::diag::{Code, Diagnostic};
use super::model::ParamDecl;
use super::reader::{children, Ctx, ParamBinding, Params};
use super::source::{self, Origin, SourceFile, SourceMap};
use super::span::{FileId, Span, Spanned};
use super::suggest;

include!(concat!(env!("OUT_DIR"), "/stdlib.rs"));

/// The standard library built into the binary: (path under `std/`, text).
pub fn builtin_modules() -> &'static [(&'static str, &'static str)] {
    BUILTIN_STDLIB
}

/// The scenarios shipped in `scenarios/`, built into the binary: (name, contents).
pub fn builtin_scenarios() -> &'static [(&'static str, &'static str)] {
    BUILTIN_SCENARIOS
}

/// What a scenario or module is for: its `description`, else its first `//` comment line.
pub fn summary_line(text: &str) -> String {
    // The leading comment block, up to the end of its first sentence.
    let block: Vec<&str> = text
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .map_while(|l| l.strip_prefix("//"))
        .map(str::trim)
        .collect();
    let joined = block.join(" ");
    let comment = (!joined.is_empty()).then(|| match joined.find(". ") {
        Some(i) => joined[..=i].to_string(),
        None => joined.clone(),
    });
    let description = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("description "))
        .map(|d| d.trim().trim_matches('"').to_string());
    description.filter(|d| !d.is_empty()).or(comment).unwrap_or_default()
}

/// Where to look for modules and what to override.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--stdlib DIR` (searched before `BENCHCTL_STDLIB`).
    pub stdlib_dirs: Vec<PathBuf>,
    /// `--set name=value` overrides, in command-line order.
    pub sets: Vec<String>,
}

impl LoadOptions {
    /// The stdlib search path after the scenario's own folder: `--stdlib`, then
    /// `BENCHCTL_STDLIB`, then `stdlib/` beside the binary (or in `../share/benchctl`).
    pub fn stdlib_path(&self) -> Vec<PathBuf> {
        let mut dirs = self.stdlib_dirs.clone();
        if let Some(env) = std::env::var_os("BENCHCTL_STDLIB") {
            dirs.extend(std::env::split_paths(&env));
        }
        if let Some(exe_dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)) {
            // Only folders that exist: an install without them uses the built-in stdlib.
            dirs.extend(
                [exe_dir.join("stdlib"), exe_dir.join("../share/benchctl/stdlib")].into_iter().filter(|d| d.is_dir()),
            );
        }
        dirs
    }
}

/// Where a module was found.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ModuleKey {
    Disk(PathBuf),
    Builtin(String),
}

/// Every file of a scenario, parsed, and how `use` nodes map to files.
pub struct Workspace {
    pub sources: SourceMap,
    pub docs: HashMap<FileId, KdlDocument>,
    pub root: FileId,
    /// `use` node (file, byte offset) -> the file it imports.
    imports: HashMap<(FileId, usize), FileId>,
    keys: HashMap<ModuleKey, FileId>,
    file_keys: HashMap<FileId, ModuleKey>,
    stdlib_path: Vec<PathBuf>,
    pub diags: Vec<Diagnostic>,
}

impl Workspace {
    /// Loads the root file from disk and everything it imports.
    pub fn open(path: &Path, opts: &LoadOptions) -> Workspace {
        let name = path.display().to_string();
        match source::read_text(path) {
            Ok(text) => {
                let key = std::fs::canonicalize(path).map(ModuleKey::Disk).ok();
                Self::from_text(name, Some(path.to_path_buf()), text, key, opts)
            }
            Err(e) => {
                let mut ws = Self::empty(opts);
                let id = ws.sources.add(SourceFile {
                    name,
                    path: Some(path.into()),
                    text: Arc::from(""),
                    origin: Origin::Root,
                });
                ws.root = id;
                ws.diags.push(source::read_error(e, None).in_file(id));
                ws
            }
        }
    }

    /// Loads a root scenario given as text (tests, benchmarks, stdin); imports resolve
    /// relative to `path`'s folder when given, else the current directory.
    pub fn from_source(name: &str, path: Option<&Path>, text: String, opts: &LoadOptions) -> Workspace {
        Self::from_text(name.to_string(), path.map(Path::to_path_buf), text, None, opts)
    }

    fn empty(opts: &LoadOptions) -> Workspace {
        Workspace {
            sources: SourceMap::new(),
            docs: HashMap::new(),
            root: FileId(0),
            imports: HashMap::new(),
            keys: HashMap::new(),
            file_keys: HashMap::new(),
            stdlib_path: opts.stdlib_path(),
            diags: vec![],
        }
    }

    fn from_text(
        name: String,
        path: Option<PathBuf>,
        text: String,
        key: Option<ModuleKey>,
        opts: &LoadOptions,
    ) -> Workspace {
        let mut ws = Self::empty(opts);
        let id = ws.sources.add(SourceFile { name, path, text: Arc::from(text), origin: Origin::Root });
        ws.root = id;
        if let Some(k) = key {
            ws.keys.insert(k.clone(), id);
            ws.file_keys.insert(id, k);
        }
        if ws.parse(id, true) {
            let mut stack = vec![id];
            ws.resolve_uses(id, &mut stack);
        }
        ws
    }

    /// Parses a file; returns false (with diagnostics) if it has no usable document.
    fn parse(&mut self, id: FileId, is_root: bool) -> bool {
        let text = self.sources.get(id).text.clone();
        if let Some((at, message, help)) = source::guard(&text) {
            self.diags.push(
                Diagnostic::error(Code::TooComplex, message)
                    .with_label(Span::new(id, at, 1), "refused from here")
                    .with_help(help),
            );
            return false;
        }
        match text.parse::<KdlDocument>() {
            Ok(doc) => {
                if doc.nodes().is_empty() {
                    let name = &self.sources.get(id).name;
                    let msg = if is_root {
                        format!("`{name}` is empty")
                    } else {
                        format!("the imported module `{name}` is empty")
                    };
                    let help = if is_root {
                        "a scenario starts with `scenario \"name\" { ... }`; see docs/scenario-language.md"
                    } else {
                        "add workloads, phases or expectations to the module, or remove the `use`"
                    };
                    let d = if is_root {
                        Diagnostic::error(Code::EmptyFile, msg)
                    } else {
                        Diagnostic::warning(Code::EmptyFile, msg)
                    };
                    self.diags.push(d.with_help(help).in_file(id));
                }
                self.docs.insert(id, doc);
                true
            }
            Err(err) => {
                // The parser reports where it gave up, often the file's last brace; the
                // indentation usually shows where the text went wrong.
                let hint = source::likely_break(&text).map(|(at, header)| {
                    let len = text[at..].find(['\n', '\r']).unwrap_or(text.len() - at).max(1);
                    let span = Span::new(id, at, len);
                    if header {
                        (span, "indented as if inside a block, but none is open here", "a node header ending in `{` (such as `phase \"name\" {`) is probably missing above the marked line")
                    } else {
                        (span, "a block opened above is still open here", "a `}` is probably missing before the marked line")
                    }
                });
                for kd in &err.diagnostics {
                    let message = kd.message.clone().unwrap_or_else(|| "invalid KDL".into());
                    let label = kd.label.clone().unwrap_or_else(|| "here".into());
                    let help = kd.help.clone().unwrap_or_else(|| {
                        "see the KDL 2.0 syntax: nodes are `name arg key=value { children }`; strings in double quotes; booleans #true/#false".into()
                    });
                    let mut d = Diagnostic::error(Code::Syntax, message).with_label(Span::from_kdl(id, kd.span), label);
                    d = match hint {
                        Some((span, label, help)) => d.with_label(span, label).with_help(help),
                        None => d.with_help(help),
                    };
                    self.diags.push(d);
                }
                if err.diagnostics.is_empty() {
                    self.diags.push(Diagnostic::error(Code::Syntax, "the file is not valid KDL").in_file(id));
                }
                false
            }
        }
    }

    /// The `use` nodes of a file: top-level ones, and in the root, those inside `scenario`.
    fn use_nodes(&self, id: FileId) -> Vec<&KdlNode> {
        let Some(doc) = self.docs.get(&id) else { return vec![] };
        let mut out = vec![];
        for n in doc.nodes() {
            match n.name().value() {
                "use" => out.push(n),
                "scenario" if id == self.root => out.extend(children(n).iter().filter(|c| c.name().value() == "use")),
                _ => {}
            }
        }
        out
    }

    fn resolve_uses(&mut self, id: FileId, stack: &mut Vec<FileId>) {
        // (name span, the path argument and its span, count of extra entries)
        type UseNode = (Span, Option<(String, Span)>, usize);
        let uses: Vec<UseNode> = self
            .use_nodes(id)
            .into_iter()
            .map(|n| {
                let span = Span::from_kdl(id, n.span());
                let arg = n.entries().iter().find(|e| e.name().is_none()).and_then(|e| {
                    let s = e.value().as_string()?.to_string();
                    Some((s, Span::from_kdl(id, e.span())))
                });
                let extra = n.entries().len().saturating_sub(1) + n.children().map_or(0, |_| 1);
                (Span::from_kdl(id, n.name().span()).sub(0, span.len), arg, extra)
            })
            .collect();
        for (name_span, arg, extra) in uses {
            let Some((path, arg_span)) = arg else {
                self.diags.push(
                    Diagnostic::error(Code::MissingArgument, "`use` needs the path of a module")
                        .with_label(name_span, "no path")
                        .with_help("for example: use \"std/targets/rtx4090.kdl\" or use \"common.kdl\""),
                );
                continue;
            };
            if extra > 0 {
                self.diags.push(
                    Diagnostic::error(Code::UnexpectedArgument, "`use` takes only a path")
                        .with_label(name_span, "extra entries or children")
                        .with_help("write one `use \"path\"` per module"),
                );
            }
            if let Some(target) = self.import(id, &path, arg_span, stack) {
                self.imports.insert((id, name_span.start), target);
            }
        }
    }

    /// The places `path` may live, in search order, with the key each would have.
    fn candidates(&self, from: FileId, path: &str) -> Vec<(ModuleKey, String)> {
        let mut out = vec![];
        let (std_only, rel) = match path.strip_prefix("std/") {
            Some(rest) => (true, rest),
            None => (false, path),
        };
        if !std_only {
            match self.file_keys.get(&from) {
                Some(ModuleKey::Builtin(p)) => {
                    let dir = p.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    let joined = if dir.is_empty() { rel.to_string() } else { format!("{dir}/{rel}") };
                    out.push((ModuleKey::Builtin(normalise(&joined)), format!("<stdlib>/{}", normalise(&joined))));
                }
                _ => {
                    let base = self
                        .sources
                        .get(from)
                        .path
                        .as_ref()
                        .and_then(|p| p.parent().map(Path::to_path_buf))
                        .unwrap_or_default();
                    let p = base.join(rel);
                    out.push((ModuleKey::Disk(p.clone()), p.display().to_string()));
                }
            }
        }
        for dir in &self.stdlib_path {
            let p = dir.join(rel);
            out.push((ModuleKey::Disk(p.clone()), p.display().to_string()));
        }
        out.push((ModuleKey::Builtin(normalise(rel)), format!("<stdlib>/{}", normalise(rel))));
        out
    }

    fn import(&mut self, from: FileId, path: &str, at: Span, stack: &mut Vec<FileId>) -> Option<FileId> {
        let candidates = self.candidates(from, path);
        let found = candidates.iter().find_map(|(key, name)| match key {
            // Anything that exists is taken, so that a folder or a device named by `use` is
            // refused as such when read (not reported as missing).
            ModuleKey::Disk(p) if p.exists() => {
                Some((ModuleKey::Disk(std::fs::canonicalize(p).unwrap_or(p.clone())), name.clone(), Some(p.clone())))
            }
            ModuleKey::Builtin(rel) if BUILTIN_STDLIB.iter().any(|(n, _)| n == rel) => {
                Some((key.clone(), name.clone(), None))
            }
            _ => None,
        });
        let Some((key, name, disk)) = found else {
            let searched: Vec<String> = candidates.iter().map(|(_, n)| n.clone()).collect();
            let names: Vec<&str> = BUILTIN_STDLIB.iter().map(|(n, _)| *n).collect();
            let hint = suggest::closest(path.trim_start_matches("std/"), names.iter().copied())
                .map(|c| format!("did you mean `std/{c}`? "))
                .unwrap_or_default();
            self.diags.push(
                Diagnostic::error(Code::ImportNotFound, format!("cannot find module `{path}`"))
                    .with_label(at, "not found")
                    .with_help(format!("{hint}searched: {}", searched.join(", "))),
            );
            return None;
        };
        if let Some(&existing) = self.keys.get(&key) {
            if let Some(pos) = stack.iter().position(|f| *f == existing) {
                let chain: Vec<String> = stack[pos..]
                    .iter()
                    .chain([&existing])
                    .map(|f| format!("`{}`", self.sources.get(*f).name))
                    .collect();
                self.diags.push(
                    Diagnostic::error(Code::ImportCycle, format!("import cycle: {}", chain.join(" -> ")))
                        .with_label(at, "this import closes the cycle")
                        .with_help("move what both files need into a third module that neither imports back"),
                );
                return None;
            }
            return Some(existing); // already loaded through another path: imported once
        }
        let text = match &disk {
            Some(p) => match source::read_text(p) {
                Ok(t) => t,
                Err(e) => {
                    self.diags.push(source::read_error(e, Some(at)));
                    return None;
                }
            },
            None => match &key {
                ModuleKey::Builtin(rel) => {
                    BUILTIN_STDLIB.iter().find(|(n, _)| n == rel).map(|(_, t)| t.to_string()).unwrap_or_default()
                }
                ModuleKey::Disk(_) => unreachable!("disk modules have a path"),
            },
        };
        let id =
            self.sources.add(SourceFile { name, path: disk, text: Arc::from(text), origin: Origin::Import { by: at } });
        self.keys.insert(key.clone(), id);
        self.file_keys.insert(id, key);
        if self.parse(id, false) {
            stack.push(id);
            self.resolve_uses(id, stack);
            stack.pop();
        }
        Some(id)
    }

    /// The position of the scenario node among the root file's nodes, reporting a missing
    /// or repeated one.
    pub fn scenario_index(&mut self) -> Option<usize> {
        let root = self.root;
        let doc = self.docs.get(&root)?;
        let scenarios: Vec<&KdlNode> = doc.nodes().iter().filter(|n| n.name().value() == "scenario").collect();
        let mut diags = vec![];
        for n in doc.nodes() {
            let name = n.name().value();
            if name != "scenario" && name != "use" {
                let accepted = ["scenario", "use"];
                let body = decode::BODY_NODES.contains(&name);
                let help = if body {
                    format!("`{name}` belongs inside `scenario \"name\" {{ ... }}`")
                } else {
                    suggest::help_for(name, &accepted, "top-level nodes")
                };
                diags.push(
                    Diagnostic::error(Code::UnknownNode, format!("unexpected top-level node `{name}`"))
                        .with_label(Span::from_kdl(root, n.name().span()), "not allowed at the top level")
                        .with_help(help),
                );
            }
        }
        if scenarios.is_empty() && !doc.nodes().is_empty() {
            diags.push(
                Diagnostic::error(Code::MissingScenario, "no `scenario` node in this file")
                    .in_file(root)
                    .with_help("wrap the body in `scenario \"name\" { ... }`; a file of bare workloads and phases is a module for `use`"),
            );
        }
        for extra in scenarios.iter().skip(1) {
            diags.push(
                Diagnostic::error(Code::DuplicateScenario, "a file holds one scenario")
                    .with_label(Span::from_kdl(root, extra.name().span()), "second scenario")
                    .with_label(Span::from_kdl(root, scenarios[0].name().span()), "first scenario")
                    .with_help("move the second scenario to its own file"),
            );
        }
        self.diags.extend(diags);
        self.docs.get(&root)?.nodes().iter().position(|n| n.name().value() == "scenario")
    }

    /// The root file's node at `index` (see [`Workspace::scenario_index`]).
    pub fn root_node(&self, index: usize) -> &KdlNode {
        &self.docs[&self.root].nodes()[index]
    }

    /// The body items in order, each `use` replaced by the module's nodes (once per module).
    pub fn items<'a>(&'a self, scenario: &'a KdlNode) -> Vec<Item<'a>> {
        let mut out = vec![];
        let mut spliced = HashSet::new();
        let root_doc = &self.docs[&self.root];
        // Top-level `use` in the root file apply to the scenario too.
        for n in root_doc.nodes().iter().filter(|n| n.name().value() == "use") {
            self.splice(self.root, n, &mut out, &mut spliced);
        }
        for n in children(scenario) {
            self.splice(self.root, n, &mut out, &mut spliced);
        }
        out
    }

    fn splice<'a>(&'a self, file: FileId, node: &'a KdlNode, out: &mut Vec<Item<'a>>, spliced: &mut HashSet<FileId>) {
        if node.name().value() != "use" {
            out.push(Item { file, node });
            return;
        }
        let key = (file, node.name().span().offset());
        let Some(&target) = self.imports.get(&key) else { return };
        if !spliced.insert(target) {
            return;
        }
        if let Some(doc) = self.docs.get(&target) {
            for n in doc.nodes() {
                if n.name().value() == "description" && target != self.root {
                    continue; // a module's own description documents the module
                }
                self.splice(target, n, out, spliced);
            }
        }
    }
}

/// Resolves `.` and `..` in a stdlib-relative path.
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = vec![];
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Collects `param` declarations from all items, applies `--set` and builds the bindings.
pub fn bind_params(
    sources: &mut SourceMap,
    items: &[Item],
    sets: &[String],
    diags: &mut Vec<Diagnostic>,
) -> (Params, Vec<ParamDecl>) {
    let empty = Params::default();
    let mut decls: Vec<ParamDecl> = vec![];
    for item in items.iter().filter(|i| i.node.name().value() == "param") {
        let mut cx = Ctx::new(item.file, &empty);
        if let Some(d) = decode::decode_param(&mut cx, item.node) {
            if let Some(prev) = decls.iter().find(|p| p.name.value == d.name.value) {
                cx.push(
                    Diagnostic::error(Code::DuplicateName, format!("parameter `{}` is declared twice", d.name.value))
                        .with_label(d.name.span, "declared again here")
                        .with_label(prev.name.span, "first declared here")
                        .with_help("rename one of them"),
                );
            } else {
                decls.push(d);
            }
        }
        diags.extend(cx.diags);
    }
    let mut params = Params::default();
    for d in &decls {
        if let Some(v) = &d.default {
            params.bindings.insert(
                d.name.value.clone(),
                ParamBinding { value: v.value.clone(), value_span: v.span, decl_span: d.name.span },
            );
        }
    }
    if !sets.is_empty() {
        apply_sets(sources, sets, &decls, &mut params, diags);
    }
    for d in &decls {
        if !params.bindings.contains_key(&d.name.value) {
            diags.push(
                Diagnostic::error(Code::MissingOption, format!("parameter `{}` has no value", d.name.value))
                    .with_label(d.name.span, "no default")
                    .with_help(format!("give it a default (default=...) or pass --set {}=VALUE", d.name.value)),
            );
        }
    }
    (params, decls)
}

/// Reads a `--set` value the way KDL would: numbers, #true/#false, else a string.
fn set_value(text: &str) -> KdlValue {
    let t = text.trim();
    match t {
        "#true" | "true" => return KdlValue::Bool(true),
        "#false" | "false" => return KdlValue::Bool(false),
        _ => {}
    }
    if let Ok(i) = t.replace('_', "").parse::<i128>() {
        return KdlValue::Integer(i);
    }
    if let Ok(f) = t.parse::<f64>() {
        if f.is_finite() && t.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E' | '_')) {
            return KdlValue::Float(f);
        }
    }
    let unquoted = t.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(t);
    KdlValue::String(unquoted.to_string())
}

fn apply_sets(
    sources: &mut SourceMap,
    sets: &[String],
    decls: &[ParamDecl],
    params: &mut Params,
    diags: &mut Vec<Diagnostic>,
) {
    let text = sets.join("\n");
    let file = sources.add(SourceFile {
        name: "--set".into(),
        path: None,
        text: Arc::from(text.as_str()),
        origin: Origin::CommandLine,
    });
    let names: Vec<&str> = decls.iter().map(|d| d.name.value.as_str()).collect();
    let mut offset = 0;
    for set in sets {
        let whole = Span::new(file, offset, set.len());
        offset += set.len() + 1;
        let Some((name, value)) = set.split_once('=') else {
            diags.push(
                Diagnostic::error(Code::InvalidSet, format!("`--set {set}` has no value"))
                    .with_label(whole, "expected name=value")
                    .with_help("write --set name=value, e.g. --set duration=30s"),
            );
            continue;
        };
        let name_span = whole.sub(0, name.len());
        let value_span = whole.sub(name.len() + 1, value.len());
        let name = name.trim();
        let Some(decl) = decls.iter().find(|d| d.name.value == name) else {
            let help = match suggest::closest(name, names.iter().copied()) {
                Some(c) => format!("did you mean `{c}`?"),
                None if names.is_empty() => {
                    "this scenario declares no parameters; add `param \"name\" type=... default=...`".into()
                }
                None => suggest::list_help(&names, "parameters"),
            };
            diags.push(
                Diagnostic::error(Code::UnknownParameter, format!("`--set` names an unknown parameter `{name}`"))
                    .with_label(name_span, "not a parameter of this scenario")
                    .with_help(help),
            );
            continue;
        };
        let v = set_value(value);
        if let Err(e) = decode::check_param_value(decl.ty.value, &v) {
            diags.push(
                Diagnostic::error(Code::InvalidSet, format!("`--set {name}`: {}", e.message))
                    .with_label(value_span, format!("not a valid {}", decl.ty.value))
                    .with_label(decl.ty.span, "type declared here")
                    .with_help(e.help),
            );
            continue;
        }
        params.bindings.insert(name.to_string(), ParamBinding { value: v, value_span, decl_span: decl.name.span });
    }
}

/// The spanned name of every declared parameter (for the unused-parameter lint).
pub fn param_names(decls: &[ParamDecl]) -> Vec<Spanned<String>> {
    decls.iter().map(|d| d.name.clone()).collect()
}
