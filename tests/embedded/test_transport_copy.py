"""`lienthong transport copy`: embedded -> Kafka -> embedded with 100,000 records, offsets and cursors.

A: an embedded database filled as the transport lays it out (Python's sqlite3): three topics over
8 partitions with keys (some records keyless), headers (empty and UTF-8 values), distinct
timestamps, a partition whose first 500 records retention removed (so offsets do not start at
0), source cursors, and two consumer groups' committed offsets. Then:
1. copy A -> Kafka (the broker of the ctest fixture), then Kafka -> B (a new database): both exit
   0 and say "verified"; B holds exactly A's records (partition, order, timestamp, key, value,
   headers) and cursors; every group's committed offset points at the same record in A, on
   Kafka (`transport list`) and in B.
2. a route run on B with the copied group resumes where it was on A: it outputs exactly the
   records after the committed offsets, once each.
3. a second copy into a non-empty destination is refused before anything is written; --resume
   finishes an interrupted copy (records removed from the end of a partition) and checks it
   again; --resume against a destination that is not a copy (a changed record) is refused.
"""
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import BIN, PORT, Checks, Hub, log, unique, wait_until  # noqa: E402

c = Checks("transport_copy")
work = tempfile.mkdtemp(prefix="lt-copy-")
run_id = unique("copy")  # Kafka topic names: unique per run (the broker is shared by the tests)
T_IN, T_OTHER, T_DLQ = f"{run_id}.in", f"{run_id}.other", f"{run_id}.dlq"
CURSORS = "lienthong.cursors"
ROUTE = f"route-{run_id}"
GROUP, GROUP2 = f"lienthong.{ROUTE}", f"lienthong.other-{run_id}"


# The configuration loader wants something to do; the copy looks only at `hub:`.
ROUTES = "routes:\n  - name: idle\n    from: idle.in\n    to: idle.out\n    steps:\n      - passthrough: {}\n"


def embedded_config(name, extra=""):
    path = os.path.join(work, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(f"hub:\n  transport: embedded\n  instance: {name}\n  embedded: {{ path: {name}.db }}\n" + ROUTES + extra)
    return path


def kafka_config():
    path = os.path.join(work, "kafka.yaml")
    with open(path, "w") as f:
        f.write(f"hub:\n  transport: kafka\n  instance: k\n  kafka: {{ bootstrap: '127.0.0.1:{PORT}' }}\n" + ROUTES)
    return path


def lt(*args, timeout=900):
    r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)
    log(f"$ lienthong {' '.join(args)} -> {r.returncode}\n{r.stdout[-2500:]}{r.stderr[-2500:]}")
    return r


def fnv1a(b):
    h = 2166136261
    for x in b:
        h = ((h ^ x) * 16777619) & 0xFFFFFFFF
    return h


def headers_blob(pairs):
    out = b""
    for n, v in pairs:
        out += len(n).to_bytes(4, "little") + n + len(v).to_bytes(4, "little") + v
    return out


