"""A backlog 25 times the consumer's prefetch (hub.kafka.prefetch 1MiB, 25000 records of about
1 KiB): every record arrives exactly once and in per-key order while the fetcher wake-up
(hub/transport/kafka/fetch_wake.c) runs beside the route; the wake-ups show in /metrics while records
flow and stop when the route is idle."""
import time

from harness import PORT, Checks, Hub, check_exactly_once, keyed_records, produce, route_config, unique, wait_count

c = Checks("small-prefetch")
bootstrap = f"127.0.0.1:{PORT}"
src, dst, route = unique("pf.in"), unique("pf.out"), unique("pf")
cfg = route_config(route, src, dst).replace("session_timeout: 3s }", "session_timeout: 3s, prefetch: 1MiB }")
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
c.ok(busy > idle0, f"wake-ups were sent while records flowed ({idle0} -> {busy})")
time.sleep(1.0)  # let a wake-up that was already under way finish
settled = wakes()
time.sleep(1.5)
c.eq(wakes(), settled, "no wake-ups once the route is idle again")
rc, took = hub.terminate()
c.eq(rc, 0, "exit code after SIGTERM")
c.done()
