"""The file connectors (connectors/file) on a real broker, with SIGKILLs.

1. file-in: 1,000 files are dropped into a folder (most written under a temp name and renamed
   in, some written slowly in place) while the hub is SIGKILLed and restarted three times.
   Right after each kill, every file in done/ has its record committed (read_committed via
   kcat): nothing is moved before its commit. At the end each file's record is in the topic
   exactly once, with its name, content and digest, and every file is in done/.
2. file-out: a topic of 1,000 records is written to a folder while a reader thread opens every
   file it sees: none is ever half-written (each parses as the complete JSON it should be).
   The hub is SIGKILLed mid-way and restarted: the folder ends with exactly one file per
   record, each with its record's value, and no temp file.
"""
import hashlib
import json
import os
import threading
import time

from harness import PORT, Checks, Hub, consume, log, produce, rng, unique, wait_count, wait_until

c = Checks("file")
bootstrap = f"127.0.0.1:{PORT}"
N = 1000
SLOW_WRITERS = 4


def hub_config(connectors):
    return (f"hub:\n  transport: kafka\n  instance: test\n"
            f"  kafka: {{ bootstrap: '{bootstrap}', session_timeout: 3s }}\n"
            f"  admin: {{ listen: '@ADMIN@' }}\n"
            f"connectors:\n{connectors}")


def visible(folder):
    """Names of the regular files in folder that do not start with '.'."""
    try:
        return {n for n in os.listdir(folder) if not n.startswith(".") and os.path.isfile(os.path.join(folder, n))}
    except FileNotFoundError:
        return set()



def content(i, r):
    # One line without tabs: kcat prints values as they are.
    return json.dumps({"n": i, "pad": "y" * r.randint(10, 3000)}, separators=(",", ":"))


# ---------------------------------------------------------------- 1: file-in, 1,000 files, 3 SIGKILLs
r = rng()
topic, name = unique("files.in"), unique("filein")
hub = Hub("", "filein")
folder = os.path.join(hub.dir, "in")
done = os.path.join(folder, "done")
os.makedirs(folder)
hub.write_config(hub_config(
    f"  - name: {name}\n    type: file-in\n    topic: {topic}\n    path: {folder}\n"
    f"    poll_interval: 50ms\n    settle: 1s\n    rescan: 1s\n    batch: 50\n"))
want = {}  # name -> content
slow_names = set()
dropping_done = threading.Event()


def dropper():
    # Bodies are drawn here, in order, so LT_TEST_SEED repeats them; the files written slowly
    # (each with the same pauses as before, shorter than settle) go to SLOW_WRITERS threads so
    # their pauses overlap instead of adding up (they were 45 of the test's 76 s).
    bodies = [(f"f{i:04d}.json", content(i, r)) for i in range(N)]
    slow = [(i, fname, body) for i, (fname, body) in enumerate(bodies) if i % 10 == 7]

    def slow_writer(part):
        for i, fname, body in part:
            with open(os.path.join(folder, fname), "w") as f:
                third = len(body) // 3
                for piece in (body[:third], body[third:2 * third], body[2 * third:]):
                    f.write(piece)
                    f.flush()
                    time.sleep(0.15)
            time.sleep(0.01)

    for fname, body in bodies:
        want[fname] = body
    slow_names.update(fname for _, fname, _ in slow)
    writers = [threading.Thread(target=slow_writer, args=(slow[w::SLOW_WRITERS],)) for w in range(SLOW_WRITERS)]
    for w in writers:
        w.start()
    for i, (fname, body) in enumerate(bodies):
        if i % 10 == 7:
            continue
        path = os.path.join(folder, fname)
        with open(path + ".tmp", "w") as f:
            f.write(body)
        os.rename(path + ".tmp", path)
        time.sleep(0.015)
    for w in writers:
        w.join()
    dropping_done.set()


hub.start()
hub.wait_ready()
t = threading.Thread(target=dropper)
t.start()
early_moves = 0
for k in range(3):
    target = (k + 1) * N // 4
    wait_until(lambda: len(visible(done)) >= target, 180, hub, f"{target} files in done/")
    hub.kill()
    in_done = visible(done)
    committed = {x["key"] for x in consume(bootstrap, topic)}
    early = sorted(in_done - committed)
    log(f"SIGKILL {k + 1}: {len(in_done)} files in done/, {len(committed)} records committed")
    c.eq(early[:5], [], f"kill {k + 1}: files in done/ without a committed record")
    early_moves += len(early)
    hub.start()
    hub.wait_ready()
