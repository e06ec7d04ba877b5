/* Loading and checking the configuration file (see config.h). */
#include "hub/core/config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/core/files.h"
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

#define RCFG(f) offsetof(struct hub_route_cfg, f)
static const struct hub_cfg_entry route_entries[] = {
    {"name", HUB_CFG_STR, RCFG(name), NULL, 1, "route name (consumer group lienthong.NAME)"},
    {"from", HUB_CFG_STR, RCFG(from), NULL, 1, "input topic"},
    {"to", HUB_CFG_STR, RCFG(to), NULL, 1, "output topic"},
    {"steps", HUB_CFG_NODE, RCFG(steps), NULL, 0, "list of steps run in order, each `- NAME: OPTIONS` (see steps)"},
    {"errors", HUB_CFG_OBJECT, RCFG(errors), NULL, 0, "retry and dead-letter policy", NULL, &errors_map},
    {"batch", HUB_CFG_OBJECT, RCFG(batch), NULL, 0, "transaction batching", NULL, &batch_map},
    {NULL},
};
const struct hub_cfg_map hub_route_cfg_map = {"route", route_entries};

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

static hub_err_t load_routes(struct hub_config *cfg, const struct hub_node *routes, char *errbuf,
                             size_t errbuf_size) {
  if (routes->kind != HUB_NODE_SEQ)
    return hub_node_error(routes, errbuf, errbuf_size, "'routes' must be a list, not %s",
                          hub_node_kind_name(routes->kind));
  cfg->routes = calloc(routes->n ? routes->n : 1, sizeof *cfg->routes);
  if (!cfg->routes) return HUB_ERR_NOMEM;
  for (size_t i = 0; i < routes->n; i++) {
    struct hub_route_cfg *r = &cfg->routes[i];
    const struct hub_node *rn = routes->items[i];
    cfg->n_routes = i + 1;
    r->node = rn;
    hub_err_t rc = hub_cfg_map_apply(&hub_route_cfg_map, rn, rn, r, errbuf, errbuf_size);
    if (rc != HUB_OK) return rc;
    if (!hub_topic_name_valid(r->name))
      return hub_node_error(hub_node_get(rn, "name"), errbuf, errbuf_size,
                            "route name '%s' must use letters, digits, '.', '_' or '-'", r->name);
    for (size_t j = 0; j < i; j++)
      if (!strcmp(cfg->routes[j].name, r->name))
        return hub_node_error(hub_node_get(rn, "name"), errbuf, errbuf_size,
                              "duplicate route name '%s' (first defined at line %d)", r->name,
                              cfg->routes[j].node->line);
    if (!r->errors.dlq || !*r->errors.dlq) {
      free(r->errors.dlq);
      size_t n = strlen(r->name) + 5;
      if (!(r->errors.dlq = malloc(n))) return HUB_ERR_NOMEM;
      snprintf(r->errors.dlq, n, "%s.dlq", r->name);
    }
    if ((rc = check_topic(rn, "from", r->from, errbuf, errbuf_size)) != HUB_OK ||
        (rc = check_topic(rn, "to", r->to, errbuf, errbuf_size)) != HUB_OK)
      return rc;
    const struct hub_node *en = hub_node_get(rn, "errors");
    if (!hub_topic_name_valid(r->errors.dlq))
      return hub_node_error(en ? en : rn, errbuf, errbuf_size, "'%s' is not a valid DLQ topic name", r->errors.dlq);
    if (!strcmp(r->from, r->to) || !strcmp(r->from, r->errors.dlq))
      return hub_node_error(hub_node_get(rn, "to"), errbuf, errbuf_size,
                            "route '%s' would read and write the same topic '%s'", r->name, r->from);
    if ((rc = check_steps(cfg, r, errbuf, errbuf_size)) != HUB_OK) return rc;
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
  if (conns) {
    if (conns->kind != HUB_NODE_SEQ) {
      rc = hub_node_error(conns, errbuf, errbuf_size, "'connectors' must be a list");
      goto out;
    }
    if (conns->n > 0) {
      const struct hub_node *type = hub_node_get(conns->items[0], "type");
      rc = hub_node_error(type ? type : conns->items[0], errbuf, errbuf_size,
                          "unknown connector type '%s': this build has no connectors yet",
                          type && type->kind == HUB_NODE_SCALAR ? type->scalar : "?");
      goto out;
    }
  }
  const struct hub_node *routes = hub_node_get(root, "routes");
  if (!routes) {
    rc = hub_node_error(root, errbuf, errbuf_size, "no 'routes': the hub would have nothing to do");
    goto out;
  }
  rc = load_routes(cfg, routes, errbuf, errbuf_size);
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
  for (size_t i = 0; i < cfg->n_routes; i++) hub_cfg_map_release(&hub_route_cfg_map, &cfg->routes[i]);
  free(cfg->routes);
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
