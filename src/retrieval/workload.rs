//! The retrieval workload: data and queries prepared once, an index built (timed, its memory
//! measured), exact ground truth for recall, an ef sweep, then one query per request.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::cache::{self, Cache, Fault, Key, Lookup};
use super::data::{self, Vectors};
use super::embed::{self, Embedder};
use super::exact::{self, Dist};
use super::index::{AnnIndex, Flat, HnswParams, HnswRs, IndexError, Usearch};
use crate::dsl::metrics::{MetricDef, RECALL};
use crate::dsl::model::{DataSource, DistanceMetric, Index, IndexBackend, IndexKind, Query, QuerySource, Retrieval};
use crate::random::Rng;
use crate::workload::facts::{Facts, Table};
use crate::workload::setup::{ready, Prepared, SetupContext, SetupError};
use crate::workload::{BoxFuture, Call, RequestError, Workload, YieldOnce};

/// One row of the ef sweep: every query once, one at a time.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EfRow {
    pub ef: usize,
    pub queries: usize,
    pub recall: f64,
    pub qps: f64,
    /// Latency percentiles of the sweep's queries, seconds.
    pub p50_s: f64,
    pub p95_s: f64,
    pub p99_s: f64,
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
    /// The vectors were generated, not read.
    pub synthetic_data: bool,
    pub queries: String,
    pub top_k: usize,
    /// The ef of requests in the phases.
    pub ef: usize,
    /// Seconds to build (on a cache hit: the build that made the cached entry).
    pub build_time_s: f64,
    /// Bytes the index holds (the backend's count; for hnsw_rs, process RSS after the build
    /// minus before).
    pub memory_bytes: u64,
    /// Bytes of the index on disk (in the cache).
    pub file_bytes: Option<u64>,
    pub from_cache: bool,
    /// Seconds to read the index from the cache.
    pub load_time_s: Option<f64>,
    pub ground_truth_s: Option<f64>,
    pub ground_truth_from_cache: bool,
    pub cache_dir: Option<String>,
    pub recall_definition: &'static str,
    /// The SIMD target of the backend's distance kernel, where it says (usearch).
    pub kernel: Option<String>,
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

/// What building a retrieval workload needs besides its node.
pub struct RetrievalOptions<'a> {
    pub seed: u64,
    pub base: &'a std::path::Path,
    /// The cache folder for indexes, ground truth and embeddings (None: caching is off).
    pub cache: Option<std::path::PathBuf>,
    /// A split run's shard: a query file keeps the queries whose index mod N is this shard's.
    pub partition: Option<crate::partition::Shard>,
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

/// Sizes of the files in a folder (what an index takes on disk).
fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// What the preparation steps share: the cache (if on), the warnings for the result, and the
/// progress line.
struct Ctx<'a> {
    cache: Option<&'a Cache>,
    warnings: &'a mut Vec<String>,
    progress: &'a mut dyn FnMut(String),
}

impl Ctx<'_> {
    /// A verified cache entry, read by `read`; `None` when caching is off, on a miss, or when
    /// the entry is damaged or cannot be read (then it is reported as `label` and removed, and
    /// the caller does the work again, as `redo` says).
    fn cached<T>(
        &mut self,
        what: &str,
        key: &str,
        label: &str,
        redo: &str,
        read: impl FnOnce(&Path, &serde_json::Value) -> Result<T, Fault>,
    ) -> Option<(T, PathBuf)> {
        match self.cache?.lookup(what, key) {
            Lookup::Hit { dir, facts } => match read(&dir, &facts) {
                Ok(v) => Some((v, dir)),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    self.warnings.push(format!("the cached {label} could not be used ({e}): {redo}"));
                    None
                }
            },
            Lookup::Corrupt(why) => {
                self.warnings.push(format!("the cached {label} was damaged ({why}): {redo}"));
                None
            }
            Lookup::Miss => None,
        }
    }

    /// Stores an entry when caching is on; a failure is a warning, not an error.
    fn store(
        &mut self,
        what: &str,
        key: &str,
        label: &str,
        facts: serde_json::Value,
        fill: impl FnOnce(&Path) -> Result<(), Fault>,
    ) -> Option<PathBuf> {
        match self.cache?.store(what, key, facts, fill) {
            Ok(dir) => Some(dir),
            Err(e) => {
                self.warnings.push(format!("could not cache the {label} ({e}); the run goes on without it"));
                None
            }
        }
    }

    /// A key, built only when caching is on (hashing gigabytes of data is not free).
    fn key(&self, build: impl FnOnce() -> Key) -> Option<String> {
        self.cache.map(|_| build().hex())
    }
}

