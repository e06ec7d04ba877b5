/* Safe XML parsing (see xml.h). A SAX hook on the internal subset stops the parser before any
 * entity or DTD is read; start/end element hooks count depth. */
#include "hub/core/xml.h"

#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <stdio.h>
#include <string.h>

#include "hub/core/log.h"

struct guard {
  int depth, max_depth;
  int refused; /* 1 DOCTYPE, 2 depth, 3 entity declaration */
  int line, col;
  startElementNsSAX2Func start;
  endElementNsSAX2Func end;
};

/* Records why and where the document was refused, and stops the parser there. */
static void refuse(void *ctx, int why) {
  xmlParserCtxtPtr c = ctx;
  struct guard *g = c->_private;
  g->refused = why;
  g->line = xmlSAX2GetLineNumber(ctx);
  g->col = xmlSAX2GetColumnNumber(ctx);
  xmlStopParser(c);
}

static void on_internal_subset(void *ctx, const xmlChar *name, const xmlChar *ext_id, const xmlChar *sys_id) {
  (void)name, (void)ext_id, (void)sys_id;
  refuse(ctx, 1);
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
                           const xmlChar *system_id, xmlChar *content) {
  (void)name, (void)type, (void)public_id, (void)system_id, (void)content;
  refuse(ctx, 3);
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri, int nb_ns,
                     const xmlChar **ns, int nb_attr, int nb_def, const xmlChar **attrs) {
  xmlParserCtxtPtr c = ctx;
  struct guard *g = c->_private;
  if (++g->depth > g->max_depth) {
    refuse(ctx, 2);
    return;
  }
  g->start(ctx, localname, prefix, uri, nb_ns, ns, nb_attr, nb_def, attrs);
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri) {
  xmlParserCtxtPtr c = ctx;
  struct guard *g = c->_private;
  g->depth--;
  g->end(ctx, localname, prefix, uri);
}

/* A route's limits for the parses its steps run on this thread (see xml.h). */
static _Thread_local struct hub_xml_limits thread_limits;

struct hub_xml_limits hub_xml_set_thread_limits(const struct hub_xml_limits *limits) {
  struct hub_xml_limits prev = thread_limits;
  thread_limits = limits ? *limits : (struct hub_xml_limits){0, 0};
  return prev;
}

/* The input, handed to libxml2 in chunks: xmlCtxtReadMemory copies the whole buffer first
 * (libxml2 2.9), a second copy of a 50 MB packet for nothing. */
struct mem_reader {
  const char *p;
  size_t left;
};

static int mem_read(void *ctx, char *buf, int len) {
  struct mem_reader *r = ctx;
  size_t n = r->left < (size_t)len ? r->left : (size_t)len;
  memcpy(buf, r->p, n);
  r->p += n;
  r->left -= n;
  return (int)n;
}

static int mem_close(void *ctx) {
  (void)ctx;
  return 0;
}

static void silent(void *ctx, const char *msg, ...) {
  (void)ctx, (void)msg;
}

/* The parser's own errors are returned in errbuf; logging them too would say it twice. */
static void parse_error_ignored(void *ctx, xmlErrorPtr err) {
  (void)ctx, (void)err;
}

static void structured_to_log(void *ctx, xmlErrorPtr err) {
  (void)ctx;
  if (!err || !err->message) return;
  hub_log(err->level >= XML_ERR_ERROR ? HUB_LOG_WARN : HUB_LOG_DEBUG, "libxml2", "line %d: %s", err->line,
          err->message);
}

void hub_xml_init_thread(void) {
  /* libxml2 2.9's first use of its global state in a thread that is not the main one creates
   * its mutexes without a lock: two route threads starting together leaked one (LeakSanitizer,
   * kafka.paygov). Initialised here, from the main thread first, that race cannot happen. */
  xmlInitParser();
  xmlSetGenericErrorFunc(NULL, silent);
  xmlSetStructuredErrorFunc(NULL, structured_to_log);
}

