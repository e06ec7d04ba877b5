"""Bank statements and payment reconciliation (connectors/bank-statement, connectors/reconcile)
on a real broker (or the embedded transport), with SIGKILLs.

500 generated payment.confirmed events (two of them confirmed twice) and a fixed-width bank
statement generated from them with injected anomalies (payments missing from the bank, credits
the platform never confirmed, wrong amounts, lines booked twice) go through file-in ->
bank-statement -> reconcile, plus a small CSV statement of a second agency. The hub is SIGKILLed
twice while it reconciles and restarted. Then:
  - the outcome topic holds exactly one outcome per payment / line, and the anomalies are exactly
    the injected ones (no outcome twice after the kills: state rebuilt, not forgotten);
  - `lienthong recon report` writes per agency and account a JSON report listing exactly the
    injected anomalies, a CSV of every outcome and an HTML page naming each anomaly;
  - statements with a wrong footer count, a file cut inside a line and a short line in the middle
    are refused whole: each in the statement DLQ with its file name and line in the reason, and
    not one of their lines reached the reconciliation;
  - /metrics has the reconciliation counters and the restore counter.
"""
import collections
import json
import os
import random
import subprocess
import sys
import time

from harness import BIN, PORT, TRANSPORT, Checks, Hub, consume, log, produce, transport_section, unique, wait_until

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sim"))
import bank_sim  # noqa: E402

