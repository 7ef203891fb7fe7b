//! The on-disk cache of built indexes, ground truth and embedded corpora.
//!
//! An entry is a folder named by what it holds and a 128-bit xxh3 key over everything its
//! content depends on (the data's bytes, the parameters, the backend and its version, this
//! format's version). It is written under a temporary name and renamed into place, so a
//! reader never sees half an entry; its `manifest.json` lists every file with its size and
//! checksum, and an entry whose files do not match is reported, deleted and rebuilt, never
//! used.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use twox_hash::XxHash3_128;

use super::data::Vectors;

/// Bumped whenever what an entry holds changes meaning.
const FORMAT: u32 = 1;

/// A key built from labelled parts.
#[derive(Default)]
pub struct Key(XxHash3_128);

impl Key {
    pub fn new(kind: &str) -> Key {
        let mut k = Key(XxHash3_128::with_seed(0));
        k.part("format", &FORMAT.to_le_bytes());
        k.part("kind", kind.as_bytes());
        k
    }
    /// Adds a labelled part (labels keep `("ab", "c")` apart from `("a", "bc")`).
    pub fn part(&mut self, label: &str, bytes: &[u8]) -> &mut Key {
        for b in [label.as_bytes(), bytes] {
            self.0.write(&(b.len() as u64).to_le_bytes());
            self.0.write(b);
        }
        self
    }
    pub fn text(&mut self, label: &str, value: impl std::fmt::Display) -> &mut Key {
        self.part(label, value.to_string().as_bytes())
    }
    pub fn hex(&self) -> String {
        format!("{:032x}", self.0.finish_128())
    }
}

/// The checksum of a set of vectors (dimension and every value).
pub fn vectors_hash(v: &Vectors) -> String {
    let mut h = XxHash3_128::with_seed(0);
    h.write(&(v.dim as u64).to_le_bytes());
    // Values as their little-endian bytes, in blocks (no copy of the whole set).
    let mut buf = Vec::with_capacity(1 << 16);
    for chunk in v.data.chunks(1 << 14) {
        buf.clear();
        for x in chunk {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        h.write(&buf);
    }
    format!("{:032x}", h.finish_128())
}

fn file_hash(path: &Path) -> std::io::Result<(u64, String)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = XxHash3_128::with_seed(0);
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let r = f.read(&mut buf)?;
        if r == 0 {
            break;
        }
        h.write(&buf[..r]);
        n += r as u64;
    }
    Ok((n, format!("{:032x}", h.finish_128())))
}

#[derive(Debug, Serialize, Deserialize)]
struct FileEntry {
    name: String,
    bytes: u64,
    xxh3: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    key: String,
    what: String,
    benchctl: String,
    files: Vec<FileEntry>,
    /// Facts recorded with the entry (build time, memory) to report on a hit.
    facts: serde_json::Value,
}

/// What looking up an entry found.
pub enum Lookup {
    /// A verified entry: its folder and the facts stored with it.
    Hit {
        dir: PathBuf,
        facts: serde_json::Value,
    },
    Miss,
    /// An entry was there but failed verification (the reason); it has been removed.
    Corrupt(Damage),
}

/// What a filler or reader of an entry reports: its own error (an index's, a file's).
pub type Fault = Box<dyn std::error::Error + Send + Sync>;

/// Why an entry could not be stored.
#[derive(Debug)]
pub enum CacheError {
    /// A file operation in the cache folder failed (what was being done, and where).
    Io { doing: &'static str, path: PathBuf, source: std::io::Error },
    /// Filling the entry failed.
    Fill(Fault),
}

impl std::fmt::Display for CacheError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheError::Io { doing, path, source } => write!(f, "cannot {doing} {}: {source}", path.display()),
            CacheError::Fill(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CacheError {}

/// Why an entry fails verification.
#[derive(Debug)]
pub enum Damage {
    NoManifest(std::io::Error),
    InvalidManifest(serde_json::Error),
    OtherEntry,
    NoFiles,
    Unreadable { name: String, source: std::io::Error },
    Size { name: String, bytes: u64, expected: u64 },
    Checksum(String),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::NoManifest(e) => write!(f, "no readable manifest ({e})"),
            Damage::InvalidManifest(e) => write!(f, "the manifest is not valid ({e})"),
            Damage::OtherEntry => f.write_str("the manifest belongs to another entry or format"),
            Damage::NoFiles => f.write_str("the manifest lists no files"),
            Damage::Unreadable { name, source } => write!(f, "{name} is unreadable ({source})"),
            Damage::Size { name, bytes, expected } => {
                write!(f, "{name} has {bytes} bytes, the manifest says {expected}")
            }
            Damage::Checksum(name) => write!(f, "{name} does not match its checksum"),
        }
    }
}

