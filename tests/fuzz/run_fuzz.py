#!/usr/bin/env python3
"""Runs one libFuzzer target for a bounded time on seeds it builds from ../shared/testdata and the
repository's corpora. Usage: run_fuzz.py NAME BINARY CORPUS_DIR SECONDS

CORPUS_DIR keeps what the fuzzer found between runs (the campaign script reuses it). A crash,
leak, timeout or sanitizer report fails the run; the input is kept as CORPUS_DIR/../crash-NAME-*
and printed, to become a regression seed under tests/fuzz/regressions/NAME/."""
import glob
import json
import os
import resource
import subprocess
import sys
import time

SRC = os.environ.get("LT_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("LT_SHARED_DIR") or os.path.join(SRC, "..", "shared")
name, binary, corpus, seconds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
seeds = os.path.join(os.path.dirname(corpus), "seeds-" + name)
os.makedirs(corpus, exist_ok=True)
os.makedirs(seeds, exist_ok=True)
MAX = 65536


def files(*patterns):
    out = []
    for p in patterns:
        out += sorted(glob.glob(p, recursive=True))
    return [f for f in out if os.path.isfile(f) and os.path.getsize(f) <= MAX]


def seed(i, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(seeds, "%05d" % i), "wb") as f:
        f.write(data[:MAX])


items = []
if name in ("xml_parse", "xmldsig_verify"):
    items = [open(f, "rb").read() for f in files(SRC + "/tests/trust/negative/*.xml",
                                                 SHARED + "/testdata/xmldsig/**/*.xml")[:400]]
elif name == "jws":
    items = [open(f, "rb").read().strip() for f in files(SRC + "/tests/jws/fixtures/*.jws")]
    items += [b'eyJhbGciOiJSUzI1NiJ9..c2ln\n{"maHoSo":"H01","soTien":150000}']
elif name == "jcs":
    items = [open(f, "rb").read() for f in files(SHARED + "/testdata/jcs/testdata/input/*.json",
                                                 SHARED + "/testdata/json-parsing/test_parsing/*.json")]
elif name == "jsonschema":
    for f in files(SHARED + "/testdata/json-schema-test-suite/tests/draft2020-12/*.json"):
        for group in json.load(open(f, encoding="utf-8")):
            for t in group.get("tests", [])[:2]:
                items.append(json.dumps([group["schema"], t["data"]]))
elif name == "jsonpath":
    for t in json.load(open(SHARED + "/testdata/jsonpath-cts/cts.json", encoding="utf-8"))["tests"]:
        if "document" in t:
            items.append(t["selector"].replace("\n", " ") + "\n" + json.dumps(t["document"]))
elif name == "mapping":
    for f in files(SRC + "/tests/mapping/**/*.json", SRC + "/tests/mapping/**/*.xml", SRC + "/tests/mapping/**/*.edxml"):
        data = open(f, "rb").read()
        items += [bytes([1]) + data] if data.lstrip().startswith(b"<") else [bytes([k]) + data for k in (0, 2, 3)]
elif name == "config":
    items = [open(f, "rb").read() for f in files(SRC + "/examples/*.yaml", SRC + "/tests/cli/lint/*.yaml")]
elif name == "http_listen":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from http_seeds import requests as http_requests
    items = http_requests()
items += [open(f, "rb").read() for f in files(SRC + "/tests/fuzz/regressions/%s/*" % name)]
for i, data in enumerate(items):
    seed(i, data)
print("fuzz.%s: %d seeds, %d in the kept corpus, %d s" % (name, len(items), len(os.listdir(corpus)), seconds), flush=True)

prefix = os.path.join(os.path.dirname(corpus), "crash-%s-" % name)
# LT_FUZZ_BUDGET=cpu (the campaign): SECONDS counts the fuzzer's CPU time, not wall time, so a
# campaign on a shared machine still gets its CPU-hour; it runs in slices until the budget is spent.
cpu_budget = os.environ.get("LT_FUZZ_BUDGET") == "cpu"


def child_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


started, runs = time.time(), 0
while True:
    left = seconds - (child_cpu() if cpu_budget else 0)
    if cpu_budget and left <= 0:
        break
    wall = max(30, min(900, int(left))) if cpu_budget else seconds
    cmd = [binary, corpus, seeds, "-max_total_time=%d" % wall, "-timeout=10", "-rss_limit_mb=2048",
           "-max_len=%d" % MAX, "-print_final_stats=1", "-artifact_prefix=" + prefix]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    lines = r.stdout.splitlines()
    stats = [l for l in lines if l.startswith("stat::")]
    if r.returncode != 0:
        print("\n".join(stats + lines[-60:]))
        for crash in glob.glob(prefix + "*"):
            print("kept input:", crash)
        print("fuzz.%s: FAILED (exit %d)" % (name, r.returncode))
        sys.exit(1)
    runs += next((int(l.split(":")[-1]) for l in stats if l.startswith("stat::number_of_executed_units")), 0)
    if not cpu_budget:
        print("\n".join(stats))
        break
summary = "fuzz.%s: %d runs, %.0f CPU-s, %.0f s wall, corpus %d, no crash, leak or timeout" % (
    name, runs, child_cpu(), time.time() - started, len(os.listdir(corpus)))
print(summary)
if os.environ.get("LT_FUZZ_LOG"):
    with open(os.environ["LT_FUZZ_LOG"], "a") as f:
        f.write(time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime()) + summary + "\n")
