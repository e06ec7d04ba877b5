/* Source `vnpost-tracking`: polls VNPost's order tracking (getOrderTracking(pagesize, lastId),
 * vn-standards.md §4.1) and writes one record per tracking entry, keyed by the order number
 * (the dossier code), in the order VNPost lists them. The cursor is the `_id.$oid` of the last
 * entry written, committed in the same transaction as the entries (hub_source_emit), so a crash
 * neither skips nor repeats an entry. VNPost's ids are ObjectIds (24 hex digits, increasing), so
 * an entry whose id is not after the cursor (a page that repeats entries) is skipped as a
 * duplicate. An entry without a usable id is written like any other (the route's contract sends
 * it to its DLQ) when a later entry of the page has one to carry the cursor past it; entries
 * after the page's last usable id wait for the next poll; a page with none at all is a failed
 * poll. After UNHEALTHY_AFTER failed polls in a row (HTTP errors, timeouts, answers that are not
 * a page) the source reports itself unhealthy with the reason. A page of `page_size` entries is
 * followed at once by the next, up to `max_pages` a poll. */
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/log.h"
#include "hub/core/registry.h"
#include "hub/engine/connector.h"
#include "mappings/shape/json.h"
#include "vnpost_api.h"

#define OID_LEN 24
/* One failed poll is weather (a 5xx, a timeout): /ready turns 503 only after this many in a row. */
#define UNHEALTHY_AFTER 3

struct cfg {
  struct vnpost_api_cfg api; /* first: VNPOST_API_ENTRIES address it at offset 0 */
  int64_t page_size, max_pages;
  char *start_after;
};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    VNPOST_API_ENTRIES,
    {"page_size", HUB_CFG_INT, F(page_size), "100", 0, "entries asked for per call (pagesize)", NULL, NULL, 1, 10000},
    {"max_pages", HUB_CFG_INT, F(max_pages), "50", 0, "pages fetched back to back in one poll when they come full",
     NULL, NULL, 1, 100000},
    {"start_after", HUB_CFG_STR, F(start_after), NULL, 0,
     "lastId of the first call when no cursor was committed yet (default: from the beginning)"},
    {NULL},
};
static int is_oid(const char *s) {
  if (!s || strlen(s) != OID_LEN) return 0;
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
  return 1;
}
static hub_err_t src_check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                           size_t errbuf_size) {
  const struct cfg *c = p;
  if (c->start_after && !is_oid(c->start_after))
    return hub_node_error(hub_cfg_value_at(node, at, "start_after"), errbuf, errbuf_size,
                          "start_after must be an ObjectId: 24 lower-case hex digits");
  return vnpost_api_check(&c->api, node, at, errbuf, errbuf_size);
}
static const struct hub_cfg_constraint rules[] = {
    {"start_after is 24 lower-case hex digits", "start_after", "{url: 'http://127.0.0.1:1/v', start_after: xyz}",
     "{url: 'http://127.0.0.1:1/v', start_after: 65a4c1e2f1a2b3c4d5e6f701}"},
    {"url starts with http:// or https://", "url", "{url: 'ftp://x/y'}", "{url: 'https://x/y'}"},
    {"the lgsp url has no query (?service= is added)", "url", "{url: 'http://x/y?a=b'}",
     "{url: 'http://x/y?a=b', variant: direct}"},
    {NULL},
};
static const struct hub_cfg_map map = {"vnpost-tracking", entries, .check = src_check, .constraints = rules};

struct state {
  const struct cfg *cfg;
  struct hub_source_ctx *ctx;
  struct vnpost_api *api;
  char cursor[OID_LEN + 1]; /* "" before the first entry */
  pthread_mutex_t mu;
  char problem[512]; /* why the last poll failed, "" when it did not */
  int failures;      /* polls failed in a row */
  atomic_int stop;
};

