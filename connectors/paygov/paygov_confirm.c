/* Source `paygov-confirm`: the payment platform's confirm callback (ppConfirmTransaction,
 * vn-standards.md §3.4) on the shared HTTP server (hub/io/http_server.h, as http-listen).
 * Order of work for each POST: parse the JSON, verify MaXacThuc (hub/trust/checksum.h) before
 * anything else, then dedupe by transaction (MaThamChieu/MaGiaoDich), then commit, then answer
 * with the signed reply. A callback that fails any check is committed to `rejected_topic` (the
 * bytes as received and the reason) and answered with an error reply; it never reaches `topic`.
 * The transactions already committed are read back from `topic` at start (hub_source_scan),
 * so a callback repeated after a restart still has one effect. */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/log.h"
#include "hub/core/metrics.h"
#include "hub/core/registry.h"
#include "hub/engine/connector.h"
#include "hub/io/http_server.h"
#include "hub/io/webhook_source.h"
#include "hub/trust/checksum.h"
#include "mappings/shape/json.h"
#include "paygov_common.h"

#define H_TXN "lt.paygov.txn" /* MaThamChieu/MaGiaoDich: the dedupe key, read back at start */
#define RETRY_AFTER "2"
#define REF_MAX 128 /* MaThamChieu, MaGiaoDich: the dedupe key is made of both, never cut */
#define REF_MAX_TEXT "128"

struct cfg {
  char *listen, *path, *partner, *key_file, *rejected_topic, *agency, *account;
  int algorithm;
  int64_t max_body;
};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"listen", HUB_CFG_STR, F(listen), NULL, 1,
     "HOST:PORT to listen on; shared with http-listen connectors on the same address"},
    {"path", HUB_CFG_STR, F(path), NULL, 1, "the path the platform POSTs confirm callbacks to, e.g. /paygov/confirm"},
    {"partner", HUB_CFG_STR, F(partner), NULL, 1,
     "MaDoiTac, the partner code the platform gave this province; a callback naming another is refused"},
    {"key_file", HUB_CFG_STR, F(key_file), NULL, 1, "file with the MaXacThuc hash key (at least 8 bytes)"},
    {"algorithm", HUB_CFG_ENUM, F(algorithm), "sha256", 0,
     "MaXacThuc: sha256 (SHA-256 hex of the fields joined with | then |KEY) or hmac-sha256 (HMAC-SHA256 hex with "
     "KEY over the fields joined with |)",
     "sha256|hmac-sha256"},
    {"rejected_topic", HUB_CFG_STR, F(rejected_topic), NULL, 1,
     "topic for callbacks refused (bad MaXacThuc, malformed, other partner) and repeated ones, with the reason; "
     "never payments"},
    {"agency", HUB_CFG_STR, F(agency), NULL, 0,
     "MaDonVi written into accepted callbacks that carry none: the agency this partner code collects for"},
    {"account", HUB_CFG_STR, F(account), NULL, 0,
     "TKThuHuong written into accepted callbacks that carry none: the beneficiary account"},
    {"max_body", HUB_CFG_SIZE, F(max_body), "64KiB", 0, "largest callback body accepted (413 above it)", NULL, NULL,
     256, 1024 * 1024},
    {NULL},
};

static hub_err_t check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                       size_t errbuf_size) {
  const struct cfg *c = p;
  hub_err_t err = hub_webhook_check_address(c->listen, c->path, node, at, errbuf, errbuf_size);
  if (err != HUB_OK) return err;
  if (c->partner && (!*c->partner || strchr(c->partner, '|')))
    return hub_node_error(hub_cfg_value_at(node, at, "partner"), errbuf, errbuf_size,
                          "partner must be a non-empty code without '|'");
  return HUB_OK;
}

static const struct hub_cfg_constraint constraints[] = {
    {"`path` starts with /", "path", "{path: confirm}", "{path: /}"},
    {"`listen` is HOST:PORT with a port from 1 to 65535", "listen", "{listen: 127.0.0.1}", "{listen: '127.0.0.1:1'}"},
    {"`partner` is not empty and has no `|`", "partner", "{partner: 'A|B'}", "{partner: A}"},
    {NULL},
};

static const struct hub_cfg_map map = {"paygov-confirm", entries, .check = check, .constraints = constraints};

/* A set of strings: the transactions committed (done) or being committed (!done). */
struct txn {
  char *key;
  int done;
  struct txn *next;
};

#define BUCKETS 4096

struct state {
  struct hub_webhook wh; /* first: its functions are this source's stop, pause, resume, health */
  const struct cfg *cfg;
  struct hub_source_ctx *ctx;
  char *key;
  size_t key_len;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct txn *buckets[BUCKETS];
};

