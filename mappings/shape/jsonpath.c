/* RFC 9535 JSONPath: the parser (with the well-typedness rules of §2.4.3), the evaluator over
 * jansson values and normalized paths (§2.7). A compiled path is immutable, so one may be
 * shared by threads. Regular expressions of match()/search() are I-Regexps run by PCRE2
 * (jsonpath_iregexp.c); a literal pattern is compiled once, with the path. */
#include "mappings/shape/jsonpath.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mappings/shape/json.h"
#include "mappings/shape/jsonpath_iregexp.h"

#define MAX_INT 9007199254740991LL /* I-JSON's exact integer range, RFC 9535 §2.1 */
#define MAX_NEST 64                /* nesting of parentheses, filters and function calls */

enum sel_kind { SEL_NAME, SEL_WILD, SEL_INDEX, SEL_SLICE, SEL_FILTER };
enum ex_kind { EX_OR, EX_AND, EX_NOT, EX_CMP, EX_TEST, EX_LIT, EX_QUERY, EX_FUNC };
enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };
enum fn_kind { FN_LENGTH, FN_COUNT, FN_MATCH, FN_SEARCH, FN_VALUE };
enum ty { TY_VALUE, TY_LOGICAL, TY_NODES };

struct expr;

struct selector {
  enum sel_kind kind;
  char *name; /* SEL_NAME, may hold NUL bytes */
  size_t name_len;
  int64_t index; /* SEL_INDEX */
  int has_start, has_end, has_step;
  int64_t start, end, step; /* SEL_SLICE */
  struct expr *filter;      /* SEL_FILTER */
};

struct segment {
  int descendant;
  int singular; /* a name or index segment in the form the singular-query grammar allows */
  struct selector *sels;
  size_t n;
};

struct query {
  int absolute;
  struct segment *segs;
  size_t n;
};

struct expr {
  enum ex_kind kind;
  enum cmp_op op;       /* EX_CMP */
  struct expr *a, *b;   /* operands of OR/AND/CMP, the operand of NOT/TEST */
  json_t *lit;          /* EX_LIT */
  struct query *q;      /* EX_QUERY */
  enum fn_kind fn;      /* EX_FUNC */
  struct expr *args[2];
  size_t nargs;
  pcre2_code *re;       /* match()/search() with a literal pattern: compiled once */
};

struct lt_jsonpath {
  struct query *q;
};

/* ---------------------------------------------------------------------------------- parser */

struct parser {
  const char *s;
  size_t pos, len;
  char *errbuf;
  size_t errbuf_size;
  int failed;
  int oom;
  int depth;
};

static void perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void perr(struct parser *p, const char *fmt, ...) {
  if (p->failed) return;
  p->failed = 1;
  if (!p->errbuf || !p->errbuf_size) return;
  int n = snprintf(p->errbuf, p->errbuf_size, "column %zu: ", p->pos + 1);
  if (n < 0 || (size_t)n >= p->errbuf_size) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->errbuf + n, p->errbuf_size - (size_t)n, fmt, ap);
  va_end(ap);
}

static void poom(struct parser *p) {
  p->oom = 1;
  perr(p, "out of memory");
}

static int cur(const struct parser *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }
static int at(const struct parser *p, size_t off) {
  return p->pos + off < p->len ? (unsigned char)p->s[p->pos + off] : -1;
}
static int is_blank(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static void skip_ws(struct parser *p) {
  while (is_blank(cur(p))) p->pos++;
}
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static void expr_free(struct expr *e);

static void query_free(struct query *q) {
  if (!q) return;
  for (size_t i = 0; i < q->n; i++) {
    struct segment *sg = &q->segs[i];
    for (size_t j = 0; j < sg->n; j++) {
      free(sg->sels[j].name);
      expr_free(sg->sels[j].filter);
    }
    free(sg->sels);
  }
  free(q->segs);
  free(q);
}

static void expr_free(struct expr *e) {
  if (!e) return;
  expr_free(e->a);
  expr_free(e->b);
  json_decref(e->lit);
  query_free(e->q);
  for (size_t i = 0; i < e->nargs; i++) expr_free(e->args[i]);
  if (e->re) pcre2_code_free(e->re);
  free(e);
}

static void *xcalloc(struct parser *p, size_t n, size_t size) {
  void *v = calloc(n ? n : 1, size);
  if (!v) poom(p);
  return v;
}

/* Appends one UTF-8 encoded code point. */
static size_t utf8_put(char *out, uint32_t cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Length of the valid UTF-8 sequence at p (non-ASCII, no surrogates), or 0. */
static size_t utf8_seq(const struct parser *p) {
  const unsigned char *s = (const unsigned char *)p->s + p->pos;
  size_t left = p->len - p->pos;
  uint32_t c = s[0];
  size_t n;
  if ((c & 0xE0) == 0xC0) n = 2, c &= 0x1F;
  else if ((c & 0xF0) == 0xE0) n = 3, c &= 0x0F;
  else if ((c & 0xF8) == 0xF0) n = 4, c &= 0x07;
  else return 0;
  if (left < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF))) return 0;
  if (c >= 0xD800 && c <= 0xDFFF) return 0;
  return n;
}

static int hex4(struct parser *p, uint32_t *out) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int c = cur(p);
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else {
      perr(p, "expected a hex digit in \\u escape");
      return -1;
    }
    v = v * 16 + (uint32_t)d;
    p->pos++;
  }
  *out = v;
  return 0;
}

