//! TLS to PostgreSQL: one rustls connector per [`CertCheck`] (what `sslmode` and
//! `sslrootcert` ask for), and the explanation of a failed connection in terms of what to
//! change.
//!
//! The crypto provider is aws-lc-rs, the one the AWS SDK already builds, passed to rustls
//! explicitly (no process-wide default is installed or relied on).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::DbError;
use crate::config::{CertCheck, RootCerts};

/// Builds the connector for `check`. Reads the root certificates (a file, or the system's
/// store): blocking work, run it off the async runtime ([`connector`] does).
pub fn build_connector(check: &CertCheck) -> Result<MakeRustlsConnect, DbError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        CertCheck::NoTls | CertCheck::None => Arc::new(AnyCertificate(Arc::clone(&provider))),
        CertCheck::Chain(roots) => Arc::new(ChainOnly(webpki(roots, &provider)?)),
        CertCheck::ChainAndHost(roots) => webpki(roots, &provider)?,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Tls(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// [`build_connector`] on a blocking thread.
pub async fn connector(check: CertCheck) -> Result<MakeRustlsConnect, DbError> {
    tokio::task::spawn_blocking(move || build_connector(&check))
        .await
        .map_err(|e| DbError::Tls(format!("cannot set up TLS: {e}")))?
}

/// rustls' standard verifier (chain, validity, host name) over `roots`.
fn webpki(
    roots: &RootCerts,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, DbError> {
    let store = Arc::new(root_store(roots)?);
    WebPkiServerVerifier::builder_with_provider(store, Arc::clone(provider))
        .build()
        .map_err(|e| DbError::RootCert(format!("{}: {e}", describe_roots(roots))))
}

/// The CA certificates of `roots`; a file that cannot be read or holds no certificate
/// is an error that names it.
fn root_store(roots: &RootCerts) -> Result<RootCertStore, DbError> {
    let certs: Vec<CertificateDer<'static>> = match roots {
        RootCerts::File(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                DbError::RootCert(format!(
                    "cannot read sslrootcert {}: {e}; point sslrootcert in DATABASE_URL at a \
                     readable PEM file of CA certificates (for RDS: global-bundle.pem)",
                    path.display()
                ))
            })?;
            CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    DbError::RootCert(format!(
                        "sslrootcert {} is not a PEM file of certificates: {e}",
                        path.display()
                    ))
                })?
        }
        RootCerts::System => rustls_native_certs::load_native_certs().certs,
    };
    let mut store = RootCertStore::empty();
    let (added, _unusable) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(DbError::RootCert(format!(
            "{} holds no usable CA certificate; give sslrootcert the PEM file of the CA \
             that signed the server's certificate",
            describe_roots(roots)
        )));
    }
    Ok(store)
}

fn describe_roots(roots: &RootCerts) -> String {
    match roots {
        RootCerts::File(path) => format!("sslrootcert {}", path.display()),
        RootCerts::System => "the system's CA store (sslrootcert=system or not set)".into(),
    }
}

/// `verify-ca`: rustls' verifier without the host-name comparison. rustls checks the
/// chain (to a root, within its validity, for server use) before it compares the name,
/// so a name mismatch reported by it means every other check passed; only that error is
/// forgiven.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without `sslrootcert`: encrypted, any certificate accepted
/// (libpq's meaning: protects against eavesdropping, not against an impostor). The
/// handshake signatures are still checked, so the server holds the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Explains a connection failure caused by TLS on either side: a certificate refused, a
/// server without TLS, a server that refuses plain connections. `None` for anything else.
/// `check`, when known, names the CA certificates a refused chain was checked against.
pub fn explain(e: &tokio_postgres::Error, check: Option<&CertCheck>) -> Option<DbError> {
    if let Some(db) = e.as_db_error() {
        let plain_refused = *db.code() == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            && (db.message().contains("no encryption") || db.message().contains("SSL off"));
        return plain_refused.then(|| DbError::EncryptionRequired(db.message().to_owned()));
    }
    if let Some(tls) = rustls_error(e) {
        return Some(DbError::Tls(match tls {
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "the server's certificate does not name the host connected to ({tls}); \
                 connect by a name the certificate holds (sslmode=verify-full compares them), \
                 or use sslmode=verify-ca to check the CA only"
            ),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                "the server's certificate is not signed by a trusted CA ({tls}{}); set \
                 sslrootcert in DATABASE_URL to the PEM file of the CA that signed it \
                 (for RDS: global-bundle.pem); without sslrootcert, verify-ca and \
                 verify-full trust the system's CA store",
                match check {
                    Some(CertCheck::Chain(roots) | CertCheck::ChainAndHost(roots)) =>
                        format!("; checked against {}", describe_roots(roots)),
                    _ => String::new(),
                }
            ),
            rustls::Error::InvalidCertificate(_) => format!(
                "the server's certificate was refused ({tls}); renew it, or fix sslrootcert"
            ),
            other => format!("the TLS handshake failed: {other}"),
        }));
    }
    let text = super::error_chain(e);
    text.contains("server does not support TLS").then(|| {
        DbError::Tls(
            "the server does not accept TLS connections (its `ssl` setting is off) but \
             sslmode asks for TLS; turn ssl on at the server, or set sslmode=disable (or \
             prefer) where a plain connection is acceptable"
                .into(),
        )
    })
}

/// The rustls error in `e`'s causes (tokio-rustls wraps it in an `io::Error`, whose
/// `source()` skips it, so each cause is unwrapped by hand).
fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(tls) = c.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(tls) = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        cause = c.source();
    }
    None
}
