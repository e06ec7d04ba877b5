/* One call to DVCQG and the meaning of its answer (dvcqg_portal.h). The OpenCPS variant's
 * session (§3.1: POST {username, password} -> {"session", "error_code": 0}) is shared by every
 * delivery of the connector and renewed when the portal says it is no longer valid. */
#include "dvcqg_portal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/files.h"
#include "hub/core/metrics.h"
#include "hub/io/http_client.h"

/* Process-wide, over every dvcqg connector (connectors/dvcqg/README.md, "Metrics"). */
static struct hub_metric_counter m_logins = {"lienthong_dvcqg_logins_total",
                                             "DVCQG session logins (opencps variant), the first included"};
static struct hub_metric_counter m_refused = {"lienthong_dvcqg_sessions_refused_total",
                                              "DVCQG calls answered that the session is not valid (then a new login)"};
static struct hub_metric_counter m_calls = {"lienthong_dvcqg_calls_total", "calls made to DVCQG, logins included"};
static struct hub_metric_counter m_no_answer = {"lienthong_dvcqg_calls_unanswered_total",
                                                "DVCQG calls without an answer (connection error, timeout)"};

void dvcqg_metrics_register(void) {
  hub_metrics_register_counter(&m_logins);
  hub_metrics_register_counter(&m_refused);
  hub_metrics_register_counter(&m_calls);
  hub_metrics_register_counter(&m_no_answer);
}

void dvcqg_answer_release(struct dvcqg_answer *a) {
  json_decref(a->body);
  free(a->raw);
  a->body = NULL;
  a->raw = NULL;
  a->raw_len = 0;
}

void dvcqg_portal_release(struct dvcqg_portal *p) {
  free(p->session);
  free(p->password_file);
  p->session = NULL;
  p->password_file = NULL;
}

static int in_list(const struct hub_str_list *l, const char *v) {
  for (size_t i = 0; l && i < l->n; i++)
    if (!strcmp(l->v[i], v)) return 1;
  return 0;
}

/* error_code as text: DVCQG sends it as a number or a string ("00", 0, "-1"). */
static void code_text(json_t *body, char *out, size_t n) {
  json_t *c = json_is_object(body) ? json_object_get(body, "error_code") : NULL;
  if (json_is_string(c))
    snprintf(out, n, "%s", json_string_value(c));
  else if (json_is_integer(c))
    snprintf(out, n, "%lld", (long long)json_integer_value(c));
  else
    out[0] = '\0';
}

