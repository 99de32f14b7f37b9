//! The kernel routes that send the peers' allowed IPs into the TUN, as wg-quick adds them
//! (`routes = true`, the default; `routes = false` is wg-quick's `Table = off`).
//!
//! Every peer update ends in [`TunRoutes::sync`] with the allowed IPs of the peers now running:
//! a prefix that gained a peer gets a device route, one that lost its last peer loses it. A
//! prefix the TUN already reaches needs none: inside one of the interface's own addresses'
//! subnets (the kernel's connected route) or in fc00::/8 (the overlay's route). A default
//! route (`0.0.0.0/0`, `::/0`) is never added: it would take the tunnel's own UDP packets into
//! the tunnel too; wg-quick answers that with policy routing, which is left to the operator.
//! Routes the node did not add (one that was there before, with the same prefix) are never
//! removed.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr};

use rovy_dataplane::sys;

use crate::config::IpPrefix;

/// Where the routes go: the kernel's main table, or a stand-in in tests.
pub trait RouteTable: fmt::Debug {
    /// Adds a device route for `prefix` into the TUN.
    fn add(&mut self, prefix: IpPrefix) -> io::Result<()>;
    /// Removes the device route for `prefix` that [`RouteTable::add`] added.
    fn remove(&mut self, prefix: IpPrefix) -> io::Result<()>;
}

/// Device routes through interface `name` in the main table.
#[derive(Debug)]
pub struct KernelRoutes {
    name: String,
}

impl KernelRoutes {
    pub fn new(name: &str) -> Self {
        KernelRoutes {
            name: name.to_owned(),
        }
    }
}

impl RouteTable for KernelRoutes {
    fn add(&mut self, prefix: IpPrefix) -> io::Result<()> {
        sys::add_route(&self.name, prefix.addr(), prefix.prefix_len(), None)
    }

    fn remove(&mut self, prefix: IpPrefix) -> io::Result<()> {
        sys::delete_route(&self.name, prefix.addr(), prefix.prefix_len())
    }
}

/// Most prefixes one log line lists.
const LOGGED_PREFIXES: usize = 8;

/// The routes into the TUN this node keeps for its peers.
#[derive(Debug)]
pub struct TunRoutes {
    table: Box<dyn RouteTable>,
    /// The interface, for the log.
    name: String,
    /// What the TUN reaches without a route of ours: its addresses' subnets and fc00::/8.
    covered: Vec<IpPrefix>,
    /// Routes this node added and has not removed.
    installed: HashSet<IpPrefix>,
    /// Default routes the log has said it leaves alone.
    defaults_noted: HashSet<IpPrefix>,
}

/// What one [`TunRoutes::sync`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RouteChanges {
    pub added: Vec<IpPrefix>,
    pub removed: Vec<IpPrefix>,
    /// Routes that could not be added or removed, and why.
    pub failed: Vec<(IpPrefix, String)>,
}

impl TunRoutes {
    /// Routes into interface `name` through `table`, for an interface with `addresses`.
    pub fn new(table: Box<dyn RouteTable>, name: &str, addresses: &[IpPrefix]) -> Self {
        let overlay = IpPrefix::new(IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)), 8);
        TunRoutes {
            table,
            name: name.to_owned(),
            covered: addresses
                .iter()
                .map(IpPrefix::masked)
                .chain(overlay)
                .collect(),
            installed: HashSet::new(),
            defaults_noted: HashSet::new(),
        }
    }

    /// Whether `prefix` needs a route of ours.
    fn wanted(&self, prefix: &IpPrefix) -> bool {
        prefix.prefix_len() > 0
            && !self
                .covered
                .iter()
                .any(|own| own.prefix_len() <= prefix.prefix_len() && own.overlaps(prefix))
    }

    /// Makes the routes those the running peers' `allowed` IPs need, and logs what changed.
    pub fn sync<'a>(&mut self, allowed: impl IntoIterator<Item = &'a IpPrefix>) -> RouteChanges {
        let mut wanted = HashSet::new();
        for prefix in allowed {
            let prefix = prefix.masked();
            if prefix.prefix_len() == 0 && self.defaults_noted.insert(prefix) {
                tracing::warn!(
                    "not routing {prefix} into {}: a default route would take the tunnel's own \
                     packets too; route it with policy routing (as wg-quick does)",
                    self.name
                );
            }
            if self.wanted(&prefix) {
                wanted.insert(prefix);
            }
        }
        let mut changes = RouteChanges::default();
        let mut gone: Vec<IpPrefix> = self.installed.difference(&wanted).copied().collect();
        let mut new: Vec<IpPrefix> = wanted.difference(&self.installed).copied().collect();
        gone.sort_by_key(|p| (p.addr(), p.prefix_len()));
        new.sort_by_key(|p| (p.addr(), p.prefix_len()));
        for prefix in gone {
            match self.table.remove(prefix) {
                Ok(()) => changes.removed.push(prefix),
                // Someone removed it already: it is gone either way.
                Err(e) if e.kind() == io::ErrorKind::NotFound => changes.removed.push(prefix),
                Err(e) => {
                    changes.failed.push((prefix, e.to_string()));
                    continue;
                }
            }
            self.installed.remove(&prefix);
        }
        for prefix in new {
            match self.table.add(prefix) {
                Ok(()) => {
                    self.installed.insert(prefix);
                    changes.added.push(prefix);
                }
                Err(e) => changes.failed.push((prefix, e.to_string())),
            }
        }
        self.log(&changes);
        changes
    }

    fn log(&self, changes: &RouteChanges) {
        if !changes.added.is_empty() || !changes.removed.is_empty() {
            tracing::info!(
                "routes into {}: added {}; removed {}",
                self.name,
                list(changes.added.iter()),
                list(changes.removed.iter())
            );
        }
        if !changes.failed.is_empty() {
            tracing::warn!(
                "routes into {} not changed: {}",
                self.name,
                list(changes.failed.iter().map(|(p, why)| format!("{p} ({why})")))
            );
        }
    }
}

