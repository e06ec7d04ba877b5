/* VXP calls (vxp_api.h): the XroadVnpt-* headers, the HMAC, the call and its JSON answer. */
#include "vxp_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "hub/core/files.h"
#include "hub/io/http_client.h"
#include "hub/trust/checksum.h"

struct vxp_api {
  const struct vxp_api_cfg *cfg;
  char *base; /* endpoint without a trailing slash */
  char *secret_path;
  char *ca_file;
  struct hub_http_tls tls;
  size_t max_answer;
};

void vxp_api_destroy(struct vxp_api *a) {
  if (!a) return;
  free(a->base);
  free(a->secret_path);
  free(a->ca_file);
  free(a);
}

hub_err_t vxp_api_new(const struct vxp_api_cfg *cfg, const struct hub_plugin_env *env, struct vxp_api **out,
                      char *errbuf, size_t errbuf_size) {
  struct vxp_api *a = calloc(1, sizeof *a);
  *out = NULL;
  if (!a) goto oom;
  a->cfg = cfg;
  if (strncasecmp(cfg->endpoint, "http://", 7) != 0 && strncasecmp(cfg->endpoint, "https://", 8) != 0) {
    vxp_api_destroy(a);
    return hub_node_error(hub_plugin_env_at(env, "endpoint"), errbuf, errbuf_size,
                          "endpoint must start with http:// or https://");
  }
  size_t n = strlen(cfg->endpoint);
  while (n && cfg->endpoint[n - 1] == '/')
    n--;
  if (!(a->base = strndup(cfg->endpoint, n))) goto oom;
  if (!(a->secret_path = hub_plugin_env_path_new(env, cfg->secret_file))) goto oom;
  if (cfg->ca_file && !(a->ca_file = hub_plugin_env_path_new(env, cfg->ca_file))) goto oom;
  a->tls.ca_file = a->ca_file;
  a->max_answer = edoc_answer_limit(0);
  if (access(a->secret_path, R_OK) != 0) {
    hub_err_t rc = hub_node_error(hub_plugin_env_at(env, "secret_file"), errbuf, errbuf_size,
                                  "secret_file: cannot read %s: %s", a->secret_path, strerror(errno));
    vxp_api_destroy(a);
    return rc;
  }
  *out = a;
  return HUB_OK;
oom:
  vxp_api_destroy(a);
  snprintf(errbuf, errbuf_size, "vxp: out of memory");
  return HUB_ERR_NOMEM;
}

size_t edoc_answer_limit(size_t packet_max) {
  if (!packet_max) packet_max = 64u << 20;
  return packet_max / 3 * 4 + 4 + (1u << 20); /* base64 of the packet, plus 1 MiB for the JSON around it */
}

void vxp_api_set_max_packet(struct vxp_api *a, size_t packet_max) {
  a->max_answer = edoc_answer_limit(packet_max);
}

const char *vxp_api_organ_id(const struct vxp_api *a) {
  return a->cfg->organ_id;
}

void vxp_answer_release(struct vxp_answer *ans) {
  json_decref(ans->json);
  ans->json = NULL;
  ans->http_status = 0;
}

/* ddMMyyyy'T'HHmmss+SSSS: the SDK's SimpleDateFormat, local time, milliseconds in 4 digits. */
static void timestamp(char out[32]) {
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  localtime_r(&tv.tv_sec, &tm);
  char d[24];
  strftime(d, sizeof d, "%d%m%YT%H%M%S", &tm);
  snprintf(out, 32, "%s+%04d", d, (int)(tv.tv_usec / 1000));
}

static char *line_new(const char *name, const char *value) {
  size_t n = strlen(name) + strlen(value) + 3;
  char *s = malloc(n);
  if (!s) return NULL;
  snprintf(s, n, "%s: %s", name, value);
  for (char *p = s; *p; p++) /* a value must not smuggle a header in */
    if (*p == '\r' || *p == '\n') *p = ' ';
  return s;
}

#define MAX_LOGICAL 12

