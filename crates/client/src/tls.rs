//! rustls (ring provider, TLS 1.3): certificate resolvers that always present the current
//! certificate, and verifiers that check peers against the current trust bundle and the mesh
//! profile.

use core::fmt;
use std::sync::Arc;

use meshid_policy::Clock;
use meshid_verify::{Usage, VerifiedPeer, VerifyOptions};
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::time_provider::TimeProvider;
use rustls::{CommonState, DistinguishedName, SignatureScheme};
use time::OffsetDateTime;

use crate::{Credentials, Error};

/// Whether a server requires client certificates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// Every client must present a certificate that verifies (default).
    #[default]
    Required,
    /// Clients may connect without a certificate (Linkerd's inbound behaviour); one that is
    /// presented must verify.
    Optional,
}

// === resolvers ===

/// Presents the current certificate, as server and as client. Lock-free: a renewal is seen by
/// the next handshake.
#[derive(Clone)]
pub struct CurrentCertificate {
    credentials: Arc<Credentials>,
}

impl CurrentCertificate {
    /// A resolver over `credentials`.
    pub fn new(credentials: Arc<Credentials>) -> Self {
        Self { credentials }
    }
}

impl fmt::Debug for CurrentCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentCertificate")
            .field("identity", &self.credentials.identity())
            .finish()
    }
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.credentials.certified_key()
    }
}

impl ResolvesClientCert for CurrentCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.credentials.certified_key()
    }

    fn has_certs(&self) -> bool {
        self.credentials.certified_key().is_some()
    }
}

// === verifiers ===

/// Verifies a server against the current trust bundle, then requires the expected identity
/// (a DNS identity name or a SPIFFE ID) among its SANs. The TLS server name is not used.
pub struct ServerIdentityVerifier {
    credentials: Arc<Credentials>,
    expected: String,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for ServerIdentityVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerIdentityVerifier")
            .field("expected", &self.expected)
            .finish()
    }
}

impl ServerCertVerifier for ServerIdentityVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let peer = verify(
            &self.credentials,
            end_entity,
            intermediates,
            now,
            Usage::Server,
        )?;
        if !peer.matches(&self.expected) {
            let found = peer.names();
            return Err(match ServerName::try_from(self.expected.clone()) {
                // A DNS identity: rustls's own "not valid for name" error, with the names found.
                Ok(expected) => rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext {
                        expected,
                        presented: found,
                    },
                ),
                Err(_) => rejected(format!(
                    "server identity mismatch: expected {}, found [{}]",
                    self.expected,
                    found.join(", ")
                )),
            });
        }
        Ok(ServerCertVerified::assertion())
    }

    meshid_verify::handshake_signatures!(algorithms);
}

/// Verifies client certificates against the current trust bundle under the mesh profile.
pub struct ClientIdentityVerifier {
    credentials: Arc<Credentials>,
    auth: ClientAuth,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for ClientIdentityVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentityVerifier")
            .field("auth", &self.auth)
            .finish()
    }
}

impl ClientCertVerifier for ClientIdentityVerifier {
    fn client_auth_mandatory(&self) -> bool {
        self.auth == ClientAuth::Required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        verify(
            &self.credentials,
            end_entity,
            intermediates,
            now,
            Usage::Client,
        )?;
        Ok(ClientCertVerified::assertion())
    }

    meshid_verify::handshake_signatures!(algorithms);
}

/// rustls's verification time as an `OffsetDateTime`.
pub fn verification_time(now: UnixTime) -> Result<OffsetDateTime, rustls::Error> {
    i64::try_from(now.as_secs())
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .ok_or_else(|| rustls::Error::General("the time is out of range".to_owned()))
}

fn verify(
    credentials: &Credentials,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    usage: Usage,
) -> Result<VerifiedPeer, rustls::Error> {
    let now = verification_time(now)?;
    meshid_verify::verify_chain(
        &credentials.trust_bundle(),
        end_entity,
        intermediates,
        now,
        usage,
        &VerifyOptions::default(),
    )
    .map_err(|e| match e {
        meshid_verify::Error::Chain(webpki::Error::CertExpired { time, not_after }) => {
            rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext {
                time,
                not_after,
            })
        }
        meshid_verify::Error::Chain(webpki::Error::CertNotValidYet { time, not_before }) => {
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidYetContext {
                time,
                not_before,
            })
        }
        meshid_verify::Error::Chain(webpki::Error::UnknownIssuer) => {
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        }
        other => rejected(other.to_string()),
    })
}

