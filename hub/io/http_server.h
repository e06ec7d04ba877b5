/* The shared inbound HTTP server (libmicrohttpd) that webhook-like connectors register paths on.
 *
 * One server per listen address, shared by every route registered on it: it starts listening
 * when the first route is added and stops when the last is removed. A thread per connection
 * (bounded) so that a handler waiting for a commit stalls nobody else. The server answers by
 * itself what needs no connector: 404 for an unknown path, 405 for a method other than POST,
 * 413 before reading the body when Content-Length passes the route's max_body, 401 when mTLS is
 * on and the client has no trusted certificate, 503 while a route is being removed, and 503
 * (not 404) for a path reserved by a connector that has not started serving it yet: on one
 * address the connectors start one by one, and a caller must not take a 404 for good. A body that
 * passes max_body without such a Content-Length (chunked) is kept only up to max_body, read on
 * without keeping it and answered 413 at its end (libmicrohttpd 0.9 queues an answer only
 * before or after the body; 16 MiB past the limit the connection is closed instead). Every
 * answer has a JSON body; error answers are {"error": ..., "detail": ...}.
 * Answers are counted per status code in /metrics (lienthong_http_requests_CODE_total). */
#ifndef HUB_IO_HTTP_SERVER_H
#define HUB_IO_HTTP_SERVER_H

#include <stddef.h>

#include "hub/core/err.h"

/* TLS of a listen address; every route on one address must give the same. Paths as resolved. */
struct hub_http_tls {
  const char *cert_file, *key_file; /* PEM; both or neither (neither: plain HTTP) */
  const char *client_ca_file;       /* PEM: clients must present a certificate it issued; NULL: no mTLS */
};

/* A request header as libmicrohttpd parsed it (or as a caller of hub_http_serve gives it). */
struct hub_http_header {
  const char *name, *value;
};

/* A request as a handler sees it (borrowed for the handler's call): what libmicrohttpd parsed,
 * independent of it, so the same handling serves a socket and hub_http_serve. */
struct hub_http_request {
  const char *method, *url; /* url: the path, without the query */
  const struct hub_http_header *headers;
  size_t n_headers;
  const unsigned char *body; /* NULL (on_headers) or the body kept, NUL-terminated */
  size_t len;
};
/* A request header's value (case-insensitive name), or NULL. */
const char *hub_http_request_header(const struct hub_http_request *r, const char *name);
/* The body as received (NUL-terminated for convenience; *len excludes the NUL). */
const unsigned char *hub_http_request_body(const struct hub_http_request *r, size_t *len);

/* What a handler answers. status 0 from on_headers: go on, read the body. */
struct hub_http_answer {
  unsigned status;
  char *body;                   /* malloc'd JSON (the server frees it) */
  const char *retry_after;      /* static, or NULL */
  const char *www_authenticate; /* static, or NULL */
};
/* Sets an error answer with body {"error": ERROR, "detail": DETAIL}. */
void hub_http_answer_error(struct hub_http_answer *a, unsigned status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

struct hub_http_route_cfg {
  const char *owner;  /* the connector, for messages */
  const char *listen; /* host:port (IPv4 address or localhost) */
  const char *path;   /* exact path, e.g. /hooks/dossier */
  size_t max_body;
  struct hub_http_tls tls;
  /* Called once the headers are in, before any body is read; may answer (a 401 or 415 that
   * needs no body). NULL: go on. */
  void (*on_headers)(void *arg, const struct hub_http_request *r, struct hub_http_answer *a);
  /* Called with the whole body; must answer. May block (waiting for a commit). */
  void (*on_request)(void *arg, const struct hub_http_request *r, struct hub_http_answer *a);
  void *arg;
};

struct hub_http_route;

/* Registers a route, starting the address's server when it is the first. Refused: a path
 * already served on that address, TLS settings that differ from the address's, an address
 * that cannot be listened on. The strings are copied. */
hub_err_t hub_http_route_add(const struct hub_http_route_cfg *cfg, struct hub_http_route **out, char *errbuf,
                             size_t errbuf_size);
/* Serves one request in this process, without a socket, through the handling a request that
 * libmicrohttpd parsed gets on the server of `listen` (which must have a route): path and
 * method, Content-Length against max_body, the route's on_headers, the body kept up to
 * max_body as it arrives in pieces of `chunk` bytes (0: one piece), the route's on_request.
 * complete = 0: the client went away before the body ended (nothing more is called). The
 * answer is a->status (0 when none was given) and a->body (malloc'd; the caller frees it).
 * Not mTLS, which needs a TLS session. For the fuzzer (tests/fuzz/fuzz_http_listen.c) and
 * tests; HUB_ERR_NOT_FOUND when nothing is served on `listen`. */
hub_err_t hub_http_serve(const char *listen, const struct hub_http_request *r, size_t chunk, int complete,
                         struct hub_http_answer *a);
/* Reserves `path` on `listen` for a connector that will serve it once started (from its create,
 * so every connector has reserved its path before the first one starts listening): until its
 * route is added, requests to it get 503 "starting". Adding the route ends the reservation, as
 * does unreserve (from destroy, for a connector that never started). Nothing listens.
 * HUB_ERR_NOMEM only. */
hub_err_t hub_http_route_reserve(const char *listen, const char *path);
void hub_http_route_unreserve(const char *listen, const char *path);
/* Removes a route: new requests to it get 503, and this returns once none of its handlers
 * runs any more. The last route of an address stops the server after the answers in flight
 * were sent (at most a few seconds). NULL-safe. */
void hub_http_route_remove(struct hub_http_route *r);

#endif
