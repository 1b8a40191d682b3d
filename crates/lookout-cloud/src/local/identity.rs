//! Identity on the local backend: users (PBKDF2 password hashes), teams with their billing
//! accounts, and role assignments; and how a route's `cloud_env` resolves to a caller.

use rand::Rng;
use sqlx::Row;

use super::{new_id, new_uuid, LocalBackend};
use crate::error::{CloudError, CloudResult};
use crate::model::*;

/// OWASP's current count for PBKDF2-HMAC-SHA256 (Password Storage Cheat Sheet). Hashes stored
/// with fewer rounds still verify (the count is part of the stored hash). ring's PBKDF2 is
/// used because its hash is assembly: a generic Rust one takes ~10 s per hash unoptimised.
const PBKDF2_ROUNDS: std::num::NonZeroU32 = match std::num::NonZeroU32::new(600_000) {
    Some(n) => n,
    None => panic!("non-zero"),
};

#[derive(Debug, Clone)]
pub(super) struct UserRow {
    pub(super) id: String,
    pub(super) password_hash: String,
}

#[derive(Debug, Clone)]
pub(super) struct TeamRow {
    pub(super) id: String,
    pub(super) billing_acct_id: String,
}

pub fn hash_password(password: &str) -> String {
    let salt: [u8; 16] = rand::rng().random();
    let mut out = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        PBKDF2_ROUNDS,
        &salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "pbkdf2-sha256${PBKDF2_ROUNDS}${}${}",
        hex::encode(salt),
        hex::encode(out)
    )
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(rounds), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(rounds), Ok(salt), Ok(hash)) =
        (rounds.parse::<u32>(), hex::decode(salt), hex::decode(hash))
    else {
        return false;
    };
    if rounds == 0 || rounds > 10_000_000 || hash.len() != 32 {
        return false;
    }
    let Some(rounds) = std::num::NonZeroU32::new(rounds) else {
        return false;
    };
    // Compares in constant time.
    ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// True for a stored hash made with fewer rounds than [`PBKDF2_ROUNDS`].
pub(super) fn needs_rehash(stored: &str) -> bool {
    stored
        .split('$')
        .nth(1)
        .and_then(|r| r.parse::<u32>().ok())
        .is_some_and(|rounds| rounds < PBKDF2_ROUNDS.get())
}

