"""(e) `lienthong lint` rejects each kind of bad configuration with exit 2 and the right
FILE:LINE:COL and message. Each case in lint/ says what it expects on its first line:
`# expect: LINE:COL: message prefix`. Good configs (examples/) pass with exit 0."""
import glob
import os
import subprocess
import sys

SRC = os.environ.get("LT_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("LT_BIN", os.path.join(SRC, "build", "lienthong"))
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


cases = sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "lint", "*.yaml")))
check(len(cases) >= 10, f"at least 10 bad-config cases ({len(cases)})")
for path in cases:
    with open(path) as f:
        first = f.readline()
    check(first.startswith("# expect: "), f"{path}: first line says what to expect")
    want = first[len("# expect: "):].rstrip("\n")
    r = subprocess.run([BIN, "lint", path], capture_output=True, text=True)
    check(r.returncode == 2, f"{os.path.basename(path)}: exit code {r.returncode}, expected 2")
    check(r.stderr.startswith(f"{path}:{want}"), f"{os.path.basename(path)}: got {r.stderr.strip()!r}, "
                                                  f"expected it to start with {path}:{want!r}")
    check(r.stdout == "", f"{os.path.basename(path)}: nothing on stdout for an invalid config")

for path in sorted(glob.glob(os.path.join(SRC, "examples", "*.yaml"))):
    r = subprocess.run([BIN, "lint", path], capture_output=True, text=True)
    check(r.returncode == 0, f"{path}: a shipped example must lint clean: {r.stderr.strip()}")

r = subprocess.run([BIN, "lint", "/nonexistent/hub.yaml"], capture_output=True, text=True)
check(r.returncode == 2 and "No such file" in r.stderr, f"missing file: {r.returncode} {r.stderr.strip()}")
r = subprocess.run([BIN, "lint"], capture_output=True, text=True)
check(r.returncode == 2 and "missing CONFIG" in r.stderr, "lint without arguments is a usage error")
r = subprocess.run([BIN, "lint", "--help"], capture_output=True, text=True)
check(r.returncode == 0 and "Usage: lienthong lint" in r.stdout, "lint --help")
r = subprocess.run([BIN, "frobnicate"], capture_output=True, text=True)
check(r.returncode == 2 and "unknown command" in r.stderr, "unknown command exits 2")
r = subprocess.run([BIN, "--version"], capture_output=True, text=True)
check(r.returncode == 0 and r.stdout.startswith("lienthong "), "--version")
r = subprocess.run([BIN, "run"], capture_output=True, text=True)
check(r.returncode == 2, "run without CONFIG exits 2")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
