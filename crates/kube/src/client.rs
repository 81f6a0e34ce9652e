//! kube's client, bounded in time and size, creating typed objects, with exec credentials
//! renewed when the API server refuses them or their certificate expires.

use core::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::StatusCode;
use http_body_util::{BodyExt as _, Limited};
use kube::client::AuthError;
use kube::core::params::PostParams;
use meshid_policy::{Clock, SystemClock};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, ExecProblem, KubeApiConfig, config::kubeconfig_error};

/// The longest answer accepted from the API server, in bytes (1 MiB).
pub const MAX_RESPONSE_LEN: usize = 1024 * 1024;

/// The longest part of an answer (or of an exec plugin's standard error) quoted in an error.
const MAX_QUOTED_LEN: usize = 300;

/// A client certificate printed by an exec plugin is replaced this long before it expires.
const CERTIFICATE_MARGIN: time::Duration = time::Duration::seconds(10);

/// kube's [`kube::Client`] for a [`KubeApiConfig`], as meshid uses it.
///
/// - Every request is bounded by the configuration's timeout ([`Error::Timeout`]) and every
///   answer by [`MAX_RESPONSE_LEN`]; kube's own retries of 429/503/504 are off (meshid paces
///   its calls, and its callers retry).
/// - Objects are created typed ([`create`](Self::create)), through kube's request builder.
/// - With an exec credential plugin: when the API server answers 401 to a credential that
///   was not just made, the client is built anew (kube runs the plugin again) and the request
///   sent once more, as kubectl does; a client certificate the plugin printed is replaced 10 s
///   before its `expirationTimestamp`, read on the injected [`Clock`]. Tokens with an
///   `expirationTimestamp` are renewed by kube a minute before they expire.
///
/// `Debug` shows no secret.
pub struct KubeClient {
    config: KubeApiConfig,
    current: ArcSwap<Built>,
    /// One rebuild at a time.
    rebuilding: tokio::sync::Mutex<()>,
    clock: Arc<dyn Clock>,
}

/// A kube client and how many rebuilds preceded it.
struct Built {
    client: kube::Client,
    generation: u64,
}

/// The status and body of an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body, at most [`MAX_RESPONSE_LEN`] bytes.
    pub body: Vec<u8>,
}

