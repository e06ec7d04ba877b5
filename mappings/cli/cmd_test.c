/* `lienthong test DIR|FILE...`: golden-file tests for mappings and step lists, like `benthos
 * test`. Every *.test.yaml under DIR is a list of cases: an input, a mapping or a list of steps,
 * and an expected output (compared as JSON values, or as XML after dropping indentation and
 * canonicalising) or an expected error. Failures print a line diff; the format is in
 * docs/mapping.md "Test files". */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <libxml/c14n.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hub/core/files.h"
#include "hub/core/registry.h"
#include "hub/core/step_chain.h"
#include "hub/core/xml.h"
#include "mappings/shape/json.h"
#include "mappings/shape/map.h"
#include "mappings/shape/map_fn.h"
#include "mappings/shape/validator.h"

#define TEST_MAX_INPUT (64u * 1024u * 1024u)

static const struct hub_cmd cmd;

struct tally {
  int passed, failed, broken, verbose;
};

struct text {
  char *p;
  size_t len;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static int is_xml_text(const char *p, size_t len) {
  size_t i = 0;
  while (i < len && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t')) i++;
  return i < len && p[i] == '<';
}

/* Splits into lines (borrowed pointers into a copy). */
struct lines {
  char *buf;
  char **v;
  size_t n;
};

static int lines_split(const char *text, struct lines *l) {
  memset(l, 0, sizeof *l);
  if (!(l->buf = strdup(text))) return -1;
  size_t cap = 1;
  for (const char *p = text; *p; p++) cap += *p == '\n';
  if (!(l->v = calloc(cap + 1, sizeof *l->v))) return -1;
  for (char *p = l->buf, *e; p && *p; p = e ? e + 1 : NULL) {
    e = strchr(p, '\n');
    if (e) *e = '\0';
    l->v[l->n++] = p;
  }
  return 0;
}

static void lines_free(struct lines *l) {
  free(l->buf);
  free(l->v);
}

/* A unified-style diff ("-" expected, "+" actual) from the longest common subsequence of lines,
 * with two lines of context; big outputs fall back to printing the first difference. */
static void print_diff(const char *expected, const char *actual) {
  struct lines a, b;
  if (lines_split(expected, &a) || lines_split(actual, &b)) goto out;
  size_t n = a.n, m = b.n;
  if (n * m > 4000000) {
    size_t i = 0;
    while (i < n && i < m && !strcmp(a.v[i], b.v[i])) i++;
    printf("    first difference at line %zu:\n    - %s\n    + %s\n", i + 1, i < n ? a.v[i] : "(end)",
           i < m ? b.v[i] : "(end)");
    goto out;
  }
  unsigned *t = calloc((n + 1) * (m + 1), sizeof *t);
  if (!t) goto out;
#define T(i, j) t[(i) * (m + 1) + (j)]
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      T(i, j) = !strcmp(a.v[i], b.v[j]) ? T(i + 1, j + 1) + 1 : (T(i + 1, j) > T(i, j + 1) ? T(i + 1, j) : T(i, j + 1));
  /* mark each output line, then print changed lines with context */
  size_t cap = n + m, k = 0, i = 0, j = 0;
  char *op = malloc(cap + 1);
  const char **txt = malloc((cap + 1) * sizeof *txt);
  if (!op || !txt) {
    free(op), free(txt), free(t);
    goto out;
  }
  while (i < n || j < m) {
    if (i < n && j < m && !strcmp(a.v[i], b.v[j]))
      op[k] = ' ', txt[k++] = a.v[i++], j++;
    else if (i < n && (j == m || T(i + 1, j) >= T(i, j + 1)))
      op[k] = '-', txt[k++] = a.v[i++];
    else
      op[k] = '+', txt[k++] = b.v[j++];
  }
#undef T
  size_t last = 0;
  int printed = 0;
  for (size_t x = 0; x < k; x++) {
    int near = 0;
    for (size_t y = x >= 2 ? x - 2 : 0; y < k && y <= x + 2; y++)
      if (op[y] != ' ') near = 1;
    if (!near) continue;
    if (printed && x > last + 1) printf("    ...\n");
    printf("    %c %s\n", op[x], txt[x]);
    last = x;
    printed = 1;
  }
  free(op), free(txt), free(t);
out:
  lines_free(&a);
  lines_free(&b);
}

/* ---- normalising outputs for comparison ------------------------------------------------- */

static void drop_blank_text(xmlNodePtr n) {
  xmlNodePtr c = n->children;
  int has_element = 0;
  for (xmlNodePtr x = c; x; x = x->next) has_element |= x->type == XML_ELEMENT_NODE;
  while (c) {
    xmlNodePtr next = c->next;
    if (c->type == XML_ELEMENT_NODE) {
      drop_blank_text(c);
    } else if (has_element && (c->type == XML_TEXT_NODE || c->type == XML_COMMENT_NODE) &&
               (c->type == XML_COMMENT_NODE || xmlIsBlankNode(c))) {
      xmlUnlinkNode(c);
      xmlFreeNode(c);
    }
    c = next;
  }
}

/* Canonical forms: for the comparison (C14N) and for showing a diff (indented). */
static int normalise(const char *text, size_t len, int xml, char **canon, char **shown, char *why, size_t why_size) {
  *canon = *shown = NULL;
  if (xml) {
    xmlDocPtr doc = NULL;
    if (hub_xml_parse(text, len, NULL, NULL, &doc, why, why_size)) return -1;
    drop_blank_text(xmlDocGetRootElement(doc));
    xmlChar *c = NULL, *s = NULL;
    int sl = 0;
    xmlC14NDocDumpMemory(doc, NULL, XML_C14N_1_0, NULL, 0, &c);
    xmlDocDumpFormatMemoryEnc(doc, &s, &sl, "UTF-8", 1);
    xmlFreeDoc(doc);
    *canon = c ? strdup((char *)c) : NULL;
    *shown = s ? strdup((char *)s) : NULL;
    xmlFree(c), xmlFree(s);
    if (!*canon || !*shown) {
      snprintf(why, why_size, "cannot canonicalise the XML");
      free(*canon), free(*shown);
      return -1;
    }
    return 0;
  }
  json_t *j = NULL;
  if (lt_json_parse(text, len, NULL, &j, why, why_size)) return -1;
  *canon = lt_json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  *shown = lt_json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  json_decref(j);
  return *canon && *shown ? 0 : -1;
}

/* ---- validating outputs against contracts ----------------------------------------------- */

/* A .json JSON Schema or an .xsd, through the validator the `validate` step uses. */
static int validate_output(const char *path, const char *out, size_t out_len, char *why, size_t why_size) {
  struct lt_validator *v = NULL;
  char *errors = NULL;
  int rc = -1;
  if (lt_validator_load(path, &v, why, why_size)) return -1;
  if (lt_validator_check(v, out, out_len, &errors)) {
    size_t l = errors ? strlen(errors) : 0;
    if (l && errors[l - 1] == '\n') errors[l - 1] = '\0';
    /* a long list of failures is cut, the path kept */
    snprintf(why, why_size, "output does not validate against %.500s:\n    %.1400s", path, errors ? errors : "invalid");
  } else {
    rc = 0;
  }
  free(errors);
  lt_validator_destroy(v);
  return rc;
}

/* ---- one case ----------------------------------------------------------------------------- */

struct outcome {
  int failed_run;         /* the mapping or a step failed */
  char error[2048];       /* its message */
  const char *code;       /* hub_err2name */
  unsigned char *out;     /* else the output */
  size_t out_len;
  struct hub_msg *msg;    /* steps: the record after the last step (for expect_headers) */
};

static int run_mapping(const char *path, const struct text *in, struct outcome *oc) {
  struct lt_map *m = NULL;
  hub_err_t rc = lt_map_load_file(path, &m, oc->error, sizeof oc->error);
  if (rc) {
    /* a mapping that does not load fails the case, unless that error is what the case expects */
    oc->failed_run = 1;
    oc->code = hub_err2name(rc);
    return 0;
  }
  rc = lt_map_run(m, in->p, in->len, LT_MAP_PRETTY, &oc->out, &oc->out_len, oc->error, sizeof oc->error);
  if (rc) {
    oc->failed_run = 1;
    oc->code = hub_err2name(rc);
  }
  lt_map_destroy(m);
  return 0;
}

static int run_steps(const struct hub_node *steps, const struct hub_node *headers, const char *base,
                     const struct text *in, struct outcome *oc) {
  struct hub_step_env env = {.base_dir = base, .route = "test"};
  struct hub_msg *msg = hub_msg_new(NULL, 0, in->p, in->len);
  struct hub_step_chain *chain = NULL;
  struct hub_step_outcome so = {0};
  char stage[96];
  int rc = -1;
  if (!msg) return -1;
  oc->code = hub_err2name(HUB_ERR_CONFIG);
  for (size_t i = 0; headers && i < headers->n; i++) {
    if (headers->items[i]->kind != HUB_NODE_SCALAR) {
      hub_node_error(headers->items[i], oc->error, sizeof oc->error, "a header value is text");
      goto config;
    }
    hub_msg_header_add(msg, headers->keys[i]->scalar, headers->items[i]->scalar, strlen(headers->items[i]->scalar));
  }
  if (steps->kind != HUB_NODE_SEQ || !steps->n) {
    hub_node_error(steps, oc->error, sizeof oc->error, "steps must be a non-empty list of `- NAME: OPTIONS`");
    goto config;
  }
  /* the steps are created as a route creates them; one that cannot be set up is, like a mapping
   * that does not load, a failure or the error the case expects */
  hub_err_t cr = hub_step_chain_create(steps, &env, &chain, oc->error, sizeof oc->error);
  if (cr) {
    oc->failed_run = 1;
    oc->code = hub_err2name(cr);
    rc = 0;
    goto out;
  }
  if (hub_step_chain_run(chain, msg, &so, stage, sizeof stage) != HUB_STEP_OK) {
    oc->failed_run = 1;
    oc->code = hub_err2name(so.code);
    snprintf(oc->error, sizeof oc->error, "%s: %s", stage, so.reason);
    rc = 0;
    goto out;
  }
  if (so.n_extra) {
    /* a split: the records as a JSON list ({"key": ..., "value": ...} each), in output order */
    json_t *list = json_array();
    for (size_t i = 0; list && i <= so.n_extra; i++) {
      const struct hub_msg *x = i ? so.extra[i - 1] : msg;
      json_t *v = json_loadb((const char *)x->value, x->value_len, 0, NULL);
      json_t *item =
          v ? json_pack("{s:s%,s:o}", "key", x->key ? (const char *)x->key : "", x->key_len, "value", v) : NULL;
      if (!item || json_array_append_new(list, item)) json_decref(list), list = NULL;
    }
    if (!list) {
      snprintf(oc->error, sizeof oc->error, "a split gave records that are not JSON");
      oc->failed_run = 1;
      rc = 0;
      goto out;
    }
    oc->out = (unsigned char *)lt_json_dumps(list, JSON_COMPACT);
    json_decref(list);
    if (!oc->out) goto out;
    oc->out_len = strlen((const char *)oc->out);
  } else {
    if (!(oc->out = malloc(msg->value_len + 1))) goto out;
    memcpy(oc->out, msg->value, msg->value_len + 1);
    oc->out_len = msg->value_len;
  }
  oc->msg = msg;
  msg = NULL;
  rc = 0;
  goto out;
config:
  /* a step list that cannot be set up fails the case, or is the error the case expects */
  oc->failed_run = 1;
  rc = 0;
out:
  hub_step_outcome_clear(&so);
  hub_step_chain_destroy(chain);
  hub_msg_destroy(msg);
  return rc;
}

static int b64_decode(const char *s, struct text *out) {
  size_t n = 0, len = strlen(s);
  char *clean = malloc(len + 1);
  if (!clean) return -1;
  for (size_t i = 0; i < len; i++)
    if (s[i] != '\n' && s[i] != ' ' && s[i] != '\r') clean[n++] = s[i];
  clean[n] = '\0';
  out->p = malloc(n / 4 * 3 + 4);
  int r = out->p && n % 4 == 0 ? EVP_DecodeBlock((unsigned char *)out->p, (unsigned char *)clean, (int)n) : -1;
  if (r >= 0) {
    if (n >= 1 && clean[n - 1] == '=') r--;
    if (n >= 2 && clean[n - 2] == '=') r--;
    out->len = (size_t)r;
    out->p[r] = '\0';
  }
  free(clean);
  return r < 0 ? -1 : 0;
}

static int read_text(const char *base, const struct hub_node *n, struct text *t, char *why, size_t why_size) {
  char *path = hub_path_resolve_new(base, n->scalar);
  int rc = path && !hub_file_read(path, TEST_MAX_INPUT, &t->p, &t->len, why, why_size) ? 0 : -1;
  if (!path) snprintf(why, why_size, "out of memory");
  free(path);
  return rc;
}

static int scalar_list_contains(const struct hub_node *n, const char *hay, const char **missing) {
  if (n->kind == HUB_NODE_SCALAR) {
    *missing = n->scalar;
    return strstr(hay, n->scalar) != NULL;
  }
  for (size_t i = 0; i < n->n; i++)
    if (n->items[i]->kind != HUB_NODE_SCALAR || !strstr(hay, n->items[i]->scalar)) {
      *missing = n->items[i]->kind == HUB_NODE_SCALAR ? n->items[i]->scalar : "(not a string)";
      return 0;
    }
  return 1;
}

static const char *const case_keys[] = {"name",         "input",        "input_file",    "input_base64",
                                        "input_headers", "mapping",     "steps",         "expect",
                                        "expect_file",  "expect_error", "expect_code",   "expect_valid",
                                        "expect_headers", NULL};

/* Returns 1 passed, 0 failed, -1 broken (the test case itself is wrong). */
static int run_case(const char *label, const char *base, const struct hub_node *top, const struct hub_node *c,
                    char *msg, size_t msg_size) {
  struct text in = {0}, want = {0};
  struct outcome oc = {0};
  char why[2048] = "", *path = NULL;
  char *c1 = NULL, *s1 = NULL, *c2 = NULL, *s2 = NULL;
  int res = -1;
  if (c->kind != HUB_NODE_MAP) {
    hub_node_error(c, msg, msg_size, "a case must be a mapping");
    return -1;
  }
  for (size_t i = 0; i < c->n; i++) {
    int ok = 0;
    for (int k = 0; case_keys[k]; k++) ok |= !strcmp(c->keys[i]->scalar, case_keys[k]);
    if (!ok) {
      hub_node_error(c->keys[i], msg, msg_size, "unknown key '%s' in a case", c->keys[i]->scalar);
      return -1;
    }
  }
  const struct hub_node *x, *mapping = hub_node_get(c, "mapping"), *steps = hub_node_get(c, "steps");
  if (!mapping && !steps) mapping = hub_node_get(top, "mapping"), steps = hub_node_get(top, "steps");
  if (!!mapping == !!steps) {
    hub_node_error(c, msg, msg_size, "a case needs a mapping or steps (here or at the top of the file), not both");
    return -1;
  }
  int inputs = !!hub_node_get(c, "input") + !!hub_node_get(c, "input_file") + !!hub_node_get(c, "input_base64");
  int expects = !!hub_node_get(c, "expect") + !!hub_node_get(c, "expect_file") + !!hub_node_get(c, "expect_error");
  if (inputs != 1 || expects != 1) {
    hub_node_error(c, msg, msg_size, "a case needs one of input/input_file/input_base64 and one of "
                                     "expect/expect_file/expect_error");
    return -1;
  }
  if ((x = hub_node_get(c, "input"))) {
    if (x->kind != HUB_NODE_SCALAR || !(in.p = strdup(x->scalar))) goto broken_at_x;
    in.len = strlen(in.p);
  } else if ((x = hub_node_get(c, "input_file"))) {
    if (x->kind != HUB_NODE_SCALAR || read_text(base, x, &in, why, sizeof why)) goto broken_at_x;
  } else if ((x = hub_node_get(c, "input_base64"))) {
    if (x->kind != HUB_NODE_SCALAR || b64_decode(x->scalar, &in)) goto broken_at_x;
  }
  if (mapping) {
    if (mapping->kind != HUB_NODE_SCALAR) {
      hub_node_error(mapping, msg, msg_size, "mapping must be a file name");
      goto out;
    }
    if (!(path = hub_path_resolve_new(base, mapping->scalar)) || run_mapping(path, &in, &oc)) {
      hub_node_error(mapping, msg, msg_size, "%s", oc.error);
      goto out;
    }
  } else if ((x = hub_node_get(c, "input_headers")) && x->kind != HUB_NODE_MAP) {
    hub_node_error(x, msg, msg_size, "input_headers is a mapping NAME: VALUE");
    goto out;
  } else if (run_steps(steps, hub_node_get(c, "input_headers"), base, &in, &oc)) {
    snprintf(msg, msg_size, "%s", oc.error);
    goto out;
  }
  res = 0;
  if ((x = hub_node_get(c, "expect_error"))) {
    const char *missing = "";
    if (!oc.failed_run) {
      snprintf(msg, msg_size, "expected an error, but it succeeded with output:\n%.*s", (int)(oc.out_len > 2000 ? 2000 : oc.out_len),
               oc.out);
    } else if (!scalar_list_contains(x, oc.error, &missing)) {
      snprintf(msg, msg_size, "the error does not contain \"%s\":\n    %s", missing, oc.error);
    } else if ((x = hub_node_get(c, "expect_code")) && (x->kind != HUB_NODE_SCALAR || strcmp(x->scalar, oc.code))) {
      snprintf(msg, msg_size, "expected error code %s, got %s: %s", x->kind == HUB_NODE_SCALAR ? x->scalar : "?",
               oc.code, oc.error);
    } else {
      res = 1;
    }
    goto out;
  }
  if (oc.failed_run) {
    snprintf(msg, msg_size, "failed (%s): %s", oc.code, oc.error);
    goto out;
  }
  if ((x = hub_node_get(c, "expect"))) {
    if (x->kind != HUB_NODE_SCALAR || !(want.p = strdup(x->scalar))) goto broken_at_x;
    want.len = strlen(want.p);
  } else {
    x = hub_node_get(c, "expect_file");
    if (x->kind != HUB_NODE_SCALAR || read_text(base, x, &want, why, sizeof why)) goto broken_at_x;
  }
  int xml = is_xml_text(want.p, want.len);
  if (normalise(want.p, want.len, xml, &c1, &s1, why, sizeof why)) {
    hub_node_error(x, msg, msg_size, "the expected output is not valid %s: %s", xml ? "XML" : "JSON", why);
    res = -1;
    goto out;
  }
  if (normalise((char *)oc.out, oc.out_len, xml, &c2, &s2, why, sizeof why)) {
    snprintf(msg, msg_size, "the output is not valid %s: %s", xml ? "XML" : "JSON", why);
    goto out;
  }
  if (strcmp(c1, c2)) {
    snprintf(msg, msg_size, "output differs from %s (- expected, + actual):",
             hub_node_get(c, "expect_file") ? hub_node_get(c, "expect_file")->scalar : "expect");
    printf("FAIL %s\n    %s\n", label, msg);
    print_diff(s1, s2);
    msg[0] = '\0';
    res = 0;
    goto out;
  }
  if ((x = hub_node_get(c, "expect_valid"))) {
    const struct hub_node *const *list = &x;
    size_t nl = 1;
    if (x->kind == HUB_NODE_SEQ) list = (const struct hub_node *const *)x->items, nl = x->n;
    for (size_t i = 0; i < nl; i++) {
      if (list[i]->kind != HUB_NODE_SCALAR) {
        hub_node_error(list[i], msg, msg_size, "expect_valid takes schema file names");
        res = -1;
        goto out;
      }
      free(path);
      if (!(path = hub_path_resolve_new(base, list[i]->scalar))) goto out;
      if (validate_output(path, (char *)oc.out, oc.out_len, why, sizeof why)) {
        snprintf(msg, msg_size, "%s", why);
        goto out;
      }
    }
  }
  if ((x = hub_node_get(c, "expect_headers"))) {
    if (x->kind != HUB_NODE_MAP || !oc.msg) {
      hub_node_error(x, msg, msg_size, "expect_headers is a mapping NAME: VALUE, for cases with steps");
      res = -1;
      goto out;
    }
    for (size_t i = 0; i < x->n; i++) {
      const char *want_v = x->items[i]->kind == HUB_NODE_SCALAR ? x->items[i]->scalar : "";
      const char *got = hub_msg_header_get_str(oc.msg, x->keys[i]->scalar);
      /* "*" only asks that the header is there */
      if (!got || (strcmp(want_v, "*") && strcmp(want_v, got))) {
        snprintf(msg, msg_size, "header %s: expected \"%s\", got %s%s%s", x->keys[i]->scalar, want_v, got ? "\"" : "",
                 got ? got : "none", got ? "\"" : "");
        goto out;
      }
    }
  }
  res = 1;
  goto out;
broken_at_x:
  hub_node_error(x, msg, msg_size, "%s", why[0] ? why : "bad value");
  res = -1;
out:
  free(path);
  free(c1), free(s1), free(c2), free(s2);
  free(in.p), free(want.p), free(oc.out);
  hub_msg_destroy(oc.msg);
  return res;
}

static int run_file(const char *file, struct tally *t) {
  char why[2048], *base = NULL;
  int rc = -1;
  struct hub_node *root = hub_node_load_file(file, why, sizeof why);
  if (!root) goto broken;
  if (!(base = hub_path_dir_new(file))) {
    snprintf(why, sizeof why, "%s: out of memory", file);
    goto broken;
  }
  static const char *const top_keys[] = {"mapping", "steps", "now", "uuid_seed", "cases", NULL};
  const struct hub_node *cases = hub_node_get(root, "cases"), *now = hub_node_get(root, "now"),
                        *seed = hub_node_get(root, "uuid_seed");
  int bad = root->kind != HUB_NODE_MAP || !cases || cases->kind != HUB_NODE_SEQ;
  for (size_t i = 0; !bad && i < root->n; i++) {
    int ok = 0;
    for (int k = 0; top_keys[k]; k++) ok |= !strcmp(root->keys[i]->scalar, top_keys[k]);
    if (!ok) {
      hub_node_error(root->keys[i], why, sizeof why,
                     "unknown key '%s' (allowed: mapping, steps, now, uuid_seed, cases)", root->keys[i]->scalar);
      goto broken;
    }
  }
  if (bad) {
    hub_node_error(root, why, sizeof why, "a test file is a mapping with cases: a list of cases");
    goto broken;
  }
  int64_t now_s = 0;
  int now_ms = 0;
  if (now && (now->kind != HUB_NODE_SCALAR || lt_map_date_parse(now->scalar, "iso8601", 0, &now_s, &now_ms, why,
                                                                   sizeof why))) {
    hub_node_error(now, why, sizeof why, "now must be an ISO 8601 time like 2024-01-15T08:30:00+07:00");
    goto broken;
  }
  unsigned long long seed_v = 0;
  if (seed) {
    char *end = NULL;
    errno = 0;
    if (seed->kind == HUB_NODE_SCALAR) seed_v = strtoull(seed->scalar, &end, 10);
    if (seed->kind != HUB_NODE_SCALAR || errno || *end || !seed_v || seed->scalar[0] == '-' || !now) {
      hub_node_error(seed, why, sizeof why, "uuid_seed is a positive integer, and goes with now:");
      goto broken;
    }
  }
  for (size_t i = 0; i < cases->n; i++) {
    const struct hub_node *c = cases->items[i], *name = c->kind == HUB_NODE_MAP ? hub_node_get(c, "name") : NULL;
    char label[600], msg[4096] = "";
    snprintf(label, sizeof label, "%s:%d %s", file, c->line,
             name && name->kind == HUB_NODE_SCALAR ? name->scalar : "(unnamed)");
    /* each case sees the same clock and UUID counter, so outputs do not depend on case order */
    lt_map_set_fixed_clock_seed(now ? now_s * 1000 + now_ms : 0, seed_v);
    int r = run_case(label, base, root, c, msg, sizeof msg);
    if (r == 1) {
      t->passed++;
      if (t->verbose) printf("ok   %s\n", label);
    } else if (r == 0) {
      t->failed++;
      if (msg[0]) printf("FAIL %s\n    %s\n", label, msg);
    } else {
      t->broken++;
      printf("BROKEN %s\n    %s\n", label, msg);
    }
  }
  lt_map_set_fixed_clock(0);
  rc = 0;
  goto out;
broken:
  printf("BROKEN %s\n", why);
  t->broken++;
out:
  hub_node_destroy(root);
  free(base);
  return rc;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every *.test.yaml under dir, in name order (so runs are reproducible). */
static void walk(const char *dir, struct tally *t) {
  DIR *d = opendir(dir);
  if (!d) {
    printf("BROKEN %s: cannot open directory\n", dir);
    t->broken++;
    return;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof *nn);
      if (!nn) break;
      names = nn;
    }
    if (!(names[n] = strdup(e->d_name))) break;
    n++;
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_str);
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
      walk(path, t);
    else if (ends_with(names[i], ".test.yaml"))
      run_file(path, t);
    free(names[i]);
  }
  free(names);
}