/// A peer certificate refused by a mesh verifier: rustls reports it as an invalid peer
/// certificate (alert `certificate_unknown`) carrying `reason`, shown bare.
pub fn rejected(reason: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
        Arc::new(PeerRejected(reason)),
    )))
}

/// Shown by rustls through `Debug`: the bare reason.
struct PeerRejected(String);

impl fmt::Debug for PeerRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for PeerRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PeerRejected {}

// === configs ===

/// A rustls time provider reading `clock`, so certificate validity in handshakes follows the
/// same (injectable) time as the rest of meshid.
pub fn time_provider(clock: impl Clock) -> Arc<dyn TimeProvider> {
    Arc::new(ClockTime(clock))
}

/// Reads a [`Clock`] for rustls.
struct ClockTime<K>(K);

impl<K> fmt::Debug for ClockTime<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClockTime")
    }
}

impl<K: Clock> TimeProvider for ClockTime<K> {
    fn current_time(&self) -> Option<UnixTime> {
        let secs = u64::try_from(self.0.now().unix_timestamp()).ok()?;
        Some(UnixTime::since_unix_epoch(core::time::Duration::from_secs(
            secs,
        )))
    }
}

/// A TLS 1.3 server config presenting the current certificate and verifying clients against
/// the current trust bundle, at the time `clock` tells. Session resumption is off: every
/// connection is verified against the current bundle.
pub fn server_config(
    credentials: Arc<Credentials>,
    auth: ClientAuth,
    clock: impl Clock,
) -> Result<rustls::ServerConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = ClientIdentityVerifier {
        credentials: Arc::clone(&credentials),
        auth,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ServerConfig::builder_with_details(provider, time_provider(clock))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Tls {
            reason: e.to_string(),
        })?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(CurrentCertificate::new(credentials)));
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// A TLS 1.3 client config presenting the current certificate and accepting only a server that
/// chains to the current trust bundle and names `expected_server` (a DNS identity name or a
/// SPIFFE ID), at the time `clock` tells. Session resumption is off.
pub fn client_config(
    credentials: Arc<Credentials>,
    expected_server: &str,
    clock: impl Clock,
) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = ServerIdentityVerifier {
        credentials: Arc::clone(&credentials),
        expected: expected_server.to_owned(),
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ClientConfig::builder_with_details(provider, time_provider(clock))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Tls {
            reason: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(CurrentCertificate::new(credentials)));
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// The authenticated identity of an established connection's peer: the first DNS SAN of its
/// leaf, else the first URI SAN (as Linkerd picks it). `None` when the peer sent no certificate.
pub fn peer_identity(connection: &CommonState) -> Option<String> {
    peer_identity_as(connection, "")
}

/// The peer's identity in the form of `local`, this side's own identity: its first URI SAN
/// (SPIFFE ID) when `local` is a SPIFFE ID, else its first DNS SAN; the other kind when the
/// peer has none of that one. In a mesh where Linkerd-style (DNS) and SPIFFE workloads talk,
/// each side reports its peers by the kind of name it uses itself.
pub fn peer_identity_as(connection: &CommonState, local: &str) -> Option<String> {
    let leaf = connection.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    let (mut dns, mut uri) = (None, None);
    for name in &san.value.general_names {
        match name {
            x509_parser::extensions::GeneralName::DNSName(d) if dns.is_none() => {
                dns = Some((*d).to_owned());
            }
            x509_parser::extensions::GeneralName::URI(u) if uri.is_none() => {
                uri = Some((*u).to_owned());
            }
            _ => {}
        }
    }
    if local.starts_with("spiffe://") {
        uri.or(dns)
    } else {
        dns.or(uri)
    }
}
