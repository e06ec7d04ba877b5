#!/usr/bin/env python3
"""http_sim: a REST endpoint for tests (standard library only). It records every request it
receives as one JSON line in --log, then answers as it has been told to: fail a fraction of
calls with 5xx, hang past the client's timeout, answer 429 with Retry-After, answer 4xx for
given bodies, require credentials, and serve an OAuth2 client-credentials token endpoint.
It listens on 127.0.0.1 only.

Command line (every option can also be changed while running, see the control endpoint):
  --port N              port to listen on (0, the default: a free one)
  --port-file FILE      write the port there once listening (tests wait for it)
  --log FILE            the request log (JSON lines, see below); default: none
  --seed N              seed of the random choices (default 1)
  --fail-rate F         fraction of calls answered --fail-status (default 0)
  --fail-status N       the 5xx to answer (default 500)
  --hang-rate F         fraction of calls held --hang-for seconds before answering (200, or --reject-status)
  --hang-for S          seconds (default 5)
  --throttle-rate F     fraction of calls answered 429 with Retry-After --retry-after
  --retry-after V       seconds or an HTTP date (default "1")
  --reject-if TEXT      answer --reject-status for bodies containing TEXT (repeatable)
  --reject-status N     (default 400)
  --status N            answer every other call with N (default 200)
  --bearer TOKEN        require "Authorization: Bearer TOKEN" (401 otherwise)
  --basic USER:PASS     require HTTP basic credentials (401 otherwise)
  --oauth2 ID:SECRET    serve POST /token (client credentials grant; client_secret_post or
                        client_secret_basic), and require one of its unexpired tokens
  --token-ttl S         expires_in of the tokens it issues (default 3600)
  --tls-cert FILE       serve HTTPS with this certificate (PEM) and --tls-key
  --tls-key FILE
  --tls-client-ca FILE  with --tls-cert: require a client certificate issued by this CA

How a call is answered, first match wins: the /_sim/ control paths; POST /token when --oauth2;
missing or wrong credentials: 401; "next" answers queued by the control endpoint, in order;
GET|POST|... /status/NNN: NNN; then by random draw: hang, fail, throttle; a body containing a
--reject-if text: --reject-status; otherwise --status with a JSON body
{"ok": true, "path": PATH, "received": N}.

The log: one JSON object per request (control calls excluded), written and flushed before the
answer: {"time": unix seconds, "method", "path", "headers": {lower-case name: value}, "body":
text (or "body_base64"), "answer": the status it is about to send, "hang": seconds held (if any),
"token": "issued"|"ok"|"expired"|"unknown"|"refused" for OAuth2}.

Control endpoint (JSON):
  POST /_sim/config    {"fail_rate": 1.0, "status": 503, ...}: any option above by its long name
                       with "_" for "-" (reject_if is a list); answers the whole config
  POST /_sim/next      {"answers": [{"status": 429, "headers": {"Retry-After": "2"},
                       "body": "..." or "body_base64": "...", "hang": S}]}: answered to
                       the next calls (after the credentials check), in order
  POST /_sim/expire    makes every token issued so far expire now
  GET  /_sim/stats     {"requests": N, "by_status": {...}, "tokens_issued": N}
"""
import argparse
import base64
import json
import os
import random
import re
import secrets
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--fail-status", type=int, default=500)
    p.add_argument("--hang-rate", type=float, default=0.0)
    p.add_argument("--hang-for", type=float, default=5.0)
    p.add_argument("--throttle-rate", type=float, default=0.0)
    p.add_argument("--retry-after", default="1")
    p.add_argument("--reject-if", action="append", default=[])
    p.add_argument("--reject-status", type=int, default=400)
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--bearer")
    p.add_argument("--basic")
    p.add_argument("--oauth2")
    p.add_argument("--token-ttl", type=float, default=3600.0)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--tls-client-ca")
    return p.parse_args(argv)


