//! Where Linkerd's chart mounts the identity service's files, so that the chart's own
//! arguments (which name no issuer folder) run the real CA, not development mode.

use std::path::{Path, PathBuf};

/// The issuer Secret (`linkerd-identity-issuer`), as Linkerd's chart mounts it.
pub const LINKERD_ISSUER_DIR: &str = "/var/run/linkerd/identity/issuer";

/// The trust-anchor bundle of the `linkerd-identity-trust-roots` ConfigMap, as Linkerd's chart
/// mounts it: key [`LINKERD_TRUST_ANCHORS_KEY`] in [`LINKERD_TRUST_ROOTS_DIR`].
pub const LINKERD_TRUST_ANCHORS: &str = "/var/run/linkerd/identity/trust-roots/ca-bundle.crt";

/// Where Linkerd's chart mounts the `linkerd-identity-trust-roots` ConfigMap.
pub const LINKERD_TRUST_ROOTS_DIR: &str = "/var/run/linkerd/identity/trust-roots";

/// The key of the trust-roots ConfigMap that holds the trust-anchor bundle.
pub const LINKERD_TRUST_ANCHORS_KEY: &str = "ca-bundle.crt";

/// The Secret holding the issuer certificate and key, in the control-plane namespace.
pub const LINKERD_ISSUER_SECRET: &str = "linkerd-identity-issuer";

/// The ConfigMap holding the trust-anchor bundle, in the control-plane namespace.
pub const LINKERD_TRUST_ROOTS_CONFIG_MAP: &str = "linkerd-identity-trust-roots";

/// The issuer folder and trust-anchor bundle found where Linkerd's chart mounts them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkerdMounts {
    /// The issuer folder.
    pub issuer: PathBuf,
    /// The trust-anchor bundle, if mounted (a `kubernetes.io/tls` issuer may carry `ca.crt`
    /// instead).
    pub trust_anchors: Option<PathBuf>,
}

impl LinkerdMounts {
    /// What is mounted under `/`: `Some` when the issuer folder exists.
    pub fn find() -> Option<Self> {
        Self::find_under(Path::new("/"))
    }

    /// What is mounted under `root` (a test's stand-in for `/`).
    pub fn find_under(root: &Path) -> Option<Self> {
        let under = |path: &str| root.join(path.trim_start_matches('/'));
        let issuer = under(LINKERD_ISSUER_DIR);
        if !issuer.is_dir() {
            return None;
        }
        let anchors = under(LINKERD_TRUST_ANCHORS);
        Some(Self {
            issuer,
            trust_anchors: anchors.is_file().then_some(anchors),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_bundle_is_the_key_in_the_trust_roots_folder() {
        assert_eq!(
            Path::new(LINKERD_TRUST_ROOTS_DIR).join(LINKERD_TRUST_ANCHORS_KEY),
            Path::new(LINKERD_TRUST_ANCHORS)
        );
    }

    #[test]
    fn found_only_where_the_chart_mounts_the_issuer() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().to_path_buf();
        assert_eq!(LinkerdMounts::find_under(&root), None);

        let issuer = root.join("var/run/linkerd/identity/issuer");
        std::fs::create_dir_all(&issuer).unwrap();
        assert_eq!(
            LinkerdMounts::find_under(&root),
            Some(LinkerdMounts {
                issuer: issuer.clone(),
                trust_anchors: None
            })
        );

        let roots = root.join("var/run/linkerd/identity/trust-roots");
        std::fs::create_dir_all(&roots).unwrap();
        std::fs::write(roots.join("ca-bundle.crt"), "pem").unwrap();
        assert_eq!(
            LinkerdMounts::find_under(&root),
            Some(LinkerdMounts {
                issuer,
                trust_anchors: Some(roots.join("ca-bundle.crt"))
            })
        );
    }
}
