//! Which prefixes get routes, which go through the default routes' table and rules, and that
//! exactly what was added is removed, against a recording stand-in for the kernel.

use super::*;
use std::sync::Mutex;

/// A stand-in for the kernel: the main table's routes it holds, and a log of the rest.
#[derive(Debug, Default, Clone)]
pub(crate) struct Recorded {
    /// The main table's routes of ours.
    pub routes: Arc<Mutex<Vec<IpPrefix>>>,
    /// Main-table prefixes routed elsewhere already: adding them fails.
    pub refuse: Vec<IpPrefix>,
    /// Table routes, rules and marks done, in order: `mark 51820`, `add 0.0.0.0/0 table
    /// 51820`, `add IPv4 rule 32764: lookup main suppress_prefixlength 0`, `remove …`.
    pub policy: Arc<Mutex<Vec<String>>>,
    /// Requests (as `policy` writes them) that fail, and how.
    pub fail: Vec<(String, io::ErrorKind)>,
}

impl Recorded {
    fn policy_request(&mut self, request: String) -> io::Result<()> {
        if let Some((_, kind)) = self.fail.iter().find(|(failing, _)| *failing == request) {
            return Err(io::Error::from(*kind));
        }
        self.policy.lock().unwrap().push(request);
        Ok(())
    }
}

impl RouteTable for Recorded {
    fn add(&mut self, prefix: IpPrefix, table: Option<u32>) -> io::Result<()> {
        if let Some(table) = table {
            return self.policy_request(format!("add {prefix} table {table}"));
        }
        if self.refuse.contains(&prefix) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        self.routes.lock().unwrap().push(prefix);
        Ok(())
    }

