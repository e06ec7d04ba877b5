"""A big edXML packet through the hub on the transport under test (issue 13, item 5).

A 24 MB document packet with one base64 attachment is dropped into a folder. One hub runs:
  file-in -> out.plain -> route `send` (validate, sign-xml as the agency) -> signed
          -> route `receive` (verify-xml trusting only the test CA, validate) -> received -> file-out
with `xml: {max_size: 64MiB}` on both routes, and on Kafka the settings docs/bigdoc.md says a
real deployment needs: the broker's message.max.bytes raised to 64 MiB (its default is 1 MB;
set here as a dynamic cluster default and deleted at the end) and the hub's librdkafka
properties message.max.bytes, fetch.max.bytes and receive.message.max.bytes raised to match. Checks: the packet arrives once, its bytes are the
input's with one signature inserted, xmlsec1 (an independent verifier) accepts the signature
with only the CA, the 16 MiB default sends the same packet to the DLQ saying so, and the hub
stays up. The hub's peak RSS (VmHWM) is printed as information (figures: `lienthong bench edoc`).
"""
import glob
import os
import subprocess
import time

from harness import PORT, SRC, TRANSPORT, Checks, Hub, consume, log, transport_section, unique, wait_until

c = Checks("bigdoc")
bootstrap = f"127.0.0.1:{PORT}"
KEYS = os.path.join(SRC, "tests", "trust", "fixtures", "keys")
XSD = os.path.join(SRC, "schemas", "edxml", "edxml-document.xsd")
MAX = 64 * 1024 * 1024
SIZE = 24 * 1000 * 1000


def packet(size):
    head = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<edXML xmlns=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\">\n"
            " <edXML:edXMLEnvelope xmlns:edXML=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\">\n"
            "  <edXML:edXMLHeader>\n   <edXML:MessageHeader>\n"
            "    <edXML:From><edXML:OrganId>000.00.00.G22</edXML:OrganId></edXML:From>\n"
            "    <edXML:To><edXML:OrganId>000.00.00.H41</edXML:OrganId></edXML:To>\n"
            "    <edXML:DocumentId>000.00.00.G22,2024/05/02,77/VPCP-TH</edXML:DocumentId>\n"
            "    <edXML:Subject>Hồ sơ kèm tệp lớn</edXML:Subject>\n"
            "   </edXML:MessageHeader>\n"
            "   <edXML:TraceHeaderList><edXML:Bussiness><edXML:BussinessDocType>0</edXML:BussinessDocType>"
            "</edXML:Bussiness></edXML:TraceHeaderList>\n"
            "  </edXML:edXMLHeader>\n"
            " </edXML:edXMLEnvelope>\n"
            " <AttachmentEncoded><Attachment><ContentId>cid:1</ContentId><AttachmentName>ban-ve.zip</AttachmentName>"
            "<edXML:ContentTransferEncoded xmlns:edXML=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\">").encode()
    tail = b"</edXML:ContentTransferEncoded></Attachment></AttachmentEncoded>\n</edXML>\n"
    import base64
    import random
    r = random.Random(13)
    raw = r.randbytes((size - len(head) - len(tail)) * 3 // 4 // 57 * 57)
    body = b"".join(base64.b64encode(raw[i:i + 57]) + b"\n" for i in range(0, len(raw), 57))
    return head + body + tail


def broker_limit(value):
    """Kafka: the broker's message.max.bytes, as a cluster-wide dynamic default (ConfigCommand,
    kafka-configs.sh in a Kafka distribution); None deletes it again. docs/bigdoc.md tells
    operators to do this, or to set max.message.bytes on the document topics."""
    cp = os.path.join(SRC, ".cache", "kafka", "libs", "*")
    change = ["--add-config", f"message.max.bytes={value}"] if value else ["--delete-config", "message.max.bytes"]
    r = subprocess.run(["java", "-Xmx256m", "-cp", cp, "kafka.admin.ConfigCommand", "--bootstrap-server", bootstrap,
                        "--entity-type", "brokers", "--entity-default", "--alter"] + change,
                       capture_output=True, timeout=180)
    return c.ok(r.returncode == 0, f"setting the broker's message.max.bytes: {r.stderr.decode()[-500:]}")


def hub_config(folder, out, names, xml_max):
    if TRANSPORT == "kafka":
        transport = ("  transport: kafka\n  kafka:\n"
                     f"    bootstrap: '{bootstrap}'\n    session_timeout: 3s\n"
                     f"    properties: [message.max.bytes={MAX}, fetch.max.bytes={MAX}, "
                     f"receive.message.max.bytes={MAX + 512}]\n")
    else:
        transport = transport_section(bootstrap)
    xml = f"    xml: {{max_size: {xml_max}}}\n" if xml_max else ""
    plain, signed, received = names["plain"], names["signed"], names["received"]
    return (f"hub:\n{transport}  instance: test\n  admin: {{ listen: '@ADMIN@' }}\n"
            f"keys:\n  trust: {{ca: [{KEYS}/ca.pem]}}\n"
            "connectors:\n"
            f"  - name: {names['in']}\n    type: file-in\n    topic: {plain}\n    path: {folder}\n"
            f"    pattern: '*.edxml'\n    max_size: {MAX}\n    poll_interval: 50ms\n    settle: 500ms\n    rescan: 1s\n"
            f"  - name: {names['out']}\n    type: file-out\n    from: {received}\n    path: {out}\n"
            "    filename: '${key}'\n"
            "routes:\n"
            f"  - name: {names['send']}\n    from: {plain}\n    to: {signed}\n"
            f"    steps:\n      - validate: {XSD}\n"
            f"      - sign-xml: {{key: {KEYS}/agency-rsa-key.pem, cert: {KEYS}/agency-rsa-cert.pem, profile: edxml}}\n"
            f"    errors: {{retries: 0, dlq: {names['send']}.dlq}}\n{xml}"
            f"  - name: {names['receive']}\n    from: {signed}\n    to: {received}\n"
            f"    steps:\n      - verify-xml: {{}}\n      - validate: {XSD}\n"
            f"    errors: {{retries: 0, dlq: {names['receive']}.dlq}}\n{xml}")


def dlq_records(topic):
    """(value size, headers) of each committed record; kcat without the value, which has newlines."""
    if TRANSPORT != "kafka":
        return [(len(r["value"].encode()), r["headers"]) for r in consume(bootstrap, topic)]
    r = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-e", "-q", "-f", "%S\t%h\n",
                        "-X", "isolation.level=read_committed", "-X", f"fetch.message.max.bytes={MAX}",
                        "-X", f"receive.message.max.bytes={MAX + 512}"], capture_output=True, timeout=300)
    out = []
    for line in r.stdout.decode(errors="replace").split("\n"):
        if "\t" in line:
            size, h = line.split("\t", 1)
            headers = dict(kv.partition("=")[::2] for kv in h.split(",") if "=" in kv)
            out.append((int(size), headers))
    return out


