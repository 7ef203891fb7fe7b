//! The `retrieval` kind's language side: vector search with HNSW (hnsw_rs, usearch) or
//! exact search, recall against ground truth. Its backend is `src/retrieval/`.

use kdl::KdlNode;

use super::{missing, Estimating, KindSpec, SetupEstimate};
use crate::dsl::decode::workload::read;
use crate::dsl::diag::{Code, Diagnostic};
use crate::dsl::model::*;
use crate::dsl::reader::{Ctx, NodeReader};
use crate::dsl::span::Spanned;
use crate::keyword_enum;

keyword_enum!(IndexKind, "index kind" { Hnsw = "hnsw", Flat = "flat" });
keyword_enum!(IndexBackend, "index backend" { HnswRs = "hnsw_rs", Usearch = "usearch" });
keyword_enum!(Quantization, "scalar type" { F32 = "f32", F16 = "f16", Bf16 = "bf16", I8 = "i8" });
keyword_enum!(DistanceMetric, "distance metric" { L2 = "l2", Cosine = "cosine", Dot = "dot" });
keyword_enum!(QuerySource, "query source" { HeldOut = "held-out", File = "file", Sample = "sample" });

#[derive(Debug)]
pub struct Index {
    pub kind: Spanned<IndexKind>,
    pub backend: Option<Spanned<IndexBackend>>,
    pub entries: Spanned<u64>,
    pub dim: Spanned<u32>,
    pub metric: Option<Spanned<DistanceMetric>>,
    pub m: Option<Spanned<u32>>,
    pub ef_construction: Option<Spanned<u32>>,
    pub max_layers: Option<Spanned<u32>>,
    pub extend_candidates: Option<Spanned<bool>>,
    pub keep_pruned: Option<Spanned<bool>>,
    pub level_scale: Option<Spanned<f64>>,
    /// The scalar type usearch stores vectors as (usearch only).
    pub quantization: Option<Spanned<Quantization>>,
}

#[derive(Debug)]
pub enum DataSource {
    Synthetic { clusters: Option<Spanned<u32>>, spread: Option<Spanned<f64>> },
    File { path: Spanned<String> },
    Text { corpus: Spanned<String>, model: Option<Spanned<String>> },
}

#[derive(Debug)]
pub struct Query {
    pub top_k: Option<Spanned<u32>>,
    pub ef: Vec<Spanned<u32>>,
    pub count: Option<Spanned<u64>>,
    pub source: Option<Spanned<QuerySource>>,
    pub file: Option<Spanned<String>>,
    pub noise: Option<Spanned<f64>>,
}

#[derive(Debug)]
pub struct Retrieval {
    pub index: Option<Index>,
    pub data: Option<Spanned<DataSource>>,
    pub query: Option<Query>,
    pub ground_truth: bool,
    pub cache_dir: Option<Spanned<String>>,
    pub cache: bool,
}

pub const RETRIEVAL_NODES: &[&str] = &["index", "data", "query", "ef-sweep", "ground-truth", "cache"];

pub(in crate::dsl) fn decode(cx: &mut Ctx, nodes: &[KdlNode]) -> Retrieval {
    let mut ret = Retrieval { index: None, data: None, query: None, ground_truth: true, cache_dir: None, cache: true };
    let mut sweep: Vec<Spanned<u32>> = vec![];
    for node in nodes {
        match node.name().value() {
            "index" => ret.index = read(cx, node, index),
            "data" => ret.data = read(cx, node, data),
            "query" => {
                ret.query = Some(read(cx, node, |cx, r| Query {
                    top_k: r.prop(cx, "top-k"),
                    ef: r.prop(cx, "ef").into_iter().collect(),
                    count: r.prop(cx, "count"),
                    source: r.prop(cx, "source"),
                    file: r.prop(cx, "file"),
                    noise: r.prop(cx, "noise"),
                }))
            }
            "ef-sweep" => sweep = read(cx, node, |cx, r| r.rest_args(cx, 0)),
            "ground-truth" => read(cx, node, |cx, r| {
                if let Some(b) = r.prop::<bool>(cx, "enabled") {
                    ret.ground_truth = b.value;
                }
            }),
            "cache" => read(cx, node, |cx, r| {
                ret.cache_dir = r.prop(cx, "dir");
                if let Some(b) = r.prop::<bool>(cx, "enabled") {
                    ret.cache = b.value;
                }
            }),
            _ => cx.unknown_node(node, "a retrieval workload", RETRIEVAL_NODES),
        }
    }
    if !sweep.is_empty() {
        ef_sweep_lints(cx, ret.query.as_ref().and_then(|q| q.ef.first()), &sweep);
        let q = ret.query.get_or_insert(Query {
            top_k: None,
            ef: vec![],
            count: None,
            source: None,
            file: None,
            noise: None,
        });
        q.ef.extend(sweep);
    }
    ret
}

