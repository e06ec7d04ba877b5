#!/usr/bin/env python3
"""population_sim: the national population database's look-up as an LGSP gateway serves it, for
tests (standard library only). QCVN 109 (vn-standards.md §2) gives the answer's layout: a
dc:CongdanCollection (namespace http://www.mic.gov.vn/dancu/1.0) with one dc:CongDan, or none
(SoCongDan="0") for an unknown id. It listens on 127.0.0.1 only and records every request as
one JSON line in --log (control calls excluded): {"time", "method", "path", "query",
"headers", "answer", "token": "issued|ok|expired|unknown|refused"}.

  POST /token                  OAuth2 client credentials (client_secret_basic or _post), as LGSP:
                               {"access_token", "token_type": "Bearer", "expires_in"}
  GET  /dancu/congdan?SoDinhDanh=ID[&MaDonVi=...]
                               needs "Authorization: Bearer TOKEN" (401 otherwise); ID of 12 digits
                               (or 9: looked up as SoCMND); anything else: 400 DATA_TYPE_INVALID.

Command line: --port, --port-file, --log (as http_sim.py); --client ID:SECRET (default
hub:secret); --token-ttl S (3600); --people FILE (a JSON list of {"SoDinhDanh", "SoCMND",
"Ho", "ChuDem", "Ten", "NgaySinh"}) or --generate N (default 50, --seed).
Faults (also POST /_sim/config): fail_rate F (answer fail_status, default 503), hang_rate F and
hang_for S, max_per_second N (answers 429 with Retry-After: 1 above N calls in a second: the
gateway's own quota), duplicate F (the answer lists the citizen twice, as a gateway that joins
two sources may).
Control: POST /_sim/expire (every token expires), GET /_sim/people, GET /_sim/stats
{"requests", "lookups", "tokens_issued", "by_status"}.
"""
import argparse
import base64
import json
import os
import random
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_sim  # noqa: E402

HO = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng"]
DEM = ["Văn", "Thị", "Đức", "Ngọc", "Minh", "Thu", "Quang", "Hữu"]
TEN = ["An", "Bình", "Cường", "Dũng", "Hà", "Hạnh", "Khoa", "Lan", "Mỹ", "Nghĩa", "Phương", "Quỳnh", "Sơn", "Thảo"]


def generate(n, seed):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append({"SoDinhDanh": f"0010{rng.randint(80, 99)}{i:06d}", "SoCMND": f"{100000000 + i}",
                    "Ho": rng.choice(HO), "ChuDem": rng.choice(DEM), "Ten": rng.choice(TEN),
                    "NgaySinh": f"{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"})
    return out


def congdan_xml(people):
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<dc:CongdanCollection xmlns:dc="http://www.mic.gov.vn/dancu/1.0"'
             f' GhiChu="" ThoiDiemDuLieu="{time.strftime("%Y-%m-%dT%H:%M:%S")}" SoCongDan="{len(people)}">']
    for p in people:
        parts.append(
            f"<dc:CongDan><dc:SoDinhDanh>{escape(p['SoDinhDanh'])}</dc:SoDinhDanh>"
            f"<dc:SoCMND>{escape(p.get('SoCMND', ''))}</dc:SoCMND>"
            f"<dc:HoVaTen><dc:Ho>{escape(p['Ho'])}</dc:Ho><dc:ChuDem>{escape(p.get('ChuDem', ''))}</dc:ChuDem>"
            f"<dc:Ten>{escape(p['Ten'])}</dc:Ten></dc:HoVaTen><dc:GioiTinh>1</dc:GioiTinh>"
            f"<dc:NgayThangNamSinh><dc:NgayThangNam>{escape(p['NgaySinh'])}</dc:NgayThangNam></dc:NgayThangNamSinh>"
            "<dc:NoiDangKyKhaiSinh><dc:MaDonViHanhChinh>00001</dc:MaDonViHanhChinh><dc:ChiTiet>Phường Phúc Xá"
            "</dc:ChiTiet><dc:QuocGia>VN</dc:QuocGia></dc:NoiDangKyKhaiSinh></dc:CongDan>")
    parts.append("</dc:CongdanCollection>\n")
    return "".join(parts)


