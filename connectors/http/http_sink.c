/* Sink `http`: delivers each record to a REST endpoint through the shared HTTP client
 * (hub/io/http_client.h), with the endpoint's circuit breaker and rate limit (hub/io/breaker.h,
 * hub/io/ratelimit.h) and its credentials (hub/io/http_auth.h). The URL may name parts of the
 * record (${key}, ${header:NAME}, ${json:JSONPATH}); each call carries Idempotency-Key (lt.id),
 * the record's Content-Type and traceparent. 2xx: OK with a result record {"status", "headers",
 * "body"}; 5xx, 408, 429, timeouts and connection errors: RETRY (Retry-After honoured); any
 * other status: REJECT with the status and the body in the DLQ record. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hub/core/registry.h"
#include "hub/engine/connector.h"
#include "hub/io/breaker.h"
#include "hub/io/http_auth.h"
#include "hub/io/http_client.h"
#include "hub/io/ratelimit.h"
#include "mappings/shape/json.h"
#include "mappings/shape/jsonpath.h"

#define DETAIL_MAX 16384 /* response body bytes kept in a DLQ record */

struct tls_cfg {
  char *ca_file, *cert_file, *key_file;
};
struct basic_cfg {
  char *user, *password_file;
};
struct oauth2_cfg {
  char *token_url, *client_id, *client_secret_file, *scope;
};
struct auth_cfg {
  char *bearer_token_file;
  struct basic_cfg basic;
  struct oauth2_cfg oauth2;
};
struct rate_cfg {
  int64_t per_second, burst;
};
struct cfg {
  char *url;
  int method;
  struct hub_str_map headers;
  int64_t timeout_ms;
  struct tls_cfg tls;
  struct auth_cfg auth;
  struct rate_cfg rate_limit;
  struct hub_breaker_cfg breaker;
  int follow_redirects;
  int64_t max_response;
};

static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE", "GET"};

#define T(f) offsetof(struct tls_cfg, f)
static const struct hub_cfg_entry tls_entries[] = {
    {"ca_file", HUB_CFG_STR, T(ca_file), NULL, 0, "PEM file of the CAs to trust (default: the system's)"},
    {"cert_file", HUB_CFG_STR, T(cert_file), NULL, 0, "client certificate (PEM) for mutual TLS"},
    {"key_file", HUB_CFG_STR, T(key_file), NULL, 0, "private key (PEM) of cert_file"},
    {NULL},
};
static hub_err_t tls_check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                           size_t errbuf_size) {
  const struct tls_cfg *c = p;
  if (!c->cert_file != !c->key_file)
    return hub_node_error(hub_cfg_value_at(node, at, c->cert_file ? "cert_file" : "key_file"), errbuf, errbuf_size,
                          "tls: cert_file and key_file go together");
  return HUB_OK;
}
static const struct hub_cfg_constraint tls_rules[] = {
    {"cert_file and key_file go together", "cert_file", "{cert_file: c.pem}", "{cert_file: c.pem, key_file: k.pem}"},
    {NULL},
};
static const struct hub_cfg_map tls_map = {"tls", tls_entries, .check = tls_check, .constraints = tls_rules};

#define B(f) offsetof(struct basic_cfg, f)
static const struct hub_cfg_entry basic_entries[] = {
    {"user", HUB_CFG_STR, B(user), NULL, 0, "user name"},
    {"password_file", HUB_CFG_STR, B(password_file), NULL, 0, "file holding the password (first line)"},
    {NULL},
};
static const struct hub_cfg_map basic_map = {"basic", basic_entries};

#define O(f) offsetof(struct oauth2_cfg, f)
static const struct hub_cfg_entry oauth2_entries[] = {
    {"token_url", HUB_CFG_STR, O(token_url), NULL, 0, "the token endpoint (client credentials grant)"},
    {"client_id", HUB_CFG_STR, O(client_id), NULL, 0, "client id"},
    {"client_secret_file", HUB_CFG_STR, O(client_secret_file), NULL, 0, "file holding the client secret (first line)"},
    {"scope", HUB_CFG_STR, O(scope), NULL, 0, "scope to ask for"},
    {NULL},
};
static const struct hub_cfg_map oauth2_map = {"oauth2", oauth2_entries};

