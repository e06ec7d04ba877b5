/* Sink `population`: citizen look-ups in the national population database (QCVN 109), directly
 * or through the province's LGSP gateway. Each request record ({"SoDinhDanh", "HoVaTen",
 * "NgaySinh"}, schemas/citizen/verify-request.schema.json) becomes, on the result topic, a
 * verification result (schemas/citizen/verify-result.schema.json): `match`, `mismatch` with
 * the fields that differ, or `not-found`. Only the verdict leaves the connector, never the
 * database's data about the citizen (data minimisation).
 *
 * A look-up is GET url?id_param=ID with OAuth2 client credentials (or a bearer token) from
 * hub/io/http_auth.h, through the endpoint's rate limit (hub/io/ratelimit.h); the answer is a
 * QCVN 109 dc:CongdanCollection read with the hub's one XML parse. Answers are cached per id
 * for `cache.ttl` (found and not found alike), so repeated checks of one applicant cost one
 * call. 5xx, 408, 429, timeouts: RETRY; a bad request record, another 4xx or an unreadable
 * answer: REJECT (to the DLQ with the reason). */
#include <ctype.h>
#include <jansson.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "connectors/population/name_match.h"
#include "hub/core/log.h"
#include "hub/core/metrics.h"
#include "hub/core/registry.h"
#include "hub/core/xml.h"
#include "hub/engine/connector.h"
#include "hub/io/http_auth.h"
#include "hub/io/http_client.h"
#include "hub/io/ratelimit.h"

#define QCVN109_NS "http://www.mic.gov.vn/dancu/1.0"

struct oauth2_cfg {
  char *token_url, *client_id, *client_secret_file, *scope;
};
struct rate_cfg {
  int64_t per_second, burst;
};
struct cache_cfg {
  int64_t ttl_ms, max_entries;
};
struct cfg {
  char *url, *id_param, *madonvi, *bearer_token_file;
  struct oauth2_cfg oauth2;
  int64_t timeout_ms, max_response;
  struct rate_cfg rate_limit;
  struct cache_cfg cache;
};

#define O(f) offsetof(struct oauth2_cfg, f)
static const struct hub_cfg_entry oauth2_entries[] = {
    {"token_url", HUB_CFG_STR, O(token_url), NULL, 1, "the LGSP token endpoint (client credentials grant)"},
    {"client_id", HUB_CFG_STR, O(client_id), NULL, 1, "consumer key"},
    {"client_secret_file", HUB_CFG_STR, O(client_secret_file), NULL, 1, "file holding the consumer secret (first line)"},
    {"scope", HUB_CFG_STR, O(scope), NULL, 0, "scope to ask for"},
    {NULL},
};
static const struct hub_cfg_map oauth2_map = {"oauth2", oauth2_entries};

#define R(f) offsetof(struct rate_cfg, f)
static const struct hub_cfg_entry rate_entries[] = {
    {"per_second", HUB_CFG_INT, R(per_second), "10", 0, "look-ups per second at most (0: no limit)", NULL, NULL, 0,
     100000},
    {"burst", HUB_CFG_INT, R(burst), "1", 0, "look-ups that may go at once after a quiet spell", NULL, NULL, 1, 100000},
    {NULL},
};
static const struct hub_cfg_map rate_map = {"rate_limit", rate_entries};

