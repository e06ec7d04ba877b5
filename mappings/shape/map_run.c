/* The mapping engine, running: rules over JSON (JSONPath) or XML (XPath) input into a fresh JSON
 * value or XML document, serialised only when every rule and both contracts passed; XSLT
 * mappings run with file and network access forbidden. Loading is map.c. */
#include "mappings/shape/map.h"

#include <errno.h>
#include <jansson.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <libxslt/security.h>
#include <libxslt/transform.h>
#include <libxslt/variables.h>
#include <libxslt/xsltutils.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/core/log.h"
#include "hub/core/msg.h"
#include "hub/core/xml.h"
#include "mappings/shape/json.h"
#include "mappings/shape/map_fn.h"
#include "mappings/shape/map_internal.h"

/* `lienthong test`'s fixed clock (0: the real one) and its UUID counter */
static int64_t fixed_clock_ms;
static unsigned long fixed_uuid_counter;
static uint64_t fixed_uuid_seed, fixed_uuid_state;

void lt_map_set_fixed_clock_seed(int64_t epoch_ms, uint64_t uuid_seed) {
  fixed_clock_ms = epoch_ms;
  fixed_uuid_counter = 0;
  fixed_uuid_seed = fixed_uuid_state = uuid_seed;
}

void lt_map_set_fixed_clock(int64_t epoch_ms) {
  lt_map_set_fixed_clock_seed(epoch_ms, 0);
}

/* splitmix64: a seeded, reproducible stream for test UUIDs (not for anything secret) */
static uint64_t next_seeded(void) {
  uint64_t z = (fixed_uuid_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Where evaluation is: the current input element and the output container it writes into. */
struct scope {
  const struct scope *parent;
  const struct src *each; /* how this element was selected from the parent, for error paths */
  size_t index;
  json_t *jcur;
  xmlNodePtr xcur;
  json_t *jout;
  xmlNodePtr xout;
};

struct run {
  const struct lt_map *m;
  json_t *jroot;
  xmlDocPtr xin;
  xmlXPathContextPtr xpc;
  char xerr[256];
  char *eb;
  size_t es;
};

/* A readable XPath of an input node: names as written (prefix:local), [n] only where
 * same-named siblings make it necessary; attributes as @name, text as text(). */
static void node_path(xmlNodePtr node, char *out, size_t size) {
  char tmp[1400];
  out[0] = '\0';
  for (xmlNodePtr n = node; n && n->type != XML_DOCUMENT_NODE; n = n->parent) {
    char step[300];
    const char *pfx = n->ns && n->ns->prefix ? (const char *)n->ns->prefix : NULL;
    if (n->type == XML_ATTRIBUTE_NODE) {
      snprintf(step, sizeof step, "@%s%s%s", pfx ? pfx : "", pfx ? ":" : "", (const char *)n->name);
    } else if (n->type == XML_ELEMENT_NODE) {
      int idx = 0, count = 0;
      for (xmlNodePtr x = n->parent ? n->parent->children : NULL; x; x = x->next)
        if (x->type == XML_ELEMENT_NODE && xmlStrEqual(x->name, n->name) && x->ns == n->ns) {
          count++;
          if (x == n) idx = count;
        }
      if (count > 1)
        snprintf(step, sizeof step, "%s%s%s[%d]", pfx ? pfx : "", pfx ? ":" : "", (const char *)n->name, idx);
      else
        snprintf(step, sizeof step, "%s%s%s", pfx ? pfx : "", pfx ? ":" : "", (const char *)n->name);
    } else {
      snprintf(step, sizeof step, "text()");
    }
    int w = snprintf(tmp, sizeof tmp, "/%s%s", step, out);
    if (w < 0 || (size_t)w >= size) break; /* too deep to show: keep the innermost steps */
    memcpy(out, tmp, (size_t)w + 1);
  }
  if (!out[0]) snprintf(out, size, "/");
}

/* The input path of a scope's element: "$['data'][0]" (JSON) or "/edXML/..." (XML). */
static void scope_path(const struct run *run, const struct scope *sc, char *out, size_t size) {
  if (run->m->in == LT_MAP_XML) {
    node_path(sc->xcur, out, size);
    return;
  }
  if (!sc->parent) {
    snprintf(out, size, "$");
    return;
  }
  char base[1024];
  scope_path(run, sc->parent, base, sizeof base);
  json_t *paths = lt_jsonpath_paths_new(sc->each->jp, sc->each->from_doc ? run->jroot : sc->parent->jcur);
  const char *p = json_string_value(json_array_get(paths, sc->index));
  if (p && sc->each->from_doc)
    snprintf(out, size, "%s", p);
  else
    snprintf(out, size, "%s%s", base, p ? p + 1 : "");
  json_decref(paths);
}

/* Where a source reads from: the one matched node, or the scope and the query. */
static void src_path(const struct run *run, const struct scope *sc, const struct src *s, char *out, size_t size) {
  char base[1024];
  if (s->kind != SRC_PATH) {
    scope_path(run, sc, out, size);
    return;
  }
  if (run->m->in == LT_MAP_JSON) {
    json_t *paths = lt_jsonpath_paths_new(s->jp, s->from_doc ? run->jroot : sc->jcur);
    scope_path(run, sc, base, sizeof base);
    const char *p = json_array_size(paths) == 1 ? json_string_value(json_array_get(paths, 0)) : NULL;
    if (p && s->from_doc)
      snprintf(out, size, "%s", p);
    else if (p)
      snprintf(out, size, "%s%s", base, p + 1);
    else
      snprintf(out, size, "%s (query %s)", s->from_doc ? "$" : base, s->expr);
    json_decref(paths);
    return;
  }
  run->xpc->node = s->from_doc ? xmlDocGetRootElement(run->xin) : sc->xcur;
  xmlXPathObjectPtr o = xmlXPathCompiledEval(s->xp, run->xpc);
  if (o && o->type == XPATH_NODESET && o->nodesetval && o->nodesetval->nodeNr == 1) {
    node_path(o->nodesetval->nodeTab[0], out, size);
  } else {
    scope_path(run, sc, base, sizeof base);
    snprintf(out, size, "%s (xpath %s)", s->from_doc ? "/" : base, s->expr);
  }
  xmlXPathFreeObject(o);
}

static int fail(struct run *run, const struct scope *sc, const struct src *s, const struct hub_node *at,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "MAPPING:LINE: input PATH: reason" */
static int fail(struct run *run, const struct scope *sc, const struct src *s, const struct hub_node *at,
                const char *fmt, ...) {
  char reason[1024], where[1400] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  if (sc) {
    char p[1300];
    if (s)
      src_path(run, sc, s, p, sizeof p);
    else
      scope_path(run, sc, p, sizeof p);
    snprintf(where, sizeof where, "input %s: ", p);
  }
  snprintf(run->eb, run->es, "%s:%d: %s%s", run->m->path, at ? at->line : 0, where, reason);
  return -1;
}

/* A scalar as text (malloc'd); objects and arrays are refused. */
static char *scalar_text(const json_t *v) {
  char buf[64];
  switch (json_typeof(v)) {
    case JSON_STRING: return strndup(json_string_value(v), json_string_length(v));
    case JSON_INTEGER: snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v)); return strdup(buf);
    case JSON_REAL: {
      double d = json_real_value(v);
      if (d == floor(d) && fabs(d) < 1e15)
        snprintf(buf, sizeof buf, "%.0f", d);
      else if (lt_json_real_text(d, buf, sizeof buf) < 0)
        return NULL;
      return strdup(buf);
    }
    case JSON_TRUE: return strdup("true");
    case JSON_FALSE: return strdup("false");
    case JSON_NULL: return strdup("");
    default: return NULL;
  }
}

static const char *type_name(const json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_NULL: return "null";
    default: return "a boolean";
  }
}

