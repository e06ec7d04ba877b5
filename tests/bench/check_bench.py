#!/usr/bin/env python3
"""Checks `lienthong bench passthrough`.

--usage: bad options exit 2 with a message naming the option (no broker needed).
--quick: a --quick run against a broker the bench starts itself: exit 0, the last stdout line
is one JSON object with every figure, the hub's output held every record exactly once, the
figures agree with each other, and the bench stopped its broker afterwards. The targets
(ratio, p99, RSS) are reported, not asserted: they depend on the machine.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)


def usage(exe):
    cases = [
        (["bench", "passthrough", "--messages", "0"], "--messages"),
        (["bench", "passthrough", "--messages", "12x"], "--messages"),
        (["bench", "passthrough", "--size", "10"], "--size"),
        (["bench", "passthrough", "--partitions"], "--partitions"),
        (["bench", "passthrough", "--hub-property", "novalue"], "--hub-property"),
        (["bench", "passthrough", "--latency-rate", "5"], "--latency-rate"),
        (["bench", "passthrough", "--frobnicate"], "--frobnicate"),
        (["bench", "no-such-bench"], "no-such-bench"),
        (["bench"], "NAME"),
    ]
    for args, needle in cases:
        p = subprocess.run([exe] + args, capture_output=True, text=True, timeout=30)
        check(p.returncode == 2, "%s: exit %d, want 2" % (" ".join(args), p.returncode))
        check(needle in p.stderr, "%s: stderr does not name %s: %r" % (" ".join(args), needle, p.stderr))
        check(p.stdout == "", "%s: wrote to stdout on a usage error" % " ".join(args))
    p = subprocess.run([exe, "bench.passthrough", "--help"], capture_output=True, text=True, timeout=30)
    check(p.returncode == 0 and "--bootstrap" in p.stdout and "--quick" in p.stdout, "bench.passthrough --help")


NUMBERS = ["messages", "size", "keys", "partitions", "rounds", "warmup_messages", "produce_msgs_per_s",
           "hub_msgs_per_s", "hub_mb_per_s", "hub_cpu_us_per_msg", "kcat_msgs_per_s", "kcat_mb_per_s",
           "kcat_cpu_us_per_msg", "ratio", "hub_steady_msgs_per_s", "kcat_steady_msgs_per_s", "steady_ratio",
           "latency_rate_msgs_per_s", "latency_messages", "p50_ms", "p99_ms",
           "p999_ms", "max_ms", "to_hub_p50_ms", "to_hub_p99_ms", "peak_rss_mib", "kcat_consumer_rss_mib", "kcat_producer_rss_mib",
           "batch_max_messages",
           "batch_max_wait_ms", "checked_messages", "duplicates", "missing", "corrupt", "order_violations",
           "kcat_duplicates", "kcat_missing"]
POSITIVE = ["hub_msgs_per_s", "hub_mb_per_s", "kcat_msgs_per_s", "kcat_mb_per_s", "ratio", "latency_rate_msgs_per_s",
            "latency_messages", "p50_ms", "p99_ms", "peak_rss_mib", "steady_ratio", "kcat_consumer_rss_mib", "kcat_producer_rss_mib"]
PASS = ["msgs_per_s", "mb_per_s", "seconds", "tail_ms", "cpu_us_per_msg", "steady_msgs_per_s"]


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def quick(exe):
    proc = subprocess.Popen([exe, "bench", "passthrough", "--quick"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=780)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the bench stops its hub and broker on SIGTERM
        out, err = proc.communicate(timeout=90)
        check(False, "the bench did not finish within 780 s")
    sys.stderr.write(err)
    sys.stdout.write(out)
    check(proc.returncode == 0, "exit %d, want 0" % proc.returncode)
    lines = [l for l in out.splitlines() if l.strip()]
    check(len(lines) >= 2, "no summary before the JSON line")
    try:
        d = json.loads(lines[-1]) if lines else None
    except ValueError as e:
        d = None
        check(False, "last line is not JSON: %s" % e)
    check(isinstance(d, dict), "last line is not a JSON object")
    if not isinstance(d, dict):
        return
    check(d.get("bench") == "passthrough", "bench field")
    for k in NUMBERS:
        check(isinstance(d.get(k), (int, float)) and not isinstance(d.get(k), bool), "%s missing or not a number" % k)
    for k in POSITIVE:
        check(isinstance(d.get(k), (int, float)) and d.get(k) > 0, "%s = %r, want > 0" % (k, d.get(k)))
    if failures:
        return
    check(d["error"] is None, "error: %r" % d["error"])
    check(d["broker"] == "started", "broker %r, want started (no --bootstrap given)" % d["broker"])
    check(d["messages"] == 20000 and d["size"] == 1024, "--quick is 20000 records of 1024 bytes")
    check(d["exactly_once"] is True, "exactly_once is not true")
    for k in ["duplicates", "missing", "corrupt", "order_violations", "kcat_duplicates", "kcat_missing"]:
        check(d[k] == 0, "%s = %d, want 0" % (k, d[k]))
    want_checked = d["warmup_messages"] + d["messages"] + d["latency_messages"]
    check(d["checked_messages"] == want_checked, "checked %d records, sent %d" % (d["checked_messages"], want_checked))
    check(d["hub_exit"] == "exit 0", "hub exit: %s" % d["hub_exit"])
    # The figures must agree with each other (rounding aside).
    check(abs(d["ratio"] - d["hub_msgs_per_s"] / d["kcat_msgs_per_s"]) < 0.002, "ratio != hub/kcat")
    check(abs(d["hub_mb_per_s"] - d["hub_msgs_per_s"] * d["size"] / 1e6) < 0.02, "hub MB/s != msgs/s x size")
    rounds = d.get("per_round")
    check(isinstance(rounds, list) and len(rounds) == d["rounds"] == 1, "per_round holds the one round")
    if isinstance(rounds, list) and rounds:
        r = rounds[0]
        for side in ("hub", "kcat"):
            check(all(isinstance(r.get(side, {}).get(k), (int, float)) for k in PASS), "per_round[0].%s fields" % side)
            if failures:
                return
            check(abs(r[side]["msgs_per_s"] * r[side]["seconds"] - d["messages"]) < d["messages"] * 0.01,
                  "%s msgs/s x seconds != messages" % side)
            check(0 <= r[side]["tail_ms"] <= r[side]["seconds"] * 1000, "%s tail outside its window" % side)
        check(abs(r["hub"]["msgs_per_s"] - d["hub_msgs_per_s"]) < 0.02, "one round: the median is that round")
    check(d["p50_ms"] <= d["p99_ms"] <= d["p999_ms"] <= d["max_ms"], "latency quantiles out of order")
    check(d["to_hub_p50_ms"] <= d["p50_ms"], "the part before the commit exceeds the whole latency")
    half = d["hub_msgs_per_s"] / 2
    check(0.5 * half < d["latency_rate_msgs_per_s"] < 1.1 * half,
          "latency phase ran at %.0f msgs/s, not about half of %.0f" % (d["latency_rate_msgs_per_s"], half * 2))
    check(isinstance(d.get("load_avg"), list) and len(d["load_avg"]) == 2 and d.get("cpus", 0) >= 1, "load_avg, cpus")
    check(isinstance(d.get("targets_met"), dict) and set(d["targets_met"]) == {"ratio", "p99", "rss"},
          "targets_met")
    # The bench started its broker: it must have stopped it, and removed its scratch directory.
    m = re.search(r"starting a Kafka broker on 127\.0\.0\.1:(\d+) \((.*)/broker\)", err)
    check(m is not None, "stderr does not say which broker the bench started")
    if m:
        check(not port_open(int(m.group(1))), "the bench's broker still listens on %s" % m.group(1))
        check(not os.path.exists(m.group(2)), "scratch directory %s left behind" % m.group(2))


def main():
    mode, exe = sys.argv[1], sys.argv[2]
    if mode == "--usage":
        usage(exe)
    else:
        quick(exe)
    if failures:
        print("%d check(s) failed" % len(failures), file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
