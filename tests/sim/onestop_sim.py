#!/usr/bin/env python3
"""onestop_sim: a province's one-stop system for tests (standard library only, 127.0.0.1 only).

It plays dossiers through realistic life cycles and POSTs one event per dossier change to the
hub's `onestop` connector (schemas/onestop/dossier-event.schema.json), each signed with
X-Signature-256: sha256=HMAC-SHA256(body) and named by an Idempotency-Key (its eventId), one
dossier's events strictly in order (the next only after the hub answered 202), many dossiers at
once. An event that got no answer or a 503 is sent again, unchanged, until the hub takes it.
It also serves the REST API the hub reports outcomes to (POST /api/lienthong/dossiers/CODE/
outcomes, checked like the real system would: the signature, JSON, the code in the path matching
the body) and records every call it receives.

Life cycles (seeded): `full` (created, received, 13-17 processing steps with a supplement
request and its receipt and a payment request and its payment, done with result papers, returned
by post: 20+ events), `short` (created, received, a few steps, done, returned at the counter),
`withdrawn`, `rejected`, `suspended`, and two kinds of invalid dossiers: `bad-contract` (an
event the event contract refuses: a step without a handler) and `bad-portal` (a procedure code
the portal does not know).

Command line: onestop_sim.py --hub URL --secret-file FILE [--dossiers N] [--seed N] [--port N]
[--port-file F] [--log F]: plays N dossiers against URL (the hub's event endpoint), serves the
outcome API meanwhile, prints a summary and keeps serving until interrupted. Tests import it.
"""
import argparse
import hashlib
import hmac
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VN = timezone(timedelta(hours=7))
UNIT = "000.00.01.H22"
AGENCY = "UBND thành phố Hạ Long"
PROCEDURES = [
    ("1.001612.000.00.00.H22", "Đăng ký thành lập hộ kinh doanh", "G09-TC01", "Thành lập và hoạt động của hộ kinh doanh"),
    ("3.000181.000.00.00.H22", "Cấp bản sao văn bằng, chứng chỉ từ sổ gốc", "G03-GD10", "Giáo dục Trung học"),
    ("1.004222.000.00.00.H22", "Cấp giấy phép xây dựng nhà ở riêng lẻ", "G12-XD05", "Quản lý hoạt động xây dựng"),
    ("2.000889.000.00.00.H22", "Đăng ký khai sinh", "G01-HT01", "Hộ tịch"),
]
UNKNOWN_PROCEDURE = "9.999999.000.00.00.H22"
HANDLERS = [
    ("Nguyễn Văn An", "Chuyên viên", "Bộ phận một cửa"),
    ("Trần Thị Bích Ngọc", "Chuyên viên", "Phòng Kinh tế"),
    ("Lê Văn Cường", "Trưởng phòng", "Phòng Quản lý đô thị"),
    ("Phạm Thị Dung", "Phó Chủ tịch", "UBND thành phố"),
    # longer than 50 characters, with a space at the cut: NguoiXuLy must come out trimmed
    ("Trưởng phòng Phòng Kinh tế, Hạ tầng Đô thị thị xã Đông Triều", None, "Phòng Kinh tế"),
]
NAMES = ["Nguyễn Văn Hùng", "Trần Thị Lan", "Lê Minh Tuấn", "Phạm Thu Hà", "Hoàng Văn Nam", "Vũ Thị Mai",
         "Công ty TNHH Hạ Long Xanh", "Đặng Quốc Bảo"]


