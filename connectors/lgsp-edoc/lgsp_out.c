/* Sink `lgsp-edoc-out`: sends each edXML record to a provincial LGSP document axis (POST
 * /vanbans: the packet's bytes in base64, loaiVanBan `edoc` or `status` from the packet; the
 * answer's docId goes to the result topic), and keeps the axis's agency registry
 * (/donvilienthongs) from records typed `lgsp.agency.register` (value: {code, pcode, name,
 * email, fax, mobile}) or `lgsp.agency.unregister` (value {code}, or the code as key). With
 * check_recipients, a packet for an agency the registry does not list is REJECTed before the
 * call. Answers: 2xx + OK: OK; 5xx, 408, 429, the token endpoint failing, no answer: RETRY (a
 * 401 first fetches a new token and calls again); the API refusing, another 4xx: REJECT. */
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/vxp/edoc.h"
#include "hub/core/registry.h"
#include "hub/engine/connector.h"
#include "hub/io/breaker.h"
#include "lgsp_api.h"

struct cfg {
  struct lgsp_api_cfg api;
  int check_recipients;
  int64_t registry_ttl_ms;
  int64_t max_size;
  struct hub_breaker_cfg breaker;
};

static const struct hub_cfg_entry entries[] = {
    LGSP_API_ENTRIES(struct cfg, api),
    {"check_recipients", HUB_CFG_BOOL, offsetof(struct cfg, check_recipients), "false", 0,
     "REJECT a packet whose recipient the axis's agency registry (GET /donvilienthongs) does not list"},
    {"registry_ttl", HUB_CFG_DURATION, offsetof(struct cfg, registry_ttl_ms), "5m", 0,
     "how long the registry's list is reused (a recipient it lacks makes it be read again first)", NULL, NULL, 1000,
     86400000},
    {"max_size", HUB_CFG_SIZE, offsetof(struct cfg, max_size), "64MiB", 0,
     "largest packet sent (keep it at the route's xml.max_size); the API's answers may be 4/3 of it plus 1 MiB", NULL,
     NULL, 1024, 1024LL * 1024 * 1024},
    {"breaker", HUB_CFG_OBJECT, offsetof(struct cfg, breaker), NULL, 0, "circuit breaker for the axis", NULL,
     &hub_breaker_cfg_map},
    {NULL},
};
static const struct hub_cfg_map map = {"lgsp-edoc-out", entries};

struct state {
  const struct cfg *cfg;
  struct lgsp_api *api;
  struct hub_breaker *breaker;
  json_t *registry; /* codes -> true */
  time_t registry_at;
};

static void lo_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  lgsp_api_destroy(s->api);
  hub_breaker_destroy(s->breaker);
  json_decref(s->registry);
  free(s);
}

static hub_err_t lo_create(const void *cfgp, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  const struct cfg *cfg = cfgp;
  struct state *s = calloc(1, sizeof *s);
  hub_err_t rc;
  *state = NULL;
  if (!s) goto oom;
  s->cfg = cfg;
  if ((rc = lgsp_api_new(&cfg->api, env, &s->api, errbuf, errbuf_size)) != HUB_OK) {
    lo_destroy(s);
    return rc;
  }
  lgsp_api_set_max_packet(s->api, (size_t)cfg->max_size);
  if (!(s->breaker = hub_breaker_new_from(env && env->owner ? env->owner : "lgsp-edoc-out", cfg->api.endpoint, &cfg->breaker)))
    goto oom;
  *state = s;
  return HUB_OK;
oom:
  lo_destroy(s);
  snprintf(errbuf, errbuf_size, "lgsp-edoc-out: out of memory");
  return HUB_ERR_NOMEM;
}

/* The outcome of a failed call: RETRY for what may pass later, REJECT for a refusal. */
static enum hub_step_result failed(struct state *s, hub_err_t rc, const struct lgsp_answer *ans, const char *e,
                                   struct hub_step_outcome *out) {
  long st = ans->http_status;
  int retry = rc != HUB_ERR_DOWNSTREAM && rc != HUB_ERR_JSON && rc != HUB_ERR_HTTP;
  if (rc == HUB_ERR_HTTP) retry = st >= 500 || st == 408 || st == 429 || st == 401;
  (void)s;
  return hub_step_fail(out, retry ? HUB_STEP_RETRY : HUB_STEP_REJECT, rc, "%s", e);
}