/* A string literal in ' or " quotes (RFC 9535 §2.3.1.1); the result is malloc'd. */
static char *parse_string(struct parser *p, size_t *out_len) {
  int q = cur(p);
  p->pos++;
  char *buf = xcalloc(p, p->len + 1, 1); /* decoding never grows the text */
  if (!buf) return NULL;
  size_t n = 0;
  for (;;) {
    int c = cur(p);
    if (c < 0) {
      perr(p, "unterminated string literal");
      goto fail;
    }
    if (c == q) {
      p->pos++;
      break;
    }
    if (c < 0x20) {
      perr(p, "control character in a string literal must be escaped");
      goto fail;
    }
    if (c == '\\') {
      p->pos++;
      int e = cur(p);
      p->pos++;
      switch (e) {
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case '/': buf[n++] = '/'; break;
        case '\\': buf[n++] = '\\'; break;
        case 'u': {
          uint32_t cp;
          if (hex4(p, &cp) < 0) goto fail;
          if (cp >= 0xDC00 && cp <= 0xDFFF) {
            perr(p, "lone low surrogate in \\u escape");
            goto fail;
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (cur(p) != '\\' || at(p, 1) != 'u') {
              perr(p, "high surrogate not followed by a low surrogate");
              goto fail;
            }
            p->pos += 2;
            if (hex4(p, &lo) < 0) goto fail;
            if (lo < 0xDC00 || lo > 0xDFFF) {
              perr(p, "high surrogate not followed by a low surrogate");
              goto fail;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          n += utf8_put(buf + n, cp);
          break;
        }
        default:
          if (e == q) {
            buf[n++] = (char)q;
            break;
          }
          p->pos--;
          perr(p, "invalid escape in string literal");
          goto fail;
      }
      continue;
    }
    if (c < 0x80) {
      buf[n++] = (char)c;
      p->pos++;
      continue;
    }
    size_t k = utf8_seq(p);
    if (!k) {
      perr(p, "invalid UTF-8 in string literal");
      goto fail;
    }
    memcpy(buf + n, p->s + p->pos, k);
    n += k;
    p->pos += k;
  }
  *out_len = n;
  return buf;
fail:
  free(buf);
  return NULL;
}

/* An integer as the index and slice grammar allows: "0" or -?[1-9][0-9]*, within ±(2^53-1). */
static int parse_int(struct parser *p, int64_t *out) {
  size_t start = p->pos;
  int neg = 0;
  if (cur(p) == '-') {
    neg = 1;
    p->pos++;
  }
  if (!is_digit(cur(p))) {
    perr(p, "expected an integer");
    return -1;
  }
  if (cur(p) == '0') {
    if (neg) {
      perr(p, "-0 is not a valid integer here");
      return -1;
    }
    p->pos++;
    if (is_digit(cur(p))) {
      perr(p, "leading zeros are not allowed");
      return -1;
    }
    *out = 0;
    return 0;
  }
  int64_t v = 0;
  while (is_digit(cur(p))) {
    if (v > MAX_INT / 10 + 1) {
      p->pos = start;
      perr(p, "integer out of range");
      return -1;
    }
    v = v * 10 + (cur(p) - '0');
    p->pos++;
  }
  if (v > MAX_INT) {
    p->pos = start;
    perr(p, "integer out of range (must be within +-(2^53-1))");
    return -1;
  }
  *out = neg ? -v : v;
  return 0;
}

static struct expr *parse_or(struct parser *p, int arg_mode);
static struct query *parse_query_tail(struct parser *p, int absolute);

static int parse_selector(struct parser *p, struct selector *sel) {
  int c = cur(p);
  if (c == '\'' || c == '"') {
    sel->kind = SEL_NAME;
    sel->name = parse_string(p, &sel->name_len);
    return sel->name ? 0 : -1;
  }
  if (c == '*') {
    p->pos++;
    sel->kind = SEL_WILD;
    return 0;
  }
  if (c == '?') {
    p->pos++;
    skip_ws(p);
    sel->kind = SEL_FILTER;
    if (++p->depth > MAX_NEST) {
      perr(p, "expression nested too deeply");
      return -1;
    }
    sel->filter = parse_or(p, 0);
    p->depth--;
    return sel->filter ? 0 : -1;
  }
  if (c == '-' || is_digit(c) || c == ':') {
    int64_t v = 0;
    int has_first = 0;
    if (c != ':') {
      if (parse_int(p, &v) < 0) return -1;
      has_first = 1;
    }
    size_t save = p->pos;
    skip_ws(p);
    if (cur(p) != ':') {
      p->pos = save;
      sel->kind = SEL_INDEX;
      sel->index = v;
      return 0;
    }
    sel->kind = SEL_SLICE;
    sel->has_start = has_first;
    sel->start = v;
    p->pos++;
    skip_ws(p);
    if (cur(p) == '-' || is_digit(cur(p))) {
      if (parse_int(p, &sel->end) < 0) return -1;
      sel->has_end = 1;
      skip_ws(p);
    }
    if (cur(p) == ':') {
      p->pos++;
      skip_ws(p);
      if (cur(p) == '-' || is_digit(cur(p))) {
        if (parse_int(p, &sel->step) < 0) return -1;
        sel->has_step = 1;
      }
    }
    return 0;
  }
  perr(p, "expected a selector (name, *, index, slice or filter)");
  return -1;
}

static int push_sel(struct parser *p, struct segment *sg, size_t *cap) {
  if (sg->n == *cap) {
    size_t nc = *cap ? *cap * 2 : 2;
    struct selector *ns = realloc(sg->sels, nc * sizeof *ns);
    if (!ns) {
      poom(p);
      return -1;
    }
    sg->sels = ns;
    *cap = nc;
  }
  memset(&sg->sels[sg->n], 0, sizeof sg->sels[0]);
  sg->n++;
  return 0;
}

static int parse_bracket(struct parser *p, struct segment *sg) {
  size_t cap = 0;
  size_t open = p->pos;
  p->pos++; /* '[' */
  int spaced = is_blank(cur(p));
  skip_ws(p);
  for (;;) {
    if (push_sel(p, sg, &cap) < 0) return -1;
    if (parse_selector(p, &sg->sels[sg->n - 1]) < 0) return -1;
    if (is_blank(cur(p))) spaced = 1;
    skip_ws(p);
    if (cur(p) == ',') {
      p->pos++;
      skip_ws(p);
      continue;
    }
    if (cur(p) == ']') {
      p->pos++;
      break;
    }
    perr(p, "expected ',' or ']' (bracket opened at column %zu)", open + 1);
    return -1;
  }
  sg->singular = !sg->descendant && !spaced && sg->n == 1 &&
                 (sg->sels[0].kind == SEL_NAME || sg->sels[0].kind == SEL_INDEX);
  return 0;
}

static int name_first(int c) { return is_alpha(c) || c == '_' || c >= 0x80; }

/* member-name-shorthand after "." or "..". */
static int parse_shorthand(struct parser *p, struct segment *sg) {
  size_t cap = 0;
  if (push_sel(p, sg, &cap) < 0) return -1;
  struct selector *sel = &sg->sels[0];
  if (cur(p) == '*') {
    p->pos++;
    sel->kind = SEL_WILD;
    return 0;
  }
  if (!name_first(cur(p))) {
    perr(p, "expected a member name, '*' or '['");
    return -1;
  }
  size_t start = p->pos;
  for (;;) {
    int c = cur(p);
    if (c >= 0x80) {
      size_t k = utf8_seq(p);
      if (!k) {
        perr(p, "invalid UTF-8 in member name");
        return -1;
      }
      p->pos += k;
    } else if (is_alpha(c) || is_digit(c) || c == '_') {
      p->pos++;
    } else {
      break;
    }
  }
  sel->kind = SEL_NAME;
  sel->name_len = p->pos - start;
  sel->name = malloc(sel->name_len + 1);
  if (!sel->name) {
    poom(p);
    return -1;
  }
  memcpy(sel->name, p->s + start, sel->name_len);
  sel->name[sel->name_len] = 0;
  sg->singular = !sg->descendant;
  return 0;
}

/* Segments after "$" or "@": *(S segment). Blanks before something that is not a segment are
 * left for the caller. */
static struct query *parse_query_tail(struct parser *p, int absolute) {
  struct query *q = xcalloc(p, 1, sizeof *q);
  size_t cap = 0;
  if (!q) return NULL;
  q->absolute = absolute;
  for (;;) {
    size_t save = p->pos;
    skip_ws(p);
    int c = cur(p);
    if (c != '.' && c != '[') {
      p->pos = save;
      break;
    }
    if (q->n == cap) {
      size_t nc = cap ? cap * 2 : 4;
      struct segment *ns = realloc(q->segs, nc * sizeof *ns);
      if (!ns) {
        poom(p);
        goto fail;
      }
      q->segs = ns;
      cap = nc;
    }
    struct segment *sg = &q->segs[q->n++];
    memset(sg, 0, sizeof *sg);
    if (c == '[') {
      if (parse_bracket(p, sg) < 0) goto fail;
      continue;
    }
    p->pos++;
    if (cur(p) == '.') {
      p->pos++;
      sg->descendant = 1;
      if (cur(p) == '[') {
        if (parse_bracket(p, sg) < 0) goto fail;
        continue;
      }
    }
    if (parse_shorthand(p, sg) < 0) goto fail;
  }
  return q;
fail:
  query_free(q);
  return NULL;
}

static int query_is_singular(const struct query *q) {
  for (size_t i = 0; i < q->n; i++)
    if (!q->segs[i].singular) return 0;
  return 1;
}

static struct expr *new_expr(struct parser *p, enum ex_kind kind) {
  struct expr *e = xcalloc(p, 1, sizeof *e);
  if (e) e->kind = kind;
  return e;
}

/* A number literal (RFC 9535 §2.3.5.1): (int / "-0") [frac] [exp]. */
static json_t *parse_number(struct parser *p) {
  size_t start = p->pos;
  int is_int = 1;
  if (cur(p) == '-') p->pos++;
  if (!is_digit(cur(p))) {
    perr(p, "invalid number");
    return NULL;
  }
  if (cur(p) == '0') {
    p->pos++;
    if (is_digit(cur(p))) {
      perr(p, "leading zeros are not allowed");
      return NULL;
    }
  } else {
    while (is_digit(cur(p))) p->pos++;
  }
  if (cur(p) == '.') {
    is_int = 0;
    p->pos++;
    if (!is_digit(cur(p))) {
      perr(p, "expected a digit after '.'");
      return NULL;
    }
    while (is_digit(cur(p))) p->pos++;
  }
  if (cur(p) == 'e' || cur(p) == 'E') {
    is_int = 0;
    p->pos++;
    if (cur(p) == '+' || cur(p) == '-') p->pos++;
    if (!is_digit(cur(p))) {
      perr(p, "expected a digit in the exponent");
      return NULL;
    }
    while (is_digit(cur(p))) p->pos++;
  }
  char tmp[64];
  size_t n = p->pos - start;
  if (n >= sizeof tmp) {
    /* long literals: only the value matters, parse as a double */
    char *big = malloc(n + 1);
    if (!big) {
      poom(p);
      return NULL;
    }
    memcpy(big, p->s + start, n);
    big[n] = 0;
    double d = strtod(big, NULL);
    free(big);
    return json_real(isfinite(d) ? d : (d > 0 ? 1.7976931348623157e308 : -1.7976931348623157e308));
  }
  memcpy(tmp, p->s + start, n);
  tmp[n] = 0;
  if (is_int) {
    errno = 0;
    long long v = strtoll(tmp, NULL, 10);
    if (errno == 0) return json_integer(v);
  }
  double d = strtod(tmp, NULL);
  if (!isfinite(d)) d = d > 0 ? 1.7976931348623157e308 : -1.7976931348623157e308;
  return json_real(d);
}

static enum ty expr_type(const struct expr *e) {
  switch (e->kind) {
    case EX_LIT: return TY_VALUE;
    case EX_QUERY: return TY_NODES;
    case EX_FUNC: return (e->fn == FN_MATCH || e->fn == FN_SEARCH) ? TY_LOGICAL : TY_VALUE;
    default: return TY_LOGICAL;
  }
}

/* May this expression stand where a ValueType is expected (comparison side, function argument)? */
static int is_value_expr(const struct expr *e) {
  if (e->kind == EX_LIT) return 1;
  if (e->kind == EX_QUERY) return query_is_singular(e->q);
  if (e->kind == EX_FUNC) return expr_type(e) == TY_VALUE;
  return 0;
}

static struct expr *parse_function(struct parser *p, const char *name, size_t name_len, size_t name_pos) {
  static const struct {
    const char *name;
    enum fn_kind kind;
    size_t nargs;
  } fns[] = {{"length", FN_LENGTH, 1}, {"count", FN_COUNT, 1}, {"match", FN_MATCH, 2},
             {"search", FN_SEARCH, 2}, {"value", FN_VALUE, 1}};
  size_t i;
  for (i = 0; i < sizeof fns / sizeof fns[0]; i++)
    if (strlen(fns[i].name) == name_len && memcmp(fns[i].name, name, name_len) == 0) break;
  if (i == sizeof fns / sizeof fns[0]) {
    p->pos = name_pos;
    perr(p, "unknown function '%.*s'", (int)name_len, name);
    return NULL;
  }
  struct expr *e = new_expr(p, EX_FUNC);
  if (!e) return NULL;
  e->fn = fns[i].kind;
  p->pos++; /* '(' */
  if (++p->depth > MAX_NEST) {
    perr(p, "expression nested too deeply");
    goto fail;
  }
  skip_ws(p);
  if (cur(p) != ')') {
    for (;;) {
      size_t arg_pos = p->pos;
      if (e->nargs == 2) {
        perr(p, "too many arguments to %s()", fns[i].name);
        goto fail;
      }
      struct expr *a = parse_or(p, 1);
      if (!a) goto fail;
      e->args[e->nargs++] = a;
      /* well-typedness of the argument against the parameter's declared type */
      int ok = (e->fn == FN_COUNT || e->fn == FN_VALUE) ? a->kind == EX_QUERY : is_value_expr(a);
      if (!ok) {
        p->pos = arg_pos;
        perr(p, "argument %zu of %s() must be %s", e->nargs, fns[i].name,
             (e->fn == FN_COUNT || e->fn == FN_VALUE) ? "a query (NodesType)"
                                                      : "a value: a literal, a singular query or a ValueType function");
        goto fail;
      }
      skip_ws(p);
      if (cur(p) == ',') {
        p->pos++;
        skip_ws(p);
        continue;
      }
      break;
    }
  }
  if (cur(p) != ')') {
    perr(p, "expected ',' or ')' in the call of %s()", fns[i].name);
    goto fail;
  }
  p->pos++;
  p->depth--;
  if (e->nargs != fns[i].nargs) {
    p->pos = name_pos;
    perr(p, "%s() takes %zu argument%s, got %zu", fns[i].name, fns[i].nargs, fns[i].nargs == 1 ? "" : "s",
         e->nargs);
    goto fail;
  }
  if ((e->fn == FN_MATCH || e->fn == FN_SEARCH) && e->args[1]->kind == EX_LIT && json_is_string(e->args[1]->lit))
    e->re = lt_iregexp_compile(json_string_value(e->args[1]->lit), json_string_length(e->args[1]->lit),
                               e->fn == FN_MATCH);
  return e;
fail:
  expr_free(e);
  return NULL;
}

/* literal / query / function call. */
static struct expr *parse_primary(struct parser *p) {
  int c = cur(p);
  if (c == '$' || c == '@') {
    p->pos++;
    struct expr *e = new_expr(p, EX_QUERY);
    if (!e) return NULL;
    e->q = parse_query_tail(p, c == '$');
    if (!e->q) {
      expr_free(e);
      return NULL;
    }
    return e;
  }
  if (c == '\'' || c == '"') {
    size_t n;
    char *s = parse_string(p, &n);
    if (!s) return NULL;
    struct expr *e = new_expr(p, EX_LIT);
    if (e) e->lit = json_stringn_nocheck(s, n);
    free(s);
    return e;
  }
  if (c == '-' || is_digit(c)) {
    json_t *num = parse_number(p);
    if (!num) return NULL;
    struct expr *e = new_expr(p, EX_LIT);
    if (!e) {
      json_decref(num);
      return NULL;
    }
    e->lit = num;
    return e;
  }
  if (c >= 'a' && c <= 'z') {
    size_t start = p->pos;
    while ((cur(p) >= 'a' && cur(p) <= 'z') || is_digit(cur(p)) || cur(p) == '_') p->pos++;
    size_t n = p->pos - start;
    if (cur(p) == '(') return parse_function(p, p->s + start, n, start);
    json_t *lit = NULL;
    if (n == 4 && !memcmp(p->s + start, "true", 4)) lit = json_true();
    else if (n == 5 && !memcmp(p->s + start, "false", 5)) lit = json_false();
    else if (n == 4 && !memcmp(p->s + start, "null", 4)) lit = json_null();
    if (!lit) {
      p->pos = start;
      perr(p, "expected a literal, a query or a function call");
      return NULL;
    }
    struct expr *e = new_expr(p, EX_LIT);
    if (e) e->lit = lit;
    return e;
  }
  perr(p, "expected a literal, a query, a function call or '('");
  return NULL;
}

/* A primary used as a test expression: a query (existence) or a LogicalType/NodesType function. */
static struct expr *as_logical(struct parser *p, struct expr *e, size_t pos) {
  if (!e) return NULL;
  if (e->kind == EX_QUERY) {
    struct expr *t = new_expr(p, EX_TEST);
    if (!t) {
      expr_free(e);
      return NULL;
    }
    t->a = e;
    return t;
  }
  if (e->kind == EX_FUNC && expr_type(e) == TY_VALUE) {
    p->pos = pos;
    perr(p, "a function returning a value cannot be used as a test; compare its result");
    expr_free(e);
    return NULL;
  }
  if (e->kind == EX_LIT) {
    p->pos = pos;
    perr(p, "a literal cannot be used as a test; compare it");
    expr_free(e);
    return NULL;
  }
  return e;
}

static int parse_cmp_op(struct parser *p, enum cmp_op *op) {
  int c = cur(p), d = at(p, 1);
  if (c == '=' && d == '=') *op = OP_EQ;
  else if (c == '!' && d == '=') *op = OP_NE;
  else if (c == '<' && d == '=') *op = OP_LE;
  else if (c == '>' && d == '=') *op = OP_GE;
  else if (c == '<') {
    *op = OP_LT;
    p->pos++;
    return 1;
  } else if (c == '>') {
    *op = OP_GT;
    p->pos++;
    return 1;
  } else {
    return 0;
  }
  p->pos += 2;
  return 1;
}

static struct expr *parse_basic(struct parser *p, int arg_mode) {
  size_t start = p->pos;
  if (cur(p) == '!') {
    p->pos++;
    skip_ws(p);
    struct expr *inner;
    size_t ipos = p->pos;
    if (++p->depth > MAX_NEST) {
      perr(p, "expression nested too deeply");
      return NULL;
    }
    if (cur(p) == '(') {
      inner = parse_basic(p, 0);
    } else {
      inner = as_logical(p, parse_primary(p), ipos);
    }
    p->depth--;
    if (!inner) return NULL;
    struct expr *n = new_expr(p, EX_NOT);
    if (!n) {
      expr_free(inner);
      return NULL;
    }
    n->a = inner;
    return n;
  }
  if (cur(p) == '(') {
    p->pos++;
    if (++p->depth > MAX_NEST) {
      perr(p, "expression nested too deeply");
      return NULL;
    }
    skip_ws(p);
    struct expr *e = parse_or(p, 0);
    if (!e) return NULL;
    skip_ws(p);
    if (cur(p) != ')') {
      perr(p, "expected ')'");
      expr_free(e);
      return NULL;
    }
    p->pos++;
    p->depth--;
    return e;
  }
  struct expr *left = parse_primary(p);
  if (!left) return NULL;
  size_t save = p->pos;
  skip_ws(p);
  enum cmp_op op;
  if (!parse_cmp_op(p, &op)) {
    p->pos = save;
    if (arg_mode) return left;
    return as_logical(p, left, start);
  }
  if (!is_value_expr(left)) {
    p->pos = start;
    perr(p, "left side of the comparison must be a literal, a singular query or a ValueType function");
    expr_free(left);
    return NULL;
  }
  skip_ws(p);
  size_t rpos = p->pos;
  struct expr *right = parse_primary(p);
  if (!right) {
    expr_free(left);
    return NULL;
  }
  if (!is_value_expr(right)) {
    p->pos = rpos;
    perr(p, "right side of the comparison must be a literal, a singular query or a ValueType function");
    expr_free(left);
    expr_free(right);
    return NULL;
  }
  struct expr *e = new_expr(p, EX_CMP);
  if (!e) {
    expr_free(left);
    expr_free(right);
    return NULL;
  }
  e->op = op;
  e->a = left;
  e->b = right;
  return e;
}

/* logical-or-expr (level 0, "||") and logical-and-expr (level 1, "&&"), left-associative. In
 * a function argument (arg_mode) a lone operand is returned as it is, so that the caller can
 * check its type; as soon as it is combined it must be a test. */
static struct expr *parse_logical(struct parser *p, int arg_mode, int level) {
  static const char ops[2][3] = {"||", "&&"};
  size_t start = p->pos;
  struct expr *left = level == 0 ? parse_logical(p, arg_mode, 1) : parse_basic(p, arg_mode);
  for (;;) {
    if (!left) return NULL;
    size_t save = p->pos;
    skip_ws(p);
    if (!(cur(p) == ops[level][0] && at(p, 1) == ops[level][1])) {
      p->pos = save;
      return left;
    }
    if (arg_mode && !(left = as_logical(p, left, start))) return NULL;
    p->pos += 2;
    skip_ws(p);
    struct expr *right = level == 0 ? parse_logical(p, 0, 1) : parse_basic(p, 0);
    struct expr *e = right ? new_expr(p, level == 0 ? EX_OR : EX_AND) : NULL;
    if (!e) {
      expr_free(left);
      expr_free(right);
      return NULL;
    }
    e->a = left;
    e->b = right;
    left = e;
  }
}

static struct expr *parse_or(struct parser *p, int arg_mode) { return parse_logical(p, arg_mode, 0); }

hub_err_t lt_jsonpath_compile(const char *expr, struct lt_jsonpath **out, char *errbuf, size_t errbuf_size) {
  *out = NULL;
  if (errbuf && errbuf_size) errbuf[0] = 0;
  if (!expr) return HUB_ERR_INVALID_ARG;
  struct parser p = {.s = expr, .len = strlen(expr), .errbuf = errbuf, .errbuf_size = errbuf_size};
  if (cur(&p) != '$') {
    perr(&p, "a JSONPath query starts with '$'");
    return HUB_ERR_QUERY;
  }
  p.pos++;
  struct query *q = parse_query_tail(&p, 1);
  if (!q) return p.oom ? HUB_ERR_NOMEM : HUB_ERR_QUERY;
  if (p.pos != p.len) {
    perr(&p, "unexpected '%c'", p.s[p.pos]);
    query_free(q);
    return HUB_ERR_QUERY;
  }
  struct lt_jsonpath *jp = calloc(1, sizeof *jp);
  if (!jp) {
    query_free(q);
    return HUB_ERR_NOMEM;
  }
  jp->q = q;
  *out = jp;
  return HUB_OK;
}

void lt_jsonpath_destroy(struct lt_jsonpath *path) {
  if (!path) return;
  query_free(path->q);
  free(path);
}

/* ------------------------------------------------------------------------------- evaluator */

/* Where a node sits, for normalized paths: its parent and the member name or array index. */
struct pnode {
  const struct pnode *parent;
  const char *key; /* NULL for an array index */
  size_t key_len;
  size_t index;
};

struct node {
  json_t *v;
  const struct pnode *path;
};

struct nodelist {
  struct node *items;
  size_t n, cap;
};

struct arena_block {
  struct arena_block *next;
  size_t used;
  struct pnode items[256];
};

struct ctx {
  json_t *root;
  int track; /* record paths (top-level query only) */
  int oom;
  struct arena_block *arena;
};

static void nl_push(struct ctx *c, struct nodelist *nl, json_t *v, const struct pnode *path) {
  if (c->oom) return;
  if (nl->n == nl->cap) {
    size_t nc = nl->cap ? nl->cap * 2 : 8;
    struct node *ni = realloc(nl->items, nc * sizeof *ni);
    if (!ni) {
      c->oom = 1;
      return;
    }
    nl->items = ni;
    nl->cap = nc;
  }
  nl->items[nl->n].v = v;
  nl->items[nl->n].path = path;
  nl->n++;
}

static const struct pnode *pn_new(struct ctx *c, const struct pnode *parent, const char *key, size_t key_len,
                                  size_t index) {
  if (!c->track || c->oom) return NULL;
  if (!c->arena || c->arena->used == sizeof c->arena->items / sizeof c->arena->items[0]) {
    struct arena_block *b = malloc(sizeof *b);
    if (!b) {
      c->oom = 1;
      return NULL;
    }
    b->next = c->arena;
    b->used = 0;
    c->arena = b;
  }
  struct pnode *pn = &c->arena->items[c->arena->used++];
  pn->parent = parent;
  pn->key = key;
  pn->key_len = key_len;
  pn->index = index;
  return pn;
}

static void child_member(struct ctx *c, struct nodelist *out, const struct node *n, const char *key, json_t *v) {
  size_t klen = json_object_iter_key_len(json_object_key_to_iter(key));
  nl_push(c, out, v, pn_new(c, n->path, key, klen, 0));
}

static void child_index(struct ctx *c, struct nodelist *out, const struct node *n, size_t i) {
  nl_push(c, out, json_array_get(n->v, i), pn_new(c, n->path, NULL, 0, i));
}

static int filter_true(struct ctx *c, const struct expr *e, json_t *current);

static int64_t normalize_index(int64_t i, int64_t len) { return i >= 0 ? i : len + i; }

static void apply_slice(struct ctx *c, struct nodelist *out, const struct node *n, const struct selector *s) {
  int64_t len = (int64_t)json_array_size(n->v);
  int64_t step = s->has_step ? s->step : 1;
  if (step == 0) return;
  int64_t start, end;
  if (step > 0) {
    start = s->has_start ? normalize_index(s->start, len) : 0;
    end = s->has_end ? normalize_index(s->end, len) : len;
    int64_t lower = start < 0 ? 0 : (start > len ? len : start);
    int64_t upper = end < 0 ? 0 : (end > len ? len : end);
    for (int64_t i = lower; i < upper; i += step) child_index(c, out, n, (size_t)i);
  } else {
    start = s->has_start ? normalize_index(s->start, len) : len - 1;
    end = s->has_end ? normalize_index(s->end, len) : -len - 1;
    int64_t upper = start < -1 ? -1 : (start > len - 1 ? len - 1 : start);
    int64_t lower = end < -1 ? -1 : (end > len - 1 ? len - 1 : end);
    for (int64_t i = upper; i > lower; i += step) child_index(c, out, n, (size_t)i);
  }
}

static void apply_selector(struct ctx *c, struct nodelist *out, const struct node *n, const struct selector *s) {
  json_t *v = n->v;
  switch (s->kind) {
    case SEL_NAME:
      if (json_is_object(v)) {
        /* the selector's copy of the name lives as long as the compiled path, which outlives the
         * nodelist and the paths written from it */
        json_t *m = json_object_getn(v, s->name, s->name_len);
        if (m) nl_push(c, out, m, pn_new(c, n->path, s->name, s->name_len, 0));
      }
      break;
    case SEL_WILD:
      if (json_is_object(v)) {
        const char *key;
        json_t *mv;
        json_object_foreach(v, key, mv) child_member(c, out, n, key, mv);
      } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) child_index(c, out, n, i);
      }
      break;
    case SEL_INDEX:
      if (json_is_array(v)) {
        int64_t len = (int64_t)json_array_size(v);
        int64_t i = normalize_index(s->index, len);
        if (i >= 0 && i < len) child_index(c, out, n, (size_t)i);
      }
      break;
    case SEL_SLICE:
      if (json_is_array(v)) apply_slice(c, out, n, s);
      break;
    case SEL_FILTER:
      if (json_is_object(v)) {
        const char *key;
        json_t *mv;
        json_object_foreach(v, key, mv) if (filter_true(c, s->filter, mv)) child_member(c, out, n, key, mv);
      } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
          if (filter_true(c, s->filter, json_array_get(v, i))) child_index(c, out, n, i);
      }
      break;
  }
}

