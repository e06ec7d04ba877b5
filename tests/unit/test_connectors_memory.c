/* The connector runners on the `memory` transport, with the test source and sink
 * (tests/plugins): no broker.
 * - source: a start that fails for want of the cluster is retried; what the source acknowledged (its ack file) is exactly what the topic holds, each
 *   record once, with the cursor committed alongside; an emit whose transaction fails is not
 *   acknowledged, the source is paused and then resumed by the runner's probe; a new runner
 *   continues from the committed cursor.
 * - sink: a record that keeps answering RETRY holds only its partition (the others are
 *   delivered meanwhile; its own key waits), then goes to the DLQ; results are keyed like their
 *   input; a commit that aborts after delivery makes the sink see records again with the same
 *   lt.id. */
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
#include "hub/engine/source.h"
#include "hub/transport/memory/memory.h"
#include "hub/transport/transport.h"

static char dir[] = "/tmp/lt-connectors-XXXXXX";



/* The lines of a file (malloc'd array of malloc'd strings). */
struct lines {
  char **v;
  int n;
};

static struct lines read_lines(const char *name) {
  struct lines l = {0};
  char path[512], buf[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "r");
  while (f && fgets(buf, sizeof buf, f)) {
    buf[strcspn(buf, "\n")] = 0;
    char **v = realloc(l.v, (size_t)(l.n + 1) * sizeof *v);
    if (!v) break;
    l.v = v;
    l.v[l.n++] = strdup(buf);
  }
  if (f) fclose(f);
  return l;
}

static void lines_free(struct lines *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}





static struct coll records(const char *topic) {
  struct coll c = {0};
  scan_topic(topic, &c);
  return c;
}

static int wait_lines(const char *name, int n, int timeout_ms) {
  double t0 = now_ms();
  for (;;) {
    struct lines l = read_lines(name);
    int got = l.n;
    lines_free(&l);
    if (got >= n) return 1;
    if (now_ms() - t0 > timeout_ms) return 0;
    sleep_ms(10);
  }
}

/* Index of the record whose value is v in c, or -1. */
static int find_value(const struct coll *c, const char *v) {
  for (int i = 0; i < c->n; i++)
    if (!strcmp((const char *)c->v[i]->value, v)) return i;
  return -1;
}

static void test_source(void) {
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "hub: {transport: memory, instance: t, admin: {listen: ''}}\n"
           "connectors:\n"
           "  - {name: src1, type: test-source, topic: s.out, poll_interval: 10ms, count: 400, batch: 10,\n"
           "     keys: 7, ack_file: %s/ack, fail_starts: 2}\n",
           dir);
  struct hub_config *cfg = config_load_in(dir, yaml);
  CHECK(cfg && cfg->n_sources == 1);
  if (!cfg) return;
  char e[1024];
  struct hub_source_runner *s = NULL;
  CHECK(hub_source_runner_create(cfg, &cfg->sources[0], T, &s, e, sizeof e) == HUB_OK);
  if (!s) return;
  CHECK(hub_source_runner_start(s) == HUB_OK);
  CHECK(wait_lines("ack", 100, 60000));
  /* Three aborted commits: the runner redoes a transaction twice, so one emit fails. */
  hub_memory_fail_commits("lienthong.src1.t", 3);
  CHECK(wait_lines("ack", 400, 20000));
  sleep_ms(100);
  hub_source_runner_stop(s);
  hub_source_runner_destroy(s);

  struct lines ack = read_lines("ack");
  struct coll out = records("s.out");
  CHECK(ack.n == 400);
  CHECK(out.n == 400);
  int missing = 0, dup = 0, keyed = 0, tagged = 0;
  for (int i = 0; i < ack.n; i++) missing += find_value(&out, ack.v[i]) < 0;
  for (int i = 0; i < out.n; i++) {
    const struct hub_msg *m = out.v[i];
    char key[16];
    snprintf(key, sizeof key, "k%ld", strtol((const char *)m->value, NULL, 10) % 7);
    keyed += m->key_len == strlen(key) && !memcmp(m->key, key, m->key_len);
    tagged += hub_msg_header_get(m, HUB_H_ID) && hub_msg_header_get_str(m, HUB_H_SOURCE) &&
              !strcmp(hub_msg_header_get_str(m, HUB_H_SOURCE), "src1");
    for (int j = i + 1; j < out.n; j++) dup += !strcmp((const char *)m->value, (const char *)out.v[j]->value);
  }
  CHECK(missing == 0);
  CHECK(dup == 0);
  CHECK(keyed == 400);
  CHECK(tagged == 400);
  struct coll cur = records(HUB_TOPIC_CURSORS);
  CHECK(cur.n > 0 && cur.v[cur.n - 1]->key_len == 4 && !memcmp(cur.v[cur.n - 1]->key, "src1", 4));
  if (cur.n > 0) CHECK_STR((const char *)cur.v[cur.n - 1]->value, "400");

  char m[16384];
  char *text = hub_metrics_render_new();
  snprintf(m, sizeof m, "%s", text ? text : "");
  free(text);
  CHECK_CONTAINS(m, "lienthong_connector_records_total{connector=\"src1\",kind=\"source\"} 400\n");
  CHECK_CONTAINS(m, "lienthong_connector_failures_total{connector=\"src1\",kind=\"source\"} 1\n");
  CHECK_CONTAINS(m, "lienthong_connector_paused{connector=\"src1\"} 0\n"); /* paused, then resumed by the probe */
  coll_clear(&cur);
  coll_clear(&out);
  lines_free(&ack);

  /* A new runner continues from the committed cursor: 400..449, nothing again. */
  hub_config_destroy(cfg);
  snprintf(yaml, sizeof yaml,
           "hub: {transport: memory, instance: t, admin: {listen: ''}}\n"
           "connectors:\n"
           "  - {name: src1, type: test-source, topic: s.out, poll_interval: 10ms, count: 450, batch: 10,\n"
           "     keys: 7, ack_file: %s/ack}\n",
           dir);
  cfg = config_load_in(dir, yaml);
  s = NULL;
  CHECK(cfg && hub_source_runner_create(cfg, &cfg->sources[0], T, &s, e, sizeof e) == HUB_OK);
  if (s) {
    CHECK(hub_source_runner_start(s) == HUB_OK);
    CHECK(wait_lines("ack", 450, 60000));
    sleep_ms(100);
    hub_source_runner_destroy(s);
  }
  out = records("s.out");
  CHECK(out.n == 450);
  CHECK(find_value(&out, "449") >= 0 && find_value(&out, "450") < 0);
  coll_clear(&out);
  hub_config_destroy(cfg);
  hub_metrics_reset();
}

