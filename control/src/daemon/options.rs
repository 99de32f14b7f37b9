//! How a node is run: the worker backend and the command line's options.

use rovy_dataplane::sys;

use crate::cpus::{self, CpuList};

/// Which worker loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One io_uring per worker.
    Uring,
    /// epoll with recvmmsg/sendmmsg.
    Epoll,
}

impl Backend {
    /// The name used in logs and status.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Uring => "uring",
            Backend::Epoll => "epoll",
        }
    }

    /// [`Backend::Uring`] if this kernel allows it (see [`sys::uring::probe`]), else why not:
    /// io_uring may be missing, switched off (`kernel.io_uring_disabled`) or filtered by
    /// seccomp.
    pub fn probe_uring() -> Result<Backend, String> {
        sys::uring::probe()
            .map(|()| Backend::Uring)
            .map_err(|e| e.to_string())
    }
}

/// How to run the node, from the command line.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads (`--cores`), else one per `--cpus` entry, else the config's `cores`,
    /// else one per CPU the process may use.
    pub cores: Option<u16>,
    /// The CPU each worker is pinned to (`--cpus`), else the allowed CPUs in increasing order.
    pub cpus: Option<CpuList>,
    /// The backend to use.
    pub backend: Backend,
    /// Whether to use TUN and UDP segmentation offloads where the kernel accepts them.
    pub offloads: bool,
    /// The local API socket; default [`crate::api::default_socket_path`].
    pub socket: Option<std::path::PathBuf>,
    /// The config file, read again on SIGHUP.
    pub config_path: std::path::PathBuf,
}

/// The CPUs to pin workers to, in worker order (worker `i` takes the `i mod len`-th): the
/// `--cpus` list after checking this process may run on each, else the allowed CPUs. Never
/// empty.
pub(super) fn worker_cpus(list: Option<&CpuList>) -> Result<Vec<usize>, String> {
    let allowed = sys::allowed_cores().unwrap_or_default();
    let Some(list) = list else {
        return Ok(if allowed.is_empty() { vec![0] } else { allowed });
    };
    match list.first_not_in(&allowed) {
        Some(cpu) => Err(format!(
            "--cpus {list}: this process may not run on CPU {cpu} (it may use {})",
            cpus::describe(&allowed)
        )),
        None => Ok(list.ids().to_vec()),
    }
}
