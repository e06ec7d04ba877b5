/* Sink `dvcqg`: dossiers and their progress to the national public-service portal (DVCQG),
 * vn-standards.md §3.1 (OpenCPS variant: session login, one integration endpoint, `service`
 * field) and §3.2 (separate create / update / progress endpoints, bodies are JSON arrays).
 *
 * A record is a sync request (schemas/dvcqg/dong-bo-va-tien-do.schema.json: {"dossier":
 * DongBoHoSoMC, "progress": CapNhatTienDoHoSoMC}) or a bare DongBoHoSoMC / CapNhatTienDoHoSoMC
 * request. For each dossier: TraCuuHoSo (OpenCPS) tells whether it exists, DongBoHoSoMC goes with
 * isUpdating set from that, and a create answered "đã tồn tại" is sent again as an update; then
 * the progress goes in chunks of at most `progress_chunk` entries, in order. Answers are mapped
 * to OK, RETRY (no answer, 5xx, session trouble, listed codes) or REJECT (the portal refused the
 * data: its message is the DLQ reason, its answer the DLQ detail). Every call of a delivery is
 * listed in the result record, keyed by the dossier code. This file owns the options and the
 * order of calls; dvcqg_portal.c owns one call and its answer. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dvcqg_portal.h"
#include "hub/core/metrics.h"
#include "hub/core/registry.h"
#include "hub/engine/connector.h"
#include "mappings/shape/json.h"

#define DETAIL_MAX 16384                /* answer bytes kept in a DLQ record */
#define KNOWN_MAX 4096                  /* dossier codes remembered as existing (split variant) */
#define EVENT_HEADER "onestop.event-id" /* the one-stop event a request came from (connectors/onestop) */

enum variant { V_OPENCPS, V_SPLIT };

static struct hub_metric_counter m_created = {"lienthong_dvcqg_dossiers_created_total",
                                              "dossiers created on DVCQG (DongBoHoSoMC isUpdating False / URLThemMoi)"};
static struct hub_metric_counter m_updated = {"lienthong_dvcqg_dossiers_updated_total",
                                              "dossier updates accepted by DVCQG"};
static struct hub_metric_counter m_exists = {"lienthong_dvcqg_exists_as_update_total",
                                             "creates answered \"đã tồn tại\" and sent again as updates"};
static struct hub_metric_counter m_chunks = {"lienthong_dvcqg_progress_chunks_total",
                                             "CapNhatTienDoHoSoMC calls accepted (at most 10 entries each)"};
static struct hub_metric_counter m_rejected = {"lienthong_dvcqg_rejected_total",
                                               "deliveries the portal refused (to the DLQ with its message)"};