class Sim:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.client_id, _, self.secret = args.client.partition(":")
        self.ttl = args.token_ttl
        if args.people:
            with open(args.people) as f:
                people = json.load(f)
        else:
            people = generate(args.generate, args.seed)
        self.people = people
        self.by_id = {p["SoDinhDanh"]: p for p in people}
        self.by_cmnd = {p["SoCMND"]: p for p in people if p.get("SoCMND")}
        self.tokens = {}
        self.cfg = {"fail_rate": 0.0, "fail_status": 503, "hang_rate": 0.0, "hang_for": 5.0, "max_per_second": 0,
                    "duplicate": 0.0}
        self.rng = random.Random(args.seed)
        self.log = open(args.log, "a") if args.log else None
        self.requests = self.lookups = self.tokens_issued = 0
        self.by_status = {}
        self.window = (0, 0)  # (second, calls in it)

    def record(self, entry):
        with self.lock:
            self.requests += 1
            self.by_status[str(entry["answer"])] = self.by_status.get(str(entry["answer"]), 0) + 1
            if self.log:
                self.log.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self.log.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *a):
        pass

    def send(self, status, body, ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body, ensure_ascii=False)
        body = body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        sim = self.server.sim
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.path == "/_sim/config":
            req = json.loads(raw or b"{}")
            with sim.lock:
                for k, v in req.items():
                    if k not in sim.cfg:
                        return self.send(400, {"error": f"unknown option {k}"})
                    sim.cfg[k] = v
                return self.send(200, sim.cfg)
        if self.path == "/_sim/expire":
            with sim.lock:
                for t in sim.tokens:
                    sim.tokens[t] = 0
            return self.send(200, {"expired": len(sim.tokens)})
        entry = {"time": time.time(), "method": "POST", "path": self.path, "query": {},
                 "headers": {k.lower(): v for k, v in self.headers.items()}}
        if self.path != "/token":
            entry["answer"] = 404
            sim.record(entry)
            return self.send(404, {"error": "not found"})
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                cid = secret = None
        if form.get("grant_type") != "client_credentials":
            entry.update(answer=400, token="refused")
            sim.record(entry)
            return self.send(400, {"error": "unsupported_grant_type"})
        if cid != sim.client_id or secret != sim.secret:
            entry.update(answer=401, token="refused")
            sim.record(entry)
            return self.send(401, {"error": "invalid_client"})
        tok = secrets.token_urlsafe(24)
        with sim.lock:
            sim.tokens[tok] = time.time() + sim.ttl
            sim.tokens_issued += 1
        entry.update(answer=200, token="issued")
        sim.record(entry)
        return self.send(200, {"access_token": tok, "token_type": "Bearer", "expires_in": int(sim.ttl)})

    def do_GET(self):
        sim = self.server.sim
        u = urlsplit(self.path)
        if u.path == "/_sim/people":
            return self.send(200, sim.people)
        if u.path == "/_sim/stats":
            with sim.lock:
                return self.send(200, {"requests": sim.requests, "lookups": sim.lookups,
                                       "tokens_issued": sim.tokens_issued, "by_status": sim.by_status})
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        entry = {"time": time.time(), "method": "GET", "path": u.path, "query": q,
                 "headers": {k.lower(): v for k, v in self.headers.items()}}
        status, body, ctype, headers, hang = self.decide(sim, u.path, q, entry)
        entry["answer"] = status
        sim.record(entry)
        if hang:
            time.sleep(hang)
        try:
            self.send(status, body, ctype, headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def decide(self, sim, path, q, entry):
        if path != "/dancu/congdan":
            return 404, {"error": "not found"}, "application/json", None, 0
        auth = self.headers.get("Authorization") or ""
        tok = auth[7:] if auth.startswith("Bearer ") else None
        with sim.lock:
            exp = sim.tokens.get(tok)
            cfg = dict(sim.cfg)
            sec = int(time.time())
            s0, cnt = sim.window
            sim.window = (sec, cnt + 1) if s0 == sec else (sec, 1)
            over = cfg["max_per_second"] and sim.window[1] > cfg["max_per_second"]
            r_fail, r_hang, r_dup = sim.rng.random(), sim.rng.random(), sim.rng.random()
        entry["token"] = "unknown" if exp is None else ("ok" if exp > time.time() else "expired")
        if entry["token"] != "ok":
            return 401, {"error": "invalid_token"}, "application/json", {"WWW-Authenticate": "Bearer"}, 0
        if over:
            return 429, {"error": "quota"}, "application/json", {"Retry-After": "1"}, 0
        hang = cfg["hang_for"] if r_hang < cfg["hang_rate"] else 0
        if r_fail < cfg["fail_rate"]:
            return cfg["fail_status"], {"error": "simulated failure"}, "application/json", None, hang
        ident = q.get("SoDinhDanh", "")
        if not ident.isdigit() or len(ident) not in (9, 12):
            return 400, {"error_code": 302, "message": "DATA_TYPE_INVALID: SoDinhDanh"}, "application/json", None, 0
        with sim.lock:
            sim.lookups += 1
            p = (sim.by_cmnd if len(ident) == 9 else sim.by_id).get(ident)
        people = [p] * (2 if p and r_dup < cfg["duplicate"] else 1) if p else []
        return 200, congdan_xml(people), "application/xml; charset=utf-8", None, hang


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--client", default="hub:secret")
    p.add_argument("--token-ttl", type=float, default=3600.0)
    p.add_argument("--people")
    p.add_argument("--generate", type=int, default=50)
    args = p.parse_args(argv)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.sim = Sim(args)
    return http_sim.serve(srv, args.port_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
