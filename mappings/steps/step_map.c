/* Step `map`: runs a mapping file (mappings/map.h) on the record's value. On success the value
 * is replaced by the whole output, content-type is set and lt.parent records the SHA-256 of the
 * input; on failure the record is left untouched and the step rejects with the mapping error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/registry.h"
#include "mappings/shape/map.h"

struct map_state {
  struct lt_map *map;
};

static hub_err_t map_create(const struct hub_node *args, const struct hub_step_env *env, void **state, char *errbuf,
                            size_t errbuf_size) {
  const struct hub_node *file = args;
  char path[4096];
  *state = NULL;
  if (args && args->kind == HUB_NODE_MAP) {
    for (size_t i = 0; i < args->n; i++)
      if (strcmp(args->keys[i]->scalar, "mapping"))
        return hub_node_error(args->keys[i], errbuf, errbuf_size, "unknown key '%s' in map (allowed: mapping)",
                              args->keys[i]->scalar);
    file = hub_node_get(args, "mapping");
  }
  if (!file || file->kind != HUB_NODE_SCALAR || !*file->scalar)
    return hub_node_error(args ? args : file, errbuf, errbuf_size,
                          "map takes a mapping file: `- map: FILE` or `- map: {mapping: FILE}`");
  if (file->scalar[0] == '/' || !env || !env->base_dir || !*env->base_dir)
    snprintf(path, sizeof path, "%s", file->scalar);
  else
    snprintf(path, sizeof path, "%s/%s", env->base_dir, file->scalar);
  struct map_state *st = calloc(1, sizeof *st);
  if (!st) return HUB_ERR_NOMEM;
  char why[1024];
  hub_err_t rc = lt_map_load_file(path, &st->map, why, sizeof why);
  if (rc) {
    free(st);
    return hub_node_error(file, errbuf, errbuf_size, "mapping %s: %s", file->scalar, why);
  }
  *state = st;
  return HUB_OK;
}

static enum hub_step_result map_process(void *state, struct hub_msg *msg, struct hub_step_outcome *out) {
  struct map_state *st = state;
  unsigned char *res = NULL;
  size_t len = 0;
  char why[1024], parent[65];
  hub_err_t rc = lt_map_run(st->map, msg->value, msg->value_len, 0, &res, &len, why, sizeof why);
  if (rc == HUB_ERR_NOMEM) return hub_step_fail(out, HUB_STEP_RETRY, rc, "%s", why);
  if (rc) return hub_step_fail(out, HUB_STEP_REJECT, rc, "%s", why);
  hub_sha256_hex(msg->value, msg->value_len, parent);
  /* the output buffer has its NUL, so it can be taken over as is */
  if (hub_msg_set_value_take(msg, res, len) || hub_msg_header_set_str(msg, HUB_H_CONTENT_TYPE, lt_map_content_type(st->map)) ||
      hub_msg_header_set_str(msg, HUB_H_PARENT, parent))
    return hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
  return HUB_STEP_OK;
}

static void map_destroy(void *state) {
  struct map_state *st = state;
  if (!st) return;
  lt_map_destroy(st->map);
  free(st);
}

static const struct hub_step_ops ops = {
    .info = {.name = "map", .summary = "transform JSON or XML with a mapping file (rules or XSLT); see docs/mapping.md"},
    .create = map_create,
    .process = map_process,
    .destroy = map_destroy,
};
HUB_STEP_PLUGIN(lt_plugin_step_map, ops);
