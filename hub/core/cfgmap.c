/* Config map engine: YAML node → C struct, with defaults, types, bounds and unknown-key
 * checks; plus the docs and schema generated from the same tables. */
#include "hub/core/cfgmap.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int hub_parse_int(const char *s, int64_t *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || isspace((unsigned char)*s)) return -1;
  *out = v;
  return 0;
}

int hub_parse_bool(const char *s, int *out) {
  if (!s) return -1;
  if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")) {
    *out = 1;
    return 0;
  }
  if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")) {
    *out = 0;
    return 0;
  }
  return -1;
}

/* number + unit from a table; the number may have a fraction ("1.5s"). */
static int parse_scaled(const char *s, const char *const *units, const double *scale, size_t n_units,
                        int bare_ok, int64_t *out) {
  if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+') return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s) return -1;
  if (!*end) {
    if (!bare_ok) return -1;
    if (v != (double)(int64_t)v) return -1;
    *out = (int64_t)v;
    return 0;
  }
  for (size_t i = 0; i < n_units; i++) {
    if (strcmp(end, units[i]) == 0) {
      double r = v * scale[i];
      if (r > 9.2e18) return -1;
      *out = (int64_t)(r + 0.5);
      return 0;
    }
  }
  return -1;
}

int hub_parse_duration_ms(const char *s, int64_t *out) {
  static const char *const units[] = {"ms", "s", "m", "h", "d"};
  static const double scale[] = {1, 1000, 60000, 3600000, 86400000};
  return parse_scaled(s, units, scale, 5, 1, out);
}

int hub_parse_size(const char *s, int64_t *out) {
  static const char *const units[] = {"B", "KB", "MB", "GB", "KiB", "MiB", "GiB", "k", "K", "M", "G"};
  static const double scale[] = {1, 1e3, 1e6, 1e9, 1024.0, 1048576.0, 1073741824.0, 1024.0, 1024.0, 1048576.0, 1073741824.0};
  return parse_scaled(s, units, scale, sizeof units / sizeof *units, 1, out);
}

int hub_parse_duration_range(const char *s, struct hub_duration_range *out) {
  const char *dots = s ? strstr(s, "..") : NULL;
  if (!dots) return -1;
  char lo[64];
  size_t n = (size_t)(dots - s);
  if (n == 0 || n >= sizeof lo) return -1;
  memcpy(lo, s, n);
  lo[n] = '\0';
  if (hub_parse_duration_ms(lo, &out->min_ms) < 0 || hub_parse_duration_ms(dots + 2, &out->max_ms) < 0) return -1;
  return out->min_ms <= out->max_ms ? 0 : -1;
}

void hub_str_list_release(struct hub_str_list *l) {
  if (!l) return;
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

void hub_str_map_release(struct hub_str_map *m) {
  if (!m) return;
  for (size_t i = 0; i < m->n; i++) {
    free(m->keys[i]);
    free(m->values[i]);
  }
  free(m->keys);
  free(m->values);
  m->keys = m->values = NULL;
  m->n = 0;
}

const char *hub_str_map_get(const struct hub_str_map *m, const char *key) {
  for (size_t i = 0; m && i < m->n; i++)
    if (!strcmp(m->keys[i], key)) return m->values[i];
  return NULL;
}

const char *hub_cfg_type_name(enum hub_cfg_type t) {
  switch (t) {
  case HUB_CFG_STR:
    return "string";
  case HUB_CFG_INT:
    return "integer";
  case HUB_CFG_BOOL:
    return "boolean";
  case HUB_CFG_DURATION:
    return "duration";
  case HUB_CFG_DURATION_RANGE:
    return "duration range";
  case HUB_CFG_SIZE:
    return "size";
  case HUB_CFG_ENUM:
    return "enum";
  case HUB_CFG_STR_LIST:
    return "list of strings";
  case HUB_CFG_OBJECT:
    return "mapping";
  case HUB_CFG_NODE:
    return "any";
  case HUB_CFG_STR_MAP:
    return "mapping of strings";
  }
  return "?";
}

static int enum_index(const char *choices, const char *v) {
  int idx = 0;
  size_t vl = strlen(v);
  for (const char *p = choices; p && *p; idx++) {
    const char *bar = strchr(p, '|');
    size_t n = bar ? (size_t)(bar - p) : strlen(p);
    if (n == vl && strncmp(p, v, n) == 0) return idx;
    if (!bar) break;
    p = bar + 1;
  }
  return -1;
}

/* A bound as it would be written: "5m", "1MiB", "-1". */
static void fmt_bound(enum hub_cfg_type t, int64_t v, char *out, size_t n) {
  static const struct {
    int64_t scale;
    const char *unit;
  } durations[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}},
    sizes[] = {{1073741824, "GiB"}, {1048576, "MiB"}, {1024, "KiB"}, {1, ""}};
  size_t k = 0, nk = t == HUB_CFG_DURATION ? 5 : t == HUB_CFG_SIZE ? 4 : 0;
  if (!nk || v == 0) {
    snprintf(out, n, "%lld", (long long)v);
    return;
  }
  while (k + 1 < nk && v % (t == HUB_CFG_DURATION ? durations[k].scale : sizes[k].scale)) k++;
  if (t == HUB_CFG_DURATION)
    snprintf(out, n, "%lld%s", (long long)(v / durations[k].scale), durations[k].unit);
  else
    snprintf(out, n, "%lld%s", (long long)(v / sizes[k].scale), sizes[k].unit);
}

