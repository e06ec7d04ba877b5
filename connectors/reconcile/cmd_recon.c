/* `lienthong recon report CONFIG ROUTE [--day YYYY-MM-DD] [--out DIR]`: the daily reconciliation
 * report per agency and account, from the committed `recon.outcome` records of the route's output
 * topic: JSON (stdout, or a file per agency and account), CSV and an HTML page for a clerk. The
 * outcomes are exactly once in the topic, so the report neither misses nor double-counts. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hub/core/cmd.h"
#include "hub/core/config.h"
#include "hub/core/registry.h"
#include "hub/transport/transport.h"
#include "recon_match.h"

static const struct hub_cmd cmd;

struct report {
  char *agency, *account, *day;
  json_int_t counts[RECON__COUNT];
  json_int_t platform_total, bank_total;
  json_t *rows; /* every outcome, in topic order */
};

struct ctx {
  const char *day; /* NULL: every day */
  struct report *v;
  size_t n, cap;
  size_t seen;
};

static int outcome_index(const char *name) {
  for (int i = 0; i < RECON__COUNT; i++)
    if (name && !strcmp(recon_outcome_names[i], name)) return i;
  return -1;
}

static struct report *report_for(struct ctx *c, const char *agency, const char *account, const char *day) {
  for (size_t i = 0; i < c->n; i++)
    if (!strcmp(c->v[i].agency, agency) && !strcmp(c->v[i].account, account) && !strcmp(c->v[i].day, day))
      return &c->v[i];
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    struct report *v = realloc(c->v, cap * sizeof *v);
    if (!v) return NULL;
    c->v = v;
    c->cap = cap;
  }
  struct report *r = &c->v[c->n];
  memset(r, 0, sizeof *r);
  r->agency = strdup(agency);
  r->account = strdup(account);
  r->day = strdup(day);
  r->rows = json_array();
  if (!r->agency || !r->account || !r->day || !r->rows) {
    free(r->agency);
    free(r->account);
    free(r->day);
    json_decref(r->rows);
    return NULL;
  }
  c->n++;
  return r;
}

static int on_record(void *p, const struct hub_msg *m) {
  struct ctx *c = p;
  const char *type = hub_msg_header_get_str(m, HUB_H_TYPE);
  if (!type || strcmp(type, "recon.outcome")) return 0;
  json_error_t je;
  json_t *v = json_loadb((const char *)m->value, m->value_len, 0, &je);
  const char *day = json_string_value(json_object_get(v, "day")),
             *agency = json_string_value(json_object_get(v, "agency")),
             *account = json_string_value(json_object_get(v, "account"));
  int o = outcome_index(json_string_value(json_object_get(v, "outcome")));
  if (!day || !agency || !account || o < 0 || (c->day && strcmp(c->day, day))) {
    json_decref(v);
    return 0;
  }
  struct report *r = report_for(c, agency, account, day);
  if (!r) {
    json_decref(v);
    return 1;
  }
  c->seen++;
  r->counts[o]++;
  r->platform_total += json_integer_value(json_object_get(json_object_get(v, "platform"), "amount"));
  r->bank_total += json_integer_value(json_object_get(json_object_get(v, "bank"), "amount"));
  json_object_del(v, "day");
  json_object_del(v, "agency");
  json_object_del(v, "account");
  json_array_append_new(r->rows, v);
  return 0;
}

/* The report as JSON: counts, totals and the anomalies (every outcome but matched). */
static json_t *report_json(const struct report *r) {
  json_t *counts = json_object(), *anomalies = json_array(), *row;
  size_t i;
  for (int o = 0; o < RECON__COUNT; o++)
    json_object_set_new(counts, recon_outcome_names[o], json_integer(r->counts[o]));
  json_array_foreach(r->rows, i, row) {
    if (strcmp(json_string_value(json_object_get(row, "outcome")), "matched")) json_array_append(anomalies, row);
  }
  return json_pack("{s:s, s:s, s:s, s:o, s:{s:I, s:I}, s:o}", "day", r->day, "agency", r->agency, "account", r->account,
                   "counts", counts, "totals", "platform", r->platform_total, "bank", r->bank_total, "anomalies",
                   anomalies);
}

