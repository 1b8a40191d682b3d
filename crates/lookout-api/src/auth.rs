//! Bearer tokens: generation, hashing, the on-disk token file, and verification.
//!
//! Tokens are 32 random bytes shown once; only their SHA-256 is stored (a slow password hash
//! buys nothing for 256-bit random secrets and would cost every request). Verification hashes
//! the presented token and compares it with *every* stored hash in constant time, so neither
//! the answer nor its timing says how close a guess was or which record matched.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::fsutil::{DirWatch, ExclusiveLock, FileStamp};

/// What a token may do. Ordered: each scope includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read figures, history, metrics.
    Read,
    /// Also start, stop, pause, resume and remove containers.
    Control,
    /// Everything, including token management.
    Admin,
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Scope::Read),
            "control" => Ok(Scope::Control),
            "admin" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope {other:?} (expected read, control or admin)"
            )),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Read => "read",
            Scope::Control => "control",
            Scope::Admin => "admin",
        })
    }
}

/// Prefix of every token lookout issues, so a leaked one is recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "lk_";

/// A fresh random token (shown to the operator once, never stored).
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// One stored token: its name, scope and hash. The token itself is never kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenRecord {
    pub name: String,
    pub scope: Scope,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: i64,
}

/// Who a verified request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub scope: Scope,
    /// SHA-256 of the token it was verified with, so a session made from the token can be
    /// checked against the current token set (a revoked token ends its sessions too).
    pub token_sha256: [u8; 32],
}

/// The tokens a server accepts, with their hashes decoded for fast comparison.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TokenSet {
    entries: Vec<Principal>,
}

impl TokenSet {
    pub fn from_records(records: &[TokenRecord]) -> Self {
        let entries = records
            .iter()
            .filter_map(|r| {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(&r.sha256, &mut hash).ok()?;
                Some(Principal {
                    name: r.name.clone(),
                    scope: r.scope,
                    token_sha256: hash,
                })
            })
            .collect();
        Self { entries }
    }

    /// Adds a token given in the environment (e.g. `LOOKOUT_TOKEN`), hashed at once.
    pub fn with_static(mut self, name: &str, token: &str, scope: Scope) -> Self {
        self.entries.push(Principal {
            name: name.to_string(),
            scope,
            token_sha256: hash_token(token),
        });
        self
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal a token belongs to. Every entry is compared, whatever matched first.
    pub fn verify(&self, token: &str) -> Option<Principal> {
        self.verify_hash(&hash_token(token))
    }

    /// The principal whose token has this SHA-256, compared in constant time with every entry.
    pub fn verify_hash(&self, presented: &[u8; 32]) -> Option<Principal> {
        let mut found: Option<&Principal> = None;
        for principal in &self.entries {
            let equal: bool = presented.ct_eq(&principal.token_sha256).into();
            if equal && found.is_none() {
                found = Some(principal);
            }
        }
        found.cloned()
    }
}

/// Builds the token set from its sources (the token file, plus any static token).
pub type TokenSetBuilder = dyn Fn() -> Result<TokenSet, TokenFileError> + Send + Sync;

/// The token set a running server consults; swapped whole when the token file changes.
///
/// With a file source, every [`SharedTokens::current`] asks an inotify watch of the file's
/// directory whether anything changed there (one non-blocking `read`, no path lookup) and
/// rebuilds the set when something did, so a token works, and a revoked one is refused, from
/// the moment `lookout token create|revoke` returns (the kernel queues the event inside the
/// command's `rename`). A timer, or a watcher thread that wakes up later, could only promise
/// "soon". Without inotify, the file's [`FileStamp`] (one `stat`) is compared instead.
#[derive(Clone, Default)]
pub struct SharedTokens(Arc<Shared>);

#[derive(Default)]
struct Shared {
    current: RwLock<Loaded>,
    source: Option<Source>,
}

#[derive(Default)]
struct Loaded {
    set: Arc<TokenSet>,
    /// The file version `set` was built from (`None`: no file, or no source).
    stamp: Option<FileStamp>,
}

struct Source {
    path: PathBuf,
    /// `None` where inotify is unavailable: the stamp is compared on every check then.
    watch: Option<DirWatch>,
    build: Box<TokenSetBuilder>,
    /// Held while rebuilding, so a change is read once, not by every request at once.
    rebuilding: Mutex<()>,
}

impl std::fmt::Debug for SharedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTokens")
            .field("tokens", &self.read().set.len())
            .field("source", &self.0.source.as_ref().map(|s| &s.path))
            .finish()
    }
}

