/* The mapping engine, loading: a mapping file (docs/mapping.md) into checked rules, with every
 * option verified strictly and every expression compiled, so a bad mapping fails at load with
 * "file:line:col: message". Running is map_run.c. */
#include "mappings/shape/map.h"

#include <errno.h>
#include <libxml/tree.h>
#include <libxml/xpathInternals.h>
#include <libxslt/transform.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/cfgmap.h"
#include "hub/core/files.h"
#include "hub/core/xml.h"
#include "mappings/shape/json.h"
#include "mappings/shape/map_fn.h"
#include "mappings/shape/map_internal.h"

/* XPath errors arrive through the context's structured handler; keep the last message. */
void lt_map_xpath_error(void *user, xmlErrorPtr err) {
  char *buf = user;
  if (buf && err && !err->message) {
    /* libxml2 2.9 leaves message NULL when a context handler is set: name the common codes */
    const char *m = err->code == XML_XPATH_UNDEF_PREFIX_ERROR     ? "Undefined namespace prefix"
                    : err->code == XML_XPATH_UNDEF_VARIABLE_ERROR ? "Undefined variable"
                    : err->code == XML_XPATH_UNKNOWN_FUNC_ERROR   ? "Unregistered function"
                    : err->code == XML_XPATH_INVALID_ARITY        ? "Invalid number of arguments"
                    : err->code == XML_XPATH_INVALID_TYPE         ? "Invalid type"
                    : err->code == XML_XPATH_EXPR_ERROR           ? "Invalid expression"
                                                                  : NULL;
    if (m)
      snprintf(buf, 256, "%s", m);
    else
      snprintf(buf, 256, "XPath error %d", err->code);
  } else if (buf && err && err->message) {
    snprintf(buf, 256, "%s", err->message);
    size_t l = strlen(buf);
    while (l && buf[l - 1] == '\n') buf[--l] = '\0';
  }
}

struct loader {
  struct lt_map *m;
  char *eb;
  size_t es;
  const struct hub_node *lookup_nodes[17]; /* `lookups:` of this file and its includes */
  size_t n_lookup_nodes;
};

static hub_err_t check_keys(struct loader *ld, const struct hub_node *n, const char *what, const char *const *allowed) {
  if (n->kind != HUB_NODE_MAP)
    return hub_node_error(n, ld->eb, ld->es, "%s must be a mapping, not a %s", what, hub_node_kind_name(n->kind));
  for (size_t i = 0; i < n->n; i++) {
    int ok = 0;
    for (size_t k = 0; allowed[k]; k++)
      if (!strcmp(n->keys[i]->scalar, allowed[k])) ok = 1;
    if (!ok) {
      char list[512] = "";
      size_t len = 0;
      for (size_t k = 0; allowed[k] && len < sizeof list; k++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "", allowed[k]);
      return hub_node_error(n->keys[i], ld->eb, ld->es, "unknown key '%s' in %s (allowed: %s)", n->keys[i]->scalar,
                            what, list);
    }
  }
  return HUB_OK;
}

static hub_err_t want_scalar(struct loader *ld, const struct hub_node *n, const char *what) {
  if (n->kind == HUB_NODE_SCALAR) return HUB_OK;
  return hub_node_error(n, ld->eb, ld->es, "%s must be a scalar, not a %s", what, hub_node_kind_name(n->kind));
}

static hub_err_t get_bool(struct loader *ld, const struct hub_node *n, const char *what, int *out) {
  if (want_scalar(ld, n, what) || hub_parse_bool(n->scalar, out))
    return hub_node_error(n, ld->eb, ld->es, "%s must be true or false", what);
  return HUB_OK;
}

static hub_err_t get_long(struct loader *ld, const struct hub_node *n, const char *what, long lo, long hi, long *out) {
  int64_t v;
  if (want_scalar(ld, n, what) || hub_parse_int(n->scalar, &v) || v < lo || v > hi)
    return hub_node_error(n, ld->eb, ld->es, "%s must be an integer from %ld to %ld", what, lo, hi);
  *out = (long)v;
  return HUB_OK;
}

/* A YAML value as JSON: quoted scalars are strings; plain ones may be null, booleans or numbers. */
static json_t *literal_new(const struct hub_node *n) {
  if (n->kind == HUB_NODE_SCALAR) {
    const char *s = n->scalar;
    if (n->quoted) return json_string(s);
    if (!strcmp(s, "null") || !strcmp(s, "~")) return json_null();
    if (!strcmp(s, "true")) return json_true();
    if (!strcmp(s, "false")) return json_false();
    int64_t iv;
    if (*s && !hub_parse_int(s, &iv)) return json_integer((json_int_t)iv);
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (*s && !*end && !errno && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) && isfinite(d)) return json_real(d);
    return json_string(s);
  }
  json_t *v = n->kind == HUB_NODE_MAP ? json_object() : json_array();
  for (size_t i = 0; v && i < n->n; i++) {
    json_t *item = literal_new(n->items[i]);
    if (!item || (n->kind == HUB_NODE_MAP ? json_object_set_new(v, n->keys[i]->scalar, item)
                                          : json_array_append_new(v, item))) {
      json_decref(v);
      return NULL;
    }
  }
  return v;
}

static const struct lookup *find_lookup(const struct lt_map *m, const char *name) {
  for (size_t i = 0; i < m->n_lookups; i++)
    if (!strcmp(m->lookups[i].name, name)) return &m->lookups[i];
  return NULL;
}

static hub_err_t load_zone(struct loader *ld, const struct hub_node *n, int *out) {
  if (want_scalar(ld, n, "zone")) return HUB_ERR_CONFIG;
  if (lt_map_zone_parse(n->scalar, out))
    return hub_node_error(n, ld->eb, ld->es,
                          "unknown time zone '%s' (use Asia/Ho_Chi_Minh, UTC or a fixed offset like +07:00)",
                          n->scalar);
  return HUB_OK;
}

static hub_err_t load_pattern(struct loader *ld, const struct hub_node *n, const char **out) {
  char why[256];
  if (want_scalar(ld, n, "a date pattern")) return HUB_ERR_CONFIG;
  if (lt_map_date_pattern_check(n->scalar, why, sizeof why)) return hub_node_error(n, ld->eb, ld->es, "%s", why);
  *out = n->scalar;
  return HUB_OK;
}

