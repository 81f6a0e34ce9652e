//! Kubeconfig exec credential plugins, run by kube for real (small shell scripts) against a
//! local endpoint that answers like the API server.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use meshid_kube::{ApiCredentials, Error, ExecProblem, KubeApiConfig, KubeClient};
use meshid_kube_testing::{Answer, ApiServerDouble};
use meshid_policy::ManualClock;
use tempfile::TempDir;
use time::macros::datetime;

/// kube runs the plugin this many times while it builds a client.
const RUNS_PER_BUILD: usize = 3;

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

async fn client(path: &Path) -> Result<KubeClient, Error> {
    KubeClient::connect(KubeApiConfig::from_kubeconfig(path, None).unwrap()).await
}

async fn create(client: &KubeClient) -> Result<(), Error> {
    let mut map = ConfigMap::default();
    map.metadata.name = Some("m".to_owned());
    client.create(Some("linkerd"), &map).await.map(drop)
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
    // The relative command is taken from the kubeconfig's folder.
    assert_eq!(
        config.credentials(),
        ApiCredentials::Exec {
            command: dir.path().join("./get-token").display().to_string()
        }
    );
    let client = KubeClient::connect(config).await.unwrap();
    assert_eq!(runs(dir.path()).len(), RUNS_PER_BUILD);

    for _ in 0..3 {
        create(&client).await.unwrap();
    }
    assert_eq!(authorizations(&api), ["Bearer token-1"; 3]);
    // No run per request.
    let runs = runs(dir.path());
    assert_eq!(runs.len(), RUNS_PER_BUILD, "{runs:?}");

    // With the arguments, the environment and KUBERNETES_EXEC_INFO, without a terminal.
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
async fn a_token_about_to_expire_is_fetched_again() {
    let dir = temp_dir();
    // kube renews a token within a minute of its expiry: this one is always that close.
    #[allow(clippy::disallowed_methods)]
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(30);
    counting_plugin(dir.path(), Some(&meshid_policy::rfc3339(soon)));
    let api = ApiServerDouble::start().await;
    let client = client(&kubeconfig(
        &api,
        dir.path(),
        "{apiVersion: client.authentication.k8s.io/v1, command: ./get-token}",
    ))
    .await
    .unwrap();
    create(&client).await.unwrap();
    create(&client).await.unwrap();
    assert_eq!(authorizations(&api), ["Bearer token-4", "Bearer token-5"]);
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
    ))
    .await
    .unwrap();
    create(&client).await.unwrap();
    create(&client).await.unwrap();
    assert_eq!(
        authorizations(&api),
        ["Bearer token-1", "Bearer token-4", "Bearer token-4"]
    );
    assert_eq!(runs(dir.path()).len(), 2 * RUNS_PER_BUILD);
}

#[tokio::test]
async fn a_new_token_refused_too_is_the_answer() {
    let dir = temp_dir();
    counting_plugin(dir.path(), None);
    let api = ApiServerDouble::builder()
        .answer(|_| async {
            Answer::json(
                401,
                r#"{"kind":"Status","message":"Unauthorized","code":401}"#,
            )
        })
        .start()
        .await;
    let client = client(&kubeconfig(
        &api,
        dir.path(),
        "{apiVersion: client.authentication.k8s.io/v1, command: ./get-token}",
    ))
    .await
    .unwrap();
    assert_eq!(
        create(&client).await.unwrap_err(),
        Error::Api {
            status: 401,
            message: "Unauthorized".to_owned()
        }
    );
    // Sent once more with a new token, and no more.
    assert_eq!(authorizations(&api), ["Bearer token-1", "Bearer token-4"]);
    assert_eq!(runs(dir.path()).len(), 2 * RUNS_PER_BUILD);
}

