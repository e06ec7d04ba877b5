#!/usr/bin/env python3
"""XML-DSig interop, both ways, for RSA-SHA256 and ECDSA-P256 (and RSA-PSS-SHA256 with Santuario) on an edXML document packet and
an edXML status packet (tests/trust/fixtures/):
  xmlsec1    lienthong signs -> `xmlsec1 --verify` accepts; `xmlsec1 --sign` signs -> lienthong accepts
  santuario  lienthong signs -> Apache Santuario accepts; Santuario signs -> lienthong accepts
Each direction also checks that a tampered copy is refused, so an accept-everything verifier fails.
Usage: interop.py xmlsec1|santuario LIENTHONG
"""
import os
import re
import shutil
import subprocess
import sys

from tcheck import check, done
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("LT_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
KEYS = os.path.join(HERE, "fixtures", "keys")
FIX = os.path.join(HERE, "fixtures")
MODE, LT = sys.argv[1], sys.argv[2]
DS = "http://www.w3.org/2000/09/xmldsig#"

SIGNERS = [("rsa-sha256", "agency-rsa", "UBND Tinh Nghe An"), ("ecdsa-p256", "agency-ec", "Van phong Chinh phu"),
           ("rsa-pss-sha256", "agency-rsa", "UBND Tinh Nghe An")]  # xmlsec1 1.2.37 has no RSA-PSS: Santuario only
DOCS = [("document", "edxml-document.edxml", "</edXML:TraceHeaderList>", "V/v kết nối", "V/v hủy kết nối"),
        ("status", "edxml-status.edxml", "</edXML:Status>", "<edXML:StatusCode>01<", "<edXML:StatusCode>06<")]




def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, timeout=300, **kw)


def k(name):
    return os.path.join(KEYS, name)


def tamper(path, old, new, out):
    data = open(path, encoding="utf-8").read()
    assert old in data, "fixture text %r missing" % old
    open(out, "w", encoding="utf-8").write(data.replace(old, new, 1))


def lt_sign(key, src, out, alg):
    extra = ["--alg", alg] if alg.startswith("rsa-pss") else []
    r = run([LT, "sign", "--key", k(key + "-key.pem"), "--cert", k(key + "-cert.pem")] + extra + [src])
    open(out, "wb").write(r.stdout)
    return r.returncode == 0


def lt_verify(path):
    return run([LT, "verify", "--trust", k("ca.pem"), path])


def xmlsec_template(src, after, alg, out):
    method = DS + "rsa-sha1" if alg == "x" else (
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" if alg.startswith("rsa")
        else "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256")
    tmpl = ('<Signature xmlns="%s"><SignedInfo>'
            '<CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
            '<SignatureMethod Algorithm="%s"/><Reference URI=""><Transforms>'
            '<Transform Algorithm="%senveloped-signature"/>'
            '<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></Transforms>'
            '<DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><DigestValue/></Reference>'
            '</SignedInfo><SignatureValue/><KeyInfo><X509Data/></KeyInfo></Signature>') % (DS, method, DS)
    data = open(src, encoding="utf-8").read()
    assert after in data
    open(out, "w", encoding="utf-8").write(data.replace(after, after + tmpl, 1))


def santuario_cmd():
    """Builds the Santuario tool with Maven (cached under .cache/) and returns its java command."""
    proj = os.path.join(SRC, "tests", "interop", "santuario")
    target = os.path.join(SRC, ".cache", "santuario-target")
    jar = os.path.join(target, "santuario-tool-1.0.jar")
    cp_file = os.path.join(target, "classpath.txt")
    sources = [os.path.join(proj, "pom.xml"), os.path.join(proj, "src", "main", "java", "lt", "interop", "Tool.java")]
    def cached_classpath_ok():
        # A classpath written from another checkout (a moved or deleted folder) is stale too.
        return os.path.exists(cp_file) and all(os.path.exists(p) for p in open(cp_file).read().strip().split(os.pathsep))
    if not (os.path.exists(jar) and cached_classpath_ok() and
            all(os.path.getmtime(s) <= os.path.getmtime(jar) for s in sources)):
        if not shutil.which("mvn"):
            sys.exit("interop: mvn not found (scripts/bootstrap installs maven)")
        r = run(["mvn", "-q", "-B", "-Dmaven.repo.local=%s" % os.path.join(SRC, ".cache", "m2"), "package"], cwd=proj)
        if r.returncode != 0:
            sys.exit("interop: building the Santuario tool failed:\n%s%s" % (r.stdout.decode(), r.stderr.decode()))
    return ["java", "-cp", jar + os.pathsep + open(cp_file).read().strip(), "lt.interop.Tool"]