/// Up to [`LOGGED_PREFIXES`] items joined by commas, and how many more there are; `none` for
/// no items.
fn list<T: fmt::Display>(items: impl ExactSizeIterator<Item = T>) -> String {
    let total = items.len();
    if total == 0 {
        return "none".to_owned();
    }
    let shown: Vec<String> = items.take(LOGGED_PREFIXES).map(|i| i.to_string()).collect();
    match total - shown.len() {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A table that records what it is asked and refuses the prefixes in `refuse`.
    #[derive(Debug, Default, Clone)]
    pub(crate) struct Recorded {
        pub routes: Arc<Mutex<Vec<IpPrefix>>>,
        pub refuse: Vec<IpPrefix>,
    }

    impl RouteTable for Recorded {
        fn add(&mut self, prefix: IpPrefix) -> io::Result<()> {
            if self.refuse.contains(&prefix) {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            self.routes.lock().unwrap().push(prefix);
            Ok(())
        }

        fn remove(&mut self, prefix: IpPrefix) -> io::Result<()> {
            let mut routes = self.routes.lock().unwrap();
            let at = routes.iter().position(|p| *p == prefix);
            at.map(|at| routes.remove(at))
                .map(drop)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }
    }

    fn prefixes(list: &[&str]) -> Vec<IpPrefix> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    #[test]
    fn allowed_ips_outside_the_interface_get_routes_that_follow_them() {
        let table = Recorded::default();
        let routes = Arc::clone(&table.routes);
        let addresses = prefixes(&["10.20.0.1/24", "fd20::1/64"]);
        let mut tun = TunRoutes::new(Box::new(table), "rf0", &addresses);
        let installed = || {
            let mut list: Vec<String> = routes
                .lock()
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect();
            list.sort();
            list
        };

        let first = prefixes(&[
            "10.20.0.2/32",   // inside the interface's own subnet
            "fd20::9/128",    // likewise
            "fc12::1/128",    // the overlay's
            "10.9.0.0/16",    // outside
            "10.9.0.7/32",    // inside the /16, another peer's: its own route
            "10.0.0.0/8",     // holds the interface's subnet, so it needs one
            "0.0.0.0/0",      // never
            "::/0",           // never
            "10.9.0.0/16",    // a second time: one route
            "192.168.7.9/24", // host bits cleared
        ]);
        let changes = tun.sync(&first);
        assert_eq!(
            installed(),
            ["10.0.0.0/8", "10.9.0.0/16", "10.9.0.7/32", "192.168.7.0/24"]
        );
        assert_eq!(changes.added.len(), 4);
        assert!(changes.removed.is_empty() && changes.failed.is_empty());

        assert_eq!(
            tun.sync(&first),
            RouteChanges::default(),
            "no change, no calls"
        );

        let second = prefixes(&["10.9.0.0/16", "10.9.0.8/32", "fd99::/48"]);
        let changes = tun.sync(&second);
        assert_eq!(installed(), ["10.9.0.0/16", "10.9.0.8/32", "fd99::/48"]);
        assert_eq!(
            changes.removed,
            prefixes(&["10.0.0.0/8", "10.9.0.7/32", "192.168.7.0/24"])
        );
        assert_eq!(changes.added, prefixes(&["10.9.0.8/32", "fd99::/48"]));

        assert_eq!(tun.sync(&[]).removed.len(), 3);
        assert!(installed().is_empty());
    }

    #[test]
    fn a_route_that_was_there_before_is_never_removed() {
        let taken = prefixes(&["10.9.0.0/16"]);
        let table = Recorded {
            refuse: taken.clone(),
            ..Recorded::default()
        };
        let routes = Arc::clone(&table.routes);
        let mut tun = TunRoutes::new(Box::new(table), "rf0", &[]);
        let changes = tun.sync(&prefixes(&["10.9.0.0/16", "10.8.0.0/16"]));
        assert_eq!(changes.added, prefixes(&["10.8.0.0/16"]));
        assert_eq!(changes.failed.len(), 1);
        assert_eq!(changes.failed[0].0, taken[0]);
        let changes = tun.sync(&[]);
        assert_eq!(
            changes.removed,
            prefixes(&["10.8.0.0/16"]),
            "only the route it added"
        );
        assert!(routes.lock().unwrap().is_empty());
    }
}
