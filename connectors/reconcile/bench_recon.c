/* `lienthong bench recon`: reconciles a generated fixed-width statement of N lines against N
 * platform payments with the statement reader (bank_layout.h) and the matcher (recon_match.h) on
 * one core, in process, reading the statement as a stream; the baseline, measured in the same
 * run, is reading the same file line by line and doing nothing with it. Injected anomalies (one
 * in a thousand of each kind) must come out exactly, so a fast wrong answer fails. Memory: the
 * same density of payments is reconciled first over a tenth of the lines; with state bounded by
 * the window both runs peak at about the same resident size. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "connectors/bank-statement/bank_layout.h"
#include "hub/core/cmd.h"
#include "hub/core/metrics.h"
#include "hub/core/registry.h"
#include "recon_match.h"

static const struct hub_cmd cmd;

#define DAY0 1764867600LL /* 2025-12-05T00:00:00+07:00 */
#define SPACING_US 86400  /* 1,000,000 payments a day: one every 86.4 ms */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t pay_time(long j) {
  return DAY0 + (int64_t)j * SPACING_US / 1000000;
}
static int64_t pay_amount(long j) {
  return 20000 + (j % 977) * 100;
}

/* One detail line of mappings/bank/vnpay-fixed.yaml (239 bytes). */
static void detail(FILE *f, const char *code, int64_t amount, int64_t t, long n) {
  int64_t l = t + 7 * 3600, sod = l % 86400;
  time_t days = (time_t)(l / 86400 * 86400);
  struct tm tm;
  gmtime_r(&days, &tm);
  char mmdd[8], hms[8];
  snprintf(mmdd, sizeof mmdd, "%02d%02d", tm.tm_mon + 1, tm.tm_mday);
  snprintf(hms, sizeof hms, "%02d%02d%02d", (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
  fprintf(f, "00020210%21s000000%012lld%40s%-20s%s%s%sMOBI970415%06ld0001DVCQG001%-30s%-60s\n", "0011004455667",
          (long long)amount, code, code, hms, mmdd, mmdd, n % 1000000, "", "So Tu phap tinh");
}

/* The statement for payments 0..n-1: j%1000 == 0 missing from the bank, == 1 followed by a
 * credit nobody paid, == 2 with a wrong amount, == 3 booked twice. Returns the line count. */
static long write_statement(const char *path, long n) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  long lines = 0;
  fprintf(f, "0001970415051225\n");
  char code[32];
  for (long j = 0; j < n; j++) {
    int k = (int)(j % 1000);
    if (k == 0) continue;
    snprintf(code, sizeof code, "GD%012ld", j);
    detail(f, code, pay_amount(j) + (k == 2 ? 500 : 0), pay_time(j), ++lines);
    if (k == 3) detail(f, code, pay_amount(j), pay_time(j), ++lines);
    if (k == 1) {
      snprintf(code, sizeof code, "XT%012ld", j);
      detail(f, code, 50000, pay_time(j), ++lines);
    }
  }
  fprintf(f, "0009%09ld%-20s235900051225\n", lines, "BATCH JOB");
  return fclose(f) == 0 ? lines : -1;
}

struct counts {
  long n[RECON__COUNT];
};

static void on_outcome(void *ctx, enum recon_outcome o, const struct recon_item *p, const struct recon_item *b) {
  (void)p, (void)b;
  ((struct counts *)ctx)->n[o]++;
}

static struct recon_item *item(int side, const char *key, int64_t amount, int64_t t) {
  struct recon_item *it = calloc(1, sizeof *it);
  if (!it) return NULL;
  it->side = side;
  it->key = strdup(key);
  it->amount = amount;
  it->t = t;
  it->agency = strdup("000.00.00.H01");
  it->account = strdup("0011004455667");
  if (!it->key || !it->agency || !it->account) {
    recon_item_destroy(it);
    return NULL;
  }
  return it;
}

struct run {
  double secs, cpu;
  long lines;
  size_t peak_pending;
  int64_t peak_rss;
  struct counts c;
};

/* Streams the statement through the reader and the matcher, feeding payments up to each line's
 * time first (both feeds in time order, as the topics deliver them). */
static int reconcile(const struct bank_layout *l, const char *path, long n, int64_t window, int64_t lead,
                     struct run *out, char *why, size_t why_n) {
  FILE *f = fopen(path, "r");
  struct bank_reader *rd = bank_reader_new(l, "bench.txt");
  struct recon *m = recon_new(window, window);
  char *line = NULL, key[32];
  size_t cap = 0;
  ssize_t len;
  long j = 0;
  int rc = -1;
  memset(out, 0, sizeof *out);
  double t0 = now_s(), c0 = cpu_s();
  if (!f || !rd || !m) {
    snprintf(why, why_n, "cannot open %s: %s", path, strerror(errno));
    goto done;
  }
  while ((len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] == '\n') len--;
    json_t *d = NULL;
    if (bank_reader_line(rd, line, (size_t)len, &d, why, why_n) != HUB_OK) goto done;
    if (!d) continue;
    out->lines++;
    int64_t t = bank_time_parse(json_string_value(json_object_get(d, "at")));
    for (; j < n && pay_time(j) <= t + lead; j++) { /* the platform's confirmations run ahead */
      snprintf(key, sizeof key, "GD%012ld", j);
      recon_feed(m, item(RECON_PLATFORM, key, pay_amount(j), pay_time(j)), on_outcome, &out->c);
    }
    recon_feed(m,
               item(RECON_BANK, json_string_value(json_object_get(d, "transaction_code")),
                    json_integer_value(json_object_get(d, "amount")), t),
               on_outcome, &out->c);
    json_decref(d);
  }
  for (; j < n; j++) {
    snprintf(key, sizeof key, "GD%012ld", j);
    recon_feed(m, item(RECON_PLATFORM, key, pay_amount(j), pay_time(j)), on_outcome, &out->c);
  }
  json_t *summary = NULL;
  if (bank_reader_finish(rd, &summary, why, why_n) != HUB_OK) goto done;
  json_decref(summary);
  recon_flush(m, on_outcome, &out->c);
  out->secs = now_s() - t0;
  out->cpu = cpu_s() - c0;
  out->peak_pending = recon_pending_peak(m);
  out->peak_rss = hub_metrics_peak_rss_bytes();
  rc = 0;
done:
  free(line);
  if (f) fclose(f);
  bank_reader_destroy(rd);
  recon_destroy(m);
  return rc;
}

