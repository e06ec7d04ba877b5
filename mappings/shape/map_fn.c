/* Value functions of the mapping language: dates with fixed-offset zones, decimal formatting,
 * UTF-8 case, substring and trim. No libc locale or TZ state is touched, so results do not
 * depend on the environment the hub runs in. */
#include "mappings/shape/map_fn.h"

#include <ctype.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#define ISO8601 "yyyy-MM-dd'T'HH:mm:ssXXX"

int lt_map_zone_parse(const char *name, int *offset_min) {
  if (!strcmp(name, "Asia/Ho_Chi_Minh") || !strcmp(name, "Asia/Saigon") || !strcmp(name, "Asia/Bangkok")) {
    *offset_min = 7 * 60;
    return 0;
  }
  if (!strcmp(name, "UTC") || !strcmp(name, "Z") || !strcmp(name, "Etc/UTC")) {
    *offset_min = 0;
    return 0;
  }
  if ((name[0] == '+' || name[0] == '-') && strlen(name) == 6 && isdigit((unsigned char)name[1]) &&
      isdigit((unsigned char)name[2]) && name[3] == ':' && isdigit((unsigned char)name[4]) &&
      isdigit((unsigned char)name[5])) {
    int h = (name[1] - '0') * 10 + (name[2] - '0'), m = (name[4] - '0') * 10 + (name[5] - '0');
    if (h > 14 || m > 59) return -1;
    *offset_min = (name[0] == '-' ? -1 : 1) * (h * 60 + m);
    return 0;
  }
  return -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic, valid for any year). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m) {
  static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return dm[m - 1];
}

/* The tokens a pattern may use, longest first so "yyyy" wins over "yy". */
static const char *const tokens[] = {"yyyy", "yy", "MM", "dd", "HH", "mm", "ss", "SSS",
                                     "XXX",  "M",  "d",  "H",  "m",  "s",  NULL};

static const char *match_token(const char *p) {
  for (int i = 0; tokens[i]; i++)
    if (!strncmp(p, tokens[i], strlen(tokens[i]))) return tokens[i];
  return NULL;
}

static const char *expand(const char *pattern) { return strcmp(pattern, "iso8601") ? pattern : ISO8601; }

int lt_map_date_pattern_check(const char *pattern, char *err, size_t err_size) {
  const char *p = expand(pattern);
  int seen_y = 0;
  if (!*p) goto bad_empty;
  while (*p) {
    const char *t = match_token(p);
    if (t) {
      if (t[0] == 'y') seen_y = 1;
      p += strlen(t);
    } else if (*p == '\'') {
      const char *q = strchr(p + 1, '\'');
      if (!q) {
        snprintf(err, err_size, "unterminated quote in date pattern \"%s\"", pattern);
        return -1;
      }
      p = q + 1;
    } else if (isalpha((unsigned char)*p)) {
      snprintf(err, err_size,
               "unknown letter '%c' in date pattern \"%s\" (use yyyy yy MM M dd d HH H mm m ss s SSS XXX)", *p,
               pattern);
      return -1;
    } else {
      p++;
    }
  }
  if (!seen_y) {
    snprintf(err, err_size, "date pattern \"%s\" has no year", pattern);
    return -1;
  }
  return 0;
bad_empty:
  snprintf(err, err_size, "empty date pattern");
  return -1;
}

static int read_digits(const char **s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*s)[i])) return -1;
    v = v * 10 + ((*s)[i] - '0');
  }
  *s += n;
  *out = v;
  return 0;
}

