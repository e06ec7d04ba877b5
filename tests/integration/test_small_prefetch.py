"""A backlog 25 times the consumer's prefetch (hub.kafka.prefetch 1MiB, 25000 records of about
1 KiB): every record arrives exactly once and in per-key order. With librdkafka before 2.2 (a
-DLT_SYSTEM_RDKAFKA=ON build on Debian 12) the fetcher wake-up (hub/transport/kafka/fetch_wake.c)
runs beside the route: the wake-ups show in /metrics while records flow and stop when the route is
idle. With the static librdkafka 2.8.0, fetch.queue.backoff.ms does that job and no wake-up is sent."""
import re
import subprocess
import time

from harness import (BIN, PORT, Checks, Hub, check_exactly_once, keyed_records, produce, route_config, unique,
                     wait_count)

ver = re.search(r"^librdkafka (\d+)\.(\d+)", subprocess.run([BIN, "version"], capture_output=True, text=True).stdout, re.M)
WAKER = ver is not None and (int(ver.group(1)), int(ver.group(2))) < (2, 2)

c = Checks("small-prefetch")
c.ok(ver is not None, "`lienthong version` names the librdkafka version")
bootstrap = f"127.0.0.1:{PORT}"
src, dst, route = unique("pf.in"), unique("pf.out"), unique("pf")
cfg = route_config(route, src, dst).replace("session_timeout: 3s", "session_timeout: 3s, prefetch: 1MiB", 1)
c.ok("prefetch: 1MiB" in cfg, "the configuration sets a 1 MiB prefetch")
hub = Hub(cfg, "small-prefetch")
hub.start()
hub.wait_ready()

WAKES = "lienthong_kafka_fetch_wakeups_total"


def wakes():
    return hub.metrics().get(WAKES)


idle0 = wakes()
c.ok(idle0 is not None, f"{WAKES} is exported")
time.sleep(1.5)
c.eq(wakes(), idle0, "no wake-ups while nothing flows")

records = [(k, v + "." + "y" * 960) for k, v in keyed_records(25000, 50, "pf")]
produce(bootstrap, src, records)
out = wait_count(bootstrap, dst, len(records), timeout=300, hub=hub)
check_exactly_once(c, records, out, "25000 records through a 1 MiB prefetch")

deadline = time.time() + 15
m = {}
while time.time() < deadline:
    m = hub.metrics()
    if m.get(f'lienthong_route_produced_total{{route="{route}"}}') == len(records):
        break
    time.sleep(0.3)
c.eq(m.get(f'lienthong_route_consumed_total{{route="{route}"}}'), float(len(records)), "consumed")
busy = m.get(WAKES, 0)
if WAKER:
    c.ok(busy > idle0, f"wake-ups were sent while records flowed ({idle0} -> {busy})")
else:
    c.eq(busy, 0.0, f"librdkafka {ver.group(1)}.{ver.group(2)}: fetch.queue.backoff.ms, no wake-ups")
time.sleep(1.0)  # let a wake-up that was already under way finish
settled = wakes()
time.sleep(1.5)
c.eq(wakes(), settled, "no wake-ups once the route is idle again")
rc, took = hub.terminate()
c.eq(rc, 0, "exit code after SIGTERM")
c.done()
