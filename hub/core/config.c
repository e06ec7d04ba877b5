/* Loading and checking the configuration file (see config.h). */
#include "hub/core/config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/core/files.h"
#include "hub/core/plugin.h"
#include "hub/core/registry.h"
#include "hub/core/step_chain.h"

#define ACFG(f) offsetof(struct hub_admin_cfg, f)
static const struct hub_cfg_entry admin_entries[] = {
    {"listen", HUB_CFG_STR, ACFG(listen), "127.0.0.1:8480", 0,
     "host:port of the admin HTTP server (/live, /ready, /metrics); empty to disable"},
    {"token_file", HUB_CFG_STR, ACFG(token_file), NULL, 0, "file holding a bearer token the admin server requires"},
    {NULL},
};
static const struct hub_cfg_map admin_map = {"hub.admin", admin_entries};

#define HCFG(f) offsetof(struct hub_hub_cfg, f)
static const struct hub_cfg_entry hub_entries[] = {
    {"transport", HUB_CFG_STR, HCFG(transport), "kafka", 0,
     "the transport that carries topics (a transport plugin; its options are the section hub.NAME)"},
    {"instance", HUB_CFG_STR, HCFG(instance), NULL, 0,
     "this hub instance's name, unique among instances sharing a cluster (default: the host name); part of "
     "each route's transactional id"},
    {"log_level", HUB_CFG_ENUM, HCFG(log_level), "info", 0, "lowest level logged", "debug|info|warn|error"},
    {"admin", HUB_CFG_OBJECT, HCFG(admin), NULL, 0, "admin HTTP server", NULL, &admin_map},
    {NULL},
};
static int is_transport(const char *key) { return hub_registry_get_info(HUB_PLUGIN_TRANSPORT, key) != NULL; }
const struct hub_cfg_map hub_hub_cfg_map = {"hub", hub_entries, is_transport};

#define ECFG(f) offsetof(struct hub_route_errors, f)
static const struct hub_cfg_entry errors_entries[] = {
    {"retries", HUB_CFG_INT, ECFG(retries), "5", 0, "retries after a step asks for one, before the DLQ", NULL, NULL,
     0, 1000},
    {"backoff", HUB_CFG_DURATION_RANGE, ECFG(backoff), "200ms..30s", 0,
     "exponential full-jitter backoff between retries: first..cap"},
    {"dlq", HUB_CFG_STR, ECFG(dlq), NULL, 0, "dead-letter topic (default: ROUTE.dlq)"},
    {NULL},
};
static const struct hub_cfg_map errors_map = {"route errors", errors_entries};

#define BCFG(f) offsetof(struct hub_route_batch, f)
static const struct hub_cfg_entry batch_entries[] = {
    {"max_messages", HUB_CFG_INT, BCFG(max_messages), "5000", 0, "records per transaction at most; while more than this many records already wait "
     "(a backlog), up to 4 x this",
     NULL, NULL, 1,
     1000000},
    {"max_wait", HUB_CFG_DURATION, BCFG(max_wait_ms), "20ms", 0,
     "how long a transaction stays open collecting records (the latency bound); on a backlog each transaction "
     "may last twice the one before, up to 8 x this",
     NULL, NULL, 1, 60000},
    {NULL},
};
static const struct hub_cfg_map batch_map = {"route batch", batch_entries};

#define XCFG(f) offsetof(struct hub_route_xml, f)
static const struct hub_cfg_entry xml_entries[] = {
    {"max_size", HUB_CFG_SIZE, XCFG(max_size), "16MiB", 0,
     "largest XML document its steps parse (verify-xml, validate, map, sign-xml); raise it for edXML packets with "
     "big attachments, and the transport's record limit with it (docs/bigdoc.md)",
     NULL, NULL, 1024, (int64_t)1 << 31},
    {"max_depth", HUB_CFG_INT, XCFG(max_depth), "128", 0, "deepest element nesting its steps accept", NULL, NULL, 1,
     10000},
    {"max_attrs", HUB_CFG_INT, XCFG(max_attrs), "256", 0,
     "most attributes on one element, namespace declarations included, checked before libxml2 parses (its "
     "duplicate check is quadratic)", NULL, NULL, 1, 100000},
    {NULL},
};
static const struct hub_cfg_map xml_map = {"route xml", xml_entries};

