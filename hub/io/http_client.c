/* The shared HTTP client (http_client.h): one curl multi handle, one thread that drives it.
 * Submitters queue calls under a lock and wake the thread (curl_multi_wakeup); the thread adds
 * them, runs the transfers and signals each call's completion. */
#include "hub/io/http_client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/log.h"
#include "hub/core/stop.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_BODY (16u * 1024u * 1024u)

struct hub_http_call {
  CURL *easy;
  struct curl_slist *hdrs;
  char *method, *url;
  size_t max_body;
  int too_large; /* on_body refused the body for max_body */
  char errbuf[CURL_ERROR_SIZE];
  struct hub_http_response resp;
  size_t body_cap;
  int done;
  int abandoned; /* its waiter left (the hub is stopping): the thread frees it */
  struct hub_http_call *next; /* in the submit queue, then in flight */
  struct hub_http_call *cancel_next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static CURLM *multi;
static pthread_t thread;
static int running, stopping;
static struct hub_http_call *queue;
static struct hub_http_call *inflight; /* added to the multi handle; the thread's own */
static struct hub_http_call *cancels;  /* abandoned by their waiters */

static void call_free(struct hub_http_call *c);

static void finish(struct hub_http_call *c, CURLcode cc) {
  if (cc == CURLE_OK) {
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->resp.status);
    c->resp.rc = HUB_OK;
  } else {
    c->resp.rc = cc == CURLE_OPERATION_TIMEDOUT ? HUB_ERR_TIMEOUT : HUB_ERR_IO;
    c->resp.too_large = c->too_large && cc == CURLE_WRITE_ERROR;
    snprintf(c->resp.error, sizeof c->resp.error, "%s %s: %s", c->method, c->url,
             c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
  }
  pthread_mutex_lock(&mu);
  c->done = 1;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&mu);
}

/* Frees the abandoned calls (taken from `cancels`), taking those still in flight off the multi
 * handle first; they were added before (submit queues a call before it can be abandoned). */
static void drop_cancelled(struct hub_http_call *list) {
  for (struct hub_http_call *c = list, *next; c; c = next) {
    next = c->cancel_next;
    for (struct hub_http_call **p = &inflight; *p; p = &(*p)->next)
      if (*p == c) {
        *p = c->next;
        curl_multi_remove_handle(multi, c->easy);
        break;
      }
    hub_http_response_release(&c->resp);
    call_free(c);
  }
}

static void *loop(void *arg) {
  (void)arg;
  hub_log_set_context("io", "http-client");
  for (;;) {
    /* Both lists at once: a call abandoned by now was queued by now, so it is added below (or
     * was before) and then dropped, never dropped while still queued. */
    pthread_mutex_lock(&mu);
    struct hub_http_call *q = queue, *dropped = cancels;
    queue = cancels = NULL;
    int stop = stopping;
    pthread_mutex_unlock(&mu);
    for (struct hub_http_call *c = q, *next; c; c = next) {
      next = c->next;
      if (stop || curl_multi_add_handle(multi, c->easy) != CURLM_OK) {
        finish(c, CURLE_FAILED_INIT);
      } else {
        c->next = inflight;
        inflight = c;
      }
    }
    drop_cancelled(dropped);
    if (stop) break;
    int still = 0;
    curl_multi_perform(multi, &still);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left))) {
      if (msg->msg != CURLMSG_DONE) continue;
      struct hub_http_call *c = NULL;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
      CURLcode cc = msg->data.result;
      curl_multi_remove_handle(multi, msg->easy_handle);
      for (struct hub_http_call **p = &inflight; *p; p = &(*p)->next)
        if (*p == c) {
          *p = c->next;
          break;
        }
      if (c) finish(c, cc);
    }
    curl_multi_poll(multi, NULL, 0, 1000, NULL);
  }
  /* Stopping: whatever is still in flight fails. */
  for (struct hub_http_call *c = inflight, *next; c; c = next) {
    next = c->next;
    curl_multi_remove_handle(multi, c->easy);
    finish(c, CURLE_ABORTED_BY_CALLBACK);
  }
  inflight = NULL;
  pthread_mutex_lock(&mu);
  struct hub_http_call *dropped = cancels;
  cancels = NULL;
  pthread_mutex_unlock(&mu);
  drop_cancelled(dropped);
  return NULL;
}

