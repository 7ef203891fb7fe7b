//! "Did you mean" suggestions for misspelled names.

/// The candidate closest to `input`, if it is close enough to be a plausible typo.
pub fn closest<'a, I, S>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + 'a + ?Sized,
{
    let lower = input.to_ascii_lowercase();
    let mut best: Option<(f64, &'a str)> = None;
    for c in candidates {
        let c = c.as_ref();
        let score = strsim::jaro_winkler(&lower, &c.to_ascii_lowercase());
        let edits = strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase());
        // Accept small edit distances, or strong prefix similarity for longer names.
        let plausible = edits <= (c.len().max(input.len()) / 3).max(1) || score >= 0.88;
        if plausible && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// A help line: "did you mean `x`?" or the list of accepted names.
pub fn help_for<'a, S: AsRef<str> + 'a + ?Sized>(input: &str, candidates: &'a [&'a S], what: &str) -> String {
    match closest(input, candidates.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => list_help(candidates, what),
    }
}

/// "expected one of: a, b, c" (shortened for long lists).
pub fn list_help<S: AsRef<str> + ?Sized>(candidates: &[&S], what: &str) -> String {
    if candidates.is_empty() {
        return format!("no {what} is accepted here");
    }
    let names: Vec<String> = candidates.iter().take(12).map(|c| format!("`{}`", c.as_ref())).collect();
    let more = if candidates.len() > 12 { ", ..." } else { "" };
    format!("expected one of the {what}: {}{more}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos() {
        assert_eq!(closest("duraton", ["duration", "rate"].iter()), Some("duration"));
        assert_eq!(closest("concurency", ["rate", "concurrency"].iter()), Some("concurrency"));
        assert_eq!(closest("xyz", ["duration", "rate"].iter()), None);
    }
}
