#!/usr/bin/env python3
"""Bad input never crashes a mapping and never gives partial output.

Runs `lienthong map` on every file of the JSONTestSuite corpus (../shared/testdata/json-parsing:
n_ must be refused with a parse error that names the input and its line, i_ and y_ may map or be
refused, but nothing may crash) and on a set of hostile XML documents (entities, external
entities, deep nesting, NUL bytes, invalid UTF-8). A refusal must exit 1 with nothing on stdout.
Usage: bad_inputs.py LIENTHONG SOURCE_DIR   (LT_SHARED_DIR names the shared folder)."""
import os
import subprocess
import sys
import tempfile

lt, src = sys.argv[1], sys.argv[2]
shared = os.environ.get("LT_SHARED_DIR", os.path.join(src, "..", "shared"))
corpus = os.path.join(shared, "testdata", "json-parsing", "test_parsing")
if not os.path.isdir(corpus):
    sys.exit(f"bad_inputs: the JSONTestSuite corpus is missing: {corpus} (set LT_SHARED_DIR)")

json_map = os.path.join(src, "mappings", "dvcqg", "dong-bo-ho-so.yaml")
xml_map = os.path.join(src, "mappings", "edxml", "document-to-json.yaml")
failures = []
counts = {"n": 0, "i": 0, "y": 0, "xml": 0}


def run(mapping, path):
    p = subprocess.run([lt, "map", mapping, path], capture_output=True, timeout=60)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def check_refused(name, rc, out, err, must_contain):
    if rc != 1:
        failures.append(f"{name}: exit {rc}, expected 1 (refused); stderr: {err.strip()[:200]}")
    elif out:
        failures.append(f"{name}: refused but wrote {len(out)} bytes of output")
    elif not all(s in err for s in must_contain):
        failures.append(f"{name}: message lacks {must_contain}: {err.strip()[:200]}")


for f in sorted(os.listdir(corpus)):
    path = os.path.join(corpus, f)
    kind = f[0]
    if kind not in "niy":
        continue
    counts[kind] += 1
    rc, out, err = run(json_map, path)
    if rc < 0 or rc > 2:
        failures.append(f"{f}: crashed or aborted (exit {rc}): {err.strip()[:200]}")
    elif kind == "n":
        check_refused(f, rc, out, err, ["lienthong map:", "input"])
    elif rc == 1 and out:
        failures.append(f"{f}: refused but wrote output")

hostile = {
    "billion-laughs": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><edXML>&c;</edXML>',
    "xxe-file": b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]><edXML>&x;</edXML>',
    "xxe-network": b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]><edXML>&x;</edXML>',
    "parameter-entity": b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><edXML/>',
    "external-dtd": b'<?xml version="1.0"?><!DOCTYPE edXML SYSTEM "http://127.0.0.1:9/edxml.dtd"><edXML/>',
    "deep-nesting": b"<a>" * 20000 + b"</a>" * 20000,
    "nul-byte": b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">\x00</edXML>',
    "invalid-utf8": b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><a>\xc3\x28</a></edXML>',
    "truncated": b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><edXMLEnvelope>',
    "two-roots": b"<a/><b/>",
    "empty": b"",
    "not-xml": b'{"edXML": true}',
    "undeclared-prefix": b"<edXML:edXML><edXML:a/></edXML:edXML>",
    "unclosed-cdata": b"<edXML><![CDATA[ x </edXML>",
}
with tempfile.TemporaryDirectory() as tmp:
    for name, data in hostile.items():
        counts["xml"] += 1
        path = os.path.join(tmp, name + ".xml")
        with open(path, "wb") as fh:
            fh.write(data)
        rc, out, err = run(xml_map, path)
        check_refused(name, rc, out, err, ["lienthong map:", "input"])

print(f"JSONTestSuite n_ {counts['n']}, i_ {counts['i']}, y_ {counts['y']}; hostile XML {counts['xml']}")
for f in failures:
    print("FAIL", f)
print(f"{sum(counts.values()) - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
