//! Test support for meshid: a local HTTPS endpoint that answers like the Kubernetes API server.
//!
//! [`ApiServerDouble`] listens on `127.0.0.1`, on a free port, with a certificate valid for
//! `127.0.0.1` and `localhost` issued by a CA it makes for itself
//! ([`ca_pem`](ApiServerDouble::ca_pem)). It records every request
//! ([`requests`](ApiServerDouble::requests), [`hits`](ApiServerDouble::hits),
//! [`next_request`](ApiServerDouble::next_request)) and answers with the function the test
//! gives ([`Builder::answer`]), or by default with `201 Created` echoing the body, as the API
//! server does when it creates an object. On request it also accepts TLS client certificates
//! issued by its CA, and hands out one ([`Builder::accept_client_certificates`]).
//!
//! [`ClusterDouble`] builds on it for token authentication: TokenReview against its own
//! signing keys (after a latency the test chooses), the service-account issuer discovery
//! (`/.well-known/openid-configuration`, `/openid/v1/jwks`), key rotation, and projected
//! ServiceAccount tokens minted with those keys.
//!
//! This crate is not published; the workspace's tests use it as a dev-dependency. What cannot
//! fail in a test (making a key, binding a port on `127.0.0.1`) panics, saying what failed.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use base64::Engine as _;
//! use meshid_kube::k8s_openapi::api::core::v1::ConfigMap;
//! use meshid_kube::{Error, KubeApiConfig, KubeClient};
//! use meshid_kube_testing::{Answer, ApiServerDouble};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! // ConfigMaps need a client certificate here; everything else gets the default answer.
//! let api = ApiServerDouble::builder()
//!     .accept_client_certificates("system:serviceaccount:linkerd:linkerd-identity")
//!     .answer(|request| async move {
//!         if request.path.ends_with("/configmaps") && !request.client_certificate {
//!             Answer::json(403, r#"{"kind":"Status","message":"forbidden","code":403}"#)
//!         } else {
//!             Answer::echo(&request)
//!         }
//!     })
//!     .start()
//!     .await;
//!
//! // A kubeconfig for it: its CA, and a token, or the client certificate it handed out.
//! let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
//! let kubeconfig = |user: String| {
//!     format!(
//!         "current-context: double
//! contexts: [{{name: double, context: {{cluster: double, user: identity}}}}]
//! clusters: [{{name: double, cluster: {{server: '{}', certificate-authority-data: {}}}}}]
//! users: [{{name: identity, user: {user}}}]",
//!         api.url(),
//!         b64(api.ca_pem()),
//!     )
//! };
//! let mut map = ConfigMap::default();
//! map.metadata.name = Some("meshid".to_owned());
//!
//! let config = KubeApiConfig::from_kubeconfig_str(&kubeconfig("{token: sa-token}".into()), None)?;
//! let refused = KubeClient::connect(config).await?.create(Some("linkerd"), &map).await;
//! assert!(matches!(refused, Err(Error::Api { status: 403, .. })));
//! let seen = api.next_request(Duration::from_secs(5)).await.expect("one request");
//! assert_eq!(seen.authorization(), "Bearer sa-token");
//! assert_eq!(seen.content_type(), Some("application/json"));
//!
//! let client = api.client_certificate().expect("client certificates are accepted");
//! let user = format!(
//!     "{{client-certificate-data: {}, client-key-data: {}}}",
//!     b64(&client.chain_pem),
//!     b64(&client.key_pem)
//! );
//! let config = KubeApiConfig::from_kubeconfig_str(&kubeconfig(user), None)?;
//! let created = KubeClient::connect(config).await?.create(Some("linkerd"), &map).await?;
//! assert_eq!(created, map);
//! assert!(api.requests()[1].client_certificate);
//! assert_eq!(api.hits(), 2);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub mod cluster;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::RootCertStore;
use rustls::pki_types::PrivateKeyDer;
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use cluster::{ClusterBuilder, ClusterDouble};

/// One request the double received.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Request {
    /// The HTTP method.
    pub method: Method,
    /// The URL path, without the query.
    pub path: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// The whole request body.
    pub body: Bytes,
    /// Whether the TLS peer presented a client certificate (which the double verified).
    pub client_certificate: bool,
}