/* Adds the pairs of `v` whose keys `skip` does not name (NULL: every pair) to a string map. */
static hub_err_t str_map_add(const struct hub_cfg_entry *e, const struct hub_node *v,
                             const struct hub_cfg_map *skip, struct hub_str_map *m, char *errbuf, size_t errbuf_size) {
  size_t n = m->n + v->n;
  char **k = realloc(m->keys, (n ? n : 1) * sizeof *k);
  if (!k) return HUB_ERR_NOMEM;
  m->keys = k;
  char **vals = realloc(m->values, (n ? n : 1) * sizeof *vals);
  if (!vals) return HUB_ERR_NOMEM;
  m->values = vals;
  for (size_t i = 0; i < v->n; i++) {
    const char *key = v->keys[i]->scalar;
    const struct hub_cfg_entry *o = NULL;
    for (const struct hub_cfg_entry *x = skip ? skip->entries : NULL; x && x->name && !o; x++)
      if (x != e && !strcmp(x->name, key)) o = x;
    if (o) continue;
    if (!*key) return hub_node_error(v->keys[i], errbuf, errbuf_size, "'%s': names must not be empty", e->name);
    if (v->items[i]->kind != HUB_NODE_SCALAR)
      return hub_node_error(v->items[i], errbuf, errbuf_size, "'%s'%s%s%s must have a scalar value, not %s", key,
                            skip ? "" : " in '", skip ? "" : e->name, skip ? "" : "'",
                            hub_node_kind_name(v->items[i]->kind));
    if (!(m->keys[m->n] = strdup(key))) return HUB_ERR_NOMEM;
    if (!(m->values[m->n] = strdup(v->items[i]->scalar))) {
      free(m->keys[m->n]);
      return HUB_ERR_NOMEM;
    }
    m->n++;
  }
  return HUB_OK;
}

