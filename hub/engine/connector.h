/* The connector contract: what a source or a sink plugin implements and what the engine gives
 * it. A connector talks to one external system; the engine owns the transport, transactions,
 * retries, backoff, the DLQ, per-key order, cursors, metrics and health reporting.
 *
 * In the configuration a connector is an entry of `connectors:` with `name`, `type` (the plugin's
 * name) and the engine's keys for its kind (a source: `topic`, `poll_interval`; a sink: `from`,
 * `result`, `steps`, `errors`, `batch`); every other key is the plugin's own, checked by its
 * config map. Register with HUB_SOURCE_PLUGIN / HUB_SINK_PLUGIN (hub/core/registry.h). */
#ifndef HUB_CONNECTOR_H
#define HUB_CONNECTOR_H

#include <stddef.h>

#include "hub/core/cfgmap.h"
#include "hub/core/err.h"
#include "hub/core/msg.h"
#include "hub/core/plugin.h"
#include "hub/core/step.h"
#include "hub/transport/transport.h" /* hub_scan_cb */

/* The engine's side of one source: its topic, transport and cursor. */
struct hub_source_ctx;

struct hub_source_ops {
  struct hub_plugin_info info; /* name (`type:`), summary, options */
  /* Builds the state from the options (cfg: the struct the map filled). Must not listen or
   * connect: `lint` creates and destroys every connector. ctx lives until destroy. */
  hub_err_t (*create)(const void *cfg, const struct hub_plugin_env *env, struct hub_source_ctx *ctx, void **state,
                      char *errbuf, size_t errbuf_size);
  /* Servers start listening here; read the cursor with hub_source_cursor_get. A failure other
   * than HUB_ERR_CONFIG (the cluster is not ready yet) is retried with backoff, so start must
   * be safe to call again after it failed. */
  hub_err_t (*start)(void *state, char *errbuf, size_t errbuf_size);
  /* Pollers: called every `poll_interval` from the source's own thread; emits what it finds.
   * NULL for a source that is called (a server). RETRY-like failures are just returned. */
  hub_err_t (*poll)(void *state);
  /* Backpressure: the transport cannot take writes for now (stop accepting, or answer 503);
   * resume when it can. Either may be NULL. */
  void (*pause)(void *state);
  void (*resume)(void *state);
  /* Stops listening/polling; emit is not called after it returns. */
  void (*stop)(void *state);
  /* 1 healthy, 0 not (with why); called from the admin thread, so thread-safe. NULL: healthy. */
  int (*health)(void *state, char *why, size_t why_size);
  void (*destroy)(void *state);
};

/* Writes n records to the source's topic and, when cursor is not NULL, the source's cursor,
 * in one transaction; returns HUB_OK only after that transaction is committed. Then, and only
 * then, the source acknowledges its caller (HTTP 202, updateStatus done, moving a file).
 * Records without `lt.id` get one, without `lt.source` get the connector's name. The records
 * are not taken. Thread-safe: concurrent emits share transactions (group commit). On failure
 * nothing of this call is visible to readers: answer the caller with a retryable error.
 * HUB_ERR_STOPPED: the hub is stopping. */
hub_err_t hub_source_emit(struct hub_source_ctx *c, struct hub_msg *const *m, size_t n, const void *cursor,
                          size_t cursor_len);
/* The cursor this source committed last (malloc'd, *len bytes; NULL when it never did). */
hub_err_t hub_source_cursor_get(struct hub_source_ctx *c, void **cursor, size_t *len, char *errbuf,
                                size_t errbuf_size);
/* A record with its `topic` set (hub_msg_set_topic) goes to that topic instead of the source's,
 * in the same transaction: a source that sorts what it receives (accepted, refused) writes
 * both kinds atomically with its cursor. Create such a topic first (hub_source_ensure_topic). */
hub_err_t hub_source_ensure_topic(struct hub_source_ctx *c, const char *topic, char *errbuf, size_t errbuf_size);
/* Reads every committed record of `topic` from its start to its current end (a topic that does
 * not exist yet has none), e.g. to rebuild what a source already accepted after a restart.
 * Call from start, before accepting callers. */
hub_err_t hub_source_scan(struct hub_source_ctx *c, const char *topic, hub_scan_cb cb, void *ctx, char *errbuf,
                          size_t errbuf_size);
/* The connector's name and topic (borrowed). */
const char *hub_source_name(const struct hub_source_ctx *c);
const char *hub_source_topic(const struct hub_source_ctx *c);

struct hub_sink_ops {
  struct hub_plugin_info info;
  /* Must not connect (lint creates and destroys it). */
  hub_err_t (*create)(const void *cfg, const struct hub_plugin_env *env, void **state, char *errbuf,
                      size_t errbuf_size);
  /* Delivers one record (after the connector's `steps`). OK, optionally with *result (owned by
   * the engine afterwards) for the `result` topic, keyed like the input unless it has a key;
   * RETRY (the engine waits with backoff, holding only this record's partition) or REJECT (to
   * the DLQ with the outcome). lt.id of `in` is a stable idempotency key: a record delivered
   * again after a crash or an abort carries the same one. Called from the sink's route thread. */
  enum hub_step_result (*deliver)(void *state, const struct hub_msg *in, struct hub_msg **result,
                                  struct hub_step_outcome *out);
  int (*health)(void *state, char *why, size_t why_size); /* as for sources; NULL: healthy */
  void (*destroy)(void *state);
};

#endif
