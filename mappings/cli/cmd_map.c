/* `lienthong map MAPPING FILE`: runs a mapping on one input file and prints the output. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/files.h"
#include "hub/core/registry.h"
#include "mappings/shape/json.h"
#include "mappings/shape/map.h"
#include "mappings/shape/map_fn.h"

static const struct hub_cmd cmd;

static int map_main(int argc, char **argv) {
  int rc = HUB_EXIT_USAGE, argi = 1, flags = LT_MAP_PRETTY;
  int64_t now_ms = 0;
  uint64_t seed = 0;
  for (; argi < argc && argv[argi][0] == '-' && argv[argi][1]; argi++) {
    if (!strcmp(argv[argi], "--compact")) {
      flags = 0;
    } else if (!strcmp(argv[argi], "--now") && argi + 1 < argc) {
      int64_t s;
      int ms;
      char why[256];
      if (lt_map_date_parse(argv[++argi], "iso8601", 0, &s, &ms, why, sizeof why))
        return hub_cmd_usage_error(&cmd, "--now takes an ISO 8601 time like 2024-01-15T08:30:00+07:00: %s", why);
      now_ms = s * 1000 + ms;
    } else if (!strcmp(argv[argi], "--uuid-seed") && argi + 1 < argc) {
      char *end;
      errno = 0;
      seed = strtoull(argv[++argi], &end, 10);
      if (errno || *end || !seed || argv[argi][0] == '-')
        return hub_cmd_usage_error(&cmd, "--uuid-seed takes a positive integer");
    } else {
      return hub_cmd_usage_error(&cmd, "unknown option '%s'", argv[argi]);
    }
  }
  if (seed && !now_ms) return hub_cmd_usage_error(&cmd, "--uuid-seed goes with --now (a fixed clock)");
  if (argc - argi != 2) return hub_cmd_usage_error(&cmd, "expected MAPPING and FILE");
  lt_map_set_fixed_clock_seed(now_ms, seed);
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
  const char *shown = strcmp(argv[argi + 1], "-") ? argv[argi + 1] : "<stdin>";
  hub_err_t err = lt_map_run_named(m, in, len, shown, flags, &out, &out_len, why, sizeof why);
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
    .usage = "Usage: lienthong map [--compact] [--now TIME [--uuid-seed N]] MAPPING FILE\n\n"
             "Runs the mapping (a YAML file, see docs/mapping.md) on FILE (JSON or XML, as the mapping's\n"
             "`input:` says; - for standard input) and prints the output (indented unless --compact).\n\n"
             "Options:\n"
             "  --compact        no indentation\n"
             "  --now TIME       fix the clock `now` reads (ISO 8601) and make `uuid` a counter, as a test\n"
             "                   file's `now:` does, so the output can be used as a golden file as it is\n"
             "  --uuid-seed N    with --now: `uuid` gives version-4 UUIDs from a generator seeded with N\n"
             "                   (a test file's `uuid_seed: N`)\n\n"
             "Exit codes: 0 mapped; 1 the input is unreadable or a rule failed (the message names the\n"
             "mapping file, the rule's line and the input path); 2 usage, an unreadable file, a bad mapping,\n"
             "or a contract's pattern that cannot be decided on the input (beyond the matching limit).",
    .main = map_main,
};
HUB_CMD_PLUGIN(lt_plugin_cmd_map, cmd);
