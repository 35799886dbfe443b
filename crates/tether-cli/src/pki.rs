//! The certificates of the loopback demos (`tether demo`, `tether tls-demo`): a CA and a
//! server certificate it signed, made at run time, and the teaching TLS configurations that
//! use them. The client trusts the CA and really checks the certificate: no dangerous opt-in.

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tether_teaching_tls::{CipherSuite, ClientConfig, ServerConfig, ServerKey};

use crate::tls_demo::key_log;

/// A certificate authority and a server certificate it signed, made for a demo.
pub(crate) struct DemoPki {
    /// The CA's certificate: the client's only trust anchor.
    pub(crate) ca: CertificateDer<'static>,
    /// The server's chain: its certificate, for one DNS name.
    pub(crate) chain: Vec<CertificateDer<'static>>,
    /// The server's RSA-2048 private key.
    pub(crate) key: ServerKey,
}

impl DemoPki {
    /// Two fresh RSA-2048 keys (rcgen's ring backend cannot generate RSA, so the rsa crate
    /// does), a CA certificate, and a server certificate for `name` that the CA signed.
    pub(crate) fn generate(name: &str) -> anyhow::Result<Self> {
        use rsa::pkcs8::EncodePrivateKey;
        let rsa_pkcs8 = || -> anyhow::Result<Vec<u8>> {
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?;
            Ok(key.to_pkcs8_der()?.as_bytes().to_vec())
        };
        let ca_der = rsa_pkcs8()?;
        let server_der = rsa_pkcs8()?;
        let ca_key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(ca_der),
            &rcgen::PKCS_RSA_SHA256,
        )?;
        let server_key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(server_der.clone()),
            &rcgen::PKCS_RSA_SHA256,
        )?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Tether demo CA");
        let ca = ca_params.self_signed(&ca_key)?;
        let leaf = rcgen::CertificateParams::new(vec![name.to_owned()])?.signed_by(
            &server_key,
            &ca,
            &ca_key,
        )?;
        let key = ServerKey::from_der(&PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_der)))?;
        Ok(Self {
            ca: ca.der().clone(),
            chain: vec![leaf.der().clone()],
            key,
        })
    }

    /// A server presenting the chain, with the crate's default suite preference; it logs
    /// its keys to `SSLKEYLOGFILE` when that is set.
    pub(crate) fn server_config(&self) -> anyhow::Result<ServerConfig> {
        let mut config = ServerConfig::new(self.chain.clone(), self.key.clone())?;
        config.set_key_log(key_log());
        Ok(config)
    }

    /// A client that trusts only the demo CA and offers `suites`; it logs its keys to
    /// `SSLKEYLOGFILE` when that is set.
    pub(crate) fn client_config(&self, suites: Vec<CipherSuite>) -> anyhow::Result<ClientConfig> {
        let mut config = ClientConfig::default();
        config
            .add_root(self.ca.clone())?
            .set_cipher_suites(suites)
            .set_key_log(key_log());
        Ok(config)
    }
}