#define C(f) offsetof(struct cache_cfg, f)
static const struct hub_cfg_entry cache_entries[] = {
    {"ttl", HUB_CFG_DURATION, C(ttl_ms), "10m", 0, "how long an answer is reused (0: no cache)", NULL, NULL, 0,
     86400000},
    {"max_entries", HUB_CFG_INT, C(max_entries), "10000", 0, "answers kept at most (the oldest go first)", NULL, NULL, 1,
     10000000},
    {NULL},
};
static const struct hub_cfg_map cache_map = {"cache", cache_entries};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"url", HUB_CFG_STR, F(url), NULL, 1,
     "the look-up endpoint (population DB or LGSP service), called as GET URL?ID_PARAM=ID[&MaDonVi=...]"},
    {"id_param", HUB_CFG_STR, F(id_param), "SoDinhDanh", 0, "query parameter carrying the id number"},
    {"madonvi", HUB_CFG_STR, F(madonvi), NULL, 0, "the asking unit's code, sent as MaDonVi when set"},
    {"bearer_token_file", HUB_CFG_STR, F(bearer_token_file), NULL, 0, "file holding a bearer token (instead of oauth2)"},
    {"oauth2", HUB_CFG_OBJECT, F(oauth2), NULL, 0, "OAuth2 client credentials (LGSP); the token is cached and renewed",
     NULL, &oauth2_map},
    {"timeout", HUB_CFG_DURATION, F(timeout_ms), "10s", 0, "each look-up, and the wait for a rate-limit slot", NULL,
     NULL, 100, 600000},
    {"max_response", HUB_CFG_SIZE, F(max_response), "1MiB", 0, "a longer answer is an error", NULL, NULL, 1024,
     64 * 1024 * 1024},
    {"rate_limit", HUB_CFG_OBJECT, F(rate_limit), NULL, 0, "token bucket for the endpoint", NULL, &rate_map},
    {"cache", HUB_CFG_OBJECT, F(cache), NULL, 0, "answers reused per id number", NULL, &cache_map},
    {NULL},
};

static hub_err_t check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                       size_t errbuf_size) {
  const struct cfg *c = p;
  if (c->url && strncasecmp(c->url, "http://", 7) != 0 && strncasecmp(c->url, "https://", 8) != 0)
    return hub_node_error(hub_cfg_value_at(node, at, "url"), errbuf, errbuf_size, "url must start with http:// or https://");
  if (c->url && strchr(c->url, '?'))
    return hub_node_error(hub_cfg_value_at(node, at, "url"), errbuf, errbuf_size,
                          "url: leave out the query; the connector adds ?%s=ID", c->id_param ? c->id_param : "SoDinhDanh");
  if (c->bearer_token_file && c->oauth2.token_url)
    return hub_node_error(hub_cfg_value_at(node, at, "oauth2"), errbuf, errbuf_size,
                          "give one of bearer_token_file and oauth2");
  return HUB_OK;
}
static const struct hub_cfg_constraint rules[] = {
    {"url starts with http:// or https://", "url", "{url: 'ftp://x'}", "{url: 'http://127.0.0.1:1/congdan'}"},
    {"url has no query", "url", "{url: 'http://127.0.0.1:1/congdan?a=b'}", "{url: 'http://127.0.0.1:1/congdan'}"},
    {"at most one of bearer_token_file and oauth2", "oauth2",
     "{url: 'http://127.0.0.1:1/c', bearer_token_file: t, oauth2: {token_url: 'http://127.0.0.1:1/t', client_id: c, "
     "client_secret_file: s}}",
     "{url: 'http://127.0.0.1:1/c', bearer_token_file: t}"},
    {NULL},
};
static const struct hub_cfg_map map = {"population", entries, .check = check, .constraints = rules};

/* ------------------------------------------------------------------ state, cache, metrics */

struct entry {
  char id[16];
  int found;
  char *name; /* as the DB has it (Ho ChuDem Ten) */
  char dob[11]; /* yyyy-mm-dd, or yyyy when the DB knows the year only */
  double expires;
  struct entry *next; /* the cache is a small list per bucket */
};

#define BUCKETS 1024

struct state {
  const struct cfg *cfg;
  char *owner, *endpoint;
  char *token_file, *secret_file;
  struct hub_http_auth *auth;
  struct hub_ratelimit *limit;
  pthread_mutex_t mu; /* the cache and the counters: deliver runs on several threads */
  struct entry *buckets[BUCKETS];
  size_t entries;
  unsigned long long hits, misses, calls, match, mismatch, not_found;
  struct state *next_state;
};

static pthread_mutex_t states_mu = PTHREAD_MUTEX_INITIALIZER;
static struct state *states;

