#!/usr/bin/env python3
"""Route-level `xml: {max_attrs}` (issue 10 item 1): the limit a route sets reaches the parse its
verify-xml step makes, a document over it goes to the route's DLQ with a reason naming the
limit and its original bytes, the hub carries on, a document under it is verified and passed,
and a step's own max_attrs overrides the route's. Documents are signed by `lienthong sign` here.
Registered for the embedded transport (LT_TEST_TRANSPORT=embedded): the signed documents hold
newlines, which the kcat-based produce of the Kafka harness cannot carry."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BIN, SRC, TRANSPORT, Checks, Hub, consume, log, produce, transport_section, unique,  # noqa: E402
                     wait_until, PORT)

c = Checks("xml_max_attrs")
KEYS = os.path.join(SRC, "tests", "trust", "fixtures", "keys")
bootstrap = f"127.0.0.1:{PORT}"


def signed(n_attrs):
    """A signed generic document whose element <e> carries n_attrs attributes."""
    attrs = "".join(f' a{i}="{i}"' for i in range(n_attrs))
    r = subprocess.run([BIN, "sign", "--key", f"{KEYS}/agency-rsa-key.pem", "--cert", f"{KEYS}/agency-rsa-cert.pem",
                        "--profile", "generic", "-"], input=f"<r><e{attrs}/><v>1</v></r>".encode(),
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise SystemExit(f"sign failed: {r.stderr.decode()}")
    return r.stdout.decode()


tag = unique("xa")
t_in, t_out, t_in2, t_out2 = (f"{tag}.{x}" for x in ("in", "out", "in2", "out2"))
limited, override = f"{tag}-limited", f"{tag}-override"
config = (f"hub:\n{transport_section(bootstrap)}  instance: test\n  admin: {{ listen: '@ADMIN@' }}\n"
          f"keys:\n  trust: {{ca: [{KEYS}/ca.pem]}}\n"
          "routes:\n"
          f"  - name: {limited}\n    from: {t_in}\n    to: {t_out}\n"
          "    steps:\n      - verify-xml: {}\n"
          f"    errors: {{retries: 0, dlq: {limited}.dlq}}\n"
          "    xml: {max_attrs: 8}\n"
          f"  - name: {override}\n    from: {t_in2}\n    to: {t_out2}\n"
          "    steps:\n      - verify-xml: {max_attrs: 16}\n"
          f"    errors: {{retries: 0, dlq: {override}.dlq}}\n"
          "    xml: {max_attrs: 8}\n")
hub = Hub(config, tag)
lint = subprocess.run([BIN, "lint", hub.config], capture_output=True, timeout=60)
c.eq(lint.returncode, 0, f"lint accepts xml.max_attrs: {lint.stderr.decode()[-400:]}")
hub.start()
hub.wait_ready()

small, big = signed(5), signed(12)
log(f"documents of {len(small)} and {len(big)} bytes, transport {TRANSPORT}")
# the signature itself has at most 2 attributes per element: only <e> decides
produce(bootstrap, t_in, [("small", small), ("big", big)])
produce(bootstrap, t_in2, [("big", big)])

got = {}


def settled():
    got["dlq"] = consume(bootstrap, f"{limited}.dlq")
    got["out"] = consume(bootstrap, t_out)
    got["out2"] = consume(bootstrap, t_out2)
    return len(got["dlq"]) >= 1 and len(got["out"]) >= 1 and len(got["out2"]) >= 1


c.ok(wait_until(settled, 120, hub, "the DLQ and output records"), "records reached the DLQ and the outputs")
dlq = got.get("dlq", [])
c.eq([r["key"] for r in dlq], ["big"], "only the document over the route's max_attrs goes to the DLQ")
if dlq:
    h = dlq[0]["headers"]
    why = h.get("lt.error.reason", "")
    c.ok("more than 8 attributes" in why and "max_attrs 8" in why, f"the DLQ reason names the limit: {why!r}")
    c.ok("line 1" in why, f"and where: {why!r}")
    c.eq(h.get("lt.error.code"), "too-large", "the DLQ code")
    c.ok(dlq[0]["value"] == big, "the DLQ keeps the original bytes (%d bytes, %d expected)" % (len(dlq[0]["value"]),
                                                                                             len(big)))
c.eq([r["key"] for r in got.get("out", [])], ["small"], "the document under the limit is verified and passed")
if got.get("out"):
    c.eq(got["out"][0]["headers"].get("lt.sig"), "verified", "and marked verified")
# verify-xml's own max_attrs (16) overrides the route's 8: the 12-attribute document passes
c.eq([r["key"] for r in got.get("out2", [])], ["big"], "a step's max_attrs overrides the route's")
c.eq(len(consume(bootstrap, f"{override}.dlq")), 0, "nothing in the second route's DLQ")
c.ok(hub.alive(), "the hub is still running")
c.eq(hub.terminate()[0], 0, "clean stop")
c.done()
