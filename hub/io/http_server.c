/* The shared inbound HTTP server (see http_server.h): the registry of servers by listen
 * address, the request handling (exchange_*: path, method, size, body, the route's handlers),
 * libmicrohttpd's access handler that drives it for a socket, hub_http_serve that drives it
 * in-process (the fuzzer), mTLS checks and the per-status counters.
 *
 * Locks: `servers_mu` guards the list of servers and is held while one starts or stops; each
 * server's `mu` guards its routes, their busy/refs counts and the answers being sent. A route
 * lives while the registry or a request holds it (refs); its handlers run only while it is not
 * stopping (busy counts them), so removing it waits for exactly the handlers that use the
 * connector's state. */
#include "hub/io/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "hub/core/files.h"
#include "hub/core/log.h"
#include "hub/core/metrics.h"

#define CONNECTION_LIMIT 256u  /* one thread each */
#define CONNECTION_TIMEOUT 30u /* seconds a connection may sit idle */
#define DRAIN_MS 5000          /* how long the last route's removal waits for answers still being sent */
/* A body that passes max_body without a Content-Length that said so is read on (not kept) for
 * its 413, since libmicrohttpd 0.9 queues an answer only before or after the body; a client
 * that sends this much more loses its connection instead. */
#define DISCARD_MAX (16u * 1024u * 1024u)
#define PEM_MAX (1024u * 1024u)

struct server {
  char *listen, *cert_file, *key_file, *ca_file;
  char *cert, *key, *ca; /* PEM contents, alive while the daemon runs */
  struct MHD_Daemon *d;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct hub_http_route *routes;
  int sending; /* answers queued whose connection has not completed them yet */
  struct server *next;
};

struct hub_http_route {
  struct server *srv;
  char *owner, *path;
  size_t max_body;
  void (*on_headers)(void *, const struct hub_http_request *, struct hub_http_answer *);
  void (*on_request)(void *, const struct hub_http_request *, struct hub_http_answer *);
  void *arg;
  int stopping, busy, refs;
  struct hub_http_route *next;
};

/* One request's progress, from its headers to its completion. */
struct req {
  struct hub_http_route *route;    /* a reference, or NULL */
  struct hub_http_header *headers; /* the strings are libmicrohttpd's (or the caller's) */
  size_t n_headers, cap_headers;
  unsigned char *body;
  size_t len, cap, discarded;
  int too_large, answered, sending, nomem;
};

static pthread_mutex_t servers_mu = PTHREAD_MUTEX_INITIALIZER;
static struct server *servers;

/* Paths connectors will serve once started (hub_http_route_reserve) and do not serve yet. Its
 * own lock: looked up from request handling, which may run under servers_mu (hub_http_serve). */
struct reserved {
  char *listen, *path;
  struct reserved *next;
};
static pthread_mutex_t reserved_mu = PTHREAD_MUTEX_INITIALIZER;
static struct reserved *reserved;

static struct reserved **reserved_find(const char *listen, const char *path) { /* under reserved_mu */
  struct reserved **p = &reserved;
  while (*p && (strcmp((*p)->listen, listen) || strcmp((*p)->path, path)))
    p = &(*p)->next;
  return p;
}

hub_err_t hub_http_route_reserve(const char *listen, const char *path) {
  hub_err_t rc = HUB_OK;
  pthread_mutex_lock(&reserved_mu);
  struct reserved *r = *reserved_find(listen, path);
  if (!r) {
    if ((r = calloc(1, sizeof *r)) && (r->listen = strdup(listen)) && (r->path = strdup(path))) {
      r->next = reserved;
      reserved = r;
    } else {
      if (r) free(r->listen);
      free(r);
      rc = HUB_ERR_NOMEM;
    }
  }
  pthread_mutex_unlock(&reserved_mu);
  return rc;
}

void hub_http_route_unreserve(const char *listen, const char *path) {
  pthread_mutex_lock(&reserved_mu);
  struct reserved **p = reserved_find(listen, path), *r = *p;
  if (r) {
    *p = r->next;
    free(r->listen);
    free(r->path);
    free(r);
  }
  pthread_mutex_unlock(&reserved_mu);
}

