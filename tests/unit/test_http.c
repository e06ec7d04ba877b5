/* The shared HTTP client, the circuit breaker, the credentials and the `http` sink against the
 * REST simulator (tests/sim/http_sim.py, started here on a free port of 127.0.0.1); no broker.
 * - client: status, headers and body; per-request timeout; connection refused; redirects only
 *   when asked; calls run side by side; a stop request abandons waits at once; Retry-After in
 *   seconds and as an HTTP date.
 * - breaker: opens after N failures, fails fast while open, one half-open probe, closes on
 *   success, reopens on failure; through the sink no call reaches the sim while it is open.
 * - the sink: URL placeholders (URL-encoded) and their errors, the headers each call carries,
 *   every status class mapped to OK/RETRY/REJECT, result records (text and base64 bodies), the
 *   DLQ detail, 429/503 Retry-After; bearer, basic and OAuth2 (token cached, fetched again
 *   before expiry and after a 401, one fetch at a time); TLS with a CA file and a client
 *   certificate; health and /metrics.
 * - the engine: a route on the memory transport holds a 429'd record at least Retry-After; an
 *   open breaker makes /ready fail with the reason until a probe succeeds. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "memtest.h"
#include "hub/core/config.h"
#include "hub/core/log.h"
#include "hub/core/metrics.h"
#include "hub/core/registry.h"
#include "hub/core/stop.h"
#include "hub/engine/connector.h"
#include "hub/engine/route.h"
#include "hub/io/breaker.h"
#include "hub/io/http_auth.h"
#include "hub/io/http_client.h"
#include "hub/transport/transport.h"

static char dir[] = "/tmp/lt-http-XXXXXX";
static pid_t sim_pid;
static int port;
static char base[64];

/* Starts the sim with `extra` options, its log in dir/NAME.log; returns its pid, *port its port. */
static pid_t sim_spawn(const char *name, const char *extra, int *port_out) {
  char cmd[2048], pf[600];
  snprintf(pf, sizeof pf, "%s/%s.port", dir, name);
  unlink(pf);
  const char *src = getenv("LT_SOURCE_DIR") ? getenv("LT_SOURCE_DIR") : LT_SOURCE_DIR;
  snprintf(cmd, sizeof cmd, "exec python3 '%s/tests/sim/http_sim.py' --port-file '%s' --log '%s/%s.log' %s", src, pf,
           dir, name, extra);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  *port_out = 0;
  for (int i = 0; i < 200 && !*port_out; i++) {
    FILE *f = fopen(pf, "r");
    if (f) {
      if (fscanf(f, "%d", port_out) != 1) *port_out = 0;
      fclose(f);
    }
    if (!*port_out) sleep_ms(25);
  }
  CHECK(*port_out > 0);
  return pid;
}

static void sim_start(const char *extra) {
  sim_pid = sim_spawn("sim", extra, &port);
  snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
}

static void sim_kill(pid_t pid) {
  if (pid > 0) {
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
  }
}

static void sim_stop(void) {
  sim_kill(sim_pid);
  sim_pid = 0;
}

/* POSTs JSON to the sim's control endpoint. */
static void control(const char *path, const char *json) {
  char url[256];
  snprintf(url, sizeof url, "%s%s", base, path);
  struct hub_http_request req = {.method = "POST", .url = url, .body = json, .body_len = strlen(json)};
  struct hub_http_response r;
  CHECK(hub_http_perform(&req, &r) == HUB_OK && r.status == 200);
  if (r.status != 200)
    fprintf(stderr, "control %s %s: %ld %s\n", path, json, r.status, r.body ? (char *)r.body : r.error);
  hub_http_response_release(&r);
}

/* A number from the sim's /_sim/stats. */
static long stat_of(const char *name) {
  char url[256];
  snprintf(url, sizeof url, "%s/_sim/stats", base);
  struct hub_http_request req = {.method = "GET", .url = url};
  struct hub_http_response r;
  long v = -1;
  if (hub_http_perform(&req, &r) == HUB_OK) {
    json_t *j = json_loads((const char *)r.body, 0, NULL);
    v = (long)json_integer_value(json_object_get(j, name));
    json_decref(j);
  }
  hub_http_response_release(&r);
  return v;
}

/* The sim's request log, as a JSON array. */
static json_t *sim_log(void) {
  char path[600], line[65536];
  snprintf(path, sizeof path, "%s/sim.log", dir);
  json_t *a = json_array();
  FILE *f = fopen(path, "r");
  while (f && fgets(line, sizeof line, f)) json_array_append_new(a, json_loads(line, 0, NULL));
  if (f) fclose(f);
  return a;
}

static json_t *last_request(void) {
  json_t *a = sim_log(), *l = json_incref(json_array_get(a, json_array_size(a) - 1));
  json_decref(a);
  return l;
}

static const char *jstr(json_t *o, const char *path1, const char *path2) {
  json_t *v = json_object_get(o, path1);
  if (path2) v = json_object_get(v, path2);
  return json_string_value(v);
}

/* ------------------------------------------------------------------------------ the client */

static void *stop_later(void *p) {
  (void)p;
  sleep_ms(200);
  hub_stop_request();
  return NULL;
}

