//! An SDS client built from Envoy's protos (envoy-types) against the server over loopback:
//! initial push, ACK, pushes on renewal and bundle change, NACK handling, unknown secret names,
//! stale nonces, FetchSecrets, and a client that goes away; each refusal with its exact code and
//! message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::secret::Type;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
use envoy_types::pb::google::rpc;
use meshid_ca::Ca;
use meshid_ca::bootstrap::{CaCertificate, CaOptions, create_intermediate, create_root};
use meshid_client::{Client, ClientConfig, LocalCertifier, TokenSource};
use meshid_policy::{IssuancePolicy, Mesh, SystemClock};
use meshid_sds::{DELTA_UNIMPLEMENTED, SECRET_TYPE_URL, SdsService};
use meshid_verify::TrustBundle;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::Channel;
use tonic::{Code, Streaming};
use zeroize::Zeroizing;

const WEB: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
const STEP: Duration = Duration::from_secs(20);

#[allow(clippy::disallowed_methods)]
fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn root(name: &str) -> CaCertificate {
    create_root(&CaOptions::root(
        name,
        now() - Duration::from_secs(3600),
        Duration::from_secs(365 * 86_400),
    ))
    .unwrap()
}

struct Setup {
    root: CaCertificate,
    client: Client<LocalCertifier<SystemClock>, SystemClock>,
    sds: SdsService,
    grpc: SecretDiscoveryServiceClient<Channel>,
}

/// web's client (not certified yet) and an SDS server over its credentials on loopback.
async fn setup() -> Setup {
    let root = root("root.linkerd.cluster.local");
    let issuer = create_intermediate(
        &root,
        &CaOptions::issuer(
            "identity.linkerd.cluster.local",
            now() - Duration::from_secs(60),
            Duration::from_secs(2 * 86_400),
        ),
    )
    .unwrap();
    let bundle = TrustBundle::from_pem(root.pem().as_bytes()).unwrap();
    let ca = Arc::new(Ca::new(Mesh::default(), IssuancePolicy::default(), bundle.clone()).unwrap());
    ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), now())
        .unwrap();
    let token = TokenSource::Fixed(Zeroizing::new(b"in-process".to_vec()));
    let client = Client::new(
        ClientConfig::new(WEB, token, bundle),
        LocalCertifier::new(ca, SystemClock),
        SystemClock,
    )
    .unwrap();
    let sds = SdsService::new(client.credentials());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(sds.clone().into_server())
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let grpc = SecretDiscoveryServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    Setup {
        root,
        client,
        sds,
        grpc,
    }
}

fn request(names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: version.to_owned(),
        resource_names: names.iter().map(|n| (*n).to_owned()).collect(),
        type_url: SECRET_TYPE_URL.to_owned(),
        response_nonce: nonce.to_owned(),
        ..Default::default()
    }
}

/// An open StreamSecrets: requests in, responses out.
struct Xds {
    requests: mpsc::Sender<DiscoveryRequest>,
    responses: Streaming<DiscoveryResponse>,
}

impl Xds {
    async fn open(grpc: &mut SecretDiscoveryServiceClient<Channel>) -> Self {
        let (requests, rx) = mpsc::channel(8);
        let responses = grpc
            .stream_secrets(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Self {
            requests,
            responses,
        }
    }

    async fn send(&self, request: DiscoveryRequest) {
        self.requests.send(request).await.unwrap();
    }

    async fn next(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(STEP, self.responses.message())
            .await
            .expect("a response in time")
            .unwrap()
            .expect("the stream is open")
    }
}

/// The secrets of a response, by name.
fn secrets(response: &DiscoveryResponse) -> Vec<Secret> {
    assert_eq!(response.type_url, SECRET_TYPE_URL);
    response
        .resources
        .iter()
        .map(|any| {
            assert_eq!(any.type_url, SECRET_TYPE_URL);
            Secret::decode(any.value.as_slice()).unwrap()
        })
        .collect()
}

fn names(response: &DiscoveryResponse) -> Vec<String> {
    secrets(response).into_iter().map(|s| s.name).collect()
}

fn inline(source: Option<&envoy_types::pb::envoy::config::core::v3::DataSource>) -> String {
    match source.and_then(|s| s.specifier.as_ref()) {
        Some(Specifier::InlineBytes(bytes)) => String::from_utf8(bytes.clone()).unwrap(),
        other => panic!("expected inline bytes, got {other:?}"),
    }
}

/// The chain and key PEM of `default`, and the CA PEM of `ROOTCA`.
fn contents(response: &DiscoveryResponse) -> (Option<(String, String)>, Option<String>) {
    let (mut cert, mut ca) = (None, None);
    for secret in secrets(response) {
        match secret.r#type {
            Some(Type::TlsCertificate(tls)) => {
                assert_eq!(secret.name, "default");
                cert = Some((
                    inline(tls.certificate_chain.as_ref()),
                    inline(tls.private_key.as_ref()),
                ));
            }
            Some(Type::ValidationContext(validation)) => {
                assert_eq!(secret.name, "ROOTCA");
                ca = Some(inline(validation.trusted_ca.as_ref()));
            }
            other => panic!("unexpected secret type {other:?}"),
        }
    }
    (cert, ca)
}

