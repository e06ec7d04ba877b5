/* A route: reads one topic, runs its steps on each record, writes the result to another
 * topic, exactly once, in transactions that also commit the consumer offsets. A record that
 * a step rejects, or that still asks for a retry when the retries run out, goes to the
 * route's DLQ with its original bytes and headers plus the error headers; the route goes on.
 * A record that asks for a retry waits (exponential full-jitter backoff) holding only its own
 * partition, which the transport pauses while the others flow, so the order of records per key
 * (per partition) is kept. A sink connector runs as a route whose last step is its deliver. */
#ifndef HUB_ROUTE_H
#define HUB_ROUTE_H

#include "hub/core/config.h"
#include "hub/core/metrics.h"
#include "hub/core/step.h"
#include "hub/core/step_chain.h" /* a route runs its steps as a chain */
#include "hub/transport/transport.h"

struct hub_route;

hub_err_t hub_route_create(const struct hub_config *cfg, const struct hub_route_cfg *rcfg,
                           const struct hub_transport_ops *transport, struct hub_route **out, char *errbuf,
                           size_t errbuf_size);
/* Runs until hub_stop_request(); finishes the open transaction and returns. */
hub_err_t hub_route_run(struct hub_route *r);
void hub_route_destroy(struct hub_route *r);

/* Builds the DLQ record for `orig` (a copy with the error headers added). */
struct hub_msg *hub_dlq_record_new(const struct hub_msg *orig, const char *route, const char *stage,
                                   const struct hub_step_outcome *out, int attempts);

/* For a step whose state is a function of its input (reconciliation): reads every committed
 * record of `topic` (NULL: the route's `from`) through the transport of the route running on
 * the calling thread, so after a restart or an aborted transaction the step can rebuild its
 * state from what was committed. Only from a step's process() on a route's thread;
 * HUB_ERR_UNSUPPORTED elsewhere (`lienthong test`, `map`). */
hub_err_t hub_route_scan(const char *topic, hub_scan_cb cb, void *ctx, char *errbuf, size_t errbuf_size);

#endif
