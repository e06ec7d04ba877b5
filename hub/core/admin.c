/* Admin HTTP endpoints (see admin.h). Runs in libmicrohttpd's own thread; reads only atomics
 * and the metrics registry. */
#include "hub/core/admin.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/files.h"
#include "hub/core/log.h"
#include "hub/core/metrics.h"

struct hub_admin {
  struct MHD_Daemon *d;
  char *token;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type, const char *body,
                             size_t len, int take) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, (void *)body, take ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", type);
  MHD_add_response_header(r, "Cache-Control", "no-store");
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static int authorised(struct hub_admin *a, struct MHD_Connection *c) {
  if (!a->token) return 1;
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  if (!h || strncmp(h, "Bearer ", 7)) return 0;
  size_t n = strlen(h + 7), m = strlen(a->token);
  return n == m && CRYPTO_memcmp(h + 7, a->token, n) == 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  struct hub_admin *a = cls;
  (void)version, (void)upload, (void)con_cls;
  if (*upload_size) {
    *upload_size = 0;
    return MHD_YES;
  }
  if (strcmp(method, "GET") && strcmp(method, "HEAD"))
    return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "only GET\n", 9, 0);
  if (!strcmp(url, "/live")) return reply(c, MHD_HTTP_OK, "text/plain", "live\n", 5, 0);
  if (!authorised(a, c)) return reply(c, MHD_HTTP_UNAUTHORIZED, "text/plain", "bearer token required\n", 22, 0);
  if (!strcmp(url, "/ready")) {
    char why[256], body[300];
    int ok = hub_metrics_ready(why, sizeof why);
    int n = snprintf(body, sizeof body, "%s\n", why);
    return reply(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", body, (size_t)n, 0);
  }
  if (!strcmp(url, "/metrics")) {
    char *m = hub_metrics_render_new();
    if (!m) return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "out of memory\n", 14, 0);
    return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4", m, strlen(m), 1);
  }
  return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found: try /live, /ready or /metrics\n", 41, 0);
}

static char *read_token(const char *base_dir, const char *file, char *errbuf, size_t errbuf_size) {
  char *path = hub_path_resolve_new(base_dir, file), *buf = NULL, why[512];
  size_t n = 0;
  if (!path) {
    snprintf(errbuf, errbuf_size, "admin token file %s: out of memory", file);
    goto fail;
  }
  if (hub_file_read(path, 4096, &buf, &n, why, sizeof why) != HUB_OK) {
    snprintf(errbuf, errbuf_size, "admin token file %s", why);
    goto fail;
  }
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = '\0';
  if (n < 16) {
    snprintf(errbuf, errbuf_size, "admin token file %s: the token must have at least 16 characters", path);
    goto fail;
  }
  free(path);
  return buf;
fail:
  free(path);
  free(buf);
  return NULL;
}

hub_err_t hub_admin_start(const struct hub_admin_cfg *cfg, const char *base_dir, struct hub_admin **out, char *errbuf,
                          size_t errbuf_size) {
  *out = NULL;
  if (!cfg->listen || !*cfg->listen) return HUB_OK;
  char host[256];
  const char *colon = strrchr(cfg->listen, ':');
  long port = colon ? strtol(colon + 1, NULL, 10) : -1;
  if (!colon || port < 0 || port > 65535 || (size_t)(colon - cfg->listen) >= sizeof host) {
    snprintf(errbuf, errbuf_size, "hub.admin.listen '%s' must be host:port", cfg->listen);
    return HUB_ERR_CONFIG;
  }
  memcpy(host, cfg->listen, (size_t)(colon - cfg->listen));
  host[colon - cfg->listen] = '\0';
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, strcmp(host, "localhost") ? host : "127.0.0.1", &sa.sin_addr) != 1) {
    snprintf(errbuf, errbuf_size, "hub.admin.listen '%s': host must be an IPv4 address", cfg->listen);
    return HUB_ERR_CONFIG;
  }
  struct hub_admin *a = calloc(1, sizeof *a);
  if (!a) return HUB_ERR_NOMEM;
  if (cfg->token_file && *cfg->token_file && !(a->token = read_token(base_dir, cfg->token_file, errbuf, errbuf_size))) {
    free(a);
    return HUB_ERR_CONFIG;
  }
  a->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, handle, a,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                          MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_END);
  if (!a->d) {
    snprintf(errbuf, errbuf_size, "admin server cannot listen on %s (port in use?)", cfg->listen);
    free(a->token);
    free(a);
    return HUB_ERR_IO;
  }
  hub_log(HUB_LOG_INFO, "admin", "serving /live /ready /metrics on http://%s", cfg->listen);
  *out = a;
  return HUB_OK;
}

void hub_admin_stop(struct hub_admin *a) {
  if (!a) return;
  MHD_stop_daemon(a->d);
  free(a->token);
  free(a);
}
