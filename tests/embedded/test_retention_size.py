"""Retention by size on the embedded transport (hub.embedded.retention_bytes).

A route copies keyed records of about 1 KiB into a 2-partition topic with retention_bytes 64KiB,
so each partition may keep 32 KiB. Checked from the database (Python's sqlite3), after the route
has committed everything, then again after a restart and more records:
- each partition of the output holds at most its share, counted as the transport counts
  (key + value + headers), and not much less (the oldest records go first, one at a time);
- what is kept is the newest records, contiguous up to the partition's end (nothing newer lost),
  and the low watermark moved (`lienthong transport list` shows it);
- the transport's running count (table `sizes`) equals the bytes actually held;
- the input topic, never appended to by the transport here, and the consumer offsets are intact.
"""
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import BIN, Checks, Hub, log, wait_until  # noqa: E402

c = Checks("retention_size")
work = tempfile.mkdtemp(prefix="lt-retention-")
db = os.path.join(work, "hub.db")
LIMIT, PARTS = 64 * 1024, 2
config = (f"hub:\n  transport: embedded\n  instance: ret\n"
          f"  embedded: {{ path: '{db}', partitions: {PARTS}, retention_bytes: 64KiB }}\n"
          f"  admin: {{ listen: '@ADMIN@' }}\n"
          "routes:\n  - name: keep\n    from: ret.in\n    to: ret.out\n    steps:\n      - passthrough: {}\n")


def fnv1a(b):
    h = 2166136261
    for x in b:
        h = ((h ^ x) * 16777619) & 0xFFFFFFFF
    return h


def write_input(start, n):
    con = sqlite3.connect(db, timeout=60, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    if con.execute("SELECT 1 FROM topics WHERE name = 'ret.in'").fetchone() is None:
        con.execute("INSERT INTO topics(name, partitions) VALUES('ret.in', ?)", (PARTS,))
        con.executemany("INSERT INTO ends(topic, part, next) VALUES('ret.in', ?, 0)", [(p,) for p in range(PARTS)])
    ends = dict(con.execute("SELECT part, next FROM ends WHERE topic = 'ret.in'").fetchall())
    now = int(time.time() * 1000)
    for i in range(start, start + n):
        k = f"k{i % 17:03d}".encode()
        p = fnv1a(k) % PARTS
        con.execute("INSERT INTO records VALUES('ret.in', ?, ?, ?, ?, ?, x'')",
                    (p, ends[p], now, k, f"{i:08d}:".encode() + b"v" * 1000))
        ends[p] += 1
    con.executemany("UPDATE ends SET next = ? WHERE topic = 'ret.in' AND part = ?", [(e, p) for p, e in ends.items()])
    con.execute("COMMIT")
    con.close()


def q(sql, *args):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
    rows = con.execute(sql, args).fetchall()
    con.close()
    return rows


def committed_all():
    ends = dict(q("SELECT part, next FROM ends WHERE topic = 'ret.in'"))
    offs = dict(q("SELECT part, next FROM offsets WHERE grp = 'lienthong.keep' AND topic = 'ret.in'"))
    return ends and all(offs.get(p) == n for p, n in ends.items())


def check(total_in, what):
    held = q("SELECT part, count(*), sum(coalesce(length(key), 0) + length(value) + length(headers)), min(off), max(off),"
             " max(coalesce(length(key), 0) + length(value) + length(headers))"
             " FROM records WHERE topic = 'ret.out' GROUP BY part")
    ends = dict(q("SELECT part, next FROM ends WHERE topic = 'ret.out'"))
    sizes = dict(q("SELECT part, bytes FROM sizes WHERE topic = 'ret.out'"))
    c.eq(sum(n for n in ends.values()), total_in, f"{what}: the route wrote every record (offsets given)")
    c.eq(len(held), PARTS, f"{what}: both partitions hold records")
    for p, n, size, lo, hi, biggest in held:
        share = LIMIT // PARTS
        c.ok(size <= share, f"{what}: partition {p} holds {size} bytes, at most its share {share}")
        c.ok(size > share - biggest, f"{what}: partition {p} holds {size} bytes: only the oldest over the share went")
        c.eq(hi, ends[p] - 1, f"{what}: partition {p} keeps its newest record")
        c.eq(n, hi - lo + 1, f"{what}: partition {p} keeps a contiguous run up to its end")
        c.ok(lo > 0, f"{what}: partition {p}'s low watermark moved ({lo})")
        c.eq(sizes.get(p), size, f"{what}: partition {p}: the transport's running count equals the bytes held")
    r = subprocess.run([BIN, "transport", "list", hub.config], capture_output=True, text=True, timeout=120)
    lows = {int(f[1]): int(f[2]) for f in (l.split("\t") for l in r.stdout.splitlines()) if f[0] == "ret.out"}
    c.eq(lows, {p: lo for p, _, _, lo, _, _ in held}, f"{what}: `transport list` shows the low watermarks")
    c.eq(q("SELECT count(*) FROM records WHERE topic = 'ret.in'")[0][0], total_in,
         f"{what}: the input topic is untouched (the transport never appended to it)")


hub = Hub(config, name="retention")
# Opening the transport lays out the database; then the input is written as another process would.
c.eq(subprocess.run([BIN, "transport", "list", hub.config], capture_output=True, timeout=120).returncode, 0,
     "transport list opens the new database")
write_input(0, 300)
hub.start()
try:
    wait_until(committed_all, 120, hub=hub, what="the route to commit its input")
    check(300, "after 300 records")
finally:
    c.eq(hub.terminate()[0], 0, "the hub stops cleanly")
log("restart with 200 more records")
write_input(300, 200)
hub.start()
try:
    wait_until(committed_all, 120, hub=hub, what="the route to commit its input")
    check(500, "after a restart and 200 more")
finally:
    c.eq(hub.terminate()[0], 0, "the hub stops cleanly again")
c.done()
