/* Retry delays: exponential backoff with full jitter (AWS architecture blog's "Full Jitter"):
 * delay = random(0, min(cap, base * 2^(attempt-1))). Pure math; the engine decides when. */
#ifndef HUB_BACKOFF_H
#define HUB_BACKOFF_H

#include <stdint.h>

/* The ceiling for retry number `attempt` (1-based): min(cap, base * 2^(attempt-1)). */
int64_t hub_backoff_ceiling_ms(int64_t base_ms, int64_t cap_ms, int attempt);
/* A delay in [0, ceiling] drawn with `rand01` in [0,1) (pass hub_backoff_random for real use). */
int64_t hub_backoff_delay_ms(int64_t base_ms, int64_t cap_ms, int attempt, double rand01);
/* A uniform random number in [0,1), thread-safe. */
double hub_backoff_random(void);

#endif