/* Applies a descendant segment: the selectors to the node, then to each descendant in
 * document order (preorder, array elements ascending). */
static void apply_descendant(struct ctx *c, struct nodelist *out, const struct node *n, const struct segment *sg) {
  for (size_t k = 0; k < sg->n; k++) apply_selector(c, out, n, &sg->sels[k]);
  struct nodelist kids = {0};
  if (json_is_object(n->v)) {
    const char *key;
    json_t *mv;
    json_object_foreach(n->v, key, mv) child_member(c, &kids, n, key, mv);
  } else if (json_is_array(n->v)) {
    for (size_t i = 0; i < json_array_size(n->v); i++) child_index(c, &kids, n, i);
  }
  for (size_t i = 0; i < kids.n && !c->oom; i++) apply_descendant(c, out, &kids.items[i], sg);
  free(kids.items);
}

static struct nodelist eval_query(struct ctx *c, const struct query *q, json_t *current) {
  struct nodelist cur_nl = {0};
  nl_push(c, &cur_nl, q->absolute ? c->root : current, NULL);
  for (size_t i = 0; i < q->n && !c->oom; i++) {
    const struct segment *sg = &q->segs[i];
    struct nodelist next = {0};
    for (size_t j = 0; j < cur_nl.n && !c->oom; j++) {
      if (sg->descendant) {
        apply_descendant(c, &next, &cur_nl.items[j], sg);
      } else {
        for (size_t k = 0; k < sg->n; k++) apply_selector(c, &next, &cur_nl.items[j], &sg->sels[k]);
      }
    }
    free(cur_nl.items);
    cur_nl = next;
  }
  return cur_nl;
}

