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
#include "hub/engine/deliver_pool.h"

/* One record of a wave and what became of it. */
struct item {
  struct hub_msg *m; /* as read (owned) */
  int was_held;      /* it came back from the holds: its partition is paused */
  int to_deliver;    /* the steps passed and the route is a sink's */
  struct hub_msg *work, *result;
  struct hub_step_outcome out;
  enum hub_step_result sr;
  char stage[128];
  struct item *parked; /* a held record's parked followers (struct hold), taken with it */
  size_t n_parked;
};

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
    /* Later records of its partition that a wave delivered before m asked for its retry: their
     * outcomes wait here, in order, and are committed right after m (see run_wave). */
    struct item *parked;
    size_t n_parked;
    unsigned long closed; /* the wave in which this partition's followers stopped being parked */
  } *holds;
  size_t n_holds, cap_holds;
  /* A sink connector's route delivers each record after its steps. */
  const struct hub_sink_ops *sink;
  void *sink_state;
  struct hub_connector_metrics *sink_metrics;
  /* Waves (see run_wave): records delivered together, at most `concurrency`. */
  size_t concurrency;
  unsigned long wave_no;
  struct item *wave;
  size_t n_wave;
  struct hub_msg **backlog; /* read, not processed yet, in the order read */
  size_t n_backlog, cap_backlog;
  int32_t *blocked; /* scratch: partitions that cannot join the wave */
  size_t n_blocked, cap_blocked;
  struct hub_deliver_pool *pool; /* concurrency - 1 threads; NULL when 1 */
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
  /* concurrency: 0 means the sink's default (4 when it can deliver concurrently). */
  r->concurrency = 1;
  if (rc == HUB_OK && r->sink) {
    int64_t n = rcfg->concurrency ? rcfg->concurrency : r->sink->concurrent ? 4 : 1;
    if (n > 1 && !r->sink->concurrent) {
      hub_node_error(hub_cfg_value_at(rcfg->node, rcfg->node, "concurrency"), errbuf, errbuf_size,
                     "concurrency: the %s sink delivers one record at a time", r->sink->info.name);
      rc = HUB_ERR_CONFIG;
    }
    r->concurrency = (size_t)n;
  }
  if (rc == HUB_OK && !(r->wave = calloc(r->concurrency, sizeof *r->wave))) rc = HUB_ERR_NOMEM;
  if (rc == HUB_OK && r->concurrency > 1 && !(r->pool = hub_deliver_pool_new(r->concurrency - 1, rcfg->name)))
    rc = HUB_ERR_NOMEM;
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
  hub_deliver_pool_destroy(r->pool);
  for (size_t i = 0; i < r->n_backlog; i++) hub_msg_destroy(r->backlog[i]);
  free(r->backlog);
  free(r->blocked);
  free(r->wave);
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

/* Sets the route's `xml:` limits for every parse its steps and sink make on this thread
 * (hub/core/xml.h); returns the thread's previous limits, to restore. */
static struct hub_xml_limits route_xml_limits(const struct hub_route *r) {
  struct hub_xml_limits xl = {(size_t)r->cfg->xml.max_size, (int)r->cfg->xml.max_depth, (int)r->cfg->xml.max_attrs};
  return hub_xml_set_thread_limits(&xl);
}

