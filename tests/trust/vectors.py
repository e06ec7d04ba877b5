#!/usr/bin/env python3
"""Runs every W3C XML-DSig vector in $LT_SHARED_DIR/testdata/xmldsig/tests through
`lienthong verify`, with the vector's own key pinned by configuration (--pin), and writes the
results table of docs/trust-xmldsig-vectors.md.

The key is taken from what ships with the vector: its X509Certificate(s), RSAKeyValue,
ECKeyValue / RFC 4050 ECDSAKeyValue or DEREncodedKeyValue (converted to a PEM public key), or the
certificates in the suite's keys/ folder. Pinning makes KeyInfo irrelevant to the hub, so a
vector passes only when the hub supports its algorithms and the signature verifies. The policy
is legacy-sha1 (many vectors are SHA-1). A vector the hub refuses by policy (sig-policy) or whose
key is not shipped is listed as unsupported with the hub's own reason; any other failure fails
the test. With --write the table replaces docs/trust-xmldsig-vectors.md; without it the test
fails when the committed table differs from this run's.

Usage: vectors.py LIENTHONG [--write]
"""
import base64
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("LT_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
SHARED = os.environ.get("LT_SHARED_DIR", os.path.join(SRC, "..", "shared"))
VEC = os.path.join(SHARED, "testdata", "xmldsig", "tests")
DOC = os.path.join(SRC, "docs", "trust-xmldsig-vectors.md")
LT = sys.argv[1]
WRITE = "--write" in sys.argv

# Vectors that xmlsec 1.2.37 itself cannot verify, with the reason; listed as known-fail.
# (enveloping-sha256-ecdsa-sha256_padded.xml, a zero-padded ECDSA r||s value that 1.2.37 refuses and
# 1.3 accepts, passes: the hub checks the SignatureValue with OpenSSL itself.)
KNOWN = {
    "enveloping-sha512-ecdsa-sha512-with-asn1.xml": "ECDSA value in ASN.1 DER instead of r||s (a Java bug); xmlsec "
                                                    "1.2.37 refuses it",
}
# Vectors the hub verifies that xmlsec 1.2.37's own verification refuses (see KNOWN).
XMLSEC_REFUSES = {"enveloping-sha256-ecdsa-sha256_padded.xml"}
# Why a family of algorithms is refused, keyed by a substring of the hub's reason or of the URI.
WHY = [
    ("hmac", "shared-secret HMAC: the hub verifies public-key signatures only"),
    ("#dsa-sha", "DSA: refused by the hub (obsolete; RSA and ECDSA only)"),
    ("gost", "GOST: not in Debian's xmlsec1 OpenSSL build"),
    ("eddsa", "EdDSA: not supported by xmlsec 1.2.37"),
    ("ml-dsa", "ML-DSA: not supported by xmlsec 1.2.37"),
    ("slh-dsa", "SLH-DSA: not supported by xmlsec 1.2.37"),
    ("sha3", "SHA-3: not supported by xmlsec 1.2.37"),
    ("MGF1", "RSA-PSS with this digest is not supported"),
    ("md5", "MD5: broken, refused"),
    ("ripemd160", "RIPEMD-160: refused (not an allowed digest)"),
    ("XPath", "XPath transforms are refused (signature-wrapping risk)"),
    ("XPointer", "XPointer transforms are refused"),
    ("base64 transform", "the base64 transform is refused (only enveloped-signature and c14n)"),
    ("relationship", "the OPC relationship transform is refused (only enveloped-signature and c14n)"),
    ("external or remote URI", "external references are refused (no network, no file access)"),
    ("RetrievalMethod", "RetrievalMethod is refused"),
    ("Object at line", "an Object that is not the signed element is unsigned content (here the KeyInfoReference "
                       "target); refused"),
    ("not to the processed element", "references to several elements: the hub verifies one processed element"),
]
CURVES = {"1.2.840.10045.3.1.7": 32, "1.3.132.0.34": 48, "1.3.132.0.35": 66}


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def der_int(v):
    b = v.to_bytes((v.bit_length() + 8) // 8, "big") if v else b"\0"
    return der(0x02, b)


def der_oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    out = bytes([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.insert(0, 0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(enc)
    return der(0x06, out)


def pem(label, data):
    b = base64.b64encode(data).decode()
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(b[i:i + 64] for i in range(0, len(b), 64)),
                                                          label)


def b64(text):
    return base64.b64decode(re.sub(r"\s|&#13;|&#xD;", "", text))


def spki_ec(curve_oid, point):
    alg = der(0x30, der_oid("1.2.840.10045.2.1") + der_oid(curve_oid))
    return der(0x30, alg + der(0x03, b"\0" + point))


def local(tag):
    return r"<(?:[\w.-]+:)?%s\b[^>]*>(.*?)</(?:[\w.-]+:)?%s>" % (tag, tag)


def keys_of(path, text, d):
    """PEM files with the vector's own key material (certificates or public keys)."""
    out = []

    def add(name, content, binary=False):
        p = os.path.join(d, name)
        open(p, "wb" if binary else "w").write(content)
        out.append(p)

    ki = re.search(local("KeyInfo"), text, re.S)
    ki = ki.group(1) if ki else ""
    for i, c in enumerate(re.findall(local("X509Certificate"), ki, re.S)):
        add("cert%d.pem" % i, pem("CERTIFICATE", b64(c)))
    m = re.search(local("RSAKeyValue"), ki, re.S)
    if m:
        n = int.from_bytes(b64(re.search(local("Modulus"), m.group(1), re.S).group(1)), "big")
        e = int.from_bytes(b64(re.search(local("Exponent"), m.group(1), re.S).group(1)), "big")
        rsa = der(0x30, der_int(n) + der_int(e))
        alg = der(0x30, der_oid("1.2.840.113549.1.1.1") + b"\x05\x00")
        add("rsa.pem", pem("PUBLIC KEY", der(0x30, alg + der(0x03, b"\0" + rsa))))
    m = re.search(local("DEREncodedKeyValue"), ki, re.S)
    if m:
        add("der.pem", pem("PUBLIC KEY", b64(m.group(1))))
    m = re.search(local("ECKeyValue"), ki, re.S)
    if m:
        curve = re.search(r'NamedCurve[^>]*URI="urn:oid:([\d.]+)"', m.group(1)).group(1)
        add("ec.pem", pem("PUBLIC KEY", spki_ec(curve, b64(re.search(local("PublicKey"), m.group(1), re.S).group(1)))))
    m = re.search(local("ECDSAKeyValue"), ki, re.S)
    if m:
        curve = re.search(r'NamedCurve[^>]*URN="urn:oid:([\d.]+)"', m.group(1)).group(1)
        size = CURVES[curve]
        x = int(re.search(r'<(?:\w+:)?X\b[^>]*Value="(\d+)"', m.group(1)).group(1))
        y = int(re.search(r'<(?:\w+:)?Y\b[^>]*Value="(\d+)"', m.group(1)).group(1))
        add("ec4050.pem", pem("PUBLIC KEY", spki_ec(curve, b"\x04" + x.to_bytes(size, "big") + y.to_bytes(size, "big"))))
    if not out:  # certificates shipped beside the vectors (xmldsig11-interop-2012/keys/*.crt, DER)
        kd = os.path.join(os.path.dirname(path), "keys")
        for f in sorted(os.listdir(kd)) if os.path.isdir(kd) else []:
            if f.endswith(".crt"):
                add(f + ".pem", pem("CERTIFICATE", open(os.path.join(kd, f), "rb").read()))
    return out


def why(reason, text):
    for key, sentence in WHY:
        if key.lower() in reason.lower():
            return sentence
    m = re.search(r'SignatureMethod Algorithm="([^"]+)"', text)
    for key, sentence in WHY:
        if m and key.lower() in m.group(1).lower():
            return sentence
    return reason


def main():
    if not os.path.isdir(VEC):
        sys.exit("vectors: %s not found (set LT_SHARED_DIR to the shared/ folder)" % VEC)
    rows, bad = [], []
    counts = {"pass": 0, "unsupported": 0, "known-fail": 0, "FAIL": 0}
    for suite in sorted(os.listdir(VEC)):
        sd = os.path.join(VEC, suite)
        if not os.path.isdir(sd):
            continue
        for name in sorted(os.listdir(sd)):
            if not name.endswith(".xml"):
                continue
            path = os.path.join(sd, name)
            text = open(path, encoding="utf-8", errors="replace").read()
            sm = re.search(r'SignatureMethod Algorithm="[^"]*?([\w.-]+)"', text)
            alg = sm.group(1) if sm else "?"
            with tempfile.TemporaryDirectory() as d:
                pins = keys_of(path, text, d)
                si = re.search(local("SignedInfo"), text, re.S)
                uris = re.findall(r'<(?:\w+:)?Reference\b[^>]*URI="([^"]*)"', si.group(1) if si else "")
                ids = sorted({u[1:] for u in uris if u.startswith("#") and not u.startswith("#xpointer")})
                args = [LT, "verify", "--policy", "legacy-sha1"]
                for p in pins:
                    args += ["--pin", p]
                if ids:
                    args += ["--element-id", ids[0]]
                if not pins:
                    # No key: ask the hub with an unrelated pinned key whether it refuses the vector by
                    # policy anyway; only if not is the missing key the reason.
                    dummy = os.path.join(HERE, "fixtures", "keys", "hub-cert.pem")
                    r = subprocess.run(args + ["--pin", dummy, path], capture_output=True, timeout=60)
                    m = re.search(r"invalid \(([\w-]+)\): (.*)", r.stderr.decode("utf-8", "replace"))
                    if m and m.group(1) == "sig-policy":
                        result, detail = "unsupported", why(m.group(2), text)
                    else:
                        result, detail = "unsupported", "key not shipped with the vector (KeyName/X509Digest " \
                                                        "refers to xmlsec's tests/keys/)"
                else:
                    r = subprocess.run(args + [path], capture_output=True, timeout=60)
                    err = r.stderr.decode("utf-8", "replace").strip()
                    m = re.search(r"invalid \(([\w-]+)\): (.*)", err)
                    if r.returncode == 0:
                        result, detail = "pass", ""
                        # xmlsec's own verification (--engine xmlsec) must agree with the direct path
                        x = subprocess.run(args[:2] + ["--engine", "xmlsec"] + args[2:] + [path], capture_output=True,
                                           timeout=60)
                        if x.returncode != 0 and name not in XMLSEC_REFUSES:
                            result, detail = "FAIL", "--engine xmlsec refuses it: %s" % x.stderr.decode()[-300:]
                            bad.append("%s/%s: %s" % (suite, name, detail))
                    elif r.returncode == 1 and m and m.group(1) == "sig-policy":
                        result, detail = "unsupported", why(m.group(2), text)
                    elif r.returncode == 2 and ("not supported by xmlsec" in err or "neither a PEM" in err):
                        result, detail = "unsupported", why("", text)
                    elif name in KNOWN:
                        result, detail = "known-fail", KNOWN[name]
                    else:
                        result, detail = "FAIL", err.splitlines()[-1] if err else "rc %d" % r.returncode
                        bad.append("%s/%s: %s" % (suite, name, err))
            counts[result] += 1
            rows.append("| %s/%s | %s | %s | %s |" % (suite, name, alg, result, detail.replace("|", "\\|")))
    out = ["# XML-DSig W3C vectors: results", "",
           "Generated by `tests/trust/vectors.py` (ctest `trust.vectors`) from `../shared/testdata/xmldsig/tests`;",
           "do not edit by hand. Each vector is verified by `lienthong verify --policy legacy-sha1` with the",
           "vector's own key pinned (`--pin`), taken from its KeyInfo or its suite's `keys/` folder. *unsupported*",
           "gives the hub's reason for refusing the vector by policy (see docs/trust.md, Policies).", "",
           "Totals: %d pass, %d unsupported, %d known-fail (xmlsec 1.2.37 limits), %d fail." % (
               counts["pass"], counts["unsupported"], counts["known-fail"], counts["FAIL"]), "",
           "| vector | signature method | result | why |", "| --- | --- | --- | --- |"] + rows
    text = "\n".join(out) + "\n"
    print("\n".join(bad))
    failed = len(bad)
    if WRITE:
        os.makedirs(os.path.dirname(DOC), exist_ok=True)
        open(DOC, "w", encoding="utf-8").write(text)
        print("vectors: wrote %s" % DOC)
    else:
        old = open(DOC, encoding="utf-8").read() if os.path.exists(DOC) else ""
        if old != text:
            print("vectors: %s differs from this run; regenerate with tests/trust/vectors.py LIENTHONG --write" % DOC)
            failed += 1
    print("vectors: %d pass, %d unsupported, %d known-fail, %d fail" % (
        counts["pass"], counts["unsupported"], counts["known-fail"], counts["FAIL"]))
    print("%d passed, %d failed" % (counts["pass"] + counts["unsupported"] + counts["known-fail"], failed))
    sys.exit(1 if failed else 0)


main()
