/* `lienthong map MAPPING FILE`: runs a mapping on one input file and prints the output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/files.h"
#include "hub/core/registry.h"
#include "mappings/shape/json.h"
#include "mappings/shape/map.h"

static const struct hub_cmd cmd;

static int map_main(int argc, char **argv) {
  int rc = HUB_EXIT_USAGE, argi = 1, flags = LT_MAP_PRETTY;
  if (argi < argc && !strcmp(argv[argi], "--compact")) argi++, flags = 0;
  if (argc - argi != 2) return hub_cmd_usage_error(&cmd, "expected MAPPING and FILE");
  struct lt_map *m = NULL;
  char why[2048], *in = NULL;
  size_t len = 0, out_len = 0;
  unsigned char *out = NULL;
  if (lt_map_load_file(argv[argi], &m, why, sizeof why)) {
    fprintf(stderr, "lienthong map: %s\n", why);
    goto out;
  }
  if (hub_file_read_arg(argv[argi + 1], LT_JSON_MAX_BYTES, &in, &len, why, sizeof why)) {
    fprintf(stderr, "lienthong map: %s\n", why);
    goto out;
  }
  hub_err_t err = lt_map_run(m, in, len, flags, &out, &out_len, why, sizeof why);
  if (err) {
    fprintf(stderr, "lienthong map: %s\n", why);
    rc = err == HUB_ERR_UNDECIDED ? HUB_EXIT_USAGE : HUB_EXIT_FAIL; /* a limit is no verdict on the input */
    goto out;
  }
  fwrite(out, 1, out_len, stdout);
  if (!out_len || out[out_len - 1] != '\n') putchar('\n');
  rc = HUB_EXIT_OK;
out:
  free(out);
  free(in);
  lt_map_destroy(m);
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "map",
    .summary = "run a mapping file on an input file and print the output",
    .usage = "Usage: lienthong map [--compact] MAPPING FILE\n\n"
             "Runs the mapping (a YAML file, see docs/mapping.md) on FILE (JSON or XML, as the mapping's\n"
             "`input:` says; - for standard input) and prints the output (indented unless --compact).\n\n"
             "Exit codes: 0 mapped; 1 the input is unreadable or a rule failed (the message names the\n"
             "mapping file, the rule's line and the input path); 2 usage, an unreadable file, a bad mapping,\n"
             "or a contract's pattern that cannot be decided on the input (beyond the matching limit).",
    .main = map_main,
};
HUB_CMD_PLUGIN(lt_plugin_cmd_map, cmd);
