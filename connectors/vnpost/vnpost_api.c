/* The VNPost API client shared by the `vnpost` sink and the `vnpost-tracking` source: the
 * variant's URL for each operation, OAuth2 client credentials, the circuit breaker. */
#include "vnpost_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "hub/core/log.h"
#include "hub/io/breaker.h"
#include "hub/io/http_auth.h"

/* Defaults: the LGSP service names OpenCPS configures (orderPost, orderCancel, orderTracking,
 * getPrice) and paths named after the NGSP SDK's calls for the direct variant [I]. */
#define S(f) offsetof(struct vnpost_services_cfg, names[f])
static const struct hub_cfg_entry service_entries[] = {
    {"order_post", HUB_CFG_STR, S(VNPOST_ORDER_POST), "orderPost", 0, "creates an order (postOrder)"},
    {"order_cancel", HUB_CFG_STR, S(VNPOST_ORDER_CANCEL), "orderCancel", 0, "cancels an order (cancelOrder)"},
    {"order_tracking", HUB_CFG_STR, S(VNPOST_TRACKING), "orderTracking", 0,
     "a page of tracking entries after lastId (getOrderTracking)"},
    {"price", HUB_CFG_STR, S(VNPOST_PRICE), "getPrice", 0, "the postage of an order (price HCC)"},
    {NULL},
};
const struct hub_cfg_map vnpost_services_map = {"services", service_entries};
static const struct hub_cfg_entry path_entries[] = {
    {"order_post", HUB_CFG_STR, S(VNPOST_ORDER_POST), "order/post", 0, "creates an order"},
    {"order_cancel", HUB_CFG_STR, S(VNPOST_ORDER_CANCEL), "order/cancel", 0, "cancels an order"},
    {"order_tracking", HUB_CFG_STR, S(VNPOST_TRACKING), "order/tracking", 0, "a page of tracking entries"},
    {"price", HUB_CFG_STR, S(VNPOST_PRICE), "price", 0, "the postage of an order"},
    {NULL},
};
const struct hub_cfg_map vnpost_paths_map = {"paths", path_entries};

#define O(f) offsetof(struct vnpost_oauth2_cfg, f)
static const struct hub_cfg_entry oauth2_entries[] = {
    {"token_url", HUB_CFG_STR, O(token_url), NULL, 0, "the token endpoint (LGSP: https://api.../token)"},
    {"client_id", HUB_CFG_STR, O(client_id), NULL, 0, "consumer key"},
    {"client_secret_file", HUB_CFG_STR, O(client_secret_file), NULL, 0, "file holding the consumer secret"},
    {"scope", HUB_CFG_STR, O(scope), NULL, 0, "scope to ask for"},
    {NULL},
};
const struct hub_cfg_map vnpost_oauth2_map = {"oauth2", oauth2_entries};

#define T(f) offsetof(struct vnpost_tls_cfg, f)
static const struct hub_cfg_entry tls_entries[] = {
    {"ca_file", HUB_CFG_STR, T(ca_file), NULL, 0, "PEM file of the CAs to trust (default: the system's)"},
    {"cert_file", HUB_CFG_STR, T(cert_file), NULL, 0, "client certificate (PEM)"},
    {"key_file", HUB_CFG_STR, T(key_file), NULL, 0, "its private key (PEM)"},
    {NULL},
};
const struct hub_cfg_map vnpost_tls_map = {"tls", tls_entries};