impl KubeClient {
    /// Builds kube's client for `config`: reads the client certificate and token files it
    /// names, and runs its exec plugin (kube runs it three times while building), within
    /// the configuration's `exec_timeout`. Must run inside a Tokio runtime.
    pub async fn connect(config: KubeApiConfig) -> Result<Self, Error> {
        for (name, value) in [
            ("request timeout", config.timeout),
            ("exec timeout", config.exec_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::config(
                    "Kubernetes API configuration",
                    format!("the {name} must be positive"),
                ));
            }
        }
        let client = build(&config, config.exec_timeout).await?;
        Ok(Self {
            config,
            current: ArcSwap::from_pointee(Built {
                client,
                generation: 0,
            }),
            rebuilding: tokio::sync::Mutex::new(()),
            clock: Arc::new(SystemClock),
        })
    }

    /// The same client, reading `clock` for the expiry of an exec plugin's client
    /// certificate.
    #[must_use]
    pub fn with_clock<C: Clock>(mut self, clock: Arc<C>) -> Self {
        self.clock = clock;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &KubeApiConfig {
        &self.config
    }

    /// kube's client in use now, for requests this crate does not make (without the timeout
    /// and the renewals described above).
    pub fn kube_client(&self) -> kube::Client {
        self.current.load().client.clone()
    }

    /// Creates `object` (in `namespace`, for namespaced kinds) and returns the API server's
    /// copy. An HTTP error status is [`Error::Api`]; an answer that is not a `K` is
    /// [`Error::Response`].
    pub async fn create<K>(&self, namespace: Option<&str>, object: &K) -> Result<K, Error>
    where
        K: kube::Resource<DynamicType = ()> + Serialize + DeserializeOwned,
    {
        let kind = K::kind(&());
        let body = serde_json::to_vec(object).map_err(|e| {
            Error::config(format!("{kind} object"), format!("cannot encode it: {e}"))
        })?;
        let request = kube::core::Request::new(K::url_path(&(), namespace))
            .create(&PostParams::default(), body)
            .map_err(|e| Error::config(format!("{kind} request"), e.to_string()))?;
        let response = self.send(request).await?;
        if !response.is_success() {
            return Err(Error::Api {
                status: response.status,
                message: response.error_message(),
            });
        }
        serde_json::from_slice(&response.body).map_err(|e| Error::Response {
            reason: format!(
                "not a {kind} ({} at line {} column {})",
                classify(&e),
                e.line(),
                e.column()
            ),
        })
    }

    /// Sends `request` (its path below the API server's URL) and returns the status and
    /// body, within the configured timeout ([`Error::Timeout`]).
    pub async fn send(&self, request: http::Request<Vec<u8>>) -> Result<Response, Error> {
        let timeout = self.config.timeout;
        tokio::time::timeout(timeout, self.send_renewing(request))
            .await
            .map_err(|_| Error::Timeout { after: timeout })?
    }

    async fn send_renewing(&self, request: http::Request<Vec<u8>>) -> Result<Response, Error> {
        let (built, fresh) = self.current().await?;
        let again = exec_command(&self.config).is_some().then(|| copy(&request));
        let response = self.send_once(&built.client, request).await?;
        match again {
            // The exec plugin's credential was refused (revoked, or expired early): as
            // kubectl does, run the plugin again and send once more.
            Some(request) if response.status == 401 && !fresh => {
                let built = self.rebuild(built.generation).await?;
                self.send_once(&built.client, request).await
            }
            _ => Ok(response),
        }
    }

    /// The client to use, rebuilt first if its exec certificate is about to expire; and
    /// whether it was just built.
    async fn current(&self) -> Result<(Arc<Built>, bool), Error> {
        let built = self.current.load_full();
        let expiring = built.client.valid_until().as_ref().is_some_and(|until| {
            until.as_second() <= (self.clock.now() + CERTIFICATE_MARGIN).unix_timestamp()
        });
        if !expiring {
            return Ok((built, false));
        }
        Ok((self.rebuild(built.generation).await?, true))
    }

    /// Replaces the client of generation `seen`, unless another caller did already.
    async fn rebuild(&self, seen: u64) -> Result<Arc<Built>, Error> {
        let _one = self.rebuilding.lock().await;
        let current = self.current.load_full();
        if current.generation != seen {
            return Ok(current);
        }
        let built = Arc::new(Built {
            client: build(&self.config, self.config.timeout).await?,
            generation: seen.wrapping_add(1),
        });
        self.current.store(Arc::clone(&built));
        Ok(built)
    }

    async fn send_once(
        &self,
        client: &kube::Client,
        request: http::Request<Vec<u8>>,
    ) -> Result<Response, Error> {
        let response = client
            .send(request.map(kube::client::Body::from))
            .await
            .map_err(|e| self.request_error(e))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_LEN)
            .collect()
            .await
            .map_err(|e| self.transport(&*e))?
            .to_bytes()
            .to_vec();
        Ok(Response { status, body })
    }

    fn request_error(&self, e: kube::Error) -> Error {
        match e {
            // The exec plugin, run again by kube's authentication layer.
            kube::Error::Service(e) => match e.downcast::<AuthError>() {
                Ok(auth) => auth_error(*auth, &self.config),
                Err(e) => self.transport(&*e),
            },
            kube::Error::Auth(e) => auth_error(e, &self.config),
            kube::Error::HyperError(e) => self.transport(&e),
            other => self.transport(&other),
        }
    }

    /// One message for an error and its sources.
    fn transport(&self, e: &(dyn core::error::Error + 'static)) -> Error {
        Error::Transport {
            server: self.config.api_server(),
            reason: chain(e),
        }
    }
}

impl fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// What went wrong, for an error message: the `message` of a Kubernetes `Status` answer,
    /// else the start of the body, else the status's reason phrase; control characters are
    /// removed and the text is cut at 300 characters.
    pub fn error_message(&self) -> String {
        let message = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|status| status["message"].as_str().map(str::to_owned))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).trim().to_owned());
        if message.is_empty() {
            return StatusCode::from_u16(self.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("no message")
                .to_owned();
        }
        quote(&message)
    }
}

/// kube's client for `config`, built where blocking is allowed (kube runs exec plugins
/// synchronously), within `limit`.
async fn build(config: &KubeApiConfig, limit: Duration) -> Result<kube::Client, Error> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::config(
            "Kubernetes API client",
            "it must be built inside a Tokio runtime",
        ));
    }
    let mut kube = config.kube.clone();
    kube.connect_timeout = Some(config.timeout);
    // meshid paces its calls (TokenReview's QPS/burst) and answers within a timeout; kube's
    // retries of 429/503/504 would wait past it.
    kube.default_retry = false;
    let building = tokio::task::spawn_blocking(move || kube::Client::try_from(kube));
    match tokio::time::timeout(limit, building).await {
        Ok(Ok(Ok(client))) => Ok(client),
        Ok(Ok(Err(e))) => Err(client_error(e, config)),
        Ok(Err(e)) => Err(Error::config(
            config.source.clone(),
            format!("building the Kubernetes API client failed: {e}"),
        )),
        Err(_) => Err(match exec_command(config) {
            Some(command) => Error::ExecPlugin {
                command,
                problem: ExecProblem::Timeout { after: limit },
            },
            None => Error::config(
                config.source.clone(),
                format!(
                    "building the Kubernetes API client took longer than {}ms",
                    limit.as_millis()
                ),
            ),
        }),
    }
}