hub_err_t hub_xml_parse(const void *buf, size_t len, const struct hub_xml_limits *limits, const char *name,
                        xmlDocPtr *doc, char *errbuf, size_t errbuf_size) {
  size_t max_bytes = limits && limits->max_bytes ? limits->max_bytes
                     : thread_limits.max_bytes     ? thread_limits.max_bytes
                                                   : HUB_XML_DEFAULT_MAX_BYTES;
  int max_depth = limits && limits->max_depth ? limits->max_depth
                  : thread_limits.max_depth     ? thread_limits.max_depth
                                                : HUB_XML_DEFAULT_MAX_DEPTH;
  const char *pfx = name ? name : "XML";
  hub_err_t rc = HUB_OK;
  *doc = NULL;
  if (len > max_bytes) {
    snprintf(errbuf, errbuf_size, "%s: document of %zu bytes exceeds the limit of %zu bytes", pfx, len, max_bytes);
    return HUB_ERR_TOO_LARGE;
  }
  if (len > (size_t)0x7fffffff) {
    snprintf(errbuf, errbuf_size, "%s: document too large", pfx);
    return HUB_ERR_TOO_LARGE;
  }
  xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
  if (!ctxt) {
    snprintf(errbuf, errbuf_size, "%s: out of memory", pfx);
    return HUB_ERR_NOMEM;
  }
  struct guard g = {.max_depth = max_depth, .start = ctxt->sax->startElementNs, .end = ctxt->sax->endElementNs};
  ctxt->_private = &g;
  ctxt->sax->internalSubset = on_internal_subset;
  ctxt->sax->externalSubset = on_internal_subset;
  ctxt->sax->entityDecl = on_entity_decl;
  ctxt->sax->startElementNs = on_start;
  ctxt->sax->endElementNs = on_end;
  ctxt->sax->warning = silent;
  ctxt->sax->error = silent;
  ctxt->sax->serror = parse_error_ignored;
  /* Options: never the network, never entity substitution or DTD loading; no libxml2 output. */
  int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;
  /* Without XML_PARSE_HUGE libxml2 refuses an attribute value (and text in some paths) over
   * 10 MB (XML_MAX_TEXT_LENGTH), with a misleading "Extra content" error, however high the
   * route's limit. HUGE lifts libxml2's own depth and name limits too: the depth guard above and
   * max_bytes bound them instead. */
  if (max_bytes > 10000000u) opts |= XML_PARSE_HUGE;
  struct mem_reader rd = {buf, len};
  xmlDocPtr d = xmlCtxtReadIO(ctxt, mem_read, mem_close, &rd, NULL, NULL, opts);
  if (g.refused) {
    xmlFreeDoc(d);
    d = NULL;
    if (g.refused == 2) {
      snprintf(errbuf, errbuf_size, "%s: line %d, column %d: elements nested deeper than %d", pfx, g.line, g.col,
               max_depth);
      rc = HUB_ERR_TOO_LARGE;
    } else {
      snprintf(errbuf, errbuf_size, "%s: line %d, column %d: %s refused (DTDs and entities are not accepted)", pfx,
               g.line, g.col, g.refused == 1 ? "DOCTYPE" : "entity declaration");
      rc = HUB_ERR_XML_HOSTILE;
    }
  } else if (!d || !ctxt->wellFormed) {
    xmlFreeDoc(d);
    d = NULL;
    const xmlError *e = xmlCtxtGetLastError(ctxt);
    char msg[512] = "not well-formed";
    if (e && e->message) {
      /* libxml2's encoding error spans two lines ("... indicate encoding !\nBytes: 0xFF ..."):
       * one line, in plain words */
      const char *bytes = strstr(e->message, "Bytes: ");
      if (e->code == XML_ERR_INVALID_CHAR && bytes && strstr(e->message, "not proper UTF-8"))
        snprintf(msg, sizeof msg, "invalid UTF-8 (bytes %.*s); the document must be UTF-8 or declare its encoding",
                 (int)strcspn(bytes + 7, "\r\n"), bytes + 7);
      else
        snprintf(msg, sizeof msg, "%s", e->message);
      size_t n = strlen(msg);
      while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = '\0';
      for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    }
    snprintf(errbuf, errbuf_size, "%s: line %d, column %d: %s", pfx, e ? e->line : 0, e ? e->int2 : 0, msg);
    rc = HUB_ERR_XML;
  } else if (d->intSubset || d->extSubset) {
    xmlFreeDoc(d);
    d = NULL;
    snprintf(errbuf, errbuf_size, "%s: DOCTYPE refused (DTDs and entities are not accepted)", pfx);
    rc = HUB_ERR_XML_HOSTILE;
  }
  xmlFreeParserCtxt(ctxt);
  *doc = d;
  return rc;
}