/// The requests' ef against the sweep: a value the sweep repeats is measured once, and
/// requests at an ef the sweep does not list are measured first, before the listed values.
fn ef_sweep_lints(cx: &mut Ctx, query_ef: Option<&Spanned<u32>>, sweep: &[Spanned<u32>]) {
    for (i, e) in sweep.iter().enumerate() {
        if let Some(first) = sweep[..i].iter().find(|x| x.value == e.value) {
            let d = Diagnostic::warning(Code::EfSweep, format!("ef {} is listed twice in the sweep", e.value))
                .with_label(e.span, "again here")
                .with_label(first.span, "first here")
                .with_help("each ef is measured once; remove the repeat");
            cx.push(d);
        }
    }
    let Some(q) = query_ef else { return };
    let mut listed: Vec<String> = vec![];
    for e in sweep.iter().map(|e| e.value.to_string()) {
        if !listed.contains(&e) {
            listed.push(e);
        }
    }
    if sweep.iter().any(|e| e.value == q.value) {
        return;
    }
    let d = Diagnostic::warning(
        Code::EfSweep,
        format!("the requests run at ef {}, which the sweep ({}) does not list", q.value, listed.join(", ")),
    )
    .with_label(q.span, "the phases' ef")
    .with_label(sweep[0].span, "the sweep")
    .with_help(format!(
        "the sweep measures ef {} first, then its own values; add {} to `ef-sweep`, or drop `ef=` from `query` to run the phases at the sweep's first value ({})",
        q.value, q.value, sweep[0].value
    ));
    cx.push(d);
}

fn index(cx: &mut Ctx, r: &mut NodeReader) -> Option<Index> {
    let kind = r.req_arg(cx, 0, "an index kind", "index \"hnsw\" entries=1_000_000 dim=384");
    let idx = Index {
        kind: kind?,
        backend: r.prop(cx, "backend"),
        entries: r.req_prop(cx, "entries", "entries=1_000_000")?,
        dim: r.req_prop(cx, "dim", "dim=384")?,
        metric: r.prop(cx, "metric"),
        m: r.prop(cx, "m"),
        ef_construction: r.prop(cx, "ef-construction"),
        max_layers: r.prop(cx, "max-layers"),
        extend_candidates: r.prop(cx, "extend-candidates"),
        keep_pruned: r.prop(cx, "keep-pruned"),
        level_scale: r.prop(cx, "level-scale"),
        quantization: r.prop(cx, "quantization"),
    };
    let usearch = idx.backend.as_ref().is_some_and(|b| b.value == IndexBackend::Usearch);
    if let Some(q) = idx.quantization.as_ref().filter(|_| !usearch) {
        cx.error(
            Code::ConflictingOptions,
            q.span,
            "`quantization` applies only to the usearch backend (hnsw_rs and flat indexes store f32)",
            "needs backend=\"usearch\"",
            "add backend=\"usearch\" to this index, or remove `quantization`",
        );
    }
    let cosine = idx.metric.as_ref().is_some_and(|m| m.value == DistanceMetric::Cosine);
    if let Some(q) = idx.quantization.as_ref().filter(|q| usearch && q.value == Quantization::I8 && !cosine) {
        let mut d = Diagnostic::error(
            Code::ConflictingOptions,
            "usearch's `i8` keeps only each vector's direction, so only cosine distances survive it",
        );
        d = match &idx.metric {
            Some(m) => d
                .with_label(q.span, "scales every vector to unit length")
                .with_label(m.span, "distances on the vectors as given"),
            None => d.with_label(q.span, "scales every vector to unit length; the metric is l2 (the default)"),
        };
        cx.push(d.with_help("use metric=\"cosine\", or quantization=\"f16\" or \"bf16\" to keep magnitudes"));
    }
    if usearch {
        let hnsw_rs_only = [
            idx.max_layers.as_ref().map(|x| (x.span, "max-layers")),
            idx.extend_candidates.as_ref().map(|x| (x.span, "extend-candidates")),
            idx.keep_pruned.as_ref().map(|x| (x.span, "keep-pruned")),
            idx.level_scale.as_ref().map(|x| (x.span, "level-scale")),
        ];
        for (span, name) in hnsw_rs_only.into_iter().flatten() {
            cx.push(
                Diagnostic::warning(
                    Code::ConflictingOptions,
                    format!("`{name}` is an hnsw_rs build option; usearch ignores it"),
                )
                .with_label(span, "no effect with backend=\"usearch\"")
                .with_help(format!("remove `{name}`, or use backend=\"hnsw_rs\"")),
            );
        }
    }
    if idx.entries.value == 0 {
        cx.error(Code::OutOfRange, idx.entries.span, "`entries` must be at least 1", "zero", "use a positive number");
    }
    if idx.dim.value == 0 {
        cx.error(Code::OutOfRange, idx.dim.span, "`dim` must be at least 1", "zero", "use a positive number");
    }
    Some(idx)
}