hub_err_t vxp_api_call(struct vxp_api *a, const char *op, const char *messagetype, const char *const *names,
                       const char *const *values, size_t n, const char *const *plain, const void *body, size_t len,
                       const char *content_type, struct vxp_answer *ans, char *errbuf, size_t errbuf_size) {
  const struct vxp_api_cfg *c = a->cfg;
  const char *ln[MAX_LOGICAL], *lv[MAX_LOGICAL];
  char ts[32], hash[65], *sign_json = NULL, *key_list = NULL, *secret = NULL, *url = NULL;
  char *lines[MAX_LOGICAL + 16] = {0};
  size_t nl = 0, secret_len = 0, n_plain = 0;
  struct hub_http_response resp = {0};
  hub_err_t rc = HUB_ERR_NOMEM;
  memset(ans, 0, sizeof *ans);
  if (n + 5 > MAX_LOGICAL) {
    snprintf(errbuf, errbuf_size, "vxp %s: too many headers", op);
    return HUB_ERR_INVALID_ARG;
  }
  timestamp(ts);
  size_t k = 0;
  ln[k] = "systemid", lv[k++] = c->systemid;
  ln[k] = "timestamp", lv[k++] = ts;
  ln[k] = "servicetype", lv[k++] = "eDoc";
  ln[k] = "messagetype", lv[k++] = messagetype ? messagetype : "edoc";
  ln[k] = "from", lv[k++] = c->organ_id;
  for (size_t i = 0; i < n; i++)
    ln[k] = names[i], lv[k++] = values[i];
  if ((rc = hub_vxp_sign_header_new(ln, lv, k, &sign_json, &key_list, errbuf, errbuf_size)) != HUB_OK) goto out;
  char e[600]; /* read for each call, so a rotated secret is picked up */
  if ((rc = hub_secret_read(a->secret_path, 4096, 1, &secret, &secret_len, e, sizeof e)) != HUB_OK) {
    snprintf(errbuf, errbuf_size, "vxp %s: the secret file: %s", op, e);
    goto out;
  }
  hub_vxp_hash_header(secret, secret_len, sign_json, strlen(sign_json), hash);
  rc = HUB_ERR_NOMEM;
  for (size_t i = 0; i < k; i++) {
    char name[64];
    snprintf(name, sizeof name, "XroadVnpt-%s", ln[i]);
    if (!(lines[nl++] = line_new(name, lv[i]))) goto out;
  }
  if (!(lines[nl++] = line_new("XroadVnpt-sign-header-key", key_list)) ||
      !(lines[nl++] = line_new("XroadVnpt-sign-header", sign_json)) ||
      !(lines[nl++] = line_new("XroadVnpt-hash-header", hash)) ||
      !(lines[nl++] = line_new("XroadVnpt-version", c->version)) ||
      !(lines[nl++] = line_new("User-Agent", c->user_agent)) ||
      !(lines[nl++] = line_new("Content-Type", content_type ? content_type : "application/json")))
    goto out;
  for (; plain && plain[n_plain] && nl < MAX_LOGICAL + 15; n_plain++)
    if (!(lines[nl++] = strdup(plain[n_plain]))) goto out;
  size_t ul = strlen(a->base) + strlen(op) + 2;
  if (!(url = malloc(ul))) goto out;
  snprintf(url, ul, "%s/%s", a->base, op);
  struct hub_http_request req = {.method = "POST",
                                 .url = url,
                                 .headers = (const char *const *)lines,
                                 .body = body,
                                 .body_len = len,
                                 .timeout_ms = c->timeout_ms,
                                 .tls = &a->tls,
                                 .max_body = a->max_answer};
  rc = hub_http_perform(&req, &resp);
  if (rc != HUB_OK) {
    snprintf(errbuf, errbuf_size, "vxp %s: %s%s", op, resp.error,
             resp.too_large ? " (the packet is larger than the connector's max_size)" : "");
    if (resp.too_large) rc = HUB_ERR_TOO_LARGE;
    goto out;
  }
  ans->http_status = resp.status;
  json_error_t je;
  ans->json = resp.body_len ? json_loadb((const char *)resp.body, resp.body_len, 0, &je) : NULL;
  const char *st = json_string_value(json_object_get(ans->json, "status"));
  json_t *ec = json_object_get(ans->json, "ErrorCode");
  const char *desc = json_string_value(json_object_get(ans->json, "ErrorDesc"));
  char code[32] = "";
  if (json_is_string(ec))
    snprintf(code, sizeof code, "%s", json_string_value(ec));
  else if (json_is_integer(ec))
    snprintf(code, sizeof code, "%lld", (long long)json_integer_value(ec));
  if (resp.status != 200) {
    snprintf(errbuf, errbuf_size, "vxp %s answered HTTP %ld: %.300s", op, resp.status,
             resp.body ? (const char *)resp.body : "");
    rc = HUB_ERR_HTTP;
  } else if (!json_is_object(ans->json)) {
    /* gateways are known to answer non-JSON: report the raw body */
    snprintf(errbuf, errbuf_size, "vxp %s: the answer is not a JSON object: %.300s", op,
             resp.body ? (const char *)resp.body : "");
    rc = HUB_ERR_JSON;
  } else if (!st || strcasecmp(st, "OK") != 0 || (code[0] && strcmp(code, "0") != 0)) {
    snprintf(errbuf, errbuf_size, "vxp %s answered %s, ErrorCode %s: %.300s", op, st ? st : "(no status)",
             code[0] ? code : "(none)", desc ? desc : "");
    rc = HUB_ERR_DOWNSTREAM;
  } else {
    rc = HUB_OK;
  }
out:
  if (rc == HUB_ERR_NOMEM) snprintf(errbuf, errbuf_size, "vxp %s: out of memory", op);
  for (size_t i = 0; i < nl; i++)
    free(lines[i]);
  hub_secret_free(secret, secret_len);
  free(sign_json);
  free(key_list);
  free(url);
  hub_http_response_release(&resp);
  return rc;
}
