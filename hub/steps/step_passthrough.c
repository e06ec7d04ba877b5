/* Step `passthrough`: forwards the record unchanged (for routes that only move records). */
#include "hub/core/registry.h"

/* No options: `- passthrough:`, `- passthrough: ~` and `- passthrough: {}` all say so. */
static const struct hub_cfg_entry entries[] = {{NULL}};
static const struct hub_cfg_map map = {"passthrough", entries, .usage = "`- passthrough: {}`"};

static hub_err_t pt_create(const void *cfg, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  (void)cfg, (void)env, (void)errbuf, (void)errbuf_size;
  *state = NULL;
  return HUB_OK;
}

static enum hub_step_result pt_process(void *state, struct hub_msg *msg, struct hub_step_outcome *out) {
  (void)state, (void)msg, (void)out;
  return HUB_STEP_OK;
}

static void pt_destroy(void *state) { (void)state; }

static const struct hub_step_ops ops = {
    .info = {.name = "passthrough", .summary = "forward the record unchanged", .config_map = &map},
    .create = pt_create,
    .process = pt_process,
    .destroy = pt_destroy,
};
HUB_STEP_PLUGIN(hub_plugin_step_passthrough, ops);
