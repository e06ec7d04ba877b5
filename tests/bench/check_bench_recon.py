"""`lienthong bench recon --quick`: the run completes, the reconciliation of the generated
statement reports exactly the injected anomalies (one in a thousand of each kind), and the last
line carries every figure (their values are the benchmark's to report, not the test's)."""
import json
import subprocess
import sys

binary = sys.argv[1]
r = subprocess.run([binary, "bench", "recon", "--quick", "--layout", sys.argv[2]], capture_output=True, text=True,
                   timeout=600)
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)


check(r.returncode == 0, f"exit code {r.returncode}: {r.stderr[-1500:]}")
last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "{}"
try:
    j = json.loads(last)
except ValueError:
    j = {}
for field in ["lines", "payments", "seconds", "lines_per_s", "baseline_lines_per_s", "ratio", "peak_rss_mib",
              "peak_rss_tenth_mib", "peak_pending", "window_s", "outcomes"]:
    check(field in j, f"the JSON line has {field}")
n = j.get("payments", 0)
check(n == 20000, f"--quick reconciles 20000 payments ({n})")
check(j.get("outcomes") == {"matched": n - 2 * (n // 1000), "missing-in-bank": n // 1000,
                            "missing-in-platform": n // 1000, "amount-mismatch": n // 1000, "duplicate": n // 1000},
      f"exactly the injected outcomes ({j.get('outcomes')})")
check(j.get("lines") == n + n // 1000, f"one line per payment, less the missing, plus extras and duplicates ({j.get('lines')})")
check(j.get("lines_per_s", 0) > 0 and j.get("baseline_lines_per_s", 0) > 0, "both rates measured")
print(r.stdout.strip().splitlines()[0] if r.stdout.strip() else r.stderr[-500:])
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
