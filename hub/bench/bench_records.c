/* Bench records, producer and observer (see bench_records.h). */
#include "hub/bench/bench_records.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SEQ 4000000000ULL /* sequence numbers above this are foreign records */

int64_t bench_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

size_t bench_key(char *out, size_t cap, uint64_t seq, uint32_t keys) {
  int n = snprintf(out, cap, "k%06u", (unsigned)(seq % (keys ? keys : 1)));
  return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* Byte i of record seq's filler is 'a' + (seq + i) % 26: a slice of one precomputed pattern, so
 * that filling and checking are a memcpy and a memcmp (per-byte arithmetic cost the bench's own
 * producer and observers about 2 us per record, CPU the broker and the hub then lacked). */
static unsigned char pattern[BENCH_MAX_SIZE + 26];
static pthread_once_t pattern_once = PTHREAD_ONCE_INIT;
static void pattern_init(void) {
  for (size_t j = 0; j < sizeof pattern; j++) pattern[j] = (unsigned char)('a' + j % 26);
}
static const unsigned char *filler_from(uint64_t seq, size_t i) {
  pthread_once(&pattern_once, pattern_init);
  return pattern + (seq + i) % 26;
}

void bench_value_fill(unsigned char *buf, size_t size, uint64_t seq, int64_t send_us) {
  char head[BENCH_VALUE_HEADER + 1];
  snprintf(head, sizeof head, "LTB1 %012llu %016lld ", (unsigned long long)seq, (long long)send_us);
  memcpy(buf, head, BENCH_VALUE_HEADER);
  if (size > BENCH_VALUE_HEADER)
    memcpy(buf + BENCH_VALUE_HEADER, filler_from(seq, BENCH_VALUE_HEADER), size - BENCH_VALUE_HEADER);
}

static int digits(const unsigned char *p, size_t n, uint64_t *out) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return -1;
    v = v * 10 + (uint64_t)(p[i] - '0');
  }
  *out = v;
  return 0;
}

int bench_value_parse(const unsigned char *v, size_t len, size_t size, uint64_t *seq, int64_t *send_us) {
  uint64_t s, t;
  if (!v || len != size || len < BENCH_VALUE_HEADER || memcmp(v, "LTB1 ", 5) || v[17] != ' ' || v[34] != ' ' ||
      digits(v + 5, 12, &s) || digits(v + 18, 16, &t))
    return -1;
  if (len > BENCH_MAX_SIZE || memcmp(v + BENCH_VALUE_HEADER, filler_from(s, BENCH_VALUE_HEADER), len - BENCH_VALUE_HEADER))
    return -1;
  *seq = s;
  *send_us = (int64_t)t;
  return 0;
}

static rd_kafka_conf_t *conf_new(const char *bootstrap, char *errbuf, size_t errbuf_size) {
  rd_kafka_conf_t *c = rd_kafka_conf_new();
  if (rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, errbuf, errbuf_size) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(c, "client.id", "lienthong-bench", errbuf, errbuf_size) != RD_KAFKA_CONF_OK ||
      /* errors only: start-up notices such as "coordinator load in progress" are retried */
      rd_kafka_conf_set(c, "log_level", "3", errbuf, errbuf_size) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(c);
    return NULL;
  }
  return c;
}

static int conf_set_all(rd_kafka_conf_t *c, const char *const *kv, char *errbuf, size_t errbuf_size) {
  for (size_t i = 0; kv[i]; i += 2)
    if (rd_kafka_conf_set(c, kv[i], kv[i + 1], errbuf, errbuf_size) != RD_KAFKA_CONF_OK) return -1;
  return 0;
}

