/* Conformance: runs the official JSON Schema Test Suite (draft 2020-12, required part, remote
 * references served from the suite's remotes/ folder) and the JSONPath Compliance Test Suite
 * (RFC 9535), and writes the report docs/conformance.md (into the source tree and the build
 * folder). Fails when a case fails that is not in the expected-failure list below, and when a
 * listed case passes (so the list cannot go stale). */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mappings/shape/json.h"
#include "mappings/shape/jsonpath.h"
#include "mappings/shape/jsonschema.h"

/* Cases known not to pass, with the reason. Target: empty. An entry is "file#group#test" for
 * the JSON Schema suite or "cts#name" for the JSONPath suite. */
static const struct {
  const char *id;
  const char *reason;
} expected_failures[] = {
    {NULL, NULL},
};

/* What this code achieved when the list above was written: a run that passes fewer cases
 * (for instance because cases went missing) fails too. */
#define MIN_PASS_JSONSCHEMA 1299
#define MIN_PASS_JSONPATH 703

struct tally {
  char name[128];
  int pass, fail;
};

struct report {
  struct tally *t;
  size_t n, cap;
  struct lt_buf failures; /* markdown lines */
  int unexpected, stale;
  int informational; /* optional tests: listed, never failing the run */
};

static struct tally *tally_get(struct report *r, const char *name) {
  for (size_t i = 0; i < r->n; i++)
    if (!strcmp(r->t[i].name, name)) return &r->t[i];
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 64;
    r->t = realloc(r->t, r->cap * sizeof *r->t);
    if (!r->t) abort();
  }
  struct tally *t = &r->t[r->n++];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  return t;
}

static const char *expected_reason(const char *id) {
  for (size_t i = 0; expected_failures[i].id; i++)
    if (!strcmp(expected_failures[i].id, id)) return expected_failures[i].reason;
  return NULL;
}

/* Records one outcome; `why` says what went wrong when it failed. */
static void outcome(struct report *r, struct tally **tallies, size_t nt, const char *id, int ok, const char *why) {
  const char *reason = expected_reason(id);
  for (size_t i = 0; i < nt; i++) {
    if (ok) tallies[i]->pass++;
    else tallies[i]->fail++;
  }
  if (!ok) {
    if (r->informational) {
      lt_buf_fmt(&r->failures, "- `%s`: %s\n", id, why ? why : "");
    } else if (reason) {
      lt_buf_fmt(&r->failures, "- `%s`: expected failure: %s\n", id, reason);
    } else {
      r->unexpected++;
      lt_buf_fmt(&r->failures, "- `%s`: **unexpected failure**: %s\n", id, why ? why : "");
      fprintf(stderr, "FAIL %s: %s\n", id, why ? why : "");
    }
  } else if (reason) {
    r->stale++;
    fprintf(stderr, "PASS of a listed expected failure (remove it from the list): %s\n", id);
  }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every failure line must read "<instance pointer>: <keyword>: <message>". */
static int errors_well_formed(const char *errors) {
  if (!errors || !*errors) return 0;
  const char *line = errors;
  while (*line) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    if (line[0] != '/') return 0;
    const char *c1 = strstr(line, ": ");
    if (!c1 || (size_t)(c1 - line) >= len) return 0;
    const char *c2 = strstr(c1 + 2, ": ");
    if (!c2 || (size_t)(c2 - line) >= len || c2 == c1 + 2) return 0;
    if (!end) break;
    line = end + 1;
  }
  return 1;
}

