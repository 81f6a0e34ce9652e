//! Where the Kubernetes API server is, how it is trusted and how this process authenticates:
//! kube's `Config`, found as kubectl finds it, after meshid's refusals.

use core::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{
    AuthInfo, ExecInteractiveMode, InClusterError, Kubeconfig, KubeconfigError, LoadDataError,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use secrecy::ExposeSecret as _;

use crate::Error;

/// Where a pod finds its ServiceAccount token, namespace and the cluster CA (kube's in-cluster
/// configuration reads them from here).
pub const IN_CLUSTER_SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The default per-request timeout (connection, TLS, answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long building a client may take by default: kube runs a kubeconfig's exec credential
/// plugin then (several times), and plugins such as `aws eks get-token` take a second or two.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// The ExecCredential API versions a kubeconfig's exec plugin may speak (kubectl's).
pub const EXEC_API_VERSIONS: [&str; 2] = [
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
];

/// How this process authenticates to the API server, as a configuration says (for logs and
/// tests; the secrets stay in [`kube::Config`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiCredentials {
    /// A client certificate and key (a kubeconfig's `client-certificate[-data]` and
    /// `client-key[-data]`).
    ClientCertificate,
    /// An exec credential plugin, run by kube (a kubeconfig's `exec`).
    Exec {
        /// The plugin's command.
        command: String,
    },
    /// None: requests are anonymous.
    None,
    /// A fixed bearer token (a kubeconfig's `token`).
    Token,
    /// A bearer token read from this file, and re-read at least once a minute (the mounted
    /// ServiceAccount token, a kubeconfig's `tokenFile`).
    TokenFile(PathBuf),
}

/// Where the API server is, which CA its certificate chains to, how this process
/// authenticates (all of it kube's [`kube::Config`]), where that came from, and how long one
/// request may take.
///
/// Built from a kubeconfig ([`from_kubeconfig`](Self::from_kubeconfig)), where kubectl would
/// look ([`discover`](Self::discover)), from the pod's environment
/// ([`in_cluster`](Self::in_cluster)) or explicitly ([`new`](Self::new)); used by a
/// [`KubeClient`](crate::KubeClient). `Debug` shows no secret.
#[derive(Clone)]
#[non_exhaustive]
pub struct KubeApiConfig {
    /// kube's configuration: the cluster URL, its CA, this process's credentials.
    pub kube: kube::Config,
    /// Where it came from, for messages: `kubeconfig /root/.kube/config (context prod)`,
    /// `in-cluster configuration`, ...
    pub source: String,
    /// Per-request timeout (connection, TLS, answer). Default [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// How long building the client may take (kube runs an exec plugin then). Default
    /// [`DEFAULT_EXEC_TIMEOUT`].
    pub exec_timeout: Duration,
}

impl fmt::Debug for KubeApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeApiConfig")
            .field("api_server", &self.api_server())
            .field("source", &self.source)
            .field("credentials", &self.credentials())
            .field("timeout", &self.timeout)
            .field("exec_timeout", &self.exec_timeout)
            .finish()
    }
}

impl KubeApiConfig {
    /// A configuration around kube's `config`, named `source` in messages.
    pub fn with_kube_config(kube: kube::Config, source: impl Into<String>) -> Self {
        Self {
            kube,
            source: source.into(),
            timeout: DEFAULT_TIMEOUT,
            exec_timeout: DEFAULT_EXEC_TIMEOUT,
        }
    }

