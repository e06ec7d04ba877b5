/* The HTTP request handling of the webhook sources on hostile requests: http-listen (HMAC,
 * bearer, XML with an XPath key, open with several content types), onestop and paygov-confirm,
 * all on one shared server (hub/io/http_server.c), run by the real source runners on the memory
 * transport. The input is raw HTTP/1.1: up to MAX_PIPELINED requests one after the other, as
 * on one keep-alive connection. Each is decoded as libmicrohttpd would hand it over (request
 * line with the path %-decoded, headers, the body as Content-Length or chunked framing delimits
 * it; a body shorter than its Content-Length is a client gone away) and served in-process with
 * hub_http_serve, the same request handling the socket's access handler drives, the body in
 * pieces of a size taken from the input.
 *
 * Besides crashes, leaks and sanitizer reports, the answers are checked (abort on a breach):
 * - the status is one the handling gives a healthy hub (no 500, no 503 but on LATER, a path
 *   reserved for a connector not started: there always 503 with Retry-After) and the body is a
 *   JSON object, {"error", "detail"} strings on a 4xx and 5xx;
 * - a 202 or 200 only for a body within max_body; a 202 on /hmac or /onestop/events only with
 *   an X-Signature-256 that is the HMAC-SHA256 of the body (computed here), on /bearer only
 *   with the token; a JSON body accepted only when it parses;
 * - a 202 has exactly one new record on its topic, with the answer's lt.id and the body's exact
 *   bytes; any other answer adds none;
 * - a PayGov reply MaLoi 00 only when MaXacThuc over the confirm fields (computed here) holds;
 * - a record's traceparent is valid W3C Trace Context;
 * - two accepted requests of one input share an lt.id exactly when they are one event (same
 *   route, same Idempotency-Key; on onestop, without one, the same body eventId).
 * Every RESET_EVERY inputs the connectors are stopped and the memory transport forgotten, so
 * the records kept stay bounded.
 *
 * LT_FUZZ_HTTP_RAW=1: the input goes as raw bytes over a socket to the same server instead
 * (libmicrohttpd's parsing, then the same handling on its connection thread); only crashes,
 * leaks, sanitizer reports and a server that stops answering are caught. Not for CI: the
 * handling runs on another thread, so coverage and timing vary from run to run.
 *
 * LT_FUZZ_HTTP_COMPARE=1: each complete request is also written out again and sent over the
 * socket, and both answers must have the same status: the in-process path is the socket's
 * (http_equiv.py runs this on the seeds in CI). */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "hub/core/config.h"
#include "hub/core/freeport.h"
#include "hub/core/log.h"
#include "hub/engine/source.h"
#include "hub/io/http_server.h"
#include "hub/transport/memory/memory.h"
#include "hub/transport/transport.h"

/* The same secrets as the seeds (http_seeds.py). */
#define SECRET "fuzz-hmac-secret-0123456789"
#define TOKEN "fuzz-bearer-token-0123456789"
#define PAYKEY "fuzz-paygov-key-0123"
#define PARTNER "DT01"
#define LATER "/later" /* reserved, never served */
#define RESET_EVERY 250
#define MAX_HEADERS 256
#define MAX_PIPELINED 4
#define HEAD_MAX (32 * 1024) /* libmicrohttpd's default memory pool: a longer head gets its 431 */

struct route {
  const char *path, *topic;
  size_t max_body;
  enum { R_PLAIN, R_HMAC, R_BEARER, R_ONESTOP, R_PAYGOV } kind;
};
static const struct route routes[] = {
    {"/hmac", "f.hmac", 4096, R_HMAC},
    {"/bearer", "f.bearer", 4096, R_BEARER},
    {"/xml", "f.xml", 8192, R_PLAIN},
    {"/open", "f.open", 65536, R_PLAIN},
    {"/onestop/events", "f.onestop", 65536, R_ONESTOP},
    {"/paygov/confirm", "f.paygov", 65536, R_PAYGOV},
};
#define N_ROUTES (sizeof routes / sizeof *routes)

static const struct hub_transport_ops *T;
static char dir[] = "/tmp/lt-fuzz-http-XXXXXX", listen_addr[64];
static struct hub_config *cfg;
static struct hub_source_runner *runners[8];
static size_t n_runners;
static unsigned long runs;