static void test_client(void) {
  char url[256];
  struct hub_http_response r;
  snprintf(url, sizeof url, "%s/status/201", base);
  const char *hdrs[] = {"X-Test: one", NULL};
  struct hub_http_request req = {.method = "PUT", .url = url, .headers = hdrs, .body = "{\"a\":1}", .body_len = 7};
  CHECK(hub_http_perform(&req, &r) == HUB_OK);
  CHECK(r.status == 201);
  CHECK_STR(hub_http_response_header(&r, "content-type"), "application/json");
  CHECK_STR((const char *)r.body, "{\"status\": 201}");
  hub_http_response_release(&r);
  json_t *l = last_request();
  CHECK_STR(jstr(l, "method", NULL), "PUT");
  CHECK_STR(jstr(l, "body", NULL), "{\"a\":1}");
  CHECK_STR(jstr(l, "headers", "x-test"), "one");
  CHECK(!json_object_get(json_object_get(l, "headers"), "expect"));
  json_decref(l);

  /* Timeout: the sim holds the call for 3 s, the client gives up at 300 ms. */
  control("/_sim/next", "{\"answers\": [{\"status\": 200, \"hang\": 3}]}");
  snprintf(url, sizeof url, "%s/slow", base);
  struct hub_http_request slow = {.method = "GET", .url = url, .timeout_ms = 300};
  double t0 = now_ms();
  CHECK(hub_http_perform(&slow, &r) == HUB_ERR_TIMEOUT);
  double took = now_ms() - t0;
  CHECK(took >= 290 && took < 1500);
  CHECK_CONTAINS(r.error, "GET http://127.0.0.1:");
  CHECK_CONTAINS(r.error, "timed out");
  hub_http_response_release(&r);

  /* Nobody listens: a connection error naming the URL. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
  close(fd);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(sa.sin_port));
  struct hub_http_request refused = {.method = "POST", .url = url, .body = "x", .body_len = 1};
  CHECK(hub_http_perform(&refused, &r) == HUB_ERR_IO);
  CHECK_CONTAINS(r.error, url);
  hub_http_response_release(&r);

  /* Redirects: the answer unless the request asks to follow. */
  char loc[512];
  snprintf(loc, sizeof loc, "{\"answers\": [{\"status\": 302, \"headers\": {\"Location\": \"%s/status/200\"}}]}", base);
  control("/_sim/next", loc);
  snprintf(url, sizeof url, "%s/moved", base);
  struct hub_http_request red = {.method = "GET", .url = url};
  CHECK(hub_http_perform(&red, &r) == HUB_OK && r.status == 302);
  hub_http_response_release(&r);
  control("/_sim/next", loc);
  red.follow_redirects = 1;
  CHECK(hub_http_perform(&red, &r) == HUB_OK && r.status == 200);
  hub_http_response_release(&r);

  /* Other schemes are refused. */
  struct hub_http_request ftp = {.method = "GET", .url = "ftp://127.0.0.1/x"};
  CHECK(hub_http_perform(&ftp, &r) == HUB_ERR_IO);
  hub_http_response_release(&r);

  /* Eight calls held 400 ms each run side by side on the one client thread. */
  control("/_sim/next", "{\"answers\": [{\"hang\": 0.4}, {\"hang\": 0.4}, {\"hang\": 0.4}, {\"hang\": 0.4}, "
                        "{\"hang\": 0.4}, {\"hang\": 0.4}, {\"hang\": 0.4}, {\"hang\": 0.4}]}");
  struct hub_http_call *calls[8];
  t0 = now_ms();
  snprintf(url, sizeof url, "%s/par", base);
  struct hub_http_request par = {.method = "GET", .url = url};
  for (int i = 0; i < 8; i++) CHECK(hub_http_submit(&par, &calls[i]) == HUB_OK);
  int ok = 0;
  for (int i = 0; i < 8; i++) {
    hub_http_call_wait(calls[i], &r);
    ok += r.rc == HUB_OK && r.status == 200;
    hub_http_response_release(&r);
  }
  took = now_ms() - t0;
  CHECK(ok == 8);
  CHECK(took >= 390 && took < 1600); /* one after another would take 3.2 s */

  /* A stop request: a waiter gives up on its call within 100 ms; the client goes on. */
  control("/_sim/next", "{\"answers\": [{\"hang\": 3}, {\"hang\": 3}]}");
  snprintf(url, sizeof url, "%s/stop", base);
  struct hub_http_request held = {.method = "GET", .url = url, .timeout_ms = 10000};
  struct hub_http_call *c1 = NULL, *c2 = NULL;
  CHECK(hub_http_submit(&held, &c1) == HUB_OK && hub_http_submit(&held, &c2) == HUB_OK);
  pthread_t stopper;
  pthread_create(&stopper, NULL, stop_later, NULL);
  t0 = now_ms();
  hub_http_call_wait(c1, &r);
  took = now_ms() - t0;
  CHECK(r.rc == HUB_ERR_STOPPED && took >= 190 && took < 600);
  CHECK_CONTAINS(r.error, "abandoned, the hub is stopping");
  hub_http_response_release(&r);
  hub_http_call_wait(c2, &r); /* already stopping: at once */
  CHECK(r.rc == HUB_ERR_STOPPED);
  hub_http_response_release(&r);
  pthread_join(stopper, NULL);
  hub_stop_reset();
  snprintf(url, sizeof url, "%s/status/200", base);
  struct hub_http_request after = {.method = "GET", .url = url};
  CHECK(hub_http_perform(&after, &r) == HUB_OK && r.status == 200);
  hub_http_response_release(&r);

  /* Retry-After. */
  CHECK(hub_http_retry_after_ms("120", 0) == 120000);
  CHECK(hub_http_retry_after_ms(" 0", 0) == 0);
  CHECK(hub_http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412450) == 30000);
  CHECK(hub_http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412500) == 0); /* in the past */
  CHECK(hub_http_retry_after_ms("soon", 0) == -1);
  CHECK(hub_http_retry_after_ms("12s", 0) == -1);
  CHECK(hub_http_retry_after_ms(NULL, 0) == -1);
}

/* ----------------------------------------------------------------------------- the breaker */