#define A(f) offsetof(struct auth_cfg, f)
static const struct hub_cfg_entry auth_entries[] = {
    {"bearer_token_file", HUB_CFG_STR, A(bearer_token_file), NULL, 0,
     "file holding a bearer token (first line; read for each call, so it may be rotated)"},
    {"basic", HUB_CFG_OBJECT, A(basic), NULL, 0, "HTTP basic authentication", NULL, &basic_map},
    {"oauth2", HUB_CFG_OBJECT, A(oauth2), NULL, 0, "OAuth2 client credentials; the token is cached and renewed",
     NULL, &oauth2_map},
    {NULL},
};
static hub_err_t auth_check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                            size_t errbuf_size) {
  const struct auth_cfg *c = p;
  int basic = c->basic.user || c->basic.password_file;
  int oauth2 = c->oauth2.token_url || c->oauth2.client_id || c->oauth2.client_secret_file || c->oauth2.scope;
  if (!!c->bearer_token_file + basic + oauth2 > 1)
    return hub_node_error(hub_cfg_value_at(node, at, oauth2 ? "oauth2" : "basic"), errbuf, errbuf_size,
                          "auth: give one of bearer_token_file, basic and oauth2");
  if (basic && (!c->basic.user || !c->basic.password_file))
    return hub_node_error(hub_cfg_value_at(node, at, "basic"), errbuf, errbuf_size,
                          "auth.basic needs user and password_file");
  if (oauth2 && (!c->oauth2.token_url || !c->oauth2.client_id || !c->oauth2.client_secret_file))
    return hub_node_error(hub_cfg_value_at(node, at, "oauth2"), errbuf, errbuf_size,
                          "auth.oauth2 needs token_url, client_id and client_secret_file");
  return HUB_OK;
}
static const struct hub_cfg_constraint auth_rules[] = {
    {"at most one of bearer_token_file, basic and oauth2", "basic",
     "{bearer_token_file: t, basic: {user: u, password_file: p}}", "{basic: {user: u, password_file: p}}"},
    {"basic needs user and password_file", "basic", "{basic: {user: u}}", NULL},
    {"oauth2 needs token_url, client_id and client_secret_file", "oauth2",
     "{oauth2: {token_url: 'http://127.0.0.1:1/t', client_id: c}}",
     "{oauth2: {token_url: 'http://127.0.0.1:1/t', client_id: c, client_secret_file: s}}"},
    {NULL},
};
static const struct hub_cfg_map auth_map = {"auth", auth_entries, .check = auth_check, .constraints = auth_rules};

