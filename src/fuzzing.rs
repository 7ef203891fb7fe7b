//! The front end's fuzzing harness: what `cargo fuzz` (fuzz/) runs on each input, and what
//! the regression test (tests/fuzz_corpus.rs) runs on every saved input in CI. An input is
//! read like a scenario file, checked, planned when valid, and formatted; anything that
//! panics, or a diagnostic whose span leaves its file, is a bug. A stack overflow aborts the
//! process, which the fuzzer reports as a crash too.

use crate::dsl::{self, diag, format, source, LoadOptions};

/// Runs one input through the front end. Panics on a bug (that is how fuzzers see them).
pub fn exercise(data: &[u8]) {
    let Ok(text) = source::text_from_bytes(data.to_vec(), "fuzz.kdl") else { return };
    let c = crate::check::check_source("fuzz.kdl", None, &text, &LoadOptions::default());
    check_spans(&c);
    if let Some(valid) = &c.scenario {
        let plan = crate::plan::build(valid, &c.sources);
        let _ = crate::plan::render_text(&plan);
        let _ = serde_json::to_string(&plan);
    }
    if let Ok(formatted) = format::format_source(&text) {
        let again = format::format_source(&formatted);
        assert!(again.is_ok(), "formatted text does not format again:\n{formatted}");
        assert_eq!(again.ok().as_deref(), Some(formatted.as_str()), "formatting is not idempotent");
    }
}

/// Every label of every diagnostic lies inside its file, on character boundaries, and the
/// diagnostics render (as graphics and as JSON) without panicking. Panics otherwise.
pub fn check_spans(c: &dsl::Checked) {
    for d in &c.diagnostics {
        for l in &d.labels {
            let file = &c.sources.get(l.span.file).text;
            assert!(
                l.span.end() <= file.len(),
                "{:?}: span ends at {} beyond {} bytes",
                d.code,
                l.span.end(),
                file.len()
            );
            assert!(
                file.is_char_boundary(l.span.start) && file.is_char_boundary(l.span.end()),
                "{:?}: span off a character boundary",
                d.code
            );
        }
        let _ = diag::to_json(d, &c.sources);
    }
    let _ = diag::render(&c.diagnostics, &c.sources, false, 80);
}
