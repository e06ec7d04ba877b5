/* Sink `paygov`: calls the payment platform (vn-standards.md §3.4) for each record. The record's
 * `lt.type` names the call: `paygov.init` (also when absent), `paygov.get-bill`,
 * `paygov.receipt` or `paygov.refund`; its value is a JSON object with the call's fields
 * (MaThamChieu, SoTien, ThongTinBienLai, ...). The sink adds LoaiBanTin, PhienBan, MaDoiTac,
 * ThoiGianGD (when absent) and MaXacThuc with the configured algorithm (hub/trust/checksum.h),
 * POSTs it through the shared HTTP client with the endpoint's circuit breaker, and maps the
 * answer: MaLoi "00" OK (the answer is the result record), another MaLoi or a 4xx REJECT (DLQ
 * with the platform's words), 5xx/408/429/timeouts RETRY. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hub/core/registry.h"
#include "hub/engine/connector.h"
#include "hub/io/breaker.h"
#include "hub/io/http_client.h"
#include "hub/trust/checksum.h"
#include "mappings/shape/json.h"
#include "paygov_common.h"

#define DETAIL_MAX 16384

enum op { OP_INIT, OP_GET_BILL, OP_RECEIPT, OP_REFUND, OP_N };
static const char *const op_types[OP_N] = {"paygov.init", "paygov.get-bill", "paygov.receipt", "paygov.refund"};

struct names_cfg {
  char *v[OP_N];
};
struct cfg {
  char *url, *partner, *version, *key_file;
  int algorithm;
  struct names_cfg paths, messages;
  int64_t timeout_ms;
  struct hub_breaker_cfg breaker;
};

#define N(i) (offsetof(struct names_cfg, v) + (i) * sizeof(char *))
static const struct hub_cfg_entry path_entries[] = {
    {"init", HUB_CFG_STR, N(OP_INIT), "/init-transaction", 0, "path of the init transaction call"},
    {"get_bill", HUB_CFG_STR, N(OP_GET_BILL), "/get-bill", 0, "path of the get bill call"},
    {"receipt", HUB_CFG_STR, N(OP_RECEIPT), "/get-receipt", 0, "path of the get receipt call"},
    {"refund", HUB_CFG_STR, N(OP_REFUND), "/refund", 0, "path of the refund call"},
    {NULL},
};
static const struct hub_cfg_map path_map = {"paths", path_entries};
static const struct hub_cfg_entry message_entries[] = {
    {"init", HUB_CFG_STR, N(OP_INIT), "InitTransaction", 0, "LoaiBanTin of an init (LoaiBanTinInit)"},
    {"get_bill", HUB_CFG_STR, N(OP_GET_BILL), "GetBill", 0, "LoaiBanTin of a get bill (LoaiBanTinGetBill)"},
    {"receipt", HUB_CFG_STR, N(OP_RECEIPT), "GetReceipt", 0, "LoaiBanTin of a get receipt"},
    {"refund", HUB_CFG_STR, N(OP_REFUND), "Refund", 0, "LoaiBanTin of a refund"},
    {NULL},
};
static const struct hub_cfg_map message_map = {"messages", message_entries};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"url", HUB_CFG_STR, F(url), NULL, 1, "base http(s) URL of the platform's API; each call appends its path"},
    {"partner", HUB_CFG_STR, F(partner), NULL, 1, "MaDoiTac, the partner code the platform gave this province"},
    {"version", HUB_CFG_STR, F(version), "1.0.0", 0, "PhienBan sent with each call"},
    {"key_file", HUB_CFG_STR, F(key_file), NULL, 1, "file with the MaXacThuc hash key (at least 8 bytes)"},
    {"algorithm", HUB_CFG_ENUM, F(algorithm), "sha256", 0,
     "MaXacThuc: sha256 (SHA-256 hex of the fields joined with | then |KEY) or hmac-sha256 (HMAC-SHA256 hex with "
     "KEY over the fields joined with |)",
     "sha256|hmac-sha256"},
    {"paths", HUB_CFG_OBJECT, F(paths), NULL, 0, "the path of each call under url", NULL, &path_map},
    {"messages", HUB_CFG_OBJECT, F(messages), NULL, 0, "the LoaiBanTin of each call", NULL, &message_map},
    {"timeout", HUB_CFG_DURATION, F(timeout_ms), "30s", 0, "the whole call", NULL, NULL, 100, 600000},
    {"breaker", HUB_CFG_OBJECT, F(breaker), NULL, 0, "circuit breaker for the platform", NULL, &hub_breaker_cfg_map},
    {NULL},
};

static hub_err_t sink_check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                            size_t errbuf_size) {
  const struct cfg *c = p;
  if (c->url && strncasecmp(c->url, "http://", 7) && strncasecmp(c->url, "https://", 8))
    return hub_node_error(hub_cfg_value_at(node, at, "url"), errbuf, errbuf_size,
                          "url must start with http:// or https://");
  if (c->partner && (!*c->partner || strchr(c->partner, '|')))
    return hub_node_error(hub_cfg_value_at(node, at, "partner"), errbuf, errbuf_size,
                          "partner must be a non-empty code without '|'");
  for (int i = 0; i < OP_N; i++)
    if (c->paths.v[i] && c->paths.v[i][0] != '/')
      return hub_node_error(hub_cfg_value_at(node, at, "paths"), errbuf, errbuf_size, "paths: '%s' must start with /",
                            c->paths.v[i]);
  return HUB_OK;
}
static const struct hub_cfg_constraint sink_rules[] = {
    {"url starts with http:// or https://", "url", "{url: 'ftp://127.0.0.1/x'}", "{url: 'https://127.0.0.1/x'}"},
    {"`partner` is not empty and has no `|`", "partner", "{partner: 'A|B'}", "{partner: A}"},
    {"every path starts with /", "paths", "{paths: {init: x}}", "{paths: {init: /}}"},
    {NULL},
};
static const struct hub_cfg_map map = {"paygov", entries, .check = sink_check, .constraints = sink_rules};

struct state {
  const struct cfg *cfg;
  char *key;
  size_t key_len;
  char *url[OP_N];
  struct hub_breaker *breaker;
};

static void ps_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  hub_secret_free(s->key, s->key_len);
  for (int i = 0; i < OP_N; i++)
    free(s->url[i]);
  hub_breaker_destroy(s->breaker);
  free(s);
}

static hub_err_t ps_create(const void *cfg, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  struct state *s = calloc(1, sizeof *s);
  *state = s;
  if (!s) return HUB_ERR_NOMEM;
  s->cfg = cfg;
  hub_err_t rc = paygov_key_read(env, "key_file", s->cfg->key_file, &s->key, &s->key_len, errbuf, errbuf_size);
  if (rc != HUB_OK) goto fail;
  size_t base = strlen(s->cfg->url);
  while (base && s->cfg->url[base - 1] == '/')
    base--;
  for (int i = 0; i < OP_N; i++) {
    size_t n = base + strlen(s->cfg->paths.v[i]) + 1;
    if (!(s->url[i] = malloc(n))) goto oom;
    snprintf(s->url[i], n, "%.*s%s", (int)base, s->cfg->url, s->cfg->paths.v[i]);
  }
  const char *owner = env && env->owner ? env->owner : "paygov";
  if (!(s->breaker =
            hub_breaker_new_from(owner, s->url[OP_INIT], &s->cfg->breaker)))
    goto oom;
  return HUB_OK;
oom:
  rc = HUB_ERR_NOMEM;
  snprintf(errbuf, errbuf_size, "paygov: out of memory");
fail:
  ps_destroy(s);
  *state = NULL;
  return rc;
}

static int op_of(const struct hub_msg *in) {
  const char *t = hub_msg_header_get_str(in, HUB_H_TYPE);
  if (!t) return OP_INIT;
  for (int i = 0; i < OP_N; i++)
    if (!strcmp(t, op_types[i])) return i;
  return -1;
}

/* Sets a field the sink owns; a record that brings another value for it is refused, since the
 * platform would then see something other than what the record says. */
