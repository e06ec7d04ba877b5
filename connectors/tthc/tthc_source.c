/* Source `tthc`: the national TTHC (administrative procedure) catalogue job. Each run, on the
 * source's schedule (`poll_interval`, first at start) or on demand (`lienthong tthc sync`):
 *   1. reads the last snapshot from the compacted `snapshot_topic` (key MaTTHC, value the
 *      procedure; an empty value: removed), so every run, and the command, diff against what
 *      was last committed;
 *   2. logs in to the DVCQG adapter (§3.1 of vn-standards.md: POST auth_endpoint
 *      {"username","password"} -> {"session"}), calls LayDanhSachTTHC, then LayThuTuc for each
 *      procedure (re-login once when the session expired; transport errors and 5xx retried);
 *   3. compares: added, changed (with the field-level diff) and removed procedures;
 *   4. commits, in ONE transaction (hub_source_emit_to): the changed snapshot records, one change
 *      record per change on the source's `topic` for the one-stop system, and the cursor (the
 *      run's summary). A run that fails anywhere before that publishes nothing. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdatomic.h>
#include <time.h>

#include "connectors/tthc/tthc.h"
#include "hub/core/config.h"
#include "hub/core/files.h"
#include "hub/core/log.h"
#include "hub/core/metrics.h"
#include "hub/core/registry.h"
#include "hub/core/stop.h"
#include "hub/engine/connector.h"
#include "hub/io/http_client.h"
#include "hub/io/ratelimit.h"
#include "hub/transport/transport.h"

struct tthc_once *tthc_once_hook;

struct cfg {
  char *url, *auth_endpoint, *integration_endpoint, *username, *password_file, *madonvi, *snapshot_topic;
  int64_t timeout_ms, retries, per_second, max_procedures;
  struct hub_str_list ignore_fields;
};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"url", HUB_CFG_STR, F(url), NULL, 1, "the DVCQG adapter's base URL (http or https), e.g. https://dvcqg.example/api"},
    {"auth_endpoint", HUB_CFG_STR, F(auth_endpoint), "/auth", 0,
     "path of the session login (POST {username, password} -> {session})"},
    {"integration_endpoint", HUB_CFG_STR, F(integration_endpoint), "/integration", 0,
     "path of the integration endpoint (POST {session, madonvi, service, ...})"},
    {"username", HUB_CFG_STR, F(username), NULL, 1, "adapter account"},
    {"password_file", HUB_CFG_STR, F(password_file), NULL, 1, "file holding the password (first line)"},
    {"madonvi", HUB_CFG_STR, F(madonvi), NULL, 1, "the province's unit code (QCVN 102), sent as madonvi"},
    {"snapshot_topic", HUB_CFG_STR, F(snapshot_topic), NULL, 1,
     "compacted topic holding the catalogue (key MaTTHC); its name must end in .snapshot"},
    {"timeout", HUB_CFG_DURATION, F(timeout_ms), "30s", 0, "each call", NULL, NULL, 100, 600000},
    {"retries", HUB_CFG_INT, F(retries), "3", 0,
     "retries of a call after a transport error, a 5xx or an expired session (then the run fails, publishing nothing)",
     NULL, NULL, 0, 20},
    {"rate_limit", HUB_CFG_INT, F(per_second), "20", 0, "calls per second at most (0: no limit)", NULL, NULL, 0, 10000},
    {"max_procedures", HUB_CFG_INT, F(max_procedures), "50000", 0,
     "a longer list is refused (a broken answer must not become a mass removal)", NULL, NULL, 1, 1000000},
    {"ignore_fields", HUB_CFG_STR_LIST, F(ignore_fields), NULL, 0,
     "procedure fields left out of the comparison (volatile ones such as a fetch time)"},
    {NULL},
};

static hub_err_t check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                       size_t errbuf_size) {
  const struct cfg *c = p;
  if (c->url && strncasecmp(c->url, "http://", 7) != 0 && strncasecmp(c->url, "https://", 8) != 0)
    return hub_node_error(hub_cfg_value_at(node, at, "url"), errbuf, errbuf_size, "url must start with http:// or https://");
  if (c->snapshot_topic && (!hub_topic_name_valid(c->snapshot_topic) || !hub_topic_compacted(c->snapshot_topic)))
    return hub_node_error(hub_cfg_value_at(node, at, "snapshot_topic"), errbuf, errbuf_size,
                          "snapshot_topic must be a valid topic name ending in .snapshot (so it is compacted)");
  return HUB_OK;
}
static const struct hub_cfg_constraint rules[] = {
    {"url starts with http:// or https://", "url",
     "{url: 'ftp://x', username: u, password_file: p, madonvi: m, snapshot_topic: tthc.snapshot}",
     "{url: 'http://127.0.0.1:1', username: u, password_file: p, madonvi: m, snapshot_topic: tthc.snapshot}"},
    {"snapshot_topic ends in .snapshot", "snapshot_topic",
     "{url: 'http://127.0.0.1:1', username: u, password_file: p, madonvi: m, snapshot_topic: tthc.catalogue}",
     "{url: 'http://127.0.0.1:1', username: u, password_file: p, madonvi: m, snapshot_topic: tthc.catalogue.snapshot}"},
    {NULL},
};
static const struct hub_cfg_map map = {"tthc", entries, .check = check, .constraints = rules};

struct state {
  const struct cfg *cfg;
  struct hub_source_ctx *ctx;
  /* for /metrics (read by the admin thread) */
  atomic_ullong runs_ok, runs_failed, procedures, changes;
  struct state *next_state;
  char *password_file, *auth_url, *int_url;
  struct hub_ratelimit *limit;
  char *session;
  int ran_once; /* for `tthc sync` */
};

