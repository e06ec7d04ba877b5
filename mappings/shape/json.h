/* The one JSON parse function of the mapping code (validate, map, query, test): every JSON
 * message the hub reads as data goes through it, so every caller refuses the same things.
 * Also the small helpers the JSON code around it shares: file reading, JSON equality and a
 * growable text buffer. */
#ifndef LT_JSON_H
#define LT_JSON_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>

#include "hub/core/err.h"

/* Parses `len` bytes of JSON (any JSON text, also a bare scalar; a leading UTF-8 BOM is skipped). Refused, with HUB_ERR_JSON and
 * "NAME: line L, column C: message" in errbuf: malformed JSON, duplicate object keys, a NUL
 * byte (raw or as \u0000), invalid UTF-8, numbers out of range. `name` (may be NULL) names
 * the input in messages. On success *json is a new reference. */
hub_err_t lt_json_parse(const void *buf, size_t len, const char *name, json_t **json, char *errbuf,
                        size_t errbuf_size);

/* Reads a whole file and parses it with lt_json_parse; HUB_ERR_IO when it cannot be read. */
hub_err_t lt_json_load_file(const char *path, json_t **json, char *errbuf, size_t errbuf_size);


/* Equality of JSON values as JSON Schema and JSONPath define it: numbers by value (1 == 1.0),
 * strings by content, arrays item by item, objects member by member regardless of order. */
int lt_json_equal(json_t *a, json_t *b);
/* -1, 0 or 1 for two JSON numbers: exact between integers, as doubles otherwise. */
int lt_json_number_cmp(json_t *a, json_t *b);
/* The length in code points of valid UTF-8 (JSON Schema's and JSONPath's string length). */
size_t lt_utf8_length(const char *s, size_t n);

/* Serialises any JSON value as json_dumps does with JSON_ENCODE_ANY (flags: JSON_COMPACT,
 * JSON_INDENT(n), JSON_SORT_KEYS), except that a real is written in the shortest form that
 * reads back to the same double (0.1, not 0.10000000000000001). Malloc'd, or NULL. */
char *lt_json_dumps(const json_t *json, size_t flags);
/* That form of one real into out; its length, or -1 when out is too small. */
int lt_json_real_text(double d, char *out, size_t size);

/* A growable NUL-terminated text buffer. Zero-initialise; `s` is malloc'd (NULL until the first
 * write). After a failed allocation `oom` is set and further writes do nothing. */
struct lt_buf {
  char *s;
  size_t len, cap;
  int oom;
};
void lt_buf_put(struct lt_buf *b, const void *data, size_t n);
void lt_buf_str(struct lt_buf *b, const char *s);
void lt_buf_fmt(struct lt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lt_buf_vfmt(struct lt_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define LT_JSON_MAX_BYTES (64u * 1024u * 1024u)

#endif