static hub_err_t load_fn(struct loader *ld, const struct hub_node *n, struct fn *f) {
  static const struct {
    const char *name;
    enum fn_kind kind;
  } simple[] = {{"trim", FN_TRIM},
                {"upper", FN_UPPER},
                {"lower", FN_LOWER},
                {"sha256", FN_SHA256},
                {"string", FN_STRING},
                {"integer", FN_INTEGER},
                {"number", FN_NUMBER},
                {"boolean", FN_BOOLEAN},
                {"title", FN_TITLE},
                {"unaccent", FN_UNACCENT},
                {"fold", FN_FOLD},
                {"base64_encode", FN_BASE64_ENCODE},
                {"base64_decode", FN_BASE64_DECODE},
                {"sum", FN_SUM},
                {"count", FN_COUNT},
                {"length", FN_LENGTH},
                {"join", FN_JOIN},
                {"parse_number", FN_PARSE_NUMBER},
                {NULL, 0}};
  f->at = n;
  f->len = -1;
  f->group = "";
  f->point = ".";
  if (n->kind == HUB_NODE_SCALAR) {
    for (int i = 0; simple[i].name; i++)
      if (!strcmp(n->scalar, simple[i].name)) {
        f->kind = simple[i].kind;
        if (f->kind == FN_PARSE_NUMBER) f->group = ".", f->point = ",";
        if (f->kind == FN_JOIN) f->from = ", ";
        return HUB_OK;
      }
    if (!strcmp(n->scalar, "money")) { /* the defaults: 77.500 ₫ */
      f->kind = FN_MONEY;
      f->group = ".", f->point = ",", f->symbol = "₫";
      return HUB_OK;
    }
    return hub_node_error(
        n, ld->eb, ld->es,
        "unknown function '%s' (plain: trim, upper, lower, title, unaccent, fold, sha256, string, "
        "integer, number, boolean, base64_encode, base64_decode, sum, count, length, join, "
        "parse_number, money; with arguments: substring, date, format_number, money, parse_number, lookup, "
        "replace, regex_replace, strip_prefix, join, pad)",
        n->scalar);
  }
  if (n->kind != HUB_NODE_MAP || n->n != 1)
    return hub_node_error(n, ld->eb, ld->es, "a function is a name or a one-key mapping NAME: ARGS");
  const char *name = n->keys[0]->scalar;
  const struct hub_node *a = n->items[0];
  if (!strcmp(name, "substring")) {
    f->kind = FN_SUBSTRING;
    if (a->kind != HUB_NODE_SEQ || a->n < 1 || a->n > 2)
      return hub_node_error(a, ld->eb, ld->es, "substring takes [START] or [START, LENGTH] (code points)");
    if (get_long(ld, a->items[0], "substring start", 0, 1000000, &f->start)) return HUB_ERR_CONFIG;
    if (a->n == 2 && get_long(ld, a->items[1], "substring length", 0, 1000000, &f->len)) return HUB_ERR_CONFIG;
    return HUB_OK;
  }
  if (!strcmp(name, "date")) {
    static const char *const keys[] = {"from", "to", "zone", "to_zone", NULL};
    f->kind = FN_DATE;
    if (check_keys(ld, a, "date", keys)) return HUB_ERR_CONFIG;
    const struct hub_node *from = hub_node_get(a, "from"), *to = hub_node_get(a, "to"),
                          *zone = hub_node_get(a, "zone"), *to_zone = hub_node_get(a, "to_zone");
    if (!from || !to || !zone)
      return hub_node_error(a, ld->eb, ld->es, "date needs from (pattern), to (pattern) and zone (be explicit)");
    if (from->kind == HUB_NODE_SEQ) {
      if (!from->n || from->n > 5)
        return hub_node_error(from, ld->eb, ld->es, "date from takes a pattern or a list of 1 to 5 patterns");
      if (load_pattern(ld, from->items[0], &f->from)) return HUB_ERR_CONFIG;
      for (size_t i = 1; i < from->n; i++)
        if (load_pattern(ld, from->items[i], &f->alt[i - 1])) return HUB_ERR_CONFIG;
    } else if (load_pattern(ld, from, &f->from)) {
      return HUB_ERR_CONFIG;
    }
    if (load_pattern(ld, to, &f->to) || load_zone(ld, zone, &f->zone_in)) return HUB_ERR_CONFIG;
    f->zone_out = f->zone_in;
    if (to_zone && load_zone(ld, to_zone, &f->zone_out)) return HUB_ERR_CONFIG;
    return HUB_OK;
  }
  if (!strcmp(name, "format_number") || !strcmp(name, "money")) {
    static const char *const keys[] = {"decimals", "group", "point", "symbol", "symbol_first", NULL};
    static const char *const nkeys[] = {"decimals", "group", "point", NULL};
    int money = !strcmp(name, "money");
    f->kind = money ? FN_MONEY : FN_FORMAT_NUMBER;
    if (money) f->group = ".", f->point = ",", f->symbol = "₫"; /* Vietnamese convention: 50.000 ₫ */
    if (check_keys(ld, a, name, money ? keys : nkeys)) return HUB_ERR_CONFIG;
    long dec = 0;
    const struct hub_node *x;
    if ((x = hub_node_get(a, "decimals")) && get_long(ld, x, "decimals", 0, 18, &dec)) return HUB_ERR_CONFIG;
    f->decimals = (int)dec;
    if ((x = hub_node_get(a, "group"))) {
      if (want_scalar(ld, x, "group")) return HUB_ERR_CONFIG;
      f->group = x->scalar;
    }
    if ((x = hub_node_get(a, "point"))) {
      if (want_scalar(ld, x, "point")) return HUB_ERR_CONFIG;
      f->point = x->scalar;
    }
    if ((x = hub_node_get(a, "symbol"))) {
      if (want_scalar(ld, x, "symbol")) return HUB_ERR_CONFIG;
      f->symbol = x->scalar;
    }
    if ((x = hub_node_get(a, "symbol_first")) && get_bool(ld, x, "symbol_first", &f->symbol_first))
      return HUB_ERR_CONFIG;
    return HUB_OK;
  }
  if (!strcmp(name, "lookup")) {
    f->kind = FN_LOOKUP;
    if (want_scalar(ld, a, "lookup")) return HUB_ERR_CONFIG;
    if (!(f->lookup = find_lookup(ld->m, a->scalar)))
      return hub_node_error(a, ld->eb, ld->es, "no lookup table named '%s' in lookups", a->scalar);
    return HUB_OK;
  }
  if (!strcmp(name, "replace")) {
    f->kind = FN_REPLACE;
    if (a->kind != HUB_NODE_SEQ || a->n != 2 || a->items[0]->kind != HUB_NODE_SCALAR ||
        a->items[1]->kind != HUB_NODE_SCALAR || !a->items[0]->scalar[0])
      return hub_node_error(a, ld->eb, ld->es, "replace takes [OLD, NEW] with a non-empty OLD");
    f->from = a->items[0]->scalar;
    f->to = a->items[1]->scalar;
    return HUB_OK;
  }
  if (!strcmp(name, "regex_replace")) {
    char why[300];
    f->kind = FN_REGEX_REPLACE;
    if (a->kind != HUB_NODE_SEQ || a->n != 2 || a->items[0]->kind != HUB_NODE_SCALAR ||
        a->items[1]->kind != HUB_NODE_SCALAR || !a->items[0]->scalar[0])
      return hub_node_error(a, ld->eb, ld->es, "regex_replace takes [PATTERN, REPLACEMENT] ($1 for a group)");
    if (!(f->re = lt_ecma_regex_compile(a->items[0]->scalar, strlen(a->items[0]->scalar), why, sizeof why)))
      return hub_node_error(a->items[0], ld->eb, ld->es, "regex_replace: %s", why);
    f->from = a->items[0]->scalar;
    f->to = a->items[1]->scalar;
    return HUB_OK;
  }
  if (!strcmp(name, "join")) {
    f->kind = FN_JOIN;
    if (want_scalar(ld, a, "join's separator")) return HUB_ERR_CONFIG;
    f->from = a->scalar;
    return HUB_OK;
  }
  if (!strcmp(name, "pad")) {
    static const char *const keys[] = {"width", "with", "side", NULL};
    long w = 0;
    f->kind = FN_PAD;
    f->from = " ";
    f->left = 1;
    const struct hub_node *x;
    if (check_keys(ld, a, "pad", keys)) return HUB_ERR_CONFIG;
    if (!(x = hub_node_get(a, "width"))) return hub_node_error(a, ld->eb, ld->es, "pad needs width (code points)");
    if (get_long(ld, x, "pad width", 1, 1000, &w)) return HUB_ERR_CONFIG;
    f->width = (size_t)w;
    if ((x = hub_node_get(a, "with"))) {
      if (want_scalar(ld, x, "pad with") || !x->scalar[0] || lt_utf8_length(x->scalar, strlen(x->scalar)) != 1)
        return hub_node_error(x, ld->eb, ld->es, "pad with is one character");
      f->from = x->scalar;
    }
    if ((x = hub_node_get(a, "side"))) {
      if (x->kind != HUB_NODE_SCALAR || (strcmp(x->scalar, "left") && strcmp(x->scalar, "right")))
        return hub_node_error(x, ld->eb, ld->es, "pad side is left or right");
      f->left = !strcmp(x->scalar, "left");
    }
    return HUB_OK;
  }
  if (!strcmp(name, "parse_number")) {
    static const char *const keys[] = {"group", "point", NULL};
    f->kind = FN_PARSE_NUMBER;
    f->group = ".", f->point = ","; /* Vietnamese: 1.234.567,5 */
    const struct hub_node *x;
    if (check_keys(ld, a, "parse_number", keys)) return HUB_ERR_CONFIG;
    if ((x = hub_node_get(a, "group"))) {
      if (want_scalar(ld, x, "group")) return HUB_ERR_CONFIG;
      f->group = x->scalar;
    }
    if ((x = hub_node_get(a, "point"))) {
      if (want_scalar(ld, x, "point") || !x->scalar[0])
        return hub_node_error(x, ld->eb, ld->es, "point cannot be empty");
      f->point = x->scalar;
    }
    if (!strcmp(f->group, f->point)) return hub_node_error(a, ld->eb, ld->es, "group and point must differ");
    return HUB_OK;
  }
  if (!strcmp(name, "strip_prefix")) {
    f->kind = FN_STRIP_PREFIX;
    if (want_scalar(ld, a, "strip_prefix")) return HUB_ERR_CONFIG;
    f->from = a->scalar;
    return HUB_OK;
  }
  return hub_node_error(n->keys[0], ld->eb, ld->es, "unknown function '%s'", name);
}