/// Vectors of a text file, embedded with the model (cached by the text, the model's files and
/// this format), and how many texts it held.
fn embed_texts(path: &Path, embedder: &Embedder, cx: &mut Ctx) -> Result<(Vectors, usize), SetupError> {
    let texts = embed::read_texts(path)?;
    let n = texts.len();
    let key = cx.key(|| {
        let mut key = Key::new("embed");
        key.text("model", embedder.dir.display());
        for f in ["config.json", "model.safetensors", "tokenizer.json"] {
            let meta = std::fs::metadata(embedder.dir.join(f)).ok();
            key.text(f, format!("{:?}", meta.map(|m| (m.len(), m.modified().ok()))));
        }
        for t in &texts {
            key.part("t", t.as_bytes());
        }
        key
    });
    let label = format!("embeddings of {}", path.display());
    if let Some(key) = &key {
        let hit = cx.cached("embed", key, &label, "embedded again", |dir, _| {
            let v = data::read(&dir.join("vectors.npy")).map_err(|e| e.message)?;
            if v.len() == n {
                Ok(v)
            } else {
                Err(format!("it holds {} vectors, not {n}", v.len()).into())
            }
        });
        if let Some((v, _)) = hit {
            (cx.progress)(format!("{n} texts: embeddings from the cache"));
            return Ok((v, n));
        }
    }
    let t = Instant::now();
    (cx.progress)(format!("embedding {n} texts of {} with {}", path.display(), embedder.dir.display()));
    let mut last = Instant::now();
    let progress = &mut *cx.progress;
    let v = embedder
        .embed(&texts, &mut |done| {
            if last.elapsed().as_secs_f64() > 2.0 {
                last = Instant::now();
                progress(format!("embedded {done}/{n}"));
            }
        })
        .map_err(|e| SetupError::runtime(e.to_string(), None))?;
    (cx.progress)(format!("embedded {n} texts in {:.1} s", t.elapsed().as_secs_f64()));
    if let Some(key) = &key {
        let npy = v.to_npy();
        cx.store("embed", key, &label, serde_json::json!({}), |d| Ok(std::fs::write(d.join("vectors.npy"), &npy)?));
    }
    Ok((v, n))
}

/// An index from the cache, or built (and then cached), with what the result reports of it.
struct Built {
    index: Arc<dyn AnnIndex>,
    /// Seconds of the build (on a cache hit: of the build that made the entry).
    build_time_s: f64,
    memory_bytes: u64,
    file_bytes: Option<u64>,
    /// Seconds to read it from the cache; `None` when it was built in this run.
    load_time_s: Option<f64>,
}

/// An index from the cache (loaded and checked against the data), if there is one.
fn cached_index(
    backend: IndexBackend,
    base: &Vectors,
    dist: Dist,
    p: &HnswParams,
    what: &str,
    key: &str,
    cx: &mut Ctx,
) -> Option<Built> {
    let hit = cx.cached(what, key, &format!("{what} index"), "rebuilt", |dir, facts| {
        let before = rss();
        let t = Instant::now();
        let index: Arc<dyn AnnIndex> = match backend {
            IndexBackend::HnswRs => Arc::new(HnswRs::load(dir, dist)?),
            IndexBackend::Usearch => Arc::new(Usearch::load(dir, base.dim, dist, p)?),
        };
        if index.len() != base.len() {
            return Err(format!("it holds {} entries, not {}", index.len(), base.len()).into());
        }
        Ok(Built {
            load_time_s: Some(t.elapsed().as_secs_f64()),
            memory_bytes: index.memory_bytes().unwrap_or_else(|| rss().saturating_sub(before)),
            index,
            build_time_s: facts["build_time_s"].as_f64().unwrap_or(f64::NAN),
            file_bytes: Some(folder_bytes(dir)),
        })
    });
    if let Some((built, dir)) = hit {
        let load = built.load_time_s.unwrap_or_default();
        (cx.progress)(format!("index from the cache in {load:.1} s ({})", dir.display()));
        return Some(built);
    }
    None
}

