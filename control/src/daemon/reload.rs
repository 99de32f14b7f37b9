//! SIGHUP: the config file read again and its peers applied, the rest of the node untouched.
//!
//! Reading the file and its key files and resolving host names can take a while (a DNS server
//! that does not answer), so a helper thread does it and hands the result to the control
//! thread, which only checks and applies what was loaded. One load runs at a time; a SIGHUP
//! that comes while one runs starts another when it ends, so the last edit is always read.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Sender;

use rovy_dataplane::sys::EventFd;

use super::peers::{Applied, PeerUpdate};
use super::setup;
use crate::config::{Config, InterfaceConfig, Listen};

/// A config file read again, with its peers' endpoints resolved.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub update: PeerUpdate,
}

/// Where the reloads of one node stand.
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    loading: bool,
    again: bool,
}

impl Reloader {
    /// Reloads of the config at `path`.
    pub fn new(path: PathBuf) -> Self {
        Reloader {
            path,
            loading: false,
            again: false,
        }
    }

    /// A SIGHUP: starts a load that sends its result through `done` (and wakes `wake`), or, if
    /// one is running, asks for another after it.
    pub fn request(
        &mut self,
        done: &Sender<Result<Loaded, String>>,
        wake: &Arc<EventFd>,
    ) -> Result<(), String> {
        if self.loading {
            self.again = true;
            return Ok(());
        }
        let (path, done, wake) = (self.path.clone(), done.clone(), Arc::clone(wake));
        std::thread::Builder::new()
            .name("rovy-reload".to_owned())
            .spawn(move || {
                if done.send(load(&path)).is_ok() {
                    wake.notify();
                }
            })
            .map_err(|e| format!("cannot start a thread to read the config: {e}"))?;
        self.loading = true;
        Ok(())
    }

    /// A load ended; returns whether another was asked for meanwhile.
    pub fn finished(&mut self) -> bool {
        self.loading = false;
        std::mem::take(&mut self.again)
    }
}

/// Reads the config at `path` and resolves its peers' endpoints.
fn load(path: &Path) -> Result<Loaded, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let update = setup::peer_update(&config).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Loaded { config, update })
}

/// Refuses a reloaded `[interface]` that differs from the running one: only peers change
/// while the node runs. The error names the file, the key and both values.
pub fn check_interface(
    file: &Path,
    running: &InterfaceConfig,
    loaded: &InterfaceConfig,
) -> Result<(), String> {
    let listen = |listen: &Listen| match listen {
        Listen::AllAddresses { port } => format!("port {port}"),
        Listen::Addresses(addrs) => {
            let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
            addrs.join(", ")
        }
    };
    let addresses = |iface: &InterfaceConfig| {
        let list: Vec<String> = iface.addresses.iter().map(ToString::to_string).collect();
        format!("[{}]", list.join(", "))
    };
    let cores = |cores: Option<u16>| cores.map_or_else(|| "unset".to_owned(), |n| n.to_string());
    let metrics = |addr: Option<std::net::SocketAddr>| {
        addr.map_or_else(|| "unset".to_owned(), |addr| addr.to_string())
    };
    let changed: Option<(&str, String, String)> = if running.name != loaded.name {
        Some(("name", running.name.clone(), loaded.name.clone()))
    } else if running.private_key.as_bytes() != loaded.private_key.as_bytes() {
        Some((
            "private_key",
            format!("the key of {}", running.private_key.public_key()),
            format!("the key of {}", loaded.private_key.public_key()),
        ))
    } else if running.listen != loaded.listen {
        Some(("listen", listen(&running.listen), listen(&loaded.listen)))
    } else if running.addresses != loaded.addresses {
        Some(("addresses", addresses(running), addresses(loaded)))
    } else if running.mtu != loaded.mtu {
        Some(("mtu", running.mtu.to_string(), loaded.mtu.to_string()))
    } else if running.cores != loaded.cores {
        Some(("cores", cores(running.cores), cores(loaded.cores)))
    } else if running.metrics != loaded.metrics {
        Some(("metrics", metrics(running.metrics), metrics(loaded.metrics)))
    } else if running.routes != loaded.routes {
        Some((
            "routes",
            running.routes.to_string(),
            loaded.routes.to_string(),
        ))
    } else if running.fwmark != loaded.fwmark {
        let mark = |mark: Option<u32>| mark.map_or_else(|| "unset".to_owned(), |m| m.to_string());
        Some(("fwmark", mark(running.fwmark), mark(loaded.fwmark)))
    } else {
        None
    };
    match changed {
        None => Ok(()),
        Some((key, was, now)) => Err(format!(
            "{}: interface.{key}: changed from {was} to {now}, which takes a restart (only \
             peers change on reload)",
            file.display()
        )),
    }
}

