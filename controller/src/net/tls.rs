//! OpenFlow over TLS: the acceptor of the TLS listener, built from the
//! controller's certificate and key and the CA of the switches'
//! certificates, as `ovs-pki` makes them. Every switch must present a
//! certificate that chains to that CA (client-certificate verification,
//! what OVS does with `set-ssl KEY CERT CACERT` and an `ssl:` target);
//! a peer that does not is refused during the handshake.
//!
//! rustls with the `ring` provider, given explicitly, so nothing depends
//! on a process-wide default.

use crate::config::TlsFiles;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::Arc;
pub use tokio_rustls::TlsAcceptor;

/// Builds the acceptor; the error names the file and what is wrong with it.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, String> {
    let (Some(cert), Some(key), Some(ca)) = (&files.cert, &files.key, &files.ca) else {
        return Err("tls.cert, tls.key and tls.ca are all needed".into());
    };
    let chain = certificates("tls.cert", cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("tls.key = {}: no private key read: {e}", key.display()))?;
    let mut roots = RootCertStore::empty();
    for c in certificates("tls.ca", ca)? {
        roots
            .add(c)
            .map_err(|e| format!("tls.ca = {}: not a CA certificate: {e}", ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("tls.ca = {}: {e}", ca.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "tls.cert = {} with tls.key = {}: {e}",
                cert.display(),
                files.key.as_deref().unwrap_or(Path::new("")).display()
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn certificates(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{key} = {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{key} = {}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// Why a TLS handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsRefusal {
    /// The peer showed no certificate, or one the switch CA did not sign
    /// (or expired, or not for client use).
    Unverified(String),
    /// Anything else: not TLS at all, no common protocol, a reset, the
    /// handshake deadline.
    Handshake(String),
}

impl TlsRefusal {
    /// Classifies the error of `TlsAcceptor::accept`.
    pub fn from_io(e: &std::io::Error) -> TlsRefusal {
        let tls = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match tls {
            Some(
                t @ (rustls::Error::NoCertificatesPresented
                | rustls::Error::InvalidCertificate(_)
                | rustls::Error::InvalidCertRevocationList(_)),
            ) => TlsRefusal::Unverified(t.to_string()),
            Some(t) => TlsRefusal::Handshake(t.to_string()),
            None => TlsRefusal::Handshake(e.to_string()),
        }
    }
}

impl std::fmt::Display for TlsRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsRefusal::Unverified(why) => write!(f, "certificate not accepted: {why}"),
            TlsRefusal::Handshake(why) => write!(f, "TLS handshake failed: {why}"),
        }
    }
}
