/* Source `onestop`: the dossier events of a province's one-stop system (schemas/onestop/
 * dossier-event.schema.json), POSTed one per dossier change to `path` on `listen` (the shared
 * HTTP server, hub/io/http_server.h, as http-listen uses), each signed with
 * `X-Signature-256: sha256=HEX` (HMAC-SHA256 of the raw body with the shared secret). Each event
 * becomes one record keyed by its dossierCode (so a dossier's events keep their order), with
 * lt.type = its event, answered 202 {"id"} only after the record is committed. An event sent
 * again after a lost answer (same Idempotency-Key header, or same eventId) gets the same lt.id;
 * that id of the event is also kept in header onestop.event-id, for the outcome sent back.
 * The full event contract is checked by the route behind it, so that an event the contract
 * refuses is kept, with the reason, in that route's DLQ rather than lost at the door; here only
 * what the record needs: a signed JSON object with a dossierCode and an event. */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hub/core/files.h"
#include "hub/core/registry.h"
#include "hub/engine/connector.h"
#include "hub/io/http_server.h"
#include "hub/io/webhook_source.h"
#include "hub/trust/checksum.h"
#include "mappings/shape/json.h"

#define SIG_HEADER "X-Signature-256"
#define SECRET_MAX 4096
#define SECRET_MIN 16

struct cfg {
  char *listen, *path, *secret_file;
  int64_t max_body;
};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"listen", HUB_CFG_STR, F(listen), NULL, 1,
     "HOST:PORT to listen on; shared with other connectors on the same address"},
    {"path", HUB_CFG_STR, F(path), "/onestop/events", 0, "the path the one-stop system POSTs its events to"},
    {"hmac_sha256_secret_file", HUB_CFG_STR, F(secret_file), NULL, 1,
     "file with the secret shared with the one-stop system (at least 16 bytes): every event must carry "
     "`X-Signature-256: sha256=HEX`, the HMAC-SHA256 of the raw body"},
    {"max_body", HUB_CFG_SIZE, F(max_body), "1MiB", 0, "largest event accepted (413 above it)", NULL, NULL, 1024,
     64 * 1024 * 1024},
    {NULL},
};

static hub_err_t check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                       size_t errbuf_size) {
  const struct cfg *c = p;
  return hub_webhook_check_address(c->listen, c->path, node, at, errbuf, errbuf_size);
}

static const struct hub_cfg_constraint constraints[] = {
    {"`path` starts with /", "path", "{listen: '127.0.0.1:1', hmac_sha256_secret_file: s, path: x}", NULL},
    {"`listen` is HOST:PORT with a port from 1 to 65535", "listen", "{listen: 127.0.0.1, hmac_sha256_secret_file: s}",
     NULL},
    {NULL},
};
static const struct hub_cfg_map map = {"onestop", entries, .check = check, .constraints = constraints};

struct state {
  struct hub_webhook wh; /* first: its functions are this source's stop, pause, resume, health */
  const struct cfg *cfg;
  struct hub_source_ctx *ctx;
  char *secret;
  size_t secret_len;
};

static void unavailable(struct hub_http_answer *a, const char *why, const char *detail) {
  a->retry_after = "2";
  hub_http_answer_error(a, 503, why, "%s", detail);
}

static void on_headers(void *arg, const struct hub_http_request *r, struct hub_http_answer *a) {
  struct state *s = arg;
  if (hub_webhook_paused(s)) {
    unavailable(a, "unavailable", "the transport cannot take writes now; retry later");
    return;
  }
  const char *ct = hub_http_request_header(r, "Content-Type");
  size_t n = ct ? strcspn(ct, "; \t") : 0;
  if (!ct || n != 16 || strncasecmp(ct, "application/json", 16))
    hub_http_answer_error(a, 415, "unsupported content type", "an event is application/json, not '%s'",
                          ct ? ct : "(no Content-Type)");
}

static int signature_ok(struct state *s, const struct hub_http_request *r, const unsigned char *body, size_t len,
                        struct hub_http_answer *a) {
  const char *h = hub_http_request_header(r, SIG_HEADER);
  char want[65], got[65] = "";
  if (!h) {
    hub_http_answer_error(a, 401, "signature missing",
                          "header " SIG_HEADER " is missing: sha256=HEX of the HMAC-SHA256 of the body");
    return 0;
  }
  hub_vxp_hash_header(s->secret, s->secret_len, body, len, want);
  size_t n = strncasecmp(h, "sha256=", 7) ? 0 : strlen(h + 7);
  for (size_t i = 0; n == 64 && i < 64; i++) {
    char x = h[7 + i];
    got[i] = (char)(x >= 'A' && x <= 'F' ? x + 32 : x);
  }
  if (n != 64 || CRYPTO_memcmp(got, want, 64)) {
    hub_http_answer_error(a, 401, "signature mismatch",
                          "header " SIG_HEADER " is not sha256=HEX of the HMAC-SHA256 of this body with the shared "
                          "secret");
    return 0;
  }
  return 1;
}

/* A string member that is present and not empty, or NULL. */
static const char *text_of(json_t *o, const char *name) {
  json_t *v = json_object_get(o, name);
  return json_is_string(v) && json_string_length(v) ? json_string_value(v) : NULL;
}