impl SharedTokens {
    /// A fixed set (tests, or a server without a token file).
    pub fn new(set: TokenSet) -> Self {
        Self(Arc::new(Shared {
            current: RwLock::new(Loaded {
                set: Arc::new(set),
                stamp: None,
            }),
            source: None,
        }))
    }

    /// A set built by `build` from the file at `path`, rebuilt whenever that file changes.
    pub fn from_file(
        path: impl Into<PathBuf>,
        build: impl Fn() -> Result<TokenSet, TokenFileError> + Send + Sync + 'static,
    ) -> Result<Self, TokenFileError> {
        let path = path.into();
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        // Watching first: a change between here and the first build is seen on the next check.
        let watch = match DirWatch::new(dir) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "no inotify watch of the token file's directory; checking its stamp on every request");
                None
            }
        };
        let stamp = FileStamp::of(&path);
        let set = build()?;
        Ok(Self(Arc::new(Shared {
            current: RwLock::new(Loaded {
                set: Arc::new(set),
                stamp,
            }),
            source: Some(Source {
                path,
                watch,
                build: Box::new(build),
                rebuilding: Mutex::new(()),
            }),
        })))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.0
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The set to verify against now (rebuilt first if the token file changed).
    pub fn current(&self) -> Arc<TokenSet> {
        if let Some(source) = &self.0.source {
            self.refresh(source);
        }
        self.read().set.clone()
    }

    fn refresh(&self, source: &Source) {
        // Held across the check and the rebuild: a request that finds the events already
        // drained by another one waits here for the set they lead to, never the old one.
        let _one = source
            .rebuilding
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = FileStamp::of_if(source.watch.is_none(), &source.path);
        match &source.watch {
            Some(watch) if !watch.changed() => return,
            None if self.read().stamp == now => return,
            _ => {}
        }
        let set = match (source.build)() {
            Ok(set) => set,
            // Keep serving with the previous set rather than locking everyone out.
            Err(e) => {
                tracing::error!(error = %e, "token file unreadable, keeping the previous tokens");
                self.write().stamp = now;
                return;
            }
        };
        let mut current = self.write();
        current.stamp = now;
        // Other files of the directory change too (stores, temporary files): only a
        // different set is swapped in (and logged).
        if *current.set != set {
            tracing::info!(tokens = set.len(), "token file changed, reloaded");
            current.set = Arc::new(set);
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Loaded> {
        self.0
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Swaps in a set (keeping the file version it stands for).
    pub fn replace(&self, set: TokenSet) {
        self.write().set = Arc::new(set);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("token file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token file {path} is not valid: {source}")]
    Format {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("a token named {0:?} already exists")]
    Duplicate(String),
    #[error("no token named {0:?}")]
    NotFound(String),
    #[error("token name must be 1–64 characters of letters, digits, '-', '_' or '.'")]
    BadName,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFileBody {
    tokens: Vec<TokenRecord>,
}

/// `tokens.json` in the data directory: the hashed tokens, written atomically with mode 0600.
#[derive(Debug, Clone)]
pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored records; a missing file is an empty list.
    pub fn load(&self) -> Result<Vec<TokenRecord>, TokenFileError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice::<TokenFileBody>(&bytes)
                .map(|b| b.tokens)
                .map_err(|source| TokenFileError::Format {
                    path: self.path.clone(),
                    source,
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(TokenFileError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn io(&self, source: std::io::Error) -> TokenFileError {
        TokenFileError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Removes temporary files a killed writer left beside the file (under the lock, so no
    /// live writer's file is touched). Writes do this too; a server calls it at start.
    pub fn remove_stale_temps(&self) -> Result<usize, TokenFileError> {
        let _lock = ExclusiveLock::acquire(&self.path).map_err(|e| self.io(e))?;
        crate::fsutil::remove_stale_temps(&self.path).map_err(|e| self.io(e))
    }

    /// Runs a read-modify-write of the file under its exclusive lock, so concurrent
    /// `token create`/`revoke` processes queue instead of losing each other's changes.
    fn update<T>(
        &self,
        change: impl FnOnce(&mut Vec<TokenRecord>) -> Result<T, TokenFileError>,
    ) -> Result<T, TokenFileError> {
        let _lock = ExclusiveLock::acquire(&self.path).map_err(|e| self.io(e))?;
        // Under the lock no writer is live: any temporary file left is from a killed one.
        let _ = crate::fsutil::remove_stale_temps(&self.path);
        let mut tokens = self.load()?;
        let out = change(&mut tokens)?;
        let body = serde_json::to_vec_pretty(&TokenFileBody { tokens }).map_err(|source| {
            TokenFileError::Format {
                path: self.path.clone(),
                source,
            }
        })?;
        crate::fsutil::write_private_atomic(&self.path, &body).map_err(|e| self.io(e))?;
        Ok(out)
    }

    /// Creates a token, stores its hash and returns the token (the only time it is seen).
    pub fn create(&self, name: &str, scope: Scope) -> Result<String, TokenFileError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(TokenFileError::BadName);
        }
        self.update(|tokens| {
            if tokens.iter().any(|t| t.name == name) {
                return Err(TokenFileError::Duplicate(name.to_string()));
            }
            let token = generate_token();
            tokens.push(TokenRecord {
                name: name.to_string(),
                scope,
                sha256: hex::encode(hash_token(&token)),
                created_at: lookout_util::clock::now_secs(),
            });
            Ok(token)
        })
    }

    pub fn revoke(&self, name: &str) -> Result<(), TokenFileError> {
        self.update(|tokens| {
            let before = tokens.len();
            tokens.retain(|t| t.name != name);
            if tokens.len() == before {
                return Err(TokenFileError::NotFound(name.to_string()));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_finds_the_right_principal_and_rejects_others() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("tokens.json"));
        let reader = file.create("ci", Scope::Read).unwrap();
        let admin = file.create("ops", Scope::Admin).unwrap();
        assert!(reader.starts_with(TOKEN_PREFIX) && reader.len() == 3 + 64);
        let set = TokenSet::from_records(&file.load().unwrap());
        assert_eq!(set.verify(&reader).unwrap().scope, Scope::Read);
        assert_eq!(set.verify(&admin).unwrap().name, "ops");
        assert!(set.verify("lk_nope").is_none());
        assert!(set.verify("").is_none());
        // The token itself never reaches the file.
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(!text.contains(&reader[3..]));
    }

    #[test]
    fn revoke_removes_and_duplicates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("tokens.json"));
        let t = file.create("a", Scope::Control).unwrap();
        assert!(matches!(
            file.create("a", Scope::Read),
            Err(TokenFileError::Duplicate(_))
        ));
        assert!(matches!(
            file.create("bad name", Scope::Read),
            Err(TokenFileError::BadName)
        ));
        file.revoke("a").unwrap();
        assert!(matches!(file.revoke("a"), Err(TokenFileError::NotFound(_))));
        assert!(TokenSet::from_records(&file.load().unwrap())
            .verify(&t)
            .is_none());
    }

    #[cfg(unix)]
    #[test]
    fn token_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("tokens.json"));
        file.create("a", Scope::Read).unwrap();
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn shared_tokens_follow_the_file_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("tokens.json"));
        let source = file.clone();
        let shared = SharedTokens::from_file(file.path(), move || {
            Ok(TokenSet::from_records(&source.load()?))
        })
        .unwrap();
        assert!(shared.current().is_empty());
        for round in 0..20 {
            let t = file.create(&format!("t{round}"), Scope::Read).unwrap();
            assert!(shared.current().verify(&t).is_some(), "round {round}");
            file.revoke(&format!("t{round}")).unwrap();
            assert!(shared.current().verify(&t).is_none(), "round {round}");
        }
        // An unchanged file is not read again: the same set comes back.
        assert!(Arc::ptr_eq(&shared.current(), &shared.current()));
        // A broken file keeps the previous set.
        let kept = file.create("kept", Scope::Admin).unwrap();
        assert!(shared.current().verify(&kept).is_some());
        crate::fsutil::write_private_atomic(file.path(), b"{not json").unwrap();
        assert!(shared.current().verify(&kept).is_some());
    }

    #[test]
    fn a_killed_writer_leaves_no_temp_file_behind_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("tokens.json"));
        let stale = dir.path().join(".tokens.json.tmp-999999");
        std::fs::write(&stale, b"{").unwrap();
        assert_eq!(file.remove_stale_temps().unwrap(), 1);
        std::fs::write(&stale, b"{").unwrap();
        file.create("a", Scope::Read).unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn static_token_is_admin() {
        let set = TokenSet::default().with_static("env", "s3cret-value", Scope::Admin);
        assert_eq!(set.verify("s3cret-value").unwrap().scope, Scope::Admin);
        assert!(set.verify("s3cret-valuf").is_none());
    }

    #[test]
    fn scopes_are_ordered() {
        assert!(Scope::Admin > Scope::Control && Scope::Control > Scope::Read);
        assert_eq!("control".parse::<Scope>().unwrap(), Scope::Control);
        assert!("root".parse::<Scope>().is_err());
    }
}
