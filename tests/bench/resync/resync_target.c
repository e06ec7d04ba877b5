/* resync_target: the fast local endpoint of the bulk re-sync benchmark (bench_resync.py), and
 * the load generator that measures its own capacity in the same run.
 *
 *   resync_target serve PORT_FILE [DELAY_US]
 *       answers every POST with 200 {"error_code":0,"message":"OK"} after DELAY_US (a portal's
 *       own work; default 0). The body's "key" and "seq" are checked: per key the sequence
 *       numbers must arrive in order (a repeat is counted as a duplicate, a step back as out of
 *       order). GET /_stats -> {"requests","distinct","duplicates","out_of_order","p50_us",
 *       "p99_us" (time in the handler), "first","last" (unix seconds of the first and last call)};
 *       GET /_reset starts the counts again.
 *   resync_target load URL N CONCURRENCY
 *       POSTs N bodies {"key","seq"} with CONCURRENCY in flight (libcurl multi) and prints
 *       {"rate","p50_ms","p99_ms","failed"}: the endpoint's capacity seen by a client that does
 *       nothing else.
 * libmicrohttpd and libcurl only (both already build dependencies of the hub). */
#include <curl/curl.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ serve */

/* Per key, the last sequence number seen: an open-addressing table holding the keys themselves
 * (a table of hashes alone would mistake two keys for one: birthday collisions). */
#define KEYS (1u << 19)
#define KEY_MAX 48
struct slot {
  char key[KEY_MAX];
  long long seq; /* -1: unseen */
  int used;
};
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot *slots;
static int table_full;
static unsigned long long requests, distinct, duplicates, out_of_order;
static double first_at, last_at;
static unsigned hist[64]; /* handler time, log2 microseconds */
static long delay_us;

struct body {
  char buf[512];
  size_t n;
  double t0;
};

/* The slot of key k (under mu), claimed if new; NULL when the table is full. */
static struct slot *slot_of(const char *k, size_t n) {
  if (n >= KEY_MAX) n = KEY_MAX - 1;
  unsigned h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 16777619u;
  for (unsigned probe = 0; probe < KEYS; probe++) {
    struct slot *sl = &slots[(h + probe) % KEYS];
    if (!sl->used) {
      sl->used = 1;
      memcpy(sl->key, k, n);
      sl->key[n] = '\0';
      sl->seq = -1;
      return sl;
    }
    if (strlen(sl->key) == n && !memcmp(sl->key, k, n)) return sl;
  }
  table_full = 1;
  return NULL;
}

static double hist_pct(double p) {
  unsigned long long total = 0, acc = 0;
  for (int i = 0; i < 64; i++) total += hist[i];
  for (int i = 0; i < 64; i++) {
    acc += hist[i];
    if (total && acc >= p * (double)total) return (double)(1ull << i);
  }
  return 0;
}

static enum MHD_Result send_text(struct MHD_Connection *c, int status, const char *text) {
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", "application/json");
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **ctx) {
  (void)cls, (void)version;
  if (!strcmp(method, "GET") && !strcmp(url, "/_stats")) {
    char out[512];
    pthread_mutex_lock(&mu);
    snprintf(out, sizeof out,
             "{\"requests\":%llu,\"distinct\":%llu,\"duplicates\":%llu,\"out_of_order\":%llu,\"p50_us\":%.0f,"
             "\"p99_us\":%.0f,\"first\":%.6f,\"last\":%.6f}",
             requests, distinct, duplicates, out_of_order, hist_pct(0.5), hist_pct(0.99), first_at, last_at);
    pthread_mutex_unlock(&mu);
    return send_text(conn, 200, out);
  }
  if (!strcmp(method, "GET") && !strcmp(url, "/_reset")) { /* between the capacity and the hub phase */
    pthread_mutex_lock(&mu);
    memset(slots, 0, (size_t)KEYS * sizeof *slots);
    table_full = 0;
    requests = distinct = duplicates = out_of_order = 0;
    first_at = last_at = 0;
    memset(hist, 0, sizeof hist);
    pthread_mutex_unlock(&mu);
    return send_text(conn, 200, "{}");
  }
  struct body *b = *ctx;
  if (!b) {
    if (!(b = calloc(1, sizeof *b))) return MHD_NO;
    b->t0 = now_s();
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
  const char *k = strstr(b->buf, "\"key\":\""), *s = strstr(b->buf, "\"seq\":");
  if (!k || !s) return send_text(conn, 400, "{\"error_code\":\"302\",\"message\":\"DATA_TYPE_INVALID: key, seq\"}");
  k += 7;
  size_t kn = strcspn(k, "\"");
  long long seq = strtoll(s + 6, NULL, 10);
  if (delay_us > 0) usleep((useconds_t)delay_us);
  double t = now_s();
  pthread_mutex_lock(&mu);
  struct slot *sl = slot_of(k, kn);
  requests++;
  if (!first_at) first_at = t;
  last_at = t;
  if (!sl) out_of_order++; /* more keys than the table holds: counted as a failure, never hidden */
  else if (seq == sl->seq) duplicates++;
  else if (seq < sl->seq) out_of_order++;
  else sl->seq = seq, distinct++;
  double us = (t - b->t0) * 1e6;
  int bucket = 0;
  while (bucket < 63 && (double)(1ull << bucket) < us) bucket++;
  hist[bucket]++;
  pthread_mutex_unlock(&mu);
  return send_text(conn, 200, "{\"error_code\":0,\"message\":\"OK\"}");
}

static void on_done(void *cls, struct MHD_Connection *conn, void **ctx, enum MHD_RequestTerminationCode code) {
  (void)cls, (void)conn, (void)code;
  free(*ctx);
  *ctx = NULL;
}

static volatile sig_atomic_t stop;
static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

static int serve(const char *port_file, long delay) {
  delay_us = delay;
  if (!(slots = calloc(KEYS, sizeof *slots))) return 1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* With a service time every call sleeps: a thread per connection, so calls overlap as they
   * would at a real portal; without, a small epoll pool is fastest. */
  struct MHD_Daemon *d =
      delay > 0 ? MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0,
                                   NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                                   MHD_OPTION_CONNECTION_LIMIT, 2000U, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                                   MHD_OPTION_END)
                : MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, NULL,
                                   MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE, 4U,
                                   MHD_OPTION_CONNECTION_LIMIT, 2000U, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                                   MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "resync_target: cannot listen\n");
    return 1;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
  FILE *f = fopen(tmp, "w");
  if (!f) return 1;
  fprintf(f, "%u\n", info ? info->port : 0);
  fclose(f);
  rename(tmp, port_file);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  while (!stop) usleep(100000);
  MHD_stop_daemon(d);
  return 0;
}

