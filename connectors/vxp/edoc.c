/* The document-axis helpers shared by vxp-* and lgsp-edoc-* (edoc.h): reading an edXML packet's
 * kind, recipients and id, and the receiving inbox (dedupe window, receipts after commit). */
#include "edoc.h"

#include <jansson.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/log.h"
#include "hub/core/metrics.h"
#include "hub/core/msg.h"
#include "hub/core/node.h"
#include "hub/core/xml.h"
#include "hub/trust/xmldsig.h"

static struct hub_metric_counter received_total = {"lienthong_edoc_received_total",
                                                   "edXML packets the document-axis sources emitted", 0, 0, NULL};
static struct hub_metric_counter duplicates_total = {
    "lienthong_edoc_duplicates_total",
    "packets listed again or re-sent with the same bytes, confirmed without a second emit", 0, 0, NULL};
static struct hub_metric_counter receipt_fail_total = {
    "lienthong_edoc_receipt_fail_total",
    "packets confirmed `fail` (unreadable, not well-formed, or a signature that does not verify)", 0, 0, NULL};

/* ---- a packet ---- */

static int is(const xmlNode *n, const char *local) {
  return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, local);
}

static xmlNode *child(const xmlNode *n, const char *local) {
  for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
    if (is(c, local)) return c;
  return NULL;
}

static char *text_new(const xmlNode *n) {
  if (!n) return NULL;
  xmlChar *t = xmlNodeGetContent(n);
  if (!t) return NULL;
  /* Trim: producers indent. */
  char *s = (char *)t, *e = s + strlen(s);
  while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
    s++;
  while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r' || e[-1] == '\t'))
    e--;
  char *r = *s ? strndup(s, (size_t)(e - s)) : NULL;
  xmlFree(t);
  return r;
}

static int to_add(struct edoc_info *info, const xmlNode *organ_parent) {
  char *id = text_new(child(organ_parent, "OrganId"));
  if (!id) return 0;
  char **v = realloc(info->to, (info->n_to + 1) * sizeof *v);
  if (!v) {
    free(id);
    return -1;
  }
  info->to = v;
  v[info->n_to++] = id;
  return 0;
}

hub_err_t edoc_inspect(const void *xml, size_t len, size_t max_bytes, struct edoc_info *info, char *errbuf,
                       size_t errbuf_size) {
  memset(info, 0, sizeof *info);
  xmlDocPtr doc = NULL;
  struct hub_xml_limits lim = {.max_bytes = max_bytes};
  hub_err_t rc = hub_xml_parse(xml, len, &lim, "packet", &doc, errbuf, errbuf_size);
  if (rc != HUB_OK) return rc;
  xmlNode *root = xmlDocGetRootElement(doc);
  xmlNode *hdr = child(child(root, "edXMLEnvelope"), "edXMLHeader");
  if (!is(root, "edXML") || !hdr) {
    rc = HUB_ERR_SCHEMA;
    snprintf(errbuf, errbuf_size, "packet: not an edXML packet (no edXML/edXMLEnvelope/edXMLHeader)");
    goto out;
  }
  xmlNode *h = child(hdr, "Status");
  if (!h && (h = child(hdr, "MessageHeader")) && child(h, "StatusCode")) info->kind = EDOC_STATUS;
  if (child(hdr, "Status")) info->kind = EDOC_STATUS;
  if (!h) {
    rc = HUB_ERR_SCHEMA;
    snprintf(errbuf, errbuf_size, "packet: edXMLHeader has neither MessageHeader nor Status");
    goto out;
  }
  info->from = text_new(child(child(h, "From"), "OrganId"));
  int bad = 0;
  if (info->kind == EDOC_STATUS) {
    xmlNode *rf = child(h, "ResponseFor");
    info->document_id = text_new(child(rf, "DocumentId"));
    info->status_code = text_new(child(h, "StatusCode"));
    bad = to_add(info, rf);
  } else {
    info->document_id = text_new(child(h, "DocumentId"));
    for (xmlNode *c = h->children; c && !bad; c = c->next)
      if (is(c, "To")) bad = to_add(info, c);
  }
  if (bad) rc = HUB_ERR_NOMEM;
out:
  xmlFreeDoc(doc);
  if (rc != HUB_OK) edoc_info_release(info);
  return rc;
}

void edoc_info_release(struct edoc_info *info) {
  if (!info) return;
  free(info->document_id);
  free(info->from);
  free(info->status_code);
  for (size_t i = 0; i < info->n_to; i++)
    free(info->to[i]);
  free(info->to);
  memset(info, 0, sizeof *info);
}

