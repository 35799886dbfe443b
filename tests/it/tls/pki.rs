//! Test certificates: a CA and server certificates signed by it, made with rcgen over RSA
//! keys from the rsa crate (rcgen's ring backend cannot generate RSA keys).

use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, PKCS_RSA_SHA256,
};
use rsa::pkcs8::EncodePrivateKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tether_teaching_tls::{ClientConfig, ServerConfig, ServerKey};

/// Two RSA-2048 keys (CA, server), generated once per test binary: key generation is the
/// slow part.
fn rsa_keys() -> &'static [Vec<u8>; 2] {
    static KEYS: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let gen = || {
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
            key.to_pkcs8_der().unwrap().as_bytes().to_vec()
        };
        [gen(), gen()]
    })
}

fn key_pair(i: usize) -> KeyPair {
    let der = PrivatePkcs8KeyDer::from(rsa_keys()[i].clone());
    KeyPair::from_pkcs8_der_and_sign_algo(&der, &PKCS_RSA_SHA256).unwrap()
}

/// The server's private key (PKCS#8 DER).
pub(crate) fn server_key_der() -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(rsa_keys()[1].clone()))
}

/// The server key as the teaching TLS loads it.
pub(crate) fn server_key() -> ServerKey {
    ServerKey::from_der(&server_key_der()).unwrap()
}

/// When the server certificate is valid.
#[derive(Clone, Copy)]
pub(crate) enum Validity {
    /// 2020 to 2099.
    Now,
    /// 2000 to 2001.
    Expired,
    /// 2090 to 2099.
    Future,
}

/// A CA and a server certificate it signed.
pub(crate) struct Pki {
    pub(crate) ca: CertificateDer<'static>,
    pub(crate) ca_pem: String,
    pub(crate) server: CertificateDer<'static>,
    pub(crate) server_pem: String,
}

/// A CA-signed server certificate for `names`.
pub(crate) fn ca_signed(names: &[&str], validity: Validity) -> Pki {
    let ca_key = key_pair(0);
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Tether Test CA");
    ca_params.distinguished_name = dn;
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let server_key = key_pair(1);
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let (from, to) = match validity {
        Validity::Now => ((2020, 1, 1), (2099, 1, 1)),
        Validity::Expired => ((2000, 1, 1), (2001, 1, 1)),
        Validity::Future => ((2090, 1, 1), (2099, 1, 1)),
    };
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
    let server = params.signed_by(&server_key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        ca: ca.der().clone(),
        server_pem: server.pem(),
        server: server.der().clone(),
    }
}

/// A self-signed server certificate for `names`.
pub(crate) fn self_signed(names: &[&str]) -> Pki {
    let key = key_pair(1);
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.self_signed(&key).unwrap();
    Pki {
        ca_pem: cert.pem(),
        ca: cert.der().clone(),
        server_pem: cert.pem(),
        server: cert.der().clone(),
    }
}

/// The private key in PEM, as `openssl` reads it.
pub(crate) fn server_key_pem() -> String {
    let key = <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_der(&rsa_keys()[1])
        .unwrap();
    key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap()
        .to_string()
}

impl Pki {
    /// A client that trusts this PKI's CA.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::default();
        c.add_root(self.ca.clone()).unwrap();
        c
    }

    /// A server presenting this PKI's server certificate.
    pub(crate) fn server_config(&self) -> ServerConfig {
        ServerConfig::new(vec![self.server.clone()], server_key()).unwrap()
    }
}
