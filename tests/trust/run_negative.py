#!/usr/bin/env python3
"""Runs the XML-DSig negative corpus (tests/trust/negative/cases.tsv) through `lienthong verify`.

Each case must end with the expected result: `ok` (exit 0) or exit 1 with "invalid (CODE)" and
the reason substring on stderr; a crash (signal, sanitizer report) fails the case. Two cases are
made here rather than committed: an oversized document and a digest mismatch whose canonical
bytes (--detail) are checked. Usage: run_negative.py LIENTHONG
"""
import os
import subprocess
import sys

from tcheck import check, done
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = os.path.join(HERE, "fixtures", "keys")
NEG = os.path.join(HERE, "negative")
LT = sys.argv[1]


def verify(path, args, engine=None):
    cmd = [LT, "verify", "--trust", os.path.join(KEYS, "ca.pem")] + args + (["--engine", engine] if engine else []) + [path]
    return subprocess.run(cmd, capture_output=True, timeout=60)


engine_diffs = []


def same_as_xmlsec(name, path, args, r):
    """The direct path (the default) must accept exactly what xmlsec's own verification accepts."""
    x = verify(path, args, "xmlsec")
    if x.returncode != r.returncode:
        engine_diffs.append("%s: direct rc %d (%s), xmlsec rc %d (%s)" % (
            name, r.returncode, r.stderr.decode("utf-8", "replace").strip()[-200:], x.returncode,
            x.stderr.decode("utf-8", "replace").strip()[-200:]))




def expect(name, r, want, reason):
    err = r.stderr.decode("utf-8", "replace")
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode < 0 or "Sanitizer" in err or "runtime error" in err:
        return check(name, False, "crashed (rc %d): %s" % (r.returncode, err[-400:]))
    if want == "ok":
        return check(name, r.returncode == 0 and reason in out, "expected valid with %r, rc %d: %s%s" %
                     (reason, r.returncode, out, err))
    check(name, r.returncode == 1 and ("invalid (%s)" % want) in err and reason in err,
          "expected %s with %r, rc %d: %s" % (want, reason, r.returncode, err.strip()))


if not os.path.isdir(NEG):
    sys.exit("run_negative: %s missing" % NEG)
n_cases = 0
with open(os.path.join(NEG, "cases.tsv"), encoding="utf-8") as f:
    for line in f:
        if line.startswith("#") or not line.strip():
            continue
        name, args, want, reason = line.rstrip("\n").split("\t")
        args = [a.replace("$KEYS", KEYS) for a in args.split()]
        n_cases += 1
        r = verify(os.path.join(NEG, name), args)
        expect(name, r, want, reason)
        same_as_xmlsec(name, os.path.join(NEG, name), args, r)
check("corpus has at least 30 rejected cases", n_cases >= 33, "only %d cases" % n_cases)

