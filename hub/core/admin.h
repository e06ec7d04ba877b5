/* The admin HTTP server (libmicrohttpd, loopback): /live, /ready and /metrics, with an
 * optional bearer token. */
#ifndef HUB_ADMIN_H
#define HUB_ADMIN_H

#include <stddef.h>

#include "hub/core/config.h"

struct hub_admin;

/* Starts serving on cfg->listen ("host:port"). Returns HUB_OK with *out NULL when listen is empty. */
hub_err_t hub_admin_start(const struct hub_admin_cfg *cfg, const char *base_dir, struct hub_admin **out, char *errbuf,
                          size_t errbuf_size);
void hub_admin_stop(struct hub_admin *a);

#endif