static int is_reserved(const char *listen, const char *path) {
  pthread_mutex_lock(&reserved_mu);
  int yes = *reserved_find(listen, path) != NULL;
  pthread_mutex_unlock(&reserved_mu);
  return yes;
}

/* Answers by status code; the last one counts any other code. */
#define COUNTER(code)                                                                                                  \
  { "lienthong_http_requests_" #code "_total", "inbound HTTP requests answered " #code }
static struct hub_metric_counter counters[] = {
    COUNTER(202), COUNTER(400),
    COUNTER(401), COUNTER(404),
    COUNTER(405), COUNTER(413),
    COUNTER(415), COUNTER(500),
    COUNTER(503), {"lienthong_http_requests_other_total", "inbound HTTP requests answered with another status"},
};
static const unsigned counted_codes[] = {202, 400, 401, 404, 405, 413, 415, 500, 503};
#define N_CODES (sizeof counted_codes / sizeof counted_codes[0])

static void count_status(unsigned status) {
  size_t i = 0;
  while (i < N_CODES && counted_codes[i] != status)
    i++;
  atomic_fetch_add(&counters[i].value, 1);
}

/* As libmicrohttpd's own lookup: the first header of that name, case-insensitive. */
const char *hub_http_request_header(const struct hub_http_request *r, const char *name) {
  for (size_t i = 0; i < r->n_headers; i++)
    if (!strcasecmp(r->headers[i].name, name)) return r->headers[i].value;
  return NULL;
}

const unsigned char *hub_http_request_body(const struct hub_http_request *r, size_t *len) {
  *len = r->len;
  return r->body ? r->body : (const unsigned char *)"";
}

/* A JSON string of text that may come from a client: bytes that are not valid UTF-8 become '?'. */
static json_t *safe_string(const char *s) {
  json_t *j = json_string(s);
  if (j) return j;
  char *copy = strdup(s);
  for (char *p = copy; p && *p; p++)
    if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20) *p = '?';
  j = copy ? json_string(copy) : NULL;
  free(copy);
  return j;
}

void hub_http_answer_error(struct hub_http_answer *a, unsigned status, const char *error, const char *fmt, ...) {
  char detail[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  json_t *o = json_object();
  json_object_set_new(o, "error", safe_string(error));
  json_object_set_new(o, "detail", safe_string(detail));
  free(a->body);
  a->body = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  a->status = status;
}

static void route_release(struct hub_http_route *r) { /* under srv->mu */
  if (--r->refs > 0) return;
  free(r->owner);
  free(r->path);
  free(r);
}

/* Queues the answer (its body is consumed); MHD_NO only when libmicrohttpd refuses. */
static enum MHD_Result answer(struct server *s, struct req *q, struct MHD_Connection *c, struct hub_http_answer *a) {
  const char *fallback = "{}";
  char *body = a->body;
  a->body = NULL;
  struct MHD_Response *r = body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE)
                                : MHD_create_response_from_buffer(2, (void *)fallback, MHD_RESPMEM_PERSISTENT);
  if (!r) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", "application/json");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  if (a->retry_after) MHD_add_response_header(r, "Retry-After", a->retry_after);
  if (a->www_authenticate) MHD_add_response_header(r, "WWW-Authenticate", a->www_authenticate);
  if (a->status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", "POST");
  enum MHD_Result ret = MHD_queue_response(c, a->status, r);
  MHD_destroy_response(r);
  if (ret == MHD_YES) {
    count_status(a->status);
    q->answered = 1;
    pthread_mutex_lock(&s->mu);
    s->sending++;
    q->sending = 1;
    pthread_mutex_unlock(&s->mu);
  }
  return ret;
}

/* Runs one of the route's handlers unless the route is stopping (then 503). */
static void call_route(struct server *s, struct req *q, const struct hub_http_request *hr,
                       void (*fn)(void *, const struct hub_http_request *, struct hub_http_answer *),
                       struct hub_http_answer *a) {
  struct hub_http_route *r = q->route;
  pthread_mutex_lock(&s->mu);
  int stopping = r->stopping;
  if (!stopping) r->busy++;
  pthread_mutex_unlock(&s->mu);
  if (stopping) {
    a->retry_after = "5";
    hub_http_answer_error(a, MHD_HTTP_SERVICE_UNAVAILABLE, "stopping", "the connector on %s is stopping", r->path);
    return;
  }
  fn(r->arg, hr, a);
  pthread_mutex_lock(&s->mu);
  r->busy--;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

/* mTLS: the client's certificate chain verified against the server's CA. */
static int client_trusted(struct MHD_Connection *c, struct hub_http_answer *a) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  gnutls_session_t tls = ci ? (gnutls_session_t)ci->tls_session : NULL;
  unsigned status = 0;
  int rc = tls ? gnutls_certificate_verify_peers2(tls, &status) : GNUTLS_E_INVALID_SESSION;
  if (rc == GNUTLS_E_NO_CERTIFICATE_FOUND) {
    hub_http_answer_error(a, MHD_HTTP_UNAUTHORIZED, "client certificate required",
                          "this address accepts only clients with a certificate from its client_ca_file");
    return 0;
  }
  if (rc < 0) {
    hub_http_answer_error(a, MHD_HTTP_UNAUTHORIZED, "client certificate not verified", "%s", gnutls_strerror(rc));
    return 0;
  }
  if (status) {
    gnutls_datum_t why = {NULL, 0};
    gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0);
    hub_http_answer_error(a, MHD_HTTP_UNAUTHORIZED, "client certificate not trusted", "%s",
                          why.data ? (const char *)why.data : "verification failed");
    gnutls_free(why.data);
    return 0;
  }
  return 1;
}

