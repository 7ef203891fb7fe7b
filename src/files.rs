//! Writing files so that an interruption never leaves a part of one, and never replaces
//! what is not a regular file.
//!
//! The rules (docs/running.md, "Output files"):
//! - a regular file, or a path that does not exist yet, is replaced atomically: a temporary
//!   file in the same folder, flushed to disk, renamed over the target; the temporary file is
//!   removed on every error path (a full disk included);
//! - a symbolic link is followed and its target gets the same rules (the link stays a link);
//! - a device, FIFO or socket is written into directly (`--json /dev/stdout` works, and
//!   `/dev/null` stays a device);
//! - a folder is refused.

use std::fs::{File, OpenOptions};
use std::io::{Error, ErrorKind, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` by the rules above.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let target = resolve_links(path)?;
    match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => Err(Error::new(ErrorKind::IsADirectory, "it is a folder; name a file inside it")),
        Ok(m) if !m.is_file() => {
            let mut f = OpenOptions::new().write(true).open(&target)?;
            f.write_all(bytes)?;
            f.flush()
        }
        _ => replace(&target, bytes),
    }
}

/// The path a chain of symbolic links ends at (which may not exist yet); `path` itself when
/// it is not a link.
fn resolve_links(path: &Path) -> std::io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(Error::other("too many levels of symbolic links"))
}

fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "result".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp).or_else(|e| {
            // A temporary file left by a killed process of the same id: take it over.
            if e.kind() == ErrorKind::AlreadyExists {
                File::create(&tmp)
            } else {
                Err(e)
            }
        })?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Creates `dir` and proves a file can be written there (and removed), so that a run learns
/// before its first phase, not after its last, that its results would have nowhere to go.
pub fn check_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".benchctl-write-check-{}", std::process::id()));
    let r = File::create(&probe).and_then(|mut f| f.write_all(b"ok").and_then(|_| f.sync_all()));
    let _ = std::fs::remove_file(&probe);
    r
}

/// An exclusive lock on an output folder, held while a run writes into it: released when
/// dropped or when the process ends (an advisory `flock`, so a killed run leaves no stale
/// lock behind). Taken through libc rather than std's `File::try_lock`, which needs Rust
/// 1.89, above the crate's MSRV.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
    pub path: PathBuf,
}

/// Why a folder could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it.
    Busy(PathBuf),
    Io(PathBuf, Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Busy(p) => write!(f, "another benchctl run is writing into `{}`", p.display()),
            LockError::Io(p, e) => write!(f, "cannot lock `{}`: {e}", p.display()),
        }
    }
}

/// Takes the lock file `.benchctl.lock` in `dir` (created if missing) without waiting.
pub fn lock_folder(dir: &Path) -> Result<FolderLock, LockError> {
    let path = dir.join(".benchctl.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LockError::Io(dir.to_path_buf(), e))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function owns; no memory is shared with the call.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(FolderLock { _file: file, path });
    }
    let e = Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Err(LockError::Busy(dir.to_path_buf())),
        _ => Err(LockError::Io(dir.to_path_buf(), e)),
    }
}

/// Where measurements go when the output folder refused them at the end of a run: the
/// user's cache (`$XDG_CACHE_HOME` or `~/.cache`) under `benchctl/unsaved/`, else the
/// system's temporary folder.
pub fn fallback_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    for base in cache.into_iter().chain([std::env::temp_dir()]) {
        let dir = base.join("benchctl").join("unsaved");
        if check_writable(&dir).is_ok() {
            return dir;
        }
    }
    std::env::temp_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/result.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(entries(p.parent().unwrap()), 1, "no temporary files left");
    }

    #[test]
    fn links_are_written_through_and_folders_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.json");
        std::fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        // A dangling link: its target is created.
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink("made.json", &dangling).unwrap();
        write_atomic(&dangling, b"made").unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("made.json")).unwrap(), "made");
        let sub = dir.path().join("folder");
        std::fs::create_dir(&sub).unwrap();
        let e = write_atomic(&sub, b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::IsADirectory);
        assert_eq!(entries(dir.path()), 5, "no temporary file beside the targets");
    }

    #[test]
    fn devices_are_written_into_not_replaced() {
        write_atomic(Path::new("/dev/null"), b"discarded").unwrap();
        let m = std::fs::metadata("/dev/null").unwrap();
        assert!(!m.is_file(), "/dev/null is still a device");
    }

    #[test]
    fn failed_writes_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // The rename fails (a non-empty folder cannot be replaced by a file); the write of the
        // temporary file itself succeeded, so only the clean-up can remove it.
        let p = dir.path().join("busy");
        std::fs::create_dir_all(p.join("inside")).unwrap();
        assert!(replace(&p, b"x").is_err());
        assert_eq!(entries(dir.path()), 1);
    }

    #[test]
    fn folder_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_folder(dir.path()).unwrap();
        assert!(matches!(lock_folder(dir.path()), Err(LockError::Busy(_))));
        drop(held);
        lock_folder(dir.path()).unwrap();
    }
}
