//! Kubeconfigs read by kube, and what meshid refuses in them, with the exact messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use meshid_kube::{ApiCredentials, Error, KubeApiConfig, KubeClient};
use meshid_kube_testing::ApiServerDouble;
use tempfile::TempDir;

fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("meshid-kube-kubeconfig-")
        .tempdir()
        .unwrap()
}

/// A kubeconfig with context `dev` on cluster `c` (`cluster`, a flow mapping) and user `u`
/// (`user`).
fn with(cluster: &str, user: &str) -> String {
    format!(
        "current-context: dev\n\
         contexts: [{{name: dev, context: {{cluster: c, user: u}}}}]\n\
         clusters: [{{name: c, cluster: {cluster}}}]\n\
         users: [{{name: u, user: {user}}}]\n"
    )
}

const CLUSTER: &str = "{server: 'https://10.0.0.1:6443'}";

#[test]
fn refusals_say_what_to_change() {
    let cases: Vec<(String, Option<&str>, &str)> = vec![
        (
            "clusters: [".to_owned(),
            None,
            "invalid kubeconfig: not a kubeconfig: ",
        ),
        (
            String::new(),
            None,
            "invalid kubeconfig: it has no current-context; name a context",
        ),
        (
            "- a\n- b\n".to_owned(),
            None,
            "invalid kubeconfig: not a kubeconfig: ",
        ),
        (
            "contexts: []\n".to_owned(),
            None,
            "invalid kubeconfig: it has no current-context; name a context",
        ),
        (
            with(CLUSTER, "{token: abc}"),
            Some("prod"),
            "invalid kubeconfig: no context named \"prod\" (it has: dev)",
        ),
        (
            with(
                "{server: 'https://h:6443', insecure-skip-tls-verify: true}",
                "{token: abc}",
            ),
            None,
            "invalid kubeconfig: cluster c sets insecure-skip-tls-verify: the API server's \
             certificate is always verified; give its CA (certificate-authority or \
             certificate-authority-data)",
        ),
        (
            with("{server: 'http://h:8080'}", "{token: abc}"),
            None,
            "invalid kubeconfig: cluster c has server \"http://h:8080\": the Kubernetes API \
             client speaks https only",
        ),
        (
            with("{certificate-authority: ca.crt}", "{token: abc}"),
            None,
            "invalid kubeconfig: cluster c has no server",
        ),
        (
            with(
                CLUSTER,
                "{exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: aws}}",
            ),
            None,
            "invalid kubeconfig: user u exec has apiVersion \
             \"client.authentication.k8s.io/v1alpha1\"; supported: \
             client.authentication.k8s.io/v1, client.authentication.k8s.io/v1beta1",
        ),
        (
            with(
                CLUSTER,
                "{exec: {apiVersion: client.authentication.k8s.io/v1}}",
            ),
            None,
            "invalid kubeconfig: user u exec has no command",
        ),
        (
            with(
                CLUSTER,
                "{token: abc, exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}}",
            ),
            None,
            "invalid kubeconfig: user u sets both exec and token; keep one way to authenticate",
        ),
        (
            with(
                CLUSTER,
                "{exec: {apiVersion: client.authentication.k8s.io/v1, command: kubelogin, \
                 interactiveMode: Always}}",
            ),
            None,
            "invalid kubeconfig: user u exec has interactiveMode Always: the plugin needs a \
             terminal, and this client runs it without one; log in first, or use a plugin that \
             can run unattended",
        ),
        (
            with(CLUSTER, "{auth-provider: {name: gcp}}"),
            None,
            "invalid kubeconfig: user u uses an auth-provider plugin, which kubectl itself has \
             removed; use an exec credential plugin",
        ),
        (
            with(CLUSTER, "{username: admin, password: secret}"),
            None,
            "invalid kubeconfig: user u uses basic authentication, which Kubernetes no longer \
             supports; use a token, tokenFile or client certificate",
        ),
        (
            with(CLUSTER, "{client-certificate-data: 'YQ=='}"),
            None,
            "invalid kubeconfig: user u has a client certificate but no client key",
        ),
        (
            with(CLUSTER, "{client-key-data: 'secret'}"),
            None,
            "invalid kubeconfig: user u has a client key but no client certificate",
        ),
        (
            with(CLUSTER, "{}"),
            None,
            "invalid kubeconfig: user u has no credentials this client can use \
             (client-certificate + client-key, token, tokenFile or exec)",
        ),
        (
            with(CLUSTER, "{token: ''}"),
            None,
            "invalid kubeconfig: user u has an empty token",
        ),
        (
            "current-context: dev\ncontexts: [{name: dev, context: {cluster: c, user: u}}]\n"
                .to_owned(),
            None,
            "invalid kubeconfig: no cluster named \"c\" (it has: none)",
        ),
        (
            "current-context: dev\n\
             contexts: [{name: dev, context: {cluster: c, user: nobody}}]\n\
             clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
                .to_owned(),
            None,
            "invalid kubeconfig: no user named \"nobody\" (it has: none)",
        ),
        (
            "current-context: dev\n\
             contexts: [{name: dev, context: {cluster: c}}]\n\
             clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
                .to_owned(),
            None,
            "invalid kubeconfig: context dev names no user; the API client needs credentials",
        ),
        (
            with(
                "{server: 'https://h:6443', certificate-authority-data: '%%%'}",
                "{token: abc}",
            ),
            None,
            "invalid kubeconfig (context dev): certificate-authority-data is not base64: ",
        ),
        (
            with(
                "{server: 'https://h:6443', certificate-authority-data: 'bm90IFBFTQ=='}",
                "{token: abc}",
            ),
            None,
            "invalid kubeconfig (context dev): its certificate-authority holds no CERTIFICATE \
             block",
        ),
    ];
    for (text, context, expected) in &cases {
        let message = KubeApiConfig::from_kubeconfig_str(text, *context)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(expected),
            "for {text:?}:\n  got      {message}\n  expected {expected}"
        );
        assert!(!message.contains("secret"), "{message}");
        assert_eq!(message.lines().count(), 1, "{message}");
    }
}

