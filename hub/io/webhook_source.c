#include "hub/io/webhook_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/cfgmap.h"
#include "hub/core/msg.h"
#include "hub/core/node.h"

hub_err_t hub_webhook_reserve(struct hub_webhook *w, const char *listen, const char *path) {
  if (hub_http_route_reserve(listen, path) != HUB_OK) return HUB_ERR_NOMEM;
  w->listen = listen;
  w->reserved_path = path;
  return HUB_OK;
}

hub_err_t hub_webhook_event_id(const char *connector, const char *source, const char *idem, char id[37]) {
  if (!idem || !*idem) {
    hub_uuid7(id);
    return HUB_OK;
  }
  size_t n = strlen(connector) + strlen(source) + strlen(idem) + 2;
  char *seed = malloc(n + 1);
  if (!seed) return HUB_ERR_NOMEM;
  snprintf(seed, n + 1, "%s\n%s\n%s", connector, source, idem);
  hub_uuid_from_bytes(seed, n, id);
  free(seed);
  return HUB_OK;
}

hub_err_t hub_webhook_start(struct hub_webhook *w, const struct hub_http_route_cfg *cfg, char *errbuf,
                            size_t errbuf_size) {
  w->listen = cfg->listen;
  hub_err_t err = hub_http_route_add(cfg, &w->route, errbuf, errbuf_size);
  if (err == HUB_OK) {
    w->reserved_path = NULL; /* the route took the reservation over */
    atomic_store(&w->listening, 1);
  }
  return err;
}

void hub_webhook_stop(void *state) {
  struct hub_webhook *w = state;
  atomic_store(&w->listening, 0);
  if (w->reserved_path) hub_http_route_unreserve(w->listen, w->reserved_path); /* never started */
  w->reserved_path = NULL;
  hub_http_route_remove(w->route);
  w->route = NULL;
}

void hub_webhook_pause(void *state) {
  atomic_store(&((struct hub_webhook *)state)->paused, 1);
}

void hub_webhook_resume(void *state) {
  atomic_store(&((struct hub_webhook *)state)->paused, 0);
}

int hub_webhook_paused(const void *state) {
  return atomic_load(&((const struct hub_webhook *)state)->paused);
}

int hub_webhook_health(void *state, char *why, size_t why_size) {
  struct hub_webhook *w = state;
  if (atomic_load(&w->listening)) return 1;
  snprintf(why, why_size, "not listening on %s", w->listen ? w->listen : "?");
  return 0;
}

hub_err_t hub_webhook_check_address(const char *listen, const char *path, const struct hub_node *node,
                                    const struct hub_node *at, char *errbuf, size_t errbuf_size) {
  if (path && path[0] != '/')
    return hub_node_error(hub_cfg_value_at(node, at, "path"), errbuf, errbuf_size, "path '%s' must start with /", path);
  const char *colon = listen ? strrchr(listen, ':') : NULL;
  char *end = NULL;
  long port = colon ? strtol(colon + 1, &end, 10) : 0;
  if (listen && (!colon || colon == listen || *end || end == colon + 1 || port < 1 || port > 65535))
    return hub_node_error(hub_cfg_value_at(node, at, "listen"), errbuf, errbuf_size,
                          "listen '%s' must be HOST:PORT with a port from 1 to 65535", listen);
  return HUB_OK;
}
