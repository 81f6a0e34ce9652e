//! Development mode: a state folder with a trust anchor, an issuer and a token-signing key, so
//! the identity service runs on one machine with no cluster.

use core::time::Duration;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use meshid_authn::{JwtSigner, TokenParams};
use meshid_ca::bootstrap::CaOptions;
use meshid_issuer::bootstrap::{self, OutputFiles, TrustAnchorKey};
use meshid_issuer::{IssuerFolder, IssuerScheme};
use meshid_policy::ServiceAccount;
use time::OffsetDateTime;

use crate::Error;

/// The `iss` of development tokens.
pub const DEV_TOKEN_ISSUER: &str = "https://meshid.dev/serviceaccount";
/// The default state folder.
pub const DEFAULT_DEV_DIR: &str = ".meshid-dev";

const TRUST_ANCHORS: &str = "trust-anchors.pem";
const TRUST_ANCHOR_KEY: &str = "trust-anchor.key";
const ISSUER_DIR: &str = "issuer";
const JWKS: &str = "jwks.json";
const TOKEN_KEY: &str = "token-signing.key";

/// Mode of private keys.
const KEY_MODE: u32 = 0o600;
/// Mode of certificates and public keys.
const PUBLIC_MODE: u32 = 0o644;

/// A development state folder:
///
/// | file | what | mode |
/// |---|---|---|
/// | `trust-anchors.pem` | the trust anchor (10 years) | 0644 |
/// | `trust-anchor.key` | its key, to re-mint the issuer | 0600 |
/// | `issuer/crt.pem`, `issuer/key.pem` | the issuer (48h, re-minted when a third is left) | 0644 / 0600 |
/// | `jwks.json` | the public key tokens are validated with | 0644 |
/// | `token-signing.key` | the key development tokens are signed with | 0600 |
///
/// Every file is written to a temporary file, synced and renamed into place, so a reader
/// never sees half a file and an existing symlink is replaced, never followed.
#[derive(Clone, Debug)]
pub struct DevState {
    dir: PathBuf,
}

impl DevState {
    /// Opens the folder, creating whatever is missing and re-minting an issuer that has less
    /// than a third of its lifetime left.
    pub fn prepare(dir: impl Into<PathBuf>, now: OffsetDateTime) -> Result<Self, Error> {
        let state = Self { dir: dir.into() };
        let io = |what: &str, e: std::io::Error| Error::Dev {
            reason: format!("{what} {}: {e}", state.dir.display()),
        };
        fs::create_dir_all(state.dir.join(ISSUER_DIR)).map_err(|e| io("creating", e))?;
        let anchors = OutputFiles::new(state.trust_anchors(), state.dir.join(TRUST_ANCHOR_KEY));
        if !state.trust_anchors().exists() {
            let options =
                CaOptions::root(bootstrap::ROOT_COMMON_NAME, now, bootstrap::ROOT_VALIDITY);
            bootstrap::write_root_ca(&anchors, &options, false).map_err(Error::Bootstrap)?;
        }
        if state.issuer_needs_minting(now) {
            let anchor =
                TrustAnchorKey::load(&anchors.cert, &anchors.key).map_err(Error::Bootstrap)?;
            let folder = state.issuer_folder();
            let options = bootstrap::issuer_options(
                bootstrap::ISSUER_COMMON_NAME,
                now,
                bootstrap::ISSUER_VALIDITY,
                true,
            );
            bootstrap::write_issuer(
                &anchor,
                &OutputFiles::new(folder.cert_path(), folder.key_path()),
                &options,
                true,
            )
            .map_err(Error::Bootstrap)?;
        }
        // The key and its JWKS go together: a folder with only one of them gets both anew.
        if !state.dir.join(TOKEN_KEY).exists() || !state.jwks().exists() {
            let signer = JwtSigner::generate(DEV_TOKEN_ISSUER).map_err(Error::Authn)?;
            write_atomic(
                &state.dir.join(TOKEN_KEY),
                signer.private_key_pem().as_bytes(),
                KEY_MODE,
            )?;
            write_atomic(&state.jwks(), signer.jwks_json().as_bytes(), PUBLIC_MODE)?;
        }
        Ok(state)
    }

    /// Opens an existing folder (for minting tokens).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let state = Self { dir: dir.into() };
        if !state.dir.join(TOKEN_KEY).exists() {
            return Err(Error::Dev {
                reason: format!(
                    "{} has no {TOKEN_KEY}; start the identity CA in dev mode with this --dev-dir first",
                    state.dir.display()
                ),
            });
        }
        Ok(state)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The trust-anchor bundle file.
    pub fn trust_anchors(&self) -> PathBuf {
        self.dir.join(TRUST_ANCHORS)
    }

    /// The issuer folder (`linkerd.io/tls`).
    pub fn issuer_folder(&self) -> IssuerFolder {
        IssuerFolder::new(self.dir.join(ISSUER_DIR), IssuerScheme::LinkerdTls)
    }

    /// The trust anchor's key (0600), for issuer auto-rotation.
    pub fn trust_anchor_key(&self) -> PathBuf {
        self.dir.join(TRUST_ANCHOR_KEY)
    }

    /// The JWKS file tokens are validated against.
    pub fn jwks(&self) -> PathBuf {
        self.dir.join(JWKS)
    }

    /// Signs a ServiceAccount token that this folder's JWKS accepts.
    pub fn token(
        &self,
        sa: &ServiceAccount,
        audience: &str,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<String, Error> {
        let pem = fs::read_to_string(self.dir.join(TOKEN_KEY)).map_err(|e| Error::Dev {
            reason: format!("reading {}: {e}", self.dir.join(TOKEN_KEY).display()),
        })?;
        let signer = JwtSigner::from_pem(DEV_TOKEN_ISSUER, &pem).map_err(Error::Authn)?;
        let mut params = TokenParams::new(sa.clone(), now);
        params.audiences = vec![audience.to_owned()];
        params.lifetime = ttl;
        signer.sign(&params).map_err(Error::Authn)
    }

    fn issuer_needs_minting(&self, now: OffsetDateTime) -> bool {
        let Ok(files) = self.issuer_folder().read() else {
            return true;
        };
        let Ok(pem) = pem::parse(files.chain_pem.as_bytes()) else {
            return true;
        };
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(pem.contents()) else {
            return true;
        };
        let not_before = cert.validity().not_before.to_datetime();
        let not_after = cert.validity().not_after.to_datetime();
        now >= not_after - (not_after - not_before) / 3_i32 || now < not_before
    }
}

/// Writes `path` as the issuer files are written: a new temporary file next to it (created,
/// never opened through an existing name), with `mode` before any byte is written, synced,
/// then renamed over `path`, which replaces a symlink there instead of following it; then the
/// folder is synced so the rename survives a crash.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let fail = |e: std::io::Error| Error::Dev {
        reason: format!("writing {}: {e}", path.display()),
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".meshid-dev-")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(fail)?;
    file.write_all(contents)
        .and_then(|()| file.as_file().sync_all())
        .map_err(fail)?;
    file.persist(path).map_err(|e| fail(e.error))?;
    fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(fail)
}
