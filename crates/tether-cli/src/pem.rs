//! Certificates and keys from PEM files, as OpenSSL and rcgen write them, for rustls.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use anyhow::{ensure, Context as _, Result};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tether::rustls;

/// A rustls server configuration (ring provider, TLS 1.2 and 1.3, ALPN `http/1.1`) that
/// presents the certificate chain in `cert` with the private key in `key`.
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let chain = certificates(cert)?;
    let key = private_key(key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("the certificate and the key do not fit together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A root store holding every certificate in the PEM file `ca`.
pub(crate) fn root_store(ca: &Path) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(ca)? {
        roots.add(cert).with_context(|| {
            format!(
                "{} holds a certificate rustls cannot use as a root",
                ca.display()
            )
        })?;
    }
    Ok(roots)
}

/// Every certificate in a PEM file; at least one.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let mut reader = open(path)?;
    let certs = rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot read certificates from {}", path.display()))?;
    ensure!(
        !certs.is_empty(),
        "{} holds no PEM certificate",
        path.display()
    );
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let mut reader = open(path)?;
    rustls_pemfile::private_key(&mut reader)
        .with_context(|| format!("cannot read a private key from {}", path.display()))?
        .with_context(|| format!("{} holds no PEM private key", path.display()))
}

fn open(path: &Path) -> Result<BufReader<File>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(BufReader::new(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, contents: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tether-cli-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn rcgen_certificate_and_key_make_a_server_config_and_a_root_store() {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = write("ok-cert.pem", &certified.cert.pem());
        let key = write("ok-key.pem", &certified.key_pair.serialize_pem());
        let config = server_config(&cert, &key).unwrap();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
        assert_eq!(root_store(&cert).unwrap().len(), 1);
    }

    #[test]
    fn a_file_without_certificates_or_keys_is_refused() {
        let empty = write("empty.pem", "not pem at all\n");
        assert!(root_store(&empty).is_err());
        assert!(private_key(&empty).is_err());
        assert!(root_store(Path::new("/nonexistent/ca.pem")).is_err());
    }

    #[test]
    fn a_key_that_does_not_fit_the_certificate_is_refused() {
        let one = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let cert = write("mismatch-cert.pem", &one.cert.pem());
        let key = write("mismatch-key.pem", &other.serialize_pem());
        assert!(server_config(&cert, &key).is_err());
    }
}
