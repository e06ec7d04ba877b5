"""(n) Payments end to end: init -> confirm callback -> payment.confirmed (issue 14, item 1).

500 payment requests go through the `paygov` sink to tests/sim/paygov_sim.py, which checks
every MaXacThuc it receives, fails 10% of calls with 503, holds 2% past the sink's timeout, and
then plays the citizen paying: it sends the confirm callback to the hub's `paygov-confirm`
source, some forged (the amount changed under the old MaXacThuc), some repeated 2-3 times, some
before the init's own answer, some declined by the bank. The route maps each accepted callback
with mappings/paygov/confirm-to-event.yaml. The hub is SIGKILLed twice during the run; the sim
sends a callback again until it gets a signed reply, as the platform does. Asserted:
- exactly one payment.confirmed per good payment (amount, transaction codes, partner, agency,
  account, paidAt +07:00), one payment.failed per declined one, nothing for a forged one;
- every forged callback is on the rejected topic (code auth) and was answered MaLoi 01; every
  repeated one had no second effect and is on the rejected topic as a duplicate;
- the sim received no call with a wrong MaXacThuc, and every reply the hub gave was signed;
- one init result per payment; receipts and a refund work after payment; a refund larger than
  the payment, an init with '|' in a checksum field and an unknown call go to the sink's DLQ
  with the reason.
Runs on kafka and, with LT_TEST_TRANSPORT=embedded, on the embedded transport.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

from harness import (PORT, SRC, TRANSPORT, Checks, Hub, consume, free_port, log, produce, rng, transport_section,
                     unique, wait_until)

c = Checks("paygov")
bootstrap = f"127.0.0.1:{PORT}"
N = int(os.environ.get("LT_PAYGOV_N", "500"))
PARTNER, AGENCY, ACCOUNT = "SOTTTT_QNI", "000.00.01.H22", "3511.0.1055874"
KEY = "kh0á-bí-mật-paygov-0123"
ALG = os.environ.get("LT_PAYGOV_ALG", "sha256")  # test_paygov_hmac.py runs it with hmac-sha256
MALOI = os.environ.get("LT_PAYGOV_MALOI") == "1"  # the sim answers errors as 200 {MaLoi, MoTaLoi}
rand = rng()

hub = Hub("", "paygov")
key_file = os.path.join(hub.dir, "paygov.key")
with open(key_file, "w") as f:
    f.write(KEY + "\n")
cb_port = free_port()
sys.path.insert(0, os.path.join(SRC, "tests", "sim"))
import paygov_sim  # noqa: E402

sim = paygov_sim.Process(hub.dir, key_file, PARTNER, f"http://127.0.0.1:{cb_port}/paygov/confirm",
                         seed=rand.randrange(1 << 30), algorithm=ALG,
                         args=["--fail-rate", "0.1", "--slow-rate", "0.02", "--slow-for", "1.5", "--bad-mac-rate", "0.08",
                               "--duplicate-rate", "0.12", "--early-rate", "0.05", "--decline-rate", "0.04",
                               "--pay-delay", "0.3"] + (["--errors-as-maloi"] if MALOI else []))
sim_port, sim_stats, sim_records = sim.port, sim.stats, sim.records


t_init, t_res, t_confirm, t_rej, t_events = (unique("pay.init"), unique("pay.init.result"), unique("paygov.confirm"),
                                              unique("paygov.rejected"), unique("payment.events"))
sink, route = unique("paygov-api"), unique("confirm-to-event")
hub.write_config(
    f"hub:\n{transport_section()}  instance: paygov\n  admin: {{ listen: '@ADMIN@' }}\n"
    "connectors:\n"
    f"  - name: {sink}\n    type: paygov\n    from: {t_init}\n    result: {t_res}\n"
    f"    url: 'http://127.0.0.1:{sim_port}'\n    partner: {PARTNER}\n    key_file: paygov.key\n    timeout: 1s\n"
    f"    algorithm: {ALG}\n"
    "    breaker: { failures: 50, open_for: 300ms }\n"
    "    errors: { retries: 60, backoff: 20ms..500ms }\n    batch: { max_wait: 10ms }\n"
    f"  - name: paygov-callback\n    type: paygov-confirm\n    topic: {t_confirm}\n    rejected_topic: {t_rej}\n"
    f"    listen: '127.0.0.1:{cb_port}'\n    path: /paygov/confirm\n    partner: {PARTNER}\n"
    f"    key_file: paygov.key\n    algorithm: {ALG}\n    agency: '{AGENCY}'\n    account: '{ACCOUNT}'\n"
    "routes:\n"
    f"  - name: {route}\n    from: {t_confirm}\n    to: {t_events}\n    steps:\n"
    f"      - map: {SRC}/mappings/paygov/confirm-to-event.yaml\n    batch: {{ max_wait: 10ms }}\n")
hub.start()
hub.wait_ready()


def init_request(i):
    ref = f"PF{i:05d}_{rand.randrange(16 ** 8):08x}"
    amount = rand.choice([20000, 50000, 77500, 100000, 150000, 1250000])
    hoso = f"{AGENCY}-260115-{i:04d}"
    return ref, amount, {
        "MaThamChieu": ref, "SoTien": str(amount), "LoaiHinhThanhToan": "PAY", "MaKenhThanhToan": "1",
        "MaThietBi": "1", "ThongTinGiaoDich": f"Thanh toán lệ phí hồ sơ {hoso}", "Ip": "203.0.113.7",
        "ThongTinBienLai": {"MaDichVu": "2", "MaDonVi": AGENCY, "TenDonVi": "Sở Giáo dục và Đào tạo tỉnh Quảng Ninh",
                            "MaHoSo": hoso, "MaDVC": "3.000181.000.00.00.H22.02", "TenDVC": "Cấp bản sao văn bằng",
                            "MaTTHC": "3.000181.000.00.00.H22", "TenTTHC": "Cấp bản sao văn bằng, chứng chỉ",
                            "TKThuHuong": ACCOUNT, "MaNHThuHuong": "VCB"}}


payments = {}
reqs = []
for i in range(N):
    ref, amount, body = init_request(i)
    payments[ref] = amount
    reqs.append((ref, json.dumps(body, ensure_ascii=False)))

# ---------------------------------------------------------------- the run, SIGKILLed twice
t0 = time.time()
third = N // 3
produce(bootstrap, t_init, reqs[:third])
wait_until(lambda: sim_stats()["transactions"] >= third // 2, 120, hub, "a first share of the inits")
log(f"SIGKILL 1 at {sim_stats()['transactions']} transactions")
hub.kill()
produce(bootstrap, t_init, reqs[third:2 * third])
time.sleep(1.5)  # callbacks meet a closed port meanwhile, and are sent again
hub.start()
hub.wait_ready()
wait_until(lambda: sim_stats()["transactions"] >= third + third // 2, 180, hub, "a second share")
log(f"SIGKILL 2 at {sim_stats()['transactions']} transactions")
hub.kill()
hub.start()
produce(bootstrap, t_init, reqs[2 * third:])
hub.wait_ready()
ok = wait_until(lambda: (lambda s: s["transactions"] >= N and s["pending_callbacks"] == 0)(sim_stats()), 600, hub,
                "every payment initiated and its callbacks answered")
c.ok(ok, f"every payment initiated and every callback answered (sim: {sim_stats()})")
log(f"all {N} payments through in {time.time() - t0:.1f}s; sim: {sim_stats()}")

plans = {p["ref"]: p for p in sim_records("plan")}
by_fault = {}
for ref, p in plans.items():
    by_fault.setdefault(p["fault"], set()).add(ref)
good = by_fault.get("good", set()) | by_fault.get("duplicate", set())
declined, forged, repeated = by_fault.get("decline", set()), by_fault.get("bad-mac", set()), by_fault.get("duplicate",
                                                                                                          set())
early = {r for r, p in plans.items() if p.get("early")}
log(f"plans: {len(good)} paid ({len(repeated)} with repeated callbacks, {len(early & good)} early), "
    f"{len(declined)} declined, {len(forged)} forged")
c.eq(set(plans), set(payments), "the sim planned one payment per request")
c.ok(len(forged) > 0 and len(repeated) > 0 and len(declined) > 0 and len(early) > 0,
     "every kind of callback fault occurred")


def settled():
    evs = consume(bootstrap, t_events)
    return len(evs) >= len(good) + len(declined)


wait_until(settled, 120, hub, "every payment event")
time.sleep(2)  # anything extra would show up now
events = consume(bootstrap, t_events)
confirmed, failed, other = {}, {}, []
for r in events:
    e = json.loads(r["value"])
    (confirmed if e.get("event") == "payment.confirmed" else failed if e.get("event") == "payment.failed"
     else {}).setdefault(e.get("reference"), []).append((r, e))
c.eq(sum(len(v) for v in confirmed.values()), len(good), "payment.confirmed events: one per good payment")
c.eq(set(confirmed), good, "the payments confirmed are exactly the good ones")
c.eq([r for r, v in confirmed.items() if len(v) > 1], [], "payments confirmed more than once")
c.eq(set(confirmed) & forged, set(), "forged callbacks that became payments")
c.eq(set(failed), declined, "payment.failed events: exactly the declined payments")
c.eq(sum(len(v) for v in failed.values()), len(declined), "one payment.failed per declined payment")
bad_fields = 0
for ref, lst in confirmed.items():
    r, e = lst[0]
    p = plans[ref]
    want = {"reference": ref, "transactionId": p["txn"], "partner": PARTNER, "agency": AGENCY, "account": ACCOUNT,
            "amount": payments[ref], "currency": "VND", "resultCode": "00", "bank": "VCB"}
    got = {k: e.get(k) for k in want}
    if got != want or not e.get("paidAt", "").endswith("+07:00") or r["key"] != ref:
        bad_fields += 1
        if bad_fields <= 3:
            log(f"event of {ref}: {e} (key {r['key']}), expected {want}")
c.eq(bad_fields, 0, "payment.confirmed events with a wrong field, time zone or key")

# ---------------------------------------------------------------- refusals and the sim's view
rejected = consume(bootstrap, t_rej)
rej_auth = {r["key"] for r in rejected if r["headers"].get("lt.type") == "paygov.callback.rejected"
            and r["headers"].get("lt.error.code") == "auth"}
dups = {}
for r in rejected:
    if r["headers"].get("lt.type") == "paygov.callback.duplicate":
        dups[r["key"]] = dups.get(r["key"], 0) + 1
c.eq(rej_auth, forged, "the rejected topic holds exactly the forged callbacks (code auth)")
c.ok(all(r["headers"].get("lt.error.reason") for r in rejected), "every rejected record says why")
c.ok(repeated <= set(dups), "every repeated callback is recorded as a duplicate")
c.eq(set(dups) - good - declined, set(), "duplicates noted only for accepted callbacks (paid or declined)")

callbacks = sim_records("callback")
last = {}
for cb in callbacks:
    last[(cb["ref"], cb["copy"])] = cb
c.eq([k for k, cb in last.items() if not cb["reply_mac_ok"]], [], "callbacks whose last reply was not signed correctly")
c.eq(sorted({k[0] for k, cb in last.items() if cb["ref"] in forged and cb["reply"].get("MaLoi") != "01"}), [],
     "forged callbacks not answered MaLoi 01")
c.eq(sorted({k[0] for k, cb in last.items() if cb["ref"] in good | declined and cb["reply"].get("MaLoi") != "00"}), [],
     "authentic callbacks not answered MaLoi 00")
retried = sum(1 for cb in callbacks if cb["attempt"] > 1)
log(f"{len(callbacks)} callback attempts, {retried} of them sent again (hub down or busy)")
c.eq(sim_stats()["bad_mac_received"], 0, "calls the platform received with a wrong MaXacThuc")
api = sim_records("api")
c.ok(any(a["status"] == 503 for a in api), "the sim failed some calls with 503 (the sink retried them)")
c.ok(all(a.get("idempotency_key") for a in api), "every call carries an Idempotency-Key")
tries = {}
for a in api:
    if a["path"] == "/init-transaction":
        tries.setdefault(a["idempotency_key"], []).append(a)
again = [k for k, v in tries.items() if len(v) > 1]
c.ok(again, "some inits were sent again (after a 503 or a timeout) under the same Idempotency-Key")
c.eq([k for k in again if len({json.dumps(x["answer"], sort_keys=True) for x in tries[k] if x["status"] == 200}) > 1], [],
     "a repeated init got the same answer as the first")
log(f"{len(again)} inits sent more than once, {sum(1 for a in api if a['status'] == 503)} answered 503")

results = consume(bootstrap, t_res)
res_keys = {}
for r in results:
    res_keys[r["key"]] = res_keys.get(r["key"], 0) + 1
c.eq(set(res_keys), set(payments), "an init result for every payment")
c.eq([k for k, n in res_keys.items() if n > 1], [], "payments with more than one init result")
c.ok(all(r["headers"].get("lt.type") == "paygov.init.result" for r in results), "init results are typed")

# ---------------------------------------------------------------- receipt, refund, refusals
# (the calls other than init are chosen by the lt.type header, which only kcat can set here)
with_headers = TRANSPORT == "kafka"
paid = sorted(good)[:3]
if with_headers:
    produce(bootstrap, t_init, [(ref, json.dumps({"MaThamChieu": ref})) for ref in paid],
            extra=["-H", "lt.type=paygov.receipt"])
    refund_ref = paid[0]
    produce(bootstrap, t_init, [(refund_ref, json.dumps({"MaThamChieu": refund_ref, "MaGiaoDich": plans[refund_ref]["txn"],
                                                          "SoTien": str(payments[refund_ref] // 2),
                                                          "MaThamChieuHoan": "HOAN-1"})),
                                 (paid[1], json.dumps({"MaThamChieu": paid[1], "MaGiaoDich": plans[paid[1]]["txn"],
                                                       "SoTien": str(payments[paid[1]] * 2),
                                                       "MaThamChieuHoan": "HOAN-2"}))],
            extra=["-H", "lt.type=paygov.refund"])
    produce(bootstrap, t_init, [("ODD1", json.dumps({"MaThamChieu": "ODD1"}))], extra=["-H", "lt.type=paygov.cancel"])
produce(bootstrap, t_init, [("PIPE1", json.dumps({"MaThamChieu": "PIPE1", "SoTien": "1000",
                                                   "ThongTinGiaoDich": "lệ phí|X"}))])
dlq_topic = f"{sink}.dlq"
wait_until(lambda: len(consume(bootstrap, dlq_topic)) >= (3 if with_headers else 1), 120, hub, "the sink's DLQ records")
dlq = consume(bootstrap, dlq_topic)
reasons = {r["key"]: r["headers"].get("lt.error.reason", "") for r in dlq}
c.ok("contains '|'" in reasons.get("PIPE1", ""), f"an init with '|' in ThongTinGiaoDich is refused: {reasons.get('PIPE1')}")
if with_headers:
    wait_until(lambda: len(consume(bootstrap, t_res)) >= N + 4, 120, hub, "receipt and refund results")
    results = consume(bootstrap, t_res)
    receipts = [json.loads(r["value"]) for r in results if r["headers"].get("lt.type") == "paygov.receipt.result"]
    c.eq(sorted(x["MaThamChieu"] for x in receipts), paid, "a receipt for each paid payment asked")
    c.ok(all(x["MaGiaoDich"] == plans[x["MaThamChieu"]]["txn"] for x in receipts), "receipts carry the paid MaGiaoDich")
    refunds = [json.loads(r["value"]) for r in results if r["headers"].get("lt.type") == "paygov.refund.result"]
    c.eq([(x["MaThamChieu"], x["SoTienHoan"]) for x in refunds], [(refund_ref, str(payments[refund_ref] // 2))],
         "the refund of half a payment is done once")
    c.ok(("HTTP 200; MaLoi 07" if MALOI else "HTTP 400; error_code 07") in reasons.get(paid[1], ""),
         f"a refund of twice the payment is refused: {reasons.get(paid[1])}")
    c.ok("not a paygov call" in reasons.get("ODD1", ""), f"an unknown call is refused: {reasons.get('ODD1')}")
c.eq(sim_stats()["bad_mac_received"], 0, "calls received with a wrong MaXacThuc, after receipts and refunds")

# ---------------------------------------------------------------- direct callbacks (deterministic)
def post_callback(body):
    data = json.dumps(body, ensure_ascii=False).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{cb_port}/paygov/confirm", data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sign(body):
    body = dict(body)
    body["MaXacThuc"] = paygov_sim.mac(ALG, KEY, body, paygov_sim.F_CONFIRM)
    return body


# A callback accepted before the first SIGKILL, sent again now (two restarts later): no effect.
first = next(cb for cb in callbacks if cb["ref"] in good and cb["reply_mac_ok"])
before = len(consume(bootstrap, t_events))
st, ans = post_callback(first["body"])
c.ok(st == 200 and ans.get("MaLoi") == "00", f"a callback repeated after restarts is answered 00: {st} {ans}")
# The example: MaXacThuc "zz" and a lower-case currency: refused first by the checksum.
zz = dict(first["body"], MaXacThuc="zz", MaTienTe="vnd", MaThamChieu="ZZ-1", MaGiaoDich="GDZZ")
st, ans = post_callback(zz)
c.ok(st == 200 and ans.get("MaLoi") == "01", f"MaXacThuc 'zz' is answered MaLoi 01: {st} {ans}")
# Correctly signed but lower-case currency: authentic, so committed, but the mapping's input
# contract refuses it into the route's DLQ: it never becomes a payment.
lower = sign(dict(first["body"], MaTienTe="vnd", MaThamChieu="LOWER-1", MaGiaoDich="GDLOWER"))
st, ans = post_callback(lower)
c.ok(st == 200 and ans.get("MaLoi") == "00", f"a signed callback with currency 'vnd' is taken: {st} {ans}")
# A '|' inside a signed field: refused (the checksum would be ambiguous), never a payment.
pipe = dict(first["body"], MaThamChieu="PIPE-1", MaGiaoDich="GD|X")
st, ans = post_callback(pipe)
c.ok(st == 200 and ans.get("MaLoi") == "02", f"a callback with '|' in a checksum field is answered 02: {st} {ans}")
st, ans = post_callback({"not": "a callback"})
c.ok(st == 200 and ans.get("MaLoi") == "02", f"a body without the fields is answered 02: {st} {ans}")
other = sign(dict(first["body"], MaDoiTac="OTHER_PARTNER", MaThamChieu="OTHER-1", MaGiaoDich="GDOTHER"))
st, ans = post_callback(other)
c.ok(st == 200 and ans.get("MaLoi") == "03", f"a callback for another partner is answered 03: {st} {ans}")
# MaDoiTac left out: checked (and written) with the configured partner
nop = sign(dict(first["body"], MaDoiTac=PARTNER, MaThamChieu="NOPARTNER-1", MaGiaoDich="GDNOP"))
del nop["MaDoiTac"]
st, ans = post_callback(nop)
c.ok(st == 200 and ans.get("MaLoi") == "00", f"a signed callback without MaDoiTac is taken: {st} {ans}")
# The same new callback 8 times at once: the first takes it, the others wait for its commit
# and have no effect.
import threading
same = sign(dict(first["body"], MaThamChieu="SAME-1", MaGiaoDich="GDSAME"))
answers = []
threads = [threading.Thread(target=lambda: answers.append(post_callback(same))) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
c.eq(sorted(a[1].get("MaLoi") if isinstance(a[1], dict) else a for a in answers), ["00"] * 8,
     "8 concurrent copies of one callback are all answered 00")
route_dlq = f"{route}.dlq"
wait_until(lambda: len(consume(bootstrap, route_dlq)) >= 1, 60, hub, "the route's DLQ record")
dlq = consume(bootstrap, route_dlq)
c.eq([r["key"] for r in dlq], ["LOWER-1"], "the route's DLQ holds the lower-case currency callback")
c.ok(dlq and "/MaTienTe" in dlq[0]["headers"].get("lt.error.reason", ""), "its reason names /MaTienTe")
time.sleep(1)
events = consume(bootstrap, t_events)
wait_until(lambda: len(consume(bootstrap, t_events)) >= before + 2, 60, hub, "the events of the direct callbacks")
time.sleep(1)
events = consume(bootstrap, t_events)
refs = [json.loads(r["value"])["reference"] for r in events]
c.eq(len(events), before + 2, "two payment events from the direct callbacks (without MaDoiTac, 8 concurrent copies)")
c.eq(refs.count("SAME-1"), 1, "the 8 concurrent copies make one payment")
c.eq(set(refs) & {"ZZ-1", "LOWER-1", "PIPE-1", "OTHER-1"}, set(), "no refused callback is a payment")
nop_ev = [json.loads(r["value"]) for r in events if json.loads(r["value"])["reference"] == "NOPARTNER-1"]
c.ok(len(nop_ev) == 1 and nop_ev[0]["partner"] == PARTNER, f"the callback without MaDoiTac is paid to {PARTNER}")
rej = {r["key"]: r["headers"] for r in consume(bootstrap, t_rej)}
c.eq(rej.get("ZZ-1", {}).get("lt.error.code"), "auth", "the 'zz' callback is on the rejected topic (auth)")
c.eq(rej.get("PIPE-1", {}).get("lt.error.code"), "invalid", "the '|' callback is on the rejected topic (invalid)")
c.eq(rej.get("OTHER-1", {}).get("lt.error.code"), "auth", "the other partner's callback is on the rejected topic")
c.eq(sum(1 for r in consume(bootstrap, t_rej) if r["key"] == "SAME-1"), 7, "7 of the concurrent copies noted as duplicates")
c.eq(rej.get(first["ref"], {}).get("lt.type"), "paygov.callback.duplicate", "the late repeat is noted as a duplicate")

m = hub.metrics()
c.ok(m.get("lienthong_paygov_callbacks_rejected_total", 0) >= 3 and
     m.get("lienthong_paygov_callbacks_duplicate_total", 0) >= 1 and
     m.get("lienthong_paygov_callbacks_accepted_total", 0) >= 1,
     f"/metrics counts this run's callbacks: { {k: v for k, v in m.items() if 'paygov' in k} }")

rc, took = hub.terminate()
c.eq(rc, 0, "SIGTERM exit code")
sim.stop()
c.done()