fn hnsw_index(
    backend: IndexBackend,
    base: &Vectors,
    data_hash: &str,
    dist: Dist,
    p: &HnswParams,
    cx: &mut Ctx,
) -> Result<Built, SetupError> {
    let what = format!("{}-{}x{}", backend.as_str(), base.len(), base.dim);
    let key = cx.key(|| {
        let lib = match backend {
            IndexBackend::HnswRs => "hnsw_rs 0.3".to_string(),
            IndexBackend::Usearch => format!("usearch {}", usearch::version()),
        };
        let mut key = Key::new("index");
        key.text("data", data_hash)
            .text("backend", &lib)
            .text("dist", format!("{dist:?}"))
            .text("params", serde_json::to_string(p).unwrap());
        key
    });
    if let Some(built) = key.as_ref().and_then(|key| cached_index(backend, base, dist, p, &what, key, cx)) {
        return Ok(built);
    }
    (cx.progress)(format!(
        "building HNSW ({}, M {}, ef_construction {}{}) on {} cores",
        backend.as_str(),
        p.m,
        p.ef_construction,
        if backend == IndexBackend::Usearch { format!(", {} vectors", p.quantization) } else { String::new() },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    ));
    let before = rss();
    let t = Instant::now();
    type Save = Box<dyn Fn(&Path) -> Result<(), IndexError>>;
    let (index, save): (Arc<dyn AnnIndex>, Save) = match backend {
        IndexBackend::HnswRs => {
            let h = Arc::new(HnswRs::build(base, dist, p));
            (h.clone(), Box::new(move |d: &Path| h.save(d)))
        }
        IndexBackend::Usearch => {
            let u = Arc::new(Usearch::build(base, dist, p).map_err(|e| SetupError::runtime(e.to_string(), None))?);
            (u.clone(), Box::new(move |d: &Path| u.save(d)))
        }
    };
    let build_time_s = t.elapsed().as_secs_f64();
    let memory_bytes = index.memory_bytes().unwrap_or_else(|| rss().saturating_sub(before));
    (cx.progress)(format!("index built in {build_time_s:.1} s"));
    let mut file_bytes = None;
    if let Some(key) = &key {
        let t = Instant::now();
        let facts = serde_json::json!({ "build_time_s": build_time_s });
        if let Some(dir) = cx.store(&what, key, "index", facts, |d| Ok(save(d)?)) {
            file_bytes = Some(folder_bytes(&dir));
            (cx.progress)(format!("index cached in {:.1} s ({})", t.elapsed().as_secs_f64(), dir.display()));
        }
    }
    Ok(Built { index, build_time_s, memory_bytes, file_bytes, load_time_s: None })
}

/// Exact top-k of every query (cached by the data, the queries, k and the distance): the
/// answers, the seconds they took (on a hit: when they were computed) and whether they came
/// from the cache.
fn ground_truth(
    base: &Vectors,
    data_hash: &str,
    queries: &Vectors,
    k: usize,
    dist: Dist,
    cx: &mut Ctx,
) -> (Vec<Vec<u32>>, f64, bool) {
    let key = cx.key(|| {
        let mut key = Key::new("truth");
        key.text("data", data_hash)
            .text("queries", cache::vectors_hash(queries))
            .text("k", k)
            .text("dist", format!("{dist:?}"));
        key
    });
    if let Some(key) = &key {
        let hit = cx.cached("truth", key, "ground truth", "recomputed", |dir, facts| {
            let t = cache::read_truth(&dir.join("truth.bin"))?;
            if t.len() == queries.len() {
                Ok((t, facts["seconds"].as_f64().unwrap_or(f64::NAN)))
            } else {
                Err(format!("it holds {} queries, not {}", t.len(), queries.len()).into())
            }
        });
        if let Some(((truth, secs), _)) = hit {
            (cx.progress)("ground truth from the cache".into());
            return (truth, secs, true);
        }
    }
    let t = Instant::now();
    (cx.progress)(format!("exact top-{k} of {} queries over {} entries", queries.len(), base.len()));
    let truth = exact::ground_truth(base, queries, k, dist);
    let secs = t.elapsed().as_secs_f64();
    if let Some(key) = &key {
        cx.store("truth", key, "ground truth", serde_json::json!({ "seconds": secs }), |d| {
            Ok(cache::write_truth(&d.join("truth.bin"), &truth, k)?)
        });
    }
    (truth, secs, false)
}

