//! `DATABASE_URL` as libpq reads it, including the TLS settings tokio-postgres' own parser
//! does not know: `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`)
//! and `sslrootcert` (a PEM file, or `system` for the system's CA certificates).
//!
//! Both forms libpq accepts are read: the URL (`postgres://u@h/db?sslmode=verify-full`)
//! and the key/value string (`host=h dbname=db sslmode=verify-full`). The two TLS keys
//! are taken out of the string, and everything else goes to tokio-postgres' parser
//! unchanged, so every other key means what it meant before.

use std::path::PathBuf;

/// How much TLS a connection insists on, with libpq's names and meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain connections only.
    Disable,
    /// TLS when the server offers it, plain otherwise; the certificate is not checked
    /// (unless `sslrootcert` is set). libpq's default, and ours.
    Prefer,
    /// TLS or no connection; the certificate is not checked, unless `sslrootcert` is set:
    /// then, as in libpq, it is checked as for [`SslMode::VerifyCa`].
    Require,
    /// TLS, and the server's certificate chain must lead to a trusted CA.
    VerifyCa,
    /// As [`SslMode::VerifyCa`], and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// The mode of an `sslmode` value, or `None` for a value that is not one.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    /// The libpq name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Which CA certificates a server's certificate is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// The certificates of a PEM file (`sslrootcert=/path/ca.pem`).
    File(PathBuf),
    /// The system's CA certificates (`sslrootcert=system`, or no `sslrootcert` with
    /// `verify-ca`/`verify-full`), as the OS trust store holds them
    /// (`/etc/ssl/certs` on Debian).
    System,
}

/// What a certificate check involves, derived from the mode and the root certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertCheck {
    /// No TLS is attempted.
    NoTls,
    /// Encrypted, but any certificate is accepted.
    None,
    /// The chain must lead to one of `roots`; the host name is not compared.
    Chain(RootCerts),
    /// The chain must lead to one of `roots` and the certificate must name the host.
    ChainAndHost(RootCerts),
}

/// A parsed `DATABASE_URL`: the connection settings and the TLS policy.
#[derive(Debug, Clone)]
pub struct DatabaseUrl {
    /// Everything but the TLS policy; its `ssl_mode` is set to what tokio-postgres
    /// should negotiate (`disable`, `prefer`, or `require` for the three TLS modes).
    pub connection: tokio_postgres::Config,
    /// `sslmode` (default `prefer`, or `verify-full` with `sslrootcert=system`).
    pub ssl_mode: SslMode,
    /// `sslrootcert`, when given.
    pub root_cert: Option<RootCerts>,
}

/// Why a `DATABASE_URL` cannot be used. Messages never echo the URL (it may hold a
/// password), only the TLS keys' own values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseUrlError {
    /// `sslmode` has a value that is not a mode.
    #[error(
        "sslmode `{0}` is not one of disable, prefer, require, verify-ca, verify-full \
         (libpq's `allow` is not supported: use prefer)"
    )]
    SslMode(String),
    /// `sslrootcert` is empty.
    #[error("sslrootcert is empty: give the path of a PEM file of CA certificates, or `system`")]
    EmptyRootCert,
    /// `sslrootcert=system` with a mode weaker than `verify-full` (libpq refuses it too:
    /// the system's CAs sign certificates for anyone, so only the host name protects).
    #[error("sslrootcert=system needs sslmode=verify-full (it is `{0}`)")]
    WeakSystemRoots(&'static str),
    /// tokio-postgres refused the rest (its message names the key at fault).
    #[error("not a valid PostgreSQL URL or key=value string ({0})")]
    Syntax(String),
}

