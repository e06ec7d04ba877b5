/* The `validate` step (`- validate: schemas/x.schema.json` or `.xsd`): a message that does not
 * parse, or does not satisfy the schema, is rejected with every failure listed (the first ones in
 * the reason, all of them in the outcome's detail). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/registry.h"
#include "hub/core/step.h"
#include "mappings/shape/validator.h"

struct validate_cfg {
  char *schema;
};

static const struct hub_cfg_entry entries[] = {
    {"schema", HUB_CFG_STR, offsetof(struct validate_cfg, schema), NULL, 1,
     "the schema: a JSON Schema (2020-12, .json) or an XML Schema (.xsd), relative to the configuration file"},
    {NULL},
};
static const struct hub_cfg_map map = {"validate", entries, .scalar_key = "schema",
                                       .usage = "`- validate: schemas/x.schema.json` or `.xsd`"};

static hub_err_t step_create(const void *cfg, const struct hub_plugin_env *env, void **state, char *errbuf,
                             size_t errbuf_size) {
  const struct validate_cfg *c = cfg;
  struct lt_validator *v = NULL;
  char why[2048], *path = hub_plugin_env_path_new(env, c->schema);
  hub_err_t rc = path ? lt_validator_load(path, &v, why, sizeof why) : HUB_ERR_NOMEM;
  free(path);
  if (rc == HUB_ERR_NOMEM) return rc;
  if (rc != HUB_OK) return hub_node_error(hub_plugin_env_at(env, "schema"), errbuf, errbuf_size, "validate: %s", why);
  *state = v;
  return HUB_OK;
}

static enum hub_step_result step_process(void *state, struct hub_msg *msg, struct hub_step_outcome *out) {
  struct lt_validator *v = state;
  char *errors = NULL;
  hub_err_t rc = lt_validator_check(v, msg->value, msg->value_len, &errors);
  if (rc == HUB_OK) return HUB_STEP_OK;
  if (rc == HUB_ERR_NOMEM) {
    free(errors);
    return hub_step_fail(out, HUB_STEP_RETRY, rc, "validate: out of memory");
  }
  /* the reason is one line: failures joined by "; " (the detail keeps one per line) */
  size_t n = errors ? 1 : 0;
  char *joined = errors ? malloc(2 * strlen(errors) + 1) : NULL;
  if (joined) {
    char *o = joined;
    for (const char *p = errors; *p; p++) {
      if (*p == '\n') {
        *o++ = ';';
        *o++ = ' ';
        n++;
      } else {
        *o++ = *p;
      }
    }
    *o = 0;
  }
  enum hub_step_result r =
      hub_step_fail(out, HUB_STEP_REJECT, rc, "%s against %s: %s", rc == HUB_ERR_SCHEMA ? "not valid" : "cannot parse",
                    lt_validator_path(v), joined ? joined : "(no detail)");
  free(joined);
  if (strlen(out->reason) == sizeof out->reason - 1)
    snprintf(out->reason + sizeof out->reason - 40, 40, "... (%zu failures, see detail)", n);
  if (errors) {
    free(out->detail);
    out->detail = (unsigned char *)errors;
    out->detail_len = strlen(errors);
  }
  return r;
}

static void step_destroy(void *state) { lt_validator_destroy(state); }

static const struct hub_step_ops validate_ops = {
    .info = {.name = "validate",
             .summary = "reject a message that does not satisfy a JSON Schema (2020-12, .json) or an XML Schema (.xsd)",
             .config_map = &map,
             .config_size = sizeof(struct validate_cfg)},
    .create = step_create,
    .process = step_process,
    .destroy = step_destroy,
};
HUB_STEP_PLUGIN(lt_plugin_step_validate, validate_ops);