/* One POST of a JSON document; fills http, raw, body; returns 0 when an answer came. */
static int post(struct dvcqg_portal *p, const char *url, const char *text, struct dvcqg_answer *a) {
  static const char *const hdr[] = {"Content-Type: application/json; charset=utf-8", "Accept: application/json", NULL};
  char *auth_hdr = NULL, *user = NULL, *pw = NULL, e[512];
  const char *hv[4] = {hdr[0], hdr[1], NULL, NULL};
  int64_t wait_ms = 0;
  if (!hub_breaker_allow(p->breaker, &wait_ms)) {
    a->verdict = DV_RETRY;
    a->retry_after_ms = wait_ms;
    snprintf(a->message, sizeof a->message, "circuit breaker for %s is open", p->endpoint);
    return -1;
  }
  if (p->auth && hub_http_auth_apply(p->auth, p->timeout_ms, &auth_hdr, &user, &pw, e, sizeof e) != HUB_OK) {
    hub_breaker_cancel(p->breaker);
    a->verdict = DV_RETRY;
    snprintf(a->message, sizeof a->message, "credentials for %s: %s", p->endpoint, e);
    return -1;
  }
  hv[2] = auth_hdr;
  struct hub_http_request req = {.method = "POST",
                                 .url = url,
                                 .headers = hv,
                                 .body = text,
                                 .body_len = strlen(text),
                                 .timeout_ms = p->timeout_ms,
                                 .basic_user = user,
                                 .basic_password = pw,
                                 .max_body = p->max_response,
                                 .fresh_connection = p->fresh_connection};
  struct hub_http_response resp = {0};
  hub_err_t rc = hub_http_perform(&req, &resp);
  atomic_fetch_add(&m_calls.value, 1);
  if (rc != HUB_OK && rc != HUB_ERR_STOPPED) atomic_fetch_add(&m_no_answer.value, 1);
  free(auth_hdr);
  free(user);
  if (pw) memset(pw, 0, strlen(pw));
  free(pw);
  if (rc != HUB_OK) {
    if (rc == HUB_ERR_STOPPED)
      hub_breaker_cancel(p->breaker);
    else
      hub_breaker_record(p->breaker, 0);
    a->verdict = DV_RETRY;
    snprintf(a->message, sizeof a->message, "%s", resp.error);
    hub_http_response_release(&resp);
    return -1;
  }
  hub_breaker_record(p->breaker, resp.status < 500);
  a->http = resp.status;
  a->raw = resp.body;
  a->raw_len = resp.body_len;
  resp.body = NULL;
  if (a->raw_len) a->body = json_loadb((const char *)a->raw, a->raw_len, JSON_REJECT_DUPLICATES, NULL);
  if (resp.status == 429 || resp.status == 503)
    a->retry_after_ms = hub_http_retry_after_ms(hub_http_response_header(&resp, "retry-after"), time(NULL));
  hub_http_response_release(&resp);
  return 0;
}

/* Reads the answer of a call into a verdict. */
static void classify(struct dvcqg_portal *p, struct dvcqg_answer *a) {
  long st = a->http;
  json_t *msg = json_is_object(a->body) ? json_object_get(a->body, "message") : NULL;
  const char *m = json_is_string(msg) ? json_string_value(msg) : "";
  code_text(a->body, a->code, sizeof a->code);
  if (st >= 500 || st == 408 || st == 429) {
    a->verdict = DV_RETRY;
    snprintf(a->message, sizeof a->message, "HTTP %ld from %s%s%.400s", st, p->endpoint, *m ? ": " : "", m);
  } else if (st == 401 || st == 403) {
    /* The OpenCPS portal refuses a stale session this way too; with a token (split variant)
     * it is a credentials problem that an operator fixes: retried, never dropped. */
    a->verdict = p->auth_url ? DV_SESSION : DV_RETRY;
    snprintf(a->message, sizeof a->message, "HTTP %ld from %s: credentials refused%s%.400s", st, p->endpoint,
             *m ? ": " : "", m);
  } else if (st < 200 || st >= 300) {
    a->verdict = DV_REJECT;
    snprintf(a->message, sizeof a->message, "HTTP %ld from %s%s%.400s", st, p->endpoint, *m ? ": " : "", m);
  } else if (!json_is_object(a->body) || !a->code[0]) {
    /* A 2xx that is not the portal's JSON answer (a proxy's page, a cut body): nothing says the
     * call took effect or failed for good, so try again. */
    a->verdict = DV_RETRY;
    snprintf(a->message, sizeof a->message, "HTTP %ld from %s without a JSON {error_code, message} answer", st,
             p->endpoint);
  } else if (p->exists_text && *p->exists_text && strstr(m, p->exists_text)) {
    a->verdict = DV_EXISTS; /* §3.2: error_code 0, 3 or -3 with "đã tồn tại" */
    snprintf(a->message, sizeof a->message, "%s", m);
  } else if (in_list(p->ok_codes, a->code)) {
    a->verdict = DV_OK;
    snprintf(a->message, sizeof a->message, "%s", m);
  } else if (in_list(p->session_codes, a->code)) {
    a->verdict = DV_SESSION;
    snprintf(a->message, sizeof a->message, "session refused (error_code %s): %.400s", a->code, m);
  } else if (in_list(p->retry_codes, a->code)) {
    a->verdict = DV_RETRY;
    snprintf(a->message, sizeof a->message, "error_code %s: %.400s", a->code, m);
  } else {
    a->verdict = DV_REJECT;
    snprintf(a->message, sizeof a->message, "error_code %s: %.500s", a->code, *m ? m : "(no message)");
  }
}

