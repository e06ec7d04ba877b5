/* The bank statement reader (connectors/bank-statement/bank_layout.h) on the shipped layouts and
 * the reconciliation matcher (connectors/reconcile/recon_match.h), without a transport. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "connectors/bank-statement/bank_layout.h"
#include "connectors/reconcile/recon_match.h"

static char src[1024];

static struct bank_layout *layout(const char *name) {
  char path[1200], errbuf[1024] = "";
  struct bank_layout *l = NULL;
  snprintf(path, sizeof path, "%s/mappings/bank/%s", src, name);
  if (bank_layout_load(path, &l, errbuf, sizeof errbuf) != HUB_OK) fprintf(stderr, "%s\n", errbuf);
  return l;
}

/* One 239-byte vnpay-fixed detail line. */
static void detail(char *out, size_t n, const char *code, long long amount, const char *hms, const char *mmdd) {
  snprintf(out, n, "00020210%21s000000%012lld%40s%-20s%s%s%sMOBI970415%06d0001DVCQG001%-30s%-60s\n", "0011004455667",
           amount, code, code, hms, mmdd, mmdd, 1, "", "So Tu phap");
}

struct got {
  json_t *d[16];
  int n;
};

static int keep(void *p, json_t *d) {
  struct got *g = p;
  if (g->n == 16) {
    json_decref(d);
    return -1;
  }
  g->d[g->n++] = d;
  return 0;
}

static void got_clear(struct got *g) {
  for (int i = 0; i < g->n; i++)
    json_decref(g->d[i]);
  g->n = 0;
}

static hub_err_t parse(const struct bank_layout *l, const char *name, const char *text, struct got *g, json_t **sum,
                       char *errbuf, size_t n) {
  got_clear(g);
  *sum = NULL;
  errbuf[0] = 0;
  return bank_parse_buffer(l, name, text, strlen(text), keep, g, sum, errbuf, n);
}

