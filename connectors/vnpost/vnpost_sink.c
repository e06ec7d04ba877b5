/* Sink `vnpost`: postal orders for a dossier (vn-standards.md §4.1). Each record is a postal
 * request (schemas/vnpost/request.schema.json): create an order for result delivery (sender =
 * the agency of the config, receiver = the citizen) or for dossier collection (the reverse),
 * cancel one, or ask its price. The order number is the dossier code unless the request gives
 * one, so VNPost's own duplicate check makes a create idempotent: a redelivered record (after a
 * crash) that VNPost answers 409 "order exists" is a success, not a second order.
 * Answers: 2xx OK (result record), 409 on create/cancel OK (already done), 5xx/408/429/timeouts
 * RETRY, other statuses REJECT with the body in the DLQ record. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/registry.h"
#include "hub/engine/connector.h"
#include "mappings/shape/json.h"
#include "vnpost_api.h"

#define DETAIL_MAX 16384

struct party_cfg {
  char *name, *address, *tel, *email, *desc;
  int64_t province, district;
};
struct cfg {
  struct vnpost_api_cfg api; /* first: VNPOST_API_ENTRIES address it at offset 0 */
  char *customer_code;
  struct party_cfg agency;
  char *main_service;
};

#define P(f) offsetof(struct party_cfg, f)
static const struct hub_cfg_entry party_entries[] = {
    {"name", HUB_CFG_STR, P(name), NULL, 1, "the agency's name (SenderName / ReceiverName)"},
    {"address", HUB_CFG_STR, P(address), NULL, 1, "its street address"},
    {"tel", HUB_CFG_STR, P(tel), NULL, 1, "its telephone number"},
    {"province", HUB_CFG_INT, P(province), NULL, 1, "VNPost province code", NULL, NULL, 1, 999999},
    {"district", HUB_CFG_INT, P(district), NULL, 1, "VNPost district code", NULL, NULL, 1, 99999999},
    {"email", HUB_CFG_STR, P(email), NULL, 0, "its e-mail address"},
    {"desc", HUB_CFG_STR, P(desc), NULL, 0, "SenderDesc when the agency sends"},
    {NULL},
};
static const struct hub_cfg_map party_map = {"agency", party_entries};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    VNPOST_API_ENTRIES,
    {"customer_code", HUB_CFG_STR, F(customer_code), NULL, 1, "the agency's VNPost customer code (CustomerCode)"},
    {"agency", HUB_CFG_OBJECT, F(agency), NULL, 1,
     "the agency: sender of result deliveries, receiver of dossier collections", NULL, &party_map},
    {"main_service", HUB_CFG_STR, F(main_service), "HCC", 0, "mainSrv of price requests (public administration)"},
    {NULL},
};
static hub_err_t sink_check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                            size_t errbuf_size) {
  return vnpost_api_check(p, node, at, errbuf, errbuf_size);
}
static const struct hub_cfg_constraint rules[] = {
    {"url starts with http:// or https://", "url",
     "{url: 'ftp://x/y', customer_code: C, agency: {name: A, "
     "address: B, tel: '0', province: 1, district: 1}}",
     NULL},
    {"oauth2 needs token_url, client_id and client_secret_file", "oauth2",
     "{url: 'http://127.0.0.1:1/v', customer_code: C, oauth2: {client_id: c}, agency: {name: A, address: B, tel: '0', "
     "province: 1, district: 1}}",
     NULL},
    {NULL},
};
static const struct hub_cfg_map map = {"vnpost", entries, .check = sink_check, .constraints = rules};

struct state {
  const struct cfg *cfg;
  struct vnpost_api *api;
};

static void vs_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  vnpost_api_destroy(s->api);
  free(s);
}

static hub_err_t vs_create(const void *cfgp, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  struct state *s = calloc(1, sizeof *s);
  *state = NULL;
  if (!s) return HUB_ERR_NOMEM;
  s->cfg = cfgp;
  hub_err_t rc = vnpost_api_new(&s->cfg->api, env, &s->api, errbuf, errbuf_size);
  if (rc != HUB_OK) {
    free(s);
    return rc;
  }
  *state = s;
  return HUB_OK;
}

