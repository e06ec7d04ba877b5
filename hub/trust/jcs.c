/* RFC 8785 JSON canonicalisation on jansson values: number formatting (ECMAScript), string
 * escaping and member ordering by UTF-16 code units. See jcs.h. */
#include "hub/trust/jcs.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
  char *p;
  size_t len, cap;
  int oom;
};

static void put(struct buf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

/* The shortest decimal digits (no trailing zeros) and the exponent n such that
 * d = 0.DIGITS x 10^n, for a finite d > 0. Tries each precision; at a precision where the
 * correctly rounded value does not read back as d, its decimal neighbours may still do. */
static void shortest(double d, char digits[24], int *n) {
  char tmp[40];
  for (int p = 1; p <= 17; p++) {
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, d);
    char *e = strchr(tmp, 'e');
    int exp10 = (int)strtol(e + 1, NULL, 10);
    /* mantissa digits without the point */
    char m[24];
    size_t k = 0;
    for (char *c = tmp; c < e; c++)
      if (*c >= '0' && *c <= '9') m[k++] = *c;
    m[k] = 0;
    int found = strtod(tmp, NULL) == d;
    if (!found && p > 1) {
      uint64_t v = strtoull(m, NULL, 10);
      uint64_t cand[2] = {v - 1, v + 1};
      for (int i = 0; i < 2 && !found; i++) {
        char alt[24], txt[48];
        snprintf(alt, sizeof alt, "%llu", (unsigned long long)cand[i]);
        if (strlen(alt) != k) continue; /* the digit count changed: not a p-digit neighbour */
        snprintf(txt, sizeof txt, "%c.%se%d", alt[0], alt + 1, exp10);
        if (strtod(txt, NULL) == d) {
          memcpy(m, alt, k + 1);
          found = 1;
        }
      }
    }
    if (found) {
      while (k > 1 && m[k - 1] == '0') m[--k] = 0;
      memcpy(digits, m, k + 1);
      *n = exp10 + 1;
      return;
    }
  }
  /* %.17e always reads back; not reached */
  snprintf(digits, 24, "0");
  *n = 1;
}

int hub_jcs_number(double d, char *buf, size_t size) {
  if (!isfinite(d) || size < 32) return -1;
  if (d == 0) return snprintf(buf, size, "0"); /* also -0 */
  char out[64];
  size_t o = 0;
  if (d < 0) {
    out[o++] = '-';
    d = -d;
  }
  char s[24];
  int n;
  shortest(d, s, &n);
  int k = (int)strlen(s);
  if (k <= n && n <= 21) { /* integer: digits then zeros */
    memcpy(out + o, s, (size_t)k);
    o += (size_t)k;
    for (int i = 0; i < n - k; i++) out[o++] = '0';
  } else if (0 < n && n <= 21) { /* point inside the digits */
    memcpy(out + o, s, (size_t)n);
    o += (size_t)n;
    out[o++] = '.';
    memcpy(out + o, s + n, (size_t)(k - n));
    o += (size_t)(k - n);
  } else if (-6 < n && n <= 0) { /* 0.000ddd */
    out[o++] = '0';
    out[o++] = '.';
    for (int i = 0; i < -n; i++) out[o++] = '0';
    memcpy(out + o, s, (size_t)k);
    o += (size_t)k;
  } else { /* exponent form */
    out[o++] = s[0];
    if (k > 1) {
      out[o++] = '.';
      memcpy(out + o, s + 1, (size_t)(k - 1));
      o += (size_t)(k - 1);
    }
    o += (size_t)snprintf(out + o, sizeof out - o, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
  }
  out[o] = 0;
  return snprintf(buf, size, "%s", out);
}

static void put_string(struct buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  put(b, "\"", 1);
  size_t run = 0; /* start of the pending literal run */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[7];
    switch (c) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\b': esc = "\\b"; break;
    case '\t': esc = "\\t"; break;
    case '\n': esc = "\\n"; break;
    case '\f': esc = "\\f"; break;
    case '\r': esc = "\\r"; break;
    default:
      if (c < 0x20) {
        u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0', u[4] = hex[c >> 4], u[5] = hex[c & 15], u[6] = 0;
        esc = u;
      }
    }
    if (esc) {
      put(b, s + run, i - run);
      puts_(b, esc);
      run = i + 1;
    }
  }
  put(b, s + run, n - run);
  put(b, "\"", 1);
}