#define FAIL(...)                                                                                                      \
  do {                                                                                                                 \
    fprintf(stderr, "fuzz_http_listen: " __VA_ARGS__);                                                                 \
    fputc('\n', stderr);                                                                                               \
    abort();                                                                                                           \
  } while (0)

static void write_file(const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f)) FAIL("cannot write %s", path);
}

static void hub_start(void) {
  char yaml[4096], path[512], e[1024] = "";
  snprintf(yaml, sizeof yaml,
           "hub: {transport: memory, instance: fuzz, admin: {listen: ''}}\n"
           "connectors:\n"
           "  - {name: hmac, type: http-listen, topic: f.hmac, listen: '%s', path: /hmac, key: $.id, max_body: 4KiB,\n"
           "     auth: {hmac_sha256_secret_file: secret}}\n"
           "  - {name: bearer, type: http-listen, topic: f.bearer, listen: '%s', path: /bearer, key: 'header:X-Key',\n"
           "     max_body: 4KiB, auth: {bearer_token_file: token},\n"
           "     content_types: [application/json, application/xml, text/plain]}\n"
           "  - {name: xml, type: http-listen, topic: f.xml, listen: '%s', path: /xml, key: /doc/id, max_body: 8KiB}\n"
           "  - {name: open, type: http-listen, topic: f.open, listen: '%s', path: /open, max_body: 64KiB,\n"
           "     content_types: [application/json, application/xml, application/soap+xml, application/ld+json,\n"
           "                     text/plain, application/octet-stream]}\n"
           "  - {name: onestop, type: onestop, topic: f.onestop, listen: '%s', path: /onestop/events,\n"
           "     hmac_sha256_secret_file: secret, max_body: 64KiB}\n"
           "  - {name: paygov, type: paygov-confirm, topic: f.paygov, listen: '%s', path: /paygov/confirm,\n"
           "     partner: " PARTNER ", key_file: paykey, rejected_topic: f.paygov.rejected, max_body: 64KiB}\n",
           listen_addr, listen_addr, listen_addr, listen_addr, listen_addr, listen_addr);
  snprintf(path, sizeof path, "%s/hub.yaml", dir);
  write_file("hub.yaml", yaml);
  if (hub_config_load(path, &cfg, e, sizeof e) != HUB_OK) FAIL("config: %s", e);
  for (size_t i = 0; i < cfg->n_sources && i < 8; i++) {
    if (hub_source_runner_create(cfg, &cfg->sources[i], T, &runners[i], e, sizeof e) != HUB_OK) FAIL("create: %s", e);
    n_runners++;
    hub_source_runner_start(runners[i]);
  }
  for (int w = 0; w < 4000; w++) {
    size_t up = 0;
    for (size_t i = 0; i < n_runners; i++)
      up += (size_t)hub_source_runner_started(runners[i]);
    if (up == n_runners) return;
    usleep(1000);
  }
  FAIL("the connectors did not start");
}

static void hub_stop(void) {
  for (size_t i = 0; i < n_runners; i++)
    hub_source_runner_destroy(runners[i]);
  n_runners = 0;
  hub_config_destroy(cfg);
  cfg = NULL;
  if (hub_memory_reset() != HUB_OK) FAIL("memory transport still in use");
}

static void setup(void) {
  hub_log_set_level(HUB_LOG_ERROR);
  T = hub_transport_get("memory");
  int port = hub_free_port(-1);
  if (!T || !mkdtemp(dir) || port < 0) FAIL("setup");
  snprintf(listen_addr, sizeof listen_addr, "127.0.0.1:%d", port);
  write_file("secret", SECRET "\n");
  write_file("token", TOKEN "\n");
  write_file("paykey", PAYKEY "\n");
  hub_start();
  /* A connector that would serve /later once started: 503 "starting" there, never 404. */
  if (hub_http_route_reserve(listen_addr, LATER) != HUB_OK) FAIL("reserve");
}

/* ---- the request, as libmicrohttpd would hand it over ---- */

