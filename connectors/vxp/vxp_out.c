/* Sink `vxp-out`: sends each edXML record to the national document axis (VXP) with sendEdoc:
 * the packet's bytes as they are (a signed packet is never re-serialised), `hash-file` computed
 * as the SDK does (hub/trust/checksum.h: SHA-256 hex without zero padding), messagetype `edoc`
 * or `status` from the packet, `to` from its recipients. The axis's DocId goes to the result
 * topic. Answers: HTTP 200 + OK: OK; 5xx, 408, 429, 401/403 (the HMAC or the credentials; a
 * rotated secret), 412 (hash-file did not match: the bytes changed in transit), no answer:
 * RETRY; the axis answering FAIL, another 4xx, a packet that is not edXML or has no recipient:
 * REJECT, to the DLQ with the reason. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edoc.h"
#include "hub/core/registry.h"
#include "hub/engine/connector.h"
#include "hub/io/breaker.h"
#include "hub/trust/checksum.h"
#include "vxp_api.h"

struct cfg {
  struct vxp_api_cfg api;
  int messagetype; /* 0 auto, 1 edoc, 2 status */
  int64_t max_size;
  struct hub_breaker_cfg breaker;
};

static const struct hub_cfg_entry entries[] = {
    VXP_API_ENTRIES(struct cfg, api),
    {"messagetype", HUB_CFG_ENUM, offsetof(struct cfg, messagetype), "auto", 0,
     "XroadVnpt-messagetype: from the packet (auto: `status` when its header is a status), or always edoc/status",
     "auto|edoc|status"},
    {"max_size", HUB_CFG_SIZE, offsetof(struct cfg, max_size), "64MiB", 0,
     "largest packet sent (keep it at the route's xml.max_size); the axis's answers may be 4/3 of it plus 1 MiB", NULL,
     NULL, 1024, 1024LL * 1024 * 1024},
    {"breaker", HUB_CFG_OBJECT, offsetof(struct cfg, breaker), NULL, 0, "circuit breaker for the axis", NULL,
     &hub_breaker_cfg_map},
    {NULL},
};
static const struct hub_cfg_map map = {"vxp-out", entries};

struct state {
  const struct cfg *cfg;
  struct vxp_api *api;
  struct hub_breaker *breaker;
};

static void vo_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  vxp_api_destroy(s->api);
  hub_breaker_destroy(s->breaker);
  free(s);
}

static hub_err_t vo_create(const void *cfgp, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  const struct cfg *cfg = cfgp;
  struct state *s = calloc(1, sizeof *s);
  hub_err_t rc = HUB_ERR_NOMEM;
  *state = NULL;
  if (!s) goto oom;
  s->cfg = cfg;
  if ((rc = vxp_api_new(&cfg->api, env, &s->api, errbuf, errbuf_size)) != HUB_OK) {
    vo_destroy(s);
    return rc;
  }
  vxp_api_set_max_packet(s->api, (size_t)cfg->max_size);
  if (!(s->breaker = hub_breaker_new_from(env && env->owner ? env->owner : "vxp-out", cfg->api.endpoint, &cfg->breaker)))
    goto oom;
  *state = s;
  return HUB_OK;
oom:
  vo_destroy(s);
  snprintf(errbuf, errbuf_size, "vxp-out: out of memory");
  return HUB_ERR_NOMEM;
}

static enum hub_step_result vo_deliver(void *p, const struct hub_msg *in, struct hub_msg **result,
                                       struct hub_step_outcome *out) {
  struct state *s = p;
  struct edoc_info info;
  struct vxp_answer ans = {0};
  char e[1024], hash[65], *to = NULL;
  enum hub_step_result sr;
  hub_err_t rc = edoc_inspect(in->value, in->value_len, (size_t)s->cfg->max_size, &info, e, sizeof e);
  if (rc != HUB_OK)
    return hub_step_fail(out, rc == HUB_ERR_NOMEM ? HUB_STEP_RETRY : HUB_STEP_REJECT, rc, "vxp-out: %s", e);
  if (!info.n_to) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA, "vxp-out: the packet names no recipient (%s)",
                       info.kind == EDOC_STATUS ? "ResponseFor/OrganId" : "To/OrganId");
    goto out;
  }
  const char *mt = s->cfg->messagetype == 1   ? "edoc"
                   : s->cfg->messagetype == 2 ? "status"
                   : info.kind == EDOC_STATUS ? "status"
                                              : "edoc";
  if (!(to = edoc_to_json_new(&info))) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "vxp-out: out of memory");
    goto out;
  }
  hub_vxp_hash_file_hex(in->value, in->value_len, hash);
  char hf[80];
  snprintf(hf, sizeof hf, "hash-file: %s", hash);
  const char *plain[] = {hf, NULL};
  const char *names[] = {"to"}, *values[] = {to};
  int64_t wait_ms = 0;
  if (!hub_breaker_allow(s->breaker, &wait_ms)) {
    sr =
        hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_UNAVAILABLE, "circuit breaker for %s is open", s->cfg->api.endpoint);
    out->retry_after_ms = wait_ms;
    goto out;
  }
  rc = vxp_api_call(s->api, "sendEdoc", mt, names, values, 1, plain, in->value, in->value_len,
                    "application/octet-stream", &ans, e, sizeof e);
  long st = ans.http_status;
  if (rc == HUB_ERR_STOPPED)
    hub_breaker_cancel(s->breaker);
  else
    hub_breaker_record(s->breaker, st != 0 && st < 500);
  if (rc == HUB_OK) {
    const char *doc_id = json_string_value(json_object_get(ans.json, "DocId"));
    if (!doc_id) doc_id = json_string_value(json_object_get(ans.json, "docId"));
    if (!(*result = edoc_result_new(&info, "vxp", mt, doc_id)))
      sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "vxp-out: out of memory building the result");
    else
      sr = HUB_STEP_OK;
    goto out;
  }
  int retry = rc != HUB_ERR_DOWNSTREAM && rc != HUB_ERR_JSON && rc != HUB_ERR_HTTP;
  if (rc == HUB_ERR_HTTP) retry = st >= 500 || st == 408 || st == 429 || st == 401 || st == 403 || st == 412;
  sr = hub_step_fail(out, retry ? HUB_STEP_RETRY : HUB_STEP_REJECT,
                     rc == HUB_ERR_HTTP && (st == 401 || st == 403) ? HUB_ERR_AUTH : rc, "%s", e);
out:
  free(to);
  vxp_answer_release(&ans);
  edoc_info_release(&info);
  return sr;
}

static int vo_health(void *p, char *why, size_t why_size) {
  return hub_breaker_health(((struct state *)p)->breaker, why, why_size);
}

static const struct hub_sink_ops ops = {
    .info = {.name = "vxp-out",
             .summary = "sends edXML packets (documents and status packets) to the national document axis (VXP) "
                        "with sendEdoc",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = vo_create,
    .deliver = vo_deliver,
    .health = vo_health,
    .destroy = vo_destroy,
};
HUB_SINK_PLUGIN(hub_plugin_sink_vxp_out, ops);
