//! The two secrets, built from a snapshot of the credentials.

use envoy_types::pb::envoy::config::core::v3::DataSource;
use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::secret::Type;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, Secret, TlsCertificate,
};
use envoy_types::pb::google::protobuf::Any;
use meshid_client::Snapshot;
use meshid_verify::TrustBundle;
use prost::Message as _;
use zeroize::Zeroizing;

/// The workload certificate's secret name (Istio's).
pub const DEFAULT_SECRET: &str = "default";
/// The trust bundle's secret name (Istio's).
pub const ROOT_CA_SECRET: &str = "ROOTCA";
/// The `type_url` of SDS requests, responses and resources.
pub const SECRET_TYPE_URL: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// `default`: the chain and the key, PEM.
pub(crate) fn tls_certificate(snapshot: &Snapshot) -> Any {
    let chain: String = snapshot
        .chain()
        .iter()
        .map(|cert| pem::encode(&pem::Pem::new("CERTIFICATE", cert.as_ref().to_vec())))
        .collect();
    let key = Zeroizing::new(pem::encode(&pem::Pem::new(
        "PRIVATE KEY",
        snapshot.private_key_pkcs8().to_vec(),
    )));
    let secret = Secret {
        name: DEFAULT_SECRET.to_owned(),
        r#type: Some(Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(inline(chain.into_bytes())),
            private_key: Some(inline(key.as_bytes().to_vec())),
            ..Default::default()
        })),
    };
    any(&secret)
}

/// `ROOTCA`: the trust anchors, PEM.
pub(crate) fn validation_context(bundle: &TrustBundle) -> Any {
    let secret = Secret {
        name: ROOT_CA_SECRET.to_owned(),
        r#type: Some(Type::ValidationContext(CertificateValidationContext {
            trusted_ca: Some(inline(bundle.to_pem().into_bytes())),
            ..Default::default()
        })),
    };
    any(&secret)
}

fn inline(bytes: Vec<u8>) -> DataSource {
    DataSource {
        specifier: Some(Specifier::InlineBytes(bytes)),
        ..Default::default()
    }
}

fn any(secret: &Secret) -> Any {
    Any {
        type_url: SECRET_TYPE_URL.to_owned(),
        value: secret.encode_to_vec(),
    }
}
