//! Handshake messages (RFC 5246 section 7.4), each with a symmetric `encode` and `read`.
//!
//! ```text
//!  handshake message: msg_type(1) | length(3) | body(length)
//! ```

use crate::error::Error;
use crate::suite::CipherSuite;
use crate::wire::{self, Reader};

/// TLS 1.2 on the wire.
pub(crate) const TLS12: u16 = 0x0303;

/// Handshake message types (RFC 5246 section 7.4).
pub(crate) mod kind {
    pub(crate) const HELLO_REQUEST: u8 = 0;
    pub(crate) const CLIENT_HELLO: u8 = 1;
    pub(crate) const SERVER_HELLO: u8 = 2;
    pub(crate) const CERTIFICATE: u8 = 11;
    pub(crate) const SERVER_KEY_EXCHANGE: u8 = 12;
    pub(crate) const CERTIFICATE_REQUEST: u8 = 13;
    pub(crate) const SERVER_HELLO_DONE: u8 = 14;
    pub(crate) const CLIENT_KEY_EXCHANGE: u8 = 16;
    pub(crate) const FINISHED: u8 = 20;
}

/// Extension numbers (RFC 6066, RFC 4492/8422, RFC 5246, RFC 5746).
pub(crate) mod ext {
    pub(crate) const SERVER_NAME: u16 = 0x0000;
    pub(crate) const SUPPORTED_GROUPS: u16 = 0x000a;
    pub(crate) const EC_POINT_FORMATS: u16 = 0x000b;
    pub(crate) const SIGNATURE_ALGORITHMS: u16 = 0x000d;
    pub(crate) const RENEGOTIATION_INFO: u16 = 0xff01;
}

/// `TLS_EMPTY_RENEGOTIATION_INFO_SCSV` (RFC 5746 section 3.3).
pub(crate) const EMPTY_RENEGOTIATION_INFO_SCSV: CipherSuite = CipherSuite(0x00ff);
/// The X25519 named group (RFC 8422 section 5.1.1).
pub(crate) const GROUP_X25519: u16 = 0x001d;
/// `rsa_pkcs1_sha256`, `rsa_pkcs1_sha384`, `rsa_pkcs1_sha512` as SignatureAndHashAlgorithm
/// (RFC 5246 section 7.4.1.4.1: hash byte, then signature byte 1 = rsa).
pub(crate) const SIG_RSA_PKCS1_SHA256: u16 = 0x0401;
pub(crate) const SIG_RSA_PKCS1_SHA384: u16 = 0x0501;
pub(crate) const SIG_RSA_PKCS1_SHA512: u16 = 0x0601;
/// `named_curve` ECCurveType (RFC 4492 section 5.4).
pub(crate) const CURVE_TYPE_NAMED: u8 = 3;

/// The name of a handshake message type, for errors and the transcript.
pub(crate) fn kind_name(t: u8) -> &'static str {
    match t {
        kind::HELLO_REQUEST => "HelloRequest",
        kind::CLIENT_HELLO => "ClientHello",
        kind::SERVER_HELLO => "ServerHello",
        4 => "NewSessionTicket",
        kind::CERTIFICATE => "Certificate",
        kind::SERVER_KEY_EXCHANGE => "ServerKeyExchange",
        kind::CERTIFICATE_REQUEST => "CertificateRequest",
        kind::SERVER_HELLO_DONE => "ServerHelloDone",
        15 => "CertificateVerify",
        kind::CLIENT_KEY_EXCHANGE => "ClientKeyExchange",
        kind::FINISHED => "Finished",
        _ => "unknown handshake message",
    }
}

pub(crate) fn ext_name(t: u16) -> &'static str {
    match t {
        ext::SERVER_NAME => "server_name",
        ext::SUPPORTED_GROUPS => "supported_groups",
        ext::EC_POINT_FORMATS => "ec_point_formats",
        ext::SIGNATURE_ALGORITHMS => "signature_algorithms",
        ext::RENEGOTIATION_INFO => "renegotiation_info",
        0x0005 => "status_request",
        0x0010 => "application_layer_protocol_negotiation",
        0x0016 => "encrypt_then_mac",
        0x0017 => "extended_master_secret",
        0x0023 => "session_ticket",
        0x002b => "supported_versions",
        0x0033 => "key_share",
        _ => "unknown",
    }
}