    /// An explicit configuration: the API server's `https://` URL, the CA file its
    /// certificate chains to (read now, and re-read by kube about once a minute) and a bearer
    /// token file (read when the client is built, re-read at least once a minute).
    pub fn new(
        api_server: &str,
        ca_file: impl Into<PathBuf>,
        token_file: impl Into<PathBuf>,
    ) -> Result<Self, Error> {
        let bad = |reason: &str| Error::config(format!("API server URL {api_server:?}"), reason);
        let uri: http::Uri = api_server
            .parse()
            .map_err(|e| bad(&format!("not a URL: {e}")))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad("must start with https://"));
        }
        if uri.query().is_some() {
            return Err(bad("must not have a query"));
        }
        let ca_file = ca_file.into();
        let pem = std::fs::read(&ca_file)
            .map_err(|e| Error::read_file("API server CA file", ca_file.clone(), &e))?;
        let roots = certificates(&pem, &format!("API server CA file {}", ca_file.display()))?;
        let token_file = token_file.into();
        let token_path = token_file.to_str().ok_or_else(|| {
            Error::config(
                format!("API client token file {}", token_file.display()),
                "its path is not UTF-8",
            )
        })?;
        let mut kube = kube::Config::new(uri);
        kube.root_cert = Some(roots);
        kube.root_cert_file = Some(ca_file);
        kube.auth_info.token_file = Some(token_path.to_owned());
        Ok(Self::with_kube_config(kube, "explicit configuration"))
    }

    /// kube's in-cluster configuration: `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`
    /// from the environment, the ServiceAccount token, namespace and CA from
    /// [`IN_CLUSTER_SERVICE_ACCOUNT_DIR`].
    pub fn in_cluster() -> Result<Self, Error> {
        let what = "in-cluster configuration";
        for name in ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"] {
            if std::env::var_os(name).is_none_or(|value| value.is_empty()) {
                return Err(Error::config(
                    what,
                    format!(
                        "{name} is not set, so this is not running in a Kubernetes pod; outside \
                         a pod, use a kubeconfig (--kubeconfig, KUBECONFIG or ~/.kube/config)"
                    ),
                ));
            }
        }
        let kube = kube::Config::incluster().map_err(in_cluster_error)?;
        Ok(Self::with_kube_config(kube, what))
    }

    /// A kubeconfig file's `context` (default: its `current-context`), read by kube (relative
    /// paths are taken from the file's folder) and checked by
    /// [`check_kubeconfig`](Self::check_kubeconfig). Its CA is read now; client certificates,
    /// token files and exec plugins when the client is built.
    pub fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<Self, Error> {
        let source = format!("kubeconfig {}", path.display());
        let kubeconfig = Kubeconfig::read_from(path).map_err(|e| kubeconfig_error(e, &source))?;
        Self::from_parsed_kubeconfig(kubeconfig, context, &source)
    }

    /// [`from_kubeconfig`](Self::from_kubeconfig) for kubeconfig `text` (relative paths are
    /// taken from the current folder).
    pub fn from_kubeconfig_str(text: &str, context: Option<&str>) -> Result<Self, Error> {
        let source = "kubeconfig";
        let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| kubeconfig_error(e, source))?;
        Self::from_parsed_kubeconfig(kubeconfig, context, source)
    }

    /// The configuration where kubectl and kube's `Config::infer` look when none is named: the
    /// kubeconfig files `KUBECONFIG` names (merged by kube as kubectl merges them), else
    /// `~/.kube/config` if it exists, else the in-cluster configuration. `context` picks a
    /// kubeconfig context (default: its `current-context`); naming one when no kubeconfig is
    /// found is an error.
    ///
    /// Unlike `Config::infer`, a kubeconfig that is found but broken is an error, not a reason
    /// to fall back to the in-cluster configuration: the configuration named is the one used.
    pub fn discover(context: Option<&str>) -> Result<Self, Error> {
        if let Some(list) = std::env::var_os("KUBECONFIG")
            && std::env::split_paths(&list).any(|path| !path.as_os_str().is_empty())
        {
            let source = format!("kubeconfig {} (KUBECONFIG)", list.to_string_lossy());
            let kubeconfig = Kubeconfig::from_env()
                .map_err(|e| kubeconfig_error(e, &source))?
                .unwrap_or_default();
            return Self::from_parsed_kubeconfig(kubeconfig, context, &source);
        }
        let source = "kubeconfig ~/.kube/config";
        match Kubeconfig::read() {
            Ok(kubeconfig) => return Self::from_parsed_kubeconfig(kubeconfig, context, source),
            Err(KubeconfigError::FindPath) => {}
            Err(KubeconfigError::ReadConfig(e, _)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(kubeconfig_error(e, source)),
        }
        if let Some(context) = context {
            return Err(Error::config(
                "Kubernetes API configuration",
                format!(
                    "context {context:?} was named, but there is no kubeconfig (neither \
                     KUBECONFIG nor ~/.kube/config); name one explicitly"
                ),
            ));
        }
        Self::in_cluster()
    }

    /// A kubeconfig kube has read (from `source`, named in messages): checked by
    /// [`check_kubeconfig`](Self::check_kubeconfig), its exec plugin set to run without a
    /// terminal, and turned into kube's [`kube::Config`] for `context`.
    pub fn from_parsed_kubeconfig(
        mut kubeconfig: Kubeconfig,
        context: Option<&str>,
        source: &str,
    ) -> Result<Self, Error> {
        let name = Self::check_kubeconfig(&kubeconfig, context, source)?;
        let what = format!("{source} (context {name})");
        kubeconfig.current_context = Some(name);
        // A service has no terminal: client-go runs an `IfAvailable` plugin non-interactively
        // there, and kube would otherwise hand it this process's standard input.
        for user in &mut kubeconfig.auth_infos {
            if let Some(exec) = user.auth_info.as_mut().and_then(|a| a.exec.as_mut()) {
                exec.interactive_mode = Some(ExecInteractiveMode::Never);
            }
        }
        let kube = kube::Config::try_from(kubeconfig).map_err(|e| kubeconfig_error(e, &what))?;
        if kube.root_cert.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::config(
                what,
                "its certificate-authority holds no CERTIFICATE block",
            ));
        }
        Ok(Self::with_kube_config(kube, what))
    }

    /// What meshid refuses in a kubeconfig before kube reads any file it names; returns the
    /// context to use (`context`, else the `current-context`).
    ///
    /// Refused, by name: a context, cluster or user that is not there; a server that is not
    /// `https://`; `insecure-skip-tls-verify: true`; a user without credentials, with basic
    /// authentication, with an auth-provider plugin, with a client certificate but no key (or
    /// the reverse), with an empty token, or with an exec plugin and another credential; an
    /// exec plugin without a command, speaking another version than [`EXEC_API_VERSIONS`], or
    /// with `interactiveMode: Always` (it needs a terminal the service does not have).
    pub fn check_kubeconfig(
        kubeconfig: &Kubeconfig,
        context: Option<&str>,
        source: &str,
    ) -> Result<String, Error> {
        let bad = |reason: String| Error::config(source, reason);
        let name = match context.or(kubeconfig.current_context.as_deref()) {
            Some(name) if !name.is_empty() => name,
            _ => return Err(bad("it has no current-context; name a context".to_owned())),
        };
        let Some(entry) = kubeconfig.contexts.iter().find(|c| c.name == name) else {
            let known = known(kubeconfig.contexts.iter().map(|c| c.name.as_str()));
            return Err(bad(format!("no context named {name:?} (it has: {known})")));
        };
        let Some(found) = &entry.context else {
            return Err(bad(format!("context {name} has no context mapping")));
        };

        let cluster_name = &found.cluster;
        let at = format!("cluster {cluster_name}");
        let Some(cluster) = kubeconfig
            .clusters
            .iter()
            .find(|c| &c.name == cluster_name)
            .and_then(|c| c.cluster.as_ref())
        else {
            let known = known(kubeconfig.clusters.iter().map(|c| c.name.as_str()));
            return Err(bad(format!(
                "no cluster named {cluster_name:?} (it has: {known})"
            )));
        };
        if cluster.insecure_skip_tls_verify == Some(true) {
            return Err(bad(format!(
                "{at} sets insecure-skip-tls-verify: the API server's certificate is always \
                 verified; give its CA (certificate-authority or certificate-authority-data)"
            )));
        }
        match cluster.server.as_deref() {
            None | Some("") => return Err(bad(format!("{at} has no server"))),
            Some(server) if !server.starts_with("https://") => {
                return Err(bad(format!(
                    "{at} has server {server:?}: the Kubernetes API client speaks https only"
                )));
            }
            Some(_) => {}
        }

        let user_name = match found.user.as_deref() {
            Some(user) if !user.is_empty() => user,
            _ => {
                return Err(bad(format!(
                    "context {name} names no user; the API client needs credentials (a token, \
                     tokenFile, client certificate or exec plugin)"
                )));
            }
        };
        let Some(user) = kubeconfig.auth_infos.iter().find(|u| u.name == user_name) else {
            let known = known(kubeconfig.auth_infos.iter().map(|u| u.name.as_str()));
            return Err(bad(format!(
                "no user named {user_name:?} (it has: {known})"
            )));
        };
        let empty = AuthInfo::default();
        check_user(
            user.auth_info.as_ref().unwrap_or(&empty),
            &format!("user {user_name}"),
        )
        .map_err(bad)?;
        Ok(name.to_owned())
    }

    /// The API server's base URL, without a trailing `/`.
    pub fn api_server(&self) -> String {
        self.kube
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned()
    }

    /// How this process authenticates, as the configuration says.
    pub fn credentials(&self) -> ApiCredentials {
        let auth = &self.kube.auth_info;
        if let Some(exec) = &auth.exec {
            ApiCredentials::Exec {
                command: exec.command.clone().unwrap_or_default(),
            }
        } else if auth.token.is_some() {
            ApiCredentials::Token
        } else if let Some(file) = &auth.token_file {
            ApiCredentials::TokenFile(file.into())
        } else if auth.client_certificate.is_some() || auth.client_certificate_data.is_some() {
            ApiCredentials::ClientCertificate
        } else {
            ApiCredentials::None
        }
    }
}

