/* The map step and lt_map_run never give partial output: on failure the output pointer and the
 * record (value, headers) are untouched; on success the value, content-type and lt.parent are
 * set. Also: a mapping runs the same from several threads at once. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hub/core/registry.h"
#include "hub/core/step_chain.h"
#include "mappings/shape/map.h"

static char dir[2048];

static struct lt_map *load(const char *rel) {
  char path[4096], why[1024];
  struct lt_map *m = NULL;
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  if (lt_map_load_file(path, &m, why, sizeof why)) fprintf(stderr, "%s\n", why);
  return m;
}

static const char good[] =
    "{\"event\":\"dossier.submitted\",\"dossierCode\":\"000.00.01.H22-240115-0001\","
    "\"procedure\":{\"code\":\"3.000181.000.00.00.H22\",\"name\":\"x\"},\"applicant\":{\"type\":\"citizen\",\"name\":\"A\"},"
    "\"agency\":{\"code\":\"000.00.01.H22\",\"name\":\"S\"},\"channel\":\"online\",\"status\":\"received\","
    "\"dates\":{\"received\":\"2024-01-15T08:30:00+07:00\",\"due\":\"2024-01-22T17:00:00+07:00\"}}";
/* valid for the input contract, but 30 February fails a rule late, after most output was built */
static const char late_failure[] =
    "{\"event\":\"dossier.submitted\",\"dossierCode\":\"000.00.01.H22-240115-0001\","
    "\"procedure\":{\"code\":\"3.000181.000.00.00.H22\",\"name\":\"x\"},\"applicant\":{\"type\":\"citizen\",\"name\":\"A\"},"
    "\"agency\":{\"code\":\"000.00.01.H22\",\"name\":\"S\"},\"channel\":\"online\",\"status\":\"received\","
    "\"dates\":{\"received\":\"2024-01-15T08:30:00+07:00\",\"due\":\"2024-02-30T17:00:00+07:00\"}}";

static void *worker(void *arg) {
  struct lt_map *m = arg;
  long bad = 0;
  for (int i = 0; i < 200; i++) {
    unsigned char *out = NULL;
    size_t n = 0;
    char why[512];
    if (lt_map_run(m, good, sizeof good - 1, 0, &out, &n, why, sizeof why) || !strstr((char *)out, "\"NgayHenTra\":\"20240122170000\""))
      bad++;
    free(out);
  }
  return (void *)bad;
}

int main(void) {
  const char *src = getenv("LT_SOURCE_DIR");
  snprintf(dir, sizeof dir, "%s", src ? src : LT_SOURCE_DIR);
  struct lt_map *m = load("mappings/dvcqg/dong-bo-ho-so.yaml");
  CHECK(m != NULL);
  if (!m) return check_done();

  unsigned char *out = (unsigned char *)"untouched";
  size_t n = 7;
  char why[1024];
  hub_err_t rc = lt_map_run(m, late_failure, sizeof late_failure - 1, 0, &out, &n, why, sizeof why);
  CHECK(rc == HUB_ERR_MAP);
  CHECK_STR((char *)out, "untouched");
  CHECK(n == 7);
  CHECK_CONTAINS(why, "dong-bo-ho-so.yaml:");
  CHECK_CONTAINS(why, "input $['dates']['due']");
  CHECK_CONTAINS(why, "not a real date");

  /* the step: a rejected record keeps its value and headers */
  const struct hub_step_ops *ops = hub_registry_get_step("map");
  CHECK(ops != NULL);
  struct hub_node arg = {.kind = HUB_NODE_SCALAR, .file = "test", .line = 1, .col = 1,
                         .scalar = "mappings/dvcqg/dong-bo-ho-so.yaml"};
  struct hub_step_env env = {.base_dir = dir, .route = "test"};
  struct hub_step *state = NULL;
  CHECK(ops && hub_step_create(ops, &arg, &env, &state, why, sizeof why) == HUB_OK);
  struct hub_msg *msg = hub_msg_new("k", 1, late_failure, sizeof late_failure - 1);
  hub_msg_header_set_str(msg, "content-type", "application/vnd.onestop+json");
  struct hub_step_outcome o = {0};
  CHECK(hub_step_process(state, msg, &o) == HUB_STEP_REJECT);
  CHECK(o.code == HUB_ERR_MAP);
  CHECK_CONTAINS(o.reason, "not a real date");
  CHECK(msg->value_len == sizeof late_failure - 1 && !memcmp(msg->value, late_failure, msg->value_len));
  CHECK_STR(hub_msg_header_get_str(msg, "content-type"), "application/vnd.onestop+json");
  CHECK(hub_msg_header_get_str(msg, "lt.parent") == NULL);
  hub_step_outcome_clear(&o);
  hub_msg_destroy(msg);

  /* a good record: whole output, content-type and lt.parent (SHA-256 of the input) */
  msg = hub_msg_new("k", 1, good, sizeof good - 1);
  char parent[65];
  hub_sha256_hex(good, sizeof good - 1, parent);
  CHECK(hub_step_process(state, msg, &o) == HUB_STEP_OK);
  CHECK_CONTAINS((char *)msg->value, "\"service\":\"DongBoHoSoMC\"");
  CHECK_STR(hub_msg_header_get_str(msg, "content-type"), "application/json");
  CHECK_STR(hub_msg_header_get_str(msg, "lt.parent"), parent);
  hub_msg_destroy(msg);
  hub_step_destroy(state);

  /* one loaded mapping, four threads */
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, m);
  long bad = 0;
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    bad += (long)r;
  }
  CHECK(bad == 0);
  lt_map_destroy(m);
  return check_done();
}
