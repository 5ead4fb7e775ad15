//! Redis over TLS (`rediss://`): the trust and client certificate of
//! `[redis_tls]`, read once at start, and the one place a Redis client is
//! built from a URL. rustls with the `ring` provider, the same as the
//! OpenFlow listener's.

use crate::config::RedisTlsFiles;
use redis::{ClientTlsConfig, RedisResult, TlsCertificates};
use std::path::Path;

/// The PEM files of `[redis_tls]`, read. Its `Debug` shows which are set,
/// never their contents.
#[derive(Clone, Default)]
pub struct RedisTls {
    /// CA certificates the server's must chain to; `None`: the system's.
    ca: Option<Vec<u8>>,
    /// Client certificate chain and key, when Redis asks for one.
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca", &self.ca.is_some())
            .field("client_certificate", &self.client.is_some())
            .finish()
    }
}

impl RedisTls {
    /// Reads the files; `None` when none is configured. The error names
    /// the key and the file.
    pub fn load(files: &RedisTlsFiles) -> Result<Option<RedisTls>, String> {
        if files.is_empty() {
            return Ok(None);
        }
        let read = |key: &str, p: &Path| {
            std::fs::read(p).map_err(|e| format!("{key} = {}: cannot read it: {e}", p.display()))
        };
        let ca = files
            .ca
            .as_deref()
            .map(|p| read("redis_tls.ca", p))
            .transpose()?;
        let client = match (&files.cert, &files.key) {
            (Some(c), Some(k)) => Some((read("redis_tls.cert", c)?, read("redis_tls.key", k)?)),
            (None, None) => None,
            _ => return Err("redis_tls.cert and redis_tls.key go together".into()),
        };
        Ok(Some(RedisTls { ca, client }))
    }

    /// Trusts the CA certificates in `pem` (tests, and callers without
    /// files).
    pub fn with_ca_pem(pem: Vec<u8>) -> RedisTls {
        RedisTls {
            ca: Some(pem),
            client: None,
        }
    }
}

/// A Redis client for `url`. A `rediss://` URL uses TLS: the server's
/// certificate is checked against `tls`'s CA when given (else the
/// system's roots), and `tls`'s client certificate is shown when given.
/// Errors never contain the URL (its password).
pub fn client(url: &str, tls: Option<&RedisTls>) -> RedisResult<redis::Client> {
    // rediss:// through redis's rustls build takes the process-wide
    // provider; ours is ring (installing twice is harmless).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let is_tls = ["rediss://", "valkeys://"].iter().any(|s| {
        url.get(..s.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(s))
    });
    match tls {
        Some(t) if is_tls => redis::Client::build_with_tls(
            url,
            TlsCertificates {
                client_tls: t.client.as_ref().map(|(cert, key)| ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                }),
                root_cert: t.ca.clone(),
            },
        ),
        _ => redis::Client::open(url),
    }
}
