//! TLS to and from the identity service.
//!
//! Client side: verify the service's certificate against the trust anchors and require its
//! identity name, without presenting a client certificate (a proxy has none before its first
//! certificate). Server side: TLS 1.3 with ALPN `h2`, presenting the service's current
//! certificate. [`TlsMode`] is the rule both sides use to decide whether to speak TLS.

use core::fmt;
use core::str::FromStr;
use std::net::IpAddr;
use std::sync::Arc;

use meshid_client::Credentials;
use meshid_policy::Clock;
use meshid_verify::{TrustBundle, Usage, VerifyOptions};
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

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
    /// DNS SAN, or a SPIFFE ID (`spiffe://<trust-domain>/ns/<ns>/sa/linkerd-identity`, the
    /// service in SAN mode `spiffe`) as a URI SAN, at the time `clock` tells. TLS 1.3, ring,
    /// no client certificate, no session resumption (every connection is verified); the
    /// server name sent is `identity` (for a SPIFFE ID, its trust domain).
    pub fn verify_identity(
        identity: &str,
        bundle: TrustBundle,
        clock: impl Clock,
    ) -> Result<Self, Error> {
        // A SPIFFE ID cannot be sent as SNI; its trust domain (a DNS name) is, and the
        // certificate is checked for the whole ID.
        let sni = match identity.strip_prefix("spiffe://") {
            Some(rest) => rest.split('/').next().unwrap_or(rest),
            None => identity,
        };
        let server_name = server_name(sni)?;
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

// === impl TlsMode ===

/// Whether the identity service's gRPC is spoken over TLS (`--tls auto|on|off`).
///
/// [`Auto`](Self::Auto), the default, is the rule Linkerd's proxy uses to decide whether to
/// speak TLS to its identity service: plaintext to a loopback address (127.0.0.0/8, `::1`,
/// the name `localhost`), where a sidecar proxy in front of the service, or the same machine,
/// is the peer; TLS to anything else, the unspecified addresses `0.0.0.0` and `::` included
/// (they listen on every interface).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// TLS except on loopback.
    #[default]
    Auto,
    /// TLS always.
    On,
    /// Plaintext (h2c) always.
    Off,
}

impl TlsMode {
    /// Whether to speak TLS on or to `ip`.
    pub fn tls_for_ip(self, ip: IpAddr) -> bool {
        match self {
            Self::Auto => !ip.is_loopback(),
            Self::On => true,
            Self::Off => false,
        }
    }

    /// Whether to speak TLS to `host`: an IP address as [`tls_for_ip`](Self::tls_for_ip)
    /// says (brackets around an IPv6 address allowed), `localhost` as loopback, any other
    /// name as not loopback.
    pub fn tls_for_host(self, host: &str) -> bool {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.tls_for_ip(ip),
            Err(_) => {
                let localhost = bare.trim_end_matches('.').eq_ignore_ascii_case("localhost");
                match self {
                    Self::Auto => !localhost,
                    Self::On => true,
                    Self::Off => false,
                }
            }
        }
    }
}

impl FromStr for TlsMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "auto" => Ok(Self::Auto),
            "on" => Ok(Self::On),
            "off" => Ok(Self::Off),
            other => Err(Error::InvalidTlsMode {
                value: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::On => "on",
            Self::Off => "off",
        })
    }
}

// === impl ServerTls ===

/// The identity service's own TLS: TLS 1.3 only, ring, ALPN `h2`, no client certificate asked
/// for (proxies have none before their first certificate), no session resumption, and the
/// certificate read at each handshake from [`Credentials`] (see
/// [`ServingIdentity`](crate::ServingIdentity)), so a renewed certificate is presented from
/// the next handshake on, without a restart. Serve with
/// [`IdentityService::serve_tls`](crate::IdentityService::serve_tls).
#[derive(Clone)]
pub struct ServerTls {
    pub(crate) config: Arc<rustls::ServerConfig>,
}

impl ServerTls {
    /// Presents the certificate currently in `credentials`; a handshake while none is
    /// installed fails (the client sees a handshake failure, the service keeps serving).
    pub fn current_certificate(credentials: Arc<Credentials>) -> Result<Self, Error> {
        let resolver = meshid_client::tls::CurrentCertificate::new(credentials);
        Self::with_resolver(Arc::new(resolver))
    }

    /// Presents what `resolver` resolves at each handshake.
    pub fn with_resolver(
        resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    ) -> Result<Self, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| Error::Tls {
                reason: e.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("alpn", &"h2")
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
/// the mesh leaf profile, serverAuth), requiring the expected identity among its DNS SANs (a
/// SPIFFE ID among its URI SANs).
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

    meshid_verify::handshake_signatures!(algorithms);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_plaintext_on_loopback_only() {
        let auto = TlsMode::Auto;
        for plain in [
            "127.0.0.1",
            "127.3.4.5",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST.",
        ] {
            assert!(!auto.tls_for_host(plain), "{plain}");
        }
        for tls in [
            "0.0.0.0",
            "::",
            "10.0.0.12",
            "fd00::1",
            "linkerd-identity-headless.linkerd.svc.cluster.local",
            "localhost.example",
        ] {
            assert!(auto.tls_for_host(tls), "{tls}");
        }
        assert!(TlsMode::On.tls_for_host("127.0.0.1"));
        assert!(!TlsMode::Off.tls_for_host("10.0.0.12"));
        assert!(!TlsMode::Off.tls_for_host("identity.example"));
    }

    #[test]
    fn modes_parse_and_print() {
        for mode in [TlsMode::Auto, TlsMode::On, TlsMode::Off] {
            assert_eq!(mode.to_string().parse::<TlsMode>(), Ok(mode));
        }
        assert_eq!(TlsMode::default(), TlsMode::Auto);
        assert_eq!(
            "yes".parse::<TlsMode>().map_err(|e| e.to_string()),
            Err("invalid TLS mode 'yes': expected auto, on or off".to_owned())
        );
    }
}
