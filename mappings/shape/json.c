/* JSON parsing for the mapping code: jansson with duplicate keys refused and NUL bytes
 * refused (a NUL in a string would be cut short by every C consumer downstream). */
#include "mappings/shape/json.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/files.h"

/* Line and column (1-based, in bytes) of offset `off`. */
static void position(const char *buf, size_t off, size_t *line, size_t *col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < off; i++) {
    if (buf[i] == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

hub_err_t lt_json_parse(const void *buf, size_t len, const char *name, json_t **json, char *errbuf,
                        size_t errbuf_size) {
  *json = NULL;
  if (!name) name = "<input>";
  if (!buf && len) return HUB_ERR_INVALID_ARG;
  const char *nul = len ? memchr(buf, 0, len) : NULL;
  if (nul) {
    size_t line, col;
    position(buf, (size_t)(nul - (const char *)buf), &line, &col);
    snprintf(errbuf, errbuf_size, "%s: line %zu, column %zu: NUL byte in JSON input", name, line, col);
    return HUB_ERR_JSON;
  }
  /* RFC 8259 §8.1 lets a parser ignore a UTF-8 byte order mark; Windows tools often write one */
  if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) {
    buf = (const char *)buf + 3;
    len -= 3;
  }
  json_error_t err;
  /* JSON_DECODE_ANY: any JSON text is valid input (RFC 8259), not only objects and arrays;
   * without JSON_ALLOW_NUL jansson refuses \u0000. */
  json_t *j = json_loadb(len ? buf : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
  if (!j) {
    /* jansson's text for \u0000 names its own flag; say what is refused instead */
    const char *text = strstr(err.text, "JSON_ALLOW_NUL") ? "\\u0000 (NUL) in a string is refused" : err.text;
    snprintf(errbuf, errbuf_size, "%s: line %d, column %d: %s", name, err.line, err.column, text);
    return HUB_ERR_JSON;
  }
  *json = j;
  return HUB_OK;
}

hub_err_t lt_json_load_file(const char *path, json_t **json, char *errbuf, size_t errbuf_size) {
  char *buf;
  size_t len;
  *json = NULL;
  hub_err_t rc = hub_file_read(path, LT_JSON_MAX_BYTES, &buf, &len, errbuf, errbuf_size);
  if (rc != HUB_OK) return rc;
  rc = lt_json_parse(buf, len, path, json, errbuf, errbuf_size);
  free(buf);
  return rc;
}

int lt_json_number_cmp(json_t *a, json_t *b) {
  if (json_is_integer(a) && json_is_integer(b)) {
    json_int_t x = json_integer_value(a), y = json_integer_value(b);
    return x < y ? -1 : x > y;
  }
  double x = json_number_value(a), y = json_number_value(b);
  return x < y ? -1 : x > y;
}

size_t lt_utf8_length(const char *s, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) count++; /* count every byte that starts a code point */
  return count;
}

int lt_json_equal(json_t *a, json_t *b) {
  if (!a || !b) return a == b;
  if (json_is_number(a) && json_is_number(b)) return lt_json_number_cmp(a, b) == 0;
  if (json_typeof(a) != json_typeof(b)) return 0;
  switch (json_typeof(a)) {
    case JSON_STRING:
      return json_string_length(a) == json_string_length(b) &&
             memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY:
      if (json_array_size(a) != json_array_size(b)) return 0;
      for (size_t i = 0; i < json_array_size(a); i++)
        if (!lt_json_equal(json_array_get(a, i), json_array_get(b, i))) return 0;
      return 1;
    case JSON_OBJECT: {
      if (json_object_size(a) != json_object_size(b)) return 0;
      const char *key;
      size_t klen;
      json_t *v;
      json_object_keylen_foreach(a, key, klen, v) {
        json_t *w = json_object_getn(b, key, klen);
        if (!w || !lt_json_equal(v, w)) return 0;
      }
      return 1;
    }
    default: return 1; /* true, false, null: the same type is the same value */
  }
}

void lt_buf_put(struct lt_buf *b, const void *data, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 128;
    while (nc < b->len + n + 1) nc *= 2;
    char *ns = realloc(b->s, nc);
    if (!ns) {
      b->oom = 1;
      return;
    }
    b->s = ns;
    b->cap = nc;
  }
  if (n) memcpy(b->s + b->len, data, n);
  b->len += n;
  b->s[b->len] = 0;
}

void lt_buf_str(struct lt_buf *b, const char *s) { lt_buf_put(b, s, strlen(s)); }

void lt_buf_vfmt(struct lt_buf *b, const char *fmt, va_list ap) {
  char tmp[256];
  va_list again;
  va_copy(again, ap);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  if (n >= 0 && (size_t)n < sizeof tmp) {
    lt_buf_put(b, tmp, (size_t)n);
  } else if (n >= 0) {
    char *big = malloc((size_t)n + 1);
    if (big) {
      vsnprintf(big, (size_t)n + 1, fmt, again);
      lt_buf_put(b, big, (size_t)n);
      free(big);
    } else {
      b->oom = 1;
    }
  }
  va_end(again);
}

void lt_buf_fmt(struct lt_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lt_buf_vfmt(b, fmt, ap);
  va_end(ap);
}

/* The shortest of %.15g, %.16g, %.17g that reads back to the same double (%g drops trailing
 * zeros, so a value with a shorter exact form already shows it at 15; subnormals have fewer
 * digits of precision and are tried from 1), written as jansson writes reals: always with a
 * '.' or an exponent, and "1e21" rather than "1e+21". */
