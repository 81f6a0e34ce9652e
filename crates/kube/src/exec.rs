//! Kubeconfig exec credential plugins (`client.authentication.k8s.io`), as kubectl runs them:
//! `aws eks get-token`, `gke-gcloud-auth-plugin`, `kubelogin` and the like.

use core::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::AsyncReadExt as _;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::Error;

/// The ExecCredential API versions a plugin may speak.
pub const EXEC_API_VERSIONS: [&str; 2] = [
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
];

/// The most a plugin may write to standard output.
const MAX_OUTPUT_LEN: usize = 1024 * 1024;

/// The longest part of a plugin's standard error quoted in an error.
const MAX_QUOTED_LEN: usize = 300;

/// A token is run for again this long before its `expirationTimestamp`, so a request never
/// leaves with a token about to expire.
const EXPIRY_MARGIN: time::Duration = time::Duration::seconds(10);

/// A kubeconfig user's `exec` section: a command that prints an `ExecCredential` holding a
/// bearer token or a client certificate and key.
///
/// The command runs without a terminal (`interactive: false`) and with the environment of
/// this process plus [`env`](Self::env); its credential is kept until its
/// `expirationTimestamp` (or for the life of the client when it has none) and the command runs
/// again when the API server answers 401. A new client certificate is presented on new
/// connections only: the connections made with the previous one are not reused. `Debug` does
/// not show the values of [`env`](Self::env).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecPlugin {
    /// The ExecCredential version it speaks (one of [`EXEC_API_VERSIONS`]).
    pub api_version: String,
    /// The command: a path (relative ones are taken from the kubeconfig's folder), or a bare
    /// name looked up on `PATH`.
    pub command: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables set for it, on top of this process's.
    pub env: Vec<(String, String)>,
    /// What to tell the user when the command cannot be found (the kubeconfig's
    /// `installHint`).
    pub install_hint: Option<String>,
    /// Whether the plugin is told the cluster's server and CA in `KUBERNETES_EXEC_INFO`
    /// (`provideClusterInfo`).
    pub provide_cluster_info: bool,
}

impl ExecPlugin {
    /// A plugin speaking `client.authentication.k8s.io/v1`, running `command` with `args`.
    pub fn new(command: impl Into<PathBuf>, args: Vec<String>) -> Self {
        Self {
            api_version: EXEC_API_VERSIONS[0].to_owned(),
            command: command.into(),
            args,
            env: Vec::new(),
            install_hint: None,
            provide_cluster_info: false,
        }
    }
}

impl fmt::Debug for ExecPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ExecPlugin")
            .field("api_version", &self.api_version)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &env)
            .field("install_hint", &self.install_hint)
            .field("provide_cluster_info", &self.provide_cluster_info)
            .finish()
    }
}

/// What the plugin is told about the cluster (`spec.cluster`).
#[derive(Clone, Debug)]
pub(crate) struct ClusterInfo {
    pub(crate) server: String,
    /// The CA, PEM.
    pub(crate) ca_pem: Vec<u8>,
}

/// What a plugin printed: a bearer token or a client certificate.
#[derive(Clone)]
pub(crate) enum Credential {
    /// `status.token`.
    Token(Zeroizing<String>),
    /// `status.clientCertificateData` + `status.clientKeyData`, ready for rustls.
    Certificate(Arc<CertifiedKey>),
}