/// `data synthetic clusters=1000` | `data file="vectors.npy"` | `data text="corpus.txt" model="..."`
fn data(cx: &mut Ctx, r: &mut NodeReader) -> Option<Spanned<DataSource>> {
    let file = r.prop::<String>(cx, "file");
    let text = r.prop::<String>(cx, "text");
    let model = r.prop(cx, "model");
    let clusters = r.prop(cx, "clusters");
    let spread = r.prop(cx, "spread");
    let kw = r.arg::<String>(cx, 0);
    if let Some(k) = &kw {
        if k.value != "synthetic" {
            cx.error(
                Code::UnknownValue,
                k.span,
                format!("`{}` is not a data source", k.value),
                "unknown",
                "write `data synthetic ...`, `data file=\"...\"` or `data text=\"...\"`",
            );
        }
    }
    let span = r.name_span(cx);
    match (file, text) {
        (Some(f), Some(t)) => {
            cx.conflict(
                (f.span, "vectors from a file"),
                (t.span, "vectors embedded from text"),
                "vectors come from one source",
                "keep file= or text=",
            );
            None
        }
        (Some(path), None) => Some(Spanned::new(DataSource::File { path }, span)),
        (None, Some(corpus)) => Some(Spanned::new(DataSource::Text { corpus, model }, span)),
        (None, None) => Some(Spanned::new(DataSource::Synthetic { clusters, spread }, span)),
    }
}

/// Seconds per vector and per ef_construction step to insert into HNSW, at dimension 128 on
/// 2 cores: 1M vectors took 251 s (usearch) and 553 s (hnsw_rs) at ef_construction 200.
const USEARCH_INSERT_S: f64 = 251.0 / 1e6 / 200.0;
const HNSW_RS_INSERT_S: f64 = 553.0 / 1e6 / 200.0;
/// Seconds per (query x vector x dimension) of exact search on 2 cores (release build).
const EXACT_S: f64 = 0.25e-9;

impl KindSpec for Retrieval {
    fn check(&self, w: &Workload, diags: &mut Vec<Diagnostic>) {
        if self.index.is_none() {
            missing(diags, w, "an index", "index \"hnsw\" entries=1_000_000 dim=384")
        }
    }

    fn summary(&self) -> String {
        let Some(ix) = &self.index else { return "no index".into() };
        let backend = ix.backend.as_ref().map(|b| b.value.as_str()).unwrap_or("hnsw_rs");
        let metric = ix.metric.as_ref().map(|m| m.value.as_str()).unwrap_or("l2");
        let mut s = format!("{} ({backend}) {} x {} {metric}", ix.kind.value, ix.entries.value, ix.dim.value);
        if let Some(q) = &self.query {
            let k = q.top_k.as_ref().map(|k| k.value).unwrap_or(10);
            s += &format!("; top-{k}");
            if !q.ef.is_empty() {
                s += &format!(", ef {}", q.ef.iter().map(|e| e.value.to_string()).collect::<Vec<_>>().join(" "));
            }
        }
        s
    }

    /// A search's time depends on the index built at setup: not known before.
    fn service_time(&self, _: &Estimating) -> Option<(f64, String)> {
        None
    }

    fn tokens_per_request(&self) -> Option<f64> {
        None
    }

    /// The index build, the ground truth and the ef sweep.
    fn setup_steps(&self, est: &Estimating) -> Vec<SetupEstimate> {
        let Some(idx) = &self.index else { return vec![] };
        let step = |what, seconds, note| SetupEstimate { what, seconds, note };
        let mut out = vec![];
        let (n, dim) = (idx.entries.value as f64, idx.dim.value as f64);
        let queries = self.query.as_ref().and_then(|q| q.count.as_ref()).map_or(1000, |c| c.value) as f64;
        let cache = if self.cache { "; 0 s on a cache hit" } else { "" };
        if idx.kind.value == IndexKind::Hnsw {
            let efc = idx.ef_construction.as_ref().map_or(200, |e| e.value) as f64;
            let usearch = idx.backend.as_ref().is_some_and(|b| b.value == IndexBackend::Usearch);
            let per = if usearch { USEARCH_INSERT_S } else { HNSW_RS_INSERT_S };
            out.push(step(
                "index build",
                Some(n * efc * per * (dim / 128.0) * est.scale),
                format!("{n:.0} vectors at ef_construction {efc:.0}{cache}"),
            ));
        }
        if self.ground_truth {
            out.push(step(
                "ground truth",
                Some(queries * n * dim * EXACT_S * est.scale),
                format!("exact search of {queries:.0} queries{cache}"),
            ));
        }
        let efs = self.query.as_ref().map_or(0, |q| q.ef.len());
        if efs > 1 && idx.kind.value == IndexKind::Hnsw {
            // A query costs about as much as inserting a vector at ef = ef_construction.
            let sum: f64 = self.query.as_ref().map_or(0.0, |q| q.ef.iter().map(|e| e.value as f64).sum());
            out.push(step(
                "ef sweep",
                Some(queries * sum * USEARCH_INSERT_S * (dim / 128.0)),
                format!("{queries:.0} queries at each of {efs} ef values"),
            ));
        }
        out
    }

    /// A search keeps one core busy per concurrent query.
    fn cpu_demand(&self, workers: usize, cores: usize, _: bool) -> Option<usize> {
        Some(workers.clamp(1, cores))
    }

    /// No model server to scrape.
    fn server_metrics(&self) -> Option<super::ServerMetrics> {
        None
    }
}