int lt_json_real_text(double d, char *out, size_t size) {
  int n = 0;
  for (int prec = fabs(d) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
    n = snprintf(out, size, "%.*g", prec, d);
    if (n < 0 || (size_t)n >= size) return -1;
    if (strtod(out, NULL) == d) break;
  }
  if (!strchr(out, '.') && !strchr(out, 'e') && !strchr(out, 'n') && !strchr(out, 'i')) {
    if ((size_t)n + 2 >= size) return -1;
    memcpy(out + n, ".0", 3);
    n += 2;
  }
  char *e = strchr(out, 'e');
  if (e) {
    char *from = e + 1, *to = e + 1;
    if (*from == '+')
      from++;
    else if (*from == '-')
      *to++ = *from++;
    while (*from == '0' && from[1])
      from++;
    memmove(to, from, strlen(from) + 1);
    n = (int)strlen(out);
  }
  return n;
}

static void dump_string(struct lt_buf *b, const char *s, size_t len) {
  lt_buf_put(b, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    lt_buf_put(b, s + run, i - run);
    run = i + 1;
    switch (c) {
    case '"':
      lt_buf_put(b, "\\\"", 2);
      break;
    case '\\':
      lt_buf_put(b, "\\\\", 2);
      break;
    case '\b':
      lt_buf_put(b, "\\b", 2);
      break;
    case '\f':
      lt_buf_put(b, "\\f", 2);
      break;
    case '\n':
      lt_buf_put(b, "\\n", 2);
      break;
    case '\r':
      lt_buf_put(b, "\\r", 2);
      break;
    case '\t':
      lt_buf_put(b, "\\t", 2);
      break;
    default:
      lt_buf_fmt(b, "\\u%04X", c);
    }
  }
  lt_buf_put(b, s + run, len - run);
  lt_buf_put(b, "\"", 1);
}

static int key_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void newline(struct lt_buf *b, size_t flags, int depth) {
  size_t indent = flags & JSON_MAX_INDENT;
  if (!indent) return;
  lt_buf_put(b, "\n", 1);
  for (size_t i = 0; i < indent * (size_t)depth; i++)
    lt_buf_put(b, " ", 1);
}

static void dump(struct lt_buf *b, const json_t *j, size_t flags, int depth) {
  const char *comma = (flags & JSON_COMPACT) || (flags & JSON_MAX_INDENT) ? "," : ", ";
  const char *colon = flags & JSON_COMPACT ? ":" : ": ";
  char num[64];
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    size_t n = json_object_size(j), i = 0;
    if (!n) {
      lt_buf_put(b, "{}", 2);
      break;
    }
    lt_buf_put(b, "{", 1);
    const char **keys = NULL;
    if (flags & JSON_SORT_KEYS) {
      if (!(keys = malloc(n * sizeof *keys))) {
        b->oom = 1;
        return;
      }
      const char *k;
      json_t *v;
      json_object_foreach((json_t *)j, k, v) keys[i++] = k;
      qsort(keys, n, sizeof *keys, key_cmp);
    }
    const char *k;
    size_t klen;
    json_t *v;
    i = 0;
    if (keys) {
      for (i = 0; i < n; i++) {
        if (i) lt_buf_str(b, comma);
        newline(b, flags, depth + 1);
        dump_string(b, keys[i], strlen(keys[i]));
        lt_buf_str(b, colon);
        dump(b, json_object_get(j, keys[i]), flags, depth + 1);
      }
    } else {
      json_object_keylen_foreach((json_t *)j, k, klen, v) {
        if (i++) lt_buf_str(b, comma);
        newline(b, flags, depth + 1);
        dump_string(b, k, klen);
        lt_buf_str(b, colon);
        dump(b, v, flags, depth + 1);
      }
    }
    free(keys);
    newline(b, flags, depth);
    lt_buf_put(b, "}", 1);
    break;
  }
  case JSON_ARRAY: {
    size_t n = json_array_size(j);
    if (!n) {
      lt_buf_put(b, "[]", 2);
      break;
    }
    lt_buf_put(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
      if (i) lt_buf_str(b, comma);
      newline(b, flags, depth + 1);
      dump(b, json_array_get(j, i), flags, depth + 1);
    }
    newline(b, flags, depth);
    lt_buf_put(b, "]", 1);
    break;
  }
  case JSON_STRING:
    dump_string(b, json_string_value(j), json_string_length(j));
    break;
  case JSON_INTEGER:
    lt_buf_fmt(b, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    break;
  case JSON_REAL: {
    int n = lt_json_real_text(json_real_value(j), num, sizeof num);
    if (n < 0)
      b->oom = 1;
    else
      lt_buf_put(b, num, (size_t)n);
    break;
  }
  case JSON_TRUE:
    lt_buf_put(b, "true", 4);
    break;
  case JSON_FALSE:
    lt_buf_put(b, "false", 5);
    break;
  default:
    lt_buf_put(b, "null", 4);
  }
}

char *lt_json_dumps(const json_t *json, size_t flags) {
  struct lt_buf b = {0};
  lt_buf_put(&b, "", 0);
  if (json) dump(&b, json, flags, 0);
  if (b.oom || !json) {
    free(b.s);
    return NULL;
  }
  return b.s;
}