def fill(db):
    """A's content, written in the embedded transport's layout (the schema exists: `transport list` made it)."""
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    # Recent timestamps: records keep them, and a broker deletes what is older than its
    # retention.ms (7 days by default) at its next retention check, copied or not.
    base = int(time.time() * 1000) - 300_000
    plan = [(T_IN, 4, 60_500), (T_OTHER, 3, 30_000), (T_DLQ, 1, 10_000)]
    ts = base
    for topic, parts, n in plan:
        con.execute("INSERT INTO topics(name, partitions) VALUES(?, ?)", (topic, parts))
        ends = [0] * parts
        rows = []
        for i in range(n):
            key = None if topic == T_OTHER and i % 10 == 0 else f"HS-{i % 997:05d}".encode()
            p = fnv1a(key) % parts if key is not None else i % parts
            hdrs = [(b"lt.id", f"{topic}-{i}".encode()), (b"lt.type", b"dossier.submitted"),
                    (b"content-type", b"application/json")]
            if topic == T_OTHER:
                hdrs += [(b"lt.empty", b""), (b"lt.note", "Hồ sơ đã tiếp nhận".encode())]
            value = f'{{"maHoSo":"HS-{i:06d}","topic":"{topic}","n":{i},"pad":"{"x" * (i % 50)}"}}'.encode()
            rows.append((topic, p, ends[p], ts, key, value, headers_blob(hdrs)))
            ends[p] += 1
            ts += 1
        con.executemany("INSERT INTO records(topic, part, off, ts, key, value, headers) VALUES(?,?,?,?,?,?,?)", rows)
        con.executemany("INSERT INTO ends(topic, part, next) VALUES(?, ?, ?)", [(topic, p, e) for p, e in enumerate(ends)])
    # Retention took the first 500 records of one partition: its offsets start at 500.
    con.execute("DELETE FROM records WHERE topic = ? AND part = 0 AND off < 500", (T_IN,))
    # Cursors: the latest per source, as the compacted topic keeps them (4 partitions, as the hub
    # creates topics by default: the broker's cursor topic may exist already, made by another test).
    con.execute("INSERT INTO topics(name, partitions) VALUES(?, 4)", (CURSORS,))
    ends = [0] * 4
    for s in range(5):
        key = f"src-{run_id}-{s}".encode()
        p = fnv1a(key) % 4
        con.execute("INSERT INTO records VALUES(?, ?, ?, ?, ?, ?, ?)",
                    (CURSORS, p, ends[p], ts + s, key, f'{{"since":"2026-12-0{s + 1}"}}'.encode(), b""))
        ends[p] += 1
    con.executemany("INSERT INTO ends(topic, part, next) VALUES(?, ?, ?)", [(CURSORS, p, e) for p, e in enumerate(ends)])
    con.execute("COMMIT")
    highs = dict(con.execute("SELECT part, next FROM ends WHERE topic = ?", (T_IN,)).fetchall())
    offsets = {(GROUP, T_IN, 0): 1500, (GROUP, T_IN, 1): 0, (GROUP, T_IN, 2): highs[2], (GROUP, T_IN, 3): highs[3] - 200,
               (GROUP2, T_OTHER, 0): 5, (GROUP2, T_OTHER, 1): 9000}
    con.executemany("INSERT INTO offsets(grp, topic, part, next) VALUES(?, ?, ?, ?)",
                    [(g, t, p, n) for (g, t, p), n in offsets.items()])
    con.close()
    return offsets


def records(db, topic):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute("SELECT part, off, ts, key, value, headers FROM records WHERE topic = ? ORDER BY part, off",
                       (topic,)).fetchall()
    con.close()
    return rows