/* In /metrics, for every paygov-confirm of the process. */
static struct hub_metric_counter m_accepted = {"lienthong_paygov_callbacks_accepted_total",
                                               "confirm callbacks verified and committed (one per transaction)"};
static struct hub_metric_counter m_rejected = {"lienthong_paygov_callbacks_rejected_total",
                                               "confirm callbacks refused (bad MaXacThuc, malformed, other partner)"};
static struct hub_metric_counter m_duplicates = {"lienthong_paygov_callbacks_duplicate_total",
                                                 "confirm callbacks for a transaction already taken (no effect)"};

static unsigned hash(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h % BUCKETS;
}

static struct txn *txn_find(struct state *s, const char *key) {
  for (struct txn *t = s->buckets[hash(key)]; t; t = t->next)
    if (!strcmp(t->key, key)) return t;
  return NULL;
}

static struct txn *txn_add(struct state *s, const char *key, int done) {
  struct txn *t = calloc(1, sizeof *t);
  if (!t || !(t->key = strdup(key))) {
    free(t);
    return NULL;
  }
  unsigned h = hash(key);
  t->done = done;
  t->next = s->buckets[h];
  s->buckets[h] = t;
  return t;
}

static void txn_del(struct state *s, struct txn *gone) {
  for (struct txn **p = &s->buckets[hash(gone->key)]; *p; p = &(*p)->next)
    if (*p == gone) {
      *p = gone->next;
      free(gone->key);
      free(gone);
      return;
    }
}

static const char *str(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The reply {MaLoi, MoTaLoi, MaDoiTac, MaThamChieu, ThoiGianGD, MaXacThuc}, MaXacThuc over
 * MaLoi|MaDoiTac|MaThamChieu|ThoiGianGD and the key (README: the platform's field list for it
 * is not public). */
static void reply(struct state *s, struct hub_http_answer *a, unsigned status, const char *code, const char *text,
                  const char *ref) {
  char now[15], mac[65] = "", err[256];
  paygov_time(0, now);
  json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "MaLoi", code, "MoTaLoi", text, "MaDoiTac", s->cfg->partner,
                        "MaThamChieu", ref && !strchr(ref, '|') ? ref : "", "ThoiGianGD", now);
  if (o && hub_paygov_mac_json((enum hub_paygov_alg)s->cfg->algorithm, o, paygov_fields_reply, paygov_fields_reply_n,
                               s->key, s->key_len, mac, err, sizeof err) == HUB_OK)
    json_object_set_new(o, "MaXacThuc", json_string(mac));
  a->status = status;
  a->body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
}

static void unavailable(struct hub_http_answer *a, const char *detail) {
  a->retry_after = RETRY_AFTER;
  hub_http_answer_error(a, 503, "unavailable", "%s", detail);
}

/* Commits a refused or repeated callback to rejected_topic: the bytes as received, the reason in
 * lt.error.*. HUB_OK once committed. */
static hub_err_t record_refusal(struct state *s, const unsigned char *body, size_t len, const char *ref,
                                const char *type, const char *code, const char *reason, const char *ct) {
  struct hub_msg *m = hub_msg_new(ref, ref ? strlen(ref) : 0, body, len);
  hub_err_t rc = m ? HUB_OK : HUB_ERR_NOMEM;
  if (rc == HUB_OK) rc = hub_msg_set_topic(m, s->cfg->rejected_topic);
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_TYPE, type);
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_ERROR_STAGE, hub_source_name(s->ctx));
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_ERROR_CODE, code);
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_ERROR_REASON, reason);
  if (rc == HUB_OK && ct) rc = hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, ct);
  if (rc == HUB_OK) rc = hub_source_emit(s->ctx, &m, 1, NULL, 0);
  hub_msg_destroy(m);
  return rc;
}

/* Refuses: records it, then answers MaLoi `code` (503 when it could not be recorded, so the
 * platform sends it again and nothing is lost). */
static void refuse(struct state *s, struct hub_http_answer *a, const unsigned char *body, size_t len, const char *ref,
                   const char *ecode, const char *maloi, const char *text, const char *reason, const char *ct) {
  atomic_fetch_add(&m_rejected.value, 1);
  hub_log(HUB_LOG_WARN, "paygov-confirm", "%s: callback%s%s refused: %s", hub_source_name(s->ctx), ref ? " " : "",
          ref ? ref : "", reason);
  if (record_refusal(s, body, len, ref, "paygov.callback.rejected", ecode, reason, ct) != HUB_OK)
    unavailable(a, "the refusal could not be recorded; send the callback again");
  else
    reply(s, a, 200, maloi, text, ref);
}