/// Wraps a body into a handshake message: type, 24-bit length, body.
pub(crate) fn frame(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.push(msg_type);
    wire::put_vec24(&mut out, body);
    out
}

/// An extension: type and opaque data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Extension {
    pub(crate) kind: u16,
    pub(crate) data: Vec<u8>,
}

fn encode_extensions(out: &mut Vec<u8>, exts: &[Extension]) {
    if exts.is_empty() {
        return;
    }
    let mut body = Vec::new();
    for e in exts {
        wire::put_u16(&mut body, e.kind);
        wire::put_vec16(&mut body, &e.data);
    }
    wire::put_vec16(out, &body);
}

/// RFC 5246 section 7.4.1.4: "There MUST NOT be more than one extension of the same type."
fn read_extensions(r: &mut Reader<'_>) -> Result<Vec<Extension>, Error> {
    // RFC 5246 section 7.4.1.2: extensions are optional at the end of a hello.
    if r.is_empty() {
        return Ok(Vec::new());
    }
    let mut list = Reader::new(r.vec16("extensions")?);
    let mut out: Vec<Extension> = Vec::new();
    while !list.is_empty() {
        let kind = list.u16("extension type")?;
        let data = list.vec16("extension data")?.to_vec();
        out.push(Extension { kind, data });
    }
    // Sorted, a duplicate sits next to its twin: O(n log n) for the up to 16 383
    // extensions a 64 KiB hello can hold, where comparing each with all before it was
    // quadratic.
    let mut kinds: Vec<u16> = out.iter().map(|e| e.kind).collect();
    kinds.sort_unstable();
    if kinds.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::Decode {
            what: "duplicate extension",
        });
    }
    Ok(out)
}

/// ClientHello (RFC 5246 section 7.4.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientHello {
    pub(crate) version: u16,
    pub(crate) random: [u8; 32],
    pub(crate) session_id: Vec<u8>,
    pub(crate) cipher_suites: Vec<CipherSuite>,
    pub(crate) compression_methods: Vec<u8>,
    pub(crate) extensions: Vec<Extension>,
}

impl ClientHello {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        wire::put_u16(&mut b, self.version);
        b.extend_from_slice(&self.random);
        wire::put_vec8(&mut b, &self.session_id);
        let mut suites = Vec::new();
        for s in &self.cipher_suites {
            wire::put_u16(&mut suites, s.0);
        }
        wire::put_vec16(&mut b, &suites);
        wire::put_vec8(&mut b, &self.compression_methods);
        encode_extensions(&mut b, &self.extensions);
        frame(kind::CLIENT_HELLO, &b)
    }

    pub(crate) fn read(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let version = r.u16("client_version")?;
        let random = read_random(&mut r)?;
        let session_id = r.vec8("session_id")?;
        if session_id.len() > 32 {
            return Err(Error::Decode { what: "session_id" });
        }
        let suites = r.vec16("cipher_suites")?;
        // RFC 5246 section 7.4.1.2: CipherSuite cipher_suites<2..2^16-2>.
        if suites.is_empty() || suites.len() % 2 != 0 {
            return Err(Error::Decode {
                what: "cipher_suites",
            });
        }
        let cipher_suites = suites
            .chunks_exact(2)
            .map(|c| CipherSuite(u16::from_be_bytes([c[0], c[1]])))
            .collect();
        let compression_methods = r.vec8("compression_methods")?.to_vec();
        let extensions = read_extensions(&mut r)?;
        r.finish("ClientHello")?;
        Ok(Self {
            version,
            random,
            session_id: session_id.to_vec(),
            cipher_suites,
            compression_methods,
            extensions,
        })
    }

    pub(crate) fn extension(&self, kind: u16) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|e| e.kind == kind)
            .map(|e| e.data.as_slice())
    }
}

/// ServerHello (RFC 5246 section 7.4.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerHello {
    pub(crate) version: u16,
    pub(crate) random: [u8; 32],
    pub(crate) session_id: Vec<u8>,
    pub(crate) cipher_suite: CipherSuite,
    pub(crate) compression_method: u8,
    pub(crate) extensions: Vec<Extension>,
}