static hub_err_t apply_entry(const struct hub_cfg_entry *e, const struct hub_node *v, void *out, char *errbuf,
                             size_t errbuf_size) {
  char *dst = (char *)out + e->offset;
  if (e->type == HUB_CFG_STR_MAP) {
    struct hub_str_map *m = (struct hub_str_map *)dst;
    hub_str_map_release(m);
    if (v->kind != HUB_NODE_MAP)
      return hub_node_error(v, errbuf, errbuf_size, "'%s' must be a mapping, not %s%s%s", e->name,
                            hub_node_kind_name(v->kind), e->desc ? ": " : "", e->desc ? e->desc : "");
    return str_map_add(e, v, NULL, m, errbuf, errbuf_size);
  }
  if (e->type == HUB_CFG_NODE) {
    *(const struct hub_node **)dst = v;
    return HUB_OK;
  }
  if (e->type == HUB_CFG_OBJECT) {
    if (v->kind != HUB_NODE_MAP)
      return hub_node_error(v, errbuf, errbuf_size, "'%s' must be a mapping, not %s", e->name,
                            hub_node_kind_name(v->kind));
    return hub_cfg_map_apply(e->sub, v, v, dst, errbuf, errbuf_size);
  }
  if (e->type == HUB_CFG_STR_LIST) {
    struct hub_str_list *l = (struct hub_str_list *)dst;
    hub_str_list_release(l);
    size_t n = v->kind == HUB_NODE_SEQ ? v->n : 1;
    if (v->kind == HUB_NODE_MAP)
      return hub_node_error(v, errbuf, errbuf_size, "'%s' must be a list of strings, not a mapping", e->name);
    l->v = calloc(n ? n : 1, sizeof *l->v);
    if (!l->v) return HUB_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
      const struct hub_node *it = v->kind == HUB_NODE_SEQ ? v->items[i] : v;
      if (it->kind != HUB_NODE_SCALAR)
        return hub_node_error(it, errbuf, errbuf_size, "'%s' items must be strings, not %s", e->name,
                              hub_node_kind_name(it->kind));
      if (!(l->v[i] = strdup(it->scalar))) return HUB_ERR_NOMEM;
      l->n = i + 1;
    }
    return HUB_OK;
  }
  if (v->kind != HUB_NODE_SCALAR)
    return hub_node_error(v, errbuf, errbuf_size, "'%s' must be a %s, not %s", e->name, hub_cfg_type_name(e->type),
                          hub_node_kind_name(v->kind));
  const char *s = v->scalar;
  int64_t n64;
  switch (e->type) {
  case HUB_CFG_STR: {
    char **p = (char **)dst;
    free(*p);
    if (!(*p = strdup(s))) return HUB_ERR_NOMEM;
    if (e->required && !*s) return hub_node_error(v, errbuf, errbuf_size, "'%s' must not be empty", e->name);
    return HUB_OK;
  }
  case HUB_CFG_INT:
    if (v->quoted || hub_parse_int(s, &n64) < 0)
      return hub_node_error(v, errbuf, errbuf_size, "'%s' must be an integer, got '%s'", e->name, s);
    break;
  case HUB_CFG_DURATION:
    if (hub_parse_duration_ms(s, &n64) < 0)
      return hub_node_error(v, errbuf, errbuf_size,
                            "'%s' must be a duration such as 250ms, 5s, 2m or 1h, got '%s'", e->name, s);
    break;
  case HUB_CFG_SIZE:
    if (hub_parse_size(s, &n64) < 0)
      return hub_node_error(v, errbuf, errbuf_size, "'%s' must be a size such as 4096, 64KiB or 1MiB, got '%s'",
                            e->name, s);
    break;
  case HUB_CFG_DURATION_RANGE: {
    struct hub_duration_range r;
    if (hub_parse_duration_range(s, &r) < 0)
      return hub_node_error(v, errbuf, errbuf_size,
                            "'%s' must be a duration range MIN..MAX such as 200ms..30s, got '%s'", e->name, s);
    *(struct hub_duration_range *)dst = r;
    return HUB_OK;
  }
  case HUB_CFG_BOOL: {
    int b;
    if (v->quoted || hub_parse_bool(s, &b) < 0)
      return hub_node_error(v, errbuf, errbuf_size, "'%s' must be true or false, got '%s'", e->name, s);
    *(int *)dst = b;
    return HUB_OK;
  }
  case HUB_CFG_ENUM: {
    int idx = enum_index(e->choices, s);
    if (idx < 0)
      return hub_node_error(v, errbuf, errbuf_size, "'%s' must be one of %s, got '%s'", e->name, e->choices, s);
    *(int *)dst = idx;
    return HUB_OK;
  }
  default:
    return hub_node_error(v, errbuf, errbuf_size, "'%s': unsupported option type", e->name);
  }
  if (e->min < e->max && (n64 < e->min || n64 > e->max)) {
    char lo[32], hi[32];
    fmt_bound(e->type, e->min, lo, sizeof lo);
    fmt_bound(e->type, e->max, hi, sizeof hi);
    return hub_node_error(v, errbuf, errbuf_size, "'%s' must be between %s and %s, got '%s'", e->name, lo, hi, s);
  }
  *(int64_t *)dst = n64;
  return HUB_OK;
}

