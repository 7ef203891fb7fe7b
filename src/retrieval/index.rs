//! Vector indexes behind one interface: exact search (`flat`), HNSW through hnsw_rs, and HNSW
//! through usearch (a C++ engine). Both HNSW backends can be written to a folder and read
//! back, which is what the on-disk cache stores.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hnsw_rs::api::AnnT;
use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::{DistDot, DistL2, Hnsw};

use super::data::Vectors;
use super::exact::{self, Dist};
use crate::dsl::model::{IndexBackend, Quantization};

/// Why an index operation failed, by operation: a failed load of a cached index means
/// "build it again", a failed search counts as one failed request.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexError {
    Build(String),
    Save(String),
    Load(String),
    Search(String),
}

impl std::fmt::Display for IndexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexError::Build(m) | IndexError::Save(m) | IndexError::Load(m) | IndexError::Search(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for IndexError {}

/// Build parameters of an HNSW index (both backends; `max_layers` to `level_scale` are
/// hnsw_rs's own, `quantization` usearch's).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct HnswParams {
    pub m: usize,
    pub ef_construction: usize,
    pub max_layers: usize,
    pub extend_candidates: bool,
    pub keep_pruned: bool,
    /// Multiplies hnsw_rs's level scale (1.0 = its default 1/ln(m)).
    pub level_scale: f64,
    /// The scalar type usearch stores vectors as. Left out of the serialised form (and so of
    /// cache keys) at its default f32, so indexes cached before it existed stay valid.
    #[serde(skip_serializing_if = "is_f32")]
    pub quantization: Quantization,
}

fn is_f32(q: &Quantization) -> bool {
    *q == Quantization::F32
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            max_layers: 16,
            extend_candidates: false,
            keep_pruned: false,
            level_scale: 1.0,
            quantization: Quantization::F32,
        }
    }
}

impl HnswParams {
    /// A backend's defaults: M 16 for usearch, M 32 for hnsw_rs. On 1M x 128 clustered
    /// vectors (ef_construction 200), hnsw_rs with M 32 reached recall@10 0.976 at ef 64
    /// (p95 0.90 ms) where M 16 reached 0.744 (and needed ef 256 for 0.959, p95 2.05 ms),
    /// in the same build time (634 s against 633 s) and about 5 % more memory.
    pub fn defaults_for(backend: IndexBackend) -> HnswParams {
        match backend {
            IndexBackend::Usearch => HnswParams::default(),
            IndexBackend::HnswRs => HnswParams { m: 32, ..HnswParams::default() },
        }
    }
}

pub trait AnnIndex: Send + Sync {
    /// Ids of the (approximately) nearest `k` entries to `q`; `ef` is the search breadth
    /// (ignored by exact search).
    fn search(&self, q: &[f32], k: usize, ef: usize) -> Result<Vec<u32>, IndexError>;
    /// Entries in the index.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes the index holds in memory (graph and stored vectors), where the backend says.
    fn memory_bytes(&self) -> Option<u64> {
        None
    }
    /// The distance kernel the backend picked for this machine, where it says (usearch names
    /// its SIMD target: "serial", "haswell", "skylake", ...).
    fn kernel(&self) -> Option<String> {
        None
    }
}

/// Exact search over all entries.
pub struct Flat {
    pub data: Arc<Vectors>,
    pub dist: Dist,
}

impl AnnIndex for Flat {
    fn search(&self, q: &[f32], k: usize, _ef: usize) -> Result<Vec<u32>, IndexError> {
        Ok(exact::topk(&self.data, q, k, self.dist))
    }
    fn len(&self) -> usize {
        self.data.len()
    }
    fn memory_bytes(&self) -> Option<u64> {
        Some(self.data.data.len() as u64 * 4)
    }
}