/* A string field of the request (borrowed), or NULL with a REJECT reason. */
static const char *need_str(json_t *o, const char *obj, const char *name, struct hub_step_outcome *out, int *bad) {
  json_t *v = json_object_get(o, name);
  if (json_is_string(v) && json_string_length(v) > 0) return json_string_value(v);
  if (!*bad)
    hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA, "postal request: %s%s%s %s", obj ? obj : "", obj ? "." : "",
                  name, v ? "is not a non-empty string" : "is missing");
  *bad = 1;
  return NULL;
}
static json_int_t need_int(json_t *o, const char *obj, const char *name, struct hub_step_outcome *out, int *bad) {
  json_t *v = json_object_get(o, name);
  if (json_is_integer(v) && json_integer_value(v) > 0) return json_integer_value(v);
  if (json_is_string(v)) { /* codes often travel as text */
    char *end;
    long long n = strtoll(json_string_value(v), &end, 10);
    if (*json_string_value(v) && !*end && n > 0) return n;
  }
  if (!*bad)
    hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA, "postal request: %s.%s %s", obj, name,
                  v ? "is not a positive integer code" : "is missing");
  *bad = 1;
  return 0;
}

/* Sets the Sender* or Receiver* fields of the order from the agency or the citizen. */
static void party_agency(json_t *order, const char *role, const struct party_cfg *a) {
  char k[64];
#define SETS(field, val)                                                                                               \
  do {                                                                                                                 \
    snprintf(k, sizeof k, "%s%s", role, field);                                                                        \
    if (val) json_object_set_new(order, k, json_string(val));                                                          \
  } while (0)
  SETS("Name", a->name);
  SETS("Address", a->address);
  SETS("Tel", a->tel);
  SETS("Email", a->email);
  snprintf(k, sizeof k, "%sProvince", role);
  json_object_set_new(order, k, json_integer(a->province));
  snprintf(k, sizeof k, "%sDistrict", role);
  json_object_set_new(order, k, json_integer(a->district));
}
static void party_citizen(json_t *order, const char *role, json_t *c, struct hub_step_outcome *out, int *bad) {
  char k[64];
  const char *name = need_str(c, "citizen", "name", out, bad), *addr = need_str(c, "citizen", "address", out, bad),
             *tel = need_str(c, "citizen", "tel", out, bad);
  json_int_t prov = need_int(c, "citizen", "province", out, bad), dist = need_int(c, "citizen", "district", out, bad);
  if (*bad) return;
  const char *email = json_string_value(json_object_get(c, "email"));
  SETS("Name", name);
  SETS("Address", addr);
  SETS("Tel", tel);
  SETS("Email", email);
  snprintf(k, sizeof k, "%sProvince", role);
  json_object_set_new(order, k, json_integer(prov));
  snprintf(k, sizeof k, "%sDistrict", role);
  json_object_set_new(order, k, json_integer(dist));
#undef SETS
}

enum action { CREATE, CANCEL, PRICE };

