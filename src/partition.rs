//! A shard's part of a split run: which share of every drive's load, of a prompt or query
//! file and of the random streams one of N load generators takes. A leaf of the stage
//! order: the plan divides drives with it and the workloads divide their files.

use serde::Serialize;

use crate::dsl::units::Rate;

/// One shard of a split run: `index` in `0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// Why `--shard` or a scheduler's variables do not name a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardError {
    /// Not `INDEX/COUNT`.
    NotIndexCount(String),
    /// A part of `INDEX/COUNT` that is not a whole number.
    NotWhole {
        text: String,
        part: String,
        what: &'static str,
    },
    NoShards,
    TooMany(u64),
    IndexTooHigh {
        index: u64,
        count: u64,
    },
}

/// How to write a shard.
const HELP: &str = "write --shard INDEX/COUNT with INDEX counted from 0, e.g. --shard 0/4 .. --shard 3/4";

impl std::fmt::Display for ShardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardError::NotIndexCount(s) => write!(f, "`{s}` is not INDEX/COUNT; {HELP}"),
            ShardError::NotWhole { text, part, what } => {
                write!(f, "`{part}` in `{text}` is not a whole number ({what}); {HELP}")
            }
            ShardError::NoShards => f.write_str("a split run has at least 1 shard"),
            ShardError::TooMany(n) => write!(f, "{n} shards is more than the 100000 benchctl merges"),
            ShardError::IndexTooHigh { index, count } => {
                write!(f, "shard index {index} is not below the count {count} (indexes run from 0 to {})", count - 1)
            }
        }
    }
}

impl std::error::Error for ShardError {}

impl Shard {
    /// Parses `I/N` (0 <= I < N, N >= 1).
    pub fn parse(s: &str) -> Result<Shard, ShardError> {
        let (i, n) = s.split_once('/').ok_or_else(|| ShardError::NotIndexCount(s.to_string()))?;
        let num = |t: &str, what: &'static str| {
            t.trim().parse::<u64>().map_err(|_| ShardError::NotWhole { text: s.into(), part: t.into(), what })
        };
        Shard::new(num(i, "the index")?, num(n, "the count")?)
    }

    pub fn new(index: u64, count: u64) -> Result<Shard, ShardError> {
        match (index, count) {
            (_, 0) => Err(ShardError::NoShards),
            (_, n) if n > 100_000 => Err(ShardError::TooMany(n)),
            (index, count) if index >= count => Err(ShardError::IndexTooHigh { index, count }),
            (index, count) => Ok(Shard { index, count }),
        }
    }

    /// This shard's part of `n` whole units (concurrency, a request budget): `n / count`,
    /// and one more for the first `n % count` shards, so the parts add up to `n`.
    pub fn part(&self, n: u64) -> u64 {
        n / self.count + u64::from(self.index < n % self.count)
    }

    /// This shard's part of a rate.
    pub fn rate(&self, r: Rate) -> Rate {
        Rate(r.0 / self.count as f64)
    }

    /// Whether item `i` of a prompt or query file belongs to this shard (`i mod N == I`).
    pub fn owns(&self, i: usize) -> bool {
        i as u64 % self.count == self.index
    }

    /// Keeps this shard's items of a list read from a file.
    pub fn partition<T>(&self, items: Vec<T>) -> Vec<T> {
        items.into_iter().enumerate().filter(|(i, _)| self.owns(*i)).map(|(_, t)| t).collect()
    }

    /// The seed this shard's drives use: the scenario's, mixed with the index (shard 0 of 1
    /// keeps the scenario's seed, so an unsplit run is unchanged).
    pub fn seed(&self, seed: u64) -> u64 {
        if self.count == 1 {
            return seed;
        }
        let mut x = seed ^ self.index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}
