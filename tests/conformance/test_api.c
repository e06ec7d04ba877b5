/* The library side of shape-query: lt_json_parse's refusals and messages, JSONPath error
 * columns and normalized paths, JSON Schema loading from files (relative refs, the remote map,
 * bad schemas with their place) and error lists, and the `validate` step through the registry
 * (OK, REJECT with HUB_ERR_SCHEMA listing every failure, parse and hostile-XML codes). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hub/core/node.h"
#include "hub/core/registry.h"
#include "hub/core/step_chain.h"
#include "hub/core/step.h"
#include "mappings/shape/json.h"
#include "mappings/shape/jsonpath.h"
#include "mappings/shape/jsonschema.h"
#include "mappings/shape/jsonschema_uri.h"

static char dir[256];
static char written[16][512];
static size_t n_written;

static void write_file(const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (n_written < 16) snprintf(written[n_written++], sizeof written[0], "%s", path);
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static void test_json_parse(void) {
  json_t *j = NULL;
  char err[256];
  CHECK(lt_json_parse("{\"a\": [1, 2]}", 13, "m", &j, err, sizeof err) == HUB_OK && json_is_object(j));
  json_decref(j);
  CHECK(lt_json_parse("\"only a string\"", 15, "m", &j, err, sizeof err) == HUB_OK && json_is_string(j));
  json_decref(j);
  CHECK(lt_json_parse("{\n\"a\": 1,\n\"a\": 2}", 17, "msg.json", &j, err, sizeof err) == HUB_ERR_JSON && !j);
  CHECK_CONTAINS(err, "msg.json: line 3");
  CHECK_CONTAINS(err, "duplicate object key");
  CHECK(lt_json_parse("{\"a\": \"x\0y\"}", 12, "m", &j, err, sizeof err) == HUB_ERR_JSON);
  CHECK_STR(err, "m: line 1, column 9: NUL byte in JSON input");
  CHECK(lt_json_parse("[\"\\u0000\"]", 10, "m", &j, err, sizeof err) == HUB_ERR_JSON);
  CHECK_CONTAINS(err, "\\u0000 (NUL) in a string is refused");
  CHECK(lt_json_parse("", 0, NULL, &j, err, sizeof err) == HUB_ERR_JSON);
  CHECK_CONTAINS(err, "<input>: line");
  CHECK(lt_json_parse("[1] x", 5, "m", &j, err, sizeof err) == HUB_ERR_JSON);
  CHECK(lt_json_parse("\xEF\xBB\xBF{\"a\": 1}", 11, "m", &j, err, sizeof err) == HUB_OK && json_is_object(j));
  json_decref(j);
  CHECK(lt_json_parse("\xEF\xBB{}", 4, "m", &j, err, sizeof err) == HUB_ERR_JSON);
  json_t *a = json_loads("{\"x\": [1, 2.0, {\"y\": null}]}", 0, NULL), *b = json_loads("{\"x\": [1.0, 2, {\"y\": null}]}", 0, NULL);
  CHECK(lt_json_equal(a, b));
  json_array_append_new(json_object_get(b, "x"), json_true());
  CHECK(!lt_json_equal(a, b));
  json_decref(a);
  json_decref(b);
}

/* Reals print in the shortest form that reads back to the same double (0.1 used to print as
 * 0.10000000000000001); everything else prints as jansson prints it. */
static void test_json_dumps(void) {
  json_t *j =
      json_loads("[0.1, 1e21, 5e-324, 0.30000000000000004, 100.0, -0.0, 3.14, 1.7976931348623157e308]", 0, NULL);
  char *t = lt_json_dumps(j, JSON_COMPACT);
  CHECK_STR(t, "[0.1,1e21,5e-324,0.30000000000000004,100.0,-0.0,3.14,1.7976931348623157e308]");
  free(t);
  json_decref(j);
  /* random doubles: each reads back exactly, in at most 17 significant digits */
  unsigned long long x = 88172645463325252ull;
  int exact = 1;
  for (int i = 0; i < 200000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double d;
    memcpy(&d, &x, sizeof d);
    if (d != d || d - d != 0) continue; /* NaN and infinities are not JSON */
    char buf[64];
    if (lt_json_real_text(d, buf, sizeof buf) < 0 || strtod(buf, NULL) != d) exact = 0;
  }
  CHECK(exact);
  /* without reals, byte for byte what jansson writes, in every layout the commands use */
  json_t *doc = json_loads(
      "{\"b\": [1, \"x\\u0001\\\"\\\\/\u00e9\", {}, []], \"a\": {\"z\": null, \"y\": [true, false]}}", 0, NULL);
  const size_t layouts[] = {0, JSON_COMPACT, JSON_INDENT(2), JSON_INDENT(2) | JSON_SORT_KEYS,
                            JSON_COMPACT | JSON_SORT_KEYS};
  for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
    char *mine = lt_json_dumps(doc, layouts[i]), *theirs = json_dumps(doc, layouts[i] | JSON_ENCODE_ANY);
    CHECK_STR(mine, theirs);
    free(mine);
    free(theirs);
  }
  json_decref(doc);
}

