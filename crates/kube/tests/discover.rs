//! Where the configuration comes from when none is named: `KUBECONFIG`, `~/.kube/config`, then
//! in-cluster, as kubectl and Linkerd look.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;

use meshid_kube::{ApiCredentials, KubeApiConfig};
use tempfile::TempDir;

fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("meshid-kube-discover-")
        .tempdir()
        .unwrap()
}

/// A kubeconfig at `path` whose server is `server`, with a context `dev` (current) and `prod`.
fn kubeconfig(path: &Path, server: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        format!(
            "current-context: dev\n\
             contexts: [{{name: dev, context: {{cluster: dev, user: u}}}}, \
                        {{name: prod, context: {{cluster: prod, user: u}}}}]\n\
             clusters: [{{name: dev, cluster: {{server: '{server}', certificate-authority: ca.crt}}}}, \
                        {{name: prod, cluster: {{server: 'https://prod:6443', certificate-authority: ca.crt}}}}]\n\
             users: [{{name: u, user: {{token: abc}}}}]\n"
        ),
    )
    .unwrap();
}

/// A pod's ServiceAccount folder.
fn service_account(dir: &Path) -> std::path::PathBuf {
    let sa = dir.join("serviceaccount");
    std::fs::create_dir_all(&sa).unwrap();
    std::fs::write(sa.join("token"), "pod-token").unwrap();
    sa
}

fn discover(
    env: &[(&str, String)],
    sa: &Path,
    context: Option<&str>,
) -> Result<KubeApiConfig, String> {
    let env: HashMap<&str, String> = env.iter().cloned().collect();
    KubeApiConfig::discover_with(|name| env.get(name).cloned(), sa, context)
        .map_err(|e| e.to_string())
}

#[test]
fn kubeconfig_then_home_then_in_cluster() {
    let dir = temp_dir();
    let sa = service_account(dir.path());
    let named = dir.path().join("named.yaml");
    kubeconfig(&named, "https://named:6443");
    let home = dir.path().join("home");
    kubeconfig(&home.join(".kube").join("config"), "https://home:6443");
    let pod = [
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1".to_owned()),
        ("KUBERNETES_SERVICE_PORT", "443".to_owned()),
    ];
    fn with<'a>(pod: &[(&'a str, String)], extra: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
        let mut env = pod.to_vec();
        env.extend_from_slice(extra);
        env
    }
    let home_var = ("HOME", home.display().to_string());
    let kubeconfig_var = ("KUBECONFIG", named.display().to_string());

    // KUBECONFIG first, even with a ~/.kube/config and in a pod; a context may be named.
    let config = discover(
        &with(&pod, &[kubeconfig_var.clone(), home_var.clone()]),
        &sa,
        None,
    )
    .unwrap();
    assert_eq!(config.api_server, "https://named:6443");
    assert_eq!(
        config.credentials,
        ApiCredentials::Token("abc".to_owned().into())
    );
    let config = discover(
        &with(&pod, std::slice::from_ref(&kubeconfig_var)),
        &sa,
        Some("prod"),
    )
    .unwrap();
    assert_eq!(config.api_server, "https://prod:6443");

    // Then ~/.kube/config.
    let config = discover(&with(&pod, std::slice::from_ref(&home_var)), &sa, None).unwrap();
    assert_eq!(config.api_server, "https://home:6443");
    // An empty KUBECONFIG (or only separators) is as good as none.
    let config = discover(
        &with(&pod, &[("KUBECONFIG", ":".to_owned()), home_var]),
        &sa,
        None,
    )
    .unwrap();
    assert_eq!(config.api_server, "https://home:6443");

    // Then the pod's own configuration (a HOME without a kubeconfig is skipped).
    let empty_home = ("HOME", dir.path().join("nobody").display().to_string());
    let config = discover(&with(&pod, &[empty_home]), &sa, None).unwrap();
    assert_eq!(config.api_server, "https://10.96.0.1:443");
    assert_eq!(
        config.credentials,
        ApiCredentials::TokenFile(sa.join("token"))
    );
}

#[test]
fn what_cannot_be_used_is_said_in_one_line() {
    let dir = temp_dir();
    let sa = service_account(dir.path());
    let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
    kubeconfig(&a, "https://a:6443");
    kubeconfig(&b, "https://b:6443");
    let both = std::env::join_paths([&a, &b])
        .unwrap()
        .into_string()
        .unwrap();
    assert_eq!(
        discover(&[("KUBECONFIG", both)], &sa, None).unwrap_err(),
        "invalid KUBECONFIG: it names 2 files, and meshid reads one kubeconfig: name the one to \
         use explicitly (--kubeconfig), or merge them into one with `kubectl config view \
         --flatten`"
    );
    let missing = dir.path().join("missing.yaml");
    assert!(
        discover(&[("KUBECONFIG", missing.display().to_string())], &sa, None)
            .unwrap_err()
            .starts_with(&format!(
                "cannot read the kubeconfig {}: ",
                missing.display()
            ))
    );
    assert_eq!(
        discover(&[], &sa, Some("prod")).unwrap_err(),
        "invalid Kubernetes API configuration: context \"prod\" was named, but there is no \
         kubeconfig (neither KUBECONFIG nor ~/.kube/config); name one explicitly"
    );
    assert!(discover(&[], &sa, None).unwrap_err().contains(
        "KUBERNETES_SERVICE_HOST is not set, so this is not running in a Kubernetes pod"
    ));
}
