/* The source runner: runs one source connector (hub/engine/connector.h) on the transport. It
 * owns the source's transactional producer, commits what the source emits together with its
 * cursor (concurrent emits share one transaction), pauses the source while the transport cannot
 * take writes, calls a poller's poll on schedule, and reports the source into /metrics and
 * /ready. */
#ifndef HUB_SOURCE_H
#define HUB_SOURCE_H

#include "hub/core/config.h"
#include "hub/engine/connector.h"
#include "hub/transport/transport.h"

struct hub_source_runner;

/* Creates the plugin (nothing listens or connects yet). */
hub_err_t hub_source_runner_create(const struct hub_config *cfg, const struct hub_source_cfg *scfg,
                                   const struct hub_transport_ops *transport, struct hub_source_runner **out,
                                   char *errbuf, size_t errbuf_size);
/* Starts its thread: connects (retrying while the cluster is away), then starts the plugin and,
 * for a poller, polls until stopped. */
hub_err_t hub_source_runner_start(struct hub_source_runner *s);
/* Stops the plugin (no emit after it) and the thread; what was committed stays committed. */
void hub_source_runner_stop(struct hub_source_runner *s);
/* 1 once the plugin was started (for tests and run's start-up). */
int hub_source_runner_started(struct hub_source_runner *s);
void hub_source_runner_destroy(struct hub_source_runner *s);

#endif