class Sim:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.cfg = {k: v for k, v in vars(args).items() if k not in ("port", "port_file", "log") and
                    not k.startswith("tls_")}
        self.rng = random.Random(args.seed)
        self.log = open(args.log, "a") if args.log else None
        self.next = []
        self.tokens = {}  # token -> expiry (unix time)
        self.requests = 0
        self.by_status = {}
        self.tokens_issued = 0
        self.received = 0  # calls that reached the random draw

    def record(self, entry):
        with self.lock:
            self.requests += 1
            self.by_status[str(entry["answer"])] = self.by_status.get(str(entry["answer"]), 0) + 1
            if self.log:
                self.log.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self.log.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms delayed-ACK stall
    server_version = "http_sim/1"

    def log_message(self, fmt, *a):  # quiet: the request log is the record
        pass

    def send(self, status, body=b"", headers=None, content_type="application/json"):
        if isinstance(body, str):
            body = body.encode()
        if status in (204, 304) or status < 200:
            body = b""  # these carry no body (RFC 9110 §6.4.1)
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body:
            self.send_header("Content-Type", content_type)
        if status not in (204, 304) and status >= 200:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def handle_any(self):
        sim = self.server.sim
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        path = self.path
        if path.startswith("/_sim/"):
            return self.control(sim, path, body)
        with sim.lock:
            cfg = dict(sim.cfg)
        entry = {"time": time.time(), "method": self.command, "path": path,
                 "headers": {k.lower(): v for k, v in self.headers.items()}}
        try:
            entry["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            entry["body_base64"] = base64.b64encode(body).decode()
        status, out_headers, out_body, hang = self.decide(sim, cfg, path, body, entry)
        entry["answer"] = status
        if hang:
            entry["hang"] = hang
        sim.record(entry)
        if hang:
            time.sleep(hang)
        try:
            self.send(status, out_body, out_headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def decide(self, sim, cfg, path, body, entry):
        """(status, headers, body, seconds to hang) for a call."""
        if cfg["oauth2"] and path.split("?")[0] == "/token" and self.command == "POST":
            return self.token(sim, cfg, body, entry) + (0,)
        denied = self.check_auth(sim, cfg, entry)
        if denied:
            return 401, {"WWW-Authenticate": denied}, json.dumps({"error": "unauthorized"}), 0
        with sim.lock:
            nxt = sim.next.pop(0) if sim.next else None
        if nxt:
            out = base64.b64decode(nxt["body_base64"]) if "body_base64" in nxt else nxt.get("body", "")
            return int(nxt.get("status", 200)), nxt.get("headers") or {}, out, float(nxt.get("hang", 0))
        m = re.match(r"^/status/(\d{3})(?:[/?]|$)", path)
        if m:
            return int(m.group(1)), {}, json.dumps({"status": int(m.group(1))}), 0
        with sim.lock:
            r_hang, r_fail, r_throttle = sim.rng.random(), sim.rng.random(), sim.rng.random()
            sim.received += 1
            received = sim.received
        rejected = next((t for t in cfg["reject_if"] if t.encode() in body), None)
        refusal = (cfg["reject_status"], {}, json.dumps({"error": f"refused: contains {rejected}"}))
        if r_hang < cfg["hang_rate"]:  # a slow answer is still the answer this body gets
            if rejected is not None:
                return (*refusal, cfg["hang_for"])
            return 200, {}, json.dumps({"ok": True, "path": path, "hung": True}), cfg["hang_for"]
        if r_fail < cfg["fail_rate"]:
            return cfg["fail_status"], {}, json.dumps({"error": "simulated failure"}), 0
        if r_throttle < cfg["throttle_rate"]:
            return 429, {"Retry-After": str(cfg["retry_after"])}, json.dumps({"error": "slow down"}), 0
        if rejected is not None:
            return (*refusal, 0)
        return cfg["status"], {}, json.dumps({"ok": True, "path": path, "received": received}), 0

    def check_auth(self, sim, cfg, entry):
        """None when the call carries what is required, else the WWW-Authenticate challenge."""
        auth = self.headers.get("Authorization") or ""
        if cfg["bearer"] and auth != f"Bearer {cfg['bearer']}":
            return 'Bearer realm="sim"'
        if cfg["basic"]:
            want = "Basic " + base64.b64encode(cfg["basic"].encode()).decode()
            if auth != want:
                return 'Basic realm="sim"'
        if cfg["oauth2"]:
            tok = auth[7:] if auth.startswith("Bearer ") else None
            with sim.lock:
                exp = sim.tokens.get(tok)
            entry["token"] = "unknown" if exp is None else ("ok" if exp > time.time() else "expired")
            if entry["token"] != "ok":
                return 'Bearer realm="sim", error="invalid_token"'
        return None

    def token(self, sim, cfg, body, entry):
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                cid = secret = None
        want_id, _, want_secret = cfg["oauth2"].partition(":")
        if form.get("grant_type") != "client_credentials":
            entry["token"] = "refused"
            return 400, {}, json.dumps({"error": "unsupported_grant_type"})
        if cid != want_id or secret != want_secret:
            entry["token"] = "refused"
            return 401, {}, json.dumps({"error": "invalid_client"})
        tok = secrets.token_urlsafe(24)
        with sim.lock:
            sim.tokens[tok] = time.time() + cfg["token_ttl"]
            sim.tokens_issued += 1
        entry["token"] = "issued"
        ttl = cfg["token_ttl"]
        out = {"access_token": tok, "token_type": "Bearer", "expires_in": int(ttl) if ttl == int(ttl) else ttl}
        if form.get("scope"):
            out["scope"] = form["scope"]
        return 200, {"Cache-Control": "no-store"}, json.dumps(out)

    def control(self, sim, path, body):
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return self.send(400, json.dumps({"error": "control body is not JSON"}))
        if path == "/_sim/config" and self.command == "POST":
            with sim.lock:
                for k, v in req.items():
                    if k not in sim.cfg:
                        return self.send(400, json.dumps({"error": f"unknown option {k}"}))
                    sim.cfg[k] = v
                return self.send(200, json.dumps(sim.cfg))
        if path == "/_sim/next" and self.command == "POST":
            with sim.lock:
                sim.next.extend(req.get("answers", []))
            return self.send(200, json.dumps({"queued": len(sim.next)}))
        if path == "/_sim/expire" and self.command == "POST":
            with sim.lock:
                for t in sim.tokens:
                    sim.tokens[t] = 0
            return self.send(200, json.dumps({"expired": len(sim.tokens)}))
        if path == "/_sim/stats":
            with sim.lock:
                return self.send(200, json.dumps({"requests": sim.requests, "by_status": sim.by_status,
                                                  "tokens_issued": sim.tokens_issued}))
        return self.send(404, json.dumps({"error": "unknown control path"}))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class QuietServer(ThreadingHTTPServer):
    """A threading server that does not print a trace for a client that went away (a killed hub
    is normal in these tests)."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def serve(srv, port_file=None):
    """Announces srv's port in port_file (atomically, for the test waiting on it) and serves
    until interrupted. Every simulator ends its main() with this."""
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(srv.server_address[1]))
        os.replace(tmp, port_file)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


def main(argv):
    args = parse_args(argv)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.sim = Sim(args)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.tls_client_ca)
        # A failed handshake (no or a wrong client certificate) is an OSError on accept: the
        # server drops that connection and carries on.
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    return serve(srv, args.port_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