static hub_err_t load_fns(struct loader *ld, const struct hub_node *n, struct fn **fns, size_t *n_fns) {
  const struct hub_node *const *items = &n;
  size_t count = 1;
  if (n->kind == HUB_NODE_SEQ) items = (const struct hub_node *const *)n->items, count = n->n;
  if (!(*fns = calloc(count ? count : 1, sizeof **fns))) return hub_node_error(n, ld->eb, ld->es, "out of memory");
  *n_fns = count;
  for (size_t i = 0; i < count; i++)
    if (load_fn(ld, items[i], &(*fns)[i])) return HUB_ERR_CONFIG;
  return HUB_OK;
}


static int name_char(char c, int first) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9');
}

/* Recognises $(.name)*([*])? after the expression compiled; -1 only when out of memory. */
static int simple_path(struct src *s) {
  const char *p = s->expr;
  size_t n = 0;
  if (*p++ != '$') return 0;
  for (const char *q = p; *q == '.'; n++) {
    if (!name_char(*++q, 1)) return 0;
    while (name_char(*q, 0)) q++;
    if (*q && *q != '.' && strcmp(q, "[*]")) return 0;
    if (!*q || *q == '[') {
      n++;
      break;
    }
  }
  if (*p && *p != '.' && strcmp(p, "[*]")) return 0;
  if (!(s->names = calloc(n ? n : 1, sizeof *s->names))) return -1;
  while (*p == '.') {
    const char *b = ++p;
    while (name_char(*p, 0)) p++;
    if (!(s->names[s->n_names++] = strndup(b, (size_t)(p - b)))) return -1;
  }
  s->simple_star = !strcmp(p, "[*]");
  s->simple = 1;
  return 0;
}

/* XPath in rules is XPath 1.0's core library only: libxml2 would compile any name and fail each
 * record with its raw "function not found" (document() is XSLT's, and reads files). Returns
 * the first other function named in the expression (outside string literals), or NULL. */
static const char *unknown_xpath_function(const char *e, char *name, size_t size) {
  static const char *const known[] = {
      "last", "position", "count", "id", "local-name", "namespace-uri", "name", "string", "concat", "starts-with",
      "contains", "substring-before", "substring-after", "substring", "string-length", "normalize-space", "translate",
      "boolean", "not", "true", "false", "lang", "number", "sum", "floor", "ceiling", "round",
      /* node tests and operators that may stand before '(' */
      "node", "text", "comment", "processing-instruction", "and", "or", "div", "mod", NULL};
  for (const char *p = e; *p;) {
    if (*p == '\'' || *p == '"') {
      const char *end = strchr(p + 1, *p);
      if (!end) return NULL;
      p = end + 1;
      continue;
    }
    if (!(name_char(*p, 1)) || (p > e && (p[-1] == '$' || name_char(p[-1], 0) || p[-1] == '-' || p[-1] == '.'))) {
      p++;
      continue;
    }
    const char *b = p;
    while (name_char(*p, 0) || *p == '-' || *p == '.' || (*p == ':' && p[1] != ':' && p[-1] != ':'))
      p++;
    const char *q = p;
    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
      q++;
    if (*q != '(') continue;
    size_t len = (size_t)(p - b);
    int ok = 0;
    for (size_t i = 0; known[i] && !ok; i++)
      ok = strlen(known[i]) == len && !strncmp(known[i], b, len);
    if (!ok) {
      snprintf(name, size, "%.*s", (int)len, b);
      return name;
    }
  }
  return NULL;
}

static hub_err_t compile_expr(struct loader *ld, const struct hub_node *n, struct src *s) {
  if (want_scalar(ld, n, "an expression")) return HUB_ERR_CONFIG;
  s->kind = SRC_PATH;
  if (!s->at) s->at = n;
  s->expr = n->scalar;
  if (ld->m->in == LT_MAP_JSON) {
    char why[256];
    if (lt_jsonpath_compile(n->scalar, &s->jp, why, sizeof why))
      return hub_node_error(n, ld->eb, ld->es, "invalid JSONPath '%s': %s", n->scalar, why);
    return simple_path(s) ? hub_node_error(n, ld->eb, ld->es, "out of memory") : HUB_OK;
  }
  char why[256] = "syntax error", fname[64];
  if (unknown_xpath_function(n->scalar, fname, sizeof fname))
    return hub_node_error(n, ld->eb, ld->es,
                          "XPath '%s': function '%s' is not available in rules (XPath 1.0 core functions only; "
                          "files and the network are never read)",
                          n->scalar, fname);
  xmlXPathContextPtr ctx = xmlXPathNewContext(NULL);
  if (!ctx) return hub_node_error(n, ld->eb, ld->es, "out of memory");
  ctx->error = lt_map_xpath_error;
  ctx->userData = why;
  s->xp = xmlXPathCtxtCompile(ctx, BAD_CAST n->scalar);
  xmlXPathFreeContext(ctx);
  if (!s->xp) return hub_node_error(n, ld->eb, ld->es, "invalid XPath '%s': %s", n->scalar, why);
  return HUB_OK;
}

static hub_err_t load_src(struct loader *ld, const struct hub_node *n, struct src *s, int allow_concat);

/* A concat part: a plain scalar is literal text; a mapping is a source. */
static hub_err_t load_part(struct loader *ld, const struct hub_node *n, struct src *s) {
  static const char *const keys[] = {"from",    "from_doc", "value",    "generate", "apply",
                                     "default", "first",    "optional", NULL};
  if (n->kind == HUB_NODE_SCALAR) {
    s->kind = SRC_VALUE;
    s->at = n;
    s->literal = json_string(n->scalar);
    return s->literal ? HUB_OK : hub_node_error(n, ld->eb, ld->es, "concat text is not valid UTF-8");
  }
  if (check_keys(ld, n, "a concat part", keys)) return HUB_ERR_CONFIG;
  const struct hub_node *opt = hub_node_get(n, "optional");
  if (opt && get_bool(ld, opt, "optional", &s->optional)) return HUB_ERR_CONFIG;
  return load_src(ld, n, s, 0);
}

