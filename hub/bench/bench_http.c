/* `lienthong bench http`: webhook -> topic -> http sink on loopback, against the same load sent
 * straight to the same target server in the same run.
 *   1. starts a target server in this process (libmicrohttpd; answers 200, notes when each
 *      record arrives, by the sequence number in its body);
 *   2. direct: a libcurl-multi load generator POSTs N bodies to the target with C requests in
 *      flight: the baseline rate and per-request latency;
 *   3. hub: starts `lienthong run` (embedded transport unless told otherwise) with an http-listen
 *      source and an http sink to the target, sends warm-up records, then POSTs the N bodies to
 *      the hub the same way; rate = N over first send -> last arrival at the target, latency =
 *      send -> arrival; every body answered 202 must arrive (duplicates counted).
 * Prints a summary and, as the last line, one JSON object with every figure. */
#include <curl/curl.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hub/bench/bench_proc.h"
#include "hub/core/cmd.h"
#include "hub/core/freeport.h"
#include "hub/core/registry.h"

#define WARMUP 200

static const struct hub_cmd cmd;

struct opts {
  uint64_t messages, concurrency, size;
  const char *transport, *bootstrap;
  int keep;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ the target server */

struct target {
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t mu;
  double *arrived; /* by sequence number; 0: not yet */
  uint64_t cap, count, dup;
};

struct body {
  char buf[256]; /* the sequence number is at the start of the body */
  size_t n;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **ctx) {
  struct target *t = cls;
  struct body *b = *ctx;
  (void)url, (void)method, (void)version;
  if (!b) {
    if (!(b = calloc(1, sizeof *b))) return MHD_NO;
    *ctx = b;
    return MHD_YES;
  }
  if (*size) {
    size_t take = *size < sizeof b->buf - 1 - b->n ? *size : sizeof b->buf - 1 - b->n;
    memcpy(b->buf + b->n, data, take);
    b->n += take;
    *size = 0;
    return MHD_YES;
  }
  const char *s = strstr(b->buf, "\"seq\":");
  if (s) {
    uint64_t seq = strtoull(s + 6, NULL, 10);
    double at = now_s();
    pthread_mutex_lock(&t->mu);
    if (seq < t->cap) {
      if (t->arrived[seq] > 0)
        t->dup++;
      else
        t->arrived[seq] = at, t->count++;
    }
    pthread_mutex_unlock(&t->mu);
  }
  static const char ok[] = "{\"ok\":true}";
  struct MHD_Response *r = MHD_create_response_from_buffer(sizeof ok - 1, (void *)ok, MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret = MHD_queue_response(conn, s ? 200 : 400, r);
  MHD_destroy_response(r);
  return ret;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **ctx, enum MHD_RequestTerminationCode code) {
  (void)cls, (void)conn, (void)code;
  free(*ctx);
  *ctx = NULL;
}

static int target_start(struct target *t, uint64_t cap) {
  pthread_mutex_init(&t->mu, NULL);
  t->cap = cap;
  if (!(t->arrived = calloc(cap, sizeof *t->arrived))) return -1;
  t->port = hub_free_port(-1);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)t->port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  t->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t)t->port, NULL, NULL, on_request,
                          t, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE, 2U,
                          MHD_OPTION_CONNECTION_LIMIT, 1000U, MHD_OPTION_NOTIFY_COMPLETED, on_done, t, MHD_OPTION_END);
  return t->d ? 0 : -1;
}

static void target_reset(struct target *t) {
  pthread_mutex_lock(&t->mu);
  memset(t->arrived, 0, t->cap * sizeof *t->arrived);
  t->count = t->dup = 0;
  pthread_mutex_unlock(&t->mu);
}

static uint64_t target_count(struct target *t) {
  pthread_mutex_lock(&t->mu);
  uint64_t n = t->count;
  pthread_mutex_unlock(&t->mu);
  return n;
}

/* ------------------------------------------------------------------ the load generator */

struct load {
  const char *url;
  uint64_t first, n; /* sequence numbers first..first+n-1 */
  size_t size;
  double *sent, *answered; /* by sequence number (relative to first) */
  uint64_t status_2xx, status_202, failed;
};

struct req {
  uint64_t seq;
  char *body;
  size_t len;
  struct curl_slist *headers;
};

static size_t discard(char *p, size_t s, size_t n, void *u) {
  (void)p, (void)u;
  return s * n;
}

