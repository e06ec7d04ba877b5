"""The `http` sink on a real broker against the REST simulator (tests/sim/http_sim.py).

2,000 records go through the sink to a sim that fails 20% of calls with 5xx, holds 1% past
the sink's timeout, and answers 400 to the records marked REJECT-ME; the hub is SIGKILLed twice
on the way. Then:
- every record reached the sim at least once;
- the distinct Idempotency-Keys the sim saw are exactly the input records' lt.ids (the engine's
  stable key, SHA-256 of topic/partition/offset as a UUIDv8, recomputed here);
- the result topic holds exactly one 2xx result per delivered record (matched by lt.parent,
  the SHA-256 of the input value), keyed like its input;
- the DLQ holds exactly the records the sim answered 4xx, once each, with the status in the
  reason and the sim's body as the detail;
- /metrics lists the sink's breaker and /ready is 200 at the end.
"""
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid

from harness import PORT, Checks, Hub, consume, lines, log, produce, unique, wait_count, wait_until

c = Checks("http_sink")
bootstrap = f"127.0.0.1:{PORT}"
SRC = os.environ["LT_SOURCE_DIR"]
N = 2000


def sim_records(path):
    return [json.loads(l) for l in lines(path)]


def origin_id(topic, partition, offset):
    """hub_uuid_from_origin: SHA-256 of "topic/partition/offset" as a version-8 UUID."""
    md = bytearray(hashlib.sha256(f"{topic}/{partition}/{offset}".encode()).digest()[:16])
    md[6] = 0x80 | (md[6] & 0x0F)
    md[8] = 0x80 | (md[8] & 0x3F)
    return str(uuid.UUID(bytes=bytes(md)))



topic, results, name = unique("http.in"), unique("http.res"), unique("httpsink")
hub = Hub("", "http-sink")
sim_log, port_file = os.path.join(hub.dir, "sim.log"), os.path.join(hub.dir, "sim.port")
sim = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/sim/http_sim.py"), "--port-file", port_file,
                        "--log", sim_log, "--seed", "9", "--fail-rate", "0.2", "--fail-status", "503",
                        "--hang-rate", "0.01", "--hang-for", "1.5", "--reject-if", "REJECT-ME"])
