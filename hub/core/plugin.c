/* See plugin.h. */
#include "hub/core/plugin.h"

#include <stdlib.h>
#include <string.h>

#include "hub/core/files.h"

static const struct hub_cfg_entry no_entries[] = {{NULL}};

/* `- NAME:` arrives as an empty scalar; `~` and `null` say the same. */
static int written_as_none(const struct hub_node *n) {
  return !n || (n->kind == HUB_NODE_SCALAR &&
                (!*n->scalar || (!n->quoted && (!strcmp(n->scalar, "~") || !strcmp(n->scalar, "null")))));
}

hub_err_t hub_plugin_options_new(const struct hub_plugin_info *info, const struct hub_node *options,
                                 const struct hub_node *at, void **cfg, char *errbuf, size_t errbuf_size) {
  /* a plugin without a map takes no options: an empty map says so in the usual words */
  struct hub_cfg_map none = {info->name, no_entries, NULL, NULL, NULL, NULL, NULL, NULL};
  const struct hub_cfg_map *map = info->config_map ? info->config_map : &none;
  if (!(*cfg = calloc(1, info->config_size ? info->config_size : 1))) return HUB_ERR_NOMEM;
  return hub_cfg_map_apply(map, written_as_none(options) ? NULL : options, options ? options : at, *cfg, errbuf,
                           errbuf_size);
}

void hub_plugin_options_destroy(const struct hub_plugin_info *info, void *cfg) {
  if (!cfg) return;
  if (info->config_map) hub_cfg_map_release(info->config_map, cfg);
  free(cfg);
}

const struct hub_node *hub_plugin_env_at(const struct hub_plugin_env *env, const char *key) {
  return env ? hub_cfg_value_at(env->node, NULL, key) : NULL;
}

char *hub_plugin_env_path_new(const struct hub_plugin_env *env, const char *path) {
  return hub_path_resolve_new(env ? env->base_dir : NULL, path);
}
