#!/usr/bin/env python3
"""`lienthong sign` / `lienthong verify` from the command line: XML and JWS told apart by
content, every profile, exit codes 0/1/2, standard input, and scripts/make-test-keys.
Usage: cli.py LIENTHONG"""
import json
import os
import re
import subprocess
import sys

from tcheck import check, done
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
LT = sys.argv[1]




def lt(*args, stdin=None):
    return subprocess.run([LT] + list(args), capture_output=True, input=stdin, timeout=60)


with tempfile.TemporaryDirectory() as d:
    # a fresh PKI from the script, so the script itself is tested
    r = subprocess.run([os.path.join(SRC, "scripts", "make-test-keys"), os.path.join(d, "k")], capture_output=True)
    check("make-test-keys runs", r.returncode == 0, r.stderr.decode())
    k = lambda n: os.path.join(d, "k", n)
    for f in ["ca.pem", "hub-key.pem", "hub-cert.pem", "agency-rsa-cert.pem", "agency-ec-key.pem", "expired-cert.pem",
              "rogue-ca.pem", "rogue-cert.pem", "crl.pem", "badku-cert.pem"]:
        check("make-test-keys wrote " + f, os.path.exists(k(f)))
    r = subprocess.run(["openssl", "x509", "-in", k("agency-ec-cert.pem"), "-noout", "-text"], capture_output=True)
    check("agency-ec is P-256", b"prime256v1" in r.stdout or b"P-256" in r.stdout)
    r = subprocess.run(["openssl", "verify", "-CAfile", k("ca.pem"), k("rogue-cert.pem")], capture_output=True)
    check("rogue cert does not chain to the test CA", r.returncode != 0)

    edoc = os.path.join(HERE, "fixtures", "edxml-document.edxml")
    r = lt("sign", "--key", k("hub-key.pem"), "--cert", k("hub-cert.pem"), edoc)
    check("sign edXML exit 0", r.returncode == 0, r.stderr.decode())
    signed = os.path.join(d, "signed.xml")
    open(signed, "wb").write(r.stdout)
    r = lt("verify", "--trust", k("ca.pem"), signed)
    check("verify exit 0", r.returncode == 0 and r.stdout.startswith(b"valid: ") and b"lienthong-hub; sha256=" in
          r.stdout, r.stdout + r.stderr)
    r = lt("verify", "--trust", k("rogue-ca.pem"), "--trust", k("ca.pem"), "-", stdin=open(signed, "rb").read())
    check("verify from stdin with two trust files", r.returncode == 0, r.stderr)
    r = lt("verify", "--trust", k("rogue-ca.pem"), signed)
    check("verify against the wrong CA exit 1", r.returncode == 1 and b"invalid (sig-untrusted)" in r.stderr, r.stderr)
    r = lt("sign", "--key", k("hub-key.pem"), "--cert", k("hub-cert.pem"), "--profile", "generic", "--c14n",
           "inclusive-1.1", "--alg", "rsa-sha384", edoc)
    check("generic profile puts the signature last in the root",
          re.search(rb"</AttachmentEncoded>\s*<Signature [^>]*>.*</Signature></edXML>", r.stdout, re.S) is not None and
          b"xml-c14n11" in r.stdout and b"rsa-sha384" in r.stdout, r.stderr)
    r = lt("sign", "--key", k("hub-key.pem"), "--cert", k("hub-cert.pem"), signed)
    check("signing a signed document exit 1", r.returncode == 1 and b"already carries a signature" in r.stderr)
    r = lt("sign", "--key", k("hub-key.pem"), edoc)
    check("XML signing without --cert is a usage error", r.returncode == 2)
    r = lt("sign", "--key", k("hub-key.pem"), "--cert", k("agency-rsa-cert.pem"), edoc)
    check("key/cert mismatch is a usage error", r.returncode == 2 and b"does not match" in r.stderr, r.stderr)

    # JWS: compact and detached, RSA and EC
    payload = os.path.join(d, "p.json")
    open(payload, "w").write('{"maHoSo":"000.00.00.H41-240101-0001","soTien":150000,"a":[1,2]}')
    for key, cert in [("hub-key.pem", "hub-cert.pem"), ("agency-ec-key.pem", "agency-ec-cert.pem")]:
        r = lt("sign", "--key", k(key), "--cert", k(cert), "--kid", "k1", "--profile", "jws-compact", payload)
        jws = r.stdout.strip()
        check("jws-compact sign " + key, r.returncode == 0 and jws.count(b".") == 2, r.stderr)
        jf = os.path.join(d, "c.jws")
        open(jf, "wb").write(jws)
        r = lt("verify", "--trust", k("ca.pem"), jf)
        check("jws-compact verify " + key, r.returncode == 0 and r.stdout.startswith(b"valid: "), r.stderr)
        h, p, s = jws.split(b".")
        open(jf, "wb").write(h + b"." + p[:-2] + (b"A" if p[-2:-1] != b"A" else b"B") + p[-1:] + b"." + s)
        r = lt("verify", "--trust", k("ca.pem"), jf)
        check("jws-compact tampered exit 1 " + key, r.returncode == 1 and b"invalid (" in r.stderr, r.stderr)
        r = lt("sign", "--key", k(key), "--cert", k(cert), "--profile", "jws-detached", payload)
        jws = r.stdout.strip()
        check("jws-detached sign " + key, r.returncode == 0 and b".." in jws, r.stderr)
        open(jf, "wb").write(jws)
        r = lt("verify", "--trust", k("ca.pem"), "--payload", payload, jf)
        check("jws-detached verify " + key, r.returncode == 0, r.stderr)
        other = os.path.join(d, "o.json")
        open(other, "w").write('{"maHoSo":"000.00.00.H41-240101-0001","soTien":990000,"a":[1,2]}')
        r = lt("verify", "--trust", k("ca.pem"), "--payload", other, jf)
        check("jws-detached other payload exit 1 " + key, r.returncode == 1, r.stderr)
        reordered = os.path.join(d, "r.json")
        open(reordered, "w").write(json.dumps({"a": [1, 2], "soTien": 150000, "maHoSo": "000.00.00.H41-240101-0001"},
                                              indent=2))
        r = lt("verify", "--trust", k("ca.pem"), "--payload", reordered, jf)
        check("jws-detached payload re-ordered (JCS) verifies " + key, r.returncode == 0, r.stderr)

    # exit codes and hostile input
    check("no arguments is a usage error", lt("verify").returncode == 2)
    check("unknown option is a usage error", lt("verify", "--trust", k("ca.pem"), "--bogus", signed).returncode == 2)
    check("unknown --engine is a usage error",
          lt("verify", "--trust", k("ca.pem"), "--engine", "fast", signed).returncode == 2)
    for engine in ("direct", "xmlsec"):
        r = lt("verify", "--trust", k("ca.pem"), "--engine", engine, signed)
        check("--engine %s verifies" % engine, r.returncode == 0 and r.stdout.startswith(b"valid: "), r.stderr)
    check("sign --help exit 0", lt("sign", "--help").returncode == 0 and b"--profile" in lt("sign", "--help").stdout)
    check("verify --help exit 0", b"Exit codes" in lt("verify", "--help").stdout)
    empty = os.path.join(d, "empty")
    open(empty, "w").close()
    check("empty input is invalid", lt("verify", "--trust", k("ca.pem"), empty).returncode == 1)
    garbage = os.path.join(d, "garbage")
    open(garbage, "wb").write(os.urandom(3000))
    r = lt("verify", "--trust", k("ca.pem"), garbage)
    check("random bytes are invalid, no crash", r.returncode == 1, r.stderr)
done()
