/* Source `http-listen`: a webhook endpoint. Each POST to `path` on `listen` becomes one record
 * whose value is the body exactly as received, answered 202 {"id": LT_ID} only after the record
 * is committed (hub_source_emit). The HTTP server is shared by every http-listen on one address
 * (hub/io/http_server.h). This file owns the options, authentication (HMAC signature, bearer
 * token; mTLS is the server's), content-type, body and key checks, and the record's headers. */
#include <errno.h>
#include <jansson.h>
#include <libxml/xpath.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "hub/core/files.h"
#include "hub/core/registry.h"
#include "hub/core/xml.h"
#include "hub/engine/connector.h"
#include "hub/io/http_server.h"
#include "hub/io/webhook_source.h"
#include "hub/trust/checksum.h"
#include "mappings/shape/json.h"
#include "mappings/shape/jsonpath.h"

#define SIG_HEADER "X-Signature-256"
#define SECRET_MAX 4096
#define SECRET_MIN 16
#define RETRY_AFTER "2"          /* seconds; the runner probes a paused transport every 500 ms */
#define RETRY_AFTER_STOPPING "5" /* a restart takes longer; as the server's own answer while stopping */

struct auth_cfg {
  char *hmac_sha256_secret_file, *bearer_token_file, *client_ca_file;
};
struct tls_cfg {
  char *cert, *key;
};
struct cfg {
  char *listen, *path, *key;
  struct auth_cfg auth;
  int64_t max_body;
  struct hub_str_list content_types;
  struct tls_cfg tls;
};

static const struct hub_cfg_entry auth_entries[] = {
    {"hmac_sha256_secret_file", HUB_CFG_STR, offsetof(struct auth_cfg, hmac_sha256_secret_file), NULL, 0,
     "file with the shared secret: requests must carry `X-Signature-256: sha256=HEX`, the HMAC-SHA256 of the raw "
     "body"},
    {"bearer_token_file", HUB_CFG_STR, offsetof(struct auth_cfg, bearer_token_file), NULL, 0,
     "file with the token: requests must carry `Authorization: Bearer TOKEN`"},
    {"client_ca_file", HUB_CFG_STR, offsetof(struct auth_cfg, client_ca_file), NULL, 0,
     "PEM CA certificates: clients must present a certificate they issued (mTLS; needs `tls`)"},
    {NULL},
};
static const struct hub_cfg_map auth_map = {"auth", auth_entries};

static const struct hub_cfg_entry tls_entries[] = {
    {"cert", HUB_CFG_STR, offsetof(struct tls_cfg, cert), NULL, 0, "PEM server certificate (chain)"},
    {"key", HUB_CFG_STR, offsetof(struct tls_cfg, key), NULL, 0, "PEM private key of `cert`"},
    {NULL},
};
static const struct hub_cfg_map tls_map = {"tls", tls_entries};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"listen", HUB_CFG_STR, F(listen), NULL, 1,
     "HOST:PORT to listen on (an IPv4 address or localhost); connectors on one address share its server"},
    {"path", HUB_CFG_STR, F(path), NULL, 1, "the path POSTs go to, e.g. /hooks/dossier"},
    {"key", HUB_CFG_STR, F(key), NULL, 0,
     "where the record key comes from: a JSONPath into a JSON body ($.hoSo.maHoSo), an XPath into an XML body "
     "(/HoSo/MaHoSo), or header:NAME; none: records without a key"},
    {"auth", HUB_CFG_OBJECT, F(auth), NULL, 0, "how callers authenticate (at most one way); none: anyone may post",
     NULL, &auth_map},
    {"max_body", HUB_CFG_SIZE, F(max_body), "1MiB", 0, "largest body accepted (413 above it)", NULL, NULL, 1,
     64 * 1024 * 1024},
    {"content_types", HUB_CFG_STR_LIST, F(content_types), NULL, 0,
     "media types accepted (415 for others; parameters such as charset are ignored); none: application/json and "
     "application/xml. JSON and XML types (also +json, +xml) are parsed, 400 when malformed"},
    {"tls", HUB_CFG_OBJECT, F(tls), NULL, 0, "serve HTTPS with this certificate and key", NULL, &tls_map},
    {NULL},
};

