/* Source `vxp-in`: this agency's packets on the VPCP national document axis (VXP). Each poll
 * lists them (getReceivedEdocList), fetches each (getEdoc, base64 in `data`), emits them with the
 * inbox cursor in one transaction and only then confirms each (updateStatus done, or fail with
 * the reason for a packet that is unreadable, not edXML or wrongly signed): edoc.h. */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edoc.h"
#include "hub/core/registry.h"
#include "hub/engine/connector.h"
#include "vxp_api.h"

struct cfg {
  struct vxp_api_cfg api;
  struct edoc_inbox_cfg inbox;
};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    VXP_API_ENTRIES(struct cfg, api),
    EDOC_INBOX_ENTRIES(struct cfg, inbox),
    {NULL},
};
static const struct hub_cfg_map map = {"vxp-in", entries};

struct state {
  const struct cfg *cfg;
  struct vxp_api *api;
  struct edoc_inbox *inbox;
};

static const char *const kinds[] = {"edoc", "status"};

static hub_err_t list(void *p, struct edoc_item **items, size_t *n, char *errbuf, size_t errbuf_size) {
  struct state *s = p;
  struct vxp_answer ans;
  *items = NULL;
  *n = 0;
  /* the axis lists the kind named by messagetype */
  hub_err_t rc = vxp_api_call(s->api, "getReceivedEdocList", kinds[s->cfg->inbox.messagetype], NULL, NULL, 0, NULL,
                              "{}", 2, NULL, &ans, errbuf, errbuf_size);
  if (rc != HUB_OK) goto out;
  json_t *data = json_object_get(ans.json, "data");
  size_t cnt = json_array_size(data);
  if (cnt && !(*items = calloc(cnt, sizeof **items))) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  size_t i;
  json_t *v;
  json_array_foreach(data, i, v) {
    const char *id = json_string_value(json_object_get(v, "docId"));
    if (!id) continue; /* an entry without an id cannot be fetched nor confirmed */
    struct edoc_item *it = &(*items)[(*n)++];
    const char *mt2 = json_string_value(json_object_get(v, "messageType"));
    const char *from = json_string_value(json_object_get(v, "from"));
    it->id = strdup(id);
    it->messagetype = mt2 ? strdup(mt2) : NULL;
    it->from = from ? strdup(from) : NULL;
  }
out:
  vxp_answer_release(&ans);
  return rc;
}

static enum edoc_fetch fetch(void *p, const struct edoc_item *it, unsigned char **data, size_t *len, char *errbuf,
                             size_t errbuf_size) {
  struct state *s = p;
  struct vxp_answer ans;
  const char *names[] = {"docId"}, *values[] = {it->id};
  char hdr[600];
  snprintf(hdr, sizeof hdr, "docId: %s", it->id);
  const char *plain[] = {hdr, NULL};
  *data = NULL;
  *len = 0;
  hub_err_t rc = vxp_api_call(s->api, "getEdoc", it->messagetype ? it->messagetype : "edoc", names, values, 1, plain,
                              "{}", 2, NULL, &ans, errbuf, errbuf_size);
  enum edoc_fetch r = EDOC_FETCH_RETRY;
  if (rc == HUB_ERR_DOWNSTREAM || rc == HUB_ERR_TOO_LARGE) { /* the axis cannot give it, or it passes max_size */
    r = EDOC_FETCH_FAIL;
    goto out;
  }
  if (rc != HUB_OK) goto out; /* no answer, 5xx, 401, not JSON: try again at the next poll */
  const char *b64 = json_string_value(json_object_get(ans.json, "data"));
  size_t bl = b64 ? strlen(b64) : 0;
  if (!bl || bl % 4) {
    snprintf(errbuf, errbuf_size, "vxp getEdoc %s: `data` is %s", it->id, !b64 ? "missing" : "not base64");
    r = EDOC_FETCH_FAIL;
    goto out;
  }
  unsigned char *buf = malloc(bl / 4 * 3 + 1);
  if (!buf) goto out;
  int dl = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)bl);
  if (dl < 0) {
    free(buf);
    snprintf(errbuf, errbuf_size, "vxp getEdoc %s: `data` is not base64", it->id);
    r = EDOC_FETCH_FAIL;
    goto out;
  }
  for (size_t k = bl; k > 0 && b64[k - 1] == '='; k--)
    dl--; /* EVP_DecodeBlock counts the padding */
  *data = buf;
  *len = (size_t)dl;
  r = EDOC_FETCH_OK;
