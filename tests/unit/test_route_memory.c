/* The real route engine on the `memory` transport, with the test-fault step: records flow
 * exactly once from `from` to `to` (also across a restart), a rejected record goes to the DLQ
 * with its original bytes and the lt.error.* headers, an injected commit abort redoes the batch
 * without duplicates, and forced rebalances between two instances lose and duplicate nothing.
 * (Retries and their order are tests/integration/test_retry_order.py's.) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "memtest.h"
#include "hub/core/config.h"
#include "hub/core/log.h"
#include "hub/core/metrics.h"
#include "hub/core/stop.h"
#include "hub/engine/route.h"
#include "hub/transport/memory/memory.h"
#include "hub/transport/transport.h"

#define KEYS 10


/* One hub instance running route r1 (in -> out, DLQ r1.dlq) in a thread. */
struct instance {
  struct hub_config *cfg;
  struct hub_route *route;
  pthread_t thread;
  hub_err_t rc;
  int running;
};

static void *run_route(void *arg) {
  struct instance *x = arg;
  x->rc = hub_route_run(x->route);
  return NULL;
}

/* Starts route r1 from `from` to `to` with the steps `steps` (YAML list items). */
static int start_route(struct instance *x, const char *name, const char *from, const char *to, const char *steps) {
  char path[] = "/tmp/lt-route-memory-XXXXXX", yaml[2048], e[1024] = "";
  memset(x, 0, sizeof *x);
  int n = snprintf(yaml, sizeof yaml,
                   "hub:\n"
                   "  transport: memory\n"
                   "  instance: %s\n"
                   "  memory: {partitions: 4}\n"
                   "  admin: {listen: \"\"}\n"
                   "routes:\n"
                   "  - name: r1\n"
                   "    from: %s\n"
                   "    to: %s\n"
                   "    steps:\n"
                   "%s"
                   "    errors: {dlq: r1.dlq}\n"
                   "    batch: {max_messages: 20, max_wait: 5ms}\n",
                   name, from, to, steps);
  int fd = mkstemp(path);
  if (fd < 0) return 0;
  int ok = write(fd, yaml, (size_t)n) == n;
  close(fd);
  ok = ok && hub_config_load(path, &x->cfg, e, sizeof e) == HUB_OK;
  unlink(path);
  ok = ok && hub_route_create(x->cfg, &x->cfg->routes[0], T, &x->route, e, sizeof e) == HUB_OK;
  ok = ok && pthread_create(&x->thread, NULL, run_route, x) == 0;
  if (!ok) fprintf(stderr, "starting instance %s: %s\n", name, e);
  x->running = ok;
  return ok;
}

static int start(struct instance *x, const char *name, int delay_us) {
  char path[] = "/tmp/lt-route-memory-XXXXXX", yaml[1024], e[1024] = "";
  memset(x, 0, sizeof *x);
  int n = snprintf(yaml, sizeof yaml,
                   "hub:\n"
                   "  transport: memory\n"
                   "  instance: %s\n"
                   "  memory: {partitions: 4}\n"
                   "  admin: {listen: \"\"}\n"
                   "routes:\n"
                   "  - name: r1\n"
                   "    from: in\n"
                   "    to: out\n"
                   "    steps:\n"
                   "      - test-fault: {reject_if: REJECT, delay_us: %d}\n"
                   "    errors: {dlq: r1.dlq}\n"
                   "    batch: {max_messages: 20, max_wait: 5ms}\n",
                   name, delay_us);
  int fd = mkstemp(path);
  if (fd < 0) return 0;
  int ok = write(fd, yaml, (size_t)n) == n;
  close(fd);
  ok = ok && hub_config_load(path, &x->cfg, e, sizeof e) == HUB_OK;
  unlink(path);
  ok = ok && hub_route_create(x->cfg, &x->cfg->routes[0], T, &x->route, e, sizeof e) == HUB_OK;
  ok = ok && pthread_create(&x->thread, NULL, run_route, x) == 0;
  if (!ok) fprintf(stderr, "starting instance %s: %s\n", name, e);
  x->running = ok;
  return ok;
}