/* Runs the steps on one record (on the route's thread: steps need not be thread-safe). */
static void prepare(struct hub_route *r, struct item *it) {
  struct hub_msg *m = it->m;
  hub_err_t rc = HUB_OK;
  memset(&it->out, 0, sizeof it->out);
  it->stage[0] = '\0';
  it->result = NULL;
  it->to_deliver = 0;
  /* One record at a time, the working copy borrows m's value until a step replaces it, so a big
   * record is not held twice. In concurrent waves it is a full copy: with borrowed values a
   * delivery was seen sending another record's body (kafka.sink_concurrency), not yet explained. */
  it->work = r->concurrency > 1 ? hub_msg_dup(m) : hub_msg_dup_borrow(m);
  if (it->work && r->sink && !hub_msg_header_get(it->work, HUB_H_ID)) {
    /* The sink's idempotency key must be the same every time this record is delivered. */
    char id[37];
    hub_uuid_from_origin(m->topic, m->partition, m->offset, id);
    rc = hub_msg_header_set_str(it->work, HUB_H_ID, id);
  }
  if (!it->work || rc != HUB_OK) {
    it->sr = hub_step_fail(&it->out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory copying the record");
    snprintf(it->stage, sizeof it->stage, "route");
    return;
  }
  it->work->attempt = m->attempt;
  struct hub_xml_limits prev = route_xml_limits(r);
  it->sr = hub_step_chain_run(r->chain, it->work, &it->out, it->stage, sizeof it->stage);
  hub_xml_set_thread_limits(&prev);
  if (it->sr == HUB_STEP_OK && r->sink && it->out.n_extra) /* a sink delivers one record per input */
    it->sr = hub_step_fail(&it->out, HUB_STEP_REJECT, HUB_ERR_UNSUPPORTED,
                           "a step split the record into %zu; a sink route delivers one record per input (split in "
                           "a topic-to-topic route before it)",
                           it->out.n_extra + 1);
  it->to_deliver = it->sr == HUB_STEP_OK && r->sink;
}

/* The sink's delivery of wave item i; with concurrency it runs on a pool thread, so it touches
 * nothing but the item and the sink (which said it is thread-safe) and atomic counters. */
static void deliver_item(void *ctx, size_t i) {
  struct hub_route *r = ctx;
  struct item *it = &r->wave[i];
  if (!it->to_deliver) return;
  struct hub_xml_limits prev = route_xml_limits(r);
  it->sr = r->sink->deliver(r->sink_state, it->work, &it->result, &it->out);
  hub_xml_set_thread_limits(&prev);
  atomic_fetch_add(it->sr == HUB_STEP_OK ? &r->sink_metrics->records : &r->sink_metrics->failures, 1);
}

/* After the delivery, on the route's thread: the stage and code of a failure; the result
 * record's key, lt.id and lt.parent. */
static enum hub_step_result delivered(struct hub_route *r, struct item *it) {
  const struct hub_msg *work = it->work;
  struct hub_step_outcome *out = &it->out;
  if (it->sr != HUB_STEP_OK) {
    snprintf(it->stage, sizeof it->stage, "sink.%s", r->sink->info.name);
    if (out->code == HUB_OK) out->code = it->sr == HUB_STEP_RETRY ? HUB_ERR_STEP_RETRY : HUB_ERR_STEP_REJECT;
    hub_msg_destroy(it->result);
    it->result = NULL;
    return it->sr;
  }
  struct hub_msg *res = it->result;
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
    it->result = NULL;
    snprintf(it->stage, sizeof it->stage, "sink.%s", r->sink->info.name);
    return hub_step_fail(out, HUB_STEP_RETRY, rc, "out of memory building the result record");
  }
  return HUB_STEP_OK;
}

/* Frees what processing an item made (not the record itself). */
static void item_release(struct item *it) {
  hub_step_outcome_clear(&it->out);
  hub_msg_destroy(it->work);
  hub_msg_destroy(it->result);
  it->work = it->result = NULL;
}

/* Produces the item's result or DLQ record inside the open transaction and marks it done.
 * HOLD_RETRY: the caller holds it and runs it again later (attempt + 1), not before
 * *retry_after_ms. */
