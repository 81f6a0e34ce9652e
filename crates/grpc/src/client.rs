//! A [`Certifier`] that calls a Linkerd-compatible identity service over gRPC.

use core::future::Future;
use core::time::Duration;
use std::net::SocketAddr;
use std::sync::Arc;

use http::Uri;
use hyper_util::rt::TokioIo;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use meshid_client::{Certifier, CertifyError, CertifyRequest, CertifyResponse};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint};

use crate::balance::{Balancer, Endpoints, Resolve, SystemResolver};
use crate::error::HandshakeFailed;
use crate::{ClientTls, ConnectKind, Error, TlsMode, UriProblem};
use meshid_policy::Clock;
use meshid_verify::TrustBundle;

/// How long a [`GrpcCertifier`] waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// For a connection to be established (TCP and, with TLS, the handshake). Default 3 s.
    pub connect: Duration,
    /// For each Certify call's answer. Default 10 s: the service may wait on a token review
    /// (meshid-authn's TokenReview timeout is 5 s, and it may queue behind its rate limit).
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            request: Duration::from_secs(10),
        }
    }
}

impl Timeouts {
    /// These timeouts.
    pub fn new(connect: Duration, request: Duration) -> Self {
        Self { connect, request }
    }
}

/// A [`Certifier`] over Linkerd's `io.linkerd.proxy.identity.Identity/Certify`, for
/// [`meshid_client::Client`].
///
/// The channel reconnects by itself after a failure; each call is bounded by the request
/// timeout. A gRPC status becomes a [`CertifyError`] reading `<code>: <message>`, e.g.
/// `FailedPrecondition: CSR must have exactly one DNSName`. A response without `valid_until`
/// is passed on with `valid_until: None`, which the client refuses as Linkerd's proxy does.
///
/// With several replicas ([`connect_endpoints`](Self::connect_endpoints)), calls take the
/// endpoints in turn, and a call that meets a connect error, `Unavailable` or a connection
/// lost before the answer is made again to the next endpoint within the same
/// [`Certifier::certify`] call: the client's backoff sees one attempt, and it fails only
/// when every endpoint did.
#[derive(Clone, Debug)]
pub struct GrpcCertifier {
    inner: Inner,
}

#[derive(Clone, Debug)]
enum Inner {
    /// One channel.
    Single(IdentityClient<Channel>),
    /// Several endpoints.
    Balanced(Arc<Balancer>),
}

impl GrpcCertifier {
    /// Connects over plaintext HTTP/2 (h2c), as Linkerd proxies reach
    /// `linkerd-identity-headless.<ns>.svc.<cluster-domain>:8080`. `uri` is `http://host:port`.
    pub async fn connect_plaintext(uri: &str, timeouts: Timeouts) -> Result<Self, Error> {
        let parsed = parse_uri(uri)?;
        if parsed.scheme_str() == Some("https") {
            return Err(Error::InvalidUri {
                uri: uri.to_owned(),
                reason: UriProblem::NeedsTls,
            });
        }
        let channel = endpoint(parsed, timeouts)
            .connect()
            .await
            .map_err(|e| connect_error(uri, &e))?;
        Ok(Self::from_channel(channel))
    }

    /// Connects over TLS, verifying the identity service as `tls` says (see
    /// [`ClientTls::verify_identity`]). `uri` is `https://host:port` (or `http://`, taken to
    /// mean the same here); the host is resolved and dialled, the name verified is the one in
    /// `tls`. A certificate that does not verify fails the connection.
    pub async fn connect_tls(uri: &str, tls: ClientTls, timeouts: Timeouts) -> Result<Self, Error> {
        let parsed = parse_uri(uri)?;
        let host = parsed
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
            .ok_or_else(|| Error::InvalidUri {
                uri: uri.to_owned(),
                reason: UriProblem::NoHost,
            })?;
        let default_port = if parsed.scheme_str() == Some("http") {
            80
        } else {
            443
        };
        let port = parsed.port_u16().unwrap_or(default_port);
        // tonic only dials; TLS is done by the connector below, so tonic sees plain `http`.
        let authority = parsed
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let plain = parse_uri(&format!("http://{authority}"))?;
        let connect = tls_connector(tls, move || {
            let host = host.clone();
            async move { TcpStream::connect((host.as_str(), port)).await }
        });
        let channel = endpoint(plain, timeouts)
            .connect_with_connector(connect)
            .await
            .map_err(|e| connect_error(uri, &e))?;
        Ok(Self::from_channel(channel))
    }