fn check_text(field: &str, v: &str, max: usize) -> CloudResult<()> {
    if v.trim().is_empty() {
        return Err(CloudError::invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(CloudError::invalid(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    Ok(())
}

fn check_email(field: &str, v: &str) -> CloudResult<()> {
    check_text(field, v, 255)?;
    match v.split_once('@') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() && !v.contains(char::is_whitespace) => {
            Ok(())
        }
        _ => Err(CloudError::invalid(field, "is not an email address")),
    }
}

impl LocalBackend {
    pub(super) async fn user_by(&self, column: &str, value: &str) -> CloudResult<Option<UserRow>> {
        let sql = match column {
            "id" => "SELECT id, password_hash FROM cloud_users WHERE id = ?",
            _ => "SELECT id, password_hash FROM cloud_users WHERE username = ?",
        };
        let row = sqlx::query(self.db.sql(sql))
            .bind(value.to_string())
            .fetch_optional(&self.db.pool)
            .await?;
        row.map(|r| {
            Ok(UserRow {
                id: r.try_get(0)?,
                password_hash: r.try_get(1)?,
            })
        })
        .transpose()
    }

    pub(super) async fn team_by_id(&self, id: &str) -> CloudResult<Option<TeamRow>> {
        self.team_where(
            "SELECT id, billing_acct_id FROM cloud_teams WHERE id = ?",
            id,
        )
        .await
    }

    pub(super) async fn team_where(&self, sql: &str, v: &str) -> CloudResult<Option<TeamRow>> {
        let row = sqlx::query(self.db.sql(sql))
            .bind(v.to_string())
            .fetch_optional(&self.db.pool)
            .await?;
        row.map(|r| {
            Ok(TeamRow {
                id: r.try_get(0)?,
                billing_acct_id: r.try_get(1)?,
            })
        })
        .transpose()
    }

    pub(super) async fn team_by_account(&self, billing_acct_id: &str) -> CloudResult<TeamRow> {
        self.team_where(
            "SELECT id, billing_acct_id FROM cloud_teams WHERE billing_acct_id = ?",
            billing_acct_id,
        )
        .await?
        .ok_or_else(|| CloudError::NotFound(format!("no billing account {billing_acct_id:?}")))
    }

    /// The local user `cloud_env` names, with its password checked.
    pub(super) async fn caller(&self, env: &CloudEnv) -> CloudResult<UserRow> {
        let refused = || {
            CloudError::Unauthenticated(
                "cloud_env: no such user, or the password does not match".into(),
            )
        };
        if self.is_admin(env).await? {
            if let Some(admin) = self.admin_row() {
                return Ok(admin);
            }
        }
        let user = match (&env.user_id, &env.username) {
            (Some(id), _) => self.user_by("id", id).await?,
            (None, Some(name)) => self.user_by("username", name).await?,
            (None, None) => return Err(CloudError::missing("cloud_env.user_id")),
        }
        .ok_or_else(refused)?;
        let (hash, pw) = (user.password_hash.clone(), env.password.clone());
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
            .await
            .unwrap_or(false);
        if !ok {
            return Err(refused());
        }
        if needs_rehash(&user.password_hash) {
            self.rehash(&user, env.password.clone()).await;
        }
        Ok(user)
    }

    /// Stores a verified password again at today's round count (a hash from an older
    /// version used fewer). Best effort: the caller is already authenticated.
    async fn rehash(&self, user: &UserRow, password: String) {
        let Ok(hash) = tokio::task::spawn_blocking(move || hash_password(&password)).await else {
            return;
        };
        // Only if unchanged meanwhile: a concurrent password change wins.
        let done = sqlx::query(
            self.db
                .sql("UPDATE cloud_users SET password_hash = ? WHERE id = ? AND password_hash = ?"),
        )
        .bind(hash)
        .bind(user.id.clone())
        .bind(user.password_hash.clone())
        .execute(&self.db.pool)
        .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "could not store a stronger password hash");
        }
    }

    /// The team `cloud_env` is scoped to, and the caller's roles in it.
    pub(super) async fn scoped_team(
        &self,
        env: &CloudEnv,
        user: &UserRow,
    ) -> CloudResult<(TeamRow, Vec<Role>)> {
        let team = match (&env.project_id, &env.project_name) {
            (Some(id), _) => self.team_by_id(id).await?,
            (None, Some(name)) => {
                self.team_where(
                    "SELECT id, billing_acct_id FROM cloud_teams WHERE name = ?",
                    name,
                )
                .await?
            }
            (None, None) => return Err(CloudError::missing("cloud_env.project_id")),
        }
        .ok_or_else(|| {
            CloudError::Unauthenticated("cloud_env: the project names no team".into())
        })?;
        let rows = sqlx::query(
            self.db
                .sql("SELECT role FROM cloud_team_roles WHERE team_id = ? AND user_id = ?"),
        )
        .bind(team.id.clone())
        .bind(user.id.clone())
        .fetch_all(&self.db.pool)
        .await?;
        let mut roles = Vec::new();
        for r in rows {
            if let Ok(role) = Role::parse("role", &r.try_get::<String, _>(0)?) {
                roles.push(role);
            }
        }
        Ok((team, roles))
    }

    pub(super) async fn do_create_user(&self, u: NewUser) -> CloudResult<CreatedUser> {
        check_text("username", &u.username, 255)?;
        check_text("name", &u.name, 255)?;
        check_email("email", &u.email)?;
        check_text("password", &u.password, 4096)?;
        if self.user_by("username", &u.username).await?.is_some() {
            return Err(CloudError::Conflict(format!(
                "a user named {:?} already exists",
                u.username
            )));
        }
        let id = new_id();
        let pw = u.password.clone();
        let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(|e| CloudError::Internal(e.to_string()))?;
        let r = sqlx::query(self.db.sql(
            "INSERT INTO cloud_users (id, username, name, email, password_hash, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(id.clone())
        .bind(u.username.clone())
        .bind(u.name)
        .bind(u.email)
        .bind(hash)
        .bind(self.now_ms() / 1000)
        .execute(&self.db.pool)
        .await;
        match r {
            Ok(_) => Ok(CreatedUser {
                username: u.username,
                user_cloud_id: id,
            }),
            Err(e) => Err(match CloudError::from(e) {
                CloudError::Conflict(_) => {
                    CloudError::Conflict(format!("a user named {:?} already exists", u.username))
                }
                other => other,
            }),
        }
    }

    pub(super) async fn do_update_user(
        &self,
        id: &str,
        c: UserChanges,
    ) -> CloudResult<Vec<String>> {
        if self.user_by("id", id).await?.is_none() {
            return Err(CloudError::NotFound(format!("no user {id:?}")));
        }
        let mut changed = Vec::new();
        if let Some(email) = c.email {
            check_email("user_info.new_data.email", &email)?;
            sqlx::query(self.db.sql("UPDATE cloud_users SET email = ? WHERE id = ?"))
                .bind(email)
                .bind(id.to_string())
                .execute(&self.db.pool)
                .await?;
            changed.push("email".to_string());
        }
        if let Some(pw) = c.password {
            check_text("user_info.new_data.password", &pw, 4096)?;
            let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
                .await
                .map_err(|e| CloudError::Internal(e.to_string()))?;
            sqlx::query(
                self.db
                    .sql("UPDATE cloud_users SET password_hash = ? WHERE id = ?"),
            )
            .bind(hash)
            .bind(id.to_string())
            .execute(&self.db.pool)
            .await?;
            changed.push("password".to_string());
        }
        Ok(changed)
    }

    pub(super) async fn do_delete_user(&self, id: &str) -> CloudResult<()> {
        let mut tx = self.db.pool.begin().await?;
        let n = sqlx::query(self.db.sql("DELETE FROM cloud_users WHERE id = ?"))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(CloudError::NotFound(format!("no user {id:?}")));
        }
        // As Keystone does: a deleted user's role assignments and key pairs go with it.
        for sql in [
            "DELETE FROM cloud_team_roles WHERE user_id = ?",
            "DELETE FROM cloud_key_pairs WHERE user_id = ?",
        ] {
            sqlx::query(self.db.sql(sql))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn do_create_team(&self, name: &str) -> CloudResult<CreatedTeam> {
        check_text("name", name, 255)?;
        let exists = self
            .team_where(
                "SELECT id, billing_acct_id FROM cloud_teams WHERE name = ?",
                name,
            )
            .await?;
        if exists.is_some() {
            return Err(CloudError::Conflict(format!(
                "a team named {name:?} already exists"
            )));
        }
        let team = CreatedTeam {
            project_id: new_id(),
            billing_acct_id: new_uuid(),
        };
        sqlx::query(self.db.sql(
            "INSERT INTO cloud_teams (id, name, billing_acct_id, created_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(team.project_id.clone())
        .bind(name.to_string())
        .bind(team.billing_acct_id.clone())
        .bind(self.now_ms() / 1000)
        .execute(&self.db.pool)
        .await
        .map_err(|e| match CloudError::from(e) {
            CloudError::Conflict(_) => {
                CloudError::Conflict(format!("a team named {name:?} already exists"))
            }
            other => other,
        })?;
        Ok(team)
    }

    pub(super) async fn do_delete_team(&self, project_id: &str, billing: &str) -> CloudResult<()> {
        let mut tx = self.db.pool.begin().await?;
        let row = sqlx::query(
            self.db
                .sql("SELECT billing_acct_id FROM cloud_teams WHERE id = ?"),
        )
        .bind(project_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| CloudError::NotFound(format!("no team {project_id:?}")))?;
        if row.try_get::<String, _>(0)? != billing {
            return Err(CloudError::invalid(
                "team_info.billing_acct_id",
                "is not the billing account of this team",
            ));
        }
        // As Keystone does when a project is deleted: its role assignments go with it (the UI's
        // delete_team_job.rb never removes them first). Usage, credits, orders and invoices
        // stay, keyed by the team id, as the ledger's history.
        sqlx::query(
            self.db
                .sql("DELETE FROM cloud_team_roles WHERE team_id = ?"),
        )
        .bind(project_id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(self.db.sql("DELETE FROM cloud_teams WHERE id = ?"))
            .bind(project_id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn check_role_target(&self, project_id: &str, user_id: &str) -> CloudResult<()> {
        if self.team_by_id(project_id).await?.is_none() {
            return Err(CloudError::NotFound(format!("no team {project_id:?}")));
        }
        if self.user_by("id", user_id).await?.is_none() {
            return Err(CloudError::NotFound(format!("no user {user_id:?}")));
        }
        Ok(())
    }

    async fn has_role(&self, project_id: &str, user_id: &str, role: Role) -> CloudResult<bool> {
        Ok(sqlx::query(self.db.sql(
            "SELECT role FROM cloud_team_roles WHERE team_id = ? AND user_id = ? AND role = ?",
        ))
        .bind(project_id.to_string())
        .bind(user_id.to_string())
        .bind(role.as_str())
        .fetch_optional(&self.db.pool)
        .await?
        .is_some())
    }

    pub(super) async fn do_add_role(&self, r: TeamRole) -> CloudResult<()> {
        self.check_role_target(&r.project_id, &r.user_id).await?;
        if self.has_role(&r.project_id, &r.user_id, r.role).await? {
            return Err(CloudError::Conflict(format!(
                "user {} already has role {} in team {}",
                r.user_id,
                r.role.as_str(),
                r.project_id
            )));
        }
        sqlx::query(self.db.sql(
            "INSERT INTO cloud_team_roles (team_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(r.project_id)
        .bind(r.user_id)
        .bind(r.role.as_str())
        .bind(self.now_ms() / 1000)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn do_remove_role(&self, r: TeamRole) -> CloudResult<()> {
        self.check_role_target(&r.project_id, &r.user_id).await?;
        let n = sqlx::query(
            self.db
                .sql("DELETE FROM cloud_team_roles WHERE team_id = ? AND user_id = ? AND role = ?"),
        )
        .bind(r.project_id.clone())
        .bind(r.user_id.clone())
        .bind(r.role.as_str())
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(CloudError::NotFound(format!(
                "user {} has no role {} in team {}",
                r.user_id,
                r.role.as_str(),
                r.project_id
            )));
        }
        Ok(())
    }

    pub(super) async fn do_change_role(
        &self,
        project: &str,
        user: &str,
        cur: Role,
        new: Role,
    ) -> CloudResult<()> {
        self.check_role_target(project, user).await?;
        if !self.has_role(project, user, cur).await? {
            return Err(CloudError::NotFound(format!(
                "user {user} has no role {} in team {project}",
                cur.as_str()
            )));
        }
        if cur == new {
            return Ok(());
        }
        let mut tx = self.db.pool.begin().await?;
        sqlx::query(
            self.db
                .sql("DELETE FROM cloud_team_roles WHERE team_id = ? AND user_id = ? AND role = ?"),
        )
        .bind(project.to_string())
        .bind(user.to_string())
        .bind(cur.as_str())
        .execute(&mut *tx)
        .await?;
        let has_new = sqlx::query(self.db.sql(
            "SELECT role FROM cloud_team_roles WHERE team_id = ? AND user_id = ? AND role = ?",
        ))
        .bind(project.to_string())
        .bind(user.to_string())
        .bind(new.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if !has_new {
            sqlx::query(self.db.sql(
                "INSERT INTO cloud_team_roles (team_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
            ))
            .bind(project.to_string())
            .bind(user.to_string())
            .bind(new.as_str())
            .bind(self.now_ms() / 1000)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("pbkdf2-sha256$600000$"), "{h}");
        assert!(!needs_rehash(&h));
        assert!(verify_password("correct horse", &h));
        // A hash of an older version (20,000 rounds) still verifies, and is marked for rehash.
        let salt = [7u8; 16];
        let mut out = [0u8; 32];
        let rounds = std::num::NonZeroU32::new(20_000).unwrap();
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            rounds,
            &salt,
            b"correct horse",
            &mut out,
        );
        let old = format!(
            "pbkdf2-sha256$20000${}${}",
            hex::encode(salt),
            hex::encode(out)
        );
        assert!(verify_password("correct horse", &old));
        assert!(!verify_password("wrong", &old));
        assert!(needs_rehash(&old));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "garbage"));
    }
}
