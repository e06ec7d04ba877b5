#!/usr/bin/env python3
"""Bad input to `lienthong validate` and `lienthong query`: every n_ file of JSONTestSuite is
refused with a message naming the file, line and column; every y_ file is accepted except the
ones the hub refuses by policy (duplicate keys, NUL); no i_ file crashes; NUL bytes, duplicate
keys, hostile XML (DOCTYPE, XXE, entity expansion), bad schemas and bad expressions give the
documented exit codes and clear messages. A crash (signal, sanitizer report) fails the test.

Usage: test_bad_input.py LIENTHONG  (env LT_SHARED_DIR: the folder holding testdata/)"""
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading

LT = sys.argv[1]
SHARED = os.environ.get("LT_SHARED_DIR")
failures = []
checks = 0

# y_ files the hub refuses on purpose (design: duplicate keys and NUL bytes are never accepted)
POLICY_REFUSED = {
    "y_object_duplicated_key.json": "duplicate object key",
    "y_object_duplicated_key_and_value.json": "duplicate object key",
    "y_object_escaped_null_in_key.json": "NUL",
    "y_string_null_escape.json": "NUL",
}


def run(*args, stdin=None):
    p = subprocess.run([LT, *args], capture_output=True, timeout=60, input=stdin)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    return p.returncode, out, err


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def no_crash(rc, err, what):
    check(rc >= 0 and rc in (0, 1, 2), f"{what}: exit {rc} (crash?)")
    check("Sanitizer" not in err and "runtime error" not in err, f"{what}: sanitizer report: {err[:300]}")


