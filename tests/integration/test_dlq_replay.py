"""(c) Poison records land in the DLQ with the right headers while the other records flow;
`lienthong dlq replay` brings them back through the route (here after the route was fixed)."""
import subprocess

from harness import (BIN, PORT, Checks, Hub, consume, keyed_records, produce, route_config, unique, wait_count)

c = Checks("dlq-replay")
bootstrap = f"127.0.0.1:{PORT}"
src, dst, route = unique("dlq.in"), unique("dlq.out"), unique("dlq")
dlq = f"{route}.dlq"
steps_bad = "      - test-fault: { reject_if: POISON }\n      - set-header: { lt.type: test.dlq }\n"
hub = Hub(route_config(route, src, dst, steps=steps_bad), "dlq")
hub.start()
hub.wait_ready()
records = keyed_records(1000, 50)
poison_idx = set(range(7, 1000, 100))
records = [(k, v + ("-POISON" if i in poison_idx else "")) for i, (k, v) in enumerate(records)]
produce(bootstrap, src, records)
good = [r for i, r in enumerate(records) if i not in poison_idx]
bad = [r for i, r in enumerate(records) if i in poison_idx]
out = wait_count(bootstrap, dst, len(good), hub=hub)
c.eq(len(out), len(good), "good records in the output")
c.eq(sorted((o["key"], o["value"]) for o in out), sorted(good), "output holds exactly the good records")
dl = wait_count(bootstrap, dlq, len(bad), hub=hub)
c.eq(len(dl), len(bad), "records in the DLQ")
c.eq(sorted((d["key"], d["value"]) for d in dl), sorted(bad), "DLQ keeps the original key and bytes")
inp = {(r["key"], r["value"]): r for r in consume(bootstrap, src)}
for d in dl:
    h = d["headers"]
    orig = inp.get((d["key"], d["value"]))
    c.eq(h.get("lt.error.stage"), "steps[0].test-fault", "lt.error.stage")
    c.eq(h.get("lt.error.code"), "step-reject", "lt.error.code")
    c.ok("POISON" in h.get("lt.error.reason", ""), "lt.error.reason names the marker")
    c.eq(h.get("lt.origin"), f"{src}/{orig['partition']}/{orig['offset']}" if orig else None, "lt.origin")
    c.eq(h.get("lt.attempts"), "1", "lt.attempts")
    c.eq(h.get("lt.route"), route, "lt.route")
    c.ok("lt.type" not in h, "the DLQ record is the input, not a half-processed output")

lst = subprocess.run([BIN, "dlq", "list", hub.config, route], capture_output=True, text=True)
c.eq(lst.returncode, 0, "dlq list exit code")
c.eq(len(lst.stdout.strip().splitlines()), len(bad), "dlq list lines")
c.ok(all("step-reject" in line for line in lst.stdout.splitlines()), "dlq list shows the code")
pos = lst.stdout.split("\t", 1)[0]
show = subprocess.run([BIN, "dlq", "show", hub.config, route, pos], capture_output=True, text=True)
c.eq(show.returncode, 0, "dlq show exit code")
c.ok("header lt.error.reason:" in show.stdout and "POISON" in show.stdout, "dlq show prints headers and value")
missing = subprocess.run([BIN, "dlq", "show", hub.config, route, "0:999999"], capture_output=True, text=True)
c.eq(missing.returncode, 1, "dlq show of a missing position")

# The route is fixed (the step no longer rejects the marker); replay brings the records back.
rc, _ = hub.terminate()
c.eq(rc, 0, "exit code after SIGTERM")
hub.write_config(route_config(route, src, dst, steps="      - test-fault: { reject_if: NEVER-MATCHES }\n"
                              "      - set-header: { lt.type: test.dlq }\n"))
hub.start()
hub.wait_ready()
rep = subprocess.run([BIN, "dlq", "replay", hub.config, route, "--all"], capture_output=True, text=True)
c.eq(rep.returncode, 0, f"dlq replay exit code ({rep.stderr.strip()})")
c.ok(f"replayed {len(bad)} record(s)" in rep.stdout, "dlq replay reports the count")
out = wait_count(bootstrap, dst, len(records), hub=hub)
c.eq(len(out), len(records), "output after replay")
replayed = [o for o in out if o["headers"].get("lt.replayed") == "true"]
c.eq(sorted((o["key"], o["value"]) for o in replayed), sorted(bad), "the replayed records came through")
c.ok(all(o["headers"].get("lt.replay.count") == "1" for o in replayed), "lt.replay.count is 1")
c.ok(all("lt.error.code" not in o["headers"] for o in replayed), "replayed records carry no error headers")
c.ok(all(o["headers"].get("lt.type") == "test.dlq" for o in replayed), "replayed records ran through the steps")
rc, _ = hub.terminate()
c.eq(rc, 0, "exit code after SIGTERM")
c.done()