#define R(f) offsetof(struct rate_cfg, f)
static const struct hub_cfg_entry rate_entries[] = {
    {"per_second", HUB_CFG_INT, R(per_second), "0", 0, "calls per second (0: no limit)", NULL, NULL, 0, 100000},
    {"burst", HUB_CFG_INT, R(burst), "1", 0, "calls that may go at once after a quiet spell", NULL, NULL, 1, 100000},
    {NULL},
};
static const struct hub_cfg_map rate_map = {"rate_limit", rate_entries};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"url", HUB_CFG_STR, F(url), NULL, 1,
     "http(s) URL; ${key}, ${header:NAME} and ${json:JSONPATH} are replaced by the record's (URL-encoded)"},
    {"method", HUB_CFG_ENUM, F(method), "POST", 0, "HTTP method (GET and DELETE send no body)",
     "POST|PUT|PATCH|DELETE|GET"},
    {"headers", HUB_CFG_STR_MAP, F(headers), NULL, 0, "extra request headers, name: literal value"},
    {"timeout", HUB_CFG_DURATION, F(timeout_ms), "30s", 0, "the whole call, and the wait for a rate-limit token",
     NULL, NULL, 100, 600000},
    {"tls", HUB_CFG_OBJECT, F(tls), NULL, 0, "TLS files", NULL, &tls_map},
    {"auth", HUB_CFG_OBJECT, F(auth), NULL, 0, "credentials (one kind)", NULL, &auth_map},
    {"rate_limit", HUB_CFG_OBJECT, F(rate_limit), NULL, 0, "token bucket for this endpoint", NULL, &rate_map},
    {"breaker", HUB_CFG_OBJECT, F(breaker), NULL, 0, "circuit breaker for this endpoint", NULL, &hub_breaker_cfg_map},
    {"follow_redirects", HUB_CFG_BOOL, F(follow_redirects), "false", 0,
     "follow 3xx redirects (http and https only, at most 5); otherwise a 3xx is REJECTed"},
    {"max_response", HUB_CFG_SIZE, F(max_response), "1MiB", 0, "a longer response body is an error (RETRY)", NULL,
     NULL, 1024, 64 * 1024 * 1024},
    {NULL},
};

/* Headers the sink sets itself; a configured one would be sent twice. */
static const char *const own_headers[] = {"Idempotency-Key", "traceparent", "Authorization", NULL};

static hub_err_t sink_check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                            size_t errbuf_size) {
  const struct cfg *c = p;
  if (c->url && strncasecmp(c->url, "http://", 7) != 0 && strncasecmp(c->url, "https://", 8) != 0)
    return hub_node_error(hub_cfg_value_at(node, at, "url"), errbuf, errbuf_size,
                          "url must start with http:// or https://");
  const char *auth = c->url ? strstr(c->url, "://") : NULL;
  if (auth && memchr(auth + 3, '@', strcspn(auth + 3, "/?#")))
    return hub_node_error(hub_cfg_value_at(node, at, "url"), errbuf, errbuf_size,
                          "url: credentials in the URL would show in logs and the DLQ; use auth");
  for (size_t i = 0; i < c->headers.n; i++) {
    const char *k = c->headers.keys[i], *v = c->headers.values[i];
    for (size_t j = 0; own_headers[j]; j++)
      if (!strcasecmp(k, own_headers[j]))
        return hub_node_error(hub_cfg_value_at(node, at, "headers"), errbuf, errbuf_size,
                              "headers: %s is set by the sink (use auth for credentials)", k);
    if (!*k || strpbrk(k, ": \t\r\n") || strpbrk(v, "\r\n"))
      return hub_node_error(hub_cfg_value_at(node, at, "headers"), errbuf, errbuf_size,
                            "headers: '%s' is not a valid header name or its value has a line break", k);
  }
  return HUB_OK;
}
static const struct hub_cfg_constraint sink_rules[] = {
    {"url starts with http:// or https://", "url", "{url: 'ftp://127.0.0.1/x'}", "{url: 'https://127.0.0.1/x'}"},
    {"url holds no user:password@ (use auth)", "url", "{url: 'http://u:p@127.0.0.1/x'}",
     "{url: 'http://127.0.0.1/x?mail=a@b'}"},
    {"headers do not set Idempotency-Key, traceparent or Authorization (the sink does)", "headers",
     "{url: 'http://127.0.0.1/x', headers: {Idempotency-Key: x}}", "{url: 'http://127.0.0.1/x', headers: {X-A: x}}"},
    {NULL},
};
static const struct hub_cfg_map map = {"http", entries, .check = sink_check, .constraints = sink_rules};

/* The URL template: literal text and placeholders, in order. */
enum part_kind { LIT, KEY, HEADER, JSON };
struct part {
  enum part_kind kind;
  char *text; /* LIT: the text; HEADER: the name; JSON: the path; KEY: NULL */
  char *name; /* as written, "${...}", for messages */
  struct lt_jsonpath *path;
};

