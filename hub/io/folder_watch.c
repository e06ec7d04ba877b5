/* The folder watcher (folder_watch.h): one thread per folder, following inotify and rescanning.
 *
 * Every file the watcher knows sits in a table by name with the size and mtime it last saw and
 * since when they have not changed; complete files wait in a FIFO of names (each at most once)
 * until a consumer takes them. A rescan merges what the folder holds into the table (files gone
 * are forgotten) and queues every file that is complete: inotify-reported, or unchanged for
 * `settle`. */
#include "hub/io/folder_watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hub/core/log.h"

#define BUCKETS 4096
#define UNREADABLE_RETRY_MS 1000 /* a folder that cannot be read is tried again this often */

struct entry {
  char *name;
  int64_t size;
  int64_t mtime_ns;
  int64_t since_ms; /* when size/mtime were last seen to change */
  int queued;
  int complete;     /* inotify said so, or it settled */
  unsigned gen;     /* the rescan that last saw it */
  struct entry *next;
};

struct hub_folder_watch {
  char *dir, *include;
  char **temp_names;
  size_t n_temp_names;
  int64_t settle_ms, rescan_ms;
  int use_inotify;

  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct entry *table[BUCKETS];
  char **fifo; /* queued names (owned copies: a taken name outlives its entry) */
  size_t fifo_head, fifo_n, fifo_cap;
  unsigned gen;
  int stopping, started, rescan_now;
  char why[512]; /* why the folder cannot be read; empty while it can */

  int ino_fd, wake_fd;
  int ino_warned;
  atomic_int wd; /* the inotify watch, -1 when none; written by the thread only */
  pthread_t thread;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned hash(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h % BUCKETS;
}

static struct entry **find(struct hub_folder_watch *w, const char *name) {
  struct entry **e = &w->table[hash(name)];
  while (*e && strcmp((*e)->name, name)) e = &(*e)->next;
  return e;
}

/* Whether a name may ever be reported (before looking at the file). */
static int wanted(const struct hub_folder_watch *w, const char *name) {
  if (name[0] == '.' || !name[0]) return 0;
  for (size_t i = 0; i < w->n_temp_names; i++)
    if (fnmatch(w->temp_names[i], name, FNM_PERIOD) == 0) return 0;
  return !w->include || fnmatch(w->include, name, FNM_PERIOD) == 0;
}

/* Puts the entry's name in the FIFO unless it is there (under mu). */
static void enqueue(struct hub_folder_watch *w, struct entry *e) {
  if (e->queued) return;
  if (w->fifo_head + w->fifo_n == w->fifo_cap) {
    if (w->fifo_head > 0) {
      memmove(w->fifo, w->fifo + w->fifo_head, w->fifo_n * sizeof *w->fifo);
      w->fifo_head = 0;
    } else {
      size_t cap = w->fifo_cap ? w->fifo_cap * 2 : 64;
      char **f = realloc(w->fifo, cap * sizeof *f);
      if (!f) return; /* out of memory: the next rescan queues it */
      w->fifo = f;
      w->fifo_cap = cap;
    }
  }
  char *copy = strdup(e->name);
  if (!copy) return;
  w->fifo[w->fifo_head + w->fifo_n++] = copy;
  e->queued = 1;
  pthread_cond_broadcast(&w->cv);
}

/* Records what a stat saw of `name` (under mu); complete: inotify says it was closed or moved in. */
static void seen(struct hub_folder_watch *w, const char *name, const struct stat *st, int complete, int64_t now) {
  struct entry **slot = find(w, name), *e = *slot;
  int64_t mtime = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
  if (!e) {
    if (!(e = calloc(1, sizeof *e)) || !(e->name = strdup(name))) {
      free(e);
      return;
    }
    e->size = -1;
    *slot = e;
  }
  e->gen = w->gen;
  if (e->size != (int64_t)st->st_size || e->mtime_ns != mtime) {
    e->size = (int64_t)st->st_size;
    e->mtime_ns = mtime;
    e->since_ms = now;
    e->complete = 0;
  }
  if (complete) e->complete = 1;
  if (!e->complete && now - e->since_ms >= w->settle_ms) e->complete = 1;
  if (e->complete) enqueue(w, e);
}

struct found {
  char *name;
  struct stat st;
};

/* Lists the folder's candidate files (without the lock held). -1 with why when it cannot. */
static int list_folder(struct hub_folder_watch *w, struct found **out, size_t *n, char *why, size_t why_size) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(w->dir);
  if (!d) {
    snprintf(why, why_size, "cannot read folder %s: %s", w->dir, strerror(errno));
    return -1;
  }
  size_t cap = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!wanted(w, de->d_name)) continue;
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 64;
      struct found *f = realloc(*out, cap * sizeof *f);
      if (!f) break;
      *out = f;
    }
    if (!((*out)[*n].name = strdup(de->d_name))) break;
    (*out)[*n].st = st;
    (*n)++;
  }
  closedir(d);
  return 0;
}