static void test_breaker(void) {
  struct hub_breaker *b = hub_breaker_new("c1", "http://e", 3, 300);
  char why[256];
  int64_t wait = 0;
  CHECK(hub_breaker_allow(b, &wait) && hub_breaker_health(b, why, sizeof why));
  hub_breaker_record(b, 0);
  hub_breaker_record(b, 0);
  hub_breaker_record(b, 1); /* a success in between: the count starts again */
  hub_breaker_record(b, 0);
  hub_breaker_record(b, 0);
  CHECK(hub_breaker_get_state(b) == HUB_BREAKER_CLOSED);
  hub_breaker_record(b, 0);
  CHECK(hub_breaker_get_state(b) == HUB_BREAKER_OPEN);
  CHECK(!hub_breaker_allow(b, &wait) && wait > 200 && wait <= 300);
  CHECK(!hub_breaker_health(b, why, sizeof why));
  CHECK_CONTAINS(why, "circuit breaker for http://e is open");
  char *m = hub_metrics_render_new();
  CHECK_CONTAINS(m, "lienthong_breaker_state{connector=\"c1\",endpoint=\"http://e\"} 1\n");
  CHECK_CONTAINS(m, "lienthong_breaker_opened_total{connector=\"c1\",endpoint=\"http://e\"} 1\n");
  free(m);
  sleep_ms(320);
  CHECK(hub_breaker_allow(b, &wait));  /* the probe */
  CHECK(hub_breaker_get_state(b) == HUB_BREAKER_HALF_OPEN);
  CHECK(!hub_breaker_allow(b, &wait)); /* only one */
  hub_breaker_record(b, 0);            /* the probe failed: open again */
  CHECK(hub_breaker_get_state(b) == HUB_BREAKER_OPEN && !hub_breaker_allow(b, &wait));
  sleep_ms(320);
  CHECK(hub_breaker_allow(b, &wait));
  hub_breaker_cancel(b); /* the probe did not go after all: the next caller probes */
  CHECK(hub_breaker_allow(b, &wait));
  hub_breaker_record(b, 1);
  CHECK(hub_breaker_get_state(b) == HUB_BREAKER_CLOSED && hub_breaker_health(b, why, sizeof why));
  m = hub_metrics_render_new();
  CHECK_CONTAINS(m, "lienthong_breaker_state{connector=\"c1\",endpoint=\"http://e\"} 0\n");
  CHECK_CONTAINS(m, "lienthong_breaker_opened_total{connector=\"c1\",endpoint=\"http://e\"} 2\n");
  free(m);
  hub_breaker_destroy(b);
  m = hub_metrics_render_new();
  CHECK(!strstr(m, "endpoint=\"http://e\""));
  free(m);
  hub_breaker_destroy(NULL);
}

/* ------------------------------------------------------------------------------- the sink */

struct sink {
  const struct hub_sink_ops *ops;
  struct hub_node *node;
  void *cfg, *state;
};

/* Creates the `http` sink from options written as YAML (base URL as @/); 0 and the error in
 * errbuf when create refuses them. */
static int sink_new(struct sink *s, const char *yaml_opts, char *errbuf, size_t errbuf_size) {
  char text[4096], e[1024] = "";
  const char *at = strstr(yaml_opts, "@/");
  if (at)
    snprintf(text, sizeof text, "%.*s%s/%s", (int)(at - yaml_opts), yaml_opts, base, at + 2);
  else
    snprintf(text, sizeof text, "%s", yaml_opts);
  memset(s, 0, sizeof *s);
  s->ops = hub_registry_get(HUB_PLUGIN_SINK, "http");
  CHECK(s->ops != NULL);
  if (!s->ops) return 0;
  s->node = hub_node_load_string("sink.yaml", text, strlen(text), e, sizeof e);
  struct hub_plugin_env env = {.base_dir = dir, .owner = "snk", .node = s->node};
  hub_err_t rc = s->node ? hub_plugin_options_new(&s->ops->info, s->node, s->node, &s->cfg, e, sizeof e)
                         : HUB_ERR_CONFIG;
  if (rc == HUB_OK) rc = s->ops->create(s->cfg, &env, &s->state, e, sizeof e);
  snprintf(errbuf, errbuf_size, "%s", e);
  return rc == HUB_OK;
}

static void sink_free(struct sink *s) {
  if (s->ops && s->state) s->ops->destroy(s->state);
  if (s->ops) hub_plugin_options_destroy(&s->ops->info, s->cfg);
  hub_node_destroy(s->node);
  memset(s, 0, sizeof *s);
}

static struct hub_msg *rec(const char *key, const char *value, const char *id) {
  struct hub_msg *m = hub_msg_new(key, key ? strlen(key) : 0, value, strlen(value));
  if (m && id) hub_msg_header_set_str(m, HUB_H_ID, id);
  return m;
}

static enum hub_step_result deliver(struct sink *s, const struct hub_msg *m, struct hub_msg **res,
                                    struct hub_step_outcome *out) {
  hub_step_outcome_clear(out);
  *res = NULL;
  return s->ops->deliver(s->state, m, res, out);
}

static void set_value(struct hub_msg *m, const char *v) { CHECK(hub_msg_set_value(m, v, strlen(v)) == HUB_OK); }

