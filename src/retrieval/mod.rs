//! Vector retrieval: data (synthetic clustered, .npy, .fvecs/.bvecs, JSONL), exact search
//! for ground truth and the `flat` index, HNSW through hnsw_rs, and the `retrieval` workload.

pub mod cache;
pub mod data;
pub mod embed;
pub mod exact;
pub mod index;
pub mod workload;
