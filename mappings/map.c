/* The mapping engine: loads a mapping file into rules (every rule keeps its YAML node, so
 * errors name the line), and runs them over JSON (JSONPath) or XML (XPath) input into a fresh
 * JSON value or XML document that is serialised only when every rule succeeded. Mappings of
 * kind `xslt` run a libxslt stylesheet with file and network access forbidden. */
#include "mappings/map.h"

#include <errno.h>
#include <jansson.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <libxslt/security.h>
#include <libxslt/transform.h>
#include <libxslt/variables.h>
#include <libxslt/xsltInternals.h>
#include <libxslt/xsltutils.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hub/cfgmap.h"
#include "hub/log.h"
#include "hub/msg.h"
#include "hub/node.h"
#include "hub/xml.h"
#include "mappings/json.h"
#include "mappings/jsonpath.h"
#include "mappings/jsonschema.h"
#include "mappings/map_fn.h"
#include "mappings/step_validate.h"

#define MAX_MAPPING_BYTES (4u * 1024u * 1024u)

enum fn_kind {
  FN_TRIM, FN_UPPER, FN_LOWER, FN_SHA256, FN_STRING, FN_INTEGER, FN_NUMBER, FN_BOOLEAN,
  FN_SUBSTRING, FN_DATE, FN_FORMAT_NUMBER, FN_MONEY, FN_LOOKUP, FN_REPLACE, FN_STRIP_PREFIX
};

struct lookup {
  const char *name;
  const struct hub_node *entries; /* a map of scalar keys to literal values */
  json_t *values;                 /* key -> value */
  json_t *def;                    /* NULL: a missing key is an error */
};

struct fn {
  enum fn_kind kind;
  const struct hub_node *at;
  long start, len;
  const char *from, *to; /* date patterns; replace old/new; strip_prefix */
  const char *alt[4];    /* date: more input patterns, tried after `from` */
  int zone_in, zone_out;
  int decimals;
  const char *group, *point, *symbol;
  int symbol_first;
  const struct lookup *lookup;
};

enum src_kind { SRC_NONE, SRC_PATH, SRC_VALUE, SRC_CONCAT, SRC_UUID, SRC_NOW };

struct src {
  enum src_kind kind;
  const struct hub_node *at;
  const char *expr;
  int from_doc; /* inside `each`: evaluate against the whole input, not the element */
  struct lt_jsonpath *jp;
  xmlXPathCompExprPtr xp;
  json_t *literal;
  struct src *parts;
  size_t n_parts;
  struct fn *fns;
  size_t n_fns;
  json_t *def;
  int empty_absent; /* omit_empty: an empty string counts as missing, before any function */
  /* $.a.b or $.a.b[*]: member names walked directly, without the general JSONPath engine */
  int simple, simple_star;
  char **names;
  size_t n_names;
};

struct cond {
  int present, negate;
  struct src src;
  json_t *equals; /* or NULL */
  json_t *in;     /* array, or NULL */
};

struct seg {
  const char *key; /* JSON key, or XML local name */
  char *prefix;    /* XML: the prefix as written, NULL for none */
  xmlChar *href;   /* XML namespace (owned copy) or NULL */
  int attr;
};

struct rule {
  const struct hub_node *at;
  const char *target; /* as written, for messages */
  struct seg *segs;
  size_t n_segs;
  struct src src;
  int required, omit_empty;
  struct cond cond;
  int is_each;
  struct src each;
  struct rule *rules;
  size_t n_rules;
  int has_rules;
  struct src context; /* groups: the input node the nested rules read from */
};

struct ns {
  const char *prefix; /* "" for the default namespace */
  const char *href;
};

struct lt_map {
  char *path;
  struct hub_node *root;
  int xslt;
  enum lt_map_format in, out;
  struct ns *ns;
  size_t n_ns;
  struct seg out_root;
  struct lookup *lookups;
  size_t n_lookups;
  struct rule *rules;
  size_t n_rules;
  xsltStylesheetPtr style;
  xsltSecurityPrefsPtr sec;
  const char **params; /* name, value, ..., NULL */
  /* contracts: JSON Schema checked on the parsed tree (no second parse), XSD on the bytes */
  struct lt_schema *in_schema, *out_schema;
  struct lt_validator *in_xsd, *out_xsd;
  const char *in_schema_path, *out_schema_path;
};