int lt_map_date_parse(const char *text, const char *pattern, int zone_min, int64_t *epoch_s, int *ms, char *err,
                      size_t err_size) {
  const char *p = expand(pattern), *s = text;
  int year = 1970, mon = 1, day = 1, hour = 0, min = 0, sec = 0, milli = 0, off = zone_min;
  while (*p) {
    const char *t = match_token(p);
    int v = 0;
    if (t) {
      p += strlen(t);
      if (!strcmp(t, "XXX")) {
        if (*s == 'Z') {
          off = 0;
          s++;
          continue;
        }
        char z[7];
        if (strlen(s) < 6) goto mismatch;
        memcpy(z, s, 6);
        z[6] = '\0';
        if ((z[0] != '+' && z[0] != '-') || lt_map_zone_parse(z, &off)) goto mismatch;
        s += 6;
        continue;
      }
      if (!strcmp(t, "SSS") && *s == '\0') goto mismatch;
      /* one letter (d M H m s): one or two digits, as written without padding */
      int width =
          strlen(t) == 1 ? (isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) ? 2 : 1) : (int)strlen(t);
      if (read_digits(&s, width, &v)) goto mismatch;
      switch (t[0]) {
        case 'y': year = strlen(t) == 2 ? 2000 + v : v; break;
        case 'M': mon = v; break;
        case 'd': day = v; break;
        case 'H': hour = v; break;
        case 'm': min = v; break;
        case 's': sec = v; break;
        case 'S': milli = v; break;
      }
      /* ISO 8601 input may carry a fraction the pattern does not name. */
      if (t[0] == 's' && !strcmp(expand(pattern), ISO8601) && *s == '.') {
        s++;
        int digits = 0, frac = 0;
        while (isdigit((unsigned char)*s)) {
          if (digits < 3) frac = frac * 10 + (*s - '0');
          digits++, s++;
        }
        if (!digits) goto mismatch;
        for (int i = digits; i < 3; i++) frac *= 10;
        milli = frac;
      }
    } else if (*p == '\'') {
      const char *q = strchr(p + 1, '\'');
      size_t n = q ? (size_t)(q - p - 1) : 0;
      if (!q || strncmp(s, p + 1, n)) goto mismatch;
      s += n;
      p = q + 1;
    } else {
      if (*s != *p) goto mismatch;
      s++, p++;
    }
  }
  if (*s) goto mismatch;
  if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 || min > 59 || sec > 59) {
    snprintf(err, err_size, "\"%s\" is not a real date or time", text);
    return -1;
  }
  *epoch_s = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec - (int64_t)off * 60;
  *ms = milli;
  return 0;
mismatch:
  snprintf(err, err_size, "\"%s\" does not match the date pattern \"%s\"", text, pattern);
  return -1;
}

int lt_map_date_format(int64_t epoch_s, int ms, const char *pattern, int zone_min, char *out, size_t out_size) {
  const char *p = expand(pattern);
  int64_t local = epoch_s + (int64_t)zone_min * 60;
  int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
  int64_t rem = local - days * 86400, year;
  int mon, day;
  civil_from_days(days, &year, &mon, &day);
  size_t n = 0;
  while (*p) {
    char buf[32];
    const char *t = match_token(p);
    int w = 0;
    if (t) {
      p += strlen(t);
      switch (t[0]) {
        case 'y':
          w = strlen(t) == 2 ? snprintf(buf, sizeof buf, "%02d", (int)(year % 100))
                             : snprintf(buf, sizeof buf, "%04lld", (long long)year);
          break;
        case 'M':
          w = snprintf(buf, sizeof buf, "%0*d", (int)strlen(t), mon);
          break;
        case 'd':
          w = snprintf(buf, sizeof buf, "%0*d", (int)strlen(t), day);
          break;
        case 'H':
          w = snprintf(buf, sizeof buf, "%0*d", (int)strlen(t), (int)(rem / 3600));
          break;
        case 'm':
          w = snprintf(buf, sizeof buf, "%0*d", (int)strlen(t), (int)(rem / 60 % 60));
          break;
        case 's':
          w = snprintf(buf, sizeof buf, "%0*d", (int)strlen(t), (int)(rem % 60));
          break;
        case 'S': w = snprintf(buf, sizeof buf, "%03d", ms); break;
        case 'X':
          if (zone_min == 0)
            w = snprintf(buf, sizeof buf, "Z");
          else
            w = snprintf(buf, sizeof buf, "%c%02d:%02d", zone_min < 0 ? '-' : '+', abs(zone_min) / 60,
                         abs(zone_min) % 60);
          break;
      }
    } else if (*p == '\'') {
      const char *q = strchr(p + 1, '\'');
      size_t len = q ? (size_t)(q - p - 1) : strlen(p + 1);
      if (len >= sizeof buf) len = sizeof buf - 1;
      memcpy(buf, p + 1, len);
      w = (int)len;
      p = q ? q + 1 : p + strlen(p);
    } else {
      buf[0] = *p++;
      w = 1;
    }
    if (n + (size_t)w + 1 > out_size) return -1;
    memcpy(out + n, buf, (size_t)w);
    n += (size_t)w;
  }
  out[n] = '\0';
  return (int)n;
}

