/* The VNPost public postal service API (vn-standards.md §4.1) as the `vnpost` sink and the
 * `vnpost-tracking` source call it: one of two variants, LGSP (POST {url}?service=NAME with a
 * Bearer token from the provincial gateway) or direct (POST {url}/PATH), OAuth2 client
 * credentials (hub/io/http_auth.h), TLS files, a timeout and a circuit breaker per endpoint.
 * Both plugins embed `struct vnpost_api_cfg` first in their config struct and list
 * VNPOST_API_ENTRIES in their config map, so the options are written and documented once. */
#ifndef LT_VNPOST_API_H
#define LT_VNPOST_API_H
#include <stddef.h>
#include <stdint.h>

#include "hub/core/cfgmap.h"
#include "hub/core/err.h"
#include "hub/core/plugin.h"
#include "hub/io/http_client.h"

enum vnpost_op { VNPOST_ORDER_POST, VNPOST_ORDER_CANCEL, VNPOST_TRACKING, VNPOST_PRICE, VNPOST_OPS };

struct vnpost_services_cfg {
  char *names[VNPOST_OPS]; /* LGSP service names, or direct paths */
};
struct vnpost_oauth2_cfg {
  char *token_url, *client_id, *client_secret_file, *scope;
};
struct vnpost_tls_cfg {
  char *ca_file, *cert_file, *key_file;
};
struct vnpost_api_cfg {
  int variant; /* 0 lgsp, 1 direct */
  char *url;
  struct vnpost_services_cfg services; /* lgsp: service names */
  struct vnpost_services_cfg paths;    /* direct: paths under url */
  struct vnpost_oauth2_cfg oauth2;
  struct vnpost_tls_cfg tls;
  int64_t timeout_ms;
  int64_t breaker_failures, breaker_open_ms;
};

extern const struct hub_cfg_map vnpost_services_map, vnpost_paths_map, vnpost_oauth2_map, vnpost_tls_map;

/* The entries of struct vnpost_api_cfg (which must sit at offset 0 of the plugin's struct). */
/* clang-format off */
#define VNPOST_API_ENTRIES \
  {"variant", HUB_CFG_ENUM, offsetof(struct vnpost_api_cfg, variant), "lgsp", 0, \
   "lgsp: POST url?service=NAME through the provincial gateway; direct: POST url/PATH", "lgsp|direct"}, \
  {"url", HUB_CFG_STR, offsetof(struct vnpost_api_cfg, url), NULL, 1, \
   "lgsp: the gateway's VNPost endpoint; direct: the API's base URL (http or https)"}, \
  {"services", HUB_CFG_OBJECT, offsetof(struct vnpost_api_cfg, services), NULL, 0, \
   "lgsp: the gateway's service names", NULL, &vnpost_services_map}, \
  {"paths", HUB_CFG_OBJECT, offsetof(struct vnpost_api_cfg, paths), NULL, 0, \
   "direct: the paths under url", NULL, &vnpost_paths_map}, \
  {"oauth2", HUB_CFG_OBJECT, offsetof(struct vnpost_api_cfg, oauth2), NULL, 0, \
   "OAuth2 client credentials (token cached, fetched again before expiry or after a 401)", NULL, &vnpost_oauth2_map}, \
  {"tls", HUB_CFG_OBJECT, offsetof(struct vnpost_api_cfg, tls), NULL, 0, \
   "TLS files", NULL, &vnpost_tls_map}, \
  {"timeout", HUB_CFG_DURATION, offsetof(struct vnpost_api_cfg, timeout_ms), "30s", 0, \
   "each call", NULL, NULL, 100, 600000}, \
  {"breaker_failures", HUB_CFG_INT, offsetof(struct vnpost_api_cfg, breaker_failures), "5", 0, \
   "consecutive failures (5xx, timeout) that open the circuit breaker (0: never)", NULL, NULL, 0, 1000}, \
  {"breaker_open_for", HUB_CFG_DURATION, offsetof(struct vnpost_api_cfg, breaker_open_ms), "30s", 0, \
   "how long the breaker stays open before one probe may go", NULL, NULL, 10, 3600000}
/* clang-format on */

/* Checks url and oauth2 (for the plugin's map `check`). */
hub_err_t vnpost_api_check(const struct vnpost_api_cfg *c, const struct hub_node *node, const struct hub_node *at,
                           char *errbuf, size_t errbuf_size);

struct vnpost_api;
/* Reads nothing and connects nowhere (lint creates it). */
hub_err_t vnpost_api_new(const struct vnpost_api_cfg *c, const struct hub_plugin_env *env, struct vnpost_api **out,
                         char *errbuf, size_t errbuf_size);
void vnpost_api_destroy(struct vnpost_api *a);

/* The outcome of one call. */
enum vnpost_call_rc {
  VNPOST_ANSWERED, /* resp->status holds the answer (any status but a 401 after a fresh token) */
  VNPOST_RETRY,    /* no answer, timeout, breaker open, no token: try again later (why in errbuf) */
  VNPOST_STOPPED,  /* the hub is stopping */
};
/* POSTs body (JSON) to op's endpoint with the token; a 401 drops the cached token and tries
 * once more with a new one. *retry_after_ms is set when the breaker is open. The breaker counts
 * 5xx and transport failures. resp is released by the caller. */
enum vnpost_call_rc vnpost_api_call(struct vnpost_api *a, enum vnpost_op op, const char *idempotency_key,
                                    const char *body, size_t body_len, struct hub_http_response *resp,
                                    int64_t *retry_after_ms, char *errbuf, size_t errbuf_size);
/* op's name for messages ("orderPost" or "order/post"). */
const char *vnpost_api_op_name(const struct vnpost_api *a, enum vnpost_op op);
int vnpost_api_health(struct vnpost_api *a, char *why, size_t why_size);

#endif