static const struct hub_cfg_constraint constraints[] = {
    {"`path` starts with /", "path", "{path: hooks}", "{path: /}"},
    {"`listen` is HOST:PORT with a port from 1 to 65535", "listen", "{listen: 127.0.0.1}", "{listen: '127.0.0.1:1'}"},
    {"`auth` sets at most one of `hmac_sha256_secret_file`, `bearer_token_file`, `client_ca_file`", "auth",
     "{auth: {hmac_sha256_secret_file: s, bearer_token_file: t}}", NULL},
    {"`tls` has both `cert` and `key`", "tls", "{tls: {cert: c.pem}}", NULL},
    {"`auth.client_ca_file` needs `tls`", "auth", "{auth: {client_ca_file: ca.pem}}", NULL},
    {NULL},
};

static int set(const char *s) {
  return s && *s;
}

static hub_err_t check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                       size_t errbuf_size) {
  const struct cfg *c = p;
  hub_err_t err = hub_webhook_check_address(c->listen, c->path, node, at, errbuf, errbuf_size);
  if (err != HUB_OK) return err;
  int ways = set(c->auth.hmac_sha256_secret_file) + set(c->auth.bearer_token_file) + set(c->auth.client_ca_file);
  if (ways > 1)
    return hub_node_error(hub_cfg_value_at(node, at, "auth"), errbuf, errbuf_size,
                          "auth: set one of hmac_sha256_secret_file, bearer_token_file, client_ca_file, not %d", ways);
  if (set(c->tls.cert) != set(c->tls.key))
    return hub_node_error(hub_cfg_value_at(node, at, "tls"), errbuf, errbuf_size, "tls needs both cert and key");
  if (set(c->auth.client_ca_file) && !set(c->tls.cert))
    return hub_node_error(hub_cfg_value_at(node, at, "auth"), errbuf, errbuf_size,
                          "auth.client_ca_file (mTLS) needs tls: {cert, key}");
  return HUB_OK;
}

static const struct hub_cfg_map map = {"http-listen", entries, .check = check, .constraints = constraints};

enum key_kind { KEY_NONE, KEY_HEADER, KEY_JSONPATH, KEY_XPATH };
enum body_kind { BODY_RAW, BODY_JSON, BODY_XML };

struct state {
  struct hub_webhook wh; /* first: its functions are this source's stop, pause, resume, health */
  const struct cfg *cfg;
  struct hub_source_ctx *ctx;
  char *cert, *key_file, *ca; /* resolved paths */
  char *secret;               /* HMAC secret or bearer token */
  size_t secret_len;
  enum key_kind key_kind;
  const char *key_header;
  struct lt_jsonpath *jsonpath;
  xmlXPathCompExprPtr xpath;
};

/* The media type of a Content-Type value, lower-cased, without parameters. */
static void media_type(const char *v, char *out, size_t cap) {
  size_t n = 0;
  while (*v == ' ' || *v == '\t')
    v++;
  for (; *v && *v != ';' && *v != ' ' && *v != '\t' && n + 1 < cap; v++)
    out[n++] = (char)(*v >= 'A' && *v <= 'Z' ? *v + 32 : *v);
  out[n] = '\0';
}

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), m = strlen(tail);
  return n >= m && !strcmp(s + n - m, tail);
}

static enum body_kind kind_of(const char *type) {
  if (ends_with(type, "/json") || ends_with(type, "+json")) return BODY_JSON;
  if (ends_with(type, "/xml") || ends_with(type, "+xml")) return BODY_XML;
  return BODY_RAW;
}