/// A kubeconfig user's credentials, refused where they cannot work, or would be ambiguous.
fn check_user(user: &AuthInfo, at: &str) -> Result<(), String> {
    if user.auth_provider.is_some() {
        return Err(format!(
            "{at} uses an auth-provider plugin, which kubectl itself has removed; use an exec \
             credential plugin (for example gke-gcloud-auth-plugin or kubelogin), a token, \
             tokenFile or client certificate"
        ));
    }
    if user.username.is_some() || user.password.is_some() {
        return Err(format!(
            "{at} uses basic authentication, which Kubernetes no longer supports; use a token, \
             tokenFile or client certificate"
        ));
    }
    let certificate = user.client_certificate.is_some() || user.client_certificate_data.is_some();
    let key = user.client_key.is_some() || user.client_key_data.is_some();
    if let Some(exec) = &user.exec {
        let others = [
            ("token", user.token.is_some()),
            ("tokenFile", user.token_file.is_some()),
            ("a client certificate", certificate || key),
        ];
        if let Some((other, _)) = others.iter().find(|(_, set)| *set) {
            return Err(format!(
                "{at} sets both exec and {other}; keep one way to authenticate"
            ));
        }
        let at = format!("{at} exec");
        match exec.api_version.as_deref() {
            Some(version) if EXEC_API_VERSIONS.contains(&version) => {}
            version => {
                return Err(format!(
                    "{at} has apiVersion {:?}; supported: {}",
                    version.unwrap_or_default(),
                    EXEC_API_VERSIONS.join(", ")
                ));
            }
        }
        if exec.command.as_deref().is_none_or(str::is_empty) {
            return Err(format!("{at} has no command"));
        }
        if exec.interactive_mode == Some(ExecInteractiveMode::Always) {
            return Err(format!(
                "{at} has interactiveMode Always: the plugin needs a terminal, and this client \
                 runs it without one; log in first, or use a plugin that can run unattended"
            ));
        }
        return Ok(());
    }
    match (certificate, key) {
        (true, false) => return Err(format!("{at} has a client certificate but no client key")),
        (false, true) => return Err(format!("{at} has a client key but no client certificate")),
        _ => {}
    }
    if let Some(token) = &user.token
        && token.expose_secret().trim().is_empty()
    {
        return Err(format!("{at} has an empty token"));
    }
    if !certificate && user.token.is_none() && user.token_file.is_none() {
        return Err(format!(
            "{at} has no credentials this client can use (client-certificate + client-key, \
             token, tokenFile or exec)"
        ));
    }
    Ok(())
}