struct cfg {
  int variant;
  char *url;
  char *auth_endpoint, *integration_endpoint;
  char *create_endpoint, *update_endpoint, *progress_endpoint;
  char *username, *password_file, *bearer_token_file;
  char *madonvi;
  int64_t timeout_ms, progress_chunk, max_response;
  struct hub_str_list ok_codes, session_codes, retry_codes;
  char *exists_text;
  int reuse_connections;
  struct hub_breaker_cfg breaker;
};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"variant", HUB_CFG_ENUM, F(variant), "opencps", 0,
     "which API: opencps (§3.1: session login, one integration endpoint, `service` field, TraCuuHoSo first) or "
     "split (§3.2: create, update and progress endpoints taking JSON arrays)",
     "opencps|split"},
    {"url", HUB_CFG_STR, F(url), NULL, 1,
     "the portal adapter's base URL (http:// or https://), e.g. https://dvcqg.example/ws"},
    {"auth_endpoint", HUB_CFG_STR, F(auth_endpoint), "/api/auth", 0, "opencps: login path, POST {username, password}"},
    {"integration_endpoint", HUB_CFG_STR, F(integration_endpoint), "/api/integration", 0,
     "opencps: the path every service is POSTed to"},
    {"create_endpoint", HUB_CFG_STR, F(create_endpoint), "/api/hoso/themmoi", 0, "split: create path (URLThemMoi)"},
    {"update_endpoint", HUB_CFG_STR, F(update_endpoint), "/api/hoso/capnhat", 0, "split: update path (URLCapNhat)"},
    {"progress_endpoint", HUB_CFG_STR, F(progress_endpoint), "/api/hoso/dongbotientrinh", 0,
     "split: progress path (URLDongBoTienTrinh)"},
    {"username", HUB_CFG_STR, F(username), NULL, 0, "opencps: the account to log in with"},
    {"password_file", HUB_CFG_STR, F(password_file), NULL, 0,
     "opencps: file holding the password (first line; read at each login, so it may be rotated)"},
    {"bearer_token_file", HUB_CFG_STR, F(bearer_token_file), NULL, 0,
     "split: file holding a bearer token sent as Authorization (read for each call); none: no header"},
    {"madonvi", HUB_CFG_STR, F(madonvi), NULL, 0,
     "the unit code (madonvi) for requests that carry none; a request's own madonvi wins"},
    {"timeout", HUB_CFG_DURATION, F(timeout_ms), "30s", 0, "each call, the login included", NULL, NULL, 100, 600000},
    {"progress_chunk", HUB_CFG_INT, F(progress_chunk), "10", 0,
     "progress entries per CapNhatTienDoHoSoMC call (the portal takes at most 10)", NULL, NULL, 1, 10},
    {"ok_codes", HUB_CFG_STR_LIST, F(ok_codes), NULL, 0, "error_code values that mean success; none: 0 and 00"},
    {"session_codes", HUB_CFG_STR_LIST, F(session_codes), NULL, 0,
     "error_code values that mean the session is no longer valid (log in again, call again once); none: -1 and 401"},
    {"retry_codes", HUB_CFG_STR_LIST, F(retry_codes), NULL, 0,
     "error_code values of transient portal failures (RETRY); any other code that is not OK is a REJECT; none: 500 "
     "and 503"},
    {"exists_text", HUB_CFG_STR, F(exists_text), "đã tồn tại", 0,
     "text of a create's answer message saying the dossier exists: the create is sent again as an update"},
    {"max_response", HUB_CFG_SIZE, F(max_response), "1MiB", 0, "a longer answer is an error (RETRY)", NULL, NULL, 1024,
     64 * 1024 * 1024},
    {"reuse_connections", HUB_CFG_BOOL, F(reuse_connections), "false", 0,
     "keep connections to the portal open between calls; off by default because adapters have been seen writing an "
     "answer twice, and on a reused connection the stray copy would be read as the answer to the next call"},
    {"breaker", HUB_CFG_OBJECT, F(breaker), NULL, 0, "circuit breaker for the portal", NULL, &hub_breaker_cfg_map},
    {NULL},
};

static int set(const char *s) {
  return s && *s;
}

static hub_err_t check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                       size_t errbuf_size) {
  const struct cfg *c = p;
  if (c->url && strncasecmp(c->url, "http://", 7) && strncasecmp(c->url, "https://", 8))
    return hub_node_error(hub_cfg_value_at(node, at, "url"), errbuf, errbuf_size,
                          "url must start with http:// or https://");
  if (c->variant == V_OPENCPS && (!set(c->username) || !set(c->password_file)))
    return hub_node_error(hub_cfg_value_at(node, at, set(c->username) ? "password_file" : "username"), errbuf,
                          errbuf_size, "variant opencps logs in: it needs username and password_file");
  if (c->variant == V_SPLIT && (set(c->username) || set(c->password_file)))
    return hub_node_error(hub_cfg_value_at(node, at, set(c->username) ? "username" : "password_file"), errbuf,
                          errbuf_size, "variant split has no session login (use bearer_token_file)");
  if (c->variant == V_OPENCPS && set(c->bearer_token_file))
    return hub_node_error(hub_cfg_value_at(node, at, "bearer_token_file"), errbuf, errbuf_size,
                          "bearer_token_file is for variant split; opencps logs in with username and password_file");
  return HUB_OK;
}