struct request {
  char *head;   /* the copy the strings below point into */
  char *target; /* the request line's target as sent (malloc'd) */
  struct hub_http_request r;
  struct hub_http_header h[MAX_HEADERS];
  size_t chunk;
  int complete;
};

static int hexval(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
  return s;
}

static const char *header(const struct request *q, const char *name) {
  for (size_t i = 0; i < q->r.n_headers; i++)
    if (!strcasecmp(q->h[i].name, name)) return q->h[i].value;
  return NULL;
}

/* The request at the start of data; *used: its bytes (the next pipelined request starts there).
 * 0: a request libmicrohttpd answers itself (400, 431) or never hands over. */
static int decode(const uint8_t *data, size_t size, struct request *q, size_t *used) {
  size_t end = 0, body_at = 0;
  for (size_t i = 0; i < size && !body_at; i++) /* the head ends at an empty line */
    if (data[i] == '\n' && i + 1 < size && data[i + 1] == '\n')
      end = i, body_at = i + 2;
    else if (data[i] == '\n' && i + 2 < size && data[i + 1] == '\r' && data[i + 2] == '\n')
      end = i, body_at = i + 3;
  if (!body_at || end > HEAD_MAX || memchr(data, '\0', end)) return 0;
  q->head = fuzz_cstr_new(data, end);
  char *save = NULL, *line = strtok_r(q->head, "\n", &save);
  if (!line) return 0;
  line[strcspn(line, "\r")] = '\0';
  char *sp = strchr(line, ' ');
  if (!sp || sp == line) return 0;
  *sp = '\0';
  char *url = sp + 1, *ver = strchr(url, ' ');
  if (ver) *ver = '\0';
  if (!*url || !(q->target = strdup(url))) return 0;
  url[strcspn(url, "?")] = '\0'; /* the handler gets the path only, %XX decoded */
  char *w = url;
  for (const char *p = url; *p; p++) {
    int hi = p[1] ? hexval(p[1]) : -1, lo = hi >= 0 && p[2] ? hexval(p[2]) : -1;
    if (*p == '%' && lo >= 0) {
      *w++ = (char)(hi * 16 + lo);
      p += 2;
    } else {
      *w++ = *p;
    }
  }
  *w = '\0';
  q->r.method = line;
  q->r.url = url;
  q->r.headers = q->h;
  while ((line = strtok_r(NULL, "\n", &save))) {
    line[strcspn(line, "\r")] = '\0';
    char *colon = strchr(line, ':');
    if (!colon || colon == line || line[0] == ' ' || line[0] == '\t') return 0;
    if (q->r.n_headers == MAX_HEADERS) return 0;
    *colon = '\0';
    q->h[q->r.n_headers++] = (struct hub_http_header){line, trim(colon + 1)};
  }
  const uint8_t *body = data + body_at;
  size_t avail = size - body_at;
  const char *te = header(q, "Transfer-Encoding"), *cl = header(q, "Content-Length");
  q->complete = 1;
  if (te && strcasestr(te, "chunked")) {
    q->r.len = avail; /* already de-chunked (the framing is libmicrohttpd's): the rest */
  } else if (cl) {
    if (!*cl || strspn(cl, "0123456789") != strlen(cl) || strlen(cl) > 19) return 0; /* its 400 */
    unsigned long long n = strtoull(cl, NULL, 10);
    q->r.len = n < avail ? (size_t)n : avail;
    q->complete = n <= avail;
  } else {
    q->r.len = 0;
  }
  q->r.body = body;
  q->chunk = 1 + (size * 31u + (size ? data[size - 1] : 0u)) % 3000u;
  *used = body_at + q->r.len;
  return 1;
}

/* ---- the oracles ---- */

static const struct route *route_of(const char *url) {
  for (size_t i = 0; i < N_ROUTES; i++)
    if (!strcmp(routes[i].path, url)) return &routes[i];
  return NULL;
}

static void hex(const unsigned char *b, size_t n, char *out) {
  for (size_t i = 0; i < n; i++)
    snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* X-Signature-256 is sha256=HEX of the HMAC-SHA256 of the body (hex of either case). */
static int hmac_ok(const struct request *q) {
  const char *h = header(q, "X-Signature-256");
  unsigned char mac[32];
  unsigned len = 0;
  char want[65];
  HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), q->r.body, q->r.len, mac, &len);
  hex(mac, 32, want);
  return h && !strncasecmp(h, "sha256=", 7) && strlen(h + 7) == 64 && !strcasecmp(h + 7, want);
}