static void fill(struct req *r, uint64_t seq, size_t size) {
  int n = snprintf(r->body, size + 1, "{\"seq\":%llu,\"pad\":\"", (unsigned long long)seq);
  size_t at = (size_t)n;
  while (at + 2 < size) r->body[at++] = 'x';
  memcpy(r->body + at, "\"}", 2);
  r->len = at + 2;
  r->seq = seq;
}

/* POSTs every body with `conc` requests in flight; 0, or -1 when curl could not start. */
static int load_run(struct load *l, uint64_t conc) {
  CURLM *m = curl_multi_init();
  struct req *reqs = calloc(conc, sizeof *reqs);
  if (!m || !reqs) return -1;
  uint64_t next = 0, done = 0;
  for (uint64_t i = 0; i < conc; i++) {
    reqs[i].body = malloc(l->size + 64);
    reqs[i].headers = curl_slist_append(NULL, "Content-Type: application/json");
  }
  for (uint64_t i = 0; i < conc && next < l->n; i++, next++) {
    CURL *e = curl_easy_init();
    fill(&reqs[i], l->first + next, l->size);
    curl_easy_setopt(e, CURLOPT_URL, l->url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, reqs[i].body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)reqs[i].len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, reqs[i].headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &reqs[i]);
    l->sent[next] = now_s();
    curl_multi_add_handle(m, e);
  }
  while (done < l->n) {
    int running = 0, q = 0;
    curl_multi_perform(m, &running);
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(m, &q))) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL *e = msg->easy_handle;
      struct req *r;
      long code = 0;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
      uint64_t i = r->seq - l->first;
      l->answered[i] = now_s();
      if (msg->data.result != CURLE_OK) l->failed++;
      l->status_2xx += code >= 200 && code < 300;
      l->status_202 += code == 202;
      done++;
      curl_multi_remove_handle(m, e);
      if (next < l->n) { /* reuse the handle for the next body */
        fill(r, l->first + next, l->size);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->len);
        l->sent[next++] = now_s();
        curl_multi_add_handle(m, e);
      } else {
        curl_easy_cleanup(e);
      }
    }
    if (done < l->n) curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  for (uint64_t i = 0; i < conc; i++) {
    free(reqs[i].body);
    curl_slist_free_all(reqs[i].headers);
  }
  free(reqs);
  curl_multi_cleanup(m);
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p) {
  if (!n) return 0;
  qsort(v, n, sizeof *v, cmp_double);
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return v[i];
}

/* ------------------------------------------------------------------ the hub */

