#!/usr/bin/env python3
"""The bank's side of reconciliation (vn-standards.md §4.2): generates the payments a platform
confirms and the bank statement that should account for them, with anomalies injected on
purpose, and drops statement files into a folder the way a bank's SFTP job does (written under a
temp name, renamed into place).

Layouts match mappings/bank/vnpay-fixed.yaml (fixed width, widths in bytes) and
mappings/bank/csv-basic.yaml. Faults: a footer whose count is wrong, a file cut in the middle of
a line, a line cut short inside the file.

As a library (tests/integration/test_recon.py; test_payments_e2e.py starts from what
tests/sim/paygov_sim.py settled, `settled_payments`):
    payments = bank_sim.payments(500, "2026-12-05", rng)
    lines, expected = bank_sim.inject(payments, rng, missing=5, extra=4, wrong_amount=3, duplicate=2)
    text = bank_sim.statement_fixed(lines, "2026-12-05")
As a command:
    bank_sim.py --payments 500 --seed 7 --day 2026-12-05 --out DIR [--csv] [--fault footer|truncated|short-line]
                [--agency 000.00.01.H22 --account 3511.0.1055874]
writes DIR/payments.jsonl (one payment.confirmed event a line), the statement, and
DIR/expected.json (the anomalies a correct reconciliation reports)."""
import argparse
import datetime
import json
import os
import random

VN = datetime.timezone(datetime.timedelta(hours=7))

# mappings/bank/vnpay-fixed.yaml, detail fields in order: (name, width, right-aligned)
DETAIL = [("record_type", 4, False), ("mti", 4, False), ("account", 21, True), ("processing_code", 6, False),
          ("amount", 12, True), ("trace", 40, True), ("transaction_code", 20, False), ("time", 6, False),
          ("txn_date", 4, False), ("payment_date", 4, False), ("device_type", 4, False), ("init_code", 6, False),
          ("txn_no", 6, False), ("response_code", 2, False), ("compare_code", 2, False), ("terminal_id", 8, False),
          ("bonus_info", 30, False), ("merchant_name", 60, False)]
DETAIL_WIDTH = sum(w for _, w, _ in DETAIL)
ACCOUNT = "0011004455667"
MERCHANTS = ["Sở Tư pháp tỉnh", "UBND huyện Đông Hòa", "Sở Kế hoạch và Đầu tư", "Công an tỉnh"]


def payments(n, day, r, agency="000.00.00.H01", account=ACCOUNT, start_hour=8, end_hour=17):
    """n payment.confirmed events of `day`, in time order, amounts in VND."""
    d = datetime.date.fromisoformat(day)
    t0 = datetime.datetime(d.year, d.month, d.day, start_hour, tzinfo=VN)
    span = (end_hour - start_hour) * 3600
    secs = sorted(r.randrange(span) for _ in range(n))
    out = []
    for i, s in enumerate(secs):
        at = t0 + datetime.timedelta(seconds=s)
        out.append({
            "event": "payment.confirmed", "reference": f"HS{i:06d}_{r.randrange(16**6):06x}"[:20],
            "amount": r.choice([20000, 50000, 100000, 150000, 200000, 1000000]) + r.randrange(0, 1000) * 100,
            "currency": "VND", "transactionId": f"GD{d:%y%m%d}{i:07d}", "bank": "970415",
            "paidAt": at.isoformat(), "resultCode": "00", "agency": agency, "account": account,
        })
    return out


def settled_payments(settled, agency=None):
    """The payments a platform settled, as payment events for inject(), in time order: from
    paygov_sim's GET /_sim/settled ({"ref", "txn", "amount", "paid_at" yyyyMMddHHmmss in
    Vietnam time, "agency", "account"}), so the statement accounts for what was really paid."""
    out = []
    for t in settled:
        at = datetime.datetime.strptime(t["paid_at"], "%Y%m%d%H%M%S").replace(tzinfo=VN)
        out.append({"event": "payment.confirmed", "reference": t["ref"], "amount": int(t["amount"]), "currency": "VND",
                    "transactionId": t["txn"], "paidAt": at.isoformat(), "resultCode": "00",
                    "agency": agency or t.get("agency"), "account": t["account"]})
    out.sort(key=lambda p: (p["paidAt"], p["transactionId"]))
    return out


def line_of(p, delay_s=0):
    """The bank line that accounts for payment p, `delay_s` after it (the bank's own clock)."""
    at = datetime.datetime.fromisoformat(p["paidAt"]) + datetime.timedelta(seconds=delay_s)
    return {"transaction_code": p["transactionId"], "amount": p["amount"], "at": at, "account": p["account"],
            "trace": p["reference"]}