#define RCFG(f) offsetof(struct hub_route_cfg, f)
static const struct hub_cfg_entry route_entries[] = {
    {"name", HUB_CFG_STR, RCFG(name), NULL, 1, "route name (consumer group lienthong.NAME)"},
    {"from", HUB_CFG_STR, RCFG(from), NULL, 1, "input topic"},
    {"to", HUB_CFG_STR, RCFG(to), NULL, 1, "output topic"},
    {"steps", HUB_CFG_NODE, RCFG(steps), NULL, 0, "list of steps run in order, each `- NAME: OPTIONS` (see steps)"},
    {"errors", HUB_CFG_OBJECT, RCFG(errors), NULL, 0, "retry and dead-letter policy", NULL, &errors_map},
    {"batch", HUB_CFG_OBJECT, RCFG(batch), NULL, 0, "transaction batching", NULL, &batch_map},
    {"xml", HUB_CFG_OBJECT, RCFG(xml), NULL, 0, "limits of the XML its steps parse", NULL, &xml_map},
    {NULL},
};
const struct hub_cfg_map hub_route_cfg_map = {"route", route_entries};

#define SRC(f) offsetof(struct hub_source_cfg, f)
static const struct hub_cfg_entry source_entries[] = {
    {"name", HUB_CFG_STR, SRC(name), NULL, 1, "connector name (unique among routes and connectors)"},
    {"type", HUB_CFG_STR, SRC(type), NULL, 1, "the source plugin (connectors[]: source sections below)"},
    {"topic", HUB_CFG_STR, SRC(topic), NULL, 1, "topic its records are written to"},
    {"poll_interval", HUB_CFG_DURATION, SRC(poll_interval_ms), "5s", 0, "pollers: time between two polls", NULL,
     NULL, 10, 86400000},
    {NULL},
};
static int any_key(const char *key) { return key != NULL; }
const struct hub_cfg_map hub_source_cfg_map = {"source connector", source_entries, any_key};

static const struct hub_cfg_entry sink_entries[] = {
    {"name", HUB_CFG_STR, RCFG(name), NULL, 1, "connector name (unique among routes and connectors; its route's name)"},
    {"type", HUB_CFG_STR, RCFG(type), NULL, 1, "the sink plugin (connectors[]: sink sections below)"},
    {"from", HUB_CFG_STR, RCFG(from), NULL, 1, "topic whose records it delivers"},
    {"result", HUB_CFG_STR, RCFG(to), NULL, 0, "topic for the outcome of each delivery, keyed like the input"},
    {"steps", HUB_CFG_NODE, RCFG(steps), NULL, 0, "steps run on each record before it is delivered"},
    {"errors", HUB_CFG_OBJECT, RCFG(errors), NULL, 0, "retry and dead-letter policy", NULL, &errors_map},
    {"batch", HUB_CFG_OBJECT, RCFG(batch), NULL, 0, "transaction batching (offsets and results)", NULL, &batch_map},
    {"xml", HUB_CFG_OBJECT, RCFG(xml), NULL, 0, "limits of the XML its steps and the sink parse", NULL, &xml_map},
    {"concurrency", HUB_CFG_INT, RCFG(concurrency), "0", 0,
     "records delivered at once, never two of one key, each key in order (0: 4 for a sink that can deliver "
     "concurrently, else 1)",
     NULL, NULL, 0, 256},
    {NULL},
};
const struct hub_cfg_map hub_sink_cfg_map = {"sink connector", sink_entries, any_key};

static const char *const top_keys[] = {"hub", "keys", "connectors", "routes", NULL};

int hub_topic_name_valid(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 249 || !strcmp(s, ".") || !strcmp(s, "..")) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return 0;
  }
  return 1;
}

