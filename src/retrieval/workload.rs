//! The retrieval workload: data and queries prepared once, an index built (timed, its memory
//! measured), exact ground truth for recall, an ef sweep, then one query per request.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::data::{self, Vectors};
use super::exact::{self, Dist};
use super::index::{AnnIndex, Flat, HnswParams, HnswRs};
use crate::dsl::model::{DataSource, IndexBackend, IndexKind, Metric, QuerySource, Retrieval};
use crate::engine::random::Rng;
use crate::engine::workload::{BoxFuture, Call, RequestError, Workload, YieldOnce};
use crate::infer::model::SetupError;

/// One row of the ef sweep: every query once, one at a time.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EfRow {
    pub ef: usize,
    pub queries: usize,
    pub recall: f64,
    pub qps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexFacts {
    pub kind: &'static str,
    pub backend: &'static str,
    pub metric: &'static str,
    pub entries: usize,
    pub dim: usize,
    pub params: Option<HnswParams>,
    pub data: String,
    pub queries: String,
    pub top_k: usize,
    /// The ef of requests in the phases.
    pub ef: usize,
    pub build_time_s: f64,
    /// Resident memory the build added (process RSS after - before).
    pub memory_bytes: u64,
    pub ground_truth_s: Option<f64>,
    pub recall_definition: &'static str,
}

pub struct RetrievalWorkload {
    index: Arc<dyn AnnIndex>,
    queries: Arc<Vectors>,
    truth: Option<Arc<Vec<Vec<u32>>>>,
    k: usize,
    ef: usize,
    facts: IndexFacts,
    sweep: Vec<EfRow>,
}

pub struct Setup<'a> {
    pub seed: u64,
    pub base: &'a std::path::Path,
}

fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

