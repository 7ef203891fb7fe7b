//! Prompts shared by the workloads that send text or token ids: synthetic token sequences of
//! exact lengths drawn from the seed, or a JSONL file of texts (a `prompt` field, or ShareGPT
//! conversations) tokenised and filtered by length.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::dsl::model::{PromptFormat, TokenDist};
use crate::random::Rng;
use crate::workload::setup::SetupError;

#[derive(Debug, Clone)]
pub enum Prompts {
    /// Lengths from the distribution; ids uniform over the ordinary part of the vocabulary.
    Synthetic { dist: TokenDist, lo: u32, hi: u32 },
    /// Tokenised prompts from a file; requests pick one at random.
    Set(Vec<Vec<u32>>),
}

impl Prompts {
    /// Synthetic prompts for a vocabulary of `vocab` ids; the lowest 256 ids (special and
    /// byte tokens in most vocabularies) are left out.
    pub fn synthetic(dist: TokenDist, vocab: usize) -> Prompts {
        let lo = if vocab > 1024 { 256 } else { 0 };
        Prompts::Synthetic { dist, lo, hi: vocab as u32 }
    }

    /// The longest prompt a request can get.
    pub fn max_len(&self) -> u64 {
        match self {
            Prompts::Synthetic { dist, .. } => match *dist {
                TokenDist::Fixed { tokens } => tokens,
                TokenDist::Uniform { max, .. } => max,
                // Draws are clamped to 4 standard deviations.
                TokenDist::Normal { mean, stddev } => mean + 4 * stddev,
            },
            Prompts::Set(v) => v.iter().map(|p| p.len() as u64).max().unwrap_or(0),
        }
    }

    /// A typical length: for the batch sweep, where a batch shares one length.
    pub fn typical_len(&self) -> usize {
        match self {
            Prompts::Synthetic { dist, .. } => match *dist {
                TokenDist::Fixed { tokens } => tokens as usize,
                TokenDist::Uniform { min, max } => ((min + max) / 2) as usize,
                TokenDist::Normal { mean, .. } => mean as usize,
            },
            Prompts::Set(v) => {
                let mut l: Vec<usize> = v.iter().map(Vec::len).collect();
                l.sort_unstable();
                l.get(l.len() / 2).copied().unwrap_or(1)
            }
        }
        .max(1)
    }

    /// One prompt for one request.
    pub fn draw(&self, rng: &mut Rng) -> Vec<u32> {
        match self {
            Prompts::Synthetic { dist, lo, hi } => self.ids(draw_len(dist, rng) as usize, *lo, *hi, rng),
            Prompts::Set(v) => v[(rng.next_u64() % v.len() as u64) as usize].clone(),
        }
    }

    /// `n` prompts of exactly `len` tokens (a static batch).
    pub fn batch(&self, n: usize, len: usize, rng: &mut Rng) -> Vec<Vec<u32>> {
        match self {
            Prompts::Synthetic { lo, hi, .. } => (0..n).map(|_| self.ids(len, *lo, *hi, rng)).collect(),
            Prompts::Set(v) => (0..n)
                .map(|_| {
                    let p = &v[(rng.next_u64() % v.len() as u64) as usize];
                    // Repeat or cut the prompt to the batch's length.
                    p.iter().cycle().take(len).copied().collect()
                })
                .collect(),
        }
    }

    fn ids(&self, len: usize, lo: u32, hi: u32, rng: &mut Rng) -> Vec<u32> {
        (0..len).map(|_| lo + (rng.next_u64() % (hi - lo).max(1) as u64) as u32).collect()
    }
}

/// A prompt length from the distribution, at least 1 (normal draws clamped to 4 standard
/// deviations).
pub fn draw_len(dist: &TokenDist, rng: &mut Rng) -> u64 {
    match *dist {
        TokenDist::Fixed { tokens } => tokens,
        TokenDist::Uniform { min, max } => min + (rng.next_u64() % (max - min + 1)),
        TokenDist::Normal { mean, stddev } => {
            (mean as f64 + stddev as f64 * rng.normal().clamp(-4.0, 4.0)).round().max(1.0) as u64
        }
    }
    .max(1)
}

/// A distribution of prompt lengths in words, for the facts.
pub fn describe(d: &TokenDist) -> String {
    match *d {
        TokenDist::Fixed { tokens } => format!("{tokens} tokens"),
        TokenDist::Uniform { min, max } => format!("{min}..{max} tokens (uniform)"),
        TokenDist::Normal { mean, stddev } => format!("{mean} ± {stddev} tokens (normal)"),
    }
}

/// Largest prompt or corpus text file read (reading stops there, so a device or an endless
/// stream is refused rather than filling memory).
pub const MAX_TEXT_FILE_BYTES: usize = 1 << 30;