/// `a, b, c`, or `none`.
fn known<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The CA certificates of a PEM file; at least one.
fn certificates(pem: &[u8], what: &str) -> Result<Vec<Vec<u8>>, Error> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .map(|der| der.map(|der| der.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::config(what, format!("not PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(Error::config(what, "it holds no CERTIFICATE block"));
    }
    Ok(certificates)
}

/// kube's kubeconfig errors, saying which file and what to change. A YAML error is reduced to
/// its first line: the parser may quote the text around the error, which can be a token.
pub(crate) fn kubeconfig_error(e: KubeconfigError, what: &str) -> Error {
    let data = |e: LoadDataError, file_what: &'static str, data_field: &str| match e {
        LoadDataError::ReadFile(io, path) => Error::read_file(file_what, path, &io),
        LoadDataError::DecodeBase64(e) => {
            Error::config(what, format!("{data_field} is not base64: {e}"))
        }
        LoadDataError::NoBase64DataOrFile => {
            Error::config(what, format!("{data_field} has no data or file"))
        }
    };
    match e {
        KubeconfigError::ReadConfig(io, path) => Error::read_file("kubeconfig", path, &io),
        KubeconfigError::Parse(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("unreadable");
            Error::config(what, format!("not a kubeconfig: {first}"))
        }
        KubeconfigError::LoadCertificateAuthority(e) => {
            data(e, "API server CA file", "certificate-authority-data")
        }
        KubeconfigError::LoadClientCertificate(e) => data(
            e,
            "kubeconfig client certificate file",
            "client-certificate-data",
        ),
        KubeconfigError::LoadClientKey(e) => {
            data(e, "kubeconfig client key file", "client-key-data")
        }
        KubeconfigError::ParseCertificates(e) => {
            Error::config(what, format!("its certificate-authority is not PEM: {e}"))
        }
        KubeconfigError::ParseClusterUrl(e) => {
            Error::config(what, format!("its cluster's server is not a URL: {e}"))
        }
        KubeconfigError::ParseProxyUrl(e) => Error::config(
            what,
            format!("the proxy URL (proxy-url, or HTTPS_PROXY) is not a URL: {e}"),
        ),
        other => Error::config(what, other.to_string()),
    }
}

/// kube's in-cluster errors, saying what the pod lacks.
fn in_cluster_error(e: InClusterError) -> Error {
    let what = "in-cluster configuration";
    let dir = Path::new(IN_CLUSTER_SERVICE_ACCOUNT_DIR);
    let unmounted = |io: &std::io::Error| {
        format!("{io}; mount the pod's ServiceAccount token (automountServiceAccountToken: true)")
    };
    match e {
        InClusterError::ReadDefaultNamespace(io) => Error::ReadFile {
            what: "ServiceAccount namespace file",
            path: dir.join("namespace"),
            kind: io.kind(),
            reason: unmounted(&io),
        },
        InClusterError::ReadCertificateBundle(io) => Error::ReadFile {
            what: "API server CA file",
            path: dir.join("ca.crt"),
            kind: io.kind(),
            reason: unmounted(&io),
        },
        InClusterError::ParseCertificates(e) => Error::config(
            format!("API server CA file {}", dir.join("ca.crt").display()),
            format!("not PEM: {e}"),
        ),
        InClusterError::ParseClusterPort(e) => Error::config(
            what,
            format!("KUBERNETES_SERVICE_PORT is not a port number: {e}"),
        ),
        InClusterError::ParseClusterUrl(e) => Error::config(
            what,
            format!("KUBERNETES_SERVICE_HOST does not make a URL: {e}"),
        ),
        other => Error::config(what, other.to_string()),
    }
}
