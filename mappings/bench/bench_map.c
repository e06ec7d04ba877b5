/* `lienthong bench map`: validate + map of a 2 KB one-stop dossier to DVCQG DongBoHoSoMC by the
 * map step, whose mapping declares its input and output contracts (JSON Schema, checked on the
 * parsed trees), against jansson's plain parse + serialise of the same bytes, in the same run.
 * The last output line is one JSON object with every figure. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/registry.h"
#include "hub/core/step_chain.h"
#include "mappings/shape/json.h"

static const struct hub_cmd cmd;

/* Thread CPU time: the machine is shared, and other processes' load must not count. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The dossier of tests/mapping/dvcqg, grown with attachments to at least 2048 bytes. */
static char *make_input(const char *src, size_t *len, char *why, size_t why_size) {
  char path[4096];
  json_t *d = NULL;
  snprintf(path, sizeof path, "%s/tests/mapping/dvcqg/dossier-submitted.json", src);
  if (lt_json_load_file(path, &d, why, why_size)) return NULL;
  json_t *atts = json_object_get(d, "attachments");
  char *s = NULL;
  for (int i = 3; json_is_array(atts); i++) {
    free(s);
    s = json_dumps(d, JSON_COMPACT);
    if (!s || strlen(s) >= 2048) break;
    char id[16], name[64], url[128];
    snprintf(id, sizeof id, "f%d", i);
    snprintf(name, sizeof name, "giay-to-kem-theo-%d.pdf", i);
    snprintf(url, sizeof url, "https://dvc.quangninh.gov.vn/files/f%d", i);
    json_array_append_new(atts, json_pack("{s:s,s:s,s:s,s:s,s:b}", "id", id, "name", name, "componentCode", "TP3",
                                          "url", url, "digitised", 1));
  }
  json_decref(d);
  if (s) *len = strlen(s);
  else snprintf(why, why_size, "cannot build the input");
  return s;
}

struct pipeline {
  struct hub_step *map;
};

/* One record through the map step, as a route runs it. Returns the output length or -1. */
static long pipeline_run(struct pipeline *p, const char *in, size_t len, char *why, size_t why_size) {
  struct hub_msg *m = hub_msg_new(NULL, 0, in, len);
  struct hub_step_outcome o = {0};
  long rc = -1;
  if (!m) return -1;
  if (hub_step_process(p->map, m, &o) != HUB_STEP_OK) {
    snprintf(why, why_size, "%s", o.reason);
    hub_step_outcome_clear(&o);
  } else {
    rc = (long)m->value_len;
  }
  hub_msg_destroy(m);
  return rc;
}