char *edoc_to_json_new(const struct edoc_info *info) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < info->n_to; i++)
    json_array_append_new(a, json_string(info->to[i]));
  char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
  json_decref(a);
  return s;
}

struct hub_msg *edoc_result_new(const struct edoc_info *info, const char *axis, const char *messagetype,
                                const char *doc_id) {
  json_t *j = json_pack("{s:s,s:s?,s:s,s:s?}", "axis", axis, "docId", doc_id, "messagetype", messagetype,
                        "documentId", info->document_id);
  if (j && info->status_code) json_object_set_new(j, "statusCode", json_string(info->status_code));
  if (j) {
    json_t *to = json_array();
    for (size_t i = 0; i < info->n_to; i++)
      json_array_append_new(to, json_string(info->to[i]));
    json_object_set_new(j, "to", to);
  }
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  struct hub_msg *m = text ? hub_msg_new(NULL, 0, text, strlen(text)) : NULL;
  free(text);
  if (m && (hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, "application/json") != HUB_OK ||
            hub_msg_header_set_str(m, HUB_H_TYPE, "edoc.sent") != HUB_OK)) {
    hub_msg_destroy(m);
    m = NULL;
  }
  return m;
}

/* ---- the inbox ---- */

void edoc_items_free(struct edoc_item *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].id);
    free(v[i].messagetype);
    free(v[i].from);
  }
  free(v);
}

struct seen_id {
  char *id;
  int ok;
};
struct seen_digest {
  char hex[33]; /* first 16 bytes of SHA-256 */
  int ok;       /* the receipt the packet got */
  char *reason; /* why, when it was `fail` (sent again with a repeat) */
};
struct confirm {
  char *id;
  int ok;
  char *reason;
};

struct edoc_inbox {
  const struct edoc_inbox_cfg *cfg;
  const struct edoc_axis_ops *ops;
  void *axis;
  struct hub_source_ctx *ctx;
  struct hub_xmldsig_verifier *verifier;
  struct seen_id *ids; /* oldest first */
  size_t n_ids;
  struct seen_digest *digests; /* oldest first */
  size_t n_digests;
  struct confirm *pend; /* receipts not sent yet */
  size_t n_pend;
  pthread_mutex_t why_mu;
  char why[512];
};

static void set_why(struct edoc_inbox *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_why(struct edoc_inbox *in, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&in->why_mu);
  vsnprintf(in->why, sizeof in->why, fmt, ap);
  pthread_mutex_unlock(&in->why_mu);
  va_end(ap);
}

static const struct hub_node *keys_trust_ca(const struct hub_plugin_env *env) {
  return env && env->keys ? hub_node_get(hub_node_get(env->keys, "trust"), "ca") : NULL;
}

hub_err_t edoc_inbox_new(const struct edoc_inbox_cfg *cfg, const struct hub_plugin_env *env,
                         const struct edoc_axis_ops *ops, void *axis, struct hub_source_ctx *ctx,
                         struct edoc_inbox **out, char *errbuf, size_t errbuf_size) {
  struct edoc_inbox *in = calloc(1, sizeof *in);
  char **ca = NULL;
  size_t n_ca = 0;
  hub_err_t rc = HUB_ERR_NOMEM;
  *out = NULL;
  if (!in) goto out;
  pthread_mutex_init(&in->why_mu, NULL);
  in->cfg = cfg;
  in->ops = ops;
  in->axis = axis;
  in->ctx = ctx;
  const struct hub_node *kn = cfg->verify_trust.n ? NULL : keys_trust_ca(env);
  n_ca = cfg->verify_trust.n ? cfg->verify_trust.n : !kn ? 0 : kn->kind == HUB_NODE_SEQ ? kn->n : 1;
  if (n_ca && !(ca = calloc(n_ca, sizeof *ca))) goto out;
  for (size_t i = 0; i < n_ca; i++) {
    const char *p = cfg->verify_trust.n        ? cfg->verify_trust.v[i]
                    : kn->kind == HUB_NODE_SEQ ? kn->items[i]->scalar
                                               : kn->scalar;
    if (!p) {
      rc = hub_node_error(kn, errbuf, errbuf_size, "keys.trust.ca must be a file name or a list of them");
      goto out;
    }
    if (!(ca[i] = hub_plugin_env_path_new(env, p))) goto out;
  }
  if (n_ca) {
    struct hub_xmldsig_verify_opts vo = {.trust_ca = (const char *const *)ca,
                                         .n_trust_ca = n_ca,
                                         .policy = cfg->verify_policy ? "legacy-sha1" : "default",
                                         .clock_skew_s = -1,
                                         .max_bytes = (size_t)cfg->max_size};
    char e[512];
    if ((rc = hub_xmldsig_verifier_new(&vo, &in->verifier, e, sizeof e)) != HUB_OK) {
      rc = hub_node_error(hub_plugin_env_at(env, "verify_trust"), errbuf, errbuf_size, "verify_trust: %s", e);
      goto out;
    }
  }
  hub_metrics_register_counter(&received_total);
  hub_metrics_register_counter(&duplicates_total);
  hub_metrics_register_counter(&receipt_fail_total);
  rc = HUB_OK;
out:
  for (size_t i = 0; ca && i < n_ca; i++)
    free(ca[i]);
  free(ca);
  if (rc != HUB_OK) {
    if (rc == HUB_ERR_NOMEM) snprintf(errbuf, errbuf_size, "%s: out of memory", ops->name);
    edoc_inbox_destroy(in);
    in = NULL;
  }
  *out = in;
  return rc;
}