SRC = os.environ.get("LT_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
c = Checks("recon")
bootstrap = f"127.0.0.1:{PORT}"
r = random.Random(int(os.environ.get("LT_TEST_SEED", "14")))
DAY = "2026-12-05"
N = 500
A1, A2, A3 = "000.00.00.H01", "000.00.00.H02", "000.00.00.H03"
N3 = 6000  # agency 3's statement is 1.4 MB: more than one Kafka record may hold

t_pay, t_files, t_in, t_out = (unique(x) for x in ("pay", "stmt.files", "recon.in", "recon.out"))
t_sdlq, t_rdlq = unique("stmt.dlq"), unique("recon.dlq")
hub = Hub("", "recon")
bank_dir, csv_dir, big_dir, report_dir = (os.path.join(hub.dir, x) for x in ("bank", "bank-csv", "bank-big", "reports"))
for d in (bank_dir, csv_dir, big_dir):
    os.makedirs(d)
transport = transport_section(bootstrap).rstrip("\n")
transport = transport[:-2] + ", partitions: 1 }\n"  # the reconcile route's input: one partition
hub.write_config(f"""hub:
{transport}  instance: test
  admin: {{ listen: '@ADMIN@' }}
connectors:
  - {{ name: bank-in, type: file-in, topic: {t_files}, path: {bank_dir}, pattern: "*.txt", poll_interval: 100ms, settle: 1s, rescan: 1s, max_size: 900KiB }}
  # file-in runs the step itself: a statement's lines go straight to the reconciliation input in
  # the file's transaction, whatever the file's size; a refused file goes to failed/ with the reason
  - name: bank-csv-in
    type: file-in
    topic: {t_in}
    path: {csv_dir}
    pattern: "*.csv"
    poll_interval: 100ms
    settle: 1s
    rescan: 1s
    steps:
      - bank-statement: {{ layout: {SRC}/mappings/bank/csv-basic.yaml, agency: {A2}, key: transaction_code }}
  - name: bank-big-in
    type: file-in
    topic: {t_in}
    path: {big_dir}
    pattern: "*.txt"
    poll_interval: 100ms
    settle: 1s
    rescan: 1s
    max_size: 10MiB
    steps:
      - bank-statement: {{ layout: {SRC}/mappings/bank/vnpay-fixed.yaml, agency: {A3}, key: transaction_code }}
routes:
  - name: statements
    from: {t_files}
    to: {t_in}
    steps:
      - bank-statement: {{ layout: {SRC}/mappings/bank/vnpay-fixed.yaml, agency: {A1}, key: transaction_code }}
    errors: {{ retries: 2, backoff: 100ms..1s, dlq: {t_sdlq} }}
  - name: payments
    from: {t_pay}
    to: {t_in}
    steps:
      - passthrough: {{}}
  - name: reconcile
    from: {t_in}
    to: {t_out}
    steps:
      - reconcile: {{ window: 15m }}
    errors: {{ retries: 2, backoff: 100ms..1s, dlq: {t_rdlq} }}
""")

# ------------------------------------------------------------------ the data
pays = bank_sim.payments(N, DAY, r, agency=A1)
lines, expected = bank_sim.inject(pays, r, missing=6, extra=5, wrong_amount=4, duplicate=3)
flawed = set(expected["missing-in-bank"]) | set(expected["amount-mismatch"]) | set(expected["duplicate"])
HALF = N // 2
# the platform confirms two payments twice (a repeated callback a few seconds later): one in each half
twice = [next(p for p in pays[10:HALF] if p["transactionId"] not in flawed),
         next(p for p in pays[HALF + 10:] if p["transactionId"] not in flawed)]
expected["duplicate"] = sorted(expected["duplicate"] + [p["transactionId"] for p in twice])


def with_repeats(ps):
    out = []
    for p in ps:
        out.append(p)
        if p in twice:
            out.append(p)
    return out
statement = bank_sim.statement_fixed(lines, DAY)

pays2 = bank_sim.payments(30, DAY, r, agency=A2, account="9988776655")
for p in pays2:  # another agency's transaction codes
    p["transactionId"] = "B" + p["transactionId"]
lines2, expected2 = bank_sim.inject(pays2, r, missing=1, extra=2, wrong_amount=1, duplicate=1, extra_prefix="XB")
statement2 = bank_sim.statement_csv(lines2, DAY)
bad_csv = bank_sim.statement_csv(lines2[:5], DAY, count=4)  # refused by file-in's step: failed/

pays3 = bank_sim.payments(N3, DAY, r, agency=A3, account="5566778899")
for p in pays3:
    p["transactionId"] = "C" + p["transactionId"]
lines3, expected3 = bank_sim.inject(pays3, r, missing=3, extra=3, wrong_amount=3, duplicate=3, extra_prefix="XC")
statement3 = bank_sim.statement_fixed(lines3, DAY)
assert len(statement3) > 1000000

# statements that must be refused whole (lines of payments nobody sends: a leak would show up
# as missing-in-platform in the report)
ghost = bank_sim.payments(40, DAY, random.Random(99), agency=A1)
for p in ghost:
    p["transactionId"] = "GHOST" + p["transactionId"]
ghost_lines, _ = bank_sim.inject(ghost, r)
ghost_stmt = bank_sim.statement_fixed(ghost_lines, DAY)
bad = {"bad-footer.txt": bank_sim.fault(ghost_stmt, "footer", r),
       "cut.txt": bank_sim.fault(ghost_stmt, "truncated", r),
       "short-line.txt": bank_sim.fault(ghost_stmt, "short-line", r)}


def pay_records(ps):
    return [(p["transactionId"], json.dumps(p, ensure_ascii=False, separators=(",", ":"))) for p in ps]


def send(ps, header_type="payment.confirmed"):
    # the event's JSON `event` says what it is, whatever lt.type a mapping route left on it
    produce(bootstrap, t_pay, pay_records(ps), extra=["-H", f"lt.type={header_type}"])


def outcomes():
    return [x for x in consume(bootstrap, t_out) if x["headers"].get("lt.type") == "recon.outcome"]


want = collections.Counter()
for o, keys in list(expected.items()) + list(expected2.items()) + list(expected3.items()):
    for k in keys:
        want[(o, k)] += 1
bad_keys = set(expected["missing-in-bank"]) | set(expected["amount-mismatch"])
for p in pays:
    if p["transactionId"] not in bad_keys:
        want[("matched", p["transactionId"])] += 1
for ps, exp in ((pays2, expected2), (pays3, expected3)):
    bad_ = set(exp["missing-in-bank"]) | set(exp["amount-mismatch"])
    for p in ps:
        if p["transactionId"] not in bad_:
            want[("matched", p["transactionId"])] += 1
total_want = sum(want.values())
log(f"{len(pays) + len(twice) + len(pays2) + len(pays3)} payments, {len(lines) + len(lines2) + len(lines3)} bank lines, "
    f"{total_want} outcomes expected")

# ------------------------------------------------------------------ the run, with two SIGKILLs
hub.start()
hub.wait_ready()
send(with_repeats(pays[:HALF]))
bank_sim.drop(bank_dir, f"statement-{DAY}.txt", statement)
for name, data in bad.items():
    bank_sim.drop(bank_dir, name, data)
wait_until(lambda: len(outcomes()) > 50, 240, hub, "first outcomes")
hub.kill()
log(f"SIGKILL 1 with {len(outcomes())} outcomes committed")
hub.start()
send(with_repeats(pays[HALF:]), header_type="paygov.confirm")
bank_sim.drop(big_dir, f"statement-{DAY}.txt", statement3)  # 12,000 records to go: the next kill lands in them
send(pays3)
n1 = len(outcomes())
t_end = time.time() + 60  # kill mid-way if it is still going; the kill is the test, not its timing
while len(outcomes()) <= n1 + 20 and time.time() < t_end and hub.alive():
    time.sleep(0.2)
hub.kill()
log(f"SIGKILL 2 with {len(outcomes())} outcomes committed")
hub.start()
hub.wait_ready()
bank_sim.drop(csv_dir, f"statement-{DAY}.csv", statement2)  # after the restart: this process rebuilds its state
bank_sim.drop(csv_dir, "bad-total.csv", bad_csv)
send(pays2)
# a payment event the reconciliation cannot read: to its DLQ with the field named, nothing else
send([{"event": "payment.confirmed", "transactionId": "BAD1", "amount": "12x", "paidAt": f"{DAY}T09:00:00+07:00",
       "agency": A1, "account": bank_sim.ACCOUNT}])
wait_until(lambda: len(outcomes()) >= total_want, 300, hub, f"{total_want} outcomes")
got_records = outcomes()

# ------------------------------------------------------------------ exactly the injected anomalies
got = collections.Counter()
for x in got_records:
    v = json.loads(x["value"])
    got[(v["outcome"], v["key"])] += 1
c.eq(sum(got.values()), total_want, "outcomes in the topic (one per payment and line)")
c.eq(sorted((got - want).elements()), [], "outcomes nobody injected (or twice)")
c.eq(sorted((want - got).elements()), [], "injected outcomes not reported")
c.ok(not [k for _, k in got if k.startswith("GHOST")], "no line of a refused statement was reconciled")

# ------------------------------------------------------------------ refused statements
lst = subprocess.run([BIN, "dlq", "list", hub.config, "statements", "--json"], capture_output=True, text=True,
                     timeout=300)
c.eq(lst.returncode, 0, f"dlq list exit code ({lst.stderr.strip()})")
dlq = [json.loads(ln) for ln in lst.stdout.splitlines() if ln.startswith("{")]
reasons = {x["headers"].get("lt.file.name"): x["headers"].get("lt.error.reason", "") for x in dlq}
c.eq(sorted(reasons), sorted(bad), "statements in the DLQ")
for name, why in sorted(reasons.items()):
    log(f"refused {name}: {why}")
c.ok(":" in reasons.get("bad-footer.txt", "") and "row_count says 41" in reasons.get("bad-footer.txt", ""),
     f"wrong footer: reason names the count ({reasons.get('bad-footer.txt')})")
n_ghost = len(ghost_stmt.split(b"\n")) - 1
c.ok(f"cut.txt:{n_ghost - 1}:" in reasons.get("cut.txt", "") and "truncated" in reasons.get("cut.txt", ""),
     f"cut file: reason names file and line {n_ghost - 1} ({reasons.get('cut.txt')})")
c.ok("short-line.txt:" in reasons.get("short-line.txt", "") and "truncated" in reasons.get("short-line.txt", ""),
     f"short line: reason names file and line ({reasons.get('short-line.txt')})")
note = os.path.join(csv_dir, "failed", "bad-total.csv.error")
c.ok(os.path.exists(os.path.join(csv_dir, "failed", "bad-total.csv")) and os.path.exists(note),
     "file-in with the step: a refused statement is in failed/ with its note")
why = open(note).read() if os.path.exists(note) else ""
c.ok("bad-total.csv:7: the footer's row_count says 4 detail line(s); the file has 5" in why,
     f"the note names file, line and count ({why.strip()})")
c.ok(os.path.exists(os.path.join(big_dir, "done", f"statement-{DAY}.txt")), "the 1.4 MB statement was taken whole")
inputs = consume(bootstrap, t_in)
leaked = [x for x in inputs if json.loads(x["value"]).get("file") in set(bad) | {"bad-total.csv"}]
c.eq(len(leaked), 0, "records of refused statements in the reconciliation input")
lst = subprocess.run([BIN, "dlq", "list", hub.config, "reconcile", "--json"], capture_output=True, text=True,
                     timeout=300)
rdlq = [json.loads(ln) for ln in lst.stdout.splitlines() if ln.startswith("{")]
c.eq([x["key"] for x in rdlq], ["BAD1"], "records the reconciliation refused")
c.ok(rdlq and "BAD1: 'amount' is not an integer amount in VND" in rdlq[0]["headers"].get("lt.error.reason", ""),
     f"the refused payment's reason names its field ({rdlq[0]['headers'].get('lt.error.reason') if rdlq else None})")

# ------------------------------------------------------------------ the report
rep = subprocess.run([BIN, "recon", "report", hub.config, "reconcile", "--day", DAY, "--out", report_dir],
                     capture_output=True, text=True, timeout=300)
c.eq(rep.returncode, 0, f"recon report exit code ({rep.stderr.strip()})")
for agency, account, exp, ps in ((A1, bank_sim.ACCOUNT, expected, pays), (A2, "9988776655", expected2, pays2),
                                 (A3, "5566778899", expected3, pays3)):
    base = os.path.join(report_dir, f"recon-{DAY}-{agency}-{account}")
    try:
        j = json.load(open(base + ".json"))
    except (OSError, ValueError) as e:
        c.ok(False, f"report {base}.json: {e}")
        continue
    listed = collections.Counter((a["outcome"], a["key"]) for a in j["anomalies"])
    injected = collections.Counter((o, k) for o, ks in exp.items() for k in ks)
    c.eq(sorted(listed.elements()), sorted(injected.elements()), f"{agency}: the report lists exactly the injected anomalies")
    c.eq(j["counts"]["matched"], sum(1 for p in ps if p["transactionId"] not in
                                     set(exp["missing-in-bank"]) | set(exp["amount-mismatch"])),
         f"{agency}: matched count")
    rows = open(base + ".csv", encoding="utf-8").read().splitlines()
    c.eq(len(rows) - 1, sum(j["counts"].values()), f"{agency}: CSV has one row per outcome")
    page = open(base + ".html", encoding="utf-8").read()
    c.ok(all(k in page for _, k in injected), f"{agency}: the HTML page names every anomaly")
    c.ok("Lệch số tiền" in page and "<table>" in page, f"{agency}: the HTML page is the clerk's table")
wrong = [a for a in json.load(open(os.path.join(report_dir, f"recon-{DAY}-{A1}-{bank_sim.ACCOUNT}.json")))["anomalies"]
         if a["outcome"] == "amount-mismatch"] if os.path.exists(
    os.path.join(report_dir, f"recon-{DAY}-{A1}-{bank_sim.ACCOUNT}.json")) else []
c.ok(wrong and all(a["platform"]["amount"] != a["bank"]["amount"] and a["bank"]["ref"]["file"] for a in wrong),
     "amount mismatches carry both amounts and the statement's file and line")

# ------------------------------------------------------------------ metrics
m = hub.metrics()
c.ok("lienthong_recon_matched_total" in m and "lienthong_recon_duplicate_total" in m, "reconciliation counters")
c.ok(m.get("lienthong_recon_restores_total", 0) >= 1, "the state was rebuilt from the transport after the restart")
# more than 50 outcomes were committed before the first kill, and an input gives at most two
c.ok(m.get("lienthong_recon_replayed_total", 0) >= 25, "... from the committed input before it "
     f"({m.get('lienthong_recon_replayed_total')} records fed again)")
rebuilt = [ln for ln in open(hub.log_path, errors="replace") if "rebuilt from" in ln]
log(f"{len(rebuilt)} rebuild(s); last: {rebuilt[-1].strip()[:300] if rebuilt else None}")
c.ok("lienthong_bank_statement_refused_total" in m, "statement refusal counter")
c.ok("lienthong_recon_pending" in m, "the waiting items gauge")
hub.terminate()
c.done()