/* The body VNPost gets for this request, or NULL (REJECT reason in out). */
static json_t *build_call(struct state *s, json_t *req, enum action *act, const char **order_no,
                          struct hub_step_outcome *out) {
  const struct cfg *c = s->cfg;
  int bad = 0;
  const char *a = need_str(req, NULL, "action", out, &bad);
  if (bad) return NULL;
  if (!strcmp(a, "create"))
    *act = CREATE;
  else if (!strcmp(a, "cancel"))
    *act = CANCEL;
  else if (!strcmp(a, "price"))
    *act = PRICE;
  else {
    hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA, "postal request: action '%.64s' is not create, cancel or price",
                  a);
    return NULL;
  }
  int collection = 0;
  if (*act != CANCEL) {
    const char *d = need_str(req, NULL, "direction", out, &bad);
    if (bad) return NULL;
    if (strcmp(d, "delivery") && strcmp(d, "collection")) {
      hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA,
                    "postal request: direction '%.64s' is not delivery or collection", d);
      return NULL;
    }
    collection = !strcmp(d, "collection");
  }
  json_t *citizen = json_object_get(req, "citizen");
  if (*act != CANCEL && !json_is_object(citizen)) {
    hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA, "postal request: citizen is missing or not an object");
    return NULL;
  }
  if (*act == PRICE) {
    json_int_t prov = need_int(citizen, "citizen", "province", out, &bad),
               dist = need_int(citizen, "citizen", "district", out, &bad);
    json_t *w = json_object_get(req, "weight");
    if (!bad && !(json_is_integer(w) && json_integer_value(w) > 0)) {
      hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA, "postal request: weight (grams) is missing or not positive");
      bad = 1;
    }
    if (bad) return NULL;
    json_t *ag =
        json_pack("{s:I,s:I}", "provCode", (json_int_t)c->agency.province, "distCode", (json_int_t)c->agency.district);
    json_t *ci = json_pack("{s:I,s:I}", "provCode", prov, "distCode", dist);
    return json_pack("{s:I,s:s,s:i,s:o,s:o}", "weight", json_integer_value(w), "mainSrv", c->main_service, "isreturn",
                     1, "sender", collection ? ci : ag, "receiver", collection ? ag : ci);
  }
  const char *dossier = need_str(req, NULL, "dossierCode", out, &bad);
  if (bad) return NULL;
  json_t *on = json_object_get(req, "orderNumber");
  *order_no = json_is_string(on) && json_string_length(on) ? json_string_value(on) : dossier;
  if (*act == CANCEL) return json_pack("{s:s,s:s}", "CustomerCode", c->customer_code, "OrderNumber", *order_no);
  json_t *order = json_pack("{s:s,s:s}", "CustomerCode", c->customer_code, "OrderNumber", *order_no);
  if (!order) return NULL;
  json_t *cod = json_object_get(req, "codAmount");
  json_object_set_new(order, "CODAmount", json_integer(json_is_integer(cod) ? json_integer_value(cod) : 0));
  party_agency(order, collection ? "Receiver" : "Sender", &c->agency);
  party_citizen(order, collection ? "Sender" : "Receiver", citizen, out, &bad);
  if (bad) {
    json_decref(order);
    return NULL;
  }
  if (!collection && c->agency.desc) json_object_set_new(order, "SenderDesc", json_string(c->agency.desc));
  json_t *desc = json_object_get(req, "description");
  if (json_is_string(desc)) json_object_set(order, "Description", desc);
  return order;
}

static struct hub_msg *result_new(const char *action, const char *direction, const char *order_no, const char *outcome,
                                  const struct hub_http_response *r) {
  json_t *j = json_pack("{s:s,s:s,s:i}", "action", action, "outcome", outcome, "status", (int)r->status);
  struct hub_msg *m = NULL;
  char *text = NULL;
  if (!j) return NULL;
  if (direction) json_object_set_new(j, "direction", json_string(direction));
  if (order_no) json_object_set_new(j, "orderNumber", json_string(order_no));
  json_t *body = NULL;
  if (r->body_len && lt_json_parse(r->body, r->body_len, "answer", &body, NULL, 0) == HUB_OK)
    json_object_set_new(j, "answer", body);
  else if (r->body_len && (body = json_stringn((const char *)r->body, r->body_len)))
    json_object_set_new(j, "answer", body);
  json_t *price = json_object_get(json_object_get(json_object_get(j, "answer"), "content"), "price");
  if (price) json_object_set(j, "price", price);
  if ((text = json_dumps(j, JSON_COMPACT)) && (m = hub_msg_new(NULL, 0, text, strlen(text))) &&
      (hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, "application/json") != HUB_OK ||
       hub_msg_header_set_str(m, HUB_H_TYPE, "vnpost.order.result") != HUB_OK)) {
    hub_msg_destroy(m);
    m = NULL;
  }
  free(text);
  json_decref(j);
  return m;
}

