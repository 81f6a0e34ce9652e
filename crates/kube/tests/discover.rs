//! Where the configuration comes from when none is named: `KUBECONFIG`, `~/.kube/config`, then
//! in-cluster, as kubectl and kube look. Each case runs [`KubeApiConfig::discover`] in a child
//! process (this test binary) with an environment of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use meshid_kube::KubeApiConfig;
use tempfile::TempDir;

/// Set in the child: the context to name (empty for none).
const CHILD: &str = "MESHID_KUBE_DISCOVER_CHILD";

/// In a child process only: discovers, and prints the outcome on one line.
#[test]
fn discover_child() {
    let Some(context) = std::env::var_os(CHILD) else {
        return;
    };
    let context = context.into_string().unwrap();
    let context = (!context.is_empty()).then_some(context.as_str());
    match KubeApiConfig::discover(context) {
        Ok(config) => println!(
            "DISCOVERED {} {:?}",
            config.api_server(),
            config.credentials()
        ),
        Err(e) => println!("REFUSED {e}"),
    }
}

/// `discover(context)` in a child process with exactly `env`: the server found and the
/// credentials, or the error.
fn discover(env: &[(&str, String)], context: &str) -> Result<String, String> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "discover_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env(CHILD, context)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The test harness prints `test discover_child ... ` before the child's own line.
    for line in stdout.lines() {
        if let Some((_, found)) = line.split_once("DISCOVERED ") {
            return Ok(found.to_owned());
        }
        if let Some((_, refused)) = line.split_once("REFUSED ") {
            return Err(refused.to_owned());
        }
    }
    panic!(
        "the child said nothing:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("meshid-kube-discover-")
        .tempdir()
        .unwrap()
}

/// A kubeconfig at `path` whose server is `server`, with a context `dev` (current) and a
/// context `<prefix>prod`.
fn kubeconfig(path: &Path, server: &str, prefix: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        format!(
            "current-context: dev\n\
             contexts: [{{name: dev, context: {{cluster: dev, user: u}}}}, \
                        {{name: {prefix}prod, context: {{cluster: {prefix}prod, user: u}}}}]\n\
             clusters: [{{name: dev, cluster: {{server: '{server}'}}}}, \
                        {{name: {prefix}prod, cluster: {{server: 'https://{prefix}prod:6443'}}}}]\n\
             users: [{{name: u, user: {{token: abc}}}}]\n"
        ),
    )
    .unwrap();
}

#[test]
fn kubeconfig_then_home_then_in_cluster() {
    let dir = temp_dir();
    let named = dir.path().join("named.yaml");
    kubeconfig(&named, "https://named:6443", "");
    let home = dir.path().join("home");
    kubeconfig(&home.join(".kube").join("config"), "https://home:6443", "");
    let pod = [
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1".to_owned()),
        ("KUBERNETES_SERVICE_PORT", "443".to_owned()),
    ];
    let with = |extra: &[(&'static str, String)]| {
        let mut env = pod.to_vec();
        env.extend_from_slice(extra);
        env
    };
    let home_var = ("HOME", home.display().to_string());
    let kubeconfig_var = ("KUBECONFIG", named.display().to_string());

    // KUBECONFIG first, even with a ~/.kube/config and in a pod; a context may be named.
    assert_eq!(
        discover(&with(&[kubeconfig_var.clone(), home_var.clone()]), "").unwrap(),
        "https://named:6443 Token"
    );
    assert_eq!(
        discover(&with(&[kubeconfig_var.clone(), home_var.clone()]), "prod").unwrap(),
        "https://prod:6443 Token"
    );

    // Then ~/.kube/config.
    assert_eq!(
        discover(&with(std::slice::from_ref(&home_var)), "").unwrap(),
        "https://home:6443 Token"
    );
    // An empty KUBECONFIG (or only separators) is as good as none.
    assert_eq!(
        discover(&with(&[("KUBECONFIG", ":".to_owned()), home_var]), "").unwrap(),
        "https://home:6443 Token"
    );

    // Then the pod's own configuration (a HOME without a kubeconfig is skipped): here, in a
    // test, without the pod's ServiceAccount mount.
    let empty_home = ("HOME", dir.path().join("nobody").display().to_string());
    match discover(&with(&[empty_home]), "") {
        Ok(found) => assert!(found.starts_with("https://10.96.0.1 "), "{found}"),
        Err(e) => assert!(
            e.starts_with(
                "cannot read the ServiceAccount namespace file \
                 /var/run/secrets/kubernetes.io/serviceaccount/namespace: "
            ) && e.ends_with(
                "; mount the pod's ServiceAccount token (automountServiceAccountToken: true)"
            ),
            "{e}"
        ),
    }
}

#[test]
fn kubeconfig_files_are_merged_as_kubectl_merges_them() {
    let dir = temp_dir();
    let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
    kubeconfig(&a, "https://a:6443", "a-");
    kubeconfig(&b, "https://b:6443", "b-");
    let both = std::env::join_paths([&a, &b])
        .unwrap()
        .into_string()
        .unwrap();
    let env = [
        ("KUBECONFIG", both),
        ("HOME", dir.path().display().to_string()),
    ];
    // The first file to set a name wins; the others add what it lacks.
    assert_eq!(discover(&env, "").unwrap(), "https://a:6443 Token");
    assert_eq!(
        discover(&env, "b-prod").unwrap(),
        "https://b-prod:6443 Token"
    );
    assert!(
        discover(&env, "c-prod")
            .unwrap_err()
            .ends_with("no context named \"c-prod\" (it has: dev, a-prod, b-prod)")
    );
}

#[test]
fn what_cannot_be_used_is_said_in_one_line() {
    let dir = temp_dir();
    let home = ("HOME", dir.path().display().to_string());
    let missing = dir.path().join("missing.yaml");
    let e = discover(
        &[("KUBECONFIG", missing.display().to_string()), home.clone()],
        "",
    )
    .unwrap_err();
    assert!(
        e.starts_with(&format!(
            "cannot read the kubeconfig {}: ",
            missing.display()
        )),
        "{e}"
    );
    // A ~/.kube/config that is there but broken is an error, not a reason to look elsewhere.
    std::fs::create_dir_all(dir.path().join(".kube")).unwrap();
    std::fs::write(dir.path().join(".kube/config"), "current-context: [").unwrap();
    let e = discover(std::slice::from_ref(&home), "").unwrap_err();
    assert!(
        e.starts_with("invalid kubeconfig ~/.kube/config: not a kubeconfig: "),
        "{e}"
    );
    std::fs::remove_file(dir.path().join(".kube/config")).unwrap();

    assert_eq!(
        discover(std::slice::from_ref(&home), "prod").unwrap_err(),
        "invalid Kubernetes API configuration: context \"prod\" was named, but there is no \
         kubeconfig (neither KUBECONFIG nor ~/.kube/config); name one explicitly"
    );
    assert_eq!(
        discover(&[home], "").unwrap_err(),
        "invalid in-cluster configuration: KUBERNETES_SERVICE_HOST is not set, so this is not \
         running in a Kubernetes pod; outside a pod, use a kubeconfig (--kubeconfig, KUBECONFIG \
         or ~/.kube/config)"
    );
}
