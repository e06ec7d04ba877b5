/* One call to the national public-service portal (DVCQG) and what its answer means: the
 * session login of the OpenCPS variant (vn-standards.md §3.1) and the classification of every
 * answer into OK, EXISTS ("đã tồn tại" on a create), SESSION (log in again), RETRY or REJECT.
 * Used by dvcqg_sink.c only. */
#ifndef LT_DVCQG_PORTAL_H
#define LT_DVCQG_PORTAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "hub/core/cfgmap.h"
#include "hub/core/err.h"
#include "hub/io/breaker.h"
#include "hub/io/http_auth.h"

enum dvcqg_verdict { DV_OK, DV_EXISTS, DV_SESSION, DV_RETRY, DV_REJECT };

struct dvcqg_portal {
  const char *auth_url;       /* OpenCPS login URL, NULL for the split variant */
  const char *username;       /* OpenCPS login */
  char *password_file;        /* resolved; read at each login (rotation) */
  struct hub_http_auth *auth; /* split variant: an Authorization header, or NONE */
  struct hub_breaker *breaker;
  const char *endpoint; /* for messages */
  int64_t timeout_ms;
  size_t max_response;
  const struct hub_str_list *ok_codes, *session_codes, *retry_codes;
  const char *exists_text;
  int fresh_connection; /* one connection per call (no reuse) */
  pthread_mutex_t lock; /* guards session */
  char *session;
  unsigned long logins;
};

/* What one call did, for the result record and the DLQ reason. */
struct dvcqg_answer {
  enum dvcqg_verdict verdict;
  long http;          /* HTTP status, 0 when there was no answer */
  char code[64];      /* error_code as text ("" when absent) */
  char message[600];  /* the portal's message, or what went wrong */
  json_t *body;       /* the parsed answer (owned), NULL when not JSON */
  unsigned char *raw; /* the raw answer (owned), for the DLQ detail */
  size_t raw_len;
  int64_t retry_after_ms;
};

void dvcqg_answer_release(struct dvcqg_answer *a);
/* POSTs `req` (JSON) to url; for the OpenCPS variant sets "session" first, logging in when there
 * is none, and logs in again once when the answer says the session is invalid. */
void dvcqg_call(struct dvcqg_portal *p, const char *url, json_t *req, struct dvcqg_answer *a);
/* Registers the connector's counters in /metrics (once per process; again is harmless). */
void dvcqg_metrics_register(void);
/* Frees the session and the resolved paths (not the struct). */
void dvcqg_portal_release(struct dvcqg_portal *p);

#endif