static int accepted(const struct cfg *c, const char *type) {
  static const char *const defaults[] = {"application/json", "application/xml"};
  size_t n = c->content_types.n ? c->content_types.n : 2;
  for (size_t i = 0; i < n; i++) {
    char want[128];
    media_type(c->content_types.n ? c->content_types.v[i] : defaults[i], want, sizeof want);
    if (!strcmp(want, type)) return 1;
  }
  return 0;
}

/* Constant-time equality of two byte strings, compared as SHA-256 digests so that the time does
 * not depend on where or whether the lengths differ. */
static int secret_equal(const void *a, size_t alen, const void *b, size_t blen) {
  char ha[65], hb[65];
  hub_sha256_hex(a, alen, ha);
  hub_sha256_hex(b, blen, hb);
  return CRYPTO_memcmp(ha, hb, 64) == 0;
}

static void unavailable(struct hub_http_answer *a, const char *why, const char *detail) {
  a->retry_after = strcmp(why, "stopping") ? RETRY_AFTER : RETRY_AFTER_STOPPING;
  hub_http_answer_error(a, 503, why, "%s", detail);
}

static void on_headers(void *arg, const struct hub_http_request *r, struct hub_http_answer *a) {
  struct state *s = arg;
  if (hub_webhook_paused(s)) {
    unavailable(a, "unavailable", "the transport cannot take writes now (the source is paused); retry later");
    return;
  }
  if (set(s->cfg->auth.bearer_token_file)) {
    const char *h = hub_http_request_header(r, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) {
      a->www_authenticate = "Bearer realm=\"lienthong\"";
      hub_http_answer_error(a, 401, "token missing", "header Authorization: Bearer TOKEN is missing");
      return;
    }
    if (!secret_equal(h + 7, strlen(h + 7), s->secret, s->secret_len)) {
      a->www_authenticate = "Bearer realm=\"lienthong\", error=\"invalid_token\"";
      hub_http_answer_error(a, 401, "token invalid", "the bearer token in header Authorization is not accepted");
      return;
    }
  }
  const char *ct = hub_http_request_header(r, "Content-Type");
  char type[128];
  media_type(ct ? ct : "", type, sizeof type);
  if (!ct || !accepted(s->cfg, type))
    hub_http_answer_error(a, 415, "unsupported content type", "header Content-Type %s%s%s is not accepted on %s",
                          ct ? "'" : "", ct ? ct : "is missing: it", ct ? "'" : "", s->cfg->path);
}

/* X-Signature-256: sha256=HEX over the raw body. */
static int signature_ok(struct state *s, const struct hub_http_request *r, const unsigned char *body, size_t len,
                        struct hub_http_answer *a) {
  const char *h = hub_http_request_header(r, SIG_HEADER);
  if (!h) {
    hub_http_answer_error(a, 401, "signature missing",
                          "header " SIG_HEADER " is missing: sha256=HEX of the HMAC-SHA256 of the body");
    return 0;
  }
  char want[65], got[65] = "";
  hub_vxp_hash_header(s->secret, s->secret_len, body, len, want);
  size_t n = strncasecmp(h, "sha256=", 7) ? 0 : strlen(h + 7);
  for (size_t i = 0; n == 64 && i < 64; i++) { /* hex of either case */
    char x = h[7 + i];
    got[i] = (char)(x >= 'A' && x <= 'F' ? x + 32 : x);
  }
  if (n != 64 || CRYPTO_memcmp(got, want, 64)) {
    hub_http_answer_error(a, 401, "signature mismatch",
                          "header " SIG_HEADER " is not sha256=HEX of the HMAC-SHA256 of this body with the "
                          "shared secret");
    return 0;
  }
  return 1;
}

