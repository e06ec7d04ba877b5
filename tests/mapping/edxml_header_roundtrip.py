#!/usr/bin/env python3
"""Every header element of an edXML packet survives the round trip (vn-standards.md §1.2-1.4).

For each packet fixture in tests/mapping/edxml: packet -> JSON -> packet with the shipped
mappings (`lienthong map`), then the leaf elements and the attributes of edXMLHeader (and of
AttachmentEncoded) of the original and of the rebuilt packet are compared as multisets of
(path, text). The JSON
golden tests only see what the mappings map; this sees what they drop. Normalised first, as
the mappings document: the Bkav spellings (Business*, OrganInCharge) become the QCVN ones,
dates and timestamps become yyyy/MM/dd, ContentId loses "cid:", a status in a MessageHeader
becomes a Status, and empty leaves (which carry
no value: <DueDate/>, <Fax/>) are ignored. The signature is not header data and is skipped.

Also checks that the comparison can fail: a mapping with the ReplacementInfoList rule removed
must be caught."""
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

LT, SRC = sys.argv[1], sys.argv[2]
HERE = os.path.join(SRC, "tests", "mapping", "edxml")
MAPS = os.path.join(SRC, "mappings", "edxml")
RENAME = {"Business": "Bussiness", "BusinessDocType": "BussinessDocType", "BusinessDocReason": "BussinessDocReason",
          "BusinessDocumentInfo": "BussinessDocumentInfo", "OrganInCharge": "OrganizationInCharge"}
DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})(.*)$")


def local(tag):
    return tag.rsplit("}", 1)[-1]


def leaves(el, path, out):
    kids = list(el)
    name = RENAME.get(local(el.tag), local(el.tag))
    if name == "Signature":
        return
    p = path + "/" + name
    for a, v in el.attrib.items():  # TraceHeaderList's id, version, mustUnderstand, actor
        out.append((p + "/@" + local(a), v.strip()))
    if not kids:
        text = (el.text or "").strip()
        if name == "ContentTransferEncoded":
            text = re.sub(r"\s+", "", text)
        if name == "ContentId" and text.startswith("cid:"):
            text = text[4:]
        m = DATE.match(text)
        if m and name in ("PromulgationDate", "DueDate", "Timestamp"):
            text = f"{m.group(3)}/{m.group(2)}/{m.group(1)}{m.group(4)}"
        if text:
            out.append((p, text))
        return
    for k in kids:
        leaves(k, p, out)


def header_leaves(xml_bytes, status=False):
    root = ET.fromstring(xml_bytes)
    out = []
    for el in root.iter():
        if local(el.tag) in ("edXMLHeader", "AttachmentEncoded"):
            leaves(el, "", out)
    if status:  # a status carried in a MessageHeader (§8) is rebuilt as the QCVN Status (§1.4)
        out = [(p.replace("/edXMLHeader/MessageHeader/", "/edXMLHeader/Status/"), t) for p, t in out]
    return sorted(out)


def run(mapping, data):
    with tempfile.NamedTemporaryFile(suffix=".in", delete=False) as f:
        f.write(data)
    try:
        r = subprocess.run([LT, "map", mapping, f.name], capture_output=True, timeout=60)
    finally:
        os.unlink(f.name)
    if r.returncode:
        raise RuntimeError(f"lienthong map {os.path.basename(mapping)}: {r.stderr.decode()}")
    return r.stdout


def round_trip(packet, to_json, to_xml):
    return run(to_xml, run(to_json, packet))


def diff(a, b):
    from collections import Counter
    ca, cb = Counter(a), Counter(b)
    return sorted((ca - cb).elements()), sorted((cb - ca).elements())


failures = 0
cases = [(f, "document-to-json.yaml", "json-to-document.yaml") for f in sorted(os.listdir(HERE))
         if f.startswith("document-") and f.endswith(".edxml") and ".rebuilt." not in f]
cases += [("status-vnpt.edxml", "status-to-json.yaml", "json-to-status.yaml"),
          ("status-bkav.edxml", "status-to-json.yaml", "json-to-status.yaml")]
checked = 0
for name, tj, tx in cases:
    packet = open(os.path.join(HERE, name), "rb").read()
    st = name.startswith("status-")
    before = header_leaves(packet, st)
    after = header_leaves(round_trip(packet, os.path.join(MAPS, tj), os.path.join(MAPS, tx)), st)
    lost, added = diff(before, after)
    if lost or added:
        failures += 1
        print(f"FAIL {name}: lost {lost} added {added}")
    else:
        checked += len(before)
        print(f"ok   {name}: {len(before)} header values")
assert len(cases) >= 8, cases

# The check must be able to fail: drop the ReplacementInfoList rule and expect a loss. The
# copy gets the same neighbours (organ.yaml, ../../schemas) so that its relative paths resolve.
src = open(os.path.join(MAPS, "document-to-json.yaml"), encoding="utf-8").read()
lost_rule = re.sub(r"      - to: replacements\n(        .*\n)+", "", src)
assert lost_rule != src, "the replacements rule was not found"
with tempfile.TemporaryDirectory() as d:
    import shutil  # copies, not links: the hub opens schema and mapping files without following links
    shutil.copytree(os.path.join(SRC, "schemas"), os.path.join(d, "schemas"))
    os.makedirs(os.path.join(d, "mappings", "edxml"))
    shutil.copy(os.path.join(MAPS, "organ.yaml"), os.path.join(d, "mappings", "edxml", "organ.yaml"))
    tmp = os.path.join(d, "mappings", "edxml", "document-to-json.yaml")
    open(tmp, "w", encoding="utf-8").write(lost_rule)
    packet = open(os.path.join(HERE, "document-replace.edxml"), "rb").read()
    lost, _ = diff(header_leaves(packet),
                   header_leaves(round_trip(packet, tmp, os.path.join(MAPS, "json-to-document.yaml"))))
if not any("/ReplacementInfo/" in p for p, _ in lost):
    failures += 1
    print("FAIL the checker did not notice a dropped ReplacementInfoList")
else:
    print(f"ok   a mapping without the ReplacementInfoList rule is caught ({len(lost)} values lost)")

print(f"{len(cases)} packets, {checked} header values compared, {failures} failures")
sys.exit(1 if failures else 0)
