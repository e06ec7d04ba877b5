/* I-Regexp (RFC 9485) to PCRE2. The pattern is checked against the I-Regexp grammar first
 * (anything outside it is not a valid I-Regexp, so match()/search() give false), then every
 * literal is written as \x{HEX} so no PCRE2 metacharacter can leak through, and "." becomes
 * [^\n\r] as RFC 9485 §5 defines it. An unescaped ^ or $ anchors at the start or end of the
 * string, as the JSONPath compliance suite expects. I-Regexp has no back-references, so it runs
 * on PCRE2's non-backtracking matcher: linear in the subject, no limit to hit, no false "no". */
#include "mappings/shape/jsonpath_iregexp.h"

#include "mappings/shape/json.h"
#include "mappings/shape/jsonschema_regex.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rx {
  const unsigned char *p, *end;
  struct lt_buf o;
  int depth;
};

static void put_cp(struct lt_buf *o, uint32_t cp) { lt_buf_fmt(o, "\\x{%x}", (unsigned)cp); }

/* Decodes one UTF-8 code point; -1 on malformed input or a surrogate. */
static long next_cp(struct rx *r) {
  const unsigned char *p = r->p;
  if (p >= r->end) return -1;
  uint32_t c = p[0];
  size_t n;
  if (c < 0x80) n = 1;
  else if ((c & 0xE0) == 0xC0) n = 2, c &= 0x1F;
  else if ((c & 0xF0) == 0xE0) n = 3, c &= 0x0F;
  else if ((c & 0xF8) == 0xF0) n = 4, c &= 0x07;
  else return -1;
  if ((size_t)(r->end - p) < n) return -1;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80) return -1;
    c = (c << 6) | (p[i] & 0x3F);
  }
  if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF))) return -1;
  if (c >= 0xD800 && c <= 0xDFFF) return -1;
  r->p += n;
  return (long)c;
}

static int peek(const struct rx *r) { return r->p < r->end ? r->p[0] : -1; }

/* \p{..} / \P{..}: the general categories RFC 9485 allows. */
static int category(struct rx *r, int negated) {
  static const char *const cats[] = {"L",  "Ll", "Lm", "Lo", "Lt", "Lu", "M",  "Mc", "Me", "Mn", "N",  "Nd",
                                     "Nl", "No", "P",  "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "Z",  "Zl",
                                     "Zp", "Zs", "S",  "Sc", "Sk", "Sm", "So", "C",  "Cc", "Cf", "Cn", "Co"};
  if (peek(r) != '{') return -1;
  r->p++;
  const unsigned char *start = r->p;
  while (r->p < r->end && *r->p != '}') r->p++;
  if (r->p >= r->end) return -1;
  size_t n = (size_t)(r->p - start);
  r->p++;
  for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++) {
    if (strlen(cats[i]) == n && memcmp(cats[i], start, n) == 0) {
      lt_buf_str(&r->o, negated ? "\\P{" : "\\p{");
      lt_buf_put(&r->o, (const char *)start, n);
      lt_buf_str(&r->o, "}");
      return 0;
    }
  }
  return -1;
}

/* After a backslash: a SingleCharEsc returns its code point; \p/\P are written and give -2. */
static long escape(struct rx *r) {
  int c = peek(r);
  if (c < 0) return -1;
  r->p++;
  switch (c) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'p':
    case 'P': return category(r, c == 'P') == 0 ? -2 : -1;
    default:
      if ((c >= '(' && c <= '+') || c == '-' || c == '.' || c == '?' || (c >= '[' && c <= '^') ||
          (c >= '{' && c <= '}'))
        return c;
      return -1;
  }
}

/* One class character (CCchar): a literal or a SingleCharEsc; -2 for \p, -1 invalid. */
static long class_char(struct rx *r) {
  int c = peek(r);
  if (c == '\\') {
    r->p++;
    return escape(r);
  }
  if (c == '[' || c == ']' || c == '-') return -1;
  return next_cp(r);
}

