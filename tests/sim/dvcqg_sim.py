#!/usr/bin/env python3
"""dvcqg_sim: the national public-service portal's dossier sync API (DVCQG) for tests, standard
library only, 127.0.0.1 only. It speaks both documented variants (vn-standards.md §3.1-3.3),
checks what it receives the way the portal would, keeps the dossiers and their progress, records
every request, and fails on demand.

Variants (--variant):
  opencps  §3.1: POST {auth} {"username", "password"} -> {"session", "error_code": 0}; then every
           call POSTs {integration} {"session", "madonvi", "service", ...} with service
           TraCuuHoSo {"mahoso"} -> {"result": [{MaHoSo, TrangThaiHoSo}] or []},
           DongBoHoSoMC {"isUpdating": "True"|"False", "data": [dossier]},
           CapNhatTienDoHoSoMC {"data": [progress, at most 10]}.
  split    §3.2: POST {create} / {update} with a JSON array of dossiers, {progress} with a JSON
           array of at most 10 progress entries; optional "Authorization: Bearer --token".
Answers are HTTP 200 {"error_code": "0", "message": ...} on success; data errors are
{"error_code": "-2", "message": "<field>: <why>"} (a REJECT for the hub); a create of a dossier
that exists is {"error_code": "-3", "message": "Hồ sơ <code> đã tồn tại"}; an update of one that
does not is {"error_code": "2", "message": "Hồ sơ <code> không tồn tại"}; a missing or expired
session {"error_code": "-1", "message": "Phiên làm việc không hợp lệ hoặc đã hết hạn"}.

What it checks (a refusal names the field): MaHoSo as Circular 01/2018 Art. 19, madonvi as an
organisation code, the required dossier fields, every value a string, times yyyyMMddHHmmss that
are real dates, TrangThaiHoSo/TrangThai 1..10, KenhThucHien 1..3, LoaiDoiTuong 1..4, LoaiDinhDanh
1 with 12 digits and 2 with 9, NguoiXuLy at most 50 characters without spaces at its ends,
progress at most 10 entries per call, progress only for a dossier that exists, MaTTHC not in
--unknown-procedure.

State: per dossier the number of creates, of updates, the last data received, and its progress
entries in the order received; an entry identical to one already kept is counted as a duplicate
and not kept again (an at-least-once sender's resend).

Faults (options, or POST /_sim/config {"fail_rate": 0.3, ...} while running; each is a fraction
of calls, drawn per call with --seed):
  fail_rate       answer --fail-status (default 503) without doing anything
  slow_rate       do the call, then hold its answer --slow-for seconds (past the client's timeout)
  drop_rate       do the call, then close the connection without an answer (answer lost)
  duplicate_rate  do the call and write its answer twice on the connection
  exists_rate     TraCuuHoSo answers "not found" for a dossier that exists (the create that
                  follows gets "đã tồn tại")
  session_calls   N > 0: a session expires after N calls made with it
POST /_sim/expire expires every session now. GET /_sim/state: {"dossiers": {code: {...}},
"sessions_issued", "logins"}. GET /_sim/stats: counts by service and answer.

The log (--log): one JSON line per request, written before the answer: {"time", "path",
"headers", "body" (parsed JSON, or "raw"), "service", "answer": {"status", "body"} or null,
"fault"}.
"""
import argparse
import json
import random
import re
import secrets
import socket
import os
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_sim  # noqa: E402

CODE_RE = re.compile(r"^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}-[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])-[0-9]{4,5}$")
ORG_RE = re.compile(r"^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$")
TTHC_RE = re.compile(r"^[0-9]\.[0-9]{6}\.[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}(\.[0-9]{2})?$")
REQUIRED = ["MaHoSo", "MaTTHC", "TenTTHC", "ChuHoSo", "LoaiDoiTuong", "NgayTiepNhan", "NgayHenTra", "TrangThaiHoSo",
            "DonViXuLy"]
TIMES = ["NgayNopHoSo", "NgayTiepNhan", "NgayHenTra", "NgayTuChoi", "NgayKetThucXuLy", "NgayTra"]
STATES = {str(i) for i in range(1, 11)}
SESSION_MSG = "Phiên làm việc không hợp lệ hoặc đã hết hạn"


