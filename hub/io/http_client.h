/* The process's one HTTP client: a libcurl multi handle driven by its own thread, started on the
 * first request and shared by every connector. A caller submits a request and waits for its
 * completion (or submits several and waits on each handle). Each request has its own timeout,
 * TLS files and basic credentials; only http and https are spoken, and redirects are followed
 * only when the request says so. Errors carry curl's error buffer, never a credential. */
#ifndef HUB_HTTP_CLIENT_H
#define HUB_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "hub/core/cfgmap.h"
#include "hub/core/err.h"

struct hub_http_tls {
  const char *ca_file;   /* PEM bundle of trusted CAs; NULL: the system's */
  const char *cert_file; /* client certificate (PEM), NULL: none */
  const char *key_file;  /* its private key (PEM) */
};

struct hub_http_request {
  const char *method; /* GET, POST, PUT, PATCH, DELETE */
  const char *url;
  const char *const *headers; /* "Name: value" lines, NULL-terminated; NULL: none */
  const void *body;
  size_t body_len;
  int64_t timeout_ms;   /* the whole exchange; <= 0: 30 s */
  const struct hub_http_tls *tls; /* NULL: defaults */
  int follow_redirects; /* 0: a 3xx is the answer */
  const char *basic_user, *basic_password; /* HTTP basic authentication; NULL: none */
  size_t max_body;      /* a longer response body is an error; 0: 16 MiB */
  int fresh_connection; /* 1: a new connection for this call, closed after it (never reused), so
                           that a stray extra answer from a faulty peer cannot be read as the
                           answer to a later call */
};

struct hub_http_response {
  hub_err_t rc; /* HUB_OK: `status` holds the answer; HUB_ERR_TIMEOUT; HUB_ERR_IO: no answer;
                   HUB_ERR_STOPPED: abandoned because the hub is stopping */
  long status;
  struct hub_str_map headers; /* of the final response; names in lower case */
  unsigned char *body;        /* malloc'd, NUL-terminated (body_len excludes the NUL) */
  size_t body_len;
  char error[512]; /* when rc != HUB_OK: "METHOD URL: what curl said" */
  int too_large;   /* 1: rc is HUB_ERR_IO because the body passed max_body (a retry gets the same) */
};

struct hub_http_call;

/* Queues a request (its strings and body are copied) and returns a handle to wait on. */
hub_err_t hub_http_submit(const struct hub_http_request *req, struct hub_http_call **call);
/* Waits for the call to complete, fills *resp (release it) and frees the call. When the hub is
 * asked to stop meanwhile it gives up on the call (resp->rc HUB_ERR_STOPPED) within 100 ms. */
void hub_http_call_wait(struct hub_http_call *call, struct hub_http_response *resp);
/* Submits and waits. Returns resp->rc. */
hub_err_t hub_http_perform(const struct hub_http_request *req, struct hub_http_response *resp);
void hub_http_response_release(struct hub_http_response *resp);
/* A response header (name in lower case; borrowed), or NULL. */
const char *hub_http_response_header(const struct hub_http_response *resp, const char *name);
/* Retry-After (delay-seconds or an HTTP-date) as milliseconds from `now`; -1 if unreadable. */
int64_t hub_http_retry_after_ms(const char *value, time_t now);
/* Stops the client's thread and frees it (tests; at exit). Calls still waiting fail. */
void hub_http_client_shutdown(void);

#endif
