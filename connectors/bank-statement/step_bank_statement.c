/* Step `bank-statement`: one statement file (a record from `file-in`) becomes one record per
 * detail line plus a closing summary record, all in the route's one transaction; a file whose
 * footer disagrees, or with a truncated or malformed line, is refused whole (REJECT: the file's
 * record goes to the DLQ with "FILE:LINE: why" and no line of it is published). The layout is a
 * YAML file (bank_layout.h), so a new bank is configuration. */
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bank_layout.h"
#include "hub/core/metrics.h"
#include "hub/core/registry.h"

struct cfg {
  char *layout;
  char *agency;
  char *account;
  char *key;
};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"layout", HUB_CFG_STR, F(layout), NULL, 1,
     "the statement layout (YAML, e.g. mappings/bank/vnpay-fixed.yaml; relative: to the config's folder)"},
    {"agency", HUB_CFG_STR, F(agency), NULL, 0,
     "agency code written into each line as `agency` (the statements of this folder belong to it)"},
    {"account", HUB_CFG_STR, F(account), NULL, 0,
     "account written into each line as `account` when the layout has no such field"},
    {"key", HUB_CFG_STR, F(key), NULL, 0, "detail field used as each line record's key (default: FILE:LINE)"},
    {NULL},
};
static const struct hub_cfg_map map = {"bank-statement", entries, .scalar_key = "layout",
                                       .usage = "`- bank-statement: {layout: mappings/bank/vnpay-fixed.yaml, agency: "
                                                "000.00.00.H01}`"};

static struct hub_metric_counter files_total = {"lienthong_bank_statement_files_total",
                                                "statement files read whole and split into line records", 0, 0, NULL};
static struct hub_metric_counter lines_total = {"lienthong_bank_statement_lines_total",
                                                "statement detail lines published", 0, 0, NULL};
static struct hub_metric_counter refused_total = {
    "lienthong_bank_statement_refused_total",
    "statement files refused whole (wrong footer, truncated or malformed line): to the DLQ", 0, 0, NULL};

struct state {
  const struct cfg *cfg;
  struct bank_layout *layout;
};

static hub_err_t bs_create(const void *cfg, const struct hub_plugin_env *env, void **state, char *errbuf,
                           size_t errbuf_size) {
  const struct cfg *c = cfg;
  struct state *s = calloc(1, sizeof *s);
  char *path = s ? hub_plugin_env_path_new(env, c->layout) : NULL;
  hub_err_t rc = path ? bank_layout_load(path, &s->layout, errbuf, errbuf_size) : HUB_ERR_NOMEM;
  free(path);
  if (rc != HUB_OK) {
    free(s);
    return rc;
  }
  s->cfg = c;
  hub_metrics_register_counter(&files_total);
  hub_metrics_register_counter(&lines_total);
  hub_metrics_register_counter(&refused_total);
  *state = s;
  return HUB_OK;
}

struct collect {
  const struct state *s;
  json_t **v;
  size_t n, cap;
};

static int on_detail(void *p, json_t *d) {
  struct collect *c = p;
  const struct cfg *cfg = c->s->cfg;
  if ((cfg->agency && json_object_set_new(d, "agency", json_string(cfg->agency)) != 0) ||
      (cfg->account && !json_object_get(d, "account") &&
       json_object_set_new(d, "account", json_string(cfg->account)) != 0)) {
    json_decref(d);
    return -1;
  }
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 256;
    json_t **v = realloc(c->v, cap * sizeof *v);
    if (!v) {
      json_decref(d);
      return -1;
    }
    c->v = v;
    c->cap = cap;
  }
  c->v[c->n++] = d;
  return 0;
}

/* Fills m with one output: value = JSON, key, type, the file's name. */
static hub_err_t fill(struct hub_msg *m, json_t *v, const char *key, const char *type, const char *file) {
  char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
  if (!text) return HUB_ERR_NOMEM;
  hub_err_t rc = hub_msg_set_value_take(m, (unsigned char *)text, strlen(text));
  if (rc == HUB_OK) rc = hub_msg_set_key(m, key, strlen(key));
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_TYPE, type);
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, "application/json");
  if (rc == HUB_OK) rc = hub_msg_header_set_str(m, "lt.file.name", file);
  return rc;
}

