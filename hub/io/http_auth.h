/* Credentials for outgoing HTTP calls: a bearer token read from a file, HTTP basic with the
 * password read from a file, or OAuth2 client credentials (RFC 6749 §4.4) with the token cached
 * and fetched again shortly before it expires or after the endpoint answered 401. Only one
 * token fetch runs at a time per auth; other callers wait for its token. Secret files are read
 * when needed, so a rotated secret is picked up; secrets never appear in errors or logs. */
#ifndef HUB_HTTP_AUTH_H
#define HUB_HTTP_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "hub/core/err.h"
#include "hub/io/http_client.h"

enum hub_http_auth_kind { HUB_HTTP_AUTH_NONE, HUB_HTTP_AUTH_BEARER, HUB_HTTP_AUTH_BASIC, HUB_HTTP_AUTH_OAUTH2 };

struct hub_http_auth_cfg {
  enum hub_http_auth_kind kind;
  const char *token_file;         /* BEARER: the token */
  const char *user, *password_file; /* BASIC */
  const char *token_url, *client_id, *client_secret_file, *scope; /* OAUTH2 (scope may be NULL) */
  const struct hub_http_tls *tls; /* OAUTH2: for the token endpoint; NULL: defaults */
};

struct hub_http_auth;

/* Copies cfg (paths already resolved). Reads nothing yet. */
hub_err_t hub_http_auth_new(const struct hub_http_auth_cfg *cfg, struct hub_http_auth **out);
void hub_http_auth_destroy(struct hub_http_auth *a);

/* What a call needs: *header a malloc'd "Authorization: Bearer TOKEN" line (bearer, OAuth2), or
 * the user and password malloc'd (basic); all NULL for NONE. May fetch a token (bounded by
 * timeout_ms). On failure errbuf says why (HUB_ERR_IO: a file cannot be read; HUB_ERR_AUTH:
 * the token endpoint refused the client; HUB_ERR_HTTP/HUB_ERR_TIMEOUT: it failed). */
hub_err_t hub_http_auth_apply(struct hub_http_auth *a, int64_t timeout_ms, char **header, char **user,
                              char **password, char *errbuf, size_t errbuf_size);
/* The endpoint answered 401 to a call made with `header`: an OAuth2 token that is still the
 * cached one is dropped, so the next apply fetches a new one. */
void hub_http_auth_rejected(struct hub_http_auth *a, const char *header);
/* Token fetches so far (OAuth2), for tests and metrics. */
unsigned long hub_http_auth_fetches(struct hub_http_auth *a);

#endif
