#!/usr/bin/env python3
"""`lienthong bench map --short`: the last line is one JSON object carrying every figure
(checks the fields and their types, not the target values). Usage: bench_check.py LIENTHONG"""
import json
import subprocess
import sys

p = subprocess.run([sys.argv[1], "bench", "map", "--short"], capture_output=True, text=True, timeout=300)
if p.returncode != 0:
    sys.exit(f"bench map exited {p.returncode}: {p.stderr.strip()}")
lines = p.stdout.strip().splitlines()
try:
    d = json.loads(lines[-1])
except (IndexError, ValueError) as e:
    sys.exit(f"the last line is not JSON ({e}): {lines[-1:]}")
numbers = ["input_bytes", "output_bytes", "iterations", "rounds", "baseline_msgs_per_s", "baseline_us_per_msg",
           "pipeline_msgs_per_s", "pipeline_us_per_msg", "ratio", "target_ratio"]
bad = [k for k in numbers if not isinstance(d.get(k), (int, float)) or isinstance(d.get(k), bool) or d[k] <= 0]
if d.get("bench") != "map":
    bad.append("bench")
if not isinstance(d.get("meets_target"), bool):
    bad.append("meets_target")
if d.get("input_bytes", 0) < 2048:
    bad.append("input_bytes (the dossier must be at least 2 KB)")
if abs(d.get("ratio", 0) - d.get("pipeline_msgs_per_s", 0) / max(d.get("baseline_msgs_per_s", 1), 1e-9)) > 0.01:
    bad.append("ratio (not pipeline / baseline)")
if bad:
    sys.exit(f"bad or missing fields {bad} in {lines[-1]}")
print(lines[-1])
print("1 passed, 0 failed")