/* Runs every .json file of tests/draft2020-12/SUBDIR ("" for the required part). */
static int run_jsonschema(const char *shared, const char *subdir, const char *label, struct report *files,
                          struct report *all) {
  char dir[4096], remotes[4096];
  snprintf(dir, sizeof dir, "%s/testdata/json-schema-test-suite/tests/draft2020-12%s", shared, subdir);
  snprintf(remotes, sizeof remotes, "%s/testdata/json-schema-test-suite/remotes", shared);
  if (lt_schema_set_remote_map("http://localhost:1234/", remotes) != HUB_OK) return -1;
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "cannot open %s (is LT_SHARED_DIR right?)\n", dir);
    return -1;
  }
  char *names[256];
  size_t nn = 0;
  struct dirent *e;
  while ((e = readdir(d)) && nn < 256) {
    size_t len = strlen(e->d_name);
    if (len > 5 && !strcmp(e->d_name + len - 5, ".json")) names[nn++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, nn, sizeof names[0], cmp_str);
  for (size_t f = 0; f < nn; f++) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, names[f]);
    json_error_t jerr;
    /* suite data may hold \u0000 in strings (the hub refuses those in messages, not here) */
    json_t *groups = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    struct tally *tf = tally_get(files, names[f]);
    struct tally *ta = tally_get(all, label);
    struct tally *ts[2] = {tf, ta};
    if (!groups) {
      char id[512];
      snprintf(id, sizeof id, "%s", names[f]);
      outcome(files, ts, 2, id, 0, jerr.text);
      continue;
    }
    size_t gi;
    json_t *g;
    json_array_foreach(groups, gi, g) {
      const char *gdesc = json_string_value(json_object_get(g, "description"));
      char base[1024];
      snprintf(base, sizeof base, "https://lienthong.invalid/suite/%s/%zu.json", names[f], gi);
      struct lt_schema *schema = NULL;
      char err[2048];
      hub_err_t rc = lt_schema_new(json_object_get(g, "schema"), base, &schema, err, sizeof err);
      size_t ti;
      json_t *t;
      json_array_foreach(json_object_get(g, "tests"), ti, t) {
        char id[1024];
        snprintf(id, sizeof id, "%s#%s#%s", names[f], gdesc, json_string_value(json_object_get(t, "description")));
        int want = json_is_true(json_object_get(t, "valid"));
        if (rc != HUB_OK) {
          outcome(files, ts, 2, id, 0, err);
          continue;
        }
        char *errors = NULL;
        hub_err_t vr = lt_schema_validate(schema, json_object_get(t, "data"), &errors);
        hub_err_t quick = lt_schema_validate(schema, json_object_get(t, "data"), NULL);
        char why[1024] = "";
        int ok = (vr == HUB_OK) == want && quick == vr;
        if (ok && vr == HUB_ERR_SCHEMA && !errors_well_formed(errors)) {
          ok = 0;
          snprintf(why, sizeof why, "error list not in '<pointer>: <keyword>: <message>' form: %s", errors ? errors : "(none)");
        } else if (!ok) {
          snprintf(why, sizeof why, "expected %s, got %s%s%s", want ? "valid" : "invalid", vr == HUB_OK ? "valid" : "invalid",
                   errors ? ": " : "", errors ? errors : "");
          if (quick != vr) snprintf(why, sizeof why, "validation with and without an error list disagree");
        }
        for (char *p = why; *p; p++)
          if (*p == '\n') *p = ' ';
        outcome(files, ts, 2, id, ok, why);
        free(errors);
      }
      lt_schema_destroy(schema);
    }
    json_decref(groups);
  }
  for (size_t f = 0; f < nn; f++) free(names[f]);
  lt_schema_set_remote_map(NULL, NULL);
  return 0;
}

static int in_results(json_t *t, json_t *got, json_t *paths) {
  json_t *one = json_object_get(t, "result");
  if (one) {
    json_t *rp = json_object_get(t, "result_paths");
    return json_equal(got, one) && (!rp || json_equal(paths, rp));
  }
  size_t i;
  json_t *alt;
  json_array_foreach(json_object_get(t, "results"), i, alt) {
    json_t *rp = json_array_get(json_object_get(t, "results_paths"), i);
    if (json_equal(got, alt) && (!rp || json_equal(paths, rp))) return 1;
  }
  return 0;
}

