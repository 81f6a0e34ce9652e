//! Kubernetes Events posted to a local endpoint that answers like the API server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use meshid_issuer::{Event, EventSink, KubeApiConfig, KubeEventSink, KubeEventsConfig};
use meshid_kube_testing::{Answer, ApiServerDouble};
use support::*;
use tempfile::TempDir;

/// (path, authorization header, JSON body) of the next request, within 5s.
async fn next_posted(api: &ApiServerDouble) -> (String, String, serde_json::Value) {
    let req = api
        .next_request(Duration::from_secs(5))
        .await
        .expect("no request within 5s");
    let json: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    (req.path.clone(), req.authorization().to_owned(), json)
}

/// Posting to `api`, with the CA and token files in `tmp`.
fn config(api: &ApiServerDouble, tmp: &TempDir) -> KubeEventsConfig {
    std::fs::write(tmp.path().join("ca.crt"), api.ca_pem()).unwrap();
    std::fs::write(tmp.path().join("token"), "sa-token").unwrap();
    KubeEventsConfig::new(
        KubeApiConfig::new(
            api.url(),
            tmp.path().join("ca.crt"),
            tmp.path().join("token"),
        )
        .unwrap(),
    )
}

/// An API server that takes `delay` to answer each post.
async fn slow_api(delay: Duration) -> ApiServerDouble {
    ApiServerDouble::builder()
        .answer(move |request| async move {
            tokio::time::sleep(delay).await;
            Answer::echo(&request)
        })
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_posted_as_core_v1_events_on_the_identity_deployment() {
    let tmp = temp_dir();
    let api = ApiServerDouble::start().await;
    let (sink, _task) = KubeEventSink::spawn(config(&api, &tmp)).await.unwrap();

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_posts_every_queued_event_and_takes_no_more() {
    let tmp = temp_dir();
    let api = slow_api(Duration::from_millis(50)).await;
    let (sink, task) = KubeEventSink::spawn(config(&api, &tmp)).await.unwrap();
    for i in 0..5 {
        sink.emit(&Event::issuer_updated(START + Duration::from_secs(i)));
    }

    // The sink is still held (as the service's components hold it at shutdown).
    assert_eq!(task.close(Duration::from_secs(10)).await, 0);
    assert_eq!(
        api.hits(),
        5,
        "every queued event was posted before close returned"
    );

    // Events after close are dropped, not queued for a task that has ended.
    sink.emit(&Event::issuer_updated(START));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(api.hits(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_gives_up_at_the_deadline_and_counts_what_was_not_posted() {
    let tmp = temp_dir();
    // Posts that take far longer than the deadline, so waiting for one cannot go unnoticed
    // however slow the machine.
    let api = slow_api(Duration::from_secs(60)).await;
    let (sink, task) = KubeEventSink::spawn(config(&api, &tmp)).await.unwrap();
    for i in 0..3 {
        sink.emit(&Event::issuer_updated(START + Duration::from_secs(i)));
    }

    let started = std::time::Instant::now();
    let unposted = task.close(Duration::from_millis(300)).await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "close waited for a slow post"
    );
    // The first event is being posted (and is given up with the others).
    assert_eq!(unposted, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_task_handle_leaves_the_sink_posting() {
    let tmp = temp_dir();
    let api = ApiServerDouble::start().await;
    let (sink, task) = KubeEventSink::spawn(config(&api, &tmp)).await.unwrap();
    drop(task);
    sink.emit(&Event::issuer_updated(START));
    let (_, _, json) = next_posted(&api).await;
    assert_eq!(json["reason"], "IssuerUpdated");
}