static void arm_inotify(struct hub_folder_watch *w) {
  if (!w->use_inotify || w->ino_fd < 0 || w->wd >= 0) return;
  w->wd = inotify_add_watch(w->ino_fd, w->dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVE_SELF | IN_ONLYDIR);
  if (w->wd < 0 && !w->ino_warned++) /* once: rescans retry it quietly */
    hub_log(HUB_LOG_WARN, "folder-watch", "no inotify watch on %s (%s): rescans only", w->dir, strerror(errno));
}

static void rescan(struct hub_folder_watch *w) {
  struct found *f = NULL;
  size_t n = 0;
  char why[512] = "";
  arm_inotify(w); /* before listing: a file arriving in between is then reported by the watch */
  int rc = list_folder(w, &f, &n, why, sizeof why);
  int64_t now = now_ms();
  pthread_mutex_lock(&w->mu);
  if (rc != 0 && strcmp(w->why, why)) hub_log(HUB_LOG_WARN, "folder-watch", "%s", why);
  snprintf(w->why, sizeof w->why, "%s", why);
  if (rc == 0) {
    w->gen++;
    for (size_t i = 0; i < n; i++) seen(w, f[i].name, &f[i].st, 0, now);
    for (size_t b = 0; b < BUCKETS; b++) /* forget files that are gone */
      for (struct entry **e = &w->table[b]; *e;) {
        if ((*e)->gen == w->gen) {
          e = &(*e)->next;
          continue;
        }
        struct entry *gone = *e;
        *e = gone->next;
        free(gone->name);
        free(gone);
      }
  }
  pthread_mutex_unlock(&w->mu);
  for (size_t i = 0; i < n; i++) free(f[i].name);
  free(f);
}

/* The next time a rescan is due: the periodic one, or the first unsettled file's settle time. */
static int64_t next_due(struct hub_folder_watch *w, int64_t last_scan) {
  int64_t due = last_scan + w->rescan_ms;
  pthread_mutex_lock(&w->mu);
  if (w->why[0] && w->rescan_ms > UNREADABLE_RETRY_MS) due = last_scan + UNREADABLE_RETRY_MS;
  for (size_t b = 0; b < BUCKETS; b++)
    for (struct entry *e = w->table[b]; e; e = e->next)
      if (!e->complete && e->since_ms + w->settle_ms < due) due = e->since_ms + w->settle_ms;
  pthread_mutex_unlock(&w->mu);
  return due;
}

