/* The process's stop request: set by the signal handler of `run` (SIGTERM/SIGINT) or by a
 * fatal error, read by every loop and blocking call that must give up soon. */
#ifndef HUB_STOP_H
#define HUB_STOP_H

/* Async-signal-safe (a lock-free atomic store). */
void hub_stop_request(void);
int hub_stop_requested(void);
/* Clears the request (tests that run the engine several times in one process). */
void hub_stop_reset(void);

#endif
