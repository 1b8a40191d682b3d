//! Key pairs on the local backend: stored per user, generated or imported by [`crate::keys`].

use sqlx::Row;

use super::{new_id, LocalBackend};
use crate::error::{CloudError, CloudResult};
use crate::keys;
use crate::model::*;

/// Nova's rule for key pair names: letters, digits, space, `_ - . @`, 1–255 characters.
fn check_key_name(name: &str) -> CloudResult<()> {
    let ok = !name.trim().is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(CloudError::invalid(
            "key_pair.name",
            "must be 1-255 letters, digits, spaces or _ - . @",
        ))
    }
}

impl LocalBackend {
    pub(super) async fn do_create_key(
        &self,
        env: &CloudEnv,
        k: NewKeyPair,
    ) -> CloudResult<KeyPairCreated> {
        let user = self.caller(env).await?;
        check_key_name(&k.name)?;
        let exists = sqlx::query(
            self.db
                .sql("SELECT id FROM cloud_key_pairs WHERE user_id = ? AND name = ?"),
        )
        .bind(user.id.clone())
        .bind(k.name.clone())
        .fetch_optional(&self.db.pool)
        .await?;
        if exists.is_some() {
            return Err(CloudError::Conflict(format!(
                "a key pair named {:?} already exists",
                k.name
            )));
        }
        let made = match k
            .public_key
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(pk) => keys::import(pk, &k.name)?,
            None => {
                let kind = keys::KeyKind::from_request(k.key_type.as_deref())?;
                let name = k.name.clone();
                tokio::task::spawn_blocking(move || keys::generate(kind, &name))
                    .await
                    .map_err(|e| CloudError::Internal(e.to_string()))??
            }
        };
        let id = new_id();
        sqlx::query(self.db.sql(
            "INSERT INTO cloud_key_pairs (id, user_id, name, key_type, public_key, fingerprint, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(id.clone())
        .bind(user.id)
        .bind(k.name.clone())
        .bind(made.algorithm.clone())
        .bind(made.public_key.clone())
        .bind(made.fingerprint.clone())
        .bind(self.now_ms() / 1000)
        .execute(&self.db.pool)
        .await
        .map_err(|e| match CloudError::from(e) {
            CloudError::Conflict(_) => {
                CloudError::Conflict(format!("a key pair named {:?} already exists", k.name))
            }
            other => other,
        })?;
        Ok(KeyPairCreated {
            id,
            name: k.name,
            private_key: made.private_key,
            public_key: made.public_key,
            fingerprint: made.fingerprint,
        })
    }

    pub(super) async fn do_list_keys(&self, env: &CloudEnv) -> CloudResult<Vec<KeyPairInfo>> {
        let user = self.caller(env).await?;
        let rows = sqlx::query(self.db.sql(
            "SELECT id, name, public_key, fingerprint, key_type FROM cloud_key_pairs \
             WHERE user_id = ? ORDER BY name",
        ))
        .bind(user.id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyPairInfo {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    public_key: r.try_get(2)?,
                    fingerprint: r.try_get(3)?,
                    key_type: r.try_get(4)?,
                })
            })
            .collect()
    }

    pub(super) async fn do_delete_key(&self, env: &CloudEnv, name: &str) -> CloudResult<()> {
        let user = self.caller(env).await?;
        let n = sqlx::query(
            self.db
                .sql("DELETE FROM cloud_key_pairs WHERE user_id = ? AND name = ?"),
        )
        .bind(user.id)
        .bind(name.to_string())
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(CloudError::NotFound(format!("no key pair named {name:?}")));
        }
        Ok(())
    }
}