static void quote(const json_t *v, char *out, size_t size) {
  char *t = scalar_text(v);
  if (!t) {
    snprintf(out, size, "%s", type_name(v));
  } else {
    char esc[200];
    hub_json_escape(esc, sizeof esc, t, strlen(t));
    snprintf(out, size, "\"%s\"", esc);
  }
  free(t);
}

static int plain_integer(const char *s) {
  const char *p = s + (*s == '-');
  if (!*p) return 0;
  for (; *p; p++)
    if (*p < '0' || *p > '9') return 0;
  return 1;
}

/* "100.000", "1.234.567": dots between groups of exactly three digits, as Vietnamese writes
 * thousands. As a decimal it would silently be a thousand times smaller. */
static int vn_grouped(const char *s) {
  const char *p = s + (*s == '-');
  size_t lead = strspn(p, "0123456789");
  if (!lead || lead > 3 || p[lead] != '.') return 0;
  for (p += lead; *p == '.'; p += 4)
    if (strspn(p + 1, "0123456789") < 3 || (p[4] && p[4] != '.')) return 0;
  return !*p;
}

static int plain_decimal(const char *s) {
  const char *p = s + (*s == '-');
  int digits = 0, dot = 0;
  for (; *p; p++) {
    if (*p >= '0' && *p <= '9')
      digits++;
    else if (*p == '.' && !dot && digits)
      dot = 1;
    else
      return 0;
  }
  return digits && p[-1] != '.';
}

/* count, length, sum and join over a list (`all: true` or an array value). */
static json_t *apply_list_fn(struct run *run, const struct scope *sc, const struct src *s, const struct fn *f,
                             json_t *v) {
  const char *name = f->kind == FN_COUNT ? "count" : f->kind == FN_SUM ? "sum" : f->kind == FN_JOIN ? "join" : "length";
  if (!json_is_array(v))
    return fail(run, sc, s, f->at, "%s needs a list (all: true), got %s", name, type_name(v)), NULL;
  size_t n = json_array_size(v);
  if (f->kind == FN_COUNT || f->kind == FN_LENGTH) return json_integer((json_int_t)n);
  if (f->kind == FN_JOIN) {
    struct lt_buf b = {0};
    lt_buf_put(&b, "", 0);
    for (size_t i = 0; i < n; i++) {
      char *t = scalar_text(json_array_get(v, i));
      if (!t) {
        free(b.s);
        return fail(run, sc, s, f->at, "join needs scalars, item %zu is %s", i, type_name(json_array_get(v, i))), NULL;
      }
      if (i) lt_buf_str(&b, f->from);
      lt_buf_str(&b, t);
      free(t);
    }
    json_t *out = b.oom ? NULL : json_stringn_nocheck(b.s, b.len);
    free(b.s);
    return out ? out : (fail(run, NULL, NULL, f->at, "out of memory"), NULL);
  }
  /* sum: integers stay exact; any real or decimal text makes the sum a number */
  long long isum = 0;
  double dsum = 0;
  int real = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *x = json_array_get(v, i);
    const char *t = json_string_value(x);
    if (json_is_integer(x) || (t && plain_integer(t))) {
      long long k = json_is_integer(x) ? (long long)json_integer_value(x) : strtoll(t, NULL, 10);
      if (__builtin_add_overflow(isum, k, &isum)) return fail(run, sc, s, f->at, "sum overflows"), NULL;
      dsum += (double)k;
    } else if (json_is_real(x) || (t && plain_decimal(t))) {
      dsum += json_is_real(x) ? json_real_value(x) : strtod(t, NULL);
      real = 1;
    } else {
      char q[256];
      quote(x, q, sizeof q);
      return fail(run, sc, s, f->at, "sum needs numbers, item %zu is %s", i, q), NULL;
    }
  }
  return real ? json_real(dsum) : json_integer((json_int_t)isum);
}

