/* The plugins fuzz_http_listen runs: the memory transport and the webhook sources on the shared
 * HTTP server (http-listen, onestop, paygov-confirm). */
#include "hub/core/registry.h"

extern const struct hub_plugin hub_plugin_transport_memory, hub_plugin_source_http_listen, hub_plugin_source_onestop,
    hub_plugin_source_paygov_confirm;
const struct hub_plugin *const hub_plugins[] = {&hub_plugin_transport_memory, &hub_plugin_source_http_listen,
                                                &hub_plugin_source_onestop, &hub_plugin_source_paygov_confirm, NULL};