/// Prepares a retrieval workload (the registry's entry point): builds or loads its data,
/// index and ground truth, caching them under the benchctl cache (or the workload's
/// `cache-dir`) unless caching is off.
pub fn prepare(r: &Retrieval, cx: &mut SetupContext) -> Result<Prepared, SetupError> {
    let span = r.index.as_ref().map(|i| i.kind.span);
    let cache = r.cache.then(|| match &r.cache_dir {
        Some(d) => cx.base.join(&d.value),
        None => cx.cache.join("retrieval"),
    });
    let setup = RetrievalOptions { seed: cx.seed, base: cx.base, cache, partition: cx.partition };
    let mut said = vec![];
    let prepared = RetrievalWorkload::load(r, &setup, &mut said, &mut |m| cx.progress(m));
    for m in said {
        cx.warn("setup", format!("workload `{}`: {m}", cx.workload));
    }
    ready(prepared, span)
}

/// The data vectors (generated, read, or a corpus embedded), how to describe them, the
/// synthetic clusters (for held-out queries) and the embedding model of a text corpus.
#[allow(clippy::type_complexity)]
fn base_data(
    r: &Retrieval,
    setup: &RetrievalOptions,
    n: usize,
    dim: usize,
    cx: &mut Ctx,
) -> Result<(Vectors, String, Option<(usize, f64)>, Option<Embedder>), SetupError> {
    let mut embedder = None;
    let (base, text, centres) = match r.data.as_ref().map(|d| &d.value) {
        None | Some(DataSource::Synthetic { .. }) => {
            let (clusters, spread) = match r.data.as_ref().map(|d| &d.value) {
                Some(DataSource::Synthetic { clusters, spread }) => {
                    (clusters.as_ref().map_or(1000, |c| c.value as usize), spread.as_ref().map_or(0.5, |s| s.value))
                }
                _ => (1000, 0.5),
            };
            (cx.progress)(format!("generating {n} x {dim} clustered vectors ({clusters} centres, spread {spread})"));
            (
                data::clustered(n, dim, clusters, spread, setup.seed, 0),
                format!("synthetic: {clusters} clusters, spread {spread}"),
                Some((clusters, spread)),
            )
        }
        Some(DataSource::File { path }) => {
            let p = setup.base.join(&path.value);
            (cx.progress)(format!("reading {}", p.display()));
            let mut v = data::read(&p)?;
            if v.dim != dim {
                return Err(SetupError::input(
                    format!("`{}` holds vectors of dimension {}, the index declares dim={dim}", p.display(), v.dim),
                    format!("set `dim={}` on the `index` node", v.dim),
                ));
            }
            v.data.truncate(n.min(v.len()) * dim);
            (v, format!("file: {}", p.display()), None)
        }
        Some(DataSource::Text { corpus, model }) => {
            // Found like any model path: beside the scenario, then in the model folder.
            let name = model.as_ref().map_or(embed::DEFAULT_MODEL, |m| m.value.as_str());
            let e = Embedder::load(&crate::workload::setup::resolve(setup.base, name))?;
            if e.dim != dim {
                return Err(SetupError::input(
                    format!("the embedding model gives vectors of dimension {}, the index declares dim={dim}", e.dim),
                    format!("set `dim={}` on the `index` node", e.dim),
                ));
            }
            let p = setup.base.join(&corpus.value);
            let (mut v, texts) = embed_texts(&p, &e, cx)?;
            v.data.truncate(n.min(v.len()) * dim);
            let text = format!("text: {} ({texts} texts, {})", p.display(), e.dir.display());
            embedder = Some(e);
            (v, text, None)
        }
    };
    if base.len() < n {
        let have = base.len();
        cx.warnings.push(format!("the data holds {have} entries, fewer than entries={n}: the index has {have}"));
    }
    Ok((base, text, centres, embedder))
}

