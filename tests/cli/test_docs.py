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
kafka = schema["properties"]["hub"]["properties"]["kafka"]
check(kafka["properties"]["request_timeout"].get("maximum") == 300000, "bounds in the schema (request_timeout max)")
check(len(kafka.get("x-constraints", [])) >= 10, "the kafka transport's constraints in the schema")
steps = schema["properties"]["routes"]["items"]["properties"]["steps"]["items"]["properties"]
shipped = {"passthrough", "set-header", "validate", "map", "sign-xml", "verify-xml", "sign-jws", "verify-jws"}
check(shipped <= set(steps), f"every shipped step's options in the schema: {sorted(shipped - set(steps))} missing")
check("test-fault" not in steps, "test plugins stay out of the shipped binary's schema")
check(steps["validate"]["anyOf"][0].get("x-fills") == "schema", "validate's scalar form fills its schema option")
check(steps["set-header"]["additionalProperties"] == {"type": "string", "description": steps["set-header"]
      ["additionalProperties"].get("description")}, "set-header takes any header name to a string")
config_md = open(os.path.join(SRC, "docs/config.md")).read()
for name in sorted(steps):
    check(f"\n### {name}\n" in config_md, f"docs/config.md has a section for the step {name}")
check("Constraints (" in config_md and "`request_timeout` (socket.timeout.ms)" in config_md,
      "docs/config.md lists the kafka constraints")
r = subprocess.run([BIN, "doc", "nonsense"], capture_output=True, text=True)
check(r.returncode == 2, "unknown doc topic is a usage error")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