/* What a correct reconciliation of write_statement(n) says. */
static int check_counts(const struct counts *c, long n, char *why, size_t why_n) {
  long per = n / 1000 + (n % 1000 > 0), per2 = n / 1000 + (n % 1000 > 2), per3 = n / 1000 + (n % 1000 > 3),
       per1 = n / 1000 + (n % 1000 > 1);
  long want[RECON__COUNT] = {n - per - per2, per, per1, per2, per3};
  for (int o = 0; o < RECON__COUNT; o++)
    if (c->n[o] != want[o]) {
      snprintf(why, why_n, "%s: %ld, expected %ld", recon_outcome_names[o], c->n[o], want[o]);
      return -1;
    }
  return 0;
}

static int bench_recon_main(int argc, char **argv) {
  long n = 1000000;
  int64_t window = 900, lead = 600;
  const char *layout_path = NULL, *dir = NULL;
  for (int i = 1; i < argc; i++) {
    char *end;
    if (!strcmp(argv[i], "--lines") && i + 1 < argc) {
      n = strtol(argv[++i], &end, 10);
      if (*end || n < 1000 || n > 100000000) return hub_cmd_usage_error(&cmd, "--lines: 1000..100000000");
    } else if (!strcmp(argv[i], "--window") && i + 1 < argc) {
      int64_t ms;
      if (hub_parse_duration_ms(argv[++i], &ms) != 0 || ms < 1000)
        return hub_cmd_usage_error(&cmd, "--window: a duration of at least 1s");
      window = ms / 1000;
    } else if (!strcmp(argv[i], "--lead") && i + 1 < argc) {
      int64_t ms;
      if (hub_parse_duration_ms(argv[++i], &ms) != 0) return hub_cmd_usage_error(&cmd, "--lead: a duration");
      lead = ms / 1000;
    } else if (!strcmp(argv[i], "--layout") && i + 1 < argc) {
      layout_path = argv[++i];
    } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
      dir = argv[++i];
    } else if (!strcmp(argv[i], "--quick")) {
      n = 20000;
    } else {
      return hub_cmd_usage_error(&cmd, "unknown option '%s'", argv[i]);
    }
  }
  if (lead >= window) return hub_cmd_usage_error(&cmd, "--lead must be shorter than --window");
  if (!layout_path) {
    const char *cands[] = {"mappings/bank/vnpay-fixed.yaml", "/usr/share/lienthong/mappings/bank/vnpay-fixed.yaml"};
    for (size_t i = 0; i < 2 && !layout_path; i++)
      if (access(cands[i], R_OK) == 0) layout_path = cands[i];
    if (!layout_path) return hub_cmd_usage_error(&cmd, "no mappings/bank/vnpay-fixed.yaml here: give --layout");
  }
  char errbuf[1024], why[600] = "", path_big[600], path_small[600];
  struct bank_layout *l = NULL;
  if (bank_layout_load(layout_path, &l, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "lienthong bench recon: %s\n", errbuf);
    return HUB_EXIT_USAGE;
  }
  const char *tmp = dir ? dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(path_big, sizeof path_big, "%s/lienthong-bench-recon-%d.txt", tmp, (int)getpid());
  snprintf(path_small, sizeof path_small, "%s/lienthong-bench-recon-%d-small.txt", tmp, (int)getpid());
  int rc = HUB_EXIT_FAIL;
  long small = n / 10;
  struct run rs, rb;
  fprintf(stderr, "bench: writing statements of %ld and %ld payments under %s\n", small, n, tmp);
  long lines_big = write_statement(path_big, n), lines_small = write_statement(path_small, small);
  if (lines_big < 0 || lines_small < 0) {
    snprintf(why, sizeof why, "cannot write the statements under %s: %s", tmp, strerror(errno));
    goto out;
  }
  /* the baseline: the same file read line by line */
  FILE *f = fopen(path_big, "r");
  char *line = NULL;
  size_t cap = 0;
  long base_lines = 0;
  double t0 = now_s();
  while (f && getline(&line, &cap, f) > 0)
    base_lines++;
  double base_s = now_s() - t0;
  free(line);
  if (f) fclose(f);
  int64_t rss0 = hub_metrics_peak_rss_bytes();
  if (reconcile(l, path_small, small, window, lead, &rs, why, sizeof why) != 0 ||
      check_counts(&rs.c, small, why, sizeof why))
    goto out;
  fprintf(stderr, "bench: %ld lines in %.2f s, peak %zu pending, peak RSS %.1f MiB\n", rs.lines, rs.secs,
          rs.peak_pending, (double)rs.peak_rss / 1048576.0);
  if (reconcile(l, path_big, n, window, lead, &rb, why, sizeof why) != 0 || check_counts(&rb.c, n, why, sizeof why))
    goto out;
  fprintf(stderr, "bench: %ld lines in %.2f s, peak %zu pending, peak RSS %.1f MiB\n", rb.lines, rb.secs,
          rb.peak_pending, (double)rb.peak_rss / 1048576.0);
  rc = HUB_EXIT_OK;
  double rate = rb.lines / rb.secs, base_rate = base_lines / (base_s > 0 ? base_s : 1e-9);
  printf("recon: %ld statement lines against %ld payments in %.2f s (%.2f s of CPU): %.0f lines/s (reading the file "
         "alone %.0f "
         "lines/s; ratio %.3f); peak RSS %.1f MiB (%.1f MiB after a tenth of the lines at the same density, %.1f "
         "MiB before); peak pending %zu; outcomes matched %ld, missing-in-bank %ld, missing-in-platform %ld, "
         "amount-mismatch %ld, duplicate %ld\n",
         rb.lines, n, rb.secs, rb.cpu, rate, base_rate, rate / base_rate, (double)rb.peak_rss / 1048576.0,
         (double)rs.peak_rss / 1048576.0, (double)rss0 / 1048576.0, rb.peak_pending, rb.c.n[0], rb.c.n[1], rb.c.n[2],
         rb.c.n[3], rb.c.n[4]);
  json_t *j = json_pack(
      "{s:s, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:f, s:{s:I, s:I, s:I, s:I, s:I}}",
      "bench", "recon", "lines", (json_int_t)rb.lines, "payments", (json_int_t)n, "seconds", rb.secs, "cpu_seconds",
      rb.cpu, "lines_per_cpu_s", rb.cpu > 0 ? rb.lines / rb.cpu : 0.0, "lines_per_s", rate, "baseline_lines_per_s",
      base_rate, "ratio", rate / base_rate, "peak_rss_mib", (double)rb.peak_rss / 1048576.0, "peak_rss_tenth_mib",
      (double)rs.peak_rss / 1048576.0, "rss_before_mib", (double)rss0 / 1048576.0, "peak_pending",
      (json_int_t)rb.peak_pending, "window_s", (json_int_t)window, "lead_s", (json_int_t)lead, "rss_ratio",
      rs.peak_rss > rss0 ? (double)(rb.peak_rss - rss0) / (double)(rs.peak_rss - rss0) : 0.0, "outcomes", "matched",
      (json_int_t)rb.c.n[0], "missing-in-bank", (json_int_t)rb.c.n[1], "missing-in-platform", (json_int_t)rb.c.n[2],
      "amount-mismatch", (json_int_t)rb.c.n[3], "duplicate", (json_int_t)rb.c.n[4]);
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  if (text) printf("%s\n", text);
  free(text);
  json_decref(j);
