/* `lienthong tthc sync CONFIG [NAME...]`: runs the TTHC catalogue job of the configuration's
 * `tthc` sources once, now, and says what it committed. It runs beside a running hub: its
 * sources use the instance name INSTANCE.cli (their own transactional ids) and read the
 * snapshot topic first, so they diff against what the hub committed last. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/tthc/tthc.h"
#include "hub/core/config.h"
#include "hub/core/log.h"
#include "hub/core/registry.h"
#include "hub/core/stop.h"
#include "hub/engine/source.h"
#include "hub/transport/transport.h"

static const struct hub_cmd cmd;

static int picked(const char *name, char **names, int n) {
  if (!n) return 1;
  for (int i = 0; i < n; i++)
    if (!strcmp(names[i], name)) return 1;
  return 0;
}

static int tthc_main(int argc, char **argv) {
  if (argc < 3 || strcmp(argv[1], "sync") != 0) return hub_cmd_usage_error(&cmd, "expected: tthc sync CONFIG [NAME...]");
  int64_t timeout_s = 1800;
  char *names[64];
  int n_names = 0;
  const char *path = NULL;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
      char *end;
      timeout_s = strtoll(argv[++i], &end, 10);
      if (*end || timeout_s < 1) return hub_cmd_usage_error(&cmd, "--timeout takes seconds (>= 1)");
    } else if (argv[i][0] == '-') {
      return hub_cmd_usage_error(&cmd, "unknown option '%s'", argv[i]);
    } else if (!path) {
      path = argv[i];
    } else if (n_names < 64) {
      names[n_names++] = argv[i];
    }
  }
  if (!path) return hub_cmd_usage_error(&cmd, "missing CONFIG");
  char errbuf[2048];
  struct hub_config *cfg = NULL;
  if (hub_config_load(path, &cfg, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "%s\n", errbuf);
    return HUB_EXIT_USAGE;
  }
  if (!getenv("LT_LOG_LEVEL")) hub_log_set_level((enum hub_log_level)cfg->hub.log_level);
  int rc = HUB_EXIT_OK;
  struct hub_source_runner *runners[64] = {0};
  size_t n = 0;
  struct tthc_once once = {.want = 0};
  pthread_mutex_init(&once.mu, NULL);
  pthread_cond_init(&once.cv, NULL);
  /* Our own transactional ids: a running hub's sources are not fenced. */
  char *instance = cfg->hub.instance, cli_instance[300];
  snprintf(cli_instance, sizeof cli_instance, "%s.cli", instance);
  cfg->hub.instance = cli_instance;
  const struct hub_transport_ops *transport = hub_transport_get(cfg->hub.transport);
  for (size_t i = 0; i < cfg->n_sources && n < 64; i++) {
    const struct hub_source_cfg *sc = &cfg->sources[i];
    if (strcmp(sc->type, "tthc") != 0 || !picked(sc->name, names, n_names)) continue;
    if (hub_source_runner_create(cfg, sc, transport, &runners[n], errbuf, sizeof errbuf) != HUB_OK) {
      fprintf(stderr, "%s\n", errbuf);
      rc = HUB_EXIT_USAGE;
      goto out;
    }
    n++;
  }
  for (int i = 0; i < n_names; i++) {
    int found = 0;
    for (size_t j = 0; j < cfg->n_sources; j++)
      found |= !strcmp(cfg->sources[j].name, names[i]) && !strcmp(cfg->sources[j].type, "tthc");
    if (!found) {
      fprintf(stderr, "lienthong tthc: %s: no tthc connector named '%s'\n", path, names[i]);
      rc = HUB_EXIT_USAGE;
      goto out;
    }
  }
  if (!n) {
    fprintf(stderr, "lienthong tthc: %s has no tthc connector\n", path);
    rc = HUB_EXIT_USAGE;
    goto out;
  }
  once.want = n;
  tthc_once_hook = &once;
  for (size_t i = 0; i < n; i++) hub_source_runner_start(runners[i]);
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeout_s;
  pthread_mutex_lock(&once.mu);
  while (once.done < once.want && !hub_stop_requested())
    if (pthread_cond_timedwait(&once.cv, &once.mu, &deadline) != 0) break;
  size_t done = once.done;
  int failed = once.failed;
  struct tthc_report last = once.last;
  pthread_mutex_unlock(&once.mu);
  hub_stop_request(); /* the runners give up whatever still waits for the cluster */
  for (size_t i = 0; i < n; i++) hub_source_runner_stop(runners[i]);
  if (done < n) {
    fprintf(stderr, "lienthong tthc: %zu of %zu run(s) did not finish within %lld s (nothing of them is published)\n",
            n - done, n, (long long)timeout_s);
    rc = HUB_EXIT_FAIL;
  } else if (failed) {
    fprintf(stderr, "lienthong tthc: the run failed, nothing published: %s\n", last.why);
    rc = HUB_EXIT_FAIL;
  } else if (n == 1) {
    printf("{\"procedures\":%zu,\"added\":%zu,\"changed\":%zu,\"removed\":%zu}\n", last.procedures, last.added,
           last.changed, last.removed);
  } else {
    printf("%zu catalogue run(s) committed (see the log for each)\n", n);
  }
out:
  tthc_once_hook = NULL;
  for (size_t i = 0; i < n; i++) hub_source_runner_destroy(runners[i]);
  cfg->hub.instance = instance;
  hub_config_destroy(cfg);
  pthread_cond_destroy(&once.cv);
  pthread_mutex_destroy(&once.mu);
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "tthc",
    .summary = "run the TTHC catalogue job now (LayDanhSachTTHC + LayThuTuc, snapshot and change records)",
    .usage = "Usage: lienthong tthc sync CONFIG [NAME...] [--timeout SECONDS]\n\n"
             "Runs the catalogue job of the configuration's `tthc` connectors (all, or those NAMEd) once, now:\n"
             "reads the snapshot topic, calls LayDanhSachTTHC and LayThuTuc for each procedure, and commits the\n"
             "changed snapshot records, one change record per added, changed or removed procedure, and the\n"
             "connector's cursor in one transaction. A run that fails half-way publishes nothing.\n"
             "It may run beside `lienthong run` (own transactional ids: INSTANCE.cli); two runs at the very same\n"
             "time would both publish the same changes, so leave the schedule (poll_interval) long.\n"
             "Prints {\"procedures\",\"added\",\"changed\",\"removed\"} for one connector.\n\n"
             "Exit codes: 0 committed, 1 the run failed (nothing published) or timed out (default 1800 s),\n"
             "2 usage or configuration error.",
    .main = tthc_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_tthc, cmd);
