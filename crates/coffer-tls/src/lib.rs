//! TLS for Coffer's servers and their clients.
//!
//! Servers use a certificate from configuration or, by default, a self-signed development
//! certificate made at set-up. Clients accept a server only by the SHA-256 fingerprint of
//! its certificate (pinning), so no certificate authority is trusted at all: a front-end
//! with a development certificate is as safe as one with a public one, once pinned.

mod files;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use files::IdentityDir;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make a certificate: {0}")]
    Certificate(String),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("{0}")]
    Pin(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl TlsError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> TlsError {
        TlsError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A certificate and its private key, both DER.
pub struct Identity {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity(certificate {})", fingerprint(&self.cert_der))
    }
}

/// A self-signed certificate for `names` (host names or IP addresses).
pub fn development_identity(names: &[String]) -> Result<Identity, TlsError> {
    let cert = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    Ok(Identity {
        cert_der: cert.cert.der().to_vec(),
        key_der: cert.key_pair.serialize_der(),
    })
}

/// SHA-256 of a DER certificate, lower-case hex: what clients pin.
pub fn fingerprint(cert_der: &[u8]) -> String {
    Sha256::digest(cert_der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// A server configuration for `identity` (TLS 1.2 and 1.3, HTTP/1.1).
pub fn server_config(identity: &Identity) -> Result<ServerConfig, TlsError> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_der.clone()));
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(identity.cert_der.clone())], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A client configuration for public services (a verification gateway): the usual web
/// certificate authorities, from the webpki-roots bundle.
pub fn public_client_config() -> Result<ClientConfig, TlsError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Whether `text` is a certificate fingerprint: exactly 64 hex digits (SHA-256).
pub fn is_fingerprint(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A client configuration that accepts only server certificates with these fingerprints:
/// the current one and, during a rotation, the next (docs/OPERATIONS.md).
pub fn pinned_client_config<S: AsRef<str>>(fingerprints: &[S]) -> Result<ClientConfig, TlsError> {
    if fingerprints.is_empty() {
        return Err(TlsError::Pin("no certificate fingerprint to pin".into()));
    }
    if let Some(bad) = fingerprints.iter().find(|f| !is_fingerprint(f.as_ref())) {
        return Err(TlsError::Pin(format!(
            "{:?} is not a certificate fingerprint (64 hex digits)",
            bad.as_ref()
        )));
    }
    let provider = provider();
    let verifier = Arc::new(PinnedCert {
        fingerprints: fingerprints
            .iter()
            .map(|f| f.as_ref().to_ascii_lowercase())
            .collect(),
        provider: provider.clone(),
    });
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// Accepts only the pinned certificates, by fingerprint, whatever their names and dates; the
/// handshake signature is still verified against the certificate's key.
#[derive(Debug)]
struct PinnedCert {
    fingerprints: Vec<String>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = fingerprint(end_entity);
        if self.fingerprints.contains(&seen) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "server certificate {seen} is not the pinned {}",
                self.fingerprints.join(" or ")
            )))
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
