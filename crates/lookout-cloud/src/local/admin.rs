//! The local backend's admin principal: the credentials the UI keeps on its Cloud Environment
//! page (`admin_user_id`, `admin_foreign_password`) and sends as `cloud_env` for root users'
//! actions (power actions on any team's devices, any team's limits). Keystone accepts its
//! admin there; so does this backend once the operator sets the credentials. Only a PBKDF2
//! hash of the password is kept; the password is never logged.

use super::identity::{hash_password, verify_password, UserRow};
use super::LocalBackend;
use crate::error::{CloudError, CloudResult};
use crate::model::CloudEnv;

/// The operator-set admin: its id (and name) and the PBKDF2 hash of its password.
#[derive(Clone)]
pub struct AdminPrincipal {
    user_id: String,
    password_hash: String,
}

impl std::fmt::Debug for AdminPrincipal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminPrincipal")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl AdminPrincipal {
    /// From a password or an already made hash (`pbkdf2-sha256$…`, as `lookout concertim
    /// hash-password` prints it). Hashing takes ~0.5 s of CPU: call it off the async threads.
    pub fn new(user_id: &str, password_or_hash: &str) -> CloudResult<Self> {
        let user_id = user_id.trim();
        if user_id.is_empty() || user_id.len() > 255 {
            return Err(CloudError::invalid(
                "admin_user_id",
                "must be 1-255 characters",
            ));
        }
        if password_or_hash.is_empty() {
            return Err(CloudError::invalid("admin_password", "must not be empty"));
        }
        let password_hash = if password_or_hash.starts_with("pbkdf2-sha256$") {
            // A malformed hash would refuse every password: say so at startup instead.
            if password_or_hash.split('$').count() != 4 {
                return Err(CloudError::invalid(
                    "admin_password",
                    "looks like a pbkdf2-sha256 hash but is not one",
                ));
            }
            password_or_hash.to_string()
        } else {
            hash_password(password_or_hash)
        };
        Ok(Self {
            user_id: user_id.to_string(),
            password_hash,
        })
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Does `env` name this principal? The UI strips dashes from the admin's id in some jobs
    /// (`request_status_change_job.rb`) and not in others (`get_team_limits_job.rb`), so ids
    /// compare without dashes.
    fn named_by(&self, env: &CloudEnv) -> bool {
        let plain = |s: &str| s.replace('-', "");
        match (&env.user_id, &env.username) {
            (Some(id), _) => plain(id) == plain(&self.user_id),
            (None, Some(name)) => name == &self.user_id,
            (None, None) => false,
        }
    }
}

impl LocalBackend {
    /// Sets the admin principal (none by default: no `cloud_env` is then an admin).
    pub fn with_admin(mut self, admin: AdminPrincipal) -> Self {
        self.admin = Some(admin);
        self
    }

    /// `Ok(true)` when `env` is the admin with its password, `Ok(false)` when it names
    /// someone else, 401 when it names the admin with a wrong password.
    pub(super) async fn is_admin(&self, env: &CloudEnv) -> CloudResult<bool> {
        let Some(admin) = self.admin.as_ref().filter(|a| a.named_by(env)) else {
            return Ok(false);
        };
        let (hash, pw) = (admin.password_hash.clone(), env.password.clone());
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
            .await
            .unwrap_or(false);
        if ok {
            Ok(true)
        } else {
            Err(CloudError::Unauthenticated(
                "cloud_env: no such user, or the password does not match".into(),
            ))
        }
    }

    /// The admin as a caller of per-user routes (its own key pairs).
    pub(super) fn admin_row(&self) -> Option<UserRow> {
        self.admin.as_ref().map(|a| UserRow {
            id: a.user_id.clone(),
            password_hash: a.password_hash.clone(),
        })
    }

    /// Routes Keystone keeps for admins (users, teams, roles) stay authorised by the JWT as
    /// before; a `cloud_env` that names the admin must still carry its password.
    pub(super) async fn check_admin_route(&self, env: &CloudEnv) -> CloudResult<()> {
        self.is_admin(env).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(user_id: &str) -> CloudEnv {
        CloudEnv {
            auth_url: "http://k/v3".into(),
            user_id: Some(user_id.into()),
            password: "pw".into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_and_hashes() {
        let a = AdminPrincipal::new("1b2c-3d", "secret").unwrap();
        assert!(a.password_hash.starts_with("pbkdf2-sha256$"));
        assert!(!format!("{a:?}").contains("pbkdf2"));
        assert!(a.named_by(&env("1b2c3d")));
        assert!(a.named_by(&env("1b2c-3d")));
        assert!(!a.named_by(&env("someone")));
        let pre = AdminPrincipal::new("admin", &a.password_hash).unwrap();
        assert_eq!(pre.password_hash, a.password_hash);
        assert!(AdminPrincipal::new("admin", "pbkdf2-sha256$1").is_err());
        assert!(AdminPrincipal::new("", "x").is_err());
        assert!(AdminPrincipal::new("admin", "").is_err());
    }
}
