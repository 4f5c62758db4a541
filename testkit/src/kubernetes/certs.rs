//! The certificates of a test control plane: one CA, the API server's serving certificate
//! (valid for 127.0.0.1 and the in-cluster names), client certificates for the components, and
//! the service-account signing key.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// File names inside the control plane's folder.
pub const CA_CERT: &str = "ca.crt";
/// The API server's certificate and key.
pub const SERVING_CERT: &str = "apiserver.crt";
/// The API server's key.
pub const SERVING_KEY: &str = "apiserver.key";
/// The service-account signing key (private, PKCS#8).
pub const SA_KEY: &str = "sa.key";
/// Its public half.
pub const SA_PUB: &str = "sa.pub";

/// A client identity: certificate and key in PEM.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// Certificate.
    pub cert_pem: String,
    /// Private key.
    pub key_pem: String,
}

/// The CA, able to sign client certificates.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate in PEM.
    pub cert_pem: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

fn name(common: &str, organization: Option<&str>) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common);
    if let Some(organization) = organization {
        name.push(DnType::OrganizationName, organization);
    }
    name
}

impl Authority {
    /// Makes the CA, the serving certificate and the service-account key in `dir`.
    pub fn create(dir: &Path) -> Authority {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = name("elastic-yarn e2e CA", None);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        let authority = Authority {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        };
        std::fs::write(dir.join(CA_CERT), &authority.cert_pem).expect("ca.crt");

        let serving_key = KeyPair::generate().expect("serving key");
        let mut serving = CertificateParams::new(vec![
            "localhost".to_owned(),
            "kubernetes".to_owned(),
            "kubernetes.default".to_owned(),
            "kubernetes.default.svc".to_owned(),
            "kubernetes.default.svc.cluster.local".to_owned(),
        ])
        .expect("serving params");
        for ip in ["127.0.0.1", "10.96.0.1"] {
            serving
                .subject_alt_names
                .push(SanType::IpAddress(ip.parse().expect("an IP")));
        }
        serving.distinguished_name = name("kube-apiserver", None);
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving
            .signed_by(&serving_key, &authority.issuer)
            .expect("serving certificate");
        std::fs::write(dir.join(SERVING_CERT), serving_cert.pem()).expect("apiserver.crt");
        std::fs::write(dir.join(SERVING_KEY), serving_key.serialize_pem()).expect("apiserver.key");

        let sa = KeyPair::generate().expect("service-account key");
        std::fs::write(dir.join(SA_KEY), sa.serialize_pem()).expect("sa.key");
        std::fs::write(dir.join(SA_PUB), sa.public_key_pem()).expect("sa.pub");
        authority
    }

    /// A client certificate for `user` in `group` (`system:masters` is every right).
    pub fn client(&self, user: &str, group: Option<&str>) -> ClientCert {
        let key = KeyPair::generate().expect("client key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name = name(user, group);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("client certificate");
        ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}
