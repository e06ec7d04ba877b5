"""(g) Scale-out and fail-over: two hub instances share a route's consumer group (each with
its own transactional id); one is SIGKILLed mid-run and the other takes its partitions over.
The output holds every input exactly once, in per-key order, and both instances did work."""
import time

from harness import (PORT, TRANSPORT, Checks, Hub, check_exactly_once, keyed_records, log, produce, route_config, unique,
                     wait_count)

N, KEYS = 60_000, 300
c = Checks("two-instances")
bootstrap = f"127.0.0.1:{PORT}"
src, dst, route = unique("two.in"), unique("two.out"), unique("two")
steps = "      - test-fault: { delay_us: 100 }\n"
# Instance a never comes back, so nothing fences its producer: the transaction it had open when
# killed holds back read_committed readers of the output until the broker aborts it after
# transaction_timeout (60 s by default; most of this test's time). 10 s (request_timeout must not
# exceed it) keeps that wait in the test and makes it short.
TXN = "session_timeout: 3s, transaction_timeout: 10s, request_timeout: 10s"


def config(instance):
    text = route_config(route, src, dst, steps=steps, instance=instance)
    if TRANSPORT != "kafka":  # the embedded transport has no transaction left open by a dead process
        return text
    assert "session_timeout: 3s" in text
    return text.replace("session_timeout: 3s", TXN, 1)


a = Hub(config("hub-a"), "inst-a")
b = Hub(config("hub-b"), "inst-b")
a.start()
b.start()
a.wait_ready()
b.wait_ready()
lbl = f'{{route="{route}"}}'
# Both are ready once each holds partitions; the other may still be taking its share for a moment.
deadline = time.time() + 15
while True:
    pa = a.metrics().get(f"lienthong_route_assigned_partitions{lbl}", 0)
    pb = b.metrics().get(f"lienthong_route_assigned_partitions{lbl}", 0)
    if (pa + pb == 4.0 and pa > 0 and pb > 0) or time.time() > deadline:
        break
    time.sleep(0.2)
c.eq(pa + pb, 4.0, f"the 4 partitions are split between the instances ({pa} + {pb})")
c.ok(pa > 0 and pb > 0, "each instance holds partitions")
records = keyed_records(N, KEYS)
produce(bootstrap, src, records)
time.sleep(2)
done_a = a.metrics().get(f"lienthong_route_produced_total{lbl}", 0)
log(f"instance a produced {done_a} so far; SIGKILL it")
c.ok(done_a > 0, "instance a was working when killed")
a.kill()
out = wait_count(bootstrap, dst, N, timeout=300, hub=b)
time.sleep(3)
out = wait_count(bootstrap, dst, N, timeout=60, hub=b)
check_exactly_once(c, records, out, "after fail-over")
deadline = time.time() + 20
while time.time() < deadline and b.metrics().get(f"lienthong_route_assigned_partitions{lbl}") != 4.0:
    time.sleep(0.5)
c.eq(b.metrics().get(f"lienthong_route_assigned_partitions{lbl}"), 4.0, "instance b holds every partition after")
rc, _ = b.terminate()
c.eq(rc, 0, "exit code after SIGTERM")
c.done()