static void on_request(void *arg, const struct hub_http_request *r, struct hub_http_answer *a) {
  struct state *s = arg;
  size_t len = 0;
  const unsigned char *body = hub_http_request_body(r, &len);
  json_t *json = NULL;
  struct hub_msg *m = NULL;
  char err[600];
  if (hub_webhook_paused(s)) {
    unavailable(a, "unavailable", "the transport cannot take writes now; retry later");
    goto out;
  }
  if (!signature_ok(s, r, body, len, a)) goto out;
  if (lt_json_parse(body, len, "body", &json, err, sizeof err) != HUB_OK) {
    hub_http_answer_error(a, 400, "malformed JSON", "%s", err);
    goto out;
  }
  const char *code = json_is_object(json) ? text_of(json, "dossierCode") : NULL;
  const char *event = json_is_object(json) ? text_of(json, "event") : NULL;
  if (!code || !event) {
    hub_http_answer_error(a, 400, "not a dossier event",
                          "body: %s is missing or empty (a dossier event is an "
                          "object with at least event and dossierCode)",
                          !json_is_object(json) ? "the object"
                          : !code               ? "dossierCode"
                                                : "event");
    goto out;
  }
  if (strlen(code) > 200 || strlen(event) > 100) {
    hub_http_answer_error(a, 400, "not a dossier event", "body: %s is longer than %d characters",
                          strlen(code) > 200 ? "dossierCode" : "event", strlen(code) > 200 ? 200 : 100);
    goto out;
  }
  /* The same event sent again after a lost 202 keeps its lt.id, so downstream sees one event. */
  const char *idem = hub_http_request_header(r, "Idempotency-Key");
  if (!idem || !*idem) idem = text_of(json, "eventId");
  char id[37], trace[56], type[128];
  if (hub_webhook_event_id("onestop", hub_source_name(s->ctx), idem, id) != HUB_OK) {
    unavailable(a, "unavailable", "out of memory; nothing was written");
    goto out;
  }
  const char *tp = hub_traceparent_or_new(hub_http_request_header(r, "traceparent"), trace);
  snprintf(type, sizeof type, "onestop.%s", event);
  m = hub_msg_new(code, strlen(code), body, len);
  hub_err_t rc = m ? HUB_OK : HUB_ERR_NOMEM;
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_ID, id);
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_SOURCE, hub_source_name(s->ctx));
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_TYPE, type);
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, "application/json");
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_TRACEPARENT, tp);
  /* Carried to the outcome the one-stop system gets back (dvcqg result, DLQ record). */
  if (rc == HUB_OK && idem) rc = hub_msg_header_set_str(m, "onestop.event-id", idem);
  if (rc == HUB_OK) rc = hub_source_emit(s->ctx, &m, 1, NULL, 0);
  if (rc == HUB_OK) {
    json_t *o = json_pack("{s:s, s:s}", "id", id, "dossierCode", code);
    a->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    a->status = 202;
    json_decref(o);
  } else if (rc == HUB_ERR_STOPPED) {
    a->retry_after = "5";
    hub_http_answer_error(a, 503, "stopping", "the hub is stopping; nothing was written");
  } else {
    unavailable(a, "unavailable", "the transport did not take the event; nothing was written");
  }
out:
  hub_msg_destroy(m);
  json_decref(json);
}

static void os_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  hub_webhook_stop(s);
  hub_secret_free(s->secret, s->secret_len);
  free(s);
}

static hub_err_t os_create(const void *cfg, const struct hub_plugin_env *env, struct hub_source_ctx *ctx, void **state,
                           char *errbuf, size_t errbuf_size) {
  const struct cfg *c = cfg;
  struct state *s = calloc(1, sizeof *s);
  *state = s;
  if (!s) return HUB_ERR_NOMEM;
  s->cfg = c;
  s->ctx = ctx;
  char *path = hub_plugin_env_path_new(env, c->secret_file), why[600];
  hub_err_t rc = path ? hub_secret_read(path, SECRET_MAX, SECRET_MIN, &s->secret, &s->secret_len, why, sizeof why)
                       : HUB_ERR_NOMEM;
  if (rc != HUB_OK)
    rc = hub_node_error(hub_plugin_env_at(env, "hmac_sha256_secret_file"), errbuf, errbuf_size,
                        "hmac_sha256_secret_file: %s", rc == HUB_ERR_NOMEM ? "out of memory" : why);
  free(path);
  return rc == HUB_OK ? hub_webhook_reserve(&s->wh, c->listen, c->path) : rc;
}

static hub_err_t os_start(void *p, char *errbuf, size_t errbuf_size) {
  struct state *s = p;
  struct hub_http_route_cfg rc = {
      .owner = hub_source_name(s->ctx),
      .listen = s->cfg->listen,
      .path = s->cfg->path,
      .max_body = (size_t)s->cfg->max_body,
      .on_headers = on_headers,
      .on_request = on_request,
      .arg = s,
  };
  hub_err_t err = hub_webhook_start(&s->wh, &rc, errbuf, errbuf_size);
  return err;
}

static const struct hub_source_ops ops = {
    .info = {.name = "onestop",
             .summary = "one-stop dossier events in (HMAC-signed webhook), one record per event keyed by dossier code",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = os_create,
    .start = os_start,
    .pause = hub_webhook_pause,
    .resume = hub_webhook_resume,
    .stop = hub_webhook_stop,
    .health = hub_webhook_health,
    .destroy = os_destroy,
};
HUB_SOURCE_PLUGIN(hub_plugin_source_onestop, ops);