/* lienthong_tthc_runs_total{connector,outcome}, lienthong_tthc_procedures{connector},
 * lienthong_tthc_changes_total{connector}: every tthc source's runs. */
static pthread_mutex_t states_mu = PTHREAD_MUTEX_INITIALIZER;
static struct state *states;

static char *render_new(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  pthread_mutex_lock(&states_mu);
  if (states) {
    fputs("# HELP lienthong_tthc_runs_total Catalogue runs: committed, or failed (nothing published).\n"
          "# TYPE lienthong_tthc_runs_total counter\n", f);
    for (struct state *s = states; s; s = s->next_state)
      fprintf(f, "lienthong_tthc_runs_total{connector=\"%s\",outcome=\"committed\"} %llu\n"
                 "lienthong_tthc_runs_total{connector=\"%s\",outcome=\"failed\"} %llu\n",
              hub_source_name(s->ctx), atomic_load(&s->runs_ok), hub_source_name(s->ctx), atomic_load(&s->runs_failed));
    fputs("# HELP lienthong_tthc_procedures Procedures in the catalogue at the last committed run.\n"
          "# TYPE lienthong_tthc_procedures gauge\n", f);
    for (struct state *s = states; s; s = s->next_state)
      fprintf(f, "lienthong_tthc_procedures{connector=\"%s\"} %llu\n", hub_source_name(s->ctx),
              atomic_load(&s->procedures));
    fputs("# HELP lienthong_tthc_changes_total Change records committed (added, changed, removed).\n"
          "# TYPE lienthong_tthc_changes_total counter\n", f);
    for (struct state *s = states; s; s = s->next_state)
      fprintf(f, "lienthong_tthc_changes_total{connector=\"%s\"} %llu\n", hub_source_name(s->ctx),
              atomic_load(&s->changes));
  }
  pthread_mutex_unlock(&states_mu);
  fclose(f);
  return text;
}
static struct hub_metric_family family = {render_new};

static void st_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  pthread_mutex_lock(&states_mu);
  for (struct state **pp = &states; *pp; pp = &(*pp)->next_state)
    if (*pp == s) {
      *pp = s->next_state;
      break;
    }
  pthread_mutex_unlock(&states_mu);
  free(s->password_file);
  free(s->auth_url);
  free(s->int_url);
  free(s->session);
  hub_ratelimit_destroy(s->limit);
  free(s);
}

static char *join_new(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *r = malloc(n);
  if (!r) return NULL;
  size_t al = strlen(a);
  while (al && a[al - 1] == '/') al--; /* one slash between them */
  snprintf(r, n, "%.*s%s%s", (int)al, a, *b == '/' ? "" : "/", b);
  return r;
}

