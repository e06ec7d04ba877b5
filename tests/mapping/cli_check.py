#!/usr/bin/env python3
"""Exit codes and messages of `lienthong map` and `lienthong test` (design.md: 0 ok, 1 failed
check, 2 usage or configuration). Usage: cli_check.py LIENTHONG SOURCE_DIR"""
import json
import os
import subprocess
import sys
import tempfile

lt, src = sys.argv[1], os.path.abspath(sys.argv[2])
m = os.path.join(src, "mappings", "dvcqg", "dong-bo-ho-so.yaml")
good = os.path.join(src, "tests", "mapping", "dvcqg", "dossier-submitted.json")
failures, passed = [], 0


def check(name, args, rc, out_has=(), err_has=(), out_empty=False, out_lacks=(), err_lines=None):
    global passed
    p = subprocess.run([lt] + args, capture_output=True, text=True, timeout=120)
    problems = []
    problems += [f"stdout has {s!r}" for s in out_lacks if s in p.stdout]
    if err_lines is not None and len(p.stderr.splitlines()) != err_lines:
        problems.append(f"{len(p.stderr.splitlines())} lines on stderr, expected {err_lines}")
    if p.returncode != rc:
        problems.append(f"exit {p.returncode}, expected {rc}")
    problems += [f"stdout lacks {s!r}" for s in out_has if s not in p.stdout]
    problems += [f"stderr lacks {s!r}" for s in err_has if s not in p.stderr]
    if out_empty and p.stdout:
        problems.append("stdout is not empty")
    if problems:
        failures.append(f"{name}: {'; '.join(problems)}\n  stdout: {p.stdout[:400]}\n  stderr: {p.stderr[:400]}")
    else:
        passed += 1


