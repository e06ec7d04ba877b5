#!/usr/bin/env python3
"""sms_sim: an HTTP SMS gateway for tests (standard library only), built on http_sim.py: the same
command line, faults (--fail-rate, --hang-rate, --throttle-rate), credentials (--bearer,
--basic, --oauth2), control endpoint and request log, plus what a gateway checks and does:

POST /sms/send with JSON {"to": "+84..." or "0...", "text": UTF-8 text, "sender": brandname,
"id": the caller's id}: a body that is not such JSON, a number that is not 8 to 15 digits or an
empty text is answered 400 {"error": ...}; otherwise the message is accepted once per
Idempotency-Key: 200 {"messageId": "SMS00000001", "status": "accepted", "segments": N} (N for
UCS-2, 70 characters a part, 67 when split: Vietnamese text is not GSM 7-bit), and a call with
a key it has seen is answered 200 with the first messageId and "duplicate": true, sending
nothing. The log entry of an accepted call gets "sms": {"to", "text", "sender", "messageId",
"segments"} and of a repeated one "duplicate": true. A call held past the client's timeout
(--hang-rate) is accepted before the hold, as a real gateway may have sent it already.
GET /_sim/sent: {Idempotency-Key: messageId}.
"""
import json
import os
import re
import sys
from http.server import ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_sim  # noqa: E402


def segments(text):
    n = len(text.encode("utf-16-le")) // 2
    return 1 if n <= 70 else (n + 66) // 67


class SmsHandler(http_sim.Handler):
    server_version = "sms_sim/1"

    def decide(self, sim, cfg, path, body, entry):
        status, headers, out, hang = super().decide(sim, cfg, path, body, entry)
        if path.split("?")[0] != "/sms/send" or status != cfg["status"]:
            return status, headers, out, hang  # token, 401, faults, /status/NNN as http_sim answers
        try:
            req = json.loads(body)
        except ValueError:
            return 400, {}, json.dumps({"error": "body is not JSON"}), 0
        if not isinstance(req, dict):
            return 400, {}, json.dumps({"error": "body is not a JSON object"}), 0
        to, text = req.get("to"), req.get("text")
        if not isinstance(to, str) or not re.fullmatch(r"\+?[0-9]{8,15}", to):
            return 400, {}, json.dumps({"error": f"bad number {to!r}"}), 0
        if not isinstance(text, str) or not text:
            return 400, {}, json.dumps({"error": "empty text"}), 0
        key = self.headers.get("Idempotency-Key") or req.get("id")
        with sim.lock:
            if key and key in sim.sent:
                entry["duplicate"] = True
                return 200, {}, json.dumps({"messageId": sim.sent[key], "status": "accepted",
                                            "duplicate": True}), hang
            mid = f"SMS{len(sim.sent) + 1:08d}"
            if key:
                sim.sent[key] = mid
        entry["sms"] = {"to": to, "text": text, "sender": req.get("sender"), "messageId": mid,
                        "segments": segments(text)}
        return 200, {}, json.dumps({"messageId": mid, "status": "accepted", "segments": segments(text)},
                                   ensure_ascii=False), hang

    def do_GET(self):
        if self.path == "/_sim/sent":
            with self.server.sim.lock:
                return self.send(200, json.dumps(self.server.sim.sent))
        return self.handle_any()


def main(argv):
    args = http_sim.parse_args(argv)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), SmsHandler)
    srv.daemon_threads = True
    srv.sim = http_sim.Sim(args)
    srv.sim.sent = {}
    return http_sim.serve(srv, args.port_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
