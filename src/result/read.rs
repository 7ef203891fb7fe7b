//! Reading a result document back: the one reader every command uses (`report`, `compare`,
//! `baseline`, `merge`, the dashboard's history). It returns the typed document or says,
//! with the file's name, what is wrong: unreadable, not JSON, another schema version, or
//! damaged (a histogram that does not decode would otherwise read as "no data" and let a
//! gate pass on nothing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ResultDoc, MAX_RESULT_BYTES, RESULT_SCHEMA_VERSION};
use crate::stats;

/// Why a result file cannot be used.
#[derive(Debug)]
pub enum ReadError {
    /// The file cannot be read (missing, a folder, too large).
    Unreadable { path: PathBuf, why: String },
    /// Truncated, or not JSON.
    NotJson { path: PathBuf, why: String },
    /// Written by a benchctl whose result schema this one does not read.
    Version { path: PathBuf, found: Option<u64> },
    /// JSON of the right version that is not a result document (a field missing or of
    /// the wrong type), or whose stored data is damaged.
    Damaged { path: PathBuf, damage: Damage },
}

impl ReadError {
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Unreadable { path, .. }
            | ReadError::NotJson { path, .. }
            | ReadError::Version { path, .. }
            | ReadError::Damaged { path, .. } => path,
        }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Unreadable { path, why } => write!(f, "cannot read `{}`: {why}", path.display()),
            ReadError::NotJson { path, why } => write!(f, "`{}` is not JSON: {why}", path.display()),
            ReadError::Version { path, found: Some(n) } if *n > u64::from(RESULT_SCHEMA_VERSION) => write!(
                f,
                "`{}` is a result of schema version {n}, written by a newer benchctl; this one (version {}) reads versions up to {RESULT_SCHEMA_VERSION}: upgrade benchctl",
                path.display(),
                env!("CARGO_PKG_VERSION")
            ),
            ReadError::Version { path, found } => write!(
                f,
                "`{}` is not a benchctl result of schema version {RESULT_SCHEMA_VERSION} (found {})",
                path.display(),
                found.map_or("no schema_version".to_string(), |n| format!("version {n}"))
            ),
            ReadError::Damaged { path, damage } => write!(f, "`{}` is damaged: {damage}", path.display()),
        }
    }
}

impl std::error::Error for ReadError {}

/// What is wrong with a result document read back from disk.
#[derive(Debug, Clone, PartialEq)]
pub enum Damage {
    /// The JSON is not a result document: serde's message, which names the field and the
    /// line and column (`status` is not one a run writes, say).
    Shape(String),
    /// A stored histogram has no data, or its data does not decode (`problem`).
    Histogram { place: String, problem: Option<String> },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Shape(s) => f.write_str(s),
            Damage::Histogram { place, problem: None } => write!(f, "{place} has no data"),
            Damage::Histogram { place, problem: Some(p) } => write!(f, "{place}: {p}"),
        }
    }
}

impl std::error::Error for Damage {}

/// Reads and checks a result file (also a baseline, a shard or a fleet member's file).
pub fn read(path: &Path) -> Result<ResultDoc, ReadError> {
    read_str(&text_of(path)?, path)
}

/// Reads and checks a result document's text; `path` names it in errors.
pub fn read_str(text: &str, path: &Path) -> Result<ResultDoc, ReadError> {
    let doc = parse(text, path)?;
    verify(&doc).map_err(|damage| ReadError::Damaged { path: path.to_path_buf(), damage })?;
    Ok(doc)
}

/// Reads a result file without decoding its histograms, for a caller that decodes each one
/// it uses and names the one that does not (`merge`): every histogram is decoded once.
pub fn read_unverified(path: &Path) -> Result<ResultDoc, ReadError> {
    parse(&text_of(path)?, path)
}

fn text_of(path: &Path) -> Result<String, ReadError> {
    crate::dsl::source::read_text_bounded(path, MAX_RESULT_BYTES)
        .map_err(|e| ReadError::Unreadable { path: path.to_path_buf(), why: e.to_string() })
}

/// The document in one pass. Only when it does not fit the types is the version looked at
/// on its own, so that a newer (or much older) document is refused as such rather than as
/// damaged.
fn parse(text: &str, path: &Path) -> Result<ResultDoc, ReadError> {
    let path = || path.to_path_buf();
    let e = match serde_json::from_str::<ResultDoc>(text) {
        Ok(doc) if doc.schema_version == RESULT_SCHEMA_VERSION => return Ok(doc),
        Ok(doc) => return Err(ReadError::Version { path: path(), found: Some(u64::from(doc.schema_version)) }),
        Err(e) => e,
    };
    if !e.is_data() {
        return Err(ReadError::NotJson { path: path(), why: e.to_string() });
    }
    #[derive(Deserialize)]
    struct Version {
        schema_version: Option<serde_json::Value>,
    }
    let found = serde_json::from_str::<Version>(text).ok().and_then(|v| v.schema_version?.as_u64());
    if found != Some(u64::from(RESULT_SCHEMA_VERSION)) {
        return Err(ReadError::Version { path: path(), found });
    }
    Err(ReadError::Damaged { path: path(), damage: Damage::Shape(e.to_string()) })
}