/* A ValueType result: NULL is "Nothing"; owned results are released by the caller. */
struct val {
  json_t *j;
  int owned;
};

static void val_clear(struct val *v) {
  if (v->owned) json_decref(v->j);
  v->j = NULL;
  v->owned = 0;
}

static int logical(struct ctx *c, const struct expr *e, json_t *current);

static struct val eval_value(struct ctx *c, const struct expr *e, json_t *current) {
  struct val r = {0};
  if (e->kind == EX_LIT) {
    r.j = e->lit;
    return r;
  }
  if (e->kind == EX_QUERY) {
    int track = c->track;
    c->track = 0;
    struct nodelist nl = eval_query(c, e->q, current);
    c->track = track;
    if (nl.n == 1) r.j = nl.items[0].v;
    free(nl.items);
    return r;
  }
  /* EX_FUNC with a ValueType result */
  switch (e->fn) {
    case FN_LENGTH: {
      struct val a = eval_value(c, e->args[0], current);
      if (json_is_string(a.j)) r.j = json_integer((json_int_t)lt_utf8_length(json_string_value(a.j), json_string_length(a.j)));
      else if (json_is_array(a.j)) r.j = json_integer((json_int_t)json_array_size(a.j));
      else if (json_is_object(a.j)) r.j = json_integer((json_int_t)json_object_size(a.j));
      r.owned = r.j != NULL;
      val_clear(&a);
      break;
    }
    case FN_COUNT:
    case FN_VALUE: {
      int track = c->track;
      c->track = 0;
      struct nodelist nl = eval_query(c, e->args[0]->q, current);
      c->track = track;
      if (e->fn == FN_COUNT) {
        r.j = json_integer((json_int_t)nl.n);
        r.owned = 1;
      } else if (nl.n == 1) {
        r.j = nl.items[0].v;
      }
      free(nl.items);
      break;
    }
    default: break;
  }
  if (r.owned && !r.j) c->oom = 1;
  return r;
}