impl ServerHello {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        wire::put_u16(&mut b, self.version);
        b.extend_from_slice(&self.random);
        wire::put_vec8(&mut b, &self.session_id);
        wire::put_u16(&mut b, self.cipher_suite.0);
        b.push(self.compression_method);
        encode_extensions(&mut b, &self.extensions);
        frame(kind::SERVER_HELLO, &b)
    }

    pub(crate) fn read(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let version = r.u16("server_version")?;
        let random = read_random(&mut r)?;
        let session_id = r.vec8("session_id")?;
        if session_id.len() > 32 {
            return Err(Error::Decode { what: "session_id" });
        }
        let cipher_suite = CipherSuite(r.u16("cipher_suite")?);
        let compression_method = r.u8("compression_method")?;
        let extensions = read_extensions(&mut r)?;
        r.finish("ServerHello")?;
        Ok(Self {
            version,
            random,
            session_id: session_id.to_vec(),
            cipher_suite,
            compression_method,
            extensions,
        })
    }
}

fn read_random(r: &mut Reader<'_>) -> Result<[u8; 32], Error> {
    let mut random = [0u8; 32];
    random.copy_from_slice(r.take(32, "random")?);
    Ok(random)
}

/// Certificate (RFC 5246 section 7.4.2): `ASN.1Cert certificate_list<0..2^24-1>`.
pub(crate) fn encode_certificate(chain: &[Vec<u8>]) -> Vec<u8> {
    let mut list = Vec::new();
    for c in chain {
        wire::put_vec24(&mut list, c);
    }
    let mut b = Vec::new();
    wire::put_vec24(&mut b, &list);
    frame(kind::CERTIFICATE, &b)
}

pub(crate) fn read_certificate(body: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let mut r = Reader::new(body);
    let mut list = Reader::new(r.vec24("certificate_list")?);
    r.finish("Certificate")?;
    let mut chain = Vec::new();
    while !list.is_empty() {
        chain.push(list.vec24("ASN.1Cert")?.to_vec());
    }
    Ok(chain)
}

/// CertificateRequest (RFC 5246 section 7.4.4): the server asks the client for a
/// certificate (mutual TLS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CertificateRequest {
    /// `ClientCertificateType certificate_types<1..2^8-1>`.
    pub(crate) certificate_types: Vec<u8>,
    /// `SignatureAndHashAlgorithm supported_signature_algorithms<2..2^16-2>`.
    pub(crate) signature_algorithms: Vec<u16>,
    /// `DistinguishedName certificate_authorities<0..2^16-1>`, each DER, kept as is.
    pub(crate) authorities: Vec<Vec<u8>>,
}

impl CertificateRequest {
    /// Only tests send one: this crate's server does not ask for client certificates.
    #[cfg(test)]
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        wire::put_vec8(&mut b, &self.certificate_types);
        b.extend_from_slice(&encode_u16_list(&self.signature_algorithms));
        let mut names = Vec::new();
        for n in &self.authorities {
            wire::put_vec16(&mut names, n);
        }
        wire::put_vec16(&mut b, &names);
        frame(kind::CERTIFICATE_REQUEST, &b)
    }

    pub(crate) fn read(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let certificate_types = r.vec8("certificate_types")?.to_vec();
        if certificate_types.is_empty() {
            return Err(Error::Decode {
                what: "certificate_types",
            });
        }
        let algs = r.vec16("supported_signature_algorithms")?;
        if algs.is_empty() || algs.len() % 2 != 0 {
            return Err(Error::Decode {
                what: "supported_signature_algorithms",
            });
        }
        let signature_algorithms = algs
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        let mut list = Reader::new(r.vec16("certificate_authorities")?);
        r.finish("CertificateRequest")?;
        let mut authorities = Vec::new();
        while !list.is_empty() {
            authorities.push(list.vec16("DistinguishedName")?.to_vec());
        }
        Ok(Self {
            certificate_types,
            signature_algorithms,
            authorities,
        })
    }
}

/// ServerKeyExchange for ECDHE_RSA (RFC 4492 section 5.4, with the TLS 1.2
/// `SignatureAndHashAlgorithm` of RFC 5246 section 4.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EcdheServerKeyExchange {
    pub(crate) group: u16,
    pub(crate) public: Vec<u8>,
    pub(crate) sig_scheme: u16,
    pub(crate) signature: Vec<u8>,
}

impl EcdheServerKeyExchange {
    /// The `ServerECDHParams` bytes, which the signature covers (after both randoms).
    pub(crate) fn params(&self) -> Vec<u8> {
        ecdh_params(self.group, &self.public)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = self.params();
        wire::put_u16(&mut b, self.sig_scheme);
        wire::put_vec16(&mut b, &self.signature);
        frame(kind::SERVER_KEY_EXCHANGE, &b)
    }

