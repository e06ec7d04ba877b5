#!/usr/bin/env python3
"""Bulk re-sync benchmark: N keyed records (dossiers) already waiting in a topic go through a
sink at its configured concurrency to a fast local endpoint (resync_target), the national
database job's everyday case. In the same run it measures the endpoint's own capacity (a
libcurl-multi client doing nothing else, at the same concurrency), then the hub:

  records/s        N over the endpoint's first to last call of the hub phase
  ratio            hub records/s over the endpoint's capacity (1.0: the hub is not the bottleneck)
  p99 per call     the endpoint's handler time (its own view), and the capacity client's p99
  p99 per record   the hub's consume -> commit latency (lienthong_route_latency_seconds)
  hub CPU/record   user+system CPU of the hub process over the hub phase, divided by N
and checks that every record arrived, per key in order (duplicates are reported).

  bench_resync.py [--records N] [--keys K] [--concurrency C] [--transport embedded|kafka]
                  [--bootstrap H:P] [--delay-us D] [--template FILE] [--url URL] [--quick]
                  [--sink http|dvcqg] [--reuse] --bin LIENTHONG --target RESYNC_TARGET

--sink dvcqg: the real `dvcqg` sink (OpenCPS variant, tests/bench/resync/resync_dvcqg.yaml.in)
against `resync_target serve --dvcqg`, which answers the session login, TraCuuHoSo and
DongBoHoSoMC as tests/sim/dvcqg_sim.py does and counts creates and updates per dossier. K
dossiers (--keys; default: --records, each dossier once) get N/K sync requests each, in order:
the first creates the dossier, the others update it. The capacity client makes the same calls
(login once; per dossier TraCuuHoSo then DongBoHoSoMC) at the same concurrency, with a new
connection per call like the sink's default (--reuse: reuse_connections true for both).
Passes when every dossier was created exactly once and updated N/K - 1 times, nothing refused.
The hub's CPU is also split by thread (/proc/PID/task; unnamed threads by id), with each
thread's voluntary context switches per record: the cheap profile of where it goes.

--template: the hub configuration (default tests/bench/resync/resync.yaml.in): point it at
another sink (the dvcqg sink) by editing the `resync` connector; --url then names that
system's simulator instead of starting resync_target (the order check needs resync_target).
Prints a summary and, as the last line, one JSON object. Exit 0 when every record arrived in
order, 1 otherwise, 2 on usage errors. Python standard library only.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read().decode()


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    """CPU seconds by thread (/proc/PID/task/*/stat: "name/tid"), for where the hub's CPU goes;
    numbered workers of one name count as one."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                text = f.read()
        except OSError:
            continue
        name = text.split("(", 1)[1].rsplit(")", 1)[0]
        fields = text.rsplit(")", 1)[1].split()
        name = name.rstrip("0123456789") or name
        name = f"{name}/{tid}" if name in ("lienthong",) else name  # unnamed threads: by id
        out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def thread_switches(pid):
    """Voluntary context switches by thread ("name/tid" as thread_cpu): how often each wakes."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                st = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        name = st["Name"].strip().rstrip("0123456789") or st["Name"].strip()
        name = f"{name}/{tid}" if name in ("lienthong",) else name
        out[name] = out.get(name, 0) + int(st["voluntary_ctxt_switches"])
    return out


def dossier(code, state):
    """A realistic DongBoHoSoMC dossier (the fields the portal requires and the usual others)."""
    return {"MaHoSo": code, "MaTTHC": "2.000889.000.00.00.H22", "TenTTHC": "Đăng ký khai sinh",
            "ChuHoSo": "Lê Thị Hoa", "LoaiDoiTuong": "1", "KenhThucHien": "2",
            "DiaChiChuHoSo": "Số 12 đường Trần Phú, phường Hồng Hải, thành phố Hạ Long, tỉnh Quảng Ninh",
            "SoDienThoaiChuHoSo": "0912345678", "EmailChuHoSo": "hoa.le@example.vn",
            "NgayNopHoSo": "20240115075500", "NgayTiepNhan": "20240115080000", "NgayHenTra": "20240119170000",
            "TrangThaiHoSo": state, "DonViXuLy": "UBND phường Hồng Hải", "HinhThuc": "0",
            "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "022190000001"}]}


def dossier_code(i):
    return f"000.00.01.H22-2401{1 + i // 50000:02d}-{i % 50000:05d}"


def hist_p99(metrics_text, route):
    """p99 (upper bucket bound, seconds) of lienthong_route_latency_seconds for route."""
    buckets = []
    for line in metrics_text.splitlines():
        if line.startswith("lienthong_route_latency_seconds_bucket{") and f'route="{route}"' in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for le, n in sorted(buckets):
        if n >= 0.99 * total:
            return le
    return None


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--records", type=int, default=100000)
    p.add_argument("--keys", type=int)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--transport", default="embedded", choices=["embedded", "kafka"])
    p.add_argument("--bootstrap")
    p.add_argument("--delay-us", type=int, default=0)
    p.add_argument("--template", default=os.path.join(HERE, "resync", "resync.yaml.in"))
    p.add_argument("--url")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--bin", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--sink", default="http", choices=["http", "dvcqg"])
    p.add_argument("--reuse", action="store_true")
    a = p.parse_args(argv)
    dv = a.sink == "dvcqg"
    if a.quick:
        a.records, a.keys = (4000, 2000) if dv else (5000, 1000)
    if a.keys is None:
        a.keys = a.records if dv else 10000
    if dv and (a.url or a.records % a.keys):
        p.error("--sink dvcqg: resync_target is the endpoint (no --url), and --records a multiple of --keys")
    if dv and a.template == p.get_default("template"):
        a.template = os.path.join(HERE, "resync", "resync_dvcqg.yaml.in")
    if a.transport == "kafka" and not a.bootstrap:
        p.error("--transport kafka needs --bootstrap")
    os.environ["LT_TEST_TRANSPORT"] = a.transport
    if a.bootstrap:
        os.environ["LT_TEST_KAFKA_PORT"] = a.bootstrap.rsplit(":", 1)[1]
    import harness  # after LT_TEST_TRANSPORT: it picks its database or broker from it

    scratch = tempfile.mkdtemp(prefix="lt-bench-resync-")
    procs = []
    out = {"bench": "resync", "sink": a.sink, "transport": a.transport, "records": a.records, "keys": a.keys,
           "concurrency": a.concurrency, "error": ""}
    if dv:
        out["reuse_connections"] = a.reuse
    ok = False
    try:
        url = a.url
        if not url:
            pf = os.path.join(scratch, "target.port")
            tp = subprocess.Popen([a.target, "serve", pf, str(a.delay_us)] + (["--dvcqg"] if dv else []))
            procs.append(tp)
            for _ in range(200):
                if os.path.exists(pf):
                    break
                time.sleep(0.05)
            url = f"http://127.0.0.1:{int(open(pf).read())}"
            # 1. the endpoint's own capacity, at the hub's concurrency
            n_cap = min(a.records, 20000)
            if dv:  # the sink's call sequence, the same dossier body
                tf = os.path.join(scratch, "dossier.json")
                with open(tf, "w") as f:
                    f.write(json.dumps(dossier("@CODE@", "2"), ensure_ascii=False, separators=(",", ":")))
                r = subprocess.run([a.target, "load-dvcqg", url, str(n_cap), str(a.concurrency),
                                    "0" if a.reuse else "1", tf], capture_output=True, timeout=600)
            else:
                r = subprocess.run([a.target, "load", url + "/capacity", str(n_cap), str(a.concurrency)],
                                   capture_output=True, timeout=600)
            cap = json.loads(r.stdout.decode() or "{}")
            if r.returncode != 0:
                raise RuntimeError(f"the capacity client failed: {r.stderr.decode()[-500:]} {cap}")
            out.update(capacity_rate=cap.get("rate"), capacity_p50_ms=cap.get("p50_ms"),
                       capacity_p99_ms=cap.get("p99_ms"))
            print(f"endpoint capacity: {cap.get('rate', 0):.0f}/s (p99 {cap.get('p99_ms', 0):.2f} ms) "
                  f"at {a.concurrency} in flight", file=sys.stderr)
        # 2. the hub: create the topics, then stop it and fill the input
        topic, result = harness.unique("resync.in"), harness.unique("resync.res")
        with open(a.template) as f:
            tmpl = f.read()
        admin = harness.free_port()
        cfg = (tmpl.replace("@TRANSPORT@", harness.transport_section(a.bootstrap).rstrip("\n"))
               .replace("@ADMIN@", f"127.0.0.1:{admin}").replace("@TOPIC@", topic).replace("@RESULT@", result)
               .replace("@URL@", url).replace("@CONCURRENCY@", str(a.concurrency))
               .replace("@PASSWORD_FILE@", os.path.join(scratch, "dvcqg.password"))
               .replace("@REUSE@", "true" if a.reuse else "false"))
        with open(os.path.join(scratch, "dvcqg.password"), "w") as f:
            f.write("bench-pw\n")
        cfg_path = os.path.join(scratch, "hub.yaml")
        with open(cfg_path, "w") as f:
            f.write(cfg)
        logf = open(os.path.join(scratch, "hub.log"), "a")

        def start_hub():
            h = subprocess.Popen([a.bin, "run", cfg_path], stdout=logf, stderr=logf)
            procs.append(h)
            deadline = time.time() + 120
            while time.time() < deadline:
                if h.poll() is not None:
                    raise RuntimeError(f"the hub exited with {h.returncode} (log {scratch}/hub.log)")
                try:
                    if get(f"http://127.0.0.1:{admin}/ready")[0] == 200:
                        return h
                except OSError:
                    pass
                time.sleep(0.1)
            raise RuntimeError("the hub did not get ready")

        h = start_hub()
        h.send_signal(signal.SIGTERM)
        h.wait(timeout=60)
        per_key = max(1, a.records // a.keys)
        recs = []
        for i in range(a.records):
            if dv:  # pass i // keys of dossier i % keys: a sync request as mappings/dvcqg writes them
                k = dossier_code(i % a.keys)
                req = {"madonvi": "000.00.01.H22", "service": "DongBoHoSoMC", "isUpdating": "False",
                       "data": [dossier(k, str(min(10, 2 + i // a.keys)))]}
                recs.append((k, json.dumps({"dossier": req}, ensure_ascii=False, separators=(",", ":"))))
                continue
            k = f"D{i % a.keys:06d}"
            recs.append((k, json.dumps({"key": k, "seq": i // a.keys, "MaHoSo": f"000.00.01.H22-240115-{i:06d}",
                                        "TrangThaiHoSo": "4", "pad": "x" * 200}, separators=(",", ":"))))
        t = time.time()
        for i in range(0, len(recs), 20000):
            harness.produce(a.bootstrap, topic, recs[i:i + 20000])
        print(f"{a.records} records ({per_key} per key) written in {time.time() - t:.1f} s", file=sys.stderr)
        if not a.url:
            get(url + "/_reset")
        # 3. the hub phase
        h = start_hub()
        cpu0, threads0, sw0 = cpu_s(h.pid), thread_cpu(h.pid), thread_switches(h.pid)
        deadline = time.time() + 1800
        st, seen, moved = {}, -1, time.time()
        while time.time() < deadline:
            if dv:
                st = json.loads(get(url + "/_stats")[1])
                if st["synced"] + st["rejected"] >= a.records:
                    break
                if st["requests"] != seen:
                    seen, moved = st["requests"], time.time()
                elif time.time() - moved > 60:
                    raise RuntimeError(f"no call for 60 s, {st['synced']} of {a.records} synced (log {scratch}/hub.log)")
            elif not a.url:
                st = json.loads(get(url + "/_stats")[1])
                if st["distinct"] + st["out_of_order"] >= a.records:
                    break
            else:
                n = len(harness.consume(a.bootstrap, result))
                if n >= a.records:
                    break
            if h.poll() is not None:
                raise RuntimeError(f"the hub died (log {scratch}/hub.log)")
            time.sleep(0.2)
        cpu1, threads1, sw1 = cpu_s(h.pid), thread_cpu(h.pid), thread_switches(h.pid)
        metrics = get(f"http://127.0.0.1:{admin}/metrics")[1]
        out["hub_thread_us_per_record"] = dict(sorted(
            ((n, round((t - threads0.get(n, 0)) / a.records * 1e6, 1)) for n, t in threads1.items()
             if t - threads0.get(n, 0) > 0), key=lambda x: -x[1]))
        out["hub_thread_wakeups_per_record"] = {
            n: round((sw1[n] - sw0.get(n, 0)) / a.records, 2) for n in out["hub_thread_us_per_record"] if n in sw1}
        h.send_signal(signal.SIGTERM)
        out["hub_exit"] = h.wait(timeout=60)  # a crash or a sanitizer report on the way out fails the run
        hub_cpu_us = (cpu1 - cpu0) / a.records * 1e6
        p99 = hist_p99(metrics, "resync")
        out.update(hub_cpu_us_per_record=round(hub_cpu_us, 1),
                   hub_p99_record_ms=None if p99 is None else p99 * 1e3)
        if dv:
            dz = json.loads(get(url + "/_dossiers")[1])
            span = max(st["last"] - st["first"], 1e-6)
            rate = st["synced"] / span
            passes = a.records // a.keys
            out.update(hub_rate=round(rate, 1),
                       ratio=round(rate / out["capacity_rate"], 3) if out.get("capacity_rate") else None,
                       endpoint_p50_us=st["p50_us"], endpoint_p99_us=st["p99_us"], calls=st["requests"],
                       calls_per_record=round(st["requests"] / a.records, 3), logins=st["logins"],
                       created=st["creates"], updated=st["updates"], dossiers=dz["dossiers"],
                       created_once=dz["created_once"], created_twice=dz["created_twice"],
                       updates_min=dz["upd_min"], updates_max=dz["upd_max"], exists_answers=st["exists"],
                       rejected=st["rejected"], session_refused=st["session_refused"])
            ok = (dz["dossiers"] == a.keys and dz["created_once"] == a.keys and dz["created_twice"] == 0
                  and dz["upd_min"] == dz["upd_max"] == passes - 1 and st["rejected"] == 0 and not dz["table_full"])
            top = sorted(out["hub_thread_us_per_record"].items(), key=lambda x: -x[1])[:5]
            print(f"resync dvcqg: {rate:.0f} dossier syncs/s through the hub vs {out.get('capacity_rate') or 0:.0f}/s "
                  f"straight (ratio {out['ratio']}); hub CPU {hub_cpu_us:.1f} us/dossier sync "
                  f"({', '.join(f'{n} {v}' for n, v in top)}); p99 per call: endpoint {st['p99_us']:.0f} us, "
                  f"capacity client {out.get('capacity_p99_ms')} ms; hub consume->commit p99 "
                  f"{out['hub_p99_record_ms']} ms; {dz['dossiers']} dossiers, {dz['created_once']} created once, "
                  f"{dz['created_twice']} twice, updates {dz['upd_min']}..{dz['upd_max']} (want {passes - 1}), "
                  f"{st['rejected']} refused ({dz['last_error']}), {st['logins']} logins")
            if not ok:
                out["error"] = "dossiers not created exactly once / updated as sent, or calls refused"
        elif not a.url:
            span = max(st["last"] - st["first"], 1e-6)
            rate = st["distinct"] / span
            out.update(hub_rate=round(rate, 1), ratio=round(rate / out["capacity_rate"], 3) if out.get("capacity_rate") else None,
                       endpoint_p50_us=st["p50_us"], endpoint_p99_us=st["p99_us"], delivered=st["distinct"],
                       duplicates=st["duplicates"], out_of_order=st["out_of_order"],
                       missing=a.records - st["distinct"])
            ok = st["distinct"] == a.records and st["out_of_order"] == 0
            print(f"resync: {rate:.0f} records/s through the hub vs {out.get('capacity_rate') or 0:.0f}/s straight "
                  f"(ratio {out['ratio']}); hub CPU {hub_cpu_us:.1f} us/record; endpoint p99 {st['p99_us']:.0f} us; "
                  f"hub consume->commit p99 {out['hub_p99_record_ms']} ms; {st['duplicates']} duplicates, "
                  f"{st['out_of_order']} out of order, {out['missing']} missing")
        else:
            ok = True
            print(f"resync to {a.url}: hub CPU {hub_cpu_us:.1f} us/record; consume->commit p99 "
                  f"{out['hub_p99_record_ms']} ms")
        if out["hub_exit"] != 0:
            ok, out["error"] = False, f"the hub exited with {out['hub_exit']} after SIGTERM (log {scratch}/hub.log)"
        if not ok and not out["error"]:
            out["error"] = "records missing or out of order"
    except Exception as e:  # reported in the JSON line, exit 1
        out["error"] = str(e)
        print(f"bench resync: {e}", file=sys.stderr)
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.kill()
                pr.wait()
        if not a.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