static const struct hub_cfg_constraint constraints[] = {
    {"url starts with http:// or https://", "url", "{url: 'ftp://127.0.0.1/', variant: split}",
     "{url: 'https://127.0.0.1/', variant: split}"},
    {"variant opencps needs username and password_file", "username", "{url: 'http://127.0.0.1/', username: u}", NULL},
    {"variant split takes no username/password_file (bearer_token_file instead)", "username",
     "{url: 'http://127.0.0.1/', variant: split, username: u}", NULL},
    {NULL},
};
static const struct hub_cfg_map map = {"dvcqg", entries, .check = check, .constraints = constraints};

static const char *const default_ok[] = {"0", "00"}, *const default_session[] = {"-1", "401"},
                         *const default_retry[] = {"500", "503"};

struct state {
  const struct cfg *cfg;
  char *endpoint; /* scheme://host[:port], for messages and metrics */
  char *auth_url, *integration_url, *create_url, *update_url, *progress_url;
  struct hub_str_list ok, session, retry; /* borrowed strings */
  struct dvcqg_portal portal;
  int lock_ok;
  /* Progress chunks a delivery already got through, so that a RETRY of the same record (same
   * lt.id) does not send them again; only a crash forgets it (progress is at least once). */
  pthread_mutex_t resume_lock;
  char resume_id[64];
  int resume_dossier_done;
  size_t resume_chunks;
  /* split variant: dossiers known to exist, so an update goes straight to URLCapNhat. */
  char **known;
  size_t n_known, next_known;
};

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *r = malloc(n);
  if (!r) return NULL;
  size_t la = strlen(a);
  int slash = (la && a[la - 1] == '/') + (*b == '/');
  snprintf(r, n, "%.*s%s%s", (int)(slash == 2 ? la - 1 : la), a, slash == 0 && *b ? "/" : "", b);
  return r;
}

static void list_or(struct hub_str_list *out, const struct hub_str_list *cfg, const char *const *def, size_t n) {
  if (cfg->n) {
    *out = *cfg;
  } else {
    out->v = (char **)def;
    out->n = n;
  }
}

static void dv_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  dvcqg_portal_release(&s->portal);
  hub_http_auth_destroy(s->portal.auth);
  hub_breaker_destroy(s->portal.breaker);
  if (s->lock_ok) {
    pthread_mutex_destroy(&s->portal.lock);
    pthread_mutex_destroy(&s->resume_lock);
  }
  for (size_t i = 0; i < s->n_known; i++)
    free(s->known[i]);
  free(s->known);
  free(s->endpoint);
  free(s->auth_url);
  free(s->integration_url);
  free(s->create_url);
  free(s->update_url);
  free(s->progress_url);
  free(s);
}

