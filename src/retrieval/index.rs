//! Vector indexes behind one interface: exact search (`flat`) and HNSW through hnsw_rs.

use std::sync::Arc;

use hnsw_rs::prelude::{DistDot, DistL2, Hnsw};

use super::data::Vectors;
use super::exact::{self, Dist};

/// Build parameters of an HNSW index.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct HnswParams {
    pub m: usize,
    pub ef_construction: usize,
    pub max_layers: usize,
    pub extend_candidates: bool,
    pub keep_pruned: bool,
    /// Multiplies hnsw_rs's level scale (1.0 = its default 1/ln(m)).
    pub level_scale: f64,
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
        }
    }
}

pub trait AnnIndex: Send + Sync {
    /// Ids of the (approximately) nearest `k` entries to `q`; `ef` is the search breadth
    /// (ignored by exact search).
    fn search(&self, q: &[f32], k: usize, ef: usize) -> Vec<u32>;
}

/// Exact search over all entries.
pub struct Flat {
    pub data: Arc<Vectors>,
    pub dist: Dist,
}

impl AnnIndex for Flat {
    fn search(&self, q: &[f32], k: usize, _ef: usize) -> Vec<u32> {
        exact::topk(&self.data, q, k, self.dist)
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
}

impl AnnIndex for HnswRs {
    fn search(&self, q: &[f32], k: usize, ef: usize) -> Vec<u32> {
        let r = match &self.graph {
            Graph::L2(h) => h.search(q, k, ef.max(k)),
            Graph::Dot(h) => h.search(q, k, ef.max(k)),
        };
        r.into_iter().map(|n| n.d_id as u32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::data::clustered;
    use super::*;

    #[test]
    fn hnsw_recall_against_exact_search() {
        let data = clustered(5000, 32, 50, 0.3, 2, 0);
        let queries = clustered(100, 32, 50, 0.3, 2, 1);
        let gt = exact::ground_truth(&data, &queries, 10, Dist::L2);
        let idx = HnswRs::build(&data, Dist::L2, &HnswParams::default());
        let mean = |ef| {
            (0..queries.len()).map(|i| exact::recall(&idx.search(queries.row(i), 10, ef), &gt[i])).sum::<f64>()
                / queries.len() as f64
        };
        let (lo, hi) = (mean(10), mean(200));
        assert!(hi >= 0.95, "recall@10 at ef 200: {hi}");
        assert!(hi >= lo, "recall fell with a wider search: {lo} -> {hi}");
        let flat = Flat { data: Arc::new(data), dist: Dist::L2 };
        assert_eq!(flat.search(queries.row(0), 10, 0), gt[0]);
    }
}
