//! `benchctl merge`: the shard files of a split run put together exactly (histograms and
//! counters add; throughput over the union of the shards' time spans), and a fleet's
//! results compared node by node with a robust outlier score. Files are parsed on a few
//! reader threads (as typed result documents) and folded into the accumulator in name order,
//! so memory follows a few files and the merged data, not the number of shards. Every problem
//! with an input names the file (exit 4).

mod fleet;
mod split;

use std::path::{Path, PathBuf};

pub use fleet::{fleet, fleet_markdown, outliers, FleetDoc, FleetStat, NodeRow, Outlier, Worse, ROBUST_FROM, Z_CUT};
pub use split::split;

use crate::result::{self, Identity, ReadError, ResultDoc};

/// A shard or node file that cannot be merged, named.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeError {
    pub file: Option<String>,
    pub message: String,
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for MergeError {}

fn err(file: &Path, message: impl Into<String>) -> MergeError {
    MergeError { file: Some(file.display().to_string()), message: message.into() }
}

/// The files a merge reads: every `*.json` directly in `dir`, sorted by name.
pub fn inputs(dir: &Path) -> Result<Vec<PathBuf>, MergeError> {
    let entries = std::fs::read_dir(dir).map_err(|e| MergeError {
        file: Some(dir.display().to_string()),
        message: format!("cannot read the folder: {e}"),
    })?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    out.sort();
    Ok(out)
}

/// Reads one result file: a result document of the current schema whose histograms all
/// decode.
pub fn read(path: &Path) -> Result<ResultDoc, MergeError> {
    result::read(path).map_err(|e| read_error(path, &e))
}

/// Reads one shard file without decoding its histograms: the fold decodes each phase's
/// once, and names the one that does not (the whole-run records are rebuilt, not read).
fn read_shard(path: &Path) -> Result<ResultDoc, MergeError> {
    result::read_unverified(path).map_err(|e| read_error(path, &e))
}

/// Reads `paths` on up to four threads (parsing is most of a merge's work and each file is
/// independent) and hands each one's result to `fold` in the order of `paths`, on this
/// thread. Reader k takes files k, k + R, k + 2R, ... and runs at most two files ahead, so
/// memory holds a few parsed files whatever their number. The first error from `fold` stops
/// the readers.
pub(crate) fn in_order<T: Send, E>(
    paths: &[PathBuf],
    read: impl Fn(&Path) -> T + Sync,
    mut fold: impl FnMut(&Path, T) -> Result<(), E>,
) -> Result<(), E> {
    let readers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4).min(paths.len().max(1));
    if readers == 1 {
        return paths.iter().try_for_each(|p| fold(p, read(p)));
    }
    std::thread::scope(|scope| {
        let read = &read;
        let inboxes: Vec<std::sync::mpsc::Receiver<T>> = (0..readers)
            .map(|k| {
                let (tx, rx) = std::sync::mpsc::sync_channel(2);
                scope.spawn(move || {
                    for p in paths.iter().skip(k).step_by(readers) {
                        if tx.send(read(p)).is_err() {
                            return;
                        }
                    }
                });
                rx
            })
            .collect();
        for (i, p) in paths.iter().enumerate() {
            let parsed = inboxes[i % readers].recv().expect("each reader sends one result per file it takes");
            fold(p, parsed)?;
        }
        Ok(())
    })
}

/// A read error as a merge names it.
fn read_error(path: &Path, e: &ReadError) -> MergeError {
    {
        let message = match &e {
            ReadError::Unreadable { why, .. } => format!("cannot read it: {why}"),
            ReadError::NotJson { why, .. } => {
                format!("truncated or not JSON ({why}); rerun this shard or remove the file and pass --allow-missing")
            }
            ReadError::Version { found, .. } => format!(
                "result schema version {found:?}, not {} (written by another benchctl version)",
                result::RESULT_SCHEMA_VERSION
            ),
            ReadError::Damaged { damage, .. } => format!("damaged: {damage}"),
        };
        err(path, message)
    }
}

/// What must agree between two files for them to be parts of one run.
fn same_run(
    first: (&ResultDoc, &Identity),
    doc: (&ResultDoc, &Identity),
    path: &Path,
    first_path: &Path,
) -> Result<(), MergeError> {
    let ((f, fi), (d, di)) = (first, doc);
    if d.benchctl_version != f.benchctl_version {
        return Err(err(
            path,
            format!(
                "written by benchctl {:?}, and {} by {:?}: run every part with the same version",
                d.benchctl_version,
                first_path.display(),
                f.benchctl_version
            ),
        ));
    }
    if di.scenario_hash != fi.scenario_hash {
        return Err(err(
            path,
            format!(
                "ran another scenario (hash {}) than {} ({}): the scenario files, --set parameters, seed or repeat differ",
                short(&di.scenario_hash),
                first_path.display(),
                short(&fi.scenario_hash)
            ),
        ));
    }
    if let (Some(a), Some(b)) = (&di.run_id, &fi.run_id) {
        if a != b {
            return Err(err(
                path,
                format!("belongs to run {a:?}, and {} to run {b:?}: one folder per run", first_path.display()),
            ));
        }
    }
    Ok(())
}

fn short(hash: &str) -> String {
    if hash.is_empty() {
        "none".into()
    } else {
        hash.chars().take(12).collect()
    }
}

/// Up to 20 numbers, then how many more.
fn list(xs: &[u64]) -> String {
    let shown: Vec<String> = xs.iter().take(20).map(u64::to_string).collect();
    let more = if xs.len() > 20 { format!(" and {} more", xs.len() - 20) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}
