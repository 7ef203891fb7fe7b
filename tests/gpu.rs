//! The GPU paths on a machine without a GPU: kernels compile with the real NVRTC (from the
//! PyPI wheel nvidia-cuda-nvrtc; CI sets BENCHCTL_NVRTC_LIB to its lib folder) and their
//! errors point into the source; without a driver a kernel workload stops clearly, or is
//! skipped with `fallback="cpu"`; GPU and energy probes report why they have no data.

use std::path::PathBuf;
use std::process::Output;

/// The folder holding libnvrtc, or `None` (tests skipped) unless BENCHCTL_REQUIRE_NVRTC is set.
fn nvrtc_lib() -> Option<PathBuf> {
    let dir = std::env::var_os("BENCHCTL_NVRTC_LIB").map(PathBuf::from).filter(|d| d.join("libnvrtc.so.13").exists());
    if dir.is_none() {
        assert!(
            std::env::var_os("BENCHCTL_REQUIRE_NVRTC").is_none(),
            "BENCHCTL_NVRTC_LIB does not hold libnvrtc.so.13"
        );
        eprintln!("skipped: no libnvrtc (set BENCHCTL_NVRTC_LIB)");
    }
    dir
}

/// Whether this machine has an NVIDIA driver (then the no-GPU expectations do not apply).
fn has_driver() -> bool {
    [
        "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
        "/usr/local/nvidia/lib64/libcuda.so.1",
        "/lib/x86_64-linux-gnu/libcuda.so.1",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
}

fn run(
    text: &str,
    files: &[(&str, &str)],
    lib: Option<&PathBuf>,
) -> (Output, String, Option<serde_json::Value>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let file = dir.path().join("s.kdl");
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("out");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_benchctl"));
    cmd.args(["run".as_ref(), file.as_os_str(), "--out".as_ref(), out.as_os_str(), "--quiet".as_ref()])
        .env("NO_COLOR", "1")
        .env("BENCHCTL_CACHE", dir.path().join("cache"));
    if let Some(lib) = lib {
        cmd.env("LD_LIBRARY_PATH", lib);
    }
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let doc = std::fs::read_to_string(out.join("result.json")).ok().map(|t| serde_json::from_str(&t).unwrap());
    (o, err, doc, dir)
}

const SAXPY: &str = "extern \"C\" __global__ void saxpy(float a, const float* x, float* y, unsigned n)\n{\n    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;\n    if (i < n) {\n        y[i] = a * x[i] + y[i];\n    }\n}\n";

fn kernel_scenario(source: &str, device: &str) -> String {
    format!(
        r#"scenario "k" {{
    device "{device}"
    workload "saxpy" kind="kernel" {{
        {source}
        entry "saxpy"
        grid 4
        block 256
        buffer "x" type="f32" len=1024 init="random" seed=1
        buffer "y" type="f32" len=1024 init="constant" value=1.0
        args (f32)2.0 "x" "y" (u32)1024
        rates bytes="12KiB" flops=2048
        check buffer="y" expect=3.0 tolerance=0.5
    }}
    workload "cpu" kind="synthetic" {{
        latency "fixed" value="1ms"
    }}
    phase "p" duration="1s" {{
        drive "saxpy" concurrency=1
        drive "cpu" concurrency=1
    }}
    expect "saxpy.gb_s" ">" 1
    expect "cpu.latency.p50" "<" "50ms"
}}
"#
    )
}

#[test]
fn compile_errors_in_inline_kernels_point_into_the_scenario() {
    let Some(lib) = nvrtc_lib() else { return };
    let source = "source \"\"\"\n            extern \"C\" __global__ void saxpy(float a, const float* x, float* y, unsigned n) {\n                unsigned i = blockIdx.x * blockDim.x + threadIdx.x;\n                if (i < n) y[i] = a * x[i] + yy[i];\n            }\n            \"\"\"";
    let (o, err, doc, _d) = run(&kernel_scenario(source, "cuda:0"), &[], Some(&lib));
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(doc.is_none());
    assert!(err.contains("NVRTC could not compile `saxpy.cu` (1 error)"), "{err}");
    assert!(err.contains("CUDA compile error: line 3: identifier \"yy\" is undefined"), "{err}");
    // Line 3 of the kernel is line 7 of the scenario; `yy` starts at column 46 there.
    assert!(err.contains("s.kdl:7:46"), "{err}");
}

