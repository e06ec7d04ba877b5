"""Generated docs are current: docs/config.md and schemas/config/lienthong.schema.json are what
`lienthong doc config|schema` prints from the config maps, and the schema is valid JSON
that accepts the shipped examples' structure."""
import json
import os
import subprocess
import sys

SRC = os.environ["LT_SOURCE_DIR"]
BIN = os.environ["LT_BIN"]
failed = passed = 0


def check(cond, what):
    global failed, passed
    passed += bool(cond)
    failed += not cond
    if not cond:
        print("FAIL:", what)


for topic, path in (("config", "docs/config.md"), ("schema", "schemas/config/lienthong.schema.json")):
    r = subprocess.run([BIN, "doc", topic], capture_output=True, text=True)
    check(r.returncode == 0, f"doc {topic} exit code")
    with open(os.path.join(SRC, path)) as f:
        check(f.read() == r.stdout, f"{path} is stale: regenerate with `lienthong doc {topic} > {path}`")
schema = json.load(open(os.path.join(SRC, "schemas/config/lienthong.schema.json")))
check(schema["properties"]["routes"]["items"]["required"] == ["name", "from", "to"], "route required keys")
check(schema["properties"]["hub"]["properties"]["kafka"]["additionalProperties"] is False, "strict objects")
r = subprocess.run([BIN, "doc", "nonsense"], capture_output=True, text=True)
check(r.returncode == 2, "unknown doc topic is a usage error")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
