/* Sink `sms`: one SMS per record through an HTTP SMS gateway (the shared client,
 * hub/io/http_client.h): POST url with {"id", "to", "text", "sender"} as JSON, the record's
 * lt.id as Idempotency-Key (a gateway that keys on it sends a redelivered record once), and the
 * gateway's credentials (hub/io/http_auth.h: bearer token or basic). The number and the text come
 * from templates filled from the record (notify_common.h); text is UTF-8 as written (Vietnamese
 * with its diacritics: the gateway chooses the encoding, UCS-2 on the air).
 * Answers: 2xx OK (result record with the gateway's answer); 5xx, 408, 429, timeouts RETRY;
 * other statuses REJECT with the body; a recipient over its rate limit RETRY after the wait. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hub/core/log.h"
#include "hub/core/registry.h"
#include "hub/engine/connector.h"
#include "hub/io/breaker.h"
#include "hub/io/http_auth.h"
#include "hub/io/http_client.h"
#include "mappings/shape/json.h"
#include "notify_common.h"

struct cfg {
  char *url;
  char *bearer_token_file, *user, *password_file, *ca_file;
  char *to, *text, *sender;
  struct notify_limit_cfg per_recipient;
  int64_t timeout_ms;
  int64_t breaker_failures, breaker_open_ms;
};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"url", HUB_CFG_STR, F(url), NULL, 1, "the gateway's send endpoint (http or https)"},
    {"bearer_token_file", HUB_CFG_STR, F(bearer_token_file), NULL, 0, "file holding the gateway's bearer token"},
    {"user", HUB_CFG_STR, F(user), NULL, 0, "HTTP basic user (with password_file)"},
    {"password_file", HUB_CFG_STR, F(password_file), NULL, 0, "file holding the basic password"},
    {"ca_file", HUB_CFG_STR, F(ca_file), NULL, 0, "PEM file of the CAs to trust (default: the system's)"},
    {"to", HUB_CFG_STR, F(to), "{{phone}}", 0, "template of the recipient's number (+84... or 0...)"},
    {"text", HUB_CFG_STR, F(text), NULL, 1, "template of the message text (UTF-8)"},
    {"sender", HUB_CFG_STR, F(sender), NULL, 0, "the registered sender name (brandname)"},
    {"per_recipient", HUB_CFG_OBJECT, F(per_recipient), NULL, 0, "rate limit per recipient", NULL, &notify_limit_map},
    {"timeout", HUB_CFG_DURATION, F(timeout_ms), "30s", 0, "one call", NULL, NULL, 100, 600000},
    {"breaker_failures", HUB_CFG_INT, F(breaker_failures), "5", 0,
     "calls failing in a row (5xx, timeout, no connection) that open the circuit breaker (0: never)", NULL, NULL, 0,
     1000},
    {"breaker_open_for", HUB_CFG_DURATION, F(breaker_open_ms), "30s", 0,
     "how long the breaker stays open before one probe may go", NULL, NULL, 10, 3600000},
    {NULL},
};
static hub_err_t sms_check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                           size_t errbuf_size) {
  const struct cfg *c = p;
  if (c->url && strncasecmp(c->url, "http://", 7) && strncasecmp(c->url, "https://", 8))
    return hub_node_error(hub_cfg_value_at(node, at, "url"), errbuf, errbuf_size,
                          "url must start with http:// or https://");
  if (!!c->user != !!c->password_file)
    return hub_node_error(hub_cfg_value_at(node, at, c->user ? "password_file" : "user"), errbuf, errbuf_size,
                          "user and password_file go together");
  if (c->user && c->bearer_token_file)
    return hub_node_error(hub_cfg_value_at(node, at, "user"), errbuf, errbuf_size,
                          "give one of bearer_token_file and user/password_file");
  return HUB_OK;
}
static const struct hub_cfg_constraint rules[] = {
    {"url starts with http:// or https://", "url", "{url: 'smtp://x', text: t}", "{url: 'https://x', text: t}"},
    {"user and password_file go together", "user", "{url: 'http://x', text: t, user: u}", NULL},
    {"one of bearer_token_file and basic", "user",
     "{url: 'http://x', text: t, user: u, password_file: p, bearer_token_file: b}", NULL},
    {NULL},
};
static const struct hub_cfg_map map = {"sms", entries, .check = sms_check, .constraints = rules};

struct state {
  const struct cfg *cfg;
  char *ca_file;
  struct hub_http_tls tls;
  struct hub_http_auth *auth;
  struct notify_tpl *to, *text;
  struct notify_limit *limit;
  struct hub_breaker *breaker;
};

static void sms_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  free(s->ca_file);
  hub_http_auth_destroy(s->auth);
  notify_tpl_destroy(s->to);
  notify_tpl_destroy(s->text);
  notify_limit_destroy(s->limit);
  hub_breaker_destroy(s->breaker);
  free(s);
}

static hub_err_t sms_create(const void *cfgp, const struct hub_plugin_env *env, void **state, char *errbuf,
                            size_t errbuf_size) {
  const struct cfg *c = cfgp;
  struct state *s = calloc(1, sizeof *s);
  char *tok = NULL, *pw = NULL, e[512];
  hub_err_t rc = HUB_ERR_NOMEM;
  *state = NULL;
  if (!s) return rc;
  s->cfg = c;
  if ((c->ca_file && !(s->ca_file = hub_plugin_env_path_new(env, c->ca_file))) ||
      (c->bearer_token_file && !(tok = hub_plugin_env_path_new(env, c->bearer_token_file))) ||
      (c->password_file && !(pw = hub_plugin_env_path_new(env, c->password_file))))
    goto out;
  s->tls = (struct hub_http_tls){s->ca_file, NULL, NULL};
  struct hub_http_auth_cfg ac = {.kind = tok  ? HUB_HTTP_AUTH_BEARER
                                         : pw ? HUB_HTTP_AUTH_BASIC
                                              : HUB_HTTP_AUTH_NONE,
                                 .token_file = tok,
                                 .user = c->user,
                                 .password_file = pw,
                                 .tls = &s->tls};
  if (hub_http_auth_new(&ac, &s->auth) != HUB_OK) goto out;
  const char *secret = tok ? tok : pw;
  /* Read for each call (so it may be rotated); missing now is worth a word, not a refusal:
   * lint runs where the secrets are not. */
  if (secret && access(secret, R_OK) != 0)
    hub_log(HUB_LOG_WARN, env && env->owner ? env->owner : "sms", "cannot read %s yet: %s", secret, strerror(errno));
  if ((rc = notify_tpl_new(c->to, "to", &s->to, e, sizeof e)) != HUB_OK ||
      (rc = notify_tpl_new(c->text, "text", &s->text, e, sizeof e)) != HUB_OK) {
    if (rc == HUB_ERR_CONFIG)
      hub_node_error(hub_plugin_env_at(env, s->to ? "text" : "to"), errbuf, errbuf_size, "%s", e);
    goto out;
  }
  rc = HUB_ERR_NOMEM;
  if (c->per_recipient.count > 0 && !(s->limit = notify_limit_new(c->per_recipient.count, c->per_recipient.per_ms,
                                                                  (size_t)c->per_recipient.recipients)))
    goto out;
  /* The breaker's endpoint (a /metrics label) is scheme://authority: a query may hold a key. */
  const char *host = strstr(c->url, "://");
  char endpoint[256];
  snprintf(endpoint, sizeof endpoint, "%.*s", (int)(host ? strcspn(host + 3, "/?#") + (size_t)(host + 3 - c->url) : 0),
           c->url);
  for (char *q = endpoint; *q; q++)
    if (*q == '"' || *q == '\\') *q = '_';
  if (!(s->breaker = hub_breaker_new(env && env->owner ? env->owner : "sms", endpoint, (int)c->breaker_failures,
                                     c->breaker_open_ms)))
    goto out;
  rc = HUB_OK;
