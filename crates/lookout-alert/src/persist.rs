//! lookout's alert files in the data directory: API rules, silences, the firing alerts (so a
//! restart can resolve them) as whole JSON documents written atomically, and history as
//! append-only JSON lines with a size bound.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::alert::Transition;

use lookout_util::fs::private_options;
/// Writes atomically (temporary file, fsync, rename), mode 0600: the one implementation every
/// lookout crate shares.
pub use lookout_util::fs::write_private_atomic;

/// Reads a JSON document, or `T::default()` when the file does not exist yet.
pub fn load_json<T: DeserializeOwned + Default>(path: &Path) -> Result<T, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

pub fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| e.to_string())?;
    write_private_atomic(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Transitions, one JSON object a line. When the file passes `max_bytes` it becomes
/// `<name>.1` (replacing the previous one), so history is bounded at about twice that.
pub struct History {
    path: PathBuf,
    max_bytes: u64,
    lock: std::sync::Mutex<()>,
}

impl History {
    pub fn new(path: PathBuf, max_bytes: u64) -> Self {
        Self {
            path,
            max_bytes: max_bytes.max(4096),
            lock: std::sync::Mutex::new(()),
        }
    }

    fn previous(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".1");
        p.into()
    }

    pub fn append(&self, transitions: &[Transition]) -> std::io::Result<()> {
        if transitions.is_empty() {
            return Ok(());
        }
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let size = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if size > self.max_bytes {
            std::fs::rename(&self.path, self.previous())?;
        }
        let mut buf = Vec::new();
        for t in transitions {
            serde_json::to_writer(&mut buf, t).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        let mut f = private_options()
            .append(true)
            .create(true)
            .open(&self.path)?;
        f.write_all(&buf)?;
        f.sync_data()
    }

    /// The newest `limit` transitions, newest first. A torn last line (crash mid-write) is skipped.
    pub fn read_newest(&self, limit: usize) -> std::io::Result<Vec<Transition>> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all = Vec::new();
        for p in [self.previous(), self.path.clone()] {
            let f = match std::fs::File::open(&p) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for line in std::io::BufReader::new(f).lines() {
                if let Ok(t) = serde_json::from_str::<Transition>(&line?) {
                    all.push(t);
                }
            }
        }
        all.reverse();
        all.truncate(limit);
        Ok(all)
    }
}
