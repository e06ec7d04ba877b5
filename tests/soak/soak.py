#!/usr/bin/env python3
"""The hard-fault soak (issue 10 item 6; docs/soak.md). Not part of CI: run it as root with
scripts/soak, for an hour (the default) or a few minutes (--duration 300) as a smoke run.

What runs:
- a KRaft broker (scripts/kafka-start) whose log.dirs is a small tmpfs mounted here;
- a producer: one long-lived kcat (idempotent, acks=all, no delivery timeout) fed a numbered,
  keyed PayGov confirm callback every 1/--rate s; every --bad-every-th one has an amount the
  input contract refuses (SoTien "77.500"), so it must land in the route's DLQ and nowhere else;
- hub A (SIGKILLed every --kill-every seconds and restarted at once):
    route soak-pay: soak.in -> map paygov/confirm-to-event (schema in and out) -> sign-jws
                    (detached, RS256) -> soak.signed               (consume-transform-produce)
    sink  soak-push: soak.signed -> http -> the simulator, results on soak.push.result
- hub B (never SIGKILLed: it is the hour-long memory witness):
    route soak-verify: soak.signed -> verify-jws (detached, pinned key) -> soak.out
- tests/sim/http_sim.py as the payment receiver: it records every attempt with its
  Idempotency-Key; "one effect per key" is judged from that record.

Faults (times are fractions of --duration, so a 5-minute smoke run has all of them):
  broker SIGKILL + restart at 0.20 and 0.65; sink down (connection refused) for --sink-down s at
  0.35; sink slow (half the calls held past the sink's 2 s timeout) for 60 s at 0.48; the
  broker's tmpfs filled to the last byte at 0.80, held until the broker stops (or --full-hold s),
  then freed and the broker restarted; hub A SIGKILL every --kill-every seconds throughout.

At the end: drain, then check nothing lost or duplicated, DLQ contents, per-key order, and
hub RSS (sampled every 10 s from /proc and /metrics). Writes OUT/summary.json and
OUT/summary.txt; exit 0 when every check holds, 1 otherwise, 2 on usage errors.
"""
import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))

T0 = time.time()
EVENTS = []  # (seconds since start, what) : the fault log that goes into the summary
_ev_lock = threading.Lock()


def now():
    return time.time() - T0


def event(what):
    t = now()
    with _ev_lock:
        EVENTS.append((round(t, 1), what))
    print(f"[{time.strftime('%H:%M:%S')} +{t:7.1f}s] {what}", flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="scripts/soak", description="The one-hour hard-fault soak (docs/soak.md).")
    p.add_argument("--duration", type=float, default=3600, help="seconds of load and faults (default 3600)")
    p.add_argument("--rate", type=float, default=10, help="records per second fed to soak.in (default 10)")
    p.add_argument("--keys", type=int, default=200, help="distinct record keys (default 200)")
    p.add_argument("--bad-every", type=int, default=997, help="every Nth record is malformed (default 997)")
    p.add_argument("--kill-every", default="180..300", help="seconds between hub SIGKILLs, MIN..MAX (default 180..300)")
    p.add_argument("--sink-down", type=float, default=60, help="seconds the sink refuses connections (default 60)")
    p.add_argument("--full-hold", type=float, default=120, help="longest disk-full window in seconds (default 120)")
    p.add_argument("--tmpfs-size", default="768m", help="size of the broker's tmpfs (default 768m)")
    p.add_argument("--warmup", type=float, default=300, help="seconds of RSS warm-up, excluded from the slope (default 300)")
    p.add_argument("--rss-bound-mb", type=float, default=8,
                   help="fail if a hub's RSS grows by more than this many MB after warm-up (default 8)")
    p.add_argument("--drain", type=float, default=420, help="longest drain after the load stops (default 420)")
    p.add_argument("--port", type=int, default=int(os.environ.get("LT_TEST_KAFKA_PORT", "29792")),
                   help="broker port; the controller uses +1, SASL +2 (default $LT_TEST_KAFKA_PORT or 29792)")
    p.add_argument("--out", help="output directory (default /tmp/lt-soak-YYYYmmdd-HHMMSS)")
    p.add_argument("--seed", type=int, default=None, help="seed of the fault schedule (default: time)")
    p.add_argument("--canary", action="store_true",
                   help="write one signed record a second time straight into soak.signed half-way, to prove "
                        "the checks catch a duplicate: the run must then FAIL")
    a = p.parse_args(argv)
    try:
        lo, hi = (float(x) for x in a.kill_every.split(".."))
        assert 0 < lo <= hi
    except (ValueError, AssertionError):
        p.error(f"--kill-every {a.kill_every!r}: expected MIN..MAX seconds, e.g. 180..300")
    a.kill_lo, a.kill_hi = lo, hi
    return a


