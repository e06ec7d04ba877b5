"""Shared by test_vxp.py and test_lgsp_edoc.py: edXML packets of every kind (new, reply, replace,
revoke; with and without attachments), the hub's document-axis routes, reading topics whose
values hold newlines (kcat -J), and the independent signature checks (xmlsec1, Santuario)."""
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from harness import SRC, TRANSPORT, Failure, consume, log, produce, transport_section, wait_until

KEYS = os.path.join(SRC, "tests", "trust", "fixtures", "keys")
FIXTURE = os.path.join(SRC, "tests", "trust", "fixtures")
ORG_A, ORG_B, ORG_C = "000.00.00.G22", "000.00.00.H41", "000.00.00.K09"
VARIANTS = ["new", "reply", "replace", "revoke"]


def one_line(path):
    return "".join(l.strip("\n") for l in open(path, encoding="utf-8"))


def doc_id(tag, i):
    return f"{ORG_A},2026/12/06,{i}/{tag}"


def make_document(tag, i):
    """Packet i: variant i % 4, attachments on odd i (an attachment of its own content)."""
    text = one_line(os.path.join(FIXTURE, "edxml-document.edxml"))
    variant = VARIANTS[i % 4]
    did = doc_id(tag, i)
    text = text.replace("000.00.00.G22,2015/09/30,7816/VPCP-TTĐT", did)
    text = text.replace("<edXML:CodeNumber>7816</edXML:CodeNumber>", f"<edXML:CodeNumber>{i}</edXML:CodeNumber>")
    text = text.replace("V/v kết nối, liên thông phần mềm quản lý văn bản", f"V/v văn bản số {i} ({variant}) {tag}")
    biz = {"new": ("0", "Văn bản điện tử mới"), "reply": ("0", "Văn bản phúc đáp"),
           "replace": ("3", "Thay thế văn bản"), "revoke": ("1", "Thu hồi văn bản")}[variant]
    text = text.replace("<edXML:BussinessDocType>0</edXML:BussinessDocType>",
                        f"<edXML:BussinessDocType>{biz[0]}</edXML:BussinessDocType>")
    text = text.replace("Văn bản điện tử mới", biz[1])
    earlier = doc_id(tag, max(0, i - 4))
    if variant == "reply":
        text = text.replace("<edXML:SteeringType>",
                            f"<edXML:ResponseFor><edXML:OrganId>{ORG_B}</edXML:OrganId><edXML:Code>{i}/UBND-VP</edXML:Code>"
                            f"<edXML:PromulgationDate>2026/12/01</edXML:PromulgationDate>"
                            f"<edXML:DocumentId>{ORG_B},2026/12/01,{i}/UBND-VP</edXML:DocumentId></edXML:ResponseFor>"
                            "<edXML:SteeringType>", 1)
    if variant in ("replace", "revoke"):
        text = text.replace("</edXML:Bussiness>",
                            f"<edXML:ReplacementInfoList><edXML:ReplacementInfo><edXML:DocumentId>{earlier}</edXML:DocumentId>"
                            f"<edXML:OrganIdList><edXML:OrganId>{ORG_B}</edXML:OrganId></edXML:OrganIdList>"
                            "</edXML:ReplacementInfo></edXML:ReplacementInfoList></edXML:Bussiness>", 1)
    if i % 2 == 0:  # without attachments
        text = re.sub(r"<AttachmentEncoded>.*</AttachmentEncoded>", "", text)
        text = re.sub(r"<edXML:Reference>.*?</edXML:Reference>", "", text)
    else:
        payload = base64.b64encode(f"attachment of document {i} {tag}".encode() * 8).decode()
        text = re.sub(r"(<edXML:ContentTransferEncoded[^>]*>)[^<]*", lambda m: m.group(1) + payload, text)
    return did, variant, text


BIG_MAX = 64 << 20  # the routes' xml.max_size, the connectors' max_size and the Kafka record limit