static char *render_new(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  pthread_mutex_lock(&states_mu);
  if (states) {
    static const char *const names[][2] = {
        {"lienthong_population_cache_hits_total", "Look-ups answered from the cache."},
        {"lienthong_population_cache_misses_total", "Look-ups that called the population database."},
        {"lienthong_population_cache_entries", "Answers in the cache."},
        {"lienthong_population_results_total", "Verification results by outcome."},
    };
    for (int k = 0; k < 4; k++) {
      fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", names[k][0], names[k][1], names[k][0], k == 2 ? "gauge" : "counter");
      for (struct state *s = states; s; s = s->next_state) {
        pthread_mutex_lock(&s->mu);
        if (k == 0) fprintf(f, "%s{connector=\"%s\"} %llu\n", names[k][0], s->owner, s->hits);
        if (k == 1) fprintf(f, "%s{connector=\"%s\"} %llu\n", names[k][0], s->owner, s->misses);
        if (k == 2) fprintf(f, "%s{connector=\"%s\"} %zu\n", names[k][0], s->owner, s->entries);
        if (k == 3)
          fprintf(f, "%s{connector=\"%s\",result=\"match\"} %llu\n%s{connector=\"%s\",result=\"mismatch\"} %llu\n"
                     "%s{connector=\"%s\",result=\"not-found\"} %llu\n",
                  names[k][0], s->owner, s->match, names[k][0], s->owner, s->mismatch, names[k][0], s->owner,
                  s->not_found);
        pthread_mutex_unlock(&s->mu);
      }
    }
  }
  pthread_mutex_unlock(&states_mu);
  fclose(f);
  return text;
}
static struct hub_metric_family family = {render_new};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned bucket_of(const char *id) {
  unsigned h = 2166136261u;
  for (; *id; id++) h = (h ^ (unsigned char)*id) * 16777619u;
  return h % BUCKETS;
}

static void entry_free(struct entry *e) {
  if (!e) return;
  free(e->name);
  free(e);
}

/* A live copy of the cached answer for id (under mu); 0 when none. */
static int cache_get(struct state *s, const char *id, struct entry *out) {
  double now = now_s();
  for (struct entry **pp = &s->buckets[bucket_of(id)], *e; (e = *pp);) {
    if (e->expires <= now) { /* expired: drop it on the way */
      *pp = e->next;
      entry_free(e);
      s->entries--;
      continue;
    }
    if (!strcmp(e->id, id)) {
      *out = *e;
      out->name = e->name ? strdup(e->name) : NULL;
      return !e->name || out->name;
    }
    pp = &e->next;
  }
  return 0;
}

/* Drops expired entries, and when still full the one that expires first (under mu). */
static void cache_make_room(struct state *s) {
  double now = now_s();
  struct entry **oldest = NULL;
  for (int b = 0; b < BUCKETS; b++)
    for (struct entry **pp = &s->buckets[b], *e; (e = *pp);) {
      if (e->expires <= now) {
        *pp = e->next;
        entry_free(e);
        s->entries--;
        continue;
      }
      if (!oldest || e->expires < (*oldest)->expires) oldest = pp;
      pp = &e->next;
    }
  if (s->entries >= (size_t)s->cfg->cache.max_entries && oldest) {
    struct entry *e = *oldest;
    *oldest = e->next;
    entry_free(e);
    s->entries--;
  }
}

static void cache_put(struct state *s, const struct entry *a) {
  if (s->cfg->cache.ttl_ms <= 0) return;
  struct entry *e = calloc(1, sizeof *e);
  if (!e) return; /* not cached: only the next look-up costs a call */
  *e = *a;
  e->name = a->name ? strdup(a->name) : NULL;
  if (a->name && !e->name) {
    free(e);
    return;
  }
  e->expires = now_s() + (double)s->cfg->cache.ttl_ms / 1000.0;
  pthread_mutex_lock(&s->mu);
  if (s->entries >= (size_t)s->cfg->cache.max_entries) cache_make_room(s);
  unsigned b = bucket_of(e->id);
  for (struct entry **pp = &s->buckets[b], *o; (o = *pp); pp = &o->next)
    if (!strcmp(o->id, e->id)) { /* two look-ups of one id at once: keep the newer */
      *pp = o->next;
      entry_free(o);
      s->entries--;
      break;
    }
  e->next = s->buckets[b];
  s->buckets[b] = e;
  s->entries++;
  pthread_mutex_unlock(&s->mu);
}