/// kube's errors while building a client, saying which file or plugin.
fn client_error(e: kube::Error, config: &KubeApiConfig) -> Error {
    match e {
        kube::Error::Auth(e) => auth_error(e, config),
        kube::Error::InferKubeconfig(e) => kubeconfig_error(e, &config.source),
        kube::Error::RustlsTls(e) => match exec_command(config) {
            Some(command) => Error::ExecPlugin {
                command,
                problem: ExecProblem::ClientCertificate {
                    detail: e.to_string(),
                },
            },
            None => Error::config(
                config.source.clone(),
                format!("its client certificate or CA is not usable: {e}"),
            ),
        },
        kube::Error::ProxyProtocolDisabled { proxy_url, .. }
        | kube::Error::ProxyProtocolUnsupported { proxy_url } => Error::config(
            format!("proxy {proxy_url} ({})", config.source),
            "only http:// and https:// proxies are supported",
        ),
        other => Error::config(config.source.clone(), chain(&other)),
    }
}

/// kube's authentication errors: the exec plugin's, or the token file's.
fn auth_error(e: AuthError, config: &KubeApiConfig) -> Error {
    let command = exec_command(config).unwrap_or_default();
    let plugin = |problem: ExecProblem| Error::ExecPlugin {
        command: command.clone(),
        problem,
    };
    match e {
        AuthError::AuthExecStart(io) => {
            let install_hint = if io.kind() == std::io::ErrorKind::NotFound {
                config
                    .kube
                    .auth_info
                    .exec
                    .as_ref()
                    .and_then(|exec| exec.install_hint.as_deref())
                    .map(|hint| hint.trim().to_owned())
            } else {
                None
            };
            plugin(ExecProblem::Start {
                kind: io.kind(),
                message: io.to_string(),
                install_hint,
            })
        }
        // kube's message would quote the command with its environment and the plugin's
        // standard output (a credential): only the exit status and standard error are said.
        AuthError::AuthExecRun { out, .. } => plugin(ExecProblem::Exited {
            status: out.status,
            stderr: quote(&String::from_utf8_lossy(&out.stderr)),
        }),
        AuthError::AuthExecParse(_) => plugin(ExecProblem::NotExecCredential),
        AuthError::ExecPluginFailed => plugin(ExecProblem::NoStatus),
        AuthError::MalformedTokenExpirationDate(e) => plugin(ExecProblem::Expiration {
            detail: e.to_string(),
        }),
        AuthError::ReadTokenFile(io, path) => {
            let mut reason = io.to_string();
            if config.source == "in-cluster configuration" {
                reason.push_str(
                    "; mount the pod's ServiceAccount token (automountServiceAccountToken: true)",
                );
            }
            Error::ReadFile {
                what: "API client token file",
                path,
                kind: io.kind(),
                reason,
            }
        }
        AuthError::InvalidBearerToken(_) => Error::config(
            config.source.clone(),
            "its token holds characters not allowed in an HTTP header, such as a line break \
             (kube does not trim token files): write the token without one",
        ),
        other if !command.is_empty() => plugin(ExecProblem::Other {
            message: other.to_string(),
        }),
        other => Error::config(config.source.clone(), other.to_string()),
    }
}

/// The exec plugin's command, if the configuration has one.
fn exec_command(config: &KubeApiConfig) -> Option<String> {
    config
        .kube
        .auth_info
        .exec
        .as_ref()
        .map(|exec| exec.command.clone().unwrap_or_default())
}

/// A copy of a request, to send it again.
fn copy(request: &http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// An error and its sources, outermost first, each said once.
fn chain(e: &(dyn core::error::Error + 'static)) -> String {
    let mut reason = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !reason.contains(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = s.source();
    }
    reason
}

/// What kind of JSON error, without the text serde_json may quote from the input.
fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "unexpected end",
    }
}

/// Text for a message: trimmed, control characters removed, at most 300 characters.
fn quote(text: &str) -> String {
    let chars: Vec<char> = text.trim().chars().filter(|c| !c.is_control()).collect();
    let mut quoted: String = chars.iter().take(MAX_QUOTED_LEN).collect();
    if chars.len() > MAX_QUOTED_LEN {
        quoted.push('…');
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn error_messages_prefer_the_status_message() {
        let status = r#"{"kind":"Status","message":"events is forbidden","code":403}"#;
        assert_eq!(response(403, status).error_message(), "events is forbidden");
        assert_eq!(
            response(500, "etcdserver: request timed out\n").error_message(),
            "etcdserver: request timed out"
        );
        assert_eq!(response(503, "").error_message(), "Service Unavailable");
        let long = response(500, &"x".repeat(400)).error_message();
        assert_eq!(long.chars().count(), 301);
        assert!(long.ends_with('…'));
        assert!(response(201, "{}").is_success());
        assert!(!response(409, "{}").is_success());
    }
}
