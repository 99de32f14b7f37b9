//! Default routes (`0.0.0.0/0`, `::/0`) into the TUN, as wg-quick routes them. In the main
//! table a default route would take the tunnel's own UDP packets into the tunnel too; so it
//! goes into a table of its own, M, and two policy rules put that table in front of the main
//! table's default route:
//!
//! - priority 32764, `lookup main suppress_prefixlength 0`: the main table still routes
//!   everything it has a route for besides its default one (the local networks, the link to
//!   an endpoint next door);
//! - priority 32765, `not fwmark M lookup M`: every other packet that is not the node's own
//!   takes table M's default route into the TUN. The node's own packets carry firewall mark M
//!   (`SO_MARK` on every UDP socket) and fall through to the main table.
//!
//! wg-quick's rules get the same priorities from the kernel on a system with the stock rules.
//! M is the configured `fwmark` (the sockets were bound with it), else wg-quick's 51820: the
//! sockets are marked with it before the first rule exists, so no handshake ever loops into the
//! tunnel. Each family is routed on its own, once some peer has its default prefix; when none
//! has it any more, and when the node stops, exactly what this node added for it is removed,
//! the rule that diverts packets first. A rule that was there already (the same rule, with the
//! same protocol: a node that was killed left it) serves, and is left alone.

use std::io;

use rovy_dataplane::sys::{Rule, Selector};

use super::{RouteChanges, RouteTable};
use crate::config::IpPrefix;

/// The mark, and table, a default route takes when no `fwmark` is configured: wg-quick's.
const DEFAULT_FWMARK: u32 = 51820;
/// Where the rule that lets the main table's other routes win goes.
const SUPPRESS_PRIORITY: u32 = 32764;
/// Where the rule that sends the rest into table M goes.
const NOT_MARKED_PRIORITY: u32 = 32765;
/// The main routing table.
const MAIN_TABLE: u32 = 254;

/// One thing this node added for a default route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// The default route into the TUN in this table.
    Route(u32),
    Rule(Rule),
}

/// A default route this node routes: its prefix and what it added for it and has not
/// removed, in the order added.
#[derive(Debug)]
struct Routed {
    prefix: IpPrefix,
    added: Vec<Entry>,
}

/// The default routes of both families and the mark of the node's sockets.
#[derive(Debug)]
pub struct DefaultRoutes {
    /// The mark on the node's sockets now; 0 for none.
    mark: u32,
    /// At most one per family.
    routed: Vec<Routed>,
}

/// The two rules a default route in table `table` (= the sockets' mark) needs, in the order
/// they are added.
fn rules(v6: bool, table: u32) -> [Rule; 2] {
    [
        Rule {
            v6,
            priority: SUPPRESS_PRIORITY,
            selector: Selector::SuppressPrefixLen(0),
            table: MAIN_TABLE,
        },
        Rule {
            v6,
            priority: NOT_MARKED_PRIORITY,
            selector: Selector::NotMarked(table),
            table,
        },
    ]
}

impl DefaultRoutes {
    /// No default route yet, on sockets bound with `mark` (if any).
    pub fn new(mark: Option<u32>) -> Self {
        DefaultRoutes {
            mark: mark.unwrap_or(0),
            routed: Vec::new(),
        }
    }

    /// The mark on the node's sockets now; 0 for none.
    pub fn mark(&self) -> u32 {
        self.mark
    }

    /// Marks the sockets with `mark` (0: none). Refused while a default route rests on the
    /// mark they have: its rule would send the node's own packets into the tunnel.
    pub fn set_mark(&mut self, table: &mut dyn RouteTable, mark: u32) -> Result<(), String> {
        if mark == self.mark {
            return Ok(());
        }
        if !self.routed.is_empty() {
            return Err(format!(
                "the default routes go through table {0} for the packets without fwmark {0:#x}, \
                 so a running node keeps that mark while a peer has 0.0.0.0/0 or ::/0 (set \
                 fwmark in the config and restart)",
                self.mark
            ));
        }
        table
            .mark_sockets(mark)
            .map_err(|e| format!("cannot mark the node's sockets: {e}"))?;
        self.mark = mark;
        Ok(())
    }

    /// Routes the default routes in `wanted` (`0.0.0.0/0`, `::/0`, each at most once) and no
    /// others, recording what changed in `changes`. One whose removal failed in part keeps
    /// what is left, which the next call removes.
    pub fn sync(
        &mut self,
        table: &mut dyn RouteTable,
        wanted: &[IpPrefix],
        changes: &mut RouteChanges,
    ) {
        let mut kept = Vec::with_capacity(self.routed.len());
        for mut routed in std::mem::take(&mut self.routed) {
            if wanted.contains(&routed.prefix) {
                kept.push(routed);
            } else if remove_all(table, routed.prefix, &mut routed.added, changes) {
                changes.removed.push(routed.prefix);
            } else {
                kept.push(routed);
            }
        }
        self.routed = kept;
        for prefix in wanted {
            if !self.routed.iter().any(|routed| routed.prefix == *prefix) {
                self.route(table, *prefix, changes);
            }
        }
    }

    fn route(&mut self, table: &mut dyn RouteTable, prefix: IpPrefix, changes: &mut RouteChanges) {
        if self.mark == 0 {
            if let Err(e) = table.mark_sockets(DEFAULT_FWMARK) {
                let why = format!("cannot mark the node's sockets: {e}");
                return changes.failed.push((prefix, why));
            }
            self.mark = DEFAULT_FWMARK;
        }
        let number = self.mark;
        if let Err(e) = table.add(prefix, Some(number)) {
            let why = match e.kind() {
                io::ErrorKind::AlreadyExists => format!(
                    "table {number} has a default route already; give the node a fwmark of its \
                     own, the number of a free table ({e})"
                ),
                _ => e.to_string(),
            };
            return changes.failed.push((prefix, why));
        }
        let mut added = vec![Entry::Route(number)];
        for rule in rules(prefix.addr().is_ipv6(), number) {
            match table.add_rule(&rule) {
                Ok(()) => added.push(Entry::Rule(rule)),
                // There already: it serves, and stays whoever's it is.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    changes.failed.push((prefix, e.to_string()));
                    if !remove_all(table, prefix, &mut added, changes) {
                        self.routed.push(Routed { prefix, added });
                    }
                    return;
                }
            }
        }
        self.routed.push(Routed { prefix, added });
        changes.added.push(prefix);
    }
}

/// Removes `added`, last first; what cannot be removed stays in it (to be tried again) and is
/// reported in `changes`. Returns whether everything went.
fn remove_all(
    table: &mut dyn RouteTable,
    prefix: IpPrefix,
    added: &mut Vec<Entry>,
    changes: &mut RouteChanges,
) -> bool {
    let mut kept = Vec::new();
    while let Some(entry) = added.pop() {
        let removed = match entry {
            Entry::Route(number) => table.remove(prefix, Some(number)),
            Entry::Rule(rule) => table.remove_rule(&rule),
        };
        match removed {
            Ok(()) => {}
            // Someone removed it already: it is gone either way.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                changes.failed.push((prefix, e.to_string()));
                kept.push(entry);
            }
        }
    }
    kept.reverse();
    *added = kept;
    added.is_empty()
}