/* The request handling, the same for a socket (handle) and in-process (hub_http_serve). */

/* The headers are in: everything that can be answered before reading a byte of the body. */
static void exchange_head(struct server *s, struct req *q, const struct hub_http_request *hr,
                          struct hub_http_answer *a) {
  pthread_mutex_lock(&s->mu);
  struct hub_http_route *r = s->routes;
  while (r && strcmp(r->path, hr->url))
    r = r->next;
  if (r) {
    r->refs++;
    q->route = r;
  }
  pthread_mutex_unlock(&s->mu);
  if (!r && is_reserved(s->listen, hr->url)) { /* its connector is not started yet: come back */
    a->retry_after = "2";
    hub_http_answer_error(a, MHD_HTTP_SERVICE_UNAVAILABLE, "starting",
                          "the connector on %s is starting (the hub is starting or restarting); retry later", hr->url);
    return;
  }
  if (!r) {
    hub_http_answer_error(a, MHD_HTTP_NOT_FOUND, "not found", "no connector listens on path %s at %s", hr->url,
                          s->listen);
    return;
  }
  if (strcmp(hr->method, "POST")) {
    hub_http_answer_error(a, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", "%s %s: only POST is accepted",
                          hr->method, hr->url);
    return;
  }
  const char *cl = hub_http_request_header(hr, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl && strtoull(cl, NULL, 10) > r->max_body) {
    hub_http_answer_error(a, MHD_HTTP_CONTENT_TOO_LARGE, "body too large",
                          "Content-Length %s is over the %zu bytes that %s accepts", cl, r->max_body, hr->url);
    return;
  }
  if (r->on_headers) call_route(s, q, hr, r->on_headers, a);
}

/* A piece of the body: kept up to max_body, then only counted. 0: drop the connection (out of
 * memory, or far too much past the limit). */
static int exchange_body(struct req *q, const char *data, size_t n) {
  if (q->answered) return 1;
  if (!q->too_large && q->len + n > q->route->max_body) {
    q->too_large = 1; /* keep nothing more */
    free(q->body);
    q->body = NULL;
    q->len = 0;
  }
  if (q->too_large) {
    q->discarded += n;
    return q->discarded <= DISCARD_MAX;
  }
  if (q->len + n + 1 > q->cap) {
    size_t cap = q->cap ? q->cap : 4096;
    while (cap < q->len + n + 1)
      cap *= 2;
    unsigned char *b = realloc(q->body, cap);
    if (!b) return 0;
    q->body = b;
    q->cap = cap;
  }
  memcpy(q->body + q->len, data, n);
  q->len += n;
  q->body[q->len] = '\0';
  return 1;
}