static hub_err_t check_topic(const struct hub_node *route, const char *key, const char *topic, char *errbuf,
                             size_t errbuf_size) {
  if (hub_topic_name_valid(topic)) return HUB_OK;
  const struct hub_node *at = hub_node_get(route, key);
  return hub_node_error(at ? at : route, errbuf, errbuf_size,
                        "'%s' is not a valid topic name (letters, digits, '.', '_', '-'; at most 249)", topic);
}

/* Creates the route's steps once, as the route will (unknown names, bad options and options the
 * steps themselves refuse are config errors), then drops them. */
static hub_err_t check_steps(const struct hub_config *cfg, const struct hub_route_cfg *r, char *errbuf,
                             size_t errbuf_size) {
  struct hub_step_env env = {cfg->base_dir, cfg->keys, r->name};
  struct hub_step_chain *chain = NULL;
  hub_err_t rc = hub_step_chain_create(r->steps, &env, &chain, errbuf, errbuf_size);
  hub_step_chain_destroy(chain);
  return rc;
}

/* A name must be unique among routes and connectors (sinks are routes, sources are not). */
static hub_err_t check_name(const struct hub_config *cfg, const struct hub_node *at, const char *what, const char *name,
                            char *errbuf, size_t errbuf_size) {
  const struct hub_node *nn = hub_node_get(at, "name");
  if (!hub_topic_name_valid(name))
    return hub_node_error(nn, errbuf, errbuf_size, "%s name '%s' must use letters, digits, '.', '_' or '-'", what,
                          name);
  const struct hub_node *first = NULL; /* entries load in order: only earlier ones have names yet */
  for (size_t j = 0; j < cfg->n_routes && !first; j++)
    if (cfg->routes[j].node != at && !strcmp(cfg->routes[j].name, name)) first = cfg->routes[j].node;
  for (size_t j = 0; j < cfg->n_sources && !first; j++)
    if (cfg->sources[j].node != at && !strcmp(cfg->sources[j].name, name)) first = cfg->sources[j].node;
  if (first)
    return hub_node_error(nn, errbuf, errbuf_size, "duplicate %s name '%s' (first defined at line %d)", what, name,
                          first->line);
  return HUB_OK;
}

/* The checks every route gets, sinks' routes included (rn: the entry; to_key: how `to` is spelt). */
static hub_err_t finish_route(struct hub_config *cfg, struct hub_route_cfg *r, const char *what, const char *to_key,
                              char *errbuf, size_t errbuf_size) {
  const struct hub_node *rn = r->node;
  hub_err_t rc = check_name(cfg, rn, what, r->name, errbuf, errbuf_size);
  if (rc != HUB_OK) return rc;
  if (!r->errors.dlq || !*r->errors.dlq) {
    free(r->errors.dlq);
    size_t n = strlen(r->name) + 5;
    if (!(r->errors.dlq = malloc(n))) return HUB_ERR_NOMEM;
    snprintf(r->errors.dlq, n, "%s.dlq", r->name);
  }
  if ((rc = check_topic(rn, "from", r->from, errbuf, errbuf_size)) != HUB_OK ||
      (r->to && (rc = check_topic(rn, to_key, r->to, errbuf, errbuf_size)) != HUB_OK))
    return rc;
  const struct hub_node *en = hub_node_get(rn, "errors");
  if (!hub_topic_name_valid(r->errors.dlq))
    return hub_node_error(en ? en : rn, errbuf, errbuf_size, "'%s' is not a valid DLQ topic name", r->errors.dlq);
  if ((r->to && !strcmp(r->from, r->to)) || !strcmp(r->from, r->errors.dlq)) {
    const struct hub_node *at = hub_node_get(rn, to_key);
    return hub_node_error(at ? at : rn, errbuf, errbuf_size, "%s '%s' would read and write the same topic '%s'", what,
                          r->name, r->from);
  }
  return check_steps(cfg, r, errbuf, errbuf_size);
}

