#!/usr/bin/env python3
"""fuzz.http_listen_equiv: the in-process request handling that fuzz_http_listen drives is the one
a socket gets. Runs the target once over its seeds and regression inputs with
LT_FUZZ_HTTP_COMPARE=1: each request is served in-process (hub_http_serve), then written out and
sent to the same server over a socket (libmicrohttpd's parse, then its access handler); the
target aborts when the two statuses differ. Checked here as well: enough requests were compared,
and they reached every kind of answer, so the check cannot pass by comparing nothing.
Usage: http_equiv.py BINARY WORKDIR"""
import collections
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_seeds import requests  # noqa: E402

binary, work = sys.argv[1], sys.argv[2]
src = os.environ.get("LT_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
seeds = os.path.join(work, "equiv-http_listen")
os.makedirs(seeds, exist_ok=True)
for old in os.listdir(seeds):
    os.remove(os.path.join(seeds, old))
items = requests()
for i, data in enumerate(items):
    with open(os.path.join(seeds, "%05d" % i), "wb") as f:
        f.write(data)
regressions = os.path.join(src, "tests", "fuzz", "regressions", "http_listen")
env = dict(os.environ, LT_FUZZ_HTTP_COMPARE="1", LT_FUZZ_VERBOSE="1")
r = subprocess.run([binary, "-runs=0", seeds, regressions], env=env, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, text=True, errors="replace", timeout=600)
lines = r.stdout.splitlines()
if r.returncode != 0:
    print("\n".join(lines[-40:]))
    print("fuzz.http_listen_equiv: FAILED (exit %d)" % r.returncode)
    sys.exit(1)
served = [l for l in lines if " -> " in l]
compared = collections.Counter(int(m.group(1)) for l in lines for m in [re.match(r"  over the socket: (\d+)", l)] if m)
print("fuzz.http_listen_equiv: %d seeds, %d requests served, %d compared with the socket: %s" % (
    len(items), len(served), sum(compared.values()), dict(sorted(compared.items()))))
want = {200, 202, 400, 401, 404, 405, 413, 415, 503}  # 503: /later, reserved but not served yet
missing = want - set(compared)
if sum(compared.values()) < len(items) or missing:
    print("fuzz.http_listen_equiv: FAILED: too few comparisons, or none answered %s" % sorted(missing))
    sys.exit(1)
print("fuzz.http_listen_equiv: the same status in-process and over the socket for every request")