impl Request {
    /// The `authorization` header, or `""` when there is none (or it is not visible ASCII).
    pub fn authorization(&self) -> &str {
        self.headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// The `content-type` header, if there is one in visible ASCII.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
    }
}

/// What the double answers to one request.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
    /// The `content-type` header, if any.
    pub content_type: Option<HeaderValue>,
}

impl Answer {
    /// An answer with this status and body, and no `content-type`.
    ///
    /// # Panics
    ///
    /// If `status` is not a valid HTTP status code (100 to 999).
    pub fn new(status: u16, body: impl Into<Bytes>) -> Self {
        Self {
            status: StatusCode::from_u16(status)
                .unwrap_or_else(|_| panic!("API server double: {status} is not an HTTP status")),
            body: body.into(),
            content_type: None,
        }
    }

    /// An `application/json` answer with this status and body.
    ///
    /// # Panics
    ///
    /// If `status` is not a valid HTTP status code (100 to 999).
    pub fn json(status: u16, body: impl Into<Bytes>) -> Self {
        Self {
            content_type: Some(HeaderValue::from_static("application/json")),
            ..Self::new(status, body)
        }
    }

    /// The default answer: `201 Created` with the request's body and `content-type`, as the
    /// API server answers a POST that creates an object.
    pub fn echo(request: &Request) -> Self {
        Self {
            content_type: request.headers.get(CONTENT_TYPE).cloned(),
            ..Self::new(201, request.body.clone())
        }
    }
}

/// A TLS client certificate the double accepts, and its private key.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientCertificate {
    /// The certificate, PEM.
    pub chain_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("chain_pem", &self.chain_pem)
            .field("key_pem", &format_args!("<redacted>"))
            .finish()
    }
}

/// The answer function, boxed.
type AnswerFn = Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Answer> + Send>> + Send + Sync>;

/// Options for an [`ApiServerDouble`]; from [`ApiServerDouble::builder`].
#[must_use = "a builder does nothing until started"]
pub struct Builder {
    client_common_name: Option<String>,
    answer: AnswerFn,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("client_common_name", &self.client_common_name)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Also accept TLS client certificates issued by the double's CA (a peer without one is
    /// still accepted; [`Request::client_certificate`] tells which), and make one with this
    /// subject common name ([`ApiServerDouble::client_certificate`]).
    pub fn accept_client_certificates(mut self, common_name: &str) -> Self {
        self.client_common_name = Some(common_name.to_owned());
        self
    }

    /// Answer every request with `answer`, called after the request is recorded. It may
    /// take its time (a slow API server), and may panic: the connection is then dropped.
    pub fn answer<F, Fut>(mut self, answer: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        self.answer = Arc::new(move |request| Box::pin(answer(request)));
        self
    }

    /// Listens on `127.0.0.1`, on a free port, until the double is dropped.
    ///
    /// # Panics
    ///
    /// If a key, a certificate or the TLS configuration cannot be made, or the port cannot
    /// be bound; or outside a Tokio runtime.
    pub async fn start(self) -> ApiServerDouble {
        let ca_key = must("make the CA key", KeyPair::generate());
        let mut ca_params = must("make the CA", CertificateParams::new(Vec::<String>::new()));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "meshid API server double CA");
        let ca_cert = must("make the CA", ca_params.self_signed(&ca_key));
        let ca = Issuer::new(ca_params, ca_key);

        let key = must("make the server key", KeyPair::generate());
        let mut params = must(
            "make the server certificate",
            CertificateParams::new(vec!["localhost".to_owned()]),
        );
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        let cert = must("make the server certificate", params.signed_by(&key, &ca));

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = must(
            "configure TLS",
            rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions(),
        );
        let (builder, client_certificate) = match &self.client_common_name {
            Some(common_name) => {
                let mut roots = RootCertStore::empty();
                must("trust the CA", roots.add(ca_cert.der().clone()));
                let verifier = must(
                    "configure client certificates",
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .allow_unauthenticated()
                        .build(),
                );
                let client = client_certificate(&ca, common_name);
                (builder.with_client_cert_verifier(verifier), Some(client))
            }
            None => (builder.with_no_client_auth(), None),
        };
        let tls = must(
            "configure TLS",
            builder.with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            ),
        );

        let listener = must("bind 127.0.0.1:0", TcpListener::bind("127.0.0.1:0").await);
        let addr = must("read the bound address", listener.local_addr());
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            seen: Mutex::default(),
            sender,
            answer: self.answer,
        });
        let accepting = tokio::spawn(accept(
            listener,
            TlsAcceptor::from(Arc::new(tls)),
            Arc::clone(&shared),
        ));
        ApiServerDouble {
            url: format!("https://{addr}"),
            ca_pem: ca_cert.pem(),
            client_certificate,
            shared,
            next: tokio::sync::Mutex::new(receiver),
            accepting,
        }
    }
}

