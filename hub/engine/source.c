/* The source runner (source.h) and hub_source_emit (connector.h).
 *
 * Emits are committed by a leader: the first caller that finds no commit running takes every
 * emit waiting at that moment, writes their records and the newest cursor in one transaction,
 * commits, and wakes each caller with the outcome. Callers arriving meanwhile wait and form the
 * next batch, so a busy webhook costs one commit per batch, not per call, and nobody is
 * answered before their records are committed. */
#include "hub/engine/source.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/backoff.h"
#include "hub/core/log.h"
#include "hub/core/metrics.h"
#include "hub/core/registry.h"
#include "hub/core/stop.h"

#define COMMIT_TRIES 3      /* an aborted transaction is redone this often before the callers hear of it */
#define PROBE_EVERY_MS 500  /* while paused: how often the transport is tried again */

struct emit_req {
  struct hub_msg *const *m;
  size_t n;
  const void *cursor;
  size_t cursor_len;
  hub_err_t rc;
  int done;
  struct emit_req *next;
};

struct hub_source_ctx {
  const struct hub_source_cfg *cfg;
  const struct hub_source_ops *ops;
  void *state;
  const struct hub_transport_ops *tops;
  const void *tcfg;
  const char *base_dir;
  struct hub_transport *t; /* used by the leader only (or the runner thread before start) */
  char txn_id[400], client_id[300];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct emit_req *head, *tail; /* waiting for the next commit */
  int leading;                  /* a commit (or a probe) is running */
  int stopping;
  int paused;
  struct hub_connector_metrics *metrics;
  pthread_t thread;
  int thread_started;
  atomic_int started;
};

struct hub_source_runner {
  struct hub_source_ctx c;
};

const char *hub_source_name(const struct hub_source_ctx *c) { return c->cfg->name; }
const char *hub_source_topic(const struct hub_source_ctx *c) { return c->cfg->topic; }

