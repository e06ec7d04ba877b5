"""Notices on a real broker: the `email` sink against tests/sim/smtp_sim.py (STARTTLS with a
certificate this test generates, AUTH required after it, 10% of messages answered 451) and the
`sms` sink against tests/sim/sms_sim.py (bearer token, 10% 5xx, 3% held past the timeout).

- 150 e-mail notices in Vietnamese, the hub SIGKILLed after about a third: the SMTP server
  receives each notice exactly once (by Message-ID, which is the record's lt.id), over TLS and
  authenticated, and its decoded subject (RFC 2047), sender name and body (UTF-8, base64) equal
  what the templates give for the record; every header line with an encoded-word is at most 76
  characters; one `sent` (or `already-sent`) result per notice on the result topic;
- a recipient the server refuses (550) and a notice missing a template field go to the DLQ with
  the server's reply or the field in the reason; nothing else does;
- five notices to one recipient with a limit of 2 per 2 s arrive no faster than the bucket lets
  them (the third about 1 s after the first, and so on);
- the journal holds exactly the accepted ids; a second consumer group reading every notice again
  with the same journal mails none of them; a journal at its bound keeps the newest ids, which
  are not mailed again while the older ones are;
- a server that offers no STARTTLS gets nothing: the notice goes to the DLQ saying why;
- 60 SMS, then 5 more during a gateway outage (every call failing: the breaker opens, /ready
  says 503, and they go out when it is back): the gateway accepts each once (Idempotency-Key = lt.id; repeats after timeouts are
  answered as duplicates and sent nothing), with the rendered Vietnamese text; one result each.
"""
import email
import email.policy
import json
import os
import subprocess
import sys
import time
import urllib.request

from harness import (PORT, Checks, Hub, consume, lines, log, produce, transport_section, unique, wait_count,
                     wait_until)

c = Checks("notify")
bootstrap = f"127.0.0.1:{PORT}"
SRC = os.environ["LT_SOURCE_DIR"]
N_MAIL, N_SMS = 150, 60
PROCEDURES = ["Cấp phiếu lý lịch tư pháp", "Đăng ký khai sinh", "Cấp giấy phép xây dựng nhà ở riêng lẻ",
              "Chứng thực bản sao từ bản chính giấy tờ, văn bản do cơ quan có thẩm quyền của Việt Nam cấp"]
STATUSES = ["đã được tiếp nhận", "cần bổ sung giấy tờ", "đã có kết quả"]


def dossier(i):
    return f"000.00.01.H22-261206-{i:04d}"


def notice(i, email_addr=None, phone=None):
    n = {"dossierCode": dossier(i), "procedure": PROCEDURES[i % len(PROCEDURES)], "status": STATUSES[i % 3],
         "reason": "Thiếu bản sao Căn cước công dân; đề nghị nộp bổ sung trước ngày 15/12/2026.",
         "applicant": {"name": f"Trần Thị Ánh Nguyệt {i}", "email": email_addr or f"cd{i}@example.vn",
                       "phone": phone or f"09{i:08d}"}}
    return n


def want_subject(n):
    return f"Hồ sơ {n['dossierCode']}: {n['status']}"


def want_body(n):
    a = n["applicant"]
    return (f"Kính gửi {a['name']},\n\nHồ sơ {n['dossierCode']} ({n['procedure']}) {n['status']}.\n"
            f"Lý do: {n['reason']}\n")


def want_sms(n):
    return f"Hồ sơ {n['dossierCode']} {n['status']}. Tra cứu: dichvucong.hanam.gov.vn"


def start(cmd, port_file):
    p = subprocess.Popen(cmd)
    for _ in range(200):
        if os.path.exists(port_file):
            break
        time.sleep(0.05)
    return p, int(open(port_file).read())


tag = unique("nt")
topic_mail, topic_sms, results, sms_results = (f"{tag}.{x}" for x in ("email", "sms", "result", "sms-result"))
hub = Hub("", "notify")
d = hub.dir
cert, key = os.path.join(d, "smtp-cert.pem"), os.path.join(d, "smtp-key.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
               check=True, capture_output=True)
with open(os.path.join(d, "smtp.pw"), "w") as f:
    f.write("mat-khau-thu\n")
with open(os.path.join(d, "sms.token"), "w") as f:
    f.write("sms-token-1\n")
smtp_log, sms_log = os.path.join(d, "smtp.log"), os.path.join(d, "sms.log")
smtp, smtp_port = start([sys.executable, os.path.join(SRC, "tests/sim/smtp_sim.py"), "--port-file",
                         os.path.join(d, "smtp.port"), "--log", smtp_log, "--tls-cert", cert, "--tls-key", key,
                         "--require-tls", "--auth", "hub:mat-khau-thu", "--fail-rate", "0.1", "--seed", "3",
                         "--reject-rcpt", "nobody@"], os.path.join(d, "smtp.port"))