struct state {
  const struct cfg *cfg;
  const char *method;
  struct part *parts;
  size_t n_parts;
  int needs_json;
  char *endpoint; /* scheme://host[:port] of the URL, for metrics and health */
  char *ca_file, *cert_file, *key_file;
  struct hub_http_tls tls;
  struct hub_http_auth *auth;
  struct hub_breaker *breaker;
  struct hub_ratelimit *limit;
};

static void parts_free(struct state *s) {
  for (size_t i = 0; i < s->n_parts; i++) {
    free(s->parts[i].text);
    free(s->parts[i].name);
    lt_jsonpath_destroy(s->parts[i].path);
  }
  free(s->parts);
  s->parts = NULL;
  s->n_parts = 0;
}

static void hs_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  parts_free(s);
  free(s->endpoint);
  free(s->ca_file);
  free(s->cert_file);
  free(s->key_file);
  hub_http_auth_destroy(s->auth);
  hub_breaker_destroy(s->breaker);
  hub_ratelimit_destroy(s->limit);
  free(s);
}

static int part_add(struct state *s, enum part_kind kind, const char *text, size_t len, const char *name,
                    size_t name_len) {
  struct part *v = realloc(s->parts, (s->n_parts + 1) * sizeof *v);
  if (!v) return -1;
  s->parts = v;
  struct part *pt = &v[s->n_parts];
  memset(pt, 0, sizeof *pt);
  pt->kind = kind;
  if ((text && !(pt->text = strndup(text, len))) || (name && !(pt->name = strndup(name, name_len)))) {
    free(pt->text);
    return -1;
  }
  s->n_parts++;
  return 0;
}

/* Splits the URL into literal text and placeholders; a bad placeholder is a config error. */
static hub_err_t parse_url(struct state *s, const struct hub_plugin_env *env, char *errbuf, size_t errbuf_size) {
  const char *u = s->cfg->url, *p = u;
  const struct hub_node *at = hub_plugin_env_at(env, "url");
  while (*p) {
    const char *open = strstr(p, "${");
    if (!open) {
      if (part_add(s, LIT, p, strlen(p), NULL, 0)) return HUB_ERR_NOMEM;
      break;
    }
    if (open > p && part_add(s, LIT, p, (size_t)(open - p), NULL, 0)) return HUB_ERR_NOMEM;
    const char *close = strchr(open, '}');
    if (!close)
      return hub_node_error(at, errbuf, errbuf_size, "url: '${' at column %d has no closing '}'", (int)(open - u) + 1);
    const char *in = open + 2;
    size_t in_len = (size_t)(close - in), name_len = (size_t)(close - open) + 1;
    if (in_len == 3 && !memcmp(in, "key", 3)) {
      if (part_add(s, KEY, NULL, 0, open, name_len)) return HUB_ERR_NOMEM;
    } else if (in_len > 7 && !memcmp(in, "header:", 7)) {
      if (part_add(s, HEADER, in + 7, in_len - 7, open, name_len)) return HUB_ERR_NOMEM;
    } else if (in_len > 5 && !memcmp(in, "json:", 5)) {
      if (part_add(s, JSON, in + 5, in_len - 5, open, name_len)) return HUB_ERR_NOMEM;
      char e[256];
      struct part *pt = &s->parts[s->n_parts - 1];
      if (lt_jsonpath_compile(pt->text, &pt->path, e, sizeof e) != HUB_OK)
        return hub_node_error(at, errbuf, errbuf_size, "url: %s: JSONPath %s", pt->name, e);
      s->needs_json = 1;
    } else {
      return hub_node_error(at, errbuf, errbuf_size,
                            "url: unknown placeholder '%.*s' (use ${key}, ${header:NAME} or ${json:JSONPATH})",
                            (int)name_len, open);
    }
    p = close + 1;
  }
  /* The endpoint: scheme://authority, up to the path. */
  const char *host = strstr(u, "://");
  size_t n = host ? strcspn(host + 3, "/?#") + (size_t)(host + 3 - u) : strlen(u);
  if (!(s->endpoint = strndup(u, n))) return HUB_ERR_NOMEM;
  for (char *q = s->endpoint; *q; q++) /* it is a label value in /metrics */
    if (*q == '"' || *q == '\\' || *q == '\n') *q = '_';
  return HUB_OK;
}

