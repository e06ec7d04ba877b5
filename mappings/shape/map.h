/* The mapping engine: a declarative YAML mapping file (docs/mapping.md) turns one JSON or XML
 * input into one JSON or XML output, or runs an XSLT 1.0 stylesheet over XML input. A mapping
 * is loaded and checked once, then run on many inputs; running never touches the input and
 * gives either the whole output or an error, never a part. */
#ifndef LT_MAP_H
#define LT_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "hub/core/err.h"

struct lt_map;

enum lt_map_format { LT_MAP_JSON, LT_MAP_XML };

/* Loads and checks a mapping file: unknown keys, wrong types, bad expressions, unknown
 * functions, lookups or zones are errors "file:line:col: message". */
hub_err_t lt_map_load_file(const char *path, struct lt_map **out, char *errbuf, size_t errbuf_size);
void lt_map_destroy(struct lt_map *m);

enum lt_map_format lt_map_input_format(const struct lt_map *m);
enum lt_map_format lt_map_output_format(const struct lt_map *m);
/* "application/json" or "application/xml". */
const char *lt_map_content_type(const struct lt_map *m);
const char *lt_map_path(const struct lt_map *m);

#define LT_MAP_PRETTY 1 /* indent the output (the CLI); steps write it compact */

/* Maps `len` bytes of input. On success *out is a malloc'd, NUL-terminated output of *out_len
 * bytes. On failure returns HUB_ERR_JSON / HUB_ERR_XML / HUB_ERR_XML_HOSTILE / HUB_ERR_TOO_LARGE
 * for unreadable input or HUB_ERR_MAP for a failing rule, with "MAPPING:LINE: input PATH:
 * reason" in errbuf, and *out untouched. */
hub_err_t lt_map_run(const struct lt_map *m, const void *in, size_t len, int flags, unsigned char **out,
                     size_t *out_len, char *errbuf, size_t errbuf_size);

/* Like lt_map_run; `input_name` (e.g. the file) names the input in parse errors
 * ("FILE: line L, column C: ... (input of MAPPING)") instead of "MAPPING: input: ...". */
hub_err_t lt_map_run_named(const struct lt_map *m, const void *in, size_t len, const char *input_name, int flags,
                           unsigned char **out, size_t *out_len, char *errbuf, size_t errbuf_size);

/* One output of a run: the bytes (NUL-terminated) and, for a split with `key:`, the record key. */
struct lt_map_output {
  unsigned char *data;
  size_t len;
  char *key; /* NULL: keep the input record's key */
};
/* Every output: one, or for a mapping with `split:` one per chunk of the split list, in order.
 * All or nothing: on failure nothing is returned. Free with lt_map_outputs_free. A split mapping
 * run by lt_map_run / lt_map_run_named gives the JSON list of its outputs. */
hub_err_t lt_map_run_all(const struct lt_map *m, const void *in, size_t len, const char *input_name, int flags,
                         struct lt_map_output **outs, size_t *n_outs, char *errbuf, size_t errbuf_size);
void lt_map_outputs_free(struct lt_map_output *outs, size_t n);
/* 1 when the mapping splits its input into several outputs. */
int lt_map_splits(const struct lt_map *m);

/* Tests and golden files (`lienthong test`, `map --now`): fixes the clock that `now` reads
 * (milliseconds since the epoch) and makes `uuid` deterministic: with seed 0 a counter in UUID
 * form (00000000-0000-4000-8000-000000000001, ...), otherwise version-4 UUIDs drawn from a
 * generator started at `uuid_seed`. epoch_ms 0 restores the real clock and random UUIDs.
 * Process-wide: call it before runs, not during. */
void lt_map_set_fixed_clock(int64_t epoch_ms);
void lt_map_set_fixed_clock_seed(int64_t epoch_ms, uint64_t uuid_seed);

#endif
