//! A pooled HTTPS client for the API server: hyper 1 + hyper-util + hyper-rustls with ring.

use core::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use meshid_policy::{Clock, SystemClock};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use zeroize::Zeroizing;

use crate::exec::{ClusterInfo, Credential, ExecCredentials};
use crate::{ApiCredentials, ApiServerCa, Error, KubeApiConfig};

/// The largest API server answer read; a longer one is a [`Error::Transport`] error.
pub const MAX_RESPONSE_LEN: usize = 1024 * 1024;

/// The longest part of an answer quoted by [`Response::error_message`].
const MAX_QUOTED_LEN: usize = 300;

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A client of one API server, built from a [`KubeApiConfig`].
///
/// Building it reads the CA (and checks the client certificate) and validates the URL;
/// connections are pooled and kept alive between requests. A token file is read on every
/// request, so a rotated ServiceAccount token is picked up. Cloning is cheap and shares the
/// pool.
#[derive(Clone)]
pub struct KubeClient {
    client: HttpClient,
    /// `https://authority[/prefix]`, without a trailing slash.
    base: String,
    config: Arc<KubeApiConfig>,
    /// The plugin and what it printed, with [`ApiCredentials::Exec`].
    exec: Option<Arc<Exec>>,
    /// What tells whether an exec plugin's credential has expired.
    clock: Arc<dyn Clock>,
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An exec plugin's state: its credential, the client certificate it printed (if that is
/// its kind), and the connection pool that presents it.
struct Exec {
    credentials: ExecCredentials,
    certificate: Arc<ExecClientCertificate>,
    /// Replaced when the certificate changes: connections made with the old one are not
    /// reused (the API server authenticates a connection once, at its handshake).
    pool: ArcSwap<HttpClient>,
    tls: rustls::ClientConfig,
    timeout: Duration,
}

/// The client certificate an exec plugin printed last, for new TLS handshakes.
#[derive(Debug, Default)]
struct ExecClientCertificate(ArcSwapOption<CertifiedKey>);

impl ResolvesClientCert for ExecClientCertificate {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.load_full()
    }

    fn has_certs(&self) -> bool {
        self.0.load().is_some()
    }
}

impl Exec {
    /// The pool to send with and the `Authorization` header for `credential`; a new
    /// certificate gets a new pool.
    fn present(&self, credential: &Credential) -> Result<(HttpClient, Option<HeaderValue>), Error> {
        match credential {
            Credential::Token(token) => Ok((
                (**self.pool.load()).clone(),
                Some(bearer_header(
                    token,
                    "token printed by the exec credential plugin",
                )?),
            )),
            Credential::Certificate(key) => {
                let current = self.certificate.0.load();
                if !current
                    .as_ref()
                    .is_some_and(|current| Arc::ptr_eq(current, key))
                {
                    self.certificate.0.store(Some(Arc::clone(key)));
                    self.pool
                        .store(Arc::new(http_client(self.tls.clone(), self.timeout)));
                }
                Ok(((**self.pool.load()).clone(), None))
            }
        }
    }
}