out:
  if (rc != HUB_EXIT_OK) fprintf(stderr, "lienthong bench recon: %s\n", why);
  unlink(path_big);
  unlink(path_small);
  bank_layout_destroy(l);
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "bench.recon",
    .summary = "reconcile a generated N-line statement against N payments; lines/s and peak RSS",
    .usage = "Usage: lienthong bench recon [OPTIONS]\n\n"
             "Writes a fixed-width statement (mappings/bank/vnpay-fixed.yaml) for N payments, one every 86.4 ms\n"
             "(a million make a day), with one in a thousand of each anomaly (missing in the bank, a credit\n"
             "nobody paid, a wrong amount, a line booked twice), then on one core, in this process:\n"
             "  1. the baseline: reads the file line by line, nothing else;\n"
             "  2. reconciles a tenth of the payments at the same density (memory reference);\n"
             "  3. reconciles all: the reader parses and checks each line as a stream, the matcher takes the\n"
             "     payments and lines in time order; every injected anomaly must come out, exactly.\n"
             "Progress goes to stderr; a summary and, as the last line, one JSON object go to stdout.\n\n"
             "Options:\n"
             "  --lines N       payments (and about as many lines), default 1000000; 20000 with --quick\n"
             "  --window DUR    matching window, default 15m\n"
             "  --lead DUR      how far the payments run ahead of their bank lines (they wait that long;\n"
             "                  shorter than the window), default 10m\n"
             "  --layout FILE   default mappings/bank/vnpay-fixed.yaml (here, or the installed copy)\n"
             "  --dir DIR       where the statements are written (default $TMPDIR or /tmp; removed after)\n"
             "  --quick         a small run for CI\n\n"
             "Exit codes: 0 done and every outcome as injected, 1 a wrong count or an I/O error, 2 usage error.",
    .main = bench_recon_main,
};
HUB_CMD_PLUGIN(lt_plugin_cmd_bench_recon, cmd);