static enum outcome finish(struct hub_route *r, struct item *it, int64_t *retry_after_ms) {
  struct hub_msg *m = it->m, *work = it->work;
  struct hub_step_outcome *outp = &it->out;
  enum outcome res = DONE;
  enum hub_step_result sr = it->to_deliver ? delivered(r, it) : it->sr;
  struct hub_msg *result = it->result;
  const char *stage = it->stage;
  hub_err_t rc = HUB_OK;
  if (sr == HUB_STEP_RETRY && m->attempt <= r->cfg->errors.retries) {
    atomic_fetch_add(&r->metrics->retried, 1);
    hub_log(HUB_LOG_INFO, "route", "%s asked for a retry of %s/%d/%lld (attempt %d of %lld): %s", stage, m->topic,
            (int)m->partition, (long long)m->offset, m->attempt, (long long)r->cfg->errors.retries + 1, outp->reason);
    res = HOLD_RETRY;
    *retry_after_ms = outp->retry_after_ms;
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
    for (size_t i = 0; rc == HUB_OK && i < outp->n_extra; i++) {
      struct hub_msg *x = outp->extra[i];
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
    struct hub_msg *d = hub_dlq_record_new(m, r->cfg->name, stage, outp, m->attempt);
    hub_log(HUB_LOG_WARN, "route", "%s/%d/%lld to %s: %s %s: %s", m->topic, (int)m->partition, (long long)m->offset,
            r->cfg->errors.dlq, stage, hub_err2name(outp->code), outp->reason);
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
  item_release(it);
  return res;
}

/* Holds m (taken) until `due`, pausing its partition so the others flow meanwhile. */
static int hold_add(struct hub_route *r, struct hub_msg *m, double due, struct item *parked, size_t n_parked) {
  if (r->n_holds == r->cap_holds) {
    size_t cap = r->cap_holds ? r->cap_holds * 2 : 8;
    struct hold *h = realloc(r->holds, cap * sizeof *h);
    if (!h) return -1;
    r->holds = h;
    r->cap_holds = cap;
  }
  r->holds[r->n_holds++] = (struct hold){m, due, parked, n_parked, 0};
  atomic_store(&r->metrics->held, (int)r->n_holds);
  return 0;
}

/* The held record due first if it is due by `now` (taken out of the holds, with its parked
 * followers in *parked), else NULL; *next is the earliest due time of what stays held (0 if none). */
static struct hub_msg *hold_take_due(struct hub_route *r, double now, double *next, struct item **parked,
                                     size_t *n_parked) {
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
  *parked = r->holds[best].parked;
  *n_parked = r->holds[best].n_parked;
  r->holds[best] = r->holds[--r->n_holds];
  atomic_store(&r->metrics->held, (int)r->n_holds);
  return m;
}

/* After an abort or a rebalance the consumer was rewound: held records, and records read but
 * not processed yet, come again from poll. */
static void parked_free(struct item *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    item_release(&v[i]);
    hub_msg_destroy(v[i].m);
  }
  free(v);
}

static void holds_drop(struct hub_route *r) {
  for (size_t i = 0; i < r->n_holds; i++) {
    r->tops->resume(r->t, r->holds[i].m);
    hub_msg_destroy(r->holds[i].m);
    parked_free(r->holds[i].parked, r->holds[i].n_parked);
  }
  r->n_holds = 0;
  atomic_store(&r->metrics->held, 0);
  for (size_t i = 0; i < r->n_backlog; i++) hub_msg_destroy(r->backlog[i]);
  r->n_backlog = 0;
}

/* Aborts the open transaction; the consumer is rewound, so held records are dropped too. */
static void abort_batch(struct hub_route *r) {
  r->tops->abort(r->t);
  atomic_fetch_add(&r->metrics->aborted, 1);
  holds_drop(r);
  batch_reset(r);
}

/* ------------------------------------------------------------------ waves
 * With `concurrency` N > 1 a sink's route delivers up to N records at once. A wave takes, in
 * the order they were read: held records that are due, then records read earlier and not yet
 * processed (the backlog), then new ones from poll; never two records with one key, and a
 * record only if no earlier record of its partition still waits (a held one, or one left in
 * the backlog because its key was in flight). The steps run one record after the other; the
 * deliveries run in parallel; then, in the order read, each record's result or DLQ record is
 * produced and its offset marked, exactly as one at a time. A record that asks for a retry
 * holds its partition; the later records of that partition in the wave (other keys) were
 * delivered already, but their offsets may not be committed before it: their outcomes are
 * parked behind the held record and committed right after it; from the first of them that asked
 * for a retry itself on, they go back to the backlog and are delivered again after it. So per
 * key the endpoint never sees a record before the one in front of it has succeeded, and
 * offsets advance only over finished records. With N = 1 a wave is one record, as before. */

static int part_in(const int32_t *v, size_t n, int32_t p) {
  for (size_t i = 0; i < n; i++)
    if (v[i] == p) return 1;
  return 0;
}

static int part_held(const struct hub_route *r, int32_t p) {
  for (size_t i = 0; i < r->n_holds; i++)
    if (r->holds[i].m->partition == p) return 1;
  return 0;
}

/* Whether a record with m's key is in the wave (records without a key never collide). */
static int key_in_wave(const struct hub_route *r, const struct hub_msg *m) {
  if (!m->key) return 0;
  for (size_t i = 0; i < r->n_wave; i++) {
    const struct hub_msg *w = r->wave[i].m;
    if (w->key && w->key_len == m->key_len && !memcmp(w->key, m->key, m->key_len)) return 1;
  }
  return 0;
}

static int add_part(struct hub_route *r, int32_t p) {
  if (part_in(r->blocked, r->n_blocked, p)) return 0;
  if (r->n_blocked == r->cap_blocked) {
    size_t cap = r->cap_blocked ? r->cap_blocked * 2 : 16;
    int32_t *v = realloc(r->blocked, cap * sizeof *v);
    if (!v) return -1;
    r->blocked = v;
    r->cap_blocked = cap;
  }
  r->blocked[r->n_blocked++] = p;
  return 0;
}

static int backlog_push(struct hub_route *r, struct hub_msg *m) {
  if (r->n_backlog == r->cap_backlog) {
    size_t cap = r->cap_backlog ? r->cap_backlog * 2 : 16;
    struct hub_msg **v = realloc(r->backlog, cap * sizeof *v);
    if (!v) return -1;
    r->backlog = v;
    r->cap_backlog = cap;
  }
  r->backlog[r->n_backlog++] = m;
  return 0;
}

static void wave_add(struct hub_route *r, struct hub_msg *m, int was_held, struct item *parked, size_t n_parked) {
  struct item *it = &r->wave[r->n_wave++];
  memset(it, 0, sizeof *it);
  it->m = m;
  it->was_held = was_held;
  it->parked = parked;
  it->n_parked = n_parked;
}

/* A record that cannot join this wave: it waits in the backlog and blocks its partition. -1:
 * out of memory (the caller redoes the batch from poll). */
static int defer(struct hub_route *r, struct hub_msg *m) {
  if (backlog_push(r, m) != 0) {
    hub_msg_destroy(m);
    return -1;
  }
  return add_part(r, m->partition) == 0 ? 0 : -1;
}

/* Drops the wave unprocessed (the consumer is or will be rewound). */
static void wave_drop(struct hub_route *r) {
  for (size_t i = 0; i < r->n_wave; i++) {
    item_release(&r->wave[i]);
    if (r->wave[i].was_held) r->tops->resume(r->t, r->wave[i].m);
    hub_msg_destroy(r->wave[i].m);
    parked_free(r->wave[i].parked, r->wave[i].n_parked);
  }
  r->n_wave = 0;
}

#define BACKLOG_MAX(r) (4 * (r)->concurrency + 64) /* records read ahead at most */

/* Fills the wave (see above); polls for up to wait_ms when nothing else is ready.
 * HUB_ERR_ABORTED: a rebalance (the caller drops everything); HUB_ERR_NOMEM: redo from poll. */
static hub_err_t collect(struct hub_route *r, double now, int wait_ms) {
  double next_due;
  struct hub_msg *m;
  r->n_wave = 0;
  r->n_blocked = 0;
  struct item *parked;
  size_t n_parked;
  while (r->n_wave < r->concurrency && (m = hold_take_due(r, now, &next_due, &parked, &n_parked)) != NULL)
    wave_add(r, m, 1, parked, n_parked);
  size_t keep = 0;
  for (size_t i = 0; i < r->n_backlog; i++) {
    struct hub_msg *b = r->backlog[i];
    if (r->n_wave < r->concurrency && !part_in(r->blocked, r->n_blocked, b->partition) && !part_held(r, b->partition) &&
        !key_in_wave(r, b)) {
      wave_add(r, b, 0, NULL, 0);
    } else {
      r->backlog[keep++] = b;
      if (add_part(r, b->partition) != 0) {
        for (size_t j = i + 1; j < r->n_backlog; j++) r->backlog[keep++] = r->backlog[j];
        r->n_backlog = keep;
        return HUB_ERR_NOMEM;
      }
    }
  }
  r->n_backlog = keep;
  while (r->n_wave < r->concurrency && r->n_backlog < BACKLOG_MAX(r)) {
    hub_err_t prc = r->tops->poll(r->t, r->n_wave ? 0 : wait_ms, &m);
    if (prc == HUB_ERR_ABORTED) return prc;
    if (!m) break;
    m->attempt = 1;
    atomic_fetch_add(&r->metrics->consumed, 1);
    if (part_in(r->blocked, r->n_blocked, m->partition) || part_held(r, m->partition) || key_in_wave(r, m)) {
      if (defer(r, m) != 0) return HUB_ERR_NOMEM;
    } else {
      wave_add(r, m, 0, NULL, 0);
    }
    if (r->concurrency == 1) break;
  }
  if (!r->n_wave && r->n_backlog >= BACKLOG_MAX(r)) sleep_ms(r, 5); /* all read ahead waits for a hold */
  return HUB_OK;
}

/* The last record read of m's partition (m, a later one of the wave or of the backlog): pausing
 * there leaves the transports' positions consistent with what the route still holds. */
static const struct hub_msg *last_read(const struct hub_route *r, const struct hub_msg *m, size_t from) {
  const struct hub_msg *last = m;
  for (size_t i = from; i < r->n_wave; i++)
    if (r->wave[i].m->partition == m->partition && r->wave[i].m->offset > last->offset) last = r->wave[i].m;
  for (size_t i = 0; i < r->n_backlog; i++)
    if (r->backlog[i]->partition == m->partition && r->backlog[i]->offset > last->offset) last = r->backlog[i];
  return last;
}

static struct hold *hold_of(struct hub_route *r, int32_t partition) {
  for (size_t i = 0; i < r->n_holds; i++)
    if (r->holds[i].m->partition == partition) return &r->holds[i];
  return NULL;
}

/* Parks a delivered item behind the held record of its partition (the item is moved). */
static int park(struct hold *h, struct item *it) {
  struct item *v = realloc(h->parked, (h->n_parked + 1) * sizeof *v);
  if (!v) return -1;
  h->parked = v;
  v[h->n_parked++] = *it;
  return 0;
}

/* Commits a held record's parked followers, in order, right after it. -1: the transaction is
 * lost (an outcome that cannot be committed now is redone from poll). */
static int finish_parked(struct hub_route *r, struct item *v, size_t n, double t0) {
  int lost = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t retry_after = 0;
    if (!lost && finish(r, &v[i], &retry_after) == DONE)
      batch_add(r, t0);
    else {
      item_release(&v[i]);
      lost = 1;
    }
    hub_msg_destroy(v[i].m);
  }
  free(v);
  return lost ? -1 : 0;
}

