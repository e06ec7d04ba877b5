"""One-stop -> DVCQG end to end on a real broker, with examples/province.yaml (issue 12).

The one-stop simulator (tests/sim/onestop_sim.py) plays dossiers through their life cycles
(created, received, 15+ processing steps with a supplement request and a payment, done with
result papers, returned by post; withdrawn, rejected, suspended ones; events the contract
refuses; procedures the portal does not know) into the hub's `onestop` webhook. The hub runs
the example province configuration (its own ports and topic names) plus a second `dvcqg` sink
for the §3.2 variant; two DVCQG simulators (tests/sim/dvcqg_sim.py, opencps and split) record
what they receive. Phase 1: LT_DVCQG_DOSSIERS (300) dossiers without faults. Phase 2: each
portal fault in turn (5xx, slow past the timeout, dropped connections, sessions expiring,
"đã tồn tại" after a stale look-up, answers written twice) with fewer dossiers each, the hub
SIGKILLed twice meanwhile. Asserted after each phase, for every dossier on both portals:
- created exactly once, then only updated; its last data equals, field by field, what the
  event contract's fields give under §3.1-3.3 (computed here independently of the mappings:
  times yyyyMMddHHmmss in +07:00, status/channel/applicant/id codes);
- its progress entries are complete and in the order of the events;
- the events the contract refuses are in onestop-to-dvcqg.dlq with the failing path, the
  dossiers the portal refuses in the dvcqg DLQ with the portal's message, and nothing else;
- every event's outcome reached the one-stop simulator (OK, or REJECTED with the reason).
"""
import atexit
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

from harness import PORT, SRC, Checks, Hub, consume, free_port, log, transport_section, unique, wait_until

sys.path.insert(0, os.path.join(SRC, "tests", "sim"))
import onestop_sim  # noqa: E402

c = Checks("dvcqg-e2e")
bootstrap = f"127.0.0.1:{PORT}"
N = int(os.environ.get("LT_DVCQG_DOSSIERS", "300"))
PER_FAULT = int(os.environ.get("LT_DVCQG_PER_FAULT", "6"))
SECRETS = os.path.join(SRC, "examples", "secrets")
SECRET = open(os.path.join(SECRETS, "onestop.key"), "rb").read().strip()
PASSWORD = open(os.path.join(SECRETS, "dvcqg.password")).read().strip()
TOKEN = "split-token-0123456789"
VN = timezone(timedelta(hours=7))

hub = Hub("", "dvcqg-e2e")


# ---------------------------------------------------------------- the portals (simulators)
sims = []


@atexit.register
def _stop_sims():
    """A test that fails half-way leaves no simulator running behind it."""
    for p in sims:
        if p.poll() is None:
            p.kill()
            p.wait()


def start_sim(name, *args):
    port_file = os.path.join(hub.dir, f"{name}.port")
    logf = os.path.join(hub.dir, f"{name}.log")
    p = subprocess.Popen([sys.executable, os.path.join(SRC, "tests", "sim", "dvcqg_sim.py"), "--port-file", port_file,
                          "--log", logf, "--password", PASSWORD, "--unknown-procedure",
                          onestop_sim.UNKNOWN_PROCEDURE, "--slow-for", "3", *args],
                         stdout=subprocess.DEVNULL, stderr=open(logf + ".err", "w"))
    sims.append(p)
    wait_until(lambda: os.path.exists(port_file), 30, what=f"{name} simulator")
    return p, int(open(port_file).read())


opencps, opencps_port = start_sim("opencps", "--variant", "opencps", "--seed", "11")
split, split_port = start_sim("split", "--variant", "split", "--token", TOKEN, "--seed", "12")
with open(os.path.join(hub.dir, "split.token"), "w") as f:
    f.write(TOKEN + "\n")
onestop = onestop_sim.OneStop(SECRET, os.path.join(hub.dir, "onestop.log"))