impl Credential {
    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Token(a), Self::Token(b)) => **a == **b,
            (Self::Certificate(a), Self::Certificate(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// A credential a plugin printed, and until when it may be used.
struct Held {
    credential: Credential,
    expires: Option<OffsetDateTime>,
}

/// Runs a plugin and keeps its credential; one run at a time.
pub(crate) struct ExecCredentials {
    plugin: ExecPlugin,
    cluster: ClusterInfo,
    held: Mutex<Option<Held>>,
}

/// A credential to present, and whether it was just made (so a 401 is not worth another run).
pub(crate) struct Current {
    pub(crate) credential: Credential,
    pub(crate) fresh: bool,
}

impl ExecCredentials {
    pub(crate) fn new(plugin: ExecPlugin, cluster: ClusterInfo) -> Self {
        Self {
            plugin,
            cluster,
            held: Mutex::new(None),
        }
    }

    /// The credential in hand if it is still good, else a new one from the plugin.
    pub(crate) async fn current(&self, now: OffsetDateTime) -> Result<Current, Error> {
        let mut held = self.held.lock().await;
        if let Some(held) = held.as_ref()
            && held.expires.is_none_or(|at| now < at - EXPIRY_MARGIN)
        {
            return Ok(Current {
                credential: held.credential.clone(),
                fresh: false,
            });
        }
        *held = None;
        let new = self.run().await?;
        let current = Current {
            credential: new.credential.clone(),
            fresh: true,
        };
        *held = Some(new);
        Ok(current)
    }

    /// Forgets `credential` (the API server refused it), unless another caller replaced it
    /// already.
    pub(crate) async fn refused(&self, credential: &Credential) {
        let mut held = self.held.lock().await;
        if held
            .as_ref()
            .is_some_and(|held| held.credential.same(credential))
        {
            *held = None;
        }
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::ExecPlugin {
            command: self.plugin.command.display().to_string(),
            reason: reason.into(),
        }
    }

    async fn run(&self) -> Result<Held, Error> {
        let plugin = &self.plugin;
        let mut command = tokio::process::Command::new(&plugin.command);
        command
            .args(&plugin.args)
            .envs(plugin.env.iter().map(|(k, v)| (k, v)))
            .env("KUBERNETES_EXEC_INFO", self.exec_info())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A request that times out drops this future: the plugin goes with it.
            .kill_on_drop(true);
        let mut child = spawn(&mut command).await.map_err(|e| {
            let mut reason = format!("cannot run it: {e}");
            if e.kind() == std::io::ErrorKind::NotFound
                && let Some(hint) = &plugin.install_hint
            {
                reason.push_str("; ");
                reason.push_str(hint.trim());
            }
            self.error(reason)
        })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(self.error("its output could not be captured"));
        };
        let mut out = Zeroizing::new(Vec::new());
        let mut err = Vec::new();
        let limit = u64::try_from(MAX_OUTPUT_LEN + 1).unwrap_or(u64::MAX);
        let (mut stdout, mut stderr) = (stdout.take(limit), stderr.take(limit));
        let (read_out, _) =
            tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err),);
        read_out.map_err(|e| self.error(format!("cannot read its output: {e}")))?;
        if out.len() > MAX_OUTPUT_LEN {
            let _ = child.kill().await;
            return Err(self.error(format!(
                "it printed more than {MAX_OUTPUT_LEN} bytes; an ExecCredential is small"
            )));
        }
        let status = child
            .wait()
            .await
            .map_err(|e| self.error(format!("cannot wait for it: {e}")))?;
        if !status.success() {
            let stderr = quote(&err);
            return Err(self.error(if stderr.is_empty() {
                format!("it exited with {status}")
            } else {
                format!("it exited with {status}: {stderr}")
            }));
        }
        self.parse(&out)
    }

    /// `KUBERNETES_EXEC_INFO`: the ExecCredential the plugin reads its instructions from.
    fn exec_info(&self) -> String {
        let mut spec = serde_json::json!({ "interactive": false });
        if self.plugin.provide_cluster_info
            && let Some(spec) = spec.as_object_mut()
        {
            spec.insert(
                "cluster".to_owned(),
                serde_json::json!({
                    "server": self.cluster.server,
                    "certificate-authority-data": STANDARD.encode(&self.cluster.ca_pem),
                }),
            );
        }
        serde_json::json!({
            "apiVersion": self.plugin.api_version,
            "kind": "ExecCredential",
            "spec": spec,
        })
        .to_string()
    }

    /// The credential of the ExecCredential the plugin printed. Messages never quote the
    /// output: it holds the secret.
    fn parse(&self, out: &[u8]) -> Result<Held, Error> {
        let credential: serde_json::Value = serde_json::from_slice(out).map_err(|e| {
            self.error(format!(
                "its output is not an ExecCredential JSON document ({} at line {} column {})",
                classify(&e),
                e.line(),
                e.column()
            ))
        })?;
        if credential["kind"] != "ExecCredential" {
            return Err(self.error("its output is not an ExecCredential (kind)"));
        }
        let api_version = credential["apiVersion"].as_str().unwrap_or_default();
        if api_version != self.plugin.api_version {
            return Err(self.error(format!(
                "it answered with apiVersion {api_version:?}, not the {:?} it was asked for",
                self.plugin.api_version
            )));
        }
        let status = &credential["status"];
        let text = |field: &str| status[field].as_str().filter(|v| !v.trim().is_empty());
        let credential = match (
            text("token"),
            text("clientCertificateData"),
            text("clientKeyData"),
        ) {
            (Some(token), None, None) => Credential::Token(Zeroizing::new(token.trim().to_owned())),
            (None, Some(chain), Some(key)) => Credential::Certificate(
                certified_key(chain.as_bytes(), key.as_bytes())
                    .map_err(|reason| self.error(format!("its client certificate {reason}")))?,
            ),
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(self.error(
                    "its ExecCredential has both status.token and a client certificate; it \
                     must return one",
                ));
            }
            (None, Some(_), None) => {
                return Err(
                    self.error("its ExecCredential has clientCertificateData but no clientKeyData")
                );
            }
            (None, None, Some(_)) => {
                return Err(
                    self.error("its ExecCredential has clientKeyData but no clientCertificateData")
                );
            }
            (None, None, None) => {
                return Err(self.error(
                    "its ExecCredential has neither status.token nor \
                     status.clientCertificateData and clientKeyData",
                ));
            }
        };
        let expires = match &status["expirationTimestamp"] {
            serde_json::Value::Null => None,
            serde_json::Value::String(at) => {
                Some(OffsetDateTime::parse(at, &Rfc3339).map_err(|e| {
                    self.error(format!(
                        "its status.expirationTimestamp {at:?} is not an RFC 3339 time: {e}"
                    ))
                })?)
            }
            _ => {
                return Err(self.error("its status.expirationTimestamp is not a string"));
            }
        };
        Ok(Held {
            credential,
            expires,
        })
    }
}

