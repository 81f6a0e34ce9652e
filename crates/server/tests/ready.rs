//! `/ready` tells the truth: 503 with the reasons while the gRPC server is not serving or no
//! issuer can issue (none loaded, it expired, its trust anchor expired), 200 again once that
//! is repaired; `/live` is about the process only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::http_get;

use std::sync::Arc;
use std::time::Duration;

use meshid_ca::Ca;
use meshid_ca::bootstrap::{CaCertificate, CaOptions, create_intermediate, create_root};
use meshid_grpc::ServingIdentity;
use meshid_policy::{IssuancePolicy, ManualClock, Mesh};
use meshid_server::admin::{self, AdminLimits, AdminState};
use meshid_server::ready::{GrpcState, NotReady, Readiness};
use meshid_verify::TrustBundle;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
const DAY: Duration = Duration::from_secs(86_400);

/// A trust anchor valid until `anchor_until`, and a CA with an issuer under it (loaded at
/// [`NOW`]) valid until `issuer_until`.
fn ca(anchor_until: OffsetDateTime, issuer_until: OffsetDateTime) -> (CaCertificate, Arc<Ca>) {
    let mut root = CaOptions::root("root.linkerd.cluster.local", NOW - DAY, DAY);
    root.not_after = anchor_until;
    let root = create_root(&root).unwrap();
    let bundle = TrustBundle::from_pem(root.pem().as_bytes()).unwrap();
    let ca = Arc::new(Ca::new(Mesh::default(), IssuancePolicy::default(), bundle).unwrap());
    load_issuer(&root, &ca, NOW - DAY, issuer_until, NOW);
    (root, ca)
}

/// Mints an issuer under `root` valid from `from` to `until` and loads it at `now`.
fn load_issuer(
    root: &CaCertificate,
    ca: &Ca,
    from: OffsetDateTime,
    until: OffsetDateTime,
    now: OffsetDateTime,
) {
    let mut issuer = CaOptions::issuer("identity.linkerd.cluster.local", from, DAY);
    issuer.not_after = until;
    let issuer = create_intermediate(root, &issuer).unwrap();
    ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), now)
        .unwrap();
}

fn reasons(readiness: &Readiness) -> Vec<String> {
    match readiness.check() {
        Ok(()) => Vec::new(),
        Err(reasons) => reasons.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn each_reason_not_to_be_ready_is_named() {
    let clock = Arc::new(ManualClock::new(NOW));
    let anchor_until = datetime!(2026-06-10 0:00 UTC);
    let issuer_until = datetime!(2026-06-20 0:00 UTC);
    let (_, ca) = ca(anchor_until, issuer_until);

    // Nothing loaded, not serving.
    let bundle = ca.trust_bundle().as_ref().clone();
    let empty = Arc::new(Ca::new(Mesh::default(), IssuancePolicy::default(), bundle).unwrap());
    let readiness = Readiness::new(empty, clock.clone());
    assert_eq!(
        readiness.check(),
        Err(vec![
            NotReady::Grpc(GrpcState::Starting),
            NotReady::NoIssuer
        ])
    );
    assert_eq!(
        reasons(&readiness),
        [
            "the gRPC server is not serving yet",
            "no issuer is loaded yet"
        ]
    );

    // Serving, with a usable issuer: ready.
    let readiness = Readiness::new(Arc::clone(&ca), clock.clone());
    readiness.set_grpc(GrpcState::Serving);
    assert_eq!(readiness.check(), Ok(()));

    // The anchor expires first (the issuer outlives it).
    clock.set(datetime!(2026-06-15 0:00 UTC));
    assert_eq!(
        reasons(&readiness),
        [
            "issuer cannot issue: trust anchor #0 expired at 2026-06-10T00:00:00Z (now 2026-06-15T00:00:00Z); rotate it"
        ]
    );
    // Then the issuer.
    clock.set(datetime!(2026-06-21 0:00 UTC));
    assert_eq!(
        reasons(&readiness),
        [
            "issuer cannot issue: issuer certificate expired at 2026-06-20T00:00:00Z (now 2026-06-21T00:00:00Z); rotate it"
        ]
    );

    // The gRPC server shutting down, then stopped.
    clock.set(NOW);
    readiness.set_grpc(GrpcState::ShuttingDown);
    assert_eq!(
        reasons(&readiness),
        ["the gRPC server is shutting down, finishing the requests in flight"]
    );
    readiness.set_grpc(GrpcState::Stopped);
    assert_eq!(reasons(&readiness), ["the gRPC server has stopped"]);
}

#[test]
fn over_tls_the_services_own_certificate_must_be_valid() {
    let clock = Arc::new(ManualClock::new(NOW));
    let (_, ca) = ca(
        datetime!(2026-06-10 0:00 UTC),
        datetime!(2026-06-20 0:00 UTC),
    );
    let mut serving = ServingIdentity::new(Arc::clone(&ca), clock.clone()).unwrap();
    let readiness = Readiness::new(Arc::clone(&ca), clock.clone())
        .with_serving_certificate(serving.credentials());
    readiness.set_grpc(GrpcState::Serving);
    let name = "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local";
    assert_eq!(
        reasons(&readiness),
        [format!(
            "the identity service has no TLS certificate for {name} yet"
        )]
    );
    serving.issue().unwrap();
    assert_eq!(readiness.check(), Ok(()));
    // Renewal failing until the certificate expires (the issuer is still usable).
    clock.set(NOW + 2 * DAY);
    let reasons = reasons(&readiness);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].starts_with(&format!(
            "the identity service's TLS certificate for {name} is valid only from "
        )),
        "{reasons:?}"
    );
    assert!(reasons[0].ends_with("renewing it has been failing (see the log)"));
}

