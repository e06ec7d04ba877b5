"""(d) Retries with backoff keep per-key order: a record that needs two retries still comes
out before the records behind it with the same key; a record that keeps failing ends in the
DLQ after retries+1 attempts, and the records behind it still flow, in order."""
import time

from harness import PORT, Checks, Hub, produce, route_config, unique, wait_count

c = Checks("retry-order")
bootstrap = f"127.0.0.1:{PORT}"
src, dst, route = unique("retry.in"), unique("retry.out"), unique("retry")
steps = ("      - test-fault: { retry_if: FLAKY, retry_times: 2 }\n"
         "      - test-fault: { retry_if: BROKEN }\n")
hub = Hub(route_config(route, src, dst, steps=steps, errors="{ retries: 3, backoff: 50ms..400ms }"), "retry")
hub.start()
hub.wait_ready()
records = []
for k in range(10):
    key = f"order{k}"
    for s in range(20):
        tag = "FLAKY" if s in (3, 11) and k % 2 == 0 else "BROKEN" if s == 7 and k == 5 else "ok"
        records.append((key, f"{key}:{s:03d}:{tag}"))
t0 = time.time()
produce(bootstrap, src, records)
want = [r for r in records if "BROKEN" not in r[1]]
out = wait_count(bootstrap, dst, len(want), hub=hub)
elapsed = time.time() - t0
c.eq(len(out), len(want), "records in the output")
by_key = {}
for o in sorted(out, key=lambda o: (o["partition"], o["offset"])):
    by_key.setdefault(o["key"], []).append(o["value"])
for k in range(10):
    key = f"order{k}"
    c.eq(by_key.get(key), [v for kk, v in want if kk == key], f"order of key {key}")
dl = wait_count(bootstrap, f"{route}.dlq", 1, hub=hub)
c.eq([d["value"] for d in dl], ["order5:007:BROKEN"], "the record that kept failing is in the DLQ")
if dl:
    c.eq(dl[0]["headers"].get("lt.attempts"), "4", "attempts = retries + 1")
    c.eq(dl[0]["headers"].get("lt.error.code"), "downstream", "the step's error code is kept")
    c.eq(dl[0]["headers"].get("lt.error.stage"), "steps[1].test-fault", "the failing stage")
m = hub.metrics()
# 10 FLAKY records x 2 retries + 1 BROKEN record x 3 retries
c.eq(m.get(f'lienthong_route_retried_total{{route="{route}"}}'), 23.0, "retries counted")
c.eq(m.get(f'lienthong_route_dlq_total{{route="{route}"}}'), 1.0, "DLQ records counted")
c.ok(elapsed > 0.05, "backoff took time")
rc, _ = hub.terminate()
c.eq(rc, 0, "exit code after SIGTERM")
c.done()
