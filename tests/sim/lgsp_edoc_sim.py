#!/usr/bin/env python3
"""lgsp_edoc_sim: a provincial LGSP document axis ("trục liên thông", vn-standards.md §1.11 B)
for tests (standard library only, 127.0.0.1): a WSO2-style OAuth2 token endpoint and the REST
API under --base (default /truclienthong/v1.0.0).

  POST /token                   client credentials grant (client_secret_post or basic) ->
                                {"access_token", "token_type": "Bearer", "expires_in"}
  GET  BASE/vanbans             the caller agency's packets not DONE/FAIL -> {"status": "OK",
                                "errorCode": 0, "data": [{docId, serviceType, messageType,
                                statusDesc, from, to, status, createdTime}]}
  GET  BASE/vanbans/{docId}     {"data": base64 edXML}
  POST BASE/vanbans             {"file": base64 edXML, "loaiVanBan": "edoc"|"status"} -> {"docId"};
                                recipients read from the packet (To/OrganId, or
                                ResponseFor/OrganId of a status), each must be registered
  PUT  BASE/vanbans/{docId}     {"status": INITIAL|PROCESSING|DONE|FAIL, "description"}
  GET|POST BASE/donvilienthongs, PUT BASE/donvilienthongs/{code}: the agency registry

Every API call must carry a valid unexpired bearer token (401 otherwise) and a known
`secretDonVi` header (the agency; 403 otherwise); a packet is refused (400) when it is not XML
or names no recipient; an unregistered recipient is refused with errorCode 404.

Command line: --port, --port-file, --log FILE (a JSON line per call: method, path, op, agency,
token, answer, reason?, docId?, status?, docIds?, fault?), --client ID:SECRET, --agency
CODE:SECRETDONVI (repeatable; registered), --token-ttl S (default 3600), --seed N,
--rogue-file FILE. Faults (POST /_sim/config while running): list_twice, relist_done,
get_5xx, expire_token (fraction of calls that find their token expired: 401), tamper,
wrong_signed, broken (stray bytes before <?xml, an unclosed tag), slow (+ slow_for S). GET /_sim/state: docs, registry, stats, tokens issued.
"""
import argparse
import base64
import hashlib
import json
import random
import secrets
import os
import sys
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_sim  # noqa: E402

FAULTS = ["list_twice", "relist_done", "get_5xx", "expire_token", "tamper", "wrong_signed", "broken", "slow"]


class Sim:
    def __init__(self, a):
        self.lock = threading.Lock()
        self.base = a.base.rstrip("/")
        self.clients = dict(c.split(":", 1) for c in a.client or [])
        self.agencies = {}  # secretDonVi -> code
        self.registry = {}
        for ag in a.agency or []:
            code, sec = ag.split(":", 1)
            self.agencies[sec] = code
            self.registry[code] = {"code": code, "pcode": "", "name": code}
        self.ttl = a.token_ttl
        self.tokens = {}
        self.issued = 0
        self.cfg = {f: getattr(a, f) for f in FAULTS}
        self.cfg["slow_for"] = a.slow_for
        self.rogue = open(a.rogue_file, "rb").read() if a.rogue_file else None
        self.rng = random.Random(a.seed)
        self.docs, self.order, self.relisted, self.stats = {}, [], set(), {}
        self.logf = open(a.log, "a") if a.log else None

    def draw(self, name):
        with self.lock:
            return self.rng.random() < float(self.cfg.get(name) or 0)

    def record(self, e):
        e["time"] = time.time()
        with self.lock:
            self.stats[e.get("op", "?")] = self.stats.get(e.get("op", "?"), 0) + 1
            if self.logf:
                self.logf.write(json.dumps(e, ensure_ascii=False) + "\n")
                self.logf.flush()


def local(tag):
    return tag.rsplit("}", 1)[-1]


