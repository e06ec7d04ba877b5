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
                  --bin LIENTHONG --target RESYNC_TARGET

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
    p.add_argument("--keys", type=int, default=10000)
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
    a = p.parse_args(argv)
    if a.quick:
        a.records, a.keys = 5000, 1000
    if a.transport == "kafka" and not a.bootstrap:
        p.error("--transport kafka needs --bootstrap")
    os.environ["LT_TEST_TRANSPORT"] = a.transport
    if a.bootstrap:
        os.environ["LT_TEST_KAFKA_PORT"] = a.bootstrap.rsplit(":", 1)[1]
    import harness  # after LT_TEST_TRANSPORT: it picks its database or broker from it

    scratch = tempfile.mkdtemp(prefix="lt-bench-resync-")
    procs = []
    out = {"bench": "resync", "transport": a.transport, "records": a.records, "keys": a.keys,
           "concurrency": a.concurrency, "error": ""}
    ok = False
    try:
        url = a.url
        if not url:
            pf = os.path.join(scratch, "target.port")
            tp = subprocess.Popen([a.target, "serve", pf, str(a.delay_us)])
            procs.append(tp)
            for _ in range(200):
                if os.path.exists(pf):
                    break
                time.sleep(0.05)
            url = f"http://127.0.0.1:{int(open(pf).read())}"
            # 1. the endpoint's own capacity, at the hub's concurrency
            n_cap = min(a.records, 20000)
            r = subprocess.run([a.target, "load", url + "/capacity", str(n_cap), str(a.concurrency)],
                               capture_output=True, timeout=600)
            cap = json.loads(r.stdout.decode() or "{}")
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
               .replace("@URL@", url).replace("@CONCURRENCY@", str(a.concurrency)))
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
        cpu0 = cpu_s(h.pid)
        deadline = time.time() + 1800
        st = {}
        while time.time() < deadline:
            if not a.url:
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
        cpu1 = cpu_s(h.pid)
        metrics = get(f"http://127.0.0.1:{admin}/metrics")[1]
        h.send_signal(signal.SIGTERM)
        h.wait(timeout=60)
        hub_cpu_us = (cpu1 - cpu0) / a.records * 1e6
        p99 = hist_p99(metrics, "resync")
        out.update(hub_cpu_us_per_record=round(hub_cpu_us, 1),
                   hub_p99_record_ms=None if p99 is None else p99 * 1e3)
        if not a.url:
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
        if not ok:
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
