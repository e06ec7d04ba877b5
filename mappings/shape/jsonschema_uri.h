/* URI references (RFC 3986 §5) as JSON Schema resolves $id and $ref against a base URI. */
#ifndef LT_JSONSCHEMA_URI_H
#define LT_JSONSCHEMA_URI_H

/* Resolves `ref` against `base` (RFC 3986 §5.2.2, recomposed as §5.3); a malloc'd absolute URI
 * with the reference's fragment if any, or NULL when out of memory. A non-hierarchical base
 * (a URN) keeps its path for a fragment-only reference. */
char *lt_uri_resolve(const char *base, const char *ref);
/* Ends `uri` at its '#', in place; returns the fragment after it, or "" when there is none. */
char *lt_uri_cut_fragment(char *uri);
/* Decodes %XX escapes in place (as a JSON pointer or anchor in a fragment needs). */
void lt_uri_pct_decode(char *s);

#endif
