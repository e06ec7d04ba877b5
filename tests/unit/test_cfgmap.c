/* Config maps: scalar parsers, defaults, types, bounds, unknown keys, positions, docs and schema. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hub/core/cfgmap.h"
#include "hub/core/config.h"

struct sample {
  char *name;
  int64_t count;
  int flag;
  int64_t wait_ms;
  struct hub_duration_range backoff;
  int64_t size;
  int mode;
  struct hub_str_list tags;
  struct {
    char *inner;
  } sub;
};

#define S(f) offsetof(struct sample, f)
static const struct hub_cfg_entry sub_entries[] = {{"inner", HUB_CFG_STR, 0, "dflt", 0, "inner value"}, {NULL}};
static const struct hub_cfg_map sub_map = {"sub", sub_entries};
static const struct hub_cfg_entry entries[] = {
    {"name", HUB_CFG_STR, S(name), NULL, 1, "a required name"},
    {"count", HUB_CFG_INT, S(count), "3", 0, "bounded count", NULL, NULL, 0, 10},
    {"flag", HUB_CFG_BOOL, S(flag), "false", 0, "a flag"},
    {"wait", HUB_CFG_DURATION, S(wait_ms), "2s", 0, "a duration"},
    {"backoff", HUB_CFG_DURATION_RANGE, S(backoff), "100ms..1m", 0, "a range"},
    {"size", HUB_CFG_SIZE, S(size), "1MiB", 0, "a size"},
    {"mode", HUB_CFG_ENUM, S(mode), "fast", 0, "a mode", "slow|fast|auto"},
    {"tags", HUB_CFG_STR_LIST, S(tags), NULL, 0, "tags"},
    {"sub", HUB_CFG_OBJECT, S(sub), NULL, 0, "nested", NULL, &sub_map},
    {NULL},
};
static const struct hub_cfg_map map = {"sample", entries};

/* A step-like map: a scalar fills `file`; other keys are headers; a rule between two options. */
struct step_like {
  char *file;
  int64_t lo_ms, hi_ms;
  struct hub_str_map rest;
};
#define L(f) offsetof(struct step_like, f)

static hub_err_t lohi_check(const void *cfg, const struct hub_node *node, const struct hub_node *at, char *errbuf,
                            size_t errbuf_size) {
  const struct step_like *l = cfg;
  if (l->lo_ms <= l->hi_ms) return HUB_OK;
  return hub_node_error(hub_cfg_value_at(node, at, "lo"), errbuf, errbuf_size, "'lo' must not be above 'hi'");
}

static const struct hub_cfg_entry like_entries[] = {
    {"file", HUB_CFG_STR, L(file), NULL, 1, "a file"},
    {"lo", HUB_CFG_DURATION, L(lo_ms), "1s", 0, "low", NULL, NULL, 0, 60000},
    {"hi", HUB_CFG_DURATION, L(hi_ms), "5s", 0, "high", NULL, NULL, 1000, 3600000},
    {"NAME", HUB_CFG_STR_MAP, L(rest), NULL, 0, "any other key"},
    {NULL},
};
static const struct hub_cfg_constraint like_rules[] = {{"`lo` <= `hi`", "lo", "{lo: 6s}", "{lo: 5s}"}, {NULL}};
static const struct hub_cfg_map like_map = {"like", like_entries, .scalar_key = "file", .rest_key = "NAME",
                                            .usage = "`- like: FILE`", .check = lohi_check,
                                            .constraints = like_rules};

static hub_err_t apply_like(const char *yaml, struct step_like *l, char *err, size_t n) {
  memset(l, 0, sizeof *l);
  struct hub_node *root = hub_node_load_string("l.yaml", yaml, strlen(yaml), err, n);
  if (!root) return HUB_ERR_CONFIG;
  hub_err_t rc = hub_cfg_map_apply(&like_map, root, root, l, err, n);
  hub_node_destroy(root);
  return rc;
}