static void sleep_ms(int64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Takes the right to use the transport (under c->mu); returns 0 when stopping instead. */
static int lead(struct hub_source_ctx *c) {
  while (c->leading && !c->stopping) pthread_cond_wait(&c->cv, &c->mu);
  if (c->stopping) return 0;
  c->leading = 1;
  return 1;
}

static void unlead(struct hub_source_ctx *c) {
  c->leading = 0;
  pthread_cond_broadcast(&c->cv);
}

/* The record as it goes to the topic: lt.id and lt.source when the source gave none. The copy
 * borrows the value (produce copies it anyway): a big record is not held once more. */
static hub_err_t produce_record(struct hub_source_ctx *c, const struct hub_msg *m) {
  struct hub_msg *w = hub_msg_dup_borrow(m);
  hub_err_t rc = w ? HUB_OK : HUB_ERR_NOMEM;
  if (rc == HUB_OK && !hub_msg_header_get(w, HUB_H_ID)) {
    char id[37];
    hub_uuid7(id);
    rc = hub_msg_header_set_str(w, HUB_H_ID, id);
  }
  if (rc == HUB_OK && !hub_msg_header_get(w, HUB_H_SOURCE)) rc = hub_msg_header_set_str(w, HUB_H_SOURCE, c->cfg->name);
  if (rc == HUB_OK) rc = c->tops->produce(c->t, m->topic && *m->topic ? m->topic : c->cfg->topic, w);
  hub_msg_destroy(w);
  return rc;
}

/* One transaction with every record of `batch` and the newest cursor among them. */
static hub_err_t commit_once(struct hub_source_ctx *c, struct emit_req *batch) {
  hub_err_t rc = c->tops->begin(c->t);
  const struct emit_req *last_cursor = NULL;
  for (struct emit_req *r = batch; rc == HUB_OK && r; r = r->next) {
    for (size_t i = 0; rc == HUB_OK && i < r->n; i++) rc = produce_record(c, r->m[i]);
    if (r->cursor) last_cursor = r;
  }
  if (rc == HUB_OK && last_cursor) {
    struct hub_msg *cm = hub_msg_new(c->cfg->name, strlen(c->cfg->name), last_cursor->cursor, last_cursor->cursor_len);
    rc = cm ? c->tops->produce(c->t, HUB_TOPIC_CURSORS, cm) : HUB_ERR_NOMEM;
    hub_msg_destroy(cm);
  }
  if (rc == HUB_OK) return c->tops->commit(c->t); /* aborts (and says so) by itself on failure */
  if (rc != HUB_ERR_ABORTED) c->tops->abort(c->t);
  return rc;
}

static hub_err_t commit_batch(struct hub_source_ctx *c, struct emit_req *batch) {
  if (!c->t) return HUB_ERR_TRANSPORT;
  hub_err_t rc = HUB_ERR_ABORTED;
  for (int attempt = 1; attempt <= COMMIT_TRIES && rc == HUB_ERR_ABORTED && !hub_stop_requested(); attempt++)
    rc = commit_once(c, batch);
  return rc == HUB_ERR_ABORTED && hub_stop_requested() ? HUB_ERR_STOPPED : rc;
}

/* Backpressure: pause the plugin after a failed commit; the runner thread probes and resumes. */
static void set_paused(struct hub_source_ctx *c, int paused) {
  if (c->paused == paused) return;
  c->paused = paused;
  atomic_store(&c->metrics->paused, paused);
  hub_log(paused ? HUB_LOG_WARN : HUB_LOG_INFO, "source", "%s %s", c->cfg->name,
          paused ? "paused: the transport cannot take writes" : "resumed");
  if (paused && c->ops->pause) c->ops->pause(c->state);
  if (!paused && c->ops->resume) c->ops->resume(c->state);
}

hub_err_t hub_source_emit(struct hub_source_ctx *c, struct hub_msg *const *m, size_t n, const void *cursor,
                          size_t cursor_len) {
  struct emit_req req = {m, n, cursor, cursor_len, HUB_OK, 0, NULL};
  pthread_mutex_lock(&c->mu);
  if (c->stopping || hub_stop_requested()) {
    pthread_mutex_unlock(&c->mu);
    return HUB_ERR_STOPPED;
  }
  if (c->tail)
    c->tail->next = &req;
  else
    c->head = &req;
  c->tail = &req;
  while (!req.done) {
    if (c->leading) {
      pthread_cond_wait(&c->cv, &c->mu);
      continue;
    }
    /* Lead: take everything waiting now; later callers form the next batch. */
    c->leading = 1;
    struct emit_req *batch = c->head;
    c->head = c->tail = NULL;
    pthread_mutex_unlock(&c->mu);
    hub_err_t rc = commit_batch(c, batch);
    size_t records = 0, calls = 0;
    for (struct emit_req *r = batch; r; r = r->next) records += r->n, calls++;
    if (rc == HUB_OK) {
      atomic_fetch_add(&c->metrics->records, records);
      atomic_fetch_add(&c->metrics->commits, 1);
    } else {
      atomic_fetch_add(&c->metrics->failures, calls);
      hub_log(HUB_LOG_WARN, "source", "%s: %zu record(s) of %zu call(s) not committed: %s", c->cfg->name, records,
              calls, hub_err2name(rc));
    }
    pthread_mutex_lock(&c->mu);
    for (struct emit_req *r = batch, *next; r; r = next) {
      next = r->next; /* r lives on its caller's stack: read next before it may return */
      r->rc = rc;
      r->done = 1;
    }
    if (rc != HUB_OK && rc != HUB_ERR_STOPPED) set_paused(c, 1);
    unlead(c);
  }
  pthread_mutex_unlock(&c->mu);
  return req.rc;
}

struct cursor_scan {
  const char *name;
  void *value;
  size_t len;
  int found;
};

static int on_cursor(void *ctx, const struct hub_msg *m) {
  struct cursor_scan *s = ctx;
  if (m->key_len != strlen(s->name) || memcmp(m->key, s->name, m->key_len)) return 0;
  void *v = malloc(m->value_len ? m->value_len : 1);
  if (!v) return 1;
  memcpy(v, m->value, m->value_len);
  free(s->value);
  s->value = v;
  s->len = m->value_len;
  s->found = 1;
  return 0;
}

hub_err_t hub_source_cursor_get(struct hub_source_ctx *c, void **cursor, size_t *len, char *errbuf,
                                size_t errbuf_size) {
  struct cursor_scan s = {c->cfg->name, NULL, 0, 0};
  *cursor = NULL;
  *len = 0;
  pthread_mutex_lock(&c->mu);
  if (!lead(c)) {
    pthread_mutex_unlock(&c->mu);
    return HUB_ERR_STOPPED;
  }
  pthread_mutex_unlock(&c->mu);
  hub_err_t rc = c->t ? c->tops->scan(c->t, HUB_TOPIC_CURSORS, on_cursor, &s, errbuf, errbuf_size) : HUB_ERR_TRANSPORT;
  if (rc == HUB_ERR_NOT_FOUND) rc = HUB_OK; /* no source committed a cursor yet */
  pthread_mutex_lock(&c->mu);
  unlead(c);
  pthread_mutex_unlock(&c->mu);
  if (rc == HUB_OK && s.found) {
    *cursor = s.value;
    *len = s.len;
  } else {
    free(s.value);
  }
  return rc;
}

/* Runs fn with the transport to itself (as cursor_get does), so it never meets a commit. */
static hub_err_t with_transport(struct hub_source_ctx *c, hub_err_t (*fn)(struct hub_source_ctx *c, void *arg),
                                void *arg) {
  pthread_mutex_lock(&c->mu);
  if (!lead(c)) {
    pthread_mutex_unlock(&c->mu);
    return HUB_ERR_STOPPED;
  }
  pthread_mutex_unlock(&c->mu);
  hub_err_t rc = c->t ? fn(c, arg) : HUB_ERR_TRANSPORT;
  pthread_mutex_lock(&c->mu);
  unlead(c);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

struct scan_args {
  const char *topic;
  hub_scan_cb cb;
  void *ctx;
  char *errbuf;
  size_t errbuf_size;
};

static hub_err_t do_scan(struct hub_source_ctx *c, void *arg) {
  struct scan_args *a = arg;
  hub_err_t rc = c->tops->scan(c->t, a->topic, a->cb, a->ctx, a->errbuf, a->errbuf_size);
  return rc == HUB_ERR_NOT_FOUND ? HUB_OK : rc; /* a topic nobody wrote yet has no records */
}

hub_err_t hub_source_scan(struct hub_source_ctx *c, const char *topic, hub_scan_cb cb, void *ctx, char *errbuf,
                          size_t errbuf_size) {
  struct scan_args a = {topic, cb, ctx, errbuf, errbuf_size};
  return with_transport(c, do_scan, &a);
}

static hub_err_t do_ensure(struct hub_source_ctx *c, void *arg) {
  struct scan_args *a = arg;
  return c->tops->ensure_topics(c->t, &a->topic, 1, a->errbuf, a->errbuf_size);
}

hub_err_t hub_source_ensure_topic(struct hub_source_ctx *c, const char *topic, char *errbuf, size_t errbuf_size) {
  struct scan_args a = {topic, NULL, NULL, errbuf, errbuf_size};
  return with_transport(c, do_ensure, &a);
}

hub_err_t hub_source_runner_create(const struct hub_config *cfg, const struct hub_source_cfg *scfg,
                                   const struct hub_transport_ops *transport, struct hub_source_runner **out,
                                   char *errbuf, size_t errbuf_size) {
  *out = NULL;
  const struct hub_source_ops *ops = hub_registry_get(HUB_PLUGIN_SOURCE, scfg->plugin->name);
  if (!ops) return hub_node_error(scfg->node, errbuf, errbuf_size, "unknown source '%s'", scfg->plugin->name);
  struct hub_source_runner *s = calloc(1, sizeof *s);
  if (!s) return HUB_ERR_NOMEM;
  struct hub_source_ctx *c = &s->c;
  c->cfg = scfg;
  c->ops = ops;
  c->tops = transport;
  c->tcfg = cfg->transport_cfg;
  c->base_dir = cfg->base_dir;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  /* One transactional id per source instance: a restarted instance fences its predecessor. */
  snprintf(c->txn_id, sizeof c->txn_id, "lienthong.%s.%s", scfg->name, cfg->hub.instance);
  snprintf(c->client_id, sizeof c->client_id, "lienthong-%s", scfg->name);
  struct hub_plugin_env env = {cfg->base_dir, cfg->keys, scfg->name, scfg->options};
  hub_err_t rc = ops->create(scfg->plugin_cfg, &env, c, &c->state, errbuf, errbuf_size);
  if (rc == HUB_OK && !(c->metrics = hub_metrics_connector_create(scfg->name, "source"))) rc = HUB_ERR_NOMEM;
  if (rc != HUB_OK) {
    hub_source_runner_destroy(s);
    return rc;
  }
  c->metrics->health = ops->health;
  hub_metrics_connector_set_state(c->metrics, c->state);
  *out = s;
  return HUB_OK;
}

/* Opens the transport and creates the topics, retrying while the cluster is away. */
static hub_err_t connect_source(struct hub_source_ctx *c) {
  char errbuf[1024];
  struct hub_transport_opts opts = {c->client_id, NULL, NULL, c->txn_id, c->base_dir};
  for (int attempt = 1; !hub_stop_requested() && !c->stopping; attempt++) {
    hub_err_t rc = c->t ? HUB_OK : c->tops->open(c->tcfg, &opts, &c->t, errbuf, sizeof errbuf);
    if (rc == HUB_ERR_CONFIG) {
      hub_log(HUB_LOG_ERROR, "source", "%s cannot start: %s", c->cfg->name, errbuf);
      return rc;
    }
    if (rc == HUB_OK) {
      const char *topics[] = {c->cfg->topic, HUB_TOPIC_CURSORS};
      rc = c->tops->ensure_topics(c->t, topics, 2, errbuf, sizeof errbuf);
    }
    if (rc == HUB_OK) return HUB_OK;
    int64_t d = hub_backoff_delay_ms(500, 10000, attempt, hub_backoff_random());
    hub_log(HUB_LOG_WARN, "source", "%s starting: %s; retrying in %lld ms", c->cfg->name, errbuf, (long long)d);
    for (int64_t left = d; left > 0 && !hub_stop_requested() && !c->stopping; left -= 50) sleep_ms(50);
  }
  return HUB_ERR_STOPPED;
}

/* While paused: an empty transaction says whether the transport takes writes again. */
static void probe(struct hub_source_ctx *c) {
  pthread_mutex_lock(&c->mu);
  int paused = c->paused, mine = paused && lead(c);
  pthread_mutex_unlock(&c->mu);
  if (!mine) return;
  hub_err_t rc = c->tops->begin(c->t);
  if (rc == HUB_OK) rc = c->tops->commit(c->t);
  else if (rc != HUB_ERR_ABORTED) c->tops->abort(c->t);
  pthread_mutex_lock(&c->mu);
  if (rc == HUB_OK) set_paused(c, 0);
  unlead(c);
  pthread_mutex_unlock(&c->mu);
}

static void *runner_main(void *arg) {
  struct hub_source_ctx *c = arg;
  char errbuf[1024];
  hub_log_set_context("connector", c->cfg->name);
  if (connect_source(c) != HUB_OK) goto out;
  /* A start that fails for want of the cluster (a topic just created has no leader yet, the
   * cursor cannot be read) is retried; a configuration error is final. */
  for (int attempt = 1; c->ops->start; attempt++) {
    hub_err_t rc = c->ops->start(c->state, errbuf, sizeof errbuf);
    if (rc == HUB_OK) break;
    if (rc == HUB_ERR_CONFIG || rc == HUB_ERR_STOPPED || hub_stop_requested() || c->stopping) {
      hub_log(HUB_LOG_ERROR, "source", "%s cannot start: %s", c->cfg->name, errbuf);
      goto out;
    }
    int64_t d = hub_backoff_delay_ms(200, 5000, attempt, hub_backoff_random());
    hub_log(HUB_LOG_WARN, "source", "%s starting: %s; retrying in %lld ms", c->cfg->name, errbuf, (long long)d);
    for (int64_t left = d; left > 0 && !hub_stop_requested() && !c->stopping; left -= 50) sleep_ms(50);
  }
  atomic_store(&c->started, 1);
  atomic_store(&c->metrics->running, 1);
  hub_log(HUB_LOG_INFO, "source", "%s started: records go to %s", c->cfg->name, c->cfg->topic);
  int64_t since_poll = c->cfg->poll_interval_ms, since_probe = 0;
  while (!hub_stop_requested() && !c->stopping) {
    if (c->paused && since_probe >= PROBE_EVERY_MS) {
      since_probe = 0;
      probe(c);
    } else if (!c->paused && c->ops->poll && since_poll >= c->cfg->poll_interval_ms) {
      since_poll = 0;
      hub_err_t rc = c->ops->poll(c->state);
      if (rc != HUB_OK && rc != HUB_ERR_STOPPED)
        hub_log(HUB_LOG_WARN, "source", "%s: poll failed: %s", c->cfg->name, hub_err2name(rc));
    }
    sleep_ms(10);
    since_poll += 10;
    since_probe += 10;
  }
out:
  atomic_store(&c->metrics->running, 0);
  hub_log_set_context(NULL, NULL);
  return NULL;
}

hub_err_t hub_source_runner_start(struct hub_source_runner *s) {
  if (pthread_create(&s->c.thread, NULL, runner_main, &s->c) != 0) return HUB_ERR_NOMEM;
  s->c.thread_started = 1;
  return HUB_OK;
}

int hub_source_runner_started(struct hub_source_runner *s) { return atomic_load(&s->c.started); }

void hub_source_runner_stop(struct hub_source_runner *s) {
  if (!s) return;
  struct hub_source_ctx *c = &s->c;
  if (atomic_load(&c->started) && c->ops->stop) c->ops->stop(c->state); /* no new emits after this */
  pthread_mutex_lock(&c->mu);
  c->stopping = 1;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (c->thread_started) pthread_join(c->thread, NULL);
  c->thread_started = 0;
}

void hub_source_runner_destroy(struct hub_source_runner *s) {
  if (!s) return;
  struct hub_source_ctx *c = &s->c;
  hub_source_runner_stop(s);
  if (c->metrics) hub_metrics_connector_set_state(c->metrics, NULL);
  if (c->state) c->ops->destroy(c->state);
  if (c->t) c->tops->close(c->t);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(s);
}