def iso(t, z=False):
    """RFC 3339; some events in UTC ("Z"), most in +07:00, as one-stop systems mix them."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if z else t.isoformat()


def kinds_for(n, rnd):
    """Life-cycle kinds for n dossiers: mostly full and short, a few of every other kind."""
    base = ["full"] * 40 + ["short"] * 30 + ["withdrawn"] * 10 + ["rejected"] * 6 + ["suspended"] * 6 + \
        ["bad-contract"] * 4 + ["bad-portal"] * 4
    rnd.shuffle(base)
    return [base[i % len(base)] for i in range(n)]


class Dossier:
    """One dossier's state and the events of its life cycle."""

    def __init__(self, idx, kind, rnd, day, prefix=UNIT):
        self.kind = kind
        self.code = f"{prefix}-{day:%y%m%d}-{idx:04d}"
        proc = PROCEDURES[idx % len(PROCEDURES)]
        if kind == "bad-portal":
            proc = (UNKNOWN_PROCEDURE, "Thủ tục không có trong CSDL quốc gia", "G99", "Khác")
        self.rnd = rnd
        name = NAMES[idx % len(NAMES)]
        business = name.startswith("Công ty")
        start = datetime(day.year, day.month, day.day, 8, 0, tzinfo=VN) + timedelta(minutes=7 * (idx % 60))
        self.t = start
        channel = rnd.choice(["counter", "online", "post"])
        self.doc = {
            "event": "dossier.created", "eventId": "", "dossierCode": self.code,
            "receiptNo": f"BN-{day:%Y}-{idx:06d}",
            "procedure": {"code": proc[0], "name": proc[1], "field": {"code": proc[2], "name": proc[3]}},
            "applicant": {"type": "business" if business else "citizen", "name": name},
            "agency": {"code": UNIT, "name": AGENCY},
            "channel": channel,
            "resultDelivery": "post" if kind == "full" else "counter",
            "summary": f"{proc[1]} - {name}",
            "status": "registered",
            "dates": {"received": iso(start), "due": iso(start + timedelta(days=7, hours=9))},
            "fees": [{"code": "LP01", "name": "Lệ phí", "type": "charge", "amount": 50000 + 500 * (idx % 7),
                      "collection": "before"}],
            "attachments": [{"id": f"{idx}-1", "name": "don-de-nghi.pdf", "componentCode": "TP1",
                             "url": f"https://dvc.quangninh.gov.vn/files/{idx}-1", "digitised": idx % 2 == 0}],
        }
        if not business:
            number = f"0220{idx:08d}" if idx % 3 else f"22{idx:07d}"  # 12-digit CCCD or 9-digit CMND
            self.doc["applicant"]["id"] = {"kind": "cccd", "number": number}  # kind stays "cccd": old data
        if channel == "online":
            self.doc["applicant"]["accountId"] = f"VNEID-{idx:06d}"
            self.doc["applicant"]["vneidVerified"] = True
            self.doc["dates"]["submitted"] = iso(start - timedelta(minutes=30))
        self.events = []
        self.build()

    def tick(self, hours):
        self.t += timedelta(hours=hours, minutes=self.rnd.randrange(0, 50))

    def emit(self, event, status, handler, note, extra=None):
        self.doc["event"] = event
        self.doc["status"] = status
        for k, v in (extra or {}).items():
            self.doc[k] = v
        n = len(self.events)
        self.doc["eventId"] = f"{self.code}#{n}"
        h = HANDLERS[handler % len(HANDLERS)]
        step = {"status": status, "handler": {"name": h[0], "department": h[2]}, "note": note,
                "changedAt": iso(self.t, z=n % 4 == 3)}
        if h[1]:
            step["handler"]["title"] = h[1]
        if status == "processing":
            step["stepStarted"] = iso(self.t)
            step["stepDue"] = iso(self.t + timedelta(days=2))
        if self.kind == "bad-contract" and n == 2:
            del step["handler"]  # the event contract requires a handler
        self.doc["step"] = step
        self.events.append(json.loads(json.dumps(self.doc, ensure_ascii=False)))

    def build(self):
        r = self.rnd
        self.emit("dossier.created", "registered", 0, "Tiếp nhận hồ sơ")
        if self.kind == "rejected":
            self.tick(2)
            self.doc["dates"]["rejected"] = iso(self.t)
            self.emit("dossier.rejected", "rejected", 0, "Hồ sơ không đủ điều kiện tiếp nhận")
            return
        self.tick(1)
        self.emit("dossier.received", "received", 0, "Đã tiếp nhận, chuyển phòng chuyên môn")
        steps = {"full": r.randrange(13, 18), "short": r.randrange(2, 5), "withdrawn": r.randrange(2, 4),
                 "suspended": 3, "bad-contract": 3, "bad-portal": 2}[self.kind]
        for i in range(steps):
            self.tick(3)
            if self.kind == "full" and i == 3:
                self.doc["supplements"] = [{"id": f"BS-{self.code}", "requestedBy": HANDLERS[1][0],
                                            "content": "Bổ sung bản sao hợp đồng thuê nhà", "requestedAt": iso(self.t),
                                            "previousDue": self.doc["dates"]["due"]}]
                self.emit("dossier.supplement-requested", "supplement-requested", 1, "Yêu cầu bổ sung hồ sơ")
                self.tick(20)
                self.doc["supplements"][0].update(receivedBy=HANDLERS[0][0], receivedAt=iso(self.t),
                                                  newDue=iso(self.t + timedelta(days=7)))
                self.doc["dates"]["due"] = iso(self.t + timedelta(days=7))
                self.emit("dossier.supplement-received", "processing", 0, "Đã nhận hồ sơ bổ sung")
                continue
            if self.kind == "full" and i == 6:
                self.emit("dossier.step", "payment-requested", 0, "Đề nghị nộp phí, lệ phí")
                self.tick(5)
                self.doc["paidOnline"] = self.doc["channel"] == "online"
                self.emit("dossier.paid", "processing", 0, "Đã nộp phí, lệ phí")
                continue
            if self.kind == "suspended" and i == 2:
                self.emit("dossier.step", "suspended", 3, "Tạm dừng xử lý chờ ý kiến cơ quan liên quan")
                return
            self.emit("dossier.step", "processing", 1 + i % 4, f"Bước xử lý {i + 1}")
        if self.kind == "withdrawn":
            self.tick(4)
            self.emit("dossier.withdrawn", "withdrawn", 0, "Công dân rút hồ sơ")
            return
        self.tick(6)
        self.doc["dates"]["finished"] = iso(self.t)
        self.doc["results"] = [{"id": f"KQ-{self.code}", "code": f"GCN-{self.code[-4:]}", "name": "Giấy chứng nhận",
                                "componentCode": "KQ", "url": f"https://dvc.quangninh.gov.vn/kq/{self.code}"}]
        self.emit("dossier.done", "resolved", 3, "Đã ký duyệt kết quả")
        self.tick(18)
        self.doc["dates"]["returned"] = iso(self.t)
        if self.kind == "full":
            self.doc["returnInfo"] = f"VNPost EL{int(hashlib.sha256(self.code.encode()).hexdigest(), 16) % 10**9:09d}VN"
            self.emit("dossier.returned", "returned", 0, "Đã trả kết quả qua bưu chính công ích")
        else:
            self.doc["returnInfo"] = "Trả trực tiếp tại Bộ phận một cửa"
            self.emit("dossier.returned", "returned", 0, "Đã trả kết quả trực tiếp")