/* Applies one function; returns a new value or NULL after fail(). */
static json_t *apply_fn(struct run *run, const struct scope *sc, const struct src *s, const struct fn *f, json_t *v) {
  char q[256];
  if (f->kind == FN_LOOKUP) {
    char *key = scalar_text(v);
    if (!key) return fail(run, sc, s, f->at, "lookup '%s' needs a scalar, got %s", f->lookup->name, type_name(v)), NULL;
    json_t *r = json_object_get(f->lookup->values, key);
    if (!r) r = f->lookup->def;
    if (!r) {
      quote(v, q, sizeof q);
      fail(run, sc, s, f->at, "%s is not in lookup '%s'", q, f->lookup->name);
    }
    free(key);
    return r ? json_incref(r) : NULL;
  }
  if (f->kind == FN_INTEGER || f->kind == FN_NUMBER) {
    if (json_is_integer(v) || (f->kind == FN_NUMBER && json_is_real(v))) return json_incref(v);
    if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) && fabs(json_real_value(v)) < 9e15)
      return json_integer((json_int_t)json_real_value(v));
    if (json_is_string(v)) {
      const char *t = json_string_value(v);
      errno = 0;
      if (plain_integer(t)) {
        long long iv = strtoll(t, NULL, 10);
        if (!errno) return json_integer(iv);
      } else if (f->kind == FN_NUMBER && plain_decimal(t)) {
        double d = strtod(t, NULL);
        if (!errno && isfinite(d)) return json_real(d);
      }
    }
    quote(v, q, sizeof q);
    return fail(run, sc, s, f->at, "expected %s, got %s", f->kind == FN_INTEGER ? "an integer" : "a number", q), NULL;
  }
  if (f->kind == FN_BOOLEAN) {
    if (json_is_boolean(v)) return json_incref(v);
    const char *t = json_string_value(v);
    if ((t && (!strcmp(t, "true") || !strcmp(t, "1"))) || (json_is_integer(v) && json_integer_value(v) == 1))
      return json_true();
    if ((t && (!strcmp(t, "false") || !strcmp(t, "0"))) || (json_is_integer(v) && json_integer_value(v) == 0))
      return json_false();
    quote(v, q, sizeof q);
    return fail(run, sc, s, f->at, "expected a boolean (true/false/1/0), got %s", q), NULL;
  }
  if (f->kind == FN_COUNT || f->kind == FN_SUM || f->kind == FN_JOIN || (f->kind == FN_LENGTH && json_is_array(v)))
    return apply_list_fn(run, sc, s, f, v);
  if (f->kind == FN_LENGTH && json_is_string(v))
    return json_integer((json_int_t)lt_utf8_length(json_string_value(v), json_string_length(v)));
  char *t = scalar_text(v), *r = NULL;
  if (!t) return fail(run, sc, s, f->at, "expected a scalar value, got %s", type_name(v)), NULL;
  if (!lt_map_utf8_valid(t, strlen(t)) || (json_is_string(v) && strlen(t) != json_string_length(v))) {
    free(t);
    return fail(run, sc, s, f->at, "text contains a NUL byte or invalid UTF-8"), NULL;
  }
  char buf[512], why[300];
  switch (f->kind) {
    case FN_TRIM: r = lt_map_trim(t); break;
    case FN_TITLE:
      r = lt_map_utf8_text(t, LT_MAP_TITLE);
      break;
    case FN_UNACCENT:
      r = lt_map_utf8_text(t, LT_MAP_UNACCENT);
      break;
    case FN_FOLD:
      r = lt_map_utf8_text(t, LT_MAP_FOLD);
      break;
    case FN_PAD:
      r = lt_map_pad(t, f->width, f->from, f->left);
      break;
    case FN_BASE64_ENCODE:
      r = lt_map_base64_encode(t, strlen(t));
      break;
    case FN_BASE64_DECODE: {
      size_t dl = 0;
      unsigned char *d = lt_map_base64_decode(t, &dl);
      if (!d || !lt_map_utf8_valid((const char *)d, dl)) {
        free(d);
        quote(v, q, sizeof q);
        free(t);
        return fail(run, sc, s, f->at, "%s is not base64 of UTF-8 text", q), NULL;
      }
      r = (char *)d;
      break;
    }
    case FN_PARSE_NUMBER: {
      char num[128];
      if (lt_map_number_parse(t, f->group, f->point, num, sizeof num)) {
        quote(v, q, sizeof q);
        free(t);
        return fail(run, sc, s, f->at, "%s is not a number written with group \"%s\" and point \"%s\"", q, f->group,
                    f->point),
               NULL;
      }
      free(t);
      errno = 0;
      if (!strchr(num, '.')) {
        long long iv = strtoll(num, NULL, 10);
        if (!errno) return json_integer(iv);
      }
      double d = strtod(num, NULL);
      if (errno || !isfinite(d)) return fail(run, sc, s, f->at, "number out of range"), NULL;
      return json_real(d);
    }
    case FN_REGEX_REPLACE: {
      PCRE2_SIZE olen = strlen(t) * 2 + 64;
      pcre2_match_context *mc = pcre2_match_context_create(NULL);
      int rc = PCRE2_ERROR_NOMEMORY;
      for (int tries = 0; mc && rc == PCRE2_ERROR_NOMEMORY && tries < 8; tries++) {
        free(r);
        if (!(r = malloc(olen))) break;
        pcre2_set_match_limit(mc, 1000000);
        pcre2_set_depth_limit(mc, 10000);
        PCRE2_SIZE have = olen;
        rc = pcre2_substitute(f->re, (PCRE2_SPTR)t, strlen(t), 0,
                              PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH, NULL, mc, (PCRE2_SPTR)f->to,
                              strlen(f->to), (PCRE2_UCHAR *)r, &have);
        if (rc == PCRE2_ERROR_NOMEMORY) olen = have + 1;
      }
      pcre2_match_context_free(mc);
      if (rc < 0) {
        PCRE2_UCHAR m[160];
        pcre2_get_error_message(rc, m, sizeof m);
        free(r), free(t);
        /* a limit hit is said as such, never taken as "no match" */
        return fail(run, sc, s, f->at, "regex_replace '%s': %s", f->from, (char *)m), NULL;
      }
      break;
    }
    case FN_UPPER:
    case FN_LOWER: r = lt_map_utf8_case(t, f->kind == FN_UPPER); break;
    case FN_SHA256: hub_sha256_hex(t, strlen(t), buf), r = strdup(buf); break;
    case FN_STRING: r = strdup(t); break;
    case FN_SUBSTRING: r = lt_map_utf8_substring(t, f->start, f->len); break;
    case FN_DATE: {
      int64_t es;
      int ms;
      int bad = lt_map_date_parse(t, f->from, f->zone_in, &es, &ms, why, sizeof why);
      for (int i = 0; bad && i < 4 && f->alt[i]; i++) {
        char why2[300];
        bad = lt_map_date_parse(t, f->alt[i], f->zone_in, &es, &ms, why2, sizeof why2);
        if (bad && strstr(why2, "not a real")) snprintf(why, sizeof why, "%s", why2);
      }
      if (bad && f->alt[0] && !strstr(why, "not a real")) {
        quote(v, q, sizeof q);
        int w = snprintf(why, sizeof why, "%s matches none of the date patterns \"%s\"", q, f->from);
        for (int i = 0; i < 4 && f->alt[i] && w > 0 && (size_t)w < sizeof why; i++)
          w += snprintf(why + w, sizeof why - (size_t)w, ", \"%s\"", f->alt[i]);
      }
      if (bad) {
        free(t);
        return fail(run, sc, s, f->at, "%s", why), NULL;
      }
      if (lt_map_date_format(es, ms, f->to, f->zone_out, buf, sizeof buf) >= 0) r = strdup(buf);
      break;
    }
    case FN_FORMAT_NUMBER:
    case FN_MONEY: {
      char num[256];
      if (json_is_string(v) && vn_grouped(t)) {
        quote(v, q, sizeof q);
        free(t);
        return fail(run, sc, s, f->at,
                    "%s looks like Vietnamese digit grouping, not a decimal point: read it with parse_number first", q),
               NULL;
      }
      if (lt_map_number_format(t, f->decimals, f->group, f->point, num, sizeof num)) {
        quote(v, q, sizeof q);
        free(t);
        return fail(run, sc, s, f->at, "expected a decimal number, got %s", q), NULL;
      }
      if (f->kind == FN_MONEY && f->symbol && *f->symbol)
        snprintf(buf, sizeof buf, f->symbol_first ? "%2$s%1$s" : "%1$s %2$s", num, f->symbol);
      else
        snprintf(buf, sizeof buf, "%s", num);
      r = strdup(buf);
      break;
    }
    case FN_REPLACE:
    case FN_STRIP_PREFIX: {
      size_t ol = strlen(f->from);
      if (f->kind == FN_STRIP_PREFIX) {
        r = strdup(strncmp(t, f->from, ol) ? t : t + ol);
        break;
      }
      size_t nl = strlen(f->to), cnt = 0;
      for (const char *p = strstr(t, f->from); p; p = strstr(p + ol, f->from)) cnt++;
      size_t tl = strlen(t) + cnt * nl + 1;
      if (!(r = malloc(tl))) break;
      char *o = r;
      const char *p = t, *hit;
      while ((hit = strstr(p, f->from))) {
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, f->to, nl);
        o += nl;
        p = hit + ol;
      }
      memcpy(o, p, strlen(p) + 1);
      break;
    }
    default: break;
  }
  free(t);
  if (!r) return fail(run, sc, s, f->at, "function failed (invalid UTF-8 or out of memory)"), NULL;
  json_t *out = json_stringn_nocheck(r, strlen(r));
  free(r);
  return out;
}

static int eval_src(struct run *run, const struct scope *sc, const struct src *s, json_t **out);