/* Reads from/from_doc/value/concat/generate, apply and default from the mapping `n`. */
static hub_err_t load_src(struct loader *ld, const struct hub_node *n, struct src *s, int allow_concat) {
  const char *kinds[] = {"from", "from_doc", "value", "concat", "generate"};
  const struct hub_node *which = NULL;
  const char *kind = NULL;
  s->at = n;
  for (int i = 0; i < 5; i++) {
    const struct hub_node *x = hub_node_get(n, kinds[i]);
    if (!x) continue;
    if (which)
      return hub_node_error(x, ld->eb, ld->es, "'%s' and '%s' cannot be used together", kind, kinds[i]);
    which = x, kind = kinds[i];
  }
  if (!which) {
    s->kind = SRC_NONE;
  } else if ((!strcmp(kind, "from") || !strcmp(kind, "from_doc")) && which->kind == HUB_NODE_SEQ) {
    /* fallbacks: the first query that gives a value wins */
    if (which->n < 2) return hub_node_error(which, ld->eb, ld->es, "%s takes a query or a list of 2 or more", kind);
    s->from_doc = kind[4] == '_';
    if (compile_expr(ld, which->items[0], s)) return HUB_ERR_CONFIG;
    s->at = n;
    if (!(s->fallbacks = calloc(which->n - 1, sizeof *s->fallbacks)))
      return hub_node_error(n, ld->eb, ld->es, "out of memory");
    s->n_fallbacks = which->n - 1;
    for (size_t i = 1; i < which->n; i++) {
      s->fallbacks[i - 1].from_doc = s->from_doc;
      s->fallbacks[i - 1].at = which->items[i];
      if (compile_expr(ld, which->items[i], &s->fallbacks[i - 1])) return HUB_ERR_CONFIG;
    }
  } else if (!strcmp(kind, "from") || !strcmp(kind, "from_doc")) {
    s->from_doc = kind[4] == '_';
    if (compile_expr(ld, which, s)) return HUB_ERR_CONFIG;
  } else if (!strcmp(kind, "value")) {
    s->kind = SRC_VALUE;
    if (!(s->literal = literal_new(which))) return hub_node_error(which, ld->eb, ld->es, "value is not valid UTF-8");
  } else if (!strcmp(kind, "concat")) {
    if (!allow_concat) return hub_node_error(which, ld->eb, ld->es, "concat cannot be nested");
    if (which->kind == HUB_NODE_MAP) {
      /* {parts: [...], separator: ", "}: the parts present, joined; missing or empty ones skipped */
      static const char *const ckeys[] = {"parts", "separator", NULL};
      const struct hub_node *sep = hub_node_get(which, "separator");
      if (check_keys(ld, which, "concat", ckeys)) return HUB_ERR_CONFIG;
      if (sep && want_scalar(ld, sep, "separator")) return HUB_ERR_CONFIG;
      s->separator = sep ? sep->scalar : "";
      if (!(which = hub_node_get(which, "parts")))
        return hub_node_error(n, ld->eb, ld->es, "concat {parts, separator} needs parts");
    }
    if (which->kind != HUB_NODE_SEQ || !which->n)
      return hub_node_error(which, ld->eb, ld->es, "concat takes a non-empty list of parts");
    s->kind = SRC_CONCAT;
    if (!(s->parts = calloc(which->n, sizeof *s->parts))) return hub_node_error(n, ld->eb, ld->es, "out of memory");
    s->n_parts = which->n;
    for (size_t i = 0; i < which->n; i++)
      if (load_part(ld, which->items[i], &s->parts[i])) return HUB_ERR_CONFIG;
  } else {
    if (want_scalar(ld, which, "generate")) return HUB_ERR_CONFIG;
    if (!strcmp(which->scalar, "uuid"))
      s->kind = SRC_UUID;
    else if (!strcmp(which->scalar, "now"))
      s->kind = SRC_NOW;
    else
      return hub_node_error(which, ld->eb, ld->es, "generate is uuid or now, not '%s'", which->scalar);
  }
  const struct hub_node *x;
  if ((x = hub_node_get(n, "all"))) {
    if (get_bool(ld, x, "all", &s->all)) return HUB_ERR_CONFIG;
    if (s->kind != SRC_PATH || s->n_fallbacks || hub_node_get(n, "first"))
      return hub_node_error(x, ld->eb, ld->es, "all goes with one from or from_doc query (not first or fallbacks)");
  }
  if ((x = hub_node_get(n, "first"))) {
    if (get_bool(ld, x, "first", &s->first)) return HUB_ERR_CONFIG;
    if (s->kind != SRC_PATH) return hub_node_error(x, ld->eb, ld->es, "first goes with from or from_doc");
    for (size_t i = 0; i < s->n_fallbacks; i++)
      s->fallbacks[i].first = s->first;
  }
  if ((x = hub_node_get(n, "apply")) && load_fns(ld, x, &s->fns, &s->n_fns)) return HUB_ERR_CONFIG;
  if ((x = hub_node_get(n, "default")) && !(s->def = literal_new(x)))
    return hub_node_error(x, ld->eb, ld->es, "default is not valid UTF-8");
  return HUB_OK;
}

static hub_err_t load_cond(struct loader *ld, const struct hub_node *n, int negate, struct cond *c) {
  static const char *const keys[] = {"from", "from_doc", "equals", "in", NULL};
  c->present = 1;
  c->negate = negate;
  /* `$[?...]` as a condition tests the current node (inside each: the element), not its children */
  if (n->kind == HUB_NODE_SCALAR) {
    c->self_test = ld->m->in == LT_MAP_JSON && !strncmp(n->scalar, "$[?", 3);
    return compile_expr(ld, n, &c->src);
  }
  if (check_keys(ld, n, negate ? "unless" : "if", keys)) return HUB_ERR_CONFIG;
  const struct hub_node *from = hub_node_get(n, "from"), *fd = hub_node_get(n, "from_doc");
  if (!!from == !!fd) return hub_node_error(n, ld->eb, ld->es, "a condition needs exactly one of from or from_doc");
  if (compile_expr(ld, from ? from : fd, &c->src)) return HUB_ERR_CONFIG;
  c->src.from_doc = !from;
  const struct hub_node *eq = hub_node_get(n, "equals"), *in = hub_node_get(n, "in");
  if (eq && in) return hub_node_error(in, ld->eb, ld->es, "use equals or in, not both");
  if (eq && !(c->equals = literal_new(eq))) return hub_node_error(eq, ld->eb, ld->es, "bad value");
  if (in) {
    if (in->kind != HUB_NODE_SEQ) return hub_node_error(in, ld->eb, ld->es, "in takes a list of values");
    if (!(c->in = literal_new(in))) return hub_node_error(in, ld->eb, ld->es, "bad value");
  }
  return HUB_OK;
}

static hub_err_t parse_seg(struct loader *ld, const struct hub_node *at, const char *text, size_t len, struct seg *sg,
                           int last) {
  char *s = strndup(text, len);
  if (!s) return hub_node_error(at, ld->eb, ld->es, "out of memory");
  sg->key = s;
  if (!len) return hub_node_error(at, ld->eb, ld->es, "empty step in target path");
  if (ld->m->out == LT_MAP_JSON) return HUB_OK;
  char *name = s;
  if (*name == '@') {
    if (!last) return hub_node_error(at, ld->eb, ld->es, "an attribute (@name) must be the last step of a target");
    sg->attr = 1;
    name++;
  }
  char *colon = strchr(name, ':');
  const char *prefix = colon ? name : "";
  if (colon) *colon = '\0';
  const char *local = colon ? colon + 1 : name;
  if (xmlValidateNCName(BAD_CAST local, 0))
    return hub_node_error(at, ld->eb, ld->es, "'%s' is not an XML name", local);
  int found = 0;
  /* unprefixed attributes have no namespace (XML Namespaces §6.2); unprefixed elements take the default */
  if (!(sg->attr && !colon))
    for (size_t i = 0; i < ld->m->n_ns; i++)
      if (!strcmp(ld->m->ns[i].prefix, prefix)) {
        sg->href = xmlStrdup(BAD_CAST ld->m->ns[i].href);
        found = 1;
      }
  if (colon && !found) return hub_node_error(at, ld->eb, ld->es, "namespace prefix '%s' is not declared", prefix);
  if (colon && !(sg->prefix = strdup(prefix))) return hub_node_error(at, ld->eb, ld->es, "out of memory");
  memmove(s, local, strlen(local) + 1);
  return HUB_OK;
}

