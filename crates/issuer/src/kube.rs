//! Events as Kubernetes core/v1 Events (feature `kube-events`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use meshid_policy::rfc3339;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::{Error, Event, EventSink};

/// The largest API server answer read.
const MAX_RESPONSE_LEN: usize = 64 * 1024;

/// The object events are about (`involvedObject`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectReference {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// `linkerd-identity`.
    pub name: String,
    /// `linkerd`.
    pub namespace: String,
    /// The object's UID, if known (events then attach to this incarnation only).
    pub uid: Option<String>,
}

impl ObjectReference {
    /// The Deployment `name` in `namespace`.
    pub fn deployment(namespace: &str, name: &str) -> Self {
        Self {
            api_version: "apps/v1".to_owned(),
            kind: "Deployment".to_owned(),
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            uid: None,
        }
    }
}

/// Where and how to post events.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KubeEventsConfig {
    /// The API server, e.g. `https://kubernetes.default.svc`.
    pub api_server: String,
    /// The PEM CA bundle the API server's certificate verifies against.
    pub ca_file: PathBuf,
    /// The bearer token file, read for every post (projected tokens rotate).
    pub token_file: PathBuf,
    /// The object the events are about (default: Deployment `linkerd-identity` in `linkerd`).
    pub involved_object: ObjectReference,
    /// `source.component` and `reportingComponent` (`linkerd-identity`).
    pub component: String,
    /// Events waiting to be posted beyond which new ones are dropped (logged).
    pub queue: usize,
    /// The timeout of one post.
    pub timeout: Duration,
}

impl KubeEventsConfig {
    /// Posting to `api_server` as Linkerd's identity service does.
    pub fn new(
        api_server: &str,
        ca_file: impl Into<PathBuf>,
        token_file: impl Into<PathBuf>,
    ) -> Self {
        Self {
            api_server: api_server.trim_end_matches('/').to_owned(),
            ca_file: ca_file.into(),
            token_file: token_file.into(),
            involved_object: ObjectReference::deployment("linkerd", "linkerd-identity"),
            component: "linkerd-identity".to_owned(),
            queue: 256,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Posts events as core/v1 Events to the Kubernetes API server, on the configured object.
///
/// `emit` never blocks: events are queued for a background task, which posts them one at a
/// time; a failed post is logged and the event dropped. The identity service needs RBAC
/// `create` on `events` in the object's namespace.
#[derive(Clone, Debug)]
pub struct KubeEventSink {
    tx: mpsc::Sender<Event>,
}

impl KubeEventSink {
    /// Starts the posting task on the current tokio runtime. Reads the CA file now.
    pub fn spawn(config: KubeEventsConfig) -> Result<(Self, tokio::task::JoinHandle<()>), Error> {
        let poster = Poster::new(config)?;
        let (tx, mut rx) = mpsc::channel::<Event>(poster.config.queue.max(1));
        let task = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                if let Err(e) = poster.post(&event).await {
                    tracing::warn!(error = %e, reason = event.reason, "Kubernetes Event not recorded");
                }
            }
        });
        Ok((Self { tx }, task))
    }
}

impl EventSink for KubeEventSink {
    fn emit(&self, event: &Event) {
        if self.tx.try_send(event.clone()).is_err() {
            tracing::warn!(
                reason = event.reason,
                "Kubernetes Event queue full or closed; event dropped"
            );
        }
    }
}

struct Poster {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: Uri,
    config: KubeEventsConfig,
}

impl Poster {
    fn new(config: KubeEventsConfig) -> Result<Self, Error> {
        let failed = |reason: String| Error::KubeEvents { reason };
        let uri: Uri = format!(
            "{}/api/v1/namespaces/{}/events",
            config.api_server, config.involved_object.namespace
        )
        .parse()
        .map_err(|e| failed(format!("API server URL {:?}: {e}", config.api_server)))?;
        let ca =
            std::fs::read(&config.ca_file).map_err(|e| Error::io("reading", &config.ca_file, e))?;
        let mut roots = rustls::RootCertStore::empty();
        let certs = pem::parse_many(&ca).map_err(|e| failed(format!("CA file: {e}")))?;
        for block in certs.into_iter().filter(|b| b.tag() == "CERTIFICATE") {
            roots
                .add(rustls_pki_types::CertificateDer::from(
                    block.into_contents(),
                ))
                .map_err(|e| failed(format!("CA file: {e}")))?;
        }
        if roots.is_empty() {
            return Err(failed(format!(
                "no certificate in {}",
                config.ca_file.display()
            )));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| failed(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self {
            client,
            uri,
            config,
        })
    }

    async fn post(&self, event: &Event) -> Result<(), Error> {
        let failed = |reason: String| Error::KubeEvents { reason };
        let token = Zeroizing::new(
            std::fs::read_to_string(&self.config.token_file)
                .map_err(|e| Error::io("reading", &self.config.token_file, e))?,
        );
        let body = serde_json::to_vec(&self.body(event)).map_err(|e| failed(e.to_string()))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, format!("Bearer {}", token.trim()))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| failed(e.to_string()))?;
        let response = tokio::time::timeout(self.config.timeout, self.client.request(request))
            .await
            .map_err(|_| failed(format!("no answer within {:?}", self.config.timeout)))?
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = Limited::new(response.into_body(), MAX_RESPONSE_LEN)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        Err(failed(format!(
            "API server answered {status}: {}",
            text.trim()
        )))
    }

    fn body(&self, event: &Event) -> serde_json::Value {
        let object = &self.config.involved_object;
        let time = rfc3339(event.time.replace_nanosecond(0).unwrap_or(event.time));
        let mut involved = serde_json::json!({
            "apiVersion": object.api_version,
            "kind": object.kind,
            "name": object.name,
            "namespace": object.namespace,
        });
        if let (Some(uid), Some(map)) = (&object.uid, involved.as_object_mut()) {
            map.insert("uid".to_owned(), serde_json::Value::String(uid.clone()));
        }
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": format!("{}.", object.name),
                "namespace": object.namespace,
            },
            "involvedObject": involved,
            "type": event.kind.as_str(),
            "reason": event.reason,
            "message": event.message,
            "source": { "component": self.config.component },
            "reportingComponent": self.config.component,
            "firstTimestamp": time,
            "lastTimestamp": time,
            "count": 1,
        })
    }
}
