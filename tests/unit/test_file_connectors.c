/* The folder watcher (hub/io/folder_watch.h) and the file connectors (connectors/file) on the
 * `memory` transport: no broker.
 * - watcher: inotify reports a file renamed in or closed after writing at once (long before
 *   `settle`); with rescans only, a file written slowly in place is reported only once it has
 *   kept its size and mtime for `settle`; temp names, dot-files and subfolders never are; a
 *   file left in the folder is reported again.
 * - file-in: every file once, with its name, digest and content type; moved to done/ only after
 *   its commit (commits failing: the file stays, nothing is in the topic); a restart with a
 *   cursor listing a committed-but-not-moved file moves it without a second record, while a
 *   listed name with other content is emitted; the same name with new content is emitted
 *   again; oversized files go to failed/ with a note; the cursor ends empty; a folder that is
 *   not there yet makes the source unhealthy (saying why), not stopped; a move that fails
 *   (another file system) leaves the file emitted once, never again.
 * - file-out: each record to its file; a reader never sees a file half-written; a temp file a
 *   killed hub left is removed; unsafe names
 *   from the template and permission errors go to the DLQ naming template and value; a missing
 *   folder is RETRY until it exists; a redelivery (aborted commit) overwrites the same file. */
#include <dirent.h>
#include <jansson.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "memtest.h"
#include "hub/core/config.h"
#include "hub/core/files.h"
#include "hub/core/log.h"
#include "hub/core/metrics.h"
#include "hub/core/stop.h"
#include "hub/engine/route.h"
#include "hub/engine/source.h"
#include "hub/io/folder_watch.h"
#include "hub/transport/memory/memory.h"

static char dir[] = "/tmp/lt-filecon-XXXXXX";

static void path_of(char *out, size_t n, const char *sub, const char *name) {
  snprintf(out, n, "%s/%s%s%s", dir, sub, name ? "/" : "", name ? name : "");
}

static void write_file(const char *sub, const char *name, const char *content) {
  char p[600];
  path_of(p, sizeof p, sub, name);
  FILE *f = fopen(p, "w");
  if (f) {
    fputs(content, f);
    fclose(f);
  }
}

