/* `lienthong bench NAME [ARGS...]`: runs the benchmark command registered as `bench.NAME`
 * (hidden from --help because of the dot), so each benchmark is its own command plugin. */
#include <stdio.h>
#include <string.h>

#include "hub/core/registry.h"

static const struct hub_cmd cmd;

static void list_benches(FILE *f) {
  fprintf(f, "Benchmarks:\n");
  for (size_t i = 0; hub_plugins[i]; i++)
    if (hub_plugins[i]->kind == HUB_PLUGIN_CMD && !strncmp(((const struct hub_cmd *)hub_plugins[i]->ops)->name, "bench.", 6))
      fprintf(f, "  %-12s %s\n", ((const struct hub_cmd *)hub_plugins[i]->ops)->name + 6, ((const struct hub_cmd *)hub_plugins[i]->ops)->summary);
}

static int bench_main(int argc, char **argv) {
  char name[128];
  if (argc < 2) {
    list_benches(stderr);
    return hub_cmd_usage_error(&cmd, "missing the benchmark's NAME");
  }
  if ((size_t)snprintf(name, sizeof name, "bench.%s", argv[1]) >= sizeof name || !hub_registry_get_cmd(name)) {
    list_benches(stderr);
    return hub_cmd_usage_error(&cmd, "unknown benchmark '%s'", argv[1]);
  }
  const struct hub_cmd *b = hub_registry_get_cmd(name);
  return b->main(argc - 1, argv + 1);
}

static const struct hub_cmd cmd = {
    .name = "bench",
    .summary = "run a benchmark (lienthong bench passthrough)",
    .usage = "Usage: lienthong bench NAME [OPTIONS]\n\n"
             "Runs the benchmark NAME. Its options: `lienthong bench.NAME --help`, e.g.\n"
             "  lienthong bench.passthrough --help\n\n"
             "Exit codes: those of the benchmark; 2 for an unknown NAME.",
    .main = bench_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_bench, cmd);
