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

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("stdlib");
    println!("cargo:rerun-if-changed=stdlib");
    let mut files = vec![];
    collect(&root, &mut files);
    files.sort();
    let mut code = String::from("/// Built-in stdlib modules: (path relative to stdlib/, contents).\npub static BUILTIN_STDLIB: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
        writeln!(code, "    ({rel:?}, include_str!({:?})),", f.display().to_string()).unwrap();
    }
    code.push_str("];\n");
    let scenarios = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("scenarios");
    println!("cargo:rerun-if-changed=scenarios");
    let mut files = vec![];
    collect(&scenarios, &mut files);
    files.sort();
    code.push_str(
        "/// Built-in scenarios: (name without .kdl, contents).\npub static BUILTIN_SCENARIOS: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        writeln!(code, "    ({name:?}, include_str!({:?})),", f.display().to_string()).unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("stdlib.rs");
    std::fs::write(out, code).unwrap();
}
