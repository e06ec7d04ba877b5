/* Lookup by name in the generated plugin table. */
#include "hub/core/registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *plugin_name(const struct hub_plugin *p) {
  return p->info ? p->info->name : ((const struct hub_cmd *)p->ops)->name;
}

const void *hub_registry_get(enum hub_plugin_kind kind, const char *name) {
  for (size_t i = 0; hub_plugins[i]; i++)
    if (hub_plugins[i]->kind == kind && strcmp(plugin_name(hub_plugins[i]), name) == 0) return hub_plugins[i]->ops;
  return NULL;
}

const struct hub_plugin_info *hub_registry_get_info(enum hub_plugin_kind kind, const char *name) {
  for (size_t i = 0; hub_plugins[i]; i++)
    if (hub_plugins[i]->kind == kind && strcmp(plugin_name(hub_plugins[i]), name) == 0) return hub_plugins[i]->info;
  return NULL;
}

const struct hub_step_ops *hub_registry_get_step(const char *name) { return hub_registry_get(HUB_PLUGIN_STEP, name); }

const struct hub_cmd *hub_registry_get_cmd(const char *name) { return hub_registry_get(HUB_PLUGIN_CMD, name); }

void hub_registry_names(enum hub_plugin_kind kind, char *buf, size_t size) {
  size_t used = 0;
  if (size) buf[0] = '\0';
  for (size_t i = 0; hub_plugins[i]; i++) {
    if (hub_plugins[i]->kind != kind) continue;
    int n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", plugin_name(hub_plugins[i]));
    if (n < 0 || (size_t)n >= size - used) break;
    used += (size_t)n;
  }
}

const char *hub_plugin_kind_name(enum hub_plugin_kind kind) {
  switch (kind) {
  case HUB_PLUGIN_STEP: return "step";
  case HUB_PLUGIN_CMD: return "command";
  case HUB_PLUGIN_TRANSPORT: return "transport";
  case HUB_PLUGIN_SOURCE: return "source";
  case HUB_PLUGIN_SINK: return "sink";
  }
  return "plugin";
}

int hub_cmd_usage_error(const struct hub_cmd *cmd, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "lienthong %s: %s\nTry 'lienthong %s --help'.\n", cmd->name, msg, cmd->name);
  return HUB_EXIT_USAGE;
}
