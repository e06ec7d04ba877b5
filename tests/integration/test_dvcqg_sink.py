"""The `dvcqg` sink's own cases, records produced straight onto its input topic (issue 12 item 2):
- a DongBoHoSoMC request then a 25-entry CapNhatTienDoHoSoMC request for the same dossier: the
  portal gets the dossier created, then progress calls of 10, 10 and 5 entries, in order, and the
  result lists every call;
- a record that is no request at all, and a request whose data is empty: REJECTed to the DLQ
  with the reason, no call made;
- a dossier the portal refuses (unknown MaTTHC): in the DLQ with the portal's message, the
  answer as lt.error.detail;
- the split variant with a wrong token and the opencps variant with a wrong password: RETRY until
  the retries run out, then the DLQ says why (credentials refused / login failed): nothing is
  dropped silently, and no dossier call was made without credentials.
Runs on kafka and, with LT_TEST_TRANSPORT=embedded, on the embedded transport.
"""
import atexit
import json
import os
import subprocess
import sys
import time
import urllib.request

from harness import PORT, SRC, Checks, Hub, consume, log, produce, transport_section, unique, wait_until

c = Checks("dvcqg-sink")
bootstrap = f"127.0.0.1:{PORT}"
hub = Hub("", "dvcqg-sink")


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
                          "--log", logf, "--password", "right-password", "--unknown-procedure",
                          "9.999999.000.00.00.H22", *args], stdout=subprocess.DEVNULL, stderr=open(logf + ".err", "w"))
    sims.append(p)
    wait_until(lambda: os.path.exists(port_file), 30, what=f"{name} simulator")
    return p, int(open(port_file).read()), logf


def sim_log(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.endswith("\n")]


