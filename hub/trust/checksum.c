/* Domain checksums for the payment platform (MaXacThuc) and the VPCP document axis
 * (XroadVnpt-hash-header, hash-file). See checksum.h for what each reproduces. */
#include "hub/trust/checksum.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/params.h>


static void hex32(const unsigned char md[32], char out[65]) {
  static const char hx[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) out[2 * i] = hx[md[i] >> 4], out[2 * i + 1] = hx[md[i] & 15];
  out[64] = 0;
}

/* ---- payment platform ---- */

static const char *const preset_init[] = {"LoaiBanTin", "PhienBan",        "MaDoiTac",  "MaThamChieu", "SoTien",
                                          "LoaiHinhThanhToan", "MaKenhThanhToan", "MaThietBi", "NgonNgu",
                                          "MaTienTe",   "MaNganHang",        "ThongTinGiaoDich", "ThoiGianGD", "Ip"};
static const char *const preset_get_bill[] = {"LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "ThoiGianGD"};
static const char *const preset_confirm[] = {"LoaiBanTin", "MaLoi",      "MaDoiTac",   "MaThamChieu", "SoTien",
                                             "MaTienTe",   "MaGiaoDich", "MaNganHang", "ThoiGianGD",  "ThongTinGiaoDich"};

/* The fields are joined with '|' and nothing marks where one ends, so a '|' inside a field would
 * move bytes between fields under the same MaXacThuc (SoTien "1000|X" with MaThamChieu "Y" hashes
 * like "1000" with "X|Y"): such a field is refused, never hashed. */
static hub_err_t refuse_separator(const char *value, const char *field, size_t index, char *errbuf,
                                  size_t errbuf_size) {
  if (!strchr(value, '|')) return HUB_OK;
  if (field)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG,
                    "field %s contains '|', the MaXacThuc separator: the checksum would be ambiguous", field);
  return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG,
                  "field %zu contains '|', the MaXacThuc separator: the checksum would be ambiguous", index + 1);
}

int hub_paygov_alg_parse(const char *name) {
  if (!name) return -1;
  if (strcmp(name, "sha256") == 0) return HUB_PAYGOV_SHA256;
  if (strcmp(name, "hmac-sha256") == 0) return HUB_PAYGOV_HMAC_SHA256;
  return -1;
}

hub_err_t hub_paygov_preset(const char *name, const char *const **fields, size_t *n) {
#define PRESET(s, a)                              \
  if (name && strcmp(name, s) == 0) {             \
    *fields = a;                                  \
    *n = sizeof a / sizeof a[0];                  \
    return HUB_OK;                                \
  }
  PRESET("init", preset_init)
  PRESET("get-bill", preset_get_bill)
  PRESET("confirm", preset_confirm)
#undef PRESET
  *fields = NULL;
  *n = 0;
  return HUB_ERR_NOT_FOUND;
}

hub_err_t hub_paygov_mac(enum hub_paygov_alg alg, const char *const *values, size_t n, const void *key,
                         size_t key_len, char out[65], char *errbuf, size_t errbuf_size) {
  hub_err_t err = HUB_OK;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  out[0] = 0;
  if (!key || !key_len) return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "MaXacThuc needs a non-empty key");
  if (alg != HUB_PAYGOV_SHA256 && alg != HUB_PAYGOV_HMAC_SHA256)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "unknown MaXacThuc algorithm %d", (int)alg);
  for (size_t i = 0; i < n; i++) {
    if (!values[i]) return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "field %zu has no value", i + 1);
    hub_err_t e = refuse_separator(values[i], NULL, i, errbuf, errbuf_size);
    if (e) return e;
  }
  /* streamed, so no joined copy of the fields is made */
  EVP_MD_CTX *md_ctx = NULL;
  EVP_MAC *mac = NULL;
  EVP_MAC_CTX *mac_ctx = NULL;
  int ok;
  size_t mac_len = 0;
  if (alg == HUB_PAYGOV_SHA256) {
    ok = (md_ctx = EVP_MD_CTX_new()) && EVP_DigestInit_ex(md_ctx, EVP_sha256(), NULL) == 1;
    for (size_t i = 0; ok && i < n; i++)
      ok = (i == 0 || EVP_DigestUpdate(md_ctx, "|", 1) == 1) && EVP_DigestUpdate(md_ctx, values[i], strlen(values[i])) == 1;
    ok = ok && EVP_DigestUpdate(md_ctx, "|", 1) == 1 && EVP_DigestUpdate(md_ctx, key, key_len) == 1 &&
         EVP_DigestFinal_ex(md_ctx, md, &md_len) == 1;
  } else {
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    ok = (mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) && (mac_ctx = EVP_MAC_CTX_new(mac)) &&
         EVP_MAC_init(mac_ctx, key, key_len, params) == 1;
    for (size_t i = 0; ok && i < n; i++)
      ok = (i == 0 || EVP_MAC_update(mac_ctx, (const unsigned char *)"|", 1) == 1) &&
           EVP_MAC_update(mac_ctx, (const unsigned char *)values[i], strlen(values[i])) == 1;
    ok = ok && EVP_MAC_final(mac_ctx, md, &mac_len, sizeof md) == 1;
    md_len = (unsigned int)mac_len;
  }
  if (!ok || md_len != 32) err = hub_errf(errbuf, errbuf_size, HUB_ERR_CRYPTO, "SHA-256 computation failed");
  else hex32(md, out);
  EVP_MD_CTX_free(md_ctx);
  EVP_MAC_CTX_free(mac_ctx);
  EVP_MAC_free(mac);
  return err;
}

