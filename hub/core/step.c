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

void hub_step_outcome_clear(struct hub_step_outcome *out) {
  free(out->detail);
  out->detail = NULL;
  out->detail_len = 0;
  out->retry_after_ms = 0;
  out->code = HUB_OK;
  out->reason[0] = '\0';
}
