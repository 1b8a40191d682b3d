//! The data directory must be writable before anything is written to it: the certificate,
//! the token file and the history database all live there, and each would otherwise fail
//! later with a message that names no path (SQLite's "unable to open database file").

use std::path::Path;

use anyhow::{anyhow, Result};

/// Fails with the directory, the user lookout runs as and what to do, when `dir` cannot take
/// a new file.
pub fn ensure_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".lookout-write-test-{}", std::process::id()));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe);
    match created {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => {
            let fix = if e.kind() == std::io::ErrorKind::PermissionDenied {
                format!(
                    "; make it writable by {} or choose another with --data-dir",
                    running_user()
                )
            } else {
                "; choose another with --data-dir".to_string()
            };
            Err(anyhow!(
                "data directory {} is not writable: {e}{fix}",
                dir.display()
            ))
        }
    }
}

/// "uid N", the user this process runs as (the owner of its /proc entry, on Linux).
fn running_user() -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| format!("uid {} (the user lookout runs as)", m.uid()))
        .unwrap_or_else(|_| "the user lookout runs as".into())
}
