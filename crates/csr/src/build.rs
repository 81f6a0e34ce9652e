//! Building CSRs (the proxy side).

use meshid_policy::{Mesh, San, SanMode, ServiceAccount};
use rcgen::{CertificateParams, DistinguishedName, DnType, SanType};

use crate::error::BuildProblem;
use crate::{Error, KeyPair};

/// What a CSR asks for: a subject CN and SANs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CsrParams {
    /// The subject CN (the identity name); `None` leaves the subject empty.
    pub common_name: Option<String>,
    /// The SANs to request, in order.
    pub sans: Vec<San>,
}

impl CsrParams {
    /// `CN=<identity>` with a DNS SAN of the identity: what a Linkerd proxy sends.
    pub fn new(identity: &str) -> Self {
        Self {
            common_name: Some(identity.to_owned()),
            sans: vec![San::Dns(identity.to_owned())],
        }
    }

    /// The CSR a workload running as `sa` sends in `mode`: `CN=<identity>` and exactly the SANs
    /// the CA's policy computes for that mode.
    pub fn for_service_account(
        mesh: &Mesh,
        sa: &ServiceAccount,
        mode: SanMode,
    ) -> Result<Self, Error> {
        let names = |e| Error::CsrBuild(BuildProblem::Names(e));
        let identity = mesh.identity(sa).map_err(names)?;
        let sans = mesh.sans(sa, mode).map_err(names)?;
        Ok(Self {
            common_name: Some(identity.to_string()),
            sans,
        })
    }
}

/// A DER-encoded certificate signing request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Csr {
    der: Vec<u8>,
}

impl Csr {
    /// Builds and signs a CSR for `params` with `key` (proof of possession).
    pub fn build(key: &KeyPair, params: &CsrParams) -> Result<Self, Error> {
        let CsrParams { common_name, sans } = params;
        let mut cert_params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(cn) = common_name {
            dn.push(DnType::CommonName, cn.as_str());
        }
        cert_params.distinguished_name = dn;
        cert_params.subject_alt_names = sans
            .iter()
            .map(|san| {
                let text = san.as_str().to_owned();
                let ia5 = text.try_into().map_err(|error| {
                    Error::CsrBuild(BuildProblem::NotAscii {
                        san: san.to_string(),
                        error,
                    })
                })?;
                Ok(match san {
                    San::Uri(_) => SanType::URI(ia5),
                    _ => SanType::DnsName(ia5),
                })
            })
            .collect::<Result<_, Error>>()?;
        let request = cert_params
            .serialize_request(key)
            .map_err(|e| Error::CsrBuild(BuildProblem::Encoding(e)))?;
        Ok(Self {
            der: request.der().to_vec(),
        })
    }

    /// Wraps DER bytes (not checked; the CA parses and verifies).
    pub fn from_der(der: Vec<u8>) -> Self {
        Self { der }
    }

    /// The DER encoding, what goes on the wire.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The PEM encoding (`CERTIFICATE REQUEST`).
    pub fn pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", self.der.clone()))
    }

    /// The DER encoding, by value.
    pub fn into_der(self) -> Vec<u8> {
        self.der
    }
}