/// A local HTTPS endpoint that answers like the Kubernetes API server; see the
/// [crate documentation](crate).
///
/// Dropping it stops accepting connections.
pub struct ApiServerDouble {
    url: String,
    ca_pem: String,
    client_certificate: Option<ClientCertificate>,
    shared: Arc<Shared>,
    next: tokio::sync::Mutex<mpsc::UnboundedReceiver<Request>>,
    accepting: JoinHandle<()>,
}

impl fmt::Debug for ApiServerDouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiServerDouble")
            .field("url", &self.url)
            .field("hits", &self.hits())
            .finish_non_exhaustive()
    }
}

impl ApiServerDouble {
    /// Options: client certificates, the answer function.
    pub fn builder() -> Builder {
        Builder {
            client_common_name: None,
            answer: Arc::new(|request| Box::pin(async move { Answer::echo(&request) })),
        }
    }

    /// A double with server authentication only, answering with [`Answer::echo`].
    ///
    /// # Panics
    ///
    /// As [`Builder::start`].
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PEM certificate of the CA that issued the server's certificate (and the client
    /// certificate, if any).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The client certificate the double accepts, if it was started with
    /// [`Builder::accept_client_certificates`].
    pub fn client_certificate(&self) -> Option<&ClientCertificate> {
        self.client_certificate.as_ref()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.seen().clone()
    }

    /// How many requests were received so far.
    pub fn hits(&self) -> usize {
        self.shared.seen().len()
    }

    /// The next request not yet returned here, in the order received, waiting at most
    /// `timeout` for it; `None` if none came.
    pub async fn next_request(&self, timeout: Duration) -> Option<Request> {
        let mut next = self.next.lock().await;
        tokio::time::timeout(timeout, next.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for ApiServerDouble {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// What the connections share with the double.
struct Shared {
    seen: Mutex<Vec<Request>>,
    sender: mpsc::UnboundedSender<Request>,
    answer: AnswerFn,
}

impl Shared {
    fn seen(&self) -> std::sync::MutexGuard<'_, Vec<Request>> {
        // A panicking answer function never holds the lock.
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the request, then answers it.
    async fn serve(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
        client_certificate: bool,
    ) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
        let (parts, body) = request.into_parts();
        let request = Request {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            headers: parts.headers,
            body: body.collect().await?.to_bytes(),
            client_certificate,
        };
        self.seen().push(request.clone());
        // The double itself holds the receiver: sending cannot fail.
        let _ = self.sender.send(request.clone());
        let answer = (self.answer)(request).await;
        let mut response = hyper::Response::new(Full::new(answer.body));
        *response.status_mut() = answer.status;
        if let Some(content_type) = answer.content_type {
            response.headers_mut().insert(CONTENT_TYPE, content_type);
        }
        Ok(response)
    }
}

/// Serves each connection in a task of its own.
async fn accept(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    while let Ok((tcp, _)) = listener.accept().await {
        let (acceptor, shared) = (acceptor.clone(), Arc::clone(&shared));
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            // Only a certificate the verifier accepted gets this far.
            let client_certificate = tls.get_ref().1.peer_certificates().is_some();
            let service = hyper::service::service_fn(move |request| {
                let shared = Arc::clone(&shared);
                async move { shared.serve(request, client_certificate).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// A client certificate with this subject common name, issued by `ca`.
fn client_certificate(ca: &Issuer<'_, KeyPair>, common_name: &str) -> ClientCertificate {
    let key = must("make the client key", KeyPair::generate());
    let mut params = must(
        "make the client certificate",
        CertificateParams::new(Vec::<String>::new()),
    );
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let cert = must("make the client certificate", params.signed_by(&key, ca));
    ClientCertificate {
        chain_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// The value, or a panic that says what could not be done.
fn must<T, E: fmt::Display>(what: &str, result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("API server double: cannot {what}: {e}"))
}
