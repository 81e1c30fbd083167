//! The control socket on Windows: a named pipe (`\\.\pipe\p2pd-USER` unless configured).
//! Its default ACL lets only this account (and administrators and SYSTEM) write to it, so
//! there is no directory to prepare and no caller to check as on Unix.

use std::path::Path;

use interprocess::local_socket::tokio::{Listener, Stream};
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};

use super::server::SocketError;

/// Nothing to make or check: a named pipe lives in no directory.
pub fn prepare_dir(_path: &Path) -> Result<(), SocketError> {
    Ok(())
}

/// Creates the named pipe at `path`; one another daemon answers on is an error.
pub async fn bind(path: &Path) -> Result<Listener, SocketError> {
    let io_err = |source| SocketError::Io {
        path: path.to_owned(),
        source,
    };
    let name = path.to_fs_name::<GenericFilePath>().map_err(io_err)?;
    if Stream::connect(name).await.is_ok() {
        return Err(SocketError::InUse {
            path: path.to_owned(),
        });
    }
    let name = path.to_fs_name::<GenericFilePath>().map_err(io_err)?;
    ListenerOptions::new()
        .name(name)
        .create_tokio()
        .map_err(io_err)
}
