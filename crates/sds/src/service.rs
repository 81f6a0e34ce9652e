//! The SDS service: state-of-the-world xDS over the workload's credentials.

use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::{
    SecretDiscoveryService, SecretDiscoveryServiceServer,
};
use envoy_types::pb::google::protobuf::Any;
use meshid_client::Credentials;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::secrets::{self, DEFAULT_SECRET, ROOT_CA_SECRET, SECRET_TYPE_URL};

/// The answer to `DeltaSecrets` (`Unimplemented`).
pub const DELTA_UNIMPLEMENTED: &str = "meshid's SDS server speaks state-of-the-world xDS (StreamSecrets, FetchSecrets); DeltaSecrets is not implemented";

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// `envoy.service.secret.v3.SecretDiscoveryService` over one workload's [`Credentials`]; see
/// the crate docs for the protocol as served.
#[derive(Clone)]
pub struct SdsService {
    credentials: Arc<Credentials>,
    rejections: Arc<AtomicU64>,
    /// Set when serving stops: every open stream ends.
    closing: Arc<watch::Sender<bool>>,
}

impl core::fmt::Debug for SdsService {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SdsService")
            .field("identity", &self.credentials.identity())
            .finish_non_exhaustive()
    }
}

impl SdsService {
    /// Serves `credentials` as the secrets `default` and `ROOTCA`.
    pub fn new(credentials: Arc<Credentials>) -> Self {
        Self {
            credentials,
            rejections: Arc::new(AtomicU64::new(0)),
            closing: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Ends every open `StreamSecrets` stream, and every one opened from now on: call it when
    /// shutting down, or a graceful shutdown waits for streams that never end by themselves.
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// How many responses clients have rejected (NACKs) since the service was made.
    pub fn rejections(&self) -> u64 {
        self.rejections.load(Ordering::Relaxed)
    }

    /// The tonic service, to add to a `tonic::transport::Server`.
    pub fn into_server(self) -> SecretDiscoveryServiceServer<Self> {
        SecretDiscoveryServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl SecretDiscoveryService for SdsService {
    type DeltaSecretsStream = ResponseStream<DeltaDiscoveryResponse>;
    type StreamSecretsStream = ResponseStream<DiscoveryResponse>;

    async fn delta_secrets(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaSecretsStream>, Status> {
        Err(Status::unimplemented(DELTA_UNIMPLEMENTED))
    }

    async fn stream_secrets(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamSecretsStream>, Status> {
        let (tx, rx) = mpsc::channel(4);
        let stream = SecretStream {
            credentials: Arc::clone(&self.credentials),
            rejections: Arc::clone(&self.rejections),
            closing: self.closing.subscribe(),
            tx,
            subscribed: None,
            nonce: 0,
            sent: None,
            warned_unknown: false,
        };
        tokio::spawn(stream.run(request.into_inner()));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn fetch_secrets(
        &self,
        request: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        let request = request.into_inner();
        check_type_url(&request.type_url)?;
        let names = requested_names(&request.resource_names);
        let unknown = unknown_names(&names);
        if !unknown.is_empty() {
            return Err(Status::not_found(format!(
                "no secret named {}: this SDS server serves `{DEFAULT_SECRET}` (the workload certificate) and `{ROOT_CA_SECRET}` (the trust bundle)",
                unknown.join(", ")
            )));
        }
        let (version, resources) = current(&self.credentials, &names);
        if resources.len() < names.len() {
            return Err(Status::unavailable(format!(
                "no certificate for {} yet: the agent has not been certified",
                self.credentials.identity()
            )));
        }
        Ok(Response::new(DiscoveryResponse {
            version_info: version,
            resources,
            type_url: SECRET_TYPE_URL.to_owned(),
            ..Default::default()
        }))
    }
}

/// One `StreamSecrets` stream.
struct SecretStream {
    credentials: Arc<Credentials>,
    rejections: Arc<AtomicU64>,
    closing: watch::Receiver<bool>,
    tx: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    /// The names the client asked for last; `None` before its first request.
    subscribed: Option<Vec<String>>,
    /// The number of the latest response's nonce.
    nonce: u64,
    /// The resources of the latest response.
    sent: Option<Vec<Any>>,
    warned_unknown: bool,
}

impl SecretStream {
    async fn run(mut self, mut inbound: Streaming<DiscoveryRequest>) {
        let mut changes = self.credentials.changes();
        let mut closing = self.closing.clone();
        loop {
            tokio::select! {
                () = closed(&mut closing) => return,
                request = inbound.message() => match request {
                    Ok(Some(request)) => {
                        if let Err(status) = self.on_request(request).await {
                            let _ = self.tx.send(Err(status)).await;
                            return;
                        }
                    }
                    // The client closed its side, or went away.
                    Ok(None) | Err(_) => return,
                },
                changed = changes.changed() => {
                    if changed.is_err() || !self.push().await {
                        return;
                    }
                }
                () = self.tx.closed() => return,
            }
        }
    }

    async fn on_request(&mut self, request: DiscoveryRequest) -> Result<(), Status> {
        check_type_url(&request.type_url)?;
        if !request.response_nonce.is_empty() {
            if request.response_nonce != self.nonce.to_string() {
                tracing::debug!(nonce = %request.response_nonce, "Ignoring a stale SDS request");
                return Ok(());
            }
            match &request.error_detail {
                Some(error) => {
                    self.rejections.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        identity = %self.credentials.identity(),
                        version = %request.version_info,
                        nonce = %request.response_nonce,
                        code = error.code,
                        "The SDS client rejected the secrets (NACK): {}", error.message
                    );
                }
                None => tracing::debug!(version = %request.version_info, "SDS client ACK"),
            }
        }
        let names = requested_names(&request.resource_names);
        let unknown = unknown_names(&names);
        if !unknown.is_empty() && !self.warned_unknown {
            self.warned_unknown = true;
            tracing::warn!(
                unknown = %unknown.join(", "),
                "An SDS client asked for secrets this server does not have; it serves `{DEFAULT_SECRET}` (the workload certificate) and `{ROOT_CA_SECRET}` (the trust bundle)"
            );
        }
        if self.subscribed.as_ref() != Some(&names) {
            self.subscribed = Some(names);
            self.sent = None;
            self.push().await;
        }
        Ok(())
    }

    /// Sends the subscribed secrets if they differ from the last ones sent. `false` when the
    /// client went away.
    async fn push(&mut self) -> bool {
        let Some(names) = &self.subscribed else {
            return true;
        };
        let (version, resources) = current(&self.credentials, names);
        if resources.is_empty() || self.sent.as_ref() == Some(&resources) {
            return true;
        }
        self.nonce += 1;
        let response = DiscoveryResponse {
            version_info: version,
            resources: resources.clone(),
            type_url: SECRET_TYPE_URL.to_owned(),
            nonce: self.nonce.to_string(),
            ..Default::default()
        };
        self.sent = Some(resources);
        self.tx.send(Ok(response)).await.is_ok()
    }
}

/// The named secrets available now (`default` only once a certificate is installed), and
/// their version.
fn current(credentials: &Credentials, names: &[String]) -> (String, Vec<Any>) {
    let snapshot = credentials.snapshot();
    let (version, bundle) = match &snapshot {
        Some(snapshot) => (snapshot.generation(), Arc::clone(snapshot.trust_bundle())),
        None => (*credentials.changes().borrow(), credentials.trust_bundle()),
    };
    let resources = names
        .iter()
        .filter_map(|name| match name.as_str() {
            DEFAULT_SECRET => snapshot.as_ref().map(secrets::tls_certificate),
            ROOT_CA_SECRET => Some(secrets::validation_context(&bundle)),
            _ => None,
        })
        .collect();
    (version.to_string(), resources)
}

/// The names requested; none means both.
fn requested_names(names: &[String]) -> Vec<String> {
    if names.is_empty() {
        vec![DEFAULT_SECRET.to_owned(), ROOT_CA_SECRET.to_owned()]
    } else {
        names.to_vec()
    }
}

fn unknown_names(names: &[String]) -> Vec<&str> {
    names
        .iter()
        .map(String::as_str)
        .filter(|name| *name != DEFAULT_SECRET && *name != ROOT_CA_SECRET)
        .collect()
}

fn check_type_url(type_url: &str) -> Result<(), Status> {
    if type_url.is_empty() || type_url == SECRET_TYPE_URL {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "this is the Secret Discovery Service: type_url must be {SECRET_TYPE_URL}, not {type_url}"
        )))
    }
}

/// Resolves once `closing` is set (or its sender is gone).
async fn closed(closing: &mut watch::Receiver<bool>) {
    let _ = closing.wait_for(|closing| *closing).await;
}
