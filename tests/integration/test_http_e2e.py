"""(k) Webhook in, REST out, end to end under faults (issue 9's acceptance test).

5,000 JSON events POSTed by 16 client threads to `http-listen` (HMAC-signed; some with a bad
signature, some oversized, some malformed, some valid JSON that fails the route's schema, some
the endpoint refuses), routed through `validate`, and sent by the `http` sink to tests/sim/
http_sim.py, which fails 20% of calls with 5xx and holds some past the sink's timeout. The hub is
SIGKILLed twice and (on kafka) the broker is stopped once during the run. Asserted:
- every request answered 202 that passes the schema reaches the sim at least once, and the set
  of distinct Idempotency-Keys the sim saw equals the set of those 202 ids;
- every refused request got the status and error its kind calls for (401, 413, 400);
- the route's DLQ holds exactly the 202 events that fail the schema, the sink's DLQ exactly the
  ones the endpoint refused (422), and the result topic a result for every delivered event.
Callers name each event with an Idempotency-Key and send it again after a lost answer, so an
event the hub committed just before it was killed keeps its id (http-listen derives lt.id from
the key) and the endpoint sees one key per event.
Runs on kafka and, with LT_TEST_TRANSPORT=embedded, on the embedded transport.
"""
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import sys
import threading
import time

from harness import PORT, SRC, TRANSPORT, Broker, Checks, Hub, consume, free_port, log, rng, transport_section, unique

c = Checks("http-e2e")
bootstrap = f"127.0.0.1:{PORT}"
N, THREADS, MAX_BODY = 5000, 16, 4096
SECRET = b"e2e-secret-0123456789abcdef"
rand = rng()

# ---------------------------------------------------------------- the endpoint (simulator)
hub = Hub("", "http-e2e")
sim_log, sim_port_file = os.path.join(hub.dir, "sim.log"), os.path.join(hub.dir, "sim.port")
sim = subprocess.Popen([sys.executable, os.path.join(SRC, "tests", "sim", "http_sim.py"), "--port-file", sim_port_file,
                        "--log", sim_log, "--seed", str(rand.randrange(1 << 30)), "--fail-rate", "0.2",
                        "--fail-status", "503", "--hang-rate", "0.005", "--hang-for", "2", "--reject-if", "REFUSE-ME",
                        "--reject-status", "422"], stdout=subprocess.DEVNULL, stderr=open(sim_log + ".err", "w"))
for _ in range(100):
    if os.path.exists(sim_port_file) and open(sim_port_file).read().strip():
        break
    time.sleep(0.1)
sim_port = int(open(sim_port_file).read())

# ---------------------------------------------------------------- the hub
port = free_port()
topic_in, topic_ok, results = unique("e2e.in"), unique("e2e.ok"), unique("e2e.res")
route, sink = unique("e2e-route"), unique("e2e-sink")
with open(os.path.join(hub.dir, "secret"), "wb") as f:
    f.write(SECRET + b"\n")
with open(os.path.join(hub.dir, "event.schema.json"), "w") as f:
    json.dump({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
               "required": ["id", "seq", "ten"],
               "properties": {"id": {"type": "string"}, "seq": {"type": "integer"}, "ten": {"type": "string"}}}, f)
hub.write_config(
    f"hub:\n{transport_section()}  instance: e2e\n  admin: {{ listen: '@ADMIN@' }}\n"
    "connectors:\n"
    f"  - name: hook\n    type: http-listen\n    topic: {topic_in}\n    listen: '127.0.0.1:{port}'\n"
    f"    path: /events\n    key: $.id\n    max_body: {MAX_BODY}\n    auth: {{ hmac_sha256_secret_file: secret }}\n"
    f"  - name: {sink}\n    type: http\n    from: {topic_ok}\n    result: {results}\n"
    f"    url: 'http://127.0.0.1:{sim_port}/api/events/${{key}}'\n    timeout: 1s\n"
    "    breaker: { failures: 20, open_for: 500ms }\n"
    "    errors: { retries: 30, backoff: 20ms..500ms }\n    batch: { max_wait: 10ms }\n"
    "routes:\n"
    f"  - name: {route}\n    from: {topic_in}\n    to: {topic_ok}\n    steps:\n      - validate: event.schema.json\n"
    "    batch: { max_wait: 10ms }\n")
hub.start()
hub.wait_ready()

# ---------------------------------------------------------------- the callers
kinds = [rand.choices(["good", "badsig", "big", "malformed", "invalid", "refused"], [82, 4, 4, 4, 3, 3])[0]
         for _ in range(N)]


def body_for(i, kind):
    doc = {"id": f"EV-{i:05d}", "seq": i, "ten": "Hồ sơ đăng ký kinh doanh"}
    if kind == "big":
        doc["pad"] = "x" * (MAX_BODY + 10)
    if kind == "invalid":
        doc["seq"] = "not a number"
    if kind == "refused":
        doc["ten"] = "REFUSE-ME"
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return (text[:-1] + ",}" if kind == "malformed" else text).encode()


