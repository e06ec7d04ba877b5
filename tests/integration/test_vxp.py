#!/usr/bin/env python3
"""Agency A sends 300 edXML documents (new, reply, replace, revoke; with and without
attachments) through the hub to agency B over the VXP simulator (tests/sim/vxp_sim.py), on the
real broker. A's document-management system (this test) writes unsigned packets to a topic; the
hub validates, signs and sends them (vxp-out); B's inbox (vxp-in) fetches them, verifies and
validates them and publishes them for B's DMS; B answers each with a status packet 06 that
travels back (vxp-out, vxp-in messagetype status) to A's status topic.

The documents go in six parts, each with one simulator fault on (a packet listed twice and
listed again after its receipt, getEdoc 503, hash-file refused, a rotated HMAC secret, slow
calls, tampered and wrongly-signed packets), and the hub is SIGKILLed twice on the way. Checked:
B receives every document that is not damaged exactly once; every damaged one is in the DLQ
with the verification reason and got `updateStatus fail` with it, the others `done`; the XML-DSig
of EACH document B received verifies with xmlsec1 (one process per file) and Apache Santuario (all
in one JVM: tests/interop/santuario verify-dir), trusting only the CA; every document's final
status 06 reaches A.

One of the documents (in the `slow` part) is a 50 MB packet with a base64 attachment: the routes
carry `xml: {max_size: 64MiB}`, the connectors' max_size (64 MiB by default) sizes the HTTP
answer limit for getEdoc's base64, and on Kafka the broker's message.max.bytes and the hub's
librdkafka properties are raised to 64 MiB (as docs/bigdoc.md says). B receives it once, byte for
byte what A sent apart from the inserted signature. LT_VXP_BIG=0 leaves it out."""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, PORT, SRC, Checks, Hub, log, produce, unique, wait_until  # noqa: E402
from test_vxp_common import (BIG_MAX, BIG_PRODUCE, ORG_A, ORG_B, ORG_C, broker_limit,  # noqa: E402
                             check_independent_verifiers, check_status_round_trip, consume_json,
                             kafka_big_transport, keys_section, make_big_document, make_document,
                             rogue_packet, routes)

N = int(os.environ.get("LT_VXP_DOCS", "300"))
BIG_SIZE = int(os.environ.get("LT_VXP_BIG", str(50 * 1000 * 1000)))  # bytes of the big packet; 0: none
BIG_PART = 4  # the big packet goes in the `slow` part (no fault there damages packets)
PARTS = [("list_twice", {"list_twice": 0.3, "relist_done": 0.2}), ("getedoc_5xx", {"getedoc_5xx": 0.3}),
         ("hash_file_fail", {"hash_file_fail": 0.3}), ("bad_hmac", {"bad_hmac": 0.2}),
         ("slow", {"slow": 0.05, "slow_for": 1.0}), ("tamper", {"tamper": 0.15, "wrong_signed": 0.15, "broken": 0.2})]
NO_FAULTS = {k: 0 for k in ["list_twice", "relist_done", "getedoc_5xx", "hash_file_fail", "bad_hmac", "tamper",
                            "wrong_signed", "broken", "slow"]}