def record(i, bad):
    """The i-th PayGov confirm callback (vn-standards.md §3.4); bad ones fail the input contract."""
    v = {"LoaiBanTin": "ppConfirmTransaction", "MaLoi": "00", "MaDoiTac": "tinh-qn",
         "MaThamChieu": f"SK{i:09d}", "SoTien": "77.500" if bad else str(10000 + i % 5000 * 100),
         "MaTienTe": "VND", "MaGiaoDich": f"GD-{i}", "MaNganHang": "VCB",
         "ThoiGianGD": "20261206083000", "ThongTinGiaoDich": f"le phi ho so {i}",
         "MaXacThuc": f"{i:064x}"}
    return json.dumps(v, separators=(",", ":"))


def ref_of(value):
    """MaThamChieu (input) or reference (mapped) of a record value, or None."""
    try:
        d = json.loads(value)
    except ValueError:
        return None
    return d.get("reference") or d.get("MaThamChieu")


def delivery_gaps(times, t0, n=6):
    """The n longest pauses between calls at the receiver: (seconds, start as seconds since t0).
    Not a check (faults pause delivery by design), but a stall after a fault shows here."""
    ts = sorted(times)
    gaps = sorted(((b - x, x - t0) for x, b in zip(ts, ts[1:])), reverse=True)[:n]
    return [{"pause_s": round(g, 1), "from_s": round(f, 1)} for g, f in gaps]


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Producer:
    """One kcat that lives as long as it can: idempotent, acks=all, messages never time out, -E so
    "all brokers down" does not end it; a broker outage only delays its records and a broker
    restart never duplicates them. If it dies anyway, a new
    one takes the next records and the loss shows as produced-but-not-on-soak.in."""

    def __init__(self, bootstrap, topic, out):
        self.bootstrap, self.topic, self.out = bootstrap, topic, out
        self.proc = None
        self.restarts = 0
        self.sent = []  # (i, key, bad)
        self.stderr = open(os.path.join(out, "kcat.log"), "a")
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["kcat", "-E", "-b", self.bootstrap, "-P", "-t", self.topic, "-K", "\t", "-X", "acks=all",
             "-X", "enable.idempotence=true", "-X", "message.timeout.ms=0", "-X", "queue.buffering.max.ms=20"],
            stdin=subprocess.PIPE, stdout=self.stderr, stderr=self.stderr)

    def send(self, i, key, value, bad):
        if self.proc.poll() is not None:
            self.restarts += 1
            event(f"producer kcat exited with {self.proc.returncode}; starting another")
            self.start()
        try:
            self.proc.stdin.write(f"{key}\t{value}\n".encode())
            self.proc.stdin.flush()
            self.sent.append((i, key, bad))
        except BrokenPipeError:
            event(f"producer kcat pipe broken at record {i}")

    def close(self, timeout=300):
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            event("producer kcat did not flush within the drain window; killed")
            self.proc.kill()
            return self.proc.wait()


class Sim:
    """tests/sim/http_sim.py on a fixed port, so it can be taken down and brought back."""

    def __init__(self, out, port):
        self.out, self.port = out, port
        self.log = os.path.join(out, "sim.log")
        self.proc = None

    def start(self):
        pf = os.path.join(self.out, "sim.port")
        if os.path.exists(pf):
            os.unlink(pf)
        self.proc = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/sim/http_sim.py"), "--port",
                                     str(self.port), "--port-file", pf, "--log", self.log],
                                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.out, "sim.err"), "a"))
        for _ in range(200):
            if os.path.exists(pf):
                return
            time.sleep(0.05)
        raise RuntimeError("http_sim did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def config(self, **kw):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/_sim/config", data=json.dumps(kw).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())