static hub_err_t dv_create(const void *cfgp, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  const struct cfg *c = cfgp;
  struct state *s = calloc(1, sizeof *s);
  char *tok = NULL;
  hub_err_t rc = HUB_ERR_NOMEM;
  *state = NULL;
  if (!s) goto out;
  s->cfg = c;
  if (pthread_mutex_init(&s->portal.lock, NULL)) goto out;
  if (pthread_mutex_init(&s->resume_lock, NULL)) {
    pthread_mutex_destroy(&s->portal.lock);
    goto out;
  }
  s->lock_ok = 1;
  const char *host = strstr(c->url, "://");
  size_t n = host ? strcspn(host + 3, "/?#") + (size_t)(host + 3 - c->url) : strlen(c->url);
  if (!(s->endpoint = strndup(c->url, n))) goto out;
  for (char *q = s->endpoint; *q; q++) /* a label value in /metrics */
    if (*q == '"' || *q == '\\' || *q == '\n') *q = '_';
  if (c->variant == V_OPENCPS) {
    if (!(s->auth_url = join(c->url, c->auth_endpoint)) ||
        !(s->integration_url = join(c->url, c->integration_endpoint)))
      goto out;
    if (!(s->portal.password_file = hub_plugin_env_path_new(env, c->password_file))) goto out;
    if (access(s->portal.password_file, R_OK) != 0) {
      rc = hub_node_error(hub_plugin_env_at(env, "password_file"), errbuf, errbuf_size, "password_file: cannot read %s",
                          s->portal.password_file);
      goto out;
    }
  } else {
    if (!(s->create_url = join(c->url, c->create_endpoint)) || !(s->update_url = join(c->url, c->update_endpoint)) ||
        !(s->progress_url = join(c->url, c->progress_endpoint)))
      goto out;
  }
  struct hub_http_auth_cfg ac = {.kind = HUB_HTTP_AUTH_NONE};
  if (set(c->bearer_token_file)) {
    if (!(tok = hub_plugin_env_path_new(env, c->bearer_token_file))) goto out;
    if (access(tok, R_OK) != 0) {
      rc = hub_node_error(hub_plugin_env_at(env, "bearer_token_file"), errbuf, errbuf_size,
                          "bearer_token_file: cannot read %s", tok);
      goto out;
    }
    ac.kind = HUB_HTTP_AUTH_BEARER;
    ac.token_file = tok;
  }
  if (hub_http_auth_new(&ac, &s->portal.auth) != HUB_OK) goto out;
  const char *owner = env && env->owner ? env->owner : "dvcqg";
  if (!(s->portal.breaker = hub_breaker_new_from(owner, s->endpoint, &c->breaker)))
    goto out;
  list_or(&s->ok, &c->ok_codes, default_ok, 2);
  list_or(&s->session, &c->session_codes, default_session, 2);
  list_or(&s->retry, &c->retry_codes, default_retry, 2);
  s->portal.auth_url = s->auth_url;
  s->portal.username = c->username;
  s->portal.endpoint = s->endpoint;
  s->portal.timeout_ms = c->timeout_ms;
  s->portal.max_response = (size_t)c->max_response;
  s->portal.ok_codes = &s->ok;
  s->portal.session_codes = &s->session;
  s->portal.retry_codes = &s->retry;
  s->portal.exists_text = c->exists_text;
  s->portal.fresh_connection = !c->reuse_connections;
  dvcqg_metrics_register();
  hub_metrics_register_counter(&m_created);
  hub_metrics_register_counter(&m_updated);
  hub_metrics_register_counter(&m_exists);
  hub_metrics_register_counter(&m_chunks);
  hub_metrics_register_counter(&m_rejected);
  rc = HUB_OK;
out:
  free(tok);
  if (rc != HUB_OK) {
    if (rc == HUB_ERR_NOMEM) snprintf(errbuf, errbuf_size, "dvcqg: out of memory");
    dv_destroy(s);
    s = NULL;
  }
  *state = s;
  return rc;
}

/* ------------------------------------------------------------------ known dossiers (split) */

static int known_has(struct state *s, const char *code) {
  pthread_mutex_lock(&s->resume_lock);
  int r = 0;
  for (size_t i = 0; i < s->n_known && !r; i++)
    r = !strcmp(s->known[i], code);
  pthread_mutex_unlock(&s->resume_lock);
  return r;
}

static void known_add(struct state *s, const char *code) {
  char *d = strdup(code);
  if (!d) return; /* only an optimisation */
  pthread_mutex_lock(&s->resume_lock);
  if (!s->known) s->known = calloc(KNOWN_MAX, sizeof *s->known);
  if (s->known) {
    size_t i = s->n_known < KNOWN_MAX ? s->n_known++ : s->next_known;
    if (s->n_known == KNOWN_MAX) { /* full: replace the oldest */
      free(s->known[i]);
      s->next_known = (i + 1) % KNOWN_MAX;
    }
    s->known[i] = d;
    d = NULL;
  }
  pthread_mutex_unlock(&s->resume_lock);
  free(d);
}

