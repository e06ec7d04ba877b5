"""The `population` sink (QCVN 109 verification) against tests/sim/population_sim.py, which
wants OAuth2 client credentials and fails 20% of look-ups with 503 in the first round.

- 30 requests (match; names typed decomposed (NFD), in capitals, with extra spaces, dates as
  dd/mm/yyyy: still match; wrong name, wrong date, both: mismatch naming exactly those fields;
  unknown ids: not-found; a 9-digit CMND number; a malformed id: to the DLQ with the reason);
- the same 30 again: the same verdicts, answered from the cache (the sim saw each id once);
- /metrics: cache hits and misses, verdict counts, rate-limit waits (10 look-ups/s);
- the sim expires every token: the next look-ups fetch a new one and succeed.
Runs on Kafka (kafka.population) and on the embedded transport (embedded.population).
"""
import hashlib
import json
import os
import subprocess
import sys
import time
import unicodedata
import urllib.request

from harness import BIN, PORT, Checks, Hub, consume, log, produce, transport_section, unique, wait_count

c = Checks("population")
bootstrap = f"127.0.0.1:{PORT}"
SRC = os.environ["LT_SOURCE_DIR"]

topic, results, name = unique("citizen.verify"), unique("citizen.verified"), unique("population")
hub = Hub("", "population")
sim_log, port_file = os.path.join(hub.dir, "sim.log"), os.path.join(hub.dir, "sim.port")
sim = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/sim/population_sim.py"), "--port-file", port_file,
                        "--log", sim_log, "--generate", "40", "--client", "hub-lgsp:k3y"])


