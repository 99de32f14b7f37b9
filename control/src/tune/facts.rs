//! What `tune` reads of the machine: files under `/proc` and `/sys` (under a root that tests
//! point at a tree of their own) and, through ethtool, each uplink's GRO setting. A file that
//! is missing or unreadable is a fact not known, never an error: containers and old kernels
//! hide some of them.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cpus::CpuList;

/// One CPU's line of `/proc/net/softnet_stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Softnet {
    /// Packets dropped because the backlog was full.
    pub dropped: u64,
    /// Times receive processing stopped with work left (budget or time ran out).
    pub time_squeeze: u64,
}

/// An interrupt and the CPUs it may run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Irq {
    /// Its number.
    pub number: u32,
    /// `smp_affinity_list`.
    pub cpus: Vec<usize>,
}

/// An interface the node's traffic leaves by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    /// Its name.
    pub name: String,
    /// Whether GRO is on, if ethtool could tell.
    pub gro: Option<bool>,
    /// Its device's interrupts (MSI vectors), if it has a device.
    pub irqs: Vec<Irq>,
    /// Receive queues.
    pub rx_queues: usize,
    /// Whether any receive queue has RPS CPUs set.
    pub rps: bool,
}

/// What `tune` judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// `net.core.rmem_max`.
    pub rmem_max: Option<u64>,
    /// `net.core.wmem_max`.
    pub wmem_max: Option<u64>,
    /// `net.core.netdev_max_backlog`.
    pub netdev_max_backlog: Option<u64>,
    /// `net.core.netdev_budget`.
    pub netdev_budget: Option<u64>,
    /// `net.core.busy_read`.
    pub busy_read: Option<u64>,
    /// `net.core.busy_poll`.
    pub busy_poll: Option<u64>,
    /// Per CPU, from `/proc/net/softnet_stat`.
    pub softnet: Vec<Softnet>,
    /// `(cpu, scaling_governor)` for every CPU with frequency scaling.
    pub governors: Vec<(usize, String)>,
    /// Whether io_uring can be used, else why not.
    pub io_uring: Result<(), String>,
    /// The interfaces looked at.
    pub uplinks: Vec<Uplink>,
}

/// Reads the facts from `root` (`/` on a real machine): `root/proc`, `root/sys`. Uplinks are
/// `interfaces`, or when that is empty every Ethernet-type interface that is up. `gro` asks an
/// interface's GRO setting; `io_uring` is the probe's answer.
pub fn read_facts(
    root: &Path,
    interfaces: &[String],
    gro: impl Fn(&str) -> Option<bool>,
    io_uring: Result<(), String>,
) -> Facts {
    let proc = root.join("proc");
    let sys = root.join("sys");
    let sysctl = |name: &str| number(&proc.join("sys/net/core").join(name));
    let names = if interfaces.is_empty() {
        ethernet_interfaces_up(&sys)
    } else {
        interfaces.to_vec()
    };
    Facts {
        rmem_max: sysctl("rmem_max"),
        wmem_max: sysctl("wmem_max"),
        netdev_max_backlog: sysctl("netdev_max_backlog"),
        netdev_budget: sysctl("netdev_budget"),
        busy_read: sysctl("busy_read"),
        busy_poll: sysctl("busy_poll"),
        softnet: read(&proc.join("net/softnet_stat"))
            .map(|text| softnet(&text))
            .unwrap_or_default(),
        governors: governors(&sys),
        io_uring,
        uplinks: names
            .into_iter()
            .map(|name| uplink(&proc, &sys, name, &gro))
            .collect(),
    }
}

fn read(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn number(path: &Path) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

/// `/proc/net/softnet_stat`: one line per CPU of hexadecimal columns, the second the backlog
/// drops and the third the time squeezes.
pub fn softnet(text: &str) -> Vec<Softnet> {
    text.lines()
        .filter_map(|line| {
            let mut columns = line.split_whitespace().map(|c| u64::from_str_radix(c, 16));
            let _processed = columns.next()?.ok()?;
            Some(Softnet {
                dropped: columns.next()?.ok()?,
                time_squeeze: columns.next()?.ok()?,
            })
        })
        .collect()
}

fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .collect();
    out.sort();
    out
}

fn governors(sys: &Path) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = entries(&sys.join("devices/system/cpu"))
        .into_iter()
        .filter_map(|(name, path)| {
            let cpu = name.strip_prefix("cpu")?.parse().ok()?;
            let governor = read(&path.join("cpufreq/scaling_governor"))?;
            Some((cpu, governor.trim().to_owned()))
        })
        .collect();
    out.sort();
    out
}

/// `ARPHRD_ETHER`, the `type` of Ethernet, veth and most NICs.
const ETHERNET: u64 = 1;

fn ethernet_interfaces_up(sys: &Path) -> Vec<String> {
    entries(&sys.join("class/net"))
        .into_iter()
        .filter(|(_, path)| {
            number(&path.join("type")) == Some(ETHERNET)
                && read(&path.join("operstate")).is_some_and(|s| s.trim() == "up")
        })
        .map(|(name, _)| name)
        .collect()
}

fn uplink(proc: &Path, sys: &Path, name: String, gro: &impl Fn(&str) -> Option<bool>) -> Uplink {
    let dir = sys.join("class/net").join(&name);
    let irqs = entries(&dir.join("device/msi_irqs"))
        .into_iter()
        .filter_map(|(irq, _)| {
            let number: u32 = irq.parse().ok()?;
            let list = read(&proc.join(format!("irq/{number}/smp_affinity_list")))?;
            let cpus = list.trim().parse::<CpuList>().ok()?.ids().to_vec();
            Some(Irq { number, cpus })
        })
        .collect();
    let queues = entries(&dir.join("queues"));
    let rx: Vec<&PathBuf> = queues
        .iter()
        .filter(|(q, _)| q.starts_with("rx-"))
        .map(|(_, path)| path)
        .collect();
    let rps = rx.iter().any(|q| {
        read(&q.join("rps_cpus"))
            .is_some_and(|mask| mask.trim().chars().any(|c| c != '0' && c != ','))
    });
    Uplink {
        gro: gro(&name),
        name,
        irqs,
        rx_queues: rx.len(),
        rps,
    }
}