static void digests_truncate(struct edoc_inbox *in, size_t n);

static void pend_clear(struct edoc_inbox *in, size_t from) {
  for (size_t i = from; i < in->n_pend; i++) {
    free(in->pend[i].id);
    free(in->pend[i].reason);
  }
  in->n_pend = from;
}

void edoc_inbox_destroy(struct edoc_inbox *in) {
  if (!in) return;
  hub_xmldsig_verifier_destroy(in->verifier);
  for (size_t i = 0; i < in->n_ids; i++)
    free(in->ids[i].id);
  free(in->ids);
  digests_truncate(in, 0);
  free(in->digests);
  pend_clear(in, 0);
  free(in->pend);
  pthread_mutex_destroy(&in->why_mu);
  free(in);
}

static int pend_add(struct edoc_inbox *in, const char *id, int ok, const char *reason) {
  struct confirm *v = realloc(in->pend, (in->n_pend + 1) * sizeof *v);
  if (!v) return -1;
  in->pend = v;
  struct confirm *c = &v[in->n_pend];
  c->id = strdup(id);
  c->ok = ok;
  c->reason = reason ? strdup(reason) : NULL;
  if (!c->id || (reason && !c->reason)) {
    free(c->id);
    free(c->reason);
    return -1;
  }
  in->n_pend++;
  return 0;
}

static int id_add(struct edoc_inbox *in, const char *id, int ok) {
  struct seen_id *v = realloc(in->ids, (in->n_ids + 1) * sizeof *v);
  if (!v) return -1;
  in->ids = v;
  if (!(v[in->n_ids].id = strdup(id))) return -1;
  v[in->n_ids++].ok = ok;
  return 0;
}

static int digest_add(struct edoc_inbox *in, const char *hex, int ok, const char *reason) {
  struct seen_digest *v = realloc(in->digests, (in->n_digests + 1) * sizeof *v);
  if (!v) return -1;
  in->digests = v;
  memcpy(v[in->n_digests].hex, hex, 33);
  v[in->n_digests].ok = ok;
  if (!(v[in->n_digests].reason = !ok && reason ? strdup(reason) : NULL) && !ok && reason) return -1;
  in->n_digests++;
  return 0;
}

static void digests_truncate(struct edoc_inbox *in, size_t n) {
  for (size_t i = n; i < in->n_digests; i++)
    free(in->digests[i].reason);
  in->n_digests = n < in->n_digests ? n : in->n_digests;
}

static const struct seen_id *id_find(const struct edoc_inbox *in, const char *id) {
  for (size_t i = in->n_ids; i-- > 0;)
    if (!strcmp(in->ids[i].id, id)) return &in->ids[i];
  return NULL;
}

static const struct seen_digest *digest_find(const struct edoc_inbox *in, const char *hex) {
  for (size_t i = in->n_digests; i-- > 0;)
    if (!memcmp(in->digests[i].hex, hex, 32)) return &in->digests[i];
  return NULL;
}