static void set_problem(struct state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_problem(struct state *s, const char *fmt, ...) {
  char buf[512] = "";
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
  }
  pthread_mutex_lock(&s->mu);
  int changed = strcmp(buf, s->problem) != 0;
  memcpy(s->problem, buf, sizeof buf);
  s->failures = *buf ? s->failures + 1 : 0;
  pthread_mutex_unlock(&s->mu);
  if (changed && *buf) hub_log(HUB_LOG_WARN, hub_source_name(s->ctx), "%s", buf);
}

static void vt_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  vnpost_api_destroy(s->api);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

static hub_err_t vt_create(const void *cfgp, const struct hub_plugin_env *env, struct hub_source_ctx *ctx, void **state,
                           char *errbuf, size_t errbuf_size) {
  struct state *s = calloc(1, sizeof *s);
  *state = NULL;
  if (!s) return HUB_ERR_NOMEM;
  s->cfg = cfgp;
  s->ctx = ctx;
  pthread_mutex_init(&s->mu, NULL);
  hub_err_t rc = vnpost_api_new(&s->cfg->api, env, &s->api, errbuf, errbuf_size);
  if (rc != HUB_OK) {
    vt_destroy(s);
    return rc;
  }
  *state = s;
  return HUB_OK;
}

static hub_err_t vt_start(void *p, char *errbuf, size_t errbuf_size) {
  struct state *s = p;
  void *cur = NULL;
  size_t len = 0;
  hub_err_t rc = hub_source_cursor_get(s->ctx, &cur, &len, errbuf, errbuf_size);
  if (rc != HUB_OK) return rc;
  s->cursor[0] = 0;
  if (cur && len == OID_LEN) {
    memcpy(s->cursor, cur, OID_LEN);
    s->cursor[OID_LEN] = 0;
  } else {
    /* Only this source writes the cursor (always an ObjectId); anything else is said aloud. */
    if (cur)
      hub_log(HUB_LOG_WARN, hub_source_name(s->ctx), "committed cursor is not an ObjectId (%zu bytes); starting %s",
              len, s->cfg->start_after ? "after start_after" : "from the first entry");
    if (s->cfg->start_after) snprintf(s->cursor, sizeof s->cursor, "%s", s->cfg->start_after);
  }
  free(cur);
  atomic_store(&s->stop, 0);
  return HUB_OK;
}

static void vt_stop(void *p) {
  struct state *s = p;
  atomic_store(&s->stop, 1);
}

