"""(f) /live, /ready and /metrics tell the truth, read during a run; the bearer token is
enforced; SIGTERM exits 0 in bounded time."""
import os
import time

from harness import PORT, Checks, Hub, Unreachable, produce, route_config, unique, wait_count

c = Checks("admin")
bootstrap = f"127.0.0.1:{PORT}"

# Not ready while there is no cluster to talk to (nothing listens on its port, or the database
# is held by another process).
down = Unreachable()
src, dst, route = unique("adm.in"), unique("adm.out"), unique("adm")
hub = Hub(route_config(route, src, dst, bootstrap=down.bootstrap), "admin-down")
hub.start()
time.sleep(3)
c.eq(hub.http("/live")[0], 200, "/live without a cluster")
status, body = hub.http("/ready")
c.eq(status, 503, "/ready without a cluster")
c.ok("not" in body or "no partitions" in body, f"/ready says why ({body.strip()})")
c.eq(hub.http("/nope")[0], 404, "unknown path")
rc, took = hub.terminate()
c.eq(rc, 0, "SIGTERM while connecting exits 0")
c.ok(took is not None and took < 30, f"... within 30 s ({took})")
down.release()

token = "t0ken-for-the-admin-tests-1234"
hub = Hub(route_config(route, src, dst, steps="      - test-fault: { reject_if: POISON }\n",
                       extra_hub=", token_file: admin.token"), "admin")
with open(os.path.join(hub.dir, "admin.token"), "w") as f:
    f.write(token + "\n")
hub.start()
hub.wait_ready(token=token)
c.eq(hub.http("/metrics")[0], 401, "/metrics without the token")
c.eq(hub.http("/metrics", "wrong-token-wrong-token")[0], 401, "/metrics with a wrong token")
c.eq(hub.http("/ready", token)[0], 200, "/ready with the token once partitions are assigned")
m = hub.metrics(token)
lbl = f'{{route="{route}"}}'
c.eq(m.get(f"lienthong_route_assigned_partitions{lbl}"), 4.0, "assigned partitions")
c.eq(m.get(f"lienthong_route_consumed_total{lbl}"), 0.0, "nothing consumed yet")
records = [(f"k{i % 13}", f"v{i}" + ("-POISON" if i % 100 == 0 else "")) for i in range(500)]
produce(bootstrap, src, records)
wait_count(bootstrap, dst, 495, hub=hub)
deadline = time.time() + 15
while time.time() < deadline:
    m = hub.metrics(token)
    if m.get(f"lienthong_route_consumer_lag{lbl}") == 0 and m.get(f"lienthong_route_produced_total{lbl}") == 495:
        break
    time.sleep(0.3)
c.eq(m.get(f"lienthong_route_consumed_total{lbl}"), 500.0, "consumed")
c.eq(m.get(f"lienthong_route_produced_total{lbl}"), 495.0, "produced")
c.eq(m.get(f"lienthong_route_dlq_total{lbl}"), 5.0, "dlq")
c.eq(m.get(f"lienthong_route_rejected_total{lbl}"), 5.0, "rejected")
c.eq(m.get(f"lienthong_route_retried_total{lbl}"), 0.0, "retried")
c.eq(m.get(f"lienthong_route_consumer_lag{lbl}"), 0.0, "lag after catching up")
c.eq(m.get(f'lienthong_route_latency_seconds_count{lbl}'), 500.0, "latency observations")
c.eq(m.get(f'lienthong_route_latency_seconds_bucket{{route="{route}",le="+Inf"}}'), 500.0, "histogram +Inf bucket")
rss = m.get("lienthong_process_resident_memory_bytes", 0)
c.ok(1 << 20 < rss < 256 << 20, f"RSS is plausible ({rss})")
with open(f"/proc/{hub.proc.pid}/status") as f:
    real = [int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS")][0]
c.ok(abs(real - rss) < 16 << 20, f"RSS matches /proc ({real} vs {rss})")
rc, took = hub.terminate()
c.eq(rc, 0, "exit code after SIGTERM")
c.ok(took is not None and took < 30, f"SIGTERM handled within 30 s ({took})")
c.done()