/* Stops every running instance (the stop request is process-wide) and frees them. */
static void stop(struct instance *xs, int n) {
  hub_stop_request();
  for (int i = 0; i < n; i++) {
    if (xs[i].running) {
      pthread_join(xs[i].thread, NULL);
      CHECK(xs[i].rc == HUB_OK);
    }
    hub_route_destroy(xs[i].route);
    hub_config_destroy(xs[i].cfg);
    memset(&xs[i], 0, sizeof xs[i]);
  }
  hub_stop_reset();
}

static struct hub_transport *open_h(const char *group, const char *txn) {
  struct hub_memory_cfg cfg = {4};
  struct hub_transport_opts o = {"test", group, NULL, txn};
  struct hub_transport *t = NULL;
  char e[256];
  return T->open(&cfg, &o, &t, e, sizeof e) == HUB_OK ? t : NULL;
}

/* Writes records i = from..to-1 to `in` in one transaction: key k(i % KEYS), value
 * "k<key>:<seq>" with seq = i / KEYS, plus `suffix` for the keys in `marked` (a bit set). */
static int put(int from, int to, const char *suffix, unsigned marked) {
  struct hub_transport *p = open_h(NULL, "test.put");
  int ok = p && T->begin(p) == HUB_OK;
  for (int i = from; ok && i < to; i++) {
    char k[16], v[64];
    int key = i % KEYS;
    snprintf(k, sizeof k, "k%d", key);
    snprintf(v, sizeof v, "k%d:%d%s", key, i / KEYS, marked & (1u << key) ? suffix : "");
    struct hub_msg *m = hub_msg_new(k, strlen(k), v, strlen(v));
    ok = m && hub_msg_header_set_str(m, "h", v) == HUB_OK && T->produce(p, "in", m) == HUB_OK;
    hub_msg_destroy(m);
  }
  ok = ok && T->commit(p) == HUB_OK;
  T->close(p);
  return ok;
}








/* Waits until `topic` holds n records (at most 30 s), then a while longer so that a duplicate
 * written late would show. */
static void wait_for(const char *topic, int n) {
  double t0 = now_ms();
  while (count(topic) < n && now_ms() - t0 < 30000) sleep_ms(10);
  sleep_ms(150);
}

/* Checks `out`: every record of seq 0..per_key-1 of each key not in `skip` exactly once, in
 * order per key, all of a key in one partition, with the input's key and header and an lt.id. */
static void check_out(int per_key, unsigned skip) {
  struct coll c = {0};
  CHECK(scan_topic("out", &c));
  int next[KEYS] = {0}, part[KEYS], expect = 0, bad = 0, order = 0, meta = 0;
  for (int k = 0; k < KEYS; k++) part[k] = -1, expect += skip & (1u << k) ? 0 : per_key;
  CHECK(c.n == expect);
  for (int i = 0; i < c.n; i++) {
    const struct hub_msg *m = c.v[i];
    int key, seq;
    if (sscanf((const char *)m->value, "k%d:%d", &key, &seq) != 2 || key < 0 || key >= KEYS) {
      bad++;
      continue;
    }
    if (part[key] < 0) part[key] = m->partition;
    order += seq != next[key] || part[key] != m->partition;
    next[key] = seq + 1;
    char k[16];
    snprintf(k, sizeof k, "k%d", key);
    const char *id = hub_msg_header_get_str(m, HUB_H_ID), *h = hub_msg_header_get_str(m, "h");
    meta += m->key_len != strlen(k) || memcmp(m->key, k, m->key_len) || !id || strlen(id) != 36 || !h ||
            strcmp(h, (const char *)m->value);
  }
  CHECK(bad == 0);
  CHECK(order == 0);
  CHECK(meta == 0);
  coll_clear(&c);
}

