/* The token bucket (ratelimit.h) and its series in /metrics. The bucket is kept as the time
 * at which it would be empty-but-refilled ("theoretical arrival time", as in GCRA): taking a
 * token moves it one interval on, so concurrent callers reserve successive slots under a lock
 * and sleep outside it. */
#include "hub/io/ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/metrics.h"
#include "hub/io/endpoint_list.h"
#include "hub/core/stop.h"

struct hub_ratelimit {
  struct hub_endpoint_entry e; /* first: listed for /metrics */
  double interval_ms, burst_ms; /* one token; the whole burst */
  pthread_mutex_t mu;
  double tat; /* ms: when the bucket is full again if nobody takes more */
  unsigned long long waits, wait_us;
};

static struct hub_endpoint_list list = HUB_ENDPOINT_LIST_INIT;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static char *render_new(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  pthread_mutex_lock(&list.mu);
  if (list.head) {
    fputs("# HELP lienthong_ratelimit_waits_total Calls that waited for a rate-limit token.\n"
          "# TYPE lienthong_ratelimit_waits_total counter\n",
          f);
    for (struct hub_endpoint_entry *x = list.head; x; x = x->next) {
      struct hub_ratelimit *r = (struct hub_ratelimit *)x;
      pthread_mutex_lock(&r->mu);
      fprintf(f, "lienthong_ratelimit_waits_total{connector=\"%s\",endpoint=\"%s\"} %llu\n", r->e.connector,
              r->e.endpoint, r->waits);
      pthread_mutex_unlock(&r->mu);
    }
    fputs("# HELP lienthong_ratelimit_wait_seconds_total Time calls spent waiting for rate-limit tokens.\n"
          "# TYPE lienthong_ratelimit_wait_seconds_total counter\n",
          f);
    for (struct hub_endpoint_entry *x = list.head; x; x = x->next) {
      struct hub_ratelimit *r = (struct hub_ratelimit *)x;
      pthread_mutex_lock(&r->mu);
      fprintf(f, "lienthong_ratelimit_wait_seconds_total{connector=\"%s\",endpoint=\"%s\"} %.6f\n", r->e.connector,
              r->e.endpoint, (double)r->wait_us / 1e6);
      pthread_mutex_unlock(&r->mu);
    }
  }
  pthread_mutex_unlock(&list.mu);
  fclose(f);
  return text;
}

static struct hub_metric_family family = {render_new};

struct hub_ratelimit *hub_ratelimit_new(const char *connector, const char *endpoint, double per_second,
                                        int64_t burst) {
  if (per_second <= 0) return NULL;
  struct hub_ratelimit *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->interval_ms = 1000.0 / per_second;
  r->burst_ms = r->interval_ms * (double)(burst < 1 ? 1 : burst);
  pthread_mutex_init(&r->mu, NULL);
  hub_metrics_register_family(&family);
  if (hub_endpoint_list_add(&list, &r->e, connector, endpoint) != 0) {
    pthread_mutex_destroy(&r->mu);
    free(r);
    return NULL;
  }
  return r;
}

void hub_ratelimit_destroy(struct hub_ratelimit *r) {
  if (!r) return;
  hub_endpoint_list_remove(&list, &r->e);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

int hub_ratelimit_acquire(struct hub_ratelimit *r, int64_t timeout_ms) {
  pthread_mutex_lock(&r->mu);
  double now = now_ms(), tat = r->tat > now ? r->tat : now;
  /* The token is due when the bucket, after this one, holds no more than a burst's worth. */
  double due = tat + r->interval_ms - r->burst_ms, wait = due - now;
  if (wait > (double)timeout_ms) {
    pthread_mutex_unlock(&r->mu);
    return -1;
  }
  r->tat = tat + r->interval_ms;
  if (wait > 0) {
    r->waits++;
    r->wait_us += (unsigned long long)(wait * 1000.0);
  }
  pthread_mutex_unlock(&r->mu);
  /* Sleep in slices so a stop request is seen; the slot stays taken either way. */
  while (wait > 0) {
    if (hub_stop_requested()) return -1;
    double slice = wait < 100.0 ? wait : 100.0;
    struct timespec ts = {(time_t)(slice / 1000.0), (long)((slice - (double)(time_t)(slice / 1000.0) * 1000.0) * 1e6)};
    nanosleep(&ts, NULL);
    wait = due - now_ms();
  }
  return 0;
}
