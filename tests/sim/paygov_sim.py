#!/usr/bin/env python3
"""paygov_sim: the DVCQG payment platform (PayGov, vn-standards.md §3.4) for tests, standard
library only. It serves the partner API (init transaction, get bill, get receipt, refund),
checks every MaXacThuc it receives the way the platform would, and, once a transaction is
initiated, plays the citizen paying: it sends the confirm callback (ppConfirmTransaction) to
the hub and checks the hub's signed reply. Everything it receives and sends is recorded as JSON
lines in --log. It listens on 127.0.0.1 only.

MaXacThuc: --algorithm sha256 is SHA-256 hex of the fields joined with "|" then "|KEY";
hmac-sha256 is HMAC-SHA256 hex with KEY over the fields joined with "|". Field lists:
  init      LoaiBanTin|PhienBan|MaDoiTac|MaThamChieu|SoTien|LoaiHinhThanhToan|MaKenhThanhToan|
            MaThietBi|NgonNgu|MaTienTe|MaNganHang|ThongTinGiaoDich|ThoiGianGD|Ip
  get-bill, get-receipt   LoaiBanTin|PhienBan|MaDoiTac|MaThamChieu|ThoiGianGD
  refund    LoaiBanTin|PhienBan|MaDoiTac|MaThamChieu|MaGiaoDich|SoTien|ThoiGianGD
  confirm   LoaiBanTin|MaLoi|MaDoiTac|MaThamChieu|SoTien|MaTienTe|MaGiaoDich|MaNganHang|
            ThoiGianGD|ThongTinGiaoDich (what the sim sends)
  reply     MaLoi|MaDoiTac|MaThamChieu|ThoiGianGD (what it expects back from the hub)
A field holding "|" is refused (the checksum would be ambiguous).

API (POST, JSON): answers {"MaLoi": "00", "MoTaLoi": ..., ...} on success; errors are HTTP 400
{"error_code": CODE, "error_message": TEXT} (with --errors-as-maloi: HTTP 200 {"MaLoi": CODE,
"MoTaLoi": TEXT}, as some platform versions answer): 01 bad MaXacThuc, 02 malformed or missing field,
03 other partner, 04 unknown transaction, 05 MaThamChieu reused with other content, 06 not paid
(receipt, refund), 07 refund larger than what was paid or to another MaGiaoDich.
  /init-transaction  creates the transaction (the same init again gets the same answer, so a
                     client may retry); schedules the payment (callback) unless --no-pay
  /get-bill          the transaction's bill and state
  /get-receipt       the receipt of a paid transaction
  /refund            refunds (part of) a paid transaction, once per refund reference MaThamChieuHoan

Faults (fractions, drawn per call or per transaction with --seed):
  --fail-rate F      API calls answered --fail-status (default 503) without any effect
  --slow-rate F      API calls answered only after --slow-for seconds (effect applied first)
  --bad-mac-rate F   transactions whose only callback carries a wrong MaXacThuc (a forgery:
                     the amount is changed after the checksum); never paid
  --duplicate-rate F transactions whose (good) callback is sent 2-3 times
  --early-rate F     transactions whose callback is sent, and answered, before the init's answer
  --decline-rate F   transactions the citizen's bank declines: callback MaLoi "51"
  --pay-delay S      seconds between the init and its callback (default 0.2)

Callbacks go to --callback URL. A callback that gets no answer, a 5xx, or a reply without a
valid MaXacThuc is sent again (every 0.5-2 s, for up to --callback-give-up seconds), as the
platform does: a hub that was down gets it when it is back.

The log, one JSON object per line: {"kind": "api", "path", "body", "mac_ok", "answer",
"status"} for each call received; {"kind": "callback", "ref", "attempt", "body", "status",
"reply", "reply_mac_ok", "fault"} for each callback attempt; {"kind": "plan", "ref", "fault",
"amount", "txn"} once per transaction when its payment is decided.

--clock 2026-12-05T10:00:00 starts the platform's clock (every ThoiGianGD it writes) at that
Vietnam time; it runs on in real time from there (a test's business day, whatever today is).

Control: GET /_sim/stats {"transactions", "paid", "pending_callbacks", "api_calls", "bad_mac_received",
"by_fault"}; GET /_sim/settled: the transactions the platform settled (paid, every callback copy
answered with a valid signed reply), [{"ref", "txn", "amount", "paid_at" (ThoiGianGD), "agency",
"account", "hoso"}]: what the bank's statement accounts for; POST /_sim/config {"fail_rate": 0.5, ...} any option by its long name with "_";
POST /_sim/pay {"ref": R, "fault": "good|bad-mac|duplicate|decline"} sends a callback now.
"""
import argparse
import calendar
import hashlib
import hmac
import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