sms, sms_port = start([sys.executable, os.path.join(SRC, "tests/sim/sms_sim.py"), "--port-file",
                       os.path.join(d, "sms.port"), "--log", sms_log, "--bearer", "sms-token-1", "--fail-rate", "0.1",
                       "--fail-status", "503", "--hang-rate", "0.03", "--hang-for", "1.5", "--seed", "4"],
                      os.path.join(d, "sms.port"))


def mail_connector(name, result):
    """The email sink's entry (the journal is shared by every name)."""
    return (
        f"  - name: {name}\n    type: email\n    from: {topic_mail}\n    result: {result}\n"
        f"    url: 'smtp://127.0.0.1:{smtp_port}'\n    ca_file: '{cert}'\n"
        f"    user: hub\n    password_file: '{d}/smtp.pw'\n"
        f"    sender: motcua@hanam.gov.vn\n    sender_name: 'Bộ phận Một cửa tỉnh Hà Nam'\n"
        f"    to: '{{{{applicant.email}}}}'\n"
        f"    subject: 'Hồ sơ {{{{dossierCode}}}}: {{{{status}}}}'\n"
        f"    body: \"Kính gửi {{{{applicant.name}}}},\\n\\nHồ sơ {{{{dossierCode}}}} ({{{{procedure}}}}) "
        f"{{{{status}}}}.\\nLý do: {{{{reason}}}}\\n\"\n"
        f"    per_recipient: {{ count: 2, per: 2s }}\n"
        f"    journal: '{d}/email.journal'\n    timeout: 5s\n"
        f"    errors: {{ retries: 1000, backoff: 10ms..200ms }}\n    batch: {{ max_wait: 50ms }}\n"
    )