static void read_events(struct hub_folder_watch *w) {
  char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
  ssize_t len = read(w->ino_fd, buf, sizeof buf);
  if (len <= 0) return;
  for (char *p = buf; p < buf + len;) {
    const struct inotify_event *ev = (const struct inotify_event *)p;
    p += sizeof *ev + ev->len;
    if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_MOVE_SELF)) {
      /* Events were lost, or the folder was deleted (IN_IGNORED) or renamed away (IN_MOVE_SELF:
       * the watch would follow it, so it is dropped). Rescans re-arm the watch on the path. */
      if (ev->mask & IN_Q_OVERFLOW)
        hub_log(HUB_LOG_INFO, "folder-watch", "inotify overflowed on %s: rescanning", w->dir);
      if ((ev->mask & IN_MOVE_SELF) && ev->wd == w->wd) inotify_rm_watch(w->ino_fd, ev->wd);
      if ((ev->mask & (IN_IGNORED | IN_MOVE_SELF)) && ev->wd == w->wd) w->wd = -1;
      pthread_mutex_lock(&w->mu);
      w->rescan_now = 1;
      pthread_mutex_unlock(&w->mu);
      continue;
    }
    if (!ev->len || !wanted(w, ev->name) || !(ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))) continue;
    struct stat st;
    char path[4096 + 256];
    snprintf(path, sizeof path, "%s/%s", w->dir, ev->name);
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    pthread_mutex_lock(&w->mu);
    seen(w, ev->name, &st, 1, now_ms());
    pthread_mutex_unlock(&w->mu);
  }
}

static void *watch_main(void *arg) {
  struct hub_folder_watch *w = arg;
  int64_t last_scan = now_ms();
  rescan(w);
  for (;;) {
    pthread_mutex_lock(&w->mu);
    int stop = w->stopping, now_please = w->rescan_now;
    w->rescan_now = 0;
    pthread_mutex_unlock(&w->mu);
    if (stop) break;
    int64_t now = now_ms();
    if (now_please || now >= next_due(w, last_scan)) {
      rescan(w);
      last_scan = now_ms();
      continue;
    }
    int64_t wait = next_due(w, last_scan) - now;
    struct pollfd fds[2] = {{w->wake_fd, POLLIN, 0}, {w->wd >= 0 ? w->ino_fd : -1, POLLIN, 0}};
    if (poll(fds, 2, (int)(wait < 1 ? 1 : wait > 60000 ? 60000 : wait)) <= 0) continue;
    if (fds[0].revents & POLLIN) {
      uint64_t v;
      if (read(w->wake_fd, &v, sizeof v) < 0) { /* nothing to do: the flags say why we woke */
      }
    }
    if (fds[1].revents & POLLIN) read_events(w);
  }
  return NULL;
}

static void wake(struct hub_folder_watch *w) {
  uint64_t one = 1;
  if (w->wake_fd >= 0 && write(w->wake_fd, &one, sizeof one) < 0) { /* the counter is full: it wakes anyway */
  }
}

hub_err_t hub_folder_watch_create(const struct hub_folder_watch_opts *opts, struct hub_folder_watch **out,
                                  char *errbuf, size_t errbuf_size) {
  *out = NULL;
  if (!opts->dir || !*opts->dir) return hub_errf(errbuf, errbuf_size, HUB_ERR_INVALID_ARG, "folder watch: no folder");
  struct hub_folder_watch *w = calloc(1, sizeof *w);
  hub_err_t rc = HUB_ERR_NOMEM;
  if (!w) return rc;
  w->ino_fd = w->wake_fd = -1;
  w->wd = -1;
  pthread_mutex_init(&w->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);
  w->settle_ms = opts->settle_ms > 0 ? opts->settle_ms : 0;
  w->rescan_ms = opts->rescan_ms > 0 ? opts->rescan_ms : 10000;
  w->use_inotify = opts->use_inotify;
  if (!(w->dir = strdup(opts->dir))) goto out;
  if (opts->include && !(w->include = strdup(opts->include))) goto out;
  if (opts->n_temp_names && !(w->temp_names = calloc(opts->n_temp_names, sizeof *w->temp_names))) goto out;
  for (; w->n_temp_names < opts->n_temp_names; w->n_temp_names++)
    if (!(w->temp_names[w->n_temp_names] = strdup(opts->temp_names[w->n_temp_names]))) goto out;
  rc = HUB_OK;
out:
  if (rc != HUB_OK) {
    hub_folder_watch_destroy(w);
    return rc;
  }
  *out = w;
  return HUB_OK;
}

