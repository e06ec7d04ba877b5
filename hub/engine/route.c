/* The route engine (see route.h). One thread runs one route instance: poll, run the steps,
 * produce the result or the DLQ record inside the open transaction, and commit the batch
 * together with the consumer offsets. */
#include "hub/engine/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/backoff.h"
#include "hub/core/log.h"
#include "hub/core/stop.h"
#include "hub/core/xml.h"
#include "hub/engine/connector.h"

struct hub_route {
  const struct hub_route_cfg *cfg;
  const struct hub_transport_ops *tops;
  const void *tcfg; /* the transport's options */
  const char *base_dir;
  struct hub_transport *t;
  struct hub_step_chain *chain;
  struct hub_route_metrics *metrics;
  char group[300], txn_id[400], client_id[300];
  /* per open transaction */
  double *batch_t0; /* consume time of each record in the batch */
  size_t batch_n, batch_cap;
  int stretch; /* 0..3: the transaction may last max_wait << stretch (see hub_route_run) */
  unsigned long long b_produced, b_dlq, b_rejected;
  /* Records waiting for their retry, each holding only its own (paused) partition. */
  struct hold {
    struct hub_msg *m;
    double due; /* monotonic seconds */
  } *holds;
  size_t n_holds, cap_holds;
  /* A sink connector's route delivers each record after its steps. */
  const struct hub_sink_ops *sink;
  void *sink_state;
  struct hub_connector_metrics *sink_metrics;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps up to ms, waking early when a stop is requested; the route stays "alive". */
static void sleep_ms(struct hub_route *r, int64_t ms) {
  while (ms > 0 && !hub_stop_requested()) {
    hub_metrics_heartbeat(r->metrics);
    int64_t step = ms > 50 ? 50 : ms;
    struct timespec ts = {(time_t)(step / 1000), (long)(step % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    ms -= step;
  }
}

hub_err_t hub_route_create(const struct hub_config *cfg, const struct hub_route_cfg *rcfg,
                           const struct hub_transport_ops *transport, struct hub_route **out, char *errbuf,
                           size_t errbuf_size) {
  struct hub_route *r = calloc(1, sizeof *r);
  *out = NULL;
  if (!r) return HUB_ERR_NOMEM;
  r->cfg = rcfg;
  r->tops = transport;
  r->tcfg = cfg->transport_cfg;
  r->base_dir = cfg->base_dir;
  snprintf(r->group, sizeof r->group, "lienthong.%s", rcfg->name);
  /* One transactional id per route instance: a restarted instance fences its predecessor. */
  snprintf(r->txn_id, sizeof r->txn_id, "lienthong.%s.%s", rcfg->name, cfg->hub.instance);
  snprintf(r->client_id, sizeof r->client_id, "lienthong-%s", rcfg->name);
  struct hub_step_env env = {cfg->base_dir, cfg->keys, rcfg->name};
  hub_err_t rc = hub_step_chain_create(rcfg->steps, &env, &r->chain, errbuf, errbuf_size);
  if (rc == HUB_OK && rcfg->sink) {
    struct hub_plugin_env penv = {cfg->base_dir, cfg->keys, rcfg->name, rcfg->options};
    r->sink = hub_registry_get(HUB_PLUGIN_SINK, rcfg->sink->name);
    rc = r->sink ? r->sink->create(rcfg->sink_cfg, &penv, &r->sink_state, errbuf, errbuf_size) : HUB_ERR_CONFIG;
    if (rc == HUB_OK && !(r->sink_metrics = hub_metrics_connector_create(rcfg->name, "sink"))) rc = HUB_ERR_NOMEM;
    if (rc == HUB_OK) {
      r->sink_metrics->health = r->sink->health;
      hub_metrics_connector_set_state(r->sink_metrics, r->sink_state);
    }
  }
  if (rc == HUB_OK && !(r->metrics = hub_metrics_route_create(rcfg->name))) rc = HUB_ERR_NOMEM;
  if (rc != HUB_OK) {
    hub_route_destroy(r);
    return rc;
  }
  *out = r;
  return HUB_OK;
}

void hub_route_destroy(struct hub_route *r) {
  if (!r) return;
  if (r->t) r->tops->close(r->t);
  hub_step_chain_destroy(r->chain);
  if (r->sink_metrics) hub_metrics_connector_set_state(r->sink_metrics, NULL); /* no health call after this */
  if (r->sink && r->sink_state) r->sink->destroy(r->sink_state);
  for (size_t i = 0; i < r->n_holds; i++) hub_msg_destroy(r->holds[i].m);
  free(r->holds);
  free(r->batch_t0);
  free(r);
}

/* Connects, creates the topics and subscribes; retries while the cluster is unreachable. */
static hub_err_t connect_route(struct hub_route *r) {
  char errbuf[1024];
  int attempt = 0;
  /* No static group membership (group.instance.id): with librdkafka 2.0.2 a broker restart can
   * fence a static member fatally; dynamic members just rejoin. */
  struct hub_transport_opts opts = {r->client_id, r->group, NULL, r->txn_id, r->base_dir};
  while (!hub_stop_requested()) {
    hub_metrics_heartbeat(r->metrics);
    hub_err_t rc = r->t ? HUB_OK : r->tops->open(r->tcfg, &opts, &r->t, errbuf, sizeof errbuf);
    if (rc == HUB_ERR_CONFIG) {
      hub_log(HUB_LOG_ERROR, "route", "cannot start: %s", errbuf);
      return rc;
    }
    if (rc == HUB_OK) {
      const char *topics[] = {r->cfg->from, r->cfg->errors.dlq, r->cfg->to};
      rc = r->tops->ensure_topics(r->t, topics, r->cfg->to ? 3 : 2, errbuf, sizeof errbuf);
    }
    if (rc == HUB_OK) rc = r->tops->subscribe(r->t, r->cfg->from);
    if (rc == HUB_OK) return HUB_OK;
    if (rc == HUB_ERR_STOPPED) break;
    int64_t d = hub_backoff_delay_ms(500, 10000, ++attempt, hub_backoff_random());
    hub_log(HUB_LOG_WARN, "route", "starting: %s; retrying in %lld ms", errbuf, (long long)d);
    sleep_ms(r, d);
  }
  return HUB_ERR_STOPPED;
}

static void batch_reset(struct hub_route *r) {
  r->batch_n = 0;
  r->b_produced = r->b_dlq = r->b_rejected = 0;
}

static void batch_add(struct hub_route *r, double t0) {
  if (r->batch_n == r->batch_cap) {
    size_t cap = r->batch_cap ? r->batch_cap * 2 : 1024;
    double *n = realloc(r->batch_t0, cap * sizeof *n);
    if (!n) return; /* only the latency histogram misses this record */
    r->batch_t0 = n;
    r->batch_cap = cap;
  }
  r->batch_t0[r->batch_n++] = t0;
}

/* Commits the open transaction; on success publishes the batch's counters. */
static hub_err_t commit_batch(struct hub_route *r) {
  hub_err_t rc = r->tops->commit(r->t);
  if (rc == HUB_OK) {
    double t = now_s();
    hub_metrics_observe_latencies(r->metrics, t, r->batch_t0, r->batch_n);
    atomic_fetch_add(&r->metrics->produced, r->b_produced);
    atomic_fetch_add(&r->metrics->dlq, r->b_dlq);
    atomic_fetch_add(&r->metrics->rejected, r->b_rejected);
  } else if (rc == HUB_ERR_ABORTED) {
    atomic_fetch_add(&r->metrics->aborted, 1);
    hub_log(HUB_LOG_WARN, "route", "transaction of %zu record(s) aborted; they will be processed again", r->batch_n);
  }
  batch_reset(r);
  return rc;
}

enum outcome { DONE, HOLD_RETRY, TXN_LOST };

/* The sink's delivery after the steps: OK with an optional result record for `to`. */
static enum hub_step_result deliver(struct hub_route *r, const struct hub_msg *work, struct hub_msg **result,
                                    struct hub_step_outcome *out, char *stage, size_t stage_size) {
  enum hub_step_result sr = r->sink->deliver(r->sink_state, work, result, out);
  atomic_fetch_add(sr == HUB_STEP_OK ? &r->sink_metrics->records : &r->sink_metrics->failures, 1);
  if (sr != HUB_STEP_OK) {
    snprintf(stage, stage_size, "sink.%s", r->sink->info.name);
    if (out->code == HUB_OK) out->code = sr == HUB_STEP_RETRY ? HUB_ERR_STEP_RETRY : HUB_ERR_STEP_REJECT;
    hub_msg_destroy(*result);
    *result = NULL;
    return sr;
  }
  struct hub_msg *res = *result;
  if (!res) return HUB_STEP_OK;
  hub_err_t rc = HUB_OK;
  if (!res->key && work->key) rc = hub_msg_set_key(res, work->key, work->key_len);
  char id[37], parent[65];
  hub_uuid7(id);
  hub_sha256_hex(work->value, work->value_len, parent);
  if (rc == HUB_OK && !hub_msg_header_get(res, HUB_H_ID)) rc = hub_msg_header_set_str(res, HUB_H_ID, id);
  if (rc == HUB_OK) rc = hub_msg_header_set_str(res, HUB_H_PARENT, parent);
  if (rc != HUB_OK) {
    hub_msg_destroy(res);
    *result = NULL;
    snprintf(stage, stage_size, "sink.%s", r->sink->info.name);
    return hub_step_fail(out, HUB_STEP_RETRY, rc, "out of memory building the result record");
  }
  return HUB_STEP_OK;
}

/* Runs the steps (and the sink) on one record and produces its result or DLQ record inside the
 * open transaction. HOLD_RETRY: the caller holds it and runs it again later (attempt + 1), not
 * before *retry_after_ms. */
static enum outcome process_one(struct hub_route *r, struct hub_msg *m, int64_t *retry_after_ms) {
  struct hub_step_outcome out = {0};
  char stage[128] = "";
  /* the working copy borrows m's value until a step replaces it: a big record is not held twice */
  struct hub_msg *work = hub_msg_dup_borrow(m), *result = NULL;
  enum outcome res = DONE;
  enum hub_step_result sr;
  hub_err_t rc = HUB_OK;
  /* the route's `xml:` limits for every parse of its steps and sink (hub/core/xml.h) */
  struct hub_xml_limits xl = {(size_t)r->cfg->xml.max_size, (int)r->cfg->xml.max_depth};
  struct hub_xml_limits xl_prev = hub_xml_set_thread_limits(&xl);
  if (work && r->sink && !hub_msg_header_get(work, HUB_H_ID)) {
    /* The sink's idempotency key must be the same every time this record is delivered. */
    char id[37];
    hub_uuid_from_origin(m->topic, m->partition, m->offset, id);
    rc = hub_msg_header_set_str(work, HUB_H_ID, id);
  }
  if (!work || rc != HUB_OK) {
    sr = hub_step_fail(&out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory copying the record");
    snprintf(stage, sizeof stage, "route");
  } else {
    work->attempt = m->attempt;
    sr = hub_step_chain_run(r->chain, work, &out, stage, sizeof stage);
    if (sr == HUB_STEP_OK && r->sink && out.n_extra) /* a sink delivers one record per input */
      sr = hub_step_fail(&out, HUB_STEP_REJECT, HUB_ERR_UNSUPPORTED,
                         "a step split the record into %zu; a sink route delivers one record per input (split in a "
                         "topic-to-topic route before it)",
                         out.n_extra + 1);
    if (sr == HUB_STEP_OK && r->sink) sr = deliver(r, work, &result, &out, stage, sizeof stage);
  }
  if (sr == HUB_STEP_RETRY && m->attempt <= r->cfg->errors.retries) {
    atomic_fetch_add(&r->metrics->retried, 1);
    hub_log(HUB_LOG_INFO, "route", "%s asked for a retry of %s/%d/%lld (attempt %d of %lld): %s", stage, m->topic,
            (int)m->partition, (long long)m->offset, m->attempt, (long long)r->cfg->errors.retries + 1, out.reason);
    res = HOLD_RETRY;
    *retry_after_ms = out.retry_after_ms;
    goto out;
  }
  if (sr == HUB_STEP_OK && r->sink) {
    if (result && r->cfg->to) {
      if ((rc = r->tops->produce(r->t, r->cfg->to, result)) != HUB_OK) {
        res = TXN_LOST;
        goto out;
      }
      r->b_produced++;
    }
  } else if (sr == HUB_STEP_OK) {
    if (work->value_len != m->value_len || memcmp(work->value, m->value, m->value_len)) {
      char parent[65];
      hub_sha256_hex(m->value, m->value_len, parent);
      rc = hub_msg_header_set_str(work, HUB_H_PARENT, parent);
    }
    if (rc == HUB_OK && !hub_msg_header_get(work, HUB_H_ID)) {
      char id[37];
      hub_uuid7(id);
      rc = hub_msg_header_set_str(work, HUB_H_ID, id);
    }
    if (rc == HUB_OK) rc = r->tops->produce(r->t, r->cfg->to, work);
    /* a split's further records: after the first, in order, in the same transaction */
    for (size_t i = 0; rc == HUB_OK && i < out.n_extra; i++) {
      struct hub_msg *x = out.extra[i];
      char id[37];
      if (!hub_msg_header_get(x, HUB_H_PARENT)) {
        char parent[65];
        hub_sha256_hex(m->value, m->value_len, parent);
        rc = hub_msg_header_set_str(x, HUB_H_PARENT, parent);
      }
      if (rc == HUB_OK && !hub_msg_header_get(x, HUB_H_ID)) hub_uuid7(id), rc = hub_msg_header_set_str(x, HUB_H_ID, id);
      if (rc == HUB_OK) rc = r->tops->produce(r->t, r->cfg->to, x);
      if (rc == HUB_OK) r->b_produced++;
    }
    if (rc != HUB_OK) { /* out of memory setting a header, or the transaction is gone: redo the batch */
      res = TXN_LOST;
      goto out;
    }
    r->b_produced++;
  } else {
    struct hub_msg *d = hub_dlq_record_new(m, r->cfg->name, stage, &out, m->attempt);
    hub_log(HUB_LOG_WARN, "route", "%s/%d/%lld to %s: %s %s: %s", m->topic, (int)m->partition, (long long)m->offset,
            r->cfg->errors.dlq, stage, hub_err2name(out.code), out.reason);
    rc = d ? r->tops->produce(r->t, r->cfg->errors.dlq, d) : HUB_ERR_NOMEM;
    hub_msg_destroy(d);
    if (rc != HUB_OK) {
      res = TXN_LOST;
      goto out;
    }
    r->b_dlq++;
    if (sr == HUB_STEP_REJECT) r->b_rejected++;
  }
  r->tops->mark_done(r->t, m);
out:
  hub_xml_set_thread_limits(&xl_prev);
  hub_step_outcome_clear(&out);
  hub_msg_destroy(work);
  hub_msg_destroy(result);
  return res;
}

/* Holds m (taken) until `due`, pausing its partition so the others flow meanwhile. */
static int hold_add(struct hub_route *r, struct hub_msg *m, double due) {
  if (r->n_holds == r->cap_holds) {
    size_t cap = r->cap_holds ? r->cap_holds * 2 : 8;
    struct hold *h = realloc(r->holds, cap * sizeof *h);
    if (!h) return -1;
    r->holds = h;
    r->cap_holds = cap;
  }
  r->holds[r->n_holds++] = (struct hold){m, due};
  atomic_store(&r->metrics->held, (int)r->n_holds);
  return 0;
}

/* The held record due first if it is due by `now` (taken out of the holds), else NULL; *next is
 * the earliest due time of what stays held (0 if none). */
static struct hub_msg *hold_take_due(struct hub_route *r, double now, double *next) {
  size_t best = r->n_holds;
  for (size_t i = 0; i < r->n_holds; i++)
    if (best == r->n_holds || r->holds[i].due < r->holds[best].due) best = i;
  *next = 0;
  if (best == r->n_holds) return NULL;
  if (r->holds[best].due > now) {
    *next = r->holds[best].due;
    return NULL;
  }
  struct hub_msg *m = r->holds[best].m;
  r->holds[best] = r->holds[--r->n_holds];
  atomic_store(&r->metrics->held, (int)r->n_holds);
  return m;
}

/* After an abort or a rebalance the consumer was rewound: held records come again from poll. */
static void holds_drop(struct hub_route *r) {
  for (size_t i = 0; i < r->n_holds; i++) {
    r->tops->resume(r->t, r->holds[i].m);
    hub_msg_destroy(r->holds[i].m);
  }
  r->n_holds = 0;
  atomic_store(&r->metrics->held, 0);
}

/* Aborts the open transaction; the consumer is rewound, so held records are dropped too. */
static void abort_batch(struct hub_route *r) {
  r->tops->abort(r->t);
  atomic_fetch_add(&r->metrics->aborted, 1);
  holds_drop(r);
  batch_reset(r);
}

/* The route this thread runs, for hub_route_scan. */
static __thread struct hub_route *running_route;

hub_err_t hub_route_scan(const char *topic, hub_scan_cb cb, void *ctx, char *errbuf, size_t errbuf_size) {
  struct hub_route *r = running_route;
  if (!r || !r->t) {
    snprintf(errbuf, errbuf_size, "no route runs on this thread: this step keeps state in its route's topics");
    return HUB_ERR_UNSUPPORTED;
  }
  return r->tops->scan(r->t, topic ? topic : r->cfg->from, cb, ctx, errbuf, errbuf_size);
}

hub_err_t hub_route_run(struct hub_route *r) {
  hub_log_set_context("route", r->cfg->name);
  running_route = r;
  atomic_store(&r->metrics->running, 1);
  hub_err_t rc = connect_route(r);
  double gauges_at = 0;
  while (rc == HUB_OK && !hub_stop_requested()) {
    int in_txn = 0;
    double t_open = 0;
    batch_reset(r);
    for (;;) {
      double now = now_s();
      if (now - gauges_at >= 0.01) { /* for /metrics and /ready; per record they cost */
        gauges_at = now;
        hub_metrics_heartbeat(r->metrics);
        atomic_store(&r->metrics->assigned, r->tops->assigned(r->t));
        atomic_store(&r->metrics->lag, r->tops->lag(r->t));
        atomic_store(&r->metrics->connected, r->tops->connected(r->t));
      }
      if (hub_stop_requested()) break;
      double max_wait = (double)r->cfg->batch.max_wait_ms * (1 << r->stretch);
      int64_t max_n = r->cfg->batch.max_messages * (1 << (r->stretch < 2 ? r->stretch : 2));
      if (in_txn && ((int64_t)r->batch_n >= max_n || (now - t_open) * 1000.0 >= max_wait)) break;
      double next_due;
      struct hub_msg *m = hold_take_due(r, now, &next_due);
      int was_held = m != NULL;
      if (!m) {
        int wait = in_txn ? (int)(max_wait - (now - t_open) * 1000.0) : 100;
        if (next_due > 0 && (next_due - now) * 1000.0 < wait) wait = (int)((next_due - now) * 1000.0) + 1;
        hub_err_t prc = r->tops->poll(r->t, wait < 0 ? 0 : wait, &m);
        if (prc == HUB_ERR_ABORTED) { /* rebalance: the open transaction is gone */
          if (in_txn) atomic_fetch_add(&r->metrics->aborted, 1);
          in_txn = 0;
          holds_drop(r);
          batch_reset(r);
          continue;
        }
        if (!m) continue;
        m->attempt = 1;
        atomic_fetch_add(&r->metrics->consumed, 1);
      }
      if (!in_txn) {
        /* More than a batch already fetched and waiting: the route is behind, so each such
         * transaction may last twice as long as the one before (fewer commits per record, up
         * to 8 x max_wait); one that starts caught up is back to max_wait, which bounds the
         * latency. Stretching one step at a time keeps a single hiccup from costing much. */
        if (r->tops->fetched(r->t) > r->cfg->batch.max_messages)
          r->stretch += r->stretch < 3;
        else
          r->stretch = 0;
        hub_err_t brc = r->tops->begin(r->t);
        if (brc != HUB_OK) {
          /* The consumer was rewound or will be: the record comes again, held ones too. */
          if (was_held) r->tops->resume(r->t, m);
          hub_msg_destroy(m);
          if (brc != HUB_ERR_ABORTED) r->tops->abort(r->t);
          holds_drop(r);
          sleep_ms(r, 200);
          continue;
        }
        in_txn = 1;
        t_open = now_s();
      }
      double t0 = now_s();
      int64_t retry_after = 0;
      enum outcome o = process_one(r, m, &retry_after);
      if (o == DONE) {
        batch_add(r, t0);
        if (was_held) r->tops->resume(r->t, m); /* its partition flows again, after it */
        hub_msg_destroy(m);
      } else if (o == TXN_LOST) {
        if (was_held) r->tops->resume(r->t, m);
        hub_msg_destroy(m);
        abort_batch(r);
        in_txn = 0;
      } else { /* HOLD_RETRY: only this record's partition waits; the others go on */
        int64_t d = hub_backoff_delay_ms(r->cfg->errors.backoff.min_ms, r->cfg->errors.backoff.max_ms, m->attempt,
                                         hub_backoff_random());
        if (d < retry_after) d = retry_after; /* the endpoint said when (Retry-After) */
        if (!was_held) r->tops->pause(r->t, m);
        m->attempt++;
        if (hold_add(r, m, now_s() + (double)d / 1000.0) != 0) { /* no memory to hold it: redo from poll */
          r->tops->resume(r->t, m);
          hub_msg_destroy(m);
          abort_batch(r);
          in_txn = 0;
        }
      }
    }
    if (in_txn) {
      size_t n = r->batch_n;
      double t_close = now_s();
      hub_err_t crc = commit_batch(r);
      if (crc == HUB_ERR_ABORTED) holds_drop(r);
      if (hub_log_get_level() <= HUB_LOG_DEBUG)
        hub_log(HUB_LOG_DEBUG, "route", "committed %zu record(s): open %.1f ms, commit %.1f ms, stretch %d", n,
                (t_close - t_open) * 1000.0, (now_s() - t_close) * 1000.0, r->stretch);
      if (crc == HUB_ERR_STOPPED) break;
    }
  }
  holds_drop(r);
  atomic_store(&r->metrics->running, 0);
  atomic_store(&r->metrics->assigned, 0);
  hub_log(HUB_LOG_INFO, "route", "stopped");
  hub_log_set_context(NULL, NULL);
  return rc == HUB_ERR_STOPPED ? HUB_OK : rc;
}
