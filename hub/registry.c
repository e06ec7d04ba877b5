/* Lookup by name in the generated plugin table. */
#include "hub/registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const struct hub_step_ops *hub_registry_get_step(const char *name) {
  for (size_t i = 0; hub_plugins[i]; i++)
    if (hub_plugins[i]->kind == HUB_PLUGIN_STEP && strcmp(hub_plugins[i]->u.step->name, name) == 0)
      return hub_plugins[i]->u.step;
  return NULL;
}

const struct hub_cmd *hub_registry_get_cmd(const char *name) {
  for (size_t i = 0; hub_plugins[i]; i++)
    if (hub_plugins[i]->kind == HUB_PLUGIN_CMD && strcmp(hub_plugins[i]->u.cmd->name, name) == 0)
      return hub_plugins[i]->u.cmd;
  return NULL;
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
