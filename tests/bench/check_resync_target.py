#!/usr/bin/env python3
"""resync_target --dvcqg answers as tests/sim/dvcqg_sim.py does: the same calls (login, the
session check, madonvi, TraCuuHoSo before and after a create, create once then "đã tồn tại",
update of a missing dossier, each data refusal the simulator makes, progress) go to both, and
each answer's error_code (and whether TraCuuHoSo found the dossier) must be the same and the
expected one. Then `load-dvcqg` against it: every dossier created once, nothing refused.

  check_resync_target.py RESYNC_TARGET
Exit 0 when all hold. Python standard library only."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "..", "sim", "dvcqg_sim.py")
ORG = "000.00.01.H22"
CODE = f"{ORG}-240115-00001"
D = {"MaHoSo": CODE, "MaTTHC": "2.000889.000.00.00.H22", "TenTTHC": "Đăng ký khai sinh", "ChuHoSo": "Lê Thị Hoa",
     "LoaiDoiTuong": "1", "KenhThucHien": "2", "NgayTiepNhan": "20240115080000", "NgayHenTra": "20240119170000",
     "TrangThaiHoSo": "2", "DonViXuLy": "UBND phường Hồng Hải",
     "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "022190000001"}]}


def post(url, body, ctype="application/json"):
    req = urllib.request.Request(url, data=json.dumps(body, ensure_ascii=False).encode(), method="POST",
                                 headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def wait_port(path):
    for _ in range(200):
        if os.path.exists(path):
            return int(open(path).read())
        time.sleep(0.05)
    raise RuntimeError(f"no port in {path}")


def cases():
    """(name, body with @S@ for the session or None for the login, expected error_code, found?)."""
    def sync(upd, d):
        return {"session": "@S@", "madonvi": ORG, "service": "DongBoHoSoMC", "isUpdating": upd, "data": [d]}
    look = {"session": "@S@", "madonvi": ORG, "service": "TraCuuHoSo", "mahoso": CODE}
    step = {"MaHoSo": CODE, "NguoiXuLy": "Cán bộ 01", "ThoiDiemXuLy": "20240115090000", "TrangThai": "4"}
    return [
        ("a wrong password", "auth", {"username": "bench", "password": "x"}, "-4", None),
        ("no session", "int", dict(look, session="nope"), "-1", False),
        ("a bad madonvi", "int", dict(look, madonvi="000.00.01"), "-2", False),
        ("look-up of a new dossier", "int", look, "0", False),
        ("update of a missing dossier", "int", sync("True", D), "2", None),
        ("progress of a missing dossier", "int", {"session": "@S@", "madonvi": ORG, "service": "CapNhatTienDoHoSoMC",
                                                  "data": [step]}, "2", None),
        ("create", "int", sync("False", D), "0", None),
        ("create again", "int", sync("False", D), "-3", None),
        ("look-up after the create", "int", look, "0", True),
        ("update", "int", sync("True", dict(D, TrangThaiHoSo="4")), "0", None),
        ("progress", "int", {"session": "@S@", "madonvi": ORG, "service": "CapNhatTienDoHoSoMC", "data": [step]},
         "0", None),
        ("11 progress entries", "int", {"session": "@S@", "madonvi": ORG, "service": "CapNhatTienDoHoSoMC",
                                        "data": [step] * 11}, "-2", None),
        ("isUpdating yes", "int", sync("yes", D), "-2", None),
        ("a missing field", "int", sync("True", {k: v for k, v in D.items() if k != "DonViXuLy"}), "-2", None),
        ("a number, not a string", "int", sync("True", dict(D, LoaiDoiTuong=1)), "-2", None),
        ("MaHoSo of 3 digits", "int", sync("True", dict(D, MaHoSo=f"{ORG}-240115-001")), "-2", None),
        ("MaTTHC malformed", "int", sync("True", dict(D, MaTTHC="2.889.H22")), "-2", None),
        ("month 13", "int", sync("True", dict(D, NgayTiepNhan="20241315080000")), "-2", None),
        ("TrangThaiHoSo 11", "int", sync("True", dict(D, TrangThaiHoSo="11")), "-2", None),
        ("LoaiDoiTuong 5", "int", sync("True", dict(D, LoaiDoiTuong="5")), "-2", None),
        ("KenhThucHien 4", "int", sync("True", dict(D, KenhThucHien="4")), "-2", None),
        ("LoaiDinhDanh 1 with 9 digits", "int", sync("True", dict(D, DinhDanhCHS=[{"LoaiDinhDanh": "1",
                                                                                   "SoDinhDanh": "022190001"}])),
         "-2", None),
        ("LoaiDinhDanh 2 with 9 digits", "int", sync("True", dict(D, DinhDanhCHS=[{"LoaiDinhDanh": "2",
                                                                                   "SoDinhDanh": "022190001"}])),
         "0", None),
        ("an unknown service", "int", {"session": "@S@", "madonvi": ORG, "service": "Khac"}, "-2", None),
    ]


def run(base):
    """The answers of one server to the cases: [(error_code, found)]."""
    st, login = post(base + "/api/auth", {"username": "bench", "password": "bench-pw"})
    if st != 200 or not login.get("session"):
        raise RuntimeError(f"login to {base}: {st} {login}")
    out = []
    for name, path, body, _, _ in cases():
        body = json.loads(json.dumps(body).replace("@S@", login["session"]))
        st, ans = post(base + ("/api/auth" if path == "auth" else "/api/integration"), body)
        found = bool(ans.get("result")) if body.get("service") == "TraCuuHoSo" else None
        out.append((st, str(ans.get("error_code")), found, ans.get("message", "")))
    st, ans = post(base + "/api/integration", {"session": "x"}, ctype="text/plain")
    out.append((st, str(ans.get("error_code")), None, "Content-Type text/plain"))
    return out


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    target = argv[0]
    tmp = tempfile.mkdtemp(prefix="lt-resync-target-")
    procs, fails = [], []
    try:
        procs.append(subprocess.Popen([target, "serve", f"{tmp}/t.port", "0", "--dvcqg"]))
        procs.append(subprocess.Popen([sys.executable, SIM, "--port-file", f"{tmp}/s.port", "--username", "bench",
                                       "--password", "bench-pw"]))
        t_url, s_url = (f"http://127.0.0.1:{wait_port(f'{tmp}/{n}.port')}" for n in ("t", "s"))
        got_t, got_s = run(t_url), run(s_url)
        want = [(c[3], c[4]) for c in cases()] + [("415", None)]
        for i, (t, s, w) in enumerate(zip(got_t, got_s, want)):
            name = cases()[i][0] if i < len(cases()) else "Content-Type text/plain"
            if (t[1], t[2]) != (s[1], s[2]) or (t[1], t[2]) != w or t[0] != s[0]:
                fails.append(f"{name}: resync_target HTTP {t[0]} {t[1]} found={t[2]} ({t[3]}), simulator HTTP {s[0]} "
                             f"{s[1]} found={s[2]} ({s[3]}), expected {w}")
            else:
                print(f"ok: {name}: {t[1]}")
        # the capacity client: its calls accepted, each dossier created once
        with open(f"{tmp}/d.json", "w") as f:
            f.write(json.dumps(dict(D, MaHoSo="@CODE@"), ensure_ascii=False))
        urllib.request.urlopen(t_url + "/_reset", timeout=10).read()
        r = subprocess.run([target, "load-dvcqg", t_url, "500", "8", "1", f"{tmp}/d.json"], capture_output=True,
                           timeout=120)
        load = json.loads(r.stdout or b"{}")
        dz = json.loads(urllib.request.urlopen(t_url + "/_dossiers", timeout=10).read())
        st = json.loads(urllib.request.urlopen(t_url + "/_stats", timeout=10).read())
        if r.returncode or load.get("failed") or load.get("calls") != 1000 or dz["dossiers"] != 500 \
                or dz["created_once"] != 500 or st["lookups"] != 500 or st["creates"] != 500 or st["logins"] != 1:
            fails.append(f"load-dvcqg: {load} {dz} {st} {r.stderr.decode()[-300:]}")
        else:
            print(f"ok: load-dvcqg: 500 dossiers, 1000 calls, each created once ({load['rate']:.0f}/s)")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