static void line_key(const struct cfg *cfg, json_t *d, const char *file, char *out, size_t n) {
  json_t *k = cfg->key ? json_object_get(d, cfg->key) : NULL;
  if (json_is_string(k))
    snprintf(out, n, "%s", json_string_value(k));
  else if (json_is_integer(k))
    snprintf(out, n, "%lld", (long long)json_integer_value(k));
  else
    snprintf(out, n, "%s:%lld", file, (long long)json_integer_value(json_object_get(d, "line")));
}

static enum hub_step_result bs_process(void *p, struct hub_msg *msg, struct hub_step_outcome *out) {
  struct state *s = p;
  const char *file = hub_msg_header_get_str(msg, "lt.file.name");
  char fname[300], errbuf[900];
  if (!file)
    snprintf(fname, sizeof fname, "%s/%d/%lld", msg->topic ? msg->topic : "record", (int)msg->partition,
             (long long)msg->offset);
  else
    snprintf(fname, sizeof fname, "%s", file);
  struct collect c = {s, NULL, 0, 0};
  json_t *summary = NULL;
  enum hub_step_result res = HUB_STEP_OK;
  hub_err_t rc = bank_parse_buffer(s->layout, fname, (const char *)msg->value, msg->value_len, on_detail, &c, &summary,
                                   errbuf, sizeof errbuf);
  if (rc == HUB_ERR_INVALID_ARG) {
    atomic_fetch_add(&refused_total.value, 1);
    res = hub_step_fail(out, HUB_STEP_REJECT, rc, "statement refused whole, no line published: %s", errbuf);
    goto out;
  }
  if (rc != HUB_OK) {
    res = hub_step_fail(out, HUB_STEP_RETRY, rc, "reading statement %s: %s", fname, hub_err2str(rc));
    goto out;
  }
  if (s->cfg->agency) json_object_set_new(summary, "agency", json_string(s->cfg->agency));
  if (s->cfg->account) json_object_set_new(summary, "account", json_string(s->cfg->account));
  /* The lines in file order, the summary last: a reader that sees the summary has every line. The
   * processed record becomes the first line (or the summary of an empty statement). */
  char key[300];
  for (size_t i = 0; rc == HUB_OK && i <= c.n; i++) {
    int last = i == c.n;
    json_t *v = last ? summary : c.v[i];
    struct hub_msg *m = i == 0 ? msg : hub_msg_new(NULL, 0, NULL, 0);
    if (!m) {
      rc = HUB_ERR_NOMEM;
      break;
    }
    if (last)
      snprintf(key, sizeof key, "%s", fname);
    else
      line_key(s->cfg, v, fname, key, sizeof key);
    rc = fill(m, v, key, last ? "bank.statement" : "bank.statement.line", fname);
    if (i > 0 && rc == HUB_OK)
      rc = hub_step_outcome_add_extra(out, m);
    else if (i > 0)
      hub_msg_destroy(m);
  }
  if (rc != HUB_OK) {
    res = hub_step_fail(out, HUB_STEP_RETRY, rc, "out of memory splitting statement %s", fname);
    goto out;
  }
  atomic_fetch_add(&files_total.value, 1);
  atomic_fetch_add(&lines_total.value, c.n);
out:
  for (size_t i = 0; i < c.n; i++)
    json_decref(c.v[i]);
  free(c.v);
  json_decref(summary);
  return res;
}

static void bs_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  bank_layout_destroy(s->layout);
  free(s);
}

static const struct hub_step_ops ops = {
    .info = {.name = "bank-statement",
             .summary = "a bank statement file -> one record per line and a summary, or refused whole",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = bs_create,
    .process = bs_process,
    .destroy = bs_destroy,
};
HUB_STEP_PLUGIN(lt_plugin_step_bank_statement, ops);