    pub(crate) fn read(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let curve_type = r.u8("ECCurveType")?;
        if curve_type != CURVE_TYPE_NAMED {
            return Err(Error::Decode {
                what: "ECCurveType (only named_curve)",
            });
        }
        let group = r.u16("NamedCurve")?;
        let public = r.vec8("ECPoint")?.to_vec();
        let sig_scheme = r.u16("SignatureAndHashAlgorithm")?;
        let signature = r.vec16("signature")?.to_vec();
        r.finish("ServerKeyExchange")?;
        Ok(Self {
            group,
            public,
            sig_scheme,
            signature,
        })
    }
}

pub(crate) fn ecdh_params(group: u16, public: &[u8]) -> Vec<u8> {
    let mut b = vec![CURVE_TYPE_NAMED];
    wire::put_u16(&mut b, group);
    wire::put_vec8(&mut b, public);
    b
}

/// ClientKeyExchange with an RSA-encrypted premaster (RFC 5246 section 7.4.7.1).
pub(crate) fn encode_rsa_client_key_exchange(encrypted: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    wire::put_vec16(&mut b, encrypted);
    frame(kind::CLIENT_KEY_EXCHANGE, &b)
}

pub(crate) fn read_rsa_client_key_exchange(body: &[u8]) -> Result<&[u8], Error> {
    let mut r = Reader::new(body);
    let ct = r.vec16("EncryptedPreMasterSecret")?;
    r.finish("ClientKeyExchange")?;
    Ok(ct)
}

/// ClientKeyExchange with the client's ephemeral ECDH public key (RFC 4492 section 5.7).
pub(crate) fn encode_ecdhe_client_key_exchange(public: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    wire::put_vec8(&mut b, public);
    frame(kind::CLIENT_KEY_EXCHANGE, &b)
}

pub(crate) fn read_ecdhe_client_key_exchange(body: &[u8]) -> Result<&[u8], Error> {
    let mut r = Reader::new(body);
    let public = r.vec8("ClientECDiffieHellmanPublic")?;
    r.finish("ClientKeyExchange")?;
    Ok(public)
}

/// A list of u16 values inside a 2-byte length (supported_groups, signature_algorithms).
pub(crate) fn encode_u16_list(values: &[u16]) -> Vec<u8> {
    let mut body = Vec::new();
    for v in values {
        wire::put_u16(&mut body, *v);
    }
    let mut out = Vec::new();
    wire::put_vec16(&mut out, &body);
    out
}

pub(crate) fn read_u16_list(data: &[u8], what: &'static str) -> Result<Vec<u16>, Error> {
    let mut r = Reader::new(data);
    let body = r.vec16(what)?;
    r.finish(what)?;
    if body.len() % 2 != 0 {
        return Err(Error::Decode { what });
    }
    Ok(body
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect())
}

/// server_name extension data with one host_name (RFC 6066 section 3).
pub(crate) fn encode_server_name(host: &str) -> Vec<u8> {
    let mut entry = vec![0u8]; // name_type host_name
    wire::put_vec16(&mut entry, host.as_bytes());
    let mut out = Vec::new();
    wire::put_vec16(&mut out, &entry);
    out
}

