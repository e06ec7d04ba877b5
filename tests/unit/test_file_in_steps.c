/* file-in with `steps:` (connectors/file, used by bank statements) on the memory transport: a
 * statement becomes its line records and summary in the file's transaction and the file's own
 * bytes are never emitted; a file the step refuses goes to failed/ with the step's reason; one it
 * asks to retry stays in the folder, never emitted; a bad step list is a configuration error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "hub/core/log.h"
#include "hub/engine/source.h"
#include "memtest.h"

static char dir[] = "/tmp/lt-filesteps-XXXXXX";

static const char *yaml =
    "hub: {transport: memory, instance: t, admin: {listen: ''}}\n"
    "connectors:\n"
    "  - name: bank\n"
    "    type: file-in\n"
    "    topic: lines\n"
    "    path: %s/in\n"
    "    poll_interval: 20ms\n"
    "    settle: 200ms\n"
    "    rescan: 200ms\n"
    "    steps:\n"
    "      - test-fault: {retry_if: FLAKY}\n"
    "      - bank-statement: {layout: %s/mappings/bank/csv-basic.yaml, agency: H01, key: transaction_code}\n";

static void drop(const char *name, const char *content) {
  char tmp[700], path[700];
  snprintf(tmp, sizeof tmp, "%s/in/.%s.tmp", dir, name);
  snprintf(path, sizeof path, "%s/in/%s", dir, name);
  FILE *f = fopen(tmp, "w");
  if (!f) return;
  fputs(content, f);
  fclose(f);
  rename(tmp, path);
}

static int exists(const char *sub) {
  char path[700];
  struct stat st;
  snprintf(path, sizeof path, "%s/in/%s", dir, sub);
  return stat(path, &st) == 0;
}

static char *slurp(const char *sub) {
  char path[700];
  snprintf(path, sizeof path, "%s/in/%s", dir, sub);
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char *buf = calloc(1, 4096);
  if (buf) fread(buf, 1, 4095, f);
  fclose(f);
  return buf;
}

static void wait_for(int (*cond)(void), int timeout_ms) {
  double t0 = now_ms();
  while (!cond() && now_ms() - t0 < timeout_ms)
    sleep_ms(20);
}

static int four_lines(void) {
  return count("lines") >= 4;
}
static int bad_failed(void) {
  return exists("failed/bad.csv.error");
}

#define TITLE "statement_date,account,transaction_code,amount,paid_at,description\n"

int main(void) {
  hub_log_set_level(getenv("LT_TEST_LOG") ? HUB_LOG_DEBUG : HUB_LOG_ERROR);
  T = hub_transport_get("memory");
  const char *src = getenv("LT_SOURCE_DIR");
  CHECK(T != NULL && src != NULL);
  if (!T || !src || !mkdtemp(dir)) return check_done();
  char text[2048], path[700], e[1024] = "";
  snprintf(path, sizeof path, "%s/in", dir);
  mkdir(path, 0750);
  snprintf(text, sizeof text, yaml, dir, src);
  struct hub_config *cfg = config_load_in(dir, text);
  struct hub_source_runner *s = NULL;
  CHECK(cfg && hub_source_runner_create(cfg, &cfg->sources[0], T, &s, e, sizeof e) == HUB_OK);
  if (s) CHECK(hub_source_runner_start(s) == HUB_OK);

  /* a good statement: three lines and the summary, in order; the file moves to done/ */
  drop("good.csv", TITLE "2026-12-05,1,T1,100,2026-12-05 08:00:00,a\n2026-12-05,1,T2,200,2026-12-05 09:00:00,b\n"
                         "2026-12-05,1,T3,300,2026-12-05 10:00:00,c\nTOTAL,3,600\n");
  wait_for(four_lines, 10000);
  struct coll c = {0};
  scan_topic("lines", &c);
  CHECK(c.n == 4);
  int lines = 0, summaries = 0; /* the memory transport scans partition by partition: find them by kind */
  for (int i = 0; i < c.n; i++) {
    const char *type = hub_msg_header_get_str(c.v[i], "lt.type"), *v = (const char *)c.v[i]->value;
    CHECK(strstr(v, "TOTAL,3") == NULL); /* never the file's own bytes */
    if (type && !strcmp(type, "bank.statement.line")) {
      lines++;
      CHECK(c.v[i]->key_len == 2 && c.v[i]->key[0] == 'T');
      char want[40];
      snprintf(want, sizeof want, "\"line\":%c", '2' + (c.v[i]->key[1] - '1'));
      CHECK(strstr(v, want) != NULL);
    } else if (type && !strcmp(type, "bank.statement")) {
      summaries++;
      CHECK(strstr(v, "\"total\":600") != NULL && strstr(v, "\"lines\":3") != NULL);
    }
  }
  CHECK(lines == 3 && summaries == 1);
  coll_clear(&c);
  sleep_ms(300);
  CHECK(exists("done/good.csv") && !exists("good.csv"));

  /* a footer that lies: refused whole, to failed/ with the step and its reason; nothing emitted */
  drop("bad.csv", TITLE "2026-12-05,1,T4,100,2026-12-05 08:00:00,a\nTOTAL,2,100\n");
  wait_for(bad_failed, 10000);
  char *note = slurp("failed/bad.csv.error");
  CHECK_CONTAINS(note, "steps[1].bank-statement");
  CHECK_CONTAINS(note, "bad.csv:3: the footer's row_count says 2 detail line(s); the file has 1");
  free(note);
  CHECK(exists("failed/bad.csv") && count("lines") == 4);

  /* a step that asks for a retry: the file stays, is never emitted and never refused */
  drop("later.csv", TITLE "2026-12-05,1,FLAKY,100,2026-12-05 08:00:00,a\nTOTAL,1,100\n");
  sleep_ms(1500);
  CHECK(exists("later.csv") && !exists("failed/later.csv") && !exists("done/later.csv") && count("lines") == 4);
  hub_source_runner_destroy(s);
  hub_config_destroy(cfg);

  /* a step that does not exist: the source is not created, and the error says where */
  snprintf(text, sizeof text,
           "hub: {transport: memory, instance: t, admin: {listen: ''}}\n"
           "connectors:\n"
           "  - {name: bank, type: file-in, topic: lines, path: %s/in, steps: [{no-such-step: {}}]}\n",
           dir);
  cfg = config_load_in(dir, text);
  s = NULL;
  e[0] = 0;
  CHECK(!cfg || hub_source_runner_create(cfg, &cfg->sources[0], T, &s, e, sizeof e) != HUB_OK);
  if (cfg) CHECK_CONTAINS(e, "no-such-step");
  hub_source_runner_destroy(s);
  hub_config_destroy(cfg);

  snprintf(text, sizeof text, "rm -rf '%s'", dir);
  if (system(text) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return check_done();
}
