/* Metrics registry and Prometheus rendering (see metrics.h). */
#include "hub/core/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* A route stuck longer than this in one call to the cluster is not ready. */
#define STALE_MS 5000

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void hub_metrics_heartbeat(struct hub_route_metrics *m) { atomic_store(&m->heartbeat_ms, mono_ms()); }

static const double bucket_le[HUB_LATENCY_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                      0.25,  0.5,    1,     2.5,  5,     10,  30};
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char cluster_error[400]; /* hub_metrics_note_cluster_error */
static int64_t cluster_error_ms;
static struct hub_route_metrics *routes;
static struct hub_connector_metrics *connectors;
static struct hub_metric_counter *_Atomic counters; /* pushed once each, never removed */
static struct hub_metric_family *_Atomic families;   /* likewise */

void hub_metrics_register_family(struct hub_metric_family *f) {
  if (atomic_exchange(&f->registered, 1)) return;
  f->next = atomic_load(&families);
  while (!atomic_compare_exchange_weak(&families, &f->next, f)) {
  }
}

void hub_metrics_register_counter(struct hub_metric_counter *c) {
  if (atomic_exchange(&c->registered, 1)) return;
  c->next = atomic_load(&counters);
  while (!atomic_compare_exchange_weak(&counters, &c->next, c)) {
  }
}

struct hub_connector_metrics *hub_metrics_connector_create(const char *name, const char *kind) {
  struct hub_connector_metrics *m = calloc(1, sizeof *m);
  if (!m || !(m->name = strdup(name))) {
    free(m);
    return NULL;
  }
  m->kind = kind;
  pthread_mutex_lock(&lock);
  m->next = connectors;
  connectors = m;
  pthread_mutex_unlock(&lock);
  return m;
}

void hub_metrics_connector_set_state(struct hub_connector_metrics *m, void *state) {
  pthread_mutex_lock(&lock); /* render and ready call health under it */
  m->state = state;
  pthread_mutex_unlock(&lock);
}

/* The connector's own word on its health (1 when it has none to give). */
static int connector_healthy(struct hub_connector_metrics *m, char *why, size_t why_size) {
  void *state = m->state;
  snprintf(why, why_size, "ok");
  return !m->health || !state || m->health(state, why, why_size);
}

struct hub_route_metrics *hub_metrics_route_create(const char *route) {
  struct hub_route_metrics *m = calloc(1, sizeof *m);
  if (!m || !(m->route = strdup(route))) {
    free(m);
    return NULL;
  }
  atomic_store(&m->lag, -1);
  pthread_mutex_lock(&lock);
  struct hub_route_metrics **p = &routes;
  while (*p) p = &(*p)->next;
  *p = m;
  pthread_mutex_unlock(&lock);
  return m;
}

void hub_metrics_reset(void) {
  pthread_mutex_lock(&lock);
  cluster_error_ms = 0;
  while (routes) {
    struct hub_route_metrics *n = routes->next;
    free(routes->route);
    free(routes);
    routes = n;
  }
  while (connectors) {
    struct hub_connector_metrics *n = connectors->next;
    free(connectors->name);
    free(connectors);
    connectors = n;
  }
  pthread_mutex_unlock(&lock);
}

void hub_metrics_observe_latencies(struct hub_route_metrics *m, double now, const double *t0, size_t n) {
  unsigned long long count[HUB_LATENCY_BUCKETS] = {0};
  double sum = 0;
  for (size_t k = 0; k < n; k++) {
    double seconds = now - t0[k];
    int i = 0;
    while (i < HUB_LATENCY_BUCKETS && seconds > bucket_le[i]) i++;
    if (i < HUB_LATENCY_BUCKETS) count[i]++;
    sum += seconds;
  }
  for (int i = 0; i < HUB_LATENCY_BUCKETS; i++)
    if (count[i]) atomic_fetch_add(&m->latency_bucket[i], count[i]);
  atomic_fetch_add(&m->latency_count, n);
  atomic_fetch_add(&m->latency_sum_us, (unsigned long long)(sum * 1e6));
}