static void test_jsonpath(void) {
  struct lt_jsonpath *p = NULL;
  char err[256];
  CHECK(lt_jsonpath_compile("$.a[?@.b == ]", &p, err, sizeof err) == HUB_ERR_QUERY && !p);
  CHECK_CONTAINS(err, "column 13:");
  CHECK(lt_jsonpath_compile("$[?count(@.a) == 1]", &p, err, sizeof err) == HUB_OK);
  lt_jsonpath_destroy(p);
  CHECK(lt_jsonpath_compile("$[?count(@.a)]", &p, err, sizeof err) == HUB_ERR_QUERY);
  CHECK_CONTAINS(err, "cannot be used as a test");
  CHECK(lt_jsonpath_compile("$[?@.* == 1]", &p, err, sizeof err) == HUB_ERR_QUERY);
  CHECK(lt_jsonpath_compile("$[9007199254740992]", &p, err, sizeof err) == HUB_ERR_QUERY);
  CHECK_CONTAINS(err, "out of range");

  json_t *doc = json_loads("{\"it's\\n\": {\"name\": \"Nguyễn\"}, \"l\": [\"a\", \"bb\", \"ccc\"]}", 0, NULL);
  CHECK(lt_jsonpath_compile("$..name", &p, err, sizeof err) == HUB_OK);
  json_t *paths = lt_jsonpath_paths_new(p, doc), *vals = lt_jsonpath_query_new(p, doc);
  CHECK_STR(json_string_value(json_array_get(paths, 0)), "$['it\\'s\\n']['name']");
  CHECK_STR(json_string_value(json_array_get(vals, 0)), "Nguyễn");
  json_decref(paths);
  json_decref(vals);
  lt_jsonpath_destroy(p);
  /* length() counts code points: "Nguyễn" is 6 */
  CHECK(lt_jsonpath_compile("$..*[?length(@) == 6]", &p, err, sizeof err) == HUB_OK);
  vals = lt_jsonpath_query_new(p, doc);
  CHECK(json_array_size(vals) == 1);
  json_decref(vals);
  lt_jsonpath_destroy(p);
  CHECK(lt_jsonpath_compile("$.l[?match(@, 'b+')]", &p, err, sizeof err) == HUB_OK);
  vals = lt_jsonpath_query_new(p, doc);
  CHECK(json_array_size(vals) == 1 && !strcmp(json_string_value(json_array_get(vals, 0)), "bb"));
  json_decref(vals);
  lt_jsonpath_destroy(p);
  json_decref(doc);
  /* match()/search() on 5 000 and 100 000 characters: I-Regexp runs without backtracking, so a
   * long subject is decided (it used to give [] from a hit limit) */
  for (size_t n = 5000; n <= 100000; n *= 20) {
    char *as = malloc(n + 2);
    memset(as, 'a', n);
    as[n] = 0;
    json_t *long_doc = json_pack("[{s:s}, {s:s}]", "a", as, "a", "c");
    CHECK(lt_jsonpath_compile("$[?match(@.a, '(a|b)+')]", &p, err, sizeof err) == HUB_OK);
    vals = lt_jsonpath_query_new(p, long_doc);
    CHECK(json_array_size(vals) == 1);
    json_decref(vals);
    lt_jsonpath_destroy(p);
    CHECK(lt_jsonpath_compile("$[?search(@.a, '(a|aa)*c')]", &p, err, sizeof err) == HUB_OK);
    vals = lt_jsonpath_query_new(p, long_doc);
    CHECK(json_array_size(vals) == 1 && !strcmp(json_string_value(json_object_get(json_array_get(vals, 0), "a")), "c"));
    json_decref(vals);
    lt_jsonpath_destroy(p);
    json_decref(long_doc);
    free(as);
  }
}

/* RFC 3986 §5.4.1 and §5.4.2: every normal and abnormal example, plus the URN and file cases
 * JSON Schema needs. */