static json_t *xpath_value(struct run *run, const struct scope *sc, const struct src *s, xmlXPathObjectPtr o,
                           int *err) {
  *err = 0;
  switch (o->type) {
    case XPATH_NODESET: {
      int n = o->nodesetval ? o->nodesetval->nodeNr : 0;
      if (!n) return NULL;
      if (n > 1 && !s->first) {
        *err = 1;
        fail(run, sc, s, s->at, "XPath %s matched %d nodes where one value is expected (use each)", s->expr, n);
        return NULL;
      }
      xmlChar *t = xmlXPathCastNodeToString(o->nodesetval->nodeTab[0]);
      json_t *v = t ? json_string((const char *)t) : NULL;
      xmlFree(t);
      return v;
    }
    case XPATH_STRING: return json_string((const char *)o->stringval);
    case XPATH_BOOLEAN: return json_boolean(o->boolval);
    case XPATH_NUMBER:
      if (isnan(o->floatval)) return NULL;
      if (o->floatval == floor(o->floatval) && fabs(o->floatval) < 9e15) return json_integer((json_int_t)o->floatval);
      return json_real(o->floatval);
    default:
      *err = 1;
      fail(run, sc, s, s->at, "XPath %s gave an unsupported result type", s->expr);
      return NULL;
  }
}

static xmlXPathObjectPtr xpath_eval(struct run *run, const struct scope *sc, const struct src *s) {
  run->xpc->node = s->from_doc ? xmlDocGetRootElement(run->xin) : sc->xcur;
  run->xerr[0] = '\0';
  xmlXPathObjectPtr o = xmlXPathCompiledEval(s->xp, run->xpc);
  if (!o) fail(run, sc, NULL, s->at, "XPath %s failed: %s", s->expr, run->xerr[0] ? run->xerr : "evaluation error");
  return o;
}

/* How many nodes a JSONPath source selects, and the first (borrowed: a node of the input). */
static size_t select_one(const struct run *run, const struct scope *sc, const struct src *s, json_t **first) {
  json_t *v = s->from_doc ? run->jroot : sc->jcur;
  *first = NULL;
  if (s->simple) {
    for (size_t i = 0; v && i < s->n_names; i++) v = json_object_get(v, s->names[i]);
    if (!v) return 0;
    if (!s->simple_star) return *first = v, 1;
    if (json_is_array(v)) return *first = json_array_get(v, 0), json_array_size(v);
    if (json_is_object(v)) return *first = json_object_iter_value(json_object_iter(v)), json_object_size(v);
    return 0;
  }
  json_t *res = lt_jsonpath_query_new(s->jp, v);
  size_t n = json_array_size(res);
  *first = json_array_get(res, 0);
  json_decref(res);
  return n;
}

/* `all: true`: every match as an array (JSON nodes as they are, XML nodes as their text). */
static int eval_all(struct run *run, const struct scope *sc, const struct src *s, json_t **out) {
  if (run->m->in == LT_MAP_JSON) {
    *out = lt_jsonpath_query_new(s->jp, s->from_doc ? run->jroot : sc->jcur);
    return *out ? 0 : fail(run, NULL, NULL, s->at, "out of memory");
  }
  xmlXPathObjectPtr o = xpath_eval(run, sc, s);
  if (!o) return -1;
  json_t *arr = json_array();
  int n = o->type == XPATH_NODESET && o->nodesetval ? o->nodesetval->nodeNr : 0;
  for (int i = 0; arr && i < n; i++) {
    xmlChar *t = xmlXPathCastNodeToString(o->nodesetval->nodeTab[i]);
    if (!t || json_array_append_new(arr, json_string((const char *)t))) json_decref(arr), arr = NULL;
    xmlFree(t);
  }
  xmlXPathFreeObject(o);
  *out = arr;
  return arr ? 0 : fail(run, NULL, NULL, s->at, "out of memory");
}

/* Evaluates without default or functions: *out is NULL when nothing matched. */
static int eval_raw(struct run *run, const struct scope *sc, const struct src *s, json_t **out) {
  char buf[64];
  *out = NULL;
  switch (s->kind) {
    case SRC_NONE: return 0;
    case SRC_VALUE: *out = json_incref(s->literal); return 0;
    case SRC_UUID:
      if (fixed_clock_ms && fixed_uuid_seed) {
        uint64_t a = next_seeded(), b = next_seeded();
        snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16 & 0xffff),
                 (unsigned)(a & 0xfff), (unsigned)(0x8000 | (b >> 48 & 0x3fff)),
                 (unsigned long long)(b & 0xffffffffffffull));
      } else if (fixed_clock_ms) {
        snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012lu", ++fixed_uuid_counter);
      } else {
        hub_uuid7(buf);
      }
      *out = json_string(buf);
      return 0;
    case SRC_NOW: {
      struct timespec ts;
      int64_t ms = fixed_clock_ms;
      if (!ms) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
      }
      /* the hub's home zone: +07:00, so a `date` pattern without XXX reads it back right */
      lt_map_date_format(ms / 1000, (int)(ms % 1000), "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", 7 * 60, buf, sizeof buf);
      *out = json_string(buf);
      return 0;
    }
    case SRC_CONCAT: {
      size_t len = 0, cap = 256;
      char *acc = malloc(cap);
      if (!acc) return fail(run, NULL, NULL, s->at, "out of memory");
      size_t present = 0;
      for (size_t i = 0; i < s->n_parts; i++) {
        json_t *pv;
        if (eval_src(run, sc, &s->parts[i], &pv)) {
          free(acc);
          return -1;
        }
        if (pv && s->separator && json_is_string(pv) && !json_string_length(pv)) json_decref(pv), pv = NULL;
        if (!pv && (s->parts[i].optional || s->separator)) continue; /* skipped: adds nothing */
        if (!pv) {
          free(acc);
          return 0; /* a missing part makes the whole value missing */
        }
        if (s->parts[i].kind != SRC_VALUE) present++;
        if (s->separator && len) {
          size_t sl = strlen(s->separator);
          if (len + sl + 1 > cap) {
            while (len + sl + 1 > cap)
              cap *= 2;
            char *na = realloc(acc, cap);
            if (!na) {
              free(acc), json_decref(pv);
              return fail(run, NULL, NULL, s->at, "out of memory");
            }
            acc = na;
          }
          memcpy(acc + len, s->separator, sl);
          len += sl;
        }
        char *t = scalar_text(pv);
        if (!t) {
          free(acc);
          int rc = fail(run, sc, &s->parts[i], s->parts[i].at, "concat needs scalars, got %s", type_name(pv));
          json_decref(pv);
          return rc;
        }
        json_decref(pv);
        size_t tl = strlen(t);
        if (len + tl + 1 > cap) {
          while (len + tl + 1 > cap) cap *= 2;
          char *na = realloc(acc, cap);
          if (!na) {
            free(t), free(acc);
            return fail(run, NULL, NULL, s->at, "out of memory");
          }
          acc = na;
        }
        memcpy(acc + len, t, tl);
        len += tl;
        free(t);
      }
      acc[len] = '\0';
      if (!present && len == 0) {
        free(acc);
        return 0; /* nothing was there to join */
      }
      *out = json_stringn_nocheck(acc, len);
      free(acc);
      return 0;
    }
    case SRC_PATH:
      if (s->all) return eval_all(run, sc, s, out);
      if (run->m->in == LT_MAP_JSON) {
        json_t *first;
        size_t n = select_one(run, sc, s, &first);
        if (n > 1 && !s->first)
          return fail(run, sc, NULL, s->at,
                      "JSONPath %s matched %zu values where one is expected (use each, or first: true)", s->expr, n);
        if (n >= 1) *out = json_incref(first);
      } else {
        xmlXPathObjectPtr o = xpath_eval(run, sc, s);
        if (!o) return -1;
        int err;
        *out = xpath_value(run, sc, s, o, &err);
        xmlXPathFreeObject(o);
        if (err) return -1;
      }
      /* fallbacks while nothing usable matched */
      for (size_t i = 0;
           i < s->n_fallbacks && (!*out || json_is_null(*out) || (json_is_string(*out) && !json_string_length(*out)));
           i++) {
        json_decref(*out);
        if (eval_raw(run, sc, &s->fallbacks[i], out)) return -1;
      }
      return 0;
  }
  return 0;
}

