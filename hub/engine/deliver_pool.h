/* A small pool of threads that runs one function on each index of a batch and returns when all
 * are done: the route engine uses it to call a sink's deliver on several records (of different
 * keys) at once. The calling thread works too, so a pool of n threads gives n + 1 in parallel. */
#ifndef HUB_DELIVER_POOL_H
#define HUB_DELIVER_POOL_H

#include <stddef.h>

struct hub_deliver_pool;

typedef void (*hub_deliver_fn)(void *ctx, size_t i);

/* Starts `threads` workers (>= 1), naming them in logs after `route`. NULL when out of memory
 * or threads cannot be created. */
struct hub_deliver_pool *hub_deliver_pool_new(size_t threads, const char *route);
/* Calls fn(ctx, i) for every i in [0, n), on the workers and the caller; returns when every call
 * has returned. One run at a time. */
void hub_deliver_pool_run(struct hub_deliver_pool *p, hub_deliver_fn fn, void *ctx, size_t n);
/* Stops and joins the workers. NULL-safe. */
void hub_deliver_pool_destroy(struct hub_deliver_pool *p);

#endif