def hub_a_config(bootstrap, sim_port):
    keys = os.path.join(SRC, "tests/trust/fixtures/keys")
    return f"""hub:
  transport: kafka
  instance: soak-a
  kafka: {{ bootstrap: '{bootstrap}', session_timeout: 6s }}
  admin: {{ listen: '@ADMIN@' }}
keys:
  hub: {{ key: '{keys}/hub-key.pem', cert: '{keys}/hub-cert.pem' }}
connectors:
  - name: soak-push
    type: http
    from: soak.signed
    result: soak.push.result
    url: 'http://127.0.0.1:{sim_port}/payments/${{key}}'
    timeout: 2s
    breaker: {{ failures: 5, open_for: 1s }}
    errors: {{ retries: 1000, backoff: 50ms..5s }}
    batch: {{ max_wait: 50ms }}
routes:
  - name: soak-pay
    from: soak.in
    to: soak.signed
    steps:
      - map: '{SRC}/mappings/paygov/confirm-to-event.yaml'
      - set-header: {{ lt.type: payment.confirmed }}
      - sign-jws: {{ mode: detached, x5c: false, kid: hub }}
    errors: {{ retries: 1000, backoff: 100ms..5s }}
"""


def hub_b_config(bootstrap):
    keys = os.path.join(SRC, "tests/trust/fixtures/keys")
    return f"""hub:
  transport: kafka
  instance: soak-b
  kafka: {{ bootstrap: '{bootstrap}', session_timeout: 6s }}
  admin: {{ listen: '@ADMIN@' }}
routes:
  - name: soak-verify
    from: soak.signed
    to: soak.out
    steps:
      - verify-jws: {{ mode: detached, keys: {{ hub: '{keys}/hub-cert.pem' }} }}
    errors: {{ retries: 1000, backoff: 100ms..5s }}
"""


def linear_slope(points):
    """Least-squares slope of (t, y) points, per second; 0 with fewer than 2."""
    if len(points) < 2:
        return 0.0
    mt = statistics.fmean(t for t, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (y - my) for t, y in points) / den if den else 0.0