static void test_placeholders(void) {
  struct sink s;
  char e[1024];
  CHECK(sink_new(&s, "{url: '@/d/${key}/${header:x-doc}/${json:$.a.b}?q=${json:$.n}&t=${json:$.t}'}", e, sizeof e));
  struct hub_msg *m = rec("a b/c", "{\"a\": {\"b\": \"x&y\"}, \"n\": 5, \"t\": true}", "id-1");
  hub_msg_header_set_str(m, "x-doc", "\xc4\x91?");
  struct hub_msg *res = NULL;
  struct hub_step_outcome out = {0};
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK);
  json_t *l = last_request();
  CHECK_STR(jstr(l, "path", NULL), "/d/a%20b%2Fc/%C4%91%3F/x%26y?q=5&t=true");
  json_decref(l);
  hub_msg_destroy(res);

  /* Each missing value is a REJECT naming its placeholder. */
  struct hub_msg *nokey = rec(NULL, "{\"a\": {\"b\": 1}, \"n\": 1, \"t\": 1}", "id-2");
  hub_msg_header_set_str(nokey, "x-doc", "d");
  CHECK(deliver(&s, nokey, &res, &out) == HUB_STEP_REJECT);
  CHECK_CONTAINS(out.reason, "${key}: the record has no key");
  hub_msg_header_del(m, "x-doc");
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_REJECT);
  CHECK_CONTAINS(out.reason, "${header:x-doc}: the record has no header 'x-doc'");
  hub_msg_header_set_str(m, "x-doc", "");
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_REJECT);
  CHECK_CONTAINS(out.reason, "${header:x-doc}: the record's value for it is empty");
  hub_msg_header_set_str(m, "x-doc", "d");
  set_value(m, "{\"a\": {\"b\": \"\"}, \"n\": 1, \"t\": 1}");
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_REJECT);
  CHECK_CONTAINS(out.reason, "${json:$.a.b}: the record's value for it is empty");
  set_value(m, "{\"a\": {}, \"n\": 1, \"t\": 1}");
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_REJECT);
  CHECK_CONTAINS(out.reason, "${json:$.a.b}: matches nothing");
  set_value(m, "{\"a\": {\"b\": [1]}, \"n\": 1, \"t\": 1}");
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_REJECT);
  CHECK_CONTAINS(out.reason, "${json:$.a.b}: is not a string, number or boolean");
  set_value(m, "<xml/>");
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_REJECT);
  CHECK(out.code == HUB_ERR_JSON);
  CHECK_CONTAINS(out.reason, "url needs ${json:...} but the record's value");
  hub_step_outcome_clear(&out);
  hub_msg_destroy(m);
  hub_msg_destroy(nokey);
  sink_free(&s);

  /* Placeholders that cannot work are refused at create, with the place. */
  CHECK(!sink_new(&s, "{url: '@/${nope}'}", e, sizeof e));
  CHECK_CONTAINS(e, "sink.yaml:1:");
  CHECK_CONTAINS(e, "unknown placeholder '${nope}'");
  sink_free(&s);
  CHECK(!sink_new(&s, "{url: '@/${json:$[}'}", e, sizeof e));
  CHECK_CONTAINS(e, "${json:$[}: JSONPath");
  sink_free(&s);
  CHECK(!sink_new(&s, "{url: '@/${key'}", e, sizeof e));
  CHECK_CONTAINS(e, "has no closing '}'");
  sink_free(&s);
  CHECK(sink_new(&s, "{url: '@/x?mail=a@b'}", e, sizeof e)); /* an @ after the host is fine */
  sink_free(&s);
  CHECK(!sink_new(&s, "{url: 'ftp://127.0.0.1/x'}", e, sizeof e));
  CHECK_CONTAINS(e, "url must start with http:// or https://");
  sink_free(&s);
  CHECK(!sink_new(&s, "{url: '@/x', headers: {idempotency-key: k}}", e, sizeof e));
  CHECK_CONTAINS(e, "idempotency-key is set by the sink");
  sink_free(&s);
  CHECK(!sink_new(&s, "{url: '@/x', auth: {bearer_token_file: missing.txt}}", e, sizeof e));
  CHECK_CONTAINS(e, "missing.txt");
  sink_free(&s);
  /* The documented constraints and bounds, each refused with the place. */
  static const char *const bad[][2] = {
      {"{url: '@/x', tls: {cert_file: c.pem}}", "tls: cert_file and key_file go together"},
      {"{url: '@/x', auth: {bearer_token_file: t, basic: {user: u, password_file: p}}}",
       "auth: give one of bearer_token_file, basic and oauth2"},
      {"{url: '@/x', auth: {basic: {user: u}}}", "auth.basic needs user and password_file"},
      {"{url: '@/x', auth: {oauth2: {token_url: 'http://127.0.0.1:1/t', client_id: c}}}",
       "auth.oauth2 needs token_url, client_id and client_secret_file"},
      {"{url: '@/x', timeout: 50ms}", "timeout"},
      {"{url: '@/x', method: HEAD}", "method"},
      {"{url: '@/x', headers: {'X-A': \"a\\nb\"}}", "line break"},
      {"{url: '@/x', retry: 3}", "retry"},
      {"{url: 'http://hub:pw@127.0.0.1:1/x'}", "url: credentials in the URL"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    CHECK(!sink_new(&s, bad[i][0], e, sizeof e));
    CHECK_CONTAINS(e, "sink.yaml:1:");
    CHECK_CONTAINS(e, bad[i][1]);
    sink_free(&s);
  }
}

static void test_headers_and_methods(void) {
  struct sink s;
  char e[1024];
  CHECK(sink_new(&s, "{url: '@/in', method: PATCH, headers: {X-Agency: 'So TTTT', Content-Type: text/plain}}", e,
                 sizeof e));
  struct hub_msg *m = rec("k", "<a/>", "0190-id");
  hub_msg_header_set_str(m, HUB_H_CONTENT_TYPE, "application/xml");
  hub_msg_header_set_str(m, HUB_H_TRACEPARENT, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  struct hub_msg *res = NULL;
  struct hub_step_outcome out = {0};
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK);
  json_t *l = last_request();
  CHECK_STR(jstr(l, "method", NULL), "PATCH");
  CHECK_STR(jstr(l, "body", NULL), "<a/>");
  CHECK_STR(jstr(l, "headers", "idempotency-key"), "0190-id");
  CHECK_STR(jstr(l, "headers", "content-type"), "application/xml"); /* the record's wins */
  CHECK_STR(jstr(l, "headers", "traceparent"), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  CHECK_STR(jstr(l, "headers", "x-agency"), "So TTTT");
  json_decref(l);
  hub_msg_destroy(res);
  hub_msg_header_del(m, HUB_H_CONTENT_TYPE);
  hub_msg_header_del(m, HUB_H_TRACEPARENT);
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK);
  l = last_request();
  CHECK_STR(jstr(l, "headers", "content-type"), "text/plain"); /* the configured one when the record has none */
  CHECK(!json_object_get(json_object_get(l, "headers"), "traceparent"));
  json_decref(l);
  hub_msg_destroy(res);
  sink_free(&s);

  /* One call after another on a kept-alive connection: how many a second (printed). */
  CHECK(sink_new(&s, "{url: '@/in/${key}'}", e, sizeof e));
  double t0 = now_ms();
  int oks = 0;
  for (int i = 0; i < 500; i++) {
    oks += deliver(&s, m, &res, &out) == HUB_STEP_OK;
    hub_msg_destroy(res);
  }
  printf("500 sequential deliveries to the sim: %.0f per second\n", 500 / ((now_ms() - t0) / 1000.0));
  CHECK(oks == 500);
  sink_free(&s);

  CHECK(sink_new(&s, "{url: '@/get/${key}', method: GET}", e, sizeof e));
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK);
  l = last_request();
  CHECK_STR(jstr(l, "method", NULL), "GET");
  CHECK_STR(jstr(l, "path", NULL), "/get/k");
  CHECK_STR(jstr(l, "body", NULL), "");
  json_decref(l);
  hub_msg_destroy(res);
  hub_msg_destroy(m);
  sink_free(&s);
}