int lt_map_number_format(const char *num, int decimals, const char *group, const char *point, char *out,
                         size_t out_size) {
  const char *s = num;
  int neg = 0;
  if (*s == '-' || *s == '+') neg = *s++ == '-';
  const char *ip = s;
  while (isdigit((unsigned char)*s)) s++;
  size_t il = (size_t)(s - ip);
  const char *fp = NULL;
  size_t fl = 0;
  if (*s == '.') {
    fp = ++s;
    while (isdigit((unsigned char)*s)) s++;
    fl = (size_t)(s - fp);
    if (!fl) return -1;
  }
  if (!il || *s || decimals < 0 || decimals > 18 || il > 40) return -1;
  /* digits = integer part followed by exactly `decimals` fraction digits, rounded */
  char digits[80];
  size_t nd = 0;
  digits[nd++] = '0'; /* room for a carry */
  memcpy(digits + nd, ip, il);
  nd += il;
  for (int i = 0; i < decimals; i++) digits[nd++] = (size_t)i < fl ? fp[i] : '0';
  if ((size_t)decimals < fl && fp[decimals] >= '5') {
    size_t i = nd;
    while (i-- > 0) {
      if (digits[i] == '9') {
        digits[i] = '0';
      } else {
        digits[i]++;
        break;
      }
    }
  }
  size_t int_len = nd - (size_t)decimals, start = 0;
  while (start + 1 < int_len && digits[start] == '0') start++;
  int all_zero = 1;
  for (size_t i = start; i < nd; i++)
    if (digits[i] != '0') all_zero = 0;
  size_t n = 0, gl = strlen(group), pl = strlen(point);
#define PUT(p_, l_)                              \
  do {                                           \
    if (n + (l_) + 1 > out_size) return -1;      \
    memcpy(out + n, (p_), (l_));                 \
    n += (l_);                                   \
  } while (0)
  if (neg && !all_zero) PUT("-", 1);
  for (size_t i = start; i < int_len; i++) {
    PUT(&digits[i], 1);
    size_t left = int_len - i - 1;
    if (left && left % 3 == 0) PUT(group, gl);
  }
  if (decimals) {
    PUT(point, pl);
    PUT(digits + int_len, (size_t)decimals);
  }
#undef PUT
  out[n] = '\0';
  return 0;
}

/* Decodes one UTF-8 sequence; returns its length or -1. */
static int utf8_dec(const unsigned char *s, unsigned *cp) {
  if (s[0] < 0x80) return *cp = s[0], 1;
  int n = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : -1;
  if (n < 0) return -1;
  unsigned v = s[0] & (0x7F >> n);
  for (int i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return -1;
    v = (v << 6) | (s[i] & 0x3F);
  }
  static const unsigned minv[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < minv[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return -1;
  *cp = v;
  return n;
}

static int utf8_enc(unsigned cp, char *o) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xC0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3F)), 2;
  if (cp < 0x10000)
    return o[0] = (char)(0xE0 | (cp >> 12)), o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
           o[2] = (char)(0x80 | (cp & 0x3F)), 3;
  o[0] = (char)(0xF0 | (cp >> 18)), o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

int lt_map_utf8_valid(const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    unsigned cp;
    if (!u[i]) return 0;
    /* a truncated sequence at the end must not read past len */
    size_t need = u[i] < 0x80 ? 1 : (u[i] & 0xE0) == 0xC0 ? 2 : (u[i] & 0xF0) == 0xE0 ? 3 : 4;
    if (i + need > len) return 0;
    int n = utf8_dec(u + i, &cp);
    if (n < 0) return 0;
    i += (size_t)n;
  }
  return 1;
}

/* towupper_l under C.UTF-8 knows Vietnamese letters (đ→Đ, ế→Ế) and ignores the process locale;
 * created once for all threads. */
static locale_t utf8_locale;
static pthread_once_t utf8_locale_once = PTHREAD_ONCE_INIT;
static void utf8_locale_init(void) { utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0); }