/// The query vectors: held out of the synthetic clusters, read (or embedded) from a file,
/// or sampled from the data with Gaussian noise.
#[allow(clippy::too_many_arguments)]
fn query_vectors(
    q: Option<&Query>,
    source: QuerySource,
    centres: Option<(usize, f64)>,
    base: &Vectors,
    embedder: Option<&Embedder>,
    setup: &RetrievalOptions,
    count: usize,
    dim: usize,
    cx: &mut Ctx,
) -> Result<Vectors, SetupError> {
    Ok(match (source, centres) {
        (QuerySource::HeldOut, Some((clusters, spread))) => {
            data::clustered(count, dim, clusters, spread, setup.seed, 1)
        }
        (QuerySource::File, _) => {
            let f = q.and_then(|q| q.file.as_ref()).ok_or_else(|| {
                SetupError::input("`source=\"file\"` needs `file=` on the `query` node", "add file=\"queries.npy\"")
            })?;
            let path = setup.base.join(&f.value);
            let v = match embedder {
                // Texts are embedded with the corpus's model.
                Some(e) if !data::is_vector_file(&path) => embed_texts(&path, e, cx)?.0,
                _ => data::read(&path)?,
            };
            let v = match setup.partition {
                Some(s) => {
                    let rows: Vec<Vec<f32>> = (0..v.len()).map(|i| v.row(i).to_vec()).collect();
                    let rows = crate::prompts::shard_texts(rows, Some(s), &path)?;
                    Vectors { dim: v.dim, data: rows.concat() }
                }
                None => v,
            };
            if v.dim != dim {
                return Err(SetupError::input(
                    format!("the query file has dimension {}, the index {dim}", v.dim),
                    "use queries of the index's dimension",
                ));
            }
            v
        }
        // Sampled from the data with Gaussian noise (held-out queries of file and text data too).
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
    })
}

/// hnsw_rs's dot distance is 1 - <a, b> and asserts that it is not negative: it is for unit
/// vectors only.
fn unit_vectors_only(base: &Vectors) -> Result<(), SetupError> {
    // hnsw_rs's dot distance is 1 - <a, b> and asserts that it is not negative: it is
    // for unit vectors only.
    let off =
        (0..base.len()).map(|i| base.row(i).iter().map(|x| x * x).sum::<f32>().sqrt()).any(|n| (n - 1.0).abs() > 1e-3);
    if off {
        return Err(SetupError::input(
            "hnsw_rs's `dot` distance works on unit vectors only, and these data are not normalised",
            "use `metric=\"cosine\"` (normalises data and queries), or `backend=\"usearch\"` for inner products of any length",
        ));
    }
    Ok(())
}

/// The ef values to measure: the requests' ef first, then the sweep's, each once.
fn ef_values(q: Option<&Query>) -> Vec<usize> {
    let mut efs: Vec<usize> = vec![];
    for e in q.map(|q| q.ef.iter().map(|e| e.value as usize)).into_iter().flatten() {
        if !efs.contains(&e) {
            efs.push(e);
        }
    }
    efs
}

/// The index over the data: exact (flat), or HNSW with the scenario's parameters over the
/// backend's defaults (built, or loaded from the cache).
fn build_index(
    idx: &Index,
    backend: IndexBackend,
    base: &Arc<Vectors>,
    data_hash: &str,
    dist: Dist,
    cx: &mut Ctx,
) -> Result<(Built, Option<HnswParams>), SetupError> {
    Ok(match idx.kind.value {
        IndexKind::Flat => (
            Built {
                index: Arc::new(Flat { data: base.clone(), dist }),
                build_time_s: 0.0,
                memory_bytes: base.data.len() as u64 * 4,
                file_bytes: None,
                load_time_s: None,
            },
            None,
        ),
        IndexKind::Hnsw => {
            let d = HnswParams::defaults_for(backend);
            let p = HnswParams {
                m: idx.m.as_ref().map_or(d.m, |m| m.value as usize),
                ef_construction: idx.ef_construction.as_ref().map_or(d.ef_construction, |e| e.value as usize),
                max_layers: idx.max_layers.as_ref().map_or(d.max_layers, |e| e.value as usize),
                extend_candidates: idx.extend_candidates.as_ref().map_or(d.extend_candidates, |e| e.value),
                keep_pruned: idx.keep_pruned.as_ref().map_or(d.keep_pruned, |e| e.value),
                level_scale: idx.level_scale.as_ref().map_or(d.level_scale, |e| e.value),
                quantization: idx.quantization.as_ref().map_or(d.quantization, |e| e.value),
            };
            let b = hnsw_index(backend, base, data_hash, dist, &p, cx)?;
            (b, Some(p))
        }
    })
}

