/* The `memory` transport's options and its hooks for tests: fault injection (failed commits,
 * forced rebalances) and a reset of the process-wide broker between tests. Routes never use
 * these; they reach the transport through transport.h like any other. */
#ifndef HUB_TRANSPORT_MEMORY_H
#define HUB_TRANSPORT_MEMORY_H

#include <stdint.h>

#include "hub/core/err.h"

/* hub.memory in the config (filled by the transport's config map). open() also takes NULL for
 * the defaults. */
struct hub_memory_cfg {
  int64_t partitions; /* of every topic a handle creates */
};

/* Forgets every topic, record, consumer group, committed offset, transactional id and injected
 * fault. Only while no handle is open: otherwise changes nothing and returns HUB_ERR_INVALID_ARG. */
hub_err_t hub_memory_reset(void);

/* The next n commits of an open transaction by handles whose transactional id is txn_id fail:
 * the transaction is aborted, the consumer rewound, and commit returns HUB_ERR_ABORTED. n = 0
 * cancels what is left. */
void hub_memory_fail_commits(const char *txn_id, int n);

/* Rebalances every consumer group named group_id now, as a member joining or leaving does: each
 * member's next poll (or a commit carrying offsets) gives up its partitions and takes the new
 * assignment from the committed offsets, aborting its open transaction. */
void hub_memory_rebalance(const char *group_id);

#endif
