#!/usr/bin/env python3
"""`lienthong bench edoc`: the JSON line's fields, every flow ran, the 16 MiB default refuses the
packet, and the route's working copy borrows the record (floor about 1 x the packet, not 2).
With --target (release builds; ASan keeps freed memory in quarantine, so its figures are not
the hub's) also the memory target: the in and out flows peak under 3 x the packet.
Usage: check_bench_edoc.py LIENTHONG [--target]"""
import json
import subprocess
import sys

lt, target = sys.argv[1], "--target" in sys.argv[2:]
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
    print(("ok   " if cond else "FAIL ") + what, flush=True)


r = subprocess.run([lt, "bench", "edoc", "--size", "20"], capture_output=True, text=True, timeout=900)
print(r.stdout + r.stderr)
check(r.returncode == 0, f"bench edoc exits 0 (got {r.returncode})")
last = (r.stdout.strip().splitlines() or [""])[-1]
try:
    j = json.loads(last)
except ValueError:
    j = {}
check(j.get("bench") == "edoc", "the last line is the JSON object")
flows = j.get("flows", {})
for name in ("floor", "in", "out", "verify-xml", "validate", "sign-xml", "floor-copy"):
    f = flows.get(name, {})
    check(f.get("ok") is True and f.get("peak_rss_mib", 0) > 0 and "ratio" in f, f"flow {name} ran and has figures")
check(j.get("packet_bytes", 0) >= 19_900_000, "a packet of about 20 MB")
check(j.get("default_limit_refuses") is True, "the 16 MiB default refuses it")
floor, copy = flows.get("floor", {}).get("ratio", 9), flows.get("floor-copy", {}).get("ratio", 0)
check(floor < 1.5 and copy > 1.5, f"the working copy borrows the value (floor {floor}, deep copy {copy})")
if target:
    check(j.get("target_met") is True and j.get("peak_ratio", 9) < 3,
          f"in and out peak under 3 x the packet (got {j.get('peak_ratio')})")

print(f"{failures} failures")
sys.exit(1 if failures else 0)
