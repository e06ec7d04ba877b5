/* JSON Schema draft 2020-12 validation. A schema is compiled once into a tree of nodes (one per
 * schema object, keyword values checked and regexes compiled, $ref resolved, documents that
 * are referenced loaded) and then validated against many instances; a compiled schema is
 * immutable, so threads may share it.
 *
 * Owns: the registry of schema resources and anchors, loading of referenced documents
 * (built-in meta-schemas, files next to a file schema, and a remote-prefix-to-folder map: there
 * is no network access), annotation collection for unevaluatedProperties/unevaluatedItems, the
 * dynamic scope for $dynamicRef, and the error list ("<instance pointer>: <keyword>: <message>").
 * URI resolution is in jsonschema_uri.c, regexes in jsonschema_regex.c. */
#include "mappings/shape/jsonschema.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mappings/shape/json.h"
#include "mappings/shape/jsonschema_meta.h"
#include "mappings/shape/jsonschema_regex.h"
#include "mappings/shape/jsonschema_uri.h"

#define META_2020_12 "https://json-schema.org/draft/2020-12/schema"
#define VOCAB_PREFIX "https://json-schema.org/draft/2020-12/vocab/"
/* Nested schema evaluation. Cycles that never consume input are refused at load (in_place_cycle),
 * so depth grows only with the data (at most jansson's 2048 levels) times a short in-place
 * chain; the bound only protects the stack, and hitting it is a limit, not a verdict. */
#define MAX_DEPTH 8192
#define MAX_ERRORS 100  /* errors listed per validation */

/* ----------------------------------------------------------------------- small hash maps */

/* Open-addressing hash map from a key to a pointer: string keys (copied, compared by content)
 * or pointer keys (compared by address), chosen when the map is declared. */
struct map_ent {
  const void *key;
  void *val;
};
struct map {
  int str_keys;
  struct map_ent *e;
  size_t n, cap;
};

