/* Wakes librdkafka's fetcher after its prefetch queue was full (librdkafka < 2.2 only).
 *
 * librdkafka before 2.2 stops fetching a partition whose queue holds
 * queued.max.messages.kbytes, and looks again only when its broker thread wakes up: on I/O, an
 * operation for that broker, or after up to 1 s. Draining the queue wakes nothing, so a consumer
 * that reads a backlog stalls for most of a second every time the queue fills (2.2 added
 * fetch.queue.backoff.ms for this; confluentinc/librdkafka#4275). While records flow, a small
 * ListOffsets request to the partitions' leaders every few milliseconds wakes those broker
 * threads, which then see the drained queue and fetch again. */
#ifndef HUB_KAFKA_FETCH_WAKE_H
#define HUB_KAFKA_FETCH_WAKE_H

#include <librdkafka/rdkafka.h>

struct hub_fetch_wake;

/* Consumer configuration for the same problem: on librdkafka >= 2.2, fetch.queue.backoff.ms
 * (10 ms, the waker's period); nothing before. Returns 0, or -1 with errbuf set. */
int hub_fetch_wake_conf(rd_kafka_conf_t *conf, char *errbuf, size_t errbuf_size);
/* Starts the waker thread for a consumer. NULL when librdkafka does not need it (>= 2.2) or the
 * thread cannot start (the consumer then works as before, only slower on a backlog). */
struct hub_fetch_wake *hub_fetch_wake_create(rd_kafka_t *consumer);
/* The partitions to keep awake (a copy is taken); NULL or empty: none. Thread-safe. */
void hub_fetch_wake_set_assignment(struct hub_fetch_wake *w, const rd_kafka_topic_partition_list_t *parts);
/* Counts a consumed record: the waker only runs while records flow. Cheap, thread-safe. */
void hub_fetch_wake_note_record(struct hub_fetch_wake *w);
/* Wake-up requests sent by every waker of the process (for /metrics). */
unsigned long long hub_fetch_wake_total(void);
/* Stops and joins the thread; call before the consumer is closed. NULL is fine. */
void hub_fetch_wake_destroy(struct hub_fetch_wake *w);

#endif
