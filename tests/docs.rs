//! The docs say what the code does: every diagnostic code, metric and node is documented.

mod common;

fn doc(name: &str) -> String {
    std::fs::read_to_string(common::root().join("docs").join(name)).unwrap()
}

#[test]
fn every_diagnostic_code_is_documented() {
    let text = doc("diagnostics.md");
    for code in benchctl::dsl::diag::Code::ALL {
        assert!(
            text.contains(&format!("`benchctl::{}`", code.as_str())),
            "docs/diagnostics.md lacks {}",
            code.as_str()
        );
    }
}

#[test]
fn metric_tables_match_the_catalogue() {
    let text = doc("metrics.md");
    assert!(
        text.contains(&benchctl::dsl::metrics::markdown_tables()),
        "docs/metrics.md is out of date: paste benchctl::dsl::metrics::markdown_tables() into it"
    );
}

#[test]
fn every_node_is_documented() {
    use benchctl::dsl::decode::*;
    let text = doc("scenario-language.md");
    let lists = [
        BODY_NODES,
        PHASE_NODES,
        SEARCH_NODES,
        INFERENCE_NODES,
        RETRIEVAL_NODES,
        KERNEL_NODES,
        SYNTHETIC_NODES,
        OPENAI_NODES,
        &["stage"],
    ];
    for node in lists.iter().flat_map(|l| l.iter()) {
        assert!(text.contains(&format!("`{node}`")), "docs/scenario-language.md lacks `{node}`");
    }
}

#[test]
fn exit_codes_match_help() {
    let text = doc("exit-codes.md");
    for code in 0..=5 {
        assert!(text.contains(&format!("| {code} |")), "docs/exit-codes.md lacks {code}");
    }
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    assert!(readme.contains(benchctl::exit::HELP_TABLE), "README lacks the exit code table of --help");
}

fn kdl_blocks(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = text;
    while let Some(start) = rest.find("```kdl\n") {
        let body = &rest[start + 7..];
        let end = body.find("```").expect("closed block");
        out.push(body[..end].to_string());
        rest = &body[end + 3..];
    }
    out
}

/// Examples in the docs parse and decode; the README's whole scenarios check clean.
#[test]
fn examples_in_docs_are_valid() {
    for name in ["README.md", "docs/scenario-language.md"] {
        let text = std::fs::read_to_string(common::root().join(name)).unwrap();
        let blocks = kdl_blocks(&text);
        assert!(!blocks.is_empty(), "{name} has no kdl examples");
        for block in blocks {
            let whole = block.trim_start().starts_with("scenario");
            let source = if whole { block.clone() } else { format!("scenario \"doc\" {{\n{block}\n}}\n") };
            let c = common::check_text(&source, &[]);
            // Fragments may name workloads or files defined elsewhere; nothing else may fail.
            let allowed = [
                "unknown-workload",
                "no-phases",
                "unknown-phase",
                "import-not-found",
                "missing-option",
                "duplicate-name",
            ];
            // The README's scenarios are complete and must check clean.
            let strict = whole && name == "README.md";
            let bad: Vec<_> = c
                .diagnostics
                .iter()
                .filter(|d| d.is_error() && (strict || !allowed.contains(&d.code.as_str())))
                .collect();
            assert!(bad.is_empty(), "{name} example does not check:\n{block}\n{}", common::rendered(&c));
        }
    }
}
