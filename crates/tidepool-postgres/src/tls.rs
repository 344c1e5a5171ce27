//! TLS through rustls (ring provider), with libpq's sslmode meanings:
//! `verify-full` checks the chain and the host name, `verify-ca` the chain
//! only, `require`/`prefer` encrypt and check the chain only when a CA file
//! is given. Trust comes from the webpki roots plus the optional CA file.
//! A client certificate (`sslcert` + `sslkey`) is presented when the server
//! asks for one; both files are read once, when the manager is built, and
//! the key's content never reaches an error. This module builds the rustls config; tokio-postgres-rustls does the
//! handshake. It never downgrades: `require` and stricter map to
//! tokio-postgres's `Require`, which fails when the server has no TLS.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::PgConfig;
use crate::error::ConfigError;
use crate::modes::SslMode;

/// The TLS connector handed to tokio-postgres: rustls with libpq's
/// sslmode meanings, the webpki roots plus the configuration's CA file, and
/// its client certificate. Made by [`PgConfig::tls_connector`] for code
/// that opens tokio-postgres connections itself.
#[derive(Clone)]
pub struct PgTls(MakeRustlsConnect);

impl std::fmt::Debug for PgTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTls").finish_non_exhaustive()
    }
}

impl PgConfig {
    /// The TLS connector this configuration asks for, built as
    /// [`PgManager`](crate::PgManager) builds its own: `sslmode`'s meaning
    /// as libpq's, trust in the webpki roots plus `sslrootcert`, the client
    /// certificate `sslcert` + `sslkey`. Files are read now, once; an
    /// unreadable or unusable one is a [`ConfigError`] naming the file
    /// (never its content). For code that opens tokio-postgres connections
    /// itself — tidepool-diesel hands them to diesel-async. Pass it to
    /// [`tokio_postgres::Config::connect`] with the configs of
    /// [`to_tokio_configs`](Self::to_tokio_configs); with `sslmode=disable`
    /// tokio-postgres never uses it.
    ///
    /// ```
    /// use tidepool_postgres::PgConfig;
    /// let config = PgConfig::from_url("postgres://app@127.0.0.1/app?sslmode=require")?;
    /// let tls = config.tls_connector()?;
    /// let missing = PgConfig::from_url("postgres://app@127.0.0.1/app?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")?;
    /// assert!(missing.tls_connector().unwrap_err().to_string().contains("/nonexistent/ca.pem"));
    /// # let _ = tls;
    /// # Ok::<(), tidepool_postgres::ConfigError>(())
    /// ```
    pub fn tls_connector(&self) -> Result<PgTls, ConfigError> {
        let tls = if self.ssl_mode == SslMode::Disable {
            // A connector is wanted anyway (tokio-postgres skips it); like
            // libpq, `disable` reads none of the certificate files.
            connector(&PgConfig::new().ssl_mode(SslMode::Require), None)?
        } else {
            connector(self, self.ssl_root_cert.as_deref())?
        };
        tls.ok_or(ConfigError::CaFile {
            path: "(TLS setup)".into(),
            reason: "no TLS connector was built".into(),
        })
    }
}

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = <MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, hostname: &str) -> Result<Self::TlsConnect, Self::Error> {
        // tokio-postgres passes "" for unix sockets, where the server never
        // offers TLS; any valid name will do there.
        let name = if hostname.is_empty() {
            "localhost"
        } else {
            hostname
        };
        MakeTlsConnect::<S>::make_tls_connect(&mut self.0, name)
    }
}

/// The connector for `config`'s sslmode and client certificate, trusting
/// `ca_file` besides the webpki roots; `None` for `disable`.
pub(crate) fn connector(
    config: &PgConfig,
    ca_file: Option<&Path>,
) -> Result<Option<PgTls>, ConfigError> {
    let mode = config.ssl_mode;
    if mode == SslMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        add_ca_file(&mut roots, path)?;
    }
    let roots = Arc::new(roots);
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| ConfigError::CaFile {
            path: ca_file
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(webpki roots)".into()),
            reason: e.to_string(),
        })?;
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, ca_file) {
        (SslMode::VerifyFull, _) => webpki,
        (SslMode::VerifyCa, _) | (_, Some(_)) => Arc::new(IgnoreHostname(webpki)),
        _ => Arc::new(EncryptOnly(provider.clone())),
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::CaFile {
            path: "(TLS setup)".into(),
            reason: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let tls = match (&config.ssl_cert, &config.ssl_key) {
        (Some(cert), Some(key)) => {
            let chain = client_chain(cert)?;
            let key_der = client_key(key)?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| ConfigError::ClientCert {
                    path: cert.display().to_string(),
                    reason: format!("the certificate and key cannot be used together: {e}"),
                })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Some(PgTls(MakeRustlsConnect::new(tls))))
}

/// The client certificate chain from a PEM file (read once, at build time).
fn client_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let fail = |reason: String| ConfigError::ClientCert {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let chain = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(fail("no CERTIFICATE block found".into()));
    }
    Ok(chain)
}

/// The client's private key from a PEM file. Errors never quote the file.
fn client_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let fail = |reason: &str| ConfigError::ClientCert {
        path: path.display().to_string(),
        reason: reason.to_string(),
    };
    let pem = std::fs::read(path).map_err(|e| ConfigError::ClientCert {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    match rustls_pemfile::private_key(&mut pem.as_slice()) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(fail(
            "no unencrypted PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block found",
        )),
        Err(_) => Err(fail("the key file is not valid PEM")),
    }
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), ConfigError> {
    let fail = |reason: String| ConfigError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut added = 0;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| fail(format!("not PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| fail(format!("not a usable CA certificate: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(fail("no CERTIFICATE block found".into()));
    }
    Ok(())
}

/// `verify-ca`: the chain must be trusted; the name may differ.
#[derive(Debug)]
struct IgnoreHostname(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for IgnoreHostname {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name, so a name error means the
        // chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
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

/// `require`/`prefer` without a CA file (libpq's meaning): encrypt, accept
/// any certificate, but still check the handshake's signatures.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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