static int char_class(struct rx *r) {
  lt_buf_str(&r->o, "[");
  if (peek(r) == '^') {
    r->p++;
    lt_buf_str(&r->o, "^");
  }
  int first = 1;
  for (;;) {
    int c = peek(r);
    if (c < 0) return -1;
    if (c == ']') {
      if (first) return -1;
      r->p++;
      break;
    }
    if (c == '-') {
      r->p++;
      if (!first && peek(r) != ']') return -1;
      put_cp(&r->o, '-');
      first = 0;
      continue;
    }
    long lo = class_char(r);
    if (lo == -1) return -1;
    first = 0;
    if (lo == -2) continue;
    put_cp(&r->o, (uint32_t)lo);
    if (peek(r) == '-' && r->p + 1 < r->end && r->p[1] != ']') {
      r->p++;
      long hi = class_char(r);
      if (hi < 0 || hi < lo) return -1;
      lt_buf_str(&r->o, "-");
      put_cp(&r->o, (uint32_t)hi);
    }
  }
  lt_buf_str(&r->o, "]");
  return 0;
}

static int alternation(struct rx *r);

static int quantifier(struct rx *r) {
  int c = peek(r);
  if (c == '*' || c == '+' || c == '?') {
    r->p++;
    lt_buf_fmt(&r->o, "%c", c);
    return 0;
  }
  if (c != '{') return 0;
  r->p++;
  unsigned long lo = 0, hi = 0;
  int n = 0, has_hi = 0, comma = 0;
  while (peek(r) >= '0' && peek(r) <= '9') {
    lo = lo * 10 + (unsigned long)(*r->p++ - '0');
    if (lo > 65535) return -1;
    n++;
  }
  if (!n) return -1;
  if (peek(r) == ',') {
    comma = 1;
    r->p++;
    while (peek(r) >= '0' && peek(r) <= '9') {
      hi = hi * 10 + (unsigned long)(*r->p++ - '0');
      if (hi > 65535) return -1;
      has_hi = 1;
    }
  }
  if (peek(r) != '}') return -1;
  r->p++;
  if (has_hi && hi < lo) return -1;
  if (!comma) lt_buf_fmt(&r->o, "{%lu}", lo);
  else if (!has_hi) lt_buf_fmt(&r->o, "{%lu,}", lo);
  else lt_buf_fmt(&r->o, "{%lu,%lu}", lo, hi);
  return 0;
}

static int branch(struct rx *r) {
  for (;;) {
    int c = peek(r);
    if (c < 0 || c == '|' || c == ')') return 0;
    if (c == '(') {
      if (++r->depth > 100) return -1;
      r->p++;
      lt_buf_str(&r->o, "(?:");
      if (alternation(r) < 0 || peek(r) != ')') return -1;
      r->p++;
      r->depth--;
      lt_buf_str(&r->o, ")");
    } else if (c == '.') {
      r->p++;
      lt_buf_str(&r->o, "[^\\n\\r]");
    } else if (c == '^' || c == '$') {
      /* the CTS (and XSD-derived engines) read these as anchors of the whole string */
      r->p++;
      lt_buf_str(&r->o, c == '^' ? "\\A" : "\\z");
      continue;
    } else if (c == '[') {
      r->p++;
      if (char_class(r) < 0) return -1;
    } else if (c == '\\') {
      r->p++;
      long e = escape(r);
      if (e == -1) return -1;
      if (e >= 0) put_cp(&r->o, (uint32_t)e);
    } else if (c == '*' || c == '+' || c == '?' || c == '{' || c == '}' || c == ']') {
      return -1;
    } else {
      long cp = next_cp(r);
      if (cp < 0) return -1;
      put_cp(&r->o, (uint32_t)cp);
    }
    if (quantifier(r) < 0) return -1;
  }
}

static int alternation(struct rx *r) {
  for (;;) {
    if (branch(r) < 0) return -1;
    if (peek(r) != '|') return 0;
    r->p++;
    lt_buf_str(&r->o, "|");
  }
}

pcre2_code *lt_iregexp_compile(const char *pattern, size_t len, int anchored) {
  struct rx r = {.p = (const unsigned char *)pattern, .end = (const unsigned char *)pattern + len};
  pcre2_code *re = NULL;
  lt_buf_str(&r.o, anchored ? "\\A(?:" : "(?:");
  if (alternation(&r) < 0 || r.p != r.end) goto out;
  lt_buf_str(&r.o, anchored ? ")\\z" : ")");
  if (r.o.oom) goto out;
  int errcode;
  PCRE2_SIZE erroff;
  re = pcre2_compile((PCRE2_SPTR)r.o.s, r.o.len, PCRE2_UTF, &errcode, &erroff, NULL);
out:
  free(r.o.s);
  return re;
}

int lt_iregexp_test(const pcre2_code *re, const char *subject, size_t len) {
  return lt_regex_search_linear(re, subject, len) == 1; /* the pattern carries its own anchors */
}
