/* The transport interface: what routes, the DLQ tools and the bench need from a log of
 * topics. `kafka` (librdkafka) and `memory` (in-process, for tests) implement it with the same
 * semantics, so routes cannot tell which one runs.
 *
 * Transports are plugins (HUB_TRANSPORT_PLUGIN); `hub.transport` picks one by name and its options
 * are the section `hub.NAME`. A stop request (hub/core/stop.h) makes blocking calls give up.
 *
 * A transport handle serves one route instance: a consumer in a consumer group reading
 * committed records only, and a transactional producer whose transactions also carry the
 * consumer's offsets (consume-transform-produce exactly once). */
#ifndef HUB_TRANSPORT_H
#define HUB_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/cfgmap.h"
#include "hub/core/err.h"
#include "hub/core/msg.h"
#include "hub/core/registry.h"

/* Who is opening the handle, and what for. */
struct hub_transport_opts {
  const char *client_id;        /* appears in broker logs */
  const char *group_id;         /* consumer group; NULL: no consumer */
  const char *group_instance;   /* static membership id; NULL: dynamic */
  const char *transactional_id; /* NULL: a plain idempotent producer (acks=all) without transactions */
  const char *base_dir;         /* the configuration's folder: relative paths in the options start here */
};

struct hub_transport;

/* Called by scan() for each record of a topic, in partition order. Return nonzero to stop. */
typedef int (*hub_scan_cb)(void *ctx, const struct hub_msg *m);

/* A topic as list_topics() describes it. */
struct hub_topic_desc {
  char *name;
  int partitions;
};

/* Called by list_offsets() for each committed offset: `next` is the next record the group reads. */
typedef int (*hub_offset_cb)(void *ctx, const char *group, const char *topic, int32_t partition, int64_t next);

struct hub_transport_ops {
  struct hub_plugin_info info; /* name (hub.transport), summary, options (the section hub.NAME) */
  /* cfg: the struct the transport's config map filled. */
  hub_err_t (*open)(const void *cfg, const struct hub_transport_opts *opts, struct hub_transport **out, char *errbuf,
                    size_t errbuf_size);
  void (*close)(struct hub_transport *t);
  /* Creates the topics that do not exist yet, if the transport's options say so. */
  hub_err_t (*ensure_topics)(struct hub_transport *t, const char *const *topics, size_t n, char *errbuf,
                             size_t errbuf_size);
  hub_err_t (*subscribe)(struct hub_transport *t, const char *topic);
  /* Next record, or *out = NULL after timeout_ms. HUB_ERR_ABORTED: a rebalance took partitions
   * away and the open transaction was aborted: drop what is buffered and begin again. */
  hub_err_t (*poll)(struct hub_transport *t, int timeout_ms, struct hub_msg **out);
  hub_err_t (*begin)(struct hub_transport *t);
  /* Queues a record inside the open transaction (or, without transactions, for delivery). */
  hub_err_t (*produce)(struct hub_transport *t, const char *topic, const struct hub_msg *m);
  /* Stops returning records of m's partition after m while the other partitions flow: a record
   * waiting for its retry holds only its own partition. The caller resumes it (also
   * after an abort or a rebalance, which rewind the partition). */
  void (*pause)(struct hub_transport *t, const struct hub_msg *m);
  /* Lets m's partition flow again: from the record after m, or from where an abort or a
   * rebalance rewound it in the meantime. Resuming a partition that is not paused, or no longer
   * assigned, does nothing. */
  void (*resume)(struct hub_transport *t, const struct hub_msg *m);
  /* Records that `m` (as returned by poll) is fully processed: its offset goes into the commit. */
  void (*mark_done)(struct hub_transport *t, const struct hub_msg *m);
  /* Commits the open transaction with the offsets of every record marked done. Returns
   * HUB_ERR_ABORTED when the transaction had to be aborted (the consumer was rewound: redo from
   * poll), HUB_ERR_STOPPED if a stop was requested while retrying. Without transactions: waits
   * until every queued record is acknowledged by the broker (acks=all). */
  hub_err_t (*commit)(struct hub_transport *t);
  /* Aborts the open transaction and rewinds the consumer to the committed offsets. */
  hub_err_t (*abort)(struct hub_transport *t);
  /* Partitions currently assigned to the consumer. */
  int (*assigned)(struct hub_transport *t);
  /* Records already fetched and waiting for poll (0 for a transport that does not fetch ahead). */
  int64_t (*fetched)(struct hub_transport *t);
  /* Records behind the end of the assigned partitions (from cached watermarks); -1 if unknown. */
  int64_t (*lag)(struct hub_transport *t);
  /* Whether the last contact with the cluster succeeded. */
  int (*connected)(struct hub_transport *t);
  /* Reads every committed record of `topic` from the start to its current end. */
  hub_err_t (*scan)(struct hub_transport *t, const char *topic, hub_scan_cb cb, void *ctx, char *errbuf,
                    size_t errbuf_size);

