/* Sink `test-sink` (tests only): records every delivery it is offered in `log_file` (one JSON
 * line: lt.id, key, value, attempt, answer) before answering, so a test sees each record at
 * least once, with its idempotency key, whatever happens to the hub afterwards. Markers in the
 * value make it answer RETRY (for the first `retry_times` attempts) or REJECT; with `give_result` it
 * gives a result record for the result topic. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hub/core/registry.h"
#include "hub/engine/connector.h"

struct cfg {
  char *log_file;
  char *retry_if;
  int64_t retry_times;
  char *reject_if;
  int result;
  char *unhealthy_file;
};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"log_file", HUB_CFG_STR, F(log_file), NULL, 1, "file that gets one JSON line per delivery attempt"},
    {"retry_if", HUB_CFG_STR, F(retry_if), NULL, 0, "answer RETRY for values containing this text"},
    {"retry_times", HUB_CFG_INT, F(retry_times), "-1", 0, "answer RETRY for the first N attempts only (-1: always)",
     NULL, NULL, -1, 1000},
    {"reject_if", HUB_CFG_STR, F(reject_if), NULL, 0, "answer REJECT for values containing this text"},
    {"give_result", HUB_CFG_BOOL, F(result), "false", 0, "give a result record {\"delivered\": VALUE, \"id\": LT_ID}"},
    {"unhealthy_file", HUB_CFG_STR, F(unhealthy_file), NULL, 0, "report unhealthy while this file exists"},
    {NULL},
};
static const struct hub_cfg_map map = {"test-sink", entries};

struct state {
  const struct cfg *cfg;
  FILE *log;
};

static int contains(const struct hub_msg *m, const char *marker) {
  return marker && *marker && memmem(m->value, m->value_len, marker, strlen(marker));
}

static void log_line(struct state *s, const struct hub_msg *in, const char *answer) {
  const char *id = hub_msg_header_get_str(in, HUB_H_ID);
  json_t *j = json_pack("{s:s?, s:s%, s:s%, s:i, s:s}", "id", id, "key", in->key ? (const char *)in->key : "",
                        in->key ? in->key_len : 0, "value", (const char *)in->value, in->value_len, "attempt",
                        in->attempt, "answer", answer);
  char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
  if (line) {
    fprintf(s->log, "%s\n", line);
    fflush(s->log);
    fdatasync(fileno(s->log)); /* what the external system saw survives a SIGKILL of the hub */
  }
  free(line);
  json_decref(j);
}

static void tk_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  if (s->log) fclose(s->log);
  free(s);
}

static hub_err_t tk_create(const void *cfg, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  (void)env;
  struct state *s = calloc(1, sizeof *s);
  if (!s) return HUB_ERR_NOMEM;
  s->cfg = cfg;
  /* Opening a log file is all this sink does to "connect"; lint may create it too. */
  if (!(s->log = fopen(s->cfg->log_file, "a"))) {
    snprintf(errbuf, errbuf_size, "cannot open %s", s->cfg->log_file);
    free(s);
    return HUB_ERR_CONFIG;
  }
  *state = s;
  return HUB_OK;
}

static enum hub_step_result tk_deliver(void *p, const struct hub_msg *in, struct hub_msg **result,
                                       struct hub_step_outcome *out) {
  struct state *s = p;
  if (contains(in, s->cfg->reject_if)) {
    log_line(s, in, "reject");
    return hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_DOWNSTREAM, "test-sink refuses values containing '%s'",
                         s->cfg->reject_if);
  }
  if (contains(in, s->cfg->retry_if) && (s->cfg->retry_times < 0 || in->attempt <= s->cfg->retry_times)) {
    log_line(s, in, "retry");
    return hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_DOWNSTREAM, "test-sink is unavailable for '%s' (attempt %d)",
                         s->cfg->retry_if, in->attempt);
  }
  log_line(s, in, "ok");
  if (s->cfg->result) {
    const char *id = hub_msg_header_get_str(in, HUB_H_ID);
    json_t *j = json_pack("{s:s%, s:s?}", "delivered", (const char *)in->value, in->value_len, "id", id);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body || !(*result = hub_msg_new(NULL, 0, body, strlen(body)))) {
      free(body);
      return hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
    }
    free(body);
    hub_msg_header_set_str(*result, HUB_H_TYPE, "test.delivered");
  }
  return HUB_STEP_OK;
}

static int tk_health(void *p, char *why, size_t why_size) {
  struct state *s = p;
  if (s->cfg->unhealthy_file && access(s->cfg->unhealthy_file, F_OK) == 0) {
    snprintf(why, why_size, "%s exists", s->cfg->unhealthy_file);
    return 0;
  }
  return 1;
}

static const struct hub_sink_ops ops = {
    .info = {.name = "test-sink",
             .summary = "logs each delivery to a file; RETRY/REJECT on markers (for tests, not shipped)",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = tk_create,
    .deliver = tk_deliver,
    .health = tk_health,
    .destroy = tk_destroy,
};
HUB_SINK_PLUGIN(hub_plugin_sink_test, ops);