def inject(pays, r, missing=0, extra=0, wrong_amount=0, duplicate=0, extra_prefix="XT", extra_before_hour=16):
    """The statement lines for pays with anomalies; returns (lines in time order, expected) where
    expected maps outcome -> sorted keys: what a correct reconciliation reports besides matches."""
    idx = list(range(len(pays)))
    r.shuffle(idx)
    miss = set(idx[:missing])
    wrong = set(idx[missing:missing + wrong_amount])
    dup = set(idx[missing + wrong_amount:missing + wrong_amount + duplicate])
    lines, expected = [], {"missing-in-bank": [], "missing-in-platform": [], "amount-mismatch": [], "duplicate": []}
    for i, p in enumerate(pays):
        if i in miss:
            expected["missing-in-bank"].append(p["transactionId"])
            continue
        ln = line_of(p, r.randrange(0, 90))
        if i in wrong:
            ln["amount"] += r.choice([-1000, 500, 10000])
            expected["amount-mismatch"].append(p["transactionId"])
        lines.append(ln)
        if i in dup:  # the bank books the same transaction twice
            lines.append(dict(ln, at=ln["at"] + datetime.timedelta(seconds=r.randrange(1, 60))))
            expected["duplicate"].append(p["transactionId"])
    d = datetime.datetime.fromisoformat(pays[0]["paidAt"]).date() if pays else datetime.date(2026, 12, 5)
    for k in range(extra):  # credits the platform never confirmed
        at = datetime.datetime(d.year, d.month, d.day, 8, tzinfo=VN) + datetime.timedelta(
            seconds=r.randrange((extra_before_hour - 8) * 3600))
        code = f"{extra_prefix}{d:%y%m%d}{k:07d}"
        account = pays[0]["account"] if pays else ACCOUNT
        lines.append({"transaction_code": code, "amount": 50000 + k, "at": at, "account": account, "trace": f"X{k}"})
        expected["missing-in-platform"].append(code)
    lines.sort(key=lambda x: x["at"])
    for v in expected.values():
        v.sort()
    return lines, expected


def _pad(value, width, right):
    b = str(value).encode()
    if len(b) > width:
        b = b[:width]
    return (b.rjust(width) if right else b.ljust(width))


def detail_fixed(ln, n, r=None):
    at = ln["at"].astimezone(VN)
    v = {"record_type": "0002", "mti": "0210", "account": ln["account"], "processing_code": "000000",
         "amount": f"{ln['amount']:012d}", "trace": ln["trace"], "transaction_code": ln["transaction_code"],
         "time": at.strftime("%H%M%S"), "txn_date": at.strftime("%m%d"), "payment_date": at.strftime("%m%d"),
         "device_type": "MOBI", "init_code": "970415", "txn_no": f"{n % 1000000:06d}", "response_code": "00",
         "compare_code": "01", "terminal_id": "DVCQG001", "bonus_info": "",
         "merchant_name": MERCHANTS[n % len(MERCHANTS)]}
    return b"".join(_pad(v[name], w, right) for name, w, right in DETAIL)


def statement_fixed(lines, day, bank="970415", count=None):
    """The statement as bytes; count: what the footer claims (default: the truth)."""
    d = datetime.date.fromisoformat(day)
    out = [b"0001" + _pad(bank, 6, False) + d.strftime("%d%m%y").encode()]
    out += [detail_fixed(ln, i + 1) for i, ln in enumerate(lines)]
    out.append(b"0009" + f"{len(lines) if count is None else count:09d}".encode() + _pad("BATCH JOB", 20, False) +
               b"235900" + d.strftime("%d%m%y").encode())
    return b"\n".join(out) + b"\n"


def statement_csv(lines, day, count=None, total=None):
    rows = ["statement_date,account,transaction_code,amount,paid_at,description"]
    for ln in lines:
        at = ln["at"].astimezone(VN)
        rows.append(f"{day},{ln['account']},{ln['transaction_code']},{ln['amount']},{at:%Y-%m-%d %H:%M:%S},"
                    f"\"Nộp phí, lệ phí {ln['trace']}\"")
    rows.append(f"TOTAL,{len(lines) if count is None else count},"
                f"{sum(ln['amount'] for ln in lines) if total is None else total}")
    return ("\r\n".join(rows) + "\r\n").encode()


def fault(data, kind, r):
    """A broken copy of a statement: 'footer' (count off by one), 'truncated' (cut inside a line
    near the end, no footer), 'short-line' (one detail line loses its last bytes)."""
    ls = data.split(b"\n")
    if kind == "footer":
        f = ls[-2]
        n = int(f[4:13])
        ls[-2] = f[:4] + f"{n + 1:09d}".encode() + f[13:]
        return b"\n".join(ls)
    if kind == "truncated":
        cut = len(data) - len(ls[-2]) - 1 - DETAIL_WIDTH // 2 - 1
        return data[:cut]
    if kind == "short-line":
        k = r.randrange(1, len(ls) - 2)
        ls[k] = ls[k][:DETAIL_WIDTH - 7]
        return b"\n".join(ls)
    raise ValueError(kind)


def drop(folder, name, data):
    """Writes a statement the way a bank's job does: temp name, then rename into place."""
    tmp = os.path.join(folder, name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(folder, name))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--payments", type=int, default=500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--day", default="2026-12-05")
    ap.add_argument("--out", required=True)
    ap.add_argument("--csv", action="store_true")
    ap.add_argument("--fault", choices=["footer", "truncated", "short-line"])
    ap.add_argument("--missing", type=int, default=5)
    ap.add_argument("--extra", type=int, default=4)
    ap.add_argument("--wrong-amount", type=int, default=3)
    ap.add_argument("--duplicate", type=int, default=2)
    ap.add_argument("--agency", default="000.00.00.H01", help="the payments' agency (MaDonVi)")
    ap.add_argument("--account", default=ACCOUNT, help="the payments' and lines' account (TKThuHuong)")
    a = ap.parse_args()
    r = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    pays = payments(a.payments, a.day, r, agency=a.agency, account=a.account)
    lines, expected = inject(pays, r, a.missing, a.extra, a.wrong_amount, a.duplicate)
    data = statement_csv(lines, a.day) if a.csv else statement_fixed(lines, a.day)
    if a.fault:
        data = fault(data, a.fault, r)
    with open(os.path.join(a.out, "payments.jsonl"), "w") as f:
        for p in pays:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
    drop(a.out, f"statement-{a.day}.{'csv' if a.csv else 'txt'}", data)


if __name__ == "__main__":
    main()