impl RetrievalWorkload {
    /// Builds the workload with the options the scenario resolves to; `warnings` receives
    /// what the result should say about the setup (a damaged cache entry, ...).
    pub fn load(
        r: &Retrieval,
        setup: &RetrievalOptions,
        warnings: &mut Vec<String>,
        progress: &mut dyn FnMut(String),
    ) -> Result<Self, SetupError> {
        let idx =
            r.index.as_ref().ok_or_else(|| SetupError::input("the workload has no `index`", "add an `index` node"))?;
        let backend = idx.backend.as_ref().map_or(IndexBackend::HnswRs, |b| b.value);
        let metric = idx.metric.as_ref().map_or(DistanceMetric::L2, |m| m.value);
        let dist = if metric == DistanceMetric::L2 { Dist::L2 } else { Dist::Dot };
        let (n, dim) = (idx.entries.value as usize, idx.dim.value as usize);
        let q = r.query.as_ref();
        let k = q.and_then(|q| q.top_k.as_ref()).map_or(10, |k| k.value as usize);
        let count = q.and_then(|q| q.count.as_ref()).map_or(1000, |c| c.value as usize);
        let cache = setup.cache.clone().map(Cache::new);
        let mut cx = Ctx { cache: cache.as_ref(), warnings, progress };
        // Data.
        let t = Instant::now();
        let (mut base, data_text, centres, embedder) = base_data(r, setup, n, dim, &mut cx)?;
        // Queries.
        let source = q.and_then(|q| q.source.as_ref()).map_or(QuerySource::HeldOut, |s| s.value);
        let mut queries = query_vectors(q, source, centres, &base, embedder.as_ref(), setup, count, dim, &mut cx)?;
        if metric == DistanceMetric::Cosine {
            base.normalize();
            queries.normalize();
        }
        if backend == IndexBackend::HnswRs && idx.kind.value == IndexKind::Hnsw && metric == DistanceMetric::Dot {
            unit_vectors_only(&base)?;
        }
        // Only cache keys use the data's hash.
        let data_hash = if cx.cache.is_some() { cache::vectors_hash(&base) } else { String::new() };
        let data_s = t.elapsed().as_secs_f64();
        (cx.progress)(format!("data ready in {data_s:.1} s: {} entries, {} queries", base.len(), queries.len()));
        let base = Arc::new(base);
        // Index.
        let (built, params) = build_index(idx, backend, &base, &data_hash, dist, &mut cx)?;
        // Ground truth.
        let (truth, ground_truth_s, truth_cached) = if r.ground_truth {
            let (t, s, c) = ground_truth(&base, &data_hash, &queries, k, dist, &mut cx);
            (Some(Arc::new(t)), Some(s), c)
        } else {
            (None, None, false)
        };
        let efs = ef_values(q);
        let ef = efs.first().copied().unwrap_or(64);
        let facts = IndexFacts {
            kind: idx.kind.value.as_str(),
            backend: if idx.kind.value == IndexKind::Flat { "exact" } else { backend.as_str() },
            metric: metric.as_str(),
            entries: base.len(),
            dim,
            params,
            data: data_text,
            synthetic_data: centres.is_some(),
            queries: format!("{} ({} queries)", source.as_str(), queries.len()),
            top_k: k,
            ef,
            build_time_s: built.build_time_s,
            memory_bytes: built.memory_bytes,
            file_bytes: built.file_bytes,
            from_cache: built.load_time_s.is_some(),
            load_time_s: built.load_time_s,
            ground_truth_s,
            ground_truth_from_cache: truth_cached,
            cache_dir: setup.cache.as_ref().map(|d| d.display().to_string()),
            recall_definition:
                "recall@k = |returned top-k ∩ exact top-k| / k, averaged over queries; exact top-k by brute force",
            kernel: built.index.kernel(),
        };
        let mut w =
            RetrievalWorkload { index: built.index, queries: Arc::new(queries), truth, k, ef, facts, sweep: vec![] };
        if efs.len() > 1 {
            w.sweep(&efs, cx.progress)?;
        }
        Ok(w)
    }

    /// The ef sweep: every query at each ef.
    fn sweep(&mut self, efs: &[usize], progress: &mut dyn FnMut(String)) -> Result<(), SetupError> {
        for &e in efs {
            progress(format!("ef sweep: ef {e}"));
            let row = self.sweep_row(e).map_err(|e| SetupError::runtime(e.to_string(), None))?;
            self.sweep.push(row);
        }
        Ok(())
    }

