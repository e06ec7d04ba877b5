/* `lienthong lint CONFIG...`: checks configuration files without connecting anywhere. */
#include <stdio.h>

#include "hub/core/config.h"
#include "hub/core/registry.h"

static const struct hub_cmd cmd;

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
    printf("%s: ok (%zu route(s))\n", argv[i], cfg->n_routes);
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
             "transport and step; topic names and duplicate routes; then the steps are created (their\n"
             "files and keys load) and destroyed. The transport's options are checked as its clients\n"
             "would be set up (for kafka: librdkafka's own checks, without connecting).\n"
             "Errors are printed as FILE:LINE:COL: message.\n\n"
             "Exit codes: 0 all valid, 2 any invalid or usage error.",
    .main = lint_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_lint, cmd);