def make_big_document(tag, i, size):
    """Packet i (odd: with an attachment) grown to about `size` bytes: the attachment becomes
    random bytes, base64 on one line (the test's producer takes one record per line)."""
    did, variant, text = make_document(tag, i)
    assert i % 2 == 1
    import random
    head = len(text.encode()) - 400
    raw = random.Random(i).randbytes(max(0, size - head) * 3 // 4)
    payload = base64.b64encode(raw).decode()
    text = re.sub(r"(<edXML:ContentTransferEncoded[^>]*>)[^<]*", lambda m: m.group(1) + payload, text)
    return did, variant, text


def kafka_big_transport(bootstrap):
    """The hub's Kafka lines with the record limits raised to BIG_MAX (docs/bigdoc.md)."""
    if TRANSPORT != "kafka":
        return transport_section(bootstrap)
    return ("  transport: kafka\n  kafka:\n"
            f"    bootstrap: '{bootstrap}'\n    session_timeout: 3s\n"
            f"    properties: [message.max.bytes={BIG_MAX}, fetch.max.bytes={BIG_MAX}, "
            f"receive.message.max.bytes={BIG_MAX + 512}]\n")


def broker_limit(bootstrap, value):
    """Kafka: the broker's message.max.bytes as a cluster-wide dynamic default (as test_bigdoc.py
    does); None deletes it again. Returns (ok, stderr)."""
    if TRANSPORT != "kafka":
        return True, ""
    cp = os.path.join(SRC, ".cache", "kafka", "libs", "*")
    change = ["--add-config", f"message.max.bytes={value}"] if value else ["--delete-config", "message.max.bytes"]
    r = subprocess.run(["java", "-Xmx256m", "-cp", cp, "kafka.admin.ConfigCommand", "--bootstrap-server", bootstrap,
                        "--entity-type", "brokers", "--entity-default", "--alter"] + change,
                       capture_output=True, timeout=180)
    return r.returncode == 0, r.stderr.decode()[-500:]


BIG_PRODUCE = ["-X", f"message.max.bytes={BIG_MAX}"]


def make_status(did, code, description, published_form=False):
    """A status packet; published_form puts its fields under MessageHeader, as every published
    status packet has them (vn-standards.md §8), instead of Status (§1.4)."""
    text = one_line(os.path.join(FIXTURE, "edxml-status.edxml"))
    if published_form:
        text = text.replace("edXML:Status>", "edXML:MessageHeader>")
    text = text.replace("000.00.00.G22,2015/09/30,7816/VPCP-TTĐT", did)
    text = text.replace("<edXML:StatusCode>01</edXML:StatusCode>", f"<edXML:StatusCode>{code}</edXML:StatusCode>")
    text = text.replace("Đã đến - Phần mềm QLVB đã nhận nhưng văn thư chưa xử lý", description)
    return text


def consume_json(bootstrap, topic, timeout=120):
    """Every committed record of topic (values may hold newlines): dicts key, value, headers."""
    if TRANSPORT == "embedded":
        return consume(bootstrap, topic)
    r = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-e", "-q", "-J",
                        "-X", "isolation.level=read_committed", "-X", f"fetch.message.max.bytes={BIG_MAX}",
                        "-X", f"receive.message.max.bytes={BIG_MAX + 512}"], capture_output=True, timeout=timeout)
    if r.returncode != 0:
        if b"Unknown topic" in r.stderr or b"UNKNOWN_TOPIC" in r.stderr:
            return []
        raise Failure(f"kcat consume {topic} failed: {r.stderr.decode()[-300:]}")
    out = []
    for line in r.stdout.decode(errors="replace").splitlines():
        if not line.strip():
            continue
        j = json.loads(line)
        h = j.get("headers") or []
        out.append({"key": j.get("key"), "value": j.get("payload") or "", "partition": j["partition"],
                    "offset": j["offset"], "headers": dict(zip(h[0::2], h[1::2]))})
    return out


def xml_field(text, name):
    m = re.search(r"<(?:\w+:)?%s>([^<]*)</(?:\w+:)?%s>" % (name, name), text)
    return m.group(1) if m else None


def xmlsec1_verifies(text):
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False, encoding="utf-8") as f:
        f.write(text)
    try:
        r = subprocess.run(["xmlsec1", "--verify", "--trusted-pem", os.path.join(KEYS, "ca.pem"),
                            "--enabled-key-data", "x509", f.name], capture_output=True, timeout=60)
        return r.returncode == 0 and r.stderr.startswith(b"OK"), r.stderr.decode()[-300:]
    finally:
        os.unlink(f.name)