/* UTF-8 to UTF-16 code units, for ordering. Returns the count, or -1 on invalid UTF-8. */
static long utf16(const char *s, size_t n, uint16_t *out) {
  long k = 0;
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    uint32_t cp;
    size_t len;
    if (c < 0x80) cp = c, len = 1;
    else if ((c & 0xe0) == 0xc0) cp = c & 0x1f, len = 2;
    else if ((c & 0xf0) == 0xe0) cp = c & 0x0f, len = 3;
    else if ((c & 0xf8) == 0xf0) cp = c & 0x07, len = 4;
    else return -1;
    if (i + len > n) return -1;
    for (size_t j = 1; j < len; j++) {
      unsigned char cc = (unsigned char)s[i + j];
      if ((cc & 0xc0) != 0x80) return -1;
      cp = (cp << 6) | (cc & 0x3f);
    }
    i += len;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out[k++] = (uint16_t)(0xd800 + (cp >> 10));
      out[k++] = (uint16_t)(0xdc00 + (cp & 0x3ff));
    } else {
      out[k++] = (uint16_t)cp;
    }
  }
  return k;
}

struct member {
  const char *key;
  size_t key_len;
  uint16_t *u16;
  long n16;
  json_t *value;
};

static int member_cmp(const void *a, const void *b) {
  const struct member *x = a, *y = b;
  long n = x->n16 < y->n16 ? x->n16 : y->n16;
  for (long i = 0; i < n; i++)
    if (x->u16[i] != y->u16[i]) return x->u16[i] < y->u16[i] ? -1 : 1;
  return (x->n16 > y->n16) - (x->n16 < y->n16);
}

static hub_err_t dump(const json_t *v, struct buf *b, int depth, char *errbuf, size_t errbuf_size) {
  char num[40];
  if (depth > 1000) {
    snprintf(errbuf, errbuf_size, "JSON nested deeper than 1000 levels");
    return HUB_ERR_TOO_LARGE;
  }
  switch (json_typeof(v)) {
  case JSON_NULL: puts_(b, "null"); return HUB_OK;
  case JSON_TRUE: puts_(b, "true"); return HUB_OK;
  case JSON_FALSE: puts_(b, "false"); return HUB_OK;
  case JSON_INTEGER: {
    json_int_t i = json_integer_value(v);
    if (i > 9007199254740992LL || i < -9007199254740992LL) {
      snprintf(errbuf, errbuf_size, "integer %lld is beyond 2^53 and has no exact IEEE-754 double (RFC 8785 3.2.2.3)",
               (long long)i);
      return HUB_ERR_JSON;
    }
    hub_jcs_number((double)i, num, sizeof num);
    puts_(b, num);
    return HUB_OK;
  }
  case JSON_REAL:
    if (hub_jcs_number(json_real_value(v), num, sizeof num) < 0) {
      snprintf(errbuf, errbuf_size, "NaN or infinity cannot be canonicalised");
      return HUB_ERR_JSON;
    }
    puts_(b, num);
    return HUB_OK;
  case JSON_STRING: put_string(b, json_string_value(v), json_string_length(v)); return HUB_OK;
  case JSON_ARRAY: {
    put(b, "[", 1);
    for (size_t i = 0; i < json_array_size(v); i++) {
      if (i) put(b, ",", 1);
      hub_err_t err = dump(json_array_get(v, i), b, depth + 1, errbuf, errbuf_size);
      if (err) return err;
    }
    put(b, "]", 1);
    return HUB_OK;
  }
  case JSON_OBJECT: {
    hub_err_t err = HUB_OK;
    size_t n = json_object_size(v), i = 0;
    struct member *m = calloc(n ? n : 1, sizeof *m);
    if (!m) return HUB_ERR_NOMEM;
    for (void *it = json_object_iter((json_t *)v); it; it = json_object_iter_next((json_t *)v, it), i++) {
      m[i].key = json_object_iter_key(it);
      m[i].key_len = json_object_iter_key_len(it);
      m[i].value = json_object_iter_value(it);
      m[i].u16 = malloc((m[i].key_len + 1) * sizeof(uint16_t));
      if (!m[i].u16) {
        err = HUB_ERR_NOMEM;
        i++;
        goto out;
      }
      m[i].n16 = utf16(m[i].key, m[i].key_len, m[i].u16);
      if (m[i].n16 < 0) {
        snprintf(errbuf, errbuf_size, "member name is not valid UTF-8");
        err = HUB_ERR_JSON;
        i++;
        goto out;
      }
    }
    qsort(m, n, sizeof *m, member_cmp);
    put(b, "{", 1);
    for (size_t j = 0; j < n; j++) {
      if (j) put(b, ",", 1);
      put_string(b, m[j].key, m[j].key_len);
      put(b, ":", 1);
      err = dump(m[j].value, b, depth + 1, errbuf, errbuf_size);
      if (err) goto out;
    }
    put(b, "}", 1);
  out:
    for (size_t j = 0; j < i && j < n; j++) free(m[j].u16);
    free(m);
    return err;
  }
  }
  snprintf(errbuf, errbuf_size, "unknown JSON value type");
  return HUB_ERR_JSON;
}