static size_t map_hash(const struct map *m, const void *key) {
  if (m->str_keys) {
    size_t h = 1469598103934665603u;
    for (const char *s = key; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
  }
  uintptr_t x = (uintptr_t)key;
  x ^= x >> 17;
  x *= 0xed5ad4bbu;
  x ^= x >> 11;
  return (size_t)x;
}

static int map_eq(const struct map *m, const void *a, const void *b) {
  return m->str_keys ? strcmp(a, b) == 0 : a == b;
}

static void *map_get(const struct map *m, const void *key) {
  if (!m->cap) return NULL;
  for (size_t i = map_hash(m, key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->e[i].key) return NULL;
    if (map_eq(m, m->e[i].key, key)) return m->e[i].val;
  }
}

/* Inserts unless present; 0 inserted, 1 already there, -1 out of memory. */
static int map_put(struct map *m, const void *key, void *val) {
  if ((m->n + 1) * 2 > m->cap) {
    size_t nc = m->cap ? m->cap * 2 : 64;
    struct map_ent *ne = calloc(nc, sizeof *ne);
    if (!ne) return -1;
    for (size_t i = 0; i < m->cap; i++) {
      if (!m->e[i].key) continue;
      size_t j = map_hash(m, m->e[i].key) & (nc - 1);
      while (ne[j].key) j = (j + 1) & (nc - 1);
      ne[j] = m->e[i];
    }
    free(m->e);
    m->e = ne;
    m->cap = nc;
  }
  size_t i = map_hash(m, key) & (m->cap - 1);
  for (; m->e[i].key; i = (i + 1) & (m->cap - 1))
    if (map_eq(m, m->e[i].key, key)) return 1;
  if (m->str_keys && !(key = strdup(key))) return -1;
  m->e[i].key = key;
  m->e[i].val = val;
  m->n++;
  return 0;
}

static void map_free(struct map *m) {
  for (size_t i = 0; m->str_keys && i < m->cap; i++) free((void *)m->e[i].key);
  free(m->e);
}

/* ------------------------------------------------------------------------- compiled form */

enum {
  T_NULL = 1,
  T_BOOLEAN = 2,
  T_OBJECT = 4,
  T_ARRAY = 8,
  T_NUMBER = 16,
  T_STRING = 32,
  T_INTEGER = 64,
};

struct resource;

struct pattern_prop {
  pcre2_code *re;
  const char *pattern;
  struct snode *s;
};

struct named {
  const char *name; /* borrowed from the schema document */
  size_t len;
  struct snode *s;
};

struct snode {
  json_t *json;        /* the schema value: an object or true/false */
  char *ptr;           /* JSON pointer of this schema in its document, for messages */
  const char *doc;     /* the document's URI (borrowed from its resource) */
  struct resource *res;
  int validation;      /* the validation vocabulary is in force */

  char *ref;           /* $ref resolved to an absolute URI; linked to ref_s */
  struct snode *ref_s;
  char *dynref;        /* $dynamicRef, absolute */
  struct snode *dynref_s;
  const char *dynref_anchor; /* set when the initial target has a matching $dynamicAnchor */

  struct snode **all_of, **any_of, **one_of, **prefix_items;
  size_t n_all_of, n_any_of, n_one_of, n_prefix_items;
  struct snode *not_, *if_, *then_, *else_, *items, *contains, *additional_properties;
  struct snode *unevaluated_properties, *unevaluated_items, *property_names;
  struct named *properties, *dependent_schemas;
  size_t n_properties, n_dependent_schemas;
  struct pattern_prop *pattern_properties;
  size_t n_pattern_properties;

  unsigned types; /* 0: no "type" */
  json_t *enum_, *const_;
  json_t *multiple_of, *maximum, *exclusive_maximum, *minimum, *exclusive_minimum;
  long long max_length, min_length, max_items, min_items, max_contains, min_contains, max_properties,
      min_properties; /* -1 when absent */
  int unique_items;
  pcre2_code *pattern;
  const char *pattern_src;
  json_t *required, *dependent_required;

  struct snode *next_all; /* every node, for freeing */
  unsigned char mark;     /* cycle search: 0 unvisited, 1 on the current path, 2 done */
};

struct resource {
  char *uri; /* absolute, no fragment */
  struct snode *root;
  json_t *doc_json; /* owned when this resource is a loaded document */
  struct named *dyn_anchors;
  size_t n_dyn_anchors;
  struct resource *next_all;
};

struct lt_schema {
  struct snode *root;
  struct snode *all_nodes;
  struct resource *all_res;
  struct map resources; /* uri -> resource (string keys) */
  struct map anchors;   /* uri#name -> snode (string keys) */
  struct map nodes;     /* json_t* -> snode (pointer keys) */
  char *error;           /* first compile error */
  int allow_files;       /* other files may be read by file: URI only for a schema loaded from a file */
  char *root_dir;        /* ...and only below this folder (a real path): see schema_tree */
};

/* The remote map: one prefix served from one folder (set by lt_schema_set_remote_map). */
static pthread_mutex_t remote_lock = PTHREAD_MUTEX_INITIALIZER;
static char *remote_prefix, *remote_dir;

hub_err_t lt_schema_set_remote_map(const char *prefix, const char *dir) {
  char *p = prefix ? strdup(prefix) : NULL, *d = dir ? strdup(dir) : NULL;
  if ((prefix && !p) || (dir && !d)) {
    free(p);
    free(d);
    return HUB_ERR_NOMEM;
  }
  pthread_mutex_lock(&remote_lock);
  free(remote_prefix);
  free(remote_dir);
  remote_prefix = p;
  remote_dir = d;
  pthread_mutex_unlock(&remote_lock);
  return HUB_OK;
}

static void cerr(struct lt_schema *s, const struct snode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cerr(struct lt_schema *s, const struct snode *at, const char *fmt, ...) {
  if (s->error) return;
  struct lt_buf b = {0};
  if (at) lt_buf_fmt(&b, "%s: %s: ", at->doc ? at->doc : "schema", at->ptr[0] ? at->ptr : "/");
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  lt_buf_str(&b, tmp);
  s->error = b.s ? b.s : strdup("out of memory");
}

static char *ptr_child(const char *ptr, const char *key, long index) {
  struct lt_buf b = {0};
  lt_buf_str(&b, ptr);
  lt_buf_put(&b, "/", 1);
  if (key) {
    for (const char *k = key; *k; k++) {
      if (*k == '~') lt_buf_put(&b, "~0", 2);
      else if (*k == '/') lt_buf_put(&b, "~1", 2);
      else lt_buf_put(&b, k, 1);
    }
  } else {
    lt_buf_fmt(&b, "%ld", index);
  }
  return b.s;
}

struct vocab {
  int validation;
};

static struct snode *compile(struct lt_schema *s, json_t *j, const char *base, const char *ptr, const char *doc,
                             struct resource *res, struct vocab voc);

static struct resource *add_resource(struct lt_schema *s, const char *uri, json_t *owned_doc) {
  struct resource *r = calloc(1, sizeof *r);
  if (!r || !(r->uri = strdup(uri))) {
    free(r);
    json_decref(owned_doc);
    return NULL;
  }
  r->doc_json = owned_doc;
  r->next_all = s->all_res;
  s->all_res = r;
  /* the first definition of an identifier wins (1: already there); this one is still freed */
  if (map_put(&s->resources, uri, r) < 0) cerr(s, NULL, "out of memory");
  return r;
}

static struct snode *sub(struct lt_schema *s, struct snode *parent, json_t *j, const char *base, const char *key,
                         long index, struct resource *res, struct vocab voc) {
  char *p = ptr_child(parent->ptr, key, index);
  if (!p) {
    cerr(s, parent, "out of memory");
    return NULL;
  }
  struct snode *n = compile(s, j, base, p, parent->doc, res, voc);
  free(p);
  return n;
}

static struct snode **sub_array(struct lt_schema *s, struct snode *parent, json_t *arr, const char *kw,
                                const char *base, struct resource *res, struct vocab voc, size_t *n_out) {
  *n_out = 0;
  if (!json_is_array(arr) || json_array_size(arr) == 0) {
    cerr(s, parent, "%s must be a non-empty array of schemas", kw);
    return NULL;
  }
  size_t n = json_array_size(arr);
  struct snode **v = calloc(n, sizeof *v);
  if (!v) {
    cerr(s, parent, "out of memory");
    return NULL;
  }
  char *kp = ptr_child(parent->ptr, kw, 0);
  for (size_t i = 0; i < n && kp; i++) {
    char *p = ptr_child(kp, NULL, (long)i);
    v[i] = p ? compile(s, json_array_get(arr, i), base, p, parent->doc, res, voc) : NULL;
    free(p);
    if (!v[i]) break;
  }
  free(kp);
  *n_out = n;
  return v;
}

static struct named *sub_object(struct lt_schema *s, struct snode *parent, json_t *obj, const char *kw,
                                const char *base, struct resource *res, struct vocab voc, size_t *n_out) {
  *n_out = 0;
  if (!json_is_object(obj)) {
    cerr(s, parent, "%s must be an object", kw);
    return NULL;
  }
  struct named *v = calloc(json_object_size(obj) + 1, sizeof *v);
  char *kp = ptr_child(parent->ptr, kw, 0);
  if (!v || !kp) {
    free(v);
    free(kp);
    cerr(s, parent, "out of memory");
    return NULL;
  }
  const char *key;
  size_t klen;
  json_t *val;
  size_t i = 0;
  json_object_keylen_foreach(obj, key, klen, val) {
    char *p = ptr_child(kp, key, 0);
    v[i].name = key;
    v[i].len = klen;
    v[i].s = p ? compile(s, val, base, p, parent->doc, res, voc) : NULL;
    free(p);
    i++;
  }
  free(kp);
  *n_out = i;
  return v;
}

static long long nonneg_int(struct lt_schema *s, struct snode *n, const char *kw) {
  json_t *v = json_object_get(n->json, kw);
  if (!v) return -1;
  double d = json_is_number(v) ? json_number_value(v) : -1;
  if (d < 0 || d != floor(d) || d > 9e15) {
    cerr(s, n, "%s must be a non-negative integer", kw);
    return -1;
  }
  return (long long)d;
}

static json_t *number_kw(struct lt_schema *s, struct snode *n, const char *kw) {
  json_t *v = json_object_get(n->json, kw);
  if (v && !json_is_number(v)) cerr(s, n, "%s must be a number", kw);
  return json_is_number(v) ? v : NULL;
}

static unsigned type_bit(const char *t) {
  static const struct {
    const char *name;
    unsigned bit;
  } names[] = {{"null", T_NULL},     {"boolean", T_BOOLEAN}, {"object", T_OBJECT},  {"array", T_ARRAY},
               {"number", T_NUMBER}, {"string", T_STRING},   {"integer", T_INTEGER}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(names[i].name, t)) return names[i].bit;
  return 0;
}

static struct snode *compile(struct lt_schema *s, json_t *j, const char *base, const char *ptr, const char *doc,
                             struct resource *res, struct vocab voc) {
  if (s->error) return NULL;
  struct snode *existing = map_get(&s->nodes, j);
  if (existing) return existing;
  struct snode *n = calloc(1, sizeof *n);
  char *own_base = NULL;
  if (!n || !(n->ptr = strdup(ptr))) {
    free(n);
    cerr(s, NULL, "out of memory");
    return NULL;
  }
  n->json = j;
  n->doc = doc;
  n->validation = voc.validation;
  n->next_all = s->all_nodes;
  s->all_nodes = n;
  n->max_length = n->min_length = n->max_items = n->min_items = n->max_contains = n->min_contains = -1;
  n->max_properties = n->min_properties = -1;
  if (map_put(&s->nodes, j, n) < 0) {
    cerr(s, n, "out of memory");
    return NULL;
  }
  n->res = res;
  if (json_is_boolean(j)) return n;
  if (!json_is_object(j)) {
    cerr(s, n, "a schema must be an object or a boolean");
    return NULL;
  }

  json_t *v;
  /* $id starts a new resource with a new base URI */
  if ((v = json_object_get(j, "$id"))) {
    if (!json_is_string(v)) {
      cerr(s, n, "$id must be a string");
      return NULL;
    }
    own_base = lt_uri_resolve(base, json_string_value(v));
    if (!own_base) goto oom;
    const char *frag = lt_uri_cut_fragment(own_base);
    if (*frag) {
      cerr(s, n, "$id must not have a fragment ('%s')", json_string_value(v));
      goto fail;
    }
    if (!res || strcmp(res->uri, own_base) != 0 || res->root) {
      res = add_resource(s, own_base, NULL);
      if (!res) goto oom;
    }
    if (!res->root) res->root = n;
    n->res = res;
    base = own_base;
  } else if (res && !res->root) {
    res->root = n;
  }
  if ((v = json_object_get(j, "$anchor"))) {
    char *key = NULL;
    if (!json_is_string(v)) {
      cerr(s, n, "$anchor must be a string");
      goto fail;
    }
    struct lt_buf b = {0};
    lt_buf_fmt(&b, "%s#%s", base, json_string_value(v));
    key = b.s;
    if (!key || map_put(&s->anchors, key, n) < 0) {
      free(key);
      goto oom;
    }
    free(key);
  }
  if ((v = json_object_get(j, "$dynamicAnchor"))) {
    if (!json_is_string(v)) {
      cerr(s, n, "$dynamicAnchor must be a string");
      goto fail;
    }
    struct lt_buf b = {0};
    lt_buf_fmt(&b, "%s#%s", base, json_string_value(v));
    if (!b.s || map_put(&s->anchors, b.s, n) < 0) {
      free(b.s);
      goto oom;
    }
    free(b.s);
    struct named *da = realloc(res->dyn_anchors, (res->n_dyn_anchors + 1) * sizeof *da);
    if (!da) goto oom;
    res->dyn_anchors = da;
    da[res->n_dyn_anchors].name = json_string_value(v);
    da[res->n_dyn_anchors].len = json_string_length(v);
    da[res->n_dyn_anchors].s = n;
    res->n_dyn_anchors++;
  }
  if ((v = json_object_get(j, "$ref"))) {
    if (!json_is_string(v)) {
      cerr(s, n, "$ref must be a string");
      goto fail;
    }
    if (!(n->ref = lt_uri_resolve(base, json_string_value(v)))) goto oom;
  }
  if ((v = json_object_get(j, "$dynamicRef"))) {
    if (!json_is_string(v)) {
      cerr(s, n, "$dynamicRef must be a string");
      goto fail;
    }
    if (!(n->dynref = lt_uri_resolve(base, json_string_value(v)))) goto oom;
  }

  /* subschemas: $defs first so that anchors inside are registered whatever the order */
  if ((v = json_object_get(j, "$defs"))) {
    size_t cnt;
    struct named *d = sub_object(s, n, v, "$defs", base, res, voc, &cnt);
    free(d);
  }
  if ((v = json_object_get(j, "allOf"))) n->all_of = sub_array(s, n, v, "allOf", base, res, voc, &n->n_all_of);
  if ((v = json_object_get(j, "anyOf"))) n->any_of = sub_array(s, n, v, "anyOf", base, res, voc, &n->n_any_of);
  if ((v = json_object_get(j, "oneOf"))) n->one_of = sub_array(s, n, v, "oneOf", base, res, voc, &n->n_one_of);
  if ((v = json_object_get(j, "prefixItems")))
    n->prefix_items = sub_array(s, n, v, "prefixItems", base, res, voc, &n->n_prefix_items);
  if ((v = json_object_get(j, "not"))) n->not_ = sub(s, n, v, base, "not", 0, res, voc);
  if ((v = json_object_get(j, "if"))) n->if_ = sub(s, n, v, base, "if", 0, res, voc);
  if ((v = json_object_get(j, "then"))) n->then_ = sub(s, n, v, base, "then", 0, res, voc);
  if ((v = json_object_get(j, "else"))) n->else_ = sub(s, n, v, base, "else", 0, res, voc);
  if ((v = json_object_get(j, "items"))) n->items = sub(s, n, v, base, "items", 0, res, voc);
  if ((v = json_object_get(j, "contains"))) n->contains = sub(s, n, v, base, "contains", 0, res, voc);
  if ((v = json_object_get(j, "additionalProperties")))
    n->additional_properties = sub(s, n, v, base, "additionalProperties", 0, res, voc);
  if ((v = json_object_get(j, "unevaluatedProperties")))
    n->unevaluated_properties = sub(s, n, v, base, "unevaluatedProperties", 0, res, voc);
  if ((v = json_object_get(j, "unevaluatedItems")))
    n->unevaluated_items = sub(s, n, v, base, "unevaluatedItems", 0, res, voc);
  if ((v = json_object_get(j, "propertyNames")))
    n->property_names = sub(s, n, v, base, "propertyNames", 0, res, voc);
  if ((v = json_object_get(j, "contentSchema"))) (void)sub(s, n, v, base, "contentSchema", 0, res, voc);
  if ((v = json_object_get(j, "properties")))
    n->properties = sub_object(s, n, v, "properties", base, res, voc, &n->n_properties);
  if ((v = json_object_get(j, "dependentSchemas")))
    n->dependent_schemas = sub_object(s, n, v, "dependentSchemas", base, res, voc, &n->n_dependent_schemas);
  if ((v = json_object_get(j, "patternProperties"))) {
    size_t cnt;
    struct named *pp = sub_object(s, n, v, "patternProperties", base, res, voc, &cnt);
    n->pattern_properties = calloc(cnt + 1, sizeof *n->pattern_properties);
    if (!pp || !n->pattern_properties) {
      free(pp);
      goto fail;
    }
    for (size_t i = 0; i < cnt; i++) {
      char msg[300];
      n->pattern_properties[i].pattern = pp[i].name;
      n->pattern_properties[i].s = pp[i].s;
      n->pattern_properties[i].re = lt_ecma_regex_compile(pp[i].name, pp[i].len, msg, sizeof msg);
      n->n_pattern_properties = i + 1;
      if (!n->pattern_properties[i].re) {
        cerr(s, n, "patternProperties: %s", msg);
        break;
      }
    }
    free(pp);
  }
  if (s->error) goto fail;

  /* validation vocabulary */
  if (voc.validation) {
    if ((v = json_object_get(j, "type"))) {
      if (json_is_string(v)) {
        n->types = type_bit(json_string_value(v));
      } else if (json_is_array(v)) {
        size_t i;
        json_t *t;
        json_array_foreach(v, i, t) {
          unsigned bit = json_is_string(t) ? type_bit(json_string_value(t)) : 0;
          if (!bit) break;
          n->types |= bit;
        }
        if (i < json_array_size(v)) n->types = 0;
      }
      if (!n->types) {
        cerr(s, n, "type must be a type name or an array of type names");
        goto fail;
      }
    }
    if ((v = json_object_get(j, "enum"))) {
      if (!json_is_array(v)) {
        cerr(s, n, "enum must be an array");
        goto fail;
      }
      n->enum_ = v;
    }
    n->const_ = json_object_get(j, "const");
    n->multiple_of = number_kw(s, n, "multipleOf");
    if (n->multiple_of && json_number_value(n->multiple_of) <= 0) cerr(s, n, "multipleOf must be greater than 0");
    n->maximum = number_kw(s, n, "maximum");
    n->exclusive_maximum = number_kw(s, n, "exclusiveMaximum");
    n->minimum = number_kw(s, n, "minimum");
    n->exclusive_minimum = number_kw(s, n, "exclusiveMinimum");
    n->max_length = nonneg_int(s, n, "maxLength");
    n->min_length = nonneg_int(s, n, "minLength");
    n->max_items = nonneg_int(s, n, "maxItems");
    n->min_items = nonneg_int(s, n, "minItems");
    n->max_contains = nonneg_int(s, n, "maxContains");
    n->min_contains = nonneg_int(s, n, "minContains");
    n->max_properties = nonneg_int(s, n, "maxProperties");
    n->min_properties = nonneg_int(s, n, "minProperties");
    if ((v = json_object_get(j, "uniqueItems"))) {
      if (!json_is_boolean(v)) cerr(s, n, "uniqueItems must be a boolean");
      n->unique_items = json_is_true(v);
    }
    if ((v = json_object_get(j, "pattern"))) {
      char msg[300];
      if (!json_is_string(v)) {
        cerr(s, n, "pattern must be a string");
        goto fail;
      }
      n->pattern_src = json_string_value(v);
      if (!(n->pattern = lt_ecma_regex_compile(json_string_value(v), json_string_length(v), msg, sizeof msg))) {
        cerr(s, n, "pattern: %s", msg);
        goto fail;
      }
    }
    if ((v = json_object_get(j, "required"))) {
      size_t i;
      json_t *r;
      if (!json_is_array(v)) cerr(s, n, "required must be an array of strings");
      json_array_foreach(v, i, r) if (!json_is_string(r)) cerr(s, n, "required must be an array of strings");
      n->required = v;
    }
    if ((v = json_object_get(j, "dependentRequired"))) {
      if (!json_is_object(v)) cerr(s, n, "dependentRequired must be an object");
      n->dependent_required = v;
    }
  }
  free(own_base);
  return s->error ? NULL : n;
oom:
  cerr(s, n, "out of memory");
fail:
  free(own_base);
  return NULL;
}

/* ------------------------------------------------------------------ documents and links */

static struct vocab vocab_for(struct lt_schema *s, json_t *doc, const char *uri);

/* Compiles a whole document as the resource `uri` (which takes the document). */
static struct snode *add_document(struct lt_schema *s, json_t *doc, const char *uri) {
  struct vocab voc = vocab_for(s, doc, uri);
  if (s->error) {
    json_decref(doc);
    return NULL;
  }
  struct resource *r = add_resource(s, uri, doc);
  if (!r) {
    cerr(s, NULL, "out of memory");
    return NULL;
  }
  struct snode *n = compile(s, doc, uri, "", r->uri, r, voc);
  /* a document fetched from one URI may name itself differently with $id: both identify it */
  if (n && !r->root) r->root = n;
  return n;
}

/* Finds the document for an absolute URI (no fragment) that is not registered yet: a built-in
 * meta-schema, a file (only for file: URIs), or a file under the remote map. Returns a new
 * reference or NULL. */
static json_t *fetch_document(struct lt_schema *s, const char *uri, char *why, size_t why_size) {
  for (size_t i = 0; lt_schema_builtin[i]; i++) {
    json_t *d = json_loads(lt_schema_builtin[i], 0, NULL);
    json_t *id = json_object_get(d, "$id");
    if (id && !strcmp(json_string_value(id), uri)) return d;
    json_decref(d);
  }
  char *path = NULL;
  pthread_mutex_lock(&remote_lock);
  int escapes = 0;
  if (remote_prefix && remote_dir && !strncmp(uri, remote_prefix, strlen(remote_prefix))) {
    const char *rest = uri + strlen(remote_prefix);
    /* the URI is normalised already; a ".." left (e.g. percent-encoded) would leave the folder */
    escapes = strstr(rest, "..") != NULL || strchr(rest, '%') != NULL || strchr(rest, '?') != NULL;
    struct lt_buf b = {0};
    lt_buf_fmt(&b, "%s/%s", remote_dir, rest);
    path = b.s;
  }
  pthread_mutex_unlock(&remote_lock);
  if (!path && s->allow_files && !strncmp(uri, "file://", 7) && (path = strdup(uri + 7))) {
    lt_uri_pct_decode(path);
    /* the real path, so neither ".." nor a symbolic link leads out of the schema's folder tree */
    char *real = realpath(path, NULL);
    size_t rl = s->root_dir ? strlen(s->root_dir) : 0;
    int inside = real && rl && !strncmp(real, s->root_dir, rl) && (real[rl] == '/' || s->root_dir[rl - 1] == '/');
    free(real);
    if (!inside) {
      snprintf(why, why_size,
               "refusing a file outside the schema's folder tree %s (references resolve only inside it "
               "folder tree and the remote map)",
               s->root_dir ? s->root_dir : "");
      free(path);
      return NULL;
    }
  }
  if (!path) {
    snprintf(why, why_size, "no such schema resource (remote documents are read only from the remote map)");
    return NULL;
  }
  if (escapes) {
    snprintf(why, why_size, "refusing a remote path with '..', '%%' or '?'");
    free(path);
    return NULL;
  }
  json_t *d = NULL;
  char err[512];
  if (lt_json_load_file(path, &d, err, sizeof err) != HUB_OK) snprintf(why, why_size, "%s", err);
  free(path);
  return d;
}

static struct vocab vocab_for(struct lt_schema *s, json_t *doc, const char *uri) {
  struct vocab voc = {.validation = 1};
  json_t *sch = json_is_object(doc) ? json_object_get(doc, "$schema") : NULL;
  if (!sch) return voc;
  if (!json_is_string(sch)) {
    cerr(s, NULL, "%s: $schema must be a string", uri);
    return voc;
  }
  const char *m = json_string_value(sch);
  if (!strcmp(m, META_2020_12)) return voc;
  if (strstr(m, "json-schema.org/") && !strstr(m, "/2020-12/")) {
    cerr(s, NULL, "%s: $schema '%s' is not supported (only draft 2020-12)", uri, m);
    return voc;
  }
  /* a custom meta-schema: its $vocabulary says which vocabularies apply */
  char why[600];
  struct resource *r = map_get(&s->resources, m);
  json_t *meta = r && r->root ? json_incref(r->root->json) : fetch_document(s, m, why, sizeof why);
  if (!meta) {
    cerr(s, NULL, "%s: meta-schema '%s' not found: %s", uri, m, why);
    return voc;
  }
  json_t *vocs = json_object_get(meta, "$vocabulary");
  if (json_is_object(vocs)) {
    voc.validation = json_object_get(vocs, VOCAB_PREFIX "validation") != NULL;
    const char *k;
    json_t *req;
    json_object_foreach(vocs, k, req) {
      static const char *known[] = {"core", "applicator", "unevaluated", "validation", "meta-data", "format-annotation",
                                    "format-assertion", "content"};
      int ok = 0;
      for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strncmp(k, VOCAB_PREFIX, strlen(VOCAB_PREFIX)) && !strcmp(k + strlen(VOCAB_PREFIX), known[i])) ok = 1;
      if (!ok && json_is_true(req)) cerr(s, NULL, "%s: required vocabulary '%s' is not supported", uri, k);
    }
  }
  json_decref(meta);
  return voc;
}

/* Resolves an absolute URI with fragment to a compiled node, loading documents as needed. */
static struct snode *resolve_ref(struct lt_schema *s, const struct snode *from, const char *ref) {
  char *u = strdup(ref);
  struct snode *t = NULL;
  if (!u) return NULL;
  char *frag = lt_uri_cut_fragment(u);
  struct resource *r = map_get(&s->resources, u);
  if (!r || !r->root) {
    char why[600];
    json_t *d = fetch_document(s, u, why, sizeof why);
    if (!d) {
      cerr(s, from, "cannot resolve reference '%s': %s", ref, why);
      goto out;
    }
    if (!add_document(s, d, u)) goto out;
    r = map_get(&s->resources, u);
    if (!r || !r->root) {
      cerr(s, from, "cannot resolve reference '%s'", ref);
      goto out;
    }
  }
  if (!*frag) {
    t = r->root;
  } else if (frag[0] == '/') {
    /* a JSON pointer, percent-decoded then ~1 and ~0 unescaped per token */
    lt_uri_pct_decode(frag);
    json_t *cur = r->root->json;
    char *tok = frag + 1;
    for (;;) {
      char *end = strchr(tok, '/');
      if (end) *end = 0;
      char *o = tok;
      for (char *p = tok; *p; p++) {
        if (p[0] == '~' && p[1] == '1') *o++ = '/', p++;
        else if (p[0] == '~' && p[1] == '0') *o++ = '~', p++;
        else *o++ = *p;
      }
      *o = 0;
      if (json_is_object(cur)) {
        cur = json_object_get(cur, tok);
      } else if (json_is_array(cur)) {
        char *e;
        errno = 0;
        unsigned long idx = strtoul(tok, &e, 10);
        cur = (*tok && !*e && !errno) ? json_array_get(cur, idx) : NULL;
      } else {
        cur = NULL;
      }
      if (!cur || !end) break;
      tok = end + 1;
    }
    if (!cur) {
      cerr(s, from, "cannot resolve reference '%s': no such location", ref);
      goto out;
    }
    t = map_get(&s->nodes, cur);
    if (!t) {
      /* a location no keyword made a schema of: compile it on demand */
      struct vocab voc = {.validation = r->root->validation};
      t = compile(s, cur, r->uri, frag, r->root->doc, r, voc);
    }
  } else {
    lt_uri_pct_decode(frag);
    struct lt_buf b = {0};
    lt_buf_fmt(&b, "%s#%s", u, frag);
    t = b.s ? map_get(&s->anchors, b.s) : NULL;
    free(b.s);
    if (!t) cerr(s, from, "cannot resolve reference '%s': no such anchor", ref);
  }
out:
  free(u);
  return t;
}

/* Links every $ref and $dynamicRef; nodes compiled while linking are linked too. */
static int link_all(struct lt_schema *s) {
  int again = 1;
  while (again && !s->error) {
    again = 0;
    for (struct snode *n = s->all_nodes; n && !s->error; n = n->next_all) {
      if (n->ref && !n->ref_s) {
        if (!(n->ref_s = resolve_ref(s, n, n->ref))) return -1;
        again = 1;
      }
      if (n->dynref && !n->dynref_s) {
        if (!(n->dynref_s = resolve_ref(s, n, n->dynref))) return -1;
        again = 1;
        /* dynamic only when the fragment is a name and the initial target declares it */
        const char *h = strchr(n->dynref, '#');
        json_t *da = json_is_object(n->dynref_s->json) ? json_object_get(n->dynref_s->json, "$dynamicAnchor") : NULL;
        if (h && h[1] && h[1] != '/' && da && !strcmp(json_string_value(da), h + 1)) n->dynref_anchor = h + 1;
      }
    }
  }
  return s->error ? -1 : 0;
}

/* A chain of in-place applicators ($ref, $dynamicRef, allOf, anyOf, oneOf, not, if/then/else,
 * dependentSchemas) that comes back to where it started evaluates the same value forever, for
 * every value that reaches it: refused at load with the chain. A cycle through properties, items
 * and the like descends into the value each time, so recursive schemas are fine. */
static const char *shown_ptr(const struct snode *n) {
  return n->ptr[0] ? n->ptr : "/";
}

/* Returns 1 while unwinding inside the cycle (each node adds itself to the chain), 2 once the
 * chain is closed at *loop, 0 when there is no cycle below n. */
static int in_place_cycle(struct snode *n, struct snode **loop, struct lt_buf *chain) {
  if (!n || n->mark == 2) return 0;
  if (n->mark == 1) {
    *loop = n;
    lt_buf_str(chain, shown_ptr(n));
    return 1;
  }
  n->mark = 1;
  struct snode *one[] = {n->ref_s, n->dynref_s, n->not_, n->if_, n->then_, n->else_};
  int found = 0;
  for (size_t i = 0; !found && i < sizeof one / sizeof one[0]; i++)
    found = in_place_cycle(one[i], loop, chain);
  struct snode **lists[] = {n->all_of, n->any_of, n->one_of};
  size_t counts[] = {n->n_all_of, n->n_any_of, n->n_one_of};
  for (size_t l = 0; !found && l < 3; l++)
    for (size_t i = 0; !found && i < counts[l]; i++)
      found = in_place_cycle(lists[l][i], loop, chain);
  for (size_t i = 0; !found && i < n->n_dependent_schemas; i++)
    found = in_place_cycle(n->dependent_schemas[i].s, loop, chain);
  if (found == 1) {
    lt_buf_fmt(chain, " <- %s", shown_ptr(n));
    if (n == *loop) found = 2;
  }
  if (!found) n->mark = 2;
  return found;
}

/* The folder tree a schema file's references may read: the nearest enclosing folder named
 * `schemas` (so schemas/dvcqg/x.json reaches schemas/common/), else the schema's own folder.
 * A malloc'd real path, or NULL (then no file is read). */
static char *schema_tree(const char *folder) {
  char *real = realpath(folder, NULL);
  if (!real) return NULL;
  for (char *end = real + strlen(real); end > real; end--) {
    if (end[0] && end[0] != '/') continue;
    char *name = end - 1;
    while (name > real && name[-1] != '/')
      name--;
    if ((size_t)(end - name) == 7 && !strncmp(name, "schemas", 7)) {
      *end = 0;
      break;
    }
  }
  return real;
}

static void schema_free(struct lt_schema *s) {
  if (!s) return;
  for (struct snode *n = s->all_nodes, *next; n; n = next) {
    next = n->next_all;
    free(n->ptr);
    free(n->ref);
    free(n->dynref);
    free(n->all_of);
    free(n->any_of);
    free(n->one_of);
    free(n->prefix_items);
    free(n->properties);
    free(n->dependent_schemas);
    for (size_t i = 0; i < n->n_pattern_properties; i++) pcre2_code_free(n->pattern_properties[i].re);
    free(n->pattern_properties);
    pcre2_code_free(n->pattern);
    free(n);
  }
  for (struct resource *r = s->all_res, *next; r; r = next) {
    next = r->next_all;
    free(r->uri);
    free(r->dyn_anchors);
    json_decref(r->doc_json);
    free(r);
  }
  map_free(&s->resources);
  map_free(&s->anchors);
  map_free(&s->nodes);
  free(s->error);
  free(s->root_dir);
  free(s);
}

void lt_schema_destroy(struct lt_schema *schema) { schema_free(schema); }

static hub_err_t check_against_meta(json_t *schema_json, const char *name, char *errbuf, size_t errbuf_size);

hub_err_t lt_schema_new(json_t *schema, const char *base_uri, struct lt_schema **out, char *errbuf,
                        size_t errbuf_size) {
  *out = NULL;
  if (!schema || !base_uri) return HUB_ERR_INVALID_ARG;
  struct lt_schema *s = calloc(1, sizeof *s);
  if (!s) return HUB_ERR_NOMEM;
  s->resources.str_keys = s->anchors.str_keys = 1;
  hub_err_t rc = HUB_ERR_SCHEMA_INVALID;
  s->allow_files = !strncmp(base_uri, "file://", 7);
  if (s->allow_files) {
    char *file = strdup(base_uri + 7), *slash;
    if (file) {
      lt_uri_cut_fragment(file);
      lt_uri_pct_decode(file);
      if ((slash = strrchr(file, '/'))) slash[slash == file] = 0;
      s->root_dir = schema_tree(file);
    }
    free(file);
  }
  char *base = strdup(base_uri);
  if (!base) {
    rc = HUB_ERR_NOMEM;
    goto out;
  }
  lt_uri_cut_fragment(base);
  s->root = add_document(s, json_incref(schema), base);
  free(base);
  if (!s->root || link_all(s) < 0) goto out;
  for (struct snode *n = s->all_nodes; n; n = n->next_all) {
    struct lt_buf chain = {0};
    struct snode *loop = NULL;
    if (in_place_cycle(n, &loop, &chain)) {
      cerr(s, n,
           "reference cycle that never descends into the value (every value would be evaluated "
           "forever): %s",
           chain.s ? chain.s : "");
      free(chain.s);
      goto out;
    }
  }
  *out = s;
  s = NULL;
  rc = HUB_OK;
out:
  if (s) snprintf(errbuf, errbuf_size, "%s", s->error ? s->error : "invalid schema");
  schema_free(s);
  return rc;
}

hub_err_t lt_schema_load_file(const char *path, struct lt_schema **out, char *errbuf, size_t errbuf_size) {
  *out = NULL;
  json_t *j = NULL;
  hub_err_t rc = lt_json_load_file(path, &j, errbuf, errbuf_size);
  if (rc != HUB_OK) return rc == HUB_ERR_JSON ? HUB_ERR_SCHEMA_INVALID : rc;
  char *abs = realpath(path, NULL);
  struct lt_buf uri = {0};
  /* the file's location is the base URI; an embedded $id overrides it */
  lt_buf_str(&uri, "file://");
  for (const char *p = abs ? abs : path; *p; p++) {
    if ((unsigned char)*p < 0x21 || *p == '%' || *p == '#' || *p == '?') lt_buf_fmt(&uri, "%%%02X", (unsigned char)*p);
    else lt_buf_put(&uri, p, 1);
  }
  free(abs);
  rc = check_against_meta(j, path, errbuf, errbuf_size);
  if (rc == HUB_OK) {
    rc = uri.s ? lt_schema_new(j, uri.s, out, errbuf, errbuf_size) : HUB_ERR_NOMEM;
    if (rc == HUB_ERR_SCHEMA_INVALID && strncmp(errbuf, path, strlen(path)) != 0) {
      /* name the file as the user gave it: "PATH: /pointer: message" */
      size_t ul = uri.s ? strlen(uri.s) : 0;
      const char *rest = ul && !strncmp(errbuf, uri.s, ul) && !strncmp(errbuf + ul, ": ", 2) ? errbuf + ul + 2 : errbuf;
      char tmp[1024];
      snprintf(tmp, sizeof tmp, "%s: %s", path, rest);
      snprintf(errbuf, errbuf_size, "%s", tmp);
    }
  }
  free(uri.s);
  json_decref(j);
  return rc;
}

/* ---------------------------------------------------------------------------- validation */

struct seg {
  const char *key; /* NULL: index */
  size_t len, index;
};

struct vctx {
  struct lt_buf errors;
  size_t n_errors;
  int mute;          /* >0 while evaluating a subschema whose failure is not itself an error */
  int depth;
  struct seg *path;
  size_t n_path, cap_path;
  const struct resource **scope; /* dynamic scope, outermost first */
  size_t n_scope, cap_scope;
  int oom;
  struct lt_buf undecided; /* a pattern that could not be decided: a limit, never a verdict */
};

/* Evaluated properties (by position in the object's iteration order) or items (by index). */
struct ann {
  unsigned char *bits;
  size_t n;
};

static void path_push(struct vctx *c, const char *key, size_t len, size_t index) {
  if (c->n_path == c->cap_path) {
    size_t nc = c->cap_path ? c->cap_path * 2 : 16;
    struct seg *np = realloc(c->path, nc * sizeof *np);
    if (!np) {
      c->oom = 1;
      return;
    }
    c->path = np;
    c->cap_path = nc;
  }
  c->path[c->n_path].key = key;
  c->path[c->n_path].len = len;
  c->path[c->n_path].index = index;
  c->n_path++;
}

static void path_pop(struct vctx *c) {
  if (c->n_path) c->n_path--;
}

static void line(struct vctx *c, struct lt_buf *b, const char *keyword, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void line(struct vctx *c, struct lt_buf *b, const char *keyword, const char *fmt, va_list ap) {
  if (c->n_path == 0) lt_buf_put(b, "/", 1);
  for (size_t i = 0; i < c->n_path; i++) {
    lt_buf_put(b, "/", 1);
    if (!c->path[i].key) {
      lt_buf_fmt(b, "%zu", c->path[i].index);
      continue;
    }
    for (size_t k = 0; k < c->path[i].len; k++) {
      char ch = c->path[i].key[k];
      if (ch == '~')
        lt_buf_put(b, "~0", 2);
      else if (ch == '/')
        lt_buf_put(b, "~1", 2);
      else if ((unsigned char)ch < 0x20)
        lt_buf_fmt(b, "\\u%04x", (unsigned char)ch);
      else
        lt_buf_put(b, &ch, 1);
    }
  }
  lt_buf_fmt(b, ": %s: ", keyword);
  char tmp[600];
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  /* one failure per line: control characters (from property names) are escaped */
  for (const char *p = tmp; *p; p++) {
    if ((unsigned char)*p < 0x20)
      lt_buf_fmt(b, "\\u%04x", (unsigned char)*p);
    else
      lt_buf_put(b, p, 1);
  }
  lt_buf_put(b, "\n", 1);
}

static void fail(struct vctx *c, const char *keyword, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct vctx *c, const char *keyword, const char *fmt, ...) {
  if (c->mute) return;
  c->n_errors++;
  if (c->n_errors > MAX_ERRORS) {
    if (c->n_errors == MAX_ERRORS + 1)
      lt_buf_fmt(&c->errors, "/: limit: more than %d failures; the rest are not listed\n", MAX_ERRORS);
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  line(c, &c->errors, keyword, fmt, ap);
  va_end(ap);
}

static void add_line(struct vctx *c, struct lt_buf *b, const char *keyword, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_line(struct vctx *c, struct lt_buf *b, const char *keyword, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  line(c, b, keyword, fmt, ap);
  va_end(ap);
}

/* A regex that could not be decided on this value (even muted: a limit is never a verdict). */
static void undecided(struct vctx *c, const char *keyword, const char *pattern) {
  if (!c->undecided.len)
    add_line(c, &c->undecided, keyword,
             "'%s' cannot be decided on this value: it needs backtracking beyond the limit (a back-reference "
             "over a long text), so the value is neither accepted nor refused",
             pattern);
}

static const char *type_name(json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return json_real_value(v) == floor(json_real_value(v)) ? "integer" : "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
  }
}

static int is_integer(json_t *v) {
  if (json_is_integer(v)) return 1;
  if (!json_is_real(v)) return 0;
  double d = json_real_value(v);
  return isfinite(d) && d == floor(d);
}

static int type_ok(unsigned types, json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: return types & T_OBJECT;
    case JSON_ARRAY: return types & T_ARRAY;
    case JSON_STRING: return types & T_STRING;
    case JSON_INTEGER: return types & (T_INTEGER | T_NUMBER);
    case JSON_REAL: return (types & T_NUMBER) || ((types & T_INTEGER) && is_integer(v));
    case JSON_TRUE:
    case JSON_FALSE: return types & T_BOOLEAN;
    default: return types & T_NULL;
  }
}

static void types_text(unsigned types, char *out, size_t size) {
  static const char *names[] = {"null", "boolean", "object", "array", "number", "string", "integer"};
  size_t n = 0;
  out[0] = 0;
  for (int i = 0; i < 7; i++)
    if (types & (1u << i)) {
      int k = snprintf(out + n, size - n, "%s%s", n ? " or " : "", names[i]);
      if (k < 0 || (size_t)k >= size - n) break;
      n += (size_t)k;
    }
}

static void num_text(json_t *v, char *out, size_t size) {
  if (json_is_integer(v)) snprintf(out, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  else snprintf(out, size, "%.17g", json_real_value(v));
}

static int multiple_of(json_t *v, json_t *m) {
  if (json_is_integer(v) && json_is_integer(m)) return json_integer_value(v) % json_integer_value(m) == 0;
  double q = json_number_value(v) / json_number_value(m);
  if (!isfinite(q)) return fmod(json_number_value(v), json_number_value(m)) == 0; /* 1e308 / 0.5 overflows */
  return fabs(q - nearbyint(q)) < 1e-9; /* tolerates binary fractions: 0.0075 / 0.0001 */
}

static int validate(struct vctx *c, const struct snode *s, json_t *inst, struct ann *ann);

/* Evaluates a subschema on the same instance location, keeping its annotations only if valid. */
static int in_place(struct vctx *c, const struct snode *s, json_t *inst, struct ann *ann) {
  if (!ann) return validate(c, s, inst, NULL);
  struct ann tmp = {calloc(ann->n + 1, 1), ann->n};
  if (!tmp.bits) {
    c->oom = 1;
    return 0;
  }
  int ok = validate(c, s, inst, &tmp);
  if (ok)
    for (size_t i = 0; i < ann->n; i++) ann->bits[i] |= tmp.bits[i];
  free(tmp.bits);
  return ok;
}

/* The failing alternative of an anyOf/oneOf with the fewest errors, for the message. */
struct closest {
  struct lt_buf text; /* its error lines */
  size_t n_errors, score, index;
  int set;
};

/* Evaluates one alternative in place. Its errors never count as errors of the whole; when
 * errors are being listed they are kept aside, and the closest failing alternative's first
 * error is quoted in the keyword's message. */
static int try_alternative(struct vctx *c, const struct snode *alt, json_t *inst, struct ann *ann, size_t i,
                           struct closest *cl) {
  if (c->mute) {
    c->mute++;
    int r = in_place(c, alt, inst, ann);
    c->mute--;
    return r;
  }
  struct lt_buf saved = c->errors;
  size_t saved_n = c->n_errors;
  c->errors = (struct lt_buf){0};
  c->n_errors = 0;
  int r = in_place(c, alt, inst, ann);
  /* an alternative failing on "type" is for another kind of value: rank it last */
  size_t score = c->n_errors + (c->errors.s && strstr(c->errors.s, ": type: ") ? 100000 : 0);
  if (!r && (!cl->set || score < cl->score)) {
    free(cl->text.s);
    cl->text = c->errors;
    cl->score = score;
    cl->n_errors = c->n_errors;
    cl->index = i;
    cl->set = 1;
  } else {
    free(c->errors.s);
  }
  c->errors = saved;
  c->n_errors = saved_n;
  return r;
}

/* " (closest: #I, /path: keyword: message)" from the first error line, or "". */
static const char *closest_text(const struct closest *cl, char *out, size_t size) {
  out[0] = 0;
  if (!cl->set || !cl->text.s) return out;
  const char *nl = strchr(cl->text.s, '\n');
  int len = nl ? (int)(nl - cl->text.s) : (int)strlen(cl->text.s);
  snprintf(out, size, " (closest: #%zu, %.*s%s)", cl->index, len > 300 ? 300 : len, cl->text.s,
           cl->n_errors > 1 ? ", ..." : "");
  return out;
}

static int child(struct vctx *c, const struct snode *s, json_t *v, const char *key, size_t len, size_t index) {
  path_push(c, key, len, index);
  int ok = validate(c, s, v, NULL);
  path_pop(c);
  return ok;
}

static const struct snode *dynamic_target(struct vctx *c, const struct snode *s) {
  if (!s->dynref_anchor) return s->dynref_s;
  size_t alen = strlen(s->dynref_anchor);
  for (size_t i = 0; i < c->n_scope; i++) {
    const struct resource *r = c->scope[i];
    for (size_t k = 0; k < r->n_dyn_anchors; k++)
      if (r->dyn_anchors[k].len == alen && !memcmp(r->dyn_anchors[k].name, s->dynref_anchor, alen))
        return r->dyn_anchors[k].s;
  }
  return s->dynref_s;
}

static int validate_object(struct vctx *c, const struct snode *s, json_t *inst, struct ann *ann) {
  int ok = 1;
  size_t size = json_object_size(inst);
  if (s->validation) {
    if (s->max_properties >= 0 && (long long)size > s->max_properties) {
      fail(c, "maxProperties", "has %zu properties, at most %lld allowed", size, s->max_properties);
      ok = 0;
    }
    if (s->min_properties >= 0 && (long long)size < s->min_properties) {
      fail(c, "minProperties", "has %zu properties, at least %lld required", size, s->min_properties);
      ok = 0;
    }
    size_t i;
    json_t *r;
    json_array_foreach(s->required, i, r) {
      if (!json_object_getn(inst, json_string_value(r), json_string_length(r))) {
        fail(c, "required", "missing property '%s'", json_string_value(r));
        ok = 0;
      }
    }
    if (s->dependent_required) {
      const char *k;
      json_t *deps;
      json_object_foreach(s->dependent_required, k, deps) {
        if (!json_object_get(inst, k)) continue;
        json_array_foreach(deps, i, r) {
          if (json_is_string(r) && !json_object_getn(inst, json_string_value(r), json_string_length(r))) {
            fail(c, "dependentRequired", "property '%s' requires property '%s'", k, json_string_value(r));
            ok = 0;
          }
        }
      }
    }
  }
  if (!ok && c->mute && !ann) return 0;
  const char *key;
  size_t klen;
  json_t *val;
  size_t idx = 0;
  json_object_keylen_foreach(inst, key, klen, val) {
    int matched = 0;
    for (size_t i = 0; i < s->n_properties; i++) {
      if (s->properties[i].len == klen && !memcmp(s->properties[i].name, key, klen)) {
        matched = 1;
        if (!child(c, s->properties[i].s, val, key, klen, 0)) ok = 0;
        break;
      }
    }
    for (size_t i = 0; i < s->n_pattern_properties; i++) {
      int m = lt_regex_search(s->pattern_properties[i].re, key, klen);
      if (m < 0) undecided(c, "patternProperties", s->pattern_properties[i].pattern);
      if (m > 0) {
        matched = 1;
        if (!child(c, s->pattern_properties[i].s, val, key, klen, 0)) ok = 0;
      }
    }
    if (!matched && s->additional_properties) {
      matched = 1;
      if (json_is_false(s->additional_properties->json)) {
        path_push(c, key, klen, 0);
        fail(c, "additionalProperties", "property '%s' is not allowed", key);
        path_pop(c);
        ok = 0;
      } else if (!child(c, s->additional_properties, val, key, klen, 0)) {
        ok = 0;
      }
    }
    if (s->property_names) {
      json_t *name = json_stringn_nocheck(key, klen);
      struct closest why = {0};
      int nok = name && try_alternative(c, s->property_names, name, NULL, 0, &why);
      if (!nok) {
        /* the name's own failure without its pointer: "(pattern: does not match '^a+$')" */
        const char *w = why.text.s ? strstr(why.text.s, ": ") : NULL;
        const char *nl = w ? strchr(w + 2, '\n') : NULL;
        int wl = w ? (nl ? (int)(nl - w - 2) : (int)strlen(w + 2)) : 0;
        fail(c, "propertyNames", "property name '%s' is not valid%s%.*s%s", key, w ? " (" : "", wl > 300 ? 300 : wl,
             w ? w + 2 : "", w ? ")" : "");
        ok = 0;
      }
      free(why.text.s);
      json_decref(name);
    }
    if (matched && ann) ann->bits[idx] = 1;
    idx++;
    if (!ok && c->mute && !ann) return 0;
  }
  for (size_t i = 0; i < s->n_dependent_schemas; i++) {
    if (json_object_getn(inst, s->dependent_schemas[i].name, s->dependent_schemas[i].len) &&
        !in_place(c, s->dependent_schemas[i].s, inst, ann))
      ok = 0;
  }
  return ok;
}

/* A hash that equal values (in lt_json_equal's sense: 1 == 1.0, member order ignored) share. */
static uint64_t value_hash(json_t *v) {
  uint64_t h = 14695981039346656037u;
  switch (json_typeof(v)) {
    case JSON_INTEGER:
    case JSON_REAL: {
      double d = json_number_value(v);
      if (json_is_integer(v) || (d == floor(d) && fabs(d) < 9.2e18)) {
        json_int_t iv = json_is_integer(v) ? json_integer_value(v) : (json_int_t)d;
        return (uint64_t)iv * 0x9E3779B97F4A7C15u + 1;
      }
      uint64_t bits;
      memcpy(&bits, &d, sizeof bits);
      return bits * 0x9E3779B97F4A7C15u + 2;
    }
    case JSON_STRING: {
      const unsigned char *p = (const unsigned char *)json_string_value(v);
      for (size_t i = 0; i < json_string_length(v); i++) h = (h ^ p[i]) * 1099511628211u;
      return h + 3;
    }
    case JSON_ARRAY:
      for (size_t i = 0; i < json_array_size(v); i++) h = (h ^ value_hash(json_array_get(v, i))) * 1099511628211u;
      return h + 4;
    case JSON_OBJECT: {
      const char *key;
      size_t klen;
      json_t *m;
      uint64_t sum = 5;
      json_object_keylen_foreach(v, key, klen, m) {
        uint64_t kh = 14695981039346656037u;
        for (size_t i = 0; i < klen; i++) kh = (kh ^ (unsigned char)key[i]) * 1099511628211u;
        sum += (kh ^ value_hash(m)) * 0x9E3779B97F4A7C15u; /* order-independent */
      }
      return sum;
    }
    case JSON_TRUE: return 6;
    case JSON_FALSE: return 7;
    default: return 8;
  }
}

struct hashed {
  uint64_t h;
  size_t i;
};

static int cmp_hashed(const void *a, const void *b) {
  const struct hashed *x = a, *y = b;
  if (x->h != y->h) return x->h < y->h ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* uniqueItems in O(n log n): sorts by hash and compares only items with equal hashes. Sets
 * *first == *second when all items are distinct; -1 when out of memory. */
static int unique_items(json_t *arr, size_t *first, size_t *second) {
  size_t n = json_array_size(arr);
  struct hashed *hs = malloc(n * sizeof *hs);
  *first = *second = 0;
  if (!hs) return -1;
  for (size_t i = 0; i < n; i++) {
    hs[i].h = value_hash(json_array_get(arr, i));
    hs[i].i = i;
  }
  qsort(hs, n, sizeof *hs, cmp_hashed);
  for (size_t a = 0; a < n; a++)
    for (size_t b = a + 1; b < n && hs[b].h == hs[a].h; b++)
      if (lt_json_equal(json_array_get(arr, hs[a].i), json_array_get(arr, hs[b].i))) {
        *first = hs[a].i < hs[b].i ? hs[a].i : hs[b].i;
        *second = hs[a].i < hs[b].i ? hs[b].i : hs[a].i;
        free(hs);
        return 0;
      }
  free(hs);
  return 0;
}

static int validate_array(struct vctx *c, const struct snode *s, json_t *inst, struct ann *ann) {
  int ok = 1;
  size_t size = json_array_size(inst);
  if (s->validation) {
    if (s->max_items >= 0 && (long long)size > s->max_items) {
      fail(c, "maxItems", "has %zu items, at most %lld allowed", size, s->max_items);
      ok = 0;
    }
    if (s->min_items >= 0 && (long long)size < s->min_items) {
      fail(c, "minItems", "has %zu items, at least %lld required", size, s->min_items);
      ok = 0;
    }
    if (s->unique_items && size > 1) {
      size_t i, k;
      if (unique_items(inst, &i, &k) < 0) {
        c->oom = 1;
        ok = 0;
      } else if (i != k) {
        fail(c, "uniqueItems", "items %zu and %zu are equal", i, k);
        ok = 0;
      }
    }
  }
  if (!ok && c->mute && !ann) return 0;
  for (size_t i = 0; i < size; i++) {
    const struct snode *sub = i < s->n_prefix_items ? s->prefix_items[i] : s->items;
    if (!sub) continue;
    if (ann) ann->bits[i] = 1;
    if (!child(c, sub, json_array_get(inst, i), NULL, 0, i)) {
      ok = 0;
      if (c->mute && !ann) return 0;
    }
  }
  if (s->contains) {
    size_t matches = 0;
    c->mute++;
    for (size_t i = 0; i < size; i++) {
      path_push(c, NULL, 0, i);
      if (validate(c, s->contains, json_array_get(inst, i), NULL)) {
        matches++;
        if (ann) ann->bits[i] = 1;
      }
      path_pop(c);
    }
    c->mute--;
    long long min = s->validation && s->min_contains >= 0 ? s->min_contains : 1;
    if ((long long)matches < min) {
      if (min == 1) fail(c, "contains", "no item matches the 'contains' schema");
      else fail(c, "minContains", "%zu items match 'contains', at least %lld required", matches, min);
      ok = 0;
    }
    if (s->validation && s->max_contains >= 0 && (long long)matches > s->max_contains) {
      fail(c, "maxContains", "%zu items match 'contains', at most %lld allowed", matches, s->max_contains);
      ok = 0;
    }
  }
  return ok;
}

static int validate_scalar(struct vctx *c, const struct snode *s, json_t *inst) {
  int ok = 1;
  char a[64], b[64];
  if (json_is_string(inst)) {
    size_t len = (s->max_length >= 0 || s->min_length >= 0) ? lt_utf8_length(json_string_value(inst), json_string_length(inst)) : 0;
    if (s->max_length >= 0 && (long long)len > s->max_length) {
      fail(c, "maxLength", "%zu characters, at most %lld allowed", len, s->max_length);
      ok = 0;
    }
    if (s->min_length >= 0 && (long long)len < s->min_length) {
      fail(c, "minLength", "%zu characters, at least %lld required", len, s->min_length);
      ok = 0;
    }
    int m = s->pattern ? lt_regex_search(s->pattern, json_string_value(inst), json_string_length(inst)) : 1;
    if (m < 0) undecided(c, "pattern", s->pattern_src);
    if (m == 0) {
      fail(c, "pattern", "does not match '%s'", s->pattern_src);
      ok = 0;
    }
  } else if (json_is_number(inst)) {
    /* each bound: its keyword, whether it fails, and the message's verb */
    const struct {
      const char *keyword;
      json_t *limit;
      int failed;
      const char *text;
    } checks[] = {
        {"multipleOf", s->multiple_of, s->multiple_of && !multiple_of(inst, s->multiple_of), "is not a multiple of"},
        {"maximum", s->maximum, s->maximum && lt_json_number_cmp(inst, s->maximum) > 0, "is greater than"},
        {"exclusiveMaximum", s->exclusive_maximum,
         s->exclusive_maximum && lt_json_number_cmp(inst, s->exclusive_maximum) >= 0, "is not less than"},
        {"minimum", s->minimum, s->minimum && lt_json_number_cmp(inst, s->minimum) < 0, "is less than"},
        {"exclusiveMinimum", s->exclusive_minimum,
         s->exclusive_minimum && lt_json_number_cmp(inst, s->exclusive_minimum) <= 0, "is not greater than"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
      if (!checks[i].failed) continue;
      ok = 0;
      if (c->mute) continue; /* numbers are written out only for a listed failure */
      num_text(inst, a, sizeof a);
      num_text(checks[i].limit, b, sizeof b);
      fail(c, checks[i].keyword, "%s %s %s", a, checks[i].text, b);
    }
  }
  return ok;
}

static int validate(struct vctx *c, const struct snode *s, json_t *inst, struct ann *ann) {
  if (json_is_true(s->json)) return 1;
  if (json_is_false(s->json)) {
    fail(c, "false", "no value is allowed here");
    return 0;
  }
  if (c->depth >= MAX_DEPTH) {
    if (!c->undecided.len)
      add_line(c, &c->undecided, "depth", "schema evaluation nested deeper than %d levels: not decided", MAX_DEPTH);
    return 0;
  }
  c->depth++;
  int pushed = 0;
  if (s->res && (c->n_scope == 0 || c->scope[c->n_scope - 1] != s->res)) {
    if (c->n_scope == c->cap_scope) {
      size_t nc = c->cap_scope ? c->cap_scope * 2 : 16;
      const struct resource **ns = realloc(c->scope, nc * sizeof *ns);
      if (!ns) {
        c->oom = 1;
        c->depth--;
        return 0;
      }
      c->scope = ns;
      c->cap_scope = nc;
    }
    c->scope[c->n_scope++] = s->res;
    pushed = 1;
  }
  int ok = 1;
  struct ann own = {0};
  int is_obj = json_is_object(inst), is_arr = json_is_array(inst);
  if (!ann && ((s->unevaluated_properties && is_obj) || (s->unevaluated_items && is_arr))) {
    own.n = is_obj ? json_object_size(inst) : json_array_size(inst);
    own.bits = calloc(own.n + 1, 1);
    if (!own.bits) {
      c->oom = 1;
      ok = 0;
      goto out;
    }
    ann = &own;
  }
  if (ann && !is_obj && !is_arr) ann = NULL;

  if (s->validation) {
    if (s->types && !type_ok(s->types, inst)) {
      char want[128];
      types_text(s->types, want, sizeof want);
      fail(c, "type", "expected %s, got %s", want, type_name(inst));
      ok = 0;
    }
    if (s->const_ && !lt_json_equal(s->const_, inst)) {
      char *want = c->mute ? NULL : json_dumps(s->const_, JSON_COMPACT | JSON_ENCODE_ANY); /* only when listed */
      if (want && strlen(want) <= 200) fail(c, "const", "value is not %s", want);
      else fail(c, "const", "value is not the constant the schema requires");
      free(want);
      ok = 0;
    }
    if (s->enum_) {
      size_t i;
      json_t *e;
      int found = 0;
      json_array_foreach(s->enum_, i, e) if (lt_json_equal(e, inst)) {
        found = 1;
        break;
      }
      if (!found) {
        /* a short list is quoted whole: the reader sees the typo ("strnig") at once */
        char *list = !c->mute && json_array_size(s->enum_) <= 12 ? json_dumps(s->enum_, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (list && strlen(list) <= 300) fail(c, "enum", "value is not one of %s", list);
        else fail(c, "enum", "value is not one of the %zu allowed values", json_array_size(s->enum_));
        free(list);
        ok = 0;
      }
    }
    if (!validate_scalar(c, s, inst)) ok = 0;
  }
  if (!ok && c->mute && !ann) goto out;
  if (s->ref_s && !in_place(c, s->ref_s, inst, ann)) ok = 0;
  if (s->dynref_s && !in_place(c, dynamic_target(c, s), inst, ann)) ok = 0;
  for (size_t i = 0; i < s->n_all_of; i++)
    if (!in_place(c, s->all_of[i], inst, ann)) ok = 0;
  if (s->n_any_of) {
    int any = 0;
    struct closest cl = {0};
    for (size_t i = 0; i < s->n_any_of; i++) {
      if (try_alternative(c, s->any_of[i], inst, ann, i, &cl)) {
        any = 1;
        if (!ann) break; /* the rest only matter for annotations */
      }
    }
    if (!any) {
      char hint[400];
      fail(c, "anyOf", "matches none of the %zu alternatives%s", s->n_any_of, closest_text(&cl, hint, sizeof hint));
      ok = 0;
    }
    free(cl.text.s);
  }
  if (s->n_one_of) {
    size_t matches = 0, first = 0, second = 0;
    struct closest cl = {0};
    for (size_t i = 0; i < s->n_one_of; i++) {
      if (try_alternative(c, s->one_of[i], inst, ann, i, &cl)) {
        if (matches == 0) first = i;
        else if (matches == 1) second = i;
        matches++;
      }
    }
    if (matches == 0) {
      char hint[400];
      fail(c, "oneOf", "matches none of the %zu alternatives%s", s->n_one_of, closest_text(&cl, hint, sizeof hint));
      ok = 0;
    } else if (matches > 1) {
      fail(c, "oneOf", "matches more than one alternative (%zu and %zu)", first, second);
      ok = 0;
    }
    free(cl.text.s);
  }
  if (s->not_) {
    c->mute++;
    int r = validate(c, s->not_, inst, NULL);
    c->mute--;
    if (r) {
      fail(c, "not", "matches the schema it must not match");
      ok = 0;
    }
  }
  if (s->if_) {
    c->mute++;
    int cond = in_place(c, s->if_, inst, ann);
    c->mute--;
    const struct snode *branch = cond ? s->then_ : s->else_;
    if (branch && !in_place(c, branch, inst, ann)) ok = 0;
  }
  if (!ok && c->mute && !ann) goto out;
  if (is_obj && !validate_object(c, s, inst, ann)) ok = 0;
  if (is_arr && !validate_array(c, s, inst, ann)) ok = 0;

  /* unevaluated*: after every other keyword, on what no successful evaluation covered */
  if (is_obj && s->unevaluated_properties && ann) {
    const char *key;
    size_t klen;
    json_t *val;
    size_t idx = 0;
    json_object_keylen_foreach(inst, key, klen, val) {
      if (!ann->bits[idx]) {
        if (json_is_false(s->unevaluated_properties->json)) {
          path_push(c, key, klen, 0);
          fail(c, "unevaluatedProperties", "property '%s' is not allowed", key);
          path_pop(c);
          ok = 0;
        } else if (!child(c, s->unevaluated_properties, val, key, klen, 0)) {
          ok = 0;
        }
        ann->bits[idx] = 1;
      }
      idx++;
    }
  }
  if (is_arr && s->unevaluated_items && ann) {
    for (size_t i = 0; i < json_array_size(inst); i++) {
      if (ann->bits[i]) continue;
      if (json_is_false(s->unevaluated_items->json)) {
        path_push(c, NULL, 0, i);
        fail(c, "unevaluatedItems", "item %zu is not allowed", i);
        path_pop(c);
        ok = 0;
      } else if (!child(c, s->unevaluated_items, json_array_get(inst, i), NULL, 0, i)) {
        ok = 0;
      }
      ann->bits[i] = 1;
    }
  }
out:
  free(own.bits);
  if (pushed) c->n_scope--;
  c->depth--;
  return ok && !c->oom;
}

hub_err_t lt_schema_validate(const struct lt_schema *schema, json_t *instance, char **errors_out) {
  if (errors_out) *errors_out = NULL;
  if (!schema || !instance) return HUB_ERR_INVALID_ARG;
  struct vctx c = {0};
  /* without a list to return, the first failure is enough */
  if (!errors_out) c.mute = 1;
  int ok = validate(&c, schema->root, instance, NULL);
  hub_err_t rc = c.oom ? HUB_ERR_NOMEM : c.undecided.len ? HUB_ERR_UNDECIDED : ok ? HUB_OK : HUB_ERR_SCHEMA;
  if (rc == HUB_ERR_UNDECIDED) {
    c.undecided.s[--c.undecided.len] = 0;
    if (errors_out)
      *errors_out = c.undecided.s;
    else
      free(c.undecided.s);
    c.undecided.s = NULL;
  }
  if (rc == HUB_ERR_SCHEMA && errors_out) {
    if (!c.errors.s) lt_buf_str(&c.errors, "/: schema: not valid\n");
    if (c.errors.len && c.errors.s[c.errors.len - 1] == '\n') c.errors.s[--c.errors.len] = 0;
    *errors_out = c.errors.s;
    c.errors.s = NULL;
  }
  free(c.errors.s);
  free(c.undecided.s);
  free(c.path);
  free(c.scope);
  return rc;
}

static struct lt_schema *meta_schema;
static pthread_once_t meta_once = PTHREAD_ONCE_INIT;

static void init_meta(void) {
  json_t *j = json_loads(lt_schema_builtin[0], 0, NULL);
  char err[256];
  if (j && lt_schema_new(j, META_2020_12, &meta_schema, err, sizeof err) != HUB_OK) meta_schema = NULL;
  json_decref(j);
}

/* A schema that declares draft 2020-12 (or nothing) must itself be valid against the draft
 * 2020-12 meta-schema: this turns a typo such as "type": "strnig" into an error with its place.
 * (The compiled meta-schema is made once per process and kept.) */
static hub_err_t check_against_meta(json_t *schema_json, const char *name, char *errbuf, size_t errbuf_size) {
  json_t *sch = json_is_object(schema_json) ? json_object_get(schema_json, "$schema") : NULL;
  if (sch && (!json_is_string(sch) || strcmp(json_string_value(sch), META_2020_12) != 0)) return HUB_OK;
  pthread_once(&meta_once, init_meta);
  if (!meta_schema) {
    snprintf(errbuf, errbuf_size, "%s: the built-in meta-schema failed to load", name);
    return HUB_ERR_SCHEMA_INVALID;
  }
  char *errors = NULL;
  hub_err_t rc = lt_schema_validate(meta_schema, schema_json, &errors);
  if (rc == HUB_ERR_SCHEMA) {
    struct lt_buf one = {0}; /* on one line: "/a: k: m; /b: k: m" */
    for (const char *p = errors; p && *p; p++) lt_buf_put(&one, *p == '\n' ? "; " : p, *p == '\n' ? 2 : 1);
    snprintf(errbuf, errbuf_size, "%s: not a valid JSON Schema (draft 2020-12): %s", name, one.s ? one.s : "");
    free(one.s);
    rc = HUB_ERR_SCHEMA_INVALID;
  }
  free(errors);
  return rc;
}
