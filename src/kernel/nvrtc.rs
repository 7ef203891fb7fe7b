//! Run-time compilation of CUDA C with NVRTC, and NVRTC's log turned into located messages
//! that point back into the kernel source (a `.cu` file or a string in the scenario).

/// One message of the compiler, at a line (1-based) and column (1-based, when NVRTC drew a
/// caret under the source line).
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub line: usize,
    pub column: Option<usize>,
    pub error: bool,
    pub message: String,
}

/// Parses NVRTC's log for `name` (the program name given to NVRTC):
///
/// ```text
/// saxpy.cu(4): error: identifier "yy" is undefined
///       y[i] = a * x[i] + yy[i];
///                         ^
/// ```
pub fn parse_log(log: &str, name: &str) -> Vec<Located> {
    const ECHO_INDENT: usize = 2;
    let lines: Vec<&str> = log.lines().collect();
    let mut out = vec![];
    let prefix = format!("{name}(");
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        i += 1;
        let Some(rest) = l.strip_prefix(&prefix) else { continue };
        let Some((num, tail)) = rest.split_once("): ") else { continue };
        let Ok(line) = num.parse::<usize>() else { continue };
        let (error, message) = if let Some(m) = tail.strip_prefix("error: ") {
            (true, m)
        } else if let Some(m) = tail.strip_prefix("warning") {
            // "warning #177-D: variable ..." or "warning: ..."
            (false, m.split_once(": ").map_or(m, |(_, m)| m))
        } else if let Some(m) = tail.strip_prefix("catastrophic error: ") {
            (true, m)
        } else {
            continue;
        };
        // NVRTC echoes the source line, then a caret line under the offending column.
        let mut column = None;
        if i + 1 < lines.len() && lines[i + 1].trim() == "^" {
            // The echo is the source line behind a two-space prefix, and so is the caret.
            let caret = lines[i + 1].find('^').unwrap_or(0);
            column = Some(caret.saturating_sub(ECHO_INDENT) + 1);
            i += 2;
        }
        out.push(Located { line, column, error, message: message.trim().to_string() });
    }
    out
}

/// Why a kernel did not compile.
#[derive(Debug, Clone, PartialEq)]
pub enum CompileFailure {
    /// libnvrtc could not be loaded.
    NoNvrtc(String),
    /// The source has errors: the full log and the messages found in it.
    Errors {
        log: String,
        located: Vec<Located>,
    },
    Other(String),
}

/// CompileOptions of one compilation.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// e.g. `sm_90`; NVRTC's default when `None`.
    pub arch: Option<String>,
    pub fast_math: bool,
    pub defines: Vec<(String, Option<String>)>,
}

impl CompileOptions {
    pub fn flags(&self) -> Vec<String> {
        let mut v = vec![];
        if let Some(a) = &self.arch {
            v.push(format!("--gpu-architecture={a}"));
        }
        if self.fast_math {
            v.push("--use_fast_math".into());
        }
        for (k, val) in &self.defines {
            v.push(match val {
                Some(val) => format!("-D{k}={val}"),
                None => format!("-D{k}"),
            });
        }
        v
    }
}

/// Whether libnvrtc can be loaded (always true in the CUDA build, which links it).
pub fn available() -> bool {
    #[cfg(not(feature = "cuda"))]
    {
        // SAFETY: only tries to open the library by its usual names.
        unsafe { cudarc::nvrtc::sys::is_culib_present() }
    }
    #[cfg(feature = "cuda")]
    {
        true
    }
}

/// Compiles `src` (named `name` in messages) to PTX.
pub fn compile(src: &str, name: &str, opts: &CompileOptions) -> Result<cudarc::nvrtc::Ptx, CompileFailure> {
    if !available() {
        return Err(CompileFailure::NoNvrtc(
            "libnvrtc (the CUDA run-time compiler) was not found on the library path".into(),
        ));
    }
    let options =
        cudarc::nvrtc::CompileOptions { options: opts.flags(), name: Some(name.to_string()), ..Default::default() };
    let src = src.to_string();
    // cudarc panics on a missing symbol; keep that from taking the process down.
    match std::panic::catch_unwind(move || cudarc::nvrtc::compile_ptx_with_opts(src, options)) {
        Ok(Ok(ptx)) => Ok(ptx),
        Ok(Err(cudarc::nvrtc::CompileError::CompileError { log, .. })) => {
            let log = log.to_string_lossy().into_owned();
            let located = parse_log(&log, name);
            Err(CompileFailure::Errors { log, located })
        }
        Ok(Err(e)) => Err(CompileFailure::Other(format!("NVRTC failed: {e:?}"))),
        Err(_) => {
            Err(CompileFailure::NoNvrtc("libnvrtc could not be used (a symbol is missing: an older CUDA?)".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Logs written by NVRTC 13.0 (nvidia-cuda-nvrtc 13.0 from PyPI) for these sources:
    // saxpy.cu line 4 is "        y[i] = a * x[i] + yy[i];"; k.cu is
    // "extern \"C\" __global__ void k(int* p) {\n    int z;\n    return\n}\n".
    const UNDEFINED: &str = "saxpy.cu(4): error: identifier \"yy\" is undefined\n          y[i] = a * x[i] + yy[i];\n                            ^\n\n1 error detected in the compilation of \"saxpy.cu\".\n";
    const TWO: &str = "k.cu(4): error: expected an expression\n  }\n  ^\n\nk.cu(4): error: expected a \";\"\n  }\n  ^\n\nk.cu(2): warning #177-D: variable \"z\" was declared but never referenced\n      int z;\n          ^\n\nRemark: The warnings can be suppressed with \"-diag-suppress <warning-number>\"\n\n2 errors detected in the compilation of \"k.cu\".\n";

    #[test]
    fn errors_with_lines_and_columns() {
        let v = parse_log(UNDEFINED, "saxpy.cu");
        assert_eq!(
            v,
            [Located { line: 4, column: Some(27), error: true, message: "identifier \"yy\" is undefined".into() }]
        );
        let v = parse_log(TWO, "k.cu");
        assert_eq!(v.len(), 3);
        assert_eq!((v[0].line, v[0].column, v[0].error), (4, Some(1), true));
        assert_eq!(v[1].message, "expected a \";\"");
        assert_eq!((v[2].line, v[2].column, v[2].error), (2, Some(9), false));
        assert_eq!(v[2].message, "variable \"z\" was declared but never referenced");
        // Other programs' names and summary lines are not messages.
        assert!(parse_log(UNDEFINED, "other.cu").is_empty());
    }

    #[test]
    fn flags() {
        let o = CompileOptions {
            arch: Some("sm_90".into()),
            fast_math: true,
            defines: vec![("N".into(), Some("1024".into())), ("FAST".into(), None)],
        };
        assert_eq!(o.flags(), ["--gpu-architecture=sm_90", "--use_fast_math", "-DN=1024", "-DFAST"]);
    }
}