/* Runs one admin request (create or delete topics) and checks every topic's result. */
static hub_err_t topics_admin(const char *bootstrap, const char *const *topics, size_t n, int partitions, int del,
                              char *errbuf, size_t errbuf_size) {
  hub_err_t rc = HUB_OK;
  rd_kafka_conf_t *conf = conf_new(bootstrap, errbuf, errbuf_size);
  rd_kafka_t *rk = NULL;
  rd_kafka_queue_t *q = NULL;
  rd_kafka_AdminOptions_t *ao = NULL;
  rd_kafka_event_t *ev = NULL;
  rd_kafka_NewTopic_t **nt = calloc(n ? n : 1, sizeof *nt);
  rd_kafka_DeleteTopic_t **dt = calloc(n ? n : 1, sizeof *dt);
  char e[256];
  if (!conf || !nt || !dt) {
    rc = conf ? HUB_ERR_NOMEM : HUB_ERR_CONFIG;
    if (conf) rd_kafka_conf_destroy(conf);
    goto out;
  }
  if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, errbuf_size))) {
    rd_kafka_conf_destroy(conf);
    rc = HUB_ERR_CONFIG;
    goto out;
  }
  q = rd_kafka_queue_new(rk);
  ao = rd_kafka_AdminOptions_new(rk, del ? RD_KAFKA_ADMIN_OP_DELETETOPICS : RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(ao, 30000, e, sizeof e);
  rd_kafka_AdminOptions_set_request_timeout(ao, 30000, e, sizeof e);
  for (size_t i = 0; i < n; i++) {
    if (del)
      dt[i] = rd_kafka_DeleteTopic_new(topics[i]);
    else if (!(nt[i] = rd_kafka_NewTopic_new(topics[i], partitions, 1, e, sizeof e))) {
      snprintf(errbuf, errbuf_size, "topic '%s': %s", topics[i], e);
      rc = HUB_ERR_CONFIG;
      goto out;
    }
  }
  if (del)
    rd_kafka_DeleteTopics(rk, dt, n, ao, q);
  else
    rd_kafka_CreateTopics(rk, nt, n, ao, q);
  if (!(ev = rd_kafka_queue_poll(q, 40000))) {
    snprintf(errbuf, errbuf_size, "%s topics: no answer from %s", del ? "deleting" : "creating", bootstrap);
    rc = HUB_ERR_TIMEOUT;
    goto out;
  }
  if (rd_kafka_event_error(ev)) {
    snprintf(errbuf, errbuf_size, "%s topics: %s", del ? "deleting" : "creating", rd_kafka_event_error_string(ev));
    rc = HUB_ERR_TRANSPORT;
    goto out;
  }
  size_t cnt = 0;
  const rd_kafka_topic_result_t **res =
      del ? rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt)
          : rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
  for (size_t i = 0; i < cnt; i++) {
    rd_kafka_resp_err_t te = rd_kafka_topic_result_error(res[i]);
    if (te && !(del && te == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)) {
      snprintf(errbuf, errbuf_size, "%s topic '%s': %s", del ? "deleting" : "creating",
               rd_kafka_topic_result_name(res[i]), rd_kafka_topic_result_error_string(res[i]));
      rc = HUB_ERR_TRANSPORT;
      goto out;
    }
  }
out:
  if (ev) rd_kafka_event_destroy(ev);
  for (size_t i = 0; i < n; i++) {
    if (nt && nt[i]) rd_kafka_NewTopic_destroy(nt[i]);
    if (dt && dt[i]) rd_kafka_DeleteTopic_destroy(dt[i]);
  }
  free(nt);
  free(dt);
  if (ao) rd_kafka_AdminOptions_destroy(ao);
  if (q) rd_kafka_queue_destroy(q);
  if (rk) rd_kafka_destroy(rk);
  return rc;
}

hub_err_t bench_topics_create(const char *bootstrap, const char *const *topics, size_t n, int partitions,
                              char *errbuf, size_t errbuf_size) {
  return topics_admin(bootstrap, topics, n, partitions, 0, errbuf, errbuf_size);
}

hub_err_t bench_topics_delete(const char *bootstrap, const char *const *topics, size_t n, char *errbuf,
                              size_t errbuf_size) {
  return topics_admin(bootstrap, topics, n, 0, 1, errbuf, errbuf_size);
}

struct delivery {
  atomic_ullong acked, failed;
  int64_t last_ack_us;
  char first_error[256];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  struct delivery *d = opaque;
  (void)rk;
  if (m->err) {
    if (atomic_fetch_add(&d->failed, 1) == 0)
      snprintf(d->first_error, sizeof d->first_error, "%s", rd_kafka_err2str(m->err));
    return;
  }
  atomic_fetch_add(&d->acked, 1);
  d->last_ack_us = bench_now_us();
}