/* The media type of the request, lower-cased, without parameters. */
static void media_type(const struct request *q, char *out, size_t cap) {
  const char *v = header(q, "Content-Type");
  size_t n = 0;
  for (v = v ? v : ""; *v == ' ' || *v == '\t'; v++) {
  }
  for (; *v && *v != ';' && *v != ' ' && *v != '\t' && n + 1 < cap; v++)
    out[n++] = (char)(*v >= 'A' && *v <= 'Z' ? *v + 32 : *v);
  out[n] = '\0';
}

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), m = strlen(tail);
  return n >= m && !strcmp(s + n - m, tail);
}

static json_t *parse(const struct request *q) {
  const unsigned char *b = q->r.body;
  size_t n = q->r.len;
  if (n >= 3 && !memcmp(b, "\xEF\xBB\xBF", 3)) b += 3, n -= 3;
  return json_loadb((const char *)b, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
}

/* MaXacThuc as the platform computes it: SHA-256 hex of the confirm fields joined with | then |KEY. */
static int paygov_mac_ok(const struct request *q) {
  static const char *const fields[] = {"LoaiBanTin", "MaLoi",      "MaDoiTac",   "MaThamChieu", "SoTien",
                                       "MaTienTe",   "MaGiaoDich", "MaNganHang", "ThoiGianGD",  "ThongTinGiaoDich"};
  json_t *o = parse(q);
  int ok = json_is_object(o);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  ok = ok && md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
  for (size_t i = 0; ok && i < sizeof fields / sizeof *fields; i++) {
    json_t *v = json_object_get(o, fields[i]);
    char num[32];
    const char *t = NULL;
    if (!v && !strcmp(fields[i], "MaDoiTac"))
      t = PARTNER;
    else if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
      t = json_string_value(v);
    else if (json_is_integer(v))
      snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v)), t = num;
    else if (json_is_boolean(v))
      t = json_is_true(v) ? "true" : "false";
    ok = t && !strchr(t, '|') && (i == 0 || EVP_DigestUpdate(md, "|", 1) == 1) &&
         EVP_DigestUpdate(md, t, strlen(t)) == 1;
  }
  unsigned char d[32];
  unsigned dl = 0;
  char want[65];
  ok = ok && EVP_DigestUpdate(md, "|" PAYKEY, strlen("|" PAYKEY)) == 1 && EVP_DigestFinal_ex(md, d, &dl) == 1;
  const char *given = ok ? json_string_value(json_object_get(o, "MaXacThuc")) : NULL;
  if (ok) hex(d, 32, want);
  ok = ok && given && strlen(given) == 64 && !strcasecmp(given, want);
  EVP_MD_CTX_free(md);
  json_decref(o);
  return ok;
}

/* A topic's records (partitions one after the other, so not in the order they came). */
struct scan {
  const char *id; /* the lt.id looked for, or NULL */
  const void *body;
  size_t len;
  size_t n, found, exact; /* records; with that lt.id; of those, with exactly `body` */
  struct hub_msg *last;   /* the last one with that lt.id and that body */
};

static int on_record(void *arg, const struct hub_msg *m) {
  struct scan *s = arg;
  const char *id = hub_msg_header_get_str(m, HUB_H_ID);
  s->n++;
  if (s->id && id && !strcmp(id, s->id)) {
    s->found++;
    if (m->value_len == s->len && !memcmp(m->value, s->body, s->len)) {
      s->exact++;
      hub_msg_destroy(s->last);
      s->last = hub_msg_dup(m);
    }
  }
  return 0;
}

/* The records of `topic` now: their count, and the last one whose lt.id is `id` and whose value
 * is `body` (the caller destroys it). */
