/* `lienthong query EXPR FILE`: runs a JSONPath (RFC 9535) query on a JSON file or an XPath 1.0
 * expression on an XML file and prints the result node list as a JSON array. */
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/core/files.h"
#include "hub/core/registry.h"
#include "hub/core/xml.h"
#include "mappings/shape/json.h"
#include "mappings/shape/jsonpath.h"

#define MAX_NS 32

static const struct hub_cmd cmd;

static int print_json(json_t *arr, int compact) {
  char *s = lt_json_dumps(arr, (compact ? JSON_COMPACT : JSON_INDENT(2)) | JSON_ENCODE_ANY);
  if (!s) {
    fprintf(stderr, "lienthong query: out of memory\n");
    return HUB_EXIT_FAIL;
  }
  printf("%s\n", s);
  free(s);
  return HUB_EXIT_OK;
}

static int query_json(const struct lt_jsonpath *jp, const char *file, const char *buf, size_t len, int paths,
                      int compact) {
  char err[1024];
  json_t *doc = NULL;
  int rc = HUB_EXIT_FAIL;
  if (lt_json_parse(buf, len, file, &doc, err, sizeof err) != HUB_OK) {
    fprintf(stderr, "lienthong query: %s\n", err);
    goto out;
  }
  json_t *res = paths ? lt_jsonpath_paths_new(jp, doc) : lt_jsonpath_query_new(jp, doc);
  if (!res) {
    fprintf(stderr, "lienthong query: out of memory\n");
    goto out;
  }
  rc = print_json(res, compact);
  json_decref(res);
out:
  json_decref(doc);
  return rc;
}

/* An XPath node as JSON: an element as its XML markup (standalone: the namespaces it uses from
 * its ancestors are declared on it), anything else as its string value. */
static json_t *node_json(xmlNodePtr n) {
  json_t *j = NULL;
  if (n->type == XML_ELEMENT_NODE) {
    xmlDocPtr tmp = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr copy = tmp ? xmlDocCopyNode(n, tmp, 1) : NULL;
    xmlBufferPtr b = xmlBufferCreate();
    if (copy && b) {
      xmlDocSetRootElement(tmp, copy);
      xmlReconciliateNs(tmp, copy);
      if (xmlNodeDump(b, tmp, copy, 0, 0) >= 0)
        j = json_stringn((const char *)xmlBufferContent(b), (size_t)xmlBufferLength(b));
    } else if (copy) {
      xmlFreeNode(copy);
    }
    xmlBufferFree(b);
    xmlFreeDoc(tmp);
  } else if (n->type == XML_NAMESPACE_DECL) {
    xmlNsPtr ns = (xmlNsPtr)n;
    j = json_string(ns->href ? (const char *)ns->href : "");
  } else {
    xmlChar *s = xmlNodeGetContent(n);
    j = json_string(s ? (const char *)s : "");
    xmlFree(s);
  }
  return j;
}

/* Keeps libxml2's first XPath error ("Undefined namespace prefix at column 3") for the message. */
static void xpath_error(void *ctx, xmlErrorPtr e) {
  struct lt_buf *b = ctx;
  if (b->len || !e || !e->message) return;
  size_t n = strlen(e->message);
  while (n && (e->message[n - 1] == '\n' || e->message[n - 1] == ' ')) n--;
  lt_buf_fmt(b, ": %.*s", (int)n, e->message);
  if (e->domain == XML_FROM_XPATH && e->str1 && e->int1 >= 0) lt_buf_fmt(b, " at column %d", e->int1 + 1);
}

static int query_xml(const char *expr, const char *file, const char *buf, size_t len, char **ns, int n_ns, int compact) {
  xmlDocPtr doc = NULL;
  xmlXPathContextPtr ctx = NULL;
  xmlXPathCompExprPtr comp = NULL;
  xmlXPathObjectPtr obj = NULL;
  json_t *arr = NULL;
  char err[1024];
  int rc = HUB_EXIT_FAIL;
  struct lt_buf why = {0};
  xmlSetStructuredErrorFunc(&why, xpath_error);
  comp = xmlXPathCompile(BAD_CAST expr);
  hub_xml_init_thread(); /* libxml2's errors back to the hub's logger */
  if (!comp) {
    fprintf(stderr, "lienthong query: invalid XPath 1.0 expression '%s'%s\n", expr, why.s ? why.s : "");
    free(why.s);
    return HUB_EXIT_USAGE;
  }
  if (hub_xml_parse(buf, len, NULL, file, &doc, err, sizeof err) != HUB_OK) {
    fprintf(stderr, "lienthong query: %s\n", err);
    goto out;
  }
  if (!(ctx = xmlXPathNewContext(doc))) goto oom;
  for (int i = 0; i < n_ns; i++) {
    char *eq = strchr(ns[i], '=');
    *eq = 0;
    int bad = xmlXPathRegisterNs(ctx, BAD_CAST ns[i], BAD_CAST(eq + 1)) != 0;
    *eq = '=';
    if (bad) {
      fprintf(stderr, "lienthong query: cannot declare namespace prefix '%s'\n", ns[i]);
      rc = HUB_EXIT_USAGE;
      goto out;
    }
  }
  xmlSetStructuredErrorFunc(&why, xpath_error);
  obj = xmlXPathCompiledEval(comp, ctx);
  hub_xml_init_thread();
  if (!obj) {
    /* compiles but cannot be evaluated: an undeclared prefix, an unknown function or variable */
    fprintf(stderr, "lienthong query: XPath expression '%s' cannot be evaluated%s\n", expr,
            why.s ? why.s : " (undeclared prefix, function or variable?)");
    rc = HUB_EXIT_USAGE;
    goto out;
  }
  if (!(arr = json_array())) goto oom;
  switch (obj->type) {
    case XPATH_NODESET:
      for (int i = 0; obj->nodesetval && i < obj->nodesetval->nodeNr; i++) {
        json_t *j = node_json(obj->nodesetval->nodeTab[i]);
        if (!j || json_array_append_new(arr, j) < 0) goto oom;
      }
      break;
    case XPATH_BOOLEAN: json_array_append_new(arr, json_boolean(obj->boolval)); break;
    case XPATH_NUMBER:
      if (obj->floatval == (double)(json_int_t)obj->floatval) json_array_append_new(arr, json_integer((json_int_t)obj->floatval));
      else json_array_append_new(arr, json_real(obj->floatval));
      break;
    case XPATH_STRING: json_array_append_new(arr, json_string(obj->stringval ? (const char *)obj->stringval : "")); break;
    default: break;
  }
  rc = print_json(arr, compact);
  goto out;
oom:
  fprintf(stderr, "lienthong query: out of memory\n");
out:
  free(why.s);
  json_decref(arr);
  xmlXPathFreeObject(obj);
  xmlXPathFreeContext(ctx);
  xmlXPathFreeCompExpr(comp);
  xmlFreeDoc(doc);
  return rc;
}

