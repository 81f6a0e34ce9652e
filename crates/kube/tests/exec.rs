//! Kubeconfig exec credential plugins, run for real (small shell scripts) against a local
//! endpoint that answers like the API server.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use meshid_kube::{ApiCredentials, Error, ExecPlugin, KubeApiConfig, KubeClient};
use meshid_kube_testing::{Answer, ApiServerDouble};
use meshid_policy::ManualClock;
use tempfile::TempDir;
use time::macros::datetime;

/// A fresh folder, removed when the returned value is dropped.
fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("meshid-kube-exec-")
        .tempdir()
        .unwrap()
}

/// The authorization header of each request `api` has seen.
fn authorizations(api: &ApiServerDouble) -> Vec<String> {
    api.requests()
        .iter()
        .map(|r| r.authorization().to_owned())
        .collect()
}

/// An executable `sh` script at `dir/name`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A plugin that logs each run (its arguments, `$REGION` and `KUBERNETES_EXEC_INFO`) to
/// `runs.log` and prints the token `token-<run number>`, expiring at `expires` (RFC 3339) if
/// given.
fn counting_plugin(dir: &Path, expires: Option<&str>) -> PathBuf {
    let expiry = expires
        .map(|at| format!(r#","expirationTimestamp":"{at}""#))
        .unwrap_or_default();
    script(
        dir,
        "get-token",
        &format!(
            r#"log="$(dirname "$0")/runs.log"
printf '%s|%s|%s\n' "$*" "$REGION" "$KUBERNETES_EXEC_INFO" >> "$log"
n=$(wc -l < "$log" | tr -d ' ')
printf '{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{{"token":"token-%s"{expiry}}}}}' "$n""#
        ),
    )
}

fn runs(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("runs.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A kubeconfig in `dir` reaching `api` through the exec section `exec` (YAML flow mapping).
fn kubeconfig(api: &ApiServerDouble, dir: &Path, exec: &str) -> PathBuf {
    std::fs::write(dir.join("ca.crt"), api.ca_pem()).unwrap();
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "current-context: eks\n\
             contexts: [{{name: eks, context: {{cluster: c, user: u}}}}]\n\
             clusters: [{{name: c, cluster: {{server: '{}', certificate-authority: ca.crt}}}}]\n\
             users: [{{name: u, user: {{exec: {exec}}}}}]\n",
            api.url()
        ),
    )
    .unwrap();
    path
}

fn client(path: &Path) -> KubeClient {
    KubeClient::new(KubeApiConfig::from_kubeconfig(path, None).unwrap()).unwrap()
}

async fn post(client: &KubeClient) -> Result<u16, Error> {
    client
        .post_json("/api/v1/namespaces/linkerd/events", b"{}".to_vec())
        .await
        .map(|answer| answer.status)
}

#[tokio::test]
async fn the_plugins_token_is_sent_and_kept_until_it_expires() {
    let dir = temp_dir();
    counting_plugin(dir.path(), Some("2999-01-01T00:00:00Z"));
    let api = ApiServerDouble::start().await;
    let path = kubeconfig(
        &api,
        dir.path(),
        "{apiVersion: client.authentication.k8s.io/v1, command: ./get-token, \
         args: [eks, get-token, --cluster-name, prod], env: [{name: REGION, value: eu-west-1}], \
         provideClusterInfo: true, interactiveMode: IfAvailable}",
    );
    let config = KubeApiConfig::from_kubeconfig(&path, None).unwrap();
    let ApiCredentials::Exec(plugin) = &config.credentials else {
        panic!("{:?}", config.credentials);
    };
    // The relative command is taken from the kubeconfig's folder.
    assert_eq!(plugin.command, dir.path().join("./get-token"));
    let client = KubeClient::new(config).unwrap();

    for _ in 0..3 {
        assert_eq!(post(&client).await.unwrap(), 201);
    }
    assert_eq!(authorizations(&api), ["Bearer token-1"; 3]);

    // One run, with the arguments, the environment and KUBERNETES_EXEC_INFO.
    let runs = runs(dir.path());
    assert_eq!(runs.len(), 1, "{runs:?}");
    let [args, region, info] = runs[0].splitn(3, '|').collect::<Vec<_>>()[..] else {
        panic!("{runs:?}");
    };
    assert_eq!(args, "eks get-token --cluster-name prod");
    assert_eq!(region, "eu-west-1");
    let info: serde_json::Value = serde_json::from_str(info).unwrap();
    assert_eq!(info["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(info["kind"], "ExecCredential");
    assert_eq!(info["spec"]["interactive"], false);
    assert_eq!(info["spec"]["cluster"]["server"], api.url());
    assert!(info["spec"]["cluster"]["certificate-authority-data"].is_string());
}

#[tokio::test]
async fn a_token_is_fetched_again_ten_seconds_before_it_expires() {
    let dir = temp_dir();
    counting_plugin(dir.path(), Some("2026-06-01T12:15:00Z"));
    let api = ApiServerDouble::start().await;
    let clock = Arc::new(ManualClock::new(datetime!(2026-06-01 12:00 UTC)));
    let client = client(&kubeconfig(
        &api,
        dir.path(),
        "{apiVersion: client.authentication.k8s.io/v1, command: ./get-token}",
    ))
    .with_clock(Arc::clone(&clock));
    assert_eq!(post(&client).await.unwrap(), 201);
    clock.set(datetime!(2026-06-01 12:14:49 UTC));
    assert_eq!(post(&client).await.unwrap(), 201);
    clock.set(datetime!(2026-06-01 12:14:50 UTC));
    assert_eq!(post(&client).await.unwrap(), 201);
    assert_eq!(
        authorizations(&api),
        ["Bearer token-1", "Bearer token-1", "Bearer token-2"]
    );
    // Without provideClusterInfo the plugin is not told the cluster.
    assert!(!runs(dir.path())[0].contains("server"));
}

#[tokio::test]
async fn a_refused_token_is_fetched_again_and_the_request_sent_once_more() {
    let dir = temp_dir();
    counting_plugin(dir.path(), None);
    // The API server has stopped taking the first token (revoked, or expired early).
    let api = ApiServerDouble::builder()
        .answer(|request| async move {
            if request.authorization() == "Bearer token-1" {
                Answer::json(
                    401,
                    r#"{"kind":"Status","message":"Unauthorized","code":401}"#,
                )
            } else {
                Answer::echo(&request)
            }
        })
        .start()
        .await;
    let client = client(&kubeconfig(
        &api,
        dir.path(),
        "{apiVersion: client.authentication.k8s.io/v1, command: ./get-token}",
    ));
    // The first token was fresh when refused: the 401 is the answer.
    assert_eq!(post(&client).await.unwrap(), 401);
    // ...and was kept, so the next request sends it again, is refused, and is retried once
    // with a new token.
    assert_eq!(post(&client).await.unwrap(), 201);
    assert_eq!(
        authorizations(&api),
        ["Bearer token-1", "Bearer token-1", "Bearer token-2"]
    );
    assert_eq!(runs(dir.path()).len(), 2);
}

#[tokio::test]
async fn a_plugin_that_fails_says_why_and_nothing_is_sent() {
    let dir = temp_dir();
    let api = ApiServerDouble::start().await;
    let cases: [(&str, String); 5] = [
        (
            "{apiVersion: client.authentication.k8s.io/v1, command: meshid-no-such-plugin, \
             installHint: 'Install it with: brew install meshid-no-such-plugin'}",
            "the kubeconfig exec credential plugin meshid-no-such-plugin failed: cannot run \
             it: No such file or directory (os error 2); Install it with: brew install \
             meshid-no-such-plugin"
                .to_owned(),
        ),
        (
            "{apiVersion: client.authentication.k8s.io/v1, command: ./fails}",
            format!(
                "the kubeconfig exec credential plugin {} failed: it exited with exit status: \
                 3: error: SSO session expired; run aws sso login",
                dir.path().join("./fails").display()
            ),
        ),
        (
            "{apiVersion: client.authentication.k8s.io/v1, command: ./prints-a-certificate}",
            format!(
                "the kubeconfig exec credential plugin {} failed: its client certificate \
                 (API client certificate) is not usable: it holds no CERTIFICATE block",
                dir.path().join("./prints-a-certificate").display()
            ),
        ),
        (
            "{apiVersion: client.authentication.k8s.io/v1beta1, command: ./get-token}",
            format!(
                "the kubeconfig exec credential plugin {} failed: it answered with apiVersion \
                 \"client.authentication.k8s.io/v1\", not the \
                 \"client.authentication.k8s.io/v1beta1\" it was asked for",
                dir.path().join("./get-token").display()
            ),
        ),
        (
            "{apiVersion: client.authentication.k8s.io/v1, command: ./prints-text}",
            format!(
                "the kubeconfig exec credential plugin {} failed: its output is not an \
                 ExecCredential JSON document (syntax error at line 1 column 2)",
                dir.path().join("./prints-text").display()
            ),
        ),
    ];
    script(
        dir.path(),
        "fails",
        "echo 'error: SSO session expired; run aws sso login' >&2; exit 3",
    );
    script(
        dir.path(),
        "prints-a-certificate",
        r#"echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientCertificateData":"C","clientKeyData":"K"}}'"#,
    );
    script(dir.path(), "prints-text", "echo token-secret");
    counting_plugin(dir.path(), None);
    for (exec, message) in cases {
        let e = post(&client(&kubeconfig(&api, dir.path(), exec)))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::ExecPlugin { .. }), "{e:?}");
        assert_eq!(e.to_string(), message);
        assert!(!e.to_string().contains("token-secret"));
    }
    assert_eq!(api.hits(), 0);
}

#[tokio::test]
async fn a_plugins_client_certificate_is_presented_and_renewed_when_it_expires() {
    let dir = temp_dir();
    // An API server that takes client certificates (as with Teleport's `tsh kube
    // credentials`) and refuses anything else.
    let api = ApiServerDouble::builder()
        .accept_client_certificates("system:serviceaccount:linkerd:linkerd-identity")
        .answer(|request| async move {
            if request.client_certificate {
                Answer::echo(&request)
            } else {
                Answer::json(
                    401,
                    r#"{"kind":"Status","message":"Unauthorized","code":401}"#,
                )
            }
        })
        .start()
        .await;
    let client_certificate = api.client_certificate().expect("a client certificate");
    let credential = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": client_certificate.chain_pem,
            "clientKeyData": client_certificate.key_pem,
            "expirationTimestamp": "2026-06-01T13:00:00Z",
        },
    });
    std::fs::write(dir.path().join("credential.json"), credential.to_string()).unwrap();
    script(
        dir.path(),
        "tsh",
        r#"echo run >> "$(dirname "$0")/runs.log"; cat "$(dirname "$0")/credential.json""#,
    );
    let clock = Arc::new(ManualClock::new(datetime!(2026-06-01 12:00 UTC)));
    let client = client(&kubeconfig(
        &api,
        dir.path(),
        "{apiVersion: client.authentication.k8s.io/v1, command: ./tsh, args: [kube, credentials]}",
    ))
    .with_clock(Arc::clone(&clock));

    for _ in 0..2 {
        assert_eq!(post(&client).await.unwrap(), 201);
    }
    assert_eq!(runs(dir.path()).len(), 1);
    // Past its expiry the plugin runs again, and the certificate goes out on new connections.
    clock.set(datetime!(2026-06-01 12:59:55 UTC));
    assert_eq!(post(&client).await.unwrap(), 201);
    assert_eq!(runs(dir.path()).len(), 2);

    let requests = api.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.client_certificate));
    assert!(requests.iter().all(|r| r.authorization().is_empty()));
}

#[tokio::test]
async fn a_plugin_that_hangs_is_stopped_by_the_request_timeout() {
    let dir = temp_dir();
    script(dir.path(), "hangs", "exec sleep 30");
    let api = ApiServerDouble::start().await;
    let mut config = KubeApiConfig::from_kubeconfig(
        &kubeconfig(
            &api,
            dir.path(),
            "{apiVersion: client.authentication.k8s.io/v1, command: ./hangs}",
        ),
        None,
    )
    .unwrap();
    config.timeout = Duration::from_millis(300);
    let e = post(&KubeClient::new(config).unwrap()).await.unwrap_err();
    assert_eq!(
        e,
        Error::Timeout {
            after: Duration::from_millis(300)
        }
    );
    assert_eq!(api.hits(), 0);
}

#[test]
fn debug_of_the_credentials_hides_the_environment_values() {
    let mut plugin = ExecPlugin::new("aws", vec!["eks".to_owned()]);
    plugin
        .env
        .push(("AWS_SESSION_TOKEN".to_owned(), "hunter2".to_owned()));
    let debug = format!("{:?}", ApiCredentials::Exec(plugin));
    assert!(debug.contains("AWS_SESSION_TOKEN"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
}
