//! The gRPC certifier: meshid-client certified over loopback, plaintext and TLS; statuses
//! mapped to certify errors; a response without `valid_until` refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use core::time::Duration;

use linkerd2_proxy_api::identity::identity_server::{Identity, IdentityServer};
use linkerd2_proxy_api::identity::{
    CertifyRequest as ProtoRequest, CertifyResponse as ProtoResponse,
};
use meshid_client::{
    Certifier, CertifyError, CertifyRequest, Client, ClientConfig, State, TokenSource,
};
use meshid_csr::{Csr, CsrParams};
use meshid_grpc::{ClientTls, ConnectKind, Error, GrpcCertifier, Timeouts, UriProblem};
use meshid_policy::{KeyAlgorithm, Mesh, SanMode};
use support::*;
use time::macros::datetime;
use tonic::transport::{Identity as TlsIdentity, ServerTlsConfig};
use zeroize::Zeroizing;

fn token(t: &[u8]) -> TokenSource {
    TokenSource::Fixed(Zeroizing::new(t.to_vec()))
}

fn pem(tag: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(tag, der.to_vec()))
}

#[tokio::test]
async fn client_certifies_over_plaintext_grpc() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    let certifier = GrpcCertifier::connect_plaintext(&server.http_uri(), Timeouts::default())
        .await
        .unwrap();

    let config = ClientConfig::new(WEB_ID, token(WEB_TOKEN), pki.bundle.clone());
    let mut client = Client::new(config, certifier, SetClock::new(NOW)).unwrap();
    let refresh_at = client.certify_once().await.unwrap();
    let (_, not_after) = client.credentials().validity().unwrap();
    assert_eq!(not_after, datetime!(2026-06-02 12:00:20 UTC));
    assert!(refresh_at > NOW && refresh_at < not_after);
    assert!(matches!(
        client.credentials().current_state(),
        State::Ready { .. }
    ));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn statuses_become_code_and_message() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    let certifier = GrpcCertifier::connect_plaintext(&server.http_uri(), Timeouts::default())
        .await
        .unwrap();
    let request =
        |t: &[u8]| CertifyRequest::new(WEB_ID.to_owned(), Zeroizing::new(t.to_vec()), web_csr());

    let ok = certifier.certify(request(WEB_TOKEN)).await.unwrap();
    assert_eq!(ok.intermediates, vec![pki.issuer.der().clone()]);
    assert_eq!(ok.valid_until, Some(datetime!(2026-06-02 12:00:20 UTC)));

    assert_eq!(
        certifier.certify(request(UNKNOWN_TOKEN)).await.unwrap_err(),
        CertifyError::new("FailedPrecondition: authentication token could not be authenticated")
    );
    assert_eq!(
        certifier.certify(request(INVALID_TOKEN)).await.unwrap_err(),
        CertifyError::new(format!("InvalidArgument: {INVALID_TOKEN_REASON}"))
    );

    // The client surfaces the service's answer.
    let config = ClientConfig::new(WEB_ID, token(UNKNOWN_TOKEN), pki.bundle.clone());
    let mut client = Client::new(config, certifier, SetClock::new(NOW)).unwrap();
    let err = client.certify_once().await.unwrap_err().to_string();
    assert!(
        err.contains("FailedPrecondition: authentication token could not be authenticated"),
        "{err}"
    );
    server.stop().await.unwrap();
}

/// Certifies `linkerd-identity.linkerd` with the PKI's CA; returns (chain PEM, key PEM).
fn identity_service_credentials(pki: &Pki) -> (String, String) {
    let ca = pki.ca_ready();
    let sa = sa("linkerd", "linkerd-identity");
    let key = meshid_csr::KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let params = CsrParams::for_service_account(&Mesh::default(), &sa, SanMode::Dns).unwrap();
    let csr = Csr::build(&key, &params).unwrap();
    let certified = ca.certify(&sa, csr.der(), NOW).unwrap();
    assert_eq!(certified.identity.as_str(), IDENTITY_SERVICE_ID);
    let mut chain = pem("CERTIFICATE", &certified.leaf);
    for cert in certified.chain.iter() {
        chain.push_str(&pem("CERTIFICATE", cert));
    }
    (chain, key.to_pkcs8_pem().to_string())
}

async fn tls_server(pki: &Pki) -> Server {
    let (chain, key) = identity_service_credentials(pki);
    let builder = tonic::transport::Server::builder()
        .tls_config(ServerTlsConfig::new().identity(TlsIdentity::from_pem(chain, key)))
        .unwrap();
    Server::start_with(pki.ca_ready(), None, builder).await
}

