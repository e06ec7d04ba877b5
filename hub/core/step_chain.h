/* Creating steps from the configuration and running them in order. hub_step_chain_create is
 * the one parser of a `steps:` list (`lint`, routes and `lienthong test` all use it), and
 * hub_step_create the one place a step's config map is applied before its create() runs. It
 * lives in core, beside the config loader that checks every route's steps with it. */
#ifndef HUB_STEP_CHAIN_H
#define HUB_STEP_CHAIN_H

#include "hub/core/step.h"

/* One created step: its options (filled by its map) and its state. */
struct hub_step;

/* Creates step `ops` from its options as written (`- NAME: OPTIONS`; NULL or an empty scalar:
 * none). A failure of the step's own create() is a configuration error (HUB_ERR_CONFIG, or
 * HUB_ERR_NOMEM) with file:line:col in errbuf. */
hub_err_t hub_step_create(const struct hub_step_ops *ops, const struct hub_node *options,
                          const struct hub_step_env *env, struct hub_step **out, char *errbuf, size_t errbuf_size);
enum hub_step_result hub_step_process(struct hub_step *s, struct hub_msg *msg, struct hub_step_outcome *out);
const struct hub_step_ops *hub_step_get_ops(const struct hub_step *s);
void hub_step_destroy(struct hub_step *s);

/* The steps of a `steps:` list (NULL: none), each `- NAME: OPTIONS`. */
struct hub_step_chain;
hub_err_t hub_step_chain_create(const struct hub_node *steps, const struct hub_step_env *env,
                                struct hub_step_chain **out, char *errbuf, size_t errbuf_size);
/* Runs every step on `msg` in order. On failure returns the result, writes the outcome and
 * the failing stage ("steps[2].validate") into `stage`. */
enum hub_step_result hub_step_chain_run(struct hub_step_chain *c, struct hub_msg *msg, struct hub_step_outcome *out,
                                        char *stage, size_t stage_size);
void hub_step_chain_destroy(struct hub_step_chain *c);

#endif
