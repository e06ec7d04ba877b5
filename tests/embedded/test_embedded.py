"""The `embedded` transport (one SQLite file, no broker) under the hub's guarantees.

1. A polling source -> route -> sink with a result topic, the hub SIGKILLed three times: what
   the source acknowledged is in its topic exactly once, the route's output holds every record
   exactly once and in key order, the sink saw every record with one lt.id each, and the result
   topic holds one result per record.
2. Poison records go to the route's DLQ, and `lienthong dlq list` reads them from another
   process while `run` runs; a second `run` of the same instance is refused while the first lives.
3. Two instances share a route's consumer group (the partitions are split); one is SIGKILLed and
   the other takes its partitions over: exactly once.
Topics are read back with Python's sqlite3 module, independently of the hub.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import BIN, Checks, Hub, lines, log, wait_until  # noqa: E402

c = Checks("embedded")
work = tempfile.mkdtemp(prefix="lt-embedded-")
db = os.path.join(work, "hub.db")


def config(body, instance="a"):
    return (f"hub:\n  transport: embedded\n  instance: {instance}\n"
            f"  embedded: {{ path: {db}, session_timeout: 3s }}\n"
            f"  admin: {{ listen: '@ADMIN@' }}\n" + body)


def topic(name):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("SELECT part, off, key, value, headers FROM records WHERE topic = ? ORDER BY part, off",
                           (name,)).fetchall()
    except sqlite3.OperationalError:
        rows = []
    con.close()
    return [{"partition": p, "offset": o, "key": k.decode() if k is not None else None, "value": v.decode()}
            for p, o, k, v, _ in rows]




def exactly_once_in_order(records, what):
    values = [r["value"] for r in records]
    c.eq(len(values) - len(set(values)), 0, f"{what}: duplicates")
    by_key = {}
    for r in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        by_key.setdefault(r["key"], []).append(int(r["value"]))
    c.eq(sum(1 for v in by_key.values() if v != sorted(v)), 0, f"{what}: keys out of order")
    return set(values)


# ---------------------------------------------------------------- 1: source -> route -> sink, SIGKILL
N = 3000
ack, sink_log = os.path.join(work, "ack"), os.path.join(work, "sink.log")
hub = Hub(config(
    "connectors:\n"
    f"  - {{ name: src, type: test-source, topic: e.in, poll_interval: 10ms, count: {N}, batch: 20, keys: 8,"
    f" ack_file: {ack} }}\n"
    f"  - {{ name: snk, type: test-sink, from: e.out, result: e.res, log_file: {sink_log}, give_result: true }}\n"
    "routes:\n"
    "  - name: r\n    from: e.in\n    to: e.out\n    steps:\n      - set-header: { lt.type: embedded.test }\n"
    "    batch: { max_wait: 10ms }\n"), "embedded")
hub.start()
hub.wait_ready()
for k in range(3):
    target = (k + 1) * N // 5
    wait_until(lambda: len(lines(ack)) >= target, 120, hub, f"{target} acknowledged")
    hub.kill()
    acked = lines(ack)
    present = {r["value"] for r in topic("e.in")}
    log(f"SIGKILL {k + 1} after {len(acked)} acknowledged")
    c.eq(len(set(acked) - present), 0, f"kill {k + 1}: acknowledged records missing from the topic")
    hub.start()
    hub.wait_ready()
wait_until(lambda: len(topic("e.res")) >= N, 180, hub, "every result")
time.sleep(0.5)
c.eq(exactly_once_in_order(topic("e.in"), "source topic"), {str(i) for i in range(N)}, "source topic holds 0..N-1")
# A SIGKILL between a batch's commit and its acknowledgement loses that acknowledgement (the
# caller would send again; the test source does not): at most one batch (20) per kill.
acked = lines(ack)
c.eq(len(acked), len(set(acked)), "acknowledged each at most once")
c.ok(N - 3 * 20 <= len(acked) <= N, f"acknowledged all but at most one batch per kill ({len(acked)} of {N})")
out = topic("e.out")
c.eq(len(out), N, "route output count")
c.eq(exactly_once_in_order(out, "route output"), {str(i) for i in range(N)}, "route output holds 0..N-1")
seen = {}
for l in lines(sink_log):
    d = json.loads(l)
    seen.setdefault(d["value"], set()).add(d["id"])
c.eq(len(seen), N, "records the sink saw")
c.eq(sum(1 for s in seen.values() if len(s) != 1), 0, "records delivered with different lt.id")
res = topic("e.res")
c.eq(len(res), N, "one result per record")
c.eq(len({json.loads(r["value"])["delivered"] for r in res}), N, "distinct results")
m = hub.metrics()
c.ok(m.get('lienthong_route_assigned_partitions{route="r"}') == 4.0, "the route holds all 4 partitions")
rc, _ = hub.terminate()
c.eq(rc, 0, "exit code after SIGTERM")

# ---------------------------------------------------------------- 2: DLQ, read by another process while running
hub2 = Hub(config(
    "routes:\n  - name: p\n    from: p.in\n    to: p.out\n    steps:\n      - test-fault: { reject_if: POISON }\n"), "dlq")
hub2.start()
hub2.wait_ready()
con = sqlite3.connect(db, timeout=30)
with con:
    # Written the way the transport does it: the test appends committed records with their offsets.
    nxt = {}
    for p, n in con.execute("SELECT part, next FROM ends WHERE topic = 'p.in'"):
        nxt[p] = n
    for i in range(20):
        p = i % 4
        off = nxt.get(p, 0)
        nxt[p] = off + 1
        value = f"{i}:POISON" if i % 5 == 0 else str(i)
        con.execute("INSERT INTO records(topic, part, off, ts, key, value, headers) VALUES('p.in', ?, ?, ?, ?, ?, ?)",
                    (p, off, int(time.time() * 1000), f"k{p}".encode(), value.encode(), b""))
    for p, n in nxt.items():
        con.execute("UPDATE ends SET next = ? WHERE topic = 'p.in' AND part = ?", (n, p))
con.close()
wait_until(lambda: len(topic("p.out")) >= 16, 60, hub2, "16 good records routed")
r = subprocess.run([BIN, "dlq", "list", hub2.config, "p"], capture_output=True, text=True, timeout=60)
c.eq(r.returncode, 0, f"dlq list while run runs: {r.stderr.strip()}")
c.eq(sum(1 for l in r.stdout.splitlines() if "POISON" in l), 4, "dlq list shows the 4 poison records")
c.eq(len(topic("p.out")), 16, "good records routed once")
twin = Hub(open(hub2.config).read().replace(f"127.0.0.1:{hub2.admin_port}", "@ADMIN@"), "twin")
twin.start()
try:
    twin_rc = twin.proc.wait(timeout=60)
except subprocess.TimeoutExpired:
    twin.kill()
    twin_rc = None
c.ok(twin_rc not in (None, 0), f"a second run of the same instance is refused (exit {twin_rc})")
c.ok("held by another live process" in twin.tail(), "... with a message that says why")
c.ok(hub2.alive(), "the first run goes on")
rc, _ = hub2.terminate()
c.eq(rc, 0, "exit code after SIGTERM")

# ---------------------------------------------------------------- 3: two instances, one SIGKILLed
ack3 = os.path.join(work, "ack3")
src_cfg = ("connectors:\n"
           f"  - {{ name: src3, type: test-source, topic: g.in, poll_interval: 10ms, count: 4000, batch: 20, keys: 16,"
           f" ack_file: {ack3} }}\n")
route_cfg = ("routes:\n  - name: g\n    from: g.in\n    to: g.out\n    steps:\n      - test-fault: { delay_us: 300 }\n"
             "    batch: { max_wait: 10ms }\n")
a = Hub(config(src_cfg + route_cfg, "a"), "inst-a")
b = Hub(config(route_cfg, "b"), "inst-b")
a.start()
b.start()
a.wait_ready()
b.wait_ready()
wait_until(lambda: len(topic("g.out")) >= 800, 120, a, "the route is under way")
ma, mb = a.metrics(), b.metrics()
pa, pb = ma.get('lienthong_route_assigned_partitions{route="g"}'), mb.get('lienthong_route_assigned_partitions{route="g"}')
c.ok(pa and pb and pa + pb == 4.0, f"the two instances split the partitions ({pa} + {pb})")
b.kill()
log("instance b SIGKILLed")
wait_until(lambda: len(topic("g.out")) >= 4000, 180, a, "every record routed by the survivor")
time.sleep(0.5)
c.eq(exactly_once_in_order(topic("g.out"), "two instances"), {str(i) for i in range(4000)},
     "two instances: output holds 0..3999")
c.ok(a.metrics().get('lienthong_route_assigned_partitions{route="g"}') == 4.0, "the survivor holds all 4 partitions")
rc, _ = a.terminate()
c.eq(rc, 0, "exit code after SIGTERM")
c.done()
