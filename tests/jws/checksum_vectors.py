#!/usr/bin/env python3
"""Independent expected values for tests/jws/test_checksum.c, written from the descriptions of the
counterparts' Java code (docs/jws.md), not from the hub's C code. Reads a JSON list of cases from
argv[1] and prints a JSON list of results in the same order."""
import hashlib, hmac, json, sys


def gson_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == '\\':
            out.append('\\\\')
        elif ch in '\t\b\n\r\f':
            out.append({'\t': '\\t', '\b': '\\b', '\n': '\\n', '\r': '\\r', '\f': '\\f'}[ch])
        elif o < 0x20 or o in (0x2028, 0x2029):
            out.append('\\u%04x' % o)
        else:
            out.append(ch)
    out.append('"')
    return ''.join(out)


def run(case):
    kind = case["kind"]
    if kind == "paygov-sha256":
        text = "|".join(case["values"]) + "|" + case["key"]
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    if kind == "paygov-hmac":
        text = "|".join(case["values"])
        return hmac.new(case["key"].encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()
    if kind == "vxp-header":
        body = ",".join(gson_string("XroadVnpt-" + n) + ":" + gson_string(v) for n, v in zip(case["names"], case["values"]))
        js = "{" + body + "}"
        mac = hmac.new(case["secret"].encode("utf-8"), js.encode("utf-8"), hashlib.sha256).hexdigest()
        return {"json": js, "keys": ";".join(case["names"]), "hash": mac}
    if kind == "hash-file":
        data = open(case["path"], "rb").read()
        return "".join("%x" % b for b in hashlib.sha256(data).digest())  # Integer.toHexString per byte
    raise SystemExit("unknown case kind " + kind)


cases = json.load(open(sys.argv[1], encoding="utf-8"))
json.dump([run(c) for c in cases], sys.stdout, ensure_ascii=False)
