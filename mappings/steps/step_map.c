/* Step `map`: runs a mapping file (mappings/map.h) on the record's value. On success the value
 * is replaced by the whole output, content-type is set and lt.parent records the SHA-256 of the
 * input; on failure the record is left untouched and the step rejects with the mapping error.
 * A mapping with `split:` gives several outputs: the first replaces the record, the others are
 * extra records of the outcome (hub/core/step.h), committed with it. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/registry.h"
#include "mappings/shape/map.h"

struct map_cfg {
  char *mapping;
};

static const struct hub_cfg_entry entries[] = {
    {"mapping", HUB_CFG_STR, offsetof(struct map_cfg, mapping), NULL, 1,
     "the mapping file (docs/mapping.md), relative to the configuration file"},
    {NULL},
};
static const struct hub_cfg_map cfg_map = {"map", entries, .scalar_key = "mapping",
                                           .usage = "`- map: FILE` or `- map: {mapping: FILE}`"};

struct map_state {
  struct lt_map *map;
};

static hub_err_t map_create(const void *cfg, const struct hub_plugin_env *env, void **state, char *errbuf,
                            size_t errbuf_size) {
  const struct map_cfg *c = cfg;
  struct map_state *st = calloc(1, sizeof *st);
  char why[1024], *path = hub_plugin_env_path_new(env, c->mapping);
  hub_err_t rc = st && path ? lt_map_load_file(path, &st->map, why, sizeof why) : HUB_ERR_NOMEM;
  free(path);
  if (rc != HUB_OK) {
    free(st);
    if (rc == HUB_ERR_NOMEM) return rc;
    return hub_node_error(hub_plugin_env_at(env, "mapping"), errbuf, errbuf_size, "mapping %s: %s", c->mapping, why);
  }
  *state = st;
  return HUB_OK;
}

/* Sets one output on a record: value, content type, lt.parent and, for a split with a key, the key. */
static int set_output(struct hub_msg *msg, const struct lt_map *map, struct lt_map_output *o, const char *parent) {
  unsigned char *data = o->data;
  o->data = NULL; /* the output buffer has its NUL, so it is taken over as is (taken also on failure) */
  if (hub_msg_set_value_take(msg, data, o->len)) return -1;
  return hub_msg_header_set_str(msg, HUB_H_CONTENT_TYPE, lt_map_content_type(map)) ||
         hub_msg_header_set_str(msg, HUB_H_PARENT, parent) || (o->key && hub_msg_set_key(msg, o->key, strlen(o->key)));
}

static enum hub_step_result map_process(void *state, struct hub_msg *msg, struct hub_step_outcome *out) {
  struct map_state *st = state;
  struct lt_map_output *o = NULL;
  size_t n = 0;
  char why[1024], parent[65];
  enum hub_step_result r = HUB_STEP_OK;
  hub_err_t rc = lt_map_run_all(st->map, msg->value, msg->value_len, NULL, 0, &o, &n, why, sizeof why);
  if (rc == HUB_ERR_NOMEM) return hub_step_fail(out, HUB_STEP_RETRY, rc, "%s", why);
  if (rc) return hub_step_fail(out, HUB_STEP_REJECT, rc, "%s", why);
  hub_sha256_hex(msg->value, msg->value_len, parent);
  /* a split: outputs 2.. are extra records, copies of the input's headers with their own value,
   * key and (given by the engine) lt.id; they are made before the record itself changes */
  struct hub_msg **extra = n > 1 ? calloc(n - 1, sizeof *extra) : NULL;
  if (n > 1 && !extra) goto oom;
  for (size_t i = 1; i < n; i++) {
    if (!(extra[i - 1] = hub_msg_dup(msg))) goto oom;
    hub_msg_header_del(extra[i - 1], HUB_H_ID);
    if (set_output(extra[i - 1], st->map, &o[i], parent)) goto oom;
  }
  if (set_output(msg, st->map, &o[0], parent)) goto oom;
  for (size_t i = 1; i < n; i++) {
    struct hub_msg *x = extra[i - 1];
    extra[i - 1] = NULL;
    if (hub_step_outcome_add_extra(out, x)) goto oom;
  }
  goto done;
oom:
  r = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
done:
  for (size_t i = 1; extra && i < n; i++)
    hub_msg_destroy(extra[i - 1]);
  free(extra);
  lt_map_outputs_free(o, n);
  return r;
}

static void map_destroy(void *state) {
  struct map_state *st = state;
  if (!st) return;
  lt_map_destroy(st->map);
  free(st);
}

static const struct hub_step_ops ops = {
    .info = {.name = "map",
             .summary = "transform JSON or XML with a mapping file (rules or XSLT); see docs/mapping.md",
             .config_map = &cfg_map,
             .config_size = sizeof(struct map_cfg)},
    .create = map_create,
    .process = map_process,
    .destroy = map_destroy,
};
HUB_STEP_PLUGIN(lt_plugin_step_map, ops);
