//! A static token file, for development.

use core::fmt;
use std::collections::HashMap;
use std::path::Path;

use meshid_policy::ServiceAccount;

use crate::token::{digest, token_str};
use crate::{Authenticated, Authenticator, Error};

/// Authenticates tokens listed in a file: for development clusters and tests only.
///
/// One entry per line, comma-separated, surrounding spaces ignored:
///
/// ```text
/// # token,namespace,serviceaccount[,pod-name[,pod-uid]]
/// dev-token-web,emojivoto,web
/// dev-token-voting,emojivoto,voting,voting-5f7d,3b1c1a4e-0000-4000-8000-000000000001
/// ```
///
/// Blank lines and lines starting with `#` are ignored. Tokens are kept only as SHA-256
/// digests and looked up by digest, so neither memory dumps, `Debug` output nor lookup timing
/// reveal them. A token listed twice is refused (naming the lines, not the token).
pub struct StaticAuthenticator {
    entries: HashMap<[u8; 32], Authenticated>,
}

impl StaticAuthenticator {
    /// Parses the file format above.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::parse_named(text, "static token file")
    }

    /// Reads and parses a static token file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::ReadFile {
            what: "static token file",
            path: path.to_owned(),
            kind: e.kind(),
            reason: e.to_string(),
        })?;
        Self::parse_named(&text, &format!("static token file {}", path.display()))
    }

    fn parse_named(text: &str, source: &str) -> Result<Self, Error> {
        let mut entries = HashMap::new();
        let mut lines_of: HashMap<[u8; 32], usize> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: String| Error::config(format!("{source}, line {n}"), reason);
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let (token, namespace, name, pod_name, pod_uid) = match fields[..] {
                [t, ns, sa] => (t, ns, sa, None, None),
                [t, ns, sa, pod] => (t, ns, sa, Some(pod), None),
                [t, ns, sa, pod, uid] => (t, ns, sa, Some(pod), Some(uid)),
                _ => {
                    return Err(bad(format!(
                        "expected token,namespace,serviceaccount[,pod-name[,pod-uid]], found {} \
                         fields",
                        fields.len()
                    )));
                }
            };
            let token = token_str(token.as_bytes()).map_err(|e| bad(format!("the token: {e}")))?;
            let service_account =
                ServiceAccount::new(namespace, name).map_err(|e| bad(e.to_string()))?;
            let key = digest(token);
            if let Some(first) = lines_of.insert(key, n) {
                return Err(bad(format!("the token is already listed on line {first}")));
            }
            let mut authenticated = Authenticated::new(service_account);
            authenticated.pod_name = pod_name.filter(|s| !s.is_empty()).map(str::to_owned);
            authenticated.pod_uid = pod_uid.filter(|s| !s.is_empty()).map(str::to_owned);
            entries.insert(key, authenticated);
        }
        Ok(Self { entries })
    }

    /// How many tokens the file lists.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file lists no token.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Looks `token` up.
    pub fn lookup(&self, token: &[u8]) -> Result<Authenticated, Error> {
        let token = token_str(token)?;
        self.entries
            .get(&digest(token))
            .cloned()
            .ok_or(Error::NotAuthenticated)
    }
}

impl Authenticator for StaticAuthenticator {
    async fn authenticate(&self, token: &[u8]) -> Result<Authenticated, Error> {
        self.lookup(token)
    }
}

impl fmt::Debug for StaticAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticAuthenticator")
            .field("tokens", &self.entries.len())
            .finish()
    }
}
