"""The `http-listen` source on a real broker, SIGKILLed twice under load.

2,000 JSON POSTs from 16 client threads to an http-listen with an HMAC secret: most signed and
well-formed, some with a bad signature, some over max_body (half with Content-Length, half
chunked), some malformed. The hub is SIGKILLed twice during the run and restarted; a request
that gets no answer (the hub was down) is sent again as a new request. Asserted, reading the
topic with kcat (read_committed):
- every request answered 202 has its record: the same lt.id as the answer, the exact body bytes,
  keyed by the body's id, with lt.source and a traceparent;
- no record exists for a request answered anything else;
- every rejected request got the status and error its kind calls for (401 signature mismatch,
  413 body too large, 400 malformed JSON; a well-formed one only 202 or 503 with Retry-After).
Two connectors share the address, so after each restart one listens before the other has
registered its path: a request there is answered 503 "starting" (retried), never 404.
The second connector checks Idempotency-Key (a finding of fuzz.http_listen):
two keys that differ only after their first 600 bytes are two events with two lt.ids (they were
cut, so one lt.id, and downstream dropped one as a duplicate); the same key sent again keeps its.
"""
import hashlib
import hmac
import http.client
import json
import random
import threading
import time

from harness import PORT, Checks, Hub, consume, free_port, log, rng, unique

c = Checks("http_listen")
bootstrap = f"127.0.0.1:{PORT}"
N, THREADS, MAX_BODY = 2000, 16, 2048
SECRET = b"integration-secret-0123456789"

rand = rng()
topic, name, port = unique("hl.in"), unique("hook"), free_port()
idem_topic, idem_name = unique("hl.idem"), unique("idem")
hub = Hub("", "http-listen")
with open(f"{hub.dir}/secret", "wb") as f:
    f.write(SECRET + b"\n")
hub.write_config(
    f"hub:\n  transport: kafka\n  instance: test\n"
    f"  kafka: {{ bootstrap: '{bootstrap}', session_timeout: 3s }}\n"
    f"  admin: {{ listen: '@ADMIN@' }}\n"
    f"connectors:\n"
    f"  - name: {name}\n    type: http-listen\n    topic: {topic}\n    listen: '127.0.0.1:{port}'\n"
    f"    path: /hooks/dossier\n    key: $.id\n    max_body: {MAX_BODY}\n"
    f"    auth: {{ hmac_sha256_secret_file: secret }}\n"
    f"  - name: {idem_name}\n    type: http-listen\n    topic: {idem_topic}\n    listen: '127.0.0.1:{port}'\n"
    f"    path: /hooks/idem\n")

# The kind of each request, drawn once: good, badsig, big (Content-Length), bigchunked, malformed.
kinds = [rand.choices(["good", "badsig", "big", "bigchunked", "malformed"], [80, 6, 4, 4, 6])[0] for _ in range(N)]


def body_for(i, attempt, kind):
    doc = {"id": f"HS-{i:05d}", "attempt": attempt, "ten": "Hồ sơ đăng ký", "seq": i}
    if kind in ("big", "bigchunked"):
        doc["pad"] = "x" * (MAX_BODY + 100)
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    if kind == "malformed":
        text = text[:-1] + ",}"
    return text.encode()


def sign(body, kind):
    mac = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if kind == "badsig":
        mac = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    return "sha256=" + mac


