//! The STARTTLS certificate: a PEM chain and key loaded into a rustls server config.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// A TLS acceptor for the certificate chain at `cert` and the key at `key`.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "--smtp-tls-cert {}: not a readable PEM certificate chain",
                cert.display()
            )
        })?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "--smtp-tls-key {}: not a readable PEM private key",
            key.display()
        )
    })?;
    acceptor_from(chain, key)
}

/// A TLS acceptor for an in-memory chain and key.
pub fn acceptor_from(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<TlsAcceptor> {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("the STARTTLS certificate does not match its key")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