static void ps_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  pthread_mutex_lock(&states_mu);
  for (struct state **pp = &states; *pp; pp = &(*pp)->next_state)
    if (*pp == s) {
      *pp = s->next_state;
      break;
    }
  pthread_mutex_unlock(&states_mu);
  for (int b = 0; b < BUCKETS; b++)
    for (struct entry *e = s->buckets[b], *n; e; e = n) {
      n = e->next;
      entry_free(e);
    }
  hub_http_auth_destroy(s->auth);
  hub_ratelimit_destroy(s->limit);
  pthread_mutex_destroy(&s->mu);
  free(s->owner);
  free(s->endpoint);
  free(s->token_file);
  free(s->secret_file);
  free(s);
}

static hub_err_t ps_create(const void *cfgp, const struct hub_plugin_env *env, void **out, char *errbuf,
                           size_t errbuf_size) {
  const struct cfg *cfg = cfgp;
  struct state *s = calloc(1, sizeof *s);
  *out = NULL;
  if (!s) return HUB_ERR_NOMEM;
  pthread_mutex_init(&s->mu, NULL);
  s->cfg = cfg;
  const char *host = strstr(cfg->url, "://");
  size_t n = host ? strcspn(host + 3, "/?#") + (size_t)(host + 3 - cfg->url) : strlen(cfg->url);
  int oom = !(s->owner = strdup(env->owner ? env->owner : "population")) || !(s->endpoint = strndup(cfg->url, n));
  struct hub_http_auth_cfg ac = {0};
  if (cfg->oauth2.token_url) {
    ac.kind = HUB_HTTP_AUTH_OAUTH2;
    ac.token_url = cfg->oauth2.token_url;
    ac.client_id = cfg->oauth2.client_id;
    ac.scope = cfg->oauth2.scope;
    if (!(ac.client_secret_file = s->secret_file = hub_plugin_env_path_new(env, cfg->oauth2.client_secret_file))) oom = 1;
  } else if (cfg->bearer_token_file) {
    ac.kind = HUB_HTTP_AUTH_BEARER;
    if (!(ac.token_file = s->token_file = hub_plugin_env_path_new(env, cfg->bearer_token_file))) oom = 1;
  }
  if (oom || hub_http_auth_new(&ac, &s->auth) != HUB_OK ||
      (cfg->rate_limit.per_second &&
       !(s->limit = hub_ratelimit_new(s->owner, s->endpoint, (double)cfg->rate_limit.per_second, cfg->rate_limit.burst)))) {
    ps_destroy(s);
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

/* ------------------------------------------------------------------ the answer */

static int is_el(const xmlNode *n, const char *name) {
  return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name) && n->ns &&
         !strcmp((const char *)n->ns->href, QCVN109_NS);
}

static const xmlNode *child(const xmlNode *n, const char *name) {
  for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
    if (is_el(c, name)) return c;
  return NULL;
}

/* The trimmed text of an element (malloc'd; "" when absent), or NULL when out of memory. */
static char *text_new(const xmlNode *n) {
  xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
  const char *v = t ? (const char *)t : "";
  while (isspace((unsigned char)*v)) v++;
  size_t len = strlen(v);
  while (len && isspace((unsigned char)v[len - 1])) len--;
  char *r = strndup(v, len);
  xmlFree(t);
  return r;
}

/* Reads the citizen with `id` (SoDinhDanh, or SoCMND for a 9-digit id) from a QCVN 109
 * dc:CongdanCollection; a->found 0 when it lists none. */
static hub_err_t read_answer(const unsigned char *body, size_t len, const char *id, struct entry *a, char *why,
                             size_t wn) {
  xmlDocPtr doc = NULL;
  char e[512];
  hub_err_t rc = hub_xml_parse(body, len, NULL, "population answer", &doc, e, sizeof e);
  if (rc != HUB_OK) {
    snprintf(why, wn, "%s", e);
    return rc;
  }
  const xmlNode *root = xmlDocGetRootElement(doc);
  if (!is_el(root, "CongdanCollection")) {
    snprintf(why, wn, "population answer: the root is not dc:CongdanCollection (%s)", QCVN109_NS);
    xmlFreeDoc(doc);
    return HUB_ERR_DOWNSTREAM;
  }
  const char *idfield = strlen(id) == 9 ? "SoCMND" : "SoDinhDanh";
  a->found = 0;
  for (const xmlNode *c = root->children; c && !a->found && rc == HUB_OK; c = c->next) {
    if (!is_el(c, "CongDan")) continue;
    char *got = text_new(child(c, idfield));
    if (!got) rc = HUB_ERR_NOMEM;
    else if (!strcmp(got, id)) {
      a->found = 1;
      const xmlNode *hv = child(c, "HoVaTen");
      char *parts[3] = {text_new(child(hv, "Ho")), text_new(child(hv, "ChuDem")), text_new(child(hv, "Ten"))};
      size_t total = 4;
      for (int i = 0; i < 3; i++) total += parts[i] ? strlen(parts[i]) + 1 : 0;
      if ((a->name = malloc(total))) {
        a->name[0] = '\0';
        for (int i = 0; i < 3; i++)
          if (parts[i] && *parts[i]) {
            if (*a->name) strncat(a->name, " ", total - strlen(a->name) - 1);
            strncat(a->name, parts[i], total - strlen(a->name) - 1);
          }
        if (!*a->name) { /* a flat HoVaTen */
          free(a->name);
          a->name = text_new(hv);
        }
      }
      for (int i = 0; i < 3; i++) free(parts[i]);
      char *dob = text_new(child(child(c, "NgayThangNamSinh"), "NgayThangNam"));
      if (dob && !*dob) {
        free(dob);
        dob = text_new(child(c, "NamSinh"));
      }
      if (dob) snprintf(a->dob, sizeof a->dob, "%.10s", dob);
      if (!a->name || !dob) rc = HUB_ERR_NOMEM;
      free(dob);
    }
    free(got);
  }
  xmlFreeDoc(doc);
  return rc;
}

/* A request's date of birth as yyyy-mm-dd (or yyyy): from yyyy-mm-dd, dd/mm/yyyy or yyyy. */
static int norm_date(const char *in, char out[11]) {
  int y, m, d;
  char tail;
  if (sscanf(in, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 || sscanf(in, "%2d/%2d/%4d%c", &d, &m, &y, &tail) == 3) {
    if (y < 1850 || m < 1 || m > 12 || d < 1 || d > 31) return -1;
    snprintf(out, 11, "%04d-%02d-%02d", y, m, d);
    return 0;
  }
  if (strlen(in) == 4 && sscanf(in, "%4d%c", &y, &tail) == 1 && y >= 1850) {
    snprintf(out, 11, "%04d", y);
    return 0;
  }
  return -1;
}

/* ------------------------------------------------------------------ deliver */

/* One call to the database for id: *a filled (found or not) on OK. */
static enum hub_step_result lookup(struct state *s, const char *id, struct entry *a, struct hub_step_outcome *out) {
  const struct cfg *c = s->cfg;
  char url[2048], *auth_hdr = NULL, *user = NULL, *password = NULL, e[512];
  snprintf(url, sizeof url, "%s?%s=%s%s%s", c->url, c->id_param, id, c->madonvi ? "&MaDonVi=" : "",
           c->madonvi ? c->madonvi : "");
  enum hub_step_result sr = HUB_STEP_OK;
  struct hub_http_response resp = {0};
  for (int round = 0; round < 2; round++) { /* a second round only after a 401 to a cached token */
    if (s->limit && hub_ratelimit_acquire(s->limit, c->timeout_ms) != 0) {
      sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_TIMEOUT, "rate limit for %s: no call slot within %lld ms",
                         s->endpoint, (long long)c->timeout_ms);
      break;
    }
    hub_err_t rc = hub_http_auth_apply(s->auth, c->timeout_ms, &auth_hdr, &user, &password, e, sizeof e);
    if (rc != HUB_OK) {
      sr = hub_step_fail(out, HUB_STEP_RETRY, rc == HUB_ERR_NOMEM ? rc : HUB_ERR_AUTH, "%s", e);
      break;
    }
    const char *headers[] = {"Accept: application/xml", auth_hdr, NULL};
    struct hub_http_request req = {.method = "GET", .url = url, .headers = headers, .timeout_ms = c->timeout_ms,
                                   .max_body = (size_t)c->max_response};
    hub_http_response_release(&resp);
    pthread_mutex_lock(&s->mu);
    s->calls++;
    pthread_mutex_unlock(&s->mu);
    if ((rc = hub_http_perform(&req, &resp)) != HUB_OK) {
      sr = hub_step_fail(out, HUB_STEP_RETRY, rc, "%s", resp.error);
      break;
    }
    long st = resp.status;
    if (st == 401 && round == 0 && auth_hdr && c->oauth2.token_url) {
      hub_http_auth_rejected(s->auth, auth_hdr);
      free(auth_hdr);
      auth_hdr = NULL;
      continue;
    }
    if (st == 404) { /* some gateways answer an unknown id so */
      a->found = 0;
      break;
    }
    if (st < 200 || st >= 300) {
      int retry = st >= 500 || st == 408 || st == 429;
      sr = hub_step_fail(out, retry ? HUB_STEP_RETRY : HUB_STEP_REJECT, HUB_ERR_HTTP, "GET %s answered HTTP %ld: %.300s",
                         s->endpoint, st, resp.body ? (const char *)resp.body : "");
      if (st == 429 || st == 503) {
        int64_t ra = hub_http_retry_after_ms(hub_http_response_header(&resp, "retry-after"), time(NULL));
        if (ra > 0) out->retry_after_ms = ra;
      }
      break;
    }
    rc = read_answer(resp.body, resp.body_len, id, a, e, sizeof e);
    if (rc != HUB_OK)
      sr = hub_step_fail(out, rc == HUB_ERR_NOMEM ? HUB_STEP_RETRY : HUB_STEP_REJECT, rc, "%s", e);
    break;
  }
  free(auth_hdr);
  free(user);
  if (password) memset(password, 0, strlen(password));
  free(password);
  hub_http_response_release(&resp);
  return sr;
}

static int all_digits(const char *v, size_t n) {
  if (strlen(v) != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)v[i])) return 0;
  return 1;
}

