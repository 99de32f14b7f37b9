//! What a scenario measured, and the table row it prints as.

use std::time::Duration;

use super::{NetStats, Outage, Survey, Topology};

/// The cold start.
#[derive(Debug, Clone)]
pub struct Cold {
    /// Time from all links coming up to the last route change (`None`: still changing at
    /// the horizon).
    pub converged: Option<Duration>,
    /// The routes then.
    pub survey: Survey,
}

/// The converged network left alone, per link (both directions) and second.
#[derive(Debug, Clone, Copy)]
pub struct Idle {
    /// Bytes as WireGuard data messages (16-byte header, padding to 16, 16-byte tag).
    pub wire_bytes: f64,
    /// Routing message bytes.
    pub bytes: f64,
    /// Routing messages.
    pub messages: f64,
    /// Route changes meanwhile (0 when idle is idle).
    pub route_events: u64,
}

/// One failure and what it cost.
#[derive(Debug, Clone)]
pub struct Failover {
    /// What failed.
    pub failed: String,
    /// Time until the first and the last router found a link of it dead.
    pub detected: Option<(Duration, Duration)>,
    /// What the probe stream lost.
    pub outage: Outage,
    /// Time until the last route change (`None`: still changing at the horizon).
    pub settled: Option<Duration>,
    /// The routes then.
    pub survey: Survey,
}

/// A failed link coming back.
#[derive(Debug, Clone)]
pub struct Restore {
    /// Time until the last route change (`None`: still changing at the horizon).
    pub settled: Option<Duration>,
    /// Probes lost meanwhile (moving to a shorter path should lose none).
    pub lost: u64,
    /// The routes then.
    pub survey: Survey,
}

/// Everything a scenario measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Graph family.
    pub topology: Topology,
    /// Nodes.
    pub n: usize,
    /// Links.
    pub links: usize,
    /// Longest shortest path (`None`: not connected).
    pub diameter: Option<u16>,
    /// The cold start.
    pub cold: Cold,
    /// Idle traffic.
    pub idle: Idle,
    /// Mean route-table heap bytes per node.
    pub table_bytes_mean: usize,
    /// The largest route table.
    pub table_bytes_max: usize,
    /// Mean destinations per node.
    pub destinations_mean: f64,
    /// The busiest link silently cut.
    pub link_cut: Option<Failover>,
    /// That link brought back.
    pub link_back: Option<Restore>,
    /// The busiest node killed.
    pub node_kill: Option<Failover>,
    /// The network's counters at the end (loops among them).
    pub stats: NetStats,
    /// The first loop or misdirected label, if any.
    pub first_fault: Option<String>,
}

impl Report {
    /// Column names of [`Report::cells`].
    pub const HEADER: [&'static str; 12] = [
        "topology",
        "N",
        "links",
        "diam.",
        "pairs in label reach",
        "cold start: converged",
        "exact / stretch mean, max",
        "idle B/s per link",
        "route table per node",
        "link cut: detect / reroute median–max / lost / settled",
        "link back: settled / lost",
        "node kill: detect / reroute median–max / lost / settled",
    ];

    /// Installed loops of any kind, ever: next hops, labels through a node twice, labels
    /// leading elsewhere.
    pub fn faults(&self) -> u64 {
        self.stats.loops + self.stats.label_loops + self.stats.misdirected
    }

    /// The row, cell by cell, as the README's table shows it.
    pub fn cells(&self) -> Vec<String> {
        let survey = &self.cold.survey;
        let reach = percent(survey.in_reach, survey.connected);
        let reach = match survey.missing() + survey.wrong {
            0 => reach,
            bad => format!("{reach} ({bad} unrouted)"),
        };
        vec![
            self.topology.to_string(),
            self.n.to_string(),
            self.links.to_string(),
            self.diameter.map_or("—".into(), |d| d.to_string()),
            reach,
            time(self.cold.converged),
            format!(
                "{} / {:.2}, {:.2}",
                percent(survey.exact, survey.routed),
                survey.stretch_mean(),
                survey.stretch_max
            ),
            format!(
                "{:.0} ({:.1} msg)",
                self.idle.wire_bytes, self.idle.messages
            ),
            format!(
                "{} ({:.0} dest.)",
                bytes(self.table_bytes_mean),
                self.destinations_mean
            ),
            failover(self.link_cut.as_ref()),
            restore(self.link_back.as_ref()),
            failover(self.node_kill.as_ref()),
        ]
    }
}

fn percent(part: u64, whole: u64) -> String {
    let p = 100.0 * part as f64 / whole as f64;
    match (whole, part == whole) {
        (0, _) => "—".into(),
        (_, true) => "100 %".into(),
        _ if p > 99.9 => ">99.9 %".into(),
        _ => format!("{p:.1} %"),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn time(d: Option<Duration>) -> String {
    d.map_or("not quiet".into(), |d| format!("{} s", secs(d)))
}

fn bytes(b: usize) -> String {
    match b {
        0..1_000 => format!("{b} B"),
        1_000..1_000_000 => format!("{:.1} KB", b as f64 / 1e3),
        _ => format!("{:.1} MB", b as f64 / 1e6),
    }
}

/// `" (notes)"` for the counts that are not zero, or nothing.
fn notes(counts: &[(u64, &str)]) -> String {
    let notes: Vec<String> = counts
        .iter()
        .filter(|&&(count, _)| count > 0)
        .map(|(count, what)| format!("{count} {what}"))
        .collect();
    if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    }
}

fn restore(r: Option<&Restore>) -> String {
    r.map_or("—".into(), |r| {
        let unrouted = r.survey.missing() + r.survey.wrong;
        let inexact = r.survey.routed - r.survey.exact;
        let notes = notes(&[(unrouted, "unrouted"), (inexact, "not shortest")]);
        format!("{} / {}{notes}", time(r.settled), r.lost)
    })
}

fn failover(f: Option<&Failover>) -> String {
    let Some(f) = f else {
        return "—".into();
    };
    let o = &f.outage;
    let reroute = match (o.median, o.max) {
        (Some(med), Some(max)) => format!("{}–{}", secs(med), secs(max)),
        _ => "none lost".into(),
    };
    let cell = format!(
        "{} / {} / {} / {}",
        f.detected
            .map_or("—".into(), |(first, last)| match first == last {
                true => secs(first),
                false => format!("{}–{}", secs(first), secs(last)),
            }),
        reroute,
        o.lost,
        time(f.settled)
    );
    let s = &f.survey;
    cell + &notes(&[
        (o.stuck as u64, "stuck"),
        (o.unrecoverable as u64, "out of reach"),
        (s.missing() + s.wrong, "unrouted after"),
    ])
}
