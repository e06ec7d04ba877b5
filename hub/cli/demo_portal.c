/* `lienthong demo`: the national portal (DVCQG) stand-in, OpenCPS variant (vn-standards.md
 * §3.1), just enough for the `dvcqg` sink's real conversation: a session login, then TraCuuHoSo,
 * DongBoHoSoMC and CapNhatTienDoHoSoMC on the integration endpoint, each checked as the portal
 * would (the session it issued, madonvi, a dossier code; a create of a dossier it holds is
 * answered "đã tồn tại"). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

static char *answer_of(const char *code, const char *message) {
  json_t *a = json_pack("{s:s, s:s}", "error_code", code, "message", message);
  char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
  json_decref(a);
  return text;
}

static const char *str(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int knows(struct demo_portal *p, const char *code) {
  for (int i = 0; i < p->nknown; i++)
    if (!strcmp(p->known[i], code)) return 1;
  return 0;
}

void demo_portal_handle(struct demo_standin *s, struct MHD_Connection *c, const char *method, const char *url,
                        const char *body, size_t len, int *status, char **answer) {
  struct demo_portal *p = s->state;
  (void)c;
  json_t *req = json_loadb(body, len, 0, NULL);
  *status = 200;
  if (strcmp(method, "POST") || !json_is_object(req)) {
    *status = 400;
    *answer = answer_of("400", "Yêu cầu không hợp lệ: POST với thân JSON");
    demo_standin_record(s, "refused %s %s: not a JSON POST", method, url);
    goto out;
  }
  if (!strcmp(url, "/api/auth")) {
    const char *u = str(req, "username"), *pw = str(req, "password");
    if (!u || !pw || strcmp(u, p->username) || strcmp(pw, p->password)) {
      *answer = answer_of("401", "Sai tên đăng nhập hoặc mật khẩu");
      demo_standin_record(s, "login %s refused", u ? u : "(none)");
      goto out;
    }
    pthread_mutex_lock(&s->mu);
    snprintf(p->session, sizeof p->session, "demo-session-%d", s->n + 1);
    json_t *a = json_pack("{s:s, s:s, s:s}", "error_code", "0", "message", "Thành công", "session", p->session);
    pthread_mutex_unlock(&s->mu);
    *answer = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    demo_standin_record(s, "login %s: session issued", u);
    goto out;
  }
  if (strcmp(url, "/api/integration")) {
    *status = 404;
    *answer = answer_of("404", "Không có dịch vụ này");
    demo_standin_record(s, "refused POST %s: unknown path", url);
    goto out;
  }
  const char *service = str(req, "service"), *session = str(req, "session"), *madonvi = str(req, "madonvi");
  pthread_mutex_lock(&s->mu);
  int session_ok = session && *p->session && !strcmp(session, p->session);
  pthread_mutex_unlock(&s->mu);
  if (!session_ok) {
    *answer = answer_of("-1", "Phiên làm việc không hợp lệ");
    demo_standin_record(s, "%s refused: no valid session", service ? service : "(no service)");
    goto out;
  }
  if (!madonvi || !*madonvi) {
    *answer = answer_of("2", "Thiếu madonvi");
    demo_standin_record(s, "%s refused: no madonvi", service ? service : "(no service)");
    goto out;
  }
  if (service && !strcmp(service, "TraCuuHoSo")) {
    const char *code = str(req, "mahoso");
    pthread_mutex_lock(&s->mu);
    int k = code && knows(p, code);
    pthread_mutex_unlock(&s->mu);
    json_t *a = json_pack("{s:s, s:s, s:o}", "error_code", "0", "message", "Thành công", "result",
                          k ? json_pack("[{s:s}]", "MaHoSo", code) : json_array());
    *answer = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    demo_standin_record(s, "TraCuuHoSo %s: %s", code ? code : "(none)", k ? "found" : "not found");
  } else if (service && !strcmp(service, "DongBoHoSoMC")) {
    json_t *item = json_array_get(json_object_get(req, "data"), 0);
    const char *code = str(item, "MaHoSo"), *upd = str(req, "isUpdating");
    int updating = upd && !strcmp(upd, "True");
    pthread_mutex_lock(&s->mu);
    int k = code && knows(p, code);
    if (code && !k && !updating && p->nknown < 8) snprintf(p->known[p->nknown++], sizeof p->known[0], "%s", code);
    pthread_mutex_unlock(&s->mu);
    if (!code || !str(item, "TenTTHC") || !str(item, "ChuHoSo")) {
      *answer = answer_of("2", "Thiếu MaHoSo, TenTTHC hoặc ChuHoSo");
      demo_standin_record(s, "DongBoHoSoMC %s refused: fields missing", code ? code : "(none)");
    } else if (k && !updating) {
      *answer = answer_of("3", "Hồ sơ đã tồn tại");
      demo_standin_record(s, "DongBoHoSoMC %s: exists (create refused)", code);
    } else {
      *answer = answer_of("0", "Thành công");
      demo_standin_record(s, "DongBoHoSoMC %s: %s, procedure %.60s", code, updating ? "updated" : "created",
                          str(item, "MaTTHC") ? str(item, "MaTTHC") : "?");
    }
  } else if (service && !strcmp(service, "CapNhatTienDoHoSoMC")) {
    json_t *data = json_object_get(req, "data"), *first = json_array_get(data, 0);
    const char *code = str(first, "MaHoSo");
    pthread_mutex_lock(&s->mu);
    int k = code && knows(p, code);
    pthread_mutex_unlock(&s->mu);
    if (!k) { /* progress of a dossier it does not hold: DongBoHoSoMC must come first */
      *answer = answer_of("2", "Hồ sơ không tồn tại");
      demo_standin_record(s, "CapNhatTienDoHoSoMC %s refused: unknown dossier", code ? code : "(none)");
    } else if (!str(first, "TrangThai") || !str(first, "NguoiXuLy") || !str(first, "ThoiDiemXuLy")) {
      *answer = answer_of("2", "Thiếu TrangThai, NguoiXuLy hoặc ThoiDiemXuLy");
      demo_standin_record(s, "CapNhatTienDoHoSoMC %s refused: fields missing", code);
    } else {
      *answer = answer_of("0", "Thành công");
      demo_standin_record(s, "CapNhatTienDoHoSoMC %s: %zu step(s), the last TrangThai %s", code,
                          json_array_size(data), str(json_array_get(data, json_array_size(data) - 1), "TrangThai"));
    }
  } else {
    *answer = answer_of("404", "Dịch vụ không được hỗ trợ");
    demo_standin_record(s, "refused service %s", service ? service : "(none)");
  }
out:
  json_decref(req);
}