static int own_field(json_t *o, const char *name, const char *value, struct hub_step_outcome *out) {
  json_t *v = json_object_get(o, name);
  if (v && !(json_is_string(v) && !strcmp(json_string_value(v), value))) {
    hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_INVALID_ARG, "%s is set by the paygov sink (\"%s\"), not the record",
                  name, value);
    return 0;
  }
  json_object_set_new(o, name, json_string(value));
  return 1;
}

/* The request body for this record (malloc'd JSON), or NULL with the outcome set. */
static char *build_request(struct state *s, int op, const struct hub_msg *in, char **ref,
                           struct hub_step_outcome *out) {
  json_t *o = NULL;
  char err[600], mac[65], now[15];
  char *body = NULL;
  if (lt_json_parse(in->value, in->value_len, "record", &o, err, sizeof err) != HUB_OK || !json_is_object(o)) {
    hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_JSON, "the record is not a JSON object: %s", o ? "" : err);
    goto out;
  }
  json_object_del(o, "MaXacThuc"); /* computed here with the key, whatever the record says */
  if (!own_field(o, "LoaiBanTin", s->cfg->messages.v[op], out) || !own_field(o, "PhienBan", s->cfg->version, out) ||
      !own_field(o, "MaDoiTac", s->cfg->partner, out))
    goto out;
  if (!json_object_get(o, "ThoiGianGD")) {
    /* from the record's time, so a retried call is the same call */
    paygov_time(in->timestamp_ms, now);
    json_object_set_new(o, "ThoiGianGD", json_string(now));
  }
  const char *const *fields = NULL;
  size_t n = 0;
  if (op == OP_INIT) {
    hub_paygov_preset("init", &fields, &n);
    if (!json_object_get(o, "MaTienTe")) json_object_set_new(o, "MaTienTe", json_string("VND"));
    if (!json_object_get(o, "NgonNgu")) json_object_set_new(o, "NgonNgu", json_string("vi"));
    /* optional fields of the checksum go as empty strings, as the Java client sends them */
    for (size_t i = 0; i < n; i++)
      if (!json_object_get(o, fields[i]) && strcmp(fields[i], "MaThamChieu") && strcmp(fields[i], "SoTien"))
        json_object_set_new(o, fields[i], json_string(""));
  } else if (op == OP_REFUND) {
    fields = paygov_fields_refund;
    n = paygov_fields_refund_n;
  } else {
    hub_paygov_preset("get-bill", &fields, &n); /* get-bill and get-receipt name the same fields */
  }
  hub_err_t rc = hub_paygov_mac_json((enum hub_paygov_alg)s->cfg->algorithm, o, fields, n, s->key, s->key_len, mac, err,
                                     sizeof err);
  if (rc != HUB_OK) {
    hub_step_fail(out, rc == HUB_ERR_NOMEM ? HUB_STEP_RETRY : HUB_STEP_REJECT, rc, "%s: MaXacThuc: %s", op_types[op],
                  err);
    goto out;
  }
  json_object_set_new(o, "MaXacThuc", json_string(mac));
  *ref = strdup(
      json_string_value(json_object_get(o, "MaThamChieu")) ? json_string_value(json_object_get(o, "MaThamChieu")) : "");
  if (!(body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) || !*ref)
    hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