def main():
    if not SHARED or not os.path.isdir(os.path.join(SHARED, "testdata", "json-parsing")):
        print("LT_SHARED_DIR must point at the shared folder with testdata/json-parsing", file=sys.stderr)
        return 1
    corpus = os.path.join(SHARED, "testdata", "json-parsing", "test_parsing")
    tmp = tempfile.mkdtemp(prefix="lt-bad-input-")
    anything = os.path.join(tmp, "any.schema.json")
    with open(anything, "w") as f:
        f.write('{"$schema": "https://json-schema.org/draft/2020-12/schema"}')

    n_seen = y_seen = i_seen = 0
    for name in sorted(os.listdir(corpus)):
        path = os.path.join(corpus, name)
        rc, out, err = run("validate", anything, path)
        no_crash(rc, err, f"validate {name}")
        qrc, qout, qerr = run("query", "-c", "$", path)
        no_crash(qrc, qerr, f"query {name}")
        if name.startswith("n_"):
            n_seen += 1
            check(rc == 1, f"validate {name}: exit {rc}, expected 1")
            check(re.search(re.escape(path) + r": /: json: line \d+, column \d+: \S", out),
                  f"validate {name}: no line/column error: {out!r}")
            check(qrc == 1 and qout == "", f"query {name}: exit {qrc}, output {qout!r}")
            check(re.search(r"line \d+, column \d+", qerr) and path in qerr, f"query {name}: unclear error {qerr!r}")
        elif name.startswith("y_"):
            y_seen += 1
            if name in POLICY_REFUSED:
                check(rc == 1 and POLICY_REFUSED[name] in out, f"validate {name}: must be refused ({POLICY_REFUSED[name]}): {out!r}")
                check(qrc == 1, f"query {name}: must be refused")
            else:
                check(rc == 0 and out.strip() == f"{path}: valid", f"validate {name}: exit {rc}: {out!r}")
                check(qrc == 0 and qout.startswith("["), f"query {name}: exit {qrc}: {qerr!r}")
        else:
            i_seen += 1
            check(rc in (0, 1), f"validate {name}: exit {rc}")
    check(n_seen >= 180 and y_seen >= 90, f"corpus incomplete: {n_seen} n_, {y_seen} y_ files")

    def write(name, data):
        p = os.path.join(tmp, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    # NUL bytes, raw and escaped, and duplicate keys
    raw_nul = write("raw-nul.json", b'{"a": "x\x00y"}')
    rc, out, _ = run("validate", anything, raw_nul)
    check(rc == 1 and "line 1, column 9: NUL byte" in out, f"raw NUL: {rc} {out!r}")
    esc_nul = write("esc-nul.json", b'{"a": "x\\u0000y"}')
    rc, out, _ = run("validate", anything, esc_nul)
    check(rc == 1 and "NUL" in out and "line 1" in out, f"escaped NUL: {rc} {out!r}")
    dup = write("dup.json", b'{\n  "a": 1,\n  "a": 2\n}')
    rc, out, _ = run("validate", anything, dup)
    check(rc == 1 and "line 3" in out and "duplicate object key" in out, f"duplicate key: {rc} {out!r}")
    rc, out, err = run("query", "$.a", dup)
    check(rc == 1 and out == "" and "duplicate object key" in err, f"query duplicate key: {rc} {err!r}")

    # hostile XML: never parsed, never expanded, nothing of the entity in the output
    xsd = write("r.xsd", b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
                         b'<xs:element name="r" type="xs:string"/></xs:schema>')
    hostile = {
        "xxe.xml": b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<r>&x;</r>',
        "laughs.xml": b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
                      b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;">]>\n<r>&c;&c;&c;&c;</r>',
        "doctype.xml": b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/r.dtd"><r>x</r>',
    }
    for name, data in hostile.items():
        p = write(name, data)
        rc, out, err = run("validate", xsd, p)
        no_crash(rc, err, f"validate {name}")
        check(rc == 1 and "refused" in out and "root:" not in out, f"validate {name}: {rc} {out!r}")
        rc, out, err = run("query", "/r", p)
        check(rc == 1 and out == "" and "refused" in err, f"query {name}: {rc} {out!r} {err!r}")
    good_xml = write("good.xml", b'<r>hello</r>')
    rc, out, _ = run("validate", xsd, good_xml)
    check(rc == 0, f"valid XML against XSD: {rc} {out!r}")
    bad_xml = write("bad.xml", b'<r><child/></r>')
    rc, out, _ = run("validate", xsd, bad_xml)
    check(rc == 1 and re.search(re.escape(bad_xml) + r": /r: xsd: .*\(line 1\)", out), f"invalid XML: {rc} {out!r}")
    broken_xml = write("broken.xml", b'<r>\n<a></b></r>')
    rc, out, _ = run("validate", xsd, broken_xml)
    check(rc == 1 and "line 2" in out, f"malformed XML: {rc} {out!r}")

    # an XSD importing a schema over HTTP: libxml2 must not fetch it (the server counts requests)
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    net_xsd = write("net.xsd", (f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
                                f'<xs:include schemaLocation="http://127.0.0.1:{port}/inc.xsd"/>'
                                f'<xs:element name="r" type="xs:string"/></xs:schema>').encode())
    rc, out, err = run("validate", net_xsd, good_xml)
    no_crash(rc, err, "XSD with a network include")
    check(not hits, f"XSD include fetched over the network: {hits}")
    server.shutdown()

    # every failure listed with its instance path and keyword
    schema = write("s.schema.json", b'{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",'
                                    b'"required": ["id"], "properties": {"n": {"type": "integer", "maximum": 5},'
                                    b'"tags": {"type": "array", "items": {"type": "string", "minLength": 2}}}}')
    inst = write("inst.json", b'{"n": 7, "tags": ["ok", "x", 3]}')
    rc, out, _ = run("validate", schema, inst)
    lines = out.strip().split("\n")
    expect = [f"{inst}: /: required: ", f"{inst}: /n: maximum: ", f"{inst}: /tags/1: minLength: ", f"{inst}: /tags/2: type: "]
    check(rc == 1 and all(any(line.startswith(e) for line in lines) for e in expect) and len(lines) == 4,
          f"failure list: {out!r}")
    ok_inst = write("ok.json", b'{"id": 1, "n": 5}')
    rc, out, _ = run("validate", "-q", schema, ok_inst, inst)
    check(rc == 1 and ok_inst not in out and inst in out, f"mixed files: {rc} {out!r}")

    # bad schemas: exit 2 naming the file and the place
    bad_schemas = {
        "typo.schema.json": (b'{"properties": {"a": {"type": "strnig"}}}', "/properties/a/type"),
        "regex.schema.json": (b'{"pattern": "(unclosed"}', "pattern"),
        "ref.schema.json": (b'{"$ref": "#/$defs/missing"}', "cannot resolve reference"),
        "notjson.schema.json": (b'{"type": ', "line 1"),
        "remote.schema.json": (b'{"$ref": "https://example.com/x.json"}', "cannot resolve reference"),
    }
    for name, (data, needle) in bad_schemas.items():
        p = write(name, data)
        rc, out, err = run("validate", p, ok_inst)
        check(rc == 2 and needle in err and name in err, f"bad schema {name}: {rc} {err!r}")
    rc, _, err = run("validate", write("x.txt", b"{}"), ok_inst)
    check(rc == 2 and "unknown schema type" in err, f"unknown schema kind: {rc} {err!r}")
    rc, _, err = run("validate", schema, os.path.join(tmp, "missing.json"))
    check(rc == 2 and "missing.json" in err, f"missing file: {rc} {err!r}")
    rc, _, err = run("validate", schema)
    check(rc == 2 and "--help" in err, f"usage: {rc} {err!r}")

    # a $ref to a file beside the schema resolves
    write("common.schema.json", b'{"$defs": {"code": {"type": "string", "pattern": "^[0-9]{3}$"}}}')
    main_schema = write("main.schema.json", b'{"properties": {"code": {"$ref": "common.schema.json#/$defs/code"}}}')
    rc, out, _ = run("validate", main_schema, write("code-ok.json", b'{"code": "123"}'), write("code-bad.json", b'{"code": "12a"}'))
    check(rc == 1 and "code-ok.json: valid" in out and re.search(r"code-bad.json: /code: pattern: ", out),
          f"relative file $ref: {rc} {out!r}")

    # query: bad expressions are exit 2 with the column; good ones print a JSON array
    doc = write("doc.json", b'{"a": [1, 2, {"b": "x"}], "c": "d"}')
    for expr in ["$.a[", "$[?@.a==]", "$$", "$..", "$[01]", "$[?length(@.*)<3]"]:
        rc, out, err = run("query", expr, doc)
        check(rc == 2 and out == "" and "column" in err, f"query {expr!r}: {rc} {err!r}")
    rc, out, _ = run("query", "-c", "$.c", "-", stdin=b'{"c": [true]}')
    check(rc == 0 and out.strip() == "[[true]]", f"query from stdin: {rc} {out!r}")
    rc, out, _ = run("validate", schema, "-", stdin=b'{"n": 9}')
    check(rc == 1 and "-: /n: maximum: " in out, f"validate from stdin: {rc} {out!r}")
    rc, out, _ = run("query", "-c", "$..b", doc)
    check(rc == 0 and out.strip() == '["x"]', f"query $..b: {out!r}")
    rc, out, _ = run("query", "-c", "--paths", "$.a[?@ > 1]", doc)
    check(rc == 0 and out.strip() == "[\"$['a'][1]\"]", f"query --paths: {out!r}")
    xml = write("ns.xml", b'<p:r xmlns:p="urn:p"><p:i k="1">a</p:i><p:i>b</p:i></p:r>')
    rc, out, _ = run("query", "-c", "--ns", "q=urn:p", "//q:i/@k", xml)
    check(rc == 0 and out.strip() == '["1"]', f"xpath attribute: {rc} {out!r}")
    rc, out, _ = run("query", "-c", "--ns", "q=urn:p", "//q:i", xml)
    check(rc == 0 and out.strip() == '["<p:i xmlns:p=\\"urn:p\\" k=\\"1\\">a</p:i>","<p:i xmlns:p=\\"urn:p\\">b</p:i>"]',
          f"xpath elements are standalone markup: {rc} {out!r}")
    rc, out, _ = run("query", "-c", "--ns", "q=urn:p", "count(//q:i)", xml)
    check(rc == 0 and out.strip() == "[2]", f"xpath count: {rc} {out!r}")
    rc, out, err = run("query", "//q:i[", xml)
    check(rc == 2 and out == "" and "Invalid expression at column 7" in err, f"invalid xpath: {rc} {err!r}")
    rc, out, err = run("query", "//undeclared:i", xml)
    check(rc == 2 and out == "" and "Undefined namespace prefix" in err, f"undeclared prefix: {rc} {err!r}")
    rc, out, err = run("query", "$", xml)
    check(rc == 1 and out == "" and "line 1" in err, f"XML given to JSONPath: {rc} {err!r}")

    # the validation benchmark: its last line is one JSON object with every figure
    rc, out, err = run("bench", "validate", schema, ok_inst, "200")
    last = out.strip().split("\n")[-1] if out.strip() else ""
    try:
        fig = json.loads(last)
    except ValueError:
        fig = {}
    check(rc == 0 and fig.get("bench") == "validate" and fig.get("validate_us_per_msg", 0) > 0
          and fig.get("baseline_parse_dump_us_per_msg", 0) > 0, f"bench validate: {rc} {out!r} {err!r}")
    rc, _, err = run("bench", "validate", schema, inst, "10")
    check(rc == 1 and "not valid" in err, f"bench validate of an invalid file: {rc} {err!r}")

    print(f"{checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