pub(crate) fn read_server_name(data: &[u8]) -> Result<Option<String>, Error> {
    let mut r = Reader::new(data);
    let mut list = Reader::new(r.vec16("server_name_list")?);
    r.finish("server_name")?;
    while !list.is_empty() {
        let name_type = list.u8("NameType")?;
        let name = list.vec16("HostName")?;
        if name_type == 0 {
            return Ok(Some(String::from_utf8_lossy(name).into_owned()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(msg: &[u8]) -> &[u8] {
        &msg[4..]
    }

    fn hello() -> ClientHello {
        ClientHello {
            version: TLS12,
            random: [9; 32],
            session_id: vec![],
            cipher_suites: CipherSuite::SUPPORTED.to_vec(),
            compression_methods: vec![0],
            extensions: vec![Extension {
                kind: ext::SERVER_NAME,
                data: encode_server_name("example.test"),
            }],
        }
    }

    #[test]
    fn rfc5246_7_4_1_4_many_extensions_parse_and_a_duplicate_among_them_is_refused() {
        // As many empty extensions as fit in the 2-byte extensions length.
        let count = 0xffff / 4;
        let mut h = hello();
        h.extensions = (0..count)
            .map(|i| Extension {
                kind: (count - i) as u16,
                data: Vec::new(),
            })
            .collect();
        let enc = h.encode();
        assert_eq!(
            ClientHello::read(body(&enc)).unwrap().extensions.len(),
            count
        );
        // The last one repeats the first (they are far apart in the list).
        h.extensions[count - 1].kind = h.extensions[0].kind;
        let enc = h.encode();
        assert!(matches!(
            ClientHello::read(body(&enc)),
            Err(Error::Decode {
                what: "duplicate extension"
            })
        ));
    }

    #[test]
    fn rfc5246_7_4_4_certificate_request_round_trips() {
        let req = CertificateRequest {
            certificate_types: vec![1, 64],
            signature_algorithms: vec![SIG_RSA_PKCS1_SHA256, 0x0403],
            authorities: vec![vec![0x30, 0x00], vec![0x30, 0x01, 0x02]],
        };
        let enc = req.encode();
        assert_eq!(enc[0], kind::CERTIFICATE_REQUEST);
        assert_eq!(CertificateRequest::read(body(&enc)).unwrap(), req);
        // certificate_types<1..2^8-1>: an empty list is malformed.
        assert!(matches!(
            CertificateRequest::read(&[0, 0, 2, 4, 1, 0, 0]),
            Err(Error::Decode {
                what: "certificate_types"
            })
        ));
        for cut in 0..body(&enc).len() {
            assert!(
                CertificateRequest::read(&body(&enc)[..cut]).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn rfc5246_7_4_1_2_client_hello_round_trips() {
        let h = hello();
        let enc = h.encode();
        assert_eq!(enc[0], kind::CLIENT_HELLO);
        assert_eq!(ClientHello::read(body(&enc)).unwrap(), h);
        assert_eq!(
            read_server_name(h.extension(ext::SERVER_NAME).unwrap())
                .unwrap()
                .as_deref(),
            Some("example.test")
        );
    }

    #[test]
    fn rfc5246_7_4_1_2_truncated_client_hello_is_a_decode_error_at_every_length() {
        let h = hello();
        let enc = h.encode();
        // Extensions are optional: cut just before them, the hello is complete without.
        let ext_block = 2 + h.extensions.iter().map(|e| 4 + e.data.len()).sum::<usize>();
        let without_ext = body(&enc).len() - ext_block;
        for cut in 0..body(&enc).len() {
            let r = ClientHello::read(&body(&enc)[..cut]);
            if cut == without_ext {
                assert!(r.unwrap().extensions.is_empty());
            } else {
                assert!(matches!(r, Err(Error::Decode { .. })), "cut {cut}");
            }
        }
    }

    #[test]
    fn rfc5246_7_4_1_4_duplicate_extensions_are_refused() {
        let mut h = hello();
        h.extensions.push(h.extensions[0].clone());
        assert!(matches!(
            ClientHello::read(body(&h.encode())),
            Err(Error::Decode {
                what: "duplicate extension"
            })
        ));
    }

    #[test]
    fn rfc5246_7_4_1_3_server_hello_round_trips() {
        let h = ServerHello {
            version: TLS12,
            random: [1; 32],
            session_id: vec![5; 32],
            cipher_suite: CipherSuite::RSA_WITH_AES_128_GCM_SHA256,
            compression_method: 0,
            extensions: vec![],
        };
        assert_eq!(ServerHello::read(body(&h.encode())).unwrap(), h);
    }

    #[test]
    fn rfc4492_5_4_server_key_exchange_round_trips() {
        let m = EcdheServerKeyExchange {
            group: GROUP_X25519,
            public: vec![4; 32],
            sig_scheme: SIG_RSA_PKCS1_SHA256,
            signature: vec![7; 256],
        };
        assert_eq!(EcdheServerKeyExchange::read(body(&m.encode())).unwrap(), m);
    }

    #[test]
    fn rfc5246_7_4_2_certificate_round_trips() {
        let chain = vec![vec![1, 2, 3], vec![4]];
        assert_eq!(
            read_certificate(body(&encode_certificate(&chain))).unwrap(),
            chain
        );
    }
}
