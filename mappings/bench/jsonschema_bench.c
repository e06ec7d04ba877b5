/* `lienthong bench validate SCHEMA FILE`: the cost of JSON Schema validation of one message,
 * beside jansson's plain parse + serialise of the same bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/files.h"
#include "hub/core/registry.h"
#include "mappings/shape/json.h"
#include "mappings/shape/jsonschema.h"

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const struct hub_cmd cmd;

/* Validation alone, and jansson's parse + compact dump of the same bytes as a yardstick, in
 * alternating rounds; the best round of each counts (thread CPU time). */
static int bench_main(int argc, char **argv) {
  if (argc < 3 || argc > 4) return hub_cmd_usage_error(&cmd, "expected SCHEMA FILE [ITERATIONS]");
  char *end = NULL;
  long iterations = argc == 4 ? strtol(argv[3], &end, 10) : 5000;
  if ((end && *end) || iterations < 1 || iterations > 10000000)
    return hub_cmd_usage_error(&cmd, "ITERATIONS must be a number from 1 to 10000000");
  char err[4096], *buf = NULL;
  size_t len = 0;
  struct lt_schema *schema = NULL;
  json_t *doc = NULL;
  int rc = HUB_EXIT_USAGE;
  if (lt_schema_load_file(argv[1], &schema, err, sizeof err) != HUB_OK ||
      hub_file_read(argv[2], LT_JSON_MAX_BYTES, &buf, &len, err, sizeof err) != HUB_OK ||
      lt_json_parse(buf, len, argv[2], &doc, err, sizeof err) != HUB_OK) {
    fprintf(stderr, "lienthong bench validate: %s\n", err);
    goto out;
  }
  if (lt_schema_validate(schema, doc, NULL) != HUB_OK) {
    fprintf(stderr, "lienthong bench validate: %s is not valid against %s\n", argv[2], argv[1]);
    rc = HUB_EXIT_FAIL;
    goto out;
  }
  double best_validate = 1e30, best_baseline = 1e30;
  size_t sink = 0;
  for (int round = 0; round < 7; round++) {
    double t0 = cpu_seconds();
    for (long i = 0; i < iterations; i++) sink += lt_schema_validate(schema, doc, NULL) == HUB_OK;
    double t1 = cpu_seconds();
    for (long i = 0; i < iterations; i++) {
      json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
      char *out = json_dumps(j, JSON_COMPACT);
      sink += out ? strlen(out) : 0;
      free(out);
      json_decref(j);
    }
    double t2 = cpu_seconds();
    if (t1 - t0 < best_validate) best_validate = t1 - t0;
    if (t2 - t1 < best_baseline) best_baseline = t2 - t1;
  }
  double v_us = best_validate / (double)iterations * 1e6, b_us = best_baseline / (double)iterations * 1e6;
  printf("validate: %.2f us per message; jansson parse+dump of the same %zu bytes: %.2f us\n", v_us, len, b_us);
  printf("{\"bench\":\"validate\",\"input_bytes\":%zu,\"iterations\":%ld,\"rounds\":7,\"validate_us_per_msg\":%.3f,"
         "\"baseline_parse_dump_us_per_msg\":%.3f,\"validate_share_of_baseline\":%.4f,\"clock\":\"thread-cpu\","
         "\"checksum\":%zu}\n",
         len, iterations, v_us, b_us, b_us > 0 ? v_us / b_us : 0.0, sink);
  rc = HUB_EXIT_OK;
out:
  json_decref(doc);
  free(buf);
  lt_schema_destroy(schema);
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "bench.validate",
    .summary = "benchmark JSON Schema validation of one file",
    .usage = "Usage: lienthong bench validate SCHEMA FILE [ITERATIONS]\n"
             "\n"
             "Times lt_schema_validate of FILE (parsed once) against SCHEMA, beside jansson's plain\n"
             "parse + compact dump of the same bytes, in 7 alternating rounds of ITERATIONS (default\n"
             "5000); the best round of each counts, in thread CPU time. The last line is one JSON object\n"
             "with every figure.",
    .main = bench_main,
};
HUB_CMD_PLUGIN(lt_plugin_cmd_bench_validate, cmd);
