/* RFC 9535 JSONPath over jansson values. Compile once, query many times. */
#ifndef LT_JSONPATH_H
#define LT_JSONPATH_H

#include <jansson.h>
#include <stddef.h>

#include "hub/core/err.h"

struct lt_jsonpath;

/* Compiles EXPR; on a syntax error returns HUB_ERR_QUERY with "column N: message" in errbuf. */
hub_err_t lt_jsonpath_compile(const char *expr, struct lt_jsonpath **out, char *errbuf, size_t errbuf_size);
/* The result nodelist as a new JSON array (its items are references to nodes of `root`). */
json_t *lt_jsonpath_query_new(const struct lt_jsonpath *path, json_t *root);
/* The normalized paths (RFC 9535 §2.7, e.g. "$['a'][0]") of the result, as a new JSON array. */
json_t *lt_jsonpath_paths_new(const struct lt_jsonpath *path, json_t *root);
void lt_jsonpath_destroy(struct lt_jsonpath *path);

#endif
