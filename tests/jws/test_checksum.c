/* Domain checksums: MaXacThuc (SHA-256 and HMAC-SHA256 variants, presets and JSON fields),
 * XroadVnpt-sign-header / -hash-header and hash-file. Expected values come from
 * checksum_vectors.py (python3 hashlib/hmac) and `openssl dgst`, never from the code under test. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "check.h"
#include "hub/trust/checksum.h"

static char tmp[64];

static const char *tpath(const char *name) {
  static char bufs[4][128];
  static int i;
  char *b = bufs[i++ % 4];
  snprintf(b, 128, "%s/%s", tmp, name);
  return b;
}

/* The payment message the checks use: Vietnamese text, an integer amount. */
static json_t *init_message(void) {
  return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "LoaiBanTin", "PAY_CREATE", "PhienBan",
                   "1.0.0", "MaDoiTac", "SOTTTT_QNA", "MaThamChieu", "1042_5b7f0c2e-81d3-4", "SoTien", (json_int_t)150000,
                   "LoaiHinhThanhToan", "1", "MaKenhThanhToan", "1", "MaThietBi", "1", "NgonNgu", "vi", "MaTienTe", "VND",
                   "MaNganHang", "", "ThongTinGiaoDich",
                   "N\xe1\xbb\x99p l\xe1\xbb\x87 ph\xc3\xad h\xe1\xbb\x93 s\xc6\xa1 000.00.18.H47-260101-0007", "ThoiGianGD",
                   "20260101083015", "Ip", "10.0.0.7", "MaXacThuc", "");
}

static const char *field_text(json_t *m, const char *f, char num[32]) {
  json_t *v = json_object_get(m, f);
  if (json_is_integer(v)) {
    snprintf(num, 32, "%lld", (long long)json_integer_value(v));
    return num;
  }
  return json_string_value(v);
}