hub_err_t hub_paygov_mac_json(enum hub_paygov_alg alg, const json_t *obj, const char *const *fields, size_t n,
                              const void *key, size_t key_len, char out[65], char *errbuf, size_t errbuf_size) {
  hub_err_t err = HUB_OK;
  out[0] = 0;
  if (!json_is_object(obj)) return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "MaXacThuc needs a JSON object");
  const char **vals = calloc(n ? n : 1, sizeof *vals);
  char (*nums)[24] = calloc(n ? n : 1, sizeof *nums);
  if (!vals || !nums) {
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_object_get(obj, fields[i]);
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING: vals[i] = json_string_value(v); break;
    case JSON_INTEGER:
      snprintf(nums[i], sizeof nums[i], "%" JSON_INTEGER_FORMAT, json_integer_value(v));
      vals[i] = nums[i];
      break;
    case JSON_TRUE: vals[i] = "true"; break;
    case JSON_FALSE: vals[i] = "false"; break;
    case JSON_REAL:
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG,
                 "field %s is a decimal number; send it as a string or an integer so its text is unambiguous", fields[i]);
      goto out;
    default:
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "field %s is %s", fields[i],
                 v ? (json_is_null(v) ? "null" : "an object or array") : "missing");
      goto out;
    }
    if (strlen(vals[i]) != (json_is_string(v) ? json_string_length(v) : strlen(vals[i]))) {
      err = hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "field %s contains a NUL character", fields[i]);
      goto out;
    }
    if ((err = refuse_separator(vals[i], fields[i], i, errbuf, errbuf_size)) != HUB_OK) goto out;
  }
  err = hub_paygov_mac(alg, vals, n, key, key_len, out, errbuf, errbuf_size);
out:
  free(vals);
  free(nums);
  return err;
}

hub_err_t hub_paygov_mac_check_json(enum hub_paygov_alg alg, const json_t *obj, const char *const *fields, size_t n,
                                    const void *key, size_t key_len, const char *given, char *errbuf,
                                    size_t errbuf_size) {
  char want[65];
  hub_err_t err = hub_paygov_mac_json(alg, obj, fields, n, key, key_len, want, errbuf, errbuf_size);
  if (err) return err;
  if (!given || strlen(given) != 64)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_AUTH, "MaXacThuc is %s, expected 64 hex characters",
                given ? "of the wrong length" : "missing");
  char low[65];
  for (int i = 0; i < 64; i++) low[i] = (char)(given[i] >= 'A' && given[i] <= 'F' ? given[i] + 32 : given[i]);
  low[64] = 0;
  if (CRYPTO_memcmp(low, want, 64) != 0)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_AUTH, "MaXacThuc does not match the %zu configured fields and key", n);
  return HUB_OK;
}

/* ---- VPCP document axis ---- */

struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
};