static void test_uri(void) {
  static const char *const cases[][2] = {
      {"g:h", "g:h"}, {"g", "http://a/b/c/g"}, {"./g", "http://a/b/c/g"}, {"g/", "http://a/b/c/g/"},
      {"/g", "http://a/g"}, {"//g", "http://g"}, {"?y", "http://a/b/c/d;p?y"}, {"g?y", "http://a/b/c/g?y"},
      {"#s", "http://a/b/c/d;p?q#s"}, {"g#s", "http://a/b/c/g#s"}, {"g?y#s", "http://a/b/c/g?y#s"},
      {";x", "http://a/b/c/;x"}, {"g;x", "http://a/b/c/g;x"}, {"g;x?y#s", "http://a/b/c/g;x?y#s"},
      {"", "http://a/b/c/d;p?q"}, {".", "http://a/b/c/"}, {"./", "http://a/b/c/"}, {"..", "http://a/b/"},
      {"../", "http://a/b/"}, {"../g", "http://a/b/g"}, {"../..", "http://a/"}, {"../../", "http://a/"},
      {"../../g", "http://a/g"}, {"../../../g", "http://a/g"}, {"../../../../g", "http://a/g"},
      {"/./g", "http://a/g"}, {"/../g", "http://a/g"}, {"g.", "http://a/b/c/g."}, {".g", "http://a/b/c/.g"},
      {"g..", "http://a/b/c/g.."}, {"..g", "http://a/b/c/..g"}, {"./../g", "http://a/b/g"},
      {"./g/.", "http://a/b/c/g/"}, {"g/./h", "http://a/b/c/g/h"}, {"g/../h", "http://a/b/c/h"},
      {"g;x=1/./y", "http://a/b/c/g;x=1/y"}, {"g;x=1/../y", "http://a/b/c/y"}, {"g?y/./x", "http://a/b/c/g?y/./x"},
      {"g?y/../x", "http://a/b/c/g?y/../x"}, {"g#s/./x", "http://a/b/c/g#s/./x"},
      {"g#s/../x", "http://a/b/c/g#s/../x"}, {"http:g", "http:g"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *r = lt_uri_resolve("http://a/b/c/d;p?q", cases[i][0]);
    CHECK_STR(r, cases[i][1]);
    free(r);
  }
  char *r = lt_uri_resolve("urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed", "#/$defs/bar");
  CHECK_STR(r, "urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed#/$defs/bar");
  free(r);
  r = lt_uri_resolve("file:///srv/schemas/onestop/dossier.json", "../common/codes.json#/$defs/org");
  CHECK_STR(r, "file:///srv/schemas/common/codes.json#/$defs/org");
  CHECK_STR(lt_uri_cut_fragment(r), "/$defs/org");
  CHECK_STR(r, "file:///srv/schemas/common/codes.json");
  free(r);
  char frag[] = "/$defs/a%25b%2Fc";
  lt_uri_pct_decode(frag);
  CHECK_STR(frag, "/$defs/a%b/c");
}

static void test_schema_files(void) {
  char path[512], err[2048];
  struct lt_schema *s = NULL;
  write_file("codes.schema.json", "{\"$defs\": {\"org\": {\"type\": \"string\", \"pattern\": \"^[0-9]{3}\\\\.[0-9]{2}$\"}}}");
  write_file("dossier.schema.json",
             "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"type\": \"object\",\n"
             " \"required\": [\"code\", \"org\"], \"unevaluatedProperties\": false,\n"
             " \"properties\": {\"code\": {\"type\": \"string\", \"maxLength\": 5},\n"
             "                \"org\": {\"$ref\": \"codes.schema.json#/$defs/org\"}}}");
  snprintf(path, sizeof path, "%s/dossier.schema.json", dir);
  CHECK(lt_schema_load_file(path, &s, err, sizeof err) == HUB_OK && s);
  json_t *ok = json_loads("{\"code\": \"Huế\", \"org\": \"000.00\"}", 0, NULL);
  json_t *bad = json_loads("{\"code\": \"toolong\", \"org\": \"1\", \"extra\": 1}", 0, NULL);
  char *errors = NULL;
  CHECK(lt_schema_validate(s, ok, &errors) == HUB_OK && !errors);
  CHECK(lt_schema_validate(s, bad, &errors) == HUB_ERR_SCHEMA);
  CHECK_CONTAINS(errors, "/code: maxLength: 7 characters, at most 5 allowed");
  CHECK_CONTAINS(errors, "/org: pattern: does not match");
  CHECK_CONTAINS(errors, "/extra: unevaluatedProperties: property 'extra' is not allowed");
  free(errors);
  CHECK(lt_schema_validate(s, bad, NULL) == HUB_ERR_SCHEMA);
  json_decref(ok);
  json_decref(bad);
  lt_schema_destroy(s);

  write_file("bad.schema.json", "{\"properties\": {\"a\": {\"minLength\": -1}}}");
  snprintf(path, sizeof path, "%s/bad.schema.json", dir);
  s = NULL;
  CHECK(lt_schema_load_file(path, &s, err, sizeof err) == HUB_ERR_SCHEMA_INVALID && !s);
  CHECK_CONTAINS(err, "bad.schema.json");
  CHECK_CONTAINS(err, "/properties/a/minLength");
  write_file("unresolved.schema.json", "{\"items\": {\"$ref\": \"#/$defs/nope\"}}");
  snprintf(path, sizeof path, "%s/unresolved.schema.json", dir);
  CHECK(lt_schema_load_file(path, &s, err, sizeof err) == HUB_ERR_SCHEMA_INVALID);
  CHECK_CONTAINS(err, "/items: cannot resolve reference");
  /* references read files only inside the schema's folder tree: /etc/passwd used to be read
   * (its first bytes showed in the error) */
  write_file("passwd.schema.json", "{\"$ref\": \"file:///etc/passwd\"}");
  snprintf(path, sizeof path, "%s/passwd.schema.json", dir);
  CHECK(lt_schema_load_file(path, &s, err, sizeof err) == HUB_ERR_SCHEMA_INVALID && !s);
  CHECK_CONTAINS(err, "refusing a file outside the schema's folder tree");
  CHECK(!strstr(err, "root") && !strstr(err, "invalid token"));
  write_file("up.schema.json", "{\"$ref\": \"../lt-api-elsewhere.json\"}");
  snprintf(path, sizeof path, "%s/up.schema.json", dir);
  CHECK(lt_schema_load_file(path, &s, err, sizeof err) == HUB_ERR_SCHEMA_INVALID && !s);
  CHECK_CONTAINS(err, "refusing a file outside the schema's folder tree");
  snprintf(path, sizeof path, "%s/none.schema.json", dir);
  CHECK(lt_schema_load_file(path, &s, err, sizeof err) == HUB_ERR_IO);

  /* the remote map serves a prefix from a folder; without it the reference does not resolve */
  write_file("remote-int.json", "{\"type\": \"integer\"}");
  json_t *rs = json_loads("{\"$ref\": \"http://schemas.example/remote-int.json\"}", 0, NULL);
  CHECK(lt_schema_new(rs, "https://lienthong.invalid/t.json", &s, err, sizeof err) == HUB_ERR_SCHEMA_INVALID);
  CHECK(lt_schema_set_remote_map("http://schemas.example/", dir) == HUB_OK);
  CHECK(lt_schema_new(rs, "https://lienthong.invalid/t.json", &s, err, sizeof err) == HUB_OK);
  json_t *one = json_integer(1), *str = json_string("1");
  CHECK(lt_schema_validate(s, one, NULL) == HUB_OK);
  CHECK(lt_schema_validate(s, str, NULL) == HUB_ERR_SCHEMA);
  lt_schema_destroy(s);
  lt_schema_set_remote_map(NULL, NULL);
  json_decref(one);
  json_decref(str);
  json_decref(rs);
}

/* Inputs built to make a naive implementation slow or crash. */
static void test_hostile(void) {
  char err[256];
  struct lt_schema *s = NULL;
  /* uniqueItems over 20000 distinct items, then one duplicate (1 and 1.0) at the end */
  json_t *arr = json_array();
  for (int i = 0; i < 20000; i++) json_array_append_new(arr, json_integer(i * 7));
  json_t *uniq = json_loads("{\"uniqueItems\": true}", 0, NULL);
  CHECK(lt_schema_new(uniq, "https://lienthong.invalid/u.json", &s, err, sizeof err) == HUB_OK);
  CHECK(lt_schema_validate(s, arr, NULL) == HUB_OK);
  json_array_append_new(arr, json_real(7.0));
  char *errors = NULL;
  CHECK(lt_schema_validate(s, arr, &errors) == HUB_ERR_SCHEMA);
  CHECK_CONTAINS(errors, "/: uniqueItems: items 1 and 20000 are equal");
  free(errors);
  lt_schema_destroy(s);
  json_decref(uniq);
  json_decref(arr);
  /* a long valid Vietnamese text against a pattern with a repeated group: the backtracking
   * matcher's depth limit used to call it "does not match" at 1 200 characters (not at 800) */
  json_t *vi = json_loads("{\"pattern\": \"^([\\\\p{L}\\\\p{N}\\\\p{P}\\\\p{Zs}]|\\\\n)*$\"}", 0, NULL);
  CHECK(vi && lt_schema_new(vi, "https://lienthong.invalid/vi.json", &s, err, sizeof err) == HUB_OK);
  const int lengths[] = {800, 1200, 20000};
  for (size_t k = 0; k < 3; k++) {
    size_t n = (size_t)lengths[k];
    struct lt_buf t = {0};
    while (lt_utf8_length(t.s ? t.s : "", t.len) < n)
      lt_buf_str(&t, "Nguyễn Văn Đức, phường Bến Nghé.\n");
    json_t *text = json_string(t.s);
    CHECK(lt_schema_validate(s, text, NULL) == HUB_OK);
    json_t *bad = json_string_nocheck(""); /* the same text with a symbol (not L, N, P, Zs) refused */
    json_string_set(bad, t.s);
    lt_buf_str(&t, "\u20ab");
    json_string_set(bad, t.s);
    CHECK(lt_schema_validate(s, bad, &errors) == HUB_ERR_SCHEMA);
    CHECK_CONTAINS(errors, "/: pattern: does not match");
    free(errors);
    json_decref(bad);
    json_decref(text);
    free(t.s);
  }
  lt_schema_destroy(s);
  json_decref(vi);
  /* a back-reference the non-backtracking matcher cannot run, beyond the limit: undecided,
   * never "does not match" (nor valid), also inside `not` where failures are muted */
  const char *brs[] = {"{\"pattern\": \"^(a|a)*\\\\1[cd]$\"}", "{\"not\": {\"pattern\": \"^(a|a)*\\\\1[cd]$\"}}",
                       "{\"patternProperties\": {\"^(a|a)*\\\\1[cd]$\": false}}"};
  for (size_t i = 0; i < 3; i++) {
    json_t *br = json_loads(brs[i], 0, NULL);
    CHECK(br && lt_schema_new(br, "https://lienthong.invalid/br.json", &s, err, sizeof err) == HUB_OK);
    char as[41];
    memset(as, 'a', 40);
    as[40] = 0;
    json_t *inst = i == 2 ? json_pack("{s:i}", as, 1) : json_string(as);
    CHECK(lt_schema_validate(s, inst, NULL) == HUB_ERR_UNDECIDED);
    CHECK(lt_schema_validate(s, inst, &errors) == HUB_ERR_UNDECIDED);
    CHECK_CONTAINS(errors, "cannot be decided on this value");
    free(errors);
    json_decref(inst);
    json_t *small = i == 2 ? json_pack("{s:i}", "aac", 1) : json_string("aac");
    CHECK(lt_schema_validate(s, small, NULL) == (i == 0 ? HUB_OK : HUB_ERR_SCHEMA));
    json_decref(small);
    lt_schema_destroy(s);
    json_decref(br);
  }
  /* catastrophic backtracking without back-references is decided without backtracking */
  json_t *redos = json_loads("{\"pattern\": \"^(a+)+$\"}", 0, NULL);
  CHECK(lt_schema_new(redos, "https://lienthong.invalid/r.json", &s, err, sizeof err) == HUB_OK);
  char text[64];
  memset(text, 'a', 40);
  text[40] = '!';
  text[41] = 0;
  json_t *str = json_string(text);
  CHECK(lt_schema_validate(s, str, NULL) == HUB_ERR_SCHEMA);
  json_decref(str);
  lt_schema_destroy(s);
  json_decref(redos);
  /* ECMA-262 \s covers Unicode spaces (PCRE2's is ASCII), and 1e308 is a multiple of 0.5 */
  json_t *ws = json_loads("{\"pattern\": \"^[\\\\s]\\\\s$\"}", 0, NULL);
  CHECK(lt_schema_new(ws, "https://lienthong.invalid/w.json", &s, err, sizeof err) == HUB_OK);
  json_t *nbsp = json_string("\u3000\xc2\xa0"), *xx = json_string("x ");
  CHECK(lt_schema_validate(s, nbsp, NULL) == HUB_OK);
  CHECK(lt_schema_validate(s, xx, NULL) == HUB_ERR_SCHEMA);
  lt_schema_destroy(s);
  json_decref(ws);
  json_decref(nbsp);
  json_decref(xx);
  json_t *half = json_loads("{\"multipleOf\": 0.5}", 0, NULL), *big = json_real(1e308);
  CHECK(lt_schema_new(half, "https://lienthong.invalid/h.json", &s, err, sizeof err) == HUB_OK);
  CHECK(lt_schema_validate(s, big, NULL) == HUB_OK);
  lt_schema_destroy(s);
  json_decref(half);
  json_decref(big);
  /* a failed oneOf quotes its closest alternative (one for another type ranks last) */
  json_t *one = json_loads("{\"oneOf\": [{\"type\": \"string\"}, {\"required\": [\"a\", \"b\"]}]}", 0, NULL);
  json_t *obj = json_loads("{\"a\": 1}", 0, NULL);
  CHECK(lt_schema_new(one, "https://lienthong.invalid/o.json", &s, err, sizeof err) == HUB_OK);
  CHECK(lt_schema_validate(s, obj, &errors) == HUB_ERR_SCHEMA);
  CHECK_STR(errors, "/: oneOf: matches none of the 2 alternatives (closest: #1, /: required: missing property 'b')");
  free(errors);
  lt_schema_destroy(s);
  json_decref(one);
  json_decref(obj);
  /* short enums and consts are quoted in the message */
  json_t *en = json_loads("{\"properties\": {\"s\": {\"enum\": [\"mới\", \"đã xử lý\"]}, \"c\": {\"const\": 3}}}", 0, NULL);
  json_t *ev = json_loads("{\"s\": \"x\", \"c\": 4}", 0, NULL);
  CHECK(lt_schema_new(en, "https://lienthong.invalid/en.json", &s, err, sizeof err) == HUB_OK);
  CHECK(lt_schema_validate(s, ev, &errors) == HUB_ERR_SCHEMA);
  CHECK_STR(errors, "/s: enum: value is not one of [\"mới\",\"đã xử lý\"]\n/c: const: value is not 3");
  free(errors);
  lt_schema_destroy(s);
  json_decref(en);
  json_decref(ev);
  /* propertyNames says why a name fails */
  json_t *pn = json_loads("{\"propertyNames\": {\"pattern\": \"^[a-z]+$\"}}", 0, NULL);
  json_t *named = json_loads("{\"ok\": 1, \"Not-ok\": 2}", 0, NULL);
  CHECK(lt_schema_new(pn, "https://lienthong.invalid/pn.json", &s, err, sizeof err) == HUB_OK);
  CHECK(lt_schema_validate(s, named, &errors) == HUB_ERR_SCHEMA);
  CHECK_STR(errors, "/: propertyNames: property name 'Not-ok' is not valid (pattern: does not match '^[a-z]+$')");
  free(errors);
  lt_schema_destroy(s);
  json_decref(pn);
  json_decref(named);
  /* at most 100 failures are listed, then one line says so */
  json_t *strs = json_loads("{\"items\": {\"type\": \"string\"}}", 0, NULL), *ints = json_array();
  for (int i = 0; i < 150; i++) json_array_append_new(ints, json_integer(i));
  CHECK(lt_schema_new(strs, "https://lienthong.invalid/s.json", &s, err, sizeof err) == HUB_OK);
  CHECK(lt_schema_validate(s, ints, &errors) == HUB_ERR_SCHEMA);
  size_t lines = 0;
  for (const char *p = errors; p && *p; p++) lines += *p == '\n';
  CHECK(lines == 100); /* 101 lines: 100 failures and the limit */
  CHECK_CONTAINS(errors, "/99: type: expected string, got integer\n/: limit: more than 100 failures");
  free(errors);
  lt_schema_destroy(s);
  json_decref(strs);
  json_decref(ints);
  /* a $ref cycle that consumes no input is refused when the schema loads, with its chain
   * (it used to load, pass lint and then fail every record as invalid data) */
  json_t *loop = json_loads("{\"$defs\": {\"a\": {\"$ref\": \"#/$defs/b\"}, \"b\": {\"$ref\": \"#/$defs/a\"}},"
                            " \"$ref\": \"#/$defs/a\"}", 0, NULL);
  CHECK(lt_schema_new(loop, "https://lienthong.invalid/l.json", &s, err, sizeof err) == HUB_ERR_SCHEMA_INVALID && !s);
  CHECK_CONTAINS(err, "reference cycle that never descends into the value");
  CHECK_CONTAINS(err, "/$defs/b <- /$defs/a <- /$defs/b");
  json_decref(loop);
  json_t *self = json_loads("{\"anyOf\": [{\"type\": \"string\"}, {\"allOf\": [{\"$ref\": \"#\"}]}]}", 0, NULL);
  CHECK(lt_schema_new(self, "https://lienthong.invalid/self.json", &s, err, sizeof err) == HUB_ERR_SCHEMA_INVALID);
  CHECK_CONTAINS(err, "/anyOf/1/allOf/0 <- /anyOf/1 <- / <- /anyOf/1/allOf/0");
  json_decref(self);
  /* a recursive schema over legitimately deep data (2 000 levels, near jansson's parse limit)
   * is not a cycle */
  json_t *rec = json_loads("{\"type\": \"object\", \"properties\": {\"c\": {\"$ref\": \"#\"}}}", 0, NULL);
  json_t *deep2k = json_object();
  for (int i = 0; i < 2000; i++) {
    json_t *up = json_object();
    json_object_set_new(up, "c", deep2k);
    deep2k = up;
  }
  CHECK(lt_schema_new(rec, "https://lienthong.invalid/rec.json", &s, err, sizeof err) == HUB_OK);
  CHECK(lt_schema_validate(s, deep2k, NULL) == HUB_OK);
  CHECK(lt_schema_validate(s, deep2k, &errors) == HUB_OK && !errors);
  lt_schema_destroy(s);
  json_decref(rec);
  json_decref(deep2k);
  json_t *tree = json_loads("{\"type\": \"object\", \"properties\": {\"c\": {\"$ref\": \"#\"}}}", 0, NULL);
  json_t *deep = json_object();
  for (int i = 0; i < 100; i++) {
    json_t *up = json_object();
    json_object_set_new(up, "c", deep);
    deep = up;
  }
  CHECK(lt_schema_new(tree, "https://lienthong.invalid/t.json", &s, err, sizeof err) == HUB_OK);
  CHECK(lt_schema_validate(s, deep, NULL) == HUB_OK);
  lt_schema_destroy(s);
  json_decref(tree);
  json_decref(deep);
  /* expression nesting is bounded at compile time */
  char expr[4096];
  size_t n = 0;
  n += (size_t)snprintf(expr + n, sizeof expr - n, "$[?");
  for (int i = 0; i < 500; i++) expr[n++] = '(';
  n += (size_t)snprintf(expr + n, sizeof expr - n, "@.a");
  for (int i = 0; i < 500; i++) expr[n++] = ')';
  snprintf(expr + n, sizeof expr - n, "]");
  struct lt_jsonpath *p = NULL;
  CHECK(lt_jsonpath_compile(expr, &p, err, sizeof err) == HUB_ERR_QUERY);
  CHECK_CONTAINS(err, "nested too deeply");
}

/* A compiled schema and path are shared by threads (the route engine's workers). */
struct shared {
  struct lt_schema *schema;
  struct lt_jsonpath *path;
  json_t *good, *bad;
  int wrong;
};

static void *worker(void *arg) {
  struct shared *sh = arg;
  /* each thread its own message, as in the hub; the schema and the path are shared */
  json_t *good = json_deep_copy(sh->good), *bad = json_deep_copy(sh->bad);
  for (int i = 0; i < 2000; i++) {
    char *errors = NULL;
    if (lt_schema_validate(sh->schema, good, NULL) != HUB_OK) __atomic_add_fetch(&sh->wrong, 1, __ATOMIC_RELAXED);
    if (lt_schema_validate(sh->schema, bad, &errors) != HUB_ERR_SCHEMA || !errors || !strstr(errors, "/n: "))
      __atomic_add_fetch(&sh->wrong, 1, __ATOMIC_RELAXED);
    free(errors);
    json_t *r = lt_jsonpath_query_new(sh->path, bad);
    if (json_array_size(r) != 1) __atomic_add_fetch(&sh->wrong, 1, __ATOMIC_RELAXED);
    json_decref(r);
  }
  json_decref(good);
  json_decref(bad);
  return NULL;
}

static void test_threads(void) {
  char err[256];
  struct shared sh = {0};
  json_t *schema = json_loads("{\"properties\": {\"n\": {\"type\": \"integer\"}, \"s\": {\"pattern\": \"^[a-z]+$\"}},"
                              " \"unevaluatedProperties\": false}", 0, NULL);
  CHECK(lt_schema_new(schema, "https://lienthong.invalid/th.json", &sh.schema, err, sizeof err) == HUB_OK);
  CHECK(lt_jsonpath_compile("$[?match(@, '[a-c]+') || @ == 1]", &sh.path, err, sizeof err) == HUB_OK);
  sh.good = json_loads("{\"n\": 1, \"s\": \"abc\"}", 0, NULL);
  sh.bad = json_loads("{\"n\": \"x\", \"s\": \"abc\"}", 0, NULL);
  /* the filter applies to the member values of `bad`, "x" and "abc": only "abc" matches */
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, &sh);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  CHECK(sh.wrong == 0);
  lt_schema_destroy(sh.schema);
  lt_jsonpath_destroy(sh.path);
  json_decref(sh.good);
  json_decref(sh.bad);
  json_decref(schema);
}

