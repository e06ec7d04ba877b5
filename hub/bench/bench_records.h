/* Bench records and the Kafka clients of `lienthong bench`: the self-checking record format
 * (sequence number, send time, deterministic filler), a producer that sends a range of
 * sequence numbers as fast as it can or at a fixed rate, and an observer that reads a topic
 * with a read_committed consumer and checks that every sequence number arrives exactly once,
 * intact and in per-key order, noting when records become visible.
 *
 * These clients use librdkafka directly, not the transport interface: they are the bench's
 * instruments, outside the system under test. */
#ifndef HUB_BENCH_RECORDS_H
#define HUB_BENCH_RECORDS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/core/err.h"

/* "LTB1 " + 12-digit sequence + " " + 16-digit send time (µs, CLOCK_REALTIME) + " " */
#define BENCH_VALUE_HEADER 35
#define BENCH_MIN_SIZE 64
#define BENCH_MAX_SIZE 900000
#define BENCH_MAX_KEYS 1000000

/* Microseconds since the epoch (CLOCK_REALTIME): comparable across processes on this host. */
int64_t bench_now_us(void);

/* The key of record `seq` ("k" + 6 digits of seq % keys); returns its length. */
size_t bench_key(char *out, size_t cap, uint64_t seq, uint32_t keys);
/* Writes the `size`-byte value of record `seq` stamped with `send_us`. No byte is a tab or a
 * newline, so the record survives kcat's line format. */
void bench_value_fill(unsigned char *buf, size_t size, uint64_t seq, int64_t send_us);
/* Checks a value byte for byte against the format; 0 and the fields when it is intact. */
int bench_value_parse(const unsigned char *v, size_t len, size_t size, uint64_t *seq, int64_t *send_us);

/* Creates (or, with `delete`, deletes) topics with `partitions` partitions, replication 1. */
hub_err_t bench_topics_create(const char *bootstrap, const char *const *topics, size_t n, int partitions,
                              char *errbuf, size_t errbuf_size);
hub_err_t bench_topics_delete(const char *bootstrap, const char *const *topics, size_t n, char *errbuf,
                              size_t errbuf_size);

/* Sends records [from, from + count) to `topic` with an idempotent acks=all producer, as fast as
 * possible when rate <= 0, else paced at `rate` records/s; returns when every record is
 * acknowledged. `*seconds` is the time from the first send to the last acknowledgement.
 * `stop` (may be NULL) aborts early when it becomes nonzero. */
hub_err_t bench_produce(const char *bootstrap, const char *topic, uint64_t from, uint64_t count, size_t size,
                        uint32_t keys, double rate, const atomic_int *stop, double *seconds, char *errbuf,
                        size_t errbuf_size);

struct bench_observer;

struct bench_observer_stats {
  uint64_t received;         /* records read, duplicates included */
  uint64_t distinct;         /* distinct sequence numbers */
  uint64_t distinct_win;     /* distinct sequence numbers in the timed window */
  uint64_t distinct_lat;     /* distinct sequence numbers of the latency phase */
  uint64_t duplicates;       /* records whose sequence number was already seen */
  uint64_t corrupt;          /* value or key not as produced */
  uint64_t order_violations; /* a key's sequence numbers went backwards */
  int64_t first_create_ms;   /* smallest record timestamp (CreateTime) in the window; -1 none */
  int64_t last_create_ms;    /* largest record timestamp in the window; -1 none */
  int64_t win_complete_us;   /* when the last record of the window became visible; -1 not yet */
  int64_t win_10_us, win_90_us; /* when the first 10 % (90 %) of the window had become visible */
};

/* Starts a thread reading every partition of `topic` (which has `partitions` partitions) from
 * the beginning with isolation.level=read_committed. */
hub_err_t bench_observer_start(const char *bootstrap, const char *topic, int partitions, size_t size,
                               uint32_t keys, struct bench_observer **out, char *errbuf, size_t errbuf_size);
/* Times sequence numbers [from, to) from now on (the window's counters start again). */
void bench_observer_set_window(struct bench_observer *o, uint64_t from, uint64_t to);
/* Sequence numbers >= from are the latency phase: each one's visibility time minus its send
 * time is recorded. */
void bench_observer_set_latency(struct bench_observer *o, uint64_t from);
void bench_observer_get_stats(struct bench_observer *o, struct bench_observer_stats *st);
/* Counts one record as if read from the topic (the observer thread calls this; tests too):
 * its record timestamp (-1 if none) and when it became visible. */
void bench_observer_feed(struct bench_observer *o, const void *key, size_t key_len, const void *value, size_t len,
                         int64_t ts_ms, int64_t now_us);
/* Waits until the consumer has reached the end of every partition once (it is connected and
 * fetching); 0 then, -1 after timeout_ms. */
int bench_observer_wait_ready(struct bench_observer *o, int timeout_ms);
/* Reads on until every partition is at its end and nothing new arrived for `quiet_ms`
 * (so late duplicates are counted), or `timeout_ms` passes; returns 0 when drained. */
int bench_observer_drain(struct bench_observer *o, int quiet_ms, int timeout_ms);
/* Stops the thread (counters stay readable). Then: sequence numbers in [from, to) never seen. */
void bench_observer_stop(struct bench_observer *o);
uint64_t bench_observer_missing(const struct bench_observer *o, uint64_t from, uint64_t to);
/* After stop: the recorded latencies (ms) of the latency phase, sorted ascending (borrowed). */
const double *bench_observer_latencies(struct bench_observer *o, size_t *n);
/* The same records' send time to the record timestamp the system under test gave its output
 * (CreateTime, ms resolution): the part of the latency before its commit. Sorted. */
const double *bench_observer_latencies_in(struct bench_observer *o, size_t *n);
void bench_observer_destroy(struct bench_observer *o);

/* Sorts ascending. */
void bench_sort(double *v, size_t n);
/* The q-quantile (0..1) of an ascending array (nearest rank); 0 when empty. */
double bench_quantile(const double *sorted, size_t n, double q);

#endif