/* Delivers one record to /status/NNN and returns the answer. */
static enum hub_step_result status_answer(struct sink *s, int status, struct hub_msg **res,
                                          struct hub_step_outcome *out) {
  char v[32];
  snprintf(v, sizeof v, "%d", status);
  struct hub_msg *m = rec("k", "{}", "id-s");
  hub_msg_header_set_str(m, "want", v);
  enum hub_step_result r = deliver(s, m, res, out);
  hub_msg_destroy(m);
  return r;
}

static void test_statuses(void) {
  struct sink s;
  char e[1024];
  CHECK(sink_new(&s, "{url: '@/status/${header:want}', timeout: 400ms, breaker: {failures: 0}}", e, sizeof e));
  struct hub_msg *res = NULL;
  struct hub_step_outcome out = {0};
  static const int ok[] = {200, 201, 202, 204};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    CHECK(status_answer(&s, ok[i], &res, &out) == HUB_STEP_OK);
    json_t *j = res ? json_loadb((const char *)res->value, res->value_len, 0, NULL) : NULL;
    CHECK(json_integer_value(json_object_get(j, "status")) == ok[i]);
    CHECK(json_is_object(json_object_get(j, "headers")));
    CHECK(json_is_string(json_object_get(j, "body")));
    json_decref(j);
    hub_msg_destroy(res);
  }
  static const int retry[] = {500, 502, 503, 504, 408, 429};
  for (size_t i = 0; i < sizeof retry / sizeof *retry; i++) {
    CHECK(status_answer(&s, retry[i], &res, &out) == HUB_STEP_RETRY);
    CHECK(out.code == HUB_ERR_HTTP && !res);
    char want[32];
    snprintf(want, sizeof want, "answered HTTP %d", retry[i]);
    CHECK_CONTAINS(out.reason, want);
  }
  static const int reject[] = {400, 401, 403, 404, 409, 410, 422, 301, 302};
  for (size_t i = 0; i < sizeof reject / sizeof *reject; i++) {
    CHECK(status_answer(&s, reject[i], &res, &out) == HUB_STEP_REJECT);
    char want[32];
    snprintf(want, sizeof want, "answered HTTP %d", reject[i]);
    CHECK_CONTAINS(out.reason, want);
    snprintf(want, sizeof want, "{\"status\": %d}", reject[i]);
    CHECK(out.detail && out.detail_len == strlen(want) && !memcmp(out.detail, want, out.detail_len));
  }

  /* The result record: JSON text body, response headers, and base64 when not UTF-8. */
  control("/_sim/next", "{\"answers\": [{\"status\": 200, \"body\": \"{\\\"ma\\\": \\\"H\\u1ed3 s\\u01a1\\\"}\", "
                        "\"headers\": {\"X-Ref\": \"r1\"}}, {\"status\": 201, \"body_base64\": \"/wABgA==\"}]}");
  CHECK(status_answer(&s, 200, &res, &out) == HUB_STEP_OK);
  json_t *j = res ? json_loadb((const char *)res->value, res->value_len, 0, NULL) : NULL;
  CHECK_STR(jstr(j, "body", NULL), "{\"ma\": \"H\xe1\xbb\x93 s\xc6\xa1\"}");
  CHECK_STR(jstr(j, "headers", "x-ref"), "r1");
  CHECK(!json_object_get(j, "body_base64"));
  CHECK_STR(res ? hub_msg_header_get_str(res, HUB_H_CONTENT_TYPE) : NULL, "application/json");
  CHECK_STR(res ? hub_msg_header_get_str(res, HUB_H_TYPE) : NULL, "http.response");
  json_decref(j);
  hub_msg_destroy(res);
  CHECK(status_answer(&s, 201, &res, &out) == HUB_STEP_OK);
  j = res ? json_loadb((const char *)res->value, res->value_len, 0, NULL) : NULL;
  CHECK_STR(jstr(j, "body", NULL), "/wABgA==");
  CHECK(json_is_true(json_object_get(j, "body_base64")));
  json_decref(j);
  hub_msg_destroy(res);

  /* Retry-After on 429 (seconds) and 503 (an HTTP date), none on a 500. */
  control("/_sim/next", "{\"answers\": [{\"status\": 429, \"headers\": {\"Retry-After\": \"7\"}}]}");
  CHECK(status_answer(&s, 200, &res, &out) == HUB_STEP_RETRY && out.retry_after_ms == 7000);
  char date[64], next[256];
  time_t t = time(NULL) + 20;
  struct tm tm;
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&t, &tm));
  snprintf(next, sizeof next, "{\"answers\": [{\"status\": 503, \"headers\": {\"Retry-After\": \"%s\"}}]}", date);
  control("/_sim/next", next);
  CHECK(status_answer(&s, 200, &res, &out) == HUB_STEP_RETRY);
  CHECK(out.retry_after_ms >= 18000 && out.retry_after_ms <= 20000);
  control("/_sim/next", "{\"answers\": [{\"status\": 500, \"headers\": {\"Retry-After\": \"7\"}}]}");
  CHECK(status_answer(&s, 200, &res, &out) == HUB_STEP_RETRY && out.retry_after_ms == 0);

  /* A body over max_response is a RETRY (the endpoint misbehaves; nothing is kept). */
  sink_free(&s);
  CHECK(sink_new(&s, "{url: '@/status/${header:want}', max_response: 1KiB, breaker: {failures: 0}}", e, sizeof e));
  char big[2200];
  snprintf(big, sizeof big, "{\"answers\": [{\"status\": 200, \"body\": \"%01500d\"}]}", 0);
  control("/_sim/next", big);
  CHECK(status_answer(&s, 200, &res, &out) == HUB_STEP_RETRY && out.code == HUB_ERR_IO && !res);
  sink_free(&s);
  CHECK(sink_new(&s, "{url: '@/status/${header:want}', timeout: 400ms, breaker: {failures: 0}}", e, sizeof e));

  /* A timeout and a connection error are RETRYs. */
  control("/_sim/next", "{\"answers\": [{\"status\": 200, \"hang\": 2}]}");
  CHECK(status_answer(&s, 200, &res, &out) == HUB_STEP_RETRY && out.code == HUB_ERR_TIMEOUT);
  hub_step_outcome_clear(&out);
  sink_free(&s);
  CHECK(sink_new(&s, "{url: 'http://127.0.0.1:1/x'}", e, sizeof e));
  CHECK(status_answer(&s, 200, &res, &out) == HUB_STEP_RETRY && out.code == HUB_ERR_IO);
  CHECK_CONTAINS(out.reason, "http://127.0.0.1:1/x");
  hub_step_outcome_clear(&out);
  sink_free(&s);
}

