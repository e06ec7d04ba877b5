"""VNPost on a real broker: the `vnpost` sink and the `vnpost-tracking` source against
tests/sim/vnpost_sim.py, with the tracking mapped to one-stop dossier events by a route.

Phase 1 (LGSP variant, OAuth2, the sim failing 10% of calls with 503, holding 2% past the
timeout, repeating tracking entries in 30% of its pages, answering 5% of tracking calls with an
HTML page and sending an entry without its id in others; every token expired once):
- 100 result-delivery orders are posted with the hub SIGKILLed half-way: the sim holds 100
  orders, each created exactly once (a create sent again after the crash is answered 409 and
  recorded as `exists`), and the result topic holds one result per request;
- three orders are cancelled while on the way: the sim marks them cancelled and stops them;
  a cancel of an unknown order and a request that breaks schemas/vnpost/request.schema.json go
  to the sink's DLQ with their reasons;
- tracking runs with the hub SIGKILLed again: per dossier, the dossier events on the one-stop
  topic carry exactly the sim's status codes, once each and in the sim's order, and the last
  event names the final outcome (delivered: status "returned" and note "delivered"; failed,
  returned, cancelled in note).
Phase 2 (direct variant): a dossier collection order (sender = citizen, receiver = agency),
a price request answered with the price, and their tracking reaching the one-stop topic.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

from harness import PORT, Checks, Hub, transport_section, consume, lines, log, produce, unique, wait_count, wait_until

c = Checks("vnpost")
bootstrap = f"127.0.0.1:{PORT}"
SRC = os.environ["LT_SOURCE_DIR"]
N = 100
AGENCY = ("{ name: 'Sở Tư pháp tỉnh Hà Nam', address: 'Phủ Lý, Hà Nam', tel: '02263852701', "
          "province: 35, district: 3501, email: 'stp@hanam.gov.vn' }")


def dossier(i):
    return f"000.00.01.H22-261206-{i:04d}"


def citizen(i):
    return {"name": f"Nguyễn Văn Công Dân {i}", "address": f"Số {i} Lê Lợi, Phủ Lý", "tel": f"09{i:08d}",
            "province": 35 if i % 3 else 1, "district": 3501 if i % 3 else 101, "email": f"cd{i}@example.vn"}


class VnpostSim:
    def __init__(self, directory, variant, *extra):
        self.log_path = os.path.join(directory, f"vnpost-{variant}.log")
        port_file = os.path.join(directory, f"vnpost-{variant}.port")
        self.proc = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/sim/vnpost_sim.py"), "--port-file",
                                      port_file, "--log", self.log_path, "--variant", variant, "--client",
                                      "hub-client:s3cret", "--customer-code", "HNM01", *extra])
        for _ in range(200):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        self.port = int(open(port_file).read())

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return json.loads(r.read())

    def post(self, path, obj):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(obj).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def records(self):
        return [json.loads(l) for l in lines(self.log_path)]

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def config(hub, sim, variant, req, res, track, status, tag):
    secret = os.path.join(hub.dir, "vnpost.secret")
    with open(secret, "w") as f:
        f.write("s3cret\n")
    url = f"http://127.0.0.1:{sim.port}/vnpost" if variant == "lgsp" else f"http://127.0.0.1:{sim.port}/api"
    api = (f"    variant: {variant}\n    url: '{url}'\n"
           f"    oauth2: {{ token_url: 'http://127.0.0.1:{sim.port}/token', client_id: hub-client, "
           f"client_secret_file: '{secret}' }}\n"
           f"    timeout: 1s\n    breaker_failures: 5\n    breaker_open_for: 200ms\n")
    return (f"hub:\n{transport_section(bootstrap)}  instance: test\n"
            f"  admin: {{ listen: '@ADMIN@' }}\n"
            f"connectors:\n"
            f"  - name: post-out-{tag}\n    type: vnpost\n    from: {req}\n    result: {res}\n{api}"
            f"    customer_code: HNM01\n    agency: {AGENCY}\n"
            f"    steps:\n      - validate: '{SRC}/schemas/vnpost/request.schema.json'\n"
            f"    errors: {{ retries: 1000, backoff: 10ms..200ms }}\n"
            f"    batch: {{ max_wait: 50ms }}\n"
            f"  - name: post-track-{tag}\n    type: vnpost-tracking\n    topic: {track}\n    poll_interval: 200ms\n"
            f"{api}    page_size: 25\n"
            f"routes:\n  - name: tracking-to-onestop-{tag}\n    from: {track}\n    to: {status}\n    steps:\n"
            f"      - validate: '{SRC}/schemas/vnpost/tracking-item.schema.json'\n"
            f"      - map: '{SRC}/mappings/vnpost/tracking-to-status.yaml'\n"
            f"      - validate: '{SRC}/schemas/onestop/dossier-status.schema.json'\n"
            f"    errors: {{ retries: 3, backoff: 10ms..100ms, dlq: tracking-to-onestop-{tag}.dlq }}\n"
            f"    batch: {{ max_wait: 50ms }}\n")


def events_by_dossier(records):
    out = {}
    for r in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        ev = json.loads(r["value"])
        out.setdefault(ev["dossierCode"], []).append(ev)
    return out


OUTCOME = {14: "delivered", 15: "failed", 17: "returned", 22: "cancelled"}

# ---------------------------------------------------------------------------------------------
# Phase 1: LGSP variant, faults, two SIGKILLs.
tag = unique("p1")
req, res, track, status = (f"{tag}.{x}" for x in ("postal.request", "postal.result", "vnpost.tracking",
                                                   "onestop.dossier.status"))
hub = Hub("", "vnpost")
sim = VnpostSim(hub.dir, "lgsp", "--hold", "--seed", "5", "--fail-rate", "0.1", "--slow-rate", "0.02",
                "--slow-for", "1.5", "--dup-rate", "0.3", "--garbage-rate", "0.05", "--no-id-rate", "0.3", "--advance-every", "1.5")
try:
    hub.write_config(config(hub, sim, "lgsp", req, res, track, status, tag))
    hub.start()
    hub.wait_ready()
    creates = [(dossier(i), json.dumps({"action": "create", "direction": "delivery", "dossierCode": dossier(i),
                                        "citizen": citizen(i), "codAmount": 0,
                                        "description": f"Trả kết quả hồ sơ {dossier(i)}"}, ensure_ascii=False))
               for i in range(1, N + 1)]
    produce(bootstrap, req, creates)
    wait_until(lambda: sim.get("/_sim/stats")["orders"] >= N // 2, 180, hub, "half the orders at the sim")
    log(f"SIGKILL 1 with {sim.get('/_sim/stats')['orders']} orders at the sim")
    hub.kill()
    hub.start()
    hub.wait_ready()
    c.ok(wait_until(lambda: sim.get("/_sim/stats")["orders"] >= N, 180, hub, "every order at the sim"),
         "every order reached the sim")
    sim.post("/_sim/expire", {})  # the next calls meet an expired token
    cancelled = [dossier(1), dossier(2), dossier(4)]
    bad = [(dossier(999), json.dumps({"action": "cancel", "dossierCode": dossier(999)})),
           (dossier(5), json.dumps({"action": "create", "direction": "delivery", "dossierCode": dossier(5),
                                    "citizen": dict(citizen(5), tel="not-a-number")}, ensure_ascii=False))]
    price = [(dossier(500), json.dumps({"action": "price", "direction": "collection", "citizen": citizen(3),
                                         "weight": 300}, ensure_ascii=False))]
    produce(bootstrap, req, [(d, json.dumps({"action": "cancel", "dossierCode": d})) for d in cancelled] + bad + price)
    c.ok(wait_until(lambda: sum(o["cancelled"] for o in sim.get("/_sim/orders").values()) >= 3, 120, hub,
                    "three cancels at the sim"), "the cancels reached the sim")
    sim.post("/_sim/config", {"hold": False})

    def done():
        orders = sim.get("/_sim/orders")
        return all(o["cancelled"] or o["step"] >= len(o["plan"]) for o in orders.values())

    def total_entries():
        return sum(len(o["entries"]) for o in sim.get("/_sim/orders").values())

    # Killed while tracking flows: plans have 5 to 7 entries, so about half of them are out by
    # 250 entries at the sim (the hub polls every 200 ms, the sim adds a round every 1.5 s).
    wait_until(lambda: sim.get("/_sim/stats")["entries"] >= 250, 180, hub, "half the tracking at the sim")
    log(f"SIGKILL 2 with {len(consume(bootstrap, status))} of {total_entries()} entries through")
    hub.kill()
    hub.start()
    hub.wait_ready()
    c.ok(wait_until(done, 180, hub, "every order finished at the sim"), "every order finished at the sim")
    want_total = total_entries()
    out = wait_count(bootstrap, status, want_total, timeout=180, hub=hub)
    wait_count(bootstrap, res, N + 4, timeout=120, hub=hub)
    wait_count(bootstrap, f"post-out-{tag}.dlq", 2, timeout=120, hub=hub)
    time.sleep(2)  # anything extra would show now
    out = consume(bootstrap, status)
    results = consume(bootstrap, res)
    dlq = consume(bootstrap, f"post-out-{tag}.dlq")
    orders = sim.get("/_sim/orders")
    recs = sim.records()
    log(f"sim: {len(recs)} calls, {sum(1 for r in recs if r['answer'] >= 500)} 5xx, "
        f"{sum(1 for r in recs if r.get('slow'))} slow, {sum(1 for r in recs if r.get('token') == 'expired')} "
        f"expired-token calls, {sum(1 for r in recs if r.get('outcome') == 'duplicated')} pages with repeats, "
        f"{sum(1 for r in recs if r.get('outcome') == 'duplicate')} creates answered 409, "
        f"{sum(1 for r in recs if r.get('outcome') in ('garbage', 'no-id'))} odd pages; "
        f"{len(out)} dossier events, {len(results)} results, {len(dlq)} in the DLQ")

    # Orders: created once each.
    c.eq(sorted(orders), [dossier(i) for i in range(1, N + 1)], "orders at the sim")
    created = [json.loads(r["body"])["OrderNumber"] for r in recs
               if r.get("service") == "create" and r.get("outcome") == "created"]
    c.eq(len(created), N, "orders created")
    c.eq(len(set(created)), N, "orders created once each")
    o1 = orders[dossier(7)]["order"]
    c.eq((o1["SenderName"], o1["SenderProvince"], o1["ReceiverName"], o1["ReceiverTel"], o1["CustomerCode"]),
         ("Sở Tư pháp tỉnh Hà Nam", 35, "Nguyễn Văn Công Dân 7", "0900000007", "HNM01"),
         "a result delivery goes from the agency to the citizen")
    by_action = {}
    for r in results:
        v = json.loads(r["value"])
        by_action.setdefault(v["action"], []).append((r["key"], v["outcome"]))
    create_keys = [k for k, _ in by_action.get("create", [])]
    c.eq(sorted(create_keys), [dossier(i) for i in range(1, N + 1)], "one create result per request")
    c.ok({o for _, o in by_action.get("create", [])} <= {"created", "exists"}, "create outcomes")
    # A cancel VNPost performed but whose answer the hub did not get (held past the timeout) is
    # sent again and answered 409: already-cancelled.
    c.eq(sorted(k for k, _ in by_action.get("cancel", [])), sorted(cancelled), "cancel results")
    c.ok({o for _, o in by_action.get("cancel", [])} <= {"cancelled", "already-cancelled"}, "cancel outcomes")
    c.ok(all(r["headers"].get("lt.type") == "vnpost.order.result" for r in results), "result lt.type")
    c.eq([(k, o) for k, o in by_action.get("price", [])], [(dossier(500), "priced")], "price result")
    c.eq([json.loads(r["value"]).get("price") for r in results if r["key"] == dossier(500)], [25000],
         "the price of 300 g from another province")
    asked = [json.loads(r["body"]) for r in recs if r.get("service") == "price" and r["answer"] == 200]
    c.ok(asked and all(a["sender"] == {"provCode": 1, "distCode": 101} and
                       a["receiver"] == {"provCode": 35, "distCode": 3501} and a["mainSrv"] == "HCC" for a in asked),
         f"a collection's price goes from the citizen to the agency: {asked[:1]}")

    # Cancels honoured; bad requests in the DLQ.
    c.eq(sorted(k for k, o in orders.items() if o["cancelled"]), sorted(cancelled), "cancelled orders at the sim")
    c.ok(all(orders[d]["entries"][-1][1] == 22 for d in cancelled), "a cancelled order's last entry is 22")
    reasons = {d["key"]: d["headers"].get("lt.error.reason", "") for d in dlq}
    c.eq(sorted(reasons), sorted([dossier(999), dossier(5)]), "DLQ records")
    c.ok("HTTP 404" in reasons.get(dossier(999), ""), f"unknown order: reason {reasons.get(dossier(999))!r}")
    c.ok("/citizen/tel" in reasons.get(dossier(5), ""), f"bad request: reason {reasons.get(dossier(5))!r}")

    # Tracking: every entry once, in order, per dossier; final outcomes.
    c.eq(len(out), want_total, "dossier events on the one-stop topic")
    ev = events_by_dossier(out)
    wrong_seq = [d for d, o in orders.items() if [e["postal"]["statusCode"] for e in ev.get(d, [])] !=
                 [code for _, code in o["entries"]]]
    c.eq(wrong_seq[:5], [], "dossiers whose events differ from the sim's tracking (order, repeats, gaps)")
    cursors = [e["postal"]["cursor"] for es in ev.values() for e in es if "cursor" in e["postal"]]
    c.eq(len(cursors) - len(set(cursors)), 0, "tracking entries written twice")
    finals = {}
    for d, o in orders.items():
        want = "cancelled" if o["cancelled"] else o["plan_name"]
        last = ev.get(d, [{}])[-1]
        finals[want] = finals.get(want, 0) + 1
        c.ok(last.get("note") == want, f"{d}: final note {last.get('note')!r}, want {want!r}")
        if want == "delivered":
            c.ok(last.get("status") == "returned", f"{d}: a delivered result is status returned")
    c.ok(finals.get("delivered", 0) > 50 and finals.get("failed", 0) > 0 and finals.get("returned", 0) > 0
         and finals.get("cancelled", 0) == 3, f"every final state occurred: {finals}")
    c.ok(all(r["key"] == json.loads(r["value"])["dossierCode"] for r in out), "events keyed by dossier code")
    c.eq(len(consume(bootstrap, f"tracking-to-onestop-{tag}.dlq")), 0, "tracking records in the route's DLQ")

    # The faults happened.
    c.ok(sum(1 for r in recs if r["answer"] >= 500) > 0, "the sim answered 5xx")
    c.ok(sum(1 for r in recs if r.get("outcome") == "duplicated") > 0, "the sim repeated tracking entries")
    c.ok(sum(1 for r in recs if r.get("outcome") == "garbage") > 0, "the sim answered HTML instead of a page")
    c.ok(sum(1 for r in recs if r.get("outcome") == "no-id") > 0, "the sim sent entries without their id")
    c.ok(sum(1 for r in recs if r.get("slow")) > 0, "the sim held calls past the timeout")
    c.ok(sum(1 for r in recs if r.get("token") == "expired") > 0, "calls met an expired token")
    c.ok(sim.get("/_sim/stats")["tokens_issued"] >= 2, "a new token was fetched after the expiry")
    rc, _ = hub.terminate()
    c.eq(rc, 0, "exit code after SIGTERM")
finally:
    if hub.alive():
        hub.kill()
    sim.stop()

# ---------------------------------------------------------------------------------------------
# Phase 2: direct variant: a collection order, a price, tracking.
tag = unique("p2")
req, res, track, status = (f"{tag}.{x}" for x in ("postal.request", "postal.result", "vnpost.tracking",
                                                   "onestop.dossier.status"))
hub = Hub("", "vnpost-direct")
sim = VnpostSim(hub.dir, "direct", "--advance-every", "0.2")
try:
    hub.write_config(config(hub, sim, "direct", req, res, track, status, tag))
    hub.start()
    hub.wait_ready()
    reqs = [(dossier(i), json.dumps({"action": "create", "direction": "collection", "dossierCode": dossier(i),
                                     "citizen": citizen(i)}, ensure_ascii=False)) for i in range(200, 205)]
    reqs.append((dossier(300), json.dumps({"action": "price", "direction": "delivery", "citizen": citizen(2),
                                           "weight": 1200})))
    produce(bootstrap, req, reqs)
    results = wait_count(bootstrap, res, 6, timeout=120, hub=hub)
    c.eq(len(results), 6, "direct: results")
    price = [json.loads(r["value"]) for r in results if json.loads(r["value"])["action"] == "price"]
    c.eq([p.get("price") for p in price], [19000], "direct: the price of 1.2 kg within the province")
    orders = sim.get("/_sim/orders")
    o = orders.get(dossier(200), {}).get("order", {})
    c.eq((o.get("SenderName"), o.get("SenderProvince"), o.get("ReceiverName"), o.get("ReceiverDistrict")),
         ("Nguyễn Văn Công Dân 200", 35, "Sở Tư pháp tỉnh Hà Nam", 3501),
         "direct: a dossier collection goes from the citizen to the agency")
    paths = {r["path"] for r in sim.records() if r.get("service")}
    c.ok({"/api/order/post", "/api/price", "/api/order/tracking", "/token"} <= paths, f"direct paths used: {paths}")
    wait_until(lambda: all(x["step"] >= len(x["plan"]) for x in sim.get("/_sim/orders").values()), 60, hub,
               "direct: orders finished")
    want = sum(len(x["entries"]) for x in sim.get("/_sim/orders").values())
    out = wait_count(bootstrap, status, want, timeout=120, hub=hub)
    c.eq(len(out), want, "direct: dossier events")
    ev = events_by_dossier(out)
    c.ok(all([e["postal"]["statusCode"] for e in ev.get(d, [])] == [code for _, code in x["entries"]]
             for d, x in sim.get("/_sim/orders").items()), "direct: events follow the sim's tracking")
    rc, _ = hub.terminate()
    c.eq(rc, 0, "direct: exit code after SIGTERM")
finally:
    if hub.alive():
        hub.kill()
    sim.stop()
c.done()