static int strings_less(json_t *a, json_t *b) {
  size_t la = json_string_length(a), lb = json_string_length(b);
  int r = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);
  return r < 0 || (r == 0 && la < lb); /* UTF-8 byte order is code point order */
}

/* RFC 9535 §2.3.5.2.2: Nothing equals only Nothing; < only between numbers or strings. */
static int cmp_eq(json_t *a, json_t *b) {
  if (!a || !b) return !a && !b;
  return lt_json_equal(a, b);
}
static int cmp_lt(json_t *a, json_t *b) {
  if (!a || !b) return 0;
  if (json_is_number(a) && json_is_number(b)) return lt_json_number_cmp(a, b) < 0;
  if (json_is_string(a) && json_is_string(b)) return strings_less(a, b);
  return 0;
}

static int eval_regex(struct ctx *c, const struct expr *e, json_t *current) {
  struct val s = eval_value(c, e->args[0], current);
  struct val pat = eval_value(c, e->args[1], current);
  int r = 0;
  if (json_is_string(s.j) && json_is_string(pat.j)) {
    if (e->re) {
      r = lt_iregexp_test(e->re, json_string_value(s.j), json_string_length(s.j));
    } else {
      pcre2_code *re = lt_iregexp_compile(json_string_value(pat.j), json_string_length(pat.j), e->fn == FN_MATCH);
      if (re) r = lt_iregexp_test(re, json_string_value(s.j), json_string_length(s.j));
      pcre2_code_free(re);
    }
  }
  val_clear(&s);
  val_clear(&pat);
  return r;
}

