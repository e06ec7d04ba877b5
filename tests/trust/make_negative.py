#!/usr/bin/env python3
"""Regenerates the XML-DSig negative corpus in tests/trust/negative/ (run by hand, output committed).

Each case is a document built from a signature made by lienthong or by the xmlsec1 command line
with the committed test PKI (tests/trust/fixtures/keys), then altered the way an attacker would.
cases.tsv lists: file, extra verify arguments, expected result (`ok` or an error name such as
sig-digest) and a substring the reason must contain. tests/trust/run_negative.py checks them.

Usage: tests/trust/make_negative.py path/to/lienthong
"""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = os.path.join(HERE, "fixtures", "keys")
OUT = os.path.join(HERE, "negative")
DS = "http://www.w3.org/2000/09/xmldsig#"
LT = sys.argv[1] if len(sys.argv) > 1 else "build/lienthong"
cases = []


def k(name):
    return os.path.join(KEYS, name)


def lt_sign(src_bytes, key, cert, *extra):
    with tempfile.NamedTemporaryFile(suffix=".xml", delete=False) as f:
        f.write(src_bytes)
    try:
        return subprocess.run([LT, "sign", "--key", k(key), "--cert", k(cert), *extra, f.name],
                              check=True, capture_output=True).stdout
    finally:
        os.unlink(f.name)


def xmlsec_sign(tmpl, key, cert=None, id_attr=None):
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "t.xml")
        with open(src, "w", encoding="utf-8") as f:
            f.write(tmpl)
        keyarg = k(key) + ("," + k(cert) if cert else "")
        cmd = ["xmlsec1", "--sign", "--privkey-pem", keyarg, "--output", os.path.join(d, "o.xml")]
        if id_attr:
            cmd += ["--id-attr:Id", id_attr]
        subprocess.run(cmd + [src], check=True, capture_output=True)
        with open(os.path.join(d, "o.xml"), "rb") as f:
            return f.read()


def case(name, data, expect, reason, args=""):
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    cases.append((name, args, expect, reason))


def sub1(pattern, repl, data, flags=0):
    """re.sub that must match exactly once, so a generator bug cannot produce a vacuous case."""
    s = data.decode("utf-8") if isinstance(data, bytes) else data
    out, n = re.subn(pattern, repl, s, count=1, flags=flags)
    if n != 1:
        raise SystemExit("make_negative: pattern %r not found" % pattern)
    return out


def tmpl(body, sig_alg="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
         digest="http://www.w3.org/2001/04/xmlenc#sha256", uri="", keyinfo="<X509Data/>", root="Payment",
         root_attrs=' Id="doc"', extra_transforms=""):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<%s%s>%s'
            '<Signature xmlns="%s"><SignedInfo>'
            '<CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
            '<SignatureMethod Algorithm="%s"/>'
            '<Reference URI="%s"><Transforms>'
            '<Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>%s'
            '<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></Transforms>'
            '<DigestMethod Algorithm="%s"/><DigestValue/></Reference></SignedInfo>'
            '<SignatureValue/><KeyInfo>%s</KeyInfo></Signature></%s>\n') % (
                root, root_attrs, body, DS, sig_alg, uri, extra_transforms, digest, keyinfo, root)