/* Written under a temp name, then renamed in (how a well-behaved producer drops a file). */
static void drop_file(const char *sub, const char *name, const char *content) {
  char tmp[300], from[600], to[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", name);
  write_file(sub, tmp, content);
  path_of(from, sizeof from, sub, tmp);
  path_of(to, sizeof to, sub, name);
  CHECK(rename(from, to) == 0);
}

static int exists(const char *sub, const char *name) {
  char p[600];
  path_of(p, sizeof p, sub, name);
  return access(p, F_OK) == 0;
}

/* Regular files in a folder whose names do not start with '.'. */
static int count_files(const char *sub) {
  char p[600];
  path_of(p, sizeof p, sub, NULL);
  DIR *d = opendir(p);
  int n = 0;
  struct dirent *de;
  while (d && (de = readdir(d))) {
    struct stat st;
    char f[1200];
    snprintf(f, sizeof f, "%s/%s", p, de->d_name);
    n += de->d_name[0] != '.' && stat(f, &st) == 0 && S_ISREG(st.st_mode);
  }
  if (d) closedir(d);
  return n;
}

/* Takes names for up to timeout_ms; returns how many, and whether `name` was among them. */
static int take_for(struct hub_folder_watch *w, int timeout_ms, const char *name, int *seen) {
  int got = 0;
  double t0 = now_ms();
  while (now_ms() - t0 < timeout_ms) {
    char **v;
    size_t n;
    if (hub_folder_watch_take(w, 100, 50, &v, &n) != HUB_OK) return -1;
    for (size_t i = 0; i < n; i++) {
      if (name && !strcmp(v[i], name)) *seen = 1;
      free(v[i]);
    }
    free(v);
    got += (int)n;
    if (name && *seen) break;
  }
  return got;
}

static void test_watch_inotify(void) {
  char in[600], e[256];
  path_of(in, sizeof in, "w1", NULL);
  CHECK(mkdir(in, 0755) == 0);
  path_of(in, sizeof in, "w1", "done");
  CHECK(mkdir(in, 0755) == 0);
  path_of(in, sizeof in, "w1", NULL);
  write_file("w1", "before.json", "{}"); /* there at start: the first rescan, after settle */
  const char *temps[] = {"*.tmp", "*.part"};
  struct hub_folder_watch_opts o = {in, "*.json", temps, 2, 10000, 60000, 1};
  struct hub_folder_watch *w = NULL;
  CHECK(hub_folder_watch_create(&o, &w, e, sizeof e) == HUB_OK);
  if (!w) return;
  CHECK(hub_folder_watch_start(w, e, sizeof e) == HUB_OK);
  CHECK(hub_folder_watch_inotify(w));
  /* A rename in and a close after writing: reported at once although settle is 10s. */
  double t0 = now_ms();
  int seen = 0;
  drop_file("w1", "a.json", "{\"a\":1}");
  CHECK(take_for(w, 3000, "a.json", &seen) == 1 && seen);
  seen = 0;
  write_file("w1", "b.json", "{\"b\":1}");
  CHECK(take_for(w, 3000, "b.json", &seen) == 1 && seen);
  CHECK(now_ms() - t0 < 5000);
  /* Never: temp names, dot-files, names not matching, files in subfolders, subfolders. */
  write_file("w1", "c.part", "x");
  write_file("w1", ".hidden.json", "x");
  write_file("w1", "notes.txt", "x");
  write_file("w1/done", "d.json", "x");
  path_of(in, sizeof in, "w1", "sub.json");
  CHECK(mkdir(in, 0755) == 0);
  seen = 0;
  CHECK(take_for(w, 600, NULL, &seen) == 0);
  /* A file left there comes back at a rescan (level-triggered): asked for now. */
  hub_folder_watch_rescan(w);
  seen = 0;
  CHECK(take_for(w, 1000, "a.json", &seen) >= 1 && seen);
  char why[256] = "", gone[600];
  CHECK(hub_folder_watch_health(w, why, sizeof why) == 1);
  /* The folder renamed away: unhealthy, saying why; back: the watch is re-armed on the path. */
  path_of(gone, sizeof gone, "w1-gone", NULL);
  path_of(in, sizeof in, "w1", NULL);
  CHECK(rename(in, gone) == 0);
  t0 = now_ms();
  while (hub_folder_watch_health(w, why, sizeof why) && now_ms() - t0 < 3000) sleep_ms(20);
  CHECK_CONTAINS(why, "cannot read folder");
  CHECK(mkdir(in, 0755) == 0);
  t0 = now_ms();
  while (!(hub_folder_watch_health(w, why, sizeof why) && hub_folder_watch_inotify(w)) && now_ms() - t0 < 3000)
    sleep_ms(20);
  CHECK(hub_folder_watch_health(w, why, sizeof why) == 1 && hub_folder_watch_inotify(w));
  seen = 0;
  drop_file("w1", "back.json", "{}");
  CHECK(take_for(w, 3000, "back.json", &seen) == 1 && seen);
  hub_folder_watch_destroy(w);
}

struct slow_writer {
  char path[600];
  double last_write_ms;
};

/* 8 chunks 100 ms apart through one open descriptor, as a slow producer writes in place. */
static void *slow_write(void *p) {
  struct slow_writer *sw = p;
  FILE *f = fopen(sw->path, "w");
  for (int i = 0; f && i < 8; i++) {
    fprintf(f, "chunk %d\n", i);
    fflush(f);
    sw->last_write_ms = now_ms();
    sleep_ms(100);
  }
  if (f) fclose(f);
  return NULL;
}

static void test_watch_rescan(void) {
  char in[600], e[256];
  path_of(in, sizeof in, "w2", NULL);
  CHECK(mkdir(in, 0755) == 0);
  const char *temps[] = {"*.tmp"};
  struct hub_folder_watch_opts o = {in, NULL, temps, 1, 400, 50, 0};
  struct hub_folder_watch *w = NULL;
  CHECK(hub_folder_watch_create(&o, &w, e, sizeof e) == HUB_OK);
  if (!w) return;
  CHECK(hub_folder_watch_start(w, e, sizeof e) == HUB_OK);
  CHECK(!hub_folder_watch_inotify(w));
  struct slow_writer sw;
  path_of(sw.path, sizeof sw.path, "w2", "slow.xml");
  sw.last_write_ms = now_ms();
  pthread_t th;
  pthread_create(&th, NULL, slow_write, &sw);
  write_file("w2", "x.tmp", "never");
  /* While it grows (700 ms, rescans every 50 ms) it is never reported; then after settle. */
  int seen = 0;
  double t0 = now_ms();
  take_for(w, 3000, "slow.xml", &seen);
  double at = now_ms();
  pthread_join(th, NULL);
  CHECK(seen);
  CHECK(at - t0 >= 700 + 400 - 100);       /* not before the writer stopped and settle passed */
  CHECK(at - sw.last_write_ms >= 400 - 60); /* settle after the last change (mtime granularity) */
  seen = 0;
  CHECK(take_for(w, 600, "x.tmp", &seen) >= 1 && !seen); /* slow.xml again (left there), never x.tmp */
  hub_folder_watch_destroy(w);
}

/* ------------------------------------------------------------------------------------ file-in */

static const char *src_yaml =
    "hub: {transport: memory, instance: t, admin: {listen: ''}}\n"
    "connectors:\n"
    "  - {name: fin, type: file-in, topic: f.out, path: %s/in, poll_interval: 20ms, settle: 200ms,\n"
    "     rescan: 200ms, max_size: 1KiB, batch: 7}\n";

static struct hub_source_runner *start_source(struct hub_config **cfg) {
  char yaml[1024], e[1024];
  snprintf(yaml, sizeof yaml, src_yaml, dir);
  *cfg = config_load_in(dir, yaml);
  struct hub_source_runner *s = NULL;
  CHECK(*cfg && hub_source_runner_create(*cfg, &(*cfg)->sources[0], T, &s, e, sizeof e) == HUB_OK);
  if (s) CHECK(hub_source_runner_start(s) == HUB_OK);
  return s;
}

static void stop_source(struct hub_source_runner *s, struct hub_config *cfg) {
  hub_source_runner_destroy(s);
  hub_config_destroy(cfg);
}

static int wait_count(const char *topic, int n, int timeout_ms) {
  double t0 = now_ms();
  while (count(topic) < n && now_ms() - t0 < timeout_ms) sleep_ms(20);
  return count(topic) >= n;
}

static int records_with_key(const struct coll *c, const char *key) {
  int n = 0;
  for (int i = 0; i < c->n; i++) n += c->v[i]->key_len == strlen(key) && !memcmp(c->v[i]->key, key, c->v[i]->key_len);
  return n;
}

static const char *last_cursor(struct coll *cur) {
  coll_clear(cur);
  scan_topic(HUB_TOPIC_CURSORS, cur);
  for (int i = cur->n - 1; i >= 0; i--)
    if (cur->v[i]->key_len == 3 && !memcmp(cur->v[i]->key, "fin", 3)) return (const char *)cur->v[i]->value;
  return "";
}

static void test_source(void) {
  char p[600];
  path_of(p, sizeof p, "in", NULL);
  CHECK(mkdir(p, 0755) == 0);
  char big[2048];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  write_file("in", "big.bin", big);
  write_file("in", "early.csv", "a,b\n"); /* there before the start */
  write_file("in", "bad\xff.bin", "x");    /* a name the JSON cursor cannot hold */
  struct hub_config *cfg;
  struct hub_source_runner *s = start_source(&cfg);
  if (!s) return;
  for (int i = 0; i < 40; i++) {
    char name[32], body[64];
    snprintf(name, sizeof name, "f%02d.json", i);
    snprintf(body, sizeof body, "{\"n\":%d}", i);
    drop_file("in", name, body);
  }
  write_file("in", "stays.tmp", "temp");
  CHECK(wait_count("f.out", 41, 10000));
  double t0 = now_ms();
  while ((count_files("in/done") < 41 || count_files("in/failed") < 4) && now_ms() - t0 < 5000) sleep_ms(20);
  CHECK(count_files("in/done") == 41);
  CHECK(exists("in/failed", "big.bin") && exists("in/failed", "big.bin.error") && !exists("in", "big.bin"));
  CHECK(exists("in/failed", "bad\xff.bin") && exists("in/failed", "bad\xff.bin.error"));
  char note[600], *text = NULL;
  size_t tlen;
  path_of(note, sizeof note, "in/failed", "big.bin.error");
  if (hub_file_read(note, 4096, &text, &tlen, note, sizeof note) == HUB_OK)
    CHECK_CONTAINS(text, "big.bin: 2047 bytes, larger than max_size 1024 (connector fin, ");
  free(text);
  CHECK(exists("in", "stays.tmp") && count_files("in") == 1);
  struct coll out = {0};
  scan_topic("f.out", &out);
  CHECK(out.n == 41);
  int good = 0;
  for (int i = 0; i < out.n; i++) {
    const struct hub_msg *m = out.v[i];
    char key[64], sha[65];
    snprintf(key, sizeof key, "%.*s", (int)m->key_len, (const char *)m->key);
    hub_sha256_hex(m->value, m->value_len, sha);
    const char *ct = hub_msg_header_get_str(m, HUB_H_CONTENT_TYPE), *name = hub_msg_header_get_str(m, "lt.file.name");
    const char *want_ct = strstr(key, ".csv") ? "text/csv" : "application/json";
    char want_value[64] = "a,b\n";
    if (key[0] == 'f') snprintf(want_value, sizeof want_value, "{\"n\":%ld}", strtol(key + 1, NULL, 10));
    good += records_with_key(&out, key) == 1 && !strcmp((const char *)m->value, want_value) && name && !strcmp(name, key) && ct && !strcmp(ct, want_ct) &&
            hub_msg_header_get_str(m, "lt.file.sha256") && !strcmp(hub_msg_header_get_str(m, "lt.file.sha256"), sha) &&
            hub_msg_header_get_str(m, HUB_H_SOURCE) && !strcmp(hub_msg_header_get_str(m, HUB_H_SOURCE), "fin");
  }
  CHECK(good == 41);
  coll_clear(&out);

  /* Commits failing: the file stays in the folder, nothing in the topic, until they succeed. */
  hub_memory_fail_commits("lienthong.fin.t", 100000);
  drop_file("in", "held.json", "{\"held\":true}");
  sleep_ms(1500);
  CHECK(exists("in", "held.json") && !exists("in/done", "held.json"));
  CHECK(count("f.out") == 41);
  hub_memory_fail_commits("lienthong.fin.t", 0);
  CHECK(wait_count("f.out", 42, 10000));
  t0 = now_ms();
  while (!exists("in/done", "held.json") && now_ms() - t0 < 5000) sleep_ms(20);
  CHECK(exists("in/done", "held.json") && !exists("in", "held.json"));

  /* The same name with new content is new: emitted again; done/ keeps both. */
  drop_file("in", "f00.json", "{\"n\":\"again\"}");
  CHECK(wait_count("f.out", 43, 10000));
  scan_topic("f.out", &out);
  CHECK(records_with_key(&out, "f00.json") == 2);
  coll_clear(&out);
  t0 = now_ms();
  while (count_files("in/done") < 43 && now_ms() - t0 < 5000) sleep_ms(20);
  CHECK(count_files("in/done") == 43);
  sleep_ms(300);
  struct coll cur = {0};
  CHECK_STR(last_cursor(&cur), "{\"pending\":[]}"); /* bounded: nothing listed once moved */
  stop_source(s, cfg);

  /* A crash between commit and move: the cursor lists again.json (same content: moved, not
   * emitted) and other.json with another digest (new content: emitted). */
  char sha[65], cursor[400];
  hub_sha256_hex("{\"again\":1}", 11, sha);
  snprintf(cursor, sizeof cursor, "{\"pending\":[[\"again.json\",\"%s\"],[\"other.json\",\"%064d\"]]}", sha, 0);
  write_file("in", "again.json", "{\"again\":1}");
  write_file("in", "other.json", "{\"other\":1}");
  struct hub_transport_opts o = {"test", NULL, NULL, "test.cursor"};
  struct hub_transport *t = NULL;
  char e[256];
  struct hub_msg *cm = hub_msg_new("fin", 3, cursor, strlen(cursor));
  CHECK(T->open(NULL, &o, &t, e, sizeof e) == HUB_OK && T->begin(t) == HUB_OK &&
        T->produce(t, HUB_TOPIC_CURSORS, cm) == HUB_OK && T->commit(t) == HUB_OK);
  hub_msg_destroy(cm);
  if (t) T->close(t);
  s = start_source(&cfg);
  if (!s) return;
  CHECK(wait_count("f.out", 44, 10000));
  t0 = now_ms();
  while (count_files("in") > 1 && now_ms() - t0 < 5000) sleep_ms(20);
  sleep_ms(300);
  scan_topic("f.out", &out);
  CHECK(out.n == 44);
  CHECK(records_with_key(&out, "again.json") == 0 && records_with_key(&out, "other.json") == 1);
  CHECK(exists("in/done", "again.json") && exists("in/done", "other.json") && count_files("in") == 1);
  CHECK_STR(last_cursor(&cur), "{\"pending\":[]}");
  char *m = hub_metrics_render_new();
  CHECK_CONTAINS(m ? m : "", "lienthong_file_in_recovered_total 1\n");
  CHECK_CONTAINS(m ? m : "", "lienthong_file_in_failed_total 2\n");
  free(m);
  coll_clear(&out);
  coll_clear(&cur);
  stop_source(s, cfg);
  hub_metrics_reset();
}

/* A folder that is not there yet does not end the source: /ready says why until it appears. */
static void test_source_late_folder(void) {
  char yaml[1024], e[1024], why[512] = "";
  snprintf(yaml, sizeof yaml,
           "hub: {transport: memory, instance: t, admin: {listen: ''}}\n"
           "connectors:\n"
           "  - {name: late, type: file-in, topic: late.out, path: %s/late, poll_interval: 20ms, settle: 100ms}\n",
           dir);
  struct hub_config *cfg = config_load_in(dir, yaml);
  struct hub_source_runner *s = NULL;
  CHECK(cfg && hub_source_runner_create(cfg, &cfg->sources[0], T, &s, e, sizeof e) == HUB_OK);
  if (!s) return;
  CHECK(hub_source_runner_start(s) == HUB_OK);
  double t0 = now_ms();
  while (!strstr(why, "late/done: No such file or directory") && now_ms() - t0 < 5000) {
    hub_metrics_ready(why, sizeof why);
    sleep_ms(20);
  }
  CHECK_CONTAINS(why, "cannot create");
  CHECK_CONTAINS(why, "late/done: No such file or directory");
  /* It appears with 12 files of 800 KiB: taken at once, committed in transactions of <= 8 MiB. */
  char p[600], staged[600];
  path_of(staged, sizeof staged, "late-staged", NULL);
  CHECK(mkdir(staged, 0755) == 0);
  char *big = malloc(800 * 1024 + 1);
  memset(big, 'b', 800 * 1024);
  big[800 * 1024] = 0;
  for (int i = 0; i < 12; i++) {
    char name[32];
    snprintf(name, sizeof name, "big%02d.bin", i);
    write_file("late-staged", name, big);
  }
  free(big);
  path_of(p, sizeof p, "late", NULL);
  CHECK(rename(staged, p) == 0);
  CHECK(wait_count("late.out", 12, 10000));
  drop_file("late", "x.xml", "<x/>");
  CHECK(wait_count("late.out", 13, 10000));
  t0 = now_ms();
  while (!hub_metrics_ready(why, sizeof why) && now_ms() - t0 < 5000) sleep_ms(20);
  CHECK(!strstr(why, "late"));
  struct coll out = {0};
  scan_topic("late.out", &out);
  int xml = 0;
  for (int i = 0; i < out.n; i++)
    xml += out.v[i]->key_len == 5 && !memcmp(out.v[i]->key, "x.xml", 5) &&
           !strcmp(hub_msg_header_get_str(out.v[i], HUB_H_CONTENT_TYPE), "application/xml");
  CHECK(out.n == 13 && xml == 1);
  coll_clear(&out);
  stop_source(s, cfg);
  hub_metrics_reset();
}

/* A move that cannot succeed (done_dir on another file system): the file is emitted once, stays,
 * is never emitted again however often it is reported, and /ready says why. */
static void test_source_move_fails(void) {
  char yaml[1024], e[1024], why[512] = "", shm[64];
  snprintf(shm, sizeof shm, "/dev/shm/lt-filecon-done-%d", (int)getpid());
  snprintf(yaml, sizeof yaml,
           "hub: {transport: memory, instance: t, admin: {listen: ''}}\n"
           "connectors:\n"
           "  - {name: xdev, type: file-in, topic: xdev.out, path: %s/xdev, done_dir: %s, poll_interval: 20ms,\n"
           "     settle: 100ms, rescan: 100ms}\n",
           dir, shm);
  char p[600];
  path_of(p, sizeof p, "xdev", NULL);
  CHECK(mkdir(p, 0755) == 0);
  struct hub_config *cfg = config_load_in(dir, yaml);
  struct hub_source_runner *s = NULL;
  CHECK(cfg && hub_source_runner_create(cfg, &cfg->sources[0], T, &s, e, sizeof e) == HUB_OK);
  if (!s) return;
  CHECK(hub_source_runner_start(s) == HUB_OK);
  drop_file("xdev", "a.json", "{\"a\":1}");
  CHECK(wait_count("xdev.out", 1, 10000));
  sleep_ms(1000); /* ten rescans report it again */
  CHECK(count("xdev.out") == 1);
  CHECK(exists("xdev", "a.json"));
  hub_metrics_ready(why, sizeof why);
  CHECK_CONTAINS(why, "cannot move");
  CHECK_CONTAINS(why, "Invalid cross-device link");
  stop_source(s, cfg);
  hub_metrics_reset();
  rmdir(shm);
}

/* ----------------------------------------------------------------------------------- file-out */

struct route_thread {
  struct hub_route *r;
  pthread_t th;
};

static void *run_route(void *p) {
  hub_route_run(((struct route_thread *)p)->r);
  return NULL;
}

/* Puts records (keys[i], values[i]) on `topic` in one transaction. */
static void put(const char *topic, char **keys, char **values, int n) {
  struct hub_transport_opts o = {"test", NULL, NULL, "test.put"};
  struct hub_transport *t = NULL;
  char e[256];
  int ok = T->open(NULL, &o, &t, e, sizeof e) == HUB_OK && T->begin(t) == HUB_OK;
  for (int i = 0; ok && i < n; i++) {
    struct hub_msg *m = hub_msg_new(keys[i], strlen(keys[i]), values[i], strlen(values[i]));
    ok = m && T->produce(t, topic, m) == HUB_OK;
    hub_msg_destroy(m);
  }
  CHECK(ok && T->commit(t) == HUB_OK);
  if (t) T->close(t);
}

/* {"n":N,"len":L,"pad":"x...x"} with L x's: a reader can tell a whole file from a part. */
static char *padded(int n, int len) {
  char *v = malloc((size_t)len + 64);
  int k = snprintf(v, 64, "{\"n\":%d,\"len\":%d,\"pad\":\"", n, len);
  memset(v + k, 'x', (size_t)len);
  snprintf(v + k + len, 8, "\"}");
  return v;
}

struct reader {
  char dir[600];
  atomic_int stop;
  int opened, bad;
};

/* Opens every visible file of the folder again and again: each must be a whole padded value. */
static void *read_folder(void *p) {
  struct reader *r = p;
  while (!atomic_load(&r->stop)) {
    DIR *d = opendir(r->dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
      if (de->d_name[0] == '.') continue;
      char f[1200];
      snprintf(f, sizeof f, "%s/%s", r->dir, de->d_name);
      json_error_t je;
      json_t *j = json_load_file(f, 0, &je);
      if (!j && errno == ENOENT) continue;
      int len = (int)json_integer_value(json_object_get(j, "len"));
      const char *pad = json_string_value(json_object_get(j, "pad"));
      r->opened++;
      if (!pad || (int)strlen(pad) != len) r->bad++;
      json_decref(j);
    }
    if (d) closedir(d);
  }
  return NULL;
}

static int wait_topic(const char *topic, int n, int timeout_ms) {
  double t0 = now_ms();
  while (count(topic) < n && now_ms() - t0 < timeout_ms) sleep_ms(20);
  return count(topic);
}

static void test_sink(void) {
  char yaml[2048];
  snprintf(yaml, sizeof yaml,
           "hub: {transport: memory, instance: t, admin: {listen: ''}}\n"
           "connectors:\n"
           "  - {name: fout, type: file-out, from: o.in, result: o.res, path: %s/out, filename: '${key}.json',\n"
           "     errors: {retries: 1, backoff: 20ms..20ms}, batch: {max_wait: 5ms}}\n"
           "  - {name: fid, type: file-out, from: i.in, result: i.res, path: %s/ids, fsync: false,\n"
           "     errors: {retries: 1000, backoff: 100ms..100ms}, batch: {max_wait: 5ms}}\n"
           "  - {name: fperm, type: file-out, from: p.in, path: /sys, errors: {retries: 3, backoff: 20ms..20ms}}\n",
           dir, dir);
  struct hub_config *cfg = config_load_in(dir, yaml);
  CHECK(cfg && cfg->n_routes == 3);
  if (!cfg || cfg->n_routes != 3) return;
  char e[1024], p[600];
  struct route_thread rt[3] = {{0}};
  for (int i = 0; i < 3; i++) {
    CHECK(hub_route_create(cfg, &cfg->routes[i], T, &rt[i].r, e, sizeof e) == HUB_OK);
    if (!rt[i].r) return;
    pthread_create(&rt[i].th, NULL, run_route, &rt[i]);
  }
  path_of(p, sizeof p, "out", NULL);
  CHECK(mkdir(p, 0755) == 0);
  write_file("out", ".lt-fout-Ab12Cd.tmp", "{\"n\":1,\"len\""); /* left by a killed hub: swept */

  /* 150 files, and 50 overwrites of one name, while a reader opens whatever it sees. */
  struct reader rd = {.opened = 0};
  snprintf(rd.dir, sizeof rd.dir, "%s", p);
  pthread_t rth;
  pthread_create(&rth, NULL, read_folder, &rd);
  enum { N = 200 };
  char *keys[N], *values[N];
  for (int i = 0; i < N; i++) {
    char k[16];
    snprintf(k, sizeof k, i < 150 ? "k%03d" : "same", i);
    keys[i] = strdup(k);
    values[i] = padded(i, (i * 7919) % 200000 + 1);
  }
  put("o.in", keys, values, N);
  CHECK(wait_topic("o.res", N, 30000) == N);
  atomic_store(&rd.stop, 1);
  pthread_join(rth, NULL);
  CHECK(rd.opened > 0);
  CHECK(rd.bad == 0);
  CHECK(count_files("out") == 151);
  int whole = 0, all_entries = 0;
  DIR *d = opendir(p);
  struct dirent *de;
  while (d && (de = readdir(d))) all_entries += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
  if (d) closedir(d);
  CHECK(all_entries == 151); /* no temp file left behind, the stale one swept */
  for (int i = 0; i < N; i++) {
    char f[700], *got = NULL;
    size_t len = 0;
    snprintf(f, sizeof f, "%s/%s.json", p, keys[i]);
    if (hub_file_read(f, 1 << 20, &got, &len, e, sizeof e) == HUB_OK)
      whole += !strcmp(got, values[i == 150 ? N - 1 : i < 150 ? i : N - 1]) && (i < 150 || i == N - 1);
    free(got);
  }
  CHECK(whole == 151);
  struct stat st;
  snprintf(e, sizeof e, "%s/k000.json", p);
  CHECK(stat(e, &st) == 0 && (st.st_mode & 0777) == 0640);
  struct coll res = {0};
  scan_topic("o.res", &res);
  int consistent = 0;
  for (int i = 0; i < res.n; i++) {
    json_t *j = json_loads((const char *)res.v[i]->value, 0, NULL);
    const char *path = json_string_value(json_object_get(j, "path")), *sha = json_string_value(json_object_get(j, "sha256"));
    int k = -1;
    for (int x = 0; x < N && k < 0; x++)
      if (res.v[i]->key_len == strlen(keys[x]) && !memcmp(res.v[i]->key, keys[x], res.v[i]->key_len) && x < 150) k = x;
    char want[65], want_path[700];
    if (k >= 0) {
      hub_sha256_hex(values[k], strlen(values[k]), want);
      snprintf(want_path, sizeof want_path, "%s/%s.json", p, keys[k]);
      consistent += path && !strcmp(path, want_path) && sha && !strcmp(sha, want) &&
                    json_integer_value(json_object_get(j, "bytes")) == (json_int_t)strlen(values[k]);
    }
    json_decref(j);
  }
  CHECK(consistent == 150);
  coll_clear(&res);
  for (int i = 0; i < N; i++) free(keys[i]), free(values[i]);

  /* Names the template cannot make safe: to the DLQ, naming the template and the value. */
  char longk[300];
  memset(longk, 'a', 299);
  longk[299] = 0;
  char *bad_keys[] = {"../evil", "a\001b", longk, ".hidden"};
  char *bad_values[] = {"{}", "{}", "{}", "{}"};
  put("o.in", bad_keys, bad_values, 4);
  CHECK(wait_topic("fout.dlq", 4, 10000) == 4);
  struct coll dlq = {0};
  scan_topic("fout.dlq", &dlq);
  char all[8192] = "";
  for (int i = 0; i < dlq.n; i++) {
    const char *r = hub_msg_header_get_str(dlq.v[i], HUB_H_ERROR_REASON);
    snprintf(all + strlen(all), sizeof all - strlen(all), "%s\n", r ? r : "");
    CHECK_STR(hub_msg_header_get_str(dlq.v[i], HUB_H_ATTEMPTS), "1"); /* REJECT: not retried */
  }
  CHECK_CONTAINS(all, "filename template '${key}.json' gave \"../evil.json\", not a safe file name: it contains '/'");
  CHECK_CONTAINS(all, "gave \"a\\u0001b.json\", not a safe file name: it contains a control character");
  CHECK_CONTAINS(all, "it is longer than 255 bytes");
  CHECK_CONTAINS(all, "gave \".hidden.json\", not a safe file name: it starts with '.'");
  CHECK(!exists("", "evil.json") && count_files("out") == 151);
  coll_clear(&dlq);

  /* A permission error is REJECT at once. */
  char *pk[] = {"p1"}, *pv[] = {"{}"};
  put("p.in", pk, pv, 1);
  CHECK(wait_topic("fperm.dlq", 1, 10000) == 1);
  scan_topic("fperm.dlq", &dlq);
  if (dlq.n == 1) {
    CHECK_CONTAINS(hub_msg_header_get_str(dlq.v[0], HUB_H_ERROR_REASON), "Permission denied");
    CHECK_STR(hub_msg_header_get_str(dlq.v[0], HUB_H_ATTEMPTS), "1");
  }
  coll_clear(&dlq);

  /* A missing folder is RETRY until it exists; default names (${lt.id}) make a redelivery
   * after an aborted commit overwrite the file it wrote the first time. */
  char *ik[] = {"a", "b", "c", "d", "e"}, *iv[] = {"{\"i\":1}", "{\"i\":2}", "{\"i\":3}", "{\"i\":4}", "{\"i\":5}"};
  put("i.in", ik, iv, 5);
  sleep_ms(600);
  CHECK(count("i.res") <= 0 && count("fid.dlq") <= 0);
  char *up = hub_metrics_render_new();
  CHECK_CONTAINS(up ? up : "", "lienthong_connector_up{connector=\"fid\",kind=\"sink\"} 0\n");
  free(up);
  path_of(p, sizeof p, "ids", NULL);
  CHECK(mkdir(p, 0755) == 0);
  CHECK(wait_topic("i.res", 5, 10000) == 5);
  up = hub_metrics_render_new();
  CHECK_CONTAINS(up ? up : "", "lienthong_connector_up{connector=\"fid\",kind=\"sink\"} 1\n");
  free(up);
  hub_memory_fail_commits("lienthong.fid.t", 1);
  put("i.in", ik, iv, 3);
  CHECK(wait_topic("i.res", 8, 10000) == 8);
  sleep_ms(200);
  CHECK(count("i.res") == 8);
  CHECK(count_files("ids") == 8);
  scan_topic("i.res", &res);
  int named = 0;
  for (int i = 0; i < res.n; i++) {
    json_t *j = json_loads((const char *)res.v[i]->value, 0, NULL);
    const char *path = json_string_value(json_object_get(j, "path"));
    const char *id = hub_msg_header_get_str(res.v[i], HUB_H_PARENT) ? strrchr(path ? path : "", '/') : NULL;
    named += id && strlen(id + 1) == 36; /* ${lt.id}, no extension without a content-type */
    json_decref(j);
  }
  CHECK(named == 8);
  coll_clear(&res);
  char *text = hub_metrics_render_new();
  CHECK_CONTAINS(text ? text : "", "lienthong_route_aborted_total{route=\"fid\"} 1\n");
  free(text);

  hub_stop_request();
  for (int i = 0; i < 3; i++) pthread_join(rt[i].th, NULL);
  hub_stop_reset();
  for (int i = 0; i < 3; i++) hub_route_destroy(rt[i].r);
  hub_config_destroy(cfg);
  hub_metrics_reset();
}

int main(void) {
  hub_log_set_level(getenv("LT_TEST_LOG") ? HUB_LOG_DEBUG : HUB_LOG_ERROR);
  T = hub_transport_get("memory");
  CHECK(T != NULL);
  if (!T || !mkdtemp(dir)) return check_done();
  test_watch_inotify();
  test_watch_rescan();
  test_source();
  test_source_late_folder();
  test_source_move_fails();
  test_sink();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return check_done();
}
