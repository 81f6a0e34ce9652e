//! A Workload API client that keeps a workload's [`Credentials`] current: a meshid proxy
//! gets its identity from a meshid agent (or a SPIRE agent) instead of certifying itself.

use core::future::Future;
use core::time::Duration;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use meshid_client::Credentials;
use meshid_policy::Clock;
use meshid_verify::TrustBundle;
use rustls_pki_types::CertificateDer;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use zeroize::Zeroizing;

use crate::proto::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use crate::proto::{X509svid, X509svidRequest};
use crate::server::SECURITY_HEADER;
use crate::{DerProblem, Error, SvidProblem};

/// How long [`WorkloadApiClient::run`] waits before following the stream again after it
/// failed or ended.
pub const RETRY: Duration = Duration::from_secs(1);

/// Follows `FetchX509SVID` on a Workload API socket and installs each X.509-SVID for the
/// credentials' identity (a SPIFFE ID), with its trust bundle, into the [`Credentials`]: the
/// chain must verify against that bundle, name the identity and match the key
/// ([`Credentials::install_external`]), or it is refused and the previous one kept.
#[derive(Clone, Debug)]
pub struct WorkloadApiClient {
    socket: PathBuf,
    client: SpiffeWorkloadApiClient<Channel>,
}

impl WorkloadApiClient {
    /// A client of the Workload API on `socket` (a path, or `unix://` + path). It connects on
    /// first use, and again after a failure.
    pub fn new(socket: impl AsRef<Path>) -> Self {
        let raw = socket.as_ref();
        let socket = raw
            .to_str()
            .and_then(|s| s.strip_prefix("unix://"))
            .map_or_else(|| raw.to_owned(), PathBuf::from);
        let path = socket.clone();
        // The URI is not dialled: every connection goes to the socket.
        let channel =
            Endpoint::from_static("http://localhost").connect_with_connector_lazy(
                tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }),
            );
        Self {
            socket,
            client: SpiffeWorkloadApiClient::new(channel),
        }
    }

    /// Follows the stream until it ends or fails, installing every X.509-SVID into
    /// `credentials` at the time `clock` tells. An SVID that is refused is logged and skipped;
    /// the stream goes on.
    pub async fn follow(&self, credentials: &Credentials, clock: &impl Clock) -> Result<(), Error> {
        let call = |e: tonic::Status| Error::Call {
            socket: self.socket.clone(),
            code: e.code(),
            message: e.message().to_owned(),
        };
        let mut request = tonic::Request::new(X509svidRequest {});
        request.metadata_mut().insert(
            SECURITY_HEADER,
            tonic::metadata::MetadataValue::from_static("true"),
        );
        let mut client = self.client.clone();
        let mut stream = client
            .fetch_x509svid(request)
            .await
            .map_err(|e| match e.code() {
                tonic::Code::Unavailable => Error::Connect {
                    socket: self.socket.clone(),
                    reason: e.message().to_owned(),
                },
                _ => call(e),
            })?
            .into_inner();
        while let Some(response) = stream.message().await.map_err(call)? {
            let Some(svid) = response
                .svids
                .into_iter()
                .find(|svid| svid.spiffe_id == credentials.identity())
            else {
                tracing::warn!(
                    socket = %self.socket.display(),
                    identity = %credentials.identity(),
                    "The Workload API sent no X.509-SVID for this identity"
                );
                continue;
            };
            match self.install(svid, credentials, clock.now()) {
                Ok(not_after) => tracing::info!(
                    identity = %credentials.identity(),
                    not_after = %meshid_policy::rfc3339(not_after),
                    "Installed the X.509-SVID from the Workload API"
                ),
                Err(error) => tracing::warn!(%error, "Keeping the current certificate"),
            }
        }
        Err(Error::Call {
            socket: self.socket.clone(),
            code: tonic::Code::Unavailable,
            message: "the stream ended".to_owned(),
        })
    }

    /// [`follow`](Self::follow) again [`RETRY`] after each failure, until `shutdown`
    /// completes.
    pub async fn run(
        self,
        credentials: Arc<Credentials>,
        clock: impl Clock,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                followed = self.follow(&credentials, &clock) => {
                    if let Err(error) = followed {
                        tracing::warn!(%error, "Following the Workload API");
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(RETRY) => {}
            }
        }
    }

    fn install(
        &self,
        svid: X509svid,
        credentials: &Credentials,
        now: time::OffsetDateTime,
    ) -> Result<time::OffsetDateTime, Error> {
        let refused = |reason: SvidProblem| Error::Svid {
            socket: self.socket.clone(),
            reason,
        };
        let key = Zeroizing::new(svid.x509_svid_key);
        if key.is_empty() {
            return Err(refused(SvidProblem::EmptyKey));
        }
        let chain = split_der(&svid.x509_svid).map_err(|e| refused(SvidProblem::Chain(e)))?;
        let anchors = split_der(&svid.bundle).map_err(|e| refused(SvidProblem::Bundle(e)))?;
        let bundle =
            TrustBundle::from_der(anchors).map_err(|e| refused(SvidProblem::InvalidBundle(e)))?;
        let (_, not_after) = credentials
            .install_external(Some(bundle), chain, &key, now)
            .map_err(|e| refused(SvidProblem::NotInstalled(e)))?;
        Ok(not_after)
    }
}