static hub_err_t st_create(const void *cfgp, const struct hub_plugin_env *env, struct hub_source_ctx *ctx, void **out,
                           char *errbuf, size_t errbuf_size) {
  const struct cfg *cfg = cfgp;
  struct state *s = calloc(1, sizeof *s);
  *out = NULL;
  if (!s) return HUB_ERR_NOMEM;
  s->cfg = cfg;
  s->ctx = ctx;
  s->password_file = hub_plugin_env_path_new(env, cfg->password_file);
  s->auth_url = join_new(cfg->url, cfg->auth_endpoint);
  s->int_url = join_new(cfg->url, cfg->integration_endpoint);
  if (!s->password_file || !s->auth_url || !s->int_url ||
      (cfg->per_second && !(s->limit = hub_ratelimit_new(env->owner, cfg->url, (double)cfg->per_second, 1)))) {
    st_destroy(s);
    snprintf(errbuf, errbuf_size, "out of memory");
    return HUB_ERR_NOMEM;
  }
  hub_metrics_register_family(&family);
  pthread_mutex_lock(&states_mu);
  s->next_state = states;
  states = s;
  pthread_mutex_unlock(&states_mu);
  *out = s;
  return HUB_OK;
}

static hub_err_t st_start(void *p, char *errbuf, size_t errbuf_size) {
  struct state *s = p;
  const char *topics[] = {s->cfg->snapshot_topic};
  return hub_source_ensure_topics(s->ctx, topics, 1, errbuf, errbuf_size);
}

/* ------------------------------------------------------------------ calls */

enum call_kind { CALL_OK, CALL_RETRY, CALL_SESSION, CALL_FAIL };

static int error_code_ok(const json_t *ec) {
  if (!ec || json_is_null(ec)) return 1; /* some adapters leave it out on success */
  if (json_is_integer(ec)) return json_integer_value(ec) == 0;
  if (json_is_string(ec)) return !strcmp(json_string_value(ec), "0") || !strcmp(json_string_value(ec), "00");
  return 0;
}

/* An answer that says the session is gone (there is no documented code: the message tells). */
static int session_expired(const json_t *j) {
  const char *msg = json_string_value(json_object_get(j, "message"));
  if (!msg) return 0;
  char low[256];
  size_t i = 0;
  for (; msg[i] && i < sizeof low - 1; i++) low[i] = (char)tolower((unsigned char)msg[i]);
  low[i] = '\0';
  return strstr(low, "session") || strstr(low, "phiên") || strstr(low, "token");
}

/* One POST of a JSON body; *out the parsed answer on CALL_OK. */
static enum call_kind post_json(struct state *s, const char *url, json_t *body, json_t **out, char *why, size_t n) {
  *out = NULL;
  char *text = json_dumps(body, JSON_COMPACT);
  if (!text) {
    snprintf(why, n, "out of memory");
    return CALL_FAIL;
  }
  const char *headers[] = {"Content-Type: application/json", "Accept: application/json", NULL};
  struct hub_http_request req = {.method = "POST", .url = url, .headers = headers, .body = text,
                                 .body_len = strlen(text), .timeout_ms = s->cfg->timeout_ms, .max_body = 64u << 20};
  struct hub_http_response resp = {0};
  enum call_kind k = CALL_OK;
  if (s->limit && hub_ratelimit_acquire(s->limit, s->cfg->timeout_ms) != 0) {
    snprintf(why, n, "rate limit: no call slot within %lld ms", (long long)s->cfg->timeout_ms);
    k = CALL_RETRY;
  } else if (hub_http_perform(&req, &resp) != HUB_OK) {
    snprintf(why, n, "%s", resp.error);
    k = resp.rc == HUB_ERR_STOPPED ? CALL_FAIL : CALL_RETRY;
  } else if (resp.status == 401 || resp.status == 403) {
    snprintf(why, n, "POST %s answered HTTP %ld", url, resp.status);
    k = CALL_SESSION;
  } else if (resp.status >= 500 || resp.status == 429 || resp.status == 408) {
    snprintf(why, n, "POST %s answered HTTP %ld: %.200s", url, resp.status, resp.body ? (char *)resp.body : "");
    k = CALL_RETRY;
  } else if (resp.status < 200 || resp.status >= 300) {
    snprintf(why, n, "POST %s answered HTTP %ld: %.200s", url, resp.status, resp.body ? (char *)resp.body : "");
    k = CALL_FAIL;
  } else {
    json_error_t je;
    json_t *j = json_loadb(resp.body ? (const char *)resp.body : "", resp.body_len, 0, &je);
    if (!j || !json_is_object(j)) {
      snprintf(why, n, "POST %s: the answer is not a JSON object (%s at %d)", url, j ? "not an object" : je.text,
               j ? 0 : je.position);
      json_decref(j);
      k = CALL_RETRY; /* a truncated answer (dropped connection) is worth another try */
    } else if (!error_code_ok(json_object_get(j, "error_code"))) {
      char *ec = json_dumps(json_object_get(j, "error_code"), JSON_ENCODE_ANY);
      snprintf(why, n, "POST %s: error_code %s: %.200s", url, ec ? ec : "?",
               json_string_value(json_object_get(j, "message")) ? json_string_value(json_object_get(j, "message")) : "");
      free(ec);
      k = session_expired(j) ? CALL_SESSION : CALL_FAIL;
      json_decref(j);
    } else {
      *out = j;
    }
  }
  hub_http_response_release(&resp);
  free(text);
  return k;
}

