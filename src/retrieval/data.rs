//! Vectors for retrieval: synthetic clustered data from the seed, and the file formats users
//! already have (.npy float32, .fvecs/.bvecs as in SIFT, JSONL with an embedding array).

use std::path::Path;

use crate::random::Rng;
use crate::workload::setup::SetupError;

/// Row-major vectors of one dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    pub dim: usize,
    pub data: Vec<f32>,
}

impl Vectors {
    pub fn len(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
    /// The vectors as a NumPy .npy file (float32, C order), which `npy` reads back.
    pub fn to_npy(&self) -> Vec<u8> {
        let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", self.len(), self.dim);
        // The header ends with a newline at a multiple of 64 bytes.
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((h.len() as u16).to_le_bytes());
        b.extend(h.as_bytes());
        b.extend(self.data.iter().flat_map(|x| x.to_le_bytes()));
        b
    }

    /// Scales every row to unit length (cosine similarity becomes the dot product).
    pub fn normalize(&mut self) {
        let d = self.dim;
        for row in self.data.chunks_mut(d) {
            let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            if n > 0.0 {
                row.iter_mut().for_each(|x| *x /= n);
            }
        }
    }
}

/// Clustered data: `clusters` centres with standard normal coordinates, each point a centre
/// plus Gaussian noise of standard deviation `spread`. `stream` separates the data from the
/// held-out queries drawn from the same centres.
pub fn clustered(n: usize, dim: usize, clusters: usize, spread: f64, seed: u64, stream: u64) -> Vectors {
    let mut c = Rng::new(seed);
    let centres: Vec<f32> = (0..clusters.max(1) * dim).map(|_| c.normal() as f32).collect();
    let mut data = vec![0f32; n * dim];
    let root = Rng::new(seed ^ 0xc1u64.wrapping_mul(stream + 1));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(16);
    let rows_per = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (t, part) in data.chunks_mut(rows_per * dim).enumerate() {
            let mut rng = root.fork(t as u64);
            let centres = &centres;
            s.spawn(move || {
                for row in part.chunks_mut(dim) {
                    let k = (rng.next_u64() % clusters.max(1) as u64) as usize;
                    for (j, x) in row.iter_mut().enumerate() {
                        *x = centres[k * dim + j] + (spread * rng.normal()) as f32;
                    }
                }
            });
        }
    });
    Vectors { dim, data }
}

/// Why a vector file could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum VectorFileError {
    /// The bytes are not the format the extension names (magic, header, framing, text).
    Format(String),
    /// A form of the format benchctl does not read (a dtype, a version, Fortran order).
    Unsupported(String),
    /// Sizes that disagree: with each other, or with the file's length.
    Shape(String),
    /// One line of a JSON Lines file (1-based).
    Line { line: usize, message: String },
    /// No vector at all.
    Empty(&'static str),
}

impl std::fmt::Display for VectorFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VectorFileError::Format(m) | VectorFileError::Unsupported(m) | VectorFileError::Shape(m) => f.write_str(m),
            VectorFileError::Line { line, message } => write!(f, "line {line}: {message}"),
            VectorFileError::Empty(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for VectorFileError {}

fn bad(path: &Path, what: impl std::fmt::Display) -> SetupError {
    SetupError::input(
        format!("`{}` is not a valid vector file: {what}", path.display()),
        "use .npy (float32, 2-D, C order), .fvecs, .bvecs, or .jsonl with an `embedding` array per line",
    )
}

/// Reads a vector file by its extension.
pub fn read(path: &Path) -> Result<Vectors, SetupError> {
    let bytes = crate::dsl::source::read_bounded(path, usize::MAX - 1).map_err(|e| {
        SetupError::input(
            format!("cannot read the vector file `{}`: {e}", path.display()),
            "paths are relative to the scenario's folder",
        )
    })?;
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "npy" => npy(&bytes).map_err(|e| bad(path, e)),
        "fvecs" => vecs(&bytes, 4).map_err(|e| bad(path, e)),
        "bvecs" => vecs(&bytes, 1).map_err(|e| bad(path, e)),
        "jsonl" => jsonl(&bytes).map_err(|e| bad(path, e)),
        other => Err(bad(path, format!("unknown extension `.{other}`"))),
    }
}

