/* Sink `onestop-outcome`: tells the one-stop system what became of its dossier events. It reads
 * either a result topic (a sink's outcome records, e.g. the dvcqg connector's) or a dead-letter
 * topic (a refused record, with lt.error.* headers), and POSTs one outcome per record to
 * `url` + `path` (${key} = the dossier code) as JSON:
 *   {"dossierCode", "system", "outcome": "OK"|"REJECTED", "type": lt.type, "eventId" (the
 *    one-stop event it answers, header onestop.event-id),
 *    "result": the result record (OK), "reason", "code", "stage" (REJECTED)}
 * signed like the events the one-stop system sends (X-Signature-256: sha256=HMAC-SHA256 of the
 * body with the shared secret) and with Idempotency-Key = lt.id, so a resend after a crash is
 * recognisable. 2xx: OK; 5xx, 408, 429 and no answer: RETRY; any other status: REJECT. */
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hub/core/files.h"
#include "hub/core/registry.h"
#include "hub/engine/connector.h"
#include "hub/io/breaker.h"
#include "hub/io/http_client.h"
#include "hub/trust/checksum.h"
#include "mappings/shape/json.h"

struct cfg {
  char *url, *path, *secret_file, *system;
  int64_t timeout_ms;
};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"url", HUB_CFG_STR, F(url), NULL, 1, "the one-stop system's REST base URL (http:// or https://)"},
    {"path", HUB_CFG_STR, F(path), "/api/lienthong/dossiers/${key}/outcomes", 0,
     "where an outcome is POSTed; ${key} is the record key (the dossier code), URL-encoded"},
    {"hmac_sha256_secret_file", HUB_CFG_STR, F(secret_file), NULL, 1,
     "file with the secret shared with the one-stop system: each outcome carries X-Signature-256: sha256=HEX"},
    {"system", HUB_CFG_STR, F(system), "dvcqg", 0,
     "the system the outcomes are about, as the one-stop system names it"},
    {"timeout", HUB_CFG_DURATION, F(timeout_ms), "30s", 0, "each call", NULL, NULL, 100, 600000},
    {NULL},
};

static hub_err_t check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                       size_t errbuf_size) {
  const struct cfg *c = p;
  if (c->url && strncasecmp(c->url, "http://", 7) && strncasecmp(c->url, "https://", 8))
    return hub_node_error(hub_cfg_value_at(node, at, "url"), errbuf, errbuf_size,
                          "url must start with http:// or https://");
  if (c->path && c->path[0] != '/')
    return hub_node_error(hub_cfg_value_at(node, at, "path"), errbuf, errbuf_size, "path must start with /");
  return HUB_OK;
}
static const struct hub_cfg_constraint constraints[] = {
    {"url starts with http:// or https://; path starts with /", "url",
     "{url: 'ftp://127.0.0.1', hmac_sha256_secret_file: s}", NULL},
    {NULL},
};
static const struct hub_cfg_map map = {"onestop-outcome", entries, .check = check, .constraints = constraints};

struct state {
  const struct cfg *cfg;
  char *secret;
  size_t secret_len;
  char *endpoint;
  struct hub_breaker *breaker;
};

static void oo_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  hub_secret_free(s->secret, s->secret_len);
  free(s->endpoint);
  hub_breaker_destroy(s->breaker);
  free(s);
}

static hub_err_t oo_create(const void *cfgp, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  const struct cfg *c = cfgp;
  struct state *s = calloc(1, sizeof *s);
  *state = NULL;
  if (!s) return HUB_ERR_NOMEM;
  s->cfg = c;
  char *path = hub_plugin_env_path_new(env, c->secret_file), why[600];
  hub_err_t rc = path ? hub_secret_read(path, 4096, 16, &s->secret, &s->secret_len, why, sizeof why) : HUB_ERR_NOMEM;
  free(path);
  if (rc != HUB_OK) {
    rc = hub_node_error(hub_plugin_env_at(env, "hmac_sha256_secret_file"), errbuf, errbuf_size,
                        "hmac_sha256_secret_file: %s", rc == HUB_ERR_NOMEM ? "out of memory" : why);
    oo_destroy(s);
    return rc;
  }
  const char *host = strstr(c->url, "://");
  size_t n = host ? strcspn(host + 3, "/?#") + (size_t)(host + 3 - c->url) : strlen(c->url);
  const char *owner = env && env->owner ? env->owner : "onestop-outcome";
  if (!(s->endpoint = strndup(c->url, n)) || !(s->breaker = hub_breaker_new(owner, s->endpoint, 5, 10000))) {
    oo_destroy(s);
    snprintf(errbuf, errbuf_size, "onestop-outcome: out of memory");
    return HUB_ERR_NOMEM;
  }
  *state = s;
  return HUB_OK;
}

