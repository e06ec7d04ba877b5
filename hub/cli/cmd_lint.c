/* `lienthong lint CONFIG...`: checks configuration files without connecting anywhere. */
#include <stdio.h>

#include "hub/core/config.h"
#include "hub/core/registry.h"
#include "hub/engine/route.h"
#include "hub/engine/source.h"

static const struct hub_cmd cmd;

/* Creates and destroys every connector once, as run would at start (none listens or connects). */
static hub_err_t check_connectors(const struct hub_config *cfg, char *errbuf, size_t errbuf_size) {
  const struct hub_transport_ops *transport = hub_transport_get(cfg->hub.transport);
  hub_err_t rc = HUB_OK;
  for (size_t i = 0; rc == HUB_OK && i < cfg->n_sources; i++) {
    struct hub_source_runner *s = NULL;
    rc = hub_source_runner_create(cfg, &cfg->sources[i], transport, &s, errbuf, errbuf_size);
    hub_source_runner_destroy(s);
  }
  for (size_t i = 0; rc == HUB_OK && i < cfg->n_routes; i++) {
    if (!cfg->routes[i].sink) continue;
    struct hub_route *r = NULL;
    rc = hub_route_create(cfg, &cfg->routes[i], transport, &r, errbuf, errbuf_size);
    hub_route_destroy(r);
  }
  return rc;
}

static int lint_main(int argc, char **argv) {
  if (argc < 2) return hub_cmd_usage_error(&cmd, "missing CONFIG");
  int bad = 0;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-' && argv[i][1]) return hub_cmd_usage_error(&cmd, "unknown option '%s'", argv[i]);
  }
  for (int i = 1; i < argc; i++) {
    char errbuf[2048];
    struct hub_config *cfg = NULL;
    if (hub_config_load(argv[i], &cfg, errbuf, sizeof errbuf) != HUB_OK) {
      fprintf(stderr, "%s\n", errbuf);
      bad = 1;
      continue;
    }
    if (check_connectors(cfg, errbuf, sizeof errbuf) != HUB_OK) {
      fprintf(stderr, "%s\n", errbuf);
      bad = 1;
      hub_config_destroy(cfg);
      continue;
    }
    size_t sinks = 0;
    for (size_t r = 0; r < cfg->n_routes; r++) sinks += cfg->routes[r].sink != NULL;
    printf("%s: ok (%zu route(s), %zu source(s), %zu sink(s))\n", argv[i], cfg->n_routes - sinks, cfg->n_sources,
           sinks);
    hub_config_destroy(cfg);
  }
  return bad ? HUB_EXIT_USAGE : HUB_EXIT_OK;
}

static const struct hub_cmd cmd = {
    .name = "lint",
    .summary = "check configuration files strictly, without connecting",
    .usage = "Usage: lienthong lint CONFIG...\n\n"
             "Checks each CONFIG: YAML syntax, unknown keys, types, durations, sizes, bounds, required fields\n"
             "and the documented constraints between options (`lienthong doc config`) of every section,\n"
             "transport, step and connector; topic names and duplicate names; then the steps and connectors\n"
             "are created (their files and keys load) and destroyed: nothing listens or connects. The\n"
             "transport's options are checked as its clients would be set up (for kafka: librdkafka's own\n"
             "checks, without connecting).\n"
             "Errors are printed as FILE:LINE:COL: message.\n\n"
             "Exit codes: 0 all valid, 2 any invalid or usage error.",
    .main = lint_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_lint, cmd);
