/* URI reference resolution (RFC 3986 §5) for JSON Schema's $id and $ref: parsing into parts,
 * remove_dot_segments, merge and recomposition; also fragment splitting and percent-decoding. */
#include "mappings/shape/jsonschema_uri.h"

#include <stdlib.h>
#include <string.h>

#include "mappings/shape/json.h"

struct uri {
  const char *scheme, *auth, *path, *query, *frag;
  size_t scheme_len, auth_len, path_len, query_len, frag_len;
  int has_scheme, has_auth, has_query, has_frag;
};

static void uri_parse(const char *s, struct uri *u) {
  memset(u, 0, sizeof *u);
  const char *p = s;
  const char *c = s;
  while (*c && *c != ':' && *c != '/' && *c != '?' && *c != '#') c++;
  if (*c == ':' && c > s) {
    u->has_scheme = 1;
    u->scheme = s;
    u->scheme_len = (size_t)(c - s);
    p = c + 1;
  }
  if (p[0] == '/' && p[1] == '/') {
    u->has_auth = 1;
    u->auth = p + 2;
    p += 2;
    while (*p && *p != '/' && *p != '?' && *p != '#') p++;
    u->auth_len = (size_t)(p - u->auth);
  }
  u->path = p;
  while (*p && *p != '?' && *p != '#') p++;
  u->path_len = (size_t)(p - u->path);
  if (*p == '?') {
    u->has_query = 1;
    u->query = ++p;
    while (*p && *p != '#') p++;
    u->query_len = (size_t)(p - u->query);
  }
  if (*p == '#') {
    u->has_frag = 1;
    u->frag = p + 1;
    u->frag_len = strlen(p + 1);
  }
}

/* Drops the last segment (and its "/") written to o. */
static void pop_segment(struct lt_buf *o) {
  char *slash = o->s ? strrchr(o->s, '/') : NULL;
  o->len = slash ? (size_t)(slash - o->s) : 0;
  if (o->s) o->s[o->len] = 0;
}

/* RFC 3986 §5.2.4 (remove_dot_segments) on path[0..len); appends the result to out. The rules
 * that replace a prefix of the input by "/" do it in place in a copy. */
static void remove_dots(struct lt_buf *out, const char *path, size_t len) {
  char *in = strndup(path, len);
  if (!in) {
    out->oom = 1;
    return;
  }
  struct lt_buf o = {0};
  lt_buf_put(&o, "", 0);
  char *p = in;
  while (*p) {
    if (!strncmp(p, "../", 3)) {
      p += 3; /* A */
    } else if (!strncmp(p, "./", 2)) {
      p += 2; /* A */
    } else if (!strncmp(p, "/./", 3)) {
      p += 2; /* B: "/./x" -> "/x" */
    } else if (!strcmp(p, "/.")) {
      p[1] = 0; /* B: "/." -> "/" */
    } else if (!strncmp(p, "/../", 4)) {
      p += 3; /* C: "/../x" -> "/x", and the last output segment goes */
      pop_segment(&o);
    } else if (!strcmp(p, "/..")) {
      p[1] = 0; /* C: "/.." -> "/" */
      pop_segment(&o);
    } else if (!strcmp(p, ".") || !strcmp(p, "..")) {
      break; /* D */
    } else {
      char *end = strchr(p + (*p == '/'), '/'); /* E: move the first segment */
      if (!end) end = p + strlen(p);
      lt_buf_put(&o, p, (size_t)(end - p));
      p = end;
    }
  }
  lt_buf_put(out, o.s ? o.s : "", o.len);
  if (o.oom) out->oom = 1;
  free(o.s);
  free(in);
}

/* Resolves `ref` against `base` (RFC 3986 §5.2.2, recomposed as §5.3); returns a malloc'd
 * absolute URI (with fragment if any). */
char *lt_uri_resolve(const char *base, const char *ref) {
  struct uri b, r;
  uri_parse(base ? base : "", &b);
  uri_parse(ref, &r);
  const struct uri *scheme = r.has_scheme ? &r : &b; /* where each part of the target comes from */
  const struct uri *auth = (r.has_scheme || r.has_auth) ? &r : &b;
  const struct uri *query = &r;
  struct lt_buf path = {0}, o = {0};
  lt_buf_put(&path, "", 0);
  if (r.has_scheme || r.has_auth || (r.path_len && r.path[0] == '/')) {
    remove_dots(&path, r.path, r.path_len);
  } else if (r.path_len == 0) {
    lt_buf_put(&path, b.path, b.path_len);
    if (!r.has_query) query = &b;
  } else {
    /* merge: the base path up to its last "/" (or "/" for an authority with an empty path) */
    struct lt_buf m = {0};
    size_t k = b.path_len;
    while (k > 0 && b.path[k - 1] != '/') k--;
    if (b.has_auth && b.path_len == 0) lt_buf_put(&m, "/", 1);
    else lt_buf_put(&m, b.path, k);
    lt_buf_put(&m, r.path, r.path_len);
    if (m.s && m.s[0] == '/') remove_dots(&path, m.s, m.len);
    else if (m.s) lt_buf_put(&path, m.s, m.len); /* a URN-like base: nothing to normalise */
    if (m.oom) path.oom = 1;
    free(m.s);
  }
  if (scheme->has_scheme) lt_buf_fmt(&o, "%.*s:", (int)scheme->scheme_len, scheme->scheme);
  if (auth->has_auth) lt_buf_fmt(&o, "//%.*s", (int)auth->auth_len, auth->auth);
  lt_buf_put(&o, path.s ? path.s : "", path.len);
  if (query->has_query) lt_buf_fmt(&o, "?%.*s", (int)query->query_len, query->query);
  if (r.has_frag) lt_buf_fmt(&o, "#%.*s", (int)r.frag_len, r.frag);
  lt_buf_put(&o, "", 0);
  if (path.oom) o.oom = 1;
  free(path.s);
  if (o.oom) {
    free(o.s);
    return NULL;
  }
  return o.s;
}

/* Splits off the fragment in place: returns the fragment (after '#') or "" and ends the URI. */
char *lt_uri_cut_fragment(char *uri) {
  char *h = strchr(uri, '#');
  if (!h) return uri + strlen(uri);
  *h = 0;
  return h + 1;
}

/* Decodes %XX escapes of a URI fragment in place. */
void lt_uri_pct_decode(char *s) {
  char *o = s;
  for (char *p = s; *p; p++) {
    if (p[0] == '%' && p[1] && p[2]) {
      char hex[3] = {p[1], p[2], 0};
      char *end;
      long v = strtol(hex, &end, 16);
      if (*end == 0 && v > 0) {
        *o++ = (char)v;
        p += 2;
        continue;
      }
    }
    *o++ = *p;
  }
  *o = 0;
}