/* ------------------------------------------------------------------ one delivery */

struct run {
  struct state *s;
  json_t *calls;       /* the result record's list of calls */
  const char *code;    /* the dossier code */
  const char *madonvi; /* for a part without its own */
  struct hub_step_outcome *out;
  int created;
};

/* Adds a call to the result's list; returns the verdict. */
static enum dvcqg_verdict note(struct run *r, const char *service, const char *updating, size_t entries,
                               const struct dvcqg_answer *a) {
  static const char *const names[] = {"OK", "EXISTS", "SESSION", "RETRY", "REJECT"};
  json_t *c = json_pack("{s:s, s:s, s:I, s:s, s:s}", "service", service, "outcome", names[a->verdict], "http",
                        (json_int_t)a->http, "error_code", a->code, "message", a->message);
  if (c && updating) json_object_set_new(c, "isUpdating", json_string(updating));
  if (c && entries) json_object_set_new(c, "entries", json_integer((json_int_t)entries));
  json_array_append_new(r->calls, c);
  return a->verdict;
}

/* Turns a failed call into the delivery's RETRY or REJECT. */
static enum hub_step_result fail(struct run *r, const char *what, struct dvcqg_answer *a) {
  struct hub_step_outcome *out = r->out;
  if (a->verdict == DV_REJECT) {
    atomic_fetch_add(&m_rejected.value, 1);
    hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_DOWNSTREAM, "DVCQG refused %s of dossier %s: %s", what, r->code,
                  a->message);
    if (a->raw_len && (out->detail = malloc(a->raw_len < DETAIL_MAX ? a->raw_len : DETAIL_MAX))) {
      out->detail_len = a->raw_len < DETAIL_MAX ? a->raw_len : DETAIL_MAX;
      memcpy(out->detail, a->raw, out->detail_len);
    }
    return HUB_STEP_REJECT;
  }
  hub_step_fail(out, HUB_STEP_RETRY, a->http ? HUB_ERR_HTTP : HUB_ERR_IO, "%s of dossier %s: %s", what, r->code,
                a->message);
  if (a->retry_after_ms > 0) out->retry_after_ms = a->retry_after_ms;
  return HUB_STEP_RETRY;
}

/* The request's madonvi, else the delivery's (the other part's, else the option's). */
static const char *madonvi_of(const struct run *r, json_t *req) {
  json_t *m = json_object_get(req, "madonvi");
  return json_is_string(m) && json_string_length(m) ? json_string_value(m) : r->madonvi;
}

/* TraCuuHoSo (OpenCPS): 1 exists, 0 does not, -1 failed (answer in a). The portal's answer to a
 * code it does not know is not documented [gap]: an OK answer with a non-empty `result` means
 * it exists; an OK answer without one, or a refusal, means it does not (a create then follows,
 * and a create of a dossier that does exist is answered "đã tồn tại", so nothing is lost). */
static int lookup(struct run *r, const char *madonvi, const char *code, struct dvcqg_answer *a) {
  json_t *q = json_pack("{s:s, s:s, s:s}", "madonvi", madonvi, "service", "TraCuuHoSo", "mahoso", code);
  if (!q) {
    memset(a, 0, sizeof *a);
    a->verdict = DV_RETRY;
    snprintf(a->message, sizeof a->message, "out of memory");
    return -1;
  }
  dvcqg_call(&r->s->portal, r->s->integration_url, q, a);
  json_decref(q);
  note(r, "TraCuuHoSo", NULL, 0, a);
  if (a->verdict == DV_RETRY || a->verdict == DV_SESSION) return -1;
  if (a->verdict != DV_OK) return 0;
  json_t *res = json_object_get(a->body, "result");
  json_t *first = json_is_array(res) ? json_array_get(res, 0) : res;
  json_t *said = json_is_object(first) ? json_object_get(first, "MaHoSo") : NULL;
  if (json_is_string(said) && strcmp(json_string_value(said), code)) {
    /* An answer about another dossier cannot be this call's: do not act on it. */
    a->verdict = DV_RETRY;
    snprintf(a->message, sizeof a->message, "TraCuuHoSo for %s was answered about %s", code, json_string_value(said));
    return -1;
  }
  return (json_is_array(res) && json_array_size(res)) || (json_is_object(res) && json_object_size(res));
}

