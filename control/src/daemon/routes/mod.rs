//! The kernel routes that send the peers' allowed IPs into the TUN, as wg-quick adds them
//! (`routes = true`, the default; `routes = false` is wg-quick's `Table = off`), and the
//! firewall mark of the node's UDP sockets that full-tunnel routing rests on.
//!
//! Every peer update ends in [`TunRoutes::sync`] with the allowed IPs of the peers now running:
//! a prefix that gained a peer gets a device route, one that lost its last peer loses it. A
//! prefix the TUN already reaches needs none: inside one of the interface's own addresses'
//! subnets (the kernel's connected route) or in fc00::/8 (the overlay's route). A default
//! route (`0.0.0.0/0`, `::/0`) would take the tunnel's own UDP packets into the tunnel too, so
//! it goes into a table of its own behind two policy rules instead, as wg-quick routes it (see
//! [`default`]). Routes the node did not add (one that was there before, with the same
//! prefix) are never removed.

mod default;
#[cfg(test)]
pub(super) mod tests;

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use rovy_dataplane::sys::{self, Rule};

use crate::config::IpPrefix;
use default::DefaultRoutes;

/// Where the routes and rules go: the kernel, or a stand-in in tests.
pub trait RouteTable: fmt::Debug {
    /// Adds a device route for `prefix` into the TUN, in the main table or in `table`.
    fn add(&mut self, prefix: IpPrefix, table: Option<u32>) -> io::Result<()>;
    /// Removes the device route for `prefix` that [`RouteTable::add`] added.
    fn remove(&mut self, prefix: IpPrefix, table: Option<u32>) -> io::Result<()>;
    /// Adds a policy routing rule; [`io::ErrorKind::AlreadyExists`] if it is there already.
    fn add_rule(&mut self, rule: &Rule) -> io::Result<()>;
    /// Removes a rule [`RouteTable::add_rule`] added.
    fn remove_rule(&mut self, rule: &Rule) -> io::Result<()>;
    /// Sets the firewall mark of every UDP socket of the node (0 clears it).
    fn mark_sockets(&mut self, mark: u32) -> io::Result<()>;
}

/// Device routes through interface `name`, rules, and the marks of the node's `sockets`.
#[derive(Debug)]
pub struct KernelRoutes {
    name: String,
    sockets: Vec<Arc<OwnedFd>>,
}

impl KernelRoutes {
    /// Routes into interface `name`, for a node whose UDP sockets (every worker's) are
    /// `sockets`.
    pub fn new(name: &str, sockets: Vec<Arc<OwnedFd>>) -> Self {
        KernelRoutes {
            name: name.to_owned(),
            sockets,
        }
    }
}

impl RouteTable for KernelRoutes {
    fn add(&mut self, prefix: IpPrefix, table: Option<u32>) -> io::Result<()> {
        let (addr, len) = (prefix.addr(), prefix.prefix_len());
        match table {
            None => sys::add_route(&self.name, addr, len, None),
            Some(table) => sys::add_table_route(&self.name, addr, len, table),
        }
    }

    fn remove(&mut self, prefix: IpPrefix, table: Option<u32>) -> io::Result<()> {
        let (addr, len) = (prefix.addr(), prefix.prefix_len());
        match table {
            None => sys::delete_route(&self.name, addr, len),
            Some(table) => sys::delete_table_route(&self.name, addr, len, table),
        }
    }

    fn add_rule(&mut self, rule: &Rule) -> io::Result<()> {
        sys::add_rule(rule)
    }

    fn remove_rule(&mut self, rule: &Rule) -> io::Result<()> {
        sys::delete_rule(rule)
    }

    fn mark_sockets(&mut self, mark: u32) -> io::Result<()> {
        self.sockets
            .iter()
            .try_for_each(|socket| sys::set_mark(&**socket, mark))
    }
}

/// Most prefixes one log line lists.
const LOGGED_PREFIXES: usize = 8;