/// Checks that every stored histogram decodes; the error names the first damaged place.
pub fn verify(doc: &ResultDoc) -> Result<(), Damage> {
    let records = doc.benchmarks.iter().map(|(w, r)| (format!("benchmarks.{w}"), r)).chain(
        doc.phases
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.workloads.iter().map(move |(w, r)| (format!("phases[{i}].workloads.{w}"), r))),
    );
    for (at, r) in records {
        for (metric, h) in &r.histograms {
            let place = || format!("{at}.histograms.{metric}");
            if h.data.is_empty() {
                return Err(Damage::Histogram { place: place(), problem: None });
            }
            stats::decode(&h.data).map_err(|e| Damage::Histogram { place: place(), problem: Some(e.to_string()) })?;
        }
    }
    Ok(())
}

/// The declared per-request counters of a workload record: the numeric fields left over
/// once the named ones are read (a field of another type is not a counter).
pub(super) fn counts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, u64>, D::Error> {
    let rest = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
    Ok(rest.into_iter().filter_map(|(k, v)| Some((k, v.as_u64()?))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{ConfigDoc, ResultDoc};

    fn written() -> serde_json::Value {
        let doc = ResultDoc::of_totals(ConfigDoc::default(), vec![], Default::default());
        serde_json::to_value(&doc).unwrap()
    }

    fn read_value(v: &serde_json::Value) -> Result<ResultDoc, ReadError> {
        read_str(&v.to_string(), Path::new("r.json"))
    }

    #[test]
    fn a_written_document_reads_back_the_same() {
        let v = written();
        let doc = read_value(&v).unwrap();
        assert_eq!(serde_json::to_value(&doc).unwrap(), v);
    }

    #[test]
    fn floats_read_back_bit_for_bit() {
        // Values whose shortest text needs all 17 digits: serde_json's default parser can
        // miss them by one unit in the last place (`float_roundtrip` makes it exact).
        for x in [1.8182228932287599f64, 0.015384615384615385, 1.7547109760000001, 0.1 + 0.2] {
            let mut v = written();
            v["duration_s"] = x.into();
            let doc = read_value(&v).unwrap();
            assert_eq!(doc.duration_s.to_bits(), x.to_bits(), "{x}");
        }
    }

    #[test]
    fn fields_added_later_may_be_missing() {
        let mut v = written();
        for k in ["repeat_spread", "host"] {
            v.as_object_mut().unwrap().remove(k);
        }
        assert!(read_value(&v).is_ok());
    }

    #[test]
    fn an_earlier_breaking_point_search_still_reads() {
        let mut v = written();
        let level = serde_json::json!({"rate": 4.0, "stable": true, "requests": 40, "errors": 0, "duration_s": 10.0, "failed": []});
        v["stress_test"] = serde_json::json!({"workload": "w", "max_sustainable_load": 4.0, "stable_levels": [4.0], "levels": [level]});
        if let Some(p) = v["phases"].as_array_mut().and_then(|p| p.first_mut()) {
            p["search"] = serde_json::json!({"workload": "w", "max_sustainable_rate": 4.0, "levels": [level]});
        }
        let doc = read_value(&v).expect("an earlier result reads");
        let st = doc.stress_test.expect("its breaking point");
        assert_eq!((st.levels[0].rate, st.levels[0].stable, st.levels[0].requests), (Some(4.0), true, 40));
        if let Some(p) = doc.phases.first() {
            assert_eq!(p.search.as_ref().map(|s| (s.steps.len(), s.max_sustainable_rate)), Some((1, Some(4.0))));
        }
    }

    #[test]
    fn a_newer_version_is_refused_naming_both() {
        let mut v = written();
        v["schema_version"] = 3.into();
        let e = read_value(&v).unwrap_err().to_string();
        assert!(e.contains("schema version 3") && e.contains(&format!("up to {RESULT_SCHEMA_VERSION}")), "{e}");
        v["schema_version"] = "two".into();
        assert!(read_value(&v).unwrap_err().to_string().contains("not a benchctl result"));
    }

    #[test]
    fn damage_is_named() {
        let mut v = written();
        v["status"] = "nonsense".into();
        let e = read_value(&v).unwrap_err();
        assert!(matches!(e, ReadError::Damaged { .. }), "{e}");
        assert!(e.to_string().contains("nonsense"), "{e}");
        let e = read_str("{\"schema_version\": 2", Path::new("cut.json")).unwrap_err();
        assert!(matches!(e, ReadError::NotJson { .. }) && e.to_string().contains("cut.json"), "{e}");
    }
}
