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
 *   resync_target serve PORT_FILE DELAY_US --dvcqg
 *       speaks the DVCQG OpenCPS API (vn-standards.md §3.1) the way tests/sim/dvcqg_sim.py does,
 *       fast: POST /api/auth {username "bench", password "bench-pw"} -> {session}; POST
 *       /api/integration {session, madonvi, service} with TraCuuHoSo {mahoso} -> result [] or
 *       [{MaHoSo, TrangThaiHoSo}], DongBoHoSoMC {isUpdating "True"|"False", data [dossier]}
 *       (create once: a create of an existing dossier is -3 "đã tồn tại", an update of a missing
 *       one 2 "không tồn tại"), CapNhatTienDoHoSoMC {data [<= 10 entries]}. Checked as the
 *       simulator checks them: Content-Type, the session, madonvi, service, isUpdating, required
 *       dossier fields as non-empty strings, MaHoSo (Circular 01/2018 Art. 19), TrangThaiHoSo
 *       1..10, LoaiDoiTuong 1..4, times yyyyMMddHHmmss; a refusal is -2 naming the field.
 *       Counts per dossier its creates and updates. GET /_stats -> {"requests","logins",
 *       "lookups","creates","updates","synced" (creates + updates accepted),"progress",
 *       "exists","missing","rejected","session_refused","p50_us","p99_us","first","last"};
 *       GET /_dossiers -> {"dossiers","created_once","created_twice","upd_min","upd_max",
 *       "last_error"}; GET /_reset as above.
 *   resync_target load-dvcqg URL N CONCURRENCY FRESH DOSSIER_FILE
 *       the same call sequence as the dvcqg sink for N dossiers (login once, then per dossier
 *       TraCuuHoSo and DongBoHoSoMC with isUpdating from the answer), CONCURRENCY dossiers in
 *       flight, FRESH 1: a new connection per call (the sink's default, reuse_connections:
 *       false). DOSSIER_FILE holds the dossier JSON with @CODE@ where its MaHoSo goes. Prints
 *       {"rate" (dossiers/s),"p50_ms","p99_ms" (per call),"calls","failed"}.
 * libmicrohttpd, libcurl and jansson only (all build dependencies of the hub). */
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
  int creates, updates, exists; /* --dvcqg: per dossier */
  char state[4];                /* --dvcqg: its TrangThaiHoSo */
};
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot *slots;
static int table_full;
static unsigned long long requests, distinct, duplicates, out_of_order;
static double first_at, last_at;
static unsigned hist[64]; /* handler time, log2 microseconds */
static long delay_us;
static int dvcqg_mode;

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

/* ------------------------------------------------------------------ serve --dvcqg */

#define SESSIONS 16 /* the last sessions issued stay valid */
static char sessions[SESSIONS][33];
static unsigned next_session;
static unsigned long long d_logins, d_lookups, d_creates, d_updates, d_progress, d_exists, d_missing, d_rejected,
    d_session_refused;
static char d_last_error[400];
static const char SESSION_MSG[] = "Phiên làm việc không hợp lệ hoặc đã hết hạn";

struct dbody {
  size_t n;
  int over;
  double t0;
  char buf[16384];
};

static int digits(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

/* madonvi: 000.00.01.H22 (dvcqg_sim.py ORG_RE). */
static int org_at(const char *s) { /* the 13 characters at s */
  return digits(s, 3) && s[3] == '.' && digits(s + 4, 2) && s[6] == '.' && digits(s + 7, 2) && s[9] == '.' &&
         s[10] >= 'A' && s[10] <= 'Z' && digits(s + 11, 2);
}
static int org_ok(const char *s) {
  return s && strlen(s) == 13 && org_at(s);
}

/* MaHoSo: ORG-yyMMdd-NNNN[N] (Circular 01/2018 Art. 19, dvcqg_sim.py CODE_RE). */
static int code_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if ((n != 25 && n != 26) || !org_at(s) || s[13] != '-' || !digits(s + 14, 6) || s[20] != '-' ||
      !digits(s + 21, n - 21))
    return 0;
  int mm = (s[16] - '0') * 10 + s[17] - '0', dd = (s[18] - '0') * 10 + s[19] - '0';
  return mm >= 1 && mm <= 12 && dd >= 1 && dd <= 31;
}

