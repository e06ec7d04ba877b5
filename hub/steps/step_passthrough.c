/* Step `passthrough`: forwards the record unchanged (for routes that only move records). */
#include <string.h>

#include "hub/core/registry.h"

static hub_err_t pt_create(const struct hub_node *args, const struct hub_step_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  (void)env;
  /* `- passthrough:`, `- passthrough: ~` and `- passthrough: {}` all mean "no arguments". */
  int none = !args || (args->kind == HUB_NODE_SCALAR && !args->quoted &&
                       (!*args->scalar || !strcmp(args->scalar, "~") || !strcmp(args->scalar, "null"))) ||
             (args->kind == HUB_NODE_MAP && args->n == 0);
  if (!none) return hub_node_error(args, errbuf, errbuf_size, "passthrough takes no arguments (write `- passthrough: {}`)");
  *state = NULL;
  return HUB_OK;
}

static enum hub_step_result pt_process(void *state, struct hub_msg *msg, struct hub_step_outcome *out) {
  (void)state, (void)msg, (void)out;
  return HUB_STEP_OK;
}

static void pt_destroy(void *state) { (void)state; }

static const struct hub_step_ops ops = {
    .info = {.name = "passthrough", .summary = "forward the record unchanged"},
    .create = pt_create,
    .process = pt_process,
    .destroy = pt_destroy,
};
HUB_STEP_PLUGIN(hub_plugin_step_passthrough, ops);