static int bench_main(int argc, char **argv) {
  long iterations = 2000;
  int rounds = 15;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--short")) {
      iterations = 200;
      rounds = 2;
    } else if (!strcmp(argv[i], "--iterations") && i + 1 < argc) {
      char *end;
      iterations = strtol(argv[++i], &end, 10);
      if (*end || iterations < 1 || iterations > 100000000) return hub_cmd_usage_error(&cmd, "bad --iterations");
    } else {
      return hub_cmd_usage_error(&cmd, "unknown argument '%s'", argv[i]);
    }
  }
  const char *src = getenv("LT_SOURCE_DIR");
  if (!src || !*src) src = LT_SOURCE_DIR;
  char why[2048], mapping[4096], base[4096];
  size_t len = 0;
  char *in = make_input(src, &len, why, sizeof why);
  if (!in) {
    fprintf(stderr, "lienthong bench map: %s\n", why);
    return HUB_EXIT_USAGE;
  }
  snprintf(base, sizeof base, "%s", src);
  snprintf(mapping, sizeof mapping, "mappings/dvcqg/dong-bo-ho-so.yaml");
  const struct hub_step_ops *mops = hub_registry_get_step("map");
  struct pipeline p = {NULL};
  struct hub_node marg = {.kind = HUB_NODE_SCALAR, .file = "bench", .line = 1, .col = 1, .scalar = mapping};
  struct hub_step_env env = {.base_dir = base, .route = "bench"};
  int rc = HUB_EXIT_USAGE;
  if (!mops) {
    fprintf(stderr, "lienthong bench map: the map step must be registered\n");
    goto out;
  }
  if (hub_step_create(mops, &marg, &env, &p.map, why, sizeof why)) {
    fprintf(stderr, "lienthong bench map: %s\n", why);
    goto out;
  }
  long out_len = pipeline_run(&p, in, len, why, sizeof why);
  if (out_len < 0) {
    fprintf(stderr, "lienthong bench map: the dossier does not map: %s\n", why);
    rc = HUB_EXIT_FAIL;
    goto out;
  }
  double best_base = 1e30, best_pipe = 1e30;
  size_t sink = 0;
  for (int r = 0; r < rounds; r++) {
    double t0 = now_s();
    for (long i = 0; i < iterations; i++) {
      json_error_t err;
      json_t *j = json_loadb(in, len, 0, &err);
      char *s = json_dumps(j, JSON_COMPACT);
      sink += s ? strlen(s) : 0;
      free(s);
      json_decref(j);
    }
    double t1 = now_s();
    for (long i = 0; i < iterations; i++) {
      long n = pipeline_run(&p, in, len, why, sizeof why);
      if (n < 0) {
        fprintf(stderr, "lienthong bench map: run %ld failed: %s\n", i, why);
        rc = HUB_EXIT_FAIL;
        goto out;
      }
      sink += (size_t)n;
    }
    double t2 = now_s();
    if (t1 - t0 < best_base) best_base = t1 - t0;
    if (t2 - t1 < best_pipe) best_pipe = t2 - t1;
  }
  double base_ops = (double)iterations / best_base, pipe_ops = (double)iterations / best_pipe;
  double ratio = pipe_ops / base_ops;
  printf("input: one-stop dossier, %zu bytes -> DongBoHoSoMC, %ld bytes\n", len, out_len);
  printf("jansson parse+serialise: %.0f msg/s (%.2f us/msg)\n", base_ops, 1e6 / base_ops);
  printf("validate+map (map step, input and output contracts): %.0f msg/s (%.2f us/msg)\n", pipe_ops,
         1e6 / pipe_ops);
  printf("ratio: %.3f (target >= 0.45), best of %d alternating rounds of %ld, thread CPU time\n", ratio, rounds,
         iterations);
  printf("{\"bench\":\"map\",\"input_bytes\":%zu,\"output_bytes\":%ld,\"iterations\":%ld,\"rounds\":%d,"
         "\"baseline_msgs_per_s\":%.1f,\"baseline_us_per_msg\":%.3f,\"pipeline_msgs_per_s\":%.1f,"
         "\"pipeline_us_per_msg\":%.3f,\"ratio\":%.4f,\"target_ratio\":0.45,\"meets_target\":%s,"
         "\"clock\":\"thread-cpu\",\"checksum\":%zu}\n",
         len, out_len, iterations, rounds, base_ops, 1e6 / base_ops, pipe_ops, 1e6 / pipe_ops, ratio,
         ratio >= 0.45 ? "true" : "false", sink);
  rc = HUB_EXIT_OK;
out:
  hub_step_destroy(p.map);
  free(in);
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "bench.map",
    .summary = "benchmark validate+map against jansson parse+serialise",
    .usage = "Usage: lienthong bench map [--short] [--iterations N]\n\n"
             "Runs the map step with mappings/dvcqg/dong-bo-ho-so.yaml, which validates its input\n"
             "(schemas/onestop/dossier-event.schema.json) and its output (DongBoHoSoMC schema), on a\n"
             "2 KB one-stop dossier, and jansson's plain\n"
             "json_loadb + json_dumps of the same bytes, in alternating rounds timed in thread CPU\n"
             "time (best of 15 rounds of 2000, or --iterations N per round; --short: 2 rounds of 200).\n"
             "Files are read from $LT_SOURCE_DIR (default: the source tree).\n"
             "The last line is one JSON object: input_bytes, output_bytes, iterations, rounds,\n"
             "baseline_msgs_per_s, baseline_us_per_msg, pipeline_msgs_per_s, pipeline_us_per_msg,\n"
             "ratio (pipeline / baseline), target_ratio (0.45), meets_target, checksum.",
    .main = bench_main,
};
HUB_CMD_PLUGIN(lt_plugin_cmd_bench_map, cmd);