try:
    hub.write_config(
        f"hub:\n{transport_section(bootstrap)}  instance: test\n"
        f"  admin: {{ listen: '@ADMIN@' }}\n"
        f"connectors:\n"
        + mail_connector(f"mail-{tag}", results) +
        f"  - name: sms-{tag}\n    type: sms\n    from: {topic_sms}\n    result: {sms_results}\n"
        f"    url: 'http://127.0.0.1:{sms_port}/sms/send'\n    bearer_token_file: '{d}/sms.token'\n"
        f"    to: '{{{{applicant.phone}}}}'\n"
        f"    text: 'Hồ sơ {{{{dossierCode}}}} {{{{status}}}}. Tra cứu: dichvucong.hanam.gov.vn'\n"
        f"    sender: HANAM-MC\n    timeout: 1s\n    breaker_failures: 5\n    breaker_open_for: 500ms\n"
        f"    errors: {{ retries: 1000, backoff: 10ms..200ms }}\n    batch: {{ max_wait: 50ms }}\n")
    hub.start()
    hub.wait_ready()
    notices = {dossier(i): notice(i) for i in range(1, N_MAIL + 1)}
    bad = {dossier(900): notice(900, email_addr="nobody@hanam.gov.vn")}
    missing = notice(901)
    del missing["applicant"]["email"]
    bad[dossier(901)] = missing
    produce(bootstrap, topic_mail, [(k, json.dumps(v, ensure_ascii=False)) for k, v in notices.items()] +
            [(k, json.dumps(v, ensure_ascii=False)) for k, v in bad.items()])
    sms_notices = {dossier(i): notice(i) for i in range(1001, 1001 + N_SMS)}
    produce(bootstrap, topic_sms, [(k, json.dumps(v, ensure_ascii=False)) for k, v in sms_notices.items()])

    def accepted():
        return [json.loads(l) for l in lines(smtp_log) if json.loads(l)["answer"] == 250]

    wait_until(lambda: len(accepted()) >= N_MAIL // 3, 180, hub, "a third of the mail at the server")
    log(f"SIGKILL with {len(accepted())} messages at the SMTP server")
    hub.kill()
    hub.start()
    hub.wait_ready()
    res = wait_count(bootstrap, results, N_MAIL, timeout=240, hub=hub)
    dlq = wait_count(bootstrap, f"mail-{tag}.dlq", 2, timeout=120, hub=hub)

    # The rate limit: five notices to one recipient, after the rest.
    hot = {dossier(i): notice(i, email_addr="hot@example.vn") for i in range(2001, 2006)}
    produce(bootstrap, topic_mail, [(k, json.dumps(v, ensure_ascii=False)) for k, v in hot.items()])
    res = wait_count(bootstrap, results, N_MAIL + 5, timeout=120, hub=hub)
    sres = wait_count(bootstrap, sms_results, N_SMS, timeout=240, hub=hub)

    # An SMS gateway outage: every call fails, the breaker opens (/metrics, /ready 503); when the
    # gateway is back the notices of the outage go out.
    def sim_config(port, **cfg):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/_sim/config", data=json.dumps(cfg).encode(),
                                     method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    sim_config(sms_port, fail_rate=1.0)
    outage = {dossier(i): notice(i) for i in range(1101, 1106)}
    produce(bootstrap, topic_sms, [(k, json.dumps(v, ensure_ascii=False)) for k, v in outage.items()])
    breaker = f'lienthong_breaker_state{{connector="sms-{tag}",endpoint="http://127.0.0.1:{sms_port}"}}'
    c.ok(wait_until(lambda: hub.metrics().get(breaker, 0) >= 1 and hub.http("/ready")[0] == 503, 60, hub,
                    "the SMS breaker open"), "the SMS breaker opened during the outage and /ready said 503")
    sim_config(sms_port, fail_rate=0.1)
    sms_notices.update(outage)
    sres = wait_count(bootstrap, sms_results, len(sms_notices), timeout=120, hub=hub)
    c.ok(wait_until(lambda: hub.http("/ready")[0] == 200, 30, hub, "ready again"), "/ready 200 after the outage")
    time.sleep(2)  # anything extra would show now
    res, sres = consume(bootstrap, results), consume(bootstrap, sms_results)
    dlq = consume(bootstrap, f"mail-{tag}.dlq")
    got = accepted()
    all_mail = [json.loads(l) for l in lines(smtp_log)]
    log(f"SMTP: {len(all_mail)} messages, {len(got)} accepted, {len(all_mail) - len(got)} answered 451; "
        f"{len(res)} results, {len(dlq)} in the DLQ")

    # Each notice once, with the right subject and body.
    by_mid = {}
    for m in got:
        by_mid.setdefault(m["message_id"], []).append(m)
    c.eq(sum(1 for v in by_mid.values() if len(v) > 1), 0, "notices received more than once")
    everything = dict(notices, **hot)
    c.eq(len(by_mid), len(everything), "distinct notices received")
    seen, wrong, long_lines, raw_ascii = set(), [], 0, True
    for mid, (m, *_) in by_mid.items():
        msg = email.message_from_string(m["data"], policy=email.policy.default)
        body = msg.get_content().replace("\r\n", "\n")  # the canonical form of text is CRLF (RFC 2045)
        code = next((k for k in everything if f"Hồ sơ {k} (" in body), None)
        if code is None:
            wrong.append((mid, "no dossier in body"))
            continue
        seen.add(code)
        n = everything[code]
        if str(msg["subject"]) != want_subject(n):
            wrong.append((code, "subject", str(msg["subject"])))
        if body != want_body(n):
            wrong.append((code, "body", body))
        if msg["from"].addresses[0].display_name != "Bộ phận Một cửa tỉnh Hà Nam" or \
                msg["from"].addresses[0].addr_spec != "motcua@hanam.gov.vn":
            wrong.append((code, "from", str(msg["from"])))
        if m["rcpt"] != [n["applicant"]["email"]] or str(msg["to"]) != n["applicant"]["email"]:
            wrong.append((code, "to", m["rcpt"]))
        if msg["content-type"].params.get("charset", "").lower() != "utf-8":
            wrong.append((code, "charset", str(msg["content-type"])))
        head = m["data"].split("\r\n\r\n", 1)[0].replace("\r\n", "\n").split("\n")
        long_lines += sum(1 for l in head if "=?" in l and len(l) > 76)
        if any("=?" in l and len(l) > 76 for l in head):
            log(f"long header line: {[l for l in head if len(l) > 76][:1]}")
        raw_ascii &= all(ord(ch) < 128 for ch in "".join(head))
        if not m["tls"] or m["auth"] != "hub":
            wrong.append((code, "tls/auth", m["tls"], m["auth"]))
    c.eq(wrong[:3], [], "notices whose decoded subject, body, sender or recipient differ")
    c.eq(sorted(set(everything) - seen), [], "notices never received")
    c.eq(long_lines, 0, "header lines with encoded-words longer than 76 characters")
    c.ok(raw_ascii, "the raw headers are 7-bit (RFC 2047 encoded-words)")
    c.ok(any("=?UTF-8?B?" in m["data"].split("\r\n\r\n")[0] for m in got), "subjects are RFC 2047 encoded-words")
    c.ok(len(all_mail) > len(got), "the server answered 451 to some messages (retried)")

    # Results and the DLQ.
    c.eq(len(res), len(everything), "results")
    c.eq(sorted(r["key"] for r in res), sorted(everything), "one result per notice, keyed like it")
    c.ok({json.loads(r["value"])["outcome"] for r in res} <= {"sent", "already-sent"}, "result outcomes")
    c.ok(all(r["headers"].get("lt.type") == "notify.result" for r in res), "result lt.type")
    reasons = {x["key"]: x["headers"].get("lt.error.reason", "") for x in dlq}
    c.eq(sorted(reasons), sorted(bad), "DLQ records")
    c.ok("550" in reasons.get(dossier(900), ""), f"refused recipient: {reasons.get(dossier(900))!r}")
    c.ok("{{applicant.email}} is missing" in reasons.get(dossier(901), ""),
         f"missing field: {reasons.get(dossier(901))!r}")

    # The per-recipient limit: 2 per 2 s, so one more a second after the first two.
    t = sorted(m["time"] for m in got if m["rcpt"] == ["hot@example.vn"])
    c.eq(len(t), 5, "notices to the rate-limited recipient")
    if len(t) == 5:
        gaps = [round(t[i] - t[0], 2) for i in range(5)]
        # The token is taken before the SMTP exchange and the server stamps DATA: the first
        # message's TLS handshake and AUTH can make the stamps up to a few tenths closer.
        c.ok(all(t[i] - t[0] >= (i - 1) * 1.0 - 0.3 for i in range(2, 5)), f"rate limit honoured: {gaps}")
        c.ok(t[4] - t[0] < 10, f"the limited notices still went out promptly: {gaps}")

    # SMS.
    recs = [json.loads(l) for l in lines(sms_log)]
    sent = [r for r in recs if r.get("sms")]
    log(f"SMS gateway: {len(recs)} calls, {sum(1 for r in recs if r['answer'] >= 500)} 5xx, "
        f"{sum(1 for r in recs if r.get('hang'))} held, {sum(1 for r in recs if r.get('duplicate'))} repeats absorbed")
    keys = [r["headers"].get("idempotency-key") for r in sent]
    c.eq(len(keys), len(sms_notices), "SMS accepted by the gateway")
    c.eq(len(set(keys)), len(sms_notices), "SMS accepted once each")
    texts = sorted(r["sms"]["text"] for r in sent)
    c.eq(texts, sorted(want_sms(n) for n in sms_notices.values()), "SMS texts")
    c.ok(all(r["sms"]["to"] == sms_notices[next(k for k in sms_notices if k in r["sms"]["text"])]["applicant"]["phone"]
             and r["sms"]["sender"] == "HANAM-MC" for r in sent), "SMS numbers and sender")
    c.ok(all(r["headers"].get("authorization") == "Bearer sms-token-1" for r in recs), "the gateway's token")
    c.ok(sum(1 for r in recs if r["answer"] >= 500) > 0, "the gateway failed some calls")
    c.eq(len(sres), len(sms_notices), "SMS results")
    c.eq(sorted(r["key"] for r in sres), sorted(sms_notices), "one SMS result per notice")
    c.ok(all(json.loads(r["value"]).get("answer", {}).get("messageId", "").startswith("SMS") for r in sres),
         "SMS results carry the gateway's messageId")
    rc, _ = hub.terminate()
    c.eq(rc, 0, "exit code after SIGTERM")

    # The journal holds exactly the ids the server accepted (the Message-IDs' local parts).
    journal = lines(os.path.join(d, "email.journal"))
    c.eq(sorted(journal), sorted(mid[1:].split("@")[0] for mid in by_mid), "journal: the accepted ids")

    # The journal, deterministically: a sink under another name (its own consumer group) reads
    # every notice again with the same journal. Each gets the same lt.id, is found in the
    # journal and is not mailed: the server receives nothing new.
    before = len(accepted())
    again = f"{tag}.again"
    hub2 = Hub(f"hub:\n{transport_section(bootstrap)}  instance: test\n  admin: {{ listen: '@ADMIN@' }}\n"
               "connectors:\n" + mail_connector(f"mail2-{tag}", again), "notify-again")
    hub2.start()
    hub2.wait_ready()
    res2 = wait_count(bootstrap, again, len(everything), timeout=120, hub=hub2)
    time.sleep(1)
    res2 = consume(bootstrap, again)
    c.eq(len(res2), len(everything), "replayed notices: results")
    c.eq({json.loads(r["value"])["outcome"] for r in res2}, {"already-sent"}, "replayed notices: outcomes")
    c.eq(len(accepted()), before, "replayed notices: messages the server accepted meanwhile")
    rc, _ = hub2.terminate()
    c.eq(rc, 0, "replay hub: exit code after SIGTERM")

    # A journal at its bound (journal_max 100) keeps the newest ids: 130 notices, then a second
    # consumer group reads them again: exactly the ids still in the journal are not mailed again.
    topic3, res3, res3b = f"{tag}.small", f"{tag}.small-res", f"{tag}.small-again"
    small = {dossier(i): notice(i, email_addr=f"s{i}@example.vn") for i in range(3001, 3131)}

    def small_config(name, result, journal_max):
        return (f"hub:\n{transport_section(bootstrap)}  instance: test\n  admin: {{ listen: '@ADMIN@' }}\n"
                "connectors:\n" + mail_connector(name, result).replace(f"from: {topic_mail}", f"from: {topic3}")
                .replace("email.journal'", f"small.journal'\n    journal_max: {journal_max}"))

    hub3 = Hub(small_config(f"mail3-{tag}", res3, 100), "notify-small")
    hub3.start()
    hub3.wait_ready()  # the hub creates its topics
    produce(bootstrap, topic3, [(k, json.dumps(v, ensure_ascii=False)) for k, v in small.items()])
    wait_count(bootstrap, res3, len(small), timeout=120, hub=hub3)
    c.eq(hub3.terminate()[0], 0, "small journal hub: exit code after SIGTERM")
    kept = lines(os.path.join(d, "small.journal"))
    c.ok(50 <= len(kept) <= 100, f"journal_max 100: {len(kept)} ids kept")
    before = len(accepted())
    # Read back with room to spare: a bound of 100 would drop loaded ids while the re-sent
    # older ones are added, before their own records come by (partitions interleave).
    hub4 = Hub(small_config(f"mail4-{tag}", res3b, 1000), "notify-small-again")
    hub4.start()
    hub4.wait_ready()
    again3 = wait_count(bootstrap, res3b, len(small), timeout=120, hub=hub4)
    outcomes = {}
    for r in again3:
        outcomes.setdefault(json.loads(r["value"])["outcome"], set()).add(json.loads(r["value"])["id"])
    c.eq(outcomes.get("already-sent", set()), set(kept), "journal_max: the kept ids are not mailed again")
    c.eq(len(accepted()) - before, len(small) - len(kept), "journal_max: the older ones are mailed again")
    c.eq(hub4.terminate()[0], 0, "second small journal hub: exit code after SIGTERM")

    # A server that offers no STARTTLS: the sink does not fall back to clear text; after its
    # retries the notice is in the DLQ with the reason, and the server received nothing.
    plain_log = os.path.join(d, "plain.log")
    plain, plain_port = start([sys.executable, os.path.join(SRC, "tests/sim/smtp_sim.py"), "--port-file",
                               os.path.join(d, "plain.port"), "--log", plain_log], os.path.join(d, "plain.port"))
    try:
        topic5 = f"{tag}.plain"
        hub5 = Hub(f"hub:\n{transport_section(bootstrap)}  instance: test\n  admin: {{ listen: '@ADMIN@' }}\n"
                   f"connectors:\n  - name: mail5-{tag}\n    type: email\n    from: {topic5}\n"
                   f"    url: 'smtp://127.0.0.1:{plain_port}'\n    sender: motcua@hanam.gov.vn\n"
                   f"    to: '{{{{applicant.email}}}}'\n    subject: 'Hồ sơ {{{{dossierCode}}}}'\n    body: b\n"
                   f"    errors: {{ retries: 2, backoff: 10ms..50ms }}\n", "notify-plain")
        hub5.start()
        hub5.wait_ready()
        produce(bootstrap, topic5, [(dossier(4001), json.dumps(notice(4001), ensure_ascii=False))])
        dlq5 = wait_count(bootstrap, f"mail5-{tag}.dlq", 1, timeout=60, hub=hub5)
        reason5 = dlq5[0]["headers"].get("lt.error.reason", "") if dlq5 else ""
        c.eq(len(dlq5), 1, "no STARTTLS: the notice in the DLQ")
        c.ok("SSL" in reason5 or "TLS" in reason5, f"no STARTTLS: the reason says so: {reason5!r}")
        c.eq(lines(plain_log), [], "no STARTTLS: the server received no message")
        c.eq(hub5.terminate()[0], 0, "no-STARTTLS hub: exit code after SIGTERM")
    finally:
        plain.kill()
        plain.wait()
finally:
    if hub.alive():
        hub.kill()
    smtp.kill()
    sms.kill()
    smtp.wait()
    sms.wait()
c.done()
