//! Throw-away PKI generated at startup: a CA, a server certificate signed by
//! it, and a second unrelated CA so tests can check that verification fails.

use std::error::Error;
use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    AlpnError, SslAcceptor, SslAcceptorBuilder, SslMethod, SslVersion, select_next_proto,
};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Name};

pub struct Certs {
    pub server_cert: X509,
    pub server_key: PKey<Private>,
}

/// EC P-256 keys: generation is instant, unlike RSA.
fn new_key() -> Result<PKey<Private>, Box<dyn Error>> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

fn name(cn: &str) -> Result<X509Name, Box<dyn Error>> {
    let mut b = X509Name::builder()?;
    b.append_entry_by_nid(Nid::ORGANIZATIONNAME, "ohreq testserver")?;
    b.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    Ok(b.build())
}

/// Common fields: v3, random serial, valid from yesterday for 30 days
/// (the day of slack tolerates clock skew between test processes).
fn base_builder(subject: &X509Name, key: &PKey<Private>) -> Result<X509Builder, Box<dyn Error>> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(subject)?;
    b.set_pubkey(key)?;
    let not_before = Asn1Time::from_unix(now - 86_400)?;
    let not_after = Asn1Time::from_unix(now + 30 * 86_400)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    Ok(b)
}

fn make_ca(cn: &str) -> Result<(X509, PKey<Private>), Box<dyn Error>> {
    let key = new_key()?;
    let subject = name(cn)?;
    let mut b = base_builder(&subject, &key)?;
    b.set_issuer_name(&subject)?;
    b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((b.build(), key))
}

fn make_server(ca: &X509, ca_key: &PKey<Private>) -> Result<(X509, PKey<Private>), Box<dyn Error>> {
    let key = new_key()?;
    let mut b = base_builder(&name("localhost")?, &key)?;
    b.set_issuer_name(ca.subject_name())?;
    b.append_extension(BasicConstraints::new().build()?)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let ctx = b.x509v3_context(Some(ca), None);
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .ip("::1")
        .build(&ctx)?;
    let ski = SubjectKeyIdentifier::new().build(&ctx)?;
    let aki = AuthorityKeyIdentifier::new().keyid(true).build(&ctx)?;
    b.append_extension(san)?;
    b.append_extension(ski)?;
    b.append_extension(aki)?;
    b.sign(ca_key, MessageDigest::sha256())?;
    Ok((b.build(), key))
}

/// Generates the certificates and writes `ca.pem`, `server.pem`,
/// `server.key` and `other-ca.pem` into `dir` (created if needed).
pub fn generate(dir: &Path) -> Result<Certs, Box<dyn Error>> {
    fs::create_dir_all(dir)?;
    let (ca, ca_key) = make_ca("ohreq testserver CA")?;
    let (server_cert, server_key) = make_server(&ca, &ca_key)?;
    let (other_ca, _) = make_ca("ohreq testserver other CA")?;

    write_atomic(&dir.join("ca.pem"), &ca.to_pem()?)?;
    write_atomic(&dir.join("server.pem"), &server_cert.to_pem()?)?;
    write_atomic(
        &dir.join("server.key"),
        &server_key.private_key_to_pem_pkcs8()?,
    )?;
    write_atomic(&dir.join("other-ca.pem"), &other_ca.to_pem()?)?;
    Ok(Certs {
        server_cert,
        server_key,
    })
}

/// Writes via a temporary name + rename so concurrent readers never see a
/// partial file.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    fs::write(&tmp, data)?;
    fs::rename(&tmp, path)
}

fn builder(certs: &Certs) -> Result<SslAcceptorBuilder, Box<dyn Error>> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_private_key(&certs.server_key)?;
    b.set_certificate(&certs.server_cert)?;
    b.check_private_key()?;
    Ok(b)
}

/// TLS 1.2+ acceptor. No ALPN is offered, so clients fall back to HTTP/1.1.
pub fn acceptor(certs: &Certs) -> Result<SslAcceptor, Box<dyn Error>> {
    Ok(builder(certs)?.build())
}

/// TLS 1.2+ acceptor for the HTTP/2 listener: ALPN offers only "h2", and a
/// client that does not offer it gets a fatal no_application_protocol alert.
pub fn h2_acceptor(certs: &Certs) -> Result<SslAcceptor, Box<dyn Error>> {
    let mut b = builder(certs)?;
    b.set_alpn_select_callback(|_, client| {
        select_next_proto(b"\x02h2", client).ok_or(AlpnError::ALERT_FATAL)
    });
    Ok(b.build())
}
