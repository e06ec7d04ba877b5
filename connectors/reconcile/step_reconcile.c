/* Step `reconcile`: on a route whose input carries both payment events (`payment.confirmed`)
 * and bank statement records (`bank.statement.line`, `bank.statement`), decides the outcome of
 * each (recon_match.h) and writes it as a `recon.outcome` record in the same transaction as the
 * input's offset. Each input also gives a `recon.event` record saying what was done with it.
 *
 * State lives in the transport, not in the process: the matcher is a pure function of the input
 * in topic order, so at the first record of a partition, and whenever a partition comes back at
 * an offset already seen (an aborted transaction, a retry), the step feeds that partition's
 * committed records before it (hub_route_scan) into a fresh matcher without emitting. After a
 * SIGKILL the outcomes committed stand, none is emitted twice, and nothing pending is forgotten. */
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/bank-statement/bank_layout.h"
#include "hub/core/log.h"
#include "hub/core/metrics.h"
#include "hub/core/registry.h"
#include "hub/engine/route.h"
#include "recon_match.h"

struct cfg {
  int64_t window_ms, remember_ms;
  char *platform_type;
  struct hub_str_list platform_key;
  char *platform_amount, *platform_time, *platform_agency, *platform_account, *platform_ref;
  char *bank_type, *statement_type;
  struct hub_str_list bank_key;
  char *bank_amount, *bank_time, *bank_agency, *bank_account;
  char *agency, *account;
  struct hub_str_list ignore_types;
};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"window", HUB_CFG_DURATION, F(window_ms), "30m", 0,
     "a payment and a bank line match when their times differ by at most this; an item waits this long past "
     "the other side's latest time before it is missing",
     NULL, NULL, 1000, 7 * 86400000LL},
    {"remember", HUB_CFG_DURATION, F(remember_ms), "6h", 0,
     "a matched key is remembered this long past both sides' latest times, so a payment or line seen again is "
     "a duplicate (at least the window; memory grows with it)",
     NULL, NULL, 0, 30 * 86400000LL},
    {"platform_type", HUB_CFG_STR, F(platform_type), "payment.confirmed", 0,
     "JSON `event` (else lt.type) of a payment the platform confirmed"},
    {"platform_key", HUB_CFG_STR_LIST, F(platform_key), "transactionId", 0,
     "payment fields forming the match key, in the order of bank_key"},
    {"platform_amount", HUB_CFG_STR, F(platform_amount), "amount", 0, "payment field: amount in VND (integer)"},
    {"platform_time", HUB_CFG_STR, F(platform_time), "paidAt", 0, "payment field: when it was paid (RFC 3339)"},
    {"platform_agency", HUB_CFG_STR, F(platform_agency), "agency", 0,
     "payment field: the agency (absent: the `agency` option)"},
    {"platform_account", HUB_CFG_STR, F(platform_account), "account", 0,
     "payment field: the beneficiary account (absent: the `account` option)"},
    {"platform_ref", HUB_CFG_STR, F(platform_ref), "reference", 0,
     "payment field shown in the report (the partner reference)"},
    {"bank_type", HUB_CFG_STR, F(bank_type), "bank.statement.line", 0, "lt.type of a bank statement line"},
    {"statement_type", HUB_CFG_STR, F(statement_type), "bank.statement", 0,
     "lt.type of a statement's summary: its covers_until raises the bank side's time for its agency"},
    {"bank_key", HUB_CFG_STR_LIST, F(bank_key), "transaction_code", 0,
     "statement line fields forming the match key, in the order of platform_key"},
    {"bank_amount", HUB_CFG_STR, F(bank_amount), "amount", 0, "statement line field: amount in VND (integer)"},
    {"bank_time", HUB_CFG_STR, F(bank_time), "at", 0, "statement line field: its time (RFC 3339)"},
    {"bank_agency", HUB_CFG_STR, F(bank_agency), "agency", 0, "statement line field: the agency"},
    {"bank_account", HUB_CFG_STR, F(bank_account), "account", 0, "statement line field: the account"},
    {"agency", HUB_CFG_STR, F(agency), "-", 0, "agency of an item that does not name one"},
    {"account", HUB_CFG_STR, F(account), "-", 0, "account of an item that does not name one"},
    {"ignore_types", HUB_CFG_STR_LIST, F(ignore_types), "payment.failed", 0,
     "record types passed over (a `recon.event` saying so, no outcome)"},
    {NULL},
};

