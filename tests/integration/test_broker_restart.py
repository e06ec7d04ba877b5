"""(b) The broker is stopped for 20 s and restarted mid-run: every input record still reaches
the output exactly once, in per-key order. Uses its own broker (the test stops it). A
test-fault delay keeps the route busy for ~15 s so the outage lands in the middle of the work."""
import os
import time

from harness import (SRC, Broker, Checks, Hub, check_exactly_once, consume, free_ports, keyed_records, log, produce,
                     route_config, unique, wait_count)

N, KEYS = 100_000, 500
c = Checks("broker-restart")
port = int(os.environ.get("LT_TEST_KAFKA_PORT2", str(free_ports(3))))
broker = Broker(port, os.path.join(SRC, ".cache", "kafka", f"test-restart-{port}"))
broker.start()
try:
    src, dst, route = unique("rs.in"), unique("rs.out"), unique("rs")
    steps = "      - test-fault: { delay_us: 150 }\n"
    hub = Hub(route_config(route, src, dst, steps=steps, bootstrap=broker.bootstrap), "restart")
    hub.start()
    hub.wait_ready()
    records = keyed_records(N, KEYS)
    produce(broker.bootstrap, src, records)
    time.sleep(4)
    before = len(consume(broker.bootstrap, dst))
    log(f"{before} records out; stopping the broker for 20 s")
    c.ok(0 < before < N, f"the route is mid-run when the broker stops ({before} of {N} out)")
    broker.stop()
    time.sleep(8)
    c.ok(hub.alive(), "hub still running while the broker is down")
    status, body = hub.http("/ready")
    c.eq(status, 503, f"/ready while the broker is down ({body.strip()})")
    c.eq(hub.http("/live")[0], 200, "/live while the broker is down")
    time.sleep(12)
    broker.start()
    log("broker restarted")
    out = wait_count(broker.bootstrap, dst, N, timeout=400, hub=hub)
    time.sleep(3)
    out = wait_count(broker.bootstrap, dst, N, timeout=60, hub=hub)
    check_exactly_once(c, records, out, "after broker restart")
    hub.wait_ready(60)
    c.eq(hub.http("/ready")[0], 200, "/ready after the broker is back")
    rc, took = hub.terminate()
    c.eq(rc, 0, "exit code after SIGTERM")
finally:
    broker.stop()
c.done()