impl RetrievalWorkload {
    pub fn prepare(r: &Retrieval, setup: &Setup, progress: &mut dyn FnMut(String)) -> Result<Self, SetupError> {
        let idx =
            r.index.as_ref().ok_or_else(|| SetupError::input("the workload has no `index`", "add an `index` node"))?;
        if idx.backend.as_ref().is_some_and(|b| b.value == IndexBackend::Usearch) {
            return Err(SetupError::runtime(
                "the `usearch` backend is not in this build of benchctl yet",
                Some("use `backend=\"hnsw_rs\"` (the default) or `index \"flat\"`".into()),
            ));
        }
        let metric = idx.metric.as_ref().map_or(Metric::L2, |m| m.value);
        let dist = if metric == Metric::L2 { Dist::L2 } else { Dist::Dot };
        let (n, dim) = (idx.entries.value as usize, idx.dim.value as usize);
        let q = r.query.as_ref();
        let k = q.and_then(|q| q.top_k.as_ref()).map_or(10, |k| k.value as usize);
        let count = q.and_then(|q| q.count.as_ref()).map_or(1000, |c| c.value as usize);
        // Data.
        let t = Instant::now();
        let (mut base, data_text, centres) = match r.data.as_ref().map(|d| &d.value) {
            None | Some(DataSource::Synthetic { .. }) => {
                let (clusters, spread) = match r.data.as_ref().map(|d| &d.value) {
                    Some(DataSource::Synthetic { clusters, spread }) => {
                        (clusters.as_ref().map_or(1000, |c| c.value as usize), spread.as_ref().map_or(0.5, |s| s.value))
                    }
                    _ => (1000, 0.5),
                };
                progress(format!("generating {n} x {dim} clustered vectors ({clusters} centres, spread {spread})"));
                (
                    data::clustered(n, dim, clusters, spread, setup.seed, 0),
                    format!("synthetic: {clusters} clusters, spread {spread}"),
                    Some((clusters, spread)),
                )
            }
            Some(DataSource::File { path }) => {
                let p = setup.base.join(&path.value);
                progress(format!("reading {}", p.display()));
                let v = data::read(&p)?;
                if v.dim != dim {
                    return Err(SetupError::input(
                        format!("`{}` holds vectors of dimension {}, the index declares dim={dim}", p.display(), v.dim),
                        format!("set `dim={}` on the `index` node", v.dim),
                    ));
                }
                let mut v = v;
                v.data.truncate(n.min(v.len()) * dim);
                (v, format!("file: {}", p.display()), None)
            }
            Some(DataSource::Text { .. }) => {
                return Err(SetupError::runtime(
                    "text corpora embedded with a sentence model are not in this build of benchctl yet",
                    Some("embed the corpus yourself and give the vectors with `data file=\"vectors.npy\"`".into()),
                ))
            }
        };
        // Queries.
        let source = q.and_then(|q| q.source.as_ref()).map_or(QuerySource::HeldOut, |s| s.value);
        let mut queries = match (source, centres) {
            (QuerySource::HeldOut, Some((clusters, spread))) => {
                data::clustered(count, dim, clusters, spread, setup.seed, 1)
            }
            (QuerySource::File, _) => {
                let f = q.and_then(|q| q.file.as_ref()).ok_or_else(|| {
                    SetupError::input("`source=\"file\"` needs `file=` on the `query` node", "add file=\"queries.npy\"")
                })?;
                let v = data::read(&setup.base.join(&f.value))?;
                if v.dim != dim {
                    return Err(SetupError::input(
                        format!("the query file has dimension {}, the index {dim}", v.dim),
                        "use queries of the index's dimension",
                    ));
                }
                v
            }
            // Sampled from the data with Gaussian noise (held-out queries of a file dataset too).
            _ => {
                let noise = q.and_then(|q| q.noise.as_ref()).map_or(0.01, |x| x.value);
                let mut rng = Rng::new(setup.seed ^ 0x9e37);
                let mut out = Vec::with_capacity(count * dim);
                for _ in 0..count {
                    let i = (rng.next_u64() % base.len().max(1) as u64) as usize;
                    out.extend(base.row(i).iter().map(|x| x + (noise * rng.normal()) as f32));
                }
                Vectors { dim, data: out }
            }
        };
        if metric == Metric::Cosine {
            base.normalize();
            queries.normalize();
        }
        let data_s = t.elapsed().as_secs_f64();
        progress(format!("data ready in {data_s:.1} s: {} entries, {} queries", base.len(), queries.len()));
        let base = Arc::new(base);
        // Index.
        let before = rss();
        let t = Instant::now();
        let (index, params): (Arc<dyn AnnIndex>, Option<HnswParams>) = match idx.kind.value {
            IndexKind::Flat => (Arc::new(Flat { data: base.clone(), dist }), None),
            IndexKind::Hnsw => {
                let d = HnswParams::default();
                let p = HnswParams {
                    m: idx.m.as_ref().map_or(d.m, |m| m.value as usize),
                    ef_construction: idx.ef_construction.as_ref().map_or(d.ef_construction, |e| e.value as usize),
                    max_layers: idx.max_layers.as_ref().map_or(d.max_layers, |e| e.value as usize),
                    extend_candidates: idx.extend_candidates.as_ref().map_or(d.extend_candidates, |e| e.value),
                    keep_pruned: idx.keep_pruned.as_ref().map_or(d.keep_pruned, |e| e.value),
                    level_scale: idx.level_scale.as_ref().map_or(d.level_scale, |e| e.value),
                };
                progress(format!(
                    "building HNSW (hnsw_rs, M {}, ef_construction {}) on all cores",
                    p.m, p.ef_construction
                ));
                (Arc::new(HnswRs::build(&base, dist, &p)), Some(p))
            }
        };
        let build_time_s = t.elapsed().as_secs_f64();
        let memory_bytes = rss().saturating_sub(before);
        progress(format!("index built in {build_time_s:.1} s"));
        // Ground truth.
        let (truth, ground_truth_s) = if r.ground_truth {
            let t = Instant::now();
            progress(format!("exact top-{k} of {} queries", queries.len()));
            (Some(Arc::new(exact::ground_truth(&base, &queries, k, dist))), Some(t.elapsed().as_secs_f64()))
        } else {
            (None, None)
        };
        let efs: Vec<usize> = q.map(|q| q.ef.iter().map(|e| e.value as usize).collect()).unwrap_or_default();
        let ef = efs.first().copied().unwrap_or(64);
        let facts = IndexFacts {
            kind: idx.kind.value.as_str(),
            backend: if idx.kind.value == IndexKind::Flat { "exact" } else { "hnsw_rs" },
            metric: metric.as_str(),
            entries: base.len(),
            dim,
            params,
            data: data_text,
            queries: format!("{} ({} queries)", source.as_str(), queries.len()),
            top_k: k,
            ef,
            build_time_s,
            memory_bytes,
            ground_truth_s,
            recall_definition:
                "recall@k = |returned top-k ∩ exact top-k| / k, averaged over queries; exact top-k by brute force",
        };
        let mut w = RetrievalWorkload { index, queries: Arc::new(queries), truth, k, ef, facts, sweep: vec![] };
        if efs.len() > 1 {
            for &e in &efs {
                progress(format!("ef sweep: ef {e}"));
                w.sweep.push(w.sweep_row(e));
            }
        }
        Ok(w)
    }

    /// Every query once, one at a time, at `ef`.
    fn sweep_row(&self, ef: usize) -> EfRow {
        let mut lat = Vec::with_capacity(self.queries.len());
        let mut recall = 0.0;
        let start = Instant::now();
        for i in 0..self.queries.len() {
            let t = Instant::now();
            let got = self.index.search(self.queries.row(i), self.k, ef);
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            if let Some(gt) = &self.truth {
                recall += exact::recall(&got, &gt[i]);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).saturating_sub(1).min(lat.len() - 1)];
        EfRow {
            ef,
            queries: lat.len(),
            recall: if self.truth.is_some() { recall / lat.len() as f64 } else { f64::NAN },
            qps: lat.len() as f64 / secs,
            p50_ms: pct(0.50),
            p95_ms: pct(0.95),
            p99_ms: pct(0.99),
        }
    }
}

impl Workload for RetrievalWorkload {
    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<(), RequestError>> {
        let i = (call.rng.next_u64() % self.queries.len().max(1) as u64) as usize;
        Box::pin(async move {
            // Off the open-loop generator's thread; the search runs on the runtime's thread,
            // as a service's handler would.
            YieldOnce::default().await;
            let got = self.index.search(self.queries.row(i), self.k, self.ef);
            if let Some(gt) = &self.truth {
                call.events.recall = Some(exact::recall(&got, &gt[i]));
            }
            Ok(())
        })
    }

    fn streams_tokens(&self) -> bool {
        false
    }

    fn token_source(&self) -> &'static str {
        "none (vector queries)"
    }

    fn facts(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "index": self.facts, "ef_sweep": self.sweep }))
    }
}