static hub_err_t check(const void *p, const struct hub_node *node, const struct hub_node *at, char *errbuf, size_t n) {
  const struct cfg *c = p;
  if (c->platform_key.n != c->bank_key.n)
    return hub_node_error(hub_cfg_value_at(node, at, "bank_key"), errbuf, n,
                          "platform_key and bank_key must name as many fields (%zu and %zu)", c->platform_key.n,
                          c->bank_key.n);
  return HUB_OK;
}
static const struct hub_cfg_constraint constraints[] = {
    {"platform_key and bank_key name as many fields", "bank_key", "{platform_key: [a, b], bank_key: c}",
     "{platform_key: [a, b], bank_key: [c, d]}"},
    {NULL},
};
static const struct hub_cfg_map map = {"reconcile", entries, .check = check, .constraints = constraints,
                                       .usage = "`- reconcile: {window: 30m}`"};

static struct hub_metric_counter outcome_total[RECON__COUNT] = {
    {"lienthong_recon_matched_total", "payments matched by a bank line of the same amount", 0, 0, NULL},
    {"lienthong_recon_missing_in_bank_total", "payments no bank line matched within the window", 0, 0, NULL},
    {"lienthong_recon_missing_in_platform_total", "bank lines no confirmed payment matched within the window", 0, 0,
     NULL},
    {"lienthong_recon_amount_mismatch_total", "payment and bank line of one key with different amounts", 0, 0, NULL},
    {"lienthong_recon_duplicate_total", "a payment or bank line whose key was already seen on its side", 0, 0, NULL},
};
static struct hub_metric_counter restores_total = {
    "lienthong_recon_restores_total", "times a partition's matching state was rebuilt from its committed input", 0, 0,
    NULL};
static struct hub_metric_counter replayed_total = {
    "lienthong_recon_replayed_total", "committed input records fed again to rebuild matching state", 0, 0, NULL};

/* Items waiting for their match, over every reconcile step of the process (a gauge: one that
 * only grows says a feed has stopped). */
static atomic_llong pending_now;

static char *render_pending(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  fprintf(f,
          "# HELP lienthong_recon_pending Payments and bank lines waiting for their match (reconcile).\n"
          "# TYPE lienthong_recon_pending gauge\nlienthong_recon_pending %lld\n",
          (long long)atomic_load(&pending_now));
  if (fclose(f) != 0) {
    free(text);
    return NULL;
  }
  return text;
}

static struct hub_metric_family pending_family = {render_pending};

struct part {
  struct recon *m;
  int64_t last; /* offset of the last record processed; -1 none */
  int restored;
};

struct state {
  const struct cfg *cfg;
  const char *route;
  struct part *parts;
  size_t n_parts;
  long long pending_shown; /* this step's share of pending_now */
  /* while processing one record */
  struct hub_step_outcome *out;
  hub_err_t err;
  int replaying;
  /* while restoring */
  int32_t r_part;
  int64_t r_below;
  size_t r_count;
};

/* A field by name, dots descending into objects. */
static json_t *get(json_t *o, const char *path) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  char *save = NULL;
  for (char *t = strtok_r(buf, ".", &save); t && o; t = strtok_r(NULL, ".", &save))
    o = json_object_get(o, t);
  return o;
}

static int text_of(json_t *v, char *out, size_t n) {
  if (json_is_string(v)) return snprintf(out, n, "%s", json_string_value(v)) < (int)n && *out ? 0 : -1;
  if (json_is_integer(v)) return snprintf(out, n, "%lld", (long long)json_integer_value(v)), 0;
  return -1;
}

/* A payment event says what it is in `event` (payment.confirmed, payment.failed) whatever header
 * the mapping left on the record; statement records say it in lt.type. */
static const char *type_of(const struct hub_msg *m, json_t *v) {
  const char *e = json_string_value(json_object_get(v, "event"));
  return e ? e : hub_msg_header_get_str(m, HUB_H_TYPE);
}

static void day_of(int64_t t, char out[11]) {
  char full[32];
  bank_time_format(t, 7 * 60, full); /* the report's day is Vietnam's */
  memcpy(out, full, 10);
  out[10] = 0;
}

static json_t *side_json(const struct recon_item *it) {
  if (!it) return json_null();
  char at[32];
  bank_time_format(it->t, 7 * 60, at);
  json_error_t je;
  json_t *ref = it->ref ? json_loads(it->ref, 0, &je) : NULL;
  return json_pack("{s:I, s:s, s:o}", "amount", (json_int_t)it->amount, "at", at, "ref", ref ? ref : json_null());
}

