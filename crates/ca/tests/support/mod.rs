//! Shared fixtures: a PKI minted at fixed times, CSR builders, and helpers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use core::time::Duration;

use meshid_ca::Ca;
use meshid_ca::bootstrap::{CaCertificate, CaOptions, create_intermediate, create_root};
use meshid_csr::{Csr, CsrParams, KeyPair};
use meshid_policy::{IssuancePolicy, KeyAlgorithm, Mesh, SanMode, ServiceAccount};
use meshid_verify::TrustBundle;
use rcgen::{CertificateParams, DistinguishedName, DnType, SanType};
use time::OffsetDateTime;
use time::macros::datetime;

/// The time every test runs at.
pub const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
pub const ROOT_FROM: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);
pub const ROOT_UNTIL: OffsetDateTime = datetime!(2036-01-01 0:00 UTC);
pub const ISSUER_FROM: OffsetDateTime = datetime!(2026-05-01 0:00 UTC);
pub const ISSUER_UNTIL: OffsetDateTime = datetime!(2026-08-01 0:00 UTC);

pub const RSA_KEY_PEM: &str = include_str!("../data/rsa2048.key.pem");
/// An Ed25519 key (PKCS#8): a type meshid refuses.
pub const ED25519_KEY_PEM: &str = include_str!("../data/ed25519.key.pem");
/// An ECDSA P-521 key (PKCS#8): a curve meshid refuses.
pub const P521_KEY_PEM: &str = include_str!("../data/p521.key.pem");

pub fn ca_options(
    cn: &str,
    from: OffsetDateTime,
    until: OffsetDateTime,
    path_len: u8,
) -> CaOptions {
    let mut opts = CaOptions::root(cn, from, Duration::from_secs(1));
    opts.not_after = until;
    opts.path_len = Some(path_len);
    opts
}

pub fn root() -> CaCertificate {
    create_root(&ca_options(
        "root.linkerd.cluster.local",
        ROOT_FROM,
        ROOT_UNTIL,
        1,
    ))
    .unwrap()
}

pub fn issuer_of(
    root: &CaCertificate,
    from: OffsetDateTime,
    until: OffsetDateTime,
) -> CaCertificate {
    let mut opts = ca_options("identity.linkerd.cluster.local", from, until, 0);
    opts.server_and_client_eku = true;
    create_intermediate(root, &opts).unwrap()
}

pub fn bundle_of(roots: &[&CaCertificate]) -> TrustBundle {
    let pem: String = roots.iter().map(|r| r.pem()).collect();
    TrustBundle::from_pem(pem.as_bytes()).unwrap()
}

/// A root, an issuer, and a CA serving with them at [`NOW`].
pub struct Pki {
    pub root: CaCertificate,
    pub issuer: CaCertificate,
    pub bundle: TrustBundle,
    pub ca: Ca,
}

impl Pki {
    pub fn new() -> Self {
        Self::with_policy(IssuancePolicy::default())
    }

    pub fn with_policy(policy: IssuancePolicy) -> Self {
        let root = root();
        let issuer = issuer_of(&root, ISSUER_FROM, ISSUER_UNTIL);
        let bundle = bundle_of(&[&root]);
        let ca = Ca::new(Mesh::default(), policy, bundle.clone()).unwrap();
        ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), NOW)
            .unwrap();
        Self {
            root,
            issuer,
            bundle,
            ca,
        }
    }
}

pub fn sa(ns: &str, name: &str) -> ServiceAccount {
    ServiceAccount::new(ns, name).unwrap()
}

pub fn web() -> ServiceAccount {
    sa("emojivoto", "web")
}

pub const WEB_ID: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";

/// A well-formed CSR for `sa` in `mode` with a fresh key.
pub fn csr_for(sa: &ServiceAccount, mode: SanMode, alg: KeyAlgorithm) -> (KeyPair, Vec<u8>) {
    let key = KeyPair::generate(alg).unwrap();
    let params = CsrParams::for_service_account(&Mesh::default(), sa, mode).unwrap();
    let csr = Csr::build(&key, &params).unwrap();
    (key, csr.into_der())
}

/// A CSR with whatever subject and SANs (and other params) a test wants, signed by `key`.
pub fn custom_csr(
    key: &impl rcgen::SigningKey,
    cn: Option<&str>,
    sans: Vec<SanType>,
    tweak: impl FnOnce(&mut CertificateParams),
) -> Vec<u8> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(cn) = cn {
        dn.push(DnType::CommonName, cn);
    }
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    tweak(&mut params);
    params.serialize_request(key).unwrap().der().to_vec()
}

pub fn dns(name: &str) -> SanType {
    SanType::DnsName(name.to_owned().try_into().unwrap())
}

pub fn uri(name: &str) -> SanType {
    SanType::URI(name.to_owned().try_into().unwrap())
}