out:
  vxp_answer_release(&ans);
  return r;
}

static hub_err_t confirm(void *p, const char *id, int ok, const char *reason, char *errbuf, size_t errbuf_size) {
  struct state *s = p;
  struct vxp_answer ans;
  const char *names[] = {"docId"}, *values[] = {id};
  char h1[600], h2[32];
  snprintf(h1, sizeof h1, "docid: %s", id);
  snprintf(h2, sizeof h2, "status: %s", ok ? "done" : "fail");
  const char *plain[] = {h1, h2, NULL};
  /* The reason travels in the body: header values are ASCII, reasons are not always. */
  json_t *b = json_pack("{s:s,s:s,s:s?}", "docId", id, "status", ok ? "done" : "fail", "description", reason);
  char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
  json_decref(b);
  if (!body) {
    snprintf(errbuf, errbuf_size, "vxp updateStatus: out of memory");
    return HUB_ERR_NOMEM;
  }
  hub_err_t rc = vxp_api_call(s->api, "updateStatus", "edoc", names, values, 1, plain, body, strlen(body), NULL, &ans,
                              errbuf, errbuf_size);
  free(body);
  vxp_answer_release(&ans);
  return rc;
}

static const struct edoc_axis_ops axis_ops = {"vxp-in", list, fetch, confirm};

static void vi_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  edoc_inbox_destroy(s->inbox);
  vxp_api_destroy(s->api);
  free(s);
}

static hub_err_t vi_create(const void *cfgp, const struct hub_plugin_env *env, struct hub_source_ctx *ctx, void **state,
                           char *errbuf, size_t errbuf_size) {
  const struct cfg *cfg = cfgp;
  struct state *s = calloc(1, sizeof *s);
  hub_err_t rc = HUB_ERR_NOMEM;
  *state = NULL;
  if (!s) {
    snprintf(errbuf, errbuf_size, "vxp-in: out of memory");
    return rc;
  }
  s->cfg = cfg;
  if ((rc = vxp_api_new(&cfg->api, env, &s->api, errbuf, errbuf_size)) == HUB_OK)
    vxp_api_set_max_packet(s->api, (size_t)cfg->inbox.max_size);
  if (rc != HUB_OK ||
      (rc = edoc_inbox_new(&cfg->inbox, env, &axis_ops, s, ctx, &s->inbox, errbuf, errbuf_size)) != HUB_OK) {
    vi_destroy(s);
    return rc;
  }
  *state = s;
  return HUB_OK;
}

static hub_err_t vi_start(void *p, char *errbuf, size_t errbuf_size) {
  struct state *s = p;
  return edoc_inbox_start(s->inbox, errbuf, errbuf_size);
}

static hub_err_t vi_poll(void *p) {
  return edoc_inbox_poll(((struct state *)p)->inbox);
}

static int vi_health(void *p, char *why, size_t why_size) {
  return edoc_inbox_health(((struct state *)p)->inbox, why, why_size);
}

static const struct hub_source_ops ops = {
    .info = {.name = "vxp-in",
             .summary = "receives edXML packets from the national document axis (VXP): list, getEdoc, "
                        "updateStatus after commit",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = vi_create,
    .start = vi_start,
    .poll = vi_poll,
    .health = vi_health,
    .destroy = vi_destroy,
};
HUB_SOURCE_PLUGIN(hub_plugin_source_vxp_in, ops);