static hub_err_t load_routes(struct hub_config *cfg, const struct hub_node *routes, size_t extra, char *errbuf,
                             size_t errbuf_size) {
  size_t n = routes ? routes->n : 0;
  if (routes && routes->kind != HUB_NODE_SEQ)
    return hub_node_error(routes, errbuf, errbuf_size, "'routes' must be a list, not %s",
                          hub_node_kind_name(routes->kind));
  cfg->routes = calloc(n + extra ? n + extra : 1, sizeof *cfg->routes);
  if (!cfg->routes) return HUB_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) {
    struct hub_route_cfg *r = &cfg->routes[i];
    const struct hub_node *rn = routes->items[i];
    cfg->n_routes = i + 1;
    r->node = rn;
    hub_err_t rc = hub_cfg_map_apply(&hub_route_cfg_map, rn, rn, r, errbuf, errbuf_size);
    if (rc != HUB_OK) return rc;
    if ((rc = finish_route(cfg, r, "route", "to", errbuf, errbuf_size)) != HUB_OK) return rc;
  }
  return HUB_OK;
}

/* The plugin's keys of a connector entry: a map node that borrows the entry's pairs except the
 * engine's own (`map`'s entries), so the plugin's map sees and reports only its options. */
static struct hub_node *options_view_new(const struct hub_node *entry, const struct hub_cfg_map *map) {
  struct hub_node *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  *v = (struct hub_node){HUB_NODE_MAP, entry->file, entry->line, entry->col, NULL, 0, 0, NULL, NULL};
  v->keys = calloc(entry->n + 1, sizeof *v->keys);
  v->items = calloc(entry->n + 1, sizeof *v->items);
  if (!v->keys || !v->items) {
    free(v->keys);
    free(v->items);
    free(v);
    return NULL;
  }
  for (size_t i = 0; i < entry->n; i++) {
    int engine_key = 0;
    for (const struct hub_cfg_entry *e = map->entries; e->name && !engine_key; e++)
      engine_key = !strcmp(e->name, entry->keys[i]->scalar);
    if (engine_key) continue;
    v->keys[v->n] = entry->keys[i];
    v->items[v->n++] = entry->items[i];
  }
  return v;
}

static void options_view_destroy(struct hub_node *v) {
  if (!v) return;
  free(v->keys);
  free(v->items);
  free(v);
}


static hub_err_t load_connectors(struct hub_config *cfg, const struct hub_node *conns, char *errbuf,
                                 size_t errbuf_size) {
  size_t n = conns ? conns->n : 0;
  if (!(cfg->sources = calloc(n ? n : 1, sizeof *cfg->sources))) return HUB_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) {
    const struct hub_node *cn = conns->items[i];
    const struct hub_node *type = cn->kind == HUB_NODE_MAP ? hub_node_get(cn, "type") : NULL;
    if (cn->kind != HUB_NODE_MAP)
      return hub_node_error(cn, errbuf, errbuf_size, "a connector must be a mapping with name, type and options");
    if (!type || type->kind != HUB_NODE_SCALAR)
      return hub_node_error(type ? type : cn, errbuf, errbuf_size, "a connector needs 'type:' (a connector plugin name)");
    const struct hub_plugin_info *src = hub_registry_get_info(HUB_PLUGIN_SOURCE, type->scalar);
    const struct hub_plugin_info *snk = hub_registry_get_info(HUB_PLUGIN_SINK, type->scalar);
    hub_err_t rc;
    if (src) {
      struct hub_source_cfg *s = &cfg->sources[cfg->n_sources++];
      s->node = cn;
      s->plugin = src;
      if ((rc = hub_cfg_map_apply(&hub_source_cfg_map, cn, cn, s, errbuf, errbuf_size)) != HUB_OK ||
          (rc = check_name(cfg, cn, "connector", s->name, errbuf, errbuf_size)) != HUB_OK ||
          (rc = check_topic(cn, "topic", s->topic, errbuf, errbuf_size)) != HUB_OK)
        return rc;
      if (!(s->options = options_view_new(cn, &hub_source_cfg_map))) return HUB_ERR_NOMEM;
      rc = hub_plugin_options_new(src, s->options, cn, &s->plugin_cfg, errbuf, errbuf_size);
    } else if (snk) {
      struct hub_route_cfg *r = &cfg->routes[cfg->n_routes++];
      r->node = cn;
      r->sink = snk;
      if ((rc = hub_cfg_map_apply(&hub_sink_cfg_map, cn, cn, r, errbuf, errbuf_size)) != HUB_OK ||
          (rc = finish_route(cfg, r, "connector", "result", errbuf, errbuf_size)) != HUB_OK)
        return rc;
      if (!(r->options = options_view_new(cn, &hub_sink_cfg_map))) return HUB_ERR_NOMEM;
      rc = hub_plugin_options_new(snk, r->options, cn, &r->sink_cfg, errbuf, errbuf_size);
    } else {
      char sources[256], sinks[256];
      hub_registry_names(HUB_PLUGIN_SOURCE, sources, sizeof sources);
      hub_registry_names(HUB_PLUGIN_SINK, sinks, sizeof sinks);
      return hub_node_error(type, errbuf, errbuf_size, "unknown connector type '%s' (sources: %s; sinks: %s)",
                            type->scalar, *sources ? sources : "none", *sinks ? sinks : "none");
    }
    if (rc != HUB_OK) return rc;
  }
  return HUB_OK;
}

