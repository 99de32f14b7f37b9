#!/usr/bin/env python3
"""Reads the JSON that the tests and the benchmark collect, so the shell scripts stay free of parsing.

  json_report.py field FILE KEY             a value of a JSON document (a `rovy-fast status`, a
                                            script's report); KEY may be a dotted path into
                                            objects and lists: peers.0.endpoint, to_a.lost
  json_report.py drop FILE REASON           one drop counter of a `rovy-fast status` (0 if none)
  json_report.py rate FILE                  MB/s of a transfer.py --stats file
  json_report.py count FILE PATH            the length of a list (as for field)
  json_report.py endpoint FILE              endpoint of its first peer
  json_report.py hostile-drops FILE         checks that the drop counters show hostile input;
                                            prints the counters, exits 1 naming what is missing
  json_report.py tcp FILE                   "<Gbit/s received> <retransmits>" of an iperf3 -J TCP run
  json_report.py udp FILE                   "<lost %> <received pkt/s> <sent packets>" of an
                                            iperf3 -J UDP run (receiver-side figures)

Exit status 2 means the document is missing, malformed or lacks the field.
"""

import json
import sys

# Each hostile-input kind must raise at least one counter of its group.
DROP_GROUPS = {
    "replayed captures": ("replayed", "handshake_replayed"),
    "bad mac1": ("invalid_mac1",),
    "truncated or wrong-length messages": ("truncated", "bad_length"),
    "forged data messages": ("unknown_index", "auth_failed"),
}


def load(path):
    with open(path, encoding="utf-8") as source:
        return json.load(source)


def hostile_drops(status):
    drops = status["drops"]
    total = status["drops_total"]
    shown = " ".join(f"{name}={count}" for name, count in sorted(drops.items()) if count)
    print(f"drops_total={total} {shown}".strip())
    missing = [group for group, names in DROP_GROUPS.items() if not any(drops.get(n, 0) > 0 for n in names)]
    if total <= 0:
        missing.insert(0, "drops_total")
    if missing:
        print("no drops counted for: " + ", ".join(missing))
        return 1
    return 0


def field(document, path):
    value = document
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def tcp(run):
    end = run["end"]
    gbits = end["sum_received"]["bits_per_second"] / 1e9
    retransmits = end["sum_sent"].get("retransmits", 0)
    print(f"{gbits:.3f} {retransmits}")
    return 0


def udp(run):
    total = run["end"]["sum"]
    seconds = total["seconds"] or 1.0
    sent = total["packets"]
    lost = total["lost_packets"]
    print(f"{total['lost_percent']:.2f} {(sent - lost) / seconds:.0f} {sent}")
    return 0


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    command, path = sys.argv[1], sys.argv[2]
    try:
        document = load(path)
        if command == "field" and len(sys.argv) == 4:
            print(field(document, sys.argv[3]))
            return 0
        if command == "count" and len(sys.argv) == 4:
            print(len(field(document, sys.argv[3])))
            return 0
        if command == "rate":
            print(f"{document['bytes'] / document['seconds'] / 1e6:.2f}")
            return 0
        if command == "drop" and len(sys.argv) == 4:
            print(document["drops"].get(sys.argv[3], 0))
            return 0
        if command == "endpoint":
            print(document["peers"][0]["endpoint"])
            return 0
        if command == "hostile-drops":
            return hostile_drops(document)
        if command == "tcp":
            return tcp(document)
        if command == "udp":
            return udp(document)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        print(f"json_report {command}: {path}: {error!r}", file=sys.stderr)
        return 2
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
