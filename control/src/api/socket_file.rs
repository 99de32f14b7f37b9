//! A root-only listening socket at a fixed path, for the local API and WireGuard's userspace
//! API: a stale socket left by a node that died is replaced, a live node's is refused, and the
//! file is removed when the socket goes (unless another node took the path meanwhile).

use std::ffi::OsString;
use std::fs::{self, DirBuilder};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The socket is root-only: what it answers names every peer, and may change them.
const SOCKET_MODE: u32 = 0o600;

/// Mode of a socket directory created on the way (`/run/rovy`, `/var/run/wireguard`).
const DIRECTORY_MODE: u32 = 0o755;

/// A listening Unix socket at a path of its own. Dropping it removes the socket file.
#[derive(Debug)]
pub struct SocketFile {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file bound, so that drop removes only this server's
    /// file, never one a later node bound at the same path.
    file_id: (u64, u64),
    /// Directories `bind` created, deepest first: removed on drop when empty, so a node in a
    /// namespace of its own leaves no `/run/rovy/netns/…` behind.
    created_dirs: Vec<PathBuf>,
}

impl SocketFile {
    /// Listens on `path`, creating its directory (mode 0755) if missing; the directories it
    /// created are removed again on drop if they are empty by then.
    ///
    /// A socket file left at `path` by a node that died is replaced; one a live node answers on
    /// is an error (`AddrInUse`, "another node is running on PATH"), as is anything at `path`
    /// that is not a socket. The socket is bound under a temporary name, made root-only, and
    /// only then linked at `path`, so nobody can connect before the mode is set and two nodes
    /// starting at once cannot both take the path.
    pub fn bind(path: &Path) -> io::Result<Self> {
        let file_name = path.file_name().ok_or_else(|| {
            io::Error::new(
                ErrorKind::InvalidInput,
                format!("{}: not a socket file path", path.display()),
            )
        })?;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let created_dirs: Vec<PathBuf> = directory
            .ancestors()
            .take_while(|ancestor| !ancestor.as_os_str().is_empty() && !ancestor.exists())
            .map(Path::to_path_buf)
            .collect();
        DirBuilder::new()
            .recursive(true)
            .mode(DIRECTORY_MODE)
            .create(directory)
            .map_err(|error| with_context(error, &directory.display().to_string()))?;
        remove_stale_socket(path)?;

        let mut temporary_name = OsString::from(".");
        temporary_name.push(file_name);
        temporary_name.push(format!(".{}.binding", std::process::id()));
        let temporary = directory.join(temporary_name);
        remove_if_present(&temporary)?;
        let bound = bind_root_only(&temporary, path);
        let unlinked = remove_if_present(&temporary);
        let listener = bound?;
        unlinked?;

        let file_id = fs::symlink_metadata(path)
            .map(|metadata| (metadata.dev(), metadata.ino()))
            .map_err(|error| with_context(error, &path.display().to_string()))?;
        Ok(Self {
            listener,
            path: path.to_owned(),
            file_id,
            created_dirs,
        })
    }

    /// Where this server listens.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The listener.
    #[must_use]
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let still_ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|metadata| (metadata.dev(), metadata.ino()) == self.file_id);
        if still_ours {
            let _ = fs::remove_file(&self.path);
        }
        for directory in &self.created_dirs {
            if fs::remove_dir(directory).is_err() {
                break;
            }
        }
    }
}

/// Removes a socket file nobody answers on; refuses a live socket or a file of another kind.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(with_context(error, &path.display().to_string())),
    };
    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(
            ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match UnixStream::connect(path) {
        // The probe closes without a request, which a node's server ignores.
        Ok(_probe) => Err(another_node_error(path)),
        Err(error) if error.kind() == ErrorKind::ConnectionRefused => remove_if_present(path),
        Err(error) => Err(with_context(error, &format!("probing {}", path.display()))),
    }
}

/// Binds at `temporary`, sets the socket's mode, and hard-links it at `path`; linking fails if
/// `path` exists, so a node that took the path meanwhile is never displaced.
fn bind_root_only(temporary: &Path, path: &Path) -> io::Result<UnixListener> {
    let temporary_name = temporary.display().to_string();
    let listener = UnixListener::bind(temporary).map_err(|e| with_context(e, &temporary_name))?;
    fs::set_permissions(temporary, fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|error| with_context(error, &temporary_name))?;
    fs::hard_link(temporary, path).map_err(|error| match error.kind() {
        ErrorKind::AlreadyExists => another_node_error(path),
        _ => with_context(error, &path.display().to_string()),
    })?;
    Ok(listener)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != ErrorKind::NotFound => {
            Err(with_context(error, &path.display().to_string()))
        }
        _ => Ok(()),
    }
}

fn another_node_error(path: &Path) -> io::Error {
    io::Error::new(
        ErrorKind::AddrInUse,
        format!("another node is running on {}", path.display()),
    )
}

fn with_context(error: io::Error, context: &str) -> io::Error {
    io::Error::new(error.kind(), format!("{context}: {error}"))
}
