/* Source `test-source` (tests only): drives the source contract from test data.
 *
 * As a poller (threads: 0) it emits `batch` numbered records per poll, keyed by number % keys,
 * with its cursor (the next number) in the same transaction, and starts again from the cursor
 * it committed last. As a pushing source (threads: N) N threads emit concurrently, as webhook
 * callers would, without a cursor. Either way, every record is written to `ack_file` (one value
 * per line, flushed to disk) only after hub_source_emit returned OK: the file is what a caller
 * was told, and a test checks it against what the topic holds after a SIGKILL. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hub/core/registry.h"
#include "hub/engine/connector.h"

struct cfg {
  int64_t count;   /* records in all; -1: no end */
  int64_t batch;   /* records per emit */
  int64_t keys;    /* distinct keys */
  int64_t threads; /* 0: poller; N: N pushing threads */
  char *ack_file;
  char *unhealthy_file; /* while this file exists the source reports itself unhealthy */
  int64_t fail_starts;  /* the first N starts fail as if the cluster were not ready */
};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"count", HUB_CFG_INT, F(count), "-1", 0, "records to emit in all (-1: until stopped)", NULL, NULL, -1,
     1000000000},
    {"batch", HUB_CFG_INT, F(batch), "10", 0, "records per emit", NULL, NULL, 1, 100000},
    {"keys", HUB_CFG_INT, F(keys), "8", 0, "distinct record keys", NULL, NULL, 1, 1000000},
    {"threads", HUB_CFG_INT, F(threads), "0", 0, "0: a poller with a cursor; N: N threads emitting concurrently",
     NULL, NULL, 0, 64},
    {"ack_file", HUB_CFG_STR, F(ack_file), NULL, 1, "file that gets each acknowledged record's value, one a line"},
    {"unhealthy_file", HUB_CFG_STR, F(unhealthy_file), NULL, 0, "report unhealthy while this file exists"},
    {"fail_starts", HUB_CFG_INT, F(fail_starts), "0", 0, "the first N starts fail as a transport error would",
     NULL, NULL, 0, 100},
    {NULL},
};
static const struct hub_cfg_map map = {"test-source", entries};

struct state {
  const struct cfg *cfg;
  struct hub_source_ctx *ctx;
  FILE *ack;
  pthread_mutex_t ack_mu;
  int64_t next; /* poller: the next number */
  int64_t starts;
  atomic_llong pushed;
  atomic_int stop, paused;
  pthread_t *threads;
  int n_threads;
};

/* Writes acknowledged values and pushes them to disk before the next emit. */
static void ack(struct state *s, struct hub_msg *const *m, size_t n) {
  pthread_mutex_lock(&s->ack_mu);
  for (size_t i = 0; i < n; i++) fprintf(s->ack, "%s\n", (const char *)m[i]->value);
  fflush(s->ack);
  fdatasync(fileno(s->ack));
  pthread_mutex_unlock(&s->ack_mu);
}

static hub_err_t emit_batch(struct state *s, int64_t first, size_t n, const char *prefix, int with_cursor) {
  struct hub_msg **m = calloc(n, sizeof *m);
  hub_err_t rc = m ? HUB_OK : HUB_ERR_NOMEM;
  for (size_t i = 0; rc == HUB_OK && i < n; i++) {
    char key[32], value[96];
    int64_t seq = first + (int64_t)i;
    snprintf(key, sizeof key, "k%lld", (long long)(seq % s->cfg->keys));
    snprintf(value, sizeof value, "%s%lld", prefix, (long long)seq);
    if (!(m[i] = hub_msg_new(key, strlen(key), value, strlen(value)))) rc = HUB_ERR_NOMEM;
  }
  char cursor[32];
  int clen = snprintf(cursor, sizeof cursor, "%lld", (long long)(first + (int64_t)n));
  if (rc == HUB_OK) rc = hub_source_emit(s->ctx, m, n, with_cursor ? cursor : NULL, with_cursor ? (size_t)clen : 0);
  if (rc == HUB_OK) ack(s, m, n);
  for (size_t i = 0; m && i < n; i++) hub_msg_destroy(m[i]);
  free(m);
  return rc;
}

