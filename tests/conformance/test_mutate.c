/* Robustness: deterministic mutations of the suites' own inputs. Every JSONPath selector of the
 * CTS is cut, spliced and byte-flipped, then compiled and (when it compiles) run on the case's
 * document; every JSON Schema of the 2020-12 suite has values swapped for values found
 * elsewhere in the suite, then compiled and run on the suite's instances. Nothing may crash (run
 * it under ASan/UBSan: the build option LT_SANITIZE), and every refusal must carry a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mappings/shape/jsonpath.h"
#include "mappings/shape/jsonschema.h"

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static size_t pick(size_t n) { return n ? (size_t)(next() % n) : 0; }

/* Characters a JSONPath parser has to treat specially. */
static const char alphabet[] = "$@.[]()?*:,'\"\\!=<>&|-0123456789 abcetruflsn_\x01\xc3\xa9";

static void mutate_text(const char *in, char *out, size_t size, const char *const *others, size_t n_others) {
  size_t len = strlen(in);
  snprintf(out, size, "%s", in);
  int rounds = 1 + (int)pick(3);
  for (int r = 0; r < rounds; r++) {
    len = strlen(out);
    switch (pick(5)) {
      case 0: /* truncate */
        out[pick(len + 1)] = 0;
        break;
      case 1: /* overwrite one byte */
        if (len) out[pick(len)] = alphabet[pick(sizeof alphabet - 1)];
        break;
      case 2: /* insert one byte */
        if (len + 2 < size) {
          size_t at = pick(len + 1);
          memmove(out + at + 1, out + at, len - at + 1);
          out[at] = alphabet[pick(sizeof alphabet - 1)];
        }
        break;
      case 3: { /* splice: our head, another selector's tail */
        const char *o = others[pick(n_others)];
        size_t at = pick(len + 1), from = pick(strlen(o) + 1);
        snprintf(out + at, size - at, "%s", o + from);
        break;
      }
      default: /* duplicate a slice (nests brackets and filters) */
        if (len && 2 * len + 1 < size) {
          size_t a = pick(len), b = a + pick(len - a) + 1;
          char tmp[1024];
          snprintf(tmp, sizeof tmp, "%.*s%s", (int)(b - a), out + a, out + a);
          snprintf(out + a, size - a, "%s", tmp);
        }
        break;
    }
  }
}

static void fuzz_jsonpath(json_t *tests, int iterations) {
  size_t n = json_array_size(tests);
  const char **sels = calloc(n, sizeof *sels);
  json_t **docs = calloc(n, sizeof *docs);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *t = json_array_get(tests, i);
    sels[k] = json_string_value(json_object_get(t, "selector"));
    docs[k] = json_object_get(t, "document");
    if (sels[k]) k++;
  }
  int compiled = 0, refused = 0, silent = 0;
  for (int it = 0; it < iterations; it++) {
    size_t i = pick(k);
    char expr[1024], err[256];
    mutate_text(sels[i], expr, sizeof expr, sels, k);
    struct lt_jsonpath *p = NULL;
    err[0] = 0;
    hub_err_t rc = lt_jsonpath_compile(expr, &p, err, sizeof err);
    if (rc == HUB_OK) {
      compiled++;
      json_t *doc = docs[pick(k)];
      if (!doc) doc = json_null(); /* invalid-selector cases have no document */
      json_t *r = lt_jsonpath_query_new(p, doc), *paths = lt_jsonpath_paths_new(p, doc);
      if (!r || !paths || json_array_size(r) != json_array_size(paths)) {
        silent++;
        fprintf(stderr, "query of %s: %s\n", expr, !r || !paths ? "no result" : "values and paths differ");
      }
      json_decref(r);
      json_decref(paths);
      lt_jsonpath_destroy(p);
    } else {
      refused++;
      if (rc != HUB_ERR_QUERY || strncmp(err, "column ", 7) != 0) {
        silent++;
        fprintf(stderr, "%s refused without a column: %d %s\n", expr, rc, err);
      }
    }
  }
  printf("jsonpath: %d mutated selectors, %d compiled, %d refused\n", iterations, compiled, refused);
  CHECK(silent == 0);
  CHECK(compiled > iterations / 20 && refused > iterations / 4); /* the mutations reach both sides */
  free(sels);
  free(docs);
}

/* Collects every value in the suite's schemas, to swap in elsewhere. */
static void collect(json_t *v, json_t *pool) {
  if (json_array_size(pool) < 20000) json_array_append(pool, v);
  size_t i;
  json_t *x;
  const char *key;
  if (json_is_array(v)) json_array_foreach(v, i, x) collect(x, pool);
  if (json_is_object(v)) json_object_foreach(v, key, x) collect(x, pool);
}

