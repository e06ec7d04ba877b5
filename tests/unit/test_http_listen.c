/* The `http-listen` source and the shared HTTP server (hub/io/http_server.h) on the `memory`
 * transport, driven with libcurl: every status code and its JSON body, HMAC signatures (good,
 * bad, missing), bearer tokens, oversized bodies with and without Content-Length, content
 * types, malformed JSON and XML (a DOCTYPE refused), keys from JSONPath, XPath and a header,
 * traceparent kept or started, three connectors on one address, 503 while the transport fails,
 * while the source is paused and while the hub stops, a connector stopping under load (every
 * committed request answered 202, no other), and mTLS with certificates made here by openssl.
 * Each 202's record is looked up in the topic: same lt.id as the answer, the exact body. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "hub/core/config.h"
#include "hub/core/log.h"
#include "hub/core/metrics.h"
#include "hub/core/stop.h"
#include "hub/engine/source.h"
#include "hub/io/http_server.h"
#include "hub/transport/memory/memory.h"
#include "memtest.h"

static char dir[] = "/tmp/lt-http-listen-XXXXXX";
static int port;
static const char *SECRET = "0123456789abcdef-shared";

struct resp {
  long status;
  char body[4096], headers[4096];
  size_t blen, hlen;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  struct resp *r = ud;
  size_t k = sz * n, room = sizeof r->body - 1 - r->blen;
  memcpy(r->body + r->blen, p, k < room ? k : room);
  r->blen += k < room ? k : room;
  r->body[r->blen] = 0;
  return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
  struct resp *r = ud;
  size_t k = sz * n, room = sizeof r->headers - 1 - r->hlen;
  memcpy(r->headers + r->hlen, p, k < room ? k : room);
  r->hlen += k < room ? k : room;
  r->headers[r->hlen] = 0;
  return k;
}

struct upload {
  const char *p;
  size_t left;
};

static size_t on_read(char *buf, size_t sz, size_t n, void *ud) {
  struct upload *u = ud;
  size_t k = sz * n < u->left ? sz * n : u->left;
  if (k > 1000) k = 1000; /* several chunks */
  memcpy(buf, u->p, k);
  u->p += k;
  u->left -= k;
  return k;
}

struct req {
  const char *method, *path, *ctype;
  const char *body;
  size_t len;          /* 0: strlen(body) */
  const char *hdrs[4]; /* extra headers */
  int chunked;
  const char *scheme, *ca, *cert, *key; /* TLS: https with this CA, client cert and key */
};

static struct resp request(const struct req *q) {
  struct resp r = {0};
  CURL *c = curl_easy_init();
  struct curl_slist *h = NULL;
  char url[256], ct[160];
  snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", q->scheme ? q->scheme : "http", port, q->path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  size_t len = q->body ? (q->len ? q->len : strlen(q->body)) : 0;
  struct upload up = {q->body, len};
  if (q->ctype) {
    snprintf(ct, sizeof ct, "Content-Type: %s", q->ctype);
    h = curl_slist_append(h, ct);
  } else {
    h = curl_slist_append(h, "Content-Type:"); /* none at all */
  }
  for (int i = 0; i < 4 && q->hdrs[i]; i++)
    h = curl_slist_append(h, q->hdrs[i]);
  h = curl_slist_append(h, "Expect:");
  if (!q->method || !strcmp(q->method, "POST")) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    if (q->chunked) {
      h = curl_slist_append(h, "Transfer-Encoding: chunked");
      curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt(c, CURLOPT_READDATA, &up);
    } else {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body ? q->body : "");
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  if (q->ca) curl_easy_setopt(c, CURLOPT_CAINFO, q->ca);
  if (q->cert) curl_easy_setopt(c, CURLOPT_SSLCERT, q->cert);
  if (q->key) curl_easy_setopt(c, CURLOPT_SSLKEY, q->key);
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  else
    snprintf(r.body, sizeof r.body, "curl: %s", curl_easy_strerror(rc));
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return r;
}