/* The record key from a parsed body or a header; 0 with the answer set when it is missing. */
static int find_key(struct state *s, const struct hub_http_request *r, json_t *json, xmlDocPtr doc, char **key,
                    struct hub_http_answer *a) {
  const char *expr = s->cfg->key;
  *key = NULL;
  if (s->key_kind == KEY_NONE) return 1;
  if (s->key_kind == KEY_HEADER) {
    const char *v = hub_http_request_header(r, s->key_header);
    if (v && *v) *key = strdup(v);
    if (!v || !*v) hub_http_answer_error(a, 400, "missing key", "header %s (the record key) is missing", s->key_header);
    return v && *v;
  }
  if (s->key_kind == KEY_JSONPATH) {
    if (!json) {
      hub_http_answer_error(a, 400, "missing key", "key %s is a JSONPath, but the body is not JSON", expr);
      return 0;
    }
    json_t *res = lt_jsonpath_query_new(s->jsonpath, json);
    json_t *v = json_array_size(res) == 1 ? json_array_get(res, 0) : NULL;
    char num[32];
    if (json_is_string(v)) {
      *key = strndup(json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
      snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
      *key = strdup(num);
    } else if (!json_array_size(res)) {
      hub_http_answer_error(a, 400, "missing key", "key %s matched nothing in the body", expr);
    } else if (json_array_size(res) > 1) {
      hub_http_answer_error(a, 400, "missing key", "key %s matched %zu values in the body; a key is one", expr,
                            json_array_size(res));
    } else {
      hub_http_answer_error(a, 400, "missing key", "key %s matched a value that is not a string or an integer", expr);
    }
    json_decref(res);
    if (*key && !**key) {
      free(*key);
      *key = NULL;
      hub_http_answer_error(a, 400, "missing key", "key %s is empty in the body", expr);
    }
    return *key != NULL;
  }
  if (!doc) {
    hub_http_answer_error(a, 400, "missing key", "key %s is an XPath, but the body is not XML", expr);
    return 0;
  }
  hub_xml_init_thread(); /* XPath diagnostics into the hub's logger on this connection's thread */
  xmlXPathContextPtr xc = xmlXPathNewContext(doc);
  xmlXPathObjectPtr o = xc ? xmlXPathCompiledEval(s->xpath, xc) : NULL;
  int empty_set = o && o->type == XPATH_NODESET && xmlXPathNodeSetIsEmpty(o->nodesetval);
  xmlChar *v = o && !empty_set ? xmlXPathCastToString(o) : NULL;
  if (v && *v)
    *key = strdup((const char *)v);
  else
    hub_http_answer_error(a, 400, "missing key", "key %s %s in the body", expr,
                          empty_set || !o ? "matched nothing" : "is empty");
  xmlFree(v);
  xmlXPathFreeObject(o);
  xmlXPathFreeContext(xc);
  return *key != NULL;
}

static void on_request(void *arg, const struct hub_http_request *r, struct hub_http_answer *a) {
  struct state *s = arg;
  size_t len = 0;
  const unsigned char *body = hub_http_request_body(r, &len);
  json_t *json = NULL;
  xmlDocPtr doc = NULL;
  char *key = NULL, err[600] = "";
  struct hub_msg *m = NULL;
  if (hub_webhook_paused(s)) {
    unavailable(a, "unavailable", "the transport cannot take writes now (the source is paused); retry later");
    goto out;
  }
  if (set(s->cfg->auth.hmac_sha256_secret_file) && !signature_ok(s, r, body, len, a)) goto out;
  const char *ct = hub_http_request_header(r, "Content-Type");
  char type[128];
  media_type(ct ? ct : "", type, sizeof type);
  enum body_kind kind = kind_of(type);
  if (kind == BODY_JSON && lt_json_parse(body, len, "body", &json, err, sizeof err) != HUB_OK) {
    hub_http_answer_error(a, 400, "malformed JSON", "%s", err);
    goto out;
  }
  if (kind == BODY_XML) {
    struct hub_xml_limits lim = {len + 1, 0};
    hub_err_t rc = hub_xml_parse(body, len, &lim, "body", &doc, err, sizeof err);
    if (rc != HUB_OK) {
      hub_http_answer_error(a, 400, rc == HUB_ERR_XML_HOSTILE ? "refused XML" : "malformed XML", "%s", err);
      goto out;
    }
  }
  if (!find_key(s, r, json, doc, &key, a)) goto out;
  char id[37], trace[56];
  /* A caller that re-sends an event after a lost answer (the hub died before its 202) names it
   * with the same Idempotency-Key: the record then gets the same lt.id, so everything downstream
   * (a sink's Idempotency-Key) sees one event, not two. */
  if (hub_webhook_event_id("http-listen", hub_source_name(s->ctx), hub_http_request_header(r, "Idempotency-Key"),
                           id) != HUB_OK) {
    unavailable(a, "unavailable", "out of memory; nothing was written");
    goto out;
  }
  const char *tp = hub_traceparent_or_new(hub_http_request_header(r, "traceparent"), trace);
  m = hub_msg_new(key, key ? strlen(key) : 0, body, len);
  hub_err_t rc = m ? HUB_OK : HUB_ERR_NOMEM;
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_ID, id);
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_SOURCE, hub_source_name(s->ctx));
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, ct);
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_TRACEPARENT, tp);
  if (rc == HUB_OK) rc = hub_source_emit(s->ctx, &m, 1, NULL, 0);
  if (rc == HUB_OK) {
    json_t *o = json_pack("{s:s}", "id", id);
    a->body = json_dumps(o, JSON_COMPACT);
    a->status = 202;
    json_decref(o);
  } else if (rc == HUB_ERR_STOPPED) {
    unavailable(a, "stopping", "the hub is stopping; nothing was written");
  } else {
    unavailable(a, "unavailable",
                rc == HUB_ERR_NOMEM ? "out of memory; nothing was written"
                                    : "the transport did not take the write; nothing was written");
  }