#[test]
fn compile_errors_in_cu_files_point_into_the_file() {
    let Some(lib) = nvrtc_lib() else { return };
    let broken = std::fs::read_to_string("tests/fixtures/kernels/broken.cu").unwrap();
    let (o, err, _, _d) =
        run(&kernel_scenario("source file=\"broken.cu\"", "cuda:0"), &[("broken.cu", &broken)], Some(&lib));
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("CUDA compile error: line 6: identifier \"yy\" is undefined"), "{err}");
    assert!(err.contains("broken.cu:6:27"), "{err}");
}

#[test]
fn a_kernel_without_a_gpu_stops_with_a_clear_error() {
    let Some(lib) = nvrtc_lib() else { return };
    if has_driver() {
        return;
    }
    let (o, err, doc, _d) =
        run(&kernel_scenario("source file=\"saxpy.cu\"", "cuda:0"), &[("saxpy.cu", SAXPY)], Some(&lib));
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(doc.is_none());
    assert!(err.contains("needs the NVIDIA driver") && err.contains("libcuda.so.1"), "{err}");
}

#[test]
fn fallback_skips_gpu_workloads_and_their_expectations() {
    if has_driver() {
        return;
    }
    // No NVRTC needed: a skipped workload is not compiled.
    let (o, err, doc, dir) =
        run(&kernel_scenario("source file=\"saxpy.cu\"", "cuda:0\" fallback=\"cpu"), &[("saxpy.cu", SAXPY)], None);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let doc = doc.unwrap();
    let setup = &doc["benchmarks"]["saxpy"]["setup"];
    assert!(setup["skipped"].as_str().unwrap().contains("libcuda.so.1"), "{setup}");
    assert!(doc["warnings"].to_string().contains("workload `saxpy` is skipped"));
    let scores = &doc["benchmarks"]["saxpy"]["target_scores"];
    assert_eq!(scores["saxpy.gb_s > 1"]["status"], "skipped", "{scores}");
    assert_eq!(doc["benchmarks"]["cpu"]["target_scores"]["cpu.latency.p50 < 50ms"]["status"], "pass");
    assert_eq!(doc["overall_assessment"]["targets_met"], 1);
    // JUnit marks it skipped.
    let junit = std::process::Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args([
            "report".as_ref(),
            dir.path().join("out/result.json").as_os_str(),
            "--junit".as_ref(),
            dir.path().join("j.xml").as_os_str(),
        ])
        .output()
        .unwrap();
    assert_eq!(junit.status.code(), Some(0));
    let xml = std::fs::read_to_string(dir.path().join("j.xml")).unwrap();
    assert!(xml.contains("skipped=\"1\"") && xml.contains("<skipped message="), "{xml}");
}

#[test]
fn gpu_and_energy_probes_say_why_they_have_no_data() {
    if has_driver() {
        return;
    }
    let text = "scenario \"p\" {\n    workload \"w\" kind=\"synthetic\" {\n        latency \"fixed\" value=\"1ms\"\n    }\n    phase \"p\" duration=\"1s\" { drive \"w\" concurrency=1; }\n    probe \"gpu\" every=\"100ms\"\n    probe \"energy\" every=\"100ms\"\n}\n";
    let (o, err, doc, _d) = run(text, &[], None);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let doc = doc.unwrap();
    let gpu = doc["probes"]["gpu"]["unavailable"].as_str().unwrap();
    assert!(gpu.contains("NVML"), "{gpu}");
    let energy = doc["probes"]["energy"]["unavailable"].as_str().unwrap_or("");
    if !std::path::Path::new("/sys/class/powercap/intel-rapl:0/energy_uj").exists() {
        assert!(energy.contains("RAPL") && energy.contains("NVML"), "{energy}");
    }
    assert_eq!(doc["system_info"]["gpus"], serde_json::json!([]));
}
