//! Exact top-k by brute force, over all cores: the ground truth for recall, and the `flat`
//! index.

use super::data::Vectors;

/// Distances where smaller is nearer: squared L2, or the negated dot product (cosine works on
/// normalised vectors).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    L2,
    Dot,
}

impl Dist {
    #[inline]
    pub fn eval(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Dist::L2 => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
            Dist::Dot => -a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
        }
    }
}

/// The ids of the `k` rows of `data` nearest to `q` (nearest first).
pub fn topk(data: &Vectors, q: &[f32], k: usize, dist: Dist) -> Vec<u32> {
    // A bounded max-heap of (distance, id).
    let mut heap: std::collections::BinaryHeap<(OrdF32, u32)> = std::collections::BinaryHeap::with_capacity(k + 1);
    for i in 0..data.len() {
        let d = dist.eval(q, data.row(i));
        if heap.len() < k {
            heap.push((OrdF32(d), i as u32));
        } else if let Some(top) = heap.peek() {
            if d < top.0 .0 {
                heap.pop();
                heap.push((OrdF32(d), i as u32));
            }
        }
    }
    let mut v = heap.into_vec();
    v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    v.into_iter().map(|(_, i)| i).collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct OrdF32(f32);
impl Eq for OrdF32 {}
impl PartialOrd for OrdF32 {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for OrdF32 {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Exact top-k of every query, queries spread over all cores.
pub fn ground_truth(data: &Vectors, queries: &Vectors, k: usize, dist: Dist) -> Vec<Vec<u32>> {
    let n = queries.len();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(n.max(1));
    let mut out = vec![vec![]; n];
    let per = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (t, part) in out.chunks_mut(per).enumerate() {
            s.spawn(move || {
                for (j, slot) in part.iter_mut().enumerate() {
                    *slot = topk(data, queries.row(t * per + j), k, dist);
                }
            });
        }
    });
    out
}

/// recall@k = |returned ∩ exact| / k.
pub fn recall(returned: &[u32], exact: &[u32]) -> f64 {
    if exact.is_empty() {
        return 1.0;
    }
    let hits = returned.iter().take(exact.len()).filter(|r| exact.contains(r)).count();
    hits as f64 / exact.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_search_matches_a_nested_loop() {
        let data = super::super::data::clustered(2000, 16, 20, 0.3, 1, 0);
        let queries = super::super::data::clustered(20, 16, 20, 0.3, 1, 1);
        for dist in [Dist::L2, Dist::Dot] {
            let gt = ground_truth(&data, &queries, 10, dist);
            for (qi, got) in gt.iter().enumerate() {
                // The plain way: sort every distance.
                let mut all: Vec<(f32, u32)> =
                    (0..data.len()).map(|i| (dist.eval(queries.row(qi), data.row(i)), i as u32)).collect();
                all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let want: Vec<u32> = all.iter().take(10).map(|x| x.1).collect();
                assert_eq!(got, &want);
                assert_eq!(recall(got, &want), 1.0);
            }
        }
        assert_eq!(recall(&[1, 2, 3, 4], &[1, 2, 5, 6]), 0.5);
    }
}