def sim_call(port, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode() if body else None,
                                 method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def connector(name, kind, topic_key, topic, port, sysid, organ, secret, extra=""):
    return (f"  - name: {name}\n    type: {kind}\n    {topic_key}: {topic}\n"
            f"    endpoint: 'http://127.0.0.1:{port}'\n    systemid: {sysid}\n    organ_id: '{organ}'\n"
            f"    secret_file: '{secret}'\n    timeout: 5s\n{extra}")


def main():
    c = Checks("kafka.vxp")
    bootstrap = f"127.0.0.1:{PORT}"
    work = tempfile.mkdtemp(prefix="lt-vxp-")
    tag = unique("VXP")
    p = tag.lower()
    sa, sb = os.path.join(work, "a.secret"), os.path.join(work, "b.secret")
    open(sa, "w").write("secret-of-agency-a\n")
    open(sb, "w").write("secret-of-agency-b\n")
    sc = os.path.join(work, "c.secret")
    open(sc, "w").write("secret-of-agency-c\n")
    rogue = rogue_packet(BIN, tag, work)
    port_file, sim_log = os.path.join(work, "sim.port"), os.path.join(work, "sim.log")
    sim = subprocess.Popen([sys.executable, os.path.join(SRC, "tests", "sim", "vxp_sim.py"), "--port-file", port_file,
                            "--log", sim_log, "--agency", f"sysA:{ORG_A}:secret-of-agency-a",
                            "--agency", f"sysB:{ORG_B}:secret-of-agency-b",
                            "--agency", f"sysC:{ORG_C}:secret-of-agency-c", "--rogue-file", rogue, "--seed", "7"])
    hub = None
    big_did = big_text = None
    try:
        if BIG_SIZE:
            ok, why = broker_limit(bootstrap, BIG_MAX)
            c.ok(ok, f"the broker takes records up to {BIG_MAX} bytes: {why}")
        wait_until(lambda: os.path.exists(port_file), 30, what="the simulator's port")
        port = int(open(port_file).read())
        sink_extra = ("    breaker: { failures: 20, open_for: 200ms }\n"
                      "    errors: { retries: 1000, backoff: 50ms..1s }\n    batch: { max_wait: 20ms }\n")
        src_extra = "    poll_interval: 200ms\n"
        dlq_in = f"{p}-b-in.dlq"
        config = (f"hub:\n{kafka_big_transport(bootstrap)}  instance: {p}\n  admin: {{ listen: '@ADMIN@' }}\n"
                  + keys_section() + "connectors:\n"
                  + connector(f"{p}-a-out", "vxp-out", "from", f"{p}.a.out", port, "sysA", ORG_A, sa,
                              f"    result: {p}.a.sent\n" + sink_extra)
                  + connector(f"{p}-b-in", "vxp-in", "topic", f"{p}.b.in", port, "sysB", ORG_B, sb, src_extra)
                  + connector(f"{p}-b-out", "vxp-out", "from", f"{p}.b.out", port, "sysB", ORG_B, sb, sink_extra)
                  + connector(f"{p}-a-status-in", "vxp-in", "topic", f"{p}.a.status.in", port, "sysA", ORG_A, sa,
                              src_extra + "    messagetype: status\n")
                  # agency C takes packets up to 1 MiB: a bigger one is confirmed fail, not fetched forever
                  + connector(f"{p}-c-in", "vxp-in", "topic", f"{p}.c.in", port, "sysC", ORG_C, sc,
                              src_extra + "    max_size: 1MiB\n")
                  + routes(p, dlq_in))
        hub = Hub(config, name="vxp")
        r = subprocess.run([BIN, "lint", hub.config], capture_output=True)
        c.ok(r.returncode == 0, f"lint accepts the configuration: {r.stderr.decode()[-400:]}")
        hub.start()
        hub.wait_ready()
        docs = {}
        per = (N + len(PARTS) - 1) // len(PARTS)
        for k, (fault, cfg) in enumerate(PARTS):
            sim_call(port, "/_sim/config", dict(NO_FAULTS, **cfg))
            part = []
            for i in range(k * per, min(N, (k + 1) * per)):
                if BIG_SIZE and k == BIG_PART and big_did is None and i % 2 == 1:
                    did, variant, text = make_big_document(tag, i, BIG_SIZE)
                    big_did, big_text = did, text
                    log(f"document {i} is the big one: {len(text.encode())} bytes")
                else:
                    did, variant, text = make_document(tag, i)
                docs[did] = {"variant": variant, "part": fault}
                part.append((did, text))
            log(f"part {k + 1}: {len(part)} documents with fault {fault}")
            produce(bootstrap, f"{p}.dms.a.outbox", part, extra=BIG_PRODUCE if k == BIG_PART else None)
            if k in (1, 3):  # the hub dies twice while packets are on the way
                time.sleep(2.5)
                log("SIGKILL the hub")
                hub.kill()
                time.sleep(1)
                hub.start()
                hub.wait_ready()
            # the part's packets are all fetched under its fault before the next fault goes on
            fetched = lambda: sum(1 for d in sim_call(port, "/_sim/state")["docs"]
                                  if d["messageType"] == "edoc" and "fault" in d) >= len(docs)
            c.ok(wait_until(fetched, 300, hub, f"part {k + 1} fetched"), f"part {k + 1} was fetched under {fault}")
        sim_call(port, "/_sim/config", NO_FAULTS)

        def sim_docs():
            return [d for d in sim_call(port, "/_sim/state")["docs"] if d["messageType"] == "edoc"]

        def settled():
            ds = sim_docs()
            return len({d["sha256"] for d in ds}) >= N and all(d["status"] != "initial" for d in ds)
        c.ok(wait_until(settled, 600, hub, "every document sent and confirmed on the axis"),
             "every document reached the axis and got its receipt")
        state = sim_docs()
        damaged = {d["docId"] for d in state if d.get("fault") in ("tamper", "wrong_signed", "broken")}
        broken = {d["docId"] for d in state if d.get("fault") == "broken"}
        log(f"axis: {len(state)} packets for B ({len(state) - len({d['sha256'] for d in state})} re-sent by the "
            f"sink after a lost answer), {len(damaged)} damaged")
        c.ok(len(damaged) > 0, "the tamper fault damaged some packets")
        wrong_status = [d["docId"] for d in state if d["status"] != ("fail" if d["docId"] in damaged else "done")]
        c.eq(wrong_status, [], "updateStatus fail for the damaged packets, done for the others")
        reasons = [d.get("description") or "" for d in state if d["docId"] in damaged - broken]
        c.ok(all("signature" in r for r in reasons), f"the fail receipts carry the verification reason: {reasons[:3]}")
        reasons = [d.get("description") or "" for d in state if d["docId"] in broken]
        c.ok(len(broken) > 0 and all(r.startswith("xml: ") and "line" in r for r in reasons),
             f"broken packets got fail with the parse error and its place: {reasons[:2]}")

        # B's side: each document once (the damaged ones in the DLQ instead).
        wait_until(lambda: len(consume_json(bootstrap, f"{p}.dms.b.inbox")) + len(consume_json(bootstrap, dlq_in))
                   >= len({d["sha256"] for d in state if d["docId"] not in damaged}) + 1, 300, hub, "B's inbox")
        inbox = consume_json(bootstrap, f"{p}.dms.b.inbox")
        dlq = consume_json(bootstrap, dlq_in)
        got = [r["key"] for r in inbox]
        c.eq(len(got), len(set(got)), "B received no document twice")
        c.ok(set(got) <= set(docs), "B received only documents A sent")
        dlq_keys = {r["key"] for r in dlq}
        missing = set(docs) - set(got) - dlq_keys
        # A document whose packet was replaced by the rogue one is in the DLQ under the rogue's id.
        rogue_n = sum(1 for d in state if d.get("fault") == "wrong_signed")
        c.ok(rogue_n > 0, "the wrong-signed fault replaced some packets")
        c.ok(any(tag + "-rogue" in r["key"] for r in dlq), "the wrongly-signed packet is in the DLQ")
        # A broken packet cannot be read: its DLQ record is keyed by the axis id.
        c.ok(broken <= dlq_keys, "every broken packet is in the DLQ under its axis id")
        c.ok(len(missing) <= rogue_n + len(broken), f"every document is in B's inbox or the DLQ ({len(missing)} "
             f"unreadable or replaced by the rogue packet; {rogue_n} substitutions, {len(broken)} broken)")
        c.ok(len(dlq) > 0 and all(r["headers"].get("lt.error.stage") and
                                  r["headers"].get("lt.error.code", "").startswith(("sig", "xml"))
                                  for r in dlq),
             "the DLQ holds the damaged packets with a signature error code: "
             + str([(r["headers"].get("lt.error.code"), r["headers"].get("lt.error.reason", "")[:80]) for r in dlq[:3]]))
        c.ok(all(r["headers"].get("edoc.receipt") == "fail" for r in dlq), "the DLQ records were confirmed fail")
        c.ok(all(r["headers"].get("lt.sig") == "verified" and "sha256=" in r["headers"].get("lt.signer", "")
                 for r in inbox), "B's records carry lt.sig verified and lt.signer")
        variants = {docs[k]["variant"] for k in got}
        c.eq(sorted(variants), sorted(["new", "reply", "replace", "revoke"]), "every variant arrived")
        c.ok(any("AttachmentEncoded" in r["value"] for r in inbox) and
             any("AttachmentEncoded" not in r["value"] for r in inbox), "with and without attachments arrived")
        c.ok(all("ReplacementInfoList" in r["value"] for r in inbox if docs[r["key"]]["variant"] in ("replace", "revoke")),
             "replace and revoke packets keep ReplacementInfoList")

        if BIG_SIZE:
            big_sent = [d for d in state if d.get("size", 0) >= BIG_SIZE]
            c.ok(len(big_sent) >= 1, f"the {BIG_SIZE}-byte packet crossed the axis: "
                 f"{[(d['size'], d['status']) for d in big_sent]}")
            got_big = [r["value"] for r in inbox if r["key"] == big_did]
            c.eq(len(got_big), 1, "B received the big packet once")
            if got_big:
                v = got_big[0]
                at, end = v.find("<Signature"), v.find("</Signature>") + len("</Signature>")
                c.ok(0 < at < end, "the big packet carries a signature")
                c.ok(v[:at] + v[end:] == big_text,
                     f"the big packet is byte for byte what A sent apart from the signature ({len(v.encode())} bytes)")

        # Independent verifiers, trusting only the CA, on EACH document B received.
        valid = check_independent_verifiers(c, inbox, dlq, work, len(set(got)))
        if big_did:
            c.ok(big_did in valid, "Santuario verified the big packet too")

        check_status_round_trip(c, bootstrap, p, got, hub)

        # A packet over C's max_size (1 MiB; getEdoc's answer is then over 4/3 MiB + 1 MiB): `fail` with
        # the reason, nothing emitted, and not fetched again and again.
        _, _, over = make_big_document(tag + "-c", 1, 3 << 20)
        over_id = sim_call(port, "/_sim/inject", {"to": ORG_C, "from": ORG_A,
                                                  "data_base64": base64.b64encode(over.encode()).decode()})["docId"]

        def c_state():
            return [d for d in sim_call(port, "/_sim/state")["docs"] if d["docId"] == over_id][0]
        c.ok(wait_until(lambda: c_state()["status"] != "initial", 60, hub, "C's receipt"), "C confirmed the packet")
        st = c_state()
        c.ok(st["status"] == "fail" and "max_size" in (st.get("description") or ""),
             f"a packet over max_size got updateStatus fail naming max_size: {st.get('description')!r}")
        c.eq(len(consume_json(bootstrap, f"{p}.c.in")), 0, "nothing from it was emitted")

        # What the simulator recorded: every call signed (no refusal other than injected faults).
        calls = [json.loads(l) for l in open(sim_log)]
        refused = [e for e in calls if e.get("answer") in (401, 412) and not e.get("fault")]
        c.eq([e.get("reason") for e in refused][:5], [], "the axis refused no call except the injected faults")
        c.ok(any(e.get("fault") == "bad_hmac" and e.get("answer") == 401 for e in calls), "a rotated secret was met")
        c.ok(any(e.get("fault") == "hash_file_fail" and e.get("answer") == 412 for e in calls),
             "a refused hash-file was met")
        c.ok(any(e.get("fault") == "getedoc_5xx" for e in calls), "getEdoc answered 503 at times")
        sent_status = [e for e in calls if e["op"] == "sendEdoc" and e.get("messagetype") == "status"]
        c.ok(len(sent_status) >= len(got), "status packets were sent with messagetype status")
        m = hub.metrics()
        c.ok(m.get("lienthong_edoc_received_total", 0) > 0 and m.get("lienthong_edoc_receipt_fail_total", 0) > 0,
             "/metrics counts received packets and fail receipts since the last start")
        if BIG_SIZE:  # information only (ASan's shadow memory included under the sanitizer build)
            hwm = [l.split()[1] for l in open(f"/proc/{hub.proc.pid}/status") if l.startswith("VmHWM:")]
            log(f"hub peak RSS {int(hwm[0]) / 1024:.0f} MiB since the last start, which carried the "
                f"{BIG_SIZE / 1e6:.0f} MB packet both ways (sign, send; fetch, verify, validate)")
        rc, _ = hub.terminate()
        c.eq(rc, 0, "the hub stops cleanly")
    finally:
        if hub and hub.alive():
            hub.kill()
        sim.kill()
        sim.wait()
        if BIG_SIZE:
            broker_limit(bootstrap, None)
    c.done()


main()
