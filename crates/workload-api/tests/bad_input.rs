//! Bad input and failure cases of the Workload API, each with its exact error: a missing
//! security header, the JWT-SVID methods, a client that goes away mid-stream, and the socket
//! (in use, stale, not a socket); the server keeps serving throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use meshid_client::Credentials;
use meshid_workload_api::proto::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use meshid_workload_api::proto::{
    JwtBundlesRequest, JwtsvidRequest, ValidateJwtsvidRequest, X509BundlesRequest, X509svidRequest,
};
use meshid_workload_api::{
    DEFAULT_SOCKET_MODE, Error, JWT_UNIMPLEMENTED, SECURITY_HEADER_MISSING, SocketProblem,
    UnixSocket, WorkloadApiService,
};
use support::*;
use tonic::Code;
use tonic::transport::{Channel, Endpoint, Uri};

async fn connect(path: &Path) -> SpiffeWorkloadApiClient<Channel> {
    let path = path.to_owned();
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .unwrap();
    SpiffeWorkloadApiClient::new(channel)
}

fn with_header<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("workload.spiffe.io", "true".parse().unwrap());
    request
}

#[tokio::test]
async fn a_call_without_the_security_header_is_invalid_argument() {
    let workload = Workload::certified().await;
    let served = Served::start(&workload).await;
    let mut client = connect(&served.path).await;

    let status = client
        .fetch_x509svid(X509svidRequest {})
        .await
        .expect_err("refused");
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, SECURITY_HEADER_MISSING)
    );
    assert_eq!(
        SECURITY_HEADER_MISSING,
        "security header missing from request"
    );
    let status = client
        .fetch_x509_bundles(X509BundlesRequest {})
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut wrong = tonic::Request::new(X509svidRequest {});
    wrong
        .metadata_mut()
        .insert("workload.spiffe.io", "yes".parse().unwrap());
    let status = client.fetch_x509svid(wrong).await.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);

    // The server keeps serving.
    let mut stream = client
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.svids[0].spiffe_id, WEB_SPIFFE);
    drop(stream);
    served.stop().await;
}

#[tokio::test]
async fn the_jwt_svid_methods_are_unimplemented() {
    let workload = Workload::certified().await;
    let served = Served::start(&workload).await;
    let mut client = connect(&served.path).await;
    let want = (Code::Unimplemented, JWT_UNIMPLEMENTED.to_owned());
    let status = client
        .fetch_jwtsvid(with_header(JwtsvidRequest {
            audience: vec!["web".to_owned()],
            spiffe_id: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!((status.code(), status.message().to_owned()), want);
    let status = client
        .fetch_jwt_bundles(with_header(JwtBundlesRequest {}))
        .await
        .expect_err("refused");
    assert_eq!((status.code(), status.message().to_owned()), want);
    let status = client
        .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
            audience: "web".to_owned(),
            svid: "x.y.z".to_owned(),
        }))
        .await
        .unwrap_err();
    assert_eq!((status.code(), status.message().to_owned()), want);
    served.stop().await;
}