/// Texts of a JSONL prompt file: the `prompt` field, or a ShareGPT record's first human turn.
pub fn read_texts(path: &Path, format: PromptFormat) -> Result<Vec<String>, SetupError> {
    let text = crate::dsl::source::read_text_bounded(path, MAX_TEXT_FILE_BYTES).map_err(|e| {
        SetupError::input(
            format!("cannot read the prompt file `{}`: {e}", path.display()),
            "paths are relative to the scenario's folder",
        )
    })?;
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", path.display(), i + 1);
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            SetupError::input(format!("{at}: not a JSON object: {e}"), "each line of a prompt file is one JSON object")
        })?;
        let t = match format {
            PromptFormat::Prompt => v.get("prompt").and_then(|p| p.as_str()).map(str::to_string),
            PromptFormat::ShareGpt => v.get("conversations").and_then(|c| c.as_array()).and_then(|turns| {
                turns
                    .iter()
                    .find(|t| matches!(t.get("from").and_then(|f| f.as_str()), Some("human" | "user")))
                    .and_then(|t| t.get("value").and_then(|x| x.as_str()))
                    .map(str::to_string)
            }),
        };
        match t {
            Some(t) => out.push(t),
            None => {
                let want = match format {
                    PromptFormat::Prompt => "string field `prompt`",
                    PromptFormat::ShareGpt => "`conversations` turn from `human`",
                };
                return Err(SetupError::input(
                    format!("{at}: the record has no {want}"),
                    "set `format=\"prompt\"` or `format=\"sharegpt\"` to match the file",
                ));
            }
        }
    }
    Ok(out)
}

/// A split run's part of a prompt or query file: the items whose index mod N is this
/// shard's. A shard left with nothing is an input error, named with the file.
pub fn shard_texts<T>(
    items: Vec<T>,
    shard: Option<crate::partition::Shard>,
    path: &Path,
) -> Result<Vec<T>, SetupError> {
    let Some(s) = shard else { return Ok(items) };
    let n = items.len();
    let mine = s.partition(items);
    if mine.is_empty() && n > 0 {
        return Err(SetupError::input(
            format!(
                "shard {s} gets none of the {n} items of `{}` (items are dealt by index mod {})",
                path.display(),
                s.count
            ),
            "give the file at least as many items as there are shards, or run fewer shards",
        ));
    }
    Ok(mine)
}

/// Tokenises texts, keeping those whose length lies in `range` (inclusive).
pub fn tokenize(
    texts: &[String],
    tok: &Tokenizer,
    range: Option<(u64, u64)>,
    path: &Path,
) -> Result<Vec<Vec<u32>>, SetupError> {
    let mut out = vec![];
    for t in texts {
        let enc = tok.encode(t.as_str(), false).map_err(|e| {
            SetupError::input(format!("cannot tokenise a prompt of `{}`: {e}", path.display()), "check the file's text")
        })?;
        let n = enc.get_ids().len() as u64;
        if n > 0 && range.is_none_or(|(lo, hi)| n >= lo && n <= hi) {
            out.push(enc.get_ids().to_vec());
        }
    }
    if out.is_empty() {
        return Err(SetupError::input(
            format!(
                "no prompt of `{}` is left after tokenising and the length filter ({} texts read)",
                path.display(),
                texts.len()
            ),
            "widen `tokens=\"MIN..MAX\"` on the `prompt` node",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_lengths_are_exact_and_seeded() {
        let p = Prompts::synthetic(TokenDist::Uniform { min: 8, max: 12 }, 50_000);
        let mut a = Rng::new(1);
        let mut b = Rng::new(1);
        for _ in 0..200 {
            let x = p.draw(&mut a);
            assert!((8..=12).contains(&x.len()));
            assert!(x.iter().all(|&t| (256..50_000).contains(&t)));
            assert_eq!(x, p.draw(&mut b));
        }
        let fixed = Prompts::synthetic(TokenDist::Fixed { tokens: 32 }, 100);
        assert_eq!(fixed.draw(&mut a).len(), 32);
        assert!(fixed.batch(4, 32, &mut a).iter().all(|s| s.len() == 32));
    }

    #[test]
    fn prompt_files() {
        let dir = std::env::temp_dir().join(format!("benchctl-prompts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("p.jsonl");
        std::fs::write(&f, "{\"prompt\": \"hello\"}\n\n{\"prompt\": \"world\"}\n").unwrap();
        assert_eq!(read_texts(&f, PromptFormat::Prompt).unwrap(), ["hello", "world"]);
        std::fs::write(&f, "{\"conversations\": [{\"from\": \"system\", \"value\": \"s\"}, {\"from\": \"human\", \"value\": \"q\"}]}\n").unwrap();
        assert_eq!(read_texts(&f, PromptFormat::ShareGpt).unwrap(), ["q"]);
        let e = read_texts(&f, PromptFormat::Prompt).unwrap_err();
        assert!(e.message.ends_with("p.jsonl:1: the record has no string field `prompt`"), "{}", e.message);
        std::fs::write(&f, "{oops\n").unwrap();
        let e = read_texts(&f, PromptFormat::Prompt).unwrap_err();
        assert!(e.message.contains("p.jsonl:1: not a JSON object"), "{}", e.message);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