impl std::error::Error for Damage {}

/// Why a ground-truth file cannot be read.
#[derive(Debug)]
pub enum TruthError {
    Io(std::io::Error),
    NotTruth,
    WrongLength,
}

impl std::fmt::Display for TruthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TruthError::Io(e) => e.fmt(f),
            TruthError::NotTruth => f.write_str("not a ground-truth file"),
            TruthError::WrongLength => f.write_str("the ground-truth file has the wrong length"),
        }
    }
}

impl std::error::Error for TruthError {}

pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn new(root: PathBuf) -> Cache {
        Cache { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry_dir(&self, what: &str, key: &str) -> PathBuf {
        self.root.join(format!("{what}-{key}"))
    }

    /// Finds the entry and checks every file against its manifest.
    pub fn lookup(&self, what: &str, key: &str) -> Lookup {
        let dir = self.entry_dir(what, key);
        if !dir.exists() {
            return Lookup::Miss;
        }
        match verify(&dir, what, key) {
            Ok(facts) => Lookup::Hit { dir, facts },
            Err(reason) => {
                let _ = std::fs::remove_dir_all(&dir);
                Lookup::Corrupt(reason)
            }
        }
    }

    /// Writes an entry: `fill` puts its files into a fresh folder, then the manifest is
    /// written and the folder renamed into place. Returns the entry's folder.
    pub fn store(
        &self,
        what: &str,
        key: &str,
        facts: serde_json::Value,
        fill: impl FnOnce(&Path) -> Result<(), Fault>,
    ) -> Result<PathBuf, CacheError> {
        let io = |doing: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| CacheError::Io { doing, path, source }
        };
        std::fs::create_dir_all(&self.root).map_err(io("create the cache folder", &self.root))?;
        // Unique per process and per store, so concurrent runs (and threads) never share it.
        static STORES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.root.join(format!(".tmp-{what}-{key}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io("write in", &self.root))?;
        let result = (|| {
            fill(&tmp).map_err(CacheError::Fill)?;
            let mut files = vec![];
            let mut names: Vec<_> = std::fs::read_dir(&tmp)
                .map_err(io("list", &tmp))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for name in names {
                let (bytes, xxh3) = file_hash(&tmp.join(&name)).map_err(io("read", &tmp.join(&name)))?;
                files.push(FileEntry { name, bytes, xxh3 });
            }
            let m = Manifest {
                format: FORMAT,
                key: key.to_string(),
                what: what.to_string(),
                benchctl: env!("CARGO_PKG_VERSION").to_string(),
                files,
                facts,
            };
            let manifest = tmp.join("manifest.json");
            let mut f = std::fs::File::create(&manifest).map_err(io("create", &manifest))?;
            let text = serde_json::to_vec_pretty(&m).expect("a manifest serialises: plain fields");
            f.write_all(&text).map_err(io("write", &manifest))?;
            f.sync_all().map_err(io("write", &manifest))?;
            let dir = self.entry_dir(what, key);
            // Another run may have stored the same entry meanwhile, and may be reading it:
            // a valid entry is never replaced (this run's copy is dropped), only a damaged one.
            if verify(&dir, what, key).is_ok() {
                let _ = std::fs::remove_dir_all(&tmp);
                return Ok(dir);
            }
            let _ = std::fs::remove_dir_all(&dir);
            match std::fs::rename(&tmp, &dir) {
                Ok(()) => Ok(dir),
                // Lost the race to another run's rename: its entry is as good as ours.
                Err(_) if verify(&dir, what, key).is_ok() => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    Ok(dir)
                }
                Err(e) => Err(io("rename into", &dir)(e)),
            }
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }
}

fn verify(dir: &Path, what: &str, key: &str) -> Result<serde_json::Value, Damage> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).map_err(Damage::NoManifest)?;
    let m: Manifest = serde_json::from_str(&text).map_err(Damage::InvalidManifest)?;
    if m.format != FORMAT || m.key != key || m.what != what {
        return Err(Damage::OtherEntry);
    }
    if m.files.is_empty() {
        return Err(Damage::NoFiles);
    }
    for f in &m.files {
        let (bytes, xxh3) =
            file_hash(&dir.join(&f.name)).map_err(|source| Damage::Unreadable { name: f.name.clone(), source })?;
        if bytes != f.bytes {
            return Err(Damage::Size { name: f.name.clone(), bytes, expected: f.bytes });
        }
        if xxh3 != f.xxh3 {
            return Err(Damage::Checksum(f.name.clone()));
        }
    }
    Ok(m.facts)
}

/// Ground truth as a file: `BCGT`, rows and k as u32, then rows x k ids (little-endian).
pub fn write_truth(path: &Path, truth: &[Vec<u32>], k: usize) -> std::io::Result<()> {
    let mut b = Vec::with_capacity(12 + truth.len() * k * 4);
    b.extend_from_slice(b"BCGT");
    b.extend_from_slice(&(truth.len() as u32).to_le_bytes());
    b.extend_from_slice(&(k as u32).to_le_bytes());
    for row in truth {
        for j in 0..k {
            b.extend_from_slice(&row.get(j).copied().unwrap_or(u32::MAX).to_le_bytes());
        }
    }
    std::fs::write(path, b)
}

pub fn read_truth(path: &Path) -> Result<Vec<Vec<u32>>, TruthError> {
    let b = std::fs::read(path).map_err(TruthError::Io)?;
    if b.len() < 12 || &b[..4] != b"BCGT" {
        return Err(TruthError::NotTruth);
    }
    let word = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let (rows, k) = (word(4) as usize, word(8) as usize);
    if b.len() != 12 + rows * k * 4 {
        return Err(TruthError::WrongLength);
    }
    Ok((0..rows).map(|r| (0..k).map(|j| word(12 + (r * k + j) * 4)).filter(|&id| id != u32::MAX).collect()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_found_verified_and_a_damaged_one_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path().to_path_buf());
        let key = Key::new("t").text("x", 1).hex();
        assert!(matches!(c.lookup("truth", &key), Lookup::Miss));
        let truth = vec![vec![1, 2, 3], vec![4, 5, 6]];
        let d = c
            .store("truth", &key, serde_json::json!({"s": 1.5}), |d| Ok(write_truth(&d.join("truth.bin"), &truth, 3)?))
            .unwrap();
        match c.lookup("truth", &key) {
            Lookup::Hit { dir, facts } => {
                assert_eq!(read_truth(&dir.join("truth.bin")).unwrap(), truth);
                assert_eq!(facts["s"], 1.5);
            }
            _ => panic!("expected a hit"),
        }
        // Same length, other bytes: the checksum catches it.
        let mut b = std::fs::read(d.join("truth.bin")).unwrap();
        b[14] ^= 1;
        std::fs::write(d.join("truth.bin"), b).unwrap();
        assert!(matches!(c.lookup("truth", &key), Lookup::Corrupt(r) if r.to_string().contains("checksum")));
        assert!(!d.exists(), "a corrupt entry is removed");
        assert!(matches!(c.lookup("truth", &key), Lookup::Miss));
    }

    /// Runs that build the same entry at once all succeed with one valid entry, none
    /// replaces another's valid entry (which that run may be reading), and no temporary
    /// folder is left.
    #[test]
    fn concurrent_stores_of_one_entry_agree() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::new("t").text("x", 2).hex();
        let truth = vec![vec![7, 8]];
        let first = Cache::new(dir.path().to_path_buf())
            .store("truth", &key, serde_json::json!({}), |d| Ok(write_truth(&d.join("truth.bin"), &truth, 2)?))
            .unwrap();
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = inode(&first.join("truth.bin"));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (root, key, truth) = (dir.path().to_path_buf(), key.clone(), truth.clone());
                std::thread::spawn(move || {
                    Cache::new(root).store("truth", &key, serde_json::json!({}), |d| {
                        std::thread::sleep(std::time::Duration::from_millis(30));
                        Ok(write_truth(&d.join("truth.bin"), &truth, 2)?)
                    })
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap().unwrap(), first);
        }
        assert_eq!(inode(&first.join("truth.bin")), before, "the valid entry was not replaced");
        assert!(matches!(Cache::new(dir.path().to_path_buf()).lookup("truth", &key), Lookup::Hit { .. }));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary folders left");
    }

    #[test]
    fn keys_separate_parts_and_values() {
        let a = Key::new("k").text("a", "bc").hex();
        let b = Key::new("k").text("ab", "c").hex();
        assert_ne!(a, b);
        assert_eq!(a, Key::new("k").text("a", "bc").hex());
        let v = Vectors { dim: 2, data: vec![1.0, 2.0] };
        let w = Vectors { dim: 1, data: vec![1.0, 2.0] };
        assert_ne!(vectors_hash(&v), vectors_hash(&w));
    }
}