/* Creates or updates one dossier entry. */
static enum hub_step_result sync_dossier(struct run *r, json_t *req, json_t *item) {
  struct state *s = r->s;
  struct dvcqg_answer a = {0};
  enum hub_step_result sr = HUB_STEP_OK;
  const char *madonvi = madonvi_of(r, req);
  json_t *code_v = json_object_get(item, "MaHoSo");
  const char *code = json_is_string(code_v) ? json_string_value(code_v) : r->code;
  int exists;
  if (s->cfg->variant == V_OPENCPS) {
    exists = lookup(r, madonvi, code, &a);
    if (exists < 0) {
      sr = fail(r, "TraCuuHoSo", &a);
      goto out;
    }
  } else {
    exists = known_has(s, code);
  }
  for (int round = 0; round < 2; round++) {
    const char *updating = exists ? "True" : "False";
    json_t *body;
    const char *url;
    if (s->cfg->variant == V_OPENCPS) {
      body = json_pack("{s:s, s:s, s:s, s:[O]}", "madonvi", madonvi, "service", "DongBoHoSoMC", "isUpdating", updating,
                       "data", item);
      url = s->integration_url;
    } else {
      body = json_pack("[O]", item);
      url = exists ? s->update_url : s->create_url;
    }
    dvcqg_answer_release(&a);
    if (!body) {
      memset(&a, 0, sizeof a);
      a.verdict = DV_RETRY;
      snprintf(a.message, sizeof a.message, "out of memory");
    } else {
      dvcqg_call(&s->portal, url, body, &a);
      json_decref(body);
    }
    enum dvcqg_verdict v = note(r, "DongBoHoSoMC", updating, 1, &a);
    if (v == DV_OK) {
      if (!exists) r->created = 1;
      atomic_fetch_add(exists ? &m_updated.value : &m_created.value, 1);
      if (s->cfg->variant == V_SPLIT) known_add(s, code);
      goto out;
    }
    if (v == DV_EXISTS && !exists) { /* §3.2: retried as an update */
      exists = 1;
      atomic_fetch_add(&m_exists.value, 1);
      continue;
    }
    if (v == DV_EXISTS) a.verdict = DV_REJECT; /* "exists" to an update: the portal contradicts itself */
    sr = fail(r, exists ? "DongBoHoSoMC (update)" : "DongBoHoSoMC (create)", &a);
    goto out;
  }
out:
  dvcqg_answer_release(&a);
  return sr;
}