enum Graph {
    L2(Hnsw<'static, f32, DistL2>),
    Dot(Hnsw<'static, f32, DistDot>),
}

/// HNSW by hnsw_rs, built in parallel on all cores. Dot-product distances use its SIMD
/// `DistDot` (cosine runs on normalised vectors: hnsw_rs's own cosine has no SIMD path).
pub struct HnswRs {
    graph: Graph,
}

/// The file stem hnsw_rs writes under (`index.hnsw.graph`, `index.hnsw.data`).
pub const HNSW_RS_STEM: &str = "index";

impl HnswRs {
    pub fn build(data: &Vectors, dist: Dist, p: &HnswParams) -> HnswRs {
        let items: Vec<(&[f32], usize)> = (0..data.len()).map(|i| (data.row(i), i)).collect();
        fn make<D: hnsw_rs::prelude::Distance<f32> + Send + Sync>(
            items: &Vec<(&[f32], usize)>,
            n: usize,
            p: &HnswParams,
            d: D,
        ) -> Hnsw<'static, f32, D> {
            let mut h = Hnsw::new(p.m, n, p.max_layers, p.ef_construction, d);
            h.set_extend_candidates(p.extend_candidates);
            h.set_keeping_pruned(p.keep_pruned);
            if (p.level_scale - 1.0).abs() > f64::EPSILON {
                h.modify_level_scale(p.level_scale);
            }
            h.parallel_insert_slice(items);
            h.set_searching_mode(true);
            h
        }
        let graph = match dist {
            Dist::L2 => Graph::L2(make(&items, data.len(), p, DistL2 {})),
            Dist::Dot => Graph::Dot(make(&items, data.len(), p, DistDot {})),
        };
        HnswRs { graph }
    }

    /// Writes the graph and its vectors into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), IndexError> {
        let r = match &self.graph {
            Graph::L2(h) => h.file_dump(dir, HNSW_RS_STEM),
            Graph::Dot(h) => h.file_dump(dir, HNSW_RS_STEM),
        };
        match r {
            Ok(stem) if stem == HNSW_RS_STEM => Ok(()),
            Ok(stem) => {
                Err(IndexError::Save(format!("hnsw_rs wrote under another name ({stem}): the folder was not empty")))
            }
            Err(e) => Err(IndexError::Save(format!("hnsw_rs could not write the index: {e}"))),
        }
    }

    /// Reads an index written by [`HnswRs::save`]. hnsw_rs checks its files with assertions,
    /// so a damaged file is caught here as an error (the cache verifies checksums first).
    pub fn load(dir: &Path, dist: Dist) -> Result<HnswRs, IndexError> {
        let dir = dir.to_path_buf();
        let unreadable = |e: &dyn std::fmt::Display| IndexError::Load(format!("hnsw_rs could not read the index: {e}"));
        let loaded = std::panic::catch_unwind(move || -> Result<Graph, IndexError> {
            // The reloaded graph borrows its reader for its whole life; the reader is small
            // and one is made per index load, so it is kept for the life of the process.
            let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&dir, HNSW_RS_STEM)));
            let mut g = match dist {
                Dist::L2 => Graph::L2(io.load_hnsw::<f32, DistL2>().map_err(|e| unreadable(&e))?),
                Dist::Dot => Graph::Dot(io.load_hnsw::<f32, DistDot>().map_err(|e| unreadable(&e))?),
            };
            match &mut g {
                Graph::L2(h) => h.set_searching_mode(true),
                Graph::Dot(h) => h.set_searching_mode(true),
            }
            Ok(g)
        });
        match loaded {
            Ok(Ok(graph)) => Ok(HnswRs { graph }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(IndexError::Load("hnsw_rs rejected the index files (a consistency check failed)".into())),
        }
    }
}

impl AnnIndex for HnswRs {
    fn search(&self, q: &[f32], k: usize, ef: usize) -> Result<Vec<u32>, IndexError> {
        let r = match &self.graph {
            Graph::L2(h) => h.search(q, k, ef.max(k)),
            Graph::Dot(h) => h.search(q, k, ef.max(k)),
        };
        Ok(r.into_iter().map(|n| n.d_id as u32).collect())
    }
    fn len(&self) -> usize {
        match &self.graph {
            Graph::L2(h) => h.get_nb_point(),
            Graph::Dot(h) => h.get_nb_point(),
        }
    }
}

/// HNSW by usearch. Its search breadth is a property of the index, not of a call: it is
/// changed only when a call asks for another ef (the ef sweep runs one query at a time;
/// requests in the phases all use one ef).
pub struct Usearch {
    index: usearch::Index,
    ef: AtomicUsize,
}

/// The file name of a saved usearch index.
pub const USEARCH_FILE: &str = "index.usearch";

/// Concurrent searches usearch can serve at once. It keeps one search context per slot and
/// hands them out in turn, so every slot's buffers go cold between uses, and it fails a call
/// that finds none free. The build therefore reserves one slot per adding thread (with 64
/// slots, 200,000 x 128 took 80 s to build, with 2 slots 61 s), and searching reserves one
/// per core (requests search on the runtime's workers) plus two for the thread that runs the
/// ef sweep and a caller outside the runtime.
fn usearch_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) + 2
}

