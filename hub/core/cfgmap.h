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
  HUB_CFG_STR_MAP,        /* struct hub_str_map; a mapping of any names to strings */
};

struct hub_duration_range {
  int64_t min_ms, max_ms;
};

struct hub_str_list {
  char **v;
  size_t n;
};

/* Names and their values, in the order written. */
struct hub_str_map {
  char **keys, **values;
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

/* A rule between options that the map's `check` enforces, written down for `doc config`, the
 * config schema and tests. */
struct hub_cfg_constraint {
  const char *text;   /* the rule, for people */
  const char *option; /* the option an error names when the rule is broken; NULL: the section */
  const char *breaks; /* options (a YAML flow mapping) that break the rule, for tests */
  const char *edge;   /* options right at the rule's limit, which it accepts; NULL: none */
};

struct hub_cfg_map {
  const char *name; /* what the map configures, for messages: "route", "kafka" */
  const struct hub_cfg_entry *entries; /* ends with an entry whose name is NULL */
  /* Keys the map leaves to its caller (e.g. hub.<transport> sections); NULL: none. */
  int (*other_key)(const char *key);
  /* A scalar written instead of a mapping fills this entry (`- validate: FILE` is
   * `- validate: {schema: FILE}`); NULL: a scalar is an error. */
  const char *scalar_key;
  /* A HUB_CFG_STR_MAP entry that collects every key no other entry names (set-header's
   * `{HEADER: VALUE}`); NULL: such keys are errors. It is never matched by its own name. */
  const char *rest_key;
  /* How the options are written, for messages and docs, e.g. "`- set-header: {NAME: VALUE}`". */
  const char *usage;
  /* Cross-field rules, run once every entry is filled; on a violation writes file:line:col
   * (see hub_cfg_value_at) into errbuf and returns HUB_ERR_CONFIG. NULL: none. */
  hub_err_t (*check)(const void *cfg, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                     size_t errbuf_size);
  const struct hub_cfg_constraint *constraints; /* what check enforces; ends with a NULL text */
};

/* Fills `out` from `node` (a mapping, or NULL for all defaults). On error writes
 * "file:line:col: message" into errbuf and returns HUB_ERR_CONFIG; what was filled is still
 * released by hub_cfg_map_release. `at` names the place for "missing key" errors when node
 * is NULL. */
hub_err_t hub_cfg_map_apply(const struct hub_cfg_map *map, const struct hub_node *node, const struct hub_node *at,
                            void *out, char *errbuf, size_t errbuf_size);
void hub_cfg_map_release(const struct hub_cfg_map *map, void *out);
/* Where an error about option `key` points: its value when written in `node`, else `node`,
 * else `at` (for checks, whose options may all be defaults). */
const struct hub_node *hub_cfg_value_at(const struct hub_node *node, const struct hub_node *at, const char *key);

/* A Markdown options table (name, type with bounds, default, required, description), then the
 * map's constraints as a list. */
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
void hub_str_map_release(struct hub_str_map *m);
/* The value of `key`, or NULL (borrowed). */
const char *hub_str_map_get(const struct hub_str_map *m, const char *key);

/* What every plugin (step, transport, source, sink) says about itself: the first member of its
 * ops struct, read by the registry, the config loader, `lint` and `doc`. */
struct hub_plugin_info {
  const char *name;    /* as written in the configuration */
  const char *summary; /* one line for --help and docs */
  const struct hub_cfg_map *config_map; /* its options; NULL: none */
  size_t config_size;                   /* sizeof the struct the map fills */
};

#endif
