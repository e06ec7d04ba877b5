/* A schema of either kind behind one interface: JSON Schema (a .json file) or XSD (a .xsd
 * file, libxml2). Used by the `validate` step and the `lienthong validate` command. A loaded
 * validator is immutable and may be shared by threads. */
#ifndef LT_VALIDATOR_H
#define LT_VALIDATOR_H

#include <stddef.h>

#include "hub/core/err.h"

struct lt_validator;

/* Loads SCHEMA by its extension (.json: JSON Schema 2020-12; .xsd: XML Schema). A bad schema
 * gives HUB_ERR_SCHEMA_INVALID, an unknown extension HUB_ERR_UNSUPPORTED, with the reason. */
hub_err_t lt_validator_load(const char *path, struct lt_validator **out, char *errbuf, size_t errbuf_size);
/* Parses `len` bytes (JSON via lt_json_parse, XML via hub_xml_parse) and validates them.
 * HUB_OK when valid. Otherwise the parse error code (HUB_ERR_JSON, HUB_ERR_XML,
 * HUB_ERR_XML_HOSTILE, HUB_ERR_TOO_LARGE) or HUB_ERR_SCHEMA, and *errors (malloc'd) holds one
 * failure per line, "<path>: <keyword>: <message>" (JSON pointer for JSON, element path and
 * keyword "xsd" for XML; keyword "json"/"xml" for a parse error). */
hub_err_t lt_validator_check(const struct lt_validator *v, const void *buf, size_t len, char **errors);
/* The schema file it was loaded from (borrowed). */
const char *lt_validator_path(const struct lt_validator *v);
/* "json" or "xsd". */
const char *lt_validator_kind(const struct lt_validator *v);
void lt_validator_destroy(struct lt_validator *v);

#endif
