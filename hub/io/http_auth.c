/* Outgoing HTTP credentials (http_auth.h). The OAuth2 token cache: `fetching` marks the one
 * caller that talks to the token endpoint; others wait on the condition for its result. */
#include "hub/io/http_auth.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/files.h"
#include "hub/core/log.h"

#define SECRET_MAX 65536

struct hub_http_auth {
  enum hub_http_auth_kind kind;
  char *token_file, *user, *password_file, *token_url, *client_id, *client_secret_file, *scope;
  struct hub_http_tls tls;
  char *ca_file, *cert_file, *key_file;
  int has_tls;
  pthread_mutex_t mu;
  pthread_cond_t cond;
  int fetching;
  char *header;      /* "Authorization: Bearer TOKEN" of the cached token */
  int64_t refresh_at; /* monotonic ms after which it is fetched again */
  unsigned long fetches;
};

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dup_opt(char **dst, const char *src) {
  *dst = NULL;
  return !src || (*dst = strdup(src)) != NULL;
}

void hub_http_auth_destroy(struct hub_http_auth *a) {
  if (!a) return;
  free(a->token_file);
  free(a->user);
  free(a->password_file);
  free(a->token_url);
  free(a->client_id);
  free(a->client_secret_file);
  free(a->scope);
  free(a->ca_file);
  free(a->cert_file);
  free(a->key_file);
  free(a->header);
  pthread_mutex_destroy(&a->mu);
  pthread_cond_destroy(&a->cond);
  free(a);
}

hub_err_t hub_http_auth_new(const struct hub_http_auth_cfg *cfg, struct hub_http_auth **out) {
  *out = NULL;
  struct hub_http_auth *a = calloc(1, sizeof *a);
  if (!a) return HUB_ERR_NOMEM;
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->cond, NULL);
  a->kind = cfg->kind;
  int ok = dup_opt(&a->token_file, cfg->token_file) && dup_opt(&a->user, cfg->user) &&
           dup_opt(&a->password_file, cfg->password_file) && dup_opt(&a->token_url, cfg->token_url) &&
           dup_opt(&a->client_id, cfg->client_id) && dup_opt(&a->client_secret_file, cfg->client_secret_file) &&
           dup_opt(&a->scope, cfg->scope);
  if (ok && cfg->tls) {
    ok = dup_opt(&a->ca_file, cfg->tls->ca_file) && dup_opt(&a->cert_file, cfg->tls->cert_file) &&
         dup_opt(&a->key_file, cfg->tls->key_file);
    a->tls = (struct hub_http_tls){a->ca_file, a->cert_file, a->key_file};
    a->has_tls = 1;
  }
  if (!ok) {
    hub_http_auth_destroy(a);
    return HUB_ERR_NOMEM;
  }
  *out = a;
  return HUB_OK;
}

/* A secret file's first line (trailing whitespace dropped). */
static hub_err_t read_secret(const char *path, const char *what, char **out, char *errbuf, size_t errbuf_size) {
  size_t len = 0;
  char e[512];
  hub_err_t rc = hub_file_read(path, SECRET_MAX, out, &len, e, sizeof e);
  if (rc != HUB_OK) {
    snprintf(errbuf, errbuf_size, "%s: %s", what, e);
    return rc;
  }
  (*out)[strcspn(*out, "\r\n")] = 0;
  for (len = strlen(*out); len && ((*out)[len - 1] == ' ' || (*out)[len - 1] == '\t'); len--) (*out)[len - 1] = 0;
  if (!**out) {
    snprintf(errbuf, errbuf_size, "%s: %s is empty", what, path);
    free(*out);
    *out = NULL;
    return HUB_ERR_IO;
  }
  return HUB_OK;
}

/* Appends name=value (URL-encoded) to a form body; on failure frees it and sets it NULL. */
static void form_add(char **body, size_t *len, const char *name, const char *value) {
  char *v = curl_easy_escape(NULL, value, 0);
  size_t need = *len + strlen(name) + (v ? strlen(v) : 0) + 3;
  char *b = v ? realloc(*body, need) : NULL;
  if (!b) {
    free(*body);
    *body = NULL;
  } else {
    *body = b;
    *len += (size_t)snprintf(b + *len, need - *len, "%s%s=%s", *len ? "&" : "", name, v);
  }
  curl_free(v);
}

