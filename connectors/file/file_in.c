/* Source `file-in`: each complete file dropped into a folder becomes one record (value: its
 * bytes; key: its name), emitted once, then moved to done/.
 *
 * Exactly once across crashes rests on the order commit -> move and on the cursor: the cursor,
 * committed with the records, is the set of (name, sha256) emitted but not yet moved. A file is
 * moved only after its emit returned OK; an entry leaves the cursor at a later commit, once the
 * move is on disk. On start, a file still in the folder whose name and digest are in the cursor
 * was committed before a crash: it is moved without being emitted again. The same name with
 * another digest is new content and is emitted. Files bigger than max_size go to failed/ with a
 * NAME.error note and are never emitted. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file_types.h"
#include "hub/core/files.h"
#include "hub/core/log.h"
#include "hub/core/metrics.h"
#include "hub/core/registry.h"
#include "hub/core/step_chain.h"
#include "hub/engine/connector.h"
#include "hub/io/folder_watch.h"

#define BATCH_BYTES (8u << 20) /* a transaction's records stop growing here, whatever `batch` says */

struct cfg {
  char *path;
  char *pattern;
  int64_t max_size;
  int64_t settle_ms;
  int64_t rescan_ms;
  char *done_dir;
  char *failed_dir;
  char *content_type;
  struct hub_str_list temp_names;
  int64_t batch;
  int inotify;
  const struct hub_node *steps;
};

#define F(f) offsetof(struct cfg, f)
static const struct hub_cfg_entry entries[] = {
    {"path", HUB_CFG_STR, F(path), NULL, 1, "folder to take files from (relative: to the config's folder)"},
    {"pattern", HUB_CFG_STR, F(pattern), "*", 0, "glob of the file names to take; others are left alone"},
    {"max_size", HUB_CFG_SIZE, F(max_size), "900KiB", 0,
     "bigger files go to failed_dir with a NAME.error note, never emitted (keep it under the transport's "
     "largest record)",
     NULL, NULL, 1, 1073741824},
    {"settle", HUB_CFG_DURATION, F(settle_ms), "2s", 0,
     "a file only a rescan saw is complete once its size and mtime have not changed this long", NULL, NULL, 0,
     3600000},
    {"rescan", HUB_CFG_DURATION, F(rescan_ms), "10s", 0, "time between two rescans of the folder (inotify between)",
     NULL, NULL, 100, 3600000},
    {"done_dir", HUB_CFG_STR, F(done_dir), "done", 0,
     "where emitted files are moved (relative: inside the folder; same file system)"},
    {"failed_dir", HUB_CFG_STR, F(failed_dir), "failed", 0,
     "where refused files and their NAME.error notes go (relative: inside the folder)"},
    {"content_type", HUB_CFG_STR, F(content_type), NULL, 0,
     "content-type header (default from the extension: .json, .xml, .csv, else application/octet-stream)"},
    {"temp_names", HUB_CFG_STR_LIST, F(temp_names), "*.tmp", 0,
     "globs of names being written, never taken (dot-files never are)"},
    {"batch", HUB_CFG_INT, F(batch), "100", 0, "files per transaction at most", NULL, NULL, 1, 10000},
    {"inotify", HUB_CFG_BOOL, F(inotify), "true", 0, "follow inotify between rescans (false: rescans only, e.g. NFS)"},
    {"steps", HUB_CFG_NODE, F(steps), NULL, 0,
     "steps run on each file's record before it is emitted, e.g. `- bank-statement: {...}` (a statement becomes "
     "its lines); what they make is emitted in the file's transaction; a file they refuse goes to failed_dir"},
    {NULL},
};
static const struct hub_cfg_map map = {"file-in", entries};

static struct hub_metric_counter failed_total = {
    "lienthong_file_in_failed_total", "files file-in moved to failed_dir (too large or unreadable)", 0, 0, NULL};
static struct hub_metric_counter recovered_total = {
    "lienthong_file_in_recovered_total",
    "files file-in found committed but not moved at start, moved to done_dir without a second emit", 0, 0, NULL};