/* Evaluates a source with its default and functions; *out is NULL when absent. */
static int eval_src(struct run *run, const struct scope *sc, const struct src *s, json_t **out) {
  json_t *v;
  if (eval_raw(run, sc, s, &v)) return -1;
  if (v && s->empty_absent && json_is_string(v) && !json_string_length(v)) {
    json_decref(v);
    v = NULL;
  }
  if (!v && s->def) v = json_incref(s->def);
  for (size_t i = 0; v && i < s->n_fns; i++) {
    json_t *nv = apply_fn(run, sc, s, &s->fns[i], v);
    json_decref(v);
    if (!nv) return -1;
    v = nv;
  }
  *out = v;
  return 0;
}

static int truthy(const json_t *v) {
  if (!v || json_is_null(v) || json_is_false(v)) return 0;
  if (json_is_string(v)) return json_string_length(v) > 0;
  return 1;
}

static int same_value(const json_t *a, const json_t *b) {
  if (json_equal(a, b)) return 1;
  char *x = scalar_text(a), *y = scalar_text(b);
  int eq = x && y && !strcmp(x, y);
  free(x), free(y);
  return eq;
}

/* 1 true, 0 false, -1 error */
static int eval_cond(struct run *run, const struct scope *sc, const struct cond *c) {
  int t = 0;
  if (run->m->in == LT_MAP_XML && !c->equals && !c->in) {
    xmlXPathObjectPtr o = xpath_eval(run, sc, &c->src);
    if (!o) return -1;
    t = xmlXPathCastToBoolean(o);
    xmlXPathFreeObject(o);
  } else if (run->m->in == LT_MAP_JSON && c->self_test) {
    json_t *self = json_array(), *res = NULL;
    if (!self || json_array_append(self, sc->jcur) || !(res = lt_jsonpath_query_new(c->src.jp, self))) {
      json_decref(self);
      return fail(run, NULL, NULL, c->src.at, "out of memory");
    }
    t = json_array_size(res) > 0;
    json_decref(res);
    json_decref(self);
  } else if (run->m->in == LT_MAP_JSON && !c->equals && !c->in) {
    json_t *first;
    t = select_one(run, sc, &c->src, &first) > 0 && truthy(first);
  } else {
    json_t *v;
    if (eval_raw(run, sc, &c->src, &v)) return -1;
    if (v && c->equals) t = same_value(v, c->equals);
    for (size_t i = 0; v && c->in && i < json_array_size(c->in); i++)
      if (same_value(v, json_array_get(c->in, i))) t = 1;
    json_decref(v);
  }
  return c->negate ? !t : t;
}

/* JSON output: the object at segs[0..n-1] under `obj`, created as needed. */
static json_t *json_walk(struct run *run, const struct rule *r, json_t *obj, size_t n) {
  for (size_t i = 0; i < n; i++) {
    json_t *next = json_object_get(obj, r->segs[i].key);
    if (!next) {
      next = json_object();
      if (!next || json_object_set_new(obj, r->segs[i].key, next)) {
        fail(run, NULL, NULL, r->at, "out of memory");
        return NULL;
      }
    } else if (!json_is_object(next)) {
      fail(run, NULL, NULL, r->at, "target %s: '%s' was already set to %s by an earlier rule", r->target,
           r->segs[i].key, type_name(next));
      return NULL;
    }
    obj = next;
  }
  return obj;
}

static int same_name(xmlNodePtr n, const struct seg *sg) {
  if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, sg->key)) return 0;
  const xmlChar *href = n->ns ? n->ns->href : NULL;
  return (!href && !sg->href) || (href && sg->href && xmlStrEqual(href, sg->href));
}

static xmlNodePtr xml_new_child(struct run *run, xmlNodePtr parent, const struct seg *sg) {
  /* every namespace is declared on the root, so the prefix as written finds it */
  xmlNsPtr ns = sg->href ? xmlSearchNs(parent->doc, parent, BAD_CAST sg->prefix) : NULL;
  xmlNodePtr c = xmlNewDocNode(parent->doc, ns, BAD_CAST sg->key, NULL);
  if (!c || !xmlAddChild(parent, c)) {
    xmlFreeNode(c);
    snprintf(run->eb, run->es, "%s: out of memory", run->m->path);
    return NULL;
  }
  return c;
}

/* XML output: the element at segs[0..n-1] under `el`, the last one of each name reused. */
static xmlNodePtr xml_walk(struct run *run, const struct rule *r, xmlNodePtr el, size_t n) {
  for (size_t i = 0; i < n && el; i++) {
    xmlNodePtr found = NULL;
    for (xmlNodePtr c = el->children; c; c = c->next)
      if (same_name(c, &r->segs[i])) found = c;
    el = found ? found : xml_new_child(run, el, &r->segs[i]);
  }
  return el;
}

static int run_rules(struct run *run, const struct scope *sc, const struct rule *rules, size_t n);

/* Writes a value at the rule's target: JSON sets a key (or appends to `arr`), XML adds an
 * element with the text (or sets an attribute). */
static int put_value(struct run *run, const struct scope *sc, const struct rule *r, json_t *v, json_t *arr,
                     xmlNodePtr el) {
  if (run->m->out == LT_MAP_JSON) {
    if (arr) return json_array_append(arr, v) ? fail(run, NULL, NULL, r->at, "out of memory") : 0;
    json_t *obj = json_walk(run, r, sc->jout, r->n_segs - 1);
    if (!obj) return -1;
    const char *key = r->segs[r->n_segs - 1].key;
    if (json_object_get(obj, key))
      return fail(run, NULL, NULL, r->at, "target %s was already set by an earlier rule", r->target);
    return json_object_set(obj, key, v) ? fail(run, NULL, NULL, r->at, "out of memory") : 0;
  }
  if (json_is_object(v) || json_is_array(v))
    return fail(run, sc, &r->src, r->at, "cannot write %s as XML text (map its fields one by one)", type_name(v));
  char *t = scalar_text(v);
  if (!t) return fail(run, NULL, NULL, r->at, "out of memory");
  if (!lt_map_utf8_valid(t, strlen(t)) || (json_is_string(v) && strlen(t) != json_string_length(v)) ||
      xmlCheckUTF8(BAD_CAST t) == 0) {
    free(t);
    return fail(run, sc, &r->src, r->at, "text contains a NUL byte or invalid UTF-8");
  }
  /* XML 1.0 forbids most control characters: refuse them rather than write a broken document */
  for (const unsigned char *p = (const unsigned char *)t; *p; p++)
    if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') {
      unsigned bad = *p;
      free(t);
      return fail(run, sc, &r->src, r->at, "text contains control character U+%04X, not allowed in XML", bad);
    }
  int rc = 0;
  const struct seg *last = &r->segs[r->n_segs - 1];
  if (!el) {
    xmlNodePtr parent = xml_walk(run, r, sc->xout, r->n_segs - 1);
    if (!parent) {
      free(t);
      return -1;
    }
    if (last->attr) {
      xmlNsPtr ns = last->href ? xmlSearchNs(parent->doc, parent, BAD_CAST last->prefix) : NULL;
      if ((ns ? xmlHasNsProp(parent, BAD_CAST last->key, ns->href) : xmlHasProp(parent, BAD_CAST last->key)))
        rc = fail(run, NULL, NULL, r->at, "attribute %s was already set by an earlier rule", r->target);
      else if (!xmlSetNsProp(parent, ns, BAD_CAST last->key, BAD_CAST t))
        rc = fail(run, NULL, NULL, r->at, "out of memory");
      free(t);
      return rc;
    }
    el = xml_new_child(run, parent, last);
  }
  if (!el) rc = -1;
  else if (*t) xmlNodeAddContent(el, BAD_CAST t);
  free(t);
  return rc;
}