static char *path_or_null(const struct hub_plugin_env *env, const char *p, int *oom) {
  if (!p) return NULL;
  char *r = hub_plugin_env_path_new(env, p);
  if (!r) *oom = 1;
  return r;
}

static hub_err_t hs_create(const void *cfgp, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  const struct cfg *cfg = cfgp;
  struct state *s = calloc(1, sizeof *s);
  char *tok = NULL, *pw = NULL, *secret = NULL;
  hub_err_t rc = HUB_ERR_NOMEM;
  if (!s) goto out;
  s->cfg = cfg;
  s->method = methods[cfg->method];
  if ((rc = parse_url(s, env, errbuf, errbuf_size)) != HUB_OK) goto out;
  int oom = 0;
  s->ca_file = path_or_null(env, cfg->tls.ca_file, &oom);
  s->cert_file = path_or_null(env, cfg->tls.cert_file, &oom);
  s->key_file = path_or_null(env, cfg->tls.key_file, &oom);
  s->tls = (struct hub_http_tls){s->ca_file, s->cert_file, s->key_file};
  const struct auth_cfg *a = &cfg->auth;
  struct hub_http_auth_cfg ac = {.kind = HUB_HTTP_AUTH_NONE, .tls = &s->tls};
  if (a->bearer_token_file) {
    ac.kind = HUB_HTTP_AUTH_BEARER;
    ac.token_file = tok = path_or_null(env, a->bearer_token_file, &oom);
  } else if (a->basic.user) {
    ac.kind = HUB_HTTP_AUTH_BASIC;
    ac.user = a->basic.user;
    ac.password_file = pw = path_or_null(env, a->basic.password_file, &oom);
  } else if (a->oauth2.token_url) {
    ac.kind = HUB_HTTP_AUTH_OAUTH2;
    ac.token_url = a->oauth2.token_url;
    ac.client_id = a->oauth2.client_id;
    ac.client_secret_file = secret = path_or_null(env, a->oauth2.client_secret_file, &oom);
    ac.scope = a->oauth2.scope;
  }
  rc = HUB_ERR_NOMEM;
  if (oom || hub_http_auth_new(&ac, &s->auth) != HUB_OK) goto out;
  /* The secret files must exist now (they are read again for each use, to allow rotation). */
  const char *secret_file = tok ? tok : pw ? pw : secret;
  if (secret_file && access(secret_file, R_OK) != 0) {
    rc = hub_node_error(hub_plugin_env_at(env, "auth"), errbuf, errbuf_size, "auth: cannot read %s: %s", secret_file,
                        strerror(errno));
    goto out;
  }
  const char *owner = env && env->owner ? env->owner : "http";
  if (!(s->breaker = hub_breaker_new_from(owner, s->endpoint, &cfg->breaker)))
    goto out;
  if (cfg->rate_limit.per_second > 0 &&
      !(s->limit = hub_ratelimit_new(owner, s->endpoint, (double)cfg->rate_limit.per_second, cfg->rate_limit.burst)))
    goto out;
  rc = HUB_OK;
out:
  free(tok);
  free(pw);
  free(secret);
  if (rc != HUB_OK) {
    if (rc == HUB_ERR_NOMEM) snprintf(errbuf, errbuf_size, "http: out of memory");
    hs_destroy(s);
    s = NULL;
  }
  *state = s;
  return rc;
}