/* Keeps the newest `window` entries of each list. */
static void windows_trim(struct edoc_inbox *in) {
  size_t w = (size_t)in->cfg->dedupe_window;
  if (in->n_ids > w) {
    size_t drop = in->n_ids - w;
    for (size_t i = 0; i < drop; i++)
      free(in->ids[i].id);
    memmove(in->ids, in->ids + drop, w * sizeof *in->ids);
    in->n_ids = w;
  }
  if (in->n_digests > w) {
    size_t drop = in->n_digests - w;
    for (size_t i = 0; i < drop; i++)
      free(in->digests[i].reason);
    memmove(in->digests, in->digests + drop, w * sizeof *in->digests);
    in->n_digests = w;
  }
}

/* {"ids": [[ID, OK], ...], "digests": [HEX, ...], "pending": [[ID, OK, REASON|null], ...]} of
 * the newest `window` entries. */
static char *cursor_new(const struct edoc_inbox *in, size_t *len) {
  size_t w = (size_t)in->cfg->dedupe_window;
  json_t *j = json_object(), *ids = json_array(), *dg = json_array(), *pd = json_array();
  char *text = NULL;
  if (!j || !ids || !dg || !pd) goto out;
  for (size_t i = in->n_ids > w ? in->n_ids - w : 0; i < in->n_ids; i++)
    json_array_append_new(ids, json_pack("[s,i]", in->ids[i].id, in->ids[i].ok));
  for (size_t i = in->n_digests > w ? in->n_digests - w : 0; i < in->n_digests; i++)
    json_array_append_new(dg, json_pack("[s,i,s?]", in->digests[i].hex, in->digests[i].ok, in->digests[i].reason));
  for (size_t i = 0; i < in->n_pend; i++)
    json_array_append_new(pd, json_pack("[s,i,s?]", in->pend[i].id, in->pend[i].ok, in->pend[i].reason));
  json_object_set(j, "ids", ids);
  json_object_set(j, "digests", dg);
  json_object_set(j, "pending", pd);
  text = json_dumps(j, JSON_COMPACT);
out:
  json_decref(ids);
  json_decref(dg);
  json_decref(pd);
  json_decref(j);
  *len = text ? strlen(text) : 0;
  return text;
}

hub_err_t edoc_inbox_start(struct edoc_inbox *in, char *errbuf, size_t errbuf_size) {
  void *cur = NULL;
  size_t len = 0;
  hub_err_t rc = hub_source_cursor_get(in->ctx, &cur, &len, errbuf, errbuf_size);
  if (rc != HUB_OK) return rc;
  /* start may run again after a failure: begin from the committed cursor each time */
  for (size_t i = 0; i < in->n_ids; i++)
    free(in->ids[i].id);
  in->n_ids = 0;
  digests_truncate(in, 0);
  pend_clear(in, 0);
  if (!cur) return HUB_OK;
  json_error_t je;
  json_t *j = json_loadb(cur, len, 0, &je);
  free(cur);
  if (!j) {
    snprintf(errbuf, errbuf_size, "%s: the committed cursor is not JSON: %s", in->ops->name, je.text);
    return HUB_ERR_CONFIG;
  }
  size_t i;
  json_t *v;
  rc = HUB_ERR_NOMEM;
  json_array_foreach(json_object_get(j, "ids"), i, v) {
    if (json_is_string(json_array_get(v, 0)) &&
        id_add(in, json_string_value(json_array_get(v, 0)), (int)json_integer_value(json_array_get(v, 1))))
      goto out;
  }
  json_array_foreach(json_object_get(j, "digests"), i, v) {
    json_t *h = json_array_get(v, 0);
    if (json_is_string(h) && json_string_length(h) == 32 &&
        digest_add(in, json_string_value(h), (int)json_integer_value(json_array_get(v, 1)),
                   json_string_value(json_array_get(v, 2))))
      goto out;
  }
  json_array_foreach(json_object_get(j, "pending"), i, v) {
    if (json_is_string(json_array_get(v, 0)) &&
        pend_add(in, json_string_value(json_array_get(v, 0)), (int)json_integer_value(json_array_get(v, 1)),
                 json_string_value(json_array_get(v, 2))))
      goto out;
  }
  rc = HUB_OK;
out:
  json_decref(j);
  if (rc == HUB_ERR_NOMEM) snprintf(errbuf, errbuf_size, "%s: out of memory reading the cursor", in->ops->name);
  return rc;
}

