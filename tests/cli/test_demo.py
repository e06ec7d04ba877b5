"""`lienthong demo` (the README's first command) plays every journey through on the embedded
transport: the two dossiers reach the portal stand-in under their lt.id as Idempotency-Key, the
malformed one lands in the DLQ, the document is signed and verified and written out; and the
DLQ it points to is readable with `lienthong dlq list`."""
import os
import re
import subprocess
import sys
import tempfile

BIN = os.environ.get("LT_BIN")
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)


d = os.path.join(tempfile.mkdtemp(prefix="lt-demo-"), "demo")
r = subprocess.run([BIN, "demo", "--dir", d], capture_output=True, text=True, timeout=300)
out = r.stdout
check(r.returncode == 0, f"demo exit code {r.returncode}: {r.stderr[-2000:]}")
for n in range(1, 5):
    check(f"Journey {n}:" in out, f"journey {n} printed")
ids = re.findall(r"-> 202, id ([0-9a-f-]{36})", out)
check(len(ids) == 2, f"two dossiers answered 202 with an id ({ids})")
for i in ids:
    check(f"Idempotency-Key {i}" in out, f"the portal got dossier {i} under its lt.id")
check(out.count("answer recorded on dvcqg.sync.result") == 2, "both portal answers recorded")
check("refused by the schema, to dossier-to-dvcqg.dlq" in out, "the malformed dossier is in the DLQ")
check("lt.sig=signed, signer CN=lienthong demo hub" in out, "the document was signed by the hub's key")
check("lt.sig=verified" in out, "the document was verified against the demo CA")
check(os.path.isfile(os.path.join(d, "dms-outbox", "cong-van-123.edxml")), "the document was written to the outbox")
check(not [l for l in out.splitlines() if re.match(r"^\s+--\s\s\S", l)], "every step has a time")
r = subprocess.run([BIN, "dlq", "list", os.path.join(d, "lienthong.yaml"), "dossier-to-dvcqg"], capture_output=True,
                   text=True, timeout=60)
check(r.returncode == 0 and "000.00.01.H22-240115-0103" in r.stdout, f"dlq list shows the refused dossier: {r.stderr}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