static hub_err_t apply_default(const struct hub_cfg_entry *e, void *out, char *errbuf, size_t errbuf_size) {
  if (e->type == HUB_CFG_OBJECT) return hub_cfg_map_apply(e->sub, NULL, NULL, (char *)out + e->offset, errbuf, errbuf_size);
  if (!e->def) return HUB_OK;
  struct hub_node n = {.kind = HUB_NODE_SCALAR, .file = "<default>", .line = 0, .col = 0, .scalar = (char *)e->def};
  return apply_entry(e, &n, out, errbuf, errbuf_size);
}

static void suggest(const struct hub_cfg_map *map, const char *key, char *out, size_t cap) {
  /* The closest known key by a cheap prefix/substring test, to help with typos. */
  out[0] = '\0';
  for (const struct hub_cfg_entry *e = map->entries; e->name; e++) {
    size_t kl = strlen(key), el = strlen(e->name);
    if ((kl >= 3 && strncasecmp(e->name, key, 3) == 0) || (el >= 3 && strstr(key, e->name)) ||
        (kl >= 3 && strstr(e->name, key))) {
      snprintf(out, cap, " (did you mean '%s'?)", e->name);
      return;
    }
  }
}

static const struct hub_cfg_entry *entry_named(const struct hub_cfg_map *map, const char *name) {
  for (const struct hub_cfg_entry *e = map->entries; e->name; e++)
    if (!strcmp(e->name, name)) return e;
  return NULL;
}

/* The rest_key entry collects keys; it is never an option of its own name. */
static int is_rest(const struct hub_cfg_map *map, const struct hub_cfg_entry *e) {
  return map->rest_key && !strcmp(e->name, map->rest_key);
}

static hub_err_t shape_error(const struct hub_cfg_map *map, const struct hub_node *node, char *errbuf,
                             size_t errbuf_size) {
  if (!map->usage)
    return hub_node_error(node, errbuf, errbuf_size, "%s must be a mapping, not %s", map->name,
                          hub_node_kind_name(node->kind));
  return hub_node_error(node, errbuf, errbuf_size, "%s takes a mapping%s, not %s (write %s)", map->name,
                        map->scalar_key ? " or a scalar" : "", hub_node_kind_name(node->kind), map->usage);
}

hub_err_t hub_cfg_map_apply(const struct hub_cfg_map *map, const struct hub_node *node, const struct hub_node *at,
                            void *out, char *errbuf, size_t errbuf_size) {
  /* `- validate: FILE`: the scalar is the value of the map's scalar_key entry */
  int scalar = node && node->kind == HUB_NODE_SCALAR && map->scalar_key;
  if (node && node->kind != HUB_NODE_MAP && !scalar) return shape_error(map, node, errbuf, errbuf_size);
  if (node && !scalar) {
    for (size_t i = 0; i < node->n; i++) {
      const struct hub_cfg_entry *e = entry_named(map, node->keys[i]->scalar);
      if ((e && !is_rest(map, e)) || map->rest_key || (map->other_key && map->other_key(node->keys[i]->scalar)))
        continue;
      char hint[128];
      suggest(map, node->keys[i]->scalar, hint, sizeof hint);
      return hub_node_error(node->keys[i], errbuf, errbuf_size, "unknown key '%s' in %s%s", node->keys[i]->scalar,
                            map->name, hint);
    }
  }
  for (const struct hub_cfg_entry *e = map->entries; e->name; e++) {
    hub_err_t err;
    if (is_rest(map, e)) {
      struct hub_str_map *m = (struct hub_str_map *)((char *)out + e->offset);
      hub_str_map_release(m);
      err = node && !scalar ? str_map_add(e, node, map, m, errbuf, errbuf_size) : HUB_OK;
      if (err == HUB_OK && e->required && !m->n)
        return hub_node_error(node ? node : at, errbuf, errbuf_size, "%s needs at least one %s (write %s)",
                              map->name, e->name, map->usage ? map->usage : "NAME: VALUE");
    } else {
      const struct hub_node *v = !node ? NULL : scalar ? (!strcmp(e->name, map->scalar_key) ? node : NULL)
                                                       : hub_node_get(node, e->name);
      if (v)
        err = apply_entry(e, v, out, errbuf, errbuf_size);
      else if (e->required)
        return hub_node_error(node ? node : at, errbuf, errbuf_size, "missing required key '%s' in %s", e->name,
                              map->name);
      else
        err = apply_default(e, out, errbuf, errbuf_size);
    }
    if (err != HUB_OK) {
      if (err == HUB_ERR_NOMEM) snprintf(errbuf, errbuf_size, "out of memory");
      return err;
    }
  }
  return map->check ? map->check(out, node, at, errbuf, errbuf_size) : HUB_OK;
}