/* A file emitted (committed or about to be) and not yet moved. */
struct pending {
  char *name;
  char sha[65];
  dev_t dev;
  ino_t ino;
  int64_t size, mtime_ns;
};

struct state {
  const struct cfg *cfg;
  struct hub_source_ctx *ctx;
  char *dir, *done, *failed;
  struct hub_folder_watch *watch;
  struct pending *pend; /* what the committed cursor lists that is not moved yet */
  size_t n_pend;
  int cursor_stale; /* the committed cursor still lists files moved since */
  int recovered, watching;
  int64_t last_try_ms;
  atomic_int paused;
  struct hub_step_chain *chain; /* `steps`, or NULL */
  char why[512]; /* a move that keeps failing, for health */
  pthread_mutex_t why_mu;
};

static void set_why(struct state *s, const char *why) {
  pthread_mutex_lock(&s->why_mu);
  snprintf(s->why, sizeof s->why, "%s", why ? why : "");
  pthread_mutex_unlock(&s->why_mu);
}

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static int64_t mtime_ns(const struct stat *st) {
  return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static void fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    if (fsync(fd) != 0) hub_log(HUB_LOG_WARN, "file-in", "fsync %s: %s", dir, strerror(errno));
    close(fd);
  }
}

/* Moves dir/name into `to` (keeping an existing file there: the newcomer gets .SHA12 appended). */
static int move_into(struct state *s, const char *name, const char *sha, const char *to) {
  char *src = join(s->dir, name), *dst = join(to, name);
  int rc = -1;
  if (!src || !dst) goto out;
  if (access(dst, F_OK) == 0 && sha) {
    char alt[512];
    snprintf(alt, sizeof alt, "%s.%.12s", name, sha);
    free(dst);
    if (!(dst = join(to, alt))) goto out;
  }
  if ((rc = rename(src, dst)) != 0) {
    char why[600];
    snprintf(why, sizeof why, "cannot move %s to %s: %s", src, to, strerror(errno));
    hub_log(HUB_LOG_WARN, "file-in", "%s", why);
    set_why(s, why);
  }
out:
  free(src);
  free(dst);
  return rc;
}

/* A file that will never be emitted: to failed/ with NAME.error saying why. */
static void refuse(struct state *s, const char *name, const char *reason) {
  hub_log(HUB_LOG_WARN, "file-in", "%s/%s refused: %s; moved to %s", s->dir, name, reason, s->failed);
  if (move_into(s, name, NULL, s->failed) != 0) return;
  atomic_fetch_add(&failed_total.value, 1);
  char note_name[512], tmp_name[540];
  snprintf(note_name, sizeof note_name, "%s.error", name);
  snprintf(tmp_name, sizeof tmp_name, ".%s.tmp", note_name);
  char *note = join(s->failed, note_name), *tmp = join(s->failed, tmp_name);
  FILE *f = note && tmp ? fopen(tmp, "w") : NULL;
  if (f) {
    time_t now = time(NULL);
    struct tm tm;
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    fprintf(f, "%s: %s (connector %s, %s)\n", name, reason, hub_source_name(s->ctx), when);
    if (fclose(f) != 0 || rename(tmp, note) != 0) unlink(tmp);
  }
  free(note);
  free(tmp);
}

static void pending_clear(struct pending *p) {
  free(p->name);
  memset(p, 0, sizeof *p);
}

/* The cursor: {"pending": [[NAME, SHA256], ...]} of the first n entries. */
static char *cursor_new(const struct pending *p, size_t n, size_t *len) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++)
    if (json_array_append_new(arr, json_pack("[s,s]", p[i].name, p[i].sha)) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  json_t *j = arr ? json_pack("{s:o}", "pending", arr) : NULL;
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  *len = text ? strlen(text) : 0;
  return text;
}

/* Reads dir/name if it is a regular file no bigger than max_size. 1: read; 0: gone or not a
 * file (skip); -1: refused (*reason says why); -2: cannot read now (retry later). */
