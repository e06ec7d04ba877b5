/* The hub's configuration file: one YAML document checked strictly against config maps
 * (hub, hub.<transport>, hub.admin, routes, route.errors, route.batch). Every error names
 * file:line:col. Steps are checked by creating them (unknown step, bad arguments). */
#ifndef HUB_CONFIG_H
#define HUB_CONFIG_H

#include "hub/core/cfgmap.h"
#include "hub/core/node.h"
#include "hub/core/registry.h"

struct hub_admin_cfg {
  char *listen;     /* "127.0.0.1:8480"; empty: no admin server */
  char *token_file; /* bearer token required when set */
};

struct hub_route_errors {
  int64_t retries;
  struct hub_duration_range backoff;
  char *dlq;
};

struct hub_route_batch {
  int64_t max_messages;
  int64_t max_wait_ms;
};

/* `xml:` of a route or sink connector: limits for every XML parse its steps run. */
struct hub_route_xml {
  int64_t max_size;  /* bytes; a 50 MB edXML packet needs it raised (docs/bigdoc.md) */
  int64_t max_depth;
  int64_t max_attrs; /* attributes (namespace declarations included) per element */
};

struct hub_route_cfg {
  char *name;
  char *from;
  char *to;                     /* NULL only for a sink without a `result` topic */
  const struct hub_node *steps; /* a list, or NULL */
  struct hub_route_errors errors;
  struct hub_route_batch batch;
  struct hub_route_xml xml;
  const struct hub_node *node;
  /* A sink connector runs as a route whose last step is the sink's deliver. */
  char *type;                         /* the sink plugin's name (`type:`) */
  const struct hub_plugin_info *sink; /* NULL for a plain route */
  void *sink_cfg;                     /* the sink's options, filled by its map */
  struct hub_node *options;           /* the plugin's keys of the entry (a view; owned) */
  int64_t concurrency;                /* sinks: records (of different keys) delivered at once; 0: the sink's default */
};

/* A source connector (`connectors:` entry whose type is a source plugin). */
struct hub_source_cfg {
  char *name;
  char *type; /* the source plugin's name */
  char *topic;               /* where its records go */
  int64_t poll_interval_ms;  /* pollers: time between polls */
  const struct hub_plugin_info *plugin;
  void *plugin_cfg;          /* filled by the plugin's map */
  struct hub_node *options;  /* the plugin's keys of the entry (a view; owned) */
  const struct hub_node *node;
};

struct hub_hub_cfg {
  char *transport; /* a transport plugin's name */
  char *instance;
  int log_level; /* enum hub_log_level */
  struct hub_admin_cfg admin;
};

struct hub_config {
  char *path;
  char *base_dir;
  struct hub_node *root;
  struct hub_hub_cfg hub;
  /* The selected transport's options (hub.<transport>, filled by its config map). */
  const struct hub_plugin_info *transport;
  void *transport_cfg;
  const struct hub_node *keys;
  struct hub_route_cfg *routes; /* the routes, then one per sink connector */
  size_t n_routes;
  struct hub_source_cfg *sources;
  size_t n_sources;
};

extern const struct hub_cfg_map hub_hub_cfg_map;
extern const struct hub_cfg_map hub_route_cfg_map;
/* The engine's keys of a `connectors:` entry, by kind (the plugin's map has the rest). */
extern const struct hub_cfg_map hub_source_cfg_map;
extern const struct hub_cfg_map hub_sink_cfg_map;


/* Loads and checks the whole file, steps included. */
hub_err_t hub_config_load(const char *path, struct hub_config **out, char *errbuf, size_t errbuf_size);
void hub_config_destroy(struct hub_config *cfg);
/* The route named `name` (borrowed), or NULL. */
const struct hub_route_cfg *hub_config_get_route(const struct hub_config *cfg, const char *name);
/* Kafka topic names: [A-Za-z0-9._-], 1..249 characters, not "." or "..". */
int hub_topic_name_valid(const char *name);

#endif