static hub_err_t login(struct state *s, char *why, size_t n) {
  char *pw = NULL, e[256];
  size_t len = 0;
  if (hub_secret_read(s->password_file, 4096, 0, &pw, &len, e, sizeof e) != HUB_OK) {
    snprintf(why, n, "password_file: %s", e);
    return HUB_ERR_IO;
  }
  json_t *body = json_pack("{s:s, s:s%}", "username", s->cfg->username, "password", pw, len), *ans = NULL;
  hub_secret_free(pw, len);
  hub_err_t rc = HUB_ERR_UNAVAILABLE;
  for (int64_t attempt = 0; body && attempt <= s->cfg->retries && !hub_stop_requested(); attempt++) {
    enum call_kind k = post_json(s, s->auth_url, body, &ans, why, n);
    if (k == CALL_OK) {
      const char *sess = json_string_value(json_object_get(ans, "session"));
      if (!sess || !*sess) {
        snprintf(why, n, "login: the answer has no session");
        rc = HUB_ERR_AUTH;
      } else {
        free(s->session);
        rc = (s->session = strdup(sess)) ? HUB_OK : HUB_ERR_NOMEM;
      }
      break;
    }
    if (k == CALL_FAIL || k == CALL_SESSION) {
      rc = HUB_ERR_AUTH;
      break;
    }
  }
  json_decref(body);
  json_decref(ans);
  return rc;
}

/* A service call on the integration endpoint with the session (logging in again once it expired). */
static hub_err_t service(struct state *s, const char *name, const char *code, json_t **out, char *why, size_t n) {
  *out = NULL;
  int relogged = 0;
  for (int64_t attempt = 0; attempt <= s->cfg->retries && !hub_stop_requested(); attempt++) {
    if (!s->session) {
      hub_err_t rc = login(s, why, n);
      if (rc != HUB_OK) return rc;
    }
    json_t *body = json_pack("{s:s, s:s, s:s}", "session", s->session, "madonvi", s->cfg->madonvi, "service", name);
    if (!body || (code && json_object_set_new(body, "maTTHC", json_string(code)) != 0)) {
      json_decref(body);
      return HUB_ERR_NOMEM;
    }
    enum call_kind k = post_json(s, s->int_url, body, out, why, n);
    json_decref(body);
    if (k == CALL_OK) return HUB_OK;
    if (k == CALL_FAIL) return HUB_ERR_DOWNSTREAM;
    if (k == CALL_SESSION) {
      free(s->session);
      s->session = NULL;
      if (relogged++) return HUB_ERR_AUTH; /* a fresh session refused too */
      attempt--;                           /* a re-login is not a retry */
    }
  }
  return hub_stop_requested() ? HUB_ERR_STOPPED : HUB_ERR_UNAVAILABLE;
}

/* ------------------------------------------------------------------ the run */

static const char *proc_code(const json_t *p) {
  const char *names[] = {"MATTHC", "MaTTHC", "maTTHC", "MaThuTuc", NULL};
  for (int i = 0; names[i]; i++) {
    const char *v = json_string_value(json_object_get(p, names[i]));
    if (v && *v) return v;
  }
  return NULL;
}

static int on_snapshot(void *arg, const struct hub_msg *m) {
  json_t *snap = arg;
  if (!m->key || !m->key_len) return 0;
  char *key = strndup((const char *)m->key, m->key_len);
  if (!key) return 1;
  if (!m->value_len) {
    json_object_del(snap, key); /* removed */
  } else {
    json_t *v = json_loadb((const char *)m->value, m->value_len, 0, NULL);
    if (v) json_object_set_new(snap, key, v);
  }
  free(key);
  return 0;
}

static void now_vn(char out[32]) {
  time_t t = time(NULL) + 7 * 3600; /* Asia/Ho_Chi_Minh has no DST */
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%S+07:00", &tm);
}

struct out_list {
  const char **topics;
  struct hub_msg **m;
  size_t n, cap;
};

