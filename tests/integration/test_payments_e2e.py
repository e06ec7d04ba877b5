"""Payments end to end in ONE hub (issue 14, first "done when"): the payments and reconciliation
blocks of examples/province.yaml, run as shipped (own ports, topic and route names, faster
retries), against tests/sim/paygov_sim.py and a bank statement made from what it settled.

1. LT_PAYMENTS_N (500) payment requests -> `paygov` sink -> the platform (paygov_sim, 5% 503s,
   a few slow answers), which plays the citizens paying: confirm callbacks to `paygov-confirm`,
   some forged (the amount changed under the old MaXacThuc), some repeated 2-3 times, some
   before the init's answer, some declined -> route confirm-to-event -> payment.events ->
   route payments-to-recon -> recon.input. The hub is SIGKILLed while the callbacks come in.
2. The bank's statement is generated from the platform's own list of settled transactions
   (paygov_sim GET /_sim/settled: the money that really moved), with anomalies injected
   (lines missing, credits nobody confirmed, wrong amounts, lines booked twice), and dropped
   into the bank folder -> file-in -> route statements (bank-statement) -> recon.input ->
   route reconcile -> recon.outcomes. The hub is SIGKILLed while it reconciles, twice.
Asserted:
- the callbacks: every forged one on the rejected topic (code auth), never a payment event;
  every repeated one a single payment.confirmed; the payments confirmed are exactly those the
  platform settled, each once;
- the outcome topic holds exactly one outcome per payment and per line (nothing forgotten or
  counted twice across the kills), and its anomalies are exactly the injected ones;
- `lienthong recon report`: one report (the one agency and account), whose JSON lists exactly
  the injected anomalies and whose CSV has exactly one row per payment/line: `matched` for every
  other settled payment, with the platform's reference and amount; no forged or declined
  transaction appears anywhere in the report;
- the reconciliation state was rebuilt from the transport after the kills.
Runs on kafka and, with LT_TEST_TRANSPORT=embedded, on the embedded transport.
"""
import collections
import csv
import io
import json
import os
import re
import subprocess
import sys
import time

from harness import BIN, PORT, SRC, Checks, Failure, Hub, consume, free_port, log, produce, rng, transport_section, \
    unique, wait_until

sys.path.insert(0, os.path.join(SRC, "tests", "sim"))
import bank_sim  # noqa: E402
import paygov_sim  # noqa: E402

c = Checks("payments-e2e")
bootstrap = f"127.0.0.1:{PORT}"
N = int(os.environ.get("LT_PAYMENTS_N", "500"))
DAY = "2026-12-05"
CLOCK = f"{DAY}T10:00:00"  # the platform's clock: payments from 10:00, extra bank credits 08:00-09:00
SECRETS = os.path.join(SRC, "examples", "secrets")
PARTNER, AGENCY, ACCOUNT = "SOTTTT_QNI", "000.00.01.H22", "3511.0.1055874"  # as examples/province.yaml
rand = rng()

hub = Hub("", "payments-e2e")
bank_dir, report_dir = os.path.join(hub.dir, "bank"), os.path.join(hub.dir, "reports")
os.makedirs(bank_dir)
cb_port = free_port()
sim = paygov_sim.Process(hub.dir, os.path.join(SECRETS, "paygov.key"), PARTNER,
                         f"http://127.0.0.1:{cb_port}/paygov/confirm", seed=rand.randrange(1 << 30),
                         args=["--fail-rate", "0.05", "--slow-rate", "0.01", "--slow-for", "3",
                               "--bad-mac-rate", "0.08", "--duplicate-rate", "0.12", "--early-rate", "0.05",
                               "--decline-rate", "0.04", "--pay-delay", "0.3", "--clock", CLOCK])

# ---------------------------------------------------------------- the hub: examples/province.yaml
sfx = unique("t")[2:]
example = os.path.join(SRC, "examples", "province.yaml")
cfg = open(example).read()
# only the payments and reconciliation blocks: the file wires every flow, each in a "# ====" block
out, keep = [], True
for line in cfg.splitlines(keepends=True):
    if line.startswith("  # ==== "):
        keep = "payments: PayGov" in line or "payment reconciliation" in line
    elif re.match(r"^[a-z]", line):
        keep = True
    if keep:
        out.append(line)
