/* A list of created steps, run in order on a record (used by routes and `lienthong test`). */
#include <stdio.h>
#include <stdlib.h>

#include "hub/core/registry.h"
#include "hub/engine/route.h"

struct link {
  const struct hub_step_ops *ops;
  void *state;
  char stage[96];
};

struct hub_step_chain {
  size_t n;
  struct link *links;
};

void hub_step_chain_destroy(struct hub_step_chain *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n; i++) c->links[i].ops->destroy(c->links[i].state);
  free(c->links);
  free(c);
}

hub_err_t hub_step_chain_create(const struct hub_node *steps, const struct hub_step_env *env,
                                struct hub_step_chain **out, char *errbuf, size_t errbuf_size) {
  struct hub_step_chain *c = calloc(1, sizeof *c);
  hub_err_t rc = HUB_OK;
  *out = NULL;
  if (!c) return HUB_ERR_NOMEM;
  size_t n = steps ? steps->n : 0;
  if (steps && steps->kind != HUB_NODE_SEQ) {
    rc = hub_node_error(steps, errbuf, errbuf_size, "'steps' must be a list, not %s", hub_node_kind_name(steps->kind));
    goto fail;
  }
  if (!(c->links = calloc(n ? n : 1, sizeof *c->links))) {
    rc = HUB_ERR_NOMEM;
    goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    const struct hub_node *s = steps->items[i];
    if (s->kind != HUB_NODE_MAP || s->n != 1) {
      rc = hub_node_error(s, errbuf, errbuf_size, "a step must be a mapping with one key, `- NAME: ARGS`");
      goto fail;
    }
    const struct hub_step_ops *ops = hub_registry_get_step(s->keys[0]->scalar);
    if (!ops) {
      rc = hub_node_error(s->keys[0], errbuf, errbuf_size, "unknown step '%s'", s->keys[0]->scalar);
      goto fail;
    }
    struct link *l = &c->links[i];
    if ((rc = ops->create(s->items[0], env, &l->state, errbuf, errbuf_size)) != HUB_OK) goto fail;
    l->ops = ops;
    snprintf(l->stage, sizeof l->stage, "steps[%zu].%s", i, ops->info.name);
    c->n = i + 1;
  }
  *out = c;
  return HUB_OK;
fail:
  hub_step_chain_destroy(c);
  return rc;
}

enum hub_step_result hub_step_chain_run(struct hub_step_chain *c, struct hub_msg *msg, struct hub_step_outcome *out,
                                        char *stage, size_t stage_size) {
  for (size_t i = 0; i < c->n; i++) {
    enum hub_step_result r = c->links[i].ops->process(c->links[i].state, msg, out);
    if (r != HUB_STEP_OK) {
      snprintf(stage, stage_size, "%s", c->links[i].stage);
      if (out->code == HUB_OK) out->code = r == HUB_STEP_RETRY ? HUB_ERR_STEP_RETRY : HUB_ERR_STEP_REJECT;
      return r;
    }
  }
  return HUB_STEP_OK;
}