hub_err_t vnpost_api_check(const struct vnpost_api_cfg *c, const struct hub_node *node, const struct hub_node *at,
                           char *errbuf, size_t errbuf_size) {
  if (c->url && strncasecmp(c->url, "http://", 7) != 0 && strncasecmp(c->url, "https://", 8) != 0)
    return hub_node_error(hub_cfg_value_at(node, at, "url"), errbuf, errbuf_size,
                          "url must start with http:// or https://");
  if (c->url && c->variant == 0 && strchr(c->url, '?'))
    return hub_node_error(hub_cfg_value_at(node, at, "url"), errbuf, errbuf_size,
                          "url: the lgsp variant adds ?service=NAME itself; give the URL without a query");
  const struct vnpost_oauth2_cfg *o = &c->oauth2;
  int any = o->token_url || o->client_id || o->client_secret_file || o->scope;
  if (any && (!o->token_url || !o->client_id || !o->client_secret_file))
    return hub_node_error(hub_cfg_value_at(node, at, "oauth2"), errbuf, errbuf_size,
                          "oauth2 needs token_url, client_id and client_secret_file");
  if (!c->tls.cert_file != !c->tls.key_file)
    return hub_node_error(hub_cfg_value_at(node, at, "tls"), errbuf, errbuf_size,
                          "tls: cert_file and key_file go together");
  return HUB_OK;
}

struct vnpost_api {
  const struct vnpost_api_cfg *cfg;
  char *url[VNPOST_OPS];
  char *ca_file, *cert_file, *key_file;
  struct hub_http_tls tls;
  struct hub_http_auth *auth;
  struct hub_breaker *breaker;
};

void vnpost_api_destroy(struct vnpost_api *a) {
  if (!a) return;
  for (int i = 0; i < VNPOST_OPS; i++)
    free(a->url[i]);
  free(a->ca_file);
  free(a->cert_file);
  free(a->key_file);
  hub_http_auth_destroy(a->auth);
  hub_breaker_destroy(a->breaker);
  free(a);
}

static char *path_or_null(const struct hub_plugin_env *env, const char *p, int *oom) {
  if (!p) return NULL;
  char *r = hub_plugin_env_path_new(env, p);
  if (!r) *oom = 1;
  return r;
}

hub_err_t vnpost_api_new(const struct vnpost_api_cfg *c, const struct hub_plugin_env *env, struct vnpost_api **out,
                         char *errbuf, size_t errbuf_size) {
  struct vnpost_api *a = calloc(1, sizeof *a);
  char *secret = NULL;
  hub_err_t rc = HUB_ERR_NOMEM;
  int oom = 0;
  *out = NULL;
  if (!a) goto out;
  a->cfg = c;
  size_t ulen = strlen(c->url);
  while (ulen && c->url[ulen - 1] == '/')
    ulen--;
  for (int i = 0; i < VNPOST_OPS; i++) {
    const char *name = c->variant == 0 ? c->services.names[i] : c->paths.names[i];
    while (c->variant == 1 && *name == '/')
      name++;
    size_t n = ulen + strlen(name) + 16;
    if (!(a->url[i] = malloc(n))) goto out;
    if (c->variant == 0)
      snprintf(a->url[i], n, "%s?service=%s", c->url, name);
    else
      snprintf(a->url[i], n, "%.*s/%s", (int)ulen, c->url, name);
  }
  a->ca_file = path_or_null(env, c->tls.ca_file, &oom);
  a->cert_file = path_or_null(env, c->tls.cert_file, &oom);
  a->key_file = path_or_null(env, c->tls.key_file, &oom);
  a->tls = (struct hub_http_tls){a->ca_file, a->cert_file, a->key_file};
  struct hub_http_auth_cfg ac = {.kind = HUB_HTTP_AUTH_NONE, .tls = &a->tls};
  if (c->oauth2.token_url) {
    ac.kind = HUB_HTTP_AUTH_OAUTH2;
    ac.token_url = c->oauth2.token_url;
    ac.client_id = c->oauth2.client_id;
    ac.client_secret_file = secret = path_or_null(env, c->oauth2.client_secret_file, &oom);
    ac.scope = c->oauth2.scope;
  }
  if (oom || hub_http_auth_new(&ac, &a->auth) != HUB_OK) goto out;
  /* Read at each token fetch (so it may be rotated); missing now is worth a word, not a refusal:
   * lint runs where the secrets are not. */
  if (secret && access(secret, R_OK) != 0)
    hub_log(HUB_LOG_WARN, env && env->owner ? env->owner : "vnpost", "oauth2: cannot read %s yet: %s", secret,
            strerror(errno));
  /* The endpoint label: scheme://authority of the URL. */
  const char *host = strstr(c->url, "://");
  size_t n = host ? strcspn(host + 3, "/?#") + (size_t)(host + 3 - c->url) : ulen;
  char endpoint[256];
  snprintf(endpoint, sizeof endpoint, "%.*s", (int)n, c->url);
  for (char *q = endpoint; *q; q++)
    if (*q == '"' || *q == '\\') *q = '_';
  if (!(a->breaker = hub_breaker_new(env && env->owner ? env->owner : "vnpost", endpoint, (int)c->breaker_failures,
                                     c->breaker_open_ms)))
    goto out;
  rc = HUB_OK;
out:
  free(secret);
  if (rc != HUB_OK) {
    if (rc == HUB_ERR_NOMEM) snprintf(errbuf, errbuf_size, "vnpost: out of memory");
    vnpost_api_destroy(a);
    a = NULL;
  }
  *out = a;
  return rc;
}