static void test_sink_ratelimit(void) {
  struct sink s;
  char e[1024];
  /* 2 a second: the second call waits ~500 ms for its slot; with a 200 ms timeout it would
   * not get one in time, so it is a RETRY at once, without a call. */
  CHECK(sink_new(&s, "{url: '@/rl', rate_limit: {per_second: 2, burst: 1}, timeout: 2s}", e, sizeof e));
  struct hub_msg *m = rec("k", "{}", "id-r"), *res = NULL;
  struct hub_step_outcome out = {0};
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK);
  hub_msg_destroy(res);
  double t0 = now_ms();
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK);
  hub_msg_destroy(res);
  double waited = now_ms() - t0;
  CHECK(waited >= 450 && waited < 800);
  sink_free(&s);
  CHECK(sink_new(&s, "{url: '@/rl', rate_limit: {per_second: 1, burst: 1}, timeout: 200ms}", e, sizeof e));
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK);
  hub_msg_destroy(res);
  long before = stat_of("requests");
  t0 = now_ms();
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_RETRY && out.code == HUB_ERR_TIMEOUT);
  CHECK(now_ms() - t0 < 100);
  CHECK_CONTAINS(out.reason, "rate limit for http://127.0.0.1:");
  CHECK(stat_of("requests") == before);
  char *text = hub_metrics_render_new(), want[256];
  snprintf(want, sizeof want, "lienthong_ratelimit_waits_total{connector=\"snk\",endpoint=\"%s\"} 0\n", base);
  CHECK_CONTAINS(text, want);
  free(text);
  hub_step_outcome_clear(&out);
  hub_msg_destroy(m);
  sink_free(&s);
}

static void test_sink_breaker(void) {
  struct sink s;
  char e[1024];
  CHECK(sink_new(&s, "{url: '@/b', breaker: {failures: 3, open_for: 1s}}", e, sizeof e));
  control("/_sim/config", "{\"fail_rate\": 1.0, \"fail_status\": 503}");
  struct hub_msg *m = rec("k", "{}", "id-b"), *res = NULL;
  struct hub_step_outcome out = {0};
  long before = stat_of("requests");
  for (int i = 0; i < 3; i++) CHECK(deliver(&s, m, &res, &out) == HUB_STEP_RETRY && out.code == HUB_ERR_HTTP);
  CHECK(stat_of("requests") == before + 3);
  char why[256];
  CHECK(!s.ops->health(s.state, why, sizeof why));
  CHECK_CONTAINS(why, "is open");
  /* Open: every call fails fast, and none reaches the sim. */
  double t0 = now_ms();
  int fast = 0, calls = 0;
  while (now_ms() - t0 < 800) {
    calls++;
    fast += deliver(&s, m, &res, &out) == HUB_STEP_RETRY && out.code == HUB_ERR_UNAVAILABLE &&
            out.retry_after_ms > 0 && out.retry_after_ms <= 1000;
    sleep_ms(20);
  }
  CHECK(calls > 10 && fast == calls);
  CHECK(stat_of("requests") == before + 3);
  char *text = hub_metrics_render_new();
  char want[256];
  snprintf(want, sizeof want, "lienthong_breaker_state{connector=\"snk\",endpoint=\"%s\"} 1\n", base);
  CHECK_CONTAINS(text, want);
  free(text);
  /* After open_for one probe goes; the sim works again, so it closes. */
  control("/_sim/config", "{\"fail_rate\": 0.0}");
  sleep_ms(250);
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK);
  hub_msg_destroy(res);
  CHECK(stat_of("requests") == before + 4);
  CHECK(s.ops->health(s.state, why, sizeof why));
  hub_step_outcome_clear(&out);
  hub_msg_destroy(m);
  sink_free(&s);
}

static void write_file(const char *name, const char *text) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

struct fetcher {
  struct hub_http_auth *a;
  char *header;
};

static void *fetch_thread(void *p) {
  struct fetcher *f = p;
  char *u = NULL, *pw = NULL, e[512];
  hub_http_auth_apply(f->a, 5000, &f->header, &u, &pw, e, sizeof e);
  return NULL;
}