static void csv_cell(FILE *f, const char *s) {
  if (!s) return;
  if (!strpbrk(s, ",\"\n\r")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static const char *str(json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

static void num(char *buf, size_t n, json_t *v) {
  if (json_is_integer(v))
    snprintf(buf, n, "%lld", (long long)json_integer_value(v));
  else
    buf[0] = 0;
}

/* One line per outcome, matched ones included, so the CSV adds up to the statement. */
static void write_csv(FILE *f, const struct report *r) {
  fputs("outcome,key,platform_amount,platform_at,platform_reference,bank_amount,bank_at,bank_file,bank_line,detail\r\n",
        f);
  size_t i;
  json_t *row;
  json_array_foreach(r->rows, i, row) {
    json_t *p = json_object_get(row, "platform"), *b = json_object_get(row, "bank");
    json_t *pref = json_object_get(p, "ref"), *bref = json_object_get(b, "ref");
    char pa[32], ba[32], bl[32];
    num(pa, sizeof pa, json_object_get(p, "amount"));
    num(ba, sizeof ba, json_object_get(b, "amount"));
    num(bl, sizeof bl, json_object_get(bref, "line"));
    const char *cells[] = {str(row, "outcome"), str(row, "key"),   pa, str(p, "at"),      str(pref, "reference"), ba,
                           str(b, "at"),        str(bref, "file"), bl, str(row, "detail")};
    for (size_t k = 0; k < sizeof cells / sizeof *cells; k++) {
      if (k) fputc(',', f);
      csv_cell(f, cells[k]);
    }
    fputs("\r\n", f);
  }
}

static void html_text(FILE *f, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '<':
      fputs("&lt;", f);
      break;
    case '>':
      fputs("&gt;", f);
      break;
    case '&':
      fputs("&amp;", f);
      break;
    case '"':
      fputs("&quot;", f);
      break;
    default:
      fputc(*s, f);
    }
  }
}

/* Amounts with dot thousands separators, as Vietnamese documents write them. */
static void html_amount(FILE *f, json_t *v) {
  if (!json_is_integer(v)) return;
  char d[32], o[48];
  long long x = json_integer_value(v);
  snprintf(d, sizeof d, "%lld", x < 0 ? -x : x);
  size_t n = strlen(d), k = 0;
  if (x < 0) o[k++] = '-';
  for (size_t i = 0; i < n; i++) {
    if (i && (n - i) % 3 == 0) o[k++] = '.';
    o[k++] = d[i];
  }
  o[k] = 0;
  fputs(o, f);
}

static void write_html(FILE *f, const struct report *r) {
  static const char *const vi[RECON__COUNT] = {"Khớp", "Thiếu ở ngân hàng", "Thiếu ở nền tảng", "Lệch số tiền",
                                               "Trùng lặp"};
  fputs("<!DOCTYPE html>\n<html lang=\"vi\"><head><meta charset=\"utf-8\"><title>Đối soát ", f);
  html_text(f, r->day);
  fputs("</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #999;padding:.3em .6em;text-align:left}td.n{text-align:right}"
        "tr.bad td:first-child{color:#a00;font-weight:bold}</style></head><body>\n",
        f);
  fputs("<h1>Báo cáo đối soát thanh toán / Payment reconciliation</h1>\n<p>Ngày / day <b>", f);
  html_text(f, r->day);
  fputs("</b> &middot; Đơn vị / agency <b>", f);
  html_text(f, r->agency);
  fputs("</b> &middot; Tài khoản / account <b>", f);
  html_text(f, r->account);
  fputs("</b></p>\n<table><tr><th>Kết quả / outcome</th><th>Số lượng / count</th></tr>\n", f);
  for (int o = 0; o < RECON__COUNT; o++)
    fprintf(f, "<tr%s><td>%s (%s)</td><td class=\"n\">%lld</td></tr>\n", o && r->counts[o] ? " class=\"bad\"" : "",
            vi[o], recon_outcome_names[o], (long long)r->counts[o]);
  fputs("</table>\n<p>Tổng nền tảng / platform total: <b>", f);
  json_t *pt = json_integer(r->platform_total), *bt = json_integer(r->bank_total);
  html_amount(f, pt);
  fputs(" VND</b> &middot; Tổng ngân hàng / bank total: <b>", f);
  html_amount(f, bt);
  fputs(" VND</b></p>\n", f);
  json_decref(pt);
  json_decref(bt);
  fputs("<h2>Chênh lệch cần xử lý / anomalies</h2>\n<table><tr><th>Kết quả</th><th>Mã giao dịch / key</th>"
        "<th>Số tiền nền tảng</th><th>Thời gian nền tảng</th><th>Mã tham chiếu</th><th>Số tiền ngân hàng</th>"
        "<th>Thời gian ngân hàng</th><th>Tệp:dòng / file:line</th><th>Ghi chú / detail</th></tr>\n",
        f);
  size_t i, shown = 0;
  json_t *row;
  json_array_foreach(r->rows, i, row) {
    int o = outcome_index(str(row, "outcome"));
    if (o <= 0) continue;
    json_t *p = json_object_get(row, "platform"), *b = json_object_get(row, "bank");
    json_t *bref = json_object_get(b, "ref");
    fprintf(f, "<tr class=\"bad\"><td>%s</td><td>", vi[o]);
    html_text(f, str(row, "key"));
    fputs("</td><td class=\"n\">", f);
    html_amount(f, json_object_get(p, "amount"));
    fputs("</td><td>", f);
    html_text(f, str(p, "at"));
    fputs("</td><td>", f);
    html_text(f, str(json_object_get(p, "ref"), "reference"));
    fputs("</td><td class=\"n\">", f);
    html_amount(f, json_object_get(b, "amount"));
    fputs("</td><td>", f);
    html_text(f, str(b, "at"));
    fputs("</td><td>", f);
    if (str(bref, "file")) {
      html_text(f, str(bref, "file"));
      fprintf(f, ":%lld", (long long)json_integer_value(json_object_get(bref, "line")));
    }
    fputs("</td><td>", f);
    html_text(f, str(row, "detail"));
    fputs("</td></tr>\n", f);
    shown++;
  }
  if (!shown) fputs("<tr><td colspan=\"9\">Không có chênh lệch / none</td></tr>\n", f);
  fputs("</table>\n</body></html>\n", f);
}

/* A name safe as a file name part. */
static void safe(char *out, size_t n, const char *s) {
  size_t k = 0;
  for (; *s && k + 1 < n; s++)
    out[k++] = (char)((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
                              *s == '-'
                          ? *s
                          : '_');
  out[k] = 0;
}

static int write_files(const char *dir, const struct report *r, json_t *j) {
  char a[100], b[100], path[1024];
  safe(a, sizeof a, r->agency);
  safe(b, sizeof b, r->account);
  const char *ext[] = {"json", "csv", "html"};
  for (int k = 0; k < 3; k++) {
    snprintf(path, sizeof path, "%s/recon-%s-%s-%s.%s", dir, r->day, a, b, ext[k]);
    FILE *f = fopen(path, "w");
    if (!f) {
      fprintf(stderr, "lienthong recon: cannot write %s: %s\n", path, strerror(errno));
      return -1;
    }
    if (k == 0) {
      json_dumpf(j, f, JSON_INDENT(2));
      fputc('\n', f);
    } else if (k == 1) {
      write_csv(f, r);
    } else {
      write_html(f, r);
    }
    if (fclose(f) != 0) {
      fprintf(stderr, "lienthong recon: writing %s: %s\n", path, strerror(errno));
      return -1;
    }
    printf("%s\n", path);
  }
  return 0;
}

static int valid_day(const char *d) {
  if (strlen(d) != 10 || d[4] != '-' || d[7] != '-') return 0;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && (d[i] < '0' || d[i] > '9')) return 0;
  return 1;
}

static int recon_main(int argc, char **argv) {
  const char *verb = NULL, *path = NULL, *route_name = NULL, *day = NULL, *out = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--day") && i + 1 < argc)
      day = argv[++i];
    else if (!strcmp(argv[i], "--out") && i + 1 < argc)
      out = argv[++i];
    else if (argv[i][0] == '-')
      return hub_cmd_usage_error(&cmd, "unknown option '%s'", argv[i]);
    else if (!verb)
      verb = argv[i];
    else if (!path)
      path = argv[i];
    else if (!route_name)
      route_name = argv[i];
    else
      return hub_cmd_usage_error(&cmd, "unexpected argument '%s'", argv[i]);
  }
  if (!verb || strcmp(verb, "report") || !path || !route_name)
    return hub_cmd_usage_error(&cmd, "expected: recon report CONFIG ROUTE [--day YYYY-MM-DD] [--out DIR]");
  if (day && !valid_day(day)) return hub_cmd_usage_error(&cmd, "--day '%s' is not YYYY-MM-DD", day);
  char errbuf[1024];
  struct hub_config *cfg = NULL;
  struct hub_transport *t = NULL;
  const struct hub_transport_ops *tops = NULL;
  struct ctx c = {day, NULL, 0, 0, 0};
  int rc = HUB_EXIT_USAGE;
  if (hub_config_load(path, &cfg, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "%s\n", errbuf);
    goto done;
  }
  const struct hub_route_cfg *route = hub_config_get_route(cfg, route_name);
  if (!route || !route->to) {
    fprintf(stderr, "lienthong recon: no route named '%s' with a `to` topic in %s\n", route_name, path);
    goto done;
  }
  rc = HUB_EXIT_FAIL;
  struct hub_transport_opts opts = {"lienthong-recon", NULL, NULL, NULL, cfg->base_dir};
  tops = hub_transport_get(cfg->hub.transport);
  if (tops->open(cfg->transport_cfg, &opts, &t, errbuf, sizeof errbuf) != HUB_OK ||
      tops->scan(t, route->to, on_record, &c, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "lienthong recon: %s\n", errbuf);
    goto done;
  }
  if (out && mkdir(out, 0750) != 0 && errno != EEXIST) {
    fprintf(stderr, "lienthong recon: cannot create %s: %s\n", out, strerror(errno));
    goto done;
  }
  json_t *all = json_array();
  rc = HUB_EXIT_OK;
  for (size_t i = 0; i < c.n; i++) {
    json_t *j = report_json(&c.v[i]);
    if (out && write_files(out, &c.v[i], j) != 0) rc = HUB_EXIT_FAIL;
    json_array_append_new(all, j);
  }
  if (!out) {
    json_dumpf(all, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
  }
  json_decref(all);
  fprintf(stderr, "%zu outcome(s) in %zu report(s) from %s\n", c.seen, c.n, route->to);
done:
  for (size_t i = 0; i < c.n; i++) {
    free(c.v[i].agency);
    free(c.v[i].account);
    free(c.v[i].day);
    json_decref(c.v[i].rows);
  }
  free(c.v);
  if (t) tops->close(t);
  hub_config_destroy(cfg);
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "recon",
    .summary = "daily payment reconciliation reports (JSON, CSV, HTML) from a reconcile route",
    .usage = "Usage: lienthong recon report CONFIG ROUTE [--day YYYY-MM-DD] [--out DIR]\n\n"
             "Reads the committed recon.outcome records of ROUTE's `to` topic (a route with the\n"
             "`reconcile` step) and reports per day, agency and account: the count of each outcome\n"
             "(matched, missing-in-bank, missing-in-platform, amount-mismatch, duplicate), the\n"
             "platform and bank totals, and every anomaly. Without --out: one JSON array on stdout.\n"
             "With --out DIR: DIR/recon-DAY-AGENCY-ACCOUNT.json, .csv (every outcome, one per line)\n"
             "and .html (a page for a clerk); their paths on stdout.\n"
             "  --day YYYY-MM-DD   only that day (Vietnam time)\n"
             "  --out DIR          write the files there (created if missing)\n\n"
             "Exit codes: 0 done, 1 the cluster or a file failed, 2 usage or configuration error.",
    .main = recon_main,
};
HUB_CMD_PLUGIN(lt_plugin_cmd_recon, cmd);