static void hmac_header(const char *body, size_t len, char out[96]) {
  unsigned char mac[32];
  unsigned mlen = 0;
  HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)body, len, mac, &mlen);
  int n = snprintf(out, 96, "X-Signature-256: sha256=");
  for (unsigned i = 0; i < mlen; i++)
    n += snprintf(out + n, (size_t)(96 - n), "%02x", mac[i]);
}

/* The "id" of a 202's body into id (37 bytes), or "". */
static void answer_id(const struct resp *r, char id[37]) {
  const char *p = strstr(r->body, "{\"id\":\"");
  id[0] = 0;
  if (p && strlen(p) >= 7 + 36 + 2) snprintf(id, 37, "%.36s", p + 7);
}

/* The record of `topic` whose lt.id is id, or NULL (c keeps it). */
static const struct hub_msg *record(struct coll *c, const char *topic, const char *id) {
  coll_clear(c);
  scan_topic(topic, c);
  for (int i = 0; i < c->n; i++) {
    const char *v = hub_msg_header_get_str(c->v[i], HUB_H_ID);
    if (v && !strcmp(v, id)) return c->v[i];
  }
  return NULL;
}

/* A 202 whose record holds exactly `body`, keyed `key` (NULL: no key); returns the record. */
static const struct hub_msg *accepted(const struct resp *r, struct coll *c, const char *topic, const char *body,
                                      const char *key) {
  char id[37];
  CHECK(r->status == 202);
  if (r->status != 202) fprintf(stderr, "  answer %ld %s\n", r->status, r->body);
  answer_id(r, id);
  CHECK(strlen(id) == 36);
  const struct hub_msg *m = record(c, topic, id);
  CHECK(m != NULL);
  if (!m) return NULL;
  CHECK(m->value_len == strlen(body) && !memcmp(m->value, body, m->value_len));
  if (key)
    CHECK(m->key_len == strlen(key) && !memcmp(m->key, key, m->key_len));
  else
    CHECK(m->key == NULL);
  return m;
}

/* An error answer: the status and {"error": ERROR, "detail": ...DETAIL...}. */
static void refused(const struct resp *r, long status, const char *error, const char *detail) {
  char want[256];
  CHECK(r->status == status);
  if (r->status != status) fprintf(stderr, "  got %ld %s\n", r->status, r->body);
  snprintf(want, sizeof want, "{\"error\":\"%s\",\"detail\":\"", error);
  CHECK(!strncmp(r->body, want, strlen(want)));
  CHECK_CONTAINS(r->body, detail);
  CHECK_CONTAINS(r->headers, "Content-Type: application/json");
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  int p = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
    p = ntohs(sa.sin_port);
  if (fd >= 0) close(fd);
  return p;
}

