//! The retrieval workload end to end on small real indexes: exact search has recall 1, HNSW
//! reaches high recall with an ef sweep, vector files load (and malformed ones are clear
//! setup errors at the index).

mod common;

type Ran = (std::process::Output, String, Option<serde_json::Value>);

fn run(text: &str, files: &[(&str, Vec<u8>)]) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), text, files)
}

/// Runs in `dir` (kept by the caller, so that a cache folder in it outlives one run); the
/// default cache goes into the folder too.
fn run_in(dir: &std::path::Path, text: &str, files: &[(&str, Vec<u8>)]) -> Ran {
    for (n, b) in files {
        std::fs::write(dir.join(n), b).unwrap();
    }
    let file = dir.join("s.kdl");
    std::fs::write(&file, text).unwrap();
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args(["run".as_ref(), file.as_os_str(), "--out".as_ref(), out.as_os_str(), "--quiet".as_ref()])
        .env("NO_COLOR", "1")
        .env("BENCHCTL_CACHE", dir.join("default-cache"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let doc = std::fs::read_to_string(out.join("result.json")).ok().map(|t| serde_json::from_str(&t).unwrap());
    (o, err, doc)
}

fn scenario(index: &str, data: &str, extra: &str) -> String {
    format!(
        "scenario \"rag\" {{\n    seed 4\n    workload \"rag\" kind=\"retrieval\" {{\n        {index}\n        {data}\n        query top-k=10 count=200\n        {extra}\n    }}\n    phase \"p\" {{ drive \"rag\" concurrency=2 requests=400; }}\n    expect \"rag.recall.mean\" \">=\" \"90%\"\n}}\n"
    )
}

#[test]
fn exact_and_hnsw_indexes_with_recall_and_an_ef_sweep() {
    let (o, err, doc) =
        run(&scenario("index \"flat\" entries=3000 dim=16", "data synthetic clusters=30 spread=0.4", ""), &[]);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let w = &doc.unwrap()["benchmarks"]["rag"];
    assert_eq!(w["requests"], 400);
    assert_eq!(w["metrics"]["recall"]["min"], 1.0, "exact search misses nothing");
    assert_eq!(w["setup"]["index"]["backend"], "exact");

    let (o, err, doc) = run(
        &scenario(
            "index \"hnsw\" entries=3000 dim=16 metric=\"cosine\" m=12 ef-construction=64",
            "data synthetic clusters=30 spread=0.4",
            "ef-sweep 10 40 160",
        ),
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{err}");
    let w = &doc.unwrap()["benchmarks"]["rag"];
    let rows = w["setup"]["ef_sweep"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["ef"].as_u64().unwrap()).collect::<Vec<_>>(), [10, 40, 160]);
    let recalls: Vec<f64> = rows.iter().map(|r| r["recall"].as_f64().unwrap()).collect();
    assert!(recalls[2] >= 0.95 && recalls[2] >= recalls[0], "{recalls:?}");
    assert!(w["setup"]["index"]["build_time_s"].as_f64().unwrap() > 0.0);
    assert_eq!(w["setup"]["index"]["params"]["m"], 12);
}

/// A .npy file of `rows` x `dim` values, its dtype written as `descr` (`<f8` makes it wrong).
fn npy(rows: usize, dim: usize, descr: &str) -> Vec<u8> {
    let v = benchctl::retrieval::data::Vectors {
        dim,
        data: (0..rows * dim).map(|i| (i * 7919 % 1000) as f32 / 1000.0).collect(),
    };
    let mut b = v.to_npy();
    let at = b.windows(3).position(|w| w == b"<f4").unwrap();
    b[at..at + 3].copy_from_slice(descr.as_bytes());
    b
}

#[test]
fn vector_files_and_their_errors() {
    let (o, err, doc) = run(
        &scenario("index \"flat\" entries=500 dim=8", "data file=\"v.npy\"", "")
            .replace("count=200", "count=50 source=\"sample\" noise=0.001"),
        &[("v.npy", npy(500, 8, "<f4"))],
    );
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(doc.unwrap()["benchmarks"]["rag"]["setup"]["index"]["data"].as_str().unwrap().ends_with("v.npy"));

    let (o, err, _) =
        run(&scenario("index \"flat\" entries=500 dim=8", "data file=\"v.npy\"", ""), &[("v.npy", npy(500, 8, "<f8"))]);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("benchctl::setup-failed") && err.contains("float32"), "{err}");

    let (o, err, _) =
        run(&scenario("index \"flat\" entries=500 dim=4", "data file=\"v.npy\"", ""), &[("v.npy", npy(500, 8, "<f4"))]);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("dimension 8") && err.contains("dim=8"), "{err}");
}