t.join()
wait_until(lambda: len(visible(done)) >= N, 180, hub, "every file in done/")
out = wait_count(bootstrap, topic, N, hub=hub)
keys = [x["key"] for x in out]
c.eq(len(out), N, "records in the topic (one per file)")
c.eq(len(keys) - len(set(keys)), 0, "files emitted twice")
c.eq(set(keys), set(want), "every file's record is there")
bad = [x["key"] for x in out if x["value"] != want.get(x["key"])
       or x["headers"].get("lt.file.name") != x["key"]
       or x["headers"].get("lt.file.sha256") != hashlib.sha256(x["value"].encode()).hexdigest()
       or x["headers"].get("content-type") != "application/json" or x["headers"].get("lt.source") != name]
c.eq(bad[:5], [], "records whose value, name, digest, content-type or source is wrong")
c.eq(len(slow_names & set(keys)), len(slow_names), "files written slowly in place are there whole")
c.eq(visible(done), set(want), "every file is in done/")
c.eq(visible(folder), set(), "nothing left in the folder")
cursors = [x for x in consume(bootstrap, "lienthong.cursors") if x["key"] == name]
c.ok(cursors and len(json.loads(cursors[-1]["value"])["pending"]) <= 50, "the cursor stays bounded (one batch)")
m = hub.metrics()
log(f"recovered at start (committed, not moved): {m.get('lienthong_file_in_recovered_total', 0):.0f}")
rc, _ = hub.terminate()
c.eq(rc, 0, "exit code after SIGTERM")

# ---------------------------------------------------------------- 2: file-out, a reader, a SIGKILL
src, results, sink = unique("files.out"), unique("files.res"), unique("fileout")
hub2 = Hub("", "fileout")
outdir = os.path.join(hub2.dir, "out")
os.makedirs(outdir)
records = [(f"k{i:04d}", content(i, r)) for i in range(N)]
by_name = {f"{k}.json": v for k, v in records}
hub2.write_config(hub_config(
    f"  - name: {sink}\n    type: file-out\n    from: {src}\n    result: {results}\n    path: {outdir}\n"
    f"    filename: '${{key}}.json'\n    batch: {{ max_wait: 20ms }}\n"))
stop = threading.Event()
seen = {"opened": 0, "bad": []}


def reader():
    while not stop.is_set():
        for fname in visible(outdir):
            try:
                with open(os.path.join(outdir, fname)) as f:
                    text = f.read()
            except FileNotFoundError:
                continue
            seen["opened"] += 1
            try:
                ok = json.loads(text) is not None and text == by_name.get(fname)
            except ValueError:
                ok = False
            if not ok:
                seen["bad"].append((fname, len(text)))


rt = threading.Thread(target=reader)
rt.start()
hub2.start()
hub2.wait_ready()  # its route has created the topic
produce(bootstrap, src, records)
wait_until(lambda: len(visible(outdir)) >= N // 3, 180, hub2, f"{N // 3} files written")
hub2.kill()
log(f"SIGKILL with {len(visible(outdir))} files written")
hub2.start()
hub2.wait_ready()
wait_until(lambda: len(visible(outdir)) >= N, 180, hub2, "every record written")
res = wait_count(bootstrap, results, N, hub=hub2)
stop.set()
rt.join()
log(f"reader opened {seen['opened']} files")
c.ok(seen["opened"] > N, "the reader opened files while they were written")
c.eq(seen["bad"][:5], [], "files seen half-written or wrong")
names = visible(outdir)
c.eq(names, set(by_name), "exactly one file per record")
c.eq([n for n in os.listdir(outdir) if n.startswith(".")], [], "no temp file left")
wrong = [n for n in names if open(os.path.join(outdir, n)).read() != by_name[n]]
c.eq(wrong[:5], [], "files whose content is not their record's value")
c.eq(len(res), N, "results (exactly one per record)")
res_paths = {json.loads(x["value"])["path"] for x in res}
c.eq(res_paths, {os.path.join(outdir, n) for n in by_name}, "results name every file")
rc, _ = hub2.terminate()
c.eq(rc, 0, "exit code after SIGTERM")
c.done()
