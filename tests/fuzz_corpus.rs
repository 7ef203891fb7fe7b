//! The fuzzing campaign's regression corpus, replayed on stable Rust in CI: every seed
//! (the shipped scenarios, modules and templates), every input a campaign found worth
//! keeping, and every input that once crashed (fuzz/regressions) go through the same
//! harness as `cargo fuzz run check`. A stack overflow would abort this test binary.

use std::path::Path;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    v.retain(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')));
    v.sort();
    v
}

#[test]
fn the_fuzz_corpus_and_every_past_crash_pass_the_harness() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = inputs(&root.join("corpus/check"));
    assert!(seeds.len() >= 40, "the seed corpus holds the shipped scenarios and modules: {}", seeds.len());
    let regressions = inputs(&root.join("regressions"));
    assert!(!regressions.is_empty(), "fuzz/regressions keeps the inputs that crashed");
    // The harness recurses with the parser: give it the stack a main thread has.
    let all: Vec<_> = seeds.into_iter().chain(regressions).collect();
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            for p in &all {
                let bytes = std::fs::read(p).unwrap();
                let r = std::panic::catch_unwind(|| benchctl::fuzzing::exercise(&bytes));
                assert!(r.is_ok(), "{} fails the harness", p.display());
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