fn index_facts(doc: &Option<serde_json::Value>) -> serde_json::Value {
    doc.as_ref().unwrap()["benchmarks"]["rag"]["setup"]["index"].clone()
}

fn sweep_recalls(doc: &Option<serde_json::Value>) -> Vec<f64> {
    let rows = doc.as_ref().unwrap()["benchmarks"]["rag"]["setup"]["ef_sweep"].as_array().unwrap().clone();
    rows.iter().map(|r| r["recall"].as_f64().unwrap()).collect()
}

/// Whether `v` holds a number within 1e-12 (relative) of `x` anywhere.
fn has_number(v: &serde_json::Value, x: f64) -> bool {
    match v {
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|y| (y - x).abs() <= 1e-12 * x.abs().max(1e-300)),
        serde_json::Value::Array(a) => a.iter().any(|e| has_number(e, x)),
        serde_json::Value::Object(o) => o.values().any(|e| has_number(e, x)),
        _ => false,
    }
}

#[test]
fn cached_indexes_and_ground_truth_hit_miss_and_rebuild_when_damaged() {
    for backend in ["usearch", "hnsw_rs"] {
        let dir = tempfile::tempdir().unwrap();
        let text = |m: u32| {
            scenario(
                &format!("index \"hnsw\" backend=\"{backend}\" entries=4000 dim=16 m={m} ef-construction=64"),
                "data synthetic clusters=40 spread=0.4",
                "ef-sweep 16 128\n        cache dir=\"c\"",
            )
        };
        // Miss: built and stored.
        let (o, err, first) = run_in(dir.path(), &text(12), &[]);
        assert_eq!(o.status.code(), Some(0), "{backend}: {err}");
        let f = index_facts(&first);
        assert_eq!(f["from_cache"], false);
        assert_eq!(f["backend"], backend);
        assert!(f["file_bytes"].as_u64().unwrap() > 4000 * 16 * 4, "{f}");
        // Hit: the same index (same answers) and ground truth come back from the cache.
        let (o, err, second) = run_in(dir.path(), &text(12), &[]);
        assert_eq!(o.status.code(), Some(0), "{backend}: {err}");
        let s = index_facts(&second);
        assert_eq!(s["from_cache"], true, "{s}");
        assert_eq!(s["ground_truth_from_cache"], true);
        assert_eq!(s["build_time_s"], f["build_time_s"], "a hit reports the build that made the entry");
        assert_eq!(sweep_recalls(&first), sweep_recalls(&second));
        assert!(sweep_recalls(&second)[1] >= 0.95, "{backend}: {:?}", sweep_recalls(&second));
        // Another parameter is another entry: a miss.
        let (o, err, third) = run_in(dir.path(), &text(8), &[]);
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert_eq!(index_facts(&third)["from_cache"], false);
        // Damage the first entry's index file: detected, reported, rebuilt.
        let entry = std::fs::read_dir(dir.path().join("c"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(backend))
            .find(|p| {
                // Compared as numbers: serde_json's default float parsing may be one ulp off
                // the printed text, so a text match flaked.
                let m: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(p.join("manifest.json")).unwrap()).unwrap();
                let want = f["build_time_s"].as_f64().unwrap();
                has_number(&m, want)
            })
            .expect("the first entry");
        let file = std::fs::read_dir(&entry)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.ends_with("manifest.json"))
            .max_by_key(|p| p.metadata().unwrap().len())
            .unwrap();
        let mut b = std::fs::read(&file).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x55;
        std::fs::write(&file, b).unwrap();
        let (o, err, fourth) = run_in(dir.path(), &text(12), &[]);
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert_eq!(index_facts(&fourth)["from_cache"], false, "a damaged entry is never used");
        let warnings = fourth.as_ref().unwrap()["warnings"].to_string();
        assert!(warnings.contains("damaged") && warnings.contains("rebuilt"), "{warnings}");
        // Builds on several threads are not deterministic: the rebuilt graph may differ a little.
        assert!(sweep_recalls(&fourth)[1] >= 0.95, "{:?}", sweep_recalls(&fourth));
    }
}