/* The matcher's outcomes become `recon.outcome` extras (not while replaying). */
static void on_outcome(void *p, enum recon_outcome o, const struct recon_item *pl, const struct recon_item *bk) {
  struct state *s = p;
  if (s->replaying || s->err != HUB_OK) return;
  const struct recon_item *any = pl ? pl : bk;
  char day[11], detail[300] = "";
  day_of(any->t, day);
  if (o == RECON_AMOUNT_MISMATCH)
    snprintf(detail, sizeof detail, "bank amount %lld, platform amount %lld (difference %lld)", (long long)bk->amount,
             (long long)pl->amount, (long long)(bk->amount - pl->amount));
  else if (o == RECON_DUPLICATE)
    snprintf(detail, sizeof detail, "%s key seen again", pl ? "platform" : "bank");
  else if (o == RECON_MISSING_IN_BANK)
    snprintf(detail, sizeof detail, "no bank line within the window");
  else if (o == RECON_MISSING_IN_PLATFORM)
    snprintf(detail, sizeof detail, "no confirmed payment within the window");
  json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s}", "outcome", recon_outcome_names[o], "day", day,
                        "agency", any->agency, "account", any->account, "key", any->key, "platform", side_json(pl),
                        "bank", side_json(bk), "detail", detail);
  char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
  json_decref(v);
  struct hub_msg *m = text ? hub_msg_new(any->key, strlen(any->key), text, strlen(text)) : NULL;
  free(text);
  hub_err_t rc = m ? HUB_OK : HUB_ERR_NOMEM;
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_TYPE, "recon.outcome");
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, "application/json");
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, "lt.recon.outcome", recon_outcome_names[o]);
  if (rc == HUB_OK) {
    rc = hub_step_outcome_add_extra(s->out, m);
  } else {
    hub_msg_destroy(m);
  }
  if (rc == HUB_OK) atomic_fetch_add(&outcome_total[o].value, 1);
  s->err = rc;
}

/* Reads one item of a side from v; NULL with why when a field is missing or malformed. */
static struct recon_item *item_new(const struct state *s, int side, json_t *v, const struct hub_msg *m, char *why,
                                   size_t n) {
  const struct cfg *c = s->cfg;
  const struct hub_str_list *keys = side ? &c->bank_key : &c->platform_key;
  const char *f_amount = side ? c->bank_amount : c->platform_amount, *f_time = side ? c->bank_time : c->platform_time,
             *f_agency = side ? c->bank_agency : c->platform_agency,
             *f_account = side ? c->bank_account : c->platform_account;
  const char *what = side ? "bank line" : "payment";
  char key[512] = "", part[256], agency[128], account[128];
  size_t kl = 0;
  for (size_t i = 0; i < keys->n; i++) {
    if (text_of(get(v, keys->v[i]), part, sizeof part) != 0) {
      snprintf(why, n, "%s has no usable key field '%s'", what, keys->v[i]);
      return NULL;
    }
    kl += (size_t)snprintf(key + kl, sizeof key - kl, "%s%s", i ? "|" : "", part);
    if (kl >= sizeof key) {
      snprintf(why, n, "%s key too long", what);
      return NULL;
    }
  }
  json_t *a = get(v, f_amount);
  long long amount;
  char *end;
  if (json_is_integer(a))
    amount = json_integer_value(a);
  else if (json_is_string(a) && *json_string_value(a) && (amount = strtoll(json_string_value(a), &end, 10), !*end))
    ;
  else {
    snprintf(why, n, "%s %s: '%s' is not an integer amount in VND", what, key, f_amount);
    return NULL;
  }
  int64_t t = bank_time_parse(json_string_value(get(v, f_time)));
  if (t < 0) {
    snprintf(why, n, "%s %s: '%s' is not an RFC 3339 time", what, key, f_time);
    return NULL;
  }
  if (text_of(get(v, f_agency), agency, sizeof agency) != 0) snprintf(agency, sizeof agency, "%s", c->agency);
  if (text_of(get(v, f_account), account, sizeof account) != 0) snprintf(account, sizeof account, "%s", c->account);
  json_t *ref;
  if (side)
    ref = json_pack("{s:O?, s:O?}", "file", json_object_get(v, "file"), "line", json_object_get(v, "line"));
  else
    ref = json_pack("{s:O?, s:s}", "reference", c->platform_ref ? get(v, c->platform_ref) : NULL, "record", "");
  if (ref && !side) { /* where the payment event sits, for a clerk to find it */
    char rec[300];
    snprintf(rec, sizeof rec, "%s/%d/%lld", m->topic ? m->topic : "", (int)m->partition, (long long)m->offset);
    json_object_set_new(ref, "record", json_string(rec));
  }
  struct recon_item *it = calloc(1, sizeof *it);
  if (!it) {
    json_decref(ref);
    return NULL;
  }
  it->side = side;
  it->amount = amount;
  it->t = t;
  it->key = strdup(key);
  it->agency = strdup(agency);
  it->account = strdup(account);
  it->ref = ref ? json_dumps(ref, JSON_COMPACT) : NULL;
  json_decref(ref);
  if (!it->key || !it->agency || !it->account) {
    recon_item_destroy(it);
    snprintf(why, n, "out of memory");
    return NULL;
  }
  return it;
}