const struct hub_node *hub_cfg_value_at(const struct hub_node *node, const struct hub_node *at, const char *key) {
  const struct hub_node *v = key ? hub_node_get(node, key) : NULL;
  return v ? v : node ? node : at;
}

void hub_cfg_map_release(const struct hub_cfg_map *map, void *out) {
  for (const struct hub_cfg_entry *e = map->entries; e->name; e++) {
    char *dst = (char *)out + e->offset;
    if (e->type == HUB_CFG_STR) {
      free(*(char **)dst);
      *(char **)dst = NULL;
    } else if (e->type == HUB_CFG_STR_LIST) {
      hub_str_list_release((struct hub_str_list *)dst);
    } else if (e->type == HUB_CFG_STR_MAP) {
      hub_str_map_release((struct hub_str_map *)dst);
    } else if (e->type == HUB_CFG_OBJECT) {
      hub_cfg_map_release(e->sub, dst);
    }
  }
}

static int bounded(const struct hub_cfg_entry *e) {
  return e->min < e->max && (e->type == HUB_CFG_INT || e->type == HUB_CFG_DURATION || e->type == HUB_CFG_SIZE);
}

static void md_rows(const struct hub_cfg_map *map, const char *prefix, FILE *f) {
  for (const struct hub_cfg_entry *e = map->entries; e->name; e++) {
    if (e->type == HUB_CFG_OBJECT) {
      char p[256];
      snprintf(p, sizeof p, "%s%s.", prefix, e->name);
      md_rows(e->sub, p, f);
      continue;
    }
    char type[512], lo[32], hi[32];
    if (e->type == HUB_CFG_ENUM)
      snprintf(type, sizeof type, "one of `%s`", e->choices);
    else if (is_rest(map, e))
      snprintf(type, sizeof type, "string (any other key)");
    else
      snprintf(type, sizeof type, "%s", hub_cfg_type_name(e->type));
    for (char *c = type; *c; c++)
      if (*c == '|') *c = '/';
    if (bounded(e)) {
      size_t used = strlen(type);
      fmt_bound(e->type, e->min, lo, sizeof lo);
      fmt_bound(e->type, e->max, hi, sizeof hi);
      snprintf(type + used, sizeof type - used, ", `%s`..`%s`", lo, hi);
    }
    fprintf(f, "| `%s%s` | %s | %s%s%s | %s | %s |\n", prefix, e->name, type, e->def ? "`" : "",
            e->def ? e->def : "", e->def ? "`" : "", e->required ? "yes" : "no", e->desc ? e->desc : "");
  }
}

static void md_constraints(const struct hub_cfg_map *map, int *first, FILE *f) {
  for (const struct hub_cfg_constraint *c = map->constraints; c && c->text; c++) {
    if (*first)
      fprintf(f, "\nConstraints (`lint` and `run` refuse a configuration that breaks one, with file:line:col):\n\n");
    *first = 0;
    fprintf(f, "- %s\n", c->text);
  }
  for (const struct hub_cfg_entry *e = map->entries; e->name; e++)
    if (e->type == HUB_CFG_OBJECT) md_constraints(e->sub, first, f);
}

void hub_cfg_map_write_markdown(const struct hub_cfg_map *map, FILE *f) {
  int first = 1;
  fprintf(f, "| option | type | default | required | description |\n");
  fprintf(f, "| --- | --- | --- | --- | --- |\n");
  md_rows(map, "", f);
  md_constraints(map, &first, f);
}

