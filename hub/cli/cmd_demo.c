/* `lienthong demo`: the hub on one machine, no broker. It writes a province configuration on
 * the embedded transport into a folder (the blocks of examples/province.yaml, with local
 * addresses), makes a throw-away PKI with the openssl command, starts in-process stand-ins for
 * the national portal (DVCQG, hub/cli/demo_portal.c) and VNPost (hub/cli/demo_vnpost.c), runs
 * `lienthong run`, and plays journeys through the real connectors:
 *   1-2 two one-stop dossier events POSTed (HMAC-signed) to the `onestop` source, checked by the
 *       event contract, mapped and delivered by the `dvcqg` sink (login, TraCuuHoSo, DongBoHoSoMC,
 *       and for the second, which records a processing step, CapNhatTienDoHoSoMC);
 *   3   a malformed dossier event: accepted by the source, refused by the contract, into the DLQ;
 *   4   an edXML document dropped into the axis inbox folder, signed (XML-DSig), verified against
 *       the province CA and written to the document-management outbox;
 *   5   a fee paid and reconciled: a signed PayGov confirm callback to `paygov-confirm`, the
 *       bank's fixed-width statement through file-in + bank-statement, `reconcile` says matched
 *       (hub/cli/demo_payment.c); a forged copy of the callback is refused and kept aside;
 *   6   a postal return: `vnpost-tracking` polls the VNPost stand-in, the dossier's entries
 *       become one-stop dossier events ending in status `returned`.
 * Then it prints each journey system by system with times and signature status, read back from
 * the topics and the stand-ins' records, and where to look next. */
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "demo.h"
#include "hub/core/config.h"
#include "hub/core/files.h"
#include "hub/core/freeport.h"
#include "hub/core/registry.h"
#include "hub/transport/transport.h"

static const struct hub_cmd cmd;

static const char demo_secret[] = "demo-webhook-secret-0123456789";
static const char portal_user[] = "tinh-qn", portal_password[] = "demo-portal-password";
static const char paygov_partner[] = "SOTTTT_QNI", paygov_key[] = "demo-paygov-hash-key-2026";
static const char lgsp_client[] = "motcua-demo", lgsp_secret[] = "demo-lgsp-client-secret";
static const char agency[] = "000.00.01.H22", account[] = "0011004455667";

/* ------------------------------------------------------------ helpers */

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

static long post_dossier(int port, const char *body, size_t len, struct demo_reply *a) {
  unsigned char mac[32];
  unsigned int maclen = 0;
  HMAC(EVP_sha256(), demo_secret, (int)strlen(demo_secret), (const unsigned char *)body, len, mac, &maclen);
  char sig[128] = "X-Signature-256: sha256=";
  for (unsigned i = 0; i < maclen; i++) snprintf(sig + strlen(sig), sizeof sig - strlen(sig), "%02x", mac[i]);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/onestop/events", port);
  struct curl_slist *h = curl_slist_append(curl_slist_append(NULL, "Content-Type: application/json"), sig);
  CURL *e = curl_easy_init();
  long code = 0;
  memset(a, 0, sizeof *a);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, demo_reply_keep);
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
  double d = at - t0;
  if (d < 0 && d > -0.002) d = 0; /* records carry milliseconds: a step in the same one as t0 */
  if (at > 0)
    printf("  +%6.3f s  %-24s %s\n", d, system, what);
  else
    printf("  %9s  %-24s %s\n", "--", system, what);
}

/* The first record of lt.type `type` (NULL: any) whose value contains `text` (the topics here
 * are small). */
static const struct hub_msg *by_text(const struct topic_view *t, const char *text, const char *type) {
  size_t n = strlen(text);
  for (size_t i = 0; i < t->n; i++) {
    const char *ty = hub_msg_header_get_str(t->v[i], HUB_H_TYPE);
    if (type && (!ty || strcmp(ty, type))) continue;
    for (size_t j = 0; t->v[i]->value && j + n <= t->v[i]->value_len; j++)
      if (!memcmp((const char *)t->v[i]->value + j, text, n)) return t->v[i];
  }
  return NULL;
}