static int run_each(struct run *run, const struct scope *sc, const struct rule *r) {
  json_t *items = NULL, *arr = NULL;
  xmlXPathObjectPtr o = NULL;
  xmlNodePtr parent = NULL;
  size_t n = 0;
  int rc = -1;
  if (run->m->in == LT_MAP_JSON) {
    items = lt_jsonpath_query_new(r->each.jp, r->each.from_doc ? run->jroot : sc->jcur);
    n = json_array_size(items);
  } else {
    if (!(o = xpath_eval(run, sc, &r->each))) return -1;
    if (o->type != XPATH_NODESET) {
      fail(run, sc, NULL, r->each.at, "each needs an XPath that selects nodes: %s", r->each.expr);
      goto out;
    }
    n = o->nodesetval ? (size_t)o->nodesetval->nodeNr : 0;
  }
  if (!n && r->required) {
    fail(run, sc, NULL, r->each.at, "each %s selected nothing, and the rule is required", r->each.expr);
    goto out;
  }
  if (run->m->out == LT_MAP_JSON) {
    if (!n && r->omit_empty) {
      rc = 0;
      goto out;
    }
    json_t *obj = json_walk(run, r, sc->jout, r->n_segs - 1);
    if (!obj) goto out;
    const char *key = r->segs[r->n_segs - 1].key;
    if (json_object_get(obj, key)) {
      fail(run, NULL, NULL, r->at, "target %s was already set by an earlier rule", r->target);
      goto out;
    }
    if (!(arr = json_array()) || json_object_set_new(obj, key, arr)) goto out;
  } else if (!(parent = xml_walk(run, r, sc->xout, r->n_segs - 1))) {
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    struct scope child = {.parent = sc, .each = &r->each, .index = i};
    if (items)
      child.jcur = json_array_get(items, i);
    else
      child.xcur = o->nodesetval->nodeTab[i];
    xmlNodePtr el = NULL;
    if (parent && !(el = xml_new_child(run, parent, &r->segs[r->n_segs - 1]))) goto out;
    if (r->has_rules) {
      json_t *obj = NULL;
      if (arr && (!(obj = json_object()) || json_array_append_new(arr, obj))) goto out;
      child.jout = obj;
      child.xout = el;
      if (run_rules(run, &child, r->rules, r->n_rules)) goto out;
      continue;
    }
    json_t *v;
    if (eval_src(run, &child, &r->src, &v)) goto out;
    if (!v) {
      if (r->required) {
        fail(run, &child, &r->src, r->at, "required value is missing");
        goto out;
      }
      if (el) {
        xmlUnlinkNode(el);
        xmlFreeNode(el);
      }
      continue;
    }
    int bad = put_value(run, &child, r, v, arr, el);
    json_decref(v);
    if (bad) goto out;
  }
  rc = 0;
out:
  json_decref(items);
  xmlXPathFreeObject(o);
  return rc;
}

/* A group's `context:`: 1 with child set to the one selected node, 0 when nothing matched
 * (skip the group), -1 on error. */
static int select_context(struct run *run, const struct scope *sc, const struct rule *r, struct scope *child) {
  const struct src *c = &r->context;
  size_t n = 0;
  child->parent = sc;
  child->each = c;
  child->index = 0;
  if (run->m->in == LT_MAP_JSON) {
    n = select_one(run, sc, c, &child->jcur); /* borrowed: a node of the input, which outlives the run */
  } else {
    xmlXPathObjectPtr o = xpath_eval(run, sc, c);
    if (!o) return -1;
    if (o->type != XPATH_NODESET) {
      xmlXPathFreeObject(o);
      return fail(run, sc, NULL, c->at, "context needs an XPath that selects a node: %s", c->expr);
    }
    n = o->nodesetval ? (size_t)o->nodesetval->nodeNr : 0;
    if (n) child->xcur = o->nodesetval->nodeTab[0];
    xmlXPathFreeObject(o);
  }
  if (n > 1) return fail(run, sc, NULL, c->at, "context %s selected %zu nodes where one is expected", c->expr, n);
  if (!n && r->required) return fail(run, sc, NULL, c->at, "context %s selected nothing, and the rule is required", c->expr);
  return n ? 1 : 0;
}

static int run_rule(struct run *run, const struct scope *sc, const struct rule *r) {
  const struct src *src = &r->src;
  if (r->cond.present) {
    int c = eval_cond(run, sc, &r->cond);
    if (c < 0 || (c == 0 && !r->has_else)) return c;
    if (c == 0) src = &r->else_src;
  }
  if (r->is_each) return run_each(run, sc, r);
  if (r->has_rules) {
    struct scope child = *sc;
    if (r->context.kind == SRC_PATH) {
      int found = select_context(run, sc, r, &child);
      if (found <= 0) return found;
    }
    if (r->n_segs) {
      if (run->m->out == LT_MAP_JSON) {
        if (!(child.jout = json_walk(run, r, sc->jout, r->n_segs))) return -1;
      } else if (!(child.xout = xml_walk(run, r, sc->xout, r->n_segs))) {
        return -1;
      }
    }
    if (run_rules(run, &child, r->rules, r->n_rules)) return -1;
    if (r->omit_empty && r->n_segs && run->m->out == LT_MAP_JSON && !json_object_size(child.jout)) {
      json_t *parent = json_walk(run, r, sc->jout, r->n_segs - 1);
      if (parent) json_object_del(parent, r->segs[r->n_segs - 1].key);
    } else if (r->omit_empty && r->n_segs && run->m->out == LT_MAP_XML && !child.xout->children &&
               !child.xout->properties) {
      xmlUnlinkNode(child.xout);
      xmlFreeNode(child.xout);
    }
    return 0;
  }
  json_t *v;
  if (eval_src(run, sc, src, &v)) return -1;
  if (!v) {
    if (r->required) return fail(run, sc, src, r->at, "required value is missing");
    return 0;
  }
  if (r->omit_empty && json_is_string(v) && !json_string_length(v)) {
    json_decref(v);
    return 0;
  }
  int rc = put_value(run, sc, r, v, NULL, NULL);
  json_decref(v);
  return rc;
}

static int run_rules(struct run *run, const struct scope *sc, const struct rule *rules, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (run_rule(run, sc, &rules[i])) return -1;
  return 0;
}

/* libxslt reports a transformation's errors through a printf-like callback, in pieces. */
static void xslt_capture(void *ctx, const char *msg, ...) {
  char *buf = ctx;
  size_t l = strlen(buf);
  if (l >= 400) return;
  va_list ap;
  va_start(ap, msg);
  vsnprintf(buf + l, 512 - l, msg, ap);
  va_end(ap);
  for (char *p = buf; *p; p++)
    if (*p == '\n') *p = ' ';
}