/* MaTTHC: 2.000889.000.00.00.H22[.NN] (dvcqg_sim.py TTHC_RE). */
static int tthc_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  return (n == 22 || (n == 25 && s[22] == '.' && digits(s + 23, 2))) && digits(s, 1) && s[1] == '.' &&
         digits(s + 2, 6) && s[8] == '.' && digits(s + 9, 3) && s[12] == '.' && digits(s + 13, 2) && s[15] == '.' &&
         digits(s + 16, 2) && s[18] == '.' && s[19] >= 'A' && s[19] <= 'Z' && digits(s + 20, 2);
}

static int time_ok(const char *s) {
  if (!s || strlen(s) != 14 || !digits(s, 14)) return 0;
  int mo = (s[4] - '0') * 10 + s[5] - '0', d = (s[6] - '0') * 10 + s[7] - '0', h = (s[8] - '0') * 10 + s[9] - '0',
      mi = (s[10] - '0') * 10 + s[11] - '0', se = (s[12] - '0') * 10 + s[13] - '0';
  return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && se < 60;
}

static const char *str_of(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A dossier as dvcqg_sim.check_dossier sees it; NULL when fine, else the refusal (into why). */
static const char *check_dossier(json_t *d, char *why, size_t n) {
  static const char *const required[] = {"MaHoSo",       "MaTTHC",        "TenTTHC",  "ChuHoSo",  "LoaiDoiTuong",
                                         "NgayTiepNhan", "NgayHenTra",    "TrangThaiHoSo", "DonViXuLy", NULL};
  static const char *const times[] = {"NgayNopHoSo", "NgayTiepNhan", "NgayHenTra", "NgayTuChoi", "NgayKetThucXuLy",
                                      "NgayTra",     NULL};
  if (!json_is_object(d)) return snprintf(why, n, "data[]: mỗi hồ sơ là một đối tượng"), why;
  for (int i = 0; required[i]; i++) {
    const char *v = str_of(d, required[i]);
    if (!v || !*v) return snprintf(why, n, "%s: thiếu trường bắt buộc", required[i]), why;
  }
  const char *k;
  json_t *v;
  json_object_foreach(d, k, v) {
    if (!json_is_string(v) && !json_is_array(v)) return snprintf(why, n, "%s: giá trị phải là chuỗi", k), why;
  }
  if (!code_ok(str_of(d, "MaHoSo")))
    return snprintf(why, n, "MaHoSo: '%.60s' không đúng quy định tại Điều 19 Thông tư 01/2018/TT-VPCP",
                    str_of(d, "MaHoSo")),
           why;
  if (!tthc_ok(str_of(d, "MaTTHC")))
    return snprintf(why, n, "MaTTHC: thủ tục '%.40s' không có trong CSDL TTHC quốc gia", str_of(d, "MaTTHC")), why;
  for (int i = 0; times[i]; i++)
    if (json_object_get(d, times[i]) && !time_ok(str_of(d, times[i])))
      return snprintf(why, n, "%s: không đúng định dạng yyyyMMddHHmmss", times[i]), why;
  const char *st = str_of(d, "TrangThaiHoSo"), *lo = str_of(d, "LoaiDoiTuong");
  long stn = strtol(st, NULL, 10);
  if (!digits(st, strlen(st)) || stn < 1 || stn > 10)
    return snprintf(why, n, "TrangThaiHoSo: '%.10s' không thuộc danh mục", st), why;
  if (strlen(lo) != 1 || lo[0] < '1' || lo[0] > '4')
    return snprintf(why, n, "LoaiDoiTuong: '%.10s' không thuộc danh mục", lo), why;
  const char *kenh = json_object_get(d, "KenhThucHien") ? str_of(d, "KenhThucHien") : "1",
             *hinh = json_object_get(d, "HinhThuc") ? str_of(d, "HinhThuc") : "0";
  if (!kenh || strlen(kenh) != 1 || kenh[0] < '1' || kenh[0] > '3')
    return snprintf(why, n, "KenhThucHien: '%.10s' không thuộc danh mục", kenh ? kenh : ""), why;
  if (!hinh || (strcmp(hinh, "0") && strcmp(hinh, "1")))
    return snprintf(why, n, "HinhThuc: '%.10s' không thuộc danh mục", hinh ? hinh : ""), why;
  json_t *ids = json_object_get(d, "DinhDanhCHS"), *x;
  size_t i;
  json_array_foreach(ids, i, x) { /* LoaiDinhDanh 1: a 12-digit citizen id, 2: a 9-digit one */
    const char *kind = str_of(x, "LoaiDinhDanh"), *num = str_of(x, "SoDinhDanh");
    size_t nl = num ? strlen(num) : 0;
    if (!kind || !num || !digits(num, nl) || !((!strcmp(kind, "1") && nl == 12) || (!strcmp(kind, "2") && nl == 9)))
      return snprintf(why, n, "DinhDanhCHS[%zu]: LoaiDinhDanh '%.4s' không khớp số định danh '%.20s'", i,
                      kind ? kind : "", num ? num : ""),
             why;
  }
  return NULL;
}

/* The slot of a known dossier (under mu), or NULL. */
static struct slot *find_slot(const char *k) {
  size_t n = strlen(k);
  if (n >= KEY_MAX) return NULL;
  unsigned h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 16777619u;
  for (unsigned probe = 0; probe < KEYS; probe++) {
    struct slot *sl = &slots[(h + probe) % KEYS];
    if (!sl->used) return NULL;
    if (!strcmp(sl->key, k)) return sl;
  }
  return NULL;
}

/* One call (under mu): the answer (owned) for service on body. */
static json_t *dvcqg_service(json_t *body) {
  char why[400];
  const char *service = str_of(body, "service"), *sess = str_of(body, "session");
  int valid = 0;
  for (int i = 0; sess && i < SESSIONS && !valid; i++)
    valid = sessions[i][0] && !strcmp(sessions[i], sess);
  if (!valid) {
    d_session_refused++;
    return json_pack("{s:s, s:s}", "error_code", "-1", "message", SESSION_MSG);
  }
  if (!org_ok(str_of(body, "madonvi"))) {
    snprintf(why, sizeof why, "madonvi: '%.40s' không hợp lệ", str_of(body, "madonvi") ? str_of(body, "madonvi") : "");
    goto refuse;
  }
  if (service && !strcmp(service, "TraCuuHoSo")) {
    const char *code = str_of(body, "mahoso");
    struct slot *sl = code ? find_slot(code) : NULL;
    d_lookups++;
    if (!sl || !sl->exists)
      return json_pack("{s:s, s:s, s:[]}", "error_code", "0", "message", "Không tìm thấy hồ sơ", "result");
    return json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "error_code", "0", "message", "Thành công", "result", "MaHoSo",
                     code, "TrangThaiHoSo", sl->state);
  }
  if (service && !strcmp(service, "DongBoHoSoMC")) {
    const char *upd = str_of(body, "isUpdating");
    json_t *data = json_object_get(body, "data"), *d;
    size_t i;
    if (!upd || (strcmp(upd, "True") && strcmp(upd, "False"))) {
      snprintf(why, sizeof why, "isUpdating: phải là True hoặc False");
      goto refuse;
    }
    if (!json_is_array(data) || !json_array_size(data)) {
      snprintf(why, sizeof why, "data: cần danh sách hồ sơ");
      goto refuse;
    }
    json_array_foreach(data, i, d) {
      if (check_dossier(d, why, sizeof why)) goto refuse;
    }
    int updating = !strcmp(upd, "True");
    json_array_foreach(data, i, d) { /* all checked first: a refused call changes nothing */
      const char *code = str_of(d, "MaHoSo");
      struct slot *sl = find_slot(code);
      if (!updating && sl && sl->exists) {
        d_exists++;
        snprintf(why, sizeof why, "Hồ sơ %s đã tồn tại", code);
        return json_pack("{s:s, s:s}", "error_code", "-3", "message", why);
      }
      if (updating && (!sl || !sl->exists)) {
        d_missing++;
        snprintf(why, sizeof why, "Hồ sơ %s không tồn tại", code);
        return json_pack("{s:s, s:s}", "error_code", "2", "message", why);
      }
    }
    json_array_foreach(data, i, d) {
      const char *code = str_of(d, "MaHoSo");
      struct slot *sl = slot_of(code, strlen(code));
      if (!sl) {
        snprintf(why, sizeof why, "MaHoSo: bảng hồ sơ của máy chủ thử đã đầy");
        goto refuse;
      }
      sl->exists = 1;
      snprintf(sl->state, sizeof sl->state, "%s", str_of(d, "TrangThaiHoSo"));
      if (updating)
        sl->updates++, d_updates++;
      else
        sl->creates++, d_creates++;
    }
    if (!first_at) first_at = now_s();
    last_at = now_s();
    return json_pack("{s:s, s:s}", "error_code", "0", "message", "Đồng bộ thành công");
  }
  if (service && !strcmp(service, "CapNhatTienDoHoSoMC")) {
    json_t *data = json_object_get(body, "data"), *e;
    size_t i;
    if (!json_is_array(data) || !json_array_size(data) || json_array_size(data) > 10) {
      snprintf(why, sizeof why, "data: từ 1 đến 10 quá trình xử lý mỗi lần, nhận %zu", json_array_size(data));
      goto refuse;
    }
    json_array_foreach(data, i, e) {
      const char *code = str_of(e, "MaHoSo"), *who = str_of(e, "NguoiXuLy");
      if (!code || !who || !*who || !time_ok(str_of(e, "ThoiDiemXuLy")) || !str_of(e, "TrangThai")) {
        snprintf(why, sizeof why, "data[%zu]: thiếu MaHoSo, NguoiXuLy, ThoiDiemXuLy hoặc TrangThai", i);
        goto refuse;
      }
      struct slot *sl = find_slot(code);
      if (!sl || !sl->exists) {
        d_missing++;
        snprintf(why, sizeof why, "Hồ sơ %s không tồn tại", code);
        return json_pack("{s:s, s:s}", "error_code", "2", "message", why);
      }
    }
    d_progress += json_array_size(data);
    return json_pack("{s:s, s:s}", "error_code", "0", "message", "Cập nhật tiến độ thành công");
  }
  snprintf(why, sizeof why, "service '%.40s' không được hỗ trợ", service ? service : "");
refuse:
  d_rejected++;
  snprintf(d_last_error, sizeof d_last_error, "%s", why);
  return json_pack("{s:s, s:s}", "error_code", "-2", "message", why);
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *j) {
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!text) return MHD_NO;
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result dvcqg_request(struct MHD_Connection *conn, const char *url, const char *method,
                                     const char *data, size_t *size, void **ctx) {
  if (!strcmp(method, "GET")) {
    char out[1024];
    pthread_mutex_lock(&mu);
    if (!strcmp(url, "/_stats")) {
      snprintf(out, sizeof out,
               "{\"requests\":%llu,\"logins\":%llu,\"lookups\":%llu,\"creates\":%llu,\"updates\":%llu,"
               "\"synced\":%llu,\"progress\":%llu,\"exists\":%llu,\"missing\":%llu,\"rejected\":%llu,"
               "\"session_refused\":%llu,\"p50_us\":%.0f,\"p99_us\":%.0f,\"first\":%.6f,\"last\":%.6f}",
               requests, d_logins, d_lookups, d_creates, d_updates, d_creates + d_updates, d_progress, d_exists,
               d_missing, d_rejected, d_session_refused, hist_pct(0.5), hist_pct(0.99), first_at, last_at);
    } else if (!strcmp(url, "/_dossiers")) { /* a scan of the table: at the end of a run only */
      unsigned long long n = 0, once = 0, twice = 0;
      int umin = -1, umax = -1;
      for (unsigned i = 0; i < KEYS; i++) {
        const struct slot *sl = &slots[i];
        if (!sl->used) continue;
        n++;
        once += sl->creates == 1;
        twice += sl->creates > 1;
        if (umin < 0 || sl->updates < umin) umin = sl->updates;
        if (sl->updates > umax) umax = sl->updates;
      }
      json_t *err = json_string(d_last_error);
      char *e = json_dumps(err, JSON_ENCODE_ANY);
      json_decref(err);
      snprintf(out, sizeof out,
               "{\"dossiers\":%llu,\"created_once\":%llu,\"created_twice\":%llu,\"upd_min\":%d,\"upd_max\":%d,"
               "\"table_full\":%d,\"last_error\":%s}",
               n, once, twice, umin, umax, table_full, e ? e : "\"\"");
      free(e);
    } else if (!strcmp(url, "/_reset")) {
      memset(slots, 0, (size_t)KEYS * sizeof *slots);
      table_full = 0;
      requests = d_logins = d_lookups = d_creates = d_updates = d_progress = d_exists = d_missing = d_rejected =
          d_session_refused = 0;
      d_last_error[0] = '\0';
      first_at = last_at = 0;
      memset(hist, 0, sizeof hist);
      snprintf(out, sizeof out, "{}");
    } else {
      pthread_mutex_unlock(&mu);
      return send_text(conn, 404, "{\"error_code\":\"404\",\"message\":\"not found\"}");
    }
    pthread_mutex_unlock(&mu);
    return send_text(conn, 200, out);
  }
  struct dbody *b = *ctx;
  if (!b) {
    if (!(b = malloc(sizeof *b))) return MHD_NO;
    b->n = 0, b->over = 0, b->t0 = now_s();
    *ctx = b;
    return MHD_YES;
  }
  if (*size) {
    if (b->n + *size > sizeof b->buf) b->over = 1;
    else memcpy(b->buf + b->n, data, *size), b->n += *size;
    *size = 0;
    return MHD_YES;
  }
  int is_auth = !strcmp(url, "/api/auth");
  if (strcmp(method, "POST") || (!is_auth && strcmp(url, "/api/integration")))
    return send_text(conn, 404, "{\"error_code\":\"404\",\"message\":\"not found\"}");
  const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
  if (!ct || strncmp(ct, "application/json", 16))
    return send_text(conn, 415, "{\"error_code\":\"415\",\"message\":\"Content-Type phải là application/json\"}");
  if (b->over) return send_text(conn, 413, "{\"error_code\":\"413\",\"message\":\"Yêu cầu quá lớn\"}");
  json_t *body = json_loadb(b->buf, b->n, JSON_REJECT_DUPLICATES, NULL), *answer;
  if (delay_us > 0) usleep((useconds_t)delay_us);
  pthread_mutex_lock(&mu);
  requests++;
  if (!json_is_object(body)) {
    d_rejected++;
    answer = json_pack("{s:s, s:s}", "error_code", "-2", "message", "Yêu cầu không phải JSON");
  } else if (is_auth) {
    const char *u = str_of(body, "username"), *pw = str_of(body, "password");
    if (!u || !pw || strcmp(u, "bench") || strcmp(pw, "bench-pw")) {
      answer = json_pack("{s:s, s:s}", "error_code", "-4", "message", "Sai tên đăng nhập hoặc mật khẩu");
    } else {
      char *sess = sessions[next_session++ % SESSIONS];
      for (int i = 0; i < 32; i++) sess[i] = "0123456789abcdef"[(unsigned)rand() % 16];
      sess[32] = '\0';
      d_logins++;
      if (!first_at) first_at = now_s();
      answer = json_pack("{s:s, s:i, s:s}", "session", sess, "error_code", 0, "message", "Đăng nhập thành công");
    }
  } else {
    answer = dvcqg_service(body);
  }
  double us = (now_s() - b->t0) * 1e6;
  int bucket = 0;
  while (bucket < 63 && (double)(1ull << bucket) < us) bucket++;
  hist[bucket]++;
  pthread_mutex_unlock(&mu);
  json_decref(body);
  return send_json(conn, 200, answer);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **ctx) {
  (void)cls, (void)version;
  if (dvcqg_mode) return dvcqg_request(conn, url, method, data, size, ctx);
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

static int serve(const char *port_file, long delay, int dvcqg) {
  delay_us = delay;
  dvcqg_mode = dvcqg;
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

/* ------------------------------------------------------------------ load-dvcqg */

struct dcall {
  CURL *h;
  long dossier; /* its index */
  int stage;    /* 0: TraCuuHoSo, 1: DongBoHoSoMC */
  char *body;
  size_t cap;
  char resp[4096];
  size_t rn;
  double t0;
};

static size_t keep_cb(char *p, size_t s, size_t n, void *u) {
  struct dcall *c = u;
  size_t take = s * n < sizeof c->resp - 1 - c->rn ? s * n : sizeof c->resp - 1 - c->rn;
  memcpy(c->resp + c->rn, p, take);
  c->rn += take;
  c->resp[c->rn] = '\0';
  return s * n;
}

/* The dossier code of index i: the bench's own pattern, another unit so it cannot meet them. */
static void code_of(long i, char *out, size_t n) {
  snprintf(out, n, "000.00.02.H22-2401%02lu-%05lu", 1 + (unsigned long)i / 50000 % 28, (unsigned long)i % 50000);
}

/* Writes the call for c's dossier and stage into c->body. */
static int dvcqg_body(struct dcall *c, const char *session, const char *dossier_tmpl, int exists) {
  char code[64];
  code_of(c->dossier, code, sizeof code);
  size_t need = strlen(dossier_tmpl) + 512;
  if (need > c->cap) {
    char *nb = realloc(c->body, need);
    if (!nb) return -1;
    c->body = nb, c->cap = need;
  }
  if (c->stage == 0) {
    snprintf(c->body, c->cap,
             "{\"madonvi\":\"000.00.01.H22\",\"service\":\"TraCuuHoSo\",\"mahoso\":\"%s\",\"session\":\"%s\"}", code,
             session);
    return 0;
  }
  const char *at = strstr(dossier_tmpl, "@CODE@");
  if (!at) return -1;
  snprintf(c->body, c->cap,
           "{\"madonvi\":\"000.00.01.H22\",\"service\":\"DongBoHoSoMC\",\"isUpdating\":\"%s\",\"data\":[%.*s%s%s],"
           "\"session\":\"%s\"}",
           exists ? "True" : "False", (int)(at - dossier_tmpl), dossier_tmpl, code, at + 6, session);
  return 0;
}

static void dvcqg_add(CURLM *m, struct dcall *c, const char *url) {
  c->rn = 0;
  c->resp[0] = '\0';
  curl_easy_setopt(c->h, CURLOPT_URL, url);
  curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, c->body);
  c->t0 = now_s();
  curl_multi_add_handle(m, c->h);
}

static int load_dvcqg(const char *base, long n, long conc, int fresh, const char *dossier_file) {
  char auth_url[512], int_url[512], session[64] = "";
  snprintf(auth_url, sizeof auth_url, "%s/api/auth", base);
  snprintf(int_url, sizeof int_url, "%s/api/integration", base);
  FILE *f = fopen(dossier_file, "r");
  static char tmpl[16384];
  size_t tn = f ? fread(tmpl, 1, sizeof tmpl - 1, f) : 0;
  if (f) fclose(f);
  tmpl[tn] = '\0';
  while (tn && (tmpl[tn - 1] == '\n' || tmpl[tn - 1] == ' ')) tmpl[--tn] = '\0';
  if (!strstr(tmpl, "@CODE@")) {
    fprintf(stderr, "resync_target: %s has no @CODE@\n", dossier_file);
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
  hdr = curl_slist_append(hdr, "Accept: application/json");
  { /* the login, once, as the sink does */
    struct dcall lc = {0};
    lc.h = curl_easy_init();
    curl_easy_setopt(lc.h, CURLOPT_URL, auth_url);
    curl_easy_setopt(lc.h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(lc.h, CURLOPT_POSTFIELDS, "{\"username\":\"bench\",\"password\":\"bench-pw\"}");
    curl_easy_setopt(lc.h, CURLOPT_WRITEFUNCTION, keep_cb);
    curl_easy_setopt(lc.h, CURLOPT_WRITEDATA, &lc);
    CURLcode rc = curl_easy_perform(lc.h);
    curl_easy_cleanup(lc.h);
    json_t *j = rc == CURLE_OK ? json_loads(lc.resp, 0, NULL) : NULL;
    const char *sv = str_of(j, "session");
    if (sv) snprintf(session, sizeof session, "%s", sv);
    json_decref(j);
    if (!*session) {
      fprintf(stderr, "resync_target: login to %s failed: %s\n", auth_url, lc.resp);
      curl_slist_free_all(hdr);
      return 1;
    }
  }
  CURLM *m = curl_multi_init();
  struct dcall *calls = calloc((size_t)conc, sizeof *calls);
  double *lat = calloc((size_t)n * 2, sizeof *lat);
  long next = 0, done = 0, failed = 0, nlat = 0;
  if (!m || !calls || !lat) return 1;
  double t0 = now_s();
  for (long i = 0; i < conc && next < n; i++, next++) {
    struct dcall *c = &calls[i];
    c->h = curl_easy_init();
    c->dossier = next;
    c->stage = 0;
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, keep_cb);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
    if (fresh) { /* as the sink with reuse_connections: false */
      curl_easy_setopt(c->h, CURLOPT_FRESH_CONNECT, 1L);
      curl_easy_setopt(c->h, CURLOPT_FORBID_REUSE, 1L);
    }
    if (dvcqg_body(c, session, tmpl, 0)) return 1;
    dvcqg_add(m, c, int_url);
  }
  while (done < n) {
    int running = 0, q = 0;
    curl_multi_perform(m, &running);
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(m, &q))) {
      if (msg->msg != CURLMSG_DONE) continue;
      struct dcall *c;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
      long st = 0;
      curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &st);
      lat[nlat++] = now_s() - c->t0;
      curl_multi_remove_handle(m, c->h);
      int ok = msg->data.result == CURLE_OK && st == 200 && strstr(c->resp, "\"error_code\":\"0\"");
      if (ok && c->stage == 0) { /* the look-up's answer decides create or update */
        c->stage = 1;
        if (dvcqg_body(c, session, tmpl, !strstr(c->resp, "\"result\":[]"))) return 1;
        dvcqg_add(m, c, int_url);
        continue;
      }
      if (!ok) {
        failed++;
        if (failed <= 3) fprintf(stderr, "resync_target: call failed (HTTP %ld): %.300s\n", st, c->resp);
      }
      done++;
      if (next < n) {
        c->dossier = next++;
        c->stage = 0;
        if (dvcqg_body(c, session, tmpl, 0)) return 1;
        dvcqg_add(m, c, int_url);
      }
    }
    if (done < n) curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  double el = now_s() - t0;
  qsort(lat, (size_t)nlat, sizeof *lat, cmp_d);
  printf("{\"rate\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"calls\":%ld,\"failed\":%ld}\n", (double)n / el,
         lat[nlat / 2] * 1e3, lat[(long)((double)nlat * 0.99)] * 1e3, nlat, failed);
  for (long i = 0; i < conc; i++) {
    if (calls[i].h) curl_easy_cleanup(calls[i].h);
    free(calls[i].body);
  }
  curl_slist_free_all(hdr);
  curl_multi_cleanup(m);
  free(calls);
  free(lat);
  return failed ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "serve"))
    return serve(argv[2], argc > 3 ? strtol(argv[3], NULL, 10) : 0, argc > 4 && !strcmp(argv[4], "--dvcqg"));
  if (argc == 7 && !strcmp(argv[1], "load-dvcqg"))
    return load_dvcqg(argv[2], strtol(argv[3], NULL, 10), strtol(argv[4], NULL, 10), (int)strtol(argv[5], NULL, 10),
                      argv[6]);
  if (argc == 5 && !strcmp(argv[1], "load"))
    return load(argv[2], strtol(argv[3], NULL, 10), strtol(argv[4], NULL, 10));
  fprintf(stderr, "usage: resync_target serve PORT_FILE [DELAY_US [--dvcqg]] | load URL N CONCURRENCY | "
                  "load-dvcqg URL N CONCURRENCY FRESH DOSSIER_FILE\n");
  return 2;
}
