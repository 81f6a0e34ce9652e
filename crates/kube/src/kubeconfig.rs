//! The API server, its CA and this process's credentials, read from a kubeconfig file.
//!
//! What is read, as `kubectl` reads it: the context named, else `current-context`; its
//! cluster's `server`, `certificate-authority-data` (which wins) or `certificate-authority`;
//! its user's `client-certificate[-data]` + `client-key[-data]`, `token`, `tokenFile` or `exec`
//! credential plugin (one that prints a token; run without a terminal). Relative paths are
//! relative to the kubeconfig's folder. What would weaken or silently change the connection
//! is refused by name: `insecure-skip-tls-verify: true`, `tls-server-name`, `proxy-url`,
//! auth-provider plugins, basic authentication.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use yaml_rust2::{Yaml, YamlLoader};
use zeroize::Zeroizing;

use crate::{ApiCredentials, ApiServerCa, EXEC_API_VERSIONS, Error, ExecPlugin, KubeApiConfig};

impl KubeApiConfig {
    /// The API server, CA and credentials of a kubeconfig file's `context` (default: its
    /// `current-context`), with the default timeout. Client certificate and key files are read
    /// now; a `tokenFile` on every request; a `certificate-authority` file when the
    /// [`KubeClient`](crate::KubeClient) is built; an `exec` plugin runs on the first request
    /// (see [`ExecPlugin`]).
    pub fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::read_file("kubeconfig", path.to_owned(), &e))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Kubeconfig {
            what: format!("kubeconfig {}", path.display()),
            base,
        }
        .config(&text, context)
    }

    /// [`from_kubeconfig`](Self::from_kubeconfig) for kubeconfig `text`; relative paths in it
    /// are taken relative to `base_dir`.
    pub fn from_kubeconfig_str(
        text: &str,
        base_dir: &Path,
        context: Option<&str>,
    ) -> Result<Self, Error> {
        Kubeconfig {
            what: "kubeconfig".to_owned(),
            base: base_dir,
        }
        .config(text, context)
    }
}

/// One kubeconfig being read: its name in errors, and the folder paths are relative to.
struct Kubeconfig<'a> {
    what: String,
    base: &'a Path,
}