with tempfile.TemporaryDirectory() as tmp:
    bad_input = os.path.join(tmp, "bad.json")
    with open(bad_input, "w") as f:
        f.write('{"event": "dossier.submitted", "event": "x"}')
    bad_map = os.path.join(tmp, "bad.yaml")
    with open(bad_map, "w") as f:
        f.write("input: json\noutput: json\nrules:\n  - {to: a, form: $.a}\n")
    failing = os.path.join(tmp, "failing.test.yaml")
    with open(failing, "w") as f:
        f.write(f"mapping: {m}\ncases:\n  - name: wrong\n    input_file: {good}\n"
                "    expect: '{\"madonvi\": \"000.00.01.H99\"}'\n")
    broken = os.path.join(tmp, "broken.test.yaml")
    with open(broken, "w") as f:
        f.write("cases:\n  - name: no input\n    mapping: x.yaml\n    expect: '{}'\n")

    check("map prints the output", ["map", m, good], 0, out_has=['"service": "DongBoHoSoMC"'])
    check("map --compact", ["map", "--compact", m, good], 0, out_has=['"service":"DongBoHoSoMC"'])
    check("map --help", ["map", "--help"], 0, out_has=["Usage: lienthong map"])
    p = subprocess.run([lt, "map", "--compact", m, "-"], input=open(good, "rb").read(), capture_output=True, timeout=60)
    if p.returncode == 0 and b'"service":"DongBoHoSoMC"' in p.stdout:
        passed += 1
    else:
        failures.append(f"map from standard input: exit {p.returncode}: {p.stderr[:300]!r}")
    check("map without arguments", ["map"], 2, err_has=["expected MAPPING and FILE"])
    check("map with a bad mapping", ["map", bad_map, good], 2, err_has=["bad.yaml:4:", "unknown key 'form'"],
          out_empty=True)
    check("map with a missing input file", ["map", m, os.path.join(tmp, "none.json")], 2, err_has=["none.json"])
    check("map with bad input", ["map", m, bad_input], 1, err_has=["duplicate"], out_empty=True)
    check("test --help", ["test", "--help"], 0, out_has=["Usage: lienthong test"])
    check("test without arguments", ["test"], 2, err_has=["expected a directory"])
    check("test with a failing case shows a diff", ["test", failing], 1,
          out_has=["FAIL", "output differs", '-   "madonvi": "000.00.01.H99"', '+   "madonvi": "000.00.01.H22"',
                   "0 passed, 1 failed"])
    check("test with a broken file", ["test", broken], 2, out_has=["BROKEN", "0 passed, 0 failed, 1 broken"])
    check("test -v lists passing cases", ["test", "-v", os.path.join(src, "tests", "mapping", "paygov")], 0,
          out_has=["ok   ", "13 passed, 0 failed"])
    check("bench.map --help", ["bench.map", "--help"], 0, out_has=["Usage: lienthong bench map"])

    # no wrong verdicts (issue 11): each quoted case
    def write(name, text, mode="w"):
        path = os.path.join(tmp, name)
        with open(path, mode) as f:
            f.write(text)
        return path

    vi_schema = write("vi.schema.json", json.dumps({"pattern": "^([\\p{L}\\p{N}\\p{P}\\p{Zs}]|\\n)*$"}))
    text = ("Nguyễn Văn Đức, phường Bến Nghé.\n" * 50)[:1200]
    vi_1200 = write("vi1200.json", json.dumps(text, ensure_ascii=False))
    check("a valid 1 200-character Vietnamese text matches its pattern", ["validate", vi_schema, vi_1200], 0,
          out_has=["vi1200.json: valid"])
    br_schema = write("br.schema.json", json.dumps({"pattern": "^(a|a)*\\1[cd]$"}))
    a40 = write("a40.json", json.dumps("a" * 40))
    check("a back-reference beyond the matching limit is undecided (exit 2), not invalid", ["validate", br_schema, a40],
          2, out_has=["a40.json: /: pattern: '^(a|a)*\\1[cd]$' cannot be decided on this value"])
    br_map = write("br.yaml", f"input: json\noutput: json\ninput_schema: {br_schema}\nrules:\n  - {{to: a, from: $}}\n")
    check("map: an undecided input contract is exit 2", ["map", br_map, a40], 2, err_has=["cannot be decided"],
          out_empty=True)
    as5000 = write("a5000.json", json.dumps([{"a": "a" * 5000}, {"a": "b!"}]))
    check("match() on 5 000 characters selects the node", ["query", "--compact", "$[?match(@.a,'(a|b)+')].a", as5000],
          0, out_has=['["aaaa'])
    reals = write("reals.json", '{"fee": 0.1, "sum": 0.30000000000000004, "big": 1e21}')
    check("reals print in their shortest form", ["query", "--compact", "$", reals], 0,
          out_has=['[{"fee":0.1,"sum":0.30000000000000004,"big":1e21}]'])
    bad_utf8 = write("bad.xml", b"<edXML>\xff\xfe bad</edXML>", "wb")
    status_map = os.path.join(src, "mappings", "edxml", "status-to-json.yaml")
    check("invalid UTF-8 in XML is one clean line", ["map", status_map, bad_utf8], 1, out_empty=True, err_lines=1,
          err_has=["bad.xml: line 1, column 8: invalid UTF-8 (bytes 0xFF 0xFE 0x20 0x62); the document must be UTF-8"])

    # deterministic goldens and input errors (issue 11 item 5)
    broken_json = write("broken.json", '{"dossierCode": "X"')
    check("map: a JSON parse error names the input file first", ["map", m, broken_json], 1, out_empty=True,
          err_has=[f"lienthong map: {broken_json}: line 1, column", f"(input of {m})"])
    check("map: --uuid-seed needs --now", ["map", "--uuid-seed", "3", m, good], 2, err_has=["--uuid-seed goes with --now"])
    clock = os.path.join(src, "tests", "mapping", "engine", "clock.yaml")
    code_x = write("x.json", '{"code": "X"}')
    p = subprocess.run([lt, "map", "--now", "2024-01-15T08:30:00+07:00", "--uuid-seed", "7", clock, code_x],
                       capture_output=True, text=True, timeout=60)
    golden = open(os.path.join(src, "tests", "mapping", "engine", "clock.expected.json")).read()
    if p.returncode == 0 and json.loads(p.stdout) == json.loads(golden):
        passed += 1
    else:
        failures.append(f"map --now --uuid-seed reproduces the golden: exit {p.returncode}: {p.stdout[:300]}")

for f in failures:
    print("FAIL", f)
print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