static struct scan scan(const char *topic, const char *id, const void *body, size_t len) {
  struct hub_transport_opts o = {"fuzz", NULL, NULL, NULL};
  struct hub_transport *t = NULL;
  struct scan s = {id, body, len, 0, 0, 0, NULL};
  char e[256];
  if (T->open(NULL, &o, &t, e, sizeof e) != HUB_OK) FAIL("open: %s", e);
  hub_err_t rc = T->scan(t, topic, on_record, &s, e, sizeof e);
  if (rc != HUB_OK && rc != HUB_ERR_NOT_FOUND) FAIL("scan %s: %s", topic, e);
  T->close(t);
  return s;
}

static size_t count(const char *topic) {
  struct scan s = scan(topic, NULL, NULL, 0);
  return s.n;
}

/* W3C Trace Context: VERSION-TRACEID-PARENTID-FLAGS in lower-case hex, version not ff, ids not
 * all zero; version 00 is exactly 55 characters, a later one may go on after a '-'. */
static int traceparent_ok(const char *t) {
  size_t n = t ? strlen(t) : 0;
  if (n < 55 || t[2] != '-' || t[35] != '-' || t[52] != '-' || !strncmp(t, "ff", 2)) return 0;
  if ((!strncmp(t, "00", 2) && n != 55) || (n > 55 && t[55] != '-')) return 0;
  int nz1 = 0, nz2 = 0;
  for (int i = 0; i < 55; i++) {
    if (i == 2 || i == 35 || i == 52) continue;
    if (!t[i] || !strchr("0123456789abcdef", t[i])) return 0;
    if (i > 2 && i < 35 && t[i] != '0') nz1 = 1;
    if (i > 35 && i < 52 && t[i] != '0') nz2 = 1;
  }
  return nz1 && nz2;
}

/* A 202 of http-listen: the route, its Idempotency-Key (or NULL) and its lt.id. */
struct accepted {
  const struct route *rt;
  char *idem;
  char id[37];
};

/* Two accepted requests have the same lt.id exactly when they are the same event: the same
 * route and the same Idempotency-Key. Downstream dedupes on lt.id, so a shared id for two
 * events loses one. */
static void same_event(const struct request *q, const struct hub_http_answer *a, struct accepted *seen, size_t *n) {
  const struct route *rt = route_of(q->r.url);
  json_t *ans = json_loads(a->body, 0, NULL), *body = NULL;
  const char *id = json_string_value(json_object_get(ans, "id")), *idem = header(q, "Idempotency-Key");
  if (idem && !*idem) idem = NULL;
  if (!idem && rt->kind == R_ONESTOP) { /* onestop names an event by its eventId too */
    json_t *v = json_object_get(body = parse(q), "eventId");
    idem = json_is_string(v) && json_string_length(v) ? json_string_value(v) : NULL;
  }
  for (size_t i = 0; i < *n; i++) {
    int same_key = seen[i].rt == rt && idem && seen[i].idem && !strcmp(idem, seen[i].idem);
    if (same_key != !strcmp(seen[i].id, id))
      FAIL("two accepted requests on %s: Idempotency-Key %s, lt.id %s", rt->path,
           same_key ? "the same but not" : "different (or none) but the same", id);
  }
  seen[*n].rt = rt;
  seen[*n].idem = idem ? strdup(idem) : NULL;
  snprintf(seen[*n].id, sizeof seen[*n].id, "%s", id);
  ++*n;
  json_decref(ans);
  json_decref(body);
}