#[tokio::test]
async fn fetch_x509_bundles_streams_the_bundle_and_its_changes() {
    let workload = Workload::certified().await;
    let served = Served::start(&workload).await;
    let mut client = connect(&served.path).await;
    let mut stream = client
        .fetch_x509_bundles(with_header(X509BundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(
        first.bundles.get("spiffe://cluster.local"),
        Some(&workload.root.der().to_vec())
    );
    let other = root("root-2.linkerd.cluster.local");
    workload
        .client
        .credentials()
        .set_trust_bundle(bundle_of(&[&workload.root, &other]));
    let second = stream.message().await.unwrap().unwrap();
    let mut both = workload.root.der().to_vec();
    both.extend_from_slice(other.der());
    assert_eq!(second.bundles.get("spiffe://cluster.local"), Some(&both));
    drop(stream);
    served.stop().await;
}

#[tokio::test]
async fn a_client_that_goes_away_mid_stream_ends_only_its_stream() {
    let workload = Workload::certified().await;
    let served = Served::start(&workload).await;
    let mut open = served.service.open_streams();
    {
        let mut client = connect(&served.path).await;
        let mut stream = client
            .fetch_x509svid(with_header(X509svidRequest {}))
            .await
            .unwrap()
            .into_inner();
        stream.message().await.unwrap().unwrap();
        tokio::time::timeout(STEP, open.wait_for(|n| *n == 1))
            .await
            .unwrap()
            .unwrap();
        // The client, its stream and its connection go away here.
    }
    tokio::time::timeout(STEP, open.wait_for(|n| *n == 0))
        .await
        .expect("the server notices the client left")
        .unwrap();
    // Another client is served as before.
    let mut client = connect(&served.path).await;
    let mut stream = client
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap();
    served.stop().await;
}

#[tokio::test]
async fn the_socket_gets_its_mode_and_is_removed_after_serving() {
    let workload = Workload::certified().await;
    let served = Served::start(&workload).await;
    let mode = std::fs::metadata(&served.path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, DEFAULT_SOCKET_MODE);
    assert_eq!(DEFAULT_SOCKET_MODE, 0o660);
    let path = served.path.clone();
    served.stop().await;
    assert!(!path.exists(), "the socket is removed at shutdown");
}

#[tokio::test]
async fn a_socket_in_use_is_refused_and_a_stale_one_replaced() {
    let workload = Workload::certified().await;
    let served = Served::start(&workload).await;
    let err = UnixSocket::bind(&served.path, DEFAULT_SOCKET_MODE)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot serve on {}: another process is serving on this socket (stop it, or choose another path)",
            served.path.display()
        )
    );
    // The live server is untouched.
    let mut client = connect(&served.path).await;
    client
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .unwrap();
    served.stop().await;

    // A socket file nobody listens on, as a crashed agent leaves it.
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("agent.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let socket = UnixSocket::bind(&stale, DEFAULT_SOCKET_MODE).await.unwrap();
    let service = WorkloadApiService::new(workload.client.credentials()).unwrap();
    let task = tokio::spawn(service.serve(socket, std::future::pending()));
    let mut client = connect(&stale).await;
    client
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .unwrap();
    task.abort();
}

#[tokio::test]
async fn a_path_that_is_not_a_socket_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    std::fs::write(&path, b"not a socket").unwrap();
    let err = UnixSocket::bind(&path, DEFAULT_SOCKET_MODE)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot serve on {}: it exists and is not a socket (remove it, or choose another path)",
            path.display()
        )
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");

    let missing = dir.path().join("no-such-folder").join("agent.sock");
    let err = UnixSocket::bind(&missing, DEFAULT_SOCKET_MODE)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot serve on {}: ", missing.display())),
        "{err}"
    );
    let Error::SocketSetup {
        reason: SocketProblem::Io { kind, reason },
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*kind, std::io::ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        format!("cannot serve on {}: {reason}", missing.display())
    );

    let nameless = dir.path().join("no-such-folder").join("..");
    let err = UnixSocket::bind(&nameless, DEFAULT_SOCKET_MODE)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SocketSetup {
                reason: SocketProblem::NoFileName,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "cannot serve on {}: the path has no file name",
            nameless.display()
        )
    );
}

#[tokio::test]
async fn credentials_without_a_spiffe_id_are_refused() {
    let workload = Workload::certified().await;
    let dns = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
    let credentials = Arc::new(Credentials::new(
        dns.to_owned(),
        workload
            .client
            .credentials()
            .trust_bundle()
            .as_ref()
            .clone(),
    ));
    let err = WorkloadApiService::new(credentials).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the identity {dns} is not a SPIFFE ID (spiffe://<trust-domain>/<path>); the Workload API serves SPIFFE identities: certify with a CA whose SAN mode is spiffe or dns+spiffe"
        )
    );
}
