"""The TTHC catalogue job (connectors/tthc) against tests/sim/tthc_sim.py.

- The hub's first run (at start) publishes one `added` change record per procedure and the
  snapshot (compacted topic, key MaTTHC).
- A scripted change to the sim's catalogue (3 added, 2 changed, 1 removed), synced on demand
  with `lienthong tthc sync` while the hub runs, with the sim expiring the session every 7
  calls: exactly those 6 change records, the changed ones with exactly the changed fields
  (old and new values), the removed one with its previous content; the snapshot follows.
- A failure mid-run (the sim fails every call after 10 LayThuTuc): the command exits 1 and
  nothing is published (no change record, no snapshot record, no cursor).
- The same run again with dropped connections and calls held past the timeout: the pending
  changes, exactly once.
- A restarted hub's run finds nothing changed: a new cursor, no change record.
Runs on Kafka (kafka.tthc) and on the embedded transport (embedded.tthc).
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

from harness import BIN, PORT, Checks, Hub, consume, log, transport_section, unique, wait_count, wait_until

c = Checks("tthc")
bootstrap = f"127.0.0.1:{PORT}"
SRC = os.environ["LT_SOURCE_DIR"]
N = 40

changes, snapshot, name = unique("tthc.changes"), unique("tthc") + ".snapshot", unique("tthc-job")
hub = Hub("", "tthc")
sim_log, port_file = os.path.join(hub.dir, "sim.log"), os.path.join(hub.dir, "sim.port")
sim = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/sim/tthc_sim.py"), "--port-file", port_file,
                        "--log", sim_log, "--generate", str(N), "--madonvi", "000.00.00.H22", "--user", "hub:s3cret"])


def ctl(path, obj=None):
    req = urllib.request.Request(f"http://127.0.0.1:{sim_port}{path}",
                                 data=json.dumps(obj).encode() if obj is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def sync():
    r = subprocess.run([BIN, "tthc", "sync", hub.config, "--timeout", "240"], capture_output=True, timeout=300)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def latest(records):
    out = {}
    for r in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        out[r["key"]] = r
    return out


def cursor():
    """The connector's latest cursor (the embedded transport keeps only that one; Kafka compacts later)."""
    cs = [r for r in consume(bootstrap, "lienthong.cursors") if r["key"] == name]
    return json.loads(sorted(cs, key=lambda r: r["offset"])[-1]["value"]) if cs else None