/* The body is complete: the answer. hr has the head; the body is q's. */
static void exchange_end(struct server *s, struct req *q, struct hub_http_request *hr, struct hub_http_answer *a) {
  if (q->too_large) {
    hub_http_answer_error(a, MHD_HTTP_CONTENT_TOO_LARGE, "body too large",
                          "the body is over the %zu bytes that %s accepts", q->route->max_body, hr->url);
    return;
  }
  hr->body = q->body ? q->body : (const unsigned char *)"";
  hr->len = q->len;
  call_route(s, q, hr, q->route->on_request, a);
  if (!a->status)
    hub_http_answer_error(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error", "the connector gave no answer");
}

/* The request is over (answered, or the client went away). */
static void exchange_done(struct server *s, struct req *q) {
  pthread_mutex_lock(&s->mu);
  if (q->sending) s->sending--;
  if (q->route) route_release(q->route);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  free(q->headers);
  free(q->body);
  free(q);
}

/* libmicrohttpd's headers into q (its strings live until the request completes). */
static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *name, const char *value) {
  struct req *q = cls;
  (void)kind;
  if (q->n_headers == q->cap_headers) {
    size_t cap = q->cap_headers ? 2 * q->cap_headers : 16;
    struct hub_http_header *h = realloc(q->headers, cap * sizeof *h);
    if (!h) {
      q->nomem = 1;
      return MHD_NO;
    }
    q->headers = h;
    q->cap_headers = cap;
  }
  q->headers[q->n_headers++] = (struct hub_http_header){name, value ? value : ""};
  return MHD_YES;
}

/* libmicrohttpd's access handler: called once with the headers, once per piece of the body,
 * once at its end; it drives the exchange_* steps and queues their answer. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  struct server *s = cls;
  struct req *q = *con_cls;
  struct hub_http_answer a = {0};
  (void)version;
  if (!q) {
    if (!(q = calloc(1, sizeof *q))) return MHD_NO;
    *con_cls = q;
    MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, q);
    if (q->nomem) return MHD_NO;
    struct hub_http_request hr = {method, url, q->headers, q->n_headers, NULL, 0};
    if (!s->ca || client_trusted(c, &a)) exchange_head(s, q, &hr, &a);
    return a.status ? answer(s, q, c, &a) : MHD_YES;
  }
  if (*upload_size) {
    size_t n = *upload_size;
    *upload_size = 0;
    return exchange_body(q, upload, n) ? MHD_YES : MHD_NO;
  }
  if (q->answered) return MHD_YES;
  struct hub_http_request hr = {method, url, q->headers, q->n_headers, NULL, 0};
  exchange_end(s, q, &hr, &a);
  return answer(s, q, c, &a);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why) {
  struct req *q = *con_cls;
  (void)c, (void)why;
  if (!q) return;
  exchange_done(cls, q);
  *con_cls = NULL;
}

hub_err_t hub_http_serve(const char *listen, const struct hub_http_request *r, size_t chunk, int complete,
                         struct hub_http_answer *a) {
  /* servers_mu is held throughout, so the server cannot stop under the call (a route's removal
   * waits for it). */
  pthread_mutex_lock(&servers_mu);
  struct server *s = servers;
  while (s && strcmp(s->listen, listen))
    s = s->next;
  struct req *q = s ? calloc(1, sizeof *q) : NULL;
  if (!q) {
    pthread_mutex_unlock(&servers_mu);
    return s ? HUB_ERR_NOMEM : HUB_ERR_NOT_FOUND;
  }
  struct hub_http_request hr = {r->method, r->url, r->headers, r->n_headers, NULL, 0};
  exchange_head(s, q, &hr, a);
  q->answered = a->status != 0;
  int open = 1;
  if (!q->answered && r->len && r->body) {
    size_t step = chunk ? chunk : r->len;
    for (size_t off = 0; open && off < r->len; off += step)
      open = exchange_body(q, (const char *)r->body + off, r->len - off < step ? r->len - off : step);
  }
  if (!q->answered && open && complete) exchange_end(s, q, &hr, a);
  exchange_done(s, q);
  pthread_mutex_unlock(&servers_mu);
  return HUB_OK;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  struct server *s = cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  msg[strcspn(msg, "\n")] = '\0';
  hub_log(HUB_LOG_WARN, "http", "%s: %s", s->listen, msg);
}

