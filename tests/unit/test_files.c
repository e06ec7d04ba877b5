/* The one-each helpers: paths against a config's folder, whole-file reads, a plugin's options
 * filled by its map, and a step created and run through the one steps-list parser. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hub/core/files.h"
#include "hub/core/plugin.h"
#include "hub/core/registry.h"
#include "hub/core/step_chain.h"

static void check_path(char *got, const char *want) {
  CHECK_STR(got, want);
  free(got);
}

static struct hub_node *yaml(const char *text) {
  char err[256];
  struct hub_node *n = hub_node_load_string("t.yaml", text, strlen(text), err, sizeof err);
  if (!n) fprintf(stderr, "%s\n", err);
  return n;
}

int main(void) {
  check_path(hub_path_resolve_new("etc/hub", "keys/a.pem"), "etc/hub/keys/a.pem");
  check_path(hub_path_resolve_new("etc/hub", "/abs/a.pem"), "/abs/a.pem");
  check_path(hub_path_resolve_new("", "a.pem"), "a.pem");
  check_path(hub_path_resolve_new(NULL, "a.pem"), "a.pem");
  check_path(hub_path_dir_new("etc/hub/hub.yaml"), "etc/hub");
  check_path(hub_path_dir_new("hub.yaml"), ".");
  check_path(hub_path_dir_new("/hub.yaml"), "/");
  check_path(hub_path_beside_new("mappings/x/m.yaml", "s.xsl"), "mappings/x/s.xsl");
  check_path(hub_path_beside_new("m.yaml", "s.xsl"), "s.xsl");
  check_path(hub_path_beside_new("/m.yaml", "s.xsl"), "/s.xsl");
  check_path(hub_path_beside_new("a/m.yaml", "/s.xsl"), "/s.xsl");

  char tmpl[] = "/tmp/lt-files-XXXXXX", err[512], *buf = NULL;
  size_t len = 0;
  int fd = mkstemp(tmpl);
  CHECK(fd >= 0 && write(fd, "hello\n", 6) == 6);
  close(fd);
  CHECK(hub_file_read(tmpl, 6, &buf, &len, err, sizeof err) == HUB_OK && len == 6 && !strcmp(buf, "hello\n"));
  free(buf);
  CHECK(hub_file_read(tmpl, 5, &buf, &len, err, sizeof err) == HUB_ERR_TOO_LARGE && !buf);
  CHECK_CONTAINS(err, ": larger than 5 bytes");
  CHECK(hub_file_read("/nonexistent/x", 5, &buf, &len, err, sizeof err) == HUB_ERR_IO);
  CHECK_STR(err, "/nonexistent/x: No such file or directory");
  CHECK(hub_file_read("/proc/self/stat", 65536, &buf, &len, err, sizeof err) == HUB_OK && len > 0); /* no size */
  free(buf);
  /* a secret: trailing line ends dropped (inner bytes kept), too short refused naming the file */
  fd = open(tmpl, O_WRONLY | O_TRUNC);
  CHECK(fd >= 0 && write(fd, "s3cr\net\r\n\n", 10) == 10);
  close(fd);
  CHECK(hub_secret_read(tmpl, 64, 7, &buf, &len, err, sizeof err) == HUB_OK && len == 7 && !strcmp(buf, "s3cr\net"));
  hub_secret_free(buf, len);
  CHECK(hub_secret_read(tmpl, 64, 8, &buf, &len, err, sizeof err) == HUB_ERR_CONFIG && !buf && len == 0);
  CHECK_CONTAINS(err, ": the secret must have at least 8 bytes");
  CHECK_CONTAINS(err, tmpl);
  CHECK(hub_secret_read(tmpl, 5, 1, &buf, &len, err, sizeof err) == HUB_ERR_TOO_LARGE && !buf);
  hub_secret_free(NULL, 3);
  unlink(tmpl);

  /* A plugin's options: none written, a scalar for its scalar_key, a mapping; errors placed. */
  const struct hub_plugin_info *validate = hub_registry_get_info(HUB_PLUGIN_STEP, "validate");
  CHECK(validate != NULL);
  struct hub_node *doc = yaml("a: x.json\nb: {schema: y.json}\nc:\nd: ~\ne: {}\n");
  void *cfg = NULL;
  CHECK(hub_plugin_options_new(validate, hub_node_get(doc, "a"), NULL, &cfg, err, sizeof err) == HUB_OK);
  CHECK_STR(*(char **)cfg, "x.json");
  hub_plugin_options_destroy(validate, cfg);
  CHECK(hub_plugin_options_new(validate, hub_node_get(doc, "b"), NULL, &cfg, err, sizeof err) == HUB_OK);
  CHECK_STR(*(char **)cfg, "y.json");
  hub_plugin_options_destroy(validate, cfg);
  CHECK(hub_plugin_options_new(validate, hub_node_get(doc, "c"), NULL, &cfg, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "t.yaml:3:");
  CHECK_CONTAINS(err, "missing required key 'schema' in validate");
  hub_plugin_options_destroy(validate, cfg);
  const struct hub_plugin_info *pt = hub_registry_get_info(HUB_PLUGIN_STEP, "passthrough");
  for (const char *k = "cde"; *k; k++) {
    char key[2] = {*k, 0};
    CHECK(hub_plugin_options_new(pt, hub_node_get(doc, key), NULL, &cfg, err, sizeof err) == HUB_OK);
    hub_plugin_options_destroy(pt, cfg);
  }
  CHECK(hub_plugin_options_new(pt, hub_node_get(doc, "b"), NULL, &cfg, err, sizeof err) == HUB_ERR_CONFIG);
  CHECK_CONTAINS(err, "t.yaml:2:5: unknown key 'schema' in passthrough");
  hub_plugin_options_destroy(pt, cfg);
  hub_node_destroy(doc);

  /* The steps-list parser: what lint, routes and `lienthong test` share. */
  struct hub_step_env env = {.route = "t"};
  struct hub_step_chain *chain = NULL;
  doc = yaml("- set-header: {lt.type: a, x-b: '2'}\n- passthrough:\n");
  CHECK(hub_step_chain_create(doc, &env, &chain, err, sizeof err) == HUB_OK);
  struct hub_msg *m = hub_msg_new(NULL, 0, "{}", 2);
  struct hub_step_outcome out = {0};
  char stage[96];
  CHECK(chain && m && hub_step_chain_run(chain, m, &out, stage, sizeof stage) == HUB_STEP_OK);
  CHECK_STR(hub_msg_header_get_str(m, "lt.type"), "a");
  CHECK_STR(hub_msg_header_get_str(m, "x-b"), "2");
  hub_msg_destroy(m);
  hub_step_chain_destroy(chain);
  hub_node_destroy(doc);
  static const struct {
    const char *yaml, *want;
  } bad[] = {
      {"{a: b}\n", "t.yaml:1:1: 'steps' must be a list, not a mapping"},
      {"- passthrough\n", "t.yaml:1:3: a step must be a mapping with one key"},
      {"- passthru: {}\n", "t.yaml:1:3: unknown step 'passthru' (this build has: "},
      {"- set-header: {}\n", "t.yaml:1:15: set-header needs at least one HEADER"},
      {"- set-header: x\n", "t.yaml:1:15: set-header takes a mapping, not a scalar"},
      {"- validate: {schema: x.json, extra: 1}\n", "t.yaml:1:30: unknown key 'extra' in validate"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    doc = yaml(bad[i].yaml);
    chain = NULL;
    CHECK(hub_step_chain_create(doc, &env, &chain, err, sizeof err) == HUB_ERR_CONFIG && !chain);
    CHECK_CONTAINS(err, bad[i].want);
    hub_node_destroy(doc);
  }
  return check_done();
}