/* The sum of a route counter (lienthong_route_NAME_total) over every instance, from /metrics. */
static long long metric(const char *name) {
  char *text = hub_metrics_render_new(), prefix[128];
  long long sum = 0;
  snprintf(prefix, sizeof prefix, "lienthong_route_%s{route=\"r1\"} ", name);
  for (const char *p = text; p && (p = strstr(p, prefix)); p += strlen(prefix))
    sum += strtoll(p + strlen(prefix), NULL, 10);
  free(text);
  return sum;
}

/* Records left for the route's consumer group: none once everything was committed. */
static int left_in_group(void) {
  struct hub_transport *c = open_h("lienthong.r1", NULL);
  struct hub_msg *m = NULL;
  int n = 0;
  if (!c || T->subscribe(c, "in") != HUB_OK) return -1;
  while (T->poll(c, 50, &m) == HUB_OK && m) {
    n++;
    hub_msg_destroy(m);
  }
  T->close(c);
  return n;
}

static void finish(void) {
  hub_metrics_reset();
  CHECK(hub_memory_reset() == HUB_OK);
}

/* Every record reaches `out` once, in key order, with the offsets committed: a restarted
 * route goes on with the new records only. */
static void test_exactly_once(void) {
  struct instance x;
  CHECK(put(0, 200, "", 0));
  CHECK(start(&x, "t1", 0));
  wait_for("out", 200);
  CHECK(metric("produced_total") == 200);
  CHECK(metric("consumed_total") == 200);
  CHECK(metric("aborted_total") == 0);
  stop(&x, 1);
  check_out(20, 0);
  CHECK(count("r1.dlq") == 0); /* created at the start, empty */
  CHECK(left_in_group() == 0);
  CHECK(put(200, 250, "", 0));
  CHECK(start(&x, "t1", 0));
  wait_for("out", 250);
  stop(&x, 1);
  check_out(25, 0);
  finish();
}

/* A record the step rejects goes to the DLQ: original key, bytes and headers plus where and
 * why it failed; the route carries on with the others. */
static void test_dlq(void) {
  struct instance x;
  unsigned marked = 1u << 3;
  CHECK(put(0, 30, " REJECT", marked)); /* k3's three records */
  CHECK(start(&x, "t1", 0));
  wait_for("out", 27);
  stop(&x, 1);
  check_out(3, marked);
  CHECK(metric("dlq_total") == 3);
  CHECK(metric("rejected_total") == 3);
  CHECK(metric("produced_total") == 27);
  struct coll d = {0}, in = {0};
  CHECK(scan_topic("r1.dlq", &d) && scan_topic("in", &in));
  CHECK(d.n == 3);
  for (int i = 0; i < d.n; i++) {
    const struct hub_msg *m = d.v[i];
    char value[64], origin[64] = "";
    snprintf(value, sizeof value, "k3:%d REJECT", i);
    CHECK(m->key_len == 2 && !memcmp(m->key, "k3", 2));
    CHECK_STR((const char *)m->value, value);
    CHECK_STR(hub_msg_header_get_str(m, "h"), value);
    CHECK_STR(hub_msg_header_get_str(m, HUB_H_ERROR_STAGE), "steps[0].test-fault");
    CHECK_STR(hub_msg_header_get_str(m, HUB_H_ERROR_CODE), hub_err2name(HUB_ERR_STEP_REJECT));
    CHECK_CONTAINS(hub_msg_header_get_str(m, HUB_H_ERROR_REASON), "REJECT");
    CHECK_STR(hub_msg_header_get_str(m, HUB_H_ATTEMPTS), "1");
    CHECK_STR(hub_msg_header_get_str(m, HUB_H_ROUTE), "r1");
    for (int j = 0; j < in.n; j++)
      if (!strcmp((const char *)in.v[j]->value, value))
        snprintf(origin, sizeof origin, "in/%d/%lld", (int)in.v[j]->partition, (long long)in.v[j]->offset);
    CHECK_STR(hub_msg_header_get_str(m, HUB_H_ORIGIN), origin);
  }
  coll_clear(&d);
  coll_clear(&in);
  CHECK(left_in_group() == 0);
  finish();
}