static void test_fixed(void) {
  struct bank_layout *l = layout("vnpay-fixed.yaml");
  CHECK(l != NULL);
  if (!l) return;
  char d1[300], d2[300], d3[300], text[2000], errbuf[1024];
  detail(d1, sizeof d1, "GD1", 150000, "081403", "1205");
  detail(d2, sizeof d2, "GD2", 20000, "235959", "1231"); /* a date of the statement's year */
  detail(d3, sizeof d3, "GD3", 30000, "000001", "0101"); /* January in a December statement: next year */
  snprintf(text, sizeof text, "0001970415311226\n%s%s%s0009000000003BATCH JOB           235900311226\n\n", d1, d2, d3);
  struct got g = {0};
  json_t *sum;
  CHECK(parse(l, "s.txt", text, &g, &sum, errbuf, sizeof errbuf) == HUB_OK);
  CHECK(g.n == 3);
  if (g.n == 3) {
    CHECK(json_integer_value(json_object_get(g.d[0], "amount")) == 150000);
    CHECK_STR(json_string_value(json_object_get(g.d[0], "transaction_code")), "GD1");
    CHECK_STR(json_string_value(json_object_get(g.d[0], "account")), "0011004455667");
    CHECK_STR(json_string_value(json_object_get(g.d[0], "at")), "2026-12-05T08:14:03+07:00");
    CHECK_STR(json_string_value(json_object_get(g.d[1], "at")), "2026-12-31T23:59:59+07:00");
    CHECK_STR(json_string_value(json_object_get(g.d[2], "at")), "2027-01-01T00:00:01+07:00");
    CHECK(json_integer_value(json_object_get(g.d[1], "line")) == 3);
    CHECK_STR(json_string_value(json_object_get(g.d[1], "file")), "s.txt");
    CHECK_STR(json_string_value(json_object_get(g.d[0], "merchant_name")), "So Tu phap");
  }
  CHECK(json_integer_value(json_object_get(sum, "lines")) == 3);
  CHECK(json_integer_value(json_object_get(sum, "total")) == 200000);
  CHECK_STR(json_string_value(json_object_get(sum, "covers_until")), "2026-12-31T23:59:59+07:00");
  json_decref(sum);

  /* the footer's count is wrong: refused, pointing at the footer */
  snprintf(text, sizeof text, "0001970415311226\n%s%s0009000000003BATCH JOB           235900311226\n", d1, d2);
  CHECK(parse(l, "f.txt", text, &g, &sum, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(errbuf, "f.txt:4: the footer's row_count says 3 detail line(s); the file has 2");
  /* a line cut short in the middle */
  snprintf(text, sizeof text, "0001970415311226\n%s%.200s\n%s0009000000003BATCH JOB           235900311226\n", d1, d2,
           d3);
  CHECK(parse(l, "t.txt", text, &g, &sum, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(errbuf, "t.txt:3: a detail line is 239 bytes, this one 200: truncated");
  /* a file cut inside its last line: no footer */
  snprintf(text, sizeof text, "0001970415311226\n%s%.100s", d1, d2);
  CHECK(parse(l, "c.txt", text, &g, &sum, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(errbuf, "c.txt:3: a detail line is 239 bytes, this one 100: truncated");
  snprintf(text, sizeof text, "0001970415311226\n%s", d1);
  CHECK(parse(l, "n.txt", text, &g, &sum, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(errbuf, "no footer line");
  /* an amount that is not a number; a record type that is not 0002; a line after the footer */
  char bad[300];
  snprintf(bad, sizeof bad, "%s", d1);
  memcpy(bad + 35, "00001x000000", 12);
  snprintf(text, sizeof text, "0001970415311226\n%s0009000000001BATCH JOB           235900311226\n", bad);
  CHECK(parse(l, "a.txt", text, &g, &sum, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(errbuf, "a.txt:2: detail field 'amount' is '00001x000000', not an integer");
  memcpy(bad, "0003", 4);
  memcpy(bad + 35, "000010000000", 12);
  snprintf(text, sizeof text, "0001970415311226\n%s0009000000001BATCH JOB           235900311226\n", bad);
  CHECK(parse(l, "r.txt", text, &g, &sum, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(errbuf, "r.txt:2: detail field 'record_type' is '0003', expected '0002'");
  snprintf(text, sizeof text, "0001970415311226\n%s0009000000001BATCH JOB           235900311226\n%s", d1, d1);
  CHECK(parse(l, "x.txt", text, &g, &sum, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(errbuf, "x.txt:4: a line after the footer");
  /* a date that does not exist */
  detail(bad, sizeof bad, "GD9", 1, "081403", "0230");
  snprintf(text, sizeof text, "0001970415311226\n%s0009000000001BATCH JOB           235900311226\n", bad);
  CHECK(parse(l, "d.txt", text, &g, &sum, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(errbuf, "d.txt:2: detail field 'txn_date' is '0230', not a date of the form MMdd");
  got_clear(&g);
  bank_layout_destroy(l);
}

static void test_csv(void) {
  struct bank_layout *l = layout("csv-basic.yaml");
  CHECK(l != NULL);
  if (!l) return;
  const char *title = "statement_date,account,transaction_code,amount,paid_at,description\r\n";
  char text[2000], errbuf[1024];
  snprintf(text, sizeof text,
           "%s2026-12-05,9988,B1,100000,2026-12-05 09:00:00,\"Nộp phí, \"\"lệ phí\"\"\"\r\n"
           "2026-12-05,9988,B2,5000,2026-12-05 23:10:00,\r\nTOTAL,2,105000\r\n",
           title);
  struct got g = {0};
  json_t *sum;
  CHECK(parse(l, "s.csv", text, &g, &sum, errbuf, sizeof errbuf) == HUB_OK);
  CHECK(g.n == 2);
  if (g.n == 2) {
    CHECK_STR(json_string_value(json_object_get(g.d[0], "description")), "Nộp phí, \"lệ phí\"");
    CHECK_STR(json_string_value(json_object_get(g.d[1], "at")), "2026-12-05T23:10:00+07:00");
    CHECK(json_is_null(json_object_get(g.d[1], "description")));
  }
  CHECK_STR(json_string_value(json_object_get(sum, "covers_until")), "2026-12-05T23:59:59+07:00");
  json_decref(sum);
  /* a byte order mark before the title row (a spreadsheet's export) is not part of the title */
  snprintf(text, sizeof text, "\xEF\xBB\xBF%s2026-12-05,9988,B1,100000,2026-12-05 09:00:00,x\r\nTOTAL,1,100000\r\n",
           title);
  CHECK(parse(l, "bom.csv", text, &g, &sum, errbuf, sizeof errbuf) == HUB_OK && g.n == 1);
  json_decref(sum);
  snprintf(text, sizeof text, "%s2026-12-05,9988,B1,100000,2026-12-05 09:00:00,x\r\nTOTAL,1,100001\r\n", title);
  CHECK(parse(l, "t.csv", text, &g, &sum, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(errbuf, "t.csv:3: the footer's total says 100001; the amount of the details add up to 100000");
  snprintf(text, sizeof text, "%s2026-12-05,9988,B1,100000\r\nTOTAL,1,100000\r\n", title);
  CHECK(parse(l, "c.csv", text, &g, &sum, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(errbuf, "c.csv:2: a detail line has 6 cells, this one 4: truncated");
  snprintf(text, sizeof text, "%s2026-12-05,9988,B1,100000,2026-12-05 09:00:00,\"open\r\nTOTAL,1,100000\r\n", title);
  CHECK(parse(l, "q.csv", text, &g, &sum, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(errbuf, "q.csv:2: a quoted cell is not closed");
  snprintf(text, sizeof text, "date,account\r\nTOTAL,0,0\r\n");
  CHECK(parse(l, "h.csv", text, &g, &sum, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
  CHECK_CONTAINS(errbuf, "h.csv:1: a header line has 6 cells, this one 2");
  got_clear(&g);
  bank_layout_destroy(l);
}

static void test_bad_layouts(void) {
  const char *cases[][2] = {
      {"format: fixed\nheader: {fields: [{name: a, width: 4}]}\ndetail: {fields: [{name: b, width: 2, colour: red}]}\n",
       ":3:"},
      {"format: tsv\n", "'format' must be fixed or csv"},
      {"format: fixed\nheader: {fields: [{name: a, width: 4}]}\ndetail: {fields: [{name: b, width: 2}]}\n"
       "footer: {fields: [{name: c, width: 2}]}\n",
       "at least one field needs 'equals'"},
      {"format: csv\nheader: {fields: [{name: a, width: 4}]}\n", "'width' is for fixed-width layouts"},
  };
  char path[] = "/tmp/lt-layout-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) return;
  close(fd);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    FILE *f = fopen(path, "w");
    fputs(cases[i][0], f);
    fclose(f);
    struct bank_layout *l = NULL;
    char errbuf[1024] = "";
    CHECK(bank_layout_load(path, &l, errbuf, sizeof errbuf) != HUB_OK && !l);
    CHECK_CONTAINS(errbuf, cases[i][1]);
    CHECK_CONTAINS(errbuf, path);
  }
  unlink(path);
}

/* ------------------------------------------------------------------ the matcher */

struct seen {
  char text[4096];
};

static void note(void *p, enum recon_outcome o, const struct recon_item *pl, const struct recon_item *bk) {
  struct seen *s = p;
  size_t n = strlen(s->text);
  snprintf(s->text + n, sizeof s->text - n, "%s:%s;", recon_outcome_names[o], pl ? pl->key : bk->key);
}

static struct recon_item *item(int side, const char *key, long long amount, long long t) {
  struct recon_item *it = calloc(1, sizeof *it);
  it->side = side;
  it->key = strdup(key);
  it->amount = amount;
  it->t = t;
  it->agency = strdup("A");
  it->account = strdup("1");
  return it;
}

static void test_matcher(void) {
  struct seen s = {""};
  struct recon *r = recon_new(600, 3600);
  /* payment then its line; a line before its payment; a wrong amount; the bank books one twice;
   * the platform confirms one twice; a payment without a line; a line without a payment */
  recon_feed(r, item(RECON_PLATFORM, "p1", 100, 1000), note, &s);
  recon_feed(r, item(RECON_BANK, "p1", 100, 1030), note, &s);
  recon_feed(r, item(RECON_BANK, "p2", 200, 1100), note, &s);
  recon_feed(r, item(RECON_PLATFORM, "p2", 200, 1090), note, &s);
  recon_feed(r, item(RECON_PLATFORM, "p3", 300, 1200), note, &s);
  recon_feed(r, item(RECON_BANK, "p3", 301, 1210), note, &s);
  recon_feed(r, item(RECON_BANK, "p1", 100, 1300), note, &s);
  recon_feed(r, item(RECON_PLATFORM, "p2", 200, 1310), note, &s);
  recon_feed(r, item(RECON_PLATFORM, "p4", 400, 1400), note, &s);
  recon_feed(r, item(RECON_BANK, "x1", 500, 1500), note, &s);
  CHECK_STR(s.text, "matched:p1;matched:p2;amount-mismatch:p3;duplicate:p1;duplicate:p2;");
  CHECK(recon_pending(r) == 2);
  /* both sides move past the window: p4 is missing in the bank, x1 in the platform */
  recon_feed(r, item(RECON_BANK, "p5", 1, 2100), note, &s);
  CHECK_CONTAINS(s.text, "missing-in-bank:p4;");
  CHECK(!strstr(s.text, "x1"));
  recon_feed(r, item(RECON_PLATFORM, "p5", 1, 2110), note, &s);
  CHECK_CONTAINS(s.text, "missing-in-platform:x1;matched:p5;");
  /* a key matched long ago (past `remember`) is no duplicate any more: it waits, then is missing */
  s.text[0] = 0;
  recon_advance(r, NULL, NULL, RECON_BANK, 9000, note, &s);
  recon_feed(r, item(RECON_PLATFORM, "p6", 1, 9000), note, &s);
  recon_feed(r, item(RECON_PLATFORM, "p1", 100, 9001), note, &s);
  CHECK(!strstr(s.text, "duplicate"));
  /* a key on both sides but further apart than the window: two missing items */
  recon_feed(r, item(RECON_BANK, "far", 7, 9100), note, &s);
  recon_feed(r, item(RECON_PLATFORM, "far", 7, 9701), note, &s);
  recon_flush(r, note, &s);
  CHECK_CONTAINS(s.text, "missing-in-platform:far;");
  CHECK_CONTAINS(s.text, "missing-in-bank:far;");
  CHECK(recon_pending(r) == 0);
  recon_destroy(r);
  /* streams are separate: the same key in another agency does not match */
  s.text[0] = 0;
  r = recon_new(600, 600);
  struct recon_item *other = item(RECON_BANK, "k", 1, 100);
  free(other->agency);
  other->agency = strdup("B");
  recon_feed(r, item(RECON_PLATFORM, "k", 1, 100), note, &s);
  recon_feed(r, other, note, &s);
  CHECK_STR(s.text, "");
  recon_flush(r, note, &s);
  CHECK_CONTAINS(s.text, "missing-in-bank:k;");
  CHECK_CONTAINS(s.text, "missing-in-platform:k;");
  recon_destroy(r);
}

static void test_time(void) {
  CHECK(bank_time_parse("1970-01-01T07:00:00+07:00") == 0);
  CHECK(bank_time_parse("2026-12-05T01:02:03Z") == bank_time_parse("2026-12-05T08:02:03.250+07:00"));
  CHECK(bank_time_parse("2026-02-30T00:00:00Z") == -1);
  CHECK(bank_time_parse("2026-12-05 08:00:00") == -1);
  char out[32];
  bank_time_format(bank_time_parse("2026-12-31T23:59:59+07:00"), 420, out);
  CHECK_STR(out, "2026-12-31T23:59:59+07:00");
}

int main(void) {
  const char *s = getenv("LT_SOURCE_DIR");
  snprintf(src, sizeof src, "%s", s ? s : ".");
  test_time();
  test_fixed();
  test_csv();
  test_bad_layouts();
  test_matcher();
  return check_done();
}