int main(void) {
  const char *src = getenv("LT_SOURCE_DIR");
  if (!src) {
    fprintf(stderr, "LT_SOURCE_DIR is not set: run through ctest\n");
    return 1;
  }
  snprintf(tmp, sizeof tmp, "/tmp/lt-cks.XXXXXX");
  if (!mkdtemp(tmp)) return 1;
  char errbuf[256];
  const char *key = "k3y-b\xc3\xad-m\xe1\xba\xadt"; /* UTF-8 in the key too */

  /* ---- cases for the independent computation ---- */
  json_t *cases = json_array();
  json_t *msg = init_message();
  const char *presets[] = {"init", "get-bill", "confirm"};
  json_t *confirm = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "LoaiBanTin", "PAY_CONFIRM", "MaLoi", "00",
                              "MaDoiTac", "SOTTTT_QNA", "MaThamChieu", "1042_5b7f0c2e-81d3-4", "SoTien", "150000", "MaTienTe",
                              "VND", "MaGiaoDich", "GD0001", "MaNganHang", "VCB", "ThoiGianGD", "20260101083500",
                              "ThongTinGiaoDich", "Thanh to\xc3\xa1n th\xc3\xa0nh c\xc3\xb4ng");
  json_t *get_bill = json_pack("{s:s,s:s,s:s,s:s,s:s}", "LoaiBanTin", "GET_BILL", "PhienBan", "1.0.0", "MaDoiTac",
                               "SOTTTT_QNA", "MaThamChieu", "1042_5b7f0c2e-81d3-4", "ThoiGianGD", "20260101083015");
  json_t *msgs[] = {msg, get_bill, confirm};
  for (int p = 0; p < 3; p++) {
    const char *const *fields;
    size_t n;
    CHECK(hub_paygov_preset(presets[p], &fields, &n) == HUB_OK);
    for (int alg = 0; alg < 2; alg++) {
      json_t *vals = json_array();
      char num[32];
      for (size_t i = 0; i < n; i++) json_array_append_new(vals, json_string(field_text(msgs[p], fields[i], num)));
      json_array_append_new(cases, json_pack("{s:s,s:o,s:s}", "kind", alg ? "paygov-hmac" : "paygov-sha256", "values",
                                             vals, "key", key));
    }
  }
  const char *hnames[] = {"from", "to", "messagetype", "servicetype", "systemid", "timestamp", "hash-file", "note"};
  const char *hvalues[] = {"000.00.18.H47",
                           "[{\"code\":\"000.00.00.G22\"},{\"code\":\"000.01.32.H47\"}]",
                           "edoc",
                           "eDoc",
                           "lienthong-qna",
                           "01012026T083015+0000",
                           "4b6e3c0f9a1d",
                           "tab\there, line\nbreak, \\ back, quote \", ctl \x01, sep \xe2\x80\xa8 Vi\xe1\xbb\x87t"};
  json_t *hn = json_array(), *hv = json_array();
  for (int i = 0; i < 8; i++) json_array_append_new(hn, json_string(hnames[i])), json_array_append_new(hv, json_string(hvalues[i]));
  json_array_append_new(cases, json_pack("{s:s,s:o,s:o,s:s}", "kind", "vxp-header", "names", hn, "values", hv, "secret",
                                         "vpcp-secret-01"));
  /* files for hash-file: empty, short, and ones whose digests hold bytes below 0x10 */
  const char *contents[] = {"", "abc", "<edXMLEnvelope/>\n", "0123456789", "lienthong"};
  for (int i = 0; i < 5; i++) {
    char name[16];
    snprintf(name, sizeof name, "f%d.edxml", i);
    FILE *f = fopen(tpath(name), "wb");
    if (f) {
      fwrite(contents[i], 1, strlen(contents[i]), f);
      fclose(f);
    }
    json_array_append_new(cases, json_pack("{s:s,s:s}", "kind", "hash-file", "path", tpath(name)));
  }
  CHECK(json_dump_file(cases, tpath("cases.json"), 0) == 0);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "python3 %s/tests/jws/checksum_vectors.py %s > %s", src, tpath("cases.json"), tpath("want.json"));
  int rc = system(cmd);
  CHECK(rc == 0);
  json_t *want = json_load_file(tpath("want.json"), 0, NULL);
  CHECK(json_is_array(want) && json_array_size(want) == json_array_size(cases));
  if (!want) return check_done();

  /* ---- MaXacThuc ---- */
  size_t c = 0;
  for (int p = 0; p < 3; p++) {
    const char *const *fields;
    size_t n;
    hub_paygov_preset(presets[p], &fields, &n);
    for (int alg = 0; alg < 2; alg++, c++) {
      char got[65] = "";
      hub_err_t err = hub_paygov_mac_json((enum hub_paygov_alg)alg, msgs[p], fields, n, key, strlen(key), got, errbuf,
                                          sizeof errbuf);
      CHECK(err == HUB_OK);
      CHECK_STR(got, json_string_value(json_array_get(want, c)));
      printf("MaXacThuc %-8s %-11s %s\n", presets[p], alg ? "hmac-sha256" : "sha256", got);
      /* the check accepts it in upper case and refuses it after one field changes */
      char up[65];
      for (int i = 0; i < 65; i++) up[i] = (char)(got[i] >= 'a' && got[i] <= 'f' ? got[i] - 32 : got[i]);
      CHECK(hub_paygov_mac_check_json((enum hub_paygov_alg)alg, msgs[p], fields, n, key, strlen(key), up, errbuf,
                                      sizeof errbuf) == HUB_OK);
      json_t *tampered = json_deep_copy(msgs[p]);
      json_object_set_new(tampered, "MaThamChieu", json_string("1042_5b7f0c2e-81d3-5"));
      CHECK(hub_paygov_mac_check_json((enum hub_paygov_alg)alg, tampered, fields, n, key, strlen(key), got, errbuf,
                                      sizeof errbuf) == HUB_ERR_AUTH);
      CHECK_CONTAINS(errbuf, "does not match");
      json_decref(tampered);
      /* the other algorithm gives another value */
      char other[65];
      hub_paygov_mac_json((enum hub_paygov_alg)!alg, msgs[p], fields, n, key, strlen(key), other, errbuf, sizeof errbuf);
      CHECK(strcmp(other, got) != 0);
    }
  }
  {
    const char *const *fields;
    size_t n;
    char got[65];
    hub_paygov_preset("init", &fields, &n);
    CHECK(n == 14);
    json_t *m = json_deep_copy(msg);
    json_object_del(m, "Ip");
    CHECK(hub_paygov_mac_json(HUB_PAYGOV_SHA256, m, fields, n, key, strlen(key), got, errbuf, sizeof errbuf) ==
          HUB_ERR_INVALID_ARG);
    CHECK_CONTAINS(errbuf, "field Ip is missing");
    json_object_set_new(m, "Ip", json_null());
    CHECK(hub_paygov_mac_json(HUB_PAYGOV_SHA256, m, fields, n, key, strlen(key), got, errbuf, sizeof errbuf) ==
          HUB_ERR_INVALID_ARG);
    CHECK_CONTAINS(errbuf, "field Ip is null");
    json_object_set_new(m, "Ip", json_string("10.0.0.7"));
    json_object_set_new(m, "SoTien", json_real(150000.0));
    CHECK(hub_paygov_mac_json(HUB_PAYGOV_SHA256, m, fields, n, key, strlen(key), got, errbuf, sizeof errbuf) ==
          HUB_ERR_INVALID_ARG);
    CHECK_CONTAINS(errbuf, "field SoTien is a decimal number");
    CHECK(hub_paygov_mac_check_json(HUB_PAYGOV_SHA256, msg, fields, n, key, strlen(key), "abc", errbuf, sizeof errbuf) ==
          HUB_ERR_AUTH);
    CHECK(hub_paygov_mac_json(HUB_PAYGOV_SHA256, msg, fields, n, "", 0, got, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
    CHECK(hub_paygov_preset("refund", &fields, &n) == HUB_ERR_NOT_FOUND);
    CHECK(hub_paygov_alg_parse("hmac-sha256") == HUB_PAYGOV_HMAC_SHA256);
    CHECK(hub_paygov_alg_parse("sha256") == HUB_PAYGOV_SHA256);
    CHECK(hub_paygov_alg_parse("md5") == -1);
    json_decref(m);
  }
  /* issue 10: a '|' inside a field would move bytes between fields under one MaXacThuc
   * (SoTien "1000|X" + MaThamChieu "Y" hashes like "1000" + "X|Y"): refused, naming the field */
  {
    const char *a[] = {"1000|X", "Y"}, *b[] = {"1000", "X|Y"}, *ok[] = {"1000", "XY"};
    const char *names[] = {"SoTien", "MaThamChieu"};
    char got[65] = "x", got2[65];
    for (int alg = 0; alg < 2; alg++) {
      CHECK(hub_paygov_mac((enum hub_paygov_alg)alg, a, 2, key, strlen(key), got, errbuf, sizeof errbuf) ==
            HUB_ERR_INVALID_ARG);
      CHECK_CONTAINS(errbuf, "field 1 contains '|'");
      CHECK(got[0] == 0);
      CHECK(hub_paygov_mac((enum hub_paygov_alg)alg, b, 2, key, strlen(key), got, errbuf, sizeof errbuf) ==
            HUB_ERR_INVALID_ARG);
      CHECK_CONTAINS(errbuf, "field 2 contains '|'");
      CHECK(hub_paygov_mac((enum hub_paygov_alg)alg, ok, 2, key, strlen(key), got, errbuf, sizeof errbuf) == HUB_OK);
      json_t *o = json_pack("{s:s,s:s}", "SoTien", "1000|X", "MaThamChieu", "Y");
      CHECK(hub_paygov_mac_json((enum hub_paygov_alg)alg, o, names, 2, key, strlen(key), got2, errbuf, sizeof errbuf) ==
            HUB_ERR_INVALID_ARG);
      CHECK_CONTAINS(errbuf, "field SoTien contains '|'");
      /* the check path refuses too, so a forged callback cannot pass as the other split */
      CHECK(hub_paygov_mac_check_json((enum hub_paygov_alg)alg, o, names, 2, key, strlen(key), got, errbuf,
                                      sizeof errbuf) == HUB_ERR_INVALID_ARG);
      json_decref(o);
    }
  }

  /* ---- XroadVnpt headers ---- */
  {
    json_t *w = json_array_get(want, c++);
    char *js = NULL, *keys = NULL, hash[65];
    CHECK(hub_vxp_sign_header_new(hnames, hvalues, 8, &js, &keys, errbuf, sizeof errbuf) == HUB_OK);
    CHECK_STR(js, json_string_value(json_object_get(w, "json")));
    CHECK_STR(keys, json_string_value(json_object_get(w, "keys")));
    hub_vxp_hash_header("vpcp-secret-01", 14, js, js ? strlen(js) : 0, hash);
    CHECK_STR(hash, json_string_value(json_object_get(w, "hash")));
    printf("XroadVnpt-sign-header-key %s\nXroadVnpt-hash-header     %s\n", keys, hash);
    /* a second, independent tool: openssl dgst -hmac */
    FILE *f = fopen(tpath("hdr.json"), "wb");
    if (f && js) {
      fwrite(js, 1, strlen(js), f);
      fclose(f);
    }
    snprintf(cmd, sizeof cmd, "openssl dgst -sha256 -hmac vpcp-secret-01 -r %s", tpath("hdr.json"));
    FILE *pp = popen(cmd, "r");
    char line[256] = "";
    if (pp) {
      if (!fgets(line, sizeof line, pp)) line[0] = 0;
      pclose(pp);
    }
    CHECK(strncmp(line, hash, 64) == 0);
    free(js);
    free(keys);
    const char *dup[] = {"from", "from"}, *vals2[] = {"a", "b"}, *semi[] = {"a;b"}, *bad[] = {"\xc3("};
    CHECK(hub_vxp_sign_header_new(dup, vals2, 2, &js, &keys, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
    CHECK_CONTAINS(errbuf, "given twice");
    CHECK(hub_vxp_sign_header_new(semi, vals2, 1, &js, &keys, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
    CHECK(hub_vxp_sign_header_new(hnames, bad, 1, &js, &keys, errbuf, sizeof errbuf) == HUB_ERR_INVALID_ARG);
    CHECK_CONTAINS(errbuf, "UTF-8");
    CHECK(js == NULL);
  }

  /* ---- hash-file ---- */
  int short_ones = 0;
  for (int i = 0; i < 5; i++, c++) {
    char name[16], a[65], b[65];
    snprintf(name, sizeof name, "f%d.edxml", i);
    hub_vxp_hash_file_hex(contents[i], strlen(contents[i]), a);
    CHECK(hub_vxp_hash_file_path(tpath(name), b, errbuf, sizeof errbuf) == HUB_OK);
    CHECK_STR(a, json_string_value(json_array_get(want, c)));
    CHECK_STR(b, a);
    if (strlen(a) < 64) short_ones++;
    printf("hash-file %-10s %-64s (%zu chars)\n", name, a, strlen(a));
  }
  CHECK(short_ones >= 2); /* the unpadded bytes are really exercised */
  {
    char out[65];
    CHECK(hub_vxp_hash_file_path(tpath("missing"), out, errbuf, sizeof errbuf) == HUB_ERR_IO);
  }

  json_decref(want);
  json_decref(cases);
  json_decref(msg);
  json_decref(confirm);
  json_decref(get_bill);
  int rc2 = check_done();
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  if (rc2 == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
  return rc2;
}