try:
    for _ in range(100):
        if os.path.exists(port_file):
            break
        time.sleep(0.05)
    sim_port = int(open(port_file).read())
    hub.write_config(
        f"hub:\n  transport: kafka\n  instance: test\n"
        f"  kafka: {{ bootstrap: '{bootstrap}', session_timeout: 3s }}\n"
        f"  admin: {{ listen: '@ADMIN@' }}\n"
        f"connectors:\n"
        f"  - name: {name}\n    type: http\n    from: {topic}\n    result: {results}\n"
        f"    url: 'http://127.0.0.1:{sim_port}/dossiers/${{key}}'\n"
        f"    headers: {{ X-Agency: 'so-tttt' }}\n"
        f"    timeout: 500ms\n"
        f"    breaker: {{ failures: 5, open_for: 200ms }}\n"
        f"    errors: {{ retries: 1000, backoff: 10ms..200ms }}\n"
        f"    batch: {{ max_wait: 50ms }}\n")
    records = []
    for i in range(N):
        mark = "REJECT-ME" if i % 97 == 13 else "ok"
        records.append((f"HS-{i % 50:03d}", json.dumps({"n": i, "mark": mark}, separators=(",", ":"))))
    hub.start()
    hub.wait_ready()  # the hub creates its topics
    produce(bootstrap, topic, records)
    inputs = consume(bootstrap, topic)
    c.eq(len(inputs), N, "input records")

    def distinct_keys():
        return len({r["headers"].get("idempotency-key") for r in sim_records(sim_log) if r["path"].startswith("/dossiers/")})

    for k, target in enumerate((600, 1300)):
        wait_until(lambda: distinct_keys() >= target, 180, hub, f"{target} records at the sim")
        log(f"SIGKILL {k + 1} after {distinct_keys()} distinct keys at the sim")
        hub.kill()
        hub.start()
        hub.wait_ready()

    expected_rejects = {json.loads(v)["n"] for _, v in records if "REJECT-ME" in v}
    want_results = N - len(expected_rejects)
    res = wait_count(bootstrap, results, want_results, timeout=300, hub=hub)
    dlq = wait_count(bootstrap, f"{name}.dlq", len(expected_rejects), timeout=120, hub=hub)
    time.sleep(2)  # anything extra would show now
    res = consume(bootstrap, results)
    dlq = consume(bootstrap, f"{name}.dlq")
    seen = [r for r in sim_records(sim_log) if r["path"].startswith("/dossiers/")]
    log(f"sim: {len(seen)} calls, {sum(1 for r in seen if r['answer'] >= 500)} 5xx, "
        f"{sum(1 for r in seen if r.get('hang'))} held past the timeout; results {len(res)}, DLQ {len(dlq)}")

    # Every record reached the sim at least once.
    reached = {json.loads(r["body"])["n"] for r in seen}
    c.eq(sorted(set(range(N)) - reached)[:10], [], "records that never reached the sim")

    # The distinct Idempotency-Keys are the input lt.ids.
    want_ids = {origin_id(topic, r["partition"], r["offset"]) for r in inputs}
    got_ids = {r["headers"].get("idempotency-key") for r in seen}
    c.eq(len(got_ids), N, "distinct Idempotency-Keys at the sim")
    c.ok(got_ids == want_ids, f"Idempotency-Keys equal the input lt.ids "
                              f"(missing {len(want_ids - got_ids)}, unknown {len(got_ids - want_ids)})")
    by_id = {}
    for r in seen:
        by_id.setdefault(r["headers"].get("idempotency-key"), set()).add(r["body"])
    c.eq(sum(1 for bodies in by_id.values() if len(bodies) != 1), 0, "keys that came with different bodies")
    c.ok(all(r["headers"].get("x-agency") == "so-tttt" for r in seen), "configured header on every call")
    c.ok(all(r["path"] == f"/dossiers/HS-{json.loads(r['body'])['n'] % 50:03d}" for r in seen),
         "the URL carries each record's key")
    c.ok(sum(1 for r in seen if r["answer"] >= 500) > 0 and sum(1 for r in seen if r.get("hang")) > 0,
         "the sim failed and held calls")

    # Exactly one 2xx result per delivered record.
    parent_of = {hashlib.sha256(v.encode()).hexdigest(): (k, json.loads(v)["n"]) for k, v in records}
    parents = [r["headers"].get("lt.parent") for r in res]
    c.eq(len(res), want_results, "result records")
    c.eq(len(parents) - len(set(parents)), 0, "records with more than one result")
    c.eq({parent_of[p][1] for p in parents if p in parent_of}, set(range(N)) - expected_rejects,
         "records with a result")
    statuses = {json.loads(r["value"]).get("status") for r in res}
    c.eq(statuses, {200}, "result statuses")
    c.ok(all(parent_of.get(r["headers"].get("lt.parent"), ("?",))[0] == r["key"] for r in res),
         "results keyed like their input")

    # The DLQ holds exactly what the sim answered 4xx.
    answered_4xx = {json.loads(r["body"])["n"] for r in seen if 400 <= r["answer"] < 500}
    c.eq(answered_4xx, expected_rejects, "records the sim answered 4xx")
    dlq_ns = [json.loads(d["value"])["n"] for d in dlq]
    c.eq(sorted(dlq_ns), sorted(answered_4xx), "DLQ records (each once)")
    c.ok(all("answered HTTP 400" in d["headers"].get("lt.error.reason", "") for d in dlq),
         "DLQ reason names the status")
    c.ok(all(d["headers"].get("lt.error.stage") == "sink.http" for d in dlq), "DLQ stage is the sink")
    c.ok(all("refused: contains REJECT-ME" in d["headers"].get("lt.error.detail", "") for d in dlq),
         "DLQ detail holds the sim's answer")

    m = hub.metrics()
    c.ok(f'lienthong_breaker_state{{connector="{name}",endpoint="http://127.0.0.1:{sim_port}"}}' in m,
         "the breaker is in /metrics")
    c.eq(hub.http("/ready")[0], 200, "/ready at the end")
    rc, _ = hub.terminate()
    c.eq(rc, 0, "exit code after SIGTERM")
finally:
    if hub.alive():
        hub.kill()
    sim.terminate()
    sim.wait()
c.done()