static int64_t fixed_clock_ms;
static unsigned long fixed_uuid_counter;

void lt_map_set_fixed_clock(int64_t epoch_ms) {
  fixed_clock_ms = epoch_ms;
  fixed_uuid_counter = 0;
}

/* ---------------------------------------------------------------------------------------- */
/* loading                                                                                    */

struct loader {
  struct lt_map *m;
  char *eb;
  size_t es;
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
  } simple[] = {{"trim", FN_TRIM},       {"upper", FN_UPPER},     {"lower", FN_LOWER},     {"sha256", FN_SHA256},
                {"string", FN_STRING},   {"integer", FN_INTEGER}, {"number", FN_NUMBER},   {"boolean", FN_BOOLEAN},
                {NULL, 0}};
  f->at = n;
  f->len = -1;
  f->group = "";
  f->point = ".";
  if (n->kind == HUB_NODE_SCALAR) {
    for (int i = 0; simple[i].name; i++)
      if (!strcmp(n->scalar, simple[i].name)) {
        f->kind = simple[i].kind;
        return HUB_OK;
      }
    return hub_node_error(n, ld->eb, ld->es,
                          "unknown function '%s' (plain: trim, upper, lower, sha256, string, integer, number, boolean; "
                          "with arguments: substring, date, format_number, money, lookup, replace, strip_prefix)",
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

/* XPath errors arrive through the context's structured handler; keep the last message. */
static void xpath_error(void *user, xmlErrorPtr err) {
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
  char why[256] = "syntax error";
  xmlXPathContextPtr ctx = xmlXPathNewContext(NULL);
  if (!ctx) return hub_node_error(n, ld->eb, ld->es, "out of memory");
  ctx->error = xpath_error;
  ctx->userData = why;
  s->xp = xmlXPathCtxtCompile(ctx, BAD_CAST n->scalar);
  xmlXPathFreeContext(ctx);
  if (!s->xp) return hub_node_error(n, ld->eb, ld->es, "invalid XPath '%s': %s", n->scalar, why);
  return HUB_OK;
}

static hub_err_t load_src(struct loader *ld, const struct hub_node *n, struct src *s, int allow_concat);

/* A concat part: a plain scalar is literal text; a mapping is a source. */
static hub_err_t load_part(struct loader *ld, const struct hub_node *n, struct src *s) {
  static const char *const keys[] = {"from", "from_doc", "value", "generate", "apply", "default", NULL};
  if (n->kind == HUB_NODE_SCALAR) {
    s->kind = SRC_VALUE;
    s->at = n;
    s->literal = json_string(n->scalar);
    return s->literal ? HUB_OK : hub_node_error(n, ld->eb, ld->es, "concat text is not valid UTF-8");
  }
  if (check_keys(ld, n, "a concat part", keys)) return HUB_ERR_CONFIG;
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
  } else if (!strcmp(kind, "from") || !strcmp(kind, "from_doc")) {
    s->from_doc = kind[4] == '_';
    if (compile_expr(ld, which, s)) return HUB_ERR_CONFIG;
  } else if (!strcmp(kind, "value")) {
    s->kind = SRC_VALUE;
    if (!(s->literal = literal_new(which))) return hub_node_error(which, ld->eb, ld->es, "value is not valid UTF-8");
  } else if (!strcmp(kind, "concat")) {
    if (!allow_concat) return hub_node_error(which, ld->eb, ld->es, "concat cannot be nested");
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
  if ((x = hub_node_get(n, "apply")) && load_fns(ld, x, &s->fns, &s->n_fns)) return HUB_ERR_CONFIG;
  if ((x = hub_node_get(n, "default")) && !(s->def = literal_new(x)))
    return hub_node_error(x, ld->eb, ld->es, "default is not valid UTF-8");
  return HUB_OK;
}

static hub_err_t load_cond(struct loader *ld, const struct hub_node *n, int negate, struct cond *c) {
  static const char *const keys[] = {"from", "from_doc", "equals", "in", NULL};
  c->present = 1;
  c->negate = negate;
  if (n->kind == HUB_NODE_SCALAR) return compile_expr(ld, n, &c->src);
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

static hub_err_t load_rule(struct loader *ld, const struct hub_node *n, struct rule *r) {
  static const char *const keys[] = {"to",     "from", "from_doc", "value", "concat",   "generate", "apply", "default",
                                     "required", "if", "unless",   "type",  "each",     "rules",    "omit_empty", "context", NULL};
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
  if ((x = hub_node_get(n, "each"))) {
    r->is_each = 1;
    if (!to) return hub_node_error(n, ld->eb, ld->es, "each needs a target (to)");
    if (compile_expr(ld, x, &r->each)) return HUB_ERR_CONFIG;
  }
  if ((x = hub_node_get(n, "rules"))) {
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

static hub_err_t load_lookups(struct loader *ld, const struct hub_node *n) {
  static const char *const keys[] = {"entries", "default", NULL};
  if (n->kind != HUB_NODE_MAP) return hub_node_error(n, ld->eb, ld->es, "lookups must be a mapping of tables");
  if (!(ld->m->lookups = calloc(n->n ? n->n : 1, sizeof *ld->m->lookups)))
    return hub_node_error(n, ld->eb, ld->es, "out of memory");
  ld->m->n_lookups = n->n;
  for (size_t i = 0; i < n->n; i++) {
    struct lookup *lk = &ld->m->lookups[i];
    const struct hub_node *t = n->items[i];
    lk->name = n->keys[i]->scalar;
    if (check_keys(ld, t, "a lookup table", keys)) return HUB_ERR_CONFIG;
    const struct hub_node *e = hub_node_get(t, "entries"), *d = hub_node_get(t, "default");
    if (!e || e->kind != HUB_NODE_MAP)
      return hub_node_error(e ? e : t, ld->eb, ld->es, "lookup '%s' needs entries: a mapping CODE: VALUE", lk->name);
    lk->entries = e;
    if (!(lk->values = literal_new(e))) return hub_node_error(e, ld->eb, ld->es, "bad lookup entries");
    if (d && !(lk->def = literal_new(d))) return hub_node_error(d, ld->eb, ld->es, "bad default");
  }
  return HUB_OK;
}

static hub_err_t load_xslt(struct loader *ld, const struct hub_node *root) {
  struct lt_map *m = ld->m;
  const struct hub_node *sn = hub_node_get(root, "stylesheet"), *pn = hub_node_get(root, "params");
  char path[4096];
  char *buf = NULL;
  xmlDocPtr doc = NULL;
  hub_err_t rc = HUB_ERR_CONFIG;
  if (m->in != LT_MAP_XML || m->out != LT_MAP_XML)
    return hub_node_error(root, ld->eb, ld->es, "a mapping of kind xslt has input: xml and output: xml");
  if (!sn || want_scalar(ld, sn, "stylesheet"))
    return hub_node_error(sn ? sn : root, ld->eb, ld->es, "kind xslt needs stylesheet: FILE");
  if (hub_node_get(root, "rules") || hub_node_get(root, "lookups"))
    return hub_node_error(root, ld->eb, ld->es, "a mapping of kind xslt has no rules or lookups");
  const char *slash = strrchr(m->path, '/');
  if (sn->scalar[0] == '/' || !slash)
    snprintf(path, sizeof path, "%s", sn->scalar);
  else
    snprintf(path, sizeof path, "%.*s/%s", (int)(slash - m->path), m->path, sn->scalar);
  size_t len = 0;
  char why[512];
  if (lt_file_read(path, MAX_MAPPING_BYTES, &buf, &len, why, sizeof why)) {
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
  free(buf);
  xmlFreeDoc(doc);
  return rc;
}

/* input_schema / output_schema: a .json JSON Schema for JSON, an .xsd for XML, relative to the
 * mapping file. */
static hub_err_t load_contract(struct loader *ld, const struct hub_node *n, enum lt_map_format fmt,
                               struct lt_schema **schema, struct lt_validator **xsd, const char **shown) {
  char path[4096], why[1024];
  if (want_scalar(ld, n, "a schema file")) return HUB_ERR_CONFIG;
  const char *slash = strrchr(ld->m->path, '/');
  if (n->scalar[0] == '/' || !slash)
    snprintf(path, sizeof path, "%s", n->scalar);
  else
    snprintf(path, sizeof path, "%.*s/%s", (int)(slash - ld->m->path), ld->m->path, n->scalar);
  *shown = n->scalar;
  size_t pl = strlen(path);
  int is_xsd = pl > 4 && !strcmp(path + pl - 4, ".xsd");
  if (is_xsd != (fmt == LT_MAP_XML))
    return hub_node_error(n, ld->eb, ld->es, "%s needs %s", n->scalar,
                          fmt == LT_MAP_XML ? "an .xsd schema for XML" : "a JSON Schema for JSON");
  hub_err_t rc = is_xsd ? lt_validator_load(path, xsd, why, sizeof why) : lt_schema_load_file(path, schema, why, sizeof why);
  if (rc) return hub_node_error(n, ld->eb, ld->es, "%s", why);
  return HUB_OK;
}

static hub_err_t load_map(struct loader *ld, const struct hub_node *root) {
  static const char *const keys[] = {"name",       "description", "kind",         "input",         "output",
                                     "namespaces", "root",        "lookups",      "rules",         "stylesheet",
                                     "params",     "input_schema", "output_schema", NULL};
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
  if ((x = hub_node_get(root, "lookups")) && load_lookups(ld, x)) return HUB_ERR_CONFIG;
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
    json_decref(r->cond.equals);
    json_decref(r->cond.in);
    rules_release(r->rules, r->n_rules);
  }
  free(rules);
}

void lt_map_destroy(struct lt_map *m) {
  if (!m) return;
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

/* ---------------------------------------------------------------------------------------- */
/* running                                                                                    */

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
      else
        snprintf(buf, sizeof buf, "%.15g", d);
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
  char *t = scalar_text(v), *r = NULL;
  if (!t) return fail(run, sc, s, f->at, "expected a scalar value, got %s", type_name(v)), NULL;
  if (!lt_map_utf8_valid(t, strlen(t)) || (json_is_string(v) && strlen(t) != json_string_length(v))) {
    free(t);
    return fail(run, sc, s, f->at, "text contains a NUL byte or invalid UTF-8"), NULL;
  }
  char buf[512], why[300];
  switch (f->kind) {
    case FN_TRIM: r = lt_map_trim(t); break;
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
      if (n > 1) {
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

/* Evaluates without default or functions: *out is NULL when nothing matched. */
static int eval_raw(struct run *run, const struct scope *sc, const struct src *s, json_t **out) {
  char buf[64];
  *out = NULL;
  switch (s->kind) {
    case SRC_NONE: return 0;
    case SRC_VALUE: *out = json_incref(s->literal); return 0;
    case SRC_UUID:
      if (fixed_clock_ms) {
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
      for (size_t i = 0; i < s->n_parts; i++) {
        json_t *pv;
        if (eval_src(run, sc, &s->parts[i], &pv)) {
          free(acc);
          return -1;
        }
        if (!pv) {
          free(acc);
          return 0; /* a missing part makes the whole value missing */
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
      *out = json_stringn_nocheck(acc, len);
      free(acc);
      return 0;
    }
    case SRC_PATH:
      if (run->m->in == LT_MAP_JSON) {
        json_t *first;
        size_t n = select_one(run, sc, s, &first);
        if (n > 1)
          return fail(run, sc, NULL, s->at, "JSONPath %s matched %zu values where one is expected (use each)", s->expr,
                      n);
        if (n == 1) *out = json_incref(first);
        return 0;
      } else {
        xmlXPathObjectPtr o = xpath_eval(run, sc, s);
        if (!o) return -1;
        int err;
        *out = xpath_value(run, sc, s, o, &err);
        xmlXPathFreeObject(o);
        return err ? -1 : 0;
      }
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
  if (r->cond.present) {
    int c = eval_cond(run, sc, &r->cond);
    if (c <= 0) return c;
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
  if (eval_src(run, sc, &r->src, &v)) return -1;
  if (!v) {
    if (r->required) return fail(run, sc, &r->src, r->at, "required value is missing");
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
  struct run run = {.m = m, .eb = errbuf, .es = errbuf_size};
  hub_err_t rc = HUB_ERR_MAP;
  xmlDocPtr xout = NULL;
  json_t *jout = NULL;
  char why[768];
  if (m->in == LT_MAP_JSON) {
    if ((rc = lt_json_parse(in, len, "input", &run.jroot, why, sizeof why))) {
      snprintf(errbuf, errbuf_size, "%s: %s", m->path, why);
      goto out;
    }
  } else {
    if ((rc = hub_xml_parse(in, len, NULL, "input", &run.xin, why, sizeof why))) {
      snprintf(errbuf, errbuf_size, "%s: %s", m->path, why);
      goto out;
    }
  }
  if ((m->in_schema || m->in_xsd) &&
      (rc = contract(m, "input", m->in_schema_path, m->in_schema, run.jroot, m->in_xsd, in, len, errbuf, errbuf_size)))
    goto out;
  rc = HUB_ERR_MAP;
  if (m->xslt) {
    xsltSetGenericErrorFunc(NULL, xslt_quiet);
    rc = run_xslt(m, run.xin, out, out_len, errbuf, errbuf_size);
    if (!rc && m->out_xsd &&
        (rc = contract(m, "output", m->out_schema_path, NULL, NULL, m->out_xsd, *out, *out_len, errbuf, errbuf_size))) {
      free(*out);
      *out = NULL;
    }
    goto out;
  }
  struct scope top = {0};
  if (m->in == LT_MAP_JSON) {
    top.jcur = run.jroot;
  } else {
    if (!(run.xpc = xmlXPathNewContext(run.xin))) goto out;
    run.xpc->error = xpath_error;
    run.xpc->userData = run.xerr;
    for (size_t i = 0; i < m->n_ns; i++)
      if (*m->ns[i].prefix) xmlXPathRegisterNs(run.xpc, BAD_CAST m->ns[i].prefix, BAD_CAST m->ns[i].href);
    top.xcur = xmlDocGetRootElement(run.xin);
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
  if (run_rules(&run, &top, m->rules, m->n_rules)) goto out;
  if (m->out_schema &&
      (rc = contract(m, "output", m->out_schema_path, m->out_schema, jout, NULL, NULL, 0, errbuf, errbuf_size)))
    goto out;
  if (m->out == LT_MAP_JSON) {
    char *s = json_dumps(jout, (flags & LT_MAP_PRETTY ? JSON_INDENT(2) : JSON_COMPACT) | JSON_ENCODE_ANY);
    if (!s) goto oom;
    *out_len = strlen(s);
    *out = (unsigned char *)s;
  } else {
    xmlChar *buf = NULL;
    int blen = 0;
    xmlDocDumpFormatMemoryEnc(xout, &buf, &blen, "UTF-8", flags & LT_MAP_PRETTY ? 1 : 0);
    if (!buf) goto oom;
    *out = (unsigned char *)strndup((const char *)buf, (size_t)blen);
    xmlFree(buf);
    if (!*out) goto oom;
    *out_len = (size_t)blen;
    if (m->out_xsd &&
        (rc = contract(m, "output", m->out_schema_path, NULL, NULL, m->out_xsd, *out, *out_len, errbuf, errbuf_size))) {
      free(*out);
      *out = NULL;
      goto out;
    }
  }
  rc = HUB_OK;
  goto out;
oom:
  snprintf(errbuf, errbuf_size, "%s: out of memory", m->path);
  rc = HUB_ERR_NOMEM;
out:
  if (run.xpc) xmlXPathFreeContext(run.xpc);
  xmlFreeDoc(run.xin);
  xmlFreeDoc(xout);
  json_decref(run.jroot);
  json_decref(jout);
  return rc;
}