cfg = re.sub(r"^keys:\n(  .*\n)+", "", "".join(out), flags=re.M)
cfg = re.sub(r"^hub:\n(  .*\n)+", f"hub:\n{transport_section()}  instance: pay-e2e\n  admin: {{ listen: '@ADMIN@' }}\n",
             cfg, flags=re.M)
for old, new in [("listen: 127.0.0.1:8444", f"listen: 127.0.0.1:{cb_port}"),
                 ("url: http://127.0.0.1:9310", f"url: http://127.0.0.1:{sim.port}"),
                 ("secrets/", SECRETS + "/"), ("../mappings/", os.path.join(SRC, "mappings") + "/"),
                 ("../var/bank/vietinbank", bank_dir),
                 # faster than a province would wait, so that a test sees the retries
                 ("timeout: 10s", "timeout: 2s"), ("open_for: 30s", "open_for: 300ms"),
                 ("500ms..1m", "20ms..500ms"), ("1s..1m", "100ms..1s")]:
    c.ok(old in cfg, f"examples/province.yaml has {old!r}")
    cfg = cfg.replace(old, new)
# this run's own topic, connector and route names (the broker is shared with other tests)
topics = ["paygov.requests", "paygov.results", "paygov.confirm", "paygov.callback.rejected", "payment.events",
          "recon.input", "recon.outcomes", "bank.statement.files"]
names = ["paygov-api", "paygov-callback", "vietinbank-statements", "confirm-to-event", "payments-to-recon",
         "statements", "reconcile"]
for t in topics:
    c.ok(re.search(rf"(?<![\w.-]){re.escape(t)}(?![\w.-])", cfg) is not None, f"the blocks use topic {t}")
    cfg = re.sub(rf"(?<![\w.-]){re.escape(t)}(?![\w.-])", f"{t}.{sfx}", cfg)
for n in names:
    c.ok(f"name: {n}\n" in cfg, f"the blocks have {n}")
    cfg = cfg.replace(f"name: {n}\n", f"name: {n}-{sfx}\n").replace(f"dlq: {n}.dlq", f"dlq: {n}-{sfx}.dlq")
# small transactions in the reconciliation, so that a kill can land between two of them
c.ok(f"  - name: reconcile-{sfx}\n" in cfg, "the reconcile route")
cfg = cfg.replace(f"  - name: reconcile-{sfx}\n", f"  - name: reconcile-{sfx}\n    batch: {{ max_messages: 10 }}\n")
T = {t: f"{t}.{sfx}" for t in topics}
R = {n: f"{n}-{sfx}" for n in names}
hub.write_config(cfg)
lint = subprocess.run([BIN, "lint", hub.config], capture_output=True, text=True)
c.eq(lint.returncode, 0, f"lint of the test's configuration: {lint.stderr.strip()}")

# recon.input needs one partition (examples/province.yaml: create it before the first start):
# a hub whose topics have one partition creates it; every other topic keeps the default.
setup = Hub(f"hub:\n{transport_section().rstrip(chr(10))[:-2]}, partitions: 1 }}\n  instance: pay-e2e-setup\n"
            f"  admin: {{ listen: '@ADMIN@' }}\nroutes:\n  - name: setup-{sfx}\n    from: {T['recon.input']}\n"
            f"    to: {T['recon.outcomes']}\n    steps:\n      - passthrough: {{}}\n", "payments-e2e-setup")
setup.start()
setup.wait_ready()
setup.terminate()


def init_request(i):
    ref = f"PE{i:05d}_{rand.randrange(16 ** 8):08x}"
    amount = rand.choice([20000, 50000, 77500, 100000, 150000, 1250000]) + rand.randrange(0, 10) * 500
    hoso = f"{AGENCY}-261205-{i:04d}"
    return ref, amount, {
        "MaThamChieu": ref, "SoTien": str(amount), "LoaiHinhThanhToan": "PAY", "MaKenhThanhToan": "1",
        "MaThietBi": "1", "ThongTinGiaoDich": f"Thanh toán lệ phí hồ sơ {hoso}", "Ip": "203.0.113.7",
        "ThongTinBienLai": {"MaDichVu": "2", "MaDonVi": AGENCY, "TenDonVi": "Sở Thông tin và Truyền thông tỉnh Quảng Ninh",
                            "MaHoSo": hoso, "MaDVC": "1.004227.000.00.00.H22", "TenDVC": "Cấp giấy phép bưu chính",
                            "MaTTHC": "1.004227", "TenTTHC": "Cấp giấy phép bưu chính",
                            "TKThuHuong": ACCOUNT, "MaNHThuHuong": "VCB"}}