static int run_jsonpath(const char *shared, struct report *tags, struct report *groups, struct report *all) {
  char path[4096];
  snprintf(path, sizeof path, "%s/testdata/jsonpath-cts/cts.json", shared);
  json_error_t jerr;
  json_t *cts = json_load_file(path, JSON_ALLOW_NUL, &jerr);
  if (!cts) {
    fprintf(stderr, "cannot load %s: %s\n", path, jerr.text);
    return -1;
  }
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(cts, "tests"), i, t) {
    const char *name = json_string_value(json_object_get(t, "name"));
    const char *sel = json_string_value(json_object_get(t, "selector"));
    struct tally *ts[10];
    size_t nt = 0;
    ts[nt++] = tally_get(all, "JSONPath CTS (RFC 9535)");
    json_t *tg = json_object_get(t, "tags");
    size_t k;
    json_t *tag;
    json_array_foreach(tg, k, tag) if (nt < 7) ts[nt++] = tally_get(tags, json_string_value(tag));
    if (json_array_size(tg) == 0) ts[nt++] = tally_get(tags, "(untagged)");
    /* and by the group its name starts with ("filter, ...", "name selector, ...") */
    char group[100];
    snprintf(group, sizeof group, "%s", name);
    char *comma = strchr(group, ',');
    if (comma) *comma = 0;
    ts[nt++] = tally_get(groups, group);
    int invalid = json_is_true(json_object_get(t, "invalid_selector"));
    if (invalid) ts[nt++] = tally_get(tags, "(invalid selector)");
    char id[1024], why[1024] = "";
    snprintf(id, sizeof id, "cts#%s", name);
    struct lt_jsonpath *jp = NULL;
    char err[256];
    hub_err_t rc = lt_jsonpath_compile(sel, &jp, err, sizeof err);
    int ok;
    if (invalid) {
      ok = rc == HUB_ERR_QUERY && strncmp(err, "column ", 7) == 0;
      if (!ok) snprintf(why, sizeof why, "selector %s accepted, must be refused", sel);
    } else if (rc != HUB_OK) {
      ok = 0;
      snprintf(why, sizeof why, "selector %s refused: %s", sel, err);
    } else {
      json_t *doc = json_object_get(t, "document");
      json_t *got = lt_jsonpath_query_new(jp, doc);
      json_t *paths = lt_jsonpath_paths_new(jp, doc);
      ok = in_results(t, got, paths);
      if (!ok) {
        char *g = json_dumps(got, JSON_COMPACT), *p = json_dumps(paths, JSON_COMPACT);
        snprintf(why, sizeof why, "selector %s gave %s at %s", sel, g ? g : "?", p ? p : "?");
        free(g);
        free(p);
      }
      json_decref(got);
      json_decref(paths);
    }
    lt_jsonpath_destroy(jp);
    outcome(tags, ts, nt, id, ok, why);
  }
  json_decref(cts);
  return 0;
}

static void write_table(FILE *f, const struct report *r, const char *what) {
  fprintf(f, "| %s | passed | failed | pass rate |\n|---|---:|---:|---:|\n", what);
  for (size_t i = 0; i < r->n; i++) {
    int total = r->t[i].pass + r->t[i].fail;
    fprintf(f, "| %s | %d | %d | %.1f%% |\n", r->t[i].name, r->t[i].pass, r->t[i].fail,
            total ? 100.0 * r->t[i].pass / total : 0.0);
  }
  fprintf(f, "\n");
}

