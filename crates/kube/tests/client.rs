//! The client against a local HTTPS endpoint that answers like the API server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use meshid_kube::{ApiCredentials, ApiServerCa, Error, KubeApiConfig, KubeClient};
use meshid_kube_testing::{Answer, ApiServerDouble, Request};
use tempfile::TempDir;

async fn server() -> ApiServerDouble {
    ApiServerDouble::builder().answer(answer).start().await
}

async fn answer(req: Request) -> Answer {
    assert_eq!(req.headers["content-type"], "application/json");
    match req.path.trim_start_matches("/prefix") {
        "/forbidden" => Answer::new(
            403,
            &br#"{"kind":"Status","message":"events is forbidden: User \"x\" cannot create","code":403}"#[..],
        ),
        "/big" => Answer::new(200, vec![b'x'; 2 * 1024 * 1024]),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Answer::new(200, Vec::new())
        }
        _ => Answer::new(201, req.body),
    }
}

/// (path, authorization header, body) of each request.
fn recorded(server: &ApiServerDouble) -> Vec<(String, String, String)> {
    server
        .requests()
        .iter()
        .map(|r| {
            (
                r.path.clone(),
                r.authorization().to_owned(),
                String::from_utf8_lossy(&r.body).into_owned(),
            )
        })
        .collect()
}

/// A fresh folder, removed when the returned value is dropped.
fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("meshid-kube-")
        .tempdir()
        .unwrap()
}

fn config(server: &ApiServerDouble, dir: &TempDir) -> KubeApiConfig {
    std::fs::write(dir.path().join("ca.crt"), server.ca_pem()).unwrap();
    std::fs::write(dir.path().join("token"), "sa-token\n").unwrap();
    KubeApiConfig::new(
        server.url(),
        dir.path().join("ca.crt"),
        dir.path().join("token"),
    )
}

#[tokio::test]
async fn posts_json_with_the_bearer_token_below_the_base_url() {
    let server = server().await;
    let dir = temp_dir();
    let mut config = config(&server, &dir);
    config.api_server = format!("{}/prefix/", server.url());
    let client = KubeClient::new(config).unwrap();

    let answer = client
        .post_json("/api/v1/namespaces/linkerd/events", b"{\"a\":1}".to_vec())
        .await
        .unwrap();
    assert_eq!(answer.status, 201);
    assert!(answer.is_success());
    assert_eq!(answer.body, b"{\"a\":1}");

    // The token file is re-read for every request.
    std::fs::write(dir.path().join("token"), "rotated").unwrap();
    let answer = client
        .post_json("/forbidden", b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.error_message(),
        "events is forbidden: User \"x\" cannot create"
    );
    let seen = recorded(&server);
    assert_eq!(
        seen[0],
        (
            "/prefix/api/v1/namespaces/linkerd/events".to_owned(),
            "Bearer sa-token".to_owned(),
            "{\"a\":1}".to_owned()
        )
    );
    assert_eq!(seen[1].1, "Bearer rotated");

    // A fixed token; Debug never shows it.
    let mut config = client.config().clone();
    config.credentials = ApiCredentials::Token("fixed-token".to_owned().into());
    assert!(!format!("{config:?}").contains("fixed-token"));
    let client = KubeClient::new(config).unwrap();
    assert!(!format!("{client:?}").contains("fixed-token"));
    client.post_json("/x", b"{}".to_vec()).await.unwrap();
    assert_eq!(recorded(&server)[2].1, "Bearer fixed-token".to_owned());
}

#[tokio::test]
async fn failures_are_one_line_and_say_what_is_wrong() {
    let server = server().await;
    let dir = temp_dir();
    let config = config(&server, &dir);

    let mut bad = config.clone();
    bad.api_server = "http://127.0.0.1:6443".into();
    assert_eq!(
        KubeClient::new(bad).unwrap_err().to_string(),
        "invalid API server URL \"http://127.0.0.1:6443\": must start with https://"
    );
    let mut bad = config.clone();
    bad.ca = ApiServerCa::File(dir.path().join("missing.crt"));
    assert!(
        KubeClient::new(bad)
            .unwrap_err()
            .to_string()
            .starts_with(&format!(
                "cannot read the API server CA file {}: ",
                dir.path().join("missing.crt").display()
            ))
    );
    let mut bad = config.clone();
    bad.ca = ApiServerCa::Pem(b"no certificate here".to_vec());
    assert_eq!(
        KubeClient::new(bad).unwrap_err().to_string(),
        "invalid API server CA: it holds no CERTIFICATE block"
    );
    let mut bad = config.clone();
    bad.timeout = Duration::ZERO;
    assert_eq!(
        KubeClient::new(bad).unwrap_err().to_string(),
        "invalid Kubernetes API configuration: the request timeout must be positive"
    );

    let client = KubeClient::new(config.clone()).unwrap();
    assert_eq!(
        client.post_json("api/v1", Vec::new()).await.unwrap_err(),
        Error::Config {
            what: "API path \"api/v1\"".into(),
            reason: "must start with /".into()
        }
    );
    // Answers longer than the limit are refused.
    let e = client.post_json("/big", Vec::new()).await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    // An empty token file is refused before anything is sent.
    std::fs::write(dir.path().join("token"), " \n").unwrap();
    assert_eq!(
        client
            .post_json("/x", Vec::new())
            .await
            .unwrap_err()
            .to_string(),
        format!(
            "invalid API client token file {}: it is empty",
            dir.path().join("token").display()
        )
    );
    std::fs::write(dir.path().join("token"), "sa-token").unwrap();

    // Slow answers time out.
    let mut slow = config.clone();
    slow.timeout = Duration::from_millis(200);
    let e = KubeClient::new(slow)
        .unwrap()
        .post_json("/slow", Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        e,
        Error::Timeout {
            after: Duration::from_millis(200)
        }
    );

    // A server whose certificate does not chain to the CA: one line, with the TLS reason.
    let other = self::server().await;
    let mut wrong = config;
    wrong.ca = ApiServerCa::Pem(other.ca_pem().as_bytes().to_vec());
    let e = KubeClient::new(wrong)
        .unwrap()
        .post_json("/x", Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "cannot reach the Kubernetes API server at {}: ",
            server.url()
        )),
        "{e}"
    );
    assert!(e.contains("invalid peer certificate"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}