/* The accepted record: the callback's fields as received (order kept), MaDoiTac, MaDonVi and
 * TKThuHuong filled in from the configuration when it carries none. */
static char *accepted_value(struct state *s, json_t *o) {
  if (!json_object_get(o, "MaDoiTac")) json_object_set_new(o, "MaDoiTac", json_string(s->cfg->partner));
  if (s->cfg->agency && !json_object_get(o, "MaDonVi")) json_object_set_new(o, "MaDonVi", json_string(s->cfg->agency));
  if (s->cfg->account && !json_object_get(o, "TKThuHuong"))
    json_object_set_new(o, "TKThuHuong", json_string(s->cfg->account));
  return json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

static void on_request(void *arg, const struct hub_http_request *r, struct hub_http_answer *a) {
  struct state *s = arg;
  size_t len = 0;
  const unsigned char *body = hub_http_request_body(r, &len);
  const char *ct = hub_http_request_header(r, "Content-Type");
  json_t *o = NULL;
  char err[600] = "", txn_key[600], *value = NULL;
  struct hub_msg *m = NULL;
  struct txn *mine = NULL;
  if (hub_webhook_paused(s)) {
    unavailable(a, "the transport cannot take writes now; send the callback again later");
    goto out;
  }
  if (lt_json_parse(body, len, "body", &o, err, sizeof err) != HUB_OK || !json_is_object(o)) {
    refuse(s, a, body, len, NULL, "json", "02", "Dữ liệu không hợp lệ", o ? "the body is not a JSON object" : err, ct);
    goto out;
  }
  const char *ref = str(o, "MaThamChieu");
  /* MaDoiTac is in the checksum but the callback may leave it out: then it is ours. */
  int has_partner = json_object_get(o, "MaDoiTac") != NULL;
  json_t *with_partner = json_deep_copy(o);
  if (with_partner && !has_partner) json_object_set_new(with_partner, "MaDoiTac", json_string(s->cfg->partner));
  const char *const *fields;
  size_t n;
  hub_paygov_preset("confirm", &fields, &n);
  hub_err_t vrc = with_partner ? hub_paygov_mac_check_json((enum hub_paygov_alg)s->cfg->algorithm, with_partner, fields,
                                                           n, s->key, s->key_len, str(o, "MaXacThuc"), err, sizeof err)
                               : HUB_ERR_NOMEM;
  json_decref(with_partner);
  if (vrc == HUB_ERR_NOMEM) {
    unavailable(a, "out of memory");
    goto out;
  }
  if (vrc != HUB_OK) { /* a wrong MaXacThuc, or fields it cannot be computed over */
    int bad_mac = vrc == HUB_ERR_AUTH;
    refuse(s, a, body, len, ref, bad_mac ? "auth" : "invalid", bad_mac ? "01" : "02",
           bad_mac ? "Sai mã xác thực" : "Dữ liệu không hợp lệ", err, ct);
    goto out;
  }
  /* Authentic; now what it says. Another partner's payment, sent here by mistake, is not ours. */
  const char *partner = str(o, "MaDoiTac");
  if (has_partner && (!partner || strcmp(partner, s->cfg->partner))) {
    refuse(s, a, body, len, ref, "auth", "03", "Sai mã đối tác", "MaDoiTac is not this hub's partner code", ct);
    goto out;
  }
  const char *gd = str(o, "MaGiaoDich");
  if (!ref || !*ref || !gd || !*gd || strlen(ref) > REF_MAX || strlen(gd) > REF_MAX) {
    refuse(s, a, body, len, ref, "invalid", "02", "Dữ liệu không hợp lệ",
           "MaThamChieu and MaGiaoDich must be non-empty strings of at most " REF_MAX_TEXT " characters", ct);
    goto out;
  }
  /* Authentic from here on. One effect per transaction: MaThamChieu/MaGiaoDich (both in the
   * checksum, neither may hold '|', so the key is unambiguous). */
  snprintf(txn_key, sizeof txn_key, "%s/%s", ref, gd); /* both bounded above: never cut */
  pthread_mutex_lock(&s->mu);
  struct txn *t;
  while ((t = txn_find(s, txn_key)) && !t->done)
    pthread_cond_wait(&s->cv, &s->mu); /* the same, in flight */
  if (t) {
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&m_duplicates.value, 1);
    if (record_refusal(s, body, len, ref, "paygov.callback.duplicate", "duplicate",
                       "this transaction was already accepted; the callback has no further effect", ct) != HUB_OK)
      unavailable(a, "the repeated callback could not be recorded; send it again");
    else
      reply(s, a, 200, "00", "Thành công", ref);
    goto out;
  }
  mine = txn_add(s, txn_key, 0);
  pthread_mutex_unlock(&s->mu);
  if (!mine || !(value = accepted_value(s, o))) {
    unavailable(a, "out of memory");
    goto out;
  }
  m = hub_msg_new(ref, strlen(ref), value, strlen(value));
  hub_err_t rc = m ? HUB_OK : HUB_ERR_NOMEM;
  char parent[65];
  hub_sha256_hex(body, len, parent); /* chain of custody to the bytes the platform sent */
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_TYPE, "paygov.confirm");
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, "application/json");
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_PARENT, parent);
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_SIG, "verified");
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, H_TXN, txn_key);
  if (rc == HUB_OK) rc = hub_source_emit(s->ctx, &m, 1, NULL, 0);
  pthread_mutex_lock(&s->mu);
  if (rc == HUB_OK)
    mine->done = 1;
  else
    txn_del(s, mine); /* not committed: the platform's next try decides */
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (rc == HUB_OK) {
    atomic_fetch_add(&m_accepted.value, 1);
    reply(s, a, 200, "00", "Thành công", ref);
  } else {
    unavailable(a, rc == HUB_ERR_STOPPED ? "the hub is stopping; nothing was written"
                                         : "the transport did not take the write; nothing was written");
  }