class DataError(Exception):
    pass


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    p.add_argument("--variant", choices=["opencps", "split"], default="opencps")
    p.add_argument("--username", default="tinh-qn")
    p.add_argument("--password", default="mat-khau-thu")
    p.add_argument("--token", help="split: require Authorization: Bearer TOKEN")
    p.add_argument("--auth-path", default="/api/auth")
    p.add_argument("--integration-path", default="/api/integration")
    p.add_argument("--create-path", default="/api/hoso/themmoi")
    p.add_argument("--update-path", default="/api/hoso/capnhat")
    p.add_argument("--progress-path", default="/api/hoso/dongbotientrinh")
    p.add_argument("--unknown-procedure", action="append", default=[], help="MaTTHC the portal refuses")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--fail-status", type=int, default=503)
    p.add_argument("--slow-rate", type=float, default=0.0)
    p.add_argument("--slow-for", type=float, default=3.0)
    p.add_argument("--drop-rate", type=float, default=0.0)
    p.add_argument("--duplicate-rate", type=float, default=0.0)
    p.add_argument("--exists-rate", type=float, default=0.0)
    p.add_argument("--session-calls", type=int, default=0)
    return p.parse_args(argv)


def check_time(v, field):
    if not isinstance(v, str) or not re.fullmatch(r"[0-9]{14}", v):
        raise DataError(f"{field}: '{v}' không đúng định dạng yyyyMMddHHmmss")
    try:
        datetime.strptime(v, "%Y%m%d%H%M%S")
    except ValueError:
        raise DataError(f"{field}: '{v}' không phải ngày giờ hợp lệ")


def check_dossier(d, unknown_procedures):
    if not isinstance(d, dict):
        raise DataError("data[]: mỗi hồ sơ là một đối tượng")
    for f in REQUIRED:
        if not isinstance(d.get(f), str) or not d[f]:
            raise DataError(f"{f}: thiếu trường bắt buộc")
    for k, v in d.items():
        if not isinstance(v, (str, list)):
            raise DataError(f"{k}: giá trị phải là chuỗi")
    if not CODE_RE.match(d["MaHoSo"]):
        raise DataError(f"MaHoSo: '{d['MaHoSo']}' không đúng quy định tại Điều 19 Thông tư 01/2018/TT-VPCP")
    if not TTHC_RE.match(d["MaTTHC"]) or d["MaTTHC"] in unknown_procedures:
        raise DataError(f"MaTTHC: thủ tục '{d['MaTTHC']}' không có trong CSDL TTHC quốc gia")
    for f in TIMES:
        if f in d:
            check_time(d[f], f)
    if d["TrangThaiHoSo"] not in STATES:
        raise DataError(f"TrangThaiHoSo: '{d['TrangThaiHoSo']}' không thuộc danh mục")
    if d.get("KenhThucHien", "1") not in ("1", "2", "3"):
        raise DataError(f"KenhThucHien: '{d['KenhThucHien']}' không thuộc danh mục")
    if d["LoaiDoiTuong"] not in ("1", "2", "3", "4"):
        raise DataError(f"LoaiDoiTuong: '{d['LoaiDoiTuong']}' không thuộc danh mục")
    if d.get("HinhThuc", "0") not in ("0", "1"):
        raise DataError(f"HinhThuc: '{d['HinhThuc']}' không thuộc danh mục")
    for i, x in enumerate(d.get("DinhDanhCHS") or []):
        kind, num = x.get("LoaiDinhDanh"), x.get("SoDinhDanh", "")
        if (kind, len(num)) not in (("1", 12), ("2", 9)) or not num.isdigit():
            raise DataError(f"DinhDanhCHS[{i}]: LoaiDinhDanh '{kind}' không khớp số định danh '{num}'")
    for i, x in enumerate(d.get("DanhSachLePhi") or []):
        if not str(x.get("Gia", "")).isdigit():
            raise DataError(f"DanhSachLePhi[{i}].Gia: '{x.get('Gia')}' không phải số")


def check_progress(e):
    if not isinstance(e, dict):
        raise DataError("data[]: mỗi quá trình xử lý là một đối tượng")
    for f in ("MaHoSo", "NguoiXuLy", "ThoiDiemXuLy", "TrangThai"):
        if not isinstance(e.get(f), str) or not e[f]:
            raise DataError(f"{f}: thiếu trường bắt buộc")
    n = e["NguoiXuLy"]
    if len(n) > 50 or n != n.strip():
        raise DataError(f"NguoiXuLy: '{n}' dài quá 50 ký tự hoặc có khoảng trắng ở đầu/cuối")
    check_time(e["ThoiDiemXuLy"], "ThoiDiemXuLy")
    for f in ("NgayBatDau", "NgayKetThucTheoQuyDinh"):
        if f in e:
            check_time(e[f], f)
    if e["TrangThai"] not in STATES:
        raise DataError(f"TrangThai: '{e['TrangThai']}' không thuộc danh mục")


