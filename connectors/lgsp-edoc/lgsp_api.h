/* The provincial LGSP document axis ("trục liên thông", vn-standards.md §1.11 B), a WSO2-style
 * REST API: an OAuth2 client-credentials token (hub/io/http_auth.h: cached, fetched again
 * before it expires and after a 401) and the agency's `secretDonVi` on every call;
 * /vanbans (list, send), /vanbans/{docId} (fetch, status INITIAL|PROCESSING|DONE|FAIL) and
 * /donvilienthongs (the agency registry). Answers are JSON {status, errorCode, errorDesc,
 * data|docId}; gateways answer sloppy JSON at times, so the raw body is reported on failure. */
#ifndef LT_CONNECTOR_LGSP_API_H
#define LT_CONNECTOR_LGSP_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/core/cfgmap.h"
#include "hub/core/err.h"
#include "hub/core/plugin.h"

struct lgsp_api_cfg {
  char *endpoint;
  char *agency_secret_file;
  char *token_url, *client_id, *client_secret_file, *scope;
  int64_t timeout_ms;
  char *ca_file;
};

/* clang-format off */
#define LGSP_API_ENTRIES(T, f)                                                                                        \
  {"endpoint", HUB_CFG_STR, offsetof(T, f.endpoint), NULL, 1,                                                         \
   "base URL of the API, e.g. https://lgsp.example.gov.vn/truclienthong/v1.0.0"},                                     \
      {"agency_secret_file", HUB_CFG_STR, offsetof(T, f.agency_secret_file), NULL, 1,                                 \
       "file holding the agency's secretDonVi (first line; read for each call)"},                                     \
      {"token_url", HUB_CFG_STR, offsetof(T, f.token_url), NULL, 1,                                                   \
       "the OAuth2 token endpoint (client credentials), e.g. https://lgsp.example.gov.vn/token"},                     \
      {"client_id", HUB_CFG_STR, offsetof(T, f.client_id), NULL, 1, "consumer key"},                                  \
      {"client_secret_file", HUB_CFG_STR, offsetof(T, f.client_secret_file), NULL, 1,                                 \
       "file holding the consumer secret (first line)"},                                                              \
      {"scope", HUB_CFG_STR, offsetof(T, f.scope), NULL, 0, "scope to ask for"},                                      \
      {"timeout", HUB_CFG_DURATION, offsetof(T, f.timeout_ms), "30s", 0, "each call (and each token fetch)", NULL,    \
       NULL, 100, 600000},                                                                                            \
  {                                                                                                                   \
    "ca_file", HUB_CFG_STR, offsetof(T, f.ca_file), NULL, 0, "PEM file of the CAs to trust for https"                 \
  }
/* clang-format on */

struct lgsp_api;

hub_err_t lgsp_api_new(const struct lgsp_api_cfg *cfg, const struct hub_plugin_env *env, struct lgsp_api **out,
                       char *errbuf, size_t errbuf_size);
void lgsp_api_destroy(struct lgsp_api *a);

struct lgsp_answer {
  long http_status; /* 0: no answer */
  json_t *json;
};
void lgsp_answer_release(struct lgsp_answer *ans);

/* One call: method, path under the endpoint (already URL-encoded), optional JSON body (not
 * taken). A 401 drops the token and the call is made once more with a new one. HUB_OK for 2xx
 * with status OK/"200"/true and errorCode 0 or absent; HUB_ERR_DOWNSTREAM when the API said no;
 * HUB_ERR_HTTP another status; HUB_ERR_JSON not JSON; HUB_ERR_AUTH the token endpoint refused;
 * HUB_ERR_TOO_LARGE an answer over the limit lgsp_api_set_max_packet set; HUB_ERR_IO/TIMEOUT/STOPPED
 * no answer. */
hub_err_t lgsp_api_call(struct lgsp_api *a, const char *method, const char *path, const json_t *body,
                        struct lgsp_answer *ans, char *errbuf, size_t errbuf_size);
/* "/vanbans/<docId URL-encoded>" etc.: path + "/" + escaped segment (malloc'd). */
char *lgsp_path_new(const char *base, const char *segment);
unsigned long lgsp_api_token_fetches(struct lgsp_api *a);
/* Sizes the limit of an answer's body from the connector's largest packet (base64 in JSON). */
void lgsp_api_set_max_packet(struct lgsp_api *a, size_t packet_max);

#endif