/* "a.b.c" for JSON, "p:a/p:b/@c" for XML; a YAML list gives the steps one by one. */
static hub_err_t load_target(struct loader *ld, const struct hub_node *n, struct seg **segs, size_t *count) {
  char sep = ld->m->out == LT_MAP_JSON ? '.' : '/';
  if (n->kind == HUB_NODE_SEQ) {
    if (!n->n) return hub_node_error(n, ld->eb, ld->es, "empty target");
    if (!(*segs = calloc(n->n, sizeof **segs))) return hub_node_error(n, ld->eb, ld->es, "out of memory");
    *count = n->n;
    for (size_t i = 0; i < n->n; i++) {
      if (want_scalar(ld, n->items[i], "a target step")) return HUB_ERR_CONFIG;
      if (parse_seg(ld, n->items[i], n->items[i]->scalar, strlen(n->items[i]->scalar), &(*segs)[i], i + 1 == n->n))
        return HUB_ERR_CONFIG;
    }
    return HUB_OK;
  }
  if (want_scalar(ld, n, "to")) return HUB_ERR_CONFIG;
  /* "data[0].MaHoSo" reads like an index but would make a key named "data[0]" */
  if (ld->m->out == LT_MAP_JSON && strpbrk(n->scalar, "[]"))
    return hub_node_error(
        n, ld->eb, ld->es,
        "target '%s': keys are joined by '.', there are no indexes; a list is written by each "
        "(or a one-item list by each: $), and a key with brackets is written as a YAML list [\"a[0]\"]",
        n->scalar);
  size_t k = 1;
  for (const char *p = n->scalar; *p; p++) k += *p == sep;
  if (!(*segs = calloc(k, sizeof **segs))) return hub_node_error(n, ld->eb, ld->es, "out of memory");
  *count = k;
  const char *p = n->scalar;
  for (size_t i = 0; i < k; i++) {
    const char *e = strchr(p, sep);
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (parse_seg(ld, n, p, len, &(*segs)[i], i + 1 == k)) return HUB_ERR_CONFIG;
    p += len + 1;
  }
  return HUB_OK;
}

static hub_err_t load_rules(struct loader *ld, const struct hub_node *n, struct rule **rules, size_t *count);

static const struct hub_node *find_define(struct loader *ld, const char *name) {
  for (size_t i = 0; i < ld->m->n_defines; i++) {
    const struct hub_node *d = hub_node_get(ld->m->defines[i], name);
    if (d) return d;
  }
  return NULL;
}

static hub_err_t load_rule(struct loader *ld, const struct hub_node *n, struct rule *r) {
  static const char *const keys[] = {"to",      "from",       "from_doc", "value",  "concat", "generate", "apply",
                                     "default", "required",   "if",       "unless", "else",   "type",     "each",
                                     "rules",   "omit_empty", "context",  "first",  "all",    "use",      NULL};
  r->at = n;
  if (check_keys(ld, n, "a rule", keys)) return HUB_ERR_CONFIG;
  const struct hub_node *to = hub_node_get(n, "to"), *x;
  r->target = to && to->kind == HUB_NODE_SCALAR ? to->scalar : "(group)";
  if (to && load_target(ld, to, &r->segs, &r->n_segs)) return HUB_ERR_CONFIG;
  if (load_src(ld, n, &r->src, 1)) return HUB_ERR_CONFIG;
  if ((x = hub_node_get(n, "type"))) {
    static const char *const types[] = {"string", "integer", "number", "boolean", NULL};
    static const enum fn_kind kinds[] = {FN_STRING, FN_INTEGER, FN_NUMBER, FN_BOOLEAN};
    int t = -1;
    for (int i = 0; x->kind == HUB_NODE_SCALAR && types[i]; i++)
      if (!strcmp(x->scalar, types[i])) t = i;
    if (t < 0) return hub_node_error(x, ld->eb, ld->es, "type is string, integer, number or boolean");
    struct fn *f = realloc(r->src.fns, (r->src.n_fns + 1) * sizeof *f);
    if (!f) return hub_node_error(x, ld->eb, ld->es, "out of memory");
    r->src.fns = f;
    memset(&f[r->src.n_fns], 0, sizeof *f);
    f[r->src.n_fns].kind = kinds[t];
    f[r->src.n_fns++].at = x;
  }
  if ((x = hub_node_get(n, "required")) && get_bool(ld, x, "required", &r->required)) return HUB_ERR_CONFIG;
  if ((x = hub_node_get(n, "omit_empty")) && get_bool(ld, x, "omit_empty", &r->omit_empty)) return HUB_ERR_CONFIG;
  r->src.empty_absent = r->omit_empty;
  const struct hub_node *cif = hub_node_get(n, "if"), *cun = hub_node_get(n, "unless");
  if (cif && cun) return hub_node_error(cun, ld->eb, ld->es, "use if or unless, not both");
  if ((cif || cun) && load_cond(ld, cif ? cif : cun, !cif, &r->cond)) return HUB_ERR_CONFIG;
  if ((x = hub_node_get(n, "else"))) {
    static const char *const ekeys[] = {"from",  "from_doc", "value", "concat", "generate",
                                        "apply", "default",  "first", "all",    NULL};
    if (!cif && !cun) return hub_node_error(x, ld->eb, ld->es, "else goes with if or unless");
    if (hub_node_get(n, "each") || hub_node_get(n, "rules"))
      return hub_node_error(x, ld->eb, ld->es, "else belongs to a rule that writes one value (not each or rules)");
    r->has_else = 1;
    if (x->kind == HUB_NODE_SCALAR) {
      r->else_src.kind = SRC_VALUE;
      r->else_src.at = x;
      if (!(r->else_src.literal = literal_new(x))) return hub_node_error(x, ld->eb, ld->es, "else is not valid UTF-8");
    } else {
      if (check_keys(ld, x, "else", ekeys) || load_src(ld, x, &r->else_src, 1)) return HUB_ERR_CONFIG;
      if (r->else_src.kind == SRC_NONE)
        return hub_node_error(x, ld->eb, ld->es,
                              "else needs a value: a literal, or one of from, value, concat, generate");
    }
    r->else_src.empty_absent = r->omit_empty;
    if (r->src.n_fns && (x = hub_node_get(n, "type"))) { /* the final conversion holds for both branches */
      struct fn *f = realloc(r->else_src.fns, (r->else_src.n_fns + 1) * sizeof *f);
      if (!f) return hub_node_error(x, ld->eb, ld->es, "out of memory");
      r->else_src.fns = f;
      f[r->else_src.n_fns++] = r->src.fns[r->src.n_fns - 1];
    }
  }
  if ((x = hub_node_get(n, "each"))) {
    r->is_each = 1;
    if (!to) return hub_node_error(n, ld->eb, ld->es, "each needs a target (to)");
    if (compile_expr(ld, x, &r->each)) return HUB_ERR_CONFIG;
  }
  const struct hub_node *use = hub_node_get(n, "use");
  if (use) {
    /* `use: NAME`: the named rule list of `define:`, here, as nested rules */
    if (hub_node_get(n, "rules")) return hub_node_error(use, ld->eb, ld->es, "use gives the rules: not with rules");
    if (want_scalar(ld, use, "use")) return HUB_ERR_CONFIG;
    const struct hub_node *def = find_define(ld, use->scalar);
    if (!def)
      return hub_node_error(use, ld->eb, ld->es, "no rules named '%s' in define (here or in an include)", use->scalar);
    if (ld->m->use_depth >= 16)
      return hub_node_error(use, ld->eb, ld->es, "use '%s' nests deeper than 16 (does it use itself?)", use->scalar);
    if (r->src.kind != SRC_NONE || r->src.n_fns || r->src.def)
      return hub_node_error(use, ld->eb, ld->es, "a rule with use takes no value, apply or default of its own");
    r->has_rules = 1;
    ld->m->use_depth++;
    hub_err_t urc = load_rules(ld, def, &r->rules, &r->n_rules);
    ld->m->use_depth--;
    if (urc) return urc;
    if ((x = hub_node_get(n, "context"))) {
      if (r->is_each) return hub_node_error(x, ld->eb, ld->es, "each already sets the context of its rules");
      if (compile_expr(ld, x, &r->context)) return HUB_ERR_CONFIG;
    }
  } else if ((x = hub_node_get(n, "rules"))) {
    r->has_rules = 1;
    if (r->src.kind != SRC_NONE || r->src.n_fns || r->src.def)
      return hub_node_error(x, ld->eb, ld->es, "a rule with nested rules takes no value, apply or default of its own");
    if (load_rules(ld, x, &r->rules, &r->n_rules)) return HUB_ERR_CONFIG;
    if ((x = hub_node_get(n, "context"))) {
      if (r->is_each) return hub_node_error(x, ld->eb, ld->es, "each already sets the context of its rules");
      if (compile_expr(ld, x, &r->context)) return HUB_ERR_CONFIG;
    }
  } else if ((x = hub_node_get(n, "context"))) {
    return hub_node_error(x, ld->eb, ld->es, "context belongs to a rule with nested rules");
  } else if (r->src.kind == SRC_NONE && !r->is_each) {
    return hub_node_error(n, ld->eb, ld->es, "a rule needs one of from, from_doc, value, concat, generate, each or rules");
  } else if (!to) {
    return hub_node_error(n, ld->eb, ld->es, "a rule that writes a value needs a target (to)");
  }
  if (r->is_each && !r->has_rules && r->src.kind == SRC_NONE) {
    /* `each` without a value maps every element as it is */
    const struct hub_node *dot = hub_node_get(n, "each");
    r->src.kind = SRC_PATH;
    r->src.expr = ld->m->in == LT_MAP_JSON ? "$" : ".";
    if (ld->m->in == LT_MAP_JSON) {
      char why[128];
      if (lt_jsonpath_compile("$", &r->src.jp, why, sizeof why)) return hub_node_error(dot, ld->eb, ld->es, "%s", why);
    } else if (!(r->src.xp = xmlXPathCompile(BAD_CAST "."))) {
      return hub_node_error(dot, ld->eb, ld->es, "out of memory");
    }
  }
  return HUB_OK;
}