static enum hub_step_result vs_deliver(void *p, const struct hub_msg *in, struct hub_msg **result,
                                       struct hub_step_outcome *out) {
  struct state *s = p;
  json_t *req = NULL, *call = NULL;
  char *body = NULL, e[512];
  struct hub_http_response resp = {0};
  enum hub_step_result sr = HUB_STEP_OK;
  enum action act = CREATE;
  const char *order_no = NULL;
  if (lt_json_parse(in->value, in->value_len, "postal request", &req, e, sizeof e) != HUB_OK) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_JSON, "%s", e);
    goto out;
  }
  if (!json_is_object(req)) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA, "postal request: not a JSON object");
    goto out;
  }
  if (!(call = build_call(s, req, &act, &order_no, out))) {
    sr = out->code ? HUB_STEP_REJECT : hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  if (!(body = json_dumps(call, JSON_COMPACT))) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  static const enum vnpost_op ops[] = {VNPOST_ORDER_POST, VNPOST_ORDER_CANCEL, VNPOST_PRICE};
  static const char *const names[] = {"create", "cancel", "price"};
  enum vnpost_op op = ops[act];
  int64_t ra = 0;
  enum vnpost_call_rc rc =
      vnpost_api_call(s->api, op, hub_msg_header_get_str(in, HUB_H_ID), body, strlen(body), &resp, &ra, e, sizeof e);
  if (rc != VNPOST_ANSWERED) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, rc == VNPOST_STOPPED ? HUB_ERR_STOPPED : HUB_ERR_UNAVAILABLE,
                       "vnpost %s: %s", vnpost_api_op_name(s->api, op), e);
    if (ra > 0) out->retry_after_ms = ra;
    goto out;
  }
  long st = resp.status;
  const char *outcome = NULL;
  if (st >= 200 && st < 300)
    outcome = act == CREATE ? "created" : act == CANCEL ? "cancelled" : "priced";
  else if (st == 409 && act == CREATE)
    outcome = "exists"; /* created before (a redelivery after a crash): VNPost refused a second one */
  else if (st == 409 && act == CANCEL)
    outcome = "already-cancelled";
  if (outcome) {
    if (act == PRICE) { /* a price answer without a price is no answer */
      json_t *ans = NULL;
      int ok = resp.body_len && lt_json_parse(resp.body, resp.body_len, "answer", &ans, NULL, 0) == HUB_OK &&
               json_is_integer(json_object_get(json_object_get(ans, "content"), "price"));
      json_decref(ans);
      if (!ok) {
        sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_HTTP, "vnpost %s: answer has no content.price: %.300s",
                           vnpost_api_op_name(s->api, op), resp.body ? (const char *)resp.body : "");
        goto out;
      }
    }
    json_t *dir = json_object_get(req, "direction");
    if (!(*result = result_new(names[act], json_string_value(dir), order_no, outcome, &resp)))
      sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory building the result record");
    goto out;
  }
  int retry = st >= 500 || st == 408 || st == 429 || st == 401;
  sr = hub_step_fail(out, retry ? HUB_STEP_RETRY : HUB_STEP_REJECT, HUB_ERR_HTTP,
                     "vnpost %s of order %s answered HTTP %ld: %.300s", vnpost_api_op_name(s->api, op),
                     order_no ? order_no : "-", st, resp.body ? (const char *)resp.body : "");
  if (st == 429 || st == 503) {
    int64_t r = hub_http_retry_after_ms(hub_http_response_header(&resp, "retry-after"), time(NULL));
    if (r > 0) out->retry_after_ms = r;
  }
  if (!retry && resp.body_len) {
    size_t dn = resp.body_len < DETAIL_MAX ? resp.body_len : DETAIL_MAX;
    if ((out->detail = malloc(dn))) {
      memcpy(out->detail, resp.body, dn);
      out->detail_len = dn;
    }
  }
out:
  free(body);
  json_decref(call);
  json_decref(req);
  hub_http_response_release(&resp);
  return sr;
}

static int vs_health(void *p, char *why, size_t why_size) {
  struct state *s = p;
  return vnpost_api_health(s->api, why, why_size);
}

static const struct hub_sink_ops ops = {
    .info = {.name = "vnpost",
             .summary = "VNPost postal orders: result delivery and dossier collection, cancel, price (LGSP or direct)",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = vs_create,
    .deliver = vs_deliver,
    .health = vs_health,
    .destroy = vs_destroy,
};
HUB_SINK_PLUGIN(hub_plugin_sink_vnpost, ops);
