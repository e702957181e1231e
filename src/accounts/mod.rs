//! Users, password hashes, sessions, and the plan permission matrix.

pub mod access;
pub mod deletion;
pub mod device;
pub mod limiter;
pub mod password;
pub mod reset;
pub mod session;

use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::db::DbError;

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Email (lower case).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Administrator (may use the admin API).
    pub is_admin: bool,
}

/// An account operation failure.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The email is taken.
    #[error("an account with this email exists")]
    EmailTaken,
    /// The input is unacceptable (field, message).
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] DbError),
    /// Hashing or randomness failed.
    #[error("{0}")]
    Internal(String),
}

impl From<tokio_postgres::Error> for AccountError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Database(e.into())
    }
}

fn user_from(row: &tokio_postgres::Row) -> User {
    User {
        id: row.get("id"),
        email: row.get("email"),
        name: row.get("name"),
        is_admin: row.get("is_admin"),
    }
}

/// Normalizes and checks an email address (lower case, one `@`, a dot in the domain).
pub fn normalize_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim().to_lowercase();
    let valid = email.chars().count() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(AccountError::Invalid(
            "email",
            "is not an email address".into(),
        ))
    }
}

/// Creates a user with an already hashed password.
pub async fn create_user(
    client: &impl GenericClient,
    email: &str,
    name: &str,
    password_hash: &str,
    is_admin: bool,
) -> Result<User, AccountError> {
    let email = normalize_email(email)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(AccountError::Invalid(
            "name",
            "must be 1 to 200 characters, without control characters".into(),
        ));
    }
    let row = client
        .query_opt(
            "INSERT INTO planscape.users (email, name, password_hash, is_admin) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (email) DO NOTHING RETURNING id, email, name, is_admin",
            &[&email, &name, &password_hash, &is_admin],
        )
        .await?;
    row.as_ref().map(user_from).ok_or(AccountError::EmailTaken)
}

/// Sets or clears the admin flag of the account with this email; `None` when there is
/// no such account. Takes effect on the account's next request (sessions read the flag).
pub async fn set_admin(
    client: &impl GenericClient,
    email: &str,
    is_admin: bool,
) -> Result<Option<User>, AccountError> {
    let email = email.trim().to_lowercase();
    let row = client
        .query_opt(
            "UPDATE planscape.users SET is_admin = $2 WHERE email = $1 \
             RETURNING id, email, name, is_admin",
            &[&email, &is_admin],
        )
        .await?;
    Ok(row.as_ref().map(user_from))
}

/// The user with this email and their password hash.
pub async fn find_by_email(
    client: &impl GenericClient,
    email: &str,
) -> Result<Option<(User, String)>, AccountError> {
    let email = email.trim().to_lowercase();
    if email.chars().count() > 254 || email.chars().any(char::is_control) {
        return Ok(None);
    }
    let row = client
        .query_opt(
            "SELECT id, email, name, is_admin, password_hash FROM planscape.users WHERE email = $1",
            &[&email],
        )
        .await?;
    Ok(row.map(|r| (user_from(&r), r.get("password_hash"))))
}

/// The user by id and their password hash.
pub async fn find_by_id(
    client: &impl GenericClient,
    id: i64,
) -> Result<Option<(User, String)>, AccountError> {
    let row = client
        .query_opt(
            "SELECT id, email, name, is_admin, password_hash FROM planscape.users WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(row.map(|r| (user_from(&r), r.get("password_hash"))))
}

/// Starts a session; returns the token (shown once) and its expiry.
pub async fn create_session(
    client: &impl GenericClient,
    user_id: i64,
    ttl_s: u64,
    key: Option<&[u8]>,
) -> Result<(String, std::time::SystemTime), AccountError> {
    let token = session::new_token().map_err(AccountError::Internal)?;
    let hash = session::token_hash(&token, key);
    let ttl = i64::try_from(ttl_s).unwrap_or(i64::MAX / 2);
    let row = client
        .query_one(
            "INSERT INTO planscape.sessions (token_hash, user_id, expires_at) \
             VALUES ($1, $2, now() + make_interval(secs => $3::bigint)) RETURNING expires_at",
            &[&hash, &user_id, &ttl],
        )
        .await?;
    Ok((token, row.get(0)))
}

/// The user of a live (unexpired, unrevoked) session.
pub async fn session_user(
    client: &impl GenericClient,
    token: &str,
    key: Option<&[u8]>,
) -> Result<Option<User>, AccountError> {
    if !session::plausible(token) {
        return Ok(None);
    }
    let hash = session::token_hash(token, key);
    let row = client
        .query_opt(
            "SELECT u.id, u.email, u.name, u.is_admin FROM planscape.sessions s \
             JOIN planscape.users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()",
            &[&hash],
        )
        .await?;
    Ok(row.as_ref().map(user_from))
}

/// Revokes one session.
pub async fn revoke_session(
    client: &impl GenericClient,
    token: &str,
    key: Option<&[u8]>,
) -> Result<(), AccountError> {
    let hash = session::token_hash(token, key);
    client
        .execute(
            "UPDATE planscape.sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
            &[&hash],
        )
        .await?;
    Ok(())
}

/// Changes a password and revokes every session of the user.
pub async fn set_password(
    client: &mut deadpool_postgres::Client,
    user_id: i64,
    password_hash: &str,
) -> Result<(), AccountError> {
    let tx = client.transaction().await?;
    set_password_in(&*tx, user_id, password_hash).await?;
    tx.commit().await?;
    Ok(())
}

/// [`set_password`] inside the caller's transaction.
pub async fn set_password_in(
    tx: &impl GenericClient,
    user_id: i64,
    password_hash: &str,
) -> Result<(), AccountError> {
    tx.execute(
        "UPDATE planscape.users SET password_hash = $2 WHERE id = $1",
        &[&user_id, &password_hash],
    )
    .await?;
    tx.execute(
        "UPDATE planscape.sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        &[&user_id],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email(" Ana@Example.ORG ").ok().as_deref(),
            Some("ana@example.org")
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@x.org",
            "ana@x",
            "a b@x.org",
            "ana@x.org.",
            "a@b@c.org",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