static void test_auth(void) {
  struct sink s;
  char e[1024];
  struct hub_msg *m = rec("k", "{}", "id-a"), *res = NULL;
  struct hub_step_outcome out = {0};

  /* Bearer from a file (read per call: a rotated token is used at once). */
  control("/_sim/config", "{\"bearer\": \"tok-1\"}");
  write_file("bearer", "tok-1\n");
  CHECK(sink_new(&s, "{url: '@/p', auth: {bearer_token_file: bearer}}", e, sizeof e));
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK);
  hub_msg_destroy(res);
  write_file("bearer", "tok-2\n");
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_REJECT);
  CHECK_CONTAINS(out.reason, "answered HTTP 401");
  CHECK(!strstr(out.reason, "tok-2"));
  control("/_sim/config", "{\"bearer\": \"tok-2\"}");
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK);
  hub_msg_destroy(res);
  sink_free(&s);
  control("/_sim/config", "{\"bearer\": null}");

  /* Basic. */
  control("/_sim/config", "{\"basic\": \"ubnd:p@ss w\"}");
  write_file("pw", "p@ss w\n");
  CHECK(sink_new(&s, "{url: '@/p', auth: {basic: {user: ubnd, password_file: pw}}}", e, sizeof e));
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK);
  hub_msg_destroy(res);
  sink_free(&s);
  control("/_sim/config", "{\"basic\": null}");

  /* OAuth2: one token for many calls; a new one before expiry (ttl 3 s: at 2.7 s) and after a
   * 401; a refused client is a RETRY whose reason holds no secret. */
  control("/_sim/config", "{\"oauth2\": \"hub-1:s3cr3t\", \"token_ttl\": 3}");
  write_file("secret", "s3cr3t\n");
  char opts[1024];
  snprintf(opts, sizeof opts,
           "{url: '@/p', auth: {oauth2: {token_url: '%s/token', client_id: hub-1, client_secret_file: secret, "
           "scope: 'dossier.write'}}}",
           base);
  CHECK(sink_new(&s, opts, e, sizeof e));
  long issued = stat_of("tokens_issued");
  for (int i = 0; i < 5; i++) {
    CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK);
    hub_msg_destroy(res);
  }
  CHECK(stat_of("tokens_issued") == issued + 1);
  json_t *log = sim_log();
  int form_ok = 0;
  for (size_t i = 0; i < json_array_size(log); i++) {
    const char *b = jstr(json_array_get(log, i), "body", NULL);
    form_ok +=
        b && !strcmp(b, "grant_type=client_credentials&client_id=hub-1&client_secret=s3cr3t&scope=dossier.write");
  }
  CHECK(form_ok == 1);
  json_decref(log);
  sleep_ms(2800);
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK); /* refreshed before it expired: no 401 on the way */
  hub_msg_destroy(res);
  CHECK(stat_of("tokens_issued") == issued + 2);
  json_t *l = last_request();
  CHECK_STR(jstr(l, "token", NULL), "ok");
  json_decref(l);
  control("/_sim/expire", "{}");
  long reqs = stat_of("requests");
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK); /* 401, a new token, the call again */
  hub_msg_destroy(res);
  CHECK(stat_of("tokens_issued") == issued + 3);
  CHECK(stat_of("requests") == reqs + 3);
  /* A 401 to a fresh token as well: REJECT, after one new token. */
  control("/_sim/next", "{\"answers\": [{\"status\": 401}, {\"status\": 401}]}");
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_REJECT);
  CHECK_CONTAINS(out.reason, "answered HTTP 401");
  CHECK(stat_of("tokens_issued") == issued + 4);
  sink_free(&s);
  write_file("secret", "wrong\n");
  CHECK(sink_new(&s, opts, e, sizeof e));
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_RETRY && out.code == HUB_ERR_AUTH);
  CHECK_CONTAINS(out.reason, "answered HTTP 401");
  CHECK(!strstr(out.reason, "wrong") && !strstr(out.reason, "s3cr3t"));
  sink_free(&s);

  /* Eight callers at once with no token: one fetch, the same token for all. */
  write_file("secret", "s3cr3t\n");
  char tu[256], sf[600];
  snprintf(tu, sizeof tu, "%s/token", base);
  snprintf(sf, sizeof sf, "%s/secret", dir);
  struct hub_http_auth_cfg ac = {.kind = HUB_HTTP_AUTH_OAUTH2, .token_url = tu, .client_id = "hub-1",
                                 .client_secret_file = sf};
  struct hub_http_auth *a = NULL;
  CHECK(hub_http_auth_new(&ac, &a) == HUB_OK);
  control("/_sim/next", "{\"answers\": [{\"status\": 200, \"hang\": 0.3, \"body\": "
                        "\"{\\\"access_token\\\": \\\"T1\\\", \\\"token_type\\\": \\\"bearer\\\", "
                        "\\\"expires_in\\\": 60}\"}]}");
  /* The token endpoint answers from "next" only after its credentials check: serve it there. */
  control("/_sim/config", "{\"oauth2\": null}");
  struct fetcher f[8];
  pthread_t th[8];
  for (int i = 0; i < 8; i++) {
    f[i] = (struct fetcher){a, NULL};
    pthread_create(&th[i], NULL, fetch_thread, &f[i]);
  }
  int same = 0;
  for (int i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    same += f[i].header && !strcmp(f[i].header, "Authorization: Bearer T1");
    free(f[i].header);
  }
  CHECK(same == 8);
  CHECK(hub_http_auth_fetches(a) == 1);
  hub_http_auth_destroy(a);
  hub_msg_destroy(m);
  hub_step_outcome_clear(&out);
}

/* ------------------------------------------------------------------------------------ TLS */

static void test_tls(void) {
  /* A CA, a server certificate for 127.0.0.1 and a client certificate, all from the CA. */
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "cd '%s' && printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
              "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
              "-days 2 -subj /CN=test-ca 2>/dev/null && "
              "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr "
              "-subj /CN=127.0.0.1 2>/dev/null && "
              "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 "
              "-extfile san.ext 2>/dev/null && "
              "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout cli.key -out cli.csr "
              "-subj /CN=lienthong 2>/dev/null && "
              "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cli.pem -days 2 "
              "2>/dev/null", dir);
  int rc = system(cmd);
  CHECK(rc == 0);
  if (rc != 0) return;
  char extra[1024];
  snprintf(extra, sizeof extra, "--tls-cert '%s/srv.pem' --tls-key '%s/srv.key' --tls-client-ca '%s/ca.pem'", dir,
           dir, dir);
  int tport = 0;
  pid_t pid = sim_spawn("tls", extra, &tport);
  struct sink s;
  char e[1024], opts[1024];
  struct hub_msg *m = rec("k", "{}", "id-t"), *res = NULL;
  struct hub_step_outcome out = {0};
  snprintf(opts, sizeof opts,
           "{url: 'https://127.0.0.1:%d/t', tls: {ca_file: ca.pem, cert_file: cli.pem, key_file: cli.key}}", tport);
  CHECK(sink_new(&s, opts, e, sizeof e));
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_OK);
  hub_msg_destroy(res);
  sink_free(&s);
  /* Without the client certificate the server refuses the handshake. */
  snprintf(opts, sizeof opts, "{url: 'https://127.0.0.1:%d/t', tls: {ca_file: ca.pem}}", tport);
  CHECK(sink_new(&s, opts, e, sizeof e));
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_RETRY && out.code == HUB_ERR_IO);
  sink_free(&s);
  /* Without our CA the server's certificate is not trusted. */
  snprintf(opts, sizeof opts, "{url: 'https://127.0.0.1:%d/t', tls: {cert_file: cli.pem, key_file: cli.key}}",
           tport);
  CHECK(sink_new(&s, opts, e, sizeof e));
  CHECK(deliver(&s, m, &res, &out) == HUB_STEP_RETRY && out.code == HUB_ERR_IO);
  CHECK_CONTAINS(out.reason, "certificate");
  sink_free(&s);
  sim_kill(pid);
  /* Only the call with both went through. */
  char path[600], line[8192];
  snprintf(path, sizeof path, "%s/tls.log", dir);
  FILE *f = fopen(path, "r");
  int n = 0;
  while (f && fgets(line, sizeof line, f)) n++;
  if (f) fclose(f);
  CHECK(n == 1);
  hub_step_outcome_clear(&out);
  hub_msg_destroy(m);
}