static void write_file(const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

struct hub_run {
  struct hub_config *cfg;
  struct hub_source_runner *r[4];
  size_t n;
};

static int start(struct hub_run *h, const char *yaml) {
  char e[1024] = "";
  memset(h, 0, sizeof *h);
  if (!(h->cfg = config_load_in(dir, yaml))) return 0;
  for (size_t i = 0; i < h->cfg->n_sources && i < 4; i++) {
    if (hub_source_runner_create(h->cfg, &h->cfg->sources[i], T, &h->r[i], e, sizeof e) != HUB_OK) {
      fprintf(stderr, "create: %s\n", e);
      return 0;
    }
    h->n++;
    hub_source_runner_start(h->r[i]);
  }
  double t0 = now_ms();
  for (size_t i = 0; i < h->n; i++)
    while (!hub_source_runner_started(h->r[i]) && now_ms() - t0 < 2000)
      sleep_ms(5);
  for (size_t i = 0; i < h->n; i++)
    if (!hub_source_runner_started(h->r[i])) return 0;
  return 1;
}

static void stop(struct hub_run *h) {
  for (size_t i = 0; i < h->n; i++)
    hub_source_runner_destroy(h->r[i]);
  hub_config_destroy(h->cfg);
  memset(h, 0, sizeof *h);
}

static void test_plain(void) {
  char yaml[2048];
  write_file("secret", "0123456789abcdef-shared\n");
  write_file("token", "tok-0123456789abcdef\n");
  snprintf(yaml, sizeof yaml,
           "hub: {transport: memory, instance: t, admin: {listen: ''}}\n"
           "connectors:\n"
           "  - {name: hmac, type: http-listen, topic: h.hmac, listen: '127.0.0.1:%d', path: /hmac, key: $.id,\n"
           "     max_body: 1KiB, auth: {hmac_sha256_secret_file: secret}}\n"
           "  - {name: bearer, type: http-listen, topic: h.bearer, listen: '127.0.0.1:%d', path: /bearer,\n"
           "     key: 'header:X-Key', auth: {bearer_token_file: token},\n"
           "     content_types: [application/json, application/xml, text/plain]}\n"
           "  - {name: xml, type: http-listen, topic: h.xml, listen: '127.0.0.1:%d', path: /xml, key: /doc/id}\n",
           port, port, port);
  struct hub_run h;
  int ok = start(&h, yaml);
  CHECK(ok);
  if (!ok) {
    stop(&h);
    return;
  }
  struct coll c = {0};
  char sig[96];
  const struct hub_msg *m;

  /* HMAC: good, bad, missing; the key from a JSONPath; traceparent started. */
  const char *b1 = "{\"id\": \"HS-001\", \"note\": \"Hồ sơ\"}";
  hmac_header(b1, strlen(b1), sig);
  struct resp r =
      request(&(struct req){.path = "/hmac", .ctype = "application/json; charset=utf-8", .body = b1, .hdrs = {sig}});
  m = accepted(&r, &c, "h.hmac", b1, "HS-001");
  CHECK_CONTAINS(r.headers, "Content-Type: application/json");
  if (m) {
    CHECK_STR(hub_msg_header_get_str(m, HUB_H_SOURCE), "hmac");
    CHECK_STR(hub_msg_header_get_str(m, HUB_H_CONTENT_TYPE), "application/json; charset=utf-8");
    const char *tp = hub_msg_header_get_str(m, HUB_H_TRACEPARENT);
    CHECK(tp && strlen(tp) == 55 && !strncmp(tp, "00-", 3) && tp[35] == '-' && !strcmp(tp + 52, "-01"));
  }
  r = request(
      &(struct req){.path = "/hmac", .ctype = "application/json", .body = "{\"id\": \"HS-002\"}", .hdrs = {sig}});
  refused(&r, 401, "signature mismatch", "X-Signature-256");
  r = request(&(struct req){.path = "/hmac", .ctype = "application/json", .body = "{\"id\": \"HS-002\"}"});
  refused(&r, 401, "signature missing", "header X-Signature-256 is missing");
  r = request(
      &(struct req){.path = "/hmac", .ctype = "application/json", .body = b1, .hdrs = {"X-Signature-256: sha256=00"}});
  refused(&r, 401, "signature mismatch", "HMAC-SHA256");

  /* traceparent: a valid one is kept, an invalid one replaced by a new trace. */
  const char *tp_in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  char tp_hdr[120];
  snprintf(tp_hdr, sizeof tp_hdr, "traceparent: %s", tp_in);
  r = request(&(struct req){.path = "/hmac", .ctype = "application/json", .body = b1, .hdrs = {sig, tp_hdr}});
  m = accepted(&r, &c, "h.hmac", b1, "HS-001");
  if (m) CHECK_STR(hub_msg_header_get_str(m, HUB_H_TRACEPARENT), tp_in);
  r = request(&(struct req){.path = "/hmac",
                            .ctype = "application/json",
                            .body = b1,
                            .hdrs = {sig, "traceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01"}});
  m = accepted(&r, &c, "h.hmac", b1, "HS-001");
  if (m) {
    const char *tp = hub_msg_header_get_str(m, HUB_H_TRACEPARENT);
    CHECK(tp && strlen(tp) == 55 && strncmp(tp + 3, "00000000", 8));
  }

  /* Malformed JSON, a key that is not there, more than max_body (with and without
   * Content-Length), content types. */
  const char *bad = "{\"id\": \"HS-003\",}";
  hmac_header(bad, strlen(bad), sig);
  r = request(&(struct req){.path = "/hmac", .ctype = "application/json", .body = bad, .hdrs = {sig}});
  refused(&r, 400, "malformed JSON", "body: line 1, column");
  const char *nokey = "{\"other\": 1}";
  hmac_header(nokey, strlen(nokey), sig);
  r = request(&(struct req){.path = "/hmac", .ctype = "application/json", .body = nokey, .hdrs = {sig}});
  refused(&r, 400, "missing key", "key $.id matched nothing in the body");
  static char big[3000];
  memset(big, ' ', sizeof big - 1);
  memcpy(big, "{\"id\": \"HS-004\"}", 16);
  hmac_header(big, strlen(big), sig);
  r = request(&(struct req){.path = "/hmac", .ctype = "application/json", .body = big, .hdrs = {sig}});
  refused(&r, 413, "body too large", "Content-Length 2999 is over the 1024 bytes that /hmac accepts");
  r = request(&(struct req){.path = "/hmac", .ctype = "application/json", .body = big, .hdrs = {sig}, .chunked = 1});
  refused(&r, 413, "body too large", "the body is over the 1024 bytes that /hmac accepts");
  big[1024] = 0; /* exactly max_body, chunked: accepted */
  hmac_header(big, strlen(big), sig);
  r = request(&(struct req){.path = "/hmac", .ctype = "application/json", .body = big, .hdrs = {sig}, .chunked = 1});
  accepted(&r, &c, "h.hmac", big, "HS-004");
  r = request(&(struct req){.path = "/hmac", .ctype = "text/plain", .body = b1});
  refused(&r, 415, "unsupported content type", "header Content-Type 'text/plain' is not accepted on /hmac");
  r = request(&(struct req){.path = "/hmac", .body = b1});
  refused(&r, 415, "unsupported content type", "Content-Type is missing");

  /* Bearer: good (the key from a header; text/plain is accepted here and kept raw), bad, missing. */
  r = request(&(struct req){.path = "/bearer",
                            .ctype = "text/plain",
                            .body = "not json {",
                            .hdrs = {"Authorization: Bearer tok-0123456789abcdef", "X-Key: K-77"}});
  accepted(&r, &c, "h.bearer", "not json {", "K-77");
  r = request(&(struct req){.path = "/bearer",
                            .ctype = "text/plain",
                            .body = "x",
                            .hdrs = {"Authorization: Bearer tok-0123456789abcdeX", "X-Key: K-77"}});
  refused(&r, 401, "token invalid", "bearer token");
  CHECK_CONTAINS(r.headers, "WWW-Authenticate: Bearer realm=\"lienthong\", error=\"invalid_token\"");
  r = request(&(struct req){.path = "/bearer", .ctype = "text/plain", .body = "x", .hdrs = {"X-Key: K-77"}});
  refused(&r, 401, "token missing", "Authorization");
  CHECK_CONTAINS(r.headers, "WWW-Authenticate: Bearer realm=\"lienthong\"");
  r = request(&(struct req){.path = "/bearer",
                            .ctype = "application/json",
                            .body = "{}",
                            .hdrs = {"Authorization: Bearer tok-0123456789abcdef"}});
  refused(&r, 400, "missing key", "header X-Key (the record key) is missing");

  /* XML: the key from an XPath; malformed; a DOCTYPE refused; JSON where XML is keyed. */
  const char *x1 = "<?xml version=\"1.0\"?>\n<doc><id>X-9</id><v>một</v></doc>";
  r = request(&(struct req){.path = "/xml", .ctype = "application/xml", .body = x1});
  accepted(&r, &c, "h.xml", x1, "X-9");
  r = request(&(struct req){.path = "/xml", .ctype = "application/xml", .body = "<doc><id>X-9</doc>"});
  refused(&r, 400, "malformed XML", "line 1");
  r = request(&(struct req){
      .path = "/xml", .ctype = "application/xml", .body = "<!DOCTYPE doc [<!ENTITY e \"x\">]><doc><id>&e;</id></doc>"});
  refused(&r, 400, "refused XML", "DOCTYPE");
  r = request(&(struct req){.path = "/xml", .ctype = "application/xml", .body = "<doc><other/></doc>"});
  refused(&r, 400, "missing key", "key /doc/id matched nothing in the body");
  r = request(&(struct req){.path = "/xml", .ctype = "application/json", .body = "{\"id\": 1}"});
  refused(&r, 400, "missing key", "key /doc/id is an XPath, but the body is not XML");

  /* What the server answers by itself. */
  r = request(&(struct req){.path = "/nowhere", .ctype = "application/json", .body = "{}"});
  refused(&r, 404, "not found", "no connector listens on path /nowhere");
  r = request(&(struct req){.method = "GET", .path = "/xml"});
  refused(&r, 405, "method not allowed", "GET /xml: only POST is accepted");
  CHECK_CONTAINS(r.headers, "Allow: POST");

  /* One address, one path: a second route on /xml, or other TLS settings, are refused. */
  struct hub_http_route *dup = NULL;
  char e[512] = "", listen[64];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  struct hub_http_route_cfg rc = {.owner = "again", .listen = listen, .path = "/xml", .max_body = 10};
  CHECK(hub_http_route_add(&rc, &dup, e, sizeof e) == HUB_ERR_CONFIG && !dup);
  CHECK_CONTAINS(e, "path /xml on 127.0.0.1:");
  CHECK_CONTAINS(e, "is already served by connector xml");
  rc.path = "/other";
  rc.tls.cert_file = "/x.pem";
  rc.tls.key_file = "/x.key";
  CHECK(hub_http_route_add(&rc, &dup, e, sizeof e) == HUB_ERR_CONFIG && !dup);
  CHECK_CONTAINS(e, "other TLS settings");

  /* 503: the transport fails the write (3 tries), then the source stays paused while the
   * probe's commit fails too; nothing of those requests is in the topic. */
  int before = count("h.xml");
  hub_memory_fail_commits("lienthong.xml.t", 4);
  const char *x2 = "<doc><id>X-10</id></doc>";
  r = request(&(struct req){.path = "/xml", .ctype = "application/xml", .body = x2});
  refused(&r, 503, "unavailable", "the transport did not take the write; nothing was written");
  CHECK_CONTAINS(r.headers, "Retry-After: 2");
  r = request(&(struct req){.path = "/xml", .ctype = "application/xml", .body = x2});
  refused(&r, 503, "unavailable", "the source is paused");
  CHECK_CONTAINS(r.headers, "Retry-After: 2");
  CHECK(count("h.xml") == before);
  double t0 = now_ms();
  do {
    sleep_ms(100);
    r = request(&(struct req){.path = "/xml", .ctype = "application/xml", .body = x2});
  } while (r.status == 503 && now_ms() - t0 < 5000);
  accepted(&r, &c, "h.xml", x2, "X-10");
  CHECK(count("h.xml") == before + 1);

  char *text = hub_metrics_render_new();
  CHECK_CONTAINS(text, "lienthong_http_requests_202_total ");
  CHECK_CONTAINS(text, "lienthong_http_requests_404_total 1\n");
  CHECK_CONTAINS(text, "lienthong_http_requests_405_total 1\n");
  CHECK_CONTAINS(text, "lienthong_http_requests_413_total 2\n");
  CHECK_CONTAINS(text, "lienthong_http_requests_415_total 2\n");
  free(text);
  int ready = hub_metrics_ready(e, sizeof e);
  CHECK(ready);

  /* The hub is stopping: emit refuses, the caller hears 503 stopping with a longer Retry-After. */
  hub_stop_request();
  r = request(&(struct req){.path = "/xml", .ctype = "application/xml", .body = x2});
  refused(&r, 503, "stopping", "the hub is stopping; nothing was written");
  CHECK_CONTAINS(r.headers, "Retry-After: 5");
  hub_stop_reset();
  CHECK(count("h.xml") == before + 1);

  /* A fourth connector on a path already served cannot start: the hub is not ready. */
  struct hub_run h2;
  char yaml2[512];
  snprintf(yaml2, sizeof yaml2,
           "hub: {transport: memory, instance: t2, admin: {listen: ''}}\n"
           "connectors:\n"
           "  - {name: clash, type: http-listen, topic: h.clash, listen: '127.0.0.1:%d', path: /xml}\n",
           port);
  CHECK(!start(&h2, yaml2));
  CHECK(!hub_metrics_ready(e, sizeof e));
  CHECK_CONTAINS(e, "connector clash is not running");
  stop(&h2);
  coll_clear(&c);
  stop(&h);
  /* Stopped: nothing listens on the address any more. */
  r = request(&(struct req){.path = "/xml", .ctype = "application/xml", .body = x2});
  CHECK(r.status == 0);
  hub_metrics_reset();
}

/* Clients posting in a loop while their connector stops: each stops at its first answer that
 * is not 202 (or no answer). */
struct loader {
  pthread_t th;
  int id, accepted;
  long last;
  int retry_ok; /* a last 503 said Retry-After: 5 */
  char (*ids)[37];
  int cap;
};

static void *load_main(void *p) {
  struct loader *l = p;
  for (int i = 0; i < l->cap; i++) {
    char body[64];
    snprintf(body, sizeof body, "{\"id\": \"L%d-%d\"}", l->id, i);
    struct resp r = request(&(struct req){.path = "/load", .ctype = "application/json", .body = body});
    l->last = r.status;
    l->retry_ok = r.status != 503 || strstr(r.headers, "Retry-After: 5\r\n");
    if (r.status != 202) break;
    answer_id(&r, l->ids[l->accepted++]);
  }
  return NULL;
}

/* A connector stops under load while another keeps the server: the requests it was handling
 * finish first (its state is not used after stop), every request whose record was committed
 * got its 202, none that did not; later requests get 503 (stopping) or 404 (gone). */
static void test_stop_under_load(void) {
  char yaml[512];
  snprintf(yaml, sizeof yaml,
           "hub: {transport: memory, instance: t, admin: {listen: ''}}\n"
           "connectors:\n"
           "  - {name: load, type: http-listen, topic: h.load, listen: '127.0.0.1:%d', path: /load, key: $.id}\n"
           "  - {name: stay, type: http-listen, topic: h.stay, listen: '127.0.0.1:%d', path: /stay}\n",
           port, port);
  struct hub_run h;
  int ok = start(&h, yaml);
  CHECK(ok);
  struct loader l[8];
  for (int i = 0; ok && i < 8; i++) {
    l[i] = (struct loader){.id = i, .cap = 5000};
    l[i].ids = calloc(5000, sizeof *l[i].ids);
    pthread_create(&l[i].th, NULL, load_main, &l[i]);
  }
  sleep_ms(400);
  hub_source_runner_destroy(h.r[0]);
  h.r[0] = NULL;
  int accepted = 0, missing = 0, after = 0;
  struct coll c = {0};
  for (int i = 0; ok && i < 8; i++)
    pthread_join(l[i].th, NULL);
  scan_topic("h.load", &c);
  for (int i = 0; ok && i < 8; i++) {
    accepted += l[i].accepted;
    after += (l[i].last == 503 && l[i].retry_ok) || l[i].last == 404;
    for (int j = 0; j < l[i].accepted; j++) {
      int found = 0;
      for (int k = 0; k < c.n && !found; k++) {
        const char *id = hub_msg_header_get_str(c.v[k], HUB_H_ID);
        found = id && !strcmp(id, l[i].ids[j]);
      }
      missing += !found;
    }
    free(l[i].ids);
  }
  CHECK(accepted > 0);
  CHECK(missing == 0);
  CHECK(c.n == accepted); /* no record whose caller was not told */
  CHECK(after == 8);
  struct resp r = request(&(struct req){.path = "/stay", .ctype = "application/json", .body = "{}"});
  CHECK(r.status == 202); /* the other connector still serves */
  coll_clear(&c);
  stop(&h);
  hub_metrics_reset();
}

static int sh(const char *cmd) {
  char full[2048];
  snprintf(full, sizeof full, "cd '%s' && (%s) >/dev/null 2>&1", dir, cmd);
  return system(full) == 0;
}

static void test_mtls(void) {
  const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  char cmd[1024];
  int ok = 1;
  snprintf(cmd, sizeof cmd, "openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj /CN=lt-test-ca", ec);
  ok &= sh(cmd);
  snprintf(cmd, sizeof cmd, "openssl req -x509 %s -keyout rogue.key -out rogue.pem -days 2 -subj /CN=lt-rogue-ca", ec);
  ok &= sh(cmd);
  write_file("srv.ext", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  write_file("cli.ext", "extendedKeyUsage=clientAuth\n");
  const char *certs[][4] = {{"srv", "ca", "srv.ext", "127.0.0.1"},
                            {"cli", "ca", "cli.ext", "lt-client"},
                            {"bad", "rogue", "cli.ext", "lt-rogue-client"}};
  for (int i = 0; i < 3; i++) {
    snprintf(cmd, sizeof cmd,
             "openssl req %s -keyout %s.key -out %s.csr -subj /CN=%s && openssl x509 -req -in %s.csr -CA %s.pem "
             "-CAkey %s.key -CAcreateserial -out %s.pem -days 2 -extfile %s",
             ec, certs[i][0], certs[i][0], certs[i][3], certs[i][0], certs[i][1], certs[i][1], certs[i][0],
             certs[i][2]);
    ok &= sh(cmd);
  }
  CHECK(ok);
  if (!ok) return;
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "hub: {transport: memory, instance: t, admin: {listen: ''}}\n"
           "connectors:\n"
           "  - {name: mtls, type: http-listen, topic: h.mtls, listen: '127.0.0.1:%d', path: /in,\n"
           "     tls: {cert: srv.pem, key: srv.key}, auth: {client_ca_file: ca.pem}}\n",
           port);
  struct hub_run h;
  ok = start(&h, yaml);
  CHECK(ok);
  if (ok) {
    char ca[512], cert[512], key[512], bcert[512], bkey[512];
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(cert, sizeof cert, "%s/cli.pem", dir);
    snprintf(key, sizeof key, "%s/cli.key", dir);
    snprintf(bcert, sizeof bcert, "%s/bad.pem", dir);
    snprintf(bkey, sizeof bkey, "%s/bad.key", dir);
    struct coll c = {0};
    const char *b = "{\"ma\": \"TLS-1\"}";
    struct resp r =
        request(&(struct req){.scheme = "https", .ca = ca, .path = "/in", .ctype = "application/json", .body = b});
    refused(&r, 401, "client certificate required", "client_ca_file");
    r = request(&(struct req){.scheme = "https",
                              .ca = ca,
                              .cert = bcert,
                              .key = bkey,
                              .path = "/in",
                              .ctype = "application/json",
                              .body = b});
    refused(&r, 401, "client certificate not trusted", "");
    r = request(&(struct req){
        .scheme = "https", .ca = ca, .cert = cert, .key = key, .path = "/in", .ctype = "application/json", .body = b});
    accepted(&r, &c, "h.mtls", b, NULL);
    r = request(&(struct req){.path = "/in", .ctype = "application/json", .body = b}); /* plain HTTP to TLS */
    CHECK(r.status != 202);
    coll_clear(&c);
  }
  stop(&h);
  hub_metrics_reset();
}

int main(void) {
  hub_log_set_level(HUB_LOG_ERROR);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  T = hub_transport_get("memory");
  CHECK(T != NULL);
  if (!T || !mkdtemp(dir) || (port = free_port()) < 0) return check_done();
  test_plain();
  test_stop_under_load();
  test_mtls();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  curl_global_cleanup();
  return check_done();
}
