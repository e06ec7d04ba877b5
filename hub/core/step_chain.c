/* See step_chain.h. */
#include "hub/core/step_chain.h"

#include <stdio.h>
#include <stdlib.h>

#include "hub/core/registry.h"

struct hub_step {
  const struct hub_step_ops *ops;
  void *cfg; /* the options its map filled; freed after the state */
  void *state;
};

struct link {
  struct hub_step *step;
  char stage[96];
};

struct hub_step_chain {
  size_t n;
  struct link *links;
};

void hub_step_destroy(struct hub_step *s) {
  if (!s) return;
  if (s->state) s->ops->destroy(s->state);
  hub_plugin_options_destroy(&s->ops->info, s->cfg);
  free(s);
}

hub_err_t hub_step_create(const struct hub_step_ops *ops, const struct hub_node *options,
                          const struct hub_step_env *env, struct hub_step **out, char *errbuf, size_t errbuf_size) {
  struct hub_step *s = calloc(1, sizeof *s);
  hub_err_t rc;
  *out = NULL;
  if (!s) return HUB_ERR_NOMEM;
  s->ops = ops;
  if ((rc = hub_plugin_options_new(&ops->info, options, options, &s->cfg, errbuf, errbuf_size)) != HUB_OK) goto fail;
  struct hub_plugin_env penv = {env ? env->base_dir : NULL, env ? env->keys : NULL, env ? env->route : NULL, options};
  if ((rc = ops->create(s->cfg, &penv, &s->state, errbuf, errbuf_size)) != HUB_OK) {
    /* whatever the step says, a step that cannot be built is the configuration's fault */
    if (rc != HUB_ERR_NOMEM) rc = HUB_ERR_CONFIG;
    s->state = NULL;
    goto fail;
  }
  *out = s;
  return HUB_OK;
fail:
  hub_step_destroy(s);
  return rc;
}

enum hub_step_result hub_step_process(struct hub_step *s, struct hub_msg *msg, struct hub_step_outcome *out) {
  return s->ops->process(s->state, msg, out);
}

const struct hub_step_ops *hub_step_get_ops(const struct hub_step *s) { return s->ops; }

void hub_step_chain_destroy(struct hub_step_chain *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n; i++) hub_step_destroy(c->links[i].step);
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
      rc = hub_node_error(s, errbuf, errbuf_size, "a step must be a mapping with one key, `- NAME: OPTIONS`");
      goto fail;
    }
    const struct hub_step_ops *ops = hub_registry_get_step(s->keys[0]->scalar);
    if (!ops) {
      char names[512];
      hub_registry_names(HUB_PLUGIN_STEP, names, sizeof names);
      rc = hub_node_error(s->keys[0], errbuf, errbuf_size, "unknown step '%s' (this build has: %s)",
                          s->keys[0]->scalar, names);
      goto fail;
    }
    struct link *l = &c->links[i];
    if ((rc = hub_step_create(ops, s->items[0], env, &l->step, errbuf, errbuf_size)) != HUB_OK) goto fail;
    snprintf(l->stage, sizeof l->stage, "steps[%zu].%s", i, ops->info.name);
    c->n = i + 1;
  }
  *out = c;
  return HUB_OK;
fail:
  hub_step_chain_destroy(c);
  return rc;
}

/* Steps first.. on msg; the extra records a step adds go through the steps after it. One
 * failing record fails the whole input: its outputs are all or nothing. */
static enum hub_step_result run_from(struct hub_step_chain *c, size_t first, struct hub_msg *msg,
                                     struct hub_step_outcome *out, char *stage, size_t stage_size) {
  for (size_t i = first; i < c->n; i++) {
    size_t before = out->n_extra;
    enum hub_step_result r = hub_step_process(c->links[i].step, msg, out);
    if (r != HUB_STEP_OK) {
      snprintf(stage, stage_size, "%s", c->links[i].stage);
      if (out->code == HUB_OK) out->code = r == HUB_STEP_RETRY ? HUB_ERR_STEP_RETRY : HUB_ERR_STEP_REJECT;
      return r;
    }
    for (size_t e = before, after = out->n_extra; e < after; e++)
      if ((r = run_from(c, i + 1, out->extra[e], out, stage, stage_size)) != HUB_STEP_OK) return r;
  }
  return HUB_STEP_OK;
}

enum hub_step_result hub_step_chain_run(struct hub_step_chain *c, struct hub_msg *msg, struct hub_step_outcome *out,
                                        char *stage, size_t stage_size) {
  return run_from(c, 0, msg, out, stage, stage_size);
}
