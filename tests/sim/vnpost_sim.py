#!/usr/bin/env python3
"""vnpost_sim: the VNPost public postal service API (vn-standards.md §4.1) for tests (standard
library only), in both variants the `vnpost` connectors speak:

  lgsp    POST /vnpost?service=orderPost|orderCancel|orderTracking|getPrice (the provincial gateway)
  direct  POST /api/order/post | /api/order/cancel | /api/order/tracking | /api/price

Both require an OAuth2 client-credentials token from POST /token (client_secret_basic, as the
LGSP's WSO2 gateway documents, or client_secret_post), 401 without a valid one.

What it checks, as VNPost would: the JSON body; an order's CustomerCode (--customer-code), its
required fields and integer province/district codes; a second order with an OrderNumber it
already has is answered 409 (VNPost's duplicate check, which makes a create idempotent);
cancel of an unknown order 404, of a cancelled one 409, of a finished one 400.

Orders move on by themselves: every --advance-every seconds each open order gets its next
tracking entry (an ObjectId `_id.$oid`, increasing, and MyVNPost status codes) from its plan,
chosen by the order's sequence number: n % 10 == 7 is "failed" [1, 6, 10, 12, 15],
n % 10 == 8 is "returned" [1, 6, 10, 12, 15, 16, 17], the others "delivered"
[1, 6, 10, 12, 14]. A cancel adds 22 and ends the plan. Tracking answers the entries after
lastId, pagesize at most, as `{"_embedded": {"rh:doc": [...]}, "_returned": N}`.

Faults (command line or POST /_sim/config): --fail-rate (answer --fail-status), --slow-rate
(hold --slow-for seconds before answering), --dup-rate (a tracking page repeats an entry it
already sent: one before lastId or one twice), --garbage-rate (a tracking call answered 200 with
an HTML error page), --no-id-rate (the first entry of a page comes without its `_id`),
--token-ttl, POST /_sim/expire (every token expires now), --hold (no entries are added while
true).

The log (--log): one JSON line per request, written before the answer: {"time", "method",
"path", "service" (the operation), "headers", "body", "answer", "token", "slow", "outcome"}.
GET /_sim/orders: {OrderNumber: {"order", "plan", "entries": [[oid, code], ...], "cancelled",
"creates", "seq"}}; GET /_sim/stats: counts.
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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_sim  # noqa: E402

OPS_LGSP = {"orderPost": "create", "orderCancel": "cancel", "orderTracking": "tracking", "getPrice": "price"}
OPS_DIRECT = {"/api/order/post": "create", "/api/order/cancel": "cancel", "/api/order/tracking": "tracking",
              "/api/price": "price"}
PLANS = {"delivered": [1, 6, 10, 12, 14], "failed": [1, 6, 10, 12, 15], "returned": [1, 6, 10, 12, 15, 16, 17]}
MESSAGES = {1: "Đã tạo đơn", 6: "Đã nhận hàng", 10: "Đang vận chuyển", 12: "Đang phát", 14: "Phát thành công",
            15: "Phát không thành công", 16: "Đang chuyển hoàn", 17: "Đã chuyển hoàn", 22: "Hủy đơn hàng"}
REQUIRED = ["CustomerCode", "OrderNumber", "SenderName", "SenderAddress", "SenderTel", "SenderProvince",
            "SenderDistrict", "ReceiverName", "ReceiverAddress", "ReceiverTel", "ReceiverProvince", "ReceiverDistrict"]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--variant", choices=["lgsp", "direct"], default="lgsp")
    p.add_argument("--client", default="hub:secret", help="ID:SECRET of the OAuth2 client")
    p.add_argument("--customer-code", default="QNI01")
    p.add_argument("--token-ttl", type=float, default=3600.0)
    p.add_argument("--advance-every", type=float, default=0.3)
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--fail-status", type=int, default=503)
    p.add_argument("--slow-rate", type=float, default=0.0)
    p.add_argument("--slow-for", type=float, default=3.0)
    p.add_argument("--dup-rate", type=float, default=0.0)
    p.add_argument("--garbage-rate", type=float, default=0.0)
    p.add_argument("--no-id-rate", type=float, default=0.0)
    p.add_argument("--hold", action="store_true")
    return p.parse_args(argv)


class Sim:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.cfg = {k: v for k, v in vars(args).items() if k not in ("port", "port_file", "log")}
        self.rng = random.Random(args.seed)
        self.log = open(args.log, "a") if args.log else None
        self.tokens = {}
        self.tokens_issued = 0
        self.orders = {}
        self.entries = []  # [oid, OrderNumber, code], oid increasing
        self.counter = 0
        self.stats = {}

    def oid(self):
        self.counter += 1
        return f"{int(time.time()):08x}{self.counter:016x}"

    def add_entry(self, num, code):
        o = self.orders[num]
        oid = self.oid()
        o["entries"].append([oid, code])
        self.entries.append([oid, num, code])

    def advance(self):
        with self.lock:
            if self.cfg["hold"]:
                return
            for num, o in self.orders.items():
                if o["cancelled"] or o["step"] >= len(o["plan"]):
                    continue
                self.add_entry(num, o["plan"][o["step"]])
                o["step"] += 1

    def record(self, entry):
        with self.lock:
            key = f"{entry.get('service')}:{entry['answer']}"
            self.stats[key] = self.stats.get(key, 0) + 1
            if self.log:
                self.log.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self.log.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "vnpost_sim/1"

    def log_message(self, fmt, *a):
        pass

    def send(self, status, obj, headers=None):
        body = obj if isinstance(obj, bytes) else json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        sim = self.server.sim
        if self.path == "/_sim/orders":
            with sim.lock:
                return self.send(200, {k: {kk: vv for kk, vv in o.items()} for k, o in sim.orders.items()})
        if self.path == "/_sim/stats":
            with sim.lock:
                return self.send(200, {"answers": sim.stats, "tokens_issued": sim.tokens_issued,
                                       "orders": len(sim.orders), "entries": len(sim.entries)})
        return self.send(404, {"error": "unknown path"})

    def do_POST(self):
        sim = self.server.sim
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        url = urlsplit(self.path)
        if url.path.startswith("/_sim/"):
            return self.control(sim, url.path, body)
        with sim.lock:
            cfg = dict(sim.cfg)
        entry = {"time": time.time(), "method": "POST", "path": self.path,
                 "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode("utf-8", "replace")}
        if url.path == "/token":
            entry["service"] = "token"
            status, out = self.token(sim, cfg, body, entry)
            entry["answer"] = status
            sim.record(entry)
            return self.send(status, out)
        if cfg["variant"] == "lgsp":
            op = OPS_LGSP.get((parse_qs(url.query).get("service") or [""])[0]) if url.path == "/vnpost" else None
        else:
            op = OPS_DIRECT.get(url.path)
        entry["service"] = op
        status, out, slow = self.decide(sim, cfg, op, body, entry)
        entry["answer"] = status
        if slow:
            entry["slow"] = slow
        sim.record(entry)
        if slow:
            time.sleep(slow)
        try:
            self.send(status, out)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def token(self, sim, cfg, body, entry):
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                cid = secret = None
        want_id, _, want_secret = cfg["client"].partition(":")
        if form.get("grant_type") != "client_credentials":
            entry["token"] = "refused"
            return 400, {"error": "unsupported_grant_type"}
        if cid != want_id or secret != want_secret:
            entry["token"] = "refused"
            return 401, {"error": "invalid_client"}
        tok = secrets.token_urlsafe(24)
        with sim.lock:
            sim.tokens[tok] = time.time() + cfg["token_ttl"]
            sim.tokens_issued += 1
        entry["token"] = "issued"
        return 200, {"access_token": tok, "token_type": "Bearer", "expires_in": int(cfg["token_ttl"])}

    def decide(self, sim, cfg, op, body, entry):
        auth = self.headers.get("Authorization") or ""
        tok = auth[7:] if auth.startswith("Bearer ") else None
        with sim.lock:
            exp = sim.tokens.get(tok)
        entry["token"] = "unknown" if exp is None else ("ok" if exp > time.time() else "expired")
        if entry["token"] != "ok":
            return 401, {"error": "invalid_token", "error_description": entry["token"]}, 0
        if op is None:
            return 404, {"error": "unknown service", "path": self.path}, 0
        with sim.lock:
            r_fail, r_slow, r_dup, r_odd = sim.rng.random(), sim.rng.random(), sim.rng.random(), sim.rng.random()
        if r_fail < cfg["fail_rate"]:
            return cfg["fail_status"], {"error": "simulated failure"}, 0
        slow = cfg["slow_for"] if r_slow < cfg["slow_rate"] else 0
        try:
            req = json.loads(body)
        except ValueError:
            return 400, {"error": "body is not JSON"}, slow
        if not isinstance(req, dict):
            return 400, {"error": "body is not a JSON object"}, slow
        if op == "tracking" and r_odd < cfg["garbage_rate"]:
            entry["outcome"] = "garbage"  # gateways answer oddly at times (vn-standards §8)
            return 200, b"<html><body>504 Gateway Time-out</body></html>", slow
        status, out = getattr(self, "op_" + op)(sim, cfg, req, entry, r_dup)
        if op == "tracking" and status == 200 and len(out["_embedded"]["rh:doc"]) > 1 and \
                entry.get("outcome") != "duplicated" and \
                r_odd < cfg["garbage_rate"] + cfg["no_id_rate"]:
            doc = dict(out["_embedded"]["rh:doc"][0])
            del doc["_id"]  # an entry without its id, not the page's last
            out["_embedded"]["rh:doc"][0] = doc
            entry["outcome"] = "no-id"
        return status, out, slow

    def op_create(self, sim, cfg, req, entry, _):
        missing = [f for f in REQUIRED if req.get(f) in (None, "")]
        if missing:
            return 400, {"error": "missing fields", "fields": missing}
        bad = [f for f in REQUIRED if f.endswith(("Province", "District")) and not isinstance(req[f], int)]
        if bad:
            return 400, {"error": "codes must be integers", "fields": bad}
        if req["CustomerCode"] != cfg["customer_code"]:
            return 400, {"error": "unknown CustomerCode"}
        num = req["OrderNumber"]
        with sim.lock:
            if num in sim.orders:
                sim.orders[num]["creates"] += 1
                entry["outcome"] = "duplicate"
                return 409, {"error": "OrderNumber exists", "OrderNumber": num}
            seq = len(sim.orders)
            plan = "failed" if seq % 10 == 7 else "returned" if seq % 10 == 8 else "delivered"
            sim.orders[num] = {"order": req, "seq": seq, "plan_name": plan, "plan": PLANS[plan], "step": 0,
                               "entries": [], "cancelled": False, "creates": 1}
            item = f"EB{seq:09d}VN"
            sim.orders[num]["itemCode"] = item
        entry["outcome"] = "created"
        return 200, {"OrderNumber": num, "ItemCode": item, "Status": "success"}

    def op_cancel(self, sim, cfg, req, entry, _):
        num = req.get("OrderNumber")
        if req.get("CustomerCode") != cfg["customer_code"]:
            return 400, {"error": "unknown CustomerCode"}
        with sim.lock:
            o = sim.orders.get(num)
            if o is None:
                return 404, {"error": "no such order", "OrderNumber": num}
            if o["cancelled"]:
                entry["outcome"] = "already-cancelled"
                return 409, {"error": "order already cancelled"}
            if o["step"] >= len(o["plan"]):
                return 400, {"error": "order already finished"}
            o["cancelled"] = True
            sim.add_entry(num, 22)
        entry["outcome"] = "cancelled"
        return 200, {"OrderNumber": num, "Status": "cancelled"}

    def op_tracking(self, sim, cfg, req, entry, r_dup):
        size = req.get("pagesize")
        last = req.get("lastId", "")
        if not isinstance(size, int) or size < 1 or not isinstance(last, str):
            return 400, {"error": "pagesize (integer) and lastId (string) are required"}
        with sim.lock:
            after = [e for e in sim.entries if e[0] > last][:size]
            before = [e for e in sim.entries if e[0] <= last]
        docs = [{"_id": {"$oid": o}, "OrderNumber": num, "StatusCode": code, "StatusMessage": MESSAGES.get(code, "")}
                for o, num, code in after]
        if docs and r_dup < cfg["dup_rate"]:
            # A page that repeats an entry: one already sent (before lastId), or one twice.
            if before and r_dup < cfg["dup_rate"] / 2:
                o, num, code = before[-1]
                docs.insert(0, {"_id": {"$oid": o}, "OrderNumber": num, "StatusCode": code,
                                "StatusMessage": MESSAGES.get(code, "")})
            else:
                i = len(docs) // 2
                docs.insert(i + 1, dict(docs[i]))
            entry["outcome"] = "duplicated"
        return 200, {"_embedded": {"rh:doc": docs}, "_returned": len(docs)}

    def op_price(self, sim, cfg, req, entry, _):
        w = req.get("weight")
        if not isinstance(w, int) or w <= 0 or not isinstance(req.get("sender"), dict) or \
                not isinstance(req.get("receiver"), dict):
            return 400, {"error": "weight, sender and receiver are required"}
        same = req["sender"].get("provCode") == req["receiver"].get("provCode")
        price = (15000 if same else 25000) + 2000 * ((w + 499) // 500 - 1)
        return 200, {"content": {"price": price, "mainSrv": req.get("mainSrv")}}

    def control(self, sim, path, body):
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return self.send(400, {"error": "control body is not JSON"})
        if path == "/_sim/config":
            with sim.lock:
                for k, v in req.items():
                    if k not in sim.cfg:
                        return self.send(400, {"error": f"unknown option {k}"})
                    sim.cfg[k] = v
                return self.send(200, sim.cfg)
        if path == "/_sim/expire":
            with sim.lock:
                for t in sim.tokens:
                    sim.tokens[t] = 0
                return self.send(200, {"expired": len(sim.tokens)})
        return self.send(404, {"error": "unknown control path"})


def main(argv):
    args = parse_args(argv)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.sim = Sim(args)

    def ticker():
        while True:
            time.sleep(srv.sim.cfg["advance_every"])
            srv.sim.advance()

    threading.Thread(target=ticker, daemon=True).start()
    return http_sim.serve(srv, args.port_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
