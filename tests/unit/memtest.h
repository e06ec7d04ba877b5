/* Helpers shared by the tests that run on the `memory` transport: collecting records (from a
 * scan or a poll), reading a whole topic, and time. Include after check.h; T is the test's
 * transport ops. */
#ifndef LT_TEST_MEMTEST_H
#define LT_TEST_MEMTEST_H

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <stdio.h>

#include "hub/core/config.h"
#include "hub/transport/transport.h"

static const struct hub_transport_ops *T;

/* Records, in the order they came. A scan callback (on_scan) stops after stop_after if set. */
struct coll {
  struct hub_msg **v;
  int n, cap;
  int stop_after;
};

static inline int on_scan(void *ctx, const struct hub_msg *m) {
  struct coll *c = ctx;
  if (c->n == c->cap) {
    int cap = c->cap ? c->cap * 2 : 64;
    struct hub_msg **v = realloc(c->v, (size_t)cap * sizeof *v);
    if (!v) return 1;
    c->v = v;
    c->cap = cap;
  }
  c->v[c->n++] = hub_msg_dup(m);
  return c->stop_after && c->n >= c->stop_after;
}

static inline void coll_clear(struct coll *c) {
  for (int i = 0; i < c->n; i++) hub_msg_destroy(c->v[i]);
  free(c->v);
  memset(c, 0, sizeof *c);
}

/* Every committed record of `topic` into c; 0 if the topic does not exist. */
static inline int scan_topic(const char *topic, struct coll *c) {
  struct hub_transport_opts o = {"test", NULL, NULL, NULL};
  struct hub_transport *t = NULL;
  char e[256];
  int ok = T->open(NULL, &o, &t, e, sizeof e) == HUB_OK && T->scan(t, topic, on_scan, c, e, sizeof e) == HUB_OK;
  if (t) T->close(t);
  return ok;
}

/* Committed records of `topic` (-1 if it does not exist). */
static inline int count(const char *topic) {
  struct coll c = {0};
  int n = scan_topic(topic, &c) ? c.n : -1;
  coll_clear(&c);
  return n;
}

static inline double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static inline void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Writes YAML as DIR/hub.yaml and loads it (NULL, with the error on stderr, when it is refused). */
static inline struct hub_config *config_load_in(const char *dir, const char *yaml) {
  char path[512], e[1024] = "";
  snprintf(path, sizeof path, "%s/hub.yaml", dir);
  FILE *f = fopen(path, "w");
  if (!f) return NULL;
  fputs(yaml, f);
  fclose(f);
  struct hub_config *cfg = NULL;
  if (hub_config_load(path, &cfg, e, sizeof e) != HUB_OK) fprintf(stderr, "config: %s\n", e);
  return cfg;
}

#endif