def committed(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = dict(((g, t, p), n) for g, t, p, n in con.execute("SELECT grp, topic, part, next FROM offsets"))
    con.close()
    return rows


def at(rows, part, off):
    """The record a group resumes at: (value) of the first record of `part` at or after `off`, or None (end)."""
    for p, o, _, _, v, _ in rows:
        if p == part and o >= off:
            return v
    return None


def content(rows):
    """What must survive a copy: per partition, in order, timestamp, key, value, headers."""
    return [(p, ts, k if k else None, v, h) for p, _, ts, k, v, h in rows]


a_cfg, b_cfg, k_cfg = embedded_config("a"), embedded_config("b"), kafka_config()
a_db, b_db = os.path.join(work, "a.db"), os.path.join(work, "b.db")
c.eq(lt("transport", "list", a_cfg).returncode, 0, "transport list creates an empty embedded database")
offsets_a = fill(a_db)
total = sum(len(records(a_db, t)) for t in (T_IN, T_OTHER, T_DLQ))
c.eq(total, 100_000, "A holds 100,000 records in the three topics")
topics = [a for t in (T_IN, T_OTHER, T_DLQ, CURSORS) for a in ("--topic", t)]

# ---------------------------------------------------------------- 1: A -> Kafka -> B
log("1: embedded A -> kafka -> embedded B")
# The broker's cursor topic may already hold other tests' cursors: append ours there (--force).
r = lt("transport", "copy", a_cfg, k_cfg, "--dry-run", "--force", *topics)
c.eq(r.returncode, 0, "--dry-run exits 0")
c.ok("nothing was written" in r.stdout, "--dry-run says it wrote nothing")
r = lt("transport", "list", k_cfg)
c.ok(T_IN not in r.stdout, "--dry-run created no topic on Kafka")
t0 = time.time()
r = lt("transport", "copy", a_cfg, k_cfg, "--force", *topics)
c.eq(r.returncode, 0, "copy A -> kafka exits 0")
c.ok("verified" in r.stdout and "MISMATCH" not in r.stdout, "copy A -> kafka: every partition verified by digest")
c.ok("100005 record(s)" in r.stdout, "copy A -> kafka: 100,000 records and 5 cursors")
log(f"A -> kafka took {time.time() - t0:.1f} s")
r = lt("transport", "list", k_cfg)
c.eq(r.returncode, 0, "transport list on kafka")
klist = {}
for line in r.stdout.splitlines():
    f = line.split("\t")
    if len(f) == 4 and f[0] in (GROUP, GROUP2):
        klist[(f[0], f[1], int(f[2]))] = int(f[3])
# On Kafka the copied partitions start at offset 0, so T_IN[0] (500 records gone on A) is 500 lower.
want_k = {k: (v - 500 if k[1] == T_IN and k[2] == 0 else v) for k, v in offsets_a.items()}
c.eq(klist, want_k, "kafka: each group's committed offsets, translated (T_IN[0] shifted by the 500 missing records)")

t0 = time.time()
r = lt("transport", "copy", k_cfg, b_cfg, *topics)
c.eq(r.returncode, 0, "copy kafka -> B exits 0")
c.ok("verified" in r.stdout and "MISMATCH" not in r.stdout, "copy kafka -> B: every partition verified by digest")
log(f"kafka -> B took {time.time() - t0:.1f} s")
for t in (T_IN, T_OTHER, T_DLQ):
    ra, rb = records(a_db, t), records(b_db, t)
    c.eq(len(rb), len(ra), f"B: {t}: record count")
    c.ok(content(ra) == content(rb), f"B: {t}: same partitions, order, timestamps, keys, values and headers as A")
ours = lambda rows: sorted((k, v) for _, _, _, k, v, _ in rows if k and k.decode().startswith(f"src-{run_id}"))  # noqa: E731
c.eq(ours(records(b_db, CURSORS)), ours(records(a_db, CURSORS)), "B: the five source cursors, latest values")
c.eq(len(ours(records(b_db, CURSORS))), 5, "B: five cursors of ours")
offsets_b = {k: v for k, v in committed(b_db).items() if k[0] in (GROUP, GROUP2)}
c.eq(set(offsets_b), set(offsets_a), "B: the same (group, topic, partition) offsets as A")
for k, n in offsets_a.items():
    _, t, p = k
    c.eq(at(records(b_db, t), p, offsets_b.get(k, -1)), at(records(a_db, t), p, n),
         f"B: group {k[0]} on {t}[{p}] resumes at the same record as on A")

# ---------------------------------------------------------------- 2: a route on B resumes where A was
if c.failed:
    c.done()  # nothing to resume from: stop here rather than wait for a route
log("2: a route on B resumes at the copied offsets")
rows_a = records(a_db, T_IN)
expect = sorted(v.decode() for p, o, _, _, v, _ in rows_a if o >= offsets_a[(GROUP, T_IN, p)])
out_topic = f"{run_id}.out"
hub = Hub(f"hub:\n  transport: embedded\n  instance: b\n  embedded: {{ path: '{b_db}' }}\n"
          f"  admin: {{ listen: '@ADMIN@' }}\nroutes:\n  - name: {ROUTE}\n    from: {T_IN}\n    to: {out_topic}\n"
          f"    steps:\n      - passthrough: {{}}\n", name="hub-b")
hub.start()
try:
    wait_until(lambda: len(records(b_db, out_topic)) >= len(expect), 300, hub=hub, what="the route's output")
    time.sleep(2)  # anything beyond would be a duplicate: give it a moment to show
    got = sorted(v.decode() for *_, v, _ in records(b_db, out_topic))
    c.eq(len(got), len(expect), "the route on B output exactly the records after the committed offsets")
    c.ok(got == expect, "... those records, once each")
finally:
    c.eq(hub.terminate()[0], 0, "the hub on B stops cleanly")

# ---------------------------------------------------------------- 3: refusals and --resume
log("3: refusing a non-empty destination; --resume")
c_cfg = embedded_config("c")
c_db = os.path.join(work, "c.db")
r = lt("transport", "copy", a_cfg, c_cfg, "--topic", T_OTHER)
c.eq(r.returncode, 0, "copy A -> C (one topic)")
before = records(c_db, T_OTHER)
r = lt("transport", "copy", a_cfg, c_cfg, "--topic", T_OTHER)
c.eq(r.returncode, 2, "copying again into the non-empty topic is refused (exit 2)")
c.ok("not empty" in r.stderr and "--resume" in r.stderr, "... saying the topic is not empty and what to do")
c.ok(records(c_db, T_OTHER) == before, "... and nothing was written")
# An interrupted copy: the last 700 records of partition 1 never arrived.
con = sqlite3.connect(c_db, isolation_level=None)
hi = con.execute("SELECT max(off) FROM records WHERE topic = ? AND part = 1", (T_OTHER,)).fetchone()[0]
con.execute("DELETE FROM records WHERE topic = ? AND part = 1 AND off > ?", (T_OTHER, hi - 700))
con.execute("UPDATE ends SET next = ? WHERE topic = ? AND part = 1", (hi - 699, T_OTHER))
con.close()
r = lt("transport", "copy", a_cfg, c_cfg, "--topic", T_OTHER, "--resume")
c.eq(r.returncode, 0, "--resume finishes the interrupted copy")
c.ok("resumed" in r.stderr and "verified" in r.stdout, "... reporting the resumed partition, verified")
c.ok(content(records(c_db, T_OTHER)) == content(records(a_db, T_OTHER)), "C now holds exactly A's records")
r = lt("transport", "copy", a_cfg, c_cfg, "--topic", T_OTHER, "--resume")
c.eq(r.returncode, 0, "--resume on a finished copy checks it again")
c.eq(len(records(c_db, T_OTHER)), len(records(a_db, T_OTHER)), "... and writes nothing")
con = sqlite3.connect(c_db, isolation_level=None)
con.execute("UPDATE records SET value = 'tampered' WHERE topic = ? AND part = 2 AND off = 7", (T_OTHER,))
con.close()
r = lt("transport", "copy", a_cfg, c_cfg, "--topic", T_OTHER, "--resume")
c.eq(r.returncode, 2, "--resume against a destination that is not a copy is refused")
c.ok("differs" in r.stderr, "... naming the record that differs")
r = lt("transport", "copy", a_cfg, c_cfg, "--topic", "no.such.topic")
c.eq(r.returncode, 2, "an unknown --topic is a usage error")

# ---------------------------------------------------------------- 4: from a topic written in transactions
log("4: a topic the hub wrote on Kafka in transactions (markers take offsets) -> embedded D")
k_out = f"{run_id}.k-out"
khub = Hub(f"hub:\n  transport: kafka\n  instance: k4\n  kafka: {{ bootstrap: '127.0.0.1:{PORT}' }}\n"
           f"  admin: {{ listen: '@ADMIN@' }}\nroutes:\n  - name: k4-{run_id}\n    from: {T_DLQ}\n    to: {k_out}\n"
           "    steps:\n      - passthrough: {}\n    batch: { max_messages: 500 }\n", name="hub-k")
khub.start()


def k_list():
    r = subprocess.run([BIN, "transport", "list", k_cfg], capture_output=True, text=True, timeout=120)
    return [l.split("\t") for l in r.stdout.splitlines()]


def k_high():
    return sum(int(f[3]) for f in k_list() if f[0] == k_out)


def k_done():  # the route committed its whole input (offset 10000 on the one partition of T_DLQ)
    return any(f[0] == f"lienthong.k4-{run_id}" and f[1] == T_DLQ and f[3] == "10000" for f in k_list())


try:
    wait_until(k_done, 300, hub=khub, what="the Kafka route to commit its input")
finally:
    c.eq(khub.terminate()[0], 0, "the hub on Kafka stops cleanly")
d_cfg = embedded_config("d")
d_db = os.path.join(work, "d.db")
r = lt("transport", "copy", k_cfg, d_cfg, "--topic", k_out)
c.eq(r.returncode, 0, "copy of a transactionally written Kafka topic exits 0")
c.ok("verified" in r.stdout and "MISMATCH" not in r.stdout, "... verified by digest")
got = records(d_db, k_out)
high = k_high()
c.ok(high > 10_000, f"Kafka's end offsets count the transaction markers too ({high} for 10,000 records)")
c.eq(len(got), 10_000, "D holds the 10,000 records, not the markers")
c.eq(sorted(v for *_, v, _ in got), sorted(v for *_, v, _ in records(a_db, T_DLQ)), "... with the values A had")
c.done()