static int logical(struct ctx *c, const struct expr *e, json_t *current) {
  switch (e->kind) {
    case EX_OR: return logical(c, e->a, current) || logical(c, e->b, current);
    case EX_AND: return logical(c, e->a, current) && logical(c, e->b, current);
    case EX_NOT: return !logical(c, e->a, current);
    case EX_TEST: {
      int track = c->track;
      c->track = 0;
      struct nodelist nl = eval_query(c, e->a->q, current);
      c->track = track;
      int r = nl.n > 0;
      free(nl.items);
      return r;
    }
    case EX_FUNC: return eval_regex(c, e, current);
    case EX_CMP: {
      struct val a = eval_value(c, e->a, current), b = eval_value(c, e->b, current);
      int r = 0;
      switch (e->op) {
        case OP_EQ: r = cmp_eq(a.j, b.j); break;
        case OP_NE: r = !cmp_eq(a.j, b.j); break;
        case OP_LT: r = cmp_lt(a.j, b.j); break;
        case OP_LE: r = cmp_lt(a.j, b.j) || cmp_eq(a.j, b.j); break;
        case OP_GT: r = cmp_lt(b.j, a.j); break;
        case OP_GE: r = cmp_lt(b.j, a.j) || cmp_eq(a.j, b.j); break;
      }
      val_clear(&a);
      val_clear(&b);
      return r;
    }
    default: return 0;
  }
}