def main(argv):
    a = parse_args(argv)
    if os.geteuid() != 0:
        print("scripts/soak: the broker's disk-full fault needs a tmpfs mount, so the soak runs as root "
              "(sudo scripts/soak ...); nothing was started.", file=sys.stderr)
        return 2
    out = a.out or time.strftime("/tmp/lt-soak-%Y%m%d-%H%M%S")
    os.makedirs(out, exist_ok=True)
    out = os.path.abspath(out)

    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # A background job starts with SIGINT ignored; either signal stops the soak and cleans up.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    os.environ["TMPDIR"] = out  # harness.Hub makes its directories there
    os.environ["LT_TEST_KAFKA_PORT"] = str(a.port)
    # The group coordinator's joins, syncs and expiries at INFO in broker-history.log: a stall
    # after a broker restart then names the member it waited for (docs/soak.md).
    os.environ["LT_KAFKA_LOG_INFO"] = "org.apache.kafka.coordinator.group"
    import harness  # after the environment is set
    seed = a.seed if a.seed is not None else int(time.time())
    rnd = random.Random(seed)
    bdir = os.path.join(out, "broker")
    data = os.path.join(bdir, "data")
    os.makedirs(data, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={a.tmpfs_size}", "lt-soak", data],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"scripts/soak: mounting a tmpfs on {data} failed: {r.stderr.strip()}", file=sys.stderr)
        return 2
    event(f"soak start: duration {a.duration:.0f}s, rate {a.rate}/s, seed {seed}, tmpfs {a.tmpfs_size} on {data}, "
          f"out {out}")
    broker = harness.Broker(a.port, bdir)
    bootstrap = broker.bootstrap

    def keep_broker_logs(why):
        """kafka-start truncates the broker's stdout.log: keep what this incarnation wrote."""
        text = ""
        for name in ("stdout.log", "broker.log"):
            try:
                with open(os.path.join(bdir, name), errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        with open(os.path.join(out, "broker-history.log"), "a") as f:
            f.write(f"===== +{now():.1f}s {why}\n{text}")
        return text
    sim = Sim(out, harness.free_port())
    hub_a = hub_b = prod = None
    stop = threading.Event()
    rss = []  # {"t", "hub", "incarnation", "rss_kb", "metrics_rss_kb"}
    state = {"broker_down": False, "full": False, "hub_kills": 0, "unexpected": [], "expected_a_dead": False}
    lock = threading.Lock()
    commit = subprocess.run(["git", "-C", SRC, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    summary = {"seed": seed, "args": {k: v for k, v in vars(a).items()}, "out": out, "commit": commit,
               "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "nproc": os.cpu_count()}
    loads = []
    try:
        broker.start()
        event("broker up")
        sim.start()
        hub_a = harness.Hub(hub_a_config(bootstrap, sim.port), "soak-a")
        hub_b = harness.Hub(hub_b_config(bootstrap), "soak-b")
        hub_a.start()
        hub_b.start()
        hub_a.wait_ready(120)
        hub_b.wait_ready(120)
        event(f"hubs ready (A pid {hub_a.proc.pid}, B pid {hub_b.proc.pid}); sim on {sim.port}")
        prod = Producer(bootstrap, "soak.in", out)

        def produce_loop():
            i, t_next = 0, time.time()
            while not stop.is_set() and now() < a.duration:
                bad = a.bad_every > 0 and i % a.bad_every == a.bad_every // 2
                prod.send(i, f"TK-{i % a.keys:04d}", record(i, bad), bad)
                i += 1
                t_next += 1.0 / a.rate
                time.sleep(max(0.0, t_next - time.time()))

        def sample_loop():
            while not stop.is_set():
                for name, h in (("A", hub_a), ("B", hub_b)):
                    if h.alive():
                        kb = rss_kb(h.proc.pid)
                        m = h.metrics()
                        mk = m.get("lienthong_process_resident_memory_bytes")
                        rss.append({"t": round(now(), 1), "hub": name, "incarnation": h.starts, "rss_kb": kb,
                                    "metrics_rss_kb": int(mk // 1024) if mk else None})
                loads.append(os.getloadavg()[0])
                stop.wait(10)

        def watchdog():
            """A hub that dies without being killed is a crash: note it and restart it. The broker
            dying outside a broker fault is noted and restarted too."""
            while not stop.is_set():
                for name, h in (("A", hub_a), ("B", hub_b)):
                    with lock:
                        expected = name == "A" and state["expected_a_dead"]
                    if not h.alive() and not expected:
                        rc = h.proc.returncode
                        state["unexpected"].append({"t": round(now(), 1), "what": f"hub {name} exited {rc}",
                                                    "log": h.tail(30)})
                        event(f"UNEXPECTED: hub {name} exited with {rc}; restarting. Log tail:\n{h.tail(15)}")
                        h.start()
                with lock:
                    bdown = state["broker_down"] or state["full"]
                pid = open(os.path.join(bdir, "pid")).read().strip() if os.path.exists(os.path.join(bdir, "pid")) else None
                if not bdown and pid and not os.path.exists(f"/proc/{pid}"):
                    state["unexpected"].append({"t": round(now(), 1), "what": "broker exited"})
                    event("UNEXPECTED: broker exited; restarting")
                    keep_broker_logs("unexpected exit")
                    broker.start()
                stop.wait(2)

        def hub_killer():
            while not stop.wait(rnd.uniform(a.kill_lo, a.kill_hi)):
                if now() >= a.duration:
                    return
                with lock:
                    state["expected_a_dead"] = True
                hub_a.kill()
                with lock:
                    state["hub_kills"] += 1
                event(f"SIGKILL hub A #{state['hub_kills']} (incarnation {hub_a.starts}); restarting")
                hub_a.start()
                with lock:
                    state["expected_a_dead"] = False

        def at(frac):
            t = frac * a.duration
            while now() < t and not stop.is_set():
                stop.wait(min(1.0, t - now()))
            return not stop.is_set()

        def broker_kill():
            with lock:
                state["broker_down"] = True
            broker.stop(kill=True)
            event("broker SIGKILL")
            stop.wait(15)
            keep_broker_logs("after SIGKILL")
            broker.start()
            with lock:
                state["broker_down"] = False
            event("broker restarted after SIGKILL")

        def disk_full():
            with lock:
                state["full"] = True
            filler = os.path.join(data, "filler")
            n = 0
            with open(filler, "wb") as f:
                block = b"\0" * (1 << 20)
                try:
                    while True:
                        f.write(block)
                        f.flush()
                        n += 1
                except OSError as e:
                    event(f"disk full: tmpfs filled with {n} MiB ({e.strerror}); the broker's next write fails")
            pidf = os.path.join(bdir, "pid")
            pid = open(pidf).read().strip()
            t_full = now()
            died = None
            while now() - t_full < a.full_hold and not stop.is_set():
                if not os.path.exists(f"/proc/{pid}"):
                    died = round(now() - t_full, 1)
                    break
                time.sleep(0.5)
            os.unlink(filler)
            if died is not None:
                event(f"broker stopped by itself {died}s after the disk filled; space freed, restarting it")
                stop.wait(10)
            else:
                event(f"broker still running {a.full_hold:.0f}s after the disk filled; space freed, restarting it")
                broker.stop()
            text = keep_broker_logs("after disk-full")
            summary["disk_full_broker_log"] = [l for l in text.splitlines()
                                               if any(w in l.lower() for w in ("log dir", "no space", "shut", "halt",
                                                                              "fatal", "error"))][:12]
            summary["disk_full"] = {"filled_mib": n, "broker_exited_after_s": died}
            broker.start()
            with lock:
                state["full"] = False
            event("broker restarted after disk-full")

        def faults():
            if not at(0.20):
                return
            broker_kill()
            if not at(0.35):
                return
            event(f"sink down: simulator killed for {a.sink_down:.0f}s (connection refused)")
            sim.stop()
            stop.wait(a.sink_down)
            sim.start()
            event("sink back")
            if not at(0.48):
                return
            sim.config(hang_rate=0.5, hang_for=2.5)
            event("sink slow: half the calls held 2.5 s (past the sink's 2 s timeout) for 60 s")
            stop.wait(60)
            sim.config(hang_rate=0.0)
            event("sink fast again")
            if not at(0.65):
                return
            broker_kill()
            if not at(0.80):
                return
            disk_full()

        def canary():
            if not at(0.5):
                return
            recs = harness.consume(bootstrap, "soak.signed")
            if recs:
                r0 = recs[0]
                harness.produce(bootstrap, "soak.signed", [(r0["key"], r0["value"])],
                                extra=["-H", f"lt.jws={r0['headers'].get('lt.jws', '')}"])
                summary["canary"] = ref_of(r0["value"])
                event(f"canary: {summary['canary']} written a second time into soak.signed")

        threads = [threading.Thread(target=f, daemon=True) for f in (produce_loop, sample_loop, watchdog, hub_killer)]
        if a.canary:
            threads.append(threading.Thread(target=canary, daemon=True))
        for t in threads:
            t.start()
        faults()
        threads[0].join()
        event(f"load stopped: {len(prod.sent)} records sent; draining")
        rc = prod.close(timeout=a.drain)
        event(f"producer flushed (kcat exit {rc})")

        # Drain: until every output holds what it should, or the drain window passes.
        landed = [ref_of(x["value"]) for x in harness.consume(bootstrap, "soak.in", timeout=300)]
        bad_refs = {f"SK{i:09d}" for i, _, b in prod.sent if b}
        sent_bad = sum(1 for r in landed if r in bad_refs)
        sent_good = len(landed) - sent_bad
        event(f"{len(landed)} records on soak.in ({sent_bad} malformed)")
        t_drain = time.time()

        def sim_keys():
            return {e["headers"].get("idempotency-key") for e in map(json.loads, harness.lines(sim.log))
                    if e["answer"] < 300}

        while time.time() - t_drain < a.drain:
            n_out = len(harness.consume(bootstrap, "soak.out"))
            n_dlq = len(harness.consume(bootstrap, "soak-pay.dlq"))
            n_sim = len(sim_keys())
            if n_out >= sent_good and n_dlq >= sent_bad and n_sim >= sent_good:
                break
            time.sleep(5)
        stop.wait(5)  # anything late (a duplicate) would show now
        event(f"drained in {time.time() - t_drain:.0f}s")
        stop.set()
        for t in threads[1:]:
            t.join(timeout=15)
        try:
            summary.update(check(a, harness, bootstrap, prod, sim, hub_a, hub_b, rss, state))
        except Exception:  # a bug in the checks must not lose the run's records
            import traceback
            summary["check_error"] = traceback.format_exc()
            print(summary["check_error"], file=sys.stderr, flush=True)
    finally:
        stop.set()
        for h in (hub_a, hub_b):
            if h is not None and h.alive():
                rcode, took = h.terminate()
                event(f"hub {h.dir}: SIGTERM exit {rcode} in {took}s")
        if prod is not None and prod.proc.poll() is None:
            prod.proc.kill()
            prod.proc.wait()
        sim.stop()
        broker.stop()
        subprocess.run(["umount", data])
        event("stopped everything; tmpfs unmounted")
    summary["events"] = EVENTS
    if loads:
        summary["load1"] = {"min": min(loads), "mean": round(statistics.fmean(loads), 2), "max": max(loads)}
    summary["rss_samples"] = rss
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    text = human(summary)
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write(text)
    print(text)
    return 0 if summary.get("ok") else 1


def check(a, harness, bootstrap, prod, sim, hub_a, hub_b, rss, state):
    res = {"checks": []}

    def ok(cond, what):
        res["checks"].append({"ok": bool(cond), "what": what})
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        return cond

    sent = {f"SK{i:09d}": (k, bad) for i, k, bad in prod.sent}
    topics = {}
    for t in ("soak.in", "soak.signed", "soak.out", "soak.push.result", "soak-pay.dlq", "soak-verify.dlq",
              "soak-push.dlq"):
        topics[t] = harness.consume(bootstrap, t, timeout=300)
    counts = {t: len(v) for t, v in topics.items()}
    res["counts"] = counts
    res["sent"] = {"total": len(sent), "malformed": sum(1 for _, b in sent.values() if b),
                   "producer_restarts": prod.restarts}

    def multiset(recs):
        m = {}
        for rec in recs:
            ref = ref_of(rec["value"])
            m[ref] = m.get(ref, 0) + 1
        return m

    m_in = multiset(topics["soak.in"])
    # The test rig's own producer: judged apart from the hub. The hub is judged against what
    # landed on soak.in (a record the producer lost never reached the hub).
    ok(set(m_in) == set(sent) and all(v == 1 for v in m_in.values()),
       f"producer (test rig): soak.in holds every sent record once ({len(m_in)} distinct of {len(sent)} sent, "
       f"{sum(v - 1 for v in m_in.values())} extra)")
    good = {r for r in m_in if not sent.get(r, (None, False))[1]}
    bad = {r for r in m_in if sent.get(r, (None, False))[1]}
    res["landed"] = {"valid": len(good), "malformed": len(bad)}
    for t in ("soak.signed", "soak.out"):
        m = multiset(topics[t])
        # An input record that landed twice (producer retry) may rightly come out twice.
        dup_in = sum(m_in[r] - 1 for r in m if r in m_in)
        missing = good - set(m)
        dup = sum(v - 1 for v in m.values()) - dup_in
        foreign = set(m) - good
        ok(not missing and not dup and not foreign and counts[t] == len(good) + dup_in,
           f"{t} (read_committed) holds every valid record exactly once: {counts[t]} records for {len(good)}; "
           f"missing {len(missing)}, duplicated {dup}, unexpected {len(foreign)}")
    ok(all(r["headers"].get("lt.sig") == "verified" for r in topics["soak.out"]),
       "every soak.out record has lt.sig=verified")
    # Per-key order: the references of one key grow along the partition.
    for t in ("soak.signed", "soak.out"):
        last, bad_order = {}, 0
        for rec in sorted(topics[t], key=lambda r: (r["partition"], r["offset"])):
            ref = ref_of(rec["value"])
            if rec["key"] in last and ref < last[rec["key"]]:
                bad_order += 1
            last[rec["key"]] = ref
        ok(bad_order == 0, f"{t}: per-key order kept ({bad_order} records behind an earlier one)")
    dlq = multiset(topics["soak-pay.dlq"])
    ok(set(dlq) == bad and all(v == 1 for v in dlq.values()),
       f"soak-pay.dlq holds exactly the {len(bad)} malformed records, once each ({counts['soak-pay.dlq']} records)")
    ok(all(r["headers"].get("lt.error.stage", "").startswith("map") or "map" in r["headers"].get("lt.error.reason", "")
           for r in topics["soak-pay.dlq"]), "their DLQ reason names the map step")
    ok(counts["soak-verify.dlq"] == 0, f"soak-verify.dlq is empty ({counts['soak-verify.dlq']})")
    ok(counts["soak-push.dlq"] == 0, f"soak-push.dlq is empty ({counts['soak-push.dlq']})")

    # The sink: every attempt the receiver saw, by Idempotency-Key.
    attempts = [json.loads(l) for l in harness.lines(sim.log) if l.strip()]
    attempts = [e for e in attempts if e["path"].startswith("/payments/")]
    by_key = {}
    for e in attempts:
        by_key.setdefault(e["headers"].get("idempotency-key"), []).append(e)
    effects = {}  # reference -> idempotency keys that had a 2xx
    bodies_differ = 0
    for k, es in by_key.items():
        if len({e.get("body") for e in es}) != 1:
            bodies_differ += 1
        for e in es:
            if e["answer"] < 300:
                effects.setdefault(ref_of(e.get("body", "")), set()).add(k)
    delivered = set(effects)
    twice = {r for r, ks in effects.items() if len(ks) > 1}
    ok2 = [e for e in attempts if e["answer"] < 300]
    redeliveries = len(ok2) - len({e["headers"].get("idempotency-key") for e in ok2})
    res["sink"] = {"attempts": len(attempts), "answered_2xx": len(ok2), "held": sum(1 for e in attempts if e.get("hang")),
                   "distinct_keys": len(by_key), "same_key_redeliveries_after_2xx": redeliveries,
                   "retries_total": len(attempts) - len(by_key)}
    res["longest_delivery_pauses"] = delivery_gaps([e["time"] for e in attempts], T0)
    ok(delivered == good, f"the sink delivered every valid record: {len(delivered & good)} of {len(good)} "
       f"(missing {len(good - delivered)}, unexpected {len(delivered - good)})")
    ok(not twice, f"one effect per record: {len(twice)} records reached the receiver under two idempotency keys")
    ok(bodies_differ == 0, f"every idempotency key came with one body ({bodies_differ} differ)")
    m_res = {}
    for rec in topics["soak.push.result"]:
        m_res[rec["headers"].get("lt.parent")] = m_res.get(rec["headers"].get("lt.parent"), 0) + 1
    ok(counts["soak.push.result"] == len(good) and len(m_res) == len(good),
       f"soak.push.result holds one result per delivered record ({counts['soak.push.result']} records, "
       f"{len(m_res)} distinct parents, {len(good)} expected)")
    # Per key, first successful deliveries in reference order.
    first = {}
    for e in sorted(ok2, key=lambda e: e["time"]):
        ref = ref_of(e.get("body", ""))
        first.setdefault(ref, (e["time"], e["path"]))
    last, behind = {}, 0
    for ref, (t, path) in sorted(first.items(), key=lambda kv: kv[1][0]):
        if path in last and ref < last[path]:
            behind += 1
        last[path] = ref
    ok(behind == 0, f"sink: per-key order of first deliveries kept ({behind} behind)")

    # Crashes.
    ok(not state["unexpected"], f"no unexpected exits ({len(state['unexpected'])}: "
       f"{[u['what'] for u in state['unexpected']]})")
    res["unexpected"] = state["unexpected"]
    res["hub_kills"] = state["hub_kills"]
    ok(state["hub_kills"] >= max(1, int(a.duration / a.kill_hi) - 1), f"hub A SIGKILLed {state['hub_kills']} times")

    # Memory.
    mem = {}
    for name in ("A", "B"):
        s = [x for x in rss if x["hub"] == name and x["rss_kb"]]
        incs = {}
        for x in s:
            incs.setdefault(x["incarnation"], []).append(x)
        per_inc = [{"incarnation": k, "from_s": v[0]["t"], "to_s": v[-1]["t"], "start_mb": round(v[0]["rss_kb"] / 1024, 1),
                    "end_mb": round(v[-1]["rss_kb"] / 1024, 1), "max_mb": round(max(x["rss_kb"] for x in v) / 1024, 1)}
                   for k, v in sorted(incs.items())]
        slices = []
        width = max(60.0, a.duration / 6)
        t = 0.0
        while t < (s[-1]["t"] if s else 0):
            v = [x for x in s if t <= x["t"] < t + width]
            if v:
                slices.append({"from_s": t, "to_s": t + width, "start_mb": round(v[0]["rss_kb"] / 1024, 1),
                               "end_mb": round(v[-1]["rss_kb"] / 1024, 1),
                               "max_mb": round(max(x["rss_kb"] for x in v) / 1024, 1)})
            t += width
        mem[name] = {"incarnations": per_inc, "slices": slices}
    # Witness B: one incarnation for the whole run (unless it crashed): slope after warm-up.
    b = [x for x in rss if x["hub"] == "B" and x["rss_kb"] and x["incarnation"] == 1 and x["t"] >= a.warmup]
    if len(b) >= 6:
        slope = linear_slope([(x["t"], x["rss_kb"] / 1024) for x in b]) * 3600
        k = max(1, len(b) // 10)
        head = statistics.median(x["rss_kb"] for x in b[:k]) / 1024
        tail = statistics.median(x["rss_kb"] for x in b[-k:]) / 1024
        mem["B"]["after_warmup"] = {"samples": len(b), "head_mb": round(head, 1), "tail_mb": round(tail, 1),
                                    "growth_mb": round(tail - head, 1), "slope_mb_per_hour": round(slope, 2)}
        ok(tail - head <= a.rss_bound_mb, f"hub B (never killed) RSS after warm-up: {head:.1f} -> {tail:.1f} MB "
           f"(growth {tail - head:+.1f} MB, bound {a.rss_bound_mb} MB; slope {slope:+.2f} MB/h)")
    else:
        ok(False, f"hub B: too few RSS samples after warm-up ({len(b)}) to judge memory")
    # Hub A: each incarnation starts afresh; its later peaks must not climb above the first ones.
    pa = [i["max_mb"] for i in mem["A"]["incarnations"] if i["to_s"] - i["from_s"] >= 30]
    if len(pa) >= 2:
        ok(max(pa) - min(pa) <= a.rss_bound_mb, f"hub A peak RSS per incarnation within {a.rss_bound_mb} MB "
           f"({min(pa)}..{max(pa)} MB over {len(pa)} incarnations)")
    res["memory"] = mem
    res["ok"] = all(c["ok"] for c in res["checks"])
    return res


def human(s):
    out = [f"soak: {'PASS' if s.get('ok') else 'FAIL'}  ({s['out']}, seed {s['seed']}, "
           f"duration {s['args']['duration']:.0f}s at {s['args']['rate']}/s)",
           f"started {s['started_utc']} UTC, commit {s['commit']}, {s['nproc']} CPUs, load average (1 min) "
           f"{s.get('load1')}"]
    if "counts" in s:
        out.append(f"sent {s['sent']['total']} ({s['sent']['malformed']} malformed); landed on soak.in "
                   f"{s['landed']['valid']} valid + {s['landed']['malformed']} malformed; "
                   + ", ".join(f"{t} {n}" for t, n in s["counts"].items()))
        out.append("sink: " + ", ".join(f"{k} {v}" for k, v in s["sink"].items()))
        out.append(f"hub A SIGKILLs: {s['hub_kills']}")
        out.append("longest pauses at the receiver: " + ", ".join(
            f"{g['pause_s']}s from +{g['from_s']}s" for g in s.get("longest_delivery_pauses", [])))
    for name, m in s.get("memory", {}).items():
        out.append(f"hub {name} RSS slices (MB): " + "; ".join(
            f"{x['from_s'] / 60:.0f}-{x['to_s'] / 60:.0f} min {x['start_mb']}/{x['end_mb']}/{x['max_mb']}"
            for x in m["slices"]) + "  (start/end/max)")
        if "after_warmup" in m:
            out.append(f"hub {name} after warm-up: {m['after_warmup']}")
        if name == "A":
            out.append("hub A per incarnation max MB: " + " ".join(str(i["max_mb"]) for i in m["incarnations"]))
    out.append("faults:")
    out += [f"  +{t:7.1f}s {w.splitlines()[0]}" for t, w in s["events"]]
    if s.get("disk_full_broker_log"):
        out.append("broker log at disk-full:")
        out += ["  " + l[:240] for l in s["disk_full_broker_log"]]
    out.append("checks:")
    out += [f"  {'ok  ' if c['ok'] else 'FAIL'} {c['what']}" for c in s.get("checks", [])]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
