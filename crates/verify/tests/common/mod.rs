//! An in-process PKI for the tests: every certificate is generated with rcgen at fixed times,
//! so nothing committed can expire.

#![allow(dead_code, unreachable_pub)] // Each test binary uses a different part.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SignatureAlgorithm,
};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use time::macros::datetime;

/// Start of every default validity period.
pub const NOT_BEFORE: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);
/// End of every default validity period.
pub const NOT_AFTER: OffsetDateTime = datetime!(2027-01-01 0:00 UTC);
/// The verification time of the tests.
pub const NOW: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);

/// The identity of the test workload.
pub const IDENTITY: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
/// The SPIFFE ID of the test workload.
pub const SPIFFE_ID: &str = "spiffe://cluster.local/ns/emojivoto/sa/web";

/// A CA: its certificate and what signs under it.
pub struct Ca {
    pub der: CertificateDer<'static>,
    pub pem: String,
    params: CertificateParams,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A self-signed root valid from `not_before` to `not_after`.
    pub fn root(name: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let params = ca_params(name, not_before, not_after);
        let cert = params.self_signed(&key).unwrap();
        Self {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params.clone(), key),
            params,
        }
    }

    /// A root valid for the default period.
    pub fn default_root(name: &str) -> Self {
        Self::root(name, NOT_BEFORE, NOT_AFTER)
    }

    /// An intermediate CA signed by `self`, valid for the default period.
    pub fn intermediate(&self, name: &str) -> Self {
        self.intermediate_with(name, |_| {})
    }

    /// An intermediate CA signed by `self`, its parameters adjusted by `edit`.
    pub fn intermediate_with(&self, name: &str, edit: impl FnOnce(&mut CertificateParams)) -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = ca_params(name, NOT_BEFORE, NOT_AFTER);
        edit(&mut params);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Self {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params.clone(), key),
            params,
        }
    }

    /// The same root (name and key) re-issued for another validity period.
    pub fn reissue(&self, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        self.resign(None, not_before, not_after)
    }

    /// The same intermediate (name and key) re-signed by `parent` for another validity period.
    pub fn reissue_by(
        &self,
        parent: &Self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Self {
        self.resign(Some(parent), not_before, not_after)
    }

    /// The same name and key for another validity period, signed by `parent` (or itself).
    fn resign(
        &self,
        parent: Option<&Self>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Self {
        let mut params = self.params.clone();
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::from_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(self.issuer.key().serialize_der()).into(),
            self.issuer.key().algorithm(),
        )
        .unwrap();
        let cert = match parent {
            Some(parent) => params.signed_by(&key, &parent.issuer),
            None => params.self_signed(&key),
        }
        .unwrap();
        Self {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params.clone(), key),
            params,
        }
    }

    /// A leaf signed by `self`.
    pub fn leaf(&self, spec: &Leaf) -> CertificateDer<'static> {
        let key = KeyPair::generate_for(spec.alg).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.subject_alt_names = spec
            .dns
            .iter()
            .map(|n| SanType::DnsName((*n).try_into().unwrap()))
            .chain(
                spec.uris
                    .iter()
                    .map(|u| SanType::URI((*u).try_into().unwrap())),
            )
            .collect();
        params.extended_key_usages = spec.ekus.clone();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if spec.is_ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        params.use_authority_key_identifier_extension = true;
        if let Some(edit) = spec.edit {
            edit(&mut params);
        }
        params.signed_by(&key, &self.issuer).unwrap().der().clone()
    }
}

fn ca_params(
    name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// What a leaf looks like; `Leaf::default()` is a mesh workload certificate.
#[derive(Clone)]
pub struct Leaf {
    pub alg: &'static SignatureAlgorithm,
    pub dns: Vec<&'static str>,
    pub uris: Vec<&'static str>,
    pub ekus: Vec<ExtendedKeyUsagePurpose>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub is_ca: bool,
    /// A last adjustment of the parameters.
    pub edit: Option<fn(&mut CertificateParams)>,
}

impl Default for Leaf {
    fn default() -> Self {
        Self {
            alg: &PKCS_ECDSA_P256_SHA256,
            dns: vec![IDENTITY],
            uris: vec![SPIFFE_ID],
            ekus: vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            not_before: NOT_BEFORE,
            not_after: NOT_AFTER,
            is_ca: false,
            edit: None,
        }
    }
}

/// A root, an issuer under it, and a default leaf under the issuer (Linkerd's shape).
pub struct Pki {
    pub root: Ca,
    pub issuer: Ca,
    pub leaf: CertificateDer<'static>,
}

impl Pki {
    pub fn new() -> Self {
        let root = Ca::default_root("root.linkerd.cluster.local");
        let issuer = root.intermediate("identity.linkerd.cluster.local");
        let leaf = issuer.leaf(&Leaf::default());
        Self { root, issuer, leaf }
    }

    pub fn bundle(&self) -> meshid_verify::TrustBundle {
        meshid_verify::TrustBundle::from_der(vec![self.root.der.clone()]).unwrap()
    }
}