/// The routes into the TUN this node keeps for its peers, and its sockets' firewall mark.
#[derive(Debug)]
pub struct TunRoutes {
    table: Box<dyn RouteTable>,
    /// The interface, for the log.
    name: String,
    /// Whether allowed IPs are routed at all (`routes`).
    enabled: bool,
    /// What the TUN reaches without a route of ours: its addresses' subnets and fc00::/8.
    covered: Vec<IpPrefix>,
    /// Routes in the main table this node added and has not removed.
    installed: HashSet<IpPrefix>,
    /// The default routes, through their table and rules, and the mark they rest on.
    defaults: DefaultRoutes,
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
    /// Routes into interface `name` through `table`, for an interface with `addresses`; none
    /// unless `enabled`. `fwmark` is the mark the node's sockets were bound with, if any.
    pub fn new(
        table: Box<dyn RouteTable>,
        name: &str,
        addresses: &[IpPrefix],
        enabled: bool,
        fwmark: Option<u32>,
    ) -> Self {
        let overlay = IpPrefix::new(IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)), 8);
        TunRoutes {
            table,
            name: name.to_owned(),
            enabled,
            covered: addresses
                .iter()
                .map(IpPrefix::masked)
                .chain(overlay)
                .collect(),
            installed: HashSet::new(),
            defaults: DefaultRoutes::new(fwmark),
        }
    }

    /// The firewall mark the node's sockets carry now; 0 for none.
    pub fn fwmark(&self) -> u32 {
        self.defaults.mark()
    }

    /// Marks the node's sockets with `mark` (0: none), as `wg set fwmark` asks; refused while
    /// default routes rest on the mark they have.
    pub fn set_fwmark(&mut self, mark: u32) -> Result<(), String> {
        self.defaults.set_mark(&mut *self.table, mark)
    }

    /// Whether `prefix`, not a default route, needs a route of ours in the main table.
    fn wanted(&self, prefix: &IpPrefix) -> bool {
        !self
            .covered
            .iter()
            .any(|own| own.prefix_len() <= prefix.prefix_len() && own.overlaps(prefix))
    }

    /// Makes the routes those the running peers' `allowed` IPs need, and logs what changed.
    pub fn sync<'a>(&mut self, allowed: impl IntoIterator<Item = &'a IpPrefix>) -> RouteChanges {
        let mut changes = RouteChanges::default();
        if !self.enabled {
            return changes;
        }
        let mut wanted = HashSet::new();
        let mut defaults = Vec::new();
        for prefix in allowed {
            let prefix = prefix.masked();
            if prefix.prefix_len() == 0 {
                if !defaults.contains(&prefix) {
                    defaults.push(prefix);
                }
            } else if self.wanted(&prefix) {
                wanted.insert(prefix);
            }
        }
        let mut gone: Vec<IpPrefix> = self.installed.difference(&wanted).copied().collect();
        let mut new: Vec<IpPrefix> = wanted.difference(&self.installed).copied().collect();
        gone.sort_by_key(|p| (p.addr(), p.prefix_len()));
        new.sort_by_key(|p| (p.addr(), p.prefix_len()));
        for prefix in gone {
            match self.table.remove(prefix, None) {
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
            match self.table.add(prefix, None) {
                Ok(()) => {
                    self.installed.insert(prefix);
                    changes.added.push(prefix);
                }
                Err(e) => changes.failed.push((prefix, e.to_string())),
            }
        }
        defaults.sort_by_key(|p| p.addr().is_ipv6());
        self.defaults
            .sync(&mut *self.table, &defaults, &mut changes);
        self.log(&changes);
        changes
    }

    fn log(&self, changes: &RouteChanges) {
        let shown = |prefix: &IpPrefix| match prefix.prefix_len() {
            0 => format!(
                "{prefix} (table {mark}, for the packets without fwmark {mark:#x})",
                mark = self.defaults.mark()
            ),
            _ => prefix.to_string(),
        };
        if !changes.added.is_empty() || !changes.removed.is_empty() {
            tracing::info!(
                "routes into {}: added {}; removed {}",
                self.name,
                list(changes.added.iter().map(shown)),
                list(changes.removed.iter().map(shown))
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

impl Drop for TunRoutes {
    /// Removes the default routes' rules, which outlive the interface (its routes go with it).
    fn drop(&mut self) {
        let mut changes = RouteChanges::default();
        self.defaults.sync(&mut *self.table, &[], &mut changes);
        self.log(&changes);
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