/* The URL for this record (malloc'd), or NULL with a REJECT reason in out (or out of memory). */
static char *build_url(struct state *s, const struct hub_msg *in, struct hub_step_outcome *out,
                       enum hub_step_result *sr) {
  struct lt_buf b = {0};
  json_t *doc = NULL;
  char e[512];
  *sr = HUB_STEP_OK;
  if (s->needs_json && lt_json_parse(in->value, in->value_len, "value", &doc, e, sizeof e) != HUB_OK) {
    *sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_JSON, "url needs ${json:...} but the record's %s", e);
    goto out;
  }
  for (size_t i = 0; i < s->n_parts; i++) {
    const struct part *pt = &s->parts[i];
    char *val = NULL, *owned = NULL;
    size_t len = 0;
    if (pt->kind == LIT) {
      lt_buf_str(&b, pt->text);
      continue;
    }
    if (pt->kind == KEY) {
      if (!in->key || !in->key_len) {
        *sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_NOT_FOUND, "url: %s: the record has no key", pt->name);
        goto out;
      }
      val = (char *)in->key;
      len = in->key_len;
    } else if (pt->kind == HEADER) {
      const struct hub_header *h = hub_msg_header_get(in, pt->text);
      if (!h) {
        *sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_NOT_FOUND, "url: %s: the record has no header '%s'",
                            pt->name, pt->text);
        goto out;
      }
      val = (char *)h->value;
      len = h->value_len;
    } else {
      json_t *nodes = lt_jsonpath_query_new(pt->path, doc), *v = json_array_get(nodes, 0);
      if (json_array_size(nodes) != 1 || !(json_is_string(v) || json_is_number(v) || json_is_boolean(v))) {
        *sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_NOT_FOUND, "url: %s: %s in the record's value", pt->name,
                            !json_array_size(nodes)        ? "matches nothing"
                            : json_array_size(nodes) > 1 ? "matches more than one value"
                                                         : "is not a string, number or boolean");
        json_decref(nodes);
        goto out;
      }
      if (json_is_string(v)) {
        owned = strndup(json_string_value(v), json_string_length(v));
        len = json_string_length(v);
      } else {
        owned = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        len = owned ? strlen(owned) : 0;
      }
      json_decref(nodes);
      val = owned;
    }
    if (val && !len) { /* an empty path segment or query value would address something else */
      free(owned);
      *sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_NOT_FOUND, "url: %s: the record's value for it is empty",
                          pt->name);
      goto out;
    }
    char *esc = val ? curl_easy_escape(NULL, val, (int)len) : NULL;
    free(owned);
    if (!esc) {
      b.oom = 1;
      break;
    }
    lt_buf_str(&b, esc);
    curl_free(esc);
  }
  if (b.oom) *sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory building the URL");
out:
  json_decref(doc);
  if (*sr != HUB_STEP_OK) {
    free(b.s);
    return NULL;
  }
  return b.s ? b.s : strdup("");
}

/* The result record's value: {"status", "headers", "body"} (body in base64 with
 * "body_base64": true when it is not UTF-8). */
static struct hub_msg *result_new(const struct hub_http_response *r) {
  json_t *j = json_object(), *h = json_object();
  struct hub_msg *m = NULL;
  char *text = NULL, *b64 = NULL;
  if (!j || !h) goto out;
  for (size_t i = 0; i < r->headers.n; i++) {
    json_t *old = json_object_get(h, r->headers.keys[i]);
    if (old) { /* repeated header: joined as HTTP allows (RFC 9110 §5.3) */
      size_t n = json_string_length(old) + strlen(r->headers.values[i]) + 3;
      char *v = malloc(n);
      if (!v) goto out;
      snprintf(v, n, "%s, %s", json_string_value(old), r->headers.values[i]);
      json_object_set_new(h, r->headers.keys[i], json_string(v));
      free(v);
    } else {
      json_object_set_new(h, r->headers.keys[i], json_string(r->headers.values[i]));
    }
  }
  json_object_set_new(j, "status", json_integer(r->status));
  json_object_set(j, "headers", h);
  json_t *body = json_stringn(r->body ? (const char *)r->body : "", r->body_len);
  if (!body) { /* not UTF-8 */
    if (!(b64 = malloc(4 * ((r->body_len + 2) / 3) + 1))) goto out;
    EVP_EncodeBlock((unsigned char *)b64, r->body, (int)r->body_len);
    body = json_string(b64);
    json_object_set_new(j, "body_base64", json_true());
  }
  json_object_set_new(j, "body", body);
  if (!(text = json_dumps(j, JSON_COMPACT))) goto out;
  if ((m = hub_msg_new(NULL, 0, text, strlen(text))) &&
      (hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, "application/json") != HUB_OK ||
       hub_msg_header_set_str(m, HUB_H_TYPE, "http.response") != HUB_OK)) {
    hub_msg_destroy(m);
    m = NULL;
  }