def recipients(data):
    """(kind, [OrganId]) read from an edXML packet, prefix-agnostic."""
    root = ET.fromstring(data)
    hdr = None
    for el in root.iter():
        if local(el.tag) == "edXMLHeader":
            hdr = el
            break
    if hdr is None:
        raise ValueError("no edXMLHeader")
    for h in hdr:
        name = local(h.tag)
        if name not in ("MessageHeader", "Status"):
            continue
        status = name == "Status" or any(local(c.tag) == "StatusCode" for c in h)
        parents = [c for c in h if local(c.tag) == ("ResponseFor" if status else "To")]
        ids = [x.text.strip() for p in parents for x in p if local(x.tag) == "OrganId" and x.text]
        return ("status" if status else "edoc"), ids
    raise ValueError("no MessageHeader or Status")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

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
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def answer(self, e, status, obj):
        e["answer"] = status
        self.server.sim.record(e)
        self.send(status, obj)

    def fail(self, e, status, code, desc):
        e["reason"] = desc
        self.answer(e, status, {"status": "FAIL", "errorCode": code, "errorDesc": desc})

    def handle_any(self, method):
        sim = self.server.sim
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/_sim/"):
            return self.control(sim, path, body)
        e = {"method": method, "path": path}
        if sim.draw("slow"):
            e["hang"] = sim.cfg["slow_for"]
            time.sleep(float(sim.cfg["slow_for"]))
        if path == "/token" and method == "POST":
            return self.token(sim, body, e)
        # the bearer token
        auth = self.headers.get("Authorization", "")
        tok = auth[7:] if auth.startswith("Bearer ") else None
        with sim.lock:
            exp = sim.tokens.get(tok)
        if exp is None:
            e["token"] = "unknown"
            return self.fail(e, 401, 401, "invalid token")
        if exp < time.time() or sim.draw("expire_token"):
            e["token"] = "expired"
            with sim.lock:
                sim.tokens[tok] = 0
            return self.fail(e, 401, 401, "token expired")
        e["token"] = "ok"
        agency = sim.agencies.get(self.headers.get("secretDonVi", ""))
        e["agency"] = agency
        if not agency:
            return self.fail(e, 403, 403, "unknown secretDonVi")
        if not path.startswith(sim.base + "/"):
            return self.fail(e, 404, 404, "not found")
        parts = path[len(sim.base) + 1:].split("/")
        try:
            req = json.loads(body) if body else {}
        except ValueError:
            return self.fail(e, 400, 400, "body is not JSON")
        if parts[0] == "vanbans":
            if len(parts) == 1 and method == "GET":
                return self.list_docs(sim, agency, e)
            if len(parts) == 1 and method == "POST":
                return self.send_doc(sim, agency, req, e)
            did = urllib.parse.unquote(parts[1]) if len(parts) == 2 else None
            if did and method == "GET":
                return self.get_doc(sim, agency, did, e)
            if did and method == "PUT":
                return self.put_status(sim, agency, did, req, e)
        if parts[0] == "donvilienthongs":
            return self.registry(sim, method, parts, req, e)
        return self.fail(e, 404, 404, "no such operation")

    def token(self, sim, body, e):
        e["op"] = "token"
        form = urllib.parse.parse_qs(body.decode())
        cid, sec = (form.get("client_id") or [None])[0], (form.get("client_secret") or [None])[0]
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            cid, _, sec = base64.b64decode(auth[6:]).decode().partition(":")
        if (form.get("grant_type") or [None])[0] != "client_credentials" or sim.clients.get(cid) != sec:
            return self.answer(e, 401, {"error": "invalid_client"})
        t = secrets.token_hex(16)
        with sim.lock:
            sim.tokens[t] = time.time() + sim.ttl
            sim.issued += 1
        self.answer(e, 200, {"access_token": t, "token_type": "Bearer", "expires_in": sim.ttl})

    def list_docs(self, sim, agency, e):
        e["op"] = "list"
        out = []
        with sim.lock:
            for did in sim.order:
                d = sim.docs[did]
                if d["to"] != agency:
                    continue
                if d["status"] in ("INITIAL", "PROCESSING"):
                    out.append(did)
                    if sim.rng.random() < float(sim.cfg["list_twice"] or 0):
                        out.append(did)
                elif did not in sim.relisted and sim.rng.random() < float(sim.cfg["relist_done"] or 0):
                    sim.relisted.add(did)
                    out.append(did)
            data = [{"docId": did, "serviceType": "eDoc", "messageType": sim.docs[did]["messageType"],
                     "statusDesc": "", "from": sim.docs[did]["from"], "to": agency,
                     "status": sim.docs[did]["status"] if did not in sim.relisted else "INITIAL",
                     "createdTime": sim.docs[did]["created"]} for did in out]
        e["listed"] = out
        self.answer(e, 200, {"status": "OK", "errorCode": 0, "errorDesc": "", "data": data})

    def send_doc(self, sim, agency, req, e):
        e["op"] = "send"
        try:
            data = base64.b64decode(req.get("file") or "", validate=True)
            kind, to = recipients(data)
        except (ValueError, ET.ParseError, TypeError) as x:
            return self.fail(e, 400, 400, "file is not an edXML packet: %s" % x)
        e.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data), to=to, loaiVanBan=req.get("loaiVanBan"))
        if req.get("loaiVanBan") != kind:
            return self.fail(e, 400, 400, "loaiVanBan %r but the packet is %s" % (req.get("loaiVanBan"), kind))
        if not to:
            return self.fail(e, 400, 400, "the packet names no recipient")
        missing = [t for t in to if t not in sim.registry]
        if missing:
            return self.fail(e, 200, 404, "recipient not registered: " + ",".join(missing))
        ids = []
        with sim.lock:
            for t in to:
                did = str(uuid.uuid4())
                sim.docs[did] = {"docId": did, "from": agency, "to": t, "messageType": kind, "status": "INITIAL",
                                 "data": data, "sha256": e["sha256"], "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                 "history": []}
                sim.order.append(did)
                ids.append(did)
        e["docIds"] = ids
        self.answer(e, 200, {"status": "OK", "errorCode": 0, "errorDesc": "", "docId": ids[0]})

    def get_doc(self, sim, agency, did, e):
        e.update(op="get", docId=did)
        with sim.lock:
            d = sim.docs.get(did)
        if not d or d["to"] != agency:
            return self.fail(e, 404, 404, "no document %s" % did)
        if sim.draw("get_5xx"):
            e["fault"] = "get_5xx"
            return self.fail(e, 502, 502, "bad gateway")
        with sim.lock:
            fault = d.get("fault")
            if fault is None:
                fault = ("tamper" if sim.rng.random() < float(sim.cfg["tamper"] or 0) else
                         "wrong_signed" if sim.rogue and sim.rng.random() < float(sim.cfg["wrong_signed"] or 0)
                         else "broken" if sim.rng.random() < float(sim.cfg["broken"] or 0) else "")
                d["fault"] = fault
        data = d["data"]
        if fault == "tamper":
            t = data.decode("utf-8")
            i = t.find("Subject>")
            data = (t[:i + 8] + "[altered] " + t[i + 8:]).encode() if i >= 0 else data + b" "
        elif fault == "wrong_signed":
            data = sim.rogue
        elif fault == "broken":
            data = b"\x00\x00junk" + data.replace(b"</edXML:Subject>", b"", 1)
        if fault:
            e["fault"] = fault
        self.answer(e, 200, {"status": "OK", "errorCode": 0, "errorDesc": "",
                             "data": base64.b64encode(data).decode()})

    def put_status(self, sim, agency, did, req, e):
        st = req.get("status")
        e.update(op="status", docId=did, status=st, description=req.get("description"))
        if st not in ("INITIAL", "PROCESSING", "DONE", "FAIL"):
            return self.fail(e, 400, 400, "status must be INITIAL, PROCESSING, DONE or FAIL")
        with sim.lock:
            d = sim.docs.get(did)
            if d and d["to"] == agency:
                d["history"].append(st)
                d["status"] = st
                d["description"] = req.get("description")
        if not d or d["to"] != agency:
            return self.fail(e, 404, 404, "no document %s" % did)
        self.answer(e, 200, {"status": "OK", "errorCode": 0, "errorDesc": ""})

    def registry(self, sim, method, parts, req, e):
        e["op"] = "registry"
        if method == "GET" and len(parts) == 1:
            with sim.lock:
                data = list(sim.registry.values())
            return self.answer(e, 200, {"status": "OK", "errorCode": 0, "data": data})
        if method == "POST" and len(parts) == 1:
            if not isinstance(req, dict) or not req.get("code"):
                return self.fail(e, 400, 400, "code is required")
            e["code"] = req["code"]
            with sim.lock:
                sim.registry[req["code"]] = {k: req.get(k) for k in ("code", "pcode", "name", "email", "fax", "mobile")}
            return self.answer(e, 200, {"status": "OK", "errorCode": 0})
        if method == "PUT" and len(parts) == 2:
            code = urllib.parse.unquote(parts[1])
            e["code"] = code
            with sim.lock:
                gone = sim.registry.pop(code, None)
            if not gone:
                return self.fail(e, 404, 404, "agency %s is not registered" % code)
            return self.answer(e, 200, {"status": "OK", "errorCode": 0})
        return self.fail(e, 405, 405, "method not allowed")

    def control(self, sim, path, body):
        if path == "/_sim/config":
            upd = json.loads(body or b"{}")
            with sim.lock:
                for k, v in upd.items():
                    if k not in sim.cfg:
                        return self.send(400, {"error": "unknown option " + k})
                    sim.cfg[k] = v
                return self.send(200, dict(sim.cfg))
        if path == "/_sim/state":
            with sim.lock:
                docs = [{k: v for k, v in sim.docs[d].items() if k != "data"} for d in sim.order]
                return self.send(200, {"docs": docs, "registry": list(sim.registry.values()), "stats": dict(sim.stats),
                                       "tokens_issued": sim.issued})
        self.send(404, {"error": "unknown control path"})


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    p.add_argument("--base", default="/truclienthong/v1.0.0")
    p.add_argument("--client", action="append")
    p.add_argument("--agency", action="append")
    p.add_argument("--token-ttl", type=int, default=3600)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rogue-file")
    for f in FAULTS:
        p.add_argument("--" + f.replace("_", "-"), type=float, default=0.0)
    p.add_argument("--slow-for", type=float, default=3.0)
    a = p.parse_args(argv)
    srv = http_sim.QuietServer(("127.0.0.1", a.port), Handler)
    srv.sim = Sim(a)
    return http_sim.serve(srv, a.port_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