def sim_call(port, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


# ---------------------------------------------------------------- the hub: examples/province.yaml
hook_port = free_port()
sfx = unique("t")[2:]
cfg = open(os.path.join(SRC, "examples", "province.yaml")).read()
cfg = re.sub(r"^hub:\n(  .*\n)+", f"hub:\n{transport_section()}  instance: e2e\n  admin: {{ listen: '@ADMIN@' }}\n",
             cfg, flags=re.M)
for old, new in [("127.0.0.1:8481", f"127.0.0.1:{hook_port}"), ("http://127.0.0.1:9101", f"http://127.0.0.1:{opencps_port}"),
                 ("http://127.0.0.1:9102", f"http://127.0.0.1:{onestop.port}"), ("secrets/", SECRETS + "/"),
                 ("../mappings/", os.path.join(SRC, "mappings") + "/"),
                 ("onestop.dossier.events", f"onestop.dossier.events.{sfx}"),
                 ("dvcqg.sync.request", f"dvcqg.sync.request.{sfx}"), ("dvcqg.sync.result", f"dvcqg.sync.result.{sfx}"),
                 ("name: dvcqg\n", f"name: dvcqg-{sfx}\n"), ("from: dvcqg.dlq", f"from: dvcqg-{sfx}.dlq"),
                 ("onestop-to-dvcqg", f"onestop-to-dvcqg-{sfx}"), ("name: onestop-", f"name: onestop-{sfx}-"),
                 # faster than a province would wait, so that faults show within a test's time
                 ("timeout: 10s", "timeout: 2s"), ("200ms..30s", "20ms..500ms"), ("open_for: 5s", "open_for: 300ms")]:
    c.ok(old in cfg, f"examples/province.yaml has {old.strip()!r}")
    cfg = cfg.replace(old, new)
split_sink = (f"  - name: dvcqg-split-{sfx}\n    type: dvcqg\n    variant: split\n    from: dvcqg.sync.request.{sfx}\n"
              f"    result: dvcqg.split.result.{sfx}\n    url: http://127.0.0.1:{split_port}\n"
              f"    bearer_token_file: {os.path.join(hub.dir, 'split.token')}\n    timeout: 2s\n"
              "    breaker: { failures: 10, open_for: 300ms }\n    errors: { retries: 1000, backoff: 20ms..500ms }\n")
cfg = cfg.replace("\nroutes:\n", "\n" + split_sink + "routes:\n")
hub.write_config(cfg)
rc = subprocess.run([os.environ.get("LT_BIN") or os.path.join(SRC, "build", "lienthong"), "lint",
                     os.path.join(SRC, "examples", "province.yaml")], capture_output=True, text=True)
c.eq(rc.returncode, 0, f"lint of examples/province.yaml as shipped: {rc.stderr.strip()}")
rc = subprocess.run([os.environ.get("LT_BIN") or os.path.join(SRC, "build", "lienthong"), "lint", hub.config],
                    capture_output=True, text=True)
c.eq(rc.returncode, 0, f"lint of the test's province configuration: {rc.stderr.strip()}")
hub.start()
hub.wait_ready()
url = f"http://127.0.0.1:{hook_port}/onestop/events"


# ---------------------------------------------------------------- what the portal must hold
def dv_time(s):
    t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return t.astimezone(VN).strftime("%Y%m%d%H%M%S")


STATUS = {"registered": "1", "received": "2", "rejected": "3", "processing": "4", "supplement-requested": "5",
          "payment-requested": "6", "withdrawn": "7", "suspended": "8", "resolved": "9", "returned": "10"}


def expect_dossier(ev):
    """The DongBoHoSoMC entry an event calls for (§3.1-3.3), written from the contract, not the mapping."""
    a, d = ev["applicant"], ev["dates"]
    out = {"MaHoSo": ev["dossierCode"], "MaTTHC": ev["procedure"]["code"], "TenTTHC": ev["procedure"]["name"],
           "MaLinhVuc": ev["procedure"]["field"]["code"], "TenLinhVuc": ev["procedure"]["field"]["name"],
           "SoBienNhan": ev["receiptNo"], "ChuHoSo": a["name"],
           "LoaiDoiTuong": {"citizen": "1", "business": "2"}[a["type"]]}
    if ev["channel"] == "online":
        out["MaDoiTuong"] = a["accountId"]
    if "id" in a:
        out["SoGiayToChuHoSo"] = a["id"]["number"]
    out["TaiKhoanDuocXacThucVoiVNeID"] = "1" if a.get("vneidVerified") else "0"
    out["TrichYeuHoSo"] = ev["summary"]
    out["KenhThucHien"] = {"counter": "1", "online": "2", "post": "3"}[ev["channel"]]
    for k, f in [("submitted", "NgayNopHoSo"), ("received", "NgayTiepNhan"), ("due", "NgayHenTra"),
                 ("rejected", "NgayTuChoi"), ("finished", "NgayKetThucXuLy"), ("returned", "NgayTra")]:
        if k in d:
            out[f] = dv_time(d[k])
    if "returnInfo" in ev:
        out["ThongTinTra"] = ev["returnInfo"]
    out["TrangThaiHoSo"] = STATUS[ev["status"]]
    out["HinhThuc"] = "1" if ev.get("resultDelivery") == "post" else "0"
    out["DonViXuLy"] = ev["agency"]["name"]
    out["DuocThanhToanTrucTuyen"] = "1" if ev.get("paidOnline") else "3"
    out["NoiNopHoSo"] = "2"
    if "id" in a:
        out["DinhDanhCHS"] = [{"LoaiDinhDanh": "1" if len(a["id"]["number"]) == 12 else "2",
                               "SoDinhDanh": a["id"]["number"]}]
    out["TaiLieuNop"] = [{"TepDinhKemId": x["id"], "TenTepDinhKem": x["name"], "IsDeleted": "False",
                          "MaThanhPhanHoSo": x["componentCode"], "DuongDanTaiTepTin": x["url"],
                          "DuocSoHoa": "1" if x["digitised"] else "0"} for x in ev["attachments"]]
    out["DanhSachLePhi"] = [{"TenPhiLePhi": x["name"], "MaPhiLePhi": x["code"], "HinhThucThu": "1",
                             "Gia": str(x["amount"]), "LoaiPhiLePhi": "2"} for x in ev["fees"]]
    if ev.get("supplements"):
        out["DanhSachHoSoBoSung"] = []
        for s in ev["supplements"]:
            e = {"HoSoBoSungId": s["id"], "NguoiYeuCauBoSung": s["requestedBy"], "NoiDungBoSung": s["content"],
                 "NgayBoSung": dv_time(s["requestedAt"])}
            if "receivedBy" in s:
                e.update(NguoiTiepNhanBoSung=s["receivedBy"], NgayTiepNhanBoSung=dv_time(s["receivedAt"]))
            e["TrangThaiBoSung"] = "1" if "receivedAt" in s else "0"
            e["NgayHenTraTruoc"] = dv_time(s["previousDue"])
            if "newDue" in s:
                e["NgayHenTraMoi"] = dv_time(s["newDue"])
            out["DanhSachHoSoBoSung"].append(e)
    if ev.get("results"):
        out["DanhSachGiayToKetQua"] = [{"TenGiayTo": x["name"], "MaThanhPhanHoSo": x["componentCode"],
                                        "GiayToId": x["id"], "DuongDanTepTinKetQua": x["url"],
                                        "MaGiayToKetQua": x["code"]} for x in ev["results"]]
    return out


def expect_step(ev):
    s = ev["step"]
    e = {"MaHoSo": ev["dossierCode"], "NguoiXuLy": s["handler"]["name"][:50].strip()}
    if "title" in s["handler"]:
        e["ChucDanh"] = s["handler"]["title"]
    e["ThoiDiemXuLy"] = dv_time(s["changedAt"])
    e["PhongBanXuLy"] = s["handler"]["department"]
    e["NoiDungXuLy"] = s["note"]
    e["TrangThai"] = STATUS[s["status"]]
    if "stepStarted" in s:
        e.update(NgayBatDau=dv_time(s["stepStarted"]), NgayKetThucTheoQuyDinh=dv_time(s["stepDue"]))
    return e


def contract_ok(ev):
    return "handler" in ev["step"]


TIME_RE = re.compile(r"^\d{14}$")


def check_portal(port, dossiers, what):
    """The portal's state for these dossiers against what their events call for."""
    state = sim_call(port, "/_sim/state")["dossiers"]
    bad = {"creates": [], "data": [], "progress": [], "unexpected": [], "times": []}
    for d in dossiers:
        st = state.get(d.code)
        valid = [ev for ev in d.events if contract_ok(ev)]
        if d.kind == "bad-portal":
            if st and st["exists"]:
                bad["unexpected"].append(d.code)
            continue
        if not st or st["creates"] != 1:
            bad["creates"].append((d.code, st and st["creates"]))
            continue
        if st["data"] != expect_dossier(valid[-1]):
            want = expect_dossier(valid[-1])
            diff = sorted(k for k in set(want) | set(st["data"]) if want.get(k) != st["data"].get(k))
            bad["data"].append((d.code, diff[:5]))
        if st["progress"] != [expect_step(ev) for ev in valid]:
            bad["progress"].append((d.code, len(st["progress"]), len(valid)))
        for f in ("NgayTiepNhan", "NgayHenTra", "NgayTra", "NgayKetThucXuLy"):
            if f in st["data"] and not TIME_RE.match(st["data"][f]):
                bad["times"].append((d.code, f))
    for k, v in bad.items():
        c.eq(v[:5], [], f"{what}: dossiers with wrong {k}")
    full = [d for d in dossiers if d.kind == "full"]
    if full:
        c.ok(all(len(state[d.code]["progress"]) >= 15 for d in full),
             f"{what}: every full life cycle has 15+ progress entries")
    return state


def wait_outcomes(dossiers, timeout):
    """Until every event of these dossiers has its outcome at the one-stop simulator."""
    want = {ev["eventId"] for d in dossiers for ev in d.events}

    def done():
        got = {(e["body"] or {}).get("eventId") for e in onestop.outcomes()}
        return want <= got
    return wait_until(done, timeout, hub=hub, what=f"outcomes of {len(want)} events")


def check_outcomes(dossiers, what):
    by_event = {}
    for e in onestop.outcomes():
        b = e["body"]
        by_event.setdefault(b.get("eventId"), []).append(b)
    wrong = []
    for d in dossiers:
        for ev in d.events:
            got = by_event.get(ev["eventId"], [])
            if d.kind == "bad-portal":
                ok = got and all(b["outcome"] == "REJECTED" and "MaTTHC" in b.get("reason", "") for b in got)
            elif not contract_ok(ev):
                ok = got and all(b["outcome"] == "REJECTED" and "handler" in b.get("reason", "") for b in got)
            else:
                # one OK per portal variant (result topics); a resend after a crash repeats it
                ok = {b["result"]["variant"] for b in got if b["outcome"] == "OK"} == {"opencps"} and \
                    all(b["outcome"] == "OK" and b["dossierCode"] == d.code for b in got)
            if not ok:
                wrong.append((ev["eventId"], [(b["outcome"], b.get("reason", "")[:80]) for b in got]))
    c.eq(wrong[:5], [], f"{what}: every event's outcome reached the one-stop system with the right verdict")


def play(dossiers, kill_at=None):
    threads = onestop.play(url, dossiers, threads=8)
    total = sum(len(d.events) for d in dossiers)
    for frac in kill_at or []:
        while len([1 for d in dossiers for ev in d.events if ev["eventId"] in onestop.answers]) < total * frac \
                and any(t.is_alive() for t in threads):
            time.sleep(0.05)
        log(f"SIGKILL at {frac:.0%} of the events")
        hub.kill()
        hub.start()
    for t in threads:
        t.join()
    refused = [(k, a) for d in dossiers for ev in d.events for k, a in [(ev["eventId"], onestop.answers[ev["eventId"]])]
               if a[0] != 202]
    c.eq(refused[:3], [], "the hub took every signed event (202)")


# ---------------------------------------------------------------- the webhook's door
def raw_post(body, sig=None, ctype="application/json", idem=None):
    import hashlib
    import hmac
    import http.client
    mac = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    h = {"Content-Type": ctype, "X-Signature-256": sig if sig is not None else mac}
    if idem:
        h["Idempotency-Key"] = idem
    conn = http.client.HTTPConnection("127.0.0.1", hook_port, timeout=30)
    conn.request("POST", "/onestop/events", body=body, headers=h)
    r = conn.getresponse()
    out = r.status, json.loads(r.read() or b"{}")
    conn.close()
    return out


probe = onestop_sim.make_dossiers(1, seed=999, first=9000)[0].events[0]
probe_body = json.dumps(probe, ensure_ascii=False).encode()
c.eq(raw_post(probe_body, sig="sha256=" + "0" * 64)[0], 401, "a badly signed event is refused (401)")
c.eq(raw_post(probe_body, sig="")[0], 401, "an unsigned event is refused (401)")
c.eq(raw_post(probe_body, ctype="text/plain")[0], 415, "an event that is not JSON by type is refused (415)")
st, ans = raw_post(json.dumps({"event": "dossier.created"}).encode())
c.ok(st == 400 and "dossierCode" in ans.get("detail", ""), f"an event without dossierCode is refused (400): {ans}")
c.eq(raw_post(b'{"event": ')[0], 400, "malformed JSON is refused (400)")
first = raw_post(probe_body)
again = raw_post(probe_body)
c.ok(first[0] == 202 and again[0] == 202 and first[1]["id"] == again[1]["id"] and
     first[1]["dossierCode"] == probe["dossierCode"], "the same event sent twice keeps its id (eventId)")
probe_dossiers = [onestop_sim.make_dossiers(1, seed=999, first=9000)[0]]
probe_dossiers[0].events = probe_dossiers[0].events[:1]

# ---------------------------------------------------------------- phase 1: N dossiers, no fault
t0 = time.time()
phase1 = onestop_sim.make_dossiers(N, seed=1, first=1)
events1 = sum(len(d.events) for d in phase1)
log(f"phase 1: {N} dossiers, {events1} events, kinds "
    f"{ {k: sum(1 for d in phase1 if d.kind == k) for k in sorted({d.kind for d in phase1})} }")
play(phase1)
log(f"phase 1: events posted in {time.time() - t0:.1f}s")
c.ok(wait_outcomes(phase1, 900), "phase 1: every outcome arrived")
log(f"phase 1: all outcomes in {time.time() - t0:.1f}s")
time.sleep(1)
check_portal(opencps_port, phase1, "phase 1, opencps")
def split_has(dossiers):
    """The split portal holds every valid dossier's progress (one state dump per poll)."""
    state = sim_call(split_port, "/_sim/state")["dossiers"]
    return all((state.get(d.code) or {}).get("progress") == [expect_step(ev) for ev in d.events if contract_ok(ev)]
               for d in dossiers if d.kind != "bad-portal")


wait_until(lambda: split_has(phase1), 300, hub=hub, what="split portal")
check_outcomes(phase1, "phase 1")

# ---------------------------------------------------------------- phase 2: each fault in turn
FAULTS = [("5xx", {"fail_rate": 0.3}), ("slow", {"slow_rate": 0.03}), ("drop", {"drop_rate": 0.15}),
          ("session", {"session_calls": 5}), ("exists", {"exists_rate": 0.5}), ("duplicate", {"duplicate_rate": 0.3})]
OFF = {"fail_rate": 0, "slow_rate": 0, "drop_rate": 0, "session_calls": 0, "exists_rate": 0, "duplicate_rate": 0}
phase2 = []
for i, (name, fault) in enumerate(FAULTS):
    t1 = time.time()
    ds = onestop_sim.make_dossiers(PER_FAULT, seed=100 + i, first=1000 + 100 * i)
    phase2 += ds
    for port in (opencps_port, split_port):
        sim_call(port, "/_sim/config", fault)
    before = sim_call(opencps_port, "/_sim/stats")
    play(ds, kill_at=[0.5] if name in ("slow", "session") else None)
    c.ok(wait_outcomes(ds, 600), f"fault {name}: every outcome arrived")
    after = sim_call(opencps_port, "/_sim/stats")
    for port in (opencps_port, split_port):
        sim_call(port, "/_sim/config", OFF)
    log(f"fault {name}: {len(ds)} dossiers in {time.time() - t1:.1f}s; portal calls "
        f"{sum(after.values()) - sum(before.values())}")
    check_portal(opencps_port, ds, f"fault {name}, opencps")
    check_outcomes(ds, f"fault {name}")

# The faults did happen (the simulators' logs say so), and sessions were renewed.
entries = [json.loads(l) for l in open(os.path.join(hub.dir, "opencps.log"))]
seen = {e.get("fault") for e in entries}
c.ok({"fail", "slow", "drop", "exists", "duplicate"} <= seen, f"every fault struck at least once: {sorted(map(str, seen))}")
c.ok(sum(1 for e in entries if (e.get("answer") or {}).get("body", {}).get("error_code") == "-1") > 0,
     "expired sessions were refused")
c.ok(sim_call(opencps_port, "/_sim/state")["sessions_issued"] > 2, "the connector logged in again after expiry")
c.ok(sum(1 for e in entries if (e.get("answer") or {}).get("body", {}).get("error_code") == "-3") > 0,
     "a stale look-up led to \"đã tồn tại\"")
c.ok(all(len(e["body"]["data"]) <= 10 for e in entries if e.get("service") == "CapNhatTienDoHoSoMC"),
     "no progress call carries more than 10 entries")
c.ok(all(e["headers"].get("content-type", "").startswith("application/json") for e in entries),
     "every call is JSON")

m = hub.metrics()  # since the last restart, which came before the "exists" fault
c.ok(m.get("lienthong_dvcqg_exists_as_update_total", 0) > 0, "/metrics: creates answered \"đã tồn tại\" became updates")
c.ok(m.get("lienthong_dvcqg_progress_chunks_total", 0) > 0, "/metrics: progress chunks counted")

# The split variant got everything too, with the same data.
everyone = phase1 + phase2 + probe_dossiers
wait_until(lambda: split_has(everyone), 300, hub=hub, what="split portal")
check_portal(split_port, everyone, "split variant, all phases")
split_entries = [json.loads(l) for l in open(os.path.join(hub.dir, "split.log"))]
c.ok(all(e["headers"].get("authorization") == f"Bearer {TOKEN}" for e in split_entries),
     "every split call carries the bearer token")

# ---------------------------------------------------------------- the dead-letter queues
route_dlq = consume(bootstrap, f"onestop-to-dvcqg-{sfx}.dlq")
want_contract = {ev["eventId"] for d in everyone for ev in d.events if not contract_ok(ev)}
c.eq({r["headers"].get("onestop.event-id") for r in route_dlq}, want_contract,
     "the route's DLQ holds exactly the events the contract refuses")
c.ok(all("/step" in r["headers"].get("lt.error.reason", "") and "handler" in r["headers"].get("lt.error.reason", "")
         for r in route_dlq), "each with the contract's reason (the failing path)")
sink_dlq = consume(bootstrap, f"dvcqg-{sfx}.dlq")
want_portal = {ev["eventId"] for d in everyone if d.kind == "bad-portal" for ev in d.events}
c.eq({r["headers"].get("onestop.event-id") for r in sink_dlq}, want_portal,
     "the dvcqg DLQ holds exactly the events of dossiers the portal refuses")
c.ok(all("không có trong CSDL TTHC quốc gia" in r["headers"].get("lt.error.reason", "") for r in sink_dlq),
     "each with the portal's message")
split_dlq = consume(bootstrap, f"dvcqg-split-{sfx}.dlq")
c.eq({r["headers"].get("onestop.event-id") for r in split_dlq}, want_portal, "the split sink's DLQ likewise")

results = consume(bootstrap, f"dvcqg.sync.result.{sfx}")
c.ok(all(r["key"] == json.loads(r["value"])["dossierCode"] for r in results), "results are keyed by dossier code")
created = {}
for r in results:
    v = json.loads(r["value"])
    if v["created"]:
        created.setdefault(v["dossierCode"], set()).add(v["requestId"])
c.eq([k for k, v in created.items() if len(v) > 1][:5], [], "no dossier created by two different requests")
log(f"opencps portal: {len(entries)} calls, split portal: {len(split_entries)} calls, "
    f"{len(results)} results, one-stop got {len(onestop.outcomes())} outcomes, "
    f"{onestop.resends} event resends; {time.time() - t0:.1f}s in all")

rc, _ = hub.terminate()
c.eq(rc, 0, "exit code after SIGTERM")
for p in (opencps, split):
    p.terminate()
    p.wait()
onestop.close()
c.done()
