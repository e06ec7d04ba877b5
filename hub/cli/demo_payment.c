/* `lienthong demo`: a fee paid and reconciled, from the outside. The payment platform's confirm
 * callback (vn-standards.md §3.4) with its MaXacThuc computed by the hub's own function
 * (hub/trust/checksum.h), and the bank's fixed-width statement (§4.2,
 * mappings/bank/vnpay-fixed.yaml) that carries the same transaction. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo.h"
#include "hub/trust/checksum.h"

/* The platform and the bank write Vietnam's time (UTC+7, no daylight saving). */
static void vn_time(time_t t, struct tm *tm) {
  t += 7 * 3600;
  gmtime_r(&t, tm);
}

size_t demo_reply_keep(char *p, size_t s, size_t n, void *u) {
  struct demo_reply *a = u;
  size_t take = s * n < sizeof a->buf - 1 - a->n ? s * n : sizeof a->buf - 1 - a->n;
  memcpy(a->buf + a->n, p, take);
  a->n += take;
  a->buf[a->n] = '\0';
  return s * n;
}

long demo_pay_confirm(const char *url, const char *partner, const char *key, const char *ref, const char *txn,
                      long amount, const char *dossier, int forge, char paid_at[15], char *maloi, size_t maloi_size) {
  struct tm tm;
  vn_time(time(NULL), &tm);
  strftime(paid_at, 15, "%Y%m%d%H%M%S", &tm);
  char sum[32], mac[65], e[256];
  snprintf(sum, sizeof sum, "%ld", amount);
  json_t *cb = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "LoaiBanTin", "ConfirmTransaction",
                         "MaLoi", "00", "MaDoiTac", partner, "MaThamChieu", ref, "SoTien", sum, "MaTienTe", "VND",
                         "MaGiaoDich", txn, "MaNganHang", "970415", "ThoiGianGD", paid_at, "ThongTinGiaoDich",
                         "Le phi ho so", "MaHoSo", dossier);
  const char *const *fields;
  size_t nf;
  long code = 0;
  *maloi = '\0';
  if (!cb || hub_paygov_preset("confirm", &fields, &nf) != HUB_OK ||
      hub_paygov_mac_json(HUB_PAYGOV_SHA256, cb, fields, nf, key, strlen(key), mac, e, sizeof e) != HUB_OK) {
    json_decref(cb);
    snprintf(maloi, maloi_size, "(no checksum: %s)", e);
    return 0;
  }
  json_object_set_new(cb, "MaXacThuc", json_string(mac));
  if (forge) { /* tampered after signing: ten times the amount under the old checksum */
    snprintf(sum, sizeof sum, "%ld", amount * 10);
    json_object_set_new(cb, "SoTien", json_string(sum));
  }
  char *body = json_dumps(cb, JSON_COMPACT);
  json_decref(cb);
  struct demo_reply r = {.n = 0};
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  CURL *c = curl_easy_init();
  if (body && c) {
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, demo_reply_keep);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  }
  curl_easy_cleanup(c);
  curl_slist_free_all(h);
  free(body);
  json_t *ans = json_loads(r.buf, 0, NULL);
  json_t *ml = json_object_get(ans, "MaLoi");
  snprintf(maloi, maloi_size, "%s", json_is_string(ml) ? json_string_value(ml) : "(none)");
  json_decref(ans);
  return code;
}

/* A value padded to its width: numbers right-aligned, text left-aligned (the switch's layout). */
static void put(FILE *f, const char *v, int width, int right) {
  fprintf(f, right ? "%*.*s" : "%-*.*s", width, width, v);
}

int demo_bank_statement(const char *folder, const char *name, const char *account, const char *txn, const char *ref,
                        long amount) {
  char tmp[4096], final[4096], v[64];
  snprintf(tmp, sizeof tmp, "%s/.%s.part", folder, name);
  snprintf(final, sizeof final, "%s/%s", folder, name);
  FILE *f = fopen(tmp, "w");
  if (!f) return -1;
  struct tm tm;
  vn_time(time(NULL) + 20, &tm); /* the bank books it a little after the platform confirmed */
  char day[8], hms[8], md[8];
  strftime(day, sizeof day, "%d%m%y", &tm);
  strftime(hms, sizeof hms, "%H%M%S", &tm);
  strftime(md, sizeof md, "%m%d", &tm);
  fprintf(f, "0001970415%s\n", day); /* header: record type, bank code, statement date */
  /* the one detail line, fields in the layout's order (239 bytes) */
  put(f, "0002", 4, 0), put(f, "0210", 4, 0), put(f, account, 21, 1), put(f, "000000", 6, 0);
  snprintf(v, sizeof v, "%012ld", amount);
  put(f, v, 12, 1), put(f, ref, 40, 1), put(f, txn, 20, 0), put(f, hms, 6, 0), put(f, md, 4, 0), put(f, md, 4, 0);
  put(f, "MOBI", 4, 0), put(f, "970415", 6, 0), put(f, "000001", 6, 0), put(f, "00", 2, 0), put(f, "01", 2, 0);
  put(f, "DVCQG001", 8, 0), put(f, "", 30, 0), put(f, "So Giao duc va Dao tao", 60, 0);
  fprintf(f, "\n0009%09d", 1); /* footer: the count of detail lines, who made it, when */
  put(f, "BATCH JOB", 20, 0);
  fprintf(f, "235900%s\n", day);
  if (fclose(f) != 0) return -1;
  return rename(tmp, final); /* the folder sees a complete file only */
}