static void *push_main(void *arg) {
  struct state *s = arg;
  static atomic_int next_id;
  int id = atomic_fetch_add(&next_id, 1);
  char prefix[32];
  snprintf(prefix, sizeof prefix, "t%d:%d:", id, (int)getpid());
  int64_t n = 0;
  while (!atomic_load(&s->stop)) {
    if (atomic_load(&s->paused)) {
      usleep(10000);
      continue;
    }
    if (s->cfg->count >= 0 && atomic_fetch_add(&s->pushed, s->cfg->batch) >= s->cfg->count) break;
    if (emit_batch(s, n, (size_t)s->cfg->batch, prefix, 0) == HUB_OK)
      n += s->cfg->batch;
    else
      usleep(20000); /* the transport said no: these were not acknowledged; try new ones later */
  }
  return NULL;
}

static void ts_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  if (s->ack) fclose(s->ack);
  pthread_mutex_destroy(&s->ack_mu);
  free(s->threads);
  free(s);
}

static hub_err_t ts_create(const void *cfg, const struct hub_plugin_env *env, struct hub_source_ctx *ctx, void **state,
                           char *errbuf, size_t errbuf_size) {
  (void)env, (void)errbuf, (void)errbuf_size;
  struct state *s = calloc(1, sizeof *s);
  if (!s) return HUB_ERR_NOMEM;
  s->cfg = cfg;
  s->ctx = ctx;
  pthread_mutex_init(&s->ack_mu, NULL);
  *state = s;
  return HUB_OK;
}

static hub_err_t ts_start(void *p, char *errbuf, size_t errbuf_size) {
  struct state *s = p;
  if (!s->ack && !(s->ack = fopen(s->cfg->ack_file, "a"))) { /* start may be called again */
    snprintf(errbuf, errbuf_size, "cannot open %s", s->cfg->ack_file);
    return HUB_ERR_CONFIG;
  }
  if (s->starts++ < s->cfg->fail_starts) {
    snprintf(errbuf, errbuf_size, "test-source: start %lld of %lld fails on purpose", (long long)s->starts,
             (long long)s->cfg->fail_starts);
    return HUB_ERR_TRANSPORT;
  }
  void *cur = NULL;
  size_t len = 0;
  hub_err_t rc = hub_source_cursor_get(s->ctx, &cur, &len, errbuf, errbuf_size);
  if (rc != HUB_OK) return rc;
  if (cur) {
    char num[32] = "";
    memcpy(num, cur, len < sizeof num - 1 ? len : sizeof num - 1);
    s->next = strtoll(num, NULL, 10);
    free(cur);
  }
  s->threads = calloc((size_t)s->cfg->threads + 1, sizeof *s->threads);
  for (int i = 0; s->threads && i < s->cfg->threads; i++)
    if (pthread_create(&s->threads[i], NULL, push_main, s) == 0) s->n_threads++;
  return HUB_OK;
}

static hub_err_t ts_poll(void *p) {
  struct state *s = p;
  if (s->cfg->threads > 0) return HUB_OK;
  int64_t n = s->cfg->batch;
  if (s->cfg->count >= 0 && s->next + n > s->cfg->count) n = s->cfg->count - s->next;
  if (n <= 0) return HUB_OK;
  hub_err_t rc = emit_batch(s, s->next, (size_t)n, "", 1);
  if (rc == HUB_OK) s->next += n;
  return rc;
}

static void ts_pause(void *p) { atomic_store(&((struct state *)p)->paused, 1); }
static void ts_resume(void *p) { atomic_store(&((struct state *)p)->paused, 0); }

static void ts_stop(void *p) {
  struct state *s = p;
  atomic_store(&s->stop, 1);
  for (int i = 0; i < s->n_threads; i++) pthread_join(s->threads[i], NULL);
  s->n_threads = 0;
}

static int ts_health(void *p, char *why, size_t why_size) {
  struct state *s = p;
  if (s->cfg->unhealthy_file && access(s->cfg->unhealthy_file, F_OK) == 0) {
    snprintf(why, why_size, "%s exists", s->cfg->unhealthy_file);
    return 0;
  }
  return 1;
}

static const struct hub_source_ops ops = {
    .info = {.name = "test-source",
             .summary = "numbered records for tests, acknowledged to a file only after commit (not shipped)",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = ts_create,
    .start = ts_start,
    .poll = ts_poll,
    .pause = ts_pause,
    .resume = ts_resume,
    .stop = ts_stop,
    .health = ts_health,
    .destroy = ts_destroy,
};
HUB_SOURCE_PLUGIN(hub_plugin_source_test, ops);