hub_err_t bench_produce(const char *bootstrap, const char *topic, uint64_t from, uint64_t count, size_t size,
                        uint32_t keys, double rate, const atomic_int *stop, double *seconds, char *errbuf,
                        size_t errbuf_size) {
  hub_err_t rc = HUB_OK;
  struct delivery d = {0};
  rd_kafka_t *rk = NULL;
  unsigned char *buf = malloc(size);
  rd_kafka_conf_t *conf = conf_new(bootstrap, errbuf, errbuf_size);
  /* Paced (latency) records leave within 1 ms; bulk loading batches harder. */
  const char *const settings[] = {"enable.idempotence", "true", "acks", "all",
                                  "linger.ms", rate > 0 ? "1" : "5", "batch.num.messages", "10000",
                                  "queue.buffering.max.messages", "200000", NULL};
  *seconds = 0;
  if (!buf || !conf) {
    rc = buf ? HUB_ERR_CONFIG : HUB_ERR_NOMEM;
    if (conf) rd_kafka_conf_destroy(conf);
    goto out;
  }
  if (conf_set_all(conf, settings, errbuf, errbuf_size) < 0) {
    rd_kafka_conf_destroy(conf);
    rc = HUB_ERR_CONFIG;
    goto out;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, &d);
  if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, errbuf_size))) {
    rd_kafka_conf_destroy(conf);
    rc = HUB_ERR_CONFIG;
    goto out;
  }
  int64_t t0 = bench_now_us();
  uint64_t sent = 0;
  while (sent < count && !(stop && atomic_load(stop))) {
    uint64_t due = count;
    if (rate > 0) {
      due = (uint64_t)((double)(bench_now_us() - t0) / 1e6 * rate) + 1;
      if (due > count) due = count;
    }
    while (sent < due && !(stop && atomic_load(stop))) {
      char key[16];
      size_t klen = bench_key(key, sizeof key, from + sent, keys);
      bench_value_fill(buf, size, from + sent, bench_now_us());
      rd_kafka_resp_err_t err =
          rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE(buf, size), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk, 5);
        continue;
      }
      if (err) {
        snprintf(errbuf, errbuf_size, "producing to %s: %s", topic, rd_kafka_err2str(err));
        rc = HUB_ERR_TRANSPORT;
        goto out;
      }
      sent++;
    }
    rd_kafka_poll(rk, 0);
    if (rate > 0 && sent < count) sleep_us(500);
  }
  while (rd_kafka_outq_len(rk) > 0 && !(stop && atomic_load(stop))) rd_kafka_flush(rk, 500);
  if (stop && atomic_load(stop)) {
    snprintf(errbuf, errbuf_size, "interrupted");
    rc = HUB_ERR_STOPPED;
  } else if (atomic_load(&d.failed)) {
    snprintf(errbuf, errbuf_size, "%llu record(s) to %s not delivered: %s", (unsigned long long)atomic_load(&d.failed),
             topic, d.first_error);
    rc = HUB_ERR_TRANSPORT;
  }
  *seconds = (double)(d.last_ack_us - t0) / 1e6;
out:
  if (rk) rd_kafka_destroy(rk);
  free(buf);
  return rc;
}

struct bench_observer {
  rd_kafka_t *rk;
  pthread_t thread;
  int started;
  atomic_int stop, draining, quiet_ms; /* draining: 0 no, 1 asked, 2 done */
  atomic_int ready;                    /* every partition has been read to its end once */
  size_t size;
  uint32_t keys;
  uint64_t win_from, win_to, lat_from;
  int partitions;
  /* observer thread only until stopped */
  unsigned char *seen; /* receipts per sequence number (saturating) */
  uint64_t seen_cap;
  int64_t *last_seq; /* per key, -1 none */
  int *at_eof;       /* per partition: the last event was end-of-partition */
  int64_t last_msg_us;
  double *lat, *lat_in; /* send -> visible; send -> produced by the system under test */
  size_t n_lat, cap_lat;
  /* shared */
  pthread_mutex_t mu;
  struct bench_observer_stats st;
};

static int grow_seen(struct bench_observer *o, uint64_t seq) {
  if (seq < o->seen_cap) return 0;
  uint64_t cap = o->seen_cap ? o->seen_cap : 1024;
  while (cap <= seq) cap *= 2;
  unsigned char *n = realloc(o->seen, cap);
  if (!n) return -1;
  memset(n + o->seen_cap, 0, cap - o->seen_cap);
  o->seen = n;
  o->seen_cap = cap;
  return 0;
}

static void note_latency(struct bench_observer *o, double ms, double in_ms) {
  if (o->n_lat == o->cap_lat) {
    size_t cap = o->cap_lat ? o->cap_lat * 2 : 4096;
    double *n = realloc(o->lat, cap * sizeof *n), *m = n ? realloc(o->lat_in, cap * sizeof *m) : NULL;
    if (n) o->lat = n;
    if (!m) return;
    o->lat_in = m;
    o->cap_lat = cap;
  }
  o->lat_in[o->n_lat] = in_ms;
  o->lat[o->n_lat++] = ms;
}

