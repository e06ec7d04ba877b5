/* The hub's one XML parse function. Every XML document the hub reads goes through it:
 * no network, no entity substitution, no DTD loading, any DOCTYPE refused (libxml2 2.9 has no
 * switch against XXE or entity amplification, so the internal subset is refused outright),
 * bounded size and depth, and errors that give line and column. */
#ifndef HUB_XML_H
#define HUB_XML_H

#include <libxml/tree.h>
#include <stddef.h>

#include "hub/core/err.h"

struct hub_xml_limits {
  size_t max_bytes; /* 0: HUB_XML_DEFAULT_MAX_BYTES */
  int max_depth;    /* 0: HUB_XML_DEFAULT_MAX_DEPTH */
  int max_attrs;    /* attributes (namespace declarations included) per element; 0: HUB_XML_DEFAULT_MAX_ATTRS */
};

#define HUB_XML_DEFAULT_MAX_BYTES (16u * 1024u * 1024u)
#define HUB_XML_DEFAULT_MAX_DEPTH 128
/* libxml2 2.9 checks an element's attributes for duplicates pairwise: 40,000 attributes cost
 * 2 s, 300,000 over 120 s. The count is checked by a linear pre-scan of the bytes before
 * libxml2 sees them. */
#define HUB_XML_DEFAULT_MAX_ATTRS 256
/* The largest limit a route may set: libxml2 takes an int length. */
#define HUB_XML_MAX_MAX_BYTES ((size_t)0x7fffffff)

/* Parses `len` bytes. On success *doc is an owned xmlDoc (xmlFreeDoc). On failure returns
 * HUB_ERR_XML (malformed: "line L, column C: message"; this includes a NUL character anywhere,
 * which libxml2 2.9 would otherwise take as the end of the input, ignoring what follows),
 * HUB_ERR_XML_HOSTILE (DOCTYPE or entity declarations) or HUB_ERR_TOO_LARGE (size, depth or
 * attributes per element), with the reason in errbuf. UTF-8, single-byte encodings and UTF-16
 * (with a BOM or starting with '<') are pre-scanned; UCS-4 input is refused. `limits` may
 * be NULL; a zero field takes this thread's limit (hub_xml_set_thread_limits: a route's
 * `xml:` options), else the default. `name` (may be NULL) prefixes the message, e.g. a file
 * name. The input is read in place (libxml2's ReadMemory would copy it first), and a text node
 * may be as large as the document (a base64 attachment), so peak memory is the input plus the
 * tree. */
hub_err_t hub_xml_parse(const void *buf, size_t len, const struct hub_xml_limits *limits, const char *name,
                        xmlDocPtr *doc, char *errbuf, size_t errbuf_size);

/* Sets the limits this thread's parses use where their caller gives none (fields 0 keep the
 * default); returns the previous ones so that the caller can restore them. The engine sets a
 * route's `xml: {max_size, max_depth}` around its steps, so every step that parses (verify-xml,
 * validate, map) follows the route's setting. */
struct hub_xml_limits hub_xml_set_thread_limits(const struct hub_xml_limits *limits);

/* Routes libxml2's generic and structured error callbacks into the hub logger for this
 * thread (call once per thread that uses libxml2 outside hub_xml_parse). */
void hub_xml_init_thread(void);

#endif