def post(body, kind):
    """(status, parsed JSON answer, headers) or None when nothing was answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "X-Signature-256": sign(body, kind)}
    try:
        if kind == "bigchunked":
            conn.request("POST", "/hooks/dossier", body=iter([body[:1000], body[1000:]]), headers=headers,
                         encode_chunked=True)
        else:
            conn.request("POST", "/hooks/dossier", body=body, headers=headers)
        r = conn.getresponse()
        text = r.read()
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {"unparsed": text.decode(errors="replace")}
        return r.status, answer, dict(r.getheaders())
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


results = []  # (index, kind, body, status, answer, headers)
unanswered = []  # bodies sent whose answer never came (the hub was killed)
latencies = []  # seconds from sending to a 202, which waits for the commit
lock = threading.Lock()
done = [0]
next_i = [0]


def client():
    while True:
        with lock:
            i = next_i[0]
            next_i[0] += 1
        if i >= N:
            return
        kind = kinds[i]
        for attempt in range(200):
            body = body_for(i, attempt, kind)
            t_req = time.time()
            got = post(body, kind)
            took = time.time() - t_req
            if got is None:
                with lock:
                    unanswered.append(body)
                time.sleep(0.2)
                continue
            status, answer, headers = got
            with lock:
                results.append((i, kind, body, status, answer, headers))
                if status == 202:
                    latencies.append(took)
            if status == 503:  # the transport could not take it: a new request later
                time.sleep(0.2)
                continue
            break
        with lock:
            done[0] += 1


hub.start()
hub.wait_ready()
threads = [threading.Thread(target=client) for _ in range(THREADS)]
t0 = time.time()
for t in threads:
    t.start()
for kill_at in (N // 3, 2 * N // 3):
    while done[0] < kill_at and any(t.is_alive() for t in threads):
        time.sleep(0.05)
    log(f"SIGKILL after {done[0]} requests answered")
    hub.kill()
    time.sleep(0.5)
    hub.start()
    hub.wait_ready()
for t in threads:
    t.join()
elapsed = time.time() - t0
status_count = {}
for r in results:
    status_count[r[3]] = status_count.get(r[3], 0) + 1
log(f"{N} requests in {elapsed:.1f}s: answers {sorted(status_count.items())}, {len(unanswered)} unanswered")
latencies.sort()
if latencies:
    log(f"202 latency: p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
c.eq(hub.starts, 3, "the hub was started three times (SIGKILLed twice)")
c.eq(done[0], N, "every request was answered in the end")
metrics = hub.metrics()
log("last instance: {:.0f} records in {:.0f} commits".format(
    metrics.get(f'lienthong_connector_records_total{{connector="{name}",kind="source"}}', 0),
    metrics.get(f'lienthong_connector_commits_total{{connector="{name}"}}', 0)))


def post_idem(key, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/hooks/idem", body=body,
                     headers={"Content-Type": "application/json", "Idempotency-Key": key})
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


prefix = "k" * 700
idem_answers = [post_idem(prefix + "-event-1", b'{"n":1}'), post_idem(prefix + "-event-2", b'{"n":2}'),
                post_idem(prefix + "-event-1", b'{"n":1}')]
c.eq([a[0] for a in idem_answers], [202, 202, 202], "Idempotency-Key requests accepted")
ids = [a[1].get("id") for a in idem_answers]
c.ok(ids[0] != ids[1], f"two long Idempotency-Keys differing at their end get two lt.ids ({ids[0]}, {ids[1]})")
c.eq(ids[2], ids[0], "the same Idempotency-Key sent again gets the same lt.id")
hub.terminate()

idem_records = consume(bootstrap, idem_topic)
c.eq(sorted(r["headers"].get("lt.id") for r in idem_records), sorted(ids),
     "the Idempotency-Key records carry the lt.ids answered")

records = consume(bootstrap, topic)
by_value = {}
for r in records:
    by_value.setdefault(r["value"], []).append(r)
log(f"{len(records)} records in {topic}")

accepted = [r for r in results if r[3] == 202]
c.ok(len(accepted) > N * 0.7, f"most requests accepted ({len(accepted)})")
missing = wrong_id = wrong_key = wrong_headers = 0
for i, kind, body, status, answer, headers in accepted:
    recs = by_value.get(body.decode(), [])
    if len(recs) != 1:
        missing += 1
        continue
    rec = recs[0]
    wrong_id += rec["headers"].get("lt.id") != answer.get("id")
    wrong_key += rec["key"] != f"HS-{i:05d}"
    wrong_headers += (rec["headers"].get("lt.source") != name or len(rec["headers"].get("traceparent", "")) != 55
                      or rec["headers"].get("content-type") != "application/json")
c.eq(missing, 0, "202 answers without exactly one record of their body")
c.eq(wrong_id, 0, "records whose lt.id is not the one answered")
c.eq(wrong_key, 0, "records not keyed by the body's id")
c.eq(wrong_headers, 0, "records without lt.source, traceparent or content-type")
c.eq(sum(1 for r in accepted if r[1] != "good"), 0, "202 answers to a request that should be refused")

refused = [r for r in results if r[3] != 202]
c.eq(sum(1 for r in refused if r[2].decode() in by_value), 0, "records of requests not answered 202")
want = {"badsig": (401, "signature mismatch"), "big": (413, "body too large"),
        "bigchunked": (413, "body too large"), "malformed": (400, "malformed JSON")}
wrong = []
for i, kind, body, status, answer, headers in refused:
    if kind == "good":  # 503: the transport, a stop, or the path not served yet after a restart
        ok = status == 503 and answer.get("error") in ("unavailable", "stopping", "starting") and headers.get("Retry-After")
    else:
        ok = (status, answer.get("error")) == want[kind] and bool(answer.get("detail"))
    if not ok:
        wrong.append((kind, status, answer))
c.eq(wrong[:5], [], "rejected requests with the wrong status or body")
for kind in ("badsig", "big", "bigchunked", "malformed"):
    c.ok(any(r[1] == kind for r in refused), f"some {kind} requests were sent and refused")
c.ok(all(r[4].get("detail") for r in refused), "every error answer has a detail")
# Unanswered requests may or may not have their record; none of them twice.
c.eq(sum(1 for b in unanswered if len(by_value.get(b.decode(), [])) > 1), 0, "unanswered requests written twice")
c.eq(len(records), len(accepted) + sum(1 for b in unanswered if b.decode() in by_value),
     "records are the accepted requests and some of the unanswered ones, nothing else")
c.ok(metrics.get("lienthong_http_requests_202_total", 0) > 0, "/metrics counts 202 answers")
c.done()