static int filter_true(struct ctx *c, const struct expr *e, json_t *current) {
  int track = c->track;
  c->track = 0;
  int r = logical(c, e, current);
  c->track = track;
  return r;
}

static void ctx_free(struct ctx *c) {
  while (c->arena) {
    struct arena_block *b = c->arena;
    c->arena = b->next;
    free(b);
  }
}

json_t *lt_jsonpath_query_new(const struct lt_jsonpath *path, json_t *root) {
  if (!path || !root) return NULL;
  struct ctx c = {.root = root};
  struct nodelist nl = eval_query(&c, path->q, root);
  json_t *arr = c.oom ? NULL : json_array();
  for (size_t i = 0; arr && i < nl.n; i++) {
    if (json_array_append(arr, nl.items[i].v) < 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  free(nl.items);
  ctx_free(&c);
  return arr;
}

static void path_write(struct lt_buf *b, const struct pnode *pn) {
  if (!pn) {
    lt_buf_put(b, "$", 1);
    return;
  }
  path_write(b, pn->parent);
  char tmp[32];
  if (!pn->key) {
    int n = snprintf(tmp, sizeof tmp, "[%zu]", pn->index);
    lt_buf_put(b, tmp, (size_t)n);
    return;
  }
  lt_buf_put(b, "['", 2);
  for (size_t i = 0; i < pn->key_len; i++) {
    unsigned char ch = (unsigned char)pn->key[i];
    const char *esc = NULL;
    switch (ch) {
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      case '\'': esc = "\\'"; break;
      case '\\': esc = "\\\\"; break;
      default: break;
    }
    if (esc) {
      lt_buf_put(b, esc, strlen(esc));
    } else if (ch < 0x20) {
      int n = snprintf(tmp, sizeof tmp, "\\u%04x", ch);
      lt_buf_put(b, tmp, (size_t)n);
    } else {
      lt_buf_put(b, (const char *)&pn->key[i], 1);
    }
  }
  lt_buf_put(b, "']", 2);
}

json_t *lt_jsonpath_paths_new(const struct lt_jsonpath *path, json_t *root) {
  if (!path || !root) return NULL;
  struct ctx c = {.root = root, .track = 1};
  struct nodelist nl = eval_query(&c, path->q, root);
  json_t *arr = c.oom ? NULL : json_array();
  for (size_t i = 0; arr && i < nl.n; i++) {
    struct lt_buf b = {0};
    path_write(&b, nl.items[i].path);
    json_t *s = b.oom ? NULL : json_stringn(b.s, b.len);
    free(b.s);
    if (!s || json_array_append_new(arr, s) < 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  free(nl.items);
  ctx_free(&c);
  return arr;
}
