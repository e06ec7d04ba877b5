"""Bounds and constraints are enforced where they are documented. From `lienthong-test doc schema`
this walks every config map the binary has (hub, its sections, every transport, routes and their
sections, every step), and for each bounded option (minimum/maximum) and each documented
constraint (x-constraints: the rule, the option it names, options that break it and options
right at its edge) writes a config that violates it and asserts that `lint` exits 2 with
FILE:LINE:COL pointing at that option. Each edge must lint clean; the kafka transport's edges
must also not make `run` fail at start (it runs against an address with no broker for a few
seconds, then gets SIGTERM)."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRC = os.environ["LT_SOURCE_DIR"]
BIN = os.environ["LT_BIN"]
failed = passed = 0
RUN_SECONDS = 4


def check(cond, what):
    global failed, passed
    passed += bool(cond)
    failed += not cond
    if not cond:
        print("FAIL:", what)


def flow_span(line, key):
    """Columns (1-based, inclusive) from `key:` to the end of its value in a one-line flow mapping."""
    start = line.find(key + ":")
    if start < 0:
        return None
    depth, i = 0, start
    while i < len(line):
        c = line[i]
        if c in "[{":
            depth += 1
        elif c in "]}":
            if depth == 0:
                break
            depth -= 1
        elif c == "," and depth == 0:
            break
        i += 1
    return start + 1, i


def with_options(flow, extra):
    """Adds `extra` (a dict of option: YAML text) to a flow mapping's text."""
    more = ", ".join(f"{k}: {v}" for k, v in extra.items())
    if not more:
        return flow
    inner = flow.strip()[1:-1].strip()
    return "{" + (inner + ", " if inner else "") + more + "}"


# Where each map sits in a config: the one line that carries its options as a flow mapping.
def config_for(section, flow, bootstrap=None):
    hub = ["hub:", "  admin: {listen: ''}"]
    route = ["routes:", "  - name: r1", "    from: a.in", "    to: a.out"]
    if section == "hub":
        hub = ["hub: " + with_options(flow, {"admin": "{listen: ''}"})]
        at = 0
    elif section.startswith("hub."):
        name = section[4:]
        if name == "kafka" and bootstrap:
            flow = with_options(flow, {"bootstrap": f"'{bootstrap}'", "create_topics": "false"})
        if name == "admin":
            hub = ["hub:", f"  admin: {flow}"]
        else:
            hub = ["hub:", "  admin: {listen: ''}", f"  transport: {name}", f"  {name}: {flow}"]
        at = len(hub) - 1
    elif section == "route":
        route = ["routes:", "  - " + with_options(flow, {"name": "r1", "from": "a.in", "to": "a.out"})]
        at = len(hub) + 1
    elif section.startswith("route."):
        route.append(f"    {section[6:]}: {flow}")
        at = len(hub) + len(route) - 1
    else:  # a step
        route += ["    steps:", f"      - {section[5:]}: {flow}"]
        at = len(hub) + len(route) - 1
    lines = hub + route
    return "\n".join(lines) + "\n", at + 1, lines[at]


def dummy(prop):
    """A valid value for a required option."""
    if "enum" in prop:
        return prop["enum"][0]
    t = prop.get("type")
    if t == "object":
        return "{}"
    if t == "array":
        return "[x]"
    return "x.json"


def object_of(schema):
    """The object schema of a map (a step's may be wrapped in anyOf with its scalar and null forms)."""
    for alt in schema.get("anyOf", [schema]):
        if alt.get("type") == "object":
            return alt
    return schema


def required_fill(obj, skip):
    return {k: dummy(obj["properties"][k]) for k in obj.get("required", []) if k not in skip}


r = subprocess.run([BIN, "doc", "schema"], capture_output=True, text=True)
check(r.returncode == 0, "doc schema")
schema = json.loads(r.stdout)
hub = schema["properties"]["hub"]
route = schema["properties"]["routes"]["items"]
sections = [("hub", hub)]
sections += [("hub." + k, v) for k, v in hub["properties"].items() if v.get("type") == "object"]
sections += [("route", route)]
sections += [("route." + k, v) for k, v in route["properties"].items() if v.get("type") == "object"]
steps = route["properties"]["steps"]["items"]["properties"]
sections += [("step " + k, v) for k, v in steps.items()]
check(len(steps) >= 9, f"every step has its options in the schema ({sorted(steps)})")

