#!/usr/bin/env python3
"""tthc_sim: the DVCQG adapter's catalogue services for tests (standard library only), as in
vn-standards.md §3.1: a session login and one integration endpoint whose `service` field picks
the call. It records every request it receives as one JSON line in --log and checks what a
real adapter would: POST with a JSON body, the account, a live session, `madonvi`, a known
`service`, `maTTHC` for LayThuTuc. It listens on 127.0.0.1 only.

  POST /auth         {"username", "password"} -> {"error_code": 0, "session": "..."}
                     (wrong account: {"error_code": "-1", "message": "Sai tài khoản hoặc mật khẩu"})
  POST /integration  {"session", "madonvi", "service": "LayDanhSachTTHC"}
                       -> {"error_code": "00", "message": "OK", "result": [{"MATTHC", "TENTTHC"}...]}
                     {"session", "madonvi", "service": "LayThuTuc", "maTTHC": CODE}
                       -> {"error_code": "00", "result": [PROCEDURE]}; unknown code: error_code "-3"
                     an expired or unknown session: {"error_code": "-2", "message": "Phiên làm việc
                     (session) đã hết hạn"}

A PROCEDURE is an object with MATTHC, TENTTHC, MACOQUANCONGBO, LINHVUCTHUCHIEN [{MALINHVUC,
TENLINHVUC}], CAPTHUCHIEN, THOIHANGIAIQUYET, PHILEPHI [{MAPHILEPHI, SOTIEN, MOTA}], ... (the
catalogue's fields as the adapter returns them; only MATTHC is required by the hub).

Command line:
  --port N / --port-file FILE / --log FILE   as http_sim.py
  --user USER:PASS        the account (default hub:secret)
  --madonvi CODE          the unit code it expects (default: any non-empty)
  --generate N            start with N generated procedures (default 20), seeded by --seed
  --catalogue FILE        start with the procedures of this JSON file (a list) instead
  --session-ttl S         sessions expire after S seconds (default 3600)

Faults (also through POST /_sim/config, by the names below):
  fail_after N            after N more LayThuTuc calls every integration call answers fail_status
                          (-1: off; the mid-run failure a test needs)
  fail_status N           (default 500)
  fail_rate F             fraction of integration calls answered fail_status (default 0)
  hang_rate F, hang_for S hold a fraction of calls S seconds before answering
  drop_rate F             close the connection without an answer for a fraction of calls
  expire_every N          expire the session after every N integration calls (0: off)

Control (JSON):
  POST /_sim/catalogue    {"add": [PROCEDURE...], "change": {CODE: {FIELD: VALUE|null (drops it)}},
                          "remove": [CODE...]} or {"replace": [PROCEDURE...]}; answers the codes
  GET  /_sim/catalogue    the current catalogue (list)
  POST /_sim/config       any fault above
  GET  /_sim/stats        {"requests", "by_service", "sessions_issued", "expired_answers"}
"""
import argparse
import json
import os
import random
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_sim  # noqa: E402

LINHVUC = [("G03-GD10", "Giáo dục Trung học"), ("T01-TP02", "Hộ tịch"), ("X05-XD01", "Hoạt động xây dựng"),
           ("D12-DD01", "Đất đai"), ("Y08-YT03", "Khám bệnh, chữa bệnh")]


def generate(n, seed):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        mv, tv = LINHVUC[i % len(LINHVUC)]
        out.append({"MATTHC": f"1.{i + 1:06d}.000.00.00.H22", "TENTTHC": f"Thủ tục số {i + 1} ({tv})",
                    "MACOQUANCONGBO": "000.00.00.H22", "CAPTHUCHIEN": rng.choice(["Cấp Tỉnh", "Cấp Huyện", "Cấp Xã"]),
                    "LINHVUCTHUCHIEN": [{"MALINHVUC": mv, "TENLINHVUC": tv}],
                    "THOIHANGIAIQUYET": f"{rng.randint(1, 30)} ngày làm việc",
                    "PHILEPHI": [{"MAPHILEPHI": "1", "SOTIEN": rng.choice([0, 20000, 50000, 100000]),
                                  "MOTA": "Lệ phí"}],
                    "DOITUONGTHUCHIEN": "Công dân Việt Nam"})
    return out


