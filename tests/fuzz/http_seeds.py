"""Seeds of fuzz_http_listen (run_fuzz.py) and of its equivalence check (http_equiv.py): raw
HTTP/1.1 requests to the target's routes, valid and not, as the http-listen, onestop and paygov
tests send them, signed with the target's secrets."""
import hashlib
import hmac as hmac_mod
import json


def requests():
    secret, token, paykey = b"fuzz-hmac-secret-0123456789", "fuzz-bearer-token-0123456789", "fuzz-paygov-key-0123"

    def req(path, body=b"", ctype="application/json", headers=(), method="POST", framing="length", cl=None):
        body = body.encode() if isinstance(body, str) else body
        head = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"]
        if ctype:
            head.append("Content-Type: " + ctype)
        head += list(headers)
        if framing == "chunked":
            head.append("Transfer-Encoding: chunked")
        elif framing == "length":
            head.append("Content-Length: %s" % (len(body) if cl is None else cl))
        return "\r\n".join(head).encode() + b"\r\n\r\n" + body

    def sig(body, good=True):
        body = body.encode() if isinstance(body, str) else body
        mac = hmac_mod.new(secret, body, hashlib.sha256).hexdigest()
        return "X-Signature-256: sha256=" + (mac if good else mac[:-1] + ("0" if mac[-1] != "0" else "1"))

    def paygov(**over):
        o = {"LoaiBanTin": "ConfirmTransaction", "MaLoi": "00", "MaDoiTac": "DT01", "MaThamChieu": "TT-0001",
             "SoTien": "150000", "MaTienTe": "VND", "MaGiaoDich": "GD0001", "MaNganHang": "VCB",
             "ThoiGianGD": "20260101103000", "ThongTinGiaoDich": "Le phi ho so H01"}
        drop = over.pop("drop", None)
        o.update(over)
        fields = ["LoaiBanTin", "MaLoi", "MaDoiTac", "MaThamChieu", "SoTien", "MaTienTe", "MaGiaoDich",
                  "MaNganHang", "ThoiGianGD", "ThongTinGiaoDich"]
        try:
            text = "|".join(str(o[f]) for f in fields)
            o["MaXacThuc"] = hashlib.sha256((text + "|" + paykey).encode()).hexdigest()
        except KeyError:
            pass
        if drop:
            o.pop(drop)
        return json.dumps(o, ensure_ascii=False)

    doc = '{"id": "HS-001", "ten": "H\u1ed3 s\u01a1 \u0111\u0103ng k\u00fd", "soTien": 150000}'
    bad = '{"id": "HS-002",}'
    big = '{"id": "HS-003", "pad": "%s"}' % ("x" * 5000)
    xml = '<?xml version="1.0" encoding="UTF-8"?><doc><id>VB-01</id><title>C\u00f4ng v\u0103n</title></doc>'
    event = '{"eventId": "EV-1", "event": "submitted", "dossierCode": "000.00.01.H01-260101-0001"}'
    tp = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    items = [
        req("/hmac", doc, headers=[sig(doc), tp]), req("/hmac", doc, headers=[sig(doc, False)]),
        req("/hmac", doc), req("/hmac", doc, headers=[sig(doc).upper().replace("X-SIGNATURE-256: SHA256", "X-Signature-256: sha256")]),
        req("/hmac", doc, headers=[sig(doc)], framing="chunked"), req("/hmac", big, headers=[sig(big)]),
        req("/hmac", big, headers=[sig(big)], framing="chunked"), req("/hmac", doc, headers=[sig(doc)], cl="99999999999999"),
        req("/hmac", doc, headers=[sig(doc)], cl=len(doc) + 40), req("/hmac", bad, headers=[sig(bad)]),
        req("/hmac", '{"other": 1}', headers=[sig('{"other": 1}')]), req("/hmac", doc, ctype="text/plain", headers=[sig(doc)]),
        req("/hmac", doc, ctype=None, headers=[sig(doc)]), req("/hmac", method="GET", framing=None),
        req("/hmac", doc, method="PUT", headers=[sig(doc)]), req("/nowhere", doc), req("/later", doc),
        req("/hmac", b"\xef\xbb\xbf" + doc.encode(), headers=[sig(b"\xef\xbb\xbf" + doc.encode())]),
        req("/hmac", doc, ctype="application/json; charset=utf-8", headers=[sig(doc), "Idempotency-Key: k-1"]),
        req("/bearer", doc, headers=["Authorization: Bearer " + token, "X-Key: HS-9"]),
        req("/bearer", "hello", ctype="text/plain", headers=["Authorization: bearer " + token, "X-Key: T-1"]),
        req("/bearer", xml, ctype="application/xml", headers=["Authorization: Bearer " + token, "X-Key: X-1"]),
        req("/bearer", doc, headers=["Authorization: Bearer wrong-token-0000000000", "X-Key: HS-9"]),
        req("/bearer", doc, headers=["X-Key: HS-9"]), req("/bearer", doc, headers=["Authorization: Bearer " + token]),
        req("/bearer", doc, headers=["Authorization: Basic dXNlcjpwYXNz", "X-Key: HS-9"]),
        req("/xml", xml, ctype="application/xml"), req("/xml", xml, ctype="text/xml; charset=utf-8"),
        req("/xml", "<doc><id>VB-02</id>", ctype="application/xml"),
        req("/xml", '<!DOCTYPE doc [<!ENTITY e "x">]><doc><id>&e;</id></doc>', ctype="application/xml"),
        req("/xml", "<doc><other/></doc>", ctype="application/xml"), req("/xml", doc, ctype="application/xml"),
        req("/xml", b"<doc><id>VB-03</id></doc>\x00<x/>", ctype="application/xml"),
        req("/xml", '<a:doc xmlns:a="urn:x"><id>VB-04</id></a:doc>', ctype="application/xml"),
        req("/open", doc, headers=[tp, "Idempotency-Key: abc"]), req("/open", xml, ctype="application/soap+xml"),
        req("/open", doc, ctype="application/ld+json"), req("/open", b"\x00\x01\xff", ctype="application/octet-stream"),
        req("/open", "text", ctype="text/plain", headers=["traceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01"]),
        req("/open", "text", ctype="text/plain", headers=["traceparent: 01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"]),
        req("/open", "[1, 2.5, -0, 1e400]"), req("/open", '"\\u0000"'), req("/open", '{"a": 1, "a": 2}'),
        req("/open", "", framing="chunked"), req("/open", doc, ctype="APPLICATION/JSON ; q=1"),
        req("/onestop/events", event, headers=[sig(event)]), req("/onestop/events", event, headers=[sig(event, False)]),
        req("/onestop/events", '{"event": "submitted"}', headers=[sig('{"event": "submitted"}')]),
        req("/onestop/events", event, ctype="application/xml", headers=[sig(event)]),
        req("/onestop/events", event, headers=[sig(event), "Idempotency-Key: I-1", tp]),
        req("/paygov/confirm", paygov()), req("/paygov/confirm", paygov(SoTien="1500000")),
        req("/paygov/confirm", paygov(MaThamChieu="TT|0002")), req("/paygov/confirm", paygov(drop="MaDoiTac")),
        req("/paygov/confirm", paygov(MaDoiTac="DT99")), req("/paygov/confirm", paygov(SoTien=150000)),
        req("/paygov/confirm", paygov(drop="MaXacThuc")), req("/paygov/confirm", "[]"),
        req("/paygov/confirm", paygov(MaGiaoDich="G" * 200)),
        req("/paygov/confirm", paygov().replace('"150000"', '"1500000"')),  # tampered after signing
    ]
    items[5:5] = [i.replace(b"\r\n", b"\n") for i in items[:3]]  # bare LF line ends
    return items