static int read_file(struct state *s, const char *name, unsigned char **data, size_t *len, struct stat *st,
                     char *reason, size_t reason_size) {
  char *path = join(s->dir, name);
  int fd = path ? open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1, rc = -2;
  unsigned char *buf = NULL;
  *data = NULL;
  if (fd < 0) {
    rc = errno == ENOENT || errno == ELOOP ? 0 : errno == EACCES || errno == EPERM ? -1 : -2;
    snprintf(reason, reason_size, "cannot open: %s", strerror(errno));
    goto out;
  }
  if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
    rc = 0;
    goto out;
  }
  if (st->st_size > s->cfg->max_size) {
    snprintf(reason, reason_size, "%lld bytes, larger than max_size %lld", (long long)st->st_size,
             (long long)s->cfg->max_size);
    rc = -1;
    goto out;
  }
  size_t cap = (size_t)st->st_size + 1, n = 0;
  if (!(buf = malloc(cap + 1))) goto out;
  for (;;) { /* up to one byte more than fstat said: a file that grew is caught below */
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      snprintf(reason, reason_size, "read: %s", strerror(errno));
      goto out;
    }
    if (r == 0) break;
    n += (size_t)r;
    if (n == cap) break;
  }
  if (n != (size_t)st->st_size) { /* changed while read: the watcher reports it again when it settles */
    snprintf(reason, reason_size, "changed while being read");
    goto out;
  }
  *data = buf;
  *len = n;
  buf = NULL;
  rc = 1;
out:
  if (fd >= 0) close(fd);
  free(buf);
  free(path);
  return rc;
}

/* Whether dir/name is still the file p was read from. */
static int same_file(struct state *s, const struct pending *p) {
  char *path = join(s->dir, p->name);
  struct stat st;
  int same = path && lstat(path, &st) == 0 && st.st_dev == p->dev && st.st_ino == p->ino &&
             (int64_t)st.st_size == p->size && mtime_ns(&st) == p->mtime_ns;
  free(path);
  return same;
}

/* Moves what the committed cursor lists to done/ (the files that are still the ones emitted);
 * entries whose file is gone or replaced are dropped. Then the folders are synced, so the
 * next cursor, which no longer lists them, is never ahead of the disk. */
static void move_pending(struct state *s) {
  size_t keep = 0;
  int moved = 0;
  for (size_t i = 0; i < s->n_pend; i++) {
    struct pending *p = &s->pend[i];
    int drop = 1;
    if (same_file(s, p)) {
      if (move_into(s, p->name, p->sha, s->done) == 0)
        moved = 1;
      else
        drop = 0; /* keep it listed: retried at the next poll, never emitted again meanwhile */
    }
    if (drop) {
      pending_clear(p);
      s->cursor_stale = 1;
    } else {
      s->pend[keep++] = *p;
    }
  }
  s->n_pend = keep;
  if (!keep) set_why(s, NULL);
  if (moved) {
    fsync_dir(s->dir);
    fsync_dir(s->done);
  }
}

static int listed(const struct state *s, const char *name, const char *sha) {
  for (size_t i = 0; i < s->n_pend; i++)
    if (!strcmp(s->pend[i].name, name) && !strcmp(s->pend[i].sha, sha)) return 1;
  return 0;
}

/* Emits the files named, in one transaction with the cursor, up to BATCH_BYTES of them (at
 * least one); *used says how many names it went through. */
