/* A circuit breaker per endpoint: after `failures` consecutive failures it opens, and for
 * `open_for` every call fails fast without touching the network; then it lets one half-open
 * probe through: a success closes it, a failure opens it again. Thread-safe. Every breaker is
 * listed in /metrics (lienthong_breaker_state, lienthong_breaker_opened_total) with its
 * connector and endpoint, from creation until destroy. */
#ifndef HUB_BREAKER_H
#define HUB_BREAKER_H

#include <stddef.h>
#include <stdint.h>

#include "hub/core/cfgmap.h"

enum hub_breaker_state { HUB_BREAKER_CLOSED = 0, HUB_BREAKER_OPEN = 1, HUB_BREAKER_HALF_OPEN = 2 };

struct hub_breaker;

/* failures < 1 makes a breaker that never opens. NULL when out of memory. */
struct hub_breaker *hub_breaker_new(const char *connector, const char *endpoint, int failures, int64_t open_for_ms);
void hub_breaker_destroy(struct hub_breaker *b);

/* The `breaker:` option of a sink that calls one endpoint: {failures: 5, open_for: 30s}. Embed it as
 * {"breaker", HUB_CFG_OBJECT, offsetof(struct cfg, breaker), NULL, 0, "...", NULL, &hub_breaker_cfg_map}. */
struct hub_breaker_cfg {
  int64_t failures, open_for_ms;
};
extern const struct hub_cfg_map hub_breaker_cfg_map;
struct hub_breaker *hub_breaker_new_from(const char *connector, const char *endpoint, const struct hub_breaker_cfg *c);
/* 1: the call may go (closed, or the caller is the one half-open probe, which must report with
 * hub_breaker_record); 0: fail fast, and *retry_in_ms (if not NULL) says when a probe may go. */
int hub_breaker_allow(struct hub_breaker *b, int64_t *retry_in_ms);
/* The outcome of an allowed call: success (any answer that says the endpoint works) or failure
 * (5xx, timeout, connection error). */
void hub_breaker_record(struct hub_breaker *b, int success);
/* An allowed call that did not reach the endpoint after all (no rate-limit slot, no token):
 * frees the probe slot without changing the state. */
void hub_breaker_cancel(struct hub_breaker *b);
enum hub_breaker_state hub_breaker_get_state(struct hub_breaker *b);
/* 1 when closed; 0 when open or probing, with the reason in why. */
int hub_breaker_health(struct hub_breaker *b, char *why, size_t why_size);

#endif