payments, reqs = {}, []
for i in range(N):
    ref, amount, body = init_request(i)
    payments[ref] = amount
    reqs.append((ref, json.dumps(body, ensure_ascii=False)))


def outcomes():
    return [json.loads(x["value"]) for x in consume(bootstrap, T["recon.outcomes"])
            if x["headers"].get("lt.type") == "recon.outcome"]


# ---------------------------------------------------------------- 1. payments, SIGKILLed during the callbacks
t0 = time.time()
hub.start()
hub.wait_ready()
half = N // 2
produce(bootstrap, T["paygov.requests"], reqs[:half])
snap = {}


def in_callbacks():
    # a first share paid and callbacks on their way: the kill lands in the middle of them
    snap.update(sim.stats())
    return snap["paid"] >= N // 5 and snap["pending_callbacks"] > 0


wait_until(in_callbacks, 180, hub, "a first share of the callbacks, more on their way")
hub.kill()
st = snap
log(f"SIGKILL 1 during the callbacks: {st['transactions']} initiated, {st['paid']} paid, "
    f"{st['pending_callbacks']} callbacks pending")
c.ok(st["pending_callbacks"] > 0, "the first kill lands while callbacks are still coming")
produce(bootstrap, T["paygov.requests"], reqs[half:])
time.sleep(1.5)  # callbacks meet a closed port meanwhile, and are sent again
hub.start()
hub.wait_ready()
ok = wait_until(lambda: (lambda s: s["transactions"] >= N and s["pending_callbacks"] == 0)(sim.stats()), 600, hub,
                "every payment initiated and its callbacks answered")
c.ok(ok, f"every payment initiated and every callback answered (sim: {sim.stats()})")
log(f"{N} payments through the platform in {time.time() - t0:.1f}s; sim: {sim.stats()}")

plans = {p["ref"]: p for p in sim.records("plan")}
by_fault = collections.defaultdict(set)
for ref, p in plans.items():
    by_fault[p["fault"]].add(ref)
good = by_fault["good"] | by_fault["duplicate"]
forged, repeated, declined = by_fault["bad-mac"], by_fault["duplicate"], by_fault["decline"]
early = {r for r, p in plans.items() if p.get("early")}
log(f"plans: {len(good)} paid ({len(repeated)} with repeated callbacks, {len(early & good)} before the init's "
    f"answer), {len(declined)} declined, {len(forged)} forged")
c.eq(set(plans), set(payments), "the platform planned one payment per request")
c.ok(forged and repeated and declined and early, "every kind of callback fault occurred")
settled = sim.settled()
c.eq(sorted(t["ref"] for t in settled), sorted(good), "the platform settled exactly the good payments")
c.eq(sim.stats()["bad_mac_received"], 0, "calls the platform received with a wrong MaXacThuc")
wait_until(lambda: len(consume(bootstrap, T["payment.events"])) >= len(good) + len(declined), 120, hub,
           "every payment event")

# ---------------------------------------------------------------- 2. the bank's statement of what was settled
pays = bank_sim.settled_payments(settled)
c.ok(all(p["paidAt"].startswith(DAY) for p in pays), "every payment is on the statement's day")
lines, expected = bank_sim.inject(pays, rand, missing=5, extra=4, wrong_amount=3, duplicate=3, extra_before_hour=9)
statement = bank_sim.statement_fixed(lines, DAY)
want = collections.Counter()
for o, keys in expected.items():
    for k in keys:
        want[(o, k)] += 1
unmatched = set(expected["missing-in-bank"]) | set(expected["amount-mismatch"])
for p in pays:
    if p["transactionId"] not in unmatched:
        want[("matched", p["transactionId"])] += 1
total = sum(want.values())
log(f"statement: {len(lines)} lines for {len(pays)} settled payments; injected {dict((k, len(v)) for k, v in expected.items())}; "
    f"{total} outcomes expected")