static hub_err_t emit_files(struct state *s, char **names, size_t n, size_t *used) {
  size_t cap_m = n ? n : 1;
  struct hub_msg **m = calloc(cap_m, sizeof *m);
  struct pending *pend = realloc(s->pend, (s->n_pend + n + 1) * sizeof *pend);
  hub_err_t rc = m && pend ? HUB_OK : HUB_ERR_NOMEM;
  size_t k = 0, first = s->n_pend, bytes = 0, i = 0;
  if (pend) s->pend = pend;
  for (; rc == HUB_OK && i < n && bytes < BATCH_BYTES && !atomic_load(&s->paused); i++) {
    unsigned char *data;
    size_t len;
    struct stat st;
    char reason[300] = "", sha[65];
    json_t *utf8 = json_string(names[i]); /* the cursor is JSON: a name must be UTF-8 */
    int r = utf8 ? read_file(s, names[i], &data, &len, &st, reason, sizeof reason) : -1;
    json_decref(utf8);
    if (!utf8) snprintf(reason, sizeof reason, "its name is not valid UTF-8");
    if (r == -1) refuse(s, names[i], reason);
    if (r == -2 && *reason) hub_log(HUB_LOG_INFO, "file-in", "%s/%s: %s; taken later", s->dir, names[i], reason);
    if (r != 1) continue;
    hub_sha256_hex(data, len, sha);
    int dup = 0;
    for (size_t j = first; j < s->n_pend; j++) dup |= !strcmp(s->pend[j].name, names[i]);
    if (dup || listed(s, names[i], sha)) { /* committed already (a move that failed), or twice in this batch */
      free(data);
      continue;
    }
    struct hub_msg *msg = hub_msg_new(names[i], strlen(names[i]), NULL, 0);
    struct pending *p = &s->pend[s->n_pend];
    memset(p, 0, sizeof *p);
    if (!msg || hub_msg_set_value_take(msg, data, len) != HUB_OK ||
        hub_msg_header_set_str(msg, HUB_H_SOURCE, hub_source_name(s->ctx)) != HUB_OK ||
        hub_msg_header_set_str(msg, HUB_H_CONTENT_TYPE,
                               s->cfg->content_type ? s->cfg->content_type : file_content_type(names[i])) != HUB_OK ||
        hub_msg_header_set_str(msg, "lt.file.name", names[i]) != HUB_OK ||
        hub_msg_header_set_str(msg, "lt.file.sha256", sha) != HUB_OK || !(p->name = strdup(names[i]))) {
      if (!msg) free(data);
      hub_msg_destroy(msg);
      rc = HUB_ERR_NOMEM;
      break;
    }
    if (s->chain) { /* the file's records (the processed one and any it was split into), or refused */
      struct hub_step_outcome o;
      char stage[128] = "";
      memset(&o, 0, sizeof o);
      enum hub_step_result sr = hub_step_chain_run(s->chain, msg, &o, stage, sizeof stage);
      if (sr == HUB_STEP_OK && k + 1 + o.n_extra > cap_m) {
        struct hub_msg **nm = realloc(m, (k + 1 + o.n_extra) * 2 * sizeof *nm);
        if (nm) {
          m = nm;
          cap_m = (k + 1 + o.n_extra) * 2;
        } else {
          sr = hub_step_fail(&o, HUB_STEP_RETRY, HUB_ERR_NOMEM, "out of memory");
        }
      }
      if (sr != HUB_STEP_OK) {
        char why[1200];
        snprintf(why, sizeof why, "%s: %s", stage, o.reason);
        hub_msg_destroy(msg);
        pending_clear(p);
        if (sr == HUB_STEP_REJECT)
          refuse(s, names[i], why);
        else /* left in the folder: taken again at a rescan */
          hub_log(HUB_LOG_WARN, "file-in", "%s/%s: %s; taken later", s->dir, names[i], why);
        hub_step_outcome_clear(&o);
        continue;
      }
      m[k++] = msg;
      for (size_t x = 0; x < o.n_extra; x++) m[k++] = o.extra[x];
      o.n_extra = 0; /* moved into m */
      hub_step_outcome_clear(&o);
      msg = NULL;
    }
    memcpy(p->sha, sha, sizeof p->sha);
    p->dev = st.st_dev;
    p->ino = st.st_ino;
    p->size = (int64_t)st.st_size;
    p->mtime_ns = mtime_ns(&st);
    s->n_pend++;
    if (msg) m[k++] = msg;
    bytes += len;
  }
  *used = i;
  if (rc == HUB_OK && (k || s->cursor_stale)) {
    size_t clen;
    char *cursor = cursor_new(s->pend, s->n_pend, &clen);
    rc = cursor ? hub_source_emit(s->ctx, m, k, cursor, clen) : HUB_ERR_NOMEM;
    free(cursor);
    if (rc == HUB_OK) s->cursor_stale = 0;
    if (rc == HUB_OK) hub_log(HUB_LOG_DEBUG, "file-in", "committed %zu file(s), %zu bytes", k, bytes);
  }
  if (rc != HUB_OK) /* not committed: forget this batch; the files stay and come back at a rescan */
    while (s->n_pend > first) pending_clear(&s->pend[--s->n_pend]);
  for (size_t i = 0; i < k; i++) hub_msg_destroy(m[i]);
  free(m);
  return rc;
}