static hub_err_t load_rules(struct loader *ld, const struct hub_node *n, struct rule **rules, size_t *count) {
  if (n->kind != HUB_NODE_SEQ) return hub_node_error(n, ld->eb, ld->es, "rules must be a list of rules");
  if (!(*rules = calloc(n->n ? n->n : 1, sizeof **rules))) return hub_node_error(n, ld->eb, ld->es, "out of memory");
  *count = n->n;
  for (size_t i = 0; i < n->n; i++)
    if (load_rule(ld, n->items[i], &(*rules)[i])) return HUB_ERR_CONFIG;
  return HUB_OK;
}

static hub_err_t load_format(struct loader *ld, const struct hub_node *n, const char *what, enum lt_map_format *out) {
  if (n->kind == HUB_NODE_SCALAR && !strcmp(n->scalar, "json")) return *out = LT_MAP_JSON, HUB_OK;
  if (n->kind == HUB_NODE_SCALAR && !strcmp(n->scalar, "xml")) return *out = LT_MAP_XML, HUB_OK;
  return hub_node_error(n, ld->eb, ld->es, "%s is json or xml", what);
}

/* The code lists of this file and its includes; a name defined twice is an error. */
static hub_err_t load_lookups(struct loader *ld) {
  static const char *const keys[] = {"entries", "default", NULL};
  size_t total = 0;
  for (size_t k = 0; k < ld->n_lookup_nodes; k++) {
    const struct hub_node *n = ld->lookup_nodes[k];
    if (n->kind != HUB_NODE_MAP) return hub_node_error(n, ld->eb, ld->es, "lookups must be a mapping of tables");
    total += n->n;
  }
  if (!(ld->m->lookups = calloc(total ? total : 1, sizeof *ld->m->lookups)))
    return hub_node_error(ld->lookup_nodes[0], ld->eb, ld->es, "out of memory");
  for (size_t k = 0; k < ld->n_lookup_nodes; k++) {
    const struct hub_node *n = ld->lookup_nodes[k];
    for (size_t i = 0; i < n->n; i++) {
      struct lookup *lk = &ld->m->lookups[ld->m->n_lookups];
      const struct hub_node *t = n->items[i];
      lk->name = n->keys[i]->scalar;
      if (find_lookup(ld->m, lk->name))
        return hub_node_error(n->keys[i], ld->eb, ld->es,
                              "lookup '%s' is defined twice (here and in this file or an include)", lk->name);
      ld->m->n_lookups++;
      if (check_keys(ld, t, "a lookup table", keys)) return HUB_ERR_CONFIG;
      const struct hub_node *e = hub_node_get(t, "entries"), *d = hub_node_get(t, "default");
      if (!e || e->kind != HUB_NODE_MAP)
        return hub_node_error(e ? e : t, ld->eb, ld->es, "lookup '%s' needs entries: a mapping CODE: VALUE", lk->name);
      lk->entries = e;
      if (!(lk->values = literal_new(e))) return hub_node_error(e, ld->eb, ld->es, "bad lookup entries");
      if (d && !(lk->def = literal_new(d))) return hub_node_error(d, ld->eb, ld->es, "bad default");
    }
  }
  return HUB_OK;
}

/* `define:` and `include:`: named rule lists and code lists shared between mappings. An
 * included file holds only define: and lookups: (and a description); includes do not nest. */
static hub_err_t load_reuse(struct loader *ld, const struct hub_node *root) {
  static const char *const inc_keys[] = {"description", "define", "lookups", NULL};
  struct lt_map *m = ld->m;
  const struct hub_node *inc = hub_node_get(root, "include"), *x;
  size_t n_inc = inc ? (inc->kind == HUB_NODE_SEQ ? inc->n : 1) : 0;
  if (n_inc > 16) return hub_node_error(inc, ld->eb, ld->es, "at most 16 includes");
  if (!(m->defines = calloc(n_inc + 1, sizeof *m->defines)) || !(m->includes = calloc(n_inc + 1, sizeof *m->includes)))
    return hub_node_error(root, ld->eb, ld->es, "out of memory");
  if ((x = hub_node_get(root, "define"))) {
    if (x->kind != HUB_NODE_MAP) return hub_node_error(x, ld->eb, ld->es, "define is a mapping NAME: [rules]");
    m->defines[m->n_defines++] = x;
  }
  if ((x = hub_node_get(root, "lookups"))) ld->lookup_nodes[ld->n_lookup_nodes++] = x;
  for (size_t i = 0; i < n_inc; i++) {
    const struct hub_node *f = inc->kind == HUB_NODE_SEQ ? inc->items[i] : inc;
    char why[1024], *path;
    if (want_scalar(ld, f, "include")) return HUB_ERR_CONFIG;
    if (!(path = hub_path_beside_new(m->path, f->scalar))) return hub_node_error(f, ld->eb, ld->es, "out of memory");
    struct hub_node *r = hub_node_load_file(path, why, sizeof why);
    free(path);
    if (!r) return hub_node_error(f, ld->eb, ld->es, "include %s: %s", f->scalar, why);
    m->includes[m->n_includes++] = r;
    if (check_keys(ld, r, "an included file", inc_keys)) return HUB_ERR_CONFIG;
    if ((x = hub_node_get(r, "define"))) {
      if (x->kind != HUB_NODE_MAP) return hub_node_error(x, ld->eb, ld->es, "define is a mapping NAME: [rules]");
      for (size_t k = 0; k < x->n; k++)
        if (find_define(ld, x->keys[k]->scalar))
          return hub_node_error(x->keys[k], ld->eb, ld->es, "rules '%s' are defined twice", x->keys[k]->scalar);
      m->defines[m->n_defines++] = x;
    }
    if ((x = hub_node_get(r, "lookups"))) ld->lookup_nodes[ld->n_lookup_nodes++] = x;
  }
  return HUB_OK;
}