out:
  json_decref(o);
  return body;
}

static void set_detail(struct hub_step_outcome *out, const unsigned char *b, size_t len) {
  size_t dn = len < DETAIL_MAX ? len : DETAIL_MAX;
  if (dn && (out->detail = malloc(dn))) {
    memcpy(out->detail, b, dn);
    out->detail_len = dn;
  }
}

static enum hub_step_result ps_deliver(void *p, const struct hub_msg *in, struct hub_msg **result,
                                       struct hub_step_outcome *out) {
  struct state *s = p;
  enum hub_step_result sr = HUB_STEP_OK;
  struct hub_http_response resp = {0};
  char *ref = NULL, idem[300] = "", tp[300] = "";
  json_t *ans = NULL;
  int op = op_of(in);
  if (op < 0)
    return hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_INVALID_ARG,
                         "lt.type '%s' is not a paygov call (paygov.init, paygov.get-bill, paygov.receipt, "
                         "paygov.refund)",
                         hub_msg_header_get_str(in, HUB_H_TYPE));
  char *body = build_request(s, op, in, &ref, out);
  if (!body) {
    free(ref);
    return out->code == HUB_ERR_NOMEM ? HUB_STEP_RETRY : HUB_STEP_REJECT;
  }
  const char *id = hub_msg_header_get_str(in, HUB_H_ID), *trace = hub_msg_header_get_str(in, HUB_H_TRACEPARENT);
  const char *hv[4] = {"Content-Type: application/json", NULL, NULL, NULL};
  size_t nh = 1;
  if (id) snprintf(idem, sizeof idem, "Idempotency-Key: %s", id), hv[nh++] = idem;
  if (trace) snprintf(tp, sizeof tp, "traceparent: %s", trace), hv[nh++] = tp;
  int64_t wait_ms = 0;
  if (!hub_breaker_allow(s->breaker, &wait_ms)) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_UNAVAILABLE, "circuit breaker for %s is open", s->url[op]);
    out->retry_after_ms = wait_ms;
    goto out;
  }
  struct hub_http_request req = {.method = "POST",
                                 .url = s->url[op],
                                 .headers = hv,
                                 .body = body,
                                 .body_len = strlen(body),
                                 .timeout_ms = s->cfg->timeout_ms,
                                 .max_body = 1 << 20};
  hub_err_t rc = hub_http_perform(&req, &resp);
  if (rc != HUB_OK) {
    if (rc == HUB_ERR_STOPPED)
      hub_breaker_cancel(s->breaker);
    else
      hub_breaker_record(s->breaker, 0);
    sr = hub_step_fail(out, HUB_STEP_RETRY, rc, "%s", resp.error);
    goto out;
  }
  long st = resp.status;
  hub_breaker_record(s->breaker, st < 500);
  const char *rb = resp.body ? (const char *)resp.body : "";
  if (st >= 500 || st == 408 || st == 429) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_HTTP, "%s %s answered HTTP %ld: %.300s", op_types[op], s->url[op],
                       st, rb);
    if (st == 429 || st == 503) {
      int64_t ra = hub_http_retry_after_ms(hub_http_response_header(&resp, "retry-after"), time(NULL));
      if (ra > 0) out->retry_after_ms = ra;
    }
    goto out;
  }
  char err[600];
  if (lt_json_parse(resp.body, resp.body_len, "answer", &ans, err, sizeof err) != HUB_OK || !json_is_object(ans)) {
    /* 4xx without the platform's JSON, or a 2xx the hub cannot read: a person must look */
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_HTTP, "%s %s answered HTTP %ld with no JSON object: %.300s",
                       op_types[op], s->url[op], st, rb);
    set_detail(out, resp.body, resp.body_len);
    goto out;
  }
  json_t *maloi = json_object_get(ans, "MaLoi"), *ecode = json_object_get(ans, "error_code");
  if (st >= 200 && st < 300 && json_is_string(maloi) && !strcmp(json_string_value(maloi), "00")) {
    struct hub_msg *m = hub_msg_new(ref, strlen(ref), resp.body, resp.body_len);
    char type[64];
    snprintf(type, sizeof type, "%s.result", op_types[op]);
    if (!m || hub_msg_header_set_str(m, HUB_H_TYPE, type) ||
        hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, "application/json")) {
      hub_msg_destroy(m);
      sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory building the result record");
      goto out;
    }
    *result = m;
    goto out;
  }
  /* The platform refused the call: its words go to the DLQ. */
  const char *code = json_is_string(maloi)   ? json_string_value(maloi)
                     : json_is_string(ecode) ? json_string_value(ecode)
                                             : "?";
  const char *why = json_string_value(json_object_get(ans, json_is_string(maloi) ? "MoTaLoi" : "error_message"));
  sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_HTTP, "%s %s refused %s: HTTP %ld; %s %s: %.300s", op_types[op],
                     s->url[op], ref, st, json_is_string(maloi) ? "MaLoi" : "error_code", code, why ? why : "");
  set_detail(out, resp.body, resp.body_len);
out:
  json_decref(ans);
  hub_http_response_release(&resp);
  free(body);
  free(ref);
  return sr;
}

static int ps_health(void *p, char *why, size_t why_size) {
  struct state *s = p;
  return hub_breaker_health(s->breaker, why, why_size);
}

static const struct hub_sink_ops ops = {
    .info = {.name = "paygov",
             .summary = "payment platform calls (init, get bill, get receipt, refund) with MaXacThuc; circuit breaker",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = ps_create,
    .deliver = ps_deliver,
    .health = ps_health,
    .destroy = ps_destroy,
};
HUB_SINK_PLUGIN(hub_plugin_sink_paygov, ops);