/* Every hub.<transport> section present is checked; the selected transport's options are kept. */
static hub_err_t load_transport(struct hub_config *cfg, const struct hub_node *hub, char *errbuf, size_t errbuf_size) {
  cfg->transport = hub_registry_get_info(HUB_PLUGIN_TRANSPORT, cfg->hub.transport);
  if (!cfg->transport) {
    char names[256];
    const struct hub_node *at = hub ? hub_node_get(hub, "transport") : NULL;
    hub_registry_names(HUB_PLUGIN_TRANSPORT, names, sizeof names);
    return hub_node_error(at ? at : cfg->root, errbuf, errbuf_size, "unknown transport '%s' (this build has: %s)",
                          cfg->hub.transport, names);
  }
  for (size_t i = 0; hub && hub->kind == HUB_NODE_MAP && i < hub->n; i++) {
    const struct hub_plugin_info *t = hub_registry_get_info(HUB_PLUGIN_TRANSPORT, hub->keys[i]->scalar);
    if (!t || t == cfg->transport || !t->config_map) continue;
    void *other = calloc(1, t->config_size);
    if (!other) return HUB_ERR_NOMEM;
    hub_err_t rc = hub_cfg_map_apply(t->config_map, hub->items[i], hub->items[i], other, errbuf, errbuf_size);
    hub_cfg_map_release(t->config_map, other);
    free(other);
    if (rc != HUB_OK) return rc;
  }
  if (!(cfg->transport_cfg = calloc(1, cfg->transport->config_size ? cfg->transport->config_size : 1)))
    return HUB_ERR_NOMEM;
  if (!cfg->transport->config_map) return HUB_OK;
  const struct hub_node *own = hub ? hub_node_get(hub, cfg->transport->name) : NULL;
  return hub_cfg_map_apply(cfg->transport->config_map, own, hub ? hub : cfg->root, cfg->transport_cfg, errbuf,
                           errbuf_size);
}

