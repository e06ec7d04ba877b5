"""Test harness for the runtime's integration tests, on a real Apache Kafka broker or on the
embedded (SQLite) transport: LT_TEST_TRANSPORT=kafka (default) or embedded.

Kafka: the broker is started by scripts/kafka-start (ctest fixture or the test itself); records
are produced and read back with kcat, an independent client, reading with read_committed so only
committed transactions count. Embedded: records are written and read with Python's sqlite3 module
straight in the database file, as another process on the machine would. The hub runs as a child
process (`lienthong run`). Python standard library only.
"""
import atexit
import glob
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

SRC = os.environ.get("LT_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("LT_BIN") or os.path.join(SRC, "build", "lienthong")
PORT = int(os.environ.get("LT_TEST_KAFKA_PORT", "29092"))
TRANSPORT = os.environ.get("LT_TEST_TRANSPORT", "kafka")
# sasl_ssl: the hub reaches the test broker over its TLS + SASL listener (scripts/kafka-start);
# the tests' own clients stay on plaintext. Every hub log is then searched for the password.
SECURITY = os.environ.get("LT_TEST_KAFKA_SECURITY", "plaintext")
# SCRAM-SHA-512 as user `lienthong`, whom the broker knows only as a SCRAM credential; PLAIN as
# `lienthong_plain` (same password).
SASL_MECHANISM = os.environ.get("LT_TEST_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
# One database per test program, shared by every hub it starts (as one cluster would be).
EMBEDDED_DB = os.path.join(tempfile.mkdtemp(prefix="lt-embedded-"), "hub.db") if TRANSPORT == "embedded" else None


class Failure(Exception):
    pass


class Checks:
    """Counts assertions; prints 'N passed, N failed' at the end like the unit tests."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def ok(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}", flush=True)
        return cond

    def eq(self, got, want, what):
        return self.ok(got == want, f"{what}: expected {want!r}, got {got!r}")

    def done(self):
        if SECURITY == "sasl_ssl":
            secret = _sasl_secret()
            for h in _hubs:
                text = open(h.log_path, errors="replace").read() if os.path.exists(h.log_path) else ""
                self.ok(secret not in text, f"the SASL password appears in {h.log_path}")
                text = "".join(open(p, errors="replace").read() for p in glob.glob(os.path.join(h.dir, "**"), recursive=True)
                               if os.path.isfile(p) and not p.endswith(".yaml"))
                self.ok(secret not in text, f"the SASL password appears in a file under {h.dir}")
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed or not self.passed else 0)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def free_ports(n):
    """A port P with P..P+n-1 all free now (a broker takes its port, the controller's, the SASL one)."""
    for _ in range(200):
        p = free_port()
        if p + n > 65535:
            continue
        socks = []
        try:
            for i in range(n):
                s = socket.socket()
                s.bind(("127.0.0.1", p + i))
                socks.append(s)
            return p
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()
    raise Failure(f"no {n} consecutive free ports")


class Broker:
    def __init__(self, port=PORT, directory=None):
        self.port = port
        # The test fixture's broker (LT_TEST_BROKER_DIR) unless told otherwise.
        self.dir = directory or os.environ.get("LT_TEST_BROKER_DIR") or os.path.join(SRC, ".cache", "kafka", f"test-{port}")
        self.bootstrap = f"127.0.0.1:{port}"

    def start(self):
        env = dict(os.environ, LT_KAFKA_PORT=str(self.port))
        subprocess.run([os.path.join(SRC, "scripts", "kafka-start"), self.dir], check=True, env=env)

    def stop(self, kill=False):
        args = [os.path.join(SRC, "scripts", "kafka-stop"), self.dir] + (["--kill"] if kill else [])
        subprocess.run(args, check=True)


_hubs = []


def _kill_leftover_hubs():
    """A test that fails (or raises) half-way leaves no hub running behind it."""
    for h in _hubs:
        if h.alive():
            h.proc.kill()
            h.proc.wait()


atexit.register(_kill_leftover_hubs)


class Hub:
    """A `lienthong run` child process with its config, log and admin port."""

    def __init__(self, config_text, name="hub", admin_port=None):
        self.dir = tempfile.mkdtemp(prefix=f"lt-{name}-", dir=os.environ.get("TMPDIR"))
        self.admin_port = admin_port or free_port()
        self.config = os.path.join(self.dir, "hub.yaml")
        self.write_config(config_text)
        self.log_path = os.path.join(self.dir, "hub.log")
        self.proc = None
        self.starts = 0
        _hubs.append(self)

    def write_config(self, text):
        with open(self.config, "w") as f:
            f.write(text.replace("@ADMIN@", f"127.0.0.1:{self.admin_port}"))

    def start(self):
        self.starts += 1
        logf = open(self.log_path, "a")
        logf.write(f"--- start {self.starts}\n")
        logf.flush()
        self.proc = subprocess.Popen([BIN, "run", self.config], stdout=logf, stderr=logf)
        logf.close()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout=40):
        """SIGTERM; returns (exit code, seconds taken)."""
        t0 = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            return rc, None
        return rc, time.time() - t0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def http(self, path, token=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            return None, ""

    def metrics(self, token=None):
        status, body = self.http("/metrics", token)
        out = {}
        if status != 200:
            return out
        for line in body.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
        return out

    def wait_ready(self, timeout=90, token=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.alive():
                raise Failure(f"hub exited with {self.proc.returncode}; log:\n{self.tail()}")
            status, _ = self.http("/ready", token)
            if status == 200:
                return
            time.sleep(0.2)
        raise Failure(f"hub not ready after {timeout}s; log:\n{self.tail()}")

    def tail(self, n=40):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Unreachable:
    """A cluster the hub cannot reach while this lives: on kafka a port nobody listens on; on the
    embedded transport the database, held by another process's write transaction."""

    def __init__(self):
        self.bootstrap = f"127.0.0.1:{free_port()}"
        self.con = None
        if TRANSPORT == "embedded":
            import sqlite3
            self.con = sqlite3.connect(EMBEDDED_DB, isolation_level=None)
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute("BEGIN EXCLUSIVE")

    def release(self):
        if self.con is not None:
            self.con.execute("ROLLBACK")
            self.con.close()
            self.con = None


def lines(path):
    """The complete lines of a file a process is still appending to ([] before it exists)."""
    try:
        with open(path) as f:
            return [l.rstrip("\n") for l in f if l.endswith("\n")]
    except FileNotFoundError:
        return []


def wait_until(cond, timeout, hub=None, what="condition"):
    """Polls cond() until it holds (True), the timeout passes or the hub dies (False, logged)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        if hub is not None and not hub.alive():
            log(f"hub died while waiting for {what}:\n{hub.tail()}")
            return False
        time.sleep(0.2)
    log(f"timed out waiting for {what}")
    return False


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def route_config(route, src, dst, steps="      - passthrough: {}\n", errors="", bootstrap=None, extra_hub="",
                 batch="", instance="test"):
    bootstrap = bootstrap or f"127.0.0.1:{PORT}"
    return (f"hub:\n{transport_section(bootstrap)}  instance: {instance}\n"
            f"  admin: {{ listen: '@ADMIN@'{extra_hub} }}\n"
            f"routes:\n  - name: {route}\n    from: {src}\n    to: {dst}\n    steps:\n{steps}"
            + (f"    errors: {errors}\n" if errors else "") + (f"    batch: {batch}\n" if batch else ""))


def _tls_dir():
    return os.path.join(os.environ.get("LT_TEST_BROKER_DIR") or os.path.join(SRC, ".cache", "kafka", f"test-{PORT}"),
                        "tls")


def _sasl_secret():
    with open(os.path.join(_tls_dir(), "scram.password")) as f:
        return f.read().strip()


def sasl_security(mechanism=SASL_MECHANISM, password_file=None):
    """The hub's `security:` map for the test broker's SASL_SSL listener (port + 2)."""
    tls = _tls_dir()
    user = "lienthong_plain" if mechanism == "PLAIN" else "lienthong"
    return (f"{{ protocol: sasl_ssl, mechanism: {mechanism}, username: {user}, "
            f"password_file: '{password_file or os.path.join(tls, 'scram.password')}', ca_file: '{tls}/ca.pem' }}")


def transport_section(bootstrap=None):
    """The hub's transport lines for the transport under test."""
    if TRANSPORT == "embedded":
        return f"  transport: embedded\n  embedded: {{ path: '{EMBEDDED_DB}', session_timeout: 3s }}\n"
    bootstrap = bootstrap or f"127.0.0.1:{PORT}"
    security = ""
    if SECURITY == "sasl_ssl" and bootstrap == f"127.0.0.1:{PORT}":
        bootstrap = f"127.0.0.1:{PORT + 2}"
        security = ", security: " + sasl_security()
    return f"  transport: kafka\n  kafka: {{ bootstrap: '{bootstrap}', session_timeout: 3s{security} }}\n"


def _fnv1a(b):
    h = 2166136261
    for x in b:
        h = ((h ^ x) * 16777619) & 0xFFFFFFFF
    return h


def _sql(write=False):
    import sqlite3
    con = sqlite3.connect(EMBEDDED_DB, timeout=60, isolation_level=None)
    if write:
        con.execute("BEGIN IMMEDIATE")
    return con


def _embedded_produce(topic, records):
    """Appends committed records the way the embedded transport does: offsets from `ends`, the
    partition from the FNV-1a hash of the key, all in one transaction."""
    import sqlite3
    for _ in range(600):
        try:
            con = _sql(write=True)
            break
        except sqlite3.OperationalError:  # the schema is not there yet: the hub creates it
            time.sleep(0.1)
    row = con.execute("SELECT partitions FROM topics WHERE name = ?", (topic,)).fetchone()
    if row is None:
        con.execute("INSERT INTO topics(name, partitions) VALUES(?, 4)", (topic,))
        con.executemany("INSERT INTO ends(topic, part, next) VALUES(?, ?, 0)", [(topic, p) for p in range(4)])
        parts = 4
    else:
        parts = row[0]
    ends = dict(con.execute("SELECT part, next FROM ends WHERE topic = ?", (topic,)).fetchall())
    now = int(time.time() * 1000)
    rows = []
    for k, v in records:
        p = _fnv1a(k.encode()) % parts
        rows.append((topic, p, ends[p], now, k.encode(), v.encode(), b""))
        ends[p] += 1
    con.executemany("INSERT INTO records(topic, part, off, ts, key, value, headers) VALUES(?, ?, ?, ?, ?, ?, ?)", rows)
    con.executemany("UPDATE ends SET next = ? WHERE topic = ? AND part = ?", [(n, topic, p) for p, n in ends.items()])
    con.execute("COMMIT")
    con.close()


def _embedded_consume(topic):
    import sqlite3
    try:
        con = _sql()
        rows = con.execute("SELECT part, off, key, value, headers FROM records WHERE topic = ? ORDER BY part, off",
                           (topic,)).fetchall()
        con.close()
    except sqlite3.OperationalError:
        return []
    out = []
    for p, o, k, v, h in rows:
        headers, i = {}, 0
        while i + 8 <= len(h):
            nl = int.from_bytes(h[i:i + 4], "little")
            name = h[i + 4:i + 4 + nl].decode()
            vl = int.from_bytes(h[i + 4 + nl:i + 8 + nl], "little")
            headers[name] = h[i + 8 + nl:i + 8 + nl + vl].decode(errors="replace")
            i += 8 + nl + vl
        out.append({"partition": p, "offset": o, "key": k.decode() if k is not None else "",
                    "value": v.decode(errors="replace"), "headers": headers})
    return out


def produce(bootstrap, topic, records, extra=None):
    """records: iterable of (key, value) without tabs or newlines. Waits for delivery (acks=all)."""
    if TRANSPORT == "embedded":
        return _embedded_produce(topic, list(records))
    data = "".join(f"{k}\t{v}\n" for k, v in records).encode()
    args = ["kcat", "-b", bootstrap, "-P", "-t", topic, "-K", "\t", "-X", "acks=all",
            "-X", "enable.idempotence=true"] + (extra or [])
    r = subprocess.run(args, input=data, capture_output=True, timeout=600)
    if r.returncode != 0:
        raise Failure(f"kcat produce failed: {r.stderr.decode()}")


def consume(bootstrap, topic, timeout=120):
    """Every committed record of topic as dicts: partition, offset, key, value, headers (dict)."""
    if TRANSPORT == "embedded":
        return _embedded_consume(topic)
    fmt = "%p\t%o\t%k\t%s\t%h\n"
    r = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-e", "-q", "-f", fmt,
                        "-X", "isolation.level=read_committed"], capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise Failure(f"kcat consume failed: {r.stderr.decode()}")
    out = []
    for line in r.stdout.decode(errors="replace").split("\n"):
        if not line:
            continue
        p, o, k, v, h = line.split("\t", 4)
        headers = {}
        if h and h != "":
            for kv in h.split(","):
                name, _, val = kv.partition("=")
                headers[name] = val
        out.append({"partition": int(p), "offset": int(o), "key": k, "value": v, "headers": headers})
    return out


def wait_count(bootstrap, topic, want, timeout=180, hub=None):
    deadline = time.time() + timeout
    got = []
    while time.time() < deadline:
        got = consume(bootstrap, topic)
        if len(got) >= want:
            return got
        if hub is not None and not hub.alive():
            raise Failure(f"hub died: {hub.tail()}")
        time.sleep(1)
    return got


def check_exactly_once(c, records_in, out, what):
    """Every input (key, value) appears exactly once in out, and per key in input order."""
    want = {}
    for k, v in records_in:
        want.setdefault(k, []).append(v)
    seen = {}
    dups = 0
    for r in sorted(out, key=lambda r: (r["partition"], r["offset"])):
        seen.setdefault(r["key"], []).append(r["value"])
    total_in = sum(len(v) for v in want.values())
    c.eq(len(out), total_in, f"{what}: output record count")
    missing = 0
    order_bad = 0
    for k, vals in want.items():
        got = seen.get(k, [])
        if len(got) != len(set(got)):
            dups += len(got) - len(set(got))
        missing += len(set(vals) - set(got))
        if got != vals and set(got) == set(vals) and len(got) == len(vals):
            order_bad += 1
    extra = sum(1 for k in seen if k not in want)
    c.eq(dups, 0, f"{what}: duplicated records")
    c.eq(missing, 0, f"{what}: missing records")
    c.eq(order_bad, 0, f"{what}: keys whose order changed")
    c.eq(extra, 0, f"{what}: keys that were never produced")
    # Key -> partition must be stable (per-key order needs one partition per key).
    parts = {}
    for r in out:
        parts.setdefault(r["key"], set()).add(r["partition"])
    c.eq(sum(1 for p in parts.values() if len(p) > 1), 0, f"{what}: keys spread over several partitions")


def keyed_records(n, keys, prefix="r"):
    """n records over `keys` keys; the value carries the key and a per-key sequence number."""
    seq = {}
    out = []
    for i in range(n):
        k = f"key{i % keys:04d}"
        s = seq.get(k, 0)
        seq[k] = s + 1
        out.append((k, f"{prefix}:{k}:{s:06d}:" + "x" * 40))
    return out


def rng():
    seed = int(os.environ.get("LT_TEST_SEED", str(int(time.time()))))
    log(f"random seed {seed} (LT_TEST_SEED to repeat)")
    return random.Random(seed)
