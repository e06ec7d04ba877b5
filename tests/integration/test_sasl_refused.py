"""kafka_sasl.refused: the hub on the test broker's TLS + SASL listener (scripts/kafka-start) when
the login is right and when it is not.

- `lienthong version` names librdkafka 2.8.0 and the binary links no shared librdkafka (it is the
  static build from scripts/bootstrap; Debian 12's 2.0.2 cannot SCRAM against Kafka 4).
- SCRAM-SHA-512 as `lienthong` (a SCRAM-only user: PLAIN refuses that name) moves records.
- A wrong password: an error naming the mechanism, the user and the broker; the hub stays up, not
  ready, nearly idle (librdkafka retries at its reconnect backoff, no spinning), its log short,
  and SIGTERM still exits 0. Then a mechanism the broker does not enable (SCRAM-SHA-256), named.
- PLAIN as `lienthong_plain` still works; PLAIN as `lienthong` is refused.
Neither the right password nor the wrong one appears in any log or file (Checks.done() greps for
the right one)."""
import os
import re
import subprocess
import tempfile
import time

from harness import (BIN, PORT, Checks, Hub, log, produce, route_config, sasl_security, unique, wait_count,
                     wait_until)

c = Checks("sasl_refused")
plain = f"127.0.0.1:{PORT}"
sasl = f"127.0.0.1:{PORT + 2}"

r = subprocess.run([BIN, "version"], capture_output=True, text=True)
c.ok(r.returncode == 0 and "librdkafka 2.8.0" in r.stdout, f"`lienthong version` names librdkafka 2.8.0: {r.stdout!r}")
r = subprocess.run(["ldd", BIN], capture_output=True, text=True)
c.ok(r.returncode == 0 and "librdkafka" not in r.stdout, "the binary links no shared librdkafka (static 2.8.0)")


def hub_on(security, name):
    src, dst, route = unique(f"{name}.in"), unique(f"{name}.out"), unique(name)
    # Another bootstrap than the plaintext one gets no `security:` from the harness: add this one.
    cfg = route_config(route, src, dst, bootstrap=sasl, instance=unique(name))
    at = re.compile(r"(kafka: \{ bootstrap: '" + re.escape(sasl) + r"'[^}\n]*?) \}")
    cfg = at.sub(lambda m: f"{m.group(1)}, security: {security} }}", cfg, count=1)
    c.ok(f"security: {security}" in cfg, f"{name}: the hub's config has the security settings")
    return Hub(cfg, name), src, dst


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def moves_records(security, name):
    hub, src, dst = hub_on(security, name)
    hub.start()
    hub.wait_ready()
    produce(plain, src, [(f"k{i % 3}", f"{name}-{i}") for i in range(30)])
    got = wait_count(plain, dst, 30, timeout=120, hub=hub)
    c.eq(sorted(r["value"] for r in got), sorted(f"{name}-{i}" for i in range(30)), f"{name}: records through the hub")
    rc, took = hub.terminate()
    c.eq(rc, 0, f"{name}: SIGTERM exits 0")


def refused(security, name, want, wrong=None):
    """A hub whose login the broker refuses; want: regexes its error line must match."""
    hub, _, _ = hub_on(security, name)
    hub.start()
    errs = []

    def logged():
        errs[:] = [l for l in open(hub.log_path, errors="replace") if '"level":"error"' in l and "refused the hub" in l]
        return bool(errs)

    c.ok(wait_until(logged, 60, hub, f"{name}: the login error"), f"{name}: an error says the login was refused")
    line = errs[0] if errs else ""
    for w in want:
        c.ok(re.search(w, line), f"{name}: the error matches {w!r}: {line.strip()[:600]}")
    # Not crashed, not ready, not spinning: CPU over 10 s while librdkafka keeps retrying.
    t0 = cpu_seconds(hub.proc.pid)
    time.sleep(10)
    used = cpu_seconds(hub.proc.pid) - t0
    log(f"{name}: {used:.2f} s of CPU in 10 s while refused")
    c.ok(hub.alive(), f"{name}: the hub is still running")
    c.ok(used < 2.0, f"{name}: the hub idles while refused ({used:.2f} s CPU in 10 s)")
    c.eq(hub.http("/live")[0], 200, f"{name}: /live")
    status, body = hub.http("/ready")
    c.eq(status, 503, f"{name}: /ready while the login is refused ({body.strip()})")
    c.ok("refused the hub's login" in body and (not wrong or wrong not in body),
         f"{name}: /ready names the refused login, not the password ({body.strip()[:300]})")
    n = len(open(hub.log_path, errors="replace").readlines())
    c.ok(n < 80, f"{name}: the log stays short ({n} lines in about 15 s)")
    rc, took = hub.terminate()
    c.eq(rc, 0, f"{name}: SIGTERM while refused exits 0")
    c.ok(took is not None and took < 30, f"{name}: ... within 30 s ({took})")
    if wrong:
        text = open(hub.log_path, errors="replace").read()
        c.ok(wrong not in text, f"{name}: the wrong password is not in the log")


# Right password: SCRAM-SHA-512, then PLAIN with its own user.
moves_records(sasl_security("SCRAM-SHA-512"), "scram512")
moves_records(sasl_security("PLAIN"), "plain")

# Wrong password, SCRAM-SHA-512.
bad = os.path.join(tempfile.mkdtemp(prefix="lt-sasl-"), "wrong.password")
wrong = "wrong-" + os.urandom(8).hex()
with open(bad, "w") as f:
    f.write(wrong + "\n")
refused(sasl_security("SCRAM-SHA-512", password_file=bad), "badpw",
        [r"SCRAM-SHA-512", r"user 'lienthong'", re.escape(f"127.0.0.1:{PORT + 2}"), r"invalid credentials",
         r"password_file"], wrong)
os.unlink(bad)
# The broker enables SCRAM-SHA-512 and PLAIN only.
refused(sasl_security("SCRAM-SHA-256"), "sha256", [r"SCRAM-SHA-256", re.escape(f"127.0.0.1:{PORT + 2}"),
                                                    r"[Uu]nsupported SASL mechanism"])
# `lienthong` has no PLAIN password: so the runs above that got in as `lienthong` did SCRAM.
refused(sasl_security("PLAIN").replace("username: lienthong_plain", "username: lienthong"), "plainuser",
        [r"PLAIN", r"user 'lienthong'", r"Invalid username or password"])
c.done()