void bench_observer_feed(struct bench_observer *o, const void *key, size_t key_len, const void *value, size_t len,
                         int64_t ts_ms, int64_t now_us) {
  uint64_t seq;
  int64_t send_us;
  char want[16];
  int corrupt = bench_value_parse(value, len, o->size, &seq, &send_us) != 0 || seq > MAX_SEQ;
  if (!corrupt) {
    size_t klen = bench_key(want, sizeof want, seq, o->keys);
    corrupt = !key || key_len != klen || memcmp(key, want, klen) != 0;
  }
  pthread_mutex_lock(&o->mu);
  if (!corrupt && grow_seen(o, seq) < 0) corrupt = 1; /* out of memory: cannot tell; counted as a failure */
  o->st.received++;
  if (corrupt) {
    o->st.corrupt++;
    goto out;
  }
  if (o->seen[seq]) {
    o->st.duplicates++;
    if (o->seen[seq] < 255) o->seen[seq]++;
    goto out;
  }
  o->seen[seq] = 1;
  uint32_t k = (uint32_t)(seq % o->keys);
  if (o->last_seq[k] > (int64_t)seq) o->st.order_violations++;
  o->last_seq[k] = (int64_t)seq;
  o->st.distinct++;
  if (seq >= o->win_from && seq < o->win_to) {
    if (ts_ms >= 0 && (o->st.first_create_ms < 0 || ts_ms < o->st.first_create_ms)) o->st.first_create_ms = ts_ms;
    if (ts_ms > o->st.last_create_ms) o->st.last_create_ms = ts_ms;
    uint64_t n = o->win_to - o->win_from, k = ++o->st.distinct_win;
    if (k == (n + 9) / 10) o->st.win_10_us = now_us;
    if (k == (9 * n + 9) / 10) o->st.win_90_us = now_us;
    if (k == n) o->st.win_complete_us = now_us;
  } else if (seq >= o->lat_from) {
    o->st.distinct_lat++;
    note_latency(o, (double)(now_us - send_us) / 1000.0, ts_ms >= 0 ? (double)(ts_ms * 1000 - send_us) / 1000.0 : 0);
  }
out:
  pthread_mutex_unlock(&o->mu);
}

static void *observer_main(void *p) {
  struct bench_observer *o = p;
  while (!atomic_load(&o->stop)) {
    rd_kafka_message_t *km = rd_kafka_consumer_poll(o->rk, 100);
    int64_t now = bench_now_us();
    if (km) {
      if (km->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (km->partition >= 0 && km->partition < o->partitions) o->at_eof[km->partition] = 1;
        int all = 1;
        for (int i = 0; i < o->partitions; i++) all &= o->at_eof[i];
        if (all) atomic_store(&o->ready, 1);
      } else if (!km->err) {
        if (km->partition >= 0 && km->partition < o->partitions) o->at_eof[km->partition] = 0;
        rd_kafka_timestamp_type_t tt;
        o->last_msg_us = now;
        bench_observer_feed(o, km->key, km->key_len, km->payload, km->len, rd_kafka_message_timestamp(km, &tt), now);
      }
      rd_kafka_message_destroy(km);
    }
    if (atomic_load(&o->draining) == 1) {
      int all = 1;
      for (int i = 0; i < o->partitions; i++) all &= o->at_eof[i];
      if (all && now - o->last_msg_us >= (int64_t)atomic_load(&o->quiet_ms) * 1000) atomic_store(&o->draining, 2);
    }
  }
  return NULL;
}

