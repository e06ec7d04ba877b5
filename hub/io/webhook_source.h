/* What a webhook source (http-listen, onestop, paygov-confirm) keeps about its route on the
 * shared HTTP server (http_server.h), and the source ops that touch nothing else. Put a
 * `struct hub_webhook` FIRST in the source's state: the functions below then serve directly as
 * its stop, pause, resume and health ops. */
#ifndef HUB_IO_WEBHOOK_SOURCE_H
#define HUB_IO_WEBHOOK_SOURCE_H

#include <stdatomic.h>
#include <stddef.h>

#include "hub/core/err.h"
#include "hub/io/http_server.h"

struct hub_webhook {
  struct hub_http_route *route;
  atomic_int paused, listening;
  const char *listen; /* the address, for health messages (borrowed from the config) */
  const char *reserved_path; /* reserved on the server until the route is added (borrowed) */
};

/* From create: until the source starts, requests to its path are answered 503 "starting" (retry)
 * rather than 404 (gone), also when another route of the same address is already served.
 * LISTEN and PATH are borrowed (the config's). HUB_ERR_NOMEM only. */
hub_err_t hub_webhook_reserve(struct hub_webhook *w, const char *listen, const char *path);
/* The lt.id of an event a caller names with IDEM (Idempotency-Key, an event id; NULL or "": a new
 * UUIDv7): a UUIDv8 of CONNECTOR, SOURCE and all of IDEM, so an event sent again after a lost
 * answer keeps its id and two events never share one. HUB_ERR_NOMEM only. */
hub_err_t hub_webhook_event_id(const char *connector, const char *source, const char *idem, char id[37]);

struct hub_node;
/* The config check every webhook source makes: PATH (if set) starts with '/', LISTEN (if set) is
 * HOST:PORT with a port from 1 to 65535. NODE and AT are the check hook's; HUB_ERR_CONFIG names the
 * key and where it is. */
hub_err_t hub_webhook_check_address(const char *listen, const char *path, const struct hub_node *node,
                                    const struct hub_node *at, char *errbuf, size_t errbuf_size);

/* Adds the route (cfg->listen is remembered) and marks the source listening. */
hub_err_t hub_webhook_start(struct hub_webhook *w, const struct hub_http_route_cfg *cfg, char *errbuf,
                            size_t errbuf_size);
/* Removes the route, waiting for the requests in flight: no emit after this. Also for destroy. */
void hub_webhook_stop(void *state);
void hub_webhook_pause(void *state);
void hub_webhook_resume(void *state);
/* Whether requests should be answered 503 now (the engine paused the source). */
int hub_webhook_paused(const void *state);
int hub_webhook_health(void *state, char *why, size_t why_size);

#endif
