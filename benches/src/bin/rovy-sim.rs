//! Runs the routing simulator (`rovy_control::routing::sim`) on generated graphs and prints
//! one markdown table row per graph: cold-start convergence, route coverage and stretch, idle
//! control traffic, route-table size, and the outage when the busiest link is cut and when
//! the busiest node dies; then loops found, wall time and peak memory. Exits 1 if any
//! installed route ever looped.
//!
//! Usage: `rovy-sim [--nodes 10,100] [--topologies chain,ring] [--seed 1] [--loss 0.01] …`
//! (`--help` lists all); `scripts/sim.sh` runs the README's table.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use rovy_control::routing::sim::{Report, Scenario, Topology};

#[derive(Debug, Parser)]
#[command(about = "Simulate the routing core on generated graphs and print a markdown table")]
struct Args {
    /// Node counts to run.
    #[arg(long, value_delimiter = ',', default_value = "10,100")]
    nodes: Vec<usize>,
    /// Graph families: chain, ring, grid, random, internet.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "chain,ring,grid,random,internet"
    )]
    topologies: Vec<Topology>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Loss rate of every link.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Probe pairs during failures.
    #[arg(long, default_value_t = 100)]
    probes: usize,
    /// Milliseconds between the probes of a pair.
    #[arg(long, default_value_t = 10)]
    probe_interval_ms: u64,
    /// Sources whose routes are compared with shortest paths (all nodes when fewer).
    #[arg(long, default_value_t = 300)]
    survey_sources: usize,
    /// Skip a graph whose route tables alone would need more gigabytes than this.
    #[arg(long, default_value_t = 12.0)]
    max_table_gb: f64,
    /// Leave out the table header (to append rows).
    #[arg(long)]
    no_header: bool,
}

/// Columns after the report's own.
const EXTRA: [&str; 3] = ["loops", "wall", "peak RSS"];

fn row(cells: impl IntoIterator<Item = String>) -> String {
    format!("| {} |", cells.into_iter().collect::<Vec<_>>().join(" | "))
}

/// The process's peak resident memory, from `/proc/self/status`.
fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut out = std::io::stdout().lock();
    if !args.no_header {
        let header: Vec<String> = Report::HEADER
            .iter()
            .chain(&EXTRA)
            .map(|h| h.to_string())
            .collect();
        let rule = header.iter().map(|_| "---".to_string());
        let _ = writeln!(out, "{}\n{}", row(header.clone()), row(rule));
    }
    let mut faults = 0;
    for &n in &args.nodes {
        for &topology in &args.topologies {
            let mut scenario = Scenario::new(topology, n, args.seed);
            scenario.loss = args.loss;
            scenario.probes = args.probes;
            scenario.probe_interval = Duration::from_millis(args.probe_interval_ms);
            scenario.survey_sources = args.survey_sources;
            let graph = scenario.graph();
            let projection = scenario.projection(&graph);
            let gb = projection.table_bytes as f64 / 1e9;
            if gb > args.max_table_gb {
                let cells = [
                    topology.to_string(),
                    n.to_string(),
                    graph.edges.len().to_string(),
                    projection.diameter.map_or("—".into(), |d| d.to_string()),
                    format!("{:.1} % (sampled)", 100.0 * projection.in_reach),
                    format!("not run: route tables alone need {gb:.0} GB"),
                ];
                let _ = writeln!(out, "{}", row(cells));
                continue;
            }
            let started = Instant::now();
            let report = scenario.run();
            faults += report.faults();
            if let Some(fault) = &report.first_fault {
                eprintln!("{topology} {n}: {fault}");
            }
            let extra = [
                report.faults().to_string(),
                format!("{:.0} s", started.elapsed().as_secs_f64()),
                peak_rss_mb().map_or("—".into(), |mb| format!("{mb} MB")),
            ];
            let _ = writeln!(out, "{}", row(report.cells().into_iter().chain(extra)));
            let _ = out.flush();
        }
    }
    if faults == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