hub_err_t hub_jcs_dump_new(const json_t *value, char **out, size_t *out_len, char *errbuf, size_t errbuf_size) {
  struct buf b = {0};
  *out = NULL;
  if (out_len) *out_len = 0;
  if (!value) {
    snprintf(errbuf, errbuf_size, "no JSON value");
    return HUB_ERR_INVALID_ARG;
  }
  hub_err_t err = dump(value, &b, 0, errbuf, errbuf_size);
  if (!err && b.oom) err = HUB_ERR_NOMEM;
  if (!err && !b.p) { /* cannot happen: every value writes something */
    err = HUB_ERR_JSON;
  }
  if (err) {
    if (err == HUB_ERR_NOMEM) snprintf(errbuf, errbuf_size, "out of memory");
    free(b.p);
    return err;
  }
  *out = b.p;
  if (out_len) *out_len = b.len;
  return HUB_OK;
}

hub_err_t hub_jcs_canonicalize_new(const void *json, size_t len, char **out, size_t *out_len, char *errbuf,
                                   size_t errbuf_size) {
  json_error_t jerr;
  *out = NULL;
  if (out_len) *out_len = 0;
  /* every number as a double (RFC 8785 3.2.2.3); jansson refuses overflow to infinity */
  json_t *v = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL,
                         &jerr);
  if (!v) {
    snprintf(errbuf, errbuf_size, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    return HUB_ERR_JSON;
  }
  hub_err_t err = hub_jcs_dump_new(v, out, out_len, errbuf, errbuf_size);
  json_decref(v);
  return err;
}

/* A decimal number as sign, significant digits (no leading or trailing zeros) and the power of
 * ten of the last digit, so two spellings of one value compare equal (1.50 == 15e-1). */
struct decimal {
  int neg;
  char digits[800];
  size_t n;
  long long scale;
  int overflow; /* more significant digits than fit: never equal to a canonical number */
};

static void decimal_parse(const char *t, size_t len, struct decimal *d) {
  size_t i = 0, ndig = 0, point = (size_t)-1;
  long long exp = 0, unstored = 0; /* zeros past the buffer: trailing, or else overflow */
  memset(d, 0, sizeof *d);
  if (i < len && t[i] == '-') d->neg = 1, i++;
  for (; i < len && (t[i] == '.' || (t[i] >= '0' && t[i] <= '9')); i++) {
    if (t[i] == '.') {
      point = ndig;
      continue;
    }
    ndig++;
    if (d->n == 0 && t[i] == '0') continue; /* leading zeros do not change digits x 10^scale */
    if (d->n < sizeof d->digits && !unstored) d->digits[d->n++] = t[i];
    else if (t[i] == '0') unstored++;
    else d->overflow = 1;
  }
  if (i < len && (t[i] == 'e' || t[i] == 'E')) {
    int eneg = 0;
    i++;
    if (i < len && (t[i] == '+' || t[i] == '-')) eneg = t[i++] == '-';
    for (; i < len && t[i] >= '0' && t[i] <= '9'; i++)
      if (exp < 1000000000LL) exp = exp * 10 + (t[i] - '0');
    if (eneg) exp = -exp;
  }
  long long after = point == (size_t)-1 ? 0 : (long long)(ndig - point);
  d->scale = exp - after + unstored;
  while (d->n && d->digits[d->n - 1] == '0') d->n--, d->scale++;
  if (d->n == 0) d->neg = 0, d->scale = 0; /* zero, -0 included */
}