/* Replaces one randomly chosen value (at any depth) of a deep copy. */
static void swap_one(json_t *v, json_t *pool, int depth) {
  size_t n = json_is_array(v) ? json_array_size(v) : json_is_object(v) ? json_object_size(v) : 0;
  if (!n) return;
  size_t at = pick(n), i = 0;
  json_t *child = NULL;
  const char *key = NULL;
  if (json_is_array(v)) {
    child = json_array_get(v, at);
  } else {
    void *iter = json_object_iter(v);
    for (; iter && i < at; i++) iter = json_object_iter_next(v, iter);
    key = iter ? json_object_iter_key(iter) : NULL;
    child = iter ? json_object_iter_value(iter) : NULL;
  }
  if (child && depth < 8 && pick(3) && (json_is_array(child) || json_is_object(child))) {
    swap_one(child, pool, depth + 1);
    return;
  }
  json_t *repl = json_deep_copy(json_array_get(pool, pick(json_array_size(pool))));
  if (json_is_array(v)) json_array_set_new(v, at, repl);
  else if (key) json_object_set_new(v, key, repl);
  else json_decref(repl);
}

static void fuzz_jsonschema(const char *dir, int iterations) {
  static const char *files[] = {"ref.json", "dynamicRef.json", "unevaluatedProperties.json", "unevaluatedItems.json",
                                "anchor.json", "defs.json", "items.json", "properties.json", "refRemote.json",
                                "if-then-else.json", "contains.json", "patternProperties.json", "oneOf.json"};
  json_t *groups = json_array(), *pool = json_array(), *instances = json_array();
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, files[f]);
    json_t *g = json_load_file(path, JSON_ALLOW_NUL, NULL);
    size_t i;
    json_t *x;
    json_array_foreach(g, i, x) {
      json_array_append(groups, json_object_get(x, "schema"));
      collect(json_object_get(x, "schema"), pool);
      size_t k;
      json_t *t;
      json_array_foreach(json_object_get(x, "tests"), k, t) json_array_append(instances, json_object_get(t, "data"));
    }
    json_decref(g);
  }
  CHECK(json_array_size(groups) > 100);
  int compiled = 0, refused = 0, silent = 0;
  for (int it = 0; it < iterations && json_array_size(groups); it++) {
    json_t *schema = json_deep_copy(json_array_get(groups, pick(json_array_size(groups))));
    int swaps = 1 + (int)pick(3);
    for (int s = 0; s < swaps; s++) swap_one(schema, pool, 0);
    struct lt_schema *sc = NULL;
    char err[1024] = "";
    hub_err_t rc = lt_schema_new(schema, "https://lienthong.invalid/mutated.json", &sc, err, sizeof err);
    if (rc == HUB_OK) {
      compiled++;
      for (int k = 0; k < 4; k++) {
        char *errors = NULL;
        json_t *inst = json_array_get(instances, pick(json_array_size(instances)));
        hub_err_t vr = lt_schema_validate(sc, inst, &errors);
        if (vr == HUB_ERR_SCHEMA && (!errors || errors[0] != '/')) silent++;
        if (vr != HUB_OK && vr != HUB_ERR_SCHEMA) silent++;
        if ((vr == HUB_OK) != (lt_schema_validate(sc, inst, NULL) == HUB_OK)) silent++;
        free(errors);
      }
      lt_schema_destroy(sc);
    } else {
      refused++;
      if (rc != HUB_ERR_SCHEMA_INVALID || !err[0]) silent++;
    }
    json_decref(schema);
  }
  printf("jsonschema: %d mutated schemas, %d compiled, %d refused\n", iterations, compiled, refused);
  CHECK(silent == 0);
  CHECK(compiled > iterations / 20);
  json_decref(groups);
  json_decref(pool);
  json_decref(instances);
}

int main(void) {
  const char *shared = getenv("LT_SHARED_DIR");
  if (!shared || !*shared) {
    fprintf(stderr, "LT_SHARED_DIR is not set: it must point at the shared folder holding testdata/\n");
    return 1;
  }
  char path[4096], dir[4096], remotes[4096];
  snprintf(path, sizeof path, "%s/testdata/jsonpath-cts/cts.json", shared);
  snprintf(dir, sizeof dir, "%s/testdata/json-schema-test-suite/tests/draft2020-12", shared);
  snprintf(remotes, sizeof remotes, "%s/testdata/json-schema-test-suite/remotes", shared);
  /* LT_MUTATE_SEED explores other mutations; the default keeps runs reproducible */
  const char *seed = getenv("LT_MUTATE_SEED");
  if (seed && *seed) rng ^= strtoull(seed, NULL, 10) * 0xD1B54A32D192ED03u;
  json_t *cts = json_load_file(path, JSON_ALLOW_NUL, NULL);
  CHECK(cts != NULL);
  if (!cts) return check_done();
  lt_schema_set_remote_map("http://localhost:1234/", remotes);
  fuzz_jsonpath(json_object_get(cts, "tests"), 100000);
  fuzz_jsonschema(dir, 10000);
  lt_schema_set_remote_map(NULL, NULL);
  json_decref(cts);
  return check_done();
}
