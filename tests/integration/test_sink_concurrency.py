"""A sink with `concurrency: 8` (the engine's waves, hub/engine/route.c) on the http sink against
tests/sim/http_sim.py failing 20% of calls with 503, throttling 5% with 429, holding 3% for
0.3 s, and answering 400 to records marked REJECT-ME.

Phase 1 (no crash), 1,200 records over 60 keys:
- per key, the sim never receives a record before the one in front of it was answered 2xx
  (order per key under retries), and every record is answered 2xx once at least;
- deliveries overlapped: calls arrived while another call was being held (parallelism is real);
- exactly one result per delivered record on the result topic, the DLQ holds exactly the
  rejected records, /metrics counts retries.
Phase 2: 1,200 more records with the hub SIGKILLed once mid-way: still exactly one committed
result per record (offsets and results in one transaction), nothing missing.
Runs on Kafka (kafka.sink_concurrency) and on the embedded transport (embedded.sink_concurrency).
"""
import hashlib
import json
import os
import subprocess
import sys
import time

from harness import (PORT, Checks, Hub, consume, lines, log, produce, transport_section, unique, wait_count,
                     wait_until)

c = Checks("sink_concurrency")
bootstrap = f"127.0.0.1:{PORT}"
SRC = os.environ["LT_SOURCE_DIR"]
KEYS, PER_KEY = 60, 20

topic, results, name = unique("conc.in"), unique("conc.res"), unique("concsink")
hub = Hub("", "sink-concurrency")
sim_log, port_file = os.path.join(hub.dir, "sim.log"), os.path.join(hub.dir, "sim.port")
sim = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/sim/http_sim.py"), "--port-file", port_file,
                        "--log", sim_log, "--seed", "7", "--fail-rate", "0.2", "--fail-status", "503",
                        "--throttle-rate", "0.05", "--retry-after", "0", "--hang-rate", "0.03", "--hang-for", "0.3",
                        "--reject-if", "REJECT-ME"])


def sim_calls():
    return [json.loads(l) for l in lines(sim_log) if '"/c/' in l]


def make_records(phase):
    out = []
    for s in range(PER_KEY):
        for k in range(KEYS):
            mark = "REJECT-ME" if phase == 1 and s == 9 and k % 20 == 3 else "ok"
            out.append((f"K{k:03d}", json.dumps({"p": phase, "k": f"K{k:03d}", "s": s, "mark": mark},
                                                separators=(",", ":"))))
    return out