with tempfile.TemporaryDirectory() as d:
    big = os.path.join(d, "oversized.xml")
    with open(os.path.join(NEG, "ok-edxml-rsa.xml"), "rb") as f:
        good = f.read()
    with open(big, "wb") as f:  # a valid signed document padded past the 16 MiB limit
        f.write(good.replace(b"</edXML>", b"<!--" + b"x" * (17 * 1024 * 1024) + b"--></edXML>"))
    expect("oversized.xml", verify(big, []), "too-large", "exceeds the limit")

    detail = os.path.join(d, "detail.bin")
    r = verify(os.path.join(NEG, "tampered-content.xml"), ["--detail", detail])
    expect("tampered-content.xml --detail", r, "sig-digest", "digest mismatch")
    data = open(detail, "rb").read() if os.path.exists(detail) else b""
    check("digest-mismatch detail holds the canonical bytes that were digested",
          data.startswith(b"<edXML xmlns=") and "V/v hủy kết nối".encode() in data and b"<Signature" not in data,
          "detail was %r" % data[:200])

    # random corruption of a valid signed document: always a clean 0 or 1, never a crash
    import random
    rnd = random.Random(20261129)
    bad_runs = []
    accepted = 0

    def content_of(doc):
        """C14N 2.0 (Python's) of the document without its ds:Signature, or None if unreadable."""
        import xml.etree.ElementTree as ET
        try:
            root = ET.fromstring(doc)
        except ET.ParseError:
            return None
        for parent in root.iter():
            for child in list(parent):
                if child.tag == "{http://www.w3.org/2000/09/xmldsig#}Signature":
                    parent.remove(child)
        return ET.canonicalize(ET.tostring(root, encoding="unicode"), strip_text=False)

    for i in range(150):
        data = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            pos = rnd.randrange(len(data))
            op = rnd.randrange(3)
            if op == 0:
                data[pos] = rnd.randrange(256)
            elif op == 1:
                del data[pos:pos + rnd.randint(1, 40)]
            else:
                data[pos:pos] = bytes(rnd.choice([b"<", b">", b"&", b"\"", b"<!--", b"]]>", b"\x00", b"\xff"]))
        m = os.path.join(d, "mut.xml")
        open(m, "wb").write(bytes(data))
        r = verify(m, [])
        same_as_xmlsec("mutation %d" % i, m, [], r)
        err = r.stderr.decode("utf-8", "replace")
        if r.returncode not in (0, 1) or "Sanitizer" in err or "runtime error" in err or \
                (r.returncode == 1 and "invalid (" not in err):
            bad_runs.append("mutation %d: rc %d %s" % (i, r.returncode, err[-300:]))
        elif r.returncode == 0:
            accepted += 1
            # accepted: only if what a reader sees is what was signed (same canonical form, the
            # Signature aside: base64 line breaks in it are not content)
            if content_of(bytes(data)) != content_of(good):
                bad_runs.append("mutation %d was accepted but changed the content: %r" % (i, bytes(data)[:200]))
    check("150 random corruptions end in exit 0/1 with a reason, no crash, and none accepted with other content",
          not bad_runs, "\n".join(bad_runs[:3]))
    print("mutations: 150 tried, %d accepted with the signed content unchanged" % accepted)

    # xml:id is namespaced and libxml2 binds the first of two equal values: a second element after
    # the signed one, carrying its xml:id (or an Id in another namespace), must be refused, or a
    # reader that takes the last one sees unsigned content (issue 10).
    from make_negative import PAY, tmpl, xmlsec_sign
    inner = tmpl(PAY, uri="#doc", root_attrs=' xml:id="doc"').split("?>", 1)[1].strip()
    signed = xmlsec_sign('<?xml version="1.0" encoding="UTF-8"?>\n<Envelope>%s</Envelope>\n' % inner,
                         "agency-rsa-key.pem", "agency-rsa-cert.pem").decode("utf-8")
    paths = {n: os.path.join(d, n + ".xml") for n in ("xmlid", "xmlid-dup", "xmlid-other")}
    open(paths["xmlid"], "w").write(signed)
    expect("xml:id reference (xmlsec1-signed)", verify(paths["xmlid"], ["--element-id", "doc"]), "ok", "UBND Tinh Nghe An")
    assert signed.count("</Envelope>") == 1
    open(paths["xmlid-dup"], "w").write(signed.replace(
        "</Envelope>", '<Payment xml:id="doc"><Amount>1000000</Amount></Payment></Envelope>'))
    expect("a second element with the signed xml:id", verify(paths["xmlid-dup"], ["--element-id", "doc"]),
           "sig-policy", "duplicate Id 'doc'")
    open(paths["xmlid-other"], "w").write(signed.replace(
        "</Envelope>", '<Payment xmlns:wsu="urn:x-wsu" wsu:Id="doc"><Amount>1000000</Amount></Payment></Envelope>'))
    expect("the signed xml:id reused by a namespaced Id", verify(paths["xmlid-other"], ["--element-id", "doc"]),
           "sig-policy", "duplicate Id 'doc'")

    # exclusive c14n's InclusiveNamespaces PrefixList inside SignedInfo, as xmlsec1 signs it: accepted;
    # the same element anywhere else, or carrying anything but PrefixList, is unsigned content
    ec = "http://www.w3.org/2001/10/xml-exc-c14n#"
    t = tmpl(PAY, uri="#doc", root_attrs=' Id="doc" xmlns:x="urn:x"')
    t = t.replace('<CanonicalizationMethod Algorithm="%s"/>' % ec, '<CanonicalizationMethod Algorithm="%s">'
                  '<ec:InclusiveNamespaces xmlns:ec="%s" PrefixList="x #default"/></CanonicalizationMethod>' % (ec, ec))
    t = t.replace('<Transform Algorithm="%s"/>' % ec, '<Transform Algorithm="%s"><ec:InclusiveNamespaces '
                  'xmlns:ec="%s" PrefixList="x"/></Transform>' % (ec, ec))
    assert t.count("InclusiveNamespaces ") == 2
    incl = xmlsec_sign(t, "agency-rsa-key.pem", "agency-rsa-cert.pem", id_attr="Payment").decode("utf-8")
    for name, doc, want, reason in [
            ("InclusiveNamespaces PrefixList (xmlsec1-signed)", incl, "ok", "UBND Tinh Nghe An"),
            ("InclusiveNamespaces in KeyInfo", incl.replace("<KeyInfo>", '<KeyInfo><ec:InclusiveNamespaces xmlns:ec="%s" '
                                                            'PrefixList="x"/>' % ec, 1),
             "sig-policy", "foreign element InclusiveNamespaces"),
            ("InclusiveNamespaces with a child", incl.replace('PrefixList="x"/>', 'PrefixList="x"><Amount>1</Amount>'
                                                              '</ec:InclusiveNamespaces>', 1),
             "sig-policy", "foreign element InclusiveNamespaces")]:
        path = os.path.join(d, "incl.xml")
        open(path, "w").write(doc)
        r = verify(path, [])
        expect(name, r, want, reason)
        same_as_xmlsec(name, path, [], r)

    # the same over a body large enough that the SignatureValue is checked on its own first
    # (docs/trust.md, Limits): the PrefixList must be applied there as xmlsec applies it
    big_pay = PAY + "".join("<Item>%d</Item>" % i for i in range(3000))
    tb = tmpl(big_pay, uri="#doc", root_attrs=' Id="doc" xmlns:x="urn:x"')
    tb = tb.replace('<CanonicalizationMethod Algorithm="%s"/>' % ec, '<CanonicalizationMethod Algorithm="%s">'
                    '<ec:InclusiveNamespaces xmlns:ec="%s" PrefixList="x #default"/></CanonicalizationMethod>' % (ec, ec))
    incl_big = xmlsec_sign(tb, "agency-rsa-key.pem", "agency-rsa-cert.pem", id_attr="Payment").decode("utf-8")
    path = os.path.join(d, "incl-big.xml")
    open(path, "w").write(incl_big)
    expect("InclusiveNamespaces PrefixList, signature value first (xmlsec1-signed)", verify(path, []), "ok",
           "UBND Tinh Nghe An")
    open(path, "w").write(incl_big.replace("<Item>7</Item>", "<Item>8</Item>"))
    expect("InclusiveNamespaces PrefixList, signature value first, body altered", verify(path, []), "sig-digest",
           "digest mismatch")

    # an XML-DSig element where the Signature's layout has none (outside SignedInfo, so the value
    # still verifies): xmlsec refuses it, and so does the direct path
    path = os.path.join(d, "layout.xml")
    open(path, "wb").write(good.replace(b"</KeyInfo>", b"</KeyInfo><Manifest/>", 1))
    r = verify(path, [])
    expect("ds:Manifest after KeyInfo", r, "sig-invalid", "unexpected Manifest")
    same_as_xmlsec("ds:Manifest after KeyInfo", path, [], r)

    check("the direct path and xmlsec's verification accept and refuse the same documents (%d compared)"
          % (n_cases + 154), not engine_diffs, "\n".join(engine_diffs[:5]))

    r = subprocess.run([LT, "verify", os.path.join(NEG, "ok-edxml-rsa.xml")], capture_output=True)
    check("verify without a trust store is a usage error", r.returncode == 2, "rc %d" % r.returncode)
    r = subprocess.run([LT, "verify", "--trust", os.path.join(KEYS, "ca.pem"), "--policy", "lax", big],
                       capture_output=True)
    check("unknown policy is a usage error", r.returncode == 2, "rc %d" % r.returncode)

done()
