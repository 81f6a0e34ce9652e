//! kube's client, through meshid's layer, against a local HTTPS endpoint that answers like the
//! API server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use meshid_kube::{ApiCredentials, Error, KubeApiConfig, KubeClient};
use meshid_kube_testing::{Answer, ApiServerDouble, Request};
use tempfile::TempDir;

async fn server() -> ApiServerDouble {
    ApiServerDouble::builder().answer(answer).start().await
}

/// Answers by the namespace the object is created in.
async fn answer(req: Request) -> Answer {
    assert_eq!(req.headers["content-type"], "application/json");
    let namespace = req
        .path
        .split('/')
        .skip_while(|part| *part != "namespaces")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    match namespace.as_str() {
        "forbidden" => Answer::json(
            403,
            r#"{"kind":"Status","message":"configmaps is forbidden: User \"x\" cannot create","code":403}"#,
        ),
        "big" => Answer::new(200, vec![b'x'; 2 * 1024 * 1024]),
        "garbage" => Answer::new(201, &b"<html>proxy</html>"[..]),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Answer::echo(&req)
        }
        _ => Answer::echo(&req),
    }
}

/// A fresh folder, removed when the returned value is dropped.
fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("meshid-kube-")
        .tempdir()
        .unwrap()
}

/// The double's CA and the token `sa-token`, as files in `dir`.
fn files(server: &ApiServerDouble, dir: &TempDir) {
    std::fs::write(dir.path().join("ca.crt"), server.ca_pem()).unwrap();
    std::fs::write(dir.path().join("token"), "sa-token").unwrap();
}

fn config(server: &ApiServerDouble, dir: &TempDir) -> KubeApiConfig {
    files(server, dir);
    KubeApiConfig::new(
        server.url(),
        dir.path().join("ca.crt"),
        dir.path().join("token"),
    )
    .unwrap()
}

fn config_map(name: &str) -> ConfigMap {
    let mut map = ConfigMap::default();
    map.metadata.name = Some(name.to_owned());
    map.data = Some([("k".to_owned(), "v".to_owned())].into());
    map
}

#[tokio::test]
async fn typed_objects_are_created_with_the_bearer_token_below_the_base_url() {
    let server = server().await;
    let dir = temp_dir();
    files(&server, &dir);
    let config = KubeApiConfig::new(
        &format!("{}/prefix/", server.url()),
        dir.path().join("ca.crt"),
        dir.path().join("token"),
    )
    .unwrap();
    assert_eq!(
        config.credentials(),
        ApiCredentials::TokenFile(dir.path().join("token"))
    );
    let client = KubeClient::connect(config).await.unwrap();

    let created = client
        .create(Some("linkerd"), &config_map("meshid"))
        .await
        .unwrap();
    assert_eq!(created, config_map("meshid"));
    let seen = server.requests();
    assert_eq!(seen[0].path, "/prefix/api/v1/namespaces/linkerd/configmaps");
    assert_eq!(seen[0].authorization(), "Bearer sa-token");
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["kind"], "ConfigMap");
    assert_eq!(body["metadata"]["name"], "meshid");

    // What the API server said, when it refuses.
    let e = client
        .create(Some("forbidden"), &config_map("meshid"))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        Error::Api {
            status: 403,
            message: "configmaps is forbidden: User \"x\" cannot create".to_owned()
        }
    );
    // An answer that is not the object: said without quoting it.
    let e = client
        .create(Some("garbage"), &config_map("meshid"))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the Kubernetes API server's answer is not understood: not a ConfigMap (syntax error at \
         line 1 column 1)"
    );
    assert!(!format!("{client:?}").contains("sa-token"));
}

#[tokio::test]
async fn failures_are_one_line_and_say_what_is_wrong() {
    let server = server().await;
    let dir = temp_dir();
    let config = config(&server, &dir);

    let refused = |url: &str| {
        KubeApiConfig::new(url, dir.path().join("ca.crt"), dir.path().join("token"))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        refused("http://127.0.0.1:6443"),
        "invalid API server URL \"http://127.0.0.1:6443\": must start with https://"
    );
    assert_eq!(
        refused("https://h/?watch=1"),
        "invalid API server URL \"https://h/?watch=1\": must not have a query"
    );
    assert!(refused("not a url").contains("not a URL"));
    let missing = dir.path().join("missing.crt");
    assert!(
        KubeApiConfig::new(server.url(), &missing, dir.path().join("token"))
            .unwrap_err()
            .to_string()
            .starts_with(&format!(
                "cannot read the API server CA file {}: ",
                missing.display()
            ))
    );
    std::fs::write(dir.path().join("empty.crt"), "no certificate here").unwrap();
    assert_eq!(
        KubeApiConfig::new(
            server.url(),
            dir.path().join("empty.crt"),
            dir.path().join("token")
        )
        .unwrap_err()
        .to_string(),
        format!(
            "invalid API server CA file {}: it holds no CERTIFICATE block",
            dir.path().join("empty.crt").display()
        )
    );
    let mut bad = config.clone();
    bad.timeout = Duration::ZERO;
    assert_eq!(
        KubeClient::connect(bad).await.unwrap_err().to_string(),
        "invalid Kubernetes API configuration: the request timeout must be positive"
    );
    // A token file with a line break: kube sends it as it is, which HTTP does not allow.
    std::fs::write(dir.path().join("newline"), "sa-token\n").unwrap();
    let mut newline = config.clone();
    newline.kube.auth_info.token_file = Some(dir.path().join("newline").display().to_string());
    assert_eq!(
        KubeClient::connect(newline)
            .await
            .unwrap()
            .create(Some("linkerd"), &config_map("m"))
            .await
            .unwrap_err()
            .to_string(),
        "invalid explicit configuration: its token holds characters not allowed in an HTTP \
         header, such as a line break (kube does not trim token files): write the token \
         without one"
    );
    // The token file is read when the client is built.
    let mut no_token = config.clone();
    no_token.kube.auth_info.token_file = Some(dir.path().join("gone").display().to_string());
    let e = KubeClient::connect(no_token).await.unwrap_err();
    assert!(
        matches!(&e, Error::ReadFile { what: "API client token file", path, kind: std::io::ErrorKind::NotFound, .. } if path == &dir.path().join("gone")),
        "{e:?}"
    );

    let client = KubeClient::connect(config.clone()).await.unwrap();
    // Answers longer than the limit are refused.
    let e = client
        .create(Some("big"), &config_map("m"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");

    // Slow answers time out.
    let mut slow = config.clone();
    slow.timeout = Duration::from_millis(200);
    let e = KubeClient::connect(slow)
        .await
        .unwrap()
        .create(Some("slow"), &config_map("m"))
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
    std::fs::write(dir.path().join("other.crt"), other.ca_pem()).unwrap();
    let wrong = KubeApiConfig::new(
        server.url(),
        dir.path().join("other.crt"),
        dir.path().join("token"),
    )
    .unwrap();
    let e = KubeClient::connect(wrong)
        .await
        .unwrap()
        .create(Some("linkerd"), &config_map("m"))
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
    assert_eq!(server.hits(), 2, "the big and the slow answers only");
}