struct route_thread {
  struct hub_route *r;
  pthread_t th;
};

static void *run_route(void *p) {
  hub_route_run(((struct route_thread *)p)->r);
  return NULL;
}

/* Puts (key, value) pairs on `topic` in one transaction. */
static void put(const char *topic, const char *const *kv, int n) {
  struct hub_transport_opts o = {"test", NULL, NULL, "test.put"};
  struct hub_transport *t = NULL;
  char e[256];
  int ok = T->open(NULL, &o, &t, e, sizeof e) == HUB_OK && T->begin(t) == HUB_OK;
  for (int i = 0; ok && i < n; i++) {
    struct hub_msg *m = hub_msg_new(kv[2 * i], strlen(kv[2 * i]), kv[2 * i + 1], strlen(kv[2 * i + 1]));
    ok = m && T->produce(t, topic, m) == HUB_OK;
    hub_msg_destroy(m);
  }
  CHECK(ok && T->commit(t) == HUB_OK);
  if (t) T->close(t);
}

/* The position in the sink log of each delivery line of `value` with `answer` (first and last). */
static void positions(const struct lines *log, const char *value, const char *answer, int *first, int *last) {
  char v[128], a[64];
  snprintf(v, sizeof v, "\"value\":\"%s\"", value);
  snprintf(a, sizeof a, "\"answer\":\"%s\"", answer);
  *first = *last = -1;
  for (int i = 0; i < log->n; i++)
    if (strstr(log->v[i], v) && strstr(log->v[i], a)) {
      if (*first < 0) *first = i;
      *last = i;
    }
}

