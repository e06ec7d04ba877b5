/* The token bucket (hub/io/ratelimit.h): four threads taking tokens as fast as they can for 10 s
 * at 100/s with a burst of 10 get 100 x 10 + 10 within 5%; a call that cannot get a token within
 * its timeout says so at once and takes nothing; a call waits rather than fails; the waits are
 * in /metrics. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "memtest.h"
#include "hub/core/log.h"
#include "hub/core/metrics.h"
#include "hub/io/ratelimit.h"

#define RUN_MS 10000.0

static struct hub_ratelimit *rl;
static atomic_int taken;
static double t_start;

static void *taker(void *p) {
  (void)p;
  while (now_ms() - t_start < RUN_MS)
    if (hub_ratelimit_acquire(rl, 1000) == 0 && now_ms() - t_start < RUN_MS) atomic_fetch_add(&taken, 1);
  return NULL;
}

int main(void) {
  hub_log_set_level(HUB_LOG_ERROR);
  rl = hub_ratelimit_new("rl", "http://127.0.0.1:1", 100, 10);
  CHECK(rl != NULL);
  if (!rl) return check_done();
  pthread_t th[4];
  t_start = now_ms();
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, taker, NULL);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  int n = atomic_load(&taken);
  printf("%d tokens in %.0f ms at 100/s, burst 10 (expected 1010)\n", n, RUN_MS);
  CHECK(n >= 1010 * 0.95 && n <= 1010 * 1.05);
  char *m = hub_metrics_render_new();
  CHECK_CONTAINS(m, "lienthong_ratelimit_waits_total{connector=\"rl\",endpoint=\"http://127.0.0.1:1\"} ");
  CHECK_CONTAINS(m, "lienthong_ratelimit_wait_seconds_total{connector=\"rl\",endpoint=\"http://127.0.0.1:1\"} ");
  free(m);
  hub_ratelimit_destroy(rl);

  /* 2/s, burst 1: the first goes at once; the next is 500 ms away. */
  rl = hub_ratelimit_new("rl2", "e", 2, 1);
  double t0 = now_ms();
  CHECK(hub_ratelimit_acquire(rl, 0) == 0 && now_ms() - t0 < 20);
  t0 = now_ms();
  CHECK(hub_ratelimit_acquire(rl, 200) == -1); /* not within 200 ms: refused at once, nothing taken */
  CHECK(now_ms() - t0 < 20);
  t0 = now_ms();
  CHECK(hub_ratelimit_acquire(rl, 1000) == 0); /* waits for it */
  double waited = now_ms() - t0;
  CHECK(waited >= 480 && waited < 620);
  hub_ratelimit_destroy(rl);
  hub_ratelimit_destroy(NULL);
  m = hub_metrics_render_new();
  CHECK(!strstr(m, "connector=\"rl"));
  free(m);
  return check_done();
}