static void sput(struct sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np, b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

/* A JSON string as Gson's JsonWriter (htmlSafe off) writes it. */
static void gson_string(struct sbuf *b, const char *s) {
  sput(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char u[8];
    if (*p == '"') sput(b, "\\\"", 2);
    else if (*p == '\\') sput(b, "\\\\", 2);
    else if (*p == '\t') sput(b, "\\t", 2);
    else if (*p == '\b') sput(b, "\\b", 2);
    else if (*p == '\n') sput(b, "\\n", 2);
    else if (*p == '\r') sput(b, "\\r", 2);
    else if (*p == '\f') sput(b, "\\f", 2);
    else if (*p < 0x20) {
      snprintf(u, sizeof u, "\\u%04x", *p);
      sput(b, u, 6);
    } else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) { /* U+2028, U+2029 */
      sput(b, p[2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
      p += 2;
    } else {
      sput(b, (const char *)p, 1);
    }
  }
  sput(b, "\"", 1);
}

static int valid_utf8(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    int len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || (len == 2 && *p < 0xc2)) return 0;
    for (int i = 1; i < len; i++)
      if ((p[i] & 0xc0) != 0x80) return 0;
    p += len;
  }
  return 1;
}

hub_err_t hub_vxp_sign_header_new(const char *const *names, const char *const *values, size_t n, char **json_out,
                                  char **key_list_out, char *errbuf, size_t errbuf_size) {
  struct sbuf j = {0}, k = {0};
  *json_out = NULL;
  if (key_list_out) *key_list_out = NULL;
  for (size_t i = 0; i < n; i++) {
    if (!names[i] || !values[i] || !names[i][0])
      return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "header %zu has no name or value", i + 1);
    if (strchr(names[i], ';'))
      return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "header name \"%s\" contains ';', the key-list separator", names[i]);
    if (!valid_utf8(names[i]) || !valid_utf8(values[i]))
      return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "header \"%s\" is not valid UTF-8", names[i]);
    for (size_t m = 0; m < i; m++)
      if (strcmp(names[m], names[i]) == 0)
        return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "header \"%s\" is given twice", names[i]);
  }
  sput(&j, "{", 1);
  for (size_t i = 0; i < n; i++) {
    size_t nl = strlen(names[i]);
    char *full = malloc(nl + 11);
    if (!full) {
      j.oom = 1;
      break;
    }
    snprintf(full, nl + 11, "XroadVnpt-%s", names[i]);
    if (i) sput(&j, ",", 1), sput(&k, ";", 1);
    gson_string(&j, full);
    sput(&j, ":", 1);
    gson_string(&j, values[i]);
    sput(&k, names[i], nl);
    free(full);
  }
  sput(&j, "}", 1);
  if (!k.p) sput(&k, "", 0);
  if (j.oom || k.oom) {
    free(j.p);
    free(k.p);
    return hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
  }
  *json_out = j.p;
  if (key_list_out) *key_list_out = k.p;
  else free(k.p);
  return HUB_OK;
}

void hub_vxp_hash_header(const void *secret, size_t secret_len, const void *json, size_t len, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (!HMAC(EVP_sha256(), secret_len ? secret : "", (int)secret_len, json, len, md, &md_len) || md_len != 32) {
    out[0] = 0;
    return;
  }
  hex32(md, out);
}

/* Integer.toHexString(b & 0xff) per byte: no zero padding */
static void hex_unpadded(const unsigned char md[32], char out[65]) {
  static const char hx[] = "0123456789abcdef";
  size_t o = 0;
  for (int i = 0; i < 32; i++) {
    if (md[i] >> 4) out[o++] = hx[md[i] >> 4];
    out[o++] = hx[md[i] & 15];
  }
  out[o] = 0;
}

void hub_vxp_hash_file_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[32];
  unsigned int n = 0;
  if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32) {
    out[0] = 0;
    return;
  }
  hex_unpadded(md, out);
}

hub_err_t hub_vxp_hash_file_path(const char *path, char out[65], char *errbuf, size_t errbuf_size) {
  hub_err_t err = HUB_OK;
  unsigned char buf[65536], md[32];
  unsigned int n = 0;
  size_t r;
  out[0] = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return hub_errf(errbuf, errbuf_size, HUB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
  while (ok && (r = fread(buf, 1, sizeof buf, f)) > 0) ok = EVP_DigestUpdate(ctx, buf, r) == 1;
  if (ferror(f)) err = hub_errf(errbuf, errbuf_size, HUB_ERR_IO, "%s: read error", path);
  else if (!ok || EVP_DigestFinal_ex(ctx, md, &n) != 1 || n != 32)
    err = hub_errf(errbuf, errbuf_size, HUB_ERR_CRYPTO, "SHA-256 computation failed");
  else hex_unpadded(md, out);
  EVP_MD_CTX_free(ctx);
  fclose(f);
  return err;
}
