#!/usr/bin/env python3
"""Denial-of-service and exact-bytes regression tests for `lienthong verify` (issue 10, item 1
and the NUL bullet of item 2). Every input is built here. Each hostile case must be refused
with its reason, and a generous CPU bound (children's user+system time) guards against the
quadratic paths coming back; it is a guard, not a performance measurement (see
`lienthong bench verify-dos` for the figures).

Usage: dos.py LIENTHONG
"""
import base64
import os
import re
import resource
import subprocess
import sys
import tempfile

from tcheck import check, done

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = os.path.join(HERE, "fixtures", "keys")
LT = sys.argv[1]
# The sanitizer build is several times slower than the release one; the bounds are far above
# what either needs once the limits hold, and far below what the unbounded paths took.
CPU_GUARD_S = 20.0


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(args, data=None):
    t0 = cpu_children()
    r = subprocess.run([LT] + args, input=data, capture_output=True, timeout=300)
    return r, cpu_children() - t0


def sign(d, body, c14n=None, key="agency-rsa", alg=None):
    src = os.path.join(d, "in.xml")
    with open(src, "wb") as f:
        f.write(body)
    args = ["sign", "--key", os.path.join(KEYS, key + "-key.pem"), "--cert", os.path.join(KEYS, key + "-cert.pem")]
    if c14n:
        args += ["--c14n", c14n]
    if alg:
        args += ["--alg", alg]
    r, _ = run(args + [src])
    if r.returncode != 0:
        sys.exit("dos: cannot sign the test input: %s" % r.stderr.decode(errors="replace"))
    return r.stdout


def verify(d, name, data, extra=()):
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.write(data)
    return run(["verify", "--trust", os.path.join(KEYS, "ca.pem")] + list(extra) + [path])


def expect(name, res, want, reason, cpu_max=CPU_GUARD_S):
    r, cpu = res
    err = r.stderr.decode("utf-8", "replace")
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode < 0 or "Sanitizer" in err or "runtime error" in err:
        return check(name, False, "crashed (rc %d): %s" % (r.returncode, err[-400:]))
    if want == "ok":
        ok = r.returncode == 0 and out.startswith("valid:")
        check(name, ok, "expected valid, rc %d: %s%s" % (r.returncode, out, err))
    else:
        ok = r.returncode == 1 and ("invalid (%s)" % want) in err and reason in err
        check(name, ok, "expected %s with %r, rc %d: %s" % (want, reason, r.returncode, err.strip()[:600]))
    check(name + " cpu", cpu < cpu_max, "took %.2f s of CPU (guard %.0f s)" % (cpu, cpu_max))


def ns_doc(n_ns, n_children):
    """Many namespace declarations on the root times many children: inclusive c14n's worst case."""
    decl = "".join(' xmlns:p%d="urn:ns:%d"' % (i, i) for i in range(n_ns))
    kids = "".join("<c>%d</c>" % i for i in range(n_children))
    return ("<r%s>%s</r>" % (decl, kids)).encode()


def body_doc(size):
    """A benign document of about `size` bytes."""
    rec = "<HoSo><Ma>%06d</Ma><Ten>Nguyen Van A</Ten><DiaChi>Nghe An</DiaChi></HoSo>"
    n = size // len(rec % 0)
    return ("<DanhSach>%s</DanhSach>" % "".join(rec % i for i in range(n))).encode()


def with_references(signed, n):
    """Repeats the Reference of a signed document n times (the signature no longer fits)."""
    m = re.search(rb"<Reference\b.*?</Reference>", signed, re.S)
    return signed[: m.start()] + m.group(0) * n + signed[m.end():]


def with_transforms(signed, n, tail=b""):
    """n enveloped-signature transforms, then `tail`, in the first Reference."""
    m = re.search(rb"<Transforms>.*?</Transforms>", signed, re.S)
    t = b'<Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>' * n
    return signed[: m.start()] + b"<Transforms>" + t + tail + b"</Transforms>" + signed[m.end():]