hub_err_t hub_config_load(const char *path, struct hub_config **out, char *errbuf, size_t errbuf_size) {
  hub_err_t rc = HUB_OK;
  struct hub_config *cfg = calloc(1, sizeof *cfg);
  *out = NULL;
  if (!cfg) return HUB_ERR_NOMEM;
  cfg->path = strdup(path);
  cfg->base_dir = hub_path_dir_new(path);
  if (!cfg->path || !cfg->base_dir) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  if (!(cfg->root = hub_node_load_file(path, errbuf, errbuf_size))) {
    rc = HUB_ERR_CONFIG;
    goto out;
  }
  const struct hub_node *root = cfg->root;
  if (root->kind != HUB_NODE_MAP) {
    rc = hub_node_error(root, errbuf, errbuf_size, "the configuration must be a mapping with hub, keys, connectors "
                                                   "and routes");
    goto out;
  }
  for (size_t i = 0; i < root->n; i++) {
    int known = 0;
    for (int k = 0; top_keys[k]; k++) known |= !strcmp(root->keys[i]->scalar, top_keys[k]);
    if (!known) {
      rc = hub_node_error(root->keys[i], errbuf, errbuf_size,
                          "unknown top-level key '%s' (expected hub, keys, connectors or routes)",
                          root->keys[i]->scalar);
      goto out;
    }
  }
  if ((rc = hub_cfg_map_apply(&hub_hub_cfg_map, hub_node_get(root, "hub"), root, &cfg->hub, errbuf, errbuf_size)) !=
      HUB_OK)
    goto out;
  if ((rc = load_transport(cfg, hub_node_get(root, "hub"), errbuf, errbuf_size)) != HUB_OK) goto out;
  if (!cfg->hub.instance || !*cfg->hub.instance) {
    char host[256] = "lienthong";
    gethostname(host, sizeof host - 1);
    free(cfg->hub.instance);
    cfg->hub.instance = strdup(host);
  }
  cfg->keys = hub_node_get(root, "keys");
  if (cfg->keys && cfg->keys->kind != HUB_NODE_MAP) {
    rc = hub_node_error(cfg->keys, errbuf, errbuf_size, "'keys' must be a mapping");
    goto out;
  }
  const struct hub_node *conns = hub_node_get(root, "connectors");
  if (conns && conns->kind != HUB_NODE_SEQ) {
    rc = hub_node_error(conns, errbuf, errbuf_size, "'connectors' must be a list");
    goto out;
  }
  const struct hub_node *routes = hub_node_get(root, "routes");
  if ((!routes || routes->n == 0) && (!conns || conns->n == 0)) {
    rc = hub_node_error(routes ? routes : root, errbuf, errbuf_size,
                        "no 'routes' and no 'connectors': the hub would have nothing to do");
    goto out;
  }
  if ((rc = load_routes(cfg, routes, conns ? conns->n : 0, errbuf, errbuf_size)) != HUB_OK) goto out;
  rc = load_connectors(cfg, conns, errbuf, errbuf_size);
out:
  if (rc != HUB_OK) {
    hub_config_destroy(cfg);
    return rc;
  }
  *out = cfg;
  return HUB_OK;
}

void hub_config_destroy(struct hub_config *cfg) {
  if (!cfg) return;
  for (size_t i = 0; i < cfg->n_routes; i++) {
    struct hub_route_cfg *r = &cfg->routes[i];
    if (r->sink) hub_plugin_options_destroy(r->sink, r->sink_cfg);
    options_view_destroy(r->options);
    hub_cfg_map_release(r->sink ? &hub_sink_cfg_map : &hub_route_cfg_map, r);
  }
  free(cfg->routes);
  for (size_t i = 0; i < cfg->n_sources; i++) {
    struct hub_source_cfg *src = &cfg->sources[i];
    if (src->plugin) hub_plugin_options_destroy(src->plugin, src->plugin_cfg);
    options_view_destroy(src->options);
    hub_cfg_map_release(&hub_source_cfg_map, src);
  }
  free(cfg->sources);
  if (cfg->transport && cfg->transport_cfg && cfg->transport->config_map)
    hub_cfg_map_release(cfg->transport->config_map, cfg->transport_cfg);
  free(cfg->transport_cfg);
  hub_cfg_map_release(&hub_hub_cfg_map, &cfg->hub);
  hub_node_destroy(cfg->root);
  free(cfg->path);
  free(cfg->base_dir);
  free(cfg);
}

const struct hub_route_cfg *hub_config_get_route(const struct hub_config *cfg, const char *name) {
  for (size_t i = 0; i < cfg->n_routes; i++)
    if (!strcmp(cfg->routes[i].name, name)) return &cfg->routes[i];
  return NULL;
}