def peak_rss_mib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return -1


def run(xml_max, data):
    tag = unique("big")
    names = {k: f"{tag}-{k}" for k in ("in", "out", "send", "receive")}
    names.update({k: f"{tag}.{k}" for k in ("plain", "signed", "received")})
    hub = Hub("", tag)
    folder, out = os.path.join(hub.dir, "in"), os.path.join(hub.dir, "out")
    os.makedirs(folder)
    os.makedirs(out)
    hub.write_config(hub_config(folder, out, names, xml_max))
    hub.start()
    hub.wait_ready()
    with open(os.path.join(folder, ".doc.edxml.tmp"), "wb") as f:
        f.write(data)
    os.rename(os.path.join(folder, ".doc.edxml.tmp"), os.path.join(folder, "doc.edxml"))
    return hub, out, names


data = packet(SIZE)
log(f"packet of {len(data)} bytes, transport {TRANSPORT}")
if TRANSPORT == "kafka" and not broker_limit(MAX):
    c.done()

# ---- 1: the default limit (16 MiB) refuses the packet in the first route, with the reason
hub, out, names = run(None, data)
if hub:
    dlq = names["send"] + ".dlq"
    got = []

    def dlq_has():
        global got
        got = dlq_records(dlq)
        return len(got) >= 1

    c.ok(wait_until(dlq_has, 300, hub, "the DLQ record"), "the oversized packet reaches the DLQ")
    if got:
        why = got[0][1].get("lt.error.reason", "")
        c.ok("exceeds the limit of 16777216 bytes" in why, f"the DLQ reason names the limit: {why!r}")
        c.eq(got[0][0], len(data), "the DLQ keeps the original bytes")
    c.ok(hub.alive(), "the hub is still running")
    c.eq(hub.terminate()[0], 0, "clean stop")

# ---- 2: xml.max_size 64MiB: signed, verified, validated, delivered once
hub, out, names = run("64MiB", data)
if hub:
    target = os.path.join(out, "doc.edxml")
    c.ok(wait_until(lambda: os.path.exists(target), 600, hub, "the delivered packet"), "the packet is delivered")
    time.sleep(2)
    files = [p for p in glob.glob(os.path.join(out, "*")) if not os.path.basename(p).startswith(".")]
    c.eq(len(files), 1, "exactly one file delivered")
    log(f"hub peak RSS {peak_rss_mib(hub.proc.pid):.1f} MiB for a {len(data) / 1e6:.1f} MB packet "
        "(two routes, transport buffers included; information only)")
    for d in (names["send"] + ".dlq", names["receive"] + ".dlq"):
        c.eq(len(dlq_records(d)), 0, f"nothing in {d}")
    c.ok(hub.alive(), "the hub is still running")
    c.eq(hub.terminate()[0], 0, "clean stop")
    if os.path.exists(target):
        got = open(target, "rb").read()
        at = got.find(b"<Signature")
        end = got.find(b"</Signature>") + len(b"</Signature>")
        c.ok(at > 0 and end > at, "the delivered packet carries a signature")
        c.ok(got[:at] + got[end:] == data, "the rest of the packet is byte for byte the input")
        r = subprocess.run(["xmlsec1", "--verify", "--trusted-pem", os.path.join(KEYS, "ca.pem"),
                            "--enabled-key-data", "x509", target],
                           capture_output=True, timeout=600)
        c.ok(r.returncode == 0, f"xmlsec1 verifies the signature with only the CA: {r.stderr.decode()[-400:]}")

if TRANSPORT == "kafka":
    broker_limit(None)
c.done()