static void check(const struct request *q, const struct hub_http_answer *a, size_t before) {
  const struct route *rt = route_of(q->r.url);
  unsigned st = a->status;
  if (!q->complete && !st) { /* gone before its end: nothing answered, nothing kept */
    if (rt && rt->kind != R_PAYGOV && count(rt->topic) != before)
      FAIL("a request whose client went away was committed");
    return;
  }
  int later = !strcmp(q->r.url, LATER);
  if (later != (st == 503) || (later && !a->retry_after))
    FAIL("%s %s: status %u (%s)", q->r.method, q->r.url, st, a->body ? a->body : "no body");
  if (st != 200 && st != 202 && st != 400 && st != 401 && st != 404 && st != 405 && st != 413 && st != 415 && !later)
    FAIL("%s %s: status %u (%s)", q->r.method, q->r.url, st, a->body ? a->body : "no body");
  json_t *ans = a->body ? json_loads(a->body, 0, NULL) : NULL;
  if (!json_is_object(ans)) FAIL("status %u: the answer is not a JSON object: %s", st, a->body ? a->body : "(none)");
  const char *error = json_string_value(json_object_get(ans, "error"));
  if (later && (!error || strcmp(error, "starting"))) FAIL("503 on %s is not 'starting': %s", LATER, a->body);
  if (st >= 400 && (!json_is_string(json_object_get(ans, "error")) || !json_is_string(json_object_get(ans, "detail"))))
    FAIL("status %u without error and detail: %s", st, a->body);
  if ((st == 200 || st == 202) && (!rt || q->r.len > rt->max_body || strcmp(q->r.method, "POST")))
    FAIL("%s %s: %u for a body of %zu bytes", q->r.method, q->r.url, st, q->r.len);
  if (st == 200 && rt->kind != R_PAYGOV) FAIL("200 from %s", rt->path);
  if (st == 202) {
    if (rt->kind == R_PAYGOV) FAIL("202 from paygov-confirm");
    if ((rt->kind == R_HMAC || rt->kind == R_ONESTOP) && !hmac_ok(q)) FAIL("%s accepted a wrong signature", rt->path);
    const char *auth = header(q, "Authorization");
    if (rt->kind == R_BEARER && (!auth || strncasecmp(auth, "Bearer ", 7) || strcmp(auth + 7, TOKEN)))
      FAIL("/bearer accepted without the token");
    char type[128];
    media_type(q, type, sizeof type);
    json_t *j = NULL;
    if ((rt->kind == R_ONESTOP || ends_with(type, "/json") || ends_with(type, "+json")) && !(j = parse(q)))
      FAIL("%s accepted JSON that does not parse", rt->path);
    json_decref(j);
    const char *id = json_string_value(json_object_get(ans, "id"));
    if (!id || strlen(id) != 36) FAIL("202 without an id: %s", a->body);
    /* An Idempotency-Key (or onestop eventId) sent again names the same event: the same lt.id,
     * so another record may have it, with another body. */
    struct scan s = scan(rt->topic, id, q->r.body, q->r.len);
    if (s.n != before + 1) FAIL("202 on %s: %zu records, %zu before", rt->path, s.n, before);
    if (!s.found) FAIL("202 on %s: no record has lt.id %s", rt->path, id);
    if (!s.last) FAIL("202 on %s: the record %s is not the body as received", rt->path, id);
    const char *tp = hub_msg_header_get_str(s.last, HUB_H_TRACEPARENT);
    if (!traceparent_ok(tp))
      FAIL("202 on %s: traceparent '%s' is not valid", rt->path, tp ? tp : "(none)");
    hub_msg_destroy(s.last);
  } else if (rt && rt->kind != R_PAYGOV && count(rt->topic) != before) {
    FAIL("%u on %s, but a record was committed", st, rt->path);
  }
  if (st == 200) {
    const char *maloi = json_string_value(json_object_get(ans, "MaLoi"));
    if (!maloi) FAIL("paygov reply without MaLoi: %s", a->body);
    if (!strcmp(maloi, "00") && !paygov_mac_ok(q)) FAIL("paygov accepted a callback whose MaXacThuc is wrong");
  }
  json_decref(ans);
}

/* The bytes to the server over a socket, its answer read until it closes: its status, 0 when
 * it closed without one. */
static unsigned raw(const uint8_t *data, size_t size) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  sa.sin_port = htons((uint16_t)strtol(strrchr(listen_addr, ':') + 1, NULL, 10));
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) FAIL("cannot connect to %s", listen_addr);
  for (size_t off = 0; off < size;) {
    ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (n <= 0) break; /* the server closed early (it answered before the body) */
    off += (size_t)n;
  }
  shutdown(fd, SHUT_WR);
  char buf[4096], first[16] = "";
  size_t got = 0;
  struct pollfd p = {fd, POLLIN, 0};
  for (;;) {
    int r = poll(&p, 1, 35000); /* past the server's 30 s idle timeout */
    if (r == 0) FAIL("the server neither answered nor closed the connection");
    ssize_t n = r < 0 ? -1 : recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n && got + 1 < sizeof first; i++)
      first[got++] = buf[i];
  }
  close(fd);
  unsigned status = 0;
  return sscanf(first, "HTTP/1.%*1[01] %3u", &status) == 1 ? status : 0;
}