/* ------------------------------------------------------------------ load */

struct call {
  CURL *h;
  char body[128];
  double t0;
};

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static size_t sink_cb(char *p, size_t s, size_t n, void *u) {
  (void)p, (void)u;
  return s * n;
}

static int load(const char *url, long n, long conc) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM *m = curl_multi_init();
  struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
  struct call *calls = calloc((size_t)conc, sizeof *calls);
  double *lat = calloc((size_t)n, sizeof *lat);
  long next = 0, done = 0, failed = 0;
  if (!m || !calls || !lat) return 1;
  double t0 = now_s();
  for (long i = 0; i < conc && next < n; i++, next++) {
    struct call *c = &calls[i];
    c->h = curl_easy_init();
    snprintf(c->body, sizeof c->body, "{\"key\":\"L%05ld\",\"seq\":%ld}", next % 50000, 1000000 + next / 50000);
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, sink_cb);
    curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
    c->t0 = now_s();
    curl_multi_add_handle(m, c->h);
  }
  while (done < n) {
    int running = 0, q = 0;
    curl_multi_perform(m, &running);
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(m, &q))) {
      if (msg->msg != CURLMSG_DONE) continue;
      struct call *c;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
      long st = 0;
      curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &st);
      if (msg->data.result != CURLE_OK || st != 200) failed++;
      lat[done++] = now_s() - c->t0;
      curl_multi_remove_handle(m, c->h);
      if (next < n) { /* the same handle again: connection reuse, as the hub's client does */
        snprintf(c->body, sizeof c->body, "{\"key\":\"L%05ld\",\"seq\":%ld}", next % 50000, 1000000 + next / 50000);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, c->body);
        c->t0 = now_s();
        next++;
        curl_multi_add_handle(m, c->h);
      }
    }
    if (done < n) curl_multi_poll(m, NULL, 0, 100, NULL); /* after re-adding: no idle wait */
  }
  double el = now_s() - t0;
  qsort(lat, (size_t)n, sizeof *lat, cmp_d);
  printf("{\"rate\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"failed\":%ld}\n", (double)n / el, lat[n / 2] * 1e3,
         lat[(long)((double)n * 0.99)] * 1e3, failed);
  for (long i = 0; i < conc; i++)
    if (calls[i].h) curl_easy_cleanup(calls[i].h);
  curl_slist_free_all(hdr);
  curl_multi_cleanup(m);
  free(calls);
  free(lat);
  return failed ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "serve")) return serve(argv[2], argc > 3 ? strtol(argv[3], NULL, 10) : 0);
  if (argc == 5 && !strcmp(argv[1], "load"))
    return load(argv[2], strtol(argv[3], NULL, 10), strtol(argv[4], NULL, 10));
  fprintf(stderr, "usage: resync_target serve PORT_FILE [DELAY_US] | load URL N CONCURRENCY\n");
  return 2;
}
