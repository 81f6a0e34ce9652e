//! Shared fixtures: temporary folders, a kubelet-style Secret mount, and a small PKI.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use meshid_ca::Ca;
use meshid_ca::bootstrap::{CaCertificate, CaOptions, create_intermediate, create_root};
use meshid_policy::{Clock, IssuancePolicy, Mesh};
use meshid_verify::TrustBundle;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;

pub const START: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
pub const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

/// A fresh folder, removed when the returned value is dropped.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("meshid-issuer-")
        .tempdir()
        .unwrap()
}

/// A mounted Secret or ConfigMap, updated the way kubelet does it: the files live in a
/// timestamped folder, `..data` points at it, and each name is a symlink through `..data`.
pub struct Kubelet {
    dir: PathBuf,
    version: AtomicUsize,
}

impl Kubelet {
    pub fn new(dir: &Path, files: &[(&str, &[u8])]) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let kubelet = Self {
            dir: dir.to_owned(),
            version: AtomicUsize::new(0),
        };
        kubelet.swap(files);
        kubelet
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Publishes a new version atomically.
    pub fn swap(&self, files: &[(&str, &[u8])]) {
        let n = self.version.fetch_add(1, Ordering::SeqCst);
        let name = format!("..2026_06_01_12_00_{:02}.{}", n % 60, 1234 + n);
        let new_dir = self.dir.join(&name);
        std::fs::create_dir(&new_dir).unwrap();
        for (file, contents) in files {
            std::fs::write(new_dir.join(file), contents).unwrap();
        }
        let old = std::fs::read_link(self.dir.join("..data")).ok();
        let tmp = self.dir.join("..data_tmp");
        symlink(&name, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        for (file, _) in files {
            let link = self.dir.join(file);
            if link.symlink_metadata().is_err() {
                symlink(Path::new("..data").join(file), &link).unwrap();
            }
        }
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.join(old)).unwrap();
        }
    }
}

/// A clock that reads a fixed time.
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

pub fn root(name: &str) -> CaCertificate {
    create_root(&CaOptions::root(
        name,
        datetime!(2026-01-01 0:00 UTC),
        3650 * DAY,
    ))
    .unwrap()
}

pub fn issuer(
    root: &CaCertificate,
    from: OffsetDateTime,
    validity: std::time::Duration,
) -> CaCertificate {
    create_intermediate(
        root,
        &CaOptions::issuer("identity.linkerd.cluster.local", from, validity),
    )
    .unwrap()
}

pub fn bundle(roots: &[&CaCertificate]) -> TrustBundle {
    let pem: String = roots.iter().map(|r| r.pem()).collect();
    TrustBundle::from_pem(pem.as_bytes()).unwrap()
}

pub fn bundle_pem(roots: &[&CaCertificate]) -> String {
    roots.iter().map(|r| r.pem()).collect()
}

/// A CA trusting `roots`, with no issuer yet.
pub fn ca(roots: &[&CaCertificate]) -> Arc<Ca> {
    Arc::new(Ca::new(Mesh::default(), IssuancePolicy::default(), bundle(roots)).unwrap())
}

/// `crt.pem` and `key.pem` of an issuer.
pub fn linkerd_files(issuer: &CaCertificate) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("crt.pem", issuer.pem().into_bytes()),
        ("key.pem", issuer.key_pem().as_bytes().to_vec()),
    ]
}

pub fn as_refs<'a>(files: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
    files.iter().map(|(n, c)| (*n, c.as_slice())).collect()
}