impl Usearch {
    fn options(dim: usize, dist: Dist, p: &HnswParams) -> usearch::IndexOptions {
        usearch::IndexOptions {
            dimensions: dim,
            metric: match dist {
                Dist::L2 => usearch::MetricKind::L2sq,
                Dist::Dot => usearch::MetricKind::IP,
            },
            quantization: match p.quantization {
                Quantization::F32 => usearch::ScalarKind::F32,
                Quantization::F16 => usearch::ScalarKind::F16,
                Quantization::Bf16 => usearch::ScalarKind::BF16,
                Quantization::I8 => usearch::ScalarKind::I8,
            },
            connectivity: p.m,
            expansion_add: p.ef_construction,
            expansion_search: 64,
            multi: false,
        }
    }

    /// Builds with one adding thread per core.
    pub fn build(data: &Vectors, dist: Dist, p: &HnswParams) -> Result<Usearch, IndexError> {
        fn failure(e: impl std::fmt::Display) -> IndexError {
            IndexError::Build(format!("usearch: {e}"))
        }
        let index = usearch::Index::new(&Self::options(data.dim, dist, p)).map_err(failure)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        index.reserve_capacity_and_threads(data.len(), threads).map_err(failure)?;
        let failed = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (index, failed) = (&index, &failed);
                s.spawn(move || {
                    let mut i = t;
                    while i < data.len() {
                        if let Err(e) = index.add(i as u64, data.row(i)) {
                            *failed.lock().unwrap() = Some(format!("usearch could not add entry {i}: {e}"));
                            return;
                        }
                        i += threads;
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().unwrap() {
            return Err(IndexError::Build(e));
        }
        index.reserve_capacity_and_threads(data.len(), usearch_slots()).map_err(failure)?;
        Ok(Usearch { index, ef: AtomicUsize::new(64) })
    }

    pub fn save(&self, dir: &Path) -> Result<(), IndexError> {
        let path = dir.join(USEARCH_FILE);
        self.index
            .save(&path.to_string_lossy())
            .map_err(|e| IndexError::Save(format!("usearch could not write the index: {e}")))
    }

    /// Reads a saved index into memory. (usearch can also map the file and search it in
    /// place, which starts faster, but then the first searches pay a page fault for every
    /// node they touch: p95 at 1M entries was 2.8 times hnswlib's until the pages were warm.)
    pub fn load(dir: &Path, dim: usize, dist: Dist, p: &HnswParams) -> Result<Usearch, IndexError> {
        let path = dir.join(USEARCH_FILE);
        let path = path.to_string_lossy();
        fn bad(e: impl std::fmt::Display) -> IndexError {
            IndexError::Load(format!("usearch could not read the index: {e}"))
        }
        let meta = usearch::Index::metadata(&path).map_err(bad)?;
        if meta.dimensions as usize != dim {
            return Err(IndexError::Load(format!("the saved index has dimension {}, not {dim}", meta.dimensions)));
        }
        let index = usearch::Index::new(&Self::options(dim, dist, p)).map_err(bad)?;
        index.load(&path).map_err(bad)?;
        index.reserve_capacity_and_threads(index.size(), usearch_slots()).map_err(bad)?;
        index.change_expansion_search(64);
        Ok(Usearch { index, ef: AtomicUsize::new(64) })
    }
}

impl AnnIndex for Usearch {
    fn search(&self, q: &[f32], k: usize, ef: usize) -> Result<Vec<u32>, IndexError> {
        let ef = ef.max(k);
        if self.ef.swap(ef, Ordering::Relaxed) != ef {
            self.index.change_expansion_search(ef);
        }
        let m = self.index.search(q, k).map_err(|e| IndexError::Search(format!("usearch search failed: {e}")))?;
        Ok(m.keys.into_iter().map(|k| k as u32).collect())
    }
    fn len(&self) -> usize {
        self.index.size()
    }
    fn memory_bytes(&self) -> Option<u64> {
        Some(self.index.memory_usage() as u64)
    }
    fn kernel(&self) -> Option<String> {
        Some(self.index.hardware_acceleration())
    }
}

#[cfg(test)]
mod tests {
    use super::super::data::clustered;
    use super::*;

    fn mean_recall(idx: &dyn AnnIndex, queries: &Vectors, gt: &[Vec<u32>], ef: usize) -> f64 {
        (0..queries.len()).map(|i| exact::recall(&idx.search(queries.row(i), 10, ef).unwrap(), &gt[i])).sum::<f64>()
            / queries.len() as f64
    }

    #[test]
    fn hnsw_recall_against_exact_search() {
        let data = clustered(5000, 32, 50, 0.3, 2, 0);
        let queries = clustered(100, 32, 50, 0.3, 2, 1);
        let gt = exact::ground_truth(&data, &queries, 10, Dist::L2);
        let idx = HnswRs::build(&data, Dist::L2, &HnswParams::default());
        let (lo, hi) = (mean_recall(&idx, &queries, &gt, 10), mean_recall(&idx, &queries, &gt, 200));
        assert!(hi >= 0.95, "recall@10 at ef 200: {hi}");
        assert!(hi >= lo, "recall fell with a wider search: {lo} -> {hi}");
        let flat = Flat { data: Arc::new(data), dist: Dist::L2 };
        assert_eq!(flat.search(queries.row(0), 10, 0).unwrap(), gt[0]);
    }

    /// Normalised clustered data and queries (spread 0.3) with their exact top-10 by dot product.
    fn cosine_set(n: usize, dim: usize, nq: usize, clusters: usize, seed: u64) -> (Vectors, Vectors, Vec<Vec<u32>>) {
        let mut data = clustered(n, dim, clusters, 0.3, seed, 0);
        let mut queries = clustered(nq, dim, clusters, 0.3, seed, 1);
        data.normalize();
        queries.normalize();
        let gt = exact::ground_truth(&data, &queries, 10, Dist::Dot);
        (data, queries, gt)
    }

    #[test]
    fn both_backends_save_and_reload_to_the_same_answers() {
        // hnsw_rs's dot distance asserts unit vectors (cosine), so the data are normalised.
        let (data, queries, gt) = cosine_set(3000, 24, 50, 30, 4);
        let p = HnswParams::default();
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();

        let h = HnswRs::build(&data, Dist::Dot, &p);
        h.save(&a).unwrap();
        let h2 = HnswRs::load(&a, Dist::Dot).unwrap();
        assert_eq!(h2.len(), data.len());
        let u = Usearch::build(&data, Dist::Dot, &p).unwrap();
        assert_eq!(u.len(), data.len());
        u.save(&b).unwrap();
        let u2 = Usearch::load(&b, 24, Dist::Dot, &p).unwrap();
        for i in 0..queries.len() {
            let q = queries.row(i);
            assert_eq!(h.search(q, 10, 100).unwrap(), h2.search(q, 10, 100).unwrap());
            assert_eq!(u.search(q, 10, 100).unwrap(), u2.search(q, 10, 100).unwrap());
        }
        assert!(mean_recall(&u2, &queries, &gt, 200) >= 0.95);
        assert!(mean_recall(&h2, &queries, &gt, 200) >= 0.95);
        // A damaged file is an error, not a panic.
        std::fs::write(a.join("index.hnsw.graph"), b"not a graph").unwrap();
        assert!(HnswRs::load(&a, Dist::Dot).is_err());
        std::fs::write(b.join(USEARCH_FILE), b"not an index").unwrap();
        assert!(Usearch::load(&b, 24, Dist::Dot, &p).is_err());
    }

    #[test]
    fn usearch_stores_vectors_at_the_chosen_precision() {
        // Cosine data (normalised, dot product): the only kind i8 keeps, since usearch scales
        // each vector to unit length before rounding it to i8.
        let (data, queries, gt) = cosine_set(5000, 32, 100, 50, 2);
        let build =
            |q| Usearch::build(&data, Dist::Dot, &HnswParams { quantization: q, ..HnswParams::default() }).unwrap();
        let (f32_, f16_, i8_) = (build(Quantization::F32), build(Quantization::F16), build(Quantization::I8));
        // The stored vectors shrink with the scalar type: 2 bytes a value from f32 to f16, 1
        // from f16 to i8 (the graphs differ by a few links: the build runs on several threads).
        let bytes = |u: &Usearch| u.index.serialized_length() as f64;
        let values = (data.len() * data.dim) as f64;
        let (saved16, saved8) = (bytes(&f32_) - bytes(&f16_), bytes(&f16_) - bytes(&i8_));
        assert!((saved16 / (2.0 * values) - 1.0).abs() < 0.01, "f32 -> f16 saved {saved16} bytes");
        assert!((saved8 / values - 1.0).abs() < 0.01, "f16 -> i8 saved {saved8} bytes");
        // Half precision loses almost nothing; i8 loses some, and the recall shows it.
        let (r32, r16, r8) = (
            mean_recall(&f32_, &queries, &gt, 200),
            mean_recall(&f16_, &queries, &gt, 200),
            mean_recall(&i8_, &queries, &gt, 200),
        );
        assert!(r32 >= 0.98 && r16 >= r32 - 0.01, "recall@10 at ef 200: f32 {r32}, f16 {r16}");
        assert!((0.7..r16).contains(&r8), "recall@10 at ef 200: i8 {r8}, f16 {r16}");
        assert!(f16_.kernel().is_some_and(|k| !k.is_empty()));
    }
}