/// Splits concatenated DER certificates (the Workload API's encoding) with x509-parser.
fn split_der(mut der: &[u8]) -> Result<Vec<CertificateDer<'static>>, DerProblem> {
    if der.is_empty() {
        return Err(DerProblem::Empty);
    }
    let mut certs = Vec::new();
    while !der.is_empty() {
        let (rest, _) =
            x509_parser::parse_x509_certificate(der).map_err(|e| DerProblem::Unparsable {
                index: certs.len(),
                reason: e.to_string(),
            })?;
        let len = der.len() - rest.len();
        certs.push(CertificateDer::from(der[..len].to_vec()));
        der = rest;
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use meshid_ca::bootstrap::{CaOptions, create_root};

    use super::*;

    const NOW: time::OffsetDateTime = time::OffsetDateTime::UNIX_EPOCH;

    fn root_der() -> Vec<u8> {
        let root = create_root(&CaOptions::root(
            "root.test",
            NOW,
            Duration::from_secs(365 * 86_400),
        ))
        .unwrap();
        root.der().to_vec()
    }

    #[test]
    fn der_is_split_or_refused_with_the_position() {
        assert_eq!(split_der(&[]), Err(DerProblem::Empty));
        assert_eq!(DerProblem::Empty.to_string(), "no certificate");

        let root = root_der();
        let mut two = root.clone();
        two.extend_from_slice(&root);
        assert_eq!(split_der(&two).unwrap().len(), 2);

        let mut broken = root;
        broken.extend_from_slice(b"\x30\x03not DER");
        let problem = split_der(&broken).unwrap_err();
        let DerProblem::Unparsable { index, reason } = &problem else {
            panic!("{problem:?}");
        };
        assert_eq!(*index, 1);
        assert_eq!(
            problem.to_string(),
            format!("certificate #1 does not parse: {reason}")
        );
    }

    #[tokio::test]
    async fn a_refused_svid_says_which_part() {
        let client = WorkloadApiClient::new("/nonexistent/agent.sock");
        let root = root_der();
        let bundle = TrustBundle::from_der(vec![CertificateDer::from(root.clone())]).unwrap();
        let credentials = Credentials::new("spiffe://cluster.local/ns/a/sa/b".to_owned(), bundle);
        let svid = |x509_svid: &[u8], key: &[u8], bundle: &[u8]| X509svid {
            spiffe_id: credentials.identity().to_owned(),
            x509_svid: x509_svid.to_vec(),
            x509_svid_key: key.to_vec(),
            bundle: bundle.to_vec(),
            ..X509svid::default()
        };
        let refused = |svid: X509svid| match client.install(svid, &credentials, NOW) {
            Err(error @ Error::Svid { .. }) => error,
            other => panic!("{other:?}"),
        };
        let reason = |error: &Error| match error {
            Error::Svid { reason, .. } => reason.clone(),
            other => panic!("{other:?}"),
        };

        let error = refused(svid(&root, b"", &root));
        assert!(matches!(reason(&error), SvidProblem::EmptyKey));
        assert_eq!(
            error.to_string(),
            "refused the X.509-SVID from the Workload API at /nonexistent/agent.sock: the \
             private key is empty"
        );

        let error = refused(svid(b"", b"key", &root));
        assert!(matches!(
            reason(&error),
            SvidProblem::Chain(DerProblem::Empty)
        ));
        assert!(
            error.to_string().ends_with(": x509_svid: no certificate"),
            "{error}"
        );

        let error = refused(svid(&root, b"key", b"\x30\x03not DER"));
        assert!(matches!(
            reason(&error),
            SvidProblem::Bundle(DerProblem::Unparsable { index: 0, .. })
        ));
        assert!(
            error
                .to_string()
                .contains(": bundle: certificate #0 does not parse: "),
            "{error}"
        );

        // The root as its own SVID, with a key that is none: not installed.
        let error = refused(svid(&root, b"key", &root));
        let SvidProblem::NotInstalled(cause) = reason(&error) else {
            panic!("{error:?}");
        };
        assert!(
            error.to_string().ends_with(&format!(": {cause}")),
            "{error}"
        );

        let invalid = SvidProblem::InvalidBundle(meshid_verify::Error::BundleEmpty);
        assert_eq!(
            invalid.to_string(),
            format!("bundle: {}", meshid_verify::Error::BundleEmpty)
        );
    }
}