static int decimal_equal(const struct decimal *a, const struct decimal *b) {
  return !a->overflow && !b->overflow && a->neg == b->neg && a->n == b->n && a->scale == b->scale &&
         memcmp(a->digits, b->digits, a->n) == 0;
}

/* An integer literal beyond 2^53 (9007199254740992) is read as int64 or bignum by other
 * languages, so its value depends on the reader: refused in signed payloads even when exact. */
static int decimal_big_integer(const struct decimal *d) {
  if (d->n == 0 || d->scale < 0) return 0;
  if ((long long)d->n + d->scale > 16) return 1;
  unsigned long long v = 0;
  for (size_t i = 0; i < d->n; i++) v = v * 10 + (unsigned long long)(d->digits[i] - '0');
  for (long long s = 0; s < d->scale; s++) v *= 10;
  return v > 9007199254740992ULL;
}

hub_err_t hub_jcs_check_exact(const void *json, size_t len, char *errbuf, size_t errbuf_size) {
  const char *t = json;
  int line = 1, col = 1, in_str = 0;
  for (size_t i = 0; i < len; i++, col++) {
    char c = t[i];
    if (c == '\n') {
      line++;
      col = 0;
      continue;
    }
    if (in_str) {
      if (c == '\\') i++, col++;
      else if (c == '"') in_str = 0;
      continue;
    }
    if (c == '"') {
      in_str = 1;
      continue;
    }
    if (c != '-' && (c < '0' || c > '9')) continue;
    size_t start = i;
    while (i < len && strchr("-+.eE0123456789", t[i]) && t[i]) i++;
    size_t tl = i - start;
    char tok[64];
    snprintf(tok, sizeof tok, "%.*s%s", (int)(tl < 40 ? tl : 40), t + start, tl < 40 ? "" : "...");
    char *copy = strndup(t + start, tl);
    if (!copy) return hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "out of memory");
    double v = strtod(copy, NULL);
    free(copy);
    char canon[40];
    struct decimal a, b;
    decimal_parse(t + start, tl, &a);
    int cl = hub_jcs_number(v, canon, sizeof canon);
    if (cl < 0) cl = 0;
    decimal_parse(canon, (size_t)cl, &b);
    if (!decimal_equal(&a, &b))
      return hub_errf(errbuf, errbuf_size, HUB_ERR_JSON,
                      "line %d column %d: number %s does not survive the IEEE-754 round trip (it reads as %s): "
                      "refused in a signed payload; send it as a string",
                      line, col, tok, cl ? canon : "?");
    if (!memchr(t + start, '.', tl) && !memchr(t + start, 'e', tl) && !memchr(t + start, 'E', tl) && decimal_big_integer(&a))
      return hub_errf(errbuf, errbuf_size, HUB_ERR_JSON,
                      "line %d column %d: integer %s is beyond 2^53: refused in a signed payload; send it as a string",
                      line, col, tok);
    col += (int)tl - 1;
    i--;
  }
  return HUB_OK;
}

hub_err_t hub_jcs_canonicalize_exact_new(const void *json, size_t len, char **out, size_t *out_len, char *errbuf,
                                         size_t errbuf_size) {
  hub_err_t err = hub_jcs_canonicalize_new(json, len, out, out_len, errbuf, errbuf_size);
  if (err) return err;
  if ((err = hub_jcs_check_exact(json, len, errbuf, errbuf_size))) {
    free(*out);
    *out = NULL;
    if (out_len) *out_len = 0;
  }
  return err;
}
