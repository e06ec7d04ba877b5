/* Error strings, backoff math, records and their headers, UUIDv7, SHA-256, DLQ headers. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "hub/core/backoff.h"
#include "hub/core/err.h"
#include "hub/core/msg.h"
#include "hub/engine/route.h"

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

int main(void) {
  /* Every code has a distinct name and a sentence; names round-trip. */
  for (int i = 0; i < HUB_ERR__COUNT; i++) {
    CHECK(strcmp(hub_err2name((hub_err_t)i), "unknown") != 0);
    CHECK(strcmp(hub_err2str((hub_err_t)i), "unknown error") != 0);
    CHECK(hub_err_from_name(hub_err2name((hub_err_t)i)) == (hub_err_t)i);
    for (int j = 0; j < i; j++) CHECK(strcmp(hub_err2name((hub_err_t)i), hub_err2name((hub_err_t)j)) != 0);
  }
  CHECK(HUB_OK == 0);
  CHECK_STR(hub_err2name(HUB_ERR_SIG_DIGEST), "sig-digest");
  CHECK_STR(hub_err2name((hub_err_t)9999), "unknown");
  CHECK_STR(hub_err2str((hub_err_t)-1), "unknown error");
  CHECK(hub_err_from_name("no-such") == HUB_ERR__COUNT);

  /* Backoff: ceiling doubles up to the cap; the delay stays inside [0, ceiling]. */
  CHECK(hub_backoff_ceiling_ms(200, 30000, 1) == 200);
  CHECK(hub_backoff_ceiling_ms(200, 30000, 2) == 400);
  CHECK(hub_backoff_ceiling_ms(200, 30000, 8) == 25600);
  CHECK(hub_backoff_ceiling_ms(200, 30000, 9) == 30000);
  CHECK(hub_backoff_ceiling_ms(200, 30000, 1000) == 30000);
  CHECK(hub_backoff_ceiling_ms(500, 100, 3) == 500);
  CHECK(hub_backoff_delay_ms(200, 30000, 3, 0.0) == 0);
  CHECK(hub_backoff_delay_ms(200, 30000, 3, 0.999999) == 800);
  CHECK(hub_backoff_delay_ms(200, 30000, 3, 0.5) == 400);
  double sum = 0;
  int64_t lo = 1 << 30, hi = -1;
  for (int i = 0; i < 20000; i++) {
    double u = hub_backoff_random();
    CHECK(u >= 0 && u < 1);
    int64_t d = hub_backoff_delay_ms(100, 10000, 4, u);
    if (d < lo) lo = d;
    if (d > hi) hi = d;
    sum += (double)d;
  }
  CHECK(lo >= 0 && lo < 20 && hi <= 800 && hi > 780); /* full jitter spans [0, 800] */
  CHECK(sum / 20000 > 370 && sum / 20000 < 430);       /* mean ~ 400 */

  /* Records: values are copied and NUL-terminated; binary bytes survive. */
  const char bin[] = {'a', 0, 'b'};
  struct hub_msg *m = hub_msg_new("k", 1, bin, 3);
  CHECK(m && m->value_len == 3 && m->value[1] == 0 && m->value[3] == 0 && m->key_len == 1);
  CHECK(hub_msg_header_add(m, "x", "1", 1) == HUB_OK);
  CHECK(hub_msg_header_add(m, "x", "2", 1) == HUB_OK);
  CHECK(hub_msg_header_add(m, "bin", bin, 3) == HUB_OK);
  CHECK_STR(hub_msg_header_get_str(m, "x"), "1");
  CHECK(hub_msg_header_set_str(m, "x", "3") == HUB_OK);
  CHECK(m->n_headers == 2);
  CHECK_STR(hub_msg_header_get_str(m, "x"), "3");
  CHECK(hub_msg_header_get(m, "bin")->value_len == 3 && hub_msg_header_get(m, "bin")->value[1] == 0);
  CHECK(hub_msg_header_del(m, "x") == 1 && !hub_msg_header_get(m, "x"));
  CHECK(hub_msg_header_del(m, "none") == 0);
  struct hub_msg *d = hub_msg_dup(m);
  CHECK(d && d->value_len == 3 && !memcmp(d->value, bin, 3) && d->n_headers == 1);
  hub_msg_destroy(d);
  hub_msg_destroy(NULL);

  /* DLQ record: original bytes, key and headers plus the error headers. */
  m->partition = 2;
  m->offset = 41;
  hub_msg_set_topic(m, "in.topic");
  struct hub_step_outcome out = {HUB_ERR_SCHEMA, "/a: required: missing", NULL, 0};
  out.detail = (unsigned char *)strdup("canonical bytes");
  out.detail_len = strlen("canonical bytes");
  d = hub_dlq_record_new(m, "r1", "steps[0].validate", &out, 3);
  CHECK(d && d->value_len == 3 && !memcmp(d->value, bin, 3));
  CHECK_STR(hub_msg_header_get_str(d, "lt.error.stage"), "steps[0].validate");
  CHECK_STR(hub_msg_header_get_str(d, "lt.error.code"), "schema");
  CHECK_STR(hub_msg_header_get_str(d, "lt.error.reason"), "/a: required: missing");
  CHECK_STR(hub_msg_header_get_str(d, "lt.origin"), "in.topic/2/41");
  CHECK_STR(hub_msg_header_get_str(d, "lt.attempts"), "3");
  CHECK_STR(hub_msg_header_get_str(d, "lt.route"), "r1");
  CHECK_STR(hub_msg_header_get_str(d, "lt.error.detail"), "canonical bytes");
  CHECK(hub_msg_header_get(d, "bin") != NULL);
  hub_step_outcome_clear(&out);
  hub_msg_destroy(d);
  hub_msg_destroy(m);

  /* UUIDv7: version and variant bits, time-ordered. */
  char a[37], b[37];
  hub_uuid7(a);
  hub_uuid7(b);
  CHECK(strlen(a) == 36 && a[14] == '7' && strchr("89ab", a[19]) && a[8] == '-' && a[23] == '-');
  CHECK(strcmp(a, b) != 0 && strncmp(a, b, 8) <= 0);
  /* Ids across several refills of the per-thread random pool are all distinct. */
  enum { N_IDS = 2000 };
  static char ids[N_IDS][37];
  for (int i = 0; i < N_IDS; i++) hub_uuid7(ids[i]);
  qsort(ids, N_IDS, sizeof ids[0], cmp_id);
  int dup = 0;
  for (int i = 1; i < N_IDS; i++) dup += strcmp(ids[i - 1], ids[i]) == 0;
  CHECK(dup == 0);
  /* A forked child does not repeat the random bits its parent uses next. */
  int fds[2];
  CHECK(pipe(fds) == 0);
  pid_t pid = fork();
  if (pid == 0) {
    char c[37];
    hub_uuid7(c);
    _exit(write(fds[1], c, 36) == 36 ? 0 : 1);
  }
  char child[37] = "", parent[37];
  hub_uuid7(parent);
  CHECK(read(fds[0], child, 36) == 36);
  waitpid(pid, NULL, 0);
  close(fds[0]);
  close(fds[1]);
  CHECK(strcmp(child + 15, parent + 15) != 0);
  char h[65];
  hub_sha256_hex("abc", 3, h);
  CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  return check_done();
}