fn chain_pem(client: &Client<LocalCertifier<SystemClock>, SystemClock>) -> String {
    let snapshot = client.credentials().snapshot().unwrap();
    snapshot
        .chain()
        .iter()
        .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.as_ref().to_vec())))
        .collect()
}

#[tokio::test]
async fn initial_push_ack_and_pushes_on_renewal_and_bundle_change() {
    let mut s = setup().await;
    s.client.certify_once().await.unwrap();
    let mut xds = Xds::open(&mut s.grpc).await;
    xds.send(request(&["default", "ROOTCA"], "", "")).await;

    let first = xds.next().await;
    assert_eq!(first.nonce, "1");
    assert_eq!(names(&first), ["default", "ROOTCA"]);
    let (cert, ca) = contents(&first);
    let (chain, key) = cert.unwrap();
    assert_eq!(chain, chain_pem(&s.client));
    let snapshot = s.client.credentials().snapshot().unwrap();
    assert_eq!(
        pem::parse(key.as_bytes()).unwrap().contents(),
        snapshot.private_key_pkcs8()
    );
    assert_eq!(
        TrustBundle::from_pem(ca.unwrap().as_bytes()).unwrap(),
        TrustBundle::from_pem(s.root.pem().as_bytes()).unwrap()
    );

    // ACK: the client uses the version. Nothing is sent for it.
    xds.send(request(&["default", "ROOTCA"], &first.version_info, "1"))
        .await;
    // A renewal is pushed at once, as a new version; the ACK caused no response before it.
    s.client.certify_once().await.unwrap();
    let second = xds.next().await;
    assert_eq!(second.nonce, "2");
    assert_ne!(second.version_info, first.version_info);
    let (cert, _) = contents(&second);
    assert_eq!(cert.unwrap().0, chain_pem(&s.client));
    assert_ne!(chain_pem(&s.client), chain);
    xds.send(request(&["default", "ROOTCA"], &second.version_info, "2"))
        .await;

    // A trust-bundle change is pushed too.
    let other = root("root-2.linkerd.cluster.local");
    let both = format!("{}{}", s.root.pem(), other.pem());
    s.client
        .credentials()
        .set_trust_bundle(TrustBundle::from_pem(both.as_bytes()).unwrap());
    let third = xds.next().await;
    assert_eq!(third.nonce, "3");
    let (_, ca) = contents(&third);
    assert_eq!(
        TrustBundle::from_pem(ca.unwrap().as_bytes()).unwrap(),
        TrustBundle::from_pem(both.as_bytes()).unwrap()
    );
}

#[tokio::test]
async fn a_nack_is_counted_and_not_answered_with_the_same_secrets() {
    let mut s = setup().await;
    s.client.certify_once().await.unwrap();
    let mut xds = Xds::open(&mut s.grpc).await;
    xds.send(request(&["default", "ROOTCA"], "", "")).await;
    let first = xds.next().await;

    // NACK: the previous (no) version, the nonce, and why.
    let mut nack = request(&["default", "ROOTCA"], "", &first.nonce);
    nack.error_detail = Some(rpc::Status {
        code: Code::InvalidArgument as i32,
        message: "Failed to load certificate chain".to_owned(),
        details: Vec::new(),
    });
    xds.send(nack).await;
    // The next request narrows the subscription; its answer is the next response, so the
    // NACK caused none.
    xds.send(request(&["default"], "", &first.nonce)).await;
    let second = xds.next().await;
    assert_eq!(second.nonce, "2");
    assert_eq!(names(&second), ["default"]);
    assert_eq!(s.sds.rejections(), 1);
}

