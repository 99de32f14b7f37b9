#!/usr/bin/env python3
"""Turns the raw results of bench-throughput.sh into one markdown table.

Input: a tab-separated file, one measurement per line:
  NAME  tcp     GBIT_S  RETRANSMITS  DAEMON_CPU_%
  NAME  udpSIZE OFFERED_KPPS  LOSS_%  RECEIVED_PPS  SENT  DAEMON_CPU_%
  NAME  status  TEXT            (the implementation was not measured, and why)

TCP: median and min–max of the runs. UDP: the most packets per second delivered at any offered
rate with under 1 % loss (iperf3's sender may fall short of the offered rate when the box is
busy, so the delivered rate, not the offered one, is the capacity). rovy-fast rows (names
starting "rovy-") are divided by every other row.
"""

import statistics
import sys

UDP_LOSS_LIMIT = 1.0
SIZES = (64, 1392)


class Figures:
    """What one implementation achieved."""

    def __init__(self):
        self.status = ""
        self.tcp = []  # (gbit/s, retransmits, daemon cpu %)
        self.udp = {size: [] for size in SIZES}  # size -> [(offered kpps, loss %, received pps, cpu %)]

    def tcp_median(self):
        return statistics.median(run[0] for run in self.tcp) if self.tcp else None

    def udp_capacity(self, size):
        """(most kpps delivered under the loss limit or None, that step, whether every step passed)."""
        steps = self.udp[size]
        passing = [step for step in steps if step[1] < UDP_LOSS_LIMIT]
        if not passing:
            return None, None, False
        best = max(passing, key=lambda step: step[2])
        return best[2] / 1000, best, len(passing) == len(steps)


def load(path):
    figures = {}
    with open(path, encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3:
                raise ValueError(f"line {number}: too few fields: {line!r}")
            name, kind = fields[0], fields[1]
            entry = figures.setdefault(name, Figures())
            if kind == "status":
                entry.status = fields[2]
            elif kind == "tcp" and len(fields) == 5:
                entry.tcp.append(tuple(float(v) for v in fields[2:5]))
            elif kind.startswith("udp") and len(fields) == 7:
                size = int(kind[3:])
                offered, loss, received, _sent, cpu = (float(v) for v in fields[2:7])
                entry.udp.setdefault(size, []).append((offered, loss, received, cpu))
            else:
                raise ValueError(f"line {number}: not a measurement: {line!r}")
    return figures


def tcp_cell(entry):
    if not entry.tcp:
        return "–"
    rates = [run[0] for run in entry.tcp]
    cell = f"**{statistics.median(rates):.3f}**"
    if len(rates) > 1:
        cell += f" ({min(rates):.3f}–{max(rates):.3f})"
    return cell


def udp_cell(entry, size):
    if not entry.udp[size]:
        return "–"
    best, step, all_passed = entry.udp_capacity(size)
    if best is None:
        return f"< {entry.udp[size][0][0]:.0f} k pps"
    prefix = "≥ " if all_passed else ""
    return f"**{prefix}{best:.1f} k pps** (offered {step[0]:.0f} k, CPU {step[3]:.0f} %)"


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return "n/a"
    return f"{numerator / denominator:.2f}×"


def ratio_cell(rovy, other):
    if rovy is None or rovy.status or other.status:
        return "n/a"
    parts = [f"TCP {ratio(rovy.tcp_median(), other.tcp_median())}"]
    for size in SIZES:
        mine, _, mine_is_bound = rovy.udp_capacity(size)
        theirs, _, theirs_is_bound = other.udp_capacity(size)
        if theirs_is_bound:
            # The other side passed every step: its capacity is unknown, so is the ratio.
            parts.append(f"{size} B n/a")
        else:
            value = ratio(mine, theirs)
            bound = "≥ " if mine_is_bound and value != "n/a" else ""
            parts.append(f"{size} B {bound}{value}")
    return " · ".join(parts)


def render(figures):
    rovy_names = [name for name in figures if name.startswith("rovy-")]
    header = ["implementation", "TCP Gbit/s median (min–max)", "TCP retransmits (median)",
              "daemon CPU, TCP (median)", "UDP 64 B, <1 % loss", "UDP 1392 B, <1 % loss"]
    header += [f"{name} ÷ this" for name in rovy_names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, entry in figures.items():
        if entry.status:
            row = [name, entry.status] + ["–"] * (len(header) - 2)
        else:
            retransmits = f"{statistics.median(run[1] for run in entry.tcp):.0f}" if entry.tcp else "–"
            cpu = f"{statistics.median(run[2] for run in entry.tcp):.0f} %" if entry.tcp else "–"
            row = [name, tcp_cell(entry), retransmits, cpu, udp_cell(entry, 64), udp_cell(entry, 1392)]
            row += ["–" if name.startswith("rovy-") else ratio_cell(figures[r], entry) for r in rovy_names]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Daemon CPU: utime+stime of both tunnel daemons, % of one core (200 % = both cores).")
    lines.append("UDP: most packets per second delivered at an offered rate with under 1 % loss;"
                 " ≥ means every step passed.")
    return "\n".join(lines)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        figures = load(sys.argv[1])
    except (OSError, ValueError) as error:
        print(f"bench_table: {sys.argv[1]}: {error}", file=sys.stderr)
        return 2
    print(render(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
