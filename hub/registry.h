/* The plugin registry: steps and CLI commands (and connectors, when they land) are found by name in a table the
 * build generates from every lt_plugin(SYMBOL) in the CMakeLists files. hub/ never includes a
 * header from connectors/ or mappings/; they register here instead. */
#ifndef HUB_REGISTRY_H
#define HUB_REGISTRY_H

#include "hub/cmd.h"
#include "hub/step.h"

enum hub_plugin_kind { HUB_PLUGIN_STEP, HUB_PLUGIN_CMD };

struct hub_plugin {
  enum hub_plugin_kind kind;
  union {
    const struct hub_step_ops *step;
    const struct hub_cmd *cmd;
  } u;
};

/* NULL-terminated; generated at build time (build/generated/plugins.c). */
extern const struct hub_plugin *const hub_plugins[];

const struct hub_step_ops *hub_registry_get_step(const char *name);
const struct hub_cmd *hub_registry_get_cmd(const char *name);

/* Declares a plugin symbol; pair with lt_plugin(SYMBOL) in the folder's CMakeLists.txt. */
#define HUB_STEP_PLUGIN(sym, ops) const struct hub_plugin sym = {HUB_PLUGIN_STEP, {.step = &(ops)}}
#define HUB_CMD_PLUGIN(sym, cmd) const struct hub_plugin sym = {HUB_PLUGIN_CMD, {.cmd = &(cmd)}}

#endif