#[tokio::test]
async fn unknown_names_are_never_answered_and_stale_nonces_ignored() {
    let mut s = setup().await;
    s.client.certify_once().await.unwrap();
    let mut xds = Xds::open(&mut s.grpc).await;
    // Only names this server does not have: nothing to send.
    xds.send(request(
        &["spiffe://cluster.local/ns/emojivoto/sa/web"],
        "",
        "",
    ))
    .await;
    // With a known name: only that one is answered; this is the stream's first response.
    xds.send(request(
        &["ROOTCA", "file-cert:/etc/certs/cert.pem"],
        "",
        "",
    ))
    .await;
    let first = xds.next().await;
    assert_eq!(first.nonce, "1");
    assert_eq!(names(&first), ["ROOTCA"]);
    // A request answering a nonce that was never the latest is stale: ignored, even with new
    // names.
    xds.send(request(&["default"], "", "7")).await;
    // A renewal leaves ROOTCA as it was: nothing to send. The bundle change is the next
    // response, for the subscription from before the stale request.
    s.client.certify_once().await.unwrap();
    let both = format!(
        "{}{}",
        s.root.pem(),
        root("root-2.linkerd.cluster.local").pem()
    );
    s.client
        .credentials()
        .set_trust_bundle(TrustBundle::from_pem(both.as_bytes()).unwrap());
    let second = xds.next().await;
    assert_eq!(second.nonce, "2");
    assert_eq!(names(&second), ["ROOTCA"]);
}

#[tokio::test]
async fn default_follows_the_first_certificate_and_rootca_comes_at_once() {
    let mut s = setup().await;
    let mut xds = Xds::open(&mut s.grpc).await;
    // An empty resource list asks for both secrets; before the first certificate only
    // ROOTCA exists.
    xds.send(request(&[], "", "")).await;
    let first = xds.next().await;
    assert_eq!(names(&first), ["ROOTCA"]);
    s.client.certify_once().await.unwrap();
    let second = xds.next().await;
    assert_eq!(names(&second), ["default", "ROOTCA"]);
}

#[tokio::test]
async fn fetch_secrets_answers_known_names_and_refuses_others() {
    let mut s = setup().await;
    let status = s
        .grpc
        .fetch_secrets(request(&["default"], "", ""))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            Code::Unavailable,
            format!("no certificate for {WEB} yet: the agent has not been certified").as_str()
        )
    );
    s.client.certify_once().await.unwrap();
    let response = s
        .grpc
        .fetch_secrets(request(&["default", "ROOTCA"], "", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&response), ["default", "ROOTCA"]);

    let status = s
        .grpc
        .fetch_secrets(request(&["default", "kubernetes://web-cert"], "", ""))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            Code::NotFound,
            "no secret named kubernetes://web-cert: this SDS server serves `default` (the workload certificate) and `ROOTCA` (the trust bundle)"
        )
    );
    let mut wrong = request(&["default"], "", "");
    wrong.type_url = "type.googleapis.com/envoy.config.cluster.v3.Cluster".to_owned();
    let status = s.grpc.fetch_secrets(wrong).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            Code::InvalidArgument,
            "this is the Secret Discovery Service: type_url must be type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret, not type.googleapis.com/envoy.config.cluster.v3.Cluster"
        )
    );
}

#[tokio::test]
async fn a_stream_of_another_type_ends_with_invalid_argument_and_delta_is_unimplemented() {
    let mut s = setup().await;
    let mut xds = Xds::open(&mut s.grpc).await;
    let mut wrong = request(&["default"], "", "");
    wrong.type_url = "type.googleapis.com/envoy.config.listener.v3.Listener".to_owned();
    xds.send(wrong).await;
    let status = tokio::time::timeout(STEP, xds.responses.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let (_tx, rx) = mpsc::channel(1);
    let status = s
        .grpc
        .delta_secrets(ReceiverStream::new(rx))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unimplemented, DELTA_UNIMPLEMENTED)
    );
}

#[tokio::test]
async fn a_client_that_goes_away_leaves_the_server_serving() {
    let mut s = setup().await;
    s.client.certify_once().await.unwrap();
    {
        let mut xds = Xds::open(&mut s.grpc).await;
        xds.send(request(&["default"], "", "")).await;
        xds.next().await;
    }
    // A renewal while nobody listens on that stream.
    s.client.certify_once().await.unwrap();
    let mut xds = Xds::open(&mut s.grpc).await;
    xds.send(request(&["default"], "", "")).await;
    let response = xds.next().await;
    assert_eq!(contents(&response).0.unwrap().0, chain_pem(&s.client));
}