out:
  hub_msg_destroy(m);
  free(key);
  json_decref(json);
  if (doc) xmlFreeDoc(doc);
}

static void hl_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  hub_webhook_stop(s);
  free(s->cert);
  free(s->key_file);
  free(s->ca);
  if (s->secret) OPENSSL_cleanse(s->secret, s->secret_len);
  free(s->secret);
  lt_jsonpath_destroy(s->jsonpath);
  if (s->xpath) xmlXPathFreeCompExpr(s->xpath);
  free(s);
}

/* The secret or token of `file`, trailing line ends removed. */
static hub_err_t read_secret(struct state *s, const struct hub_plugin_env *env, const char *file, char *errbuf,
                             size_t errbuf_size) {
  char *path = hub_plugin_env_path_new(env, file), why[600];
  hub_err_t rc = path ? hub_file_read(path, SECRET_MAX, &s->secret, &s->secret_len, why, sizeof why) : HUB_ERR_NOMEM;
  if (rc == HUB_OK) {
    while (s->secret_len && (s->secret[s->secret_len - 1] == '\n' || s->secret[s->secret_len - 1] == '\r'))
      s->secret[--s->secret_len] = '\0';
    if (s->secret_len < SECRET_MIN) {
      snprintf(why, sizeof why, "%s: a secret must have at least %d bytes", path, SECRET_MIN);
      rc = HUB_ERR_CONFIG;
    }
  }
  if (rc != HUB_OK)
    rc = hub_node_error(hub_plugin_env_at(env, "auth"), errbuf, errbuf_size, "auth: %s",
                        rc == HUB_ERR_NOMEM ? "out of memory" : why);
  free(path);
  return rc;
}

/* TLS files are read when the server starts; lint already says when one cannot be. */
static hub_err_t readable(const struct hub_plugin_env *env, const char *option, const char *path, char *errbuf,
                          size_t errbuf_size) {
  if (!path || access(path, R_OK) == 0) return HUB_OK;
  return hub_node_error(hub_plugin_env_at(env, option), errbuf, errbuf_size, "%s: %s: %s", option, path,
                        strerror(errno));
}