static int same(const char *a, const char *b) {
  return (!a && !b) || (a && b && !strcmp(a, b));
}

static char *dup_or_null(const char *s) {
  return s && *s ? strdup(s) : NULL;
}

static void server_free(struct server *s) {
  if (!s) return;
  free(s->listen);
  free(s->cert_file);
  free(s->key_file);
  free(s->ca_file);
  free(s->cert);
  free(s->key);
  free(s->ca);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

static hub_err_t read_pem(const char *path, const char *what, char **out, char *errbuf, size_t errbuf_size) {
  size_t len = 0;
  char why[600];
  if (hub_file_read(path, PEM_MAX, out, &len, why, sizeof why) != HUB_OK)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_CONFIG, "%s %s", what, why);
  return HUB_OK;
}

/* A new server for cfg->listen, listening. */
static hub_err_t server_start(const struct hub_http_route_cfg *cfg, struct server **out, char *errbuf,
                              size_t errbuf_size) {
  hub_err_t rc = HUB_OK;
  struct sockaddr_in sa = {.sin_family = AF_INET};
  char host[256];
  const char *colon = strrchr(cfg->listen, ':');
  char *end = NULL;
  long port = colon ? strtol(colon + 1, &end, 10) : -1;
  if (!colon || !end || *end || end == colon + 1 || port < 1 || port > 65535 ||
      (size_t)(colon - cfg->listen) >= sizeof host)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_CONFIG, "listen '%s' must be host:port", cfg->listen);
  memcpy(host, cfg->listen, (size_t)(colon - cfg->listen));
  host[colon - cfg->listen] = '\0';
  if (inet_pton(AF_INET, strcmp(host, "localhost") ? host : "127.0.0.1", &sa.sin_addr) != 1)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_CONFIG, "listen '%s': the host must be an IPv4 address", cfg->listen);
  sa.sin_port = htons((uint16_t)port);
  struct server *s = calloc(1, sizeof *s);
  if (!s) return HUB_ERR_NOMEM;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->listen = strdup(cfg->listen);
  s->cert_file = dup_or_null(cfg->tls.cert_file);
  s->key_file = dup_or_null(cfg->tls.key_file);
  s->ca_file = dup_or_null(cfg->tls.client_ca_file);
  if (!s->listen) rc = HUB_ERR_NOMEM;
  if (rc == HUB_OK && s->cert_file) rc = read_pem(s->cert_file, "tls cert", &s->cert, errbuf, errbuf_size);
  if (rc == HUB_OK && s->key_file) rc = read_pem(s->key_file, "tls key", &s->key, errbuf, errbuf_size);
  if (rc == HUB_OK && s->ca_file) rc = read_pem(s->ca_file, "client_ca_file", &s->ca, errbuf, errbuf_size);
  if (rc != HUB_OK) goto out;
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
  if (s->cert) flags |= MHD_USE_TLS;
  struct MHD_OptionItem tls_opts[] = {
      {s->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, s->cert},
      {s->cert ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, s->key},
      {s->ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, s->ca},
      {MHD_OPTION_END, 0, NULL},
  };
  /* An array stops at its first END, so the present options go first. */
  struct MHD_OptionItem opts[4];
  size_t n = 0;
  for (size_t i = 0; i < 3; i++)
    if (tls_opts[i].option != MHD_OPTION_END) opts[n++] = tls_opts[i];
  opts[n] = tls_opts[3];
  s->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT,
                          MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
                          MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
  if (!s->d) {
    rc = hub_errf(errbuf, errbuf_size, HUB_ERR_IO, "cannot listen on %s%s (port in use, or a bad TLS cert/key?)",
                  cfg->listen, s->cert ? " with TLS" : "");
    goto out;
  }
  for (size_t i = 0; i < N_CODES + 1; i++)
    hub_metrics_register_counter(&counters[i]);
  hub_log(HUB_LOG_INFO, "http", "listening on %s://%s%s", s->cert ? "https" : "http", s->listen,
          s->ca ? " (client certificates required)" : "");
out:
  if (rc != HUB_OK) {
    server_free(s);
    s = NULL;
  }
  *out = s;
  return rc;
}