t1 = time.time()
name = f"statement-{DAY}.txt"
bank_sim.drop(bank_dir, name, statement)
# SIGKILL 2: as soon as file-in has taken the statement (its lines are on their way to the reconciliation)
t_end = time.time() + 120
while time.time() < t_end and hub.alive() and not os.path.exists(os.path.join(bank_dir, "done", name)):
    time.sleep(0.01)
c.ok(os.path.exists(os.path.join(bank_dir, "done", name)), "file-in took the statement")
hub.kill()
n2 = len(outcomes())
log(f"SIGKILL 2 with the statement taken, {n2} of {total} outcomes committed")
hub.start()
# SIGKILL 3: once this process has decided a first share of the lines' outcomes (its counters
# count them when decided, before their transaction commits)
t_end = time.time() + 60
while time.time() < t_end and hub.alive() and hub.metrics().get("lienthong_recon_matched_total", 0) < len(pays) // 4:
    time.sleep(0.02)
hub.kill()
n3 = len(outcomes())
log(f"SIGKILL 3 with {n3} of {total} outcomes committed ({time.time() - t1:.1f}s after the statement)")
c.ok(n2 < total, "the second kill lands before the reconciliation is done")
c.ok(0 < n3 < total, "the third kill lands in the middle of the reconciliation")
hub.start()
hub.wait_ready()
wait_until(lambda: len(outcomes()) >= total, 300, hub, f"{total} outcomes")
time.sleep(2)  # anything extra would show up now
log(f"reconciled in {time.time() - t1:.1f}s after the statement")

# ---------------------------------------------------------------- the callbacks' effects
events = consume(bootstrap, T["payment.events"])
confirmed = collections.Counter()
failed = set()
for r in events:
    e = json.loads(r["value"])
    if e.get("event") == "payment.confirmed":
        confirmed[e["reference"]] += 1
    elif e.get("event") == "payment.failed":
        failed.add(e["reference"])
c.eq(set(confirmed), good, "payment.confirmed: exactly the payments the platform settled")
c.eq(sorted(r for r, n in confirmed.items() if n > 1), [], "payments confirmed more than once")
c.eq(set(confirmed) & forged, set(), "forged callbacks that became payments")
c.ok(all(confirmed[r] == 1 for r in repeated), "a repeated callback has one effect")
c.eq(failed, declined, "payment.failed: exactly the declined payments")
rejected = consume(bootstrap, T["paygov.callback.rejected"])
c.eq({r["key"] for r in rejected if r["headers"].get("lt.error.code") == "auth"}, forged,
     "the rejected topic holds exactly the forged callbacks (code auth)")
c.ok(repeated <= {r["key"] for r in rejected if r["headers"].get("lt.type") == "paygov.callback.duplicate"},
     "every repeated callback is noted as a duplicate")
callbacks = sim.records("callback")
c.ok(any(cb["attempt"] > 1 for cb in callbacks), "some callbacks met the killed hub and were sent again")
last = {}
for cb in callbacks:
    last[(cb["ref"], cb["copy"])] = cb
c.eq(sorted({k[0] for k, cb in last.items() if cb["ref"] in forged and cb["reply"].get("MaLoi") != "01"}), [],
     "forged callbacks not answered MaLoi 01")

# ---------------------------------------------------------------- the outcome topic
got_list = outcomes()
got = collections.Counter((o["outcome"], o["key"]) for o in got_list)
c.eq(sum(got.values()), total, "outcomes in the topic (one per payment and line)")
c.eq(sorted((got - want).elements()), [], "outcomes nobody injected (or twice)")
c.eq(sorted((want - got).elements()), [], "injected outcomes not reported")
c.eq({(o["agency"], o["account"], o["day"]) for o in got_list}, {(AGENCY, ACCOUNT, DAY)},
     "every outcome is of the agency's account and the statement's day")

# ---------------------------------------------------------------- the report
rep = subprocess.run([BIN, "recon", "report", hub.config, R["reconcile"], "--day", DAY, "--out", report_dir],
                     capture_output=True, text=True, timeout=300)