static struct hub_node *step_args(const char *yaml) {
  char err[256];
  return hub_node_load_string("route.yaml", yaml, strlen(yaml), err, sizeof err);
}

/* Runs the step on one message; 1 when result, code and (if given) a reason fragment match. */
static int step_run(struct hub_step *st, const char *value, enum hub_step_result want,
                    hub_err_t want_code, const char *reason, struct hub_step_outcome *out) {
  struct hub_msg *m = hub_msg_new(NULL, 0, value, strlen(value));
  enum hub_step_result r = hub_step_process(st, m, out);
  hub_msg_destroy(m);
  int ok = r == want && (want == HUB_STEP_OK || out->code == want_code) && (!reason || strstr(out->reason, reason));
  if (!ok) fprintf(stderr, "step on %s: result %d, code %d, reason %s\n", value, r, out->code, out->reason);
  return ok;
}

static void test_step(void) {
  const struct hub_step_ops *ops = hub_registry_get_step("validate");
  CHECK(ops != NULL);
  if (!ops) return;
  struct hub_step_env env = {.base_dir = dir, .route = "t"};
  char err[1024];
  struct hub_step *st = NULL;
  struct hub_node *y = step_args("validate: dossier.schema.json\n");
  CHECK(hub_step_create(ops, hub_node_get(y, "validate"), &env, &st, err, sizeof err) == HUB_OK && st);
  hub_node_destroy(y);
  struct hub_step_outcome out = {0};
  CHECK(step_run(st, "{\"code\": \"A1\", \"org\": \"000.00\"}", HUB_STEP_OK, HUB_OK, NULL, &out));
  CHECK(step_run(st, "{\"code\": 5, \"org\": \"x\"}", HUB_STEP_REJECT, HUB_ERR_SCHEMA,
                 "/code: type: expected string, got integer; /org: pattern: ", &out));
  CHECK(out.detail && strstr((char *)out.detail, "\n/org: pattern"));
  hub_step_outcome_clear(&out);
  CHECK(step_run(st, "{\"code\": \"a\", \"code\": \"b\"}", HUB_STEP_REJECT, HUB_ERR_JSON, "duplicate object key",
                 &out));
  hub_step_outcome_clear(&out);
  hub_step_destroy(st);

  write_file("r.xsd", "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\"><xs:element name=\"r\">"
                      "<xs:complexType><xs:sequence><xs:element name=\"n\" type=\"xs:int\"/></xs:sequence>"
                      "</xs:complexType></xs:element></xs:schema>");
  y = step_args("validate: {schema: r.xsd}\n");
  st = NULL;
  CHECK(hub_step_create(ops, hub_node_get(y, "validate"), &env, &st, err, sizeof err) == HUB_OK && st);
  hub_node_destroy(y);
  CHECK(step_run(st, "<r><n>5</n></r>", HUB_STEP_OK, HUB_OK, NULL, &out));
  CHECK(step_run(st, "<r><n>five</n></r>", HUB_STEP_REJECT, HUB_ERR_SCHEMA, "/r/n: xsd: ", &out));
  hub_step_outcome_clear(&out);
  CHECK(step_run(st, "<!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><r><n>&e;</n></r>", HUB_STEP_REJECT,
                 HUB_ERR_XML_HOSTILE, "DOCTYPE", &out));
  hub_step_outcome_clear(&out);
  hub_step_destroy(st);

  y = step_args("validate: {schema: r.xsd, strict: true}\n");
  CHECK(hub_step_create(ops, hub_node_get(y, "validate"), &env, &st, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "route.yaml:1:");
  CHECK_CONTAINS(err, "unknown key 'strict'");
  hub_node_destroy(y);
  y = step_args("validate: missing.schema.json\n");
  CHECK(hub_step_create(ops, hub_node_get(y, "validate"), &env, &st, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "route.yaml:1:11: validate:");
  CHECK_CONTAINS(err, "missing.schema.json");
  hub_node_destroy(y);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/lt-api-XXXXXX");
  if (!mkdtemp(dir)) return 1;
  test_json_parse();
  test_json_dumps();
  test_jsonpath();
  test_uri();
  test_schema_files();
  test_hostile();
  test_threads();
  test_step();
  for (size_t i = 0; i < n_written; i++) unlink(written[i]);
  rmdir(dir);
  return check_done();
}