/* url + path with ${key} replaced by the URL-encoded key (malloc'd). */
static char *target(const struct cfg *c, const char *key, size_t key_len) {
  char *esc = curl_easy_escape(NULL, key, (int)key_len);
  if (!esc) return NULL;
  const char *at = strstr(c->path, "${key}");
  size_t n = strlen(c->url) + strlen(c->path) + strlen(esc) + 1;
  char *r = malloc(n);
  if (r && at)
    snprintf(r, n, "%s%.*s%s%s", c->url, (int)(at - c->path), c->path, esc, at + 6);
  else if (r)
    snprintf(r, n, "%s%s", c->url, c->path);
  curl_free(esc);
  return r;
}

static void set_header(json_t *o, const char *name, const struct hub_msg *in, const char *header) {
  const char *v = hub_msg_header_get_str(in, header);
  if (v) json_object_set_new(o, name, json_string(v));
}

static enum hub_step_result oo_deliver(void *p, const struct hub_msg *in, struct hub_msg **result,
                                       struct hub_step_outcome *out) {
  struct state *s = p;
  (void)result;
  enum hub_step_result sr = HUB_STEP_OK;
  char *key = in->key && in->key_len ? strndup((const char *)in->key, in->key_len) : NULL, *url = NULL, *text = NULL;
  json_t *o = json_object(), *value = NULL;
  struct hub_http_response resp = {0};
  if (!key) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_NOT_FOUND, "the record has no key (the dossier code)");
    goto out;
  }
  int rejected = hub_msg_header_get(in, HUB_H_ERROR_REASON) != NULL;
  char e[256];
  json_object_set_new(o, "dossierCode", json_string(key));
  json_object_set_new(o, "system", json_string(s->cfg->system));
  json_object_set_new(o, "outcome", json_string(rejected ? "REJECTED" : "OK"));
  set_header(o, "type", in, HUB_H_TYPE);
  set_header(o, "eventId", in, "onestop.event-id"); /* set by the onestop source, kept downstream */
  if (rejected) {
    set_header(o, "reason", in, HUB_H_ERROR_REASON);
    set_header(o, "code", in, HUB_H_ERROR_CODE);
    set_header(o, "stage", in, HUB_H_ERROR_STAGE);
  } else if (lt_json_parse(in->value, in->value_len, "value", &value, e, sizeof e) == HUB_OK) {
    json_object_set(o, "result", value);
  } else {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_JSON, "a result record that is not JSON: %s", e);
    goto out;
  }
  if (!(text = json_dumps(o, JSON_COMPACT)) || !(url = target(s->cfg, key, strlen(key)))) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  char mac[65], sig[128], idem[128];
  hub_vxp_hash_header(s->secret, s->secret_len, text, strlen(text), mac);
  snprintf(sig, sizeof sig, "X-Signature-256: sha256=%s", mac);
  const char *id = hub_msg_header_get_str(in, HUB_H_ID);
  snprintf(idem, sizeof idem, "Idempotency-Key: %s-%s", rejected ? "rejected" : "ok", id ? id : key);
  const char *hv[] = {"Content-Type: application/json", sig, idem, NULL};
  int64_t wait_ms = 0;
  if (!hub_breaker_allow(s->breaker, &wait_ms)) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_UNAVAILABLE, "circuit breaker for %s is open", s->endpoint);
    out->retry_after_ms = wait_ms;
    goto out;
  }
  struct hub_http_request req = {.method = "POST",
                                 .url = url,
                                 .headers = hv,
                                 .body = text,
                                 .body_len = strlen(text),
                                 .timeout_ms = s->cfg->timeout_ms,
                                 .max_body = 65536};
  hub_err_t rc = hub_http_perform(&req, &resp);
  if (rc != HUB_OK) {
    if (rc == HUB_ERR_STOPPED)
      hub_breaker_cancel(s->breaker);
    else
      hub_breaker_record(s->breaker, 0);
    sr = hub_step_fail(out, HUB_STEP_RETRY, rc, "%s", resp.error);
    goto out;
  }
  hub_breaker_record(s->breaker, resp.status < 500);
  if (resp.status >= 200 && resp.status < 300) goto out;
  int retry = resp.status >= 500 || resp.status == 408 || resp.status == 429;
  sr = hub_step_fail(out, retry ? HUB_STEP_RETRY : HUB_STEP_REJECT, HUB_ERR_HTTP, "POST %s answered HTTP %ld: %.300s",
                     url, resp.status, resp.body ? (const char *)resp.body : "");
out:
  hub_http_response_release(&resp);
  json_decref(value);
  json_decref(o);
  free(text);
  free(url);
  free(key);
  return sr;
}

static int oo_health(void *p, char *why, size_t why_size) {
  return hub_breaker_health(((struct state *)p)->breaker, why, why_size);
}

static const struct hub_sink_ops ops = {
    .info = {.name = "onestop-outcome",
             .summary = "outcomes (results and refusals) back to the one-stop system, HMAC-signed, one per record",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = oo_create,
    .deliver = oo_deliver,
    .health = oo_health,
    .destroy = oo_destroy,
};
HUB_SINK_PLUGIN(hub_plugin_sink_onestop_outcome, ops);
