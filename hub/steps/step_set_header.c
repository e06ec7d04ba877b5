/* Step `set-header`: sets headers to literal values, e.g. `- set-header: {lt.type: dossier.submitted}`.
 * Its options are open-ended: every key is a header name, collected by the map's rest_key. */
#include <stddef.h>

#include "hub/core/registry.h"

struct sh_cfg {
  struct hub_str_map headers;
};

static const struct hub_cfg_entry entries[] = {
    {"HEADER", HUB_CFG_STR_MAP, offsetof(struct sh_cfg, headers), NULL, 1,
     "any header name: the header is set to this literal value (replacing one of that name)"},
    {NULL},
};
static const struct hub_cfg_map map = {"set-header", entries, .rest_key = "HEADER",
                                       .usage = "`- set-header: {lt.type: dossier.submitted}`"};

static hub_err_t sh_create(const void *cfg, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  (void)env, (void)errbuf, (void)errbuf_size;
  *state = (void *)&((const struct sh_cfg *)cfg)->headers; /* the options outlive the state */
  return HUB_OK;
}

static enum hub_step_result sh_process(void *p, struct hub_msg *msg, struct hub_step_outcome *out) {
  const struct hub_str_map *h = p;
  for (size_t i = 0; i < h->n; i++)
    if (hub_msg_header_set_str(msg, h->keys[i], h->values[i]) != HUB_OK)
      return hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory setting header %s", h->keys[i]);
  return HUB_STEP_OK;
}

static void sh_destroy(void *p) { (void)p; }

static const struct hub_step_ops ops = {
    .info = {.name = "set-header", .summary = "set headers to literal values", .config_map = &map,
             .config_size = sizeof(struct sh_cfg)},
    .create = sh_create,
    .process = sh_process,
    .destroy = sh_destroy,
};
HUB_STEP_PLUGIN(hub_plugin_step_set_header, ops);