/* Starts the thread on first use; under mu. */
static hub_err_t ensure_started(void) {
  if (running) return stopping ? HUB_ERR_STOPPED : HUB_OK;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(multi = curl_multi_init())) return HUB_ERR_NOMEM;
  if (pthread_create(&thread, NULL, loop, NULL) != 0) {
    curl_multi_cleanup(multi);
    multi = NULL;
    return HUB_ERR_NOMEM;
  }
  running = 1;
  return HUB_OK;
}

void hub_http_client_shutdown(void) {
  pthread_mutex_lock(&mu);
  if (!running) {
    pthread_mutex_unlock(&mu);
    return;
  }
  stopping = 1;
  pthread_mutex_unlock(&mu);
  curl_multi_wakeup(multi);
  pthread_join(thread, NULL);
  curl_multi_cleanup(multi);
  pthread_mutex_lock(&mu);
  multi = NULL;
  running = stopping = 0;
  pthread_mutex_unlock(&mu);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  struct hub_http_call *c = ud;
  size_t len = size * n;
  if (c->resp.body_len + len > c->max_body) {
    snprintf(c->errbuf, sizeof c->errbuf, "response body larger than %zu bytes", c->max_body);
    c->too_large = 1;
    return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
  }
  if (c->resp.body_len + len + 1 > c->body_cap) {
    size_t cap = c->body_cap ? c->body_cap : 4096;
    while (cap < c->resp.body_len + len + 1) cap *= 2;
    unsigned char *b = realloc(c->resp.body, cap);
    if (!b) return 0;
    c->resp.body = b;
    c->body_cap = cap;
  }
  memcpy(c->resp.body + c->resp.body_len, p, len);
  c->resp.body_len += len;
  c->resp.body[c->resp.body_len] = 0;
  return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  struct hub_http_call *c = ud;
  size_t len = size * n;
  struct hub_str_map *h = &c->resp.headers;
  if (len >= 5 && !memcmp(p, "HTTP/", 5)) { /* a new response (after a 1xx or a redirect) */
    hub_str_map_release(h);
    return len;
  }
  const char *colon = memchr(p, ':', len);
  if (!colon) return len;
  size_t nl = (size_t)(colon - p);
  const char *v = colon + 1, *end = p + len;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
  char **keys = realloc(h->keys, (h->n + 1) * sizeof *keys);
  if (keys) h->keys = keys;
  char **values = keys ? realloc(h->values, (h->n + 1) * sizeof *values) : NULL;
  if (values) h->values = values;
  char *k = values ? strndup(p, nl) : NULL, *val = k ? strndup(v, (size_t)(end - v)) : NULL;
  if (!val) {
    free(k);
    return 0;
  }
  for (char *q = k; *q; q++) *q = (char)tolower((unsigned char)*q);
  h->keys[h->n] = k;
  h->values[h->n++] = val;
  return len;
}

static void call_free(struct hub_http_call *c) {
  if (!c) return;
  if (c->easy) curl_easy_cleanup(c->easy);
  curl_slist_free_all(c->hdrs);
  free(c->method);
  free(c->url);
  free(c);
}