static size_t count_key(const struct topic_view *t, const char *key) {
  size_t k = 0;
  for (size_t i = 0; i < t->n; i++)
    k += t->v[i]->key && t->v[i]->key_len == strlen(key) && !memcmp(t->v[i]->key, key, t->v[i]->key_len);
  return k;
}

static double at_of(const struct hub_msg *m) {
  return m ? (double)m->timestamp_ms / 1000.0 : 0;
}

static const char *hdr(const struct hub_msg *m, const char *name) {
  const char *v = m ? hub_msg_header_get_str(m, name) : NULL;
  return v ? v : "?";
}

/* A field of a record's JSON value, as text ("?" when absent). */
static const char *field(const struct hub_msg *m, const char *name, char *buf, size_t size) {
  json_t *j = m && m->value ? json_loadb((const char *)m->value, m->value_len, 0, NULL) : NULL;
  json_t *v = json_object_get(j, name);
  if (json_is_string(v))
    snprintf(buf, size, "%s", json_string_value(v));
  else if (json_is_integer(v))
    snprintf(buf, size, "%lld", (long long)json_integer_value(v));
  else
    snprintf(buf, size, "?");
  json_decref(j);
  return buf;
}

static int write_secret(const char *dir, const char *name, const char *value) {
  char path[4096];
  snprintf(path, sizeof path, "%s/secrets/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fchmod(fileno(f), 0600);
  fprintf(f, "%s\n", value);
  return fclose(f);
}

/* Every topic the journeys are read back from. */
enum {
  T_EVENTS, T_REQ, T_RES, T_DLQ, T_GOT, T_SIGNED, T_VERIFIED, T_CONFIRM, T_PAYMENTS, T_RECON_IN, T_OUTCOMES,
  T_TRACKING, T_STATUS, T_REJECTED, T_N
};
static const char *const topic_names[T_N] = {
    "onestop.dossier.events", "dvcqg.sync.request", "dvcqg.sync.result", "dossier-to-dvcqg.dlq",
    "axis.document.received", "axis.document.signed", "axis.document.verified", "paygov.confirm", "payment.events",
    "recon.input", "recon.outcomes", "vnpost.tracking", "onestop.dossier.status", "paygov.callback.rejected"};

static void read_all(const struct hub_transport_ops *T, struct hub_transport *h, struct topic_view v[T_N]) {
  for (int i = 0; i < T_N; i++) v[i] = read_topic(T, h, topic_names[i]);
}

static void free_all(struct topic_view v[T_N]) {
  for (int i = 0; i < T_N; i++) view_free(&v[i]);
}

static const char *const codes[] = {"000.00.01.H22-240115-0101", "000.00.01.H22-240115-0102",
                                    "000.00.01.H22-240115-0103"};

/* Every journey has reached its last system. */
static int all_done(struct topic_view v[T_N], const char *outbox, const char *txn) {
  struct stat st;
  const struct hub_msg *o = by_text(&v[T_OUTCOMES], txn, "recon.outcome");
  return by_key(&v[T_RES], codes[0]) && by_key(&v[T_RES], codes[1]) && by_key(&v[T_DLQ], codes[2]) &&
         by_key(&v[T_VERIFIED], "cong-van-123.edxml") && stat(outbox, &st) == 0 && o &&
         hub_msg_header_get_str(o, "lt.recon.outcome") && count_key(&v[T_STATUS], codes[0]) >= 5 &&
         by_text(&v[T_REJECTED], txn, NULL);
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
  char path[4096], cfg[4096], log[4096], errbuf[512], line[600];
  int rc = HUB_EXIT_FAIL;
  pid_t hub = -1;
  struct demo_portal portal_state = {.username = portal_user, .password = portal_password};
  struct demo_vnpost post_state = {.client_id = lgsp_client, .client_secret = lgsp_secret};
  struct demo_standin portal = {.name = "national portal"}, post = {.name = "VNPost"};
  const struct hub_transport_ops *T = hub_transport_get("embedded");
  struct hub_config *hc = NULL;
  struct hub_transport *h = NULL;
  struct topic_view v[T_N];
  memset(v, 0, sizeof v);
  demo_vnpost_init(&post_state, codes[0]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (mkdir(dir, 0750) != 0 && access(dir, W_OK) != 0) {
    fprintf(stderr, "lienthong demo: cannot use folder %s\n", dir);
    return HUB_EXIT_FAIL;
  }
  const char *subdirs[] = {"keys", "secrets", "axis-inbox", "dms-outbox", "bank"};
  for (size_t i = 0; i < sizeof subdirs / sizeof *subdirs; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, subdirs[i]);
    mkdir(path, 0750);
  }
  /* Each run plays from an empty database, so what it prints is this run's. */
  const char *db[] = {"hub.db", "hub.db-wal", "hub.db-shm"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, db[i]);
    unlink(path);
  }
  snprintf(path, sizeof path, "%s/keys", dir);
  printf("lienthong demo: the hub on one machine, embedded transport, no broker (folder %s)\n", dir);
  if (make_keys(path) != 0) {
    fprintf(stderr, "lienthong demo: the openssl command could not make the demo keys (is openssl installed?)\n");
    goto out;
  }
  if (write_secret(dir, "onestop.key", demo_secret) || write_secret(dir, "dvcqg.password", portal_password) ||
      write_secret(dir, "paygov.key", paygov_key) || write_secret(dir, "lgsp.secret", lgsp_secret)) {
    fprintf(stderr, "lienthong demo: cannot write %s/secrets/\n", dir);
    goto out;
  }
  int hook_port = hub_free_port(-1), admin_port = hub_free_port(-1);
  if (hook_port < 0 || admin_port < 0 || demo_standin_start(&portal, hub_free_port(-1), demo_portal_handle, &portal_state) ||
      demo_standin_start(&post, hub_free_port(-1), demo_vnpost_handle, &post_state)) {
    fprintf(stderr, "lienthong demo: no free local port for the stand-ins\n");
    goto out;
  }
  snprintf(cfg, sizeof cfg, "%s/lienthong.yaml", dir);
  FILE *f = fopen(cfg, "w");
  if (!f) {
    fprintf(stderr, "lienthong demo: cannot write %s\n", cfg);
    goto out;
  }
  /* The blocks of examples/province.yaml, on local addresses; one partition, as the reconcile
   * route's input needs. */
  fprintf(f,
          "# Written by `lienthong demo`: a province's hub on the embedded transport (the blocks of\n"
          "# examples/province.yaml with local addresses; the stand-ins live in the demo process).\n"
          "hub:\n  transport: embedded\n  instance: demo\n  embedded: { path: hub.db, partitions: 1 }\n"
          "  admin: { listen: '127.0.0.1:%d' }\n"
          "keys:\n  hub: { key: keys/hub-key.pem, cert: keys/hub-cert.pem }\n  trust: { ca: [keys/ca.pem] }\n"
          "connectors:\n"
          "  # one-stop -> DVCQG\n"
          "  - { name: onestop-in, type: onestop, topic: onestop.dossier.events, listen: '127.0.0.1:%d',\n"
          "      path: /onestop/events, hmac_sha256_secret_file: secrets/onestop.key }\n"
          "  - { name: dvcqg, type: dvcqg, from: dvcqg.sync.request, result: dvcqg.sync.result, variant: opencps,\n"
          "      url: 'http://127.0.0.1:%d', username: %s, password_file: secrets/dvcqg.password,\n"
          "      madonvi: '%s', timeout: 10s }\n"
          "  # the document axis (folders here)\n"
          "  - { name: axis-inbox, type: file-in, topic: axis.document.received, path: axis-inbox, settle: 200ms,\n"
          "      poll_interval: 100ms }\n"
          "  - { name: dms-outbox, type: file-out, from: axis.document.verified, path: dms-outbox,\n"
          "      filename: '${key}' }\n"
          "  # payments and their reconciliation\n"
          "  - { name: paygov-callback, type: paygov-confirm, topic: paygov.confirm,\n"
          "      rejected_topic: paygov.callback.rejected, listen: '127.0.0.1:%d', path: /paygov/confirm,\n"
          "      partner: %s, key_file: secrets/paygov.key, agency: '%s', account: '%s' }\n"
          "  - name: bank-in\n    type: file-in\n    topic: recon.input\n    path: bank\n    pattern: '*.txt'\n"
          "    poll_interval: 100ms\n    settle: 200ms\n    steps:\n"
          "      - bank-statement: { layout: %s/mappings/bank/vnpay-fixed.yaml, agency: '%s', key: transaction_code }\n"
          "  # post\n"
          "  - { name: post-tracking, type: vnpost-tracking, topic: vnpost.tracking, poll_interval: 300ms,\n"
          "      variant: lgsp, url: 'http://127.0.0.1:%d/vnpost', page_size: 100,\n"
          "      oauth2: { token_url: 'http://127.0.0.1:%d/token', client_id: %s,\n"
          "                client_secret_file: secrets/lgsp.secret } }\n"
          "routes:\n"
          "  - name: dossier-to-dvcqg\n    from: onestop.dossier.events\n    to: dvcqg.sync.request\n"
          "    steps:\n      - map: %s/mappings/dvcqg/dong-bo-va-tien-do.yaml   # its input contract refuses a bad event\n"
          "  - name: sign-outgoing\n    from: axis.document.received\n    to: axis.document.signed\n"
          "    steps:\n      - sign-xml: { profile: edxml }\n"
          "  - name: verify-incoming\n    from: axis.document.signed\n    to: axis.document.verified\n"
          "    steps:\n      - verify-xml: {}\n"
          "  - name: confirm-to-event\n    from: paygov.confirm\n    to: payment.events\n"
          "    steps:\n      - map: %s/mappings/paygov/confirm-to-event.yaml\n"
          "  - name: payments-to-recon\n    from: payment.events\n    to: recon.input\n"
          "    steps:\n      - passthrough: {}\n"
          "  - name: reconcile\n    from: recon.input\n    to: recon.outcomes\n"
          "    steps:\n      - reconcile: { window: 30m, platform_key: transactionId, bank_key: transaction_code }\n"
          "  - name: tracking-to-onestop\n    from: vnpost.tracking\n    to: onestop.dossier.status\n"
          "    steps:\n      - validate: %s/schemas/vnpost/tracking-item.schema.json\n"
          "      - map: %s/mappings/vnpost/tracking-to-status.yaml\n"
          "      - validate: %s/schemas/onestop/dossier-status.schema.json\n",
          admin_port, hook_port, portal.port, portal_user, agency, hook_port, paygov_partner, agency, account, data,
          agency, post.port, post.port, lgsp_client, data, data, data, data, data);
  fclose(f);
  snprintf(log, sizeof log, "%s/hub.log", dir);
  char self[4096] = "";
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0) {
    fprintf(stderr, "lienthong demo: cannot find this program's path (/proc/self/exe)\n");
    goto out;
  }
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

  /* Play. Dossiers: two, then a malformed one. */
  char *dossier = NULL;
  size_t dossier_len = 0;
  snprintf(path, sizeof path, "%s/examples/demo/dossier.json", data);
  if (hub_file_read(path, 1 << 20, &dossier, &dossier_len, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "lienthong demo: %s\n", errbuf);
    goto out;
  }
  json_t *doc = json_loadb(dossier, dossier_len, 0, NULL);
  free(dossier);
  char ids[3][64] = {"", "", ""};
  double t_sent[3] = {0};
  for (int i = 0; i < 3; i++) {
    char *body;
    if (i < 2) {
      json_object_set_new(doc, "dossierCode", json_string(codes[i]));
      if (i == 1) /* the second also records its first processing step: CapNhatTienDoHoSoMC follows */
        json_object_set_new(doc, "step",
                            json_pack("{s:s, s:{s:s, s:s, s:s}, s:s, s:s}", "status", "received", "handler", "name",
                                      "Trần Thị B", "title", "Cán bộ một cửa", "department", "Bộ phận Một cửa",
                                      "note", "Tiếp nhận hồ sơ", "changedAt", "2024-01-15T08:30:00+07:00"));
      body = json_dumps(doc, JSON_COMPACT);
    } else {
      snprintf(line, sizeof line, "{\"event\":\"dossier.submitted\",\"dossierCode\":\"%s\"}", codes[2]);
      body = strdup(line);
    }
    struct demo_reply a;
    t_sent[i] = demo_now();
    long code = body ? post_dossier(hook_port, body, strlen(body), &a) : 0;
    json_t *ans = code == 202 ? json_loads(a.buf, 0, NULL) : NULL;
    snprintf(ids[i], sizeof ids[i], "%s", ans && json_string_value(json_object_get(ans, "id")) ?
                                              json_string_value(json_object_get(ans, "id")) : "");
    json_decref(ans);
    free(body);
  }
  json_decref(doc);
  /* The document. */
  double t_doc = demo_now();
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
  /* The fee of dossier 0101: the platform confirms, the bank's statement follows. A transaction
   * code of this run's own (the switch's are unique). */
  const long fee = 50000;
  char txn[24], ref[24], paid_at[15], maloi[64], url[128], stmt[64];
  snprintf(txn, sizeof txn, "GD%010lx", (unsigned long)time(NULL));
  snprintf(ref, sizeof ref, "HS0101-LP01");
  snprintf(url, sizeof url, "http://127.0.0.1:%d/paygov/confirm", hook_port);
  double t_pay = demo_now();
  long pay_status = demo_pay_confirm(url, paygov_partner, paygov_key, ref, txn, fee, codes[0], 0, paid_at, maloi,
                                     sizeof maloi);
  /* ... and a forged copy of it: the same callback with ten times the amount. */
  char forged_at[15], forged_maloi[64];
  double t_forged = demo_now();
  long forged_status = demo_pay_confirm(url, paygov_partner, paygov_key, ref, txn, fee, codes[0], 1, forged_at,
                                        forged_maloi, sizeof forged_maloi);
  double t_stmt = demo_now();
  time_t now = time(NULL) + 7 * 3600;
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(stmt, sizeof stmt, "statement-%Y-%m-%d.txt", &tm);
  snprintf(path, sizeof path, "%s/bank", dir);
  int stmt_ok = demo_bank_statement(path, stmt, account, txn, ref, fee) == 0;
  /* The result of dossier 0101 goes back by post: VNPost's entries appear. */
  double t_post = demo_now();
  pthread_mutex_lock(&post.mu);
  post_state.released = 1;
  pthread_mutex_unlock(&post.mu);

  /* Read the topics back (another process on the same database file, as `dlq list` does) until
   * every journey has reached its end, or 40 s. */
  if (!T || hub_config_load(cfg, &hc, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "lienthong demo: cannot read back %s: %s\n", cfg, T ? errbuf : "no embedded transport");
    goto out;
  }
  struct hub_transport_opts o = {"lienthong-demo", NULL, NULL, NULL, hc->base_dir};
  if (T->open(hc->transport_cfg, &o, &h, errbuf, sizeof errbuf) != HUB_OK) {
    fprintf(stderr, "lienthong demo: %s\n", errbuf);
    goto out;
  }
  char outbox[4096];
  snprintf(outbox, sizeof outbox, "%s/dms-outbox/cong-van-123.edxml", dir);
  for (int i = 0; i < 200; i++) {
    read_all(T, h, v);
    if (all_done(v, outbox, txn)) break;
    free_all(v);
    usleep(200000);
  }
  if (!v[0].v) read_all(T, h, v);

  int complete = 1;
  char what[256], b1[64], b2[64];
  for (int i = 0; i < 2; i++) {
    printf("Journey %d: dossier %s, one-stop -> national portal (DVCQG)\n", i + 1, codes[i]);
    const struct hub_msg *a = by_header(&v[T_EVENTS], HUB_H_ID, ids[i]);
    const struct hub_msg *b = a ? by_key(&v[T_REQ], codes[i]) : NULL;
    const struct hub_msg *c = b ? by_key(&v[T_RES], codes[i]) : NULL;
    snprintf(line, sizeof line, "POST /onestop/events (HMAC-SHA256 signed) -> 202, id %s", *ids[i] ? ids[i] : "(none)");
    step(t_sent[i], t_sent[i], "one-stop system", line);
    step(t_sent[i], at_of(a), "hub: onestop-in", "signature ok, committed to onestop.dossier.events");
    snprintf(line, sizeof line, "event contract ok, mapped to DongBoHoSoMC%s (lt.parent %.12s...)",
             i == 1 ? " + CapNhatTienDoHoSoMC" : "", hdr(b, HUB_H_PARENT));
    step(t_sent[i], at_of(b), "hub: dossier-to-dvcqg", line);
    double at;
    if (i == 0 && (at = demo_standin_find(&portal, "login ", what, sizeof what)) > 0)
      step(t_sent[i], at, "national portal", what);
    snprintf(line, sizeof line, "TraCuuHoSo %s", codes[i]);
    double looked = demo_standin_find(&portal, line, what, sizeof what);
    step(t_sent[i], looked, "national portal", looked > 0 ? what : "no TraCuuHoSo received");
    snprintf(line, sizeof line, "DongBoHoSoMC %s", codes[i]);
    double synced = demo_standin_find(&portal, line, what, sizeof what);
    step(t_sent[i], synced, "national portal", synced > 0 ? what : "no DongBoHoSoMC received");
    int created = synced > 0 && strstr(what, ": created") != NULL;
    double progressed = 1;
    if (i == 1) {
      snprintf(line, sizeof line, "CapNhatTienDoHoSoMC %s", codes[i]);
      progressed = demo_standin_find(&portal, line, what, sizeof what);
      step(t_sent[i], progressed, "national portal", progressed > 0 ? what : "no CapNhatTienDoHoSoMC received");
      progressed = progressed > 0 && strstr(what, "refused") == NULL;
    }
    step(t_sent[i], at_of(c), "hub: dvcqg (result)", c ? "the portal's answers recorded on dvcqg.sync.result"
                                                        : "no result yet");
    complete &= a && b && looked > 0 && created && progressed > 0 && c;
    printf("\n");
  }
  printf("Journey 3: a malformed dossier event (no procedure, applicant, dates...)\n");
  const struct hub_msg *bad = by_header(&v[T_EVENTS], HUB_H_ID, ids[2]);
  const struct hub_msg *dead = by_key(&v[T_DLQ], codes[2]);
  snprintf(line, sizeof line, "POST /onestop/events -> %s (well-formed JSON, signed)", *ids[2] ? "202" : "refused");
  step(t_sent[2], t_sent[2], "one-stop system", line);
  step(t_sent[2], at_of(bad), "hub: onestop-in", "signature ok, committed");
  const char *why = hdr(dead, HUB_H_ERROR_REASON), *said = strstr(why, "input does not satisfy");
  snprintf(line, sizeof line, "refused by the event contract, to dossier-to-dvcqg.dlq: %.160s", said ? said : why);
  step(t_sent[2], at_of(dead), "hub: dossier-to-dvcqg", line);
  snprintf(line, sizeof line, "TraCuuHoSo %s", codes[2]);
  int leaked = demo_standin_count(&portal, line);
  snprintf(line, sizeof line, "DongBoHoSoMC %s", codes[2]);
  leaked += demo_standin_count(&portal, line);
  printf("  %9s  %-24s %s\n", "", "national portal", leaked ? "RECEIVED IT (it should not have)" : "received nothing");
  complete &= bad && dead && !leaked;

  printf("\nJourney 4: edXML document cong-van-123.edxml over the document axis\n");
  const struct hub_msg *d1 = by_key(&v[T_GOT], "cong-van-123.edxml"), *d2 = by_key(&v[T_SIGNED], "cong-van-123.edxml"),
                       *d3 = by_key(&v[T_VERIFIED], "cong-van-123.edxml");
  struct stat st;
  double written = stat(outbox, &st) == 0 ? (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9 : 0;
  step(t_doc, t_doc, "agency", "dropped into axis-inbox/");
  step(t_doc, at_of(d1), "hub: file-in", "committed, moved to axis-inbox/done/");
  snprintf(line, sizeof line, "XML-DSig: lt.sig=%s, signer %.120s", hdr(d2, HUB_H_SIG), hdr(d2, HUB_H_SIGNER));
  step(t_doc, at_of(d2), "hub: sign-outgoing", line);
  snprintf(line, sizeof line, "checked against the province CA: lt.sig=%s", hdr(d3, HUB_H_SIG));
  step(t_doc, at_of(d3), "hub: verify-incoming", line);
  step(t_doc, written, "document management", "dms-outbox/cong-van-123.edxml written (atomically)");
  complete &= d1 && d2 && d3 && written > 0;

  printf("\nJourney 5: the fee of dossier %s, paid and reconciled (transaction %s)\n", codes[0], txn);
  const struct hub_msg *p1 = by_text(&v[T_CONFIRM], txn, NULL), *p2 = by_text(&v[T_PAYMENTS], txn, NULL);
  const struct hub_msg *p3 = by_text(&v[T_RECON_IN], txn, "paygov.confirm"),
                       *bl = by_text(&v[T_RECON_IN], txn, "bank.statement.line"),
                       *out5 = by_text(&v[T_OUTCOMES], txn, "recon.outcome");
  snprintf(line, sizeof line, "POST /paygov/confirm %s %ld VND, MaXacThuc sha256 -> HTTP %ld, MaLoi %s", ref, fee,
           pay_status, maloi);
  step(t_pay, t_pay, "payment platform", line);
  snprintf(line, sizeof line, "MaXacThuc checked: lt.sig=%s, committed to paygov.confirm", hdr(p1, HUB_H_SIG));
  step(t_pay, at_of(p1), "hub: paygov-callback", line);
  char b3[64];
  snprintf(line, sizeof line, "%s on payment.events, amount %s, paid %s (ThoiGianGD %s)",
           field(p2, "event", b1, sizeof b1), field(p2, "amount", b2, sizeof b2), field(p2, "paidAt", b3, sizeof b3),
           paid_at);
  step(t_pay, at_of(p2), "hub: confirm-to-event", line);
  step(t_pay, at_of(p3), "hub: payments-to-recon", "the payment on recon.input");
  const struct hub_msg *forged = by_text(&v[T_REJECTED], txn, NULL);
  snprintf(line, sizeof line, "a forged copy (SoTien x10 after signing) -> HTTP %ld, MaLoi %s", forged_status,
           forged_maloi);
  step(t_pay, t_forged, "someone else", line);
  snprintf(line, sizeof line, "MaXacThuc wrong: kept on paygov.callback.rejected, never paid: %.120s",
           hdr(forged, HUB_H_ERROR_REASON));
  step(t_pay, at_of(forged), "hub: paygov-callback", line);
  snprintf(line, sizeof line, "%s dropped into bank/ (one line, footer count 1)", stmt);
  step(t_pay, stmt_ok ? t_stmt : 0, "bank", line);
  snprintf(line, sizeof line, "bank-in + bank-statement: line %s, amount %s, on recon.input", hdr(bl, HUB_H_TYPE),
           field(bl, "amount", b1, sizeof b1));
  step(t_pay, at_of(bl), "hub: bank-in", line);
  snprintf(line, sizeof line, "outcome %s on recon.outcomes", hdr(out5, "lt.recon.outcome"));
  step(t_pay, at_of(out5), "hub: reconcile", line);
  complete &= pay_status == 200 && !strcmp(maloi, "00") && p1 && p2 && p3 && bl && out5 && forged &&
              strcmp(forged_maloi, "00") && v[T_CONFIRM].n == 1 &&
              !strcmp(hdr(out5, "lt.recon.outcome"), "matched");

  printf("\nJourney 6: the result of dossier %s returned to the citizen by post\n", codes[0]);
  double tok = demo_standin_find(&post, "token issued", what, sizeof what);
  double t6 = tok > 0 && tok < t_post ? tok : t_post; /* the source polls from the hub's start */
  if (tok > 0 && tok < t_post) step(t6, tok, "VNPost (LGSP)", "OAuth2 token issued to the hub (client credentials)");
  step(t6, t_post, "VNPost", "the parcel moves: accepted (1) ... delivered (14)");
  if (tok >= t_post) step(t6, tok, "VNPost (LGSP)", "OAuth2 token issued to the hub (client credentials)");
  if (tok <= 0) step(t6, 0, "VNPost (LGSP)", "no token asked for");
  double served = demo_standin_find(&post, "orderTracking", what, sizeof what);
  step(t6, served, "VNPost (LGSP)", served > 0 ? what : "no tracking call");
  size_t entries = count_key(&v[T_TRACKING], codes[0]), events = count_key(&v[T_STATUS], codes[0]);
  const struct hub_msg *last_entry = entries ? v[T_TRACKING].v[v[T_TRACKING].n - 1] : NULL;
  const struct hub_msg *last_event = NULL;
  for (size_t i = 0; i < v[T_STATUS].n; i++) last_event = v[T_STATUS].v[i];
  snprintf(line, sizeof line, "%zu tracking entries committed to vnpost.tracking with the lastId cursor", entries);
  step(t6, at_of(last_entry), "hub: post-tracking", line);
  snprintf(line, sizeof line, "%zu dossier events on onestop.dossier.status; the last: status %s, note %s", events,
           field(last_event, "status", b1, sizeof b1), field(last_event, "note", b2, sizeof b2));
  step(t6, at_of(last_event), "hub: tracking-to-onestop", line);
  complete &= tok > 0 && served > 0 && entries == 5 && events == 5 && !strcmp(b1, "returned");

  printf("\nWhere to look next:\n"
         "  curl -s http://127.0.0.1:%d/metrics      counters, lag, latency, connector health%s\n"
         "  lienthong dlq list %s dossier-to-dvcqg   the refused dossier, with its reason\n"
         "  lienthong recon report %s reconcile --out reports/   the day's reconciliation\n"
         "  %s                   the configuration: connectors, routes, keys\n"
         "  %s                          the hub's log (JSON lines)\n",
         admin_port, keep_running ? "" : " (while it runs: --keep-running)", cfg, cfg, cfg, log);
  if (!complete) fprintf(stderr, "lienthong demo: a journey did not complete; see %s\n", log);
  rc = complete ? HUB_EXIT_OK : HUB_EXIT_FAIL;
  if (keep_running && complete) {
    printf("\nThe hub keeps running (pid %d); stop it with: kill %d\n", (int)hub, (int)hub);
    hub = -1;
  }
out:
  free_all(v);
  if (h) T->close(h);
  hub_config_destroy(hc);
  if (hub > 0) {
    kill(hub, SIGTERM);
    waitpid(hub, NULL, 0);
  }
  demo_standin_stop(&portal);
  demo_standin_stop(&post);
  curl_global_cleanup();
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "demo",
    .summary = "play a province's journeys through a hub on this machine (no broker)",
    .usage = "Usage: lienthong demo [--dir DIR] [--keep-running]\n\n"
             "Writes a province configuration on the embedded transport into DIR (default ./lienthong-demo;\n"
             "its database is emptied first), makes a throw-away PKI with the openssl command, starts\n"
             "stand-ins for the national portal (DVCQG) and VNPost in this process and `lienthong run`,\n"
             "then plays through the real connectors: two one-stop dossier events through the onestop\n"
             "source, the event contract and the dvcqg sink (login, TraCuuHoSo, DongBoHoSoMC); a malformed\n"
             "one into the dead-letter queue; an edXML document from a folder, signed, verified and\n"
             "written to the document-management folder; a fee paid (a signed PayGov confirm callback)\n"
             "and reconciled against the bank's statement file; a postal return, VNPost's tracking\n"
             "entries turned into one-stop dossier events. Prints each journey system by system with\n"
             "times and signature status, and where to look next.\n\n"
             "Options:\n"
             "  --dir DIR         where the configuration, keys, secrets, database and folders go\n"
             "  --keep-running    leave the hub running afterwards (the stand-ins stop)\n\n"
             "Exit codes: 0 every journey completed, 1 one did not (see the hub's log), 2 usage error.",
    .main = demo_main,
};
HUB_CMD_PLUGIN(hub_plugin_cmd_demo, cmd);
