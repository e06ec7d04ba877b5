#!/usr/bin/env python3
"""Runs `lienthong bench sign` in a short mode and checks that its last line is one JSON object
with every figure and ratio (not the target values: those depend on the machine).
Usage: check_bench.py LIENTHONG"""
import json
import subprocess
import sys

from tcheck import check, done

r = subprocess.run([sys.argv[1], "bench", "sign", "--seconds", "0.3"], capture_output=True, timeout=600)
out = r.stdout.decode()
print(out)
lines = out.strip().splitlines()




check("exit 0", r.returncode == 0)
try:
    j = json.loads(lines[-1]) if lines else None
except ValueError:
    j = None
check("last line is a JSON object", isinstance(j, dict))
j = j or {}
positive = ["openssl_rsa2048_sign_per_s", "lienthong_sign_per_s", "lienthong_sign_xmlsec_path_per_s",
            "lienthong_verify_per_s", "xmlsec_plain_verify_per_s", "xmlsec_naive_sign_per_s",
            "xmlsec1_cli_sign_per_s", "xmlsec1_cli_verify_per_s", "santuario_sign_per_s", "santuario_verify_per_s",
            "raw_rsa2048_sign_inprocess_per_s", "sign_vs_raw_rsa_inprocess",
            "sign_vs_openssl", "verify_vs_plain_xmlsec", "sign_vs_santuario", "verify_vs_santuario",
            "xmlsec_path_sign_vs_openssl",
            "naive_sign_vs_openssl"]
for k in positive:
    check("%s is a positive number" % k, isinstance(j.get(k), (int, float)) and j[k] > 0)
check("ratio sign_vs_openssl is consistent",
      abs(j.get("sign_vs_openssl", 0) - j.get("lienthong_sign_per_s", 0) / max(j.get("openssl_rsa2048_sign_per_s", 1), 1))
      < 0.01)
check("doc_bytes is about 4 KB", 3500 <= j.get("doc_bytes", 0) <= 5000)
done()