static void test_sink(void) {
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "hub: {transport: memory, instance: t, admin: {listen: ''}}\n"
           "connectors:\n"
           "  - {name: snk, type: test-sink, from: k.in, result: k.res, log_file: %s/sink.log, retry_if: STUCK,\n"
           "     give_result: true, errors: {retries: 3, backoff: 1s..1s}, batch: {max_wait: 5ms}}\n",
           dir);
  struct hub_config *cfg = config_load_in(dir, yaml);
  CHECK(cfg && cfg->n_routes == 1 && cfg->routes[0].sink);
  if (!cfg) return;
  char e[1024];
  struct route_thread rt = {0};
  CHECK(hub_route_create(cfg, &cfg->routes[0], T, &rt.r, e, sizeof e) == HUB_OK);
  if (!rt.r) return;
  /* k0 gets stuck; k0's later records and the other keys follow. */
  const char *kv[] = {"k0", "k0:0:STUCK", "k0", "k0:1", "k0", "k0:2", "k1", "k1:0", "k2", "k2:0", "k3", "k3:0",
                      "k4", "k4:0", "k5", "k5:0", "k6", "k6:0", "k7", "k7:0", "k1", "k1:1", "k2", "k2:1"};
  int n = (int)(sizeof kv / sizeof *kv / 2);
  put("k.in", kv, n);
  pthread_create(&rt.th, NULL, run_route, &rt);
  /* 4 attempts of the stuck record, one delivery each for the n - 1 others. */
  CHECK(wait_lines("sink.log", n - 1 + 4, 60000));
  double t0 = now_ms();
  struct coll dlq = {0};
  while (dlq.n == 0 && now_ms() - t0 < 60000) {
    coll_clear(&dlq);
    dlq = records("snk.dlq");
    sleep_ms(20);
  }
  sleep_ms(100);
  struct coll in = records("k.in");
  int p0 = -1;
  for (int i = 0; i < in.n; i++)
    if (in.v[i]->key_len == 2 && !memcmp(in.v[i]->key, "k0", 2)) p0 = in.v[i]->partition;
  struct lines log = read_lines("sink.log");
  int sf, sl, f, l, others = 0, flowed_early = 1, waited = 1;
  positions(&log, "k0:0:STUCK", "retry", &sf, &sl);
  CHECK(sf >= 0 && sl > sf);
  for (int i = 0; i < in.n; i++) {
    const char *v = (const char *)in.v[i]->value;
    if (!strcmp(v, "k0:0:STUCK")) continue;
    positions(&log, v, "ok", &f, &l);
    CHECK(f >= 0);
    if (in.v[i]->partition == p0)
      waited &= f > sl; /* behind the stuck record in its partition: after its last attempt */
    else
      others++, flowed_early &= f < sl; /* other partitions: delivered while it waited */
  }
  CHECK(others > 0);
  CHECK(flowed_early);
  CHECK(waited);
  CHECK(dlq.n == 1);
  if (dlq.n == 1) {
    CHECK_STR((const char *)dlq.v[0]->value, "k0:0:STUCK");
    CHECK_STR(hub_msg_header_get_str(dlq.v[0], HUB_H_ERROR_STAGE), "sink.test-sink");
    CHECK_STR(hub_msg_header_get_str(dlq.v[0], HUB_H_ATTEMPTS), "4");
  }
  struct coll res = records("k.res");
  CHECK(res.n == n - 1);
  int keyed = 0;
  for (int i = 0; i < res.n; i++) {
    const char *d = strstr((const char *)res.v[i]->value, "\"delivered\":\"k");
    keyed += d && res.v[i]->key_len == 2 && !memcmp(res.v[i]->key, d + 13, 2) && hub_msg_header_get(res.v[i], "lt.parent");
  }
  CHECK(keyed == n - 1);
  coll_clear(&res);
  lines_free(&log);
  coll_clear(&dlq);

  /* An abort after delivery: the sink sees the aborted records again, with the same lt.id. k5 and
   * k6 may sit on different partitions and be committed apart: then only the first commit fails,
   * and only its records come twice. */
  hub_memory_fail_commits("lienthong.snk.t", 1);
  const char *kv2[] = {"k5", "again:1", "k6", "again:2"};
  put("k.in", kv2, 2);
  const char *again[] = {"\"value\":\"again:1\"", "\"value\":\"again:2\""};
  int seen[2] = {0, 0}, bad = 0;
  t0 = now_ms();
  while (!(seen[0] && seen[1] && seen[0] + seen[1] >= 3) && now_ms() - t0 < 60000) {
    sleep_ms(20);
    log = read_lines("sink.log");
    seen[0] = seen[1] = 0;
    for (int i = 0; i < log.n; i++)
      for (int v = 0; v < 2; v++) seen[v] += strstr(log.v[i], again[v]) != NULL;
    lines_free(&log);
  }
  CHECK(seen[0] >= 1 && seen[1] >= 1 && seen[0] + seen[1] >= 3);
  log = read_lines("sink.log");
  for (int v = 0; v < 2; v++) {
    char id1[64] = "";
    for (int i = 0; i < log.n; i++) {
      const char *id = strstr(log.v[i], "\"id\":\"");
      if (!strstr(log.v[i], again[v]) || !id) continue;
      char cur[64];
      snprintf(cur, sizeof cur, "%.36s", id + 6);
      if (!*id1)
        snprintf(id1, sizeof id1, "%s", cur);
      else
        bad |= strcmp(id1, cur) != 0;
    }
    CHECK(*id1);
  }
  CHECK(!bad);
  lines_free(&log);
  t0 = now_ms();
  while (now_ms() - t0 < 60000) {
    res = records("k.res");
    int done = res.n == n + 1;
    coll_clear(&res);
    if (done) break;
    sleep_ms(20);
  }
  res = records("k.res");
  CHECK(res.n == n + 1); /* one result each, the aborted ones not visible */
  coll_clear(&res);
  coll_clear(&in);

  hub_stop_request();
  pthread_join(rt.th, NULL);
  hub_stop_reset();
  hub_route_destroy(rt.r);
  hub_config_destroy(cfg);
  hub_metrics_reset();
}

int main(void) {
  hub_log_set_level(HUB_LOG_ERROR);
  T = hub_transport_get("memory");
  CHECK(T != NULL);
  if (!T || !mkdtemp(dir)) return check_done();
  test_source();
  test_sink();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return check_done();
}
