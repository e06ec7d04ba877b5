/* `lienthong demo`: the hub on one machine, no broker. It writes a province configuration on
 * the embedded transport into a folder, makes a throw-away PKI with the openssl command, starts
 * a stand-in for the national portal (DVCQG) in this process, runs `lienthong run`, and plays
 * journeys through it:
 *   - two one-stop dossiers POSTed (HMAC-signed) to the webhook, validated, mapped to DVCQG's
 *     DongBoHoSoMC and delivered to the portal stand-in;
 *   - a malformed dossier: accepted by the webhook, refused by the schema, into the DLQ;
 *   - an edXML document dropped into the axis inbox folder, signed (XML-DSig), verified against
 *     the province CA and written to the document-management outbox.
 * Then it prints each journey system by system with times and signature status, read back from
 * the topics, and where to look next. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hub/core/config.h"
#include "hub/core/files.h"
#include "hub/core/registry.h"
#include "hub/transport/transport.h"

static const struct hub_cmd cmd;

static const char demo_secret[] = "demo-webhook-secret-0123456789";

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ the portal stand-in */

struct portal {
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t mu;
  struct {
    double at;
    char key[64];
  } calls[64];
  int n;
};

struct upload {
  size_t n;
};

static enum MHD_Result portal_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                      const char *version, const char *data, size_t *size, void **ctx) {
  struct portal *p = cls;
  (void)url, (void)method, (void)version, (void)data;
  if (!*ctx) {
    *ctx = calloc(1, sizeof(struct upload));
    return *ctx ? MHD_YES : MHD_NO;
  }
  if (*size) {
    ((struct upload *)*ctx)->n += *size;
    *size = 0;
    return MHD_YES;
  }
  const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
  pthread_mutex_lock(&p->mu);
  if (p->n < 64) {
    p->calls[p->n].at = now_s();
    snprintf(p->calls[p->n].key, sizeof p->calls[p->n].key, "%s", key ? key : "");
    p->n++;
  }
  pthread_mutex_unlock(&p->mu);
  /* DVCQG's answer to DongBoHoSoMC (vn-standards.md §3.1): error_code 0 is success. */
  static const char ok[] = "{\"error_code\":\"0\",\"message\":\"Thành công\"}";
  struct MHD_Response *r = MHD_create_response_from_buffer(sizeof ok - 1, (void *)ok, MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header(r, "Content-Type", "application/json");
  enum MHD_Result ret = MHD_queue_response(conn, 200, r);
  MHD_destroy_response(r);
  return ret;
}

static void portal_done(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode t) {
  (void)cls, (void)c, (void)t;
  free(*ctx);
  *ctx = NULL;
}

static double portal_call_time(struct portal *p, const char *key) {
  double at = 0;
  pthread_mutex_lock(&p->mu);
  for (int i = 0; i < p->n && !at; i++)
    if (!strcmp(p->calls[i].key, key)) at = p->calls[i].at;
  pthread_mutex_unlock(&p->mu);
  return at;
}

/* ------------------------------------------------------------ helpers */

/* A port nothing listens on now (the kernel picks one for a socket bound to port 0). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
  struct sockaddr_in sa = {.sin_family = AF_INET};
  socklen_t len = sizeof sa;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
    port = ntohs(sa.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

static int run_quiet(const char *dir, char *const argv[]) {
  fflush(stdout); /* the child must not print our buffered lines again */
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir) != 0) _exit(127);
    if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(127);
    execvp(argv[0], argv);
    _exit(127);
  }
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) < 0) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A throw-away CA and a hub certificate it issued, for signing (never for production). */
static int make_keys(const char *dir) {
  FILE *f = NULL;
  char ext[1024];
  snprintf(ext, sizeof ext, "%s/hub.ext", dir);
  if (!(f = fopen(ext, "w"))) return -1;
  fputs("keyUsage=critical,digitalSignature,nonRepudiation\nbasicConstraints=CA:FALSE\n", f);
  fclose(f);
  char *ca[] = {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
                "-days", "30", "-subj", "/C=VN/O=Demo Province/CN=lienthong demo CA", "-addext",
                "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", NULL};
  char *csr[] = {"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "hub-key.pem", "-out", "hub.csr",
                 "-subj", "/C=VN/O=Demo Province/CN=lienthong demo hub", NULL};
  char *sign[] = {"openssl", "x509", "-req", "-in", "hub.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                  "-CAcreateserial", "-out", "hub-cert.pem", "-days", "30", "-extfile", "hub.ext", NULL};
  return run_quiet(dir, ca) == 0 && run_quiet(dir, csr) == 0 && run_quiet(dir, sign) == 0 ? 0 : -1;
}

static size_t discard(char *p, size_t s, size_t n, void *u) {
  (void)p, (void)u;
  return s * n;
}

struct answer {
  char buf[512];
  size_t n;
};

static size_t keep(char *p, size_t s, size_t n, void *u) {
  struct answer *a = u;
  size_t take = s * n < sizeof a->buf - 1 - a->n ? s * n : sizeof a->buf - 1 - a->n;
  memcpy(a->buf + a->n, p, take);
  a->n += take;
  a->buf[a->n] = '\0';
  return s * n;
}

/* POSTs a signed body to the webhook; the HTTP status, the answer in *a. */
static long post_dossier(int port, const char *body, size_t len, struct answer *a) {
  unsigned char mac[32];
  unsigned int maclen = 0;
  HMAC(EVP_sha256(), demo_secret, (int)strlen(demo_secret), (const unsigned char *)body, len, mac, &maclen);
  char sig[128] = "X-Signature-256: sha256=";
  for (unsigned i = 0; i < maclen; i++) snprintf(sig + strlen(sig), sizeof sig - strlen(sig), "%02x", mac[i]);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/onestop/dossiers", port);
  struct curl_slist *h = curl_slist_append(curl_slist_append(NULL, "Content-Type: application/json"), sig);
  CURL *e = curl_easy_init();
  long code = 0;
  memset(a, 0, sizeof *a);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
  curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
  if (curl_easy_perform(e) == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(e);
  curl_slist_free_all(h);
  return code;
}

static int ready(int admin_port) {
  char url[64];
  long code = 0;
  snprintf(url, sizeof url, "http://127.0.0.1:%d/ready", admin_port);
  CURL *e = curl_easy_init();
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(e, CURLOPT_TIMEOUT, 2L);
  if (curl_easy_perform(e) == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(e);
  return code == 200;
}

/* Where schemas, mappings and examples are: the source tree, or the installed share folder. */
static const char *data_dir(void) {
  const char *env = getenv("LT_DATA_DIR");
  struct stat st;
  if (env && *env) return env;
  if (stat(LT_SOURCE_DIR "/examples/demo/dossier.json", &st) == 0) return LT_SOURCE_DIR;
  return "/usr/share/lienthong";
}

/* ------------------------------------------------------------ reading the journeys back */

struct topic_view {
  struct hub_msg **v;
  size_t n;
};

static int collect(void *ctx, const struct hub_msg *m) {
  struct topic_view *t = ctx;
  struct hub_msg **v = realloc(t->v, (t->n + 1) * sizeof *v);
  if (!v) return 1;
  t->v = v;
  t->v[t->n++] = hub_msg_dup(m);
  return 0;
}

static struct topic_view read_topic(const struct hub_transport_ops *T, struct hub_transport *h, const char *topic) {
  struct topic_view t = {0};
  char e[256];
  T->scan(h, topic, collect, &t, e, sizeof e);
  return t;
}

static void view_free(struct topic_view *t) {
  for (size_t i = 0; i < t->n; i++) hub_msg_destroy(t->v[i]);
  free(t->v);
  memset(t, 0, sizeof *t);
}

static const struct hub_msg *by_header(const struct topic_view *t, const char *name, const char *value) {
  for (size_t i = 0; i < t->n; i++) {
    const char *v = hub_msg_header_get_str(t->v[i], name);
    if (v && !strcmp(v, value)) return t->v[i];
  }
  return NULL;
}

static const struct hub_msg *by_key(const struct topic_view *t, const char *key) {
  for (size_t i = 0; i < t->n; i++)
    if (t->v[i]->key && t->v[i]->key_len == strlen(key) && !memcmp(t->v[i]->key, key, t->v[i]->key_len))
      return t->v[i];
  return NULL;
}

static void step(double t0, double at, const char *system, const char *what) {
  if (at > 0)
    printf("  +%6.3f s  %-22s %s\n", at - t0, system, what);
  else
    printf("  %9s  %-22s %s\n", "--", system, what);
}

static int demo_main(int argc, char **argv) {
  const char *dir = "lienthong-demo";
  int keep_running = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      dir = argv[++i];
    else if (!strcmp(argv[i], "--keep-running"))
      keep_running = 1;
    else
      return hub_cmd_usage_error(&cmd, "unknown option '%s'", argv[i]);
  }
  const char *data = data_dir();
  char path[4096], cfg[4096], log[4096];
  int rc = HUB_EXIT_FAIL;
  pid_t hub = -1;
  struct portal portal = {0};
  pthread_mutex_init(&portal.mu, NULL);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (mkdir(dir, 0750) != 0 && access(dir, W_OK) != 0) {
    fprintf(stderr, "lienthong demo: cannot use folder %s\n", dir);
    return HUB_EXIT_FAIL;
  }
  const char *subdirs[] = {"keys", "axis-inbox", "dms-outbox"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, subdirs[i]);
    mkdir(path, 0750);
  }
  snprintf(path, sizeof path, "%s/keys", dir);
  printf("lienthong demo: the hub on one machine, embedded transport, no broker (folder %s)\n", dir);
  if (make_keys(path) != 0) {
    fprintf(stderr, "lienthong demo: the openssl command could not make the demo keys (is openssl installed?)\n");
    goto out;
  }
  snprintf(path, sizeof path, "%s/webhook.secret", dir);
  FILE *f = fopen(path, "w");
  if (!f) goto out;
  fprintf(f, "%s\n", demo_secret);
  fclose(f);
  portal.port = free_port();
  int hook_port = free_port(), admin_port = free_port();
  portal.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)portal.port, NULL, NULL, portal_request,
                              &portal, MHD_OPTION_NOTIFY_COMPLETED, portal_done, &portal, MHD_OPTION_END);
  if (!portal.d || hook_port < 0 || admin_port < 0) {
    fprintf(stderr, "lienthong demo: no free local port for the portal stand-in\n");
    goto out;
  }
  snprintf(cfg, sizeof cfg, "%s/lienthong.yaml", dir);
  if (!(f = fopen(cfg, "w"))) goto out;
  fprintf(f,
          "# Written by `lienthong demo`: a province's hub on the embedded transport.\n"
          "hub:\n  transport: embedded\n  instance: demo\n  embedded: { path: hub.db }\n"
          "  admin: { listen: '127.0.0.1:%d' }\n"
          "keys:\n  hub: { key: keys/hub-key.pem, cert: keys/hub-cert.pem }\n  trust: { ca: [keys/ca.pem] }\n"
          "connectors:\n"
          "  - { name: onestop, type: http-listen, topic: onestop.dossier.submitted, listen: '127.0.0.1:%d',\n"
          "      path: /onestop/dossiers, key: $.dossierCode, auth: { hmac_sha256_secret_file: webhook.secret } }\n"
          "  - { name: dvcqg, type: http, from: dvcqg.sync.request, result: dvcqg.sync.result,\n"
          "      url: 'http://127.0.0.1:%d/api/DongBoHoSoMC', timeout: 10s }\n"
          "  - { name: axis-inbox, type: file-in, topic: axis.document.received, path: axis-inbox, settle: 200ms,\n      poll_interval: 100ms }\n"
          "  - { name: dms-outbox, type: file-out, from: axis.document.verified, path: dms-outbox,\n"
          "      filename: '${key}' }\n"
          "routes:\n"
          "  - name: dossier-to-dvcqg\n    from: onestop.dossier.submitted\n    to: dvcqg.sync.request\n"
          "    steps:\n      - validate: %s/schemas/onestop/dossier-event.schema.json\n"
          "      - map: %s/mappings/dvcqg/dong-bo-ho-so.yaml\n"
          "  - name: sign-outgoing\n    from: axis.document.received\n    to: axis.document.signed\n"
          "    steps:\n      - sign-xml: { profile: edxml }\n"
          "  - name: verify-incoming\n    from: axis.document.signed\n    to: axis.document.verified\n"
          "    steps:\n      - verify-xml: {}\n",
          admin_port, hook_port, portal.port, data, data);
  fclose(f);
  snprintf(log, sizeof log, "%s/hub.log", dir);
  char self[4096] = "";
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0) goto out;
  self[sl] = '\0';
  fflush(stdout);
  if ((hub = fork()) == 0) {
    if (!freopen(log, "a", stderr) || !freopen("/dev/null", "w", stdout)) _exit(127);
    execl(self, self, "run", cfg, (char *)NULL);
    _exit(127);
  }
  int up = 0;
  for (int i = 0; i < 300 && !up; i++) {
    int st;
    if (waitpid(hub, &st, WNOHANG) == hub) {
      hub = -1;
      break;
    }
    up = ready(admin_port);
    if (!up) usleep(100000);
  }
  if (!up) {
    fprintf(stderr, "lienthong demo: the hub did not get ready; its log is %s\n", log);
    goto out;
  }
  printf("hub ready: config %s, log %s\n\n", cfg, log);

  /* Play: two dossiers, one malformed, one document. */
  char *dossier = NULL;
  size_t dossier_len = 0;
  char errbuf[512];
  snprintf(path, sizeof path, "%s/examples/demo/dossier.json", data);
  if (hub_file_read(path, 1 << 20, &dossier, &dossier_len, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "lienthong demo: %s\n", errbuf);
    goto out;
  }
  json_t *doc = json_loadb(dossier, dossier_len, 0, NULL);
  free(dossier);
  const char *codes[] = {"000.00.01.H22-240115-0101", "000.00.01.H22-240115-0102"};
  char ids[3][64] = {"", "", ""};
  double t_sent[3] = {0};
  for (int i = 0; i < 3; i++) {
    char *body;
    if (i < 2) {
      json_object_set_new(doc, "dossierCode", json_string(codes[i]));
      body = json_dumps(doc, JSON_COMPACT);
    } else {
      body = strdup("{\"event\":\"dossier.submitted\",\"dossierCode\":\"000.00.01.H22-240115-0103\"}");
    }
    struct answer a;
    t_sent[i] = now_s();
    long code = body ? post_dossier(hook_port, body, strlen(body), &a) : 0;
    json_t *ans = code == 202 ? json_loads(a.buf, 0, NULL) : NULL;
    snprintf(ids[i], sizeof ids[i], "%s", ans && json_string_value(json_object_get(ans, "id")) ?
                                              json_string_value(json_object_get(ans, "id")) : "");
    json_decref(ans);
    free(body);
  }
  json_decref(doc);
  double t_doc = now_s();
  snprintf(path, sizeof path, "%s/examples/demo/document.edxml", data);
  char dst[4096];
  snprintf(dst, sizeof dst, "%s/axis-inbox/.incoming", dir);
  char *edxml = NULL;
  size_t edxml_len = 0;
  if (hub_file_read(path, 1 << 20, &edxml, &edxml_len, errbuf, sizeof errbuf) == HUB_OK && (f = fopen(dst, "wb"))) {
    fwrite(edxml, 1, edxml_len, f);
    fclose(f);
    char final[4096];
    snprintf(final, sizeof final, "%s/axis-inbox/cong-van-123.edxml", dir);
    rename(dst, final); /* the folder sees a complete file only */
  }
  free(edxml);

  /* Wait until the journeys are through (or 30 s). */
  char outbox[4096];
  snprintf(outbox, sizeof outbox, "%s/dms-outbox/cong-van-123.edxml", dir);
  for (int i = 0; i < 300; i++) {
    struct stat st;
    if (portal.n >= 2 && stat(outbox, &st) == 0) break;
    usleep(100000);
  }
  usleep(500000); /* the last results and DLQ records commit */

  /* Read the topics back (another process on the same database file, as `dlq list` does). */
  const struct hub_transport_ops *T = hub_transport_get("embedded");
  struct hub_config *hc = NULL;
  struct hub_transport *h = NULL;
  if (!T || hub_config_load(cfg, &hc, errbuf, sizeof errbuf) != HUB_OK) goto out;
  struct hub_transport_opts o = {"lienthong-demo", NULL, NULL, NULL, hc->base_dir};
  if (T->open(hc->transport_cfg, &o, &h, errbuf, sizeof errbuf) != HUB_OK) {
    hub_config_destroy(hc);
    goto out;
  }
  struct topic_view in = read_topic(T, h, "onestop.dossier.submitted"), req = read_topic(T, h, "dvcqg.sync.request"),
                    res = read_topic(T, h, "dvcqg.sync.result"), dlq = read_topic(T, h, "dossier-to-dvcqg.dlq"),
                    got = read_topic(T, h, "axis.document.received"), sig = read_topic(T, h, "axis.document.signed"),
                    ver = read_topic(T, h, "axis.document.verified");
  int complete = 1;
  for (int i = 0; i < 2; i++) {
    printf("Journey %d: dossier %s, one-stop -> national portal (DVCQG)\n", i + 1, codes[i]);
    const struct hub_msg *a = by_header(&in, HUB_H_ID, ids[i]);
    const struct hub_msg *b = a ? by_key(&req, codes[i]) : NULL;
    const char *bid = b ? hub_msg_header_get_str(b, HUB_H_ID) : NULL;
    const struct hub_msg *c = bid ? by_key(&res, codes[i]) : NULL;
    double called = bid ? portal_call_time(&portal, bid) : 0;
    char line[512];
    snprintf(line, sizeof line, "POST /onestop/dossiers (HMAC ok) -> 202, id %s", *ids[i] ? ids[i] : "(none)");
    step(t_sent[i], t_sent[i], "one-stop system", line);
    step(t_sent[i], a ? (double)a->timestamp_ms / 1000.0 : 0, "hub: webhook", "committed to onestop.dossier.submitted");
    snprintf(line, sizeof line, "validated, mapped to DongBoHoSoMC (lt.parent %.12s...)",
             b && hub_msg_header_get_str(b, HUB_H_PARENT) ? hub_msg_header_get_str(b, HUB_H_PARENT) : "?");
    step(t_sent[i], b ? (double)b->timestamp_ms / 1000.0 : 0, "hub: route", line);
    snprintf(line, sizeof line, "POST /api/DongBoHoSoMC, Idempotency-Key %s", bid ? bid : "?");
    step(t_sent[i], called, "national portal", line);
    step(t_sent[i], c ? (double)c->timestamp_ms / 1000.0 : 0, "hub: result",
         c ? "answer recorded on dvcqg.sync.result" : "no result yet");
    complete &= a && b && called > 0 && c;
    printf("\n");
  }
  printf("Journey 3: a malformed dossier (no procedure, applicant, dates...)\n");
  const struct hub_msg *bad = by_header(&in, HUB_H_ID, ids[2]);
  const struct hub_msg *dead = by_key(&dlq, "000.00.01.H22-240115-0103");
  step(t_sent[2], t_sent[2], "one-stop system", "POST /onestop/dossiers -> 202 (well-formed JSON, signed)");
  step(t_sent[2], bad ? (double)bad->timestamp_ms / 1000.0 : 0, "hub: webhook", "committed");
  char reason[400];
  snprintf(reason, sizeof reason, "refused by the schema, to dossier-to-dvcqg.dlq: %.200s",
           dead && hub_msg_header_get_str(dead, HUB_H_ERROR_REASON) ? hub_msg_header_get_str(dead, HUB_H_ERROR_REASON)
                                                                    : "?");
  step(t_sent[2], dead ? (double)dead->timestamp_ms / 1000.0 : 0, "hub: route", reason);
  complete &= bad && dead;
  printf("\nJourney 4: edXML document cong-van-123.edxml over the document axis\n");
  const struct hub_msg *d1 = by_key(&got, "cong-van-123.edxml"), *d2 = by_key(&sig, "cong-van-123.edxml"),
                       *d3 = by_key(&ver, "cong-van-123.edxml");
  struct stat st;
  double written = stat(outbox, &st) == 0 ? (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9 : 0;
  step(t_doc, t_doc, "agency", "dropped into axis-inbox/");
  step(t_doc, d1 ? (double)d1->timestamp_ms / 1000.0 : 0, "hub: file-in", "committed, moved to axis-inbox/done/");
  char sigline[400];
  snprintf(sigline, sizeof sigline, "XML-DSig: lt.sig=%s, signer %.120s",
           d2 && hub_msg_header_get_str(d2, HUB_H_SIG) ? hub_msg_header_get_str(d2, HUB_H_SIG) : "?",
           d2 && hub_msg_header_get_str(d2, HUB_H_SIGNER) ? hub_msg_header_get_str(d2, HUB_H_SIGNER) : "?");
  step(t_doc, d2 ? (double)d2->timestamp_ms / 1000.0 : 0, "hub: sign-outgoing", sigline);
  snprintf(sigline, sizeof sigline, "checked against the province CA: lt.sig=%s",
           d3 && hub_msg_header_get_str(d3, HUB_H_SIG) ? hub_msg_header_get_str(d3, HUB_H_SIG) : "?");
  step(t_doc, d3 ? (double)d3->timestamp_ms / 1000.0 : 0, "hub: verify-incoming", sigline);
  step(t_doc, written, "document management", "dms-outbox/cong-van-123.edxml written (atomically)");
  complete &= d1 && d2 && d3 && written > 0;
  struct topic_view *views[] = {&in, &req, &res, &dlq, &got, &sig, &ver};
  for (size_t i = 0; i < sizeof views / sizeof *views; i++) view_free(views[i]);
  T->close(h);
  hub_config_destroy(hc);

  printf("\nWhere to look next:\n"
         "  curl -s http://127.0.0.1:%d/metrics      counters, lag, latency, connector health%s\n"
         "  lienthong dlq list %s dossier-to-dvcqg   the refused dossier, with its reason\n"
         "  %s                   the configuration: connectors, routes, keys\n"
         "  %s                          the hub's log (JSON lines)\n",
         admin_port, keep_running ? "" : " (while it runs: --keep-running)", cfg, cfg, log);
  if (!complete) fprintf(stderr, "lienthong demo: a journey did not complete; see %s\n", log);
  rc = complete ? HUB_EXIT_OK : HUB_EXIT_FAIL;
  if (keep_running && complete) {
    printf("\nThe hub keeps running (pid %d); stop it with: kill %d\n", (int)hub, (int)hub);
    hub = -1;
  }
out:
  if (hub > 0) {
    kill(hub, SIGTERM);
    waitpid(hub, NULL, 0);
  }
  if (portal.d) MHD_stop_daemon(portal.d);
  curl_global_cleanup();
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "demo",
    .summary = "play dossiers and a signed document through a province hub on this machine (no broker)",
    .usage = "Usage: lienthong demo [--dir DIR] [--keep-running]\n\n"
             "Writes a province configuration on the embedded transport into DIR (default ./lienthong-demo),\n"
             "makes a throw-away PKI with the openssl command, starts a stand-in for the national portal\n"
             "(DVCQG) and `lienthong run`, then plays: two one-stop dossiers through the webhook, the schema\n"
             "and the DongBoHoSoMC mapping to the portal; a malformed dossier into the dead-letter queue; an\n"
             "edXML document from a folder, signed, verified and written to the document-management folder.\n"
             "Prints each journey system by system with times and signature status, and where to look next.\n\n"
             "Options:\n"
             "  --dir DIR         where the configuration, keys, database and folders go\n"
             "  --keep-running    leave the hub running afterwards (the portal stand-in stops)\n\n"
             "Exit codes: 0 every journey completed, 1 one did not (see the hub's log), 2 usage error.",
    .main = demo_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_demo, cmd);
