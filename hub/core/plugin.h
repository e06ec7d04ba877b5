/* What every plugin that a configuration creates (step, source, sink) is created with: the
 * environment of the configuration it belongs to, and its options as the struct its config map
 * filled. The caller fills that struct with hub_plugin_options_new before the plugin's create()
 * runs, so an unknown key, a wrong type, a missing key or an out-of-bounds value anywhere in a
 * plugin's options is refused with file:line:col before the plugin sees it. */
#ifndef HUB_PLUGIN_H
#define HUB_PLUGIN_H

#include "hub/core/cfgmap.h"
#include "hub/core/err.h"
#include "hub/core/node.h"

struct hub_plugin_env {
  const char *base_dir;        /* relative paths in options are relative to this (the config's folder) */
  const struct hub_node *keys; /* the config's `keys:` section, or NULL */
  const char *owner;           /* the route or connector the plugin belongs to, for messages */
  const struct hub_node *node; /* the options as written, or NULL: where the plugin's own errors point
                                  (a schema file that does not exist, a key that does not load) */
};

/* The options of plugin `info`, filled by its config map from `options`: NULL, or a plain empty
 * scalar (`- passthrough:`, `~`, `null`), means none were written; a scalar fills the map's
 * scalar_key option. `at` is where "missing required key" points when none were written. *cfg is
 * owned (release with hub_plugin_options_destroy), also after an error. */
hub_err_t hub_plugin_options_new(const struct hub_plugin_info *info, const struct hub_node *options,
                                 const struct hub_node *at, void **cfg, char *errbuf, size_t errbuf_size);
void hub_plugin_options_destroy(const struct hub_plugin_info *info, void *cfg);

/* Where a plugin's error about option `key` points: its value when written, else the options as
 * written, else NULL. */
const struct hub_node *hub_plugin_env_at(const struct hub_plugin_env *env, const char *key);
/* A path written in the options, resolved against the config's folder; malloc'd, NULL when out
 * of memory. */
char *hub_plugin_env_path_new(const struct hub_plugin_env *env, const char *path);

#endif