/* Stops taking connections, lets the answers in flight go out, then stops. */
static void server_stop(struct server *s) {
  MHD_socket fd = MHD_quiesce_daemon(s->d);
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += DRAIN_MS / 1000;
  pthread_mutex_lock(&s->mu);
  while (s->sending > 0 && pthread_cond_timedwait(&s->cv, &s->mu, &deadline) != ETIMEDOUT) {
  }
  pthread_mutex_unlock(&s->mu);
  MHD_stop_daemon(s->d);
  if (fd != MHD_INVALID_SOCKET) close(fd);
  hub_log(HUB_LOG_INFO, "http", "stopped listening on %s", s->listen);
}

hub_err_t hub_http_route_add(const struct hub_http_route_cfg *cfg, struct hub_http_route **out, char *errbuf,
                             size_t errbuf_size) {
  hub_err_t rc = HUB_OK;
  *out = NULL;
  struct hub_http_route *r = calloc(1, sizeof *r);
  if (!r || !(r->owner = strdup(cfg->owner)) || !(r->path = strdup(cfg->path))) {
    if (r) free(r->owner);
    free(r);
    return HUB_ERR_NOMEM;
  }
  r->max_body = cfg->max_body;
  r->on_headers = cfg->on_headers;
  r->on_request = cfg->on_request;
  r->arg = cfg->arg;
  r->refs = 1;
  pthread_mutex_lock(&servers_mu);
  struct server *s = servers;
  while (s && strcmp(s->listen, cfg->listen))
    s = s->next;
  if (s) {
    if (!same(s->cert_file, cfg->tls.cert_file && *cfg->tls.cert_file ? cfg->tls.cert_file : NULL) ||
        !same(s->key_file, cfg->tls.key_file && *cfg->tls.key_file ? cfg->tls.key_file : NULL) ||
        !same(s->ca_file, cfg->tls.client_ca_file && *cfg->tls.client_ca_file ? cfg->tls.client_ca_file : NULL)) {
      rc = hub_errf(errbuf, errbuf_size, HUB_ERR_CONFIG,
                    "listen %s is shared with another connector with other TLS settings (tls and client_ca_file "
                    "must be the same on one address)",
                    cfg->listen);
      goto out;
    }
    pthread_mutex_lock(&s->mu);
    const struct hub_http_route *o = s->routes;
    while (o && strcmp(o->path, cfg->path))
      o = o->next;
    if (o)
      rc = hub_errf(errbuf, errbuf_size, HUB_ERR_CONFIG, "path %s on %s is already served by connector %s", cfg->path,
                    cfg->listen, o->owner);
    pthread_mutex_unlock(&s->mu);
    if (rc != HUB_OK) goto out;
  } else {
    if ((rc = server_start(cfg, &s, errbuf, errbuf_size)) != HUB_OK) goto out;
    s->next = servers;
    servers = s;
  }
  r->srv = s;
  pthread_mutex_lock(&s->mu);
  r->next = s->routes;
  s->routes = r;
  pthread_mutex_unlock(&s->mu);
  hub_http_route_unreserve(cfg->listen, cfg->path); /* served now; once removed, 404 again */
out:
  pthread_mutex_unlock(&servers_mu);
  if (rc != HUB_OK) {
    free(r->owner);
    free(r->path);
    free(r);
    r = NULL;
  }
  *out = r;
  return rc;
}

void hub_http_route_remove(struct hub_http_route *r) {
  if (!r) return;
  struct server *s = r->srv;
  pthread_mutex_lock(&servers_mu);
  pthread_mutex_lock(&s->mu);
  r->stopping = 1;
  while (r->busy > 0)
    pthread_cond_wait(&s->cv, &s->mu);
  struct hub_http_route **p = &s->routes;
  while (*p != r)
    p = &(*p)->next;
  *p = r->next;
  int last = !s->routes;
  route_release(r);
  pthread_mutex_unlock(&s->mu);
  if (last) {
    struct server **sp = &servers;
    while (*sp != s)
      sp = &(*sp)->next;
    *sp = s->next;
    server_stop(s);
    server_free(s);
  }
  pthread_mutex_unlock(&servers_mu);
}
