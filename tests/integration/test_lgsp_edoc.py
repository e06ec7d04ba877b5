#!/usr/bin/env python3
"""Agency A sends 100 edXML documents (new, reply, replace, revoke; with and without
attachments) through the hub to agency B over the LGSP edoc simulator (tests/sim/lgsp_edoc_sim.py,
OAuth2 client credentials), on the real broker. A's document-management system (this test) writes unsigned packets to a topic; the
hub validates, signs and sends them (lgsp-edoc-out); B's inbox (lgsp-edoc-in) fetches them,
marks them PROCESSING, verifies and validates them and publishes them for B's DMS, then sets
DONE; B answers each with a status packet 06 that travels back to A's status topic. The agency
registry is kept through records (register, unregister), and a packet for an agency the
registry does not list goes to the sink's DLQ.

The documents go in six parts, each with one simulator fault on (a packet listed twice and
listed again after its receipt, fetch 502, expired tokens, slow calls, tampered and
wrongly-signed packets), and the hub is SIGKILLed twice on the way. Checked:
B receives every document that is not damaged exactly once; every damaged one is in the DLQ
with the verification reason and got FAIL with it, the others DONE; the
XML-DSig of EACH document B received verifies with xmlsec1 and Apache Santuario (one JVM for
all: tests/interop/santuario verify-dir) trusting only the CA;
every document's final status 06 reaches A."""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, PORT, SRC, Checks, Hub, log, produce, transport_section, unique, wait_until  # noqa: E402
from test_vxp_common import (ORG_A, ORG_B, check_independent_verifiers, check_status_round_trip,  # noqa: E402
                             consume_json, keys_section, make_document, rogue_packet, routes)

N = int(os.environ.get("LT_LGSP_DOCS", "100"))
PARTS = [("list_twice", {"list_twice": 0.3, "relist_done": 0.2}), ("get_5xx", {"get_5xx": 0.3}),
         ("expire_token", {"expire_token": 0.1}), ("slow", {"slow": 0.05, "slow_for": 1.0}),
         ("tamper", {"tamper": 0.2, "wrong_signed": 0.4})]
NO_FAULTS = {k: 0 for k in ["list_twice", "relist_done", "get_5xx", "expire_token", "tamper", "wrong_signed", "slow"]}


