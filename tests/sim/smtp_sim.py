#!/usr/bin/env python3
"""smtp_sim: a small SMTP server for tests (RFC 5321, standard library only), listening on
127.0.0.1. With --tls-cert/--tls-key it offers STARTTLS (RFC 3207) and, with --require-tls,
refuses AUTH and MAIL before it (530); with --auth USER:PASS it offers AUTH PLAIN and LOGIN
(only after STARTTLS when TLS is configured, as real servers do) and refuses MAIL without it.

Every message received is written to --log as one JSON line, flushed before the reply to DATA:
{"time", "tls": true|false, "auth": user or null, "mail_from", "rcpt": [...], "data": the
message text (dot-unstuffing done), "message_id": its Message-ID header or null, "answer":
250 (accepted) or 451 (the --fail-rate fault)}. Faults:
--fail-rate F answers a fraction of DATA with 451 (temporary: the client retries);
--reject-rcpt TEXT answers RCPT with 550 for addresses containing TEXT (permanent).
--port-file gets the port once listening.
"""
import argparse
import base64
import binascii
import json
import os
import random
import re
import socketserver
import ssl
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_sim  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--auth", help="USER:PASS")
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--reject-rcpt", action="append", default=[])
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


class Handler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def readline(self):
        line = self.rfile.readline(65536)
        if not line:
            raise EOFError
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def handle(self):
        srv = self.server
        args = srv.args
        self.tls = False
        self.user = None
        self.reset()
        self.reply("220 smtp_sim ESMTP ready")
        try:
            while True:
                line = self.readline()
                cmd, _, arg = line.partition(" ")
                cmd = cmd.upper()
                if cmd in ("EHLO", "HELO"):
                    self.reset()
                    caps = ["250-smtp_sim greets " + arg, "250-8BITMIME", "250-SIZE 10485760"]
                    if args.tls_cert and not self.tls:
                        caps.append("250-STARTTLS")
                    if args.auth and (self.tls or not args.tls_cert):
                        caps.append("250-AUTH PLAIN LOGIN")
                    caps.append("250 SMTPUTF8")
                    for c in caps:
                        self.reply(c)
                elif cmd == "STARTTLS":
                    if not args.tls_cert or self.tls:
                        self.reply("454 TLS not available")
                        continue
                    self.reply("220 go ahead")
                    self.connection = srv.ctx.wrap_socket(self.connection, server_side=True)
                    self.rfile = self.connection.makefile("rb")
                    self.wfile = self.connection.makefile("wb")
                    self.tls = True
                    self.reset()
                elif cmd == "AUTH":
                    self.auth(arg)
                elif cmd == "MAIL":
                    if args.require_tls and not self.tls:
                        self.reply("530 5.7.0 Must issue a STARTTLS command first")
                    elif args.auth and not self.user:
                        self.reply("530 5.7.0 Authentication required")
                    else:
                        m = re.match(r"(?i)FROM:\s*<([^>]*)>", arg)
                        if not m:
                            self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
                        else:
                            self.reset()
                            self.mail_from = m.group(1)
                            self.reply("250 2.1.0 OK")
                elif cmd == "RCPT":
                    m = re.match(r"(?i)TO:\s*<([^>]*)>", arg)
                    if self.mail_from is None:
                        self.reply("503 5.5.1 MAIL first")
                    elif not m:
                        self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
                    elif any(t in m.group(1) for t in args.reject_rcpt):
                        self.reply("550 5.1.1 No such user here")
                    else:
                        self.rcpt.append(m.group(1))
                        self.reply("250 2.1.5 OK")
                elif cmd == "DATA":
                    if not self.rcpt:
                        self.reply("503 5.5.1 RCPT first")
                        continue
                    self.reply("354 End data with <CR><LF>.<CR><LF>")
                    data = []
                    while True:
                        l = self.rfile.readline(1 << 20)
                        if not l:
                            raise EOFError
                        if l in (b".\r\n", b".\n"):
                            break
                        if l.startswith(b".."):
                            l = l[1:]
                        data.append(l)
                    text = b"".join(data).decode("utf-8", "replace")
                    with srv.lock:
                        fail = srv.rng.random() < args.fail_rate
                    mid = re.search(r"(?im)^Message-ID:\s*(\S+)", text)
                    srv.record({"time": time.time(), "tls": self.tls, "auth": self.user,
                                "mail_from": self.mail_from, "rcpt": self.rcpt, "data": text,
                                "message_id": mid.group(1) if mid else None, "answer": 451 if fail else 250})
                    if fail:
                        self.reply("451 4.3.0 Temporary failure, try again")
                    else:
                        self.reply("250 2.0.0 OK queued")
                    self.reset()
                elif cmd == "RSET":
                    self.reset()
                    self.reply("250 2.0.0 OK")
                elif cmd == "NOOP":
                    self.reply("250 2.0.0 OK")
                elif cmd == "QUIT":
                    self.reply("221 2.0.0 Bye")
                    return
                else:
                    self.reply("502 5.5.2 Command not recognised")
        except (EOFError, ConnectionError, ssl.SSLError, OSError):
            return

    def reset(self):
        self.mail_from = None
        self.rcpt = []

    def auth(self, arg):
        args = self.server.args
        if not args.auth:
            return self.reply("503 5.5.1 AUTH not offered")
        if args.tls_cert and not self.tls:
            return self.reply("538 5.7.11 Encryption required for requested authentication mechanism")
        mech, _, initial = arg.partition(" ")
        try:
            if mech.upper() == "PLAIN":
                if not initial:
                    self.reply("334 ")
                    initial = self.readline()
                parts = base64.b64decode(initial).decode().split("\0")
                user, pw = parts[1], parts[2]
            elif mech.upper() == "LOGIN":
                self.reply("334 " + base64.b64encode(b"Username:").decode())
                user = base64.b64decode(self.readline()).decode()
                self.reply("334 " + base64.b64encode(b"Password:").decode())
                pw = base64.b64decode(self.readline()).decode()
            else:
                return self.reply("504 5.5.4 Unrecognised authentication type")
        except (binascii.Error, IndexError, UnicodeDecodeError):
            return self.reply("501 5.5.2 Cannot decode AUTH parameter")
        if f"{user}:{pw}" != args.auth:
            return self.reply("535 5.7.8 Authentication credentials invalid")
        self.user = user
        self.reply("235 2.7.0 Authentication successful")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def record(self, entry):
        with self.lock:
            if self.log:
                self.log.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self.log.flush()


def main(argv):
    args = parse_args(argv)
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.args = args
    srv.lock = threading.Lock()
    srv.rng = random.Random(args.seed)
    srv.log = open(args.log, "a") if args.log else None
    srv.ctx = None
    if args.tls_cert:
        srv.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.ctx.load_cert_chain(args.tls_cert, args.tls_key)
    return http_sim.serve(srv, args.port_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