def make_dossiers(n, seed, first=1, day=datetime(2024, 1, 15)):
    rnd = random.Random(seed)
    kinds = kinds_for(n, rnd)
    return [Dossier(first + i, kinds[i], random.Random(seed * 7919 + first + i), day) for i in range(n)]


class OutcomeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms delayed-ACK stall
    server_version = "onestop_sim/1"

    def log_message(self, fmt, *a):
        pass

    def answer(self, status, obj):
        body = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        sim = self.server.sim
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {"time": time.time(), "path": self.path, "headers": headers, "raw": raw.decode("utf-8", "replace")}
        status, why = 200, None
        want = "sha256=" + hmac.new(sim.secret, raw, hashlib.sha256).hexdigest()
        parts = self.path.split("/")
        code = urllib.parse.unquote(parts[4]) if len(parts) == 6 and parts[5] == "outcomes" else None
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not hmac.compare_digest(headers.get("x-signature-256", ""), want):
            status, why = 401, "signature"
        elif not code or not self.path.startswith("/api/lienthong/dossiers/"):
            status, why = 404, "path"
        elif not isinstance(body, dict) or body.get("dossierCode") != code or body.get("outcome") not in ("OK", "REJECTED"):
            status, why = 400, "body"
        elif not headers.get("idempotency-key"):
            status, why = 400, "idempotency-key"
        entry.update(status=status, body=body, why=why)
        sim.record(entry)
        self.answer(status, {"ok": status == 200, "error": why})


class OneStop:
    """The one-stop system: outcome server + event player."""

    def __init__(self, secret, log=None, port=0):
        self.secret = secret
        self.lock = threading.Lock()
        self.received = []  # outcome calls
        self.log = open(log, "a") if log else None
        self.srv = ThreadingHTTPServer(("127.0.0.1", port), OutcomeHandler)
        self.srv.daemon_threads = True
        self.srv.sim = self
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        self.answers = {}  # eventId -> (status, body)
        self.posts = 0
        self.resends = 0

    def record(self, entry):
        with self.lock:
            self.received.append(entry)
            if self.log:
                self.log.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self.log.flush()

    def outcomes(self):
        with self.lock:
            return [e for e in self.received if e["status"] == 200]

    def post(self, url, ev):
        body = json.dumps(ev, ensure_ascii=False).encode()
        sig = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        u = urllib.parse.urlsplit(url)
        for attempt in range(3000):
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            try:
                conn.request("POST", u.path, body=body, headers={
                    "Content-Type": "application/json", "X-Signature-256": sig, "Idempotency-Key": ev["eventId"]})
                r = conn.getresponse()
                text = r.read()
                if r.status != 503:
                    with self.lock:
                        self.posts += 1
                        self.resends += attempt
                    return r.status, json.loads(text or b"{}")
            except (OSError, http.client.HTTPException, ValueError):
                pass
            finally:
                conn.close()
            time.sleep(0.1)  # the hub is down or paused: the same event again
        raise RuntimeError(f"the hub never took event {ev['eventId']}")

    def play(self, url, dossiers, threads=8):
        """Plays every dossier's events in order (dossiers in parallel); returns {eventId: (status, body)}."""
        queue = list(dossiers)
        qlock = threading.Lock()

        def worker():
            while True:
                with qlock:
                    if not queue:
                        return
                    d = queue.pop(0)
                for ev in d.events:
                    a = self.post(url, ev)
                    with self.lock:
                        self.answers[ev["eventId"]] = a

        ts = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
        for t in ts:
            t.start()
        return ts

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hub", required=True, help="the hub's event URL, e.g. http://127.0.0.1:8481/onestop/events")
    p.add_argument("--secret-file", required=True)
    p.add_argument("--dossiers", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    a = p.parse_args(argv)
    secret = open(a.secret_file, "rb").read().strip()
    sim = OneStop(secret, a.log, a.port)
    if a.port_file:
        with open(a.port_file, "w") as f:
            f.write(str(sim.port))
    ds = make_dossiers(a.dossiers, a.seed)
    for t in sim.play(a.hub, ds):
        t.join()
    print(json.dumps({"dossiers": len(ds), "events": sum(len(d.events) for d in ds), "posts": sim.posts,
                      "resends": sim.resends}))
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        sim.close()


if __name__ == "__main__":
    main(sys.argv[1:])