static int hub_ready(int admin_port, int timeout_s, struct bench_child *hub) {
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/ready", admin_port);
  for (double until = now_s() + timeout_s; now_s() < until && bench_child_poll(hub);) {
    CURL *e = curl_easy_init();
    long code = 0;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 2L);
    if (curl_easy_perform(e) == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(e);
    if (code == 200) return 1;
    usleep(200000);
  }
  return 0;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (!*s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int bench_http_main(int argc, char **argv) {
  struct opts o = {20000, 32, 512, "embedded", NULL, 0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--quick")) {
      o.messages = 2000;
    } else if (!strcmp(a, "--keep")) {
      o.keep = 1;
    } else if (v && !strcmp(a, "--messages") && !parse_u64(v, 100, 10000000, &o.messages)) {
      i++;
    } else if (v && !strcmp(a, "--concurrency") && !parse_u64(v, 1, 512, &o.concurrency)) {
      i++;
    } else if (v && !strcmp(a, "--size") && !parse_u64(v, 64, 1000000, &o.size)) {
      i++;
    } else if (v && !strcmp(a, "--transport") && (!strcmp(v, "embedded") || !strcmp(v, "kafka"))) {
      o.transport = argv[++i];
    } else if (v && !strcmp(a, "--bootstrap")) {
      o.bootstrap = argv[++i];
    } else {
      return hub_cmd_usage_error(&cmd, "bad option or value: '%s'", a);
    }
  }
  if (!strcmp(o.transport, "kafka") && !o.bootstrap)
    return hub_cmd_usage_error(&cmd, "--transport kafka needs --bootstrap HOST:PORT");
  int rc = HUB_EXIT_FAIL;
  char scratch[] = "/tmp/lienthong-bench-http-XXXXXX", cfg_path[512], log_path[512], why[512] = "";
  struct target t = {0};
  struct bench_child hub = {0};
  uint64_t total = WARMUP + 2 * o.messages;
  double *sent = calloc(total, sizeof *sent), *answered = calloc(total, sizeof *answered);
  double *lat = calloc(o.messages, sizeof *lat);
  double direct_rate = 0, direct_p50 = 0, direct_p99 = 0, hub_rate = 0, hub_p50 = 0, hub_p99 = 0;
  struct load direct = {0}, via = {0};
  uint64_t delivered = 0, missing = 0;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (!sent || !answered || !lat || !mkdtemp(scratch) || target_start(&t, total) < 0) {
    snprintf(why, sizeof why, "cannot start the target server");
    goto out;
  }
  char target_url[128], hub_url[128];
  snprintf(target_url, sizeof target_url, "http://127.0.0.1:%d/direct", t.port);

  /* Direct: the target server's own rate with this load generator. */
  direct = (struct load){target_url, WARMUP + o.messages, o.messages, o.size, sent, answered};
  double t0 = now_s();
  load_run(&direct, o.concurrency);
  double t1 = now_s();
  for (uint64_t i = 0; i < o.messages; i++) lat[i] = (answered[i] - sent[i]) * 1000.0;
  direct_rate = (double)o.messages / (t1 - t0);
  direct_p50 = pct(lat, o.messages, 0.50);
  direct_p99 = pct(lat, o.messages, 0.99);
  fprintf(stderr, "bench: direct: %llu requests in %.3f s (%.0f/s), p99 %.1f ms\n", (unsigned long long)o.messages,
          t1 - t0, direct_rate, direct_p99);
  target_reset(&t);

  /* Through the hub. */
  int in_port = hub_free_port(t.port), admin_port = hub_free_port(in_port);
  snprintf(hub_url, sizeof hub_url, "http://127.0.0.1:%d/in", in_port);
  snprintf(cfg_path, sizeof cfg_path, "%s/hub.yaml", scratch);
  snprintf(log_path, sizeof log_path, "%s/hub.log", scratch);
  FILE *f = fopen(cfg_path, "w");
  if (!f) goto out;
  if (!strcmp(o.transport, "kafka"))
    fprintf(f, "hub:\n  transport: kafka\n  instance: bench-http\n  kafka: { bootstrap: '%s' }\n", o.bootstrap);
  else
    fprintf(f, "hub:\n  transport: embedded\n  instance: bench-http\n  embedded: { path: %s/hub.db, sync: normal }\n",
            scratch);
  fprintf(f,
          "  log_level: warn\n  admin: { listen: '127.0.0.1:%d' }\n"
          "connectors:\n"
          "  - { name: in, type: http-listen, topic: bench.http.in, listen: '127.0.0.1:%d', path: /in }\n"
          "  - { name: out, type: http, from: bench.http.in, url: 'http://127.0.0.1:%d/out', timeout: 10s,\n"
          "      batch: { max_wait: 5ms } }\n",
          admin_port, in_port, t.port);
  fclose(f);
  char self[4096] = "";
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0) goto out;
  self[sl] = '\0';
  char *hargv[] = {self, "run", cfg_path, NULL};
  char errbuf[512];
  if (bench_child_spawn(&hub, hargv, NULL, -1, -1, log_path, errbuf, sizeof errbuf) != HUB_OK) {
    snprintf(why, sizeof why, "starting the hub: %s", errbuf);
    goto out;
  }
  if (!hub_ready(admin_port, 120, &hub)) {
    snprintf(why, sizeof why, "the hub was not ready within 120 s or ended (log: %s)", log_path);
    bench_print_tail(log_path, 15, "  hub.log: ");
    goto out;
  }
  struct load warm = {hub_url, 0, WARMUP, o.size, sent, answered};
  load_run(&warm, o.concurrency);
  for (double until = now_s() + 60; target_count(&t) < WARMUP && now_s() < until;) usleep(10000);
  via = (struct load){hub_url, WARMUP, o.messages, o.size, sent + WARMUP, answered + WARMUP};
  t0 = now_s();
  load_run(&via, o.concurrency);
  /* Until every accepted body arrived, or nothing came for 30 s. */
  uint64_t last = 0;
  for (double quiet = now_s(); target_count(&t) < WARMUP + via.status_202 && now_s() - quiet < 30;) {
    uint64_t c = target_count(&t);
    if (c != last) last = c, quiet = now_s();
    bench_child_poll(&hub);
    usleep(5000);
  }
  double last_arrival = 0;
  size_t n_lat = 0;
  pthread_mutex_lock(&t.mu);
  for (uint64_t i = 0; i < o.messages; i++) {
    double at = t.arrived[WARMUP + i];
    if (at <= 0) {
      missing++;
      continue;
    }
    delivered++;
    if (at > last_arrival) last_arrival = at;
    lat[n_lat++] = (at - sent[WARMUP + i]) * 1000.0;
  }
  uint64_t dup = t.dup;
  pthread_mutex_unlock(&t.mu);
  hub_rate = last_arrival > t0 ? (double)delivered / (last_arrival - t0) : 0;
  hub_p50 = pct(lat, n_lat, 0.50);
  hub_p99 = pct(lat, n_lat, 0.99);
  bench_child_poll(&hub);
  fprintf(stderr, "bench: hub: %llu accepted, %llu delivered in %.3f s (%.0f/s), p99 %.1f ms, %llu duplicates\n",
          (unsigned long long)via.status_202, (unsigned long long)delivered, last_arrival - t0, hub_rate, hub_p99,
          (unsigned long long)dup);
  bench_child_stop(&hub, SIGTERM, 40000);
  if (via.status_202 != o.messages)
    snprintf(why, sizeof why, "%llu of %llu requests were not answered 202",
             (unsigned long long)(o.messages - via.status_202), (unsigned long long)o.messages);
  else if (missing)
    snprintf(why, sizeof why, "%llu accepted records never reached the target", (unsigned long long)missing);
  else
    rc = HUB_EXIT_OK;
  printf("http: direct %.0f/s (p99 %.1f ms); through the hub %.0f/s (p50 %.1f ms, p99 %.1f ms); ratio %.2f; "
         "peak RSS %.1f MiB%s%s\n",
         direct_rate, direct_p99, hub_rate, hub_p50, hub_p99, direct_rate > 0 ? hub_rate / direct_rate : 0,
         (double)hub.hwm_kib / 1024.0, *why ? "; " : "", why);
  json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:f, s:s}",
                        "bench", "http", "transport", o.transport, "messages", (json_int_t)o.messages,
                        "concurrency", (json_int_t)o.concurrency, "size", (json_int_t)o.size, "direct_rate",
                        direct_rate, "direct_p50_ms", direct_p50, "direct_p99_ms", direct_p99, "hub_rate", hub_rate,
                        "ratio", direct_rate > 0 ? hub_rate / direct_rate : 0.0, "hub_p50_ms", hub_p50, "hub_p99_ms",
                        hub_p99, "accepted", (json_int_t)via.status_202, "delivered", (json_int_t)delivered,
                        "missing", (json_int_t)missing, "duplicates", (json_int_t)dup, "hub_rss_mib",
                        (double)hub.hwm_kib / 1024.0, "error", why);
  char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
  if (line) printf("%s\n", line);
  free(line);
  json_decref(j);
