/* The step interface: what a route runs on each record. A step returns OK, RETRY or REJECT
 * with a code and a reason; only the engine decides backoff, retry limits and the DLQ.
 * Steps are registered as plugins (hub/core/registry.h) and found by name.
 *
 * In a route's YAML a step is a one-key mapping, `- NAME: OPTIONS`, where OPTIONS is a mapping
 * (`- sign-xml: {profile: edxml}`), a scalar for the option the step's map names as its
 * scalar_key (`- validate: schemas/x.json`), or nothing. The step's config map fills its options
 * struct before create() runs (hub/core/step_chain.h). */
#ifndef HUB_STEP_H
#define HUB_STEP_H

#include <stddef.h>
#include <stdint.h>

#include "hub/core/cfgmap.h"
#include "hub/core/err.h"
#include "hub/core/msg.h"
#include "hub/core/node.h"
#include "hub/core/plugin.h"

enum hub_step_result { HUB_STEP_OK = 0, HUB_STEP_RETRY, HUB_STEP_REJECT };

/* What a step says when it does not return OK. The engine copies it into DLQ headers. */
struct hub_step_outcome {
  hub_err_t code;
  char reason[1024];
  /* Optional bytes that explain the failure (for example the canonical bytes whose digest did
   * not match); malloc'd, owned by the outcome, written to the DLQ as lt.error.detail. */
  unsigned char *detail;
  size_t detail_len;
  /* With OK only: further output records after the processed one (a mapping that splits one
   * input into several). Added with hub_step_outcome_add_extra; the later steps of the chain run
   * on each of them too, and the engine produces them after the record, in order, in the same
   * transaction (each with its own key, lt.parent and lt.id). Owned by the outcome. */
  struct hub_msg **extra;
  size_t n_extra;
  /* RETRY: the soonest the record may be tried again (an endpoint's Retry-After), in ms; the
   * engine's backoff waits at least this long. 0: the backoff alone decides. */
  int64_t retry_after_ms;
};

/* Sets code and a formatted reason; returns `result` so a step can `return hub_step_fail(...)`. */
enum hub_step_result hub_step_fail(struct hub_step_outcome *out, enum hub_step_result result, hub_err_t code,
                                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void hub_step_outcome_clear(struct hub_step_outcome *out);
/* Appends an extra output record (taken, also on failure). HUB_ERR_NOMEM or HUB_OK. */
hub_err_t hub_step_outcome_add_extra(struct hub_step_outcome *out, struct hub_msg *msg_take);

/* Where a list of steps is created (a route, a `lienthong test` case); each step is created with
 * a struct hub_plugin_env made of this and its own options node. */
struct hub_step_env {
  const char *base_dir;        /* relative paths in options are relative to this (the config's folder) */
  const struct hub_node *keys; /* the config's `keys:` section, or NULL */
  const char *route;           /* the route's name, for messages */
};

struct hub_step_ops {
  struct hub_plugin_info info; /* name as written in YAML, summary, options (config map and size) */
  /* Builds the step's state from `cfg`, the struct its config map filled (already checked:
   * types, bounds, required keys, the map's constraints). `cfg` stays valid until destroy(state)
   * has returned, so the state may point into it. On error writes "file:line:col: message" into
   * errbuf (env->node and hub_plugin_env_at give the place). */
  hub_err_t (*create)(const void *cfg, const struct hub_plugin_env *env, void **state, char *errbuf,
                      size_t errbuf_size);
  /* Processes one record in place (value, key and headers may change). Must be safe to call
   * again with a fresh copy of the same input after RETRY. */
  enum hub_step_result (*process)(void *state, struct hub_msg *msg, struct hub_step_outcome *out);
  void (*destroy)(void *state);
};

#endif