/* Calls through the breaker. */
static hub_err_t call(struct state *s, const char *method, const char *path, const json_t *body,
                      struct lgsp_answer *ans, char *e, size_t en, struct hub_step_outcome *out, int *open) {
  int64_t wait_ms = 0;
  *open = 0;
  memset(ans, 0, sizeof *ans);
  if (!hub_breaker_allow(s->breaker, &wait_ms)) {
    snprintf(e, en, "circuit breaker for %s is open", s->cfg->api.endpoint);
    out->retry_after_ms = wait_ms;
    *open = 1;
    return HUB_ERR_UNAVAILABLE;
  }
  hub_err_t rc = lgsp_api_call(s->api, method, path, body, ans, e, en);
  if (rc == HUB_ERR_STOPPED || rc == HUB_ERR_AUTH)
    hub_breaker_cancel(s->breaker);
  else
    hub_breaker_record(s->breaker, ans->http_status != 0 && ans->http_status < 500);
  return rc;
}

static enum hub_step_result agency(struct state *s, const struct hub_msg *in, int reg, struct hub_msg **result,
                                   struct hub_step_outcome *out) {
  json_error_t je;
  json_t *v = json_loadb((const char *)in->value, in->value_len, 0, &je);
  char *key = in->key_len ? strndup((const char *)in->key, in->key_len) : NULL;
  const char *code = json_string_value(json_object_get(v, "code"));
  if (!code) code = key;
  enum hub_step_result sr;
  struct lgsp_answer ans = {0};
  char e[1024], *path = NULL;
  int open = 0;
  if (!code || (reg && !json_is_object(v))) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA,
                       "lgsp-edoc-out: an agency record needs a JSON object value with `code`%s",
                       reg ? " (and pcode, name, email, fax, mobile)" : " (or the code as key)");
    goto out;
  }
  if (!(path = reg ? strdup("/donvilienthongs") : lgsp_path_new("/donvilienthongs", code))) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  hub_err_t rc = call(s, reg ? "POST" : "PUT", path, reg ? v : NULL, &ans, e, sizeof e, out, &open);
  if (open) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_UNAVAILABLE, "%s", e);
  } else if (rc != HUB_OK) {
    sr = failed(s, rc, &ans, e, out);
  } else {
    json_t *r = json_pack("{s:s,s:s}", "agency", code, "action", reg ? "registered" : "unregistered");
    char *t = r ? json_dumps(r, JSON_COMPACT) : NULL;
    json_decref(r);
    *result = t ? hub_msg_new(NULL, 0, t, strlen(t)) : NULL;
    free(t);
    sr = *result ? HUB_STEP_OK : hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
    if (*result) hub_msg_header_set_str(*result, HUB_H_TYPE, "lgsp.agency.result");
    json_decref(s->registry); /* changed: read it again when next needed */
    s->registry = NULL;
  }
out:
  lgsp_answer_release(&ans);
  json_decref(v);
  free(key);
  free(path);
  return sr;
}

/* 1: listed, 0: not, -1: the registry could not be read (e says why). */
static int registered(struct state *s, const char *code, char *e, size_t en, struct hub_step_outcome *out) {
  for (int round = 0; round < 2; round++) {
    time_t now = time(NULL);
    if (!s->registry || (now - s->registry_at) * 1000 > s->cfg->registry_ttl_ms || round == 1) {
      struct lgsp_answer ans;
      int open = 0;
      hub_err_t rc = call(s, "GET", "/donvilienthongs", NULL, &ans, e, en, out, &open);
      if (rc != HUB_OK) {
        lgsp_answer_release(&ans);
        return -1;
      }
      json_t *set = json_object(), *v;
      size_t i;
      json_array_foreach(json_object_get(ans.json, "data"), i, v) {
        const char *c = json_string_value(json_object_get(v, "code"));
        if (c) json_object_set_new(set, c, json_true());
      }
      lgsp_answer_release(&ans);
      json_decref(s->registry);
      s->registry = set;
      s->registry_at = now;
    }
    if (json_object_get(s->registry, code)) return 1;
    if (round == 0 && (time(NULL) - s->registry_at) < 1) return 0; /* just read: no use reading again */
  }
  return 0;
}

