//! The Workload API server: the workload's current X.509-SVID and trust bundle, streamed.

use core::future::Future;
use core::pin::Pin;
use std::collections::HashMap;
use std::sync::Arc;

use meshid_client::{Credentials, Snapshot};
use meshid_policy::TrustDomain;
use meshid_verify::TrustBundle;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::proto::spiffe_workload_api_server::{SpiffeWorkloadApi, SpiffeWorkloadApiServer};
use crate::proto::{
    JwtBundlesRequest, JwtBundlesResponse, JwtsvidRequest, JwtsvidResponse, ValidateJwtsvidRequest,
    ValidateJwtsvidResponse, X509BundlesRequest, X509BundlesResponse, X509svid, X509svidRequest,
    X509svidResponse,
};
use crate::{Error, UnixSocket, remove_socket};

/// The metadata every Workload API call must carry, with the value `true`.
pub const SECURITY_HEADER: &str = "workload.spiffe.io";
/// The refusal of a call without [`SECURITY_HEADER`] (`InvalidArgument`), as SPIRE words it.
pub const SECURITY_HEADER_MISSING: &str = "security header missing from request";
/// The answer to the JWT-SVID methods (`Unimplemented`).
pub const JWT_UNIMPLEMENTED: &str =
    "meshid serves X.509-SVIDs only: the JWT-SVID profile is not implemented";

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The `SpiffeWorkloadAPI` service over one workload's [`Credentials`] (the sidecar model:
/// every caller is that workload).
///
/// - `FetchX509SVID` answers with the current X.509-SVID (SPIFFE ID, DER chain leaf first,
///   PKCS#8 key, DER trust bundle) as soon as one is installed, then again after every
///   renewal and every trust-bundle change, until the caller goes away.
/// - `FetchX509Bundles` streams `{"spiffe://<trust-domain>": <DER anchors>}` now and after
///   every bundle change.
/// - Every call must carry `workload.spiffe.io: true`; one without it is refused with
///   `InvalidArgument` ([`SECURITY_HEADER_MISSING`]), as the specification requires.
/// - `FetchJWTSVID`, `FetchJWTBundles` and `ValidateJWTSVID` answer `Unimplemented`
///   ([`JWT_UNIMPLEMENTED`]).
#[derive(Clone)]
pub struct WorkloadApiService {
    credentials: Arc<Credentials>,
    trust_domain_id: String,
    streams: Arc<watch::Sender<usize>>,
    /// Set when serving stops: every open stream ends, so a graceful shutdown does not wait
    /// for streams that never end by themselves.
    closing: Arc<watch::Sender<bool>>,
}

impl core::fmt::Debug for WorkloadApiService {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WorkloadApiService")
            .field("identity", &self.credentials.identity())
            .finish_non_exhaustive()
    }
}

impl WorkloadApiService {
    /// Serves `credentials`, whose identity must be a SPIFFE ID ([`Error::NotSpiffe`]).
    pub fn new(credentials: Arc<Credentials>) -> Result<Self, Error> {
        let trust_domain =
            trust_domain_of(credentials.identity()).ok_or_else(|| Error::NotSpiffe {
                identity: credentials.identity().to_owned(),
            })?;
        Ok(Self {
            trust_domain_id: format!("spiffe://{trust_domain}"),
            credentials,
            streams: Arc::new(watch::Sender::new(0)),
            closing: Arc::new(watch::Sender::new(false)),
        })
    }

    /// How many `FetchX509SVID` and `FetchX509Bundles` streams are open; the receiver wakes
    /// when the number changes (a stream ends when its caller goes away).
    pub fn open_streams(&self) -> watch::Receiver<usize> {
        self.streams.subscribe()
    }

    /// Ends every open stream (their callers see the stream end), and every stream opened
    /// from now on after its first message: call it when shutting down, or a graceful
    /// shutdown waits for streams that never end. [`serve`](Self::serve) does.
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// The tonic service, to add to a `tonic::transport::Server`.
    pub fn into_server(self) -> SpiffeWorkloadApiServer<Self> {
        SpiffeWorkloadApiServer::new(self)
    }

