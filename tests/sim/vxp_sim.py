#!/usr/bin/env python3
"""vxp_sim: the VPCP national document axis (VXP) HTTP API of vn-standards.md §1.11 A, for tests
(standard library only, 127.0.0.1). Agencies send edXML packets (sendEdoc) to other agencies'
inboxes, list them (getReceivedEdocList), fetch them (getEdoc) and confirm them (updateStatus).

It checks every call the way the axis does: the XroadVnpt-* headers named by
XroadVnpt-sign-header-key are all present and equal to the JSON of XroadVnpt-sign-header (in
that order), XroadVnpt-hash-header is hex HMAC-SHA256(agency secret, that JSON text),
XroadVnpt-systemid is a known agency and XroadVnpt-from its organisation code, the timestamp is
ddMMyyyyTHHmmss+SSSS within 15 minutes, servicetype is eDoc; sendEdoc's `hash-file` is the
SHA-256 of the body in hex WITHOUT zero padding (the SDK's Integer.toHexString). A refused
header answers 401 (HMAC/identity) or 412 (hash-file) with {"status": "FAIL", ...}.

Command line:
  --port N / --port-file FILE   listen port (0: free one) / where to write it
  --log FILE                    every call as a JSON line (see below)
  --agency SYSTEMID:ORGANID:SECRET   an agency (repeatable)
  --seed N
Faults (also settable while running: POST /_sim/config {"getedoc_5xx": 0.2, ...}):
  --list-twice F      fraction of list answers that name a pending packet twice
  --relist-done F     fraction of confirmed packets listed once more afterwards (a stale list)
  --getedoc-5xx F     fraction of getEdoc calls answered 503
  --hash-file-fail F  fraction of sendEdoc calls treated as arriving corrupted (412 hash-file)
  --bad-hmac F        fraction of calls checked against a rotated secret (401)
  --tamper F          fraction of getEdoc answers whose packet text is altered after signing
  --wrong-signed F    fraction of getEdoc answers replaced by --rogue-file (a packet signed by
                      an untrusted key)
  --rogue-file FILE
  --broken F          fraction of getEdoc answers whose packet has stray bytes before <?xml and
                      an unclosed tag (broken packets exist in the wild, §8)
  --slow F / --slow-for S   fraction of calls held S seconds before answering

Log lines: {"time", "op", "from", "systemid", "messagetype", "answer", "reason"?, and per op:
sendEdoc "docIds", "to", "sha256", "size"; getEdoc "docId", "fault"?; updateStatus "docId",
"status", "description"; getReceivedEdocList "listed"}.
Control: GET /_sim/state -> {"docs": [{docId, from, to, messageType, status, description,
sha256, size, fault}], "stats": {...}}; POST /_sim/config; POST /_sim/inject {"to": ORGAN,
"data_base64": ..., "from"?, "messageType"?} -> {"docId"} (a packet in an inbox, as if sent).
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import json
import random
import re
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_sim  # noqa: E402

TS_RE = re.compile(r"^(\d{2})(\d{2})(\d{4})T(\d{2})(\d{2})(\d{2})\+(\d{4})$")
FAULTS = ["list_twice", "relist_done", "getedoc_5xx", "hash_file_fail", "bad_hmac", "tamper", "wrong_signed", "broken",
          "slow"]


def hash_file(data):
    """The SDK's hash-file: each byte of the SHA-256 as Integer.toHexString (no zero padding)."""
    return "".join("%x" % b for b in hashlib.sha256(data).digest())