static enum hub_step_result lo_deliver(void *p, const struct hub_msg *in, struct hub_msg **result,
                                       struct hub_step_outcome *out) {
  struct state *s = p;
  const char *type = hub_msg_header_get_str(in, HUB_H_TYPE);
  if (type && !strcmp(type, "lgsp.agency.register")) return agency(s, in, 1, result, out);
  if (type && !strcmp(type, "lgsp.agency.unregister")) return agency(s, in, 0, result, out);
  struct edoc_info info;
  struct lgsp_answer ans = {0};
  char e[1024], *b64 = NULL;
  json_t *body = NULL;
  enum hub_step_result sr;
  int open = 0;
  hub_err_t rc = edoc_inspect(in->value, in->value_len, (size_t)s->cfg->max_size, &info, e, sizeof e);
  if (rc != HUB_OK)
    return hub_step_fail(out, rc == HUB_ERR_NOMEM ? HUB_STEP_RETRY : HUB_STEP_REJECT, rc, "lgsp-edoc-out: %s", e);
  if (!info.n_to) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA, "lgsp-edoc-out: the packet names no recipient");
    goto out;
  }
  for (size_t i = 0; s->cfg->check_recipients && i < info.n_to; i++) {
    int r = registered(s, info.to[i], e, sizeof e, out);
    if (r < 0) {
      sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_UNAVAILABLE, "reading the agency registry: %s", e);
      goto out;
    }
    if (!r) {
      sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_NOT_FOUND,
                         "lgsp-edoc-out: recipient %s is not in the axis's agency registry", info.to[i]);
      goto out;
    }
  }
  const char *mt = info.kind == EDOC_STATUS ? "status" : "edoc";
  if (!(b64 = malloc(4 * ((in->value_len + 2) / 3) + 1))) goto oom;
  EVP_EncodeBlock((unsigned char *)b64, in->value, (int)in->value_len);
  if (!(body = json_pack("{s:s,s:s}", "file", b64, "loaiVanBan", mt))) goto oom;
  free(b64);
  b64 = NULL;
  rc = call(s, "POST", "/vanbans", body, &ans, e, sizeof e, out, &open);
  if (open) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_UNAVAILABLE, "%s", e);
  } else if (rc != HUB_OK) {
    sr = failed(s, rc, &ans, e, out);
  } else {
    json_t *d = json_object_get(ans.json, "docId");
    if (!d) d = json_object_get(json_object_get(ans.json, "data"), "docId");
    char num[32];
    const char *doc_id = json_string_value(d);
    if (json_is_integer(d)) {
      snprintf(num, sizeof num, "%lld", (long long)json_integer_value(d));
      doc_id = num;
    }
    sr = (*result = edoc_result_new(&info, "lgsp", mt, doc_id))
             ? HUB_STEP_OK
             : hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory building the result");
  }
  goto out;
oom:
  sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "lgsp-edoc-out: out of memory");
out:
  free(b64);
  json_decref(body);
  lgsp_answer_release(&ans);
  edoc_info_release(&info);
  return sr;
}

static int lo_health(void *p, char *why, size_t why_size) {
  return hub_breaker_health(((struct state *)p)->breaker, why, why_size);
}

static const struct hub_sink_ops ops = {
    .info = {.name = "lgsp-edoc-out",
             .summary = "sends edXML packets to a provincial LGSP document axis (OAuth2) and keeps its agency "
                        "registry",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = lo_create,
    .deliver = lo_deliver,
    .health = lo_health,
    .destroy = lo_destroy,
};
HUB_SINK_PLUGIN(hub_plugin_sink_lgsp_edoc_out, ops);