    /// Serves on `socket` until `shutdown` completes, then ends the open streams, lets
    /// requests in flight finish and removes the socket file.
    pub async fn serve(
        self,
        socket: UnixSocket,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let (incoming, path) = socket.into_incoming();
        let closing = self.clone();
        let served = tonic::transport::Server::builder()
            .add_service(self.into_server())
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                closing.close_streams();
            })
            .await;
        remove_socket(&path);
        served.map_err(|e| Error::Serve {
            socket: path,
            reason: e.to_string(),
        })
    }

    /// Spawns a task that sends `make`'s message for the current state, then for each change
    /// after which `make` has something new, until the caller goes away.
    fn stream<T: Send + 'static>(
        &self,
        mut make: impl FnMut(&Credentials) -> Option<T> + Send + 'static,
    ) -> ResponseStream<T> {
        let (tx, rx) = mpsc::channel(1);
        let credentials = Arc::clone(&self.credentials);
        let mut changes = credentials.changes();
        let mut closing = self.closing.subscribe();
        let open = OpenStream::new(Arc::clone(&self.streams));
        tokio::spawn(async move {
            let _open = open;
            loop {
                drop(changes.borrow_and_update());
                if let Some(message) = make(&credentials) {
                    // Fails only when the caller went away.
                    if tx.send(Ok(message)).await.is_err() {
                        return;
                    }
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    () = tx.closed() => return,
                    () = closed(&mut closing) => return,
                }
            }
        });
        Box::pin(ReceiverStream::new(rx))
    }
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for WorkloadApiService {
    type FetchX509SVIDStream = ResponseStream<X509svidResponse>;
    type FetchX509BundlesStream = ResponseStream<X509BundlesResponse>;
    type FetchJWTBundlesStream = ResponseStream<JwtBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        request: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        check_security_header(request.metadata())?;
        let spiffe_id = self.credentials.identity().to_owned();
        let mut sent = None;
        let stream = self.stream(move |credentials| {
            let snapshot = credentials.snapshot()?;
            if sent == Some(snapshot.generation()) {
                return None;
            }
            sent = Some(snapshot.generation());
            tracing::debug!(%spiffe_id, not_after = %meshid_policy::rfc3339(snapshot.not_after()), "Sending the X.509-SVID");
            Some(svid_response(&spiffe_id, &snapshot))
        });
        Ok(Response::new(stream))
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        check_security_header(request.metadata())?;
        let trust_domain_id = self.trust_domain_id.clone();
        let mut sent: Option<Arc<TrustBundle>> = None;
        let stream = self.stream(move |credentials| {
            let bundle = credentials.trust_bundle();
            if sent.as_deref() == Some(&*bundle) {
                return None;
            }
            let message = X509BundlesResponse {
                crl: Vec::new(),
                bundles: HashMap::from([(trust_domain_id.clone(), concatenated(&bundle))]),
            };
            sent = Some(bundle);
            Some(message)
        });
        Ok(Response::new(stream))
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        check_security_header(request.metadata())?;
        Err(Status::unimplemented(JWT_UNIMPLEMENTED))
    }

    async fn fetch_jwt_bundles(
        &self,
        request: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        check_security_header(request.metadata())?;
        Err(Status::unimplemented(JWT_UNIMPLEMENTED))
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        check_security_header(request.metadata())?;
        Err(Status::unimplemented(JWT_UNIMPLEMENTED))
    }
}

/// `workload.spiffe.io: true`, or `InvalidArgument`.
fn check_security_header(metadata: &MetadataMap) -> Result<(), Status> {
    match metadata.get(SECURITY_HEADER).map(|v| v.to_str()) {
        Some(Ok("true")) => Ok(()),
        _ => Err(Status::invalid_argument(SECURITY_HEADER_MISSING)),
    }
}

fn svid_response(spiffe_id: &str, snapshot: &Snapshot) -> X509svidResponse {
    let chain: Vec<u8> = snapshot
        .chain()
        .iter()
        .flat_map(|cert| cert.as_ref().iter().copied())
        .collect();
    X509svidResponse {
        svids: vec![X509svid {
            spiffe_id: spiffe_id.to_owned(),
            x509_svid: chain,
            x509_svid_key: snapshot.private_key_pkcs8().to_vec(),
            bundle: concatenated(snapshot.trust_bundle()),
            hint: String::new(),
        }],
        crl: Vec::new(),
        federated_bundles: HashMap::new(),
    }
}

/// The bundle's anchors, DER, concatenated (the Workload API's bundle encoding).
fn concatenated(bundle: &TrustBundle) -> Vec<u8> {
    bundle
        .anchors()
        .flat_map(|anchor| anchor.der().as_ref().iter().copied())
        .collect()
}

/// The trust domain of a SPIFFE ID, if `id` is one.
pub(crate) fn trust_domain_of(id: &str) -> Option<TrustDomain> {
    let rest = id.strip_prefix("spiffe://")?;
    let (domain, path) = rest.split_once('/')?;
    if path.is_empty() {
        return None;
    }
    TrustDomain::new(domain).ok()
}

/// Counts an open stream while it lives.
struct OpenStream(Arc<watch::Sender<usize>>);

impl OpenStream {
    fn new(count: Arc<watch::Sender<usize>>) -> Self {
        count.send_modify(|n| *n += 1);
        Self(count)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Resolves once `closing` is set (or its sender is gone).
async fn closed(closing: &mut watch::Receiver<bool>) {
    let _ = closing.wait_for(|closing| *closing).await;
}