/* Processes the wave inside the open transaction. 0, or -1 when the transaction is lost (the
 * caller aborts the batch). A record that asks for a retry holds its partition; the records
 * after it in the wave from that partition were delivered already: their outcomes are parked
 * behind it and committed right after it (no second call), except from the first one that
 * asked for a retry itself on, which go back to the backlog. */
static int run_wave(struct hub_route *r) {
  double t0 = now_s();
  size_t n_deliver = 0;
  r->wave_no++;
  for (size_t i = 0; i < r->n_wave; i++) {
    prepare(r, &r->wave[i]);
    n_deliver += r->wave[i].to_deliver;
  }
  if (r->pool && n_deliver > 1)
    hub_deliver_pool_run(r->pool, deliver_item, r, r->n_wave);
  else if (n_deliver)
    for (size_t i = 0; i < r->n_wave; i++) deliver_item(r, i);
  int lost = 0;
  size_t n_back = 0; /* wave items that go back to the backlog, moved to the front of r->wave */
  r->n_blocked = 0;  /* partitions where a record went on hold in this wave */
  for (size_t i = 0; i < r->n_wave; i++) {
    struct item *it = &r->wave[i];
    struct hub_msg *m = it->m;
    if (lost) {
      item_release(it);
      if (it->was_held) r->tops->resume(r->t, m);
      hub_msg_destroy(m);
      parked_free(it->parked, it->n_parked);
      continue;
    }
    if (part_in(r->blocked, r->n_blocked, m->partition)) { /* behind a record now on hold */
      struct hold *h = hold_of(r, m->partition);
      if (h && h->closed != r->wave_no && it->sr != HUB_STEP_RETRY && park(h, it) == 0) continue;
      if (h) h->closed = r->wave_no; /* from here on this partition's records go back */
      item_release(it);
      r->wave[n_back++].m = m;
      continue;
    }
    int64_t retry_after = 0;
    enum outcome o = finish(r, it, &retry_after);
    if (o == DONE) {
      batch_add(r, t0);
      if (it->n_parked && finish_parked(r, it->parked, it->n_parked, t0) != 0) lost = 1;
      it->parked = NULL;
      it->n_parked = 0;
      if (it->was_held) r->tops->resume(r->t, m); /* its partition flows again, after it */
      hub_msg_destroy(m);
    } else if (o == TXN_LOST) {
      if (it->was_held) r->tops->resume(r->t, m);
      hub_msg_destroy(m);
      parked_free(it->parked, it->n_parked);
      lost = 1;
    } else { /* HOLD_RETRY: only this record's partition waits; the others go on */
      int64_t d = hub_backoff_delay_ms(r->cfg->errors.backoff.min_ms, r->cfg->errors.backoff.max_ms, m->attempt,
                                       hub_backoff_random());
      if (d < retry_after) d = retry_after; /* the endpoint said when (Retry-After) */
      if (!it->was_held) r->tops->pause(r->t, last_read(r, m, i + 1));
      m->attempt++;
      if (hold_add(r, m, now_s() + (double)d / 1000.0, it->parked, it->n_parked) != 0) {
        r->tops->resume(r->t, m); /* no memory to hold it: redo from poll */
        hub_msg_destroy(m);
        parked_free(it->parked, it->n_parked);
        lost = 1;
      } else if (add_part(r, m->partition) != 0) {
        lost = 1; /* the hold is dropped with the others */
      }
      it->parked = NULL;
      it->n_parked = 0;
    }
  }
  /* Back to the front of the backlog, in the order read, before what was read after them. */
  if (n_back) {
    if (lost) {
      for (size_t i = 0; i < n_back; i++) hub_msg_destroy(r->wave[i].m);
    } else {
      size_t keep = r->n_backlog;
      for (size_t i = 0; i < n_back; i++)
        if (backlog_push(r, r->wave[i].m) != 0) { /* the consumer is rewound below */
          for (size_t j = i; j < n_back; j++) hub_msg_destroy(r->wave[j].m);
          lost = 1;
          break;
        }
      if (!lost) { /* rotate: the pushed ones first */
        struct hub_msg **v = r->backlog;
        size_t total = r->n_backlog;
        for (size_t k = 0; k < keep; k++) {
          struct hub_msg *x = v[0];
          memmove(v, v + 1, (total - 1) * sizeof *v);
          v[total - 1] = x;
        }
      }
    }
  }
  r->n_wave = 0;
  return lost ? -1 : 0;
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
      int wait = in_txn ? (int)(max_wait - (now - t_open) * 1000.0) : 100;
      double next_due = 0;
      for (size_t i = 0; i < r->n_holds; i++)
        if (next_due == 0 || r->holds[i].due < next_due) next_due = r->holds[i].due;
      if (next_due > 0 && (next_due - now) * 1000.0 < wait) wait = (int)((next_due - now) * 1000.0) + 1;
      hub_err_t prc = collect(r, now, wait < 0 ? 0 : wait);
      if (prc != HUB_OK) { /* a rebalance (the open transaction is gone), or out of memory */
        wave_drop(r);
        if (prc == HUB_ERR_ABORTED) {
          if (in_txn) atomic_fetch_add(&r->metrics->aborted, 1);
          holds_drop(r);
          batch_reset(r);
        } else if (in_txn) {
          abort_batch(r);
        } else {
          holds_drop(r);
        }
        in_txn = 0;
        continue;
      }
      if (!r->n_wave) continue;
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
          /* The consumer was rewound or will be: the records come again, held ones too. */
          wave_drop(r);
          if (brc != HUB_ERR_ABORTED) r->tops->abort(r->t);
          holds_drop(r);
          sleep_ms(r, 200);
          continue;
        }
        in_txn = 1;
        t_open = now_s();
      }
      if (run_wave(r) != 0) {
        abort_batch(r);
        in_txn = 0;
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