def santuario_cmd():
    """The Santuario tool tests/trust/interop.py builds (cached under .cache/santuario-target; built
    again when its sources are newer than the jar, e.g. after verify-dir was added)."""
    proj = os.path.join(SRC, "tests", "interop", "santuario")
    target = os.path.join(SRC, ".cache", "santuario-target")
    jar = os.path.join(target, "santuario-tool-1.0.jar")
    cp_file = os.path.join(target, "classpath.txt")
    sources = [os.path.join(proj, "pom.xml"), os.path.join(proj, "src", "main", "java", "lt", "interop", "Tool.java")]
    fresh = (os.path.exists(jar) and os.path.exists(cp_file)
             and all(os.path.exists(q) for q in open(cp_file).read().strip().split(os.pathsep))
             and all(os.path.getmtime(q) <= os.path.getmtime(jar) for q in sources))
    if not fresh:
        r = subprocess.run(["mvn", "-q", "-B", "-Dmaven.repo.local=%s" % os.path.join(SRC, ".cache", "m2"), "package"],
                           cwd=proj, capture_output=True, timeout=900)
        if r.returncode != 0:
            raise Failure("building the Santuario tool failed: " + (r.stdout + r.stderr).decode()[-500:])
    return ["java", "-cp", jar + os.pathsep + open(cp_file).read().strip(), "lt.interop.Tool"]


def received_folder(records, workdir, name, prefix=""):
    """Writes each record's value to workdir/name/<prefix>NNNN.xml; returns the folder and {file: key}."""
    folder = os.path.join(workdir, name)
    os.makedirs(folder, exist_ok=True)
    files = {}
    for n, r in enumerate(records):
        f = "%s%04d.xml" % (prefix, n)
        with open(os.path.join(folder, f), "wb") as out:
            out.write(r["value"].encode("utf-8") if isinstance(r["value"], str) else r["value"])
        files[f] = r["key"]
    return folder, files


def xmlsec1_file_verifies(path):
    r = subprocess.run(["xmlsec1", "--verify", "--trusted-pem", os.path.join(KEYS, "ca.pem"),
                        "--enabled-key-data", "x509", path], capture_output=True, timeout=600)
    return r.returncode == 0 and r.stderr.startswith(b"OK"), r.stderr.decode()[-300:]


def xmlsec1_verify_folder(folder, files):
    """xmlsec1 on each file (one process each: cheap); the keys of the files it refuses, with why."""
    bad = []
    for f in sorted(files):
        ok, why = xmlsec1_file_verifies(os.path.join(folder, f))
        if not ok:
            bad.append((files[f], why))
    return bad


def santuario_verify_folder(java, folder, files):
    """Apache Santuario on every file of folder in one JVM (Tool verify-dir, trusting only the CA):
    (the keys it found valid, [(file, key, reason)] it refused, its summary line)."""
    r = subprocess.run(java + ["verify-dir", "--trust", os.path.join(KEYS, "ca.pem"), folder], capture_output=True,
                       timeout=1200)
    valid, bad, summary = set(), [], ""
    for line in r.stdout.decode(errors="replace").splitlines():
        word, _, rest = line.partition(" ")
        name, _, why = rest.partition(": ")
        if word == "valid" and name in files:
            valid.add(files[name])
        elif word == "invalid":
            bad.append((name, files.get(name, name), why[:300]))
        elif word == "checked":
            summary = line
    if r.returncode not in (0, 1) or not summary:
        raise Failure(f"Santuario verify-dir failed (exit {r.returncode}): {r.stderr.decode()[-500:]}")
    return valid, bad, summary


def routes(prefix, dlq_in):
    """The steps of the document-axis routes of examples/province.yaml (verify, validate;
    validate, sign), on the test's topics, with agency A sending and B receiving."""
    x = os.path.join(SRC, "schemas", "edxml")
    big = "    xml: { max_size: 64MiB }\n"  # a 50 MB packet goes through (docs/bigdoc.md)
    return (
        "routes:\n"
        f"  - name: {prefix}-sign-out\n    from: {prefix}.dms.a.outbox\n    to: {prefix}.a.out\n    steps:\n"
        f"      - validate: '{x}/edxml-document.xsd'\n      - sign-xml: {{ profile: edxml }}\n"
        f"    errors: {{ retries: 3, backoff: 100ms..1s, dlq: {prefix}-sign-out.dlq }}\n" + big +
        f"  - name: {prefix}-verify-in\n    from: {prefix}.b.in\n    to: {prefix}.dms.b.inbox\n    steps:\n"
        f"      - verify-xml: {{}}\n      - validate: '{x}/edxml-document.xsd'\n"
        f"    errors: {{ retries: 3, backoff: 100ms..1s, dlq: {dlq_in} }}\n" + big +
        f"  - name: {prefix}-status-sign-out\n    from: {prefix}.dms.b.status\n    to: {prefix}.b.out\n    steps:\n"
        f"      - validate: '{x}/edxml-status.xsd'\n      - sign-xml: {{ profile: edxml }}\n"
        f"    errors: {{ retries: 3, backoff: 100ms..1s, dlq: {prefix}-status-sign-out.dlq }}\n"
        f"  - name: {prefix}-status-verify-in\n    from: {prefix}.a.status.in\n    to: {prefix}.dms.a.status\n    steps:\n"
        f"      - verify-xml: {{}}\n      - validate: '{x}/edxml-status.xsd'\n"
        f"    errors: {{ retries: 3, backoff: 100ms..1s, dlq: {prefix}-status-verify-in.dlq }}\n")