static int out_add(struct out_list *o, const char *topic, const char *key, const char *value, const char *type) {
  if (o->n == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 64;
    const char **t = realloc(o->topics, cap * sizeof *t);
    if (!t) return -1;
    o->topics = t;
    struct hub_msg **m = realloc(o->m, cap * sizeof *m);
    if (!m) return -1;
    o->m = m;
    o->cap = cap;
  }
  struct hub_msg *m = hub_msg_new(key, strlen(key), value, value ? strlen(value) : 0);
  if (!m || hub_msg_header_set_str(m, HUB_H_TYPE, type) != HUB_OK ||
      (value && *value && hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, "application/json") != HUB_OK)) {
    hub_msg_destroy(m);
    return -1;
  }
  o->topics[o->n] = topic;
  o->m[o->n++] = m;
  return 0;
}

/* The change record for the one-stop system, and the snapshot record, of one change. */
static int add_change(struct out_list *o, const struct state *s, const char *kind, const char *code, json_t *proc,
                      json_t *prev, json_t *diff, const char *run, const char *at) {
  json_t *c = json_pack("{s:s, s:s, s:s, s:s}", "change", kind, "MaTTHC", code, "run", run, "at", at);
  if (!c) return -1;
  if (proc) json_object_set(c, "procedure", proc);
  if (diff) json_object_set(c, "diff", diff);
  if (prev) json_object_set(c, "previous", prev);
  char *cv = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS), *pv = proc ? json_dumps(proc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  char type[32];
  snprintf(type, sizeof type, "tthc.%s", kind);
  int rc = cv && (!proc || pv) ? 0 : -1;
  if (rc == 0) rc = out_add(o, s->cfg->snapshot_topic, code, pv ? pv : "", proc ? "tthc.procedure" : "tthc.removed");
  if (rc == 0) rc = out_add(o, NULL, code, cv, type);
  free(cv);
  free(pv);
  json_decref(c);
  return rc;
}

static int cmp_code(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static hub_err_t run_catalogue(struct state *s, struct tthc_report *rep) {
  char *why = rep->why;
  size_t wn = sizeof rep->why;
  json_t *old = json_object(), *fresh = json_object(), *list = NULL;
  struct out_list o = {0};
  hub_err_t rc = old && fresh ? HUB_OK : HUB_ERR_NOMEM;
  char e[512] = "";
  /* 1. what was committed last */
  if (rc == HUB_OK) {
    rc = hub_source_scan(s->ctx, s->cfg->snapshot_topic, on_snapshot, old, e, sizeof e);
    if (rc == HUB_ERR_NOT_FOUND) rc = HUB_OK;
    if (rc != HUB_OK) snprintf(why, wn, "reading %s: %s", s->cfg->snapshot_topic, e);
  }
  /* 2. the catalogue now */
  if (rc == HUB_OK && (rc = service(s, "LayDanhSachTTHC", NULL, &list, why, wn)) != HUB_OK)
    goto out;
  json_t *items = json_object_get(list, "result");
  if (rc == HUB_OK && !json_is_array(items)) {
    snprintf(why, wn, "LayDanhSachTTHC: the answer has no result list");
    rc = HUB_ERR_DOWNSTREAM;
  }
  if (rc == HUB_OK && json_array_size(items) > (size_t)s->cfg->max_procedures) {
    snprintf(why, wn, "LayDanhSachTTHC: %zu procedures, more than max_procedures %lld", json_array_size(items),
             (long long)s->cfg->max_procedures);
    rc = HUB_ERR_DOWNSTREAM;
  }
  for (size_t i = 0; rc == HUB_OK && i < json_array_size(items); i++) {
    const char *code = proc_code(json_array_get(items, i));
    if (!code) {
      snprintf(why, wn, "LayDanhSachTTHC: result[%zu] has no MATTHC", i);
      rc = HUB_ERR_DOWNSTREAM;
      break;
    }
    if (json_object_get(fresh, code)) continue; /* listed twice */
    json_t *ans = NULL;
    if ((rc = service(s, "LayThuTuc", code, &ans, why, wn)) != HUB_OK) break;
    json_t *res = json_object_get(ans, "result"), *p = json_is_array(res) ? json_array_get(res, 0) : res;
    const char *got = json_is_object(p) ? proc_code(p) : NULL;
    if (!got || strcmp(got, code) != 0) {
      snprintf(why, wn, "LayThuTuc %s: the answer %s", code, got ? "is about another procedure" : "has no procedure");
      rc = HUB_ERR_DOWNSTREAM;
    } else {
      json_t *copy = json_deep_copy(p);
      if (!copy || json_object_set_new(fresh, code, copy) != 0) rc = HUB_ERR_NOMEM;
    }
    json_decref(ans);
  }
  if (rc != HUB_OK) goto out;
  /* 3. the changes, in code order (deterministic output) */
  char run[37], at[32];
  hub_uuid7(run);
  now_vn(at);
  const char *code;
  json_t *p;
  size_t nf = json_object_size(fresh), no = json_object_size(old), k = 0;
  const char **codes = malloc((nf + no + 1) * sizeof *codes);
  if (!codes) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  json_object_foreach(fresh, code, p) codes[k++] = code;
  json_object_foreach(old, code, p) if (!json_object_get(fresh, code)) codes[k++] = code;
  qsort(codes, k, sizeof *codes, cmp_code);
  for (size_t i = 0; rc == HUB_OK && i < k; i++) {
    json_t *np = json_object_get(fresh, codes[i]), *op = json_object_get(old, codes[i]);
    int r = 0;
    if (np && !op) {
      r = add_change(&o, s, "added", codes[i], np, NULL, NULL, run, at);
      rep->added++;
    } else if (!np && op) {
      r = add_change(&o, s, "removed", codes[i], NULL, op, NULL, run, at);
      rep->removed++;
    } else {
      json_t *d = tthc_diff_new(op, np, &s->cfg->ignore_fields);
      if (!d) r = -1;
      else if (json_array_size(d)) {
        r = add_change(&o, s, "changed", codes[i], np, NULL, d, run, at);
        rep->changed++;
      }
      json_decref(d);
    }
    if (r) rc = HUB_ERR_NOMEM;
  }
  free(codes);
  rep->procedures = nf;
  if (rc != HUB_OK) goto out;
  /* 4. one transaction: snapshot, changes, cursor */
  json_t *cur = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "run", run, "finished", at, "procedures", (json_int_t)nf,
                          "added", (json_int_t)rep->added, "changed", (json_int_t)rep->changed, "removed",
                          (json_int_t)rep->removed);
  char *cursor = cur ? json_dumps(cur, JSON_COMPACT) : NULL;
  json_decref(cur);
  if (!cursor) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  rc = hub_source_emit_to(s->ctx, o.topics, o.m, o.n, cursor, strlen(cursor));
  free(cursor);
  if (rc != HUB_OK) snprintf(why, wn, "committing the run: %s", hub_err2name(rc));
out:
  for (size_t i = 0; i < o.n; i++) hub_msg_destroy(o.m[i]);
  free(o.m);
  free(o.topics);
  json_decref(list);
  json_decref(fresh);
  json_decref(old);
  if (rc == HUB_ERR_NOMEM && !*why) snprintf(why, wn, "out of memory");
  rep->rc = rc;
  return rc;
}