class Sim:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.agencies = {}  # systemid -> (organ, secret)
        for a in args.agency or []:
            sysid, organ, secret = a.split(":", 2)
            self.agencies[sysid] = (organ, secret.encode())
        self.cfg = {f: getattr(args, f) for f in FAULTS}
        self.cfg["slow_for"] = args.slow_for
        self.rogue = open(args.rogue_file, "rb").read() if args.rogue_file else None
        self.rng = random.Random(args.seed)
        self.docs = {}  # docId -> dict
        self.order = []
        self.relisted = set()
        self.stats = {}
        self.logf = open(args.log, "a") if args.log else None

    def draw(self, name):
        with self.lock:
            return self.rng.random() < float(self.cfg.get(name) or 0)

    def record(self, entry):
        entry["time"] = time.time()
        with self.lock:
            self.stats[entry.get("op", "?")] = self.stats.get(entry.get("op", "?"), 0) + 1
            if self.logf:
                self.logf.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self.logf.flush()


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
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def fail(self, entry, status, code, desc):
        entry["answer"] = status
        entry["reason"] = desc
        self.server.sim.record(entry)
        self.send(status, {"status": "FAIL", "ErrorCode": code, "ErrorDesc": desc})

    def check_headers(self, sim, entry):
        """The axis's checks; returns (organ, error) with error None when they pass."""
        h = self.headers
        keys = h.get("XroadVnpt-sign-header-key")
        sign = h.get("XroadVnpt-sign-header")
        given = h.get("XroadVnpt-hash-header")
        sysid = h.get("XroadVnpt-systemid")
        entry["systemid"] = sysid
        entry["from"] = h.get("XroadVnpt-from")
        entry["messagetype"] = h.get("XroadVnpt-messagetype")
        if not keys or not sign or not given or not h.get("XroadVnpt-version"):
            return None, "missing XroadVnpt-sign-header-key, -sign-header, -hash-header or -version"
        if sysid not in sim.agencies:
            return None, "unknown XroadVnpt-systemid %r" % sysid
        organ, secret = sim.agencies[sysid]
        try:
            obj = json.loads(sign, object_pairs_hook=list)
        except ValueError:
            return None, "XroadVnpt-sign-header is not JSON"
        names = keys.split(";")
        if [k for k, _ in obj] != ["XroadVnpt-" + n for n in names]:
            return None, "XroadVnpt-sign-header does not list XroadVnpt-sign-header-key's names in order"
        for k, v in obj:
            if h.get(k) != v:
                return None, "header %s differs from its signed value" % k
        for n in ("systemid", "timestamp", "servicetype", "messagetype", "from"):
            if n not in names:
                return None, "XroadVnpt-%s is not signed" % n
        if sim.draw("bad_hmac"):
            secret = secret + b"-rotated"
            entry["fault"] = "bad_hmac"
        want = hmac.new(secret, sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, given.lower()):
            return None, "XroadVnpt-hash-header does not match"
        m = TS_RE.match(h.get("XroadVnpt-timestamp", ""))
        if not m:
            return None, "XroadVnpt-timestamp is not ddMMyyyyTHHmmss+SSSS"
        d, mo, y, hh, mi, ss, _ = (int(x) for x in m.groups())
        try:
            t = datetime.datetime(y, mo, d, hh, mi, ss).timestamp()
        except ValueError:
            return None, "XroadVnpt-timestamp is not a date"
        if abs(t - time.time()) > 900:
            return None, "XroadVnpt-timestamp is more than 15 minutes off"
        if h.get("XroadVnpt-servicetype") != "eDoc":
            return None, "XroadVnpt-servicetype must be eDoc"
        if entry["from"] != organ:
            return None, "XroadVnpt-from %r is not the organisation of system %s" % (entry["from"], sysid)
        return organ, None

    def handle_any(self):
        sim = self.server.sim
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        path = self.path.split("?")[0]
        if path.startswith("/_sim/"):
            return self.control(sim, path, body)
        op = path.strip("/")
        entry = {"op": op}
        if sim.draw("slow"):
            entry["hang"] = sim.cfg["slow_for"]
            time.sleep(float(sim.cfg["slow_for"]))
        organ, err = self.check_headers(sim, entry)
        if err:
            return self.fail(entry, 401, "401", err)
        fn = {"sendEdoc": self.send_edoc, "getReceivedEdocList": self.list_edoc, "getEdoc": self.get_edoc,
              "updateStatus": self.update_status}.get(op)
        if not fn:
            return self.fail(entry, 404, "404", "no operation " + op)
        fn(sim, organ, body, entry)

    def send_edoc(self, sim, organ, body, entry):
        given = self.headers.get("hash-file", "")
        want = hash_file(body)
        entry["size"] = len(body)
        entry["sha256"] = hashlib.sha256(body).hexdigest()
        if sim.draw("hash_file_fail"):
            want = hash_file(body + b" ")  # as if one byte changed on the way
            entry["fault"] = "hash_file_fail"
        if given != want:
            return self.fail(entry, 412, "-3", "hash-file does not match the file")
        try:
            to = json.loads(self.headers.get("XroadVnpt-to", ""))
            assert isinstance(to, list) and to and all(isinstance(x, str) for x in to)
        except (ValueError, AssertionError):
            return self.fail(entry, 400, "-2", "XroadVnpt-to must be a JSON array of organisation codes")
        known = {o for o, _ in sim.agencies.values()}
        unknown = [t for t in to if t not in known]
        if unknown:
            return self.fail(entry, 200, "-4", "unknown recipient %s" % ",".join(unknown))
        mt = entry["messagetype"]
        if mt not in ("edoc", "status"):
            return self.fail(entry, 400, "-2", "messagetype must be edoc or status")
        ids = []
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        with sim.lock:
            for t in to:
                did = str(uuid.uuid4())
                sim.docs[did] = {"docId": did, "from": organ, "to": t, "messageType": mt, "status": "initial",
                                 "data": body, "sha256": entry["sha256"], "size": len(body), "created_time": now,
                                 "updated_time": now}
                sim.order.append(did)
                ids.append(did)
        entry.update(docIds=ids, to=to, answer=200)
        sim.record(entry)
        self.send(200, {"status": "OK", "ErrorCode": "0", "ErrorDesc": "", "DocId": ids[0]})

    def list_edoc(self, sim, organ, body, entry):
        mt = entry["messagetype"]
        out = []
        with sim.lock:
            for did in sim.order:
                d = sim.docs[did]
                if d["to"] != organ or d["messageType"] != mt:
                    continue
                if d["status"] == "initial":
                    out.append(did)
                    if sim.rng.random() < float(sim.cfg["list_twice"] or 0):
                        out.append(did)
                elif did not in sim.relisted and sim.rng.random() < float(sim.cfg["relist_done"] or 0):
                    sim.relisted.add(did)
                    out.append(did)
            data = [{"docId": did, "serviceType": "eDoc", "messageType": sim.docs[did]["messageType"],
                     "created_time": sim.docs[did]["created_time"], "updated_time": sim.docs[did]["updated_time"],
                     "from": sim.docs[did]["from"], "to": sim.docs[did]["to"], "status": sim.docs[did]["status"],
                     "status_desc": ""} for did in out]
        entry.update(listed=out, answer=200)
        sim.record(entry)
        self.send(200, {"status": "OK", "ErrorCode": "0", "ErrorDesc": "", "data": data})

    def get_edoc(self, sim, organ, body, entry):
        did = self.headers.get("docId")
        entry["docId"] = did
        with sim.lock:
            d = sim.docs.get(did)
        if not d or d["to"] != organ:
            return self.fail(entry, 200, "-1", "no document %s for %s" % (did, organ))
        if sim.draw("getedoc_5xx"):
            entry["fault"] = "getedoc_5xx"
            entry["answer"] = 503
            sim.record(entry)
            return self.send(503, {"status": "FAIL", "ErrorCode": "503", "ErrorDesc": "service unavailable"})
        data = d["data"]
        with sim.lock:
            fault = d.get("fault")
            if fault is None:  # a packet is damaged (or not) once, the same way each time it is fetched
                fault = ("tamper" if sim.rng.random() < float(sim.cfg["tamper"] or 0) else
                         "wrong_signed" if sim.rogue and sim.rng.random() < float(sim.cfg["wrong_signed"] or 0)
                         else "broken" if sim.rng.random() < float(sim.cfg["broken"] or 0) else "")
                d["fault"] = fault
        if fault == "tamper":
            text = data.decode("utf-8")
            i = text.find("Subject>")
            data = (text[:i + 8] + "[altered] " + text[i + 8:]).encode() if i >= 0 else data + b" "
        elif fault == "wrong_signed":
            data = sim.rogue
        elif fault == "broken":
            data = b"\x00\x00junk" + data.replace(b"</edXML:Subject>", b"", 1)
        if fault:
            entry["fault"] = fault
        entry["answer"] = 200
        sim.record(entry)
        self.send(200, {"status": "OK", "ErrorCode": "0", "ErrorDesc": "",
                        "data": base64.b64encode(data).decode()})

    def update_status(self, sim, organ, body, entry):
        did = self.headers.get("docid")
        st = self.headers.get("status")
        try:
            desc = json.loads(body or b"{}").get("description")
        except ValueError:
            desc = None
        entry.update(docId=did, status=st, description=desc)
        if st not in ("done", "fail"):
            return self.fail(entry, 400, "-2", "status must be done or fail")
        with sim.lock:
            d = sim.docs.get(did)
            if d and d["to"] == organ:
                d["status"] = st
                d["description"] = desc
                d["updated_time"] = time.strftime("%Y-%m-%d %H:%M:%S")
                d.setdefault("confirmations", []).append(st)
        if not d or d["to"] != organ:
            return self.fail(entry, 200, "-1", "no document %s for %s" % (did, organ))
        entry["answer"] = 200
        sim.record(entry)
        self.send(200, {"status": "OK", "ErrorCode": "0", "ErrorDesc": ""})

    def control(self, sim, path, body):
        if path == "/_sim/config":
            try:
                upd = json.loads(body or b"{}")
            except ValueError:
                return self.send(400, {"error": "not JSON"})
            with sim.lock:
                for k, v in upd.items():
                    if k not in sim.cfg:
                        return self.send(400, {"error": "unknown option " + k})
                    sim.cfg[k] = v
                cfg = dict(sim.cfg)
            return self.send(200, cfg)
        if path == "/_sim/inject":  # a packet put in an inbox as if another system had sent it
            try:
                req = json.loads(body or b"{}")
                data = base64.b64decode(req["data_base64"])
                to, frm, mt = req["to"], req.get("from", "000.00.00.X00"), req.get("messageType", "edoc")
            except (ValueError, KeyError, TypeError) as e:
                return self.send(400, {"error": "inject wants {to, data_base64[, from, messageType]}: %s" % e})
            did = str(uuid.uuid4())
            now = time.strftime("%Y-%m-%d %H:%M:%S")
            with sim.lock:
                sim.docs[did] = {"docId": did, "from": frm, "to": to, "messageType": mt, "status": "initial",
                                 "data": data, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                 "created_time": now, "updated_time": now}
                sim.order.append(did)
            return self.send(200, {"docId": did})
        if path == "/_sim/state":
            with sim.lock:
                docs = [{k: v for k, v in sim.docs[d].items() if k != "data"} for d in sim.order]
                stats = dict(sim.stats)
            return self.send(200, {"docs": docs, "stats": stats})
        self.send(404, {"error": "unknown control path"})


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    p.add_argument("--agency", action="append")
    p.add_argument("--seed", type=int, default=1)
    for f in FAULTS:
        p.add_argument("--" + f.replace("_", "-"), type=float, default=0.0)
    p.add_argument("--slow-for", type=float, default=3.0)
    p.add_argument("--rogue-file")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    srv = http_sim.QuietServer(("127.0.0.1", args.port), Handler)
    srv.sim = Sim(args)
    return http_sim.serve(srv, args.port_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
