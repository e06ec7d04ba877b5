/* The VPCP national document axis (VXP) HTTP API, as the VPCP Java SDK calls it
 * (vn-standards.md §1.11 A): every call is a POST (or GET) to <endpoint>/<operation> carrying
 * the logical headers as XroadVnpt-<name>, the list of their names (XroadVnpt-sign-header-key),
 * their JSON (XroadVnpt-sign-header) and its HMAC-SHA256 (XroadVnpt-hash-header), computed by
 * hub/trust/checksum.h. Answers are JSON {status, ErrorCode, ErrorDesc, ...}. */
#ifndef LT_CONNECTOR_VXP_API_H
#define LT_CONNECTOR_VXP_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/core/cfgmap.h"
#include "hub/core/err.h"
#include "hub/core/plugin.h"

struct vxp_api_cfg {
  char *endpoint;
  char *systemid;
  char *organ_id;
  char *secret_file;
  int64_t timeout_ms;
  char *ca_file;
  char *version;
  char *user_agent;
};

/* clang-format off */
#define VXP_API_ENTRIES(T, f)                                                                                         \
  {"endpoint", HUB_CFG_STR, offsetof(T, f.endpoint), NULL, 1, "base URL of the axis (http or https)"},                \
      {"systemid", HUB_CFG_STR, offsetof(T, f.systemid), NULL, 1, "this system's id on the axis (XroadVnpt-systemid)"}, \
      {"organ_id", HUB_CFG_STR, offsetof(T, f.organ_id), NULL, 1,                                                     \
       "this agency's organisation code (XroadVnpt-from), e.g. 000.00.00.H41"},                                       \
      {"secret_file", HUB_CFG_STR, offsetof(T, f.secret_file), NULL, 1,                                               \
       "file holding the HMAC secret of XroadVnpt-hash-header (first line; read for each call, so it may be "         \
       "rotated)"},                                                                                                   \
      {"timeout", HUB_CFG_DURATION, offsetof(T, f.timeout_ms), "30s", 0, "each call", NULL, NULL, 100, 600000},        \
      {"ca_file", HUB_CFG_STR, offsetof(T, f.ca_file), NULL, 0, "PEM file of the CAs to trust for https"},            \
      {"version", HUB_CFG_STR, offsetof(T, f.version), "3.0.201608", 0, "XroadVnpt-version"},                         \
  {                                                                                                                   \
    "user_agent", HUB_CFG_STR, offsetof(T, f.user_agent), "JAVASDKAgent/1.0.0 XRoad/VPCP", 0,                         \
        "User-Agent (the SDK's by default: some axis front ends filter on it)"                                        \
  }
/* clang-format on */

struct vxp_api;

hub_err_t vxp_api_new(const struct vxp_api_cfg *cfg, const struct hub_plugin_env *env, struct vxp_api **out,
                      char *errbuf, size_t errbuf_size);
void vxp_api_destroy(struct vxp_api *a);
const char *vxp_api_organ_id(const struct vxp_api *a);
/* Sizes the limit of an answer's body from the connector's largest packet: getEdoc carries the
 * packet base64 inside JSON (4/3 of it, plus the envelope). Before it: 4/3 of 64 MiB. */
void vxp_api_set_max_packet(struct vxp_api *a, size_t packet_max);
/* The answer limit that max_packet gives (lgsp-edoc uses the same rule). */
size_t edoc_answer_limit(size_t packet_max);

struct vxp_answer {
  long http_status; /* 0: no answer */
  json_t *json;     /* the parsed body, or NULL */
};
void vxp_answer_release(struct vxp_answer *ans);

/* One call. names/values: logical headers besides systemid, timestamp, servicetype and from
 * (which every call carries); each is signed. plain: extra "Name: value" lines (NULL-terminated
 * or NULL). Returns HUB_OK for HTTP 200 with status OK and ErrorCode "0"; HUB_ERR_DOWNSTREAM
 * when the axis answered FAIL; HUB_ERR_HTTP for another status; HUB_ERR_JSON for a body that
 * is not JSON; HUB_ERR_TOO_LARGE for an answer over the limit vxp_api_set_max_packet set;
 * HUB_ERR_IO/HUB_ERR_TIMEOUT/HUB_ERR_STOPPED when there was no answer. errbuf says
 * which call and why (never the secret). */
hub_err_t vxp_api_call(struct vxp_api *a, const char *op, const char *messagetype, const char *const *names,
                       const char *const *values, size_t n, const char *const *plain, const void *body, size_t len,
                       const char *content_type, struct vxp_answer *ans, char *errbuf, size_t errbuf_size);

#endif