#[test]
fn files_are_named_when_they_cannot_be_read() {
    let dir = temp_dir();
    // A missing kubeconfig.
    let e = KubeApiConfig::from_kubeconfig(&dir.path().join("nope"), None).unwrap_err();
    assert!(
        matches!(&e, Error::ReadFile { what: "kubeconfig", path, kind: std::io::ErrorKind::NotFound, .. } if path == &dir.path().join("nope")),
        "{e:?}"
    );
    // A missing CA file, relative to the kubeconfig's folder, is read with the kubeconfig.
    let path = dir.path().join("config");
    std::fs::write(
        &path,
        with(
            "{server: 'https://h:6443', certificate-authority: pki/ca.crt}",
            "{token: abc}",
        ),
    )
    .unwrap();
    let e = KubeApiConfig::from_kubeconfig(&path, None).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "cannot read the API server CA file {}: ",
            dir.path().join("pki/ca.crt").display()
        )),
        "{e}"
    );
}

#[tokio::test]
async fn client_certificates_and_token_files_are_read_when_the_client_is_built() {
    let api = ApiServerDouble::builder()
        .accept_client_certificates("system:serviceaccount:linkerd:linkerd-identity")
        .start()
        .await;
    let dir = temp_dir();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let cluster = format!(
        "{{server: '{}', certificate-authority-data: {}}}",
        api.url(),
        b64(api.ca_pem())
    );
    let text = with(
        &cluster,
        "{client-certificate-data: 'YQ==', client-key: missing.key}",
    );
    std::fs::write(dir.path().join("config"), text).unwrap();
    let config = KubeApiConfig::from_kubeconfig(&dir.path().join("config"), None).unwrap();
    assert_eq!(config.credentials(), ApiCredentials::ClientCertificate);
    let e = KubeClient::connect(config).await.unwrap_err();
    assert!(
        matches!(
            &e,
            Error::ReadFile { what: "kubeconfig client key file", path, .. }
                if path == &dir.path().join("missing.key")
        ),
        "{e:?}"
    );

    // The certificate the double accepts, inline, as kind and kubeadm write it.
    let client = api.client_certificate().unwrap();
    let text = with(
        &cluster,
        &format!(
            "{{client-certificate-data: {}, client-key-data: {}}}",
            b64(&client.chain_pem),
            b64(&client.key_pem)
        ),
    );
    let config = KubeApiConfig::from_kubeconfig_str(&text, None).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    let client = KubeClient::connect(config).await.unwrap();
    let mut map = k8s_openapi::api::core::v1::ConfigMap::default();
    map.metadata.name = Some("m".to_owned());
    client.create(Some("linkerd"), &map).await.unwrap();
    assert!(api.requests()[0].client_certificate);
    assert_eq!(api.requests()[0].authorization(), "");
}