hub_err_t hub_folder_watch_start(struct hub_folder_watch *w, char *errbuf, size_t errbuf_size) {
  struct stat st;
  if (w->started) return HUB_OK;
  if (stat(w->dir, &st) != 0) return hub_errf(errbuf, errbuf_size, HUB_ERR_IO, "%s: %s", w->dir, strerror(errno));
  if (!S_ISDIR(st.st_mode)) return hub_errf(errbuf, errbuf_size, HUB_ERR_IO, "%s: not a folder", w->dir);
  if ((w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_IO, "eventfd: %s", strerror(errno));
  if (w->use_inotify && (w->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
    hub_log(HUB_LOG_WARN, "folder-watch", "inotify unavailable (%s): rescanning %s every %lld ms", strerror(errno),
            w->dir, (long long)w->rescan_ms);
  arm_inotify(w);
  if (pthread_create(&w->thread, NULL, watch_main, w) != 0)
    return hub_errf(errbuf, errbuf_size, HUB_ERR_NOMEM, "cannot start the watcher thread of %s", w->dir);
  w->started = 1;
  return HUB_OK;
}

hub_err_t hub_folder_watch_take(struct hub_folder_watch *w, size_t max, int timeout_ms, char ***names, size_t *n) {
  *names = NULL;
  *n = 0;
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
  hub_err_t rc = HUB_OK;
  pthread_mutex_lock(&w->mu);
  while (!w->fifo_n && !w->stopping && timeout_ms > 0)
    if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0) break;
  size_t k = w->fifo_n < max ? w->fifo_n : max;
  if (k && !(*names = malloc(k * sizeof **names))) rc = HUB_ERR_NOMEM;
  for (size_t i = 0; rc == HUB_OK && i < k; i++) {
    char *name = w->fifo[w->fifo_head++];
    w->fifo_n--;
    struct entry *e = *find(w, name);
    if (e) e->queued = 0;
    (*names)[(*n)++] = name;
  }
  if (!w->fifo_n) w->fifo_head = 0;
  pthread_mutex_unlock(&w->mu);
  return rc;
}

void hub_folder_watch_rescan(struct hub_folder_watch *w) {
  pthread_mutex_lock(&w->mu);
  w->rescan_now = 1;
  pthread_mutex_unlock(&w->mu);
  wake(w);
}

int hub_folder_watch_health(struct hub_folder_watch *w, char *why, size_t why_size) {
  pthread_mutex_lock(&w->mu);
  int ok = !w->why[0];
  if (!ok) snprintf(why, why_size, "%s", w->why);
  pthread_mutex_unlock(&w->mu);
  return ok;
}

int hub_folder_watch_inotify(struct hub_folder_watch *w) { return w->wd >= 0; }

void hub_folder_watch_stop(struct hub_folder_watch *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stopping = 1;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  wake(w);
  if (w->started) pthread_join(w->thread, NULL);
  w->started = 0;
}

void hub_folder_watch_destroy(struct hub_folder_watch *w) {
  if (!w) return;
  hub_folder_watch_stop(w);
  for (size_t b = 0; b < BUCKETS; b++)
    for (struct entry *e = w->table[b], *next; e; e = next) {
      next = e->next;
      free(e->name);
      free(e);
    }
  for (size_t i = 0; i < w->fifo_n; i++) free(w->fifo[w->fifo_head + i]);
  free(w->fifo);
  for (size_t i = 0; i < w->n_temp_names; i++) free(w->temp_names[i]);
  free(w->temp_names);
  free(w->include);
  free(w->dir);
  if (w->ino_fd >= 0) close(w->ino_fd);
  if (w->wake_fd >= 0) close(w->wake_fd);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w);
}