impl super::Control {
    /// A SIGHUP: reads the config again, off this thread.
    pub(super) fn request_reload(&mut self) {
        if let Err(e) = self
            .reloader
            .request(&self.reloaded_tx, &self.requests_wake)
        {
            tracing::warn!("reload refused: {e}; running config kept");
        }
    }

    /// Applies the configs the reload threads have read, or says why not.
    pub(super) fn take_reloads(&mut self) {
        while let Ok(loaded) = self.reloaded.try_recv() {
            let file = self.reloader.path.display().to_string();
            match self.apply_reload(loaded) {
                Ok(applied) => tracing::info!(
                    "reloaded {file}: {} peer(s) added, {} removed, {} changed",
                    applied.added,
                    applied.removed,
                    applied.changed
                ),
                Err(e) => tracing::warn!("reload refused: {e}; running config kept"),
            }
            if self.reloader.finished() {
                self.request_reload();
            }
        }
    }

    fn apply_reload(&mut self, loaded: Result<Loaded, String>) -> Result<Applied, String> {
        let loaded = loaded?;
        let path = self.reloader.path.clone();
        check_interface(&path, &self.interface, &loaded.config.interface)?;
        self.update_peers(&loaded.update)
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;

    fn interface(key: &PrivateKey, extra: &str) -> InterfaceConfig {
        let text = format!(
            "[interface]\nprivate_key = \"{}\"\n{extra}",
            key.to_base64().as_str()
        );
        Config::from_toml_str(&text, "rovy0.toml", Path::new("."))
            .unwrap()
            .interface
    }

    #[test]
    fn only_peers_may_change_on_reload() {
        let key = PrivateKey::generate(&mut rand_core::OsRng);
        let running = interface(&key, "mtu = 1420\naddresses = [\"10.0.0.1/24\"]\n");
        let file = Path::new("/etc/rovy/rovy0.toml");
        let same = interface(&key, "addresses = [\"10.0.0.1/24\"]\n");
        assert_eq!(check_interface(file, &running, &same), Ok(()));
        let cases = [
            (
                "mtu = 1400\naddresses = [\"10.0.0.1/24\"]\n",
                "interface.mtu: changed from 1420 to 1400",
            ),
            (
                "listen_port = 51820\naddresses = [\"10.0.0.1/24\"]\n",
                "interface.listen: changed from port 1312 to port 51820",
            ),
            (
                "addresses = [\"10.0.0.2/24\"]\n",
                "interface.addresses: changed from [10.0.0.1/24] to [10.0.0.2/24]",
            ),
            (
                "name = \"rovy1\"\naddresses = [\"10.0.0.1/24\"]\n",
                "interface.name: changed from rovy0 to rovy1",
            ),
            (
                "metrics = \"127.0.0.1:9586\"\naddresses = [\"10.0.0.1/24\"]\n",
                "interface.metrics: changed from unset to 127.0.0.1:9586",
            ),
            (
                "routes = false\naddresses = [\"10.0.0.1/24\"]\n",
                "interface.routes: changed from true to false",
            ),
            (
                "fwmark = 51820\naddresses = [\"10.0.0.1/24\"]\n",
                "interface.fwmark: changed from unset to 51820",
            ),
        ];
        for (extra, problem) in cases {
            let error = check_interface(file, &running, &interface(&key, extra)).unwrap_err();
            assert_eq!(
                error,
                format!(
                    "/etc/rovy/rovy0.toml: {problem}, which takes a restart (only peers change \
                     on reload)"
                )
            );
        }
        let other = PrivateKey::generate(&mut rand_core::OsRng);
        let error = check_interface(
            file,
            &running,
            &interface(&other, "addresses = [\"10.0.0.1/24\"]\n"),
        )
        .unwrap_err();
        assert!(error.contains("interface.private_key: changed from the key of"));
    }
}