/// A client certificate chain and key (PEM) ready for rustls, or what is wrong with them.
pub(crate) fn certified_key(chain_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let reason = |e: Error| match e {
        Error::Config { what, reason } => format!("({what}) is not usable: {reason}"),
        other => format!("is not usable: {other}"),
    };
    let (chain, key) = crate::client::client_certificate(chain_pem, key_pem).map_err(reason)?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("key is not usable: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

/// Starts `command`. A plugin binary that was just written (an update, or a test's script)
/// can be briefly busy while another thread's fork still holds it open for writing; that is
/// retried a few times.
async fn spawn(command: &mut tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 5 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            result => return result,
        }
    }
}

/// What kind of JSON error, without the text serde_json quotes from the input.
fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "unexpected end",
    }
}

/// Standard error for a message: trimmed, control characters removed, at most 300 characters.
fn quote(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let chars: Vec<char> = text.trim().chars().filter(|c| !c.is_control()).collect();
    let mut quoted: String = chars.iter().take(MAX_QUOTED_LEN).collect();
    if chars.len() > MAX_QUOTED_LEN {
        quoted.push('…');
    }
    quoted
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use time::macros::datetime;

    use super::*;

    fn credentials(api_version: &str) -> ExecCredentials {
        let mut plugin = ExecPlugin::new("plugin", Vec::new());
        plugin.api_version = api_version.to_owned();
        ExecCredentials::new(
            plugin,
            ClusterInfo {
                server: "https://h:6443".to_owned(),
                ca_pem: b"PEM".to_vec(),
            },
        )
    }

    fn refused(out: &str) -> String {
        match credentials(EXEC_API_VERSIONS[0]).parse(out.as_bytes()) {
            Ok(_) => panic!("accepted {out}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn exec_credentials_are_read_strictly_and_never_quoted() {
        let ok = credentials(EXEC_API_VERSIONS[1])
            .parse(
                br#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",
                    "status":{"token":"k8s-aws-v1.secret","expirationTimestamp":"2026-06-01T12:15:00Z"}}"#,
            )
            .unwrap();
        assert!(matches!(&ok.credential, Credential::Token(t) if **t == "k8s-aws-v1.secret"));
        assert_eq!(ok.expires, Some(datetime!(2026-06-01 12:15 UTC)));

        let v1 =
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":"#;
        let rows = [
            (
                "token: secret".to_owned(),
                "the kubeconfig exec credential plugin plugin failed: its output is not an \
                 ExecCredential JSON document (syntax error at line 1 column 2)",
            ),
            (
                r#"{"kind":"Other","apiVersion":"client.authentication.k8s.io/v1"}"#.to_owned(),
                "the kubeconfig exec credential plugin plugin failed: its output is not an \
                 ExecCredential (kind)",
            ),
            (
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","status":{"token":"secret"}}"#
                    .to_owned(),
                "the kubeconfig exec credential plugin plugin failed: it answered with \
                 apiVersion \"client.authentication.k8s.io/v1beta1\", not the \
                 \"client.authentication.k8s.io/v1\" it was asked for",
            ),
            (
                format!("{v1}{{}}}}"),
                "the kubeconfig exec credential plugin plugin failed: its ExecCredential has \
                 neither status.token nor status.clientCertificateData and clientKeyData",
            ),
            (
                format!(r#"{v1}{{"token":"  "}}}}"#),
                "the kubeconfig exec credential plugin plugin failed: its ExecCredential has \
                 neither status.token nor status.clientCertificateData and clientKeyData",
            ),
            (
                format!(r#"{v1}{{"clientCertificateData":"C","clientKeyData":"secret"}}}}"#),
                "the kubeconfig exec credential plugin plugin failed: its client certificate \
                 (API client certificate) is not usable: it holds no CERTIFICATE block",
            ),
            (
                format!(r#"{v1}{{"token":"secret","clientCertificateData":"C","clientKeyData":"K"}}}}"#),
                "the kubeconfig exec credential plugin plugin failed: its ExecCredential has \
                 both status.token and a client certificate; it must return one",
            ),
            (
                format!(r#"{v1}{{"clientCertificateData":"C"}}}}"#),
                "the kubeconfig exec credential plugin plugin failed: its ExecCredential has \
                 clientCertificateData but no clientKeyData",
            ),
            (
                format!(r#"{v1}{{"clientKeyData":"secret"}}}}"#),
                "the kubeconfig exec credential plugin plugin failed: its ExecCredential has \
                 clientKeyData but no clientCertificateData",
            ),
            (
                format!(r#"{v1}{{"token":"secret","expirationTimestamp":"tomorrow"}}}}"#),
                "the kubeconfig exec credential plugin plugin failed: its \
                 status.expirationTimestamp \"tomorrow\" is not an RFC 3339 time: the 'year' \
                 component could not be parsed",
            ),
            (
                format!(r#"{v1}{{"token":"secret","expirationTimestamp":5}}}}"#),
                "the kubeconfig exec credential plugin plugin failed: its \
                 status.expirationTimestamp is not a string",
            ),
        ];
        for (out, message) in rows {
            let got = refused(&out);
            assert_eq!(got, message, "for {out}");
            assert!(!got.contains("secret"), "{got}");
        }
    }

    #[test]
    fn the_plugin_is_told_the_cluster_only_when_asked() {
        let mut exec = credentials(EXEC_API_VERSIONS[0]);
        let info: serde_json::Value = serde_json::from_str(&exec.exec_info()).unwrap();
        assert_eq!(
            info,
            serde_json::json!({
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "spec": {"interactive": false},
            })
        );
        exec.plugin.provide_cluster_info = true;
        let info: serde_json::Value = serde_json::from_str(&exec.exec_info()).unwrap();
        assert_eq!(info["spec"]["cluster"]["server"], "https://h:6443");
        assert_eq!(
            info["spec"]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
    }

    #[test]
    fn debug_shows_variable_names_only() {
        let mut plugin = ExecPlugin::new("aws", vec!["eks".to_owned()]);
        plugin
            .env
            .push(("AWS_SECRET".to_owned(), "hunter2".to_owned()));
        let debug = format!("{plugin:?}");
        assert!(debug.contains("AWS_SECRET"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
