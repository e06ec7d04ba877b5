/* LGSP edoc calls (lgsp_api.h): token, secretDonVi, JSON in and out. */
#include "lgsp_api.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "hub/core/files.h"
#include "hub/io/http_auth.h"
#include "hub/io/http_client.h"

struct lgsp_api {
  const struct lgsp_api_cfg *cfg;
  char *base;
  char *agency_secret, *client_secret, *ca_file;
  struct hub_http_tls tls;
  struct hub_http_auth *auth;
  size_t max_answer;
};

void lgsp_api_set_max_packet(struct lgsp_api *a, size_t packet_max) {
  if (!packet_max) packet_max = 64u << 20;
  a->max_answer = packet_max / 3 * 4 + 4 + (1u << 20); /* base64 of the packet, plus the JSON around it */
}

void lgsp_api_destroy(struct lgsp_api *a) {
  if (!a) return;
  hub_http_auth_destroy(a->auth);
  free(a->base);
  free(a->agency_secret);
  free(a->client_secret);
  free(a->ca_file);
  free(a);
}

static hub_err_t readable(const struct hub_plugin_env *env, const char *opt, const char *path, char *errbuf,
                          size_t errbuf_size) {
  if (access(path, R_OK) == 0) return HUB_OK;
  return hub_node_error(hub_plugin_env_at(env, opt), errbuf, errbuf_size, "%s: cannot read %s: %s", opt, path,
                        strerror(errno));
}

hub_err_t lgsp_api_new(const struct lgsp_api_cfg *cfg, const struct hub_plugin_env *env, struct lgsp_api **out,
                       char *errbuf, size_t errbuf_size) {
  struct lgsp_api *a = calloc(1, sizeof *a);
  hub_err_t rc = HUB_ERR_NOMEM;
  *out = NULL;
  if (!a) goto out;
  a->cfg = cfg;
  const char *urls[] = {cfg->endpoint, cfg->token_url}, *names[] = {"endpoint", "token_url"};
  for (int i = 0; i < 2; i++)
    if (strncasecmp(urls[i], "http://", 7) != 0 && strncasecmp(urls[i], "https://", 8) != 0) {
      rc = hub_node_error(hub_plugin_env_at(env, names[i]), errbuf, errbuf_size,
                          "%s must start with http:// or https://", names[i]);
      goto out;
    }
  size_t n = strlen(cfg->endpoint);
  while (n && cfg->endpoint[n - 1] == '/')
    n--;
  if (!(a->base = strndup(cfg->endpoint, n)) ||
      !(a->agency_secret = hub_plugin_env_path_new(env, cfg->agency_secret_file)) ||
      !(a->client_secret = hub_plugin_env_path_new(env, cfg->client_secret_file)) ||
      (cfg->ca_file && !(a->ca_file = hub_plugin_env_path_new(env, cfg->ca_file))))
    goto out;
  a->tls.ca_file = a->ca_file;
  lgsp_api_set_max_packet(a, 0);
  if ((rc = readable(env, "agency_secret_file", a->agency_secret, errbuf, errbuf_size)) != HUB_OK ||
      (rc = readable(env, "client_secret_file", a->client_secret, errbuf, errbuf_size)) != HUB_OK)
    goto out;
  struct hub_http_auth_cfg ac = {.kind = HUB_HTTP_AUTH_OAUTH2,
                                 .token_url = cfg->token_url,
                                 .client_id = cfg->client_id,
                                 .client_secret_file = a->client_secret,
                                 .scope = cfg->scope,
                                 .tls = &a->tls};
  rc = HUB_ERR_NOMEM;
  if (hub_http_auth_new(&ac, &a->auth) != HUB_OK) goto out;
  rc = HUB_OK;
out:
  if (rc != HUB_OK) {
    if (rc == HUB_ERR_NOMEM) snprintf(errbuf, errbuf_size, "lgsp-edoc: out of memory");
    lgsp_api_destroy(a);
    a = NULL;
  }
  *out = a;
  return rc;
}

void lgsp_answer_release(struct lgsp_answer *ans) {
  json_decref(ans->json);
  ans->json = NULL;
  ans->http_status = 0;
}

unsigned long lgsp_api_token_fetches(struct lgsp_api *a) {
  return hub_http_auth_fetches(a->auth);
}

char *lgsp_path_new(const char *base, const char *segment) {
  char *esc = curl_easy_escape(NULL, segment, 0);
  if (!esc) return NULL;
  size_t n = strlen(base) + strlen(esc) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", base, esc);
  curl_free(esc);
  return p;
}

/* The API's verdict in a 2xx answer: status "OK"/"200"/200/true, errorCode absent, 0 or "0". */
static int answer_ok(const json_t *j) {
  const json_t *st = json_object_get(j, "status"), *ec = json_object_get(j, "errorCode");
  int ok = !st || json_is_true(st) || (json_is_integer(st) && json_integer_value(st) == 200) ||
           (json_is_string(st) && (!strcasecmp(json_string_value(st), "OK") || !strcmp(json_string_value(st), "200")));
  if (ec && !json_is_null(ec))
    ok &= (json_is_integer(ec) && json_integer_value(ec) == 0) ||
          (json_is_string(ec) && !strcmp(json_string_value(ec), "0"));
  return ok;
}