try:
    for _ in range(100):
        if os.path.exists(port_file):
            break
        time.sleep(0.05)
    sim_port = int(open(port_file).read())
    hub.write_config(
        f"hub:\n{transport_section(bootstrap)}  instance: test\n  admin: {{ listen: '@ADMIN@' }}\n"
        f"connectors:\n"
        f"  - name: {name}\n    type: http\n    from: {topic}\n    result: {results}\n"
        f"    url: 'http://127.0.0.1:{sim_port}/c/${{key}}'\n"
        f"    timeout: 2s\n    concurrency: 8\n"
        f"    breaker: {{ failures: 0 }}\n"
        f"    errors: {{ retries: 1000, backoff: 5ms..100ms }}\n"
        f"    batch: {{ max_wait: 20ms }}\n")
    hub.start()
    hub.wait_ready()

    # ---- phase 1: order per key under retries, no crash
    rec1 = make_records(1)
    rejects = {(json.loads(v)["k"], json.loads(v)["s"]) for _, v in rec1 if "REJECT-ME" in v}
    t0 = time.time()
    produce(bootstrap, topic, rec1)
    want1 = len(rec1) - len(rejects)
    res = wait_count(bootstrap, results, want1, timeout=300, hub=hub)
    log(f"phase 1: {len(res)} results in {time.time() - t0:.1f} s")
    dlq = wait_count(bootstrap, f"{name}.dlq", len(rejects), timeout=60, hub=hub)
    calls = [r for r in sim_calls() if json.loads(r["body"])["p"] == 1]
    log(f"sim: {len(calls)} calls, {sum(1 for r in calls if r['answer'] == 503)} 503, "
        f"{sum(1 for r in calls if r['answer'] == 429)} 429, {sum(1 for r in calls if r.get('hang'))} held")
    # Order per key: a record is only sent once every record before it (same key) was answered
    # 2xx (or 4xx: to the DLQ, then the key goes on).
    bad_order, first_ok = 0, {}
    done = {}  # key -> highest s answered final (2xx or 4xx)
    for r in calls:  # the log is in arrival order
        b = json.loads(r["body"])
        k, s = b["k"], b["s"]
        if s > done.get(k, -1) + 1:
            bad_order += 1
        if 200 <= r["answer"] < 300 or 400 <= r["answer"] < 500 and r["answer"] != 429:
            done[k] = max(done.get(k, -1), s)
            first_ok.setdefault((k, s), r["answer"])
    c.eq(bad_order, 0, "calls sent before the record in front of them (same key) succeeded")
    c.eq(len(first_ok), len(rec1), "records answered 2xx or 4xx")
    c.eq({ks for ks, st in first_ok.items() if st == 400}, rejects, "records answered 400")
    c.ok(sum(1 for r in calls if r["answer"] == 503) > 50, "the sim failed calls")
    # Parallelism: calls that arrived while a held call was in progress.
    held = [(r["time"], r["time"] + r["hang"]) for r in calls if r.get("hang")]
    overlapped = sum(1 for r in calls if any(a < r["time"] < b for a, b in held))
    log(f"calls that arrived while another was held: {overlapped}")
    c.ok(len(held) > 0 and overlapped > len(held), "deliveries ran in parallel")
    parents = [r["headers"].get("lt.parent") for r in res]
    want_parents = {hashlib.sha256(v.encode()).hexdigest() for _, v in rec1 if "REJECT-ME" not in v}
    c.eq(len(res), want1, "phase 1 result records")
    c.eq(set(parents), want_parents, "a result for each delivered record")
    c.eq(len(parents) - len(set(parents)), 0, "records with two results")
    c.eq(sorted((json.loads(d["value"])["k"], json.loads(d["value"])["s"]) for d in dlq), sorted(rejects),
         "the DLQ holds the rejected records, once each")
    m = hub.metrics()
    c.ok(m.get(f'lienthong_route_retried_total{{route="{name}"}}', 0) > 50, "retries counted in /metrics")

    # ---- phase 2: a SIGKILL mid-way; exactly one committed result per record
    rec2 = make_records(2)
    produce(bootstrap, topic, rec2)
    wait_until(lambda: sum(1 for r in sim_calls() if '"p":2' in r["body"] and r["answer"] == 200) > 400, 180, hub,
               "phase 2 under way")
    log("SIGKILL")
    hub.kill()
    hub.start()
    hub.wait_ready()
    res = wait_count(bootstrap, results, want1 + len(rec2), timeout=300, hub=hub)
    time.sleep(2)  # anything extra would show now
    res = consume(bootstrap, results)
    parents = [r["headers"].get("lt.parent") for r in res]
    want_parents |= {hashlib.sha256(v.encode()).hexdigest() for _, v in rec2}
    c.eq(len(res), want1 + len(rec2), "result records after the SIGKILL")
    c.eq(set(parents), want_parents, "a result for each delivered record after the SIGKILL")
    c.eq(len(consume(bootstrap, f"{name}.dlq")), len(rejects), "DLQ unchanged")
    c.eq(hub.http("/ready")[0], 200, "/ready at the end")
    rc, _ = hub.terminate()
    c.eq(rc, 0, "exit code after SIGTERM")
finally:
    if hub.alive():
        hub.kill()
    sim.terminate()
    sim.wait()
c.done()
