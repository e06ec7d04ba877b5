/* A token bucket per endpoint: `per_second` tokens a second, at most `burst` saved up. A call
 * takes a token, waiting for one (bounded by its own timeout) rather than failing. Thread-safe:
 * waiters are served in the order they came (each reserves the next token). Every limiter is
 * listed in /metrics (lienthong_ratelimit_waits_total, lienthong_ratelimit_wait_seconds_total)
 * with its connector and endpoint. */
#ifndef HUB_RATELIMIT_H
#define HUB_RATELIMIT_H

#include <stdint.h>

struct hub_ratelimit;

/* per_second > 0; burst < 1 counts as 1. NULL when out of memory. */
struct hub_ratelimit *hub_ratelimit_new(const char *connector, const char *endpoint, double per_second, int64_t burst);
void hub_ratelimit_destroy(struct hub_ratelimit *r);
/* Takes a token, sleeping until it is due. 0 on success; -1 when it would not be due within
 * timeout_ms (nothing is taken), or the hub is stopping. */
int hub_ratelimit_acquire(struct hub_ratelimit *r, int64_t timeout_ms);

#endif