out:
  free(text);
  free(b64);
  json_decref(h);
  json_decref(j);
  return m;
}

/* A header line "Name: value" (malloc'd) for list slot *n. */
static int hdr_add(char **v, size_t *n, const char *name, const char *value, size_t len) {
  size_t sz = strlen(name) + len + 3;
  if (!(v[*n] = malloc(sz))) return -1;
  snprintf(v[*n], sz, "%s: %.*s", name, (int)len, value);
  /* A header value from a record must not smuggle another header in. */
  for (char *p = v[*n]; *p; p++)
    if (*p == '\r' || *p == '\n') *p = ' ';
  (*n)++;
  return 0;
}

static enum hub_step_result hs_deliver(void *p, const struct hub_msg *in, struct hub_msg **result,
                                       struct hub_step_outcome *out) {
  struct state *s = p;
  const struct cfg *c = s->cfg;
  enum hub_step_result sr = HUB_STEP_OK;
  struct hub_http_response resp = {0};
  char *auth_hdr = NULL, *user = NULL, *password = NULL, e[512];
  size_t n_static = 0;
  char **hv = calloc(c->headers.n + 5, sizeof *hv);
  char *url = hv ? build_url(s, in, out, &sr) : NULL;
  if (!hv) sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
  if (sr != HUB_STEP_OK) goto out;
  if (!url) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory building the URL");
    goto out;
  }
  const char *id = hub_msg_header_get_str(in, HUB_H_ID), *tp = hub_msg_header_get_str(in, HUB_H_TRACEPARENT);
  const struct hub_header *ct = hub_msg_header_get(in, HUB_H_CONTENT_TYPE);
  int bad = 0;
  for (size_t i = 0; i < c->headers.n; i++)
    if (!ct || strcasecmp(c->headers.keys[i], "Content-Type") != 0) /* the record's content-type wins */
      bad |= hdr_add(hv, &n_static, c->headers.keys[i], c->headers.values[i], strlen(c->headers.values[i]));
  if (id) bad |= hdr_add(hv, &n_static, "Idempotency-Key", id, strlen(id));
  if (ct) bad |= hdr_add(hv, &n_static, "Content-Type", (const char *)ct->value, ct->value_len);
  if (tp) bad |= hdr_add(hv, &n_static, "traceparent", tp, strlen(tp));
  if (bad) {
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  int with_body = strcmp(s->method, "GET") != 0 && strcmp(s->method, "DELETE") != 0;
  struct hub_http_request req = {.method = s->method, .url = url, .headers = (const char *const *)hv,
                                 .body = with_body ? in->value : NULL, .body_len = with_body ? in->value_len : 0,
                                 .timeout_ms = c->timeout_ms, .tls = &s->tls, .follow_redirects = c->follow_redirects,
                                 .max_body = (size_t)c->max_response};
  for (int round = 0; round < 2; round++) { /* a second round only after a 401 to a cached OAuth2 token */
    int64_t wait_ms = 0;
    if (!hub_breaker_allow(s->breaker, &wait_ms)) {
      sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_UNAVAILABLE, "circuit breaker for %s is open", s->endpoint);
      out->retry_after_ms = wait_ms; /* no use trying before the probe may go */
      goto out;
    }
    if (s->limit && hub_ratelimit_acquire(s->limit, c->timeout_ms) != 0) {
      hub_breaker_cancel(s->breaker); /* the endpoint was not called */
      sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_TIMEOUT, "rate limit for %s: no call slot within %lld ms",
                         s->endpoint, (long long)c->timeout_ms);
      goto out;
    }
    hub_err_t rc = hub_http_auth_apply(s->auth, c->timeout_ms, &auth_hdr, &user, &password, e, sizeof e);
    if (rc != HUB_OK) {
      hub_breaker_cancel(s->breaker);
      sr = hub_step_fail(out, HUB_STEP_RETRY, rc == HUB_ERR_NOMEM ? rc : HUB_ERR_AUTH, "%s", e);
      goto out;
    }
    size_t n = n_static;
    hv[n] = auth_hdr;
    hv[n + 1] = NULL;
    req.basic_user = user;
    req.basic_password = password;
    hub_http_response_release(&resp);
    rc = hub_http_perform(&req, &resp);
    hv[n] = NULL;
    if (rc != HUB_OK) {
      if (rc == HUB_ERR_STOPPED)
        hub_breaker_cancel(s->breaker); /* abandoned: says nothing about the endpoint */
      else
        hub_breaker_record(s->breaker, 0);
      sr = hub_step_fail(out, HUB_STEP_RETRY, rc, "%s", resp.error);
      goto out;
    }
    long st = resp.status;
    if (st == 401 && round == 0 && auth_hdr && c->auth.oauth2.token_url) {
      hub_breaker_record(s->breaker, 1);
      hub_http_auth_rejected(s->auth, auth_hdr);
      free(auth_hdr);
      auth_hdr = NULL;
      continue;
    }
    hub_breaker_record(s->breaker, st < 500);
    if (st >= 200 && st < 300) {
      if (!(*result = result_new(&resp)))
        sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory building the result record");
      goto out;
    }
    const char *body = resp.body ? (const char *)resp.body : "";
    int retry = st >= 500 || st == 408 || st == 429;
    sr = hub_step_fail(out, retry ? HUB_STEP_RETRY : HUB_STEP_REJECT, HUB_ERR_HTTP, "%s %s answered HTTP %ld: %.300s",
                       s->method, url, st, body);
    if (st == 429 || st == 503) {
      int64_t ra = hub_http_retry_after_ms(hub_http_response_header(&resp, "retry-after"), time(NULL));
      if (ra > 0) out->retry_after_ms = ra;
    }
    if (!retry && resp.body_len) { /* the endpoint's explanation, for whoever reads the DLQ */
      size_t dn = resp.body_len < DETAIL_MAX ? resp.body_len : DETAIL_MAX;
      if ((out->detail = malloc(dn))) {
        memcpy(out->detail, resp.body, dn);
        out->detail_len = dn;
      }
    }
    goto out;
  }
out:
  if (hv)
    for (size_t i = 0; i < n_static; i++) free(hv[i]);
  free(hv);
  free(url);
  free(auth_hdr);
  free(user);
  if (password) memset(password, 0, strlen(password));
  free(password);
  hub_http_response_release(&resp);
  return sr;
}

static int hs_health(void *p, char *why, size_t why_size) {
  struct state *s = p;
  return hub_breaker_health(s->breaker, why, why_size);
}

static const struct hub_sink_ops ops = {
    .info = {.name = "http",
             .summary = "calls a REST endpoint for each record (Idempotency-Key: lt.id); circuit breaker, rate limit",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = hs_create,
    .deliver = hs_deliver,
    .health = hs_health,
    .destroy = hs_destroy,
    .concurrent = 1, /* breaker, rate limit, credentials and client are thread-safe; the rest is read-only */
};
HUB_SINK_PLUGIN(hub_plugin_sink_http, ops);
