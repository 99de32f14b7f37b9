use std::fs;
use std::path::Path;

use super::facts::{Irq, Softnet, softnet};
use super::*;

/// A machine with nothing to fix: two worker CPUs at full clock, big buffers, one uplink with
/// GRO and its interrupt on a third CPU.
fn healthy() -> Facts {
    Facts {
        rmem_max: Some(SOCKET_BUFFER as u64),
        wmem_max: Some(SOCKET_BUFFER as u64),
        netdev_max_backlog: Some(WANT_BACKLOG),
        netdev_budget: Some(WANT_BUDGET),
        busy_read: Some(50),
        busy_poll: Some(50),
        softnet: vec![Softnet::default(); 3],
        governors: vec![
            (0, "performance".into()),
            (1, "performance".into()),
            (2, "powersave".into()),
        ],
        io_uring: Ok(()),
        uplinks: vec![Uplink {
            name: "eth0".into(),
            gro: Some(true),
            irqs: vec![Irq {
                number: 40,
                cpus: vec![2],
            }],
            rx_queues: 4,
            rps: false,
        }],
    }
}

const WORKERS: &[usize] = &[0, 1];

fn levels(findings: &[Finding], level: Level) -> Vec<&Finding> {
    findings.iter().filter(|f| f.level == level).collect()
}

#[test]
fn a_healthy_machine_has_nothing_to_fix_or_advise() {
    let findings = assess(&healthy(), WORKERS);
    assert!(levels(&findings, Level::Fix).is_empty(), "{findings:#?}");
    assert!(levels(&findings, Level::Advice).is_empty(), "{findings:#?}");
    assert!(
        findings
            .iter()
            .any(|f| f.topic == "uplink eth0" && f.text == "GRO on")
    );
    assert!(
        findings
            .iter()
            .any(|f| f.topic == "governor" && f.level == Level::Ok),
        "a slow CPU no worker runs on does not count"
    );
}

#[test]
fn what_costs_packets_now_is_to_fix_with_the_command_that_fixes_it() {
    let mut facts = healthy();
    facts.governors[1].1 = "powersave".into();
    facts.uplinks[0].gro = Some(false);
    facts.softnet[1].dropped = 7;
    facts.io_uring = Err("kernel.io_uring_disabled is 2".into());
    let findings = assess(&facts, WORKERS);
    let fixes = levels(&findings, Level::Fix);
    assert_eq!(fixes.len(), 4, "{findings:#?}");
    let text = |topic: &str| {
        fixes
            .iter()
            .find(|f| f.topic == topic)
            .map(|f| f.text.clone())
            .unwrap_or_else(|| panic!("no fix for {topic}: {findings:#?}"))
    };
    assert!(text("governor").contains("CPU 1 (powersave)"));
    assert!(text("governor").contains("cpupower frequency-set -g performance"));
    assert!(text("uplink eth0").contains("ethtool -K eth0 gro on"));
    assert!(fixes.iter().any(
        |f| f.text.contains("dropped 7 packets") && f.text.contains("netdev_max_backlog=16384")
    ));
    assert!(text("io_uring").contains("kernel.io_uring_disabled is 2"));
    assert_eq!(findings[0].level, Level::Fix, "most pressing first");
}

#[test]
fn what_only_costs_the_last_part_of_the_rate_is_advice() {
    let mut facts = healthy();
    facts.rmem_max = Some(212_992);
    facts.netdev_max_backlog = Some(1000);
    facts.netdev_budget = Some(300);
    facts.softnet[0].time_squeeze = 3;
    facts.busy_read = Some(0);
    facts.busy_poll = Some(0);
    facts.governors[0].1 = "schedutil".into();
    facts.uplinks[0].irqs[0].cpus = vec![1, 2];
    facts.uplinks[0].rx_queues = 1;
    let findings = assess(&facts, WORKERS);
    assert!(levels(&findings, Level::Fix).is_empty(), "{findings:#?}");
    let advice: Vec<&str> = levels(&findings, Level::Advice)
        .iter()
        .map(|f| f.text.as_str())
        .collect();
    let has = |needle: &str| advice.iter().any(|t| t.contains(needle));
    assert!(has("net.core.rmem_max=4194304"), "{advice:#?}");
    assert!(has("net.core.netdev_max_backlog=16384"));
    assert!(has("ran out of budget 3 times"));
    assert!(has("busy_read"));
    assert!(has("CPU 0 (schedutil)"));
    assert!(has("IRQ 40 run on the workers' CPU 1"));
    assert!(has("rps_cpus"));
    assert_eq!(advice.len(), 7);
}