/// An answer of the API server: its status code and body (at most [`MAX_RESPONSE_LEN`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl KubeClient {
    /// A client for `config`'s API server. Reads the CA file now.
    pub fn new(config: KubeApiConfig) -> Result<Self, Error> {
        let base = base_url(&config.api_server)?;
        if config.timeout.is_zero() {
            return Err(Error::config(
                "Kubernetes API configuration",
                "the request timeout must be positive",
            ));
        }
        let certificate = Arc::new(ExecClientCertificate::default());
        let (tls, ca_pem) = tls_config(&config, &certificate)?;
        let client = http_client(tls.clone(), config.timeout);
        let exec = match &config.credentials {
            ApiCredentials::Exec(plugin) => Some(Arc::new(Exec {
                credentials: ExecCredentials::new(
                    plugin.clone(),
                    ClusterInfo {
                        server: config.api_server.clone(),
                        ca_pem,
                    },
                ),
                certificate,
                pool: ArcSwap::from_pointee(client.clone()),
                tls,
                timeout: config.timeout,
            })),
            _ => None,
        };
        Ok(Self {
            client,
            base,
            config: Arc::new(config),
            exec,
            clock: Arc::new(SystemClock),
        })
    }

    /// This client, reading the time from `clock` (to tell when an exec credential plugin's
    /// token has expired) instead of the system clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &KubeApiConfig {
        &self.config
    }

    /// POSTs `json` (an encoded JSON document) to `path` below the API server's base URL
    /// (e.g. `/api/v1/namespaces/linkerd/events`) and returns the answer, whatever its status.
    ///
    /// The bearer token, when the credentials are a token, a token file or an exec plugin's
    /// token, goes in the `Authorization` header. The whole exchange, reading the token file or
    /// running the exec plugin included, is bounded by the configured timeout
    /// ([`Error::Timeout`]).
    pub async fn post_json(&self, path: &str, json: Vec<u8>) -> Result<Response, Error> {
        let timeout = self.config.timeout;
        tokio::time::timeout(timeout, self.post(path, json))
            .await
            .map_err(|_| Error::Timeout { after: timeout })?
    }

    async fn post(&self, path: &str, json: Vec<u8>) -> Result<Response, Error> {
        let Some(exec) = &self.exec else {
            let bearer = bearer(&self.config.credentials).await?;
            return self.send(&self.client, path, json, bearer).await;
        };
        // An exec plugin's credential: on 401, run the plugin again (unless the credential
        // was just made) and send once more, as kubectl does on its next request.
        let json = Bytes::from(json);
        let current = exec.credentials.current(self.clock.now()).await?;
        let (client, bearer) = exec.present(&current.credential)?;
        let response = self.send(&client, path, json.clone(), bearer).await?;
        if response.status != 401 || current.fresh {
            return Ok(response);
        }
        exec.credentials.refused(&current.credential).await;
        let current = exec.credentials.current(self.clock.now()).await?;
        let (client, bearer) = exec.present(&current.credential)?;
        self.send(&client, path, json, bearer).await
    }

    async fn send(
        &self,
        client: &HttpClient,
        path: &str,
        json: impl Into<Bytes>,
        bearer: Option<HeaderValue>,
    ) -> Result<Response, Error> {
        let uri = self.uri(path)?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json");
        if let Some(bearer) = bearer {
            request = request.header(AUTHORIZATION, bearer);
        }
        let request = request
            .body(Full::new(json.into()))
            .map_err(|e| self.transport(&e))?;
        let response = client
            .request(request)
            .await
            .map_err(|e| self.transport(&e))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_LEN)
            .collect()
            .await
            .map_err(|e| self.transport(&*e))?
            .to_bytes()
            .to_vec();
        Ok(Response { status, body })
    }

    /// `path` below the base URL.
    fn uri(&self, path: &str) -> Result<Uri, Error> {
        let bad = |reason: String| Error::config(format!("API path {path:?}"), reason);
        if !path.starts_with('/') {
            return Err(bad("must start with /".to_owned()));
        }
        format!("{}{path}", self.base)
            .parse()
            .map_err(|e| bad(format!("not a URL: {e}")))
    }

    /// One message for an error and its sources.
    fn transport(&self, e: &(dyn core::error::Error + 'static)) -> Error {
        let mut reason = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            let s_text = s.to_string();
            if !reason.contains(&s_text) {
                reason.push_str(": ");
                reason.push_str(&s_text);
            }
            source = s.source();
        }
        Error::Transport {
            server: self.config.api_server.clone(),
            reason,
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
        let message = if message.is_empty() {
            StatusCode::from_u16(self.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("no message")
                .to_owned()
        } else {
            message
        };
        let chars: Vec<char> = message.chars().filter(|c| !c.is_control()).collect();
        let mut quoted: String = chars.iter().take(MAX_QUOTED_LEN).collect();
        if chars.len() > MAX_QUOTED_LEN {
            quoted.push('…');
        }
        quoted
    }
}

/// `https://authority[/prefix]` of the API server URL, refusing anything else.
fn base_url(api_server: &str) -> Result<String, Error> {
    let bad = |reason: String| Error::config(format!("API server URL {api_server:?}"), reason);
    let base: Uri = api_server
        .parse()
        .map_err(|e| bad(format!("not a URL: {e}")))?;
    if base.scheme_str() != Some("https") {
        return Err(bad("must start with https://".to_owned()));
    }
    let Some(authority) = base.authority() else {
        return Err(bad("has no host".to_owned()));
    };
    if base.query().is_some() {
        return Err(bad("must not have a query".to_owned()));
    }
    let prefix = base.path().trim_end_matches('/');
    Ok(format!("https://{authority}{prefix}"))
}

/// A pooled HTTPS client with `tls`; connecting is bounded by `timeout`.
fn http_client(tls: rustls::ClientConfig, timeout: Duration) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(https)
}