    /// A certifier over several replicas of the identity service (see the type's docs):
    /// `endpoints` is a list of addresses, or a DNS name resolved now and again every
    /// `refresh` with the system's resolver. With `tls`, every endpoint must prove the name
    /// `tls` verifies; without, plaintext (h2c). Connections are made when first used (and
    /// again after a failure), so an endpoint that is down now fails over rather than failing
    /// this call; only an unusable `endpoints` is an error here. Needs a tokio runtime (a DNS
    /// name is resolved again by a task, for as long as the certifier, or a clone, lives).
    pub async fn connect_endpoints(
        endpoints: Endpoints,
        tls: Option<ClientTls>,
        timeouts: Timeouts,
    ) -> Result<Self, Error> {
        Self::connect_endpoints_with(endpoints, tls, timeouts, Arc::new(SystemResolver)).await
    }

    /// [`connect_endpoints`](Self::connect_endpoints) resolving names with `resolver`.
    pub async fn connect_endpoints_with(
        endpoints: Endpoints,
        tls: Option<ClientTls>,
        timeouts: Timeouts,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Self, Error> {
        let balancer = Balancer::start(endpoints, tls, timeouts, resolver).await?;
        Ok(Self {
            inner: Inner::Balanced(balancer),
        })
    }

    /// Connects the way a proxy reaches its identity service.
    ///
    /// `addr` is `HOST:PORT[,HOST:PORT...]` ([`Endpoints::parse`]: several addresses, or one
    /// DNS name re-resolved periodically), optionally prefixed `https://` (TLS) or `http://`
    /// (plaintext h2c). Without a prefix, `mode` decides by the host
    /// ([`TlsMode::tls_for_host`]: with [`TlsMode::Auto`], TLS except on loopback, the rule
    /// Linkerd's proxy follows). Over TLS every endpoint must present a certificate that
    /// chains to `bundle` and names `identity` (the identity service's own name,
    /// [`identity_service_name`](crate::identity_service_name)). Returns the certifier and
    /// whether it speaks TLS.
    pub async fn connect_identity_service<K: Clock + Send + Sync + 'static>(
        addr: &str,
        mode: TlsMode,
        identity: &str,
        bundle: TrustBundle,
        clock: K,
        timeouts: Timeouts,
    ) -> Result<(Self, bool), Error> {
        let (forced, rest) = if let Some(rest) = addr.strip_prefix("https://") {
            (Some(true), rest)
        } else if let Some(rest) = addr.strip_prefix("http://") {
            (Some(false), rest)
        } else {
            (None, addr)
        };
        let endpoints = Endpoints::parse(rest.trim_end_matches('/'))?;
        let use_tls = forced.unwrap_or_else(|| {
            endpoints
                .host()
                .is_some_and(|host| mode.tls_for_host(&host))
        });
        let tls = if use_tls {
            Some(ClientTls::verify_identity(identity, bundle, clock)?)
        } else {
            None
        };
        let certifier = Self::connect_endpoints(endpoints, tls, timeouts).await?;
        Ok((certifier, use_tls))
    }

    /// A certifier over a channel the caller built.
    pub fn from_channel(channel: Channel) -> Self {
        Self {
            inner: Inner::Single(IdentityClient::new(channel)),
        }
    }

    /// The endpoints' addresses in use (the latest resolution of a name); empty for a
    /// certifier over one channel.
    pub fn endpoint_addrs(&self) -> Vec<SocketAddr> {
        match &self.inner {
            Inner::Single(_) => Vec::new(),
            Inner::Balanced(balancer) => balancer.addrs(),
        }
    }
}

impl Certifier for GrpcCertifier {
    fn certify(
        &self,
        mut request: CertifyRequest,
    ) -> impl Future<Output = Result<CertifyResponse, CertifyError>> + Send {
        let inner = self.inner.clone();
        async move {
            // Moved, not copied: the only other copy is the one tonic encodes.
            let token = core::mem::take(&mut *request.token);
            let message = linkerd2_proxy_api::identity::CertifyRequest {
                identity: core::mem::take(&mut request.identity),
                token,
                certificate_signing_request: core::mem::take(&mut request.csr_der),
            };
            let response = match inner {
                Inner::Single(mut client) => client.certify(message).await.map(|r| r.into_inner()),
                Inner::Balanced(balancer) => balancer.certify(message).await,
            }
            .map_err(|status| CertifyError::new(status_error(&status)))?;
            let valid_until = response.valid_until.map(time_of).transpose()?;
            Ok(CertifyResponse::new(
                CertificateDer::from(response.leaf_certificate),
                response
                    .intermediate_certificates
                    .into_iter()
                    .map(CertificateDer::from)
                    .collect(),
                valid_until,
            ))
        }
    }
}