tmp = tempfile.mkdtemp(prefix="lt-constraints-")
n_cases = 0


def lint(text):
    global n_cases
    n_cases += 1
    path = os.path.join(tmp, f"c{n_cases:03d}.yaml")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([BIN, "lint", path], capture_output=True, text=True)
    return path, r


def expect_refused(what, section, flow, option):
    text, lineno, line = config_for(section, flow)
    path, r = lint(text)
    m = re.match(re.escape(path) + r":(\d+):(\d+): (.*)", r.stderr)
    ok = r.returncode == 2 and m is not None and int(m.group(1)) == lineno
    if ok and option:
        span = flow_span(line, option)
        ok = span is not None and span[0] <= int(m.group(2)) <= span[1]
    elif ok:
        ok = int(m.group(2)) == line.index("{") + 1  # the section itself
    check(ok, f"{what}: lint must refuse line {lineno} `{line.strip()}` at {option or 'the section'}; "
              f"got exit {r.returncode}: {r.stderr.strip()}")


bounds = constraints = 0
edges = []
for section, sch in sections:
    obj = object_of(sch)
    for name, prop in obj.get("properties", {}).items():
        if "minimum" not in prop:
            continue
        for value in (prop["minimum"] - 1, prop["maximum"] + 1):
            bounds += 1
            flow = "{" + ", ".join(f"{k}: {v}" for k, v in {name: value, **required_fill(obj, {name})}.items()) + "}"
            expect_refused(f"{section}.{name} = {value} (bounds {prop['minimum']}..{prop['maximum']})", section, flow,
                           name)
    for c in obj.get("x-constraints", []):
        constraints += 1
        check(c.get("text") and c.get("breaks"), f"{section}: a constraint has its text and an example that breaks it")
        fill = required_fill(obj, set())
        expect_refused(f"{section}: {c['text']} (breaks: {c['breaks']})", section,
                       with_options(c["breaks"], fill), c.get("option"))
        if c.get("edge"):
            flow = with_options(c["edge"], fill)
            text, lineno, line = config_for(section, flow)
            path, r = lint(text)
            check(r.returncode == 0, f"{section}: {c['text']}: the edge {c['edge']} must lint clean: {r.stderr.strip()}")
            if section == "hub.kafka":
                edges.append((c, flow))

check(bounds >= 20, f"bounded options found ({bounds // 2})")
check(constraints >= 19, f"documented constraints found ({constraints})")
check(len(edges) >= 18, f"kafka constraints with an edge ({len(edges)})")

# What lint accepts at the kafka constraints' edges must also start: run them all at once against
# a port with no broker; a configuration error ends a route (and the process) at once.
procs = []
for c, flow in edges:
    text, _, _ = config_for("hub.kafka", flow, bootstrap="127.0.0.1:1")
    path, r = lint(text)
    check(r.returncode == 0, f"run edge {c['edge']}: lint {r.stderr.strip()}")
    log = open(path + ".log", "w+")
    procs.append((c, path, log, subprocess.Popen([BIN, "run", path], stdout=subprocess.DEVNULL, stderr=log,
                                                 env={**os.environ, "LT_LOG_LEVEL": "warn"})))
time.sleep(RUN_SECONDS)
alive = {}
for c, path, log, p in procs:
    alive[path] = p.poll() is None
    if alive[path]:
        p.send_signal(signal.SIGTERM)
for c, path, log, p in procs:
    try:
        rc = p.wait(timeout=40)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    log.seek(0)
    err = log.read()
    log.close()
    check(alive[path] and "cannot start" not in err and rc == 0,
          f"run with the edge {c['edge']} must still run after {RUN_SECONDS} s and stop cleanly "
          f"(exit {rc}): {err[-600:]}")

if not failed:
    shutil.rmtree(tmp, ignore_errors=True)
print(f"{passed} passed, {failed} failed ({bounds} out-of-bounds values, {constraints} constraints, "
      f"{len(edges)} kafka edges run)")
sys.exit(1 if failed else 0)