impl Kubeconfig<'_> {
    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::config(self.what.clone(), reason)
    }

    fn config(&self, text: &str, context: Option<&str>) -> Result<KubeApiConfig, Error> {
        let docs =
            YamlLoader::load_from_str(text).map_err(|e| self.bad(format!("not YAML: {e}")))?;
        let doc = match docs.as_slice() {
            [doc @ Yaml::Hash(_)] => doc,
            [] => return Err(self.bad("it is empty")),
            [_] => return Err(self.bad("it is not a YAML mapping")),
            _ => return Err(self.bad("it holds more than one YAML document")),
        };

        let context_name = match context {
            Some(name) => name.to_owned(),
            None => match self.string(doc, "current-context", "the kubeconfig")? {
                Some(name) if !name.is_empty() => name.to_owned(),
                _ => return Err(self.bad("it has no current-context; name a context")),
            },
        };
        let context = self.named(doc, "contexts", "context", &context_name)?;
        let cluster_name = self.required(context, "cluster", &format!("context {context_name}"))?;
        let user_name = self.string(context, "user", &format!("context {context_name}"))?;

        let cluster = self.named(doc, "clusters", "cluster", cluster_name)?;
        let api_server = self.cluster(cluster, cluster_name)?;
        let ca = self.ca(cluster, cluster_name)?;
        let credentials = match user_name {
            Some(user_name) if !user_name.is_empty() => {
                let user = self.named(doc, "users", "user", user_name)?;
                self.credentials(user, user_name)?
            }
            _ => {
                return Err(self.bad(format!(
                    "context {context_name} names no user; the API client needs credentials \
                     (a token, tokenFile or client certificate)"
                )));
            }
        };

        Ok(KubeApiConfig::with(api_server, ca, credentials))
    }

    /// The cluster's `server`, refusing the settings this client does not honour.
    fn cluster(&self, cluster: &Yaml, name: &str) -> Result<String, Error> {
        let at = format!("cluster {name}");
        if let Some(true) = self.bool(cluster, "insecure-skip-tls-verify", &at)? {
            return Err(self.bad(format!(
                "{at} sets insecure-skip-tls-verify: the API server's certificate is always \
                 verified; give its CA (certificate-authority or certificate-authority-data)"
            )));
        }
        for unsupported in ["tls-server-name", "proxy-url"] {
            if self.string(cluster, unsupported, &at)?.is_some() {
                return Err(self.bad(format!(
                    "{at} sets {unsupported}, which is not supported; connect to the API \
                     server by a name its certificate holds, without a proxy"
                )));
            }
        }
        let server = self.required(cluster, "server", &at)?;
        if !server.starts_with("https://") {
            return Err(self.bad(format!(
                "{at} has server {server:?}: the Kubernetes API client speaks https only"
            )));
        }
        Ok(server.to_owned())
    }

    /// The cluster's CA: inline data first, as kubectl does, then the file.
    fn ca(&self, cluster: &Yaml, name: &str) -> Result<ApiServerCa, Error> {
        let at = format!("cluster {name}");
        if let Some(data) = self.string(cluster, "certificate-authority-data", &at)? {
            return Ok(ApiServerCa::Pem(
                self.base64(data, &format!("{at} certificate-authority-data"))?,
            ));
        }
        if let Some(file) = self.string(cluster, "certificate-authority", &at)? {
            return Ok(ApiServerCa::File(self.path(file)));
        }
        Err(self.bad(format!(
            "{at} has neither certificate-authority nor certificate-authority-data; the API \
             server's certificate is always verified against a CA given here"
        )))
    }

    /// The user's credentials: a client certificate, else a token, else a token file.
    fn credentials(&self, user: &Yaml, name: &str) -> Result<ApiCredentials, Error> {
        let at = format!("user {name}");
        if !matches!(user["auth-provider"], Yaml::BadValue | Yaml::Null) {
            return Err(self.bad(format!(
                "{at} uses an auth-provider plugin, which kubectl itself has removed; use an \
                 exec credential plugin (for example gke-gcloud-auth-plugin or kubelogin), a \
                 token, tokenFile or client certificate"
            )));
        }
        if self.string(user, "username", &at)?.is_some()
            || self.string(user, "password", &at)?.is_some()
        {
            return Err(self.bad(format!(
                "{at} uses basic authentication, which Kubernetes no longer supports; use a \
                 token, tokenFile or client certificate"
            )));
        }

        if !matches!(user["exec"], Yaml::BadValue | Yaml::Null) {
            for other in [
                "token",
                "tokenFile",
                "client-certificate",
                "client-certificate-data",
                "client-key",
                "client-key-data",
            ] {
                if !matches!(user[other], Yaml::BadValue | Yaml::Null) {
                    return Err(self.bad(format!(
                        "{at} sets both exec and {other}; keep one way to authenticate"
                    )));
                }
            }
            return self.exec(&user["exec"], &format!("{at} exec"));
        }
        let chain = self.pem(user, "client-certificate", &at)?;
        let key = self.pem(user, "client-key", &at)?.map(Zeroizing::new);
        match (chain, key) {
            (Some(chain_pem), Some(key_pem)) => {
                return Ok(ApiCredentials::ClientCertificate { chain_pem, key_pem });
            }
            (Some(_), None) => {
                return Err(self.bad(format!("{at} has a client certificate but no client key")));
            }
            (None, Some(_)) => {
                return Err(self.bad(format!("{at} has a client key but no client certificate")));
            }
            (None, None) => {}
        }
        if let Some(token) = self.string(user, "token", &at)? {
            if token.trim().is_empty() {
                return Err(self.bad(format!("{at} has an empty token")));
            }
            return Ok(ApiCredentials::Token(Zeroizing::new(token.to_owned())));
        }
        if let Some(file) = self.string(user, "tokenFile", &at)? {
            return Ok(ApiCredentials::TokenFile(self.path(file)));
        }
        Err(self.bad(format!(
            "{at} has no credentials this client can use (client-certificate + client-key, \
             token or tokenFile)"
        )))
    }

    /// An exec credential plugin, as kubectl would run it, without a terminal.
    fn exec(&self, exec: &Yaml, at: &str) -> Result<ApiCredentials, Error> {
        if !matches!(exec, Yaml::Hash(_)) {
            return Err(self.bad(format!("{at} is not a mapping")));
        }
        let api_version = self.required(exec, "apiVersion", at)?;
        if !EXEC_API_VERSIONS.contains(&api_version) {
            return Err(self.bad(format!(
                "{at} has apiVersion {api_version:?}; supported: {}",
                EXEC_API_VERSIONS.join(", ")
            )));
        }
        let command = self.required(exec, "command", at)?;
        // As kubectl: a relative path is taken from the kubeconfig's folder, a bare name from
        // PATH.
        let command = if command.contains('/') {
            self.path(command)
        } else {
            PathBuf::from(command)
        };
        let args = self
            .list(exec, "args", at)?
            .iter()
            .map(|arg| {
                arg.as_str().map(str::to_owned).ok_or_else(|| {
                    self.bad(format!("{at}: args holds a value that is not a string"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let env = self
            .list(exec, "env", at)?
            .iter()
            .map(|var| {
                let name = self.required(var, "name", &format!("{at} env entry"))?;
                let value = self
                    .string(var, "value", &format!("{at} env {name}"))?
                    .unwrap_or_default();
                Ok((name.to_owned(), value.to_owned()))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        match self.string(exec, "interactiveMode", at)? {
            None | Some("Never" | "IfAvailable") => {}
            Some("Always") => {
                return Err(self.bad(format!(
                    "{at} has interactiveMode Always: the plugin needs a terminal, and this \
                     client runs it without one; log in first, or use a plugin that can run \
                     unattended"
                )));
            }
            Some(other) => {
                return Err(self.bad(format!(
                    "{at} has interactiveMode {other:?}; expected Never, IfAvailable or Always"
                )));
            }
        }
        let mut plugin = ExecPlugin::new(command, args);
        plugin.api_version = api_version.to_owned();
        plugin.env = env;
        plugin.install_hint = self.string(exec, "installHint", at)?.map(str::to_owned);
        plugin.provide_cluster_info = self.bool(exec, "provideClusterInfo", at)?.unwrap_or(false);
        Ok(ApiCredentials::Exec(plugin))
    }

    /// A list field; absent and `null` are empty, anything but a list an error.
    fn list<'y>(&self, map: &'y Yaml, key: &str, at: &str) -> Result<&'y [Yaml], Error> {
        match &map[key] {
            Yaml::Array(items) => Ok(items),
            Yaml::BadValue | Yaml::Null => Ok(&[]),
            _ => Err(self.bad(format!("{at}: {key} is not a list"))),
        }
    }

    /// `<field>-data` (base64 PEM) or `<field>` (a PEM file, read now).
    fn pem(&self, user: &Yaml, field: &str, at: &str) -> Result<Option<Vec<u8>>, Error> {
        let data_field = format!("{field}-data");
        if let Some(data) = self.string(user, &data_field, at)? {
            return self.base64(data, &format!("{at} {data_field}")).map(Some);
        }
        let Some(file) = self.string(user, field, at)? else {
            return Ok(None);
        };
        let path = self.path(file);
        let what = if field == "client-key" {
            "kubeconfig client key file"
        } else {
            "kubeconfig client certificate file"
        };
        std::fs::read(&path)
            .map(Some)
            .map_err(|e| Error::read_file(what, path, &e))
    }

    /// The entry named `name` of the list `list` (`contexts`, `clusters`, `users`), and its
    /// `inner` mapping.
    fn named<'y>(
        &self,
        doc: &'y Yaml,
        list: &str,
        inner: &str,
        name: &str,
    ) -> Result<&'y Yaml, Error> {
        let entries = match &doc[list] {
            Yaml::Array(entries) => entries.as_slice(),
            Yaml::BadValue | Yaml::Null => &[],
            _ => return Err(self.bad(format!("{list} is not a list"))),
        };
        let found = entries
            .iter()
            .find(|entry| entry["name"].as_str() == Some(name));
        match found {
            Some(entry) => match &entry[inner] {
                value @ Yaml::Hash(_) => Ok(value),
                _ => Err(self.bad(format!("{inner} {name} has no {inner} mapping"))),
            },
            None => {
                let known: Vec<&str> = entries
                    .iter()
                    .filter_map(|entry| entry["name"].as_str())
                    .collect();
                Err(self.bad(format!(
                    "no {inner} named {name:?} (it has: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )))
            }
        }
    }

    /// A string field; absent and `null` are `None`, anything but a string an error.
    fn string<'y>(&self, map: &'y Yaml, key: &str, at: &str) -> Result<Option<&'y str>, Error> {
        match &map[key] {
            Yaml::String(s) => Ok(Some(s.as_str())),
            Yaml::BadValue | Yaml::Null => Ok(None),
            _ => Err(self.bad(format!("{at}: {key} is not a string"))),
        }
    }

    fn required<'y>(&self, map: &'y Yaml, key: &str, at: &str) -> Result<&'y str, Error> {
        match self.string(map, key, at)? {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(self.bad(format!("{at} has no {key}"))),
        }
    }

    fn bool(&self, map: &Yaml, key: &str, at: &str) -> Result<Option<bool>, Error> {
        match &map[key] {
            Yaml::Boolean(b) => Ok(Some(*b)),
            Yaml::BadValue | Yaml::Null => Ok(None),
            _ => Err(self.bad(format!("{at}: {key} is not true or false"))),
        }
    }

    fn base64(&self, data: &str, what: &str) -> Result<Vec<u8>, Error> {
        // Zeroized: this may be a private key.
        let compact: Zeroizing<String> =
            Zeroizing::new(data.chars().filter(|c| !c.is_ascii_whitespace()).collect());
        STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| self.bad(format!("{what} is not base64: {e}")))
    }

    fn path(&self, file: &str) -> PathBuf {
        let path = Path::new(file);
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base.join(path)
        }
    }
}
