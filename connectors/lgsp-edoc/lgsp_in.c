/* Source `lgsp-edoc-in`: this agency's packets on a provincial LGSP document axis. Each poll
 * lists them (GET /vanbans), fetches each (GET /vanbans/{docId}, base64 in `data`) and marks it
 * PROCESSING, emits them with the inbox cursor in one transaction and only then sets DONE, or
 * FAIL with the reason for a packet that is unreadable, not edXML or wrongly signed (the shared
 * inbox logic of connectors/vxp/edoc.h). */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/vxp/edoc.h"
#include "hub/core/log.h"
#include "hub/core/registry.h"
#include "hub/engine/connector.h"
#include "lgsp_api.h"

struct cfg {
  struct lgsp_api_cfg api;
  struct edoc_inbox_cfg inbox;
  int mark_processing;
};

static const struct hub_cfg_entry entries[] = {
    LGSP_API_ENTRIES(struct cfg, api),
    EDOC_INBOX_ENTRIES(struct cfg, inbox),
    {"mark_processing", HUB_CFG_BOOL, offsetof(struct cfg, mark_processing), "true", 0,
     "set PROCESSING on a packet once fetched (DONE/FAIL follow after the commit)"},
    {NULL},
};
static const struct hub_cfg_map map = {"lgsp-edoc-in", entries};

struct state {
  const struct cfg *cfg;
  struct lgsp_api *api;
  struct edoc_inbox *inbox;
};

static char *str_or_num(const json_t *v) {
  if (json_is_string(v)) return strdup(json_string_value(v));
  if (json_is_integer(v)) {
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)json_integer_value(v));
    return strdup(b);
  }
  return NULL;
}

static hub_err_t list(void *p, struct edoc_item **items, size_t *n, char *errbuf, size_t errbuf_size) {
  struct state *s = p;
  struct lgsp_answer ans;
  *items = NULL;
  *n = 0;
  hub_err_t rc = lgsp_api_call(s->api, "GET", "/vanbans", NULL, &ans, errbuf, errbuf_size);
  if (rc != HUB_OK) goto out;
  json_t *data = json_object_get(ans.json, "data");
  size_t cnt = json_array_size(data), i;
  json_t *v;
  if (cnt && !(*items = calloc(cnt, sizeof **items))) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  json_array_foreach(data, i, v) {
    char *id = str_or_num(json_object_get(v, "docId"));
    if (!id) continue;
    const char *st = json_string_value(json_object_get(v, "status"));
    if (st && (!strcmp(st, "DONE") || !strcmp(st, "FAIL"))) { /* confirmed already */
      free(id);
      continue;
    }
    struct edoc_item *it = &(*items)[(*n)++];
    it->id = id;
    const char *mt = json_string_value(json_object_get(v, "messageType"));
    it->messagetype = mt ? strdup(mt) : NULL;
    it->from = str_or_num(json_object_get(v, "from"));
  }
out:
  lgsp_answer_release(&ans);
  return rc;
}

static hub_err_t put_status(struct state *s, const char *id, const char *status, const char *reason, char *errbuf,
                            size_t errbuf_size) {
  struct lgsp_answer ans;
  char *path = lgsp_path_new("/vanbans", id);
  json_t *b = json_pack("{s:s,s:s?}", "status", status, "description", reason);
  hub_err_t rc = HUB_ERR_NOMEM;
  if (path && b)
    rc = lgsp_api_call(s->api, "PUT", path, b, &ans, errbuf, errbuf_size);
  else
    snprintf(errbuf, errbuf_size, "lgsp-edoc-in: out of memory");
  if (path && b) lgsp_answer_release(&ans);
  json_decref(b);
  free(path);
  return rc;
}