static hub_err_t run_xslt(const struct lt_map *m, xmlDocPtr in, unsigned char **out, size_t *out_len, char *eb,
                          size_t es) {
  char why[512] = "";
  hub_err_t rc = HUB_ERR_MAP;
  xmlDocPtr res = NULL;
  xmlChar *buf = NULL;
  int len = 0;
  xsltTransformContextPtr ctxt = xsltNewTransformContext(m->style, in);
  if (!ctxt) {
    snprintf(eb, es, "%s: out of memory", m->path);
    return HUB_ERR_NOMEM;
  }
  xsltSetTransformErrorFunc(ctxt, why, xslt_capture);
  if (xsltSetCtxtSecurityPrefs(m->sec, ctxt) || xsltQuoteUserParams(ctxt, m->params)) {
    snprintf(eb, es, "%s: cannot set up the transformation", m->path);
    goto out;
  }
  res = xsltApplyStylesheetUser(m->style, in, NULL, NULL, NULL, ctxt);
  if (!res || ctxt->state != XSLT_STATE_OK) {
    size_t l = strlen(why);
    while (l && why[l - 1] == ' ') why[--l] = '\0';
    snprintf(eb, es, "%s: the XSLT transformation failed: %s", m->path,
             why[0] ? why : "an xsl:message terminate, a forbidden document() or file access, or a runtime error");
    goto out;
  }
  if (xsltSaveResultToString(&buf, &len, res, m->style) || !buf) {
    snprintf(eb, es, "%s: the XSLT transformation gave no output", m->path);
    goto out;
  }
  *out = (unsigned char *)strndup((const char *)buf, (size_t)len);
  if (!*out) goto out;
  *out_len = (size_t)len;
  rc = HUB_OK;
out:
  xmlFree(buf);
  xmlFreeDoc(res);
  xsltFreeTransformContext(ctxt);
  return rc;
}

/* Checks an input or output against the mapping's contract: HUB_ERR_SCHEMA with every failure
 * ("MAPPING: output does not satisfy SCHEMA: /path: keyword: message; ..."). */
static hub_err_t contract(const struct lt_map *m, const char *what, const char *shown, const struct lt_schema *schema,
                          json_t *tree, const struct lt_validator *xsd, const void *bytes, size_t len, char *eb,
                          size_t es) {
  char *errors = NULL;
  hub_err_t rc = schema ? lt_schema_validate(schema, tree, &errors) : lt_validator_check(xsd, bytes, len, &errors);
  if (rc) {
    for (char *p = errors; p && *p; p++)
      if (*p == '\n' && p[1]) *p = ';';
    size_t l = errors ? strlen(errors) : 0;
    if (l && errors[l - 1] == '\n') errors[l - 1] = '\0';
    snprintf(eb, es, "%s: %s does not satisfy %s: %s", m->path, what, shown, errors ? errors : "invalid");
    if (rc != HUB_ERR_SCHEMA && !schema && !strcmp(what, "output")) rc = HUB_ERR_MAP; /* our own output */
  }
  free(errors);
  return rc;
}

/* xsltTransformContext reports through the generic error handler; a message per failure. */
static void xslt_quiet(void *ctx, const char *msg, ...) { (void)ctx, (void)msg; }

hub_err_t lt_map_run(const struct lt_map *m, const void *in, size_t len, int flags, unsigned char **out,
                     size_t *out_len, char *errbuf, size_t errbuf_size) {
  return lt_map_run_named(m, in, len, NULL, flags, out, out_len, errbuf, errbuf_size);
}

/* Runs the rules on the parsed input (run->jroot or run->xin) into *jout (JSON output, checked
 * against the output contract) or *xout; 0, or -1 with the message in run->eb. */
static hub_err_t map_tree(struct run *run, json_t **jout_p, xmlDocPtr *xout_p) {
  const struct lt_map *m = run->m;
  hub_err_t rc = HUB_ERR_MAP;
  json_t *jout = NULL;
  xmlDocPtr xout = NULL;
  struct scope top = {0};
  if (m->in == LT_MAP_JSON) {
    top.jcur = run->jroot;
  } else {
    if (!(run->xpc = xmlXPathNewContext(run->xin))) goto out;
    run->xpc->error = lt_map_xpath_error;
    run->xpc->userData = run->xerr;
    for (size_t i = 0; i < m->n_ns; i++)
      if (*m->ns[i].prefix) xmlXPathRegisterNs(run->xpc, BAD_CAST m->ns[i].prefix, BAD_CAST m->ns[i].href);
    top.xcur = xmlDocGetRootElement(run->xin);
  }
  if (m->out == LT_MAP_JSON) {
    if (!(top.jout = jout = json_object())) goto out;
  } else {
    if (!(xout = xmlNewDoc(BAD_CAST "1.0"))) goto out;
    xmlNodePtr root = xmlNewDocNode(xout, NULL, BAD_CAST m->out_root.key, NULL);
    if (!root) goto out;
    xmlDocSetRootElement(xout, root);
    for (size_t i = 0; i < m->n_ns; i++) {
      xmlNsPtr ns = xmlNewNs(root, BAD_CAST m->ns[i].href, *m->ns[i].prefix ? BAD_CAST m->ns[i].prefix : NULL);
      if (ns && m->out_root.href && xmlStrEqual(ns->href, m->out_root.href) &&
          ((!ns->prefix && !m->out_root.prefix) ||
           (ns->prefix && m->out_root.prefix && !strcmp((const char *)ns->prefix, m->out_root.prefix))))
        xmlSetNs(root, ns);
    }
    top.xout = root;
  }
  if (run_rules(run, &top, m->rules, m->n_rules)) goto out;
  if (m->out_schema &&
      (rc = contract(m, "output", m->out_schema_path, m->out_schema, jout, NULL, NULL, 0, run->eb, run->es)))
    goto out;
  *jout_p = jout, *xout_p = xout;
  jout = NULL, xout = NULL;
  rc = HUB_OK;
out:
  if (run->xpc) xmlXPathFreeContext(run->xpc);
  run->xpc = NULL;
  json_decref(jout);
  xmlFreeDoc(xout);
  return rc;
}

/* Serialises one output: JSON as is, XML and then its XSD contract. */
static hub_err_t serialise(struct run *run, json_t *jout, xmlDocPtr xout, int flags, unsigned char **out,
                           size_t *out_len) {
  const struct lt_map *m = run->m;
  hub_err_t rc;
  if (jout) {
    char *s = lt_json_dumps(jout, (flags & LT_MAP_PRETTY ? JSON_INDENT(2) : JSON_COMPACT) | JSON_ENCODE_ANY);
    if (!s) goto oom;
    *out_len = strlen(s);
    *out = (unsigned char *)s;
    return HUB_OK;
  }
  xmlChar *buf = NULL;
  int blen = 0;
  xmlDocDumpFormatMemoryEnc(xout, &buf, &blen, "UTF-8", flags & LT_MAP_PRETTY ? 1 : 0);
  if (!buf) goto oom;
  *out = (unsigned char *)strndup((const char *)buf, (size_t)blen);
  xmlFree(buf);
  if (!*out) goto oom;
  *out_len = (size_t)blen;
  if (m->out_xsd &&
      (rc = contract(m, "output", m->out_schema_path, NULL, NULL, m->out_xsd, *out, *out_len, run->eb, run->es))) {
    free(*out);
    *out = NULL;
    return rc;
  }
  return HUB_OK;
oom:
  snprintf(run->eb, run->es, "%s: out of memory", m->path);
  return HUB_ERR_NOMEM;
}

