/* The stop flag (see stop.h). A lock-free atomic: safe from a signal handler and across threads. */
#include "hub/core/stop.h"

#include <stdatomic.h>

static atomic_int stop_flag;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the stop flag is set from a signal handler");

void hub_stop_request(void) { atomic_store(&stop_flag, 1); }
int hub_stop_requested(void) { return atomic_load_explicit(&stop_flag, memory_order_relaxed); }
void hub_stop_reset(void) { atomic_store(&stop_flag, 0); }