static hub_err_t recover(struct state *s, char *errbuf, size_t errbuf_size);

/* The first polls: read the cursor, recover, start watching. Done here rather than in start()
 * so that a transport still electing leaders, or a folder not mounted yet, is retried (every
 * second) instead of ending the source. */
static hub_err_t begin(struct state *s) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  if (s->last_try_ms && now - s->last_try_ms < 1000) return HUB_OK;
  s->last_try_ms = now;
  char errbuf[1024] = "";
  hub_err_t rc = HUB_OK;
  const char *dirs[] = {s->done, s->failed};
  for (size_t i = 0; rc == HUB_OK && i < 2; i++)
    if (mkdir(dirs[i], 0750) != 0 && errno != EEXIST)
      rc = hub_errf(errbuf, sizeof errbuf, HUB_ERR_IO, "cannot create %s: %s", dirs[i], strerror(errno));
  if (rc == HUB_OK && !s->recovered && (rc = recover(s, errbuf, sizeof errbuf)) == HUB_OK) s->recovered = 1;
  if (rc == HUB_OK) rc = hub_folder_watch_start(s->watch, errbuf, sizeof errbuf);
  if (rc != HUB_OK) {
    pthread_mutex_lock(&s->why_mu);
    int again = !strcmp(s->why, errbuf);
    pthread_mutex_unlock(&s->why_mu);
    if (!again) /* once per reason: it is retried every second */
      hub_log(HUB_LOG_WARN, "file-in", "%s not started yet: %s; retrying", hub_source_name(s->ctx), errbuf);
    set_why(s, errbuf);
    return rc;
  }
  set_why(s, NULL);
  s->watching = 1;
  return HUB_OK;
}

static hub_err_t fi_poll(void *p) {
  struct state *s = p;
  hub_err_t rc = s->watching ? HUB_OK : begin(s);
  if (rc != HUB_OK || !s->watching) return rc;
  move_pending(s); /* what the last commit covered */
  while (rc == HUB_OK && !atomic_load(&s->paused)) {
    char **names = NULL;
    size_t n = 0;
    if ((rc = hub_folder_watch_take(s->watch, (size_t)s->cfg->batch, 0, &names, &n)) != HUB_OK) break;
    size_t done = 0;
    do { /* commit -> move, one transaction of at most BATCH_BYTES at a time */
      size_t used = 0;
      if (n || s->cursor_stale) rc = emit_files(s, names + done, n - done, &used);
      done += used;
      if (rc == HUB_OK) move_pending(s);
    } while (rc == HUB_OK && done < n && !atomic_load(&s->paused));
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (!n) break;
  }
  if (rc != HUB_OK) hub_folder_watch_rescan(s->watch); /* the files not committed come back */
  return rc;
}

/* Reads the committed cursor: files listed and still there with the same digest were committed
 * before a crash and are moved now; then a cursor without them is committed. */
static hub_err_t recover(struct state *s, char *errbuf, size_t errbuf_size) {
  void *cur = NULL;
  size_t len = 0;
  hub_err_t rc = hub_source_cursor_get(s->ctx, &cur, &len, errbuf, errbuf_size);
  if (rc != HUB_OK || !cur) return rc;
  json_error_t je;
  json_t *j = json_loadb(cur, len, 0, &je), *arr = json_object_get(j, "pending"), *it;
  size_t i;
  if (!json_is_array(arr))
    hub_log(HUB_LOG_WARN, "file-in", "%s: the committed cursor is not a file-in cursor; ignored",
            hub_source_name(s->ctx));
  json_array_foreach(arr, i, it) {
    const char *name = json_string_value(json_array_get(it, 0)), *sha = json_string_value(json_array_get(it, 1));
    unsigned char *data;
    size_t n;
    struct stat st;
    char reason[300], now_sha[65];
    if (!name || !sha || strchr(name, '/') || read_file(s, name, &data, &n, &st, reason, sizeof reason) != 1) continue;
    hub_sha256_hex(data, n, now_sha);
    free(data);
    if (strcmp(now_sha, sha)) continue; /* new content under that name: emitted as any file */
    hub_log(HUB_LOG_INFO, "file-in", "%s/%s was committed before a restart: moved to %s without a second emit",
            s->dir, name, s->done);
    if (move_into(s, name, sha, s->done) == 0) atomic_fetch_add(&recovered_total.value, 1);
  }
  json_decref(j);
  free(cur);
  fsync_dir(s->dir);
  fsync_dir(s->done);
  s->cursor_stale = 1; /* the next poll commits a cursor without them */
  return HUB_OK;
}