/* Logs in (OpenCPS); 0 with p->session set, -1 with the answer saying why. */
static int login(struct dvcqg_portal *p, struct dvcqg_answer *a) {
  char *pw = NULL, why[512];
  size_t n = 0;
  if (hub_secret_read(p->password_file, 4096, 0, &pw, &n, why, sizeof why) != HUB_OK) {
    a->verdict = DV_RETRY;
    snprintf(a->message, sizeof a->message, "login: %s", why);
    return -1;
  }
  json_t *j = json_pack("{s:s, s:s}", "username", p->username, "password", pw);
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  hub_secret_free(pw, n);
  if (j) { /* the password also sits in the JSON tree: wipe it before freeing */
    json_t *v = json_object_get(j, "password");
    if (v) memset((char *)json_string_value(v), 0, json_string_length(v));
  }
  json_decref(j);
  if (!text) {
    a->verdict = DV_RETRY;
    snprintf(a->message, sizeof a->message, "login: out of memory");
    return -1;
  }
  struct dvcqg_answer la = {0};
  int got = post(p, p->auth_url, text, &la) == 0;
  memset(text, 0, strlen(text));
  free(text);
  if (got) classify(p, &la);
  json_t *sv = json_is_object(la.body) ? json_object_get(la.body, "session") : NULL;
  int ok = got && la.verdict == DV_OK && json_is_string(sv) && json_string_length(sv);
  if (ok) {
    free(p->session);
    p->session = strdup(json_string_value(sv));
    p->logins++;
    atomic_fetch_add(&m_logins.value, 1);
    ok = p->session != NULL;
  } else {
    /* A refused login is an account problem to fix, not a reason to drop a dossier: RETRY. */
    a->verdict = DV_RETRY;
    a->http = la.http;
    snprintf(a->message, sizeof a->message, "login to %s failed: %s", p->auth_url,
             got && la.verdict == DV_OK ? "the answer has no session" : la.message);
  }
  dvcqg_answer_release(&la);
  return ok ? 0 : -1;
}

void dvcqg_call(struct dvcqg_portal *p, const char *url, json_t *req, struct dvcqg_answer *a) {
  memset(a, 0, sizeof *a);
  for (int round = 0; round < 2; round++) {
    char used[512] = "";
    if (p->auth_url) {
      pthread_mutex_lock(&p->lock);
      int ok = p->session || login(p, a) == 0;
      if (ok) {
        snprintf(used, sizeof used, "%s", p->session);
        json_object_set_new(req, "session", json_string(p->session));
      }
      pthread_mutex_unlock(&p->lock);
      if (!ok) return;
    }
    char *text = json_dumps(req, JSON_COMPACT);
    if (!text) {
      a->verdict = DV_RETRY;
      snprintf(a->message, sizeof a->message, "out of memory");
      return;
    }
    dvcqg_answer_release(a);
    memset(a, 0, sizeof *a);
    int got = post(p, url, text, a) == 0;
    free(text);
    if (!got) return;
    classify(p, a);
    if (a->verdict != DV_SESSION || !p->auth_url) return;
    atomic_fetch_add(&m_refused.value, 1);
    /* Drop the session that was refused (unless another delivery renewed it meanwhile) and
     * try once more with a new one. */
    pthread_mutex_lock(&p->lock);
    if (p->session && !strcmp(p->session, used)) {
      free(p->session);
      p->session = NULL;
    }
    pthread_mutex_unlock(&p->lock);
  }
  a->verdict = DV_RETRY; /* refused twice in a row: the portal's sessions are unwell; later */
}