/* Injected commit aborts: the engine redoes the batches from the committed offsets, and the
 * output holds every record once. */
static void test_commit_abort(void) {
  struct instance x;
  hub_memory_fail_commits("lienthong.r1.t1", 3);
  CHECK(put(0, 60, "", 0));
  CHECK(start(&x, "t1", 0));
  sleep_ms(50);
  CHECK(put(60, 100, "", 0));
  wait_for("out", 100);
  CHECK(metric("aborted_total") == 3);
  CHECK(metric("consumed_total") > 100); /* the aborted batches were read again */
  CHECK(metric("produced_total") == 100);
  stop(&x, 1);
  check_out(10, 0);
  CHECK(left_in_group() == 0);
  finish();
}

/* Two instances share the route's partitions while records arrive and rebalances are forced
 * (a second instance joining, then the hook): nothing lost, nothing twice, key order kept. */
static void test_rebalance(void) {
  struct instance x[2];
  memset(x, 0, sizeof x);
  CHECK(start(&x[0], "a", 300));
  double t0 = now_ms();
  for (int batch = 0; batch < 20; batch++) {
    CHECK(put(batch * 20, batch * 20 + 20, "", 0));
    if (batch == 5) CHECK(start(&x[1], "b", 300));
    sleep_ms(10);
    hub_memory_rebalance("lienthong.r1");
  }
  while (count("out") < 400 && now_ms() - t0 < 30000) {
    sleep_ms(15);
    hub_memory_rebalance("lienthong.r1");
  }
  wait_for("out", 400);
  CHECK(metric("aborted_total") > 0); /* rebalances did hit open transactions */
  CHECK(metric("produced_total") == 400);
  /* Both instances hold partitions once the group has settled. */
  char *text = hub_metrics_render_new();
  const char *p = text, *prefix = "lienthong_route_assigned_partitions{route=\"r1\"} ";
  int seen = 0, both = 1, total = 0;
  while (p && (p = strstr(p, prefix))) {
    int n = (int)strtol(p + strlen(prefix), NULL, 10);
    both &= n > 0;
    total += n;
    seen++;
    p += strlen(prefix);
  }
  free(text);
  CHECK(seen == 2 && both && total == 4);
  stop(x, 2);
  check_out(40, 0);
  CHECK(left_in_group() == 0);
  finish();
}

/* A step that splits one record into several (the map step with `split:`): every output is
 * produced in the input's transaction, after the first and in order, with the input's key (or
 * the split's), lt.parent = SHA-256 of the input and an lt.id of its own; an input whose split
 * fails goes to the DLQ with no output at all; injected commit aborts duplicate nothing. */