static enum edoc_fetch fetch(void *p, const struct edoc_item *it, unsigned char **data, size_t *len, char *errbuf,
                             size_t errbuf_size) {
  struct state *s = p;
  struct lgsp_answer ans = {0};
  char *path = lgsp_path_new("/vanbans", it->id);
  enum edoc_fetch r = EDOC_FETCH_RETRY;
  *data = NULL;
  *len = 0;
  if (!path) return r;
  hub_err_t rc = lgsp_api_call(s->api, "GET", path, NULL, &ans, errbuf, errbuf_size);
  free(path);
  if (rc == HUB_ERR_DOWNSTREAM || rc == HUB_ERR_TOO_LARGE || (rc == HUB_ERR_HTTP && ans.http_status == 404)) {
    r = EDOC_FETCH_FAIL;
    goto out;
  }
  if (rc != HUB_OK) goto out;
  json_t *d = json_object_get(ans.json, "data");
  const char *b64 = json_is_string(d) ? json_string_value(d) : json_string_value(json_object_get(d, "content"));
  size_t bl = b64 ? strlen(b64) : 0;
  unsigned char *buf = bl && bl % 4 == 0 ? malloc(bl / 4 * 3 + 1) : NULL;
  int dl = buf ? EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)bl) : -1;
  if (dl < 0) {
    free(buf);
    snprintf(errbuf, errbuf_size, "lgsp-edoc GET /vanbans/%s: `data` is %s", it->id, !b64 ? "missing" : "not base64");
    r = EDOC_FETCH_FAIL;
    goto out;
  }
  for (size_t k = bl; k > 0 && b64[k - 1] == '='; k--)
    dl--;
  *data = buf;
  *len = (size_t)dl;
  r = EDOC_FETCH_OK;
  if (s->cfg->mark_processing) {
    char e[512];
    if (put_status(s, it->id, "PROCESSING", NULL, e, sizeof e) != HUB_OK)
      hub_log(HUB_LOG_INFO, "lgsp-edoc-in", "PROCESSING for %s not taken (DONE/FAIL follows anyway): %s", it->id, e);
  }
out:
  lgsp_answer_release(&ans);
  return r;
}

static hub_err_t confirm(void *p, const char *id, int ok, const char *reason, char *errbuf, size_t errbuf_size) {
  return put_status(p, id, ok ? "DONE" : "FAIL", reason, errbuf, errbuf_size);
}

static const struct edoc_axis_ops axis_ops = {"lgsp-edoc-in", list, fetch, confirm};

static void li_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  edoc_inbox_destroy(s->inbox);
  lgsp_api_destroy(s->api);
  free(s);
}

static hub_err_t li_create(const void *cfgp, const struct hub_plugin_env *env, struct hub_source_ctx *ctx, void **state,
                           char *errbuf, size_t errbuf_size) {
  const struct cfg *cfg = cfgp;
  struct state *s = calloc(1, sizeof *s);
  hub_err_t rc;
  *state = NULL;
  if (!s) {
    snprintf(errbuf, errbuf_size, "lgsp-edoc-in: out of memory");
    return HUB_ERR_NOMEM;
  }
  s->cfg = cfg;
  if ((rc = lgsp_api_new(&cfg->api, env, &s->api, errbuf, errbuf_size)) == HUB_OK)
    lgsp_api_set_max_packet(s->api, (size_t)cfg->inbox.max_size);
  if (rc != HUB_OK ||
      (rc = edoc_inbox_new(&cfg->inbox, env, &axis_ops, s, ctx, &s->inbox, errbuf, errbuf_size)) != HUB_OK) {
    li_destroy(s);
    return rc;
  }
  *state = s;
  return HUB_OK;
}

static hub_err_t li_start(void *p, char *errbuf, size_t errbuf_size) {
  return edoc_inbox_start(((struct state *)p)->inbox, errbuf, errbuf_size);
}
static hub_err_t li_poll(void *p) {
  return edoc_inbox_poll(((struct state *)p)->inbox);
}
static int li_health(void *p, char *why, size_t why_size) {
  return edoc_inbox_health(((struct state *)p)->inbox, why, why_size);
}

static const struct hub_source_ops ops = {
    .info = {.name = "lgsp-edoc-in",
             .summary = "receives edXML packets from a provincial LGSP document axis (OAuth2): list, fetch, "
                        "PROCESSING, DONE/FAIL after commit",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = li_create,
    .start = li_start,
    .poll = li_poll,
    .health = li_health,
    .destroy = li_destroy,
};
HUB_SOURCE_PLUGIN(hub_plugin_source_lgsp_edoc_in, ops);