hub_err_t hub_http_submit(const struct hub_http_request *req, struct hub_http_call **out) {
  *out = NULL;
  struct hub_http_call *c = calloc(1, sizeof *c);
  if (!c || !(c->easy = curl_easy_init()) || !(c->method = strdup(req->method ? req->method : "GET")) ||
      !(c->url = strdup(req->url))) {
    call_free(c);
    return HUB_ERR_NOMEM;
  }
  CURL *e = c->easy;
  int bad = 0;
  c->max_body = req->max_body ? req->max_body : DEFAULT_MAX_BODY;
  bad |= curl_easy_setopt(e, CURLOPT_URL, c->url) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, c) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
  int64_t t = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
  bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L) != CURLE_OK;
  if (req->fresh_connection) { /* a connection of its own, closed after the call */
    bad |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK;
  }
  if (req->follow_redirects) {
    bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L) != CURLE_OK;
  }
  bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, c) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, c) != CURLE_OK;
  if (req->tls) {
    if (req->tls->ca_file) bad |= curl_easy_setopt(e, CURLOPT_CAINFO, req->tls->ca_file) != CURLE_OK;
    if (req->tls->cert_file) bad |= curl_easy_setopt(e, CURLOPT_SSLCERT, req->tls->cert_file) != CURLE_OK;
    if (req->tls->key_file) bad |= curl_easy_setopt(e, CURLOPT_SSLKEY, req->tls->key_file) != CURLE_OK;
  }
  if (req->basic_user) {
    bad |= curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERNAME, req->basic_user) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PASSWORD, req->basic_password ? req->basic_password : "") != CURLE_OK;
  }
  if (!strcmp(c->method, "GET")) {
    bad |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK;
  } else {
    if (strcmp(c->method, "POST") != 0) bad |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method) != CURLE_OK;
    if (req->body_len || strcmp(c->method, "DELETE") != 0) {
      bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len) != CURLE_OK;
      bad |= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body_len ? (const char *)req->body : "") != CURLE_OK;
    }
  }
  /* No "Expect: 100-continue" round trip; libcurl adds it for larger bodies otherwise. */
  struct curl_slist *l = curl_slist_append(NULL, "Expect:");
  for (size_t i = 0; l && req->headers && req->headers[i]; i++) {
    struct curl_slist *n = curl_slist_append(l, req->headers[i]);
    if (!n) {
      curl_slist_free_all(l);
      l = NULL;
    } else {
      l = n;
    }
  }
  c->hdrs = l;
  bad |= !l || curl_easy_setopt(e, CURLOPT_HTTPHEADER, l) != CURLE_OK;
  if (bad) {
    call_free(c);
    return HUB_ERR_NOMEM;
  }
  pthread_mutex_lock(&mu);
  hub_err_t rc = ensure_started();
  if (rc == HUB_OK) {
    c->next = queue;
    queue = c;
  }
  pthread_mutex_unlock(&mu);
  if (rc != HUB_OK) {
    call_free(c);
    return rc;
  }
  curl_multi_wakeup(multi);
  *out = c;
  return HUB_OK;
}

void hub_http_call_wait(struct hub_http_call *c, struct hub_http_response *resp) {
  pthread_mutex_lock(&mu);
  while (!c->done) {
    if (hub_stop_requested()) { /* do not hold the hub's shutdown for up to a whole timeout */
      memset(resp, 0, sizeof *resp);
      resp->rc = HUB_ERR_STOPPED;
      snprintf(resp->error, sizeof resp->error, "%s %s: abandoned, the hub is stopping", c->method, c->url);
      c->abandoned = 1;
      c->cancel_next = cancels;
      cancels = c;
      pthread_mutex_unlock(&mu);
      curl_multi_wakeup(multi);
      return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&cond, &mu, &ts);
  }
  pthread_mutex_unlock(&mu);
  *resp = c->resp;
  call_free(c);
}

hub_err_t hub_http_perform(const struct hub_http_request *req, struct hub_http_response *resp) {
  struct hub_http_call *c = NULL;
  memset(resp, 0, sizeof *resp);
  hub_err_t rc = hub_http_submit(req, &c);
  if (rc != HUB_OK) {
    resp->rc = rc;
    snprintf(resp->error, sizeof resp->error, "%s %s: %s", req->method ? req->method : "GET", req->url,
             rc == HUB_ERR_STOPPED ? "the HTTP client is stopping" : "out of memory");
    return rc;
  }
  hub_http_call_wait(c, resp);
  return resp->rc;
}

void hub_http_response_release(struct hub_http_response *resp) {
  if (!resp) return;
  hub_str_map_release(&resp->headers);
  free(resp->body);
  resp->body = NULL;
  resp->body_len = 0;
}

const char *hub_http_response_header(const struct hub_http_response *resp, const char *name) {
  for (size_t i = 0; i < resp->headers.n; i++)
    if (!strcasecmp(resp->headers.keys[i], name)) return resp->headers.values[i];
  return NULL;
}

int64_t hub_http_retry_after_ms(const char *value, time_t now) {
  if (!value) return -1;
  while (*value == ' ') value++;
  if (isdigit((unsigned char)*value)) {
    int64_t s = 0;
    const char *p = value;
    for (; isdigit((unsigned char)*p) && s < 1000000000; p++) s = s * 10 + (*p - '0');
    while (*p == ' ') p++;
    return *p ? -1 : s * 1000;
  }
  time_t at = curl_getdate(value, NULL);
  if (at == -1) return -1;
  return at > now ? (int64_t)(at - now) * 1000 : 0;
}
