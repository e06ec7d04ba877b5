/* The fuzz targets call libraries directly and look up no plugin: an empty plugin table. */
#include "hub/core/registry.h"

const struct hub_plugin *const hub_plugins[] = {NULL};
