//! Prompt text for served models: synthetic prompts of a set token length (exact through
//! the tokenizer when there is one, else one common English word per token), prompts of a
//! file, and the prefix rule that keeps a server's prefix cache out of a TTFT test (or
//! puts it in on purpose).

use std::sync::Arc;

use tokenizers::Tokenizer;

use crate::dsl::model::{PromptPrefix, TokenDist};
use crate::random::Rng;

/// Common short English words: in the BPE vocabularies of the usual models each is one
/// token with its leading space, so N of them make a prompt of about N tokens.
const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "that",
    "on",
    "as",
    "with",
    "by",
    "he",
    "at",
    "from",
    "his",
    "it",
    "an",
    "were",
    "are",
    "which",
    "this",
    "be",
    "or",
    "has",
    "had",
    "first",
    "one",
    "their",
    "its",
    "new",
    "after",
    "but",
    "who",
    "not",
    "they",
    "have",
    "her",
    "she",
    "two",
    "been",
    "other",
    "when",
    "there",
    "all",
    "during",
    "into",
    "school",
    "time",
    "may",
    "years",
    "more",
    "most",
    "only",
    "over",
    "city",
    "some",
    "world",
    "would",
    "where",
    "later",
    "up",
    "such",
    "used",
    "many",
    "can",
    "state",
    "about",
    "national",
    "out",
    "known",
    "university",
    "united",
    "then",
    "made",
    "also",
    "between",
    "while",
    "name",
    "number",
    "three",
    "than",
    "part",
    "film",
    "team",
    "under",
    "back",
    "season",
    "until",
    "both",
    "each",
    "well",
    "long",
    "area",
    "series",
    "work",
    "year",
    "called",
    "since",
    "second",
    "high",
    "life",
    "them",
    "him",
    "music",
    "game",
    "these",
    "several",
    "early",
    "family",
    "house",
    "became",
    "north",
    "south",
    "west",
    "east",
    "war",
    "group",
    "government",
    "through",
    "like",
    "what",
    "four",
    "any",
    "people",
    "around",
    "could",
    "end",
    "same",
    "money",
    "day",
    "field",
    "five",
    "small",
    "large",
    "way",
    "own",
    "found",
    "we",
    "you",
    "water",
    "home",
    "form",
    "show",
    "line",
    "power",
    "great",
    "place",
    "river",
    "old",
    "party",
    "did",
    "will",
    "left",
    "right",
    "best",
    "fast",
    "took",
    "gave",
    "book",
    "love",
    "light",
    "open",
    "road",
    "king",
    "land",
    "free",
    "head",
    "hand",
    "body",
    "side",
    "set",
    "view",
    "court",
    "club",
    "local",
    "path",
    "story",
    "few",
    "word",
    "point",
    "age",
    "lot",
    "key",
    "red",
    "blue",
    "green",
    "black",
    "white",
    "town",
    "near",
    "far",
    "fire",
    "rain",
    "snow",
    "wind",
    "sun",
    "moon",
    "star",
    "sea",
    "lake",
    "hill",
    "tree",
    "stone",
    "gold",
    "iron",
    "wood",
    "glass",
    "paper",
    "door",
    "wall",
    "room",
    "car",
    "train",
    "ship",
    "bird",
    "fish",
    "dog",
    "horse",
    "cat",
    "food",
    "milk",
    "bread",
    "tea",
    "song",
    "art",
    "law",
    "plan",
    "test",
    "data",
    "code",
    "model",
    "table",
    "chair",
    "clock",
    "bell",
    "card",
    "box",
    "bag",
    "map",
    "page",
    "note",
    "letter",
    "news",
    "voice",
];

/// How prompts are drawn.
#[derive(Debug, Clone)]
pub enum Source {
    Synthetic(TokenDist),
    /// Texts of a prompt file; requests pick one at random.
    Texts(Arc<Vec<String>>),
}

/// One prompt, with its token count when the tokenizer gave one.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub text: String,
    pub tokens: Option<u64>,
    /// Which shared prefix it begins with (`shared`: 0; `pool`: its index).
    pub prefix: Option<usize>,
}

/// Makes each request's prompt.
pub struct Prompts {
    source: Source,
    prefix: PromptPrefix,
    tokenizer: Option<Arc<Tokenizer>>,
    /// The shared prefixes' texts (one for `PromptPrefix::Shared`, `count` for `Pool`).
    shared: Vec<String>,
}

impl Prompts {
    pub fn new(source: Source, prefix: PromptPrefix, tokenizer: Option<Arc<Tokenizer>>, seed: u64) -> Prompts {
        let mut p = Prompts { source, prefix, tokenizer, shared: vec![] };
        let (count, tokens) = match prefix {
            PromptPrefix::Shared { tokens } => (1, tokens),
            PromptPrefix::Pool { count, tokens } => (count, tokens),
            _ => (0, 0),
        };
        // The same words for every request of every run with this seed; each prefix from a
        // stream of its own, so two prefixes share no more than a chance first word.
        // (The first is the one `shared` has always used.)
        let stream = |i: u64| {
            let first = Rng::new(seed ^ 0x5348_4152_4544);
            if i == 0 {
                first
            } else {
                first.fork(i)
            }
        };
        p.shared = (0..count).map(|i| p.words(tokens, &mut stream(i))).collect();
        p
    }

    /// How many shared prefixes prompts begin with (0: none).
    pub fn prefixes(&self) -> usize {
        self.shared.len()
    }