static int test_main(int argc, char **argv) {
  struct tally t = {0};
  int argi = 1;
  if (argi < argc && (!strcmp(argv[argi], "-v") || !strcmp(argv[argi], "--verbose"))) t.verbose = 1, argi++;
  if (argi >= argc) return hub_cmd_usage_error(&cmd, "expected a directory or test file");
  for (; argi < argc; argi++) {
    struct stat st;
    if (stat(argv[argi], &st)) return hub_cmd_usage_error(&cmd, "cannot read %s", argv[argi]);
    if (S_ISDIR(st.st_mode))
      walk(argv[argi], &t);
    else
      run_file(argv[argi], &t);
  }
  printf("%d passed, %d failed, %d broken\n", t.passed, t.failed, t.broken);
  if (t.failed) return HUB_EXIT_FAIL;
  if (t.broken) return HUB_EXIT_USAGE;
  return t.passed ? HUB_EXIT_OK : HUB_EXIT_USAGE;
}

static const struct hub_cmd cmd = {
    .name = "test",
    .summary = "run golden-file tests of mappings and steps (*.test.yaml)",
    .usage = "Usage: lienthong test [-v] DIR|FILE...\n\n"
             "Runs every case of every *.test.yaml file under DIR (or the named files). A case gives an\n"
             "input (input, input_file or input_base64), a mapping file or a list of steps, and either\n"
             "the expected output (expect or expect_file; JSON compared as values, XML after\n"
             "canonicalisation) or the expected error (expect_error: text the message contains, and\n"
             "optionally expect_code). expect_valid: SCHEMA (.xsd or JSON Schema) also validates the\n"
             "output. With steps, input_headers sets the record's headers and expect_headers checks\n"
             "them (\"*\": present). A fixed `now:` makes `now` and `uuid` reproducible (with\n"
             "`uuid_seed: N`, seeded version-4 UUIDs; `map --now T --uuid-seed N` prints the same). See\n"
             "docs/mapping.md.\n\n"
             "Prints FAIL with a line diff (- expected, + actual) for each failing case and a summary.\n"
             "-v also lists the cases that pass.\n\n"
             "Exit codes: 0 all passed; 1 a case failed; 2 usage, a broken test file or no cases.",
    .main = test_main,
};
HUB_CMD_PLUGIN(lt_plugin_cmd_test, cmd);