def flip_signature_value(signed):
    m = re.search(rb"<SignatureValue>([^<]*)</SignatureValue>", signed)
    raw = bytearray(base64.b64decode(m.group(1)))
    raw[len(raw) // 2] ^= 1
    return signed[: m.start(1)] + base64.b64encode(bytes(raw)) + signed[m.end(1):]


with tempfile.TemporaryDirectory() as d:
    # --- inclusive c14n over many namespace declarations x many children (30 KB: 2.9 s; 248 KB: > 300 s)
    # (signed small, then grown: the refusal comes before any digest, and signing the grown one
    # would itself pay the cost being tested)
    small_ns = sign(d, ns_doc(250, 1), c14n="inclusive")
    for n_kids, label in ((1800, "30KB"), (21000, "248KB")):
        signed = small_ns.replace(b"<c>0</c>", b"".join(b"<c>%d</c>" % i for i in range(n_kids)))
        expect("inclusive-c14n-ns-%s (%d bytes)" % (label, len(signed)), verify(d, "ns.xml", signed), "sig-policy",
               "canonicalization cost over the limit")
    # under exclusive c14n the same shape costs less, but libxml2 still searches the root's 250
    # declarations for the default namespace at every element (about 4 ns each: 145 ms per MB):
    # refused too; with 20 declarations it verifies
    expect("exclusive-c14n-ns250-176KB", verify(d, "nsx.xml", sign(d, ns_doc(250, 15000))), "sig-policy",
           "up to 251 namespace declarations in scope")
    expect("exclusive-c14n-ns20-176KB", verify(d, "nsx20.xml", sign(d, ns_doc(20, 16000))), "ok", "", 5.0)
    # a flood of empty elements 120 deep: the same search walks 120 ancestors per element
    deep = sign(d, b"<r>" + b"<d>" * 120 + b"<a/>" * 60000 + b"</d>" * 120 + b"</r>")
    expect("deep-flood-240KB", verify(d, "deep.xml", deep), "sig-policy", "elements 122 deep")
    expect("deep-flood-240KB configurable", verify(d, "deep.xml", deep, ["--limit", "c14n_cost_per_byte=64"]), "ok", "")
    # 255 attributes on every element: sorting them is quadratic; 64 verify
    for n, want, why in ((255, "sig-policy", "255 attributes on one element"), (64, "ok", "")):
        el = b"<a" + b"".join(b' a%d=""' % i for i in range(n)) + b"/>"
        expect("attribute-flood-%d" % n, verify(d, "af.xml", sign(d, b"<r>" + el * ((256 << 10) // len(el)) + b"</r>")),
               want, why)
    # a benign document under inclusive c14n is not refused by the estimate
    expect("inclusive-c14n-benign-1MB", verify(d, "incl.xml", sign(d, body_doc(1 << 20), c14n="inclusive")), "ok", "")
    # the limit is configurable: raised, the 30 KB case verifies (that is the cost being bounded)
    expect("inclusive-c14n-ns-30KB raised limit", verify(d, "ns2.xml", sign(d, ns_doc(60, 400), c14n="inclusive"),
           ["--limit", "c14n_cost_per_byte=100000"]), "ok", "")

    # --- many attributes on one element (libxml2 2.9.14 checks duplicates pairwise)
    for n in (40000, 300000):
        attrs = "".join(' a%d="v"' % i for i in range(n))
        doc = ("<r><e%s/></r>" % attrs).encode()
        expect("attributes-%d (%d bytes)" % (n, len(doc)), verify(d, "attrs.xml", doc), "too-large",
               "line 1, column 4: element with more than 256 attributes")
    # the boundary: 256 attributes parse (then no signature), 257 do not
    for n, want, why in ((256, "sig-missing", "no XML-DSig Signature"), (257, "too-large", "more than 256 attributes")):
        doc = ("<r><e%s/></r>" % "".join(' a%d="v"' % i for i in range(n))).encode()
        expect("attributes-boundary-%d" % n, verify(d, "attrsb.xml", doc), want, why)
    # UTF-16 (little-endian, with its byte order mark): scanned by 16-bit code unit
    doc = ("<r><e%s/></r>" % "".join(' a%d="v"' % i for i in range(300))).encode("utf-16-le")
    expect("attributes-utf16le", verify(d, "attrs16.xml", b"\xff\xfe" + doc), "too-large",
           "more than 256 attributes")
    # namespace declarations count as attributes; quoted '=' and '>' do not
    doc = ("<r" + "".join(' xmlns:n%d="u:%d"' % (i, i) for i in range(300)) + "/>").encode()
    expect("namespace-declarations-300", verify(d, "nsdecl.xml", doc), "too-large", "more than 256 attributes")
    tricky = b"<!-- a=b c=d --><?pi " + b"a=1 " * 400 + b"?>" + \
        b'<r a="x=y>z" b=\'c d="e"/>\'><![CDATA[ <x ' + b"a=1 " * 400 + b"]]></r>"
    expect("attributes-not-counted-in-values-comments-cdata-pi", verify(d, "tricky.xml", sign(d, tricky)), "ok", "")
    # configurable: with a higher limit the document parses (and is then refused for having no signature)
    doc = ("<r><e%s/></r>" % "".join(' a%d="v"' % i for i in range(300))).encode()
    expect("attributes-limit-configurable", verify(d, "attrs2.xml", doc, ["--limit", "max_attrs=400"]), "sig-missing",
           "no XML-DSig Signature")

    # --- many References (300 over a 1 MB body: 5.5 s and 636 MB) and Transforms (300: 4 GB)
    big = sign(d, body_doc(1 << 20))
    expect("references-300-1MB", verify(d, "refs.xml", with_references(big, 300)), "sig-policy",
           "more than 16 References in SignedInfo")
    # within the count, 16 passes over 1 MB are over the canonicalization budget
    expect("references-16-1MB", verify(d, "refs16.xml", with_references(big, 16)), "sig-policy",
           "canonicalization cost over the limit")
    # within both, the SignatureValue is checked before any reference is digested
    expect("references-4-64KB forged", verify(d, "refs4.xml", with_references(sign(d, body_doc(64 << 10)), 4)),
           "sig-invalid", "signature value does not verify")
    # a flood of tiny elements with a forged signature value is refused by the signature value
    expect("elements-forged-1MB", verify(d, "flood.xml", flip_signature_value(sign(d, b"<r>" + b"<a/>" * 260000 +
           b"</r>"))), "sig-invalid", "signature value does not verify")
    expect("transforms-300", verify(d, "tr.xml", with_transforms(big, 300)), "sig-policy",
           "more than 8 Transforms")
    expect("transform-after-c14n", verify(d, "tr2.xml", with_transforms(
        big, 1, b'<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        b'<Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>')), "sig-policy",
        "follows a canonicalization")

    # --- order of checks: a large document whose body AND signature value were altered is refused
    # for the signature value (checked first, over SignedInfo only), not for the digest
    altered = flip_signature_value(big.replace(b"<Ma>000001</Ma>", b"<Ma>999999</Ma>"))
    expect("order: signature value before digests (1MB)", verify(d, "order.xml", altered), "sig-invalid",
           "signature value does not verify")
    # with the signature value intact, the altered body is a digest mismatch (checked after)
    expect("order: digest after a good signature value (1MB)",
           verify(d, "order2.xml", big.replace(b"<Ma>000001</Ma>", b"<Ma>999999</Ma>")), "sig-digest",
           "digest mismatch")
    # the signature-first path verifies good large documents for every key type and c14n
    for key, alg, c14n in (("agency-rsa", None, None), ("agency-rsa", None, "inclusive-1.1"),
                           ("agency-rsa", "rsa-pss-sha256", None), ("agency-ec", None, None),
                           ("agency-ec384", None, "inclusive")):
        expect("large signed %s %s %s" % (key, alg or "default", c14n or "exclusive"),
               verify(d, "good.xml", sign(d, body_doc(300000), c14n=c14n, key=key, alg=alg)), "ok", "")
    expect("large signed, pinned key", verify(d, "pin.xml", big, ["--pin", os.path.join(KEYS, "agency-rsa-cert.pem")]),
           "ok", "")
    expect("large signed, wrong pinned key", verify(d, "pin2.xml", big, ["--pin", os.path.join(KEYS, "hub-cert.pem")]),
           "sig-invalid", "signature value does not verify")

    # --- a NUL after the root element followed by other bytes (libxml2 stopped at the NUL)
    small = sign(d, b"<Ho><So>1</So></Ho>")
    expect("nul-after-root", verify(d, "nul.xml", small + b"\0<Ho><So>2</So></Ho>"), "xml",
           "NUL character (U+0000) at byte %d" % len(small))
    lines = small.count(b"\n") + 1
    expect("nul-after-root line/column", verify(d, "nul2.xml", small + b"\0"), "xml", "line %d, column" % lines)
    expect("nul-inside-text", verify(d, "nul3.xml", small.replace(b"<So>1", b"<So>1\0")), "xml", "NUL character")
    # UTF-16: the signed document re-encoded still verifies (c14n is UTF-8 either way); a NUL
    # code unit after the root is refused the same way, with the character offset in bytes
    text = small.decode("utf-8")
    text = re.sub(r"^<\?xml[^>]*\?>", "", text).lstrip("\n")
    u16 = ('<?xml version="1.0" encoding="UTF-16"?>' + text).encode("utf-16")  # with BOM
    expect("utf16-signed", verify(d, "u16.xml", u16), "ok", "")
    expect("utf16-nul-after-root", verify(d, "u16nul.xml", u16 + "\0<Ho/>".encode("utf-16-le")), "xml",
           "NUL character (U+0000) at byte %d" % len(u16))
    expect("ucs4-refused", verify(d, "u32.xml", small.decode().encode("utf-32")), "xml", "UCS-4")

done()