static int write_report(const char *path, const struct report *all, const struct report *files,
                        const struct report *tags, const struct report *groups, const struct report *optional) {
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "cannot write %s\n", path);
    return -1;
  }
  fprintf(f,
          "# Conformance report\n\n"
          "Generated by the `conformance.suites` test (`tests/conformance/test_suites.c`) on every run;\n"
          "do not edit by hand. Suites: `../shared/testdata/json-schema-test-suite` (draft 2020-12,\n"
          "required tests, `tests/draft2020-12/*.json` without `optional/`; remote references to\n"
          "`http://localhost:1234/` served from its `remotes/` folder by a prefix-to-folder map, no\n"
          "network) and `../shared/testdata/jsonpath-cts/cts.json` (RFC 9535; results, normalized\n"
          "result paths and invalid selectors; where a case lists several acceptable results, any one\n"
          "passes).\n\n"
          "A JSON Schema case passes when the validity matches, the validator gives the same verdict\n"
          "with and without collecting errors, and for an invalid instance every error line reads\n"
          "`<instance pointer>: <keyword>: <message>`. A JSONPath case passes when the nodelist and\n"
          "its normalized paths equal the expected ones, or when an invalid selector is refused\n"
          "with a `column N:` message.\n\n## Summary\n\n");
  write_table(f, all, "suite");
  fprintf(f, "## JSON Schema draft 2020-12, per file\n\n");
  write_table(f, files, "file");
  fprintf(f, "## JSONPath CTS, per tag\n\nA case counts once under each of its tags.\n\n");
  write_table(f, tags, "tag");
  fprintf(f, "## JSONPath CTS, per group of cases (the start of the case name)\n\n");
  write_table(f, groups, "group");
  fprintf(f, "## Not passing\n\n");
  if (!files->failures.len && !tags->failures.len) fprintf(f, "Nothing: every case passes.\n");
  if (files->failures.s) fputs(files->failures.s, f);
  if (tags->failures.s) fputs(tags->failures.s, f);
  fprintf(f,
          "\n## Optional tests (informational)\n\n"
          "`tests/draft2020-12/optional/*.json` (not `optional/format/`, which asserts formats; the\n"
          "hub treats `format` as an annotation, the draft 2020-12 default). These do not fail the\n"
          "test: they cover behaviour outside draft 2020-12 proper (draft-07 `dependencies`, historic\n"
          "drafts, the format-assertion vocabulary) or beyond jansson (integers over 64 bits).\n\n");
  write_table(f, optional, "file");
  if (optional->failures.s) fputs(optional->failures.s, f);
  fclose(f);
  return 0;
}

int main(void) {
  const char *shared = getenv("LT_SHARED_DIR");
  const char *src = getenv("LT_SOURCE_DIR");
  if (!shared || !*shared) {
    fprintf(stderr, "LT_SHARED_DIR is not set: it must point at the shared folder holding testdata/ (ctest sets it)\n");
    return 1;
  }
  struct report all = {0}, files = {0}, tags = {0}, groups = {0}, optional = {.informational = 1};
  if (run_jsonschema(shared, "", "JSON Schema draft 2020-12", &files, &all) < 0 ||
      run_jsonpath(shared, &tags, &groups, &all) < 0 ||
      run_jsonschema(shared, "/optional", "JSON Schema draft 2020-12 optional/ (informational)", &optional, &all) < 0) {
    fprintf(stderr, "the test suites are missing under %s/testdata\n", shared);
    return 1;
  }
  int rc = 0;
  char path[4096];
  if (src && *src) {
    snprintf(path, sizeof path, "%s/docs/conformance.md", src);
    if (write_report(path, &all, &files, &tags, &groups, &optional) < 0) rc = 1;
  }
  if (write_report("conformance.md", &all, &files, &tags, &groups, &optional) < 0) rc = 1;
  for (size_t i = 0; i < all.n; i++)
    printf("%s: %d passed, %d failed\n", all.t[i].name, all.t[i].pass, all.t[i].fail);
  int unexpected = files.unexpected + tags.unexpected, stale = files.stale + tags.stale;
  const struct tally *ts = tally_get(&all, "JSON Schema draft 2020-12"), *tp = tally_get(&all, "JSONPath CTS (RFC 9535)");
  if (ts->pass < MIN_PASS_JSONSCHEMA || tp->pass < MIN_PASS_JSONPATH) {
    printf("pass counts fell below the recorded ones (%d JSON Schema, %d JSONPath)\n", MIN_PASS_JSONSCHEMA,
           MIN_PASS_JSONPATH);
    rc = 1;
  }
  if (unexpected) printf("%d unexpected failures\n", unexpected);
  if (stale) printf("%d listed expected failures now pass: shorten the list\n", stale);
  if (unexpected || stale) rc = 1;
  free(all.t);
  free(files.t);
  free(tags.t);
  free(groups.t);
  free(optional.t);
  free(optional.failures.s);
  free(files.failures.s);
  free(tags.failures.s);
  return rc;
}
