//! The one database error: start-up failures and PostgreSQL errors classified by what
//! a caller can do about them (retry later, fix the input, report a bug).

use tokio_postgres::error::SqlState;

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
    #[error("invalid database URL")]
    Url,
    /// The pool could not be built.
    #[error("cannot build the connection pool: {0}")]
    Pool(String),
    /// Connecting failed.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] tokio_postgres::Error),
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

impl From<tokio_postgres::Error> for DbError {
    /// Classifies a query error: connection loss and shutdown are `Unavailable`, as is
    /// any failure that is not the server's answer.
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            return Self::Unavailable(e.to_string());
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
