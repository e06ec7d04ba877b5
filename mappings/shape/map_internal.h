/* Internal to the mapping engine (map.c loads, map_run.c runs): the compiled form of a mapping
 * file. Every rule keeps its YAML node, so errors name the line. */
#ifndef LT_MAP_INTERNAL_H
#define LT_MAP_INTERNAL_H

#include <jansson.h>
#include <libxml/xpath.h>
#include <libxslt/security.h>
#include <libxslt/xsltInternals.h>

#include "hub/core/node.h"
#include "mappings/shape/jsonpath.h"
#include "mappings/shape/jsonschema.h"
#include "mappings/shape/jsonschema_regex.h"
#include "mappings/shape/map.h"
#include "mappings/shape/validator.h"

#define MAX_MAPPING_BYTES (4u * 1024u * 1024u) /* a stylesheet */

enum fn_kind {
  FN_TRIM,
  FN_UPPER,
  FN_LOWER,
  FN_SHA256,
  FN_STRING,
  FN_INTEGER,
  FN_NUMBER,
  FN_BOOLEAN,
  FN_SUBSTRING,
  FN_DATE,
  FN_FORMAT_NUMBER,
  FN_MONEY,
  FN_LOOKUP,
  FN_REPLACE,
  FN_STRIP_PREFIX,
  FN_TITLE,
  FN_UNACCENT,
  FN_FOLD,
  FN_REGEX_REPLACE,
  FN_JOIN,
  FN_PAD,
  FN_BASE64_ENCODE,
  FN_BASE64_DECODE,
  FN_SUM,
  FN_COUNT,
  FN_LENGTH,
  FN_PARSE_NUMBER
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
  pcre2_code *re; /* regex_replace */
  size_t width;   /* pad */
  int left;
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
  int first;        /* `first: true`: the first of several matches, not an error */
  int all;          /* `all: true`: every match, as an array (possibly empty) */
  int optional;     /* a concat part that may be missing (it adds nothing) */
  const char *separator; /* concat {parts, separator}: between the parts present; missing parts skipped */
  struct src *fallbacks; /* `from: [Q1, Q2, ...]`: Q2... tried in turn while nothing (or null, "") matched */
  size_t n_fallbacks;
  /* $.a.b or $.a.b[*]: member names walked directly, without the general JSONPath engine */
  int simple, simple_star;
  char **names;
  size_t n_names;
};

struct cond {
  int present, negate;
  int self_test; /* JSON `$[?...]`: the filter tests the current node itself */
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
  int has_else;
  struct src else_src; /* `else:` the value written when if/unless is false */
};

struct ns {
  const char *prefix; /* "" for the default namespace */
  const char *href;
};

/* `split:`: the input list at names[] is cut into chunks of `size`, one output each */
struct split {
  const struct hub_node *at;
  const char *expr, *key_expr;
  char **names;
  size_t n_names;
  size_t size;
  struct lt_jsonpath *key; /* on each output: its record key, or NULL */
};

struct lt_map {
  char *path;
  struct split split;
  /* reuse: `define:` rule lists by name, from this file and its `include:` files (kept loaded:
   * compiled rules point into them) */
  struct hub_node **includes;
  size_t n_includes;
  const struct hub_node **defines; /* the `define:` mappings: this file's, then each include's */
  size_t n_defines;
  int use_depth;
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

/* The structured-error handler of XPath contexts: keeps the last message in `user` (256 bytes). */
void lt_map_xpath_error(void *user, xmlErrorPtr err);

#endif