#[tokio::test]
async fn client_certifies_over_tls_verifying_the_identity_service() {
    let pki = Pki::new();
    let server = tls_server(&pki).await;
    let tls =
        ClientTls::verify_identity(IDENTITY_SERVICE_ID, pki.bundle.clone(), SetClock::new(NOW))
            .unwrap();
    let certifier = GrpcCertifier::connect_tls(
        &format!("https://{}", server.addr),
        tls,
        Timeouts::default(),
    )
    .await
    .unwrap();

    let config = ClientConfig::new(WEB_ID, token(WEB_TOKEN), pki.bundle.clone());
    let mut client = Client::new(config, certifier, SetClock::new(NOW)).unwrap();
    client.certify_once().await.unwrap();
    let (_, not_after) = client.credentials().validity().unwrap();
    assert_eq!(not_after, datetime!(2026-06-02 12:00:20 UTC));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn tls_refuses_an_identity_service_of_another_name_or_trust() {
    let pki = Pki::new();
    let server = tls_server(&pki).await;
    let uri = format!("https://{}", server.addr);
    let connect = |tls| GrpcCertifier::connect_tls(&uri, tls, Timeouts::default());

    // Another name.
    let other = "linkerd-identity.other.serviceaccount.identity.other.cluster.local";
    let tls = ClientTls::verify_identity(other, pki.bundle.clone(), SetClock::new(NOW)).unwrap();
    let Err(Error::Connect { reason, kind, .. }) = connect(tls).await else {
        panic!("connected to an identity service of another name");
    };
    assert_eq!(kind, ConnectKind::Certificate);
    assert!(
        reason.contains(&format!(
            "TLS handshake with the identity service failed: identity service certificate \
             refused: peer identity mismatch: expected \"{other}\""
        )),
        "{reason}"
    );

    // Another trust anchor.
    let stranger = Pki::new();
    let tls = ClientTls::verify_identity(
        IDENTITY_SERVICE_ID,
        stranger.bundle.clone(),
        SetClock::new(NOW),
    )
    .unwrap();
    let Err(Error::Connect { reason, kind, .. }) = connect(tls).await else {
        panic!("connected to an identity service of another trust domain");
    };
    assert_eq!(kind, ConnectKind::Certificate);
    assert!(
        reason.contains("identity service certificate refused"),
        "{reason}"
    );

    // The right name, but after the service's certificate expired.
    let later = SetClock::new(datetime!(2026-06-03 0:00 UTC));
    let tls = ClientTls::verify_identity(IDENTITY_SERVICE_ID, pki.bundle.clone(), later).unwrap();
    assert!(matches!(
        connect(tls).await,
        Err(Error::Connect {
            kind: ConnectKind::Certificate,
            ..
        })
    ));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn connect_and_request_timeouts_apply() {
    // A listener that is held open and never answers: the TCP connection is made (by the
    // kernel's backlog), the TLS handshake never completes, and the connect timeout ends it.
    let pki = Pki::new();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("https://{}", silent.local_addr().unwrap());
    let tls =
        ClientTls::verify_identity(IDENTITY_SERVICE_ID, pki.bundle.clone(), SetClock::new(NOW))
            .unwrap();
    let timeouts = Timeouts::new(Duration::from_millis(300), Duration::from_secs(600));
    // Far longer than the connect timeout: only a missing one lets this expire.
    let connect = GrpcCertifier::connect_tls(&uri, tls, timeouts);
    let err = tokio::time::timeout(Duration::from_secs(60), connect)
        .await
        .expect("the connect timeout did not end a handshake that never completes")
        .unwrap_err();
    let Error::Connect { reason, kind, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*kind, ConnectKind::TimedOut, "{err}");
    assert!(reason.contains("deadline has elapsed"), "{err}");
    drop(silent);

    // A request stuck in the token review ends at the request timeout.
    let server = Server::start(pki.ca_ready(), None).await;
    let timeouts = Timeouts::new(Duration::from_secs(3), Duration::from_millis(200));
    let certifier = GrpcCertifier::connect_plaintext(&server.http_uri(), timeouts)
        .await
        .unwrap();
    let request = CertifyRequest::new(
        WEB_ID.to_owned(),
        Zeroizing::new(SLOW_TOKEN.to_vec()),
        web_csr(),
    );
    let err = certifier.certify(request).await.unwrap_err();
    assert!(err.message.starts_with("Cancelled: "), "{err}");
    server.authn.release();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_refused_connection_is_told_apart() {
    // A port that was just free: nothing listens there.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = GrpcCertifier::connect_plaintext(&uri, Timeouts::default())
        .await
        .unwrap_err();
    let Error::Connect { kind, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*kind, ConnectKind::Refused, "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "cannot connect to the identity service at {uri}: "
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_failed_handshake_is_tls_and_a_dropped_connection_other() {
    let pki = Pki::new();
    let tls = || {
        ClientTls::verify_identity(IDENTITY_SERVICE_ID, pki.bundle.clone(), SetClock::new(NOW))
            .unwrap()
    };

    // A plaintext HTTP/2 server answers the ClientHello with bytes that are not TLS.
    let server = Server::start(pki.ca_ready(), None).await;
    let uri = format!("https://{}", server.addr);
    let err = GrpcCertifier::connect_tls(&uri, tls(), Timeouts::default())
        .await
        .unwrap_err();
    let Error::Connect { kind, reason, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*kind, ConnectKind::Tls, "{err}");
    assert!(
        reason.contains("TLS handshake with the identity service failed: "),
        "{err}"
    );
    server.stop().await.unwrap();

    // A listener that accepts and closes at once: no TLS error, the connection just ends.
    let closing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("https://{}", closing.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = closing.accept().await else {
                return;
            };
            drop(stream);
        }
    });
    let err = GrpcCertifier::connect_tls(&uri, tls(), Timeouts::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Connect {
                kind: ConnectKind::Other,
                ..
            }
        ),
        "{err:?}"
    );
    task.abort();
}

#[tokio::test]
async fn uris_are_validated() {
    let timeouts = Timeouts::default();
    let Err(Error::InvalidUri { reason, .. }) =
        GrpcCertifier::connect_plaintext("not a uri", timeouts).await
    else {
        panic!("accepted a URI that is not one");
    };
    assert!(matches!(reason, UriProblem::Syntax { .. }), "{reason:?}");
    let Err(err) = GrpcCertifier::connect_plaintext("https://127.0.0.1:8080", timeouts).await
    else {
        panic!("connected over plaintext to an https URI");
    };
    assert_eq!(
        err,
        Error::InvalidUri {
            uri: "https://127.0.0.1:8080".to_owned(),
            reason: UriProblem::NeedsTls,
        }
    );
    assert_eq!(
        err.to_string(),
        "invalid identity service URI 'https://127.0.0.1:8080': an https URI needs TLS: use \
         GrpcCertifier::connect_tls"
    );
    let tls =
        ClientTls::verify_identity(IDENTITY_SERVICE_ID, Pki::new().bundle, SetClock::new(NOW))
            .unwrap();
    let Err(err) = GrpcCertifier::connect_tls("/path", tls, timeouts).await else {
        panic!("connected to a URI without an authority");
    };
    assert_eq!(
        err,
        Error::InvalidUri {
            uri: "/path".to_owned(),
            reason: UriProblem::NoAuthority,
        }
    );
    assert_eq!(
        err.to_string(),
        "invalid identity service URI '/path': expected scheme://host:port"
    );
    assert!(matches!(
        ClientTls::verify_identity("not a name!", Pki::new().bundle, SetClock::new(NOW)),
        Err(Error::InvalidServerName { .. })
    ));
}

/// A service that answers without `valid_until`, as a broken identity service might.
struct NoExpiry {
    ca: Arc<meshid_ca::Ca>,
}

#[tonic::async_trait]
impl Identity for NoExpiry {
    async fn certify(
        &self,
        request: tonic::Request<ProtoRequest>,
    ) -> Result<tonic::Response<ProtoResponse>, tonic::Status> {
        let request = request.into_inner();
        let certified = self
            .ca
            .certify(&web(), &request.certificate_signing_request, NOW)
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
        Ok(tonic::Response::new(ProtoResponse {
            leaf_certificate: certified.leaf.to_vec(),
            intermediate_certificates: certified.chain.iter().map(|c| c.to_vec()).collect(),
            valid_until: None,
        }))
    }
}

#[tokio::test]
async fn a_response_without_valid_until_is_refused() {
    let pki = Pki::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = IdentityServer::new(NoExpiry { ca: pki.ca_ready() });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );

    let certifier =
        GrpcCertifier::connect_plaintext(&format!("http://{addr}"), Timeouts::default())
            .await
            .unwrap();
    let request = CertifyRequest::new(
        WEB_ID.to_owned(),
        Zeroizing::new(WEB_TOKEN.to_vec()),
        web_csr(),
    );
    assert_eq!(certifier.certify(request).await.unwrap().valid_until, None);

    let config = ClientConfig::new(WEB_ID, token(WEB_TOKEN), pki.bundle.clone());
    let mut client = Client::new(config, certifier, SetClock::new(NOW)).unwrap();
    let err = client.certify_once().await.unwrap_err().to_string();
    assert!(err.contains("expiration"), "{err}");

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
