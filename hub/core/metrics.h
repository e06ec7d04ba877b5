/* Process-wide metrics: counters per route, a latency histogram, consumer lag and the
 * process's memory, rendered in the Prometheus text format for /metrics. Route threads
 * update atomics; the admin thread reads them. */
#ifndef HUB_METRICS_H
#define HUB_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define HUB_LATENCY_BUCKETS 14

struct hub_route_metrics {
  char *route;
  atomic_ullong consumed, produced, rejected, retried, dlq, aborted;
  atomic_llong lag;      /* -1 unknown */
  atomic_int assigned;   /* partitions */
  atomic_int connected;  /* 1 when the last cluster contact succeeded */
  atomic_int running;    /* route thread alive */
  atomic_int held;       /* partitions paused while a record waits for its retry */
  atomic_llong heartbeat_ms; /* monotonic ms when the route last came round its loop */
  atomic_ullong latency_bucket[HUB_LATENCY_BUCKETS]; /* cumulative counts are made when rendering */
  atomic_ullong latency_count;
  atomic_ullong latency_sum_us;
  struct hub_route_metrics *next;
};

/* A connector's counters and its health. `health` (with `state`) is the plugin's and is called
 * from the admin thread; the engine sets both after creating the plugin. */
struct hub_connector_metrics {
  char *name;
  const char *kind; /* "source" or "sink" */
  atomic_ullong records;  /* source: records committed; sink: records delivered */
  atomic_ullong failures; /* source: emits that failed (the caller was not acknowledged); sink: RETRY/REJECT answers */
  atomic_ullong commits;  /* source: transactions committed (group commit: several emits each) */
  atomic_int paused;      /* source: paused for backpressure */
  atomic_int running;     /* source: started and not stopped (a sink's route says it for the sink) */
  int (*health)(void *state, char *why, size_t why_size);
  void *state; /* under the metrics lock: hub_metrics_connector_set_state */
  struct hub_connector_metrics *next;
};
struct hub_connector_metrics *hub_metrics_connector_create(const char *name, const char *kind);
/* Sets (or, with NULL, clears) the state passed to `health`; after it returns no call with the
 * old state is running, so the plugin may be destroyed. */
void hub_metrics_connector_set_state(struct hub_connector_metrics *m, void *state);

/* Registers a route's metrics (owned by the registry until hub_metrics_reset). */
struct hub_route_metrics *hub_metrics_route_create(const char *route);
/* Records the latency from consume to commit of n records consumed at t0[i] (seconds) and
 * committed at `now`: one atomic update per bucket, not per record. */
void hub_metrics_observe_latencies(struct hub_route_metrics *m, double now, const double *t0, size_t n);
/* Prometheus text; malloc'd. */
char *hub_metrics_render_new(void);
/* 1 when every registered route runs, is connected and has partitions assigned, and every
 * connector is running and healthy. */
int hub_metrics_ready(char *why, size_t why_size);
/* The latest error from the cluster that no route sees as a return value (a refused login,
 * reported by librdkafka's own thread): /ready names it, for two minutes, while a route waits
 * on the cluster. The text must hold no secret. */
void hub_metrics_note_cluster_error(const char *text);
void hub_metrics_reset(void);
/* Marks the route as alive now (its loop came round, or it is waiting in a backoff). */
void hub_metrics_heartbeat(struct hub_route_metrics *m);

/* A process-wide counter that a plugin owns (static storage) and registers once; rendered in
 * /metrics under `name` with `help`. Registering the same counter again does nothing. */
struct hub_metric_counter {
  const char *name, *help;
  atomic_ullong value;
  atomic_int registered;
  struct hub_metric_counter *next;
};
void hub_metrics_register_counter(struct hub_metric_counter *c);

/* Labelled series a library owns (the HTTP client's breakers and rate limits, one per
 * connector and endpoint): `render_new` returns their Prometheus text (HELP, TYPE, samples),
 * malloc'd, or NULL. Static storage, registered once; called from the admin thread. */
struct hub_metric_family {
  char *(*render_new)(void);
  atomic_int registered;
  struct hub_metric_family *next;
};
void hub_metrics_register_family(struct hub_metric_family *f);

/* Resident set size now and at its peak, in bytes (from /proc/self/status); -1 if unknown. */
int64_t hub_metrics_rss_bytes(void);
int64_t hub_metrics_peak_rss_bytes(void);

#endif
