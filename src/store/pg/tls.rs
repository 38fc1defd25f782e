//! TLS to PostgreSQL, with libpq's `sslmode` meanings, over rustls (aws-lc-rs, chosen
//! explicitly: never OpenSSL).
//!
//! | `sslmode` | encrypted | certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | when the server accepts TLS, else plain | no |
//! | `require` | always (fails on a server without TLS) | only with `sslrootcert` (chain, as `verify-ca`) |
//! | `verify-ca` | always | chain, against `sslrootcert` or the system's roots; not the host name |
//! | `verify-full` | always | chain and host name |
//!
//! [`Tls`] is the connector handed to `postgres::Config::connect`; [`Tls::new`] reads the
//! roots once (at open), so an unreadable `sslrootcert` fails the open, not a later reconnect.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// libpq's `sslmode`: whether to encrypt, and what to check of the server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain connections only.
    Disable,
    /// TLS when the server accepts it, plain otherwise; the certificate is not checked.
    Prefer,
    /// TLS or fail; the certificate is checked only when `sslrootcert` is given.
    Require,
    /// TLS, and the certificate chain must lead to a trusted root (any host name).
    VerifyCa,
    /// TLS, the chain must lead to a trusted root, and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    /// The URL's value, e.g. `verify-full`.
    pub(crate) fn parse(value: &str) -> Result<SslMode, TlsError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(TlsError::InvalidMode(other.to_owned())),
        })
    }

    /// The name as written in a URL.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What the client library does on the wire: the verify modes are `require` plus checks
    /// made by [`Tls`].
    pub(crate) fn wire(self) -> postgres::config::SslMode {
        match self {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                postgres::config::SslMode::Require
            }
        }
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The TLS settings of a PostgreSQL URL cannot be used.
#[derive(Debug, Error)]
pub enum TlsError {
    /// `sslmode` has a value libpq does not know.
    #[error(
        "invalid sslmode `{0}` in the PostgreSQL URL: use one of disable, prefer, require, verify-ca, verify-full"
    )]
    InvalidMode(String),
    /// The `sslrootcert` file cannot be read.
    #[error("cannot read the sslrootcert file {}: {source}", path.display())]
    ReadRoots {
        /// The file named by `sslrootcert`.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: io::Error,
    },
    /// The `sslrootcert` file is not a PEM bundle of certificates.
    #[error(
        "the sslrootcert file {} is not usable: {why} (expected PEM certificates, `-----BEGIN CERTIFICATE-----` blocks)",
        path.display()
    )]
    InvalidRoots {
        /// The file named by `sslrootcert`.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// `verify-ca`/`verify-full` without `sslrootcert`, and the system has no roots.
    #[error(
        "sslmode={mode} without sslrootcert needs the system's root certificates, and none could be loaded{why}: give the CA that signed the server's certificate with sslrootcert=/path/ca.pem"
    )]
    NoSystemRoots {
        /// The mode asking for verification.
        mode: SslMode,
        /// What went wrong loading them, if anything was reported.
        why: String,
    },
    /// rustls refused the configuration (a bug, or a broken crypto provider).
    #[error("cannot set up TLS for PostgreSQL: {0}")]
    Setup(#[from] rustls::Error),
}

/// The TLS handshake with the server failed.
#[derive(Debug, Error)]
pub enum HandshakeError {
    /// The server's certificate did not pass the checks `sslmode` asks for.
    #[error("the server's certificate failed verification under sslmode={mode}: {why}; {hint}")]
    Certificate {
        /// The mode that asked for the check.
        mode: SslMode,
        /// What is wrong with the certificate.
        why: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// The host name cannot be used to check a certificate.
    #[error("the host `{0}` is not a valid name for TLS")]
    HostName(String),
    /// Any other failure (connection reset, protocol error).
    #[error("TLS handshake failed: {0}")]
    Io(#[from] io::Error),
}

/// The connector for `postgres::Config::connect`: the rustls settings `sslmode` and
/// `sslrootcert` call for (unused when `sslmode=disable`).
#[derive(Clone)]
pub(crate) struct Tls {
    mode: SslMode,
    /// Whether the roots come from `sslrootcert` (else the system's, or none are used).
    root_file: bool,
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("mode", &self.mode).finish()
    }
}

impl Tls {
    /// Reads the roots (`root_cert`, else the system's when the mode verifies) and builds the
    /// rustls client configuration.
    pub(crate) fn new(mode: SslMode, root_cert: Option<&Path>) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = match (mode, root_cert) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => {
                Arc::new(AnyCertificate { algorithms })
            }
            (SslMode::Require | SslMode::VerifyCa, roots) => {
                Arc::new(ChainOnly(webpki(read_roots(mode, roots)?, &provider)?))
            }
            (SslMode::VerifyFull, roots) => webpki(read_roots(mode, roots)?, &provider)?,
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // What libpq 17 sends: lets a server that negotiates directly accept us.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Tls {
            mode,
            root_file: root_cert.is_some(),
            config: Arc::new(config),
        })
    }
}

