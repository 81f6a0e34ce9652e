//! Shared fixtures: certificates minted at fixed times with fixed serials, and input builders.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use meshid_check::{CheckOptions, ClockSource, Inputs, PemSource, ProxyChain, Report};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;

/// The time every test runs at.
pub const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
pub const ROOT_FROM: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);
pub const ROOT_UNTIL: OffsetDateTime = datetime!(2036-01-01 0:00 UTC);
pub const ISSUER_FROM: OffsetDateTime = datetime!(2026-05-01 0:00 UTC);
pub const ISSUER_UNTIL: OffsetDateTime = datetime!(2027-05-01 0:00 UTC);

pub const ROOT_CN: &str = "root.linkerd.cluster.local";
pub const ISSUER_CN: &str = "identity.linkerd.cluster.local";
pub const ROOT_SERIAL: u64 = 1001;
pub const ISSUER_SERIAL: u64 = 2001;
pub const WEB_ID: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";

pub const RSA2048_KEY_PEM: &str = include_str!("../data/rsa2048.key.pem");
pub const RSA3072_KEY_PEM: &str = include_str!("../data/rsa3072.key.pem");

/// Key algorithms for fixtures.
#[derive(Clone, Copy, Debug)]
pub enum Alg {
    P256,
    P384,
    Rsa2048,
    Rsa3072,
}

pub fn key(alg: Alg) -> KeyPair {
    match alg {
        Alg::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        Alg::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        Alg::Rsa2048 => KeyPair::from_pem(RSA2048_KEY_PEM).unwrap(),
        Alg::Rsa3072 => KeyPair::from_pem(RSA3072_KEY_PEM).unwrap(),
    }
}

/// A certificate with its key and params (to sign with, when it is a CA).
pub struct Cert {
    pub der: CertificateDer<'static>,
    pub pem: String,
    pub key: KeyPair,
    params: CertificateParams,
}

impl Cert {
    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
}

fn ca_params(
    cn: &str,
    serial: u64,
    from: OffsetDateTime,
    until: OffsetDateTime,
    path_len: u8,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.serial_number = Some(SerialNumber::from(serial));
    params.not_before = from;
    params.not_after = until;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// A self-signed trust anchor.
pub fn root_with(
    cn: &str,
    serial: u64,
    alg: Alg,
    from: OffsetDateTime,
    until: OffsetDateTime,
) -> Cert {
    let params = ca_params(cn, serial, from, until, 1);
    let key = key(alg);
    let cert = params.self_signed(&key).unwrap();
    Cert {
        der: cert.der().clone(),
        pem: cert.pem(),
        key,
        params,
    }
}

/// The standard root: P-256, valid 2026..2036.
pub fn root() -> Cert {
    root_with(ROOT_CN, ROOT_SERIAL, Alg::P256, ROOT_FROM, ROOT_UNTIL)
}

/// An issuer (pathlen 0, EKU serverAuth + clientAuth) signed by `parent`.
pub fn issuer_with(parent: &Cert, alg: Alg, from: OffsetDateTime, until: OffsetDateTime) -> Cert {
    let mut params = ca_params(ISSUER_CN, ISSUER_SERIAL, from, until, 0);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let key = key(alg);
    let cert = params.signed_by(&key, &parent.issuer()).unwrap();
    Cert {
        der: cert.der().clone(),
        pem: cert.pem(),
        key,
        params,
    }
}

/// The standard issuer: P-256, valid 2026-05-01..2027-05-01.
pub fn issuer(parent: &Cert) -> Cert {
    issuer_with(parent, Alg::P256, ISSUER_FROM, ISSUER_UNTIL)
}

/// A proxy leaf for [`WEB_ID`] signed by `issuer`, as the identity controller issues it.
pub fn leaf(issuer: &Cert, from: OffsetDateTime, until: OffsetDateTime) -> Cert {
    let mut params = CertificateParams::new(vec![WEB_ID.to_owned()]).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, WEB_ID);
    params.serial_number = Some(SerialNumber::from(3001_u64));
    params.not_before = from;
    params.not_after = until;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let key = key(Alg::P256);
    let cert = params.signed_by(&key, &issuer.issuer()).unwrap();
    Cert {
        der: cert.der().clone(),
        pem: cert.pem(),
        key,
        params,
    }
}

/// The PEM chain a proxy presents: its leaf, then the issuer.
pub fn chain_pem(leaf: &Cert, issuer: &Cert) -> String {
    format!("{}{}", leaf.pem, issuer.pem)
}

/// In-memory identity inputs.
pub fn inputs(anchors_pem: &str, issuer: &Cert) -> Inputs {
    Inputs::new(
        PemSource::new("ca-bundle.crt", anchors_pem),
        PemSource::new("issuer/crt.pem", issuer.pem.clone()),
        PemSource::new("issuer/key.pem", issuer.key_pem()),
    )
}

/// Runs with the default options (and `--proxy` when `proxy`), at [`NOW`].
pub fn run(inputs: &Inputs, proxy: bool) -> Report {
    let mut options = CheckOptions::default();
    options.proxy = proxy;
    meshid_check::run(inputs, &options, NOW, ClockSource::Given)
}

pub fn proxy_chain(origin: &str, pem: &str) -> ProxyChain {
    ProxyChain::from_pem(origin, pem)
}

/// A fresh, empty directory under the target's temporary directory, removed when the
/// returned value is dropped.
pub fn temp_dir(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("meshid-check-{name}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// (status, message) of a check, for compact assertions.
pub fn outcome(report: &Report, name: &str) -> (meshid_check::Status, Option<String>) {
    let check = report
        .check(name)
        .unwrap_or_else(|| panic!("no check named {name:?}"));
    (check.status, check.message.clone())
}