F_INIT = ["LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "SoTien", "LoaiHinhThanhToan", "MaKenhThanhToan",
          "MaThietBi", "NgonNgu", "MaTienTe", "MaNganHang", "ThongTinGiaoDich", "ThoiGianGD", "Ip"]
F_BILL = ["LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"]
F_REFUND = ["LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "MaGiaoDich", "SoTien", "ThoiGianGD"]
F_CONFIRM = ["LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "SoTien", "MaTienTe", "MaGiaoDich", "MaNganHang",
             "ThoiGianGD", "ThongTinGiaoDich"]
F_REPLY = ["MaLoi", "MaDoiTac", "MaThamChieu", "ThoiGianGD"]


CLOCK_OFFSET = 0.0  # --clock: the platform's clock starts at a given Vietnam time and runs on


def now_vn():
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + CLOCK_OFFSET + 7 * 3600))


def text_of(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return v
    raise ValueError("not a string or an integer")


def mac(alg, key, obj, fields):
    """MaXacThuc over obj's fields; raises ValueError naming a missing field or one with '|'."""
    vals = []
    for f in fields:
        if f not in obj or obj[f] is None:
            raise ValueError(f"field {f} is missing")
        t = text_of(obj[f])
        if "|" in t:
            raise ValueError(f"field {f} contains '|'")
        vals.append(t)
    joined = "|".join(vals)
    if alg == "sha256":
        return hashlib.sha256((joined + "|" + key).encode()).hexdigest()
    return hmac.new(key.encode(), joined.encode(), hashlib.sha256).hexdigest()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--key-file", required=True)
    p.add_argument("--algorithm", default="sha256", choices=["sha256", "hmac-sha256"])
    p.add_argument("--partner", required=True)
    p.add_argument("--callback")
    p.add_argument("--no-pay", action="store_true")
    p.add_argument("--pay-delay", type=float, default=0.2)
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--fail-status", type=int, default=503)
    p.add_argument("--slow-rate", type=float, default=0.0)
    p.add_argument("--slow-for", type=float, default=3.0)
    p.add_argument("--bad-mac-rate", type=float, default=0.0)
    p.add_argument("--duplicate-rate", type=float, default=0.0)
    p.add_argument("--early-rate", type=float, default=0.0)
    p.add_argument("--decline-rate", type=float, default=0.0)
    p.add_argument("--callback-give-up", type=float, default=300.0)
    p.add_argument("--errors-as-maloi", action="store_true")
    p.add_argument("--clock", help="Vietnam time YYYY-MM-DDTHH:MM:SS the platform's clock starts at (ThoiGianGD)")
    return p.parse_args(argv)


class Sim:
    def __init__(self, args):
        self.args = args
        with open(args.key_file) as f:
            self.key = f.read().rstrip("\r\n")
        self.cfg = {k: v for k, v in vars(args).items() if k not in ("port", "port_file", "log", "key_file", "seed")}
        self.lock = threading.Lock()
        self.rng = random.Random(args.seed)
        self.log = open(args.log, "a") if args.log else None
        self.txns = {}  # MaThamChieu -> transaction
        self.refunds = {}  # MaThamChieuHoan -> answer
        self.pending = 0
        self.api_calls = 0
        self.bad_mac_received = 0
        self.by_fault = {}
        self.seq = 0

    def record(self, entry):
        with self.lock:
            if self.log:
                self.log.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self.log.flush()

    # ------------------------------------------------------------------ callbacks
    def plan(self, ref):
        """Decides how this transaction is paid (once per transaction)."""
        with self.lock:
            cfg = dict(self.cfg)
            r = self.rng.random()
            early = self.rng.random() < cfg["early_rate"]
        t = self.txns[ref]
        fault = "good"
        edges = [("bad-mac", cfg["bad_mac_rate"]), ("duplicate", cfg["duplicate_rate"]),
                 ("decline", cfg["decline_rate"])]
        acc = 0.0
        for name, rate in edges:
            acc += rate
            if r < acc:
                fault = name
                break
        with self.lock:
            self.seq += 1
            t["txn"] = f"GD{int(time.time()) % 100000:05d}{self.seq:06d}"
            t["fault"] = fault
            self.by_fault[fault] = self.by_fault.get(fault, 0) + 1
        self.record({"kind": "plan", "ref": ref, "fault": fault, "early": early, "amount": t["amount"],
                     "txn": t["txn"], "agency": t.get("agency"), "account": t.get("account")})
        return fault, early

    def callback_body(self, ref, fault):
        t = self.txns[ref]
        body = {"LoaiBanTin": "ConfirmTransaction", "MaLoi": "51" if fault == "decline" else "00",
                "MaDoiTac": self.args.partner, "MaThamChieu": ref, "SoTien": str(t["amount"]), "MaTienTe": "VND",
                "MaGiaoDich": t["txn"], "MaNganHang": "VCB", "ThoiGianGD": t.get("paid_at") or now_vn(),
                "ThongTinGiaoDich": t["info"]}
        t["paid_at"] = body["ThoiGianGD"]  # a repeated callback is the same callback
        body["MaXacThuc"] = mac(self.cfg["algorithm"], self.key, body, F_CONFIRM)
        if t.get("hoso"):
            body["MaHoSo"] = t["hoso"]
        if fault == "bad-mac":  # tampered after signing: 10x the amount under the old checksum
            body["SoTien"] = str(t["amount"] * 10)
        return body

    def send_callback(self, ref, fault, copies=1):
        """Sends the callback (copies times, each until answered) and records every attempt."""
        body = self.callback_body(ref, fault)
        data = json.dumps(body, ensure_ascii=False).encode()
        for copy in range(copies):
            give_up = time.time() + self.cfg["callback_give_up"]
            attempt = 0
            while True:
                attempt += 1
                status, reply, ok = None, None, False
                try:
                    req = urllib.request.Request(self.cfg["callback"], data=data, method="POST",
                                                 headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(req, timeout=10) as r:
                        status, raw = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, raw = e.code, e.read()
                except (urllib.error.URLError, ConnectionError, OSError) as e:
                    raw = str(e).encode()
                try:
                    reply = json.loads(raw)
                except ValueError:
                    reply = raw.decode(errors="replace")
                if status == 200 and isinstance(reply, dict):
                    try:
                        want = mac(self.cfg["algorithm"], self.key, reply, F_REPLY)
                        ok = reply.get("MaXacThuc", "").lower() == want
                    except ValueError:
                        ok = False
                self.record({"kind": "callback", "ref": ref, "copy": copy, "attempt": attempt, "fault": fault,
                             "body": body, "status": status, "reply": reply, "reply_mac_ok": ok})
                if ok or time.time() > give_up:
                    break
                time.sleep(0.5 + self.rng.random() * 1.5)
        t = self.txns[ref]
        with self.lock:
            if fault in ("good", "duplicate"):
                t["state"] = "paid"
            elif fault == "decline":
                t["state"] = "declined"

    def pay_now(self, ref, fault):
        copies = self.rng.randint(2, 3) if fault == "duplicate" else 1
        try:
            self.send_callback(ref, fault, copies)
        finally:
            with self.lock:
                self.pending -= 1


def err(code, text):
    return 400, {"error_code": code, "error_message": text}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *a):
        pass

    def send(self, status, obj):
        body = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        sim = self.server.sim
        if self.path == "/_sim/stats":
            with sim.lock:
                paid = sum(1 for t in sim.txns.values() if t.get("state") == "paid")
                return self.send(200, {"transactions": len(sim.txns), "paid": paid, "pending_callbacks": sim.pending,
                                       "api_calls": sim.api_calls, "bad_mac_received": sim.bad_mac_received,
                                       "by_fault": sim.by_fault})
        if self.path == "/_sim/settled":
            with sim.lock:
                out = [{"ref": ref, "txn": t["txn"], "amount": t["amount"], "paid_at": t["paid_at"],
                        "agency": t.get("agency"), "account": t.get("account"), "hoso": t.get("hoso")}
                       for ref, t in sim.txns.items() if t.get("state") == "paid"]
            return self.send(200, out)
        self.send(404, {"error": "unknown path"})

    def do_POST(self):
        sim = self.server.sim
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.path.startswith("/_sim/"):
            return self.control(sim, raw)
        with sim.lock:
            sim.api_calls += 1
            cfg = dict(sim.cfg)
            r_fail, r_slow = sim.rng.random(), sim.rng.random()
        entry = {"kind": "api", "time": time.time(), "path": self.path,
                 "idempotency_key": self.headers.get("Idempotency-Key"), "body": raw.decode("utf-8", "replace")}
        if r_fail < cfg["fail_rate"]:
            entry.update(status=cfg["fail_status"], answer={"error": "simulated failure"})
            sim.record(entry)
            return self.send(cfg["fail_status"], {"error_code": "99", "error_message": "Hệ thống bận"})
        try:
            req = json.loads(raw)
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError:
            status, ans = err("02", "Dữ liệu không phải JSON")
            entry.update(status=status, answer=ans, mac_ok=False)
            sim.record(entry)
            return self.send(status, ans)
        path = self.path.split("?")[0]
        fields = {"/init-transaction": F_INIT, "/get-bill": F_BILL, "/get-receipt": F_BILL,
                  "/refund": F_REFUND}.get(path)
        if fields is None:
            entry.update(status=404, answer={"error": "unknown path"})
            sim.record(entry)
            return self.send(404, {"error_code": "404", "error_message": "unknown path"})
        try:
            want = mac(cfg["algorithm"], sim.key, req, fields)
            entry["mac_ok"] = str(req.get("MaXacThuc", "")).lower() == want
            status, ans = (200, None) if entry["mac_ok"] else err("01", "Sai mã xác thực")
        except ValueError as e:
            entry["mac_ok"] = False
            status, ans = err("02", str(e))
        if not entry["mac_ok"]:
            with sim.lock:
                sim.bad_mac_received += 1
        elif req.get("MaDoiTac") != sim.args.partner:
            status, ans = err("03", "Sai mã đối tác")
        else:
            status, ans, after = self.apply(sim, path, req)
            if after:
                after()  # an early callback: sent and answered before the init's answer
        if cfg["errors_as_maloi"] and status == 400 and "error_code" in ans:
            status, ans = 200, {"MaLoi": ans["error_code"], "MoTaLoi": ans["error_message"]}
        entry.update(status=status, answer=ans)
        sim.record(entry)
        if r_slow < cfg["slow_rate"]:
            time.sleep(cfg["slow_for"])
        try:
            self.send(status, ans)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def apply(self, sim, path, req):
        """(status, answer, callable to run before answering or None)."""
        ref = req.get("MaThamChieu")
        if not isinstance(ref, str) or not ref or len(ref) > 20:
            return err("02", "MaThamChieu thiếu hoặc dài quá 20 ký tự") + (None,)
        if path == "/init-transaction":
            amount = req.get("SoTien")
            if not isinstance(amount, str) or not amount.isdigit() or amount.startswith("0"):
                return err("02", "SoTien phải là số nguyên dương") + (None,)
            if req.get("MaTienTe") != "VND":
                return err("02", "MaTienTe phải là VND") + (None,)
            bl = req.get("ThongTinBienLai") or {}
            content = (amount, req.get("ThongTinGiaoDich"), json.dumps(bl, sort_keys=True))
            with sim.lock:
                t = sim.txns.get(ref)
                new = t is None
                if new:
                    t = sim.txns[ref] = {"amount": int(amount), "content": content, "state": "new",
                                         "info": req.get("ThongTinGiaoDich") or "", "agency": bl.get("MaDonVi"),
                                         "account": bl.get("TKThuHuong"), "hoso": bl.get("MaHoSo"), "refunded": 0}
                    t["answer"] = {"MaLoi": "00", "MoTaLoi": "Thành công", "MaThamChieu": ref,
                                   "UrlThanhToan": f"https://paygov.example/pay/{ref}", "ThoiGianGD": now_vn()}
            if not new and t["content"] != content:
                return err("05", "MaThamChieu đã dùng cho giao dịch khác") + (None,)
            after = None
            if new and not sim.cfg["no_pay"] and sim.cfg["callback"]:
                fault, early = sim.plan(ref)
                with sim.lock:
                    sim.pending += 1
                if early:
                    after = lambda: sim.pay_now(ref, fault)
                else:
                    threading.Timer(sim.cfg["pay_delay"], sim.pay_now, (ref, fault)).start()
            return 200, t["answer"], after
        with sim.lock:
            t = sim.txns.get(ref)
        if t is None:
            return err("04", "Không tìm thấy giao dịch") + (None,)
        if path == "/get-bill":
            return 200, {"MaLoi": "00", "MoTaLoi": "Thành công", "MaThamChieu": ref, "SoTien": str(t["amount"]),
                         "TrangThai": t["state"], "MaDonVi": t.get("agency"), "TKThuHuong": t.get("account")}, None
        if t["state"] != "paid":
            return err("06", "Giao dịch chưa được thanh toán") + (None,)
        if path == "/get-receipt":
            return 200, {"MaLoi": "00", "MoTaLoi": "Thành công", "MaThamChieu": ref, "MaGiaoDich": t["txn"],
                         "SoTien": str(t["amount"]), "ThoiGianGD": t["paid_at"],
                         "BienLai": {"SoBienLai": f"BL-{t['txn']}", "MaDonVi": t.get("agency")}}, None
        # refund: once per refund reference; never more than was paid, only to the paid MaGiaoDich
        hoan = req.get("MaThamChieuHoan") or f"{ref}:{req.get('ThoiGianGD')}"
        with sim.lock:
            if hoan in sim.refunds:
                return 200, sim.refunds[hoan], None
            amount = req.get("SoTien")
            if req.get("MaGiaoDich") != t["txn"] or not str(amount).isdigit() or \
                    int(amount) + t["refunded"] > t["amount"] or int(amount) <= 0:
                return err("07", "Số tiền hoàn hoặc mã giao dịch không hợp lệ") + (None,)
            t["refunded"] += int(amount)
            ans = {"MaLoi": "00", "MoTaLoi": "Thành công", "MaThamChieu": ref, "MaGiaoDich": t["txn"],
                   "SoTienHoan": str(amount), "MaGiaoDichHoan": f"HT{t['txn']}-{len(sim.refunds) + 1}"}
            sim.refunds[hoan] = ans
        return 200, ans, None

    def control(self, sim, raw):
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            return self.send(400, {"error": "control body is not JSON"})
        if self.path == "/_sim/config":
            with sim.lock:
                for k, v in req.items():
                    if k not in sim.cfg:
                        return self.send(400, {"error": f"unknown option {k}"})
                    sim.cfg[k] = v
                return self.send(200, sim.cfg)
        if self.path == "/_sim/pay":
            ref = req.get("ref")
            if ref not in sim.txns:
                return self.send(404, {"error": "unknown transaction"})
            with sim.lock:
                sim.pending += 1
                sim.seq += 1
                sim.txns[ref].setdefault("txn", f"GD{sim.seq:011d}")
            fault = req.get("fault", "good")
            sim.record({"kind": "plan", "ref": ref, "fault": fault, "manual": True})
            threading.Thread(target=sim.pay_now, args=(ref, fault), daemon=True).start()
            return self.send(200, {"ok": True})
        return self.send(404, {"error": "unknown control path"})


class Process:
    """The simulator as a child process, for tests: Process(dir, key_file, partner, callback_url,
    seed=..., args=[more options]); .port, .stats(), .settled(), .records(kind) (the log's
    entries of that kind), .stop(). Killed at exit if a test ends early."""

    def __init__(self, directory, key_file, partner, callback, seed=1, args=(), algorithm="sha256"):
        import atexit
        import subprocess
        self.log = os.path.join(directory, "paygov-sim.log")
        port_file = os.path.join(directory, "paygov-sim.port")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--port-file", port_file, "--log",
                                      self.log, "--seed", str(seed), "--key-file", key_file, "--partner", partner,
                                      "--algorithm", algorithm, "--callback", callback, *args],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log + ".err", "w"))
        atexit.register(self.stop)
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"paygov_sim exited: {open(self.log + '.err').read()}")
            time.sleep(0.1)
        self.port = int(open(port_file).read())

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return json.loads(r.read())

    def stats(self):
        return self.get("/_sim/stats")

    def settled(self):
        return self.get("/_sim/settled")

    def records(self, kind):
        out = []
        with open(self.log, encoding="utf-8") as f:
            for line in f:
                if line.endswith("\n"):
                    e = json.loads(line)
                    if e["kind"] == kind:
                        out.append(e)
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


def main(argv):
    args = parse_args(argv)
    if args.clock:
        global CLOCK_OFFSET
        start = calendar.timegm(time.strptime(args.clock, "%Y-%m-%dT%H:%M:%S")) - 7 * 3600
        CLOCK_OFFSET = start - time.time()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.sim = Sim(args)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(srv.server_address[1]))
        os.replace(tmp, args.port_file)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