try:
    for _ in range(100):
        if os.path.exists(port_file):
            break
        time.sleep(0.05)
    sim_port = int(open(port_file).read())
    with open(os.path.join(hub.dir, "dvcqg.password"), "w") as f:
        f.write("s3cret\n")
    hub.write_config(
        f"hub:\n{transport_section(bootstrap)}  instance: test\n  admin: {{ listen: '@ADMIN@' }}\n"
        f"connectors:\n"
        f"  - name: {name}\n    type: tthc\n    topic: {changes}\n    poll_interval: 1h\n"
        f"    url: 'http://127.0.0.1:{sim_port}'\n    username: hub\n    password_file: dvcqg.password\n"
        f"    madonvi: 000.00.00.H22\n    snapshot_topic: {snapshot}\n    timeout: 2s\n    retries: 3\n"
        f"    rate_limit: 0\n")
    hub.start()
    hub.wait_ready()
    first = wait_count(bootstrap, changes, N, timeout=120, hub=hub)
    c.eq(len(first), N, "first run: change records")
    c.eq({json.loads(r["value"])["change"] for r in first}, {"added"}, "first run: all added")
    c.eq({r["headers"].get("lt.type") for r in first}, {"tthc.added"}, "first run: lt.type")
    catalogue = ctl("/_sim/catalogue")
    c.eq(sorted(r["key"] for r in first), sorted(p["MATTHC"] for p in catalogue), "first run: one per procedure")
    snap = latest(consume(bootstrap, snapshot))
    c.eq(len(snap), N, "snapshot records")
    by_code = {p["MATTHC"]: p for p in catalogue}
    c.ok(all(json.loads(r["value"]) == by_code[k] for k, r in snap.items()), "snapshot values are the procedures")
    c.eq(cursor()["run"], json.loads(first[0]["value"])["run"], "the cursor names the first run")
    m = hub.metrics()
    c.eq(m.get(f'lienthong_tthc_runs_total{{connector="{name}",outcome="committed"}}'), 1.0, "committed run in /metrics")
    c.eq(m.get(f'lienthong_tthc_procedures{{connector="{name}"}}'), float(N), "procedures in /metrics")
    c.eq(m.get(f'lienthong_tthc_changes_total{{connector="{name}"}}'), float(N), "change records in /metrics")

    # ---- the scripted change, synced on demand, with the session expiring on the way
    codes = sorted(by_code)
    added = [dict(by_code[codes[0]], MATTHC=f"2.{i:06d}.000.00.00.H22", TENTTHC=f"Thủ tục mới {i}") for i in range(3)]
    ch1, ch2, gone = codes[5], codes[17], codes[30]
    new_fee = [{"MAPHILEPHI": "1", "SOTIEN": 75000, "MOTA": "Lệ phí"}]
    ctl("/_sim/catalogue", {"add": added,
                            "change": {ch1: {"TENTTHC": "Cấp giấy phép xây dựng (sửa đổi)"},
                                       ch2: {"PHILEPHI": new_fee, "THOIHANGIAIQUYET": None}},
                            "remove": [gone]})
    ctl("/_sim/config", {"expire_every": 7})
    rc, out, err = sync()
    c.eq(rc, 0, f"tthc sync exit code ({err.strip()[-300:]})")
    c.eq(json.loads(out or "{}"), {"procedures": N + 2, "added": 3, "changed": 2, "removed": 1}, "tthc sync summary")
    stats = ctl("/_sim/stats")
    c.ok(stats["expired_answers"] > 0 and stats["sessions_issued"] >= 3, f"sessions expired and renewed ({stats})")
    allc = consume(bootstrap, changes)
    new = sorted(allc, key=lambda r: (r["partition"], r["offset"]))
    new = [r for r in new if json.loads(r["value"])["run"] != json.loads(first[0]["value"])["run"]]
    got = sorted((json.loads(r["value"])["change"], r["key"]) for r in new)
    want = sorted([("added", p["MATTHC"]) for p in added] + [("changed", ch1), ("changed", ch2), ("removed", gone)])
    c.eq(got, want, "exactly the scripted change records")
    vals = {r["key"]: json.loads(r["value"]) for r in new}
    c.eq(vals.get(ch1, {}).get("diff"), [{"field": "TENTTHC", "old": by_code[ch1]["TENTTHC"],
                                          "new": "Cấp giấy phép xây dựng (sửa đổi)"}], "diff of a renamed procedure")
    c.eq(vals.get(ch2, {}).get("diff"), [{"field": "PHILEPHI", "old": by_code[ch2]["PHILEPHI"], "new": new_fee},
                                         {"field": "THOIHANGIAIQUYET", "old": by_code[ch2]["THOIHANGIAIQUYET"]}],
         "diff of a changed fee and a dropped field")
    c.eq(vals.get(gone, {}).get("previous"), by_code[gone], "a removed procedure carries what it was")
    c.ok(all(v.get("at", "").endswith("+07:00") for v in vals.values()), "change times in +07:00")
    c.eq(len({v["run"] for v in vals.values()}), 1, "one run id")
    snap = latest(consume(bootstrap, snapshot))
    c.eq(snap[gone]["value"], "", "the removed procedure's snapshot record is empty")
    c.eq(sum(1 for r in snap.values() if r["value"]), N + 2, "live procedures in the snapshot")
    c.eq(json.loads(snap[ch1]["value"])["TENTTHC"], "Cấp giấy phép xây dựng (sửa đổi)", "the snapshot follows")
    c.eq(cursor(), {"run": next(iter(vals.values()))["run"], "finished": next(iter(vals.values()))["at"],
                    "procedures": N + 2, "added": 3, "changed": 2, "removed": 1}, "the cursor is the run's summary")

    # ---- a failure mid-run publishes nothing
    n_changes, n_snap, cur = len(allc), len(consume(bootstrap, snapshot)), cursor()
    ctl("/_sim/catalogue", {"add": [dict(added[0], MATTHC="3.000001.000.00.00.H22")],
                            "change": {codes[1]: {"TENTTHC": "Tên mới"}}})
    ctl("/_sim/config", {"expire_every": 0, "fail_after": 10})
    rc, out, err = sync()
    c.eq(rc, 1, "tthc sync fails when the adapter fails mid-run")
    c.ok("nothing published" in err, f"it says nothing was published ({err.strip()[-200:]})")
    time.sleep(1)
    c.eq(len(consume(bootstrap, changes)), n_changes, "no change record from the failed run")
    c.eq(len(consume(bootstrap, snapshot)), n_snap, "no snapshot record from the failed run")
    c.eq(cursor(), cur, "no cursor from the failed run")

    # ---- again, with dropped connections: the pending changes, once
    ctl("/_sim/config", {"fail_after": -1, "drop_rate": 0.1, "hang_rate": 0.05, "hang_for": 2.5})  # past timeout: 2s
    rc, out, err = sync()
    c.eq(rc, 0, f"tthc sync after the fault ({err.strip()[-300:]})")
    c.eq(json.loads(out or "{}").get("added"), 1, "one added")
    seen = [json.loads(l) for l in open(sim_log)]
    c.ok(any(e.get("dropped") for e in seen) and any(e.get("hang") for e in seen),
         "the sim dropped connections and held calls past the timeout")
    after = consume(bootstrap, changes)
    c.eq(len(after), n_changes + 2, "exactly the two pending change records")
    ctl("/_sim/config", {"drop_rate": 0.0, "hang_rate": 0.0})

    # ---- a restarted hub finds nothing new
    rc, _ = hub.terminate()
    c.eq(rc, 0, "exit code after SIGTERM")
    cur = cursor()
    hub.start()
    hub.wait_ready()
    c.ok(wait_until(lambda: cursor()["run"] != cur["run"], 120, hub, "the restarted hub's run"), "the restarted hub ran")
    c.eq(len(consume(bootstrap, changes)), n_changes + 2, "no change record when nothing changed")
    c.eq({k: cursor()[k] for k in ("procedures", "added", "changed", "removed")},
         {"procedures": N + 3, "added": 0, "changed": 0, "removed": 0}, "the cursor says nothing changed")
    rc, _ = hub.terminate()
    c.eq(rc, 0, "exit code after SIGTERM")
finally:
    if hub.alive():
        hub.kill()
    sim.terminate()
    sim.wait()
c.done()
