//! `rovy-fast tune`: what on this machine holds the node's packet rate back, and what to change.
//!
//! Two halves, so the judgement is testable without the machine: [`facts`] reads what the
//! kernel exposes (sysctls, `/proc/net/softnet_stat`, CPU frequency governors, each uplink's
//! GRO setting, IRQ affinity and RPS), and [`assess`] turns those [`Facts`] into [`Finding`]s,
//! each a level, a topic, what was found and the command that changes it. `tuning/` in the
//! repository holds the matching sysctl profile.

pub mod facts;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use crate::cpus;
use crate::daemon::SOCKET_BUFFER;

pub use facts::{Facts, Uplink, read_facts};

/// The backlog the profile sets: at a million packets a second a core drains 1000 packets in a
/// millisecond, so the default drops a burst that lasts longer than one scheduling hiccup.
pub const WANT_BACKLOG: u64 = 16_384;
/// The per-softirq packet budget the profile sets (default 300).
pub const WANT_BUDGET: u64 = 600;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing to change.
    Ok,
    /// Worth changing for the last part of the packet rate, or at a cost (CPU, latency).
    Advice,
    /// Costing packets or throughput now: `tune` exits non-zero.
    Fix,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Advice => "advice",
            Level::Fix => "fix",
        }
    }
}

/// One thing `tune` has to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How much it matters.
    pub level: Level,
    /// What it is about, e.g. `sysctl`, `governor`, `uplink eth0`.
    pub topic: String,
    /// What was found, why it matters and what to do.
    pub text: String,
}

fn finding(level: Level, topic: impl Into<String>, text: impl Into<String>) -> Finding {
    Finding {
        level,
        topic: topic.into(),
        text: text.into(),
    }
}

/// Everything `facts` says about the machine the node's workers run on `workers` (CPU ids).
pub fn assess(facts: &Facts, workers: &[usize]) -> Vec<Finding> {
    let mut out = Vec::new();
    socket_buffers(facts, &mut out);
    backlog(facts, &mut out);
    busy_polling(facts, &mut out);
    governors(facts, workers, &mut out);
    match &facts.io_uring {
        Ok(()) => out.push(finding(
            Level::Ok,
            "io_uring",
            "available: workers use the io_uring backend",
        )),
        Err(why) => out.push(finding(
            Level::Fix,
            "io_uring",
            format!(
                "not usable ({why}): workers fall back to epoll and a lower packet rate; \
                 allow it with `sysctl -w kernel.io_uring_disabled=0` or lift the seccomp filter"
            ),
        )),
    }
    for uplink in &facts.uplinks {
        uplink_findings(uplink, workers, &mut out);
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.level));
    out
}

fn socket_buffers(facts: &Facts, out: &mut Vec<Finding>) {
    let want = SOCKET_BUFFER as u64;
    for (name, value) in [("rmem_max", facts.rmem_max), ("wmem_max", facts.wmem_max)] {
        let Some(value) = value else { continue };
        if value >= want {
            out.push(finding(
                Level::Ok,
                "sysctl",
                format!("net.core.{name} = {value}"),
            ));
        } else {
            out.push(finding(
                Level::Advice,
                "sysctl",
                format!(
                    "net.core.{name} = {value}, below the {want} bytes the node asks for: with \
                     CAP_NET_ADMIN it forces its buffers past the limit, without it the kernel \
                     caps them here and bursts overflow; `sysctl -w net.core.{name}={want}`"
                ),
            ));
        }
    }
}

fn backlog(facts: &Facts, out: &mut Vec<Finding>) {
    let dropped: u64 = facts.softnet.iter().map(|cpu| cpu.dropped).sum();
    let squeezed: u64 = facts.softnet.iter().map(|cpu| cpu.time_squeeze).sum();
    if let Some(backlog) = facts.netdev_max_backlog {
        let (level, why) = if dropped > 0 {
            (
                Level::Fix,
                format!("the kernel dropped {dropped} packets for a full backlog since boot"),
            )
        } else if backlog < WANT_BACKLOG {
            (
                Level::Advice,
                "a burst longer than it is will be dropped".to_owned(),
            )
        } else {
            (Level::Ok, String::new())
        };
        if level == Level::Ok {
            out.push(finding(
                level,
                "sysctl",
                format!("net.core.netdev_max_backlog = {backlog}"),
            ));
        } else {
            out.push(finding(
                level,
                "sysctl",
                format!(
                    "net.core.netdev_max_backlog = {backlog}: {why}; \
                     `sysctl -w net.core.netdev_max_backlog={WANT_BACKLOG}`"
                ),
            ));
        }
    }
    if let Some(budget) = facts.netdev_budget {
        if squeezed > 0 && budget < WANT_BUDGET {
            out.push(finding(
                Level::Advice,
                "sysctl",
                format!(
                    "net.core.netdev_budget = {budget}: receive processing ran out of budget \
                     {squeezed} times since boot; `sysctl -w net.core.netdev_budget={WANT_BUDGET}`"
                ),
            ));
        } else {
            out.push(finding(
                Level::Ok,
                "sysctl",
                format!("net.core.netdev_budget = {budget}"),
            ));
        }
    }
}