def keys_section():
    return (f"keys:\n  hub: {{ key: '{KEYS}/agency-rsa-key.pem', cert: '{KEYS}/agency-rsa-cert.pem' }}\n"
            f"  trust: {{ ca: ['{KEYS}/ca.pem'] }}\n")


def rogue_packet(lt_bin, tag, workdir):
    """A packet signed by a key whose CA the hub does not trust."""
    _, _, text = make_document(tag + "-rogue", 0)
    src = os.path.join(workdir, "rogue-src.xml")
    open(src, "w", encoding="utf-8").write(text)
    r = subprocess.run([lt_bin, "sign", "--key", os.path.join(KEYS, "rogue-key.pem"), "--cert",
                        os.path.join(KEYS, "rogue-cert.pem"), src], capture_output=True, timeout=60)
    if r.returncode != 0:
        raise Failure("signing the rogue packet failed: " + r.stderr.decode())
    path = os.path.join(workdir, "rogue.xml")
    open(path, "wb").write(r.stdout)
    log(f"rogue packet: {len(r.stdout)} bytes")
    return path


def check_status_round_trip(c, bootstrap, p, got, hub):
    """B's DMS answers each document in `got` with status 06 (one in five in the published
    MessageHeader form); A's records must show it, once each, typed and verified."""
    produce(bootstrap, f"{p}.dms.b.status",
            [(k, make_status(k, "06", "Đã xử lý xong", published_form=n % 5 == 0)) for n, k in enumerate(got)])
    c.ok(wait_until(lambda: len({r["key"] for r in consume_json(bootstrap, f"{p}.dms.a.status")}) >= len(got),
                    300, hub, "status packets at A"), "every status packet reached A")
    status = consume_json(bootstrap, f"{p}.dms.a.status")
    final = {r["key"]: xml_field(r["value"], "StatusCode") for r in status}
    c.eq(sorted(k for k in got if final.get(k) != "06"), [], "A's records show the final status 06 of each document")
    c.eq(len(status), len(got), "each status packet reached A once")
    c.ok(all(r["headers"].get("lt.type") == "edxml.status" and r["headers"].get("lt.sig") == "verified"
             for r in status), "status records are typed edxml.status and verified")


def check_independent_verifiers(c, inbox, dlq, workdir, n_docs):
    """xmlsec1 and Apache Santuario, trusting only the CA, verify EACH document B received
    (`inbox`, n_docs distinct) and refuse each packet of the DLQ. Returns Santuario's valid set."""
    folder, files = received_folder(inbox, workdir, "b-inbox")
    t0 = time.time()
    bad = xmlsec1_verify_folder(folder, files)
    log(f"xmlsec1: {len(files)} documents, {len(bad)} refused, {time.time() - t0:.1f} s")
    c.eq(bad[:3], [], f"xmlsec1 verifies the signature of each of the {len(files)} received documents")
    # The DLQ's packets go in the same folder: Santuario must refuse each of them.
    _, dlq_files = received_folder(dlq, workdir, "b-inbox", prefix="dlq-")
    t0 = time.time()
    valid, bad, summary = santuario_verify_folder(santuario_cmd(), folder, dict(files, **dlq_files))
    log(f"Santuario verify-dir: {summary}, {time.time() - t0:.1f} s in one JVM")
    c.eq([b for b in bad if b[0] in files][:3], [],
         f"Apache Santuario verifies the signature of each received document ({summary})")
    c.eq(sorted(b[0] for b in bad), sorted(dlq_files), "Santuario refuses each packet of the DLQ")
    c.eq(len(valid), n_docs, "Santuario reported each received document valid")
    shutil.rmtree(folder, ignore_errors=True)
    if dlq:
        ok, why = xmlsec1_verifies(dlq[0]["value"])
        c.ok(not ok, "xmlsec1 refuses a packet from the DLQ too")
    return valid