static hub_err_t hl_create(const void *cfg, const struct hub_plugin_env *env, struct hub_source_ctx *ctx, void **state,
                           char *errbuf, size_t errbuf_size) {
  const struct cfg *c = cfg;
  struct state *s = calloc(1, sizeof *s);
  hub_err_t rc = s ? HUB_OK : HUB_ERR_NOMEM;
  *state = s;
  if (rc != HUB_OK) return rc;
  s->cfg = c;
  s->ctx = ctx;
  if (set(c->tls.cert) && (!(s->cert = hub_plugin_env_path_new(env, c->tls.cert)) ||
                           !(s->key_file = hub_plugin_env_path_new(env, c->tls.key))))
    return HUB_ERR_NOMEM;
  if (set(c->auth.client_ca_file) && !(s->ca = hub_plugin_env_path_new(env, c->auth.client_ca_file)))
    return HUB_ERR_NOMEM;
  if ((rc = readable(env, "tls", s->cert, errbuf, errbuf_size)) != HUB_OK ||
      (rc = readable(env, "tls", s->key_file, errbuf, errbuf_size)) != HUB_OK ||
      (rc = readable(env, "auth", s->ca, errbuf, errbuf_size)) != HUB_OK)
    return rc;
  if (set(c->auth.hmac_sha256_secret_file))
    rc = read_secret(s, env, c->auth.hmac_sha256_secret_file, errbuf, errbuf_size);
  if (set(c->auth.bearer_token_file)) rc = read_secret(s, env, c->auth.bearer_token_file, errbuf, errbuf_size);
  if (rc != HUB_OK) return rc;
  const char *k = c->key;
  char why[512] = "";
  if (!set(k)) {
    s->key_kind = KEY_NONE;
  } else if (!strncmp(k, "header:", 7)) {
    s->key_kind = KEY_HEADER;
    s->key_header = k + 7;
    if (!*s->key_header)
      return hub_node_error(hub_plugin_env_at(env, "key"), errbuf, errbuf_size, "key 'header:' needs a header name");
  } else if (k[0] == '$') {
    s->key_kind = KEY_JSONPATH;
    if (lt_jsonpath_compile(k, &s->jsonpath, why, sizeof why) != HUB_OK)
      return hub_node_error(hub_plugin_env_at(env, "key"), errbuf, errbuf_size, "key '%s' is not a JSONPath: %s", k,
                            why);
  } else {
    s->key_kind = KEY_XPATH;
    hub_xml_init_thread();
    if (!(s->xpath = xmlXPathCompile((const xmlChar *)k)))
      return hub_node_error(hub_plugin_env_at(env, "key"), errbuf, errbuf_size,
                            "key '%s' is not an XPath (nor a JSONPath starting with $, nor header:NAME)", k);
  }
  /* Until it starts, a request to its path is answered 503 (retry), not 404 (gone). */
  return hub_webhook_reserve(&s->wh, c->listen, c->path);
}

static hub_err_t hl_start(void *p, char *errbuf, size_t errbuf_size) {
  struct state *s = p;
  struct hub_http_route_cfg rc = {
      .owner = hub_source_name(s->ctx),
      .listen = s->cfg->listen,
      .path = s->cfg->path,
      .max_body = (size_t)s->cfg->max_body,
      .tls = {s->cert, s->key_file, s->ca},
      .on_headers = on_headers,
      .on_request = on_request,
      .arg = s,
  };
  hub_err_t err = hub_webhook_start(&s->wh, &rc, errbuf, errbuf_size);
  return err;
}

static const struct hub_source_ops ops = {
    .info = {.name = "http-listen",
             .summary = "webhook endpoint: each POST becomes a record, answered 202 only after it is committed",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = hl_create,
    .start = hl_start,
    .poll = NULL,
    .pause = hub_webhook_pause,
    .resume = hub_webhook_resume,
    .stop = hub_webhook_stop,
    .health = hub_webhook_health,
    .destroy = hl_destroy,
};
HUB_SOURCE_PLUGIN(hub_plugin_source_http_listen, ops);