/// NumPy's .npy format, version 1-3: magic, header length, a Python dict literal header.
pub fn npy(b: &[u8]) -> Result<Vectors, VectorFileError> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(VectorFileError::Format("no NumPy magic number".into()));
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return Err(VectorFileError::Unsupported(format!("unsupported .npy version {v}"))),
    };
    let header = b.get(start..start + hlen).ok_or_else(|| VectorFileError::Format("truncated header".into()))?;
    let header = std::str::from_utf8(header).map_err(|_| VectorFileError::Format("header is not text".into()))?;
    let field = |k: &str| {
        let i = header.find(&format!("'{k}'"))?;
        Some(header[i + k.len() + 2..].trim_start().trim_start_matches(':').trim_start())
    };
    let descr = field("descr").ok_or_else(|| VectorFileError::Format("header has no descr".into()))?;
    if !(descr.starts_with("'<f4'") || descr.starts_with("'float32'")) {
        let dtype = descr.split(',').next().unwrap_or("");
        return Err(VectorFileError::Unsupported(format!("dtype {dtype} (need little-endian float32 '<f4')")));
    }
    if field("fortran_order").is_some_and(|f| f.starts_with("True")) {
        return Err(VectorFileError::Unsupported("Fortran order (save with np.ascontiguousarray)".into()));
    }
    let shape = field("shape").ok_or_else(|| VectorFileError::Format("header has no shape".into()))?;
    let inner = shape.trim_start_matches('(').split(')').next().unwrap_or("");
    let dims: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| VectorFileError::Shape(format!("shape {shape}"))))
        .collect::<Result<_, _>>()?;
    let [n, dim] = dims[..] else { return Err(VectorFileError::Shape(format!("shape ({inner}) is not 2-D"))) };
    let body = &b[start + hlen..];
    if body.len() != n * dim * 4 {
        let (got, want) = (body.len(), n * dim * 4);
        return Err(VectorFileError::Shape(format!("{got} data bytes for a {n} x {dim} float32 array (want {want})")));
    }
    Ok(Vectors { dim, data: body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect() })
}

/// .fvecs (`width` 4, float32) and .bvecs (`width` 1, u8): each vector is an int32 dimension
/// followed by its values.
pub fn vecs(b: &[u8], width: usize) -> Result<Vectors, VectorFileError> {
    let mut data = vec![];
    let mut dim = None;
    let mut at = 0;
    let mut row = 0;
    while at < b.len() {
        let d = b.get(at..at + 4).ok_or_else(|| VectorFileError::Format(format!("truncated at vector {row}")))?;
        let d = i32::from_le_bytes([d[0], d[1], d[2], d[3]]);
        if d <= 0 || d > 1 << 16 {
            return Err(VectorFileError::Shape(format!("vector {row} declares dimension {d}")));
        }
        let d = d as usize;
        if *dim.get_or_insert(d) != d {
            let first = dim.unwrap_or(0);
            return Err(VectorFileError::Shape(format!("vector {row} has dimension {d}, the first had {first}")));
        }
        let body = b
            .get(at + 4..at + 4 + d * width)
            .ok_or_else(|| VectorFileError::Format(format!("vector {row} is truncated")))?;
        if width == 4 {
            data.extend(body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        } else {
            data.extend(body.iter().map(|&x| x as f32));
        }
        at += 4 + d * width;
        row += 1;
    }
    let dim = dim.ok_or(VectorFileError::Empty("the file is empty"))?;
    Ok(Vectors { dim, data })
}

/// One JSON object per line with an `embedding` (or `vector`) array of numbers.
pub fn jsonl(b: &[u8]) -> Result<Vectors, VectorFileError> {
    let text = std::str::from_utf8(b).map_err(|_| VectorFileError::Format("not UTF-8 text".into()))?;
    let mut data = vec![];
    let mut dim = None;
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = |message: String| VectorFileError::Line { line: i + 1, message };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        let arr = v
            .get("embedding")
            .or_else(|| v.get("vector"))
            .and_then(|a| a.as_array())
            .ok_or_else(|| at("no `embedding` array".into()))?;
        if *dim.get_or_insert(arr.len()) != arr.len() || arr.is_empty() {
            return Err(at(format!("{} values, the first line had {}", arr.len(), dim.unwrap_or(0))));
        }
        for x in arr {
            data.push(x.as_f64().ok_or_else(|| at("a value is not a number".into()))? as f32);
        }
    }
    Ok(Vectors { dim: dim.ok_or(VectorFileError::Empty("the file holds no vector"))?, data })
}