static hub_err_t st_poll(void *p) {
  struct state *s = p;
  struct tthc_once *once = tthc_once_hook;
  if (once && s->ran_once) return HUB_OK; /* `tthc sync`: one run per source */
  struct tthc_report rep = {0};
  hub_err_t rc = run_catalogue(s, &rep);
  if (rc == HUB_OK) {
    atomic_fetch_add(&s->runs_ok, 1);
    atomic_store(&s->procedures, rep.procedures);
    atomic_fetch_add(&s->changes, rep.added + rep.changed + rep.removed);
  } else {
    atomic_fetch_add(&s->runs_failed, 1);
  }
  if (rc == HUB_OK)
    hub_log(HUB_LOG_INFO, "tthc", "%s: catalogue run committed: %zu procedures, %zu added, %zu changed, %zu removed",
            hub_source_name(s->ctx), rep.procedures, rep.added, rep.changed, rep.removed);
  else
    hub_log(HUB_LOG_WARN, "tthc", "%s: catalogue run failed, nothing published: %s", hub_source_name(s->ctx), rep.why);
  if (once) {
    s->ran_once = 1;
    pthread_mutex_lock(&once->mu);
    once->last = rep;
    once->failed |= rc != HUB_OK;
    once->done++;
    pthread_cond_broadcast(&once->cv);
    pthread_mutex_unlock(&once->mu);
  }
  return rc;
}

static const struct hub_source_ops ops = {
    .info = {.name = "tthc",
             .summary = "the national TTHC catalogue: LayDanhSachTTHC + LayThuTuc, snapshot and change records in one "
                        "transaction",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = st_create,
    .start = st_start,
    .poll = st_poll,
    .destroy = st_destroy,
};
HUB_SOURCE_PLUGIN(hub_plugin_source_tthc, ops);
