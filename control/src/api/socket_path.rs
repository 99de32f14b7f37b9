//! Where a node's API socket lives by default.
//!
//! `/run` is shared by every network namespace on a host (`ip netns exec` gives a process its own
//! network and mount namespace but leaves `/run` as it is), while interface names are per
//! namespace: two nodes both running `rovy0`, each in its own namespace, are normal. So the
//! default path names the namespace too:
//! - in the host's own (initial) network namespace: `/run/rovy/NAME.sock`;
//! - in a namespace named by `ip netns` (a file in `/run/netns` is that namespace):
//!   `/run/rovy/netns/NSNAME/NAME.sock`;
//! - in any other namespace: `/run/rovy/netns/net-INODE/NAME.sock`, INODE being the namespace's
//!   inode number as `readlink /proc/self/ns/net` shows it.
//!
//! The node and `rovy-fast status` run the same resolution, so a client started in the node's
//! namespace finds it with no flag. The namespace PID 1 is in counts as initial too, so a node in
//! a container whose init shares its network namespace keeps the plain path; one whose
//! namespace cannot be inspected at all takes it as well.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::SOCKET_DIR;

/// Directory, inside [`SOCKET_DIR`], of the sockets of nodes outside the initial namespace.
const NETNS_DIR: &str = "netns";

/// Inode number of the kernel's initial network namespace (`PROC_NET_INIT_INO` in
/// `include/linux/proc_ns.h`, fixed since Linux 3.8): recognised even where PID 1's namespace
/// may not be inspected.
const INIT_NET_INODE: u64 = 0xEFFF_FFF9;

/// The calling thread's network namespace, as far as naming its sockets goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsName {
    /// The host's initial namespace (or one that cannot be told from it).
    Initial,
    /// A namespace `ip netns` knows by this name.
    Named(String),
    /// A namespace with no name, by inode number.
    Anonymous(u64),
}

impl NetnsName {
    /// The calling thread's namespace, found through `/proc` and `/run/netns`.
    #[must_use]
    pub fn current() -> Self {
        Self::resolve(
            Path::new("/proc/thread-self/ns/net"),
            Path::new("/proc/1/ns/net"),
            Path::new("/run/netns"),
        )
    }

    /// The namespace at `own`, compared with the named ones in `named_dir` and with PID 1's at
    /// `initial`. A named match wins (sorted by name, so a namespace with two names always
    /// resolves to the same one); then an `own` that is neither the kernel's initial namespace
    /// nor `initial` is anonymous.
    fn resolve(own: &Path, initial: &Path, named_dir: &Path) -> Self {
        let Some(own) = file_id(own) else {
            return Self::Initial;
        };
        if let Ok(entries) = fs::read_dir(named_dir) {
            let mut names: Vec<(String, PathBuf)> = entries
                .filter_map(Result::ok)
                .filter_map(|entry| Some((entry.file_name().into_string().ok()?, entry.path())))
                .collect();
            names.sort();
            if let Some((name, _)) = names
                .into_iter()
                .find(|(name, path)| is_plain_name(name) && file_id(path) == Some(own))
            {
                return Self::Named(name);
            }
        }
        let is_initial = own.1 == INIT_NET_INODE || file_id(initial) == Some(own);
        if is_initial {
            Self::Initial
        } else {
            Self::Anonymous(own.1)
        }
    }

    /// The directory of this namespace's sockets.
    #[must_use]
    pub fn socket_dir(&self) -> PathBuf {
        let base = PathBuf::from(SOCKET_DIR);
        match self {
            Self::Initial => base,
            Self::Named(name) => base.join(NETNS_DIR).join(name),
            Self::Anonymous(inode) => base.join(NETNS_DIR).join(format!("net-{inode}")),
        }
    }
}

/// The API socket of the node running interface `interface` in the calling thread's network
/// namespace: one socket per interface and namespace, so nodes on one host never collide by
/// default.
#[must_use]
pub fn default_socket_path(interface: &str) -> PathBuf {
    NetnsName::current()
        .socket_dir()
        .join(format!("{interface}.sock"))
}

/// Device and inode of the file at `path` (following links, as namespace files are).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// A name usable as one path component.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A scratch directory of files standing in for namespaces: `own`, `initial`, and the
    /// directory of named ones; removed on drop.
    struct Layout {
        dir: PathBuf,
    }

    impl Layout {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "rovy-fast-netns-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("netns")).unwrap();
            for file in ["own", "initial"] {
                fs::write(dir.join(file), "").unwrap();
            }
            Layout { dir }
        }
        fn path(&self, name: &str) -> PathBuf {
            self.dir.join(name)
        }
        fn name(&self, ns: &str, target: &str) {
            fs::hard_link(self.path(target), self.path("netns").join(ns)).unwrap();
        }
        fn resolve(&self, own: &str) -> NetnsName {
            NetnsName::resolve(&self.path(own), &self.path("initial"), &self.path("netns"))
        }
    }

    impl Drop for Layout {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn initial_namespace_keeps_the_plain_path() {
        let layout = Layout::new();
        assert_eq!(layout.resolve("initial"), NetnsName::Initial);
        assert_eq!(
            NetnsName::Initial.socket_dir(),
            PathBuf::from("/run/rovy"),
            "the initial namespace's path is the one README documents"
        );
    }

    #[test]
    fn a_named_namespace_is_found_by_identity_not_by_name() {
        let layout = Layout::new();
        layout.name("rf-other", "initial");
        layout.name("rf-b", "own");
        layout.name("rf-a", "own");
        assert_eq!(layout.resolve("own"), NetnsName::Named("rf-a".into()));
        assert_eq!(
            NetnsName::Named("rf-a".into()).socket_dir(),
            PathBuf::from("/run/rovy/netns/rf-a")
        );
    }

    #[test]
    fn an_unnamed_namespace_is_named_by_inode() {
        let layout = Layout::new();
        let inode = fs::metadata(layout.path("own")).unwrap().ino();
        assert_eq!(layout.resolve("own"), NetnsName::Anonymous(inode));
        assert_eq!(
            NetnsName::Anonymous(4_026_532_000).socket_dir(),
            PathBuf::from("/run/rovy/netns/net-4026532000")
        );
    }

    #[test]
    fn without_pid_1_the_kernel_initial_inode_decides() {
        let layout = Layout::new();
        let missing = layout.path("missing");
        let own = fs::metadata(layout.path("own")).unwrap().ino();
        assert_ne!(own, INIT_NET_INODE);
        assert_eq!(
            NetnsName::resolve(&layout.path("own"), &missing, &missing),
            NetnsName::Anonymous(own)
        );
        assert_eq!(
            NetnsName::resolve(&missing, &layout.path("initial"), &layout.path("netns")),
            NetnsName::Initial,
            "a namespace that cannot be inspected at all takes the plain path"
        );
    }

    #[test]
    fn this_thread_in_a_fresh_namespace_gets_a_path_of_its_own() {
        // Needs root (a new network namespace), as the other namespace tests do.
        let host = default_socket_path("rovy0");
        let inside = std::thread::spawn(|| {
            rovy_dataplane::sys::netns::enter_new_netns_for_current_thread().unwrap();
            default_socket_path("rovy0")
        })
        .join()
        .unwrap();
        assert_ne!(host, inside);
        assert!(
            inside.starts_with("/run/rovy/netns/"),
            "{}",
            inside.display()
        );
    }
}
