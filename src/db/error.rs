//! The one database error: start-up failures and PostgreSQL errors classified by what
//! a caller can do about them (retry later, fix the input, report a bug).

use tokio_postgres::error::SqlState;

use crate::config::DatabaseUrlError;

/// What PostgreSQL said: its SQLSTATE, message and, for constraint errors, the
/// constraint. Shown as `code: message`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ServerError {
    /// The SQLSTATE code.
    pub code: String,
    /// The server's message.
    pub message: String,
    /// The constraint at fault, when one is.
    pub constraint: Option<String>,
}

/// A database problem.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL could not be parsed (the message never echoes the URL: it may hold a password).
    #[error("invalid database URL: {0}")]
    Url(#[source] DatabaseUrlError),
    /// The pool could not be built.
    #[error("cannot build the connection pool: {0}")]
    Pool(String),
    /// Connecting failed for a reason other than TLS (the server down or starting, a
    /// wrong address or password); the first two pass, so start-up retries it.
    #[error("cannot connect to the database: {}", super::error_chain(.0))]
    Connect(#[source] tokio_postgres::Error),
    /// `sslrootcert` cannot be used (missing, unreadable, no certificate in it); the
    /// message names the file and what to do.
    #[error("database TLS: {0}")]
    RootCert(String),
    /// The TLS handshake failed (certificate refused, host name mismatch, server without
    /// TLS); the message says what to change.
    #[error("cannot connect to the database over TLS: {0}")]
    Tls(String),
    /// The server refused a plain connection (`hostssl`-only `pg_hba.conf`, RDS'
    /// `rds.force_ssl`).
    #[error(
        "the database refuses unencrypted connections ({0}); set sslmode=verify-full and \
         sslrootcert=<CA file> (or at least sslmode=require) in DATABASE_URL"
    )]
    EncryptionRequired(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The database cannot be reached now (down, restarting, shutting down, connection
    /// lost, no pooled connection free in time).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The statement ran past `statement_timeout` (or was cancelled).
    #[error("statement timed out")]
    Timeout,
    /// A row would repeat a unique key (or break an exclusion constraint).
    #[error("{0}")]
    Unique(ServerError),
    /// A row refers to one that does not exist, or one still referred to was removed.
    #[error("{0}")]
    ForeignKey(ServerError),
    /// A value breaks a CHECK or NOT NULL rule.
    #[error("{0}")]
    Check(ServerError),
    /// A value PostgreSQL cannot take (a data exception: bad text, out of range).
    #[error("{0}")]
    InvalidValue(ServerError),
    /// Any other error the server reported.
    #[error("{0}")]
    Server(ServerError),
}

impl DbError {
    /// Whether trying again later may succeed (the server down, starting, or busy);
    /// false for what only a change of configuration or certificates fixes (the URL,
    /// `sslrootcert`, a refused certificate, TLS required by one side only).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Connect(_) | Self::Unavailable(_) | Self::Timeout
        )
    }
}

impl From<tokio_postgres::Error> for DbError {
    /// Classifies a query error: connection loss and shutdown are `Unavailable`, as is
    /// any failure that is not the server's answer; TLS failures (a pooled connection
    /// being made) are explained as [`DbError::Tls`] or [`DbError::EncryptionRequired`].
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(tls) = super::tls::explain(&e, None) {
            return tls;
        }
        let Some(db) = e.as_db_error() else {
            return Self::Unavailable(super::error_chain(&e));
        };
        let code = db.code();
        if *code == SqlState::QUERY_CANCELED {
            return Self::Timeout;
        }
        if [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .contains(code)
        {
            return Self::Unavailable(db.message().to_owned());
        }
        let server = ServerError {
            code: code.code().to_owned(),
            message: db.message().to_owned(),
            constraint: db.constraint().map(str::to_owned),
        };
        match code {
            c if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::EXCLUSION_VIOLATION => {
                Self::Unique(server)
            }
            c if *c == SqlState::FOREIGN_KEY_VIOLATION || *c == SqlState::RESTRICT_VIOLATION => {
                Self::ForeignKey(server)
            }
            c if *c == SqlState::CHECK_VIOLATION || *c == SqlState::NOT_NULL_VIOLATION => {
                Self::Check(server)
            }
            c if c.code().starts_with("22") => Self::InvalidValue(server),
            _ => Self::Server(server),
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    /// Classifies a pool error: anything but the server's own answer is `Unavailable`.
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Self::from(e),
            other => Self::Unavailable(other.to_string()),
        }
    }
}