hub_err_t bench_observer_start(const char *bootstrap, const char *topic, int partitions, size_t size,
                               uint32_t keys, struct bench_observer **out, char *errbuf, size_t errbuf_size) {
  struct bench_observer *o = calloc(1, sizeof *o);
  rd_kafka_conf_t *conf = NULL;
  rd_kafka_topic_partition_list_t *parts = NULL;
  hub_err_t rc = HUB_OK;
  char group[300];
  *out = NULL;
  if (!o) return HUB_ERR_NOMEM;
  pthread_mutex_init(&o->mu, NULL);
  o->size = size;
  o->keys = keys ? keys : 1;
  o->lat_from = UINT64_MAX;
  o->partitions = partitions;
  o->st.first_create_ms = o->st.last_create_ms = o->st.win_complete_us = o->st.win_10_us = o->st.win_90_us = -1;
  o->last_seq = malloc(o->keys * sizeof *o->last_seq);
  o->at_eof = calloc((size_t)partitions, sizeof *o->at_eof);
  if (!o->last_seq || !o->at_eof) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  for (uint32_t i = 0; i < o->keys; i++) o->last_seq[i] = -1;
  snprintf(group, sizeof group, "lienthong-bench-observer-%s", topic);
  /* fetch.wait.max.ms bounds how long a caught-up fetch waits at the broker, so it adds at
   * most that much to a measured latency. */
  const char *const settings[] = {"group.id", group, "isolation.level", "read_committed",
                                  "enable.auto.commit", "false", "enable.partition.eof", "true",
                                  "fetch.wait.max.ms", "5", NULL};
  if (!(conf = conf_new(bootstrap, errbuf, errbuf_size)) || conf_set_all(conf, settings, errbuf, errbuf_size) < 0) {
    rc = HUB_ERR_CONFIG;
    goto out;
  }
  if (!(o->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, errbuf_size))) {
    rc = HUB_ERR_CONFIG;
    goto out;
  }
  conf = NULL;
  rd_kafka_poll_set_consumer(o->rk);
  parts = rd_kafka_topic_partition_list_new(partitions);
  for (int i = 0; i < partitions; i++) rd_kafka_topic_partition_list_add(parts, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_resp_err_t err = rd_kafka_assign(o->rk, parts);
  if (err) {
    snprintf(errbuf, errbuf_size, "reading %s: %s", topic, rd_kafka_err2str(err));
    rc = HUB_ERR_TRANSPORT;
    goto out;
  }
  o->last_msg_us = bench_now_us();
  if (pthread_create(&o->thread, NULL, observer_main, o) != 0) {
    snprintf(errbuf, errbuf_size, "cannot start the observer thread");
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  o->started = 1;
out:
  if (conf) rd_kafka_conf_destroy(conf);
  if (parts) rd_kafka_topic_partition_list_destroy(parts);
  if (rc != HUB_OK) {
    bench_observer_destroy(o);
    return rc;
  }
  *out = o;
  return HUB_OK;
}

void bench_observer_set_window(struct bench_observer *o, uint64_t from, uint64_t to) {
  pthread_mutex_lock(&o->mu);
  o->win_from = from;
  o->win_to = to;
  o->st.distinct_win = 0;
  o->st.first_create_ms = o->st.last_create_ms = o->st.win_complete_us = o->st.win_10_us = o->st.win_90_us = -1;
  pthread_mutex_unlock(&o->mu);
}

void bench_observer_set_latency(struct bench_observer *o, uint64_t from) {
  pthread_mutex_lock(&o->mu);
  o->lat_from = from;
  pthread_mutex_unlock(&o->mu);
}

void bench_observer_get_stats(struct bench_observer *o, struct bench_observer_stats *st) {
  pthread_mutex_lock(&o->mu);
  *st = o->st;
  pthread_mutex_unlock(&o->mu);
}

int bench_observer_wait_ready(struct bench_observer *o, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    if (atomic_load(&o->ready)) return 0;
    sleep_us(10000);
  }
  return -1;
}

int bench_observer_drain(struct bench_observer *o, int quiet_ms, int timeout_ms) {
  atomic_store(&o->quiet_ms, quiet_ms);
  atomic_store(&o->draining, 1);
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (atomic_load(&o->draining) == 2) return 0;
    sleep_us(20000);
  }
  return -1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

void bench_observer_stop(struct bench_observer *o) {
  if (!o || !o->started) return;
  atomic_store(&o->stop, 1);
  pthread_join(o->thread, NULL);
  o->started = 0;
  bench_sort(o->lat, o->n_lat);
  bench_sort(o->lat_in, o->n_lat);
}

uint64_t bench_observer_missing(const struct bench_observer *o, uint64_t from, uint64_t to) {
  uint64_t missing = 0;
  for (uint64_t s = from; s < to; s++) missing += s >= o->seen_cap || !o->seen[s];
  return missing;
}

const double *bench_observer_latencies(struct bench_observer *o, size_t *n) {
  *n = o->n_lat;
  return o->lat;
}

const double *bench_observer_latencies_in(struct bench_observer *o, size_t *n) {
  *n = o->n_lat;
  return o->lat_in;
}

void bench_observer_destroy(struct bench_observer *o) {
  if (!o) return;
  bench_observer_stop(o);
  if (o->rk) {
    rd_kafka_consumer_close(o->rk);
    rd_kafka_destroy(o->rk);
  }
  pthread_mutex_destroy(&o->mu);
  free(o->seen);
  free(o->last_seq);
  free(o->at_eof);
  free(o->lat);
  free(o->lat_in);
  free(o);
}

void bench_sort(double *v, size_t n) {
  if (n) qsort(v, n, sizeof *v, cmp_double);
}

double bench_quantile(const double *sorted, size_t n, double q) {
  if (!n) return 0;
  double r = q * (double)n;
  size_t i = (size_t)r;
  if ((double)i < r) i++; /* ceil: nearest rank */
  if (i < 1) i = 1;
  if (i > n) i = n;
  return sorted[i - 1];
}