#[test]
fn usearch_and_hnsw_rs_in_one_scenario() {
    let text = r#"scenario "two" {
    seed 5
    workload "a" kind="retrieval" {
        index "hnsw" backend="usearch" entries=3000 dim=32 metric="dot" quantization="f16"
        query top-k=10 count=100 ef=128
        cache enabled=#false
    }
    workload "b" kind="retrieval" {
        index "hnsw" backend="hnsw_rs" entries=3000 dim=32 metric="cosine"
        query top-k=10 count=100 ef=128
        cache enabled=#false
    }
    phase "p" { drive "a" concurrency=2 requests=300; drive "b" concurrency=2 requests=300; }
    expect "a.recall.mean" ">=" "90%"
    expect "b.recall.mean" ">=" "90%"
}
"#;
    let (o, err, doc) = run(text, &[]);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let doc = doc.unwrap();
    assert_eq!(doc["benchmarks"]["a"]["setup"]["index"]["backend"], "usearch");
    assert_eq!(doc["benchmarks"]["b"]["setup"]["index"]["backend"], "hnsw_rs");
    assert_eq!(doc["benchmarks"]["a"]["requests"], 300);
    let a = &doc["benchmarks"]["a"]["setup"]["index"];
    assert_eq!(a["params"]["quantization"], "f16");
    // Each backend's default M: 16 for usearch, 32 for hnsw_rs (its frontier at 1M).
    assert_eq!(a["params"]["m"], 16);
    assert_eq!(doc["benchmarks"]["b"]["setup"]["index"]["params"]["m"], 32);
    assert!(doc["benchmarks"]["b"]["setup"]["index"]["params"].get("quantization").is_none());
    assert!(a["kernel"].as_str().is_some_and(|k| !k.is_empty()), "{a}");
    // hnsw_rs's dot distance is for unit vectors: other data get a clear error, not a panic.
    let (o, err, _) = run(&text.replace("metric=\"cosine\"", "metric=\"dot\""), &[]);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("unit vectors") && err.contains("usearch"), "{err}");
}

/// Ground truth and recall checked against a plain nested loop written here, on file data.
#[test]
fn recall_agrees_with_a_plain_nested_loop() {
    use benchctl::retrieval::{data::Vectors, exact, index::*};
    let data = benchctl::retrieval::data::clustered(2000, 12, 20, 0.5, 9, 0);
    let queries = benchctl::retrieval::data::clustered(60, 12, 20, 0.5, 9, 1);
    let b = data.to_npy();
    let data: Vectors = benchctl::retrieval::data::npy(&b).unwrap();
    let truth = exact::ground_truth(&data, &queries, 10, exact::Dist::L2);
    let idx = HnswRs::build(&data, exact::Dist::L2, &HnswParams { m: 6, ef_construction: 20, ..Default::default() });
    let (mut ours, mut theirs) = (0.0, 0.0);
    for (qi, gt) in truth.iter().enumerate() {
        let q = queries.row(qi);
        // Every distance in f64, sorted; ties by id.
        let mut all: Vec<(f64, u32)> = (0..data.len())
            .map(|i| (data.row(i).iter().zip(q).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>(), i as u32))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let top: Vec<u32> = all[..10].iter().map(|x| x.1).collect();
        let mut mine = gt.clone();
        let mut want = top.clone();
        mine.sort();
        want.sort();
        assert_eq!(mine, want, "exact top-10 of query {qi}");
        let got = idx.search(q, 10, 12).unwrap();
        ours += exact::recall(&got, gt);
        theirs += got.iter().filter(|id| top.contains(id)).count() as f64 / 10.0;
    }
    assert!((ours - theirs).abs() < 1e-9, "{ours} vs {theirs}");
}

fn minilm() -> Option<std::path::PathBuf> {
    common::fetched_model(benchctl::retrieval::embed::DEFAULT_MODEL)
}

const TOPICS: [(&str, [&str; 4]); 6] = [
    (
        "France",
        [
            "Paris is the capital of France.",
            "The Eiffel Tower stands in Paris.",
            "French wine comes from Bordeaux and Burgundy.",
            "Croissants are a French pastry.",
        ],
    ),
    (
        "cats",
        [
            "Cats sleep for most of the day.",
            "A kitten chased the ball of yarn.",
            "My cat purrs when it is happy.",
            "Lions and tigers are big cats.",
        ],
    ),
    (
        "databases",
        [
            "An index makes database lookups faster.",
            "SQL queries join tables on keys.",
            "Transactions keep the database consistent.",
            "Postgres stores rows in pages on disk.",
        ],
    ),
    (
        "weather",
        [
            "It will rain heavily tomorrow afternoon.",
            "The forecast says sunny skies all week.",
            "A storm knocked down trees last night.",
            "Snow fell in the mountains overnight.",
        ],
    ),
    (
        "football",
        [
            "The striker scored in the final minute.",
            "The goalkeeper saved a penalty.",
            "Fans sang in the stadium after the match.",
            "The team won the league this season.",
        ],
    ),
    (
        "cooking",
        [
            "Boil the pasta for ten minutes.",
            "Chop the onions before frying them.",
            "Bake the bread at two hundred degrees.",
            "Season the soup with salt and pepper.",
        ],
    ),
];