impl DatabaseUrl {
    /// Parses a URL (`postgres://` or `postgresql://`) or a key=value string.
    pub fn parse(text: &str) -> Result<Self, DatabaseUrlError> {
        let (rest, tls) = if is_url(text) {
            split_url(text)
        } else {
            split_key_values(text)
        };
        let mut connection: tokio_postgres::Config = rest
            .parse()
            .map_err(|e: tokio_postgres::Error| DatabaseUrlError::Syntax(describe(&e)))?;
        let mut ssl_mode = None;
        let mut root_cert = None;
        for (key, value) in tls {
            match key {
                TlsKey::SslMode => {
                    ssl_mode = Some(SslMode::parse(&value).ok_or(DatabaseUrlError::SslMode(value))?)
                }
                TlsKey::RootCert => {
                    root_cert = Some(match value.as_str() {
                        "" => return Err(DatabaseUrlError::EmptyRootCert),
                        "system" => RootCerts::System,
                        path => RootCerts::File(PathBuf::from(path)),
                    })
                }
            }
        }
        let ssl_mode = match (ssl_mode, &root_cert) {
            (Some(mode), _) => mode,
            (None, Some(RootCerts::System)) => SslMode::VerifyFull,
            (None, _) => SslMode::Prefer,
        };
        if root_cert == Some(RootCerts::System) && ssl_mode != SslMode::VerifyFull {
            return Err(DatabaseUrlError::WeakSystemRoots(ssl_mode.as_str()));
        }
        connection.ssl_mode(match ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        Ok(Self {
            connection,
            ssl_mode,
            root_cert,
        })
    }

    /// The certificate check the mode and root certificates call for.
    pub fn cert_check(&self) -> CertCheck {
        let roots = self.root_cert.clone();
        match self.ssl_mode {
            SslMode::Disable => CertCheck::NoTls,
            SslMode::Prefer | SslMode::Require => roots.map_or(CertCheck::None, CertCheck::Chain),
            SslMode::VerifyCa => CertCheck::Chain(roots.unwrap_or(RootCerts::System)),
            SslMode::VerifyFull => CertCheck::ChainAndHost(roots.unwrap_or(RootCerts::System)),
        }
    }
}

/// tokio-postgres' parse error with its cause (`invalid value for option port`), which
/// names keys, never values.
fn describe(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) if !cause.to_string().starts_with("unexpected character") => cause.to_string(),
        _ => e.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsKey {
    SslMode,
    RootCert,
}

fn tls_key(key: &str) -> Option<TlsKey> {
    match key {
        "sslmode" => Some(TlsKey::SslMode),
        "sslrootcert" => Some(TlsKey::RootCert),
        _ => None,
    }
}

fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// Takes the TLS keys out of a URL's query (decoded), returning the URL without them.
/// The query starts at the first `?` after the user info, as in tokio-postgres' parser
/// (which takes everything up to the first `@` as user info).
fn split_url(text: &str) -> (String, Vec<(TlsKey, String)>) {
    let scheme_end = text.find("://").map_or(0, |i| i + 3);
    let after_user = text[scheme_end..]
        .find('@')
        .map_or(scheme_end, |i| scheme_end + i + 1);
    let Some(q) = text[after_user..].find('?').map(|i| after_user + i) else {
        return (text.to_owned(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut tls = Vec::new();
    for param in text[q + 1..].split('&') {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match tls_key(&decode(key)) {
            Some(k) if param.contains('=') => tls.push((k, decode(value))),
            _ => kept.push(param),
        }
    }
    let mut rest = text[..q].to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    (rest, tls)
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Takes the TLS keys out of a key=value string (values plain or in single quotes,
/// backslash escapes, as libpq reads them), returning the string without them. A string
/// this scan cannot follow is returned whole, for tokio-postgres to report.
fn split_key_values(text: &str) -> (String, Vec<(TlsKey, String)>) {
    let mut rest = String::new();
    let mut tls = Vec::new();
    let mut it = text.char_indices().peekable();
    let mut kept_from = 0;
    loop {
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = it.peek() else { break };
        let mut key = String::new();
        while let Some((_, c)) = it.next_if(|(_, c)| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if it.next_if(|(_, c)| *c == '=').is_none() {
            return (text.to_owned(), Vec::new());
        }
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        let quoted = it.next_if(|(_, c)| *c == '\'').is_some();
        loop {
            match it.peek() {
                None if quoted => return (text.to_owned(), Vec::new()),
                None => break,
                Some(&(_, '\'')) if quoted => {
                    it.next();
                    break;
                }
                Some(&(_, c)) if !quoted && c.is_whitespace() => break,
                Some(_) => {}
            }
            if let Some((_, c)) = it.next() {
                if c == '\\' {
                    if let Some((_, escaped)) = it.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        let end = it.peek().map_or(text.len(), |&(i, _)| i);
        if let Some(k) = tls_key(&key) {
            rest.push_str(&text[kept_from..start]);
            kept_from = end;
            tls.push((k, value));
        }
    }
    rest.push_str(&text[kept_from..]);
    (rest, tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> DatabaseUrl {
        DatabaseUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn url_form_takes_out_the_tls_keys() {
        let url = parse(
            "postgres://u:p%3Fw@db.example.com:6432/app?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fssl%2Frds.pem",
        );
        assert_eq!(url.ssl_mode, SslMode::VerifyFull);
        assert_eq!(
            url.root_cert,
            Some(RootCerts::File("/etc/ssl/rds.pem".into()))
        );
        assert_eq!(url.connection.get_dbname(), Some("app"));
        assert_eq!(url.connection.get_password(), Some(&b"p?w"[..]));
        assert_eq!(url.connection.get_ports(), &[6432]);
        assert_eq!(url.connection.get_application_name(), Some("x"));
        assert_eq!(
            url.connection.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(
            url.cert_check(),
            CertCheck::ChainAndHost(RootCerts::File("/etc/ssl/rds.pem".into()))
        );
    }

    #[test]
    fn a_question_mark_in_the_password_is_not_the_query() {
        let url = parse("postgres://u:a?b@h/d?sslmode=require");
        assert_eq!(url.connection.get_password(), Some(&b"a?b"[..]));
        assert_eq!(url.ssl_mode, SslMode::Require);
        assert_eq!(url.cert_check(), CertCheck::None);
    }

    #[test]
    fn key_value_form_takes_out_the_tls_keys() {
        let url = parse(
            "host=db.example.com sslrootcert = '/etc/my ca\\'s.pem' dbname=app sslmode=verify-ca user=u",
        );
        assert_eq!(url.ssl_mode, SslMode::VerifyCa);
        assert_eq!(
            url.root_cert,
            Some(RootCerts::File("/etc/my ca's.pem".into()))
        );
        assert_eq!(url.connection.get_dbname(), Some("app"));
        assert_eq!(url.connection.get_user(), Some("u"));
        assert_eq!(
            url.cert_check(),
            CertCheck::Chain(RootCerts::File("/etc/my ca's.pem".into()))
        );
    }

    #[test]
    fn defaults_follow_libpq() {
        let url = parse("postgres://u@h/d");
        assert_eq!(url.ssl_mode, SslMode::Prefer);
        assert_eq!(url.cert_check(), CertCheck::None);
        assert_eq!(
            url.connection.get_ssl_mode(),
            tokio_postgres::config::SslMode::Prefer
        );
        // require with a root certificate checks the chain, as in libpq.
        let url = parse("postgres://u@h/d?sslmode=require&sslrootcert=ca.pem");
        assert_eq!(
            url.cert_check(),
            CertCheck::Chain(RootCerts::File("ca.pem".into()))
        );
        // verify-* without a root certificate uses the system's.
        let url = parse("postgres://u@h/d?sslmode=verify-ca");
        assert_eq!(url.cert_check(), CertCheck::Chain(RootCerts::System));
        // sslrootcert=system alone means verify-full (libpq 16).
        let url = parse("postgres://u@h/d?sslrootcert=system");
        assert_eq!(url.ssl_mode, SslMode::VerifyFull);
        let url = parse("host=h sslmode=disable sslrootcert=ca.pem");
        assert_eq!(url.cert_check(), CertCheck::NoTls);
        assert_eq!(
            url.connection.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
    }

    #[test]
    fn bad_tls_values_are_refused_with_the_fix() {
        let err = DatabaseUrl::parse("postgres://u:secret@h/d?sslmode=verfy-full").unwrap_err();
        assert_eq!(err, DatabaseUrlError::SslMode("verfy-full".into()));
        assert!(err.to_string().contains("verify-full"), "{err}");
        assert!(!err.to_string().contains("secret"));
        let err = DatabaseUrl::parse("host=h sslmode=allow").unwrap_err();
        assert_eq!(err, DatabaseUrlError::SslMode("allow".into()));
        let err = DatabaseUrl::parse("postgres://h/d?sslrootcert=").unwrap_err();
        assert_eq!(err, DatabaseUrlError::EmptyRootCert);
        let err =
            DatabaseUrl::parse("postgres://h/d?sslmode=require&sslrootcert=system").unwrap_err();
        assert_eq!(err, DatabaseUrlError::WeakSystemRoots("require"));
    }

    #[test]
    fn other_errors_name_the_key_not_the_value() {
        let err = DatabaseUrl::parse("postgres://u:secret@h:notaport/d").unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = DatabaseUrl::parse("postgres://u@h/d?sslcert=client.pem").unwrap_err();
        assert!(err.to_string().contains("sslcert"), "{err}");
        let err = DatabaseUrl::parse("host=h password='secret").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
