"""Every README that carries a plugin's options table keeps it current: between
`<!-- options: NAME -->` and `<!-- /options -->` stands exactly what `lienthong-test doc options NAME`
prints (connectors/*/README.md, tests/plugins/README.md). Regenerate a stale table with that
command."""
import glob
import os
import re
import subprocess
import sys

SRC = os.environ["LT_SOURCE_DIR"]
BIN = os.environ["LT_BIN"]  # lienthong-test: it carries the test plugins too
failed = passed = 0


def check(cond, what):
    global failed, passed
    passed += bool(cond)
    failed += not cond
    if not cond:
        print("FAIL:", what)


BLOCK = re.compile(r"<!-- options: ([A-Za-z0-9._-]+) -->\n(.*?)<!-- /options -->", re.S)
readmes = sorted(glob.glob(os.path.join(SRC, "connectors", "*", "README.md")))
readmes.append(os.path.join(SRC, "tests", "plugins", "README.md"))
tables = 0
for path in readmes:
    rel = os.path.relpath(path, SRC)
    with open(path) as f:
        text = f.read()
    blocks = BLOCK.findall(text)
    check(text.count("<!-- options:") == len(blocks), f"{rel}: every options marker is closed by <!-- /options -->")
    if "/tests/plugins/" in path:
        check(any(name == "test-fault" for name, _ in blocks), f"{rel}: documents the test-fault step's options")
    for name, table in blocks:
        tables += 1
        r = subprocess.run([BIN, "doc", "options", name], capture_output=True, text=True)
        check(r.returncode == 0, f"{rel}: `doc options {name}` exit code {r.returncode}: {r.stderr.strip()}")
        check(table.strip() == r.stdout.strip(),
              f"{rel}: the options table of {name} is stale: regenerate it with `lienthong-test doc options {name}`")

# the command itself: a table for each kind of plugin, a usage error for an unknown name
r = subprocess.run([BIN, "doc", "options", "kafka"], capture_output=True, text=True)
check(r.returncode == 0 and "| `request_timeout` | duration, `1s`..`5m` |" in r.stdout and "Constraints" in r.stdout,
      "doc options kafka: the transport's table with bounds and constraints")
r = subprocess.run([BIN, "doc", "options", "validate"], capture_output=True, text=True)
check(r.returncode == 0 and r.stdout.startswith("| option | type | default | required | description |\n")
      and "| `schema` | string |  | yes |" in r.stdout, "doc options validate")
r = subprocess.run([BIN, "doc", "options", "no-such-plugin"], capture_output=True, text=True)
check(r.returncode == 2 and "no plugin named 'no-such-plugin'" in r.stderr and "validate" in r.stderr,
      "doc options with an unknown name is a usage error listing the plugins")
r = subprocess.run([BIN, "doc", "options"], capture_output=True, text=True)
check(r.returncode == 2, "doc options without NAME is a usage error")
print(f"{passed} passed, {failed} failed ({len(readmes)} README(s), {tables} table(s))")
sys.exit(1 if failed else 0)