/* Sends the receipts waiting; those the axis took leave the list. */
static void confirm_pending(struct edoc_inbox *in) {
  size_t kept = 0;
  for (size_t i = 0; i < in->n_pend; i++) {
    struct confirm *c = &in->pend[i];
    char e[512];
    if (in->ops->confirm(in->axis, c->id, c->ok, c->reason, e, sizeof e) == HUB_OK) {
      free(c->id);
      free(c->reason);
      continue;
    }
    hub_log(HUB_LOG_WARN, in->ops->name, "receipt %s for %s not taken yet (sent again later): %s",
            c->ok ? "done" : "fail", c->id, e);
    set_why(in, "receipts not taken: %s", e);
    in->pend[kept++] = *c;
  }
  in->n_pend = kept;
}

static void digest_hex(const void *data, size_t len, char out[33]) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
  for (int i = 0; i < 16; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* One fetched packet as a record; *ok and reason say which receipt it gets. */
static struct hub_msg *record_new(struct edoc_inbox *in, const struct edoc_item *it, const unsigned char *data,
                                  size_t len, int *ok, char *reason, size_t reason_size) {
  struct edoc_info info;
  char e[1024];
  *ok = 1;
  *reason = 0;
  hub_err_t rc = edoc_inspect(data, len, (size_t)in->cfg->max_size, &info, e, sizeof e);
  if (rc != HUB_OK) {
    *ok = 0;
    snprintf(reason, reason_size, "%s: %s", hub_err2name(rc), e);
  } else if (in->verifier) {
    struct hub_xmldsig_result res;
    memset(&res, 0, sizeof res);
    hub_err_t vr = hub_xmldsig_verify(in->verifier, data, len, NULL, 0, &res);
    if (vr != HUB_OK) {
      *ok = 0;
      snprintf(reason, reason_size, "signature: %s: %s", hub_err2name(vr), res.reason);
    }
    hub_xmldsig_result_release(&res);
  }
  const char *key = rc == HUB_OK && info.document_id ? info.document_id : it->id;
  struct hub_msg *m = hub_msg_new(key, strlen(key), data, len);
  int bad = !m;
  int status = rc == HUB_OK ? info.kind == EDOC_STATUS : it->messagetype && !strcmp(it->messagetype, "status");
  if (m) {
    bad |= hub_msg_header_set_str(m, HUB_H_TYPE, status ? "edxml.status" : "edxml.document") != HUB_OK;
    bad |= hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, "application/xml") != HUB_OK;
    bad |= hub_msg_header_set_str(m, "edoc.axis-id", it->id) != HUB_OK;
    if (it->from) bad |= hub_msg_header_set_str(m, "edoc.from", it->from) != HUB_OK;
    if (rc == HUB_OK && info.status_code)
      bad |= hub_msg_header_set_str(m, "edoc.status-code", info.status_code) != HUB_OK;
    bad |= hub_msg_header_set_str(m, "edoc.receipt", *ok ? "done" : "fail") != HUB_OK;
    if (!*ok) bad |= hub_msg_header_set_str(m, "edoc.receipt-reason", reason) != HUB_OK;
  }
  if (rc == HUB_OK) edoc_info_release(&info);
  if (bad) {
    hub_msg_destroy(m);
    return NULL;
  }
  return m;
}

static int wanted(const struct edoc_inbox *in, const struct edoc_item *it) {
  if (!it->messagetype) return 1;
  return !strcmp(it->messagetype, in->cfg->messagetype == 1 ? "status" : "edoc");
}

