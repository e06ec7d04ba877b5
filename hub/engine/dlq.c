/* DLQ records: the original record (bytes, key, headers) plus the error headers. */
#include <stdio.h>
#include <time.h>

#include "hub/engine/route.h"

/* Detail bytes are for humans reading a DLQ; cap them so one bad record stays small. */
#define DETAIL_MAX (64 * 1024)

struct hub_msg *hub_dlq_record_new(const struct hub_msg *orig, const char *route, const char *stage,
                                   const struct hub_step_outcome *out, int attempts) {
  struct hub_msg *d = hub_msg_dup(orig);
  if (!d) return NULL;
  char origin[512], num[32], when[40];
  snprintf(origin, sizeof origin, "%s/%d/%lld", orig->topic ? orig->topic : "?", (int)orig->partition,
           (long long)orig->offset);
  snprintf(num, sizeof num, "%d", attempts);
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (hub_msg_header_set_str(d, HUB_H_ERROR_STAGE, stage) != HUB_OK ||
      hub_msg_header_set_str(d, HUB_H_ERROR_CODE, hub_err2name(out->code)) != HUB_OK ||
      hub_msg_header_set_str(d, HUB_H_ERROR_REASON, out->reason[0] ? out->reason : hub_err2str(out->code)) != HUB_OK ||
      hub_msg_header_set_str(d, HUB_H_ORIGIN, origin) != HUB_OK ||
      hub_msg_header_set_str(d, HUB_H_ATTEMPTS, num) != HUB_OK ||
      hub_msg_header_set_str(d, HUB_H_FAILED_AT, when) != HUB_OK ||
      hub_msg_header_set_str(d, HUB_H_ROUTE, route) != HUB_OK ||
      (out->detail && hub_msg_header_set(d, HUB_H_ERROR_DETAIL, out->detail,
                                         out->detail_len > DETAIL_MAX ? DETAIL_MAX : out->detail_len) != HUB_OK)) {
    hub_msg_destroy(d);
    return NULL;
  }
  return d;
}