out:
  hub_msg_destroy(m);
  free(value);
  json_decref(o);
}

static int on_committed(void *arg, const struct hub_msg *m) {
  struct state *s = arg;
  const char *k = hub_msg_header_get_str(m, H_TXN);
  if (k && !txn_find(s, k) && !txn_add(s, k, 1)) return 1;
  return 0;
}

static void pc_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  hub_webhook_stop(s);
  hub_secret_free(s->key, s->key_len);
  for (int i = 0; i < BUCKETS; i++)
    for (struct txn *t = s->buckets[i], *next; t; t = next) {
      next = t->next;
      free(t->key);
      free(t);
    }
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

static hub_err_t pc_create(const void *cfg, const struct hub_plugin_env *env, struct hub_source_ctx *ctx, void **state,
                           char *errbuf, size_t errbuf_size) {
  struct state *s = calloc(1, sizeof *s);
  *state = s;
  if (!s) return HUB_ERR_NOMEM;
  s->cfg = cfg;
  s->ctx = ctx;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  hub_err_t rc = paygov_key_read(env, "key_file", s->cfg->key_file, &s->key, &s->key_len, errbuf, errbuf_size);
  return rc == HUB_OK ? hub_webhook_reserve(&s->wh, s->cfg->listen, s->cfg->path) : rc;
}

static hub_err_t pc_start(void *p, char *errbuf, size_t errbuf_size) {
  struct state *s = p;
  hub_metrics_register_counter(&m_accepted);
  hub_metrics_register_counter(&m_rejected);
  hub_metrics_register_counter(&m_duplicates);
  const char *rejected[] = {s->cfg->rejected_topic};
  hub_err_t err = hub_source_ensure_topics(s->ctx, rejected, 1, errbuf, errbuf_size);
  if (err != HUB_OK) return err;
  /* What was accepted before a restart, so a repeated callback still has one effect. */
  pthread_mutex_lock(&s->mu);
  err = hub_source_scan(s->ctx, hub_source_topic(s->ctx), on_committed, s, errbuf, errbuf_size);
  if (err == HUB_ERR_NOT_FOUND) err = HUB_OK; /* nothing accepted yet */
  size_t known = 0;
  for (int i = 0; i < BUCKETS; i++)
    for (struct txn *t = s->buckets[i]; t; t = t->next)
      known++;
  pthread_mutex_unlock(&s->mu);
  if (err != HUB_OK) return err;
  hub_log(HUB_LOG_INFO, "paygov-confirm", "%s: %zu transaction(s) already accepted", hub_source_name(s->ctx), known);
  struct hub_http_route_cfg rc = {
      .owner = hub_source_name(s->ctx),
      .listen = s->cfg->listen,
      .path = s->cfg->path,
      .max_body = (size_t)s->cfg->max_body,
      .on_request = on_request,
      .arg = s,
  };
  err = hub_webhook_start(&s->wh, &rc, errbuf, errbuf_size);
  return err;
}

static const struct hub_source_ops ops = {
    .info = {.name = "paygov-confirm",
             .summary = "payment platform confirm callback: MaXacThuc checked first, one effect per transaction, "
                        "signed reply",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = pc_create,
    .start = pc_start,
    .pause = hub_webhook_pause,
    .resume = hub_webhook_resume,
    .stop = hub_webhook_stop,
    .health = hub_webhook_health,
    .destroy = pc_destroy,
};
HUB_SOURCE_PLUGIN(hub_plugin_source_paygov_confirm, ops);