#[tokio::test]
async fn ready_answers_503_with_the_reason_and_200_once_repaired_while_live_stays_200() {
    let clock = Arc::new(ManualClock::new(NOW));
    let (root, ca) = ca(
        datetime!(2036-01-01 0:00 UTC),
        datetime!(2026-06-03 0:00 UTC),
    );
    let readiness = Readiness::new(Arc::clone(&ca), clock.clone());
    let state = Arc::new(
        AdminState::new(prometheus_client::registry::Registry::default(), || {})
            .with_readiness(readiness.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        admin::serve(listener, state, &AdminLimits::default(), async {
            let _ = stopped.await;
        })
        .await;
    });

    let ready = http_get(addr, "/ready").await;
    assert!(ready.starts_with("HTTP/1.1 503 "), "{ready}");
    assert!(
        ready.ends_with("\r\n\r\nnot ready: the gRPC server is not serving yet\n"),
        "{ready}"
    );
    readiness.set_grpc(GrpcState::Serving);
    assert!(http_get(addr, "/ready").await.ends_with("\r\n\r\nready\n"));

    // The issuer expires: not ready, and why; the process is still live.
    clock.set(datetime!(2026-06-04 0:00 UTC));
    let ready = http_get(addr, "/ready").await;
    assert!(ready.starts_with("HTTP/1.1 503 "), "{ready}");
    assert!(
        ready.ends_with("\r\n\r\nnot ready: issuer cannot issue: issuer certificate expired at 2026-06-03T00:00:00Z (now 2026-06-04T00:00:00Z); rotate it\n"),
        "{ready}"
    );
    assert!(http_get(addr, "/live").await.starts_with("HTTP/1.1 200 "));

    // A new issuer is loaded (as the reloader would): ready again.
    let later = datetime!(2026-06-04 0:00 UTC);
    load_issuer(&root, &ca, later, later + 2 * DAY, later);
    let ready = http_get(addr, "/ready").await;
    assert!(ready.starts_with("HTTP/1.1 200 "), "{ready}");

    // The gRPC server stops: not ready; live.
    readiness.set_grpc(GrpcState::Stopped);
    let ready = http_get(addr, "/ready").await;
    assert!(
        ready.ends_with("\r\n\r\nnot ready: the gRPC server has stopped\n"),
        "{ready}"
    );
    assert!(http_get(addr, "/live").await.starts_with("HTTP/1.1 200 "));

    stop.send(()).unwrap();
    server.await.unwrap();
}