static hub_err_t load_xslt(struct loader *ld, const struct hub_node *root) {
  struct lt_map *m = ld->m;
  const struct hub_node *sn = hub_node_get(root, "stylesheet"), *pn = hub_node_get(root, "params");
  char *path = NULL, *buf = NULL;
  xmlDocPtr doc = NULL;
  hub_err_t rc = HUB_ERR_CONFIG;
  if (m->in != LT_MAP_XML || m->out != LT_MAP_XML)
    return hub_node_error(root, ld->eb, ld->es, "a mapping of kind xslt has input: xml and output: xml");
  if (!sn || want_scalar(ld, sn, "stylesheet"))
    return hub_node_error(sn ? sn : root, ld->eb, ld->es, "kind xslt needs stylesheet: FILE");
  if (hub_node_get(root, "rules") || hub_node_get(root, "lookups"))
    return hub_node_error(root, ld->eb, ld->es, "a mapping of kind xslt has no rules or lookups");
  size_t len = 0;
  char why[512];
  if (!(path = hub_path_beside_new(m->path, sn->scalar))) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  if (hub_file_read(path, MAX_MAPPING_BYTES, &buf, &len, why, sizeof why)) {
    hub_node_error(sn, ld->eb, ld->es, "stylesheet: %s", why);
    goto out;
  }
  if (hub_xml_parse(buf, len, NULL, path, &doc, why, sizeof why)) {
    hub_node_error(sn, ld->eb, ld->es, "stylesheet: %s", why);
    goto out;
  }
  if (!(m->style = xsltParseStylesheetDoc(doc))) {
    hub_node_error(sn, ld->eb, ld->es, "%s is not a valid XSLT 1.0 stylesheet", path);
    goto out;
  }
  doc = NULL; /* owned by the stylesheet now */
  m->sec = xsltNewSecurityPrefs();
  if (!m->sec || xsltSetSecurityPrefs(m->sec, XSLT_SECPREF_READ_FILE, xsltSecurityForbid) ||
      xsltSetSecurityPrefs(m->sec, XSLT_SECPREF_WRITE_FILE, xsltSecurityForbid) ||
      xsltSetSecurityPrefs(m->sec, XSLT_SECPREF_CREATE_DIRECTORY, xsltSecurityForbid) ||
      xsltSetSecurityPrefs(m->sec, XSLT_SECPREF_READ_NETWORK, xsltSecurityForbid) ||
      xsltSetSecurityPrefs(m->sec, XSLT_SECPREF_WRITE_NETWORK, xsltSecurityForbid)) {
    hub_node_error(sn, ld->eb, ld->es, "cannot set XSLT security preferences");
    goto out;
  }
  size_t np = pn ? pn->n : 0;
  if (pn && pn->kind != HUB_NODE_MAP) {
    hub_node_error(pn, ld->eb, ld->es, "params must be a mapping NAME: TEXT");
    goto out;
  }
  if (!(m->params = calloc(2 * np + 1, sizeof *m->params))) goto out;
  for (size_t i = 0; i < np; i++) {
    if (want_scalar(ld, pn->items[i], "a parameter")) goto out;
    m->params[2 * i] = pn->keys[i]->scalar;
    m->params[2 * i + 1] = pn->items[i]->scalar;
  }
  rc = HUB_OK;
out:
  free(path);
  free(buf);
  xmlFreeDoc(doc);
  return rc;
}

/* input_schema / output_schema: a .json JSON Schema for JSON, an .xsd for XML, relative to the
 * mapping file. */
static hub_err_t load_contract(struct loader *ld, const struct hub_node *n, enum lt_map_format fmt,
                               struct lt_schema **schema, struct lt_validator **xsd, const char **shown) {
  char why[1024];
  if (want_scalar(ld, n, "a schema file")) return HUB_ERR_CONFIG;
  *shown = n->scalar;
  size_t pl = strlen(n->scalar);
  int is_xsd = pl > 4 && !strcmp(n->scalar + pl - 4, ".xsd");
  if (is_xsd != (fmt == LT_MAP_XML))
    return hub_node_error(n, ld->eb, ld->es, "%s needs %s", n->scalar,
                          fmt == LT_MAP_XML ? "an .xsd schema for XML" : "a JSON Schema for JSON");
  char *path = hub_path_beside_new(ld->m->path, n->scalar);
  if (!path) return HUB_ERR_NOMEM;
  hub_err_t rc = is_xsd ? lt_validator_load(path, xsd, why, sizeof why) : lt_schema_load_file(path, schema, why, sizeof why);
  free(path);
  if (rc) return hub_node_error(n, ld->eb, ld->es, "%s", why);
  return HUB_OK;
}

/* split: {each: $.a.b, size: N, key: QUERY} */
static hub_err_t load_split(struct loader *ld, const struct hub_node *n) {
  static const char *const keys[] = {"each", "size", "key", NULL};
  struct split *sp = &ld->m->split;
  if (check_keys(ld, n, "split", keys)) return HUB_ERR_CONFIG;
  if (ld->m->in != LT_MAP_JSON || ld->m->out != LT_MAP_JSON)
    return hub_node_error(n, ld->eb, ld->es, "split is for input: json and output: json");
  const struct hub_node *each = hub_node_get(n, "each"), *size = hub_node_get(n, "size"), *key = hub_node_get(n, "key");
  if (!each || want_scalar(ld, each, "split each"))
    return hub_node_error(each ? each : n, ld->eb, ld->es, "split needs each: the list to split, as $.name(.name)*");
  struct src path = {.expr = each->scalar};
  /* a plain member path: each output sees the input with this list cut to its chunk */
  if (simple_path(&path) || !path.simple || path.simple_star || !path.n_names) {
    for (size_t i = 0; i < path.n_names; i++)
      free(path.names[i]);
    free(path.names);
    return hub_node_error(each, ld->eb, ld->es, "split each is a list's place as $.name(.name)*, not '%s'",
                          each->scalar);
  }
  sp->at = n;
  sp->expr = each->scalar;
  sp->names = path.names;
  sp->n_names = path.n_names;
  long sz = 1;
  if (size && get_long(ld, size, "split size", 1, 100000, &sz)) return HUB_ERR_CONFIG;
  sp->size = (size_t)sz;
  if (key) {
    char why[256];
    if (want_scalar(ld, key, "split key")) return HUB_ERR_CONFIG;
    if (lt_jsonpath_compile(key->scalar, &sp->key, why, sizeof why))
      return hub_node_error(key, ld->eb, ld->es, "invalid JSONPath '%s': %s", key->scalar, why);
    sp->key_expr = key->scalar;
  }
  return HUB_OK;
}

int lt_map_splits(const struct lt_map *m) {
  return m->split.n_names > 0;
}