static int in_list(const struct hub_str_list *l, const char *v) {
  for (size_t i = 0; v && i < l->n; i++)
    if (!strcmp(l->v[i], v)) return 1;
  return 0;
}

/* Applies one record to partition p's matcher. Returns what the record was ("payment", ...) in
 * *what, or REJECT with why for a record that cannot be reconciled. */
static enum hub_step_result apply(struct state *s, struct part *p, const struct hub_msg *m, const char **what,
                                  char *key, size_t key_n, char *why, size_t why_n) {
  const struct cfg *c = s->cfg;
  json_error_t je;
  json_t *v = json_loadb((const char *)m->value, m->value_len, 0, &je);
  enum hub_step_result res = HUB_STEP_OK;
  *key = 0;
  if (!json_is_object(v)) {
    snprintf(why, why_n, "not a JSON object: %s", v ? "another JSON value" : je.text);
    res = HUB_STEP_REJECT;
    goto out;
  }
  const char *type = type_of(m, v);
  if (type && !strcmp(type, c->statement_type)) {
    int64_t until = bank_time_parse(json_string_value(json_object_get(v, "covers_until")));
    *what = "statement";
    const char *agency = json_string_value(get(v, c->bank_agency));
    if (until >= 0) /* its lines without an agency were given the default one: so is it */
      recon_advance(p->m, agency ? agency : c->agency, json_string_value(get(v, c->bank_account)), RECON_BANK, until,
                    on_outcome, s);
    goto out;
  }
  if (in_list(&c->ignore_types, type)) {
    *what = "ignored";
    goto out;
  }
  int side = type && !strcmp(type, c->platform_type) ? RECON_PLATFORM
             : type && !strcmp(type, c->bank_type)   ? RECON_BANK
                                                     : -1;
  if (side < 0) {
    snprintf(why, why_n, "record type '%s' is neither %s nor %s nor %s", type ? type : "(none)", c->platform_type,
             c->bank_type, c->statement_type);
    res = HUB_STEP_REJECT;
    goto out;
  }
  struct recon_item *it = item_new(s, side, v, m, why, why_n);
  if (!it) {
    res = HUB_STEP_REJECT;
    goto out;
  }
  *what = side ? "bank-line" : "payment";
  snprintf(key, key_n, "%s", it->key);
  if (recon_feed(p->m, it, on_outcome, s) != 0) {
    snprintf(why, why_n, "out of memory");
    res = HUB_STEP_RETRY;
  }
out:
  json_decref(v);
  return res;
}

static int replay_cb(void *ctx, const struct hub_msg *m) {
  struct state *s = ctx;
  if (m->partition != s->r_part || m->offset >= s->r_below) return 0;
  const char *what;
  char key[512], why[512];
  apply(s, &s->parts[s->r_part], m, &what, key, sizeof key, why, sizeof why);
  s->r_count++;
  return 0;
}