def main():
    if MODE == "xmlsec1" and not shutil.which("xmlsec1"):
        sys.exit("interop: xmlsec1 not found (scripts/bootstrap installs it)")
    java = santuario_cmd() if MODE == "santuario" else None
    with tempfile.TemporaryDirectory() as d:
        for alg, key, who in SIGNERS:
            if MODE == "xmlsec1" and alg.startswith("rsa-pss"):
                continue
            for kind, fixture, after, old, new in DOCS:
                src = os.path.join(FIX, fixture)
                tag = "%s %s %s" % (MODE, alg, kind)
                # lienthong signs, the other implementation verifies
                signed = os.path.join(d, "lt-%s-%s.xml" % (alg, kind))
                bad = signed + ".tampered.xml"
                check("%s: lienthong signs" % tag, lt_sign(key, src, signed, alg))
                tamper(signed, old, new, bad)
                if MODE == "xmlsec1":
                    base = ["xmlsec1", "--verify", "--trusted-pem", k("ca.pem"), "--enabled-key-data", "x509"]
                    r = run(base + [signed])
                    check("%s: xmlsec1 verifies lienthong's signature" % tag, r.returncode == 0 and r.stderr.startswith(b"OK"),
                          r.stderr.decode()[-500:])
                    r = run(base + [bad])
                    check("%s: xmlsec1 refuses it tampered" % tag, r.returncode != 0)
                else:
                    r = run(java + ["verify", "--trust", k("ca.pem"), signed])
                    check("%s: Santuario verifies lienthong's signature" % tag,
                          r.returncode == 0 and who.encode() in r.stdout, (r.stdout + r.stderr).decode()[-500:])
                    r = run(java + ["verify", "--trust", k("ca.pem"), bad])
                    check("%s: Santuario refuses it tampered" % tag, r.returncode == 1)
                # the other implementation signs, lienthong verifies
                other = os.path.join(d, "%s-%s-%s.xml" % (MODE, alg, kind))
                if MODE == "xmlsec1":
                    t = other + ".tmpl"
                    xmlsec_template(src, after, alg, t)
                    r = run(["xmlsec1", "--sign", "--privkey-pem", "%s,%s" % (k(key + "-key.pem"),
                                                                              k(key + "-cert.pem")),
                             "--output", other, t])
                else:
                    r = run(java + ["sign", "--key", k(key + "-key.pem"), "--cert", k(key + "-cert.pem"),
                                    "--alg", "ecdsa-sha256" if alg.startswith("ecdsa") else alg, src, other])
                check("%s: %s signs" % (tag, MODE), r.returncode == 0, r.stderr.decode()[-500:])
                data = open(other, encoding="utf-8").read() if os.path.exists(other) else ""
                m = re.search(r"<(\w+:)?Signature[ >]", data)
                sig_at = m.start() if m else -1
                check("%s: %s placed the signature after %s" % (tag, MODE, after),
                      sig_at > data.find(after) > 0 and sig_at < data.find("</edXML:edXMLHeader>"))
                r = lt_verify(other)
                check("%s: lienthong verifies %s's signature" % (tag, MODE),
                      r.returncode == 0 and who.encode() in r.stdout, (r.stdout + r.stderr).decode()[-500:])
                tamper(other, old, new, other + ".tampered.xml")
                r = lt_verify(other + ".tampered.xml")
                check("%s: lienthong refuses it tampered" % tag,
                      r.returncode == 1 and b"invalid (sig-digest)" in r.stderr, r.stderr.decode())
    done()


main()