/// The trusted roots: the `sslrootcert` bundle, or the system's.
fn read_roots(mode: SslMode, file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let Some(path) = file else {
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found
                .errors
                .first()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            return Err(TlsError::NoSystemRoots { mode, why });
        }
        return Ok(roots);
    };
    let invalid = |why: String| TlsError::InvalidRoots {
        path: path.to_owned(),
        why,
    };
    let pem = std::fs::read(path).map_err(|source| TlsError::ReadRoots {
        path: path.to_owned(),
        source,
    })?;
    let mut any = false;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(format!("cannot parse it as PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("a certificate in it is invalid: {e}")))?;
        any = true;
    }
    if !any {
        return Err(invalid("it holds no certificate".into()));
    }
    Ok(roots)
}

fn webpki(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Setup(rustls::Error::General(e.to_string())))
}

/// `prefer`, and `require` without `sslrootcert`: encryption without authentication, as
/// libpq. The handshake's signatures are still checked (the server holds the certificate's
/// key), only the certificate's chain and name are not.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name is not checked (webpki checks
/// the name after the chain, so a name mismatch means the chain was good).
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

impl<S> MakeTlsConnect<S> for Tls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = HandshakeError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Connect, HandshakeError> {
        // Called for every connection, TLS or not (a unix socket has no name): a bad name is
        // an error only once a handshake needs it.
        Ok(Connect {
            tls: self.clone(),
            name: ServerName::try_from(domain.to_owned()).map_err(|_| domain.to_owned()),
        })
    }
}

/// One connection's handshake.
pub(crate) struct Connect {
    tls: Tls,
    name: Result<ServerName<'static>, String>,
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = HandshakeError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream<S>, HandshakeError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = self.name.map_err(HandshakeError::HostName)?;
            let connector = tokio_rustls::TlsConnector::from(self.tls.config.clone());
            match connector.connect(name, stream).await {
                Ok(s) => Ok(Stream(s)),
                Err(e) => Err(explain(&self.tls, e)),
            }
        })
    }
}

/// A failed handshake, with what to do about a refused certificate.
fn explain(tls: &Tls, e: io::Error) -> HandshakeError {
    let refused = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|r| match r {
            rustls::Error::InvalidCertificate(why) => Some(why.clone()),
            _ => None,
        });
    let Some(why) = refused else {
        return HandshakeError::Io(e);
    };
    let name = matches!(
        why,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
    );
    let hint = match (tls.mode, tls.root_file, name) {
        (_, _, true) => {
            "connect by a name the certificate holds, or use sslmode=verify-ca to check the chain only"
        }
        (SslMode::Require, _, _) => {
            "check that sslrootcert names the CA that signed the server's certificate, or leave sslrootcert out to encrypt without verifying"
        }
        (_, true, _) => {
            "check that sslrootcert names the CA that signed the server's certificate, or use sslmode=require without sslrootcert to encrypt without verifying"
        }
        (_, false, _) => {
            "give the CA that signed it with sslrootcert=/path/ca.pem, or use sslmode=require to encrypt without verifying"
        }
    };
    HandshakeError::Certificate {
        mode: tls.mode,
        why: describe(&why),
        hint,
    }
}

/// What is wrong with a certificate, in words.
fn describe(why: &CertificateError) -> String {
    match why {
        CertificateError::UnknownIssuer => {
            "it is not signed by a trusted root (unknown issuer)".into()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("it has expired ({why})")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("it is not valid yet ({why})")
        }
        CertificateError::Revoked => "it has been revoked".into(),
        CertificateError::BadSignature => "its signature does not verify".into(),
        CertificateError::BadEncoding => "it cannot be decoded".into(),
        other => other.to_string(),
    }
}

/// An encrypted connection.
pub(crate) struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    /// No channel binding: SCRAM runs without `-PLUS` (as libpq with
    /// `channel_binding=prefer` against a client that cannot bind).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}
