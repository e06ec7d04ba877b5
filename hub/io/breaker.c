/* The circuit breaker (breaker.h) and its series in /metrics. */
#include "hub/io/breaker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/log.h"
#include "hub/core/metrics.h"
#include "hub/io/endpoint_list.h"

struct hub_breaker {
  struct hub_endpoint_entry e; /* first: listed for /metrics */
  int threshold;
  int64_t open_for_ms;
  pthread_mutex_t mu;
  enum hub_breaker_state state;
  int consecutive;     /* failures in a row while closed */
  int64_t opened_at;   /* when it last opened */
  int probing;         /* a half-open probe is out */
  unsigned long long opened_total;
};

static struct hub_endpoint_list list = HUB_ENDPOINT_LIST_INIT;

static const struct hub_cfg_entry cfg_entries[] = {
    {"failures", HUB_CFG_INT, offsetof(struct hub_breaker_cfg, failures), "5", 0,
     "consecutive failures (5xx, timeout, connection error) that open the breaker (0: never)", NULL, NULL, 0, 1000},
    {"open_for", HUB_CFG_DURATION, offsetof(struct hub_breaker_cfg, open_for_ms), "30s", 0,
     "how long it stays open before one probe may go", NULL, NULL, 10, 3600000},
    {NULL},
};
const struct hub_cfg_map hub_breaker_cfg_map = {"breaker", cfg_entries};

struct hub_breaker *hub_breaker_new_from(const char *connector, const char *endpoint, const struct hub_breaker_cfg *c) {
  return hub_breaker_new(connector, endpoint, (int)c->failures, c->open_for_ms);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *state_name(enum hub_breaker_state s) {
  return s == HUB_BREAKER_CLOSED ? "closed" : s == HUB_BREAKER_OPEN ? "open" : "half-open";
}

static char *render_new(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  pthread_mutex_lock(&list.mu);
  if (list.head) {
    fputs("# HELP lienthong_breaker_state Circuit breaker per endpoint: 0 closed, 1 open, 2 half-open (probing).\n"
          "# TYPE lienthong_breaker_state gauge\n",
          f);
    for (struct hub_endpoint_entry *x = list.head; x; x = x->next) {
      struct hub_breaker *b = (struct hub_breaker *)x;
      pthread_mutex_lock(&b->mu);
      fprintf(f, "lienthong_breaker_state{connector=\"%s\",endpoint=\"%s\"} %d\n", b->e.connector, b->e.endpoint,
              (int)b->state);
      pthread_mutex_unlock(&b->mu);
    }
    fputs("# HELP lienthong_breaker_opened_total Times a circuit breaker opened (or reopened after a failed probe).\n"
          "# TYPE lienthong_breaker_opened_total counter\n",
          f);
    for (struct hub_endpoint_entry *x = list.head; x; x = x->next) {
      struct hub_breaker *b = (struct hub_breaker *)x;
      pthread_mutex_lock(&b->mu);
      fprintf(f, "lienthong_breaker_opened_total{connector=\"%s\",endpoint=\"%s\"} %llu\n", b->e.connector,
              b->e.endpoint, b->opened_total);
      pthread_mutex_unlock(&b->mu);
    }
  }
  pthread_mutex_unlock(&list.mu);
  fclose(f);
  return text;
}

static struct hub_metric_family family = {render_new};

struct hub_breaker *hub_breaker_new(const char *connector, const char *endpoint, int failures, int64_t open_for_ms) {
  struct hub_breaker *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->threshold = failures;
  b->open_for_ms = open_for_ms;
  pthread_mutex_init(&b->mu, NULL);
  hub_metrics_register_family(&family);
  if (hub_endpoint_list_add(&list, &b->e, connector, endpoint) != 0) {
    pthread_mutex_destroy(&b->mu);
    free(b);
    return NULL;
  }
  return b;
}

void hub_breaker_destroy(struct hub_breaker *b) {
  if (!b) return;
  hub_endpoint_list_remove(&list, &b->e);
  pthread_mutex_destroy(&b->mu);
  free(b);
}

int hub_breaker_allow(struct hub_breaker *b, int64_t *retry_in_ms) {
  int ok = 1;
  pthread_mutex_lock(&b->mu);
  int64_t now = now_ms(), left = b->opened_at + b->open_for_ms - now;
  if (b->state == HUB_BREAKER_OPEN && left <= 0) {
    b->state = HUB_BREAKER_HALF_OPEN; /* this caller is the probe */
    b->probing = 1;
    hub_log(HUB_LOG_INFO, "breaker", "%s: probing %s", b->e.connector, b->e.endpoint);
  } else if (b->state == HUB_BREAKER_OPEN || (b->state == HUB_BREAKER_HALF_OPEN && b->probing)) {
    ok = 0;
    if (retry_in_ms) *retry_in_ms = left > 0 ? left : b->open_for_ms;
  } else if (b->state == HUB_BREAKER_HALF_OPEN) {
    b->probing = 1;
  }
  pthread_mutex_unlock(&b->mu);
  return ok;
}

void hub_breaker_record(struct hub_breaker *b, int success) {
  pthread_mutex_lock(&b->mu);
  if (success) {
    if (b->state != HUB_BREAKER_CLOSED)
      hub_log(HUB_LOG_INFO, "breaker", "%s: %s answered, breaker closed", b->e.connector, b->e.endpoint);
    b->state = HUB_BREAKER_CLOSED;
    b->consecutive = 0;
    b->probing = 0;
  } else if (b->state == HUB_BREAKER_HALF_OPEN || (b->threshold > 0 && ++b->consecutive >= b->threshold)) {
    if (b->state != HUB_BREAKER_OPEN) {
      b->opened_total++;
      hub_log(HUB_LOG_WARN, "breaker", "%s: %s failed %s; breaker open for %lld ms", b->e.connector, b->e.endpoint,
              b->state == HUB_BREAKER_HALF_OPEN ? "its probe" : "too often in a row", (long long)b->open_for_ms);
    }
    b->state = HUB_BREAKER_OPEN;
    b->opened_at = now_ms();
    b->consecutive = 0;
    b->probing = 0;
  }
  pthread_mutex_unlock(&b->mu);
}

void hub_breaker_cancel(struct hub_breaker *b) {
  pthread_mutex_lock(&b->mu);
  b->probing = 0;
  pthread_mutex_unlock(&b->mu);
}

enum hub_breaker_state hub_breaker_get_state(struct hub_breaker *b) {
  pthread_mutex_lock(&b->mu);
  enum hub_breaker_state s = b->state;
  pthread_mutex_unlock(&b->mu);
  return s;
}

int hub_breaker_health(struct hub_breaker *b, char *why, size_t why_size) {
  pthread_mutex_lock(&b->mu);
  enum hub_breaker_state s = b->state;
  int64_t left = b->opened_at + b->open_for_ms - now_ms();
  pthread_mutex_unlock(&b->mu);
  if (s == HUB_BREAKER_CLOSED) return 1;
  if (s == HUB_BREAKER_OPEN && left > 0)
    snprintf(why, why_size, "circuit breaker for %s is open (probe in %lld ms)", b->e.endpoint, (long long)left);
  else
    snprintf(why, why_size, "circuit breaker for %s is %s (waiting for a probe to succeed)", b->e.endpoint,
             state_name(s));
  return 0;
}
