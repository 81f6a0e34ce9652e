//! Client TLS to the identity service: verify its certificate against the trust anchors and
//! require its identity name, without presenting a client certificate (a proxy has none
//! before its first certificate).

use core::fmt;
use std::sync::Arc;

use meshid_policy::Clock;
use meshid_verify::{TrustBundle, Usage, VerifyOptions};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::Error;

/// ALPN for gRPC: HTTP/2 only.
const ALPN_H2: &[u8] = b"h2";

/// How a [`GrpcCertifier`](crate::GrpcCertifier) secures its connection to the identity
/// service: the TLS server name to send and a rustls client configuration.
#[derive(Clone)]
pub struct ClientTls {
    pub(crate) server_name: ServerName<'static>,
    pub(crate) config: Arc<rustls::ClientConfig>,
}

impl ClientTls {
    /// Trusts an identity service whose certificate chains to `bundle` and names `identity`
    /// (e.g. `linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local`) as a
    /// DNS SAN, at the time `clock` tells. TLS 1.3, ring, no client certificate, no session
    /// resumption (every connection is verified); the server name sent is `identity`.
    pub fn verify_identity(
        identity: &str,
        bundle: TrustBundle,
        clock: impl Clock,
    ) -> Result<Self, Error> {
        let server_name = server_name(identity)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = IdentityServiceVerifier {
            bundle,
            expected: identity.to_owned(),
            algorithms: provider.signature_verification_algorithms,
        };
        let mut config = rustls::ClientConfig::builder_with_details(
            provider,
            meshid_client::tls::time_provider(clock),
        )
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Tls {
            reason: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Self {
            server_name,
            config: Arc::new(config),
        })
    }

    /// A configuration of the caller's, e.g. [`meshid_client::tls::client_config`] to present
    /// the proxy's current certificate too. `server_name` is sent as SNI (the configuration's
    /// verifier decides what it checks); ALPN is set to `h2`.
    pub fn with_config(server_name: &str, mut config: rustls::ClientConfig) -> Result<Self, Error> {
        let server_name = self::server_name(server_name)?;
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Self {
            server_name,
            config: Arc::new(config),
        })
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn server_name(name: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(name.to_owned()).map_err(|e| Error::InvalidServerName {
        name: name.to_owned(),
        reason: e.to_string(),
    })
}

// === impl IdentityServiceVerifier ===

/// Verifies the identity service's chain with [`meshid_verify::verify_identity`] (webpki plus
/// the mesh leaf profile, serverAuth), requiring the expected identity among its DNS SANs.
struct IdentityServiceVerifier {
    bundle: TrustBundle,
    expected: String,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for IdentityServiceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityServiceVerifier")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for IdentityServiceVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let now = meshid_client::tls::verification_time(now)?;
        meshid_verify::verify_identity(
            &self.bundle,
            end_entity,
            intermediates,
            now,
            Usage::Server,
            &self.expected,
            &VerifyOptions::default(),
        )
        .map_err(|e| {
            meshid_client::tls::rejected(format!("identity service certificate refused: {e}"))
        })?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