PAY = "<Amount>100</Amount><Payee>000.00.00.H41</Payee>"


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.unlink(os.path.join(OUT, f))
    with open(os.path.join(HERE, "fixtures", "edxml-document.edxml"), "rb") as f:
        edoc = f.read()
    good = lt_sign(edoc, "agency-rsa-key.pem", "agency-rsa-cert.pem")
    good_s = good.decode("utf-8")

    # positive controls: the corpus also proves that what it alters was valid
    case("ok-edxml-rsa.xml", good, "ok", "UBND Tinh Nghe An")
    ok_id = xmlsec_sign(tmpl(PAY, uri="#doc"), "agency-rsa-key.pem", "agency-rsa-cert.pem", id_attr="Payment")
    case("ok-id-reference.xml", ok_id, "ok", "UBND Tinh Nghe An")
    case("ok-rsa-pss.xml", lt_sign(edoc, "agency-rsa-key.pem", "agency-rsa-cert.pem", "--alg", "rsa-pss-sha256"), "ok",
         "UBND Tinh Nghe An")
    sha1 = xmlsec_sign(tmpl(PAY, sig_alg=DS + "rsa-sha1", digest=DS + "sha1"), "agency-rsa-key.pem",
                       "agency-rsa-cert.pem")
    case("ok-sha1-legacy-policy.xml", sha1, "ok", "UBND Tinh Nghe An", "--policy legacy-sha1")

    # missing / extra signatures
    case("no-signature.xml", edoc, "sig-missing", "no XML-DSig Signature")
    sig = re.search(r"<Signature .*?</Signature>", good_s, re.S).group(0)
    case("two-signatures.xml", sub1(r"</edXML:edXMLBody>", "</edXML:edXMLBody>" + sig, good), "sig-missing",
         "exactly one is allowed")
    case("two-signatures-nested.xml", sub1(r"</SignatureValue>", "</SignatureValue><Object>" + sig + "</Object>", good),
         "sig-missing", "exactly one is allowed")

    # content and SignedInfo tampering
    case("tampered-content.xml", sub1("V/v kết nối", "V/v hủy kết nối", good), "sig-digest", "reference 1")
    case("tampered-attachment.xml", sub1(r"UEsDBBQACAgI", "UEsDBBQACAgJ", good), "sig-digest", "digest mismatch")
    case("tampered-attribute.xml", sub1(r'version="1.0">', 'version="2.0">', good), "sig-digest", "digest mismatch")
    case("tampered-digest-value.xml", sub1(r"<DigestValue>.", "<DigestValue>A", good) if
         not re.search(r"<DigestValue>A", good_s) else sub1(r"<DigestValue>.", "<DigestValue>B", good),
         # the DigestValue is inside SignedInfo: the SignatureValue, checked first, refuses it
         "sig-invalid", "signature value does not verify")
    case("tampered-signedinfo-id.xml", sub1(r"<SignedInfo>", '<SignedInfo Id="si">', good), "sig-invalid",
         "signature value does not verify")
    case("tampered-signedinfo-c14n.xml",
         sub1(r'<CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>',
              '<CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>', good),
         "sig-invalid", "signature value does not verify")
    case("tampered-signature-value.xml", sub1(r"<SignatureValue>(.)", lambda m: "<SignatureValue>" +
                                              ("B" if m.group(1) == "A" else "A"), good),
         "sig-invalid", "signature value does not verify")

    # signature wrapping
    inner = ok_id.decode("utf-8").split("?>", 1)[1].strip()
    case("wrap-original-in-wrapper.xml",
         '<?xml version="1.0"?>\n<Payment Id="evil"><Amount>1000000</Amount><Payee>attacker</Payee><Wrapper>%s'
         '</Wrapper></Payment>' % inner.replace('<Payment Id="doc">', '<Payment Id="doc">', 1),
         "sig-policy", "signature wrapping")
    sig_id = re.search(r"<Signature .*?</Signature>", inner, re.S).group(0)
    orig_wo_sig = inner.replace(sig_id, "")
    case("wrap-original-in-object.xml",
         '<?xml version="1.0"?>\n<Payment Id="evil"><Amount>1000000</Amount>%s</Payment>' %
         sig_id.replace("</Signature>", "<Object>%s</Object></Signature>" % orig_wo_sig),
         "sig-policy", "signature wrapping")
    case("wrap-duplicate-id.xml", sub1(r"<Amount>100</Amount>", '<Amount>100</Amount><Payment Id="doc"><Amount>'
                                       '1000000</Amount></Payment>', ok_id), "sig-policy", "duplicate Id 'doc'")
    case("wrap-duplicate-id-lowercase.xml", sub1(r"<Payee>", '<Payee id="doc">', ok_id), "sig-policy",
         "duplicate Id 'doc'")
    child_ref = xmlsec_sign(tmpl('<Amount Id="amt">100</Amount><Payee>000.00.00.H41</Payee>', uri="#amt",
                                 root_attrs=""), "agency-rsa-key.pem", "agency-rsa-cert.pem", id_attr="Amount")
    case("wrap-reference-to-child.xml", child_ref, "sig-policy", "signature wrapping")
    case("comment-splits-text.xml", sub1(r"<Amount>100</Amount>", "<Amount>10<!-- -->00</Amount>", ok_id),
         "sig-policy", "comment at line 2 inside the signed element")
    case("wrap-content-in-object.xml", sub1(r"</KeyInfo>", '</KeyInfo><Object><edXML:Subject xmlns:edXML="http://www.mic'
                                            '.gov.vn/TBT/QCVN_102_2016">Hủy văn bản</edXML:Subject></Object>', good),
         "sig-policy", "Object at line")
    case("wrap-content-in-keyinfo.xml", sub1(r"</X509Data>", '</X509Data><edXML:Subject xmlns:edXML="http://www.mic'
                                             '.gov.vn/TBT/QCVN_102_2016">Hủy văn bản</edXML:Subject>', good),
         "sig-policy", "foreign element Subject")
    env = ('<?xml version="1.0" encoding="UTF-8"?>\n<Signature xmlns="%s"><SignedInfo>'
           '<CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
           '<SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><Reference URI="">'
           '<Transforms><Transform Algorithm="%senveloped-signature"/></Transforms>'
           '<DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><DigestValue/></Reference>'
           '</SignedInfo><SignatureValue/><KeyInfo><X509Data/></KeyInfo><Object><Payment><Amount>1000000</Amount>'
           '</Payment></Object></Signature>\n') % (DS, DS)
    with tempfile.TemporaryDirectory() as d:
        t = os.path.join(d, "t.xml")
        open(t, "w").write(env)
        subprocess.run(["xmlsec1", "--sign", "--privkey-pem", "%s,%s" % (k("agency-rsa-key.pem"),
                                                                        k("agency-rsa-cert.pem")),
                        "--output", os.path.join(d, "o.xml"), t], check=True, capture_output=True)
        case("signature-signs-nothing.xml", open(os.path.join(d, "o.xml"), "rb").read(), "sig-policy",
             "the processed element is the Signature itself")
    case("wrap-reference-unknown-id.xml", sub1(r'URI="#doc"', 'URI="#nowhere"', ok_id), "sig-policy",
         "resolves to no element")
    case("wrap-xpointer-uri.xml", sub1(r'URI="#doc"', 'URI="#xpointer(/)"', ok_id), "sig-policy",
         "resolves to no element")

    # references, transforms and KeyInfo outside the policy
    case("external-uri-http.xml", sub1(r'URI=""', 'URI="http://127.0.0.1:9/evil.xml"', good), "sig-policy",
         "external or remote URI")
    case("external-uri-file.xml", sub1(r'URI=""', 'URI="file:///etc/passwd"', good), "sig-policy",
         "external or remote URI")
    case("reference-without-uri.xml", sub1(r'<Reference URI="">', "<Reference>", good), "sig-policy", "has no URI")
    xslt = ('<Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"><xsl:stylesheet '
            'xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"><xsl:template match="/">'
            '<xsl:value-of select="document(\'file:///etc/passwd\')"/></xsl:template></xsl:stylesheet></Transform>')
    case("transform-xslt.xml", sub1(r"</Transforms>", xslt + "</Transforms>", good), "sig-policy",
         "XSLT transform not allowed")
    case("transform-xpath.xml", sub1(r"</Transforms>", '<Transform Algorithm="http://www.w3.org/TR/1999/'
                                     'REC-xpath-19991116"><XPath>not(ancestor-or-self::edXML:Subject)</XPath>'
                                     "</Transform></Transforms>", good), "sig-policy", "XPath transform not allowed")
    case("transform-xpath-filter2.xml", sub1(r"</Transforms>", '<Transform Algorithm="http://www.w3.org/2002/06/'
                                             'xmldsig-filter2"><XPath xmlns="http://www.w3.org/2002/06/xmldsig-filter2"'
                                             ' Filter="subtract">//*</XPath></Transform></Transforms>', good),
         "sig-policy", "XPath Filter 2.0 transform not allowed")
    case("transform-base64.xml", sub1(r"</Transforms>", '<Transform Algorithm="http://www.w3.org/2000/09/xmldsig#'
                                      'base64"/></Transforms>', good), "sig-policy", "base64 transform not allowed")
    case("retrieval-method.xml", sub1(r"<KeyInfo>", '<KeyInfo><RetrievalMethod URI="http://127.0.0.1:9/key" '
                                      'Type="http://www.w3.org/2000/09/xmldsig#X509Data"/>', good), "sig-policy",
         "RetrievalMethod not allowed")
    kv = xmlsec_sign(tmpl(PAY, keyinfo="<KeyValue/>"), "rogue-key.pem")
    case("keyvalue-only.xml", kv, "sig-policy", "key in KeyValue not accepted")
    kvx = xmlsec_sign(tmpl(PAY, keyinfo="<KeyValue/><X509Data/>"), "agency-rsa-key.pem", "agency-rsa-cert.pem")
    case("keyvalue-beside-x509.xml", kvx, "sig-policy", "KeyValue not accepted")
    case("no-keyinfo.xml", re.sub(r"<KeyInfo>.*?</KeyInfo>", "", good_s, flags=re.S), "sig-untrusted", "no KeyInfo")

    # algorithms outside the policy
    case("sha1-without-policy.xml", sha1, "sig-policy", "needs policy legacy-sha1")
    sha1dig = xmlsec_sign(tmpl(PAY, digest=DS + "sha1"), "agency-rsa-key.pem", "agency-rsa-cert.pem")
    case("sha1-digest-without-policy.xml", sha1dig, "sig-policy", "reference 1 digest sha1 (SHA-1) needs policy")
    case("md5-digest.xml", sub1(r"xmlenc#sha256", "xmldsig-more#md5", good), "sig-policy", "algorithm not allowed")
    case("hmac-signature.xml", sub1(r"xmldsig-more#rsa-sha256", "xmldsig-more#hmac-sha256", good), "sig-policy",
         "algorithm not allowed: signature")
    case("alg-swap-pkcs1-to-pss.xml", sub1(r"2001/04/xmldsig-more#rsa-sha256",
                                           "2007/05/xmldsig-more#sha256-rsa-MGF1", good), "sig-invalid",
         "signature value does not verify")
    case("rsa-pss-sha3.xml", sub1(r"2001/04/xmldsig-more#rsa-sha256", "2007/05/xmldsig-more#sha3-256-rsa-MGF1", good),
         "sig-policy", "algorithm not allowed: signature")

    # keys and certificates
    rogue = lt_sign(edoc, "rogue-key.pem", "rogue-cert.pem").decode("utf-8")
    case("untrusted-chain.xml", rogue, "sig-untrusted", "untrusted chain")
    agency_b64 = re.search(r"<X509Certificate>(.*?)</X509Certificate>", good_s, re.S).group(1)
    case("wrong-certificate.xml", re.sub(r"<X509Certificate>.*?</X509Certificate>",
                                         "<X509Certificate>%s</X509Certificate>" % agency_b64, rogue, flags=re.S),
         "sig-invalid", "signature value does not verify")
    case("expired-chain.xml", lt_sign(edoc, "expired-key.pem", "expired-cert.pem"), "sig-expired", "expired at")
    case("revoked-certificate.xml", lt_sign(edoc, "revoked-key.pem", "revoked-cert.pem"), "sig-untrusted",
         "certificate revoked", "--crl " + os.path.join("$KEYS", "crl.pem"))
    case("ok-intermediate-chain.xml", lt_sign(edoc, "agency-sub-key.pem", "agency-sub-chain.pem"), "ok",
         "UBND Tinh Cao Bang", "--crl " + os.path.join("$KEYS", "crl.pem"))
    case("chain-missing-intermediate.xml", lt_sign(edoc, "agency-sub-key.pem", "agency-sub-cert.pem"),
         "sig-untrusted", "unable to get local issuer certificate")
    case("key-usage-not-signing.xml", lt_sign(edoc, "badku-key.pem", "badku-cert.pem"), "sig-untrusted",
         "key usage does not allow signing")
    ec = lt_sign(edoc, "agency-ec-key.pem", "agency-ec-cert.pem").decode("utf-8")
    case("key-type-mismatch.xml", sub1(r"xmldsig-more#ecdsa-sha256", "xmldsig-more#rsa-sha256", ec), "sig-invalid",
         "does not fit the signature algorithm")
    case("garbage-certificate.xml", sub1(r"<X509Certificate>.*?</X509Certificate>",
                                         "<X509Certificate>QUJDRA==</X509Certificate>", good, flags=re.S),
         "sig-untrusted", "not a DER certificate")

    # hostile and malformed XML
    case("doctype-xxe.xml", '<?xml version="1.0"?>\n<!DOCTYPE edXML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n' +
         good_s.split("?>", 1)[1].replace("Văn phòng Chính phủ", "&xxe;", 1), "xml-hostile", "DOCTYPE refused")
    lol = "".join('<!ENTITY lol%d "%s">' % (i, ("&lol%d;" % (i - 1)) * 10) for i in range(1, 10))
    case("billion-laughs.xml", '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol0 "lol">%s]>\n<lolz>&lol9;</lolz>\n'
         % lol, "xml-hostile", "DOCTYPE refused")
    case("doctype-external-dtd.xml", '<?xml version="1.0"?>\n<!DOCTYPE edXML SYSTEM "http://127.0.0.1:9/x.dtd">\n' +
         good_s.split("?>", 1)[1], "xml-hostile", "DOCTYPE refused")
    case("deeply-nested.xml", '<?xml version="1.0"?>\n' + "<a>" * 5000 + "</a>" * 5000, "too-large",
         "nested deeper than")
    case("truncated.xml", good[: len(good) // 2], "xml", "line")
    case("not-xml-json.xml", '<{"a": 1}', "xml", "line 1")

    with open(os.path.join(OUT, "cases.tsv"), "w", encoding="utf-8") as f:
        f.write("# file\targs\texpect\treason substring   (generated by tests/trust/make_negative.py)\n")
        for c in cases:
            f.write("\t".join(c) + "\n")
    print("make_negative: %d cases" % len(cases))


if __name__ == "__main__":
    main()
