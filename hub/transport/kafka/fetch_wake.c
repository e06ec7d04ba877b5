/* See fetch_wake.h for why this exists. */
#include "hub/transport/kafka/fetch_wake.h"

#include "hub/core/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PERIOD_MS 10 /* at 120000 records of 1 KiB a second an 8 MiB queue lasts ~70 ms */

struct hub_fetch_wake {
  rd_kafka_t *consumer;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
  rd_kafka_topic_partition_list_t *parts; /* under mu */
  atomic_ullong records;
};

static struct hub_metric_counter total_wakes = {
    "lienthong_kafka_fetch_wakeups_total",
    "Requests sent to wake librdkafka's fetcher while records flow (librdkafka < 2.2 stops fetching for up to 1 s "
    "after its prefetch queue was full)."};

static void *wake_main(void *arg) {
  struct hub_fetch_wake *w = arg;
  unsigned long long seen = 0;
  pthread_mutex_lock(&w->mu);
  while (!w->stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += PERIOD_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT) {
    }
    if (w->stop) break;
    unsigned long long n = atomic_load_explicit(&w->records, memory_order_relaxed);
    if (n == seen || !w->parts || w->parts->cnt == 0) continue; /* nothing consumed: nothing drained to refill */
    seen = n;
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_copy(w->parts);
    pthread_mutex_unlock(&w->mu);
    /* One ListOffsets (latest) per leader broker: the request is what wakes its thread; the
     * answer is not needed. */
    for (int i = 0; i < q->cnt; i++)
      q->elems[i].offset = RD_KAFKA_OFFSET_END;
    rd_kafka_offsets_for_times(w->consumer, q, 1000);
    rd_kafka_topic_partition_list_destroy(q);
    atomic_fetch_add_explicit(&total_wakes.value, 1, memory_order_relaxed);
    pthread_mutex_lock(&w->mu);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* librdkafka 2.2 added fetch.queue.backoff.ms, which makes the waker unnecessary. */
#define HAS_QUEUE_BACKOFF() (rd_kafka_version() >= 0x020200ff)

int hub_fetch_wake_conf(rd_kafka_conf_t *conf, char *errbuf, size_t errbuf_size) {
  if (!HAS_QUEUE_BACKOFF()) return 0;
  char ms[16];
  snprintf(ms, sizeof ms, "%d", PERIOD_MS);
  return rd_kafka_conf_set(conf, "fetch.queue.backoff.ms", ms, errbuf, errbuf_size) == RD_KAFKA_CONF_OK ? 0 : -1;
}

struct hub_fetch_wake *hub_fetch_wake_create(rd_kafka_t *consumer) {
  hub_metrics_register_counter(&total_wakes);
  if (HAS_QUEUE_BACKOFF()) return NULL;
  struct hub_fetch_wake *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->consumer = consumer;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  if (pthread_create(&w->thread, NULL, wake_main, w) != 0) {
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return NULL;
  }
  return w;
}

void hub_fetch_wake_set_assignment(struct hub_fetch_wake *w, const rd_kafka_topic_partition_list_t *parts) {
  if (!w) return;
  rd_kafka_topic_partition_list_t *copy = parts && parts->cnt ? rd_kafka_topic_partition_list_copy(parts) : NULL;
  pthread_mutex_lock(&w->mu);
  rd_kafka_topic_partition_list_t *old = w->parts;
  w->parts = copy;
  pthread_mutex_unlock(&w->mu);
  if (old) rd_kafka_topic_partition_list_destroy(old);
}

void hub_fetch_wake_note_record(struct hub_fetch_wake *w) {
  if (w) atomic_fetch_add_explicit(&w->records, 1, memory_order_relaxed);
}

unsigned long long hub_fetch_wake_total(void) {
  return atomic_load_explicit(&total_wakes.value, memory_order_relaxed);
}

void hub_fetch_wake_destroy(struct hub_fetch_wake *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  if (w->parts) rd_kafka_topic_partition_list_destroy(w->parts);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w);
}
