#include "hub/io/webhook_source.h"

#include <stdio.h>

hub_err_t hub_webhook_start(struct hub_webhook *w, const struct hub_http_route_cfg *cfg, char *errbuf,
                            size_t errbuf_size) {
  w->listen = cfg->listen;
  hub_err_t err = hub_http_route_add(cfg, &w->route, errbuf, errbuf_size);
  if (err == HUB_OK) atomic_store(&w->listening, 1);
  return err;
}

void hub_webhook_stop(void *state) {
  struct hub_webhook *w = state;
  atomic_store(&w->listening, 0);
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