out:
  free(tok);
  free(pw);
  if (rc != HUB_OK) {
    if (rc == HUB_ERR_NOMEM) snprintf(errbuf, errbuf_size, "sms: out of memory");
    sms_destroy(s);
    return rc;
  }
  *state = s;
  return HUB_OK;
}

/* Vietnamese numbers as gateways take them: + and 8 to 15 digits, spaces, dots and dashes dropped. */
static int phone_normalise(char *p) {
  char *w = p;
  for (const char *r = p; *r; r++) {
    if (*r == ' ' || *r == '.' || *r == '-') continue;
    if (!((*r >= '0' && *r <= '9') || (*r == '+' && r == p))) return 0;
    *w++ = *r;
  }
  *w = 0;
  size_t digits = strlen(p) - (*p == '+');
  return digits >= 8 && digits <= 15;
}

static enum hub_step_result sms_deliver(void *p, const struct hub_msg *in, struct hub_msg **result,
                                        struct hub_step_outcome *out) {
  struct state *s = p;
  const struct cfg *c = s->cfg;
  json_t *doc = NULL, *req = NULL, *answer = NULL;
  char *to = NULL, *text = NULL, *body = NULL, *auth_hdr = NULL, *user = NULL, *password = NULL, e[512], idh[128];
  struct hub_http_response resp = {0};
  enum hub_step_result sr = HUB_STEP_OK;
  const char *id = hub_msg_header_get_str(in, HUB_H_ID);
  if (lt_json_parse(in->value, in->value_len, "notice", &doc, e, sizeof e) != HUB_OK) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_JSON, "sms: %s", e);
    goto out;
  }
  if (!(to = notify_tpl_render(s->to, doc, e, sizeof e)) || !(text = notify_tpl_render(s->text, doc, e, sizeof e))) {
    sr = *e ? hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_NOT_FOUND, "sms: %s", e)
            : hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "sms: out of memory");
    goto out;
  }
  if (!phone_normalise(to)) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA, "sms: recipient '%.100s' is not a phone number", to);
    goto out;
  }
  if (s->limit) {
    int64_t wait = notify_limit_take(s->limit, to);
    if (wait > 0) {
      sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_TIMEOUT, "sms: recipient over its rate limit for %lld ms",
                         (long long)wait);
      out->retry_after_ms = wait;
      goto out;
    }
  }
  req = json_pack("{s:s?,s:s,s:s,s:s?}", "id", id, "to", to, "text", text, "sender", c->sender);
  if (!req || !(body = json_dumps(req, JSON_COMPACT))) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "sms: out of memory");
    goto out;
  }
  int64_t wait_ms = 0;
  if (!hub_breaker_allow(s->breaker, &wait_ms)) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_UNAVAILABLE, "sms: circuit breaker for %s is open", c->url);
    out->retry_after_ms = wait_ms;
    goto out;
  }
  hub_err_t rc = hub_http_auth_apply(s->auth, c->timeout_ms, &auth_hdr, &user, &password, e, sizeof e);
  if (rc != HUB_OK) {
    hub_breaker_cancel(s->breaker);
    sr = hub_step_fail(out, HUB_STEP_RETRY, rc, "sms: %s", e);
    goto out;
  }
  snprintf(idh, sizeof idh, "Idempotency-Key: %s", id ? id : "");
  const char *hv[] = {"Content-Type: application/json; charset=utf-8", id ? idh : NULL, auth_hdr, NULL};
  if (!id) hv[1] = auth_hdr, hv[2] = NULL;
  struct hub_http_request hr = {.method = "POST",
                                .url = c->url,
                                .headers = hv,
                                .body = body,
                                .body_len = strlen(body),
                                .timeout_ms = c->timeout_ms,
                                .tls = &s->tls,
                                .basic_user = user,
                                .basic_password = password};
  rc = hub_http_perform(&hr, &resp);
  if (rc == HUB_ERR_STOPPED)
    hub_breaker_cancel(s->breaker);
  else
    hub_breaker_record(s->breaker, rc == HUB_OK && resp.status < 500);
  if (rc != HUB_OK) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, rc, "sms: %s", resp.error);
    goto out;
  }
  long st = resp.status;
  if (st >= 200 && st < 300) {
    json_t *extra = json_pack("{s:i}", "status", (int)st);
    if (extra && resp.body_len && lt_json_parse(resp.body, resp.body_len, "answer", &answer, NULL, 0) == HUB_OK) {
      json_object_set(extra, "answer", answer);
    }
    if (!(*result = notify_result_new("sms", to, "sent", id, extra)))
      sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "sms: out of memory");
    goto out;
  }
  int retry = st >= 500 || st == 408 || st == 429;
  sr = hub_step_fail(out, retry ? HUB_STEP_RETRY : HUB_STEP_REJECT, HUB_ERR_HTTP,
                     "sms gateway %s answered HTTP %ld: %.300s", c->url, st, resp.body ? (const char *)resp.body : "");
  if (st == 429 || st == 503) {
    int64_t ra = hub_http_retry_after_ms(hub_http_response_header(&resp, "retry-after"), time(NULL));
    if (ra > 0) out->retry_after_ms = ra;
  }
out:
  hub_http_response_release(&resp);
  free(auth_hdr);
  free(user);
  if (password) memset(password, 0, strlen(password));
  free(password);
  free(body);
  free(to);
  free(text);
  json_decref(answer);
  json_decref(req);
  json_decref(doc);
  return sr;
}

static int sms_health(void *p, char *why, size_t why_size) {
  struct state *s = p;
  return hub_breaker_health(s->breaker, why, why_size);
}

static const struct hub_sink_ops ops = {
    .info = {.name = "sms",
             .summary = "an SMS per record through an HTTP SMS gateway, from UTF-8 templates (Idempotency-Key: lt.id)",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = sms_create,
    .deliver = sms_deliver,
    .health = sms_health,
    .destroy = sms_destroy,
};
HUB_SINK_PLUGIN(hub_plugin_sink_sms, ops);
