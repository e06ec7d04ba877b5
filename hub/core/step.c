/* Helpers shared by every step implementation. */
#include "hub/core/step.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

enum hub_step_result hub_step_fail(struct hub_step_outcome *out, enum hub_step_result result, hub_err_t code,
                                   const char *fmt, ...) {
  va_list ap;
  out->code = code;
  va_start(ap, fmt);
  vsnprintf(out->reason, sizeof out->reason, fmt, ap);
  va_end(ap);
  return result;
}

hub_err_t hub_step_outcome_add_extra(struct hub_step_outcome *out, struct hub_msg *msg_take) {
  struct hub_msg **e = msg_take ? realloc(out->extra, (out->n_extra + 1) * sizeof *e) : NULL;
  if (!e) {
    hub_msg_destroy(msg_take);
    return HUB_ERR_NOMEM;
  }
  out->extra = e;
  out->extra[out->n_extra++] = msg_take;
  return HUB_OK;
}

void hub_step_outcome_clear(struct hub_step_outcome *out) {
  for (size_t i = 0; i < out->n_extra; i++)
    hub_msg_destroy(out->extra[i]);
  free(out->extra);
  out->extra = NULL;
  out->n_extra = 0;
  free(out->detail);
  out->detail = NULL;
  out->detail_len = 0;
  out->retry_after_ms = 0;
  out->code = HUB_OK;
  out->reason[0] = '\0';
}
