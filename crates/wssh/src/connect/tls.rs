//! TLS for `wss://`: rustls with the ring provider, trusting the operating system's certificate
//! roots by default (`rustls-native-certs`: the system store, or `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` when set), the certificates of a `--ca` PEM file instead (a server
//! certificate found in that file is pinned), or with `--insecure` any certificate at all.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::ConnectError;
use super::target::TrustSettings;

/// The client configuration for `trust`.
pub(crate) fn client_config(trust: &TrustSettings) -> Result<Arc<ClientConfig>, ConnectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| ConnectError::Tls(error.to_string()))?;
    let mut config = if trust.insecure {
        let verifier = AnyCertificate { algorithms: provider.signature_verification_algorithms };
        builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier)).with_no_client_auth()
    } else if let Some(ca) = &trust.ca {
        let verifier = TrustFile::new(ca, provider.clone())?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier)).with_no_client_auth()
    } else {
        let roots = system_roots()?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|error| ConnectError::Tls(format!("cannot use the system's certificate roots: {error}")))?;
        builder.with_webpki_verifier(verifier).with_no_client_auth()
    };
    // WebSockets are upgraded HTTP/1.1 requests.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The operating system's trusted roots. Unreadable entries are skipped; none at all is an
/// error that says what to do.
fn system_roots() -> Result<RootCertStore, ConnectError> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::debug!(%error, "skipping an unreadable system certificate");
    }
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(ConnectError::Tls(
            "no trusted certificate roots found on this system (install ca-certificates, or set SSL_CERT_FILE); \
             use --ca FILE for a server with a private CA, or --insecure"
                .into(),
        ));
    }
    Ok(roots)
}

/// What to add to a failed handshake's message: how to trust a server the system does not.
pub(crate) fn handshake_advice(error: &std::io::Error) -> &'static str {
    let text = error.to_string();
    if text.contains("invalid peer certificate") {
        " (the system's certificate roots do not trust this server: give its certificate or CA with --ca FILE, \
         or --insecure to skip the check)"
    } else {
        ""
    }
}

/// `--ca FILE`: the usual WebPKI verification (chain, validity, name) against the file's
/// certificates. Besides, a server certificate that is itself in the file is trusted as it is,
/// pinned byte for byte (its name and dates unchecked): that admits the common self-signed
/// certificate that also calls itself a CA (`openssl req -x509`), which WebPKI refuses as a
/// server certificate and go_ws_sh's Go client accepts.
#[derive(Debug)]
struct TrustFile {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl TrustFile {
    fn new(path: &Path, provider: Arc<CryptoProvider>) -> Result<TrustFile, ConnectError> {
        let failed = |why: String| ConnectError::Tls(format!("cannot use CA file {}: {why}", path.display()));
        let certificates = CertificateDer::pem_file_iter(path)
            .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
            .map_err(|error| failed(error.to_string()))?;
        if certificates.is_empty() {
            return Err(failed("no certificate in it".into()));
        }
        let mut roots = RootCertStore::empty();
        for certificate in &certificates {
            roots.add(certificate.clone()).map_err(|error| failed(error.to_string()))?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|error| failed(error.to_string()))?;
        Ok(TrustFile { webpki, pinned: certificates })
    }
}

impl ServerCertVerifier for TrustFile {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(verified) => Ok(verified),
            Err(_) if self.pinned.iter().any(|pinned| pinned.as_ref() == end_entity.as_ref()) => {
                Ok(ServerCertVerified::assertion())
            }
            Err(error) => Err(error),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The TLS server name for `host` (a DNS name or an IP address).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, ConnectError> {
    ServerName::try_from(host.to_owned())
        .map_err(|_| ConnectError::Tls(format!("{host:?} is not a valid TLS server name")))
}

/// `--insecure`: accepts any certificate chain and name, but still checks that the server
/// holds the key of the certificate it presented (handshake signatures).
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

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
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_settings_build_or_explain() {
        assert!(client_config(&TrustSettings { ca: None, insecure: true }).is_ok());
        let missing = TrustSettings { ca: Some("/definitely/not/here.pem".into()), insecure: false };
        assert!(client_config(&missing).unwrap_err().to_string().contains("/definitely/not/here.pem"));
    }
}