    fn remove(&mut self, prefix: IpPrefix, table: Option<u32>) -> io::Result<()> {
        if let Some(table) = table {
            return self.policy_request(format!("remove {prefix} table {table}"));
        }
        let mut routes = self.routes.lock().unwrap();
        let at = routes.iter().position(|p| *p == prefix);
        at.map(|at| routes.remove(at))
            .map(drop)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn add_rule(&mut self, rule: &Rule) -> io::Result<()> {
        self.policy_request(format!("add {rule}"))
    }

    fn remove_rule(&mut self, rule: &Rule) -> io::Result<()> {
        self.policy_request(format!("remove {rule}"))
    }

    fn mark_sockets(&mut self, mark: u32) -> io::Result<()> {
        self.policy_request(format!("mark {mark}"))
    }
}

fn prefixes(list: &[&str]) -> Vec<IpPrefix> {
    list.iter().map(|p| p.parse().unwrap()).collect()
}

/// The sorted main-table routes of `table`.
fn main_routes(table: &Recorded) -> impl Fn() -> Vec<String> + use<> {
    let routes = Arc::clone(&table.routes);
    move || {
        let mut list: Vec<String> = routes
            .lock()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        list.sort();
        list
    }
}

/// Takes what `table` logged of its policy requests so far.
fn policy_log(table: &Recorded) -> impl Fn() -> Vec<String> + use<> {
    let policy = Arc::clone(&table.policy);
    move || std::mem::take(&mut *policy.lock().unwrap())
}

/// What a default route in table 51820 adds, in order, after the sockets were marked.
const V4_IN: [&str; 3] = [
    "add 0.0.0.0/0 table 51820",
    "add IPv4 rule 32764: lookup main suppress_prefixlength 0",
    "add IPv4 rule 32765: not fwmark 0xca6c lookup 51820",
];
const V4_OUT: [&str; 3] = [
    "remove IPv4 rule 32765: not fwmark 0xca6c lookup 51820",
    "remove IPv4 rule 32764: lookup main suppress_prefixlength 0",
    "remove 0.0.0.0/0 table 51820",
];
const V6_IN: [&str; 3] = [
    "add ::/0 table 51820",
    "add IPv6 rule 32764: lookup main suppress_prefixlength 0",
    "add IPv6 rule 32765: not fwmark 0xca6c lookup 51820",
];
const V6_OUT: [&str; 3] = [
    "remove IPv6 rule 32765: not fwmark 0xca6c lookup 51820",
    "remove IPv6 rule 32764: lookup main suppress_prefixlength 0",
    "remove ::/0 table 51820",
];

#[test]
fn allowed_ips_outside_the_interface_get_routes_that_follow_them() {
    let table = Recorded::default();
    let installed = main_routes(&table);
    let addresses = prefixes(&["10.20.0.1/24", "fd20::1/64"]);
    let mut tun = TunRoutes::new(Box::new(table), "rf0", &addresses, true, None);

    let first = prefixes(&[
        "10.20.0.2/32",   // inside the interface's own subnet
        "fd20::9/128",    // likewise
        "fc12::1/128",    // the overlay's
        "10.9.0.0/16",    // outside
        "10.9.0.7/32",    // inside the /16, another peer's: its own route
        "10.0.0.0/8",     // holds the interface's subnet, so it needs one
        "0.0.0.0/0",      // not in the main table
        "::/0",           // likewise
        "10.9.0.0/16",    // a second time: one route
        "192.168.7.9/24", // host bits cleared
    ]);
    let changes = tun.sync(&first);
    assert_eq!(
        installed(),
        ["10.0.0.0/8", "10.9.0.0/16", "10.9.0.7/32", "192.168.7.0/24"]
    );
    assert_eq!(
        changes.added,
        prefixes(&[
            "10.0.0.0/8",
            "10.9.0.0/16",
            "10.9.0.7/32",
            "192.168.7.0/24",
            "0.0.0.0/0",
            "::/0"
        ])
    );
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
        prefixes(&[
            "10.0.0.0/8",
            "10.9.0.7/32",
            "192.168.7.0/24",
            "0.0.0.0/0",
            "::/0"
        ])
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
    let installed = main_routes(&table);
    let mut tun = TunRoutes::new(Box::new(table), "rf0", &[], true, None);
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
    assert!(installed().is_empty());
}

#[test]
fn default_routes_go_through_their_table_on_sockets_marked_first_and_leave_exactly() {
    let table = Recorded::default();
    let (installed, policy) = (main_routes(&table), policy_log(&table));
    let mut tun = TunRoutes::new(Box::new(table), "rf0", &[], true, None);
    assert_eq!(tun.fwmark(), 0, "no mark until a default route needs one");

    let changes = tun.sync(&prefixes(&["0.0.0.0/0", "10.9.0.0/16"]));
    assert_eq!(changes.added, prefixes(&["10.9.0.0/16", "0.0.0.0/0"]));
    assert_eq!(installed(), ["10.9.0.0/16"], "no default route in main");
    assert_eq!(policy(), [&["mark 51820"][..], &V4_IN].concat());
    assert_eq!(tun.fwmark(), 51820);

    tun.sync(&prefixes(&["0.0.0.0/0", "::/0", "10.9.0.0/16"]));
    assert_eq!(policy(), V6_IN, "the sockets are marked already");

    let changes = tun.sync(&prefixes(&["::/0"]));
    assert_eq!(changes.removed, prefixes(&["10.9.0.0/16", "0.0.0.0/0"]));
    assert_eq!(policy(), V4_OUT, "the diverting rule first, the route last");
    assert!(installed().is_empty());

    drop(tun);
    assert_eq!(policy(), V6_OUT, "at shutdown, and the mark stays");
}

#[test]
fn a_configured_fwmark_is_the_table_and_the_sockets_have_it_already() {
    let table = Recorded::default();
    let policy = policy_log(&table);
    let mut tun = TunRoutes::new(Box::new(table), "rf0", &[], true, Some(0x1234));
    assert_eq!(tun.fwmark(), 0x1234);
    tun.sync(&prefixes(&["::/0"]));
    assert_eq!(
        policy(),
        [
            "add ::/0 table 4660",
            "add IPv6 rule 32764: lookup main suppress_prefixlength 0",
            "add IPv6 rule 32765: not fwmark 0x1234 lookup 4660",
        ]
    );
}

#[test]
fn a_rule_there_already_stays_and_a_failure_undoes_the_rest() {
    let table = Recorded {
        fail: vec![
            (V4_IN[1].to_owned(), io::ErrorKind::AlreadyExists),
            (V6_IN[2].to_owned(), io::ErrorKind::PermissionDenied),
        ],
        ..Recorded::default()
    };
    let policy = policy_log(&table);
    let mut tun = TunRoutes::new(Box::new(table), "rf0", &[], true, Some(51820));

    let changes = tun.sync(&prefixes(&["0.0.0.0/0", "::/0"]));
    assert_eq!(changes.added, prefixes(&["0.0.0.0/0"]));
    assert_eq!(changes.failed.len(), 1);
    assert_eq!(changes.failed[0].0, prefixes(&["::/0"])[0]);
    assert_eq!(
        policy(),
        [
            V4_IN[0], V4_IN[2], // the suppress rule was there: not added, not ours
            V6_IN[0], V6_IN[1], // then the second rule failed: both undone
            V6_OUT[1], V6_OUT[2],
        ]
    );

    let changes = tun.sync(&prefixes(&["0.0.0.0/0", "::/0"]));
    assert_eq!(changes.failed.len(), 1, "tried again");
    assert_eq!(policy(), [V6_IN[0], V6_IN[1], V6_OUT[1], V6_OUT[2]]);

    tun.sync(&[]);
    assert_eq!(policy(), [V4_OUT[0], V4_OUT[2]], "only what it added goes");
}

#[test]
fn a_taken_table_or_unmarkable_sockets_route_nothing() {
    let table = Recorded {
        fail: vec![(V4_IN[0].to_owned(), io::ErrorKind::AlreadyExists)],
        ..Recorded::default()
    };
    let policy = policy_log(&table);
    let mut tun = TunRoutes::new(Box::new(table), "rf0", &[], true, Some(51820));
    let changes = tun.sync(&prefixes(&["0.0.0.0/0"]));
    assert!(changes.added.is_empty());
    assert!(
        changes.failed[0]
            .1
            .starts_with("table 51820 has a default route already; give the node a fwmark"),
        "{changes:?}"
    );
    assert!(policy().is_empty(), "no rule without the route");

    let table = Recorded {
        fail: vec![("mark 51820".to_owned(), io::ErrorKind::PermissionDenied)],
        ..Recorded::default()
    };
    let policy = policy_log(&table);
    let mut tun = TunRoutes::new(Box::new(table), "rf0", &[], true, None);
    let changes = tun.sync(&prefixes(&["::/0"]));
    assert!(changes.added.is_empty());
    assert!(
        changes.failed[0]
            .1
            .starts_with("cannot mark the node's sockets: "),
        "{changes:?}"
    );
    assert!(policy().is_empty(), "no route or rule on unmarked sockets");
    assert_eq!(tun.fwmark(), 0);
}

#[test]
fn the_fwmark_changes_only_while_no_default_route_rests_on_it() {
    let table = Recorded::default();
    let policy = policy_log(&table);
    let mut tun = TunRoutes::new(Box::new(table), "rf0", &[], true, None);
    tun.set_fwmark(16).unwrap();
    assert_eq!(policy(), ["mark 16"]);
    tun.sync(&prefixes(&["0.0.0.0/0"]));
    assert_eq!(policy()[0], "add 0.0.0.0/0 table 16");

    tun.set_fwmark(16).unwrap();
    let refused = tun.set_fwmark(17).unwrap_err();
    assert!(refused.contains("keeps that mark"), "{refused}");
    assert_eq!(tun.fwmark(), 16);
    assert!(policy().is_empty(), "nothing changed");

    tun.sync(&[]);
    assert_eq!(policy().len(), 3);
    tun.set_fwmark(0).unwrap();
    assert_eq!(policy(), ["mark 0"]);
    tun.sync(&prefixes(&["0.0.0.0/0"]));
    assert_eq!(policy(), [&["mark 51820"][..], &V4_IN].concat());
}

#[test]
fn with_routes_off_nothing_is_routed_but_the_mark_still_changes() {
    let table = Recorded::default();
    let (installed, policy) = (main_routes(&table), policy_log(&table));
    let mut tun = TunRoutes::new(Box::new(table), "rf0", &[], false, None);
    let changes = tun.sync(&prefixes(&["0.0.0.0/0", "10.9.0.0/16"]));
    assert_eq!(changes, RouteChanges::default());
    assert!(installed().is_empty() && policy().is_empty());
    tun.set_fwmark(5).unwrap();
    assert_eq!(policy(), ["mark 5"]);
}
