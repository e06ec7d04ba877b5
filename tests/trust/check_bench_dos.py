#!/usr/bin/env python3
"""Runs `lienthong bench verify-dos` in a short mode: the last line is one JSON object with a row
per size and shape, every hostile shape ends as the corpus says (refused with its code, or
valid for the signed floods), and the worst ratios are reported. No timing is asserted: the
figures are for the release build (docs/trust.md, Limits).

Usage: check_bench_dos.py LIENTHONG"""
import json
import subprocess
import sys

from tcheck import check, done

r = subprocess.run([sys.argv[1], "bench", "verify-dos", "--sizes", "256", "--seconds", "0.05"], capture_output=True,
                   timeout=600)
out = r.stdout.decode("utf-8", "replace")
check("exit 0", r.returncode == 0, "rc %d: %s" % (r.returncode, r.stderr.decode(errors="replace")[-800:]))
lines = out.strip().splitlines()
j = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
check("JSON last line", bool(j), out[-800:])
want = {"benign": "valid", "elements": "valid", "attributes": "too-large", "ns-inclusive": "sig-policy",
        "references": "sig-policy", "refs-300": "sig-policy", "transforms": "sig-policy",
        "forged-digest": "sig-digest", "nul-tail": "xml", "elements-forged": "sig-invalid", "text": "valid",
        "deep": "sig-policy", "attrs-64": "valid", "attrs-255": "sig-policy"}
rows = {x["shape"]: x for x in j.get("results", [])}
for shape, result in want.items():
    row = rows.get(shape)
    check("shape %s" % shape, row is not None and row["result"] == result and row["cpu_ms"] > 0,
          "row %r, expected result %s" % (row, result))
for key in ("worst_cpu_ratio", "worst_mem_ratio", "worst_ms_per_mb"):
    check(key, isinstance(j.get(key), (int, float)) and j[key] > 0, "missing or zero in %r" % j)
print("\n".join(lines[:-1]))
done()
