/* A schema of either kind behind one interface (see validator.h): JSON Schema or XSD. */
#include "mappings/shape/validator.h"

#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlIO.h>
#include <libxml/xmlschemas.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/files.h"
#include "hub/core/registry.h"
#include "hub/core/step.h"
#include "hub/core/xml.h"
#include "mappings/shape/json.h"
#include "mappings/shape/jsonschema.h"

struct lt_validator {
  struct lt_schema *json;
  xmlSchemaPtr xsd;
  char *path;
};

/* Appends one failure line (lines are separated by newlines; trailing blanks dropped). */
static void add_line(struct lt_buf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_line(struct lt_buf *t, const char *fmt, ...) {
  if (t->len) lt_buf_put(t, "\n", 1);
  size_t start = t->len;
  va_list ap;
  va_start(ap, fmt);
  lt_buf_vfmt(t, fmt, ap);
  va_end(ap);
  while (t->s && t->len > start && (t->s[t->len - 1] == '\n' || t->s[t->len - 1] == ' ')) t->s[--t->len] = 0;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* libxml2 reports each XSD failure here: "<element path>: xsd: <message> (line N)". */
static void xsd_error(void *ctx, xmlErrorPtr err) {
  struct lt_buf *t = ctx;
  if (!err || !err->message) return;
  xmlChar *where = err->node ? xmlGetNodePath((xmlNodePtr)err->node) : NULL;
  size_t n = strlen(err->message);
  while (n && (err->message[n - 1] == '\n' || err->message[n - 1] == ' ')) n--;
  add_line(t, "%s: xsd: %.*s (line %d)", where ? (const char *)where : "/", (int)n, err->message, err->line);
  xmlFree(where);
}

hub_err_t lt_validator_load(const char *path, struct lt_validator **out, char *errbuf, size_t errbuf_size) {
  *out = NULL;
  struct lt_validator *v = calloc(1, sizeof *v);
  if (!v || !(v->path = strdup(path))) {
    free(v);
    return HUB_ERR_NOMEM;
  }
  hub_err_t rc;
  if (ends_with(path, ".json")) {
    rc = lt_schema_load_file(path, &v->json, errbuf, errbuf_size);
  } else if (ends_with(path, ".xsd")) {
    char *buf = NULL;
    size_t len = 0;
    xmlDocPtr doc = NULL;
    xmlSchemaParserCtxtPtr pc = NULL;
    struct lt_buf msgs = {0};
    rc = hub_file_read(path, HUB_XML_DEFAULT_MAX_BYTES, &buf, &len, errbuf, errbuf_size);
    if (rc == HUB_OK) rc = hub_xml_parse(buf, len, NULL, path, &doc, errbuf, errbuf_size);
    if (rc == HUB_OK) {
      /* libxml2 reads xs:include/xs:import documents itself: never let it use the network (a
       * process-wide setting, and the hub never wants network loads from libxml2 anyway) */
      xmlSetExternalEntityLoader(xmlNoNetExternalEntityLoader);
      doc->URL = xmlStrdup(BAD_CAST path); /* xs:include and xs:import resolve beside the schema */
      pc = xmlSchemaNewDocParserCtxt(doc);
      if (pc) {
        xmlSchemaSetParserStructuredErrors(pc, xsd_error, &msgs);
        v->xsd = xmlSchemaParse(pc);
      }
      if (!v->xsd) {
        struct lt_buf one = {0}; /* the failures on one line, joined by "; " */
        for (const char *p = msgs.s; p && *p; p++) lt_buf_put(&one, *p == '\n' ? "; " : p, *p == '\n' ? 2 : 1);
        snprintf(errbuf, errbuf_size, "%s: not a valid XML Schema: %s", path, one.s ? one.s : "(no detail)");
        free(one.s);
        rc = HUB_ERR_SCHEMA_INVALID;
      }
    } else if (rc != HUB_ERR_IO && rc != HUB_ERR_NOMEM) {
      rc = HUB_ERR_SCHEMA_INVALID;
    }
    xmlSchemaFreeParserCtxt(pc);
    xmlFreeDoc(doc);
    free(buf);
    free(msgs.s);
  } else {
    snprintf(errbuf, errbuf_size, "%s: unknown schema type (expected a .json JSON Schema or an .xsd XML Schema)", path);
    rc = HUB_ERR_UNSUPPORTED;
  }
  if (rc != HUB_OK) {
    lt_validator_destroy(v);
    return rc;
  }
  *out = v;
  return HUB_OK;
}

const char *lt_validator_path(const struct lt_validator *v) { return v->path; }
const char *lt_validator_kind(const struct lt_validator *v) { return v->json ? "json" : "xsd"; }

hub_err_t lt_validator_check(const struct lt_validator *v, const void *buf, size_t len, char **errors) {
  *errors = NULL;
  char err[1024];
  hub_err_t rc;
  struct lt_buf t = {0};
  if (v->json) {
    json_t *j = NULL;
    rc = lt_json_parse(buf, len, NULL, &j, err, sizeof err);
    if (rc != HUB_OK) {
      /* "<input>: line L, column C: message" -> "/: json: line L, column C: message" */
      const char *msg = strncmp(err, "<input>: ", 9) == 0 ? err + 9 : err;
      add_line(&t, "/: json: %s", msg);
      *errors = t.s;
      return rc;
    }
    rc = lt_schema_validate(v->json, j, errors);
    json_decref(j);
    return rc;
  }
  xmlDocPtr doc = NULL;
  rc = hub_xml_parse(buf, len, NULL, "", &doc, err, sizeof err);
  if (rc != HUB_OK) {
    const char *msg = strncmp(err, ": ", 2) == 0 ? err + 2 : err;
    add_line(&t, "/: xml: %s", msg);
    *errors = t.s;
    return rc;
  }
  /* a validation context holds per-run state: one per call keeps the validator shareable */
  xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(v->xsd);
  if (!vc) {
    xmlFreeDoc(doc);
    return HUB_ERR_NOMEM;
  }
  xmlSchemaSetValidStructuredErrors(vc, xsd_error, &t);
  int r = xmlSchemaValidateDoc(vc, doc);
  xmlSchemaFreeValidCtxt(vc);
  xmlFreeDoc(doc);
  if (r == 0) {
    free(t.s);
    return HUB_OK;
  }
  if (!t.s) add_line(&t, "/: xsd: %s", r < 0 ? "internal validation error" : "not valid");
  *errors = t.s;
  return HUB_ERR_SCHEMA;
}

void lt_validator_destroy(struct lt_validator *v) {
  if (!v) return;
  lt_schema_destroy(v->json);
  if (v->xsd) xmlSchemaFree(v->xsd);
  free(v->path);
  free(v);
}