static hub_err_t load_map(struct loader *ld, const struct hub_node *root) {
  static const char *const keys[] = {"name",          "description", "kind",   "input",      "output", "namespaces",
                                     "root",          "lookups",     "rules",  "stylesheet", "params", "input_schema",
                                     "output_schema", "split",       "define", "include",    NULL};
  struct lt_map *m = ld->m;
  const struct hub_node *x;
  if (check_keys(ld, root, "a mapping file", keys)) return HUB_ERR_CONFIG;
  const struct hub_node *in = hub_node_get(root, "input"), *out = hub_node_get(root, "output");
  if (!in || !out) return hub_node_error(root, ld->eb, ld->es, "a mapping needs input: json|xml and output: json|xml");
  if (load_format(ld, in, "input", &m->in) || load_format(ld, out, "output", &m->out)) return HUB_ERR_CONFIG;
  if ((x = hub_node_get(root, "namespaces"))) {
    if (x->kind != HUB_NODE_MAP) return hub_node_error(x, ld->eb, ld->es, "namespaces must be a mapping PREFIX: URI");
    if (!(m->ns = calloc(x->n ? x->n : 1, sizeof *m->ns))) return HUB_ERR_NOMEM;
    m->n_ns = x->n;
    for (size_t i = 0; i < x->n; i++) {
      if (want_scalar(ld, x->items[i], "a namespace URI")) return HUB_ERR_CONFIG;
      const char *p = x->keys[i]->scalar;
      if (*p && xmlValidateNCName(BAD_CAST p, 0))
        return hub_node_error(x->keys[i], ld->eb, ld->es, "'%s' is not a namespace prefix", p);
      m->ns[i].prefix = p;
      m->ns[i].href = x->items[i]->scalar;
    }
  }
  if ((x = hub_node_get(root, "input_schema")) &&
      load_contract(ld, x, m->in, &m->in_schema, &m->in_xsd, &m->in_schema_path))
    return HUB_ERR_CONFIG;
  if ((x = hub_node_get(root, "output_schema")) &&
      load_contract(ld, x, m->out, &m->out_schema, &m->out_xsd, &m->out_schema_path))
    return HUB_ERR_CONFIG;
  const struct hub_node *kind = hub_node_get(root, "kind");
  if (kind && (kind->kind != HUB_NODE_SCALAR || (strcmp(kind->scalar, "rules") && strcmp(kind->scalar, "xslt"))))
    return hub_node_error(kind, ld->eb, ld->es, "kind is rules (the default) or xslt");
  if (kind && !strcmp(kind->scalar, "xslt")) {
    m->xslt = 1;
    return load_xslt(ld, root);
  }
  if ((x = hub_node_get(root, "stylesheet")) || (x = hub_node_get(root, "params")))
    return hub_node_error(x, ld->eb, ld->es, "'%s' belongs to kind: xslt", x == hub_node_get(root, "params") ? "params" : "stylesheet");
  const struct hub_node *rn = hub_node_get(root, "root");
  if (m->out == LT_MAP_XML) {
    if (!rn) return hub_node_error(root, ld->eb, ld->es, "output: xml needs root: the root element's name");
    if (want_scalar(ld, rn, "root") || parse_seg(ld, rn, rn->scalar, strlen(rn->scalar), &m->out_root, 1))
      return HUB_ERR_CONFIG;
    if (m->out_root.attr) return hub_node_error(rn, ld->eb, ld->es, "root must be an element");
  } else if (rn) {
    return hub_node_error(rn, ld->eb, ld->es, "root is only for output: xml");
  }
  if (load_reuse(ld, root)) return HUB_ERR_CONFIG;
  if (ld->n_lookup_nodes && load_lookups(ld)) return HUB_ERR_CONFIG;
  if ((x = hub_node_get(root, "split")) && load_split(ld, x)) return HUB_ERR_CONFIG;
  if (!(x = hub_node_get(root, "rules"))) return hub_node_error(root, ld->eb, ld->es, "a mapping needs rules");
  return load_rules(ld, x, &m->rules, &m->n_rules);
}

hub_err_t lt_map_load_file(const char *path, struct lt_map **out, char *errbuf, size_t errbuf_size) {
  struct lt_map *m = calloc(1, sizeof *m);
  struct loader ld = {m, errbuf, errbuf_size};
  hub_err_t rc;
  *out = NULL;
  if (!m || !(m->path = strdup(path))) {
    free(m);
    snprintf(errbuf, errbuf_size, "out of memory");
    return HUB_ERR_NOMEM;
  }
  if (!(m->root = hub_node_load_file(path, errbuf, errbuf_size))) {
    rc = HUB_ERR_CONFIG;
    goto out;
  }
  rc = load_map(&ld, m->root);
out:
  if (rc) {
    lt_map_destroy(m);
    return rc;
  }
  *out = m;
  return HUB_OK;
}

static void src_release(struct src *s) {
  for (size_t i = 0; i < s->n_names; i++) free(s->names[i]);
  free(s->names);
  lt_jsonpath_destroy(s->jp);
  if (s->xp) xmlXPathFreeCompExpr(s->xp);
  json_decref(s->literal);
  json_decref(s->def);
  for (size_t i = 0; i < s->n_parts; i++) src_release(&s->parts[i]);
  free(s->parts);
  for (size_t i = 0; i < s->n_fallbacks; i++)
    src_release(&s->fallbacks[i]);
  free(s->fallbacks);
  for (size_t i = 0; i < s->n_fns; i++)
    pcre2_code_free(s->fns[i].re);
  free(s->fns);
}

static void segs_release(struct seg *segs, size_t n) {
  for (size_t i = 0; segs && i < n; i++) {
    free((char *)segs[i].key);
    free(segs[i].prefix);
    xmlFree(segs[i].href);
  }
  free(segs);
}

static void rules_release(struct rule *rules, size_t n) {
  for (size_t i = 0; rules && i < n; i++) {
    struct rule *r = &rules[i];
    segs_release(r->segs, r->n_segs);
    src_release(&r->src);
    src_release(&r->each);
    src_release(&r->cond.src);
    src_release(&r->context);
    src_release(&r->else_src);
    json_decref(r->cond.equals);
    json_decref(r->cond.in);
    rules_release(r->rules, r->n_rules);
  }
  free(rules);
}

void lt_map_destroy(struct lt_map *m) {
  if (!m) return;
  for (size_t i = 0; i < m->split.n_names; i++)
    free(m->split.names[i]);
  free(m->split.names);
  lt_jsonpath_destroy(m->split.key);
  rules_release(m->rules, m->n_rules);
  for (size_t i = 0; i < m->n_lookups; i++) {
    json_decref(m->lookups[i].values);
    json_decref(m->lookups[i].def);
  }
  free(m->lookups);
  free((char *)m->out_root.key);
  free(m->out_root.prefix);
  xmlFree(m->out_root.href);
  free(m->ns);
  if (m->style) xsltFreeStylesheet(m->style);
  if (m->sec) xsltFreeSecurityPrefs(m->sec);
  lt_schema_destroy(m->in_schema);
  lt_schema_destroy(m->out_schema);
  lt_validator_destroy(m->in_xsd);
  lt_validator_destroy(m->out_xsd);
  free(m->params);
  for (size_t i = 0; i < m->n_includes; i++)
    hub_node_destroy(m->includes[i]);
  free(m->includes);
  free(m->defines);
  hub_node_destroy(m->root);
  free(m->path);
  free(m);
}

enum lt_map_format lt_map_input_format(const struct lt_map *m) { return m->in; }
enum lt_map_format lt_map_output_format(const struct lt_map *m) { return m->out; }
const char *lt_map_content_type(const struct lt_map *m) {
  return m->out == LT_MAP_JSON ? "application/json" : "application/xml";
}
const char *lt_map_path(const struct lt_map *m) { return m->path; }