/* Sends progress entries in chunks, in order, from chunk `first`; *done counts the chunks sent. */
static enum hub_step_result sync_progress(struct run *r, json_t *req, size_t first, size_t *done) {
  struct state *s = r->s;
  json_t *data = json_object_get(req, "data");
  size_t n = json_array_size(data), chunk = (size_t)s->cfg->progress_chunk;
  const char *madonvi = madonvi_of(r, req);
  for (size_t k = first; k * chunk < n; k++) {
    json_t *part = json_array();
    for (size_t i = k * chunk; i < n && i < (k + 1) * chunk; i++)
      json_array_append(part, json_array_get(data, i));
    json_t *body = s->cfg->variant == V_OPENCPS ? json_pack("{s:s, s:s, s:o}", "madonvi", madonvi, "service",
                                                            "CapNhatTienDoHoSoMC", "data", part)
                                                : part;
    struct dvcqg_answer a = {0};
    if (!part || !body) {
      a.verdict = DV_RETRY;
      snprintf(a.message, sizeof a.message, "out of memory");
    } else {
      dvcqg_call(&s->portal, s->cfg->variant == V_OPENCPS ? s->integration_url : s->progress_url, body, &a);
    }
    json_decref(body);
    size_t entries = (k + 1) * chunk < n ? chunk : n - k * chunk;
    enum dvcqg_verdict v = note(r, "CapNhatTienDoHoSoMC", NULL, entries, &a);
    if (v != DV_OK) {
      if (v == DV_EXISTS) a.verdict = DV_REJECT;
      enum hub_step_result sr = fail(r, "CapNhatTienDoHoSoMC", &a);
      dvcqg_answer_release(&a);
      return sr;
    }
    dvcqg_answer_release(&a);
    atomic_fetch_add(&m_chunks.value, 1);
    *done = k + 1;
  }
  return HUB_STEP_OK;
}

static const char *service_of(json_t *o) {
  json_t *v = json_object_get(o, "service");
  return json_is_string(v) ? json_string_value(v) : "";
}

