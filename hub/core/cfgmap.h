/* Config maps: a table per connector, step and config section that drives parsing, defaults,
 * validation, `lint`, the generated JSON Schema of the config and the options table in each
 * README. Unknown keys are errors. Values land in a caller's struct at `offset`. */
#ifndef HUB_CFGMAP_H
#define HUB_CFGMAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hub/core/err.h"
#include "hub/core/node.h"

enum hub_cfg_type {
  HUB_CFG_STR,            /* char *            (owned; release with hub_cfg_map_release) */
  HUB_CFG_INT,            /* int64_t */
  HUB_CFG_BOOL,           /* int (0/1) */
  HUB_CFG_DURATION,       /* int64_t ms; "250ms", "5s", "2m", "1h", "1d"; a bare number is ms */
  HUB_CFG_DURATION_RANGE, /* struct hub_duration_range; "200ms..30s" */
  HUB_CFG_SIZE,           /* int64_t bytes; "512", "64KiB", "1MiB", "2GiB", "10KB", "1MB" */
  HUB_CFG_ENUM,           /* int: index into `choices` ("a|b|c") */
  HUB_CFG_STR_LIST,       /* struct hub_str_list; a list, or one string for a list of one */
  HUB_CFG_OBJECT,         /* nested map described by `sub`, stored inline at offset */
  HUB_CFG_NODE,           /* const struct hub_node * (borrowed; the caller checks it) */
};

struct hub_duration_range {
  int64_t min_ms, max_ms;
};

struct hub_str_list {
  char **v;
  size_t n;
};

struct hub_cfg_map;

struct hub_cfg_entry {
  const char *name;
  enum hub_cfg_type type;
  size_t offset;
  const char *def; /* default as YAML text; NULL: none */
  int required;
  const char *desc;
  const char *choices;            /* ENUM: "a|b|c" */
  const struct hub_cfg_map *sub;  /* OBJECT */
  int64_t min, max;               /* INT, SIZE, DURATION bounds when min < max */
};

struct hub_cfg_map {
  const char *name; /* what the map configures, for messages: "route", "kafka" */
  const struct hub_cfg_entry *entries; /* ends with an entry whose name is NULL */
  /* Keys the map leaves to its caller (e.g. hub.<transport> sections); NULL: none. */
  int (*other_key)(const char *key);
};

/* Fills `out` from `node` (a mapping, or NULL for all defaults). On error writes
 * "file:line:col: message" into errbuf and returns HUB_ERR_CONFIG; what was filled is still
 * released by hub_cfg_map_release. `at` names the place for "missing key" errors when node
 * is NULL. */
hub_err_t hub_cfg_map_apply(const struct hub_cfg_map *map, const struct hub_node *node, const struct hub_node *at,
                            void *out, char *errbuf, size_t errbuf_size);
void hub_cfg_map_release(const struct hub_cfg_map *map, void *out);

/* A Markdown options table (name, type, default, required, description). */
void hub_cfg_map_write_markdown(const struct hub_cfg_map *map, FILE *f);
/* A JSON Schema (draft 2020-12) object for the map, as a malloc'd string. */
char *hub_cfg_map_schema_new(const struct hub_cfg_map *map);
const char *hub_cfg_type_name(enum hub_cfg_type t);

/* The scalar parsers the map uses, for tests and other callers. Each returns 0 or -1. */
int hub_parse_duration_ms(const char *s, int64_t *out);
int hub_parse_duration_range(const char *s, struct hub_duration_range *out);
int hub_parse_size(const char *s, int64_t *out);
int hub_parse_int(const char *s, int64_t *out);
int hub_parse_bool(const char *s, int *out);

void hub_str_list_release(struct hub_str_list *l);

/* What every plugin (step, transport, source, sink) says about itself: the first member of its
 * ops struct, read by the registry, the config loader, `lint` and `doc`. */
struct hub_plugin_info {
  const char *name;    /* as written in the configuration */
  const char *summary; /* one line for --help and docs */
  const struct hub_cfg_map *config_map; /* its options; NULL: none */
  size_t config_size;                   /* sizeof the struct the map fills */
};

/* What a plugin may read while it is created. */
struct hub_plugin_env {
  const char *base_dir;        /* relative paths in options are relative to this (the config's folder) */
  const struct hub_node *keys; /* the config's `keys:` section, or NULL */
  const char *owner;           /* the route's or connector's name, for messages */
  const struct hub_node *node; /* the plugin's options as written, for file:line:col; may be NULL */
};

#endif