/* The decoded request written out again as HTTP/1.1 (chunked framing when it says so): for the
 * comparison with the socket. */
static size_t serialize(const struct request *q, char **out) {
  size_t cap = 256 + 2 * q->r.len + strlen(q->target) + strlen(q->r.method), n = 0;
  for (size_t i = 0; i < q->r.n_headers; i++)
    cap += strlen(q->h[i].name) + strlen(q->h[i].value) + 4;
  char *b = malloc(cap);
  if (!b) FAIL("out of memory");
  n += (size_t)snprintf(b + n, cap - n, "%s %s HTTP/1.1\r\n", q->r.method, q->target);
  for (size_t i = 0; i < q->r.n_headers; i++)
    n += (size_t)snprintf(b + n, cap - n, "%s: %s\r\n", q->h[i].name, q->h[i].value);
  n += (size_t)snprintf(b + n, cap - n, "\r\n");
  const char *te = header(q, "Transfer-Encoding");
  if (te && strcasestr(te, "chunked")) {
    if (q->r.len) n += (size_t)snprintf(b + n, cap - n, "%zx\r\n", q->r.len);
    memcpy(b + n, q->r.body, q->r.len);
    n += q->r.len;
    n += (size_t)snprintf(b + n, cap - n, "%s0\r\n\r\n", q->r.len ? "\r\n" : "");
  } else {
    memcpy(b + n, q->r.body, q->r.len);
    n += q->r.len;
  }
  *out = b;
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!T) setup();
  static int raw_mode = -1, compare = -1;
  if (raw_mode < 0) raw_mode = getenv("LT_FUZZ_HTTP_RAW") && !strcmp(getenv("LT_FUZZ_HTTP_RAW"), "1");
  if (compare < 0) compare = getenv("LT_FUZZ_HTTP_COMPARE") && !strcmp(getenv("LT_FUZZ_HTTP_COMPARE"), "1");
  if (++runs % RESET_EVERY == 0) {
    hub_stop();
    hub_start();
  }
  if (raw_mode) {
    (void)raw(data, size);
    return 0;
  }
  /* Up to MAX_PIPELINED requests one after the other, as on one keep-alive connection. */
  struct accepted seen[MAX_PIPELINED];
  size_t n_seen = 0, off = 0;
  for (int i = 0; i < MAX_PIPELINED && off < size; i++) {
    struct request q = {0};
    size_t used = 0;
    int ok = decode(data + off, size - off, &q, &used), go_on = 0;
    if (ok) {
      const struct route *rt = route_of(q.r.url);
      size_t before = rt && rt->kind != R_PAYGOV ? count(rt->topic) : 0;
      struct hub_http_answer a = {0};
      if (hub_http_serve(listen_addr, &q.r, q.chunk, q.complete, &a) != HUB_OK) FAIL("hub_http_serve failed");
      if (getenv("LT_FUZZ_VERBOSE")) /* what each input got, to see the seeds reach their answers */
        fprintf(stderr, "%s %s -> %u %s\n", q.r.method, q.r.url, a.status, a.body ? a.body : "");
      check(&q, &a, before);
      if (a.status == 202) same_event(&q, &a, seen, &n_seen);
      /* The same request over the socket gets the same status (one cut short only when it was
       * answered before its body). */
      if (compare && (q.complete || a.status)) {
        char *wire = NULL;
        size_t n = serialize(&q, &wire);
        unsigned st = raw((const uint8_t *)wire, n);
        free(wire);
        if (getenv("LT_FUZZ_VERBOSE")) fprintf(stderr, "  over the socket: %u\n", st);
        if (st != a.status) FAIL("%s %s: %u in-process, %u over the socket", q.r.method, q.r.url, a.status, st);
      }
      /* libmicrohttpd closes a connection whose request was answered before its body was read */
      go_on = q.complete && (a.status / 100 == 2 || !q.r.len);
      free(a.body);
    }
    free(q.head);
    free(q.target);
    if (!go_on) break;
    off += used;
  }
  for (size_t i = 0; i < n_seen; i++)
    free(seen[i].idem);
  return 0;
}
