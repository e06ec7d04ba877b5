/* `lienthong`: finds the subcommand in the plugin registry and runs it. */
#include <stdio.h>
#include <string.h>

#include "hub/core/registry.h"

static void print_help(FILE *f) {
  fprintf(f,
          "lienthong %s: message-integration hub for Vietnamese e-government exchange (Apache Kafka)\n\n"
          "Usage: lienthong COMMAND [ARGS...]\n"
          "       lienthong COMMAND --help\n\n"
          "Commands:\n",
          LT_VERSION);
  for (size_t i = 0; hub_plugins[i]; i++)
    if (hub_plugins[i]->kind == HUB_PLUGIN_CMD && !strchr(((const struct hub_cmd *)hub_plugins[i]->ops)->name, '.'))
      fprintf(f, "  %-10s %s\n", ((const struct hub_cmd *)hub_plugins[i]->ops)->name, ((const struct hub_cmd *)hub_plugins[i]->ops)->summary);
  fprintf(f, "\nExit codes: 0 success, 1 a failed check, 2 usage or configuration error.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_help(stderr);
    return HUB_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    print_help(stdout);
    return HUB_EXIT_OK;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("lienthong %s\n", LT_VERSION);
    return HUB_EXIT_OK;
  }
  const struct hub_cmd *cmd = hub_registry_get_cmd(argv[1]);
  /* `lienthong bench NAME ...` is the command `bench.NAME`, so its own --help answers. */
  char bench[128];
  if (cmd && !strcmp(argv[1], "bench") && argc > 2 && argv[2][0] != '-' &&
      (size_t)snprintf(bench, sizeof bench, "bench.%s", argv[2]) < sizeof bench && hub_registry_get_cmd(bench)) {
    cmd = hub_registry_get_cmd(bench);
    argc--;
    argv++;
  }
  if (!cmd) {
    fprintf(stderr, "lienthong: unknown command '%s'\nTry 'lienthong --help'.\n", argv[1]);
    return HUB_EXIT_USAGE;
  }
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--")) break;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("%s\n", cmd->usage);
      return HUB_EXIT_OK;
    }
  }
  return cmd->main(argc - 1, argv + 1);
}
