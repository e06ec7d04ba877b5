/* `lienthong demo`: the VNPost stand-in behind the provincial gateway (vn-standards.md §4.1, LGSP
 * variant), just enough for the `vnpost-tracking` source: an OAuth2 client-credentials token, then
 * orderTracking pages after lastId for the bearer of that token. Its entries are one order's way
 * back to the citizen, MyVNPost codes 1 (accepted), 6, 10, 12 (out for delivery), 14 (delivered:
 * the result returned to the citizen). */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo.h"

void demo_vnpost_init(struct demo_vnpost *v, const char *order) {
  static const struct {
    int code;
    const char *message;
  } plan[] = {{1, "Đã nhận hàng"}, {6, "Đi khỏi bưu cục"}, {10, "Đến bưu cục phát"}, {12, "Đang phát"},
              {14, "Phát thành công"}};
  snprintf(v->order, sizeof v->order, "%s", order);
  /* ObjectIds: the time, then a counter, increasing as VNPost's are. */
  unsigned t = (unsigned)time(NULL);
  for (size_t i = 0; i < sizeof plan / sizeof *plan; i++) {
    snprintf(v->entries[i].oid, sizeof v->entries[i].oid, "%08x%016zx", t, i + 1);
    v->entries[i].code = plan[i].code;
    v->entries[i].message = plan[i].message;
  }
  v->nentries = (int)(sizeof plan / sizeof *plan);
}

static char *error_of(const char *e) {
  json_t *a = json_pack("{s:s}", "error", e);
  char *t = a ? json_dumps(a, JSON_COMPACT) : NULL;
  json_decref(a);
  return t;
}

/* client_secret_basic (as the gateway documents) or client_secret_post */
static int client_ok(struct demo_vnpost *v, struct MHD_Connection *c, const char *body) {
  const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  char pair[256], want[400] = "Basic ";
  int n = snprintf(pair, sizeof pair, "%s:%s", v->client_id, v->client_secret);
  EVP_EncodeBlock((unsigned char *)want + 6, (const unsigned char *)pair, n);
  if (auth && !strcmp(auth, want)) return 1;
  char id[200], secret[200];
  snprintf(id, sizeof id, "client_id=%s", v->client_id);
  snprintf(secret, sizeof secret, "client_secret=%s", v->client_secret);
  return strstr(body, id) && strstr(body, secret);
}

void demo_vnpost_handle(struct demo_standin *s, struct MHD_Connection *c, const char *method, const char *url,
                        const char *body, size_t len, int *status, char **answer) {
  struct demo_vnpost *v = s->state;
  *status = 200;
  if (strcmp(method, "POST")) {
    *status = 405;
    *answer = error_of("POST only");
    return;
  }
  if (!strcmp(url, "/token")) {
    if (!strstr(body, "grant_type=client_credentials")) {
      *status = 400;
      *answer = error_of("unsupported_grant_type");
      demo_standin_record(s, "token refused: not client_credentials");
    } else if (!client_ok(v, c, body)) {
      *status = 401;
      *answer = error_of("invalid_client");
      demo_standin_record(s, "token refused: wrong client");
    } else {
      pthread_mutex_lock(&s->mu);
      snprintf(v->token, sizeof v->token, "demo-token-%d-%u", s->n + 1, (unsigned)time(NULL));
      json_t *a = json_pack("{s:s, s:s, s:i}", "access_token", v->token, "token_type", "Bearer", "expires_in", 3600);
      pthread_mutex_unlock(&s->mu);
      *answer = json_dumps(a, JSON_COMPACT);
      json_decref(a);
      demo_standin_record(s, "token issued to %s", v->client_id);
    }
    return;
  }
  const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  const char *service = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "service");
  pthread_mutex_lock(&s->mu);
  int tok_ok = auth && *v->token && !strncmp(auth, "Bearer ", 7) && !strcmp(auth + 7, v->token);
  pthread_mutex_unlock(&s->mu);
  if (!tok_ok) {
    *status = 401;
    *answer = error_of("invalid_token");
    demo_standin_record(s, "refused %s: no valid bearer token", service ? service : url);
    return;
  }
  if (strcmp(url, "/vnpost") || !service || strcmp(service, "orderTracking")) {
    *status = 404;
    *answer = error_of("unknown service");
    demo_standin_record(s, "refused %s?service=%s: unknown", url, service ? service : "");
    return;
  }
  json_t *req = json_loadb(body, len, 0, NULL);
  json_t *size = json_object_get(req, "pagesize"), *last = json_object_get(req, "lastId");
  if (!json_is_integer(size) || json_integer_value(size) < 1 || !json_is_string(last)) {
    *status = 400;
    *answer = error_of("pagesize (integer) and lastId (string) are required");
    demo_standin_record(s, "orderTracking refused: pagesize/lastId");
    json_decref(req);
    return;
  }
  json_t *docs = json_array();
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < (v->released ? v->nentries : 0) && json_array_size(docs) < (size_t)json_integer_value(size);
       i++)
    if (strcmp(v->entries[i].oid, json_string_value(last)) > 0)
      json_array_append_new(docs, json_pack("{s:{s:s}, s:s, s:i, s:s}", "_id", "$oid", v->entries[i].oid,
                                            "OrderNumber", v->order, "StatusCode", v->entries[i].code,
                                            "StatusMessage", v->entries[i].message));
  pthread_mutex_unlock(&s->mu);
  size_t n = json_array_size(docs);
  if (n) /* empty polls are not worth a line */
    demo_standin_record(s, "orderTracking after '%.24s': %zu entries, the last code %d", json_string_value(last), n,
                        (int)json_integer_value(json_object_get(json_array_get(docs, n - 1), "StatusCode")));
  json_t *a = json_pack("{s:{s:o}, s:I}", "_embedded", "rh:doc", docs, "_returned", (json_int_t)n);
  *answer = json_dumps(a, JSON_COMPACT);
  json_decref(a);
  json_decref(req);
}
