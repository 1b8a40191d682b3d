//! Small file helpers shared by everything that keeps secrets on disk.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The prefix of the temporary files [`write_private_atomic`] writes beside `path`.
fn temp_prefix(path: &Path) -> String {
    format!(".{}.tmp-", file_name(path))
}

/// Open options that create files with mode 0600 (owner only); set the access mode yourself.
pub fn private_options() -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename) with mode 0600, so a
/// crash never leaves a half-written secret and no other user can read it at any moment.
/// The temporary file is created exclusively (`O_EXCL`) under a fresh random name, so two
/// writers never share one and a planted file or link there is never written through.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        "{}{}-{}",
        temp_prefix(path),
        std::process::id(),
        hex::encode(rand::random::<[u8; 6]>())
    ));
    let written = (|| {
        let mut f = private_options().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes the temporary files a writer of `path` killed mid-write left behind. Only safe
/// while holding `path`'s [`ExclusiveLock`] (no live writer then has one open).
pub fn remove_stale_temps(path: &Path) -> std::io::Result<usize> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let prefix = temp_prefix(path);
    let mut removed = 0;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    Ok(removed)
}

/// An exclusive advisory lock (`flock`) on `.<name>.lock` beside a file, held until dropped.
/// Every read-modify-write of the file holds it, so concurrent writers queue instead of
/// overwriting each other. The kernel drops it when its holder dies, so it never goes stale.
#[derive(Debug)]
pub struct ExclusiveLock {
    _file: File,
    path: PathBuf,
}

impl ExclusiveLock {
    /// Waits for the lock of `path` (creating the lock file, mode 0600, if needed).
    pub fn acquire(path: &Path) -> std::io::Result<Self> {
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir)?;
        let lock_path = dir.join(format!(".{}.lock", file_name(path)));
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(Self {
            _file: file,
            path: lock_path,
        })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Says, with one non-blocking `read`, whether anything was created, renamed, deleted or
/// closed after writing in a directory since the last call (inotify). The kernel queues the
/// event inside the writer's `rename`/`close`, so a change made by a command that has
/// returned is always seen: no timer, no window.
#[derive(Debug)]
pub struct DirWatch {
    fd: std::os::fd::OwnedFd,
}

impl DirWatch {
    /// Watches `dir` (not its subdirectories).
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        inotify::add_watch(
            &fd,
            dir,
            WatchFlags::CREATE
                | WatchFlags::DELETE
                | WatchFlags::MOVED_FROM
                | WatchFlags::MOVED_TO
                | WatchFlags::CLOSE_WRITE
                | WatchFlags::DELETE_SELF
                | WatchFlags::MOVE_SELF,
        )?;
        Ok(Self { fd })
    }

    /// Drains the pending events: true when there was any (or reading failed, to be safe).
    pub fn changed(&self) -> bool {
        let mut buf = [0u8; 4096];
        let mut any = false;
        loop {
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(0) => return any,
                Ok(_) => any = true,
                Err(rustix::io::Errno::AGAIN) => return any,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return true,
            }
        }
    }
}

/// What identifies one version of a file without reading it: device, inode, size and
/// change times. A writer that renames a new file into place changes the inode, so two
/// versions written within one timestamp tick still differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    /// The stamp of `path` when `wanted`, else `None` without a system call.
    pub fn of_if(wanted: bool, path: &Path) -> Option<Self> {
        wanted.then(|| Self::of(path)).flatten()
    }

    /// The stamp of `path` now; `None` when it does not exist (or cannot be stat'ed).
    pub fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temps_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(dir.path().join(".tokens.json.tmp-123"), b"x").unwrap();
        std::fs::write(dir.path().join("other.tmp-1"), b"x").unwrap();
        write_private_atomic(&path, b"{}").unwrap();
        assert_eq!(remove_stale_temps(&path).unwrap(), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["other.tmp-1", "tokens.json"]);
    }

    #[test]
    fn a_watch_sees_each_rewrite_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let watch = DirWatch::new(dir.path()).unwrap();
        assert!(!watch.changed());
        write_private_atomic(&path, b"a").unwrap();
        assert!(watch.changed());
        assert!(!watch.changed());
        std::fs::remove_file(&path).unwrap();
        assert!(watch.changed());
    }

    #[test]
    fn every_rewrite_changes_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert_eq!(FileStamp::of(&path), None);
        write_private_atomic(&path, b"a").unwrap();
        let first = FileStamp::of(&path);
        write_private_atomic(&path, b"b").unwrap();
        assert_ne!(first, FileStamp::of(&path));
    }
}