/* Rebuilds partition p's matcher from its committed records before `below`. */
static hub_err_t restore(struct state *s, int32_t p, int64_t below, char *errbuf, size_t n) {
  struct part *pt = &s->parts[p];
  recon_destroy(pt->m);
  if (!(pt->m = recon_new(s->cfg->window_ms / 1000, s->cfg->remember_ms / 1000))) return HUB_ERR_NOMEM;
  s->replaying = 1;
  s->r_part = p;
  s->r_below = below;
  s->r_count = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  hub_err_t rc = hub_route_scan(NULL, replay_cb, s, errbuf, n);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  s->replaying = 0;
  if (rc == HUB_ERR_UNSUPPORTED) rc = HUB_OK; /* no route (lienthong test): state in memory only */
  if (rc != HUB_OK) {
    recon_destroy(pt->m);
    pt->m = NULL;
    return rc;
  }
  atomic_fetch_add(&restores_total.value, 1);
  atomic_fetch_add(&replayed_total.value, s->r_count);
  hub_log(HUB_LOG_INFO, "reconcile",
          "%s: partition %d rebuilt from %zu committed record(s) before offset %lld in %.3f s; %zu pending", s->route,
          (int)p, s->r_count, (long long)below,
          (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, recon_pending(pt->m));
  pt->restored = 1;
  return HUB_OK;
}

static enum hub_step_result rc_process(void *p, struct hub_msg *msg, struct hub_step_outcome *out) {
  struct state *s = p;
  int32_t part = msg->partition >= 0 ? msg->partition : 0;
  if ((size_t)part >= s->n_parts) {
    struct part *np = realloc(s->parts, ((size_t)part + 1) * sizeof *np);
    if (!np) return hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
    for (size_t i = s->n_parts; i <= (size_t)part; i++)
      np[i] = (struct part){NULL, -1, 0};
    s->parts = np;
    s->n_parts = (size_t)part + 1;
  }
  struct part *pt = &s->parts[part];
  if (part > 0 && !pt->m && pt->last < 0) /* once per partition: the matching assumes one order */
    hub_log(HUB_LOG_ERROR, "reconcile",
            "%s: a record from partition %d of %s: the input should have one partition; payments and lines in "
            "different partitions are not matched with each other",
            s->route, (int)part, msg->topic ? msg->topic : "the input");
  if (!pt->m || (msg->offset >= 0 && msg->offset <= pt->last)) { /* first sight, or rewound */
    char errbuf[600];
    hub_err_t rc = restore(s, part, msg->offset >= 0 ? msg->offset : 0, errbuf, sizeof errbuf);
    if (rc != HUB_OK)
      return hub_step_fail(out, HUB_STEP_RETRY, rc, "rebuilding the matching state of partition %d: %s", (int)part,
                           errbuf);
  }
  const char *what = "?";
  char key[512], why[700];
  s->out = out;
  s->err = HUB_OK;
  enum hub_step_result res = apply(s, pt, msg, &what, key, sizeof key, why, sizeof why);
  s->out = NULL;
  if (res == HUB_STEP_OK && s->err != HUB_OK) res = HUB_STEP_RETRY;
  if (res != HUB_STEP_OK) {
    if (res == HUB_STEP_RETRY || s->err != HUB_OK) {
      pt->last = -1; /* some outcomes of this record may be lost with the retry: rebuild before it */
      recon_destroy(pt->m);
      pt->m = NULL;
      return hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory reconciling");
    }
    pt->last = msg->offset;
    return hub_step_fail(out, HUB_STEP_REJECT, HUB_ERR_INVALID_ARG, "cannot reconcile: %s", why);
  }
  pt->last = msg->offset;
  long long pending = 0;
  for (size_t i = 0; i < s->n_parts; i++)
    pending += s->parts[i].m ? (long long)recon_pending(s->parts[i].m) : 0;
  atomic_fetch_add(&pending_now, pending - s->pending_shown);
  s->pending_shown = pending;
  json_t *ev = json_pack("{s:s, s:s, s:I}", "received", what, "key", key, "pending", (json_int_t)recon_pending(pt->m));
  char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
  json_decref(ev);
  if (!text) return hub_step_fail(out, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
  hub_err_t rc = hub_msg_set_value_take(msg, (unsigned char *)text, strlen(text));
  if (rc == HUB_OK) rc = hub_msg_header_set_str(msg, HUB_H_TYPE, "recon.event");
  if (rc == HUB_OK) rc = hub_msg_header_set_str(msg, HUB_H_CONTENT_TYPE, "application/json");
  if (rc != HUB_OK) return hub_step_fail(out, HUB_STEP_RETRY, rc, "out of memory");
  return HUB_STEP_OK;
}

static hub_err_t rc_create(const void *cfg, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  (void)errbuf, (void)errbuf_size;
  struct state *s = calloc(1, sizeof *s);
  if (!s) return HUB_ERR_NOMEM;
  s->cfg = cfg;
  s->route = env->owner ? env->owner : "reconcile";
  for (int i = 0; i < RECON__COUNT; i++)
    hub_metrics_register_counter(&outcome_total[i]);
  hub_metrics_register_counter(&restores_total);
  hub_metrics_register_counter(&replayed_total);
  hub_metrics_register_family(&pending_family);
  *state = s;
  return HUB_OK;
}

static void rc_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  atomic_fetch_sub(&pending_now, s->pending_shown);
  for (size_t i = 0; i < s->n_parts; i++)
    recon_destroy(s->parts[i].m);
  free(s->parts);
  free(s);
}

static const struct hub_step_ops ops = {
    .info = {.name = "reconcile",
             .summary = "payments confirmed by the platform against bank statement lines: recon.outcome records",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = rc_create,
    .process = rc_process,
    .destroy = rc_destroy,
};
HUB_STEP_PLUGIN(lt_plugin_step_reconcile, ops);
