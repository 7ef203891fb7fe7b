//! The retrieval workload end to end on small real indexes: exact search has recall 1, HNSW
//! reaches high recall with an ef sweep, vector files load (and malformed ones are clear
//! setup errors at the index).

fn run(text: &str, files: &[(&str, Vec<u8>)]) -> (std::process::Output, String, Option<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    for (n, b) in files {
        std::fs::write(dir.path().join(n), b).unwrap();
    }
    let file = dir.path().join("s.kdl");
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("out");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args(["run".as_ref(), file.as_os_str(), "--out".as_ref(), out.as_os_str(), "--quiet".as_ref()])
        .env("NO_COLOR", "1")
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