def ctl(path, obj=None):
    req = urllib.request.Request(f"http://127.0.0.1:{sim_port}{path}",
                                 data=json.dumps(obj).encode() if obj is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def full(p):
    return " ".join(x for x in (p["Ho"], p["ChuDem"], p["Ten"]) if x)


def ddmmyyyy(d):
    y, m, dd = d.split("-")
    return f"{dd}/{m}/{y}"


try:
    for _ in range(100):
        if os.path.exists(port_file):
            break
        time.sleep(0.05)
    sim_port = int(open(port_file).read())
    with open(os.path.join(hub.dir, "lgsp.secret"), "w") as f:
        f.write("k3y\n")
    hub.write_config(
        f"hub:\n{transport_section(bootstrap)}  instance: test\n  admin: {{ listen: '@ADMIN@' }}\n"
        f"connectors:\n"
        f"  - name: {name}\n    type: population\n    from: {topic}\n    result: {results}\n"
        f"    url: 'http://127.0.0.1:{sim_port}/dancu/congdan'\n    madonvi: 000.00.00.H22\n"
        f"    oauth2: {{ token_url: 'http://127.0.0.1:{sim_port}/token', client_id: hub-lgsp, "
        f"client_secret_file: lgsp.secret }}\n"
        f"    timeout: 3s\n    rate_limit: {{ per_second: 10, burst: 1 }}\n    cache: {{ ttl: 10m }}\n"
        f"    concurrency: 4\n    errors: {{ retries: 20, backoff: 10ms..200ms }}\n")
    people = ctl("/_sim/people")
    reqs, want = [], []  # (key, request), expected (result, mismatched)
    for i, p in enumerate(people[:30]):
        r = {"SoDinhDanh": p["SoDinhDanh"], "HoVaTen": full(p), "NgaySinh": p["NgaySinh"]}
        exp = ("match", None)
        if i == 10:
            r["HoVaTen"] = unicodedata.normalize("NFD", full(p))
        elif i == 11:
            r["HoVaTen"] = full(p).upper()
        elif i == 12:
            r["HoVaTen"] = "  " + "   ".join(full(p).split()) + " "
        elif i == 13:
            r["NgaySinh"] = ddmmyyyy(p["NgaySinh"])
        elif i in (14, 15, 16):
            r["HoVaTen"] = full(p) + " Xuân"
            exp = ("mismatch", ["HoVaTen"])
        elif i in (17, 18):
            r["NgaySinh"] = "1901-01-01"
            exp = ("mismatch", ["NgaySinh"])
        elif i == 19:
            r.update(HoVaTen="Lý Thường Kiệt", NgaySinh="1019-01-01" if False else "1900-02-02")
            exp = ("mismatch", ["HoVaTen", "NgaySinh"])
        elif i in (20, 21):
            r["SoDinhDanh"] = f"09999999{i:04d}"
            exp = ("not-found", None)
        elif i == 22:
            r["SoDinhDanh"] = p["SoCMND"]
        elif i == 23:
            r["SoDinhDanh"] = "12345"
            exp = ("dlq", None)
        reqs.append((r["SoDinhDanh"], r))
        want.append(exp)
    hub.start()
    hub.wait_ready()

    def play(round_no):
        recs = [(k, json.dumps(dict(r, round=round_no), ensure_ascii=False, separators=(",", ":"))) for k, r in reqs]
        produce(bootstrap, topic, recs)
        return recs

    def check_round(recs, round_no, res):
        by_parent = {r["headers"].get("lt.parent"): json.loads(r["value"]) for r in res}
        mine = {hashlib.sha256(v.encode()).hexdigest() for _, v in recs}
        by_parent = {k: v for k, v in by_parent.items() if k in mine}
        bad = []
        for (k, v), (verdict, fields) in zip(recs, want):
            if verdict == "dlq":
                continue
            got = by_parent.get(hashlib.sha256(v.encode()).hexdigest())
            if not got or got["result"] != verdict or got.get("mismatched") != fields or got["SoDinhDanh"] != k:
                bad.append((json.loads(v), got))
        c.eq(bad, [], f"round {round_no}: verdicts")
        return by_parent

    rec1 = play(1)
    n_ok = sum(1 for w in want if w[0] != "dlq")
    res = wait_count(bootstrap, results, n_ok, timeout=120, hub=hub)
    dlq = wait_count(bootstrap, f"{name}.dlq", 1, timeout=60, hub=hub)
    got1 = check_round(rec1, 1, res)
    c.ok(not any(g.get("cached") for g in got1.values()), "round 1: nothing from the cache")
    c.eq(len(dlq), 1, "the malformed request is in the DLQ")
    if dlq:
        c.ok("SoDinhDanh must be a 12-digit" in dlq[0]["headers"].get("lt.error.reason", ""), "DLQ reason names the field")
        c.eq(dlq[0]["headers"].get("lt.error.code"), "schema", "DLQ error code")
    log(f"sim after round 1: {ctl('/_sim/stats')}")

    rec2 = play(2)
    res = wait_count(bootstrap, results, 2 * n_ok, timeout=120, hub=hub)
    got2 = check_round(rec2, 2, res)
    c.ok(all(g.get("cached") for g in got2.values()), "round 2: every answer from the cache")
    st = ctl("/_sim/stats")
    c.eq(st["lookups"], n_ok, "the sim looked each id up once")
    m = hub.metrics()
    lbl = f'connector="{name}"'
    c.eq(m.get(f"lienthong_population_cache_hits_total{{{lbl}}}"), float(n_ok), "cache hits in /metrics")
    c.eq(m.get(f"lienthong_population_cache_misses_total{{{lbl}}}"), float(n_ok), "cache misses in /metrics")
    c.eq(m.get(f'lienthong_population_results_total{{{lbl},result="mismatch"}}'), 12.0, "mismatch results counted")
    c.eq(m.get(f'lienthong_population_results_total{{{lbl},result="not-found"}}'), 4.0, "not-found results counted")
    waits = m.get(f'lienthong_ratelimit_waits_total{{{lbl},endpoint="http://127.0.0.1:{sim_port}"}}', 0)
    log(f"rate-limit waits {waits}")
    c.ok(waits > 0, "rate limiting shows in /metrics")

    # The gateway expires every token and fails 30% of look-ups: new tokens, retries, no loss.
    issued = st["tokens_issued"]
    ctl("/_sim/expire", {})
    ctl("/_sim/config", {"fail_rate": 0.3})
    extra = [(f"0888888800{i:02d}", json.dumps({"SoDinhDanh": f"0888888800{i:02d}"})) for i in range(12)]
    produce(bootstrap, topic, extra)
    res = wait_count(bootstrap, results, 2 * n_ok + 12, timeout=120, hub=hub)
    c.eq(len(res), 2 * n_ok + 12, "results after the tokens expired, under failures")
    st = ctl("/_sim/stats")
    log(f"sim at the end: {st}")
    c.ok(st["tokens_issued"] > issued, "a new token was fetched")
    c.ok(st["by_status"].get("503", 0) > 0 and st["by_status"].get("401", 0) > 0, "the sim failed and refused calls")
    c.ok(hub.metrics().get(f'lienthong_route_retried_total{{route="{name}"}}', 0) > 0, "retries counted")
    # Every result keeps its documented contract.
    rdir = os.path.join(hub.dir, "results")
    os.makedirs(rdir, exist_ok=True)
    files = []
    for i, r in enumerate(res):
        files.append(os.path.join(rdir, f"{i}.json"))
        with open(files[-1], "w") as f:
            f.write(r["value"])
    v = subprocess.run([BIN, "validate", "-q", os.path.join(SRC, "schemas/citizen/verify-result.schema.json")] + files,
                       capture_output=True, text=True)
    c.eq(v.returncode, 0, f"results valid against schemas/citizen/verify-result.schema.json {v.stdout[-300:]}")
    calls = [json.loads(l) for l in open(sim_log) if '"/dancu/congdan"' in l]
    c.ok(all(x["query"].get("MaDonVi") == "000.00.00.H22" for x in calls), "MaDonVi on every look-up")
    c.eq(hub.http("/ready")[0], 200, "/ready at the end")
    rc, _ = hub.terminate()
    c.eq(rc, 0, "exit code after SIGTERM")
finally:
    if hub.alive():
        hub.kill()
    sim.terminate()
    sim.wait()
c.done()