#[tokio::test]
async fn a_plugin_that_fails_says_why_and_nothing_is_sent() {
    let dir = temp_dir();
    let api = ApiServerDouble::start().await;
    type Is = fn(&ExecProblem) -> bool;
    let cases: [(&str, Is, String); 4] = [
        (
            "{apiVersion: client.authentication.k8s.io/v1, command: meshid-no-such-plugin, \
             installHint: 'Install it with: brew install meshid-no-such-plugin'}",
            |p| {
                matches!(
                    p,
                    ExecProblem::Start {
                        kind: std::io::ErrorKind::NotFound,
                        install_hint: Some(hint),
                        ..
                    } if hint == "Install it with: brew install meshid-no-such-plugin"
                )
            },
            "the kubeconfig exec credential plugin meshid-no-such-plugin failed: cannot run \
             it: No such file or directory (os error 2); Install it with: brew install \
             meshid-no-such-plugin"
                .to_owned(),
        ),
        (
            "{apiVersion: client.authentication.k8s.io/v1, command: ./fails}",
            |p| {
                matches!(
                    p,
                    ExecProblem::Exited { status, stderr }
                        if status.code() == Some(3)
                            && stderr == "error: SSO session expired; run aws sso login"
                )
            },
            format!(
                "the kubeconfig exec credential plugin {} failed: it exited with exit status: \
                 3: error: SSO session expired; run aws sso login",
                dir.path().join("./fails").display()
            ),
        ),
        (
            "{apiVersion: client.authentication.k8s.io/v1, command: ./prints-a-certificate}",
            |p| matches!(p, ExecProblem::ClientCertificate { .. }),
            format!(
                "the kubeconfig exec credential plugin {} failed: its client certificate is \
                 not usable: ",
                dir.path().join("./prints-a-certificate").display()
            ),
        ),
        (
            "{apiVersion: client.authentication.k8s.io/v1, command: ./prints-text}",
            |p| *p == ExecProblem::NotExecCredential,
            format!(
                "the kubeconfig exec credential plugin {} failed: its output is not an \
                 ExecCredential (JSON or YAML)",
                dir.path().join("./prints-text").display()
            ),
        ),
    ];
    script(
        dir.path(),
        "fails",
        "echo 'error: SSO session expired; run aws sso login' >&2; echo token-secret; exit 3",
    );
    script(
        dir.path(),
        "prints-a-certificate",
        r#"echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientCertificateData":"C","clientKeyData":"K-secret"}}'"#,
    );
    script(dir.path(), "prints-text", "echo '[token-secret'");
    for (exec, is, message) in cases {
        let e = client(&kubeconfig(&api, dir.path(), exec))
            .await
            .unwrap_err();
        let Error::ExecPlugin { problem, .. } = &e else {
            panic!("{e:?}");
        };
        assert!(is(problem), "{problem:?}");
        assert!(e.to_string().starts_with(&message), "{e}\n{message}");
        assert!(!e.to_string().contains("secret"), "{e}");
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
    .await
    .unwrap()
    .with_clock(Arc::clone(&clock));

    for _ in 0..2 {
        create(&client).await.unwrap();
    }
    assert_eq!(runs(dir.path()).len(), RUNS_PER_BUILD);
    // 10 s before its expiry the plugin runs again, and the certificate goes out on new
    // connections.
    clock.set(datetime!(2026-06-01 12:59:49 UTC));
    create(&client).await.unwrap();
    assert_eq!(runs(dir.path()).len(), RUNS_PER_BUILD);
    clock.set(datetime!(2026-06-01 12:59:50 UTC));
    create(&client).await.unwrap();
    assert_eq!(runs(dir.path()).len(), 2 * RUNS_PER_BUILD);

    let requests = api.requests();
    assert_eq!(requests.len(), 4);
    assert!(requests.iter().all(|r| r.client_certificate));
    assert!(requests.iter().all(|r| r.authorization().is_empty()));
}

#[tokio::test]
async fn a_plugin_that_hangs_is_given_up_after_the_exec_timeout() {
    let dir = temp_dir();
    script(dir.path(), "hangs", "exec sleep 2");
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
    config.exec_timeout = Duration::from_millis(300);
    let e = KubeClient::connect(config).await.unwrap_err();
    assert!(
        matches!(
            &e,
            Error::ExecPlugin {
                problem: ExecProblem::Timeout { after },
                ..
            } if *after == Duration::from_millis(300)
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "the kubeconfig exec credential plugin {} failed: it did not finish within 300ms; \
             log in first if it waits for you, or check what it waits for",
            dir.path().join("./hangs").display()
        )
    );
    assert_eq!(api.hits(), 0);
}

#[test]
fn debug_of_the_configuration_hides_the_plugins_environment() {
    let config = KubeApiConfig::from_kubeconfig_str(
        "current-context: c\n\
         contexts: [{name: c, context: {cluster: c, user: u}}]\n\
         clusters: [{name: c, cluster: {server: 'https://h:6443'}}]\n\
         users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, \
         command: aws, env: [{name: AWS_SESSION_TOKEN, value: hunter2}]}}}]\n",
        None,
    )
    .unwrap();
    let debug = format!("{config:?}");
    assert!(debug.contains("aws"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
}
