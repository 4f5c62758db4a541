//! TLS to the ResourceManager (`https://` addresses, Hadoop's `HTTPS_ONLY` web policy): rustls
//! with the ring provider, trusting either the given CA bundle only or the platform's roots.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls_platform_verifier::BuilderVerifierExt;

use super::error::RmError;

/// The TLS settings for the RM client: certificates in `ca_file` (PEM) are the only roots when
/// given; otherwise the platform's trust store decides.
pub fn client_config(ca_file: Option<&Path>) -> Result<ClientConfig, RmError> {
    let invalid = |message: String| RmError::InvalidInput { message };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS settings: {e}")))?;
    let config = match ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in read_certificates(path)? {
                roots.add(certificate).map_err(|e| {
                    invalid(format!(
                        "RM CA bundle {}: a certificate is not a CA: {e}",
                        path.display()
                    ))
                })?;
            }
            builder.with_root_certificates(roots)
        }
        None => builder
            .with_platform_verifier()
            .map_err(|e| invalid(format!("the platform's TLS roots: {e}")))?,
    };
    Ok(config.with_no_client_auth())
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, RmError> {
    let invalid = |why: String| RmError::InvalidInput {
        message: format!("RM CA bundle {}: {why}", path.display()),
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    if certificates.is_empty() {
        return Err(invalid("no PEM certificate in it".to_owned()));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = client_config(Some(&empty)).unwrap_err();
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
        let error = client_config(Some(&dir.path().join("absent.pem"))).unwrap_err();
        assert!(error.to_string().contains("absent.pem"), "{error}");
    }

    #[test]
    fn a_bundle_of_real_certificates_is_accepted() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, ca.pem()).unwrap();
        assert!(client_config(Some(&file)).is_ok());
    }
}