static const char *first_code(json_t *req) {
  json_t *v = json_object_get(json_array_get(json_object_get(req, "data"), 0), "MaHoSo");
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static enum hub_step_result dv_deliver(void *p, const struct hub_msg *in, struct hub_msg **result,
                                       struct hub_step_outcome *out) {
  struct state *s = p;
  json_t *doc = NULL, *dossier = NULL, *progress = NULL;
  char e[512];
  enum hub_step_result sr = HUB_STEP_OK;
  struct run r = {.s = s, .out = out, .calls = json_array()};
  if (!r.calls) return hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
  if (lt_json_parse(in->value, in->value_len, "value", &doc, e, sizeof e) != HUB_OK) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_JSON, "%s", e);
    goto out;
  }
  if (json_is_object(doc) && (json_object_get(doc, "dossier") || json_object_get(doc, "progress"))) {
    dossier = json_object_get(doc, "dossier");
    progress = json_object_get(doc, "progress");
  } else if (json_is_object(doc) && !strcmp(service_of(doc), "DongBoHoSoMC")) {
    dossier = doc;
  } else if (json_is_object(doc) && !strcmp(service_of(doc), "CapNhatTienDoHoSoMC")) {
    progress = doc;
  } else {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA,
                       "value: not a DongBoHoSoMC or CapNhatTienDoHoSoMC request (service) nor a {dossier, progress} "
                       "sync request");
    goto out;
  }
  /* Checked here, not left to the portal: an empty list or a missing code would otherwise be a
   * call that cannot succeed. The full contract is the mapping's output_schema. */
  if ((dossier &&
       (!json_is_object(dossier) || !json_array_size(json_object_get(dossier, "data")) || !first_code(dossier))) ||
      (progress &&
       (!json_is_object(progress) || !json_array_size(json_object_get(progress, "data")) || !first_code(progress)))) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA,
                       "value: %s.data must be a non-empty list of entries "
                       "with MaHoSo",
                       dossier && (!json_is_object(dossier) || !json_array_size(json_object_get(dossier, "data")) ||
                                   !first_code(dossier))
                           ? "dossier"
                           : "progress");
    goto out;
  }
  r.madonvi = s->cfg->madonvi;
  if (progress) r.madonvi = madonvi_of(&r, progress);
  if (dossier) r.madonvi = madonvi_of(&r, dossier);
  if (!r.madonvi) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA,
                       "value: the request has no madonvi and the connector sets none (option madonvi)");
    goto out;
  }
  r.code = first_code(dossier ? dossier : progress);
  /* What an earlier attempt of this very record got through (see struct state). */
  const char *id = hub_msg_header_get_str(in, HUB_H_ID);
  int dossier_done = 0;
  size_t chunks = 0;
  pthread_mutex_lock(&s->resume_lock);
  if (id && !strcmp(id, s->resume_id)) {
    dossier_done = s->resume_dossier_done;
    chunks = s->resume_chunks;
  }
  pthread_mutex_unlock(&s->resume_lock);
  if (dossier && !dossier_done) {
    json_t *data = json_object_get(dossier, "data");
    for (size_t i = 0; i < json_array_size(data) && sr == HUB_STEP_OK; i++)
      sr = sync_dossier(&r, dossier, json_array_get(data, i));
    if (sr != HUB_STEP_OK) goto out;
    dossier_done = 1;
  }
  if (progress) sr = sync_progress(&r, progress, chunks, &chunks);
  pthread_mutex_lock(&s->resume_lock);
  if (sr == HUB_STEP_RETRY && id) {
    snprintf(s->resume_id, sizeof s->resume_id, "%s", id);
    s->resume_dossier_done = dossier_done;
    s->resume_chunks = chunks;
  } else if (id && !strcmp(id, s->resume_id)) {
    s->resume_id[0] = '\0';
  }
  pthread_mutex_unlock(&s->resume_lock);
  if (sr != HUB_STEP_OK) goto out;
  json_t *res = json_pack("{s:s, s:s, s:s, s:b, s:O}", "dossierCode", r.code, "outcome", "OK", "variant",
                          s->cfg->variant == V_OPENCPS ? "opencps" : "split", "created", r.created, "calls", r.calls);
  const char *event = hub_msg_header_get_str(in, EVENT_HEADER), *tp = hub_msg_header_get_str(in, HUB_H_TRACEPARENT);
  if (res && id) json_object_set_new(res, "requestId", json_string(id));
  if (res && event) json_object_set_new(res, "eventId", json_string(event));
  char *text = res ? json_dumps(res, JSON_COMPACT) : NULL;
  json_decref(res);
  struct hub_msg *m = text ? hub_msg_new(r.code, strlen(r.code), text, strlen(text)) : NULL;
  free(text);
  /* The same request delivered again (after a crash) gives a result with the same lt.id, so
   * whoever reads the results can tell a repeat from a new outcome. */
  char rid[37], seed[128];
  int sn = snprintf(seed, sizeof seed, "dvcqg-result\n%s", id ? id : "");
  hub_uuid_from_bytes(seed, sn < 0 ? 0 : (size_t)sn >= sizeof seed ? sizeof seed - 1 : (size_t)sn, rid);
  if (!m || hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, "application/json") != HUB_OK ||
      hub_msg_header_set_str(m, HUB_H_TYPE, "dvcqg.sync.result") != HUB_OK ||
      (id && hub_msg_header_set_str(m, HUB_H_ID, rid) != HUB_OK) ||
      (event && hub_msg_header_set_str(m, EVENT_HEADER, event) != HUB_OK) ||
      (tp && hub_msg_header_set_str(m, HUB_H_TRACEPARENT, tp) != HUB_OK)) {
    hub_msg_destroy(m);
    sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory building the result record");
    goto out;
  }
  *result = m;
out:
  json_decref(r.calls);
  json_decref(doc);
  return sr;
}

static int dv_health(void *p, char *why, size_t why_size) {
  struct state *s = p;
  return hub_breaker_health(s->portal.breaker, why, why_size);
}

static const struct hub_sink_ops ops = {
    .info = {.name = "dvcqg",
             .summary = "dossiers and progress to the national public-service portal (DVCQG): TraCuuHoSo, "
                        "DongBoHoSoMC, CapNhatTienDoHoSoMC; session login; OK/RETRY/REJECT from error_code",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = dv_create,
    .deliver = dv_deliver,
    .health = dv_health,
    .destroy = dv_destroy,
    .concurrent = 1, /* the session and the known-dossier list are under locks; the client is thread-safe */
};
HUB_SINK_PLUGIN(hub_plugin_sink_dvcqg, ops);