hub_err_t edoc_inbox_poll(struct edoc_inbox *in) {
  struct edoc_item *items = NULL;
  size_t n = 0, n_msgs = 0, ids0 = in->n_ids, dg0 = in->n_digests, pend0 = in->n_pend;
  struct hub_msg **msgs = NULL;
  char e[1024], *cursor = NULL;
  hub_err_t rc;
  confirm_pending(in);
  pend0 = in->n_pend;
  if ((rc = in->ops->list(in->axis, &items, &n, e, sizeof e)) != HUB_OK) {
    hub_log(HUB_LOG_WARN, in->ops->name, "listing the packets failed (again at the next poll): %s", e);
    set_why(in, "list: %s", e);
    return rc;
  }
  if (!(msgs = calloc(n ? n : 1, sizeof *msgs))) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  int fetched = 0;
  for (size_t i = 0; i < n; i++) {
    const struct edoc_item *it = &items[i];
    if (!it->id || !wanted(in, it)) continue;
    const struct seen_id *seen = id_find(in, it->id);
    if (seen) { /* listed again: emitted already (maybe in this round); only the receipt again */
      int queued = 0;
      for (size_t k = 0; k < in->n_pend; k++)
        queued |= !strcmp(in->pend[k].id, it->id);
      if (!queued && (size_t)(seen - in->ids) < ids0) {
        atomic_fetch_add(&duplicates_total.value, 1);
        if (pend_add(in, it->id, seen->ok, seen->ok ? NULL : "refused earlier")) goto oom;
      }
      continue;
    }
    if (fetched >= in->cfg->max_per_poll) break;
    fetched++;
    unsigned char *data = NULL;
    size_t len = 0;
    enum edoc_fetch fr = in->ops->fetch(in->axis, it, &data, &len, e, sizeof e);
    if (fr == EDOC_FETCH_RETRY) {
      hub_log(HUB_LOG_WARN, in->ops->name, "fetching %s failed (again at the next poll): %s", it->id, e);
      set_why(in, "fetch %s: %s", it->id, e);
      free(data);
      continue;
    }
    if (fr == EDOC_FETCH_FAIL) { /* nothing to emit: the axis cannot give the bytes */
      hub_log(HUB_LOG_WARN, in->ops->name, "packet %s cannot be fetched; receipt fail: %s", it->id, e);
      atomic_fetch_add(&receipt_fail_total.value, 1);
      if (id_add(in, it->id, 0) || pend_add(in, it->id, 0, e)) goto oom;
      continue;
    }
    char hex[33];
    digest_hex(data, len, hex);
    const struct seen_digest *dup = digest_find(in, hex);
    if (dup) { /* the same bytes under another axis id: a sender's re-send; same receipt */
      int dok = dup->ok;
      char *dreason = dup->reason ? strdup(dup->reason) : NULL;
      hub_log(HUB_LOG_INFO, in->ops->name, "packet %s repeats one received already (same SHA-256); not emitted",
              it->id);
      atomic_fetch_add(&duplicates_total.value, 1);
      free(data);
      int bad = id_add(in, it->id, dok) || pend_add(in, it->id, dok,
                                                    dok       ? NULL
                                                    : dreason ? dreason
                                                              : "refused earlier");
      free(dreason);
      if (bad) goto oom;
      continue;
    }
    int ok = 1;
    char reason[1200];
    struct hub_msg *m = record_new(in, it, data, len, &ok, reason, sizeof reason);
    free(data);
    if (!m || id_add(in, it->id, ok) || digest_add(in, hex, ok, reason) ||
        pend_add(in, it->id, ok, ok ? NULL : reason)) {
      hub_msg_destroy(m);
      goto oom;
    }
    if (!ok) {
      hub_log(HUB_LOG_WARN, in->ops->name, "packet %s: receipt fail after commit: %s", it->id, reason);
      atomic_fetch_add(&receipt_fail_total.value, 1);
    }
    msgs[n_msgs++] = m;
  }
  if (n_msgs) {
    size_t clen = 0;
    if (!(cursor = cursor_new(in, &clen))) goto oom;
    rc = hub_source_emit(in->ctx, msgs, n_msgs, cursor, clen);
    if (rc != HUB_OK) { /* nothing of it is visible: forget this round, receipts included */
      set_why(in, "emit: %s", hub_err2str(rc));
      for (size_t i = ids0; i < in->n_ids; i++)
        free(in->ids[i].id);
      in->n_ids = ids0;
      digests_truncate(in, dg0);
      pend_clear(in, pend0);
      goto out;
    }
    atomic_fetch_add(&received_total.value, n_msgs);
    windows_trim(in);
  }
  /* Committed (or nothing to commit): now the receipts. */
  confirm_pending(in);
  if (!in->n_pend) set_why(in, "%s", "");
  rc = HUB_OK;
  goto out;
oom:
  rc = HUB_ERR_NOMEM;
  for (size_t i = ids0; i < in->n_ids; i++)
    free(in->ids[i].id);
  in->n_ids = ids0;
  digests_truncate(in, dg0);
  pend_clear(in, pend0);
out:
  for (size_t i = 0; i < n_msgs; i++)
    hub_msg_destroy(msgs[i]);
  free(msgs);
  free(cursor);
  edoc_items_free(items, n);
  return rc;
}

int edoc_inbox_health(struct edoc_inbox *in, char *why, size_t why_size) {
  pthread_mutex_lock(&in->why_mu);
  int ok = !in->why[0];
  if (!ok) snprintf(why, why_size, "%s", in->why);
  pthread_mutex_unlock(&in->why_mu);
  return ok;
}
