//! Password reset by email: a random single-use token (as random as a session token),
//! mailed as a link to the web app and stored only as its hash, expiring after
//! `accounts.reset_ttl_s`. Asking again replaces the account's earlier tokens; using
//! one sets the password and ends every session of the account, in one transaction.

use tokio_postgres::GenericClient;

use super::{AccountError, User, session, user_from};

/// A reset that cannot go ahead.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// The token is unknown, was used, replaced or has expired.
    #[error("the reset link is unknown, used or expired")]
    InvalidToken,
    /// The account store failed.
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl From<tokio_postgres::Error> for ResetError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Account(e.into())
    }
}

/// Makes a reset token for the account with `email`, replacing its earlier ones (and
/// dropping everyone's expired ones); `None` when no account has this email.
pub async fn issue(
    client: &mut deadpool_postgres::Client,
    email: &str,
    ttl_s: u64,
    key: Option<&[u8]>,
) -> Result<Option<(User, String)>, AccountError> {
    let Some((user, _)) = super::find_by_email(&***client, email).await? else {
        return Ok(None);
    };
    let token = session::new_token().map_err(AccountError::Internal)?;
    let hash = session::token_hash(&token, key);
    let ttl = i64::try_from(ttl_s).unwrap_or(i64::MAX / 2);
    let tx = client.transaction().await?;
    tx.execute(
        "DELETE FROM planscape.password_resets WHERE user_id = $1 OR expires_at < now()",
        &[&user.id],
    )
    .await?;
    tx.execute(
        "INSERT INTO planscape.password_resets (token_hash, user_id, expires_at) \
         VALUES ($1, $2, now() + make_interval(secs => $3::bigint))",
        &[&hash, &user.id, &ttl],
    )
    .await?;
    tx.commit().await?;
    Ok(Some((user, token)))
}

/// The account a token may reset (unused, unexpired), checked before the new password
/// is hashed; [`complete`] checks it again, atomically.
pub async fn check(
    client: &impl GenericClient,
    token: &str,
    key: Option<&[u8]>,
) -> Result<User, ResetError> {
    if !session::plausible(token) {
        return Err(ResetError::InvalidToken);
    }
    let hash = session::token_hash(token, key);
    let row = client
        .query_opt(
            "SELECT u.id, u.email, u.name, u.is_admin FROM planscape.password_resets r \
             JOIN planscape.users u ON u.id = r.user_id \
             WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > now()",
            &[&hash],
        )
        .await?;
    row.as_ref().map(user_from).ok_or(ResetError::InvalidToken)
}

/// Uses the token: marks it used, sets the password (already hashed) and revokes every
/// session of the account, all or nothing. A token raced by another use is refused.
pub async fn complete(
    client: &mut deadpool_postgres::Client,
    token: &str,
    password_hash: &str,
    key: Option<&[u8]>,
) -> Result<User, ResetError> {
    if !session::plausible(token) {
        return Err(ResetError::InvalidToken);
    }
    let hash = session::token_hash(token, key);
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "UPDATE planscape.password_resets SET used_at = now() \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id",
            &[&hash],
        )
        .await?;
    let Some(row) = row else {
        return Err(ResetError::InvalidToken);
    };
    let user_id: i64 = row.get(0);
    super::set_password_in(&*tx, user_id, password_hash).await?;
    let user = tx
        .query_one(
            "SELECT id, email, name, is_admin FROM planscape.users WHERE id = $1",
            &[&user_id],
        )
        .await?;
    tx.commit().await?;
    Ok(user_from(&user))
}

/// The link a reset mail carries: the web app with the token in the fragment (which
/// browsers never send to a server, nor in `Referer`).
pub fn link(app_url: &str, token: &str) -> String {
    format!("{}/#reset={token}", app_url.trim_end_matches('/'))
}

/// The subject and text of the reset mail.
pub fn mail_text(user: &User, link: &str, ttl_s: u64) -> (String, String) {
    let minutes = ttl_s.div_ceil(60);
    let within = if minutes.is_multiple_of(60) {
        match minutes / 60 {
            1 => "1 hour".to_owned(),
            h => format!("{h} hours"),
        }
    } else if minutes == 1 {
        "1 minute".to_owned()
    } else {
        format!("{minutes} minutes")
    };
    let subject = "Reset your Planscape password".to_owned();
    let body = format!(
        "Hello {name},\n\n\
         someone, hopefully you, asked to reset the password of the Planscape account \
         {email}.\n\n\
         To choose a new password, open this link within {within}:\n\n\
         {link}\n\n\
         The link works once, and every device signed in to the account is signed out.\n\
         If you did not ask for this, ignore this mail: your password stays as it is.\n",
        name = user.name,
        email = user.email,
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_text() {
        assert_eq!(
            link("https://p.example.org/", "abc"),
            "https://p.example.org/#reset=abc"
        );
        assert_eq!(link("http://h:1/app", "t"), "http://h:1/app/#reset=t");
        let user = User {
            id: 1,
            email: "ana@example.org".into(),
            name: "Ana".into(),
            is_admin: false,
        };
        let (subject, body) = mail_text(&user, "http://x/#reset=t", 3600);
        assert!(subject.contains("password"));
        assert!(body.contains("http://x/#reset=t") && body.contains("within 1 hour"));
        assert!(mail_text(&user, "l", 900).1.contains("within 15 minutes"));
        assert!(mail_text(&user, "l", 7200).1.contains("within 2 hours"));
    }
}