/* One page: *n_new entries written (0: nothing new), *n_page entries VNPost listed. */
static hub_err_t one_page(struct state *s, size_t *n_new, size_t *n_page) {
  char body[128], e[512];
  struct hub_http_response resp = {0};
  json_t *page = NULL;
  struct hub_msg **m = NULL;
  size_t n = 0;
  hub_err_t rc = HUB_ERR_UNAVAILABLE;
  *n_new = *n_page = 0;
  snprintf(body, sizeof body, "{\"pagesize\":%lld,\"lastId\":\"%s\"}", (long long)s->cfg->page_size, s->cursor);
  enum vnpost_call_rc cr = vnpost_api_call(s->api, VNPOST_TRACKING, NULL, body, strlen(body), &resp, NULL, e, sizeof e);
  if (cr != VNPOST_ANSWERED) {
    set_problem(s, "tracking: %s", e);
    rc = cr == VNPOST_STOPPED ? HUB_ERR_STOPPED : HUB_ERR_UNAVAILABLE;
    goto out;
  }
  if (resp.status < 200 || resp.status >= 300) {
    set_problem(s, "tracking: %s answered HTTP %ld: %.200s", vnpost_api_op_name(s->api, VNPOST_TRACKING), resp.status,
                resp.body ? (const char *)resp.body : "");
    rc = HUB_ERR_HTTP;
    goto out;
  }
  json_t *docs = NULL;
  if (lt_json_parse(resp.body, resp.body_len, "tracking page", &page, e, sizeof e) != HUB_OK ||
      !json_is_array(docs = json_object_get(json_object_get(page, "_embedded"), "rh:doc"))) {
    /* Gateways answer oddly at times (vn-standards §8): report the raw body, keep the cursor. */
    set_problem(s, "tracking: the answer is not a page with _embedded.rh:doc[] (%s): %.200s",
                page ? "no such array" : e, resp.body ? (const char *)resp.body : "");
    rc = HUB_ERR_JSON;
    goto out;
  }
  *n_page = json_array_size(docs);
  if (!(m = calloc(*n_page + 1, sizeof *m))) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  char last[OID_LEN + 1];
  snprintf(last, sizeof last, "%s", s->cursor);
  size_t i;
  json_t *item;
  size_t end = 0; /* entries before the last one with a usable id are written */
  json_array_foreach(docs, i, item) {
    if (is_oid(json_string_value(json_object_get(json_object_get(item, "_id"), "$oid")))) end = i + 1;
  }
  json_array_foreach(docs, i, item) {
    if (i >= end) break;
    const char *oid = json_string_value(json_object_get(json_object_get(item, "_id"), "$oid"));
    int usable = is_oid(oid);
    if (usable && *last && strcmp(oid, last) <= 0) continue; /* already written: a repeated entry */
    json_t *on = json_object_get(item, "OrderNumber");
    const char *key = json_is_string(on) ? json_string_value(on) : "";
    char *text = json_dumps(item, JSON_COMPACT);
    if (!text || !(m[n] = hub_msg_new(key, strlen(key), text, strlen(text))) ||
        hub_msg_header_set_str(m[n], HUB_H_CONTENT_TYPE, "application/json") != HUB_OK ||
        hub_msg_header_set_str(m[n], HUB_H_TYPE, "vnpost.tracking") != HUB_OK) {
      free(text);
      if (m[n]) n++;
      rc = HUB_ERR_NOMEM;
      goto out;
    }
    free(text);
    n++;
    if (usable) memcpy(last, oid, OID_LEN + 1);
  }
  if (n) {
    rc = hub_source_emit(s->ctx, m, n, last, OID_LEN);
    if (rc != HUB_OK) {
      set_problem(s, "tracking: writing %zu entries failed: %s", n, hub_err2str(rc));
      goto out;
    }
    memcpy(s->cursor, last, OID_LEN + 1);
  }
  *n_new = n;
  if (*n_page && !end) {
    set_problem(s,
                "tracking: no entry of the page after lastId '%s' has a valid _id.$oid (24 hex digits); "
                "waiting for VNPost to fix it",
                s->cursor);
    rc = HUB_ERR_JSON;
    goto out;
  }
  set_problem(s, NULL);
  rc = HUB_OK;
out:
  for (size_t k = 0; m && k < n; k++)
    hub_msg_destroy(m[k]);
  free(m);
  json_decref(page);
  hub_http_response_release(&resp);
  return rc;
}

static hub_err_t vt_poll(void *p) {
  struct state *s = p;
  for (int64_t k = 0; k < s->cfg->max_pages && !atomic_load(&s->stop); k++) {
    size_t n_new, n_page;
    hub_err_t rc = one_page(s, &n_new, &n_page);
    if (rc != HUB_OK) return rc;
    if ((int64_t)n_page < s->cfg->page_size) break; /* the last page for now */
  }
  return HUB_OK;
}

static int vt_health(void *p, char *why, size_t why_size) {
  struct state *s = p;
  pthread_mutex_lock(&s->mu);
  int ok = !s->problem[0] || s->failures < UNHEALTHY_AFTER;
  if (!ok) snprintf(why, why_size, "%s (%d polls in a row)", s->problem, s->failures);
  pthread_mutex_unlock(&s->mu);
  return ok ? vnpost_api_health(s->api, why, why_size) : 0;
}

static const struct hub_source_ops ops = {
    .info = {.name = "vnpost-tracking",
             .summary = "polls VNPost order tracking with the lastId cursor; one record per entry, keyed by order",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = vt_create,
    .start = vt_start,
    .poll = vt_poll,
    .stop = vt_stop,
    .health = vt_health,
    .destroy = vt_destroy,
};
HUB_SOURCE_PLUGIN(hub_plugin_source_vnpost_tracking, ops);