/* Asks the token endpoint for a token (without the lock held). */
static hub_err_t fetch_token(struct hub_http_auth *a, int64_t timeout_ms, char **header, int64_t *ttl_ms,
                             char *errbuf, size_t errbuf_size) {
  char *secret = NULL, *body = NULL;
  size_t blen = 0;
  struct hub_http_response resp = {0};
  json_t *j = NULL;
  hub_err_t rc = read_secret(a->client_secret_file, "oauth2 client_secret_file", &secret, errbuf, errbuf_size);
  if (rc != HUB_OK) goto out;
  form_add(&body, &blen, "grant_type", "client_credentials");
  if (body) form_add(&body, &blen, "client_id", a->client_id);
  if (body) form_add(&body, &blen, "client_secret", secret);
  if (body && a->scope && *a->scope) form_add(&body, &blen, "scope", a->scope);
  if (!body) {
    rc = HUB_ERR_NOMEM;
    snprintf(errbuf, errbuf_size, "out of memory");
    goto out;
  }
  const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL};
  struct hub_http_request req = {.method = "POST", .url = a->token_url, .headers = hdrs, .body = body,
                                 .body_len = blen, .timeout_ms = timeout_ms, .tls = a->has_tls ? &a->tls : NULL,
                                 .max_body = 65536};
  a->fetches++;
  if ((rc = hub_http_perform(&req, &resp)) != HUB_OK) {
    snprintf(errbuf, errbuf_size, "oauth2 token: %s", resp.error);
    goto out;
  }
  if (resp.status != 200) {
    /* 400/401 mean the client or its secret was refused (RFC 6749 §5.2). */
    rc = resp.status == 400 || resp.status == 401 ? HUB_ERR_AUTH : HUB_ERR_HTTP;
    snprintf(errbuf, errbuf_size, "oauth2 token: %s answered HTTP %ld: %.200s", a->token_url, resp.status,
             resp.body ? (const char *)resp.body : "");
    goto out;
  }
  json_error_t je;
  j = json_loadb((const char *)resp.body, resp.body_len, JSON_REJECT_DUPLICATES, &je);
  const char *token = j ? json_string_value(json_object_get(j, "access_token")) : NULL;
  const char *type = j ? json_string_value(json_object_get(j, "token_type")) : NULL;
  json_t *exp = j ? json_object_get(j, "expires_in") : NULL;
  if (!token || !*token || strpbrk(token, "\r\n") || (type && strcasecmp(type, "bearer") != 0)) {
    rc = HUB_ERR_AUTH;
    snprintf(errbuf, errbuf_size, "oauth2 token: %s answered without a bearer access_token", a->token_url);
    goto out;
  }
  /* No expires_in: keep it until a 401 says otherwise (an hour at most). */
  *ttl_ms = json_is_number(exp) ? (int64_t)(json_number_value(exp) * 1000.0) : 3600 * 1000;
  size_t n = strlen(token) + 32;
  if (!(*header = malloc(n))) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  snprintf(*header, n, "Authorization: Bearer %s", token);
out:
  if (secret) memset(secret, 0, strlen(secret));
  if (body) memset(body, 0, blen);
  free(secret);
  free(body);
  json_decref(j);
  hub_http_response_release(&resp);
  return rc;
}

static hub_err_t oauth2_header(struct hub_http_auth *a, int64_t timeout_ms, char **header, char *errbuf,
                               size_t errbuf_size) {
  hub_err_t rc = HUB_OK;
  pthread_mutex_lock(&a->mu);
  for (;;) {
    if (a->header && mono_ms() < a->refresh_at) {
      if (!(*header = strdup(a->header))) rc = HUB_ERR_NOMEM;
      pthread_mutex_unlock(&a->mu);
      return rc;
    }
    if (!a->fetching) break;
    pthread_cond_wait(&a->cond, &a->mu); /* another caller is fetching: take its token */
  }
  a->fetching = 1;
  pthread_mutex_unlock(&a->mu);
  int64_t t0 = mono_ms(), ttl = 0;
  char *fresh = NULL;
  rc = fetch_token(a, timeout_ms, &fresh, &ttl, errbuf, errbuf_size);
  pthread_mutex_lock(&a->mu);
  a->fetching = 0;
  if (rc == HUB_OK) {
    free(a->header);
    a->header = fresh;
    /* Fetch again before it expires: a tenth of its life early, at most a minute. */
    int64_t margin = ttl / 10 < 60000 ? ttl / 10 : 60000;
    a->refresh_at = t0 + ttl - margin;
    if (!(*header = strdup(fresh))) rc = HUB_ERR_NOMEM;
  }
  pthread_cond_broadcast(&a->cond);
  pthread_mutex_unlock(&a->mu);
  return rc;
}

hub_err_t hub_http_auth_apply(struct hub_http_auth *a, int64_t timeout_ms, char **header, char **user,
                              char **password, char *errbuf, size_t errbuf_size) {
  *header = *user = *password = NULL;
  if (!a || a->kind == HUB_HTTP_AUTH_NONE) return HUB_OK;
  if (a->kind == HUB_HTTP_AUTH_OAUTH2) return oauth2_header(a, timeout_ms, header, errbuf, errbuf_size);
  if (a->kind == HUB_HTTP_AUTH_BASIC) {
    hub_err_t rc = read_secret(a->password_file, "basic password_file", password, errbuf, errbuf_size);
    if (rc == HUB_OK && !(*user = strdup(a->user))) rc = HUB_ERR_NOMEM;
    return rc;
  }
  char *token = NULL;
  hub_err_t rc = read_secret(a->token_file, "bearer_token_file", &token, errbuf, errbuf_size);
  if (rc != HUB_OK) return rc;
  size_t n = strlen(token) + 32;
  if ((*header = malloc(n)))
    snprintf(*header, n, "Authorization: Bearer %s", token);
  else
    rc = HUB_ERR_NOMEM;
  memset(token, 0, strlen(token));
  free(token);
  return rc;
}

void hub_http_auth_rejected(struct hub_http_auth *a, const char *header) {
  if (!a || a->kind != HUB_HTTP_AUTH_OAUTH2 || !header) return;
  pthread_mutex_lock(&a->mu);
  if (a->header && !strcmp(a->header, header)) {
    free(a->header);
    a->header = NULL;
    hub_log(HUB_LOG_INFO, "http", "%s refused the cached token; fetching a new one", a->token_url);
  }
  pthread_mutex_unlock(&a->mu);
}

unsigned long hub_http_auth_fetches(struct hub_http_auth *a) {
  pthread_mutex_lock(&a->mu);
  unsigned long n = a->fetches;
  pthread_mutex_unlock(&a->mu);
  return n;
}