def state(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sim/state", timeout=10) as r:
        return json.loads(r.read())["dossiers"]


ok_sim, ok_port, ok_log = start_sim("opencps", "--variant", "opencps")
split_sim, split_port, split_log = start_sim("split", "--variant", "split", "--token", "the-right-token")
for name, text in [("good.pw", "right-password\n"), ("bad.pw", "wrong-password\n"), ("bad.token", "a-wrong-token\n")]:
    with open(os.path.join(hub.dir, name), "w") as f:
        f.write(text)

t_good, t_badpw, t_split = unique("dv.good"), unique("dv.badpw"), unique("dv.split")
s_good, s_badpw, s_split = unique("dv-good"), unique("dv-badpw"), unique("dv-split")
res_good = unique("dv.good.res")
common = "    timeout: 2s\n    batch: { max_wait: 10ms }\n"
hub.write_config(
    f"hub:\n{transport_section()}  instance: dvs\n  admin: {{ listen: '@ADMIN@' }}\nconnectors:\n"
    f"  - name: {s_good}\n    type: dvcqg\n    from: {t_good}\n    result: {res_good}\n"
    f"    url: http://127.0.0.1:{ok_port}\n    username: tinh-qn\n    password_file: good.pw\n"
    f"    errors: {{ retries: 3, backoff: 20ms..100ms }}\n{common}"
    f"  - name: {s_badpw}\n    type: dvcqg\n    from: {t_badpw}\n    url: http://127.0.0.1:{ok_port}\n"
    f"    username: tinh-qn\n    password_file: bad.pw\n    errors: {{ retries: 2, backoff: 20ms..100ms }}\n{common}"
    f"  - name: {s_split}\n    type: dvcqg\n    variant: split\n    from: {t_split}\n"
    f"    url: http://127.0.0.1:{split_port}\n    bearer_token_file: bad.token\n    madonvi: 000.00.01.H22\n"
    f"    errors: {{ retries: 2, backoff: 20ms..100ms }}\n{common}")
hub.start()
hub.wait_ready()

CODE, CODE2 = "000.00.01.H22-240201-0001", "000.00.01.H22-240201-0003"
dossier = {"MaHoSo": CODE, "MaTTHC": "2.000889.000.00.00.H22", "TenTTHC": "Đăng ký khai sinh", "ChuHoSo": "Lê Thị Hoa",
           "LoaiDoiTuong": "1", "KenhThucHien": "2", "NgayTiepNhan": "20240201080000", "NgayHenTra": "20240205170000",
           "TrangThaiHoSo": "2", "DonViXuLy": "UBND phường Hồng Hải",
           "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "022190000001"}]}
steps = [{"MaHoSo": CODE, "NguoiXuLy": f"Cán bộ {i:02d}", "ThoiDiemXuLy": f"20240201{8 + i // 6:02d}{(i % 6) * 10:02d}00",
          "TrangThai": "4", "NoiDungXuLy": f"Bước {i + 1}"} for i in range(25)]  # increasing times on 1 February
bad_proc = dict(dossier, MaHoSo="000.00.01.H22-240201-0002", MaTTHC="9.999999.000.00.00.H22")
records = [
    (CODE, {"madonvi": "000.00.01.H22", "service": "DongBoHoSoMC", "isUpdating": "False", "data": [dossier]}),
    (CODE, {"madonvi": "000.00.01.H22", "service": "CapNhatTienDoHoSoMC", "data": steps}),
    ("junk", {"hello": "world"}),
    ("empty", {"dossier": {"service": "DongBoHoSoMC", "data": []}}),
    (bad_proc["MaHoSo"], {"dossier": {"madonvi": "000.00.01.H22", "service": "DongBoHoSoMC", "isUpdating": "False",
                                      "data": [bad_proc]}}),
    # a progress part without madonvi takes the dossier part's (the sink has no madonvi option)
    (CODE2, {"dossier": {"madonvi": "000.00.01.H22", "service": "DongBoHoSoMC", "isUpdating": "False",
                         "data": [dict(dossier, MaHoSo=CODE2)]},
             "progress": {"service": "CapNhatTienDoHoSoMC", "data": [dict(steps[0], MaHoSo=CODE2)]}}),
]
produce(bootstrap, t_good, [(k, json.dumps(v, ensure_ascii=False)) for k, v in records])
produce(bootstrap, t_badpw, [(CODE, json.dumps(records[0][1], ensure_ascii=False))])
produce(bootstrap, t_split, [(CODE, json.dumps({"dossier": records[0][1], "progress": records[1][1]},
                                               ensure_ascii=False))])

c.ok(wait_until(lambda: len(consume(bootstrap, res_good, timeout=10)) >= 3, 120, hub=hub, what="three results"),
     "the three requests delivered")
c.ok(wait_until(lambda: len(consume(bootstrap, f"{s_good}.dlq", timeout=10)) >= 3, 120, hub=hub, what="good DLQ"),
     "three refusals in the DLQ")
c.ok(wait_until(lambda: consume(bootstrap, f"{s_badpw}.dlq", timeout=10) and consume(bootstrap, f"{s_split}.dlq",
                                                                                       timeout=10), 120, hub=hub,
                what="credential DLQs"), "the records without valid credentials end in their DLQs")

# ---- the portal: created once, progress in chunks of 10, 10, 5, in order
st = state(ok_port)
c.eq(st.get(CODE, {}).get("creates"), 1, "the dossier was created once")
c.eq(st.get(CODE, {}).get("progress"), steps, "all 25 progress entries, in order")
calls = [e for e in sim_log(ok_log) if e.get("service") == "CapNhatTienDoHoSoMC" and e["body"]["data"][0]["MaHoSo"] == CODE]
c.eq([len(e["body"]["data"]) for e in calls], [10, 10, 5], "progress went in chunks of 10, 10 and 5")
c.eq([e["body"]["data"][0]["NoiDungXuLy"] for e in calls], ["Bước 1", "Bước 11", "Bước 21"], "chunks in order")
c.ok(all(e["body"].get("session") for e in sim_log(ok_log) if e.get("service") not in ("login", None)),
     "every call carries the session")
about = [e["service"] for e in sim_log(ok_log) if e.get("service") not in ("login", None) and
         (e["body"].get("mahoso") == CODE or (e["body"].get("data") or [{}])[0].get("MaHoSo") == CODE)]
c.eq(about, ["TraCuuHoSo", "DongBoHoSoMC"] + ["CapNhatTienDoHoSoMC"] * 3,
     "the dossier's calls: TraCuuHoSo, DongBoHoSoMC, then the progress")
c.eq(st.get(CODE2, {}).get("progress"), [dict(steps[0], MaHoSo=CODE2)],
     "a progress part without madonvi went with the dossier part's")
res = [json.loads(r["value"]) for r in consume(bootstrap, res_good) if r["key"] == CODE]
c.eq([r["calls"][-1]["entries"] for r in res if r["calls"][-1]["service"] == "CapNhatTienDoHoSoMC"], [5],
     "the progress result lists its last chunk")
c.eq([[x["service"] for x in r["calls"]] for r in res],
     [["TraCuuHoSo", "DongBoHoSoMC"], ["CapNhatTienDoHoSoMC"] * 3], "each result lists every call")
c.ok(res and res[0]["created"] is True and res[0]["calls"][1]["isUpdating"] == "False",
     "the first result says the dossier was created (isUpdating False after the look-up)")

# ---- the refusals
dlq = {r["key"]: r["headers"] for r in consume(bootstrap, f"{s_good}.dlq")}
c.ok("not a DongBoHoSoMC" in dlq.get("junk", {}).get("lt.error.reason", ""), "a record that is no request: its reason")
c.ok("non-empty list" in dlq.get("empty", {}).get("lt.error.reason", ""), "an empty data list: its reason")
why = dlq.get(bad_proc["MaHoSo"], {})
c.ok("MaTTHC" in why.get("lt.error.reason", "") and "không có trong CSDL TTHC" in why.get("lt.error.reason", ""),
     f"the portal's refusal carries its message: {why.get('lt.error.reason', '')[:160]}")
c.eq(why.get("lt.error.stage"), "sink.dvcqg", "stage sink.dvcqg")
c.eq(why.get("lt.error.code"), "downstream", "code downstream")
c.ok("error_code" in why.get("lt.error.detail", ""), "the portal's answer is the DLQ detail")
c.ok(all(e.get("service") != "DongBoHoSoMC" or e["body"]["data"] for e in sim_log(ok_log)),
     "no call was made for the empty request")

bad = consume(bootstrap, f"{s_badpw}.dlq")
c.ok(bad and "login" in bad[0]["headers"].get("lt.error.reason", ""), "a refused login: the DLQ says so")
split_dlq = consume(bootstrap, f"{s_split}.dlq")
c.ok(split_dlq and "credentials refused" in split_dlq[0]["headers"].get("lt.error.reason", ""),
     "a refused token: the DLQ says so")
c.eq(state(split_port).get(CODE), None, "nothing reached the split portal without the token")
c.ok(sum(1 for e in sim_log(split_log) if e["answer"]["status"] == 401) == 3, "the refused call was tried 1 + 2 times")

m = hub.metrics()
c.eq(m.get("lienthong_dvcqg_dossiers_created_total"), 2.0, "/metrics: two dossiers created")
c.eq(m.get("lienthong_dvcqg_progress_chunks_total"), 4.0, "/metrics: four progress chunks accepted")
c.eq(m.get("lienthong_dvcqg_rejected_total"), 1.0, "/metrics: one delivery refused by the portal")
c.ok(m.get("lienthong_dvcqg_logins_total", 0) >= 1, "/metrics: logins counted")
c.eq(m.get("lienthong_dvcqg_calls_unanswered_total"), 0.0, "/metrics: every call was answered")

rc, _ = hub.terminate()
c.eq(rc, 0, "exit code after SIGTERM")
for p in (ok_sim, split_sim):
    p.terminate()
    p.wait()
c.done()