fn busy_polling(facts: &Facts, out: &mut Vec<Finding>) {
    if facts.busy_read == Some(0) && facts.busy_poll == Some(0) {
        out.push(finding(
            Level::Advice,
            "sysctl",
            "net.core.busy_read and busy_poll are 0: busy polling trades CPU for latency on \
             NICs that support it; `sysctl -w net.core.busy_read=50 net.core.busy_poll=50` \
             when the cores are the workers' alone",
        ));
    }
}

fn governors(facts: &Facts, workers: &[usize], out: &mut Vec<Finding>) {
    let mut slow = Vec::new();
    let mut adaptive = Vec::new();
    for (cpu, governor) in &facts.governors {
        if !workers.contains(cpu) {
            continue;
        }
        match governor.as_str() {
            "performance" => {}
            "powersave" | "conservative" => slow.push((*cpu, governor.as_str())),
            _ => adaptive.push((*cpu, governor.as_str())),
        }
    }
    let list = |cpus: &[(usize, &str)]| {
        let ids: Vec<usize> = cpus.iter().map(|(cpu, _)| *cpu).collect();
        format!("CPU {} ({})", cpus::describe(&ids), cpus[0].1)
    };
    if !slow.is_empty() {
        out.push(finding(
            Level::Fix,
            "governor",
            format!(
                "{} keep the clock low under load: workers run at a fraction of their rate; \
                 `cpupower frequency-set -g performance`",
                list(&slow)
            ),
        ));
    }
    if !adaptive.is_empty() {
        out.push(finding(
            Level::Advice,
            "governor",
            format!(
                "{} ramp the clock up only after load arrives: the first milliseconds of a \
                 burst run slow; `cpupower frequency-set -g performance`",
                list(&adaptive)
            ),
        ));
    }
    if slow.is_empty() && adaptive.is_empty() && !facts.governors.is_empty() {
        out.push(finding(
            Level::Ok,
            "governor",
            "the workers' CPUs run the performance governor",
        ));
    }
}

fn uplink_findings(uplink: &Uplink, workers: &[usize], out: &mut Vec<Finding>) {
    let topic = format!("uplink {}", uplink.name);
    match uplink.gro {
        Some(true) => out.push(finding(Level::Ok, &topic, "GRO on")),
        Some(false) => out.push(finding(
            Level::Fix,
            &topic,
            format!(
                "GRO off: every datagram costs the node a read of its own instead of one per \
                 train; `ethtool -K {} gro on`",
                uplink.name
            ),
        )),
        None => {}
    }
    let shared: Vec<usize> = uplink
        .irqs
        .iter()
        .flat_map(|irq| irq.cpus.iter().copied())
        .filter(|cpu| workers.contains(cpu))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !shared.is_empty() {
        let mut irqs = String::new();
        for irq in uplink
            .irqs
            .iter()
            .filter(|irq| irq.cpus.iter().any(|c| shared.contains(c)))
        {
            let _ = write!(
                irqs,
                "{}{}",
                if irqs.is_empty() { "" } else { "," },
                irq.number
            );
        }
        out.push(finding(
            Level::Advice,
            &topic,
            format!(
                "IRQ {irqs} run on the workers' CPU {}: the interrupt and its receive \
                 processing take turns with a worker; move them, e.g. `echo N > \
                 /proc/irq/IRQ/smp_affinity_list` for a CPU outside `--cpus`",
                cpus::describe(&shared)
            ),
        ));
    }
    if uplink.rx_queues == 1 && workers.len() > 1 && !uplink.rps {
        out.push(finding(
            Level::Advice,
            &topic,
            format!(
                "one receive queue and RPS off: all receive processing lands on one CPU \
                 while {} workers wait; spread it with `echo MASK > \
                 /sys/class/net/{}/queues/rx-0/rps_cpus`",
                workers.len(),
                uplink.name
            ),
        ));
    }
}

/// The findings as `tune` prints them: a summary line, then one line per finding, most
/// pressing first.
pub fn render(findings: &[Finding], workers: &[usize], facts: &Facts) -> String {
    let count = |level| findings.iter().filter(|f| f.level == level).count();
    let uplinks: Vec<&str> = facts.uplinks.iter().map(|u| u.name.as_str()).collect();
    let mut text = format!(
        "rovy-fast tune: {} to fix, {} advised (workers on CPU {}; uplinks: {})\n",
        count(Level::Fix),
        count(Level::Advice),
        cpus::describe(workers),
        if uplinks.is_empty() {
            "none".to_owned()
        } else {
            uplinks.join(" ")
        }
    );
    for f in findings {
        let _ = writeln!(text, "{:<7} {:<16} {}", f.level.name(), f.topic, f.text);
    }
    text
}
