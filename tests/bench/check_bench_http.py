"""`lienthong bench http --quick`: the run completes, every body the hub accepted reached the
target (none lost, none twice), and the last line carries every figure (not their values)."""
import json
import subprocess
import sys

binary = sys.argv[1]
r = subprocess.run([binary, "bench", "http", "--quick"], capture_output=True, text=True, timeout=600)
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
for field in ["direct_rate", "hub_rate", "ratio", "hub_p50_ms", "hub_p99_ms", "direct_p99_ms", "accepted",
              "delivered", "missing", "duplicates", "hub_rss_mib", "transport"]:
    check(field in j, f"the JSON line has {field}")
check(j.get("accepted") == j.get("messages") == j.get("delivered"), f"accepted = delivered = messages ({j})")
check(j.get("missing") == 0 and j.get("duplicates") == 0, "none lost, none twice")
check(j.get("ratio", 0) > 0 and j.get("direct_rate", 0) > 0, "both rates measured")
print(r.stdout.strip().splitlines()[0] if r.stdout.strip() else "")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