static int query_main(int argc, char **argv) {
  char *ns[MAX_NS];
  int n_ns = 0, paths = 0, compact = 0, i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] && argv[i][1] != '$'; i++) {
    if (!strcmp(argv[i], "--")) {
      i++;
      break;
    }
    if (!strcmp(argv[i], "--ns") && i + 1 < argc) {
      char *v = argv[++i];
      char *eq = strchr(v, '=');
      if (!eq || eq == v || !eq[1]) return hub_cmd_usage_error(&cmd, "--ns wants PREFIX=URI, got '%s'", v);
      if (n_ns == MAX_NS) return hub_cmd_usage_error(&cmd, "at most %d --ns options", MAX_NS);
      ns[n_ns++] = v;
    } else if (!strcmp(argv[i], "--paths")) {
      paths = 1;
    } else if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--compact")) {
      compact = 1;
    } else {
      return hub_cmd_usage_error(&cmd, "unknown option '%s'", argv[i]);
    }
  }
  if (argc - i != 2) return hub_cmd_usage_error(&cmd, "expected an expression and one file");
  const char *expr = argv[i], *file = argv[i + 1];
  int jsonpath = expr[0] == '$';
  if (jsonpath && n_ns) return hub_cmd_usage_error(&cmd, "--ns applies to XPath, not to JSONPath");
  if (!jsonpath && paths) return hub_cmd_usage_error(&cmd, "--paths applies to JSONPath only");
  hub_xml_init_thread();
  char *buf = NULL, err[1024];
  size_t len = 0;
  /* the expression is checked before the file is read, so a bad one is exit 2 whatever the file */
  struct lt_jsonpath *jp = NULL;
  if (jsonpath && lt_jsonpath_compile(expr, &jp, err, sizeof err) != HUB_OK) {
    fprintf(stderr, "lienthong query: invalid JSONPath expression: %s\n", err);
    return HUB_EXIT_USAGE;
  }
  int rc;
  if (hub_file_read_arg(file, LT_JSON_MAX_BYTES, &buf, &len, err, sizeof err) != HUB_OK) {
    fprintf(stderr, "lienthong query: %s\n", err);
    rc = HUB_EXIT_USAGE;
  } else {
    rc = jsonpath ? query_json(jp, file, buf, len, paths, compact) : query_xml(expr, file, buf, len, ns, n_ns, compact);
  }
  lt_jsonpath_destroy(jp);
  free(buf);
  return rc;
}

static const struct hub_cmd cmd = {
    .name = "query",
    .summary = "run a JSONPath (RFC 9535) or XPath 1.0 query on a file and print the results as JSON",
    .usage = "Usage: lienthong query [OPTIONS] EXPR FILE\n"
             "\n"
             "When EXPR starts with '$' it is an RFC 9535 JSONPath query and FILE is JSON; otherwise EXPR\n"
             "is an XPath 1.0 expression and FILE is XML ('-' reads standard input). Prints the result\n"
             "node list as a JSON array: JSON nodes as they are; XML elements as standalone markup,\n"
             "attributes and text as strings; an XPath number, string or boolean as a one-item array.\n"
             "\n"
             "Options:\n"
             "  --ns PREFIX=URI   declare a namespace prefix for XPath (repeatable)\n"
             "  --paths           JSONPath: print the normalized paths ($['a'][0]) of the results\n"
             "  -c, --compact     print the array on one line\n"
             "\n"
             "Examples:\n"
             "  lienthong query '$.fees[?@.amount > 30000].name' dossier.json\n"
             "  lienthong query --paths '$..code' dossier.json\n"
             "  lienthong query --ns e=http://www.mic.gov.vn/TBT/QCVN_102_2016 '//e:Subject/text()' packet.edxml\n"
             "\n"
             "JSON input with duplicate keys or a NUL byte, and XML input with a DOCTYPE, are refused.\n"
             "\n"
             "Exit status: 0 success (also for an empty result), 1 the file does not parse, 2 an invalid\n"
             "expression, an unreadable file or a usage error.",
    .main = query_main,
};
HUB_CMD_PLUGIN(lt_plugin_cmd_query, cmd);