class Portal:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.cfg = {k: getattr(args, k) for k in ("fail_rate", "fail_status", "slow_rate", "slow_for", "drop_rate",
                                                   "duplicate_rate", "exists_rate", "session_calls")}
        self.rng = random.Random(args.seed)
        self.log = open(args.log, "a") if args.log else None
        self.sessions = {}  # session -> calls made with it; None when expired
        self.sessions_issued = 0
        self.dossiers = {}
        self.stats = {}

    def draw(self, name):
        with self.lock:
            return self.rng.random() < self.cfg[name]

    def record(self, entry):
        with self.lock:
            key = f"{entry.get('service')}:{(entry.get('answer') or {}).get('body', {}).get('error_code', 'none')}"
            self.stats[key] = self.stats.get(key, 0) + 1
            if self.log:
                self.log.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self.log.flush()

    def dossier(self, code):
        return self.dossiers.setdefault(code, {"creates": 0, "updates": 0, "data": None, "progress": [],
                                               "duplicates": 0, "exists": False})

    # ---- the services; each returns the answer's JSON body (called under self.lock)
    def login(self, body):
        if body.get("username") != self.args.username or body.get("password") != self.args.password:
            return {"error_code": "-4", "message": "Sai tên đăng nhập hoặc mật khẩu"}
        s = secrets.token_hex(16)
        self.sessions[s] = 0
        self.sessions_issued += 1
        return {"session": s, "error_code": 0, "message": "Đăng nhập thành công"}

    def lookup(self, code, hide):
        d = self.dossiers.get(code)
        if not d or not d["exists"] or hide:
            return {"error_code": "0", "message": "Không tìm thấy hồ sơ", "result": []}
        return {"error_code": "0", "message": "Thành công",
                "result": [{"MaHoSo": code, "TrangThaiHoSo": d["data"]["TrangThaiHoSo"]}]}

    def sync(self, items, updating):
        if not isinstance(items, list) or not items:
            raise DataError("data: cần danh sách hồ sơ")
        for d in items:
            check_dossier(d, self.args.unknown_procedure)
        for d in items:  # all checked first: a refused call changes nothing
            st = self.dossier(d["MaHoSo"])
            if not updating and st["exists"]:
                return {"error_code": "-3", "message": f"Hồ sơ {d['MaHoSo']} đã tồn tại"}
            if updating and not st["exists"]:
                return {"error_code": "2", "message": f"Hồ sơ {d['MaHoSo']} không tồn tại"}
        for d in items:
            st = self.dossier(d["MaHoSo"])
            st["updates" if updating else "creates"] += 1
            st["exists"] = True
            st["data"] = d
        return {"error_code": "0", "message": "Đồng bộ thành công"}

    def progress(self, items):
        if not isinstance(items, list) or not items:
            raise DataError("data: cần danh sách quá trình xử lý")
        if len(items) > 10:
            raise DataError(f"data: tối đa 10 quá trình xử lý mỗi lần, nhận {len(items)}")
        for e in items:
            check_progress(e)
            if not (self.dossiers.get(e["MaHoSo"]) or {}).get("exists"):
                return {"error_code": "2", "message": f"Hồ sơ {e['MaHoSo']} không tồn tại"}
        for e in items:
            st = self.dossier(e["MaHoSo"])
            if e in st["progress"]:
                st["duplicates"] += 1
            else:
                st["progress"].append(e)
        return {"error_code": "0", "message": "Cập nhật tiến độ thành công"}

    def session_ok(self, s):
        n = self.sessions.get(s)
        if n is None:
            return False
        limit = self.cfg["session_calls"]
        if limit and n >= limit:
            self.sessions[s] = None
            return False
        self.sessions[s] = n + 1
        return True

    def handle(self, path, headers, body, hide):
        """(service, answer body) for one call."""
        a = self.args
        if a.variant == "opencps":
            if path == a.auth_path:
                return "login", self.login(body if isinstance(body, dict) else {})
            if path != a.integration_path:
                return None, None
            if not isinstance(body, dict):
                return "?", {"error_code": "-2", "message": "Yêu cầu không phải JSON"}
            service = body.get("service")
            if not self.session_ok(body.get("session")):
                return service, {"error_code": "-1", "message": SESSION_MSG}
            if not isinstance(body.get("madonvi"), str) or not ORG_RE.match(body["madonvi"]):
                return service, {"error_code": "-2", "message": f"madonvi: '{body.get('madonvi')}' không hợp lệ"}
            try:
                if service == "TraCuuHoSo":
                    return service, self.lookup(body.get("mahoso"), hide)
                if service == "DongBoHoSoMC":
                    if body.get("isUpdating") not in ("True", "False"):
                        raise DataError("isUpdating: phải là True hoặc False")
                    return service, self.sync(body.get("data"), body["isUpdating"] == "True")
                if service == "CapNhatTienDoHoSoMC":
                    return service, self.progress(body.get("data"))
                return service, {"error_code": "-2", "message": f"service '{service}' không được hỗ trợ"}
            except DataError as e:
                return service, {"error_code": "-2", "message": str(e)}
        services = {a.create_path: "ThemMoi", a.update_path: "CapNhat", a.progress_path: "DongBoTienTrinh"}
        service = services.get(path)
        if not service:
            return None, None
        if a.token and headers.get("authorization") != f"Bearer {a.token}":
            return service, 401
        try:
            if service == "DongBoTienTrinh":
                return service, self.progress(body)
            return service, self.sync(body, service == "CapNhat")
        except DataError as e:
            return service, {"error_code": "-2", "message": str(e)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "dvcqg_sim/1"

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, obj, twice=False):
        body = json.dumps(obj, ensure_ascii=False).encode() if obj is not None else b""
        head = (f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: application/json; "
                f"charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.wfile.write(head + body)
        if twice:  # a broken proxy answering twice: the second copy follows on the same connection
            self.wfile.write(head + body)
            self.close_connection = True
        self.wfile.flush()

    def do_GET(self):
        p = self.server.portal
        if self.path == "/_sim/state":
            with p.lock:
                return self.reply(200, {"dossiers": p.dossiers, "sessions_issued": p.sessions_issued})
        if self.path == "/_sim/stats":
            with p.lock:
                return self.reply(200, dict(p.stats))
        self.reply(404, {"error_code": "404", "message": "not found"})

    def do_POST(self):
        p = self.server.portal
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if self.path.startswith("/_sim/"):
            with p.lock:
                if self.path == "/_sim/config":
                    p.cfg.update({k: v for k, v in (body or {}).items() if k in p.cfg})
                    return self.reply(200, p.cfg)
                if self.path == "/_sim/expire":
                    for s in p.sessions:
                        p.sessions[s] = None
                    return self.reply(200, {"expired": len(p.sessions)})
            return self.reply(404, {"error_code": "404", "message": "unknown control path"})
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {"time": time.time(), "path": self.path, "headers": headers}
        if body is not None:
            entry["body"] = body
        else:
            entry["raw"] = raw.decode("utf-8", "replace")
        ctype = headers.get("content-type", "")
        fault = None
        if not ctype.startswith("application/json"):
            entry.update(service=None, answer={"status": 415, "body": {"error_code": "415"}})
            p.record(entry)
            return self.reply(415, {"error_code": "415", "message": "Content-Type phải là application/json"})
        if p.draw("fail_rate"):
            st = p.cfg["fail_status"]
            entry.update(service=None, fault="fail", answer={"status": st, "body": {"error_code": str(st)}})
            p.record(entry)
            return self.reply(st, {"error_code": str(st), "message": "Hệ thống đang bận"})
        slow = p.draw("slow_rate")
        hide = p.draw("exists_rate")
        with p.lock:
            service, answer = p.handle(self.path, headers, body, hide)
        entry["service"] = service
        if answer is None:
            entry["answer"] = {"status": 404, "body": {"error_code": "404"}}
            p.record(entry)
            return self.reply(404, {"error_code": "404", "message": f"không có {self.path}"})
        if answer == 401:
            entry["answer"] = {"status": 401, "body": {"error_code": "401"}}
            p.record(entry)
            return self.reply(401, {"error_code": "401", "message": "Token không hợp lệ"})
        if hide and service == "TraCuuHoSo":
            fault = "exists"
        if p.draw("drop_rate"):
            entry.update(fault="drop", answer=None)
            p.record(entry)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        twice = p.draw("duplicate_rate")
        if twice:
            fault = "duplicate"
        if slow:  # done at once, answered late: the caller has given up by then
            fault = "slow"
        entry.update(fault=fault, answer={"status": 200, "body": answer})
        p.record(entry)
        if slow:
            time.sleep(p.cfg["slow_for"])
        try:
            self.reply(200, answer, twice=twice)
        except OSError:
            self.close_connection = True


def main(argv):
    args = parse_args(argv)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.portal = Portal(args)
    return http_sim.serve(srv, args.port_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
