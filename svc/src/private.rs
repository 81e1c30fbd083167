//! Files and directories for their owner alone: mode 0600 and 0700 on Unix. On Windows,
//! where ACLs rather than mode bits decide, a new file or directory inherits its parent's
//! ACL (under a user's profile: that user, administrators and SYSTEM) and modes are neither
//! set nor checked. The one place the two differ, so callers read the same on both.

use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::io;
use std::path::Path;

/// Owner-only creation for [`OpenOptions`] (mode 0600) and [`DirBuilder`] (mode 0700).
pub trait OwnerOnly {
    /// What this creates, only its owner may use (on Unix; nothing changes on Windows).
    fn owner_only(&mut self) -> &mut Self;
}

#[cfg(unix)]
mod imp {
    use super::*;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

    impl OwnerOnly for OpenOptions {
        fn owner_only(&mut self) -> &mut Self {
            self.mode(0o600)
        }
    }

    impl OwnerOnly for DirBuilder {
        fn owner_only(&mut self) -> &mut Self {
            self.mode(0o700)
        }
    }

    pub(super) fn mode_bits(meta: &Metadata) -> u32 {
        meta.permissions().mode() & 0o777
    }

    pub(super) fn restrict(path: &Path) -> io::Result<()> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    }

    pub(super) fn restrict_file(file: &File) -> io::Result<()> {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
    }
}

#[cfg(not(unix))]
mod imp {
    use super::*;

    impl OwnerOnly for OpenOptions {
        fn owner_only(&mut self) -> &mut Self {
            self
        }
    }

    impl OwnerOnly for DirBuilder {
        fn owner_only(&mut self) -> &mut Self {
            self
        }
    }

    pub(super) fn mode_bits(_: &Metadata) -> u32 {
        0o600
    }

    pub(super) fn restrict(_: &Path) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn restrict_file(_: &File) -> io::Result<()> {
        Ok(())
    }
}

/// The permission bits of a file or directory (`mode & 0o777`); 0o600 on Windows, where
/// its ACL decides.
pub fn mode_bits(meta: &Metadata) -> u32 {
    imp::mode_bits(meta)
}

/// Sets the file at `path` to mode 0600 (nothing on Windows).
pub fn restrict(path: &Path) -> io::Result<()> {
    imp::restrict(path)
}

/// Sets an open file to mode 0600 (nothing on Windows).
pub fn restrict_file(file: &File) -> io::Result<()> {
    imp::restrict_file(file)
}