/// Trust in the API server's CA only, with the client certificate if that is the credential
/// (an exec plugin's, from `exec_certificate`, when it prints one); and the CA's PEM.
fn tls_config(
    config: &KubeApiConfig,
    exec_certificate: &Arc<ExecClientCertificate>,
) -> Result<(rustls::ClientConfig, Vec<u8>), Error> {
    let (pem, source) = match &config.ca {
        ApiServerCa::File(path) => (
            std::fs::read(path)
                .map_err(|e| Error::read_file("API server CA file", path.clone(), &e))?,
            format!("API server CA file {}", path.display()),
        ),
        ApiServerCa::Pem(pem) => (pem.clone(), "API server CA".to_owned()),
    };
    let bad = |reason: String| Error::config(source.clone(), reason);
    let blocks = pem::parse_many(&pem).map_err(|e| bad(format!("not PEM: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    for (i, block) in blocks.iter().enumerate() {
        if block.tag() != "CERTIFICATE" {
            continue;
        }
        roots
            .add(block.contents().to_vec().into())
            .map_err(|e| bad(format!("certificate #{i} is not a usable CA: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("it holds no CERTIFICATE block".to_owned()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots);
    let tls = match &config.credentials {
        ApiCredentials::ClientCertificate { chain_pem, key_pem } => {
            let (chain, key) = client_certificate(chain_pem, key_pem)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::config("API client certificate", e.to_string()))?
        }
        ApiCredentials::Exec(_) => builder
            .with_client_cert_resolver(Arc::clone(exec_certificate) as Arc<dyn ResolvesClientCert>),
        ApiCredentials::TokenFile(_) | ApiCredentials::Token(_) => builder.with_no_client_auth(),
    };
    Ok((tls, pem))
}

/// The client certificate chain and key of a kubeconfig user.
pub(crate) fn client_certificate(
    chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let chain: Vec<CertificateDer<'static>> = pem::parse_many(chain_pem)
        .map_err(|e| Error::config("API client certificate", format!("not PEM: {e}")))?
        .into_iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .map(|block| CertificateDer::from(block.into_contents()))
        .collect();
    if chain.is_empty() {
        return Err(Error::config(
            "API client certificate",
            "it holds no CERTIFICATE block",
        ));
    }
    // The parser's error could quote the key: say only that it is not PEM.
    let blocks =
        pem::parse_many(key_pem).map_err(|_| Error::config("API client key", "not PEM"))?;
    let key = blocks
        .into_iter()
        .find_map(|block| {
            let tag = block.tag().to_owned();
            let der = block.into_contents();
            match tag.as_str() {
                "PRIVATE KEY" => Some(PrivateKeyDer::Pkcs8(der.into())),
                "EC PRIVATE KEY" => Some(PrivateKeyDer::Sec1(der.into())),
                "RSA PRIVATE KEY" => Some(PrivateKeyDer::Pkcs1(der.into())),
                _ => None,
            }
        })
        .ok_or_else(|| {
            Error::config(
                "API client key",
                "it holds no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block",
            )
        })?;
    Ok((chain, key))
}

/// The `Authorization` header: from the (rotating) token file, or the fixed token; none when
/// the client authenticates with a certificate.
async fn bearer(credentials: &ApiCredentials) -> Result<Option<HeaderValue>, Error> {
    let (token, what) = match credentials {
        // The exec plugin's token is fetched by the client, which keeps it.
        ApiCredentials::ClientCertificate { .. } | ApiCredentials::Exec(_) => return Ok(None),
        ApiCredentials::TokenFile(path) => (
            Zeroizing::new(
                tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| Error::read_file("API client token file", path.clone(), &e))?,
            ),
            format!("API client token file {}", path.display()),
        ),
        ApiCredentials::Token(token) => (token.clone(), "API client token".to_owned()),
    };
    bearer_header(&token, &what).map(Some)
}

/// `Authorization: Bearer <token>`, marked sensitive.
fn bearer_header(token: &str, what: &str) -> Result<HeaderValue, Error> {
    let bad = |reason: &str| Error::config(what, reason);
    let token = token.trim();
    if token.is_empty() {
        return Err(bad("it is empty"));
    }
    let header = Zeroizing::new(format!("Bearer {token}"));
    let mut value = HeaderValue::try_from(header.as_str())
        .map_err(|_| bad("it holds characters not allowed in an HTTP header"))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::ExecPlugin;

    #[tokio::test]
    async fn a_new_exec_certificate_gets_a_new_connection_pool() {
        let api = meshid_kube_testing::ApiServerDouble::builder()
            .accept_client_certificates("identity")
            .start()
            .await;
        let mut config = KubeApiConfig::new(api.url(), "unused", "unused");
        config.ca = ApiServerCa::Pem(api.ca_pem().as_bytes().to_vec());
        config.credentials = ApiCredentials::Exec(ExecPlugin::new("unused", Vec::new()));
        let client = KubeClient::new(config).unwrap();
        let exec = client.exec.as_ref().unwrap();
        let pem = api.client_certificate().unwrap();
        let key = || {
            Credential::Certificate(
                crate::exec::certified_key(pem.chain_pem.as_bytes(), pem.key_pem.as_bytes())
                    .unwrap(),
            )
        };
        let pool = || Arc::as_ptr(&exec.pool.load_full());

        let (first, second) = (key(), key());
        let before = pool();
        exec.present(&first).unwrap();
        let with_first = pool();
        assert_ne!(before, with_first, "a first certificate gets its own pool");
        exec.present(&first).unwrap();
        assert_eq!(pool(), with_first, "the same certificate keeps its pool");
        exec.present(&second).unwrap();
        assert_ne!(pool(), with_first, "a renewed certificate gets a new pool");
        assert!(exec.certificate.has_certs());
        // A token goes in the header, over the pool in use.
        let (_, header) = exec
            .present(&Credential::Token(Zeroizing::new("t".to_owned())))
            .unwrap();
        assert_eq!(header.unwrap(), "Bearer t");
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("https://10.0.0.1:6443/").as_deref(),
            Ok("https://10.0.0.1:6443")
        );
        assert_eq!(
            base_url("https://h/prefix/").as_deref(),
            Ok("https://h/prefix")
        );
        let refused = |url: &str| base_url(url).map_err(|e| e.to_string()).unwrap_err();
        assert_eq!(
            refused("http://127.0.0.1:6443"),
            "invalid API server URL \"http://127.0.0.1:6443\": must start with https://"
        );
        assert_eq!(
            refused("https://h/?watch=1"),
            "invalid API server URL \"https://h/?watch=1\": must not have a query"
        );
        assert!(refused("not a url").contains("not a URL"));
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
