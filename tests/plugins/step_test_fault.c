/* Step `test-fault`: rejects, or asks for retries, when the record's value contains a
 * configured marker, so every error path of the engine (retry, backoff, DLQ) can be driven
 * from test data. Not for production routes. */
#include <string.h>
#include <time.h>

#include "hub/core/cfgmap.h"
#include "hub/core/registry.h"

struct state {
  char *reject_if;
  char *retry_if;
  int64_t retry_times;
  int64_t delay_us;
};

#define F(f) offsetof(struct state, f)
static const struct hub_cfg_entry entries[] = {
    {"reject_if", HUB_CFG_STR, F(reject_if), NULL, 0, "reject records whose value contains this text"},
    {"retry_if", HUB_CFG_STR, F(retry_if), NULL, 0, "answer RETRY for records whose value contains this text"},
    {"retry_times", HUB_CFG_INT, F(retry_times), "-1", 0,
     "answer RETRY for the first N attempts only, then OK (-1: always RETRY)", NULL, NULL, -1, 1000},
    {"delay_us", HUB_CFG_INT, F(delay_us), "0", 0, "sleep this many microseconds on every record (slows a route "
     "down so tests can act mid-run)", NULL, NULL, 0, 10000000},
    {NULL},
};

/* A test-fault that does nothing is a mistake in the test that wrote it. */
static hub_err_t tf_check(const void *cfg, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                          size_t errbuf_size) {
  const struct state *s = cfg;
  if ((s->reject_if && *s->reject_if) || (s->retry_if && *s->retry_if) || s->delay_us) return HUB_OK;
  return hub_node_error(hub_cfg_value_at(node, at, NULL), errbuf, errbuf_size,
                        "test-fault needs reject_if, retry_if or delay_us");
}

static const struct hub_cfg_constraint constraints[] = {
    {"at least one of `reject_if`, `retry_if` (not empty) or `delay_us` (not 0)", NULL, "{retry_times: 3}",
     "{delay_us: 1}"},
    {NULL},
};
static const struct hub_cfg_map map = {"test-fault", entries, .usage = "`- test-fault: {reject_if: MARKER}`",
                                       .check = tf_check, .constraints = constraints};

/* The options are the state: they live until destroy. */
static hub_err_t tf_create(const void *cfg, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  (void)env, (void)errbuf, (void)errbuf_size;
  *state = (void *)cfg;
  return HUB_OK;
}

static void tf_destroy(void *p) { (void)p; }

static enum hub_step_result tf_process(void *p, struct hub_msg *msg, struct hub_step_outcome *out) {
  struct state *s = p;
  const char *v = (const char *)msg->value;
  if (s->delay_us) {
    struct timespec ts = {(time_t)(s->delay_us / 1000000), (long)(s->delay_us % 1000000) * 1000L};
    nanosleep(&ts, NULL);
  }
  if (s->reject_if && *s->reject_if && memmem(v, msg->value_len, s->reject_if, strlen(s->reject_if)))
    return hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_STEP_REJECT, "value contains the marker '%s' at byte %zu",
                         s->reject_if,
                         (size_t)((const char *)memmem(v, msg->value_len, s->reject_if, strlen(s->reject_if)) - v));
  if (s->retry_if && *s->retry_if && memmem(v, msg->value_len, s->retry_if, strlen(s->retry_if)) &&
      (s->retry_times < 0 || msg->attempt <= s->retry_times))
    return hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_DOWNSTREAM, "value contains the retry marker '%s' (attempt %d)",
                         s->retry_if, msg->attempt);
  return HUB_STEP_OK;
}

static const struct hub_step_ops ops = {
    .info = {.name = "test-fault", .summary = "reject or ask for retries on records containing a marker (for tests)",
             .config_map = &map, .config_size = sizeof(struct state)},
    .create = tf_create,
    .process = tf_process,
    .destroy = tf_destroy,
};
HUB_STEP_PLUGIN(hub_plugin_step_test_fault, ops);