/// Whether a path names a vector file by its extension (.npy, .fvecs, .bvecs); `.jsonl` and
/// `.txt` may hold texts.
pub fn is_vector_file(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("npy" | "fvecs" | "bvecs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A .npy file of `v`, with its dtype or shape text replaced to make it malformed.
    fn npy_bytes(v: &Vectors, from: &str, to: &str) -> Vec<u8> {
        assert_eq!(from.len(), to.len(), "keep the header's length");
        let mut b = v.to_npy();
        let at = b.windows(from.len()).position(|w| w == from.as_bytes()).unwrap();
        b[at..at + to.len()].copy_from_slice(to.as_bytes());
        b
    }

    #[test]
    fn formats_and_their_errors() {
        let src = Vectors { dim: 2, data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] };
        let v = npy(&src.to_npy()).unwrap();
        assert_eq!((v.len(), v.dim, v.row(2)), (3, 2, &[5.0f32, 6.0][..]));
        assert!(npy(&npy_bytes(&src, "<f4", "<f8")).unwrap_err().to_string().contains("float32"));
        assert!(npy(&npy_bytes(&src, "(3, 2)", "(3, 3)")).unwrap_err().to_string().contains("data bytes"));
        assert!(npy(&npy_bytes(&src, "(3, 2)", "(6,)  ")).unwrap_err().to_string().contains("not 2-D"));
        assert!(npy(b"not numpy at all").unwrap_err().to_string().contains("magic"));

        let mut f = vec![];
        for row in [[1.0f32, 2.0], [3.0, 4.0]] {
            f.extend(2i32.to_le_bytes());
            f.extend(row.iter().flat_map(|x| x.to_le_bytes()));
        }
        assert_eq!(vecs(&f, 4).unwrap().data, [1.0, 2.0, 3.0, 4.0]);
        assert!(vecs(&f[..f.len() - 1], 4).unwrap_err().to_string().contains("truncated"));
        let bv: Vec<u8> = [3i32.to_le_bytes().to_vec(), vec![1, 2, 255]].concat();
        assert_eq!(vecs(&bv, 1).unwrap().data, [1.0, 2.0, 255.0]);
        assert!(vecs(&[0, 0, 0, 0], 1).unwrap_err().to_string().contains("dimension 0"));

        let j = b"{\"embedding\": [1, 2.5]}\n\n{\"vector\": [3, 4]}\n";
        assert_eq!(jsonl(j).unwrap().data, [1.0, 2.5, 3.0, 4.0]);
        assert!(jsonl(b"{\"embedding\": [1, 2]}\n{\"embedding\": [1]}\n").unwrap_err().to_string().contains("line 2"));
        assert!(jsonl(b"{\"text\": \"x\"}\n").unwrap_err().to_string().contains("no `embedding`"));
    }

    #[test]
    fn clustered_data_is_seeded() {
        let a = clustered(1000, 8, 10, 0.1, 3, 0);
        assert_eq!(a, clustered(1000, 8, 10, 0.1, 3, 0));
        assert_ne!(a.data, clustered(1000, 8, 10, 0.1, 3, 1).data);
        assert_eq!((a.len(), a.dim), (1000, 8));
    }
}