out:
  if (rc != HUB_EXIT_OK && *why) fprintf(stderr, "bench http: %s\n", why);
  if (hub.running) bench_child_stop(&hub, SIGKILL, 5000);
  if (t.d) MHD_stop_daemon(t.d);
  free(t.arrived);
  free(sent);
  free(answered);
  free(lat);
  if (!o.keep && scratch[strlen(scratch) - 1] != 'X') bench_rmtree(scratch);
  curl_global_cleanup();
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "bench.http",
    .summary = "benchmark webhook -> topic -> http sink against the same load sent straight to the target",
    .usage = "Usage: lienthong bench http [OPTIONS]\n\n"
             "Measures the hub's HTTP path on loopback against the same load generator hitting the same target\n"
             "server directly, in the same run:\n"
             "  1. starts a target server (answers 200; notes when each record arrives);\n"
             "  2. POSTs N JSON bodies of SIZE bytes straight to it with C requests in flight: the baseline;\n"
             "  3. starts `lienthong run` with an http-listen source and an http sink to the target, sends 200\n"
             "     warm-up bodies, then POSTs the N bodies to the hub the same way; rate = N over first send to\n"
             "     last arrival at the target, latency = send to arrival; every body answered 202 must arrive.\n"
             "Progress goes to stderr; a summary and, as the last line, one JSON object go to stdout.\n\n"
             "Options:\n"
             "  --messages N        bodies per phase (default 20000; 2000 with --quick)\n"
             "  --concurrency C     requests in flight (default 32)\n"
             "  --size BYTES        body size, 64..1000000 (default 512)\n"
             "  --transport T       embedded (default; in the scratch directory) or kafka (needs --bootstrap)\n"
             "  --bootstrap H:P     the Kafka cluster for --transport kafka\n"
             "  --keep              keep the scratch directory (config, log, database)\n"
             "  --quick             a small run for CI\n\n"
             "Exit codes: 0 every accepted body arrived, 1 a body was lost or refused, 2 usage error.",
    .main = bench_http_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_bench_http, cmd);
