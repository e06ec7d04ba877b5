/* Step `set-header`: sets headers to literal values, e.g. `- set-header: {lt.type: dossier.submitted}`. */
#include <stdlib.h>
#include <string.h>

#include "hub/core/registry.h"

struct state {
  size_t n;
  char **names, **values;
};

static void sh_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  for (size_t i = 0; i < s->n; i++) {
    free(s->names[i]);
    free(s->values[i]);
  }
  free(s->names);
  free(s->values);
  free(s);
}

static hub_err_t sh_create(const struct hub_node *args, const struct hub_step_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  (void)env;
  if (!args || args->kind != HUB_NODE_MAP || args->n == 0)
    return hub_node_error(args, errbuf, errbuf_size,
                          "set-header takes a mapping of header names to values, e.g. {lt.type: dossier.submitted}");
  struct state *s = calloc(1, sizeof *s);
  if (!s || !(s->names = calloc(args->n, sizeof(char *))) || !(s->values = calloc(args->n, sizeof(char *)))) {
    sh_destroy(s);
    return HUB_ERR_NOMEM;
  }
  for (size_t i = 0; i < args->n; i++) {
    if (args->items[i]->kind != HUB_NODE_SCALAR) {
      sh_destroy(s);
      return hub_node_error(args->items[i], errbuf, errbuf_size, "header '%s' must have a scalar value",
                            args->keys[i]->scalar);
    }
    if (!*args->keys[i]->scalar) {
      sh_destroy(s);
      return hub_node_error(args->keys[i], errbuf, errbuf_size, "header names must not be empty");
    }
    s->names[i] = strdup(args->keys[i]->scalar);
    s->values[i] = strdup(args->items[i]->scalar);
    s->n = i + 1;
    if (!s->names[i] || !s->values[i]) {
      sh_destroy(s);
      return HUB_ERR_NOMEM;
    }
  }
  *state = s;
  return HUB_OK;
}

static enum hub_step_result sh_process(void *p, struct hub_msg *msg, struct hub_step_outcome *out) {
  struct state *s = p;
  for (size_t i = 0; i < s->n; i++)
    if (hub_msg_header_set_str(msg, s->names[i], s->values[i]) != HUB_OK)
      return hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory setting header %s", s->names[i]);
  return HUB_STEP_OK;
}

static const struct hub_step_ops ops = {
    .info = {.name = "set-header", .summary = "set headers to literal values"},
    .create = sh_create,
    .process = sh_process,
    .destroy = sh_destroy,
};
HUB_STEP_PLUGIN(hub_plugin_step_set_header, ops);
