//! Writing certificates and keys: private keys 0600, atomic replacement.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, symlink};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom as _, SystemRandom};
use time::OffsetDateTime;

use crate::folder::DATA_LINK;
use crate::{Error, MintProblem};

/// Mode of certificate files.
pub(crate) const CERT_MODE: u32 = 0o644;
/// Mode of private key files.
pub(crate) const KEY_MODE: u32 = 0o600;

/// A file to write: its name, contents and mode.
pub(crate) struct FileSpec<'a> {
    pub(crate) name: &'a str,
    pub(crate) contents: &'a [u8],
    pub(crate) mode: u32,
}

fn random_suffix() -> Result<String, Error> {
    let mut bytes = [0u8; 4];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Mint(MintProblem::Random))?;
    Ok(hex::encode(bytes))
}

/// Creates `path` (which must not exist) with `mode` from the first byte, writes and syncs it.
fn create_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io("creating", path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("writing", path, e))
}

/// Writes `path` atomically: a temporary file with `mode` next to it, then a rename over it.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", random_suffix()?));
    create_new(&tmp, contents, mode)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("renaming into place", path, e)
    })
}

/// Replaces the files of `dir` at once, as kubelet updates a mounted Secret: the files go into
/// a new `..<timestamp>.<random>` folder, a `..data` symlink is swapped to it with one rename,
/// and each top-level name is a symlink through `..data`. Readers therefore see the old set or
/// the new set, never a mix. The previous data folder is removed.
///
/// A folder that held plain files is converted: each plain file is replaced by its symlink
/// (one rename each), so a reader may see a mix once, during the conversion.
pub(crate) fn swap_data_dir(
    dir: &Path,
    files: &[FileSpec<'_>],
    now: OffsetDateTime,
) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    let stamp = format!(
        "..{:04}_{:02}_{:02}_{:02}_{:02}_{:02}.{}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        random_suffix()?
    );
    let data_dir = dir.join(&stamp);
    fs::create_dir(&data_dir).map_err(|e| Error::io("creating", &data_dir, e))?;
    for file in files {
        create_new(&data_dir.join(file.name), file.contents, file.mode)?;
    }
    let previous: Option<PathBuf> = fs::read_link(dir.join(DATA_LINK)).ok();

    let tmp_link = dir.join(format!("{DATA_LINK}_tmp"));
    let _ = fs::remove_file(&tmp_link);
    symlink(&stamp, &tmp_link).map_err(|e| Error::io("creating", &tmp_link, e))?;
    fs::rename(&tmp_link, dir.join(DATA_LINK))
        .map_err(|e| Error::io("renaming into place", dir.join(DATA_LINK), e))?;

    for file in files {
        let path = dir.join(file.name);
        let target = Path::new(DATA_LINK).join(file.name);
        if fs::read_link(&path).ok().as_deref() == Some(target.as_path()) {
            continue;
        }
        let tmp = dir.join(format!(".{}.tmp-{}", file.name, random_suffix()?));
        symlink(&target, &tmp).map_err(|e| Error::io("creating", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io("renaming into place", &path, e))?;
    }

    // The old version: only a `..`-prefixed folder of our own layout is removed.
    if let Some(previous) = previous {
        let old = dir.join(&previous);
        let ours = previous
            .to_str()
            .is_some_and(|s| s.starts_with("..") && !s.contains('/') && s != stamp);
        if ours {
            let _ = fs::remove_dir_all(old);
        }
    }
    Ok(())
}

/// Refuses to go on if any of `paths` exists, unless `force`.
pub(crate) fn check_absent(paths: &[&Path], force: bool) -> Result<(), Error> {
    if force {
        return Ok(());
    }
    for path in paths {
        if path.symlink_metadata().is_ok() {
            return Err(Error::Exists {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(())
}