char *lt_map_utf8_case(const char *s, int upper) {
  pthread_once(&utf8_locale_once, utf8_locale_init);
  locale_t loc = utf8_locale;
  size_t len = strlen(s);
  if (!lt_map_utf8_valid(s, len)) return NULL;
  char *out = malloc(len * 2 + 1);
  if (!out) return NULL;
  size_t n = 0;
  for (const unsigned char *u = (const unsigned char *)s; *u;) {
    unsigned cp;
    int k = utf8_dec(u, &cp);
    u += k;
    if (loc)
      cp = (unsigned)(upper ? towupper_l((wint_t)cp, loc) : towlower_l((wint_t)cp, loc));
    else if (cp < 0x80)
      cp = (unsigned)(upper ? toupper((int)cp) : tolower((int)cp));
    n += (size_t)utf8_enc(cp, out + n);
  }
  out[n] = '\0';
  return out;
}

char *lt_map_utf8_substring(const char *s, long start, long len) {
  if (!lt_map_utf8_valid(s, strlen(s)) || start < 0) return NULL;
  const unsigned char *u = (const unsigned char *)s, *b = NULL, *e = NULL;
  long i = 0;
  for (;; i++) {
    if (i == start) b = u;
    if (len >= 0 && i == start + len) {
      e = u;
      break;
    }
    if (!*u) break;
    unsigned cp;
    u += utf8_dec(u, &cp);
  }
  if (!b) b = u;
  if (!e) e = u;
  return strndup((const char *)b, (size_t)(e - b));
}

