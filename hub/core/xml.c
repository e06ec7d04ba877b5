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
  thread_limits = limits ? *limits : (struct hub_xml_limits){0, 0, 0};
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

/* ---- pre-scan ----
 * One linear pass over the bytes before libxml2 sees them, for what libxml2 2.9 gets wrong or
 * slow: a NUL character (it takes it as the end of the input and parses what came before as
 * the whole document, so bytes after it pass unseen) and attribute counts (it checks an
 * element's attributes for duplicates pairwise). Only markup delimiters are ASCII, so the scan
 * works on code units: bytes for UTF-8 and the single-byte encodings, 16-bit units for UTF-16. */

struct scan {
  const unsigned char *p;
  size_t n; /* code units */
  int w;    /* 1 or 2 bytes per unit */
  int be;
};

static inline unsigned unit_at(const struct scan *s, size_t i) {
  const unsigned char *b = s->p + i * (size_t)s->w;
  return s->w == 1 ? b[0] : s->be ? (unsigned)b[0] << 8 | b[1] : b[0] | (unsigned)b[1] << 8;
}

/* The first unit at or after i equal to c, or s->n. */
static size_t find_unit(const struct scan *s, size_t i, unsigned c) {
  if (i >= s->n) return s->n;
  if (s->w == 1) {
    const unsigned char *f = memchr(s->p + i, (int)c, s->n - i);
    return f ? (size_t)(f - s->p) : s->n;
  }
  for (; i < s->n; i++)
    if (unit_at(s, i) == c) return i;
  return s->n;
}

/* The first occurrence at or after i of the ASCII string `seq`, or s->n. */
static size_t find_seq(const struct scan *s, size_t i, const char *seq) {
  size_t k = strlen(seq);
  for (i = find_unit(s, i, (unsigned char)seq[0]); i + k <= s->n; i = find_unit(s, i + 1, (unsigned char)seq[0])) {
    size_t j = 1;
    while (j < k && unit_at(s, i + j) == (unsigned char)seq[j]) j++;
    if (j == k) return i;
  }
  return s->n;
}

static int starts_with(const struct scan *s, size_t i, const char *seq) {
  for (; *seq; seq++, i++)
    if (i >= s->n || unit_at(s, i) != (unsigned char)*seq) return 0;
  return 1;
}

enum { SCAN_OK, SCAN_NUL, SCAN_ATTRS, SCAN_UCS4 };

/* Returns SCAN_OK or why, with the offending unit's index in *at (and the count for ATTRS). */
static int prescan(const struct scan *s, int max_attrs, size_t *at, long *count) {
  size_t nul = find_unit(s, 0, 0);
  if (nul < s->n) {
    *at = nul;
    return SCAN_NUL;
  }
  for (size_t i = find_unit(s, 0, '<'); i < s->n; i = find_unit(s, i, '<')) {
    size_t t = i + 1;
    unsigned first = t < s->n ? unit_at(s, t) : 0;
    if (first == '!' && starts_with(s, t, "!--")) {
      i = find_seq(s, t + 3, "-->");
    } else if (first == '!' && starts_with(s, t, "![CDATA[")) {
      i = find_seq(s, t + 8, "]]>");
    } else if (first == '?') {
      i = find_seq(s, t + 1, "?>");
    } else if (first == '!' || first == '/') {
      i = find_unit(s, t, '>'); /* a DOCTYPE is refused by the parser anyway */
    } else {
      /* a start tag: in well-formed XML each attribute has exactly one '=' outside quotes */
      long n = 0;
      for (; t < s->n; t++) {
        unsigned c = s->w == 1 ? s->p[t] : unit_at(s, t);
        if (c == '"' || c == '\'') {
          t = find_unit(s, t + 1, c);
        } else if (c == '=') {
          if (++n > max_attrs) {
            *at = i;
            *count = n;
            return SCAN_ATTRS;
          }
        } else if (c == '>') {
          break;
        }
      }
      i = t;
    }
  }
  return SCAN_OK;
}

