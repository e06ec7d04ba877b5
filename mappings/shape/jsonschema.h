/* JSON Schema draft 2020-12 validation over jansson values. */
#ifndef LT_JSONSCHEMA_H
#define LT_JSONSCHEMA_H

#include <jansson.h>
#include <stddef.h>

#include "hub/core/err.h"

struct lt_schema;

/* Loads and compiles a schema file (relative $refs resolve against its location). A bad
 * schema returns HUB_ERR_SCHEMA_INVALID with file and JSON pointer in errbuf. */
hub_err_t lt_schema_load_file(const char *path, struct lt_schema **out, char *errbuf, size_t errbuf_size);
/* Compiles an in-memory schema whose base URI is `base_uri` (absolute). The schema is not
 * checked against the meta-schema here (lt_schema_load_file does that). */
hub_err_t lt_schema_new(json_t *schema, const char *base_uri, struct lt_schema **out, char *errbuf,
                        size_t errbuf_size);
/* Serves references below the URI `prefix` (e.g. "http://localhost:1234/") from files under
 * `dir`, process-wide (NULL, NULL turns it off). The hub never fetches schemas over the network:
 * besides this map, references resolve to schemas in the same document, the built-in draft
 * 2020-12 meta-schemas, and (for a schema loaded from a file) other files by file: URI inside
 * its folder tree: the nearest enclosing folder named `schemas`, else the schema's own folder
 * (real paths, so neither ".." nor a symbolic link leaves it). */
hub_err_t lt_schema_set_remote_map(const char *prefix, const char *dir);
/* Validates; HUB_OK when valid, else HUB_ERR_SCHEMA and, when errors_out is not NULL, a
 * malloc'd text with one line per failure: "<instance JSON pointer>: <keyword>: <message>".
 * HUB_ERR_UNDECIDED (one line saying where) when a pattern could not be decided on the value:
 * a limit of the matcher, which must never read as valid or invalid. */
hub_err_t lt_schema_validate(const struct lt_schema *schema, json_t *instance, char **errors_out);
void lt_schema_destroy(struct lt_schema *schema);

#endif
