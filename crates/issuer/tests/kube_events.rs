//! Kubernetes Events posted to a local endpoint that answers like the API server.

#![cfg(feature = "kube-events")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use meshid_issuer::{Event, EventSink, KubeApiConfig, KubeEventSink, KubeEventsConfig};
use meshid_kube_testing::ApiServerDouble;
use support::*;

/// (path, authorization header, JSON body) of the next request, within 5s.
async fn next_posted(api: &ApiServerDouble) -> (String, String, serde_json::Value) {
    let req = api
        .next_request(Duration::from_secs(5))
        .await
        .expect("no request within 5s");
    let json: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    (req.path.clone(), req.authorization().to_owned(), json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_posted_as_core_v1_events_on_the_identity_deployment() {
    let tmp = TempDir::new();
    let api = ApiServerDouble::start().await;
    std::fs::write(tmp.path().join("ca.crt"), api.ca_pem()).unwrap();
    std::fs::write(tmp.path().join("token"), "sa-token\n").unwrap();
    let config = KubeEventsConfig::new(KubeApiConfig::new(
        api.url(),
        tmp.path().join("ca.crt"),
        tmp.path().join("token"),
    ));
    let (sink, _task) = KubeEventSink::spawn(config).unwrap();

    sink.emit(&Event::issuer_update_skipped(
        &"reading /x/crt.pem: gone",
        START,
    ));
    sink.emit(&Event::issuer_updated(START + Duration::from_millis(1500)));

    let (path, auth, json) = next_posted(&api).await;
    assert_eq!(path, "/api/v1/namespaces/linkerd/events");
    assert_eq!(auth, "Bearer sa-token");
    assert_eq!(json["apiVersion"], "v1");
    assert_eq!(json["kind"], "Event");
    assert_eq!(json["metadata"]["namespace"], "linkerd");
    assert_eq!(json["metadata"]["generateName"], "linkerd-identity.");
    assert_eq!(json["involvedObject"]["kind"], "Deployment");
    assert_eq!(json["involvedObject"]["apiVersion"], "apps/v1");
    assert_eq!(json["involvedObject"]["name"], "linkerd-identity");
    assert_eq!(json["type"], "Warning");
    assert_eq!(json["reason"], "IssuerUpdateSkipped");
    assert_eq!(
        json["message"],
        "Skipping issuer update as certs could not be read from disk: reading /x/crt.pem: gone"
    );
    assert_eq!(json["source"]["component"], "linkerd-identity");
    assert_eq!(json["firstTimestamp"], "2026-06-01T12:00:00Z");

    let (_, _, json) = next_posted(&api).await;
    assert_eq!(json["type"], "Normal");
    assert_eq!(json["reason"], "IssuerUpdated");
    assert_eq!(json["message"], "Updated identity issuer");
    assert_eq!(json["lastTimestamp"], "2026-06-01T12:00:01Z");
}