hub_err_t lgsp_api_call(struct lgsp_api *a, const char *method, const char *path, const json_t *body,
                        struct lgsp_answer *ans, char *errbuf, size_t errbuf_size) {
  char *url = NULL, *text = NULL, *secret = NULL, *auth = NULL, *user = NULL, *pw = NULL, *sec_line = NULL;
  struct hub_http_response resp = {0};
  hub_err_t rc = HUB_ERR_NOMEM;
  memset(ans, 0, sizeof *ans);
  size_t ul = strlen(a->base) + strlen(path) + 2;
  if (!(url = malloc(ul))) goto out;
  snprintf(url, ul, "%s%s%s", a->base, path[0] == '/' ? "" : "/", path);
  if (body && !(text = json_dumps(body, JSON_COMPACT))) goto out;
  char se[600];
  size_t secret_len = 0;
  if ((rc = hub_secret_read(a->agency_secret, 4096, 1, &secret, &secret_len, se, sizeof se)) != HUB_OK) {
    snprintf(errbuf, errbuf_size, "lgsp-edoc %s %s: agency_secret_file: %s", method, path, se);
    goto out;
  }
  rc = HUB_ERR_NOMEM;
  size_t sl = strlen(secret) + 16;
  if (!(sec_line = malloc(sl))) goto out;
  snprintf(sec_line, sl, "secretDonVi: %s", secret);
  for (char *p = sec_line; *p; p++)
    if (*p == '\r' || *p == '\n') *p = ' ';
  for (int round = 0; round < 2; round++) { /* a second round only after a 401 to a cached token */
    char e[512];
    free(auth);
    auth = NULL;
    if ((rc = hub_http_auth_apply(a->auth, a->cfg->timeout_ms, &auth, &user, &pw, e, sizeof e)) != HUB_OK) {
      snprintf(errbuf, errbuf_size, "lgsp-edoc token: %s", e);
      if (rc != HUB_ERR_NOMEM && rc != HUB_ERR_IO && rc != HUB_ERR_TIMEOUT) rc = HUB_ERR_AUTH;
      goto out;
    }
    const char *headers[] = {auth, sec_line, "Content-Type: application/json", "Accept: application/json", NULL};
    struct hub_http_request req = {.method = method,
                                   .url = url,
                                   .headers = headers,
                                   .body = text,
                                   .body_len = text ? strlen(text) : 0,
                                   .timeout_ms = a->cfg->timeout_ms,
                                   .tls = &a->tls,
                                   .max_body = a->max_answer};
    hub_http_response_release(&resp);
    rc = hub_http_perform(&req, &resp);
    if (rc != HUB_OK) {
      snprintf(errbuf, errbuf_size, "lgsp-edoc %s %s: %s%s", method, path, resp.error,
               resp.too_large ? " (the packet is larger than the connector's max_size)" : "");
      if (resp.too_large) rc = HUB_ERR_TOO_LARGE;
      goto out;
    }
    if (resp.status == 401 && round == 0) {
      hub_http_auth_rejected(a->auth, auth);
      continue;
    }
    break;
  }
  ans->http_status = resp.status;
  json_error_t je;
  ans->json = resp.body_len ? json_loadb((const char *)resp.body, resp.body_len, 0, &je) : NULL;
  const char *raw = resp.body ? (const char *)resp.body : "";
  if (resp.status < 200 || resp.status > 299) {
    snprintf(errbuf, errbuf_size, "lgsp-edoc %s %s answered HTTP %ld: %.300s", method, path, resp.status, raw);
    rc = HUB_ERR_HTTP;
  } else if (!json_is_object(ans->json)) {
    snprintf(errbuf, errbuf_size, "lgsp-edoc %s %s: the answer is not a JSON object: %.300s", method, path, raw);
    rc = HUB_ERR_JSON;
  } else if (!answer_ok(ans->json)) {
    const char *d = json_string_value(json_object_get(ans->json, "errorDesc"));
    snprintf(errbuf, errbuf_size, "lgsp-edoc %s %s refused: %.300s", method, path, d ? d : raw);
    rc = HUB_ERR_DOWNSTREAM;
  } else {
    rc = HUB_OK;
  }
out:
  if (rc == HUB_ERR_NOMEM) snprintf(errbuf, errbuf_size, "lgsp-edoc: out of memory");
  hub_secret_free(secret, secret ? strlen(secret) : 0);
  hub_secret_free(sec_line, sec_line ? strlen(sec_line) : 0);
  free(auth);
  free(user);
  free(pw);
  free(url);
  free(text);
  hub_http_response_release(&resp);
  return rc;
}