class Sim:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.user, _, self.password = args.user.partition(":")
        self.madonvi = args.madonvi
        if args.catalogue:
            with open(args.catalogue) as f:
                procs = json.load(f)
        else:
            procs = generate(args.generate, args.seed)
        self.catalogue = {p["MATTHC"]: p for p in procs}
        self.sessions = {}
        self.ttl = args.session_ttl
        self.cfg = {"fail_after": -1, "fail_status": 500, "fail_rate": 0.0, "hang_rate": 0.0, "hang_for": 5.0,
                    "drop_rate": 0.0, "expire_every": 0}
        self.rng = random.Random(args.seed)
        self.log = open(args.log, "a") if args.log else None
        self.requests = 0
        self.by_service = {}
        self.sessions_issued = 0
        self.expired_answers = 0
        self.calls_since_expire = 0
        self.failing = False

    def record(self, entry):
        with self.lock:
            self.requests += 1
            if self.log:
                self.log.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self.log.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *a):
        pass

    def send(self, status, obj):
        body = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        sim = self.server.sim
        if self.path == "/_sim/catalogue":
            with sim.lock:
                return self.send(200, sorted(sim.catalogue.values(), key=lambda p: p["MATTHC"]))
        if self.path == "/_sim/stats":
            with sim.lock:
                return self.send(200, {"requests": sim.requests, "by_service": sim.by_service,
                                       "sessions_issued": sim.sessions_issued,
                                       "expired_answers": sim.expired_answers})
        return self.send(405, {"error_code": "-9", "message": "POST only"})

    def do_POST(self):
        sim = self.server.sim
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.path.startswith("/_sim/"):
            return self.control(sim, raw)
        entry = {"time": time.time(), "path": self.path,
                 "headers": {k.lower(): v for k, v in self.headers.items()}, "body": raw.decode("utf-8", "replace")}
        status, answer, hang, drop = self.decide(sim, raw, entry)
        entry["answer"] = status
        entry["error_code"] = answer.get("error_code") if isinstance(answer, dict) else None
        if drop:
            entry["dropped"] = True
        if hang:
            entry["hang"] = hang
        sim.record(entry)
        if hang:
            time.sleep(hang)
        if drop:
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        try:
            self.send(status, answer)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def decide(self, sim, raw, entry):
        """(status, answer object, seconds to hang, drop the connection)."""
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            return 415, {"error_code": "-9", "message": "Content-Type must be application/json"}, 0, False
        try:
            req = json.loads(raw)
        except ValueError:
            return 400, {"error_code": "-9", "message": "the body is not JSON"}, 0, False
        if not isinstance(req, dict):
            return 400, {"error_code": "-9", "message": "the body is not a JSON object"}, 0, False
        if self.path == "/auth":
            if req.get("username") != sim.user or req.get("password") != sim.password:
                return 200, {"error_code": "-1", "message": "Sai tài khoản hoặc mật khẩu"}, 0, False
            tok = secrets.token_urlsafe(18)
            with sim.lock:
                sim.sessions[tok] = time.time() + sim.ttl
                sim.sessions_issued += 1
            return 200, {"error_code": 0, "message": "OK", "session": tok}, 0, False
        if self.path != "/integration":
            return 404, {"error_code": "-9", "message": f"unknown path {self.path}"}, 0, False
        service = req.get("service")
        entry["service"] = service
        with sim.lock:
            cfg = dict(sim.cfg)
            sim.by_service[str(service)] = sim.by_service.get(str(service), 0) + 1
            exp = sim.sessions.get(req.get("session"))
            if cfg["expire_every"]:
                sim.calls_since_expire += 1
                if sim.calls_since_expire >= cfg["expire_every"]:
                    sim.calls_since_expire = 0
                    for t in sim.sessions:
                        sim.sessions[t] = 0
            failing = sim.failing
            if service == "LayThuTuc" and cfg["fail_after"] >= 0 and not failing:
                if sim.cfg["fail_after"] == 0:
                    sim.failing = failing = True
                else:
                    sim.cfg["fail_after"] -= 1
            r_fail, r_hang, r_drop = sim.rng.random(), sim.rng.random(), sim.rng.random()
        if exp is None or exp < time.time():
            with sim.lock:
                sim.expired_answers += 1
            return 200, {"error_code": "-2", "message": "Phiên làm việc (session) đã hết hạn"}, 0, False
        if not req.get("madonvi") or (sim.madonvi and req.get("madonvi") != sim.madonvi):
            return 200, {"error_code": "106", "message": "AGENCY_ID_INCORRECT: madonvi"}, 0, False
        if r_drop < cfg["drop_rate"]:
            return 0, {}, 0, True
        hang = cfg["hang_for"] if r_hang < cfg["hang_rate"] else 0
        if failing or r_fail < cfg["fail_rate"]:
            return cfg["fail_status"], {"error_code": "500", "message": "simulated failure"}, hang, False
        if service == "LayDanhSachTTHC":
            with sim.lock:
                items = [{"MATTHC": c, "TENTTHC": p.get("TENTTHC")} for c, p in sorted(sim.catalogue.items())]
            return 200, {"error_code": "00", "message": "OK", "result": items}, hang, False
        if service == "LayThuTuc":
            code = req.get("maTTHC")
            if not code:
                return 200, {"error_code": "200", "message": "RECORD_UNCOMPLETE: maTTHC"}, 0, False
            with sim.lock:
                p = sim.catalogue.get(code)
            if p is None:
                return 200, {"error_code": "-3", "message": f"Không tìm thấy thủ tục {code}"}, hang, False
            return 200, {"error_code": "00", "message": "OK", "result": [p]}, hang, False
        return 200, {"error_code": "-9", "message": f"unknown service {service}"}, 0, False

    def control(self, sim, raw):
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            return self.send(400, {"error": "control body is not JSON"})
        if self.path == "/_sim/catalogue":
            with sim.lock:
                if "replace" in req:
                    sim.catalogue = {p["MATTHC"]: p for p in req["replace"]}
                for p in req.get("add", []):
                    sim.catalogue[p["MATTHC"]] = p
                for code, fields in req.get("change", {}).items():
                    p = dict(sim.catalogue[code])
                    for k, v in fields.items():
                        if v is None:
                            p.pop(k, None)
                        else:
                            p[k] = v
                    sim.catalogue[code] = p
                for code in req.get("remove", []):
                    sim.catalogue.pop(code, None)
                return self.send(200, sorted(sim.catalogue))
        if self.path == "/_sim/config":
            with sim.lock:
                for k, v in req.items():
                    if k not in sim.cfg:
                        return self.send(400, {"error": f"unknown option {k}"})
                    sim.cfg[k] = v
                if sim.cfg["fail_after"] < 0:
                    sim.failing = False
                return self.send(200, sim.cfg)
        return self.send(404, {"error": "unknown control path"})


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--user", default="hub:secret")
    p.add_argument("--madonvi")
    p.add_argument("--generate", type=int, default=20)
    p.add_argument("--catalogue")
    p.add_argument("--session-ttl", type=float, default=3600.0)
    args = p.parse_args(argv)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.sim = Sim(args)
    return http_sim.serve(srv, args.port_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