static int64_t status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  int64_t v = -1;
  size_t fl = strlen(field);
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, field, fl) && line[fl] == ':') {
      v = strtoll(line + fl + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return v < 0 ? -1 : v * 1024;
}

int64_t hub_metrics_rss_bytes(void) { return status_kb("VmRSS"); }
int64_t hub_metrics_peak_rss_bytes(void) { return status_kb("VmHWM"); }

struct buf {
  char *p;
  size_t len, cap;
};

static void add(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct buf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (b->p && b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
    char *np = realloc(b->p, cap);
    if (!np) return;
    b->p = np;
    b->cap = cap;
  }
}

#define COUNTER(name, help, field)                                                                   \
  do {                                                                                               \
    add(&b, "# HELP lienthong_route_" name "_total " help "\n# TYPE lienthong_route_" name "_total counter\n"); \
    for (struct hub_route_metrics *m = routes; m; m = m->next)                                       \
      add(&b, "lienthong_route_" name "_total{route=\"%s\"} %llu\n", m->route, (unsigned long long)atomic_load(&m->field)); \
  } while (0)

char *hub_metrics_render_new(void) {
  struct buf b = {0};
  pthread_mutex_lock(&lock);
  COUNTER("consumed", "Records read from the route's input topic (re-reads after an abort included).", consumed);
  COUNTER("produced", "Records committed to the route's output topic.", produced);
  COUNTER("rejected", "Records a step rejected.", rejected);
  COUNTER("retried", "Step retries after a RETRY answer.", retried);
  COUNTER("dlq", "Records committed to the route's dead-letter topic.", dlq);
  COUNTER("aborted", "Transactions aborted and redone.", aborted);
  add(&b, "# HELP lienthong_route_consumer_lag Records not yet consumed on the assigned partitions.\n"
          "# TYPE lienthong_route_consumer_lag gauge\n");
  for (struct hub_route_metrics *m = routes; m; m = m->next)
    add(&b, "lienthong_route_consumer_lag{route=\"%s\"} %lld\n", m->route, (long long)atomic_load(&m->lag));
  add(&b, "# HELP lienthong_route_assigned_partitions Partitions assigned to this instance.\n"
          "# TYPE lienthong_route_assigned_partitions gauge\n");
  for (struct hub_route_metrics *m = routes; m; m = m->next)
    add(&b, "lienthong_route_assigned_partitions{route=\"%s\"} %d\n", m->route, atomic_load(&m->assigned));
  add(&b, "# HELP lienthong_route_held_partitions Partitions paused while a record waits for its retry.\n"
          "# TYPE lienthong_route_held_partitions gauge\n");
  for (struct hub_route_metrics *m = routes; m; m = m->next)
    add(&b, "lienthong_route_held_partitions{route=\"%s\"} %d\n", m->route, atomic_load(&m->held));
  if (connectors) {
    add(&b, "# HELP lienthong_connector_records_total Records a source committed to its topic, or a sink delivered.\n"
            "# TYPE lienthong_connector_records_total counter\n");
    for (struct hub_connector_metrics *m = connectors; m; m = m->next)
      add(&b, "lienthong_connector_records_total{connector=\"%s\",kind=\"%s\"} %llu\n", m->name, m->kind,
          (unsigned long long)atomic_load(&m->records));
    add(&b, "# HELP lienthong_connector_failures_total Source emits that failed (not acknowledged to the caller), or "
            "sink deliveries answered RETRY or REJECT.\n# TYPE lienthong_connector_failures_total counter\n");
    for (struct hub_connector_metrics *m = connectors; m; m = m->next)
      add(&b, "lienthong_connector_failures_total{connector=\"%s\",kind=\"%s\"} %llu\n", m->name, m->kind,
          (unsigned long long)atomic_load(&m->failures));
    add(&b, "# HELP lienthong_connector_commits_total Transactions a source committed (records and cursor).\n"
            "# TYPE lienthong_connector_commits_total counter\n");
    for (struct hub_connector_metrics *m = connectors; m; m = m->next)
      if (!strcmp(m->kind, "source"))
        add(&b, "lienthong_connector_commits_total{connector=\"%s\"} %llu\n", m->name,
            (unsigned long long)atomic_load(&m->commits));
    add(&b, "# HELP lienthong_connector_paused 1 while a source is paused because the transport cannot take writes.\n"
            "# TYPE lienthong_connector_paused gauge\n");
    for (struct hub_connector_metrics *m = connectors; m; m = m->next)
      if (!strcmp(m->kind, "source"))
        add(&b, "lienthong_connector_paused{connector=\"%s\"} %d\n", m->name, atomic_load(&m->paused));
    add(&b, "# HELP lienthong_connector_up 1 when the connector reports itself healthy.\n"
            "# TYPE lienthong_connector_up gauge\n");
    for (struct hub_connector_metrics *m = connectors; m; m = m->next) {
      char why[256];
      add(&b, "lienthong_connector_up{connector=\"%s\",kind=\"%s\"} %d\n", m->name, m->kind,
          connector_healthy(m, why, sizeof why));
    }
  }
  add(&b, "# HELP lienthong_route_latency_seconds Time from consuming a record to committing its result.\n"
          "# TYPE lienthong_route_latency_seconds histogram\n");
  for (struct hub_route_metrics *m = routes; m; m = m->next) {
    unsigned long long cum = 0;
    for (int i = 0; i < HUB_LATENCY_BUCKETS; i++) {
      cum += atomic_load(&m->latency_bucket[i]);
      add(&b, "lienthong_route_latency_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", m->route, bucket_le[i], cum);
    }
    add(&b, "lienthong_route_latency_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", m->route,
        (unsigned long long)atomic_load(&m->latency_count));
    add(&b, "lienthong_route_latency_seconds_sum{route=\"%s\"} %.6f\n", m->route,
        (double)atomic_load(&m->latency_sum_us) / 1e6);
    add(&b, "lienthong_route_latency_seconds_count{route=\"%s\"} %llu\n", m->route,
        (unsigned long long)atomic_load(&m->latency_count));
  }
  pthread_mutex_unlock(&lock);
  add(&b, "# HELP lienthong_process_resident_memory_bytes Resident set size.\n"
          "# TYPE lienthong_process_resident_memory_bytes gauge\n"
          "lienthong_process_resident_memory_bytes %lld\n",
      (long long)hub_metrics_rss_bytes());
  for (struct hub_metric_counter *c = atomic_load(&counters); c; c = c->next)
    add(&b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", c->name, c->help, c->name, c->name,
        (unsigned long long)atomic_load(&c->value));
  for (struct hub_metric_family *f = atomic_load(&families); f; f = f->next) {
    char *text = f->render_new();
    if (text) add(&b, "%s", text);
    free(text);
  }
  add(&b, "# HELP lienthong_process_peak_resident_memory_bytes Peak resident set size.\n"
          "# TYPE lienthong_process_peak_resident_memory_bytes gauge\n"
          "lienthong_process_peak_resident_memory_bytes %lld\n",
      (long long)hub_metrics_peak_rss_bytes());
  return b.p;
}

void hub_metrics_note_cluster_error(const char *text) {
  pthread_mutex_lock(&lock);
  snprintf(cluster_error, sizeof cluster_error, "%s", text);
  cluster_error_ms = mono_ms();
  pthread_mutex_unlock(&lock);
}

/* With the lock held: appends the recent cluster error, if any, to a route's waiting reason. */
static void add_cluster_error(char *why, size_t why_size) {
  size_t n = strlen(why);
  if (cluster_error_ms && mono_ms() - cluster_error_ms < 120000 && n < why_size)
    snprintf(why + n, why_size - n, " (%s)", cluster_error);
}

int hub_metrics_ready(char *why, size_t why_size) {
  int ready = 1;
  pthread_mutex_lock(&lock);
  if (!routes && !connectors) {
    snprintf(why, why_size, "no routes running");
    ready = 0;
  }
  for (struct hub_route_metrics *m = routes; m && ready; m = m->next) {
    if (!atomic_load(&m->running)) {
      snprintf(why, why_size, "route %s is not running", m->route);
      ready = 0;
    } else if (mono_ms() - atomic_load(&m->heartbeat_ms) > STALE_MS) {
      snprintf(why, why_size, "route %s has been waiting on the cluster for %lld s", m->route,
               (long long)(mono_ms() - atomic_load(&m->heartbeat_ms)) / 1000);
      add_cluster_error(why, why_size);
      ready = 0;
    } else if (!atomic_load(&m->connected)) {
      snprintf(why, why_size, "route %s is not connected to the cluster", m->route);
      add_cluster_error(why, why_size);
      ready = 0;
    } else if (atomic_load(&m->assigned) <= 0) {
      snprintf(why, why_size, "route %s has no partitions assigned", m->route);
      ready = 0;
    }
  }
  for (struct hub_connector_metrics *m = connectors; m && ready; m = m->next) {
    char reason[256];
    if (!strcmp(m->kind, "source") && !atomic_load(&m->running)) {
      snprintf(why, why_size, "connector %s is not running", m->name);
      ready = 0;
    } else if (atomic_load(&m->paused)) {
      snprintf(why, why_size, "connector %s is paused: the transport cannot take its writes", m->name);
      ready = 0;
    } else if (!connector_healthy(m, reason, sizeof reason)) {
      snprintf(why, why_size, "connector %s: %s", m->name, reason);
      ready = 0;
    }
  }
  if (ready) snprintf(why, why_size, "ready");
  pthread_mutex_unlock(&lock);
  return ready;
}