  /* ---- Moving a log to another transport (`lienthong transport copy`). NULL where a transport
   * cannot (memory: it lives and dies with one process). Open the handle without a group. */
  /* Every topic but the transport's internal ones (Kafka's __*), sorted by name; free the array
   * with hub_topic_descs_free. */
  hub_err_t (*list_topics)(struct hub_transport *t, struct hub_topic_desc **out, size_t *n, char *errbuf,
                           size_t errbuf_size);
  /* The first offset a partition still holds (retention, compaction) and the offset its next
   * record gets. */
  hub_err_t (*watermarks)(struct hub_transport *t, const char *topic, int32_t partition, int64_t *low, int64_t *high,
                          char *errbuf, size_t errbuf_size);
  /* Calls cb for each committed record of one partition with from <= offset < to, in order. */
  hub_err_t (*read_range)(struct hub_transport *t, const char *topic, int32_t partition, int64_t from, int64_t to,
                          hub_scan_cb cb, void *ctx, char *errbuf, size_t errbuf_size);
  /* Creates `topic` with exactly `partitions` partitions (the cursor topic compacted). A topic
   * that exists with that count is fine; with another count, HUB_ERR_CONFIG. */
  hub_err_t (*create_topic)(struct hub_transport *t, const char *topic, int partitions, char *errbuf,
                            size_t errbuf_size);
  /* As produce, but into m->partition and keeping m->timestamp_ms. */
  hub_err_t (*produce_exact)(struct hub_transport *t, const char *topic, const struct hub_msg *m);
  /* Calls cb for every committed offset of every consumer group. */
  hub_err_t (*list_offsets)(struct hub_transport *t, hub_offset_cb cb, void *ctx, char *errbuf, size_t errbuf_size);
  /* Sets committed offsets of `group` on `topic` (partitions[i] -> next[i]); the group must have
   * no live member. */
  hub_err_t (*set_offsets)(struct hub_transport *t, const char *group, const char *topic, const int32_t *partitions,
                           const int64_t *next, size_t n, char *errbuf, size_t errbuf_size);
};

static inline void hub_topic_descs_free(struct hub_topic_desc *d, size_t n) {
  for (size_t i = 0; d && i < n; i++) free(d[i].name);
  free(d);
}

/* Where sources keep their cursors: one record per source (key: its name, value: its cursor),
 * written in the same transaction as the source's records. A compacted topic on Kafka. */
#define HUB_TOPIC_CURSORS "lienthong.cursors"

/* Topics kept compacted (the latest record per key): the cursors, and any topic whose name ends
 * in ".snapshot" (a source's snapshot of an external catalogue, e.g. connectors/tthc). */
#define HUB_TOPIC_SNAPSHOT_SUFFIX ".snapshot"
static inline int hub_topic_compacted(const char *name) {
  size_t n = strlen(name), sn = sizeof HUB_TOPIC_SNAPSHOT_SUFFIX - 1;
  return !strcmp(name, HUB_TOPIC_CURSORS) || (n > sn && !strcmp(name + n - sn, HUB_TOPIC_SNAPSHOT_SUFFIX));
}

/* The transport plugin named `name`, or NULL. */
static inline const struct hub_transport_ops *hub_transport_get(const char *name) {
  return (const struct hub_transport_ops *)hub_registry_get(HUB_PLUGIN_TRANSPORT, name);
}

#endif
