/* The `validate` step (`- validate: schemas/x.schema.json` or `.xsd`) and the validator it
 * runs: a message that does not parse, or does not satisfy the schema, is rejected with every
 * failure listed (the first ones in the reason, all of them in the outcome's detail). */
#include "mappings/step_validate.h"

#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlIO.h>
#include <libxml/xmlschemas.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/registry.h"
#include "hub/step.h"
#include "hub/xml.h"
#include "mappings/json.h"
#include "mappings/jsonschema.h"

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
    rc = lt_file_read(path, HUB_XML_DEFAULT_MAX_BYTES, &buf, &len, errbuf, errbuf_size);
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

/* ------------------------------------------------------------------------------ the step */

static hub_err_t step_create(const struct hub_node *args, const struct hub_step_env *env, void **state, char *errbuf,
                             size_t errbuf_size) {
  *state = NULL;
  const struct hub_node *at = args;
  if (args && args->kind == HUB_NODE_MAP) {
    for (size_t i = 0; i < args->n; i++)
      if (strcmp(args->keys[i]->scalar, "schema") != 0)
        return hub_node_error(args->keys[i], errbuf, errbuf_size, "validate: unknown key '%s' (expected 'schema')",
                              args->keys[i]->scalar);
    at = hub_node_get(args, "schema");
  }
  if (!at || at->kind != HUB_NODE_SCALAR || !at->scalar || !*at->scalar)
    return hub_node_error(args, errbuf, errbuf_size,
                          "validate: expected a schema path (`- validate: schemas/x.schema.json` or `.xsd`)");
  char path[4096];
  const char *base = env && env->base_dir ? env->base_dir : "";
  if (at->scalar[0] == '/' || !*base) snprintf(path, sizeof path, "%s", at->scalar);
  else snprintf(path, sizeof path, "%s/%s", base, at->scalar);
  struct lt_validator *v = NULL;
  char why[2048];
  hub_err_t rc = lt_validator_load(path, &v, why, sizeof why);
  if (rc != HUB_OK) {
    hub_node_error(at, errbuf, errbuf_size, "validate: %s", why);
    return rc == HUB_ERR_NOMEM ? rc : HUB_ERR_CONFIG;
  }
  *state = v;
  return HUB_OK;
}

static enum hub_step_result step_process(void *state, struct hub_msg *msg, struct hub_step_outcome *out) {
  struct lt_validator *v = state;
  char *errors = NULL;
  hub_err_t rc = lt_validator_check(v, msg->value, msg->value_len, &errors);
  if (rc == HUB_OK) return HUB_STEP_OK;
  if (rc == HUB_ERR_NOMEM) {
    free(errors);
    return hub_step_fail(out, HUB_STEP_RETRY, rc, "validate: out of memory");
  }
  /* the reason is one line: failures joined by "; " (the detail keeps one per line) */
  size_t n = errors ? 1 : 0;
  char *joined = errors ? malloc(2 * strlen(errors) + 1) : NULL;
  if (joined) {
    char *o = joined;
    for (const char *p = errors; *p; p++) {
      if (*p == '\n') {
        *o++ = ';';
        *o++ = ' ';
        n++;
      } else {
        *o++ = *p;
      }
    }
    *o = 0;
  }
  enum hub_step_result r =
      hub_step_fail(out, HUB_STEP_REJECT, rc, "%s against %s: %s", rc == HUB_ERR_SCHEMA ? "not valid" : "cannot parse",
                    v->path, joined ? joined : "(no detail)");
  free(joined);
  if (strlen(out->reason) == sizeof out->reason - 1)
    snprintf(out->reason + sizeof out->reason - 40, 40, "... (%zu failures, see detail)", n);
  if (errors) {
    free(out->detail);
    out->detail = (unsigned char *)errors;
    out->detail_len = strlen(errors);
  }
  return r;
}

static void step_destroy(void *state) { lt_validator_destroy(state); }

static const struct hub_step_ops validate_ops = {
    .name = "validate",
    .summary = "reject a message that does not satisfy a JSON Schema (2020-12, .json) or an XML Schema (.xsd)",
    .create = step_create,
    .process = step_process,
    .destroy = step_destroy,
};
HUB_STEP_PLUGIN(lt_plugin_step_validate, validate_ops);