    /// Every query once, one at a time, at `ef`.
    pub fn sweep_row(&self, ef: usize) -> Result<EfRow, IndexError> {
        let mut lat = Vec::with_capacity(self.queries.len());
        let mut recall = 0.0;
        let start = Instant::now();
        for i in 0..self.queries.len() {
            let t = Instant::now();
            let got = self.index.search(self.queries.row(i), self.k, ef)?;
            lat.push(t.elapsed().as_secs_f64());
            if let Some(gt) = &self.truth {
                recall += exact::recall(&got, &gt[i]);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).saturating_sub(1).min(lat.len() - 1)];
        Ok(EfRow {
            ef,
            queries: lat.len(),
            recall: if self.truth.is_some() { recall / lat.len() as f64 } else { f64::NAN },
            qps: lat.len() as f64 / secs,
            p50_s: pct(0.50),
            p95_s: pct(0.95),
            p99_s: pct(0.99),
        })
    }
}

impl Workload for RetrievalWorkload {
    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<(), RequestError>> {
        let i = (call.rng.next_u64() % self.queries.len().max(1) as u64) as usize;
        Box::pin(async move {
            // Off the open-loop generator's thread; the search runs on the runtime's thread,
            // as a service's handler would.
            YieldOnce::default().await;
            let got = self
                .index
                .search(self.queries.row(i), self.k, self.ef)
                .map_err(|e| RequestError::backend("search", e.to_string()))?;
            if let Some(gt) = &self.truth {
                call.events.measure(0, exact::recall(&got, &gt[i]));
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

    fn measures(&self) -> &'static [&'static MetricDef] {
        // Recorded by `call` as measure 0, when ground truth exists.
        &[&RECALL]
    }

    fn facts(&self) -> Facts {
        let i = &self.facts;
        let mut f = Facts::default();
        if i.synthetic_data {
            f.synthetic = Some("generated clustered vectors: search speed and recall are real, the data is not".into());
        }
        f.row("index", format!("{} ({}), {} x {}, {}", i.kind, i.backend, i.entries, i.dim, i.metric))
            .row("data", i.data.clone())
            .row("queries", format!("{}, top-{}, ef {} in the phases", i.queries, i.top_k, i.ef));
        if let Some(p) = &i.params {
            let mut text = format!("M {}, ef_construction {}", p.m, p.ef_construction);
            if p.quantization != crate::dsl::model::Quantization::F32 {
                text += &format!(", vectors stored as {}", p.quantization);
            }
            if let Some(k) = &i.kernel {
                text += &format!(", distance kernel {k}");
            }
            f.row("build parameters", text);
        }
        let build = match i.load_time_s.filter(|_| i.from_cache) {
            Some(load) => format!("from the cache in {load:.1} s (built in {:.1} s)", i.build_time_s),
            None => format!("{:.1} s", i.build_time_s),
        };
        f.row("build", build);
        let on_disk = i.file_bytes.map(|b| format!(", {:.1} MB on disk", b as f64 / 1e6)).unwrap_or_default();
        f.row("memory", format!("{:.1} MB{on_disk}", i.memory_bytes as f64 / 1e6));
        if let Some(g) = i.ground_truth_s {
            let cached = if i.ground_truth_from_cache { " (from the cache)" } else { "" };
            f.row("ground truth", format!("exact search, {g:.1} s{cached}"));
        }
        f.row("recall", i.recall_definition);
        f.value("build_time", i.build_time_s).value("memory.index", i.memory_bytes as f64);
        if let Some(b) = i.file_bytes {
            f.value("index_size", b as f64);
        }
        if !self.sweep.is_empty() {
            f.tables.push(Table {
                title: "ef sweep".into(),
                note: "every query once at each ef, one at a time, before the phases".into(),
                columns: ["ef", "recall@k", "qps", "p50", "p95", "p99"].map(String::from).to_vec(),
                rows: self
                    .sweep
                    .iter()
                    .map(|r| {
                        vec![
                            r.ef.to_string(),
                            format!("{:.4}", r.recall),
                            format!("{:.0}", r.qps),
                            format!("{:.3} ms", r.p50_s * 1e3),
                            format!("{:.3} ms", r.p95_s * 1e3),
                            format!("{:.3} ms", r.p99_s * 1e3),
                        ]
                    })
                    .collect(),
            });
        }
        f
    }

    fn detail(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "index": self.facts, "ef_sweep": self.sweep }))
    }
}
