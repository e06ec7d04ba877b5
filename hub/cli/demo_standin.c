/* `lienthong demo`: the in-process HTTP stand-in every simulated system shares (libmicrohttpd in
 * its own thread): it gathers the body, lets the system's handler answer, and keeps a line per
 * request so the demo prints what each system received and when. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo.h"

#define BODY_MAX (1 << 20)

double demo_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct upload {
  char *buf;
  size_t n;
  int too_big;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **ctx) {
  struct demo_standin *s = cls;
  (void)version;
  if (!*ctx) {
    *ctx = calloc(1, sizeof(struct upload));
    return *ctx ? MHD_YES : MHD_NO;
  }
  struct upload *u = *ctx;
  if (*size) {
    char *b = u->n + *size <= BODY_MAX ? realloc(u->buf, u->n + *size + 1) : NULL;
    if (!b) {
      u->too_big = 1;
    } else {
      memcpy(b + u->n, data, *size);
      u->buf = b;
      u->n += *size;
      u->buf[u->n] = '\0';
    }
    *size = 0;
    return MHD_YES;
  }
  int status = 500;
  char *answer = NULL;
  if (u->too_big) {
    status = 413;
    demo_standin_record(s, "refused %s %s: body over 1 MiB", method, url);
  } else {
    s->handle(s, conn, method, url, u->buf ? u->buf : "", u->n, &status, &answer);
  }
  if (!answer) answer = strdup("{}");
  struct MHD_Response *r =
      MHD_create_response_from_buffer(answer ? strlen(answer) : 0, answer ? answer : "", MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, "Content-Type", "application/json");
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode t) {
  (void)cls, (void)c, (void)t;
  struct upload *u = *ctx;
  if (u) free(u->buf);
  free(u);
  *ctx = NULL;
}

int demo_standin_start(struct demo_standin *s, int port, demo_handler h, void *state) {
  pthread_mutex_init(&s->mu, NULL);
  s->handle = h;
  s->state = state;
  s->port = port;
  s->d = port > 0 ? MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, on_request, s,
                                     MHD_OPTION_NOTIFY_COMPLETED, on_done, s, MHD_OPTION_END)
                  : NULL;
  return s->d ? 0 : -1;
}

void demo_standin_stop(struct demo_standin *s) {
  if (s->d) MHD_stop_daemon(s->d);
  s->d = NULL;
}

void demo_standin_record(struct demo_standin *s, const char *fmt, ...) {
  pthread_mutex_lock(&s->mu);
  if (s->n < (int)(sizeof s->calls / sizeof *s->calls)) {
    va_list ap;
    va_start(ap, fmt);
    s->calls[s->n].at = demo_now();
    vsnprintf(s->calls[s->n].what, sizeof s->calls[s->n].what, fmt, ap);
    va_end(ap);
    s->n++;
  }
  pthread_mutex_unlock(&s->mu);
}

double demo_standin_find(struct demo_standin *s, const char *prefix, char *what, size_t what_size) {
  double at = 0;
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < s->n && !at; i++)
    if (!strncmp(s->calls[i].what, prefix, strlen(prefix))) {
      at = s->calls[i].at;
      if (what) snprintf(what, what_size, "%s", s->calls[i].what);
    }
  pthread_mutex_unlock(&s->mu);
  if (!at && what && what_size) *what = '\0';
  return at;
}

int demo_standin_count(struct demo_standin *s, const char *prefix) {
  int k = 0;
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < s->n; i++) k += !strncmp(s->calls[i].what, prefix, strlen(prefix));
  pthread_mutex_unlock(&s->mu);
  return k;
}