/* -------------------------------------------------- the engine: a route honours Retry-After */

struct route_thread {
  struct hub_route *r;
  pthread_t th;
};

static void *run_route(void *p) {
  hub_route_run(((struct route_thread *)p)->r);
  return NULL;
}

/* Puts one record (key k, value {}) on h.in. */
static void put_one(const char *k) {
  struct hub_transport_opts o = {"test", NULL, NULL, "test.put"};
  struct hub_transport *t = NULL;
  char e[256];
  struct hub_msg *m = hub_msg_new(k, strlen(k), "{}", 2);
  CHECK(T->open(NULL, &o, &t, e, sizeof e) == HUB_OK && T->begin(t) == HUB_OK && T->produce(t, "h.in", m) == HUB_OK &&
        T->commit(t) == HUB_OK);
  hub_msg_destroy(m);
  if (t) T->close(t);
}

static void test_route_retry_after(void) {
  T = hub_transport_get("memory");
  char yaml[2048], path[600], e[1024] = "";
  snprintf(yaml, sizeof yaml,
           "hub: {transport: memory, instance: t, admin: {listen: ''}}\n"
           "connectors:\n"
           "  - {name: hs, type: http, from: h.in, result: h.res, url: '%s/ra/${key}',\n"
           "     breaker: {failures: 2, open_for: 1500ms},\n"
           "     errors: {retries: 50, backoff: 10ms..20ms}, batch: {max_wait: 5ms}}\n",
           base);
  snprintf(path, sizeof path, "%s/hub.yaml", dir);
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(yaml, f);
    fclose(f);
  }
  struct hub_config *cfg = NULL;
  CHECK(hub_config_load(path, &cfg, e, sizeof e) == HUB_OK);
  if (!cfg) {
    fprintf(stderr, "config: %s\n", e);
    return;
  }
  control("/_sim/next", "{\"answers\": [{\"status\": 429, \"headers\": {\"Retry-After\": \"1\"}}]}");
  struct route_thread rt = {0};
  CHECK(hub_route_create(cfg, &cfg->routes[0], T, &rt.r, e, sizeof e) == HUB_OK);
  if (!rt.r) {
    hub_config_destroy(cfg);
    return;
  }
  put_one("r1");
  pthread_create(&rt.th, NULL, run_route, &rt);
  double t0 = now_ms();
  while (count("h.res") < 1 && now_ms() - t0 < 10000) sleep_ms(20);
  CHECK(count("h.res") == 1);

  /* The endpoint fails: the breaker opens and /ready says why; once it works again the probe
   * closes the breaker, the record goes through and the hub is ready again. */
  char why[512] = "";
  t0 = now_ms();
  while (!hub_metrics_ready(why, sizeof why) && now_ms() - t0 < 5000) sleep_ms(20);
  CHECK(hub_metrics_ready(why, sizeof why));
  control("/_sim/config", "{\"fail_rate\": 1.0, \"fail_status\": 502}");
  put_one("r2");
  t0 = now_ms();
  while (hub_metrics_ready(why, sizeof why) && now_ms() - t0 < 5000) sleep_ms(10);
  CHECK(!hub_metrics_ready(why, sizeof why));
  CHECK_CONTAINS(why, "circuit breaker for http://127.0.0.1:");
  char *text = hub_metrics_render_new();
  CHECK_CONTAINS(text, "lienthong_connector_up{connector=\"hs\",kind=\"sink\"} 0\n");
  free(text);
  control("/_sim/config", "{\"fail_rate\": 0.0}");
  t0 = now_ms();
  while (count("h.res") < 2 && now_ms() - t0 < 10000) sleep_ms(20);
  CHECK(count("h.res") == 2);
  CHECK(hub_metrics_ready(why, sizeof why));
  CHECK(count("hs.dlq") <= 0);
  hub_stop_request();
  pthread_join(rt.th, NULL);
  hub_stop_reset();
  hub_route_destroy(rt.r);
  hub_config_destroy(cfg);
  /* Two calls for /ra/r1: a 429 and, at least the second it asked for later, the 200. */
  json_t *log = sim_log();
  double first = 0, second = 0;
  int n = 0;
  for (size_t i = 0; i < json_array_size(log); i++) {
    json_t *x = json_array_get(log, i);
    if (!jstr(x, "path", NULL) || strcmp(jstr(x, "path", NULL), "/ra/r1") != 0) continue;
    n++;
    if (n == 1) first = json_number_value(json_object_get(x, "time"));
    if (n == 2) second = json_number_value(json_object_get(x, "time"));
  }
  json_decref(log);
  CHECK(n == 2);
  CHECK(second - first >= 1.0); /* the backoff alone would have been 10..20 ms */
  CHECK(second - first < 2.5);
  hub_metrics_reset();
}

int main(void) {
  hub_log_set_level(HUB_LOG_ERROR);
  signal(SIGPIPE, SIG_IGN);
  if (!mkdtemp(dir)) return 1;
  sim_start("");
  if (port) {
    test_client();
    test_breaker();
    test_placeholders();
    test_headers_and_methods();
    test_statuses();
    test_sink_ratelimit();
    test_sink_breaker();
    test_auth();
    test_tls();
    test_route_retry_after();
  }
  sim_stop();
  hub_http_client_shutdown();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return check_done();
}