#[test]
fn the_report_has_a_summary_and_a_line_per_finding() {
    let mut facts = healthy();
    facts.uplinks[0].gro = Some(false);
    let findings = assess(&facts, WORKERS);
    let text = render(&findings, WORKERS, &facts);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("rovy-fast tune: 1 to fix, 0 advised (workers on CPU 0-1; uplinks: eth0)")
    );
    let first = lines.next().unwrap();
    let want = format!("{:<7} {:<16} GRO off", "fix", "uplink eth0");
    assert!(first.starts_with(&want), "{first}");
    assert_eq!(text.lines().count(), findings.len() + 1);
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn facts_are_read_from_proc_and_sys_and_missing_files_are_unknown() {
    let root = std::env::temp_dir().join(format!("rf-tune-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    write(&root, "proc/sys/net/core/rmem_max", "212992\n");
    write(&root, "proc/sys/net/core/netdev_max_backlog", "1000\n");
    write(
        &root,
        "proc/net/softnet_stat",
        "0000a1b2 00000003 0000000c 00000000\n00000010 00000000 00000001 00000000\n",
    );
    write(
        &root,
        "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
        "powersave\n",
    );
    write(
        &root,
        "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
        "performance\n",
    );
    write(&root, "sys/devices/system/cpu/cpufreq/policy0", "");
    for (name, kind, state) in [
        ("eth0", "1", "up"),
        ("eth1", "1", "down"),
        ("lo", "772", "unknown"),
    ] {
        write(&root, &format!("sys/class/net/{name}/type"), kind);
        write(&root, &format!("sys/class/net/{name}/operstate"), state);
    }
    write(&root, "sys/class/net/eth0/device/msi_irqs/41", "msi");
    write(&root, "sys/class/net/eth0/device/msi_irqs/42", "msi");
    write(&root, "proc/irq/41/smp_affinity_list", "0-1\n");
    write(&root, "proc/irq/42/smp_affinity_list", "3\n");
    write(
        &root,
        "sys/class/net/eth0/queues/rx-0/rps_cpus",
        "00000000,00000000\n",
    );
    write(
        &root,
        "sys/class/net/eth0/queues/rx-1/rps_cpus",
        "00000000,00000006\n",
    );
    write(&root, "sys/class/net/eth0/queues/tx-0/xps_cpus", "0\n");

    let facts = read_facts(&root, &[], |name| (name == "eth0").then_some(false), Ok(()));
    fs::remove_dir_all(&root).unwrap();
    assert_eq!(facts.rmem_max, Some(212_992));
    assert_eq!(facts.wmem_max, None, "missing: not known");
    assert_eq!(facts.netdev_max_backlog, Some(1000));
    assert_eq!(
        facts.softnet,
        vec![
            Softnet {
                dropped: 3,
                time_squeeze: 12
            },
            Softnet {
                dropped: 0,
                time_squeeze: 1
            }
        ]
    );
    assert_eq!(
        facts.governors,
        vec![(0, "powersave".into()), (1, "performance".into())]
    );
    assert_eq!(
        facts.uplinks.len(),
        1,
        "only Ethernet interfaces that are up"
    );
    let eth0 = &facts.uplinks[0];
    assert_eq!(eth0.name, "eth0");
    assert_eq!(eth0.gro, Some(false));
    assert_eq!(
        eth0.irqs,
        vec![
            Irq {
                number: 41,
                cpus: vec![0, 1]
            },
            Irq {
                number: 42,
                cpus: vec![3]
            }
        ]
    );
    assert_eq!((eth0.rx_queues, eth0.rps), (2, true));
}

#[test]
fn softnet_lines_that_do_not_parse_are_skipped() {
    assert_eq!(softnet("zz 1 2\n\n00000001 00000002\n"), vec![]);
    assert_eq!(
        softnet("1 2 3"),
        vec![Softnet {
            dropped: 2,
            time_squeeze: 3
        }]
    );
}