c.eq(rep.returncode, 0, f"recon report exit code ({rep.stderr.strip()})")
base = f"recon-{DAY}-{AGENCY}-{ACCOUNT}"
c.eq(sorted(os.listdir(report_dir)) if os.path.isdir(report_dir) else [],
     [base + ".csv", base + ".html", base + ".json"], "one report: the agency's account")
try:
    j = json.load(open(os.path.join(report_dir, base + ".json"), encoding="utf-8"))
except (OSError, ValueError) as e:
    j = {"anomalies": [], "counts": {}}
    c.ok(False, f"report {base}.json: {e}")
listed = collections.Counter((a["outcome"], a["key"]) for a in j["anomalies"])
injected = collections.Counter((o, k) for o, ks in expected.items() for k in ks)
c.eq(sorted(listed.elements()), sorted(injected.elements()), "the JSON report lists exactly the injected anomalies")
c.eq(j["counts"].get("matched"), len(pays) - len(unmatched), "the JSON report's matched count")
c.eq(j.get("totals"), {"platform": sum(p["amount"] for p in pays), "bank": sum(ln["amount"] for ln in lines)},
     "the report's totals: what the platform settled, what the statement credits (doubled lines included)")
by_txn = {p["transactionId"]: p for p in pays}
bad = [a for a in j["anomalies"] if a["outcome"] in ("missing-in-bank", "amount-mismatch") and
       (a["platform"]["amount"] != by_txn[a["key"]]["amount"] or a["platform"]["ref"]["reference"] != by_txn[a["key"]]["reference"])]
c.eq(bad, [], "anomalies whose platform side is not the settled payment (amount, reference)")
try:
    rows = list(csv.DictReader(io.StringIO(open(os.path.join(report_dir, base + ".csv"), encoding="utf-8").read())))
except OSError as e:
    rows = []
    c.ok(False, f"report {base}.csv: {e}")
c.eq(sorted(collections.Counter((x["outcome"], x["key"]) for x in rows).elements()), sorted(want.elements()),
     "the CSV: one row per payment and line, matched for every other settled payment")
wrong = [x["key"] for x in rows if x["outcome"] == "matched" and
         (x["platform_reference"] != by_txn[x["key"]]["reference"] or int(x["platform_amount"]) != by_txn[x["key"]]["amount"]
          or int(x["bank_amount"]) != by_txn[x["key"]]["amount"] or x["bank_file"] != name)]
c.eq(wrong, [], "matched rows whose reference, amounts or statement file are not the settled payment's")
report_text = "".join(open(os.path.join(report_dir, base + x), encoding="utf-8").read()
                      for x in (".json", ".csv", ".html") if os.path.exists(os.path.join(report_dir, base + x)))
never = {r for r in forged | declined} | {plans[r]["txn"] for r in forged | declined}
c.eq(sorted(x for x in never if x in report_text), [], "forged or declined payments named in the report")
page = open(os.path.join(report_dir, base + ".html"), encoding="utf-8").read() \
    if os.path.exists(os.path.join(report_dir, base + ".html")) else ""
c.ok(all(k in page for _, k in injected), "the HTML page names every anomaly")

# ---------------------------------------------------------------- state and DLQs
# a restarted hub rebuilds the matcher from the committed input before it goes on (the log says
# so per start); after the second kill the payments were all waiting there for their lines
rebuilt = [(int(m_.group(1)), int(m_.group(2))) for m_ in
           re.finditer(r"rebuilt from (\d+) committed record\(s\) before offset \d+ in [\d.]+ s; (\d+) pending",
                       open(hub.log_path, errors="replace").read())]
log(f"reconciliation rebuilds (records, pending): {rebuilt}")
c.ok(any(n >= len(pays) and p > 0 for n, p in rebuilt),
     "after a kill the reconciliation state was rebuilt from the transport, payments waiting in it")
for n in ("paygov-api", "confirm-to-event", "statements", "reconcile"):
    try:
        dlq = consume(bootstrap, f"{R[n]}.dlq")
    except Failure:  # a DLQ topic is created with its first record
        dlq = []
    c.eq([(x["key"], x["headers"].get("lt.error.reason")) for x in dlq], [], f"records in {n}'s DLQ")
rc, _ = hub.terminate()
c.eq(rc, 0, "SIGTERM exit code")
sim.stop()
log(f"whole run {time.time() - t0:.1f}s")
c.done()