const char *vnpost_api_op_name(const struct vnpost_api *a, enum vnpost_op op) {
  return a->cfg->variant == 0 ? a->cfg->services.names[op] : a->cfg->paths.names[op];
}

enum vnpost_call_rc vnpost_api_call(struct vnpost_api *a, enum vnpost_op op, const char *idempotency_key,
                                    const char *body, size_t body_len, struct hub_http_response *resp,
                                    int64_t *retry_after_ms, char *errbuf, size_t errbuf_size) {
  char *auth_hdr = NULL, *user = NULL, *password = NULL, idem[160];
  enum vnpost_call_rc rc = VNPOST_RETRY;
  const char *hv[4] = {"Content-Type: application/json; charset=utf-8", NULL, NULL, NULL};
  size_t nh = 1;
  if (idempotency_key) {
    snprintf(idem, sizeof idem, "Idempotency-Key: %s", idempotency_key);
    hv[nh++] = idem;
  }
  struct hub_http_request req = {.method = "POST",
                                 .url = a->url[op],
                                 .headers = hv,
                                 .body = body,
                                 .body_len = body_len,
                                 .timeout_ms = a->cfg->timeout_ms,
                                 .tls = &a->tls};
  for (int round = 0; round < 2; round++) {
    int64_t wait_ms = 0;
    if (!hub_breaker_allow(a->breaker, &wait_ms)) {
      snprintf(errbuf, errbuf_size, "circuit breaker for %s is open", a->cfg->url);
      if (retry_after_ms) *retry_after_ms = wait_ms;
      goto out;
    }
    free(auth_hdr);
    auth_hdr = NULL;
    hub_err_t e = hub_http_auth_apply(a->auth, a->cfg->timeout_ms, &auth_hdr, &user, &password, errbuf, errbuf_size);
    if (e != HUB_OK) {
      hub_breaker_cancel(a->breaker);
      goto out;
    }
    hv[nh] = auth_hdr;
    hv[nh + 1] = NULL;
    hub_http_response_release(resp);
    memset(resp, 0, sizeof *resp);
    e = hub_http_perform(&req, resp);
    if (e != HUB_OK) {
      if (e == HUB_ERR_STOPPED) {
        hub_breaker_cancel(a->breaker);
        rc = VNPOST_STOPPED;
      } else {
        hub_breaker_record(a->breaker, 0);
      }
      snprintf(errbuf, errbuf_size, "%s", resp->error);
      goto out;
    }
    if (resp->status == 401 && round == 0 && auth_hdr) { /* an expired or revoked token: fetch a new one */
      hub_breaker_record(a->breaker, 1);
      hub_http_auth_rejected(a->auth, auth_hdr);
      continue;
    }
    hub_breaker_record(a->breaker, resp->status < 500);
    rc = VNPOST_ANSWERED;
    goto out;
  }
out:
  free(auth_hdr);
  free(user);
  if (password) memset(password, 0, strlen(password));
  free(password);
  return rc;
}

int vnpost_api_health(struct vnpost_api *a, char *why, size_t why_size) {
  return hub_breaker_health(a->breaker, why, why_size);
}
