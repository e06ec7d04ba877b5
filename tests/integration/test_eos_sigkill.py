"""(a) 100,000 keyed records through a route while the hub is killed with SIGKILL at least
3 times at random moments and restarted: the output, read with read_committed, holds every
input exactly once, in per-key order."""
import threading
import time

from harness import (Checks, Hub, PORT, check_exactly_once, keyed_records, log, produce, rng, route_config,
                     unique, wait_count)

N, KEYS, CHUNKS = 100_000, 1000, 20
c = Checks("eos-sigkill")
r = rng()
bootstrap = f"127.0.0.1:{PORT}"
src, dst, route = unique("eos.in"), unique("eos.out"), unique("eos")
hub = Hub(route_config(route, src, dst, steps="      - set-header: { lt.type: test.eos }\n"), "eos")
hub.start()
hub.wait_ready()
records = keyed_records(N, KEYS)
chunk = N // CHUNKS
done = threading.Event()


def producer():
    # Spread the input over time so the kills land while records flow.
    for i in range(CHUNKS):
        produce(bootstrap, src, records[i * chunk:(i + 1) * chunk])
        time.sleep(0.4)
    done.set()


t = threading.Thread(target=producer)
t.start()
kills = 0
while kills < 3 or not done.is_set():
    time.sleep(r.uniform(0.5, 3.0))
    if kills >= 6:
        break
    hub.kill()
    kills += 1
    log(f"SIGKILL #{kills}; restarting")
    time.sleep(r.uniform(0.0, 1.0))
    hub.start()
t.join()
c.ok(kills >= 3, f"hub killed at least 3 times ({kills})")
out = wait_count(bootstrap, dst, N, timeout=300, hub=hub)
time.sleep(3)  # anything late (a duplicate) would show up now
out = wait_count(bootstrap, dst, N, timeout=60, hub=hub)
check_exactly_once(c, records, out, "after SIGKILLs")
c.ok(all(o["headers"].get("lt.type") == "test.eos" for o in out), "every output record went through the steps")
lag_name = f'lienthong_route_consumer_lag{{route="{route}"}}'
for _ in range(50):  # the gauge is refreshed once a second
    lag = hub.metrics().get(lag_name, -1)
    if lag == 0:
        break
    time.sleep(0.2)
c.eq(lag, 0, "consumer lag at the end")
rc, took = hub.terminate()
c.eq(rc, 0, "exit code after SIGTERM")
c.ok(took is not None and took < 30, f"SIGTERM handled within 30 s ({took})")
c.done()
