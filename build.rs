//! Embeds the standard library (stdlib/**/*.kdl) and the shipped scenarios (scenarios/*.kdl)
//! in the binary, so `use "std/..."` and `benchctl run quick` work from any install.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "kdl") {
            out.push(p);
        }
    }
}

/// Appends `pub static NAME: &[(&str, &str)]` to `code`: every .kdl file under `folder` of
/// the package as (its key, its contents), in path order; `key` names a file from its path
/// relative to the folder.
fn embed(code: &mut String, doc: &str, name: &str, folder: &str, key: impl Fn(&Path) -> String) {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join(folder);
    println!("cargo:rerun-if-changed={folder}");
    let mut files = vec![];
    collect(&root, &mut files);
    files.sort();
    writeln!(code, "/// {doc}\npub static {name}: &[(&str, &str)] = &[").unwrap();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let k = key(f.strip_prefix(&root).unwrap());
        writeln!(code, "    ({k:?}, include_str!({:?})),", f.display().to_string()).unwrap();
    }
    code.push_str("];\n");
}

fn main() {
    let mut code = String::new();
    embed(
        &mut code,
        "Built-in stdlib modules: (path relative to stdlib/, contents).",
        "BUILTIN_STDLIB",
        "stdlib",
        |rel| rel.to_string_lossy().replace('\\', "/"),
    );
    embed(&mut code, "Built-in scenarios: (name without .kdl, contents).", "BUILTIN_SCENARIOS", "scenarios", |rel| {
        rel.file_stem().unwrap().to_string_lossy().into_owned()
    });
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("stdlib.rs");
    std::fs::write(out, code).unwrap();
}