static json_t *schema_of(const struct hub_cfg_map *map) {
  json_t *obj = json_object(), *props = json_object(), *req = json_array(), *scalar = NULL;
  json_object_set_new(obj, "type", json_string("object"));
  json_object_set_new(obj, "additionalProperties", json_false());
  for (const struct hub_cfg_entry *e = map->entries; e->name; e++) {
    json_t *p;
    switch (e->type) {
    case HUB_CFG_OBJECT:
      p = schema_of(e->sub);
      break;
    case HUB_CFG_INT:
      p = json_pack("{s:s}", "type", "integer");
      break;
    case HUB_CFG_BOOL:
      p = json_pack("{s:s}", "type", "boolean");
      break;
    case HUB_CFG_ENUM: {
      json_t *vals = json_array();
      const char *s = e->choices;
      while (s && *s) {
        const char *bar = strchr(s, '|');
        size_t n = bar ? (size_t)(bar - s) : strlen(s);
        json_array_append_new(vals, json_stringn(s, n));
        s = bar ? bar + 1 : NULL;
      }
      p = json_pack("{s:o}", "enum", vals);
      break;
    }
    case HUB_CFG_STR_LIST:
      p = json_pack("{s:[s,s], s:{s:s}}", "type", "array", "string", "items", "type", "string");
      break;
    case HUB_CFG_STR_MAP:
      p = json_pack("{s:s, s:{s:s}}", "type", "object", "additionalProperties", "type", "string");
      break;
    case HUB_CFG_DURATION:
      p = json_pack("{s:[s,s], s:s}", "type", "string", "integer", "pattern", "^[0-9.]+(ms|s|m|h|d)?$");
      break;
    case HUB_CFG_DURATION_RANGE:
      p = json_pack("{s:s, s:s}", "type", "string", "pattern", "^[0-9.]+(ms|s|m|h|d)?\\.\\.[0-9.]+(ms|s|m|h|d)?$");
      break;
    case HUB_CFG_SIZE:
      p = json_pack("{s:[s,s]}", "type", "string", "integer");
      break;
    case HUB_CFG_NODE:
      p = json_object();
      break;
    default:
      p = json_pack("{s:s}", "type", "string");
      break;
    }
    if (e->desc) json_object_set_new(p, "description", json_string(e->desc));
    if (e->def) json_object_set_new(p, "default", json_string(e->def));
    /* the bounds hold for the number form too: milliseconds, bytes */
    if (bounded(e)) {
      json_object_set_new(p, "minimum", json_integer(e->min));
      json_object_set_new(p, "maximum", json_integer(e->max));
    }
    if (is_rest(map, e)) {
      json_object_set_new(obj, "additionalProperties", json_pack("{s:s, s:s}", "type", "string", "description",
                                                                 e->desc ? e->desc : ""));
      if (e->required) json_object_set_new(obj, "minProperties", json_integer(1));
      json_decref(p);
      continue;
    }
    if (map->scalar_key && !strcmp(e->name, map->scalar_key)) scalar = json_deep_copy(p);
    json_object_set_new(props, e->name, p);
    if (e->required) json_array_append_new(req, json_string(e->name));
  }
  json_object_set_new(obj, "properties", props);
  if (json_array_size(req))
    json_object_set_new(obj, "required", req);
  else
    json_decref(req);
  if (map->constraints && map->constraints->text) {
    json_t *cs = json_array();
    for (const struct hub_cfg_constraint *c = map->constraints; c->text; c++)
      json_array_append_new(cs, json_pack("{s:s, s:s?, s:s, s:s?}", "text", c->text, "option", c->option, "breaks",
                                          c->breaks, "edge", c->edge));
    json_object_set_new(obj, "x-constraints", cs);
  }
  if (!scalar) return obj;
  /* `- NAME: VALUE` for the scalar_key option, or the mapping */
  json_object_set_new(scalar, "x-fills", json_string(map->scalar_key));
  return json_pack("{s:[o,o]}", "anyOf", scalar, obj);
}

char *hub_cfg_map_schema_new(const struct hub_cfg_map *map) {
  json_t *s = schema_of(map);
  char *out = json_dumps(s, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(s);
  return out;
}