static enum hub_step_result ps_deliver(void *p, const struct hub_msg *in, struct hub_msg **result,
                                       struct hub_step_outcome *out) {
  struct state *s = p;
  json_error_t je;
  json_t *req = json_loadb((const char *)in->value, in->value_len, 0, &je), *res = NULL, *mism = NULL, *checked = NULL;
  struct entry a = {0};
  enum hub_step_result sr = HUB_STEP_OK;
  char *text = NULL, dob[11] = "";
  if (!req || !json_is_object(req)) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_JSON, "request: %s",
                       req ? "not a JSON object" : je.text);
    goto out;
  }
  const char *id = json_string_value(json_object_get(req, "SoDinhDanh"));
  const char *name = json_string_value(json_object_get(req, "HoVaTen"));
  const char *birth = json_string_value(json_object_get(req, "NgaySinh"));
  if (!id || !(all_digits(id, 12) || all_digits(id, 9))) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA,
                       "request: SoDinhDanh must be a 12-digit citizen id or a 9-digit CMND number");
    goto out;
  }
  if (json_object_get(req, "HoVaTen") && (!name || lt_name_equal(name, name) < 0)) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA, "request: HoVaTen must be a UTF-8 string");
    goto out;
  }
  if (json_object_get(req, "NgaySinh") && (!birth || norm_date(birth, dob) != 0)) {
    sr = hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_SCHEMA,
                       "request: NgaySinh must be yyyy-mm-dd, dd/mm/yyyy or yyyy");
    goto out;
  }
  pthread_mutex_lock(&s->mu);
  int cached = s->cfg->cache.ttl_ms > 0 && cache_get(s, id, &a);
  if (cached) s->hits++;
  pthread_mutex_unlock(&s->mu);
  if (!cached) {
    snprintf(a.id, sizeof a.id, "%s", id);
    if ((sr = lookup(s, id, &a, out)) != HUB_STEP_OK) goto out;
    pthread_mutex_lock(&s->mu);
    s->misses++;
    pthread_mutex_unlock(&s->mu);
    cache_put(s, &a);
  }
  res = json_object();
  mism = json_array();
  checked = json_array();
  if (!res || !mism || !checked) goto oom;
  json_array_append_new(checked, json_string("SoDinhDanh"));
  const char *verdict = "not-found";
  if (a.found) {
    if (name) {
      json_array_append_new(checked, json_string("HoVaTen"));
      if (lt_name_equal(name, a.name ? a.name : "") != 1) json_array_append_new(mism, json_string("HoVaTen"));
    }
    if (birth) {
      json_array_append_new(checked, json_string("NgaySinh"));
      /* a year-only date on either side compares the year */
      size_t n = strlen(dob) < strlen(a.dob) ? strlen(dob) : strlen(a.dob);
      if (n < 4 || strncmp(dob, a.dob, n != 4 && n != 10 ? 10 : n) != 0) json_array_append_new(mism, json_string("NgaySinh"));
    }
    verdict = json_array_size(mism) ? "mismatch" : "match";
  }
  json_object_set_new(res, "SoDinhDanh", json_string(id));
  json_object_set_new(res, "result", json_string(verdict));
  json_object_set(res, "checked", checked);
  if (!strcmp(verdict, "mismatch")) json_object_set(res, "mismatched", mism);
  json_object_set_new(res, "cached", json_boolean(cached));
  const char *rid = hub_msg_header_get_str(in, HUB_H_ID);
  if (rid) json_object_set_new(res, "request", json_string(rid));
  if (!(text = json_dumps(res, JSON_COMPACT))) goto oom;
  if (!(*result = hub_msg_new(NULL, 0, text, strlen(text))) ||
      hub_msg_header_set_str(*result, HUB_H_CONTENT_TYPE, "application/json") != HUB_OK ||
      hub_msg_header_set_str(*result, HUB_H_TYPE, "citizen.verified") != HUB_OK) {
    hub_msg_destroy(*result);
    *result = NULL;
    goto oom;
  }
  pthread_mutex_lock(&s->mu);
  if (!strcmp(verdict, "match")) s->match++;
  else if (!strcmp(verdict, "mismatch")) s->mismatch++;
  else s->not_found++;
  pthread_mutex_unlock(&s->mu);
  goto out;
oom:
  sr = hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory building the result");
out:
  free(text);
  free(a.name);
  json_decref(checked);
  json_decref(mism);
  json_decref(res);
  json_decref(req);
  return sr;
}

static const struct hub_sink_ops ops = {
    .info = {.name = "population",
             .summary = "verifies id number, name and date of birth against the population database (QCVN 109): "
                        "match, mismatch (which fields) or not-found; TTL cache, rate limit, OAuth2",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = ps_create,
    .deliver = ps_deliver,
    .destroy = ps_destroy,
    .concurrent = 1, /* the cache and counters are under a mutex; auth, rate limit and client are thread-safe */
};
HUB_SINK_PLUGIN(hub_plugin_sink_population, ops);