static void test_step_like(void) {
  char err[512];
  struct step_like l;
  CHECK(apply_like("x.json\n", &l, err, sizeof err) == HUB_OK);
  CHECK_STR(l.file, "x.json");
  CHECK(l.lo_ms == 1000 && l.hi_ms == 5000 && l.rest.n == 0);
  hub_cfg_map_release(&like_map, &l);
  CHECK(apply_like("{file: y, lo: 2s, a.b: c, d: '5'}\n", &l, err, sizeof err) == HUB_OK);
  CHECK_STR(l.file, "y");
  CHECK(l.lo_ms == 2000 && l.rest.n == 2);
  CHECK_STR(hub_str_map_get(&l.rest, "a.b"), "c");
  CHECK_STR(hub_str_map_get(&l.rest, "d"), "5");
  CHECK(hub_str_map_get(&l.rest, "file") == NULL);
  hub_cfg_map_release(&like_map, &l);
  CHECK(l.rest.n == 0 && l.file == NULL);
  CHECK(apply_like("[x]\n", &l, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "l.yaml:1:1: like takes a mapping or a scalar, not a list (write `- like: FILE`)");
  hub_cfg_map_release(&like_map, &l);
  CHECK(apply_like("{file: y, a: [1]}\n", &l, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "l.yaml:1:14: 'a' must have a scalar value, not a list");
  hub_cfg_map_release(&like_map, &l);
  CHECK(apply_like("{a: b}\n", &l, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "missing required key 'file' in like");
  hub_cfg_map_release(&like_map, &l);
  /* bounds are shown as written; the check runs after the entries, at the option it blames */
  CHECK(apply_like("{file: y, lo: 2m}\n", &l, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "l.yaml:1:15: 'lo' must be between 0 and 1m, got '2m'");
  hub_cfg_map_release(&like_map, &l);
  CHECK(apply_like("{file: y,\n hi: 2s,\n lo: 3s}\n", &l, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "l.yaml:3:6: 'lo' must not be above 'hi'");
  hub_cfg_map_release(&like_map, &l);

  char *schema = hub_cfg_map_schema_new(&like_map);
  CHECK_CONTAINS(schema, "\"anyOf\"");
  CHECK_CONTAINS(schema, "\"x-fills\": \"file\"");
  CHECK_CONTAINS(schema, "\"minimum\": 1000");
  CHECK_CONTAINS(schema, "\"maximum\": 3600000");
  CHECK_CONTAINS(schema, "\"x-constraints\"");
  CHECK_CONTAINS(schema, "\"breaks\": \"{lo: 6s}\"");
  CHECK(strstr(schema, "\"NAME\"") == NULL);
  free(schema);
  char *md = NULL;
  size_t mdlen = 0;
  FILE *f = open_memstream(&md, &mdlen);
  hub_cfg_map_write_markdown(&like_map, f);
  fclose(f);
  CHECK_CONTAINS(md, "| `hi` | duration, `1s`..`1h` | `5s` | no | high |");
  CHECK_CONTAINS(md, "| `NAME` | string (any other key) |  | no | any other key |");
  CHECK_CONTAINS(md, "\nConstraints (`lint` and `run` refuse a configuration that breaks one, with file:line:col):\n\n- `lo` <= `hi`\n");
  free(md);
}

static hub_err_t apply_text(const char *yaml, struct sample *s, char *err, size_t n) {
  memset(s, 0, sizeof *s);
  struct hub_node *root = hub_node_load_string("t.yaml", yaml, strlen(yaml), err, n);
  if (!root) return HUB_ERR_CONFIG;
  hub_err_t rc = hub_cfg_map_apply(&map, root, root, s, err, n);
  hub_node_destroy(root);
  return rc;
}

int main(void) {
  int64_t v;
  struct hub_duration_range r;
  int b;
  CHECK(hub_parse_duration_ms("250ms", &v) == 0 && v == 250);
  CHECK(hub_parse_duration_ms("5s", &v) == 0 && v == 5000);
  CHECK(hub_parse_duration_ms("1.5s", &v) == 0 && v == 1500);
  CHECK(hub_parse_duration_ms("2m", &v) == 0 && v == 120000);
  CHECK(hub_parse_duration_ms("1h", &v) == 0 && v == 3600000);
  CHECK(hub_parse_duration_ms("1d", &v) == 0 && v == 86400000);
  CHECK(hub_parse_duration_ms("40", &v) == 0 && v == 40);
  CHECK(hub_parse_duration_ms("-5s", &v) < 0);
  CHECK(hub_parse_duration_ms("5 s", &v) < 0);
  CHECK(hub_parse_duration_ms("5sec", &v) < 0);
  CHECK(hub_parse_duration_ms("", &v) < 0);
  CHECK(hub_parse_duration_ms("s", &v) < 0);
  CHECK(hub_parse_duration_range("200ms..30s", &r) == 0 && r.min_ms == 200 && r.max_ms == 30000);
  CHECK(hub_parse_duration_range("30s..200ms", &r) < 0);
  CHECK(hub_parse_duration_range("200ms", &r) < 0);
  CHECK(hub_parse_duration_range("..1s", &r) < 0);
  CHECK(hub_parse_size("64KiB", &v) == 0 && v == 65536);
  CHECK(hub_parse_size("1MiB", &v) == 0 && v == 1048576);
  CHECK(hub_parse_size("10KB", &v) == 0 && v == 10000);
  CHECK(hub_parse_size("512", &v) == 0 && v == 512);
  CHECK(hub_parse_size("1.5XB", &v) < 0);
  CHECK(hub_parse_int("42", &v) == 0 && v == 42);
  CHECK(hub_parse_int("-7", &v) == 0 && v == -7);
  CHECK(hub_parse_int("4x", &v) < 0);
  CHECK(hub_parse_int(" 4", &v) < 0);
  CHECK(hub_parse_int("99999999999999999999", &v) < 0);
  CHECK(hub_parse_bool("true", &b) == 0 && b == 1);
  CHECK(hub_parse_bool("off", &b) == 0 && b == 0);
  CHECK(hub_parse_bool("True1", &b) < 0);

  char err[512];
  struct sample s;
  CHECK(apply_text("name: x\n", &s, err, sizeof err) == HUB_OK);
  CHECK_STR(s.name, "x");
  CHECK(s.count == 3 && s.flag == 0 && s.wait_ms == 2000 && s.backoff.min_ms == 100 && s.backoff.max_ms == 60000);
  CHECK(s.size == 1048576 && s.mode == 1 && s.tags.n == 0);
  CHECK_STR(s.sub.inner, "dflt");
  hub_cfg_map_release(&map, &s);

  CHECK(apply_text("name: y\ncount: 10\nflag: yes\nwait: 250ms\nmode: auto\ntags: [a, b]\nsub: {inner: z}\n", &s, err,
                   sizeof err) == HUB_OK);
  CHECK(s.count == 10 && s.flag == 1 && s.wait_ms == 250 && s.mode == 2 && s.tags.n == 2);
  CHECK(s.tags.n == 2 && !strcmp(s.tags.v[1], "b"));
  CHECK_STR(s.sub.inner, "z");
  hub_cfg_map_release(&map, &s);
  CHECK(apply_text("name: y\ntags: one\n", &s, err, sizeof err) == HUB_OK && s.tags.n == 1);
  hub_cfg_map_release(&map, &s);

  /* Errors carry file:line:col and say what is wrong. */
  CHECK(apply_text("count: 1\n", &s, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "t.yaml:1:1: missing required key 'name' in sample");
  hub_cfg_map_release(&map, &s);
  CHECK(apply_text("name: x\ncount: 11\n", &s, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "t.yaml:2:8: 'count' must be between 0 and 10");
  hub_cfg_map_release(&map, &s);
  CHECK(apply_text("name: x\ncount: \"5\"\n", &s, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "must be an integer");
  hub_cfg_map_release(&map, &s);
  CHECK(apply_text("name: x\nwiat: 5s\n", &s, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "t.yaml:2:1: unknown key 'wiat' in sample");
  hub_cfg_map_release(&map, &s);
  CHECK(apply_text("name: x\nmode: turbo\n", &s, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "'mode' must be one of slow|fast|auto, got 'turbo'");
  hub_cfg_map_release(&map, &s);
  CHECK(apply_text("name: [x]\n", &s, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "t.yaml:1:7: 'name' must be a string, not a list");
  hub_cfg_map_release(&map, &s);
  CHECK(apply_text("name: x\nsub: {inner: a, outer: b}\n", &s, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "unknown key 'outer' in sub");
  hub_cfg_map_release(&map, &s);
  CHECK(apply_text("name: x\nname: y\n", &s, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "t.yaml:2:1: duplicate key 'name'");
  CHECK(apply_text("- a\n- b\n", &s, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "sample must be a mapping");
  hub_cfg_map_release(&map, &s);

  /* Docs and schema come from the same table. */
  char *schema = hub_cfg_map_schema_new(&map);
  CHECK_CONTAINS(schema, "\"additionalProperties\": false");
  CHECK_CONTAINS(schema, "\"required\": [\n    \"name\"\n  ]");
  CHECK_CONTAINS(schema, "\"enum\": [\n        \"slow\",\n        \"fast\",\n        \"auto\"");
  free(schema);
  char *md = NULL;
  size_t mdlen = 0;
  FILE *f = open_memstream(&md, &mdlen);
  hub_cfg_map_write_markdown(&map, f);
  fclose(f);
  CHECK_CONTAINS(md, "| `count` | integer, `0`..`10` | `3` | no | bounded count |");
  CHECK_CONTAINS(md, "| `sub.inner` | string | `dflt` | no | inner value |");
  CHECK_CONTAINS(md, "one of `slow/fast/auto`");
  free(md);

  test_step_like();

  CHECK(hub_topic_name_valid("dvcqg.sync.request"));
  CHECK(!hub_topic_name_valid("a b"));
  CHECK(!hub_topic_name_valid(".."));
  CHECK(!hub_topic_name_valid(""));
  return check_done();
}
