//! TLS for the listeners: a certificate and key read from PEM files, re-read on SIGHUP without
//! touching open connections (each new handshake asks the resolver for the current pair).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// A certificate chain and key, from files that may change.
#[derive(Debug)]
pub(crate) struct ReloadableCertificate {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCertificate {
    /// Reads both files now: an error names the file and the reason.
    pub(crate) fn load(cert: PathBuf, key: PathBuf) -> Result<Self, String> {
        let current = RwLock::new(read(&cert, &key)?);
        Ok(ReloadableCertificate { cert, key, current })
    }

    /// Reads the files again; on error the pair in use stays.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let fresh = read(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// The certificate file's path, for messages.
    pub(crate) fn cert_path(&self) -> &std::path::Path {
        &self.cert
    }

    /// An acceptor that always presents the current pair.
    pub(crate) fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let mut tls = rustls::ServerConfig::builder().with_no_client_auth().with_cert_resolver(self.clone());
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(tls))
    }
}

impl ResolvesServerCert for ReloadableCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

fn read(cert: &std::path::Path, key: &std::path::Path) -> Result<Arc<CertifiedKey>, String> {
    let certificates = CertificateDer::pem_file_iter(cert)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| format!("cannot read certificate {}: {error}", cert.display()))?;
    if certificates.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|error| format!("cannot read private key {}: {error}", key.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(certificates, key_der, &provider)
        .map_err(|error| format!("invalid certificate or key ({}, {}): {error}", cert.display(), key.display()))?;
    Ok(Arc::new(certified))
}