static int is_space_cp(unsigned cp) {
  return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

char *lt_map_trim(const char *s) {
  if (!lt_map_utf8_valid(s, strlen(s))) return NULL;
  const unsigned char *u = (const unsigned char *)s, *b = NULL, *e = u;
  while (*u) {
    unsigned cp;
    int k = utf8_dec(u, &cp);
    if (!is_space_cp(cp)) {
      if (!b) b = u;
      e = u + k;
    }
    u += k;
  }
  if (!b) b = e = u;
  return strndup((const char *)b, (size_t)(e - b));
}

/* Vietnamese letters with their diacritics, by base letter (NFC, lower and upper case). */
static const char *const vi_letters[][2] = {
    {"a", "àáảãạăằắẳẵặâầấẩẫậ"},
    {"A", "ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬ"},
    {"e", "èéẻẽẹêềếểễệ"},
    {"E", "ÈÉẺẼẸÊỀẾỂỄỆ"},
    {"i", "ìíỉĩị"},
    {"I", "ÌÍỈĨỊ"},
    {"o", "òóỏõọôồốổỗộơờớởỡợ"},
    {"O", "ÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢ"},
    {"u", "ùúủũụưừứửữự"},
    {"U", "ÙÚỦŨỤƯỪỨỬỮỰ"},
    {"y", "ỳýỷỹỵ"},
    {"Y", "ỲÝỶỸỴ"},
    {"d", "đ"},
    {"D", "Đ"},
};

static unsigned base_letter(unsigned cp) {
  if (cp < 0xC0) return cp;
  for (size_t i = 0; i < sizeof vi_letters / sizeof vi_letters[0]; i++) {
    for (const unsigned char *u = (const unsigned char *)vi_letters[i][1]; *u;) {
      unsigned c = 0;
      u += utf8_dec(u, &c);
      if (c == cp) return (unsigned char)vi_letters[i][0][0];
    }
  }
  return cp;
}

static int is_mark(unsigned cp) {
  return cp >= 0x300 && cp <= 0x36F;
}

char *lt_map_utf8_text(const char *s, enum lt_map_text how) {
  pthread_once(&utf8_locale_once, utf8_locale_init);
  locale_t loc = utf8_locale;
  size_t len = strlen(s);
  if (!lt_map_utf8_valid(s, len) || !loc) return NULL;
  char *out = malloc(len * 2 + 1);
  if (!out) return NULL;
  size_t n = 0;
  int in_word = 0;
  for (const unsigned char *u = (const unsigned char *)s; *u;) {
    unsigned cp;
    u += utf8_dec(u, &cp);
    if (how == LT_MAP_TITLE) {
      /* a word starts at a letter after a non-letter; combining marks stay in their word */
      int letter = iswalpha_l((wint_t)cp, loc) || is_mark(cp);
      if (letter) cp = (unsigned)(in_word ? towlower_l((wint_t)cp, loc) : towupper_l((wint_t)cp, loc));
      in_word = letter || (in_word && (cp == '\'' || cp == 0x2019)); /* o'clock, not O'Clock */
    } else {
      if (is_mark(cp)) continue; /* decomposed diacritics go too */
      cp = base_letter(cp);
      if (how == LT_MAP_FOLD) cp = (unsigned)towlower_l((wint_t)cp, loc);
    }
    n += (size_t)utf8_enc(cp, out + n);
  }
  out[n] = '\0';
  return out;
}

char *lt_map_pad(const char *s, size_t width, const char *fill, int left) {
  size_t have = 0, fl = strlen(fill);
  for (const unsigned char *u = (const unsigned char *)s; *u; u++)
    have += (*u & 0xC0) != 0x80;
  size_t add = have < width ? width - have : 0, len = strlen(s);
  char *out = malloc(len + add * fl + 1);
  if (!out) return NULL;
  size_t n = 0;
  if (!left) memcpy(out, s, len), n = len;
  for (size_t i = 0; i < add; i++)
    memcpy(out + n, fill, fl), n += fl;
  if (left) memcpy(out + n, s, len), n += len;
  out[n] = '\0';
  return out;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *lt_map_base64_encode(const void *data, size_t len) {
  const unsigned char *d = data;
  char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
  if (!out) return NULL;
  for (size_t i = 0; i < len; i += 3) {
    unsigned v = (unsigned)d[i] << 16 | (i + 1 < len ? (unsigned)d[i + 1] << 8 : 0) | (i + 2 < len ? d[i + 2] : 0);
    *o++ = b64[v >> 18 & 63];
    *o++ = b64[v >> 12 & 63];
    *o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
    *o++ = i + 2 < len ? b64[v & 63] : '=';
  }
  *o = '\0';
  return out;
}

unsigned char *lt_map_base64_decode(const char *s, size_t *len) {
  size_t n = 0, sl = strlen(s);
  unsigned char *out = malloc(sl / 4 * 3 + 3);
  unsigned v = 0;
  int bits = 0, pad = 0;
  if (!out) return NULL;
  for (const char *p = s; *p; p++) {
    if (*p == '\r' || *p == '\n' || *p == ' ') continue; /* MIME line breaks */
    if (*p == '=') {
      pad++;
      continue;
    }
    const char *k = strchr(b64, *p);
    if (!k || pad) goto bad; /* another alphabet, or data after the padding */
    v = v << 6 | (unsigned)(k - b64);
    if ((bits += 6) >= 8) {
      bits -= 8;
      out[n++] = (unsigned char)(v >> bits);
    }
  }
  /* 2 or 4 stray bits are what padding leaves; 6 cannot be */
  if (bits >= 6 || pad > 2 || (v & ((1u << bits) - 1))) goto bad;
  out[n] = 0;
  *len = n;
  return out;
bad:
  free(out);
  return NULL;
}

int lt_map_number_parse(const char *text, const char *group, const char *point, char *out, size_t out_size) {
  size_t gl = strlen(group), pl = strlen(point), n = 0;
  const char *p = text;
  if (*p == '-' && n + 1 < out_size) out[n++] = *p++;
  int digits = 0, since_group = 0, grouped = 0;
  for (; *p && strncmp(p, point, pl ? pl : 1);) {
    if (gl && !strncmp(p, group, gl)) {
      /* groups of exactly three after the first (1.234.567) */
      if (!digits || (grouped && since_group != 3) || (!grouped && since_group > 3)) return -1;
      grouped = 1, since_group = 0, p += gl;
      continue;
    }
    if (!isdigit((unsigned char)*p) || n + 2 >= out_size) return -1;
    out[n++] = *p++, digits++, since_group++;
  }
  if (!digits || (grouped && since_group != 3)) return -1;
  if (*p) {
    p += pl;
    if (!isdigit((unsigned char)*p) || n + 2 >= out_size) return -1;
    out[n++] = '.';
    for (; *p; p++) {
      if (!isdigit((unsigned char)*p) || n + 2 >= out_size) return -1;
      out[n++] = *p;
    }
  }
  out[n] = '\0';
  return 0;
}