/* The input with the split list cut to items [from, from+n): the objects on the way to it are
 * shallow copies, everything else is shared (the input is never modified). */
static json_t *split_view(const struct lt_map *m, json_t *root, json_t *list, size_t from, size_t n) {
  json_t *slice = json_array();
  for (size_t i = from; slice && i < from + n && i < json_array_size(list); i++)
    if (json_array_append(slice, json_array_get(list, i))) json_decref(slice), slice = NULL;
  if (!slice) return NULL;
  json_t *view = json_copy(root), *at = view;
  for (size_t i = 0; at && i + 1 < m->split.n_names; i++) {
    json_t *inner = json_copy(json_object_get(at, m->split.names[i]));
    if (!inner || json_object_set_new(at, m->split.names[i], inner)) inner = NULL;
    at = inner;
  }
  if (!at || json_object_set_new(at, m->split.names[m->split.n_names - 1], slice)) {
    json_decref(view);
    return NULL;
  }
  return view;
}

/* The split output's record key: its query must select one scalar of the output. */
static hub_err_t split_key(struct run *run, json_t *jout, size_t index, char **key) {
  const struct lt_map *m = run->m;
  json_t *r = lt_jsonpath_query_new(m->split.key, jout);
  char *t = json_array_size(r) == 1 ? scalar_text(json_array_get(r, 0)) : NULL;
  size_t n = json_array_size(r);
  json_decref(r);
  if (!t || !*t) {
    free(t);
    snprintf(run->eb, run->es,
             "%s:%d: output %zu: split key %s selected %zu values where one non-empty scalar is expected", m->path,
             m->split.at->line, index + 1, m->split.key_expr, n);
    return HUB_ERR_MAP;
  }
  *key = t;
  return HUB_OK;
}

hub_err_t lt_map_run_all(const struct lt_map *m, const void *in, size_t len, const char *input_name, int flags,
                         struct lt_map_output **outs, size_t *n_outs, char *errbuf, size_t errbuf_size) {
  struct run run = {.m = m, .eb = errbuf, .es = errbuf_size};
  struct lt_map_output *o = NULL;
  size_t n = 0;
  hub_err_t rc;
  char why[768];
  if (m->in == LT_MAP_JSON)
    rc = lt_json_parse(in, len, input_name ? input_name : "input", &run.jroot, why, sizeof why);
  else
    rc = hub_xml_parse(in, len, NULL, input_name ? input_name : "input", &run.xin, why, sizeof why);
  if (rc) {
    /* the input is what is wrong: a named input leads the message, the mapping follows */
    if (input_name)
      snprintf(errbuf, errbuf_size, "%s (input of %s)", why, m->path);
    else
      snprintf(errbuf, errbuf_size, "%s: %s", m->path, why);
    goto out;
  }
  if ((m->in_schema || m->in_xsd) &&
      (rc = contract(m, "input", m->in_schema_path, m->in_schema, run.jroot, m->in_xsd, in, len, errbuf, errbuf_size)))
    goto out;
  if (m->xslt) {
    if (!(o = calloc(1, sizeof *o))) goto oom;
    n = 1;
    xsltSetGenericErrorFunc(NULL, xslt_quiet);
    rc = run_xslt(m, run.xin, &o->data, &o->len, errbuf, errbuf_size);
    if (!rc && m->out_xsd &&
        (rc =
             contract(m, "output", m->out_schema_path, NULL, NULL, m->out_xsd, o->data, o->len, errbuf, errbuf_size))) {
      free(o->data);
      o->data = NULL;
    }
    goto out;
  }
  json_t *list = NULL, *whole = run.jroot;
  size_t parts = 1, size = 1;
  if (m->split.n_names) {
    list = run.jroot;
    for (size_t i = 0; list && i < m->split.n_names; i++)
      list = json_object_get(list, m->split.names[i]);
    if (!json_is_array(list) || !json_array_size(list)) {
      snprintf(errbuf, errbuf_size, "%s:%d: input %s: split needs a non-empty list, got %s", m->path, m->split.at->line,
               m->split.expr,
               !list                 ? "nothing"
               : json_is_array(list) ? "an empty list"
                                     : type_name(list));
      rc = HUB_ERR_MAP;
      goto out;
    }
    size = m->split.size;
    parts = (json_array_size(list) + size - 1) / size;
  }
  if (!(o = calloc(parts, sizeof *o))) goto oom;
  for (size_t i = 0; i < parts; i++) {
    json_t *jout = NULL;
    xmlDocPtr xout = NULL;
    if (list && !(run.jroot = split_view(m, whole, list, i * size, size))) {
      run.jroot = whole;
      goto oom;
    }
    rc = map_tree(&run, &jout, &xout);
    if (list) json_decref(run.jroot), run.jroot = whole;
    if (!rc && list && m->split.key) rc = split_key(&run, jout, i, &o[i].key);
    if (!rc) rc = serialise(&run, jout, xout, flags, &o[i].data, &o[i].len);
    n = i + 1;
    json_decref(jout);
    xmlFreeDoc(xout);
    if (rc) goto out;
  }
  rc = HUB_OK;
  goto out;
oom:
  snprintf(errbuf, errbuf_size, "%s: out of memory", m->path);
  rc = HUB_ERR_NOMEM;
out:
  xmlFreeDoc(run.xin);
  json_decref(run.jroot);
  if (rc) {
    lt_map_outputs_free(o, n);
  } else {
    *outs = o;
    *n_outs = n;
  }
  return rc;
}

void lt_map_outputs_free(struct lt_map_output *outs, size_t n) {
  for (size_t i = 0; outs && i < n; i++) {
    free(outs[i].data);
    free(outs[i].key);
  }
  free(outs);
}

hub_err_t lt_map_run_named(const struct lt_map *m, const void *in, size_t len, const char *input_name, int flags,
                           unsigned char **out, size_t *out_len, char *errbuf, size_t errbuf_size) {
  struct lt_map_output *o = NULL;
  size_t n = 0;
  hub_err_t rc = lt_map_run_all(m, in, len, input_name, flags, &o, &n, errbuf, errbuf_size);
  if (rc) return rc;
  if (!m->split.n_names) {
    *out = o[0].data, *out_len = o[0].len;
    o[0].data = NULL;
  } else {
    /* a split shows as the JSON list of its outputs (what `map` prints and `test` compares) */
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
      json_t *j = json_loadb((const char *)o[i].data, o[i].len, 0, NULL);
      if (!j || json_array_append_new(arr, j)) json_decref(arr), arr = NULL;
    }
    char *s = arr ? lt_json_dumps(arr, (flags & LT_MAP_PRETTY ? JSON_INDENT(2) : JSON_COMPACT)) : NULL;
    json_decref(arr);
    if (!s) {
      lt_map_outputs_free(o, n);
      snprintf(errbuf, errbuf_size, "%s: out of memory", m->path);
      return HUB_ERR_NOMEM;
    }
    *out = (unsigned char *)s, *out_len = strlen(s);
  }
  lt_map_outputs_free(o, n);
  return HUB_OK;
}