def post(body, kind, idem):
    mac = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if kind == "badsig":
        mac = ("0" if mac[0] != "0" else "1") + mac[1:]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/events", body=body,
                     headers={"Content-Type": "application/json", "X-Signature-256": "sha256=" + mac,
                              "Idempotency-Key": idem})
        r = conn.getresponse()
        text = r.read()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, {"unparsed": text.decode(errors="replace")}
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


answers = [None] * N
progress = [0]
lock = threading.Lock()


def caller(start):
    for i in range(start, N, THREADS):
        body = body_for(i, kinds[i])
        for _ in range(600):  # no answer (the hub is down) or 503: send again
            a = post(body, kinds[i], f"EV-{i:05d}")  # the same key when it is sent again
            if a is not None and a[0] != 503:
                break
            time.sleep(0.1)
        answers[i] = a
        with lock:
            progress[0] += 1


threads = [threading.Thread(target=caller, args=(t,), daemon=True) for t in range(THREADS)]
for t in threads:
    t.start()


def at_progress(fraction):
    while progress[0] < N * fraction and any(t.is_alive() for t in threads):
        time.sleep(0.05)


broker = Broker() if TRANSPORT == "kafka" else None
at_progress(0.25)
log(f"SIGKILL 1 at {progress[0]} answered")
hub.kill()
hub.start()
if broker:
    at_progress(0.45)
    log(f"broker stopped at {progress[0]} answered")
    broker.stop()
    time.sleep(8)
    broker.start()
    log("broker started again")
at_progress(0.65)
log(f"SIGKILL 2 at {progress[0]} answered")
hub.kill()
hub.start()
for t in threads:
    t.join()
log("every request answered")

# ---------------------------------------------------------------- what each caller was told
want_status = {"good": 202, "invalid": 202, "refused": 202, "badsig": 401, "big": 413, "malformed": 400}
wrong = [(i, kinds[i], answers[i] and answers[i][0]) for i in range(N) if not answers[i]
         or answers[i][0] != want_status[kinds[i]]]
c.eq(wrong[:5], [], "every request got the status its kind calls for")
c.ok(all("error" in answers[i][1] for i in range(N) if answers[i] and answers[i][0] >= 400),
     "every refusal has a JSON error body")
ids = {kinds[i]: set() for i in range(N)}
for i in range(N):
    if answers[i] and answers[i][0] == 202:
        ids[kinds[i]].add(answers[i][1].get("id"))
expected_keys = ids.get("good", set()) | ids.get("refused", set())


def sim_requests():
    out = []
    with open(sim_log) as f:
        for line in f:
            if line.endswith("\n"):
                out.append(json.loads(line))
    return out


deadline = time.time() + 600
seen = set()
while time.time() < deadline:
    seen = {r["headers"].get("idempotency-key") for r in sim_requests() if r["path"].startswith("/api/events/")}
    if expected_keys <= seen:
        break
    time.sleep(1)
c.eq(len(expected_keys - seen), 0, "202 events that never reached the endpoint")
c.eq(seen, expected_keys, "the distinct Idempotency-Keys the endpoint saw are exactly the accepted events' ids")
reqs = sim_requests()
c.ok(all(r["path"] == f"/api/events/EV-{json.loads(r['body'])['seq']:05d}" for r in reqs
         if r["path"].startswith("/api/events/") and "body" in r), "each call went to its event's URL")
log(f"endpoint calls: {len(reqs)} for {len(expected_keys)} events "
    f"({sum(1 for r in reqs if r['answer'] >= 500)} answered 5xx, {sum(1 for r in reqs if r.get('hang'))} held)")

time.sleep(2)
route_dlq = consume(bootstrap, f"{route}.dlq")
c.eq({json.loads(r["value"])["id"] for r in route_dlq},
     {f"EV-{i:05d}" for i in range(N) if kinds[i] == "invalid"}, "the route's DLQ: exactly the invalid events")
sink_dlq = consume(bootstrap, f"{sink}.dlq")
c.eq({json.loads(r["value"])["id"] for r in sink_dlq},
     {f"EV-{i:05d}" for i in range(N) if kinds[i] == "refused"}, "the sink's DLQ: exactly the refused events")
c.ok(all(r["headers"].get("lt.error.stage") == "sink.http" for r in sink_dlq), "the sink's DLQ names the stage")
res = consume(bootstrap, results)
good = {f"EV-{i:05d}" for i in range(N) if kinds[i] == "good"}
c.eq({r["key"] for r in res}, good, "a result for every delivered event, keyed by the event")
log(f"results: {len(res)} for {len(good)} events (an event sent again after a lost answer is delivered "
    f"again under the same Idempotency-Key)")
again = post(body_for(1, kinds[1]), kinds[1], "EV-00001")
if kinds[1] in ("good", "invalid", "refused"):
    c.eq(again and again[1].get("id"), answers[1][1].get("id"), "an event sent again gets the same id")
rc, _ = hub.terminate()
c.eq(rc, 0, "exit code after SIGTERM")
sim.terminate()
c.done()