#[test]
fn a_text_corpus_embedded_with_minilm_finds_the_right_neighbours() {
    let Some(_) = minilm() else { return };
    let corpus: String = TOPICS.iter().flat_map(|t| t.1).map(|s| format!("{s}\n")).collect();
    let queries = "What is the capital city of France?\nMy kitten loves to nap.\nHow do database indexes speed up queries?\nWill it be raining tomorrow?\nWho scored the winning goal?\nHow long should spaghetti cook?\n";
    let text = r#"scenario "rag" {
    seed 1
    workload "rag" kind="retrieval" {
        index "flat" entries=1000 dim=384 metric="cosine"
        data text="corpus.txt"
        query top-k=4 source="file" file="q.txt"
        cache dir="c"
    }
    phase "p" { drive "rag" concurrency=1 requests=12; }
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let files = [("corpus.txt", corpus.into_bytes()), ("q.txt", queries.as_bytes().to_vec())];
    let (o, err, doc) = run_in(dir.path(), text, &files);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let f = index_facts(&doc);
    assert_eq!(f["entries"], 24);
    assert!(f["data"].as_str().unwrap().contains("24 texts"), "{f}");
    // The second run reads the embeddings from the cache.
    let (o, err, _) = run_in(dir.path(), text, &files);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let said = String::from_utf8_lossy(&o.stdout).to_string() + &err;
    assert!(!said.contains("embedding 24 texts"), "embedded again: {said}");

    // The neighbours themselves: each query's nearest texts are its topic's.
    use benchctl::retrieval::{embed::Embedder, exact};
    let e = Embedder::load(&minilm().unwrap()).unwrap();
    let texts: Vec<String> = TOPICS.iter().flat_map(|t| t.1).map(String::from).collect();
    let base = e.embed(&texts, &mut |_| {}).unwrap();
    let qs: Vec<String> = queries.lines().map(String::from).collect();
    let q = e.embed(&qs, &mut |_| {}).unwrap();
    for (i, topic) in TOPICS.iter().enumerate() {
        let top = exact::topk(&base, q.row(i), 1, exact::Dist::Dot);
        assert_eq!(
            top[0] as usize / 4,
            i,
            "query {:?} found {:?}, not a text about {}",
            qs[i],
            texts[top[0] as usize],
            topic.0
        );
    }
    // Unit length, and the same vector alone as in a padded batch (the mask is applied).
    let alone = e.embed(&texts[..1], &mut |_| {}).unwrap();
    let norm: f32 = alone.row(0).iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    let diff = alone.row(0).iter().zip(base.row(0)).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-4, "padding changed the embedding by {diff}");
}

#[test]
fn text_inputs_with_errors_are_clear_setup_failures() {
    let Some(_) = minilm() else { return };
    let text = |data: &str| {
        format!(
            "scenario \"t\" {{\n    workload \"rag\" kind=\"retrieval\" {{\n        index \"flat\" entries=10 dim=384\n        {data}\n        query count=2 source=\"sample\"\n    }}\n    phase \"p\" {{ drive \"rag\" concurrency=1 requests=2; }}\n}}\n"
        )
    };
    let (o, err, _) = run(
        &text("data text=\"c.jsonl\""),
        &[("c.jsonl", b"{\"text\": \"fine\"}\n{\"body\": \"no text\"}\n".to_vec())],
    );
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("c.jsonl:2") && err.contains("\"text\""), "{err}");
    let (o, err, _) = run(&text("data text=\"c.txt\" model=\"no-such-model\""), &[("c.txt", b"one\ntwo\n".to_vec())]);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no-such-model") && err.contains("config.json"), "{err}");
    let (o, err, _) = run(&text("data text=\"c.txt\"").replace("dim=384", "dim=128"), &[("c.txt", b"one\n".to_vec())]);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("dimension 384") && err.contains("dim=384"), "{err}");
}

/// The requests' ef is measured once, first, even when the sweep lists it too.
#[test]
fn the_sweep_measures_each_ef_once() {
    let text = scenario(
        "index \"hnsw\" entries=2000 dim=16 m=12 ef-construction=64",
        "data synthetic clusters=20 spread=0.4",
        "ef-sweep 10 40 160",
    )
    .replace("query top-k=10 count=200", "query top-k=10 count=100 ef=40");
    let (o, err, doc) = run(&text, &[]);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let rows = doc.unwrap()["benchmarks"]["rag"]["setup"]["ef_sweep"].as_array().unwrap().clone();
    assert_eq!(rows.iter().map(|r| r["ef"].as_u64().unwrap()).collect::<Vec<_>>(), [40, 10, 160]);
}