static void fi_destroy(void *p) {
  struct state *s = p;
  if (!s) return;
  hub_folder_watch_destroy(s->watch);
  hub_step_chain_destroy(s->chain);
  for (size_t i = 0; i < s->n_pend; i++) pending_clear(&s->pend[i]);
  free(s->pend);
  free(s->dir);
  free(s->done);
  free(s->failed);
  pthread_mutex_destroy(&s->why_mu);
  free(s);
}

static hub_err_t fi_create(const void *cfg, const struct hub_plugin_env *env, struct hub_source_ctx *ctx,
                           void **state, char *errbuf, size_t errbuf_size) {
  const struct cfg *c = cfg;
  struct state *s = calloc(1, sizeof *s);
  hub_err_t rc = HUB_ERR_NOMEM;
  if (!s) return rc;
  pthread_mutex_init(&s->why_mu, NULL);
  s->cfg = c;
  s->ctx = ctx;
  if (!(s->dir = hub_plugin_env_path_new(env, c->path)) || !(s->done = hub_path_resolve_new(s->dir, c->done_dir)) ||
      !(s->failed = hub_path_resolve_new(s->dir, c->failed_dir)))
    goto out;
  struct hub_folder_watch_opts o = {s->dir, c->pattern, (const char *const *)c->temp_names.v, c->temp_names.n,
                                    c->settle_ms, c->rescan_ms, c->inotify};
  rc = hub_folder_watch_create(&o, &s->watch, errbuf, errbuf_size);
  if (rc == HUB_OK && c->steps) {
    struct hub_step_env senv = {env->base_dir, env->keys, hub_source_name(ctx)};
    rc = hub_step_chain_create(c->steps, &senv, &s->chain, errbuf, errbuf_size);
  }
  hub_metrics_register_counter(&failed_total);
  hub_metrics_register_counter(&recovered_total);
out:
  if (rc != HUB_OK) {
    fi_destroy(s);
    return rc;
  }
  *state = s;
  return HUB_OK;
}

static void fi_pause(void *p) { atomic_store(&((struct state *)p)->paused, 1); }

static void fi_resume(void *p) {
  struct state *s = p;
  atomic_store(&s->paused, 0);
  hub_folder_watch_rescan(s->watch); /* files skipped while paused come back */
}

static void fi_stop(void *p) { hub_folder_watch_stop(((struct state *)p)->watch); }

static int fi_health(void *p, char *why, size_t why_size) {
  struct state *s = p;
  if (!hub_folder_watch_health(s->watch, why, why_size)) return 0;
  pthread_mutex_lock(&s->why_mu);
  int ok = !s->why[0];
  if (!ok) snprintf(why, why_size, "%s", s->why);
  pthread_mutex_unlock(&s->why_mu);
  return ok;
}

static const struct hub_source_ops ops = {
    .info = {.name = "file-in",
             .summary = "each complete file dropped into a folder becomes one record, once; then moved to done/",
             .config_map = &map,
             .config_size = sizeof(struct cfg)},
    .create = fi_create,
    .poll = fi_poll,
    .pause = fi_pause,
    .resume = fi_resume,
    .stop = fi_stop,
    .health = fi_health,
    .destroy = fi_destroy,
};
HUB_SOURCE_PLUGIN(lt_plugin_source_file_in, ops);
