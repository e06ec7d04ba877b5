"""(b) The broker is stopped for 20 s and restarted mid-run: every input record still reaches
the output exactly once, in per-key order. Uses its own broker (the test stops it)."""
import os
import threading
import time

from harness import (SRC, Broker, Checks, Hub, check_exactly_once, free_port, keyed_records, log, produce,
                     route_config, unique, wait_count)

N, KEYS, CHUNKS = 100_000, 500, 20
c = Checks("broker-restart")
port = int(os.environ.get("LT_TEST_KAFKA_PORT2", str(free_port())))
broker = Broker(port, os.path.join(SRC, ".cache", "kafka", f"test-restart-{port}"))
broker.start()
try:
    src, dst, route = unique("rs.in"), unique("rs.out"), unique("rs")
    hub = Hub(route_config(route, src, dst, bootstrap=broker.bootstrap), "restart")
    hub.start()
    hub.wait_ready()
    records = keyed_records(N, KEYS)
    chunk = N // CHUNKS
    errors = []

    def producer():
        try:
            for i in range(CHUNKS):
                # kcat keeps undelivered records and retries them after the broker is back.
                produce(broker.bootstrap, src, records[i * chunk:(i + 1) * chunk], ["-X", "message.timeout.ms=120000"])
                time.sleep(0.3)
        except Exception as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=producer)
    t.start()
    time.sleep(3)
    log("stopping the broker for 20 s")
    broker.stop()
    time.sleep(20)
    c.ok(hub.alive(), "hub still running while the broker is down")
    status, _ = hub.http("/ready")
    c.eq(status, 503, "/ready while the broker is down")
    broker.start()
    log("broker restarted")
    t.join()
    c.eq(errors, [], "producer errors")
    out = wait_count(broker.bootstrap, dst, N, timeout=300, hub=hub)
    time.sleep(3)
    out = wait_count(broker.bootstrap, dst, N, timeout=60, hub=hub)
    check_exactly_once(c, records, out, "after broker restart")
    hub.wait_ready(60)
    rc, took = hub.terminate()
    c.eq(rc, 0, "exit code after SIGTERM")
finally:
    broker.stop()
c.done()