/// `<code>: <message>`.
pub(crate) fn status_error(status: &tonic::Status) -> String {
    format!("{}: {}", crate::code::name(status.code()), status.message())
}

/// A channel to `addr` that connects when first used and again after a failure: plaintext,
/// or TLS as `tls` says.
pub(crate) fn lazy_channel(
    addr: SocketAddr,
    tls: Option<ClientTls>,
    timeouts: Timeouts,
) -> Channel {
    // The authority is only a label here: the connector dials `addr`.
    let uri = Uri::try_from(format!("http://{addr}"))
        .unwrap_or_else(|_| Uri::from_static("http://identity.invalid"));
    let endpoint = endpoint(uri, timeouts);
    match tls {
        None => endpoint.connect_lazy(),
        Some(tls) => endpoint.connect_with_connector_lazy(tls_connector(tls, move || async move {
            TcpStream::connect(addr).await
        })),
    }
}

/// A tonic connector that dials with `dial`, then makes the TLS handshake `tls` describes.
fn tls_connector<D, F>(
    tls: ClientTls,
    dial: D,
) -> impl tower::Service<
    Uri,
    Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
    Error = std::io::Error,
    Future = impl Future<Output = std::io::Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>>
             + Send,
> + Clone
+ Send
+ 'static
where
    D: Fn() -> F + Clone + Send + 'static,
    F: Future<Output = std::io::Result<TcpStream>> + Send + 'static,
{
    let connector = tokio_rustls::TlsConnector::from(tls.config);
    let server_name = tls.server_name;
    tower::service_fn(move |_: Uri| {
        let connector = connector.clone();
        let server_name = server_name.clone();
        let tcp = dial();
        async move {
            let tcp = tcp.await?;
            tcp.set_nodelay(true)?;
            let stream = connector
                .connect(server_name, tcp)
                .await
                .map_err(handshake_error)?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    })
}

/// A failed TLS handshake, its rustls reason shown by `Display` (rustls shows a verifier's own
/// reason through `Debug`), and its kind kept for [`Error::Connect`].
fn handshake_error(e: std::io::Error) -> std::io::Error {
    let (kind, reason) = match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))) => {
            (ConnectKind::Certificate, other.to_string())
        }
        Some(certificate @ rustls::Error::InvalidCertificate(_)) => {
            (ConnectKind::Certificate, certificate.to_string())
        }
        Some(other) => (ConnectKind::Tls, other.to_string()),
        None => return e,
    };
    std::io::Error::new(e.kind(), HandshakeFailed { kind, reason })
}

fn parse_uri(uri: &str) -> Result<Uri, Error> {
    let parsed: Uri = uri
        .parse()
        .map_err(|e: http::uri::InvalidUri| Error::InvalidUri {
            uri: uri.to_owned(),
            reason: UriProblem::Syntax {
                reason: e.to_string(),
            },
        })?;
    if parsed.authority().is_none() {
        return Err(Error::InvalidUri {
            uri: uri.to_owned(),
            reason: UriProblem::NoAuthority,
        });
    }
    Ok(parsed)
}

fn endpoint(uri: Uri, timeouts: Timeouts) -> Endpoint {
    Endpoint::from(uri)
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .tcp_nodelay(true)
}

fn connect_error(uri: &str, e: &tonic::transport::Error) -> Error {
    Error::Connect {
        uri: uri.to_owned(),
        kind: crate::error::connect_kind(e),
        reason: crate::error::error_chain(e),
    }
}

/// `valid_until` as a time; out of range is an error, not a silent `None`.
fn time_of(ts: prost_types::Timestamp) -> Result<OffsetDateTime, CertifyError> {
    let invalid = || {
        CertifyError::new(format!(
            "identity certification has an invalid expiration ({}s, {}ns)",
            ts.seconds, ts.nanos
        ))
    };
    let nanos = u32::try_from(ts.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or_else(invalid)?;
    OffsetDateTime::from_unix_timestamp(ts.seconds)
        .ok()
        .and_then(|t| t.replace_nanosecond(nanos).ok())
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t = time::macros::datetime!(2026-06-02 12:00:20.5 UTC);
        assert_eq!(time_of(crate::server::timestamp(t)), Ok(t));
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert!(time_of(bad).is_err());
    }

    #[test]
    fn uris_are_checked() {
        assert!(matches!(
            parse_uri("not a uri"),
            Err(Error::InvalidUri { .. })
        ));
        assert!(matches!(parse_uri("/path"), Err(Error::InvalidUri { .. })));
        assert!(parse_uri("http://127.0.0.1:8080").is_ok());
    }
}