static void test_split(void) {
  char dir[] = "/tmp/lt-split-XXXXXX", mapping[256], steps[512];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(mapping, sizeof mapping, "%s/split.yaml", dir);
  FILE *f = fopen(mapping, "w");
  CHECK(f != NULL);
  if (!f) return;
  fputs("input: json\noutput: json\nsplit: {each: $.items, size: 2}\n"
        "rules:\n  - {to: seq, from: $.seq}\n  - {to: items, each: \"$.items[*]\"}\n",
        f);
  fclose(f);
  snprintf(steps, sizeof steps, "      - map: %s\n", mapping);
  /* 30 inputs (3 per key), each with 5 items: 3 outputs each; input 17 has no items */
  struct hub_transport *p = open_h(NULL, "test.put");
  int ok = p && T->begin(p) == HUB_OK;
  char parents[30][65];
  for (int i = 0; ok && i < 30; i++) {
    char k[16], v[128];
    snprintf(k, sizeof k, "k%d", i % KEYS);
    snprintf(v, sizeof v, "{\"seq\": %d, \"items\": %s}", i, i == 17 ? "[]" : "[1, 2, 3, 4, 5]");
    hub_sha256_hex(v, strlen(v), parents[i]);
    char id[32];
    snprintf(id, sizeof id, "input-%d", i);
    struct hub_msg *m = hub_msg_new(k, strlen(k), v, strlen(v));
    ok = m && hub_msg_header_set_str(m, HUB_H_ID, id) == HUB_OK && T->produce(p, "split.in", m) == HUB_OK;
    hub_msg_destroy(m);
  }
  CHECK(ok && T->commit(p) == HUB_OK);
  T->close(p);
  hub_memory_fail_commits("lienthong.r1.t1", 2);
  struct instance x;
  CHECK(start_route(&x, "t1", "split.in", "split.out", steps));
  wait_for("split.out", 29 * 3);
  CHECK(metric("aborted_total") == 2);
  CHECK(metric("produced_total") == 29 * 3);
  stop(&x, 1);
  struct coll c = {0};
  CHECK(scan_topic("split.out", &c));
  CHECK(c.n == 29 * 3);
  int next_seq[KEYS], next_chunk[KEYS], part[KEYS], bad = 0, ids_same = 0;
  for (int k = 0; k < KEYS; k++)
    next_seq[k] = k, next_chunk[k] = 0, part[k] = -1;
  for (int i = 0; i < c.n; i++) {
    const struct hub_msg *m = c.v[i];
    int seq = -1, first = -1;
    if (sscanf((const char *)m->value, "{\"seq\":%d,\"items\":[%d", &seq, &first) != 2 || seq < 0 || seq >= 30) {
      bad++;
      continue;
    }
    int key = seq % KEYS;
    char k[16];
    snprintf(k, sizeof k, "k%d", key);
    if (part[key] < 0) part[key] = m->partition;
    if (next_seq[key] == 17) next_seq[key] += KEYS; /* rejected: no output */
    /* per key: inputs in order, and each input's chunks 1,3,5 in order, in one partition */
    bad += seq != next_seq[key] || first != 1 + 2 * next_chunk[key] || part[key] != m->partition;
    bad += m->key_len != strlen(k) || memcmp(m->key, k, m->key_len);
    const char *parent = hub_msg_header_get_str(m, HUB_H_PARENT), *id = hub_msg_header_get_str(m, HUB_H_ID);
    bad += !parent || strcmp(parent, parents[seq]) || !id;
    for (int j = 0; id && j < i; j++) {
      const char *other = hub_msg_header_get_str(c.v[j], HUB_H_ID);
      ids_same += other && !strcmp(other, id);
    }
    if (++next_chunk[key] == 3) next_chunk[key] = 0, next_seq[key] += KEYS;
  }
  CHECK(bad == 0);
  CHECK(ids_same == 0); /* the first output keeps the input's lt.id, the others get their own */
  coll_clear(&c);
  CHECK(scan_topic("r1.dlq", &c));
  CHECK(c.n == 1 && strstr((const char *)c.v[0]->value, "\"seq\": 17"));
  CHECK(c.n == 1 && hub_msg_header_get_str(c.v[0], "lt.error.reason") &&
        strstr(hub_msg_header_get_str(c.v[0], "lt.error.reason"), "split needs a non-empty list"));
  coll_clear(&c);
  unlink(mapping);
  rmdir(dir);
  finish();
}

int main(void) {
  hub_log_set_level(HUB_LOG_ERROR);
  hub_stop_reset();
  T = hub_transport_get("memory");
  if (!T) {
    CHECK(T != NULL);
    return check_done();
  }
  test_exactly_once();
  test_dlq();
  test_commit_abort();
  test_rebalance();
  test_split();
  return check_done();
}