def sim_call(port, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode() if body else None,
                                 method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def connector(name, kind, topic_key, topic, port, agency_secret, client_secret, extra=""):
    return (f"  - name: {name}\n    type: {kind}\n    {topic_key}: {topic}\n"
            f"    endpoint: 'http://127.0.0.1:{port}/truclienthong/v1.0.0'\n"
            f"    token_url: 'http://127.0.0.1:{port}/token'\n    client_id: hub-client\n"
            f"    client_secret_file: '{client_secret}'\n    agency_secret_file: '{agency_secret}'\n"
            f"    timeout: 5s\n{extra}")


def main():
    c = Checks("kafka.lgsp_edoc")
    bootstrap = f"127.0.0.1:{PORT}"
    work = tempfile.mkdtemp(prefix="lt-lgsp-")
    tag = unique("LGSP")
    p = tag.lower()
    sa, sb = os.path.join(work, "a.secret"), os.path.join(work, "b.secret")
    open(sa, "w").write("secret-of-agency-a\n")
    open(sb, "w").write("secret-of-agency-b\n")
    cs = os.path.join(work, "client.secret")
    open(cs, "w").write("client-secret\n")
    rogue = rogue_packet(BIN, tag, work)
    port_file, sim_log = os.path.join(work, "sim.port"), os.path.join(work, "sim.log")
    sim = subprocess.Popen([sys.executable, os.path.join(SRC, "tests", "sim", "lgsp_edoc_sim.py"), "--port-file",
                            port_file, "--log", sim_log, "--agency", f"{ORG_A}:secret-of-agency-a",
                            "--agency", f"{ORG_B}:secret-of-agency-b", "--client", "hub-client:client-secret",
                            "--rogue-file", rogue, "--seed", "7", "--token-ttl", "600"])
    hub = None
    try:
        wait_until(lambda: os.path.exists(port_file), 30, what="the simulator's port")
        port = int(open(port_file).read())
        sink_extra = ("    breaker: { failures: 20, open_for: 200ms }\n"
                      "    errors: { retries: 1000, backoff: 50ms..1s }\n    batch: { max_wait: 20ms }\n")
        src_extra = "    poll_interval: 200ms\n"
        dlq_in = f"{p}-b-in.dlq"
        config = (f"hub:\n{transport_section(bootstrap)}  instance: {p}\n  admin: {{ listen: '@ADMIN@' }}\n"
                  + keys_section() + "connectors:\n"
                  + connector(f"{p}-a-out", "lgsp-edoc-out", "from", f"{p}.a.out", port, sa, cs,
                              f"    result: {p}.a.sent\n    check_recipients: true\n"
                              + sink_extra.replace("retries: 1000", f"retries: 1000, dlq: {p}-a-out.dlq"))
                  + connector(f"{p}-registry", "lgsp-edoc-out", "from", f"{p}.agencies", port, sa, cs,
                              f"    result: {p}.agencies.result\n" + sink_extra)
                  + connector(f"{p}-b-in", "lgsp-edoc-in", "topic", f"{p}.b.in", port, sb, cs, src_extra)
                  + connector(f"{p}-b-out", "lgsp-edoc-out", "from", f"{p}.b.out", port, sb, cs, sink_extra)
                  + connector(f"{p}-a-status-in", "lgsp-edoc-in", "topic", f"{p}.a.status.in", port, sa, cs,
                              src_extra + "    messagetype: status\n")
                  + routes(p, dlq_in))
        hub = Hub(config, name="lgsp")
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
                did, variant, text = make_document(tag, i)
                docs[did] = {"variant": variant, "part": fault}
                part.append((did, text))
            log(f"part {k + 1}: {len(part)} documents with fault {fault}")
            produce(bootstrap, f"{p}.dms.a.outbox", part)
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
        # The registry: an agency registered through a record, and a packet for one it lacks.
        produce(bootstrap, f"{p}.agencies", [("000.00.00.H99", json.dumps(
            {"code": "000.00.00.H99", "pcode": "000.00.00.H41", "name": "UBND huyen thu", "email": "h99@example.vn",
             "fax": "", "mobile": "0912000099"}))], extra=["-H", "lt.type=lgsp.agency.register"])
        stray_id, _, stray = make_document(tag + "-stray", 1)
        produce(bootstrap, f"{p}.dms.a.outbox", [(stray_id, stray.replace(
            f"<edXML:To><edXML:OrganId>{ORG_B}<", "<edXML:To><edXML:OrganId>000.00.00.H98<"))])

        def sim_docs():
            return [d for d in sim_call(port, "/_sim/state")["docs"] if d["messageType"] == "edoc"]

        def settled():
            ds = sim_docs()
            return len({d["sha256"] for d in ds}) >= N and all(d["status"] in ("DONE", "FAIL") for d in ds)
        c.ok(wait_until(settled, 600, hub, "every document sent and confirmed on the axis"),
             "every document reached the axis and got its receipt")
        state = sim_docs()
        damaged = {d["docId"] for d in state if d.get("fault") in ("tamper", "wrong_signed")}
        log(f"axis: {len(state)} packets for B ({len(state) - len({d['sha256'] for d in state})} re-sent by the "
            f"sink after a lost answer), {len(damaged)} damaged")
        c.ok(len(damaged) > 0, "the tamper fault damaged some packets")
        wrong_status = [d["docId"] for d in state if d["status"] != ("FAIL" if d["docId"] in damaged else "DONE")]
        c.eq(wrong_status, [], "FAIL for the damaged packets, DONE for the others")
        c.ok(sum(1 for d in state if "PROCESSING" in d["history"]) >= len(state) * 0.9,
             "packets were marked PROCESSING once fetched")
        reasons = [d.get("description") or "" for d in state if d["docId"] in damaged]
        c.ok(all("signature" in r for r in reasons), f"the fail receipts carry the verification reason: {reasons[:3]}")

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
        c.ok(len(missing) <= rogue_n, f"every document is in B's inbox or the DLQ ({len(missing)} replaced by the "
                                      f"rogue packet, {rogue_n} such substitutions)")
        c.ok(len(dlq) > 0 and all(r["headers"].get("lt.error.stage") and "sig" in r["headers"].get("lt.error.code", "")
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

        # Independent verifiers, trusting only the CA.
        check_independent_verifiers(c, inbox, dlq, work, len(set(r["key"] for r in inbox)))

        check_status_round_trip(c, bootstrap, p, got, hub)

        # What the simulator recorded: every call signed (no refusal other than injected faults).
        calls = [json.loads(l) for l in open(sim_log)]
        refused = [e for e in calls if e.get("answer") in (400, 401, 403) and e.get("token") != "expired"]
        c.eq([e.get("reason") for e in refused][:5], [], "the axis refused no call except the injected faults")
        c.ok(any(e.get("token") == "expired" for e in calls), "expired tokens were met")
        st = sim_call(port, "/_sim/state")
        c.ok(st["tokens_issued"] > 1, f"a new token was fetched after expiry ({st['tokens_issued']} issued)")
        c.ok(any(e.get("fault") == "get_5xx" for e in calls), "fetching answered 502 at times")
        sent_status = [e for e in calls if e.get("op") == "send" and e.get("loaiVanBan") == "status"]
        c.ok(len(sent_status) >= len(got), "status packets were sent with loaiVanBan status")
        c.ok(any(a["code"] == "000.00.00.H99" and a["mobile"] == "0912000099" for a in st["registry"]),
             "the agency record registered 000.00.00.H99")
        res = consume_json(bootstrap, f"{p}.agencies.result")
        c.ok(any("registered" in r["value"] for r in res), "the registration's result record")
        adlq = consume_json(bootstrap, f"{p}-a-out.dlq")
        c.ok(any(r["key"] == stray_id and "not in the axis's agency registry" in r["headers"].get("lt.error.reason", "")
                 for r in adlq), "a packet for an unregistered agency is in the sink's DLQ with the reason")
        c.ok(not any(e.get("op") == "send" and "000.00.00.H98" in (e.get("to") or []) for e in calls),
             "the packet for the unregistered agency was never sent")
        produce(bootstrap, f"{p}.agencies", [("000.00.00.H99", "{}")], extra=["-H", "lt.type=lgsp.agency.unregister"])
        c.ok(wait_until(lambda: not any(a["code"] == "000.00.00.H99" for a in sim_call(port, "/_sim/state")["registry"]),
                        60, hub, "unregistration"), "the unregister record removed 000.00.00.H99")
        m = hub.metrics()
        c.ok(m.get("lienthong_edoc_received_total", 0) > 0 and m.get("lienthong_edoc_receipt_fail_total", 0) > 0,
             "/metrics counts received packets and fail receipts since the last start")
        rc, _ = hub.terminate()
        c.eq(rc, 0, "the hub stops cleanly")
    finally:
        if hub and hub.alive():
            hub.kill()
        sim.kill()
        sim.wait()
    c.done()


main()