    /// The prompt of one request.
    pub fn draw(&self, rng: &mut Rng) -> Prompt {
        let body = match &self.source {
            Source::Synthetic(dist) => {
                let n = crate::prompts::draw_len(dist, rng);
                self.words(n, rng)
            }
            Source::Texts(texts) => {
                let t = &texts[(rng.next_u64() % texts.len() as u64) as usize];
                match self.prefix {
                    // A tag of its own in front: no two requests share more than a few tokens.
                    PromptPrefix::Unique => format!("[{:016x}] {t}", rng.next_u64()),
                    _ => t.clone(),
                }
            }
        };
        let prefix = match self.shared.len() {
            0 => None,
            1 => Some(0),
            n => Some((rng.next_u64() % n as u64) as usize),
        };
        let text = match prefix {
            Some(i) => format!("{} {body}", self.shared[i]),
            None => body,
        };
        let tokens = self.count(&text);
        Prompt { text, tokens, prefix }
    }

    /// Tokens in `text` by the tokenizer, when there is one.
    pub fn count(&self, text: &str) -> Option<u64> {
        let t = self.tokenizer.as_ref()?;
        t.encode(text, false).ok().map(|e| e.get_ids().len() as u64)
    }

    /// Random words making `n` tokens: exactly, through the tokenizer, else one word each.
    fn words(&self, n: u64, rng: &mut Rng) -> String {
        let pick = |rng: &mut Rng| WORDS[(rng.next_u64() % WORDS.len() as u64) as usize];
        let mut text: Vec<&str> = (0..n).map(|_| pick(rng)).collect();
        let Some(tok) = &self.tokenizer else { return text.join(" ") };
        // Words are one token or more: cut the encoding at n tokens and decode it.
        loop {
            let joined = text.join(" ");
            let Ok(enc) = tok.encode(joined.as_str(), false) else { return joined };
            let ids = enc.get_ids();
            if ids.len() as u64 >= n {
                return tok.decode(&ids[..n as usize], false).unwrap_or(joined);
            }
            text.push(pick(rng));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_prompts_have_the_words_asked_for_and_differ() {
        let p = Prompts::new(Source::Synthetic(TokenDist::Fixed { tokens: 32 }), PromptPrefix::Unique, None, 1);
        let mut rng = Rng::new(3);
        let a = p.draw(&mut rng);
        let b = p.draw(&mut rng);
        assert_eq!(a.text.split(' ').count(), 32);
        assert_eq!(a.tokens, None, "no tokenizer: no count");
        assert_ne!(a.text, b.text);
        assert_ne!(a.text.split(' ').take(4).collect::<Vec<_>>(), b.text.split(' ').take(4).collect::<Vec<_>>());
    }

    #[test]
    fn a_shared_prefix_is_shared_and_the_rest_differs() {
        let p = Prompts::new(
            Source::Synthetic(TokenDist::Fixed { tokens: 8 }),
            PromptPrefix::Shared { tokens: 16 },
            None,
            1,
        );
        let mut rng = Rng::new(3);
        let (a, b) = (p.draw(&mut rng).text, p.draw(&mut rng).text);
        let head = |s: &str| s.split(' ').take(16).collect::<Vec<_>>().join(" ");
        assert_eq!(head(&a), head(&b));
        assert_ne!(a, b);
        assert_eq!(a.split(' ').count(), 24);
    }

    /// A pool of 4 prefixes of 12 words: every prompt begins with one of them (the index it
    /// reports), all four are drawn, they differ from the first word, and the rest of each
    /// prompt is its own.
    #[test]
    fn a_prefix_pool_draws_every_prefix_and_reports_which() {
        let p = Prompts::new(
            Source::Synthetic(TokenDist::Fixed { tokens: 8 }),
            PromptPrefix::Pool { count: 4, tokens: 12 },
            None,
            1,
        );
        assert_eq!(p.prefixes(), 4);
        let head = |s: &str| s.split(' ').take(12).collect::<Vec<_>>().join(" ");
        let mut rng = Rng::new(3);
        let mut by_prefix: Vec<Vec<String>> = vec![vec![]; 4];
        for _ in 0..100 {
            let d = p.draw(&mut rng);
            assert_eq!(d.text.split(' ').count(), 20);
            by_prefix[d.prefix.unwrap()].push(d.text);
        }
        for (i, texts) in by_prefix.iter().enumerate() {
            assert!(texts.len() > 10, "prefix {i} drawn {} times of 100", texts.len());
            assert!(texts.iter().all(|t| head(t) == head(&texts[0])), "prefix {i} is not one text");
            assert_ne!(texts[0], texts[1], "the rest of each prompt differs");
        }
        let firsts: std::collections::BTreeSet<String> = by_prefix.iter().map(|t| head(&t[0])).collect();
        assert_eq!(firsts.len(), 4, "four different prefixes");
        // `shared` is a pool of one, with the text it has always had.
        let one = Prompts::new(
            Source::Synthetic(TokenDist::Fixed { tokens: 8 }),
            PromptPrefix::Shared { tokens: 12 },
            None,
            1,
        );
        let d = one.draw(&mut Rng::new(3));
        assert_eq!((d.prefix, head(&d.text)), (Some(0), head(&by_prefix[0][0])));
    }

    #[test]
    fn file_prompts_get_a_unique_tag_unless_asked_not_to() {
        let texts = Arc::new(vec!["hello there".to_string()]);
        let mut rng = Rng::new(1);
        let tagged = Prompts::new(Source::Texts(texts.clone()), PromptPrefix::Unique, None, 1);
        let (a, b) = (tagged.draw(&mut rng).text, tagged.draw(&mut rng).text);
        assert!(a.ends_with(" hello there") && a.starts_with('['), "{a}");
        assert_ne!(a, b);
        let plain = Prompts::new(Source::Texts(texts), PromptPrefix::AsDrawn, None, 1);
        assert_eq!(plain.draw(&mut rng).text, "hello there");
    }
}
