/* The plugin registry: steps, CLI commands, transports, sources and sinks are found by name in
 * a table the build generates from every HUB_<KIND>_PLUGIN(symbol, ...) declaration
 * (cmake/lt_library.cmake). The engine never #includes a plugin: it looks it up here.
 *
 * Every plugin but a command carries a struct hub_plugin_info as the first member of its ops
 * struct: name, summary and config map, from which the config loader, `lint`, `doc config`,
 * the config schema and each connector README's options table are made. */
#ifndef HUB_REGISTRY_H
#define HUB_REGISTRY_H

#include <stddef.h>

#include "hub/core/cfgmap.h"
#include "hub/core/cmd.h"
#include "hub/core/step.h"

enum hub_plugin_kind { HUB_PLUGIN_STEP, HUB_PLUGIN_CMD, HUB_PLUGIN_TRANSPORT, HUB_PLUGIN_SOURCE, HUB_PLUGIN_SINK };

struct hub_plugin {
  enum hub_plugin_kind kind;
  const struct hub_plugin_info *info; /* NULL for a command */
  const void *ops;                    /* struct hub_step_ops, hub_cmd, hub_transport_ops, ... */
};

/* NULL-terminated; generated at build time (build/generated/lienthong_plugins.c). */
extern const struct hub_plugin *const hub_plugins[];

/* The ops of the plugin of `kind` named `name`, or NULL. */
const void *hub_registry_get(enum hub_plugin_kind kind, const char *name);
const struct hub_plugin_info *hub_registry_get_info(enum hub_plugin_kind kind, const char *name);
const struct hub_step_ops *hub_registry_get_step(const char *name);
const struct hub_cmd *hub_registry_get_cmd(const char *name);
/* "a, b, c": the names of every plugin of `kind`, for "expected one of" messages. */
void hub_registry_names(enum hub_plugin_kind kind, char *buf, size_t size);
const char *hub_plugin_kind_name(enum hub_plugin_kind kind);

#define HUB_STEP_PLUGIN(sym, o) const struct hub_plugin sym = {HUB_PLUGIN_STEP, &(o).info, &(o)}
#define HUB_CMD_PLUGIN(sym, o) const struct hub_plugin sym = {HUB_PLUGIN_CMD, NULL, &(o)}
#define HUB_TRANSPORT_PLUGIN(sym, o) const struct hub_plugin sym = {HUB_PLUGIN_TRANSPORT, &(o).info, &(o)}
#define HUB_SOURCE_PLUGIN(sym, o) const struct hub_plugin sym = {HUB_PLUGIN_SOURCE, &(o).info, &(o)}
#define HUB_SINK_PLUGIN(sym, o) const struct hub_plugin sym = {HUB_PLUGIN_SINK, &(o).info, &(o)}

#endif
