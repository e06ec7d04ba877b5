"""`lienthong demo` (the README's first command) plays every journey through on the embedded
transport with the real connectors: the two dossiers reach the portal stand-in through the
onestop source and the dvcqg sink (login, TraCuuHoSo, DongBoHoSoMC), the malformed one lands in
the DLQ and never reaches the portal, the document is signed and verified and written out, a
fee is confirmed by a signed PayGov callback and reconciled against the bank's statement
(matched) while a forged copy of the callback is refused and kept aside, and VNPost's tracking entries become one-stop dossier events ending in `returned`.
Checked from what the demo printed (each stand-in's record of what it received), from the
topics in its database, and with `lienthong dlq list` and `lienthong recon report`."""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("LT_BIN")
passed = failed = 0
CODES = ["000.00.01.H22-240115-0101", "000.00.01.H22-240115-0102", "000.00.01.H22-240115-0103"]


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)


def journey(out, n):
    """The lines of journey n."""
    m = re.search(rf"^Journey {n}:.*?(?=^Journey {n + 1}:|^Where to look next:)", out, re.S | re.M)
    return m.group(0) if m else ""


def topic(db, name):
    """The values of a topic's records in order, as JSON (the embedded transport's file, read only)."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = c.execute("SELECT value FROM records WHERE topic = ? ORDER BY part, off", (name,)).fetchall()
    finally:
        c.close()
    return [json.loads(v) for (v,) in rows]


d = os.path.join(tempfile.mkdtemp(prefix="lt-demo-"), "demo")
t0 = time.time()
r = subprocess.run([BIN, "demo", "--dir", d], capture_output=True, text=True, timeout=300)
took = time.time() - t0
out = r.stdout
print(out)
check(r.returncode == 0, f"demo exit code {r.returncode}: {r.stderr[-2000:]}")
check(took < 60, f"the demo took {took:.1f} s")
for n in range(1, 7):
    check(f"Journey {n}:" in out, f"journey {n} printed")
check(not [l for l in out.splitlines() if re.match(r"^\s+--\s\s\S", l)], "every step has a time")

# Journeys 1-2: the onestop source answered with an id; the portal stand-in received a login,
# then TraCuuHoSo and a create for each dossier, in that order.
for i in range(2):
    j = journey(out, i + 1)
    check(re.search(r"-> 202, id [0-9a-f-]{36}", j), f"dossier {i + 1} answered 202 with an id")
    steps = [l for l in j.splitlines() if re.match(r"^\s+\+.*national portal", l)]
    want = [f"TraCuuHoSo {CODES[i]}: not found", f"DongBoHoSoMC {CODES[i]}: created"]
    if i == 0:
        want.insert(0, "login tinh-qn: session issued")
    else:  # the second event records a processing step: its progress follows the dossier
        want.append(f"CapNhatTienDoHoSoMC {CODES[i]}: 1 step(s), the last TrangThai")
    check(len(steps) == len(want) and all(w in s for w, s in zip(want, steps)),
          f"the portal received, for dossier {i + 1}: {want} (got {steps})")
    check("the portal's answers recorded on dvcqg.sync.result" in j, f"dossier {i + 1}: the result recorded")
db = os.path.join(d, "hub.db")
results = topic(db, "dvcqg.sync.result")
check(len(results) == 2, f"two results on dvcqg.sync.result ({len(results)})")
# Journey 3: refused by the contract into the DLQ, nothing to the portal.
j = journey(out, 3)
check("refused by the event contract, to dossier-to-dvcqg.dlq" in j and "missing property 'procedure'" in j,
      "the malformed dossier is in the DLQ with the contract's reason")
check(re.search(r"national portal\s+received nothing", j), "the portal received nothing of the malformed dossier")
r2 = subprocess.run([BIN, "dlq", "list", os.path.join(d, "lienthong.yaml"), "dossier-to-dvcqg"], capture_output=True,
                    text=True, timeout=60)
check(r2.returncode == 0 and CODES[2] in r2.stdout, f"dlq list shows the refused dossier: {r2.stderr}")
# Journey 4: signed and verified.
j = journey(out, 4)
check("lt.sig=signed, signer CN=lienthong demo hub" in j, "the document was signed by the hub's key")
check("lt.sig=verified" in j, "the document was verified against the demo CA")
check(os.path.isfile(os.path.join(d, "dms-outbox", "cong-van-123.edxml")), "the document was written to the outbox")
# Journey 5: the callback accepted (its MaXacThuc checked), the payment event, the bank line, matched.
j = journey(out, 5)
txn = re.search(r"transaction (GD[0-9a-f]+)", out)
txn = txn.group(1) if txn else "?"
check("-> HTTP 200, MaLoi 00" in j, "the platform's callback was answered MaLoi 00")
check("MaXacThuc checked: lt.sig=verified, committed to paygov.confirm" in j, "the callback's checksum was checked")
check("payment.confirmed on payment.events, amount 50000" in j, "the mapping made payment.confirmed")
check("line bank.statement.line, amount 50000" in j, "the statement's line went through bank-statement")
check("outcome matched on recon.outcomes" in j, "the reconciliation matched them")
confirms = topic(db, "paygov.confirm")
check(len(confirms) == 1 and confirms[0]["MaGiaoDich"] == txn and re.fullmatch(r"[0-9a-f]{64}", confirms[0]["MaXacThuc"]),
      f"one callback on paygov.confirm, for {txn}, with its MaXacThuc")
check(re.search(r"a forged copy \(SoTien x10 after signing\) -> HTTP 200, MaLoi 0[1-9]", j),
      "the forged callback was answered with an error MaLoi")
check("MaXacThuc wrong: kept on paygov.callback.rejected, never paid" in j, "the forgery was kept aside")
rejected = topic(db, "paygov.callback.rejected")
check(len(rejected) == 1 and rejected[0]["MaGiaoDich"] == txn and rejected[0]["SoTien"] == "500000",
      f"the forged callback, as received, on paygov.callback.rejected ({rejected})")
check([p["amount"] for p in topic(db, "payment.events")] == [50000], "one payment event, of the real amount")
outcomes = [o for o in topic(db, "recon.outcomes") if "outcome" in o]
check([(o["outcome"], o["key"], o["platform"]["amount"], o["bank"]["amount"]) for o in outcomes] ==
      [("matched", txn, 50000, 50000)], f"one outcome, matched, both sides 50000 ({outcomes})")
check(os.listdir(os.path.join(d, "bank", "done")) if os.path.isdir(os.path.join(d, "bank", "done")) else False,
      "the statement file was moved to bank/done/")
r3 = subprocess.run([BIN, "recon", "report", os.path.join(d, "lienthong.yaml"), "reconcile"], capture_output=True,
                    text=True, timeout=60)
try:
    rep = json.loads(r3.stdout)
except ValueError:
    rep = []
check(r3.returncode == 0 and len(rep) == 1 and rep[0]["counts"]["matched"] == 1,
      f"recon report: one day, one match ({r3.stdout[:500]} {r3.stderr[-500:]})")
# Journey 6: VNPost served the entries to a token holder; they became dossier events.
j = journey(out, 6)
check("OAuth2 token issued to the hub" in j, "the VNPost stand-in issued a token")
check("orderTracking after '': 5 entries, the last code 14" in j, "VNPost served the five entries from the start")
check("5 tracking entries committed to vnpost.tracking" in j, "the source committed the five entries")
check("status returned, note delivered" in j, "the last dossier event says returned (delivered)")
entries = topic(db, "vnpost.tracking")
check([e["StatusCode"] for e in entries] == [1, 6, 10, 12, 14] and {e["OrderNumber"] for e in entries} == {CODES[0]},
      f"vnpost.tracking holds the dossier's five entries in order ({entries})")
events = topic(db, "onestop.dossier.status")
check(len(events) == 5 and all(e["event"] == "dossier.postal-updated" and e["dossierCode"] == CODES[0]
                               for e in events) and events[-1].get("status") == "returned",
      f"five dossier events, the last one returned ({events[-1:] if events else events})")
check(topic(db, "tracking-to-onestop.dlq") == [], "no tracking entry refused")

# The exit code says whether every journey arrived: with a tracking mapping that forgets the
# returned status (data read from LT_DATA_DIR, a copy), journey 6 is incomplete and the demo
# says so and exits 1 while the others still arrive.
src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
data = tempfile.mkdtemp(prefix="lt-demo-data-")
for sub in ("schemas", "mappings", "examples"):
    shutil.copytree(os.path.join(src, sub), os.path.join(data, sub), symlinks=True)
tracking = os.path.join(data, "mappings", "vnpost", "tracking-to-status.yaml")
text = open(tracking, encoding="utf-8").read()
broken = text.replace("  - to: status\n    value: returned\n    if: {from: $.StatusCode, in: [14]}\n", "")
check(broken != text, "the tracking mapping's returned rule found (to break it)")
open(tracking, "w", encoding="utf-8").write(broken)
d2 = os.path.join(tempfile.mkdtemp(prefix="lt-demo-"), "demo")
r = subprocess.run([BIN, "demo", "--dir", d2], capture_output=True, text=True, timeout=300,
                   env=dict(os.environ, LT_DATA_DIR=data))
check(r.returncode == 1 and "a journey did not complete" in r.stderr,
      f"an incomplete journey: exit 1 with the reason ({r.returncode}: {r.stderr[-500:]})")
check("outcome matched on recon.outcomes" in journey(r.stdout, 5) and "the last: status ?" in journey(r.stdout, 6),
      "the other journeys still complete; the postal one shows no status")
if not failed:  # kept for a look when something failed
    for x in (data, os.path.dirname(d), os.path.dirname(d2)):
        shutil.rmtree(x, ignore_errors=True)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
