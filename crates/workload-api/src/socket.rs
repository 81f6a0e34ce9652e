//! The Unix domain socket the APIs are served on: stale sockets replaced, live ones refused,
//! permissions set before anyone can connect.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};
use tokio_stream::wrappers::UnixListenerStream;

use crate::{Error, SocketProblem};

/// The default permissions of a socket: owner and group may connect (read and write), others
/// may not. See [`UnixSocket::bind`].
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// A bound Unix domain socket.
///
/// Whoever can connect to it receives the workload's private key (that is what the Workload
/// API and SDS hand out), and there is no workload attestation: the file's permissions, and
/// those of its folder, are the access control. Put it in a folder shared only with the
/// workload (in Kubernetes, an `emptyDir` mounted into the workload's and the agent's
/// containers) and keep the default mode ([`DEFAULT_SOCKET_MODE`], 0660: the agent's user and
/// group; give the workload's container that group, e.g. with `fsGroup`), unless the workload
/// runs as another user with no shared group. SPIRE's agent socket is 0777 because SPIRE
/// attests each caller; this one is not.
#[derive(Debug)]
pub struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl UnixSocket {
    /// Binds `path` with permissions `mode` (e.g. [`DEFAULT_SOCKET_MODE`]).
    ///
    /// - A socket file nobody answers on (left by a process that died) is replaced.
    /// - A socket someone answers on is [`Error::SocketInUse`]: two agents must not serve one
    ///   workload.
    /// - A path that exists and is not a socket is [`Error::SocketPathTaken`], never removed.
    ///
    /// The socket is created under a temporary name in the same folder, given `mode`, then
    /// renamed into place, so no client ever connects while it has other permissions.
    pub async fn bind(path: impl Into<PathBuf>, mode: u32) -> Result<Self, Error> {
        let path = path.into();
        let setup = |reason: SocketProblem| Error::SocketSetup {
            path: path.clone(),
            reason,
        };
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(&path).await {
                Ok(_) => return Err(Error::SocketInUse { path }),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    tracing::info!(path = %path.display(), "Replacing a stale socket");
                }
                Err(e) => {
                    return Err(setup(SocketProblem::CannotCheck {
                        kind: e.kind(),
                        reason: e.to_string(),
                    }));
                }
            },
            Ok(_) => return Err(Error::SocketPathTaken { path }),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(setup(SocketProblem::io(&e))),
        }
        let file_name = path
            .file_name()
            .ok_or_else(|| setup(SocketProblem::NoFileName))?;
        let mut temporary_name = file_name.to_owned();
        temporary_name.push(format!(".{}.tmp", std::process::id()));
        let temporary = path.with_file_name(temporary_name);
        // A leftover of this process id, from an earlier run: it is ours to remove.
        let _ = std::fs::remove_file(&temporary);
        let listener = UnixListener::bind(&temporary).map_err(|e| setup(SocketProblem::io(&e)))?;
        let placed = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))
            .and_then(|()| std::fs::rename(&temporary, &path));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&temporary);
            return Err(setup(SocketProblem::io(&e)));
        }
        if mode & 0o006 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = %format!("{mode:o}"),
                "The socket is open to every user of this machine: anyone who connects receives the workload's private key"
            );
        }
        Ok(Self { listener, path })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The accepted connections, for `tonic::transport::Server::serve_with_incoming*`, and
    /// the path (remove it with [`remove_socket`] once serving stopped).
    pub fn into_incoming(self) -> (UnixListenerStream, PathBuf) {
        (UnixListenerStream::new(self.listener), self.path)
    }
}

/// Removes a socket file after serving stopped; a missing file is fine.
pub fn remove_socket(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "Cannot remove the socket"),
    }
}
