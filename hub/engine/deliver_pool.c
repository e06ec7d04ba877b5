/* The deliver pool (deliver_pool.h): workers wait on a condition variable for a run, take
 * indexes from a shared counter until none is left, and the last one to finish wakes the
 * caller. A run is the whole wave of one route; there is never more than one at a time. */
#include "hub/engine/deliver_pool.h"

#include <pthread.h>
#include <stdlib.h>

#include "hub/core/log.h"

struct hub_deliver_pool {
  pthread_mutex_t mu;
  pthread_cond_t work, done;
  pthread_t *threads;
  size_t n_threads;
  const char *route;
  /* the current run */
  hub_deliver_fn fn;
  void *ctx;
  size_t n, next, finished;
  unsigned long gen; /* bumped per run, so a worker takes part in each run once it saw it */
  int stopping;
};

/* Takes indexes of the current run until none is left; called with mu held, returns with it held. */
static void work_on(struct hub_deliver_pool *p) {
  while (p->next < p->n) {
    size_t i = p->next++;
    hub_deliver_fn fn = p->fn;
    void *ctx = p->ctx;
    pthread_mutex_unlock(&p->mu);
    fn(ctx, i);
    pthread_mutex_lock(&p->mu);
    if (++p->finished == p->n) pthread_cond_broadcast(&p->done);
  }
}

static void *worker(void *arg) {
  struct hub_deliver_pool *p = arg;
  hub_log_set_context("route", p->route);
  unsigned long seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stopping && p->gen == seen) pthread_cond_wait(&p->work, &p->mu);
    if (p->stopping) break;
    seen = p->gen;
    work_on(p);
  }
  pthread_mutex_unlock(&p->mu);
  hub_log_set_context(NULL, NULL);
  return NULL;
}

struct hub_deliver_pool *hub_deliver_pool_new(size_t threads, const char *route) {
  struct hub_deliver_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  if (!(p->threads = calloc(threads ? threads : 1, sizeof *p->threads))) {
    free(p);
    return NULL;
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->done, NULL);
  p->route = route;
  for (size_t i = 0; i < threads; i++) {
    if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
      hub_deliver_pool_destroy(p);
      return NULL;
    }
    p->n_threads++;
  }
  return p;
}

void hub_deliver_pool_run(struct hub_deliver_pool *p, hub_deliver_fn fn, void *ctx, size_t n) {
  if (n == 0) return;
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->ctx = ctx;
  p->n = n;
  p->next = p->finished = 0;
  p->gen++;
  /* Wake only the workers this run can use (the caller takes one index itself): a wave of
   * two records should not cost fifteen context switches. */
  for (size_t w = 1; w < n && w <= p->n_threads; w++) pthread_cond_signal(&p->work);
  work_on(p);
  while (p->finished < p->n) pthread_cond_wait(&p->done, &p->mu);
  p->n = p->next = p->finished = 0;
  pthread_mutex_unlock(&p->mu);
}

void hub_deliver_pool_destroy(struct hub_deliver_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stopping = 1;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->mu);
  for (size_t i = 0; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
  pthread_cond_destroy(&p->done);
  pthread_cond_destroy(&p->work);
  pthread_mutex_destroy(&p->mu);
  free(p->threads);
  free(p);
}