/* Line and column (1-based, in code units) of unit `at`. */
static void scan_position(const struct scan *s, size_t at, int *line, long *col) {
  size_t nl = 0;
  *line = 1;
  for (size_t i = find_unit(s, 0, '\n'); i < at; i = find_unit(s, i + 1, '\n')) (*line)++, nl = i + 1;
  *col = (long)(at - nl) + 1;
}

/* Sets up the scan by the first bytes as libxml2 detects the encoding (XML 1.0 appendix F).
 * Returns SCAN_UCS4 for the 32-bit forms, which the hub does not accept. */
static int scan_init(struct scan *s, const unsigned char *p, size_t len) {
  static const unsigned char ucs4[][4] = {{0, 0, 0, 0x3c}, {0x3c, 0, 0, 0}, {0, 0, 0xfe, 0xff}, {0xff, 0xfe, 0, 0}};
  for (size_t k = 0; len >= 4 && k < sizeof ucs4 / sizeof ucs4[0]; k++)
    if (!memcmp(p, ucs4[k], 4)) return SCAN_UCS4;
  *s = (struct scan){p, len, 1, 0};
  if (len >= 2 && ((p[0] == 0xfe && p[1] == 0xff) || (p[0] == 0 && p[1] == 0x3c)))
    *s = (struct scan){p, len / 2, 2, 1};
  else if (len >= 2 && ((p[0] == 0xff && p[1] == 0xfe) || (p[0] == 0x3c && p[1] == 0)))
    *s = (struct scan){p, len / 2, 2, 0};
  return SCAN_OK;
}

/* Refuses, with the reason in errbuf, what the pre-scan finds; HUB_OK otherwise. */
static hub_err_t prescan_check(const void *buf, size_t len, int max_attrs, const char *pfx, char *errbuf,
                               size_t errbuf_size) {
  struct scan s;
  size_t at = 0;
  long count = 0;
  int line;
  long col;
  if (scan_init(&s, buf, len) == SCAN_UCS4) {
    snprintf(errbuf, errbuf_size, "%s: line 1, column 1: UCS-4 (UTF-32) input is not accepted; use UTF-8", pfx);
    return HUB_ERR_XML;
  }
  int why = prescan(&s, max_attrs, &at, &count);
  if (why == SCAN_OK) return HUB_OK;
  scan_position(&s, at, &line, &col);
  if (why == SCAN_NUL) {
    snprintf(errbuf, errbuf_size, "%s: line %d, column %ld: NUL character (U+0000) at byte %zu: not allowed in XML",
             pfx, line, col, at * (size_t)s.w);
    return HUB_ERR_XML;
  }
  snprintf(errbuf, errbuf_size, "%s: line %d, column %ld: element with more than %d attributes (limit "
           "xml max_attrs %d, namespace declarations included)", pfx, line, col, max_attrs, max_attrs);
  (void)count;
  return HUB_ERR_TOO_LARGE;
}

hub_err_t hub_xml_parse(const void *buf, size_t len, const struct hub_xml_limits *limits, const char *name,
                        xmlDocPtr *doc, char *errbuf, size_t errbuf_size) {
  size_t max_bytes = limits && limits->max_bytes ? limits->max_bytes
                     : thread_limits.max_bytes     ? thread_limits.max_bytes
                                                   : HUB_XML_DEFAULT_MAX_BYTES;
  int max_depth = limits && limits->max_depth ? limits->max_depth
                  : thread_limits.max_depth     ? thread_limits.max_depth
                                                : HUB_XML_DEFAULT_MAX_DEPTH;
  int max_attrs = limits && limits->max_attrs ? limits->max_attrs
                  : thread_limits.max_attrs     ? thread_limits.max_attrs
                                                : HUB_XML_DEFAULT_MAX_ATTRS;
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
  if ((rc = prescan_check(buf, len, max_attrs, pfx, errbuf, errbuf_size)) != HUB_OK) return rc;
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
  /* COMPACT keeps a short text node's characters in the node itself: one allocation less per
   * node, which counts on a flood of tiny text nodes (docs/trust.md, Limits) */
  int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA | XML_PARSE_COMPACT;
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
